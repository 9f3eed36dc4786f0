/*
** redisInt.h: what the files of the Redis store (vtab/redis/) share:
** constants, the store's private structs (connection, transaction
** queue and shadows, pipeline, table, cursor) and, one banner per file,
** the functions one file calls in another.  Nothing here is exported
** (-fvisibility=hidden); fedRedisStore (redis.c) is the store's only
** entry.
*/
#ifndef REDISINT_H
#define REDISINT_H

#include "fedInt.h"
#include "kv.h"
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdlib.h>
#include <poll.h>
#include <errno.h>
#include <limits.h>
#include <time.h>
#include <sys/socket.h>

#define RD_STORE "redis"

/* Redis types of keys, and table modes. */
#define RT_NONE   0
#define RT_STRING 1
#define RT_HASH   2
#define RT_LIST   3
#define RT_SET    4
#define RT_ZSET   5
#define RT_OTHER  6             /* stream, module types */
#define RM_ANY    7             /* Table mode: every type, one row per key */
#define RM_FIELDS 8             /* Table mode: a hash, one column per field */

/* Conversion kinds of columns (FedColumn.eKind). */
#define RC_KEY    1
#define RC_FIELD  2
#define RC_VALUE  3
#define RC_SCORE  4
#define RC_IDX    5
#define RC_TTL    6
#define RC_TYPE   7
#define RC_F_TEXT 8             /* Declared hash fields (fields=) */
#define RC_F_INT  9
#define RC_F_REAL 10
#define RC_F_BLOB 11

/* Keys that start with RD_RESERVED belong to federate and no table shows
** them.  RD_MARKER is the hash, in the DSN's database, of the commit
** markers of transactions where this server was the last resource:
** field = global id, value = unix time of the commit (docs/transactions.md).
** It has no expiry: recovery may need a marker long after. */
#define RD_RESERVED    "__federate:"
#define RD_MARKER      "__federate:txn"
#define RD_FENCE       "__federate:fence:"

#define RD_PIPE_KEYS   1000     /* Keys per pipelined batch of lookups */
#define RD_WATCH_CHUNK 1000     /* Keys per WATCH command */
#define RD_EXPLAIN_ARG 100      /* Bytes of one argument shown in fed_explain */

typedef struct RBuf RBuf;
typedef struct RArena RArena;
typedef struct RChunk RChunk;
typedef struct RedisPipe RedisPipe;
typedef struct RedisConn RedisConn;
typedef struct RedisTable RedisTable;
typedef struct RedisOp RedisOp;
typedef struct RedisShadow RedisShadow;
typedef struct RedisTxn RedisTxn;
typedef struct RedisRow RedisRow;
typedef struct RedisCursor RedisCursor;
typedef struct RedisTerm RedisTerm;
typedef struct RedisIdent RedisIdent;
typedef struct RedisDsn RedisDsn;

/* A byte string, sqlite3_malloc'd and NUL-terminated (z==0: absent). */
struct RBuf {
  char *z;
  int n;
};

/* Copies that stay where they are until the arena is freed. */
struct RChunk {
  RChunk *pNext;
  int nUsed, nAlloc;
  /* Bytes follow */
};
struct RArena {
  RChunk *pFirst;
};

/*
** Reply objects of a scan's batches, allocated from chunks of this arena
** instead of one malloc() per object: hiredis 0.14 lets a reader build its
** replies with other functions (redisReplyObjectFunctions), and rdPipeRun()
** installs rdReplyFns for a pipeline that has an arena.  Such replies are
** never freeReplyObject()ed: they die all together when the arena is
** reset.  The chunks come from sqlite3_malloc64, so they are in SQLite's
** accounting, and an allocation that fails makes the reader fail with
** REDIS_ERR_OOM, which rdPipeRun() reports as SQLITE_NOMEM.
*/
typedef struct RReplyArena RReplyArena;
struct RReplyArena {
  RChunk *pFirst;               /* Chunks in use, newest first */
  RChunk *pSpare;               /* Chunks kept for the next batches */
};

