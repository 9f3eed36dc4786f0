/*
** fedInt.h: the internal interface of federate, shared by ext/ and vtab/.
**
** One banner per file of ext/, in the order a statement meets them:
** main.c, config.c, server.c, plan.c, value.c, vtab.c, txn.c, explain.c,
** eponymous.c, query.c.  A store (vtab/<store>.c) implements one FedStore and includes
** its client library there and nowhere else.  docs/ARCHITECTURE.md explains
** the whole; keep the two in step.
*/
#ifndef FEDINT_H
#define FEDINT_H

#include "sqlite3ext.h"
#ifndef SQLITE_CORE
extern const sqlite3_api_routines *sqlite3_api;
#endif
#include "federate.h"

#include <string.h>
#include <stdarg.h>

typedef sqlite3_int64 i64;
typedef sqlite3_uint64 u64;
typedef unsigned char u8;

typedef struct FedContext FedContext;
typedef struct FedServer FedServer;
typedef struct FedStore FedStore;
typedef struct FedConfig FedConfig;
typedef struct FedColumn FedColumn;
typedef struct FedTable FedTable;
typedef struct FedCursor FedCursor;
typedef struct FedPlan FedPlan;
typedef struct FedPlanTerm FedPlanTerm;
typedef struct FedConn FedConn;
typedef struct FedExplain FedExplain;
typedef struct FedDoubt FedDoubt;
typedef struct FedUndoImage FedUndoImage;
typedef struct FedRowSource FedRowSource;
typedef struct FedKvOps FedKvOps;
typedef struct FedCacheDb FedCacheDb;
typedef struct FedCacheTab FedCacheTab;
typedef struct FedCacheCsr FedCacheCsr;
typedef struct FedCacheStat FedCacheStat;
typedef struct FedTableStat FedTableStat;

#define FED_MAX_COLUMNS 63     /* colUsed is a 64-bit mask; bit 63 = "more" */

/**************************************************************************
** config.c: "key=value" arguments of CREATE VIRTUAL TABLE and of the
** options string of fed_server()/fed_import().
*/
struct FedConfig {
  int nOpt;
  char **azKey;                 /* Option names, lower case */
  char **azVal;                 /* Values, unquoted */
};

/* Parse argv[] ("key=value", value optionally '...' or "..." quoted).
** azAllowed is a NULL-terminated list of the option names the caller
** accepts; an unknown one is an error that suggests the nearest name.
** zWho prefixes error messages ("postgres").  *ppCfg is freed with
** fedConfigFree().  */
int fedConfigParse(const char *zWho, int argc, const char *const *argv,
                   const char *const *azAllowed, FedConfig **ppCfg,
                   char **pzErr);
/* Split one comma-separated options string, then parse as above. */
int fedConfigParseString(const char *zWho, const char *zOptions,
                         const char *const *azAllowed, FedConfig **ppCfg,
                         char **pzErr);
void fedConfigFree(FedConfig *);
const char *fedConfigGet(const FedConfig *, const char *zKey);
int fedConfigInt(const FedConfig *, const char *zKey, i64 iDefault,
                 i64 iMin, i64 iMax, i64 *piOut, const char *zWho,
                 char **pzErr);
/* Remove one level of SQL quoting ('..', "..", [..], `..`).  Returns a new
** sqlite3_malloc'd string or NULL on OOM. */
char *fedUnquote(const char *z, int n);
/* Non-zero if a DSN/URI/options text carries a secret (password=..., or
** a URI with user:password@).  */
int fedHasSecret(const char *z);

/**************************************************************************
** Columns.  A column specification string, as given in columns='...' or
** recorded after discovery, is a comma-separated list of
**     name type [PRIMARY KEY] [NOT NULL] [DEFAULT]
** where name may be "quoted" and type is the store's own type name (it may
** hold spaces, parentheses and brackets: "numeric(10,2)", "integer[]").
*/
struct FedColumn {
  char *zName;                  /* Column name, local and remote */
  char *zType;                  /* Remote type name, as the store spells it */
  const char *zAffinity;        /* Declared SQLite type: INTEGER, TEXT, ... */
  int eKind;                    /* Store-specific conversion kind */
  u8 bPk;                       /* Part of the remote primary key */
  u8 bNotNull;                  /* Remote NOT NULL */
  u8 bDefault;                  /* Remote has a default (serial, identity) */
};

int fedColumnsParse(const char *zWho, const char *zSpec, FedColumn **paCol,
                    int *pnCol, char **pzErr);
/* Render columns back into a specification string (sqlite3_malloc'd). */
char *fedColumnsRender(const FedColumn *aCol, int nCol);
void fedColumnsFree(FedColumn *aCol, int nCol);

/**************************************************************************
** server.c: the registry of named servers, persisted in the table
** main.fed_servers(name, store, dsn, options), and one live connection
** per server per SQLite connection, opened on first use.
*/
struct FedServer {
  FedContext *pCtx;             /* Owning connection context */
  char *zName;
  const FedStore *pStore;
  char *zDsn;                   /* Never holds a secret */
  FedConfig *pOpt;              /* Parsed server options */
  FedConn *pConn;               /* Live connection, or NULL */
  int nLost;                    /* Connections lost so far (stats) */
  int bOwnDef;                  /* This definition was given to
                                ** fed_server() in this process: only then
                                ** is password_env honoured */
  FedServer *pNext;
};

/* Find server zName, loading it from main.fed_servers when this connection
** has not seen it yet.  Returns SQLITE_OK and sets *pp, or an error. */
int fedServerFind(FedContext *, const char *zName, FedServer **pp,
                  char **pzErr);
