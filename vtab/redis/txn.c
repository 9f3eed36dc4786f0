/*
** txn.c: transactions: xBegin, xFlush, xCommit (validation, WATCH, fences,
** MULTI/EXEC), xRollback and savepoints; commit markers.
**
** Transactions (FED_TXN_BATCH).  xBegin starts an empty queue; xUpdate
** appends to it; savepoints are queue lengths; xRollback and xRollbackTo
** drop commands; xCommit sends the queue as one MULTI ... EXEC.  Inside
** BEGIN...COMMIT, and in the scan of an UPDATE or DELETE, every key read is
** WATCHed first, so EXEC fails (and nothing is written) if another client
** changed what the transaction read.  A single command that cannot fail
** half way is sent alone: an autocommit INSERT is one round trip.
*/
#include "redisInt.h"

int rdBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  (void)pzErr;
  if( p->txn.bWatched ) p->bUnwatch = 1;
  fedKvBegin(&p->txn.kv, bSnapshot);
  return SQLITE_OK;
}

/* Statement boundary: the elements this statement deleted from lists
** (LSET to the tombstone) are removed now, by one LREM per list. */
int rdFlush(FedConn *pConn, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = &p->txn;
  FedKvElem *e;
  int i, rc = SQLITE_OK;
  if( !t->kv.bActive || t->lrem.nElem==0 ) return SQLITE_OK;
  t->iRowSeq++;
  FEDKV_EACH(&t->lrem, i, e){
    const char *azA[1];
    int anA[1];
    azA[0] = p->zTomb;
    anA[0] = p->nTomb;
    if( rc==SQLITE_OK ){
      rc = rdAddOp(p, ROP_LREM, 0, e->iSpace, t->iRowSeq, 0, e->zKey,
                   e->nKey, 1, azA, anA, 0, pzErr);
    }
  }
  fedKvHashClear(&t->lrem);
  return rc;
}

/* Append the command of pOp to P. */
static void pipeOp(RedisPipe *P, const RedisOp *pOp){
  int i;
  char zBuf[40];
  switch( pOp->hdr.eOp ){
    case ROP_SET:
      rdPipeCmd(P, pOp->hdr.iSpace, "SET");
      rdPipeArg(P, pOp->hdr.aKey, pOp->hdr.nKey);
      rdPipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      if( pOp->eCond==RCOND_NX ) rdPipeArg(P, "NX", 2);
      if( pOp->eCond==RCOND_STRING ) rdPipeArg(P, "XX", 2);
      if( pOp->eTtl==RTTL_EX ){
        rdPipeArg(P, "EX", 2);
        rdPipeArgInt(P, pOp->iNum);
      }else if( pOp->eTtl==RTTL_KEEP ){
        rdPipeArg(P, "KEEPTTL", 7);
      }
      return;
    case ROP_DEL:     rdPipeCmd(P, pOp->hdr.iSpace, "DEL"); break;
    case ROP_EXPIRE:  rdPipeCmd(P, pOp->hdr.iSpace, "EXPIRE"); break;
    case ROP_PERSIST: rdPipeCmd(P, pOp->hdr.iSpace, "PERSIST"); break;
    case ROP_RENAME:
      rdPipeCmd(P, pOp->hdr.iSpace,
                pOp->eCond==RCOND_NX ? "RENAMENX" : "RENAME");
      break;
    case ROP_HSET:
      rdPipeCmd(P, pOp->hdr.iSpace, pOp->eCond==RCOND_NX ? "HSETNX" : "HSET");
      break;
    case ROP_HDEL:    rdPipeCmd(P, pOp->hdr.iSpace, "HDEL"); break;
    case ROP_RPUSH:   rdPipeCmd(P, pOp->hdr.iSpace, "RPUSH"); break;
    case ROP_LSET:
      rdPipeCmd(P, pOp->hdr.iSpace, "LSET");
      rdPipeArg(P, pOp->hdr.aKey, pOp->hdr.nKey);
      rdPipeArgInt(P, pOp->iNum);
      rdPipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_LREM:
      rdPipeCmd(P, pOp->hdr.iSpace, "LREM");
      rdPipeArg(P, pOp->hdr.aKey, pOp->hdr.nKey);
      rdPipeArg(P, "0", 1);
      rdPipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_SADD:    rdPipeCmd(P, pOp->hdr.iSpace, "SADD"); break;
    case ROP_SREM:    rdPipeCmd(P, pOp->hdr.iSpace, "SREM"); break;
    case ROP_ZADD:
      rdPipeCmd(P, pOp->hdr.iSpace, "ZADD");
      rdPipeArg(P, pOp->hdr.aKey, pOp->hdr.nKey);
      if( pOp->eCond==RCOND_NX ) rdPipeArg(P, "NX", 2);
      if( pOp->eCond==RCOND_XX ) rdPipeArg(P, "XX", 2);
      rdDoubleArg(pOp->rScore, zBuf, sizeof(zBuf));
      rdPipeArgCopy(P, zBuf, -1);
      rdPipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_ZREM:    rdPipeCmd(P, pOp->hdr.iSpace, "ZREM"); break;
  }
  rdPipeArg(P, pOp->hdr.aKey, pOp->hdr.nKey);
  if( pOp->hdr.eOp==ROP_EXPIRE ) rdPipeArgInt(P, pOp->iNum);
  for(i=0; i<pOp->nArg; i++) rdPipeArg(P, pOp->aArg[i].z, pOp->aArg[i].n);
}

