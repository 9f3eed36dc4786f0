/*
** postgres.c: the PostgreSQL store, over libpq: the FedStore whose
** callbacks the files of vtab/postgres/ implement (pgInt.h lists them).
**
**   SELECT fed_server('pg', 'postgres', 'host=127.0.0.1 port=5432 dbname=app user=app',
**                     'password_env=APP_PGPASSWORD, connect_timeout=5');
**   CREATE VIRTUAL TABLE users USING postgres(
**       server=pg,                      -- required: a fed_server() name
**       table='public.users',           -- remote table or view (PostgreSQL
**                                       -- identifier rules; default: local name)
**       columns='id bigint primary key, name text',  -- optional: skip discovery
**       batch_size=1000                 -- rows per multi-row INSERT (COPY)
**   );
**
** Files, split as postgres_fdw is: connection.c (connect, errors, waits,
** sending), types.c (column kinds, value decoding; pure), deparse.c
** (building remote SQL; pure), scan.c, write.c, txn.c, query.c
** (pass-through and catalog), notify.c (cache invalidation).  Values are
** sent as bound parameters, identifiers double-quoted; each pushed
** condition means exactly what SQLite means (docs/postgres.md has the
** rules).
*/
#include "pgInt.h"

/* Options of fed_server(..., 'postgres', dsn, options) and of CREATE
** VIRTUAL TABLE ... USING postgres(...). */
static const char *const azPgServerOpt[] = {
  "password_env", "connect_timeout", "command_timeout", 0
};
static const char *const azPgTableOpt[] = { "table", "batch_size", 0 };

/* Designated initialisers: members not named (commit markers: not a last
** resource; undo images: two-phase commit instead; pKv: cannot hold the
** L2 cache; bRowidStable: rowids are positions in a scan) are NULL. */
const FedStore fedPostgresStore = {
  .zName = PG_STORE,
  .eTxn = FED_TXN_2PC,
  .azTableOpt = azPgTableOpt,
  .azServerOpt = azPgServerOpt,
  .xConnect = fedPgConnect,
  .xDisconnect = fedPgDisconnect,
  .xIsAlive = fedPgIsAlive,
  .xDescribe = fedPgDescribe,
  .xColumns = fedPgColumns,
  .xPushable = fedPgPushable,
  .xOrderable = fedPgOrderable,
  .xOpen = fedPgOpen,
  .xClose = fedPgClose,
  .xFilter = fedPgFilter,
  .xNext = fedPgNext,
  .xEof = fedPgEof,
  .xColumn = fedPgColumn,
  .xRowid = fedPgRowid,
  .xUpdate = fedPgUpdate,
  .xFlush = fedPgFlush,
  .xBegin = fedPgBegin,
  .xCommit = fedPgCommit,
  .xRollback = fedPgRollback,
  .xSavepoint = fedPgSavepoint,
  .xRelease = fedPgRelease,
  .xRollbackTo = fedPgRollbackTo,
  .xQuery = fedPgQuery,
  .xListTables = fedPgListTables,
  .xTableFree = fedPgTableFree,
  .xServerCheck = fedPgServerCheck,
  .xPrepare = fedPgPrepare,
  .xResolve = fedPgResolve,
  .xListPrepared = fedPgListPrepared,
  .xWatch = fedPgWatch,
  .xChanges = fedPgChanges,
};