/* Return a live connection for the server, connecting or reconnecting as
** needed.  A lost connection inside an open remote transaction is an
** error, never a silent reconnect. */
int fedServerConn(FedContext *, FedServer *, FedConn **ppConn, char **pzErr);
void fedServerDisconnectAll(FedContext *);
/* The server's password_env= variable name in *pzVar (NULL when the option
** is absent), or SQLITE_ERROR when the definition was read from the
** database file and never given to fed_server() in this process: a
** file may not choose which variable is read, nor where it is sent
** (docs/security.md). */
int fedServerPasswordEnv(FedServer *, const char **pzVar, char **pzErr);
/* SQLITE_OK if no attached database holds a table whose definition calls
** a federate function (a CHECK runs it, direct-only or not, on writes and
** on PRAGMA integrity_check) or a trigger on one of federate's own
** tables; else SQLITE_ERROR with an error for zWho. */
int fedSchemaGuard(FedContext *, const char *zWho, char **pzErr);

/* Waiting for a store's socket, bounded and interruptible (server.c). */
#define FED_WAIT_READY     0    /* The socket is ready */
#define FED_WAIT_TIMEOUT   1    /* The deadline passed first */
#define FED_WAIT_INTERRUPT 2    /* sqlite3_interrupt() was called */
#define FED_WAIT_SLICE_MS  20   /* Longest sleep between interrupt checks */
i64 fedNowMs(void);
int fedInterrupted(sqlite3 *db);
int fedWaitFd(sqlite3 *db, int fd, int bWrite, i64 iDeadline);
int fedServerRegisterFunctions(sqlite3 *, FedContext *);

/* What a subsystem (the cache, the commit log, sagas) adds to the server
** registry, so that server.c calls none of them by name.  Registered at
** init (main.c, or the subsystem's register function) and called in the
** order registered; any member may be NULL. */
typedef struct FedServerHook FedServerHook;
struct FedServerHook {
  /* Server options the subsystem reads (fed_server()'s options). */
  const char *const *azOpt;
  /* A server was defined (fed_server(), or read from fed_servers): check
  ** its options, before the store's xServerCheck. */
  int (*xCheck)(FedServer *, char **pzErr);
  /* fed_server() is about to save a definition: create the tables the
  ** subsystem needs, so that a later commit never changes the schema. */
  int (*xSchema)(FedContext *, char **pzErr);
  /* A new connection to the server was made (after a connect or a
  ** reconnect); errors are the subsystem's to keep. */
  void (*xConnected)(FedContext *, FedServer *, FedConn *);
};
#define FED_MAX_SERVER_HOOK 8
int fedServerAddHook(FedContext *, const FedServerHook *);

/**************************************************************************
** plan.c: sqlite3_index_info <-> FedPlan.  The plan travels from
** xBestIndex to xFilter as idxStr, in the text form described in
** docs/ARCHITECTURE.md ("plan encoding").
*/
#define FED_OP_EQ      1
#define FED_OP_GT      2
#define FED_OP_LE      3
#define FED_OP_LT      4
#define FED_OP_GE      5
#define FED_OP_NE      6
#define FED_OP_ISNULL  7
#define FED_OP_NOTNULL 8
#define FED_OP_IS      9
#define FED_OP_ISNOT   10
#define FED_OP_LIKE    11
#define FED_OP_GLOB    12
#define FED_OP_IN      13       /* EQ with the whole IN list (vtab_in) */

/* What a store answers when asked whether it can take a constraint. */
#define FED_PUSH_NO    0        /* Leave it to SQLite */
#define FED_PUSH_LOOSE 1        /* Push a superset; SQLite re-checks */
#define FED_PUSH_EXACT 2        /* Push, and SQLite trusts the result */

struct FedPlanTerm {
  int iCol;                     /* Column, or -1 for rowid */
  int op;                       /* FED_OP_* */
  int iArg;                     /* Index into xFilter's argv, or -1 */
  u8 bExact;                    /* Pushed with omit=1 */
};

struct FedPlan {
  int nTerm;
  FedPlanTerm *aTerm;
  int nOrder;                   /* ORDER BY terms the store sorts by */
  int *aOrderCol;               /* Column of each ORDER BY term */
  u8 *aOrderDesc;               /* 1 for DESC */
  int iLimitArg;                /* argv index of LIMIT, or -1 */
  int iOffsetArg;               /* argv index of OFFSET, or -1 */
  u64 colUsed;                  /* Columns the statement reads */
  u8 bLimitCont;                /* LIMIT is a hint that vtab.c may continue
                                ** past (plan.c, "hidden terms") */
};

/* Fill pInfo for one table and set idxStr; calls the store to decide. */
int fedPlanBest(FedTable *, sqlite3_index_info *pInfo);
/* 1 if this process's SQLite offers LIMIT to xBestIndex although a WHERE
** term it does not show still filters rows (3.40 does; plan.c asks). */
int fedPlanLimitHidesTerms(void);
/* Decode idxStr into a plan owned by the caller (fedPlanFree). */
int fedPlanDecode(const char *zIdx, FedPlan **ppPlan);
char *fedPlanEncode(const FedPlan *);
void fedPlanFree(FedPlan *);
int fedPlanColUsed(const FedPlan *, int iCol);

