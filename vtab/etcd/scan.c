/*
** scan.c: etcd cursors: xOpen, xFilter, xNext, xColumn.  A scan runs the
** steps planned from its EtcdScan (plan.c) page by page and merges in the
** transaction's own queued writes (queue.c).
*/
#include "etcdInt.h"

/**************************************************************************
** Scan.  A scan is a list of steps: range requests read page by page
** (page_size keys, continuing after the last key, every page at the
** revision of the first, so that a scan is one snapshot and memory stays
** at one page), the rows of the second class that the first range met
** (buffered, up to ETCD_BUFFER_*, so that ORDER BY key reads each key
** once), the exact keys of an IN list (one txn of range requests per
** max_txn_ops keys), or a probe: an ascending keys-only read of a range
** that collects its BLOB keys (few, usually none), which a points step then
** reads whole, in either order.  Probes find BLOB keys without reading
** every value, and without etcd's DESCEND sort, which re-sorts the whole
** range for every page.  Rows of this transaction's own queued writes are
** merged in, in key order when ORDER BY key was consumed.
*/

static void ownedFree(EtcdOwned *a, int n){
  int i;
  for(i=0; i<n; i++) sqlite3_free(a[i].aMem);
  sqlite3_free(a);
}

/* Copy a row into owned memory. */
int etcdOwnedSet(EtcdOwned *pOut, const EtcdRow *pRow){
  i64 n = (i64)pRow->nKey + (pRow->aVal ? pRow->nVal : 0) + 2;
  char *a = sqlite3_malloc64(n);
  if( a==0 ) return SQLITE_NOMEM;
  pOut->row = *pRow;
  if( pRow->nKey ) memcpy(a, pRow->aKey, pRow->nKey);
  a[pRow->nKey] = 0;
  pOut->row.aKey = a;
  if( pRow->aVal ){
    char *aVal = &a[pRow->nKey+1];
    if( pRow->nVal ) memcpy(aVal, pRow->aVal, pRow->nVal);
    aVal[pRow->nVal] = 0;
    pOut->row.aVal = aVal;
  }
  pOut->aMem = a;
  return SQLITE_OK;
}

static void bufferClear(EtcdCursor *pCsr){
  ownedFree(pCsr->aBuf, pCsr->nBuf);
  pCsr->aBuf = 0;
  pCsr->nBuf = pCsr->nBufAlloc = pCsr->iBuf = 0;
  pCsr->nBufBytes = 0;
}

static void foundClear(EtcdCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nFound; i++) sqlite3_free(pCsr->aFound[i].a);
  sqlite3_free(pCsr->aFound);
  pCsr->aFound = 0;
  pCsr->nFound = pCsr->nFoundAlloc = 0;
}

static void pageClear(EtcdCursor *pCsr){
  json_decref(pCsr->pPage);
  pCsr->pPage = 0;
  pCsr->pKvs = 0;
  pCsr->iKv = pCsr->nKv = 0;
}

static void stepsClear(EtcdCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nStep; i++){
    etcdRangeFree(&pCsr->aStep[i].r);
    etcdRangeFree(&pCsr->aStep[i].rAll);
  }
  pCsr->nStep = pCsr->iStep = 0;
}

/* Forget the scan (keeps the decode buffers). */
static void cursorReset(EtcdCursor *pCsr){
  int i;
  pageClear(pCsr);
  stepsClear(pCsr);
  bufferClear(pCsr);
  etcdScanFree(&pCsr->scan);
  ownedFree(pCsr->aPend, pCsr->nPend);
  pCsr->aPend = 0;
  pCsr->nPend = pCsr->iPend = 0;
  foundClear(pCsr);
  for(i=0; i<pCsr->nSup; i++) sqlite3_free(pCsr->aSup[i].a);
  sqlite3_free(pCsr->aSup);
  pCsr->aSup = 0;
  pCsr->nSup = 0;
  pCsr->bRemote = pCsr->bRemoteEof = 0;
  pCsr->bOverflow = 0;
  pCsr->iPoint = pCsr->iChunk = 0;
  pCsr->bMore = 0;
  memset(&pCsr->cur, 0, sizeof(pCsr->cur));
  pCsr->bEof = 1;
  pCsr->iRowid = 0;
}

