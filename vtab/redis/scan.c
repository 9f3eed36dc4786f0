/*
** scan.c: cursors: xOpen, xFilter, xNext, xColumn, xRowid; batches of
** rows from the replies, and rows read through the transaction's shadows.
**
** Scans.  The keys come from the plan (key = / IN: no SCAN at all) or
** from SCAN MATCH ... COUNT ...; each batch pipelines the reads of the
** keys of the previous SCAN reply with the next SCAN, so a batch costs one
** round trip.  Rows point into the batch's replies (or into copies, for
** rows read through a shadow) until the next batch.  The replies are built
** in two arenas (RReplyArena) used in turn: a batch's pipeline goes to the
** one that does not hold the SCAN reply whose keys the batch reads, so
** resetting it frees only replies that no row points to any more.
*/
#include "redisInt.h"

static void termsFree(RedisCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nTerm; i++){
    fedKvHashClear(&pCsr->aTerm[i].set);
    sqlite3_free(pCsr->aTerm[i].zGlob);
  }
  sqlite3_free(pCsr->aTerm);
  pCsr->aTerm = 0;
  pCsr->nTerm = 0;
}

static void batchFree(RedisCursor *pCsr){
  rdPipeClear(&pCsr->P);
  rdArenaFree(&pCsr->arena);
  pCsr->nRow = pCsr->iRow = 0;
  pCsr->nFv = 0;
  pCsr->pOldKeys = 0;
}

static void cursorReset(RedisCursor *pCsr){
  int i;
  batchFree(pCsr);
  pCsr->pScanKeys = 0;
  rdReplyArenaReset(&pCsr->aReplies[0]);
  rdReplyArenaReset(&pCsr->aReplies[1]);
  for(i=0; i<pCsr->nKey; i++) rdBufFree(&pCsr->aKey[i]);
  sqlite3_free(pCsr->aKey);
  pCsr->aKey = 0;
  pCsr->nKey = pCsr->iKey = 0;
  for(i=0; i<pCsr->nSub; i++) rdBufFree(&pCsr->aSub[i]);
  sqlite3_free(pCsr->aSub);
  pCsr->aSub = 0;
  pCsr->nSub = 0;
  sqlite3_free(pCsr->zMatch);
  pCsr->zMatch = 0;
  termsFree(pCsr);
  rdKeySetClear(&pCsr->seen);
  rdKeySetClear(&pCsr->tailSet);
  for(i=0; i<pCsr->nTail; i++) rdBufFree(&pCsr->aTail[i]);
  sqlite3_free(pCsr->aTail);
  pCsr->aTail = 0;
  pCsr->nTail = 0;
  pCsr->bEof = 1;
  pCsr->bEmpty = pCsr->bNamed = pCsr->bDone = 0;
  pCsr->bLo = pCsr->bHi = pCsr->bLoExcl = pCsr->bHiExcl = 0;
  pCsr->iIdxLo = 0;
  pCsr->iIdxHi = -1;
  pCsr->nLimit = -1;
  pCsr->nOffset = pCsr->nPassed = 0;
  pCsr->bScanStarted = pCsr->bScanDone = pCsr->bTailDone = 0;
  pCsr->iPending = 0;
  memcpy(pCsr->zCursor, "0", 2);
}