/**************************************************************************
** value.c: conversions shared by stores.
*/
/* Apply SQLite's comparison affinity (INTEGER/REAL/NUMERIC columns) to a
** constraint value: returns SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT,
** SQLITE_BLOB or SQLITE_NULL as sqlite3_value_numeric_type() does. */
int fedValueNumericType(sqlite3_value *);
/* Parse a decimal integer exactly; 0 on success, 1 if not an integer or
** out of the int64 range. */
int fedParseInt64(const char *z, int n, i64 *piOut);
/* Write a value as JSON into pStr (numbers, strings, null; blobs as hex). */
void fedJsonQuote(sqlite3_str *pStr, const char *z, int n);
/* Render a double exactly enough to round-trip: "%!.17g", or Infinity. */
void fedDoubleText(double r, char *zBuf, int nBuf);
/* Return an sqlite3_malloc'd copy of z (n<0: strlen). */
char *fedStrdup(const char *z, int n);
/* sqlite3_mprintf that frees *pz first; for error texts. */
void fedSetError(char **pz, const char *zFmt, ...);
/* Lower-case ASCII compare; 0 if equal. */
int fedStrICmp(const char *a, const char *b);
/* The rule for every error of federate: an error without a message ran
** out of memory making the message.  Returns rc, or SQLITE_NOMEM when rc
** is another error and zErr is NULL. */
int fedErrorRc(int rc, const char *zErr);
/* Give a virtual table method's result to SQLite: when rc is an error,
** zErr (sqlite3_malloc'd, owned from here, may be NULL) replaces
** pVtab->zErrMsg; otherwise it is freed.  Returns fedErrorRc(rc, zErr). */
int fedVtabSetError(sqlite3_vtab *pVtab, int rc, char *zErr);
/* The same for an SQL function's result: the error zErr (not freed), or
** SQLITE_NOMEM by that rule.  rc is an error. */
void fedResultError(sqlite3_context *ctx, int rc, const char *zErr);

/**************************************************************************
** explain.c: the ring of remote commands behind fed_explain.
*/
struct FedExplain {
  i64 iSeq;                     /* Increasing id */
  char *zServer;
  char *zCommand;               /* Exact remote command text */
  char *zParams;                /* Bound values as a JSON array, or NULL */
  char *aValue;                 /* Or the values, rendered as zParams when
                                ** read (fedExplainAddValues()); this one
                                ** allocation also holds zServer, zCommand */
  int nValue;                   /* Number of values bound */
  i64 nRow;                     /* Rows returned or affected so far */
  i64 iStart;                   /* Start time, microseconds */
  i64 nUsec;                    /* Elapsed until done, microseconds */
};
/* Record a command; returns its sequence id for fedExplainRows(). */
i64 fedExplainAdd(FedContext *, const char *zServer, const char *zCommand,
                  const char *zParams);
/* The same, with the bound values as they are sent (azVal[i] NULL for an
** SQL NULL, anVal[i] bytes, aFmt[i] 1 if binary, shown as its length):
** they are copied, and rendered as JSON only if fed_explain is read. */
i64 fedExplainAddValues(FedContext *, const char *zServer,
                        const char *zCommand, int nVal,
                        const char *const *azVal, const int *anVal,
                        const int *aFmt);
void fedExplainRows(FedContext *, i64 iSeq, i64 nRow, int bDone);
i64 fedExplainSkip(FedContext *, i64 n);
int fedExplainRegister(sqlite3 *, FedContext *);
void fedExplainClear(FedContext *);
void fedExplainFree(FedContext *);      /* At close: the ring too */
i64 fedNowUsec(void);

/**************************************************************************
** eponymous.c: the skeleton of the eponymous tables (fed_explain,
** fed_in_doubt, fed_txn, fed_query, ...).  A table is a FedEponymous;
** fedEponymousRegister() makes it an eponymous-only module.  Each scan
** (xFilter) empties the cursor's FedEpoRows and calls xLoad, which adds
** rows with the fedEpo*() builders; they keep the first error (sticky,
** fedEpoRc()) and do nothing after it, so a loader checks once at the end
** (or in its loop condition).  An error from xLoad goes to SQLite through
** fedVtabSetError(): with *pzErr as the message, or SQLITE_NOMEM.
*/
typedef struct FedEponymous FedEponymous;
typedef struct FedEpoRows FedEpoRows;
struct FedEponymous {
  const char *zName;            /* Module and table name: "fed_explain" */
  const char *zSchema;          /* "CREATE TABLE x(...)" (HIDDEN allowed) */
  int nCol;                     /* Columns of zSchema, hidden ones too */
  int bDirectOnly;              /* SQLITE_VTAB_DIRECTONLY: not from
                                ** triggers, views or the schema */
  double rCost;                 /* estimatedCost of a scan */
  i64 nRowEst;                  /* estimatedRows, or -1: SQLite's default */
  /* Optional: the plan of a table-valued function (hidden columns given
  ** as arguments); NULL: every scan is a full scan (rCost, nRowEst). */
  int (*xBestIndex)(sqlite3_vtab *, sqlite3_index_info *);
  /* The rows of one scan, with xFilter's idxNum and arguments; NULL: the
  ** table is always empty.  *pzErr: sqlite3_malloc'd message. */
  int (*xLoad)(FedContext *, FedEpoRows *, int idxNum, int argc,
               sqlite3_value **argv, char **pzErr);
  /* Optional: a module whose iVersion, xUpdate and transaction methods
  ** (xBegin ... xRollbackTo) the table uses (fedEpoContext() gives their
  ** FedContext).  NULL: read-only ("may not be modified"), no
  ** transactions. */
  const sqlite3_module *pMethods;
};
int fedEponymousRegister(sqlite3 *, FedContext *, const FedEponymous *);
FedContext *fedEpoContext(sqlite3_vtab *);
/* Start a row (every cell NULL) with its rowid. */
int fedEpoRow(FedEpoRows *, i64 iRowid);
/* Set cell iCol of the row started last.  fedEpoText copies z (n<0: up
** to its NUL; z NULL: the cell stays NULL); fedEpoTextOwn takes z
** (sqlite3_malloc'd, freed even on error), bJson gives it subtype 'J'. */
int fedEpoInt(FedEpoRows *, int iCol, i64);
int fedEpoDouble(FedEpoRows *, int iCol, double);
int fedEpoText(FedEpoRows *, int iCol, const char *z, int n);
int fedEpoTextOwn(FedEpoRows *, int iCol, char *z, int bJson);
/* The value of column iCol in every row whose cell is NULL (a copy of
** pVal): the hidden argument columns of a table-valued function. */
int fedEpoArg(FedEpoRows *, int iCol, sqlite3_value *pVal);
int fedEpoRowCount(FedEpoRows *);
int fedEpoRc(FedEpoRows *);

