/*
** undo.c: undo images of keys (xUndoImages, xUndoApply).
**
** Undo images (FedStore.xUndoImages, ext/undo.c): for a transaction that
** writes this server and another without two-phase commit.  An image is
** one whole key of any type, in a canonical encoding:
**
**   byte 0       's' string, 'h' hash, 'l' list, 'S' set, 'z' zset
**   bytes 1..8   the expiry, Unix time in ms, big-endian (-1: none)
**   the rest     string: its bytes.  Otherwise elements, each a 4-byte
**                big-endian length and its bytes: a list's in order; a
**                hash's field and value pairs, a set's members, a zset's
**                members each followed by its score (8 bytes, the IEEE
**                bits, big-endian), sorted by field or member bytes.
**
** The before-images are read under WATCH, so that the commit fails if a
** key changes before EXEC, and the after-images are what replaying the
** queue on them leaves (as the checks before EXEC replay it).  Two images
** hold the same key when all but the expiry match: an expiry is put back
** with the before-image (PEXPIREAT; one already past removes the key, as
** it would have expired) but not compared, and an after-image carries
** none.  Keys of other types (streams, modules) are refused.
*/
#include "redisInt.h"

#define IMG_HDR 9               /* Type byte and expiry */

static const char imgTag[] = "?shlSz";      /* Indexed by RT_* */

static int imgType(char c){
  const char *z = strchr(imgTag+1, c);
  return c && z ? (int)(z - imgTag) : RT_NONE;
}

static void imgPutBytes(sqlite3_str *s, const char *z, int n){
  char a[4];
  a[0] = (char)(n>>24); a[1] = (char)(n>>16); a[2] = (char)(n>>8);
  a[3] = (char)n;
  sqlite3_str_append(s, a, 4);
  if( n>0 ) sqlite3_str_append(s, z, n);
}

static void imgPut64(sqlite3_str *s, u64 v){
  char a[8];
  int i;
  for(i=0; i<8; i++) a[i] = (char)(v >> (56-8*i));
  sqlite3_str_append(s, a, 8);
}

static u64 imgGet64(const char *a){
  u64 v = 0;
  int i;
  for(i=0; i<8; i++) v = (v<<8) | (u8)a[i];
  return v;
}

static int elemCmp(const void *pA, const void *pB){
  const FedKvElem *x = *(FedKvElem*const*)pA, *y = *(FedKvElem*const*)pB;
  int c = memcmp(x->zKey, y->zKey, x->nKey<y->nKey ? x->nKey : y->nKey);
  return c ? c : x->nKey - y->nKey;
}

/* The image of shadow sh with expiry iExp into *pa, *pn (sqlite3_malloc'd;
** NULL for no key).  SQLITE_OK, SQLITE_NOMEM or SQLITE_TOOBIG. */
static int imageOf(const RedisShadow *sh, i64 iExp, char **pa, int *pn){
  sqlite3_str *s;
  FedKvElem **aE = 0, *e;
  int i, n = 0, rc;
  *pa = 0;
  *pn = 0;
  if( sh->eType==RT_NONE ) return SQLITE_OK;
  s = sqlite3_str_new(0);
  sqlite3_str_appendchar(s, 1, imgTag[sh->eType]);
  imgPut64(s, (u64)iExp);
  if( sh->eType==RT_STRING ){
    if( sh->str.n>0 ) sqlite3_str_append(s, sh->str.z, sh->str.n);
  }else if( sh->eType==RT_LIST ){
    for(i=0; i<sh->nList; i++) imgPutBytes(s, sh->aList[i].z, sh->aList[i].n);
  }else if( sh->map.nElem>0 ){
    aE = sqlite3_malloc64(sizeof(FedKvElem*)*sh->map.nElem);
    if( aE==0 ){
      sqlite3_free(sqlite3_str_finish(s));
      return SQLITE_NOMEM;
    }
    FEDKV_EACH(&sh->map, i, e){ aE[n++] = e; }
    qsort(aE, n, sizeof(FedKvElem*), elemCmp);
    for(i=0; i<n; i++){
      imgPutBytes(s, aE[i]->zKey, aE[i]->nKey);
      if( sh->eType==RT_HASH ){
        const RBuf *pV = (const RBuf*)aE[i]->pVal;
        imgPutBytes(s, pV->z, pV->n);
      }else if( sh->eType==RT_ZSET ){
        double r = aE[i]->r==0.0 ? 0.0 : aE[i]->r;     /* -0.0 is 0 */
        u64 v;
        memcpy(&v, &r, 8);
        imgPut64(s, v);
      }
    }
    sqlite3_free(aE);
  }
  rc = sqlite3_str_errcode(s);
  *pn = sqlite3_str_length(s);
  *pa = sqlite3_str_finish(s);
  if( rc ){
    sqlite3_free(*pa);
    *pa = 0;
    *pn = 0;
  }
  return rc;
}

