/*
** queue.c: the transaction's write queue on the connection: queued puts,
** deletes and compares (EtcdOp), savepoint marks (xSavepoint, xRelease,
** xRollbackTo), and the read-your-writes overlay a scan merges in.
*/
#include "etcdInt.h"

/**************************************************************************
** The queue: EtcdConn.aOp[0..nOp), appended by write.c and undo.c, sent
** by txn.c (etcdCommit), emptied at the end of every transaction.
*/

static void opClear(EtcdOp *pOp){
  sqlite3_free(pOp->aKey);
  sqlite3_free(pOp->aVal);
  sqlite3_free(pOp->zTab);
  memset(pOp, 0, sizeof(*pOp));
}

/* Drop queued operations from iFrom on. */
static void queueTruncate(EtcdConn *p, int iFrom){
  while( p->nOp>iFrom ) opClear(&p->aOp[--p->nOp]);
}

void etcdQueueReset(EtcdConn *p){
  queueTruncate(p, 0);
  p->nMark = 0;
}

static int queueGrow(EtcdConn *p){
  if( p->nOp>=p->nOpAlloc ){
    int nNew = p->nOpAlloc ? p->nOpAlloc*2 : 16;
    EtcdOp *aNew = sqlite3_realloc64(p->aOp, sizeof(EtcdOp)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aOp = aNew;
    p->nOpAlloc = nNew;
  }
  return SQLITE_OK;
}

int etcdQueueAdd(
  EtcdConn *p, int eOp, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, const char *zTab
){
  EtcdOp *pOp;
  int rc = queueGrow(p);
  if( rc ) return rc;
  pOp = &p->aOp[p->nOp];
  memset(pOp, 0, sizeof(*pOp));
  pOp->eOp = (u8)eOp;
  pOp->iLease = iLease;
  pOp->iRev = p->iReadRev;
  pOp->aKey = etcdBytesDup(aKey, nKey, 0, &pOp->nKey);
  if( pOp->aKey==0 ) return SQLITE_NOMEM;
  if( aVal ){
    pOp->aVal = etcdBytesDup(aVal, nVal, 0, &pOp->nVal);
    if( pOp->aVal==0 ){ opClear(pOp); return SQLITE_NOMEM; }
  }
  if( zTab ){
    pOp->zTab = fedStrdup(zTab, -1);
    if( pOp->zTab==0 ){ opClear(pOp); return SQLITE_NOMEM; }
  }
  p->nOp++;
  return SQLITE_OK;
}

/* The last put or delete queued for remote key a, or -1.  *pbTouched:
** some operation (a compare too) names the key. */
int etcdQueueFind(EtcdConn *p, const char *a, int n, int *pbTouched){
  int i;
  *pbTouched = 0;
  for(i=p->nOp-1; i>=0; i--){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->nKey==n && memcmp(pOp->aKey, a, n)==0 ){
      *pbTouched = 1;
      if( pOp->eOp==OP_PUT || pOp->eOp==OP_DEL ) return i;
    }
  }
  return -1;
}

/**************************************************************************
** Read-your-writes: a scan (scan.c) returns the queued puts that match it
** and hides the remote rows of every queued key.
*/

int etcdKeyRefCmp(const void *pA, const void *pB){
  const EtcdKeyRef *a = (const EtcdKeyRef*)pA, *b = (const EtcdKeyRef*)pB;
  int c = etcdBytesCmp(a->a, a->n, b->a, b->n);
  return c ? c : a->iOp - b->iOp;
}

