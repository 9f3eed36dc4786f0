/*
** cache.c: the L1 result cache, kept in a local SQLite database (a file or
** ":memory:"), and the optional L2 in a Redis server shared by processes.
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
#include "fedInt.h"

#define CACHE_APP_ID      0x46454443     /* 'FEDC', PRAGMA application_id */
#define CACHE_FORMAT      2              /* PRAGMA user_version: rows as
                                         ** records (1: a column a value) */
#define CACHE_DEF_TTL_MS  60000
#define CACHE_DEF_MAX     (64*1024*1024)
#define CACHE_ROW_OVERHEAD 16
#define CACHE_MAX_CAND    32             /* Entries tried for subsumption */
#define CACHE_SIZE_EVERY  1024           /* Rows between two byte counts */
#define CACHE_SUBSUME_ROWS 50000         /* Largest entry read for a request
                                         ** with terms it does not match */

/* Milliseconds since the epoch. */
static i64 cacheNow(void){
  return fedNowUsec()/1000;
}

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

static void cacheL2Put(FedCursor *, i64 iEntry);
static int cacheL2Get(FedCursor *, i64 *piEntry);
static void cacheL2Bump(FedCacheTab *);

/**************************************************************************
** Options.
*/
const char *const fedCacheOptions[] = {
  "cache", "cache_ttl", "cache_max_bytes", "cache_db", "cache_notify",
  "cache_l2", "cache_l2_ttl", 0
};

/* The value of option zKey for pTab: the table's, else its server's. */
static const char *cacheOpt(FedTable *pTab, FedServer *pServer,
                            const char *zKey){
  const char *z = fedConfigGet(pTab->pCfg, zKey);
  if( z==0 && pServer ) z = fedConfigGet(pServer->pOpt, zKey);
  return z;
}

