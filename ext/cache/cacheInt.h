/*
** cache/cacheInt.h: what the files of ext/cache/ share.  The cache is the
** L1 result cache, kept in a local SQLite database (a file or ":memory:"),
** and the optional L2 in a store shared by processes (Redis).
**
**   CREATE VIRTUAL TABLE t USING postgres(server=pg, table=t,
**       cache_ttl=300, cache_max_bytes=67108864, cache_db='/var/cache/t.db',
**       cache_notify=on, cache_l2=rd, cache_l2_ttl=600);
**   SELECT * FROM fed_cache_stats;       -- per table: hits, misses, ...
**   SELECT fed_cache_clear('t');         -- or fed_cache_clear() for all
**   SELECT fed_cache_watch('t');         -- PostgreSQL: install the trigger
**
** Notes on the cache:
**
** An entry is the result of one remote scan: the rows the store returned
** for a pushed-down plan (the columns read, the pushed terms and their
** values, ORDER BY, LIMIT/OFFSET), kept in the cache database as
**
**   fed_cache_table(tid, tkey, name, server)      one row per remote table
**   fed_cache_entry(id, tid, qkey, cols, nterm, bLimit, created, used,
**                   nbytes, nrow)                 one row per entry
**   fed_cache_term(entry, termno, col, op, val)  the entry's pushed terms
**   fed_cache_r<tid>(rid, rec)                    the rows; rowid is
**                                                 (entry << 32) + seq
**
** tkey identifies the remote table (store, DSN, remote name, column
** specification), so that two local tables over one remote table share
** entries and a changed column list never reads old rows.  A row is one
** record blob (rec: see "Rows" below) that keeps the storage class the
** store gave each value; reading an entry decodes it by hand.
**
** A later scan is answered from an entry when the entry is complete and
** within its TTL and either (a) the request is identical (qkey), or (b) the
** entry has no LIMIT, holds every column the scan reads, and each of the
** entry's terms is implied by the scan's terms (same or stricter: "x>5" is
** implied by "x>7" and by "x=9"; an entry with no term by everything).
** On a TEXT or untyped column, a loosely pushed term's value may come from
** a column of numeric affinity, which SQLite then compares numerically
** ('010' = 10), unseen in xFilter: such a term is implied only by an
** entry's loose term holding the same values (cacheAffKnown(), request.c).
** An identical request reads the entry's rows as they are (the store
** already applied its terms, order and limit).  Otherwise the rows are
** read with an SQL query over the cached rows that applies the scan's
** exactly-pushed terms (the ones SQLite will not check again), its ORDER
** BY and LIMIT/OFFSET to the values fed_cache_val() decodes.  Values are
** bound with the column's comparison affinity applied, as SQLite applies
** it when it compares a column of the virtual table, so that the answer
** is the one SQLite would give over the same rows (fed_cache_val(), like
** a column without a declared type, has no affinity of its own).
**
** Filling: a scan that can be cached and is not answered from the cache
** copies each row into the cache database as SQLite moves past it (an SQL
** function calls the store's xColumn).  The entry is marked complete only
** when the store reports the end of the scan; a scan that failed, or that
** SQLite abandoned before its end (LIMIT applied by SQLite, EXISTS), is
** deleted.  All fills run inside one transaction of the cache database,
** committed when no fill is in progress: a crash while filling leaves
** nothing behind, because the rows were never committed.
**
** Correctness against writes:
**   - A scan of a statement that writes the table, and any scan of a
**     server that has uncommitted writes of this transaction, neither reads
**     nor fills the cache (reads see the transaction's own writes).
**   - Every write through federate deletes the table's entries at once and
**     again when the transaction ends (commit or rollback), so that a fill
**     by another connection between the two cannot survive; a write by
**     fed_exec() clears every table of its server.  A table generation
**     counter abandons a fill that was running when its table was written.
**   - Changes by others: tables with cache_notify=on are watched through
**     the store (xWatch/xChanges: PostgreSQL LISTEN fed_cache with a trigger
**     installed by fed_cache_watch, Redis keyspace events) and served from
**     the cache only while the connection listens; everything else relies
**     on the TTL.  docs/cache.md has the table.
**
** Bounds: each table's entries are bounded by cache_max_bytes (record bytes
** plus a per-row overhead, counted every CACHE_SIZE_EVERY rows); after each
** fill the least recently used entries go first.  A fill that alone
** exceeds the bound is abandoned.  A request with terms is answered by
** subsumption only from entries of at most CACHE_SUBSUME_ROWS rows.
*/
#ifndef FED_CACHEINT_H
#define FED_CACHEINT_H
#include "fedInt.h"