int rdOpen(FedCursor *pFedCsr, char **pzErr){
  RedisCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  RedisTable *pRt = (RedisTable*)pFedCsr->pTab->pStoreTab;
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->pFed = pFedCsr;
  pCsr->pRt = pRt;
  pCsr->bEof = 1;
  pCsr->nLimit = -1;
  pCsr->iIdxHi = -1;
  /* Rows a previous statement read for writing are no longer needed once
  ** no scan of this table is open. */
  if( pRt->nOpenCsr==0 ) fedKvHashClear(&pRt->ident);
  pRt->nOpenCsr++;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

void rdClose(FedCursor *pFedCsr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorReset(pCsr);
  rdPipeFree(&pCsr->P);
  rdReplyArenaFree(&pCsr->aReplies[0]);
  rdReplyArenaFree(&pCsr->aReplies[1]);
  sqlite3_free(pCsr->aRow);
  sqlite3_free(pCsr->aFv);
  sqlite3_free((void*)pCsr->azK);
  sqlite3_free(pCsr->anK);
  sqlite3_free(pCsr->aiCmd);
  sqlite3_free(pCsr->aReq);
  pCsr->pRt->nOpenCsr--;
  sqlite3_free(pCsr);
  pFedCsr->pStoreCsr = 0;
}

/* Add a row to the batch if it passes the conditions, OFFSET and LIMIT.
** The row is copied; its pointers must live as long as the batch. */
static int batchRow(RedisCursor *pCsr, const RedisRow *pRow){
  if( pCsr->bDone ) return SQLITE_OK;
  if( !rdRowWanted(pCsr, pRow) ) return SQLITE_OK;
  pCsr->nPassed++;
  if( pCsr->nPassed<=pCsr->nOffset ) return SQLITE_OK;
  if( pCsr->nLimit>=0 && pCsr->nPassed>=pCsr->nOffset+pCsr->nLimit ){
    pCsr->bDone = 1;
  }
  if( pCsr->nRow>=pCsr->nRowAlloc ){
    int nNew = pCsr->nRowAlloc ? pCsr->nRowAlloc*2 : 64;
    RedisRow *a = sqlite3_realloc64(pCsr->aRow, sizeof(RedisRow)*nNew);
    if( a==0 ) return SQLITE_NOMEM;
    pCsr->aRow = a;
    pCsr->nRowAlloc = nNew;
  }
  pCsr->aRow[pCsr->nRow++] = *pRow;
  return SQLITE_OK;
}

/* Room for nField values of fields= in the batch; the index of the first,
** or -1 on OOM. */
static int batchFv(RedisCursor *pCsr){
  int n = pCsr->pRt->nField;
  int iFirst = pCsr->nFv;
  if( pCsr->nFv+n>pCsr->nFvAlloc ){
    int nNew = pCsr->nFvAlloc ? pCsr->nFvAlloc*2 : 64;
    RedisFv *a;
    while( nNew<pCsr->nFv+n ) nNew *= 2;
    a = sqlite3_realloc64(pCsr->aFv, sizeof(RedisFv)*nNew);
    if( a==0 ) return -1;
    pCsr->aFv = a;
    pCsr->nFvAlloc = nNew;
  }
  memset(&pCsr->aFv[iFirst], 0, sizeof(RedisFv)*n);
  pCsr->nFv += n;
  return iFirst;
}

/* The error for a named key of another type. */
static void wrongTypeError(RedisCursor *pCsr, const char *z, int n,
                           const char *zHolds, char **pzErr){
  char *zKey = rdRenderKey(z, n);
  fedSetError(pzErr, "%s: key %s holds a %s, not a %s (table \"%s\")",
      RD_STORE, zKey, zHolds, rdTypeName(rdModeType(pCsr->pRt->eMode)),
      pCsr->pFed->pTab->zName);
  sqlite3_free(zKey);
}

/* The rows of a key read through its shadow (copied into the arena). */
static int shadowRows(RedisCursor *pCsr, const char *zKey0, int nKey,
                      RedisShadow *sh, const char *zTomb, int nTomb,
                      char **pzErr){
  RedisTable *pRt = pCsr->pRt;
  RArena *pA = &pCsr->arena;
  RedisRow row;
  FedKvElem *e;
  int i, rc = SQLITE_OK;
  int eWant = rdModeType(pRt->eMode);
  const char *zKey;
  if( sh->eType==RT_NONE ) return SQLITE_OK;
  if( pRt->eMode!=RM_ANY && sh->eType!=eWant ){
    if( pCsr->bNamed ){
      wrongTypeError(pCsr, zKey0, nKey, rdTypeName(sh->eType), pzErr);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  zKey = rdArenaDup(pA, zKey0, nKey);
  if( zKey==0 ) return SQLITE_NOMEM;
  memset(&row, 0, sizeof(row));
  row.zKey = zKey;
  row.nKey = nKey;
  row.iTtl = sh->iTtl;
  switch( pRt->eMode ){
    case RM_ANY:
      row.zType = rdTypeName(sh->eType);
      if( sh->eType==RT_STRING ){
        row.zVal = rdArenaDup(pA, sh->str.z, sh->str.n);
        row.nVal = sh->str.n;
        if( row.zVal==0 ) return SQLITE_NOMEM;
      }
      return batchRow(pCsr, &row);
    case RT_STRING:
      row.zVal = rdArenaDup(pA, sh->str.z, sh->str.n);
      row.nVal = sh->str.n;
      if( row.zVal==0 ) return SQLITE_NOMEM;
      return batchRow(pCsr, &row);
    case RM_FIELDS:
      row.iFv = batchFv(pCsr);
      if( row.iFv<0 ) return SQLITE_NOMEM;
      for(i=0; i<pRt->nField; i++){
        const char *zF = pCsr->pFed->pTab->aCol[pRt->iFirstField+i].zName;
        FedKvElem *eF = fedKvHashFind(&sh->map, 0, zF, (int)strlen(zF));
        if( eF ){
          RBuf *pV = (RBuf*)eF->pVal;
          pCsr->aFv[row.iFv+i].z = rdArenaDup(pA, pV->z, pV->n);
          pCsr->aFv[row.iFv+i].n = pV->n;
          if( pCsr->aFv[row.iFv+i].z==0 ) return SQLITE_NOMEM;
        }
      }
      return batchRow(pCsr, &row);
    case RT_LIST:
      for(i=0; i<sh->nList && rc==SQLITE_OK; i++){
        RBuf *pV = &sh->aList[i];
        /* Elements deleted by this statement wait for their LREM. */
        if( rdBufEq(pV, zTomb, nTomb) ) continue;
        row.iIdx = i;
        row.zVal = rdArenaDup(pA, pV->z, pV->n);
        row.nVal = pV->n;
        if( row.zVal==0 ) return SQLITE_NOMEM;
        rc = batchRow(pCsr, &row);
      }
      return rc;
    default:
      FEDKV_EACH(&sh->map, i, e){
        if( rc ) break;
        row.zSub = rdArenaDup(pA, e->zKey, e->nKey);
        row.nSub = e->nKey;
        if( row.zSub==0 ) return SQLITE_NOMEM;
        if( pRt->eMode==RT_HASH ){
          RBuf *pV = (RBuf*)e->pVal;
          row.zVal = rdArenaDup(pA, pV->z, pV->n);
          row.nVal = pV->n;
          if( row.zVal==0 ) return SQLITE_NOMEM;
        }else{
          row.zVal = row.zSub;
          row.nVal = row.nSub;
          row.rScore = e->r;
        }
        rc = batchRow(pCsr, &row);
      }
      return rc;
  }
}

/* The Redis type of a named key that gave WRONGTYPE, for the message. */
static void namedWrongType(RedisCursor *pCsr, RedisConn *p, const char *z,
                           int n, char **pzErr){
  RedisPipe P;
  char *zErr = 0;
  const char *zHolds = "value of another type";
  rdPipeInit(&P);
  rdPipeCmd(&P, pCsr->iDb, "TYPE");
  rdPipeArg(&P, z, n);
  if( rdPipeRun(p, &P, &zErr)==SQLITE_OK
   && P.apReply[0]->type==REDIS_REPLY_STATUS ){
    zHolds = P.apReply[0]->str;
  }
  wrongTypeError(pCsr, z, n, zHolds, pzErr);
  sqlite3_free(zErr);
  rdPipeFree(&P);
}

/* Remember the type a watched read saw, so that COMMIT need not ask. */
static void seenType(RedisConn *p, RedisCursor *pCsr, const char *z, int n,
                     int eType){
  if( pCsr->bWatch ){
    FedKvElem *e = fedKvHashAdd(&p->txn.seenType, pCsr->iDb, z, n, 0);
    if( e ) e->i = eType;       /* Out of memory: COMMIT asks again */
  }
}

static int keyArrayRows(RedisCursor *pCsr, redisReply *r, RedisRow *pRow,
                        int *pbFound);

/* Rows of one key from its replies, starting at command *piCmd (advanced
** past them); pMget is its element of a string batch's MGET. */
static int keyRows(RedisCursor *pCsr, RedisConn *p, const char *zKey,
                   int nKey, RedisPipe *P, int *piCmd, redisReply *pMget,
                   int bTtl, char **pzErr){
  RedisTable *pRt = pCsr->pRt;
  redisReply *r = 0, *rTtl = 0, *rVal = 0;
  RedisRow row;
  int i, rc = SQLITE_OK, iCmd = *piCmd;
  int eMode = pRt->eMode;
  int bAll = eMode==RM_FIELDS && pCsr->nFieldUsed>0 && !bTtl;  /* HGETALL */

  memset(&row, 0, sizeof(row));
  row.zKey = zKey;
  row.nKey = nKey;
  row.iTtl = -1;
  if( pMget ){
    r = pMget;
  }else if( eMode!=RM_FIELDS || pCsr->nFieldUsed>0 ){
    r = P->apReply[iCmd++];
  }
  if( eMode==RM_ANY && pRt->iValue>=0
   && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iValue) ){
    rVal = P->apReply[iCmd++];
  }
  if( (eMode==RM_FIELDS && !bAll) || bTtl ) rTtl = P->apReply[iCmd++];
  *piCmd = iCmd;

  if( r && r->type==REDIS_REPLY_ERROR ){
    if( !rdIsWrongType(r) ){
      redisReply *rE = r;
      char *zMsg = sqlite3_mprintf("%.*s", (int)rE->len, rE->str);
      char *zK = rdRenderKey(zKey, nKey);
      fedSetError(pzErr, "%s: %s (reading key %s)", RD_STORE,
                  zMsg ? zMsg : "", zK ? zK : "");
      sqlite3_free(zMsg);
      sqlite3_free(zK);
      return SQLITE_ERROR;
    }
    /* Another type: not a row of this table; an error if named. */
    if( pCsr->bNamed ){
      namedWrongType(pCsr, p, zKey, nKey, pzErr);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  if( rTtl && rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
    row.iTtl = rTtl->integer;
  }
  switch( eMode ){
    case RT_STRING:
      if( r->type!=REDIS_REPLY_STRING ){
        if( pMget==0 ) seenType(p, pCsr, zKey, nKey, RT_NONE);
        return SQLITE_OK;
      }
      seenType(p, pCsr, zKey, nKey, RT_STRING);
      row.zVal = r->str;
      row.nVal = (int)r->len;
      return batchRow(pCsr, &row);
    case RM_ANY:
      if( r->type!=REDIS_REPLY_STATUS ) return SQLITE_OK;
      seenType(p, pCsr, zKey, nKey, rdTypeFromName(r->str, (int)r->len));
      if( rdTypeFromName(r->str, (int)r->len)==RT_NONE ) return SQLITE_OK;
      row.zType = r->str;
      if( rVal && rVal->type==REDIS_REPLY_STRING ){
        row.zVal = rVal->str;
        row.nVal = (int)rVal->len;
      }
      return batchRow(pCsr, &row);
    case RM_FIELDS:
      if( bAll ){
        FedTable *pTab = pCsr->pFed->pTab;
        int j;
        if( r->type!=REDIS_REPLY_ARRAY || r->elements==0 ){
          seenType(p, pCsr, zKey, nKey, RT_NONE);
          return SQLITE_OK;
        }
        seenType(p, pCsr, zKey, nKey, RT_HASH);
        row.iFv = batchFv(pCsr);
        if( row.iFv<0 ) return SQLITE_NOMEM;
        for(i=0; i+1<(int)r->elements; i+=2){
          redisReply *f = r->element[i], *v = r->element[i+1];
          for(j=0; j<pCsr->nFieldUsed; j++){
            const char *zF = pTab->aCol[pRt->iFirstField+pCsr->aField[j]].zName;
            if( strlen(zF)==f->len && memcmp(zF, f->str, f->len)==0 ){
              pCsr->aFv[row.iFv+pCsr->aField[j]].z = v->str;
              pCsr->aFv[row.iFv+pCsr->aField[j]].n = (int)v->len;
              break;
            }
          }
        }
        return batchRow(pCsr, &row);
      }
      if( rTtl==0 || rTtl->type!=REDIS_REPLY_INTEGER || rTtl->integer==-2 ){
        seenType(p, pCsr, zKey, nKey, RT_NONE);
        return SQLITE_OK;
      }
      if( r ) seenType(p, pCsr, zKey, nKey, RT_HASH);
      row.iFv = batchFv(pCsr);
      if( row.iFv<0 ) return SQLITE_NOMEM;
      for(i=0; r && i<pCsr->nFieldUsed && i<(int)r->elements; i++){
        redisReply *v = r->element[i];
        if( v->type==REDIS_REPLY_STRING ){
          pCsr->aFv[row.iFv+pCsr->aField[i]].z = v->str;
          pCsr->aFv[row.iFv+pCsr->aField[i]].n = (int)v->len;
        }
      }
      return batchRow(pCsr, &row);
    default:
      break;
  }
  if( r->type!=REDIS_REPLY_ARRAY ) return SQLITE_OK;
  if( eMode==RT_HASH && pCsr->aSub==0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_HASH : RT_NONE);
  }else if( eMode==RT_SET && pCsr->aSub==0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_SET : RT_NONE);
  }else if( eMode==RT_LIST && pCsr->iIdxLo==0 && pCsr->iIdxHi<0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_LIST : RT_NONE);
  }else if( eMode==RT_ZSET && pCsr->aSub==0 && !pCsr->bLo && !pCsr->bHi ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_ZSET : RT_NONE);
  }
  {
    int bFound = 0;
    rc = keyArrayRows(pCsr, r, &row, &bFound);
    /* A partial read that found something tells the type too. */
    if( rc==SQLITE_OK && bFound ){
      seenType(p, pCsr, zKey, nKey, rdModeType(eMode));
    }
  }
  return rc;
}