/*
** A set of keys, for the keys a scan has returned (SCAN may return a key
** twice).  Each key costs one 8-byte slot of an open-addressing table
** (at most 3/4 full) and its bytes once in a log: a slot holds the top 24
** bits of the key's 64-bit hash and the 40-bit position of the key in the
** log.  The tag only spares most comparisons; a key is a duplicate only
** when its bytes equal the logged ones, so the set is exact.  The log is
** blocks of up to KEYLOG_BLOCK bytes, each record a varint length and the
** bytes; a key too long for a block gets a block of its own.  About 20 to 30
** bytes per short key, a third of a table of pointers to copies.
*/
#define KEYLOG_SHIFT 20
#define KEYLOG_BLOCK (1<<KEYLOG_SHIFT)
typedef struct RKeySet RKeySet;
struct RKeySet {
  u64 *aSlot;                   /* 0: empty, else tag<<40 | 1+position */
  int nSlot;                    /* Power of two, or 0 */
  int nUsed;
  char **aBlock;                /* The log */
  int nBlock, nBlockAlloc;
  int nLast, nLastAlloc;        /* Bytes used in aBlock[nBlock-1], its size */
};

/**************************************************************************
** The state of a connection and of its transaction.
*/

/* Queued writes (ROP_*): each becomes one command at commit. */
#define ROP_SET     1           /* SET key a0 [NX] [EX n | KEEPTTL] */
#define ROP_DEL     2           /* DEL key */
#define ROP_EXPIRE  3           /* EXPIRE key n */
#define ROP_PERSIST 4           /* PERSIST key */
#define ROP_RENAME  5           /* RENAME[NX] key a0 */
#define ROP_HSET    6           /* HSET key f v ... / HSETNX key f v */
#define ROP_HDEL    7           /* HDEL key f ... */
#define ROP_RPUSH   8           /* RPUSH key a0 */
#define ROP_LSET    9           /* LSET key n a0, a1 = the value read */
#define ROP_LREM    10          /* LREM key 0 a0 (the tombstone) */
#define ROP_SADD    11          /* SADD key a0 */
#define ROP_SREM    12          /* SREM key a0 */
#define ROP_ZADD    13          /* ZADD key [NX|XX] score a0 */
#define ROP_ZREM    14          /* ZREM key a0 */

/* Conditions checked before EXEC (RedisOp.eCond). */
#define RCOND_NONE   0
#define RCOND_NX     1          /* The row must not exist (INSERT) */
#define RCOND_NXKEY  2          /* The key must not exist (fields INSERT) */
#define RCOND_STRING 3          /* The key must hold a string (any mode) */
#define RCOND_XX     4          /* ZADD XX: update only */

/* SET and the key's expiry (RedisOp.eTtl). */
#define RTTL_CLEAR 0            /* SET: no expiry */
#define RTTL_KEEP  1            /* SET ... KEEPTTL */
#define RTTL_EX    2            /* SET ... EX iNum */

struct RedisOp {
  FedKvOp hdr;                  /* The batch layer's part (ext/kv.h): the
                                ** kind (ROP_*), database (hdr.iSpace),
                                ** key, RENAME's new name (hdr.aKey2),
                                ** bSkip (an ignored conflict).  Must be
                                ** first */
  u8 eCond;                     /* RCOND_* */
  u8 bIgnore;                   /* INSERT OR IGNORE: a failed condition
                                ** drops the row's commands */
  u8 eTtl;                      /* RTTL_*, for ROP_SET */
  int iRow;                     /* xUpdate call that made it */
  i64 iNum;                     /* Seconds (EX, EXPIRE) or list index */
  double rScore;                /* ZADD */
  int nArg;
  RBuf *aArg;                   /* Arguments after the key */
};

/*
** A shadow: what a key holds as seen by the transaction, i.e. its state on
** the server when it was read (under WATCH) with the transaction's queued
** commands applied.  bContent==0: only the type is known.
*/
struct RedisShadow {
  int eType;                    /* RT_* (RT_NONE: no such key) */
  int bContent;                 /* Content below is complete */
  i64 iTtl;                     /* Seconds, -1 none */
  RBuf str;                     /* string */
  FedKvHash map;                    /* hash: field -> RBuf*; set: members;
                                ** zset: member -> score (elem.r) */
  RBuf *aList;                  /* list */
  int nList, nListAlloc;
};

