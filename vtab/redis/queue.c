/*
** queue.c: the transaction queue (RedisOp) and its shadows: queued
** writes replayed on the keys' read state (rdShadowApply) and the reads
** that give keys their shadows (rdShadowLoad).
**
** Writes never reach Redis before COMMIT: each becomes a RedisOp.  So that
** reads inside the transaction see its own writes, a key with queued
** commands (a dirty key) is read through its shadow: its state on the
** server, read under WATCH, with the queued commands replayed here.  The
** replay is also how COMMIT checks, before sending MULTI, that no command
** inside EXEC can fail (Redis would apply the others): INSERT conflicts,
** wrong types, a list changed under an index.
*/
#include "redisInt.h"

/* The batch layer's driver (rdKvDriver, txn.c): Redis's part of an op. */
void rdKvOpFree(FedKvOp *pHdr){
  RedisOp *pOp = (RedisOp*)pHdr;
  int i;
  for(i=0; i<pOp->nArg; i++) rdBufFree(&pOp->aArg[i]);
  sqlite3_free(pOp->aArg);
  pOp->aArg = 0;
  pOp->nArg = 0;
}

void rdShadowReset(RedisShadow *sh){
  int i;
  rdBufFree(&sh->str);
  fedKvHashClear(&sh->map);
  for(i=0; i<sh->nList; i++) rdBufFree(&sh->aList[i]);
  sqlite3_free(sh->aList);
  sh->aList = 0;
  sh->nList = sh->nListAlloc = 0;
}

void rdShadowFree(void *pArg){
  RedisShadow *sh = (RedisShadow*)pArg;
  if( sh ){
    rdShadowReset(sh);
    sqlite3_free(sh);
  }
}

static void rbufPtrFree(void *p){
  rdBufFree((RBuf*)p);
  sqlite3_free(p);
}

/* The transaction ended (fedKvTxnClear): its shadows and what it saw go
** with the queue. */
void rdKvCleared(FedKvTxn *pKv){
  RedisTxn *t = (RedisTxn*)pKv;
  fedKvHashClear(&t->shadow);
  fedKvHashClear(&t->seenType);
  fedKvHashClear(&t->lrem);
  t->bWatched = 0;
  t->iRowSeq = 0;
  t->shadow.xDel = rdShadowFree;
}

void rdTxnClear(RedisTxn *t){
  fedKvTxnClear(&t->kv);
}

RedisShadow *rdShadowGet(RedisTxn *t, int iDb, const char *z, int n){
  FedKvElem *e = fedKvHashFind(&t->shadow, iDb, z, n);
  return e ? (RedisShadow*)e->pVal : 0;
}

void rdShadowDrop(RedisTxn *t, int iDb, const char *z, int n){
  fedKvHashRemove(&t->shadow, iDb, z, n);
}

/* The keys an op touches: its key, and for RENAME the new name (aKey[]
** points into the op). */
int rdOpKeys(const RedisOp *pOp, RBuf *aKey){
  aKey[0].z = pOp->hdr.aKey;
  aKey[0].n = pOp->hdr.nKey;
  if( pOp->hdr.aKey2 ){
    aKey[1].z = pOp->hdr.aKey2;
    aKey[1].n = pOp->hdr.nKey2;
    return 2;
  }
  return 1;
}

int rdTxnIsDirty(RedisTxn *t, int iDb, const char *z, int n){
  return fedKvLast(&t->kv, iDb, z, n)>=0;
}

/* An op cut from the queue (statement or row rolled back): its keys'
** shadows are dropped, to be rebuilt from the server and the queue. */
void rdKvOpDrop(FedKvTxn *pKv, FedKvOp *pHdr){
  RedisTxn *t = (RedisTxn*)pKv;
  RedisOp *pOp = (RedisOp*)pHdr;
  RBuf aKey[2];
  int i, nKey = rdOpKeys(pOp, aKey);
  for(i=0; i<nKey; i++){
    rdShadowDrop(t, pOp->hdr.iSpace, aKey[i].z, aKey[i].n);
    if( pOp->hdr.eOp==ROP_LSET || pOp->hdr.eOp==ROP_LREM ){
      fedKvHashRemove(&t->lrem, pOp->hdr.iSpace, aKey[i].z, aKey[i].n);
    }
  }
}

