/*
** write.c: writes of the MongoDB store.  INSERT, UPDATE and DELETE are
** queued (the batch layer, ext/kv.c, keyed by database, collection and
** _id) and sent at commit by commit.c as ordered bulk writes; savepoints
** and ROLLBACK are positions in the queue.  This file also owns the
** mapping of SQLite values back to BSON and the building of documents
** from declared paths (mongoPatch, pure).  docs/mongo.md, "Writes".
**
**   INSERT INTO prefs(user_id, theme, email) VALUES(1, 'dark', 1);
**       -- {_id: ObjectId(..), user_id: 1, theme: "dark",
**       --  notifications: {email: 1}}
**   INSERT INTO prefs(_id, doc) VALUES(7, '{"theme": "light"}');
**   UPDATE prefs SET theme = NULL WHERE user_id = 1;   -- $unset
**   UPDATE prefs SET doc = '{"x": 1}' WHERE _id = 7;  -- a replacement
**   DELETE FROM prefs WHERE _id = 7;
*/
#include "mongoInt.h"

/**************************************************************************
** Values.
*/
void mongoValFrom(sqlite3_value *pV, MongoVal *p){
  memset(p, 0, sizeof(*p));
  p->eType = sqlite3_value_type(pV);
  switch( p->eType ){
    case SQLITE_INTEGER: p->i = sqlite3_value_int64(pV); break;
    case SQLITE_FLOAT:   p->r = sqlite3_value_double(pV); break;
    case SQLITE_TEXT:
      p->z = (const char*)sqlite3_value_text(pV);
      p->n = sqlite3_value_bytes(pV);
      if( p->z==0 ) p->eType = SQLITE_NULL;
      break;
    case SQLITE_BLOB:
      p->z = (const char*)sqlite3_value_blob(pV);
      p->n = sqlite3_value_bytes(pV);
      if( p->z==0 ) p->z = "";
      break;
  }
}

void mongoAppendVal(bson_t *pDoc, const char *zName, const MongoVal *p){
  switch( p->eType ){
    case SQLITE_INTEGER:
      /* int32 when the value fits (as the drivers write a small integer),
      ** int64 otherwise: both read back as the same INTEGER. */
      if( p->i>=INT32_MIN && p->i<=INT32_MAX ){
        bson_append_int32(pDoc, zName, -1, (int32_t)p->i);
      }else{
        bson_append_int64(pDoc, zName, -1, p->i);
      }
      break;
    case SQLITE_FLOAT:
      bson_append_double(pDoc, zName, -1, p->r);
      break;
    case SQLITE_TEXT:
      bson_append_utf8(pDoc, zName, -1, p->z, p->n);
      break;
    case SQLITE_BLOB:
      bson_append_binary(pDoc, zName, -1, BSON_SUBTYPE_BINARY,
                         (const uint8_t*)p->z, (uint32_t)p->n);
      break;
    default:
      bson_append_null(pDoc, zName, -1);
      break;
  }
}

/* 1 if z[0..n) is 24 lower-case hex digits: how an ObjectId reads. */
static int isOidText(const char *z, int n){
  int i;
  if( n!=24 ) return 0;
  for(i=0; i<24; i++){
    if( !((z[i]>='0' && z[i]<='9') || (z[i]>='a' && z[i]<='f')) ) return 0;
  }
  return 1;
}

/* The _id of a new document: a text of 24 lower-case hex digits becomes
** the ObjectId it spells (an ObjectId reads as that text), any other
** value as mongoAppendVal. */
static void appendNewId(bson_t *pDoc, const MongoVal *pId){
  if( pId->eType==SQLITE_TEXT && isOidText(pId->z, pId->n) ){
    bson_oid_t oid;
    char z[25];
    memcpy(z, pId->z, 24);
    z[24] = 0;
    bson_oid_init_from_string(&oid, z);
    bson_append_oid(pDoc, "_id", 3, &oid);
  }else{
    mongoAppendVal(pDoc, "_id", pId);
  }
}

