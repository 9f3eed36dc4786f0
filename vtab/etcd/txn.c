/*
** txn.c: etcd transactions: xBegin; xCommit sending the queue as one
** /v3/kv/txn (its compares, and the failure reads that say which one
** failed); xRollback; commit markers and fences (xMarkerCheck,
** xMarkerRemove, xMarkerList).
*/
#include "etcdInt.h"

/**************************************************************************
** Transactions.  The queue is the transaction: xBegin starts it, each
** write appends, savepoints are positions in it, and xCommit sends it as
** one txn whose compares guard the keys read for update and the keys
** INSERT creates; etcd applies all of it or none.  Nothing is remote
** before the commit, so ROLLBACK, SAVEPOINT and ROLLBACK TO send nothing
** (and never reach the rollback and savepoint fault sites).  The queue,
** its marks and the commit's skeleton are the batch layer's (ext/kv.h).
*/
int etcdBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  fedKvBegin(&p->kv, bSnapshot);
  /* BEGIN...COMMIT reads one snapshot, taken at its first read.  A write
  ** outside BEGIN keeps the snapshot its statement has read. */
  if( bSnapshot ) p->iReadRev = 0;
  return SQLITE_OK;
}

/* Compare a key of the failure branch's reply: 1 if the compare queued
** for it (pCmp) fails now. */
static int compareFailed(const EtcdOp *pCmp, json_t *pKv){
  i64 iMod = 0;
  if( pCmp->hdr.eOp==OP_CMP_ABSENT ) return pKv!=0;
  if( pCmp->hdr.eOp==OP_CMP_REV ){
    if( pKv==0 ) return 0;
    fedJsonInt64(json_object_get(pKv, "mod_revision"), &iMod);
    return iMod>pCmp->iRev;
  }
  if( pKv==0 ) return 1;
  fedJsonInt64(json_object_get(pKv, "mod_revision"), &iMod);
  return pCmp->iRev>0 && iMod>pCmp->iRev;
}

