/*
** types.c: what a PostgreSQL table looks like to SQLite, pure (no I/O, no
** libpq call): the conversion kind of each column type, the checks of
** type names and remote names read back from the file, the remote name
** from table=, and the decoding of PostgreSQL's text output of a value
** into the SQLite value federate returns (fuzzed by fuzz_pg.c).
*/
#include "pgInt.h"
#include <math.h>
#include <stdlib.h>

/**************************************************************************
** Columns: kinds, and the checks of what the file holds.
*/
static int startsWith(const char *z, const char *zPrefix){
  return sqlite3_strnicmp(z, zPrefix, (int)strlen(zPrefix))==0;
}

int fedPgKindOf(const char *zType){
  int n = (int)strlen(zType);
  if( n>=2 && zType[n-1]==']' ) return PG_ARRAY;
  if( sqlite3_stricmp(zType, "smallint")==0 || sqlite3_stricmp(zType, "integer")==0
   || sqlite3_stricmp(zType, "bigint")==0 || sqlite3_stricmp(zType, "int")==0
   || sqlite3_stricmp(zType, "int2")==0 || sqlite3_stricmp(zType, "int4")==0
   || sqlite3_stricmp(zType, "int8")==0 || sqlite3_stricmp(zType, "oid")==0
   || sqlite3_stricmp(zType, "serial")==0 || sqlite3_stricmp(zType, "bigserial")==0
   || sqlite3_stricmp(zType, "smallserial")==0 ){
    return PG_INT;
  }
  if( sqlite3_stricmp(zType, "boolean")==0 || sqlite3_stricmp(zType, "bool")==0 ){
    return PG_BOOL;
  }
  if( sqlite3_stricmp(zType, "real")==0 || sqlite3_stricmp(zType, "float4")==0
   || sqlite3_stricmp(zType, "float8")==0 || startsWith(zType, "double precision")
   || startsWith(zType, "float") ){
    return PG_FLOAT;
  }
  if( startsWith(zType, "numeric") || startsWith(zType, "decimal") ){
    return PG_NUMERIC;
  }
  if( sqlite3_stricmp(zType, "text")==0 || startsWith(zType, "character varying")
   || startsWith(zType, "varchar") || sqlite3_stricmp(zType, "name")==0 ){
    return PG_TEXT;
  }
  if( startsWith(zType, "character") || startsWith(zType, "char")
   || sqlite3_stricmp(zType, "bpchar")==0 ){
    return PG_BPCHAR;
  }
  if( sqlite3_stricmp(zType, "bytea")==0 ) return PG_BYTEA;
  if( (startsWith(zType, "time") && strstr(zType, "with time zone"))
   || sqlite3_stricmp(zType, "timestamptz")==0
   || sqlite3_stricmp(zType, "timetz")==0 ){
    return PG_TSTZ;
  }
  return PG_OTHER;
}

/* Skip a double-quoted identifier at z[*pi] ("" inside); 0 if malformed. */
static int pgSkipQuoted(const char *z, int *pi){
  int i = *pi;
  if( z[i]!='"' ) return 0;
  for(i++; z[i]; i++){
    if( z[i]=='"' ){
      if( z[i+1]!='"' ){ *pi = i+1; return 1; }
      i++;
    }
  }
  return 0;
}

/* True if z is a remote name as fedPgDescribe() records it in fed_tables:
** "table" or "schema"."table", quoted.  The record is read back from the
** file, and the name is pasted into every remote command. */
static int pgRemoteValid(const char *z){
  int i = 0, nPart = 0;
  while( 1 ){
    if( !pgSkipQuoted(z, &i) ) return 0;
    nPart++;
    if( z[i]==0 ) return 1;
    if( z[i]!='.' || nPart>=2 ) return 0;
    i++;
  }
}

