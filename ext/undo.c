/*
** undo.c: undo images (Seata's AT mode) for a transaction that writes two
** or more servers without two-phase commit, when fed_config('atomic',
** 'allow') lets it run.
**
** The images cannot live in the database file: SQLite's own transaction
** is still open when they must be durable (they are written before the
** first of those servers commits, at xSync).  They go into a sidecar
** SQLite file next to the database, "<database file>-fedundo" (an
** in-memory database gets an in-memory sidecar), opened on first use by
** this connection and committed with synchronous=FULL:
**
**   CREATE TABLE fed_undo(gid TEXT NOT NULL, seq INTEGER NOT NULL,
**       server TEXT NOT NULL, db INTEGER NOT NULL, key BLOB NOT NULL,
**       before BLOB, after BLOB,     -- NULL: the key is absent
**       state TEXT NOT NULL,         -- 'pending' or 'conflict'
**       created INTEGER NOT NULL, PRIMARY KEY(gid, seq));
**
** The transaction's decision row (main.fed_txlog, written inside SQLite's
** transaction as for two-phase commit) says whether it committed: images
** of a transaction with a decision row are forgotten, those of one without
** are applied (newest first), each only where the key still holds its
** after-image.  A key that holds neither image was changed by someone
** else: compensation stops there, the row becomes 'conflict' and is listed
** in fed_in_doubt; fed_recover() tries again later.  Applying an image
** twice is harmless (a key that holds the before-image is left alone), so
** a crash in the middle of a compensation is finished by fed_recover().
*/
#include "fedInt.h"
#include <time.h>

