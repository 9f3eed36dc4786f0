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

/* Register a subsystem's hooks (FedServerHook).  pHook is not copied. */
int fedServerAddHook(FedContext *pCtx, const FedServerHook *pHook){
  if( pCtx->nServerHook>=FED_MAX_SERVER_HOOK ) return SQLITE_INTERNAL;
  pCtx->apServerHook[pCtx->nServerHook++] = pHook;
  return SQLITE_OK;
}

/* The option names fed_server() accepts for a store: the store's own and
** the hooks' (the cache's), in azBuf (room for 48). */
#define N_SERVER_OPT 48
static const char *const *serverOptions(FedContext *pCtx,
                                        const FedStore *pStore,
                                        const char **azBuf){
  const char *const *azStore = pStore->azServerOpt ? pStore->azServerOpt
                                                   : azServerCore;
  int i, k, n = 0;
  for(i=0; azStore[i] && n<N_SERVER_OPT-10; i++) azBuf[n++] = azStore[i];
  for(k=0; k<pCtx->nServerHook; k++){
    const char *const *azOpt = pCtx->apServerHook[k]->azOpt;
    for(i=0; azOpt && azOpt[i] && n<N_SERVER_OPT; i++) azBuf[n++] = azOpt[i];
  }
  azBuf[n] = 0;
  return azBuf;
}

/* Build a FedServer (not linked).  Errors name the store. */
static int serverNew(
  FedContext *pCtx, const char *zName, const char *zStore, const char *zDsn,
  const char *zOptions, FedServer **pp, char **pzErr
){
  const FedStore *pStore = fedStoreFind(zStore);
  const char *azOpt[N_SERVER_OPT+1];
  FedServer *p;
  int rc, k;
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
                            serverOptions(pCtx, pStore, azOpt), &p->pOpt,
                            pzErr);
  for(k=0; rc==SQLITE_OK && k<pCtx->nServerHook; k++){
    const FedServerHook *pHook = pCtx->apServerHook[k];
    if( pHook->xCheck ) rc = pHook->xCheck(p, pzErr);
  }
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

/**************************************************************************
** What an untrusted database file may not do (docs/security.md).
**
** SQLite keeps direct-only functions out of views, triggers, DEFAULTs and
** indexes, but 3.40 still runs one named in a CHECK constraint, on every
** write to the table and on PRAGMA integrity_check / quick_check.  And a
** trigger on one of federate's own tables runs whatever SQL the file
** holds inside federate's writes (fed_server(), CREATE VIRTUAL TABLE, the
** commit log).  Neither has a legitimate use, so federate refuses to act
** at all while the schema holds one: every function with a side effect,
** and every first connection to a server, checks first.
*/
static const char *const azFedFunc[] = {
  "fed_server", "fed_exec", "fed_query", "fed_import", "fed_recover",
  "fed_config", "fed_saga", "fed_cache_clear", "fed_cache_watch", 0
};
static const char *const azFedTable[] = {
  "fed_servers", "fed_tables", "fed_txlog", "fed_coordinator",
  "fed_sagas", "fed_saga_steps", 0
};

static int isNameChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || (c&0x80)!=0;
}

/* The federate function that the SQL text z names as a whole word, in any
** case and whatever quotes surround it ("fed_exec"(...) is a call too),
** or NULL.  A column of that name counts as well: harmless, and rare. */
static const char *schemaFedCall(const char *z){
  const char *p;
  int i, n;
  for(p=z; *p; p++){
    if( (p[0]=='f' || p[0]=='F') && (p==z || !isNameChar(p[-1]))
     && sqlite3_strnicmp(p, "fed_", 4)==0 ){
      for(n=0; isNameChar(p[n]); n++){}
      for(i=0; azFedFunc[i]; i++){
        if( (int)strlen(azFedFunc[i])==n
         && sqlite3_strnicmp(p, azFedFunc[i], n)==0 ){
          return azFedFunc[i];
        }
      }
      p += n-1;
    }
  }
  return 0;
}

static int isFedTable(const char *zName){
  int i;
  for(i=0; zName && azFedTable[i]; i++){
    if( sqlite3_stricmp(zName, azFedTable[i])==0 ) return 1;
  }
  return 0;
}