/**************************************************************************
** stats.c: fed_stats, per table of this connection: scans the store
** served, rows it returned, rows written, scans the cache served.  The
** counting functions accept a NULL stat (its allocation failed).
*/
FedTableStat *fedStatsFor(FedContext *, const char *zSchema,
                          const char *zName);
void fedStatsScan(FedTableStat *, int bCache);
void fedStatsRow(FedTableStat *);
void fedStatsWrite(FedTableStat *);
void fedStatsFree(FedContext *);
int fedStatsRegister(sqlite3 *, FedContext *);

/**************************************************************************
** fault.c: numbered fault sites for tests (docs/TESTING.md).
*/
#define FED_FAULT_CONNECT   1
#define FED_FAULT_SEND      2
#define FED_FAULT_RECV      3
#define FED_FAULT_COMMIT    4
#define FED_FAULT_ROLLBACK  5
#define FED_FAULT_SAVEPOINT 6
#define FED_FAULT_PREPARE   7   /* before PREPARE TRANSACTION on a store */
#define FED_FAULT_DECISION  8   /* after the decision row is written */
#define FED_FAULT_RESOLVE   9   /* before COMMIT/ROLLBACK PREPARED */
#define FED_FAULT_UNDO      10  /* before one undo image is applied */
#define FED_FAULT_MAX       11

#define FED_FAULT_ERROR 1
#define FED_FAULT_HANG  2
#define FED_FAULT_CRASH 3

/* SQLITE_OK, or SQLITE_ERROR with *pzErr set when the site is armed. */
int fedFault(int iSite, char **pzErr);
void fedFaultArm(int iSite, int nCountdown, int eAction, int nHangMs);
int fedFaultSite(const char *zName);
const char *fedFaultName(int iSite);
int fedFaultHits(void);
int fedFaultCalls(int iSite);

/**************************************************************************
** vtab.c: the one implementation of sqlite3_module for every store.
*/
struct FedTable {
  sqlite3_vtab base;            /* Base class. Must be first */
  FedContext *pCtx;
  const FedStore *pStore;
  char *zName;                  /* Local table name */
  char *zSchema;                /* Local schema ("main") */
  char *zServer;                /* Server name */
  FedServer *pServer;           /* Resolved at first use */
  FedConfig *pCfg;              /* Table options */
  char *zRemote;                /* Remote relation, quoted, as the store
                                ** wants it ("public"."users") */
  int nCol;
  FedColumn *aCol;
  int iPk;                      /* Single-column primary key, or -1 */
  double nRowEst;               /* Estimated remote rows */
  i64 iWriteTxn;                /* FedContext.iTxn when xBegin came */
  u8 bCacheInit;                /* pCache has been decided */
  FedCacheTab *pCache;          /* Cache settings, NULL when off */
  FedTableStat *pStat;          /* fed_stats counters, or NULL (OOM) */
  void *pStoreTab;              /* Store-private table state */
};

/*
** Where a scan's rows come from: the store (vtab.c) or the cache
** (fedCacheSource).  xFilter asks each source in turn, the cache first;
** the first that takes the scan (*pbTaken=1, positioned on its first row)
** serves xNext, xEof, xColumn and xRowid until the next xFilter.  pConn
** is the table's connection, opened before xFilter only for a source whose
** xWantsConn says so (a cache hit never connects), else NULL.  xClose
** runs for every source when the cursor closes.
*/
struct FedRowSource {
  int (*xWantsConn)(FedTable *);
  int (*xFilter)(FedCursor *, FedConn *pConn, int argc, sqlite3_value **argv,
                 int *pbTaken, char **pzErr);
  int (*xNext)(FedCursor *, char **pzErr);
  int (*xEof)(FedCursor *);
  int (*xColumn)(FedCursor *, sqlite3_context *, int iCol);
  int (*xRowid)(FedCursor *, i64 *piRowid);
  void (*xClose)(FedCursor *);
};

struct FedCursor {
  sqlite3_vtab_cursor base;     /* Base class. Must be first */
  FedTable *pTab;
  FedPlan *pPlan;               /* Decoded idxStr of the current scan */
  u8 bForUpdate;                /* The statement writes this table: lock
                                ** the rows read (SELECT ... FOR UPDATE) */
  FedCacheCsr *pCache;          /* Cache state of the scan, or NULL */
  const FedRowSource *pSource;  /* Where the scan's rows come from */
  void *pStoreCsr;              /* Store-private cursor state */
  /* A LIMIT pushed as a hint (FedPlan.bLimitCont): the scan's values, kept
  ** so that vtab.c can continue it past the hint with the same terms. */
  sqlite3_value **apContArg;    /* Copies of xFilter's argv, or NULL */
  int nContArg;
  i64 nContRow;                 /* Rows delivered by the current scan */
  i64 nContLimit;               /* The hint; -1 once continued or if none */
};

/* Store an error on a vtab (replacing any previous one). */
void fedTableError(FedTable *, const char *zFmt, ...);
int fedVtabRegister(sqlite3 *, FedContext *, const FedStore *);

/**************************************************************************
** txn.c: remote transactions.  Every connection that has an open remote
** transaction is a participant; SQLite's transaction callbacks (from any
** written federate table, or from the internal fed_txn table that enlists
** reads inside BEGIN...COMMIT) are turned into one call per participant.
*/
/* Make sure the remote transaction for pConn is open when SQLite is in
** an explicit transaction (or bWrite is set); enlists with SQLite. */
int fedTxnEnsure(FedContext *, FedServer *, FedConn *, int bWrite,
                 char **pzErr);
