/*
** saga.c: sagas, for business steps that must not hold locks across
** servers while they run.
**
**   SELECT fed_saga('user_registration', json('[
**     {"do": "INSERT INTO users(id, name) VALUES (7, ''john'')",
**      "undo": "DELETE FROM users WHERE id = 7"},
**     {"do": "INSERT INTO prefs(user_id) VALUES (7)",
**      "undo": "DELETE FROM prefs WHERE user_id = 7"},
**     {"do": "UPDATE users SET status = ''active'' WHERE id = 7"}]'));
**
** Each step's "do" runs in a transaction of its own, together with the
** row that marks the step done; when a step fails, the "undo" of every
** completed step runs, newest first, each in a transaction together with
** the row that marks it compensated, so that it runs exactly once.  With a
** two-phase server (PostgreSQL) the mark and the step commit atomically
** (the SQLite file is a participant); a crash in the middle is finished by
** fed_recover(), which compensates every saga left running.
**
**   main.fed_sagas(id, name, steps, state, error, created, updated)
**        state: running, done, compensating, compensated, failed
**        (failed: a compensation failed; fed_recover() retries it)
**   main.fed_saga_steps(saga, step, state, error)
**        state: pending, done, failed, compensated
**
** fed_saga() returns the saga's id, or fails with the failing step's
** error once its compensations have run.
*/
#include "fedInt.h"
#include <time.h>

static const char zSagaSchema[] =
  "CREATE TABLE IF NOT EXISTS main.fed_sagas(id INTEGER PRIMARY KEY,"
  " name TEXT NOT NULL, steps TEXT NOT NULL, state TEXT NOT NULL,"
  " error TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
  "CREATE TABLE IF NOT EXISTS main.fed_saga_steps(saga INTEGER NOT NULL,"
  " step INTEGER NOT NULL, state TEXT NOT NULL, error TEXT,"
  " PRIMARY KEY(saga, step));";

int fedSagaSchema(sqlite3 *db){
  return sqlite3_exec(db, zSagaSchema, 0, 0, 0);
}

/* Run printf-formatted SQL; returns an SQLite code. */
static int sagaExec(sqlite3 *db, const char *zFmt, ...){
  va_list ap;
  char *zSql;
  int rc;
  va_start(ap, zFmt);
  zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  return rc;
}

/*
** Run zStep and zMark as one transaction in which SQLite's own tables are
** a participant.  On error *pzErr gets the message and nothing of it
** remains.
*/
static int sagaAtomic(
  FedContext *pCtx, const char *zStep, const char *zMark, char **pzErr
){
  sqlite3 *db = pCtx->db;
  int rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_exec(db, zStep, 0, 0, 0);
    if( rc==SQLITE_OK ) rc = sqlite3_exec(db, zMark, 0, 0, 0);
    if( rc==SQLITE_OK ){
      pCtx->bLocalParticipant = 1;
      rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
      pCtx->bLocalParticipant = 0;
    }
  }
  if( rc!=SQLITE_OK ){
    fedSetError(pzErr, "%s", sqlite3_errmsg(db));
    if( !sqlite3_get_autocommit(db) ) sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  }
  return rc;
}

