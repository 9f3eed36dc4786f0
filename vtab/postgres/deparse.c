/*
** deparse.c: building remote SQL, pure (postgres_fdw's deparse.c): turns
** a plan and values into SQL text and bound parameters without I/O or
** libpq, so that the fuzz target (testfixture/fuzz/fuzz_pg.c) links it
** without a server.  Owns the parameter buffer (PgParams), what may be
** pushed and its exact text, the SELECTs kept per table, and the values,
** placeholders and text of INSERT, UPDATE, DELETE and COPY.
*/
#include "pgInt.h"
#include <math.h>

/**************************************************************************
** Parameters.
*/
void fedPgParamsReset(PgParams *p){
  p->n = 0;
  p->nBuf = 0;
}

void fedPgParamsFree(PgParams *p){
  sqlite3_free(p->aOff);
  sqlite3_free(p->aLen);
  sqlite3_free(p->aFmt);
  sqlite3_free(p->aBuf);
  memset(p, 0, sizeof(*p));
}

/* The bytes of a blob or text value, never NULL (an empty blob gives a
** NULL pointer from sqlite3_value_blob, which would read as SQL NULL). */
const char *fedPgValueBytes(sqlite3_value *p){
  const char *z = (const char*)sqlite3_value_blob(p);
  return z ? z : "";
}

/* Append one parameter (z==0: NULL).  Returns SQLITE_OK or NOMEM. */
int fedPgParamsAdd(PgParams *p, const char *z, int n, int bBinary){
  if( p->n>=p->nAlloc ){
    int nNew = p->nAlloc ? p->nAlloc*2 : 16;
    i64 *aOff = sqlite3_realloc64(p->aOff, sizeof(i64)*nNew);
    int *aLen, *aFmt;
    if( aOff==0 ) return SQLITE_NOMEM;
    p->aOff = aOff;
    aLen = sqlite3_realloc64(p->aLen, sizeof(int)*nNew);
    if( aLen==0 ) return SQLITE_NOMEM;
    p->aLen = aLen;
    aFmt = sqlite3_realloc64(p->aFmt, sizeof(int)*nNew);
    if( aFmt==0 ) return SQLITE_NOMEM;
    p->aFmt = aFmt;
    p->nAlloc = nNew;
  }
  if( z==0 ){
    p->aOff[p->n] = -1;
    p->aLen[p->n] = 0;
  }else{
    if( n<0 ) n = (int)strlen(z);
    if( p->nBuf+n+1>p->nBufAlloc ){
      i64 nNew = p->nBufAlloc ? p->nBufAlloc*2 : 256;
      char *a;
      while( nNew<p->nBuf+n+1 ) nNew *= 2;
      a = sqlite3_realloc64(p->aBuf, nNew);
      if( a==0 ) return SQLITE_NOMEM;
      p->aBuf = a;
      p->nBufAlloc = nNew;
    }
    memcpy(&p->aBuf[p->nBuf], z, n);
    p->aBuf[p->nBuf+n] = 0;
    p->aOff[p->n] = p->nBuf;
    p->aLen[p->n] = n;
    p->nBuf += n+1;
  }
  p->aFmt[p->n] = bBinary;
  p->n++;
  return SQLITE_OK;
}

/* Append an integer as its decimal text (by hand: this is every key of
** every lookup, and a formatted print costs more than the rest). */
int fedPgParamsAddInt(PgParams *p, i64 v){
  char zBuf[24];
  char *z = &zBuf[sizeof(zBuf)];
  u64 u = v<0 ? -(u64)v : (u64)v;
  do{
    *--z = (char)('0' + u%10);
    u /= 10;
  }while( u );
  if( v<0 ) *--z = '-';
  return fedPgParamsAdd(p, z, (int)(&zBuf[sizeof(zBuf)] - z), 0);
}

/* Append a value as it is, for a pass-through: NULL, a real as its
** shortest round-trip text, a blob as binary, anything else as text. */
int fedPgParamsAddValue(PgParams *p, sqlite3_value *pVal){
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:
      return fedPgParamsAdd(p, 0, 0, 0);
    case SQLITE_FLOAT: {
      char zBuf[64];
      fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
      return fedPgParamsAdd(p, zBuf, -1, 0);
    }
    case SQLITE_BLOB:
      return fedPgParamsAdd(p, fedPgValueBytes(pVal),
                            sqlite3_value_bytes(pVal), 1);
  }
  return fedPgParamsAdd(p, (const char*)sqlite3_value_text(pVal),
                        sqlite3_value_bytes(pVal), 0);
}

/* The values array libpq wants; sqlite3_malloc'd. */
const char **fedPgParamsValues(PgParams *p){
  const char **az = sqlite3_malloc64(sizeof(char*)*(p->n+1));
  int i;
  if( az==0 ) return 0;
  for(i=0; i<p->n; i++){
    az[i] = p->aOff[i]<0 ? 0 : &p->aBuf[p->aOff[i]];
  }
  return az;
}

/* Bound values as a JSON array for fed_explain (long lists shortened). */
char *fedPgParamsJson(PgParams *p){
  sqlite3_str *s;
  int i;
  if( p->n==0 ) return 0;
  s = sqlite3_str_new(0);
  sqlite3_str_appendchar(s, 1, '[');
  for(i=0; i<p->n; i++){
    if( i ) sqlite3_str_appendchar(s, 1, ',');
    if( i>=20 ){
      sqlite3_str_appendf(s, "\"... %d more\"", p->n - i);
      break;
    }
    if( p->aOff[i]<0 ){
      sqlite3_str_appendall(s, "null");
    }else if( p->aFmt[i] ){
      sqlite3_str_appendf(s, "\"<%d bytes>\"", p->aLen[i]);
    }else{
      fedJsonQuote(s, &p->aBuf[p->aOff[i]], p->aLen[i]);
    }
  }
  sqlite3_str_appendchar(s, 1, ']');
  return sqlite3_str_finish(s);
}

/* Append a double-quoted identifier. */
void fedPgQuoteIdent(sqlite3_str *s, const char *z, int n){
  int i;
  if( n<0 ) n = (int)strlen(z);
  sqlite3_str_appendchar(s, 1, '"');
  for(i=0; i<n; i++){
    if( z[i]=='"' ) sqlite3_str_appendchar(s, 1, '"');
    sqlite3_str_appendchar(s, 1, z[i]);
  }
  sqlite3_str_appendchar(s, 1, '"');
}

/**************************************************************************
** Deparse: what may run remotely, and the text of it.
*/

/* The comparison class of a kind, or -1 if comparisons are not pushed. */
static int kindClass(int eKind){
  switch( eKind ){
    case PG_INT: case PG_BOOL: case PG_FLOAT: return CLASS_NUM;
    case PG_TEXT: case PG_TSTZ: case PG_OTHER: case PG_ARRAY: return CLASS_TEXT;
    case PG_BYTEA: return CLASS_BLOB;
  }
  return -1;
}

