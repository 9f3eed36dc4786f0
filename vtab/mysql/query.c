/*
** query.c: pass-through of the MariaDB/MySQL store: fed_query() and
** fed_exec().  One statement (multi-statements are off); each '?' outside
** quotes takes the next parameter, written in as a literal as scans do.
** Refused, because the store owns them: transaction control (BEGIN,
** START, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, XA, LOCK/UNLOCK TABLES),
** SET (the session's time zone, sql_mode and character set are what the
** pushdown relies on), USE, and a leading executable comment (slash, star, bang).
** Rows come back as JSON objects.
*/
#include "myInt.h"
#include <mysql.h>
#include <string.h>

static const char *mySkipBlank(const char *z){
  for(;;){
    if( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' || *z=='\f'
     || *z=='\v' ){
      z++;
    }else if( (z[0]=='-' && z[1]=='-' && (z[2]==' ' || z[2]=='\t'
               || z[2]=='\n' || z[2]==0)) || z[0]=='#' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' && z[2]!='!'
           && !(z[2]=='M' && z[3]=='!') ){
      z += 2;
      while( *z && !(z[0]=='*' && z[1]=='/') ) z++;
      if( *z ) z += 2;
    }else{
      return z;
    }
  }
}

/* The refused command zQuery starts with, or NULL. */
static const char *myControl(const char *zQuery){
  static const char *const az[] = {
    "BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA",
    "LOCK", "UNLOCK", "SET", "USE", 0
  };
  const char *z = mySkipBlank(zQuery);
  int i, n = 0;
  if( z[0]=='/' && z[1]=='*' ) return "an executable comment";
  while( (z[n]>='a' && z[n]<='z') || (z[n]>='A' && z[n]<='Z') ) n++;
  for(i=0; az[i]; i++){
    if( (int)strlen(az[i])==n && sqlite3_strnicmp(z, az[i], n)==0 ){
      return az[i];
    }
  }
  return 0;
}

/* Append one result value as JSON, by its field type. */
static void myJsonValue(sqlite3_str *s, const MYSQL_FIELD *f,
                        const char *z, unsigned long n){
  if( z==0 ){
    sqlite3_str_appendall(s, "null");
    return;
  }
  switch( f->type ){
    case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24: case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_YEAR:
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL:
    case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
      sqlite3_str_append(s, z, (int)n);
      return;
    default:
      break;
  }
  if( f->charsetnr==63 && f->type!=MYSQL_TYPE_DATE
   && f->type!=MYSQL_TYPE_DATETIME && f->type!=MYSQL_TYPE_TIMESTAMP
   && f->type!=MYSQL_TYPE_TIME && f->type!=MYSQL_TYPE_BIT ){
    /* Binary strings: their bytes as hex text. */
    static const char aHex[] = "0123456789abcdef";
    unsigned long i;
    sqlite3_str_appendchar(s, 1, '"');
    for(i=0; i<n; i++){
      sqlite3_str_appendchar(s, 1, aHex[((unsigned char)z[i])>>4]);
      sqlite3_str_appendchar(s, 1, aHex[z[i]&0xf]);
    }
    sqlite3_str_appendchar(s, 1, '"');
    return;
  }
  if( f->type==MYSQL_TYPE_BIT ){
    unsigned long long u = 0;
    unsigned long i;
    for(i=0; i<n && i<8; i++) u = (u<<8) | (unsigned char)z[i];
    sqlite3_str_appendf(s, "%llu", u);
    return;
  }
  fedJsonQuote(s, z, (int)n);
}

