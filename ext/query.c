/*
** query.c: the pass-through, for when the store's own language is needed,
** and schema import.
**
**   SELECT row FROM fed_query('pg', 'SELECT id, name FROM t WHERE id > $1', 10);
**   SELECT row->>'name' FROM fed_query('pg', 'SELECT ...');
**   SELECT fed_exec('pg', 'VACUUM t');               -- rows affected
**   SELECT fed_import('pg', 'public' [, 'prefix=pg_']);  -- tables created
**
** fed_query is an eponymous table-valued function with one visible column,
** row, holding each result row as a JSON object; the arguments are the
** hidden columns server, query and p1..p8 (bound parameters).  Inside
** BEGIN...COMMIT both run in the server's remote transaction.
*/
#include "fedInt.h"

#define FQ_NPARAM 8
#define FQ_COL_ROW 0
#define FQ_COL_SERVER 1
#define FQ_COL_QUERY 2
#define FQ_COL_P1 3

/* Resolve server zName and a connection inside SQLite's transaction. */
static int queryConn(
  FedContext *pCtx, const char *zFunc, const char *zName,
  FedServer **ppServer, FedConn **ppConn, char **pzErr
){
  int rc = fedSchemaGuard(pCtx, zFunc, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerFind(pCtx, zName, ppServer, pzErr);
  if( rc==SQLITE_OK && (*ppServer)->pStore->xQuery==0 ){
    fedSetError(pzErr, "%s: no pass-through for this store",
                (*ppServer)->pStore->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, *ppServer, ppConn, pzErr);
  if( rc==SQLITE_OK ) rc = fedTxnEnsure(pCtx, *ppServer, *ppConn, 0, pzErr);
  return rc;
}

/* A command may change anything on the server: clear its cached tables
** first (cache.c), or send nothing. */
static int queryClearCache(FedContext *pCtx, FedServer *pServer,
                           const char *zFunc, char **pzErr){
  int rc = fedCacheInvalidateServer(pCtx, pServer);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: cannot clear the cache of server \"%s\" before"
        " the command; nothing was sent", zFunc, pServer->zName);
    rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  return rc;
}

typedef struct QueryTable QueryTable;
struct QueryTable {
  sqlite3_vtab base;            /* Base class. Must be first */
  FedContext *pCtx;
};

typedef struct QueryCursor QueryCursor;
struct QueryCursor {
  sqlite3_vtab_cursor base;     /* Base class. Must be first */
  char **azRow;                 /* JSON object per row */
  int nRow;
  int iRow;
  sqlite3_value *apArg[2+FQ_NPARAM];  /* Copies of the arguments */
};

static int fqConnect(
  sqlite3 *db, void *pAux, int argc, const char *const *argv,
  sqlite3_vtab **ppVtab, char **pzErr
){
  QueryTable *pTab;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(row TEXT, server HIDDEN,"
      " query HIDDEN, p1 HIDDEN, p2 HIDDEN, p3 HIDDEN, p4 HIDDEN,"
      " p5 HIDDEN, p6 HIDDEN, p7 HIDDEN, p8 HIDDEN)");
  if( rc!=SQLITE_OK ) return rc;
  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->pCtx = (FedContext*)pAux;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int fqDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

/* idxNum: bit i set when hidden column 1+i is given, in argv order. */
static int fqBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i, nArg = 0, mask = 0;
  int aiCons[2+FQ_NPARAM];
  (void)pVtab;
  for(i=0; i<2+FQ_NPARAM; i++) aiCons[i] = -1;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    int iHidden = p->iColumn - FQ_COL_SERVER;
    if( iHidden<0 || p->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( !p->usable ) return SQLITE_CONSTRAINT;
    aiCons[iHidden] = i;
  }
  for(i=0; i<2+FQ_NPARAM; i++){
    if( aiCons[i]>=0 ){
      pInfo->aConstraintUsage[aiCons[i]].argvIndex = ++nArg;
      pInfo->aConstraintUsage[aiCons[i]].omit = 1;
      mask |= 1<<i;
    }
  }
  pInfo->idxNum = mask;
  pInfo->estimatedCost = 1000;
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}

static int fqOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCsr){
  QueryCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pVtab;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  *ppCsr = &pCsr->base;
  return SQLITE_OK;
}

static void fqReset(QueryCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nRow; i++) sqlite3_free(pCsr->azRow[i]);
  sqlite3_free(pCsr->azRow);
  pCsr->azRow = 0;
  pCsr->nRow = pCsr->iRow = 0;
  for(i=0; i<2+FQ_NPARAM; i++){
    sqlite3_value_free(pCsr->apArg[i]);
    pCsr->apArg[i] = 0;
  }
}

static int fqClose(sqlite3_vtab_cursor *pVCsr){
  fqReset((QueryCursor*)pVCsr);
  sqlite3_free(pVCsr);
  return SQLITE_OK;
}