/* True if z is a type name as format_type() writes it, or as a user
** writes one in columns=: words, quoted names, dots, (n[,n]) and [] (and
** nothing else: the type is pasted into remote SQL as a cast). */
static int pgTypeValid(const char *z){
  int i = 0, bWord = 0;
  while( z[i] ){
    char c = z[i];
    if( (c>='a' && c<='z') || (c>='A' && c<='Z') || c=='_' ){
      while( (z[i]>='a' && z[i]<='z') || (z[i]>='A' && z[i]<='Z')
          || (z[i]>='0' && z[i]<='9') || z[i]=='_' || z[i]=='$' ) i++;
      bWord = 1;
    }else if( c=='"' ){
      if( !pgSkipQuoted(z, &i) ) return 0;
      bWord = 1;
    }else if( c==' ' || c=='.' ){
      i++;
    }else if( c=='(' && bWord ){
      i++;
      do{
        if( z[i]==',' ) i++;
        while( z[i]==' ' ) i++;
        if( z[i]<'0' || z[i]>'9' ) return 0;
        while( z[i]>='0' && z[i]<='9' ) i++;
        while( z[i]==' ' ) i++;
      }while( z[i]==',' );
      if( z[i]!=')' ) return 0;
      i++;
    }else if( c=='[' && bWord ){
      for(i++; z[i]>='0' && z[i]<='9'; i++){}
      if( z[i]!=']' ) return 0;
      i++;
    }else{
      return 0;
    }
  }
  return bWord;
}

/* xColumns: check what the file holds (the remote name, each type, the
** batch_size option), then give each column its kind and affinity, and
** the table its single-column key (iPk, or -1). */
int fedPgColumns(FedTable *pTab, char **pzErr){
  int i;
  i64 v;
  pTab->iPk = -1;
  /* The remote name and the types come from the file (fed_tables, or
  ** columns= in sqlite_schema): held to what CREATE could have written. */
  if( pTab->zRemote && !pgRemoteValid(pTab->zRemote) ){
    fedSetError(pzErr, "%s: table \"%s\": malformed remote name in"
        " fed_tables (expected \"schema\".\"table\"); drop the table and"
        " create it again", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  for(i=0; i<pTab->nCol; i++){
    if( !pgTypeValid(pTab->aCol[i].zType) ){
      fedSetError(pzErr, "%s: table \"%s\": column \"%s\" has a malformed"
          " type '%s' (expected a type name such as integer, varchar(20),"
          " numeric(10,2) or text[])", PG_STORE, pTab->zName,
          pTab->aCol[i].zName, pTab->aCol[i].zType);
      return SQLITE_ERROR;
    }
  }
  if( fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 100000, &v, PG_STORE,
                   pzErr) ){
    return SQLITE_ERROR;
  }
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pCol->eKind = fedPgKindOf(pCol->zType);
    switch( pCol->eKind ){
      case PG_INT: case PG_BOOL: pCol->zAffinity = "INTEGER"; break;
      case PG_FLOAT:             pCol->zAffinity = "REAL"; break;
      case PG_NUMERIC:           pCol->zAffinity = "NUMERIC"; break;
      case PG_BYTEA:             pCol->zAffinity = "BLOB"; break;
      default:                   pCol->zAffinity = "TEXT"; break;
    }
  }
  for(i=0; i<pTab->nCol; i++){
    if( pTab->aCol[i].bPk ){
      if( pTab->iPk>=0 ){ pTab->iPk = -1; break; }   /* Composite key */
      pTab->iPk = i;
    }
  }
  return SQLITE_OK;
}

/**************************************************************************
** The remote name: table= (or the local name), quoted.
*/