/* The commit leaves key (iSpace, aKey, nKey) holding aAfter, nAfter (aAfter
** NULL: absent).  Give the key's image that after-value, appending an
** image to the array *pa of *pn when the key has none yet (a later write
** of a key replaces an earlier one).  SQLITE_OK or SQLITE_NOMEM. */
int fedUndoImageSet(FedUndoImage **pa, int *pn, int iSpace, const char *aKey,
                    int nKey, const char *aAfter, int nAfter){
  FedUndoImage *a = *pa;
  int n = *pn, j;
  for(j=0; j<n; j++){
    if( a[j].iSpace==iSpace && a[j].nKey==nKey
     && (nKey==0 || memcmp(a[j].aKey, aKey, nKey)==0) ){
      break;
    }
  }
  if( j==n ){
    FedUndoImage *aNew = sqlite3_realloc64(a, sizeof(*a)*(n+1));
    if( aNew==0 ) return SQLITE_NOMEM;
    *pa = a = aNew;
    memset(&a[n], 0, sizeof(*a));
    a[n].iSpace = iSpace;
    a[n].aKey = fedStrdup(aKey ? aKey : "", nKey);
    a[n].nKey = nKey;
    *pn = n+1;
    if( a[j].aKey==0 ) return SQLITE_NOMEM;
  }
  sqlite3_free(a[j].aAfter);
  a[j].aAfter = 0;
  a[j].nAfter = 0;
  if( aAfter ){
    a[j].aAfter = fedStrdup(aAfter, nAfter);
    a[j].nAfter = nAfter;
    if( a[j].aAfter==0 ) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

void fedUndoImagesFree(FedUndoImage *a, int n){
  int i;
  for(i=0; a && i<n; i++){
    sqlite3_free(a[i].aKey);
    sqlite3_free(a[i].aBefore);
    sqlite3_free(a[i].aAfter);
  }
  sqlite3_free(a);
}

/* Open the sidecar (creating it when bCreate).  Returns SQLITE_OK with
** pCtx->pUndoDb set, or SQLITE_OK with it NULL when there is no sidecar
** and bCreate is 0, or an error. */
static int undoOpen(FedContext *pCtx, int bCreate, char **pzErr){
  const char *zMain;
  char *zPath;
  int rc, fl = SQLITE_OPEN_READWRITE;
  if( pCtx->pUndoDb ){
    /* A write that failed half way (out of memory in its COMMIT or
    ** ROLLBACK) may have left the sidecar's transaction open: end it. */
    if( !sqlite3_get_autocommit(pCtx->pUndoDb) ){
      sqlite3_exec(pCtx->pUndoDb, "ROLLBACK", 0, 0, 0);
      if( !sqlite3_get_autocommit(pCtx->pUndoDb) ) return SQLITE_NOMEM;
    }
    return SQLITE_OK;
  }
  zMain = sqlite3_db_filename(pCtx->db, "main");
  if( pCtx->zUndoPath ){
    zPath = sqlite3_mprintf("%s", pCtx->zUndoPath);
  }else if( zMain==0 || zMain[0]==0 ){
    if( !bCreate ) return SQLITE_OK;
    zPath = sqlite3_mprintf(":memory:");
  }else{
    zPath = sqlite3_mprintf("%s-fedundo", zMain);
  }
  if( zPath==0 ) return SQLITE_NOMEM;
  if( bCreate ) fl |= SQLITE_OPEN_CREATE;
  rc = sqlite3_open_v2(zPath, &pCtx->pUndoDb, fl, 0);
  if( rc==SQLITE_OK ){
    sqlite3_busy_timeout(pCtx->pUndoDb, 5000);
    rc = sqlite3_exec(pCtx->pUndoDb,
        "PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS fed_undo(gid TEXT NOT NULL,"
        " seq INTEGER NOT NULL, server TEXT NOT NULL, db INTEGER NOT NULL,"
        " key BLOB NOT NULL, before BLOB, after BLOB, state TEXT NOT NULL,"
        " created INTEGER NOT NULL, PRIMARY KEY(gid, seq));", 0, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    if( !bCreate && rc==SQLITE_CANTOPEN ){
      rc = SQLITE_OK;
    }else if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "federate: cannot open the undo log %s: %s", zPath,
                  pCtx->pUndoDb ? sqlite3_errmsg(pCtx->pUndoDb)
                                : sqlite3_errstr(rc));
    }
    sqlite3_close(pCtx->pUndoDb);
    pCtx->pUndoDb = 0;
  }
  sqlite3_free(zPath);
  return rc;
}

void fedUndoClose(FedContext *pCtx){
  sqlite3_close(pCtx->pUndoDb);
  pCtx->pUndoDb = 0;
  sqlite3_free(pCtx->zUndoPath);
  pCtx->zUndoPath = 0;
}

static void bindImage(sqlite3_stmt *p, int i, const char *a, int n){
  if( a ) sqlite3_bind_blob(p, i, n ? a : "", n, SQLITE_STATIC);
  else sqlite3_bind_null(p, i);
}

int fedUndoLog(
  FedContext *pCtx, const char *zGid, const char *zServer,
  const FedUndoImage *a, int n, char **pzErr
){
  sqlite3 *db;
  sqlite3_stmt *pStmt = 0;
  int rc, i;
  if( n==0 ) return SQLITE_OK;
  rc = undoOpen(pCtx, 1, pzErr);
  if( rc ) return rc;
  db = pCtx->pUndoDb;
  rc = sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT INTO fed_undo(gid, seq, server, db,"
        " key, before, after, state, created) VALUES(?1, (SELECT"
        " coalesce(max(seq), 0)+1 FROM fed_undo WHERE gid=?1), ?2, ?3, ?4,"
        " ?5, ?6, 'pending', ?7)", -1, &pStmt, 0);
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    sqlite3_bind_text(pStmt, 1, zGid, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zServer, -1, SQLITE_STATIC);
    sqlite3_bind_int(pStmt, 3, a[i].iSpace);
    sqlite3_bind_blob(pStmt, 4, a[i].nKey ? a[i].aKey : "", a[i].nKey,
                      SQLITE_STATIC);
    bindImage(pStmt, 5, a[i].aBefore, a[i].nBefore);
    bindImage(pStmt, 6, a[i].aAfter, a[i].nAfter);
    sqlite3_bind_int64(pStmt, 7, (i64)time(0));
    sqlite3_step(pStmt);
    rc = sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "federate: cannot write the undo log: %s; nothing"
                  " was committed", sqlite3_errmsg(db));
    }
    sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  }
  return rc;
}

