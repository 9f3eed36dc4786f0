/*
** txn.c: remote transactions on behalf of SQLite's.
**
** Notes on transactions.
**
** SQLite tells a virtual table about transactions only when the table is
** written: xBegin, then xSavepoint/xRelease/xRollbackTo around each
** statement inside BEGIN...COMMIT, then xSync and xCommit, or xRollback.
** Several federate tables may be written in one transaction and each gets
** every call, so the coordinator keeps its state in the FedContext and
** acts once:
**
**   - A remote transaction is opened lazily on a connection: at its first
**     write (BEGIN), or at its first read while SQLite is inside an
**     explicit transaction (BEGIN ISOLATION LEVEL REPEATABLE READ, so that
**     every read of the transaction sees one snapshot).
**   - Reads are not enlisted by SQLite.  So that a read-only transaction
**     still hears of its COMMIT or ROLLBACK, the coordinator writes one row
**     into the internal eponymous table fed_txn, which is then enlisted and
**     forwards the transaction callbacks here.
**   - SQLite's savepoint levels are mirrored lazily: a connection creates
**     remote savepoints only before its first write under a new level, and
**     releases them lazily at the next creation (one round trip per write
**     statement at most).
**   - Writes may be buffered (a store's batch of INSERT rows); they are sent
**     before the next read of that connection, before a savepoint is
**     created, at the end of a statement that has a savepoint, and at
**     xSync.  A remote error in a batch is therefore reported by the
**     statement that sends it.
**   - xSync sends buffered writes and COMMIT on every participant; an error
**     there makes SQLite roll the whole transaction back.  xCommit only
**     resets state.  xRollback sends ROLLBACK where a transaction is open.
**
** Several written servers (docs/transactions.md): at xSync the decision
** row goes into main.fed_txlog (inside SQLite's own transaction), every
** two-phase server prepares under one global id, and the one server
** without two-phase commit, if any, commits last: its success decides,
** and it writes a commit marker named by the global id in the same atomic
** request (the global id carries a tag of that server's name, txlog.c).  SQLite's commit then makes
** the decision durable; xCommit sends COMMIT PREPARED and removes the
** marker.  A crash at any point is resolved by recovery (txlog.c):
**
**   before the last resource  no decision row, no marker: roll back
**   after the last resource   no decision row, marker: commit
**   after the local commit    decision row: prepared ids commit
**   during COMMIT PREPARED    the ids still prepared commit
**
** If SQLite's commit fails after the last resource committed, xRollback
** commits the prepared servers: the marker is the decision.
**
** The last resource's request may also go out and get no answer (a
** timeout, a reset): the store sets FedConn.bUnknown, and the error
** decides nothing.  txnSettleUnknown asks the marker on a fresh connection
** (xMarkerCheck fences the old request first, so that an absent marker
** stays absent): there, commit; absent, roll back; not reachable, xSync
** returns SQLITE_BUSY, which keeps SQLite's transaction open with the
** prepared servers (FedContext.pUnknown), so that COMMIT again settles it
** with SQLite's own tables in step.  ROLLBACK then leaves the prepared
** servers to recovery (fed_in_doubt: unknown), which asks the marker.
**
** More than one written server without two-phase commit cannot be atomic:
** COMMIT fails naming them, unless fed_config('atomic', 'allow'); then,
** when each can give undo images, their images are logged in the sidecar
** (undo.c) and they commit one by one after the PREPAREs; a failure
** compensates those that committed, and xRollback after a successful
** xSync compensates all.
**
** One server without two-phase commit and without an atomic request
** (FED_TXN_NONE, MongoDB standalone) with two-phase servers, or with the
** SQLite file in a fed_saga step: it commits under undo images as above,
** without fed_config('atomic', 'allow') (one such server is atomic).
**
** One server: before COMMIT reaches the server, the server rolls back when
** the client disappears; after, it is committed.
*/
#include "fedInt.h"

/* Run fn on every participant (connections with an open transaction). */
#define FOR_EACH_TXN(pCtx, pS) \
  for(pS=(pCtx)->pServer; pS; pS=pS->pNext) \
    if( pS->pConn && pS->pConn->bTxn )

