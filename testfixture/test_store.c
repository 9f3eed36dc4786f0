/*
** test_store.c: "tclstore", a store whose every method is a Tcl command,
** so that the planner, the transaction coordinator, recovery and sagas can
** be tested without servers, in addition to the real-server tests.  The idea
** of SQLite's test_bestindex.c ("tcl" module), applied to FedStore.
**
**   proc h {method args} { ... }
**   SELECT fed_server('t', 'tclstore', 'h');       -- dsn: a command prefix
**   CREATE VIRTUAL TABLE x USING tclstore(server=t, table=x);
**
** federate calls {*}PREFIX METHOD ARGS... and uses the result:
**
**   connect                         error = cannot connect
**   alive                           0 = connection dead (else anything)
**   describe REMOTE                 column spec: "a int primary key, b text"
**   pushable COL OP RHS KNOWN       exact | loose | no   (OP: eq gt le lt ge
**                                   ne isnull notnull is isnot like glob)
**   orderable COL DESC              1 | 0
**   filter REMOTE TERMS ORDER LIMIT OFFSET COLS
**                                   TERMS: {COL OP VALUE EXACT} each (OP in:
**                                   VALUE is the list); ORDER: {COL DESC} each;
**                                   LIMIT/OFFSET: value or {}; COLS: columns
**                                   used.  Returns a list of rows, each a
**                                   list of every column's value.
**   insert REMOTE VALUES            -> rowid or {}
**   update REMOTE KEY VALUES
**   delete REMOTE KEY
**   begin SNAPSHOT | commit | rollback
**   savepoint RELEASE FROM TO | rollbackto LEVEL | release LEVEL
**   query SQL PARAMS                -> list of JSON objects
**   tables SCHEMA                   -> list of names
**
** The store's kind of participant is its name (eTxn belongs to a FedStore,
** and a table's module must be its server's store, so each kind is a store
** of its own; all four share every method above):
**
**   tclstore        FED_TXN_LOCAL: begin/commit/rollback and savepoints
**   tclstore_2pc    FED_TXN_2PC, a two-phase participant, adds:
**     prepare GID                   end the open transaction as prepared
**                                   under GID (again for the same GID: ok)
**     resolve GID COMMIT            COMMIT 1: commit prepared GID, 0: roll
**                                   it back; an unknown GID is done already
**     listprepared PREFIX MINAGE    -> the prepared GIDs that start with
**                                   PREFIX, prepared MINAGE seconds ago or
**                                   more
**   tclstore_batch  FED_TXN_BATCH, the last resource, adds:
**     commit GID                    (instead of plain commit, when the
**                                   coordinator wants the commit marker of
**                                   global id GID written in the same
**                                   atomic request as the writes)
**     markercheck GID               -> 1 if the marker exists, else 0
**     markerremove GID              an absent marker is not an error
**     markerlist PREFIX             -> the GIDs of the markers that start
**                                   with PREFIX
**   tclstore_none   FED_TXN_NONE, compensated by undo images, adds:
**     undoimages                    -> a list of {KEY BEFORE AFTER}, one
**                                   per key the open transaction's commit
**                                   changes: its value now and the value
**                                   the commit leaves (NULL: absent); the
**                                   commit must then fail if a key changes
**     undoapply KEY BEFORE AFTER    put BEFORE back where the key holds
**                                   AFTER -> ok (also when it holds BEFORE
**                                   already) | conflict (it holds neither:
**                                   nothing is written; SQLITE_BUSY)
**
** Fault sites (fed_fault, docs/TESTING.md): connect before connect; commit
** before commit; rollback before rollback; savepoint before savepoint and
** rollbackto; send before every other call on a connection (filter,
** writes, begin, prepare, listprepared, the marker calls, undoimages),
** except resolve and undoapply, whose sites (resolve, undo) the
** coordinator fires.
**
** Values: the string NULL is SQL NULL, both ways.  Columns typed int, real
** or blob convert; anything else is text.  Every call is recorded in
** fed_explain as its command text, so a test can assert the sequence.
*/
#include "fedInt.h"
#include <tcl.h>
#include <stdlib.h>

#define TS_STORE "tclstore"

#define TS_INT  1
#define TS_REAL 2
#define TS_TEXT 3
#define TS_BLOB 4

static Tcl_Interp *tsInterp = 0;

typedef struct TsConn TsConn;
struct TsConn {
  FedConn base;                 /* Base class. Must be first */
  char *zPrefix;
};

typedef struct TsCursor TsCursor;
struct TsCursor {
  Tcl_Obj *pRows;               /* List of rows (a reference held) */
  int nRow;
  int iRow;
};