/* The rows of an array reply (HGETALL, HMGET, LRANGE, SMEMBERS, ...). */
static int keyArrayRows(RedisCursor *pCsr, redisReply *r, RedisRow *pRow,
                        int *pbFound){
  RedisRow row = *pRow;
  int i, rc = SQLITE_OK, eMode = pCsr->pRt->eMode;
  for(i=0; i<(int)r->elements && rc==SQLITE_OK; i++){
    redisReply *e = r->element[i];
    switch( eMode ){
      case RT_HASH:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_STRING || i>=pCsr->nSub ) continue;
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
          row.zVal = e->str;
          row.nVal = (int)e->len;
        }else{
          if( i+1>=(int)r->elements ) continue;
          row.zSub = e->str;
          row.nSub = (int)e->len;
          row.zVal = r->element[i+1]->str;
          row.nVal = (int)r->element[i+1]->len;
          i++;
        }
        break;
      case RT_LIST:
        row.iIdx = pCsr->iIdxLo + i;
        row.zVal = e->str;
        row.nVal = (int)e->len;
        break;
      case RT_SET:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_INTEGER || e->integer!=1 || i>=pCsr->nSub ){
            continue;
          }
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
        }else{
          row.zSub = e->str;
          row.nSub = (int)e->len;
        }
        row.zVal = row.zSub;
        row.nVal = row.nSub;
        break;
      case RT_ZSET:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_STRING || i>=pCsr->nSub ) continue;
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
          row.rScore = strtod(e->str, 0);
        }else{
          if( i+1>=(int)r->elements ) continue;
          row.zSub = e->str;
          row.nSub = (int)e->len;
          row.rScore = strtod(r->element[i+1]->str, 0);
          i++;
        }
        row.zVal = row.zSub;
        row.nVal = row.nSub;
        break;
    }
    *pbFound = 1;
    rc = batchRow(pCsr, &row);
  }
  return rc;
}