/*
** A compensation that fed_recover() reads back from the file is SQL that
** whoever made the file wrote: it runs only if it is one INSERT, UPDATE or
** DELETE that writes a virtual table (a federate store) and calls no
** function at all (so neither fed_exec(), load_extension(), nor a host's
** readfile()/writefile(); LIKE and GLOB are functions too) and opens no
** ordinary table for writing.  Told by the statement's EXPLAIN listing:
** Function/PureFunc/AggStep* and OpenWrite refuse, VUpdate is required.
** Returns SQLITE_OK, or SQLITE_ERROR with *pzErr saying why (also for a
** statement that does not prepare); SQLITE_NOMEM.
*/
static int sagaUndoCheck(sqlite3 *db, const char *zUndo, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  const char *zTail = 0;
  const char *zWhy = 0;
  char *zSql = sqlite3_mprintf("EXPLAIN %s", zUndo);
  int rc, bWrite = 0;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, &zTail);
  if( rc==SQLITE_NOMEM ){
    sqlite3_free(zSql);
    return rc;
  }
  if( rc!=SQLITE_OK || pStmt==0 ){
    zWhy = "it does not prepare";
  }else{
    while( zTail && (*zTail==' ' || *zTail=='\t' || *zTail=='\n'
                     || *zTail=='\r' || *zTail==';') ){
      zTail++;
    }
    if( zTail && *zTail ) zWhy = "it is more than one statement";
  }
  while( zWhy==0 && (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    const char *zOp = (const char*)sqlite3_column_text(pStmt, 1);
    if( zOp==0 ) continue;
    if( strcmp(zOp, "Function")==0 || strcmp(zOp, "PureFunc")==0
     || strncmp(zOp, "AggStep", 7)==0 ){
      zWhy = "it calls a function";
    }else if( strcmp(zOp, "OpenWrite")==0 ){
      zWhy = "it writes an ordinary table";
    }else if( strcmp(zOp, "VUpdate")==0 ){
      bWrite = 1;
    }
  }
  if( zWhy==0 && rc==SQLITE_NOMEM ){
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
    return SQLITE_NOMEM;
  }
  if( zWhy==0 && !bWrite ) zWhy = "it writes no virtual table";
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  if( zWhy==0 ) return SQLITE_OK;
  fedSetError(pzErr, "fed_recover: refused to run a compensation read from"
      " the database file (%s): %s; only one INSERT, UPDATE or DELETE of a"
      " federate table, calling no function, runs from a file"
      " (docs/security.md)", zWhy, zUndo);
  return SQLITE_ERROR;
}

/*
** Compensate saga iSaga: undo every step marked done, newest first.
** Returns SQLITE_OK when all are compensated (state compensated), else an
** error with the saga left "failed" for fed_recover() to retry.  bFromFile:
** the compensations are run by fed_recover() (they come from the file, not
** from this call's arguments): each must pass sagaUndoCheck() first, and
** none runs unless all do (unless fed_config('saga_recovery','any')).
*/
static int sagaCompensate(
  FedContext *pCtx, i64 iSaga, int bFromFile, char **pzErr
){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  int rc;
  i64 now = (i64)time(0);
  rc = sagaExec(db, "UPDATE main.fed_sagas SET state='compensating',"
                " updated=%lld WHERE id=%lld", now, iSaga);
  if( rc!=SQLITE_OK ) return rc;
  rc = sqlite3_prepare_v2(db,
      "SELECT s.step, json_extract(j.value, '$.undo')"
      "  FROM main.fed_saga_steps s, main.fed_sagas g,"
      "       json_each(g.steps) j"
      " WHERE s.saga=?1 AND g.id=?1 AND j.key=s.step AND s.state='done'"
      " ORDER BY s.step DESC", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, iSaga);
  /* Read the list first: the compensations write the same tables. */
  {
    int *aStep = 0;
    char **azUndo = 0;
    int n = 0, i;
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      int *a = sqlite3_realloc64(aStep, sizeof(int)*(n+1));
      char **az = a ? sqlite3_realloc64(azUndo, sizeof(char*)*(n+1)) : 0;
      if( a ) aStep = a;
      if( az==0 ){ rc = SQLITE_NOMEM; break; }
      azUndo = az;
      aStep[n] = sqlite3_column_int(pStmt, 0);
      azUndo[n] = 0;
      if( sqlite3_column_type(pStmt, 1)!=SQLITE_NULL ){
        azUndo[n] = fedStrdup((const char*)sqlite3_column_text(pStmt, 1), -1);
        if( azUndo[n]==0 ) rc = SQLITE_NOMEM;
      }
      n++;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ){
      rc = sqlite3_errcode(db);
    }
    for(i=0; bFromFile && !pCtx->bSagaAnyUndo && rc==SQLITE_OK && i<n; i++){
      if( azUndo[i]==0 ) continue;
      rc = sagaUndoCheck(db, azUndo[i], pzErr);
      if( rc==SQLITE_ERROR ){
        sagaExec(db, "UPDATE main.fed_sagas SET state='failed',"
                 " error=%Q, updated=%lld WHERE id=%lld",
                 *pzErr, (i64)time(0), iSaga);
      }
    }
    for(i=0; rc==SQLITE_OK && i<n; i++){
      char *zMark = sqlite3_mprintf("UPDATE main.fed_saga_steps SET"
          " state='compensated' WHERE saga=%lld AND step=%d", iSaga, aStep[i]);
      if( zMark==0 ) rc = SQLITE_NOMEM;
      if( rc==SQLITE_OK ){
        rc = sagaAtomic(pCtx, azUndo[i] ? azUndo[i] : "", zMark, pzErr);
        if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
          sagaExec(db, "UPDATE main.fed_saga_steps SET error=%Q"
                   " WHERE saga=%lld AND step=%d", *pzErr, iSaga, aStep[i]);
          sagaExec(db, "UPDATE main.fed_sagas SET state='failed',"
                   " error=%Q, updated=%lld WHERE id=%lld",
                   *pzErr, (i64)time(0), iSaga);
        }
      }
      sqlite3_free(zMark);
    }
    for(i=0; i<n; i++) sqlite3_free(azUndo[i]);
    sqlite3_free(azUndo);
    sqlite3_free(aStep);
  }
  if( rc==SQLITE_OK ){
    rc = sagaExec(db, "UPDATE main.fed_sagas SET state='compensated',"
                  " updated=%lld WHERE id=%lld", (i64)time(0), iSaga);
  }
  return rc;
}