/* True if the reply of pOp sent alone says whether its condition held
** and a failure leaves nothing half done. */
static int opAlone(const RedisOp *pOp){
  return pOp->hdr.eOp!=ROP_LSET && pOp->eCond!=RCOND_NXKEY
      && pOp->eCond!=RCOND_STRING;
}

/* Did the reply to pOp say its condition failed (the row existed)? */
static int opConflicted(const RedisOp *pOp, const redisReply *r){
  if( pOp->eCond!=RCOND_NX ) return 0;
  if( pOp->hdr.eOp==ROP_SET ) return r->type==REDIS_REPLY_NIL;
  return r->type==REDIS_REPLY_INTEGER && r->integer==0;
}

/* Check every key the queue writes that no shadow covers yet: read it
** under WATCH (its type, or its content where a condition needs it) and
** replay the queue on it.  After this, EXEC cannot fail half way. */
int rdTxnValidate(RedisConn *p, char **pzErr){
  RedisTxn *t = &p->txn;
  FedKvHash need;
  FedKvElem *e;
  FedKvElem **aOrder = 0;       /* The keys of need, in queue order */
  ShadowReq *aReq = 0;
  int i, nReq = 0, nOrder = 0, rc = SQLITE_OK;
  memset(&need, 0, sizeof(need));
  for(i=0; i<t->kv.nOp && rc==SQLITE_OK; i++){
    RedisOp *pOp = rdOp(t, i);
    RBuf aKey[2];
    int k, nKey, bNew;
    if( pOp->hdr.bSkip ) continue;
    nKey = rdOpKeys(pOp, aKey);
    for(k=0; k<nKey; k++){
      if( rdShadowGet(t, pOp->hdr.iSpace, aKey[k].z, aKey[k].n) ) continue;
      e = fedKvHashAdd(&need, pOp->hdr.iSpace, aKey[k].z, aKey[k].n, &bNew);
      if( e==0 ){ rc = SQLITE_NOMEM; break; }
      if( bNew ){
        FedKvElem **a = sqlite3_realloc64(aOrder,
                                          sizeof(FedKvElem*)*(nOrder+1));
        if( a==0 ){
          fedKvHashRemove(&need, pOp->hdr.iSpace, aKey[k].z, aKey[k].n);
          rc = SQLITE_NOMEM;
          break;
        }
        aOrder = a;
        aOrder[nOrder++] = e;
        /* e->r: 1 if the first op overwrites the key whatever it held
        ** (DEL, SET): then nothing is read and the replay starts from an
        ** empty key (3 once a later op needs checking); 2 to read it. */
        e->r = (pOp->hdr.eOp==ROP_DEL || (pOp->hdr.eOp==ROP_SET
                && pOp->eCond==RCOND_NONE && pOp->eTtl!=RTTL_KEEP)) ? 1 : 0;
      }
      if( pOp->hdr.eOp==ROP_RENAME ){
        e->r = 2;
      }else if( rdOpNeedsCheck(pOp) ){
        if( e->r==1 ) e->r = 3;
        if( e->r==0 ) e->r = 2;
      }
      if( e->r==2 && rdOpNeedsContent(pOp) ) e->i = rdOpType(pOp);
    }
  }
  if( rc==SQLITE_OK && need.nElem>0 ){
    aReq = sqlite3_malloc64(sizeof(ShadowReq)*need.nElem);
    if( aReq==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK && need.nElem>0 ){
    for(i=0; i<nOrder; i++){
      e = aOrder[i];
      if( e->r<2 ) continue;
      aReq[nReq].iDb = e->iSpace;
      aReq[nReq].z = e->zKey;
      aReq[nReq].n = e->nKey;
      aReq[nReq].eWant = e->r==3 ? -1 : (int)e->i;
      nReq++;
    }
    rc = rdShadowLoad(p, aReq, nReq, pzErr);
  }
  sqlite3_free(aReq);
  sqlite3_free(aOrder);
  fedKvHashClear(&need);
  return rc;
}

/*
** Before the MULTI of a transaction that writes the commit marker of
** global id zGid, one round trip:
**
**   WATCH __federate:fence:<gid>     so that a later fence (rdMarkerCheck
**                                    touches that key) makes this EXEC
**                                    fail if it has not run yet
**   TYPE __federate:txn              the marker hash must be a hash (or
**                                    absent), or HSET would fail inside
**                                    EXEC after the writes were applied
**
** The WATCH must be answered before EXEC is sent: a WATCH still in flight
** with its EXEC would be registered after the fence.
*/
static int markerFence(RedisConn *p, const char *zGid, char **pzErr){
  RedisPipe P;
  int rc;
  char *zFence = sqlite3_mprintf("%s%s", RD_FENCE, zGid);
  if( zFence==0 ) return SQLITE_NOMEM;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, "WATCH");
  rdPipeArg(&P, zFence, -1);
  rdPipeCmd(&P, p->iDb, "TYPE");
  rdPipeArg(&P, RD_MARKER, -1);
  rc = P.rc ? P.rc : rdPipeRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    redisReply *r = P.apReply[1];
    if( P.apReply[0]->type==REDIS_REPLY_ERROR ){
      rdPipeReplyError(&P, 0, pzErr);
      rc = SQLITE_ERROR;
    }else if( r->type==REDIS_REPLY_ERROR ){
      rdPipeReplyError(&P, 1, pzErr);
      rc = SQLITE_ERROR;
    }else if( !(r->len==4 && memcmp(r->str, "none", 4)==0)
           && !(r->len==4 && memcmp(r->str, "hash", 4)==0) ){
      fedSetError(pzErr, "%s: cannot commit on server \"%s\": key %s, reserved"
          " for federate's commit markers, holds a %.*s instead of a hash"
          " (another client wrote it); nothing was written", RD_STORE,
          p->base.pServer->zName, RD_MARKER, (int)r->len, r->str);
      rc = SQLITE_ERROR;
    }
  }
  p->txn.bWatched = 1;
  rdPipeFree(&P);
  sqlite3_free(zFence);
  return rc;
}

