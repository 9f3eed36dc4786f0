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

/* The rows of fed_query(server, query, p1...p8) (eponymous.c): one JSON
** object each, rowids from 1; the hidden columns show the arguments. */
static int fqLoad(
  FedContext *pCtx, FedEpoRows *pRows, int idxNum, int argc,
  sqlite3_value **argv, char **pzErr
){
  sqlite3_value *apArg[2+FQ_NPARAM];
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  const char *zServer, *zQuery;
  char **azRow = 0;
  int i, iArg = 0, nParam = 0, nRow = 0, rc = SQLITE_OK;
  i64 nChanged = 0;

  /* Copies of the arguments, read as text without changing the caller's
  ** values; a parameter not given (a gap below the last one) stays NULL,
  ** which xQuery binds as SQL NULL. */
  memset(apArg, 0, sizeof(apArg));
  for(i=0; rc==SQLITE_OK && i<2+FQ_NPARAM; i++){
    if( idxNum & (1<<i) ){
      if( iArg>=argc ){
        fedSetError(pzErr, "fed_query: unexpected arguments");
        rc = SQLITE_CORRUPT_VTAB;
        break;
      }
      apArg[i] = sqlite3_value_dup(argv[iArg++]);
      if( apArg[i]==0 ) rc = SQLITE_NOMEM;
      if( i>=2 ) nParam = i-1;
    }
  }
  if( rc==SQLITE_OK ){
    zServer = apArg[0] ? (const char*)sqlite3_value_text(apArg[0]) : 0;
    zQuery = apArg[1] ? (const char*)sqlite3_value_text(apArg[1]) : 0;
    if( zServer==0 || zQuery==0 ){
      fedSetError(pzErr,
          "fed_query: usage: fed_query(server, query [, p1 ... p8])");
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    rc = queryConn(pCtx, "fed_query", zServer, &pServer, &pConn, pzErr);
  }
  if( rc==SQLITE_OK ){
    /* The command may change anything on the server (cache.c). */
    rc = queryClearCache(pCtx, pServer, "fed_query", pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = pServer->pStore->xQuery(pConn, zQuery, nParam, &apArg[2],
                                 &azRow, &nRow, &nChanged, pzErr);
  }
  for(i=0; i<nRow; i++){
    /* Each row's JSON is handed over, or freed once an error is kept. */
    fedEpoRow(pRows, i+1);
    fedEpoTextOwn(pRows, FQ_COL_ROW, azRow[i], 1);
  }
  sqlite3_free(azRow);
  for(i=0; i<2+FQ_NPARAM; i++){
    if( apArg[i] && rc==SQLITE_OK ){
      fedEpoArg(pRows, FQ_COL_SERVER+i, apArg[i]);
    }
    sqlite3_value_free(apArg[i]);
  }
  return rc;
}

static const FedEponymous queryTable = {
  "fed_query",
  "CREATE TABLE x(row TEXT, server HIDDEN, query HIDDEN, p1 HIDDEN,"
  " p2 HIDDEN, p3 HIDDEN, p4 HIDDEN, p5 HIDDEN, p6 HIDDEN, p7 HIDDEN,"
  " p8 HIDDEN)",
  3+FQ_NPARAM, 1, 1000, 100, fqBestIndex, fqLoad, 0
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
  }else{
    fedResultError(ctx, rc, zErr);
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
  }else{
    fedResultError(ctx, rc, zErr);
  }
  sqlite3_free(zErr);
}

int fedQueryRegister(sqlite3 *db, FedContext *pCtx){
  int fl = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc;
  rc = fedEponymousRegister(db, pCtx, &queryTable);
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
