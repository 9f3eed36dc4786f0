/*
** scan.c: scans of a MariaDB/MySQL table (xOpen ... xRowid): the SELECT
** of deparse.c is sent and its rows stream one at a time
** (mysql_use_result: one row in memory).  When another command needs the
** connection while a scan is open (a join of two tables of one server),
** the rest of the scan is read into memory first (fedMyCursorHold), as
** the one MariaDB connection can carry one result at a time.
*/
#include "myInt.h"
#include <string.h>

/* Stop streaming: read what is left of the result (bounded by
** command_timeout) so that the connection is free again. */
static void cursorStop(MyCursor *pCsr){
  MyConn *p = pCsr->pConn;
  if( pCsr->pRes && p ){
    fedMyFreeResult(p, pCsr->pRes);
    fedExplainRows(myCtx(p), pCsr->iExplain, pCsr->iRowid, 1);
    if( p->pActive==pCsr ) p->pActive = 0;
  }
  pCsr->pRes = 0;
}

static void cursorReset(MyCursor *pCsr){
  cursorStop(pCsr);
  while( pCsr->pHeld ){
    MyHeld *pH = pCsr->pHeld;
    pCsr->pHeld = pH->pNext;
    sqlite3_free(pH);
  }
  pCsr->pHeldLast = 0;
  sqlite3_free(pCsr->pRow);
  pCsr->pRow = 0;
  sqlite3_free(pCsr->zHeldErr);
  pCsr->zHeldErr = 0;
  pCsr->bEof = 1;
}

/* A copy of one row (azVal/anVal, nField values) as a MyHeld. */
static MyHeld *heldCopy(int nField, const char *const *az, const int *an){
  i64 nByte = 0;
  int i;
  MyHeld *pH;
  char *z;
  for(i=0; i<nField; i++) nByte += 5 + (az[i] ? an[i] : 0);
  pH = sqlite3_malloc64(sizeof(MyHeld) + nByte);
  if( pH==0 ) return 0;
  pH->pNext = 0;
  pH->nByte = (int)nByte;
  z = pH->a;
  for(i=0; i<nField; i++){
    int n = az[i] ? an[i] : -1;
    memcpy(z, &n, 4);
    z += 4;
    if( n>=0 ){
      memcpy(z, az[i], n);
      z += n;
    }
    *z++ = 0;
  }
  return pH;
}

/* Point azVal/anVal at the values of held row pH. */
static void heldLoad(MyCursor *pCsr, MyHeld *pH){
  const char *z = pH->a;
  int i;
  for(i=0; i<pCsr->nField; i++){
    int n;
    memcpy(&n, z, 4);
    z += 4;
    if( n<0 ){
      pCsr->azVal[i] = 0;
      pCsr->anVal[i] = 0;
    }else{
      pCsr->azVal[i] = z;
      pCsr->anVal[i] = n;
      z += n;
    }
    z++;
  }
}

void fedMyCursorHold(MyCursor *pCsr){
  MyConn *p = pCsr->pConn;
  int rc = SQLITE_OK;
  if( pCsr->pRes==0 || p==0 ) return;
  /* The current row lives in the result's buffer: copy it first. */
  if( !pCsr->bEof && pCsr->pRow==0 ){
    pCsr->pRow = heldCopy(pCsr->nField, pCsr->azVal, pCsr->anVal);
    if( pCsr->pRow==0 ) rc = SQLITE_NOMEM;
    else heldLoad(pCsr, pCsr->pRow);
  }
  while( rc==SQLITE_OK ){
    char **az;
    unsigned long *an;
    int anLen[FED_MAX_COLUMNS], i;
    MyHeld *pH;
    rc = fedMyFetch(p, pCsr->pRes, &az, &an, &pCsr->zHeldErr);
    if( rc!=SQLITE_OK || az==0 ) break;
    for(i=0; i<pCsr->nField; i++) anLen[i] = (int)an[i];
    pH = heldCopy(pCsr->nField, (const char*const*)az, anLen);
    if( pH==0 ){ rc = SQLITE_NOMEM; break; }
    if( pCsr->pHeldLast ) pCsr->pHeldLast->pNext = pH;
    else pCsr->pHeld = pH;
    pCsr->pHeldLast = pH;
  }
  if( rc==SQLITE_NOMEM && pCsr->zHeldErr==0 ){
    pCsr->zHeldErr = sqlite3_mprintf("%s: out of memory holding the rows"
        " of a scan (remote request: %s)", MY_STORE, pCsr->zSql);
    if( pCsr->zHeldErr==0 ) pCsr->zHeldErr = fedStrdup("", 0);
  }
  cursorStop(pCsr);
}