/* Take the cursor off its connection's list. */
void etcdCursorDetach(EtcdCursor *pCsr){
  EtcdCursor **pp;
  if( pCsr->pConn==0 ) return;
  for(pp=&pCsr->pConn->pCsrList; *pp; pp=&(*pp)->pNextCsr){
    if( *pp==pCsr ){
      *pp = pCsr->pNextCsr;
      break;
    }
  }
  pCsr->pConn = 0;
  pCsr->pNextCsr = 0;
}

/*
** Put the cursor on the connection's list.  The first cursor of a
** statement outside a transaction starts a new snapshot: the statement's
** reads all happen at the revision its first request sees.
*/
static void cursorAttach(EtcdCursor *pCsr, EtcdConn *p){
  if( pCsr->pConn==p ) return;
  etcdCursorDetach(pCsr);
  if( p->pCsrList==0 && !p->base.bTxn ) p->iReadRev = 0;
  pCsr->pConn = p;
  pCsr->pNextCsr = p->pCsrList;
  p->pCsrList = pCsr;
}

static int stepAdd(EtcdCursor *pCsr, int eType, const EtcdRange *pR,
                   int mEmit, int mBuffer){
  EtcdStep *pStep;
  int rc = SQLITE_OK;
  if( pR && pR->bEmpty ) return SQLITE_OK;
  pStep = &pCsr->aStep[pCsr->nStep];
  memset(pStep, 0, sizeof(*pStep));
  pStep->eType = eType;
  pStep->mEmit = (u8)mEmit;
  pStep->mBuffer = (u8)mBuffer;
  pStep->bDesc = pCsr->scan.bDesc;
  if( pR ) rc = etcdRangeCopy(&pStep->r, pR);
  pCsr->nStep++;
  return rc;
}

/* Read the BLOB keys of range pR (class eCls): a keys-only ascending
** probe, then those keys whole, in the scan's order.  Keys only anyway:
** a plain range read costs the same. */
static int stepAddBlobs(EtcdCursor *pCsr, const EtcdRange *pR, int eCls){
  int rc;
  if( pR->bEmpty ) return SQLITE_OK;
  if( pCsr->scan.bKeysOnly && !pCsr->scan.bDesc ){
    return stepAdd(pCsr, STEP_SCAN, pR, CLS_MASK(eCls), 0);
  }
  rc = stepAdd(pCsr, STEP_SCAN, pR, CLS_MASK(eCls), 0);
  if( rc==SQLITE_OK ){
    EtcdStep *pProbe = &pCsr->aStep[pCsr->nStep-1];
    pProbe->bProbe = 1;
    pProbe->bDesc = 0;
    rc = etcdRangeCopy(&pProbe->rAll, pR);
  }
  if( rc==SQLITE_OK ){
    rc = stepAdd(pCsr, STEP_POINTS, 0, CLS_MASK(eCls), 0);
    pCsr->aStep[pCsr->nStep-1].bProbe = 1;
  }
  return rc;
}

