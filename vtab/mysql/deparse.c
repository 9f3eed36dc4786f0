/*
** deparse.c (pure): what the MariaDB/MySQL store pushes, and the SELECT
** text of a plan with '?' marks and its values; then the text with the
** values written in as literals (the text protocol has no parameters).
** No I/O, no libmariadb call.
**
** The rules (docs/mysql.md, "Pushdown"), so that every pushed condition
** gives SQLite's answer:
**   - integer columns (not bigint unsigned): comparisons, IN, IS, IS NOT
**     (<=>), IS NULL, ORDER BY exactly.  The value is first given
**     SQLite's INTEGER affinity; a non-integral real, a number out of
**     range, text or a blob become the integer comparison (or constant)
**     SQLite's answer equals, never a MariaDB conversion;
**   - text columns: = and IN pushed LOOSE (a superset: MariaDB's
**     collations equal more strings than SQLite's BINARY, 'a' = 'A ' under
**     utf8mb4_general_ci; _bin collations pad too), LIKE LOOSE only under
**     a case-insensitive collation (a superset of SQLite's ASCII-folding
**     LIKE).  On a varchar/text column of a UTF-8 character set, a
**     comparison with a text constant is pushed EXACT as a comparison of
**     binary strings (CAST(col AS BINARY) op CAST(? AS BINARY): bytes, no
**     padding, as SQLite), and ORDER BY sorts by CAST(col AS BINARY).
**     NOT IN, and ranges with values known only at run time, are not;
**   - dates (DATE, DATETIME, TIMESTAMP): a zero or partial date reads
**     NULL, so IS NULL, IS NOT NULL and comparisons with a text constant
**     (as binary strings of MariaDB's text for the value, which is what
**     SQLite holds) carry a guard on YEAR/MONTH/DAYOFMONTH; exact;
**   - IS NULL / IS NOT NULL exactly on every column;
**   - DECIMAL, FLOAT/DOUBLE, bigint unsigned, BIT: only the NULL tests.
** MariaDB's own syntax is avoided: || (OR), / (decimal division); LIKE
** patterns have their backslashes doubled (MariaDB's LIKE escape).
*/
#include "myInt.h"
#include <string.h>
#include <math.h>
#include <stdlib.h>

/* 1 if a text column's values compare as SQLite's BINARY does once cast
** to binary strings: a varchar or text column in a UTF-8 character set
** (CAST(col AS BINARY) is then its UTF-8 bytes, compared with memcmp()
** and no padding, as SQLite compares text). */
static int myUtf8Coll(const FedColumn *pCol){
  const char *zColl = strstr(pCol->zType, " collate ");
  return zColl!=0 && sqlite3_strnicmp(zColl+9, "utf8", 4)==0;
}

/* 1 if the column's type is one of az[] (NULL-terminated). */
static int myTypeIn(const FedColumn *pCol, const char *const *az){
  const char *z = pCol->zType;
  int n = 0, i;
  while( z[n] && z[n]!=' ' ) n++;
  for(i=0; az[i]; i++){
    if( (int)strlen(az[i])==n && sqlite3_strnicmp(z, az[i], n)==0 ) return 1;
  }
  return 0;
}

static int myBinaryOk(const FedColumn *pCol){
  static const char *const az[] = {
    "varchar", "tinytext", "text", "mediumtext", "longtext", 0
  };
  return myTypeIn(pCol, az) && myUtf8Coll(pCol);
}

/* ORDER BY: as myBinaryOk(), for values of at most 65,535 bytes, all of
** which MariaDB sorts by (max_sort_length is set to 65,536 by conn.c):
** a longer MEDIUMTEXT or LONGTEXT value would sort by its first bytes. */
static int myOrderOk(const FedColumn *pCol){
  static const char *const az[] = { "varchar", "tinytext", "text", 0 };
  return myTypeIn(pCol, az) && myUtf8Coll(pCol);
}

int fedMyPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  const FedColumn *pCol;
  if( iCol<0 || iCol>=pTab->nCol ) return FED_PUSH_NO;
  /* A table without a one-column primary key has rowids that number the
  ** rows of each scan; SQLite answers "a OR b" by two scans whose rows it
  ** tells apart by rowid, and would merge different rows.  Nothing is
  ** pushed on such a table (docs/mysql.md). */
  if( pTab->iPk<0 ) return FED_PUSH_NO;
  pCol = &pTab->aCol[iCol];
  if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ) return FED_PUSH_EXACT;
  switch( pCol->eKind ){
    case MY_DATE:
      /* Against a text constant: the text MariaDB gives for the value
      ** (CAST(.. AS BINARY)) compared as SQLite compares text, zero and
      ** partial dates (NULL here) left out. */
      if( pRhs && sqlite3_value_type(pRhs)==SQLITE_TEXT
       && (op==FED_OP_EQ || op==FED_OP_NE || op==FED_OP_LT
        || op==FED_OP_LE || op==FED_OP_GT || op==FED_OP_GE) ){
        return FED_PUSH_EXACT;
      }
      return FED_PUSH_NO;
    case MY_INT:
      switch( op ){
        case FED_OP_EQ: case FED_OP_NE: case FED_OP_LT: case FED_OP_LE:
        case FED_OP_GT: case FED_OP_GE: case FED_OP_IN:
        case FED_OP_IS: case FED_OP_ISNOT:
          return FED_PUSH_EXACT;
      }
      return FED_PUSH_NO;
    case MY_TEXT:
      /* Only UTF-8 columns: another character set (latin1) refuses a
      ** utf8mb4 literal it cannot hold ("Illegal mix of collations"), and
      ** a column recorded without its collation is of an unknown one. */
      if( !myUtf8Coll(pCol) ) return FED_PUSH_NO;
      /* A text constant (it keeps its type: the column's TEXT affinity
      ** applies to it) compares exactly through CAST(.. AS BINARY).  A
      ** value known only at run time may meet NUMERIC affinity on the
      ** column (a join with a numeric column): not exact then. */
      if( pRhs && sqlite3_value_type(pRhs)==SQLITE_TEXT && myBinaryOk(pCol)
       && (op==FED_OP_EQ || op==FED_OP_NE || op==FED_OP_LT
        || op==FED_OP_LE || op==FED_OP_GT || op==FED_OP_GE) ){
        return FED_PUSH_EXACT;
      }
      if( op==FED_OP_EQ || op==FED_OP_IN ) return FED_PUSH_LOOSE;
      if( op==FED_OP_LIKE && fedMyCollClass(pCol)==MY_COLL_CI ){
        return FED_PUSH_LOOSE;
      }
      return FED_PUSH_NO;
  }
  return FED_PUSH_NO;
}

int fedMyOrderable(FedTable *pTab, int iCol, int bDesc){
  const FedColumn *pCol;
  (void)bDesc;
  if( iCol<0 || iCol>=pTab->nCol ) return 0;
  pCol = &pTab->aCol[iCol];
  /* MariaDB sorts NULL first ascending and last descending, as SQLite;
  ** text by its bytes (ORDER BY CAST(.. AS BINARY)). */
  return pCol->eKind==MY_INT || (pCol->eKind==MY_TEXT && myOrderOk(pCol));
}

void fedMyQuoteIdent(sqlite3_str *s, const char *z){
  sqlite3_str_appendchar(s, 1, '`');
  for(; *z; z++){
    if( *z=='`' ) sqlite3_str_appendchar(s, 1, '`');
    sqlite3_str_appendchar(s, 1, *z);
  }
  sqlite3_str_appendchar(s, 1, '`');
}

/**************************************************************************
** Parameters.
*/
void fedMyParamsFree(MyParams *p){
  int i;
  for(i=0; i<p->n; i++) sqlite3_free(p->az[i]);
  sqlite3_free(p->az);
  sqlite3_free(p->an);
  sqlite3_free(p->aNum);
  memset(p, 0, sizeof(*p));
}

static int myParamAdd(MyParams *p, const char *z, int n, int bNum){
  if( p->n>=p->nAlloc ){
    int nNew = p->nAlloc ? 2*p->nAlloc : 8;
    char **az = sqlite3_realloc64(p->az, sizeof(char*)*nNew);
    int *an;
    u8 *aNum;
    if( az==0 ) return SQLITE_NOMEM;
    p->az = az;
    an = sqlite3_realloc64(p->an, sizeof(int)*nNew);
    if( an==0 ) return SQLITE_NOMEM;
    p->an = an;
    aNum = sqlite3_realloc64(p->aNum, nNew);
    if( aNum==0 ) return SQLITE_NOMEM;
    p->aNum = aNum;
    p->nAlloc = nNew;
  }
  p->az[p->n] = fedStrdup(z, n);
  if( p->az[p->n]==0 ) return SQLITE_NOMEM;
  p->an[p->n] = n;
  p->aNum[p->n] = (u8)bNum;
  p->n++;
  return SQLITE_OK;
}

static int myParamInt(MyParams *p, i64 v){
  char zBuf[32];
  sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", v);
  return myParamAdd(p, zBuf, (int)strlen(zBuf), 1);
}

/* Write the SQL text with each '?' (outside quotes) replaced by its value:
** a number bare, text as '...' with ' and \ escaped (the sql_mode of
** conn.c keeps backslash escapes).  sqlite3_malloc'd, NULL on OOM. */
char *fedMyRender(const char *zSql, const MyParams *pParams){
  sqlite3_str *s = sqlite3_str_new(0);
  int iParam = 0;
  char cQuote = 0;
  for(; *zSql; zSql++){
    char c = *zSql;
    if( cQuote ){
      if( c==cQuote ) cQuote = 0;
      sqlite3_str_appendchar(s, 1, c);
    }else if( c=='\'' || c=='`' || c=='"' ){
      cQuote = c;
      sqlite3_str_appendchar(s, 1, c);
    }else if( c=='?' && iParam<pParams->n ){
      const char *z = pParams->az[iParam];
      int n = pParams->an[iParam], i;
      if( pParams->aNum[iParam] ){
        sqlite3_str_append(s, z, n);
      }else{
        sqlite3_str_appendchar(s, 1, '\'');
        for(i=0; i<n; i++){
          switch( z[i] ){
            case '\'': sqlite3_str_append(s, "''", 2); break;
            case '\\': sqlite3_str_append(s, "\\\\", 2); break;
            case 0:    sqlite3_str_append(s, "\\0", 2); break;
            default:   sqlite3_str_appendchar(s, 1, z[i]); break;
          }
        }
        sqlite3_str_appendchar(s, 1, '\'');
      }
      iParam++;
    }else{
      sqlite3_str_appendchar(s, 1, c);
    }
  }
  return sqlite3_str_finish(s);
}

