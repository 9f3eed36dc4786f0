/*
** server.c: named servers.  fed_server(name, store, dsn [, options])
** records a server in main.fed_servers so that the file remembers it;
** nothing here touches the network until a statement needs the server,
** and then one connection per server per SQLite connection is kept.
** A DSN or option that carries a password is refused: secrets come from
** the environment (password_env=VAR) or the store's own files.
*/
#include "fedInt.h"
#include <errno.h>
#include <poll.h>
#include <time.h>

static const char *const azServerCore[] = { 0 };

static void serverFree(FedServer *p){
  if( p==0 ) return;
  if( p->pConn && p->pStore ) p->pStore->xDisconnect(p->pConn);
  sqlite3_free(p->zName);
  sqlite3_free(p->zDsn);
  fedConfigFree(p->pOpt);
  sqlite3_free(p);
}

void fedServerDisconnectAll(FedContext *pCtx){
  while( pCtx->pServer ){
    FedServer *p = pCtx->pServer;
    pCtx->pServer = p->pNext;
    serverFree(p);
  }
}

/* The option names fed_server() accepts for a store: the store's own and
** the cache's (cache.c), in azBuf (room for 48). */
#define N_SERVER_OPT 48
static const char *const *serverOptions(const FedStore *pStore,
                                        const char **azBuf){
  const char *const *azStore = pStore->azServerOpt ? pStore->azServerOpt
                                                   : azServerCore;
  int i, n = 0;
  for(i=0; azStore[i] && n<N_SERVER_OPT-10; i++) azBuf[n++] = azStore[i];
  for(i=0; fedCacheOptions[i]; i++) azBuf[n++] = fedCacheOptions[i];
  azBuf[n] = 0;
  return azBuf;
}

/* Build a FedServer (not linked).  Errors name the store. */
static int serverNew(
  const char *zName, const char *zStore, const char *zDsn,
  const char *zOptions, FedServer **pp, char **pzErr
){
  const FedStore *pStore = fedStoreFind(zStore);
  const char *azOpt[N_SERVER_OPT+1];
  FedServer *p;
  int rc;
  *pp = 0;
  if( pStore==0 ){
    fedSetError(pzErr, "federate: unknown store \"%s\" for server \"%s\"",
                zStore, zName);
    return SQLITE_ERROR;
  }
  if( fedHasSecret(zDsn) || fedHasSecret(zOptions) ){
    fedSetError(pzErr, "%s: server \"%s\": a password may not appear in the"
        " connection string or options, because they are stored in the"
        " database file; name an environment variable with"
        " password_env=VAR, or use the store's own password file"
        " (see docs/security.md)", pStore->zName, zName);
    return SQLITE_ERROR;
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pStore = pStore;
  p->zName = fedStrdup(zName, -1);
  p->zDsn = fedStrdup(zDsn, -1);
  if( p->zName==0 || p->zDsn==0 ){
    serverFree(p);
    return SQLITE_NOMEM;
  }
  rc = fedConfigParseString(pStore->zName, zOptions,
                            serverOptions(pStore, azOpt), &p->pOpt, pzErr);
  if( rc==SQLITE_OK ) rc = fedCacheCheckServer(p, pzErr);
  if( rc==SQLITE_OK && pStore->xServerCheck ){
    rc = pStore->xServerCheck(p, pzErr);
  }
  if( rc!=SQLITE_OK ){
    serverFree(p);
    return rc;
  }
  *pp = p;
  return SQLITE_OK;
}

int fedServerFind(
  FedContext *pCtx, const char *zName, FedServer **pp, char **pzErr
){
  FedServer *p;
  sqlite3_stmt *pStmt = 0;
  int rc;
  for(p=pCtx->pServer; p; p=p->pNext){
    if( sqlite3_stricmp(p->zName, zName)==0 ){
      *pp = p;
      return SQLITE_OK;
    }
  }
  rc = sqlite3_prepare_v2(pCtx->db,
      "SELECT store, dsn, options FROM main.fed_servers WHERE name=?1", -1,
      &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      rc = serverNew(zName, (const char*)sqlite3_column_text(pStmt, 0),
                     (const char*)sqlite3_column_text(pStmt, 1),
                     (const char*)sqlite3_column_text(pStmt, 2), &p, pzErr);
      if( rc==SQLITE_OK ){
        p->pCtx = pCtx;
        p->pNext = pCtx->pServer;
        pCtx->pServer = p;
        *pp = p;
      }
      sqlite3_finalize(pStmt);
      return rc;
    }
    rc = sqlite3_finalize(pStmt);
    if( rc==SQLITE_NOMEM ) return rc;
  }else if( rc==SQLITE_NOMEM ){
    return rc;
  }
  fedSetError(pzErr, "federate: no such server \"%s\" (register it with"
              " fed_server(name, store, dsn))", zName);
  return SQLITE_ERROR;
}