/* Remove the ops from nOp on (rdKvOpDrop for each). */
void rdTxnTruncate(RedisTxn *t, int nOp){
  fedKvTruncate(&t->kv, nOp);
}

/* A new op at the end of the queue with nArg empty arguments; NULL on
** OOM.  It is part of the queue (and of its index by key) once
** rdOpCommit() is called; until then fedKvOpDiscard() it on error. */
RedisOp *rdOpNew(RedisTxn *t, int eOp, int iDb, int iRow,
                      const char *zKey, int nKey, int nArg){
  RedisOp *pOp = (RedisOp*)fedKvOpNew(&t->kv, eOp, 1, iDb, zKey, nKey);
  if( pOp==0 ) return 0;
  pOp->iRow = iRow;
  if( nArg>0 ){
    pOp->aArg = sqlite3_malloc64(sizeof(RBuf)*nArg);
    if( pOp->aArg==0 ){
      fedKvOpDiscard(&t->kv);
      return 0;
    }
    memset(pOp->aArg, 0, sizeof(RBuf)*nArg);
    pOp->nArg = nArg;
  }
  return pOp;
}

/* Queue the op rdOpNew built (RENAME's new name is its second key). */
int rdOpCommit(RedisTxn *t){
  RedisOp *pOp = rdOp(t, t->kv.nOp);
  if( pOp->hdr.eOp==ROP_RENAME
   && fedKvOpSetKey2(&pOp->hdr, pOp->aArg[0].z, pOp->aArg[0].n) ){
    fedKvOpDiscard(&t->kv);
    return SQLITE_NOMEM;
  }
  return fedKvOpAppend(&t->kv);
}

/* The type of the keys an op writes, or RT_NONE for any type. */
int rdOpType(const RedisOp *pOp){
  switch( pOp->hdr.eOp ){
    case ROP_SET: return RT_STRING;
    case ROP_HSET: case ROP_HDEL: return RT_HASH;
    case ROP_RPUSH: case ROP_LSET: case ROP_LREM: return RT_LIST;
    case ROP_SADD: case ROP_SREM: return RT_SET;
    case ROP_ZADD: case ROP_ZREM: return RT_ZSET;
  }
  return RT_NONE;
}

/* True if checking pOp needs the content of its key, not just the type. */
int rdOpNeedsContent(const RedisOp *pOp){
  if( pOp->hdr.eOp==ROP_LSET ) return 1;
  return pOp->eCond==RCOND_NX
      && (pOp->hdr.eOp==ROP_HSET || pOp->hdr.eOp==ROP_SADD
          || pOp->hdr.eOp==ROP_ZADD);
}

/* True if pOp can fail inside EXEC, so that its key must be checked. */
int rdOpNeedsCheck(const RedisOp *pOp){
  switch( pOp->hdr.eOp ){
    case ROP_DEL: case ROP_EXPIRE: case ROP_PERSIST: return 0;
    case ROP_SET: return pOp->eCond!=RCOND_NONE;
  }
  return 1;
}

static void shadowClear(RedisShadow *sh){
  rdShadowReset(sh);
  sh->eType = RT_NONE;
  sh->bContent = 1;
  sh->iTtl = -1;
}

