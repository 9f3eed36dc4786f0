/*
** cache/scan.c: a scan through the cache: the cache as a row source
** (fedCacheSource: answering xFilter from an entry and reading its rows),
** and the fill path (a new entry from the rows the store delivers;
** bounds, eviction, the fill transaction).
*/
#include "cacheInt.h"

/**************************************************************************
** Scans.
*/

static void cacheFillEnd(FedCursor *pCsr, int bComplete);
static void cacheFillRow(FedCursor *pCsr);
static int cacheFillSize(FedCursor *pCsr);

/* SQLite leaves a scan early.  With a pushed LIMIT that is the normal end:
** it stops at the LIMIT-th row without asking for the end; the store
** returned exactly those rows, so the entry is complete with this row. */
static void cacheFillLeave(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p->bFill==1 && p->pLimit
   && sqlite3_value_type(p->pLimit)==SQLITE_INTEGER
   && p->iSeq+1==sqlite3_value_int64(p->pLimit)
   && !pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillRow(pCsr);
    if( p->bFill==1 ) cacheFillEnd(pCsr, 1);
  }
  if( p->bFill ) cacheFillEnd(pCsr, 0);
}

/* The row source's xClose: free the cursor's cache state, abandoning an
** unfinished fill. */
static void cacheClose(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 ) return;
  cacheFillLeave(pCsr);
  fedCacheCsrReset(p);
  sqlite3_free(p);
  pCsr->pCache = 0;
}

/* Is the server of pTab carrying uncommitted writes of this transaction? */
static int cacheServerDirty(FedTable *pTab){
  FedServer *pServer = pTab->pServer;
  return pServer && pServer->pConn && pServer->pConn->bTxn
      && pServer->pConn->bWritten;
}

/* The commit of the fill transaction, once no fill is in progress. */
void fedCacheDbSettle(FedCacheDb *pDb){
  if( pDb->nFill==0 && pDb->bTxn ){
    if( fedCacheExec(pDb, "COMMIT")!=SQLITE_OK ) fedCacheExec(pDb, "ROLLBACK");
    pDb->bTxn = 0;
  }
}