static int cacheBool(const char *zWho, const char *zKey, const char *z,
                     int *pb, char **pzErr){
  if( sqlite3_stricmp(z, "on")==0 || sqlite3_stricmp(z, "1")==0
   || sqlite3_stricmp(z, "true")==0 || sqlite3_stricmp(z, "yes")==0 ){
    *pb = 1;
  }else if( sqlite3_stricmp(z, "off")==0 || sqlite3_stricmp(z, "0")==0
   || sqlite3_stricmp(z, "false")==0 || sqlite3_stricmp(z, "no")==0 ){
    *pb = 0;
  }else{
    fedSetError(pzErr, "%s: %s must be on or off, not \"%s\"", zWho, zKey, z);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* Seconds (decimal fractions allowed) to milliseconds, 1 ms .. 10 years. */
static int cacheSeconds(const char *zWho, const char *zKey, const char *z,
                        i64 *pMs, char **pzErr){
  const char *p = z;
  i64 iInt = 0, iFrac = 0, nFrac = 0;
  int nDigit = 0;
  while( *p>='0' && *p<='9' && nDigit<10 ){ iInt = iInt*10 + (*p++ - '0'); nDigit++; }
  if( *p=='.' ){
    p++;
    while( *p>='0' && *p<='9' ){
      if( nFrac<3 ){ iFrac = iFrac*10 + (*p - '0'); nFrac++; }
      p++;
      nDigit++;
    }
  }
  while( nFrac<3 ){ iFrac *= 10; nFrac++; }
  if( nDigit==0 || *p!=0 || iInt*1000+iFrac<1 || iInt>315360000 ){
    fedSetError(pzErr, "%s: %s must be a number of seconds between 0.001"
                " and 315360000, not \"%s\"", zWho, zKey, z);
    return SQLITE_ERROR;
  }
  *pMs = iInt*1000 + iFrac;
  return SQLITE_OK;
}

/* Check the cache options of a server (fed_server() time) or of a table
** (CREATE VIRTUAL TABLE). */
int fedCacheCheckServer(FedServer *pServer, char **pzErr){
  return fedCacheCheckConfig(pServer->pOpt, pServer->pStore->zName, pzErr);
}

int fedCacheCheckConfig(FedConfig *pOpt, const char *zWho, char **pzErr){
  const char *z;
  int b;
  i64 n;
  FedServer srv, *pServer = &srv;
  srv.pOpt = pOpt;
  if( (z = fedConfigGet(pServer->pOpt, "cache"))!=0
   && cacheBool(zWho, "cache", z, &b, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_notify"))!=0
   && cacheBool(zWho, "cache_notify", z, &b, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_ttl"))!=0
   && cacheSeconds(zWho, "cache_ttl", z, &n, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_l2_ttl"))!=0
   && cacheSeconds(zWho, "cache_l2_ttl", z, &n, pzErr) ) return SQLITE_ERROR;
  if( fedConfigGet(pServer->pOpt, "cache_max_bytes") ){
    return fedConfigInt(pServer->pOpt, "cache_max_bytes", 0, 0,
                        (i64)1<<50, &n, zWho, pzErr);
  }
  return SQLITE_OK;
}

static FedCacheStat *cacheStat(FedContext *pCtx, const char *zName){
  FedCacheStat *p;
  for(p=pCtx->pCacheStat; p; p=p->pNext){
    if( strcmp(p->zName, zName)==0 ) return p;
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->zName = fedStrdup(zName, -1);
  if( p->zName==0 ){ sqlite3_free(p); return 0; }
  p->pNext = pCtx->pCacheStat;
  pCtx->pCacheStat = p;
  return p;
}

/* Read the cache options of pTab (its server's as defaults) into a new
** FedCacheTab, or leave pTab->pCache NULL when caching is off.  The server
** is looked up without touching the network.  Called at the first scan. */
static int cacheTabInit(FedTable *pTab, char **pzErr){
  const char *zWho = pTab->pStore->zName;
  FedServer *pServer = 0;
  FedCacheTab *p;
  const char *z;
  int bOn = 0, bNotify = 0, rc;
  i64 nTtl = CACHE_DEF_TTL_MS, nMax = CACHE_DEF_MAX, nL2Ttl = 0;
  char *zName;

  pTab->bCacheInit = 1;
  rc = fedServerFind(pTab->pCtx, pTab->zServer, &pServer, pzErr);
  if( rc ) return rc;
  if( (z = cacheOpt(pTab, pServer, "cache_ttl"))!=0 ){
    if( cacheSeconds(zWho, "cache_ttl", z, &nTtl, pzErr) ) return SQLITE_ERROR;
    bOn = 1;
  }
  if( (z = cacheOpt(pTab, pServer, "cache"))!=0 ){
    if( cacheBool(zWho, "cache", z, &bOn, pzErr) ) return SQLITE_ERROR;
  }
  if( !bOn ) return SQLITE_OK;
  if( (z = cacheOpt(pTab, pServer, "cache_notify"))!=0 ){
    if( cacheBool(zWho, "cache_notify", z, &bNotify, pzErr) ){
      return SQLITE_ERROR;
    }
  }
  if( (z = cacheOpt(pTab, pServer, "cache_max_bytes"))!=0 ){
    FedConfig cfg;
    char *azK[1], *azV[1];
    azK[0] = "cache_max_bytes";
    azV[0] = (char*)z;
    cfg.nOpt = 1; cfg.azKey = azK; cfg.azVal = azV;
    rc = fedConfigInt(&cfg, "cache_max_bytes", 0, 0, (i64)1<<50, &nMax, zWho,
                      pzErr);
    if( rc ) return rc;
  }
  nL2Ttl = nTtl;
  if( (z = cacheOpt(pTab, pServer, "cache_l2_ttl"))!=0 ){
    if( cacheSeconds(zWho, "cache_l2_ttl", z, &nL2Ttl, pzErr) ){
      return SQLITE_ERROR;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  p->bOn = 1;
  p->bNotify = (u8)bNotify;
  p->nTtlMs = nTtl;
  p->nMaxBytes = nMax;
  p->nL2TtlMs = nL2Ttl;
  z = cacheOpt(pTab, pServer, "cache_db");
  p->zDbPath = fedStrdup(z ? z : ":memory:", -1);
  z = cacheOpt(pTab, pServer, "cache_l2");
  if( z ) p->zL2 = fedStrdup(z, -1);
  zName = sqlite3_mprintf("%s.%s", pTab->zSchema, pTab->zName);
  if( zName ) p->pStat = cacheStat(pTab->pCtx, zName);
  sqlite3_free(zName);
  if( p->zDbPath==0 || (z && p->zL2==0) || p->pStat==0 ){
    sqlite3_free(p->zDbPath);
    sqlite3_free(p->zL2);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  p->pStat->pTab = pTab;
  pTab->pCache = p;
  return SQLITE_OK;
}

void fedCacheConnect(FedTable *pTab){
  char *zErr = 0;
  if( cacheTabInit(pTab, &zErr)!=SQLITE_OK ) pTab->bCacheInit = 0;
  sqlite3_free(zErr);
}

void fedCacheTableFree(FedTable *pTab){
  FedCacheTab *p = pTab->pCache;
  if( p==0 ) return;
  if( p->pStat && p->pStat->pTab==pTab ) p->pStat->pTab = 0;
  sqlite3_free(p->zDbPath);
  sqlite3_free(p->zL2);
  sqlite3_free(p);
  pTab->pCache = 0;
}

/**************************************************************************
** The cache database.
*/

/* fed_cache_col(i): column i of the cursor being filled. */
static void cacheColFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  FedCacheDb *pDb = (FedCacheDb*)sqlite3_user_data(ctx);
  FedCursor *pCsr = pDb->pFillCsr;
  (void)argc;
  if( pCsr==0 ) return;
  pCsr->pTab->pStore->xColumn(pCsr, ctx, sqlite3_value_int(argv[0]));
}

/* fed_cache_rowid(): the rowid of the cursor being filled. */
static void cacheRowidFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedCacheDb *pDb = (FedCacheDb*)sqlite3_user_data(ctx);
  FedCursor *pCsr = pDb->pFillCsr;
  i64 iRowid = 0;
  (void)argc; (void)argv;
  if( pCsr==0 || pCsr->pTab->iPk>=0 ) return;
  if( pCsr->pTab->pStore->xRowid(pCsr, &iRowid)==SQLITE_OK ){
    sqlite3_result_int64(ctx, iRowid);
  }
}

/**************************************************************************
** Rows.  A cached row is one blob, fed_cache_r<tid>.rec, holding the
** table's nCol values in column order (NULL for the columns the entry did
** not read), each a tag byte and its bytes:
**
**   0 NULL | 1..8 an integer in that many bytes, little-endian, two's
**   complement | 9 a real, its IEEE bits in 8 bytes, little-endian |
**   10 text (UTF-8), 11 blob: the length as a varint (7 bits a byte, low
**   first), then the bytes
**
** A scan from the cache decodes each row by hand into CacheCell's that
** xColumn hands to SQLite by type: cheaper than letting SQLite decode a
** column per value into a statement, to be copied once more through the
** virtual-table interface.  fed_cache_rec(v0, v1, ...) builds a record,
** fed_cache_val(rec, i) decodes value i (for SQL over the rows: terms,
** ORDER BY, L2).
*/

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__==__ORDER_LITTLE_ENDIAN__
# define CACHE_LE 1             /* A real's 8 bytes are memcpy()'d */
#else
# define CACHE_LE 0
#endif

/* Decode record a (n bytes) into aCell[0..nCell-1]; with bOne, decode
** nCell values into aCell[0] (the last one stays) and allow more bytes.
** SQLITE_OK, or SQLITE_CORRUPT for a malformed record.  Hot: every row
** read from the cache passes here. */
static int cacheRecDecode(const u8 *a, int n, CacheCell *aCell, int nCell,
                          int bOne){
  int i, j = 0, k;
  for(i=0; i<nCell; i++){
    CacheCell *c = bOne ? aCell : &aCell[i];
    int t;
    if( j>=n ) return SQLITE_CORRUPT;
    t = a[j++];
    if( t==0 ){
      c->eType = SQLITE_NULL;
    }else if( t<=8 ){
      u64 u;
      if( t>n-j ) return SQLITE_CORRUPT;
      u = (u64)(i64)(signed char)a[j+t-1];
      for(k=t-2; k>=0; k--) u = (u<<8) | a[j+k];
      c->eType = SQLITE_INTEGER;
      c->u.i = (i64)u;
      j += t;
    }else if( t==9 ){
      if( 8>n-j ) return SQLITE_CORRUPT;
      if( CACHE_LE ){
        memcpy(&c->u.r, a+j, 8);
      }else{
        u64 u = 0;
        for(k=7; k>=0; k--) u = (u<<8) | a[j+k];
        memcpy(&c->u.r, &u, 8);
      }
      c->eType = SQLITE_FLOAT;
      j += 8;
    }else if( t==10 || t==11 ){
      unsigned len;
      if( j>=n ) return SQLITE_CORRUPT;
      len = a[j++];
      if( len>=0x80 ){
        int sh = 7;
        len &= 0x7f;
        do{
          if( j>=n || sh>28 ) return SQLITE_CORRUPT;
          len |= (unsigned)(a[j]&0x7f) << sh;
          sh += 7;
        }while( a[j++]&0x80 );
      }
      if( len>(unsigned)(n-j) ) return SQLITE_CORRUPT;
      c->eType = t==10 ? SQLITE_TEXT : SQLITE_BLOB;
      c->n = (int)len;
      c->u.z = a+j;
      j += (int)len;
    }else{
      return SQLITE_CORRUPT;
    }
  }
  return (bOne || j==n) ? SQLITE_OK : SQLITE_CORRUPT;
}

/* Set the result of ctx to cell c (text and blob copied). */
static void cacheCellResult(sqlite3_context *ctx, const CacheCell *c){
  switch( c->eType ){
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, c->u.i); break;
    case SQLITE_FLOAT: sqlite3_result_double(ctx, c->u.r); break;
    case SQLITE_TEXT:
      sqlite3_result_text(ctx, (const char*)c->u.z, c->n, SQLITE_TRANSIENT);
      break;
    case SQLITE_BLOB:
      sqlite3_result_blob(ctx, c->u.z, c->n, SQLITE_TRANSIENT);
      break;
  }
}

static int cacheVarintLen(unsigned v){
  int n = 1;
  while( v>=0x80 ){ v >>= 7; n++; }
  return n;
}

/* fed_cache_rec(v0, v1, ...): the record of a row (see "Rows"). */
static void cacheRecFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  i64 nByte = 0;
  u8 *a, *z;
  int i, k;
  for(i=0; i<argc; i++){
    switch( sqlite3_value_type(argv[i]) ){
      case SQLITE_NULL: nByte += 1; break;
      case SQLITE_INTEGER: nByte += 9; break;
      case SQLITE_FLOAT: nByte += 9; break;
      case SQLITE_TEXT: {
        int nb = sqlite3_value_bytes(argv[i]);
        nByte += 1 + cacheVarintLen((unsigned)nb) + nb;
        break;
      }
      default: {
        int nb = sqlite3_value_bytes(argv[i]);
        nByte += 1 + cacheVarintLen((unsigned)nb) + nb;
        break;
      }
    }
  }
  a = z = sqlite3_malloc64(nByte ? nByte : 1);
  if( a==0 ){ sqlite3_result_error_nomem(ctx); return; }
  for(i=0; i<argc; i++){
    sqlite3_value *v = argv[i];
    switch( sqlite3_value_type(v) ){
      case SQLITE_NULL: *z++ = 0; break;
      case SQLITE_INTEGER: {
        i64 x = sqlite3_value_int64(v);
        u64 u = (u64)x;
        int nb = 1;
        while( nb<8 && (x < -((i64)1<<(8*nb-1)) || x >= ((i64)1<<(8*nb-1))) ){
          nb++;
        }
        *z++ = (u8)nb;
        for(k=0; k<nb; k++){ *z++ = (u8)u; u >>= 8; }
        break;
      }
      case SQLITE_FLOAT: {
        double r = sqlite3_value_double(v);
        u64 u;
        memcpy(&u, &r, 8);
        *z++ = 9;
        for(k=0; k<8; k++){ *z++ = (u8)u; u >>= 8; }
        break;
      }
      default: {
        /* Text by its bytes: sqlite3_value_text() would add a NUL (a
        ** copy).  Arguments are already in the database's UTF-8. */
        int bText = sqlite3_value_type(v)==SQLITE_TEXT;
        const u8 *p = (const u8*)sqlite3_value_blob(v);
        unsigned nb = (unsigned)sqlite3_value_bytes(v);
        if( p==0 && nb>0 ){
          sqlite3_free(a);
          sqlite3_result_error_nomem(ctx);
          return;
        }
        *z++ = bText ? 10 : 11;
        while( nb>=0x80 ){ *z++ = (u8)(nb|0x80); nb >>= 7; }
        *z++ = (u8)nb;
        nb = (unsigned)sqlite3_value_bytes(v);
        if( nb ) memcpy(z, p, nb);
        z += nb;
        break;
      }
    }
  }
  sqlite3_result_blob64(ctx, a, (sqlite3_uint64)(z-a), sqlite3_free);
}

/* fed_cache_val(rec, i): value i of a record. */
static void cacheValFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const u8 *a = (const u8*)sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  int iCol = sqlite3_value_int(argv[1]);
  CacheCell c;
  (void)argc;
  c.eType = SQLITE_NULL;
  if( iCol<0 || cacheRecDecode(a, n, &c, iCol+1, 1) ){
    sqlite3_result_error(ctx, "malformed row in the federate cache", -1);
    return;
  }
  cacheCellResult(ctx, &c);
}

static int cacheExec(FedCacheDb *pDb, const char *zSql){
  return sqlite3_exec(pDb->db, zSql, 0, 0, 0);
}

static void cacheDbClose(FedCacheDb *pDb){
  if( pDb==0 ) return;
  sqlite3_close_v2(pDb->db);
  sqlite3_free(pDb->zPath);
  sqlite3_free(pDb);
}

void fedCacheFree(FedContext *pCtx){
  while( pCtx->pCacheDb ){
    FedCacheDb *p = pCtx->pCacheDb;
    pCtx->pCacheDb = p->pNext;
    cacheDbClose(p);
  }
  while( pCtx->pCacheStat ){
    FedCacheStat *p = pCtx->pCacheStat;
    pCtx->pCacheStat = p->pNext;
    sqlite3_free(p->zName);
    sqlite3_free(p);
  }
}

/* Drop every table of cache database pDb (a federate cache of another
** format), in one transaction. */
static int cacheReformat(FedCacheDb *pDb){
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *s = sqlite3_str_new(0);
  char *zSql;
  int rc;
  sqlite3_str_appendall(s, "BEGIN IMMEDIATE;");
  rc = sqlite3_prepare_v2(pDb->db, "SELECT name FROM sqlite_schema"
      " WHERE type='table' AND name LIKE 'fed\\_cache\\_%' ESCAPE '\\'", -1,
      &pStmt, 0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_str_appendf(s, "DROP TABLE \"%w\";",
                        (const char*)sqlite3_column_text(pStmt, 0));
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  sqlite3_str_appendall(s, "COMMIT;");
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    rc = cacheExec(pDb, zSql);
    if( rc ) cacheExec(pDb, "ROLLBACK");
  }
  sqlite3_free(zSql);
  return rc;
}

/* Open (or find) the cache database for zPath. */
static int cacheDbOpen(FedContext *pCtx, const char *zWho, const char *zPath,
                       FedCacheDb **ppDb, char **pzErr){
  FedCacheDb *pDb;
  sqlite3_stmt *pStmt = 0;
  int rc, bMem = strcmp(zPath, ":memory:")==0;
  int iAppId = 0, nTable = 0, iFormat = 0;

  for(pDb=pCtx->pCacheDb; pDb; pDb=pDb->pNext){
    if( strcmp(pDb->zPath, zPath)==0 ){ *ppDb = pDb; return SQLITE_OK; }
  }
  pDb = sqlite3_malloc64(sizeof(*pDb));
  if( pDb==0 ) return SQLITE_NOMEM;
  memset(pDb, 0, sizeof(*pDb));
  pDb->zPath = fedStrdup(zPath, -1);
  if( pDb->zPath==0 ){ sqlite3_free(pDb); return SQLITE_NOMEM; }
  /* No mutex of its own: it is only used inside calls on the owning
  ** connection, which hold that connection's mutex. */
  rc = sqlite3_open_v2(zPath, &pDb->db,
      SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE|SQLITE_OPEN_NOMUTEX, 0);
  if( rc==SQLITE_OK ){
    /* A file that is some other application's database is refused, so
    ** that a table option cannot make federate write into it. */
    rc = sqlite3_prepare_v2(pDb->db, "SELECT (SELECT application_id FROM"
        " pragma_application_id), (SELECT count(*) FROM sqlite_schema),"
        " (SELECT user_version FROM pragma_user_version)", -1, &pStmt, 0);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      iAppId = sqlite3_column_int(pStmt, 0);
      nTable = sqlite3_column_int(pStmt, 1);
      iFormat = sqlite3_column_int(pStmt, 2);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && nTable>0 && iAppId!=CACHE_APP_ID ){
    fedSetError(pzErr, "%s: cache database \"%s\" is not a federate cache"
                " (it holds other tables); name a new file", zWho, zPath);
    cacheDbClose(pDb);
    return SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    sqlite3_busy_timeout(pDb->db, 200);
    if( !bMem ){
      /* A crash of this process never loses a committed fill (WAL); a
      ** power failure may lose the last ones, which is only a miss. */
      rc = cacheExec(pDb, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          " PRAGMA mmap_size=1073741824");
    }
  }
  if( rc==SQLITE_OK && nTable>0 && iFormat!=CACHE_FORMAT ){
    /* A cache written by another version of federate: its rows cannot be
    ** read, so it starts again empty (it is only a cache). */
    rc = cacheReformat(pDb);
    nTable = 0;
  }
  if( rc==SQLITE_OK && nTable==0 ){
    /* A new cache: its schema (an existing one already has it; opening
    ** it writes nothing). */
    char *zSql = sqlite3_mprintf(
      "PRAGMA application_id=%d; PRAGMA user_version=%d;"
      "CREATE TABLE IF NOT EXISTS fed_cache_table(tid INTEGER PRIMARY KEY,"
      " tkey TEXT NOT NULL UNIQUE, name TEXT, server TEXT, ncol INTEGER);"
      "CREATE TABLE IF NOT EXISTS fed_cache_entry(id INTEGER PRIMARY KEY,"
      " tid INTEGER NOT NULL, qkey TEXT NOT NULL, cols INTEGER NOT NULL,"
      " nterm INTEGER NOT NULL, blimit INTEGER NOT NULL,"
      " created INTEGER NOT NULL, used INTEGER NOT NULL,"
      " nbytes INTEGER NOT NULL, nrow INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS fed_cache_entry_q"
      " ON fed_cache_entry(tid, qkey);"
      "CREATE TABLE IF NOT EXISTS fed_cache_term(entry INTEGER NOT NULL,"
      " termno INTEGER NOT NULL, col INTEGER NOT NULL, op INTEGER NOT NULL,"
      " val);"
      "CREATE INDEX IF NOT EXISTS fed_cache_term_e"
      " ON fed_cache_term(entry, termno);", CACHE_APP_ID, CACHE_FORMAT);
    if( zSql==0 ) rc = SQLITE_NOMEM;
    else{
      rc = cacheExec(pDb, zSql);
      sqlite3_free(zSql);
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_col", 1, SQLITE_UTF8,
                                 pDb, cacheColFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_rowid", 0, SQLITE_UTF8,
                                 pDb, cacheRowidFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_rec", -1,
                                 SQLITE_UTF8|SQLITE_DETERMINISTIC, 0,
                                 cacheRecFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(pDb->db, "fed_cache_val", 2,
                                 SQLITE_UTF8|SQLITE_DETERMINISTIC, 0,
                                 cacheValFunc, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_NOMEM ){
      int rc2 = pDb->db ? sqlite3_errcode(pDb->db) : rc;
      fedSetError(pzErr, "%s: cannot open cache database \"%s\": %s", zWho,
                  zPath, pDb->db ? sqlite3_errmsg(pDb->db)
                                 : sqlite3_errstr(rc));
      if( rc2==SQLITE_NOMEM ) rc = SQLITE_NOMEM;
      else rc = SQLITE_ERROR;
    }
    cacheDbClose(pDb);
    return rc;
  }
  pDb->pNext = pCtx->pCacheDb;
  pCtx->pCacheDb = pDb;
  *ppDb = pDb;
  return SQLITE_OK;
}

/* The table's identity in the cache database: store, DSN, remote name and
** columns, so that a redefined server or table never reads old rows. */
static char *cacheTableKey(FedTable *pTab){
  char *zCols = fedColumnsRender(pTab->aCol, pTab->nCol);
  char *zKey;
  if( zCols==0 ) return 0;
  zKey = sqlite3_mprintf("%s\n%s\n%s\n%s", pTab->pStore->zName,
                         pTab->pServer ? pTab->pServer->zDsn : "",
                         pTab->zRemote ? pTab->zRemote : pTab->zName, zCols);
  sqlite3_free(zCols);
  return zKey;
}

/* The prefix of cacheTableKey() that names the remote relation whatever
** its column list: "store\ndsn\nremote\n". */
static char *cacheRelKey(FedTable *pTab){
  return sqlite3_mprintf("%s\n%s\n%s\n", pTab->pStore->zName,
                         pTab->pServer ? pTab->pServer->zDsn : "",
                         pTab->zRemote ? pTab->zRemote : pTab->zName);
}

/* Make sure pCT has its cache database and its tid.  SQLITE_OK, or an
** error (a cache database that cannot be opened is the user's to fix). */
static int cacheTabReady(FedCacheTab *pCT, char **pzErr){
  FedTable *pTab = pCT->pTab;
  sqlite3_stmt *pStmt = 0;
  char *zKey, *zSql;
  int rc;
  if( pCT->iTid ) return SQLITE_OK;
  if( pCT->pDb==0 ){
    rc = cacheDbOpen(pTab->pCtx, pTab->pStore->zName, pCT->zDbPath, &pCT->pDb,
                     pzErr);
    if( rc ) return rc;
  }
  if( pTab->pServer==0 ){
    rc = fedServerFind(pTab->pCtx, pTab->zServer, &pTab->pServer, pzErr);
    if( rc ) return rc;
  }
  zKey = cacheTableKey(pTab);
  if( zKey==0 ) return SQLITE_NOMEM;
  /* Usually the table is known: a read.  Else insert it and its rows
  ** table. */
  rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT tid FROM fed_cache_table"
      " WHERE tkey=?1", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      pCT->iTid = sqlite3_column_int64(pStmt, 0);
    }
    rc = sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && pCT->iTid==0 ){
    /* The row and its table together, or neither. */
    rc = cacheExec(pCT->pDb, "SAVEPOINT fed_cache_tid");
  }
  if( rc==SQLITE_OK && pCT->iTid==0 ){
    rc = sqlite3_prepare_v2(pCT->pDb->db, "INSERT INTO fed_cache_table(tkey,"
        " name, server, ncol) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(tkey) DO"
        " UPDATE SET name=excluded.name RETURNING tid", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      char *zName = sqlite3_mprintf("%s.%s", pTab->zSchema, pTab->zName);
      sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zName, -1, sqlite3_free);
      sqlite3_bind_text(pStmt, 3, pTab->zServer, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 4, pTab->nCol);
      if( sqlite3_step(pStmt)==SQLITE_ROW ){
        pCT->iTid = sqlite3_column_int64(pStmt, 0);
      }
      rc = sqlite3_finalize(pStmt);
    }
    if( rc==SQLITE_OK && pCT->iTid ){
      sqlite3_str *s = sqlite3_str_new(0);
      sqlite3_str_appendf(s, "CREATE TABLE IF NOT EXISTS fed_cache_r%lld(rid,"
                          " rec)", pCT->iTid);
      zSql = sqlite3_str_finish(s);
      if( zSql==0 ) rc = SQLITE_NOMEM;
      else{
        rc = cacheExec(pCT->pDb, zSql);
        sqlite3_free(zSql);
      }
    }
    if( rc!=SQLITE_OK ){
      cacheExec(pCT->pDb, "ROLLBACK TO fed_cache_tid");
      pCT->iTid = 0;
    }
    cacheExec(pCT->pDb, "RELEASE fed_cache_tid");
  }
  sqlite3_free(zKey);
  if( rc!=SQLITE_OK || pCT->iTid==0 ){
    pCT->iTid = 0;
    if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
    if( rc!=SQLITE_NOMEM && sqlite3_errcode(pCT->pDb->db)==SQLITE_NOMEM ){
      rc = SQLITE_NOMEM;
    }
    if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "%s: cache database \"%s\": %s",
                  pTab->pStore->zName, pCT->zDbPath,
                  sqlite3_errmsg(pCT->pDb->db));
    }
  }
  return rc;
}

