/*
** vtab.c: the one implementation of the sqlite3_module methods, shared by
** every store.  It parses the CREATE VIRTUAL TABLE arguments, declares the
** table, plans (plan.c), resolves the server connection at first use
** (server.c), hands transactions to the coordinator (txn.c), and calls the
** store's FedStore methods for everything remote.
**
** Column definitions come from the columns= option, else from the record
** xCreate left in "<schema>".fed_tables after asking the remote catalog;
** xConnect, which runs whenever a file is opened, never touches the network.
*/
#include "fedInt.h"

/* Options every table accepts besides the store's own. */
static const char *const azCoreOpt[] = { "server", "columns" };
#define N_CORE_OPT 2
#define N_MAX_OPT 40

typedef struct FedModuleAux FedModuleAux;
struct FedModuleAux {
  FedContext *pCtx;
  const FedStore *pStore;
};

static void auxFree(void *p){
  FedModuleAux *pAux = (FedModuleAux*)p;
  fedContextUnref(pAux->pCtx);
  sqlite3_free(pAux);
}

void fedTableError(FedTable *pTab, const char *zFmt, ...){
  va_list ap;
  sqlite3_free(pTab->base.zErrMsg);
  va_start(ap, zFmt);
  pTab->base.zErrMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
}

/* Move an error message from *pzErr onto the table; returns rc. */
static int tableErr(FedTable *pTab, int rc, char **pzErr){
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = *pzErr;
    *pzErr = 0;
  }
  sqlite3_free(*pzErr);
  *pzErr = 0;
  return rc;
}

static void tableFree(FedTable *pTab){
  if( pTab==0 ) return;
  if( pTab->pStore && pTab->pStore->xTableFree ) pTab->pStore->xTableFree(pTab);
  fedCacheTableFree(pTab);
  sqlite3_free(pTab->zName);
  sqlite3_free(pTab->zSchema);
  sqlite3_free(pTab->zServer);
  sqlite3_free(pTab->zRemote);
  fedConfigFree(pTab->pCfg);
  fedColumnsFree(pTab->aCol, pTab->nCol);
  sqlite3_free(pTab);
}