/* The batch layer's xFlush: the statement's list tombstones. */
static int rdKvFlush(FedKvTxn *pKv, FedConn *pConn, char **pzErr){
  (void)pKv;
  return rdFlush(pConn, pzErr);
}

/* The batch layer's xApply (fedKvCommit has flushed and checked the
** doom): the queue as one MULTI ... EXEC. */
static int rdKvApply(FedKvTxn *pKv, FedConn *pConn, const char *zMarker,
                     char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = (RedisTxn*)pKv;
  RedisPipe P;
  RedisOp *pOne = 0;
  int i, n = 0, iExec, rc;

  for(i=0; i<t->kv.nOp; i++){
    if( !rdOp(t, i)->hdr.bSkip ){ n++; pOne = rdOp(t, i); }
  }
  if( n==0 && zMarker==0 ){
    if( t->bWatched ) p->bUnwatch = 1;
    return SQLITE_OK;
  }
  rdPipeInit(&P);

  if( n==1 && !t->bWatched && opAlone(pOne) && zMarker==0 ){
    /* One command that answers for itself: no MULTI, one round trip. */
    rc = fedFault(FED_FAULT_COMMIT, pzErr);
    if( rc ) goto done;
    pipeOp(&P, pOne);
    rc = rdPipeRun(p, &P, pzErr);
    if( rc ) goto done;
    if( P.apReply[0]->type==REDIS_REPLY_ERROR ){
      rdPipeReplyError(&P, 0, pzErr);
      rc = SQLITE_ERROR;
    }else if( opConflicted(pOne, P.apReply[0]) && !pOne->bIgnore ){
      rdOpError(pOne, 1, 0, pzErr);
      rc = SQLITE_CONSTRAINT;
    }
    goto done;
  }

  rc = rdTxnValidate(p, pzErr);
  if( rc==SQLITE_OK ) rc = fedKvDoomed(&t->kv, pzErr);
  if( rc ) goto done;
  if( zMarker ){
    rc = markerFence(p, zMarker, pzErr);
    if( rc ) goto done;
  }
  rc = fedFault(FED_FAULT_COMMIT, pzErr);
  if( rc ) goto done;
  rdPipeCmd(&P, -1, "MULTI");
  for(i=0; i<t->kv.nOp; i++){
    if( !rdOp(t, i)->hdr.bSkip ) pipeOp(&P, rdOp(t, i));
  }
  if( zMarker ){
    /* The commit marker, in the same MULTI/EXEC as the writes. */
    rdPipeCmd(&P, p->iDb, "HSET");
    rdPipeArg(&P, RD_MARKER, -1);
    rdPipeArg(&P, zMarker, -1);
    rdPipeArgInt(&P, (i64)time(0));
  }
  iExec = P.nCmd;
  rdPipeCmd(&P, -1, "EXEC");
  P.iBlame = iExec+1;
  rc = rdPipeRun(p, &P, pzErr);
  if( rc ){
    /* Every byte sent and no answer: EXEC may have run.  Only the marker
    ** can tell (txn.c asks it on a fresh connection). */
    if( rc==SQLITE_ERROR && P.bSent && zMarker ) pConn->bUnknown = 1;
    p->iCurDb = -1;
    goto done;
  }
  {
    redisReply *rExec = P.apReply[iExec];
    if( rExec->type==REDIS_REPLY_NIL ){
      fedSetError(pzErr, "%s: transaction on server \"%s\" aborted: a key it"
          " read or writes was changed by another client meanwhile (WATCH);"
          " nothing was written", RD_STORE, p->base.pServer->zName);
      rc = SQLITE_BUSY;
      p->iCurDb = -1;
    }else if( rExec->type!=REDIS_REPLY_ARRAY ){
      /* EXECABORT: a command was refused when queued; say which. */
      for(i=1; i<iExec; i++){
        if( P.apReply[i]->type==REDIS_REPLY_ERROR ){
          rdPipeReplyError(&P, i, pzErr);
          break;
        }
      }
      if( i>=iExec ) rdPipeReplyError(&P, iExec, pzErr);
      rc = SQLITE_ERROR;
      p->iCurDb = -1;
    }else{
      /* Applied.  An error here means the checks missed something:
      ** the other commands were applied (Redis does not roll back). */
      for(i=0; i<(int)rExec->elements; i++){
        if( rExec->element[i]->type==REDIS_REPLY_ERROR ){
          char *zMsg = sqlite3_mprintf("EXEC applied the transaction only in"
              " part: %.*s", (int)rExec->element[i]->len,
              rExec->element[i]->str);
          rdSetError(pzErr, zMsg ? zMsg : "EXEC failed in part", 0);
          sqlite3_free(zMsg);
          rc = SQLITE_ERROR;
          break;
        }
      }
    }
  }

done:
  rdPipeFree(&P);
  return rc;
}