int fedServerConn(
  FedContext *pCtx, FedServer *pServer, FedConn **ppConn, char **pzErr
){
  FedConn *pConn = pServer->pConn;
  int rc;
  if( pConn ){
    if( pConn->bLost || !pServer->pStore->xIsAlive(pConn) ){
      if( pConn->bTxn ){
        pConn->bLost = 1;
        fedSetError(pzErr, "%s: connection to server \"%s\" was lost inside"
            " a transaction; its remote changes were rolled back: ROLLBACK"
            " and retry the transaction", pServer->pStore->zName,
            pServer->zName);
        return SQLITE_ERROR;
      }
      pServer->pStore->xDisconnect(pConn);
      pServer->pConn = 0;
      pServer->nLost++;
    }else{
      *ppConn = pConn;
      return SQLITE_OK;
    }
  }
  rc = pServer->pStore->xConnect(pServer, &pConn, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pConn->pServer = pServer;
  pServer->pConn = pConn;
  *ppConn = pConn;
  if( pServer->pStore->xListPrepared ){
    /* Finish what a crashed process left prepared (txlog.c); what cannot
    ** be finished now stays in fed_in_doubt. */
    char *zErr = 0;
    fedTxlogRecoverServer(pCtx, pServer, pConn, &zErr);
    sqlite3_free(zErr);
  }
  return SQLITE_OK;
}

/*
** fed_server(name, store, dsn [, options]): register or replace a server
** in main.fed_servers and in this connection.  Returns the name.
*/
static void serverFunc(
  sqlite3_context *ctx, int argc, sqlite3_value **argv
){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  sqlite3 *db = pCtx->db;
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  const char *zStore = (const char*)sqlite3_value_text(argv[1]);
  const char *zDsn = (const char*)sqlite3_value_text(argv[2]);
  const char *zOpt = argc>3 ? (const char*)sqlite3_value_text(argv[3]) : 0;
  FedServer *pNew = 0;
  FedServer **pp;
  char *zErr = 0;
  sqlite3_stmt *pStmt = 0;
  int rc;

  if( zName==0 || zStore==0 || zDsn==0 || zName[0]==0 ){
    sqlite3_result_error(ctx, "fed_server: name, store and dsn must not be"
                         " NULL or empty", -1);
    return;
  }
  rc = serverNew(zName, zStore, zDsn, zOpt, &pNew, &zErr);
  if( rc!=SQLITE_OK ) goto cleanup;

  /* A server in use by an open transaction cannot be replaced. */
  for(pp=&pCtx->pServer; *pp; pp=&(*pp)->pNext){
    if( sqlite3_stricmp((*pp)->zName, zName)==0 ){
      if( (*pp)->pConn && (*pp)->pConn->bTxn ){
        fedSetError(&zErr, "fed_server: server \"%s\" is in use by an open"
                    " transaction", zName);
        rc = SQLITE_ERROR;
        goto cleanup;
      }
      break;
    }
  }

  rc = sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS main.fed_servers("
      "name TEXT PRIMARY KEY COLLATE NOCASE, store TEXT NOT NULL,"
      " dsn TEXT NOT NULL, options TEXT)", 0, 0, 0);
  if( rc==SQLITE_OK ){
    /* The coordinator's tables, so that a commit never changes the
    ** schema (txlog.c). */
    char *zPrefix = 0;
    rc = fedTxlogPrefix(pCtx, 1, &zPrefix);
    sqlite3_free(zPrefix);
  }
  if( rc==SQLITE_OK ) rc = fedSagaSchema(db);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO main.fed_servers"
        "(name, store, dsn, options) VALUES(?1, ?2, ?3, ?4)", -1, &pStmt, 0);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, pNew->pStore->zName, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 3, zDsn, -1, SQLITE_STATIC);
    if( zOpt ) sqlite3_bind_text(pStmt, 4, zOpt, -1, SQLITE_STATIC);
    sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    fedSetError(&zErr, "fed_server: cannot record server \"%s\": %s", zName,
                sqlite3_errmsg(db));
    goto cleanup;
  }

  /* The new definition replaces the old one in place: tables keep their
  ** pointer to the FedServer.  The old connection closes. */
  pNew->pCtx = pCtx;
  if( *pp ){
    FedServer *pOld = *pp;
    FedServer tmp;
    if( pOld->pConn ){
      pOld->pStore->xDisconnect(pOld->pConn);
      pOld->pConn = 0;
    }
    tmp = *pOld;
    pOld->pStore = pNew->pStore;
    pOld->zName = pNew->zName;
    pOld->zDsn = pNew->zDsn;
    pOld->pOpt = pNew->pOpt;
    pNew->zName = tmp.zName;
    pNew->zDsn = tmp.zDsn;
    pNew->pOpt = tmp.pOpt;
    pNew->pConn = 0;
    serverFree(pNew);
  }else{
    pNew->pNext = pCtx->pServer;
    pCtx->pServer = pNew;
  }
  pNew = 0;
  sqlite3_result_text(ctx, zName, -1, SQLITE_TRANSIENT);

