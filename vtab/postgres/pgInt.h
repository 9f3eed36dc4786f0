/*
** pgInt.h: the internal interface of the PostgreSQL store (vtab/postgres/),
** shared by its files and by the fuzz target testfixture/fuzz/fuzz_pg.c.
**
** One banner per file, in the order a statement meets them: postgres.c
** (the FedStore), connection.c, types.c, deparse.c, scan.c, write.c,
** txn.c, query.c, notify.c.  deparse.c and types.c are pure: they build
** remote SQL and decode values without I/O and call no libpq function, so
** that the fuzz target links them without a server or the client library.
** Everything here is hidden from federate.so (-fvisibility=hidden).
*/
#ifndef PGINT_H
#define PGINT_H

#include "fedInt.h"
#include <libpq-fe.h>

#define PG_STORE "postgres"

/* Conversion kinds of a column (FedColumn.eKind). */
#define PG_INT     1            /* smallint integer bigint oid */
#define PG_BOOL    2            /* boolean, as 0/1 */
#define PG_FLOAT   3            /* real double precision; NaN -> NULL */
#define PG_NUMERIC 4            /* numeric: integer, real or exact text */
#define PG_TEXT    5            /* text varchar name */
#define PG_BPCHAR  6            /* character(n): padded, not pushed */
#define PG_BYTEA   7            /* bytea, as a blob */
#define PG_TSTZ    8            /* timestamptz/timetz: "+00" -> "+00:00" */
#define PG_OTHER   9            /* any other type: its text output */
#define PG_ARRAY   10           /* arrays, as JSON (to_json) */

/* Comparison classes, in SQLite's order: NULL < numbers < text < blob. */
#define CLASS_NULL 0
#define CLASS_NUM  1
#define CLASS_TEXT 2
#define CLASS_BLOB 3

#define PG_STMT_CACHE 64        /* Prepared statements kept per connection */
#define PG_COPY_MIN 100         /* Batches of this many rows go by COPY */
#define PG_DRAIN_BEFORE_CANCEL 256
#define PG_CHUNK (64*1024)      /* Bytes of held rows per allocation */
#define PG_CANCEL_WAIT_MS 80    /* After a cancel request, how long the
                                ** server has to end the command before
                                ** the connection is closed instead */

typedef struct PgConn PgConn;
typedef struct PgCursor PgCursor;
typedef struct PgParams PgParams;
typedef struct PgStmt PgStmt;
typedef struct PgBatch PgBatch;
typedef struct PgChunk PgChunk;
typedef struct PgSelect PgSelect;
typedef struct PgTable PgTable;

/*
** Bound parameters: values live in one growing buffer (aBuf) and are
** addressed by offset until the command is sent, so that adding a value
** costs no allocation of its own.
*/
struct PgParams {
  int n, nAlloc;
  i64 *aOff;                    /* Offset in aBuf, or -1 for NULL */
  int *aLen;                    /* Length in bytes */
  int *aFmt;                    /* 0 text, 1 binary */
  char *aBuf;
  i64 nBuf, nBufAlloc;
};

struct PgStmt {
  char *zSql;                   /* Statement text (the cache key) */
  int iName;                    /* Prepared as "fed_<iName>", or 0 if only
                                ** seen once so far */
  char zName[16];               /* "fed_<iName>" */
  PgStmt *pNext;
};

/* Rows of INSERT waiting to be sent as one multi-row INSERT. */
struct PgBatch {
  FedTable *pTab;               /* Table the rows are for, or NULL */
  u64 mCol;                     /* Columns present in each row */
  int nCol;                     /* Number of columns in mCol */
  int nRow;
  char *zPrefix;                /* "INSERT INTO t(a,b) VALUES " */
  PgParams params;
  int nCopied;                  /* Rows already streamed into an open COPY
                                ** (0: no COPY open on the connection) */
  char *zCopyErr;               /* The COPY could not start: the error the
                                ** batch reports when it is sent */
  char *aCopy;                  /* Buffer of pgCopyPut() */
  i64 nCopyAlloc;
};

