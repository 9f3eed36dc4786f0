/*
** cache/invalidate.c: forgetting entries: on writes through federate, at
** the end of a transaction, for fed_exec() on a server (the server
** generation), and on the store's change notifications (listening).
*/
#include "cacheInt.h"

/**************************************************************************
** Invalidation.
*/

/* Delete entry iEntry and its rows. */
int fedCacheEntryDelete(FedCacheDb *pDb, i64 iTid, i64 iEntry){
  char *zSql = sqlite3_mprintf(
      "DELETE FROM fed_cache_r%lld WHERE rowid BETWEEN %lld AND %lld;"
      "DELETE FROM fed_cache_term WHERE entry=%lld;"
      "DELETE FROM fed_cache_entry WHERE id=%lld;",
      iTid, iEntry<<32, (iEntry<<32)|0xffffffff, iEntry, iEntry);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedCacheExec(pDb, zSql);
  sqlite3_free(zSql);
  return rc;
}

/* Drop every entry of table tid (all tables when iTid==0). */
int fedCacheClearTid(FedCacheDb *pDb, i64 iTid){
  char *zSql;
  int rc;
  if( iTid==0 ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(pDb->db, "SELECT tid FROM fed_cache_table", -1,
                            &pStmt, 0);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      i64 i = sqlite3_column_int64(pStmt, 0);
      if( i>0 ) rc = fedCacheClearTid(pDb, i);
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
    return rc;
  }
  zSql = sqlite3_mprintf(
      "DELETE FROM fed_cache_term WHERE entry IN"
      " (SELECT id FROM fed_cache_entry WHERE tid=%lld);"
      "DELETE FROM fed_cache_entry WHERE tid=%lld;"
      "DELETE FROM fed_cache_r%lld;", iTid, iTid, iTid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedCacheExec(pDb, zSql);
  sqlite3_free(zSql);
  return rc;
}


/* The last identifier of a remote name, unquoted, into zOut (nOut):
** "public"."t" -> t, t -> t, "a.b" -> a.b. */
static void cacheLastName(const char *z, int n, char *zOut, int nOut){
  int i = 0, iStart = 0, bQuote = 0, j = 0;
  for(i=0; i<n; i++){
    if( z[i]=='"' ) bQuote = !bQuote;
    else if( z[i]=='.' && !bQuote ) iStart = i+1;
  }
  for(i=iStart; i<n && j<nOut-1; i++){
    if( z[i]=='"' ){
      if( i+1<n && z[i+1]=='"' ){ zOut[j++] = '"'; i++; }
      continue;
    }
    zOut[j++] = z[i];
  }
  zOut[j] = 0;
}

/* Clear, in every cache database, the tables whose key starts with
** zPrefix ("store\ndsn\n") and whose remote name ends like zRemote's
** (zRemote NULL: all of them, e.g. for fed_exec).  Fills in progress are
** abandoned.  SQLITE_OK, or the first error (the rest is still cleared). */
static int cacheClearSameName(FedContext *pCtx, const char *zPrefix,
                              const char *zRemote){
  FedCacheDb *pDb;
  char zWant[256], zHave[256];
  int nPrefix = (int)strlen(zPrefix), rc = SQLITE_OK, rc2;
  if( zRemote ){
    cacheLastName(zRemote, (int)strlen(zRemote), zWant, sizeof(zWant));
  }
  for(pDb=pCtx->pCacheDb; pDb; pDb=pDb->pNext){
    sqlite3_stmt *pStmt = 0;
    rc2 = sqlite3_prepare_v2(pDb->db, "SELECT tid, tkey FROM fed_cache_table"
          " WHERE substr(tkey, 1, length(?1))=?1", -1, &pStmt, 0);
    if( rc==SQLITE_OK ) rc = rc2;
    if( rc2==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zPrefix, -1, SQLITE_STATIC);
      while( sqlite3_step(pStmt)==SQLITE_ROW ){
        const char *zKey = (const char*)sqlite3_column_text(pStmt, 1);
        const char *zEnd;
        if( zRemote ){
          if( zKey==0 || (int)strlen(zKey)<nPrefix ) continue;
          zKey += nPrefix;
          zEnd = strchr(zKey, '\n');
          if( zEnd==0 ) continue;
          cacheLastName(zKey, (int)(zEnd-zKey), zHave, sizeof(zHave));
        }
        if( zRemote==0 || strcmp(zHave, zWant)==0 ){
          rc2 = fedCacheClearTid(pDb, sqlite3_column_int64(pStmt, 0));
          if( rc==SQLITE_OK ) rc = rc2;
        }
      }
    }
    rc2 = sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK ) rc = rc2;
  }
  return rc;
}