/**************************************************************************
** Conditions.
*/
#define MY_FALSE   0            /* No row can match */
#define MY_NOTNULL 1            /* Every non-NULL value matches */
#define MY_CMP     2            /* "col op v" with the integer v */

/* The integer comparison that gives SQLite's answer to "col op pVal" on an
** integer column: *pOp and *piVal for MY_CMP. */
static int myIntCompare(sqlite3_value *pVal, int *pOp, i64 *piVal){
  int op = *pOp;
  int eType = fedValueNumericType(pVal);
  double r;
  if( eType==SQLITE_NULL ) return MY_FALSE;
  if( eType==SQLITE_INTEGER ){
    *piVal = sqlite3_value_int64(pVal);
    return MY_CMP;
  }
  if( eType!=SQLITE_FLOAT ){
    /* Text and blobs sort after every number. */
    return (op==FED_OP_NE || op==FED_OP_LT || op==FED_OP_LE)
           ? MY_NOTNULL : MY_FALSE;
  }
  r = sqlite3_value_double(pVal);
  if( r!=r ) return MY_FALSE;                     /* NaN is NULL */
  if( r>=9223372036854775808.0 ){
    return (op==FED_OP_NE || op==FED_OP_LT || op==FED_OP_LE)
           ? MY_NOTNULL : MY_FALSE;
  }
  if( r<-9223372036854775808.0 ){
    return (op==FED_OP_NE || op==FED_OP_GT || op==FED_OP_GE)
           ? MY_NOTNULL : MY_FALSE;
  }
  if( floor(r)==r ){
    *piVal = (i64)r;
    return MY_CMP;
  }
  switch( op ){
    case FED_OP_EQ: return MY_FALSE;
    case FED_OP_NE: return MY_NOTNULL;
    case FED_OP_LT: case FED_OP_LE:
      /* col < 2.5 and col <= 2.5 are col <= 2 */
      *pOp = FED_OP_LE;
      *piVal = (i64)floor(r);
      return MY_CMP;
    default:
      /* col > 2.5 and col >= 2.5 are col >= 3 */
      *pOp = FED_OP_GE;
      *piVal = (i64)ceil(r);
      return MY_CMP;
  }
}

static const char *myOpText(int op){
  switch( op ){
    case FED_OP_EQ: return " = ";
    case FED_OP_NE: return " <> ";
    case FED_OP_LT: return " < ";
    case FED_OP_LE: return " <= ";
    case FED_OP_GT: return " > ";
    default:        return " >= ";
  }
}

/* The text a text column is compared with: SQLite gives the value TEXT
** affinity (numbers become their text); NULL for a blob or NULL, which
** equal no text. */
static const char *myTextOf(sqlite3_value *pVal, int *pn){
  int e = sqlite3_value_type(pVal);
  const char *z;
  if( e==SQLITE_NULL || e==SQLITE_BLOB ) return 0;
  z = (const char*)sqlite3_value_text(pVal);
  *pn = sqlite3_value_bytes(pVal);
  return z;
}

/* 1 if z[0..n-1] is well-formed UTF-8 without NUL: MariaDB refuses
** anything else in a utf8mb4 literal. */
static int myUtf8Ok(const unsigned char *z, int n){
  int i = 0;
  while( i<n ){
    unsigned char c = z[i];
    int k, j;
    if( c==0 ) return 0;
    if( c<0x80 ){ i++; continue; }
    if( c>=0xc2 && c<=0xdf ) k = 1;
    else if( c>=0xe0 && c<=0xef ) k = 2;
    else if( c>=0xf0 && c<=0xf4 ) k = 3;
    else return 0;
    for(j=1; j<=k; j++){
      if( i+j>=n || (z[i+j]&0xc0)!=0x80 ) return 0;
    }
    if( c==0xe0 && z[i+1]<0xa0 ) return 0;        /* overlong */
    if( c==0xed && z[i+1]>=0xa0 ) return 0;       /* surrogates */
    if( c==0xf0 && z[i+1]<0x90 ) return 0;        /* overlong */
    if( c==0xf4 && z[i+1]>=0x90 ) return 0;       /* above U+10FFFF */
    i += k+1;
  }
  return 1;
}

