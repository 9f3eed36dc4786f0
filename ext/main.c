/*
** main.c: the entry point.  sqlite3_federate_init() creates the
** per-connection FedContext and registers every store's module, the
** server functions, fed_explain, fed_query/fed_exec and the transaction
** enlisting table on one database connection.
*/
#include "fedInt.h"
SQLITE_EXTENSION_INIT1

/* Every store compiled in.  A new store adds one line. */
static const FedStore *const aStore[] = {
  &fedPostgresStore,
  &fedEtcdStore,
  &fedRedisStore,
};

/* Stores added at run time (the testfixture's scripted store), before the
** first connection is opened.  Process-wide. */
#define FED_MAX_EXTRA_STORE 4
static const FedStore *aExtraStore[FED_MAX_EXTRA_STORE];
static int nExtraStore = 0;

int fedStoreRegister(const FedStore *pStore){
  if( nExtraStore>=FED_MAX_EXTRA_STORE ) return SQLITE_FULL;
  aExtraStore[nExtraStore++] = pStore;
  return SQLITE_OK;
}

const FedStore *fedStoreFind(const char *zName){
  size_t i;
  if( zName==0 ) return 0;
  for(i=0; i<sizeof(aStore)/sizeof(aStore[0]); i++){
    if( fedStrICmp(aStore[i]->zName, zName)==0 ) return aStore[i];
  }
  for(i=0; i<(size_t)nExtraStore; i++){
    if( fedStrICmp(aExtraStore[i]->zName, zName)==0 ) return aExtraStore[i];
  }
  return 0;
}

/* The commit log's and the sagas' part in the server registry: their
** tables exist before fed_server() saves a server, and a new connection
** finishes what a crashed process left prepared (txlog.c); what cannot be
** finished now stays in fed_in_doubt. */
static int txlogSchema(FedContext *pCtx, char **pzErr){
  char *zPrefix = 0;
  int rc = fedTxlogPrefix(pCtx, 1, &zPrefix);
  (void)pzErr;
  sqlite3_free(zPrefix);
  return rc;
}
static void txlogConnected(FedContext *pCtx, FedServer *pServer,
                           FedConn *pConn){
  if( pServer->pStore->xListPrepared ){
    char *zErr = 0;
    fedTxlogRecoverServer(pCtx, pServer, pConn, &zErr);
    sqlite3_free(zErr);
  }
}
static const FedServerHook txlogHook = { 0, 0, txlogSchema, txlogConnected };

static int sagaSchema(FedContext *pCtx, char **pzErr){
  (void)pzErr;
  return fedSagaSchema(pCtx->db);
}
static const FedServerHook sagaHook = { 0, 0, sagaSchema, 0 };

/* Drop one reference; the last one closes connections and frees all. */
void fedContextUnref(void *p){
  FedContext *pCtx = (FedContext*)p;
  if( pCtx==0 || --pCtx->nRef>0 ) return;
  fedServerDisconnectAll(pCtx);
  fedTxlogFree(pCtx);
  fedUndoClose(pCtx);
  fedCacheFree(pCtx);
  fedExplainClear(pCtx);
  sqlite3_free(pCtx->aExplain);
  sqlite3_free(pCtx);
}

const char *sqlite3_federate_version(void){
  return FEDERATE_VERSION;
}

FEDERATE_API int sqlite3_federate_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  FedContext *pCtx;
  int rc = SQLITE_OK;
  size_t i;
  SQLITE_EXTENSION_INIT2(pApi);
  (void)pApi;

  pCtx = sqlite3_malloc64(sizeof(*pCtx));
  if( pCtx==0 ) return SQLITE_NOMEM;
  memset(pCtx, 0, sizeof(*pCtx));
  pCtx->db = db;
  pCtx->nRef = 1;               /* Held until the end of this function */
  pCtx->iTxn = 1;
  pCtx->nRecoverGrace = FED_RECOVER_GRACE;
  /* In this order: the log's tables before the sagas' (the cache adds
  ** its own in fedCacheRegister). */
  rc = fedServerAddHook(pCtx, &txlogHook);
  if( rc==SQLITE_OK ) rc = fedServerAddHook(pCtx, &sagaHook);

  for(i=0; rc==SQLITE_OK && i<sizeof(aStore)/sizeof(aStore[0]); i++){
    rc = fedVtabRegister(db, pCtx, aStore[i]);
  }
  for(i=0; rc==SQLITE_OK && i<(size_t)nExtraStore; i++){
    rc = fedVtabRegister(db, pCtx, aExtraStore[i]);
  }
  if( rc==SQLITE_OK ) rc = fedServerRegisterFunctions(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedExplainRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedTxlogRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedSagaRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedQueryRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedTxnRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedCacheRegister(db, pCtx);
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("federate: initialisation failed: %s",
                                sqlite3_errstr(rc));
  }
  fedContextUnref(pCtx);
  return rc;
}