char *mongoIdText(const MongoVal *p){
  switch( p->eType ){
    case SQLITE_INTEGER: return sqlite3_mprintf("_id=%lld", p->i);
    case SQLITE_FLOAT:   return sqlite3_mprintf("_id=%!.15g", p->r);
    case SQLITE_TEXT:    return sqlite3_mprintf("_id='%.*q'", p->n, p->z);
    case SQLITE_BLOB: {
      sqlite3_str *s = sqlite3_str_new(0);
      int i;
      sqlite3_str_appendall(s, "_id=X'");
      for(i=0; i<p->n; i++){
        sqlite3_str_appendf(s, "%02X", (unsigned char)p->z[i]);
      }
      sqlite3_str_appendall(s, "'");
      return sqlite3_str_finish(s);
    }
  }
  return sqlite3_mprintf("_id=NULL");
}

int mongoJsonObject(const char *z, int n, bson_t *pDoc, bson_error_t *pErr){
  int i = 0;
  while( i<n && (z[i]==' ' || z[i]=='\t' || z[i]=='\n' || z[i]=='\r') ) i++;
  if( i>=n || z[i]!='{' ){
    bson_set_error(pErr, 0, 0, "it is not an object");
    return 0;
  }
  return bson_init_from_json(pDoc, z, n, pErr);
}

/**************************************************************************
** Keys of the queue: "db\0coll\0" then the _id as SQLite reads it: a tag
** ('i' int64, 'r' double, 't' text, 'b' blob, 'n' NULL) and its bytes.  A
** REAL that is an integer is keyed as that integer (SQLite's 5 = 5.0,
** and MongoDB's: one document), so every spelling of one _id is one key.
*/
int mongoKey(const char *zDb, const char *zColl, const MongoVal *pId,
             char **paKey, int *pnKey){
  int nDb = (int)strlen(zDb), nColl = (int)strlen(zColl);
  int nVal = 0;
  char tag = 'n';
  unsigned char aNum[8];
  const char *aVal = 0;
  char *a;
  i64 i = 0;
  *paKey = 0;
  *pnKey = 0;
  switch( pId->eType ){
    case SQLITE_FLOAT:
      if( pId->r>=-9223372036854775808.0 && pId->r<9223372036854775808.0
       && (double)(i64)pId->r==pId->r ){
        i = (i64)pId->r;
        tag = 'i';
      }else{
        memcpy(aNum, &pId->r, 8);
        aVal = (const char*)aNum;
        nVal = 8;
        tag = 'r';
      }
      break;
    case SQLITE_INTEGER: i = pId->i; tag = 'i'; break;
    case SQLITE_TEXT: tag = 't'; aVal = pId->z; nVal = pId->n; break;
    case SQLITE_BLOB: tag = 'b'; aVal = pId->z; nVal = pId->n; break;
  }
  if( tag=='i' ){
    int k;
    for(k=0; k<8; k++) aNum[k] = (unsigned char)(((u64)i)>>(56-8*k));
    aVal = (const char*)aNum;
    nVal = 8;
  }
  a = sqlite3_malloc64(nDb+nColl+3+nVal+1);
  if( a==0 ) return SQLITE_NOMEM;
  memcpy(a, zDb, nDb+1);
  memcpy(&a[nDb+1], zColl, nColl+1);
  a[nDb+nColl+2] = tag;
  if( nVal ) memcpy(&a[nDb+nColl+3], aVal, nVal);
  a[nDb+nColl+3+nVal] = 0;
  *paKey = a;
  *pnKey = nDb+nColl+3+nVal;
  return SQLITE_OK;
}

