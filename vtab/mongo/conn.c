/*
** conn.c: the MongoDB store (libmongoc): its FedStore object (at the
** end), connections (URI, password_env, timeouts), the catalog reads of
** fed_import and of sampling, and the transaction methods of a read-only
** store's methods (writes and transactions: write.c, commit.c).
**
**   SELECT fed_server('m', 'mongo', 'mongodb://127.0.0.1:27017/app',
**                     'connect_timeout=10, command_timeout=30, user=app,
**                      password_env=MONGO_PASSWORD, sample_size=100');
**   CREATE VIRTUAL TABLE prefs USING mongo(
**       server=m,                          -- required: a fed_server() name
**       collection='user_preferences',     -- or table='db.collection'
**       database='app',                    -- default: the URI's database
**       columns='user_id INTEGER $.user_id, theme TEXT $.theme,
**                email INTEGER $.notifications.email',
**       batch_size=1000,                   -- documents per reply of a scan
**       sample_size=100                    -- documents fed_import samples
**   );
**   -- columns: _id (the primary key), the declared ones, doc (JSON)
**
** Files of vtab/mongo/: mongoInt.h (structs, declarations), conn.c,
** table.c (options, columns, sampling, pushdown), types.c (pure: BSON to
** SQLite values), plan.c (pure: the find command), scan.c (cursors),
** write.c (INSERT, UPDATE, DELETE queued; values back to BSON) and
** commit.c (the ordered bulk writes, compensation, undo images).
*/
#include "mongoInt.h"

int mongoRc(int rc, char **pzErr){
  return fedErrorRc(rc, *pzErr);
}

static const char *const azMongoServerOpt[] = {
  "connect_timeout", "command_timeout", "user", "password_env",
  "sample_size", 0
};

static void mongoDisconnect(FedConn *pConn){
  MongoConn *p = (MongoConn*)pConn;
  if( p==0 ) return;
  fedKvTxnClear(&p->kv);
  mongoPlanFree(p->pPlan);
  if( p->pClient ) mongoc_client_destroy(p->pClient);
  sqlite3_free(p->zDb);
  sqlite3_free(p);
}

/* libmongoc reconnects by itself; a dead server shows at the next
** command. */
static int mongoIsAlive(FedConn *pConn){
  (void)pConn;
  return 1;
}

