/*
** fuzz_pg.c: libFuzzer target for the PostgreSQL store's command builder
** and value decoder (vtab/postgres/deparse.c and types.c, the store's pure
** files), without a server and without libpq.
**
** Input: a mode byte, then NUL-separated parts.
**   mode even: columns spec, plan text (idxStr), then values, each a type
**              letter (i f t b n) and its text: the SELECT is built.
**   mode odd:  a PostgreSQL type name and a value text: the value is
**              decoded as SQLite would receive it.
*/
#include "pgInt.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

/*
** Build the SELECT of plan zPlan (idxStr) on a table of columns zColumns
** for values apVal, as xFilter would: *pzSql gets the text and *pzParams
** the bound values as JSON (both sqlite3_malloc'd).  Then check that the
** SELECT kept for these values gives the same text and binds the same.
*/
static int pgFuzzDeparse(
  const char *zColumns, const char *zPlan, int nVal, sqlite3_value **apVal,
  char **pzSql, char **pzParams
){
  FedTable tab;
  FedPlan *pPlan = 0;
  PgParams params;
  int aResCol[FED_MAX_COLUMNS];
  char *zErr = 0;
  int i, rc;
  memset(&tab, 0, sizeof(tab));
  memset(&params, 0, sizeof(params));
  tab.zName = "t";
  tab.zRemote = "\"t\"";
  *pzSql = *pzParams = 0;
  rc = fedColumnsParse(PG_STORE, zColumns, &tab.aCol, &tab.nCol, &zErr);
  if( rc==SQLITE_OK ) rc = fedPgColumns(&tab, &zErr);
  if( rc==SQLITE_OK ) rc = fedPlanDecode(zPlan, &pPlan);
  /* Only plans the planner could make: orderable columns, pushable terms
  ** (others become IS NULL), and no IN list, whose value only SQLite's
  ** xFilter can give. */
  for(i=0; rc==SQLITE_OK && i<pPlan->nOrder; i++){
    if( pPlan->aOrderCol[i]>=tab.nCol
     || !fedPgOrderable(&tab, pPlan->aOrderCol[i], 0) ){
      rc = SQLITE_CORRUPT_VTAB;
    }
  }
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    FedPlanTerm *t = &pPlan->aTerm[i];
    if( t->op==FED_OP_IN ) t->op = FED_OP_EQ;
    if( t->iCol>=0 && t->iCol<tab.nCol
     && fedPgPushable(&tab, t->iCol, t->op, 0)==FED_PUSH_NO ){
      t->op = FED_OP_ISNULL;
    }
  }
  if( rc==SQLITE_OK ){
    rc = fedPgDeparseSelect(&tab, pPlan, nVal, apVal, 0, aResCol, pzSql,
                            &params);
  }
  if( rc==SQLITE_OK ){
    /* A kept SELECT reused for the same values must give the same text
    ** and bind the same values. */
    PgParams again;
    PgSelect *pSel;
    int rc2 = SQLITE_OK;
    memset(&again, 0, sizeof(again));
    fedPgSelectKeep(&tab, pPlan, nVal, apVal, 0, aResCol, *pzSql);
    pSel = fedPgSelectFind(&tab, pPlan, nVal, apVal, 0, &again, &rc2);
    if( pSel && rc2==SQLITE_OK ){
      int k;
      assert( strcmp(pSel->zSql, *pzSql)==0 );
      assert( again.n==params.n );
      for(k=0; k<again.n; k++){
        assert( again.aLen[k]==params.aLen[k] && again.aFmt[k]==params.aFmt[k] );
        assert( (again.aOff[k]<0)==(params.aOff[k]<0) );
        assert( again.aOff[k]<0 || memcmp(&again.aBuf[again.aOff[k]],
                          &params.aBuf[params.aOff[k]], params.aLen[k])==0 );
      }
    }
    fedPgParamsFree(&again);
    fedPgTableFree(&tab);
  }
  if( rc==SQLITE_OK ) *pzParams = fedPgParamsJson(&params);
  fedPgParamsFree(&params);
  fedPlanFree(pPlan);
  fedColumnsFree(tab.aCol, tab.nCol);
  sqlite3_free(zErr);
  return rc;
}

static void pgFuzzValue(sqlite3_context *ctx, const char *zType,
                        const char *z, int n){
  FedColumn col;
  memset(&col, 0, sizeof(col));
  col.zName = "c";
  col.zType = (char*)zType;
  col.eKind = fedPgKindOf(zType);
  fedPgValue(ctx, &col, z, n);
}

static void pgvalFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  pgFuzzValue(ctx, (const char*)sqlite3_value_text(argv[0]),
                 (const char*)sqlite3_value_text(argv[1]),
                 sqlite3_value_bytes(argv[1]));
}

#define MAX_PART 12

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  static sqlite3 *db = 0;
  char *zBuf;
  char *azPart[MAX_PART];
  int nPart = 0;
  size_t i;
  if( nData<2 || nData>4096 ) return 0;
  if( db==0 ){
    sqlite3_open(":memory:", &db);
    sqlite3_create_function(db, "pgval", 2, SQLITE_UTF8, 0, pgvalFunc, 0, 0);
  }
  zBuf = malloc(nData);
  memcpy(zBuf, aData+1, nData-1);
  zBuf[nData-1] = 0;
  azPart[nPart++] = zBuf;
  for(i=0; i<nData-1 && nPart<MAX_PART; i++){
    if( zBuf[i]==0 && i+1<nData-1 ) azPart[nPart++] = &zBuf[i+1];
  }

  if( (aData[0]&1)==0 && nPart>=2 ){
    sqlite3_value *apVal[MAX_PART];
    int nVal = 0, k;
    char *zSql = 0, *zParams = 0;
    for(k=2; k<nPart; k++){
      sqlite3_stmt *pStmt = 0;
      const char *z = azPart[k];
      sqlite3_prepare_v2(db, "SELECT ?1", -1, &pStmt, 0);
      switch( z[0] ){
        case 'i': sqlite3_bind_int64(pStmt, 1, strtoll(z+1, 0, 10)); break;
        case 'f': sqlite3_bind_double(pStmt, 1, strtod(z+1, 0)); break;
        case 'b': sqlite3_bind_blob(pStmt, 1, z+1, (int)strlen(z+1),
                                    SQLITE_TRANSIENT); break;
        case 'n': break;
        default:  sqlite3_bind_text(pStmt, 1, z[0] ? z+1 : z, -1,
                                    SQLITE_TRANSIENT); break;
      }
      sqlite3_step(pStmt);
      apVal[nVal++] = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
      sqlite3_finalize(pStmt);
    }
    pgFuzzDeparse(azPart[0], azPart[1], nVal, apVal, &zSql, &zParams);
    sqlite3_free(zSql);
    sqlite3_free(zParams);
    for(k=0; k<nVal; k++) sqlite3_value_free(apVal[k]);
  }else if( nPart>=2 ){
    sqlite3_stmt *pStmt = 0;
    sqlite3_prepare_v2(db, "SELECT pgval(?1, ?2)", -1, &pStmt, 0);
    sqlite3_bind_text(pStmt, 1, azPart[0], -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, azPart[1], -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      (void)sqlite3_column_text(pStmt, 0);
    }
    sqlite3_finalize(pStmt);
  }
  free(zBuf);
  return 0;
}