int fedUndoForget(FedContext *pCtx, const char *zGid){
  char *zSql;
  int rc = undoOpen(pCtx, 0, 0);
  if( rc!=SQLITE_OK || pCtx->pUndoDb==0 ) return rc;
  zSql = sqlite3_mprintf("DELETE FROM fed_undo WHERE gid=%Q", zGid);
  rc = zSql ? sqlite3_exec(pCtx->pUndoDb, zSql, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  return rc;
}

/* One logged image, as read back. */
typedef struct UndoRow UndoRow;
struct UndoRow {
  i64 iSeq;
  char *zServer;
  FedUndoImage img;
};

static void undoRowsFree(UndoRow *a, int n){
  int i;
  for(i=0; a && i<n; i++){
    sqlite3_free(a[i].zServer);
    sqlite3_free(a[i].img.aKey);
    sqlite3_free(a[i].img.aBefore);
    sqlite3_free(a[i].img.aAfter);
  }
  sqlite3_free(a);
}

/* A copy of blob column i: NULL stays NULL (absent), zero bytes become a
** one-byte allocation. */
static char *columnCopy(sqlite3_stmt *p, int i, int *pn, int *pRc){
  const void *a;
  char *z;
  *pn = 0;
  if( sqlite3_column_type(p, i)==SQLITE_NULL ) return 0;
  a = sqlite3_column_blob(p, i);
  *pn = sqlite3_column_bytes(p, i);
  z = sqlite3_malloc64((u64)*pn+1);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  if( *pn ) memcpy(z, a, *pn);
  z[*pn] = 0;
  return z;
}

/* The images of zGid, newest first. */
static int undoRows(FedContext *pCtx, const char *zGid, UndoRow **paRow,
                    int *pnRow){
  sqlite3_stmt *pStmt = 0;
  UndoRow *a = 0;
  int n = 0, rc;
  *paRow = 0;
  *pnRow = 0;
  rc = sqlite3_prepare_v2(pCtx->pUndoDb, "SELECT seq, server, db, key,"
      " before, after FROM fed_undo WHERE gid=?1 ORDER BY seq DESC", -1,
      &pStmt, 0);
  if( rc ) return rc;
  sqlite3_bind_text(pStmt, 1, zGid, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    UndoRow *aNew = sqlite3_realloc64(a, sizeof(UndoRow)*(n+1));
    UndoRow *r;
    if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
    a = aNew;
    r = &a[n++];
    memset(r, 0, sizeof(*r));
    r->iSeq = sqlite3_column_int64(pStmt, 0);
    r->zServer = fedStrdup((const char*)sqlite3_column_text(pStmt, 1), -1);
    if( r->zServer==0 ) rc = SQLITE_NOMEM;
    r->img.iSpace = sqlite3_column_int(pStmt, 2);
    r->img.aKey = columnCopy(pStmt, 3, &r->img.nKey, &rc);
    if( r->img.aKey==0 ) rc = SQLITE_NOMEM;
    r->img.aBefore = columnCopy(pStmt, 4, &r->img.nBefore, &rc);
    r->img.aAfter = columnCopy(pStmt, 5, &r->img.nAfter, &rc);
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
    rc = sqlite3_errcode(pCtx->pUndoDb);
  }
  if( rc ){
    undoRowsFree(a, n);
    return rc;
  }
  *paRow = a;
  *pnRow = n;
  return SQLITE_OK;
}

/* 1 if server zServer is in the comma-separated list zList. */
static int inList(const char *zList, const char *zServer){
  int n = (int)strlen(zServer);
  while( zList && *zList ){
    const char *zEnd = strchr(zList, ',');
    int m = zEnd ? (int)(zEnd - zList) : (int)strlen(zList);
    if( m==n && sqlite3_strnicmp(zList, zServer, n)==0 ) return 1;
    zList += m + (zEnd ? 1 : 0);
  }
  return 0;
}

static void undoExec(FedContext *pCtx, const char *zFmt, const char *zGid,
                     i64 iSeq){
  char *zSql = sqlite3_mprintf(zFmt, zGid, iSeq);
  if( zSql ) sqlite3_exec(pCtx->pUndoDb, zSql, 0, 0, 0);
  sqlite3_free(zSql);
}

/*
** Apply the images of zGid, newest first: those of servers in zOnly
** (comma-separated; NULL: every server), forgetting the others (servers
** that never committed), except zMaybe: the server whose commit failed,
** which may have applied it all the same (a connection lost after the
** request was sent).  Its images are applied where its keys hold the
** after-image, forgotten where they hold anything else (the commit did
** not happen), and left for fed_recover() when it cannot be reached; they
** never stop the others.  Each image applied is deleted from the log at
** once, so a crash here is finished by fed_recover().
*/
static int undoApply(FedContext *pCtx, const char *zGid, const char *zOnly,
                     const char *zMaybe, char **pzErr){
  UndoRow *aRow = 0;
  int nRow = 0, i, rc;
  rc = undoOpen(pCtx, 0, pzErr);
  if( rc || pCtx->pUndoDb==0 ) return rc;
  rc = undoRows(pCtx, zGid, &aRow, &nRow);
  for(i=0; rc==SQLITE_OK && i<nRow; i++){
    UndoRow *r = &aRow[i];
    FedServer *pServer = 0;
    FedConn *pConn = 0;
    int bMaybe = zMaybe && sqlite3_stricmp(zMaybe, r->zServer)==0;
    if( zOnly && !bMaybe && !inList(zOnly, r->zServer) ){
      undoExec(pCtx, "DELETE FROM fed_undo WHERE gid=%Q AND seq=%lld", zGid,
               r->iSeq);
      continue;
    }
    rc = fedFault(FED_FAULT_UNDO, pzErr);
    if( rc==SQLITE_OK ) rc = fedServerFind(pCtx, r->zServer, &pServer, pzErr);
    if( rc==SQLITE_OK && pServer->pStore->xUndoApply==0 ){
      fedSetError(pzErr, "federate: server \"%s\" (%s) cannot apply undo"
                  " images", r->zServer, pServer->pStore->zName);
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, pServer, &pConn, pzErr);
    if( rc==SQLITE_OK ){
      rc = pServer->pStore->xUndoApply(pConn, &r->img, pzErr);
      /* A before-image put back changes what the cache may hold of the
      ** server (also when the apply failed half way, or its reply was
      ** lost). */
      if( rc!=SQLITE_NOMEM ) fedCacheInvalidateServer(pCtx, pServer);
    }
    if( bMaybe && rc!=SQLITE_NOMEM ){
      if( rc==SQLITE_OK || rc==SQLITE_BUSY ){
        undoExec(pCtx, "DELETE FROM fed_undo WHERE gid=%Q AND seq=%lld",
                 zGid, r->iSeq);
      }
      sqlite3_free(*pzErr);
      *pzErr = 0;
      rc = SQLITE_OK;
    }else if( rc==SQLITE_OK ){
      undoExec(pCtx, "DELETE FROM fed_undo WHERE gid=%Q AND seq=%lld", zGid,
               r->iSeq);
    }else if( rc==SQLITE_BUSY ){
      undoExec(pCtx, "UPDATE fed_undo SET state='conflict' WHERE gid=%Q"
               " AND seq=%lld", zGid, r->iSeq);
    }
  }
  undoRowsFree(aRow, nRow);
  return rc;
}

int fedUndoCompensate(FedContext *pCtx, const char *zGid, const char *zOnly,
                      const char *zMaybe, char **pzErr){
  int rc = undoApply(pCtx, zGid, zOnly, zMaybe, pzErr);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ){
    fedSetError(pzErr, "federate: compensation failed");
  }
  return rc;
}