struct RedisTxn {
  FedKvTxn kv;                  /* The queue (RedisOp), savepoint marks,
                                ** the doom, bActive, bSnapshot (ext/kv.h);
                                ** kv.index: the dirty keys.  Must be
                                ** first */
  int bWatched;                 /* WATCH sent in this transaction */
  int iRowSeq;                  /* Row groups (RedisOp.iRow) */
  FedKvHash shadow;             /* (db, key) -> RedisShadow* */
  FedKvHash seenType;           /* (db, key) -> type a watched read saw */
  FedKvHash lrem;               /* (db, key): lists with tombstones set by
                                ** the current statement */
};

/* Op i of the queue of RedisTxn t. */
#define rdOp(t, i) ((RedisOp*)fedKvOp(&(t)->kv, (i)))

struct RedisConn {
  FedConn base;                 /* Base class. Must be first */
  redisContext *c;
  int bDead;                    /* Closed, timed out or out of step */
  int iDb;                      /* The DSN's database */
  int iCurDb;                   /* Database selected now, -1 unknown */
  int bUnwatch;                 /* UNWATCH owed before the next command */
  int nCmdTimeout;              /* Seconds, 0 none (for messages) */
  int eWait;                    /* How the last wait ended early, for
                                ** connIoError(): FED_WAIT_TIMEOUT or
                                ** FED_WAIT_INTERRUPT (0: it did not) */
  RedisTxn txn;
  char zTomb[48];               /* Marks list elements to delete (LREM) */
  int nTomb;
  RedisConn *pSub;              /* Subscribed to keyspace events (cache) */
};

struct RedisPipe {
  int rc;                       /* Sticky error (SQLITE_NOMEM) */
  int nCmd, nCmdAlloc;
  int *aFirst;                  /* Index of each command's first argument */
  int *aDb;                     /* Database a command runs in (-1: any) */
  int nArg, nArgAlloc;
  const char **azArg;
  size_t *anArg;
  RArena arena;                 /* Arguments that needed a copy */
  redisReply **apReply;         /* One per command after rdPipeRun() */
  int nReply, nReplyAlloc;      /* Replies in apReply, its size */
  RReplyArena *pReplies;        /* If not NULL, the replies are built here
                                ** (owned by the caller), else malloc'd and
                                ** owned by P */
  char *zOut;                   /* The pipeline in the protocol, to send */
  i64 nOut, nOutAlloc;
  int bSent;                    /* rdPipeRun() handed every byte to the
                                ** kernel: the server may run all of it */
  int iBlame;                   /* 1 + the command a failure to read the
                                ** replies names (0: the first unanswered):
                                ** a transaction names its EXEC */
};

struct RedisDsn {
  char *zUser;                  /* ACL user, or NULL */
  char *zHost;                  /* TCP host, or NULL for a unix socket */
  char *zPath;                  /* Unix socket path */
  int iPort;
  int iDb;
};

struct RedisTable {
  int eMode;                    /* RT_STRING..RT_ZSET, RM_ANY, RM_FIELDS */
  char *zPattern;               /* Key space, a Redis glob */
  int nPattern;
  int iDb;                      /* Database, or -1 for the DSN's */
  int nScanCount;
  int iKey, iField, iValue, iScore, iIdx, iTtl, iType;   /* Columns, -1 */
  int iFirstField, nField;      /* fields=: its columns */
  FedKvHash ident;                  /* rowid -> RedisIdent* (rows read by this
                                ** statement that may be written) */
  int nOpenCsr;
};

/* What a rowid stands for, for tables whose rows are not named by one
** column: the key and the field, member or index, and what was read. */
struct RedisIdent {
  RBuf key;
  RBuf sub;                     /* field, member */
  RBuf val;                     /* value read (hash, list) */
  i64 iIdx;                     /* list index */
  double rScore;
};

