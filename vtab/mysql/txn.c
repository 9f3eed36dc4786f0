/*
** txn.c: the remote transaction of a MariaDB/MySQL connection: START
** TRANSACTION (owed until the first command that needs it), COMMIT,
** ROLLBACK and the savepoints fed_sp_<n> that mirror SQLite's.
**
** Outside BEGIN...COMMIT a write only owes its START TRANSACTION: a
** statement that turns out to be nothing but buffered INSERT rows is sent
** as one multi-row INSERT in autocommit mode (atomic by itself on a
** transactional engine, write.c refuses the others), one round trip.
** Inside BEGIN...COMMIT the first read or write starts the transaction
** WITH CONSISTENT SNAPSHOT (InnoDB's REPEATABLE READ: one snapshot).
**
** MariaDB ends a transaction by itself on a deadlock (1213): the commands
** after it would run in autocommit mode.  So any error of the transaction
** that says so dooms it (zDoom): every later command, and COMMIT, fail
** until SQLite's ROLLBACK.
**
** Across servers this store is the last resource (no XA yet: docs/
** mysql.md says why): its COMMIT decides, and it writes the commit marker
** of the global id in the same transaction, a row of the InnoDB table
** `federate_markers` in the DSN's database (created when a command finds
** it missing, on a second connection: DDL would commit the open
** transaction):
**
**   gid      the global id (txlog.c: at most 64 ASCII bytes)
**   state    'c': the marker (the transaction committed)
**            'f': a fence written by fedMyMarkerCheck() where it found
**                 none: a commit of that gid still in flight then fails
**                 on the duplicate key, or made the fence wait for its
**                 lock until it ended, so an absent marker stays absent
*/
#include "myInt.h"
#include <mysql.h>

#define MY_MARKER_TABLE "`federate_markers`"

static int myMarkerWrite(MyConn *p, const char *zGid, char **pzErr);
static void myAbandon(MyConn *p);

/* Forget the transaction's state (ended, or given up). */
static void myTxnEnd(MyConn *p){
  fedMyBatchClear(&p->batch);
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  p->bBeginPending = 0;
  p->bOpen = 0;
}

/*
** Make the connection ready for the next command of the transaction: the
** streaming scan read aside, a doomed transaction reported, an owed
** START TRANSACTION sent, buffered INSERT rows sent (a read must see
** them).
*/
int fedMyReady(MyConn *p, char **pzErr){
  int rc = SQLITE_OK;
  fedMyConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( p->bBeginPending ){
    p->bBeginPending = 0;
    rc = fedMyExecOp(p, "START TRANSACTION", "starting a transaction", 0,
                     pzErr);
    if( rc!=SQLITE_OK ){
      fedMyBatchClear(&p->batch);
      return rc;
    }
    p->bOpen = 1;
  }
  if( p->batch.nRow>0 ) rc = fedMyFlushBatch(p, pzErr);
  return rc;
}

int fedMyBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  int rc;
  myTxnEnd(p);
  if( !bSnapshot ){
    p->bBeginPending = 1;
    return SQLITE_OK;
  }
  rc = fedMyExecOp(p, "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                   "starting a transaction", 0, pzErr);
  if( rc==SQLITE_OK ) p->bOpen = 1;
  return rc;
}

