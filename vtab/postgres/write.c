/*
** write.c: writes to a PostgreSQL table (xUpdate): INSERT rows wait in a
** batch sent as one multi-row INSERT, or by COPY FROM STDIN (streamed from
** the 100th row) when that is exactly the same; UPDATE and DELETE by
** primary key.  The text comes from deparse.c.
*/
#include "pgInt.h"
#include <stdlib.h>

/* Forget the rows of the batch (sent, or dropped with the transaction);
** its buffers are kept for the next one. */
void fedPgBatchClear(PgBatch *b){
  sqlite3_free(b->zPrefix);
  b->zPrefix = 0;
  b->pTab = 0;
  b->nRow = 0;
  fedPgParamsReset(&b->params);
}

/*
** COPY FROM STDIN does exactly what the multi-row INSERT would when the
** target is a plain or partitioned table without rules (COPY ignores
** rules, and is refused on a view or with row-level security) and every
** value is a plain parameter (an array column's placeholder is an
** expression).  The relation is asked once per remote transaction.
** Returns SQLITE_OK and sets *pbOk, or an error.
*/
static int pgCopyExact(PgConn *p, char **pzErr, int *pbOk){
  static const char *zCheck =
    "SELECT c.relkind IN ('r','p') AND NOT c.relhasrules"
    " AND NOT c.relrowsecurity FROM pg_class c WHERE c.oid = to_regclass($1)";
  PgBatch *b = &p->batch;
  FedTable *pTab = b->pTab;
  PgParams params;
  PGresult *pRes = 0;
  int i, rc;
  *pbOk = 0;
  if( b->nRow<PG_COPY_MIN || b->nCol==0 ) return SQLITE_OK;
  for(i=0; i<pTab->nCol; i++){
    if( (b->mCol & ((u64)1<<i)) && pTab->aCol[i].eKind==PG_ARRAY ){
      return SQLITE_OK;
    }
  }
  if( p->zCopyRel && strcmp(p->zCopyRel, pTab->zRemote)==0 ){
    *pbOk = p->bCopyOk;
    return SQLITE_OK;
  }
  memset(&params, 0, sizeof(params));
  rc = fedPgParamsAdd(&params, pTab->zRemote, -1, 0);
  if( rc==SQLITE_OK ) rc = fedPgExec(p, zCheck, &params, &pRes, pzErr);
  fedPgParamsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  *pbOk = PQntuples(pRes)==1 && PQgetvalue(pRes, 0, 0)[0]=='t';
  PQclear(pRes);
  sqlite3_free(p->zCopyRel);
  p->zCopyRel = fedStrdup(pTab->zRemote, -1);
  p->bCopyOk = *pbOk;
  return SQLITE_OK;
}

/* The batch's rows from row iFrom on as COPY data, given to libpq (the
** values are counted, not b->nRow, which a send zeroes first), written
** into the batch's buffer (kept: a streaming batch puts one row a call).
** Returns SQLITE_NOMEM, or SQLITE_OK (a failure to send shows in the
** result). */
static int pgCopyPut(PgConn *p, int iFrom){
  PgBatch *b = &p->batch;
  PgParams *pP = &b->params;
  i64 nData = 0, nMax = 0;
  int i;
  for(i=iFrom*b->nCol; i<pP->n; i++){
    nMax += pgCopyFieldMax(pP->aLen[i]) + 1;
  }
  if( nMax==0 ) return SQLITE_OK;
  if( nMax>b->nCopyAlloc ){
    char *a = sqlite3_realloc64(b->aCopy, nMax);
    if( a==0 ) return SQLITE_NOMEM;
    b->aCopy = a;
    b->nCopyAlloc = nMax;
  }
  for(i=iFrom*b->nCol; i<pP->n; i++){
    nData += fedPgCopyField(&b->aCopy[nData],
                            pP->aOff[i]<0 ? 0 : &pP->aBuf[pP->aOff[i]],
                            pP->aLen[i], pP->aFmt[i]);
    b->aCopy[nData++] = (i+1)%b->nCol ? '\t' : '\n';
  }
  /* Nonblocking: libpq queues the data (0 only when its buffer cannot
  ** grow); fedPgPush() sends it, and a failure to is reported by the COPY's
  ** end, from the dead connection. */
  if( PQputCopyData(p->pg, b->aCopy, (int)nData)==0 ) return SQLITE_NOMEM;
  fedPgPush(p);
  /* A whole batch's buffer is not kept. */
  if( b->nCopyAlloc>65536 ){
    sqlite3_free(b->aCopy);
    b->aCopy = 0;
    b->nCopyAlloc = 0;
  }
  return SQLITE_OK;
}