cleanup:
  serverFree(pNew);
  if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc!=SQLITE_OK ){
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
  }
  sqlite3_free(zErr);
}

int fedServerRegisterFunctions(sqlite3 *db, FedContext *pCtx){
  int rc;
  int fl = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  rc = sqlite3_create_function(db, "fed_server", 3, fl, pCtx, serverFunc,0,0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_server", 4, fl, pCtx, serverFunc,
                                 0, 0);
  }
  return rc;
}

/**************************************************************************
** Waiting for a store.  SQLite has no callback for sqlite3_interrupt(),
** and 3.40 has no sqlite3_is_interrupted(); but while a statement runs,
** preparing text that holds only a space fails with SQLITE_INTERRUPT once
** the statement was interrupted (the tokenizer checks the flag at each
** space, and only a parse outside any statement clears it).  That costs
** about a microsecond and no allocation, so a store waits for its socket
** in slices of FED_WAIT_SLICE_MS and asks in between.
*/

/* Milliseconds on a clock that never goes back. */
i64 fedNowMs(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (i64)t.tv_sec*1000 + t.tv_nsec/1000000;
}

/* 1 if the statement running on db was interrupted. */
int fedInterrupted(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( db==0 ) return 0;
  rc = sqlite3_prepare_v2(db, " ", -1, &pStmt, 0);
  sqlite3_finalize(pStmt);
  return rc==SQLITE_INTERRUPT;
}

/*
** Wait until fd can be read (or written, bWrite==1; either, bWrite==2),
** the deadline passes
** (fedNowMs() time; 0 for none), or the statement on db is interrupted.
** Returns FED_WAIT_READY (also when poll() itself fails: the caller's
** read or write then reports the socket's error), FED_WAIT_TIMEOUT or
** FED_WAIT_INTERRUPT.
*/
int fedWaitFd(sqlite3 *db, int fd, int bWrite, i64 iDeadline){
  for(;;){
    struct pollfd pfd;
    int ms = FED_WAIT_SLICE_MS, n;
    if( iDeadline>0 ){
      i64 nLeft = iDeadline - fedNowMs();
      if( nLeft<=0 ) return FED_WAIT_TIMEOUT;
      if( nLeft<ms ) ms = (int)nLeft;
    }
    pfd.fd = fd;
    pfd.events = bWrite==2 ? (POLLIN|POLLOUT) : bWrite ? POLLOUT : POLLIN;
    pfd.revents = 0;
    n = poll(&pfd, 1, ms);
    if( n!=0 && !(n<0 && errno==EINTR) ) return FED_WAIT_READY;
    if( fedInterrupted(db) ) return FED_WAIT_INTERRUPT;
  }
}
