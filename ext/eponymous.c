/*
** eponymous.c: the one sqlite3_module behind federate's eponymous tables
** (fed_explain, fed_in_doubt, fed_txn, fed_query, ...).  A table is a
** FedEponymous: its schema, a callback that loads the rows of a scan into
** a FedEpoRows, and optionally its own xBestIndex (table-valued functions
** with hidden arguments) and write or transaction methods.  The skeleton
** does the rest: connect, DIRECTONLY, cursors, the rows, and errors.
**
**   static int fooLoad(FedContext *pCtx, FedEpoRows *pRows, int idxNum,
**                      int argc, sqlite3_value **argv, char **pzErr){
**     fedEpoRow(pRows, 1);
**     fedEpoText(pRows, 0, "hello", -1);
**     return fedEpoRc(pRows);
**   }
**   static const FedEponymous fooDef = {
**     "fed_foo", "CREATE TABLE x(greeting TEXT)", 1, 1, 10, -1,
**     0, fooLoad, 0
**   };
**   rc = fedEponymousRegister(db, pCtx, &fooDef);
*/
#include "fedInt.h"

/* One cell of a loaded row. */
typedef struct EpoCell EpoCell;
struct EpoCell {
  u8 eType;                     /* SQLITE_NULL, _INTEGER, _FLOAT or _TEXT */
  u8 bJson;                     /* Text with subtype 'J' */
  int n;                        /* Bytes of z, or -1: up to its NUL */
  i64 i;
  double r;
  char *z;                      /* sqlite3_malloc'd, owned by the cell */
};

struct FedEpoRows {
  int rc;                       /* Sticky error of the fedEpo*() calls */
  int nCol;
  int nRow, nAlloc;
  EpoCell *aCell;               /* nRow*nCol cells, row after row */
  i64 *aRowid;                  /* nRow rowids */
  sqlite3_value **apArg;        /* nCol values of every row, or NULL */
};

/* What SQLite's pAux points to: the definition and its module. */
typedef struct EpoAux EpoAux;
struct EpoAux {
  FedContext *pCtx;
  const FedEponymous *pDef;
  sqlite3_module module;
};

typedef struct EpoTable EpoTable;
struct EpoTable {
  sqlite3_vtab base;            /* Base class. Must be first */
  EpoAux *pAux;
};

typedef struct EpoCursor EpoCursor;
struct EpoCursor {
  sqlite3_vtab_cursor base;     /* Base class. Must be first */
  FedEpoRows rows;
  int iRow;
};

/**************************************************************************
** Rows.
*/
static void epoRowsReset(FedEpoRows *p){
  int i;
  for(i=0; i<p->nRow*p->nCol; i++) sqlite3_free(p->aCell[i].z);
  sqlite3_free(p->aCell);
  sqlite3_free(p->aRowid);
  if( p->apArg ){
    for(i=0; i<p->nCol; i++) sqlite3_value_free(p->apArg[i]);
    sqlite3_free(p->apArg);
  }
  p->aCell = 0;
  p->aRowid = 0;
  p->apArg = 0;
  p->nRow = p->nAlloc = 0;
  p->rc = SQLITE_OK;
}

int fedEpoRc(FedEpoRows *p){
  return p->rc;
}

int fedEpoRowCount(FedEpoRows *p){
  return p->nRow;
}

int fedEpoRow(FedEpoRows *p, i64 iRowid){
  if( p->rc ) return p->rc;
  if( p->nRow>=p->nAlloc ){
    int nNew = p->nAlloc ? 2*p->nAlloc : 16;
    EpoCell *a = sqlite3_realloc64(p->aCell, sizeof(EpoCell)*nNew*p->nCol);
    i64 *ai;
    if( a==0 ) return p->rc = SQLITE_NOMEM;
    p->aCell = a;
    ai = sqlite3_realloc64(p->aRowid, sizeof(i64)*nNew);
    if( ai==0 ) return p->rc = SQLITE_NOMEM;
    p->aRowid = ai;
    p->nAlloc = nNew;
  }
  memset(&p->aCell[p->nRow*p->nCol], 0, sizeof(EpoCell)*p->nCol);
  p->aRowid[p->nRow++] = iRowid;
  return SQLITE_OK;
}