/* How a text column's = or IN element can be pushed: 1 with its text, or
** 0: no row can match (NULL, a blob), or -1: it cannot be pushed (a
** number: which affinity SQLite applied depends on the other operand,
** so its text form is not known; text MariaDB would refuse). */
static int myTextEq(sqlite3_value *pVal, const char **pz, int *pn){
  int e = sqlite3_value_type(pVal);
  if( e==SQLITE_NULL || e==SQLITE_BLOB ) return 0;
  if( e!=SQLITE_TEXT ) return -1;
  *pz = (const char*)sqlite3_value_text(pVal);
  *pn = sqlite3_value_bytes(pVal);
  if( *pz==0 ) return -1;
  return myUtf8Ok((const unsigned char*)*pz, *pn) ? 1 : -1;
}

/* Append one pushed term; returns an SQLite error code (NOMEM) or OK. */
/* A date that reads as NULL here (zero or partial: year, month or day 0)
** is a value to MariaDB: "col holds a date SQLite sees", or with bNull
** "col is NULL to SQLite". */
static void myDateGuard(sqlite3_str *s, const FedColumn *pCol, int bNull){
  static const char *const azFn[] = { "YEAR", "MONTH", "DAYOFMONTH" };
  int i;
  sqlite3_str_appendchar(s, 1, '(');
  if( bNull ){
    fedMyQuoteIdent(s, pCol->zName);
    sqlite3_str_appendall(s, " IS NULL");
  }
  for(i=0; i<3; i++){
    if( bNull || i ) sqlite3_str_appendall(s, bNull ? " OR " : " AND ");
    sqlite3_str_appendf(s, "%s(", azFn[i]);
    fedMyQuoteIdent(s, pCol->zName);
    sqlite3_str_appendall(s, bNull ? ") = 0" : ") <> 0");
  }
  sqlite3_str_appendchar(s, 1, ')');
}

