/*
** stats.c: fed_stats, what each federated table of this connection has
** cost so far: scans sent to its store, rows the store returned, rows
** written through it, and scans answered by the cache instead.
**
**   SELECT * FROM fed_stats;
**   -- name       scans  rows  writes  cache_hits
**   -- main.users     3   120       2           1
**
** vtab.c counts (FedTable.pStat); the counters live on the context, by
** "schema.table", so that they outlast a table's reconnection (a schema
** change reconnects every table) and go at sqlite3_close.
*/
#include "fedInt.h"

struct FedTableStat {
  char *zName;                  /* "schema.table" */
  i64 nScan;                    /* Scans the store served */
  i64 nRow;                     /* Rows the store returned */
  i64 nWrite;                   /* Rows inserted, updated or deleted */
  i64 nCacheHit;                /* Scans the cache served */
  FedTableStat *pNext;
};

FedTableStat *fedStatsFor(FedContext *pCtx, const char *zSchema,
                          const char *zName){
  FedTableStat *p;
  char *z = sqlite3_mprintf("%s.%s", zSchema, zName);
  if( z==0 ) return 0;
  for(p=pCtx->pTableStat; p; p=p->pNext){
    if( sqlite3_stricmp(p->zName, z)==0 ){
      sqlite3_free(z);
      return p;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ){
    sqlite3_free(z);
    return 0;
  }
  memset(p, 0, sizeof(*p));
  p->zName = z;
  p->pNext = pCtx->pTableStat;
  pCtx->pTableStat = p;
  return p;
}

void fedStatsScan(FedTableStat *p, int bCache){
  if( p==0 ) return;
  if( bCache ){
    p->nCacheHit++;
  }else{
    p->nScan++;
  }
}

void fedStatsRow(FedTableStat *p){
  if( p ) p->nRow++;
}

void fedStatsWrite(FedTableStat *p){
  if( p ) p->nWrite++;
}

void fedStatsFree(FedContext *pCtx){
  while( pCtx->pTableStat ){
    FedTableStat *p = pCtx->pTableStat;
    pCtx->pTableStat = p->pNext;
    sqlite3_free(p->zName);
    sqlite3_free(p);
  }
}

/* One row per table, oldest first (the list is newest first). */
static int statsLoad(FedContext *pCtx, FedEpoRows *pRows, int idxNum,
                     int argc, sqlite3_value **argv, char **pzErr){
  FedTableStat *p;
  int n = 0, i, k;
  (void)idxNum; (void)argc; (void)argv; (void)pzErr;
  for(p=pCtx->pTableStat; p; p=p->pNext) n++;
  for(i=n-1; i>=0; i--){
    for(p=pCtx->pTableStat, k=0; k<i; k++) p = p->pNext;
    fedEpoRow(pRows, n-i);
    fedEpoText(pRows, 0, p->zName, -1);
    fedEpoInt(pRows, 1, p->nScan);
    fedEpoInt(pRows, 2, p->nRow);
    fedEpoInt(pRows, 3, p->nWrite);
    fedEpoInt(pRows, 4, p->nCacheHit);
  }
  return fedEpoRc(pRows);
}

static const FedEponymous statsTable = {
  "fed_stats",
  "CREATE TABLE x(name TEXT, scans INTEGER, rows INTEGER, writes INTEGER,"
  " cache_hits INTEGER)",
  5, 0, 10, -1, 0, statsLoad, 0
};

int fedStatsRegister(sqlite3 *db, FedContext *pCtx){
  return fedEponymousRegister(db, pCtx, &statsTable);
}
