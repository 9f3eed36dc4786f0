/*
** commit.c: the commit of the MongoDB store's queue (write.c).  A plan
** first: the before-image of every document the queue changes, read by
** _id (one find per collection and 1,000 ids), then each queued op
** replayed over it, which gives what to send (only the declared paths
** whose value changed, as $set/$unset; a doc replacement; an insert; a
** delete by the document's own _id) and the document after it.  Then the
** ops go out as ordered write commands (insert, update, delete; one
** command per run of one kind on one collection, at most 1,000 ops or
** 8 MB each).  A command that fails half way stops the commit: what the
** earlier ops applied is put back from the before-images (compensation,
** guarded by the after-images), and the error names the row.  The same
** images are the store's undo images (xUndoImages) when it commits with
** other servers (ext/txn.c, ext/undo.c).
*/
#include "mongoInt.h"

#define ACT_NONE    0           /* Nothing to send */
#define ACT_INSERT  1           /* pBody: the document */
#define ACT_UPDATE  2           /* pBody: {$set: .., $unset: ..} */
#define ACT_REPLACE 3           /* pBody: the whole document */
#define ACT_DELETE  4

#define MONGO_CMD_OPS   1000    /* Ops per write command at most */
#define MONGO_CMD_BYTES (8*1024*1024)
#define MONGO_FIND_IDS  1000    /* _ids per find of before-images */

typedef struct MongoAct MongoAct;
struct MongoAct {
  int eAct;                     /* ACT_* */
  int bUpsert;                  /* ACT_REPLACE of INSERT OR REPLACE */
  bson_t *pBody;
  bson_t *pAfter;               /* The document after this op, or NULL */
  bson_value_t id;              /* The filter's _id (bId) */
  int bId;
};

/* What the plan knows of one document (FedKvElem.pVal). */
typedef struct MongoState MongoState;
struct MongoState {
  bson_t *pBefore;              /* As read before the commit, or NULL */
  bson_t *pCur;                 /* As the ops so far leave it, or NULL */
  u8 bRead;                     /* Its before-image was asked for */
  u8 bTouched;                  /* An op was planned on it already */
  u8 bChanged;                  /* Some op sends something for it */
  u8 bSeen;                     /* Scratch (images, compensation) */
};

struct MongoPlan {
  FedKvHash state;              /* Key -> MongoState */
  int nAct;
  MongoAct *aAct;               /* One per queued op */
};

static void stateFree(void *pArg){
  MongoState *s = (MongoState*)pArg;
  if( s==0 ) return;
  if( s->pBefore ) bson_destroy(s->pBefore);
  if( s->pCur ) bson_destroy(s->pCur);
  sqlite3_free(s);
}

void mongoPlanFree(MongoPlan *pPlan){
  int i;
  if( pPlan==0 ) return;
  for(i=0; i<pPlan->nAct; i++){
    MongoAct *a = &pPlan->aAct[i];
    if( a->pBody ) bson_destroy(a->pBody);
    if( a->pAfter ) bson_destroy(a->pAfter);
    if( a->bId ) bson_value_destroy(&a->id);
  }
  sqlite3_free(pPlan->aAct);
  fedKvHashClear(&pPlan->state);
  sqlite3_free(pPlan);
}

static const char *opVerb(int eOp){
  return eOp==MONGO_OP_INSERT ? "INSERT into" :
         eOp==MONGO_OP_UPDATE ? "UPDATE of" : "DELETE from";
}

static char *keyIdText(const char *aKey, int nKey){
  const char *zDb, *zColl;
  MongoVal v;
  int nDb = (int)strlen(aKey), nColl = (int)strlen(&aKey[nDb+1]);
  mongoKeySplit(aKey, &zDb, &zColl, &v);
  if( v.eType==SQLITE_TEXT || v.eType==SQLITE_BLOB ){
    v.n = nKey - (nDb+nColl+3);
  }
  return mongoIdText(&v);
}

/* Every BSON value that may be the _id SQLite reads as v: the int64 or
** double (MongoDB matches int32, int64 and double of the same value),
** the string, and the ObjectId a text of 24 hex digits spells. */
static void appendIdCandidates(bson_t *pArr, int *pi, const MongoVal *v){
  char zIdx[16];
  const char *zKey;
  bson_uint32_to_string((uint32_t)(*pi)++, &zKey, zIdx, sizeof(zIdx));
  switch( v->eType ){
    case SQLITE_INTEGER: bson_append_int64(pArr, zKey, -1, v->i); break;
    case SQLITE_TEXT: {
      int k, bOid = v->n==24;
      bson_append_utf8(pArr, zKey, -1, v->z, v->n);
      for(k=0; bOid && k<24; k++){
        char c = v->z[k];
        bOid = (c>='0' && c<='9') || (c>='a' && c<='f');
      }
      if( bOid ){
        bson_oid_t oid;
        char z[25];
        memcpy(z, v->z, 24);
        z[24] = 0;
        bson_oid_init_from_string(&oid, z);
        bson_uint32_to_string((uint32_t)(*pi)++, &zKey, zIdx, sizeof(zIdx));
        bson_append_oid(pArr, zKey, -1, &oid);
      }
      break;
    }
    default: mongoAppendVal(pArr, zKey, v); break;
  }
}

