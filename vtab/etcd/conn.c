/*
** conn.c: the etcd store, over etcd's v3 JSON gateway (vtab/http.c): its
** FedStore object (at the end), and the connection: server options,
** authentication, one request and the store's error convention.
**
**   SELECT fed_server('ec', 'etcd', 'http://127.0.0.1:2379',
**                     'timeout=30, connect_timeout=10, max_txn_ops=128,
**                      user=app, password_env=ETCD_PASSWORD, ca_file=/ca.pem');
**   CREATE VIRTUAL TABLE cfg USING etcd(
**       server=ec,                  -- required: a fed_server() name
**       prefix='config/',           -- the key space: keys that start with
**                                   -- it, shown without it (default: all)
**       page_size=1000              -- keys per range request of a scan
**   );
**   -- columns: key, value, create_revision, mod_revision, version, lease
**
** Files of vtab/etcd/: etcdInt.h (structs and cross-file declarations),
** conn.c, table.c (table options, columns, pushdown), plan.c (pure:
** values and classes, key ranges, request bodies and their fed_explain
** text, scan planning), scan.c (cursors), queue.c (write queue, savepoint
** marks, read-your-writes overlay), write.c (xUpdate), txn.c (commit as
** one txn, rollback, commit markers and fences), undo.c (undo images),
** query.c (pass-through), notify.c (watch for cache invalidation).
** docs/etcd.md is the user's view.
**
** Keys and values are bytes.  They read as TEXT when they are valid UTF-8
** without NUL bytes, else as BLOB.  SQLite orders every TEXT before every
** BLOB and each class by bytes (BINARY); etcd orders all keys by bytes.  A
** scan therefore covers two byte ranges, one per class, and returns the
** TEXT keys first (ascending), so that conditions on the key and ORDER BY
** key are exact.  Writes are queued and sent at commit as one atomic
** /v3/kv/txn whose compares check that the rows read for update are
** unchanged since the transaction's snapshot revision.
*/
#include "etcdInt.h"

/**************************************************************************
** Connection.
*/

FedContext *etcdCtx(EtcdConn *p){
  return p->base.pServer->pCtx;
}

/* At the store's entry points, the error rule (fedErrorRc) applied after
** rc's call has set *pzErr: etcdRc(f(..., pzErr), pzErr) is safe where
** fedErrorRc(f(..., pzErr), *pzErr) would read *pzErr too early. */
int etcdRc(int rc, char **pzErr){
  return fedErrorRc(rc, *pzErr);
}

static const char *const azEtcdServerOpt[] = {
  "timeout", "command_timeout", "connect_timeout", "max_txn_ops", "user",
  "password_env", "ca_file", 0
};

static void etcdDisconnect(FedConn *pConn){
  EtcdConn *p = (EtcdConn*)pConn;
  if( p==0 ) return;
  while( p->pCsrList ) etcdCursorDetach(p->pCsrList);
  fedHttpStreamClose(p->pWatch);
  fedHttpClose(p->pHttp);
  fedKvTxnClear(&p->kv);
  sqlite3_free(p->zUser);
  sqlite3_free(p->zPwEnv);
  sqlite3_free(p);
}

/* HTTP is connectionless for our purpose: libcurl reconnects by itself,
** and a transaction lives in the client until commit. */
static int etcdIsAlive(FedConn *pConn){
  (void)pConn;
  return 1;
}

