/*
** scan.c: CouchDB cursors: xFilter plans the scan (plan.c) and asks for
** its first page, xNext walks the page's rows and asks for the next page
** when it runs out (page_size documents per request: memory holds one
** page, never the whole result), skips rows without a document (deleted
** or missing keys), design documents, and those the _id checks reject,
** and applies LIMIT and
** OFFSET; xColumn reads a column from the current document.
*/
#include "couchInt.h"

typedef struct CouchCursor CouchCursor;
struct CouchCursor {
  CouchScan scan;               /* What the current scan asks for */
  json_t *pPage;                /* The current page's reply */
  size_t iRow;                  /* Next row of pPage's "rows" */
  json_t *pDoc;                 /* Current document (borrowed from pPage) */
  char *zAfter;                 /* Last key of the previous page (ALL) */
  int nAfter;
  int iKey;                     /* Next key to ask for (KEYS) */
  char *zBookmark;              /* The last _find reply's bookmark (FIND) */
  i64 nDone;                    /* Documents _find gave so far (FIND) */
  int bMore;                    /* Another page may follow */
  int bEof;
  i64 nSkipLeft;                /* OFFSET still to skip here */
  i64 nLimitLeft;               /* LIMIT rows still to give, or -1 */
  i64 nRow;                     /* Rows given */
  sqlite3_stmt *pNum;           /* "SELECT ?1": SQLite's text-to-number */
};

static void cursorReset(CouchCursor *p){
  couchScanClear(&p->scan);
  json_decref(p->pPage);
  sqlite3_free(p->zAfter);
  sqlite3_free(p->zBookmark);
  p->zBookmark = 0;
  p->nDone = 0;
  p->pPage = 0;
  p->pDoc = 0;
  p->zAfter = 0;
  p->nAfter = 0;
  p->iRow = 0;
  p->iKey = 0;
  p->bMore = 0;
  p->bEof = 1;
  p->nRow = 0;
}

int couchOpen(FedCursor *pFedCsr, char **pzErr){
  CouchCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pzErr;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->bEof = 1;
  pFedCsr->pStoreCsr = p;
  return SQLITE_OK;
}

void couchClose(FedCursor *pFedCsr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  if( p==0 ) return;
  cursorReset(p);
  sqlite3_finalize(p->pNum);
  sqlite3_free(p);
  pFedCsr->pStoreCsr = 0;
}

/* The rows of the current page: _find's "docs", _all_docs' "rows". */
static json_t *pageRows(CouchCursor *p){
  return json_object_get(p->pPage,
                         p->scan.eMode==COUCH_SCAN_FIND ? "docs" : "rows");
}

int couchPageHasDocs(json_t *pPage){
  json_t *pRows = json_object_get(pPage, "rows");
  size_t i;
  for(i=0; i<json_array_size(pRows); i++){
    json_t *pRow = json_array_get(pRows, i);
    if( json_object_get(pRow, "doc")==0
     && json_object_get(pRow, "error")==0 ) return 0;
  }
  return 1;
}

/* Ask for the next page. */
static int fetchPage(FedCursor *pFedCsr, char **pzErr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  CouchConn *pConn;
  char *zPath = 0;
  json_t *pBody = 0, *pRows;
  i64 nPage = pCT->nPage, iExplain = 0;
  int rc;

  json_decref(p->pPage);
  p->pPage = 0;
  p->pDoc = 0;
  p->iRow = 0;
  if( p->scan.eMode==COUCH_SCAN_ALL && p->nLimitLeft>=0 ){
    /* No more than the rows still wanted (and the row equal to a '>'
    ** bound that the first page may start with). */
    i64 nWant = p->nLimitLeft + p->nSkipLeft
              + (p->zAfter==0 && p->scan.zLo ? 1 : 0);
    if( nWant<nPage ) nPage = nWant>0 ? nWant : 1;
  }
  rc = fedServerConn(pTab->pCtx, pTab->pServer, (FedConn**)&pConn, pzErr);
  if( rc==SQLITE_OK ){
    rc = couchPlanPage(pCT->zDb, &p->scan, nPage, p->zAfter, p->nAfter,
                       p->iKey, p->zBookmark, p->nDone, &zPath, &pBody);
  }
  if( rc==SQLITE_OK ){
    rc = couchCall(pConn, pBody ? "POST" : "GET", zPath, pBody, 0, &p->pPage,
                   &iExplain, pzErr);
    /* A reply to include_docs=true whose rows lack their documents, as
    ** if the parameter had not arrived: seen only when an allocation
    ** failed inside libcurl (a transient OOM point of couchdbread 8.1).
    ** A read can be sent again, once; a second such reply is an error. */
    if( rc==SQLITE_OK && p->scan.eMode!=COUCH_SCAN_FIND
     && !couchPageHasDocs(p->pPage) ){
      json_decref(p->pPage);
      p->pPage = 0;
      rc = couchCall(pConn, pBody ? "POST" : "GET", zPath, pBody, 0,
                     &p->pPage, &iExplain, pzErr);
    }
  }
  sqlite3_free(zPath);
  json_decref(pBody);
  if( rc ) return rc;
  pRows = pageRows(p);
  if( !json_is_array(pRows) ){
    fedSetError(pzErr, "%s: scan of table \"%s\": the reply has no \"%s\""
                " array", COUCH_STORE, pTab->zName,
                p->scan.eMode==COUCH_SCAN_FIND ? "docs" : "rows");
    return SQLITE_ERROR;
  }
  fedExplainRows(pTab->pCtx, iExplain, (i64)json_array_size(pRows), 1);
  if( p->scan.eMode==COUCH_SCAN_KEYS ){
    p->iKey += (int)nPage;
    p->bMore = p->iKey < p->scan.nKey;
  }else if( p->scan.eMode==COUCH_SCAN_FIND ){
    /* CouchDB sends a bookmark to continue from; pouchdb-server does
    ** not, and the next page skips what was given. */
    json_t *pMark = json_object_get(p->pPage, "bookmark");
    p->nDone += (i64)json_array_size(pRows);
    p->bMore = (i64)json_array_size(pRows)==nPage;
    sqlite3_free(p->zBookmark);
    p->zBookmark = 0;
    if( json_is_string(pMark) ){
      p->zBookmark = fedStrdup(json_string_value(pMark), -1);
      if( p->zBookmark==0 ) return SQLITE_NOMEM;
    }
  }else{
    p->bMore = (i64)json_array_size(pRows)==nPage;
  }
  return SQLITE_OK;
}