/*
** Append the expression whose order and equality, in PostgreSQL, are
** exactly those SQLite applies to the value federate returns for the
** column.  bText: the text form, for LIKE and GLOB.
*/
static void pgColumnExpr(sqlite3_str *s, const FedColumn *pCol, int bText){
  switch( pCol->eKind ){
    case PG_INT:
      fedPgQuoteIdent(s, pCol->zName, -1);
      if( bText ) sqlite3_str_appendall(s, "::text COLLATE \"C\"");
      break;
    case PG_BOOL:
      fedPgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, bText ? "::int::text COLLATE \"C\"" : "::int");
      break;
    case PG_FLOAT:
      sqlite3_str_appendall(s, "NULLIF(");
      fedPgQuoteIdent(s, pCol->zName, -1);
      if( pCol->zType && (sqlite3_stricmp(pCol->zType, "real")==0
                       || sqlite3_stricmp(pCol->zType, "float4")==0) ){
        /* SQLite gets the double of real's shortest text (0.1), not the
        ** float4 widened (0.100000001490116): compare that one. */
        sqlite3_str_appendall(s, "::text::float8");
      }
      sqlite3_str_appendall(s, ", 'NaN')");
      break;
    case PG_TEXT:
      fedPgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, " COLLATE \"C\"");
      break;
    case PG_TSTZ:
      sqlite3_str_appendall(s, "regexp_replace(");
      fedPgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, "::text, '\\+00$', '+00:00') COLLATE \"C\"");
      break;
    case PG_ARRAY:
      sqlite3_str_appendall(s, "to_json(");
      fedPgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, ")::text COLLATE \"C\"");
      break;
    case PG_OTHER:
      fedPgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, "::text COLLATE \"C\"");
      break;
    default:
      fedPgQuoteIdent(s, pCol->zName, -1);
      break;
  }
}

int fedPgPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  const FedColumn *pCol = &pTab->aCol[iCol];
  int eClass = kindClass(pCol->eKind);
  if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ){
    /* NaN reads as NULL, so IS NULL on floats is pushed as NULLIF(..). */
    return FED_PUSH_EXACT;
  }
  if( op==FED_OP_LIKE || op==FED_OP_GLOB ){
    switch( pCol->eKind ){
      case PG_INT: case PG_BOOL: case PG_TEXT: case PG_TSTZ: case PG_OTHER:
      case PG_ARRAY:
        /* The regex is exactly SQLite's built-in LIKE, but PRAGMA
        ** case_sensitive_like can make LIKE stricter, unseen from here:
        ** SQLite re-checks LIKE.  GLOB cannot change. */
        return op==FED_OP_LIKE ? FED_PUSH_LOOSE : FED_PUSH_EXACT;
    }
    return FED_PUSH_NO;
  }
  if( eClass<0 ) return FED_PUSH_NO;
  if( eClass==CLASS_TEXT ){
    /* "Type conversions prior to comparison": a number compared with a
    ** TEXT column becomes text when it has no affinity (a literal 10), but
    ** if it has INTEGER or REAL affinity (CAST(10 AS INTEGER), a column of
    ** another table) the column's text becomes a number where it looks
    ** like one ('010' = 10).  Both arrive here as the integer 10, so a
    ** number is SQLite's to compare.  A text value is compared as text
    ** either way, except that an operand of numeric affinity turns the
    ** numeric-looking column values into numbers: only equality keeps a
    ** superset then (a number never equals text); see pgDeparseTerm(). */
    if( pRhs==0 ) return FED_PUSH_LOOSE;
    if( sqlite3_value_type(pRhs)==SQLITE_INTEGER
     || sqlite3_value_type(pRhs)==SQLITE_FLOAT ){
      return FED_PUSH_NO;
    }
    if( sqlite3_value_type(pRhs)==SQLITE_TEXT ){
      /* A text parameter ends at a NUL; SQLite compares every byte. */
      const char *z = (const char*)sqlite3_value_text(pRhs);
      if( z && memchr(z, 0, sqlite3_value_bytes(pRhs)) ) return FED_PUSH_NO;
    }
  }
  return FED_PUSH_EXACT;
}

int fedPgOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)bDesc;
  return kindClass(pTab->aCol[iCol].eKind)>=0;
}

/* The class of a constraint value, after the column's affinity. */
static int valueClass(sqlite3_value *pVal, int eColClass, sqlite3_value **ppConv){
  int eType = sqlite3_value_type(pVal);
  *ppConv = 0;
  if( eType==SQLITE_TEXT && eColClass==CLASS_NUM ){
    /* Numeric affinity: text that looks like a number becomes one. */
    sqlite3_value *pDup = sqlite3_value_dup(pVal);
    if( pDup ){
      eType = sqlite3_value_numeric_type(pDup);
      if( eType!=SQLITE_TEXT ){
        *ppConv = pDup;
      }else{
        sqlite3_value_free(pDup);
      }
    }
  }
  switch( eType ){
    case SQLITE_NULL: return CLASS_NULL;
    case SQLITE_INTEGER: case SQLITE_FLOAT: return CLASS_NUM;
    case SQLITE_TEXT: return CLASS_TEXT;
  }
  return CLASS_BLOB;
}

/* Append "TRUE" or "FALSE" or "<expr> IS NOT NULL" for a comparison whose
** outcome follows from the classes alone. */
static void pgConstCondition(
  sqlite3_str *s, const FedColumn *pCol, int op, int eColClass, int eValClass
){
  int bTrue;
  if( eValClass==CLASS_NULL ){
    bTrue = 0;
  }else switch( op ){
    case FED_OP_EQ: case FED_OP_IS: bTrue = 0; break;
    case FED_OP_NE: bTrue = 1; break;
    case FED_OP_ISNOT: sqlite3_str_appendall(s, "TRUE"); return;
    case FED_OP_LT: case FED_OP_LE: bTrue = eColClass<eValClass; break;
    default: bTrue = eColClass>eValClass; break;
  }
  if( bTrue ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, " IS NOT NULL");
  }else{
    sqlite3_str_appendall(s, "FALSE");
  }
}

static const char *pgOpText(int op){
  switch( op ){
    case FED_OP_EQ: return "=";
    case FED_OP_GT: return ">";
    case FED_OP_LE: return "<=";
    case FED_OP_LT: return "<";
    case FED_OP_GE: return ">=";
    case FED_OP_NE: return "<>";
    case FED_OP_IS: return "IS NOT DISTINCT FROM";
    case FED_OP_ISNOT: return "IS DISTINCT FROM";
  }
  return "=";
}

/* True if the integer v is exactly a double. */
static int pgIntIsDouble(i64 v){
  double r = (double)v;
  if( r>=9223372036854775808.0 || r<-9223372036854775808.0 ) return 0;
  return (i64)r==v;
}

/* The range of the values PostgreSQL holds in an integer column (as
** pgColumnExpr() reads it): a constant outside it would make PostgreSQL
** fail ("out of range for type integer") where SQLite simply compares. */
static void pgIntRange(const FedColumn *pCol, i64 *pMin, i64 *pMax){
  const char *z = pCol->zType ? pCol->zType : "";
  if( pCol->eKind==PG_BOOL ){
    *pMin = 0; *pMax = 1;
  }else if( sqlite3_stricmp(z, "smallint")==0 || sqlite3_stricmp(z, "int2")==0
         || sqlite3_stricmp(z, "smallserial")==0 ){
    *pMin = -32768; *pMax = 32767;
  }else if( sqlite3_stricmp(z, "integer")==0 || sqlite3_stricmp(z, "int")==0
         || sqlite3_stricmp(z, "int4")==0 || sqlite3_stricmp(z, "serial")==0 ){
    *pMin = -2147483647-1; *pMax = 2147483647;
  }else if( sqlite3_stricmp(z, "oid")==0 ){
    *pMin = 0; *pMax = 4294967295LL;
  }else{
    *pMin = -9223372036854775807LL-1; *pMax = 9223372036854775807LL;
  }
}

