/*
** scan.c: MongoDB cursors: xFilter runs the find command plan.c built,
** xNext reads the reply batch by batch (libmongoc's cursor: getMore for
** each next batch of batch_size documents; memory holds one batch), checks
** the _id terms the filter only narrows, and applies LIMIT/OFFSET here
** when it cannot send them; xColumn reads a column from the document.
** Fault sites: send before the find, receive before each document.
*/
#include "mongoInt.h"

typedef struct MongoCursor MongoCursor;
struct MongoCursor {
  MongoFind find;               /* The command of the current scan */
  int bFind;                    /* find is initialised */
  mongoc_collection_t *pColl;
  mongoc_cursor_t *pCur;
  const bson_t *pDoc;           /* Current document (owned by pCur) */
  int bEof;
  i64 nSkipLeft;                /* OFFSET still to skip here */
  i64 nLimitLeft;               /* LIMIT rows still to give here, or -1 */
  i64 iExplain;                 /* fed_explain entry of the find */
  i64 nRow;                     /* Rows given */
  i64 nRecv;                    /* Documents received (getMore after 0) */
  MongoConn *pConn;             /* The connection of the scan */
  sqlite3_stmt *pNum;           /* "SELECT ?1": SQLite's text-to-number */
  void *pAlloc;                 /* What sqlite3_malloc64 returned */
};

/* libbson declares bson_t 128-byte aligned, and MongoFind holds two;
** sqlite3_malloc64 promises only 8.  So a cursor is allocated with room
** to align it (UBSan reports the misaligned access otherwise). */
#define MONGO_ALIGN 128

static void cursorReset(MongoCursor *p){
  if( p->pCur ) mongoc_cursor_destroy(p->pCur);
  if( p->pColl ) mongoc_collection_destroy(p->pColl);
  if( p->bFind ) mongoFindClear(&p->find);
  p->pCur = 0;
  p->pColl = 0;
  p->bFind = 0;
  p->pDoc = 0;
  p->bEof = 1;
  p->nRow = 0;
  p->nRecv = 0;
  p->pConn = 0;
}

int mongoOpen(FedCursor *pFedCsr, char **pzErr){
  void *pAlloc = sqlite3_malloc64(sizeof(MongoCursor) + MONGO_ALIGN);
  MongoCursor *p;
  (void)pzErr;
  if( pAlloc==0 ) return SQLITE_NOMEM;
  p = (MongoCursor*)(((sqlite3_uint64)(char*)pAlloc + MONGO_ALIGN - 1)
                     & ~(sqlite3_uint64)(MONGO_ALIGN - 1));
  memset(p, 0, sizeof(*p));
  p->pAlloc = pAlloc;
  p->bEof = 1;
  pFedCsr->pStoreCsr = p;
  return SQLITE_OK;
}

void mongoClose(FedCursor *pFedCsr){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  if( p==0 ) return;
  cursorReset(p);
  sqlite3_finalize(p->pNum);
  sqlite3_free(p->pAlloc);
  pFedCsr->pStoreCsr = 0;
}

/* 1 if the current document's _id equals a value of every _id term. */
static int idMatches(FedTable *pTab, MongoCursor *p, int *pRc){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  MongoVal v;
  int iTerm, i, bAll = 1;
  *pRc = mongoColumnValue(p->pDoc, &pMT->aCol[pTab->iPk], &v);
  if( *pRc ) return 0;
  for(iTerm=0; bAll && iTerm<p->find.nIdTerm; iTerm++){
    int bAny = 0;
    for(i=0; !bAny && i<p->find.nIdVal; i++){
      if( p->find.aiIdTerm[i]==iTerm ){
        bAny = mongoValEqual(&v, p->find.apIdVal[i]);
      }
    }
    bAll = bAny;
  }
  mongoValClear(&v);
  return bAll;
}