/* Turn the scan into steps. */
static int stepsBuild(EtcdCursor *pCsr){
  EtcdScan *p = &pCsr->scan;
  int c1 = p->bDesc ? FED_KV_BLOB : FED_KV_TEXT;
  int c2 = 1-c1;
  EtcdRange *pR1 = &p->aPart[c1];
  EtcdRange *pR2 = &p->aPart[c2];
  EtcdRange lower, upper;
  int rc = SQLITE_OK;

  if( p->bEmpty ) return SQLITE_OK;
  if( p->bPoints ) return stepAdd(pCsr, STEP_POINTS, 0, 3, 0);
  if( pR2->bEmpty ) return stepAdd(pCsr, STEP_SCAN, pR1, CLS_MASK(c1), 0);
  if( pR1->bEmpty ) return stepAdd(pCsr, STEP_SCAN, pR2, CLS_MASK(c2), 0);

  /* Both classes, descending: the BLOB keys (probed), then the TEXT keys. */
  if( p->bDesc ){
    rc = stepAddBlobs(pCsr, pR1, c1);
    if( rc==SQLITE_OK ) rc = stepAdd(pCsr, STEP_SCAN, pR2, CLS_MASK(c2), 0);
    return rc;
  }

  /* Ascending: the TEXT range returns its keys and keeps (or, unordered,
  ** returns) the BLOB keys it meets; the rest of the BLOB range is read
  ** around it. */
  rc = stepAdd(pCsr, STEP_SCAN, pR1,
               CLS_MASK(c1) | (p->bOrdered ? 0 : CLS_MASK(c2)),
               p->bOrdered ? CLS_MASK(c2) : 0);
  memset(&lower, 0, sizeof(lower));
  memset(&upper, 0, sizeof(upper));
  if( rc==SQLITE_OK ) rc = etcdRangeCopy(&lower, pR2);
  if( rc==SQLITE_OK ) rc = etcdRangeCopy(&upper, pR2);
  if( rc==SQLITE_OK ){
    etcdRangeLowerHi(&lower, pR1->aLo, pR1->nLo, 0, &rc);
    if( pR1->bHiInf ){
      upper.bEmpty = 1;
    }else{
      etcdRangeRaiseLo(&upper, pR1->aHi, pR1->nHi, 0, &rc);
    }
  }
  if( rc==SQLITE_OK ) rc = stepAddBlobs(pCsr, &lower, c2);
  if( rc==SQLITE_OK && p->bOrdered ) rc = stepAdd(pCsr, STEP_BUFFER, 0, 0, 0);
  if( rc==SQLITE_OK ) rc = stepAddBlobs(pCsr, &upper, c2);
  etcdRangeFree(&lower);
  etcdRangeFree(&upper);
  return rc;
}

static void malformed(EtcdCursor *pCsr, char **pzErr, const char *zWhat){
  fedSetError(pzErr, "%s: malformed reply from server \"%s\": %s",
      ETCD_STORE, pCsr->pConn ? pCsr->pConn->base.pServer->zName : "?",
      zWhat);
}

/* Decode the key of kv into aKeyBuf.  Returns SQLITE_OK, NOMEM or ERROR
** (malformed). */
static int decodeKey(EtcdCursor *pCsr, json_t *pKv, char **pzErr){
  json_t *pKey = json_object_get(pKv, "key");
  int rc;
  if( !json_is_string(pKey) ){
    malformed(pCsr, pzErr, "a key-value pair without a key");
    return SQLITE_ERROR;
  }
  rc = fedBase64Decode(json_string_value(pKey),
                       (int)json_string_length(pKey), &pCsr->aKeyBuf,
                       &pCsr->nKeyAlloc, &pCsr->nKeyRemote);
  if( rc==SQLITE_MISMATCH ){
    malformed(pCsr, pzErr, "a key that is not base64");
    return SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && (pCsr->nKeyRemote<pCsr->pET->nPrefix
        || memcmp(pCsr->aKeyBuf, pCsr->pET->aPrefix, pCsr->pET->nPrefix)) ){
    malformed(pCsr, pzErr, "a key outside the requested range");
    return SQLITE_ERROR;
  }
  return rc;
}

/* Fill pCsr->remote from kv, whose key is in aKeyBuf already. */
static int decodeRow(EtcdCursor *pCsr, json_t *pKv, int bValue, char **pzErr){
  EtcdRow *r = &pCsr->remote;
  int nPrefix = pCsr->pET->nPrefix;
  memset(r, 0, sizeof(*r));
  r->aKey = &pCsr->aKeyBuf[nPrefix];
  r->nKey = pCsr->nKeyRemote - nPrefix;
  r->eCls = (u8)fedKvClass(r->aKey, r->nKey);
  fedJsonInt64(json_object_get(pKv, "create_revision"), &r->aRev[0]);
  fedJsonInt64(json_object_get(pKv, "mod_revision"), &r->aRev[1]);
  fedJsonInt64(json_object_get(pKv, "version"), &r->iVersion);
  fedJsonInt64(json_object_get(pKv, "lease"), &r->iLease);
  if( bValue ){
    json_t *pVal = json_object_get(pKv, "value");
    int rc;
    if( pVal==0 ){
      /* The gateway leaves out empty values. */
      r->aVal = "";
      r->nVal = 0;
    }else{
      rc = SQLITE_MISMATCH;
      if( json_is_string(pVal) ){
        rc = fedBase64Decode(json_string_value(pVal),
                             (int)json_string_length(pVal), &pCsr->aValBuf,
                             &pCsr->nValAlloc, &r->nVal);
      }
      if( rc==SQLITE_MISMATCH ){
        malformed(pCsr, pzErr, "a value that is not base64");
        return SQLITE_ERROR;
      }
      if( rc ) return rc;
      r->aVal = pCsr->aValBuf;
    }
  }
  return SQLITE_OK;
}