void mongoKeySplit(const char *aKey, const char **pzDb, const char **pzColl,
                   MongoVal *pId){
  const char *z;
  *pzDb = aKey;
  *pzColl = aKey + strlen(aKey) + 1;
  z = *pzColl + strlen(*pzColl) + 1;
  memset(pId, 0, sizeof(*pId));
  /* The length of a text or blob is the caller's (keySplit): the key
  ** alone does not say it. */
  switch( z[0] ){
    case 'i': {
      u64 u = 0;
      int k;
      for(k=0; k<8; k++) u = (u<<8) | (unsigned char)z[1+k];
      pId->eType = SQLITE_INTEGER;
      pId->i = (i64)u;
      break;
    }
    case 'r':
      pId->eType = SQLITE_FLOAT;
      memcpy(&pId->r, &z[1], 8);
      break;
    case 't': case 'b':
      pId->eType = z[0]=='t' ? SQLITE_TEXT : SQLITE_BLOB;
      pId->z = &z[1];
      break;
    default:
      pId->eType = SQLITE_NULL;
      break;
  }
}

/* The length of the text or blob of a key (mongoKeySplit cannot know). */
static int keyValBytes(const char *aKey, int nKey){
  int nDb = (int)strlen(aKey);
  int nColl = (int)strlen(&aKey[nDb+1]);
  return nKey - (nDb+nColl+3);
}

/* mongoKeySplit with the length of a text or blob set. */
static void keySplit(const char *aKey, int nKey, const char **pzDb,
                     const char **pzColl, MongoVal *pId){
  mongoKeySplit(aKey, pzDb, pzColl, pId);
  if( pId->eType==SQLITE_TEXT || pId->eType==SQLITE_BLOB ){
    pId->n = keyValBytes(aKey, nKey);
  }
}

/**************************************************************************
** mongoPatch: a document with declared paths set or unset.
*/
typedef struct Patch Patch;
struct Patch {
  const char *zPath;            /* The whole path, for messages */
  const char *z;                /* The rest of the path at this level */
  const MongoVal *pV;           /* NULL or SQL NULL: unset */
  int bDone;                    /* Matched a field at this level */
};

static int segLen(const char *z){
  const char *zDot = strchr(z, '.');
  return zDot ? (int)(zDot-z) : (int)strlen(z);
}
static int segIs(const Patch *p, const char *zField){
  int n = segLen(p->z);
  return (int)strlen(zField)==n && memcmp(p->z, zField, n)==0;
}
static int isUnset(const Patch *p){
  return p->pV==0 || p->pV->eType==SQLITE_NULL;
}