/*
** Open the COPY of this batch on the connection and give it the rows so
** far, so that the server inserts them while SQLite produces the next
** ones; pgCopyBatch() ends it when the batch is sent.  Only inside the
** remote transaction (pgCopyExact() sent an owed BEGIN).  If the server
** refuses the COPY, the refusal is kept and reported when the batch is
** sent, as the INSERT's would be.
*/
static int pgCopyStart(PgConn *p){
  PgBatch *b = &p->batch;
  char *zSql;
  PGresult *pRes;
  fedPgConnIdle(p);
  zSql = fedPgCopyCommand(b);
  if( zSql==0 ) return SQLITE_NOMEM;
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)==PGRES_COPY_IN ){
    b->nCopied = b->params.n / b->nCol;
    PQclear(pRes);
    sqlite3_free(zSql);
    return pgCopyPut(p, 0);
  }
  b->zCopyErr = 0;
  fedPgSetError(&b->zCopyErr, p->pg, pRes, zSql);
  PQclear(pRes);
  while( (pRes = fedPgResult(p))!=0 ) PQclear(pRes);
  sqlite3_free(zSql);
  return SQLITE_OK;
}

/* Give the rows added since the last call to the open COPY. */
static int pgCopyMore(PgConn *p){
  PgBatch *b = &p->batch;
  int iFrom = b->nCopied;
  b->nCopied = b->params.n / b->nCol;
  return pgCopyPut(p, iFrom);
}

/* Abandon an open COPY (ROLLBACK, ROLLBACK TO): the server discards it. */
void fedPgCopyAbort(PgConn *p){
  PgBatch *b = &p->batch;
  if( b->nCopied>0 ){
    PGresult *pRes;
    b->nCopied = 0;
    PQputCopyEnd(p->pg, "rolled back");
    while( (pRes = fedPgResult(p))!=0 ) PQclear(pRes);
  }
  sqlite3_free(b->zCopyErr);
  b->zCopyErr = 0;
}

/* Send the waiting rows by COPY FROM STDIN (pgCopyExact() said it is the
** same as their INSERT), or end the COPY they stream into.  The command,
** its values and its row count are in fed_explain as for the INSERT. */
static int pgCopyBatch(PgConn *p, char **pzErr){
  PgBatch *b = &p->batch;
  char *zSql = fedPgCopyCommand(b), *zParams = fedPgParamsJson(&b->params);
  PGresult *pRes = 0;
  int rc = SQLITE_OK;
  i64 iSeq, nRow = 0;

  if( zSql==0 || (zParams==0 && b->params.n>0) ){
    rc = SQLITE_NOMEM;
    goto cleanup;
  }
  if( b->zCopyErr ){
    fedSetError(pzErr, "%s", b->zCopyErr);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( b->nCopied==0 ){
    rc = fedPgReady(p, pzErr);
    if( rc!=SQLITE_OK ) goto cleanup;
  }
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, zParams);
  if( fedFault(FED_FAULT_SEND, pzErr) ){
    rc = SQLITE_ERROR;
    if( b->nCopied>0 ) fedPgCopyAbort(p);
    goto cleanup;
  }
  if( b->nCopied>0 ){
    rc = pgCopyMore(p);
    b->nCopied = 0;
    if( rc==SQLITE_OK && PQputCopyEnd(p->pg, 0)!=1 ){
      fedPgSetError(pzErr, p->pg, 0, zSql);
      rc = SQLITE_ERROR;
    }
    pRes = fedPgResult(p);
  }else{
    pRes = pgExecWait(p, zSql);
    if( PQresultStatus(pRes)==PGRES_COPY_IN ){
      PQclear(pRes);
      rc = pgCopyPut(p, 0);
      if( rc==SQLITE_OK && PQputCopyEnd(p->pg, 0)!=1 ){
        fedPgSetError(pzErr, p->pg, 0, zSql);
        rc = SQLITE_ERROR;
      }
      if( rc==SQLITE_NOMEM ) PQputCopyEnd(p->pg, "out of memory");
      /* The result of the COPY (after an error above too: libpq ends it). */
      pRes = fedPgResult(p);
    }
  }
  if( rc==SQLITE_OK && PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    fedPgSetError(pzErr, p->pg, pRes, zSql);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) nRow = atoll(PQcmdTuples(pRes));
  PQclear(pRes);
  while( (pRes = fedPgResult(p))!=0 ) PQclear(pRes);
  fedExplainRows(pgCtx(p), iSeq, nRow, 1);

cleanup:
  if( b->nCopied>0 ) fedPgCopyAbort(p);
  sqlite3_free(b->zCopyErr);
  b->zCopyErr = 0;
  sqlite3_free(zSql);
  sqlite3_free(zParams);
  return rc;
}