struct PgConn {
  FedConn base;                 /* Base class. Must be first */
  PGconn *pg;
  PgCursor *pActive;            /* Cursor streaming on this connection */
  PgStmt *pStmt;                /* Statement cache, most recent first */
  int nStmt;
  int iStmtSeq;
  PgBatch batch;
  int bBeginPending;            /* BEGIN owed before the next command */
  int bOpen;                    /* BEGIN sent: a remote transaction is open */
  char *zDoom;                  /* Why this transaction cannot commit: rows
                                ** buffered earlier were not inserted */
  char **azNote;                /* NOTIFY fed_cache payloads not yet taken */
  int nNote;
  char *zCopyRel;               /* Relation checked for COPY in this remote
                                ** transaction (zRemote), or NULL */
  int bCopyOk;                  /* COPY into zCopyRel is exactly INSERT */
  PgParams scan;                /* The values of a scan, from its deparse
                                ** to its send (kept: no allocation per
                                ** lookup) */
  i64 nCmdTimeoutMs;            /* command_timeout in ms; 0: none */
  sqlite3_str *pCopyOut;        /* COPY TO STDOUT of a pass-through: its
                                ** rows as JSON objects, one per line, for
                                ** fedPgQuery() to take (NULL: none) */
  int nCopyOut;                 /* Lines in pCopyOut */
};

/*
** Rows of a scan held while another command uses the connection (a join
** of two tables on one server): compact, in sqlite3_malloc'd chunks that
** SQLite counts and that are freed as the rows are read.  A row is, per
** result column, a 4-byte length (-1 for NULL), then that many bytes and
** a NUL.  A row longer than PG_CHUNK gets a chunk of its own.
*/
struct PgChunk {
  PgChunk *pNext;
  i64 nUsed;                    /* Bytes of a[] holding rows */
  i64 nAlloc;                   /* Size of a[] */
  char a[];
};

struct PgCursor {
  PgConn *pConn;                /* Connection of the current scan */
  PGresult *pRes;               /* Current row(s) */
  int iRow;                     /* Current row within pRes */
  int bEof;
  int bStreaming;               /* Rows still arriving on pConn */
  PgChunk *pHeld, *pHeldLast;   /* Rows held (read from pHeld at iHeld) */
  i64 iHeld;
  i64 nHeldRow;                 /* Rows held and not read yet */
  int nField;                   /* Result columns of a held row */
  int bHeldRow;                 /* The current row is a held one: */
  const char *azVal[FED_MAX_COLUMNS+1];  /* its values (NULL: SQL NULL) */
  int anVal[FED_MAX_COLUMNS+1];
  int aResCol[FED_MAX_COLUMNS]; /* Result column of each table column */
  i64 iRowid;                   /* Row number, for tables without a key */
  i64 iExplain;                 /* fed_explain entry of this scan */
  int bDrainLost;               /* Rows lost to OOM while draining */
  char *zDrainErr;              /* Why the rest of the scan was not held:
                                ** reported after the rows that were */
  char *zSql;                   /* Remote query, for error messages */
};

/* A SELECT deparsed for a plan, kept for the next scan with the same plan
** and value shapes (deparse.c, fedPgSelectFind()). */
struct PgSelect {
  FedPlan plan;                 /* The plan (arrays in this allocation) */
  u8 bForUpdate;                /* Deparsed with FOR UPDATE */
  u8 bLimit, bOffset;           /* LIMIT / OFFSET parameters appended */
  int *aShape;                  /* Shape of each plan term */
  int aResCol[FED_MAX_COLUMNS]; /* As fedPgDeparseSelect() set it */
  char *zSql;                   /* The text */
  PgSelect *pNext;              /* Next kept, less recently used */
};

