/*
** kv.c: the shared layer of the stores that commit with one atomic request
** (FED_TXN_BATCH): the hash map keyed by (namespace, key), the write queue
** indexed by key, savepoint marks, the doom reason, the commit skeleton,
** marker helpers and undo-image capture and compensation.  kv.h has the
** interface and the notes on the order of calls.
*/
#include "kv.h"
#include <stdlib.h>
#include <time.h>

/**************************************************************************
** Classes of bytes.
*/

/* Non-zero if z[0..n) is valid UTF-8 (RFC 3629: no overlong forms,
** surrogates or code points above U+10FFFF), with no NUL byte unless
** bNulOk. */
int fedKvUtf8(const char *zIn, int n, int bNulOk){
  const unsigned char *z = (const unsigned char*)zIn;
  int i = 0;
  while( i<n ){
    unsigned c;
    int nCont;
    unsigned lo = 0x80, hi = 0xbf;
    while( i<n && (unsigned char)(z[i]-1)<0x7f ) i++;   /* ASCII, not NUL */
    if( i>=n ) break;
    c = z[i];
    if( c==0 ){
      if( !bNulOk ) return 0;
      i++;
      continue;
    }
    if( c>=0xc2 && c<=0xdf ){ nCont = 1; }
    else if( c==0xe0 ){ nCont = 2; lo = 0xa0; }
    else if( c>=0xe1 && c<=0xec ){ nCont = 2; }
    else if( c==0xed ){ nCont = 2; hi = 0x9f; }
    else if( c>=0xee && c<=0xef ){ nCont = 2; }
    else if( c==0xf0 ){ nCont = 3; lo = 0x90; }
    else if( c>=0xf1 && c<=0xf3 ){ nCont = 3; }
    else if( c==0xf4 ){ nCont = 3; hi = 0x8f; }
    else return 0;
    if( i+nCont>=n ) return 0;
    if( z[i+1]<lo || z[i+1]>hi ) return 0;
    if( nCont>=2 && (z[i+2]&0xc0)!=0x80 ) return 0;
    if( nCont>=3 && (z[i+3]&0xc0)!=0x80 ) return 0;
    i += nCont+1;
  }
  return 1;
}

int fedKvIsText(const char *z, int n){
  return fedKvUtf8(z, n, 0);
}

int fedKvClass(const char *z, int n){
  return fedKvIsText(z, n) ? FED_KV_TEXT : FED_KV_BLOB;
}

/* Compare byte strings as memcmp() then length: BINARY's order. */
int fedKvBytesCmp(const char *a, int na, const char *b, int nb){
  int n = na<nb ? na : nb;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : na-nb;
}

/**************************************************************************
** The hash map.
*/
static unsigned int kvHashCode(int iSpace, const char *z, int n){
  unsigned int h = 2166136261u ^ (unsigned int)iSpace;
  int i;
  for(i=0; i<n; i++){
    h ^= (unsigned char)z[i];
    h *= 16777619u;
  }
  return h;
}

static int kvElemIs(const FedKvElem *p, unsigned int h, int iSpace,
                    const char *z, int n){
  return p->h==h && p->iSpace==iSpace && p->nKey==n
      && (n==0 || memcmp(p->zKey, z, n)==0);
}

FedKvElem *fedKvHashFind(const FedKvHash *pH, int iSpace, const char *z,
                         int n){
  FedKvElem *p;
  unsigned int h;
  if( pH->nBucket==0 ) return 0;
  h = kvHashCode(iSpace, z, n);
  for(p=pH->aBucket[h % pH->nBucket]; p; p=p->pNext){
    if( kvElemIs(p, h, iSpace, z, n) ) return p;
  }
  return 0;
}