/* Forget what is cached for one table: a write, a notification, or
** fed_cache_clear().  In-progress fills of the table are abandoned. */
int fedCacheInvalidate(FedTable *pTab){
  FedCacheTab *pCT = pTab->pCache;
  char *zRel;
  int rc;
  if( pCT==0 ) return SQLITE_OK;
  pCT->iGen++;
  if( pCT->iTid==0 ) return SQLITE_OK;
  rc = fedCacheClearTid(pCT->pDb, pCT->iTid);
  /* Other local tables over the same remote relation, with other column
  ** lists or the name spelled otherwise ("t" and "public"."t"), have
  ** entries of their own: every table of the server whose remote name
  ** ends in the same identifier goes too. */
  if( rc==SQLITE_OK ){
    zRel = sqlite3_mprintf("%s\n%s\n", pTab->pStore->zName,
                           pTab->pServer ? pTab->pServer->zDsn : "");
    if( zRel==0 ) return SQLITE_NOMEM;
    cacheClearSameName(pTab->pCtx, zRel,
                       pTab->zRemote ? pTab->zRemote : pTab->zName);
    sqlite3_free(zRel);
  }
  return rc;
}

/* Does the store name disjoint relations?  A store that lists its
** relations by name (fed_import) does: two tables over different names
** never share a row.  Key-value stores name key spaces by patterns and
** prefixes that may overlap ('user:*', '*', prefix 'a/' inside prefix ''),
** so a write to one may change the rows of any table of the server. */
static int cacheNamedRelations(const FedStore *pStore){
  return pStore->xListTables!=0;
}

/* Is pOther a table over rows that a write through pTab may change: the
** same store and DSN, and (for a store of named relations) a remote name
** that ends in the same identifier? */
static int cacheSameRelation(FedTable *pTab, FedTable *pOther){
  char zA[256], zB[256];
  const char *zRa = pTab->zRemote ? pTab->zRemote : pTab->zName;
  const char *zRb = pOther->zRemote ? pOther->zRemote : pOther->zName;
  if( pTab->pStore!=pOther->pStore ) return 0;
  if( pTab->pServer==0 || pOther->pServer==0 ) return pTab==pOther;
  if( strcmp(pTab->pServer->zDsn, pOther->pServer->zDsn)!=0 ) return 0;
  if( !cacheNamedRelations(pTab->pStore) ) return 1;
  cacheLastName(zRa, (int)strlen(zRa), zA, sizeof(zA));
  cacheLastName(zRb, (int)strlen(zRb), zB, sizeof(zB));
  return strcmp(zA, zB)==0;
}

/* A write through pTab, cached or not: every cached table that may hold
** rows it changes forgets them, in every cache database of the connection
** (docs/cache.md, "Invalidation"): pTab's own entries, those of the other
** local tables over the same remote relation, and for a key-value store
** those of every table of the server.  Fills in progress are abandoned
** (a scan that began before the write would cache the rows it replaced)
** and the L2 generations of the tables involved are incremented.
** SQLITE_OK, or the first error (the rest is still cleared). */
static int cacheClearWritten(FedTable *pTab){
  FedContext *pCtx = pTab->pCtx;
  FedCacheStat *pStat;
  char *zPrefix;
  int rc;
  /* Every table that can be filling is open, so in pCacheStat: bumping
  ** the generations of those over the rows abandons exactly their fills. */
  if( pTab->pCache ) pTab->pCache->iGen++;
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    FedTable *pOther = pStat->pTab;
    if( pOther && pOther->pCache && cacheSameRelation(pTab, pOther) ){
      pOther->pCache->iGen++;
      if( pOther->pCache->zL2 ) fedCacheL2Bump(pOther->pCache);
    }
  }
  if( pCtx->pCacheDb==0 ) return SQLITE_OK;
  zPrefix = sqlite3_mprintf("%s\n%s\n", pTab->pStore->zName,
                            pTab->pServer ? pTab->pServer->zDsn : "");
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = cacheClearSameName(pCtx, zPrefix,
                          !cacheNamedRelations(pTab->pStore) ? 0
                          : pTab->zRemote ? pTab->zRemote : pTab->zName);
  sqlite3_free(zPrefix);
  return rc;
}

/* A write through federate to pTab: invalidate now and at the end of the
** transaction.  A cache that cannot be invalidated refuses the write:
** sending it would leave entries that answer wrongly.  A table without a
** cache of its own still clears the cached tables over its rows. */
int fedCacheWrite(FedTable *pTab, char **pzErr){
  int rc;
  if( !pTab->bCacheInit ){
    rc = fedCacheTabInit(pTab, pzErr);
    if( rc ) return rc;
  }
  if( pTab->pCache ) pTab->pCache->bDirty = 1;
  rc = cacheClearWritten(pTab);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: cannot clear the cache of the tables over \"%s\""
        " before writing it (%s); nothing was written", pTab->pStore->zName,
        pTab->zName, sqlite3_errstr(rc));
  }
  return rc;
}