/* The store's part of a FedTable (FedTable.pStoreTab). */
struct PgTable {
  PgSelect *pSelect;            /* Most recently used first */
  int nSelect;
};

/* The context of the connection's server (fed_explain, interrupts). */
static inline FedContext *pgCtx(PgConn *p){
  return p->base.pServer->pCtx;
}

/**************************************************************************
** postgres.c: the FedStore fedPostgresStore (listed in ext/main.c), its
** options and the usage comment.
*/

/**************************************************************************
** connection.c: connect (DSN, options, password_env), errors, bounded and
** interruptible waits, sending commands (statement cache), disconnect.
*/
void fedPgSetError(
  char **pzErr, PGconn *pg, const PGresult *pRes, const char *zSql
);
void fedPgDisconnect(FedConn *pConn);
int fedPgIsAlive(FedConn *pConn);
void fedPgCancelAsync(PgConn *p);
int fedPgPush(PgConn *p);
PGresult *fedPgResult(PgConn *p);
/* PQexec() (and PQprepare(): bSent is what the PQsend... call returned),
** bounded as fedPgResult(). */
PGresult *fedPgCollect(PgConn *p, int bSent);
#define pgExecWait(p, zSql) fedPgCollect(p, PQsendQuery((p)->pg, zSql))
int fedPgConnect(FedServer *pServer, FedConn **ppConn, char **pzErr);
void fedPgConnIdle(PgConn *p);
int fedPgExecRaw(PgConn *p, const char *zSql, char **pzErr);
int fedPgAborted(PgConn *p, char **pzErr);
int fedPgReady(PgConn *p, char **pzErr);
int fedPgExecSimple(PgConn *p, const char *zSql, char **pzErr);
int fedPgSend(
  PgConn *p, const char *zSql, PgParams *pParams, i64 *piSeq, char **pzErr
);
int fedPgCopyOutRead(PgConn *p, const char *zSql, char **pzErr);
int fedPgExec(
  PgConn *p, const char *zSql, PgParams *pParams, PGresult **ppRes,
  char **pzErr
);
int fedPgServerCheck(FedServer *pServer, char **pzErr);
/* True if the last bounded wait on pg ended early and its reason is kept
** for fedPgSetError() (a timeout or an interrupt closed the connection). */
int fedPgWaitPending(PGconn *pg);

/**************************************************************************
** types.c (pure): column kinds, type and remote-name checks, the remote
** name from table=, and decoding PostgreSQL's text output into SQLite
** values.
*/
int fedPgKindOf(const char *zType);
int fedPgColumns(FedTable *pTab, char **pzErr);
int fedPgRemoteName(FedTable *pTab, char **pzOut, char **pzErr);
void fedPgValue(sqlite3_context *ctx, const FedColumn *pCol,
                const char *z, int n);

/**************************************************************************
** deparse.c (pure): bound parameters, what may run remotely and the SQL
** text of it: SELECTs (and the SELECTs kept per table), the values and
** placeholders of writes, COPY data, INSERT, UPDATE and DELETE text.
*/
void fedPgParamsReset(PgParams *p);
void fedPgParamsFree(PgParams *p);
const char *fedPgValueBytes(sqlite3_value *p);
int fedPgParamsAdd(PgParams *p, const char *z, int n, int bBinary);
int fedPgParamsAddInt(PgParams *p, i64 v);
int fedPgParamsAddValue(PgParams *p, sqlite3_value *pVal);
const char **fedPgParamsValues(PgParams *p);
char *fedPgParamsJson(PgParams *p);
void fedPgQuoteIdent(sqlite3_str *s, const char *z, int n);
int fedPgPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs);
int fedPgOrderable(FedTable *pTab, int iCol, int bDesc);
int fedPgDeparseSelect(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, int *aResCol, char **pzSql, PgParams *pParams
);
PgSelect *fedPgSelectFind(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, PgParams *pParams, int *pRc
);
void fedPgSelectKeep(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, const int *aResCol, const char *zSql
);
void fedPgTableFree(FedTable *pTab);
int fedPgWriteParam(
  PgParams *pParams, const FedColumn *pCol, sqlite3_value *pVal,
  char **pzErr
);
void fedPgWritePlaceholder(sqlite3_str *s, const FedColumn *pCol, int iParam);
/* Bytes fedPgCopyField() may write for a value of n bytes. */
#define pgCopyFieldMax(n) (3 + 2*(i64)(n))
i64 fedPgCopyField(char *zOut, const char *z, int n, int bBinary);
char *fedPgCopyCommand(PgBatch *b);
char *fedPgDeparseInsert(FedTable *pTab, u64 mCol);
char *fedPgDeparseInsertRows(
  FedTable *pTab, const char *zPrefix, u64 mCol, int nRow, int bReturning
);
int fedPgDeparseUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, PgParams *pParams,
  char **pzSql, char **pzErr
);
char *fedPgDeparseSavepoint(int iRelease, int iFrom, int iTo);
char *fedPgDeparseWatch(FedTable *pTab);