/* 1 if main.fed_txlog has a decision row for zGid, 0 if not, -1 on
** error. */
static int undoCommitted(FedContext *pCtx, const char *zGid){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(pCtx->db,
      "SELECT 1 FROM main.fed_txlog WHERE gid=?1", -1, &pStmt, 0);
  int bFound;
  if( rc!=SQLITE_OK ) return rc==SQLITE_NOMEM ? -1 : 0;
  sqlite3_bind_text(pStmt, 1, zGid, -1, SQLITE_STATIC);
  bFound = sqlite3_step(pStmt)==SQLITE_ROW;
  rc = sqlite3_finalize(pStmt);
  return rc==SQLITE_OK ? bFound : -1;
}

/* The global ids in the log (sqlite3_malloc'd array of *pn strings). */
static int undoGids(FedContext *pCtx, char ***pazGid, int *pn){
  sqlite3_stmt *pStmt = 0;
  char **az = 0;
  int n = 0, rc;
  *pazGid = 0;
  *pn = 0;
  rc = sqlite3_prepare_v2(pCtx->pUndoDb, "SELECT gid FROM fed_undo GROUP BY"
      " gid ORDER BY min(created), gid", -1, &pStmt, 0);
  if( rc ) return rc;
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    char **azNew = sqlite3_realloc64(az, sizeof(char*)*(n+1));
    if( azNew==0 ){ rc = SQLITE_NOMEM; break; }
    az = azNew;
    az[n] = fedStrdup((const char*)sqlite3_column_text(pStmt, 0), -1);
    if( az[n]==0 ){ rc = SQLITE_NOMEM; break; }
    n++;
  }
  sqlite3_finalize(pStmt);
  if( rc ){
    while( n>0 ) sqlite3_free(az[--n]);
    sqlite3_free(az);
    return rc;
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}

