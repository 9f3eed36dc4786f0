/*
** myInt.h: the internal interface of the MariaDB/MySQL store (vtab/mysql/),
** shared by its files.  One banner per file: mysql.c (the FedStore),
** conn.c, txn.c, table.c, deparse.c, query.c, scan.c, write.c.  deparse.c
** and the value functions
** of table.c are pure: they build remote SQL and decode values without
** I/O and call no libmariadb function.
*/
#ifndef MYINT_H
#define MYINT_H

#include "fedInt.h"

#define MY_STORE "mysql"

/* Conversion kinds of a column (FedColumn.eKind). */
#define MY_INT     1            /* tinyint..bigint, signed or unsigned
                                ** up to int unsigned; year; bit(n<=63) */
#define MY_UBIG    2            /* bigint unsigned: integer, or exact text
                                ** above 2^63-1 */
#define MY_DECIMAL 3            /* decimal: exact text */
#define MY_FLOAT   4            /* float, double */
#define MY_DATE    5            /* date, datetime, timestamp: text; zero and
                                ** partial dates read as NULL */
#define MY_TEXT    6            /* char varchar text enum set json time */
#define MY_BLOB    7            /* binary varbinary blob */
#define MY_BIT     8            /* bit(n): an integer (the bits) */

/* How a text column compares (from its collation). */
#define MY_COLL_CI     1        /* case- or accent-insensitive */
#define MY_COLL_BIN    2        /* binary-ordered, PAD SPACE (_bin) */
#define MY_COLL_EXACT  3        /* byte order, no padding (binary, NO PAD
                                ** _bin): equality is SQLite's */
#define MY_COLL_CS     4        /* any other (case-sensitive _cs): only
                                ** equality, loosely */

typedef struct MyConn MyConn;
typedef struct MyCursor MyCursor;
typedef struct MyParams MyParams;
typedef struct MyHeld MyHeld;
typedef struct MyBatch MyBatch;
typedef struct MyTab MyTab;

/* INSERT rows waiting to be sent as one multi-row INSERT (write.c). */
struct MyBatch {
  FedTable *pTab;               /* Table of the rows waiting, or NULL */
  u64 mCol;                     /* Columns written */
  int nRow;                     /* Rows in pSql */
  sqlite3_str *pSql;            /* "INSERT INTO t (..) VALUES (..),(..)" */
};

/* Per-table state (FedTable.pStoreTab): the engine, asked at the first
** write of the table on a connection. */
#define MY_ENGINE_UNKNOWN 0
#define MY_ENGINE_TXN     1     /* InnoDB and the like: transactional */
#define MY_ENGINE_NONTXN  2     /* MyISAM, MEMORY, Aria, ...: refused */
struct MyTab {
  int eEngine;                  /* MY_ENGINE_* */
  char *zEngine;                /* Its name, for the error */
};

/* The values of a deparsed command, in the order of its '?' marks: each a
** copy (NULL for SQL NULL) with its length and whether it is a number
** (written bare) or text (written as a quoted literal). */
struct MyParams {
  int n, nAlloc;
  char **az;
  int *an;
  u8 *aNum;
};

struct MyConn {
  FedConn base;                 /* Base class. Must be first */
  void *my;                     /* MYSQL* */
  MyCursor *pActive;            /* Cursor streaming on this connection */
  i64 nCmdTimeoutMs;            /* command_timeout in ms; 0: none */
  int bDead;                    /* A wait was cut short: do not reuse */
  int bBeginPending;            /* A write transaction owes its START */
  int bOpen;                    /* START TRANSACTION was sent */
  char *zDoom;                  /* Rows of an earlier statement failed:
                                ** every command fails with this until
                                ** ROLLBACK (or ROLLBACK TO) */
  MyBatch batch;                /* INSERT rows waiting */
};

/* One row held in memory (a scan interrupted by another command): per
** result column a 4-byte length (-1 for NULL), the bytes and a NUL. */
struct MyHeld {
  MyHeld *pNext;
  int nByte;
  char a[];
};

struct MyCursor {
  MyConn *pConn;                /* Connection of the current scan */
  void *pRes;                   /* MYSQL_RES* streaming, or NULL */
  int bEof;
  int nField;
  MyHeld *pHeld, *pHeldLast;    /* Rows held, oldest first */
  MyHeld *pRow;                 /* The current held row, owned, or NULL */
  const char *azVal[FED_MAX_COLUMNS];   /* Current row (NULL: SQL NULL) */
  int anVal[FED_MAX_COLUMNS];
  int aResCol[FED_MAX_COLUMNS]; /* Result column of each table column */
  i64 iRowid;
  i64 iExplain;
  char *zHeldErr;               /* Error met while holding rows */
  char *zSql;                   /* The query, for error messages */
};

static inline FedContext *myCtx(MyConn *p){
  return p->base.pServer->pCtx;
}