/* The first reply of a snapshot fixes its revision. */
void etcdNoteRevision(EtcdConn *p, json_t *pReply){
  if( p->iReadRev==0 ){
    fedJsonInt64(json_object_get(json_object_get(pReply, "header"),
                                 "revision"), &p->iReadRev);
  }
}

static int noConnection(EtcdCursor *pCsr, char **pzErr){
  (void)pCsr;
  fedSetError(pzErr, "%s: the connection was closed during the scan",
              ETCD_STORE);
  return SQLITE_ERROR;
}

/* Request the next page of a STEP_SCAN. */
static int scanFetch(EtcdCursor *pCsr, EtcdStep *pStep, char **pzErr){
  EtcdConn *p = pCsr->pConn;
  json_t *pReq, *pOut = 0;
  i64 iExplain = 0;
  int rc = SQLITE_OK;
  if( p==0 ) return noConnection(pCsr, pzErr);
  if( pStep->bStarted && pCsr->nKv>0 ){
    /* Continue after the last key of the previous page. */
    json_t *pLast = json_array_get(pCsr->pKvs, pCsr->nKv-1);
    rc = decodeKey(pCsr, pLast, pzErr);
    if( rc ) return rc;
    if( pStep->bDesc ){
      etcdRangeLowerHi(&pStep->r, &pCsr->aKeyBuf[pCsr->pET->nPrefix],
                       pCsr->nKeyRemote - pCsr->pET->nPrefix, 0, &rc);
    }else{
      etcdRangeRaiseLo(&pStep->r, &pCsr->aKeyBuf[pCsr->pET->nPrefix],
                       pCsr->nKeyRemote - pCsr->pET->nPrefix, 1, &rc);
    }
    if( rc ) return rc;
  }
  pageClear(pCsr);
  pStep->bStarted = 1;
  pCsr->bMore = 0;
  if( pStep->r.bEmpty ) return SQLITE_OK;
  pReq = etcdScanRequest(pCsr, pStep, &pStep->r,
                         !pStep->bSkipped && !pStep->bProbe, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, &iExplain, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  etcdNoteRevision(p, pOut);
  pCsr->pPage = pOut;
  pCsr->pKvs = json_object_get(pOut, "kvs");
  pCsr->nKv = json_is_array(pCsr->pKvs) ? json_array_size(pCsr->pKvs) : 0;
  pCsr->iKv = 0;
  pCsr->bMore = json_is_true(json_object_get(pOut, "more")) && pCsr->nKv>0;
  fedExplainRows(etcdCtx(p), iExplain, (i64)pCsr->nKv, 1);
  return SQLITE_OK;
}

/* The keys of a STEP_POINTS: an IN list, or what a probe found. */
static EtcdPoint *stepPoints(EtcdCursor *pCsr, const EtcdStep *pStep,
                             int *pn){
  if( pStep->bProbe ){
    *pn = pCsr->nFound;
    return pCsr->aFound;
  }
  *pn = pCsr->scan.nPoint;
  return pCsr->scan.aPoint;
}

/* Request the next chunk of STEP_POINTS keys: one range request, or one
** txn of range requests. */
static int pointsFetch(EtcdCursor *pCsr, EtcdStep *pStep, char **pzErr){
  EtcdConn *p = pCsr->pConn;
  EtcdScan *pScan = &pCsr->scan;
  json_t *pReq = 0, *pOut = 0, *pOps = 0;
  i64 iExplain = 0;
  int n, i, nPoint, rc = SQLITE_OK;
  EtcdPoint *aPoint = stepPoints(pCsr, pStep, &nPoint);
  if( p==0 ) return noConnection(pCsr, pzErr);
  pageClear(pCsr);
  n = nPoint - pCsr->iPoint;
  if( n>p->nMaxOps ) n = (int)p->nMaxOps;
  pCsr->iChunk = pCsr->iPoint;
  pCsr->bChunkTxn = n>1;
  if( n<=0 ){
    pCsr->bMore = 0;
    return SQLITE_OK;
  }
  if( n>1 ){
    pReq = etcdJsonNew(json_object(), &rc);
    pOps = etcdJsonNew(json_array(), &rc);
    etcdJsonSet(pReq, "success", pOps, &rc);
  }
  for(i=0; i<n && rc==SQLITE_OK; i++){
    EtcdPoint *pt = &aPoint[pCsr->iPoint+i];
    json_t *pRange = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pRange, "key", pCsr->pET->aPrefix, pCsr->pET->nPrefix, pt->a,
                   pt->n, &rc);
    etcdJsonSetRevision(p, pRange, &rc);
    if( pScan->bKeysOnly ){
      etcdJsonSet(pRange, "keys_only", etcdJsonNew(json_true(), &rc), &rc);
    }
    if( n==1 ){
      pReq = pRange;
    }else{
      json_t *pOp = etcdJsonNew(json_object(), &rc);
      etcdJsonSet(pOp, "request_range", pRange, &rc);
      etcdJsonAppend(pOps, pOp, &rc);
    }
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, n>1 ? "/v3/kv/txn" : "/v3/kv/range", pReq, 0, &pOut,
                  &iExplain, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  etcdNoteRevision(p, pOut);
  pCsr->pPage = pOut;
  pCsr->iKv = 0;
  pCsr->nKv = n;
  pCsr->iPoint += n;
  pCsr->bMore = pCsr->iPoint<nPoint;
  fedExplainRows(etcdCtx(p), iExplain, n, 1);
  return SQLITE_OK;
}

/* The kv of the iKv'th key of a STEP_POINTS reply, or NULL. */
static json_t *pointsKv(EtcdCursor *pCsr, size_t iKv){
  json_t *pRange = pCsr->pPage;
  if( pCsr->bChunkTxn ){
    pRange = json_object_get(json_array_get(
        json_object_get(pCsr->pPage, "responses"), iKv), "response_range");
  }
  return json_array_get(json_object_get(pRange, "kvs"), 0);
}

/* Is remote key a[0..n) written by this transaction? */
static int isSuppressed(EtcdCursor *pCsr, const char *a, int n){
  EtcdPoint pt;
  if( pCsr->nSup==0 ) return 0;
  pt.eCls = 0;
  pt.a = (char*)a;
  pt.n = n;
  return etcdPointFind(pCsr->aSup, pCsr->nSup, &pt);
}

/* Keep a row of the second class for the STEP_BUFFER.  Past the limits,
** drop the buffer and read the second range whole instead. */
static int bufferPush(EtcdCursor *pCsr, int eCls){
  EtcdScan *pScan = &pCsr->scan;
  const EtcdRow *r = &pCsr->remote;
  int rc;
  if( pCsr->bOverflow ) return SQLITE_OK;
  if( pCsr->nBuf>=ETCD_BUFFER_ROWS
   || pCsr->nBufBytes+r->nKey+r->nVal>ETCD_BUFFER_BYTES ){
    int i;
    bufferClear(pCsr);
    pCsr->bOverflow = 1;
    for(i=pCsr->iStep+1; i<pCsr->nStep; i++){
      etcdRangeFree(&pCsr->aStep[i].r);
      etcdRangeFree(&pCsr->aStep[i].rAll);
    }
    pCsr->nStep = pCsr->iStep+1;
    return stepAdd(pCsr, STEP_SCAN, &pScan->aPart[eCls], CLS_MASK(eCls), 0);
  }
  if( pCsr->nBuf>=pCsr->nBufAlloc ){
    int nNew = pCsr->nBufAlloc ? pCsr->nBufAlloc*2 : 16;
    EtcdOwned *aNew = sqlite3_realloc64(pCsr->aBuf, sizeof(EtcdOwned)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pCsr->aBuf = aNew;
    pCsr->nBufAlloc = nNew;
  }
  rc = etcdOwnedSet(&pCsr->aBuf[pCsr->nBuf], r);
  if( rc==SQLITE_OK ){
    pCsr->nBuf++;
    pCsr->nBufBytes += r->nKey + r->nVal;
  }
  return rc;
}

static void foundReverse(EtcdCursor *pCsr){
  int i, j;
  for(i=0, j=pCsr->nFound-1; i<j; i++, j--){
    EtcdPoint t = pCsr->aFound[i];
    pCsr->aFound[i] = pCsr->aFound[j];
    pCsr->aFound[j] = t;
  }
}

/* A probe found a key of its class.  Past ETCD_BUFFER_ROWS, the probe
** gives up: it becomes a plain read of its whole range, in the scan's
** order, and the points step after it goes. */
static int foundPush(EtcdCursor *pCsr, int eCls){
  const EtcdRow *r = &pCsr->remote;
  EtcdPoint *pt;
  if( pCsr->nFound>=ETCD_BUFFER_ROWS ){
    EtcdStep *pStep = &pCsr->aStep[pCsr->iStep];
    foundClear(pCsr);
    pageClear(pCsr);
    etcdRangeFree(&pStep->r);
    pStep->r = pStep->rAll;
    memset(&pStep->rAll, 0, sizeof(pStep->rAll));
    pStep->bProbe = 0;
    pStep->bDesc = pCsr->scan.bDesc;
    pStep->bStarted = 0;
    pStep->bSkipped = 0;
    if( pCsr->iStep+1<pCsr->nStep ){
      EtcdStep *pNext = &pCsr->aStep[pCsr->iStep+1];
      etcdRangeFree(&pNext->r);
      etcdRangeFree(&pNext->rAll);
      memmove(pNext, pNext+1,
              sizeof(EtcdStep)*(pCsr->nStep - pCsr->iStep - 2));
      pCsr->nStep--;
    }
    return SQLITE_OK;
  }
  if( pCsr->nFound>=pCsr->nFoundAlloc ){
    int nNew = pCsr->nFoundAlloc ? pCsr->nFoundAlloc*2 : 16;
    EtcdPoint *aNew = sqlite3_realloc64(pCsr->aFound, sizeof(EtcdPoint)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pCsr->aFound = aNew;
    pCsr->nFoundAlloc = nNew;
  }
  pt = &pCsr->aFound[pCsr->nFound];
  pt->eCls = (u8)eCls;
  pt->a = etcdBytesDup(r->aKey, r->nKey, 0, &pt->n);
  if( pt->a==0 ) return SQLITE_NOMEM;
  pCsr->nFound++;
  return SQLITE_OK;
}

/* Advance to the next remote row that the scan returns (pCsr->remote,
** bRemote), or to the end (bRemoteEof). */
static int remoteNext(EtcdCursor *pCsr, char **pzErr){
  int rc;
  pCsr->bRemote = 0;
  while( pCsr->iStep<pCsr->nStep ){
    EtcdStep *pStep = &pCsr->aStep[pCsr->iStep];
    json_t *pKv;
    int eCls, mClass;
    if( pStep->eType==STEP_BUFFER ){
      if( pCsr->iBuf<pCsr->nBuf ){
        pCsr->remote = pCsr->aBuf[pCsr->iBuf++].row;
        pCsr->bRemote = 1;
        return SQLITE_OK;
      }
      pCsr->iStep++;
      continue;
    }
    if( pCsr->iKv>=pCsr->nKv ){
      if( pStep->bStarted && !pCsr->bMore ){
        pageClear(pCsr);
        if( pStep->eType==STEP_POINTS && pStep->bProbe ) foundClear(pCsr);
        if( pStep->bProbe && pStep->eType==STEP_SCAN && pCsr->scan.bDesc ){
          foundReverse(pCsr);
        }
        pCsr->iPoint = 0;
        pCsr->iStep++;
        continue;
      }
      rc = pStep->eType==STEP_SCAN ? scanFetch(pCsr, pStep, pzErr)
                                   : pointsFetch(pCsr, pStep, pzErr);
      if( rc ) return rc;
      pStep->bStarted = 1;
      continue;
    }
    if( pStep->eType==STEP_SCAN ){
      pKv = json_array_get(pCsr->pKvs, pCsr->iKv);
    }else{
      pKv = pointsKv(pCsr, pCsr->iKv);
    }
    pCsr->iKv++;
    if( pKv==0 ) continue;                /* An IN key that is absent */
    rc = decodeKey(pCsr, pKv, pzErr);
    if( rc ) return rc;
    if( isSuppressed(pCsr, pCsr->aKeyBuf, pCsr->nKeyRemote)
     || (pCsr->nKeyRemote>=(int)sizeof(ETCD_RESERVED)-1
         && memcmp(pCsr->aKeyBuf, ETCD_RESERVED, sizeof(ETCD_RESERVED)-1)==0)
    ){
      pStep->bSkipped = 1;
      continue;
    }
    rc = decodeRow(pCsr, pKv, 0, pzErr);
    if( rc ) return rc;
    eCls = pCsr->remote.eCls;
    mClass = CLS_MASK(eCls);
    if( (mClass & (pStep->mEmit|pStep->mBuffer))==0
     || !etcdScanMatch(&pCsr->scan, eCls, pCsr->remote.aKey, pCsr->remote.nKey,
                       pCsr->remote.aRev) ){
      pStep->bSkipped = 1;
      continue;
    }
    if( !pCsr->scan.bKeysOnly ){
      rc = decodeRow(pCsr, pKv, 1, pzErr);
      if( rc ) return rc;
    }
    if( (mClass & pStep->mEmit) && pStep->bProbe
     && pStep->eType==STEP_SCAN ){
      rc = foundPush(pCsr, eCls);
      if( rc ) return rc;
      continue;
    }
    if( mClass & pStep->mEmit ){
      pCsr->bRemote = 1;
      return SQLITE_OK;
    }
    pStep->bSkipped = 1;
    rc = bufferPush(pCsr, eCls);
    if( rc ) return rc;
  }
  pCsr->bRemoteEof = 1;
  return SQLITE_OK;
}

/* Order of two rows in the scan's output. */
static int rowCmp(const EtcdScan *pScan, const EtcdRow *a, const EtcdRow *b){
  int c = a->eCls!=b->eCls ? a->eCls - b->eCls
                           : fedKvBytesCmp(a->aKey, a->nKey, b->aKey, b->nKey);
  return pScan->bDesc ? -c : c;
}

/* Advance to the next row of the cursor: remote rows and this
** transaction's own, then OFFSET and LIMIT. */
static int cursorStep(EtcdCursor *pCsr, char **pzErr){
  EtcdScan *pScan = &pCsr->scan;
  int rc;
  while( 1 ){
    if( pScan->nLimit==0 ){
      pCsr->bEof = 1;
      return SQLITE_OK;
    }
    if( !pCsr->bRemote && !pCsr->bRemoteEof ){
      rc = remoteNext(pCsr, pzErr);
      if( rc ) return rc;
    }
    if( pCsr->iPend<pCsr->nPend
     && (!pScan->bOrdered || !pCsr->bRemote
         || rowCmp(pScan, &pCsr->aPend[pCsr->iPend].row, &pCsr->remote)<0) ){
      pCsr->cur = pCsr->aPend[pCsr->iPend++].row;
    }else if( pCsr->bRemote ){
      pCsr->cur = pCsr->remote;
      pCsr->bRemote = 0;
    }else{
      pCsr->bEof = 1;
      return SQLITE_OK;
    }
    if( pScan->nOffset>0 ){
      pScan->nOffset--;
      continue;
    }
    if( pScan->nLimit>0 ) pScan->nLimit--;
    pCsr->iRowid++;
    return SQLITE_OK;
  }
}

int etcdOpen(FedCursor *pFedCsr, char **pzErr){
  EtcdCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->bEof = 1;
  pCsr->pET = (EtcdTable*)pFedCsr->pTab->pStoreTab;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

void etcdClose(FedCursor *pFedCsr){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  etcdCursorDetach(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->aKeyBuf);
  sqlite3_free(pCsr->aValBuf);
  sqlite3_free(pCsr);
  pFedCsr->pStoreCsr = 0;
}

/* Without a prefix, the local key '' is the remote key "", which etcd
** refuses to read ("key is not provided") and never holds: an IN list
** (or a value known only when the scan starts) that names it names no
** row, so the point goes. */
static void scanDropEmptyKey(EtcdScan *p){
  int i, j = 0;
  if( !p->bPoints ) return;
  for(i=0; i<p->nPoint; i++){
    if( p->aPoint[i].n==0 ){
      sqlite3_free(p->aPoint[i].a);
    }else{
      p->aPoint[j++] = p->aPoint[i];
    }
  }
  p->nPoint = j;
  if( j==0 ) p->bEmpty = 1;
}

int etcdFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  EtcdConn *p = (EtcdConn*)pTab->pServer->pConn;
  int rc;
  cursorReset(pCsr);
  cursorAttach(pCsr, p);
  rc = etcdScanPlan(pFedCsr->pPlan, argc, argv, &pCsr->scan);
  if( rc==SQLITE_OK && pCsr->pET->nPrefix==0 ) scanDropEmptyKey(&pCsr->scan);
  if( rc==SQLITE_OK ) rc = stepsBuild(pCsr);
  if( rc==SQLITE_OK && p->kv.nOp>0 ) rc = etcdOverlayBuild(pCsr);
  if( rc==SQLITE_OK ){
    pCsr->bEof = 0;
    rc = cursorStep(pCsr, pzErr);
  }
  if( rc!=SQLITE_OK ) pCsr->bEof = 1;
  return etcdRc(rc, pzErr);
}

int etcdNext(FedCursor *pFedCsr, char **pzErr){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  int rc = cursorStep(pCsr, pzErr);
  if( rc!=SQLITE_OK ) pCsr->bEof = 1;
  return etcdRc(rc, pzErr);
}

int etcdEof(FedCursor *pFedCsr){
  return ((EtcdCursor*)pFedCsr->pStoreCsr)->bEof;
}

/* Bytes as TEXT when valid UTF-8 without NUL, else as a BLOB. */
static void resultBytes(sqlite3_context *ctx, const char *a, int n){
  if( fedKvClass(a, n)==FED_KV_TEXT ){
    sqlite3_result_text(ctx, a, n, SQLITE_TRANSIENT);
  }else{
    sqlite3_result_blob(ctx, a, n, SQLITE_TRANSIENT);
  }
}

int etcdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  const EtcdRow *r = &pCsr->cur;
  if( r->aKey==0 ) return SQLITE_OK;
  switch( iCol ){
    case ETCD_COL_KEY:
      resultBytes(ctx, r->aKey, r->nKey);
      break;
    case ETCD_COL_VALUE:
      if( r->aVal ) resultBytes(ctx, r->aVal, r->nVal);
      break;
    case ETCD_COL_LEASE:
      if( r->iLease ) sqlite3_result_int64(ctx, r->iLease);
      break;
    default:
      /* Read-only columns: an UPDATE that does not set them leaves
      ** them "unchanged", so that one that does can be refused. */
      if( sqlite3_vtab_nochange(ctx) ) break;
      if( r->bOwn ) break;
      sqlite3_result_int64(ctx, iCol==ETCD_COL_VERSION ? r->iVersion
                                : r->aRev[iCol==ETCD_COL_MOD]);
      break;
  }
  return SQLITE_OK;
}

int etcdRowid(FedCursor *pFedCsr, i64 *piRowid){
  *piRowid = ((EtcdCursor*)pFedCsr->pStoreCsr)->iRowid;
  return SQLITE_OK;
}
