/*
** value.c: conversions between SQLite values and the text, JSON and
** numbers that stores speak, shared by every store; and the small string
** helpers (errors, copies) the rest of ext/ uses.
*/
#include "fedInt.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <locale.h>

char *fedStrdup(const char *z, int n){
  char *zOut;
  if( z==0 ) return 0;
  if( n<0 ) n = (int)strlen(z);
  zOut = sqlite3_malloc64((sqlite3_uint64)n+1);
  if( zOut ){
    memcpy(zOut, z, n);
    zOut[n] = 0;
  }
  return zOut;
}

void fedSetError(char **pz, const char *zFmt, ...){
  va_list ap;
  if( pz==0 ) return;
  sqlite3_free(*pz);
  va_start(ap, zFmt);
  *pz = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
}

int fedErrorRc(int rc, const char *zErr){
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && zErr==0 ) return SQLITE_NOMEM;
  return rc;
}

int fedVtabSetError(sqlite3_vtab *pVtab, int rc, char *zErr){
  if( rc!=SQLITE_OK ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = zErr;
  }else{
    sqlite3_free(zErr);
  }
  return fedErrorRc(rc, zErr);
}

void fedResultError(sqlite3_context *ctx, int rc, const char *zErr){
  if( fedErrorRc(rc, zErr)==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zErr, -1);
  }
}

int fedStrICmp(const char *a, const char *b){
  return sqlite3_stricmp(a, b);
}

int fedParseInt64(const char *z, int n, i64 *piOut){
  u64 v = 0;
  int i = 0, bNeg = 0;
  if( n<0 ) n = (int)strlen(z);
  if( n==0 ) return 1;
  if( z[0]=='-' || z[0]=='+' ){
    bNeg = z[0]=='-';
    i = 1;
    if( n==1 ) return 1;
  }
  for(; i<n; i++){
    unsigned d = (unsigned)(z[i]-'0');
    if( d>9 ) return 1;
    if( v>(((u64)1)<<63)/10 ) return 1;
    v = v*10 + d;
    if( v>(((u64)1)<<63) ) return 1;
  }
  if( !bNeg && v>(u64)0x7fffffffffffffffLL ) return 1;
  *piOut = bNeg ? (i64)(0-v) : (i64)v;
  return 0;
}

int fedValueNumericType(sqlite3_value *p){
  return sqlite3_value_numeric_type(p);
}

/*
** The C library's printf and strtod are correctly rounded (SQLite's %g
** works in long double and is not, for some doubles above 1e100), but
** follow LC_NUMERIC: both run under the "C" locale here.
*/
static locale_t cLocale(void){
  static locale_t loc = (locale_t)0;
  if( loc==(locale_t)0 ) loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
  return loc;
}

/*
** The text of fedDoubleText() without printf, for the common doubles that
** are the nearest double to a decimal m/10^k with at most 15 significant
** digits and k<=6 (1.5, 0.25, 12345.678): printf("%.15g") writes exactly
** that decimal (it has at most 15 digits, and r is within 2^-53 of it
** relative, less than half a unit of the 15th digit), and it reads back as
** r, so the general loop would stop there too.  Fixed notation, as %g
** uses it for 1e-4 <= |r| < 1e15.  Returns 0 when r is not such a double
** (then nothing is written).  About 20x cheaper than snprintf + strtod.
*/
static int doubleTextFast(double r, char *zBuf, int nBuf){
  static const double aPow[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
  double a = r<0 ? -r : r;
  int k;
  if( !(a>=1e-4 && a<1e15) || nBuf<40 ) return 0;
  for(k=0; k<(int)(sizeof(aPow)/sizeof(aPow[0])); k++){
    double s = a*aPow[k];
    u64 m, iInt, iFrac;
    char zDigit[24];
    int n = 0, i, j = 0;
    if( s>=1e15 ) return 0;
    m = (u64)s;
    if( s-(double)m>=0.5 ) m++;
    if( (double)m/aPow[k]!=a ) continue;
    iInt = m / (u64)aPow[k];
    iFrac = m % (u64)aPow[k];
    if( r<0 ) zBuf[j++] = '-';
    do{ zDigit[n++] = (char)('0' + iInt%10); iInt /= 10; }while( iInt );
    while( n>0 ) zBuf[j++] = zDigit[--n];
    if( iFrac ){
      int nFrac = k;
      while( iFrac%10==0 ){ iFrac /= 10; nFrac--; }
      zBuf[j++] = '.';
      for(i=nFrac-1; i>=0; i--){ zBuf[j+i] = (char)('0' + iFrac%10); iFrac /= 10; }
      j += nFrac;
    }
    zBuf[j] = 0;
    return 1;
  }
  return 0;
}

void fedDoubleText(double r, char *zBuf, int nBuf){
  if( doubleTextFast(r, zBuf, nBuf) ) return;
  if( isinf(r) ){
    sqlite3_snprintf(nBuf, zBuf, "%s", r<0 ? "-Infinity" : "Infinity");
  }else{
    /* The shortest form that reads back as the same double. */
    locale_t loc = cLocale();
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    int nDigit;
    for(nDigit=15; nDigit<=17; nDigit++){
      snprintf(zBuf, nBuf, "%.*g", nDigit, r);
      if( strtod(zBuf, 0)==r ) break;
    }
    if( old ) uselocale(old);
  }
}

void fedJsonQuote(sqlite3_str *pStr, const char *z, int n){
  static const char aHex[] = "0123456789abcdef";
  int i;
  if( z==0 ){
    sqlite3_str_append(pStr, "null", 4);
    return;
  }
  if( n<0 ) n = (int)strlen(z);
  sqlite3_str_appendchar(pStr, 1, '"');
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    if( c=='"' || c=='\\' ){
      sqlite3_str_appendchar(pStr, 1, '\\');
      sqlite3_str_appendchar(pStr, 1, (char)c);
    }else if( c<0x20 ){
      switch( c ){
        case '\n': sqlite3_str_append(pStr, "\\n", 2); break;
        case '\t': sqlite3_str_append(pStr, "\\t", 2); break;
        case '\r': sqlite3_str_append(pStr, "\\r", 2); break;
        default: {
          char zEsc[7] = { '\\', 'u', '0', '0', aHex[c>>4], aHex[c&15], 0 };
          sqlite3_str_append(pStr, zEsc, 6);
        }
      }
    }else{
      sqlite3_str_appendchar(pStr, 1, (char)c);
    }
  }
  sqlite3_str_appendchar(pStr, 1, '"');
}
