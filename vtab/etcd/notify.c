/*
** notify.c: cache invalidation by etcd's watch stream (FedStore.xWatch,
** xChanges).
*/
#include "etcdInt.h"

/*
** Cache invalidation (cache.c) by etcd's watch.  One stream per
** connection watches every key of the server (POST /v3/watch, from key
** "\0" to the end) from the moment etcd confirms it ("created"); an event
** on any key outside __federate/ invalidates every cached table of the
** server (which table a key belongs to is the tables' business, as with
** Redis).  A stream that ends or is canceled (etcd restarted, the watched
** revision compacted, the network) stops the listening: the cache then
** starts a new watch and drops what it had cached before.
*/
typedef struct EtcdWatch EtcdWatch;
struct EtcdWatch {
  int bCreated;                 /* etcd confirmed the watch */
  int bChanged;                 /* A key outside __federate/ changed */
  int bLost;                    /* Canceled, or a line not understood */
  char *aKey;                   /* Decoding buffer */
  int nKeyAlloc;
};

/* One line of the watch stream: {"result":{...}} or {"error":{...}}. */
static int etcdWatchLine(void *pArg, const char *z, int n){
  EtcdWatch *w = (EtcdWatch*)pArg;
  json_t *pJson = 0, *pRes, *pEv;
  char *zErr = 0;
  size_t i;
  int rc = fedHttpJsonParse(z, (size_t)n, &pJson, &zErr);
  sqlite3_free(zErr);
  if( rc==SQLITE_NOMEM ){
    w->bChanged = 1;            /* Unread: assume the worst */
    return SQLITE_NOMEM;
  }
  pRes = rc==SQLITE_OK ? json_object_get(pJson, "result") : 0;
  if( !json_is_object(pRes) ){
    w->bLost = 1;
    json_decref(pJson);
    return SQLITE_OK;
  }
  if( json_is_true(json_object_get(pRes, "created")) ) w->bCreated = 1;
  if( json_is_true(json_object_get(pRes, "canceled")) ) w->bLost = 1;
  pEv = json_object_get(pRes, "events");
  for(i=0; rc==SQLITE_OK && !w->bChanged && i<json_array_size(pEv); i++){
    json_t *pKey = json_object_get(json_object_get(json_array_get(pEv, i),
                                   "kv"), "key");
    int nKey = 0;
    if( !json_is_string(pKey) ){
      w->bChanged = 1;
      break;
    }
    rc = fedBase64Decode(json_string_value(pKey), -1, &w->aKey,
                         &w->nKeyAlloc, &nKey);
    if( rc!=SQLITE_OK || nKey<(int)sizeof(ETCD_RESERVED)-1
     || memcmp(w->aKey, ETCD_RESERVED, sizeof(ETCD_RESERVED)-1)!=0 ){
      w->bChanged = 1;
    }
    if( rc!=SQLITE_NOMEM ) rc = SQLITE_OK;
  }
  json_decref(pJson);
  return rc;
}

/* Read what the watch stream has brought, waiting at most msWait ms. */
static int etcdWatchRead(EtcdConn *p, int msWait, EtcdWatch *w){
  int rc = fedHttpStreamRead(p->pWatch, msWait, etcdWatchLine, w);
  if( w->bChanged ) p->bChanged = 1;
  if( rc==SQLITE_DONE || w->bLost ){
    /* Lost: nothing is heard until a new watch. */
    fedHttpStreamClose(p->pWatch);
    p->pWatch = 0;
    p->base.iListen = 0;
    p->bChanged = 1;
    rc = SQLITE_DONE;
  }
  return rc;
}

int etcdWatchStart(FedConn *pConn, FedTable *pTab, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  EtcdWatch w;
  i64 iTimeout, iConnTimeout, nMaxOps, iWaited = 0;
  int rc;
  (void)pTab;                   /* Nothing to install: etcd always tells */
  if( p->pWatch ){
    if( p->base.iListen==0 ) p->base.iListen = 1;   /* Trusted again */
    return SQLITE_OK;
  }
  rc = etcdServerOptions(p->base.pServer, &iTimeout, &iConnTimeout, &nMaxOps,
                         pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_SEND, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedHttpStreamOpen(p->pHttp, "/v3/watch", "{\"create_request\":"
        "{\"key\":\"AA==\",\"range_end\":\"AA==\"}}", &p->pWatch, pzErr);
  }
  if( rc ) return rc;
  fedExplainAdd(etcdCtx(p), p->base.pServer->zName, "POST /v3/watch"
      " {\"create_request\":{\"key\":\"AA==\",\"range_end\":\"AA==\"}}", 0);
  memset(&w, 0, sizeof(w));
  /* The watch counts from etcd's "created": wait for it. */
  while( rc==SQLITE_OK && !w.bCreated && iWaited<iConnTimeout*1000 ){
    rc = etcdWatchRead(p, 50, &w);
    iWaited += 50;
  }
  sqlite3_free(w.aKey);
  if( rc==SQLITE_OK && w.bCreated ){
    if( p->base.iListen==0 ) p->base.iListen = 1;
    return SQLITE_OK;
  }
  fedHttpStreamClose(p->pWatch);
  p->pWatch = 0;
  if( rc==SQLITE_NOMEM ) return rc;
  fedSetError(pzErr, "%s: server \"%s\" did not start the watch of its keys"
      " (POST /v3/watch)%s", ETCD_STORE, p->base.pServer->zName,
      rc==SQLITE_OK ? ": no answer in connect_timeout" : "");
  return SQLITE_ERROR;
}

int etcdChanges(FedConn *pConn, char ***pazRel, int *pnRel){
  EtcdConn *p = (EtcdConn*)pConn;
  *pazRel = 0;
  *pnRel = 0;
  if( p->pWatch ){
    EtcdWatch w;
    memset(&w, 0, sizeof(w));
    etcdWatchRead(p, 0, &w);
    sqlite3_free(w.aKey);
  }
  if( p->bChanged ){
    /* Told once it could be told: kept when out of memory. */
    char **az = sqlite3_malloc64(sizeof(char*));
    if( az==0 ) return SQLITE_NOMEM;
    az[0] = fedStrdup("*", 1);
    if( az[0]==0 ){ sqlite3_free(az); return SQLITE_NOMEM; }
    *pazRel = az;
    *pnRel = 1;
    p->bChanged = 0;
  }
  return SQLITE_OK;
}
