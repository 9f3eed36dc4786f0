/*
** txn.c: the remote transaction of a PostgreSQL connection: BEGIN (owed
** until the first command), COMMIT, ROLLBACK, savepoints fed_sp_<n>, and
** two-phase commit (PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED, the
** prepared ids left for fed_recover()).
*/
#include "pgInt.h"
#include <stdlib.h>

/*
** Outside BEGIN...COMMIT a write only owes a BEGIN: if the transaction
** turns out to be nothing but buffered INSERT rows, they go as one
** multi-row INSERT, atomic by itself, in a single round trip.
*/
int fedPgBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int rc;
  if( !bSnapshot ){
    p->bBeginPending = 1;
    return SQLITE_OK;
  }
  rc = fedPgExecSimple(p, "BEGIN ISOLATION LEVEL REPEATABLE READ", pzErr);
  if( rc==SQLITE_OK ) p->bOpen = 1;
  return rc;
}

static void pgTxnEnd(PgConn *p){
  fedPgCopyAbort(p);
  fedPgBatchClear(&p->batch);
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  sqlite3_free(p->zCopyRel);
  p->zCopyRel = 0;
  p->bBeginPending = 0;
  p->bOpen = 0;
}

int fedPgCommit(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes;
  i64 iSeq;
  int rc = SQLITE_OK;
  fedPgConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( p->bBeginPending ){
    /* Nothing sent yet: the batch is the whole transaction, atomic as one
    ** statement. */
    p->bBeginPending = 0;
    rc = p->batch.nRow>0 ? fedPgFlushBatch(p, pzErr) : SQLITE_OK;
    pgTxnEnd(p);
    return rc;
  }
  if( !p->bOpen ) return SQLITE_OK;
  rc = p->batch.nRow>0 ? fedPgFlushBatch(p, pzErr) : SQLITE_OK;
  if( rc==SQLITE_OK && !fedPgIsAlive(pConn) ){
    fedSetError(pzErr, "%s: connection to server \"%s\" was lost inside a"
        " transaction; its remote changes were rolled back", PG_STORE,
        p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedPgAborted(p, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_COMMIT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, "COMMIT", 0);
  pRes = pgExecWait(p, "COMMIT");
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    if( PQstatus(p->pg)!=CONNECTION_OK ){
      fedSetError(pzErr, "%s: connection to server \"%s\" was lost during"
          " COMMIT: the transaction may or may not have committed there",
          PG_STORE, p->base.pServer->zName);
    }else{
      fedPgSetError(pzErr, p->pg, pRes, "COMMIT");
    }
    rc = SQLITE_ERROR;
  }else if( strcmp(PQcmdStatus(pRes), "ROLLBACK")==0 ){
    /* The server had already failed the transaction. */
    fedSetError(pzErr, "%s: the remote transaction on server \"%s\" had"
        " failed and was rolled back", PG_STORE, p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  pgTxnEnd(p);
  return rc;
}

int fedPgRollback(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int bOpen = p->bOpen;
  pgTxnEnd(p);
  if( !bOpen || PQstatus(p->pg)!=CONNECTION_OK ) return SQLITE_OK;
  if( fedFault(FED_FAULT_ROLLBACK, pzErr) ) return SQLITE_ERROR;
  return fedPgExecRaw(p, "ROLLBACK", pzErr);
}

/*
** Two-phase commit.  PREPARE TRANSACTION ends the session's transaction:
** the server keeps it, under zGid, until COMMIT PREPARED or ROLLBACK
** PREPARED from any session (max_prepared_transactions must be > 0).
*/
int fedPgPrepare(FedConn *pConn, const char *zGid, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  char *zSql;
  int rc = fedPgReady(p, pzErr);             /* an owed BEGIN goes first */
  if( rc==SQLITE_OK && p->batch.nRow>0 ) rc = fedPgFlushBatch(p, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zSql = sqlite3_mprintf("PREPARE TRANSACTION '%q'", zGid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedPgExecRaw(p, zSql, pzErr);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    pgTxnEnd(p);
  }else if( *pzErr && strstr(*pzErr, "max_prepared_transactions") ){
    fedSetError(pzErr, "%s: server \"%s\" cannot take part in a"
        " transaction across servers: its max_prepared_transactions is 0"
        " (set it above 0 in postgresql.conf)", PG_STORE,
        p->base.pServer->zName);
  }
  return rc;
}

int fedPgResolve(FedConn *pConn, const char *zGid, int bCommit,
                 char **pzErr){
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes;
  char *zSql;
  i64 iSeq;
  int rc = SQLITE_OK;
  fedPgConnIdle(p);
  if( PQstatus(p->pg)!=CONNECTION_OK ){
    fedSetError(pzErr, "%s: server \"%s\" is not connected", PG_STORE,
                p->base.pServer->zName);
    return SQLITE_ERROR;
  }
  zSql = sqlite3_mprintf("%s PREPARED '%q'", bCommit ? "COMMIT" : "ROLLBACK",
                         zGid);
  if( zSql==0 ) return SQLITE_NOMEM;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, 0);
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    const char *zState = PQresultErrorField(pRes, PG_DIAG_SQLSTATE);
    /* 42704: no such prepared transaction: resolved already. */
    if( zState==0 || strcmp(zState, "42704")!=0 ){
      fedPgSetError(pzErr, p->pg, pRes, zSql);
      rc = SQLITE_ERROR;
    }
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  sqlite3_free(zSql);
  return rc;
}

/* Wait, up to 10 s, while another session of this database is running a
** PREPARE TRANSACTION of an id that starts with zPrefix: a coordinator
** that died right after sending it leaves the statement running, and its
** id appears in pg_prepared_xacts only when it ends (fed_recover() would
** miss it and leave it prepared until its next run). */
static int pgWaitPrepares(PgConn *p, const char *zPrefix, char **pzErr){
  int nTry, rc = SQLITE_OK;
  for(nTry=0; rc==SQLITE_OK && nTry<100; nTry++){
    PgParams params;
    PGresult *pRes = 0;
    int bBusy = 0;
    memset(&params, 0, sizeof(params));
    rc = fedPgParamsAdd(&params, zPrefix, -1, 0);
    if( rc==SQLITE_OK ){
      rc = fedPgExec(p, "SELECT count(*) FROM pg_stat_activity WHERE"
          " pid <> pg_backend_pid() AND datname = current_database()"
          " AND state = 'active' AND left(query, 21 + length($1))"
          " = 'PREPARE TRANSACTION ''' || $1", &params, &pRes, pzErr);
    }
    fedPgParamsFree(&params);
    if( rc==SQLITE_OK ){
      bBusy = PQntuples(pRes)==1 && atoi(PQgetvalue(pRes, 0, 0))>0;
      PQclear(pRes);
    }
    if( !bBusy ) break;
    sqlite3_sleep(100);
  }
  return rc;
}

int fedPgListPrepared(
  FedConn *pConn, const char *zPrefix, int nMinAge, char ***pazGid, int *pn,
  char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **az = 0;
  int i, n, rc;
  *pazGid = 0;
  *pn = 0;
  if( nMinAge==0 ){
    /* fed_recover(), which waits for no grace period. */
    rc = pgWaitPrepares(p, zPrefix, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  memset(&params, 0, sizeof(params));
  rc = fedPgParamsAdd(&params, zPrefix, -1, 0);
  if( rc==SQLITE_OK ) rc = fedPgParamsAddInt(&params, nMinAge);
  if( rc==SQLITE_OK ){
    rc = fedPgExec(p, "SELECT gid FROM pg_prepared_xacts WHERE"
        " database = current_database() AND left(gid, length($1)) = $1"
        " AND prepared <= now() - make_interval(secs => $2) ORDER BY gid",
        &params, &pRes, pzErr);
  }
  fedPgParamsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  n = PQntuples(pRes);
  if( n>0 ){
    az = sqlite3_malloc64(sizeof(char*)*n);
    if( az==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    az[i] = fedStrdup(PQgetvalue(pRes, i, 0), -1);
    if( az[i]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    while( i>0 ) sqlite3_free(az[--i]);
    sqlite3_free(az);
    return rc;
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}

int fedPgSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  char *zSql = fedPgDeparseSavepoint(iRelease, iFrom, iTo);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( rc==SQLITE_OK ) rc = fedPgExecSimple((PgConn*)pConn, zSql, pzErr);
  sqlite3_free(zSql);
  return rc;
}

int fedPgRelease(FedConn *pConn, int iLevel, char **pzErr){
  char zSql[64];
  sqlite3_snprintf(sizeof(zSql), zSql, "RELEASE SAVEPOINT fed_sp_%d", iLevel);
  return fedPgExecSimple((PgConn*)pConn, zSql, pzErr);
}

int fedPgRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  char zSql[64];
  fedPgCopyAbort(p);
  fedPgBatchClear(&p->batch);
  sqlite3_snprintf(sizeof(zSql), zSql, "ROLLBACK TO SAVEPOINT fed_sp_%d",
                   iLevel);
  /* Rows buffered (and a batch that failed) came after the savepoint. */
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  if( fedFault(FED_FAULT_SAVEPOINT, pzErr) ) return SQLITE_ERROR;
  return fedPgExecRaw(p, zSql, pzErr);
}