/* Evict the least recently used entries of pCT's table until it fits in
** its bound; also drop entries past their TTL. */
static void cacheEvict(FedCacheTab *pCT, i64 iNow){
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  i64 nTotal = 0;
  if( sqlite3_prepare_v2(pDb->db, "SELECT id FROM fed_cache_entry"
        " WHERE tid=?1 AND created<=?2", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    sqlite3_bind_int64(pStmt, 2, iNow - pCT->nTtlMs);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      fedCacheEntryDelete(pDb, pCT->iTid, sqlite3_column_int64(pStmt, 0));
    }
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( sqlite3_prepare_v2(pDb->db, "SELECT sum(nbytes) FROM fed_cache_entry"
        " WHERE tid=?1 AND nrow>=0", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) nTotal = sqlite3_column_int64(pStmt,0);
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( nTotal<=pCT->nMaxBytes ) return;
  if( sqlite3_prepare_v2(pDb->db, "SELECT id, nbytes FROM fed_cache_entry"
        " WHERE tid=?1 AND nrow>=0 ORDER BY used, id", -1, &pStmt, 0)
      ==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    while( nTotal>pCT->nMaxBytes && sqlite3_step(pStmt)==SQLITE_ROW ){
      i64 iEntry = sqlite3_column_int64(pStmt, 0);
      nTotal -= sqlite3_column_int64(pStmt, 1);
      if( fedCacheEntryDelete(pDb, pCT->iTid, iEntry)==SQLITE_OK ){
        pCT->pStat->nEvict++;
      }
    }
  }
  sqlite3_finalize(pStmt);
}

/* Insert entry (nrow=-1: not readable yet) and its terms for request p,
** created at iCreated; *piEntry is its id. */
int fedCacheEntryCreate(FedCacheTab *pCT, FedCacheCsr *p, i64 iCreated,
                        i64 *piEntry){
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  int rc, i, j, n;
  *piEntry = 0;
  rc = sqlite3_prepare_v2(pDb->db, "INSERT INTO fed_cache_entry(tid, qkey,"
      " cols, nterm, blimit, created, used, nbytes, nrow)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, -1)", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    sqlite3_bind_text(pStmt, 2, p->zKey, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 3, (i64)p->cols);
    sqlite3_bind_int(pStmt, 4, p->nTerm);
    sqlite3_bind_int(pStmt, 5, p->pLimit!=0 || p->pOffset!=0);
    sqlite3_bind_int64(pStmt, 6, iCreated);
    sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK ) *piEntry = sqlite3_last_insert_rowid(pDb->db);
  }
  if( rc==SQLITE_OK && *piEntry>=((i64)1<<31) ) rc = SQLITE_FULL;
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(pDb->db, "INSERT INTO fed_cache_term(entry,"
        " termno, col, op, val) VALUES(?1, ?2, ?3, ?4, ?5)", -1, &pStmt, 0);
    for(i=0; rc==SQLITE_OK && i<p->nTerm; i++){
      CacheTerm *c = &p->aTerm[i];
      n = c->nVal ? c->nVal : 1;
      for(j=0; rc==SQLITE_OK && j<n; j++){
        sqlite3_bind_int64(pStmt, 1, *piEntry);
        sqlite3_bind_int(pStmt, 2, i);
        sqlite3_bind_int(pStmt, 3, c->iCol);
        sqlite3_bind_int(pStmt, 4, c->op);
        if( c->nVal ) rc = fedCacheBind(pStmt, 5, &c->aVal[j]);
        else rc = sqlite3_bind_null(pStmt, 5);
        if( rc==SQLITE_OK ){
          sqlite3_step(pStmt);
          rc = sqlite3_reset(pStmt);
        }
      }
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  }
  return rc;
}

/* Open the fill transaction if it is not open; count one more fill. */
int fedCacheFillBegin(FedCacheDb *pDb){
  if( !pDb->bTxn ){
    int rc = fedCacheExec(pDb, "BEGIN IMMEDIATE");
    if( rc ) return rc;
    pDb->bTxn = 1;
  }
  pDb->nFill++;
  return SQLITE_OK;
}

/* Start filling an entry for request p (the remote scan is open). */
static int cacheFillStart(FedCursor *pCsr, FedCacheCsr *p){
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  FedTable *pTab = pCsr->pTab;
  sqlite3_str *s;
  char *zSql;
  int rc, i;

  rc = fedCacheFillBegin(pDb);
  if( rc ) return rc;
  p->bFill = 1;
  p->iGen = pCT->iGen;
  p->iServerGen = pTab->pCtx->iCacheServerGen;
  p->iSeq = 0;
  p->iSized = 0;
  p->nBytes = 0;
  rc = fedCacheEntryCreate(pCT, p, fedCacheNow(), &p->iEntry);
  if( rc==SQLITE_OK ){
    s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "INSERT INTO fed_cache_r%lld(rowid, rid, rec)"
                        " VALUES(?1, fed_cache_rowid(), fed_cache_rec(",
                        pCT->iTid);
    for(i=0; i<pTab->nCol; i++){
      if( p->cols & (((u64)1)<<i) ){
        sqlite3_str_appendf(s, "%sfed_cache_col(%d)", i ? ", " : "", i);
      }else{
        sqlite3_str_appendf(s, "%sNULL", i ? ", " : "");
      }
    }
    sqlite3_str_appendall(s, "))");
    zSql = sqlite3_str_finish(s);
    if( zSql==0 ) rc = SQLITE_NOMEM;
    else{
      rc = sqlite3_prepare_v2(pDb->db, zSql, -1, &p->pIns, 0);
      sqlite3_free(zSql);
    }
  }
  if( rc ) cacheFillEnd(pCsr, 0);
  return rc;
}