/*
** Parse a PostgreSQL qualified name ("schema"."table", schema.table, or
** table): unquoted parts fold to lower case, quoted ones keep their case.
** Writes the quoted form into s.  Returns 1 if malformed, 2 if out of
** memory, else 0.
*/
static int pgQualifiedName(sqlite3_str *s, const char *z){
  int nPart = 0;
  while( *z ){
    sqlite3_str *pPart = sqlite3_str_new(0);
    char *zPart;
    int nByte;
    while( *z==' ' ) z++;
    if( *z=='"' ){
      z++;
      while( *z ){
        if( *z=='"' ){
          if( z[1]=='"' ){ sqlite3_str_appendchar(pPart, 1, '"'); z += 2; continue; }
          break;
        }
        sqlite3_str_appendchar(pPart, 1, *z++);
      }
      if( *z!='"' ){ sqlite3_free(sqlite3_str_finish(pPart)); return 1; }
      z++;
    }else{
      while( *z && *z!='.' && *z!=' ' ){
        char c = *z++;
        if( c>='A' && c<='Z' ) c += 'a'-'A';
        sqlite3_str_appendchar(pPart, 1, c);
      }
    }
    nByte = sqlite3_str_length(pPart);
    if( sqlite3_str_errcode(pPart) ){
      sqlite3_free(sqlite3_str_finish(pPart));
      return 2;
    }
    zPart = sqlite3_str_finish(pPart);
    if( nByte==0 ){ sqlite3_free(zPart); return 1; }
    if( nPart++ ) sqlite3_str_appendchar(s, 1, '.');
    fedPgQuoteIdent(s, zPart, nByte);
    sqlite3_free(zPart);
    while( *z==' ' ) z++;
    if( *z=='.' ){
      z++;
      if( *z==0 ) return 1;
    }else if( *z ){
      return 1;
    }
  }
  return nPart==0 || nPart>2;
}

/* The table= option (or the local name) as a quoted qualified name. */
int fedPgRemoteName(FedTable *pTab, char **pzOut, char **pzErr){
  const char *zTable = fedConfigGet(pTab->pCfg, "table");
  sqlite3_str *s = sqlite3_str_new(0);
  int bad;
  if( zTable==0 ){
    fedPgQuoteIdent(s, pTab->zName, -1);
    bad = 0;
  }else{
    bad = pgQualifiedName(s, zTable);
  }
  if( bad==0 && sqlite3_str_errcode(s) ) bad = 2;
  *pzOut = sqlite3_str_finish(s);
  if( bad==2 ){
    sqlite3_free(*pzOut);
    *pzOut = 0;
    return SQLITE_NOMEM;
  }
  if( bad ){
    fedSetError(pzErr, "%s: malformed table name '%s' (expected table or"
                " schema.table, with \"quotes\" where needed)", PG_STORE,
                zTable);
    sqlite3_free(*pzOut);
    *pzOut = 0;
    return SQLITE_ERROR;
  }
  return *pzOut ? SQLITE_OK : SQLITE_NOMEM;
}

/**************************************************************************
** Values: PostgreSQL's text output (with the fixed settings connection.c
** makes) as the SQLite value of the column's kind.
*/

/* Decode PostgreSQL's hex bytea output ("\x0a1b...") into a blob. */
static void pgResultBytea(sqlite3_context *ctx, const char *z, int n){
  static const signed char aVal[256] = {
    ['0']=0, ['1']=1, ['2']=2, ['3']=3, ['4']=4, ['5']=5, ['6']=6, ['7']=7,
    ['8']=8, ['9']=9, ['a']=10, ['b']=11, ['c']=12, ['d']=13, ['e']=14,
    ['f']=15, ['A']=10, ['B']=11, ['C']=12, ['D']=13, ['E']=14, ['F']=15
  };
  unsigned char *a;
  int i, nOut;
  if( n<2 || z[0]!='\\' || z[1]!='x' ){
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
    return;
  }
  nOut = (n-2)/2;
  a = sqlite3_malloc64(nOut ? nOut : 1);
  if( a==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for(i=0; i<nOut; i++){
    a[i] = (unsigned char)((aVal[(unsigned char)z[2+2*i]]<<4)
                           | aVal[(unsigned char)z[3+2*i]]);
  }
  sqlite3_result_blob(ctx, a, nOut, sqlite3_free);
}

/*
** The double of a plain decimal ("-123.456": no exponent, at most 15
** significant digits) without strtod: the digits as an integer, below
** 2^53, divided by a power of ten up to 1e22, both exact, so the one
** rounding is the division's, as strtod's.  Returns 0 when it does not
** apply.
*/
static int pgFastAtof(const char *z, int n, double *pr){
  static const double aPow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
    1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
  };
  u64 m = 0;
  int i = 0, nDigit = 0, nFrac = -1;
  int bNeg = 0;
  if( n>0 && z[0]=='-' ){ bNeg = 1; i = 1; }
  if( i>=n ) return 0;
  for(; i<n; i++){
    char c = z[i];
    if( c>='0' && c<='9' ){
      if( m || c!='0' ) nDigit++;
      if( nDigit>15 ) return 0;
      m = m*10 + (u64)(c-'0');
      if( nFrac>=0 ) nFrac++;
    }else if( c=='.' && nFrac<0 ){
      nFrac = 0;
    }else{
      return 0;
    }
  }
  if( nFrac>22 ) return 0;
  *pr = nFrac>0 ? (double)m / aPow10[nFrac] : (double)m;
  if( bNeg ) *pr = -*pr;
  return 1;
}