/* Before a remote write: create the remote savepoints that SQLite has
** opened but the connection has not yet mirrored. */
int fedTxnBeforeWrite(FedContext *, FedServer *, FedConn *, char **pzErr);
int fedTxnRegister(sqlite3 *, FedContext *);
int fedTxnSync(FedContext *, char **pzErr);
void fedTxnCommit(FedContext *);
void fedTxnRollback(FedContext *);
int fedTxnSavepoint(FedContext *, int iSavepoint, char **pzErr);
int fedTxnRelease(FedContext *, int iSavepoint, char **pzErr);
int fedTxnRollbackTo(FedContext *, int iSavepoint, char **pzErr);
/* The server's connection was lost: forget its transaction state. */
void fedTxnForget(FedContext *, FedServer *);

/**************************************************************************
** txlog.c: the coordinator's durable state in the database file: its id
** (main.fed_coordinator) and one decision row per transaction committed
** by two-phase commit (main.fed_txlog), plus recovery, fed_recover(),
** fed_in_doubt and fed_config().
*/
struct FedDoubt {
  char *zGid;
  char *zServer;
  int bCommit;                  /* 1: must commit, 0: must roll back,
                                ** -1: no decision row, and the last
                                ** resource holding the marker could not
                                ** be asked (fed_in_doubt: "unknown") */
  i64 iTime;                    /* When it became in doubt (unix seconds) */
  FedDoubt *pNext;
};
/* The global id prefix "fed_<coordinator id>_" of this database file,
** creating the id when bCreate; *pzPrefix sqlite3_malloc'd, or NULL when
** there is no id yet. */
int fedTxlogPrefix(FedContext *, int bCreate, char **pzPrefix);
/* A new global id (creating the coordinator id if needed), with the tag
** of last resource zLast when it keeps markers (else NULL), checked to fit
** FED_GID_MAX with "_<nPart>" appended.  *pzGid sqlite3_malloc'd. */
int fedTxlogNewGid(FedContext *, const char *zLast, int nPart, char **pzGid,
                   char **pzErr);
/* Write the decision to commit zGid (participants: comma-separated server
** names) into the current SQLite transaction. */
int fedTxlogDecide(FedContext *, const char *zGid, const char *zServers,
                   char **pzErr);
/* 1 if a decision row for zGid exists, 0 if not, <0 on error. */
int fedTxlogHasDecision(FedContext *, const char *zGid);
/* Resolve the prepared transactions of this coordinator on one server:
** commit those with a decision row, roll back the others.  Returns the
** number resolved (>=0) or -1 (error in *pzErr). */
int fedTxlogRecoverServer(FedContext *, FedServer *, FedConn *, char **pzErr);
void fedTxlogDoubt(FedContext *, const char *zGid, const char *zServer,
                   int bCommit);
void fedTxlogForgetDoubt(FedContext *, const char *zGid, const char *zServer);
/* The transaction that deleted the decision rows of FedContext.azDone
** ended: forget them if it committed. */
void fedTxlogDoneCommitted(FedContext *, int bCommitted);
void fedTxlogFree(FedContext *);
int fedTxlogRegister(sqlite3 *, FedContext *);

/**************************************************************************
** undo.c: automatic compensation of a transaction that writes two or more
** servers without two-phase commit (fed_config('atomic', 'allow')).  The
** before- and after-images of every key such a server's commit changes
** are logged, durably, in a sidecar SQLite file ("<database>-fedundo")
** before the commit is sent; a failure (or a crash, found by
** fed_recover()) puts back the before-images, but only where the key
** still holds the after-image.  docs/transactions.md has the whole.
*/
struct FedUndoImage {
  int iSpace;                   /* A store-defined key namespace (Redis:
                                ** the database number), 0 if none; the
                                ** column "db" of the sidecar file */
  char *aKey; int nKey;         /* Remote key, bytes */
  char *aBefore; int nBefore;   /* Before the commit; aBefore==0: absent */
  char *aAfter; int nAfter;     /* After the commit; aAfter==0: absent */
};
void fedUndoImagesFree(FedUndoImage *a, int n);
int fedUndoImageSet(FedUndoImage **pa, int *pn, int iSpace, const char *aKey,
                    int nKey, const char *aAfter, int nAfter);
/* Log the images of server zServer for transaction zGid (appending). */
int fedUndoLog(FedContext *, const char *zGid, const char *zServer,
               const FedUndoImage *a, int n, char **pzErr);
/* Apply the logged images of zGid, newest first, for the servers in zOnly
** (comma-separated list; NULL: all), forgetting the others' images,
** except those of zMaybe (the server whose commit failed, or NULL), which
** are applied only where its keys hold the after-image; each image
** applied is deleted from the log.  SQLITE_OK when all were; otherwise an
** error naming the server and key that stopped it (the rest stay logged;
** SQLITE_BUSY and state "conflict" when a key was changed by someone else
** since). */
int fedUndoCompensate(FedContext *, const char *zGid, const char *zOnly,
                      const char *zMaybe, char **pzErr);
/* The transaction committed (or never reached a server): forget its
** images.  A failure leaves them, and then the decision row must stay. */
int fedUndoForget(FedContext *, const char *zGid);
/* fed_recover(): forget the images of committed transactions, apply
** those of the others.  Returns how many transactions it compensated,
** or -1. */
int fedUndoRecover(FedContext *);
/* Add the images in doubt to fed_in_doubt: calls xAdd(pArg, gid, server,
** state, created) for each (server, gid) pair that is left. */
int fedUndoDoubts(FedContext *, int (*xAdd)(void*, const char*, const char*,
                  const char*, i64), void *pArg);