/* Set *pzErr for a condition or type failure of pOp. */
void rdOpError(const RedisOp *pOp, int eErr, const RedisShadow *sh,
               char **pzErr){
  char *zKey = rdRenderKey(pOp->hdr.aKey, pOp->hdr.nKey);
  char *zSub = pOp->nArg>0 ? rdRenderKey(pOp->aArg[0].z, pOp->aArg[0].n) : 0;
  switch( eErr ){
    case 1:       /* A row that exists already */
      if( pOp->hdr.eOp==ROP_HSET && pOp->eCond==RCOND_NX ){
        fedSetError(pzErr, "%s: cannot insert: field %s of hash %s already"
                    " exists", RD_STORE, zSub, zKey);
      }else if( pOp->hdr.eOp==ROP_SADD || pOp->hdr.eOp==ROP_ZADD ){
        fedSetError(pzErr, "%s: cannot insert: member %s of %s %s already"
            " exists", RD_STORE, zSub, pOp->hdr.eOp==ROP_SADD ? "set" : "zset",
            zKey);
      }else if( pOp->hdr.eOp==ROP_RENAME ){
        fedSetError(pzErr, "%s: cannot rename key %s: key %s already exists",
                    RD_STORE, zKey, zSub);
      }else{
        fedSetError(pzErr, "%s: cannot insert: key %s already exists",
                    RD_STORE, zKey);
      }
      break;
    case 2:       /* Wrong type */
      fedSetError(pzErr, "%s: key %s holds a %s, not a %s (WRONGTYPE)",
          RD_STORE, zKey, rdTypeName(sh->eType),
          rdTypeName(pOp->hdr.eOp==ROP_RENAME ? RT_STRING : rdOpType(pOp)));
      break;
    case 3:       /* Gone */
      fedSetError(pzErr, "%s: key %s no longer exists", RD_STORE, zKey);
      break;
    default:      /* A list changed under an index */
      fedSetError(pzErr, "%s: list %s changed since it was read (element"
                  " %lld)", RD_STORE, zKey, pOp->iNum);
      break;
  }
  sqlite3_free(zKey);
  sqlite3_free(zSub);
}