/* The key of document pDoc of zDb.zColl, from its _id as SQLite reads
** it. */
static int docKey(const bson_t *pDoc, const char *zDb, const char *zColl,
                  char **paKey, int *pnKey){
  bson_iter_t it;
  MongoVal v;
  int rc;
  *paKey = 0;
  if( !bson_iter_init_find(&it, pDoc, "_id") ) return SQLITE_OK;
  rc = mongoIterValue(&it, &v);
  if( rc==SQLITE_OK ) rc = mongoKey(zDb, zColl, &v, paKey, pnKey);
  mongoValClear(&v);
  return rc;
}

static i64 explainCmd(MongoConn *p, const bson_t *pCmd){
  char *z = bson_as_canonical_extended_json(pCmd, 0);
  i64 iSeq = fedExplainAdd(p->base.pServer->pCtx, p->base.pServer->zName,
                           z, 0);
  bson_free(z);
  return iSeq;
}

/* Find the documents of the keys aE[0..n) (one collection): each found
** one into its state's before- and current image. */
static int readDocs(MongoConn *p, FedKvElem **aE, int n, char **pzErr){
  const char *zDb, *zColl;
  MongoVal v;
  bson_t filter = BSON_INITIALIZER, sub, arr, cmd = BSON_INITIALIZER;
  mongoc_collection_t *pColl;
  mongoc_cursor_t *pCur;
  const bson_t *pDoc;
  bson_error_t err;
  int i, k = 0, rc = SQLITE_OK;
  mongoKeySplit(aE[0]->zKey, &zDb, &zColl, &v);
  bson_append_document_begin(&filter, "_id", 3, &sub);
  bson_append_array_begin(&sub, "$in", 3, &arr);
  for(i=0; i<n; i++){
    const char *zD, *zC;
    mongoKeySplit(aE[i]->zKey, &zD, &zC, &v);
    if( v.eType==SQLITE_TEXT || v.eType==SQLITE_BLOB ){
      v.n = aE[i]->nKey - (int)(strlen(zD)+strlen(zC)+3);
    }
    appendIdCandidates(&arr, &k, &v);
  }
  bson_append_array_end(&sub, &arr);
  bson_append_document_end(&filter, &sub);
  BSON_APPEND_UTF8(&cmd, "find", zColl);
  BSON_APPEND_DOCUMENT(&cmd, "filter", &filter);
  explainCmd(p, &cmd);
  bson_destroy(&cmd);
  pColl = mongoc_client_get_collection(p->pClient, zDb, zColl);
  pCur = mongoc_collection_find_with_opts(pColl, &filter, 0, 0);
  while( rc==SQLITE_OK && mongoc_cursor_next(pCur, &pDoc) ){
    char *aKey = 0;
    int nKey = 0;
    rc = docKey(pDoc, zDb, zColl, &aKey, &nKey);
    for(i=0; rc==SQLITE_OK && aKey && i<n; i++){
      MongoState *s = (MongoState*)aE[i]->pVal;
      if( aE[i]->nKey!=nKey || memcmp(aE[i]->zKey, aKey, nKey)!=0 ) continue;
      if( s->pBefore==0 ){
        s->pBefore = bson_copy(pDoc);
        s->pCur = bson_copy(pDoc);
      }
    }
    sqlite3_free(aKey);
  }
  if( rc==SQLITE_OK && mongoc_cursor_error(pCur, &err) ){
    fedSetError(pzErr, "%s: commit to server \"%s\": cannot read the"
                " documents it changes: %s (remote command: find)",
                MONGO_STORE, p->base.pServer->zName, err.message);
    rc = SQLITE_ERROR;
  }
  mongoc_cursor_destroy(pCur);
  mongoc_collection_destroy(pColl);
  bson_destroy(&filter);
  return rc;
}

/* The before-image of every key of the plan. */
static int readBefore(MongoConn *p, MongoPlan *pPlan, char **pzErr){
  FedKvElem **aE, *pE;
  int nE = 0, i, j, rc = SQLITE_OK;
  aE = sqlite3_malloc64(sizeof(FedKvElem*)*(pPlan->state.nElem+1));
  if( aE==0 ) return SQLITE_NOMEM;
  FEDKV_EACH(&pPlan->state, i, pE){ aE[nE++] = pE; }
  for(i=0; rc==SQLITE_OK && i<nE; i++){
    FedKvElem *aRun[MONGO_FIND_IDS];
    int nRun = 0;
    MongoState *s = (MongoState*)aE[i]->pVal;
    const char *zDb = aE[i]->zKey;
    const char *zColl = zDb + strlen(zDb) + 1;
    if( s->bRead ) continue;
    for(j=i; j<nE && nRun<MONGO_FIND_IDS; j++){
      MongoState *s2 = (MongoState*)aE[j]->pVal;
      const char *zDb2 = aE[j]->zKey;
      if( s2->bRead || strcmp(zDb, zDb2)!=0
       || strcmp(zColl, zDb2+strlen(zDb2)+1)!=0 ) continue;
      s2->bRead = 1;
      aRun[nRun++] = aE[j];
    }
    rc = readDocs(p, aRun, nRun, pzErr);
  }
  sqlite3_free(aE);
  return rc;
}

