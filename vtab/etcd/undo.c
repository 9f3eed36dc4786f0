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
  int *aiFirst = 0, *aiLast = 0;
  int n = 0, j, rc;
  *paImg = 0;
  *pnImg = 0;
  /* Each key put or deleted, with the value its last write leaves. */
  rc = fedKvUndoCapture(&p->kv, &a, &n, &aiFirst, &aiLast);
  for(j=0; rc==SQLITE_OK && j<n; j++){
    EtcdOp *pOp = etcdOp(p, aiLast[j]);
    if( pOp->hdr.eOp==OP_PUT ){
      a[j].aAfter = fedStrdup(pOp->aVal ? pOp->aVal : "", pOp->nVal);
      a[j].nAfter = pOp->nVal;
      if( a[j].aAfter==0 ) rc = SQLITE_NOMEM;
    }
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    i64 iMod, iRev;
    rc = undoRead(p, a[j].aKey, a[j].nKey, &a[j].aBefore, &a[j].nBefore,
                  &iMod, &iRev, pzErr);
    if( rc==SQLITE_OK && !fedKvGuarded(&p->kv, 0, a[j].aKey, a[j].nKey) ){
      rc = etcdQueueAdd(p, OP_CMP_REV, a[j].aKey, a[j].nKey, 0, 0, 0, 0);
      if( rc==SQLITE_OK ) etcdOp(p, p->kv.nOp-1)->iRev = iRev;
    }
  }
  sqlite3_free(aiFirst);
  sqlite3_free(aiLast);
  if( rc ){
    fedUndoImagesFree(a, n);
    return etcdRc(rc, pzErr);
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

/* The batch layer's xImageRead (fedKvUndoApply): the value now, and its
** mod revision as the guard of the restore. */
int etcdImageRead(FedConn *pConn, const FedUndoImage *pImg, char **paNow,
                  int *pnNow, i64 *piGuard, char **pzErr){
  i64 iRev = 0;
  return undoRead((EtcdConn*)pConn, pImg->aKey, pImg->nKey, paNow, pnNow,
                  piGuard, &iRev, pzErr);
}

/* Put the before-image back, unless the key changed since its mod
** revision iMod (SQLITE_BUSY). */
int etcdImageRestore(FedConn *pConn, const FedUndoImage *pImg, i64 iMod,
                     char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0, *pCmp, *pC, *pOps, *pS, *pW;
  int rc = SQLITE_OK;
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
  json_decref(pReq);
  json_decref(pOut);
  return rc;
}

int etcdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                  char **pzErr){
  return fedKvUndoApply(&etcdKvDriver, pConn, pImg, pzErr);
}