/*
** Apply pOp to the shadow sh of its key (sh2: of the new name, RENAME).
** Returns SQLITE_OK; SQLITE_CONSTRAINT when its condition fails (the row
** exists); SQLITE_ERROR when it would fail in EXEC; SQLITE_DONE when the
** shadow lacks the content to decide; or SQLITE_NOMEM.
*/
int rdShadowApply(const RedisOp *pOp, RedisShadow *sh, RedisShadow *sh2,
                  char **pzErr){
  int eWant = rdOpType(pOp);
  int i;
  if( eWant!=RT_NONE && sh->eType!=RT_NONE && sh->eType!=eWant
   && !(pOp->hdr.eOp==ROP_SET && pOp->eCond==RCOND_NONE) ){
    if( pOp->hdr.eOp==ROP_SET && pOp->eCond==RCOND_NX ){
      rdOpError(pOp, 1, sh, pzErr);
      return SQLITE_CONSTRAINT;
    }
    rdOpError(pOp, 2, sh, pzErr);
    return SQLITE_ERROR;
  }
  switch( pOp->hdr.eOp ){
    case ROP_SET:
      if( pOp->eCond==RCOND_NX && sh->eType!=RT_NONE ){
        rdOpError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( pOp->eCond==RCOND_STRING && sh->eType==RT_NONE ){
        rdOpError(pOp, 3, sh, pzErr);
        return SQLITE_ERROR;
      }
      {
        i64 iTtl = sh->iTtl;
        if( sh->eType==RT_NONE ) iTtl = -1;
        rdShadowReset(sh);
        if( rdBufSet(&sh->str, pOp->aArg[0].z, pOp->aArg[0].n) ){
          shadowClear(sh);
          return SQLITE_NOMEM;
        }
        sh->eType = RT_STRING;
        sh->bContent = 1;
        sh->iTtl = pOp->eTtl==RTTL_EX ? pOp->iNum
                 : pOp->eTtl==RTTL_KEEP ? iTtl : -1;
      }
      return SQLITE_OK;
    case ROP_DEL:
      shadowClear(sh);
      return SQLITE_OK;
    case ROP_EXPIRE:
      if( sh->eType!=RT_NONE ){
        if( pOp->iNum<=0 ) shadowClear(sh);
        else sh->iTtl = pOp->iNum;
      }
      return SQLITE_OK;
    case ROP_PERSIST:
      if( sh->eType!=RT_NONE ) sh->iTtl = -1;
      return SQLITE_OK;
    case ROP_RENAME:
      if( sh->eType==RT_NONE ){
        rdOpError(pOp, 3, sh, pzErr);
        return SQLITE_ERROR;
      }
      if( pOp->eCond==RCOND_NX && sh2->eType!=RT_NONE ){
        rdOpError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      rdShadowReset(sh2);
      *sh2 = *sh;
      memset(sh, 0, sizeof(*sh));
      shadowClear(sh);
      return SQLITE_OK;
    case ROP_HSET:
      if( pOp->eCond==RCOND_NXKEY && sh->eType!=RT_NONE ){
        rdOpError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( sh->eType==RT_NONE ){
        shadowClear(sh);
        sh->eType = RT_HASH;
      }else if( !sh->bContent ){
        return pOp->eCond==RCOND_NX ? SQLITE_DONE : SQLITE_OK;
      }
      if( pOp->eCond==RCOND_NX
       && fedKvHashFind(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n) ){
        rdOpError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      sh->map.xDel = rbufPtrFree;
      for(i=0; i+1<pOp->nArg; i+=2){
        FedKvElem *e = fedKvHashAdd(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n,
                                 0);
        RBuf *pV;
        if( e==0 ) return SQLITE_NOMEM;
        pV = (RBuf*)e->pVal;
        if( pV==0 ){
          pV = sqlite3_malloc64(sizeof(RBuf));
          if( pV==0 ){
            fedKvHashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
            return SQLITE_NOMEM;
          }
          memset(pV, 0, sizeof(*pV));
          e->pVal = pV;
        }
        if( rdBufSet(pV, pOp->aArg[i+1].z, pOp->aArg[i+1].n) ){
          fedKvHashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
          return SQLITE_NOMEM;
        }
      }
      return SQLITE_OK;
    case ROP_HDEL: case ROP_SREM: case ROP_ZREM:
      if( sh->eType==RT_NONE || !sh->bContent ) return SQLITE_OK;
      for(i=0; i<pOp->nArg; i++){
        fedKvHashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
      }
      if( sh->map.nElem==0 ) shadowClear(sh);
      return SQLITE_OK;
    case ROP_RPUSH:
      if( sh->eType==RT_NONE ){
        shadowClear(sh);
        sh->eType = RT_LIST;
      }
      if( !sh->bContent ) return SQLITE_OK;
      if( sh->nList>=sh->nListAlloc ){
        int nNew = sh->nListAlloc ? sh->nListAlloc*2 : 8;
        RBuf *a = sqlite3_realloc64(sh->aList, sizeof(RBuf)*nNew);
        if( a==0 ) return SQLITE_NOMEM;
        sh->aList = a;
        sh->nListAlloc = nNew;
      }
      memset(&sh->aList[sh->nList], 0, sizeof(RBuf));
      if( rdBufSet(&sh->aList[sh->nList], pOp->aArg[0].z, pOp->aArg[0].n) ){
        return SQLITE_NOMEM;
      }
      sh->nList++;
      return SQLITE_OK;
    case ROP_LSET:
      if( sh->eType==RT_NONE ){
        rdOpError(pOp, 4, sh, pzErr);
        return SQLITE_ERROR;
      }
      if( !sh->bContent ) return SQLITE_DONE;
      if( pOp->iNum<0 || pOp->iNum>=sh->nList
       || !rdBufEq(&sh->aList[pOp->iNum], pOp->aArg[1].z, pOp->aArg[1].n) ){
        rdOpError(pOp, 4, sh, pzErr);
        return SQLITE_ERROR;
      }
      return rdBufSet(&sh->aList[pOp->iNum], pOp->aArg[0].z, pOp->aArg[0].n);
    case ROP_LREM:
      if( sh->eType==RT_NONE || !sh->bContent ) return SQLITE_OK;
      {
        int j = 0;
        for(i=0; i<sh->nList; i++){
          if( rdBufEq(&sh->aList[i], pOp->aArg[0].z, pOp->aArg[0].n) ){
            rdBufFree(&sh->aList[i]);
          }else{
            sh->aList[j++] = sh->aList[i];
          }
        }
        sh->nList = j;
        if( j==0 ) shadowClear(sh);
      }
      return SQLITE_OK;
    case ROP_SADD: case ROP_ZADD: {
      FedKvElem *e;
      int bNew;
      if( sh->eType==RT_NONE ){
        if( pOp->eCond==RCOND_XX ) return SQLITE_OK;
        shadowClear(sh);
        sh->eType = eWant;
      }else if( !sh->bContent ){
        return pOp->eCond==RCOND_NX ? SQLITE_DONE : SQLITE_OK;
      }
      e = fedKvHashFind(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n);
      if( e && pOp->eCond==RCOND_NX ){
        rdOpError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( e==0 && pOp->eCond==RCOND_XX ) return SQLITE_OK;
      e = fedKvHashAdd(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n, &bNew);
      if( e==0 ) return SQLITE_NOMEM;
      e->r = pOp->rScore;
      return SQLITE_OK;
    }
  }
  return SQLITE_OK;
}

/* Fill a new shadow from the replies to TYPE, TTL and the fetch. */
int rdShadowFill(RedisShadow *sh, redisReply *rType, redisReply *rTtl,
                 redisReply *rData, int eWant){
  int i;
  shadowClear(sh);
  sh->bContent = 0;
  if( rType==0 || rType->type!=REDIS_REPLY_STATUS ) return SQLITE_ERROR;
  sh->eType = rdTypeFromName(rType->str, (int)rType->len);
  if( rTtl && rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
    sh->iTtl = rTtl->integer;
  }
  if( sh->eType==RT_NONE ){
    sh->bContent = 1;
    return SQLITE_OK;
  }
  if( eWant==RT_NONE || sh->eType!=eWant || rData==0
   || rData->type==REDIS_REPLY_ERROR ){
    return SQLITE_OK;
  }
  switch( sh->eType ){
    case RT_STRING:
      if( rData->type!=REDIS_REPLY_STRING ) return SQLITE_OK;
      if( rdBufSet(&sh->str, rData->str, (int)rData->len) ) return SQLITE_NOMEM;
      break;
    case RT_HASH:
      sh->map.xDel = rbufPtrFree;
      for(i=0; i+1<(int)rData->elements; i+=2){
        redisReply *f = rData->element[i], *v = rData->element[i+1];
        FedKvElem *e = fedKvHashAdd(&sh->map, 0, f->str, (int)f->len, 0);
        RBuf *pV;
        if( e==0 ) return SQLITE_NOMEM;
        pV = sqlite3_malloc64(sizeof(RBuf));
        if( pV==0 ) return SQLITE_NOMEM;
        memset(pV, 0, sizeof(*pV));
        e->pVal = pV;
        if( rdBufSet(pV, v->str, (int)v->len) ) return SQLITE_NOMEM;
      }
      break;
    case RT_LIST:
      if( rData->elements>0 ){
        sh->aList = sqlite3_malloc64(sizeof(RBuf)*rData->elements);
        if( sh->aList==0 ) return SQLITE_NOMEM;
        memset(sh->aList, 0, sizeof(RBuf)*rData->elements);
        sh->nListAlloc = (int)rData->elements;
      }
      for(i=0; i<(int)rData->elements; i++){
        redisReply *v = rData->element[i];
        if( rdBufSet(&sh->aList[i], v->str, (int)v->len) ) return SQLITE_NOMEM;
        sh->nList++;
      }
      break;
    case RT_SET:
      for(i=0; i<(int)rData->elements; i++){
        redisReply *m = rData->element[i];
        if( fedKvHashAdd(&sh->map, 0, m->str, (int)m->len, 0)==0 ){
          return SQLITE_NOMEM;
        }
      }
      break;
    case RT_ZSET:
      for(i=0; i+1<(int)rData->elements; i+=2){
        redisReply *m = rData->element[i], *s = rData->element[i+1];
        FedKvElem *e = fedKvHashAdd(&sh->map, 0, m->str, (int)m->len, 0);
        if( e==0 ) return SQLITE_NOMEM;
        e->r = strtod(s->str, 0);
      }
      break;
  }
  sh->bContent = 1;
  return SQLITE_OK;
}

/* Add the command that reads a whole key of type eType to P. */
void rdPipeFetchWhole(RedisPipe *P, int iDb, int eType, const char *z,
                      int n){
  switch( eType ){
    case RT_STRING:
      rdPipeCmd(P, iDb, "GET");
      rdPipeArg(P, z, n);
      break;
    case RT_HASH:
      rdPipeCmd(P, iDb, "HGETALL");
      rdPipeArg(P, z, n);
      break;
    case RT_LIST:
      rdPipeCmd(P, iDb, "LRANGE");
      rdPipeArg(P, z, n);
      rdPipeArg(P, "0", 1);
      rdPipeArg(P, "-1", 2);
      break;
    case RT_SET:
      rdPipeCmd(P, iDb, "SMEMBERS");
      rdPipeArg(P, z, n);
      break;
    case RT_ZSET:
      rdPipeCmd(P, iDb, "ZRANGE");
      rdPipeArg(P, z, n);
      rdPipeArg(P, "0", 1);
      rdPipeArg(P, "-1", 2);
      rdPipeArg(P, "WITHSCORES", 10);
      break;
  }
}

/* WATCH the keys of aE[0..n) (all in database iDb), in chunks. */
static void pipeWatch(RedisPipe *P, int iDb, FedKvElem **aE, int n){
  int i;
  for(i=0; i<n; i++){
    if( i%RD_WATCH_CHUNK==0 ) rdPipeCmd(P, iDb, "WATCH");
    rdPipeArg(P, aE[i]->zKey, aE[i]->nKey);
  }
}

/*
** Give every key of aReq a shadow that holds at least what it asks for:
** read the keys (and, through RENAMEs, the keys their content came from
** or went to) under WATCH, then replay the queued ops that touch them.
** A failed replay is an error (the transaction is doomed: some INSERT
** already accepted conflicts, or a command would fail in EXEC), except
** for INSERT OR IGNORE rows, whose ops are marked bSkip.
*/
int rdShadowLoad(RedisConn *p, ShadowReq *aReq, int nReq, char **pzErr){
  RedisTxn *t = &p->txn;
  FedKvHash set;                    /* Keys to load: elem.i = type wanted */
  FedKvElem **aE = 0;
  RedisPipe P;
  int *aiCmd = 0;               /* First command (TYPE) of each key, or -1 */
  int i, j, nE = 0, nF = 0, rc = SQLITE_OK, bMore, bNew;

  memset(&set, 0, sizeof(set));
  rdPipeInit(&P);
  for(i=0; i<nReq; i++){
    RedisShadow *sh = rdShadowGet(t, aReq[i].iDb, aReq[i].z, aReq[i].n);
    FedKvElem *e;
    if( sh && (aReq[i].eWant==RT_NONE || sh->bContent
               || sh->eType!=aReq[i].eWant) ){
      continue;
    }
    e = fedKvHashAdd(&set, aReq[i].iDb, aReq[i].z, aReq[i].n, &bNew);
    if( e==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    if( bNew ) e->r = set.nElem;
    if( aReq[i].eWant!=RT_NONE ) e->i = aReq[i].eWant;
  }
  if( set.nElem==0 ) goto cleanup;

  /* Keys connected by a RENAME are rebuilt together. */
  do{
    bMore = 0;
    for(i=0; i<t->kv.nOp; i++){
      RedisOp *pOp = rdOp(t, i);
      FedKvElem *e1, *e2;
      if( pOp->hdr.eOp!=ROP_RENAME ) continue;
      e1 = fedKvHashFind(&set, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey);
      e2 = fedKvHashFind(&set, pOp->hdr.iSpace, pOp->aArg[0].z, pOp->aArg[0].n);
      if( (e1==0)==(e2==0) ) continue;
      if( e1==0 ){
        e1 = fedKvHashAdd(&set, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey,
                          0);
        if( e1==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
        e1->i = e2->i;
        e1->r = set.nElem;
      }else{
        e2 = fedKvHashAdd(&set, pOp->hdr.iSpace, pOp->aArg[0].z,
                          pOp->aArg[0].n, 0);
        if( e2==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
        e2->i = e1->i;
        e2->r = set.nElem;
      }
      bMore = 1;
    }
  }while( bMore );

  aE = sqlite3_malloc64(sizeof(FedKvElem*)*set.nElem);
  aiCmd = sqlite3_malloc64(sizeof(int)*set.nElem);
  if( aE==0 || aiCmd==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  {
    FedKvElem *e;
    FEDKV_EACH(&set, i, e){ aE[(int)e->r-1] = e; nE++; }
  }

  /* The keys to read come first (a watched read may have told a key's
  ** type already), grouped by database for WATCH. */
  for(i=0; i<nE; i++){
    FedKvElem *eSeen = fedKvHashFind(&t->seenType, aE[i]->iSpace, aE[i]->zKey,
                                  aE[i]->nKey);
    if( aE[i]->i<0 ) continue;
    if( eSeen && (aE[i]->i==RT_NONE || eSeen->i==RT_NONE) ) continue;
    /* Stable: move aE[i] down to aE[nF]. */
    { FedKvElem *t0 = aE[i]; for(j=i; j>nF; j--) aE[j] = aE[j-1]; aE[nF] = t0; }
    nF++;
  }
  for(i=0; i<nF; i++){
    int iDb = aE[i]->iSpace, n = 0;
    if( i>0 && aE[i-1]->iSpace==iDb ) continue;
    for(j=i; j<nF; j++){
      if( aE[j]->iSpace==iDb ){
        FedKvElem *t0 = aE[j];
        int k;
        for(k=j; k>i+n; k--) aE[k] = aE[k-1];
        aE[i+n] = t0;
        n++;
      }
    }
    pipeWatch(&P, iDb, &aE[i], n);
  }
  for(i=0; i<nE; i++){
    aiCmd[i] = -1;
    if( i>=nF ) continue;
    aiCmd[i] = P.nCmd;
    rdPipeCmd(&P, aE[i]->iSpace, "TYPE");
    rdPipeArg(&P, aE[i]->zKey, aE[i]->nKey);
    rdPipeCmd(&P, aE[i]->iSpace, "TTL");
    rdPipeArg(&P, aE[i]->zKey, aE[i]->nKey);
    if( aE[i]->i!=RT_NONE ){
      rdPipeFetchWhole(&P, aE[i]->iSpace, (int)aE[i]->i, aE[i]->zKey,
                       aE[i]->nKey);
    }
  }
  if( P.rc ){
    rc = P.rc;
    goto cleanup;
  }
  if( P.nCmd>0 ){
    rc = rdPipeRun(p, &P, pzErr);
    if( rc ) goto cleanup;
    t->bWatched = 1;
  }
  for(i=0; i<P.nCmd; i++){
    redisReply *r = P.apReply[i];
    if( r->type==REDIS_REPLY_ERROR && !rdIsWrongType(r) ){
      rdPipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }

  /* The shadows as the server has them. */
  for(i=0; i<nE && rc==SQLITE_OK; i++){
    RedisShadow *sh = sqlite3_malloc64(sizeof(RedisShadow));
    FedKvElem *e;
    if( sh==0 ){ rc = SQLITE_NOMEM; break; }
    memset(sh, 0, sizeof(*sh));
    rdShadowDrop(t, aE[i]->iSpace, aE[i]->zKey, aE[i]->nKey);
    e = fedKvHashAdd(&t->shadow, aE[i]->iSpace, aE[i]->zKey, aE[i]->nKey, 0);
    if( e==0 ){ rdShadowFree(sh); rc = SQLITE_NOMEM; break; }
    e->pVal = sh;
    if( aiCmd[i]<0 && aE[i]->i<0 ){
      shadowClear(sh);              /* Overwritten first: start empty */
    }else if( aiCmd[i]<0 ){
      FedKvElem *eSeen = fedKvHashFind(&t->seenType, aE[i]->iSpace, aE[i]->zKey,
                                    aE[i]->nKey);
      shadowClear(sh);
      sh->eType = (int)eSeen->i;
      sh->bContent = sh->eType==RT_NONE;
    }else{
      int k = aiCmd[i];
      rc = rdShadowFill(sh, P.apReply[k], P.apReply[k+1],
                        aE[i]->i!=RT_NONE ? P.apReply[k+2] : 0, (int)aE[i]->i);
      if( rc==SQLITE_ERROR ){
        rdSetError(pzErr, "unexpected reply to TYPE", 0);
      }
    }
  }
  if( rc ){
    /* Half-built shadows would lie: drop them all. */
    for(i=0; i<nE; i++){
      rdShadowDrop(t, aE[i]->iSpace, aE[i]->zKey, aE[i]->nKey);
    }
    goto cleanup;
  }

  /* Replay the queue on them. */
  for(i=0; i<t->kv.nOp; i++){
    RedisOp *pOp = rdOp(t, i);
    if( fedKvHashFind(&set, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey) ){
      pOp->hdr.bSkip = 0;
    }
  }
  for(i=0; i<t->kv.nOp && rc==SQLITE_OK; i++){
    RedisOp *pOp = rdOp(t, i);
    RedisShadow *sh, *sh2 = 0;
    char *zErr = 0;
    int rc2;
    if( pOp->hdr.bSkip ) continue;
    if( !fedKvHashFind(&set, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey) ){
      continue;
    }
    sh = rdShadowGet(t, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey);
    if( pOp->hdr.eOp==ROP_RENAME ){
      sh2 = rdShadowGet(t, pOp->hdr.iSpace, pOp->aArg[0].z, pOp->aArg[0].n);
    }
    rc2 = rdShadowApply(pOp, sh, sh2, &zErr);
    if( rc2==SQLITE_CONSTRAINT && pOp->bIgnore ){
      /* INSERT OR IGNORE: the row's commands are dropped. */
      for(j=i; j<t->kv.nOp && rdOp(t, j)->iRow==pOp->iRow; j++){
        RedisOp *pO2 = rdOp(t, j);
        rdOp(t, j)->hdr.bSkip = 1;
        if( j>i && !fedKvHashFind(&set, pO2->hdr.iSpace, pO2->hdr.aKey,
                                  pO2->hdr.nKey) ){
          rdShadowDrop(t, pO2->hdr.iSpace, pO2->hdr.aKey, pO2->hdr.nKey);
        }
      }
      sqlite3_free(zErr);
      continue;
    }
    if( rc2==SQLITE_DONE ){
      rdSetError(&zErr, "internal error: a check needed content that was"
                 " not read", 0);
      rc2 = SQLITE_ERROR;
    }
    if( rc2!=SQLITE_OK ){
      if( rc2!=SQLITE_NOMEM ) fedKvDoom(&t->kv, zErr);
      if( rc2!=SQLITE_NOMEM ){
        sqlite3_free(*pzErr);
        *pzErr = zErr;
        zErr = 0;
        rc2 = SQLITE_ERROR;
      }
      rc = rc2;
    }
    sqlite3_free(zErr);
  }
  if( rc ){
    for(i=0; i<nE; i++){
      rdShadowDrop(t, aE[i]->iSpace, aE[i]->zKey, aE[i]->nKey);
    }
  }

cleanup:
  rdPipeFree(&P);
  sqlite3_free(aE);
  sqlite3_free(aiCmd);
  fedKvHashClear(&set);
  return rc;
}
