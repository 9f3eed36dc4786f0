/*
** query.c: pass-through and catalog of the PostgreSQL store: fed_query /
** fed_exec (rows as JSON objects, COPY TO STDOUT as lines, transaction
** control refused), describing a remote table, and listing the tables of
** a schema for fed_import.
*/
#include "pgInt.h"
#include <stdlib.h>

/**************************************************************************
** Pass-through: fed_query() and fed_exec().
*/

/* Append one result value as JSON, typed by its PostgreSQL type oid. */
static void pgJsonValue(sqlite3_str *s, PGresult *pRes, int iRow, int iCol){
  const char *z;
  if( PQgetisnull(pRes, iRow, iCol) ){
    sqlite3_str_appendall(s, "null");
    return;
  }
  z = PQgetvalue(pRes, iRow, iCol);
  switch( PQftype(pRes, iCol) ){
    case 20: case 21: case 23: case 26:         /* int8 int2 int4 oid */
      sqlite3_str_appendall(s, z);
      break;
    case 700: case 701: case 1700:              /* float4 float8 numeric */
      if( z[0]=='N' || z[0]=='I' || (z[0]=='-' && z[1]=='I') ){
        fedJsonQuote(s, z, -1);
      }else{
        sqlite3_str_appendall(s, z);
      }
      break;
    case 16:                                    /* bool */
      sqlite3_str_appendall(s, z[0]=='t' ? "true" : "false");
      break;
    case 114: case 3802:                        /* json jsonb */
      sqlite3_str_appendall(s, z);
      break;
    case 1184: case 1266: {                     /* timestamptz timetz */
      int n = PQgetlength(pRes, iRow, iCol);
      if( n>=3 && strcmp(&z[n-3], "+00")==0 ){
        /* As table reads give it: "+00:00" */
        sqlite3_str_appendf(s, "\"%s:00\"", z);
        break;
      }
      fedJsonQuote(s, z, n);
      break;
    }
    default:
      fedJsonQuote(s, z, PQgetlength(pRes, iRow, iCol));
  }
}

/*
** Transaction control in pass-through text.  The coordinator (txn.c) owns
** the remote transaction: a BEGIN sent behind its back would make the
** writes after it vanish at COMMIT, a COMMIT would break atomicity.  Each
** statement of zSql (split at top-level semicolons: quotes, E'' strings,
** "identifiers", $tag$ bodies$tag$ and comments are skipped) is looked at
** by its leading words.  Returns the refused command as written in the
** error ("BEGIN", "PREPARE TRANSACTION", ...), or NULL.
*/
static const char *pgSkipBlank(const char *z){
  while( 1 ){
    if( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' || *z=='\f'
     || *z=='\v' ){
      z++;
    }else if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      int nDepth = 1;
      z += 2;
      while( *z && nDepth>0 ){
        if( z[0]=='/' && z[1]=='*' ){ nDepth++; z += 2; }
        else if( z[0]=='*' && z[1]=='/' ){ nDepth--; z += 2; }
        else z++;
      }
    }else{
      return z;
    }
  }
}

static int pgIsWordChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || (c&0x80)!=0;
}

/* If the word at z (after blanks) is zWord, the text after it, else 0. */
static const char *pgWord(const char *z, const char *zWord){
  int n = (int)strlen(zWord);
  z = pgSkipBlank(z);
  if( sqlite3_strnicmp(z, zWord, n)==0 && !pgIsWordChar(z[n]) ) return z+n;
  return 0;
}

static const char *pgStatementControl(const char *z){
  static const char *const azOne[] = {
    "BEGIN", "START", "COMMIT", "END", "ABORT", "ROLLBACK", "SAVEPOINT",
    "RELEASE", 0
  };
  const char *z2;
  int i;
  for(i=0; azOne[i]; i++){
    if( pgWord(z, azOne[i]) ) return azOne[i];
  }
  if( (z2 = pgWord(z, "PREPARE"))!=0 && pgWord(z2, "TRANSACTION") ){
    return "PREPARE TRANSACTION";
  }
  if( (z2 = pgWord(z, "SET"))!=0 ){
    if( pgWord(z2, "TRANSACTION") ) return "SET TRANSACTION";
    if( (z2 = pgWord(z2, "SESSION"))!=0 && pgWord(z2, "CHARACTERISTICS") ){
      return "SET SESSION CHARACTERISTICS";
    }
  }
  return 0;
}

static int pgIsTagChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || (c&0x80)!=0;
}