int rdCommit(FedConn *pConn, char **pzErr){
  return fedKvCommit(&((RedisConn*)pConn)->txn.kv, pConn, pzErr);
}

int rdRollback(FedConn *pConn, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  if( p->txn.bWatched ) p->bUnwatch = 1;
  return fedKvRollback(&p->txn.kv, pzErr);
}

/* Savepoints are queue lengths (ext/kv.c). */
int rdSavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                       char **pzErr){
  return fedKvSavepoint(&((RedisConn*)pConn)->txn.kv, iRelease, iFrom, iTo,
                        pzErr);
}

int rdRelease(FedConn *pConn, int iLevel, char **pzErr){
  (void)pzErr;
  fedKvRelease(&((RedisConn*)pConn)->txn.kv, iLevel);
  return SQLITE_OK;
}

/* The statement's list tombstones go with the rows cut (rdKvOpDrop) or
** with the statement. */
static void rdKvRolledBackTo(FedKvTxn *pKv){
  fedKvHashClear(&((RedisTxn*)pKv)->lrem);
}

int rdRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  return fedKvRollbackTo(&((RedisConn*)pConn)->txn.kv, iLevel, pzErr);
}

/* Redis as a batch store (ext/kv.h).  ROLLBACK, SAVEPOINT and ROLLBACK TO
** send nothing, yet pass their fault sites (redis3 6.17-6.21). */
const FedKvDriver rdKvDriver = {
  .zStore = RD_STORE,
  .szOp = sizeof(RedisOp),
  .xOpFree = rdKvOpFree,
  .xOpDrop = rdKvOpDrop,
  .xRolledBackTo = rdKvRolledBackTo,
  .xCleared = rdKvCleared,
  .xRenderKey = rdRenderArg,
  .xFlush = rdKvFlush,
  .xApply = rdKvApply,
  .xImageRead = rdImageRead,
  .xImageSame = rdImageSame,
  .xImageRestore = rdImageRestore,
  .xImageRelease = rdImageRelease,
};