/* "col <op> v" where v lies beyond every value of column pCol (above
** them all if bAbove, else below): the answer follows from that side
** alone.  Append TRUE, FALSE or "<col> IS NOT NULL".  IS NOT is one word,
** TRUE (NULL IS NOT v holds too), never "x OR TRUE": the terms are joined
** with AND unparenthesised. */
static void pgBeyondRange(sqlite3_str *s, const FedColumn *pCol, int op,
                          int bAbove){
  int bTrue;
  switch( op ){
    case FED_OP_LT: case FED_OP_LE: bTrue = bAbove; break;
    case FED_OP_GT: case FED_OP_GE: bTrue = !bAbove; break;
    case FED_OP_NE: case FED_OP_ISNOT: bTrue = 1; break;
    default: bTrue = 0; break;
  }
  if( op==FED_OP_ISNOT ){
    sqlite3_str_appendall(s, "TRUE");
  }else if( bTrue ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, " IS NOT NULL");
  }else{
    sqlite3_str_appendall(s, "FALSE");
  }
}

/* If the integer v lies outside the range of integer column pCol, the
** comparison "col <op> v" follows from the side v lies on: append it
** (pgBeyondRange) and return 1.  Else return 0. */
static int pgIntOutside(sqlite3_str *s, const FedColumn *pCol, int op, i64 v){
  i64 mn, mx;
  pgIntRange(pCol, &mn, &mx);
  if( v>=mn && v<=mx ) return 0;
  pgBeyondRange(s, pCol, op, v>mx);
  return 1;
}

/* Append the value of a number-class comparison as a parameter.  For an
** integer column and a real value, rewrite to an exact integer comparison
** (x < 1.5 is x <= 1), since PostgreSQL would compare in floating point.
** Returns 0 if the condition was fully written, else the op to use. */
static int pgNumParam(
  sqlite3_str *s, PgParams *pParams, const FedColumn *pCol, int op,
  sqlite3_value *pVal, int *pRc
){
  char zBuf[64];
  if( sqlite3_value_type(pVal)==SQLITE_INTEGER ){
    i64 v = sqlite3_value_int64(pVal);
    if( pCol->eKind==PG_FLOAT && !pgIntIsDouble(v) ){
      /* No double equals v: compare with the doubles either side of it,
      ** exactly, where PostgreSQL would round v first. */
      double r = (double)v, lo, hi;
      int bAbove = r>=9223372036854775808.0 || (i64)r>v;
      lo = bAbove ? nextafter(r, -HUGE_VAL) : r;
      hi = bAbove ? r : nextafter(r, HUGE_VAL);
      switch( op ){
        case FED_OP_LT: case FED_OP_LE:
          fedDoubleText(lo, zBuf, sizeof(zBuf));
          *pRc = fedPgParamsAdd(pParams, zBuf, -1, 0);
          return FED_OP_LE;
        case FED_OP_GT: case FED_OP_GE:
          fedDoubleText(hi, zBuf, sizeof(zBuf));
          *pRc = fedPgParamsAdd(pParams, zBuf, -1, 0);
          return FED_OP_GE;
        case FED_OP_NE:
          pgColumnExpr(s, pCol, 0);
          sqlite3_str_appendall(s, " IS NOT NULL");
          return 0;
        default:
          sqlite3_str_appendall(s, op==FED_OP_ISNOT ? "TRUE" : "FALSE");
          return 0;
      }
    }
    if( pCol->eKind!=PG_FLOAT && pgIntOutside(s, pCol, op, v) ) return 0;
    *pRc = fedPgParamsAddInt(pParams, v);
    return op;
  }
  if( pCol->eKind==PG_FLOAT ){
    fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
    *pRc = fedPgParamsAdd(pParams, zBuf, -1, 0);
    return op;
  }else{
    double r = sqlite3_value_double(pVal);
    double f = floor(r), c = ceil(r);
    int bIntegral = (f==r);
    if( r>=9223372036854775807.0 || r<-9223372036854775808.0 ){
      /* Beyond every integer: decided by the sign alone. */
      pgBeyondRange(s, pCol, op, r>0);
      return 0;
    }
    switch( op ){
      case FED_OP_LT: case FED_OP_GE:
        if( pgIntOutside(s, pCol, op, (i64)c) ) return 0;
        *pRc = fedPgParamsAddInt(pParams, (i64)c);
        return op;
      case FED_OP_LE: case FED_OP_GT:
        if( pgIntOutside(s, pCol, op, (i64)f) ) return 0;
        *pRc = fedPgParamsAddInt(pParams, (i64)f);
        return op;
      default:
        if( bIntegral ){
          if( pgIntOutside(s, pCol, op, (i64)r) ) return 0;
          *pRc = fedPgParamsAddInt(pParams, (i64)r);
          return op;
        }
        /* = or IS a non-integral real: never; <> or IS NOT: always. */
        if( op==FED_OP_NE ){
          pgColumnExpr(s, pCol, 0);
          sqlite3_str_appendall(s, " IS NOT NULL");
        }else{
          sqlite3_str_appendall(s, op==FED_OP_ISNOT ? "TRUE" : "FALSE");
        }
        return 0;
    }
  }
}

/* Read one UTF-8 character at *pz (advancing it); returns its code point. */
static unsigned pgUtf8Read(const unsigned char **pz){
  const unsigned char *z = *pz;
  unsigned c = *z++;
  if( c>=0xc0 ){
    int nMore = c>=0xf0 ? 3 : (c>=0xe0 ? 2 : 1);
    c &= (0x3f >> nMore);
    while( nMore-- && (*z & 0xc0)==0x80 ) c = (c<<6) | (*z++ & 0x3f);
  }
  *pz = z;
  return c;
}