static int patchLevel(const bson_t *pIn, const MongoVal *pId, Patch *a,
                      int n, bson_t *pOut, char **pzErr){
  bson_iter_t it;
  Patch aSub[FED_MAX_COLUMNS+1];
  int i, j, rc = SQLITE_OK;
  if( pId ) appendNewId(pOut, pId);
  for(i=0; i<n; i++) a[i].bDone = 0;
  if( pIn && bson_iter_init(&it, pIn) ){
    while( rc==SQLITE_OK && bson_iter_next(&it) ){
      const char *zKey = bson_iter_key(&it);
      int nSub = 0, bHere = -1;
      if( pId && strcmp(zKey, "_id")==0 ) continue;
      for(i=0; i<n; i++){
        if( !segIs(&a[i], zKey) ) continue;
        a[i].bDone = 1;
        if( a[i].z[segLen(a[i].z)]==0 ){
          if( bHere>=0 || nSub>0 ) goto overlap;
          bHere = i;
        }else{
          if( bHere>=0 ) goto overlap;
          aSub[nSub] = a[i];
          aSub[nSub].z = a[i].z + segLen(a[i].z) + 1;
          nSub++;
        }
      }
      if( bHere>=0 ){
        if( !isUnset(&a[bHere]) ) mongoAppendVal(pOut, zKey, a[bHere].pV);
      }else if( nSub==0 ){
        bson_append_iter(pOut, zKey, -1, &it);
      }else if( BSON_ITER_HOLDS_DOCUMENT(&it) ){
        const uint8_t *aData;
        uint32_t nData;
        bson_t child, sub;
        bson_iter_document(&it, &nData, &aData);
        if( !bson_init_static(&child, aData, nData) ) return SQLITE_ERROR;
        bson_append_document_begin(pOut, zKey, -1, &sub);
        rc = patchLevel(&child, 0, aSub, nSub, &sub, pzErr);
        bson_append_document_end(pOut, &sub);
      }else{
        /* Unsetting through a non-document changes nothing (as $unset);
        ** setting through one is MongoDB's error too. */
        for(j=0; j<nSub && isUnset(&aSub[j]); j++){}
        if( j<nSub ){
          fedSetError(pzErr, "cannot set path %s: field \"%s\" is not a"
                      " document", aSub[j].zPath, zKey);
          return SQLITE_ERROR;
        }
        bson_append_iter(pOut, zKey, -1, &it);
      }
    }
  }
  /* Paths whose field is absent: new fields (documents built down the
  ** path), in the order of the columns. */
  for(i=0; rc==SQLITE_OK && i<n; i++){
    int nSub = 0, bHere = -1, bSet = 0;
    char *zKey;
    bson_t sub;
    if( a[i].bDone ) continue;
    zKey = sqlite3_mprintf("%.*s", segLen(a[i].z), a[i].z);
    if( zKey==0 ) return SQLITE_NOMEM;
    for(j=i; j<n; j++){
      if( a[j].bDone || !segIs(&a[j], zKey) ) continue;
      a[j].bDone = 1;
      if( isUnset(&a[j]) ) continue;
      bSet = 1;
      if( a[j].z[segLen(a[j].z)]==0 ){
        if( bHere>=0 || nSub>0 ){ sqlite3_free(zKey); goto overlap; }
        bHere = j;
      }else{
        if( bHere>=0 ){ sqlite3_free(zKey); goto overlap; }
        aSub[nSub] = a[j];
        aSub[nSub].z = a[j].z + segLen(a[j].z) + 1;
        nSub++;
      }
    }
    if( bSet && bHere>=0 ){
      mongoAppendVal(pOut, zKey, a[bHere].pV);
    }else if( bSet ){
      bson_append_document_begin(pOut, zKey, -1, &sub);
      rc = patchLevel(0, 0, aSub, nSub, &sub, pzErr);
      bson_append_document_end(pOut, &sub);
    }
    sqlite3_free(zKey);
  }
  return rc;

overlap:
  fedSetError(pzErr, "paths overlap: two columns write into one field (%s)",
              a[0].zPath);
  return SQLITE_ERROR;
}

int mongoPatch(const bson_t *pIn, const MongoVal *pId, int n,
               const char *const *azPath, const MongoVal *const *apVal,
               bson_t *pOut, char **pzErr){
  Patch a[FED_MAX_COLUMNS+1];
  int i;
  if( n>FED_MAX_COLUMNS ) n = FED_MAX_COLUMNS;
  for(i=0; i<n; i++){
    a[i].zPath = azPath[i];
    a[i].z = azPath[i];
    a[i].pV = apVal[i];
    a[i].bDone = 0;
  }
  return patchLevel(pIn, pId, a, n, pOut, pzErr);
}

/**************************************************************************
** The queue.
*/
static void opFree(FedKvOp *pHdr){
  MongoOp *pOp = (MongoOp*)pHdr;
  int i;
  sqlite3_free(pOp->zTab);
  if( pOp->pDoc ) bson_destroy(pOp->pDoc);
  for(i=0; i<pOp->nVal; i++){
    if( pOp->apVal ) sqlite3_value_free(pOp->apVal[i]);
    if( pOp->aCol ) sqlite3_free(pOp->aCol[i].zPath);
  }
  sqlite3_free(pOp->apVal);
  sqlite3_free(pOp->aCol);
}

/* "db.coll _id=..." */
static void renderKey(sqlite3_str *s, const char *a, int n){
  const char *zDb, *zColl;
  MongoVal v;
  char *z;
  keySplit(a, n, &zDb, &zColl, &v);
  z = mongoIdText(&v);
  sqlite3_str_appendf(s, "%s.%s %s", zDb, zColl, z ? z : "");
  sqlite3_free(z);
}