#define CACHE_APP_ID      0x46454443     /* 'FEDC', PRAGMA application_id */
#define CACHE_FORMAT      3              /* PRAGMA user_version: rows as
                                         ** records (1: a column a value;
                                         ** 2: keys cut at an untyped
                                         ** column's term) */
#define CACHE_DEF_TTL_MS  60000
#define CACHE_DEF_MAX     (64*1024*1024)
#define CACHE_ROW_OVERHEAD 16
#define CACHE_MAX_CAND    32             /* Entries tried for subsumption */
#define CACHE_SIZE_EVERY  1024           /* Rows between two byte counts */
#define CACHE_SUBSUME_ROWS 50000         /* Largest entry read for a request
                                         ** with terms it does not match */

/* Milliseconds since the epoch (options.c). */
i64 fedCacheNow(void);

/* One open cache database; shared by the tables of a connection that name
** the same cache_db. */
struct FedCacheDb {
  char *zPath;
  sqlite3 *db;
  int nFill;                    /* Fills in progress */
  int bTxn;                     /* The fill transaction is open */
  FedCursor *pFillCsr;          /* Cursor whose row fed_cache_col() reads */
  FedCacheDb *pNext;
};

/* A table's cache settings and counters (FedTable.pCache). */
struct FedCacheTab {
  FedTable *pTab;
  u8 bOn;                       /* Caching enabled */
  u8 bNotify;                   /* Invalidate on NOTIFY fed_cache */
  i64 nTtlMs;
  i64 nMaxBytes;
  char *zDbPath;                /* cache_db */
  char *zL2;                    /* cache_l2 server, or NULL */
  i64 nL2TtlMs;
  FedCacheDb *pDb;              /* Opened at first use */
  i64 iTid;                     /* fed_cache_table.tid, 0 = not yet */
  i64 iGen;                     /* Bumped by every invalidation */
  u8 bDirty;                    /* Written in the current transaction */
  i64 iListenSeen;              /* FedConn.iListen the entries are valid for */
  FedCacheStat *pStat;          /* Counters, in FedContext */
};


/* Counters by table name; they outlive the FedTable (xDisconnect). */
struct FedCacheStat {
  char *zName;                  /* "schema.table" */
  FedTable *pTab;               /* The table while connected, or NULL */
  i64 nHit, nMiss, nEvict, nFill, nL2Hit;
  FedCacheStat *pNext;
};

/* One value of a request, with the comparison affinity of its column. */
typedef struct CacheVal CacheVal;
struct CacheVal {
  sqlite3_value *pVal;          /* Copy of the xFilter value */
  const char *zAff;             /* Affinity to apply, or NULL */
};

typedef struct CacheTerm CacheTerm;
struct CacheTerm {
  int iCol, op;
  u8 bExact;
  int nVal;                     /* 0 (unary), 1, or the IN list's size */
  CacheVal *aVal;
};

/* One value of a cached row, decoded from its record (see "Rows"). */
typedef struct CacheCell CacheCell;
struct CacheCell {
  int eType;                    /* SQLITE_INTEGER, ..., SQLITE_NULL */
  int n;                        /* Bytes of a text or blob */
  union { i64 i; double r; const u8 *z; } u;   /* z: into the record */
};

/* A scan's request, and the cursor's cache state (FedCursor.pCache). */
struct FedCacheCsr {
  FedCacheTab *pCT;
  u64 cols;                     /* Columns read (plan colUsed) */
  int nTerm;
  CacheTerm *aTerm;
  sqlite3_value *pLimit;        /* Copies, or NULL */
  sqlite3_value *pOffset;
  char *zKey;                   /* Canonical request text */
  /* Reading from the cache */
  sqlite3_stmt *pRead;
  int bEof;
  CacheCell *aCell;             /* The current row, decoded (pTab->nCol) */
  /* Filling */
  u8 bFill;
  i64 iEntry;                   /* fed_cache_entry.id being filled */
  i64 iSeq;
  i64 iSized;                   /* Rows before this one are in nBytes */
  i64 nBytes;
  i64 iGen;                     /* FedCacheTab.iGen when the fill began */
  i64 iServerGen;               /* FedContext.iCacheServerGen, likewise */
  i64 iL2Gen;                   /* L2 generation read at the miss, or -1 */
  sqlite3_stmt *pIns;
};

/**************************************************************************
** Shared between the files of ext/cache/, by the file that defines them.
*/

/* db.c */
int fedCacheExec(FedCacheDb *pDb, const char *zSql);
char *fedCacheRelKey(FedTable *pTab);
int fedCacheTabReady(FedCacheTab *pCT, char **pzErr);
char *fedCacheTableKey(FedTable *pTab);

/* invalidate.c */
int fedCacheApplyChanges(FedTable *pTab, FedConn *pConn);
int fedCacheClearTid(FedCacheDb *pDb, i64 iTid);
int fedCacheEntryDelete(FedCacheDb *pDb, i64 iTid, i64 iEntry);
int fedCacheListen(FedCacheTab *pCT, FedConn *pConn);
int fedCacheWatch(FedConn *pConn, FedTable *pTab, char **pzErr);
/* 1 if a scan of pTab must have its connection before the cache is asked
** (cache_notify: the notifications arrive on it). */
int fedCacheWantsConn(FedTable *);

/* l2.c */
void fedCacheL2Bump(FedCacheTab *pCT);
int fedCacheL2Get(FedCursor *pCsr, i64 *piEntry);
void fedCacheL2Put(FedCursor *pCsr, i64 iEntry);

/* options.c */
extern const FedServerHook fedCacheServerHook;
int fedCacheTabInit(FedTable *pTab, char **pzErr);

/* request.c */
int fedCacheBind(sqlite3_stmt *pStmt, int i, const CacheVal *pV);
void fedCacheCsrReset(FedCacheCsr *p);
int fedCacheLookup(FedCacheCsr *p, FedTable *pTab, i64 *piEntry,
                   int *pbSame);
int fedCacheReadPrepare(FedCursor *pCsr, FedCacheCsr *p, i64 iEntry,
                        int bSame);
int fedCacheRequest(FedCursor *pCsr, FedCacheCsr *p, int argc,
                    sqlite3_value **argv);
void fedCacheTouch(FedCacheTab *pCT, i64 iEntry);
void fedCacheValText(sqlite3_str *s, sqlite3_value *p);

/* row.c */
void fedCacheCellResult(sqlite3_context *ctx, const CacheCell *c);
int fedCacheRecDecode(const u8 *a, int n, CacheCell *aCell, int nCell,
                      int bOne);
void fedCacheRecFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv);
void fedCacheValFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv);

/* scan.c */
void fedCacheDbSettle(FedCacheDb *pDb);
int fedCacheEntryCreate(FedCacheTab *pCT, FedCacheCsr *p, i64 iCreated,
                        i64 *piEntry);
int fedCacheFillBegin(FedCacheDb *pDb);

#endif /* FED_CACHEINT_H */
