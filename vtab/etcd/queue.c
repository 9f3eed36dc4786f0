/*
** queue.c: the transaction's write queue on the connection: queued puts,
** deletes and compares (EtcdOp) in the batch layer's FedKvTxn (ext/kv.h),
** savepoint marks (xSavepoint, xRelease, xRollbackTo), the read-your-writes
** overlay a scan merges in, and etcd's driver of the layer.
*/
#include "etcdInt.h"

/**************************************************************************
** The queue: EtcdConn.kv, appended by write.c and undo.c, sent by txn.c
** (etcdCommit), emptied at the end of every transaction.
*/

/* The batch layer's driver (etcdKvDriver): etcd's part of an op. */
static void etcdKvOpFree(FedKvOp *pHdr){
  EtcdOp *pOp = (EtcdOp*)pHdr;
  sqlite3_free(pOp->aVal);
  sqlite3_free(pOp->zTab);
  pOp->aVal = 0;
  pOp->zTab = 0;
}

int etcdQueueAdd(
  EtcdConn *p, int eOp, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, const char *zTab
){
  EtcdOp *pOp = (EtcdOp*)fedKvOpNew(&p->kv, eOp,
                                    eOp==OP_PUT || eOp==OP_DEL, 0, aKey, nKey);
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->iLease = iLease;
  pOp->iRev = p->iReadRev;
  if( aVal ){
    pOp->aVal = etcdBytesDup(aVal, nVal, 0, &pOp->nVal);
    if( pOp->aVal==0 ){ fedKvOpDiscard(&p->kv); return SQLITE_NOMEM; }
  }
  if( zTab ){
    pOp->zTab = fedStrdup(zTab, -1);
    if( pOp->zTab==0 ){ fedKvOpDiscard(&p->kv); return SQLITE_NOMEM; }
  }
  return fedKvOpAppend(&p->kv);
}

/**************************************************************************
** Read-your-writes: a scan (scan.c) returns the queued puts that match it
** and hides the remote rows of every queued key.
*/

static int ownedCmpQsortAsc(const void *pA, const void *pB){
  const EtcdRow *a = &((const EtcdOwned*)pA)->row;
  const EtcdRow *b = &((const EtcdOwned*)pB)->row;
  int c = a->eCls!=b->eCls ? a->eCls - b->eCls
                           : fedKvBytesCmp(a->aKey, a->nKey, b->aKey, b->nKey);
  return c;
}
static int ownedCmpQsortDesc(const void *pA, const void *pB){
  return -ownedCmpQsortAsc(pA, pB);
}

/* Reads see the transaction's own writes: collect those under the
** table's prefix.  Puts that match the scan are returned by it; the remote
** rows of every written key are hidden. */
int etcdOverlayBuild(EtcdCursor *pCsr){
  EtcdConn *p = pCsr->pConn;
  EtcdTable *pET = pCsr->pET;
  FedKvRef *aRef = 0;
  int nRef = 0, i, rc;
  rc = fedKvKeys(&p->kv, FED_KV_LAST_WRITE, 0, pET->aPrefix, pET->nPrefix,
                &aRef, &nRef);
  if( rc || nRef==0 ) return rc;
  pCsr->aSup = sqlite3_malloc64(sizeof(EtcdPoint)*nRef);
  pCsr->aPend = sqlite3_malloc64(sizeof(EtcdOwned)*nRef);
  if( pCsr->aSup==0 || pCsr->aPend==0 ) rc = SQLITE_NOMEM;
  for(i=0; i<nRef && rc==SQLITE_OK; i++){
    EtcdOp *pOp = etcdOp(p, aRef[i].iOp);
    EtcdPoint *pt = &pCsr->aSup[pCsr->nSup];
    pt->eCls = 0;
    pt->a = etcdBytesDup(pOp->hdr.aKey, pOp->hdr.nKey, 0, &pt->n);
    if( pt->a==0 ){ rc = SQLITE_NOMEM; break; }
    pCsr->nSup++;
    if( pOp->hdr.eOp==OP_PUT ){
      EtcdRow r;
      memset(&r, 0, sizeof(r));
      r.aKey = &pOp->hdr.aKey[pET->nPrefix];
      r.nKey = pOp->hdr.nKey - pET->nPrefix;
      r.eCls = (u8)fedKvClass(r.aKey, r.nKey);
      r.aVal = pOp->aVal ? pOp->aVal : "";
      r.nVal = pOp->nVal;
      r.iLease = pOp->iLease;
      r.bOwn = 1;
      if( etcdScanMatch(&pCsr->scan, r.eCls, r.aKey, r.nKey, 0) ){
        rc = etcdOwnedSet(&pCsr->aPend[pCsr->nPend], &r);
        if( rc==SQLITE_OK ) pCsr->nPend++;
      }
    }
  }
  sqlite3_free(aRef);
  if( rc==SQLITE_OK && pCsr->nPend>1 ){
    qsort(pCsr->aPend, pCsr->nPend, sizeof(EtcdOwned),
          pCsr->scan.bDesc ? ownedCmpQsortDesc : ownedCmpQsortAsc);
  }
  return rc;
}

/**************************************************************************
** Savepoints are positions in the queue (ext/kv.c); ROLLBACK TO drops what
** was queued after one.  Nothing is sent, and no fault site is passed
** (etcd3 1.15).
*/

int etcdSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  return fedKvSavepoint(&((EtcdConn*)pConn)->kv, iRelease, iFrom, iTo,
                        pzErr);
}

int etcdRelease(FedConn *pConn, int iLevel, char **pzErr){
  (void)pzErr;
  fedKvRelease(&((EtcdConn*)pConn)->kv, iLevel);
  return SQLITE_OK;
}

int etcdRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  return fedKvRollbackTo(&((EtcdConn*)pConn)->kv, iLevel, pzErr);
}

static void etcdRenderKey(sqlite3_str *s, const char *a, int n){
  etcdAppendBytes(s, a, n, 100);
}

/* etcd as a batch store (ext/kv.h).  Members not named are NULL: no
** store state beside the queue, no statement flush, images compared as
** bytes, nothing held between reading and restoring a key. */
const FedKvDriver etcdKvDriver = {
  .zStore = ETCD_STORE,
  .szOp = sizeof(EtcdOp),
  .xOpFree = etcdKvOpFree,
  .xRenderKey = etcdRenderKey,
  .xApply = etcdKvApply,
  .xImageRead = etcdImageRead,
  .xImageRestore = etcdImageRestore,
};