static int fqFilter(
  sqlite3_vtab_cursor *pVCsr, int idxNum, const char *idxStr,
  int argc, sqlite3_value **argv
){
  QueryCursor *pCsr = (QueryCursor*)pVCsr;
  QueryTable *pTab = (QueryTable*)pVCsr->pVtab;
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  const char *zServer, *zQuery;
  char *zErr = 0;
  int i, iArg = 0, nParam = 0, rc;
  i64 nChanged = 0;
  (void)idxStr;

  fqReset(pCsr);
  for(i=0; i<2+FQ_NPARAM; i++){
    if( idxNum & (1<<i) ){
      if( iArg>=argc ) return SQLITE_CORRUPT_VTAB;
      pCsr->apArg[i] = sqlite3_value_dup(argv[iArg++]);
      if( pCsr->apArg[i]==0 ) return SQLITE_NOMEM;
      if( i>=2 ) nParam = i-1;
    }
  }
  zServer = pCsr->apArg[0] ? (const char*)sqlite3_value_text(pCsr->apArg[0]) : 0;
  zQuery = pCsr->apArg[1] ? (const char*)sqlite3_value_text(pCsr->apArg[1]) : 0;
  if( zServer==0 || zQuery==0 ){
    pVCsr->pVtab->zErrMsg = sqlite3_mprintf(
        "fed_query: usage: fed_query(server, query [, p1 ... p8])");
    return SQLITE_ERROR;
  }
  for(i=2; i<2+nParam; i++){
    if( pCsr->apArg[i]==0 ){
      pCsr->apArg[i] = sqlite3_value_dup(0);
    }
  }
  rc = queryConn(pTab->pCtx, "fed_query", zServer, &pServer, &pConn, &zErr);
  if( rc==SQLITE_OK ){
    /* The command may change anything on the server (cache.c). */
    rc = queryClearCache(pTab->pCtx, pServer, "fed_query", &zErr);
  }
  if( rc==SQLITE_OK ){
    rc = pServer->pStore->xQuery(pConn, zQuery, nParam, &pCsr->apArg[2],
                                 &pCsr->azRow, &pCsr->nRow, &nChanged, &zErr);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(pVCsr->pVtab->zErrMsg);
    pVCsr->pVtab->zErrMsg = zErr;
  }
  return rc;
}

static int fqNext(sqlite3_vtab_cursor *pVCsr){
  ((QueryCursor*)pVCsr)->iRow++;
  return SQLITE_OK;
}

static int fqEof(sqlite3_vtab_cursor *pVCsr){
  QueryCursor *pCsr = (QueryCursor*)pVCsr;
  return pCsr->iRow>=pCsr->nRow;
}

static int fqColumn(sqlite3_vtab_cursor *pVCsr, sqlite3_context *ctx, int i){
  QueryCursor *pCsr = (QueryCursor*)pVCsr;
  if( i==FQ_COL_ROW ){
    sqlite3_result_text(ctx, pCsr->azRow[pCsr->iRow], -1, SQLITE_TRANSIENT);
    sqlite3_result_subtype(ctx, 'J');
  }else if( pCsr->apArg[i-FQ_COL_SERVER] ){
    sqlite3_result_value(ctx, pCsr->apArg[i-FQ_COL_SERVER]);
  }
  return SQLITE_OK;
}

static int fqRowid(sqlite3_vtab_cursor *pVCsr, sqlite3_int64 *piRowid){
  *piRowid = ((QueryCursor*)pVCsr)->iRow + 1;
  return SQLITE_OK;
}

static const sqlite3_module queryModule = {
  0, 0, fqConnect, fqBestIndex, fqDisconnect, 0,
  fqOpen, fqClose, fqFilter, fqNext, fqEof, fqColumn, fqRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/* fed_exec(server, command [, params...]): rows affected (or returned). */
static void execFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  const char *zServer = argc>=2 ? (const char*)sqlite3_value_text(argv[0]) : 0;
  const char *zCmd = argc>=2 ? (const char*)sqlite3_value_text(argv[1]) : 0;
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  char **azRow = 0;
  int nRow = 0, i, rc;
  i64 nChanged = 0;
  char *zErr = 0;
  if( zServer==0 || zCmd==0 ){
    sqlite3_result_error(ctx, "fed_exec: usage: fed_exec(server, command"
                         " [, params...])", -1);
    return;
  }
  rc = queryConn(pCtx, "fed_exec", zServer, &pServer, &pConn, &zErr);
  if( rc==SQLITE_OK ) rc = queryClearCache(pCtx, pServer, "fed_exec", &zErr);
  if( rc==SQLITE_OK ){
    rc = pServer->pStore->xQuery(pConn, zCmd, argc-2, &argv[2], &azRow,
                                 &nRow, &nChanged, &zErr);
  }
  for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
  sqlite3_free(azRow);
  if( rc==SQLITE_OK ){
    sqlite3_result_int64(ctx, nChanged);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
  }
  sqlite3_free(zErr);
}