/* Append code point c as a regular-expression escape (\uXXXX). */
static void pgRegexChar(sqlite3_str *s, unsigned c){
  if( (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9') ){
    sqlite3_str_appendchar(s, 1, (char)c);
  }else if( c<0x10000 ){
    sqlite3_str_appendf(s, "\\u%04x", c);
  }else{
    sqlite3_str_appendf(s, "\\U%08x", c);
  }
}

/*
** Translate a GLOB set starting at *pp (on the '[') the way SQLite reads
** it: "^" first inverts; "]" first is a literal; "a-z" is a range when a
** single character precedes the "-" and something other than "]" follows
** (a range resets that, so "a-c-e" is a-c, "-", "e"); a reversed range
** matches nothing.  Returns non-zero if the set is not terminated.
*/
static int pgGlobSet(sqlite3_str *s, const unsigned char **pp){
  const unsigned char *z = *pp + 1;
  unsigned *aLo, *aHi;            /* Members: ranges lo..hi */
  int n = 0, i;
  int bInvert = 0;
  int bPrior = 0;                 /* aLo[n-1] may start a range */
  aLo = sqlite3_malloc64(sizeof(unsigned)*2*(strlen((const char*)z)+1));
  if( aLo==0 ){
    *pp = z + strlen((const char*)z);
    return 1;
  }
  aHi = &aLo[strlen((const char*)z)+1];
  if( *z=='^' ){ bInvert = 1; z++; }
  if( *z==']' ){ aLo[n] = aHi[n] = ']'; n++; z++; }
  while( *z && *z!=']' ){
    unsigned c = pgUtf8Read(&z);
    if( c=='-' && *z!=']' && *z!=0 && bPrior ){
      unsigned hi = pgUtf8Read(&z);
      if( aLo[n-1]<=hi ){
        aHi[n-1] = hi;
      }
      /* A reversed range still matched its first character. */
      bPrior = 0;
    }else{
      aLo[n] = aHi[n] = c;
      n++;
      bPrior = 1;
    }
  }
  if( *z==0 ){
    sqlite3_free(aLo);
    return 1;
  }
  sqlite3_str_appendall(s, bInvert ? "[^" : "[");
  for(i=0; i<n; i++){
    pgRegexChar(s, aLo[i]);
    if( aHi[i]!=aLo[i] ){
      sqlite3_str_appendchar(s, 1, '-');
      pgRegexChar(s, aHi[i]);
    }
  }
  sqlite3_str_appendchar(s, 1, ']');
  sqlite3_free(aLo);
  *pp = z+1;
  return 0;
}

/* Append a LIKE (case-insensitive for ASCII, % and _) or GLOB (*, ?, [..])
** pattern translated to an anchored PostgreSQL regular expression. */
static void pgPatternRegex(sqlite3_str *s, const char *z, int bGlob){
  const unsigned char *p = (const unsigned char*)z;
  sqlite3_str_appendchar(s, 1, '^');
  while( *p ){
    unsigned c = *p;
    if( !bGlob && c=='%' ){ sqlite3_str_appendall(s, ".*"); p++; continue; }
    if( !bGlob && c=='_' ){ sqlite3_str_appendall(s, "."); p++; continue; }
    if( bGlob && c=='*' ){ sqlite3_str_appendall(s, ".*"); p++; continue; }
    if( bGlob && c=='?' ){ sqlite3_str_appendall(s, "."); p++; continue; }
    if( bGlob && c=='[' ){
      if( pgGlobSet(s, &p) ){
        /* An unterminated set matches nothing, as in SQLite. */
        sqlite3_str_reset(s);
        sqlite3_str_appendall(s, "^(?!)");
        return;
      }
      continue;
    }
    if( !bGlob && ((c>='a' && c<='z') || (c>='A' && c<='Z')) ){
      sqlite3_str_appendf(s, "[%c%c]", (char)(c|0x20), (char)(c&~0x20));
    }else if( c<0x80 && !((c>='0' && c<='9') || (c>='a' && c<='z')
                         || (c>='A' && c<='Z')) ){
      sqlite3_str_appendchar(s, 1, '\\');
      sqlite3_str_appendchar(s, 1, (char)c);
    }else{
      sqlite3_str_appendchar(s, 1, (char)c);
    }
    p++;
  }
  sqlite3_str_appendchar(s, 1, '$');
}

/* Bind a LIKE or GLOB pattern as its regular expression. */
static int pgPatternParam(PgParams *pParams, const char *zPat, int bGlob){
  sqlite3_str *pRe = sqlite3_str_new(0);
  char *zRe;
  int rc;
  pgPatternRegex(pRe, zPat, bGlob);
  zRe = sqlite3_str_finish(pRe);
  if( zRe==0 ) return SQLITE_NOMEM;
  rc = fedPgParamsAdd(pParams, zRe, -1, 0);
  sqlite3_free(zRe);
  return rc;
}

/* Append "$n" for the next parameter, with a cast where needed. */
static void pgPlaceholder(sqlite3_str *s, PgParams *pParams, const char *zCast){
  sqlite3_str_appendf(s, "$%d%s", pParams->n, zCast ? zCast : "");
}

/*
** Append the condition for one pushed term, or nothing (returning 0) when
** the term was pushed loosely and this value cannot be expressed exactly.
** Returns 1 if something was appended.
*/
static int pgDeparseTerm(
  sqlite3_str *s, PgParams *pParams, FedTable *pTab, const FedPlanTerm *t,
  sqlite3_value *pVal, int *pRc
){
  const FedColumn *pCol = &pTab->aCol[t->iCol];
  int eColClass = kindClass(pCol->eKind);
  int op = t->op;
  sqlite3_value *pConv = 0;
  int eValClass;

  if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, op==FED_OP_ISNULL ? " IS NULL" : " IS NOT NULL");
    return 1;
  }
  if( op==FED_OP_LIKE || op==FED_OP_GLOB ){
    const char *zPat = (const char*)sqlite3_value_text(pVal);
    if( zPat==0 ){
      sqlite3_str_appendall(s, "FALSE");
      return 1;
    }
    pgColumnExpr(s, pCol, 1);
    *pRc = pgPatternParam(pParams, zPat, op==FED_OP_GLOB);
    sqlite3_str_appendall(s, " ~ ");
    pgPlaceholder(s, pParams, 0);
    return 1;
  }
  if( op==FED_OP_IN ){
    /* The whole list as one array parameter: any length, one prepared
    ** statement for every list. */
    sqlite3_value *pV;
    int n = 0, rc;
    sqlite3_str *pArr = sqlite3_str_new(0);
    char *zArr;
    int nArr;
    sqlite3_str_appendchar(pArr, 1, '{');
    for(rc=sqlite3_vtab_in_first(pVal, &pV); rc==SQLITE_OK && pV;
        rc=sqlite3_vtab_in_next(pVal, &pV)){
      sqlite3_value *pC = 0;
      int eCls = valueClass(pV, eColClass, &pC);
      sqlite3_value *pUse = pC ? pC : pV;
      if( eCls==eColClass ){
        char zBuf[64];
        zBuf[0] = 0;
        if( eColClass==CLASS_NUM ){
          if( sqlite3_value_type(pUse)==SQLITE_INTEGER ){
            i64 v = sqlite3_value_int64(pUse);
            /* A float column equals an integer only if the integer is
            ** exactly a double. */
            i64 mn, mx;
            pgIntRange(pCol, &mn, &mx);
            if( pCol->eKind==PG_FLOAT ? pgIntIsDouble(v) : (v>=mn && v<=mx) ){
              sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", v);
            }
          }else{
            double r = sqlite3_value_double(pUse);
            if( pCol->eKind==PG_FLOAT ){
              fedDoubleText(r, zBuf, sizeof(zBuf));
            }else if( r==floor(r) && r<9223372036854775807.0
                   && r>=-9223372036854775808.0 ){
              i64 mn, mx;
              pgIntRange(pCol, &mn, &mx);
              if( (i64)r>=mn && (i64)r<=mx ){
                sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", (i64)r);
              }
            }
          }
          if( zBuf[0] ){
            sqlite3_str_appendf(pArr, "%s%s", n++ ? "," : "", zBuf);
          }
        }else if( eColClass==CLASS_BLOB ){
          const unsigned char *a = sqlite3_value_blob(pUse);
          int k, nByte = sqlite3_value_bytes(pUse);
          sqlite3_str_appendall(pArr, n++ ? ",\"\\\\x" : "\"\\\\x");
          for(k=0; k<nByte; k++) sqlite3_str_appendf(pArr, "%02x", a[k]);
          sqlite3_str_appendchar(pArr, 1, '"');
        }else{
          const char *z = (const char*)sqlite3_value_text(pUse);
          int k, nByte = sqlite3_value_bytes(pUse);
          sqlite3_str_appendall(pArr, n++ ? ",\"" : "\"");
          for(k=0; k<nByte; k++){
            if( z[k]=='"' || z[k]=='\\' ) sqlite3_str_appendchar(pArr, 1, '\\');
            sqlite3_str_appendchar(pArr, 1, z[k]);
          }
          sqlite3_str_appendchar(pArr, 1, '"');
        }
      }else if( eColClass==CLASS_TEXT && eCls==CLASS_NUM && !t->bExact ){
        /* Loose: a number against text depends on affinities we cannot
        ** see; push nothing for this term. */
        sqlite3_value_free(pC);
        sqlite3_free(sqlite3_str_finish(pArr));
        return 0;
      }
      sqlite3_value_free(pC);
    }
    sqlite3_str_appendchar(pArr, 1, '}');
    nArr = sqlite3_str_length(pArr);
    zArr = sqlite3_str_finish(pArr);
    if( zArr==0 ){ *pRc = SQLITE_NOMEM; return 0; }
    if( rc!=SQLITE_OK && rc!=SQLITE_DONE ){ *pRc = rc; sqlite3_free(zArr); return 0; }
    if( n==0 ){
      sqlite3_str_appendall(s, "FALSE");
    }else{
      static const char *azArrType[] = { "", "::bigint[]", "::text[]",
                                         "::bytea[]" };
      pgColumnExpr(s, pCol, 0);
      *pRc = fedPgParamsAdd(pParams, zArr, nArr, 0);
      sqlite3_str_appendf(s, " = ANY($%d%s)", pParams->n,
          pCol->eKind==PG_FLOAT ? "::float8[]" : azArrType[eColClass]);
    }
    sqlite3_free(zArr);
    return 1;
  }

  eValClass = valueClass(pVal, eColClass, &pConv);
  if( pConv ) pVal = pConv;
  if( eValClass==CLASS_NULL && (op==FED_OP_IS || op==FED_OP_ISNOT) ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, op==FED_OP_IS ? " IS NULL" : " IS NOT NULL");
    sqlite3_value_free(pConv);
    return 1;
  }
  if( eColClass==CLASS_TEXT && !t->bExact && eValClass!=CLASS_NULL
   && (eValClass!=CLASS_TEXT || (op!=FED_OP_EQ && op!=FED_OP_IS)) ){
    /* The operand's affinity is unknown (fedPgPushable()): only text
    ** equality is a sure superset. */
    sqlite3_value_free(pConv);
    return 0;
  }
  if( eColClass==CLASS_TEXT && eValClass==CLASS_NUM ){
    /* Exact only for a value known as text at planning time: a number now
    ** is a parameter bound again, which has no affinity: TEXT applies. */
    eValClass = CLASS_TEXT;
  }
  if( eValClass!=eColClass ){
    pgConstCondition(s, pCol, op, eColClass, eValClass);
    sqlite3_value_free(pConv);
    return 1;
  }
  {
    sqlite3_str *pTmp = sqlite3_str_new(0);
    int opUse = op;
    char *zTmp;
    if( eColClass==CLASS_NUM ){
      opUse = pgNumParam(pTmp, pParams, pCol, op, pVal, pRc);
    }else if( eColClass==CLASS_BLOB ){
      *pRc = fedPgParamsAdd(pParams, fedPgValueBytes(pVal),
                            sqlite3_value_bytes(pVal), 1);
    }else{
      *pRc = fedPgParamsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                            sqlite3_value_bytes(pVal), 0);
    }
    zTmp = sqlite3_str_finish(pTmp);
    if( opUse==0 ){
      sqlite3_str_appendall(s, zTmp ? zTmp : "FALSE");
    }else{
      pgColumnExpr(s, pCol, 0);
      sqlite3_str_appendf(s, " %s ", pgOpText(opUse));
      pgPlaceholder(s, pParams, eColClass==CLASS_BLOB ? "::bytea"
                    : (pCol->eKind==PG_FLOAT ? "::float8" : 0));
    }
    sqlite3_free(zTmp);
  }
  sqlite3_value_free(pConv);
  return 1;
}

