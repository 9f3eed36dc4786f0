/*
** cache/sql.c: the SQL surface of the cache: the fed_cache_stats table,
** fed_cache_clear() and fed_cache_watch(), and fedCacheRegister().
*/
#include "cacheInt.h"

/**************************************************************************
** SQL: fed_cache_stats, fed_cache_clear(), fed_cache_watch().
*/

/* The FedTable of local table zName (connecting it if SQLite has not). */
static int cacheFindTable(FedContext *pCtx, const char *zName,
                          FedTable **ppTab, char **pzErr){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  FedCacheStat *pStat;
  char *zSql;
  int rc;
  *ppTab = 0;
  /* Preparing a statement makes SQLite connect the virtual table. */
  zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE 0", zName);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_NOMEM ) return rc;
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    if( pStat->pTab && (sqlite3_stricmp(pStat->pTab->zName, zName)==0
                        || sqlite3_stricmp(pStat->zName, zName)==0) ){
      *ppTab = pStat->pTab;
      return SQLITE_OK;
    }
  }
  fedSetError(pzErr, "no federate table \"%s\" with a cache", zName);
  return SQLITE_ERROR;
}

/* The result of fed_cache_clear()/fed_cache_watch(): n, or the error. */
static void cacheFuncResult(sqlite3_context *ctx, const char *zFunc, int rc,
                            const char *zErr, int n){
  if( rc && fedErrorRc(rc, zErr)==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc ){
    char *zMsg = sqlite3_mprintf("%s: %s", zFunc, zErr);
    if( zMsg==0 ){
      sqlite3_result_error_nomem(ctx);
    }else{
      sqlite3_result_error(ctx, zMsg, -1);
      sqlite3_free(zMsg);
    }
  }else{
    sqlite3_result_int(ctx, n);
  }
}

static void cacheClearFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  char *zErr = 0;
  int rc = SQLITE_OK, n = 0;
  if( argc==1 && sqlite3_value_type(argv[0])!=SQLITE_NULL ){
    FedTable *pTab = 0;
    const char *zName = (const char*)sqlite3_value_text(argv[0]);
    if( zName==0 ){ sqlite3_result_error_nomem(ctx); return; }
    rc = cacheFindTable(pCtx, zName, &pTab, &zErr);
    if( rc==SQLITE_OK ){
      /* Its database may not be open yet: open it to clear it. */
      rc = fedCacheTabReady(pTab->pCache, &zErr);
      if( rc==SQLITE_OK ) rc = fedCacheInvalidate(pTab);
      if( rc==SQLITE_OK ) fedCacheL2Bump(pTab->pCache);
      n = 1;
    }
  }else{
    FedCacheDb *pDb;
    FedCacheStat *pStat;
    for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
      if( pStat->pTab && pStat->pTab->pCache ){
        pStat->pTab->pCache->iGen++;
        fedCacheL2Bump(pStat->pTab->pCache);
      }
    }
    for(pDb=pCtx->pCacheDb; pDb && rc==SQLITE_OK; pDb=pDb->pNext){
      rc = fedCacheClearTid(pDb, 0);
      n++;
    }
  }
  cacheFuncResult(ctx, "fed_cache_clear", rc, zErr, n);
  sqlite3_free(zErr);
}

/* fed_cache_watch(table): ask the store to notify this connection of
** changes to the table by anyone (PostgreSQL: a trigger and LISTEN). */
static void cacheWatchFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  FedTable *pTab = 0;
  FedConn *pConn = 0;
  char *zErr = 0;
  int rc;
  (void)argc;
  if( zName==0 ){
    sqlite3_result_error(ctx, "fed_cache_watch: a table name is required",
                         -1);
    return;
  }
  rc = fedSchemaGuard(pCtx, "fed_cache_watch", &zErr);
  if( rc==SQLITE_OK ) rc = cacheFindTable(pCtx, zName, &pTab, &zErr);
  if( rc==SQLITE_OK && pTab->pStore->xWatch==0 ){
    fedSetError(&zErr, "%s: this store cannot notify changes; the cache of"
                " \"%s\" relies on its TTL", pTab->pStore->zName, zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && pTab->pServer==0 ){
    rc = fedServerFind(pCtx, pTab->zServer, &pTab->pServer, &zErr);
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, pTab->pServer, &pConn, &zErr);
  if( rc==SQLITE_OK ) rc = fedCacheWatch(pConn, pTab, &zErr);
  cacheFuncResult(ctx, "fed_cache_watch", rc, zErr, 1);
  sqlite3_free(zErr);
}