int fedMyOpen(FedCursor *pFedCsr, char **pzErr){
  MyCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->bEof = 1;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

void fedMyClose(FedCursor *pFedCsr){
  MyCursor *pCsr = (MyCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  sqlite3_free(pCsr);
  pFedCsr->pStoreCsr = 0;
}

int fedMyNext(FedCursor *pFedCsr, char **pzErr){
  MyCursor *pCsr = (MyCursor*)pFedCsr->pStoreCsr;
  MyConn *p = pCsr->pConn;
  sqlite3_free(pCsr->pRow);
  pCsr->pRow = 0;
  if( pCsr->pHeld ){
    MyHeld *pH = pCsr->pHeld;
    pCsr->pHeld = pH->pNext;
    if( pCsr->pHeld==0 ) pCsr->pHeldLast = 0;
    pCsr->pRow = pH;
    heldLoad(pCsr, pH);
    pCsr->iRowid++;
    return SQLITE_OK;
  }
  if( pCsr->pRes && p ){
    char **az;
    unsigned long *an;
    int rc, i;
    if( fedFault(FED_FAULT_RECV, pzErr) ){
      p->bDead = 1;
      cursorStop(pCsr);
      pCsr->bEof = 1;
      return SQLITE_ERROR;
    }
    rc = fedMyFetch(p, pCsr->pRes, &az, &an, pzErr);
    if( rc!=SQLITE_OK ){
      cursorStop(pCsr);
      pCsr->bEof = 1;
      if( *pzErr ){
        char *z = sqlite3_mprintf("%s (remote request: %s)", *pzErr,
                                  pCsr->zSql);
        if( z ){ sqlite3_free(*pzErr); *pzErr = z; }
      }
      return rc;
    }
    if( az ){
      for(i=0; i<pCsr->nField; i++){
        pCsr->azVal[i] = az[i];
        pCsr->anVal[i] = (int)an[i];
      }
      pCsr->iRowid++;
      return SQLITE_OK;
    }
    cursorStop(pCsr);
  }
  pCsr->bEof = 1;
  if( pCsr->zHeldErr ){
    int rc = pCsr->zHeldErr[0] ? SQLITE_ERROR : SQLITE_NOMEM;
    if( rc==SQLITE_ERROR ){
      *pzErr = pCsr->zHeldErr;
      pCsr->zHeldErr = 0;
    }
    return rc;
  }
  return SQLITE_OK;
}

int fedMyFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                char **pzErr){
  MyCursor *pCsr = (MyCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  MyConn *p = (MyConn*)pTab->pServer->pConn;
  MyParams params;
  char *zTemplate = 0;
  int rc, i;

  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  pCsr->zSql = 0;
  pCsr->pConn = p;
  pCsr->iRowid = 0;
  memset(&params, 0, sizeof(params));
  rc = fedMyDeparseSelect(pTab, pFedCsr->pPlan, argc, argv, pCsr->aResCol,
                          &zTemplate, &params);
  if( rc==SQLITE_OK ){
    pCsr->zSql = fedMyRender(zTemplate, &params);
    if( pCsr->zSql==0 ) rc = SQLITE_NOMEM;
  }
  pCsr->nField = 0;
  for(i=0; i<pTab->nCol; i++){
    if( pCsr->aResCol[i]>=0 ) pCsr->nField++;
  }
  if( pCsr->nField==0 ) pCsr->nField = 1;          /* SELECT 1 */
  /* Rows buffered by this transaction go first: the scan must see them. */
  if( rc==SQLITE_OK ) rc = fedMyReady(p, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedMyQueryStart(p, pCsr->zSql, params.n,
                         (const char*const*)params.az, params.an,
                         &pCsr->pRes, &pCsr->iExplain, pzErr);
  }
  sqlite3_free(zTemplate);
  fedMyParamsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  if( pCsr->pRes==0 ){
    fedSetError(pzErr, "%s: query on server \"%s\" returned no rows"
        " (remote request: %s)", MY_STORE, pTab->pServer->zName, pCsr->zSql);
    return SQLITE_ERROR;
  }
  p->pActive = pCsr;
  pCsr->bEof = 0;
  return fedMyNext(pFedCsr, pzErr);
}

int fedMyEof(FedCursor *pFedCsr){
  return ((MyCursor*)pFedCsr->pStoreCsr)->bEof;
}

int fedMyColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  MyCursor *pCsr = (MyCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  int iRes;
  if( iCol<0 || iCol>=pTab->nCol ) return SQLITE_OK;
  iRes = pCsr->aResCol[iCol];
  if( iRes<0 ){
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  fedMyValue(ctx, &pTab->aCol[iCol], pCsr->azVal[iRes], pCsr->anVal[iRes]);
  return SQLITE_OK;
}

int fedMyRowid(FedCursor *pFedCsr, i64 *piRowid){
  *piRowid = ((MyCursor*)pFedCsr->pStoreCsr)->iRowid;
  return SQLITE_OK;
}

void fedMyTableFree(FedTable *pTab){
  MyTab *pMy = (MyTab*)pTab->pStoreTab;
  if( pMy ){
    sqlite3_free(pMy->zEngine);
    sqlite3_free(pMy);
    pTab->pStoreTab = 0;
  }
}