FedKvElem *fedKvHashAdd(FedKvHash *pH, int iSpace, const char *z, int n,
                        int *pbNew){
  FedKvElem *p = fedKvHashFind(pH, iSpace, z, n);
  unsigned int h;
  if( pbNew ) *pbNew = 0;
  if( p ) return p;
  if( pH->nElem>=pH->nBucket ){
    /* Grow; when that fails, a table that has buckets goes on fuller. */
    int nNew = pH->nBucket ? pH->nBucket*2 : 16;
    FedKvElem **a = sqlite3_malloc64(sizeof(FedKvElem*)*nNew);
    if( a ){
      int i;
      memset(a, 0, sizeof(FedKvElem*)*nNew);
      for(i=0; i<pH->nBucket; i++){
        while( pH->aBucket[i] ){
          FedKvElem *pE = pH->aBucket[i];
          pH->aBucket[i] = pE->pNext;
          pE->pNext = a[pE->h % nNew];
          a[pE->h % nNew] = pE;
        }
      }
      sqlite3_free(pH->aBucket);
      pH->aBucket = a;
      pH->nBucket = nNew;
    }else if( pH->nBucket==0 ){
      return 0;
    }
  }
  p = sqlite3_malloc64(sizeof(*p)+(u64)n+1);
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  h = kvHashCode(iSpace, z, n);
  p->h = h;
  p->iSpace = iSpace;
  p->nKey = n;
  p->zKey = (char*)&p[1];
  if( n>0 ) memcpy(p->zKey, z, n);
  p->zKey[n] = 0;
  p->pNext = pH->aBucket[h % pH->nBucket];
  pH->aBucket[h % pH->nBucket] = p;
  pH->nElem++;
  if( pbNew ) *pbNew = 1;
  return p;
}

void fedKvHashRemove(FedKvHash *pH, int iSpace, const char *z, int n){
  FedKvElem **pp;
  unsigned int h;
  if( pH->nBucket==0 ) return;
  h = kvHashCode(iSpace, z, n);
  for(pp=&pH->aBucket[h % pH->nBucket]; *pp; pp=&(*pp)->pNext){
    FedKvElem *p = *pp;
    if( kvElemIs(p, h, iSpace, z, n) ){
      *pp = p->pNext;
      if( pH->xDel && p->pVal ) pH->xDel(p->pVal);
      sqlite3_free(p);
      pH->nElem--;
      return;
    }
  }
}

void fedKvHashClear(FedKvHash *pH){
  int i;
  for(i=0; i<pH->nBucket; i++){
    while( pH->aBucket[i] ){
      FedKvElem *p = pH->aBucket[i];
      pH->aBucket[i] = p->pNext;
      if( pH->xDel && p->pVal ) pH->xDel(p->pVal);
      sqlite3_free(p);
    }
  }
  sqlite3_free(pH->aBucket);
  pH->aBucket = 0;
  pH->nBucket = 0;
  pH->nElem = 0;
}

/**************************************************************************
** The queue.  FedKvTxn.index maps each key named by an op to the last op
** on it (elem.i); each op links to the previous op on each of its keys
** (FedKvOp.aPrev), so that cutting the queue back is the chains popped in
** reverse, and every question about a key walks only that key's ops.
*/
void fedKvTxnInit(FedKvTxn *t, const FedKvDriver *pDrv){
  memset(t, 0, sizeof(*t));
  t->pDrv = pDrv;
}

/* Free op pOp: the store's part, then the keys. */
static void kvOpFree(FedKvTxn *t, FedKvOp *pOp){
  if( t->pDrv->xOpFree ) t->pDrv->xOpFree(pOp);
  sqlite3_free(pOp->aKey);
  sqlite3_free(pOp->aKey2);
  memset(pOp, 0, t->pDrv->szOp);
}

void fedKvTxnClear(FedKvTxn *t){
  const FedKvDriver *pDrv = t->pDrv;
  int i;
  for(i=0; i<t->nOp; i++) kvOpFree(t, fedKvOp(t, i));
  sqlite3_free(t->aOp);
  sqlite3_free(t->aMark);
  fedKvHashClear(&t->index);
  sqlite3_free(t->zDoom);
  memset(t, 0, sizeof(*t));
  t->pDrv = pDrv;
  if( pDrv && pDrv->xCleared ) pDrv->xCleared(t);
}

FedKvOp *fedKvOpNew(FedKvTxn *t, int eOp, int bWrite, int iSpace,
                    const char *aKey, int nKey){
  FedKvOp *pOp;
  if( t->nOp>=t->nOpAlloc ){
    int nNew = t->nOpAlloc ? t->nOpAlloc*2 : 16;
    char *a = sqlite3_realloc64(t->aOp, (u64)t->pDrv->szOp*nNew);
    if( a==0 ) return 0;
    t->aOp = a;
    t->nOpAlloc = nNew;
  }
  pOp = fedKvOp(t, t->nOp);
  memset(pOp, 0, t->pDrv->szOp);
  pOp->eOp = (u8)eOp;
  pOp->bWrite = (u8)bWrite;
  pOp->iSpace = iSpace;
  pOp->aPrev[0] = pOp->aPrev[1] = -1;
  pOp->aKey = fedStrdup(aKey ? aKey : "", nKey);
  if( pOp->aKey==0 ) return 0;
  pOp->nKey = nKey;
  return pOp;
}