/* One key to give a shadow (rdShadowLoad). */
typedef struct ShadowReq ShadowReq;
struct ShadowReq {
  int iDb;
  const char *z;
  int n;
  int eWant;                    /* Type whose content is needed, RT_NONE
                                ** when the type is enough, or -1 for a key
                                ** the queue overwrites first (not read) */
};

/* A pushed condition checked here, with its values copied from xFilter. */
struct RedisTerm {
  int eKind;                    /* RC_KEY, RC_FIELD (field or member),
                                ** RC_SCORE or RC_IDX */
  int op;                       /* FED_OP_* */
  FedKvHash set;                    /* EQ/IN: (class, bytes) of the values */
  char *zGlob;                  /* GLOB pattern */
  int bInt;                     /* Number: iVal, else rVal */
  i64 iVal;
  double rVal;
};

struct RedisRow {
  const char *zKey; int nKey;
  const char *zSub; int nSub;   /* hash field, set/zset member */
  const char *zVal; int nVal;   /* value; zVal==0: NULL */
  double rScore;
  i64 iIdx;
  i64 iTtl;                     /* -1: NULL */
  const char *zType;            /* any: the key's type */
  int iFv;                      /* fields=: first of nField values */
};

typedef struct RedisFv RedisFv;
struct RedisFv { const char *z; int n; };

struct RedisCursor {
  FedCursor *pFed;
  RedisTable *pRt;
  int iDb;                      /* Database of the table */
  int bWatch;                   /* WATCH the keys read */
  int bEof;
  int bEmpty;                   /* No row can match */
  int bNamed;                   /* Keys named by the plan, no SCAN */
  RBuf *aKey;                   /* Named keys */
  int nKey, iKey;
  char *zMatch;                 /* SCAN MATCH pattern ("*": none) */
  RBuf *aSub;                   /* Named fields/members, or NULL */
  int nSub;
  int bLo, bHi, bLoExcl, bHiExcl;   /* score bounds */
  double rLo, rHi;
  i64 iIdxLo, iIdxHi;           /* list bounds (iIdxHi -1: to the end) */
  RedisTerm *aTerm;             /* Conditions checked here */
  int nTerm;
  i64 nLimit, nOffset;          /* nLimit<0: none */
  i64 nPassed;                  /* Rows that passed the conditions */
  int bDone;                    /* LIMIT reached: no more batches */
  int bNoBlobGlob;              /* GLOB never matches a blob here */
  /* SCAN */
  char zCursor[24];
  int bScanStarted, bScanDone, bTailDone;
  redisReply *pScanKeys;        /* Last SCAN reply; keys from iPending on
                                ** are still to be read */
  int iPending;
  redisReply *pOldKeys;         /* The SCAN reply the batch's rows use */
  RReplyArena aReplies[2];      /* Owners of the replies of P, pScanKeys
                                ** and pOldKeys */
  int iScanArena;               /* aReplies[] holding pScanKeys */
  RKeySet seen;                 /* Keys returned, against SCAN duplicates */
  RBuf *aTail;                  /* The transaction's keys (this database)
                                ** written before the scan began: read after
                                ** SCAN's.  Keys written since (by this very
                                ** statement, through another table over the
                                ** key space) are not, as a statement does
                                ** not read the rows it inserts */
  int nTail;
  RKeySet tailSet;              /* The same keys, to look up: only they are
                                ** read through their shadows */
  /* The current batch */
  RedisPipe P;
  RArena arena;
  RedisRow *aRow;
  int nRow, nRowAlloc, iRow;
  RedisFv *aFv;
  int nFv, nFvAlloc;
  /* Scratch arrays of cursorFill(), kept from batch to batch */
  const char **azK;
  int *anK, *aiCmd;
  ShadowReq *aReq;
  int nKAlloc;
  /* The fields= columns read, as indexes of declared fields */
  int aField[FED_MAX_COLUMNS];
  int nFieldUsed;
};