/* The select-list expression of a column. */
static void pgSelectExpr(sqlite3_str *s, const FedColumn *pCol){
  if( pCol->eKind==PG_ARRAY ){
    sqlite3_str_appendall(s, "to_json(");
    fedPgQuoteIdent(s, pCol->zName, -1);
    sqlite3_str_appendall(s, ")");
  }else{
    fedPgQuoteIdent(s, pCol->zName, -1);
  }
}

/*
** Build the SELECT for a plan and xFilter's values.  aResCol[] receives
** the result column of each table column (-1: not fetched).  Pure: no
** network; the text is what fed_explain shows.
*/
int fedPgDeparseSelect(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, int *aResCol, char **pzSql, PgParams *pParams
){
  sqlite3_str *s = sqlite3_str_new(0);
  int i, nRes = 0, nWhere = 0, rc = SQLITE_OK;

  sqlite3_str_appendall(s, "SELECT ");
  for(i=0; i<pTab->nCol; i++){
    /* The key is always fetched: a DELETE or UPDATE reads it even when
    ** colUsed does not say so. */
    if( fedPlanColUsed(pPlan, i) || i==pTab->iPk ){
      if( nRes ) sqlite3_str_appendall(s, ", ");
      pgSelectExpr(s, &pTab->aCol[i]);
      aResCol[i] = nRes++;
    }else{
      aResCol[i] = -1;
    }
  }
  sqlite3_str_appendf(s, " FROM %s", pTab->zRemote);
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = 0;
    int nBefore = sqlite3_str_length(s);
    if( t->iCol<0 || t->iCol>=pTab->nCol ) continue;
    if( t->iArg>=0 ){
      if( t->iArg>=argc ){ rc = SQLITE_CORRUPT_VTAB; break; }
      pVal = argv[t->iArg];
    }else if( t->op!=FED_OP_ISNULL && t->op!=FED_OP_NOTNULL ){
      rc = SQLITE_CORRUPT_VTAB;   /* an operator without its value */
      break;
    }
    sqlite3_str_appendall(s, nWhere ? " AND " : " WHERE ");
    if( pgDeparseTerm(s, pParams, pTab, t, pVal, &rc) ){
      nWhere++;
    }else{
      /* Nothing pushed for this term: take the connective back. */
      char *z = sqlite3_str_value(s);
      if( z ){
        sqlite3_str *s2 = sqlite3_str_new(0);
        sqlite3_str_append(s2, z, nBefore);
        sqlite3_free(sqlite3_str_finish(s));
        s = s2;
      }
    }
  }
  for(i=0; i<pPlan->nOrder; i++){
    const FedColumn *pCol = &pTab->aCol[pPlan->aOrderCol[i]];
    sqlite3_str_appendall(s, i ? ", " : " ORDER BY ");
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, pPlan->aOrderDesc[i] ? " DESC NULLS LAST"
                                                  : " ASC NULLS FIRST");
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( n>=0 ){
      if( rc==SQLITE_OK ) rc = fedPgParamsAddInt(pParams, n);
      sqlite3_str_appendf(s, " LIMIT $%d", pParams->n);
    }
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( n>0 ){
      if( rc==SQLITE_OK ) rc = fedPgParamsAddInt(pParams, n);
      sqlite3_str_appendf(s, " OFFSET $%d", pParams->n);
    }
  }
  /* Rows read by a statement that writes the table are locked, so that
  ** what it writes back is computed from what is there. */
  if( bForUpdate ) sqlite3_str_appendall(s, " FOR UPDATE");
  *pzSql = sqlite3_str_finish(s);
  if( *pzSql==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzSql);
    *pzSql = 0;
  }
  return rc;
}

/*
** Deparsed SELECTs kept per table (PgTable), so that a scan repeated with
** the same plan (a lookup by key, run many times) builds its SQL once and
** then only binds its values.  The text depends on the plan and, for some
** values, on the value itself (a NULL, a real against an integer column,
** a number against a text column, an IN list: see pgDeparseTerm()).  A
** term's shape says what its value contributes: the shapes below bind one
** plain parameter and leave the text alone; any other value is
** PG_SHAPE_VARIES, and a plan with such a term is deparsed every time.
** Entries live as long as the table, whose columns and remote name never
** change; the statement cache of each connection is keyed by the text, so
** a new or redefined server's connection prepares it again.
*/
#define PG_SHAPE_VARIES  0      /* The text depends on the value */
#define PG_SHAPE_NONE    1      /* No value: IS NULL, IS NOT NULL */
#define PG_SHAPE_INT     2      /* An integer (exactly a double for floats) */
#define PG_SHAPE_REAL    3      /* A real against a float column */
#define PG_SHAPE_TEXT    4      /* Text against a text-class column */
#define PG_SHAPE_BLOB    5      /* A blob against a bytea column */
#define PG_SHAPE_PATTERN 6      /* A LIKE or GLOB pattern, not NULL */

#define PG_SELECT_KEPT   4      /* Deparsed SELECTs kept per table */