/* Resolve the table's server and a live connection to it. */
static int tableConn(FedTable *pTab, FedConn **ppConn, char **pzErr){
  int rc = SQLITE_OK;
  if( pTab->pServer==0 ){
    rc = fedServerFind(pTab->pCtx, pTab->zServer, &pTab->pServer, pzErr);
  }
  /* (Checked every time: fed_server() may redefine a server.) */
  if( rc==SQLITE_OK ){
    if( pTab->pServer->pStore!=pTab->pStore ){
      fedSetError(pzErr, "%s: server \"%s\" is a %s server", 
          pTab->pStore->zName, pTab->zServer, pTab->pServer->pStore->zName);
      pTab->pServer = 0;
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    rc = fedServerConn(pTab->pCtx, pTab->pServer, ppConn, pzErr);
  }
  return rc;
}

/* Read this table's record from fed_tables; SQLITE_DONE if none. */
static int tableLoadRecord(
  sqlite3 *db, FedTable *pTab, char **pzColumns, char **pzErr
){
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  zSql = sqlite3_mprintf("SELECT remote, columns FROM \"%w\".fed_tables"
                         " WHERE name=?1", pTab->zSchema);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return rc==SQLITE_NOMEM ? rc : SQLITE_DONE;
  sqlite3_bind_text(pStmt, 1, pTab->zName, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    pTab->zRemote = fedStrdup((const char*)sqlite3_column_text(pStmt,0), -1);
    *pzColumns = fedStrdup((const char*)sqlite3_column_text(pStmt,1), -1);
    rc = (pTab->zRemote && *pzColumns) ? SQLITE_OK : SQLITE_NOMEM;
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_DONE;
  }else{
    fedSetError(pzErr, "%s: cannot read fed_tables: %s",
                pTab->pStore->zName, sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return rc;
}

static int tableSaveRecord(sqlite3 *db, FedTable *pTab, char **pzErr){
  char *zCols;
  char *zSql;
  int rc;
  /* A trigger on fed_tables would run the file's SQL inside this write. */
  rc = fedSchemaGuard(pTab->pCtx, pTab->pStore->zName, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zCols = fedColumnsRender(pTab->aCol, pTab->nCol);
  if( zCols==0 ) return SQLITE_NOMEM;
  zSql = sqlite3_mprintf(
      "CREATE TABLE IF NOT EXISTS \"%w\".fed_tables(name TEXT PRIMARY KEY,"
      " server TEXT, remote TEXT, columns TEXT);"
      "INSERT OR REPLACE INTO \"%w\".fed_tables VALUES(%Q, %Q, %Q, %Q);",
      pTab->zSchema, pTab->zSchema, pTab->zName, pTab->zServer,
      pTab->zRemote, zCols);
  sqlite3_free(zCols);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: cannot record table \"%s\": %s",
                pTab->pStore->zName, pTab->zName, sqlite3_errmsg(db));
  }
  return rc;
}

/* Build the CREATE TABLE text for sqlite3_declare_vtab(). */
static char *tableDeclaration(FedTable *pTab){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendall(s, "CREATE TABLE x(");
  for(i=0; i<pTab->nCol; i++){
    sqlite3_str_appendf(s, "%s\"%w\" %s", i ? ", " : "",
                        pTab->aCol[i].zName, pTab->aCol[i].zAffinity);
  }
  if( pTab->iPk>=0 ){
    sqlite3_str_appendf(s, ", PRIMARY KEY(\"%w\")) WITHOUT ROWID",
                        pTab->aCol[pTab->iPk].zName);
  }else{
    sqlite3_str_appendall(s, ")");
  }
  return sqlite3_str_finish(s);
}

static int fedInit(
  sqlite3 *db, void *pAuxArg, int argc, const char *const *argv,
  sqlite3_vtab **ppVtab, char **pzErr, int bCreate
){
  FedModuleAux *pAux = (FedModuleAux*)pAuxArg;
  const FedStore *pStore = pAux->pStore;
  const char *azAllowed[N_MAX_OPT+1];
  FedTable *pTab;
  FedConn *pConn = 0;
  char *zColumns = 0;
  char *zDecl = 0;
  int i, n = 0, rc;

  for(i=0; i<N_CORE_OPT; i++) azAllowed[n++] = azCoreOpt[i];
  for(i=0; fedCacheOptions[i]; i++) azAllowed[n++] = fedCacheOptions[i];
  for(i=0; pStore->azTableOpt && pStore->azTableOpt[i] && n<N_MAX_OPT; i++){
    azAllowed[n++] = pStore->azTableOpt[i];
  }
  azAllowed[n] = 0;

  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->pCtx = pAux->pCtx;
  pTab->pStore = pStore;
  pTab->iPk = -1;
  pTab->zSchema = fedStrdup(argv[1], -1);
  pTab->zName = fedStrdup(argv[2], -1);
  if( pTab->zSchema==0 || pTab->zName==0 ){ rc = SQLITE_NOMEM; goto cleanup; }

  for(i=3; i<argc; i++){
    if( fedHasSecret(argv[i]) ){
      fedSetError(pzErr, "%s: a password may not appear in table options,"
          " because they are stored in the database file; name an"
          " environment variable with password_env=VAR in fed_server()"
          " options, or use the store's own password file", pStore->zName);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }
  rc = fedConfigParse(pStore->zName, argc-3, &argv[3], azAllowed,
                      &pTab->pCfg, pzErr);
  if( rc==SQLITE_OK ) rc = fedCacheCheckConfig(pTab->pCfg, pStore->zName, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  if( fedConfigGet(pTab->pCfg, "server")==0 ){
    fedSetError(pzErr, "%s: option server=NAME is required (a server"
                " registered with fed_server())", pStore->zName);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  pTab->zServer = fedStrdup(fedConfigGet(pTab->pCfg, "server"), -1);
  if( pTab->zServer==0 ){ rc = SQLITE_NOMEM; goto cleanup; }

  if( fedConfigGet(pTab->pCfg, "columns") ){
    rc = fedColumnsParse(pStore->zName, fedConfigGet(pTab->pCfg, "columns"),
                         &pTab->aCol, &pTab->nCol, pzErr);
    if( rc==SQLITE_OK ) rc = pStore->xDescribe(0, pTab, pzErr);
    if( rc==SQLITE_OK && bCreate ){
      FedServer *pServer;
      rc = fedServerFind(pTab->pCtx, pTab->zServer, &pServer, pzErr);
    }
  }else{
    rc = bCreate ? SQLITE_DONE : tableLoadRecord(db, pTab, &zColumns, pzErr);
    if( rc==SQLITE_OK ){
      rc = fedColumnsParse(pStore->zName, zColumns, &pTab->aCol, &pTab->nCol,
                           pzErr);
    }else if( rc==SQLITE_DONE && bCreate ){
      /* Ask the remote catalog, and remember the answer in the file. */
      rc = tableConn(pTab, &pConn, pzErr);
      if( rc==SQLITE_OK ) rc = pStore->xDescribe(pConn, pTab, pzErr);
      if( rc==SQLITE_OK ) rc = tableSaveRecord(db, pTab, pzErr);
    }else if( rc==SQLITE_DONE ){
      fedSetError(pzErr, "%s: table \"%s\" has no column record in"
          " fed_tables; drop and create it again", pStore->zName,
          pTab->zName);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ) rc = pStore->xColumns(pTab, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;

  zDecl = tableDeclaration(pTab);
  if( zDecl==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  rc = sqlite3_declare_vtab(db, zDecl);
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "%s: cannot declare table \"%s\": %s",
                  pStore->zName, pTab->zName, sqlite3_errmsg(db));
    }
    goto cleanup;
  }
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  fedCacheConnect(pTab);
  pTab->pStat = fedStatsFor(pTab->pCtx, pTab->zSchema, pTab->zName);
  *ppVtab = &pTab->base;
  pTab = 0;

cleanup:
  sqlite3_free(zColumns);
  sqlite3_free(zDecl);
  tableFree(pTab);
  return rc;
}

static int fedCreate(
  sqlite3 *db, void *pAux, int argc, const char *const *argv,
  sqlite3_vtab **ppVtab, char **pzErr
){
  return fedInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int fedConnect(
  sqlite3 *db, void *pAux, int argc, const char *const *argv,
  sqlite3_vtab **ppVtab, char **pzErr
){
  return fedInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

static int fedDisconnect(sqlite3_vtab *pVtab){
  tableFree((FedTable*)pVtab);
  return SQLITE_OK;
}

static int fedDestroy(sqlite3_vtab *pVtab){
  FedTable *pTab = (FedTable*)pVtab;
  char *zErr = 0;
  char *zSql = 0;
  /* A trigger on fed_tables (an untrusted file) would run inside the
  ** DELETE: then the record stays behind, which is harmless (SQLite does
  ** not show xDestroy's message, so refusing the DROP would only say
  ** "SQL logic error"). */
  if( fedSchemaGuard(pTab->pCtx, pTab->pStore->zName, &zErr)==SQLITE_OK ){
    zSql = sqlite3_mprintf("DELETE FROM \"%w\".fed_tables WHERE name=%Q",
                           pTab->zSchema, pTab->zName);
  }
  sqlite3_free(zErr);
  if( zSql ){
    /* No record (columns= given, or no table at all) is fine. */
    sqlite3_exec(pTab->pCtx->db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
  }
  tableFree(pTab);
  return SQLITE_OK;
}

static int fedBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  return fedPlanBest((FedTable*)pVtab, pInfo);
}

/**************************************************************************
** The store as a row source (FedRowSource).  Its scan runs in the remote
** transaction, and the cache's fill path copies the rows it delivers
** (fedCacheFilled/Failed after xFilter, fedCacheBeforeNext/AfterNext
** around xNext: all do nothing unless the cache asked for a fill).
*/
static int storeWantsConn(FedTable *pTab){
  (void)pTab;
  return 1;
}

static int storeFilter(FedCursor *pCsr, FedConn *pConn, int argc,
                       sqlite3_value **argv, int *pbTaken, char **pzErr){
  FedTable *pTab = pCsr->pTab;
  int rc = fedTxnEnsure(pTab->pCtx, pTab->pServer, pConn, pCsr->bForUpdate,
                        pzErr);
  if( rc==SQLITE_OK ) rc = pTab->pStore->xFilter(pCsr, argc, argv, pzErr);
  if( rc==SQLITE_OK ){
    *pbTaken = 1;
    fedStatsScan(pTab->pStat, 0);
    if( !pTab->pStore->xEof(pCsr) ) fedStatsRow(pTab->pStat);
    rc = fedCacheFilled(pCsr);
  }else{
    fedCacheFailed(pCsr);
  }
  return rc;
}

static int storeNext(FedCursor *pCsr, char **pzErr){
  int rc;
  fedCacheBeforeNext(pCsr);
  rc = pCsr->pTab->pStore->xNext(pCsr, pzErr);
  fedCacheAfterNext(pCsr, rc);
  if( rc==SQLITE_OK && !pCsr->pTab->pStore->xEof(pCsr) ){
    fedStatsRow(pCsr->pTab->pStat);
  }
  return rc;
}

static int storeEof(FedCursor *pCsr){
  return pCsr->pTab->pStore->xEof(pCsr);
}

static int storeColumn(FedCursor *pCsr, sqlite3_context *ctx, int iCol){
  return pCsr->pTab->pStore->xColumn(pCsr, ctx, iCol);
}

static int storeRowid(FedCursor *pCsr, i64 *piRowid){
  return pCsr->pTab->pStore->xRowid(pCsr, piRowid);
}

static void storeClose(FedCursor *pCsr){
  pCsr->pTab->pStore->xClose(pCsr);
}

static const FedRowSource storeSource = {
  storeWantsConn, storeFilter, storeNext, storeEof, storeColumn, storeRowid,
  storeClose
};

/* The sources xFilter asks, in order; xClose runs for each, in order. */
static const FedRowSource *const aSource[] = { &fedCacheSource, &storeSource };

static int fedOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCsr){
  FedTable *pTab = (FedTable*)pVtab;
  FedCursor *pCsr;
  char *zErr = 0;
  int rc;
  pCsr = sqlite3_malloc64(sizeof(*pCsr));
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->pTab = pTab;
  pCsr->pSource = &storeSource;
  pCsr->nContLimit = -1;
  rc = pTab->pStore->xOpen(pCsr, &zErr);
  if( rc!=SQLITE_OK ){
    sqlite3_free(pCsr);
    return tableErr(pTab, rc, &zErr);
  }
  *ppCsr = &pCsr->base;
  return SQLITE_OK;
}

/* Forget the values kept for continuing a LIMIT hint. */
static void contReset(FedCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nContArg; i++) sqlite3_value_free(pCsr->apContArg[i]);
  sqlite3_free(pCsr->apContArg);
  pCsr->apContArg = 0;
  pCsr->nContArg = 0;
  pCsr->nContRow = 0;
  pCsr->nContLimit = -1;
}

/* A scan whose LIMIT is a hint (plan.c, "hidden terms") keeps copies of
** its values, which SQLite owns only during xFilter, so that it can be
** re-issued from xNext. */
static int contStart(FedCursor *pCsr, int argc, sqlite3_value **argv){
  int i;
  const FedPlan *pPlan = pCsr->pPlan;
  contReset(pCsr);
  if( pPlan==0 || !pPlan->bLimitCont || pPlan->iLimitArg<0
   || pPlan->iLimitArg>=argc ){
    return SQLITE_OK;
  }
  pCsr->apContArg = sqlite3_malloc64(sizeof(sqlite3_value*)*(argc+1));
  if( pCsr->apContArg==0 ) return SQLITE_NOMEM;
  for(i=0; i<argc; i++){
    pCsr->apContArg[i] = sqlite3_value_dup(argv[i]);
    if( pCsr->apContArg[i]==0 ){
      pCsr->nContArg = i;
      return SQLITE_NOMEM;
    }
  }
  pCsr->nContArg = argc;
  pCsr->nContLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
  return SQLITE_OK;
}

/*
** Called after a step of the scan.  If the scan of a LIMIT hint has just
** ended on exactly the hint's last row, SQLite asking for another row
** means that it rejected some of them (a hidden term): re-issue the scan
** from the store, whose order is total, with OFFSET <hint> and no LIMIT,
** so that it goes on exactly after the rows already returned.
*/
static int contStep(FedCursor *pCsr, char **pzErr){
  FedTable *pTab = pCsr->pTab;
  FedPlan *pPlan = pCsr->pPlan;
  FedConn *pConn = 0;
  int bEof, rc, bTaken = 0;
  if( pCsr->nContLimit<0 ) return SQLITE_OK;
  bEof = pCsr->pSource->xEof(pCsr);
  if( !bEof ){
    pCsr->nContRow++;
    return SQLITE_OK;
  }
  if( pCsr->nContRow!=pCsr->nContLimit || pCsr->nContRow==0 ){
    return SQLITE_OK;
  }
  /* The offset is the LIMIT value itself: exactly the rows returned. */
  pCsr->nContLimit = -1;
  pPlan->iOffsetArg = pPlan->iLimitArg;
  pPlan->iLimitArg = -1;
  pCsr->pSource = &storeSource;
  rc = tableConn(pTab, &pConn, pzErr);
  if( rc==SQLITE_OK ){
    rc = storeSource.xFilter(pCsr, pConn, pCsr->nContArg, pCsr->apContArg,
                             &bTaken, pzErr);
  }
  return rc;
}

static int fedClose(sqlite3_vtab_cursor *pVCsr){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  size_t i;
  contReset(pCsr);
  for(i=0; i<sizeof(aSource)/sizeof(aSource[0]); i++){
    aSource[i]->xClose(pCsr);
  }
  fedPlanFree(pCsr->pPlan);
  sqlite3_free(pCsr);
  return SQLITE_OK;
}

static int fedFilter(
  sqlite3_vtab_cursor *pVCsr, int idxNum, const char *idxStr,
  int argc, sqlite3_value **argv
){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  FedTable *pTab = pCsr->pTab;
  char *zErr = 0;
  int rc, bTaken = 0;
  size_t i;
  (void)idxNum;
  fedPlanFree(pCsr->pPlan);
  pCsr->pPlan = 0;
  pCsr->pSource = &storeSource;
  rc = fedPlanDecode(idxStr, &pCsr->pPlan);
  if( rc==SQLITE_OK ) rc = contStart(pCsr, argc, argv);
  /* SQLite calls xBegin before the scan of a statement that writes the
  ** table (UPDATE, DELETE, INSERT ... SELECT).  Outside BEGIN...COMMIT
  ** such a scan runs inside the statement's remote transaction and locks
  ** what it reads, so that the write is not based on rows someone else
  ** has changed meanwhile.  (Inside BEGIN...COMMIT the remote transaction
  ** is REPEATABLE READ, where such a change fails the write instead.) */
  pCsr->bForUpdate = pTab->iWriteTxn==pTab->pCtx->iTxn
                  && sqlite3_get_autocommit(pTab->pCtx->db);
  /* The cache first, then the store: the first source that takes the
  ** scan serves it.  Only a source that needs the connection before it
  ** can decide gets it (a table watched for changes hears them on it). */
  for(i=0; rc==SQLITE_OK && !bTaken && i<sizeof(aSource)/sizeof(aSource[0]);
      i++){
    const FedRowSource *pSource = aSource[i];
    FedConn *pConn = 0;
    if( pSource->xWantsConn(pTab) ) rc = tableConn(pTab, &pConn, &zErr);
    if( rc==SQLITE_OK ){
      rc = pSource->xFilter(pCsr, pConn, argc, argv, &bTaken, &zErr);
    }
    if( rc==SQLITE_OK && bTaken ){
      if( pSource!=&storeSource ) fedStatsScan(pTab->pStat, 1);
      pCsr->pSource = pSource;
      if( !pSource->xEof(pCsr) ) pCsr->nContRow = 1;
    }
  }
  return tableErr(pTab, rc, &zErr);
}

static int fedNext(sqlite3_vtab_cursor *pVCsr){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  char *zErr = 0;
  int rc;
  rc = pCsr->pSource->xNext(pCsr, &zErr);
  if( rc==SQLITE_OK ) rc = contStep(pCsr, &zErr);
  return tableErr(pCsr->pTab, rc, &zErr);
}

static int fedEof(sqlite3_vtab_cursor *pVCsr){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  return pCsr->pSource->xEof(pCsr);
}

static int fedColumn(
  sqlite3_vtab_cursor *pVCsr, sqlite3_context *ctx, int iCol
){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  return pCsr->pSource->xColumn(pCsr, ctx, iCol);
}

static int fedRowid(sqlite3_vtab_cursor *pVCsr, sqlite3_int64 *piRowid){
  FedCursor *pCsr = (FedCursor*)pVCsr;
  return pCsr->pSource->xRowid(pCsr, piRowid);
}

static int fedUpdate(
  sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite3_int64 *piRowid
){
  FedTable *pTab = (FedTable*)pVtab;
  FedConn *pConn = 0;
  char *zErr = 0;
  int rc;
  if( pTab->pStore->xUpdate==0 ){
    fedTableError(pTab, "%s: table \"%s\" is read-only", pTab->pStore->zName,
                  pTab->zName);
    return SQLITE_READONLY;
  }
  rc = tableConn(pTab, &pConn, &zErr);
  if( rc==SQLITE_OK ){
    rc = fedTxnEnsure(pTab->pCtx, pTab->pServer, pConn, 1, &zErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedTxnBeforeWrite(pTab->pCtx, pTab->pServer, pConn, &zErr);
  }
  /* The cache forgets the table before the write (cache.c). */
  if( rc==SQLITE_OK ) rc = fedCacheWrite(pTab, &zErr);
  if( rc==SQLITE_OK ){
    rc = pTab->pStore->xUpdate(pTab, argc, argv, piRowid, &zErr);
    if( rc==SQLITE_OK ){
      pConn->bWritten = 1;
      fedStatsWrite(pTab->pStat);
    }
  }
  return tableErr(pTab, rc, &zErr);
}

/* Transaction methods: every written table reports to the coordinator,
** which acts once per transaction whatever the number of tables. */
static int fedBegin(sqlite3_vtab *pVtab){
  FedTable *pTab = (FedTable*)pVtab;
  pTab->pCtx->bEnlisted = 1;
  pTab->iWriteTxn = pTab->pCtx->iTxn;
  return SQLITE_OK;
}

static int fedSync(sqlite3_vtab *pVtab){
  FedTable *pTab = (FedTable*)pVtab;
  char *zErr = 0;
  int rc = fedTxnSync(pTab->pCtx, &zErr);
  return tableErr(pTab, rc, &zErr);
}

static int fedCommit(sqlite3_vtab *pVtab){
  fedTxnCommit(((FedTable*)pVtab)->pCtx);
  fedCacheTxnEnd((FedTable*)pVtab);
  return SQLITE_OK;
}

static int fedRollback(sqlite3_vtab *pVtab){
  fedTxnRollback(((FedTable*)pVtab)->pCtx);
  fedCacheTxnEnd((FedTable*)pVtab);
  return SQLITE_OK;
}

static int fedSavepoint(sqlite3_vtab *pVtab, int iSavepoint){
  FedTable *pTab = (FedTable*)pVtab;
  char *zErr = 0;
  int rc = fedTxnSavepoint(pTab->pCtx, iSavepoint, &zErr);
  return tableErr(pTab, rc, &zErr);
}

static int fedRelease(sqlite3_vtab *pVtab, int iSavepoint){
  FedTable *pTab = (FedTable*)pVtab;
  char *zErr = 0;
  int rc = fedTxnRelease(pTab->pCtx, iSavepoint, &zErr);
  return tableErr(pTab, rc, &zErr);
}

static int fedRollbackTo(sqlite3_vtab *pVtab, int iSavepoint){
  FedTable *pTab = (FedTable*)pVtab;
  char *zErr = 0;
  int rc = fedTxnRollbackTo(pTab->pCtx, iSavepoint, &zErr);
  return tableErr(pTab, rc, &zErr);
}

static int fedRename(sqlite3_vtab *pVtab, const char *zNew){
  FedTable *pTab = (FedTable*)pVtab;
  char *zSql = sqlite3_mprintf("UPDATE \"%w\".fed_tables SET name=%Q"
      " WHERE name=%Q", pTab->zSchema, zNew, pTab->zName);
  char *zName = fedStrdup(zNew, -1);
  int rc;
  if( zSql==0 || zName==0 ){
    sqlite3_free(zSql);
    sqlite3_free(zName);
    return SQLITE_NOMEM;
  }
  rc = sqlite3_exec(pTab->pCtx->db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  if( rc==SQLITE_ERROR ) rc = SQLITE_OK;    /* No fed_tables: nothing kept */
  if( rc==SQLITE_OK ){
    sqlite3_free(pTab->zName);
    pTab->zName = zName;
  }else{
    sqlite3_free(zName);
  }
  return rc;
}

static const sqlite3_module fedModule = {
  3,                  /* iVersion: savepoints, shadow names */
  fedCreate,
  fedConnect,
  fedBestIndex,
  fedDisconnect,
  fedDestroy,
  fedOpen,
  fedClose,
  fedFilter,
  fedNext,
  fedEof,
  fedColumn,
  fedRowid,
  fedUpdate,
  fedBegin,
  fedSync,
  fedCommit,
  fedRollback,
  0,                  /* xFindFunction */
  fedRename,
  fedSavepoint,
  fedRelease,
  fedRollbackTo,
  0                   /* xShadowName */
};

int fedVtabRegister(sqlite3 *db, FedContext *pCtx, const FedStore *pStore){
  FedModuleAux *pAux = sqlite3_malloc64(sizeof(*pAux));
  if( pAux==0 ) return SQLITE_NOMEM;
  pAux->pCtx = pCtx;
  pAux->pStore = pStore;
  pCtx->nRef++;
  return sqlite3_create_module_v2(db, pStore->zName, &fedModule, pAux,
                                  auxFree);
}