int fedTxnEnsure(
  FedContext *pCtx, FedServer *pServer, FedConn *pConn, int bWrite,
  char **pzErr
){
  int bExplicit = sqlite3_get_autocommit(pCtx->db)==0;
  int rc;
  if( pConn->bTxn ) return SQLITE_OK;
  if( !bExplicit && !bWrite ) return SQLITE_OK;

  /* A read in an explicit transaction with no federate table written yet:
  ** enlist fed_txn so that the end of the transaction reaches us. */
  if( bExplicit && !pCtx->bEnlisted && !pCtx->bEnlisting ){
    pCtx->bEnlisting = 1;
    rc = sqlite3_exec(pCtx->db, "INSERT INTO fed_txn VALUES(1)", 0, 0, 0);
    pCtx->bEnlisting = 0;
    if( rc!=SQLITE_OK ){
      fedSetError(pzErr, "%s: cannot join the transaction: %s",
                  pServer->pStore->zName, sqlite3_errmsg(pCtx->db));
      return rc;
    }
  }
  rc = pServer->pStore->xBegin(pConn, bExplicit, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pConn->bTxn = 1;
  pConn->nSavepoint = 0;
  pConn->nRemoteSp = 0;
  pConn->bWritten = 0;
  pCtx->bInTxn = 1;
  return SQLITE_OK;
}

int fedTxnBeforeWrite(
  FedContext *pCtx, FedServer *pServer, FedConn *pConn, char **pzErr
){
  int rc = SQLITE_OK;
  if( pConn->nSavepoint<pCtx->nSavepoint ){
    int iRelease = pConn->nRemoteSp>pConn->nSavepoint ? pConn->nSavepoint : -1;
    rc = pServer->pStore->xSavepoint(pConn, iRelease, pConn->nSavepoint,
                                     pCtx->nSavepoint, pzErr);
    if( rc==SQLITE_OK ){
      pConn->nSavepoint = pCtx->nSavepoint;
      pConn->nRemoteSp = pCtx->nSavepoint;
    }
  }
  return rc;
}

/* The id one participant prepares under: the transaction's global id and
** the participant's number (servers of one PostgreSQL cluster share one
** namespace of prepared ids).  sqlite3_malloc'd. */
static char *txnPartGid(FedContext *pCtx, FedConn *pConn){
  return sqlite3_mprintf("%s_%d", pCtx->zGid, pConn->iPart);
}

/*
** The servers without two-phase commit of a transaction that compensates
** (bUndo in txnTwoPhase): log the undo images of every one durably, then
** commit them one by one; when one fails, put back the before-images of
** those that committed, and fail with its error.
*/
static int txnUndoCommit(FedContext *pCtx, char **pzErr){
  FedServer *pS, *pFailed = 0;
  sqlite3_str *pDone;
  char *zDone;
  int rc = SQLITE_OK, nDone = 0;
  FOR_EACH_TXN(pCtx, pS){
    FedUndoImage *a = 0;
    int n = 0;
    if( !pS->pConn->bWritten || pS->pConn->bPrepared ) continue;
    rc = pS->pStore->xUndoImages(pS->pConn, &a, &n, pzErr);
    if( rc==SQLITE_OK ){
      pCtx->bUndo = 1;
      rc = fedUndoLog(pCtx, pCtx->zGid, pS->zName, a, n, pzErr);
    }
    fedUndoImagesFree(a, n);
    if( rc ){
      /* Nothing was committed: the images logged so far are moot. */
      if( pCtx->bUndo ) fedUndoForget(pCtx, pCtx->zGid);
      pCtx->bUndo = 0;
      return rc;
    }
  }
  pDone = sqlite3_str_new(0);
  FOR_EACH_TXN(pCtx, pS){
    if( !pS->pConn->bWritten || pS->pConn->bPrepared ) continue;
    rc = pS->pStore->xCommit(pS->pConn, pzErr);
    if( rc ){
      pFailed = pS;
      break;
    }
    pS->pConn->bTxn = 0;
    sqlite3_str_appendf(pDone, "%s%s", nDone++ ? "," : "", pS->zName);
  }
  zDone = sqlite3_str_finish(pDone);
  if( rc==SQLITE_OK && zDone==0 ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && nDone>0 ){
    char *zErr2 = 0;
    int rc2 = fedUndoCompensate(pCtx, pCtx->zGid, zDone,
                                pFailed ? pFailed->zName : 0, &zErr2);
    char *zMsg;
    if( rc2==SQLITE_OK ){
      zMsg = sqlite3_mprintf("%s; the servers that had committed (%s) were"
          " compensated", *pzErr, zDone);
    }else{
      zMsg = sqlite3_mprintf("%s; compensating the servers that had"
          " committed (%s) stopped: %s; fed_in_doubt lists what is left and"
          " fed_recover() tries again", *pzErr, zDone, zErr2);
    }
    sqlite3_free(zErr2);
    if( zMsg ){
      sqlite3_free(*pzErr);
      *pzErr = zMsg;
    }
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && nDone==0 ){
    /* Only the failed server may have applied its commit. */
    char *zErr2 = 0;
    fedUndoCompensate(pCtx, pCtx->zGid, "", pFailed ? pFailed->zName : 0,
                      &zErr2);
    sqlite3_free(zErr2);
  }
  if( rc!=SQLITE_OK ) pCtx->bUndo = 0;
  sqlite3_free(zDone);
  return rc;
}

/*
** The last resource's commit request was sent and its reply never came
** (a timeout, a reset connection): it may have been applied.  Ask for its
** marker on a fresh connection; xMarkerCheck fences the old request
** first, so that an absent marker stays absent.  Returns
**   SQLITE_OK     the marker is there: the request was applied, the
**                 transaction commits;
**   SQLITE_ERROR  no marker: it was not applied and never will be;
**                 everything rolls back;
**   SQLITE_BUSY   the server cannot be asked now: the outcome is in doubt.
**                 SQLite keeps its transaction open after a COMMIT that
**                 returns SQLITE_BUSY, so its own tables and the decision
**                 row wait too; the prepared servers stay prepared.  A
**                 retried COMMIT asks again; a ROLLBACK leaves the
**                 prepared servers to fed_recover() (fed_in_doubt:
**                 unknown), which the marker decides.
** *pzErr holds the commit's error on entry (or NULL on a retry); it is
** replaced by the message for the user.
*/
static int txnSettleUnknown(FedContext *pCtx, char **pzErr){
  FedServer *pS = pCtx->pUnknown;
  FedConn *pConn = 0;
  char *zWhy = 0, *zMsg;
  int bExists = 0, rc;
  rc = fedServerConn(pCtx, pS, &pConn, &zWhy);
  if( rc==SQLITE_OK ){
    rc = pS->pStore->xMarkerCheck(pConn, pCtx->zGid, &bExists, &zWhy);
  }
  if( rc==SQLITE_OK && bExists ){
    /* Applied: this is the commit decision, as after a plain success. */
    pCtx->pUnknown = 0;
    pCtx->pMarker = pS;
    sqlite3_free(zWhy);
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc==SQLITE_OK ){
    pCtx->pUnknown = 0;
    zMsg = sqlite3_mprintf("%s; server \"%s\" did not apply it (no commit"
        " marker): nothing was committed",
        *pzErr ? *pzErr : "federate: the last resource's commit failed",
        pS->zName);
    rc = SQLITE_ERROR;
  }else if( rc==SQLITE_NOMEM ){
    /* Still unknown; SQLite rolls back, and fedTxnRollback leaves the
    ** prepared servers to recovery. */
    sqlite3_free(zWhy);
    return SQLITE_NOMEM;
  }else{
    zMsg = sqlite3_mprintf("federate: the outcome of this transaction is in"
        " doubt: %s%sserver \"%s\" (%s) may have applied its part and"
        " cannot be asked now (%s); the two-phase servers stay prepared and"
        " the transaction stays open: COMMIT again to settle it, or ROLLBACK"
        " and run fed_recover() later (the commit marker decides)",
        *pzErr ? *pzErr : "", *pzErr ? "; " : "", pS->zName,
        pS->pStore->zName, zWhy ? zWhy : "no answer");
    rc = SQLITE_BUSY;
  }
  sqlite3_free(zWhy);
  sqlite3_free(*pzErr);
  *pzErr = zMsg;
  return zMsg ? rc : SQLITE_NOMEM;
}

/*
** Phase one across several written servers: the decision row first (it
** takes SQLite's write lock, and is rolled back with everything if any
** later step fails), then PREPARE on every two-phase server, then the one
** server without two-phase commit, if any, as the last resource: its
** commit decides.  Servers only read commit as usual.  With bUndo (no
** last resource), the servers without two-phase commit commit one by one
** under undo images instead (txnUndoCommit).
*/
static int txnTwoPhase(
  FedContext *pCtx, FedServer *pLast, int bUndo, char **pzErr
){
  FedServer *pS;
  sqlite3_str *pServers;
  char *zServers;
  int rc, i, bMarker;

  sqlite3_free(pCtx->zGid);
  pCtx->zGid = 0;
  bMarker = pLast!=0 && pLast->pStore->xMarkerCheck!=0;
  /* The longest participant id has the number of the last participant:
  ** at most the number of written servers. */
  i = 0;
  FOR_EACH_TXN(pCtx, pS) i++;
  rc = fedTxlogNewGid(pCtx, bMarker ? pLast->zName : 0, i, &pCtx->zGid,
                      pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pServers = sqlite3_str_new(0);
  i = 0;
  FOR_EACH_TXN(pCtx, pS){
    /* With undo images, the servers without two-phase commit owe nothing
    ** once the decision is made: they are not named. */
    if( pS->pConn->bWritten && (!bUndo || (pS->pStore->eTxn==FED_TXN_2PC
                                           && pS->pStore->xPrepare)) ){
      sqlite3_str_appendf(pServers, "%s%s", i++ ? "," : "", pS->zName);
    }
  }
  /* An empty list (undo images only) is "", not an allocation failure. */
  if( sqlite3_str_errcode(pServers)==SQLITE_OK
   && sqlite3_str_length(pServers)==0 ){
    sqlite3_free(sqlite3_str_finish(pServers));
    zServers = fedStrdup("", 0);
  }else{
    zServers = sqlite3_str_finish(pServers);
  }
  if( zServers==0 ){
    sqlite3_free(zServers);
    return SQLITE_NOMEM;
  }
  rc = fedTxlogDecide(pCtx, pCtx->zGid, zServers, pzErr);
  sqlite3_free(zServers);
  if( rc!=SQLITE_OK ) return rc;

  i = 0;
  FOR_EACH_TXN(pCtx, pS){
    FedConn *pConn = pS->pConn;
    char *zPart;
    if( !pConn->bWritten || pS->pStore->eTxn!=FED_TXN_2PC
     || pS->pStore->xPrepare==0 ){
      continue;
    }
    pConn->iPart = ++i;
    zPart = txnPartGid(pCtx, pConn);
    if( zPart==0 ) return SQLITE_NOMEM;
    rc = fedFault(FED_FAULT_PREPARE, pzErr);
    if( rc==SQLITE_OK ) rc = pS->pStore->xPrepare(pConn, zPart, pzErr);
    sqlite3_free(zPart);
    if( rc!=SQLITE_OK ) return rc;
    pConn->bPrepared = 1;
  }
  FOR_EACH_TXN(pCtx, pS){
    FedConn *pConn = pS->pConn;
    if( pConn->bWritten ) continue;
    rc = pS->pStore->xCommit(pConn, pzErr);
    if( rc!=SQLITE_OK ) return rc;
    pConn->bTxn = 0;
  }
  if( bUndo ){
    rc = txnUndoCommit(pCtx, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( pLast ){
    /* With a marker in the same atomic request, this commit is the
    ** decision even if SQLite's own commit never happens. */
    FedConn *pConn = pLast->pConn;
    pConn->zMarker = bMarker ? pCtx->zGid : 0;
    pConn->bUnknown = 0;
    rc = pLast->pStore->xCommit(pConn, pzErr);
    pConn->zMarker = 0;
    if( rc!=SQLITE_OK && bMarker && pConn->bUnknown ){
      /* Sent, and no answer: it may have been applied, so the prepared
      ** servers must not roll back on this error.  The connection is out
      ** of step: the marker is asked on a fresh one. */
      pConn->bUnknown = 0;
      pConn->bTxn = 0;
      pConn->bLost = 1;
      pCtx->pUnknown = pLast;
      rc = txnSettleUnknown(pCtx, pzErr);
    }else if( rc==SQLITE_OK ){
      pConn->bTxn = 0;
      if( bMarker ) pCtx->pMarker = pLast;
    }
    if( rc!=SQLITE_OK ) return rc;
  }
  return fedFault(FED_FAULT_DECISION, pzErr);
}

static int txnSyncImpl(FedContext *pCtx, char **pzErr);
int fedTxnSync(FedContext *pCtx, char **pzErr){
  int rc = txnSyncImpl(pCtx, pzErr);
  return fedErrorRc(rc, *pzErr);
}

static int txnSyncImpl(FedContext *pCtx, char **pzErr){
  FedServer *pS;
  FedServer *pLast = 0;         /* The written server without 2PC */
  int rc = SQLITE_OK;
  int nWriter = 0, nOther = 0, nUndo = 0;
  if( pCtx->bSynced ) return SQLITE_OK;
  if( pCtx->pUnknown ){
    /* COMMIT again after an outcome in doubt: phase one is done; the
    ** last resource's marker decides. */
    rc = txnSettleUnknown(pCtx, pzErr);
    if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_DECISION, pzErr);
    if( rc==SQLITE_OK ) pCtx->bSynced = 1;
    return rc;
  }
  FOR_EACH_TXN(pCtx, pS){
    if( pS->pConn->bLost ) continue;
    if( pS->pConn->bWritten ){
      nWriter++;
      if( pS->pStore->eTxn!=FED_TXN_2PC || pS->pStore->xPrepare==0 ){
        nOther++;
        pLast = pS;
        if( pS->pStore->xUndoImages ) nUndo++;
      }
    }
  }
  /* When the caller says SQLite's own tables take part (fed_saga marks
  ** its steps so), they are one more participant, committed by SQLite's
  ** commit: with one two-phase server, two-phase commit makes both atomic
  ** (the decision row is local). */
  if( nWriter==1 && nOther==0 && pCtx->bLocalParticipant ){
    rc = txnTwoPhase(pCtx, 0, 0, pzErr);
    if( rc==SQLITE_OK ) pCtx->bSynced = 1;
    return rc;
  }
  /* One server without two-phase commit that has no atomic request either
  ** (FED_TXN_NONE: MongoDB standalone) cannot be the last resource: its
  ** commit may apply half way and writes no marker.  It commits under
  ** undo images instead, after the PREPAREs, which is atomic with one such
  ** server: no fed_config('atomic', 'allow') needed.  The same with the
  ** SQLite file as the other participant (a fed_saga step). */
  if( pLast && pLast->pStore->eTxn==FED_TXN_NONE && pLast->pStore->xUndoImages
   && nOther==1 && (nWriter>=2 || pCtx->bLocalParticipant) ){
    rc = txnTwoPhase(pCtx, 0, 1, pzErr);
    if( rc==SQLITE_OK ) pCtx->bSynced = 1;
    return rc;
  }
  if( nWriter>=2 && nOther<=1 ){
    rc = txnTwoPhase(pCtx, pLast, 0, pzErr);
    if( rc==SQLITE_OK ) pCtx->bSynced = 1;
    return rc;
  }
  /* Several servers without two-phase commit, allowed: with undo images
  ** when every one of them can give them (undo.c). */
  if( nWriter>=2 && !pCtx->bRequireAtomic && nUndo==nOther ){
    rc = txnTwoPhase(pCtx, 0, 1, pzErr);
    if( rc==SQLITE_OK ) pCtx->bSynced = 1;
    return rc;
  }
  if( nWriter>=2 && pCtx->bRequireAtomic ){
    sqlite3_str *p = sqlite3_str_new(0);
    int i = 0;
    FOR_EACH_TXN(pCtx, pS){
      if( pS->pConn->bWritten
       && (pS->pStore->eTxn!=FED_TXN_2PC || pS->pStore->xPrepare==0) ){
        sqlite3_str_appendf(p, "%s\"%s\" (%s)", i++ ? " and " : "",
                            pS->zName, pS->pStore->zName);
      }
    }
    sqlite3_free(*pzErr);
    *pzErr = sqlite3_mprintf("federate: this transaction writes to servers"
        " %z, which cannot commit atomically together (at most one server"
        " without two-phase commit may take part): nothing was committed;"
        " SELECT fed_config('atomic', 'allow') commits them one by one",
        sqlite3_str_finish(p));
    return SQLITE_ERROR;
  }
  FOR_EACH_TXN(pCtx, pS){
    FedConn *pConn = pS->pConn;
    if( pConn->bLost ){
      fedSetError(pzErr, "%s: connection to server \"%s\" was lost inside"
          " a transaction; its remote changes were rolled back",
          pS->pStore->zName, pS->zName);
      return SQLITE_ERROR;
    }
    rc = pS->pStore->xCommit(pConn, pzErr);
    if( rc!=SQLITE_OK ) return rc;
    pConn->bTxn = 0;
  }
  pCtx->bSynced = 1;
  return SQLITE_OK;
}

/* Forget per-transaction state everywhere. */
static void txnReset(FedContext *pCtx){
  FedServer *pS;
  sqlite3_free(pCtx->zGid);
  pCtx->zGid = 0;
  pCtx->pMarker = 0;
  pCtx->pUnknown = 0;
  pCtx->bUndo = 0;
  for(pS=pCtx->pServer; pS; pS=pS->pNext){
    if( pS->pConn ){
      pS->pConn->bPrepared = 0;
      pS->pConn->bTxn = 0;
      pS->pConn->nSavepoint = 0;
      pS->pConn->nRemoteSp = 0;
      pS->pConn->bWritten = 0;
    }
  }
  pCtx->bInTxn = 0;
  pCtx->bSynced = 0;
  pCtx->bEnlisted = 0;
  pCtx->nSavepoint = 0;
  pCtx->iTxn++;
}

/* Phase two: COMMIT PREPARED on every prepared participant; a server that
** cannot be told now is told by recovery (fed_in_doubt lists it
** meanwhile).  Returns 1 if every one was told. */
static int txnCommitPrepared(FedContext *pCtx){
  FedServer *pS;
  int bAll = 1;
  FOR_EACH_TXN(pCtx, pS){
    char *zErr = 0;
    char *zPart;
    if( !pS->pConn->bPrepared ) continue;
    zPart = txnPartGid(pCtx, pS->pConn);
    if( zPart==0
     || fedFault(FED_FAULT_RESOLVE, &zErr)!=SQLITE_OK
     || pS->pStore->xResolve(pS->pConn, zPart, 1, &zErr)!=SQLITE_OK ){
      if( zPart ) fedTxlogDoubt(pCtx, zPart, pS->zName, 1);
      bAll = 0;
    }
    sqlite3_free(zPart);
    sqlite3_free(zErr);
  }
  return bAll;
}

/* The last resource's marker of this transaction is not needed any more
** (the decision row is durable, or every participant committed): remove
** it.  A failure leaves it for fed_recover(), which removes it later. */
static void txnRemoveMarker(FedContext *pCtx){
  FedServer *pS = pCtx->pMarker;
  pCtx->pMarker = 0;
  if( pS && pS->pConn && !pS->pConn->bLost && pCtx->zGid ){
    char *zErr = 0;
    pS->pStore->xMarkerRemove(pS->pConn, pCtx->zGid, &zErr);
    sqlite3_free(zErr);
  }
}

void fedTxnCommit(FedContext *pCtx){
  FedServer *pS;
  fedTxlogDoneCommitted(pCtx, 1);
  if( pCtx->zGid ){
    /* Phase two: the decision is durable. */
    int bAll = txnCommitPrepared(pCtx);
    txnRemoveMarker(pCtx);
    if( pCtx->bUndo && fedUndoForget(pCtx, pCtx->zGid)!=SQLITE_OK ){
      bAll = 0;                 /* Keep the decision row for recovery */
    }
    if( bAll ){
      char **az = sqlite3_realloc64(pCtx->azDone,
                                    sizeof(char*)*(pCtx->nDone+1));
      if( az ){
        pCtx->azDone = az;
        az[pCtx->nDone++] = pCtx->zGid;
        pCtx->zGid = 0;
      }
    }
  }else if( !pCtx->bSynced ){
    /* A commit without xSync (a table created in this transaction): the
    ** best that can be done is to commit now; errors cannot be reported. */
    FOR_EACH_TXN(pCtx, pS){
      char *zErr = 0;
      pS->pStore->xCommit(pS->pConn, &zErr);
      sqlite3_free(zErr);
    }
  }
  txnReset(pCtx);
}

void fedTxnRollback(FedContext *pCtx){
  FedServer *pS;
  fedTxlogDoneCommitted(pCtx, 0);
  if( pCtx->bUndo && pCtx->zGid ){
    /* Every server without two-phase commit committed, then SQLite's own
    ** commit failed: put their before-images back.  What cannot be undone
    ** now stays in the log (fed_in_doubt; fed_recover() tries again). */
    char *zErr = 0;
    fedUndoCompensate(pCtx, pCtx->zGid, 0, 0, &zErr);
    sqlite3_free(zErr);
  }
  if( pCtx->pUnknown ){
    /* ROLLBACK after a COMMIT whose last resource may have applied its
    ** part: this rollback decides nothing.  The prepared servers stay
    ** prepared for recovery, which asks the marker (fed_in_doubt lists
    ** them as unknown meanwhile). */
    FOR_EACH_TXN(pCtx, pS){
      if( pS->pConn->bPrepared ){
        char *zPart = txnPartGid(pCtx, pS->pConn);
        if( zPart ) fedTxlogDoubt(pCtx, zPart, pS->zName, -1);
        sqlite3_free(zPart);
        pS->pConn->bPrepared = 0;
        pS->pConn->bTxn = 0;
      }
    }
    pCtx->pUnknown = 0;
  }
  if( pCtx->pMarker ){
    /* The last resource committed with its marker, and then SQLite's own
    ** commit failed (or a retried COMMIT was abandoned): the marker is the
    ** decision, so the prepared servers commit too.  Those that cannot be
    ** told now are committed by recovery, which finds the marker; the
    ** marker stays until every one is. */
    if( txnCommitPrepared(pCtx) ) txnRemoveMarker(pCtx);
    pCtx->pMarker = 0;
    FOR_EACH_TXN(pCtx, pS){
      if( pS->pConn->bPrepared ){
        pS->pConn->bPrepared = 0;
        pS->pConn->bTxn = 0;
      }
    }
  }
  FOR_EACH_TXN(pCtx, pS){
    char *zErr = 0;
    if( pS->pConn->bPrepared ){
      char *zPart = txnPartGid(pCtx, pS->pConn);
      if( zPart==0
       || pS->pStore->xResolve(pS->pConn, zPart, 0, &zErr)!=SQLITE_OK ){
        /* Recovery rolls it back: there is no decision row. */
        if( zPart ) fedTxlogDoubt(pCtx, zPart, pS->zName, 0);
      }
      sqlite3_free(zPart);
    }else{
      pS->pStore->xRollback(pS->pConn, &zErr);
    }
    sqlite3_free(zErr);
    pS->pConn->bLost = 0;
  }
  txnReset(pCtx);
}

/* Buffered writes belong below the new savepoint: send them first, so
** that ROLLBACK TO it cannot take them away.  A failure is not returned
** (SQLite would drop its message): the store dooms the transaction and
** reports why at its next command and at COMMIT (the xFlush contract). */
int fedTxnSavepoint(FedContext *pCtx, int iSavepoint, char **pzErr){
  FedServer *pS;
  FOR_EACH_TXN(pCtx, pS){
    if( pS->pStore->xFlush ){
      pS->pStore->xFlush(pS->pConn, pzErr);
      sqlite3_free(*pzErr);
      *pzErr = 0;
    }
  }
  if( iSavepoint+1>pCtx->nSavepoint ) pCtx->nSavepoint = iSavepoint+1;
  return SQLITE_OK;
}

int fedTxnRelease(FedContext *pCtx, int iSavepoint, char **pzErr){
  FedServer *pS;
  if( iSavepoint<pCtx->nSavepoint ) pCtx->nSavepoint = iSavepoint;
  FOR_EACH_TXN(pCtx, pS){
    FedConn *pConn = pS->pConn;
    /* Send what the statement buffered, so that a remote error shows at
    ** the next statement rather than at COMMIT (see fedTxnSavepoint on
    ** why it is not returned here). */
    if( pS->pStore->xFlush ){
      pS->pStore->xFlush(pConn, pzErr);
      sqlite3_free(*pzErr);
      *pzErr = 0;
    }
    if( pConn->nSavepoint>iSavepoint ) pConn->nSavepoint = iSavepoint;
  }
  return SQLITE_OK;
}

int fedTxnRollbackTo(FedContext *pCtx, int iSavepoint, char **pzErr){
  FedServer *pS;
  int rc = SQLITE_OK;
  if( iSavepoint<0 ){
    /* ROLLBACK TO the SAVEPOINT that began the transaction: undo all of
    ** it, and let the remote transactions start afresh when next used. */
    FOR_EACH_TXN(pCtx, pS){
      char *zErr = 0;
      pS->pStore->xRollback(pS->pConn, &zErr);
      sqlite3_free(zErr);
      pS->pConn->bTxn = 0;
      pS->pConn->nSavepoint = 0;
      pS->pConn->nRemoteSp = 0;
      pS->pConn->bWritten = 0;
    }
    pCtx->nSavepoint = 0;
    return SQLITE_OK;
  }
  pCtx->nSavepoint = iSavepoint+1;
  FOR_EACH_TXN(pCtx, pS){
    FedConn *pConn = pS->pConn;
    if( pConn->nSavepoint>iSavepoint && !pConn->bLost ){
      int rc2 = pS->pStore->xRollbackTo(pConn, iSavepoint, pzErr);
      if( rc2!=SQLITE_OK && rc==SQLITE_OK ) rc = rc2;
      pConn->nSavepoint = iSavepoint+1;
      pConn->nRemoteSp = iSavepoint+1;
    }
  }
  return rc;
}

void fedTxnForget(FedContext *pCtx, FedServer *pServer){
  (void)pCtx;
  if( pServer->pConn ){
    pServer->pConn->bTxn = 0;
    pServer->pConn->nSavepoint = 0;
    pServer->pConn->nRemoteSp = 0;
  }
}

/**************************************************************************
** fed_txn: an eponymous table whose only purpose is to be written once per
** transaction that read remote data, so that SQLite enlists it and its
** transaction methods reach the coordinator.
*/
static int txnUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                     sqlite3_int64 *piRowid){
  (void)argc; (void)argv; (void)piRowid;
  if( !fedEpoContext(pVtab)->bEnlisting ){
    return fedVtabSetError(pVtab, SQLITE_ERROR,
                           sqlite3_mprintf("fed_txn: internal table"));
  }
  return SQLITE_OK;
}

static int txnBegin(sqlite3_vtab *pVtab){
  fedEpoContext(pVtab)->bEnlisted = 1;
  return SQLITE_OK;
}

static int txnSync(sqlite3_vtab *pVtab){
  char *zErr = 0;
  int rc = fedTxnSync(fedEpoContext(pVtab), &zErr);
  return fedVtabSetError(pVtab, rc, zErr);
}

static int txnCommit(sqlite3_vtab *pVtab){
  fedTxnCommit(fedEpoContext(pVtab));
  return SQLITE_OK;
}

static int txnRollback(sqlite3_vtab *pVtab){
  fedTxnRollback(fedEpoContext(pVtab));
  return SQLITE_OK;
}

static int txnSavepoint(sqlite3_vtab *pVtab, int i){
  char *zErr = 0;
  int rc = fedTxnSavepoint(fedEpoContext(pVtab), i, &zErr);
  return fedVtabSetError(pVtab, rc, zErr);
}

static int txnRelease(sqlite3_vtab *pVtab, int i){
  char *zErr = 0;
  int rc = fedTxnRelease(fedEpoContext(pVtab), i, &zErr);
  return fedVtabSetError(pVtab, rc, zErr);
}

static int txnRollbackTo(sqlite3_vtab *pVtab, int i){
  char *zErr = 0;
  int rc = fedTxnRollbackTo(fedEpoContext(pVtab), i, &zErr);
  return fedVtabSetError(pVtab, rc, zErr);
}

static const sqlite3_module txnMethods = {
  .iVersion = 3,
  .xUpdate = txnUpdate,
  .xBegin = txnBegin,
  .xSync = txnSync,
  .xCommit = txnCommit,
  .xRollback = txnRollback,
  .xSavepoint = txnSavepoint,
  .xRelease = txnRelease,
  .xRollbackTo = txnRollbackTo
};

/* Never any row (no xLoad); not DIRECTONLY. */
static const FedEponymous txnTable = {
  "fed_txn", "CREATE TABLE x(marker)", 1, 0, 1, 0, 0, 0, &txnMethods
};

int fedTxnRegister(sqlite3 *db, FedContext *pCtx){
  return fedEponymousRegister(db, pCtx, &txnTable);
}
