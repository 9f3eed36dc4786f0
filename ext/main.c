/*
** main.c: the entry point.  sqlite3_federate_init() creates the
** per-connection FedContext (context.c), adds the stores, and registers
** every store's module, the server functions, fed_explain, fed_query/
** fed_exec, the transaction enlisting table and the cache on one database
** connection, with the hooks and close functions of each subsystem.  It
** is the one file that names the others; none of them calls back here.
*/
#include "fedInt.h"
SQLITE_EXTENSION_INIT1

/* Every store compiled in (each defines its FedStore in vtab/<store>/).
** A new store adds one line here. */
#define FED_STORES(X) \
  X(fedPostgresStore) \
  X(fedEtcdStore)     \
  X(fedRedisStore)    \
  X(fedMysqlStore)    \
  X(fedMongoStore)    \
  X(fedCouchdbStore)

#define FED_STORE_EXTERN(s) extern const FedStore s;
#define FED_STORE_ADDR(s)   &s,
FED_STORES(FED_STORE_EXTERN)
static const FedStore *const aStore[] = { FED_STORES(FED_STORE_ADDR) };

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

/* What each subsystem frees when the connection closes, in order. */
static void (*const axClose[])(FedContext*) = {
  fedServerDisconnectAll, fedTxlogFree, fedUndoClose, fedCacheFree,
  fedStatsFree, fedExplainFree,
};

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

  pCtx = fedContextNew(db);     /* Our reference: dropped at the end */
  if( pCtx==0 ) return SQLITE_NOMEM;
  /* At sqlite3_close, in this order: connections first (closing one may
  ** still record a command), the fed_explain ring last. */
  for(i=0; rc==SQLITE_OK && i<sizeof(axClose)/sizeof(axClose[0]); i++){
    rc = fedContextAtClose(pCtx, axClose[i]);
  }
  /* In this order: the log's tables before the sagas' (the cache adds
  ** its own in fedCacheRegister). */
  if( rc==SQLITE_OK ) rc = fedServerAddHook(pCtx, &txlogHook);
  if( rc==SQLITE_OK ) rc = fedServerAddHook(pCtx, &sagaHook);

  for(i=0; rc==SQLITE_OK && i<sizeof(aStore)/sizeof(aStore[0]); i++){
    rc = fedContextAddStore(pCtx, aStore[i]);
  }
  for(i=0; rc==SQLITE_OK && (int)i<fedStoreCount(); i++){
    rc = fedContextAddStore(pCtx, fedStoreAt((int)i));
  }
  for(i=0; rc==SQLITE_OK && (int)i<pCtx->nStore; i++){
    rc = fedVtabRegister(db, pCtx, pCtx->apStore[i]);
  }
  if( rc==SQLITE_OK ) rc = fedServerRegisterFunctions(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedExplainRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedTxlogRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedSagaRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedQueryRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedTxnRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedCacheRegister(db, pCtx);
  if( rc==SQLITE_OK ) rc = fedStatsRegister(db, pCtx);
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("federate: initialisation failed: %s",
                                sqlite3_errstr(rc));
  }
  fedContextUnref(pCtx);
  return rc;
}