static const char *const azOpName[] = {
  "", "eq", "gt", "le", "lt", "ge", "ne", "isnull", "notnull", "is",
  "isnot", "like", "glob", "in"
};

/* A Tcl object for an SQLite value: NULL as the string NULL. */
static Tcl_Obj *tsValueObj(sqlite3_value *p){
  if( p==0 ) return Tcl_NewStringObj("NULL", -1);
  switch( sqlite3_value_type(p) ){
    case SQLITE_INTEGER: return Tcl_NewWideIntObj(sqlite3_value_int64(p));
    case SQLITE_FLOAT: return Tcl_NewDoubleObj(sqlite3_value_double(p));
    case SQLITE_BLOB:
      return Tcl_NewByteArrayObj(sqlite3_value_blob(p), sqlite3_value_bytes(p));
    case SQLITE_NULL: return Tcl_NewStringObj("NULL", -1);
  }
  return Tcl_NewStringObj((const char*)sqlite3_value_text(p),
                          sqlite3_value_bytes(p));
}

/* Release argument objects that were never handed to a list. */
static void tsDropArgs(int objc, Tcl_Obj **objv){
  int i;
  for(i=0; i<objc; i++){ Tcl_IncrRefCount(objv[i]); Tcl_DecrRefCount(objv[i]); }
}

/*
** Call {*}zPrefix zMethod objv...; on success *ppRes holds the result
** (a reference the caller releases with Tcl_DecrRefCount), else *pzErr.
** The call is logged in fed_explain when pServer is given.
*/
static int tsCall(
  FedServer *pServer, const char *zPrefix, const char *zMethod,
  int objc, Tcl_Obj **objv, Tcl_Obj **ppRes, char **pzErr
){
  Tcl_Obj *pCmd;
  int i, rc;
  i64 iSeq = 0;
  if( tsInterp==0 ){
    fedSetError(pzErr, "%s: no Tcl interpreter", TS_STORE);
    tsDropArgs(objc, objv);
    return SQLITE_ERROR;
  }
  pCmd = Tcl_NewStringObj(zPrefix, -1);
  Tcl_IncrRefCount(pCmd);
  Tcl_ListObjAppendElement(tsInterp, pCmd, Tcl_NewStringObj(zMethod, -1));
  for(i=0; i<objc; i++) Tcl_ListObjAppendElement(tsInterp, pCmd, objv[i]);
  if( pServer ){
    iSeq = fedExplainAdd(pServer->pCtx, pServer->zName, Tcl_GetString(pCmd), 0);
  }
  rc = Tcl_EvalObjEx(tsInterp, pCmd, TCL_EVAL_GLOBAL);
  Tcl_DecrRefCount(pCmd);
  if( rc!=TCL_OK ){
    fedSetError(pzErr, "%s: %s", TS_STORE, Tcl_GetStringResult(tsInterp));
    Tcl_ResetResult(tsInterp);
    return SQLITE_ERROR;
  }
  if( pServer ) fedExplainRows(pServer->pCtx, iSeq, 0, 1);
  if( ppRes ){
    *ppRes = Tcl_GetObjResult(tsInterp);
    Tcl_IncrRefCount(*ppRes);
  }
  Tcl_ResetResult(tsInterp);
  return SQLITE_OK;
}

/* The fault site a call on a connection passes first (0: none). */
static int tsFaultSite(const char *zMethod){
  static const struct { const char *zMethod; int iSite; } aSite[] = {
    { "alive", 0 },                     /* cheap, as xIsAlive must be */
    { "commit", FED_FAULT_COMMIT },
    { "rollback", FED_FAULT_ROLLBACK },
    { "savepoint", FED_FAULT_SAVEPOINT },
    { "rollbackto", FED_FAULT_SAVEPOINT },
    { "resolve", 0 },                   /* the coordinator's "resolve" */
    { "undoapply", 0 },                 /* the coordinator's "undo" */
  };
  size_t i;
  for(i=0; i<sizeof(aSite)/sizeof(aSite[0]); i++){
    if( strcmp(aSite[i].zMethod, zMethod)==0 ) return aSite[i].iSite;
  }
  return FED_FAULT_SEND;
}

static int tsConnCall(
  FedConn *pConn, const char *zMethod, int objc, Tcl_Obj **objv,
  Tcl_Obj **ppRes, char **pzErr
){
  TsConn *p = (TsConn*)pConn;
  int iSite = tsFaultSite(zMethod);
  if( iSite && fedFault(iSite, pzErr)!=SQLITE_OK ){
    tsDropArgs(objc, objv);
    return SQLITE_ERROR;
  }
  return tsCall(pConn->pServer, p->zPrefix, zMethod, objc, objv, ppRes, pzErr);
}