/* 1 if two values read the same (type and bytes). */
static int valSame(const MongoVal *a, const MongoVal *b){
  if( a->eType!=b->eType ) return 0;
  switch( a->eType ){
    case SQLITE_INTEGER: return a->i==b->i;
    case SQLITE_FLOAT: return memcmp(&a->r, &b->r, sizeof(double))==0;
    case SQLITE_TEXT: case SQLITE_BLOB:
      return a->n==b->n && (a->n==0 || memcmp(a->z, b->z, a->n)==0);
  }
  return 1;
}

static int copyId(const bson_t *pDoc, MongoAct *a){
  bson_iter_t it;
  if( pDoc && bson_iter_init_find(&it, pDoc, "_id") ){
    bson_value_copy(bson_iter_value(&it), &a->id);
    a->bId = 1;
  }
  return a->bId ? SQLITE_OK : SQLITE_ERROR;
}

/* UPDATE: the columns whose new value differs from what they read in
** pOld, the document as the statement's scan saw it (the before-image:
** scans do not see this transaction's queue, so an earlier UPDATE of the
** same document in it is not in what SQLite passes as "unchanged"),
** applied to pCur, the document as the earlier ops leave it.  Sets
** a->eAct, pBody, and *ppAfter. */
static int planUpdate(MongoOp *pOp, const bson_t *pOld, const bson_t *pCur,
                      sqlite3_stmt *pNum, MongoAct *a, bson_t **ppAfter,
                      char **pzWhy){
  MongoVal aNow[FED_MAX_COLUMNS], aNew[FED_MAX_COLUMNS];
  const char *azPath[FED_MAX_COLUMNS];
  const MongoVal *apVal[FED_MAX_COLUMNS];
  bson_t repl, *pBase = 0, base2 = BSON_INITIALIZER;
  int nPatch = 0, i, rc = SQLITE_OK, bRepl = 0, n = pOp->nVal;
  if( n>FED_MAX_COLUMNS ) n = FED_MAX_COLUMNS;
  memset(aNow, 0, sizeof(aNow));
  memset(aNew, 0, sizeof(aNew));
  for(i=0; rc==SQLITE_OK && i<n; i++){
    MongoCol *pCol = &pOp->aCol[i];
    if( pCol->eKind==MONGO_KIND_ID ) continue;
    rc = mongoColumnValue(pOld, pCol, &aNow[i]);
    if( rc==SQLITE_OK ) rc = mongoApplyAffinity(&aNow[i], pCol->eAff, pNum);
    mongoValFrom(pOp->apVal[i], &aNew[i]);
    if( rc==SQLITE_OK && pCol->eKind==MONGO_KIND_PATH ){
      rc = mongoApplyAffinity(&aNew[i], pCol->eAff, pNum);
    }
    if( rc!=SQLITE_OK || valSame(&aNow[i], &aNew[i]) ) continue;
    if( pCol->eKind==MONGO_KIND_DOC ){
      bson_error_t err;
      if( aNew[i].eType!=SQLITE_TEXT
       || !mongoJsonObject(aNew[i].z, aNew[i].n, &repl, &err) ){
        *pzWhy = sqlite3_mprintf("doc is not a JSON object: %s",
                     aNew[i].eType==SQLITE_TEXT ? err.message : "not text");
        rc = SQLITE_CONSTRAINT;
      }else{
        bRepl = 1;
      }
    }else{
      azPath[nPatch] = pCol->zPath;
      apVal[nPatch] = &aNew[i];
      nPatch++;
    }
  }
  if( rc==SQLITE_OK && bRepl ){
    /* The replacement keeps the document's _id. */
    bson_iter_t it, itOld;
    bson_iter_init_find(&itOld, pCur, "_id");
    bson_append_iter(&base2, "_id", 3, &itOld);
    if( bson_iter_init(&it, &repl) ){
      while( bson_iter_next(&it) ){
        if( strcmp(bson_iter_key(&it), "_id")==0 ){
          MongoVal x, y;
          int bSame;
          mongoIterValue(&it, &x);
          mongoIterValue(&itOld, &y);
          bSame = valSame(&x, &y);
          mongoValClear(&x);
          mongoValClear(&y);
          if( !bSame ){
            *pzWhy = sqlite3_mprintf("_id cannot change (a document's _id"
                                     " is immutable in MongoDB)");
            rc = SQLITE_CONSTRAINT;
          }
          continue;
        }
        bson_append_iter(&base2, 0, 0, &it);
      }
    }
    bson_destroy(&repl);
    pBase = &base2;
  }
  if( rc==SQLITE_OK && (bRepl || nPatch>0) ){
    bson_t *pAfter = bson_new();
    rc = mongoPatch(pBase ? pBase : pCur, 0, nPatch, azPath, apVal, pAfter,
                    pzWhy);
    if( rc==SQLITE_ERROR ) rc = SQLITE_CONSTRAINT;
    if( rc==SQLITE_OK && bRepl ){
      a->eAct = ACT_REPLACE;
      a->pBody = bson_copy(pAfter);
    }else if( rc==SQLITE_OK ){
      bson_t set, unset;
      int nSet = 0, nUnset = 0;
      a->eAct = ACT_UPDATE;
      a->pBody = bson_new();
      for(i=0; i<nPatch; i++){
        if( apVal[i]->eType==SQLITE_NULL ) nUnset++; else nSet++;
      }
      if( nSet ){
        bson_append_document_begin(a->pBody, "$set", 4, &set);
        for(i=0; i<nPatch; i++){
          if( apVal[i]->eType!=SQLITE_NULL ){
            mongoAppendVal(&set, azPath[i], apVal[i]);
          }
        }
        bson_append_document_end(a->pBody, &set);
      }
      if( nUnset ){
        /* NULL is $unset: a missing field reads NULL, as null does, and
        ** is what an insert of NULL leaves (docs/mongo.md). */
        bson_append_document_begin(a->pBody, "$unset", 6, &unset);
        for(i=0; i<nPatch; i++){
          if( apVal[i]->eType==SQLITE_NULL ){
            bson_append_utf8(&unset, azPath[i], -1, "", 0);
          }
        }
        bson_append_document_end(a->pBody, &unset);
      }
    }
    if( rc==SQLITE_OK ){
      *ppAfter = pAfter;
      rc = copyId(pCur, a);
    }else{
      bson_destroy(pAfter);
    }
  }else if( rc==SQLITE_OK ){
    *ppAfter = bson_copy(pCur);
  }
  for(i=0; i<n; i++){
    mongoValClear(&aNow[i]);
    mongoValClear(&aNew[i]);    /* A number given to a TEXT column */
  }
  bson_destroy(&base2);
  return rc;
}