/* The cell iCol of the row being built, or NULL (error, no row). */
static EpoCell *epoCell(FedEpoRows *p, int iCol){
  if( p->rc || p->nRow==0 || iCol<0 || iCol>=p->nCol ) return 0;
  return &p->aCell[(p->nRow-1)*p->nCol + iCol];
}

int fedEpoInt(FedEpoRows *p, int iCol, i64 iVal){
  EpoCell *c = epoCell(p, iCol);
  if( c ){
    c->eType = SQLITE_INTEGER;
    c->i = iVal;
  }
  return p->rc;
}

int fedEpoDouble(FedEpoRows *p, int iCol, double rVal){
  EpoCell *c = epoCell(p, iCol);
  if( c ){
    c->eType = SQLITE_FLOAT;
    c->r = rVal;
  }
  return p->rc;
}

int fedEpoTextOwn(FedEpoRows *p, int iCol, char *z, int bJson){
  EpoCell *c = epoCell(p, iCol);
  if( c==0 || z==0 ){
    sqlite3_free(z);
    return p->rc;
  }
  sqlite3_free(c->z);
  c->eType = SQLITE_TEXT;
  c->bJson = (u8)(bJson!=0);
  c->z = z;
  c->n = -1;
  return SQLITE_OK;
}

int fedEpoText(FedEpoRows *p, int iCol, const char *z, int n){
  char *zCopy;
  if( z==0 || p->rc ) return p->rc;
  zCopy = fedStrdup(z, n);
  if( zCopy==0 ) return p->rc = SQLITE_NOMEM;
  return fedEpoTextOwn(p, iCol, zCopy, 0);
}

int fedEpoArg(FedEpoRows *p, int iCol, sqlite3_value *pVal){
  if( p->rc || iCol<0 || iCol>=p->nCol ) return p->rc;
  if( p->apArg==0 ){
    p->apArg = sqlite3_malloc64(sizeof(sqlite3_value*)*p->nCol);
    if( p->apArg==0 ) return p->rc = SQLITE_NOMEM;
    memset(p->apArg, 0, sizeof(sqlite3_value*)*p->nCol);
  }
  sqlite3_value_free(p->apArg[iCol]);
  p->apArg[iCol] = sqlite3_value_dup(pVal);
  if( p->apArg[iCol]==0 ) p->rc = SQLITE_NOMEM;
  return p->rc;
}

/**************************************************************************
** The module.
*/
FedContext *fedEpoContext(sqlite3_vtab *pVtab){
  return ((EpoTable*)pVtab)->pAux->pCtx;
}

static int epoConnect(
  sqlite3 *db, void *pArg, int argc, const char *const *argv,
  sqlite3_vtab **ppVtab, char **pzErr
){
  EpoAux *pAux = (EpoAux*)pArg;
  EpoTable *pTab;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, pAux->pDef->zSchema);
  if( rc!=SQLITE_OK ) return rc;
  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->pAux = pAux;
  if( pAux->pDef->bDirectOnly ){
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  }
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int epoDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int epoBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  const FedEponymous *pDef = ((EpoTable*)pVtab)->pAux->pDef;
  if( pDef->xBestIndex ) return pDef->xBestIndex(pVtab, pInfo);
  pInfo->estimatedCost = pDef->rCost;
  if( pDef->nRowEst>=0 ) pInfo->estimatedRows = pDef->nRowEst;
  return SQLITE_OK;
}

static int epoOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCsr){
  EpoCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->rows.nCol = ((EpoTable*)pVtab)->pAux->pDef->nCol;
  *ppCsr = &pCsr->base;
  return SQLITE_OK;
}

static int epoClose(sqlite3_vtab_cursor *pVCsr){
  epoRowsReset(&((EpoCursor*)pVCsr)->rows);
  sqlite3_free(pVCsr);
  return SQLITE_OK;
}