static const char *pgTxnControl(const char *zSql){
  const char *z = zSql;
  const char *zRet = pgStatementControl(z);
  while( zRet==0 && *z ){
    char c = *z;
    if( (c=='-' && z[1]=='-') || (c=='/' && z[1]=='*') ){
      z = pgSkipBlank(z);
    }else if( c=='\'' ){
      /* E'...' (an E that is a word of its own) takes backslash escapes. */
      int bEsc = z>zSql && (z[-1]=='e' || z[-1]=='E')
              && (z-1==zSql || !pgIsWordChar(z[-2]));
      for(z++; *z; z++){
        if( bEsc && *z=='\\' && z[1] ){ z++; continue; }
        if( *z=='\'' ){
          if( z[1]=='\'' ){ z++; continue; }
          break;
        }
      }
      if( *z ) z++;
    }else if( c=='"' ){
      for(z++; *z; z++){
        if( *z=='"' ){
          if( z[1]=='"' ){ z++; continue; }
          break;
        }
      }
      if( *z ) z++;
    }else if( c=='$' ){
      /* $tag$ ... $tag$ (the tag may be empty); $1 is a parameter. */
      int n = 1;
      if( z[1]<'0' || z[1]>'9' ){
        while( pgIsTagChar(z[n]) ) n++;
      }
      if( z[n]=='$' ){
        const char *zEnd = z+n+1;
        n++;
        while( *zEnd && strncmp(zEnd, z, n)!=0 ) zEnd++;
        z = *zEnd ? zEnd+n : zEnd;
      }else{
        z += n;
      }
    }else if( pgIsWordChar(c) ){
      /* A whole word, so that a$b$ is not taken for a dollar quote. */
      while( pgIsWordChar(*z) ) z++;
    }else if( c==';' ){
      z++;
      zRet = pgStatementControl(z);
    }else{
      z++;
    }
  }
  return zRet;
}

/* Split nLine JSON objects, each ended by a newline (which JSON text
** escapes inside strings), into a new array of strings for fedPgQuery(). */
static int pgSplitRows(const char *zAll, int nLine, char ***pazRow,
                       int *pnRow){
  char **azRow;
  const char *z = zAll;
  int i;
  *pazRow = 0;
  *pnRow = 0;
  if( nLine==0 ) return SQLITE_OK;
  azRow = sqlite3_malloc64(sizeof(char*)*nLine);
  if( azRow==0 ) return SQLITE_NOMEM;
  for(i=0; i<nLine; i++){
    const char *zEnd = strchr(z, '\n');
    int n = (int)(zEnd - z);
    azRow[i] = fedStrdup(z, n);
    if( azRow[i]==0 ){
      while( i>0 ) sqlite3_free(azRow[--i]);
      sqlite3_free(azRow);
      return SQLITE_NOMEM;
    }
    z += n+1;
  }
  *pazRow = azRow;
  *pnRow = nLine;
  return SQLITE_OK;
}

int fedPgQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **azRow = 0;
  int i, j, nRow = 0, rc = SQLITE_OK;
  const char *zTuples;

  memset(&params, 0, sizeof(params));
  {
    const char *zCtl = pgTxnControl(zQuery);
    if( zCtl ){
      fedSetError(pzErr, "%s: %s cannot be sent through fed_query or"
          " fed_exec: SQLite's BEGIN, COMMIT, ROLLBACK and SAVEPOINT control"
          " the server's transaction", PG_STORE, zCtl);
      return SQLITE_ERROR;
    }
  }
  rc = fedPgFlush(pConn, pzErr);
  for(i=0; rc==SQLITE_OK && i<nParam; i++){
    rc = fedPgParamsAddValue(&params, apParam[i]);
  }
  if( rc==SQLITE_OK ) rc = fedPgExec(p, zQuery, &params, &pRes, pzErr);
  fedPgParamsFree(&params);
  if( p->pCopyOut ){
    /* COPY ... TO STDOUT: a row per line, gathered by fedPgCopyOutRead(). */
    int nLine = p->nCopyOut;
    char *zAll = sqlite3_str_finish(p->pCopyOut);
    p->pCopyOut = 0;
    p->nCopyOut = 0;
    if( rc==SQLITE_OK && zAll==0 && nLine>0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ){
      *pnChanged = nLine;
      rc = pgSplitRows(zAll, nLine, pazRow, pnRow);
    }
    sqlite3_free(zAll);
    PQclear(pRes);
    return rc;
  }
  if( rc!=SQLITE_OK ) return rc;
  nRow = PQntuples(pRes);
  zTuples = PQcmdTuples(pRes);
  *pnChanged = zTuples[0] ? atoll(zTuples) : nRow;
  if( nRow>0 ){
    azRow = sqlite3_malloc64(sizeof(char*)*nRow);
    if( azRow==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendchar(s, 1, '{');
    for(j=0; j<PQnfields(pRes); j++){
      if( j ) sqlite3_str_appendchar(s, 1, ',');
      fedJsonQuote(s, PQfname(pRes, j), -1);
      sqlite3_str_appendchar(s, 1, ':');
      pgJsonValue(s, pRes, i, j);
    }
    sqlite3_str_appendchar(s, 1, '}');
    azRow[i] = sqlite3_str_finish(s);
    if( azRow[i]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    for(j=0; j<i; j++) sqlite3_free(azRow[j]);
    sqlite3_free(azRow);
    return rc;
  }
  *pazRow = azRow;
  *pnRow = nRow;
  return SQLITE_OK;
}

int fedPgListTables(
  FedConn *pConn, const char *zSchema, char ***pazName, int *pnName,
  char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **az = 0;
  int i, n, rc;
  memset(&params, 0, sizeof(params));
  rc = fedPgParamsAdd(&params, zSchema, -1, 0);
  if( rc==SQLITE_OK ){
    rc = fedPgExec(p, "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
        " ON n.oid=c.relnamespace WHERE n.nspname=$1"
        " AND c.relkind IN ('r','v','m','f','p') ORDER BY c.relname",
        &params, &pRes, pzErr);
  }
  fedPgParamsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  n = PQntuples(pRes);
  if( n==0 ){
    PQclear(pRes);
    *pazName = 0;
    *pnName = 0;
    return SQLITE_OK;
  }
  az = sqlite3_malloc64(sizeof(char*)*2*n);
  if( az==0 ){ PQclear(pRes); return SQLITE_NOMEM; }
  memset(az, 0, sizeof(char*)*2*n);
  for(i=0; i<n && rc==SQLITE_OK; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    const char *zName = PQgetvalue(pRes, i, 0);
    fedPgQuoteIdent(s, zSchema, -1);
    sqlite3_str_appendchar(s, 1, '.');
    fedPgQuoteIdent(s, zName, -1);
    az[2*i] = fedStrdup(zName, -1);
    az[2*i+1] = sqlite3_str_finish(s);
    if( az[2*i]==0 || az[2*i+1]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    for(i=0; i<2*n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    return rc;
  }
  *pazName = az;
  *pnName = n;
  return SQLITE_OK;
}

/**************************************************************************
** Catalog: the columns of a remote table (xCreate without columns=).
*/
int fedPgDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  static const char *zCatalog =
    "SELECT n.nspname, c.relname, a.attname,"
    " format_type(CASE WHEN t.typtype='d' THEN t.typbasetype ELSE a.atttypid END,"
    "   CASE WHEN t.typtype='d' THEN t.typtypmod ELSE a.atttypmod END),"
    " a.attnotnull OR coalesce(t.typtype='d' AND t.typnotnull, false),"
    " a.atthasdef OR a.attidentity<>'' OR a.attgenerated<>'',"
    " EXISTS(SELECT 1 FROM pg_index i WHERE i.indrelid=c.oid AND i.indisprimary"
    "   AND i.indnatts=1 AND i.indkey[0]=a.attnum)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace"
    " LEFT JOIN pg_attribute a ON a.attrelid=c.oid AND a.attnum>0"
    "   AND NOT a.attisdropped"
    " LEFT JOIN pg_type t ON t.oid=a.atttypid"
    " WHERE c.oid = to_regclass($1) ORDER BY a.attnum";
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes = 0;
  PgParams params;
  char *zRemote = 0;
  int rc, i, nRow;
  sqlite3_str *s;

  rc = fedPgRemoteName(pTab, &zRemote, pzErr);
  if( rc!=SQLITE_OK || p==0 ){
    /* No network: columns were given; trust the name as written. */
    sqlite3_free(pTab->zRemote);
    pTab->zRemote = zRemote;
    return rc;
  }
  memset(&params, 0, sizeof(params));
  rc = fedPgParamsAdd(&params, zRemote, -1, 0);
  if( rc==SQLITE_OK ) rc = fedPgExec(p, zCatalog, &params, &pRes, pzErr);
  fedPgParamsFree(&params);
  if( rc!=SQLITE_OK ) goto cleanup;
  nRow = PQntuples(pRes);
  if( nRow==0 ){
    fedSetError(pzErr, "%s: relation %s does not exist on server \"%s\"",
                PG_STORE, zRemote, p->base.pServer->zName);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( PQgetisnull(pRes, 0, 2) ){
    fedSetError(pzErr, "%s: relation %s has no columns", PG_STORE, zRemote);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( nRow>FED_MAX_COLUMNS ){
    fedSetError(pzErr, "%s: relation %s has %d columns; at most %d are"
        " supported (name the ones you need with columns=)", PG_STORE,
        zRemote, nRow, FED_MAX_COLUMNS);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  s = sqlite3_str_new(0);
  fedPgQuoteIdent(s, PQgetvalue(pRes, 0, 0), -1);
  sqlite3_str_appendchar(s, 1, '.');
  fedPgQuoteIdent(s, PQgetvalue(pRes, 0, 1), -1);
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = sqlite3_str_finish(s);
  if( pTab->zRemote==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*nRow);
  if( pTab->aCol==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  memset(pTab->aCol, 0, sizeof(FedColumn)*nRow);
  for(i=0; i<nRow; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pTab->nCol++;
    pCol->zName = fedStrdup(PQgetvalue(pRes, i, 2), -1);
    pCol->zType = fedStrdup(PQgetvalue(pRes, i, 3), -1);
    if( pCol->zName==0 || pCol->zType==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    pCol->bNotNull = PQgetvalue(pRes, i, 4)[0]=='t';
    pCol->bDefault = PQgetvalue(pRes, i, 5)[0]=='t';
    pCol->bPk = PQgetvalue(pRes, i, 6)[0]=='t';
  }

cleanup:
  PQclear(pRes);
  sqlite3_free(zRemote);
  return rc;
}
