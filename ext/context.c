/*
** context.c: the per-connection FedContext (its references, and what runs
** when the last one goes) and the registry of stores.  It calls no
** subsystem by name: each one that keeps state on the context registers
** its close function here at init (fedContextAtClose), so no ext/ file
** needs to call back into main.c.
*/
#include "fedInt.h"

/* Stores added at run time (the testfixture's scripted stores), before the
** first connection is opened.  Process-wide. */
#define FED_MAX_EXTRA_STORE 8
static const FedStore *aExtraStore[FED_MAX_EXTRA_STORE];
static int nExtraStore = 0;

int fedStoreRegister(const FedStore *pStore){
  if( nExtraStore>=FED_MAX_EXTRA_STORE ) return SQLITE_FULL;
  aExtraStore[nExtraStore++] = pStore;
  return SQLITE_OK;
}

int fedStoreCount(void){
  return nExtraStore;
}

const FedStore *fedStoreAt(int i){
  return i>=0 && i<nExtraStore ? aExtraStore[i] : 0;
}

const FedStore *fedStoreFind(FedContext *pCtx, const char *zName){
  int i;
  if( zName==0 ) return 0;
  for(i=0; i<pCtx->nStore; i++){
    if( fedStrICmp(pCtx->apStore[i]->zName, zName)==0 ) return pCtx->apStore[i];
  }
  return 0;
}

FedContext *fedContextNew(sqlite3 *db){
  FedContext *pCtx = sqlite3_malloc64(sizeof(*pCtx));
  if( pCtx==0 ) return 0;
  memset(pCtx, 0, sizeof(*pCtx));
  pCtx->db = db;
  pCtx->nRef = 1;
  pCtx->iTxn = 1;
  pCtx->nRecoverGrace = FED_RECOVER_GRACE;
  return pCtx;
}

int fedContextAddStore(FedContext *pCtx, const FedStore *pStore){
  if( pCtx->nStore>=FED_MAX_STORE ) return SQLITE_INTERNAL;
  pCtx->apStore[pCtx->nStore++] = pStore;
  return SQLITE_OK;
}

int fedContextAtClose(FedContext *pCtx, void (*xClose)(FedContext*)){
  if( pCtx->nClose>=FED_MAX_CLOSE_HOOK ) return SQLITE_INTERNAL;
  pCtx->axClose[pCtx->nClose++] = xClose;
  return SQLITE_OK;
}

/* Drop one reference; the last one runs the close functions, in the order
** they were registered, and frees the context. */
void fedContextUnref(void *p){
  FedContext *pCtx = (FedContext*)p;
  int i;
  if( pCtx==0 || --pCtx->nRef>0 ) return;
  for(i=0; i<pCtx->nClose; i++) pCtx->axClose[i](pCtx);
  sqlite3_free(pCtx);
}