/* Number of keys of the last SCAN reply not yet taken. */
static int scanPending(RedisCursor *pCsr){
  redisReply *r = pCsr->pScanKeys;
  if( r==0 ) return 0;
  return (int)r->element[1]->elements - pCsr->iPending;
}

/* Take the reply of a SCAN: the next cursor, and its keys as pending. */
static int scanTake(RedisCursor *pCsr, RedisPipe *P, int iCmd, char **pzErr){
  redisReply *r = P->apReply[iCmd];
  if( r->type==REDIS_REPLY_ERROR ){
    rdPipeReplyError(P, iCmd, pzErr);
    return SQLITE_ERROR;
  }
  if( r->type!=REDIS_REPLY_ARRAY || r->elements!=2
   || r->element[0]->type!=REDIS_REPLY_STRING
   || r->element[1]->type!=REDIS_REPLY_ARRAY
   || r->element[0]->len>=sizeof(pCsr->zCursor) ){
    rdSetError(pzErr, "unexpected reply to SCAN", 0);
    return SQLITE_ERROR;
  }
  memcpy(pCsr->zCursor, r->element[0]->str, r->element[0]->len+1);
  pCsr->bScanDone = strcmp(pCsr->zCursor, "0")==0;
  /* The keys of the previous reply may be in use by this batch's rows. */
  pCsr->pOldKeys = pCsr->pScanKeys;
  pCsr->pScanKeys = r;
  pCsr->iScanArena = P->pReplies==&pCsr->aReplies[1];
  pCsr->iPending = 0;
  P->apReply[iCmd] = 0;
  return SQLITE_OK;
}