int fedKvOpSetKey2(FedKvOp *pOp, const char *aKey, int nKey){
  char *a = fedStrdup(aKey ? aKey : "", nKey);
  if( a==0 ) return SQLITE_NOMEM;
  sqlite3_free(pOp->aKey2);
  pOp->aKey2 = a;
  pOp->nKey2 = nKey;
  return SQLITE_OK;
}

void fedKvOpDiscard(FedKvTxn *t){
  if( t->nOp<t->nOpAlloc ) kvOpFree(t, fedKvOp(t, t->nOp));
}

/* Key k (0 or 1) of pOp, or 0 if it has none. */
static const char *kvOpKey(const FedKvOp *pOp, int k, int *pn){
  if( k==0 ){ *pn = pOp->nKey; return pOp->aKey; }
  *pn = pOp->nKey2;
  return pOp->aKey2;
}

/* Unlink key k of op iOp (the last op on that key) from the index. */
static void kvUnindex(FedKvTxn *t, int iOp, int k){
  FedKvOp *pOp = fedKvOp(t, iOp);
  int n;
  const char *z = kvOpKey(pOp, k, &n);
  FedKvElem *e;
  if( z==0 ) return;
  e = fedKvHashFind(&t->index, pOp->iSpace, z, n);
  if( e==0 || e->i!=iOp ) return;
  if( pOp->aPrev[k]>=0 ){
    e->i = pOp->aPrev[k];
  }else{
    fedKvHashRemove(&t->index, pOp->iSpace, z, n);
  }
}

int fedKvOpAppend(FedKvTxn *t){
  FedKvOp *pOp = fedKvOp(t, t->nOp);
  int k;
  for(k=0; k<2; k++){
    int n;
    const char *z = kvOpKey(pOp, k, &n);
    FedKvElem *e;
    int bNew;
    if( z==0 ) continue;
    e = fedKvHashAdd(&t->index, pOp->iSpace, z, n, &bNew);
    if( e==0 ){
      if( k==1 ) kvUnindex(t, t->nOp, 0);
      kvOpFree(t, pOp);
      return SQLITE_NOMEM;
    }
    pOp->aPrev[k] = bNew ? -1 : (int)e->i;
    e->i = t->nOp;
  }
  t->nOp++;
  return SQLITE_OK;
}

void fedKvTruncate(FedKvTxn *t, int nOp){
  while( t->nOp>nOp ){
    FedKvOp *pOp;
    t->nOp--;
    pOp = fedKvOp(t, t->nOp);
    kvUnindex(t, t->nOp, 1);
    kvUnindex(t, t->nOp, 0);
    if( t->pDrv->xOpDrop ) t->pDrv->xOpDrop(t, pOp);
    kvOpFree(t, pOp);
  }
}

int fedKvLast(const FedKvTxn *t, int iSpace, const char *z, int n){
  FedKvElem *e = fedKvHashFind(&t->index, iSpace, z, n);
  return e ? (int)e->i : -1;
}

/* Which key of pOp is (iSpace, z, n): 0, 1, or -1 for neither. */
int fedKvOpSlot(const FedKvOp *pOp, int iSpace, const char *z, int n){
  if( pOp->iSpace!=iSpace ) return -1;
  if( pOp->nKey==n && (n==0 || memcmp(pOp->aKey, z, n)==0) ) return 0;
  if( pOp->aKey2 && pOp->nKey2==n
   && (n==0 || memcmp(pOp->aKey2, z, n)==0) ){
    return 1;
  }
  return -1;
}

int fedKvPrev(const FedKvTxn *t, int iOp, int iSpace, const char *z, int n){
  const FedKvOp *pOp = fedKvOp(t, iOp);
  int k = fedKvOpSlot(pOp, iSpace, z, n);
  return k<0 ? -1 : pOp->aPrev[k];
}

int fedKvLastWrite(const FedKvTxn *t, int iSpace, const char *z, int n,
                   int *pbTouched){
  int i = fedKvLast(t, iSpace, z, n);
  if( pbTouched ) *pbTouched = i>=0;
  while( i>=0 && !fedKvOp(t, i)->bWrite ) i = fedKvPrev(t, i, iSpace, z, n);
  return i;
}