/**************************************************************************
** scan.c: scans (xFilter/xNext/xColumn), streaming rows in single-row mode
** and holding the rest of a scan while another command uses the
** connection.
*/
void fedPgCursorDrain(PgCursor *pCsr);
int fedPgOpen(FedCursor *pFedCsr, char **pzErr);
void fedPgClose(FedCursor *pFedCsr);
int fedPgNext(FedCursor *pFedCsr, char **pzErr);
int fedPgFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
);
int fedPgEof(FedCursor *pFedCsr);
int fedPgColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol);
int fedPgRowid(FedCursor *pFedCsr, i64 *piRowid);

/**************************************************************************
** write.c: INSERT batches (multi-row INSERT or COPY FROM STDIN, streamed),
** UPDATE and DELETE.
*/
void fedPgBatchClear(PgBatch *b);
void fedPgCopyAbort(PgConn *p);
int fedPgFlushBatch(PgConn *p, char **pzErr);
int fedPgFlush(FedConn *pConn, char **pzErr);
int fedPgUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
);

/**************************************************************************
** txn.c: remote transactions: BEGIN (owed), COMMIT, ROLLBACK, savepoints,
** two-phase commit (PREPARE TRANSACTION, resolve, list prepared).
*/
int fedPgBegin(FedConn *pConn, int bSnapshot, char **pzErr);
int fedPgCommit(FedConn *pConn, char **pzErr);
int fedPgRollback(FedConn *pConn, char **pzErr);
int fedPgPrepare(FedConn *pConn, const char *zGid, char **pzErr);
int fedPgResolve(FedConn *pConn, const char *zGid, int bCommit,
                 char **pzErr);
int fedPgListPrepared(
  FedConn *pConn, const char *zPrefix, int nMinAge, char ***pazGid, int *pn,
  char **pzErr
);
int fedPgSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
);
int fedPgRelease(FedConn *pConn, int iLevel, char **pzErr);
int fedPgRollbackTo(FedConn *pConn, int iLevel, char **pzErr);

/**************************************************************************
** query.c: pass-through (fed_query/fed_exec) and the catalog (describe a
** table, list tables for fed_import).
*/
int fedPgQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
);
int fedPgListTables(
  FedConn *pConn, const char *zSchema, char ***pazName, int *pnName,
  char **pzErr
);
int fedPgDescribe(FedConn *pConn, FedTable *pTab, char **pzErr);

/**************************************************************************
** notify.c: cache invalidation by LISTEN/NOTIFY fed_cache.
*/
int fedPgWatch(FedConn *pConn, FedTable *pTab, char **pzErr);
int fedPgChanges(FedConn *pConn, char ***pazRel, int *pnRel);
int fedPgTakeNotes(PgConn *p);

#endif /* PGINT_H */