/**************************************************************************
** Requests.
*/

/* Bind a value with the comparison affinity zAff applied, as SQLite does to
** the other operand of a comparison with a column of that affinity. */
static int cacheBind(sqlite3_stmt *pStmt, int i, const CacheVal *pV){
  sqlite3_value *p = pV->pVal;
  int eType = sqlite3_value_type(p);
  const char *zAff = pV->zAff;
  if( zAff && eType==SQLITE_TEXT
   && (strcmp(zAff, "INTEGER")==0 || strcmp(zAff, "REAL")==0
       || strcmp(zAff, "NUMERIC")==0) ){
    sqlite3_value *pDup = sqlite3_value_dup(p);
    int rc;
    if( pDup==0 ) return SQLITE_NOMEM;
    sqlite3_value_numeric_type(pDup);
    rc = sqlite3_bind_value(pStmt, i, pDup);
    sqlite3_value_free(pDup);
    return rc;
  }
  if( zAff && strcmp(zAff, "TEXT")==0
   && (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT) ){
    const char *z = (const char*)sqlite3_value_text(p);
    if( z==0 ) return SQLITE_NOMEM;
    return sqlite3_bind_text(pStmt, i, z, -1, SQLITE_TRANSIENT);
  }
  return sqlite3_bind_value(pStmt, i, p);
}

/* Append a value as text that says its storage class and bytes exactly
** (the request key, and the rows of an L2 entry; l2Bind() reads it back):
**   n | i<int>; | f<16 hex digits of the IEEE bits> | t<len>:<bytes> |
**   x<len>:<hex> (text holding a NUL byte) | b<len>:<hex> */
static void cacheValText(sqlite3_str *s, sqlite3_value *p){
  const u8 *a;
  int n, i;
  switch( sqlite3_value_type(p) ){
    case SQLITE_NULL: sqlite3_str_appendchar(s, 1, 'n'); break;
    case SQLITE_INTEGER:
      sqlite3_str_appendf(s, "i%lld;", sqlite3_value_int64(p));
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(p);
      u64 u;
      memcpy(&u, &r, 8);
      sqlite3_str_appendf(s, "f%016llx", (unsigned long long)u);
      break;
    }
    case SQLITE_TEXT:
      a = sqlite3_value_text(p);
      n = sqlite3_value_bytes(p);
      if( a && memchr(a, 0, n)==0 ){
        sqlite3_str_appendf(s, "t%d:", n);
        sqlite3_str_append(s, (const char*)a, n);
        break;
      }
      sqlite3_str_appendf(s, "x%d:", n);
      for(i=0; a && i<n; i++) sqlite3_str_appendf(s, "%02x", a[i]);
      break;
    default:
      a = (const u8*)sqlite3_value_blob(p);
      n = sqlite3_value_bytes(p);
      sqlite3_str_appendf(s, "b%d:", n);
      for(i=0; i<n; i++) sqlite3_str_appendf(s, "%02x", a[i]);
      break;
  }
}

/* Append a value of a request to its canonical text. */
static void cacheKeyVal(sqlite3_str *s, const CacheVal *pV){
  cacheValText(s, pV->pVal);
  if( pV->zAff ) sqlite3_str_appendf(s, "/%c", pV->zAff[0]);
}

static void cacheCsrReset(FedCacheCsr *p){
  int i, j;
  for(i=0; i<p->nTerm; i++){
    for(j=0; j<p->aTerm[i].nVal; j++){
      sqlite3_value_free(p->aTerm[i].aVal[j].pVal);
    }
    sqlite3_free(p->aTerm[i].aVal);
  }
  sqlite3_free(p->aTerm);
  p->aTerm = 0;
  p->nTerm = 0;
  sqlite3_value_free(p->pLimit);
  sqlite3_value_free(p->pOffset);
  p->pLimit = p->pOffset = 0;
  sqlite3_free(p->zKey);
  p->zKey = 0;
  sqlite3_finalize(p->pRead);
  p->pRead = 0;
  sqlite3_free(p->aCell);
  p->aCell = 0;
  sqlite3_finalize(p->pIns);
  p->pIns = 0;
  p->bEof = 0;
}

/* Comparison ops take the column's affinity; LIKE and GLOB are functions
** and take none. */
static int cacheOpAffinity(int op){
  return op!=FED_OP_LIKE && op!=FED_OP_GLOB;
}

/* Build the request of a scan from its plan and xFilter's values. */
static int cacheRequest(FedCursor *pCsr, FedCacheCsr *p, int argc,
                        sqlite3_value **argv){
  FedPlan *pPlan = pCsr->pPlan;
  FedTable *pTab = pCsr->pTab;
  sqlite3_str *s;
  int i, rc = SQLITE_OK;

  p->cols = pPlan->colUsed;
  if( pTab->iPk>=0 ) p->cols |= ((u64)1)<<pTab->iPk;
  p->aTerm = sqlite3_malloc64(sizeof(CacheTerm)*(pPlan->nTerm+1));
  if( p->aTerm==0 ) return SQLITE_NOMEM;
  memset(p->aTerm, 0, sizeof(CacheTerm)*(pPlan->nTerm+1));
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    CacheTerm *c = &p->aTerm[p->nTerm];
    const char *zAff;
    if( t->iCol<0 || t->iCol>=pTab->nCol ) return SQLITE_MISUSE;
    zAff = cacheOpAffinity(t->op) ? pTab->aCol[t->iCol].zAffinity : 0;
    c->iCol = t->iCol;
    c->op = t->op;
    c->bExact = t->bExact;
    p->nTerm++;
    if( t->iArg<0 ) continue;
    if( t->iArg>=argc ) return SQLITE_MISUSE;
    if( t->op==FED_OP_IN ){
      sqlite3_value *pV = 0;
      int n = 0, nAlloc = 0;
      for(rc=sqlite3_vtab_in_first(argv[t->iArg], &pV);
          rc==SQLITE_OK && pV;
          rc=sqlite3_vtab_in_next(argv[t->iArg], &pV)){
        if( n>=nAlloc ){
          CacheVal *aNew;
          nAlloc = nAlloc ? nAlloc*2 : 8;
          aNew = sqlite3_realloc64(c->aVal, sizeof(CacheVal)*nAlloc);
          if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
          c->aVal = aNew;
        }
        c->aVal[n].zAff = zAff;
        c->aVal[n].pVal = sqlite3_value_dup(pV);
        if( c->aVal[n].pVal==0 ){ rc = SQLITE_NOMEM; break; }
        c->nVal = ++n;
      }
      if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    }else{
      c->aVal = sqlite3_malloc64(sizeof(CacheVal));
      if( c->aVal==0 ) return SQLITE_NOMEM;
      c->aVal[0].zAff = zAff;
      c->aVal[0].pVal = sqlite3_value_dup(argv[t->iArg]);
      if( c->aVal[0].pVal==0 ) return SQLITE_NOMEM;
      c->nVal = 1;
    }
  }
  if( rc ) return rc;
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    p->pLimit = sqlite3_value_dup(argv[pPlan->iLimitArg]);
    if( p->pLimit==0 ) return SQLITE_NOMEM;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    p->pOffset = sqlite3_value_dup(argv[pPlan->iOffsetArg]);
    if( p->pOffset==0 ) return SQLITE_NOMEM;
  }

  /* The canonical text: identical requests, identical text. */
  s = sqlite3_str_new(0);
  sqlite3_str_appendf(s, "u=%llx", (unsigned long long)p->cols);
  for(i=0; i<p->nTerm; i++){
    CacheTerm *c = &p->aTerm[i];
    int j;
    sqlite3_str_appendf(s, ";t=%d:%d:%d", c->iCol, c->op, c->bExact);
    for(j=0; j<c->nVal; j++){
      sqlite3_str_appendchar(s, 1, j ? ',' : ':');
      cacheKeyVal(s, &c->aVal[j]);
    }
  }
  for(i=0; i<pPlan->nOrder; i++){
    sqlite3_str_appendf(s, ";o=%d%s", pPlan->aOrderCol[i],
                        pPlan->aOrderDesc[i] ? "d" : "");
  }
  if( p->pLimit ){
    CacheVal v;
    v.pVal = p->pLimit; v.zAff = 0;
    sqlite3_str_appendall(s, ";l=");
    cacheKeyVal(s, &v);
  }
  if( p->pOffset ){
    CacheVal v;
    v.pVal = p->pOffset; v.zAff = 0;
    sqlite3_str_appendall(s, ";f=");
    cacheKeyVal(s, &v);
  }
  p->zKey = sqlite3_str_finish(s);
  return p->zKey ? SQLITE_OK : SQLITE_NOMEM;
}

/* Evaluate "?1 <op> ?2" in the cache database: 1 true, 0 false or NULL,
** <0 on error. */
static int cacheEval(FedCacheDb *pDb, const CacheVal *a, const char *zOp,
                     const CacheVal *b){
  sqlite3_stmt *pStmt = 0;
  char zSql[48];
  int rc, bTrue = 0;
  sqlite3_snprintf(sizeof(zSql), zSql, "SELECT (?1 %s ?2) IS 1", zOp);
  rc = sqlite3_prepare_v2(pDb->db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK ) rc = cacheBind(pStmt, 1, a);
  if( rc==SQLITE_OK ) rc = cacheBind(pStmt, 2, b);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    bTrue = sqlite3_column_int(pStmt, 0);
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK ) rc = SQLITE_ERROR;
  return rc==SQLITE_OK ? bTrue : -1;
}

static const char *cacheOpText(int op){
  switch( op ){
    case FED_OP_EQ:    return "=";
    case FED_OP_GT:    return ">";
    case FED_OP_LE:    return "<=";
    case FED_OP_LT:    return "<";
    case FED_OP_GE:    return ">=";
    case FED_OP_NE:    return "!=";
    case FED_OP_IS:    return "IS";
    case FED_OP_ISNOT: return "IS NOT";
    case FED_OP_LIKE:  return "LIKE";
    case FED_OP_GLOB:  return "GLOB";
    case FED_OP_IN:    return "=";
  }
  return 0;
}

/* Identical values: same storage class and same bytes. */
static int cacheSameVal(const CacheVal *a, const CacheVal *b){
  sqlite3_value *x = a->pVal, *y = b->pVal;
  int t = sqlite3_value_type(x);
  if( t!=sqlite3_value_type(y) ) return 0;
  if( (a->zAff==0)!=(b->zAff==0) ) return 0;
  if( a->zAff && strcmp(a->zAff, b->zAff)!=0 ) return 0;
  switch( t ){
    case SQLITE_NULL: return 1;
    case SQLITE_INTEGER: return sqlite3_value_int64(x)==sqlite3_value_int64(y);
    case SQLITE_FLOAT: return sqlite3_value_double(x)==sqlite3_value_double(y);
    default: {
      int n = sqlite3_value_bytes(x);
      const void *px = t==SQLITE_TEXT ? (const void*)sqlite3_value_text(x)
                                      : sqlite3_value_blob(x);
      const void *py = t==SQLITE_TEXT ? (const void*)sqlite3_value_text(y)
                                      : sqlite3_value_blob(y);
      return n==sqlite3_value_bytes(y) && (n==0 || memcmp(px, py, n)==0);
    }
  }
}

/* Does the scan term q imply the entry term e (every row that satisfies
** q satisfies e)?  1 yes, 0 no or unknown, <0 error. */
static int cacheImplies(FedCacheDb *pDb, const CacheTerm *q,
                        const CacheTerm *e){
  int i, j, r;
  if( q->iCol!=e->iCol ) return 0;
  /* Identical terms. */
  if( q->op==e->op && q->nVal==e->nVal ){
    for(i=0; i<q->nVal; i++){
      if( !cacheSameVal(&q->aVal[i], &e->aVal[i]) ) break;
    }
    if( i==q->nVal ) return 1;
  }
  if( e->op==FED_OP_NOTNULL ){
    /* Any comparison with a value excludes NULL ("x IS ?" only when the
    ** value is not NULL). */
    if( q->op==FED_OP_NOTNULL ) return 1;
    if( q->op==FED_OP_ISNULL || q->op==FED_OP_ISNOT ) return 0;
    if( q->op==FED_OP_IS ){
      return q->nVal==1 && sqlite3_value_type(q->aVal[0].pVal)!=SQLITE_NULL;
    }
    return q->nVal>0 || q->op==FED_OP_IN;
  }
  if( e->op==FED_OP_ISNULL || e->op==FED_OP_LIKE || e->op==FED_OP_GLOB
   || e->op==FED_OP_ISNOT || e->op==FED_OP_NE ){
    return 0;                   /* Only identical terms, above */
  }
  /* q names a set of values (=, IN, IS): each must satisfy e. */
  if( q->op==FED_OP_EQ || q->op==FED_OP_IN || q->op==FED_OP_IS ){
    if( q->op==FED_OP_IS && e->op!=FED_OP_IS ) return 0;
    for(i=0; i<q->nVal; i++){
      if( e->op==FED_OP_IN ){
        for(j=0; j<e->nVal; j++){
          r = cacheEval(pDb, &q->aVal[i], "IS", &e->aVal[j]);
          if( r<0 ) return r;
          if( r ) break;
        }
        if( j==e->nVal ) return 0;
      }else{
        if( e->nVal!=1 ) return 0;
        r = cacheEval(pDb, &q->aVal[i], cacheOpText(e->op), &e->aVal[0]);
        if( r<=0 ) return r;
      }
    }
    return 1;
  }
  /* Ranges in the same direction: "x>b" implies "x>a" when b>=a, and so
  ** on (SQLite's order over all values is total). */
  if( q->nVal!=1 || e->nVal!=1 ) return 0;
  if( (q->op==FED_OP_GT || q->op==FED_OP_GE)
   && (e->op==FED_OP_GT || e->op==FED_OP_GE) ){
    const char *zCmp = (q->op==FED_OP_GE && e->op==FED_OP_GT) ? ">" : ">=";
    return cacheEval(pDb, &q->aVal[0], zCmp, &e->aVal[0]);
  }
  if( (q->op==FED_OP_LT || q->op==FED_OP_LE)
   && (e->op==FED_OP_LT || e->op==FED_OP_LE) ){
    const char *zCmp = (q->op==FED_OP_LE && e->op==FED_OP_LT) ? "<" : "<=";
    return cacheEval(pDb, &q->aVal[0], zCmp, &e->aVal[0]);
  }
  return 0;
}