/* Finish the fill: complete the entry (and evict), or delete it. */
static void cacheFillEnd(FedCursor *pCsr, int bComplete){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  i64 iNow = fedCacheNow();
  int rc = SQLITE_OK;
  if( !p->bFill ) return;
  p->bFill = 0;
  sqlite3_finalize(p->pIns);
  p->pIns = 0;
  if( bComplete && p->iGen==pCT->iGen && p->iEntry>0
   && p->iServerGen==pCsr->pTab->pCtx->iCacheServerGen ){
    sqlite3_stmt *pStmt = 0;
    if( p->iSized<p->iSeq ){
      p->iSeq--;                /* (cacheFillSize counts up to iSeq) */
      rc = cacheFillSize(pCsr);
      p->iSeq++;
    }
    if( rc==SQLITE_OK && p->nBytes>pCT->nMaxBytes ) rc = SQLITE_FULL;
    if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(pDb->db, "UPDATE fed_cache_entry SET nrow=?2,"
        " nbytes=?3, used=?4 WHERE id=?1", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(pStmt, 1, p->iEntry);
      sqlite3_bind_int64(pStmt, 2, p->iSeq);
      sqlite3_bind_int64(pStmt, 3, p->nBytes);
      sqlite3_bind_int64(pStmt, 4, iNow);
      sqlite3_step(pStmt);
      rc = sqlite3_finalize(pStmt);
    }
    if( rc==SQLITE_OK ){
      pCT->pStat->nFill++;
      cacheEvict(pCT, iNow);
      if( pCT->zL2 ) fedCacheL2Put(pCsr, p->iEntry);
    }
  }else{
    rc = SQLITE_ABORT;
  }
  if( rc!=SQLITE_OK && p->iEntry>0 ){
    fedCacheEntryDelete(pDb, pCT->iTid, p->iEntry);
  }
  p->iEntry = 0;
  pDb->nFill--;
  fedCacheDbSettle(pDb);
}

/* Add the bytes of the rows filled since the last count to p->nBytes:
** the bytes of their records plus a per-row overhead.  Counted every
** CACHE_SIZE_EVERY rows and at the end, with one query over the rows just
** written (cheaper than a count per row). */
static int cacheFillSize(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  zSql = sqlite3_mprintf("SELECT count(*)*%d+total(length(rec)) FROM"
      " fed_cache_r%lld WHERE rowid BETWEEN ?1 AND ?2", CACHE_ROW_OVERHEAD,
      pCT->iTid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pCT->pDb->db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, (p->iEntry<<32) + p->iSized);
  sqlite3_bind_int64(pStmt, 2, (p->iEntry<<32) + p->iSeq);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    p->nBytes += sqlite3_column_int64(pStmt, 0);
  }
  rc = sqlite3_finalize(pStmt);
  p->iSized = p->iSeq+1;
  return rc;
}

/* Copy the cursor's current row into the entry being filled. */
static void cacheFillRow(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheDb *pDb = p->pCT->pDb;
  int rc;
  if( p->iGen!=p->pCT->iGen || p->iSeq>=0xffffffff
   || p->iServerGen!=pCsr->pTab->pCtx->iCacheServerGen ){
    cacheFillEnd(pCsr, 0);
    return;
  }
  sqlite3_bind_int64(p->pIns, 1, (p->iEntry<<32) + p->iSeq);
  pDb->pFillCsr = pCsr;
  sqlite3_step(p->pIns);
  pDb->pFillCsr = 0;
  rc = sqlite3_reset(p->pIns);
  if( rc==SQLITE_OK && ((p->iSeq+1) % CACHE_SIZE_EVERY)==0 ){
    rc = cacheFillSize(pCsr);
  }
  if( rc==SQLITE_OK ){
    p->iSeq++;
    if( p->nBytes>p->pCT->nMaxBytes ){
      cacheFillEnd(pCsr, 0);
    }
  }else{
    cacheFillEnd(pCsr, 0);
  }
}

