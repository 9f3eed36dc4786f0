/*
** undo.c: undo images of the etcd store (FedStore.xUndoImages,
** xUndoApply; ext/undo.c captures, compensates and recovers with them).
*/
#include "etcdInt.h"

/**************************************************************************
** Undo images (FedStore.xUndoImages, ext/undo.c): for a transaction that
** writes this server and another without two-phase commit.  Every key the
** queue puts or deletes gets its value now and the value the commit
** leaves; a key no compare guards yet gets one (unchanged since the
** revision its before-image was read at), so that the commit fails if it
** changes meanwhile.  A lease is not part of an image: a key put back has
** none.
*/

/* Read remote key a[0..n) at the latest revision: *paVal (sqlite3_malloc'd,
** NULL when absent), *piMod its mod_revision (0 when absent), *piRev the
** revision of the read. */
static int undoRead(EtcdConn *p, const char *a, int n, char **paVal,
                    int *pnVal, i64 *piMod, i64 *piRev, char **pzErr){
  json_t *pReq, *pOut = 0, *pKv;
  int rc = SQLITE_OK;
  *paVal = 0;
  *pnVal = 0;
  *piMod = 0;
  *piRev = 0;
  pReq = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pReq, "key", 0, 0, a, n, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  fedJsonInt64(json_object_get(json_object_get(pOut, "header"), "revision"),
               piRev);
  pKv = json_array_get(json_object_get(pOut, "kvs"), 0);
  if( pKv ){
    json_t *pVal = json_object_get(pKv, "value");
    char *aBuf = 0;
    int nAlloc = 0;
    fedJsonInt64(json_object_get(pKv, "mod_revision"), piMod);
    if( json_is_string(pVal) ){
      rc = fedBase64Decode(json_string_value(pVal),
                           (int)json_string_length(pVal), &aBuf, &nAlloc,
                           pnVal);
    }else{
      /* etcd leaves out an empty value. */
      aBuf = sqlite3_malloc64(1);
      if( aBuf==0 ) rc = SQLITE_NOMEM;
      else aBuf[0] = 0;
    }
    if( rc==SQLITE_MISMATCH ){
      fedSetError(pzErr, "%s: server \"%s\" sent a value that is not"
                  " base64", ETCD_STORE, p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
    if( rc ) sqlite3_free(aBuf);
    else *paVal = aBuf;
  }
  json_decref(pOut);
  return rc;
}

int etcdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                   char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  FedUndoImage *a = 0;
  int n = 0, nOp = p->nOp, i, j, rc = SQLITE_OK;
  *paImg = 0;
  *pnImg = 0;
  for(i=0; rc==SQLITE_OK && i<nOp; i++){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->eOp!=OP_PUT && pOp->eOp!=OP_DEL ) continue;
    rc = fedUndoImageSet(&a, &n, 0, pOp->aKey, pOp->nKey,
                         pOp->eOp==OP_PUT ? (pOp->aVal ? pOp->aVal : "") : 0,
                         pOp->nVal);
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    i64 iMod, iRev;
    int bGuarded = 0;
    rc = undoRead(p, a[j].aKey, a[j].nKey, &a[j].aBefore, &a[j].nBefore,
                  &iMod, &iRev, pzErr);
    for(i=0; rc==SQLITE_OK && i<p->nOp; i++){
      EtcdOp *pOp = &p->aOp[i];
      if( (pOp->eOp==OP_CMP_ABSENT || pOp->eOp==OP_CMP_SAME
           || pOp->eOp==OP_CMP_REV)
       && pOp->nKey==a[j].nKey && memcmp(pOp->aKey, a[j].aKey, a[j].nKey)==0 ){
        bGuarded = 1;
      }
    }
    if( rc==SQLITE_OK && !bGuarded ){
      rc = etcdQueueAdd(p, OP_CMP_REV, a[j].aKey, a[j].nKey, 0, 0, 0, 0);
      if( rc==SQLITE_OK ) p->aOp[p->nOp-1].iRev = iRev;
    }
  }
  if( rc ){
    fedUndoImagesFree(a, n);
    return etcdRc(rc, pzErr);
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

int etcdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                  char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  char *aCur = 0;
  int nCur = 0, rc;
  i64 iMod = 0, iRev = 0;
  json_t *pReq = 0, *pOut = 0;
  rc = undoRead(p, pImg->aKey, pImg->nKey, &aCur, &nCur, &iMod, &iRev,
                pzErr);
  if( rc ) return etcdRc(rc, pzErr);
  if( (aCur==0)==(pImg->aAfter==0)
   && (aCur==0 || (nCur==pImg->nAfter
                   && memcmp(aCur, pImg->aAfter, nCur)==0)) ){
    /* The key holds the after-image: put the before-image back, unless it
    ** changes meanwhile. */
    json_t *pCmp, *pC, *pOps, *pS, *pW;
    pReq = etcdJsonNew(json_object(), &rc);
    pCmp = etcdJsonNew(json_array(), &rc);
    etcdJsonSet(pReq, "compare", pCmp, &rc);
    pC = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pC, "key", 0, 0, pImg->aKey, pImg->nKey, &rc);
    etcdJsonSet(pC, "target", etcdJsonNew(json_string("MOD"), &rc), &rc);
    etcdJsonSet(pC, "result", etcdJsonNew(json_string("EQUAL"), &rc), &rc);
    etcdJsonSet(pC, "mod_revision", etcdJsonInt(iMod, &rc), &rc);
    etcdJsonAppend(pCmp, pC, &rc);
    pOps = etcdJsonNew(json_array(), &rc);
    etcdJsonSet(pReq, "success", pOps, &rc);
    pS = etcdJsonNew(json_object(), &rc);
    pW = etcdJsonNew(json_object(), &rc);
    etcdJsonSetKey(pW, "key", 0, 0, pImg->aKey, pImg->nKey, &rc);
    if( pImg->aBefore ){
      etcdJsonSetKey(pW, "value", 0, 0, pImg->aBefore, pImg->nBefore, &rc);
      etcdJsonSet(pS, "request_put", pW, &rc);
    }else{
      etcdJsonSet(pS, "request_delete_range", pW, &rc);
    }
    etcdJsonAppend(pOps, pS, &rc);
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, "/v3/kv/txn", pReq, 0, &pOut, 0, pzErr);
    }
    if( rc==SQLITE_OK && !json_is_true(json_object_get(pOut, "succeeded")) ){
      rc = SQLITE_BUSY;
    }
  }else if( (aCur==0)==(pImg->aBefore==0)
   && (aCur==0 || (nCur==pImg->nBefore
                   && memcmp(aCur, pImg->aBefore, nCur)==0)) ){
    rc = SQLITE_OK;             /* Never applied, or undone already */
  }else{
    rc = SQLITE_BUSY;
  }
  if( rc==SQLITE_BUSY ){
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKey;
    etcdAppendBytes(s, pImg->aKey, pImg->nKey, 100);
    zKey = sqlite3_str_finish(s);
    fedSetError(pzErr, "%s: cannot undo key %s on server \"%s\": another"
        " client changed it after this transaction wrote it; it was left as"
        " it is", ETCD_STORE, zKey ? zKey : "?", p->base.pServer->zName);
    sqlite3_free(zKey);
  }
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(aCur);
  return etcdRc(rc, pzErr);
}