static int myTerm(sqlite3_str *s, const FedColumn *pCol, const FedPlanTerm *t,
                  sqlite3_value *pVal, MyParams *pParams){
  int rc = SQLITE_OK;
  if( pCol->eKind==MY_DATE && t->op==FED_OP_ISNULL ){
    myDateGuard(s, pCol, 1);
    return SQLITE_OK;
  }
  if( pCol->eKind==MY_DATE && t->op==FED_OP_NOTNULL ){
    myDateGuard(s, pCol, 0);
    return SQLITE_OK;
  }
  if( t->op==FED_OP_ISNULL || t->op==FED_OP_NOTNULL ){
    fedMyQuoteIdent(s, pCol->zName);
    sqlite3_str_appendall(s, t->op==FED_OP_ISNULL ? " IS NULL"
                                                  : " IS NOT NULL");
    return SQLITE_OK;
  }
  if( pVal==0 ){
    sqlite3_str_appendall(s, "TRUE");
    return SQLITE_OK;
  }
  if( pCol->eKind==MY_INT && (t->op==FED_OP_IS || t->op==FED_OP_ISNOT) ){
    /* IS: NULL-safe equality (<=>); IS NOT: its negation. */
    int op = FED_OP_EQ, bNot = t->op==FED_OP_ISNOT;
    i64 v = 0;
    if( sqlite3_value_type(pVal)==SQLITE_NULL ){
      fedMyQuoteIdent(s, pCol->zName);
      sqlite3_str_appendall(s, bNot ? " IS NOT NULL" : " IS NULL");
      return SQLITE_OK;
    }
    if( myIntCompare(pVal, &op, &v)!=MY_CMP ){
      /* Equal to no integer (nor to NULL). */
      sqlite3_str_appendall(s, bNot ? "TRUE" : "FALSE");
      return SQLITE_OK;
    }
    sqlite3_str_appendall(s, bNot ? "NOT (" : "");
    fedMyQuoteIdent(s, pCol->zName);
    sqlite3_str_appendall(s, " <=> ?");
    if( bNot ) sqlite3_str_appendchar(s, 1, ')');
    return myParamInt(pParams, v);
  }
  if( pCol->eKind==MY_INT ){
    if( t->op==FED_OP_IN ){
      sqlite3_value *pV;
      int n = 0, rc2;
      for(rc2=sqlite3_vtab_in_first(pVal, &pV); rc2==SQLITE_OK && pV;
          rc2=sqlite3_vtab_in_next(pVal, &pV)){
        int op = FED_OP_EQ;
        i64 v;
        if( myIntCompare(pV, &op, &v)!=MY_CMP ) continue;
        if( n==0 ){
          fedMyQuoteIdent(s, pCol->zName);
          sqlite3_str_appendall(s, " IN (");
        }else{
          sqlite3_str_appendall(s, ", ");
        }
        sqlite3_str_appendchar(s, 1, '?');
        if( rc==SQLITE_OK ) rc = myParamInt(pParams, v);
        n++;
      }
      if( rc2!=SQLITE_OK && rc2!=SQLITE_DONE && rc==SQLITE_OK ) rc = rc2;
      sqlite3_str_appendall(s, n ? ")" : "FALSE");
    }else{
      int op = t->op;
      i64 v = 0;
      switch( myIntCompare(pVal, &op, &v) ){
        case MY_FALSE: sqlite3_str_appendall(s, "FALSE"); break;
        case MY_NOTNULL:
          fedMyQuoteIdent(s, pCol->zName);
          sqlite3_str_appendall(s, " IS NOT NULL");
          break;
        default:
          fedMyQuoteIdent(s, pCol->zName);
          sqlite3_str_appendall(s, myOpText(op));
          sqlite3_str_appendchar(s, 1, '?');
          rc = myParamInt(pParams, v);
          break;
      }
    }
    return rc;
  }
  /* Text compared exactly: as binary strings.  = also keeps the plain
  ** comparison, which can use the remote index. */
  if( t->bExact && t->op!=FED_OP_IN && t->op!=FED_OP_LIKE ){
    int e = sqlite3_value_type(pVal), nz = 0;
    const char *z;
    if( e==SQLITE_NULL ){
      sqlite3_str_appendall(s, "FALSE");
      return SQLITE_OK;
    }
    if( e==SQLITE_BLOB ){
      /* Text sorts before every blob. */
      if( t->op==FED_OP_NE || t->op==FED_OP_LT || t->op==FED_OP_LE ){
        if( pCol->eKind==MY_DATE ){
          myDateGuard(s, pCol, 0);
        }else{
          fedMyQuoteIdent(s, pCol->zName);
          sqlite3_str_appendall(s, " IS NOT NULL");
        }
      }else{
        sqlite3_str_appendall(s, "FALSE");
      }
      return SQLITE_OK;
    }
    z = myTextOf(pVal, &nz);
    if( z==0 ) return SQLITE_NOMEM;
    if( !myUtf8Ok((const unsigned char*)z, nz) ){
      /* Cannot be sent in a utf8mb4 literal: send its bytes as hex. */
      static const char aHex[] = "0123456789ABCDEF";
      int i;
      if( t->op==FED_OP_EQ ){
        sqlite3_str_appendall(s, "FALSE");
        return SQLITE_OK;
      }
      sqlite3_str_appendall(s, "CAST(");
      fedMyQuoteIdent(s, pCol->zName);
      sqlite3_str_appendall(s, " AS BINARY)");
      sqlite3_str_appendall(s, myOpText(t->op));
      sqlite3_str_appendall(s, nz ? "X'" : "''");
      for(i=0; i<nz; i++){
        sqlite3_str_appendchar(s, 1, aHex[(z[i]>>4)&0xf]);
        sqlite3_str_appendchar(s, 1, aHex[z[i]&0xf]);
      }
      if( nz ) sqlite3_str_appendchar(s, 1, '\'');
      if( pCol->eKind==MY_DATE ){
        sqlite3_str_appendall(s, " AND ");
        myDateGuard(s, pCol, 0);
      }
      return SQLITE_OK;
    }
    if( t->op==FED_OP_EQ && pCol->eKind!=MY_DATE ){
      fedMyQuoteIdent(s, pCol->zName);
      sqlite3_str_appendall(s, " = ? AND ");
      rc = myParamAdd(pParams, z, nz, 0);
      if( rc!=SQLITE_OK ) return rc;
    }
    sqlite3_str_appendall(s, "CAST(");
    fedMyQuoteIdent(s, pCol->zName);
    sqlite3_str_appendall(s, " AS BINARY)");
    sqlite3_str_appendall(s, myOpText(t->op));
    sqlite3_str_appendall(s, "CAST(? AS BINARY)");
    if( pCol->eKind==MY_DATE ){
      sqlite3_str_appendall(s, " AND ");
      myDateGuard(s, pCol, 0);
    }
    return myParamAdd(pParams, z, nz, 0);
  }

  /* Text: = IN LIKE, a superset that SQLite checks again. */
  if( t->op==FED_OP_IN ){
    sqlite3_value *pV;
    int n = 0, rc2;
    for(rc2=sqlite3_vtab_in_first(pVal, &pV); rc2==SQLITE_OK && pV;
        rc2=sqlite3_vtab_in_next(pVal, &pV)){
      const char *z = 0;
      int nz = 0;
      if( myTextEq(pV, &z, &nz)<0 ) break;
    }
    if( rc2==SQLITE_OK && pV ){
      /* An element that cannot be pushed: no condition (a superset). */
      sqlite3_str_appendall(s, "TRUE");
      return SQLITE_OK;
    }
    for(rc2=sqlite3_vtab_in_first(pVal, &pV); rc2==SQLITE_OK && pV;
        rc2=sqlite3_vtab_in_next(pVal, &pV)){
      int nz = 0;
      const char *z = 0;
      if( myTextEq(pV, &z, &nz)==0 ) continue;
      if( n==0 ){
        fedMyQuoteIdent(s, pCol->zName);
        sqlite3_str_appendall(s, " IN (");
      }else{
        sqlite3_str_appendall(s, ", ");
      }
      sqlite3_str_appendchar(s, 1, '?');
      if( rc==SQLITE_OK ) rc = myParamAdd(pParams, z, nz, 0);
      n++;
    }
    if( rc2!=SQLITE_OK && rc2!=SQLITE_DONE && rc==SQLITE_OK ) rc = rc2;
    sqlite3_str_appendall(s, n ? ")" : "FALSE");
    return rc;
  }else{
    int nz = 0, i, e;
    const char *z = 0;
    if( t->op==FED_OP_LIKE ){
      /* LIKE takes the text of any pattern (a blob's bytes too: not
      ** pushed); NULL matches nothing. */
      e = sqlite3_value_type(pVal);
      if( e==SQLITE_NULL ){
        sqlite3_str_appendall(s, "FALSE");
        return SQLITE_OK;
      }
      z = e==SQLITE_BLOB ? 0 : myTextOf(pVal, &nz);
      if( z==0 || !myUtf8Ok((const unsigned char*)z, nz) ){
        sqlite3_str_appendall(s, "TRUE");
        return SQLITE_OK;
      }
    }else{
      e = myTextEq(pVal, &z, &nz);
      if( e<=0 ){
        /* NULL or a blob: no row; a number or odd text: not pushed. */
        sqlite3_str_appendall(s, e==0 ? "FALSE" : "TRUE");
        return SQLITE_OK;
      }
    }
    fedMyQuoteIdent(s, pCol->zName);
    if( t->op==FED_OP_LIKE ){
      sqlite3_str *p = sqlite3_str_new(0);
      char *zPat;
      for(i=0; i<nz; i++){
        if( z[i]=='\\' ) sqlite3_str_appendchar(p, 1, '\\');
        sqlite3_str_appendchar(p, 1, z[i]);
      }
      if( sqlite3_str_errcode(p) ){
        sqlite3_free(sqlite3_str_finish(p));
        return SQLITE_NOMEM;
      }
      nz = sqlite3_str_length(p);
      zPat = sqlite3_str_finish(p);
      if( zPat==0 && nz>0 ) return SQLITE_NOMEM;
      sqlite3_str_appendall(s, " LIKE ?");
      rc = myParamAdd(pParams, zPat ? zPat : "", nz, 0);
      sqlite3_free(zPat);
    }else{
      sqlite3_str_appendall(s, " = ?");
      rc = myParamAdd(pParams, z, nz, 0);
    }
    return rc;
  }
}

