/*
** scan.c: scans of a PostgreSQL table (xOpen, xFilter, xNext, xColumn):
** the SELECT from deparse.c is sent, its rows stream in libpq's
** single-row mode, and when another command needs the connection the rest
** of the scan is held in memory (fedPgCursorDrain()).
*/
#include "pgInt.h"

/* Forget the rows of the last scan (current and held) and its errors. */
static void cursorReset(PgCursor *pCsr){
  PQclear(pCsr->pRes);
  pCsr->pRes = 0;
  while( pCsr->pHeld ){
    PgChunk *pC = pCsr->pHeld;
    pCsr->pHeld = pC->pNext;
    sqlite3_free(pC);
  }
  pCsr->pHeldLast = 0;
  pCsr->iHeld = pCsr->nHeldRow = 0;
  pCsr->bHeldRow = 0;
  sqlite3_free(pCsr->zDrainErr);
  pCsr->zDrainErr = 0;
  pCsr->bDrainLost = 0;
  pCsr->bEof = 1;
  pCsr->iRow = 0;
}

/* Stop the stream of this cursor: read what is left (or cancel a long
** rest outside a transaction) so that the connection is idle again. */
static void cursorStop(PgCursor *pCsr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  int n = 0;
  if( p==0 || !pCsr->bStreaming ) return;
  while( (pRes = fedPgResult(p))!=0 ){
    PQclear(pRes);
    if( ++n==PG_DRAIN_BEFORE_CANCEL && !p->base.bTxn ){
      PGcancel *pCancel = PQgetCancel(p->pg);
      if( pCancel ){
        char zErr[256];
        PQcancel(pCancel, zErr, sizeof(zErr));
        PQfreeCancel(pCancel);
      }
    }
  }
  fedExplainRows(pgCtx(p), pCsr->iExplain, pCsr->iRowid+1, 1);
  pCsr->bStreaming = 0;
  p->pActive = 0;
}

/*
** Append the rows of pRes to the held rows.  SQLITE_NOMEM when memory
** runs out, SQLITE_FULL when the rows would take SQLite's memory past its
** soft heap limit (sqlite3_soft_heap_limit64(), PRAGMA soft_heap_limit).
*/
static int cursorHold(PgCursor *pCsr, PGresult *pRes){
  int nField = PQnfields(pRes);
  int nRow = PQntuples(pRes), iRow, i;
  if( nField>FED_MAX_COLUMNS+1 ) return SQLITE_FULL;
  pCsr->nField = nField;
  for(iRow=0; iRow<nRow; iRow++){
    PgChunk *pC = pCsr->pHeldLast;
    i64 nRowByte = 0;
    char *z;
    for(i=0; i<nField; i++) nRowByte += 5 + PQgetlength(pRes, iRow, i);
    if( pC==0 || pC->nUsed+nRowByte>pC->nAlloc ){
      i64 nAlloc = nRowByte>PG_CHUNK ? nRowByte : PG_CHUNK;
      i64 nLimit = sqlite3_soft_heap_limit64(-1);
      if( nLimit>0 && sqlite3_memory_used()+nAlloc>nLimit ) return SQLITE_FULL;
      pC = sqlite3_malloc64(sizeof(PgChunk) + nAlloc);
      if( pC==0 ) return SQLITE_NOMEM;
      pC->pNext = 0;
      pC->nUsed = 0;
      pC->nAlloc = nAlloc;
      if( pCsr->pHeldLast ){
        pCsr->pHeldLast->pNext = pC;
      }else{
        pCsr->pHeld = pC;
        pCsr->iHeld = 0;
      }
      pCsr->pHeldLast = pC;
    }
    z = &pC->a[pC->nUsed];
    for(i=0; i<nField; i++){
      int n = PQgetisnull(pRes, iRow, i) ? -1 : PQgetlength(pRes, iRow, i);
      memcpy(z, &n, 4);
      z += 4;
      if( n>=0 ){
        memcpy(z, PQgetvalue(pRes, iRow, i), n);
        z[n] = 0;
        z += n+1;
      }
    }
    pC->nUsed = z - pC->a;
    pCsr->nHeldRow++;
  }
  return SQLITE_OK;
}

/* Make the next held row the current one (there is one). */
static void cursorHeldNext(PgCursor *pCsr){
  PgChunk *pC = pCsr->pHeld;
  const char *z;
  int i;
  if( pCsr->iHeld>=pC->nUsed ){
    /* This chunk is read: its memory goes back at once. */
    pCsr->pHeld = pC->pNext;
    if( pCsr->pHeld==0 ) pCsr->pHeldLast = 0;
    sqlite3_free(pC);
    pC = pCsr->pHeld;
    pCsr->iHeld = 0;
  }
  z = &pC->a[pCsr->iHeld];
  for(i=0; i<pCsr->nField; i++){
    int n;
    memcpy(&n, z, 4);
    z += 4;
    pCsr->anVal[i] = n;
    pCsr->azVal[i] = n<0 ? 0 : z;
    if( n>=0 ) z += n+1;
  }
  pCsr->iHeld = z - pC->a;
  pCsr->nHeldRow--;
  pCsr->bHeldRow = 1;
}

