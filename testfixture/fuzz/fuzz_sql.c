/*
** fuzz_sql.c: libFuzzer target for CREATE VIRTUAL TABLE ... USING
** postgres(<input>) and the planner behind it (ext/vtab.c, ext/plan.c,
** vtab/postgres/types.c and deparse.c and xPushable/xOrderable), without a
** network.
**
** Input: "<module arguments>" optionally followed by a NUL byte and
** selector bytes.  Each input gets a fresh in-memory database with
** federate and a server 's' (host=127.0.0.1 port=1).  The arguments also
** go to fed_server() as an options string.  When they mention columns (so
** that xCreate declares the table from columns= and asks no remote
** catalog), the table is created and the queries below are planned with
** EXPLAIN QUERY PLAN, which runs xBestIndex but never xFilter: one query
** per selector byte (template b % N_QUERY on column b / N_QUERY), or every
** template on the first column and a few on the others when there are no
** selector bytes.  Then the table is renamed and dropped, and the database
** closed, which must succeed.
**
** Nothing here may reach a server.  Besides running only EXPLAIN, this
** program defines libpq's connection calls (pgConnect uses
** PQconnectdbParams) in place of libpq's own: each returns a connection
** that failed on a socket path that does not exist.  They are hidden
** symbols, so libpq's internal calls still reach libpq.
*/
#define _GNU_SOURCE              /* RTLD_NEXT */
#include "federate.h"
#include <dlfcn.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *zWhat, const char *zDetail){
  fprintf(stderr, "fuzz_sql: %s: %s\n", zWhat, zDetail ? zDetail : "");
  abort();
}

/* A connection that failed without leaving the machine: libpq's own
** PQconnectdb or PQconnectStart on a socket directory that is not there. */
static PGconn *refused(int bStart){
  static const char *zNowhere = "host=/nonexistent/federate-fuzz port=1";
  PGconn *(*xConnect)(const char*);
  xConnect = (PGconn*(*)(const char*))dlsym(RTLD_NEXT,
                                  bStart ? "PQconnectStart" : "PQconnectdb");
  if( xConnect==0 ) fail("dlsym", dlerror());
  return xConnect(zNowhere);
}
PGconn *PQconnectdbParams(
  const char *const *azKey, const char *const *azVal, int bExpand
){
  (void)azKey; (void)azVal; (void)bExpand;
  return refused(0);
}
PGconn *PQconnectStartParams(
  const char *const *azKey, const char *const *azVal, int bExpand
){
  (void)azKey; (void)azVal; (void)bExpand;
  return refused(1);
}
PGconn *PQconnectdb(const char *zInfo){ (void)zInfo; return refused(0); }
PGconn *PQconnectStart(const char *zInfo){ (void)zInfo; return refused(1); }
PGconn *PQsetdbLogin(
  const char *zHost, const char *zPort, const char *zOpt, const char *zTty,
  const char *zDb, const char *zUser, const char *zPw
){
  (void)zHost; (void)zPort; (void)zOpt; (void)zTty; (void)zDb; (void)zUser;
  (void)zPw;
  return refused(0);
}

/* Queries to plan; @A is the chosen column, @B the next one. */
static const char *const azQuery[] = {
  "SELECT * FROM t WHERE @A = 1",
  "SELECT * FROM t WHERE @A > 'm' AND @A <= 10 ORDER BY @A DESC"
      " LIMIT 3 OFFSET 1",
  "SELECT * FROM t WHERE @A IN (1, 'two', 3.5, NULL, x'00')",
  "SELECT * FROM t WHERE @A LIKE 'a%' OR @B GLOB '*b?'",
  "SELECT * FROM t WHERE @A IS NULL AND @B IS NOT 5",
  "SELECT * FROM t WHERE @A != ?1 AND @B IS ?2",
  "SELECT @A FROM t WHERE @A NOT NULL ORDER BY 1 LIMIT ?1",
  "SELECT * FROM t AS a JOIN t AS b ON a.@A = b.@B",
  "SELECT * FROM (VALUES(1),(2)) AS v JOIN t ON t.@A = v.column1",
  "SELECT count(*) FROM t WHERE @A IN (SELECT value FROM json_each('[1,2]'))",
  "SELECT * FROM t WHERE @A >= ?1 AND @A < ?2 AND @B = ?3"
      " ORDER BY @B, @A DESC LIMIT 10 OFFSET 20",
  "SELECT * FROM t WHERE rowid = 5 OR rowid > 100",
  "SELECT * FROM t ORDER BY @A COLLATE NOCASE LIMIT 2",
  "SELECT * FROM t WHERE @A = lower(@B) LIMIT 1 OFFSET 1",
  "UPDATE t SET @A = 1 WHERE @B > 2",
  "DELETE FROM t WHERE @A IN (1, 2) AND @B LIKE '%x'",
};
#define N_QUERY (int)(sizeof(azQuery)/sizeof(azQuery[0]))