/* Load the terms of entry iEntry; *paTerm (nTerm terms) is freed with
** cacheTermsFree(). */
static void cacheTermsFree(CacheTerm *aTerm, int nTerm){
  int i, j;
  for(i=0; i<nTerm; i++){
    for(j=0; j<aTerm[i].nVal; j++) sqlite3_value_free(aTerm[i].aVal[j].pVal);
    sqlite3_free(aTerm[i].aVal);
  }
  sqlite3_free(aTerm);
}

static int cacheTermsLoad(FedCacheDb *pDb, FedTable *pTab, i64 iEntry,
                          int nTerm, CacheTerm **paTerm){
  sqlite3_stmt *pStmt = 0;
  CacheTerm *aTerm;
  int rc, iPrev = -1, n = 0;
  *paTerm = 0;
  aTerm = sqlite3_malloc64(sizeof(CacheTerm)*(nTerm+1));
  if( aTerm==0 ) return SQLITE_NOMEM;
  memset(aTerm, 0, sizeof(CacheTerm)*(nTerm+1));
  rc = sqlite3_prepare_v2(pDb->db, "SELECT termno, col, op, val FROM"
      " fed_cache_term WHERE entry=?1 ORDER BY termno, rowid", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      int iTerm = sqlite3_column_int(pStmt, 0);
      CacheTerm *c;
      CacheVal *aNew;
      if( iTerm!=iPrev ){
        if( n>=nTerm ){ rc = SQLITE_CORRUPT; break; }
        iPrev = iTerm;
        n++;
      }
      c = &aTerm[n-1];
      c->iCol = sqlite3_column_int(pStmt, 1);
      c->op = sqlite3_column_int(pStmt, 2);
      if( c->iCol<0 || c->iCol>=pTab->nCol ){ rc = SQLITE_CORRUPT; break; }
      if( sqlite3_column_type(pStmt, 3)==SQLITE_NULL
       && (c->op==FED_OP_ISNULL || c->op==FED_OP_NOTNULL) ){
        continue;
      }
      aNew = sqlite3_realloc64(c->aVal, sizeof(CacheVal)*(c->nVal+1));
      if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
      c->aVal = aNew;
      c->aVal[c->nVal].zAff = cacheOpAffinity(c->op)
                            ? pTab->aCol[c->iCol].zAffinity : 0;
      c->aVal[c->nVal].pVal = sqlite3_value_dup(sqlite3_column_value(pStmt,3));
      if( c->aVal[c->nVal].pVal==0 ){ rc = SQLITE_NOMEM; break; }
      c->nVal++;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && n!=nTerm ) rc = SQLITE_CORRUPT;
  if( rc ){
    cacheTermsFree(aTerm, nTerm);
    return rc;
  }
  *paTerm = aTerm;
  return SQLITE_OK;
}

/* Can entry (cols, terms) answer request p? */
static int cacheSubsumes(FedCacheDb *pDb, FedCacheCsr *p, u64 cols,
                         CacheTerm *aE, int nE){
  int i, j, r;
  if( (p->cols & ~cols)!=0 ) return 0;
  for(i=0; i<nE; i++){
    for(j=0; j<p->nTerm; j++){
      r = cacheImplies(pDb, &p->aTerm[j], &aE[i]);
      if( r<0 ) return r;
      if( r ) break;
    }
    if( j==p->nTerm ) return 0;
  }
  return 1;
}

/* Prepare the read of entry iEntry for request p.  An entry made for this
** very request (bSame) is read as it is; another one with the scan's
** exact terms, its ORDER BY, LIMIT and OFFSET applied. */
static int cacheReadPrepare(FedCursor *pCsr, FedCacheCsr *p, i64 iEntry,
                            int bSame){
  FedCacheTab *pCT = p->pCT;
  FedPlan *pPlan = pCsr->pPlan;
  sqlite3_str *s;
  char *zSql;
  int i, j, iBind = 3, rc;

  if( p->aCell==0 ){
    p->aCell = sqlite3_malloc64(sizeof(CacheCell)*(pCsr->pTab->nCol+1));
    if( p->aCell==0 ) return SQLITE_NOMEM;
  }
  s = sqlite3_str_new(0);
  /* rid only for tables without a key: one column less to read. */
  sqlite3_str_appendall(s, pCsr->pTab->iPk<0 ? "SELECT rid" : "SELECT NULL");
  sqlite3_str_appendf(s, ", rec FROM fed_cache_r%lld WHERE rowid BETWEEN ?1"
                      " AND ?2", pCT->iTid);
  for(i=0; i<p->nTerm && !bSame; i++){
    CacheTerm *c = &p->aTerm[i];
    if( !c->bExact ) continue;
    switch( c->op ){
      case FED_OP_ISNULL:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IS NULL",
                            c->iCol);
        break;
      case FED_OP_NOTNULL:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IS NOT NULL",
                            c->iCol);
        break;
      case FED_OP_IN:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IN (", c->iCol);
        for(j=0; j<c->nVal; j++){
          sqlite3_str_appendf(s, "%s?%d", j ? "," : "", iBind++);
        }
        if( c->nVal==0 ) sqlite3_str_appendall(s, "NULL");
        sqlite3_str_appendall(s, ")");
        break;
      default:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) %s ?%d", c->iCol,
                            cacheOpText(c->op), iBind++);
        break;
    }
  }
  if( pPlan->nOrder>0 && !bSame ){
    sqlite3_str_appendall(s, " ORDER BY ");
    for(i=0; i<pPlan->nOrder; i++){
      sqlite3_str_appendf(s, "%sfed_cache_val(rec, %d)%s", i ? ", " : "",
                          pPlan->aOrderCol[i],
                          pPlan->aOrderDesc[i] ? " DESC" : "");
    }
    sqlite3_str_appendall(s, ", rowid");
  }
  if( p->pLimit && !bSame ){
    sqlite3_str_appendf(s, " LIMIT ?%d", iBind++);
    if( p->pOffset ) sqlite3_str_appendf(s, " OFFSET ?%d", iBind++);
  }
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pCT->pDb->db, zSql, -1, &p->pRead, 0);
  sqlite3_free(zSql);
  if( rc ) return rc;
  sqlite3_bind_int64(p->pRead, 1, iEntry<<32);
  sqlite3_bind_int64(p->pRead, 2, (iEntry<<32) | 0xffffffff);
  iBind = 3;
  for(i=0; i<p->nTerm && rc==SQLITE_OK && !bSame; i++){
    CacheTerm *c = &p->aTerm[i];
    if( !c->bExact ) continue;
    for(j=0; j<c->nVal && rc==SQLITE_OK; j++){
      rc = cacheBind(p->pRead, iBind++, &c->aVal[j]);
    }
  }
  if( rc==SQLITE_OK && p->pLimit && !bSame ){
    rc = sqlite3_bind_value(p->pRead, iBind++, p->pLimit);
    if( rc==SQLITE_OK && p->pOffset ){
      rc = sqlite3_bind_value(p->pRead, iBind++, p->pOffset);
    }
  }
  return rc;
}

/* Note that entry iEntry was used (for LRU), at most once a second. */
static void cacheTouch(FedCacheTab *pCT, i64 iEntry){
  sqlite3_stmt *pStmt = 0;
  if( sqlite3_prepare_v2(pCT->pDb->db, "UPDATE fed_cache_entry SET used=?2"
        " WHERE id=?1 AND used<?2-1000", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry);
    sqlite3_bind_int64(pStmt, 2, cacheNow());
    sqlite3_step(pStmt);
  }
  sqlite3_finalize(pStmt);
}

/* Find an entry that answers p: exact request first, then the most
** specific complete entry that subsumes it.  *piEntry = 0 when none. */
static int cacheLookup(FedCacheCsr *p, FedTable *pTab, i64 *piEntry,
                       int *pbSame){
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  i64 iNow = cacheNow();
  i64 iMin = iNow - pCT->nTtlMs;
  int rc, n = 0;
  *piEntry = 0;
  *pbSame = 0;
  rc = sqlite3_prepare_v2(pDb->db, "SELECT id FROM fed_cache_entry"
      " WHERE tid=?1 AND qkey=?2 AND created>?3 AND nrow>=0", -1, &pStmt, 0);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, pCT->iTid);
  sqlite3_bind_text(pStmt, 2, p->zKey, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 3, iMin);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *piEntry = sqlite3_column_int64(pStmt,0);
    *pbSame = 1;
  }
  rc = sqlite3_finalize(pStmt);
  if( rc || *piEntry ) return rc;

  /* A subsuming entry is read whole (its rows have no index): beyond
  ** CACHE_SUBSUME_ROWS rows, asking the store for a request with terms
  ** (which it answers from its indexes) and caching that is cheaper. */
  rc = sqlite3_prepare_v2(pDb->db, "SELECT id, cols, nterm FROM"
      " fed_cache_entry WHERE tid=?1 AND blimit=0 AND created>?2 AND nrow>=0"
      " AND (nrow<=?4 OR ?5) ORDER BY nterm DESC, nrow LIMIT ?3", -1,
      &pStmt, 0);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, pCT->iTid);
  sqlite3_bind_int64(pStmt, 2, iMin);
  sqlite3_bind_int(pStmt, 3, CACHE_MAX_CAND);
  sqlite3_bind_int(pStmt, 4, CACHE_SUBSUME_ROWS);
  sqlite3_bind_int(pStmt, 5, p->nTerm==0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    i64 iEntry = sqlite3_column_int64(pStmt, 0);
    u64 cols = (u64)sqlite3_column_int64(pStmt, 1);
    int nTerm = sqlite3_column_int(pStmt, 2);
    CacheTerm *aE = 0;
    int r;
    if( (p->cols & ~cols)!=0 ) continue;
    rc = cacheTermsLoad(pDb, pTab, iEntry, nTerm, &aE);
    if( rc ) break;
    r = cacheSubsumes(pDb, p, cols, aE, nTerm);
    cacheTermsFree(aE, nTerm);
    if( r<0 ){ rc = SQLITE_ERROR; break; }
    if( r ){ *piEntry = iEntry; break; }
    n++;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  return rc;
}

/**************************************************************************
** Invalidation.
*/

/* Delete entry iEntry and its rows. */
static int cacheEntryDelete(FedCacheDb *pDb, i64 iTid, i64 iEntry){
  char *zSql = sqlite3_mprintf(
      "DELETE FROM fed_cache_r%lld WHERE rowid BETWEEN %lld AND %lld;"
      "DELETE FROM fed_cache_term WHERE entry=%lld;"
      "DELETE FROM fed_cache_entry WHERE id=%lld;",
      iTid, iEntry<<32, (iEntry<<32)|0xffffffff, iEntry, iEntry);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = cacheExec(pDb, zSql);
  sqlite3_free(zSql);
  return rc;
}

/* Drop every entry of table tid (all tables when iTid==0). */
static int cacheClearTid(FedCacheDb *pDb, i64 iTid){
  char *zSql;
  int rc;
  if( iTid==0 ){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(pDb->db, "SELECT tid FROM fed_cache_table", -1,
                            &pStmt, 0);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      i64 i = sqlite3_column_int64(pStmt, 0);
      if( i>0 ) rc = cacheClearTid(pDb, i);
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
    return rc;
  }
  zSql = sqlite3_mprintf(
      "DELETE FROM fed_cache_term WHERE entry IN"
      " (SELECT id FROM fed_cache_entry WHERE tid=%lld);"
      "DELETE FROM fed_cache_entry WHERE tid=%lld;"
      "DELETE FROM fed_cache_r%lld;", iTid, iTid, iTid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = cacheExec(pDb, zSql);
  sqlite3_free(zSql);
  return rc;
}


/* The last identifier of a remote name, unquoted, into zOut (nOut):
** "public"."t" -> t, t -> t, "a.b" -> a.b. */
static void cacheLastName(const char *z, int n, char *zOut, int nOut){
  int i = 0, iStart = 0, bQuote = 0, j = 0;
  for(i=0; i<n; i++){
    if( z[i]=='"' ) bQuote = !bQuote;
    else if( z[i]=='.' && !bQuote ) iStart = i+1;
  }
  for(i=iStart; i<n && j<nOut-1; i++){
    if( z[i]=='"' ){
      if( i+1<n && z[i+1]=='"' ){ zOut[j++] = '"'; i++; }
      continue;
    }
    zOut[j++] = z[i];
  }
  zOut[j] = 0;
}

/* Clear, in every cache database, the tables whose key starts with
** zPrefix ("store\ndsn\n") and whose remote name ends like zRemote's
** (zRemote NULL: all of them, e.g. for fed_exec).  Fills in progress are
** abandoned.  SQLITE_OK, or the first error (the rest is still cleared). */
static int cacheClearSameName(FedContext *pCtx, const char *zPrefix,
                              const char *zRemote){
  FedCacheDb *pDb;
  char zWant[256], zHave[256];
  int nPrefix = (int)strlen(zPrefix), rc = SQLITE_OK, rc2;
  if( zRemote ){
    cacheLastName(zRemote, (int)strlen(zRemote), zWant, sizeof(zWant));
  }
  for(pDb=pCtx->pCacheDb; pDb; pDb=pDb->pNext){
    sqlite3_stmt *pStmt = 0;
    rc2 = sqlite3_prepare_v2(pDb->db, "SELECT tid, tkey FROM fed_cache_table"
          " WHERE substr(tkey, 1, length(?1))=?1", -1, &pStmt, 0);
    if( rc==SQLITE_OK ) rc = rc2;
    if( rc2==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zPrefix, -1, SQLITE_STATIC);
      while( sqlite3_step(pStmt)==SQLITE_ROW ){
        const char *zKey = (const char*)sqlite3_column_text(pStmt, 1);
        const char *zEnd;
        if( zRemote ){
          if( zKey==0 || (int)strlen(zKey)<nPrefix ) continue;
          zKey += nPrefix;
          zEnd = strchr(zKey, '\n');
          if( zEnd==0 ) continue;
          cacheLastName(zKey, (int)(zEnd-zKey), zHave, sizeof(zHave));
        }
        if( zRemote==0 || strcmp(zHave, zWant)==0 ){
          rc2 = cacheClearTid(pDb, sqlite3_column_int64(pStmt, 0));
          if( rc==SQLITE_OK ) rc = rc2;
        }
      }
    }
    rc2 = sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK ) rc = rc2;
  }
  return rc;
}