/**************************************************************************
** containers.c
*/
int rdBufSet(RBuf *p, const char *z, int n);
void rdBufFree(RBuf *p);
int rdBufEq(const RBuf *p, const char *z, int n);
char *rdArenaDup(RArena *pA, const char *z, int n);
void rdArenaReset(RArena *pA);
void rdArenaFree(RArena *pA);
int rdKeySetAdd(RKeySet *p, const char *z, int n);
int rdKeySetHas(const RKeySet *p, const char *z, int n);
void rdKeySetClear(RKeySet *p);
void rdResultBytes(sqlite3_context *ctx, const char *z, int n);
void rdRenderArg(sqlite3_str *s, const char *zIn, int n);
char *rdRenderKey(const char *z, int n);
void rdValueBytes(sqlite3_value *pVal, const char **pz, int *pn);
const char *rdTypeName(int eType);
int rdTypeFromName(const char *z, int n);
int rdModeType(int eMode);
void rdDoubleArg(double r, char *zBuf, int nBuf);
int rdIntDoubleCmp(i64 i, double r);

/**************************************************************************
** match.c
*/
int rdKeyInSpace(const char *zPat, int nPat, const char *z, int n);
int rdMatchDisjoint(const char *zA, const char *zB);
char *rdPrefixPattern(const char *z);
char *rdGlobToMatch(const char *zGlob, int *pbNone);
char *rdLikeToMatch(const char *zLike);
int rdMatchScore(const char *z, int n);

/**************************************************************************
** proto.c
*/
void rdReplyArenaReset(RReplyArena *pA);
void rdReplyArenaFree(RReplyArena *pA);
extern redisReplyObjectFunctions rdReplyFns;
void rdPipeInit(RedisPipe *P);
void rdPipeFreeReplies(RedisPipe *P);
void rdPipeClear(RedisPipe *P);
void rdPipeFree(RedisPipe *P);
void rdPipeArg(RedisPipe *P, const char *z, int n);
void rdPipeArgCopy(RedisPipe *P, const char *z, int n);
void rdPipeArgInt(RedisPipe *P, i64 v);
void rdPipeCmd(RedisPipe *P, int iDb, const char *zName);
int rdPipeArgc(const RedisPipe *P, int iCmd);
char *rdCmdText(int argc, const char **azArg, const size_t *anArg);
char *rdPipeText(const RedisPipe *P, int iCmd);
i64 rdReplyRows(const redisReply *r);

/**************************************************************************
** conn.c
*/
void rdSetError(char **pzErr, const char *zWhat, const char *zCmd);
int rdPipeRun(RedisConn *p, RedisPipe *P, char **pzErr);
void rdPipeReplyError(RedisPipe *P, int iCmd, char **pzErr);
int rdIsWrongType(const redisReply *r);
int rdServerCheck(FedServer *pServer, char **pzErr);
void rdDisconnect(FedConn *pConn);
int rdIsAlive(FedConn *pConn);
int rdConnect(FedServer *pServer, FedConn **ppConn, char **pzErr);

/**************************************************************************
** table.c
*/
void rdTableFree(FedTable *pTab);
int rdDescribe(FedConn *pConn, FedTable *pTab, char **pzErr);
int rdColumns(FedTable *pTab, char **pzErr);
int rdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs);
int rdOrderable(FedTable *pTab, int iCol, int bDesc);

/**************************************************************************
** queue.c
*/
extern const FedKvDriver rdKvDriver;   /* txn.c */
void rdKvOpFree(FedKvOp *);
void rdKvOpDrop(FedKvTxn *, FedKvOp *);
void rdKvCleared(FedKvTxn *);
void rdShadowReset(RedisShadow *sh);
void rdShadowFree(void *pArg);
void rdTxnClear(RedisTxn *t);
RedisShadow *rdShadowGet(RedisTxn *t, int iDb, const char *z, int n);
void rdShadowDrop(RedisTxn *t, int iDb, const char *z, int n);
int rdOpKeys(const RedisOp *pOp, RBuf *aKey);
int rdTxnIsDirty(RedisTxn *t, int iDb, const char *z, int n);
void rdTxnTruncate(RedisTxn *t, int nOp);
RedisOp *rdOpNew(RedisTxn *t, int eOp, int iDb, int iRow,
                 const char *zKey, int nKey, int nArg);
