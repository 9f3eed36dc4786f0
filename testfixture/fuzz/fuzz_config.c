/*
** fuzz_config.c: libFuzzer target for ext/config.c, the option parser,
** the column specification language, the secret detector and fedUnquote.
**
** The input is split at its first NUL or newline: the part before it is an
** options string (fedConfigParseString, as fed_server() options and table
** arguments), the part after it a column specification (fedColumnsParse,
** as columns='...').  Both parts also go through fedHasSecret and
** fedUnquote.  Memory errors and leaks are the sanitizers' to find; this
** file checks that a column list of realistic types survives
** fedColumnsRender and a second parse unchanged, which is what reopening a
** table whose columns were discovered relies on (fed_tables.columns).
*/
#include "fedInt.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The options a postgres table (server, columns, table, batch_size) and
** a postgres server (password_env, connect_timeout) accept. */
static const char *const azAllowed[] = {
  "server", "columns", "table", "batch_size", "password_env",
  "connect_timeout", 0
};

static void fail(const char *zWhat, const char *zDetail){
  fprintf(stderr, "fuzz_config: %s: %s\n", zWhat, zDetail ? zDetail : "");
  abort();
}

/* A type as PostgreSQL's format_type() spells one: letters, digits, '_',
** single inner spaces, and balanced (...) and [...] with commas only
** inside them.  Types outside this set may legitimately not round-trip
** (an unquoted quote character, say). */
static int typeIsPlain(const char *z){
  int depth = 0, i, n = (int)strlen(z);
  if( n==0 || z[0]==' ' || z[n-1]==' ' ) return 0;
  for(i=0; i<n; i++){
    char c = z[i];
    if( (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
     || c=='_' || c=='.' ) continue;
    if( c==' ' ){
      if( z[i+1]==' ' ) return 0;
      continue;
    }
    if( c=='(' || c=='[' ){ depth++; continue; }
    if( c==')' || c==']' ){
      if( --depth<0 ) return 0;
      continue;
    }
    if( c==',' && depth>0 ) continue;
    return 0;
  }
  return depth==0;
}

static void checkConfig(const char *zOpt){
  FedConfig *pCfg = 0;
  char *zErr = 0;
  int rc = fedConfigParseString("fuzz", zOpt, azAllowed, &pCfg, &zErr);
  if( rc==SQLITE_OK ){
    int i;
    i64 v;
    if( pCfg==0 ) fail("fedConfigParseString", "SQLITE_OK without a config");
    for(i=0; i<pCfg->nOpt; i++){
      if( fedConfigGet(pCfg, pCfg->azKey[i])!=pCfg->azVal[i] ){
        fail("fedConfigGet", pCfg->azKey[i]);
      }
    }
    if( fedConfigInt(pCfg, "batch_size", 100, 1, 10000, &v, "fuzz", &zErr) ){
      if( zErr==0 ) fail("fedConfigInt", "error without a message");
    }
    fedConfigInt(pCfg, "connect_timeout", 10, 1, 3600, &v, "fuzz", &zErr);
  }else{
    if( pCfg ) fail("fedConfigParseString", "config left after an error");
    if( rc!=SQLITE_NOMEM && zErr==0 ){
      fail("fedConfigParseString", "error without a message");
    }
  }
  fedConfigFree(pCfg);
  sqlite3_free(zErr);
}

static void checkColumns(const char *zSpec){
  FedColumn *aCol = 0, *aCol2 = 0;
  int nCol = 0, nCol2 = 0, i, bPlain = 1, rc;
  char *zErr = 0;
  char *zRender = 0;

  rc = fedColumnsParse("fuzz", zSpec, &aCol, &nCol, &zErr);
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_NOMEM && zErr==0 ) fail("fedColumnsParse", "no message");
    sqlite3_free(zErr);
    return;
  }
  if( nCol<1 || nCol>FED_MAX_COLUMNS ) fail("fedColumnsParse", "bad nCol");
  for(i=0; i<nCol; i++){
    if( aCol[i].zName==0 || aCol[i].zType==0 ) fail("fedColumnsParse", "NULL");
    if( !typeIsPlain(aCol[i].zType) ) bPlain = 0;
  }
  zRender = fedColumnsRender(aCol, nCol);
  if( zRender==0 ) fail("fedColumnsRender", "NULL");
  if( bPlain ){
    rc = fedColumnsParse("fuzz", zRender, &aCol2, &nCol2, &zErr);
    if( rc!=SQLITE_OK ) fail("re-parse of rendered columns failed", zRender);
    if( nCol2!=nCol ) fail("re-parse changed the column count", zRender);
    for(i=0; i<nCol; i++){
      if( strcmp(aCol[i].zName, aCol2[i].zName)
       || strcmp(aCol[i].zType, aCol2[i].zType)
       || aCol[i].bPk!=aCol2[i].bPk
       || aCol[i].bNotNull!=aCol2[i].bNotNull
       || aCol[i].bDefault!=aCol2[i].bDefault ){
        fail("re-parse changed a column", zRender);
      }
    }
    fedColumnsFree(aCol2, nCol2);
  }
  sqlite3_free(zRender);
  sqlite3_free(zErr);
  fedColumnsFree(aCol, nCol);
}

/* fedUnquote(z, n) with n<0 reads to the terminator. */
static void checkUnquote(const char *z, int n){
  char *zOut = fedUnquote(z, n);
  if( zOut==0 ) fail("fedUnquote", "NULL");
  if( strlen(zOut)>strlen(z) ) fail("fedUnquote", "output longer than input");
  sqlite3_free(zOut);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  char *zBuf;
  const char *zA, *zB;
  size_t iSplit;
  if( nData>65536 ) return 0;
  /* One copy with a terminator after each part. */
  zBuf = malloc(nData+2);
  if( zBuf==0 ) return 0;
  memcpy(zBuf, aData, nData);
  zBuf[nData] = 0;
  zBuf[nData+1] = 0;
  for(iSplit=0; iSplit<nData && zBuf[iSplit] && zBuf[iSplit]!='\n'; iSplit++){}
  zBuf[iSplit] = 0;
  zA = zBuf;
  zB = &zBuf[iSplit+1];

  checkConfig(zA);
  checkColumns(zB);
  fedHasSecret(zA);
  fedHasSecret(zB);
  checkUnquote(zA, (int)strlen(zA));
  checkUnquote(zB, -1);

  free(zBuf);
  return 0;
}