/* Forget what is cached for one table: a write, a notification, or
** fed_cache_clear().  In-progress fills of the table are abandoned. */
int fedCacheInvalidate(FedTable *pTab){
  FedCacheTab *pCT = pTab->pCache;
  char *zRel;
  int rc;
  if( pCT==0 ) return SQLITE_OK;
  pCT->iGen++;
  if( pCT->iTid==0 ) return SQLITE_OK;
  rc = cacheClearTid(pCT->pDb, pCT->iTid);
  /* Other local tables over the same remote relation, with other column
  ** lists or the name spelled otherwise ("t" and "public"."t"), have
  ** entries of their own: every table of the server whose remote name
  ** ends in the same identifier goes too. */
  if( rc==SQLITE_OK ){
    zRel = sqlite3_mprintf("%s\n%s\n", pTab->pStore->zName,
                           pTab->pServer ? pTab->pServer->zDsn : "");
    if( zRel==0 ) return SQLITE_NOMEM;
    cacheClearSameName(pTab->pCtx, zRel,
                       pTab->zRemote ? pTab->zRemote : pTab->zName);
    sqlite3_free(zRel);
  }
  return rc;
}

/* Does the store name disjoint relations?  A store that lists its
** relations by name (fed_import) does: two tables over different names
** never share a row.  Key-value stores name key spaces by patterns and
** prefixes that may overlap ('user:*', '*', prefix 'a/' inside prefix ''),
** so a write to one may change the rows of any table of the server. */
static int cacheNamedRelations(const FedStore *pStore){
  return pStore->xListTables!=0;
}

/* Is pOther a table over rows that a write through pTab may change: the
** same store and DSN, and (for a store of named relations) a remote name
** that ends in the same identifier? */
static int cacheSameRelation(FedTable *pTab, FedTable *pOther){
  char zA[256], zB[256];
  const char *zRa = pTab->zRemote ? pTab->zRemote : pTab->zName;
  const char *zRb = pOther->zRemote ? pOther->zRemote : pOther->zName;
  if( pTab->pStore!=pOther->pStore ) return 0;
  if( pTab->pServer==0 || pOther->pServer==0 ) return pTab==pOther;
  if( strcmp(pTab->pServer->zDsn, pOther->pServer->zDsn)!=0 ) return 0;
  if( !cacheNamedRelations(pTab->pStore) ) return 1;
  cacheLastName(zRa, (int)strlen(zRa), zA, sizeof(zA));
  cacheLastName(zRb, (int)strlen(zRb), zB, sizeof(zB));
  return strcmp(zA, zB)==0;
}

/* A write through pTab, cached or not: every cached table that may hold
** rows it changes forgets them, in every cache database of the connection
** (docs/cache.md, "Invalidation"): pTab's own entries, those of the other
** local tables over the same remote relation, and for a key-value store
** those of every table of the server.  Fills in progress are abandoned
** (a scan that began before the write would cache the rows it replaced)
** and the L2 generations of the tables involved are incremented.
** SQLITE_OK, or the first error (the rest is still cleared). */
static int cacheClearWritten(FedTable *pTab){
  FedContext *pCtx = pTab->pCtx;
  FedCacheStat *pStat;
  char *zPrefix;
  int rc;
  /* Every table that can be filling is open, so in pCacheStat: bumping
  ** the generations of those over the rows abandons exactly their fills. */
  if( pTab->pCache ) pTab->pCache->iGen++;
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    FedTable *pOther = pStat->pTab;
    if( pOther && pOther->pCache && cacheSameRelation(pTab, pOther) ){
      pOther->pCache->iGen++;
      if( pOther->pCache->zL2 ) cacheL2Bump(pOther->pCache);
    }
  }
  if( pCtx->pCacheDb==0 ) return SQLITE_OK;
  zPrefix = sqlite3_mprintf("%s\n%s\n", pTab->pStore->zName,
                            pTab->pServer ? pTab->pServer->zDsn : "");
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = cacheClearSameName(pCtx, zPrefix,
                          !cacheNamedRelations(pTab->pStore) ? 0
                          : pTab->zRemote ? pTab->zRemote : pTab->zName);
  sqlite3_free(zPrefix);
  return rc;
}

/* A write through federate to pTab: invalidate now and at the end of the
** transaction.  A cache that cannot be invalidated refuses the write:
** sending it would leave entries that answer wrongly.  A table without a
** cache of its own still clears the cached tables over its rows. */
int fedCacheWrite(FedTable *pTab, char **pzErr){
  int rc;
  if( !pTab->bCacheInit ){
    rc = cacheTabInit(pTab, pzErr);
    if( rc ) return rc;
  }
  if( pTab->pCache ) pTab->pCache->bDirty = 1;
  rc = cacheClearWritten(pTab);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: cannot clear the cache of the tables over \"%s\""
        " before writing it (%s); nothing was written", pTab->pStore->zName,
        pTab->zName, sqlite3_errstr(rc));
  }
  return rc;
}

/* The transaction that wrote pTab ended (xCommit or xRollback): clear
** again, so that a fill made by another connection between the write and
** its commit cannot survive. */
void fedCacheTxnEnd(FedTable *pTab){
  if( pTab->pCache ) pTab->pCache->bDirty = 0;
  cacheClearWritten(pTab);
}

int fedCacheInvalidateServer(FedContext *pCtx, FedServer *pServer){
  char *zPrefix;
  FedCacheStat *pStat;
  int rc;
  pCtx->iCacheServerGen++;
  if( pCtx->pCacheDb==0 ) return SQLITE_OK;
  zPrefix = sqlite3_mprintf("%s\n%s\n", pServer->pStore->zName,
                            pServer->zDsn);
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = cacheClearSameName(pCtx, zPrefix, 0);
  sqlite3_free(zPrefix);
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    FedTable *pTab = pStat->pTab;
    if( pTab && pTab->pCache && pTab->pCache->zL2
     && sqlite3_stricmp(pTab->zServer, pServer->zName)==0 ){
      cacheL2Bump(pTab->pCache);
    }
  }
  return rc;
}

/* Apply the change notifications a store has received for a server:
** each names a remote relation (as FedTable.zRemote spells it).  An error
** (out of memory) means the cache must not be read now; the store keeps
** what it could not tell (docs/ARCHITECTURE.md, xChanges). */
static int cacheApplyChanges(FedTable *pTab, FedConn *pConn){
  const FedStore *pStore = pTab->pStore;
  char **azRel = 0;
  char *zPrefix;
  int nRel = 0, i, rc;
  if( pStore->xChanges==0 ) return SQLITE_OK;
  /* "*": every table of the server; else the tables over that name. */
  zPrefix = sqlite3_mprintf("%s\n%s\n", pStore->zName, pConn->pServer->zDsn);
  if( zPrefix==0 ) return SQLITE_NOMEM;
  rc = pStore->xChanges(pConn, &azRel, &nRel);
  for(i=0; i<nRel; i++){
    int rc2;
    rc2 = cacheClearSameName(pTab->pCtx, zPrefix,
                             strcmp(azRel[i], "*")==0 ? 0 : azRel[i]);
    sqlite3_free(azRel[i]);
    if( rc2!=SQLITE_OK ){
      /* A change was heard but not applied: distrust the listening, so
      ** that every table of the server is cleared before its next hit. */
      pConn->iListen = 0;
      if( rc==SQLITE_OK ) rc = rc2;
    }
  }
  sqlite3_free(azRel);
  sqlite3_free(zPrefix);
  return rc;
}

/* xWatch, then number the listening that began (FedConn.iListen), so
** that tables know whether their entries predate it. */
static int cacheWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  FedContext *pCtx = pConn->pServer->pCtx;
  int bNew = pConn->iListen==0;
  int rc = pConn->pServer->pStore->xWatch(pConn, pTab, pzErr);
  if( rc==SQLITE_OK && bNew && pConn->iListen ){
    pConn->iListen = ++pCtx->iListenSeq;
  }
  return rc;
}

/* Make sure pConn listens for the store's change notifications, and drop
** pCT's entries when it began listening after they were made. */
static int cacheListen(FedCacheTab *pCT, FedConn *pConn){
  FedTable *pTab = pCT->pTab;
  i64 *piSeen = &pCT->iListenSeen;
  if( pTab->pStore->xWatch==0 || pTab->pStore->xChanges==0 ){
    return SQLITE_ERROR;
  }
  if( pConn->iListen==0 ){
    char *zErr = 0;
    int rc;
    if( pConn->bTxn ) return SQLITE_BUSY;
    rc = cacheWatch(pConn, 0, &zErr);
    sqlite3_free(zErr);
    if( rc ) return rc;
  }
  if( *piSeen!=pConn->iListen ){
    /* Not seen until cleared: a failed clear is tried again next time. */
    int rc = fedCacheInvalidate(pTab);
    if( rc ) return rc;
    *piSeen = pConn->iListen;
  }
  return SQLITE_OK;
}

int fedCacheWantsConn(FedTable *pTab){
  if( !pTab->bCacheInit ){
    char *zErr = 0;
    cacheTabInit(pTab, &zErr);
    sqlite3_free(zErr);
  }
  return pTab->pCache && pTab->pCache->bNotify;
}

/**************************************************************************
** Scans.
*/

/* Free the cursor's cache state, abandoning an unfinished fill. */
static void cacheFillEnd(FedCursor *pCsr, int bComplete);
static void cacheFillRow(FedCursor *pCsr);
static int cacheFillSize(FedCursor *pCsr);

/* SQLite leaves a scan early.  With a pushed LIMIT that is the normal end:
** it stops at the LIMIT-th row without asking for the end; the store
** returned exactly those rows, so the entry is complete with this row. */
static void cacheFillLeave(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p->bFill==1 && p->pLimit
   && sqlite3_value_type(p->pLimit)==SQLITE_INTEGER
   && p->iSeq+1==sqlite3_value_int64(p->pLimit)
   && !pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillRow(pCsr);
    if( p->bFill==1 ) cacheFillEnd(pCsr, 1);
  }
  if( p->bFill ) cacheFillEnd(pCsr, 0);
}

void fedCacheClose(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 ) return;
  cacheFillLeave(pCsr);
  cacheCsrReset(p);
  sqlite3_free(p);
  pCsr->pCache = 0;
}

/* Is the server of pTab carrying uncommitted writes of this transaction? */
static int cacheServerDirty(FedTable *pTab){
  FedServer *pServer = pTab->pServer;
  return pServer && pServer->pConn && pServer->pConn->bTxn
      && pServer->pConn->bWritten;
}

/* The commit of the fill transaction, once no fill is in progress. */
static void cacheDbSettle(FedCacheDb *pDb){
  if( pDb->nFill==0 && pDb->bTxn ){
    if( cacheExec(pDb, "COMMIT")!=SQLITE_OK ) cacheExec(pDb, "ROLLBACK");
    pDb->bTxn = 0;
  }
}