/* Another command needs the connection: keep the rest of the rows here.
** If they cannot be kept, the rest of the scan is read and dropped (or
** cancelled, outside a transaction) and the cursor reports why after the
** rows it kept. */
void fedPgCursorDrain(PgCursor *pCsr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  int n = 0, rc = SQLITE_OK;
  if( p==0 || !pCsr->bStreaming ) return;
  p->pActive = 0;
  pCsr->bStreaming = 0;
  while( (pRes = fedPgResult(p))!=0 ){
    ExecStatusType e = PQresultStatus(pRes);
    if( rc==SQLITE_OK && (e==PGRES_SINGLE_TUPLE || e==PGRES_TUPLES_OK) ){
      rc = cursorHold(pCsr, pRes);
      if( rc==SQLITE_NOMEM ){
        pCsr->bDrainLost = 1;
      }else if( rc==SQLITE_FULL ){
        pCsr->zDrainErr = sqlite3_mprintf("%s: the rest of a scan, held"
            " while another command used server \"%s\", would pass the"
            " soft heap limit (%lld bytes) (remote query: %s)", PG_STORE,
            p->base.pServer->zName, sqlite3_soft_heap_limit64(-1),
            pCsr->zSql ? pCsr->zSql : "");
        if( pCsr->zDrainErr==0 ) pCsr->bDrainLost = 1;
      }
    }else if( rc==SQLITE_OK && e!=PGRES_COMMAND_OK ){
      fedPgSetError(&pCsr->zDrainErr, p->pg, pRes, pCsr->zSql);
      rc = SQLITE_ERROR;
    }
    PQclear(pRes);
    if( rc!=SQLITE_OK && ++n==PG_DRAIN_BEFORE_CANCEL && !p->base.bTxn ){
      fedPgCancelAsync(p);
    }
  }
}