/* MongoDB as a batch store (ext/kv.h): no statement flush, no state of
** its own beside the queue and the commit's plan. */
const FedKvDriver mongoKvDriver = {
  .zStore = MONGO_STORE,
  .szOp = sizeof(MongoOp),
  .xOpFree = opFree,
  .xRenderKey = renderKey,
  .xApply = mongoKvApply,
  .xImageRead = mongoImageRead,
  .xImageSame = mongoImageSame,
  .xImageRestore = mongoImageRestore,
};

/* Queue an op on key (a, n); *ppOp the op being built (NULL on OOM). */
static MongoOp *opNew(MongoConn *p, FedTable *pTab, int eOp,
                      const char *a, int n){
  MongoOp *pOp = (MongoOp*)fedKvOpNew(&p->kv, eOp, 1, 0, a, n);
  if( pOp==0 ) return 0;
  pOp->zTab = fedStrdup(pTab->zName, -1);
  pOp->eConflict = sqlite3_vtab_on_conflict(pTab->pCtx->db);
  if( pOp->zTab==0 ){
    fedKvOpDiscard(&p->kv);
    return 0;
  }
  return pOp;
}

/* "INSERT into t", "UPDATE of t", "DELETE from t" */
static const char *opVerb(int eOp){
  return eOp==MONGO_OP_INSERT ? "INSERT into" :
         eOp==MONGO_OP_UPDATE ? "UPDATE of" : "DELETE from";
}

/* The key of the row whose _id SQLite gave as pV. */
static int rowKey(FedTable *pTab, const char *zDb, sqlite3_value *pV,
                  char **paKey, int *pnKey){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  MongoVal v;
  mongoValFrom(pV, &v);
  return mongoKey(zDb, pMT->zColl, &v, paKey, pnKey);
}