/* numeric: an integer if it is one (also "100.00"), a real if it has at
** most 15 significant digits (so the double reads back as written), else
** the exact text. */
static void pgResultNumeric(sqlite3_context *ctx, const char *z, int n){
  i64 v;
  int i, iFirst = -1, iLast = -1, iDot = -1, nDigit;
  if( fedParseInt64(z, n, &v)==0 ){
    sqlite3_result_int64(ctx, v);
    return;
  }
  for(i=0; i<n; i++){
    char c = z[i];
    if( c>='1' && c<='9' ){
      if( iFirst<0 ) iFirst = i;
      iLast = i;
    }else if( c=='.' && iDot<0 ){
      iDot = i;
    }else if( c!='0' && !(c=='-' && i==0) ){
      /* NaN (and anything unexpected): the text */
      sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      return;
    }
  }
  if( iFirst<0 ){
    sqlite3_result_int64(ctx, 0);
    return;
  }
  if( iDot>=0 && iLast<iDot && fedParseInt64(z, iDot, &v)==0 ){
    sqlite3_result_int64(ctx, v);
    return;
  }
  nDigit = iLast - iFirst + 1 - (iDot>iFirst && iDot<iLast);
  if( nDigit<=15 ){
    sqlite3_result_double(ctx, strtod(z, 0));
    return;
  }
  sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
}

/* Hand SQLite the value of column pCol whose PostgreSQL text is z[0..n). */
void fedPgValue(sqlite3_context *ctx, const FedColumn *pCol,
                const char *z, int n){
  switch( pCol->eKind ){
    case PG_INT: {
      i64 v;
      if( fedParseInt64(z, n, &v)==0 ){
        sqlite3_result_int64(ctx, v);
      }else{
        sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      }
      break;
    }
    case PG_BOOL:
      sqlite3_result_int(ctx, z[0]=='t');
      break;
    case PG_FLOAT: {
      double r;
      if( z[0]=='N' ) break;                    /* NaN: NULL, as SQLite */
      if( z[0]=='I' ){ sqlite3_result_double(ctx, HUGE_VAL); break; }
      if( z[0]=='-' && z[1]=='I' ){ sqlite3_result_double(ctx, -HUGE_VAL); break; }
      if( !pgFastAtof(z, n, &r) ) r = strtod(z, 0);
      sqlite3_result_double(ctx, r);
      break;
    }
    case PG_NUMERIC:
      pgResultNumeric(ctx, z, n);
      break;
    case PG_BYTEA:
      pgResultBytea(ctx, z, n);
      break;
    case PG_TSTZ:
      if( n>=3 && n<=60 && z[n-3]=='+' && z[n-2]=='0' && z[n-1]=='0' ){
        char zOut[64];
        memcpy(zOut, z, n);
        memcpy(&zOut[n], ":00", 3);
        sqlite3_result_text(ctx, zOut, n+3, SQLITE_TRANSIENT);
        break;
      }
      /* fall through */
    default:
      sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      break;
  }
}