/* Move to the next row the scan gives. */
static int cursorStep(FedCursor *pFedCsr, char **pzErr){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  bson_error_t err;
  int rc = SQLITE_OK;
  if( p->nLimitLeft==0 ){
    p->bEof = 1;
    return SQLITE_OK;
  }
  while( 1 ){
    rc = fedFault(FED_FAULT_RECV, pzErr);
    if( rc ){
      p->pDoc = 0;
      p->bEof = 1;
      return rc;
    }
    if( !mongoc_cursor_next(p->pCur, &p->pDoc) ){
      p->pDoc = 0;
      p->bEof = 1;
      if( mongoc_cursor_error(p->pCur, &err) ){
        /* The first batch comes with the find, the others with getMore. */
        const char *zCmd = p->nRecv>0 ? "getMore" : "find";
        if( p->pConn && mongoStreamInterrupted(p->pConn) ){
          fedSetError(pzErr, "%s: scan of table \"%s\" interrupted; the"
              " connection was closed (remote command: %s)", MONGO_STORE,
              pTab->zName, zCmd);
          rc = SQLITE_INTERRUPT;
        }else{
          fedSetError(pzErr, "%s: scan of table \"%s\" failed: %s (remote"
              " command: %s)", MONGO_STORE, pTab->zName, err.message, zCmd);
          rc = SQLITE_ERROR;
        }
      }
      fedExplainRows(pTab->pCtx, p->iExplain, p->nRow, 1);
      return rc;
    }
    p->nRecv++;
    if( p->find.nIdTerm>0 ){
      if( !idMatches(pTab, p, &rc) ){
        if( rc ) return rc;
        continue;
      }
      if( p->nSkipLeft>0 ){
        p->nSkipLeft--;
        continue;
      }
    }
    break;
  }
  if( p->nLimitLeft>0 ) p->nLimitLeft--;
  p->nRow++;
  return SQLITE_OK;
}

static int mongoFilterImpl(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                           char **pzErr){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  MongoConn *pConn;
  const char *zDb;
  char *zText;
  int rc;

  cursorReset(p);
  rc = fedServerConn(pTab->pCtx, pTab->pServer, (FedConn**)&pConn, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = mongoPlanFind(pTab, pFedCsr->pPlan, argc, argv, &p->find, pzErr);
  p->bFind = 1;
  if( rc!=SQLITE_OK ) return rc;
  p->nSkipLeft = p->find.nSkip;
  p->nLimitLeft = p->find.nLimit>0 ? p->find.nLimit : -1;
  if( p->find.bEmpty ) return SQLITE_OK;
  zDb = pMT->zDb ? pMT->zDb : pConn->zDb;
  if( zDb==0 ){
    fedSetError(pzErr, "%s: table \"%s\": no database (give database= or"
                " put it in the server's URI)", MONGO_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  zText = mongoFindText(pMT->zColl, &p->find);
  if( zText==0 ) return SQLITE_NOMEM;
  p->iExplain = fedExplainAdd(pTab->pCtx, pTab->pServer->zName, zText, 0);
  sqlite3_free(zText);
  rc = fedFault(FED_FAULT_SEND, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  p->pConn = pConn;
  mongoStreamInterrupted(pConn);        /* No stale mark */
  p->pColl = mongoc_client_get_collection(pConn->pClient, zDb, pMT->zColl);
  p->pCur = mongoc_collection_find_with_opts(p->pColl, &p->find.filter,
                                             &p->find.opts, 0);
  p->bEof = 0;
  return cursorStep(pFedCsr, pzErr);
}

int mongoFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                char **pzErr){
  return mongoRc(mongoFilterImpl(pFedCsr, argc, argv, pzErr), pzErr);
}

int mongoNext(FedCursor *pFedCsr, char **pzErr){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  if( p->bEof ) return SQLITE_OK;
  return mongoRc(cursorStep(pFedCsr, pzErr), pzErr);
}

int mongoEof(FedCursor *pFedCsr){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  return p->bEof;
}

int mongoColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  const MongoCol *pCol;
  MongoVal v;
  int rc;
  if( p->pDoc==0 || iCol<0 || iCol>=pMT->nCol ){
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  pCol = &pMT->aCol[iCol];
  rc = mongoColumnValue(p->pDoc, pCol, &v);
  if( rc==SQLITE_OK && v.eType==SQLITE_TEXT
   && (pCol->eAff==MONGO_AFF_INTEGER || pCol->eAff==MONGO_AFF_REAL)
   && p->pNum==0 ){
    rc = sqlite3_prepare_v2(pTab->pCtx->db, "SELECT ?1", -1, &p->pNum, 0);
  }
  if( rc==SQLITE_OK ) rc = mongoApplyAffinity(&v, pCol->eAff, p->pNum);
  if( rc==SQLITE_OK ){
    mongoResult(ctx, &v);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, "mongo: cannot read a value", -1);
  }
  mongoValClear(&v);
  return rc;
}

int mongoRowid(FedCursor *pFedCsr, i64 *piRowid){
  MongoCursor *p = (MongoCursor*)pFedCsr->pStoreCsr;
  *piRowid = p->nRow;
  return SQLITE_OK;
}