void fedUndoClose(FedContext *);

/**************************************************************************
** cache/: the L1 result cache in a local SQLite database and the optional
** L2 in a store that declares FedStore.pKv (docs/cache.md).  vtab.c reads
** a scan from fedCacheSource when the cache answers it, and calls the fill
** path around the store's rows otherwise; a scan answered from the cache
** never reaches the store.  Internals: ext/cache/cacheInt.h.
*/
extern const char *const fedCacheOptions[];  /* Table and server options */
int fedCacheCheckConfig(FedConfig *, const char *zWho, char **pzErr);
/* The cache as a row source: its xFilter takes a scan it can answer. */
extern const FedRowSource fedCacheSource;
/* The fill path, around the store's row source: after the store's xFilter
** (fedCacheFilled when it succeeded, fedCacheFailed when not), and around
** each xNext (the current row is copied in before the store moves on). */
int fedCacheFilled(FedCursor *);
void fedCacheFailed(FedCursor *);
void fedCacheBeforeNext(FedCursor *);
void fedCacheAfterNext(FedCursor *, int rc);
/* Writes: invalidate now (fedCacheWrite) and when the transaction ends. */
int fedCacheWrite(FedTable *, char **pzErr);
void fedCacheTxnEnd(FedTable *);
int fedCacheInvalidate(FedTable *);
int fedCacheInvalidateServer(FedContext *, FedServer *);
/* xConnect: read the table's cache options early (errors wait for the
** first scan). */
void fedCacheConnect(FedTable *);
void fedCacheTableFree(FedTable *);
void fedCacheFree(FedContext *);
int fedCacheRegister(sqlite3 *, FedContext *);

/**************************************************************************
** saga.c: fed_saga(name, steps_json) and the tables fed_sagas and
** fed_saga_steps.
*/
int fedSagaSchema(sqlite3 *);
/* Compensate sagas a crash left unfinished; returns how many (or -1). */
int fedSagaRecover(FedContext *);
int fedSagaRegister(sqlite3 *, FedContext *);

/**************************************************************************
** query.c: fed_query() and fed_exec(), the pass-through.
*/
int fedQueryRegister(sqlite3 *, FedContext *);

/**************************************************************************
** The store interface.  Pointers may be NULL where noted.  Every method
** that can fail returns an SQLite result code and leaves a message in
** *pzErr (sqlite3_malloc'd) that names the store and the operation.
*/
#define FED_RECOVER_GRACE 60   /* Default age of prepared ids recovered at
                                ** connect (fed_config('recovery_grace')) */
#define FED_TXN_NONE    0       /* No transactions: needs undo images */
#define FED_TXN_BATCH   1       /* One atomic request at commit */
#define FED_TXN_2PC     2       /* Prepare / commit prepared */
#define FED_TXN_LOCAL   3       /* BEGIN/COMMIT and savepoints */

/*
** The key-value capability of a store (FedStore.pKv).  Keys and values
** are bytes.  xGet sets *paVal to a copy of the value (sqlite3_malloc'd,
** freed by the caller) and *pnVal to its size, or *paVal to NULL when the
** key is absent; xSet stores a value that expires after nTtlMs; xIncr adds
** one to the integer a key holds (absent: 0) and returns the new value in
** *piNew.  Each is one command on the server, recorded in fed_explain.
*/
struct FedKvOps {
  int (*xGet)(FedConn *, const char *zKey, int nKey, char **paVal,
              int *pnVal, char **pzErr);
  int (*xSet)(FedConn *, const char *zKey, int nKey, const char *aVal,
              int nVal, i64 nTtlMs, char **pzErr);
  int (*xIncr)(FedConn *, const char *zKey, int nKey, i64 *piNew,
               char **pzErr);
};

struct FedStore {
  const char *zName;            /* Module name and fed_server() store */
  int eTxn;                     /* FED_TXN_* */
  const char *const *azTableOpt;/* Table options besides server, columns */
  const char *const *azServerOpt;/* Options of fed_server() */

  /* Connections.  xConnect never prompts; secrets come from the
  ** environment or the store's own files, as docs/<store>.md says. */
  int (*xConnect)(FedServer *, FedConn **ppConn, char **pzErr);
  void (*xDisconnect)(FedConn *);
  int (*xIsAlive)(FedConn *);   /* 0 if the connection is known dead */

  /* Describe the remote relation: fill pTab->zRemote, and when
  ** pTab->nCol==0, pTab->aCol/nCol from the remote catalog.  May be
  ** called with pConn==NULL when columns were given (no network). */
  int (*xDescribe)(FedConn *, FedTable *, char **pzErr);
  /* Post-process a parsed column list (kinds, affinities, pk). */
  int (*xColumns)(FedTable *, char **pzErr);

  /* Planning: can the store take "column op value"?  pRhs is the value
  ** when SQLite knows it at plan time, else NULL.  FED_PUSH_*. */
  int (*xPushable)(FedTable *, int iCol, int op, sqlite3_value *pRhs);
  /* Can the store sort by this column exactly as SQLite would? */
  int (*xOrderable)(FedTable *, int iCol, int bDesc);

  /* Scans. */
  int (*xOpen)(FedCursor *, char **pzErr);
  void (*xClose)(FedCursor *);
  int (*xFilter)(FedCursor *, int argc, sqlite3_value **argv, char **pzErr);
  int (*xNext)(FedCursor *, char **pzErr);
  int (*xEof)(FedCursor *);
  int (*xColumn)(FedCursor *, sqlite3_context *, int iCol);
  int (*xRowid)(FedCursor *, i64 *piRowid);