int fedMyQuery(FedConn *pConn, const char *zQuery, int nParam,
               sqlite3_value **apParam, char ***pazRow, int *pnRow,
               i64 *pnChanged, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  MyParams params;
  char *zText = 0;
  void *pRes = 0;
  i64 iSeq = 0;
  char **azRow = 0;
  int nRow = 0, nAlloc = 0, i, rc = SQLITE_OK;
  const char *zCtl = myControl(zQuery);

  *pazRow = 0;
  *pnRow = 0;
  *pnChanged = 0;
  if( zCtl ){
    fedSetError(pzErr, "%s: %s cannot be sent through fed_query or"
        " fed_exec: SQLite's BEGIN, COMMIT, ROLLBACK and SAVEPOINT control"
        " the server's transaction, and the session's settings are the"
        " store's", MY_STORE, zCtl);
    return SQLITE_ERROR;
  }
  memset(&params, 0, sizeof(params));
  params.az = sqlite3_malloc64(sizeof(char*)*(nParam+1));
  params.an = sqlite3_malloc64(sizeof(int)*(nParam+1));
  params.aNum = sqlite3_malloc64(nParam+1);
  if( params.az==0 || params.an==0 || params.aNum==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<nParam; i++){
    sqlite3_value *v = apParam[i];
    int e = v ? sqlite3_value_type(v) : SQLITE_NULL;
    const char *z;
    params.n = i;
    if( e==SQLITE_NULL ){
      z = "NULL";
      params.aNum[i] = 1;
    }else{
      z = (const char*)sqlite3_value_text(v);
      if( z==0 ){ rc = SQLITE_NOMEM; break; }
      params.aNum[i] = (e==SQLITE_INTEGER || e==SQLITE_FLOAT);
    }
    params.an[i] = e==SQLITE_NULL ? 4 : sqlite3_value_bytes(v);
    params.az[i] = fedStrdup(z, params.an[i]);
    if( params.az[i]==0 ){ rc = SQLITE_NOMEM; break; }
    params.n = i+1;
  }
  if( rc==SQLITE_OK ){
    zText = fedMyRender(zQuery, &params);
    if( zText==0 ) rc = SQLITE_NOMEM;
  }
  /* Rows buffered by this transaction go first, with an owed START. */
  if( rc==SQLITE_OK ) rc = fedMyReady(p, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedMyQueryStart(p, zText, params.n, (const char*const*)params.az,
                         params.an, &pRes, &iSeq, pzErr);
  }
  fedMyParamsFree(&params);
  sqlite3_free(zText);
  if( rc==SQLITE_OK && pRes==0 ){
    *pnChanged = (i64)mysql_affected_rows((MYSQL*)p->my);
  }
  if( rc==SQLITE_OK && pRes ){
    MYSQL_FIELD *aField = mysql_fetch_fields((MYSQL_RES*)pRes);
    int nField = (int)mysql_num_fields((MYSQL_RES*)pRes);
    for(;;){
      char **az;
      unsigned long *an;
      sqlite3_str *s;
      int j;
      rc = fedMyFetch(p, pRes, &az, &an, pzErr);
      if( rc!=SQLITE_OK || az==0 ) break;
      if( nRow>=nAlloc ){
        char **azNew;
        nAlloc = nAlloc ? 2*nAlloc : 16;
        azNew = sqlite3_realloc64(azRow, sizeof(char*)*nAlloc);
        if( azNew==0 ){ rc = SQLITE_NOMEM; break; }
        azRow = azNew;
      }
      s = sqlite3_str_new(0);
      sqlite3_str_appendchar(s, 1, '{');
      for(j=0; j<nField; j++){
        if( j ) sqlite3_str_appendchar(s, 1, ',');
        fedJsonQuote(s, aField[j].name, -1);
        sqlite3_str_appendchar(s, 1, ':');
        myJsonValue(s, &aField[j], az[j], an[j]);
      }
      sqlite3_str_appendchar(s, 1, '}');
      azRow[nRow] = sqlite3_str_finish(s);
      if( azRow[nRow]==0 ){ rc = SQLITE_NOMEM; break; }
      nRow++;
    }
    fedMyFreeResult(p, pRes);
    *pnChanged = nRow;
  }
  if( iSeq ) fedExplainRows(myCtx(p), iSeq, rc==SQLITE_OK ? *pnChanged : 0, 1);
  if( rc!=SQLITE_OK ){
    for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
    sqlite3_free(azRow);
    return rc;
  }
  *pazRow = azRow;
  *pnRow = nRow;
  return SQLITE_OK;
}