int fedPgOpen(FedCursor *pFedCsr, char **pzErr){
  PgCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->bEof = 1;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

void fedPgClose(FedCursor *pFedCsr){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorStop(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  sqlite3_free(pCsr);
}

/* Take the next result (streamed or buffered); 1 if a row, 0 at the end,
** or an error. */
static int cursorFetch(PgCursor *pCsr, int *pbRow, char **pzErr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  ExecStatusType e;
  *pbRow = 0;
  PQclear(pCsr->pRes);
  pCsr->pRes = 0;
  pCsr->iRow = 0;
  pCsr->bHeldRow = 0;
  if( pCsr->nHeldRow>0 ){
    cursorHeldNext(pCsr);
    *pbRow = 1;
    return SQLITE_OK;
  }else if( pCsr->bDrainLost ){
    pCsr->bDrainLost = 0;
    return SQLITE_NOMEM;
  }else if( pCsr->zDrainErr ){
    fedSetError(pzErr, "%s", pCsr->zDrainErr);
    sqlite3_free(pCsr->zDrainErr);
    pCsr->zDrainErr = 0;
    return SQLITE_ERROR;
  }else if( pCsr->bStreaming && p ){
    if( fedFault(FED_FAULT_RECV, pzErr) ){
      cursorStop(pCsr);
      return SQLITE_ERROR;
    }
    pRes = fedPgResult(p);
  }else{
    return SQLITE_OK;
  }
  if( pRes==0 ){
    if( pCsr->bStreaming ){
      pCsr->bStreaming = 0;
      if( p ){
        p->pActive = 0;
        fedExplainRows(pgCtx(p), pCsr->iExplain, pCsr->iRowid+1, 1);
      }
    }
    return SQLITE_OK;
  }
  e = PQresultStatus(pRes);
  if( e==PGRES_SINGLE_TUPLE || (e==PGRES_TUPLES_OK && PQntuples(pRes)>0) ){
    pCsr->pRes = pRes;
    *pbRow = 1;
    return SQLITE_OK;
  }
  if( e==PGRES_TUPLES_OK ){
    /* The end of the rows; the NULL after it frees the connection. */
    PQclear(pRes);
    return cursorFetch(pCsr, pbRow, pzErr);
  }
  fedPgSetError(pzErr, p ? p->pg : 0, pRes, pCsr->zSql);
  PQclear(pRes);
  if( pCsr->bStreaming && p ){
    while( (pRes = fedPgResult(p))!=0 ) PQclear(pRes);
    pCsr->bStreaming = 0;
    p->pActive = 0;
  }
  return SQLITE_ERROR;
}

int fedPgNext(FedCursor *pFedCsr, char **pzErr){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  int bRow, rc;
  if( pCsr->pRes && pCsr->iRow+1<PQntuples(pCsr->pRes) ){
    pCsr->iRow++;
    pCsr->iRowid++;
    return SQLITE_OK;
  }
  rc = cursorFetch(pCsr, &bRow, pzErr);
  if( rc!=SQLITE_OK || !bRow ){
    pCsr->bEof = 1;
    return rc;
  }
  pCsr->iRowid++;
  return SQLITE_OK;
}


/* True if the plan returns at most a few rows: = on the primary key, or
** a LIMIT of at most 100. */
static int pgSmallResult(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv
){
  int i;
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    if( t->iCol==pTab->iPk && t->op==FED_OP_EQ && t->bExact ) return 1;
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( n>=0 && n<=100 ) return 1;
  }
  return 0;
}

int fedPgFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  PgConn *p = (PgConn*)pTab->pServer->pConn;
  PgParams *pParams = &p->scan;
  PgSelect *pSel;
  int rc = SQLITE_OK;

  cursorStop(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  pCsr->zSql = 0;
  pCsr->pConn = p;
  pCsr->iRowid = 0;
  fedPgParamsReset(pParams);

  /* Reads see this connection's own buffered writes. */
  rc = fedPgFlush(&p->base, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  pSel = fedPgSelectFind(pTab, pFedCsr->pPlan, argc, argv, pFedCsr->bForUpdate,
                         pParams, &rc);
  if( pSel ){
    if( rc==SQLITE_OK ){
      memcpy(pCsr->aResCol, pSel->aResCol, sizeof(int)*pTab->nCol);
      pCsr->zSql = fedStrdup(pSel->zSql, -1);
      if( pCsr->zSql==0 ) rc = SQLITE_NOMEM;
    }
  }else{
    rc = fedPgDeparseSelect(pTab, pFedCsr->pPlan, argc, argv,
                            pFedCsr->bForUpdate, pCsr->aResCol, &pCsr->zSql,
                            pParams);
    if( rc==SQLITE_OK ){
      fedPgSelectKeep(pTab, pFedCsr->pPlan, argc, argv, pFedCsr->bForUpdate,
                      pCsr->aResCol, pCsr->zSql);
    }
  }
  if( rc!=SQLITE_OK ) goto cleanup;
  rc = fedPgReady(p, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  rc = fedPgSend(p, pCsr->zSql, pParams, &pCsr->iExplain, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  /* Rows stream one at a time, unless the plan promises a few (a key
  ** lookup, a small LIMIT): those arrive in one result, which saves libpq
  ** a result object per row. */
  if( !pgSmallResult(pTab, pFedCsr->pPlan, argc, argv)
   && !PQsetSingleRowMode(p->pg) ){
    fedPgSetError(pzErr, p->pg, 0, pCsr->zSql);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  pCsr->bStreaming = 1;
  pCsr->bEof = 0;
  p->pActive = pCsr;
  pCsr->iRowid = -1;
  rc = fedPgNext(pFedCsr, pzErr);

cleanup:
  /* A long IN list's buffer is not kept. */
  if( pParams->nBufAlloc>65536 || pParams->nAlloc>1024 ){
    fedPgParamsFree(pParams);
  }
  return rc;
}

int fedPgEof(FedCursor *pFedCsr){
  return ((PgCursor*)pFedCsr->pStoreCsr)->bEof;
}


int fedPgColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  const FedColumn *pCol = &pFedCsr->pTab->aCol[iCol];
  int iRes = pCsr->aResCol[iCol];
  const char *z;
  int n;
  if( iRes<0 || (pCsr->pRes==0 && !pCsr->bHeldRow) ) return SQLITE_OK;
  if( iCol!=pFedCsr->pTab->iPk && sqlite3_vtab_nochange(ctx) ){
    return SQLITE_OK;           /* UPDATE that does not change it */
  }
  if( pCsr->bHeldRow ){
    if( iRes<pCsr->nField && pCsr->azVal[iRes] ){
      fedPgValue(ctx, pCol, pCsr->azVal[iRes], pCsr->anVal[iRes]);
    }
    return SQLITE_OK;
  }
  if( PQgetisnull(pCsr->pRes, pCsr->iRow, iRes) ) return SQLITE_OK;
  z = PQgetvalue(pCsr->pRes, pCsr->iRow, iRes);
  n = PQgetlength(pCsr->pRes, pCsr->iRow, iRes);
  fedPgValue(ctx, pCol, z, n);
  return SQLITE_OK;
}

int fedPgRowid(FedCursor *pFedCsr, i64 *piRowid){
  *piRowid = ((PgCursor*)pFedCsr->pStoreCsr)->iRowid;
  return SQLITE_OK;
}