  /* Writes: argc/argv as xUpdate receives them. */
  int (*xUpdate)(FedTable *, int argc, sqlite3_value **argv, i64 *piRowid,
                 char **pzErr);
  /* Send buffered writes now (before a read, at savepoints, at sync).  A
  ** failure inside a transaction must doom it: the store then fails every
  ** later command of the transaction, and its commit, with the reason,
  ** until xRollback or an xRollbackTo that undoes the failed rows. */
  int (*xFlush)(FedConn *, char **pzErr);

  /* Remote transactions on one connection.  xCommit sends what is still
  ** buffered first. */
  /* bSnapshot: SQLite is in an explicit transaction, so every read of it
  ** must see one snapshot (REPEATABLE READ or the store's equivalent). */
  int (*xBegin)(FedConn *, int bSnapshot, char **pzErr);
  int (*xCommit)(FedConn *, char **pzErr);
  int (*xRollback)(FedConn *, char **pzErr);
  /* Release remote savepoint iRelease and those above it (-1: none), then
  ** create savepoints iFrom..iTo-1; one round trip where possible. */
  int (*xSavepoint)(FedConn *, int iRelease, int iFrom, int iTo,
                    char **pzErr);
  int (*xRelease)(FedConn *, int iLevel, char **pzErr);
  int (*xRollbackTo)(FedConn *, int iLevel, char **pzErr);

  /* Pass-through (fed_query/fed_exec), may be NULL.  On success *pazRow
  ** holds *pnRow JSON objects, one per result row (each and the array
  ** sqlite3_malloc'd, freed by the caller), and *pnChanged the number of
  ** rows the command affected or returned. */
  int (*xQuery)(FedConn *, const char *zQuery, int nParam,
                sqlite3_value **apParam, char ***pazRow, int *pnRow,
                i64 *pnChanged, char **pzErr);

  /* fed_import: the remote relations of a schema.  *pazName gets *pnName
  ** pairs (local name, value for the table= option), 2*n strings. */
  int (*xListTables)(FedConn *, const char *zSchema, char ***pazName,
                     int *pnName, char **pzErr);

  void (*xTableFree)(FedTable *);

  /* Check a server's options when fed_server() defines it, so that a bad
  ** value is refused then, not at every later use.  May be NULL. */
  int (*xServerCheck)(FedServer *, char **pzErr);

  /* Two-phase commit (eTxn==FED_TXN_2PC).  xPrepare ends the open
  ** transaction as prepared under zGid (sending buffered writes first);
  ** calling it again for the same zGid succeeds.  xResolve commits or rolls
  ** back a prepared transaction by id, from any connection; an id the
  ** server does not know is taken as already resolved.  xListPrepared
  ** returns the prepared ids that start with zPrefix and were prepared at
  ** least nMinAgeSec seconds ago (sqlite3_malloc'd array of *pn
  ** strings). */
  int (*xPrepare)(FedConn *, const char *zGid, char **pzErr);
  int (*xResolve)(FedConn *, const char *zGid, int bCommit, char **pzErr);
  int (*xListPrepared)(FedConn *, const char *zPrefix, int nMinAgeSec,
                       char ***pazGid, int *pn, char **pzErr);

  /* The last resource's commit marker (eTxn==FED_TXN_BATCH; NULL when the
  ** store has none, and then a crash between its commit and SQLite's
  ** leaves the other servers rolled back: docs/transactions.md).  When
  ** FedConn.zMarker is set at xCommit, the store also writes a marker
  ** named by that global id in the same atomic request as the writes, in
  ** a reserved key that no table shows.  xMarkerCheck sets *pbExists,
  ** and is final: it first makes sure that no earlier commit request of
  ** that global id, still in flight on a lost connection, can apply
  ** after it (a fence), so an absent marker stays absent;
  ** xMarkerRemove deletes one (an absent marker is not an error);
  ** xMarkerList returns the global ids of the markers that start with
  ** zPrefix (sqlite3_malloc'd array of *pn strings). */
  int (*xMarkerCheck)(FedConn *, const char *zGid, int *pbExists,
                      char **pzErr);
  int (*xMarkerRemove)(FedConn *, const char *zGid, char **pzErr);
  int (*xMarkerList)(FedConn *, const char *zPrefix, char ***pazGid,
                     int *pn, char **pzErr);

  /* Undo images (undo.c), may be NULL.  xUndoImages reads, for every key
  ** the open transaction's commit will change, its value now and the value
  ** the commit leaves (a sqlite3_malloc'd array for fedUndoImagesFree),
  ** and makes sure the commit fails if a key changes meanwhile; it refuses
  ** (SQLITE_ERROR, naming the key) a change it cannot describe as whole
  ** values.  xUndoApply puts one image's before-value back if the key
  ** holds its after-value, does nothing if it holds the before-value, and
  ** otherwise returns SQLITE_BUSY with a message (someone else changed the
  ** key since: nothing is overwritten). */
  int (*xUndoImages)(FedConn *, FedUndoImage **paImg, int *pnImg,
                     char **pzErr);
  int (*xUndoApply)(FedConn *, const FedUndoImage *, char **pzErr);

  /* Cache invalidation by the store's notifications, may be NULL.
  ** xWatch installs what makes the server notify changes of pTab (a
  ** trigger) and starts listening on pConn; xChanges returns, without
  ** blocking, the remote relations (spelled as FedTable.zRemote, or "*"
  ** for all) changed since the last call: *pazRel gets *pnRel
  ** sqlite3_malloc'd strings.  xWatch(pConn, NULL) only listens, and
  ** fails when the server is not set up to notify. */
  int (*xWatch)(FedConn *, FedTable *, char **pzErr);
  int (*xChanges)(FedConn *, char ***pazRel, int *pnRel);

  /* A key-value capability, or NULL: a store that has one can hold the
  ** L2 cache (cache_l2=SERVER, ext/cache/l2.c). */
  const FedKvOps *pKv;