int fedMyDeparseSelect(FedTable *pTab, const FedPlan *pPlan, int argc,
                       sqlite3_value **argv, int *aResCol, char **pzSql,
                       MyParams *pParams){
  sqlite3_str *s = sqlite3_str_new(0);
  int i, nRes = 0, rc = SQLITE_OK, nWhere = 0;
  *pzSql = 0;
  sqlite3_str_appendall(s, "SELECT ");
  for(i=0; i<pTab->nCol; i++){
    /* The key always: SQLite reads it to tell rows apart (an OR of two
    ** scans of a WITHOUT ROWID table) although colUsed does not say so. */
    if( fedPlanColUsed(pPlan, i) || i==pTab->iPk ){
      if( nRes ) sqlite3_str_appendall(s, ", ");
      fedMyQuoteIdent(s, pTab->aCol[i].zName);
      aResCol[i] = nRes++;
    }else{
      aResCol[i] = -1;
    }
  }
  if( nRes==0 ) sqlite3_str_appendall(s, "1");
  sqlite3_str_appendall(s, " FROM ");
  sqlite3_str_appendall(s, pTab->zRemote);
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = 0;
    if( t->iCol<0 || t->iCol>=pTab->nCol ) continue;
    if( t->iArg>=0 ){
      if( t->iArg>=argc ) continue;
      pVal = argv[t->iArg];
    }
    sqlite3_str_appendall(s, nWhere++ ? " AND " : " WHERE ");
    rc = myTerm(s, &pTab->aCol[t->iCol], t, pVal, pParams);
  }
  for(i=0; i<pPlan->nOrder; i++){
    const FedColumn *pCol = &pTab->aCol[pPlan->aOrderCol[i]];
    sqlite3_str_appendall(s, i ? ", " : " ORDER BY ");
    if( pCol->eKind==MY_TEXT ){
      sqlite3_str_appendall(s, "CAST(");
      fedMyQuoteIdent(s, pCol->zName);
      sqlite3_str_appendall(s, " AS BINARY)");
    }else{
      fedMyQuoteIdent(s, pCol->zName);
    }
    if( pPlan->aOrderDesc[i] ) sqlite3_str_appendall(s, " DESC");
  }
  if( rc==SQLITE_OK ){
    i64 nLimit = -1, nOffset = 0;
    if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
      nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    }
    if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
      nOffset = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    }
    if( nLimit>=0 ){
      sqlite3_str_appendall(s, " LIMIT ?");
      rc = myParamInt(pParams, nLimit);
    }else if( nOffset>0 ){
      sqlite3_str_appendall(s, " LIMIT 18446744073709551615");
    }
    if( rc==SQLITE_OK && nOffset>0 ){
      sqlite3_str_appendall(s, " OFFSET ?");
      rc = myParamInt(pParams, nOffset);
    }
  }
  *pzSql = sqlite3_str_finish(s);
  if( rc==SQLITE_OK && *pzSql==0 ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzSql);
    *pzSql = 0;
  }
  return rc;
}

