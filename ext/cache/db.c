/*
** cache/db.c: the cache database: opening a cache_db file, which is
** untrusted input (application_id, user_version, schema and objects are
** checked before use), its schema, the per-table row tables, and the SQL
** function fed_cache_col()/fed_cache_rowid() that copy a store's row in.
*/
#include "cacheInt.h"

/**************************************************************************
** The cache database.
*/

/* fed_cache_col(i): column i of the cursor being filled. */
static void cacheColFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedCacheDb *pDb = (FedCacheDb*)sqlite3_user_data(ctx);
  FedCursor *pCsr = pDb->pFillCsr;
  (void)argc;
  if( pCsr==0 ) return;
  pCsr->pTab->pStore->xColumn(pCsr, ctx, sqlite3_value_int(argv[0]));
}

/* fed_cache_rowid(): the rowid of the cursor being filled. */
static void cacheRowidFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedCacheDb *pDb = (FedCacheDb*)sqlite3_user_data(ctx);
  FedCursor *pCsr = pDb->pFillCsr;
  i64 iRowid = 0;
  (void)argc; (void)argv;
  if( pCsr==0 || pCsr->pTab->iPk>=0 ) return;
  if( pCsr->pTab->pStore->xRowid(pCsr, &iRowid)==SQLITE_OK ){
    sqlite3_result_int64(ctx, iRowid);
  }
}

int fedCacheExec(FedCacheDb *pDb, const char *zSql){
  return sqlite3_exec(pDb->db, zSql, 0, 0, 0);
}

static void cacheDbClose(FedCacheDb *pDb){
  if( pDb==0 ) return;
  sqlite3_close_v2(pDb->db);
  sqlite3_free(pDb->zPath);
  sqlite3_free(pDb);
}

void fedCacheFree(FedContext *pCtx){
  while( pCtx->pCacheDb ){
    FedCacheDb *p = pCtx->pCacheDb;
    pCtx->pCacheDb = p->pNext;
    cacheDbClose(p);
  }
  while( pCtx->pCacheStat ){
    FedCacheStat *p = pCtx->pCacheStat;
    pCtx->pCacheStat = p->pNext;
    sqlite3_free(p->zName);
    sqlite3_free(p);
  }
}

/* Drop every table of cache database pDb (a federate cache of another
** format), in one transaction. */
static int cacheReformat(FedCacheDb *pDb){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *s = sqlite3_str_new(0);
  char *zSql;
  int rc;
  sqlite3_str_appendall(s, "BEGIN IMMEDIATE;");
  rc = sqlite3_prepare_v2(pDb->db, "SELECT name FROM sqlite_schema"
      " WHERE type='table' AND name LIKE 'fed\\_cache\\_%' ESCAPE '\\'", -1,
      &pStmt, 0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_str_appendf(s, "DROP TABLE \"%w\";",
                        (const char*)sqlite3_column_text(pStmt, 0));
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  sqlite3_str_appendall(s, "COMMIT;");
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    rc = fedCacheExec(pDb, zSql);
    if( rc ) fedCacheExec(pDb, "ROLLBACK");
  }
  sqlite3_free(zSql);
  return rc;
}

