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
*/
#include "myInt.h"
#include <mysql.h>

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
  if( p->bBeginPending ){
    /* Nothing sent yet: the batch is the whole transaction, atomic as one
    ** statement in autocommit mode. */
    rc = p->batch.nRow>0 ? fedMyFlushBatch(p, pzErr) : SQLITE_OK;
    myTxnEnd(p);
    return rc;
  }
  if( !p->bOpen ) return SQLITE_OK;
  if( p->batch.nRow>0 ) rc = fedMyFlushBatch(p, pzErr);
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
  }
  myTxnEnd(p);
  return rc;
}

int fedMyRollback(FedConn *pConn, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  int bOpen = p->bOpen;
  myTxnEnd(p);
  if( !bOpen || p->bDead || p->my==0 ) return SQLITE_OK;
  fedMyConnIdle(p);
  if( fedFault(FED_FAULT_ROLLBACK, pzErr) ) return SQLITE_ERROR;
  return fedMyExecOp(p, "ROLLBACK", "rolling back", 0, pzErr);
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
  if( fedFault(FED_FAULT_SAVEPOINT, pzErr) ) return SQLITE_ERROR;
  zSql = fedMyDeparseSavepoint("ROLLBACK TO SAVEPOINT", iLevel);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedMyExecOp(p, zSql, "rolling back to a savepoint", 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}
