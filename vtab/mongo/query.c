/*
** query.c: the MongoDB store's pass-through (xQuery): a database command
** written as extended JSON, run as it is.
**
**   SELECT row FROM fed_query('m', '{"find": "c", "filter": {"a": 1}}');
**   SELECT row FROM fed_query('m', '{"aggregate": "c", "pipeline": [],
**                                    "cursor": {}}');
**   SELECT fed_exec('m', '{"insert": "c", "documents": [{"_id": 1}]}');
**
** A command whose reply holds a cursor (find, aggregate, listCollections,
** ...) gives one row per document, the cursor followed to its end
** (getMore); any other command gives its reply as the one row.  Rows are
** relaxed extended JSON, as the doc column.  "$db" in the command names
** its database (default: the URI's).  Transaction and session fields and
** commands, authentication and a "pwd" are refused; inside BEGIN...COMMIT
** only commands that read are run (a write sent there could not be undone
** by ROLLBACK).  docs/mongo.md, "Pass-through".
*/
#include "mongoInt.h"

/* Commands refused: federate manages sessions and transactions, and a
** password would be kept in fed_explain. */
static const char *const azRefused[] = {
  "commitTransaction", "abortTransaction", "startSession", "endSessions",
  "refreshSessions", "killSessions", "killAllSessions",
  "killAllSessionsByPattern", "authenticate", "saslStart", "saslContinue",
  "logout", "copydbgetnonce", "getnonce", 0
};
/* Fields refused anywhere at the top of a command. */
static const char *const azRefusedField[] = {
  "lsid", "txnNumber", "startTransaction", "autocommit", "pwd", 0
};
/* Commands that only read: the ones run inside a transaction. */
static const char *const azRead[] = {
  "find", "aggregate", "count", "distinct", "listCollections",
  "listIndexes", "listDatabases", "ping", "hello", "isMaster", "ismaster",
  "buildInfo", "buildinfo", "serverStatus", "dbStats", "collStats",
  "explain", "hostInfo", "connectionStatus", "getParameter", 0
};

static int inList(const char *const *az, const char *z){
  int i;
  for(i=0; az[i]; i++){
    if( strcmp(az[i], z)==0 ) return 1;
  }
  return 0;
}

/* 1 if an aggregate's pipeline writes ($out, $merge). */
static int pipelineWrites(const bson_t *pCmd){
  bson_iter_t it, arr, stage;
  if( !bson_iter_init_find(&it, pCmd, "pipeline")
   || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr) ){
    return 0;
  }
  while( bson_iter_next(&arr) ){
    if( BSON_ITER_HOLDS_DOCUMENT(&arr) && bson_iter_recurse(&arr, &stage)
     && bson_iter_next(&stage) ){
      const char *z = bson_iter_key(&stage);
      if( strcmp(z, "$out")==0 || strcmp(z, "$merge")==0 ) return 1;
    }
  }
  return 0;
}

/* Append a copy of zJson (bson_free'd here) to the rows. */
static int addRow(char *zJson, char ***pazRow, int *pnRow, int *pnAlloc){
  char *z;
  if( zJson==0 ) return SQLITE_NOMEM;
  z = sqlite3_mprintf("%s", zJson);
  bson_free(zJson);
  if( z==0 ) return SQLITE_NOMEM;
  if( *pnRow>=*pnAlloc ){
    int nNew = *pnAlloc ? *pnAlloc*2 : 16;
    char **azNew = sqlite3_realloc64(*pazRow, sizeof(char*)*nNew);
    if( azNew==0 ){
      sqlite3_free(z);
      return SQLITE_NOMEM;
    }
    *pazRow = azNew;
    *pnAlloc = nNew;
  }
  (*pazRow)[(*pnRow)++] = z;
  return SQLITE_OK;
}

/* The write errors of a reply, as "index 1: E11000 ...; ..." (or 0). */
static char *writeErrors(const bson_t *pReply){
  bson_iter_t it, arr, e;
  sqlite3_str *s;
  int n = 0;
  if( !bson_iter_init_find(&it, pReply, "writeErrors")
   || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr) ){
    return 0;
  }
  s = sqlite3_str_new(0);
  while( bson_iter_next(&arr) ){
    i64 iIdx = -1;
    const char *zMsg = "";
    if( !BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &e) ){
      continue;
    }
    while( bson_iter_next(&e) ){
      if( strcmp(bson_iter_key(&e), "index")==0 && BSON_ITER_HOLDS_NUMBER(&e) ){
        iIdx = bson_iter_as_int64(&e);
      }else if( strcmp(bson_iter_key(&e), "errmsg")==0
             && BSON_ITER_HOLDS_UTF8(&e) ){
        zMsg = bson_iter_utf8(&e, 0);
      }
    }
    sqlite3_str_appendf(s, "%sdocument %lld: %s", n++ ? "; " : "", iIdx,
                        zMsg);
  }
  if( n==0 ){
    sqlite3_free(sqlite3_str_finish(s));
    return 0;
  }
  return sqlite3_str_finish(s);
}