/* Evict the least recently used entries of pCT's table until it fits in
** its bound; also drop entries past their TTL. */
static void cacheEvict(FedCacheTab *pCT, i64 iNow){
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  i64 nTotal = 0;
  if( sqlite3_prepare_v2(pDb->db, "SELECT id FROM fed_cache_entry"
        " WHERE tid=?1 AND created<=?2", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    sqlite3_bind_int64(pStmt, 2, iNow - pCT->nTtlMs);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      cacheEntryDelete(pDb, pCT->iTid, sqlite3_column_int64(pStmt, 0));
    }
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( sqlite3_prepare_v2(pDb->db, "SELECT sum(nbytes) FROM fed_cache_entry"
        " WHERE tid=?1 AND nrow>=0", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) nTotal = sqlite3_column_int64(pStmt,0);
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( nTotal<=pCT->nMaxBytes ) return;
  if( sqlite3_prepare_v2(pDb->db, "SELECT id, nbytes FROM fed_cache_entry"
        " WHERE tid=?1 AND nrow>=0 ORDER BY used, id", -1, &pStmt, 0)
      ==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    while( nTotal>pCT->nMaxBytes && sqlite3_step(pStmt)==SQLITE_ROW ){
      i64 iEntry = sqlite3_column_int64(pStmt, 0);
      nTotal -= sqlite3_column_int64(pStmt, 1);
      if( cacheEntryDelete(pDb, pCT->iTid, iEntry)==SQLITE_OK ){
        pCT->pStat->nEvict++;
      }
    }
  }
  sqlite3_finalize(pStmt);
}

/* Insert entry (nrow=-1: not readable yet) and its terms for request p,
** created at iCreated; *piEntry is its id. */
static int cacheEntryCreate(FedCacheTab *pCT, FedCacheCsr *p, i64 iCreated,
                            i64 *piEntry){
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  int rc, i, j, n;
  *piEntry = 0;
  rc = sqlite3_prepare_v2(pDb->db, "INSERT INTO fed_cache_entry(tid, qkey,"
      " cols, nterm, blimit, created, used, nbytes, nrow)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, -1)", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    sqlite3_bind_text(pStmt, 2, p->zKey, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 3, (i64)p->cols);
    sqlite3_bind_int(pStmt, 4, p->nTerm);
    sqlite3_bind_int(pStmt, 5, p->pLimit!=0 || p->pOffset!=0);
    sqlite3_bind_int64(pStmt, 6, iCreated);
    sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK ) *piEntry = sqlite3_last_insert_rowid(pDb->db);
  }
  if( rc==SQLITE_OK && *piEntry>=((i64)1<<31) ) rc = SQLITE_FULL;
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(pDb->db, "INSERT INTO fed_cache_term(entry,"
        " termno, col, op, val) VALUES(?1, ?2, ?3, ?4, ?5)", -1, &pStmt, 0);
    for(i=0; rc==SQLITE_OK && i<p->nTerm; i++){
      CacheTerm *c = &p->aTerm[i];
      n = c->nVal ? c->nVal : 1;
      for(j=0; rc==SQLITE_OK && j<n; j++){
        sqlite3_bind_int64(pStmt, 1, *piEntry);
        sqlite3_bind_int(pStmt, 2, i);
        sqlite3_bind_int(pStmt, 3, c->iCol);
        sqlite3_bind_int(pStmt, 4, c->op);
        if( c->nVal ) rc = cacheBind(pStmt, 5, &c->aVal[j]);
        else rc = sqlite3_bind_null(pStmt, 5);
        if( rc==SQLITE_OK ){
          sqlite3_step(pStmt);
          rc = sqlite3_reset(pStmt);
        }
      }
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  }
  return rc;
}

/* Open the fill transaction if it is not open; count one more fill. */
static int cacheFillBegin(FedCacheDb *pDb){
  if( !pDb->bTxn ){
    int rc = cacheExec(pDb, "BEGIN IMMEDIATE");
    if( rc ) return rc;
    pDb->bTxn = 1;
  }
  pDb->nFill++;
  return SQLITE_OK;
}

/* Start filling an entry for request p (the remote scan is open). */
static int cacheFillStart(FedCursor *pCsr, FedCacheCsr *p){
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  FedTable *pTab = pCsr->pTab;
  sqlite3_str *s;
  char *zSql;
  int rc, i;

  rc = cacheFillBegin(pDb);
  if( rc ) return rc;
  p->bFill = 1;
  p->iGen = pCT->iGen;
  p->iServerGen = pTab->pCtx->iCacheServerGen;
  p->iSeq = 0;
  p->iSized = 0;
  p->nBytes = 0;
  rc = cacheEntryCreate(pCT, p, cacheNow(), &p->iEntry);
  if( rc==SQLITE_OK ){
    s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "INSERT INTO fed_cache_r%lld(rowid, rid, rec)"
                        " VALUES(?1, fed_cache_rowid(), fed_cache_rec(",
                        pCT->iTid);
    for(i=0; i<pTab->nCol; i++){
      if( p->cols & (((u64)1)<<i) ){
        sqlite3_str_appendf(s, "%sfed_cache_col(%d)", i ? ", " : "", i);
      }else{
        sqlite3_str_appendf(s, "%sNULL", i ? ", " : "");
      }
    }
    sqlite3_str_appendall(s, "))");
    zSql = sqlite3_str_finish(s);
    if( zSql==0 ) rc = SQLITE_NOMEM;
    else{
      rc = sqlite3_prepare_v2(pDb->db, zSql, -1, &p->pIns, 0);
      sqlite3_free(zSql);
    }
  }
  if( rc ) cacheFillEnd(pCsr, 0);
  return rc;
}

/* Finish the fill: complete the entry (and evict), or delete it. */
static void cacheFillEnd(FedCursor *pCsr, int bComplete){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  i64 iNow = cacheNow();
  int rc = SQLITE_OK;
  if( !p->bFill ) return;
  p->bFill = 0;
  sqlite3_finalize(p->pIns);
  p->pIns = 0;
  if( bComplete && p->iGen==pCT->iGen && p->iEntry>0
   && p->iServerGen==pCsr->pTab->pCtx->iCacheServerGen ){
    sqlite3_stmt *pStmt = 0;
    if( p->iSized<p->iSeq ){
      p->iSeq--;                /* (cacheFillSize counts up to iSeq) */
      rc = cacheFillSize(pCsr);
      p->iSeq++;
    }
    if( rc==SQLITE_OK && p->nBytes>pCT->nMaxBytes ) rc = SQLITE_FULL;
    if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(pDb->db, "UPDATE fed_cache_entry SET nrow=?2,"
        " nbytes=?3, used=?4 WHERE id=?1", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(pStmt, 1, p->iEntry);
      sqlite3_bind_int64(pStmt, 2, p->iSeq);
      sqlite3_bind_int64(pStmt, 3, p->nBytes);
      sqlite3_bind_int64(pStmt, 4, iNow);
      sqlite3_step(pStmt);
      rc = sqlite3_finalize(pStmt);
    }
    if( rc==SQLITE_OK ){
      pCT->pStat->nFill++;
      cacheEvict(pCT, iNow);
      if( pCT->zL2 ) cacheL2Put(pCsr, p->iEntry);
    }
  }else{
    rc = SQLITE_ABORT;
  }
  if( rc!=SQLITE_OK && p->iEntry>0 ){
    cacheEntryDelete(pDb, pCT->iTid, p->iEntry);
  }
  p->iEntry = 0;
  pDb->nFill--;
  cacheDbSettle(pDb);
}

/* Add the bytes of the rows filled since the last count to p->nBytes:
** the bytes of their records plus a per-row overhead.  Counted every
** CACHE_SIZE_EVERY rows and at the end, with one query over the rows just
** written (cheaper than a count per row). */
static int cacheFillSize(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  zSql = sqlite3_mprintf("SELECT count(*)*%d+total(length(rec)) FROM"
      " fed_cache_r%lld WHERE rowid BETWEEN ?1 AND ?2", CACHE_ROW_OVERHEAD,
      pCT->iTid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pCT->pDb->db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, (p->iEntry<<32) + p->iSized);
  sqlite3_bind_int64(pStmt, 2, (p->iEntry<<32) + p->iSeq);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    p->nBytes += sqlite3_column_int64(pStmt, 0);
  }
  rc = sqlite3_finalize(pStmt);
  p->iSized = p->iSeq+1;
  return rc;
}

/* Copy the cursor's current row into the entry being filled. */
static void cacheFillRow(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheDb *pDb = p->pCT->pDb;
  int rc;
  if( p->iGen!=p->pCT->iGen || p->iSeq>=0xffffffff
   || p->iServerGen!=pCsr->pTab->pCtx->iCacheServerGen ){
    cacheFillEnd(pCsr, 0);
    return;
  }
  sqlite3_bind_int64(p->pIns, 1, (p->iEntry<<32) + p->iSeq);
  pDb->pFillCsr = pCsr;
  sqlite3_step(p->pIns);
  pDb->pFillCsr = 0;
  rc = sqlite3_reset(p->pIns);
  if( rc==SQLITE_OK && ((p->iSeq+1) % CACHE_SIZE_EVERY)==0 ){
    rc = cacheFillSize(pCsr);
  }
  if( rc==SQLITE_OK ){
    p->iSeq++;
    if( p->nBytes>p->pCT->nMaxBytes ){
      cacheFillEnd(pCsr, 0);
    }
  }else{
    cacheFillEnd(pCsr, 0);
  }
}

/* Decode the row pRead is on into p->aCell.  SQLITE_ROW, or
** SQLITE_CORRUPT. */
static int cacheReadRow(FedCacheCsr *p){
  const u8 *a = (const u8*)sqlite3_column_blob(p->pRead, 1);
  int n = sqlite3_column_bytes(p->pRead, 1);
  if( cacheRecDecode(a, n, p->aCell, p->pCT->pTab->nCol, 0) ){
    return SQLITE_CORRUPT;
  }
  return SQLITE_ROW;
}

/* Called by xFilter before the store is asked.  *pbHit=1: the scan is
** answered from the cache (pCsr->pCache->pRead positioned on the first
** row).  Otherwise the scan goes to the store, and pCsr->pCache, when
** set, asks for a fill (fedCacheFilled after the store's xFilter). */
int fedCacheFilter(FedCursor *pCsr, FedConn *pConn, int argc,
                   sqlite3_value **argv, int *pbHit, char **pzErr){
  FedTable *pTab = pCsr->pTab;
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT;
  i64 iEntry = 0;
  int rc, bSame = 0;

  *pbHit = 0;
  if( p ){
    cacheFillLeave(pCsr);
    cacheCsrReset(p);
  }
  if( !pTab->bCacheInit ){
    rc = cacheTabInit(pTab, pzErr);
    if( rc ) return rc;
  }
  pCT = pTab->pCache;
  if( pCT==0 ) return SQLITE_OK;
  /* A scan of a table that the current transaction writes (the scan of
  ** an UPDATE or DELETE, also inside BEGIN...COMMIT where bForUpdate is
  ** not set, or any read after a write) reads the store: the write needs
  ** the rows as they are now, read under the store's guard (Redis WATCH,
  ** etcd revisions, PostgreSQL locks). */
  if( pCsr->bForUpdate || pTab->iWriteTxn==pTab->pCtx->iTxn || pCT->bDirty
   || cacheServerDirty(pTab) ){
    return SQLITE_OK;
  }
  rc = cacheTabReady(pCT, pzErr);
  if( rc ) return rc;
  if( pCT->bNotify ){
    /* Without a connection that listens, nothing cached can be trusted
    ** beyond what its TTL allows... and entries made before the LISTEN
    ** began may have missed a change: they go. */
    if( pConn==0 || cacheListen(pCT, pConn)!=SQLITE_OK ) return SQLITE_OK;
    if( cacheApplyChanges(pTab, pConn)!=SQLITE_OK ) return SQLITE_OK;
    /* A subscription found lost is made again at once. */
    if( pConn->iListen==0 && cacheListen(pCT, pConn)!=SQLITE_OK ){
      return SQLITE_OK;
    }
  }
  if( p==0 ){
    p = sqlite3_malloc64(sizeof(*p));
    if( p==0 ) return SQLITE_NOMEM;
    memset(p, 0, sizeof(*p));
    pCsr->pCache = p;
  }
  p->pCT = pCT;
  p->iL2Gen = -1;
  rc = cacheRequest(pCsr, p, argc, argv);
  if( rc==SQLITE_OK ) rc = cacheLookup(p, pTab, &iEntry, &bSame);
  if( rc==SQLITE_OK && iEntry==0 && pCT->zL2 ){
    rc = cacheL2Get(pCsr, &iEntry);
    bSame = 1;                  /* An L2 entry is made for the request */
  }
  if( rc==SQLITE_OK && iEntry ){
    rc = cacheReadPrepare(pCsr, p, iEntry, bSame);
    if( rc==SQLITE_OK ){
      rc = sqlite3_step(p->pRead);
      if( rc==SQLITE_ROW ) rc = cacheReadRow(p);
      if( rc==SQLITE_ROW || rc==SQLITE_DONE ){
        p->bEof = rc==SQLITE_DONE;
        rc = SQLITE_OK;
        *pbHit = 1;
        pCT->pStat->nHit++;
        cacheTouch(pCT, iEntry);
        return SQLITE_OK;
      }
      if( rc!=SQLITE_CORRUPT ) rc = sqlite3_errcode(pCT->pDb->db);
      if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_NOMEM ) return rc;
  /* Any other trouble with the cache: ask the store, do not fill. */
  if( rc ){
    cacheCsrReset(p);
    return SQLITE_OK;
  }
  pCT->pStat->nMiss++;
  p->bFill = 2;                 /* Wanted: fedCacheFilled() starts it */
  return SQLITE_OK;
}

/* After the store's xFilter succeeded: start the fill that fedCacheFilter
** asked for (and finish it at once when the scan is empty). */
int fedCacheFilled(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  int rc;
  if( p==0 || p->bFill!=2 ) return SQLITE_OK;
  p->bFill = 0;
  rc = cacheFillStart(pCsr, p);
  if( rc==SQLITE_NOMEM ) return rc;
  if( rc==SQLITE_OK && pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillEnd(pCsr, 1);
  }
  return SQLITE_OK;
}

/* The store's xFilter failed: forget the wanted fill. */
void fedCacheFailed(FedCursor *pCsr){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 ) return;
  if( p->bFill==1 ) cacheFillEnd(pCsr, 0);
  p->bFill = 0;
}

int fedCacheFilling(FedCursor *pCsr){
  return pCsr->pCache!=0 && pCsr->pCache->bFill==1;
}

/* xNext while filling: copy the current row before the store moves on;
** after the store's xNext, fedCacheAfterNext() completes at the end. */
void fedCacheBeforeNext(FedCursor *pCsr){
  cacheFillRow(pCsr);
}

void fedCacheAfterNext(FedCursor *pCsr, int rc){
  FedCacheCsr *p = pCsr->pCache;
  if( p==0 || p->bFill!=1 ) return;
  if( rc!=SQLITE_OK ){
    cacheFillEnd(pCsr, 0);      /* A failed scan is never cached */
  }else if( pCsr->pTab->pStore->xEof(pCsr) ){
    cacheFillEnd(pCsr, 1);
  }
}

/* Serving from the cache. */
int fedCacheNext(FedCursor *pCsr, char **pzErr){
  FedCacheCsr *p = pCsr->pCache;
  int rc = sqlite3_step(p->pRead);
  if( rc==SQLITE_ROW ) rc = cacheReadRow(p);
  if( rc==SQLITE_ROW ) return SQLITE_OK;
  if( rc==SQLITE_DONE ){ p->bEof = 1; return SQLITE_OK; }
  if( rc==SQLITE_CORRUPT ){
    fedSetError(pzErr, "%s: reading cache database \"%s\": malformed row",
                pCsr->pTab->pStore->zName, p->pCT->zDbPath);
    return SQLITE_CORRUPT;
  }
  rc = sqlite3_errcode(p->pCT->pDb->db);
  if( rc!=SQLITE_NOMEM ){
    fedSetError(pzErr, "%s: reading cache database \"%s\": %s",
                pCsr->pTab->pStore->zName, p->pCT->zDbPath,
                sqlite3_errmsg(p->pCT->pDb->db));
    rc = SQLITE_ERROR;
  }
  return rc;
}