/* Check one schema; see fedSchemaGuard(). */
static int schemaGuardOne(
  sqlite3 *db, const char *zDb, const char *zWho, char **pzErr
){
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  zSql = sqlite3_mprintf("SELECT type, name, tbl_name, sql FROM \"%w\"."
      "sqlite_schema WHERE type IN ('table','trigger') AND sql IS NOT NULL",
      zDb);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zType = (const char*)sqlite3_column_text(pStmt, 0);
    const char *zName = (const char*)sqlite3_column_text(pStmt, 1);
    const char *zTbl = (const char*)sqlite3_column_text(pStmt, 2);
    const char *zDef = (const char*)sqlite3_column_text(pStmt, 3);
    const char *zFunc;
    if( zType==0 || zName==0 || zTbl==0 || zDef==0 ){
      rc = SQLITE_NOMEM;
    }else if( zType[0]=='t' && zType[1]=='r' ){
      if( isFedTable(zTbl) ){
        fedSetError(pzErr, "%s: refused: trigger \"%s\".\"%s\" on"
            " federate's table %s would run inside federate's own writes;"
            " drop it, or do not use federate with a database file you do"
            " not trust (docs/security.md)", zWho, zDb, zName, zTbl);
        rc = SQLITE_ERROR;
      }
    }else if( sqlite3_strnicmp(zDef, "CREATE VIRTUAL", 14)!=0
           && (zFunc = schemaFedCall(zDef))!=0 ){
      fedSetError(pzErr, "%s: refused: table \"%s\".\"%s\" names %s() in"
          " its definition, where SQLite would run it on writes and on"
          " PRAGMA integrity_check; drop it, or do not use federate with a"
          " database file you do not trust (docs/security.md)", zWho, zDb,
          zName, zFunc);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_finalize(pStmt);
  }else{
    sqlite3_finalize(pStmt);
  }
  return rc;
}

int fedSchemaGuard(FedContext *pCtx, const char *zWho, char **pzErr){
  sqlite3_stmt *pList = 0;
  int rc;
  rc = sqlite3_prepare_v2(pCtx->db, "SELECT name FROM pragma_database_list",
                          -1, &pList, 0);
  while( rc==SQLITE_OK && sqlite3_step(pList)==SQLITE_ROW ){
    const char *zDb = (const char*)sqlite3_column_text(pList, 0);
    rc = zDb ? schemaGuardOne(pCtx->db, zDb, zWho, pzErr) : SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_finalize(pList);
  }else{
    sqlite3_finalize(pList);
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ){
    fedSetError(pzErr, "%s: cannot read the schema: %s", zWho,
                sqlite3_errmsg(pCtx->db));
    rc = SQLITE_ERROR;
  }
  return rc;
}

/*
** The definitions (store, dsn, options) that fed_server() registered in
** this process, exactly as written to fed_servers.  A definition read
** back from a file is trusted with password_env= only if it is one of
** these: a file can then neither pick the variable nor send it to another
** host.  Static storage (no heap: it lives as long as the process), the
** oldest entries dropped when full; entries are "store\x1fdsn\x1foptions"
** separated by NULs.
*/
#define FED_TRUST_BYTES 16384
static char aTrust[FED_TRUST_BYTES];
static int nTrust = 0;

static char *trustKey(const char *zStore, const char *zDsn, const char *zOpt){
  return sqlite3_mprintf("%s\x1f%s\x1f%s", zStore, zDsn, zOpt ? zOpt : "");
}

static int trustFind(const char *zKey){
  int i = 0;
  while( i<nTrust ){
    if( strcmp(&aTrust[i], zKey)==0 ) return 1;
    i += (int)strlen(&aTrust[i]) + 1;
  }
  return 0;
}

/* Remember a definition fed_server() registered; SQLITE_NOMEM or OK. */
static int trustAdd(const char *zStore, const char *zDsn, const char *zOpt){
  sqlite3_mutex *pMutex = sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_APP1);
  char *zKey = trustKey(zStore, zDsn, zOpt);
  int n;
  if( zKey==0 ) return SQLITE_NOMEM;
  n = (int)strlen(zKey) + 1;
  sqlite3_mutex_enter(pMutex);
  if( n<=FED_TRUST_BYTES && !trustFind(zKey) ){
    while( nTrust+n>FED_TRUST_BYTES ){
      int nOld = (int)strlen(aTrust) + 1;
      memmove(aTrust, &aTrust[nOld], nTrust-nOld);
      nTrust -= nOld;
    }
    memcpy(&aTrust[nTrust], zKey, n);
    nTrust += n;
  }
  sqlite3_mutex_leave(pMutex);
  sqlite3_free(zKey);
  return SQLITE_OK;
}

/* True if fed_server() registered this definition in this process. */
static int trustCheck(const char *zStore, const char *zDsn, const char *zOpt,
                      int *pbTrust){
  sqlite3_mutex *pMutex = sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_APP1);
  char *zKey = trustKey(zStore, zDsn, zOpt);
  if( zKey==0 ) return SQLITE_NOMEM;
  sqlite3_mutex_enter(pMutex);
  *pbTrust = trustFind(zKey);
  sqlite3_mutex_leave(pMutex);
  sqlite3_free(zKey);
  return SQLITE_OK;
}