/* The transaction that wrote pTab ended (xCommit or xRollback): clear
** again, so that a fill made by another connection between the write and
** its commit cannot survive. */
void fedCacheTxnEnd(FedTable *pTab){
  if( pTab->pCache ) pTab->pCache->bDirty = 0;
  cacheClearWritten(pTab);
}

int fedCacheInvalidateServer(FedContext *pCtx, FedServer *pServer){
  char *zPrefix;
  FedCacheStat *pStat;
  int rc;
  pCtx->iCacheServerGen++;
  if( pCtx->pCacheDb==0 ) return SQLITE_OK;
  zPrefix = sqlite3_mprintf("%s\n%s\n", pServer->pStore->zName,
                            pServer->zDsn);
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = cacheClearSameName(pCtx, zPrefix, 0);
  sqlite3_free(zPrefix);
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    FedTable *pTab = pStat->pTab;
    if( pTab && pTab->pCache && pTab->pCache->zL2
     && sqlite3_stricmp(pTab->zServer, pServer->zName)==0 ){
      fedCacheL2Bump(pTab->pCache);
    }
  }
  return rc;
}

/* Apply the change notifications a store has received for a server:
** each names a remote relation (as FedTable.zRemote spells it).  An error
** (out of memory) means the cache must not be read now; the store keeps
** what it could not tell (docs/ARCHITECTURE.md, xChanges). */
int fedCacheApplyChanges(FedTable *pTab, FedConn *pConn){
  const FedStore *pStore = pTab->pStore;
  char **azRel = 0;
  char *zPrefix;
  int nRel = 0, i, rc;
  if( pStore->xChanges==0 ) return SQLITE_OK;
  /* "*": every table of the server; else the tables over that name. */
  zPrefix = sqlite3_mprintf("%s\n%s\n", pStore->zName, pConn->pServer->zDsn);
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = pStore->xChanges(pConn, &azRel, &nRel);
  for(i=0; i<nRel; i++){
    int rc2;
    rc2 = cacheClearSameName(pTab->pCtx, zPrefix,
                             strcmp(azRel[i], "*")==0 ? 0 : azRel[i]);
    sqlite3_free(azRel[i]);
    if( rc2!=SQLITE_OK ){
      /* A change was heard but not applied: distrust the listening, so
      ** that every table of the server is cleared before its next hit. */
      pConn->iListen = 0;
      if( rc==SQLITE_OK ) rc = rc2;
    }
  }
  sqlite3_free(azRel);
  sqlite3_free(zPrefix);
  return rc;
}

/* xWatch, then number the listening that began (FedConn.iListen), so
** that tables know whether their entries predate it. */
int fedCacheWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  FedContext *pCtx = pConn->pServer->pCtx;
  int bNew = pConn->iListen==0;
  int rc = pConn->pServer->pStore->xWatch(pConn, pTab, pzErr);
  if( rc==SQLITE_OK && bNew && pConn->iListen ){
    pConn->iListen = ++pCtx->iListenSeq;
  }
  return rc;
}

/* Make sure pConn listens for the store's change notifications, and drop
** pCT's entries when it began listening after they were made. */
int fedCacheListen(FedCacheTab *pCT, FedConn *pConn){
  FedTable *pTab = pCT->pTab;
  i64 *piSeen = &pCT->iListenSeen;
  if( pTab->pStore->xWatch==0 || pTab->pStore->xChanges==0 ){
    return SQLITE_ERROR;
  }
  if( pConn->iListen==0 ){
    char *zErr = 0;
    int rc;
    if( pConn->bTxn ) return SQLITE_BUSY;
    rc = fedCacheWatch(pConn, 0, &zErr);
    sqlite3_free(zErr);
    if( rc ) return rc;
  }
  if( *piSeen!=pConn->iListen ){
    /* Not seen until cleared: a failed clear is tried again next time. */
    int rc = fedCacheInvalidate(pTab);
    if( rc ) return rc;
    *piSeen = pConn->iListen;
  }
  return SQLITE_OK;
}

int fedCacheWantsConn(FedTable *pTab){
  if( !pTab->bCacheInit ){
    char *zErr = 0;
    fedCacheTabInit(pTab, &zErr);
    sqlite3_free(zErr);
  }
  return pTab->pCache && pTab->pCache->bNotify;
}