/* The plan of the queue: before-images read, each op replayed. */
static int planBuild(MongoConn *p, MongoPlan **ppPlan, char **pzErr){
  MongoPlan *pPlan;
  sqlite3_stmt *pNum = 0;
  int i, rc = SQLITE_OK, nOp = p->kv.nOp;
  *ppPlan = 0;
  pPlan = sqlite3_malloc64(sizeof(*pPlan));
  if( pPlan==0 ) return SQLITE_NOMEM;
  memset(pPlan, 0, sizeof(*pPlan));
  pPlan->state.xDel = stateFree;
  pPlan->aAct = sqlite3_malloc64(sizeof(MongoAct)*(nOp+1));
  if( pPlan->aAct==0 ){
    sqlite3_free(pPlan);
    return SQLITE_NOMEM;
  }
  memset(pPlan->aAct, 0, sizeof(MongoAct)*(nOp+1));
  pPlan->nAct = nOp;
  for(i=0; rc==SQLITE_OK && i<nOp; i++){
    MongoOp *pOp = mongoOp(p, i);
    int bNew = 0;
    FedKvElem *pE = fedKvHashAdd(&pPlan->state, 0, pOp->hdr.aKey,
                                 pOp->hdr.nKey, &bNew);
    if( pE==0 ){
      rc = SQLITE_NOMEM;
    }else if( bNew ){
      pE->pVal = sqlite3_malloc64(sizeof(MongoState));
      if( pE->pVal==0 ) rc = SQLITE_NOMEM;
      else memset(pE->pVal, 0, sizeof(MongoState));
    }
  }
  /* A key whose first op is a plain INSERT needs no read: if the insert
  ** applies, the document was absent; if not, nothing was applied. */
  for(i=nOp-1; rc==SQLITE_OK && i>=0; i--){
    MongoOp *pOp = mongoOp(p, i);
    FedKvElem *pE = fedKvHashFind(&pPlan->state, 0, pOp->hdr.aKey,
                                  pOp->hdr.nKey);
    ((MongoState*)pE->pVal)->bRead = pOp->hdr.eOp==MONGO_OP_INSERT
                                     && pOp->eConflict!=SQLITE_REPLACE
                                     && pOp->eConflict!=SQLITE_IGNORE;
  }
  if( rc==SQLITE_OK && nOp>0 ) rc = readBefore(p, pPlan, pzErr);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(p->base.pServer->pCtx->db, "SELECT ?1", -1,
                            &pNum, 0);
  }
  for(i=0; rc==SQLITE_OK && i<nOp; i++){
    MongoOp *pOp = mongoOp(p, i);
    MongoAct *a = &pPlan->aAct[i];
    FedKvElem *pE = fedKvHashFind(&pPlan->state, 0, pOp->hdr.aKey,
                                  pOp->hdr.nKey);
    MongoState *s = (MongoState*)pE->pVal;
    bson_t *pAfter = 0;
    char *zWhy = 0;
    if( pOp->hdr.eOp==MONGO_OP_INSERT ){
      if( s->pCur && pOp->eConflict==SQLITE_IGNORE ){
        pAfter = bson_copy(s->pCur);
      }else{
        a->eAct = ACT_INSERT;
        if( s->pCur && pOp->eConflict==SQLITE_REPLACE ){
          a->eAct = ACT_REPLACE;
          a->bUpsert = 1;
          rc = copyId(pOp->pDoc, a);
        }
        a->pBody = bson_copy(pOp->pDoc);
        pAfter = bson_copy(pOp->pDoc);
      }
    }else if( s->pCur==0 ){
      if( !s->bTouched ){
        char *zId = keyIdText(pOp->hdr.aKey, pOp->hdr.nKey);
        fedSetError(pzErr, "%s: %s %s: no document with %s on server \"%s\""
            " (another client deleted it, or its _id is of a type that is"
            " not written back as it reads: decimal128, date, ...);"
            " nothing was committed", MONGO_STORE, opVerb(pOp->hdr.eOp),
            pOp->zTab, zId ? zId : "", p->base.pServer->zName);
        sqlite3_free(zId);
        rc = SQLITE_CONSTRAINT;
      }
    }else if( pOp->hdr.eOp==MONGO_OP_DELETE ){
      a->eAct = ACT_DELETE;
      rc = copyId(s->pCur, a);
    }else{
      rc = planUpdate(pOp, s->pBefore ? s->pBefore : s->pCur, s->pCur, pNum,
                      a, &pAfter, &zWhy);
    }
    if( zWhy ){
      char *zId = keyIdText(pOp->hdr.aKey, pOp->hdr.nKey);
      fedSetError(pzErr, "%s: %s %s: row %s: %s", MONGO_STORE,
                  opVerb(pOp->hdr.eOp), pOp->zTab, zId ? zId : "", zWhy);
      sqlite3_free(zId);
      sqlite3_free(zWhy);
    }
    if( rc!=SQLITE_OK ){
      if( pAfter ) bson_destroy(pAfter);
      break;
    }
    if( s->pCur ) bson_destroy(s->pCur);
    s->pCur = pAfter;
    a->pAfter = pAfter ? bson_copy(pAfter) : 0;
    s->bTouched = 1;
    if( a->eAct!=ACT_NONE ) s->bChanged = 1;
  }
  sqlite3_finalize(pNum);
  if( rc!=SQLITE_OK ){
    mongoPlanFree(pPlan);
    return rc;
  }
  *ppPlan = pPlan;
  return SQLITE_OK;
}

