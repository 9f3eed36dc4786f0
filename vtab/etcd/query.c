/*
** query.c: pass-through: fed_query('ec', '/v3/<endpoint> {json}').
*/
#include "etcdInt.h"

/**************************************************************************
** Pass-through: fed_query('ec', '/v3/<endpoint> {json}') sends one POST to
** the JSON gateway at once (not queued with the transaction) and returns
** the reply as one row, keys and values base64 as etcd sends them.
*/
static int etcdQueryImpl(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pConn;
  const char *z = zQuery;
  char *zPath = 0;
  json_t *pBody = 0, *pOut = 0;
  char **azRow = 0;
  sqlite3_str *s;
  int n, rc = SQLITE_OK;
  (void)apParam;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  if( sqlite3_strnicmp(z, "POST ", 5)==0 ){
    z += 5;
    while( *z==' ' ) z++;
  }
  if( z[0]!='/' || nParam>0 ){
    fedSetError(pzErr, "%s: fed_query takes \"[POST] /v3/<endpoint>"
        " {json body}\" and no parameters, e.g. '/v3/lease/grant"
        " {\"TTL\":60}'", ETCD_STORE);
    return SQLITE_ERROR;
  }
  for(n=0; z[n] && z[n]!=' ' && z[n]!='\t' && z[n]!='\n' && z[n]!='{'; n++){}
  zPath = fedStrdup(z, n);
  if( zPath==0 ) return SQLITE_NOMEM;
  z += n;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  if( *z ){
    char *zJsonErr = 0;
    rc = fedHttpJsonParse(z, strlen(z), &pBody, &zJsonErr);
    if( rc==SQLITE_ERROR ){
      fedSetError(pzErr, "%s: fed_query: the body is not JSON: %s",
                  ETCD_STORE, zJsonErr);
    }
    sqlite3_free(zJsonErr);
  }else{
    pBody = etcdJsonNew(json_object(), &rc);
  }
  if( rc==SQLITE_OK ) rc = etcdCall(p, zPath, pBody, 0, &pOut, 0, pzErr);
  if( rc==SQLITE_OK ){
    azRow = sqlite3_malloc64(sizeof(char*));
    s = sqlite3_str_new(0);
    if( pOut ) rc = fedHttpJsonAppend(s, pOut);
    else sqlite3_str_appendall(s, "{}");
    if( azRow==0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ){
      azRow[0] = sqlite3_str_finish(s);
      if( azRow[0]==0 ) rc = SQLITE_NOMEM;
    }else{
      sqlite3_free(sqlite3_str_finish(s));
    }
  }
  if( rc==SQLITE_OK ){
    *pazRow = azRow;
    *pnRow = 1;
    *pnChanged = 1;
  }else{
    sqlite3_free(azRow);
  }
  json_decref(pBody);
  json_decref(pOut);
  sqlite3_free(zPath);
  return rc;
}

int etcdQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  return etcdRc(etcdQueryImpl(pConn, zQuery, nParam, apParam, pazRow, pnRow,
                              pnChanged, pzErr), pzErr);
}