static const char *const azTsTableOpt[] = { "table", 0 };

static int tsConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  TsConn *p;
  int rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc==SQLITE_OK ){
    rc = tsCall(pServer, pServer->zDsn, "connect", 0, 0, 0, pzErr);
  }
  if( rc!=SQLITE_OK ) return rc;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->zPrefix = fedStrdup(pServer->zDsn, -1);
  if( p->zPrefix==0 ){
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

static void tsDisconnect(FedConn *pConn){
  TsConn *p = (TsConn*)pConn;
  if( p==0 ) return;
  sqlite3_free(p->zPrefix);
  sqlite3_free(p);
}

static int tsIsAlive(FedConn *pConn){
  Tcl_Obj *pRes = 0;
  char *zErr = 0;
  int bAlive = 1;
  if( tsConnCall(pConn, "alive", 0, 0, &pRes, &zErr)==SQLITE_OK ){
    if( strcmp(Tcl_GetString(pRes), "0")==0 ) bAlive = 0;
    Tcl_DecrRefCount(pRes);
  }
  sqlite3_free(zErr);
  return bAlive;
}

static int tsDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  const char *zRemote = fedConfigGet(pTab->pCfg, "table");
  Tcl_Obj *pRes = 0;
  Tcl_Obj *apArg[1];
  int rc;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = fedStrdup(zRemote ? zRemote : pTab->zName, -1);
  if( pTab->zRemote==0 ) return SQLITE_NOMEM;
  if( pConn==0 ) return SQLITE_OK;
  apArg[0] = Tcl_NewStringObj(pTab->zRemote, -1);
  rc = tsConnCall(pConn, "describe", 1, apArg, &pRes, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedColumnsParse(TS_STORE, Tcl_GetString(pRes), &pTab->aCol,
                         &pTab->nCol, pzErr);
    Tcl_DecrRefCount(pRes);
  }
  return rc;
}

static int tsColumns(FedTable *pTab, char **pzErr){
  int i, nPk = 0;
  (void)pzErr;
  pTab->iPk = -1;
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    const char *z = pCol->zType;
    if( sqlite3_strnicmp(z, "int", 3)==0 ){
      pCol->eKind = TS_INT; pCol->zAffinity = "INTEGER";
    }else if( sqlite3_stricmp(z, "real")==0 ){
      pCol->eKind = TS_REAL; pCol->zAffinity = "REAL";
    }else if( sqlite3_stricmp(z, "blob")==0 ){
      pCol->eKind = TS_BLOB; pCol->zAffinity = "BLOB";
    }else{
      pCol->eKind = TS_TEXT; pCol->zAffinity = "TEXT";
    }
    if( pCol->bPk ){ nPk++; pTab->iPk = i; }
  }
  if( nPk!=1 ) pTab->iPk = -1;
  return SQLITE_OK;
}

/* Planning calls use the table's server prefix without connecting. */
static int tsPlanCall(
  FedTable *pTab, const char *zMethod, int objc, Tcl_Obj **objv,
  Tcl_Obj **ppRes
){
  FedServer *pServer = 0;
  char *zErr = 0;
  int rc = fedServerFind(pTab->pCtx, pTab->zServer, &pServer, &zErr);
  if( rc==SQLITE_OK ){
    rc = tsCall(pServer, pServer->zDsn, zMethod, objc, objv, ppRes, &zErr);
  }else{
    tsDropArgs(objc, objv);
  }
  sqlite3_free(zErr);
  return rc;
}

static int tsPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  Tcl_Obj *apArg[4];
  Tcl_Obj *pRes = 0;
  int ePush = FED_PUSH_NO;
  apArg[0] = Tcl_NewStringObj(pTab->aCol[iCol].zName, -1);
  apArg[1] = Tcl_NewStringObj(azOpName[op], -1);
  apArg[2] = tsValueObj(pRhs);
  apArg[3] = Tcl_NewIntObj(pRhs!=0);
  if( tsPlanCall(pTab, "pushable", 4, apArg, &pRes)==SQLITE_OK ){
    const char *z = Tcl_GetString(pRes);
    if( strcmp(z, "exact")==0 ) ePush = FED_PUSH_EXACT;
    else if( strcmp(z, "loose")==0 ) ePush = FED_PUSH_LOOSE;
    Tcl_DecrRefCount(pRes);
  }
  return ePush;
}