/* SQLITE_ERROR with *pzErr if a local table named zPrefix||zName exists in
** main, or comes twice in azName (names differ only in case remotely). */
static int importCollision(
  sqlite3 *db, const char *zPrefix, char **azName, int iName,
  char **pzErr
){
  sqlite3_stmt *pStmt = 0;
  int i, rc;
  char *zLocal = sqlite3_mprintf("%s%s", zPrefix, azName[2*iName]);
  if( zLocal==0 ) return SQLITE_NOMEM;
  for(i=0; i<iName; i++){
    if( sqlite3_stricmp(azName[2*i], azName[2*iName])==0 ){
      fedSetError(pzErr, "fed_import: table \"%s\" would be created twice"
          " (remote names that differ only in case); nothing was imported",
          zLocal);
      sqlite3_free(zLocal);
      return SQLITE_ERROR;
    }
  }
  rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.sqlite_schema"
      " WHERE name=?1 COLLATE NOCASE", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zLocal, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      fedSetError(pzErr, "fed_import: table \"%s\" already exists;"
          " nothing was imported (choose another prefix=)", zLocal);
      rc = SQLITE_ERROR;
    }else{
      rc = sqlite3_reset(pStmt);
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zLocal);
  return rc;
}

/*
** fed_import(server, remote_schema [, options]): one CREATE VIRTUAL TABLE
** per remote table or view, named as the remote one (plus prefix=).
** Returns the number of tables created.  All or nothing: a name that
** already exists locally is an error that names it and creates nothing,
** and a failure part way drops the tables already created.
*/
static void importFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char *const azOpt[] = { "prefix", 0 };
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  const char *zServer = (const char*)sqlite3_value_text(argv[0]);
  const char *zSchema = (const char*)sqlite3_value_text(argv[1]);
  const char *zOpt = argc>2 ? (const char*)sqlite3_value_text(argv[2]) : 0;
  FedConfig *pCfg = 0;
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  char **azName = 0;
  int nName = 0, i, nDone = 0, rc;
  char *zErr = 0;
  const char *zPrefix;

  if( zServer==0 || zSchema==0 ){
    sqlite3_result_error(ctx, "fed_import: usage: fed_import(server,"
                         " remote_schema [, options])", -1);
    return;
  }
  rc = fedConfigParseString("fed_import", zOpt, azOpt, &pCfg, &zErr);
  if( rc==SQLITE_OK ) rc = fedSchemaGuard(pCtx, "fed_import", &zErr);
  if( rc==SQLITE_OK ) rc = fedServerFind(pCtx, zServer, &pServer, &zErr);
  if( rc==SQLITE_OK && pServer->pStore->xListTables==0 ){
    fedSetError(&zErr, "%s: fed_import is not supported for this store",
                pServer->pStore->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, pServer, &pConn, &zErr);
  if( rc==SQLITE_OK ){
    rc = pServer->pStore->xListTables(pConn, zSchema, &azName, &nName, &zErr);
  }
  zPrefix = fedConfigGet(pCfg, "prefix");
  if( zPrefix==0 ) zPrefix = "";
  for(i=0; rc==SQLITE_OK && i<nName; i++){
    rc = importCollision(pCtx->db, zPrefix, azName, i, &zErr);
  }
  for(i=0; rc==SQLITE_OK && i<nName; i++){
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE \"%w%w\" USING"
        " %s(server='%q', table='%q')", zPrefix, azName[2*i],
        pServer->pStore->zName, pServer->zName, azName[2*i+1]);
    if( zSql==0 ){
      rc = SQLITE_NOMEM;
      break;
    }
    rc = sqlite3_exec(pCtx->db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      fedSetError(&zErr, "fed_import: cannot create table \"%s%s\": %s;"
                  " nothing was imported", zPrefix, azName[2*i],
                  sqlite3_errmsg(pCtx->db));
    }
    if( rc==SQLITE_OK ) nDone++;
  }
  if( rc!=SQLITE_OK ){
    /* Take back what was created (xDestroy drops the fed_tables records);
    ** best effort: a failure here leaves a table the user can drop. */
    for(i=0; i<nDone; i++){
      char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS main.\"%w%w\"",
                                   zPrefix, azName[2*i]);
      if( zSql ) sqlite3_exec(pCtx->db, zSql, 0, 0, 0);
      sqlite3_free(zSql);
    }
  }
  for(i=0; i<2*nName; i++) sqlite3_free(azName[i]);
  sqlite3_free(azName);
  fedConfigFree(pCfg);
  if( rc==SQLITE_OK ){
    sqlite3_result_int(ctx, nDone);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
  }
  sqlite3_free(zErr);
}

int fedQueryRegister(sqlite3 *db, FedContext *pCtx){
  int fl = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc;
  pCtx->nRef++;
  rc = sqlite3_create_module_v2(db, "fed_query", &queryModule, pCtx,
                                fedContextUnref);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_exec", -1, fl, pCtx, execFunc, 0,0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_import", 2, fl, pCtx, importFunc,
                                 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_import", 3, fl, pCtx, importFunc,
                                 0, 0);
  }
  return rc;
}