/* Do images a and b hold the same key (expiries aside)? */
static int imageSame(const char *a, int na, const char *b, int nb){
  if( a==0 || b==0 ) return a==b;
  return na==nb && na>=IMG_HDR && a[0]==b[0]
      && memcmp(a+IMG_HDR, b+IMG_HDR, na-IMG_HDR)==0;
}

/* Add to P the commands that make the deleted key zKey hold image a (NULL:
** nothing).  SQLITE_CORRUPT if a is not an image. */
static int imageRestore(RedisPipe *P, int iDb, const char *zKey, int nKey,
                        const char *a, int n){
  static const char *const azCmd[] = {0, "SET", "HSET", "RPUSH", "SADD",
                                      "ZADD"};
  const char *p, *pEnd;
  int eType, nPer, nArg = 0;
  i64 iExp;
  if( a==0 ) return SQLITE_OK;
  pEnd = a + n;
  eType = n>=IMG_HDR ? imgType(a[0]) : RT_NONE;
  if( eType==RT_NONE ) return SQLITE_CORRUPT;
  iExp = (i64)imgGet64(a+1);
  p = a + IMG_HDR;
  if( eType==RT_STRING ){
    rdPipeCmd(P, iDb, "SET");
    rdPipeArg(P, zKey, nKey);
    rdPipeArg(P, p, (int)(pEnd-p));
  }
  nPer = (eType==RT_HASH || eType==RT_ZSET) ? 2 : 1;
  while( eType!=RT_STRING && p<pEnd ){
    const char *zElem[2];
    int nElem[2], k;
    char zScore[40];
    for(k=0; k<nPer; k++){
      if( eType==RT_ZSET && k==1 ){
        u64 v;
        double r;
        if( pEnd-p<8 ) return SQLITE_CORRUPT;
        v = imgGet64(p);
        memcpy(&r, &v, 8);
        rdDoubleArg(r, zScore, sizeof(zScore));
        p += 8;
        continue;
      }
      if( pEnd-p<4 ) return SQLITE_CORRUPT;
      nElem[k] = (int)(((unsigned)(u8)p[0]<<24) | ((unsigned)(u8)p[1]<<16)
                       | ((unsigned)(u8)p[2]<<8) | (u8)p[3]);
      p += 4;
      if( nElem[k]<0 || pEnd-p<nElem[k] ) return SQLITE_CORRUPT;
      zElem[k] = p;
      p += nElem[k];
    }
    if( nArg==0 ){
      rdPipeCmd(P, iDb, azCmd[eType]);
      rdPipeArg(P, zKey, nKey);
    }
    if( eType==RT_ZSET ){
      rdPipeArgCopy(P, zScore, -1);
      rdPipeArg(P, zElem[0], nElem[0]);
    }else{
      for(k=0; k<nPer; k++) rdPipeArg(P, zElem[k], nElem[k]);
    }
    if( ++nArg==256 ) nArg = 0;             /* 256 elements a command */
  }
  if( iExp>=0 ){
    rdPipeCmd(P, iDb, "PEXPIREAT");
    rdPipeArg(P, zKey, nKey);
    rdPipeArgInt(P, iExp);
  }
  return SQLITE_OK;
}

/* "<store>: <zWhat> key <key> on server "<name>"<zTail>" */
static void imageError(RedisConn *p, const char *zWhat, const char *z, int n,
                       const char *zTail, char **pzErr){
  char *zKey = rdRenderKey(z, n);
  fedSetError(pzErr, "%s: %s key %s on server \"%s\"%s", RD_STORE, zWhat,
              zKey ? zKey : "?", p->base.pServer->zName, zTail);
  sqlite3_free(zKey);
}