int rdOpCommit(RedisTxn *t);
int rdOpType(const RedisOp *pOp);
int rdOpNeedsContent(const RedisOp *pOp);
int rdOpNeedsCheck(const RedisOp *pOp);
void rdOpError(const RedisOp *pOp, int eErr, const RedisShadow *sh,
               char **pzErr);
int rdShadowApply(const RedisOp *pOp, RedisShadow *sh, RedisShadow *sh2,
                  char **pzErr);
int rdShadowFill(RedisShadow *sh, redisReply *rType, redisReply *rTtl,
                 redisReply *rData, int eWant);
void rdPipeFetchWhole(RedisPipe *P, int iDb, int eType, const char *z,
                      int n);
int rdShadowLoad(RedisConn *p, ShadowReq *aReq, int nReq, char **pzErr);

/**************************************************************************
** plan.c
*/
int rdTermNumber(sqlite3_value *pVal, int *pbInt, i64 *piVal,
                 double *prVal);
int rdCursorPlan(RedisCursor *pCsr, int argc, sqlite3_value **argv,
                 char **pzErr);
int rdKeyWanted(RedisCursor *pCsr, const char *z, int n);
int rdRowWanted(RedisCursor *pCsr, const RedisRow *pRow);
void rdFetchCmds(RedisCursor *pCsr, RedisPipe *P, const char *z, int n,
                 int bTtl);
void rdScanCmd(RedisCursor *pCsr, RedisPipe *P);

/**************************************************************************
** scan.c
*/
int rdOpen(FedCursor *pFedCsr, char **pzErr);
void rdClose(FedCursor *pFedCsr);
int rdFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
             char **pzErr);
int rdNext(FedCursor *pFedCsr, char **pzErr);
int rdEof(FedCursor *pFedCsr);
int rdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol);
int rdRowid(FedCursor *pFedCsr, i64 *piRowid);

/**************************************************************************
** write.c
*/
int rdAddOp(RedisConn *p, int eOp, int eCond, int iDb, int iRow,
            int bIgnore, const char *zKey, int nKey, int nArg,
            const char **azArg, const int *anArg, i64 iNum,
            char **pzErr);
int rdUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
             i64 *piRowid, char **pzErr);

/**************************************************************************
** txn.c
*/
int rdBegin(FedConn *pConn, int bSnapshot, char **pzErr);
int rdFlush(FedConn *pConn, char **pzErr);
int rdTxnValidate(RedisConn *p, char **pzErr);
int rdCommit(FedConn *pConn, char **pzErr);
int rdRollback(FedConn *pConn, char **pzErr);
int rdSavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                char **pzErr);
int rdRelease(FedConn *pConn, int iLevel, char **pzErr);
int rdRollbackTo(FedConn *pConn, int iLevel, char **pzErr);
int rdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                  char **pzErr);
int rdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr);
int rdMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                 int *pn, char **pzErr);

/**************************************************************************
** query.c
*/
int rdQuery(FedConn *pConn, const char *zQuery, int nParam,
            sqlite3_value **apParam, char ***pazRow, int *pnRow,
            i64 *pnChanged, char **pzErr);

/**************************************************************************
** undo.c
*/
int rdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                 char **pzErr);
int rdImageRead(FedConn *pConn, const FedUndoImage *pImg, char **paNow,
                int *pnNow, i64 *piGuard, char **pzErr);
int rdImageSame(const char *a, int na, const char *b, int nb);
void rdImageRelease(FedConn *pConn);
int rdImageRestore(FedConn *pConn, const FedUndoImage *pImg, i64 iGuard,
                   char **pzErr);
int rdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                char **pzErr);

/**************************************************************************
** notify.c
*/
int rdWatch(FedConn *pConn, FedTable *pTab, char **pzErr);
int rdChanges(FedConn *pConn, char ***pazRel, int *pnRel);

/**************************************************************************
** l2.c: the key-value capability (FedStore.pKv) for the L2 cache.
*/
extern const FedKvOps fedRedisKv;

#endif /* REDISINT_H */