/* Authenticate as zUser and keep the token as the Authorization header. */
static int etcdAuthenticate(EtcdConn *p, char **pzErr){
  const char *zPw = getenv(p->zPwEnv);
  FedHttpCall call;
  json_t *pBody;
  json_t *pToken;
  char *zExplain;
  int rc = SQLITE_OK;
  if( zPw==0 ){
    fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
        " by password_env) is not set", ETCD_STORE, p->base.pServer->zName,
        p->zPwEnv);
    return SQLITE_ERROR;
  }
  fedHttpSetHeader(p->pHttp, "Authorization", 0);
  pBody = etcdJsonNew(json_object(), &rc);
  etcdJsonSet(pBody, "name", etcdJsonNew(json_string(p->zUser), &rc), &rc);
  etcdJsonSet(pBody, "password", etcdJsonNew(json_string(zPw), &rc), &rc);
  {
    /* The password never reaches fed_explain or an error message. */
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendall(s, "POST /v3/auth/authenticate {\"name\":");
    fedJsonQuote(s, p->zUser, -1);
    sqlite3_str_appendall(s, ",\"password\":\"***\"}");
    zExplain = sqlite3_str_finish(s);
    if( zExplain==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    memset(&call, 0, sizeof(call));
    call.zMethod = "POST";
    call.zPath = "/v3/auth/authenticate";
    call.pJson = pBody;
    call.zExplain = zExplain;
    rc = fedHttpCall(p->pHttp, &call, pzErr);
    if( rc==SQLITE_OK ){
      pToken = json_object_get(call.pOut, "token");
      if( !json_is_string(pToken) ){
        fedSetError(pzErr, "%s: server \"%s\" sent no token for user \"%s\"",
                    ETCD_STORE, p->base.pServer->zName, p->zUser);
        rc = SQLITE_ERROR;
      }else{
        rc = fedHttpSetHeader(p->pHttp, "Authorization",
                              json_string_value(pToken));
      }
    }
    fedHttpCallClear(&call);
  }
  json_decref(pBody);
  sqlite3_free(zExplain);
  return rc;
}

/*
** Send one request; *ppOut gets the parsed reply (json_decref it).  The
** fed_explain text shows the body with keys and values decoded.  With
** authentication, an expired token is renewed once.  *piExplain (if not
** NULL) gets the fed_explain entry.
*/
int etcdCall(
  EtcdConn *p, const char *zPath, json_t *pBody, int iFault,
  json_t **ppOut, i64 *piExplain, char **pzErr
){
  FedHttpCall call;
  char *zExplain;
  int rc = SQLITE_OK, nTry;
  *ppOut = 0;
  zExplain = etcdExplainText(zPath, pBody, &rc);
  if( rc ) return rc;
  for(nTry=0; nTry<2; nTry++){
    memset(&call, 0, sizeof(call));
    call.zMethod = "POST";
    call.zPath = zPath;
    call.pJson = pBody;
    call.zExplain = zExplain;
    call.iFault = iFault;
    call.bAnyStatus = p->zUser!=0;
    rc = fedHttpCall(p->pHttp, &call, pzErr);
    p->bMaybeSent = rc!=SQLITE_OK && call.bMaybeSent;
    if( rc==SQLITE_OK && call.iStatus>=400 ){
      const char *zText = fedHttpErrorText(call.pOut);
      if( nTry==0 && (call.iStatus==401
            || (zText && strstr(zText, "invalid auth token"))) ){
        fedHttpCallClear(&call);
        rc = etcdAuthenticate(p, pzErr);
        if( rc ) break;
        continue;
      }
      rc = fedHttpStatusError(p->pHttp, &call, pzErr);
      fedHttpCallClear(&call);
    }
    break;
  }
  if( rc==SQLITE_OK ){
    *ppOut = call.pOut;
    if( piExplain ) *piExplain = call.iExplain;
  }
  sqlite3_free(zExplain);
  return rc;
}