/* INSERT: the document, built now (nothing in it depends on the server);
** whether it collides is the server's answer at the commit. */
static int writeInsert(MongoConn *p, FedTable *pTab, const char *zDb,
                       sqlite3_value **apCol, char **pzErr){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  const char *azPath[FED_MAX_COLUMNS];
  const MongoVal *apVal[FED_MAX_COLUMNS];
  MongoVal aVal[FED_MAX_COLUMNS];
  MongoVal id, idNew;
  bson_t base = BSON_INITIALIZER;
  bson_t *pDoc = 0;
  sqlite3_stmt *pNum = 0;
  char *aKey = 0, *zWhy = 0;
  int nKey = 0, nPatch = 0, i, rc = SQLITE_OK, bDocId = 0;
  char zOid[25];
  MongoOp *pOp;

  memset(&id, 0, sizeof(id));
  memset(&idNew, 0, sizeof(idNew));
  memset(aVal, 0, sizeof(aVal));
  for(i=0; rc==SQLITE_OK && i<pTab->nCol && i<pMT->nCol; i++){
    MongoCol *pCol = &pMT->aCol[i];
    sqlite3_value *pV = apCol[i];
    if( pCol->eKind==MONGO_KIND_ID ){
      mongoValFrom(pV, &id);
    }else if( pCol->eKind==MONGO_KIND_DOC ){
      bson_error_t err;
      int t = sqlite3_value_type(pV);
      if( t==SQLITE_NULL ) continue;
      if( t!=SQLITE_TEXT
       || !mongoJsonObject((const char*)sqlite3_value_text(pV),
                           sqlite3_value_bytes(pV), &base, &err) ){
        zWhy = sqlite3_mprintf("doc is not a JSON object: %s",
                               t==SQLITE_TEXT ? err.message : "not text");
        rc = SQLITE_CONSTRAINT;
        bson_init(&base);
      }
    }else if( sqlite3_value_type(pV)!=SQLITE_NULL ){
      mongoValFrom(pV, &aVal[nPatch]);
      if( pCol->eAff!=MONGO_AFF_NONE ){
        if( pNum==0 ){
          rc = sqlite3_prepare_v2(pTab->pCtx->db, "SELECT ?1", -1, &pNum, 0);
        }
        if( rc==SQLITE_OK ){
          rc = mongoApplyAffinity(&aVal[nPatch], pCol->eAff, pNum);
        }
      }
      azPath[nPatch] = pCol->zPath;
      apVal[nPatch] = &aVal[nPatch];
      nPatch++;
    }
  }
  /* The _id: the column's, else the doc's, else a new ObjectId. */
  if( rc==SQLITE_OK && id.eType==SQLITE_NULL ){
    bson_iter_t it;
    if( bson_iter_init_find(&it, &base, "_id") ){
      rc = mongoIterValue(&it, &idNew);
      id = idNew;
      bDocId = 1;
    }else{
      bson_oid_t oid;
      bson_oid_init(&oid, 0);
      bson_oid_to_string(&oid, zOid);
      id.eType = SQLITE_TEXT;
      id.z = zOid;
      id.n = 24;
    }
  }
  if( rc==SQLITE_OK ){
    pDoc = bson_new();
    if( bDocId ){
      /* The doc's own _id is kept as it is (its type may be one that
      ** SQLite's value would not give back: a date, a document). */
      rc = mongoPatch(&base, 0, nPatch, azPath, apVal, pDoc, &zWhy);
    }else{
      rc = mongoPatch(&base, &id, nPatch, azPath, apVal, pDoc, &zWhy);
    }
    if( rc==SQLITE_ERROR ) rc = SQLITE_CONSTRAINT;
  }
  if( rc==SQLITE_OK ) rc = mongoKey(zDb, pMT->zColl, &id, &aKey, &nKey);
  if( rc==SQLITE_OK ){
    pOp = opNew(p, pTab, MONGO_OP_INSERT, aKey, nKey);
    if( pOp==0 ){
      rc = SQLITE_NOMEM;
    }else{
      pOp->pDoc = pDoc;
      pDoc = 0;
      rc = fedKvOpAppend(&p->kv);
    }
  }
  if( zWhy ){
    fedSetError(pzErr, "%s: INSERT into %s: %s", MONGO_STORE, pTab->zName,
                zWhy);
    sqlite3_free(zWhy);
  }
  mongoValClear(&idNew);
  for(i=0; i<nPatch; i++) mongoValClear(&aVal[i]);  /* A number as TEXT */
  if( pDoc ) bson_destroy(pDoc);
  bson_destroy(&base);
  sqlite3_finalize(pNum);
  sqlite3_free(aKey);
  return rc;
}

/* UPDATE: the new values of every column, compared with the document at
** the commit (commit.c): only what changed is written. */
static int writeUpdate(MongoConn *p, FedTable *pTab, const char *aKey,
                       int nKey, sqlite3_value **apCol){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  MongoOp *pOp = opNew(p, pTab, MONGO_OP_UPDATE, aKey, nKey);
  int i, n = pMT->nCol;
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->apVal = sqlite3_malloc64(sizeof(sqlite3_value*)*n);
  pOp->aCol = sqlite3_malloc64(sizeof(MongoCol)*n);
  if( pOp->apVal==0 || pOp->aCol==0 ) goto oom;
  memset(pOp->apVal, 0, sizeof(sqlite3_value*)*n);
  memset(pOp->aCol, 0, sizeof(MongoCol)*n);
  pOp->nVal = n;
  for(i=0; i<n; i++){
    pOp->aCol[i] = pMT->aCol[i];
    pOp->aCol[i].zPath = 0;
    if( pMT->aCol[i].eKind==MONGO_KIND_ID ) continue;
    pOp->apVal[i] = sqlite3_value_dup(apCol[i]);
    if( pOp->apVal[i]==0 ) goto oom;
    if( pMT->aCol[i].zPath ){
      pOp->aCol[i].zPath = fedStrdup(pMT->aCol[i].zPath, -1);
      if( pOp->aCol[i].zPath==0 ) goto oom;
    }
  }
  return fedKvOpAppend(&p->kv);
oom:
  fedKvOpDiscard(&p->kv);
  return SQLITE_NOMEM;
}

