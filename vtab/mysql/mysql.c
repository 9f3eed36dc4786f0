/*
** mysql.c: the MariaDB/MySQL store, over libmariadb (Connector/C): the
** FedStore whose callbacks the files of vtab/mysql/ implement (myInt.h
** lists them).  Writes: batched INSERT, UPDATE/DELETE by primary key,
** transactions and savepoints on one server (FED_TXN_LOCAL: no XA yet,
** docs/mysql.md says why).
**
**   SELECT fed_server('my', 'mysql',
**                     'host=127.0.0.1 port=3306 dbname=app user=app',
**                     'password_env=APP_MYPASSWORD, connect_timeout=5');
**   CREATE VIRTUAL TABLE users USING mysql(
**       server=my,                  -- required: a fed_server() name
**       table='app.users',          -- remote table: db.table or table (the
**                                   -- DSN's dbname); default: local name
**       columns='id bigint primary key, name varchar collate utf8mb4_bin',
**                                   -- optional: skip discovery
**       batch_size=1000             -- INSERT rows per statement
**   );
**
** Server options: password_env (the variable holding the password),
** option_group (read the client option files, my.cnf, for that group:
** a password may come from there), connect_timeout, command_timeout.
** docs/mysql.md has the type mapping and the pushdown rules.
*/
#include "myInt.h"

static const char *const azMyServerOpt[] = {
  "password_env", "option_group", "connect_timeout", "command_timeout", 0
};
static const char *const azMyTableOpt[] = { "table", "batch_size", 0 };

const FedStore fedMysqlStore = {
  .zName = MY_STORE,
  .eTxn = FED_TXN_LOCAL,
  .azTableOpt = azMyTableOpt,
  .azServerOpt = azMyServerOpt,
  .xConnect = fedMyConnect,
  .xDisconnect = fedMyDisconnect,
  .xIsAlive = fedMyIsAlive,
  .xDescribe = fedMyDescribe,
  .xColumns = fedMyColumns,
  .xPushable = fedMyPushable,
  .xOrderable = fedMyOrderable,
  .xOpen = fedMyOpen,
  .xClose = fedMyClose,
  .xFilter = fedMyFilter,
  .xNext = fedMyNext,
  .xEof = fedMyEof,
  .xColumn = fedMyColumn,
  .xRowid = fedMyRowid,
  .xUpdate = fedMyUpdate,
  .xFlush = fedMyFlush,
  .xBegin = fedMyBegin,
  .xCommit = fedMyCommit,
  .xRollback = fedMyRollback,
  .xSavepoint = fedMySavepoint,
  .xRelease = fedMyRelease,
  .xRollbackTo = fedMyRollbackTo,
  .xMarkerCheck = fedMyMarkerCheck,
  .xMarkerRemove = fedMyMarkerRemove,
  .xMarkerList = fedMyMarkerList,
  .xQuery = fedMyQuery,
  .xListTables = fedMyListTables,
  .xTableFree = fedMyTableFree,
  .xServerCheck = fedMyServerCheck,
};