int fedKvGuarded(const FedKvTxn *t, int iSpace, const char *z, int n){
  int i;
  for(i=fedKvLast(t, iSpace, z, n); i>=0; i=fedKvPrev(t, i, iSpace, z, n)){
    if( !fedKvOp(t, i)->bWrite ) return 1;
  }
  return 0;
}

static int kvRefCmp(const void *pA, const void *pB){
  const FedKvRef *a = (const FedKvRef*)pA, *b = (const FedKvRef*)pB;
  return fedKvBytesCmp(a->a, a->n, b->a, b->n);
}

int fedKvKeys(const FedKvTxn *t, int eWhich, int iSpace, const char *aPrefix,
              int nPrefix, FedKvRef **paRef, int *pnRef){
  FedKvRef *a;
  FedKvElem *e;
  int i, n = 0;
  *paRef = 0;
  *pnRef = 0;
  if( t->index.nElem==0 ) return SQLITE_OK;
  a = sqlite3_malloc64(sizeof(FedKvRef)*t->index.nElem);
  if( a==0 ) return SQLITE_NOMEM;
  FEDKV_EACH(&t->index, i, e){
    int iOp = -1, j;
    if( e->iSpace!=iSpace ) continue;
    if( nPrefix>0 && (e->nKey<nPrefix || memcmp(e->zKey, aPrefix, nPrefix)) ){
      continue;
    }
    if( eWhich==FED_KV_LAST_WRITE ){
      iOp = fedKvLastWrite(t, iSpace, e->zKey, e->nKey, 0);
    }else{
      for(j=(int)e->i; j>=0; j=fedKvPrev(t, j, iSpace, e->zKey, e->nKey)){
        if( !fedKvOp(t, j)->bWrite ) iOp = j;
      }
    }
    if( iOp<0 ) continue;
    /* The key as the op holds it: it outlives the index's copy. */
    a[n].a = fedKvOpSlot(fedKvOp(t, iOp), iSpace, e->zKey, e->nKey)==1
           ? fedKvOp(t, iOp)->aKey2 : fedKvOp(t, iOp)->aKey;
    a[n].n = e->nKey;
    a[n].iOp = iOp;
    n++;
  }
  qsort(a, n, sizeof(FedKvRef), kvRefCmp);
  *paRef = a;
  *pnRef = n;
  return SQLITE_OK;
}

/**************************************************************************
** Transactions, savepoints, the doom.
*/
void fedKvBegin(FedKvTxn *t, int bSnapshot){
  fedKvTxnClear(t);
  t->bActive = 1;
  t->bSnapshot = bSnapshot;
}

/* Savepoints are queue lengths.  Levels iRelease and above (-1: none) are
** released first; a level below iFrom that has no mark yet gets the
** queue length too, as do the new levels iFrom..iTo-1. */
int fedKvSavepoint(FedKvTxn *t, int iRelease, int iFrom, int iTo,
                   char **pzErr){
  int i;
  if( fedFault(FED_FAULT_SAVEPOINT, pzErr) ) return SQLITE_ERROR;
  if( iRelease>=0 && iRelease<t->nMark ) t->nMark = iRelease;
  if( iTo>t->nMarkAlloc ){
    int *a = sqlite3_realloc64(t->aMark, sizeof(int)*(iTo+8));
    if( a==0 ) return SQLITE_NOMEM;
    t->aMark = a;
    t->nMarkAlloc = iTo+8;
  }
  for(i=t->nMark; i<iFrom; i++) t->aMark[i] = t->nOp;
  for(i=iFrom; i<iTo; i++) t->aMark[i] = t->nOp;
  if( iTo>t->nMark ) t->nMark = iTo;
  return SQLITE_OK;
}

void fedKvRelease(FedKvTxn *t, int iLevel){
  if( iLevel>=0 && iLevel<t->nMark ) t->nMark = iLevel;
}

/* Cut the queue back to savepoint iLevel, which stays.  The doom is
** lifted: the rows that caused it are gone (or, if they were older, the
** commit's own checks find them again). */
int fedKvRollbackTo(FedKvTxn *t, int iLevel, char **pzErr){
  int rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( iLevel>=0 && iLevel<t->nMark ){
    fedKvTruncate(t, t->aMark[iLevel]);
    t->nMark = iLevel+1;
  }
  if( t->pDrv->xRolledBackTo ) t->pDrv->xRolledBackTo(t);
  sqlite3_free(t->zDoom);
  t->zDoom = 0;
  return rc;
}