/**************************************************************************
** Sending.
*/
/* Run write command pCmd on zDb: SQLITE_OK with *pReply (bson_destroy it
** in every case), or SQLITE_ERROR with err when no reply came. */
static int writeCmd(MongoConn *p, const char *zDb, const bson_t *pCmd,
                    bson_t *pReply, bson_error_t *pErr){
  i64 iSeq = explainCmd(p, pCmd);
  bson_iter_t it;
  int bOk = mongoc_client_write_command_with_opts(p->pClient, zDb, pCmd, 0,
                                                  pReply, pErr);
  if( !bOk && !bson_iter_init_find(&it, pReply, "writeErrors") ){
    return SQLITE_ERROR;
  }
  /* fed_explain's rows: the documents the command inserted, matched or
  ** deleted ("n"). */
  if( bson_iter_init_find(&it, pReply, "n") && BSON_ITER_HOLDS_NUMBER(&it) ){
    fedExplainRows(p->base.pServer->pCtx, iSeq, bson_iter_as_int64(&it), 1);
  }
  return SQLITE_OK;
}

/* The first write error of a reply: its index, code and message. */
static int firstWriteError(const bson_t *pReply, int *piIdx, int *piCode,
                           const char **pzMsg){
  bson_iter_t it, arr, e;
  if( !bson_iter_init_find(&it, pReply, "writeErrors")
   || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)
   || !bson_iter_next(&arr) || !BSON_ITER_HOLDS_DOCUMENT(&arr)
   || !bson_iter_recurse(&arr, &e) ){
    return 0;
  }
  *piIdx = 0;
  *piCode = 0;
  *pzMsg = "";
  while( bson_iter_next(&e) ){
    const char *k = bson_iter_key(&e);
    if( strcmp(k, "index")==0 ) *piIdx = (int)bson_iter_as_int64(&e);
    else if( strcmp(k, "code")==0 ) *piCode = (int)bson_iter_as_int64(&e);
    else if( strcmp(k, "errmsg")==0 && BSON_ITER_HOLDS_UTF8(&e) ){
      *pzMsg = bson_iter_utf8(&e, 0);
    }
  }
  return 1;
}

/* Put back what ops [0, iEnd) of the plan applied: for each document,
** its before-image, where it holds what its last applied op left.
** Returns the number of documents put back (*pnDone), or an error. */
static int compensate(MongoConn *p, MongoPlan *pPlan, int iEnd, int *pnDone,
                      char **pzErr){
  int i, rc = SQLITE_OK;
  *pnDone = 0;
  for(i=0; i<pPlan->nAct; i++){
    MongoOp *pOp = mongoOp(p, i);
    FedKvElem *pE = fedKvHashFind(&pPlan->state, 0, pOp->hdr.aKey,
                                  pOp->hdr.nKey);
    if( pE ) ((MongoState*)pE->pVal)->bSeen = 0;
  }
  for(i=iEnd-1; rc==SQLITE_OK && i>=0; i--){
    MongoOp *pOp = mongoOp(p, i);
    MongoAct *a = &pPlan->aAct[i];
    FedKvElem *pE = fedKvHashFind(&pPlan->state, 0, pOp->hdr.aKey,
                                  pOp->hdr.nKey);
    MongoState *s = (MongoState*)pE->pVal;
    FedUndoImage img;
    if( a->eAct==ACT_NONE || s->bSeen ) continue;
    s->bSeen = 1;
    memset(&img, 0, sizeof(img));
    img.aKey = pOp->hdr.aKey;
    img.nKey = pOp->hdr.nKey;
    if( s->pBefore ){
      img.aBefore = (char*)bson_get_data(s->pBefore);
      img.nBefore = (int)s->pBefore->len;
    }
    if( a->pAfter ){
      img.aAfter = (char*)bson_get_data(a->pAfter);
      img.nAfter = (int)a->pAfter->len;
    }
    rc = fedKvUndoApply(&mongoKvDriver, &p->base, &img, pzErr);
    if( rc==SQLITE_OK ) (*pnDone)++;
  }
  return rc;
}