/* The shape of the value of term t (pVal: its value, or NULL). */
static int pgTermShape(FedTable *pTab, const FedPlanTerm *t, sqlite3_value *pVal){
  const FedColumn *pCol;
  int eType;
  if( t->iCol<0 || t->iCol>=pTab->nCol ) return PG_SHAPE_VARIES;
  if( t->op==FED_OP_ISNULL || t->op==FED_OP_NOTNULL ) return PG_SHAPE_NONE;
  if( pVal==0 || t->op==FED_OP_IN ) return PG_SHAPE_VARIES;
  pCol = &pTab->aCol[t->iCol];
  eType = sqlite3_value_type(pVal);
  if( t->op==FED_OP_LIKE || t->op==FED_OP_GLOB ){
    return eType==SQLITE_NULL ? PG_SHAPE_VARIES : PG_SHAPE_PATTERN;
  }
  switch( kindClass(pCol->eKind) ){
    case CLASS_NUM:
      if( eType==SQLITE_INTEGER ){
        if( pCol->eKind!=PG_FLOAT ){
          i64 mn, mx, v = sqlite3_value_int64(pVal);
          pgIntRange(pCol, &mn, &mx);
          return (v>=mn && v<=mx) ? PG_SHAPE_INT : PG_SHAPE_VARIES;
        }
        return pgIntIsDouble(sqlite3_value_int64(pVal)) ? PG_SHAPE_INT
                                                         : PG_SHAPE_VARIES;
      }
      if( eType==SQLITE_FLOAT && pCol->eKind==PG_FLOAT ) return PG_SHAPE_REAL;
      break;
    case CLASS_TEXT:
      /* Loose (operand affinity unknown): only equality is pushed. */
      if( !t->bExact && t->op!=FED_OP_EQ && t->op!=FED_OP_IS ) break;
      if( eType==SQLITE_TEXT ) return PG_SHAPE_TEXT;
      break;
    case CLASS_BLOB:
      if( eType==SQLITE_BLOB ) return PG_SHAPE_BLOB;
      break;
  }
  return PG_SHAPE_VARIES;
}

/* Bind the value of a term of shape eShape, as pgDeparseTerm() does. */
static int pgTermBind(
  PgParams *pParams, int eShape, const FedPlanTerm *t, sqlite3_value *pVal
){
  char zBuf[64];
  switch( eShape ){
    case PG_SHAPE_INT:
      return fedPgParamsAddInt(pParams, sqlite3_value_int64(pVal));
    case PG_SHAPE_REAL:
      fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
      return fedPgParamsAdd(pParams, zBuf, -1, 0);
    case PG_SHAPE_TEXT:
      return fedPgParamsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                            sqlite3_value_bytes(pVal), 0);
    case PG_SHAPE_BLOB:
      return fedPgParamsAdd(pParams, fedPgValueBytes(pVal),
                            sqlite3_value_bytes(pVal), 1);
    case PG_SHAPE_PATTERN: {
      const char *zPat = (const char*)sqlite3_value_text(pVal);
      if( zPat==0 ) return SQLITE_NOMEM;
      return pgPatternParam(pParams, zPat, t->op==FED_OP_GLOB);
    }
  }
  return SQLITE_OK;
}

/* True if plans a and b are the same. */
static int pgPlanSame(const FedPlan *a, const FedPlan *b){
  int i;
  if( a->nTerm!=b->nTerm || a->nOrder!=b->nOrder || a->colUsed!=b->colUsed
   || a->iLimitArg!=b->iLimitArg || a->iOffsetArg!=b->iOffsetArg ){
    return 0;
  }
  for(i=0; i<a->nTerm; i++){
    const FedPlanTerm *x = &a->aTerm[i], *y = &b->aTerm[i];
    if( x->iCol!=y->iCol || x->op!=y->op || x->iArg!=y->iArg
     || x->bExact!=y->bExact ){
      return 0;
    }
  }
  for(i=0; i<a->nOrder; i++){
    if( a->aOrderCol[i]!=b->aOrderCol[i]
     || a->aOrderDesc[i]!=b->aOrderDesc[i] ){
      return 0;
    }
  }
  return 1;
}

/* True if pSel was deparsed for this plan and values of the same shapes. */
static int pgSelectMatch(
  FedTable *pTab, const PgSelect *pSel, const FedPlan *pPlan, int argc,
  sqlite3_value **argv, int bForUpdate
){
  int i;
  if( pSel->bForUpdate!=bForUpdate || !pgPlanSame(&pSel->plan, pPlan) ){
    return 0;
  }
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    if( pgTermShape(pTab, t, pVal)!=pSel->aShape[i] ) return 0;
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc
   && (sqlite3_value_int64(argv[pPlan->iLimitArg])>=0)!=pSel->bLimit ){
    return 0;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc
   && (sqlite3_value_int64(argv[pPlan->iOffsetArg])>0)!=pSel->bOffset ){
    return 0;
  }
  return 1;
}

/* Bind argv as fedPgDeparseSelect() would for the text of pSel. */
static int pgSelectBind(
  const PgSelect *pSel, const FedPlan *pPlan, sqlite3_value **argv,
  PgParams *pParams
){
  int i, rc = SQLITE_OK;
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    rc = pgTermBind(pParams, pSel->aShape[i], t, t->iArg>=0 ? argv[t->iArg] : 0);
  }
  if( pSel->bLimit && rc==SQLITE_OK ){
    rc = fedPgParamsAddInt(pParams, sqlite3_value_int64(argv[pPlan->iLimitArg]));
  }
  if( pSel->bOffset && rc==SQLITE_OK ){
    rc = fedPgParamsAddInt(pParams, sqlite3_value_int64(argv[pPlan->iOffsetArg]));
  }
  return rc;
}

/*
** A kept SELECT for this plan whose value shapes match argv: its values
** are bound into pParams (*pRc set) and it is returned.  NULL (nothing
** bound): deparse.
*/
PgSelect *fedPgSelectFind(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, PgParams *pParams, int *pRc
){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  PgSelect **pp, *pSel;
  if( pPt==0 ) return 0;
  for(pp=&pPt->pSelect; (pSel = *pp)!=0; pp=&pSel->pNext){
    if( pgSelectMatch(pTab, pSel, pPlan, argc, argv, bForUpdate) ) break;
  }
  if( pSel==0 ) return 0;
  *pRc = pgSelectBind(pSel, pPlan, argv, pParams);
  /* Most recently used first. */
  *pp = pSel->pNext;
  pSel->pNext = pPt->pSelect;
  pPt->pSelect = pSel;
  return pSel;
}