/* Run the cursor's pipeline, its replies in the arena that does not hold
** the SCAN reply still in use (emptied first). */
static int cursorPipeRun(RedisCursor *pCsr, RedisConn *p, char **pzErr){
  RReplyArena *pA = &pCsr->aReplies[!pCsr->iScanArena];
  rdReplyArenaReset(pA);
  pCsr->P.pReplies = pA;
  return rdPipeRun(p, &pCsr->P, pzErr);
}

/*
** Read the next batch of rows into the cursor.  At the end of the keys
** (and of the transaction's own new keys) the cursor is at EOF.
*/
static int cursorFill(RedisCursor *pCsr, char **pzErr){
  FedTable *pTab = pCsr->pFed->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisConn *p = pTab->pServer ? (RedisConn*)pTab->pServer->pConn : 0;
  RedisTxn *t;
  const char **azK;
  int *anK, *aiCmd;
  ShadowReq *aReq;
  int rc = SQLITE_OK;
  int bTtl = pRt->iTtl>=0 && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iTtl);
  int eWant = pRt->eMode==RM_ANY ? RT_STRING : rdModeType(pRt->eMode);

  if( p==0 ){
    fedSetError(pzErr, "%s: connection to server \"%s\" lost", RD_STORE,
                pTab->zServer);
    return SQLITE_ERROR;
  }
  t = &p->txn;
  while( rc==SQLITE_OK ){
    int nK = 0, nClean = 0, nDirty = 0, i, iCmd, iScan = -1, iMget = -1;
    int nChunk;
    batchFree(pCsr);
    if( pCsr->bDone ) break;

    /* The keys of this batch. */
    nChunk = pCsr->bNamed ? RD_PIPE_KEYS : scanPending(pCsr);
    if( pCsr->nLimit>=0 && (pRt->eMode==RT_STRING || pRt->eMode==RM_ANY
                            || pRt->eMode==RM_FIELDS) ){
      i64 nLeft = pCsr->nOffset + pCsr->nLimit - pCsr->nPassed;
      if( nLeft<nChunk ) nChunk = nLeft<1 ? 1 : (int)nLeft;
    }
    if( pCsr->bNamed ){
      if( pCsr->iKey>=pCsr->nKey ) break;
    }else if( scanPending(pCsr)==0 ){
      if( !pCsr->bScanDone ){
        rdScanCmd(pCsr, &pCsr->P);
        rc = cursorPipeRun(pCsr, p, pzErr);
        if( rc==SQLITE_OK ) rc = scanTake(pCsr, &pCsr->P, 0, pzErr);
        continue;
      }
      if( pCsr->bTailDone || !t->kv.bActive || pCsr->nTail==0 ){
        pCsr->bTailDone = 1;
        break;
      }
      nChunk = pCsr->nTail;
    }
    if( nChunk>pCsr->nKAlloc ){
      int nAlloc = nChunk;
      sqlite3_free((void*)pCsr->azK);
      sqlite3_free(pCsr->anK);
      sqlite3_free(pCsr->aiCmd);
      sqlite3_free(pCsr->aReq);
      pCsr->azK = sqlite3_malloc64(sizeof(char*)*nAlloc);
      pCsr->anK = sqlite3_malloc64(sizeof(int)*nAlloc);
      pCsr->aiCmd = sqlite3_malloc64(sizeof(int)*nAlloc);
      pCsr->aReq = sqlite3_malloc64(sizeof(ShadowReq)*nAlloc);
      if( !pCsr->azK || !pCsr->anK || !pCsr->aiCmd || !pCsr->aReq ){
        pCsr->nKAlloc = 0;
        rc = SQLITE_NOMEM;
        break;
      }
      pCsr->nKAlloc = nAlloc;
    }
    azK = pCsr->azK;
    anK = pCsr->anK;
    aiCmd = pCsr->aiCmd;
    aReq = pCsr->aReq;
    if( pCsr->bNamed ){
      while( nK<nChunk && pCsr->iKey<pCsr->nKey ){
        RBuf *pK = &pCsr->aKey[pCsr->iKey++];
        int w = rdKeyWanted(pCsr, pK->z, pK->n);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( w ){ azK[nK] = pK->z; anK[nK++] = pK->n; }
      }
    }else if( scanPending(pCsr)>0 ){
      redisReply *rKeys = pCsr->pScanKeys->element[1];
      while( nK<nChunk && scanPending(pCsr)>0 ){
        redisReply *k = rKeys->element[pCsr->iPending++];
        int w, bNew;
        if( k->type!=REDIS_REPLY_STRING ) continue;
        w = rdKeyWanted(pCsr, k->str, (int)k->len);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( !w ) continue;
        bNew = rdKeySetAdd(&pCsr->seen, k->str, (int)k->len);
        if( bNew<0 ){ rc = SQLITE_NOMEM; break; }
        if( bNew ){ azK[nK] = k->str; anK[nK++] = (int)k->len; }
      }
    }else{
      /* The transaction's own keys that SCAN did not return (those still
      ** written: a ROLLBACK TO may have taken some back). */
      pCsr->bTailDone = 1;
      for(i=0; i<pCsr->nTail; i++){
        RBuf *pK = &pCsr->aTail[i];
        int w, bNew;
        if( !rdTxnIsDirty(t, pCsr->iDb, pK->z, pK->n) ) continue;
        w = rdKeyWanted(pCsr, pK->z, pK->n);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( !w ) continue;
        bNew = rdKeySetAdd(&pCsr->seen, pK->z, pK->n);
        if( bNew<0 ){ rc = SQLITE_NOMEM; break; }
        if( bNew ){ azK[nK] = pK->z; anK[nK++] = pK->n; }
      }
    }
    if( rc ) break;

    /* Keys the transaction wrote are read through their shadows. */
    for(i=0; i<nK; i++){
      /* (Only keys written before the scan began: the server still holds
      ** what the others held then.) */
      if( t->kv.bActive && rdTxnIsDirty(t, pCsr->iDb, azK[i], anK[i])
       && rdKeySetHas(&pCsr->tailSet, azK[i], anK[i]) ){
        aReq[nDirty].iDb = pCsr->iDb;
        aReq[nDirty].z = azK[i];
        aReq[nDirty].n = anK[i];
        aReq[nDirty].eWant = eWant;
        nDirty++;
      }else{
        azK[nClean] = azK[i];
        anK[nClean++] = anK[i];
      }
    }
    if( nDirty>0 ){
      rc = rdShadowLoad(p, aReq, nDirty, pzErr);
      for(i=0; rc==SQLITE_OK && i<nDirty; i++){
        RedisShadow *sh = rdShadowGet(t, pCsr->iDb, aReq[i].z, aReq[i].n);
        if( sh ){
          rc = shadowRows(pCsr, aReq[i].z, aReq[i].n, sh, p->zTomb,
                          p->nTomb, pzErr);
        }
      }
      if( rc ) break;
    }

    /* The others from the server, with the next SCAN in the same trip. */
    if( nClean>0 && pCsr->bWatch ){
      for(i=0; i<nClean; i++){
        if( i%RD_WATCH_CHUNK==0 ) rdPipeCmd(&pCsr->P, pCsr->iDb, "WATCH");
        rdPipeArg(&pCsr->P, azK[i], anK[i]);
      }
    }
    if( nClean>0 && pRt->eMode==RT_STRING && !pCsr->bNamed ){
      iMget = pCsr->P.nCmd;
      rdPipeCmd(&pCsr->P, pCsr->iDb, "MGET");
      for(i=0; i<nClean; i++) rdPipeArg(&pCsr->P, azK[i], anK[i]);
    }
    for(i=0; i<nClean; i++){
      aiCmd[i] = pCsr->P.nCmd;
      rdFetchCmds(pCsr, &pCsr->P, azK[i], anK[i], bTtl);
    }
    if( !pCsr->bNamed && !pCsr->bScanDone && scanPending(pCsr)==0
     && pCsr->bScanStarted && !pCsr->bDone ){
      iScan = pCsr->P.nCmd;
      rdScanCmd(pCsr, &pCsr->P);
    }
    if( pCsr->P.rc ){
      rc = pCsr->P.rc;
      break;
    }
    if( pCsr->P.nCmd==0 ){
      if( pCsr->nRow>0 ) break;
      continue;
    }
    rc = cursorPipeRun(pCsr, p, pzErr);
    if( rc ) break;
    if( pCsr->bWatch && nClean>0 ) t->bWatched = 1;
    for(i=0; i<pCsr->P.nCmd; i++){
      redisReply *r = pCsr->P.apReply[i];
      if( r->type==REDIS_REPLY_ERROR && i<aiCmd[0] && i!=iMget ){
        rdPipeReplyError(&pCsr->P, i, pzErr);
        rc = SQLITE_ERROR;
        break;
      }
    }
    for(i=0; rc==SQLITE_OK && i<nClean; i++){
      redisReply *pMget = 0;
      if( iMget>=0 ){
        redisReply *rM = pCsr->P.apReply[iMget];
        if( rM->type!=REDIS_REPLY_ARRAY || i>=(int)rM->elements ){
          rdPipeReplyError(&pCsr->P, iMget, pzErr);
          rc = SQLITE_ERROR;
          break;
        }
        pMget = rM->element[i];
      }
      iCmd = aiCmd[i];
      rc = keyRows(pCsr, p, azK[i], anK[i], &pCsr->P, &iCmd, pMget, bTtl,
                   pzErr);
    }
    if( rc==SQLITE_OK && iScan>=0 ) rc = scanTake(pCsr, &pCsr->P, iScan, pzErr);
    if( rc || pCsr->nRow>0 ) break;
  }
  if( rc ){
    batchFree(pCsr);
    pCsr->bEof = 1;
    return rc;
  }
  pCsr->iRow = 0;
  pCsr->bEof = pCsr->nRow==0;
  return SQLITE_OK;
}