static void sagaFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  sqlite3 *db = pCtx->db;
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  const char *zSteps = (const char*)sqlite3_value_text(argv[1]);
  sqlite3_stmt *pStmt = 0;
  char *zErr = 0;
  i64 iSaga = 0, now = (i64)time(0);
  int nStep = 0, iStep, rc;
  (void)argc;

  if( zName==0 || zSteps==0 ){
    sqlite3_result_error(ctx, "fed_saga: usage: fed_saga(name, steps_json)",
                         -1);
    return;
  }
  if( !sqlite3_get_autocommit(db) ){
    sqlite3_result_error(ctx, "fed_saga: each step commits on its own: call"
                         " it outside BEGIN...COMMIT", -1);
    return;
  }
  rc = fedSchemaGuard(pCtx, "fed_saga", &zErr);
  if( rc!=SQLITE_OK ){
    fedResultError(ctx, rc, zErr);
    sqlite3_free(zErr);
    return;
  }
  /* Every step needs "do" text; "undo", when given, is text. */
  rc = sqlite3_prepare_v2(db, "SELECT count(*),"
      " sum(json_type(value, '$.do') IS NOT 'text'"
      "     OR json_type(value, '$.undo') NOT IN ('text', 'null')"
      "     AND json_type(value, '$.undo') IS NOT NULL)"
      " FROM json_each(?1) WHERE json_type(?1)='array'", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zSteps, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      nStep = sqlite3_column_int(pStmt, 0);
      if( sqlite3_column_int(pStmt, 1)>0 ) nStep = -1;
    }
    rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_result_error(ctx, "fed_saga: steps must be a JSON array", -1);
    return;
  }
  if( nStep<=0 ){
    sqlite3_result_error(ctx, "fed_saga: steps must be a JSON array of"
        " objects {\"do\": SQL [, \"undo\": SQL]}", -1);
    return;
  }

  rc = sqlite3_exec(db, zSagaSchema, 0, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_exec(db, "BEGIN", 0, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sagaExec(db, "INSERT INTO main.fed_sagas(name, steps, state,"
                  " created, updated) VALUES(%Q, %Q, 'running', %lld, %lld)",
                  zName, zSteps, now, now);
    iSaga = sqlite3_last_insert_rowid(db);
    for(iStep=0; rc==SQLITE_OK && iStep<nStep; iStep++){
      rc = sagaExec(db, "INSERT INTO main.fed_saga_steps(saga, step, state)"
                    " VALUES(%lld, %d, 'pending')", iSaga, iStep);
    }
    rc = sqlite3_exec(db, rc==SQLITE_OK ? "COMMIT" : "ROLLBACK", 0, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_result_error_code(ctx, rc);
    return;
  }

  for(iStep=0; iStep<nStep; iStep++){
    char *zDo = 0, *zMark;
    rc = sqlite3_prepare_v2(db, "SELECT json_extract(?1, '$[' || ?2 || '].do')",
                            -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zSteps, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 2, iStep);
      if( sqlite3_step(pStmt)==SQLITE_ROW ){
        zDo = fedStrdup((const char*)sqlite3_column_text(pStmt, 0), -1);
      }
      rc = sqlite3_finalize(pStmt);
    }
    zMark = sqlite3_mprintf("UPDATE main.fed_saga_steps SET state='done'"
                            " WHERE saga=%lld AND step=%d", iSaga, iStep);
    if( rc==SQLITE_OK && (zDo==0 || zMark==0) ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ) rc = sagaAtomic(pCtx, zDo, zMark, &zErr);
    sqlite3_free(zDo);
    sqlite3_free(zMark);
    if( rc!=SQLITE_OK ) break;
  }

  if( iStep==nStep ){
    sagaExec(db, "UPDATE main.fed_sagas SET state='done', updated=%lld"
             " WHERE id=%lld", (i64)time(0), iSaga);
    sqlite3_result_int64(ctx, iSaga);
  }else{
    char *zComp = 0;
    char *zMsg;
    sagaExec(db, "UPDATE main.fed_saga_steps SET state='failed', error=%Q"
             " WHERE saga=%lld AND step=%d", zErr, iSaga, iStep);
    sagaExec(db, "UPDATE main.fed_sagas SET error=%Q WHERE id=%lld", zErr,
             iSaga);
    rc = sagaCompensate(pCtx, iSaga, 0, &zComp);
    zMsg = sqlite3_mprintf("fed_saga: step %d of saga \"%s\" failed: %s;"
        " %s", iStep+1, zName, zErr ? zErr : "out of memory",
        rc==SQLITE_OK ? (iStep==0 ? "no step to compensate"
                         : "the completed steps were compensated")
                      : "a compensation failed too (fed_recover() retries"
                        " it): see fed_sagas");
    sqlite3_result_error(ctx, zMsg ? zMsg : "fed_saga: out of memory", -1);
    sqlite3_free(zMsg);
    sqlite3_free(zComp);
  }
  sqlite3_free(zErr);
}