/* Decode the row pRead is on into p->aCell.  SQLITE_ROW, or
** SQLITE_CORRUPT. */
static int cacheReadRow(FedCacheCsr *p){
  const u8 *a = (const u8*)sqlite3_column_blob(p->pRead, 1);
  int n = sqlite3_column_bytes(p->pRead, 1);
  if( fedCacheRecDecode(a, n, p->aCell, p->pCT->pTab->nCol, 0) ){
    return SQLITE_CORRUPT;
  }
  return SQLITE_ROW;
}

/* Called by xFilter before the store is asked.  *pbHit=1: the scan is
** answered from the cache (pCsr->pCache->pRead positioned on the first
** row).  Otherwise the scan goes to the store, and pCsr->pCache, when
** set, asks for a fill (fedCacheFilled after the store's xFilter). */
static int cacheFilter(FedCursor *pCsr, FedConn *pConn, int argc,
                       sqlite3_value **argv, int *pbHit, char **pzErr){
  FedTable *pTab = pCsr->pTab;
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT;
  i64 iEntry = 0;
  int rc, bSame = 0;

  *pbHit = 0;
  if( p ){
    cacheFillLeave(pCsr);
    fedCacheCsrReset(p);
  }
  if( !pTab->bCacheInit ){
    rc = fedCacheTabInit(pTab, pzErr);
    if( rc ) return rc;
  }
  pCT = pTab->pCache;
  if( pCT==0 ) return SQLITE_OK;
  /* A scan of a table that the current transaction writes (the scan of
  ** an UPDATE or DELETE, also inside BEGIN...COMMIT where bForUpdate is
  ** not set, or any read after a write) reads the store: the write needs
  ** the rows as they are now, read under the store's guard (Redis WATCH,
  ** etcd revisions, PostgreSQL locks). */
  if( pCsr->bForUpdate || pTab->iWriteTxn==pTab->pCtx->iTxn || pCT->bDirty
   || cacheServerDirty(pTab) ){
    return SQLITE_OK;
  }
  rc = fedCacheTabReady(pCT, pzErr);
  if( rc ) return rc;
  if( pCT->bNotify ){
    /* Without a connection that listens, nothing cached can be trusted
    ** beyond what its TTL allows... and entries made before the LISTEN
    ** began may have missed a change: they go. */
    if( pConn==0 || fedCacheListen(pCT, pConn)!=SQLITE_OK ) return SQLITE_OK;
    if( fedCacheApplyChanges(pTab, pConn)!=SQLITE_OK ) return SQLITE_OK;
    /* A subscription found lost is made again at once. */
    if( pConn->iListen==0 && fedCacheListen(pCT, pConn)!=SQLITE_OK ){
      return SQLITE_OK;
    }
  }
  if( p==0 ){
    p = sqlite3_malloc64(sizeof(*p));
    if( p==0 ) return SQLITE_NOMEM;
    memset(p, 0, sizeof(*p));
    pCsr->pCache = p;
  }
  p->pCT = pCT;
  p->iL2Gen = -1;
  rc = fedCacheRequest(pCsr, p, argc, argv);
  if( rc==SQLITE_OK ) rc = fedCacheLookup(p, pTab, &iEntry, &bSame);
  if( rc==SQLITE_OK && iEntry==0 && pCT->zL2 ){
    rc = fedCacheL2Get(pCsr, &iEntry);
    bSame = 1;                  /* An L2 entry is made for the request */
  }
  if( rc==SQLITE_OK && iEntry ){
    rc = fedCacheReadPrepare(pCsr, p, iEntry, bSame);
    if( rc==SQLITE_OK ){
      rc = sqlite3_step(p->pRead);
      if( rc==SQLITE_ROW ) rc = cacheReadRow(p);
      if( rc==SQLITE_ROW || rc==SQLITE_DONE ){
        p->bEof = rc==SQLITE_DONE;
        rc = SQLITE_OK;
        *pbHit = 1;
        pCT->pStat->nHit++;
        fedCacheTouch(pCT, iEntry);
        return SQLITE_OK;
      }
      if( rc!=SQLITE_CORRUPT ) rc = sqlite3_errcode(pCT->pDb->db);
      if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_NOMEM ) return rc;
  /* Any other trouble with the cache: ask the store, do not fill. */
  if( rc ){
    fedCacheCsrReset(p);
    return SQLITE_OK;
  }
  pCT->pStat->nMiss++;
  p->bFill = 2;                 /* Wanted: fedCacheFilled() starts it */
  return SQLITE_OK;
}

/* After the store's xFilter succeeded: start the fill that cacheFilter()
** asked for (and finish it at once when the scan is empty). */
int fedCacheFilled(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  int rc;
  if( p==0 || p->bFill!=2 ) return SQLITE_OK;
  p->bFill = 0;
  rc = cacheFillStart(pCsr, p);
  if( rc==SQLITE_NOMEM ) return rc;
  if( rc==SQLITE_OK && pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillEnd(pCsr, 1);
  }
  return SQLITE_OK;
}

/* The store's xFilter failed: forget the wanted fill. */
void fedCacheFailed(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 ) return;
  if( p->bFill==1 ) cacheFillEnd(pCsr, 0);
  p->bFill = 0;
}

