/*
** fuzz_value.c: libFuzzer target for the value conversions of ext/value.c.
**
**   fedParseInt64   must accept exactly the [+-]digits texts that strtoll
**                   reads without ERANGE, with the same value;
**   fedDoubleText   must write text that strtod reads back as the same
**                   double, for the first 8 input bytes taken as a double
**                   and for the input itself when it is a number's text;
**   fedJsonQuote    must write valid JSON (SQLite's json_valid) that
**                   decodes (json_extract) to the input, for ASCII input.
**
** FED_FUZZ_SKIP_DOUBLE=1 in the environment skips the double round trip,
** so that the other checks can be fuzzed while a reported failure of it
** (testfixture/fuzz/crashes/) is open.
*/
#include "fedInt.h"
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static sqlite3 *db = 0;           /* In-memory database for json_valid */
static sqlite3_stmt *pJson = 0;   /* SELECT json_valid(?1), ... */
static int bSkipDouble = 0;       /* FED_FUZZ_SKIP_DOUBLE is set */

static void fail(const char *zWhat, const char *zDetail){
  fprintf(stderr, "fuzz_value: %s: %s\n", zWhat, zDetail ? zDetail : "");
  abort();
}

int LLVMFuzzerInitialize(int *pArgc, char ***pArgv){
  const char *z = getenv("FED_FUZZ_SKIP_DOUBLE");
  (void)pArgc; (void)pArgv;
  bSkipDouble = z && z[0] && z[0]!='0';
  if( sqlite3_open(":memory:", &db)!=SQLITE_OK
   || sqlite3_prepare_v2(db, "SELECT json_valid(?1),"
        " CASE WHEN ?3 THEN CAST(json_extract(?1, '$') AS BLOB)=?2 END",
        -1, &pJson, 0)!=SQLITE_OK ){
    fail("cannot prepare json_valid", sqlite3_errmsg(db));
  }
  return 0;
}

static void checkInt64(const char *z, int n){
  i64 v = 0, v2 = 0;
  int rc = fedParseInt64(z, n, &v);
  int i = (n>0 && (z[0]=='-' || z[0]=='+')) ? 1 : 0;
  int bPure = n>i;
  for(; i<n && bPure; i++){
    if( z[i]<'0' || z[i]>'9' ) bPure = 0;
  }
  if( !bPure ){
    if( rc==0 ) fail("fedParseInt64 accepted a non-integer", z);
    return;
  }
  {
    char *zCopy = malloc(n+1);
    long long r;
    char *zEnd = 0;
    memcpy(zCopy, z, n);
    zCopy[n] = 0;
    errno = 0;
    r = strtoll(zCopy, &zEnd, 10);
    if( errno==ERANGE ){
      if( rc==0 ) fail("fedParseInt64 accepted an out-of-range integer", zCopy);
    }else{
      if( rc!=0 ) fail("fedParseInt64 rejected an integer", zCopy);
      if( v!=r ) fail("fedParseInt64 differs from strtoll", zCopy);
      if( fedParseInt64(zCopy, -1, &v2) || v2!=v ){
        fail("fedParseInt64 with n<0 differs", zCopy);
      }
    }
    free(zCopy);
  }
}

static void checkDouble(double r, int nSmall){
  char zBuf[64];
  char *zSmall;
  fedDoubleText(r, zBuf, sizeof(zBuf));
  if( strlen(zBuf)>=sizeof(zBuf)-1 ) fail("fedDoubleText filled the buffer", zBuf);
  if( isinf(r) ){
    if( strcmp(zBuf, r<0 ? "-Infinity" : "Infinity")!=0 ){
      fail("fedDoubleText of an infinity", zBuf);
    }
  }else if( !isnan(r) && !bSkipDouble ){
    char *zEnd = 0;
    double r2 = strtod(zBuf, &zEnd);
    if( zEnd==zBuf || *zEnd!=0 ) fail("fedDoubleText wrote a non-number", zBuf);
    if( r2!=r ){
      char zMsg[160];
      snprintf(zMsg, sizeof(zMsg), "%.17g -> \"%s\" -> %.17g", r, zBuf, r2);
      fail("fedDoubleText does not round-trip", zMsg);
    }
  }
  /* A short buffer, exactly that size, must be truncated, not overrun. */
  zSmall = malloc(nSmall);
  fedDoubleText(r, zSmall, nSmall);
  if( strlen(zSmall)>=(size_t)nSmall ) fail("fedDoubleText overran", zSmall);
  free(zSmall);
}

static void checkJson(const uint8_t *aData, int nData){
  sqlite3_str *pStr = sqlite3_str_new(0);
  char *zJson;
  int nJson, i, bAscii = 1;
  for(i=0; i<nData; i++){
    if( aData[i]==0 || aData[i]>=0x80 ) bAscii = 0;
  }
  fedJsonQuote(pStr, (const char*)aData, nData);
  nJson = sqlite3_str_length(pStr);
  zJson = sqlite3_str_finish(pStr);
  if( zJson==0 ) fail("fedJsonQuote", "out of memory");
  if( (int)strlen(zJson)!=nJson ) fail("fedJsonQuote wrote a NUL", zJson);
  sqlite3_bind_text(pJson, 1, zJson, nJson, SQLITE_STATIC);
  sqlite3_bind_blob(pJson, 2, aData, nData, SQLITE_STATIC);
  sqlite3_bind_int(pJson, 3, bAscii);
  if( sqlite3_step(pJson)!=SQLITE_ROW ) fail("json_valid", sqlite3_errmsg(db));
  if( sqlite3_column_int(pJson, 0)!=1 ) fail("fedJsonQuote: invalid JSON", zJson);
  if( bAscii && sqlite3_column_int(pJson, 1)!=1 ){
    fail("fedJsonQuote: JSON does not decode to the input", zJson);
  }
  sqlite3_reset(pJson);
  sqlite3_clear_bindings(pJson);
  sqlite3_free(zJson);

  pStr = sqlite3_str_new(0);
  fedJsonQuote(pStr, 0, 0);
  zJson = sqlite3_str_finish(pStr);
  if( zJson==0 || strcmp(zJson, "null")!=0 ) fail("fedJsonQuote(NULL)", zJson);
  sqlite3_free(zJson);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  int nSmall;
  if( nData>4096 ) return 0;
  nSmall = 1 + (nData ? aData[nData-1]%24 : 0);

  checkInt64((const char*)aData, (int)nData);

  if( nData>=8 ){
    double r;
    memcpy(&r, aData, 8);
    checkDouble(r, nSmall);
  }
  if( nData>0 && nData<64 ){
    char zNum[64];
    char *zEnd = 0;
    double r;
    memcpy(zNum, aData, nData);
    zNum[nData] = 0;
    r = strtod(zNum, &zEnd);
    if( zEnd!=zNum && *zEnd==0 ) checkDouble(r, nSmall);
  }

  checkJson(aData, (int)nData);
  return 0;
}