/*
** Compensate every saga that a crash left running or compensating, and
** retry failed compensations.  Returns how many sagas it finished, or -1.
*/
int fedSagaRecover(FedContext *pCtx){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  int nDone = 0, rc;
  for(;;){
    i64 iSaga;
    char *zErr = 0;
    /* One at a time: a saga whose compensation fails again is "failed"
    ** and is not picked twice in one call. */
    rc = sqlite3_prepare_v2(db, "SELECT id FROM main.fed_sagas WHERE state IN"
        " ('running', 'compensating') OR (state='failed' AND id>?1)"
        " ORDER BY state='failed', id LIMIT 1", -1, &pStmt, 0);
    if( rc!=SQLITE_OK ) return rc==SQLITE_NOMEM ? -1 : nDone;
    sqlite3_bind_int64(pStmt, 1, pCtx->iSagaSeen);
    if( sqlite3_step(pStmt)!=SQLITE_ROW ){
      sqlite3_finalize(pStmt);
      break;
    }
    iSaga = sqlite3_column_int64(pStmt, 0);
    sqlite3_finalize(pStmt);
    if( iSaga>pCtx->iSagaSeen ) pCtx->iSagaSeen = iSaga;
    if( sagaCompensate(pCtx, iSaga, 1, &zErr)==SQLITE_OK ) nDone++;
    sqlite3_free(zErr);
  }
  pCtx->iSagaSeen = 0;
  return nDone;
}

int fedSagaRegister(sqlite3 *db, FedContext *pCtx){
  return sqlite3_create_function(db, "fed_saga", 2,
      SQLITE_UTF8 | SQLITE_DIRECTONLY, pCtx, sagaFunc, 0, 0);
}