/* Copy the keys of pCsr's database that transaction t has written so
** far (pCsr->aTail). */
static int cursorTailKeys(RedisCursor *pCsr, RedisTxn *t){
  FedKvElem *e;
  int i;
  pCsr->aTail = sqlite3_malloc64(sizeof(RBuf)*(i64)t->kv.index.nElem);
  if( pCsr->aTail==0 ) return SQLITE_NOMEM;
  FEDKV_EACH(&t->kv.index, i, e){
    if( e->iSpace!=pCsr->iDb ) continue;
    memset(&pCsr->aTail[pCsr->nTail], 0, sizeof(RBuf));
    if( rdBufSet(&pCsr->aTail[pCsr->nTail], e->zKey, e->nKey) ){
      return SQLITE_NOMEM;
    }
    pCsr->nTail++;
    if( rdKeySetAdd(&pCsr->tailSet, e->zKey, e->nKey)<0 ) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

int rdFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
             char **pzErr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisConn *p = (RedisConn*)pTab->pServer->pConn;
  int rc;

  cursorReset(pCsr);
  pCsr->iDb = pRt->iDb>=0 ? pRt->iDb : p->iDb;
  pCsr->bWatch = p->txn.kv.bActive
              && (p->txn.kv.bSnapshot || pFedCsr->bForUpdate);
  rc = rdCursorPlan(pCsr, argc, argv, pzErr);
  if( rc ) return rc;
  if( pCsr->bEmpty ){
    pCsr->bEof = 1;
    return SQLITE_OK;
  }
  if( p->txn.kv.bActive && p->txn.kv.index.nElem>0 ){
    rc = cursorTailKeys(pCsr, &p->txn);
    if( rc ) return rc;
  }
  return cursorFill(pCsr, pzErr);
}

int rdNext(FedCursor *pFedCsr, char **pzErr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  if( pCsr->bEof ) return SQLITE_OK;
  if( ++pCsr->iRow<pCsr->nRow ) return SQLITE_OK;
  return cursorFill(pCsr, pzErr);
}

int rdEof(FedCursor *pFedCsr){
  return ((RedisCursor*)pFedCsr->pStoreCsr)->bEof;
}

/* Is c one of the characters SQLite skips around a number's text? */
static int affSpace(char c){
  return c==' ' || (c>='\t' && c<='\r');
}

/* Apply SQLite's numeric affinity (INTEGER when bInt, else REAL) to the
** text z[0..n), as SQLite does when such text is stored in a column of
** that declared type (https://www.sqlite.org/datatype3.html): text that
** is a well-formed number, spaces around it allowed (' 1', '3.0', '1e3',
** '+.5', '7.'), becomes that number; any other text stays text.  INTEGER
** affinity keeps a real whose value is an integer that an int64 holds as
** that integer ('3.0' is 3), REAL affinity makes every number a real.
** Returns SQLITE_INTEGER (*pi), SQLITE_FLOAT (*pr) or 0 (stays text);
** SQLITE_NOMEM for a long number whose copy cannot be made.  Bytes that
** are not such ASCII text (a NUL, invalid UTF-8) are never a number. */
static int numericAffinity(const char *z, int n, int bInt, i64 *pi,
                           double *pr){
  char zBuf[128], *zCopy = zBuf;
  int i = 0, iEnd = n, nDigit = 0, bReal = 0, eRet = 0;
  i64 v;
  double r;
  while( i<iEnd && affSpace(z[i]) ) i++;
  while( iEnd>i && affSpace(z[iEnd-1]) ) iEnd--;
  if( i==iEnd ) return 0;
  /* The grammar: [+-] digits [. digits] [eE [+-] digits], with at least
  ** one digit before the exponent (which needs one of its own). */
  {
    int j = i;
    if( z[j]=='+' || z[j]=='-' ) j++;
    while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nDigit++; }
    if( j<iEnd && z[j]=='.' ){
      bReal = 1;
      j++;
      while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nDigit++; }
    }
    if( nDigit==0 ) return 0;
    if( j<iEnd && (z[j]=='e' || z[j]=='E') ){
      int nExp = 0;
      bReal = 1;
      j++;
      if( j<iEnd && (z[j]=='+' || z[j]=='-') ) j++;
      while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nExp++; }
      if( nExp==0 ) return 0;
    }
    if( j!=iEnd ) return 0;
  }
  if( !bReal && fedParseInt64(&z[i], iEnd-i, &v)==0 ){
    if( bInt ){ *pi = v; return SQLITE_INTEGER; }
    *pr = (double)v;
    return SQLITE_FLOAT;
  }
  /* A real, or an integer too large for an int64. */
  if( iEnd-i>=(int)sizeof(zBuf) ){
    zCopy = sqlite3_malloc64(iEnd-i+1);
    if( zCopy==0 ) return SQLITE_NOMEM;
  }
  memcpy(zCopy, &z[i], iEnd-i);
  zCopy[iEnd-i] = 0;
  r = strtod(zCopy, 0);
  if( zCopy!=zBuf ) sqlite3_free(zCopy);
  eRet = SQLITE_FLOAT;
  /* -2^63 and 2^63 excluded, as SQLite excludes them. */
  if( bInt && r==floor(r) && r>-9223372036854775808.0
   && r<9223372036854775808.0 ){
    *pi = (i64)r;
    if( *pi!=(i64)0x8000000000000000ULL ) return SQLITE_INTEGER;
  }
  *pr = r;
  return eRet;
}

