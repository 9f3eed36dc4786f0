/*
** txlog.c: the transaction coordinator's durable state, and recovery.
**
**   main.fed_coordinator(id)        one random id per database file; every
**                                   global transaction id starts with
**                                   "fed_<id>_" (format below, "Global
**                                   ids"), and participant k prepares as
**                                   "<gid>_<k>", so recovery never touches
**                                   another coordinator's transactions
**   main.fed_txlog(gid, servers, created)
**                                   one row per transaction committed by
**                                   two-phase commit, written inside the
**                                   SQLite transaction itself: it is the
**                                   decision (presumed abort: no row, no
**                                   commit)
**
**   SELECT fed_recover();           resolve every prepared transaction of
**                                   this file on every server (asking the
**                                   last resource for its commit marker
**                                   when there is no decision row), remove
**                                   markers no longer needed, compensate
**                                   the sagas left unfinished and the undo
**                                   images of transactions that did not
**                                   commit; returns how many it resolved
**   SELECT * FROM fed_in_doubt;     what could not be resolved yet (state
**                                   commit, rollback, unknown, compensate
**                                   or conflict)
**   SELECT fed_config('atomic', 'require' | 'allow');
**
** Both tables are created by fed_server(), so that commits never change
** the schema.
*/
#include "fedInt.h"
#include <stdlib.h>
#include <time.h>

/* Seconds a prepared transaction must have existed before recovery at
** connect time resolves it: a younger one may belong to another process
** that is committing now from the same file.  fed_recover() waits for
** none. */

int fedTxlogPrefix(FedContext *pCtx, int bCreate, char **pzPrefix){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  int rc;
  *pzPrefix = 0;
  if( bCreate ){
    rc = sqlite3_exec(db,
        "CREATE TABLE IF NOT EXISTS main.fed_coordinator(id TEXT NOT NULL);"
        "INSERT INTO main.fed_coordinator SELECT lower(hex(randomblob(8)))"
        " WHERE NOT EXISTS (SELECT 1 FROM main.fed_coordinator);"
        "CREATE TABLE IF NOT EXISTS main.fed_txlog(gid TEXT PRIMARY KEY,"
        " servers TEXT NOT NULL, created INTEGER NOT NULL);", 0, 0, 0);
    if( rc!=SQLITE_OK ) return rc;
  }
  rc = sqlite3_prepare_v2(db, "SELECT id FROM main.fed_coordinator", -1,
                          &pStmt, 0);
  if( rc!=SQLITE_OK ){
    /* No table: this file never registered a server. */
    return rc==SQLITE_NOMEM ? rc : SQLITE_OK;
  }
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *pzPrefix = sqlite3_mprintf("fed_%s_", sqlite3_column_text(pStmt, 0));
    if( *pzPrefix==0 ) rc = SQLITE_NOMEM;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = sqlite3_errcode(db);
  }
  return rc;
}

int fedTxlogDecide(
  FedContext *pCtx, const char *zGid, const char *zServers, char **pzErr
){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  int rc, i;
  /* Rows of transactions resolved everywhere go in the same write.  They
  ** are forgotten only when it commits (fedTxlogDoneCommitted): if it
  ** rolls back, so do the deletes, and the next transaction tries again
  ** (meanwhile fed_in_doubt still knows they are done). */
  for(i=pCtx->nDoneDeleting; i<pCtx->nDone; i++){
    char *zSql = sqlite3_mprintf("DELETE FROM main.fed_txlog WHERE gid=%Q",
                                 pCtx->azDone[i]);
    if( zSql ){
      sqlite3_exec(db, zSql, 0, 0, 0);
      sqlite3_free(zSql);
    }
  }
  pCtx->nDoneDeleting = pCtx->nDone;
  rc = sqlite3_prepare_v2(db, "INSERT INTO main.fed_txlog(gid, servers,"
      " created) VALUES(?1, ?2, ?3)", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zGid, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zServers, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 3, (i64)time(0));
    sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "federate: cannot write the commit decision to"
                " main.fed_txlog: %s", sqlite3_errmsg(db));
  }
  return rc;
}

int fedTxlogHasDecision(FedContext *pCtx, const char *zGid){
  sqlite3_stmt *pStmt = 0;
  /* A participant's id is "<gid>_<n>": the decision is under <gid>. */
  const char *zEnd = strrchr(zGid, '_');
  int nGid = zEnd ? (int)(zEnd - zGid) : (int)strlen(zGid);
  int rc = sqlite3_prepare_v2(pCtx->db,
      "SELECT 1 FROM main.fed_txlog WHERE gid=?1", -1, &pStmt, 0);
  int bFound;
  if( rc!=SQLITE_OK ) return rc==SQLITE_NOMEM ? -1 : 0;
  sqlite3_bind_text(pStmt, 1, zGid, nGid, SQLITE_STATIC);
  bFound = sqlite3_step(pStmt)==SQLITE_ROW;
  rc = sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? bFound : -1;
}