static int updateImpl(FedTable *pTab, int argc, sqlite3_value **argv,
                      char **pzErr){
  MongoConn *p = (MongoConn*)pTab->pServer->pConn;
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  const char *zDb = mongoTableDb(pTab);
  char *aKey = 0;
  int nKey = 0, rc;
  int eOp = argc==1 ? MONGO_OP_DELETE :
            sqlite3_value_type(argv[0])==SQLITE_NULL ? MONGO_OP_INSERT :
            MONGO_OP_UPDATE;
  if( pMT==0 || p==0 ) return SQLITE_ERROR;
  if( zDb==0 ){
    fedSetError(pzErr, "%s: %s %s: no database (give database= or put it"
                " in the server's URI)", MONGO_STORE, opVerb(eOp),
                pTab->zName);
    return SQLITE_ERROR;
  }
  if( argc>1 && argc-2<pMT->nCol ) return SQLITE_ERROR;
  if( eOp==MONGO_OP_INSERT ){
    return writeInsert(p, pTab, zDb, &argv[2], pzErr);
  }
  rc = rowKey(pTab, zDb, argv[0], &aKey, &nKey);
  if( rc==SQLITE_OK && eOp==MONGO_OP_UPDATE ){
    char *aNew = 0;
    int nNew = 0;
    rc = rowKey(pTab, zDb, argv[2+pTab->iPk], &aNew, &nNew);
    if( rc==SQLITE_OK && (nNew!=nKey || memcmp(aNew, aKey, nKey)!=0) ){
      fedSetError(pzErr, "%s: UPDATE of %s: _id cannot change (a"
                  " document's _id is immutable in MongoDB)", MONGO_STORE,
                  pTab->zName);
      rc = SQLITE_CONSTRAINT;
    }
    sqlite3_free(aNew);
    if( rc==SQLITE_OK ) rc = writeUpdate(p, pTab, aKey, nKey, &argv[2]);
  }else if( rc==SQLITE_OK ){
    MongoOp *pOp = opNew(p, pTab, MONGO_OP_DELETE, aKey, nKey);
    rc = pOp ? fedKvOpAppend(&p->kv) : SQLITE_NOMEM;
  }
  sqlite3_free(aKey);
  return rc;
}

int mongoUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                i64 *piRowid, char **pzErr){
  (void)piRowid;
  return mongoRc(updateImpl(pTab, argc, argv, pzErr), pzErr);
}

/**************************************************************************
** Transactions: the queue of ext/kv.c.  Nothing is sent before the
** commit; savepoints are positions in the queue.
*/
int mongoBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  (void)pzErr;
  mongoPlanFree(p->pPlan);
  p->pPlan = 0;
  fedKvBegin(&p->kv, bSnapshot);
  return SQLITE_OK;
}
int mongoSavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                   char **pzErr){
  return fedKvSavepoint(&((MongoConn*)pConn)->kv, iRelease, iFrom, iTo,
                        pzErr);
}
int mongoRelease(FedConn *pConn, int iLevel, char **pzErr){
  (void)pzErr;
  fedKvRelease(&((MongoConn*)pConn)->kv, iLevel);
  return SQLITE_OK;
}
int mongoRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  return fedKvRollbackTo(&((MongoConn*)pConn)->kv, iLevel, pzErr);
}
int mongoRollback(FedConn *pConn, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  fedKvRollback(&p->kv, pzErr);
  fedKvTxnClear(&p->kv);
  mongoPlanFree(p->pPlan);
  p->pPlan = 0;
  return SQLITE_OK;
}
/* The queue and the plan are dropped whatever the outcome. */
int mongoCommit(FedConn *pConn, char **pzErr){
  MongoConn *p = (MongoConn*)pConn;
  int rc = fedKvCommit(&p->kv, pConn, pzErr);
  fedKvTxnClear(&p->kv);
  mongoPlanFree(p->pPlan);
  p->pPlan = 0;
  return mongoRc(rc, pzErr);
}
