/*
** table.c: the tables of the MariaDB/MySQL store: the remote name from
** table=, describing a table from information_schema (xCreate only), the
** column kinds and collation classes of the recorded types, decoding
** MariaDB's text values into SQLite values (pure), fed_import's list of
** tables, and the catalog queries (fedMyCatalog).
**
** A recorded type is "name [unsigned] [collate COLLATION]": the
** DATA_TYPE of information_schema.COLUMNS, "unsigned" when COLUMN_TYPE
** says so, and a text column's collation, which decides what may be
** pushed (deparse.c).
*/
#include "myInt.h"
#include <string.h>
#include <stdlib.h>

/**************************************************************************
** Kinds.
*/
static int myWordIs(const char *z, int n, const char *zWord){
  return (int)strlen(zWord)==n && sqlite3_strnicmp(z, zWord, n)==0;
}

/* Length of the first word of z (letters, digits, '_'). */
static int myWordLen(const char *z){
  int n = 0;
  while( z[n] && (z[n]=='_' || (z[n]>='a' && z[n]<='z')
               || (z[n]>='A' && z[n]<='Z') || (z[n]>='0' && z[n]<='9')) ){
    n++;
  }
  return n;
}

static const char *myFindWord(const char *zType, const char *zWord){
  const char *z = zType;
  int n = (int)strlen(zWord);
  while( (z = strstr(z, " "))!=0 ){
    z++;
    if( sqlite3_strnicmp(z, zWord, n)==0 && (z[n]==0 || z[n]==' ') ){
      return z+n;
    }
  }
  return 0;
}

static int myKindOf(const char *zType){
  int n = myWordLen(zType);
  static const char *const azInt[] = {
    "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year",
    "bool", "boolean", 0
  };
  static const char *const azBlob[] = {
    "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", 0
  };
  static const char *const azText[] = {
    "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum",
    "set", "json", "time", 0
  };
  int i;
  for(i=0; azInt[i]; i++){
    if( myWordIs(zType, n, azInt[i]) ){
      if( myWordIs(zType, n, "bigint") && myFindWord(zType, "unsigned") ){
        return MY_UBIG;
      }
      return MY_INT;
    }
  }
  if( myWordIs(zType, n, "decimal") || myWordIs(zType, n, "numeric")
   || myWordIs(zType, n, "dec") || myWordIs(zType, n, "fixed") ){
    return MY_DECIMAL;
  }
  if( myWordIs(zType, n, "float") || myWordIs(zType, n, "double")
   || myWordIs(zType, n, "real") ){
    return MY_FLOAT;
  }
  if( myWordIs(zType, n, "date") || myWordIs(zType, n, "datetime")
   || myWordIs(zType, n, "timestamp") ){
    return MY_DATE;
  }
  if( myWordIs(zType, n, "bit") ) return MY_BIT;
  for(i=0; azBlob[i]; i++) if( myWordIs(zType, n, azBlob[i]) ) return MY_BLOB;
  for(i=0; azText[i]; i++) if( myWordIs(zType, n, azText[i]) ) return MY_TEXT;
  return 0;
}

/* The comparison class of a text column's collation (MY_COLL_*); no
** collation recorded: the server's default, utf8mb4_general_ci. */
int fedMyCollClass(const FedColumn *pCol){
  const char *z = myFindWord(pCol->zType, "collate");
  int n;
  if( z==0 ) return MY_COLL_CI;
  while( *z==' ' ) z++;
  n = myWordLen(z);
  if( myWordIs(z, n, "binary") ) return MY_COLL_EXACT;
  if( n>10 && sqlite3_strnicmp(&z[n-10], "_nopad_bin", 10)==0 ){
    return MY_COLL_EXACT;
  }
  if( n>4 && sqlite3_strnicmp(&z[n-4], "_bin", 4)==0 ) return MY_COLL_BIN;
  if( n>3 && sqlite3_strnicmp(&z[n-3], "_ci", 3)==0 ) return MY_COLL_CI;
  if( strstr(z, "_ci")!=0 && (int)(strstr(z, "_ci")-z)<n ) return MY_COLL_CI;
  return MY_COLL_CS;
}