/* The command name of an act. */
static const char *actCmd(int eAct){
  return eAct==ACT_INSERT ? "insert" : eAct==ACT_DELETE ? "delete"
                                                        : "update";
}

/* Append op iOp to the command's array pArr at index k. */
static void appendAct(bson_t *pArr, int k, const MongoAct *a){
  char zIdx[16];
  const char *zKey;
  bson_t sub, q;
  bson_uint32_to_string((uint32_t)k, &zKey, zIdx, sizeof(zIdx));
  if( a->eAct==ACT_INSERT ){
    bson_append_document(pArr, zKey, -1, a->pBody);
    return;
  }
  bson_append_document_begin(pArr, zKey, -1, &sub);
  bson_append_document_begin(&sub, "q", 1, &q);
  bson_append_value(&q, "_id", 3, &a->id);
  bson_append_document_end(&sub, &q);
  if( a->eAct==ACT_DELETE ){
    bson_append_int32(&sub, "limit", 5, 1);
  }else{
    bson_append_document(&sub, "u", 1, a->pBody);
    if( a->bUpsert ) bson_append_bool(&sub, "upsert", 6, 1);
  }
  bson_append_document_end(pArr, &sub);
}

static int sendPlan(MongoConn *p, MongoPlan *pPlan, char **pzErr){
  int i = 0, rc = SQLITE_OK;
  while( rc==SQLITE_OK && i<pPlan->nAct ){
    MongoOp *pOp;
    MongoAct *a = &pPlan->aAct[i];
    const char *zDb, *zColl, *zCmd;
    MongoVal v;
    bson_t cmd = BSON_INITIALIZER, arr, reply;
    bson_error_t err;
    int aiOp[MONGO_CMD_OPS];
    int nIn = 0, j, nBytes = 0;
    if( a->eAct==ACT_NONE ){ i++; continue; }
    pOp = mongoOp(p, i);
    mongoKeySplit(pOp->hdr.aKey, &zDb, &zColl, &v);
    zCmd = actCmd(a->eAct);
    BSON_APPEND_UTF8(&cmd, zCmd, zColl);
    BSON_APPEND_BOOL(&cmd, "ordered", 1);
    bson_append_array_begin(&cmd, a->eAct==ACT_INSERT ? "documents" :
                            a->eAct==ACT_DELETE ? "deletes" : "updates",
                            -1, &arr);
    for(j=i; j<pPlan->nAct && nIn<MONGO_CMD_OPS; j++){
      MongoAct *b = &pPlan->aAct[j];
      MongoOp *pB = mongoOp(p, j);
      const char *zDb2 = pB->hdr.aKey;
      if( b->eAct==ACT_NONE ) continue;
      if( strcmp(actCmd(b->eAct), zCmd)!=0 || strcmp(zDb2, zDb)!=0
       || strcmp(zDb2+strlen(zDb2)+1, zColl)!=0 ){
        break;
      }
      if( nIn>0 && nBytes+(b->pBody ? (int)b->pBody->len : 64)
                   >MONGO_CMD_BYTES ){
        break;
      }
      nBytes += b->pBody ? (int)b->pBody->len : 64;
      appendAct(&arr, nIn, b);
      aiOp[nIn++] = j;
    }
    bson_append_array_end(&cmd, &arr);
    rc = fedFault(FED_FAULT_COMMIT, pzErr);
    if( rc==SQLITE_OK ){
      rc = writeCmd(p, zDb, &cmd, &reply, &err);
      if( rc==SQLITE_OK ){
        int iIdx, iCode;
        const char *zMsg;
        if( firstWriteError(&reply, &iIdx, &iCode, &zMsg) ){
          int iOp = aiOp[iIdx>=0 && iIdx<nIn ? iIdx : 0];
          MongoOp *pBad = mongoOp(p, iOp);
          char *zId = keyIdText(pBad->hdr.aKey, pBad->hdr.nKey);
          if( iCode==11000 ){
            fedSetError(pzErr, "%s: %s %s: duplicate key, row %s: %s"
                " (remote command: %s)", MONGO_STORE,
                opVerb(pBad->hdr.eOp), pBad->zTab, zId ? zId : "", zMsg,
                zCmd);
          }else{
            fedSetError(pzErr, "%s: %s %s: row %s: %s (code %d)"
                " (remote command: %s)", MONGO_STORE,
                opVerb(pBad->hdr.eOp), pBad->zTab, zId ? zId : "", zMsg,
                iCode, zCmd);
          }
          sqlite3_free(zId);
          rc = SQLITE_CONSTRAINT;
          i = iOp;              /* Ops before it were applied */
        }
      }else{
        fedSetError(pzErr, "%s: commit to server \"%s\" failed: %s"
                    " (remote command: %s)", MONGO_STORE,
                    p->base.pServer->zName, err.message, zCmd);
        /* It may have been applied: put back up to its end. */
        i = aiOp[nIn-1]+1;
      }
      bson_destroy(&reply);
    }
    bson_destroy(&cmd);
    if( rc==SQLITE_OK ) i = aiOp[nIn-1]+1;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    char *zErr2 = 0;
    int nDone = 0, rc2;
    rc2 = compensate(p, pPlan, i, &nDone, &zErr2);
    if( rc2==SQLITE_OK && nDone>0 ){
      char *z = sqlite3_mprintf("%s; the %d document%s this commit had"
          " changed before it %s put back", *pzErr, nDone,
          nDone==1 ? "" : "s", nDone==1 ? "was" : "were");
      if( z ){ sqlite3_free(*pzErr); *pzErr = z; }
    }else if( rc2!=SQLITE_OK ){
      char *z = sqlite3_mprintf("%s; putting back what this commit had"
          " changed before it stopped: %s", *pzErr, zErr2 ? zErr2 : "");
      if( z ){ sqlite3_free(*pzErr); *pzErr = z; }
    }
    sqlite3_free(zErr2);
  }
  return rc;
}