/* Plan query iQuery on columns iCol and iCol+1 (mod nCol). */
static void planQuery(sqlite3 *db, char **azCol, int nCol, int iQuery,
                      int iCol){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *pSql = sqlite3_str_new(db);
  const char *z;
  char *zSql;
  sqlite3_str_appendall(pSql, "EXPLAIN QUERY PLAN ");
  for(z=azQuery[iQuery]; *z; z++){
    if( z[0]=='@' && (z[1]=='A' || z[1]=='B') ){
      sqlite3_str_appendf(pSql, "\"%w\"", azCol[(iCol + (z[1]=='B')) % nCol]);
      z++;
    }else{
      sqlite3_str_appendchar(pSql, 1, *z);
    }
  }
  zSql = sqlite3_str_finish(pSql);
  if( zSql && sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
    while( sqlite3_step(pStmt)==SQLITE_ROW ){}
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
}

/* Create table t from the arguments and plan queries on it. */
static void createAndPlan(sqlite3 *db, const char *zArgs,
                          const uint8_t *aSel, int nSel){
  sqlite3_stmt *pStmt = 0;
  char *azCol[64];
  int nCol = 0, i;
  char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING postgres(%s)",
                               zArgs);
  int rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return;

  sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('t')", -1,
                     &pStmt, 0);
  while( nCol<64 && sqlite3_step(pStmt)==SQLITE_ROW ){
    azCol[nCol++] = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
  }
  sqlite3_finalize(pStmt);
  if( nCol==0 ) fail("a created table has no columns", zArgs);

  if( nSel>0 ){
    for(i=0; i<nSel && i<64; i++){
      planQuery(db, azCol, nCol, aSel[i] % N_QUERY, aSel[i] / N_QUERY);
    }
  }else{
    for(i=0; i<N_QUERY; i++) planQuery(db, azCol, nCol, i, 0);
    for(i=1; i<nCol && i<4; i++) planQuery(db, azCol, nCol, i*3 % N_QUERY, i);
  }
  for(i=0; i<nCol; i++) sqlite3_free(azCol[i]);

  sqlite3_exec(db, "ALTER TABLE t RENAME TO t2", 0, 0, 0);
  sqlite3_exec(db, "DROP TABLE IF EXISTS t2; DROP TABLE IF EXISTS t", 0, 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  char *zErr = 0;
  char *zArgs;
  size_t nArgs;
  int rc;

  if( nData>4096 ) return 0;
  for(nArgs=0; nArgs<nData && aData[nArgs]; nArgs++){}
  zArgs = malloc(nArgs+1);
  if( zArgs==0 ) return 0;
  memcpy(zArgs, aData, nArgs);
  zArgs[nArgs] = 0;

  if( sqlite3_open(":memory:", &db)!=SQLITE_OK ) fail("sqlite3_open", 0);
  rc = sqlite3_federate_init(db, &zErr, 0);
  if( rc!=SQLITE_OK ) fail("sqlite3_federate_init", zErr);
  rc = sqlite3_exec(db, "SELECT fed_server('s', 'postgres',"
                    " 'host=127.0.0.1 port=1')", 0, 0, &zErr);
  if( rc!=SQLITE_OK ) fail("fed_server", zErr);

  /* The arguments as the options of another server. */
  if( sqlite3_prepare_v2(db, "SELECT fed_server('o', 'postgres', 'host=x',"
                         " ?1)", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zArgs, -1, SQLITE_STATIC);
    sqlite3_step(pStmt);
  }
  sqlite3_finalize(pStmt);

  if( sqlite3_strlike("%columns%", zArgs, 0)==0 ){
    if( nArgs<nData ){
      createAndPlan(db, zArgs, &aData[nArgs+1], (int)(nData-nArgs-1));
    }else{
      createAndPlan(db, zArgs, 0, 0);
    }
  }

  rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ) fail("sqlite3_close", sqlite3_errstr(rc));
  free(zArgs);
  return 0;
}