int fedMyColumns(FedTable *pTab, char **pzErr){
  int i;
  pTab->iPk = -1;
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pCol->eKind = myKindOf(pCol->zType);
    switch( pCol->eKind ){
      case MY_INT: case MY_UBIG: case MY_BIT:
        pCol->zAffinity = "INTEGER"; break;
      case MY_FLOAT:   pCol->zAffinity = "REAL"; break;
      case MY_BLOB:    pCol->zAffinity = "BLOB"; break;
      case MY_DECIMAL: case MY_DATE: case MY_TEXT:
        pCol->zAffinity = "TEXT"; break;
      default:
        fedSetError(pzErr, "%s: table \"%s\": column \"%s\" has type '%s',"
            " which this store does not read (docs/mysql.md lists the"
            " types)", MY_STORE, pTab->zName, pCol->zName, pCol->zType);
        return SQLITE_ERROR;
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
** Values (pure): the text protocol's bytes as the column's SQLite value.
*/
static int myIsZeroDate(const char *z, int n){
  if( n<10 ) return 1;
  if( memcmp(z, "0000", 4)==0 ) return 1;
  if( z[5]=='0' && z[6]=='0' ) return 1;
  if( z[8]=='0' && z[9]=='0' ) return 1;
  return 0;
}

void fedMyValue(sqlite3_context *ctx, const FedColumn *pCol,
                const char *z, int n){
  i64 v;
  if( z==0 ){
    sqlite3_result_null(ctx);
    return;
  }
  switch( pCol->eKind ){
    case MY_INT:
    case MY_UBIG:
      if( fedParseInt64(z, n, &v)==0 ){
        sqlite3_result_int64(ctx, v);
      }else{
        /* bigint unsigned above 2^63-1: its exact digits, as text. */
        sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      }
      break;
    case MY_FLOAT: {
      char *zEnd = 0;
      double r;
      char zBuf[64];
      if( n>=(int)sizeof(zBuf) ){
        sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
        break;
      }
      memcpy(zBuf, z, n);
      zBuf[n] = 0;
      r = strtod(zBuf, &zEnd);
      if( zEnd==zBuf ) sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      else sqlite3_result_double(ctx, r);
      break;
    }
    case MY_DATE:
      if( myIsZeroDate(z, n) ) sqlite3_result_null(ctx);
      else sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      break;
    case MY_BLOB:
      sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
      break;
    case MY_BIT: {
      /* Big-endian bytes: bit(64) values above 2^63-1 as exact text. */
      u64 u = 0;
      int i;
      for(i=0; i<n && i<8; i++) u = (u<<8) | (unsigned char)z[i];
      if( u>(u64)0x7fffffffffffffffLL ){
        char zBuf[32];
        sqlite3_snprintf(sizeof(zBuf), zBuf, "%llu", u);
        sqlite3_result_text(ctx, zBuf, -1, SQLITE_TRANSIENT);
      }else{
        sqlite3_result_int64(ctx, (i64)u);
      }
      break;
    }
    default:
      sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      break;
  }
}

/**************************************************************************
** Names.  table='db.t' or 't' (the DSN's database), each part optionally
** in `backquotes`.  zRemote is `db`.`t` or `t`.
*/
static int myNamePart(const char **pz, char **pzOut){
  const char *z = *pz;
  sqlite3_str *s = sqlite3_str_new(0);
  if( *z=='`' ){
    z++;
    for(;;){
      if( *z==0 ){ sqlite3_free(sqlite3_str_finish(s)); return SQLITE_ERROR; }
      if( *z=='`' ){
        if( z[1]=='`' ){ sqlite3_str_appendchar(s, 1, '`'); z += 2; continue; }
        z++;
        break;
      }
      sqlite3_str_appendchar(s, 1, *z++);
    }
  }else{
    const char *zStart = z;
    while( *z && *z!='.' ) z++;
    sqlite3_str_append(s, zStart, (int)(z - zStart));
  }
  *pz = z;
  if( sqlite3_str_length(s)==0 && sqlite3_str_errcode(s)==SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(s));
    return SQLITE_ERROR;
  }
  *pzOut = sqlite3_str_finish(s);
  return *pzOut ? SQLITE_OK : SQLITE_NOMEM;
}

int fedMyRemoteName(FedTable *pTab, char **pzDb, char **pzTable,
                    char **pzErr){
  const char *zOpt = fedConfigGet(pTab->pCfg, "table");
  const char *z = zOpt ? zOpt : pTab->zName;
  char *zA = 0, *zB = 0;
  int rc;
  *pzDb = 0;
  *pzTable = 0;
  if( zOpt==0 ){
    zA = fedStrdup(pTab->zName, -1);
    if( zA==0 ) return SQLITE_NOMEM;
    *pzTable = zA;
    return SQLITE_OK;
  }
  rc = myNamePart(&z, &zA);
  if( rc==SQLITE_OK && *z=='.' ){
    z++;
    rc = myNamePart(&z, &zB);
  }
  if( rc==SQLITE_OK && *z ) rc = SQLITE_ERROR;
  if( rc==SQLITE_ERROR ){
    fedSetError(pzErr, "%s: malformed table name '%s' (expected table or"
        " db.table, with `backquotes` where needed)", MY_STORE, zOpt);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(zA);
    sqlite3_free(zB);
    return rc;
  }
  if( zB ){ *pzDb = zA; *pzTable = zB; }
  else *pzTable = zA;
  return SQLITE_OK;
}

/**************************************************************************
** Catalog.
*/

/* Run a catalog query with text parameters and collect its rows as an
** array of nCol*nRow strings (NULL for SQL NULL). */
int fedMyCatalog(MyConn *p, const char *zSql, int nParam,
                     const char *const *azParam, int nCol, char ***pazOut,
                     int *pnRow, char **pzErr){
  MyParams params;
  char *zText = 0;
  void *pRes = 0;
  i64 iSeq = 0;
  char **az = 0;
  int nRow = 0, nAlloc = 0, i, rc = SQLITE_OK;
  memset(&params, 0, sizeof(params));
  *pazOut = 0;
  *pnRow = 0;
  params.az = sqlite3_malloc64(sizeof(char*)*(nParam+1));
  params.an = sqlite3_malloc64(sizeof(int)*(nParam+1));
  params.aNum = sqlite3_malloc64(nParam+1);
  if( params.az==0 || params.an==0 || params.aNum==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<nParam; i++){
    params.az[i] = (char*)azParam[i];
    params.an[i] = (int)strlen(azParam[i]);
    params.aNum[i] = 0;
    params.n = i+1;
  }
  if( rc==SQLITE_OK ){
    zText = fedMyRender(zSql, &params);
    if( zText==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    rc = fedMyQueryStart(p, zText, nParam, (const char*const*)params.az,
                         params.an, &pRes, &iSeq, pzErr);
  }
  sqlite3_free(params.az);
  sqlite3_free(params.an);
  sqlite3_free(params.aNum);
  sqlite3_free(zText);
  while( rc==SQLITE_OK && pRes ){
    char **azRow;
    unsigned long *anLen;
    rc = fedMyFetch(p, pRes, &azRow, &anLen, pzErr);
    if( rc!=SQLITE_OK || azRow==0 ) break;
    if( nRow>=nAlloc ){
      char **azNew;
      nAlloc = nAlloc ? 2*nAlloc : 16;
      azNew = sqlite3_realloc64(az, sizeof(char*)*nCol*nAlloc);
      if( azNew==0 ){ rc = SQLITE_NOMEM; break; }
      az = azNew;
    }
    for(i=0; i<nCol; i++){
      az[nRow*nCol+i] = 0;
    }
    nRow++;
    for(i=0; i<nCol; i++){
      if( azRow[i] ){
        az[(nRow-1)*nCol+i] = fedStrdup(azRow[i], (int)anLen[i]);
        if( az[(nRow-1)*nCol+i]==0 ) rc = SQLITE_NOMEM;
      }
    }
  }
  if( pRes ) fedMyFreeResult(p, pRes);
  if( iSeq ) fedExplainRows(myCtx(p), iSeq, nRow, 1);
  if( rc!=SQLITE_OK ){
    for(i=0; i<nRow*nCol; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    return rc;
  }
  *pazOut = az;
  *pnRow = nRow;
  return SQLITE_OK;
}

static void myRowsFree(char **az, int n){
  int i;
  for(i=0; i<n; i++) sqlite3_free(az[i]);
  sqlite3_free(az);
}

int fedMyDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char *zDb = 0, *zTable = 0;
  char **az = 0;
  int nRow = 0, i, rc;
  sqlite3_str *s;
  rc = fedMyRemoteName(pTab, &zDb, &zTable, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  s = sqlite3_str_new(0);
  if( zDb ){
    fedMyQuoteIdent(s, zDb);
    sqlite3_str_appendchar(s, 1, '.');
  }
  fedMyQuoteIdent(s, zTable);
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = sqlite3_str_finish(s);
  if( pTab->zRemote==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK && p && pTab->nCol==0 ){
    const char *azP[2];
    int nP = 0;
    const char *zSql = zDb
      ? "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLLATION_NAME,"
        " IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT IS NOT NULL AND"
        " COLUMN_DEFAULT <> 'NULL' OR EXTRA LIKE '%auto_increment%'"
        " FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
      : "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLLATION_NAME,"
        " IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT IS NOT NULL AND"
        " COLUMN_DEFAULT <> 'NULL' OR EXTRA LIKE '%auto_increment%'"
        " FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
        " ORDER BY ORDINAL_POSITION";
    if( zDb ) azP[nP++] = zDb;
    azP[nP++] = zTable;
    rc = fedMyCatalog(p, zSql, nP, azP, 7, &az, &nRow, pzErr);
    if( rc==SQLITE_OK && nRow==0 ){
      fedSetError(pzErr, "%s: describing table %s on server \"%s\": no such"
          " table (or no columns visible to this user)", MY_STORE,
          pTab->zRemote, pTab->pServer ? pTab->pServer->zName : "?");
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK && nRow>FED_MAX_COLUMNS ){
      fedSetError(pzErr, "%s: table %s has %d columns; at most %d are"
          " supported", MY_STORE, pTab->zRemote, nRow, FED_MAX_COLUMNS);
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK ){
      pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*nRow);
      if( pTab->aCol==0 ) rc = SQLITE_NOMEM;
      else memset(pTab->aCol, 0, sizeof(FedColumn)*nRow);
    }
    for(i=0; rc==SQLITE_OK && i<nRow; i++){
      char **r = &az[i*7];
      FedColumn *pCol = &pTab->aCol[i];
      const char *zUns = r[2] && strstr(r[2], "unsigned") ? " unsigned" : "";
      pTab->nCol = i+1;
      pCol->zName = fedStrdup(r[0] ? r[0] : "", -1);
      if( r[3] ){
        pCol->zType = sqlite3_mprintf("%s%s collate %s", r[1] ? r[1] : "",
                                      zUns, r[3]);
      }else{
        pCol->zType = sqlite3_mprintf("%s%s", r[1] ? r[1] : "", zUns);
      }
      if( pCol->zName==0 || pCol->zType==0 ) rc = SQLITE_NOMEM;
      pCol->bNotNull = r[4] && strcmp(r[4], "NO")==0;
      pCol->bPk = r[5] && strcmp(r[5], "PRI")==0;
      /* A default (or AUTO_INCREMENT) of a NOT NULL column: an INSERT
      ** that leaves the column NULL leaves it out (write.c). */
      pCol->bDefault = pCol->bNotNull && r[6] && strcmp(r[6], "1")==0;
    }
    myRowsFree(az, nRow*7);
  }
  sqlite3_free(zDb);
  sqlite3_free(zTable);
  return rc;
}

int fedMyListTables(FedConn *pConn, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char **az = 0, **azOut = 0;
  int nRow = 0, i, rc;
  const char *azP[1];
  azP[0] = zSchema;
  *pazName = 0;
  *pnName = 0;
  rc = fedMyCatalog(p, "SELECT TABLE_NAME FROM information_schema.TABLES"
      " WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", 1, azP, 1, &az, &nRow,
      pzErr);
  if( rc!=SQLITE_OK || nRow==0 ){
    myRowsFree(az, nRow);
    return rc;
  }
  azOut = sqlite3_malloc64(sizeof(char*)*2*nRow);
  if( azOut==0 ) rc = SQLITE_NOMEM;
  else memset(azOut, 0, sizeof(char*)*2*nRow);
  for(i=0; rc==SQLITE_OK && i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    fedMyQuoteIdent(s, zSchema);
    sqlite3_str_appendchar(s, 1, '.');
    fedMyQuoteIdent(s, az[i] ? az[i] : "");
    azOut[2*i] = fedStrdup(az[i] ? az[i] : "", -1);
    azOut[2*i+1] = sqlite3_str_finish(s);
    if( azOut[2*i]==0 || azOut[2*i+1]==0 ) rc = SQLITE_NOMEM;
  }
  myRowsFree(az, nRow);
  if( rc!=SQLITE_OK ){
    myRowsFree(azOut, 2*nRow);
    return rc;
  }
  *pazName = azOut;
  *pnName = nRow;
  return SQLITE_OK;
}