/* xNext while filling: copy the current row before the store moves on;
** after the store's xNext, fedCacheAfterNext() completes at the end. */
void fedCacheBeforeNext(FedCursor *pCsr){
  if( pCsr->pCache!=0 && pCsr->pCache->bFill==1 ) cacheFillRow(pCsr);
}

void fedCacheAfterNext(FedCursor *pCsr, int rc){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 || p->bFill!=1 ) return;
  if( rc!=SQLITE_OK ){
    cacheFillEnd(pCsr, 0);      /* A failed scan is never cached */
  }else if( pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillEnd(pCsr, 1);
  }
}

/* Serving from the cache. */
static int cacheNext(FedCursor *pCsr, char **pzErr){
  FedCacheCsr *p = pCsr->pCache;
  int rc = sqlite3_step(p->pRead);
  if( rc==SQLITE_ROW ) rc = cacheReadRow(p);
  if( rc==SQLITE_ROW ) return SQLITE_OK;
  if( rc==SQLITE_DONE ){ p->bEof = 1; return SQLITE_OK; }
  if( rc==SQLITE_CORRUPT ){
    fedSetError(pzErr, "%s: reading cache database \"%s\": malformed row",
                pCsr->pTab->pStore->zName, p->pCT->zDbPath);
    return SQLITE_CORRUPT;
  }
  rc = sqlite3_errcode(p->pCT->pDb->db);
  if( rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: reading cache database \"%s\": %s",
                pCsr->pTab->pStore->zName, p->pCT->zDbPath,
                sqlite3_errmsg(p->pCT->pDb->db));
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int cacheEof(FedCursor *pCsr){
  return pCsr->pCache->bEof;
}

static int cacheColumn(FedCursor *pCsr, sqlite3_context *ctx, int iCol){
  fedCacheCellResult(ctx, &pCsr->pCache->aCell[iCol]);
  return SQLITE_OK;
}

static int cacheRowid(FedCursor *pCsr, i64 *piRowid){
  *piRowid = sqlite3_column_int64(pCsr->pCache->pRead, 0);
  return SQLITE_OK;
}

/* The cache as a row source (vtab.c): xFilter takes the scan when an entry
** answers it, else leaves it to the store (and may ask for a fill). */
const FedRowSource fedCacheSource = {
  fedCacheWantsConn, cacheFilter, cacheNext, cacheEof, cacheColumn,
  cacheRowid, cacheClose
};