int fedCacheEof(FedCursor *pCsr){
  return pCsr->pCache->bEof;
}

int fedCacheColumn(FedCursor *pCsr, sqlite3_context *ctx, int iCol){
  cacheCellResult(ctx, &pCsr->pCache->aCell[iCol]);
  return SQLITE_OK;
}

int fedCacheRowid(FedCursor *pCsr, i64 *piRowid){
  *piRowid = sqlite3_column_int64(pCsr->pCache->pRead, 0);
  return SQLITE_OK;
}

/**************************************************************************
** L2: entries in a Redis server shared by processes (cache_l2=SERVER).
**
**   fedcache:<relation hash>:gen             the relation's generation
**   fedcache:<relation hash>:<gen>:<hash of table key and request>
**
** (the relation: store, DSN, remote name; the table key adds the column
** list, so that every local table over the relation shares the
** generation).
**
** A write through federate increments the generation, so that every
** process stops reading the old entries (they expire by cache_l2_ttl).
** An entry's value holds its table key and request text, checked on
** read (a hash collision is a miss), the time it was made (the L1 copy
** expires when the original would), and the rows:
**
**   FEDC1 <created ms> <ncol> <nrow>\n<len>:<tkey><len>:<qkey>
**   then per row: rid, then each cached column, each value as
**   cacheValText() writes it
**
** Everything L2 does is best effort: a Redis error is a miss.
*/

/* 64-bit FNV-1a, as 16 hex digits. */
static void cacheHash(const char *z, char *zOut){
  u64 h = 0xcbf29ce484222325ULL;
  while( *z ){ h ^= (u8)*z++; h *= 0x100000001b3ULL; }
  sqlite3_snprintf(17, zOut, "%016llx", (unsigned long long)h);
}

/* Run one Redis command with up to 3 text/blob arguments on the L2
** server; *pzReply gets the first row's JSON ({"value": ...}) or NULL. */
static int cacheL2Cmd(FedCacheTab *pCT, const char *zCmd, int nArg,
                      const char **az, const int *an, char **pzReply){
  FedTable *pTab = pCT->pTab;
  FedServer *pServer = 0;
  FedConn *pConn = 0;
  sqlite3_stmt *pArgs = 0;
  sqlite3_value *apArg[3];
  char **azRow = 0, *zErr = 0;
  int nRow = 0, rc, i;
  i64 nChanged = 0;
  if( pzReply ) *pzReply = 0;
  rc = fedServerFind(pTab->pCtx, pCT->zL2, &pServer, &zErr);
  if( rc==SQLITE_OK && (pServer->pStore->xQuery==0
        || strcmp(pServer->pStore->zName, "redis")!=0) ){
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pTab->pCtx, pServer, &pConn, &zErr);
  if( rc==SQLITE_OK && pConn->bTxn ) rc = SQLITE_BUSY;
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT ?1, ?2, ?3", -1, &pArgs, 0);
  }
  for(i=0; rc==SQLITE_OK && i<nArg; i++){
    int n = (an==0 || an[i]<0) ? (int)strlen(az[i]) : an[i];
    rc = sqlite3_bind_blob(pArgs, i+1, az[i], n, SQLITE_STATIC);
  }
  if( rc==SQLITE_OK && sqlite3_step(pArgs)!=SQLITE_ROW ) rc = SQLITE_ERROR;
  if( rc==SQLITE_OK ){
    for(i=0; i<nArg; i++) apArg[i] = sqlite3_column_value(pArgs, i);
    rc = pServer->pStore->xQuery(pConn, zCmd, nArg, apArg, &azRow, &nRow,
                                 &nChanged, &zErr);
  }
  sqlite3_finalize(pArgs);
  sqlite3_free(zErr);
  if( rc==SQLITE_OK && pzReply && nRow>0 ){
    *pzReply = azRow[0];
    azRow[0] = 0;
  }
  for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
  sqlite3_free(azRow);
  return rc;
}

/* The table's L2 key prefix "fedcache:<hash>:" and current generation. */
static int cacheL2Prefix(FedCacheTab *pCT, char *zPrefix, i64 *piGen){
  char *zKey = cacheRelKey(pCT->pTab);
  char *zReply = 0, zGenKey[48];
  char zHash[17];
  const char *az[1];
  int rc;
  if( zKey==0 ) return SQLITE_NOMEM;
  cacheHash(zKey, zHash);
  sqlite3_free(zKey);
  sqlite3_snprintf(27, zPrefix, "fedcache:%s:", zHash);
  if( piGen==0 ) return SQLITE_OK;
  sqlite3_snprintf(sizeof(zGenKey), zGenKey, "%sgen", zPrefix);
  az[0] = zGenKey;
  rc = cacheL2Cmd(pCT, "GET ?", 1, az, 0, &zReply);
  *piGen = 0;
  if( rc==SQLITE_OK && zReply ){
    const char *z = strchr(zReply, ':');
    if( z ){
      z++;
      if( *z=='"' ) z++;
      while( *z>='0' && *z<='9' ) *piGen = *piGen*10 + (*z++ - '0');
    }
  }
  sqlite3_free(zReply);
  return rc;
}

/* The hash of an entry's table key (with its columns) and request. */
static int cacheL2EntryHash(FedTable *pTab, const char *zReq, char *zHash){
  char *zTKey = cacheTableKey(pTab);
  char *z;
  if( zTKey==0 ) return SQLITE_NOMEM;
  z = sqlite3_mprintf("%s\n%s", zTKey, zReq);
  sqlite3_free(zTKey);
  if( z==0 ) return SQLITE_NOMEM;
  cacheHash(z, zHash);
  sqlite3_free(z);
  return SQLITE_OK;
}

static void cacheL2Bump(FedCacheTab *pCT){
  char zPrefix[32], zGenKey[48];
  const char *az[1];
  if( pCT->zL2==0 || pCT->pDb==0 ) return;
  if( cacheL2Prefix(pCT, zPrefix, 0) ) return;
  sqlite3_snprintf(sizeof(zGenKey), zGenKey, "%sgen", zPrefix);
  az[0] = zGenKey;
  cacheL2Cmd(pCT, "INCR ?", 1, az, 0, 0);
}

/* Copy a complete L1 entry to L2. */
static void cacheL2Put(FedCursor *pCsr, i64 iEntry){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedTable *pTab = pCsr->pTab;
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *s;
  char zPrefix[32], zKey[80], zHash[17], zTtl[24];
  char *zTKey = 0, *zVal = 0;
  const char *az[3];
  int an[3], i, nCol = 0, rc;
  i64 iGen = 0, nRow = 0, iCreated = 0;

  /* The generation read when the miss was found saves a round trip (a
  ** write since then abandoned the fill, so it is still this scan's). */
  if( cacheL2Prefix(pCT, zPrefix, p->iL2Gen>=0 ? 0 : &iGen) ) return;
  if( p->iL2Gen>=0 ) iGen = p->iL2Gen;
  if( cacheL2EntryHash(pTab, p->zKey, zHash) ) return;
  sqlite3_snprintf(sizeof(zKey), zKey, "%s%lld:%s", zPrefix, iGen, zHash);
  zTKey = cacheTableKey(pTab);
  if( zTKey==0 ) return;
  s = sqlite3_str_new(0);
  for(i=0; i<pTab->nCol; i++) if( p->cols & (((u64)1)<<i) ) nCol++;
  rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT nrow, created FROM"
      " fed_cache_entry WHERE id=?1", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      nRow = sqlite3_column_int64(pStmt, 0);
      iCreated = sqlite3_column_int64(pStmt, 1);
    }
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  sqlite3_str_appendf(s, "FEDC1 %lld %d %lld\n%d:%s%d:%s", iCreated, nCol,
                      nRow, (int)strlen(zTKey), zTKey, (int)strlen(p->zKey),
                      p->zKey);
  sqlite3_free(zTKey);
  {
    sqlite3_str *q = sqlite3_str_new(0);
    char *zSql;
    sqlite3_str_appendall(q, "SELECT rid");
    for(i=0; i<pTab->nCol; i++){
      if( p->cols & (((u64)1)<<i) ){
        sqlite3_str_appendf(q, ", fed_cache_val(rec, %d)", i);
      }
    }
    sqlite3_str_appendf(q, " FROM fed_cache_r%lld WHERE rowid BETWEEN ?1 AND"
                        " ?2 ORDER BY rowid", pCT->iTid);
    zSql = sqlite3_str_finish(q);
    rc = zSql ? sqlite3_prepare_v2(pCT->pDb->db, zSql, -1, &pStmt, 0)
              : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry<<32);
    sqlite3_bind_int64(pStmt, 2, (iEntry<<32)|0xffffffff);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      for(i=0; i<=nCol; i++) cacheValText(s, sqlite3_column_value(pStmt, i));
    }
    rc = sqlite3_finalize(pStmt);
  }
  i = sqlite3_str_length(s);
  zVal = sqlite3_str_finish(s);
  if( rc==SQLITE_OK && zVal ){
    sqlite3_snprintf(sizeof(zTtl), zTtl, "%lld", pCT->nL2TtlMs);
    az[0] = zKey;  an[0] = -1;
    az[1] = zVal;  an[1] = i;
    az[2] = zTtl;  an[2] = -1;
    cacheL2Cmd(pCT, "SET ? ? PX ?", 3, az, an, 0);
  }
  sqlite3_free(zVal);
}

/* Parsing an L2 value. */
typedef struct L2Parse L2Parse;
struct L2Parse { const char *z; int n; int i; };

static i64 l2Int(L2Parse *r){
  i64 v = 0;
  int bNeg = 0;
  if( r->i<r->n && r->z[r->i]=='-' ){ bNeg = 1; r->i++; }
  while( r->i<r->n && r->z[r->i]>='0' && r->z[r->i]<='9' ){
    v = v*10 + (r->z[r->i++] - '0');
  }
  return bNeg ? -v : v;
}

static int l2Expect(L2Parse *r, char c){
  if( r->i<r->n && r->z[r->i]==c ){ r->i++; return 0; }
  return 1;
}

static int l2Hex(char c){
  if( c>='0' && c<='9' ) return c-'0';
  if( c>='a' && c<='f' ) return c-'a'+10;
  return -1;
}

/* Bind the next serialized value to pStmt's parameter iBind. */
static int l2Bind(L2Parse *r, sqlite3_stmt *pStmt, int iBind){
  char c;
  i64 n;
  if( r->i>=r->n ) return SQLITE_CORRUPT;
  c = r->z[r->i++];
  switch( c ){
    case 'n': return sqlite3_bind_null(pStmt, iBind);
    case 'i':
      n = l2Int(r);
      if( l2Expect(r, ';') ) return SQLITE_CORRUPT;
      return sqlite3_bind_int64(pStmt, iBind, n);
    case 'f': {
      u64 u = 0;
      double d;
      int k;
      for(k=0; k<16; k++){
        int h = r->i<r->n ? l2Hex(r->z[r->i]) : -1;
        if( h<0 ) return SQLITE_CORRUPT;
        u = (u<<4) | (u64)h;
        r->i++;
      }
      memcpy(&d, &u, 8);
      return sqlite3_bind_double(pStmt, iBind, d);
    }
    case 't':
      n = l2Int(r);
      if( l2Expect(r, ':') || n<0 || n>r->n-r->i ) return SQLITE_CORRUPT;
      r->i += (int)n;
      return sqlite3_bind_text(pStmt, iBind, r->z+r->i-n, (int)n,
                               SQLITE_TRANSIENT);
    case 'b':
    case 'x': {
      u8 *a;
      int k, rc;
      n = l2Int(r);
      if( l2Expect(r, ':') || n<0 || 2*n>r->n-r->i ) return SQLITE_CORRUPT;
      a = sqlite3_malloc64(n+1);
      if( a==0 ) return SQLITE_NOMEM;
      for(k=0; k<n; k++){
        int h1 = l2Hex(r->z[r->i]), h2 = l2Hex(r->z[r->i+1]);
        if( h1<0 || h2<0 ){ sqlite3_free(a); return SQLITE_CORRUPT; }
        a[k] = (u8)(h1*16+h2);
        r->i += 2;
      }
      if( c=='b' ){
        rc = sqlite3_bind_blob(pStmt, iBind, a, (int)n, SQLITE_TRANSIENT);
      }else{
        rc = sqlite3_bind_text(pStmt, iBind, (const char*)a, (int)n,
                               SQLITE_TRANSIENT);
      }
      sqlite3_free(a);
      return rc;
    }
  }
  return SQLITE_CORRUPT;
}