/**************************************************************************
** conn.c: connect (DSN, options, password_env), bounded and interruptible
** waits over the non-blocking API, running commands, transactions.
*/
int fedMyConnect(FedServer *pServer, FedConn **ppConn, char **pzErr);
void fedMyDisconnect(FedConn *pConn);
int fedMyIsAlive(FedConn *pConn);
int fedMyServerCheck(FedServer *pServer, char **pzErr);
int fedMyQueryStart(MyConn *p, const char *zSql, int nParam,
                    const char *const *azVal, const int *anVal,
                    void **ppRes, i64 *piSeq, char **pzErr);
int fedMyFetch(MyConn *p, void *pRes, char ***pazRow,
               unsigned long **panLen, char **pzErr);
void fedMyFreeResult(MyConn *p, void *pRes);
int fedMyExec(MyConn *p, const char *zSql, char **pzErr);
int fedMyExecOp(MyConn *p, const char *zSql, const char *zOp,
                i64 *pnChanged, char **pzErr);
void fedMyConnIdle(MyConn *p);

/**************************************************************************
** txn.c: the remote transaction of a connection: START TRANSACTION (owed
** until the first command that needs it), COMMIT, ROLLBACK, savepoints,
** the last resource's commit marker (table federate_markers).
*/
int fedMyReady(MyConn *p, char **pzErr);
int fedMyBegin(FedConn *pConn, int bSnapshot, char **pzErr);
int fedMyCommit(FedConn *pConn, char **pzErr);
int fedMyRollback(FedConn *pConn, char **pzErr);
int fedMySavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                   char **pzErr);
int fedMyRelease(FedConn *pConn, int iLevel, char **pzErr);
int fedMyRollbackTo(FedConn *pConn, int iLevel, char **pzErr);
int fedMyMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                     char **pzErr);
int fedMyMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr);
int fedMyMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                    int *pn, char **pzErr);

/**************************************************************************
** write.c: xUpdate: INSERT rows batched into multi-row INSERTs, UPDATE
** and DELETE by primary key, tables of non-transactional engines refused.
*/
int fedMyUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                i64 *piRowid, char **pzErr);
int fedMyFlush(FedConn *pConn, char **pzErr);
int fedMyFlushBatch(MyConn *p, char **pzErr);
void fedMyBatchClear(MyBatch *b);

/**************************************************************************
** table.c: describe (information_schema), column kinds, decoding values
** (pure), fed_import's list, the catalog query helper.
*/
int fedMyDescribe(FedConn *pConn, FedTable *pTab, char **pzErr);
int fedMyColumns(FedTable *pTab, char **pzErr);
int fedMyCollClass(const FedColumn *pCol);
void fedMyValue(sqlite3_context *ctx, const FedColumn *pCol,
                const char *z, int n);
int fedMyListTables(FedConn *pConn, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr);
int fedMyCatalog(MyConn *p, const char *zSql, int nParam,
                 const char *const *azParam, int nCol, char ***pazOut,
                 int *pnRow, char **pzErr);
int fedMyRemoteName(FedTable *pTab, char **pzDb, char **pzTable,
                    char **pzErr);

/**************************************************************************
** deparse.c (pure): what may run remotely and its SQL text with '?' marks
** and the values, and the text with the values written in.
*/
int fedMyPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs);
int fedMyOrderable(FedTable *pTab, int iCol, int bDesc);
void fedMyQuoteIdent(sqlite3_str *s, const char *z);
int fedMyDeparseSelect(FedTable *pTab, const FedPlan *pPlan, int argc,
                       sqlite3_value **argv, int *aResCol, char **pzSql,
                       MyParams *pParams);
char *fedMyRender(const char *zSql, const MyParams *pParams);
void fedMyParamsFree(MyParams *p);
int fedMyWriteLiteral(sqlite3_str *s, FedTable *pTab, int iCol,
                      sqlite3_value *pVal, char **pzErr);
int fedMyDeparseInsert(sqlite3_str *s, FedTable *pTab, u64 mCol);
int fedMyDeparseRow(sqlite3_str *s, FedTable *pTab, u64 mCol,
                    sqlite3_value **aVal, char **pzErr);
int fedMyDeparseUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                       char **pzSql, char **pzErr);
char *fedMyDeparseSavepoint(const char *zVerb, int iLevel);

/**************************************************************************
** query.c: pass-through (fed_query/fed_exec), transaction control and
** session settings refused.
*/
int fedMyQuery(FedConn *pConn, const char *zQuery, int nParam,
               sqlite3_value **apParam, char ***pazRow, int *pnRow,
               i64 *pnChanged, char **pzErr);

/**************************************************************************
** scan.c: scans, streaming one row at a time (mysql_use_result), holding
** the rest of a scan while another command needs the connection.
*/
int fedMyOpen(FedCursor *pFedCsr, char **pzErr);
void fedMyClose(FedCursor *pFedCsr);
int fedMyFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                char **pzErr);
int fedMyNext(FedCursor *pFedCsr, char **pzErr);
int fedMyEof(FedCursor *pFedCsr);
int fedMyColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol);
int fedMyRowid(FedCursor *pFedCsr, i64 *piRowid);
void fedMyCursorHold(MyCursor *pCsr);
void fedMyTableFree(FedTable *pTab);

#endif /* MYINT_H */