static int tsOrderable(FedTable *pTab, int iCol, int bDesc){
  Tcl_Obj *apArg[2];
  Tcl_Obj *pRes = 0;
  int bOk = 0;
  apArg[0] = Tcl_NewStringObj(pTab->aCol[iCol].zName, -1);
  apArg[1] = Tcl_NewIntObj(bDesc);
  if( tsPlanCall(pTab, "orderable", 2, apArg, &pRes)==SQLITE_OK ){
    bOk = strcmp(Tcl_GetString(pRes), "1")==0;
    Tcl_DecrRefCount(pRes);
  }
  return bOk;
}

static int tsOpen(FedCursor *pCsr, char **pzErr){
  TsCursor *p = sqlite3_malloc64(sizeof(*p));
  (void)pzErr;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  pCsr->pStoreCsr = p;
  return SQLITE_OK;
}

static void tsClose(FedCursor *pCsr){
  TsCursor *p = (TsCursor*)pCsr->pStoreCsr;
  if( p==0 ) return;
  if( p->pRows ) Tcl_DecrRefCount(p->pRows);
  sqlite3_free(p);
}

static int tsFilter(
  FedCursor *pCsr, int argc, sqlite3_value **argv, char **pzErr
){
  TsCursor *p = (TsCursor*)pCsr->pStoreCsr;
  FedTable *pTab = pCsr->pTab;
  const FedPlan *pPlan = pCsr->pPlan;
  Tcl_Obj *apArg[6];
  Tcl_Obj *pRes = 0;
  int i, rc;

  if( p->pRows ) Tcl_DecrRefCount(p->pRows);
  p->pRows = 0;
  p->nRow = p->iRow = 0;
  apArg[0] = Tcl_NewStringObj(pTab->zRemote, -1);
  apArg[1] = Tcl_NewObj();
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    Tcl_Obj *pTerm = Tcl_NewObj();
    Tcl_Obj *pVal;
    if( t->iCol<0 || t->iCol>=pTab->nCol ) continue;
    if( t->op==FED_OP_IN && t->iArg>=0 && t->iArg<argc ){
      sqlite3_value *pV;
      int rc2;
      pVal = Tcl_NewObj();
      for(rc2=sqlite3_vtab_in_first(argv[t->iArg], &pV);
          rc2==SQLITE_OK && pV; rc2=sqlite3_vtab_in_next(argv[t->iArg], &pV)){
        Tcl_ListObjAppendElement(0, pVal, tsValueObj(pV));
      }
    }else{
      pVal = (t->iArg>=0 && t->iArg<argc) ? tsValueObj(argv[t->iArg])
                                          : Tcl_NewObj();
    }
    Tcl_ListObjAppendElement(0, pTerm, Tcl_NewStringObj(pTab->aCol[t->iCol].zName, -1));
    Tcl_ListObjAppendElement(0, pTerm, Tcl_NewStringObj(azOpName[t->op], -1));
    Tcl_ListObjAppendElement(0, pTerm, pVal);
    Tcl_ListObjAppendElement(0, pTerm, Tcl_NewIntObj(t->bExact));
    Tcl_ListObjAppendElement(0, apArg[1], pTerm);
  }
  apArg[2] = Tcl_NewObj();
  for(i=0; i<pPlan->nOrder; i++){
    Tcl_Obj *pOrd = Tcl_NewObj();
    Tcl_ListObjAppendElement(0, pOrd,
        Tcl_NewStringObj(pTab->aCol[pPlan->aOrderCol[i]].zName, -1));
    Tcl_ListObjAppendElement(0, pOrd, Tcl_NewIntObj(pPlan->aOrderDesc[i]));
    Tcl_ListObjAppendElement(0, apArg[2], pOrd);
  }
  apArg[3] = (pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc)
      ? tsValueObj(argv[pPlan->iLimitArg]) : Tcl_NewObj();
  apArg[4] = (pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc)
      ? tsValueObj(argv[pPlan->iOffsetArg]) : Tcl_NewObj();
  apArg[5] = Tcl_NewObj();
  for(i=0; i<pTab->nCol; i++){
    if( fedPlanColUsed(pPlan, i) ){
      Tcl_ListObjAppendElement(0, apArg[5],
                               Tcl_NewStringObj(pTab->aCol[i].zName, -1));
    }
  }
  rc = tsConnCall(pTab->pServer->pConn, "filter", 6, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( Tcl_ListObjLength(tsInterp, pRes, &p->nRow)!=TCL_OK ){
    fedSetError(pzErr, "%s: filter did not return a list", TS_STORE);
    Tcl_DecrRefCount(pRes);
    return SQLITE_ERROR;
  }
  p->pRows = pRes;
  return SQLITE_OK;
}