void fedTxlogDoneCommitted(FedContext *pCtx, int bCommitted){
  int i, n = pCtx->nDoneDeleting;
  pCtx->nDoneDeleting = 0;
  if( !bCommitted || n==0 ) return;
  for(i=0; i<n; i++) sqlite3_free(pCtx->azDone[i]);
  memmove(pCtx->azDone, &pCtx->azDone[n], sizeof(char*)*(pCtx->nDone-n));
  pCtx->nDone -= n;
}

void fedTxlogDoubt(
  FedContext *pCtx, const char *zGid, const char *zServer, int bCommit
){
  FedDoubt *p;
  for(p=pCtx->pDoubt; p; p=p->pNext){
    if( strcmp(p->zGid, zGid)==0 && strcmp(p->zServer, zServer)==0 ){
      p->bCommit = bCommit;
      return;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return;
  p->zGid = fedStrdup(zGid, -1);
  p->zServer = fedStrdup(zServer, -1);
  if( p->zGid==0 || p->zServer==0 ){
    sqlite3_free(p->zGid);
    sqlite3_free(p->zServer);
    sqlite3_free(p);
    return;
  }
  p->bCommit = bCommit;
  p->iTime = (i64)time(0);
  p->pNext = pCtx->pDoubt;
  pCtx->pDoubt = p;
}

void fedTxlogForgetDoubt(
  FedContext *pCtx, const char *zGid, const char *zServer
){
  FedDoubt **pp;
  for(pp=&pCtx->pDoubt; *pp; pp=&(*pp)->pNext){
    FedDoubt *p = *pp;
    if( strcmp(p->zGid, zGid)==0 && strcmp(p->zServer, zServer)==0 ){
      *pp = p->pNext;
      sqlite3_free(p->zGid);
      sqlite3_free(p->zServer);
      sqlite3_free(p);
      return;
    }
  }
}

void fedTxlogFree(FedContext *pCtx){
  int i;
  while( pCtx->pDoubt ){
    FedDoubt *p = pCtx->pDoubt;
    fedTxlogForgetDoubt(pCtx, p->zGid, p->zServer);
  }
  for(i=0; i<pCtx->nDone; i++) sqlite3_free(pCtx->azDone[i]);
  sqlite3_free(pCtx->azDone);
  pCtx->azDone = 0;
  pCtx->nDone = 0;
  pCtx->nDoneDeleting = 0;
  sqlite3_free(pCtx->zGid);
  pCtx->zGid = 0;
}

/*
** Global ids.  Every id a participant sees is at most FED_GID_MAX (64)
** bytes, the limit of a MariaDB XA gtrid (PostgreSQL allows 200):
**
**   fed_<coordinator>_<random>             no last resource with a marker
**   fed_<coordinator>_<random>-<tag>       its last resource keeps markers
**   <gid>_<k>                              participant k's prepared id
**
** <coordinator> is main.fed_coordinator.id (16 hex digits), <random> 16
** hex digits, <tag> 8 hex digits naming the last resource: the FNV-1a
** hash (32 bits) of its server name in ASCII lower case (names are
** COLLATE NOCASE).  So 46 bytes, and 48 to 52 with "_<k>".
**
** A prepared id without a decision row is then not presumed aborted: the
** marker decides (present: the last resource committed, so commit;
** absent: roll back).  Recovery needs the last resource's name before any
** participant prepares and before the decision row is durable (which is
** after the last resource committed), and an id cannot hold a name of 64
** bytes.  So the tag names it through main.fed_servers, which is durable
** since fed_server(): the servers whose names hash to the tag are asked,
** normally exactly one.  Asking several (names that collide) is still
** exact: the random part makes the gid unique, so only the last resource
** can hold its marker, and an absent marker is fenced on each.
**
** Files written before the tag carry the name in hex instead,
** "fed_<coordinator>_<random>.<hex of the name>"; recovery still reads it.
*/

/* The tag of server name zName in a global id (see above). */
static unsigned int txlogServerTag(const char *zName){
  unsigned int h = 2166136261u;
  const unsigned char *z = (const unsigned char*)zName;
  for(; *z; z++){
    unsigned int c = *z;
    if( c>='A' && c<='Z' ) c += 'a' - 'A';
    h = (h ^ c) * 16777619u;
  }
  return h;
}

int fedTxlogNewGid(
  FedContext *pCtx, const char *zLast, int nPart, char **pzGid, char **pzErr
){
  char *zPrefix = 0, *zGid = 0;
  unsigned char a[8];
  int rc;
  *pzGid = 0;
  rc = fedTxlogPrefix(pCtx, 1, &zPrefix);
  if( rc!=SQLITE_OK || zPrefix==0 ){
    fedSetError(pzErr, "federate: cannot read main.fed_coordinator: %s",
                sqlite3_errmsg(pCtx->db));
    return rc==SQLITE_OK ? SQLITE_ERROR : rc;
  }
  sqlite3_randomness(sizeof(a), a);
  zGid = sqlite3_mprintf("%s%02x%02x%02x%02x%02x%02x%02x%02x", zPrefix,
      a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
  if( zGid && zLast ){
    char *z = sqlite3_mprintf("%s-%08x", zGid, txlogServerTag(zLast));
    sqlite3_free(zGid);
    zGid = z;
  }
  sqlite3_free(zPrefix);
  if( zGid==0 ) return SQLITE_NOMEM;
  /* Only an edited fed_coordinator makes it longer ("_<k>" counted). */
  {
    char zPart[24];
    sqlite3_snprintf(sizeof(zPart), zPart, "_%d", nPart);
    if( strlen(zGid) + strlen(zPart) > FED_GID_MAX ){
      fedSetError(pzErr, "federate: global id \"%s%s\" is longer than %d"
          " bytes (main.fed_coordinator.id is not the one federate wrote);"
          " nothing was committed", zGid, zPart, FED_GID_MAX);
      sqlite3_free(zGid);
      return SQLITE_ERROR;
    }
  }
  *pzGid = zGid;
  return SQLITE_OK;
}

/* The global id of a participant's id (up to its last '_'), as a new
** string, or NULL on OOM. */
static char *txlogGlobalId(const char *zPart){
  const char *zEnd = strrchr(zPart, '_');
  return fedStrdup(zPart, zEnd ? (int)(zEnd - zPart) : -1);
}

/* 1 if global id zGid has a last resource that keeps markers: a tag
** ("-<8 hex>") or, written before the tag, a name in hex (".<hex>"). */
static int txlogHasLastResource(const char *zGid){
  return strchr(zGid, '-')!=0 || strchr(zGid, '.')!=0;
}

/* The name in hex of an old global id ("...<hex>" after '.'), or NULL
** (none, or OOM: *pRc).  sqlite3_malloc'd. */
static char *txlogHexName(const char *zGid, int *pRc){
  const char *zHex = strchr(zGid, '.');
  char *zName;
  int n, i;
  if( zHex==0 ) return 0;
  zHex++;
  n = (int)strspn(zHex, "0123456789abcdef");
  if( n==0 || n%2 ) return 0;
  zName = sqlite3_malloc64(n/2+1);
  if( zName==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  for(i=0; i<n/2; i++){
    int h = zHex[2*i], l = zHex[2*i+1];
    h = h<='9' ? h-'0' : h-'a'+10;
    l = l<='9' ? l-'0' : l-'a'+10;
    zName[i] = (char)(h*16 + l);
  }
  zName[n/2] = 0;
  return zName;
}

/* Ask last resource zName whether the marker of zGid exists: 1 yes, 0 no,
** -1 it could not be asked (*pzErr says why). */
static int txlogAskOne(
  FedContext *pCtx, const char *zName, const char *zGid, char **pzErr
){
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  int bExists = 0;
  int rc = fedServerFind(pCtx, zName, &pServer, pzErr);
  if( rc==SQLITE_OK && pServer->pStore->xMarkerCheck==0 ){
    fedSetError(pzErr, "federate: server \"%s\" (%s) keeps no commit"
                " markers", zName, pServer->pStore->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, pServer, &pConn, pzErr);
  if( rc==SQLITE_OK ){
    rc = pServer->pStore->xMarkerCheck(pConn, zGid, &bExists, pzErr);
  }
  return rc==SQLITE_OK ? bExists : -1;
}

/* Ask the last resource of participant id zPart whether the marker of its
** transaction exists.  Returns 1 if it does (commit), 0 if it does not or
** the id names no last resource (roll back), -1 when it could not be
** asked (*pzErr says why).  With a tag, every server whose name has that
** tag and that keeps markers is asked: one with the marker decides
** commit; absence counts only when all of them answered. */
static int txlogAskMarker(FedContext *pCtx, const char *zPart, char **pzErr){
  char *zGid = txlogGlobalId(zPart);
  const char *zTag = zGid ? strchr(zGid, '-') : 0;
  char *zName = 0;
  int rc = zGid ? SQLITE_OK : SQLITE_NOMEM;
  int bRet = -1;
  if( rc==SQLITE_OK && zTag==0 ){
    zName = txlogHexName(zGid, &rc);
    if( zName ) bRet = txlogAskOne(pCtx, zName, zGid, pzErr);
    else if( rc==SQLITE_OK ) bRet = 0;
  }else if( rc==SQLITE_OK ){
    unsigned int iTag = (unsigned int)strtoul(&zTag[1], 0, 16);
    sqlite3_stmt *pStmt = 0;
    int nAsked = 0, bFailed = 0;
    rc = sqlite3_prepare_v2(pCtx->db, "SELECT name FROM main.fed_servers",
                            -1, &pStmt, 0);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *z = (const char*)sqlite3_column_text(pStmt, 0);
      FedServer *pServer = 0;
      char *zErr = 0;
      int b;
      if( z==0 ){ rc = SQLITE_NOMEM; break; }
      if( txlogServerTag(z)!=iTag ) continue;
      /* A server that keeps no markers is not the last resource. */
      if( fedServerFind(pCtx, z, &pServer, &zErr)==SQLITE_OK
       && pServer->pStore->xMarkerCheck==0 ){
        continue;
      }
      sqlite3_free(zErr);
      zErr = 0;
      b = txlogAskOne(pCtx, z, zGid, &zErr);
      nAsked++;
      if( b>0 ){
        bRet = 1;
        sqlite3_free(zErr);
        break;
      }
      if( b<0 ){
        bFailed = 1;
        sqlite3_free(*pzErr);
        *pzErr = zErr;
      }else{
        sqlite3_free(zErr);
      }
    }
    sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK && bRet<0 ){
      if( nAsked>0 && !bFailed ){
        bRet = 0;
      }else if( nAsked==0 ){
        fedSetError(pzErr, "federate: no server in main.fed_servers is the"
            " last resource of transaction \"%s\"", zGid);
      }
    }
  }
  sqlite3_free(zName);
  sqlite3_free(zGid);
  return rc==SQLITE_OK ? bRet : -1;
}

/* 1 if something of global id zGid is in doubt on some server. */
static int txlogGidInDoubt(FedContext *pCtx, const char *zGid){
  FedDoubt *p;
  size_t n = strlen(zGid);
  for(p=pCtx->pDoubt; p; p=p->pNext){
    if( strncmp(p->zGid, zGid, n)==0 && p->zGid[n]=='_' ) return 1;
  }
  return 0;
}

/* Resolve on one server the prepared transactions of this file older than
** nGrace seconds. */
static int recoverServer(
  FedContext *pCtx, FedServer *pServer, FedConn *pConn, int nGrace,
  char **pzErr
){
  const FedStore *pStore = pServer->pStore;
  char *zPrefix = 0;
  char **azGid = 0;
  int nGid = 0, i, nDone = 0, rc;
  if( pStore->xListPrepared==0 ) return 0;
  rc = fedTxlogPrefix(pCtx, 0, &zPrefix);
  if( rc!=SQLITE_OK || zPrefix==0 ) return rc==SQLITE_OK ? 0 : -1;
  rc = pStore->xListPrepared(pConn, zPrefix, nGrace, &azGid, &nGid, pzErr);
  sqlite3_free(zPrefix);
  if( rc!=SQLITE_OK ) return -1;
  for(i=0; i<nGid; i++){
    int bCommit = fedTxlogHasDecision(pCtx, azGid[i]);
    if( bCommit<0 ){
      rc = SQLITE_NOMEM;
      break;
    }
    if( bCommit==0 && txlogHasLastResource(azGid[i]) ){
      /* No decision row: the last resource's marker decides. */
      bCommit = txlogAskMarker(pCtx, azGid[i], pzErr);
      sqlite3_free(*pzErr);
      *pzErr = 0;
      if( bCommit<0 ){
        fedTxlogDoubt(pCtx, azGid[i], pServer->zName, -1);
        continue;
      }
    }
    if( fedFault(FED_FAULT_RESOLVE, pzErr)==SQLITE_OK
     && pStore->xResolve(pConn, azGid[i], bCommit, pzErr)==SQLITE_OK ){
      fedTxlogForgetDoubt(pCtx, azGid[i], pServer->zName);
      nDone++;
      /* Rows the commit makes visible now: a cached read of this server
      ** made while they were prepared (by any connection sharing the
      ** cache) is stale.  The resolve stands whatever the clear does; a
      ** clear that fails (out of memory) leaves the entries to their
      ** TTL. */
      if( bCommit ) fedCacheInvalidateServer(pCtx, pServer);
    }else{
      fedTxlogDoubt(pCtx, azGid[i], pServer->zName, bCommit);
    }
    sqlite3_free(*pzErr);
    *pzErr = 0;
  }
  for(i=0; i<nGid; i++) sqlite3_free(azGid[i]);
  sqlite3_free(azGid);
  return rc==SQLITE_OK ? nDone : -1;
}

int fedTxlogRecoverServer(
  FedContext *pCtx, FedServer *pServer, FedConn *pConn, char **pzErr
){
  return recoverServer(pCtx, pServer, pConn, pCtx->nRecoverGrace, pzErr);
}

/*
** fed_recover(): resolve every prepared transaction of this database file
** on every server of fed_servers (those unreachable stay in fed_in_doubt),
** then forget the decision rows that nothing needs any more.  Returns the
** number of transactions resolved.
*/
static void recoverFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  char **azName = 0;
  int nName = 0, i, nResolved = 0, bAllReached = 1, rc;
  (void)argc; (void)argv;
  if( pCtx->bInTxn ){
    sqlite3_result_error(ctx, "fed_recover: not inside a transaction", -1);
    return;
  }
  {
    char *zErr = 0;
    rc = fedSchemaGuard(pCtx, "fed_recover", &zErr);
    if( rc!=SQLITE_OK ){
      fedResultError(ctx, rc, zErr);
      sqlite3_free(zErr);
      return;
    }
  }
  rc = sqlite3_prepare_v2(db, "SELECT name FROM main.fed_servers", -1,
                          &pStmt, 0);
  if( rc!=SQLITE_OK ){
    if( rc==SQLITE_NOMEM ) sqlite3_result_error_nomem(ctx);
    else sqlite3_result_int(ctx, 0);
    return;
  }
  while( sqlite3_step(pStmt)==SQLITE_ROW ){
    char **az = sqlite3_realloc64(azName, sizeof(char*)*(nName+1));
    if( az==0 ){ rc = SQLITE_NOMEM; break; }
    azName = az;
    azName[nName] = fedStrdup((const char*)sqlite3_column_text(pStmt, 0), -1);
    if( azName[nName]==0 ){ rc = SQLITE_NOMEM; break; }
    nName++;
  }
  sqlite3_finalize(pStmt);
  for(i=0; rc==SQLITE_OK && i<nName; i++){
    FedServer *pServer = 0;
    FedConn *pConn = 0;
    char *zErr = 0;
    int n;
    if( fedServerFind(pCtx, azName[i], &pServer, &zErr)!=SQLITE_OK
     || pServer->pStore->xListPrepared==0 ){
      sqlite3_free(zErr);
      continue;
    }
    if( fedServerConn(pCtx, pServer, &pConn, &zErr)!=SQLITE_OK ){
      bAllReached = 0;
      sqlite3_free(zErr);
      continue;
    }
    n = recoverServer(pCtx, pServer, pConn, 0, &zErr);
    sqlite3_free(zErr);
    if( n<0 ) bAllReached = 0;
    else nResolved += n;
  }
  /* Markers of last resources: once every two-phase server answered and
  ** nothing of its transaction is in doubt, a marker is not needed. */
  for(i=0; rc==SQLITE_OK && i<nName; i++){
    FedServer *pServer = 0;
    FedConn *pConn = 0;
    char *zErr = 0;
    char *zPrefix = 0;
    char **azGid = 0;
    int nGid = 0, j;
    if( fedServerFind(pCtx, azName[i], &pServer, &zErr)!=SQLITE_OK
     || pServer->pStore->xMarkerList==0 ){
      sqlite3_free(zErr);
      continue;
    }
    if( fedServerConn(pCtx, pServer, &pConn, &zErr)!=SQLITE_OK ){
      sqlite3_free(zErr);
      continue;
    }
    rc = fedTxlogPrefix(pCtx, 0, &zPrefix);
    if( rc!=SQLITE_OK || zPrefix==0 ) break;
    if( pServer->pStore->xMarkerList(pConn, zPrefix, &azGid, &nGid, &zErr)
        ==SQLITE_OK ){
      for(j=0; j<nGid; j++){
        if( bAllReached && !txlogGidInDoubt(pCtx, azGid[j]) ){
          pServer->pStore->xMarkerRemove(pConn, azGid[j], &zErr);
          sqlite3_free(zErr);
          zErr = 0;
        }
        sqlite3_free(azGid[j]);
      }
      sqlite3_free(azGid);
    }
    sqlite3_free(zErr);
    sqlite3_free(zPrefix);
  }
  for(i=0; i<nName; i++) sqlite3_free(azName[i]);
  sqlite3_free(azName);
  if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  /* Sagas a crash left running: their compensations (saga.c). */
  {
    int n = fedSagaRecover(pCtx);
    if( n>0 ) nResolved += n;
  }
  /* Transactions over several servers without two-phase commit that a
  ** crash or a failure left to compensate (undo.c). */
  {
    int n = fedUndoRecover(pCtx);
    if( n>0 ) nResolved += n;
    if( n<0 ) bAllReached = 0;  /* Keep the decision rows */
  }
  /* Every server answered and nothing is in doubt: no decision row is
  ** needed any more. */
  if( bAllReached && pCtx->pDoubt==0 ){
    sqlite3_exec(db, "DELETE FROM main.fed_txlog", 0, 0, 0);
    for(i=0; i<pCtx->nDone; i++) sqlite3_free(pCtx->azDone[i]);
    pCtx->nDone = 0;
    pCtx->nDoneDeleting = 0;
  }
  sqlite3_result_int(ctx, nResolved);
}

/* fed_config(name [, value]): read or set a setting of this connection.
**   atomic   'require' (default): a transaction that writes to several
**            servers must be able to commit on all or none, else COMMIT
**            fails naming them; 'allow': commit them one after the other.
**   saga_recovery  'checked' (default): fed_recover() runs a saga's
**            compensation read from the file only if it is one INSERT,
**            UPDATE or DELETE of a virtual table calling no function
**            (saga.c); 'any': every compensation, for files the
**            application trusts.  Kept in the connection, never in the
**            file, so that a file cannot choose. */
static void configFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  if( zName && sqlite3_stricmp(zName, "recovery_grace")==0 ){
    if( argc>1 ){
      sqlite3_int64 n = sqlite3_value_int64(argv[1]);
      if( sqlite3_value_numeric_type(argv[1])!=SQLITE_INTEGER
       || n<0 || n>86400 ){
        sqlite3_result_error(ctx, "fed_config: recovery_grace is a number"
            " of seconds from 0 to 86400", -1);
        return;
      }
      pCtx->nRecoverGrace = (int)n;
    }
    sqlite3_result_int(ctx, pCtx->nRecoverGrace);
    return;
  }
  if( zName && sqlite3_stricmp(zName, "undo_log")==0 ){
    if( argc>1 ){
      const char *zVal = (const char*)sqlite3_value_text(argv[1]);
      char *zNew;
      if( zVal==0 || zVal[0]==0 ){
        sqlite3_result_error(ctx, "fed_config: undo_log is a file name", -1);
        return;
      }
      if( pCtx->pUndoDb ){
        sqlite3_result_error(ctx, "fed_config: undo_log cannot change once"
            " the log is open; set it before the first transaction", -1);
        return;
      }
      zNew = fedStrdup(zVal, -1);
      if( zNew==0 ){ sqlite3_result_error_nomem(ctx); return; }
      sqlite3_free(pCtx->zUndoPath);
      pCtx->zUndoPath = zNew;
    }
    if( pCtx->zUndoPath ){
      sqlite3_result_text(ctx, pCtx->zUndoPath, -1, SQLITE_TRANSIENT);
    }else{
      const char *zMain = sqlite3_db_filename(pCtx->db, "main");
      if( zMain && zMain[0] ){
        char *z = sqlite3_mprintf("%s-fedundo", zMain);
        if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
        sqlite3_result_text(ctx, z, -1, sqlite3_free);
      }else{
        sqlite3_result_text(ctx, ":memory:", -1, SQLITE_STATIC);
      }
    }
    return;
  }
  if( zName && sqlite3_stricmp(zName, "saga_recovery")==0 ){
    if( argc>1 ){
      const char *zVal = (const char*)sqlite3_value_text(argv[1]);
      if( zVal && sqlite3_stricmp(zVal, "checked")==0 ){
        pCtx->bSagaAnyUndo = 0;
      }else if( zVal && sqlite3_stricmp(zVal, "any")==0 ){
        pCtx->bSagaAnyUndo = 1;
      }else{
        sqlite3_result_error(ctx, "fed_config: saga_recovery is 'checked'"
                             " or 'any'", -1);
        return;
      }
    }
    sqlite3_result_text(ctx, pCtx->bSagaAnyUndo ? "any" : "checked", -1,
                        SQLITE_STATIC);
    return;
  }
  if( zName==0 || sqlite3_stricmp(zName, "atomic")!=0 ){
    sqlite3_result_error(ctx, "fed_config: unknown setting (known: atomic,"
                         " recovery_grace, saga_recovery, undo_log)", -1);
    return;
  }
  if( argc>1 ){
    const char *zVal = (const char*)sqlite3_value_text(argv[1]);
    if( zVal && sqlite3_stricmp(zVal, "require")==0 ){
      pCtx->bRequireAtomic = 1;
    }else if( zVal && sqlite3_stricmp(zVal, "allow")==0 ){
      pCtx->bRequireAtomic = 0;
    }else{
      sqlite3_result_error(ctx, "fed_config: atomic is 'require' or 'allow'",
                           -1);
      return;
    }
  }
  sqlite3_result_text(ctx, pCtx->bRequireAtomic ? "require" : "allow", -1,
                      SQLITE_STATIC);
}

/**************************************************************************
** fed_in_doubt(gid, server, store, state, age_s): decisions that may not
** have reached every server yet, and roll-backs that failed.
*/
/* Add a row; the store is that of server zServer, if it is known.  The
** rowids count from 0. */
static int doubtAdd(FedEpoRows *pRows, FedContext *pCtx, const char *zGid,
                    const char *zServer, const char *zState, i64 nAge){
  FedServer *pServer = 0;
  const char *zStore = 0;
  char *zErr = 0;
  if( fedServerFind(pCtx, zServer, &pServer, &zErr)==SQLITE_OK ){
    zStore = pServer->pStore->zName;
  }
  sqlite3_free(zErr);
  fedEpoRow(pRows, fedEpoRowCount(pRows));
  fedEpoText(pRows, 0, zGid, -1);
  fedEpoText(pRows, 1, zServer, -1);
  fedEpoText(pRows, 2, zStore ? zStore : "", -1);
  fedEpoText(pRows, 3, zState, -1);
  return fedEpoInt(pRows, 4, nAge);
}

/* fedUndoDoubts() callback: one (gid, server) with undo images left. */
typedef struct DoubtUndoArg DoubtUndoArg;
struct DoubtUndoArg {
  FedEpoRows *pRows;
  FedContext *pCtx;
  i64 now;
};
static int doubtUndo(void *pArg, const char *zGid, const char *zServer,
                     const char *zState, i64 iCreated){
  DoubtUndoArg *p = (DoubtUndoArg*)pArg;
  return doubtAdd(p->pRows, p->pCtx, zGid, zServer, zState,
                  p->now - iCreated);
}

/*
** Whether every two-phase server named in zServers (a decision row's list)
** answers that it holds nothing prepared of transaction zGid: then the
** commit reached them all and the row only waits to be deleted (by this
** file's next two-phase commit or fed_recover()), so fed_in_doubt leaves
** it out.  A server that cannot be asked, or a list with no two-phase
** server, gives 0: the row is listed, as it may still be owed.  This is
** how a connection other than the committing one (or the file reopened)
** tells a finished transaction from one that a crash left half done.
*/
static int doubtRowResolved(FedContext *pCtx, const char *zGid,
                            const char *zServers){
  char *zPrefix = sqlite3_mprintf("%s_", zGid);
  int nAsked = 0, bResolved = zPrefix!=0;
  while( bResolved && zServers && *zServers ){
    const char *zEnd = strchr(zServers, ',');
    int n = zEnd ? (int)(zEnd-zServers) : (int)strlen(zServers);
    char *zServer = fedStrdup(zServers, n);
    FedServer *pServer = 0;
    FedConn *pConn = 0;
    char *zErr = 0;
    char **azGid = 0;
    int nGid = 0, i;
    zServers += n + (zEnd ? 1 : 0);
    if( zServer==0
     || fedServerFind(pCtx, zServer, &pServer, &zErr)!=SQLITE_OK ){
      bResolved = 0;
    }else if( pServer->pStore->xListPrepared ){
      if( fedServerConn(pCtx, pServer, &pConn, &zErr)!=SQLITE_OK
       || pServer->pStore->xListPrepared(pConn, zPrefix, 0, &azGid, &nGid,
                                         &zErr)!=SQLITE_OK
       || nGid>0 ){
        bResolved = 0;
      }
      for(i=0; i<nGid; i++) sqlite3_free(azGid[i]);
      sqlite3_free(azGid);
      nAsked++;
    }
    sqlite3_free(zErr);
    sqlite3_free(zServer);
  }
  sqlite3_free(zPrefix);
  return bResolved && nAsked>0;
}

/* The rows of fed_in_doubt (eponymous.c). */
static int doubtLoad(FedContext *pCtx, FedEpoRows *pRows, int idxNum,
                     int argc, sqlite3_value **argv, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  FedDoubt *p;
  i64 now = (i64)time(0);
  int rc = SQLITE_OK;
  (void)idxNum; (void)argc; (void)argv; (void)pzErr;
  /* Decision rows: a commit that some server may still owe. */
  if( sqlite3_prepare_v2(pCtx->db, "SELECT gid, servers, created FROM"
        " main.fed_txlog ORDER BY created, gid", -1, &pStmt, 0)==SQLITE_OK ){
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *zGid = (const char*)sqlite3_column_text(pStmt, 0);
      const char *zServers = (const char*)sqlite3_column_text(pStmt, 1);
      i64 iCreated = sqlite3_column_int64(pStmt, 2);
      int i, bDone = 0;
      int nGid = (int)strlen(zGid);
      for(i=0; i<pCtx->nDone; i++){
        if( strcmp(pCtx->azDone[i], zGid)==0 ) bDone = 1;
      }
      /* The row of this connection's own open transaction is no decision
      ** yet (it commits with SQLite's transaction, or not at all). */
      if( pCtx->zGid && strcmp(pCtx->zGid, zGid)==0 ) bDone = 1;
      /* This connection knows which participants still owe the commit:
      ** list those only. */
      for(p=pCtx->pDoubt; !bDone && rc==SQLITE_OK && p; p=p->pNext){
        if( strncmp(p->zGid, zGid, nGid)==0 && p->zGid[nGid]=='_' ){
          if( p->bCommit ){
            rc = doubtAdd(pRows, pCtx, p->zGid, p->zServer, "commit",
                          now - iCreated);
          }
          bDone = 1;
        }
      }
      /* A row this connection knows nothing of: ask its servers. */
      if( !bDone && doubtRowResolved(pCtx, zGid, zServers) ) bDone = 1;
      while( !bDone && rc==SQLITE_OK && zServers && *zServers ){
        const char *zEnd = strchr(zServers, ',');
        int n = zEnd ? (int)(zEnd-zServers) : (int)strlen(zServers);
        char *zServer = fedStrdup(zServers, n);
        if( zServer==0 ){ rc = SQLITE_NOMEM; break; }
        rc = doubtAdd(pRows, pCtx, zGid, zServer, "commit", now - iCreated);
        sqlite3_free(zServer);
        zServers += n + (zEnd ? 1 : 0);
      }
    }
    sqlite3_finalize(pStmt);
  }
  /* Roll-backs that failed; commits decided by a marker, not by a
  ** decision row; ids whose last resource could not be asked. */
  for(p=pCtx->pDoubt; rc==SQLITE_OK && p; p=p->pNext){
    if( p->bCommit==0 ){
      rc = doubtAdd(pRows, pCtx, p->zGid, p->zServer, "rollback",
                    now - p->iTime);
    }else if( p->bCommit<0 ){
      rc = doubtAdd(pRows, pCtx, p->zGid, p->zServer, "unknown",
                    now - p->iTime);
    }else{
      int bRow = fedTxlogHasDecision(pCtx, p->zGid);
      if( bRow<0 ) rc = SQLITE_NOMEM;
      if( bRow==0 ){
        rc = doubtAdd(pRows, pCtx, p->zGid, p->zServer, "commit",
                      now - p->iTime);
      }
    }
  }
  /* This connection's open transaction after a COMMIT whose last resource
  ** may have applied its part (txn.c, txnSettleUnknown): its prepared
  ** servers wait for the marker. */
  if( pCtx->pUnknown && pCtx->zGid ){
    FedServer *pS;
    for(pS=pCtx->pServer; rc==SQLITE_OK && pS; pS=pS->pNext){
      if( pS->pConn && pS->pConn->bTxn && pS->pConn->bPrepared ){
        char *zPart = sqlite3_mprintf("%s_%d", pCtx->zGid, pS->pConn->iPart);
        rc = zPart ? doubtAdd(pRows, pCtx, zPart, pS->zName, "unknown", 0)
                   : SQLITE_NOMEM;
        sqlite3_free(zPart);
      }
    }
  }
  /* Undo images not applied yet (undo.c). */
  if( rc==SQLITE_OK ){
    DoubtUndoArg arg;
    arg.pRows = pRows;
    arg.pCtx = pCtx;
    arg.now = now;
    rc = fedUndoDoubts(pCtx, doubtUndo, &arg);
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "fed_in_doubt: cannot read the undo log: %s",
                  pCtx->pUndoDb ? sqlite3_errmsg(pCtx->pUndoDb)
                                : sqlite3_errstr(rc));
    }
  }
  return rc;
}
static const FedEponymous doubtTable = {
  "fed_in_doubt",
  "CREATE TABLE x(gid TEXT, server TEXT, store TEXT, state TEXT,"
  " age_s INTEGER)",
  5, 1, 10, -1, 0, doubtLoad, 0
};

int fedTxlogRegister(sqlite3 *db, FedContext *pCtx){
  int fl = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc;
  pCtx->bRequireAtomic = 1;
  rc = fedEponymousRegister(db, pCtx, &doubtTable);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_recover", 0, fl, pCtx, recoverFunc,
                                 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_config", 1, fl, pCtx, configFunc,
                                 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_config", 2, fl, pCtx, configFunc,
                                 0, 0);
  }
  return rc;
}