/* Build and send the txn of the queue. */
static int commitSend(EtcdConn *p, char **pzErr){
  FedKvRef *aKey = 0, *aCmp = 0;
  int nKey = 0, nCmp = 0, nCmpOps = 0, i, rc;
  json_t *pReq = 0, *pOut = 0, *pCompare = 0, *pSuccess = 0, *pFailure = 0;
  const char *zServer = p->base.pServer->zName;
  const char *zMarker = p->base.zMarker;
  i64 iExplain = 0;

  rc = fedKvKeys(&p->kv, FED_KV_LAST_WRITE, 0, 0, -1, &aKey, &nKey);
  if( rc ) return rc;
  /* The compares, the first one of each key. */
  rc = fedKvKeys(&p->kv, FED_KV_FIRST_GUARD, 0, 0, -1, &aCmp, &nCmp);
  if( rc ) goto cleanup;
  for(i=0; i<nCmp; i++){
    const EtcdOp *pOp = etcdOp(p, aCmp[i].iOp);
    nCmpOps += (pOp->hdr.eOp==OP_CMP_SAME && pOp->iRev>0) ? 2 : 1;
  }
  if( zMarker ) nCmpOps++;
  if( nKey==0 && zMarker==0 ) goto cleanup;   /* Nothing was written */
  if( nKey+(zMarker ? 1 : 0)>p->nMaxOps || nCmpOps>p->nMaxOps ){
    fedSetError(pzErr, "%s: this transaction writes %d keys with %d"
        " compares; server \"%s\" takes at most %lld operations of each in"
        " one transaction (etcd's --max-txn-ops; set max_txn_ops= in the"
        " fed_server() options to match); nothing was written", ETCD_STORE,
        nKey+(zMarker ? 1 : 0), nCmpOps, zServer, p->nMaxOps);
    rc = SQLITE_ERROR;
    goto cleanup;
  }

  if( nCmp==0 && nKey==1 && zMarker==0 ){
    /* One blind write: a plain put or deleterange. */
    EtcdOp *pOp = etcdOp(p, aKey[0].iOp);
    pReq = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pReq, "key", 0, 0, pOp->hdr.aKey, pOp->hdr.nKey, &rc);
    if( pOp->hdr.eOp==OP_PUT ){
      etcdJsonSetKey(pReq, "value", 0, 0, pOp->aVal, pOp->nVal, &rc);
      if( pOp->iLease ){
        etcdJsonSet(pReq, "lease", etcdJsonInt(pOp->iLease, &rc), &rc);
      }
    }
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, pOp->hdr.eOp==OP_PUT ? "/v3/kv/put"
                                            : "/v3/kv/deleterange",
                    pReq, FED_FAULT_COMMIT, &pOut, &iExplain, pzErr);
    }
    if( rc==SQLITE_OK ) fedExplainRows(etcdCtx(p), iExplain, 1, 1);
    goto cleanup;
  }

  pReq = etcdJsonNew(json_object(), &rc);
  pCompare = etcdJsonNew(json_array(), &rc);
  etcdJsonSet(pReq, "compare", pCompare, &rc);
  pSuccess = etcdJsonNew(json_array(), &rc);
  etcdJsonSet(pReq, "success", pSuccess, &rc);
  if( nCmp>0 || zMarker ){
    pFailure = etcdJsonNew(json_array(), &rc);
    etcdJsonSet(pReq, "failure", pFailure, &rc);
  }
  for(i=0; i<nCmp && rc==SQLITE_OK; i++){
    const EtcdOp *pOp = etcdOp(p, aCmp[i].iOp);
    json_t *pC = etcdJsonNew(json_object(), &rc);
    json_t *pRange = etcdJsonNew(json_object(), &rc);
    json_t *pF = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pC, "key", 0, 0, pOp->hdr.aKey, pOp->hdr.nKey, &rc);
    if( pOp->hdr.eOp==OP_CMP_ABSENT ){
      etcdJsonSet(pC, "target", etcdJsonNew(json_string("CREATE"), &rc), &rc);
      etcdJsonSet(pC, "result", etcdJsonNew(json_string("EQUAL"), &rc), &rc);
      etcdJsonSet(pC, "create_revision", etcdJsonInt(0, &rc), &rc);
      etcdJsonAppend(pCompare, pC, &rc);
    }else if( pOp->hdr.eOp==OP_CMP_REV ){
      etcdJsonSet(pC, "target", etcdJsonNew(json_string("MOD"), &rc), &rc);
      etcdJsonSet(pC, "result", etcdJsonNew(json_string("LESS"), &rc), &rc);
      etcdJsonSet(pC, "mod_revision", etcdJsonInt(pOp->iRev+1, &rc), &rc);
      etcdJsonAppend(pCompare, pC, &rc);
    }else{
      if( pOp->iRev>0 ){
        etcdJsonSet(pC, "target", etcdJsonNew(json_string("MOD"), &rc), &rc);
        etcdJsonSet(pC, "result", etcdJsonNew(json_string("LESS"), &rc), &rc);
        etcdJsonSet(pC, "mod_revision", etcdJsonInt(pOp->iRev+1, &rc), &rc);
        etcdJsonAppend(pCompare, pC, &rc);
        pC = etcdJsonNew(json_object(), &rc);
        etcdJsonSetKey(pC, "key", 0, 0, pOp->hdr.aKey, pOp->hdr.nKey, &rc);
      }
      etcdJsonSet(pC, "target", etcdJsonNew(json_string("VERSION"), &rc), &rc);
      etcdJsonSet(pC, "result", etcdJsonNew(json_string("GREATER"), &rc), &rc);
      etcdJsonSet(pC, "version", etcdJsonInt(0, &rc), &rc);
      etcdJsonAppend(pCompare, pC, &rc);
    }
    etcdJsonSetKey(pRange, "key", 0, 0, pOp->hdr.aKey, pOp->hdr.nKey, &rc);
    etcdJsonSet(pRange, "keys_only", etcdJsonNew(json_true(), &rc), &rc);
    etcdJsonSet(pF, "request_range", pRange, &rc);
    etcdJsonAppend(pFailure, pF, &rc);
  }
  for(i=0; i<nKey && rc==SQLITE_OK; i++){
    const EtcdOp *pOp = etcdOp(p, aKey[i].iOp);
    json_t *pS = etcdJsonNew(json_object(), &rc);
    json_t *pW = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pW, "key", 0, 0, pOp->hdr.aKey, pOp->hdr.nKey, &rc);
    if( pOp->hdr.eOp==OP_PUT ){
      etcdJsonSetKey(pW, "value", 0, 0, pOp->aVal, pOp->nVal, &rc);
      if( pOp->iLease ){
        etcdJsonSet(pW, "lease", etcdJsonInt(pOp->iLease, &rc), &rc);
      }
      etcdJsonSet(pS, "request_put", pW, &rc);
    }else{
      etcdJsonSet(pS, "request_delete_range", pW, &rc);
    }
    etcdJsonAppend(pSuccess, pS, &rc);
  }
  if( zMarker && rc==SQLITE_OK ){
    /* The marker key must be absent: a fence (etcdMarkerCheck) written by
    ** recovery meanwhile makes this txn fail, whenever it arrives.  Its
    ** value is read in the failure branch, after the other compares'. */
    json_t *pC = etcdJsonNew(json_object(), &rc);
    json_t *pRange = etcdJsonNew(json_object(), &rc);
    json_t *pF = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pC, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zMarker,
                   (int)strlen(zMarker), &rc);
    etcdJsonSet(pC, "target", etcdJsonNew(json_string("CREATE"), &rc), &rc);
    etcdJsonSet(pC, "result", etcdJsonNew(json_string("EQUAL"), &rc), &rc);
    etcdJsonSet(pC, "create_revision", etcdJsonInt(0, &rc), &rc);
    etcdJsonAppend(pCompare, pC, &rc);
    etcdJsonSetKey(pRange, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1,
                   zMarker, (int)strlen(zMarker), &rc);
    etcdJsonSet(pF, "request_range", pRange, &rc);
    etcdJsonAppend(pFailure, pF, &rc);
  }
  if( zMarker && rc==SQLITE_OK ){
    /* The commit marker, in the same txn as the writes. */
    json_t *pS = etcdJsonNew(json_object(), &rc);
    json_t *pW = etcdJsonNew(json_object(), &rc);
    char zTime[32];
    sqlite3_snprintf(sizeof(zTime), zTime, "%lld", (i64)time(0));
    etcdJsonSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zMarker,
                   (int)strlen(zMarker), &rc);
    etcdJsonSetKey(pW, "value", 0, 0, zTime, (int)strlen(zTime), &rc);
    etcdJsonSet(pS, "request_put", pW, &rc);
    etcdJsonAppend(pSuccess, pS, &rc);
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/txn", pReq, FED_FAULT_COMMIT, &pOut, &iExplain,
                  pzErr);
    /* Sent, and no reply: etcd may have applied it (once proposed to raft
    ** it is applied even if this connection is gone).  The marker says. */
    if( rc==SQLITE_ERROR && zMarker && p->bMaybeSent ){
      p->base.bUnknown = 1;
    }
  }
  if( rc==SQLITE_OK ) fedExplainRows(etcdCtx(p), iExplain, nKey, 1);
  if( rc==SQLITE_OK && zMarker
   && !json_is_true(json_object_get(pOut, "succeeded")) ){
    /* Did the marker's compare fail?  Then the marker key exists: this
    ** very txn was applied already (a request sent twice), or recovery
    ** fenced it. */
    json_t *pKv = json_array_get(json_object_get(json_object_get(
        json_array_get(json_object_get(pOut, "responses"), nCmp),
        "response_range"), "kvs"), 0);
    if( pKv ){
      json_t *pVal = json_object_get(pKv, "value");
      char *aVal = 0;
      int nAlloc = 0, nVal = 0;
      int rc2 = json_is_string(pVal)
          ? fedBase64Decode(json_string_value(pVal),
                (int)json_string_length(pVal), &aVal, &nAlloc, &nVal)
          : SQLITE_MISMATCH;
      if( rc2==SQLITE_NOMEM ){
        rc = SQLITE_NOMEM;
      }else if( rc2==SQLITE_OK && nVal>=(int)sizeof(ETCD_FENCE)-1
             && memcmp(aVal, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0 ){
        fedSetError(pzErr, "%s: the commit of this transaction on server"
            " \"%s\" was fenced off by recovery, which found no marker;"
            " nothing was written", ETCD_STORE, zServer);
        rc = SQLITE_ERROR;
      }else{
        json_decref(pOut);
        pOut = json_pack("{s:b}", "succeeded", 1);
        if( pOut==0 ) rc = SQLITE_NOMEM;
      }
      sqlite3_free(aVal);
    }
  }
  if( rc==SQLITE_OK && !json_is_true(json_object_get(pOut, "succeeded")) ){
    /* A compare failed: find which, from the failure branch's reads. */
    json_t *pResp = json_object_get(pOut, "responses");
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKey;
    for(i=0; i<nCmp; i++){
      const EtcdOp *pOp = etcdOp(p, aCmp[i].iOp);
      json_t *pKv = json_array_get(json_object_get(json_object_get(
          json_array_get(pResp, i), "response_range"), "kvs"), 0);
      if( compareFailed(pOp, pKv) ) break;
    }
    if( i<nCmp ){
      const EtcdOp *pOp = etcdOp(p, aCmp[i].iOp);
      etcdAppendBytes(s, pOp->hdr.aKey, pOp->hdr.nKey, 100);
      zKey = sqlite3_str_finish(s);
      if( zKey==0 ){
        rc = SQLITE_NOMEM;
      }else if( pOp->hdr.eOp==OP_CMP_ABSENT ){
        fedSetError(pzErr, "%s: UNIQUE constraint failed: %s.key: key %s"
            " already exists on server \"%s\"; nothing was written",
            ETCD_STORE, pOp->zTab ? pOp->zTab : "?", zKey, zServer);
        rc = SQLITE_CONSTRAINT;
      }else{
        fedSetError(pzErr, "%s: key %s was changed on server \"%s\" after"
            " this transaction read it; nothing was written", ETCD_STORE,
            zKey, zServer);
        rc = SQLITE_ERROR;
      }
      sqlite3_free(zKey);
    }else{
      sqlite3_free(sqlite3_str_finish(s));
      fedSetError(pzErr, "%s: a key this transaction read or inserted was"
          " changed on server \"%s\"; nothing was written", ETCD_STORE,
          zServer);
      rc = SQLITE_ERROR;
    }
  }

cleanup:
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(aKey);
  sqlite3_free(aCmp);
  return rc;
}