/* The batch layer's xApply: the plan (made by xUndoImages already, or
** now), then its commands.  No marker: a standalone server has no
** transaction to put one in. */
int mongoKvApply(FedKvTxn *pKv, FedConn *pConn, const char *zMarker,
                 char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  int rc = SQLITE_OK;
  (void)pKv;
  (void)zMarker;
  if( p->kv.nOp==0 ) return SQLITE_OK;
  if( p->pPlan==0 ) rc = planBuild(p, &p->pPlan, pzErr);
  if( rc==SQLITE_OK ) rc = sendPlan(p, p->pPlan, pzErr);
  return rc;
}

/**************************************************************************
** Undo images: whole documents as BSON bytes, keyed as the queue.
*/
int mongoUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                    char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  FedUndoImage *a = 0;
  int n = 0, i, rc = SQLITE_OK;
  *paImg = 0;
  *pnImg = 0;
  mongoPlanFree(p->pPlan);
  p->pPlan = 0;
  rc = planBuild(p, &p->pPlan, pzErr);
  for(i=0; rc==SQLITE_OK && i<p->kv.nOp; i++){
    MongoOp *pOp = mongoOp(p, i);
    FedKvElem *pE = fedKvHashFind(&p->pPlan->state, 0, pOp->hdr.aKey,
                                  pOp->hdr.nKey);
    MongoState *s = (MongoState*)pE->pVal;
    if( !s->bChanged || s->bSeen ) continue;
    s->bSeen = 1;
    rc = fedUndoImageSet(&a, &n, 0, pOp->hdr.aKey, pOp->hdr.nKey,
        s->pCur ? (const char*)bson_get_data(s->pCur) : 0,
        s->pCur ? (int)s->pCur->len : 0);
    if( rc==SQLITE_OK && s->pBefore ){
      a[n-1].aBefore = fedStrdup((const char*)bson_get_data(s->pBefore),
                                 (int)s->pBefore->len);
      a[n-1].nBefore = (int)s->pBefore->len;
      if( a[n-1].aBefore==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( rc!=SQLITE_OK ){
    fedUndoImagesFree(a, n);
    return mongoRc(rc, pzErr);
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

int mongoUndoApply(FedConn *pConn, const FedUndoImage *pImg, char **pzErr){
  return fedKvUndoApply(&mongoKvDriver, pConn, pImg, pzErr);
}

/* The document of an image's key now (BSON bytes, NULL when absent). */
int mongoImageRead(FedConn *pConn, const FedUndoImage *pImg, char **paNow,
                   int *pnNow, i64 *piGuard, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  MongoState s;
  FedKvElem e, *pE = &e;
  int rc;
  *paNow = 0;
  *pnNow = 0;
  *piGuard = 0;
  memset(&s, 0, sizeof(s));
  memset(&e, 0, sizeof(e));
  e.zKey = pImg->aKey;
  e.nKey = pImg->nKey;
  e.pVal = &s;
  rc = readDocs(p, &pE, 1, pzErr);
  if( rc==SQLITE_OK && s.pBefore ){
    *paNow = fedStrdup((const char*)bson_get_data(s.pBefore),
                       (int)s.pBefore->len);
    *pnNow = (int)s.pBefore->len;
    if( *paNow==0 ) rc = SQLITE_NOMEM;
  }
  if( s.pBefore ) bson_destroy(s.pBefore);
  if( s.pCur ) bson_destroy(s.pCur);
  return rc;
}

/* Two documents are the same when they have the same fields with the
** same values, in any order (a server may order a $set's new field
** differently); arrays in order. */
static int docSame(const bson_t *a, const bson_t *b, int bArray);
static int iterSame(bson_iter_t *x, bson_iter_t *y){
  bson_type_t t = bson_iter_type(x);
  if( t!=bson_iter_type(y) ) return 0;
  if( t==BSON_TYPE_DOCUMENT || t==BSON_TYPE_ARRAY ){
    const uint8_t *d1, *d2;
    uint32_t n1, n2;
    bson_t c1, c2;
    if( t==BSON_TYPE_DOCUMENT ){
      bson_iter_document(x, &n1, &d1);
      bson_iter_document(y, &n2, &d2);
    }else{
      bson_iter_array(x, &n1, &d1);
      bson_iter_array(y, &n2, &d2);
    }
    if( !bson_init_static(&c1, d1, n1) || !bson_init_static(&c2, d2, n2) ){
      return 0;
    }
    return docSame(&c1, &c2, t==BSON_TYPE_ARRAY);
  }
  {
    /* A scalar: its encoding is one for one value. */
    bson_t t1 = BSON_INITIALIZER, t2 = BSON_INITIALIZER;
    int bSame;
    bson_append_iter(&t1, "", 0, x);
    bson_append_iter(&t2, "", 0, y);
    bSame = t1.len==t2.len
         && memcmp(bson_get_data(&t1), bson_get_data(&t2), t1.len)==0;
    bson_destroy(&t1);
    bson_destroy(&t2);
    return bSame;
  }
}
static int docSame(const bson_t *a, const bson_t *b, int bArray){
  bson_iter_t x, y;
  if( bson_count_keys(a)!=bson_count_keys(b) ) return 0;
  if( !bson_iter_init(&x, a) ) return 0;
  if( bArray ){
    if( !bson_iter_init(&y, b) ) return 0;
    while( bson_iter_next(&x) ){
      if( !bson_iter_next(&y) || !iterSame(&x, &y) ) return 0;
    }
    return 1;
  }
  while( bson_iter_next(&x) ){
    if( !bson_iter_init_find(&y, b, bson_iter_key(&x)) ) return 0;
    if( !iterSame(&x, &y) ) return 0;
  }
  return 1;
}

int mongoImageSame(const char *a, int na, const char *b, int nb){
  bson_t x, y;
  if( a==0 || b==0 ) return a==b;
  if( !bson_init_static(&x, (const uint8_t*)a, (size_t)na)
   || !bson_init_static(&y, (const uint8_t*)b, (size_t)nb) ){
    return na==nb && memcmp(a, b, na)==0;
  }
  return docSame(&x, &y, 0);
}

/* Put the before-image back: a replacement (an upsert, the document may
** have been deleted) or a delete.  A standalone server has no compare-and-
** set of a whole document: the window between xImageRead and this is one
** round trip (docs/mongo.md). */
int mongoImageRestore(FedConn *pConn, const FedUndoImage *pImg, i64 iGuard,
                      char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  const char *zDb, *zColl;
  MongoVal v;
  MongoAct act;
  bson_t before, after, cmd = BSON_INITIALIZER, arr, reply;
  bson_error_t err;
  const bson_t *pSrc = 0;
  int rc = SQLITE_OK, iIdx, iCode;
  const char *zMsg;
  (void)iGuard;
  memset(&act, 0, sizeof(act));
  mongoKeySplit(pImg->aKey, &zDb, &zColl, &v);
  if( pImg->aBefore && bson_init_static(&before,
          (const uint8_t*)pImg->aBefore, (size_t)pImg->nBefore) ){
    pSrc = &before;
  }
  if( pImg->aAfter && bson_init_static(&after,
          (const uint8_t*)pImg->aAfter, (size_t)pImg->nAfter) ){
    if( pSrc==0 ) pSrc = &after;
  }
  if( pSrc==0 || copyId(pSrc, &act)!=SQLITE_OK ) return SQLITE_OK;
  if( pImg->aBefore ){
    act.eAct = ACT_REPLACE;
    act.bUpsert = 1;
    act.pBody = &before;
  }else{
    act.eAct = ACT_DELETE;
  }
  BSON_APPEND_UTF8(&cmd, actCmd(act.eAct), zColl);
  BSON_APPEND_BOOL(&cmd, "ordered", 1);
  bson_append_array_begin(&cmd, act.eAct==ACT_DELETE ? "deletes"
                                                     : "updates", -1, &arr);
  appendAct(&arr, 0, &act);
  bson_append_array_end(&cmd, &arr);
  rc = writeCmd(p, zDb, &cmd, &reply, &err);
  if( rc!=SQLITE_OK ){
    fedSetError(pzErr, "%s: cannot put a document back on server \"%s\":"
                " %s (remote command: %s)", MONGO_STORE,
                p->base.pServer->zName, err.message, actCmd(act.eAct));
  }else if( firstWriteError(&reply, &iIdx, &iCode, &zMsg) ){
    fedSetError(pzErr, "%s: cannot put a document back on server \"%s\":"
                " %s (code %d) (remote command: %s)", MONGO_STORE,
                p->base.pServer->zName, zMsg, iCode, actCmd(act.eAct));
    rc = SQLITE_ERROR;
  }
  bson_destroy(&reply);
  bson_destroy(&cmd);
  bson_value_destroy(&act.id);
  return rc;
}