/* The queued puts and deletes, in key order, each key once (its last
** operation) if bLast, else all of them; those under aPrefix only when
** nPrefix>=0.  *paRef is sqlite3_malloc'd. */
int etcdQueueKeys(EtcdConn *p, const char *aPrefix, int nPrefix,
                  EtcdKeyRef **paRef, int *pnRef){
  EtcdKeyRef *a;
  int i, n = 0, j = 0;
  *paRef = 0;
  *pnRef = 0;
  if( p->nOp==0 ) return SQLITE_OK;
  a = sqlite3_malloc64(sizeof(EtcdKeyRef)*p->nOp);
  if( a==0 ) return SQLITE_NOMEM;
  for(i=0; i<p->nOp; i++){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->eOp!=OP_PUT && pOp->eOp!=OP_DEL ) continue;
    if( nPrefix>0 && (pOp->nKey<nPrefix
                      || memcmp(pOp->aKey, aPrefix, nPrefix)) ){
      continue;
    }
    a[n].a = pOp->aKey;
    a[n].n = pOp->nKey;
    a[n].iOp = i;
    n++;
  }
  qsort(a, n, sizeof(EtcdKeyRef), etcdKeyRefCmp);
  /* Keep the last operation of each key. */
  for(i=0; i<n; i++){
    if( i+1<n && etcdBytesCmp(a[i].a, a[i].n, a[i+1].a, a[i+1].n)==0 ) continue;
    a[j++] = a[i];
  }
  *paRef = a;
  *pnRef = j;
  return SQLITE_OK;
}

static int ownedCmpQsortAsc(const void *pA, const void *pB){
  const EtcdRow *a = &((const EtcdOwned*)pA)->row;
  const EtcdRow *b = &((const EtcdOwned*)pB)->row;
  int c = a->eCls!=b->eCls ? a->eCls - b->eCls
                           : etcdBytesCmp(a->aKey, a->nKey, b->aKey, b->nKey);
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
  EtcdKeyRef *aRef = 0;
  int nRef = 0, i, rc;
  rc = etcdQueueKeys(p, pET->aPrefix, pET->nPrefix, &aRef, &nRef);
  if( rc || nRef==0 ) return rc;
  pCsr->aSup = sqlite3_malloc64(sizeof(EtcdPoint)*nRef);
  pCsr->aPend = sqlite3_malloc64(sizeof(EtcdOwned)*nRef);
  if( pCsr->aSup==0 || pCsr->aPend==0 ) rc = SQLITE_NOMEM;
  for(i=0; i<nRef && rc==SQLITE_OK; i++){
    EtcdOp *pOp = &p->aOp[aRef[i].iOp];
    EtcdPoint *pt = &pCsr->aSup[pCsr->nSup];
    pt->eCls = 0;
    pt->a = etcdBytesDup(pOp->aKey, pOp->nKey, 0, &pt->n);
    if( pt->a==0 ){ rc = SQLITE_NOMEM; break; }
    pCsr->nSup++;
    if( pOp->eOp==OP_PUT ){
      EtcdRow r;
      memset(&r, 0, sizeof(r));
      r.aKey = &pOp->aKey[pET->nPrefix];
      r.nKey = pOp->nKey - pET->nPrefix;
      r.eCls = (u8)etcdClassOf(r.aKey, r.nKey);
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
** Savepoints are positions in the queue: aMark[i] is nOp when savepoint i
** began; ROLLBACK TO drops what was queued after it.  Nothing is sent.
*/

int etcdSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pConn;
  int i;
  (void)pzErr;
  (void)iRelease;
  if( iTo>p->nMarkAlloc ){
    int *aNew = sqlite3_realloc64(p->aMark, sizeof(int)*(iTo+8));
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aMark = aNew;
    p->nMarkAlloc = iTo+8;
  }
  /* Released levels (iRelease and above) are forgotten: iFrom is never
  ** above iRelease. */
  if( iFrom<p->nMark ) p->nMark = iFrom;
  for(i=p->nMark; i<iTo; i++) p->aMark[i] = p->nOp;
  p->nMark = iTo;
  return SQLITE_OK;
}

int etcdRelease(FedConn *pConn, int iLevel, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  if( iLevel<p->nMark ) p->nMark = iLevel;
  return SQLITE_OK;
}

int etcdRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  if( iLevel<p->nMark ){
    queueTruncate(p, p->aMark[iLevel]);
    p->nMark = iLevel+1;
  }
  return SQLITE_OK;
}