/*
** Read the n keys aKey[] (databases aiDb[]) under WATCH: their whole
** content into the shadows aSh[] (zeroed by the caller, rdShadowReset() by
** it after) and their expiries as Unix ms (-1: none) into aiExp[].
** aeGuess[] is the type each is expected to have (RT_NONE: unknown), read
** with the TYPE; a key of another type costs a second round trip.
** bCommit: for a commit (an error says nothing was committed).
*/
static int imageRead(RedisConn *p, int bCommit, int n, const int *aiDb,
                     const RBuf *aKey, const int *aeGuess, RedisShadow *aSh,
                     i64 *aiExp, char **pzErr){
  RedisPipe P, P2;
  int *aiCmd = 0, *aiCmd2 = 0;
  i64 iNow = 0;
  int i, iTime, rc;
  rdPipeInit(&P);
  rdPipeInit(&P2);
  aiCmd = sqlite3_malloc64(sizeof(int)*2*(n+1));
  if( aiCmd==0 ) return SQLITE_NOMEM;
  aiCmd2 = &aiCmd[n+1];
  for(i=0; i<n; i++){
    aiCmd[i] = P.nCmd;
    rdPipeCmd(&P, aiDb[i], "WATCH");
    rdPipeArg(&P, aKey[i].z, aKey[i].n);
    rdPipeCmd(&P, aiDb[i], "TYPE");
    rdPipeArg(&P, aKey[i].z, aKey[i].n);
    rdPipeCmd(&P, aiDb[i], "PTTL");
    rdPipeArg(&P, aKey[i].z, aKey[i].n);
    if( aeGuess[i]!=RT_NONE ){
      rdPipeFetchWhole(&P, aiDb[i], aeGuess[i], aKey[i].z, aKey[i].n);
    }
  }
  iTime = P.nCmd;
  rdPipeCmd(&P, -1, "TIME");
  rc = rdPipeRun(p, &P, pzErr);
  if( rc ) goto done;
  p->txn.bWatched = 1;
  for(i=0; i<P.nCmd; i++){
    if( P.apReply[i]->type==REDIS_REPLY_ERROR && !rdIsWrongType(P.apReply[i]) ){
      rdPipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
      goto done;
    }
  }
  {
    redisReply *r = P.apReply[iTime];
    if( r->type==REDIS_REPLY_ARRAY && r->elements==2
     && r->element[0]->type==REDIS_REPLY_STRING
     && r->element[1]->type==REDIS_REPLY_STRING ){
      iNow = strtoll(r->element[0]->str, 0, 10)*1000
           + strtoll(r->element[1]->str, 0, 10)/1000;
    }
  }

  /* Keys whose type was not the one guessed: a second read. */
  for(i=0; i<n; i++){
    redisReply *rType = P.apReply[aiCmd[i]+1];
    int eType = RT_OTHER;
    aiCmd2[i] = -1;
    if( rType->type==REDIS_REPLY_STATUS ){
      eType = rdTypeFromName(rType->str, (int)rType->len);
    }
    if( eType==RT_OTHER ){
      imageError(p, bCommit ? "cannot compensate this transaction: undo"
                 " images cover strings, hashes, lists, sets and zsets, and"
                 : "cannot undo: undo images cover strings, hashes, lists,"
                 " sets and zsets, and", aKey[i].z, aKey[i].n,
                 bCommit ? " holds another type; nothing was committed"
                 : " holds another type now", pzErr);
      rc = SQLITE_ERROR;
      goto done;
    }
    if( eType!=RT_NONE && eType!=aeGuess[i] ){
      aiCmd2[i] = P2.nCmd;
      rdPipeFetchWhole(&P2, aiDb[i], eType, aKey[i].z, aKey[i].n);
    }
  }
  rc = rdPipeRun(p, &P2, pzErr);
  if( rc ) goto done;
  for(i=0; i<n && rc==SQLITE_OK; i++){
    int k = aiCmd[i];
    redisReply *rData = 0, *rTtl = P.apReply[k+2];
    int eType = rdTypeFromName(P.apReply[k+1]->str, (int)P.apReply[k+1]->len);
    if( aiCmd2[i]>=0 ){
      rData = P2.apReply[aiCmd2[i]];
    }else if( aeGuess[i]!=RT_NONE ){
      rData = P.apReply[k+3];
    }
    rc = rdShadowFill(&aSh[i], P.apReply[k+1], 0, rData, eType);
    if( rc==SQLITE_OK && !aSh[i].bContent ){
      /* The type changed between the two reads. */
      imageError(p, "cannot read", aKey[i].z, aKey[i].n, ": another client"
                 " changed it while it was read", pzErr);
      rc = SQLITE_BUSY;
    }
    aiExp[i] = -1;
    if( rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
      aiExp[i] = iNow + rTtl->integer;
    }
  }

done:
  rdPipeFree(&P);
  rdPipeFree(&P2);
  sqlite3_free(aiCmd);
  rc = fedErrorRc(rc, *pzErr);
  return rc;
}

int rdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                 char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = &p->txn;
  FedUndoImage *a = 0;
  FedKvHash keys;               /* Key -> its index in a[] (elem.i) */
  RedisShadow *aSh = 0;
  RBuf *aKey = 0;
  int *aiDb = 0, *aeGuess = 0, *aiFirst = 0;
  i64 *aiExp = 0;
  int n = 0, i, j, rc;
  *paImg = 0;
  *pnImg = 0;
  memset(&keys, 0, sizeof(keys));
  rc = rdFlush(pConn, pzErr);
  if( rc==SQLITE_OK && t->kv.zDoom==0 ){
    /* Settles which INSERT OR IGNORE rows are dropped. */
    rc = rdTxnValidate(p, pzErr);
  }
  if( rc==SQLITE_OK ) rc = fedKvDoomed(&t->kv, pzErr);
  if( rc ) return rc;

  /* The keys the queue writes, in queue order, each with the type its
  ** first command expects. */
  rc = fedKvUndoCapture(&t->kv, &a, &n, &aiFirst, 0);
  if( rc==SQLITE_OK && n>0 ){
    aeGuess = sqlite3_malloc64(sizeof(int)*n);
    if( aeGuess==0 ) rc = SQLITE_NOMEM;
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    RedisOp *pOp = rdOp(t, aiFirst[j]);
    FedKvElem *e = fedKvHashAdd(&keys, a[j].iSpace, a[j].aKey, a[j].nKey, 0);
    if( e==0 ){ rc = SQLITE_NOMEM; break; }
    e->i = j;
    aeGuess[j] = fedKvOpSlot(&pOp->hdr, a[j].iSpace, a[j].aKey, a[j].nKey)==0
               ? rdOpType(pOp) : RT_NONE;
  }
  if( rc==SQLITE_OK && n>0 ){
    aSh = sqlite3_malloc64(sizeof(RedisShadow)*n);
    if( aSh ) memset(aSh, 0, sizeof(RedisShadow)*n);
    aKey = sqlite3_malloc64(sizeof(RBuf)*n);
    aiDb = sqlite3_malloc64(sizeof(int)*n);
    aiExp = sqlite3_malloc64(sizeof(i64)*n);
    if( aSh==0 || aKey==0 || aiDb==0 || aiExp==0 ){
      rc = SQLITE_NOMEM;
    }else{
      for(j=0; j<n; j++){
        aKey[j].z = a[j].aKey;
        aKey[j].n = a[j].nKey;
        aiDb[j] = a[j].iSpace;
      }
      rc = imageRead(p, 1, n, aiDb, aKey, aeGuess, aSh, aiExp, pzErr);
    }
  }

  /* The before-images, then the queue replayed on them. */
  for(j=0; rc==SQLITE_OK && j<n; j++){
    rc = imageOf(&aSh[j], aiExp[j], &a[j].aBefore, &a[j].nBefore);
  }
  for(i=0; rc==SQLITE_OK && i<t->kv.nOp; i++){
    RedisOp *pOp = rdOp(t, i);
    RedisShadow *sh, *sh2 = 0;
    if( pOp->hdr.bSkip ) continue;
    sh = &aSh[fedKvHashFind(&keys, pOp->hdr.iSpace, pOp->hdr.aKey,
                            pOp->hdr.nKey)->i];
    if( pOp->hdr.eOp==ROP_RENAME ){
      sh2 = &aSh[fedKvHashFind(&keys, pOp->hdr.iSpace, pOp->aArg[0].z,
                            pOp->aArg[0].n)->i];
    }
    rc = rdShadowApply(pOp, sh, sh2, pzErr);
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      /* The keys changed since the checks: EXEC would fail anyway. */
      rc = SQLITE_ERROR;
    }
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    rc = imageOf(&aSh[j], -1, &a[j].aAfter, &a[j].nAfter);
  }
  if( rc==SQLITE_TOOBIG ){
    imageError(p, "cannot compensate this transaction: the undo image of",
               a[j-1].aKey, a[j-1].nKey, " is too large; nothing was"
               " committed", pzErr);
    rc = SQLITE_ERROR;
  }

  for(j=0; aSh && j<n; j++) rdShadowReset(&aSh[j]);
  sqlite3_free(aSh);
  sqlite3_free(aKey);
  sqlite3_free(aiDb);
  sqlite3_free(aiExp);
  sqlite3_free(aeGuess);
  sqlite3_free(aiFirst);
  fedKvHashClear(&keys);
  if( rc ){
    fedUndoImagesFree(a, n);
    rc = fedErrorRc(rc, *pzErr);
    return rc;
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

/* The batch layer's xImageRead (fedKvUndoApply): the key now, under
** WATCH, as an image without its expiry. */
int rdImageRead(FedConn *pConn, const FedUndoImage *pImg, char **paNow,
                int *pnNow, i64 *piGuard, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisShadow sh;
  RBuf key;
  int eGuess, rc;
  i64 iExp;
  memset(&sh, 0, sizeof(sh));
  *piGuard = 0;
  key.z = pImg->aKey;
  key.n = pImg->nKey;
  eGuess = pImg->aAfter ? imgType(pImg->aAfter[0])
         : pImg->aBefore ? imgType(pImg->aBefore[0]) : RT_NONE;
  rc = imageRead(p, 0, 1, &pImg->iSpace, &key, &eGuess, &sh, &iExp, pzErr);
  if( rc==SQLITE_OK ) rc = imageOf(&sh, -1, paNow, pnNow);
  rdShadowReset(&sh);
  return rc;
}

/* Do images a and b hold the same key (expiries aside)? */
int rdImageSame(const char *a, int na, const char *b, int nb){
  return imageSame(a, na, b, nb);
}

/* The key is left alone: its WATCH goes. */
void rdImageRelease(FedConn *pConn){
  ((RedisConn*)pConn)->bUnwatch = 1;
}

/* Put the before-image back: DEL and rebuild in one MULTI/EXEC, which
** fails (SQLITE_BUSY) if the key changed since rdImageRead watched it. */
int rdImageRestore(FedConn *pConn, const FedUndoImage *pImg, i64 iGuard,
                   char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int iExec, rc;
  (void)iGuard;
  rdPipeInit(&P);
  rdPipeCmd(&P, -1, "MULTI");
  rdPipeCmd(&P, pImg->iSpace, "DEL");
  rdPipeArg(&P, pImg->aKey, pImg->nKey);
  rc = imageRestore(&P, pImg->iSpace, pImg->aKey, pImg->nKey, pImg->aBefore,
                    pImg->nBefore);
  if( rc==SQLITE_CORRUPT ){
    p->bUnwatch = 1;
    imageError(p, "cannot undo", pImg->aKey, pImg->nKey, ": its undo image"
               " is damaged", pzErr);
    rc = SQLITE_ERROR;
    goto done;
  }
  iExec = P.nCmd;
  rdPipeCmd(&P, -1, "EXEC");
  rc = rdPipeRun(p, &P, pzErr);
  p->iCurDb = -1;
  if( rc ) goto done;
  if( P.apReply[iExec]->type==REDIS_REPLY_ARRAY ){
    redisReply *r = P.apReply[iExec];
    size_t k;
    for(k=0; k<r->elements; k++){
      if( r->element[k]->type==REDIS_REPLY_ERROR ){
        rdSetError(pzErr, r->element[k]->str, "EXEC");
        rc = SQLITE_ERROR;
        break;
      }
    }
  }else{
    rc = SQLITE_BUSY;
  }
done:
  rdPipeFree(&P);
  return rc;
}

int rdUndoApply(FedConn *pConn, const FedUndoImage *pImg, char **pzErr){
  return fedKvUndoApply(&rdKvDriver, pConn, pImg, pzErr);
}