static int tsNext(FedCursor *pCsr, char **pzErr){
  (void)pzErr;
  ((TsCursor*)pCsr->pStoreCsr)->iRow++;
  return SQLITE_OK;
}

static int tsEof(FedCursor *pCsr){
  TsCursor *p = (TsCursor*)pCsr->pStoreCsr;
  return p->iRow>=p->nRow;
}

static int tsColumn(FedCursor *pCsr, sqlite3_context *ctx, int iCol){
  TsCursor *p = (TsCursor*)pCsr->pStoreCsr;
  Tcl_Obj *pRow = 0, *pVal = 0;
  const char *z;
  Tcl_WideInt v;
  double r;
  int n;
  Tcl_ListObjIndex(0, p->pRows, p->iRow, &pRow);
  if( pRow ) Tcl_ListObjIndex(0, pRow, iCol, &pVal);
  if( pVal==0 ) return SQLITE_OK;
  z = Tcl_GetStringFromObj(pVal, &n);
  if( strcmp(z, "NULL")==0 ) return SQLITE_OK;
  switch( pCsr->pTab->aCol[iCol].eKind ){
    case TS_INT:
      if( Tcl_GetWideIntFromObj(0, pVal, &v)==TCL_OK ){
        sqlite3_result_int64(ctx, v);
        return SQLITE_OK;
      }
      break;
    case TS_REAL:
      if( Tcl_GetDoubleFromObj(0, pVal, &r)==TCL_OK ){
        sqlite3_result_double(ctx, r);
        return SQLITE_OK;
      }
      break;
    case TS_BLOB: {
      unsigned char *a = Tcl_GetByteArrayFromObj(pVal, &n);
      sqlite3_result_blob(ctx, a, n, SQLITE_TRANSIENT);
      return SQLITE_OK;
    }
  }
  sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
  return SQLITE_OK;
}

static int tsRowid(FedCursor *pCsr, i64 *piRowid){
  *piRowid = ((TsCursor*)pCsr->pStoreCsr)->iRow;
  return SQLITE_OK;
}

static int tsUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  FedConn *pConn = pTab->pServer->pConn;
  Tcl_Obj *apArg[3];
  Tcl_Obj *pRes = 0;
  int i, rc;
  apArg[0] = Tcl_NewStringObj(pTab->zRemote, -1);
  if( argc==1 ){
    apArg[1] = tsValueObj(argv[0]);
    return tsConnCall(pConn, "delete", 2, apArg, 0, pzErr);
  }
  apArg[2] = Tcl_NewObj();
  for(i=2; i<argc; i++){
    Tcl_ListObjAppendElement(0, apArg[2], tsValueObj(argv[i]));
  }
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    apArg[1] = apArg[2];
    rc = tsConnCall(pConn, "insert", 2, apArg, &pRes, pzErr);
    if( rc==SQLITE_OK ){
      Tcl_WideInt v;
      if( Tcl_GetWideIntFromObj(0, pRes, &v)==TCL_OK ) *piRowid = v;
      Tcl_DecrRefCount(pRes);
    }
    return rc;
  }
  apArg[1] = tsValueObj(argv[0]);
  return tsConnCall(pConn, "update", 3, apArg, 0, pzErr);
}

static int tsBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  Tcl_Obj *apArg[1];
  apArg[0] = Tcl_NewIntObj(bSnapshot);
  return tsConnCall(pConn, "begin", 1, apArg, 0, pzErr);
}

/* With FedConn.zMarker set (the last resource), "commit GID". */
static int tsCommit(FedConn *pConn, char **pzErr){
  Tcl_Obj *apArg[1];
  if( pConn->zMarker ){
    int rc;
    apArg[0] = Tcl_NewStringObj(pConn->zMarker, -1);
    rc = tsConnCall(pConn, "commit", 1, apArg, 0, pzErr);
    /* ts_fail NAME commit after: applied, reply lost: outcome unknown. */
    if( rc!=SQLITE_OK && *pzErr && strstr(*pzErr, "reply to commit was lost") ){
      pConn->bUnknown = 1;
    }
    return rc;
  }
  return tsConnCall(pConn, "commit", 0, 0, 0, pzErr);
}

static int tsRollback(FedConn *pConn, char **pzErr){
  return tsConnCall(pConn, "rollback", 0, 0, 0, pzErr);
}

static int tsSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  Tcl_Obj *apArg[3];
  apArg[0] = Tcl_NewIntObj(iRelease);
  apArg[1] = Tcl_NewIntObj(iFrom);
  apArg[2] = Tcl_NewIntObj(iTo);
  return tsConnCall(pConn, "savepoint", 3, apArg, 0, pzErr);
}

