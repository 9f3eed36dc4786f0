/*
** fuzz_pg.c: libFuzzer target for the PostgreSQL store's command builder
** and value decoder (vtab/postgres.c, through fedPgFuzzDeparse and
** fedPgFuzzValue), without a server.
**
** Input: a mode byte, then NUL-separated parts.
**   mode even: columns spec, plan text (idxStr), then values, each a type
**              letter (i f t b n) and its text: the SELECT is built.
**   mode odd:  a PostgreSQL type name and a value text: the value is
**              decoded as SQLite would receive it.
*/
#include "fedInt.h"
#include <stdint.h>
#include <stdlib.h>

int fedPgFuzzDeparse(const char *zColumns, const char *zPlan, int nVal,
                     sqlite3_value **apVal, char **pzSql, char **pzParams);
void fedPgFuzzValue(sqlite3_context *ctx, const char *zType, const char *z,
                    int n);

static void pgvalFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  fedPgFuzzValue(ctx, (const char*)sqlite3_value_text(argv[0]),
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
    fedPgFuzzDeparse(azPart[0], azPart[1], nVal, apVal, &zSql, &zParams);
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