/* fed_cache_stats: one row per table that uses the cache on this
** connection, read from the counters and, for entries and bytes, from the
** table's cache database (live entries only). */
static int statsLoad(FedContext *pCtx, FedEpoRows *pRows, int idxNum,
                     int argc, sqlite3_value **argv, char **pzErr){
  FedCacheStat *p;
  i64 iRow = 1;
  int rc = SQLITE_OK;
  (void)idxNum; (void)argc; (void)argv; (void)pzErr;
  for(p=pCtx->pCacheStat; p && rc==SQLITE_OK; p=p->pNext){
    FedCacheTab *pCT = p->pTab ? p->pTab->pCache : 0;
    i64 nEntry = 0, nBytes = 0;
    if( pCT && pCT->iTid ){
      sqlite3_stmt *pStmt = 0;
      rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT count(*), total(nbytes)"
          " FROM fed_cache_entry WHERE tid=?1 AND nrow>=0 AND created>?2",
          -1, &pStmt, 0);
      if( rc==SQLITE_OK ){
        sqlite3_bind_int64(pStmt, 1, pCT->iTid);
        sqlite3_bind_int64(pStmt, 2, fedCacheNow()-pCT->nTtlMs);
        if( sqlite3_step(pStmt)==SQLITE_ROW ){
          nEntry = sqlite3_column_int64(pStmt, 0);
          nBytes = sqlite3_column_int64(pStmt, 1);
        }
        rc = sqlite3_finalize(pStmt);
      }
      if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
        *pzErr = sqlite3_mprintf("%s", sqlite3_errmsg(pCT->pDb->db));
      }
    }
    if( rc==SQLITE_OK ){
      fedEpoRow(pRows, iRow++);
      fedEpoText(pRows, 0, p->zName, -1);
      fedEpoInt(pRows, 1, p->nHit);
      fedEpoInt(pRows, 2, p->nMiss);
      fedEpoInt(pRows, 3, nEntry);
      fedEpoInt(pRows, 4, nBytes);
      fedEpoInt(pRows, 5, p->nEvict);
      fedEpoInt(pRows, 6, p->nFill);
      fedEpoInt(pRows, 7, p->nL2Hit);
      if( pCT ) fedEpoText(pRows, 8, pCT->zDbPath, -1);
      rc = fedEpoRc(pRows);
    }
  }
  return rc;
}

static const FedEponymous statsTable = {
  "fed_cache_stats",
  "CREATE TABLE x(name TEXT, hits INTEGER, misses INTEGER, entries INTEGER,"
  " bytes INTEGER, evictions INTEGER, fills INTEGER, l2_hits INTEGER,"
  " cache_db TEXT)",
  9, 0, 10, -1, 0, statsLoad, 0
};

int fedCacheRegister(sqlite3 *db, FedContext *pCtx){
  int rc;
  const int f = SQLITE_UTF8|SQLITE_DIRECTONLY;
  rc = fedServerAddHook(pCtx, &fedCacheServerHook);
  if( rc!=SQLITE_OK ) return rc;
  rc = fedEponymousRegister(db, pCtx, &statsTable);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_clear", 0, f, pCtx,
                                 cacheClearFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_clear", 1, f, pCtx,
                                 cacheClearFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_watch", 1, f, pCtx,
                                 cacheWatchFunc, 0, 0);
  }
  return rc;
}