static int epoFilter(
  sqlite3_vtab_cursor *pVCsr, int idxNum, const char *idxStr,
  int argc, sqlite3_value **argv
){
  EpoCursor *pCsr = (EpoCursor*)pVCsr;
  EpoAux *pAux = ((EpoTable*)pVCsr->pVtab)->pAux;
  char *zErr = 0;
  int rc = SQLITE_OK;
  (void)idxStr;
  epoRowsReset(&pCsr->rows);
  pCsr->iRow = 0;
  if( pAux->pDef->xLoad ){
    rc = pAux->pDef->xLoad(pAux->pCtx, &pCsr->rows, idxNum, argc, argv,
                           &zErr);
    if( rc==SQLITE_OK ) rc = pCsr->rows.rc;
  }
  return fedVtabSetError(pVCsr->pVtab, rc, zErr);
}

static int epoNext(sqlite3_vtab_cursor *pVCsr){
  ((EpoCursor*)pVCsr)->iRow++;
  return SQLITE_OK;
}

static int epoEof(sqlite3_vtab_cursor *pVCsr){
  EpoCursor *pCsr = (EpoCursor*)pVCsr;
  return pCsr->iRow>=pCsr->rows.nRow;
}

static int epoColumn(
  sqlite3_vtab_cursor *pVCsr, sqlite3_context *ctx, int iCol
){
  EpoCursor *pCsr = (EpoCursor*)pVCsr;
  FedEpoRows *p = &pCsr->rows;
  EpoCell *c;
  if( iCol<0 || iCol>=p->nCol ) return SQLITE_OK;
  c = &p->aCell[pCsr->iRow*p->nCol + iCol];
  switch( c->eType ){
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, c->i); break;
    case SQLITE_FLOAT:   sqlite3_result_double(ctx, c->r); break;
    case SQLITE_TEXT:
      sqlite3_result_text(ctx, c->z, c->n, SQLITE_TRANSIENT);
      if( c->bJson ) sqlite3_result_subtype(ctx, 'J');
      break;
    default:
      if( p->apArg && p->apArg[iCol] ){
        sqlite3_result_value(ctx, p->apArg[iCol]);
      }
      break;
  }
  return SQLITE_OK;
}

static int epoRowid(sqlite3_vtab_cursor *pVCsr, sqlite3_int64 *piRowid){
  EpoCursor *pCsr = (EpoCursor*)pVCsr;
  *piRowid = pCsr->rows.aRowid[pCsr->iRow];
  return SQLITE_OK;
}

static void epoAuxFree(void *p){
  EpoAux *pAux = (EpoAux*)p;
  fedContextUnref(pAux->pCtx);
  sqlite3_free(pAux);
}

int fedEponymousRegister(
  sqlite3 *db, FedContext *pCtx, const FedEponymous *pDef
){
  EpoAux *pAux = sqlite3_malloc64(sizeof(*pAux));
  sqlite3_module *pMod;
  const sqlite3_module *pM = pDef->pMethods;
  if( pAux==0 ) return SQLITE_NOMEM;
  memset(pAux, 0, sizeof(*pAux));
  pAux->pCtx = pCtx;
  pAux->pDef = pDef;
  pMod = &pAux->module;
  /* xCreate stays NULL: eponymous only. */
  pMod->xConnect = epoConnect;
  pMod->xBestIndex = epoBestIndex;
  pMod->xDisconnect = epoDisconnect;
  pMod->xOpen = epoOpen;
  pMod->xClose = epoClose;
  pMod->xFilter = epoFilter;
  pMod->xNext = epoNext;
  pMod->xEof = epoEof;
  pMod->xColumn = epoColumn;
  pMod->xRowid = epoRowid;
  if( pM ){
    pMod->iVersion = pM->iVersion;
    pMod->xUpdate = pM->xUpdate;
    pMod->xBegin = pM->xBegin;
    pMod->xSync = pM->xSync;
    pMod->xCommit = pM->xCommit;
    pMod->xRollback = pM->xRollback;
    pMod->xSavepoint = pM->xSavepoint;
    pMod->xRelease = pM->xRelease;
    pMod->xRollbackTo = pM->xRollbackTo;
  }
  pCtx->nRef++;
  return sqlite3_create_module_v2(db, pDef->zName, pMod, pAux, epoAuxFree);
}
