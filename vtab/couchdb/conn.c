/*
** conn.c: the CouchDB store, over CouchDB's HTTP API (vtab/http.c): its
** FedStore object (at the end), the server options, connecting (HTTP
** basic authentication from password_env), one request with the store's
** error convention, listing databases, and the transaction methods of a
** store that reads only so far.
**
**   SELECT fed_server('cd', 'couchdb', 'http://127.0.0.1:5984',
**                     'command_timeout=30, connect_timeout=10,
**                      user=app, password_env=COUCH_PASSWORD,
**                      ca_file=/ca.pem, sample_size=100');
**   CREATE VIRTUAL TABLE profiles USING couchdb(
**       server=cd,                  -- required: a fed_server() name
**       database='profiles',        -- the database (or table='profiles')
**       columns='name TEXT $.name, age INTEGER $.age',
**                                   -- declared paths; without it, sampled
**       page_size=1000,             -- documents per request of a scan
**       sample_size=100             -- documents read to choose columns
**   );
**   -- columns: _id, _rev, the declared ones, doc (the whole document)
**
** Files of vtab/couchdb/: couchInt.h (structs and cross-file
** declarations), conn.c, table.c (table options, columns, sampling,
** pushdown), types.c (pure: JSON values as SQLite values), plan.c (pure:
** what a scan asks for, each page's request), scan.c (cursors), query.c
** (pass-through).  docs/couchdb.md is the user's view.
*/
#include "couchInt.h"

int couchRc(int rc, char **pzErr){
  return fedErrorRc(rc, *pzErr);
}

static const char *const azCouchServerOpt[] = {
  "command_timeout", "connect_timeout", "user", "password_env", "ca_file",
  "sample_size", 0
};

static void couchDisconnect(FedConn *pConn){
  CouchConn *p = (CouchConn*)pConn;
  if( p==0 ) return;
  fedHttpClose(p->pHttp);
  sqlite3_free(p);
}

/* libcurl reconnects by itself; there is no session to lose. */
static int couchIsAlive(FedConn *pConn){
  (void)pConn;
  return 1;
}

int couchCall(
  CouchConn *p, const char *zMethod, const char *zPath, json_t *pBody,
  const char *zExplain, json_t **ppOut, i64 *piExplain, char **pzErr
){
  FedHttpCall call;
  int rc;
  *ppOut = 0;
  memset(&call, 0, sizeof(call));
  call.zMethod = zMethod;
  call.zPath = zPath;
  call.pJson = pBody;
  call.zExplain = zExplain;
  rc = fedHttpCall(p->pHttp, &call, pzErr);
  if( rc==SQLITE_OK ){
    *ppOut = call.pOut;
    call.pOut = 0;
    if( piExplain ) *piExplain = call.iExplain;
  }
  fedHttpCallClear(&call);
  return rc;
}