/**************************************************************************
** Writes (pure): the literals of the values written, INSERT rows, UPDATE
** and DELETE by primary key, savepoints.  Every value is a literal in the
** text: the session's sql_mode (conn.c) has neither NO_BACKSLASH_ESCAPES
** nor ANSI_QUOTES, and write.c refuses to send when the server says
** NO_BACKSLASH_ESCAPES is on; quotes are doubled and backslashes escaped,
** and text that is not well-formed UTF-8 (or holds a NUL) goes as a hex
** literal, never as raw bytes.
*/

/* 1 if z[0..n-1] is an optional '-' and 1 to 20 digits: an integer
** literal MariaDB reads exactly (into BIGINT UNSIGNED too). */
static int myDigits(const char *z, int n){
  int i = (n>0 && z[0]=='-') ? 1 : 0;
  if( n-i<1 || n-i>20 ) return 0;
  for(; i<n; i++) if( z[i]<'0' || z[i]>'9' ) return 0;
  return 1;
}

static void myHexLiteral(sqlite3_str *s, const unsigned char *a, int n){
  static const char zHex[] = "0123456789ABCDEF";
  int i;
  sqlite3_str_append(s, "X'", 2);
  for(i=0; i<n; i++){
    sqlite3_str_appendchar(s, 1, zHex[a[i]>>4]);
    sqlite3_str_appendchar(s, 1, zHex[a[i]&0xf]);
  }
  sqlite3_str_appendchar(s, 1, '\'');
}

/* A string literal: '...' with ' doubled and \ escaped. */
static void myQuoteText(sqlite3_str *s, const char *z, int n){
  int i;
  sqlite3_str_appendchar(s, 1, '\'');
  for(i=0; i<n; i++){
    if( z[i]=='\'' ) sqlite3_str_append(s, "''", 2);
    else if( z[i]=='\\' ) sqlite3_str_append(s, "\\\\", 2);
    else sqlite3_str_appendchar(s, 1, z[i]);
  }
  sqlite3_str_appendchar(s, 1, '\'');
}

/*
** Append the literal that writes pVal into column iCol: NULL; an integer
** bare; a real bare in the shortest form that reads back as the same
** double (integral and in range for an integer column, else refused: a
** TINYINT would round 2.5 silently); text as a quoted string, or bare
** when it is an integer's digits for an integer column (so BIGINT
** UNSIGNED above 2^63-1 is exact); a blob, and text that is not UTF-8, as
** X'..'.  Range and format are MariaDB's to check (strict mode: an error
** naming the column and the row, nothing written).
*/
int fedMyWriteLiteral(sqlite3_str *s, FedTable *pTab, int iCol,
                      sqlite3_value *pVal, char **pzErr){
  const FedColumn *pCol = &pTab->aCol[iCol];
  int bInt = pCol->eKind==MY_INT || pCol->eKind==MY_UBIG
          || pCol->eKind==MY_BIT;
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:
      sqlite3_str_append(s, "NULL", 4);
      break;
    case SQLITE_INTEGER:
      sqlite3_str_appendf(s, "%lld", sqlite3_value_int64(pVal));
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pVal);
      char zBuf[64];
      if( r!=r || r-r!=0.0 ){
        fedSetError(pzErr, "%s: table \"%s\": column \"%s\": cannot write"
            " %s (MariaDB has no infinities or NaN)", MY_STORE, pTab->zName,
            pCol->zName, r!=r ? "NaN" : r>0 ? "Inf" : "-Inf");
        return SQLITE_MISMATCH;
      }
      if( bInt ){
        if( r!=floor(r) ){
          fedSetError(pzErr, "%s: table \"%s\": column \"%s\" (%s) holds"
              " integers; %!.15g is not one", MY_STORE, pTab->zName,
              pCol->zName, pCol->zType, r);
          return SQLITE_MISMATCH;
        }
        /* Integral: its exact digits (printf's %f keeps 16 only). */
        if( r>=-9223372036854775808.0 && r<9223372036854775808.0 ){
          sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", (i64)r);
        }else if( r>0 && r<18446744073709551616.0 ){
          sqlite3_snprintf(sizeof(zBuf), zBuf, "%llu", (u64)r);
        }else{
          /* Beyond every integer column: MariaDB says out of range. */
          sqlite3_snprintf(sizeof(zBuf), zBuf, "%!.17g", r);
        }
      }else{
        sqlite3_snprintf(sizeof(zBuf), zBuf, "%!.15g", r);
        if( strtod(zBuf, 0)!=r ){
          sqlite3_snprintf(sizeof(zBuf), zBuf, "%!.17g", r);
        }
        /* "1e+300" and "12.5" are DOUBLE and DECIMAL literals; both are
        ** read exactly into a DOUBLE column. */
      }
      sqlite3_str_appendall(s, zBuf);
      break;
    }
    case SQLITE_TEXT: {
      const char *z = (const char*)sqlite3_value_text(pVal);
      int n = sqlite3_value_bytes(pVal);
      if( z==0 ) return SQLITE_NOMEM;
      if( bInt && myDigits(z, n) ){
        sqlite3_str_append(s, z, n);
      }else if( myUtf8Ok((const unsigned char*)z, n) ){
        myQuoteText(s, z, n);
      }else{
        myHexLiteral(s, (const unsigned char*)z, n);
      }
      break;
    }
    default: {
      const unsigned char *a = sqlite3_value_blob(pVal);
      int n = sqlite3_value_bytes(pVal);
      if( a==0 && n>0 ) return SQLITE_NOMEM;
      myHexLiteral(s, a, n);
      break;
    }
  }
  return sqlite3_str_errcode(s);
}