/*
** Keep zSql, just deparsed for this plan and these values, if every term's
** shape lets a later scan reuse it.  Out of memory only loses the entry.
*/
void fedPgSelectKeep(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, const int *aResCol, const char *zSql
){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  PgSelect *pSel;
  i64 nByte;
  int i;
  char *z;
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    if( pgTermShape(pTab, t, pVal)==PG_SHAPE_VARIES ) return;
  }
  if( pPt==0 ){
    pPt = sqlite3_malloc64(sizeof(*pPt));
    if( pPt==0 ) return;
    memset(pPt, 0, sizeof(*pPt));
    pTab->pStoreTab = pPt;
  }
  if( pPt->nSelect>=PG_SELECT_KEPT ){
    PgSelect **pp = &pPt->pSelect;
    while( (*pp)->pNext ) pp = &(*pp)->pNext;
    sqlite3_free(*pp);
    *pp = 0;
    pPt->nSelect--;
  }
  nByte = sizeof(*pSel) + (sizeof(FedPlanTerm) + sizeof(int))*pPlan->nTerm
        + (sizeof(int) + 1)*pPlan->nOrder + strlen(zSql) + 1;
  pSel = sqlite3_malloc64(nByte);
  if( pSel==0 ) return;
  memset(pSel, 0, sizeof(*pSel));
  pSel->plan = *pPlan;
  z = (char*)&pSel[1];
  pSel->plan.aTerm = (FedPlanTerm*)z;
  if( pPlan->nTerm ) memcpy(z, pPlan->aTerm, sizeof(FedPlanTerm)*pPlan->nTerm);
  z += sizeof(FedPlanTerm)*pPlan->nTerm;
  pSel->aShape = (int*)z;
  z += sizeof(int)*pPlan->nTerm;
  pSel->plan.aOrderCol = (int*)z;
  if( pPlan->nOrder ){
    memcpy(z, pPlan->aOrderCol, sizeof(int)*pPlan->nOrder);
    memcpy(z + sizeof(int)*pPlan->nOrder, pPlan->aOrderDesc, pPlan->nOrder);
  }
  z += sizeof(int)*pPlan->nOrder;
  pSel->plan.aOrderDesc = (u8*)z;
  z += pPlan->nOrder;
  pSel->zSql = z;
  memcpy(z, zSql, strlen(zSql)+1);
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    pSel->aShape[i] = pgTermShape(pTab, t, pVal);
  }
  pSel->bForUpdate = (u8)bForUpdate;
  pSel->bLimit = pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc
              && sqlite3_value_int64(argv[pPlan->iLimitArg])>=0;
  pSel->bOffset = pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc
               && sqlite3_value_int64(argv[pPlan->iOffsetArg])>0;
  memcpy(pSel->aResCol, aResCol, sizeof(int)*pTab->nCol);
  pSel->pNext = pPt->pSelect;
  pPt->pSelect = pSel;
  pPt->nSelect++;
}

void fedPgTableFree(FedTable *pTab){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  if( pPt==0 ) return;
  while( pPt->pSelect ){
    PgSelect *pSel = pPt->pSelect;
    pPt->pSelect = pSel->pNext;
    sqlite3_free(pSel);
  }
  sqlite3_free(pPt);
  pTab->pStoreTab = 0;
}

/**************************************************************************
** Values and text of writes.
*/

/* Add one value to be written to pCol as a parameter; *pzCast receives a
** cast or wrapper the placeholder needs ("::bytea"). */
int fedPgWriteParam(
  PgParams *pParams, const FedColumn *pCol, sqlite3_value *pVal,
  char **pzErr
){
  char zBuf[64];
  int eType = sqlite3_value_type(pVal);
  if( eType==SQLITE_NULL ) return fedPgParamsAdd(pParams, 0, 0, 0);
  switch( pCol->eKind ){
    case PG_BYTEA:
      if( eType==SQLITE_BLOB ){
        return fedPgParamsAdd(pParams, fedPgValueBytes(pVal),
                              sqlite3_value_bytes(pVal), 1);
      }
      return fedPgParamsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                            sqlite3_value_bytes(pVal), 1);
    case PG_BOOL:
      if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pVal);
        if( r!=0.0 && r!=1.0 ){
          fedSetError(pzErr, "%s: cannot write %s to boolean column \"%s\""
              " (0 or 1, or 'true'/'false')", PG_STORE,
              sqlite3_value_text(pVal), pCol->zName);
          return SQLITE_MISMATCH;
        }
        return fedPgParamsAdd(pParams, r!=0.0 ? "t" : "f", 1, 0);
      }
      break;
    case PG_INT:
      if( eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pVal);
        if( r==floor(r) && r<9223372036854775807.0
         && r>=-9223372036854775808.0 ){
          return fedPgParamsAddInt(pParams, (i64)r);
        }
        fedSetError(pzErr, "%s: cannot write %s to integer column \"%s\"",
                    PG_STORE, sqlite3_value_text(pVal), pCol->zName);
        return SQLITE_MISMATCH;
      }
      break;
    case PG_FLOAT:
    case PG_NUMERIC:
      if( eType==SQLITE_FLOAT ){
        fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
        return fedPgParamsAdd(pParams, zBuf, -1, 0);
      }
      break;
  }
  {
    /* Text sent as text ends at its first NUL, and PostgreSQL's text types
    ** cannot hold one: refuse rather than store fewer bytes. */
    const char *z = eType==SQLITE_BLOB ? fedPgValueBytes(pVal)
                                       : (const char*)sqlite3_value_text(pVal);
    int n = sqlite3_value_bytes(pVal);
    if( z==0 && n>0 ) return SQLITE_NOMEM;
    if( n>0 && memchr(z, 0, n)!=0 ){
      fedSetError(pzErr, "%s: cannot write a value holding a NUL character"
          " to column \"%s\" (%s): PostgreSQL cannot store it there;"
          " use a bytea column", PG_STORE, pCol->zName,
          pCol->zType ? pCol->zType : "text");
      return SQLITE_MISMATCH;
    }
    return fedPgParamsAdd(pParams, z, n, 0);
  }
}

/* The placeholder for a value written to pCol. */
void fedPgWritePlaceholder(sqlite3_str *s, const FedColumn *pCol, int iParam){
  switch( pCol->eKind ){
    case PG_BYTEA:
      sqlite3_str_appendf(s, "$%d::bytea", iParam);
      break;
    case PG_ARRAY:
      /* Arrays are read as JSON, so they are written as JSON too. */
      sqlite3_str_appendf(s, "CASE WHEN $%d::json IS NULL THEN NULL ELSE"
          " ARRAY(SELECT json_array_elements_text($%d::json)) END::%s",
          iParam, iParam, pCol->zType);
      break;
    default:
      sqlite3_str_appendf(s, "$%d", iParam);
      break;
  }
}

/*
** One value in COPY's text format, as the server would have read it as a
** bound parameter: NULL as \N; text up to its first NUL byte (libpq sends
** a text parameter as a C string) with backslash, tab, newline and
** carriage return escaped; a binary (bytea) parameter in bytea's hex form.
** Writes at most pgCopyFieldMax(n) bytes at z; returns how many.
*/
i64 fedPgCopyField(char *zOut, const char *z, int n, int bBinary){
  static const char aHex[] = "0123456789abcdef";
  char *zEnd = zOut;
  int i;
  if( z==0 ){
    memcpy(zOut, "\\N", 2);
    return 2;
  }
  if( bBinary ){
    memcpy(zEnd, "\\\\x", 3);
    zEnd += 3;
    for(i=0; i<n; i++){
      *zEnd++ = aHex[((unsigned char)z[i])>>4];
      *zEnd++ = aHex[((unsigned char)z[i])&0xf];
    }
    return zEnd - zOut;
  }
  for(i=0; i<n && z[i]; i++){
    char c = z[i];
    switch( c ){
      case '\\': *zEnd++ = '\\'; break;
      case '\t':  *zEnd++ = '\\'; c = 't'; break;
      case '\n':  *zEnd++ = '\\'; c = 'n'; break;
      case '\r':  *zEnd++ = '\\'; c = 'r'; break;
    }
    *zEnd++ = c;
  }
  return zEnd - zOut;
}

/* "COPY t (cols) FROM STDIN" for the batch; sqlite3_malloc'd. */
char *fedPgCopyCommand(PgBatch *b){
  FedTable *pTab = b->pTab;
  sqlite3_str *s = sqlite3_str_new(0);
  int i, n = 0;
  sqlite3_str_appendf(s, "COPY %s (", pTab->zRemote);
  for(i=0; i<pTab->nCol; i++){
    if( b->mCol & ((u64)1<<i) ){
      if( n++ ) sqlite3_str_appendall(s, ", ");
      fedPgQuoteIdent(s, pTab->aCol[i].zName, -1);
    }
  }
  sqlite3_str_appendall(s, ") FROM STDIN");
  return sqlite3_str_finish(s);
}