/* Open (or find) the cache database for zPath. */
static int cacheDbOpen(FedContext *pCtx, const char *zWho, const char *zPath,
                       FedCacheDb **ppDb, char **pzErr){
  FedCacheDb *pDb;
  sqlite3_stmt *pStmt = 0;
  int rc, bMem = strcmp(zPath, ":memory:")==0;
  int iAppId = 0, nTable = 0, iFormat = 0;

  for(pDb=pCtx->pCacheDb; pDb; pDb=pDb->pNext){
    if( strcmp(pDb->zPath, zPath)==0 ){ *ppDb = pDb; return SQLITE_OK; }
  }
  pDb = sqlite3_malloc64(sizeof(*pDb));
  if( pDb==0 ) return SQLITE_NOMEM;
  memset(pDb, 0, sizeof(*pDb));
  pDb->zPath = fedStrdup(zPath, -1);
  if( pDb->zPath==0 ){ sqlite3_free(pDb); return SQLITE_NOMEM; }
  /* No mutex of its own: it is only used inside calls on the owning
  ** connection, which hold that connection's mutex. */
  rc = sqlite3_open_v2(zPath, &pDb->db,
      SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE|SQLITE_OPEN_NOMUTEX, 0);
  if( rc==SQLITE_OK ){
    /* A file that is some other application's database is refused, so
    ** that a table option cannot make federate write into it. */
    rc = sqlite3_prepare_v2(pDb->db, "SELECT (SELECT application_id FROM"
        " pragma_application_id), (SELECT count(*) FROM sqlite_schema),"
        " (SELECT user_version FROM pragma_user_version)", -1, &pStmt, 0);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      iAppId = sqlite3_column_int(pStmt, 0);
      nTable = sqlite3_column_int(pStmt, 1);
      iFormat = sqlite3_column_int(pStmt, 2);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && nTable>0 && iAppId!=CACHE_APP_ID ){
    fedSetError(pzErr, "%s: cache database \"%s\" is not a federate cache"
                " (it holds other tables); name a new file", zWho, zPath);
    cacheDbClose(pDb);
    return SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    sqlite3_busy_timeout(pDb->db, 200);
    if( !bMem ){
      /* A crash of this process never loses a committed fill (WAL); a
      ** power failure may lose the last ones, which is only a miss. */
      rc = fedCacheExec(pDb,
          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
          " PRAGMA mmap_size=1073741824");
    }
  }
  if( rc==SQLITE_OK && nTable>0 && iFormat!=CACHE_FORMAT ){
    /* A cache written by another version of federate: its rows cannot be
    ** read, so it starts again empty (it is only a cache). */
    rc = cacheReformat(pDb);
    nTable = 0;
  }
  if( rc==SQLITE_OK && nTable==0 ){
    /* A new cache: its schema (an existing one already has it; opening
    ** it writes nothing). */
    char *zSql = sqlite3_mprintf(
      "PRAGMA application_id=%d; PRAGMA user_version=%d;"
      "CREATE TABLE IF NOT EXISTS fed_cache_table(tid INTEGER PRIMARY KEY,"
      " tkey TEXT NOT NULL UNIQUE, name TEXT, server TEXT, ncol INTEGER);"
      "CREATE TABLE IF NOT EXISTS fed_cache_entry(id INTEGER PRIMARY KEY,"
      " tid INTEGER NOT NULL, qkey TEXT NOT NULL, cols INTEGER NOT NULL,"
      " nterm INTEGER NOT NULL, blimit INTEGER NOT NULL,"
      " created INTEGER NOT NULL, used INTEGER NOT NULL,"
      " nbytes INTEGER NOT NULL, nrow INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS fed_cache_entry_q"
      " ON fed_cache_entry(tid, qkey);"
      "CREATE TABLE IF NOT EXISTS fed_cache_term(entry INTEGER NOT NULL,"
      " termno INTEGER NOT NULL, col INTEGER NOT NULL, op INTEGER NOT NULL,"
      " val);"
      "CREATE INDEX IF NOT EXISTS fed_cache_term_e"
      " ON fed_cache_term(entry, termno);", CACHE_APP_ID, CACHE_FORMAT);
    if( zSql==0 ) rc = SQLITE_NOMEM;
    else{
      rc = fedCacheExec(pDb, zSql);
      sqlite3_free(zSql);
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_col", 1, SQLITE_UTF8,
                                 pDb, cacheColFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_rowid", 0, SQLITE_UTF8,
                                 pDb, cacheRowidFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_rec", -1,
                                 SQLITE_UTF8|SQLITE_DETERMINISTIC, 0,
                                 fedCacheRecFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_val", 2,
                                 SQLITE_UTF8|SQLITE_DETERMINISTIC, 0,
                                 fedCacheValFunc, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_NOMEM ){
      int rc2 = pDb->db ? sqlite3_errcode(pDb->db) : rc;
      fedSetError(pzErr, "%s: cannot open cache database \"%s\": %s", zWho,
                  zPath, pDb->db ? sqlite3_errmsg(pDb->db)
                                 : sqlite3_errstr(rc));
      if( rc2==SQLITE_NOMEM ) rc = SQLITE_NOMEM;
      else rc = SQLITE_ERROR;
    }
    cacheDbClose(pDb);
    return rc;
  }
  pDb->pNext = pCtx->pCacheDb;
  pCtx->pCacheDb = pDb;
  *ppDb = pDb;
  return SQLITE_OK;
}