static int serverOptions(FedServer *pServer, i64 *piConn, i64 *piCmd,
                         char **pzErr){
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = fedConfigGet(pServer->pOpt, "password_env");
  i64 nSample;
  int rc;
  if( sqlite3_strnicmp(pServer->zDsn, "mongodb://", 10)!=0 ){
    fedSetError(pzErr, "%s: server \"%s\": the address must be a"
        " mongodb:// URI (e.g. mongodb://127.0.0.1:27017/app)",
        MONGO_STORE, pServer->zName);
    return SQLITE_ERROR;
  }
  rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, piConn,
                    MONGO_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "command_timeout", 30, 1, 86400, piCmd,
                      MONGO_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "sample_size", 100, 1, 100000,
                      &nSample, MONGO_STORE, pzErr);
  }
  if( rc==SQLITE_OK && (zUser==0)!=(zPwEnv==0) ){
    fedSetError(pzErr, "%s: server \"%s\": user= and password_env= go"
                " together", MONGO_STORE, pServer->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int mongoServerCheck(FedServer *pServer, char **pzErr){
  i64 a, b;
  int rc = serverOptions(pServer, &a, &b, pzErr);
  if( rc==SQLITE_OK ){
    bson_error_t err;
    mongoc_uri_t *pUri = mongoc_uri_new_with_error(pServer->zDsn, &err);
    if( pUri==0 ){
      fedSetError(pzErr, "%s: server \"%s\": bad URI: %s", MONGO_STORE,
                  pServer->zName, err.message);
      rc = SQLITE_ERROR;
    }
    mongoc_uri_destroy(pUri);
  }
  return mongoRc(rc, pzErr);
}

/* Set once per process: libmongoc's global state (mongoc_init is
** idempotent in effect but not free; logging would write to stderr). */
static void mongoOnce(void){
  static int bInit = 0;
  if( !bInit ){
    bInit = 1;
    mongoc_init();
    mongoc_log_set_handler(0, 0);
  }
}

static int mongoConnectImpl(FedServer *pServer, FedConn **ppConn,
                            char **pzErr){
  MongoConn *p;
  mongoc_uri_t *pUri = 0;
  bson_error_t err;
  bson_t ping = BSON_INITIALIZER, reply;
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = 0;
  i64 iConn, iCmd;
  int rc;

  *ppConn = 0;
  rc = serverOptions(pServer, &iConn, &iCmd, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  mongoOnce();

  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  fedKvTxnInit(&p->kv, &mongoKvDriver);

  pUri = mongoc_uri_new_with_error(pServer->zDsn, &err);
  if( pUri==0 ){
    fedSetError(pzErr, "%s: server \"%s\": bad URI: %s", MONGO_STORE,
                pServer->zName, err.message);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  mongoc_uri_set_option_as_int32(pUri, MONGOC_URI_CONNECTTIMEOUTMS,
                                 (int32_t)(iConn*1000));
  mongoc_uri_set_option_as_int32(pUri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                 (int32_t)(iConn*1000));
  mongoc_uri_set_option_as_int32(pUri, MONGOC_URI_SOCKETTIMEOUTMS,
                                 (int32_t)(iCmd>2000000 ? 2000000 : iCmd)*1000);
  if( zUser ){
    const char *zPw = getenv(zPwEnv);
    if( zPw==0 ){
      fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
          " by password_env) is not set", MONGO_STORE, pServer->zName,
          zPwEnv);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
    mongoc_uri_set_username(pUri, zUser);
    mongoc_uri_set_password(pUri, zPw);
  }
  if( mongoc_uri_get_database(pUri) ){
    p->zDb = fedStrdup(mongoc_uri_get_database(pUri), -1);
    if( p->zDb==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  }
  p->pClient = mongoc_client_new_from_uri_with_error(pUri, &err);
  if( p->pClient==0 ){
    fedSetError(pzErr, "%s: server \"%s\": %s", MONGO_STORE,
                pServer->zName, err.message);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  mongoc_client_set_error_api(p->pClient, MONGOC_ERROR_API_VERSION_2);
  mongoStreamInstall(p);        /* stream.c: sqlite3_interrupt() ends waits */
  BSON_APPEND_INT32(&ping, "ping", 1);
  fedExplainAdd(pServer->pCtx, pServer->zName, "{ \"ping\" : 1 }", 0);
  if( !mongoc_client_command_simple(p->pClient, "admin", &ping, 0, &reply,
                                    &err) ){
    fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s (remote"
                " command: ping)", MONGO_STORE, pServer->zName, err.message);
    rc = SQLITE_ERROR;
  }
  bson_destroy(&reply);

cleanup:
  bson_destroy(&ping);
  mongoc_uri_destroy(pUri);
  if( rc!=SQLITE_OK ){
    mongoDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

static int mongoConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  return mongoRc(mongoConnectImpl(pServer, ppConn, pzErr), pzErr);
}

/* The first nDoc documents of a collection, in natural order; *paDoc gets
** *pnDoc bson_t copies (bson_destroy each, sqlite3_free the array). */
int mongoConnSample(FedConn *pConn, const char *zDb, const char *zColl,
                    int nDoc, bson_t ***paDoc, int *pnDoc, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  mongoc_collection_t *pColl;
  mongoc_cursor_t *pCur;
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  const bson_t *pDoc;
  bson_t **a = 0;
  bson_error_t err;
  char *zCmd;
  int n = 0, rc = SQLITE_OK;

  *paDoc = 0;
  *pnDoc = 0;
  BSON_APPEND_INT64(&opts, "limit", nDoc);
  {
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&cmd, "find", zColl);
    BSON_APPEND_DOCUMENT(&cmd, "filter", &filter);
    bson_concat(&cmd, &opts);
    zCmd = bson_as_canonical_extended_json(&cmd, 0);
    bson_destroy(&cmd);
    fedExplainAdd(pConn->pServer->pCtx, pConn->pServer->zName, zCmd, 0);
    bson_free(zCmd);
  }
  pColl = mongoc_client_get_collection(p->pClient, zDb, zColl);
  pCur = mongoc_collection_find_with_opts(pColl, &filter, &opts, 0);
  a = sqlite3_malloc64(sizeof(bson_t*)*(nDoc>0 ? nDoc : 1));
  if( a==0 ) rc = SQLITE_NOMEM;
  while( rc==SQLITE_OK && n<nDoc && mongoc_cursor_next(pCur, &pDoc) ){
    a[n++] = bson_copy(pDoc);
  }
  if( rc==SQLITE_OK && mongoc_cursor_error(pCur, &err) ){
    fedSetError(pzErr, "%s: cannot sample collection \"%s\": %s (remote"
                " command: find)", MONGO_STORE, zColl, err.message);
    rc = SQLITE_ERROR;
  }
  mongoc_cursor_destroy(pCur);
  mongoc_collection_destroy(pColl);
  bson_destroy(&filter);
  bson_destroy(&opts);
  if( rc!=SQLITE_OK ){
    while( n>0 ) bson_destroy(a[--n]);
    sqlite3_free(a);
    return rc;
  }
  *paDoc = a;
  *pnDoc = n;
  return SQLITE_OK;
}

/* The collections of database zDb (system.* left out), sorted. */
int mongoConnCollections(FedConn *pConn, const char *zDb, char ***pazName,
                         int *pnName, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  mongoc_database_t *pDb;
  bson_error_t err;
  char **az;
  int n, i, rc = SQLITE_OK;
  bson_t cmd = BSON_INITIALIZER;
  char *zCmd;
  BSON_APPEND_INT32(&cmd, "listCollections", 1);
  BSON_APPEND_BOOL(&cmd, "nameOnly", true);
  BSON_APPEND_UTF8(&cmd, "$db", zDb);
  zCmd = bson_as_canonical_extended_json(&cmd, 0);
  bson_destroy(&cmd);
  fedExplainAdd(pConn->pServer->pCtx, pConn->pServer->zName, zCmd, 0);
  bson_free(zCmd);
  pDb = mongoc_client_get_database(p->pClient, zDb);
  az = mongoc_database_get_collection_names_with_opts(pDb, 0, &err);
  mongoc_database_destroy(pDb);
  *pazName = 0;
  *pnName = 0;
  if( az==0 ){
    fedSetError(pzErr, "%s: cannot list the collections of database \"%s\":"
                " %s (remote command: listCollections)", MONGO_STORE, zDb,
                err.message);
    return SQLITE_ERROR;
  }
  for(n=0; az[n]; n++){}
  *pazName = sqlite3_malloc64(sizeof(char*)*(n>0 ? n : 1));
  if( *pazName==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( strncmp(az[i], "system.", 7)==0 ) continue;
    (*pazName)[*pnName] = fedStrdup(az[i], -1);
    if( (*pazName)[*pnName]==0 ) rc = SQLITE_NOMEM;
    else (*pnName)++;
  }
  bson_strfreev(az);
  if( rc==SQLITE_OK ){
    /* sort: names are few */
    int a, b;
    for(a=1; a<*pnName; a++){
      for(b=a; b>0 && strcmp((*pazName)[b-1], (*pazName)[b])>0; b--){
        char *z = (*pazName)[b];
        (*pazName)[b] = (*pazName)[b-1];
        (*pazName)[b-1] = z;
      }
    }
  }
  return rc;
}

/* Designated initializers: members not named are NULL. */
const FedStore fedMongoStore = {
  .zName = MONGO_STORE,
  .eTxn = FED_TXN_NONE,
  .azTableOpt = azMongoTableOpt,
  .azServerOpt = azMongoServerOpt,
  .xConnect = mongoConnect,
  .xDisconnect = mongoDisconnect,
  .xIsAlive = mongoIsAlive,
  .xDescribe = mongoDescribe,
  .xColumns = mongoColumns,
  .xPushable = mongoPushable,
  .xOrderable = mongoOrderable,
  .xOpen = mongoOpen,
  .xClose = mongoClose,
  .xFilter = mongoFilter,
  .xNext = mongoNext,
  .xEof = mongoEof,
  .xColumn = mongoColumn,
  .xRowid = mongoRowid,
  .xUpdate = mongoUpdate,
  .xBegin = mongoBegin,
  .xCommit = mongoCommit,
  .xRollback = mongoRollback,
  .xSavepoint = mongoSavepoint,
  .xRelease = mongoRelease,
  .xRollbackTo = mongoRollbackTo,
  .xUndoImages = mongoUndoImages,
  .xUndoApply = mongoUndoApply,
  .xListTables = mongoListTables,
  .xTableFree = mongoTableFree,
  .xServerCheck = mongoServerCheck,
  .xQuery = mongoQuery,
};