/* The server's options, checked; also at fed_server() (xServerCheck). */
static int couchServerOptions(
  FedServer *pServer, i64 *piTimeout, i64 *piConnTimeout, i64 *pnSample,
  char **pzErr
){
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = fedConfigGet(pServer->pOpt, "password_env");
  int rc;
  if( sqlite3_strnicmp(pServer->zDsn, "http://", 7)!=0
   && sqlite3_strnicmp(pServer->zDsn, "https://", 8)!=0 ){
    fedSetError(pzErr, "%s: server \"%s\": the address must be an"
        " http:// or https:// URL (e.g. http://127.0.0.1:5984)",
        COUCH_STORE, pServer->zName);
    return SQLITE_ERROR;
  }
  rc = fedConfigInt(pServer->pOpt, "command_timeout", 30, 1, 86400,
                    piTimeout, COUCH_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600,
                      piConnTimeout, COUCH_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "sample_size", 100, 1, 100000,
                      pnSample, COUCH_STORE, pzErr);
  }
  if( rc==SQLITE_OK && (zUser==0)!=(zPwEnv==0) ){
    fedSetError(pzErr, "%s: server \"%s\": user= and password_env= go"
                " together", COUCH_STORE, pServer->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int couchServerCheck(FedServer *pServer, char **pzErr){
  i64 a, b, c;
  return couchServerOptions(pServer, &a, &b, &c, pzErr);
}

static int couchConnectImpl(FedServer *pServer, FedConn **ppConn,
                            char **pzErr){
  FedHttpConfig cfg;
  CouchConn *p;
  i64 iTimeout, iConnTimeout, nSample;
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = 0;
  const char *zPw = 0;
  json_t *pOut = 0;
  int rc;

  *ppConn = 0;
  rc = couchServerOptions(pServer, &iTimeout, &iConnTimeout, &nSample, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( zUser ){
    zPw = getenv(zPwEnv);
    if( zPw==0 ){
      fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
          " by password_env) is not set", COUCH_STORE, pServer->zName,
          zPwEnv);
      return SQLITE_ERROR;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  p->nSample = nSample;
  memset(&cfg, 0, sizeof(cfg));
  cfg.zStore = COUCH_STORE;
  cfg.pServer = pServer;
  cfg.zBaseUrl = pServer->zDsn;
  cfg.nConnectTimeoutMs = (int)iConnTimeout*1000;
  cfg.nTimeoutMs = (int)(iTimeout>2000000 ? 2000000 : iTimeout)*1000;
  cfg.zCaFile = fedConfigGet(pServer->pOpt, "ca_file");
  cfg.zUser = zUser;
  cfg.zPassword = zPw;
  rc = fedHttpOpen(&cfg, &p->pHttp, pzErr);
  /* One GET / so that a wrong address, or a server that is not CouchDB,
  ** fails here, naming the server. */
  if( rc==SQLITE_OK ) rc = couchCall(p, "GET", "/", 0, 0, &pOut, 0, pzErr);
  if( rc==SQLITE_OK && !json_is_object(pOut) ){
    fedSetError(pzErr, "%s: server \"%s\" is not a CouchDB server (its"
                " reply to GET / is not a JSON object)", COUCH_STORE,
                pServer->zName);
    rc = SQLITE_ERROR;
  }
  json_decref(pOut);
  if( rc!=SQLITE_OK ){
    couchDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

static int couchConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  return couchRc(couchConnectImpl(pServer, ppConn, pzErr), pzErr);
}

int couchListDbs(CouchConn *p, char ***pazName, int *pnName, char **pzErr){
  json_t *pOut = 0;
  char **az = 0;
  size_t i;
  int n = 0, rc;
  *pazName = 0;
  *pnName = 0;
  rc = couchCall(p, "GET", "/_all_dbs", 0, 0, &pOut, 0, pzErr);
  if( rc==SQLITE_OK && !json_is_array(pOut) ){
    fedSetError(pzErr, "%s: server \"%s\": the reply to GET /_all_dbs is"
                " not an array (remote request: GET /_all_dbs)", COUCH_STORE,
                p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    az = sqlite3_malloc64(sizeof(char*)*(json_array_size(pOut)+1));
    if( az==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<json_array_size(pOut); i++){
    json_t *pName = json_array_get(pOut, i);
    if( !json_is_string(pName) || json_string_value(pName)[0]=='_' ) continue;
    az[n] = fedStrdup(json_string_value(pName), -1);
    if( az[n]==0 ) rc = SQLITE_NOMEM;
    else n++;
  }
  json_decref(pOut);
  if( rc!=SQLITE_OK ){
    int k;
    for(k=0; k<n; k++) sqlite3_free(az[k]);
    sqlite3_free(az);
    return rc;
  }
  *pazName = az;
  *pnName = n;
  return SQLITE_OK;
}

/**************************************************************************
** A read-only store's transactions: reads take part in nothing (no
** snapshot across statements), and every write is refused by xUpdate.
*/
static int couchBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  (void)pConn; (void)bSnapshot; (void)pzErr;
  return SQLITE_OK;
}
static int couchEnd(FedConn *pConn, char **pzErr){
  (void)pConn; (void)pzErr;
  return SQLITE_OK;
}
static int couchSavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                          char **pzErr){
  (void)pConn; (void)iRelease; (void)iFrom; (void)iTo; (void)pzErr;
  return SQLITE_OK;
}
static int couchLevel(FedConn *pConn, int iLevel, char **pzErr){
  (void)pConn; (void)iLevel; (void)pzErr;
  return SQLITE_OK;
}

static int couchUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                       i64 *piRowid, char **pzErr){
  (void)argc; (void)argv; (void)piRowid;
  fedSetError(pzErr, "%s: table %s is read-only in this version",
              COUCH_STORE, pTab->zName);
  return couchRc(SQLITE_READONLY, pzErr);
}

/* Designated initializers: members not named are NULL. */
const FedStore fedCouchdbStore = {
  .zName = COUCH_STORE,
  .eTxn = FED_TXN_NONE,
  .azTableOpt = azCouchTableOpt,
  .azServerOpt = azCouchServerOpt,
  .xConnect = couchConnect,
  .xDisconnect = couchDisconnect,
  .xIsAlive = couchIsAlive,
  .xDescribe = couchDescribe,
  .xColumns = couchColumns,
  .xPushable = couchPushable,
  .xOrderable = couchOrderable,
  .xOpen = couchOpen,
  .xClose = couchClose,
  .xFilter = couchFilter,
  .xNext = couchNext,
  .xEof = couchEof,
  .xColumn = couchColumn,
  .xRowid = couchRowid,
  .xUpdate = couchUpdate,
  .xBegin = couchBegin,
  .xCommit = couchEnd,
  .xRollback = couchEnd,
  .xSavepoint = couchSavepoint,
  .xRelease = couchLevel,
  .xRollbackTo = couchLevel,
  .xQuery = couchQuery,
  .xListTables = couchListTables,
  .xTableFree = couchTableFree,
  .xServerCheck = couchServerCheck,
};