/* Send the waiting INSERT rows as one statement (or one COPY). */
int fedPgFlushBatch(PgConn *p, char **pzErr){
  PgBatch *b = &p->batch;
  char *zSql;
  int rc = SQLITE_OK, bCopy = 0;
  if( b->nRow==0 ) return SQLITE_OK;
  if( b->nCopied>0 || b->zCopyErr ){
    bCopy = 1;                  /* Streaming into a COPY, or it failed */
  }else{
    rc = pgCopyExact(p, pzErr, &bCopy);
  }
  if( rc==SQLITE_OK && bCopy ){
    b->nRow = 0;                /* Sent once, whatever the outcome */
    rc = pgCopyBatch(p, pzErr);
    fedPgBatchClear(b);
    goto done;
  }
  if( rc!=SQLITE_OK ){
    fedPgBatchClear(b);
    goto done;
  }
  zSql = fedPgDeparseInsertRows(b->pTab, b->zPrefix, b->mCol, b->nRow, 0);
  if( zSql==0 ){
    if( p->bOpen && p->zDoom==0 ){
      p->zDoom = sqlite3_mprintf("%s: out of memory while sending buffered"
                                 " rows; ROLLBACK and retry", PG_STORE);
    }
    fedPgBatchClear(b);
    return SQLITE_NOMEM;
  }
  b->nRow = 0;                  /* Sent once, whatever the outcome */
  rc = fedPgExec(p, zSql, &b->params, 0, pzErr);
  sqlite3_free(zSql);
  fedPgBatchClear(b);
done:
  /* The rows came from statements SQLite considers done: if they did not
  ** make it, neither may the transaction.  Inside BEGIN...COMMIT the
  ** reason is kept and given to every later command until ROLLBACK, since
  ** SQLite drops messages from the savepoint callbacks that flush. */
  if( rc!=SQLITE_OK && p->bOpen ){
    sqlite3_free(p->zDoom);
    p->zDoom = sqlite3_mprintf("%s: rows buffered earlier in this"
        " transaction were not inserted, so it cannot commit: ROLLBACK"
        " (or ROLLBACK TO a savepoint) and retry; %s", PG_STORE,
        *pzErr==0 ? "out of memory" :
        strncmp(*pzErr, PG_STORE ": ", strlen(PG_STORE)+2)==0 ?
            *pzErr + strlen(PG_STORE) + 2 : *pzErr);
  }
  return rc;
}

int fedPgFlush(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int rc;
  if( p->batch.nRow==0 ) return SQLITE_OK;
  rc = fedPgReady(p, pzErr);
  return rc==SQLITE_OK ? fedPgFlushBatch(p, pzErr) : rc;
}