/* ROLLBACK cannot report failure: the queue is dropped whatever the fault
** site says. */
int fedKvRollback(FedKvTxn *t, char **pzErr){
  int rc = fedFault(FED_FAULT_ROLLBACK, pzErr);
  fedKvTxnClear(t);
  return rc;
}

void fedKvDoom(FedKvTxn *t, const char *zMsg){
  if( t->zDoom==0 && zMsg ) t->zDoom = fedStrdup(zMsg, -1);
}

int fedKvDoomed(const FedKvTxn *t, char **pzErr){
  if( t->zDoom==0 ) return SQLITE_OK;
  fedSetError(pzErr, "%s", t->zDoom);
  return SQLITE_ERROR;
}

/* The commit: what a statement boundary owes, the doom, the one atomic
** request.  The queue is cleared once the outcome is known (applied, or a
** guard failed so nothing was); otherwise xRollback clears it. */
int fedKvCommit(FedKvTxn *t, FedConn *pConn, char **pzErr){
  int rc;
  if( !t->bActive && pConn->zMarker==0 ) return SQLITE_OK;
  if( t->pDrv->xFlush ){
    rc = t->pDrv->xFlush(t, pConn, pzErr);
    if( rc ) return rc;
  }
  rc = fedKvDoomed(t, pzErr);
  if( rc ) return rc;
  rc = t->pDrv->xApply(t, pConn, pConn->zMarker, pzErr);
  if( rc==SQLITE_OK || rc==SQLITE_BUSY || rc==SQLITE_CONSTRAINT ){
    fedKvTxnClear(t);
    if( rc==SQLITE_BUSY ) rc = SQLITE_ERROR;
  }
  return rc;
}

/**************************************************************************
** Markers and reserved keys.
*/
static char *kvRender(const FedKvDriver *pDrv, const char *z, int n){
  sqlite3_str *s = sqlite3_str_new(0);
  pDrv->xRenderKey(s, z, n);
  return sqlite3_str_finish(s);
}

int fedKvReserved(const FedKvDriver *pDrv, const char *zReserved,
                  const char *z, int n, const char *zOp, const char *zTab,
                  char **pzErr){
  int nReserved = (int)strlen(zReserved);
  char *zKey;
  if( z==0 || n<nReserved || memcmp(z, zReserved, nReserved)!=0 ){
    return SQLITE_OK;
  }
  zKey = kvRender(pDrv, z, n);
  if( zKey==0 ) return SQLITE_NOMEM;
  fedSetError(pzErr, "%s: cannot %s key %s in table \"%s\": keys that"
      " start with %s are reserved for federate's commit markers",
      pDrv->zStore, zOp, zKey, zTab, zReserved);
  sqlite3_free(zKey);
  return SQLITE_CONSTRAINT;
}

void fedKvMarkerTime(char *zBuf, int nBuf){
  sqlite3_snprintf(nBuf, zBuf, "%lld", (i64)time(0));
}

int fedKvNameAdd(char ***paz, int *pn, const char *zPrefix, const char *z,
                 int n){
  char **az;
  char *zCopy;
  if( zPrefix ){
    int nPrefix = (int)strlen(zPrefix);
    if( n<nPrefix || memcmp(z, zPrefix, nPrefix)!=0 ) return SQLITE_OK;
  }
  zCopy = fedStrdup(z, n);
  if( zCopy==0 ) return SQLITE_NOMEM;
  az = sqlite3_realloc64(*paz, sizeof(char*)*(*pn+1));
  if( az==0 ){
    sqlite3_free(zCopy);
    return SQLITE_NOMEM;
  }
  az[(*pn)++] = zCopy;
  *paz = az;
  return SQLITE_OK;
}

void fedKvNamesFree(char **az, int n){
  while( n>0 ) sqlite3_free(az[--n]);
  sqlite3_free(az);
}

