/*
** redis.c: the Redis store, over hiredis.  One table maps one key space
** (a key pattern) of one type onto rows.
**
**   SELECT fed_server('rd', 'redis', 'redis://127.0.0.1:6379/0',
**                     'password_env=APP_REDIS_PW, connect_timeout=5,'
**                     ' command_timeout=30');
**   CREATE VIRTUAL TABLE sess USING redis(
**       server=rd,                  -- required: a fed_server() name
**       keys='session:*',           -- key pattern (Redis glob), or
**       -- prefix='session:',       -- a literal key prefix
**       type=hash,                  -- string (default), hash, list, set,
**                                   -- zset, or any (one row per key, with
**                                   -- its type)
**       fields='user text, seen integer',  -- hash only: one column per
**                                   -- field instead of (field, value)
**       db=2,                       -- database number (default: the DSN's)
**       scan_count=1000             -- COUNT of each SCAN
**   );
**
** Columns by type (docs/redis.md): string (key, value, ttl); hash (key,
** field, value, ttl) or (key, <fields>..., ttl); list (key, idx, value,
** ttl); set (key, value, ttl); zset (key, value, score, ttl); any (key,
** type, value, ttl).  Keys and values are TEXT when they are valid UTF-8
** without NUL bytes, else BLOB.
**
** This file holds the store object (fedRedisStore) and its options; the
** rest is one file per concern, sharing redisInt.h: containers.c
** (utilities), match.c (patterns), proto.c (commands and pipelines),
** conn.c (connection and I/O), table.c (options, columns, pushdown),
** queue.c (the transaction queue and its shadows), plan.c (what a scan
** reads), scan.c (cursors), write.c (xUpdate), txn.c (transactions and
** commit markers), query.c (pass-through), undo.c (undo images),
** notify.c (keyspace notifications).  Reads stream in SCAN batches whose
** fetches are pipelined together with the next SCAN; writes are queued and
** sent at commit as one MULTI/EXEC (FED_TXN_BATCH), after a round trip
** that WATCHes the keys written and checks everything that could make a
** command inside EXEC fail.  hiredis 0.14 allocates with malloc (it has no
** allocator hooks): replies are freed where they are read, and are outside
** SQLite's memory accounting, except a scan's, which its reply functions
** build in arenas from sqlite3_malloc64 (RReplyArena).
*/
#include "redisInt.h"

static const char *const azRdServerOpt[] = {
  "password_env", "connect_timeout", "command_timeout", 0
};
static const char *const azRdTableOpt[] = {
  "keys", "prefix", "type", "fields", "db", "scan_count", 0
};

const FedStore fedRedisStore = {
  .zName = RD_STORE,
  .eTxn = FED_TXN_BATCH,
  .azTableOpt = azRdTableOpt,
  .azServerOpt = azRdServerOpt,
  .xConnect = rdConnect,
  .xDisconnect = rdDisconnect,
  .xIsAlive = rdIsAlive,
  .xDescribe = rdDescribe,
  .xColumns = rdColumns,
  .xPushable = rdPushable,
  .xOrderable = rdOrderable,
  .xOpen = rdOpen,
  .xClose = rdClose,
  .xFilter = rdFilter,
  .xNext = rdNext,
  .xEof = rdEof,
  .xColumn = rdColumn,
  .xRowid = rdRowid,
  .xUpdate = rdUpdate,
  .xFlush = rdFlush,
  .xBegin = rdBegin,
  .xCommit = rdCommit,
  .xRollback = rdRollback,
  .xSavepoint = rdSavepoint,
  .xRelease = rdRelease,
  .xRollbackTo = rdRollbackTo,
  .xQuery = rdQuery,
  .xWatch = rdWatch,
  .xChanges = rdChanges,
  .xListTables = 0,
  .xTableFree = rdTableFree,
  .xServerCheck = rdServerCheck,
  .xMarkerCheck = rdMarkerCheck,
  .xMarkerRemove = rdMarkerRemove,
  .xMarkerList = rdMarkerList,
  .xUndoImages = rdUndoImages,
  .xUndoApply = rdUndoApply,
  .pKv = &fedRedisKv,
  .bRowidStable = 1,
};