/* A value of a field declared in fields=, by its declared type: the
** value SQLite would hold in a column of that type (numeric affinity for
** integer and real, bytes for blob, text or blob bytes for text). */
static void resultField(sqlite3_context *ctx, int eKind, const char *z,
                        int n){
  if( z==0 ) return;
  if( eKind==RC_F_INT || eKind==RC_F_REAL ){
    i64 v = 0;
    double r = 0.0;
    switch( numericAffinity(z, n, eKind==RC_F_INT, &v, &r) ){
      case SQLITE_INTEGER: sqlite3_result_int64(ctx, v); return;
      case SQLITE_FLOAT:   sqlite3_result_double(ctx, r); return;
      case SQLITE_NOMEM:   sqlite3_result_error_nomem(ctx); return;
    }
  }else if( eKind==RC_F_BLOB ){
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
    return;
  }
  rdResultBytes(ctx, z, n);
}

int rdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisRow *pRow;
  int eKind = pTab->aCol[iCol].eKind;
  if( pCsr->bEof || pCsr->iRow>=pCsr->nRow ) return SQLITE_OK;
  pRow = &pCsr->aRow[pCsr->iRow];
  /* An UPDATE that does not set this column: leave it alone.  The columns
  ** that name a row (key, field, member, idx) are always returned. */
  if( (eKind==RC_TTL || eKind==RC_TYPE || eKind>=RC_F_TEXT
       || (eKind==RC_VALUE && (pRt->eMode==RT_STRING || pRt->eMode==RM_ANY)))
   && sqlite3_vtab_nochange(ctx) ){
    return SQLITE_OK;
  }
  switch( eKind ){
    case RC_KEY:   rdResultBytes(ctx, pRow->zKey, pRow->nKey); break;
    case RC_FIELD: rdResultBytes(ctx, pRow->zSub, pRow->nSub); break;
    case RC_VALUE: rdResultBytes(ctx, pRow->zVal, pRow->nVal); break;
    case RC_SCORE: sqlite3_result_double(ctx, pRow->rScore); break;
    case RC_IDX:   sqlite3_result_int64(ctx, pRow->iIdx); break;
    case RC_TTL:
      if( pRow->iTtl>=0 ) sqlite3_result_int64(ctx, pRow->iTtl);
      break;
    case RC_TYPE:
      if( pRow->zType ){
        sqlite3_result_text(ctx, pRow->zType, -1, SQLITE_TRANSIENT);
      }
      break;
    default: {
      RedisFv *pFv = &pCsr->aFv[pRow->iFv + (iCol - pRt->iFirstField)];
      resultField(ctx, eKind, pFv->z, pFv->n);
      break;
    }
  }
  return SQLITE_OK;
}