  /* Non-zero when xRowid gives a row the same rowid in every scan of a
  ** table without a one-column primary key (Redis: a hash of the row's
  ** identity).  Otherwise such a table's rowids are only positions in one
  ** scan, and the planner must not let SQLite answer "a OR b" with two
  ** scans merged by rowid (ext/plan.c). */
  int bRowidStable;
};

/* Every id a participant prepares under, and every global id a marker is
** named by, is at most this long: the 64 bytes of a MariaDB XA gtrid
** (PostgreSQL allows 200).  The format is in txlog.c ("Global ids"). */
#define FED_GID_MAX 64

/* Each store's FedStore object is named in one place: FED_STORES in
** main.c. */

/**************************************************************************
** context.c: the per-connection context and the registry of stores.
** main.c creates it, adds the stores and registers each subsystem, which
** adds its close function; the last module destructor (sqlite3_close)
** runs them in that order.
*/
#define FED_MAX_STORE      32
#define FED_MAX_CLOSE_HOOK 16
struct FedContext {
  sqlite3 *db;
  int nRef;                     /* Modules sharing this context */
  const FedStore *apStore[FED_MAX_STORE];  /* The stores, by name */
  int nStore;
  void (*axClose[FED_MAX_CLOSE_HOOK])(FedContext*);  /* Run at the end */
  int nClose;
  FedTableStat *pTableStat;     /* fed_stats, newest first (stats.c) */
  FedServer *pServer;           /* Registry, loaded lazily */
  const FedServerHook *apServerHook[FED_MAX_SERVER_HOOK];  /* server.c */
  int nServerHook;
  /* explain.c */
  FedExplain *aExplain;         /* Ring of recent commands */
  int nExplain;                 /* Slots in aExplain */
  i64 iExplainSeq;              /* Sequence id of the newest entry */
  /* txn.c */
  int bInTxn;                   /* Some remote transaction is open */
  int bEnlisted;                /* fed_txn has been written this txn */
  int bSynced;                  /* Phase one done for this transaction */
  int nSavepoint;               /* SQLite's savepoint depth */
  int bEnlisting;               /* Inside the fed_txn INSERT */
  i64 iTxn;                     /* Transaction generation, from 1 */
  char *zGid;                   /* Global id of the prepared transaction */
  int bRequireAtomic;           /* Refuse commits that cannot be atomic */
  int bSagaAnyUndo;             /* fed_config('saga_recovery','any') */
  int bLocalParticipant;        /* Local writes must commit atomically with
                                ** a single written server (fed_saga) */
  i64 iSagaSeen;                /* fedSagaRecover(): sagas tried so far */
  FedDoubt *pDoubt;             /* Resolutions that failed (fed_in_doubt) */
  sqlite3 *pUndoDb;             /* The sidecar of undo images, or NULL */
  char *zUndoPath;              /* fed_config('undo_log'), or NULL: the
                                ** default "<database>-fedundo" */
  int nRecoverGrace;            /* fed_config('recovery_grace'), seconds */
  int bUndo;                    /* This transaction logged undo images */
  FedServer *pMarker;           /* Holds the marker of zGid: removed once
                                ** the decision row is durable */
  FedServer *pUnknown;          /* The last resource whose commit outcome
                                ** is not known yet (its reply was lost):
                                ** a retried COMMIT asks its marker */
  char **azDone;                /* Decision rows whose transactions are
                                ** resolved everywhere: delete them */
  int nDone;
  int nDoneDeleting;            /* azDone[0..n-1] are deleted by the open
                                ** transaction: forgotten once it commits */
  /* cache.c */
  FedCacheDb *pCacheDb;         /* Open cache databases */
  FedCacheStat *pCacheStat;     /* Counters per table name */
  i64 iCacheServerGen;          /* Bumped by fedCacheInvalidateServer */
  i64 iListenSeq;               /* Last FedConn.iListen given */
};

/* A new context with one reference (held by the caller), or NULL. */
FedContext *fedContextNew(sqlite3 *);
/* Drop one reference; the last runs the close functions and frees it. */
void fedContextUnref(void *);
/* Run xClose(pCtx) when the last reference goes. */
int fedContextAtClose(FedContext *, void (*xClose)(FedContext*));
/* Make pStore known to this connection (main.c, for each store). */
int fedContextAddStore(FedContext *, const FedStore *);
/* The store named zName on this connection, or NULL. */
const FedStore *fedStoreFind(FedContext *, const char *zName);
/* Add a store at run time, before any connection is opened (tests);
** fedStoreCount()/fedStoreAt() list them for main.c. */
int fedStoreRegister(const FedStore *);
int fedStoreCount(void);
const FedStore *fedStoreAt(int i);

/**************************************************************************
** Per-connection state kept by a store on FedConn.  Every store's
** connection struct starts with this.
*/
struct FedConn {
  FedServer *pServer;           /* Owner */
  int bTxn;                     /* Remote transaction open */
  int nSavepoint;               /* Savepoint levels mirrored (logically) */
  int nRemoteSp;                /* Savepoints that exist remotely */
  int bLost;                    /* Lost inside a transaction */
  int bWritten;                 /* Remote writes in this transaction */
  int bPrepared;                /* Prepared as "<FedContext.zGid>_<iPart>" */
  int iPart;                    /* Participant number in this transaction */
  const char *zMarker;          /* Set only while txn.c calls xCommit on the
                                ** last resource: the global id whose
                                ** marker the commit writes (xMarkerCheck) */
  int bUnknown;                 /* Set by a failed xCommit with zMarker when
                                ** its atomic request may have been applied
                                ** all the same (sent, reply lost): the
                                ** marker decides, never the error */
  i64 iListen;                  /* Listening for cache notifications since
                                ** (FedContext.iListenSeq), or 0 */
};

#endif /* FEDINT_H */