static int tsRelease(FedConn *pConn, int iLevel, char **pzErr){
  Tcl_Obj *apArg[1];
  apArg[0] = Tcl_NewIntObj(iLevel);
  return tsConnCall(pConn, "release", 1, apArg, 0, pzErr);
}

static int tsRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  Tcl_Obj *apArg[1];
  apArg[0] = Tcl_NewIntObj(iLevel);
  return tsConnCall(pConn, "rollbackto", 1, apArg, 0, pzErr);
}

static int tsQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  Tcl_Obj *apArg[2];
  Tcl_Obj *pRes = 0;
  int i, n = 0, rc;
  char **az = 0;
  apArg[0] = Tcl_NewStringObj(zQuery, -1);
  apArg[1] = Tcl_NewObj();
  for(i=0; i<nParam; i++){
    Tcl_ListObjAppendElement(0, apArg[1], tsValueObj(apParam[i]));
  }
  rc = tsConnCall(pConn, "query", 2, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  Tcl_ListObjLength(0, pRes, &n);
  if( n>0 ){
    az = sqlite3_malloc64(sizeof(char*)*n);
    if( az==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    Tcl_Obj *pRow;
    Tcl_ListObjIndex(0, pRes, i, &pRow);
    az[i] = fedStrdup(Tcl_GetString(pRow), -1);
    if( az[i]==0 ) rc = SQLITE_NOMEM;
  }
  Tcl_DecrRefCount(pRes);
  if( rc!=SQLITE_OK ){
    while( i>0 ) sqlite3_free(az[--i]);
    sqlite3_free(az);
    return rc;
  }
  *pazRow = az;
  *pnRow = n;
  *pnChanged = n;
  return SQLITE_OK;
}

static int tsListTables(
  FedConn *pConn, const char *zSchema, char ***pazName, int *pnName,
  char **pzErr
){
  Tcl_Obj *apArg[1];
  Tcl_Obj *pRes = 0;
  int i, n = 0, rc;
  char **az = 0;
  apArg[0] = Tcl_NewStringObj(zSchema, -1);
  rc = tsConnCall(pConn, "tables", 1, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  Tcl_ListObjLength(0, pRes, &n);
  if( n>0 ){
    az = sqlite3_malloc64(sizeof(char*)*2*n);
    if( az==0 ) rc = SQLITE_NOMEM;
    else memset(az, 0, sizeof(char*)*2*n);
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    Tcl_Obj *pName;
    Tcl_ListObjIndex(0, pRes, i, &pName);
    az[2*i] = fedStrdup(Tcl_GetString(pName), -1);
    az[2*i+1] = fedStrdup(Tcl_GetString(pName), -1);
    if( az[2*i]==0 || az[2*i+1]==0 ) rc = SQLITE_NOMEM;
  }
  Tcl_DecrRefCount(pRes);
  if( rc!=SQLITE_OK ){
    for(i=0; az && i<2*n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    return rc;
  }
  *pazName = az;
  *pnName = n;
  return SQLITE_OK;
}

/* A Tcl list result as a sqlite3_malloc'd array of *pn strings. */
static int tsStringList(Tcl_Obj *pList, char ***pazOut, int *pn,
                        const char *zMethod, char **pzErr){
  Tcl_Obj **ap = 0;
  char **az = 0;
  int i, n = 0, rc = SQLITE_OK;
  *pazOut = 0;
  *pn = 0;
  if( Tcl_ListObjGetElements(0, pList, &n, &ap)!=TCL_OK ){
    fedSetError(pzErr, "%s: %s did not return a list", TS_STORE, zMethod);
    return SQLITE_ERROR;
  }
  if( n>0 ){
    az = sqlite3_malloc64(sizeof(char*)*n);
    if( az==0 ) return SQLITE_NOMEM;
  }
  for(i=0; i<n; i++){
    az[i] = fedStrdup(Tcl_GetString(ap[i]), -1);
    if( az[i]==0 ){ rc = SQLITE_NOMEM; break; }
  }
  if( rc!=SQLITE_OK ){
    while( i>0 ) sqlite3_free(az[--i]);
    sqlite3_free(az);
    return rc;
  }
  *pazOut = az;
  *pn = n;
  return SQLITE_OK;
}

/* Two-phase commit (tclstore_2pc). */
static int tsPrepare(FedConn *pConn, const char *zGid, char **pzErr){
  Tcl_Obj *apArg[1];
  apArg[0] = Tcl_NewStringObj(zGid, -1);
  return tsConnCall(pConn, "prepare", 1, apArg, 0, pzErr);
}

static int tsResolve(FedConn *pConn, const char *zGid, int bCommit,
                     char **pzErr){
  Tcl_Obj *apArg[2];
  apArg[0] = Tcl_NewStringObj(zGid, -1);
  apArg[1] = Tcl_NewIntObj(bCommit!=0);
  return tsConnCall(pConn, "resolve", 2, apArg, 0, pzErr);
}

static int tsListPrepared(FedConn *pConn, const char *zPrefix, int nMinAge,
                          char ***pazGid, int *pn, char **pzErr){
  Tcl_Obj *apArg[2];
  Tcl_Obj *pRes = 0;
  int rc;
  *pazGid = 0;
  *pn = 0;
  apArg[0] = Tcl_NewStringObj(zPrefix, -1);
  apArg[1] = Tcl_NewIntObj(nMinAge);
  rc = tsConnCall(pConn, "listprepared", 2, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = tsStringList(pRes, pazGid, pn, "listprepared", pzErr);
  Tcl_DecrRefCount(pRes);
  return rc;
}

/* The last resource's commit marker (tclstore_batch). */
static int tsMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                         char **pzErr){
  Tcl_Obj *apArg[1];
  Tcl_Obj *pRes = 0;
  int rc, b = 0;
  *pbExists = 0;
  apArg[0] = Tcl_NewStringObj(zGid, -1);
  rc = tsConnCall(pConn, "markercheck", 1, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( Tcl_GetBooleanFromObj(0, pRes, &b)!=TCL_OK ){
    fedSetError(pzErr, "%s: markercheck did not return 1 or 0: %s", TS_STORE,
                Tcl_GetString(pRes));
    rc = SQLITE_ERROR;
  }
  Tcl_DecrRefCount(pRes);
  *pbExists = b;
  return rc;
}

static int tsMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  Tcl_Obj *apArg[1];
  apArg[0] = Tcl_NewStringObj(zGid, -1);
  return tsConnCall(pConn, "markerremove", 1, apArg, 0, pzErr);
}

static int tsMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                        int *pn, char **pzErr){
  Tcl_Obj *apArg[1];
  Tcl_Obj *pRes = 0;
  int rc;
  *pazGid = 0;
  *pn = 0;
  apArg[0] = Tcl_NewStringObj(zPrefix, -1);
  rc = tsConnCall(pConn, "markerlist", 1, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = tsStringList(pRes, pazGid, pn, "markerlist", pzErr);
  Tcl_DecrRefCount(pRes);
  return rc;
}

/* Undo images (tclstore_none).  An image value is text; the string NULL
** is an absent key, both ways. */
static char *tsImageValue(Tcl_Obj *p, int *pn, int *pRc){
  int n;
  const char *z = Tcl_GetStringFromObj(p, &n);
  char *zOut;
  *pn = 0;
  if( strcmp(z, "NULL")==0 ) return 0;
  zOut = fedStrdup(z, n);
  if( zOut==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  *pn = n;
  return zOut;
}

static Tcl_Obj *tsImageObj(const char *a, int n){
  return a ? Tcl_NewStringObj(a, n) : Tcl_NewStringObj("NULL", -1);
}

static int tsUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                        char **pzErr){
  Tcl_Obj *pRes = 0;
  Tcl_Obj **apImg = 0;
  FedUndoImage *a = 0;
  int i, n = 0, rc;
  *paImg = 0;
  *pnImg = 0;
  rc = tsConnCall(pConn, "undoimages", 0, 0, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( Tcl_ListObjGetElements(0, pRes, &n, &apImg)!=TCL_OK ){
    fedSetError(pzErr, "%s: undoimages did not return a list", TS_STORE);
    rc = SQLITE_ERROR;
    n = 0;
  }
  if( rc==SQLITE_OK && n>0 ){
    a = sqlite3_malloc64(sizeof(*a)*n);
    if( a==0 ) rc = SQLITE_NOMEM;
    else memset(a, 0, sizeof(*a)*n);
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    Tcl_Obj **ap = 0;
    int m = 0;
    const char *zKey;
    if( Tcl_ListObjGetElements(0, apImg[i], &m, &ap)!=TCL_OK || m!=3 ){
      fedSetError(pzErr, "%s: undoimages: an image is {key before after},"
                  " not: %s", TS_STORE, Tcl_GetString(apImg[i]));
      rc = SQLITE_ERROR;
      break;
    }
    zKey = Tcl_GetStringFromObj(ap[0], &m);
    a[i].aKey = fedStrdup(zKey, m);
    a[i].nKey = m;
    if( a[i].aKey==0 ) rc = SQLITE_NOMEM;
    a[i].aBefore = tsImageValue(ap[1], &a[i].nBefore, &rc);
    a[i].aAfter = tsImageValue(ap[2], &a[i].nAfter, &rc);
  }
  Tcl_DecrRefCount(pRes);
  if( rc!=SQLITE_OK ){
    fedUndoImagesFree(a, n);
    return rc;
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

static int tsUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                       char **pzErr){
  Tcl_Obj *apArg[3];
  Tcl_Obj *pRes = 0;
  const char *z;
  int rc;
  apArg[0] = Tcl_NewStringObj(pImg->aKey, pImg->nKey);
  apArg[1] = tsImageObj(pImg->aBefore, pImg->nBefore);
  apArg[2] = tsImageObj(pImg->aAfter, pImg->nAfter);
  rc = tsConnCall(pConn, "undoapply", 3, apArg, &pRes, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  z = Tcl_GetString(pRes);
  if( strcmp(z, "conflict")==0 ){
    fedSetError(pzErr, "%s: cannot undo key %.*s on server \"%s\": another"
        " client changed it after this transaction wrote it; it was left as"
        " it is", TS_STORE, pImg->nKey, pImg->aKey, pConn->pServer->zName);
    rc = SQLITE_BUSY;
  }else if( strcmp(z, "ok")!=0 ){
    fedSetError(pzErr, "%s: undoapply returned \"%s\", not ok or conflict",
                TS_STORE, z);
    rc = SQLITE_ERROR;
  }
  Tcl_DecrRefCount(pRes);
  return rc;
}

static const FedStore tsStore = {
  TS_STORE,
  FED_TXN_LOCAL,
  azTsTableOpt,
  0,
  tsConnect,
  tsDisconnect,
  tsIsAlive,
  tsDescribe,
  tsColumns,
  tsPushable,
  tsOrderable,
  tsOpen,
  tsClose,
  tsFilter,
  tsNext,
  tsEof,
  tsColumn,
  tsRowid,
  tsUpdate,
  0,                            /* xFlush */
  tsBegin,
  tsCommit,
  tsRollback,
  tsSavepoint,
  tsRelease,
  tsRollbackTo,
  tsQuery,
  tsListTables,
  0,                            /* xTableFree */
  0,                            /* xServerCheck */
  0, 0, 0,                      /* two-phase commit: tclstore_2pc */
  0, 0, 0,                      /* commit markers: tclstore_batch */
  0, 0,                         /* undo images: tclstore_none */
  0, 0,                         /* cache notifications */
  0,                            /* pKv: no key-value capability */
  0                             /* bRowidStable: rowids are positions */
};

/* The other kinds of participant: the same store with the transaction
** methods of a two-phase server, a last resource with a commit marker, and
** a server without transactions that gives undo images. */
static FedStore tsStore2pc, tsStoreBatch, tsStoreNone;

/* Register the stores; call before the first connection is opened. */
int fedTestStoreRegister(void){
  int rc;
  tsStore2pc = tsStore;
  tsStore2pc.zName = TS_STORE "_2pc";
  tsStore2pc.eTxn = FED_TXN_2PC;
  tsStore2pc.xPrepare = tsPrepare;
  tsStore2pc.xResolve = tsResolve;
  tsStore2pc.xListPrepared = tsListPrepared;
  tsStoreBatch = tsStore;
  tsStoreBatch.zName = TS_STORE "_batch";
  tsStoreBatch.eTxn = FED_TXN_BATCH;
  tsStoreBatch.xMarkerCheck = tsMarkerCheck;
  tsStoreBatch.xMarkerRemove = tsMarkerRemove;
  tsStoreBatch.xMarkerList = tsMarkerList;
  tsStoreNone = tsStore;
  tsStoreNone.zName = TS_STORE "_none";
  tsStoreNone.eTxn = FED_TXN_NONE;
  tsStoreNone.xUndoImages = tsUndoImages;
  tsStoreNone.xUndoApply = tsUndoApply;
  rc = fedStoreRegister(&tsStore);
  if( rc==SQLITE_OK ) rc = fedStoreRegister(&tsStore2pc);
  if( rc==SQLITE_OK ) rc = fedStoreRegister(&tsStoreBatch);
  if( rc==SQLITE_OK ) rc = fedStoreRegister(&tsStoreNone);
  return rc;
}

/* The interpreter the callbacks run in. */
void fedTestStoreInterp(Tcl_Interp *interp){
  tsInterp = interp;
}