int fedServerPasswordEnv(FedServer *p, const char **pzVar, char **pzErr){
  const char *zVar = fedConfigGet(p->pOpt, "password_env");
  *pzVar = 0;
  if( zVar && !p->bOwnDef ){
    /* The definition came from the file alone.  Honouring it would let a
    ** file pick any variable of this process (a cloud key, PGPASSWORD)
    ** and send it to a host of its choosing. */
    fedSetError(pzErr, "%s: server \"%s\": password_env is honoured only"
        " for a server definition given to fed_server() in this process,"
        " not one read from the database file alone; call fed_server()"
        " with it first (docs/security.md)", p->pStore->zName, p->zName);
    return SQLITE_ERROR;
  }
  *pzVar = zVar;
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
  /* (No fedSchemaGuard() here: reading a definition sends nothing, and
  ** this runs in xConnect too, where an error would only turn the cache
  ** off.  fedServerConn() checks before the first connection.) */
  rc = sqlite3_prepare_v2(pCtx->db,
      "SELECT store, dsn, options FROM main.fed_servers WHERE name=?1", -1,
      &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(pStmt);
    if( rc==SQLITE_ROW ){
      /* The row comes from the file, which fed_server() did not
      ** necessarily write: a NULL or non-text store or dsn is a damaged
      ** record, not a lack of memory. */
      int iBad = -1;
      if( sqlite3_column_type(pStmt, 0)!=SQLITE_TEXT ) iBad = 0;
      else if( sqlite3_column_type(pStmt, 1)!=SQLITE_TEXT ) iBad = 1;
      else if( sqlite3_column_type(pStmt, 2)!=SQLITE_TEXT
            && sqlite3_column_type(pStmt, 2)!=SQLITE_NULL ) iBad = 2;
      if( iBad>=0 ){
        fedSetError(pzErr, "federate: server \"%s\" in fed_servers has"
            " no valid %s (NULL or not text); register it again with"
            " fed_server()", zName, iBad==0 ? "store" : iBad==1 ? "dsn"
            : "options");
        sqlite3_finalize(pStmt);
        return SQLITE_ERROR;
      }
      rc = serverNew(pCtx, zName,
                     (const char*)sqlite3_column_text(pStmt, 0),
                     (const char*)sqlite3_column_text(pStmt, 1),
                     (const char*)sqlite3_column_text(pStmt, 2), &p, pzErr);
      if( rc==SQLITE_OK ){
        rc = trustCheck(p->pStore->zName, p->zDsn,
                        (const char*)sqlite3_column_text(pStmt, 2),
                        &p->bOwnDef);
        if( rc!=SQLITE_OK ){
          serverFree(p);
          sqlite3_finalize(pStmt);
          return rc;
        }

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
  int rc, k;
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
  rc = fedSchemaGuard(pCtx, pServer->pStore->zName, pzErr);
  if( rc==SQLITE_OK ) rc = pServer->pStore->xConnect(pServer, &pConn, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pConn->pServer = pServer;
  pServer->pConn = pConn;
  *ppConn = pConn;
  /* (The commit log finishes here what a crashed process left prepared.) */
  for(k=0; k<pCtx->nServerHook; k++){
    const FedServerHook *pHook = pCtx->apServerHook[k];
    if( pHook->xConnected ) pHook->xConnected(pCtx, pServer, pConn);
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
  int rc, k;

  if( zName==0 || zStore==0 || zDsn==0 || zName[0]==0 ){
    sqlite3_result_error(ctx, "fed_server: name, store and dsn must not be"
                         " NULL or empty", -1);
    return;
  }
  rc = fedSchemaGuard(pCtx, "fed_server", &zErr);
  if( rc==SQLITE_OK ){
    rc = serverNew(pCtx, zName, zStore, zDsn, zOpt, &pNew, &zErr);
  }
  if( rc!=SQLITE_OK ) goto cleanup;
  pNew->bOwnDef = 1;

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

  /* The application's own definition: trusted with password_env= from
  ** now on in this process (first, so that nothing fails after the row is
  ** written). */
  rc = trustAdd(pNew->pStore->zName, zDsn, zOpt);
  if( rc!=SQLITE_OK ) goto cleanup;

  rc = sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS main.fed_servers("
      "name TEXT PRIMARY KEY COLLATE NOCASE, store TEXT NOT NULL,"
      " dsn TEXT NOT NULL, options TEXT)", 0, 0, 0);
  /* The subsystems' tables (the coordinator's, the sagas'), so that a
  ** commit never changes the schema. */
  for(k=0; rc==SQLITE_OK && k<pCtx->nServerHook; k++){
    const FedServerHook *pHook = pCtx->apServerHook[k];
    if( pHook->xSchema ) rc = pHook->xSchema(pCtx, &zErr);
  }
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
    pOld->bOwnDef = 1;
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
  if( rc!=SQLITE_OK ) fedResultError(ctx, rc, zErr);
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