/**************************************************************************
** Undo images.
*/
int fedKvUndoCapture(const FedKvTxn *t, FedUndoImage **pa, int *pn,
                     int **paiFirst, int **paiLast){
  FedKvHash seen;               /* Key -> its index in a[] (elem.i) */
  FedUndoImage *a = 0;
  int *aiFirst = 0, *aiLast = 0;
  int n = 0, nAlloc = 0, i, k, rc = SQLITE_OK;
  memset(&seen, 0, sizeof(seen));
  *pa = 0;
  *pn = 0;
  *paiFirst = 0;
  if( paiLast ) *paiLast = 0;
  for(i=0; rc==SQLITE_OK && i<t->nOp; i++){
    const FedKvOp *pOp = fedKvOp(t, i);
    if( pOp->bSkip || !pOp->bWrite ) continue;
    for(k=0; rc==SQLITE_OK && k<2; k++){
      int nKey, bNew;
      const char *zKey = kvOpKey(pOp, k, &nKey);
      FedKvElem *e;
      if( zKey==0 ) continue;
      e = fedKvHashAdd(&seen, pOp->iSpace, zKey, nKey, &bNew);
      if( e==0 ){ rc = SQLITE_NOMEM; break; }
      if( !bNew ){
        aiLast[e->i] = i;
        continue;
      }
      if( n>=nAlloc ){
        int nNew = nAlloc ? nAlloc*2 : 16;
        FedUndoImage *aNew = sqlite3_realloc64(a, sizeof(*a)*nNew);
        int *ai1 = 0, *ai2 = 0;
        if( aNew ){
          a = aNew;
          ai1 = sqlite3_realloc64(aiFirst, sizeof(int)*nNew);
        }
        if( ai1 ){
          aiFirst = ai1;
          ai2 = sqlite3_realloc64(aiLast, sizeof(int)*nNew);
        }
        if( ai2==0 ){
          fedKvHashRemove(&seen, pOp->iSpace, zKey, nKey);
          rc = SQLITE_NOMEM;
          break;
        }
        aiLast = ai2;
        nAlloc = nNew;
      }
      memset(&a[n], 0, sizeof(*a));
      a[n].iSpace = pOp->iSpace;
      a[n].aKey = fedStrdup(zKey, nKey);
      a[n].nKey = nKey;
      aiFirst[n] = aiLast[n] = i;
      e->i = n++;
      if( a[n-1].aKey==0 ) rc = SQLITE_NOMEM;
    }
  }
  fedKvHashClear(&seen);
  if( rc ){
    fedUndoImagesFree(a, n);
    n = 0;
  }
  if( n==0 ){
    if( rc==SQLITE_OK ) sqlite3_free(a);
    sqlite3_free(aiFirst);
    sqlite3_free(aiLast);
    return rc;
  }
  *pa = a;
  *pn = n;
  *paiFirst = aiFirst;
  if( paiLast ) *paiLast = aiLast;
  else sqlite3_free(aiLast);
  return SQLITE_OK;
}

void fedKvUndoBusy(const FedKvDriver *pDrv, FedConn *pConn,
                   const FedUndoImage *pImg, char **pzErr){
  char *zKey = kvRender(pDrv, pImg->aKey, pImg->nKey);
  fedSetError(pzErr, "%s: cannot undo key %s on server \"%s\": another"
      " client changed it after this transaction wrote it; it was left as"
      " it is", pDrv->zStore, zKey ? zKey : "?", pConn->pServer->zName);
  sqlite3_free(zKey);
}

/* Do images a and b (NULL: absent) hold the same key? */
static int kvImageSame(const FedKvDriver *pDrv, const char *a, int na,
                       const char *b, int nb){
  if( a==0 || b==0 ) return a==b;
  if( pDrv->xImageSame ) return pDrv->xImageSame(a, na, b, nb);
  return na==nb && (na==0 || memcmp(a, b, na)==0);
}

/* Put the before-image back where the key holds the after-image; leave
** a key that holds the before-image (never applied, or undone already);
** refuse (SQLITE_BUSY, with a message) a key someone else changed. */
int fedKvUndoApply(const FedKvDriver *pDrv, FedConn *pConn,
                   const FedUndoImage *pImg, char **pzErr){
  char *aNow = 0;
  int nNow = 0, rc;
  i64 iGuard = 0;
  rc = pDrv->xImageRead(pConn, pImg, &aNow, &nNow, &iGuard, pzErr);
  if( rc==SQLITE_OK ){
    if( kvImageSame(pDrv, aNow, nNow, pImg->aAfter, pImg->nAfter) ){
      rc = pDrv->xImageRestore(pConn, pImg, iGuard, pzErr);
    }else{
      if( pDrv->xImageRelease ) pDrv->xImageRelease(pConn);
      if( !kvImageSame(pDrv, aNow, nNow, pImg->aBefore, pImg->nBefore) ){
        rc = SQLITE_BUSY;
      }
    }
    if( rc==SQLITE_BUSY ) fedKvUndoBusy(pDrv, pConn, pImg, pzErr);
  }
  sqlite3_free(aNow);
  rc = fedErrorRc(rc, *pzErr);
  return rc;
}