/* Move to the next row the scan gives. */
static int cursorStep(FedCursor *pFedCsr, char **pzErr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  int rc = SQLITE_OK;
  p->pDoc = 0;
  if( p->nLimitLeft==0 ){
    p->bEof = 1;
    return SQLITE_OK;
  }
  while( 1 ){
    json_t *pRows = pageRows(p);
    json_t *pRow, *pKey, *pDoc, *pId;
    if( p->iRow>=json_array_size(pRows) ){
      if( !p->bMore ){
        p->bEof = 1;
        return SQLITE_OK;
      }
      rc = fetchPage(pFedCsr, pzErr);
      if( rc ){
        p->bEof = 1;
        return rc;
      }
      continue;
    }
    pRow = json_array_get(pRows, p->iRow++);
    pKey = json_object_get(pRow, "key");
    if( p->scan.eMode==COUCH_SCAN_ALL && json_is_string(pKey) ){
      sqlite3_free(p->zAfter);
      p->nAfter = (int)json_string_length(pKey);
      p->zAfter = fedStrdup(json_string_value(pKey), p->nAfter);
      if( p->zAfter==0 ) return SQLITE_NOMEM;
    }
    pDoc = p->scan.eMode==COUCH_SCAN_FIND ? pRow
                                          : json_object_get(pRow, "doc");
    pId = json_object_get(pDoc, "_id");
    if( !json_is_object(pDoc) || !json_is_string(pId) ){
      /* Only a key that names no document ("error") or a deleted one
      ** ("doc": null) gives no row; any other row without its document
      ** is an error, never a silent gap (fetchPage asks once more). */
      if( p->scan.eMode==COUCH_SCAN_KEYS
       && (json_object_get(pRow, "error") || json_is_null(pDoc)) ){
        continue;
      }
      fedSetError(pzErr, "%s: scan of table \"%s\": a row of the reply"
                  " has no document", COUCH_STORE, pFedCsr->pTab->zName);
      p->bEof = 1;
      return SQLITE_ERROR;
    }
    /* Design documents are not rows: _find never returns them, and a
    ** table must answer alike whichever request it sends. */
    if( strncmp(json_string_value(pId), "_design/", 8)==0 ) continue;
    if( !couchScanCheck(&p->scan, json_string_value(pId),
                        (int)json_string_length(pId)) ) continue;
    if( p->nSkipLeft>0 ){
      p->nSkipLeft--;
      continue;
    }
    p->pDoc = pDoc;
    break;
  }
  if( p->nLimitLeft>0 ) p->nLimitLeft--;
  p->nRow++;
  return SQLITE_OK;
}

static int couchFilterImpl(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                           char **pzErr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  int rc;
  cursorReset(p);
  rc = couchPlanScan(pFedCsr->pTab, pFedCsr->pPlan, argc, argv, &p->scan,
                     pzErr);
  if( rc!=SQLITE_OK ) return rc;
  p->nSkipLeft = p->scan.nSkip;
  p->nLimitLeft = p->scan.nLimit;
  if( p->scan.eMode==COUCH_SCAN_EMPTY ) return SQLITE_OK;
  p->bEof = 0;
  p->bMore = 1;
  return cursorStep(pFedCsr, pzErr);
}

int couchFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                char **pzErr){
  return couchRc(couchFilterImpl(pFedCsr, argc, argv, pzErr), pzErr);
}

int couchNext(FedCursor *pFedCsr, char **pzErr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  if( p->bEof ) return SQLITE_OK;
  return couchRc(cursorStep(pFedCsr, pzErr), pzErr);
}

int couchEof(FedCursor *pFedCsr){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  return p->bEof;
}

int couchColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  const CouchCol *pCol;
  CouchVal v;
  int rc;
  if( p->pDoc==0 || iCol<0 || iCol>=pCT->nCol ){
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  pCol = &pCT->aCol[iCol];
  rc = couchColumnValue(p->pDoc, pCol, &v);
  if( rc==SQLITE_OK && v.eType==SQLITE_TEXT
   && (pCol->eAff==COUCH_AFF_INTEGER || pCol->eAff==COUCH_AFF_REAL)
   && p->pNum==0 ){
    rc = sqlite3_prepare_v2(pTab->pCtx->db, "SELECT ?1", -1, &p->pNum, 0);
  }
  if( rc==SQLITE_OK ) rc = couchApplyAffinity(&v, pCol->eAff, p->pNum);
  if( rc==SQLITE_OK ){
    couchResult(ctx, &v);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, "couchdb: cannot read a value", -1);
  }
  couchValClear(&v);
  return rc;
}

int couchRowid(FedCursor *pFedCsr, i64 *piRowid){
  CouchCursor *p = (CouchCursor*)pFedCsr->pStoreCsr;
  *piRowid = p->nRow;
  return SQLITE_OK;
}