/**************************************************************************
** Commit markers (FedStore.xMarkerCheck): fields of the hash RD_MARKER in
** the DSN's database, written by rdCommit inside the transaction's
** MULTI/EXEC when the coordinator sets FedConn.zMarker.
*/

/* Send one command about the marker hash: zCmd RD_MARKER [zField].  On
** success *ppReply is the reply (freeReplyObject it). */
static int markerCmd(RedisConn *p, const char *zCmd, const char *zField,
                     redisReply **ppReply, char **pzErr){
  RedisPipe P;
  int rc;
  *ppReply = 0;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, zCmd);
  rdPipeArg(&P, RD_MARKER, -1);
  if( zField ) rdPipeArg(&P, zField, -1);
  rc = P.rc ? P.rc : rdPipeRun(p, &P, pzErr);
  if( rc==SQLITE_OK && P.apReply[0]->type==REDIS_REPLY_ERROR ){
    rdPipeReplyError(&P, 0, pzErr);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    *ppReply = P.apReply[0];
    P.apReply[0] = 0;
  }
  rdPipeFree(&P);
  rc = fedErrorRc(rc, *pzErr);
  return rc;
}

/* The fence, then the marker: SET and DEL of __federate:fence:<gid> touch
** the key that the transaction's connection WATCHed before its MULTI
** (markerFence), so its EXEC, if Redis has not run it yet (it waits in a
** lost connection's buffer, or Redis is stopped), fails whenever it
** comes; Redis runs one command at a time, so HEXISTS after it is final. */
int rdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                  char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc, i;
  char *zFence = sqlite3_mprintf("%s%s", RD_FENCE, zGid);
  *pbExists = 0;
  if( zFence==0 ) return SQLITE_NOMEM;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, "SET");
  rdPipeArg(&P, zFence, -1);
  rdPipeArg(&P, "1", 1);
  rdPipeCmd(&P, p->iDb, "DEL");
  rdPipeArg(&P, zFence, -1);
  rdPipeCmd(&P, p->iDb, "HEXISTS");
  rdPipeArg(&P, RD_MARKER, -1);
  rdPipeArg(&P, zGid, -1);
  rc = P.rc ? P.rc : rdPipeRun(p, &P, pzErr);
  for(i=0; rc==SQLITE_OK && i<3; i++){
    if( P.apReply[i]->type==REDIS_REPLY_ERROR ){
      rdPipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    *pbExists = P.apReply[2]->type==REDIS_REPLY_INTEGER
             && P.apReply[2]->integer==1;
  }
  rdPipeFree(&P);
  sqlite3_free(zFence);
  rc = fedErrorRc(rc, *pzErr);
  return rc;
}

int rdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  redisReply *r = 0;
  int rc = markerCmd((RedisConn*)pConn, "HDEL", zGid, &r, pzErr);
  if( r ) freeReplyObject(r);
  return rc;
}

int rdMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                 int *pn, char **pzErr){
  redisReply *r = 0;
  char **az = 0;
  int n = 0, rc;
  size_t i;
  *pazGid = 0;
  *pn = 0;
  rc = markerCmd((RedisConn*)pConn, "HKEYS", 0, &r, pzErr);
  if( rc ) return rc;
  for(i=0; r->type==REDIS_REPLY_ARRAY && rc==SQLITE_OK && i<r->elements; i++){
    redisReply *e = r->element[i];
    if( e->type!=REDIS_REPLY_STRING ) continue;
    rc = fedKvNameAdd(&az, &n, zPrefix, e->str, (int)e->len);
  }
  freeReplyObject(r);
  if( rc ){
    fedKvNamesFree(az, n);
    return rc;
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}