/* The table's identity in the cache database: store, DSN, remote name and
** columns, so that a redefined server or table never reads old rows. */
char *fedCacheTableKey(FedTable *pTab){
  char *zCols = fedColumnsRender(pTab->aCol, pTab->nCol);
  char *zKey;
  if( zCols==0 ) return 0;
  zKey = sqlite3_mprintf("%s\n%s\n%s\n%s", pTab->pStore->zName,
                         pTab->pServer ? pTab->pServer->zDsn : "",
                         pTab->zRemote ? pTab->zRemote : pTab->zName, zCols);
  sqlite3_free(zCols);
  return zKey;
}

/* The prefix of fedCacheTableKey() that names the remote relation whatever
** its column list: "store\ndsn\nremote\n". */
char *fedCacheRelKey(FedTable *pTab){
  return sqlite3_mprintf("%s\n%s\n%s\n", pTab->pStore->zName,
                         pTab->pServer ? pTab->pServer->zDsn : "",
                         pTab->zRemote ? pTab->zRemote : pTab->zName);
}

/* Make sure pCT has its cache database and its tid.  SQLITE_OK, or an
** error (a cache database that cannot be opened is the user's to fix). */
int fedCacheTabReady(FedCacheTab *pCT, char **pzErr){
  FedTable *pTab = pCT->pTab;
  sqlite3_stmt *pStmt = 0;
  char *zKey, *zSql;
  int rc;
  if( pCT->iTid ) return SQLITE_OK;
  if( pCT->pDb==0 ){
    rc = cacheDbOpen(pTab->pCtx, pTab->pStore->zName, pCT->zDbPath, &pCT->pDb,
                     pzErr);
    if( rc ) return rc;
  }
  if( pTab->pServer==0 ){
    rc = fedServerFind(pTab->pCtx, pTab->zServer, &pTab->pServer, pzErr);
    if( rc ) return rc;
  }
  zKey = fedCacheTableKey(pTab);
  if( zKey==0 ) return SQLITE_NOMEM;
  /* Usually the table is known: a read.  Else insert it and its rows
  ** table. */
  rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT tid FROM fed_cache_table"
      " WHERE tkey=?1", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      pCT->iTid = sqlite3_column_int64(pStmt, 0);
    }
    rc = sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && pCT->iTid==0 ){
    /* The row and its table together, or neither. */
    rc = fedCacheExec(pCT->pDb, "SAVEPOINT fed_cache_tid");
  }
  if( rc==SQLITE_OK && pCT->iTid==0 ){
    rc = sqlite3_prepare_v2(pCT->pDb->db, "INSERT INTO fed_cache_table(tkey,"
        " name, server, ncol) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(tkey) DO"
        " UPDATE SET name=excluded.name RETURNING tid", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      char *zName = sqlite3_mprintf("%s.%s", pTab->zSchema, pTab->zName);
      sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zName, -1, sqlite3_free);
      sqlite3_bind_text(pStmt, 3, pTab->zServer, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 4, pTab->nCol);
      if( sqlite3_step(pStmt)==SQLITE_ROW ){
        pCT->iTid = sqlite3_column_int64(pStmt, 0);
      }
      rc = sqlite3_finalize(pStmt);
    }
    if( rc==SQLITE_OK && pCT->iTid ){
      sqlite3_str *s = sqlite3_str_new(0);
      sqlite3_str_appendf(s, "CREATE TABLE IF NOT EXISTS fed_cache_r%lld(rid,"
                          " rec)", pCT->iTid);
      zSql = sqlite3_str_finish(s);
      if( zSql==0 ) rc = SQLITE_NOMEM;
      else{
        rc = fedCacheExec(pCT->pDb, zSql);
        sqlite3_free(zSql);
      }
    }
    if( rc!=SQLITE_OK ){
      fedCacheExec(pCT->pDb, "ROLLBACK TO fed_cache_tid");
      pCT->iTid = 0;
    }
    fedCacheExec(pCT->pDb, "RELEASE fed_cache_tid");
  }
  sqlite3_free(zKey);
  if( rc!=SQLITE_OK || pCT->iTid==0 ){
    pCT->iTid = 0;
    if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
    if( rc!=SQLITE_NOMEM && sqlite3_errcode(pCT->pDb->db)==SQLITE_NOMEM ){
      rc = SQLITE_NOMEM;
    }
    if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "%s: cache database \"%s\": %s",
                  pTab->pStore->zName, pCT->zDbPath,
                  sqlite3_errmsg(pCT->pDb->db));
    }
  }
  return rc;
}