int fedMyCommit(FedConn *pConn, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  int rc = SQLITE_OK;
  fedMyConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( p->bBeginPending && p->base.zMarker ){
    /* The marker goes with the rows: one transaction. */
    rc = fedMyReady(p, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( p->bBeginPending ){
    /* Nothing sent yet: the batch is the whole transaction, atomic as one
    ** statement in autocommit mode. */
    rc = p->batch.nRow>0 ? fedMyFlushBatch(p, pzErr) : SQLITE_OK;
    myTxnEnd(p);
    return rc;
  }
  if( !p->bOpen ) return SQLITE_OK;
  if( p->batch.nRow>0 ) rc = fedMyFlushBatch(p, pzErr);
  if( rc==SQLITE_OK && p->base.zMarker ){
    rc = myMarkerWrite(p, p->base.zMarker, pzErr);
  }
  if( rc==SQLITE_OK && (p->bDead || p->my==0) ){
    fedSetError(pzErr, "%s: connection to server \"%s\" was lost inside a"
        " transaction; its remote changes were rolled back", MY_STORE,
        p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_COMMIT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = fedMyExecOp(p, "COMMIT", "committing", 0, pzErr);
  if( rc!=SQLITE_OK && p->bDead ){
    fedSetError(pzErr, "%s: connection to server \"%s\" was lost during"
        " COMMIT: the transaction may or may not have committed there",
        MY_STORE, p->base.pServer->zName);
    /* Sent, no answer: the marker decides (txn.c of the core). */
    if( p->base.zMarker ) p->base.bUnknown = 1;
  }
  /* A COMMIT the server refused may leave its transaction open. */
  if( rc!=SQLITE_OK ) myAbandon(p);
  myTxnEnd(p);
  return rc;
}

/* Close the connection of a transaction whose end is not known to have
** reached the server: the server rolls it back when it sees the close,
** and a later START TRANSACTION on it would have committed it. */
static void myAbandon(MyConn *p){
  fedMyConnIdle(p);
  if( p->my ){
    mysql_close((MYSQL*)p->my);
    p->my = 0;
  }
  p->bDead = 1;
}

int fedMyRollback(FedConn *pConn, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  int bOpen = p->bOpen, rc;
  myTxnEnd(p);
  if( !bOpen || p->bDead || p->my==0 ) return SQLITE_OK;
  fedMyConnIdle(p);
  rc = fedFault(FED_FAULT_ROLLBACK, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedMyExecOp(p, "ROLLBACK", "rolling back", 0, pzErr);
  }
  if( rc!=SQLITE_OK ) myAbandon(p);
  return rc;
}

/* Savepoints: release iRelease (and those above it) if >=0, then create
** iFrom..iTo-1; one command each (multi-statements are off). */
int fedMySavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                   char **pzErr){
  MyConn *p = (MyConn*)pConn;
  int rc = fedMyReady(p, pzErr);
  int i;
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( rc==SQLITE_OK && iRelease>=0 ) rc = fedMyRelease(pConn, iRelease, pzErr);
  for(i=iFrom; rc==SQLITE_OK && i<iTo; i++){
    char *zSql = fedMyDeparseSavepoint("SAVEPOINT", i);
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = fedMyExecOp(p, zSql, "creating a savepoint", 0, pzErr);
    sqlite3_free(zSql);
  }
  return rc;
}

int fedMyRelease(FedConn *pConn, int iLevel, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char *zSql = fedMyDeparseSavepoint("RELEASE SAVEPOINT", iLevel);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedMyExecOp(p, zSql, "releasing a savepoint", 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

int fedMyRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char *zSql;
  int rc;
  /* Rows buffered (and a batch that failed) came after the savepoint; a
  ** transaction the server ended itself stays doomed. */
  fedMyBatchClear(&p->batch);
  if( p->zDoom && !p->bOpen ) return SQLITE_OK;
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  if( !p->bOpen || p->bDead || p->my==0 ) return SQLITE_OK;
  fedMyConnIdle(p);
  rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( rc==SQLITE_OK ){
    zSql = fedMyDeparseSavepoint("ROLLBACK TO SAVEPOINT", iLevel);
    rc = zSql ? fedMyExecOp(p, zSql, "rolling back to a savepoint", 0, pzErr)
              : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc!=SQLITE_OK && p->zDoom==0 ){
    /* The server keeps writes SQLite undid: the transaction cannot
    ** commit (SQLite drops this callback's error). */
    p->zDoom = sqlite3_mprintf("%s: ROLLBACK TO a savepoint failed on"
        " server \"%s\", so the transaction cannot commit: ROLLBACK and"
        " retry; %s", MY_STORE, p->base.pServer->zName,
        *pzErr ? *pzErr : "out of memory");
  }
  return rc;
}

/**************************************************************************
** Commit markers (the last resource's, see the banner).
*/

/* Create the marker table if it is missing, on a connection of its own
** (DDL commits the transaction of the connection it runs on). */
static int myMarkerTable(MyConn *p, char **pzErr){
  FedConn *pSide = 0;
  int rc;
  rc = fedMyConnect(p->base.pServer, &pSide, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedMyExecOp((MyConn*)pSide, "CREATE TABLE IF NOT EXISTS "
        MY_MARKER_TABLE "(gid VARCHAR(64) CHARACTER SET ascii COLLATE"
        " ascii_bin PRIMARY KEY, state CHAR(1) NOT NULL, created TIMESTAMP"
        " NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB",
        "creating the commit marker table", 0, pzErr);
  }
  fedMyDisconnect(pSide);
  return rc;
}

/* errno of the last command on p (0 if none or no connection). */
static unsigned int myErrno(MyConn *p){
  return p->my ? mysql_errno((MYSQL*)p->my) : 0;
}

/* Run the marker command zFmt (one %Q: the gid) for operation zOp. */
static int myMarkerExec(MyConn *p, const char *zFmt, const char *zGid,
                        const char *zOp, char **pzErr){
  char *zSql = sqlite3_mprintf(zFmt, zGid);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedMyExecOp(p, zSql, zOp, 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* Run marker command zFmt; when the table is missing (1146: a server
** that never was a last resource), create it and run the command again. */
static int myMarkerRun(MyConn *p, const char *zFmt, const char *zGid,
                       const char *zOp, char **pzErr){
  int rc = myMarkerExec(p, zFmt, zGid, zOp, pzErr);
  if( rc==SQLITE_ERROR && myErrno(p)==1146 && !p->bDead ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
    rc = myMarkerTable(p, pzErr);
    if( rc==SQLITE_OK ) rc = myMarkerExec(p, zFmt, zGid, zOp, pzErr);
  }
  return rc;
}

/* The marker, inside the open transaction, just before its COMMIT (a
** failed INSERT undoes only itself: the transaction goes on). */
static int myMarkerWrite(MyConn *p, const char *zGid, char **pzErr){
  return myMarkerRun(p, "INSERT INTO " MY_MARKER_TABLE
      " (gid, state) VALUES (%Q, 'c')", zGid, "writing the commit marker",
      pzErr);
}

int fedMyMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                     char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char **az = 0;
  int rc, nRow = 0;
  *pbExists = 0;
  fedMyConnIdle(p);
  /* The fence waits while a transaction holding the marker's key runs;
  ** with no table yet, the table is made first, so that a commit still
  ** on its way finds the fence. */
  rc = myMarkerRun(p, "INSERT INTO " MY_MARKER_TABLE " (gid, state)"
      " VALUES (%Q, 'f')", zGid, "fencing a commit marker", pzErr);
  if( rc==SQLITE_OK ) return SQLITE_OK;           /* None: fenced */
  if( myErrno(p)!=1062 || p->bDead ) return rc;
  sqlite3_free(*pzErr);
  *pzErr = 0;
  rc = fedMyCatalog(p, "SELECT state FROM " MY_MARKER_TABLE " WHERE gid = ?",
                    1, &zGid, 1, &az, &nRow, pzErr);
  if( rc==SQLITE_OK ){
    *pbExists = nRow==1 && az[0] && az[0][0]=='c';
  }
  if( nRow>0 ) sqlite3_free(az[0]);
  sqlite3_free(az);
  return rc;
}

int fedMyMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  static const char *zDel = "DELETE FROM " MY_MARKER_TABLE " WHERE gid = %Q";
  MyConn *p = (MyConn*)pConn;
  int rc = myMarkerExec(p, zDel, zGid, "removing a commit marker", pzErr);
  if( rc!=SQLITE_OK && myErrno(p)==1146 ){        /* No table: no marker */
    sqlite3_free(*pzErr);
    *pzErr = 0;
    rc = SQLITE_OK;
  }
  return rc;
}

int fedMyMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                    int *pn, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  char **az = 0;
  int nRow = 0, rc;
  *pazGid = 0;
  *pn = 0;
  rc = fedMyCatalog(p, "SELECT gid FROM " MY_MARKER_TABLE " WHERE state ="
      " 'c' AND LEFT(gid, CHAR_LENGTH(?)) = ? ORDER BY gid",
      2, (const char *const[]){ zPrefix, zPrefix }, 1, &az, &nRow, pzErr);
  if( rc!=SQLITE_OK && myErrno(p)==1146 ){        /* No table: no marker */
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc!=SQLITE_OK ) return rc;
  *pazGid = az;
  *pn = nRow;
  return SQLITE_OK;
}