/* The server's options, checked; also at fed_server() (xServerCheck). */
int etcdServerOptions(
  FedServer *pServer, i64 *piTimeout, i64 *piConnTimeout, i64 *pnMaxOps,
  char **pzErr
){
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = fedConfigGet(pServer->pOpt, "password_env");
  int rc;
  if( sqlite3_strnicmp(pServer->zDsn, "http://", 7)!=0
   && sqlite3_strnicmp(pServer->zDsn, "https://", 8)!=0 ){
    fedSetError(pzErr, "%s: server \"%s\": the address must be an"
        " http:// or https:// URL (etcd's client URL, e.g."
        " http://127.0.0.1:2379)", ETCD_STORE, pServer->zName);
    return SQLITE_ERROR;
  }
  /* command_timeout, the name every store uses; timeout, its older name. */
  rc = fedConfigInt(pServer->pOpt, fedConfigGet(pServer->pOpt,
                    "command_timeout") ? "command_timeout" : "timeout",
                    30, 1, 86400, piTimeout, ETCD_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600,
                      piConnTimeout, ETCD_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "max_txn_ops", 128, 1, 1000000,
                      pnMaxOps, ETCD_STORE, pzErr);
  }
  if( rc==SQLITE_OK && (zUser==0)!=(zPwEnv==0) ){
    fedSetError(pzErr, "%s: server \"%s\": user= and password_env= go"
                " together", ETCD_STORE, pServer->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int etcdServerCheck(FedServer *pServer, char **pzErr){
  i64 a, b, c;
  return etcdServerOptions(pServer, &a, &b, &c, pzErr);
}

static int etcdConnectImpl(FedServer *pServer, FedConn **ppConn, char **pzErr){
  FedHttpConfig cfg;
  EtcdConn *p;
  i64 iTimeout, iConnTimeout, nMaxOps;
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = 0;
  int rc;

  *ppConn = 0;
  rc = etcdServerOptions(pServer, &iTimeout, &iConnTimeout, &nMaxOps, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc!=SQLITE_OK ) return rc;

  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  fedKvTxnInit(&p->kv, &etcdKvDriver);
  p->base.pServer = pServer;
  p->nMaxOps = nMaxOps;
  if( zUser ){
    p->zUser = fedStrdup(zUser, -1);
    p->zPwEnv = fedStrdup(zPwEnv, -1);
    if( p->zUser==0 || p->zPwEnv==0 ){
      etcdDisconnect(&p->base);
      return SQLITE_NOMEM;
    }
  }
  memset(&cfg, 0, sizeof(cfg));
  cfg.zStore = ETCD_STORE;
  cfg.pServer = pServer;
  cfg.zBaseUrl = pServer->zDsn;
  cfg.nConnectTimeoutMs = (int)iConnTimeout*1000;
  cfg.nTimeoutMs = (int)(iTimeout>2000000 ? 2000000 : iTimeout)*1000;
  cfg.zCaFile = fedConfigGet(pServer->pOpt, "ca_file");
  rc = fedHttpOpen(&cfg, &p->pHttp, pzErr);
  if( rc==SQLITE_OK && p->zUser ) rc = etcdAuthenticate(p, pzErr);
  if( rc!=SQLITE_OK ){
    etcdDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

static int etcdConnect(
  FedServer *pServer, FedConn **ppConn, char **pzErr
){
  return etcdRc(etcdConnectImpl(pServer, ppConn, pzErr), pzErr);
}

/* Designated initializers: members not named (xFlush, xListTables, the
** two-phase commit methods) are NULL. */
const FedStore fedEtcdStore = {
  .zName = ETCD_STORE,
  .eTxn = FED_TXN_BATCH,
  .azTableOpt = azEtcdTableOpt,
  .azServerOpt = azEtcdServerOpt,
  .xConnect = etcdConnect,
  .xDisconnect = etcdDisconnect,
  .xIsAlive = etcdIsAlive,
  .xDescribe = etcdDescribe,
  .xColumns = etcdColumns,
  .xPushable = etcdPushable,
  .xOrderable = etcdOrderable,
  .xOpen = etcdOpen,
  .xClose = etcdClose,
  .xFilter = etcdFilter,
  .xNext = etcdNext,
  .xEof = etcdEof,
  .xColumn = etcdColumn,
  .xRowid = etcdRowid,
  .xUpdate = etcdUpdate,
  .xBegin = etcdBegin,
  .xCommit = etcdCommit,
  .xRollback = etcdRollback,
  .xSavepoint = etcdSavepoint,
  .xRelease = etcdRelease,
  .xRollbackTo = etcdRollbackTo,
  .xQuery = etcdQuery,
  .xTableFree = etcdTableFree,
  .xServerCheck = etcdServerCheck,
  .xMarkerCheck = etcdMarkerCheck,
  .xMarkerRemove = etcdMarkerRemove,
  .xMarkerList = etcdMarkerList,
  .xUndoImages = etcdUndoImages,
  .xUndoApply = etcdUndoApply,
  .xWatch = etcdWatchStart,
  .xChanges = etcdChanges,
};