/* The batch layer's xApply: the queue as one txn. */
int etcdKvApply(FedKvTxn *pKv, FedConn *pConn, const char *zMarker,
                char **pzErr){
  (void)pKv;
  (void)zMarker;
  return commitSend((EtcdConn*)pConn, pzErr);
}

/* The queue is dropped whatever the outcome (xRollback would too). */
int etcdCommit(FedConn *pConn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  int rc = fedKvCommit(&p->kv, pConn, pzErr);
  fedKvTxnClear(&p->kv);
  if( p->pCsrList==0 ) p->iReadRev = 0;
  return etcdRc(rc, pzErr);
}

int etcdRollback(FedConn *pConn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  fedKvRollback(&p->kv, pzErr);
  if( p->pCsrList==0 ) p->iReadRev = 0;
  return SQLITE_OK;
}

/**************************************************************************
** Commit markers (FedStore.xMarkerCheck): the keys ETCD_MARKER<gid>,
** written by commitSend inside the transaction's txn when the coordinator
** sets FedConn.zMarker.  Read at the latest revision, not the snapshot.
*/
/* One txn: if the marker key exists, read it; if not, write the fence in
** its place ("abort <time>"), so that the transaction's own txn, if it is
** still in flight, fails its compare whenever it reaches etcd (etcd applies
** txns one at a time, so the answer is final).  A fence found counts as
** no marker. */
int etcdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                    char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0, *pC, *pArr, *pOp, *pW, *pKv;
  int rc = SQLITE_OK, nGid = (int)strlen(zGid);
  char zFence[48];
  *pbExists = 0;
  sqlite3_snprintf(sizeof(zFence), zFence, "%s%lld", ETCD_FENCE,
                   (i64)time(0));
  pReq = etcdJsonNew(json_object(), &rc);
  pC = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pC, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
                 &rc);
  etcdJsonSet(pC, "target", etcdJsonNew(json_string("CREATE"), &rc), &rc);
  etcdJsonSet(pC, "result", etcdJsonNew(json_string("GREATER"), &rc), &rc);
  etcdJsonSet(pC, "create_revision", etcdJsonInt(0, &rc), &rc);
  pArr = etcdJsonNew(json_array(), &rc);
  etcdJsonAppend(pArr, pC, &rc);
  etcdJsonSet(pReq, "compare", pArr, &rc);
  pW = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
                 &rc);
  pOp = etcdJsonNew(json_object(), &rc);
  etcdJsonSet(pOp, "request_range", pW, &rc);
  pArr = etcdJsonNew(json_array(), &rc);
  etcdJsonAppend(pArr, pOp, &rc);
  etcdJsonSet(pReq, "success", pArr, &rc);
  pW = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
                 &rc);
  etcdJsonSetKey(pW, "value", 0, 0, zFence, (int)strlen(zFence), &rc);
  pOp = etcdJsonNew(json_object(), &rc);
  etcdJsonSet(pOp, "request_put", pW, &rc);
  pArr = etcdJsonNew(json_array(), &rc);
  etcdJsonAppend(pArr, pOp, &rc);
  etcdJsonSet(pReq, "failure", pArr, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/txn", pReq, 0, &pOut, 0, pzErr);
  }
  pKv = 0;
  if( rc==SQLITE_OK && json_is_true(json_object_get(pOut, "succeeded")) ){
    pKv = json_array_get(json_object_get(json_object_get(json_array_get(
        json_object_get(pOut, "responses"), 0), "response_range"), "kvs"), 0);
  }
  if( pKv ){
    json_t *pVal = json_object_get(pKv, "value");
    char *aVal = 0;
    int nAlloc = 0, nVal = 0;
    int rc2 = json_is_string(pVal)
        ? fedBase64Decode(json_string_value(pVal),
              (int)json_string_length(pVal), &aVal, &nAlloc, &nVal)
        : SQLITE_OK;
    if( rc2==SQLITE_NOMEM ) rc = SQLITE_NOMEM;
    *pbExists = !(rc2==SQLITE_OK && nVal>=(int)sizeof(ETCD_FENCE)-1
                  && memcmp(aVal, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0);
    sqlite3_free(aVal);
  }
  json_decref(pReq);
  json_decref(pOut);
  return etcdRc(rc, pzErr);
}

int etcdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0;
  int rc = SQLITE_OK;
  pReq = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pReq, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid,
                 (int)strlen(zGid), &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/deleterange", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  json_decref(pOut);
  return etcdRc(rc, pzErr);
}

int etcdMarkerList(FedConn *pConn, const char *zPrefix,
                   char ***pazGid, int *pn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0, *pKvs;
  char *zStart = 0, *zEnd = 0, *aBuf = 0;
  char **az = 0;
  int nStart = 0, nEnd = 0, nAlloc = 0, nKey = 0, n = 0, rc = SQLITE_OK;
  size_t i, nKv;
  const int nMarker = (int)sizeof(ETCD_MARKER)-1;
  *pazGid = 0;
  *pn = 0;
  zStart = sqlite3_mprintf("%s%s", ETCD_MARKER, zPrefix);
  if( zStart==0 ) return SQLITE_NOMEM;
  nStart = (int)strlen(zStart);
  pReq = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pReq, "key", 0, 0, zStart, nStart, &rc);
  if( etcdPrefixEnd(zStart, nStart, &zEnd, &nEnd, &rc) ){
    etcdJsonSetKey(pReq, "range_end", 0, 0, zEnd, nEnd, &rc);
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  pKvs = rc==SQLITE_OK ? json_object_get(pOut, "kvs") : 0;
  nKv = json_is_array(pKvs) ? json_array_size(pKvs) : 0;
  for(i=0; rc==SQLITE_OK && i<nKv; i++){
    json_t *pKey = json_object_get(json_array_get(pKvs, i), "key");
    json_t *pVal = json_object_get(json_array_get(pKvs, i), "value");
    if( !json_is_string(pKey) ) continue;
    if( json_is_string(pVal) ){
      /* A fence stays until no txn it fences can still be in flight. */
      int nVal = 0;
      rc = fedBase64Decode(json_string_value(pVal),
               (int)json_string_length(pVal), &aBuf, &nAlloc, &nVal);
      if( rc==SQLITE_MISMATCH ){ rc = SQLITE_OK; continue; }
      if( rc ) break;
      if( nVal>=(int)sizeof(ETCD_FENCE)-1
       && memcmp(aBuf, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0 ){
        i64 iWhen = 0;
        fedParseInt64(&aBuf[sizeof(ETCD_FENCE)-1],
                      nVal-((int)sizeof(ETCD_FENCE)-1), &iWhen);
        if( (i64)time(0)-iWhen<ETCD_FENCE_KEEP ) continue;
      }
    }
    rc = fedBase64Decode(json_string_value(pKey),
                         (int)json_string_length(pKey), &aBuf, &nAlloc, &nKey);
    if( rc==SQLITE_MISMATCH ){ rc = SQLITE_OK; continue; }
    if( rc==SQLITE_OK && nKey>nMarker ){
      rc = fedKvNameAdd(&az, &n, 0, &aBuf[nMarker], nKey-nMarker);
    }
  }
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(zStart);
  sqlite3_free(zEnd);
  sqlite3_free(aBuf);
  if( rc ){
    fedKvNamesFree(az, n);
    return etcdRc(rc, pzErr);
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}