/*
** "INSERT INTO t (a, b) VALUES " for the columns in mCol (the rows follow,
** from fedPgDeparseInsertRows()), or "INSERT INTO t DEFAULT VALUES" when
** mCol is empty.  sqlite3_malloc'd; NULL when out of memory.
*/
char *fedPgDeparseInsert(FedTable *pTab, u64 mCol){
  sqlite3_str *s = sqlite3_str_new(0);
  int i, n = 0;
  sqlite3_str_appendf(s, "INSERT INTO %s", pTab->zRemote);
  if( mCol==0 ){
    sqlite3_str_appendall(s, " DEFAULT VALUES");
  }else{
    sqlite3_str_appendall(s, " (");
    for(i=0; i<pTab->nCol; i++){
      if( mCol & ((u64)1<<i) ){
        if( n++ ) sqlite3_str_appendall(s, ", ");
        fedPgQuoteIdent(s, pTab->aCol[i].zName, -1);
      }
    }
    sqlite3_str_appendall(s, ") VALUES ");
  }
  return sqlite3_str_finish(s);
}

/*
** zPrefix (fedPgDeparseInsert()) and nRow rows of placeholders for the
** columns in mCol, numbered in the order fedPgWriteParam() added their
** values: "($1, $2), ($3, $4)".  bReturning: one row (none for DEFAULT
** VALUES), then RETURNING the key, which the caller takes as the rowid.
** sqlite3_malloc'd; NULL when out of memory.
*/
char *fedPgDeparseInsertRows(
  FedTable *pTab, const char *zPrefix, u64 mCol, int nRow, int bReturning
){
  sqlite3_str *s = sqlite3_str_new(0);
  int iRow, i, iParam = 0;
  sqlite3_str_appendall(s, zPrefix);
  for(iRow=0; iRow<nRow; iRow++){
    int n = 0;
    if( bReturning && mCol==0 ) break;
    sqlite3_str_appendall(s, iRow ? ", (" : "(");
    for(i=0; i<pTab->nCol; i++){
      if( (mCol & ((u64)1<<i))==0 ) continue;
      if( n++ ) sqlite3_str_appendall(s, ", ");
      fedPgWritePlaceholder(s, &pTab->aCol[i], ++iParam);
    }
    sqlite3_str_appendchar(s, 1, ')');
  }
  if( bReturning ){
    sqlite3_str_appendall(s, " RETURNING ");
    fedPgQuoteIdent(s, pTab->aCol[pTab->iPk].zName, -1);
  }
  return sqlite3_str_finish(s);
}

/*
** The UPDATE (argc>1) or DELETE (argc==1) that xUpdate's arguments ask of
** the row whose key is argv[0] (not NULL; the table has a key): its text
** in *pzSql (sqlite3_malloc'd), its values added to pParams.  Columns
** SQLite leaves unchanged, and an unchanged key, are not set; if nothing
** is, *pzSql is NULL.  An error (a value the column cannot take) sets
** *pzErr.
*/
int fedPgDeparseUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, PgParams *pParams,
  char **pzSql, char **pzErr
){
  const FedColumn *pKey = &pTab->aCol[pTab->iPk];
  sqlite3_str *s = sqlite3_str_new(0);
  int i, n = 0, rc = SQLITE_OK;
  *pzSql = 0;
  if( argc==1 ){
    sqlite3_str_appendf(s, "DELETE FROM %s WHERE ", pTab->zRemote);
  }else{
    sqlite3_str_appendf(s, "UPDATE %s SET ", pTab->zRemote);
    for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
      sqlite3_value *pVal = argv[2+i];
      if( sqlite3_value_nochange(pVal) ) continue;
      if( i==pTab->iPk && sqlite3_value_type(pVal)==sqlite3_value_type(argv[0])
       && sqlite3_value_bytes(pVal)==sqlite3_value_bytes(argv[0])
       && memcmp(fedPgValueBytes(pVal), fedPgValueBytes(argv[0]),
                 sqlite3_value_bytes(pVal))==0 ){
        continue;               /* Key unchanged */
      }
      if( n++ ) sqlite3_str_appendall(s, ", ");
      fedPgQuoteIdent(s, pTab->aCol[i].zName, -1);
      sqlite3_str_appendall(s, " = ");
      rc = fedPgWriteParam(pParams, &pTab->aCol[i], pVal, pzErr);
      fedPgWritePlaceholder(s, &pTab->aCol[i], pParams->n);
    }
    if( n==0 ){
      sqlite3_free(sqlite3_str_finish(s));
      return rc;
    }
    sqlite3_str_appendall(s, " WHERE ");
  }
  fedPgQuoteIdent(s, pKey->zName, -1);
  sqlite3_str_appendall(s, " = ");
  if( rc==SQLITE_OK ) rc = fedPgWriteParam(pParams, pKey, argv[0], pzErr);
  fedPgWritePlaceholder(s, pKey, pParams->n);
  *pzSql = sqlite3_str_finish(s);
  if( *pzSql==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzSql);
    *pzSql = 0;
  }
  return rc;
}

/* "RELEASE SAVEPOINT fed_sp_<iRelease>" (if iRelease>=0), then
** "SAVEPOINT fed_sp_<i>" for i from iFrom up to iTo-1, joined by "; ".
** sqlite3_malloc'd; NULL when out of memory. */
char *fedPgDeparseSavepoint(int iRelease, int iFrom, int iTo){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  if( iRelease>=0 ){
    sqlite3_str_appendf(s, "RELEASE SAVEPOINT fed_sp_%d; ", iRelease);
  }
  for(i=iFrom; i<iTo; i++){
    sqlite3_str_appendf(s, "SAVEPOINT fed_sp_%d%s", i, i+1<iTo ? "; " : "");
  }
  return sqlite3_str_finish(s);
}

/* Append z as a string literal, as PQescapeLiteral() writes it (without
** needing a connection): quotes doubled, and with backslashes doubled
** behind " E" when there is one. */
static void pgQuoteLiteral(sqlite3_str *s, const char *z){
  if( strchr(z, '\\') ) sqlite3_str_appendall(s, " E");
  sqlite3_str_appendchar(s, 1, '\'');
  for(; *z; z++){
    if( *z=='\'' || *z=='\\' ) sqlite3_str_appendchar(s, 1, *z);
    sqlite3_str_appendchar(s, 1, *z);
  }
  sqlite3_str_appendchar(s, 1, '\'');
}

/* The statement trigger of fed_cache_watch() on pTab (notify.c): after
** every change it sends NOTIFY fed_cache with the table's remote name.
** sqlite3_malloc'd; NULL when out of memory. */
char *fedPgDeparseWatch(FedTable *pTab){
  sqlite3_str *s = sqlite3_str_new(0);
  sqlite3_str_appendall(s,
      "CREATE OR REPLACE FUNCTION public.fed_cache_notify() RETURNS trigger"
      " LANGUAGE plpgsql AS $fed$BEGIN"
      " PERFORM pg_notify('fed_cache', TG_ARGV[0]); RETURN NULL;"
      " END$fed$; CREATE OR REPLACE TRIGGER fed_cache_notify AFTER INSERT"
      " OR UPDATE OR DELETE OR TRUNCATE ON ");
  sqlite3_str_appendall(s, pTab->zRemote);
  sqlite3_str_appendall(s, " FOR EACH STATEMENT EXECUTE FUNCTION"
      " public.fed_cache_notify(");
  pgQuoteLiteral(s, pTab->zRemote);
  sqlite3_str_appendchar(s, 1, ')');
  return sqlite3_str_finish(s);
}