int fedUndoRecover(FedContext *pCtx){
  char **azGid = 0;
  int nGid = 0, i, nDone = 0, rc;
  rc = undoOpen(pCtx, 0, 0);
  if( rc ) return rc==SQLITE_NOMEM ? -1 : 0;
  if( pCtx->pUndoDb==0 ) return 0;
  rc = undoGids(pCtx, &azGid, &nGid);
  for(i=0; rc==SQLITE_OK && i<nGid; i++){
    int bCommitted = undoCommitted(pCtx, azGid[i]);
    char *zErr = 0;
    if( bCommitted<0 ){
      rc = SQLITE_NOMEM;
    }else if( bCommitted ){
      /* Its decision row must outlive its images: fed_recover() keeps the
      ** decision rows when this fails. */
      if( fedUndoForget(pCtx, azGid[i])!=SQLITE_OK ) rc = SQLITE_NOMEM;
    }else{
      int rc2 = undoApply(pCtx, azGid[i], 0, 0, &zErr);
      if( rc2==SQLITE_OK ) nDone++;
      if( rc2==SQLITE_NOMEM ) rc = rc2;
    }
    sqlite3_free(zErr);
  }
  for(i=0; i<nGid; i++) sqlite3_free(azGid[i]);
  sqlite3_free(azGid);
  return rc==SQLITE_OK ? nDone : -1;
}

int fedUndoDoubts(
  FedContext *pCtx,
  int (*xAdd)(void*, const char*, const char*, const char*, i64),
  void *pArg
){
  sqlite3_stmt *pStmt = 0;
  int rc = undoOpen(pCtx, 0, 0);
  if( rc || pCtx->pUndoDb==0 ) return rc;
  rc = sqlite3_prepare_v2(pCtx->pUndoDb, "SELECT gid, server,"
      " max(state='conflict'), min(created) FROM fed_undo GROUP BY gid, server"
      " ORDER BY 4, 1, 2", -1, &pStmt, 0);
  if( rc ) return rc;
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zGid = (const char*)sqlite3_column_text(pStmt, 0);
    int bCommitted = undoCommitted(pCtx, zGid);
    if( bCommitted<0 ){ rc = SQLITE_NOMEM; break; }
    if( bCommitted ) continue;
    rc = xAdd(pArg, zGid, (const char*)sqlite3_column_text(pStmt, 1),
              sqlite3_column_int(pStmt, 2) ? "conflict" : "compensate",
              sqlite3_column_int64(pStmt, 3));
  }
  sqlite3_finalize(pStmt);
  return rc;
}