/* "INSERT INTO t (`a`, `b`) VALUES " for the columns of mCol. */
int fedMyDeparseInsert(sqlite3_str *s, FedTable *pTab, u64 mCol){
  int i, n = 0;
  sqlite3_str_appendf(s, "INSERT INTO %s (", pTab->zRemote);
  for(i=0; i<pTab->nCol; i++){
    if( (mCol & ((u64)1<<i))==0 ) continue;
    if( n++ ) sqlite3_str_append(s, ", ", 2);
    fedMyQuoteIdent(s, pTab->aCol[i].zName);
  }
  sqlite3_str_appendall(s, ") VALUES ");
  return sqlite3_str_errcode(s);
}

/* "(v1, v2)": one row of the columns of mCol. */
int fedMyDeparseRow(sqlite3_str *s, FedTable *pTab, u64 mCol,
                    sqlite3_value **aVal, char **pzErr){
  int i, n = 0, rc = SQLITE_OK;
  sqlite3_str_appendchar(s, 1, '(');
  for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
    if( (mCol & ((u64)1<<i))==0 ) continue;
    if( n++ ) sqlite3_str_append(s, ", ", 2);
    rc = fedMyWriteLiteral(s, pTab, i, aVal[i], pzErr);
  }
  sqlite3_str_appendchar(s, 1, ')');
  return rc==SQLITE_OK ? sqlite3_str_errcode(s) : rc;
}

/* 1 if two values are the same (type and bytes). */
static int mySameValue(sqlite3_value *a, sqlite3_value *b){
  int e = sqlite3_value_type(a);
  int n = sqlite3_value_bytes(a);
  if( e!=sqlite3_value_type(b) ) return 0;
  if( e==SQLITE_NULL ) return 1;
  if( e==SQLITE_INTEGER ){
    return sqlite3_value_int64(a)==sqlite3_value_int64(b);
  }
  if( e==SQLITE_FLOAT ){
    return sqlite3_value_double(a)==sqlite3_value_double(b);
  }
  if( n!=sqlite3_value_bytes(b) ) return 0;
  if( e==SQLITE_TEXT ){
    const unsigned char *za = sqlite3_value_text(a);
    const unsigned char *zb = sqlite3_value_text(b);
    return za && zb && memcmp(za, zb, n)==0;
  }
  return n==0 || memcmp(sqlite3_value_blob(a), sqlite3_value_blob(b), n)==0;
}

/*
** UPDATE (argc>1) or DELETE (argc==1) of the row whose primary key is
** argv[0]: "UPDATE t SET `a` = v, ... WHERE `k` = old" (every column but
** an unchanged key) or "DELETE FROM t WHERE `k` = old".  The key is
** unique under its collation, so the comparison meets that row only.
** *pzSql is NULL when nothing changes.
*/
int fedMyDeparseUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                       char **pzSql, char **pzErr){
  sqlite3_str *s = sqlite3_str_new(0);
  int i, n = 0, rc = SQLITE_OK;
  *pzSql = 0;
  if( argc==1 ){
    sqlite3_str_appendf(s, "DELETE FROM %s WHERE ", pTab->zRemote);
  }else{
    sqlite3_str_appendf(s, "UPDATE %s SET ", pTab->zRemote);
    for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
      sqlite3_value *pVal = argv[2+i];
      if( i==pTab->iPk && mySameValue(pVal, argv[0]) ) continue;
      if( n++ ) sqlite3_str_append(s, ", ", 2);
      fedMyQuoteIdent(s, pTab->aCol[i].zName);
      sqlite3_str_append(s, " = ", 3);
      rc = fedMyWriteLiteral(s, pTab, i, pVal, pzErr);
    }
    if( n==0 ){
      sqlite3_free(sqlite3_str_finish(s));
      return rc;
    }
    sqlite3_str_append(s, " WHERE ", 7);
  }
  fedMyQuoteIdent(s, pTab->aCol[pTab->iPk].zName);
  sqlite3_str_append(s, " = ", 3);
  if( rc==SQLITE_OK ) rc = fedMyWriteLiteral(s, pTab, pTab->iPk, argv[0], pzErr);
  *pzSql = sqlite3_str_finish(s);
  if( *pzSql==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzSql);
    *pzSql = 0;
  }
  return rc;
}

/* "SAVEPOINT fed_sp_<i>", "RELEASE SAVEPOINT fed_sp_<i>", ... */
char *fedMyDeparseSavepoint(const char *zVerb, int iLevel){
  return sqlite3_mprintf("%s fed_sp_%d", zVerb, iLevel);
}