static int mongoQueryImpl(
  FedConn *pFedConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  MongoConn *pConn = (MongoConn*)pFedConn;
  FedServer *pServer = pFedConn->pServer;
  bson_t parsed, cmd, reply;
  bson_iter_t it;
  bson_error_t err;
  const char *zName = 0;
  char *zDb = 0, *zText;
  char *zJson;
  int rc = SQLITE_OK, nAlloc = 0, bReply = 0;
  i64 iExplain;
  uint32_t iServer;
  mongoc_server_description_t *pSd;
  (void)apParam;

  *pazRow = 0;
  *pnRow = 0;
  *pnChanged = 0;
  if( nParam>0 ){
    fedSetError(pzErr, "%s: the pass-through takes no parameters: put the"
                " values in the command (extended JSON)", MONGO_STORE);
    return SQLITE_ERROR;
  }
  if( !bson_init_from_json(&parsed, zQuery, -1, &err) ){
    fedSetError(pzErr, "%s: the command is not extended JSON: %s",
                MONGO_STORE, err.message);
    return SQLITE_ERROR;
  }
  /* The command without "$db", which names the database. */
  bson_init(&cmd);
  bson_iter_init(&it, &parsed);
  while( rc==SQLITE_OK && bson_iter_next(&it) ){
    const char *zKey = bson_iter_key(&it);
    if( strcmp(zKey, "$db")==0 ){
      if( !BSON_ITER_HOLDS_UTF8(&it) ){
        fedSetError(pzErr, "%s: \"$db\" must be a string", MONGO_STORE);
        rc = SQLITE_ERROR;
      }else{
        sqlite3_free(zDb);
        zDb = fedStrdup(bson_iter_utf8(&it, 0), -1);
        if( zDb==0 ) rc = SQLITE_NOMEM;
      }
      continue;
    }
    if( zName==0 ) zName = zKey;
    if( inList(azRefusedField, zKey) ){
      fedSetError(pzErr, "%s: the pass-through refuses \"%s\" in a command:"
          " federate manages sessions, transactions and passwords",
          MONGO_STORE, zKey);
      rc = SQLITE_ERROR;
      break;
    }
    if( !bson_append_iter(&cmd, zKey, -1, &it) ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK && zName==0 ){
    fedSetError(pzErr, "%s: the command is empty", MONGO_STORE);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    /* zName points into parsed, which lives to the end. */
    if( inList(azRefused, zName) ){
      fedSetError(pzErr, "%s: the pass-through refuses command \"%s\":"
          " federate manages sessions, transactions and authentication",
          MONGO_STORE, zName);
      rc = SQLITE_ERROR;
    }else if( pFedConn->bTxn
           && (!inList(azRead, zName)
               || (strcmp(zName, "aggregate")==0 && pipelineWrites(&cmd))) ){
      fedSetError(pzErr, "%s: command \"%s\" inside a transaction: a write"
          " through the pass-through cannot be undone by ROLLBACK; run it"
          " outside BEGIN...COMMIT", MONGO_STORE, zName);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK && zDb==0 ){
    if( pConn->zDb==0 ){
      fedSetError(pzErr, "%s: no database for command \"%s\" (put \"$db\""
          " in it, or a database in the server's URI)", MONGO_STORE, zName);
      rc = SQLITE_ERROR;
    }else{
      zDb = fedStrdup(pConn->zDb, -1);
      if( zDb==0 ) rc = SQLITE_NOMEM;
    }
  }
  if( rc ) goto done;

  zJson = bson_as_canonical_extended_json(&parsed, 0);
  zText = zJson ? sqlite3_mprintf("%s", zJson) : 0;
  bson_free(zJson);
  if( zText==0 ){ rc = SQLITE_NOMEM; goto done; }
  iExplain = fedExplainAdd(pServer->pCtx, pServer->zName, zText, 0);
  sqlite3_free(zText);

  rc = fedFault(FED_FAULT_SEND, pzErr);
  if( rc ) goto done;
  mongoStreamInterrupted(pConn);        /* No stale mark */
  pSd = mongoc_client_select_server(pConn->pClient, 1, 0, &err);
  if( pSd==0 ){
    fedSetError(pzErr, "%s: command \"%s\" on server \"%s\" failed: %s",
                MONGO_STORE, zName, pServer->zName, err.message);
    rc = SQLITE_ERROR;
    goto done;
  }
  iServer = mongoc_server_description_id(pSd);
  mongoc_server_description_destroy(pSd);
  bReply = 1;
  if( !mongoc_client_command_simple_with_server_id(pConn->pClient, zDb, &cmd,
                                                   0, iServer, &reply, &err) ){
    if( mongoStreamInterrupted(pConn) ){
      fedSetError(pzErr, "%s: command \"%s\" interrupted; the connection"
          " was closed (remote command: %s)", MONGO_STORE, zName, zName);
      rc = SQLITE_INTERRUPT;
    }else{
      fedSetError(pzErr, "%s: command \"%s\" failed: %s (remote command:"
          " %s)", MONGO_STORE, zName, err.message, zName);
      rc = SQLITE_ERROR;
    }
    goto done;
  }
  rc = fedFault(FED_FAULT_RECV, pzErr);
  if( rc ) goto done;
  {
    char *zWe = writeErrors(&reply);
    if( zWe ){
      i64 n = 0;
      if( bson_iter_init_find(&it, &reply, "n") && BSON_ITER_HOLDS_NUMBER(&it) ){
        n = bson_iter_as_int64(&it);
      }
      fedSetError(pzErr, "%s: command \"%s\" failed: %s (%lld applied before"
          " the error; remote command: %s)", MONGO_STORE, zName, zWe, n,
          zName);
      sqlite3_free(zWe);
      rc = SQLITE_ERROR;
      goto done;
    }
  }
  if( bson_iter_init_find(&it, &reply, "cursor")
   && BSON_ITER_HOLDS_DOCUMENT(&it) ){
    /* Follow the cursor: libmongoc sends the getMores. */
    bson_t opts;
    mongoc_cursor_t *pCur;
    const bson_t *pDoc;
    bson_init(&opts);
    bson_append_int32(&opts, "serverId", -1, (int32_t)iServer);
    pCur = mongoc_cursor_new_from_command_reply_with_opts(pConn->pClient,
                                                          &reply, &opts);
    bReply = 0;                 /* The cursor destroyed it */
    bson_destroy(&opts);
    while( rc==SQLITE_OK && mongoc_cursor_next(pCur, &pDoc) ){
      rc = addRow(bson_as_relaxed_extended_json(pDoc, 0), pazRow, pnRow,
                  &nAlloc);
    }
    if( rc==SQLITE_OK && mongoc_cursor_error(pCur, &err) ){
      if( mongoStreamInterrupted(pConn) ){
        fedSetError(pzErr, "%s: command \"%s\" interrupted; the connection"
            " was closed (remote command: getMore)", MONGO_STORE, zName);
        rc = SQLITE_INTERRUPT;
      }else{
        fedSetError(pzErr, "%s: command \"%s\" failed reading its cursor:"
            " %s (remote command: getMore)", MONGO_STORE, zName, err.message);
        rc = SQLITE_ERROR;
      }
    }
    mongoc_cursor_destroy(pCur);
    *pnChanged = *pnRow;
  }else{
    rc = addRow(bson_as_relaxed_extended_json(&reply, 0), pazRow, pnRow,
                &nAlloc);
    if( bson_iter_init_find(&it, &reply, "n") && BSON_ITER_HOLDS_NUMBER(&it) ){
      *pnChanged = bson_iter_as_int64(&it);
    }else{
      *pnChanged = *pnRow;
    }
  }
  if( rc==SQLITE_OK ){
    fedExplainRows(pServer->pCtx, iExplain, *pnRow, 1);
  }

done:
  if( bReply ) bson_destroy(&reply);
  bson_destroy(&cmd);
  bson_destroy(&parsed);
  sqlite3_free(zDb);
  if( rc ){
    int i;
    for(i=0; i<*pnRow; i++) sqlite3_free((*pazRow)[i]);
    sqlite3_free(*pazRow);
    *pazRow = 0;
    *pnRow = 0;
  }
  return rc;
}

int mongoQuery(FedConn *pConn, const char *zQuery, int nParam,
               sqlite3_value **apParam, char ***pazRow, int *pnRow,
               i64 *pnChanged, char **pzErr){
  return mongoRc(mongoQueryImpl(pConn, zQuery, nParam, apParam, pazRow,
                                pnRow, pnChanged, pzErr), pzErr);
}
