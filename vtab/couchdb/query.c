/*
** query.c: pass-through: fed_query('cd', '[METHOD] /path [json body]')
** sends one request at once and returns its reply as rows of JSON: one
** per element of the reply's "docs" array (_find) or "rows" array
** (_all_docs, views), one per element when the reply is an array
** (_all_dbs, _bulk_docs), else the reply as one row.
*/
#include "couchInt.h"

static int couchQueryImpl(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  static const char *const azMethod[] = { "GET", "POST", "PUT", "DELETE" };
  CouchConn *p = (CouchConn*)pConn;
  const char *z = zQuery;
  const char *zMethod = "GET";
  char *zPath = 0;
  json_t *pBody = 0, *pOut = 0, *pList = 0;
  char **azRow = 0;
  size_t nRow = 1, i;
  int n, k, rc = SQLITE_OK;
  (void)apParam;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  for(k=0; k<(int)(sizeof(azMethod)/sizeof(azMethod[0])); k++){
    n = (int)strlen(azMethod[k]);
    if( sqlite3_strnicmp(z, azMethod[k], n)==0 && (z[n]==' ' || z[n]=='\t') ){
      zMethod = azMethod[k];
      z += n;
      while( *z==' ' || *z=='\t' ) z++;
      break;
    }
  }
  if( z[0]!='/' || nParam>0 ){
    fedSetError(pzErr, "%s: fed_query takes \"[GET|POST|PUT|DELETE] /path"
        " [json body]\" and no parameters, e.g. 'POST /db/_find"
        " {\"selector\": {\"age\": {\"$gt\": 30}}, \"limit\": 10}'",
        COUCH_STORE);
    return SQLITE_ERROR;
  }
  for(n=0; z[n] && z[n]!=' ' && z[n]!='\t' && z[n]!='\n' && z[n]!='{'
           && z[n]!='['; n++){}
  zPath = fedStrdup(z, n);
  if( zPath==0 ) return SQLITE_NOMEM;
  z += n;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  if( *z ){
    char *zJsonErr = 0;
    rc = fedHttpJsonParse(z, strlen(z), &pBody, &zJsonErr);
    if( rc==SQLITE_ERROR ){
      fedSetError(pzErr, "%s: fed_query: the body is not JSON: %s",
                  COUCH_STORE, zJsonErr);
    }
    sqlite3_free(zJsonErr);
  }
  if( rc==SQLITE_OK ){
    rc = couchCall(p, zMethod, zPath, pBody, 0, &pOut, 0, pzErr);
  }
  if( rc==SQLITE_OK ){
    if( json_is_array(pOut) ){
      pList = pOut;
    }else if( json_is_array(json_object_get(pOut, "docs")) ){
      pList = json_object_get(pOut, "docs");
    }else if( json_is_array(json_object_get(pOut, "rows")) ){
      pList = json_object_get(pOut, "rows");
    }
    nRow = pList ? json_array_size(pList) : 1;
    azRow = sqlite3_malloc64(sizeof(char*)*(nRow+1));
    if( azRow==0 ) rc = SQLITE_NOMEM;
    else memset(azRow, 0, sizeof(char*)*(nRow+1));
  }
  for(i=0; rc==SQLITE_OK && i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    json_t *pRow = pList ? json_array_get(pList, i) : pOut;
    if( pRow ) rc = fedHttpJsonAppend(s, pRow);
    else sqlite3_str_appendall(s, "{}");
    azRow[i] = sqlite3_str_finish(s);
    if( azRow[i]==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    *pazRow = azRow;
    *pnRow = (int)nRow;
    *pnChanged = (i64)nRow;
  }else if( azRow ){
    for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
    sqlite3_free(azRow);
  }
  json_decref(pBody);
  json_decref(pOut);
  sqlite3_free(zPath);
  return rc;
}

int couchQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  return couchRc(couchQueryImpl(pConn, zQuery, nParam, apParam, pazRow,
                                pnRow, pnChanged, pzErr), pzErr);
}