static int pgInsert(
  PgConn *p, FedTable *pTab, sqlite3_value **aVal, i64 *piRowid,
  char **pzErr
){
  PgBatch *b = &p->batch;
  u64 mCol = 0;
  int i, nCol = 0, rc = SQLITE_OK;
  int bReturning = 0;
  i64 nBatch;

  for(i=0; i<pTab->nCol; i++){
    const FedColumn *pCol = &pTab->aCol[i];
    /* SQLite hands a virtual table NULL for a column an INSERT leaves out
    ** (it keeps no defaults for them).  NULL into a NOT NULL column that
    ** has a remote default (serial, identity, DEFAULT) means "use the
    ** default"; elsewhere NULL stays NULL, as in postgres_fdw. */
    if( sqlite3_value_type(aVal[i])==SQLITE_NULL && pCol->bDefault
     && pCol->bNotNull ){
      if( i==pTab->iPk && pCol->eKind==PG_INT ) bReturning = 1;
      continue;
    }
    mCol |= (u64)1<<i;
    nCol++;
  }
  rc = fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 100000, &nBatch,
                    PG_STORE, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( bReturning || nCol==0 ) nBatch = 1;

  /* A different table or column set, or a full batch: send what waits. */
  if( b->nRow>0 && (b->pTab!=pTab || b->mCol!=mCol
                    || b->params.n + nCol > 65535) ){
    rc = fedPgFlush(&p->base, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( b->nRow==0 ){
    fedPgBatchClear(b);
    b->zPrefix = fedPgDeparseInsert(pTab, mCol);
    if( b->zPrefix==0 ) return SQLITE_NOMEM;
    b->pTab = pTab;
    b->mCol = mCol;
    b->nCol = nCol;
  }
  for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
    if( mCol & ((u64)1<<i) ){
      rc = fedPgWriteParam(&b->params, &pTab->aCol[i], aVal[i], pzErr);
    }
  }
  /* An integer key given: it is the new row's rowid, as in SQLite. */
  if( pTab->iPk>=0 && pTab->aCol[pTab->iPk].eKind==PG_INT
   && sqlite3_value_type(aVal[pTab->iPk])==SQLITE_INTEGER ){
    *piRowid = sqlite3_value_int64(aVal[pTab->iPk]);
  }
  if( rc!=SQLITE_OK ){
    /* Drop the half-added row: no partial row is ever sent. */
    b->params.n -= b->params.n % (b->nCol ? b->nCol : 1);
    if( b->nRow==0 ) fedPgBatchClear(b);
    return rc;
  }
  b->nRow++;

  if( bReturning ){
    PGresult *pRes = 0;
    char *zSql = fedPgDeparseInsertRows(pTab, b->zPrefix, mCol, 1, 1);
    b->nRow = 0;
    if( zSql==0 ){
      fedPgBatchClear(b);
      return SQLITE_NOMEM;
    }
    rc = fedPgExec(p, zSql, &b->params, &pRes, pzErr);
    sqlite3_free(zSql);
    fedPgBatchClear(b);
    if( rc==SQLITE_OK && PQntuples(pRes)==1 ){
      fedParseInt64(PQgetvalue(pRes, 0, 0), -1, piRowid);
    }
    PQclear(pRes);
    return rc;
  }
  if( b->nRow>=nBatch ) return fedPgFlush(&p->base, pzErr);
  /* A batch that will go by COPY streams into it from its 100th row on,
  ** after BEGIN (sent now if owed): the server inserts while SQLite
  ** produces.  Nothing is reported here: the batch reports its outcome
  ** when it is sent, as before. */
  if( b->nCopied>0 ){
    rc = pgCopyMore(p);
  }else if( b->nRow>=PG_COPY_MIN && b->zCopyErr==0
         && (p->bOpen || p->bBeginPending) && p->zDoom==0 ){
    char *zErr = 0;
    int bCopy = 0;
    rc = pgCopyExact(p, &zErr, &bCopy);
    if( rc==SQLITE_OK && bCopy ){
      rc = pgCopyStart(p);
    }else if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      b->zCopyErr = zErr;       /* The check failed: the send reports it */
      zErr = 0;
    }
    sqlite3_free(zErr);
  }
  if( rc==SQLITE_NOMEM && b->nCopied>0 ){
    /* Part of a row may be in the COPY: abandon it; the send reports. */
    fedPgCopyAbort(p);
    b->zCopyErr = sqlite3_mprintf("%s: out of memory while sending"
                                  " buffered rows", PG_STORE);
  }
  if( PQstatus(p->pg)!=CONNECTION_OK
   && (b->zCopyErr || fedPgWaitPending(p->pg)) ){
    /* The server stopped answering while the batch went into a COPY, and
    ** fedPgResult() or fedPgPush() closed the connection: say so now, not as a
    ** lost connection at the next row. */
    if( b->zCopyErr ){
      fedSetError(pzErr, "%s", b->zCopyErr);
      sqlite3_free(b->zCopyErr);
      b->zCopyErr = 0;
    }else{
      char *zCopy = fedPgCopyCommand(b);
      fedPgSetError(pzErr, p->pg, 0, zCopy ? zCopy : "COPY");
      sqlite3_free(zCopy);
    }
    b->nCopied = 0;
    return SQLITE_ERROR;
  }
  /* The row is in the batch either way: its send reports the outcome. */
  return SQLITE_OK;
}

int fedPgUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  PgConn *p = (PgConn*)pTab->pServer->pConn;
  PgParams params;
  char *zSql = 0;
  int rc;

  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( argc>1 && sqlite3_value_type(argv[0])==SQLITE_NULL ){
    if( pTab->iPk<0 && sqlite3_value_type(argv[1])!=SQLITE_NULL ){
      fedSetError(pzErr, "%s: cannot set the rowid of table \"%s\"",
                  PG_STORE, pTab->zName);
      return SQLITE_ERROR;
    }
    return pgInsert(p, pTab, &argv[2], piRowid, pzErr);
  }
  if( pTab->iPk<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no single-column primary key;"
        " UPDATE and DELETE need one (declare it in columns= with"
        " \"primary key\")", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    fedSetError(pzErr, "%s: row of table \"%s\" has a NULL primary key;"
                " cannot UPDATE or DELETE it", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  rc = fedPgFlush(&p->base, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  memset(&params, 0, sizeof(params));
  rc = fedPgDeparseUpdate(pTab, argc, argv, &params, &zSql, pzErr);
  /* No text: nothing changes, no round trip. */
  if( rc==SQLITE_OK && zSql ) rc = fedPgExec(p, zSql, &params, 0, pzErr);
  sqlite3_free(zSql);
  fedPgParamsFree(&params);
  return rc;
}