/* A rowid that names the row (key and field, member or index) by a hash,
** the same in every scan; the row is remembered for UPDATE and DELETE.
** Two rows that hash alike are an error, never a wrong write. */
int rdRowid(FedCursor *pFedCsr, i64 *piRowid){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  RedisTable *pRt = pCsr->pRt;
  RedisRow *pRow;
  RedisIdent *pId;
  FedKvElem *e;
  u64 h = 14695981039346656037ULL;
  i64 iRowid;
  int i, bNew;
  if( pCsr->bEof || pCsr->iRow>=pCsr->nRow ){
    *piRowid = 0;
    return SQLITE_OK;
  }
  pRow = &pCsr->aRow[pCsr->iRow];
  for(i=0; i<pRow->nKey; i++){ h ^= (u8)pRow->zKey[i]; h *= 1099511628211ULL; }
  h ^= 0xff; h *= 1099511628211ULL;
  if( pRt->eMode==RT_LIST ){
    for(i=0; i<8; i++){ h ^= (u8)(pRow->iIdx>>(8*i)); h *= 1099511628211ULL; }
  }else{
    for(i=0; i<pRow->nSub; i++){ h ^= (u8)pRow->zSub[i]; h *= 1099511628211ULL; }
  }
  h ^= h>>33; h *= 0xff51afd7ed558ccdULL; h ^= h>>33;
  iRowid = (i64)(h & 0x7fffffffffffffffULL);
  e = fedKvHashAdd(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid), &bNew);
  if( e==0 ) return SQLITE_NOMEM;
  pId = (RedisIdent*)e->pVal;
  if( !bNew && pId ){
    int bSame = rdBufEq(&pId->key, pRow->zKey, pRow->nKey)
      && (pRt->eMode==RT_LIST ? pId->iIdx==pRow->iIdx
                              : rdBufEq(&pId->sub, pRow->zSub, pRow->nSub));
    if( !bSame ){
      fedTableError(pFedCsr->pTab, "%s: two rows of table \"%s\" have the"
                    " same rowid", RD_STORE, pFedCsr->pTab->zName);
      return SQLITE_ERROR;
    }
    /* Re-read: remember the value as read now. */
  }
  if( pId==0 ){
    pId = sqlite3_malloc64(sizeof(*pId));
    if( pId==0 ){
      fedKvHashRemove(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid));
      return SQLITE_NOMEM;
    }
    memset(pId, 0, sizeof(*pId));
    e->pVal = pId;
  }
  pId->iIdx = pRow->iIdx;
  pId->rScore = pRow->rScore;
  if( rdBufSet(&pId->key, pRow->zKey, pRow->nKey)
   || (pRow->zSub && rdBufSet(&pId->sub, pRow->zSub, pRow->nSub))
   || (pRow->zVal && rdBufSet(&pId->val, pRow->zVal, pRow->nVal)) ){
    fedKvHashRemove(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid));
    return SQLITE_NOMEM;
  }
  *piRowid = iRowid;
  return SQLITE_OK;
}