/* Look for request p in L2; on a hit, copy it into L1 as a complete entry
** (*piEntry).  Errors of L2 are misses; only OOM is returned. */
static int cacheL2Get(FedCursor *pCsr, i64 *piEntry){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedTable *pTab = pCsr->pTab;
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  char zPrefix[32], zKey[80], zHash[17];
  char *zReply = 0, *zTKey = 0;
  const char *az[1];
  const char *zVal = 0;
  L2Parse r;
  i64 iGen = 0, iCreated, nRow, iEntry = 0, k;
  int nCol, i, rc, nValid = 0;

  *piEntry = 0;
  if( cacheL2Prefix(pCT, zPrefix, &iGen) ) return SQLITE_OK;
  p->iL2Gen = iGen;             /* For the put after the fill */
  if( cacheL2EntryHash(pTab, p->zKey, zHash) ) return SQLITE_NOMEM;
  sqlite3_snprintf(sizeof(zKey), zKey, "%s%lld:%s", zPrefix, iGen, zHash);
  az[0] = zKey;
  rc = cacheL2Cmd(pCT, "GET ?", 1, az, 0, &zReply);
  if( rc==SQLITE_NOMEM ) return rc;
  if( rc || zReply==0 ) return SQLITE_OK;
  /* The reply is {"value": "<text>"}: let SQLite's JSON decode it. */
  rc = sqlite3_prepare_v2(pDb->db, "SELECT json_extract(?1, '$.value')", -1,
                          &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zReply, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW
     && sqlite3_column_type(pStmt, 0)==SQLITE_TEXT ){
      zVal = (const char*)sqlite3_column_text(pStmt, 0);
      r.z = zVal;
      r.n = sqlite3_column_bytes(pStmt, 0);
      r.i = 0;
      nValid = 1;
    }
  }
  zTKey = cacheTableKey(pTab);
  if( nValid && zTKey && r.n>6 && memcmp(r.z, "FEDC1 ", 6)==0 ){
    sqlite3_stmt *pIns = 0;
    int nT, nQ;
    r.i = 6;
    iCreated = l2Int(&r);
    nValid = !l2Expect(&r, ' ');
    nCol = (int)l2Int(&r);
    nValid = nValid && !l2Expect(&r, ' ');
    nRow = l2Int(&r);
    nValid = nValid && !l2Expect(&r, '\n');
    nT = (int)l2Int(&r);
    nValid = nValid && !l2Expect(&r, ':') && nT==(int)strlen(zTKey)
          && nT<=r.n-r.i && memcmp(r.z+r.i, zTKey, nT)==0;
    if( nValid ) r.i += nT;
    nQ = (int)l2Int(&r);
    nValid = nValid && !l2Expect(&r, ':') && nQ==(int)strlen(p->zKey)
          && nQ<=r.n-r.i && memcmp(r.z+r.i, p->zKey, nQ)==0;
    if( nValid ) r.i += nQ;
    for(i=0, k=0; i<pTab->nCol; i++) if( p->cols & (((u64)1)<<i) ) k++;
    nValid = nValid && nCol==k && iCreated>cacheNow()-pCT->nTtlMs;
    if( nValid && cacheFillBegin(pDb)==SQLITE_OK ){
      sqlite3_str *s = sqlite3_str_new(0);
      char *zSql;
      rc = cacheEntryCreate(pCT, p, iCreated, &iEntry);
      sqlite3_str_appendf(s, "INSERT INTO fed_cache_r%lld(rowid, rid, rec)"
                          " VALUES(?1, ?2, fed_cache_rec(", pCT->iTid);
      for(i=0, k=3; i<pTab->nCol; i++){
        if( p->cols & (((u64)1)<<i) ){
          sqlite3_str_appendf(s, "%s?%d", i ? ", " : "", (int)k++);
        }else{
          sqlite3_str_appendf(s, "%sNULL", i ? ", " : "");
        }
      }
      sqlite3_str_appendall(s, "))");
      zSql = sqlite3_str_finish(s);
      if( rc==SQLITE_OK ){
        rc = zSql ? sqlite3_prepare_v2(pDb->db, zSql, -1, &pIns, 0)
                  : SQLITE_NOMEM;
      }
      sqlite3_free(zSql);
      for(k=0; rc==SQLITE_OK && k<nRow; k++){
        sqlite3_bind_int64(pIns, 1, (iEntry<<32)+k);
        for(i=0; rc==SQLITE_OK && i<=nCol; i++) rc = l2Bind(&r, pIns, i+2);
        if( rc==SQLITE_OK ){
          sqlite3_step(pIns);
          rc = sqlite3_reset(pIns);
        }
      }
      sqlite3_finalize(pIns);
      if( rc==SQLITE_OK && r.i!=r.n ) rc = SQLITE_CORRUPT;
      if( rc==SQLITE_OK ){
        char *zUpd = sqlite3_mprintf("UPDATE fed_cache_entry SET nrow=%lld,"
            " nbytes=%d WHERE id=%lld", nRow, r.n, iEntry);
        rc = zUpd ? cacheExec(pDb, zUpd) : SQLITE_NOMEM;
        sqlite3_free(zUpd);
      }
      if( rc==SQLITE_OK ){
        *piEntry = iEntry;
        pCT->pStat->nL2Hit++;
      }else if( iEntry ){
        cacheEntryDelete(pDb, pCT->iTid, iEntry);
      }
      pDb->nFill--;
      cacheDbSettle(pDb);
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zTKey);
  sqlite3_free(zReply);
  return rc==SQLITE_NOMEM ? rc : SQLITE_OK;
}

/**************************************************************************
** SQL: fed_cache_stats, fed_cache_clear(), fed_cache_watch().
*/

/* The FedTable of local table zName (connecting it if SQLite has not). */
static int cacheFindTable(FedContext *pCtx, const char *zName,
                          FedTable **ppTab, char **pzErr){
  sqlite3 *db = pCtx->db;
  sqlite3_stmt *pStmt = 0;
  FedCacheStat *pStat;
  char *zSql;
  int rc;
  *ppTab = 0;
  /* Preparing a statement makes SQLite connect the virtual table. */
  zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE 0", zName);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_NOMEM ) return rc;
  for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
    if( pStat->pTab && (sqlite3_stricmp(pStat->pTab->zName, zName)==0
                        || sqlite3_stricmp(pStat->zName, zName)==0) ){
      *ppTab = pStat->pTab;
      return SQLITE_OK;
    }
  }
  fedSetError(pzErr, "no federate table \"%s\" with a cache", zName);
  return SQLITE_ERROR;
}

/* The result of fed_cache_clear()/fed_cache_watch(): n, or the error. */
static void cacheFuncResult(sqlite3_context *ctx, const char *zFunc, int rc,
                            const char *zErr, int n){
  if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc ){
    char *zMsg = sqlite3_mprintf("%s: %s", zFunc,
                                 zErr ? zErr : sqlite3_errstr(rc));
    if( zMsg==0 ){
      sqlite3_result_error_nomem(ctx);
    }else{
      sqlite3_result_error(ctx, zMsg, -1);
      sqlite3_free(zMsg);
    }
  }else{
    sqlite3_result_int(ctx, n);
  }
}

static void cacheClearFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  char *zErr = 0;
  int rc = SQLITE_OK, n = 0;
  if( argc==1 && sqlite3_value_type(argv[0])!=SQLITE_NULL ){
    FedTable *pTab = 0;
    const char *zName = (const char*)sqlite3_value_text(argv[0]);
    if( zName==0 ){ sqlite3_result_error_nomem(ctx); return; }
    rc = cacheFindTable(pCtx, zName, &pTab, &zErr);
    if( rc==SQLITE_OK ){
      /* Its database may not be open yet: open it to clear it. */
      rc = cacheTabReady(pTab->pCache, &zErr);
      if( rc==SQLITE_OK ) rc = fedCacheInvalidate(pTab);
      if( rc==SQLITE_OK ) cacheL2Bump(pTab->pCache);
      n = 1;
    }
  }else{
    FedCacheDb *pDb;
    FedCacheStat *pStat;
    for(pStat=pCtx->pCacheStat; pStat; pStat=pStat->pNext){
      if( pStat->pTab && pStat->pTab->pCache ){
        pStat->pTab->pCache->iGen++;
        cacheL2Bump(pStat->pTab->pCache);
      }
    }
    for(pDb=pCtx->pCacheDb; pDb && rc==SQLITE_OK; pDb=pDb->pNext){
      rc = cacheClearTid(pDb, 0);
      n++;
    }
  }
  cacheFuncResult(ctx, "fed_cache_clear", rc, zErr, n);
  sqlite3_free(zErr);
}

/* fed_cache_watch(table): ask the store to notify this connection of
** changes to the table by anyone (PostgreSQL: a trigger and LISTEN). */
static void cacheWatchFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  FedContext *pCtx = (FedContext*)sqlite3_user_data(ctx);
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  FedTable *pTab = 0;
  FedConn *pConn = 0;
  char *zErr = 0;
  int rc;
  (void)argc;
  if( zName==0 ){
    sqlite3_result_error(ctx, "fed_cache_watch: a table name is required",
                         -1);
    return;
  }
  rc = fedSchemaGuard(pCtx, "fed_cache_watch", &zErr);
  if( rc==SQLITE_OK ) rc = cacheFindTable(pCtx, zName, &pTab, &zErr);
  if( rc==SQLITE_OK && pTab->pStore->xWatch==0 ){
    fedSetError(&zErr, "%s: this store cannot notify changes; the cache of"
                " \"%s\" relies on its TTL", pTab->pStore->zName, zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && pTab->pServer==0 ){
    rc = fedServerFind(pCtx, pTab->zServer, &pTab->pServer, &zErr);
  }
  if( rc==SQLITE_OK ) rc = fedServerConn(pCtx, pTab->pServer, &pConn, &zErr);
  if( rc==SQLITE_OK ) rc = cacheWatch(pConn, pTab, &zErr);
  cacheFuncResult(ctx, "fed_cache_watch", rc, zErr, 1);
  sqlite3_free(zErr);
}

/* fed_cache_stats: one row per table that uses the cache on this
** connection. */
typedef struct StatsCursor StatsCursor;
struct StatsCursor {
  sqlite3_vtab_cursor base;     /* Base class. Must be first */
  FedContext *pCtx;
  FedCacheStat *pCur;
  i64 iRow;
  i64 nEntry, nBytes;
};

typedef struct StatsTable StatsTable;
struct StatsTable {
  sqlite3_vtab base;            /* Base class. Must be first */
  FedContext *pCtx;
};

static int statsConnect(sqlite3 *db, void *pAux, int argc,
                        const char *const *argv, sqlite3_vtab **ppVtab,
                        char **pzErr){
  StatsTable *pTab;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(name TEXT, hits INTEGER,"
      " misses INTEGER, entries INTEGER, bytes INTEGER, evictions INTEGER,"
      " fills INTEGER, l2_hits INTEGER, cache_db TEXT)");
  if( rc ) return rc;
  pTab = sqlite3_malloc64(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->pCtx = (FedContext*)pAux;
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int statsDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int statsBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  (void)pVtab;
  pInfo->estimatedCost = 10;
  return SQLITE_OK;
}

static int statsOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCsr){
  StatsCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->pCtx = ((StatsTable*)pVtab)->pCtx;
  *ppCsr = &pCsr->base;
  return SQLITE_OK;
}

static int statsClose(sqlite3_vtab_cursor *pCsr){
  sqlite3_free(pCsr);
  return SQLITE_OK;
}

/* Entries and bytes of the current row's table, from its database. */
static int statsLoad(StatsCursor *pCsr){
  FedCacheStat *pStat = pCsr->pCur;
  FedCacheTab *pCT;
  sqlite3_stmt *pStmt = 0;
  int rc = SQLITE_OK;
  pCsr->nEntry = pCsr->nBytes = 0;
  if( pStat==0 || pStat->pTab==0 ) return SQLITE_OK;
  pCT = pStat->pTab->pCache;
  if( pCT==0 || pCT->iTid==0 ) return SQLITE_OK;
  rc = sqlite3_prepare_v2(pCT->pDb->db, "SELECT count(*), total(nbytes) FROM"
      " fed_cache_entry WHERE tid=?1 AND nrow>=0 AND created>?2", -1,
      &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, pCT->iTid);
    sqlite3_bind_int64(pStmt, 2, cacheNow()-pCT->nTtlMs);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      pCsr->nEntry = sqlite3_column_int64(pStmt, 0);
      pCsr->nBytes = sqlite3_column_int64(pStmt, 1);
    }
    rc = sqlite3_finalize(pStmt);
  }
  return rc;
}

static int statsFilter(sqlite3_vtab_cursor *pVCsr, int idxNum,
                       const char *idxStr, int argc, sqlite3_value **argv){
  StatsCursor *pCsr = (StatsCursor*)pVCsr;
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  pCsr->pCur = pCsr->pCtx->pCacheStat;
  pCsr->iRow = 1;
  return statsLoad(pCsr);
}

static int statsNext(sqlite3_vtab_cursor *pVCsr){
  StatsCursor *pCsr = (StatsCursor*)pVCsr;
  pCsr->pCur = pCsr->pCur->pNext;
  pCsr->iRow++;
  return statsLoad(pCsr);
}

static int statsEof(sqlite3_vtab_cursor *pVCsr){
  return ((StatsCursor*)pVCsr)->pCur==0;
}

static int statsColumn(sqlite3_vtab_cursor *pVCsr, sqlite3_context *ctx,
                       int iCol){
  StatsCursor *pCsr = (StatsCursor*)pVCsr;
  FedCacheStat *p = pCsr->pCur;
  switch( iCol ){
    case 0: sqlite3_result_text(ctx, p->zName, -1, SQLITE_TRANSIENT); break;
    case 1: sqlite3_result_int64(ctx, p->nHit); break;
    case 2: sqlite3_result_int64(ctx, p->nMiss); break;
    case 3: sqlite3_result_int64(ctx, pCsr->nEntry); break;
    case 4: sqlite3_result_int64(ctx, pCsr->nBytes); break;
    case 5: sqlite3_result_int64(ctx, p->nEvict); break;
    case 6: sqlite3_result_int64(ctx, p->nFill); break;
    case 7: sqlite3_result_int64(ctx, p->nL2Hit); break;
    case 8:
      if( p->pTab && p->pTab->pCache ){
        sqlite3_result_text(ctx, p->pTab->pCache->zDbPath, -1,
                            SQLITE_TRANSIENT);
      }
      break;
  }
  return SQLITE_OK;
}

static int statsRowid(sqlite3_vtab_cursor *pVCsr, sqlite3_int64 *piRowid){
  *piRowid = ((StatsCursor*)pVCsr)->iRow;
  return SQLITE_OK;
}

static const sqlite3_module statsModule = {
  0, 0, statsConnect, statsBestIndex, statsDisconnect, 0,
  statsOpen, statsClose, statsFilter, statsNext, statsEof, statsColumn,
  statsRowid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int fedCacheRegister(sqlite3 *db, FedContext *pCtx){
  int rc;
  const int f = SQLITE_UTF8|SQLITE_DIRECTONLY;
  pCtx->nRef++;
  rc = sqlite3_create_module_v2(db, "fed_cache_stats", &statsModule, pCtx,
                                fedContextUnref);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_clear", 0, f, pCtx,
                                 cacheClearFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_clear", 1, f, pCtx,
                                 cacheClearFunc, 0, 0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "fed_cache_watch", 1, f, pCtx,
                                 cacheWatchFunc, 0, 0);
  }
  return rc;
}
