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
** Sections: utilities, patterns, commands and pipelines, connection,
** table and planning, the transaction queue and its shadows, scans,
** writes, transactions, pass-through.  Reads stream in SCAN batches whose
** fetches are pipelined together with the next SCAN; writes are queued and
** sent at commit as one MULTI/EXEC (FED_TXN_BATCH), after a round trip
** that WATCHes the keys written and checks everything that could make a
** command inside EXEC fail.  hiredis 0.14 allocates with malloc (it has no
** allocator hooks): replies are freed where they are read, and are outside
** SQLite's memory accounting, except a scan's, which its reply functions
** build in arenas from sqlite3_malloc64 (RReplyArena).
*/
#include "fedInt.h"
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
typedef struct RHash RHash;
typedef struct RHashElem RHashElem;
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

/**************************************************************************
** Utilities: owned byte strings, a hash map keyed by (database, bytes),
** and an arena for copies that must not move.
*/

/* A byte string, sqlite3_malloc'd and NUL-terminated (z==0: absent). */
struct RBuf {
  char *z;
  int n;
};

static int rbufSet(RBuf *p, const char *z, int n){
  char *zNew = sqlite3_malloc64((u64)n+1);
  if( zNew==0 ) return SQLITE_NOMEM;
  if( n>0 ) memcpy(zNew, z, n);
  zNew[n] = 0;
  sqlite3_free(p->z);
  p->z = zNew;
  p->n = n;
  return SQLITE_OK;
}

static void rbufFree(RBuf *p){
  sqlite3_free(p->z);
  p->z = 0;
  p->n = 0;
}

static int rbufEq(const RBuf *p, const char *z, int n){
  return p->z && p->n==n && (n==0 || memcmp(p->z, z, n)==0);
}

struct RHashElem {
  RHashElem *pNext;             /* Next in the bucket */
  unsigned int h;
  int iDb;
  int nKey;
  char *zKey;                   /* Stored just after this struct */
  void *pVal;                   /* Freed by RHash.xDel */
  double r;                     /* Free for the user: a zset score */
  i64 i;                        /* Free for the user: a count, a type */
};

struct RHash {
  int nElem;
  int nBucket;
  RHashElem **aBucket;
  void (*xDel)(void*);          /* Destructor of pVal, or NULL */
};

static unsigned int rhashCode(int iDb, const char *z, int n){
  unsigned int h = 2166136261u ^ (unsigned int)iDb;
  int i;
  for(i=0; i<n; i++){
    h ^= (unsigned char)z[i];
    h *= 16777619u;
  }
  return h;
}

static RHashElem *rhashFind(const RHash *pH, int iDb, const char *z, int n){
  RHashElem *p;
  unsigned int h;
  if( pH->nBucket==0 ) return 0;
  h = rhashCode(iDb, z, n);
  for(p=pH->aBucket[h % pH->nBucket]; p; p=p->pNext){
    if( p->h==h && p->iDb==iDb && p->nKey==n
     && (n==0 || memcmp(p->zKey, z, n)==0) ){
      return p;
    }
  }
  return 0;
}

/* Find or add (iDb, z).  *pbNew is set if the element was added.  NULL on
** out of memory. */
static RHashElem *rhashAdd(RHash *pH, int iDb, const char *z, int n,
                           int *pbNew){
  RHashElem *p = rhashFind(pH, iDb, z, n);
  unsigned int h;
  if( pbNew ) *pbNew = 0;
  if( p ) return p;
  if( pH->nElem>=pH->nBucket ){
    int nNew = pH->nBucket ? pH->nBucket*2 : 16;
    RHashElem **a = sqlite3_malloc64(sizeof(RHashElem*)*nNew);
    if( a ){
      int i;
      memset(a, 0, sizeof(RHashElem*)*nNew);
      for(i=0; i<pH->nBucket; i++){
        while( pH->aBucket[i] ){
          RHashElem *pE = pH->aBucket[i];
          pH->aBucket[i] = pE->pNext;
          pE->pNext = a[pE->h % nNew];
          a[pE->h % nNew] = pE;
        }
      }
      sqlite3_free(pH->aBucket);
      pH->aBucket = a;
      pH->nBucket = nNew;
    }else if( pH->nBucket==0 ){
      return 0;
    }
  }
  p = sqlite3_malloc64(sizeof(*p)+(u64)n+1);
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  h = rhashCode(iDb, z, n);
  p->h = h;
  p->iDb = iDb;
  p->nKey = n;
  p->zKey = (char*)&p[1];
  if( n>0 ) memcpy(p->zKey, z, n);
  p->zKey[n] = 0;
  p->pNext = pH->aBucket[h % pH->nBucket];
  pH->aBucket[h % pH->nBucket] = p;
  pH->nElem++;
  if( pbNew ) *pbNew = 1;
  return p;
}

static void rhashRemove(RHash *pH, int iDb, const char *z, int n){
  RHashElem **pp;
  unsigned int h;
  if( pH->nBucket==0 ) return;
  h = rhashCode(iDb, z, n);
  for(pp=&pH->aBucket[h % pH->nBucket]; *pp; pp=&(*pp)->pNext){
    RHashElem *p = *pp;
    if( p->h==h && p->iDb==iDb && p->nKey==n
     && (n==0 || memcmp(p->zKey, z, n)==0) ){
      *pp = p->pNext;
      if( pH->xDel && p->pVal ) pH->xDel(p->pVal);
      sqlite3_free(p);
      pH->nElem--;
      return;
    }
  }
}

static void rhashClear(RHash *pH){
  int i;
  for(i=0; i<pH->nBucket; i++){
    while( pH->aBucket[i] ){
      RHashElem *p = pH->aBucket[i];
      pH->aBucket[i] = p->pNext;
      if( pH->xDel && p->pVal ) pH->xDel(p->pVal);
      sqlite3_free(p);
    }
  }
  sqlite3_free(pH->aBucket);
  pH->aBucket = 0;
  pH->nBucket = 0;
  pH->nElem = 0;
}

#define RHASH_EACH(pH, i, p) \
  for(i=0; i<(pH)->nBucket; i++) for(p=(pH)->aBucket[i]; p; p=p->pNext)

/* Copies that stay where they are until the arena is freed. */
struct RChunk {
  RChunk *pNext;
  int nUsed, nAlloc;
  /* Bytes follow */
};
struct RArena {
  RChunk *pFirst;
};

static char *arenaDup(RArena *pA, const char *z, int n){
  RChunk *p = pA->pFirst;
  char *zOut;
  if( p==0 || p->nAlloc-p->nUsed<n+1 ){
    /* Chunks double up to 256 KB: a scan's set of keys takes few large
    ** allocations (each one below the mmap threshold makes glibc
    ** consolidate the small blocks hiredis freed, a twentieth of a scan
    ** at 4 KB a chunk). */
    int nAlloc = p ? (p->nAlloc<(1<<18) ? p->nAlloc*2 : p->nAlloc) : 4000;
    if( nAlloc<n+1 ) nAlloc = n+1;
    p = sqlite3_malloc64(sizeof(RChunk)+(u64)nAlloc);
    if( p==0 ) return 0;
    p->nUsed = 0;
    p->nAlloc = nAlloc;
    p->pNext = pA->pFirst;
    pA->pFirst = p;
  }
  zOut = ((char*)&p[1]) + p->nUsed;
  if( n>0 ) memcpy(zOut, z, n);
  zOut[n] = 0;
  p->nUsed += n+1;
  return zOut;
}

/* Forget every copy but keep the newest chunk for the next ones. */
static void arenaReset(RArena *pA){
  RChunk *p = pA->pFirst;
  if( p==0 ) return;
  while( p->pNext ){
    RChunk *pNext = p->pNext;
    p->pNext = pNext->pNext;
    sqlite3_free(pNext);
  }
  p->nUsed = 0;
}

static void arenaFree(RArena *pA){
  while( pA->pFirst ){
    RChunk *p = pA->pFirst;
    pA->pFirst = p->pNext;
    sqlite3_free(p);
  }
}

/*
** Reply objects of a scan's batches, allocated from chunks of this arena
** instead of one malloc() per object: hiredis 0.14 lets a reader build its
** replies with other functions (redisReplyObjectFunctions), and pipeRun()
** installs replyFns for a pipeline that has an arena.  Such replies are
** never freeReplyObject()ed: they die all together when the arena is
** reset.  The chunks come from sqlite3_malloc64, so they are in SQLite's
** accounting, and an allocation that fails makes the reader fail with
** REDIS_ERR_OOM, which pipeRun() reports as SQLITE_NOMEM.
*/
typedef struct RReplyArena RReplyArena;
struct RReplyArena {
  RChunk *pFirst;               /* Chunks in use, newest first */
  RChunk *pSpare;               /* Chunks kept for the next batches */
};

#define RD_REPLY_CHUNK  65536   /* Bytes of a chunk */
#define RD_REPLY_SPARE  16      /* Chunks kept after a reset */

static void *replyAlloc(RReplyArena *pA, size_t n){
  RChunk *p = pA->pFirst;
  void *pOut;
  n = (n+7) & ~(size_t)7;
  if( p==0 || (size_t)(p->nAlloc-p->nUsed)<n ){
    if( n<=RD_REPLY_CHUNK && pA->pSpare ){
      p = pA->pSpare;
      pA->pSpare = p->pNext;
    }else{
      size_t nAlloc = n<=RD_REPLY_CHUNK ? RD_REPLY_CHUNK : n;
      if( nAlloc>(size_t)INT_MAX ) return 0;
      p = sqlite3_malloc64(sizeof(RChunk)+nAlloc);
      if( p==0 ) return 0;
      p->nAlloc = (int)nAlloc;
    }
    p->nUsed = 0;
    p->pNext = pA->pFirst;
    pA->pFirst = p;
  }
  pOut = ((char*)&p[1]) + p->nUsed;
  p->nUsed += (int)n;
  return pOut;
}

/* Forget every reply of the arena; keep a few chunks for the next ones. */
static void replyArenaReset(RReplyArena *pA){
  int nSpare = 0;
  RChunk *p;
  for(p=pA->pSpare; p; p=p->pNext) nSpare++;
  while( pA->pFirst ){
    p = pA->pFirst;
    pA->pFirst = p->pNext;
    if( p->nAlloc==RD_REPLY_CHUNK && nSpare<RD_REPLY_SPARE ){
      p->pNext = pA->pSpare;
      pA->pSpare = p;
      nSpare++;
    }else{
      sqlite3_free(p);
    }
  }
}

static void replyArenaFree(RReplyArena *pA){
  replyArenaReset(pA);
  while( pA->pSpare ){
    RChunk *p = pA->pSpare;
    pA->pSpare = p->pNext;
    sqlite3_free(p);
  }
}

/* A reply object in the reader's arena (task->privdata), linked into its
** parent array as hiredis's own functions do; NULL on OOM. */
static redisReply *replyNew(const redisReadTask *task, int eType,
                            size_t nExtra){
  redisReply *r;
  if( task->privdata==0 ) return 0;
  r = replyAlloc((RReplyArena*)task->privdata, sizeof(redisReply)+nExtra);
  if( r==0 ) return 0;
  memset(r, 0, sizeof(*r));
  r->type = eType;
  if( task->parent ){
    redisReply *pParent = (redisReply*)task->parent->obj;
    pParent->element[task->idx] = r;
  }
  return r;
}

static void *replyString(const redisReadTask *task, char *z, size_t n){
  redisReply *r = replyNew(task, task->type, n+1);
  if( r==0 ) return 0;
  r->str = (char*)&r[1];
  memcpy(r->str, z, n);
  r->str[n] = 0;
  r->len = n;
  return r;
}

static void *replyArray(const redisReadTask *task, int nElem){
  size_t nByte = nElem>0 ? sizeof(redisReply*)*(size_t)nElem : 0;
  redisReply *r = replyNew(task, REDIS_REPLY_ARRAY, nByte);
  if( r==0 ) return 0;
  if( nElem>0 ){
    r->element = (redisReply**)&r[1];
    memset(r->element, 0, nByte);
    r->elements = (size_t)nElem;
  }
  return r;
}

static void *replyInteger(const redisReadTask *task, long long v){
  redisReply *r = replyNew(task, REDIS_REPLY_INTEGER, 0);
  if( r ) r->integer = v;
  return r;
}

static void *replyNil(const redisReadTask *task){
  return replyNew(task, REDIS_REPLY_NIL, 0);
}

static void replyFreeNothing(void *pReply){
  (void)pReply;                 /* The arena owns it */
}

static redisReplyObjectFunctions replyFns = {
  replyString, replyArray, replyInteger, replyNil, replyFreeNothing
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

static u64 keyHash(const char *z, int n){
  u64 h = 14695981039346656037ULL;
  int i;
  for(i=0; i<n; i++){
    h ^= (u8)z[i];
    h *= 1099511628211ULL;
  }
  h ^= h>>29;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h>>32;
  return h;
}

/* The key at log position iPos (a slot's low 40 bits minus 1). */
static const char *keyLogGet(const RKeySet *p, u64 iPos, int *pn){
  const unsigned char *z = (const unsigned char*)p->aBlock[iPos>>KEYLOG_SHIFT]
                         + (iPos & (KEYLOG_BLOCK-1));
  unsigned int n = 0;
  int s = 0;
  do{ n |= (unsigned int)(*z & 0x7f) << s; s += 7; }while( *z++ & 0x80 );
  *pn = (int)n;
  return (const char*)z;
}

/* Log z[0..n); its position, or -1 on OOM (or a log past 2^40 bytes). */
static i64 keyLogAdd(RKeySet *p, const char *z, int n){
  int nRec = n + 5;             /* Varint of up to 5 bytes */
  unsigned char *a;
  unsigned int v = (unsigned int)n;
  i64 iPos;
  if( p->nBlock==0 || p->nLast+nRec>p->nLastAlloc ){
    /* Blocks double from 4 KB, so that a small scan allocates little. */
    int nAlloc = p->nBlock==0 ? 4096 :
                 p->nLastAlloc<KEYLOG_BLOCK ? p->nLastAlloc*2 : KEYLOG_BLOCK;
    char *pNew;
    if( p->nBlock>=(1<<(40-KEYLOG_SHIFT))-1 ) return -1;
    if( p->nBlock>=p->nBlockAlloc ){
      int nNew = p->nBlockAlloc ? p->nBlockAlloc*2 : 16;
      char **aNew;
      aNew = sqlite3_realloc64(p->aBlock, sizeof(char*)*nNew);
      if( aNew==0 ) return -1;
      p->aBlock = aNew;
      p->nBlockAlloc = nNew;
    }
    if( nAlloc<nRec ) nAlloc = nRec;
    pNew = sqlite3_malloc64((u64)nAlloc);
    if( pNew==0 ) return -1;
    p->aBlock[p->nBlock++] = pNew;
    p->nLast = 0;
    p->nLastAlloc = nAlloc>KEYLOG_BLOCK ? KEYLOG_BLOCK : nAlloc;
  }
  iPos = ((i64)(p->nBlock-1)<<KEYLOG_SHIFT) + p->nLast;
  a = (unsigned char*)p->aBlock[p->nBlock-1] + p->nLast;
  do{
    *a++ = (unsigned char)((v & 0x7f) | (v>0x7f ? 0x80 : 0));
    v >>= 7;
  }while( v );
  if( n>0 ) memcpy(a, z, n);
  a += n;
  p->nLast = (int)(a - (unsigned char*)p->aBlock[p->nBlock-1]);
  if( p->nLast>p->nLastAlloc ) p->nLast = p->nLastAlloc;   /* Own block */
  return iPos;
}

/* Add z[0..n): 1 if it was new, 0 if already there, -1 on OOM. */
static int keySetAdd(RKeySet *p, const char *z, int n){
  u64 h = keyHash(z, n), tag = h>>40;
  u64 mask = 0xffffffffffULL;
  i64 iPos;
  int i;
  if( p->nUsed*4>=p->nSlot*3 ){
    int nNew = p->nSlot ? p->nSlot*2 : 1024;
    u64 *a = sqlite3_malloc64(sizeof(u64)*nNew);
    if( a==0 ) return -1;
    memset(a, 0, sizeof(u64)*nNew);
    for(i=0; i<p->nSlot; i++){
      if( p->aSlot[i] ){
        int nOld;
        const char *zOld = keyLogGet(p, (p->aSlot[i] & mask)-1, &nOld);
        int j = (int)(keyHash(zOld, nOld) & (u64)(nNew-1));
        while( a[j] ) j = (j+1) & (nNew-1);
        a[j] = p->aSlot[i];
      }
    }
    sqlite3_free(p->aSlot);
    p->aSlot = a;
    p->nSlot = nNew;
  }
  i = (int)(h & (u64)(p->nSlot-1));
  while( p->aSlot[i] ){
    if( (p->aSlot[i]>>40)==tag ){
      int nOld;
      const char *zOld = keyLogGet(p, (p->aSlot[i] & mask)-1, &nOld);
      if( nOld==n && (n==0 || memcmp(zOld, z, n)==0) ) return 0;
    }
    i = (i+1) & (p->nSlot-1);
  }
  iPos = keyLogAdd(p, z, n);
  if( iPos<0 ) return -1;
  p->aSlot[i] = (tag<<40) | (u64)(iPos+1);
  p->nUsed++;
  return 1;
}

/* Is z[0..n) in the set? */
static int keySetHas(const RKeySet *p, const char *z, int n){
  u64 h = keyHash(z, n), tag = h>>40;
  u64 mask = 0xffffffffffULL;
  int i;
  if( p->nSlot==0 ) return 0;
  i = (int)(h & (u64)(p->nSlot-1));
  while( p->aSlot[i] ){
    if( (p->aSlot[i]>>40)==tag ){
      int nOld;
      const char *zOld = keyLogGet(p, (p->aSlot[i] & mask)-1, &nOld);
      if( nOld==n && (n==0 || memcmp(zOld, z, n)==0) ) return 1;
    }
    i = (i+1) & (p->nSlot-1);
  }
  return 0;
}

static void keySetClear(RKeySet *p){
  int i;
  for(i=0; i<p->nBlock; i++) sqlite3_free(p->aBlock[i]);
  sqlite3_free(p->aBlock);
  sqlite3_free(p->aSlot);
  memset(p, 0, sizeof(*p));
}

/* Non-zero if z[0..n) is valid UTF-8 without NUL bytes: such a key or
** value is returned as TEXT, anything else as a BLOB. */
static int isTextBytes(const char *zIn, int n){
  const unsigned char *z = (const unsigned char*)zIn;
  int i = 0;
  while( i<n ){
    unsigned c;
    while( i<n && (unsigned char)(z[i]-1)<0x7f ) i++;   /* ASCII, not NUL */
    if( i>=n ) break;
    c = z[i];
    int nCont;
    unsigned lo = 0x80, hi = 0xbf;
    if( c==0 ) return 0;
    if( c<0x80 ){ i++; continue; }
    if( c>=0xc2 && c<=0xdf ){ nCont = 1; }
    else if( c==0xe0 ){ nCont = 2; lo = 0xa0; }
    else if( c>=0xe1 && c<=0xec ){ nCont = 2; }
    else if( c==0xed ){ nCont = 2; hi = 0x9f; }
    else if( c>=0xee && c<=0xef ){ nCont = 2; }
    else if( c==0xf0 ){ nCont = 3; lo = 0x90; }
    else if( c>=0xf1 && c<=0xf3 ){ nCont = 3; }
    else if( c==0xf4 ){ nCont = 3; hi = 0x8f; }
    else return 0;
    if( i+nCont>=n ) return 0;
    if( z[i+1]<lo || z[i+1]>hi ) return 0;
    if( nCont>=2 && (z[i+2]&0xc0)!=0x80 ) return 0;
    if( nCont>=3 && (z[i+3]&0xc0)!=0x80 ) return 0;
    i += nCont+1;
  }
  return 1;
}

/* Return bytes to SQLite as TEXT or BLOB (isTextBytes()). */
static void resultBytes(sqlite3_context *ctx, const char *z, int n){
  if( z==0 ) return;
  if( isTextBytes(z, n) ){
    sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
  }else{
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
  }
}

/* Append bytes the way fed_explain and error messages show a Redis
** argument: bare when it is plain printable ASCII, else "quoted" with
** \xHH escapes (valid UTF-8 stays readable); long ones are cut. */
static void renderArg(sqlite3_str *s, const char *zIn, int n){
  const unsigned char *z = (const unsigned char*)zIn;
  int i, bQuote = n==0, nShow = n;
  for(i=0; i<n && !bQuote; i++){
    if( z[i]<=0x20 || z[i]>=0x7f || z[i]=='"' || z[i]=='\\' || z[i]=='\'' ){
      bQuote = 1;
    }
  }
  if( nShow>RD_EXPLAIN_ARG ) nShow = RD_EXPLAIN_ARG;
  if( !bQuote ){
    sqlite3_str_append(s, zIn, nShow);
  }else{
    sqlite3_str_appendchar(s, 1, '"');
    for(i=0; i<nShow; i++){
      unsigned c = z[i];
      if( c=='"' || c=='\\' ){
        sqlite3_str_appendf(s, "\\%c", c);
      }else if( c=='\n' ){
        sqlite3_str_appendall(s, "\\n");
      }else if( c=='\r' ){
        sqlite3_str_appendall(s, "\\r");
      }else if( c=='\t' ){
        sqlite3_str_appendall(s, "\\t");
      }else if( c>=0x20 && c<0x7f ){
        sqlite3_str_appendchar(s, 1, (char)c);
      }else if( c>=0xc2 ){
        /* A whole valid UTF-8 sequence stays as it is. */
        int nSeq = c<0xe0 ? 2 : c<0xf0 ? 3 : 4;
        if( i+nSeq<=nShow && isTextBytes(zIn+i, nSeq) ){
          sqlite3_str_append(s, zIn+i, nSeq);
          i += nSeq-1;
        }else{
          sqlite3_str_appendf(s, "\\x%02x", c);
        }
      }else{
        sqlite3_str_appendf(s, "\\x%02x", c);
      }
    }
    sqlite3_str_appendchar(s, 1, '"');
  }
  if( nShow<n ) sqlite3_str_appendf(s, "...(%d bytes)", n);
}

/* A key (or field, member) for an error message; sqlite3_malloc'd. */
static char *renderKey(const char *z, int n){
  sqlite3_str *s = sqlite3_str_new(0);
  renderArg(s, z, n);
  return sqlite3_str_finish(s);
}

/* The bytes a value is written as: text as is, numbers as SQLite's text
** affinity would store them, blobs as they are.  *pz points into pVal. */
static void valueBytes(sqlite3_value *pVal, const char **pz, int *pn){
  if( sqlite3_value_type(pVal)==SQLITE_BLOB ){
    *pz = (const char*)sqlite3_value_blob(pVal);
  }else{
    *pz = (const char*)sqlite3_value_text(pVal);
  }
  *pn = sqlite3_value_bytes(pVal);
  if( *pz==0 ) *pz = "";
}

static const char *typeName(int eType){
  switch( eType ){
    case RT_STRING: return "string";
    case RT_HASH:   return "hash";
    case RT_LIST:   return "list";
    case RT_SET:    return "set";
    case RT_ZSET:   return "zset";
    case RT_NONE:   return "none";
  }
  return "other";
}

static int typeFromName(const char *z, int n){
  if( n==6 && memcmp(z, "string", 6)==0 ) return RT_STRING;
  if( n==4 && memcmp(z, "hash", 4)==0 ) return RT_HASH;
  if( n==4 && memcmp(z, "list", 4)==0 ) return RT_LIST;
  if( n==3 && memcmp(z, "set", 3)==0 ) return RT_SET;
  if( n==4 && memcmp(z, "zset", 4)==0 ) return RT_ZSET;
  if( n==4 && memcmp(z, "none", 4)==0 ) return RT_NONE;
  return RT_OTHER;
}

/* The Redis type of the keys of a table mode (RT_NONE for "any"). */
static int modeType(int eMode){
  if( eMode==RM_FIELDS ) return RT_HASH;
  if( eMode==RM_ANY ) return RT_NONE;
  return eMode;
}

/* Render a double so that Redis parses the same double back. */
static void doubleArg(double r, char *zBuf, int nBuf){
  if( isinf(r) ){
    sqlite3_snprintf(nBuf, zBuf, "%s", r<0 ? "-inf" : "+inf");
  }else{
    fedDoubleText(r, zBuf, nBuf);
  }
}

/* SQLite's exact comparison of an integer with a double: <0, 0, >0 as
** i is less than, equal to or greater than r. */
static int intDoubleCmp(i64 i, double r){
  i64 y;
  double s;
  if( r<-9223372036854775808.0 ) return +1;
  if( r>=9223372036854775808.0 ) return -1;
  y = (i64)r;
  if( i<y ) return -1;
  if( i>y ) return +1;
  s = (double)i;
  if( s<r ) return -1;
  if( s>r ) return +1;
  return 0;
}

/**************************************************************************
** Patterns.  A table's key space is a Redis glob (MATCH syntax), matched
** here exactly as Redis's stringmatchlen() does.  SQLite GLOB and LIKE
** patterns on the key are translated into a MATCH pattern that selects a
** superset of their keys; each key is then checked locally with SQLite's
** own GLOB (sqlite3_strglob), or by SQLite itself for LIKE.
*/

/* Redis's glob: * ? [...] (with ^ and ranges) and \ escapes, on bytes. */
static int redisGlob(const char *p, int pn, const char *s, int sn, int nest){
  if( nest>1000 ) return 0;
  while( pn>0 && sn>0 ){
    switch( p[0] ){
      case '*':
        while( pn>1 && p[1]=='*' ){ p++; pn--; }
        if( pn==1 ) return 1;
        while( sn>0 ){
          if( redisGlob(p+1, pn-1, s, sn, nest+1) ) return 1;
          s++; sn--;
        }
        return 0;
      case '?':
        s++; sn--;
        break;
      case '[': {
        int bNot, bMatch = 0;
        p++; pn--;
        bNot = pn>0 && p[0]=='^';
        if( bNot ){ p++; pn--; }
        while( 1 ){
          if( pn==0 ){
            p--; pn++;
            break;
          }else if( p[0]=='\\' && pn>=2 ){
            p++; pn--;
            if( p[0]==s[0] ) bMatch = 1;
          }else if( p[0]==']' ){
            break;
          }else if( pn>=3 && p[1]=='-' ){
            /* Signed chars, as Redis compares them. */
            int iStart = (signed char)p[0];
            int iEnd = (signed char)p[2];
            int c = (signed char)s[0];
            if( iStart>iEnd ){ int t = iStart; iStart = iEnd; iEnd = t; }
            p += 2; pn -= 2;
            if( c>=iStart && c<=iEnd ) bMatch = 1;
          }else if( p[0]==s[0] ){
            bMatch = 1;
          }
          p++; pn--;
        }
        if( bNot ) bMatch = !bMatch;
        if( !bMatch ) return 0;
        s++; sn--;
        break;
      }
      case '\\':
        if( pn>=2 ){ p++; pn--; }
        /* fall through */
      default:
        if( p[0]!=s[0] ) return 0;
        s++; sn--;
        break;
    }
    p++; pn--;
    if( sn==0 ){
      while( pn>0 && p[0]=='*' ){ p++; pn--; }
      break;
    }
  }
  return pn==0 && sn==0;
}

/* A key in a table's key space (pattern zPat): Redis's glob, except that
** a pattern of only '*' also takes the empty key (as SCAN does). */
static int keyInSpace(const char *zPat, int nPat, const char *z, int n){
  if( n==0 ){
    int i;
    for(i=0; i<nPat && zPat[i]=='*'; i++){}
    return i==nPat;
  }
  return redisGlob(zPat, nPat, z, n, 0);
}

/* The literal prefix of a Redis pattern (escapes removed) into zOut;
** returns its length. */
static int matchPrefix(const char *z, char *zOut, int nOut){
  int n = 0;
  while( *z && *z!='*' && *z!='?' && *z!='[' && n<nOut ){
    if( *z=='\\' && z[1] ) z++;
    zOut[n++] = *z++;
  }
  return n;
}

/* True if no key can match both patterns: their literal prefixes differ
** before either ends. */
static int matchDisjoint(const char *zA, const char *zB){
  char aA[64], aB[64];
  int nA = matchPrefix(zA, aA, sizeof(aA));
  int nB = matchPrefix(zB, aB, sizeof(aB));
  int n = nA<nB ? nA : nB;
  return memcmp(aA, aB, n)!=0;
}

/* Append c escaped for a Redis pattern. */
static void matchLiteral(sqlite3_str *s, char c){
  if( c=='*' || c=='?' || c=='[' || c==']' || c=='\\' ){
    sqlite3_str_appendchar(s, 1, '\\');
  }
  sqlite3_str_appendchar(s, 1, c);
}

/* The Redis pattern of a literal prefix: prefix='a*b' -> a\*b* */
static char *prefixPattern(const char *z){
  sqlite3_str *s = sqlite3_str_new(0);
  for(; *z; z++) matchLiteral(s, *z);
  sqlite3_str_appendchar(s, 1, '*');
  return sqlite3_str_finish(s);
}

/* Length of the UTF-8 character at z (1 for a stray byte). */
static int utf8Len(const unsigned char *z){
  int n = 1;
  if( z[0]>=0xc0 ){
    while( (z[n]&0xc0)==0x80 ) n++;
  }
  return n;
}

/*
** Translate an SQLite GLOB pattern into a Redis MATCH pattern that
** matches at least every key the GLOB matches: '?' and any non-ASCII or
** negated part become "?*" (one character may be several bytes), classes
** of ASCII characters are spelled out, and a '*' is added at the end
** (SQLite stops comparing at a NUL byte of a blob key; Redis does not).
** *pbNone is set when the pattern can match nothing (an unterminated or
** empty [...]).  Returns an sqlite3_malloc'd pattern or NULL (OOM).
*/
static char *globToMatch(const char *zGlob, int *pbNone){
  const unsigned char *z = (const unsigned char*)zGlob;
  sqlite3_str *s = sqlite3_str_new(0);
  *pbNone = 0;
  while( *z ){
    unsigned c = *z;
    if( c=='*' ){
      sqlite3_str_appendchar(s, 1, '*');
      z++;
    }else if( c=='?' ){
      sqlite3_str_appendall(s, "?*");
      z++;
    }else if( c=='[' ){
      /* SQLite: [^...] inverts, a ']' first is literal, a-b is a range. */
      const unsigned char *q = z+1;
      int bInvert = 0, bAscii = 1, nMember = 0;
      unsigned char aSeen[128];
      unsigned prior = 0;
      memset(aSeen, 0, sizeof(aSeen));
      if( *q=='^' ){ bInvert = 1; q++; }
      if( *q==']' ){ aSeen[']'] = 1; nMember++; q++; }
      while( *q && *q!=']' ){
        unsigned c2 = *q;
        int n2 = utf8Len(q);
        if( c2=='-' && q[1]!=']' && q[1]!=0 && prior>0 ){
          unsigned cEnd = q[1];
          int nEnd = utf8Len(q+1);
          if( cEnd>=0x80 || prior>=0x80 ){
            bAscii = 0;
          }else{
            unsigned k;
            for(k=prior; k<=cEnd; k++){ aSeen[k] = 1; nMember++; }
          }
          q += 1+nEnd;
          prior = 0;
          continue;
        }
        if( c2>=0x80 ) bAscii = 0; else { aSeen[c2] = 1; nMember++; }
        prior = c2>=0x80 ? 0x80 : c2;
        q += n2;
      }
      if( *q==0 ){
        /* Unterminated: SQLite's GLOB matches nothing at all. */
        *pbNone = 1;
        break;
      }
      if( bInvert || !bAscii ){
        sqlite3_str_appendall(s, "?*");
      }else if( nMember==0 ){
        *pbNone = 1;
        break;
      }else{
        unsigned k;
        sqlite3_str_appendchar(s, 1, '[');
        for(k=1; k<128; k++){
          if( aSeen[k] ){
            if( k==']' || k=='\\' || k=='^' || k=='-' || k=='[' ){
              sqlite3_str_appendchar(s, 1, '\\');
            }
            sqlite3_str_appendchar(s, 1, (char)k);
          }
        }
        sqlite3_str_appendchar(s, 1, ']');
      }
      z = q+1;
    }else if( c>=0x80 ){
      sqlite3_str_appendall(s, "?*");
      z += utf8Len(z);
    }else{
      matchLiteral(s, (char)c);
      z++;
    }
  }
  if( sqlite3_str_length(s)==0
   || sqlite3_str_value(s)[sqlite3_str_length(s)-1]!='*' ){
    sqlite3_str_appendchar(s, 1, '*');
  }
  return sqlite3_str_finish(s);
}

/* Translate an SQLite LIKE pattern (ASCII case-insensitive, % and _) into
** a Redis MATCH pattern selecting a superset of its keys. */
static char *likeToMatch(const char *zLike){
  const unsigned char *z = (const unsigned char*)zLike;
  sqlite3_str *s = sqlite3_str_new(0);
  while( *z ){
    unsigned c = *z;
    if( c=='%' ){
      sqlite3_str_appendchar(s, 1, '*');
      z++;
    }else if( c=='_' ){
      sqlite3_str_appendall(s, "?*");
      z++;
    }else if( c>=0x80 ){
      sqlite3_str_appendall(s, "?*");
      z += utf8Len(z);
    }else if( (c>='a' && c<='z') || (c>='A' && c<='Z') ){
      sqlite3_str_appendf(s, "[%c%c]", (char)(c|0x20), (char)(c&~0x20));
      z++;
    }else{
      matchLiteral(s, (char)c);
      z++;
    }
  }
  if( sqlite3_str_length(s)==0
   || sqlite3_str_value(s)[sqlite3_str_length(s)-1]!='*' ){
    sqlite3_str_appendchar(s, 1, '*');
  }
  return sqlite3_str_finish(s);
}

/* How selective a MATCH pattern is: the characters it fixes before its
** first wildcard (a [...] counts as one). */
static int matchScore(const char *z, int n){
  int i = 0, nScore = 0;
  while( i<n ){
    char c = z[i];
    if( c=='*' || c=='?' ) break;
    if( c=='\\' ){ i += 2; nScore++; continue; }
    if( c=='[' ){
      i++;
      while( i<n && z[i]!=']' ){ if( z[i]=='\\' ) i++; i++; }
      i++;
      nScore++;
      continue;
    }
    i++;
    nScore++;
  }
  return nScore;
}

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
  u8 eOp;                       /* ROP_* */
  u8 eCond;                     /* RCOND_* */
  u8 bIgnore;                   /* INSERT OR IGNORE: a failed condition
                                ** drops the row's commands */
  u8 eTtl;                      /* RTTL_*, for ROP_SET */
  u8 bSkip;                     /* Dropped (ignored conflict) */
  int iDb;
  int iRow;                     /* xUpdate call that made it */
  i64 iNum;                     /* Seconds (EX, EXPIRE) or list index */
  double rScore;                /* ZADD */
  RBuf key;
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
  RHash map;                    /* hash: field -> RBuf*; set: members;
                                ** zset: member -> score (elem.r) */
  RBuf *aList;                  /* list */
  int nList, nListAlloc;
};

struct RedisTxn {
  int bActive;                  /* xBegin seen, not yet committed */
  int bSnapshot;                /* Inside BEGIN...COMMIT: WATCH reads */
  int bWatched;                 /* WATCH sent in this transaction */
  RedisOp *aOp;                 /* The queue */
  int nOp, nOpAlloc;
  int *aMark;                   /* Queue length at each savepoint level */
  int nMark, nMarkAlloc;
  int iRowSeq;                  /* Row groups (RedisOp.iRow) */
  RHash shadow;                 /* (db, key) -> RedisShadow* */
  RHash dirty;                  /* (db, key) -> ops touching it (elem.i) */
  RHash seenType;               /* (db, key) -> type a watched read saw */
  RHash lrem;                   /* (db, key): lists with tombstones set by
                                ** the current statement */
  char *zDoom;                  /* Why COMMIT must fail, or NULL */
};

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

static FedContext *rdCtx(RedisConn *p){
  return p->base.pServer->pCtx;
}

/**************************************************************************
** Commands and pipelines.  A pipeline is built (arguments referenced, or
** copied into its arena), then sent whole, and every reply read before
** anything else uses the connection: a connection is never left with
** replies pending between two calls.  Each command is recorded in
** fed_explain with its exact text.
*/
struct RedisPipe {
  int rc;                       /* Sticky error (SQLITE_NOMEM) */
  int nCmd, nCmdAlloc;
  int *aFirst;                  /* Index of each command's first argument */
  int *aDb;                     /* Database a command runs in (-1: any) */
  int nArg, nArgAlloc;
  const char **azArg;
  size_t *anArg;
  RArena arena;                 /* Arguments that needed a copy */
  redisReply **apReply;         /* One per command after pipeRun() */
  int nReply, nReplyAlloc;      /* Replies in apReply, its size */
  RReplyArena *pReplies;        /* If not NULL, the replies are built here
                                ** (owned by the caller), else malloc'd and
                                ** owned by P */
  char *zOut;                   /* The pipeline in the protocol, to send */
  i64 nOut, nOutAlloc;
  int bSent;                    /* pipeRun() handed every byte to the
                                ** kernel: the server may run all of it */
  int iBlame;                   /* 1 + the command a failure to read the
                                ** replies names (0: the first unanswered):
                                ** a transaction names its EXEC */
};

static void pipeInit(RedisPipe *P){
  memset(P, 0, sizeof(*P));
}

static void pipeFreeReplies(RedisPipe *P){
  int i;
  for(i=0; i<P->nReply; i++){
    if( P->apReply[i] && P->pReplies==0 ) freeReplyObject(P->apReply[i]);
    P->apReply[i] = 0;
  }
  P->nReply = 0;
}

/* Forget the commands and replies of P but keep its arrays, for the next
** batch of a scan (regrowing them each batch costs more than the reads). */
static void pipeClear(RedisPipe *P){
  pipeFreeReplies(P);
  arenaReset(&P->arena);
  P->rc = 0;
  P->nCmd = P->nArg = 0;
}

static void pipeFree(RedisPipe *P){
  pipeFreeReplies(P);
  sqlite3_free(P->apReply);
  sqlite3_free(P->zOut);
  sqlite3_free(P->aFirst);
  sqlite3_free(P->aDb);
  sqlite3_free(P->azArg);
  sqlite3_free(P->anArg);
  arenaFree(&P->arena);
  memset(P, 0, sizeof(*P));
}

/* Add an argument (not copied: it must live until pipeRun()). */
static void pipeArg(RedisPipe *P, const char *z, int n){
  if( P->rc ) return;
  if( P->nArg>=P->nArgAlloc ){
    int nNew = P->nArgAlloc ? P->nArgAlloc*2 : 64;
    const char **az = sqlite3_realloc64((void*)P->azArg, sizeof(char*)*nNew);
    size_t *an;
    if( az==0 ){ P->rc = SQLITE_NOMEM; return; }
    P->azArg = az;
    an = sqlite3_realloc64(P->anArg, sizeof(size_t)*nNew);
    if( an==0 ){ P->rc = SQLITE_NOMEM; return; }
    P->anArg = an;
    P->nArgAlloc = nNew;
  }
  P->azArg[P->nArg] = z;
  P->anArg[P->nArg] = (size_t)(n<0 ? (int)strlen(z) : n);
  P->nArg++;
}

static void pipeArgCopy(RedisPipe *P, const char *z, int n){
  char *zCopy;
  if( P->rc ) return;
  if( n<0 ) n = (int)strlen(z);
  zCopy = arenaDup(&P->arena, z, n);
  if( zCopy==0 ){ P->rc = SQLITE_NOMEM; return; }
  pipeArg(P, zCopy, n);
}

static void pipeArgInt(RedisPipe *P, i64 v){
  char zBuf[32];
  sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", v);
  pipeArgCopy(P, zBuf, -1);
}

/* Start a command named zName (a static string) in database iDb. */
static void pipeCmd(RedisPipe *P, int iDb, const char *zName){
  if( P->rc ) return;
  if( P->nCmd>=P->nCmdAlloc ){
    int nNew = P->nCmdAlloc ? P->nCmdAlloc*2 : 16;
    int *a = sqlite3_realloc64(P->aFirst, sizeof(int)*nNew);
    if( a==0 ){ P->rc = SQLITE_NOMEM; return; }
    P->aFirst = a;
    a = sqlite3_realloc64(P->aDb, sizeof(int)*nNew);
    if( a==0 ){ P->rc = SQLITE_NOMEM; return; }
    P->aDb = a;
    P->nCmdAlloc = nNew;
  }
  P->aFirst[P->nCmd] = P->nArg;
  P->aDb[P->nCmd] = iDb;
  P->nCmd++;
  pipeArg(P, zName, -1);
}

static int pipeArgc(const RedisPipe *P, int iCmd){
  int iEnd = iCmd+1<P->nCmd ? P->aFirst[iCmd+1] : P->nArg;
  return iEnd - P->aFirst[iCmd];
}

/* True if argument i of a command is a password, in any case of letters:
** AUTH [user] pw, HELLO ... AUTH user pw, MIGRATE ... AUTH pw / AUTH2 user
** pw, CONFIG SET requirepass|masterauth pw, ACL SETUSER u >pw #hash.
** fed_explain and error messages show "********" instead. */
static int argIsSecret(int argc, const char **azArg, const size_t *anArg,
                       int i){
#define ARG_IS(j, z) (anArg[j]==strlen(z) \
                      && sqlite3_strnicmp(azArg[j], z, (int)anArg[j])==0)
  if( i<1 || i>=argc ) return 0;
  if( ARG_IS(0, "AUTH") ) return i==argc-1 || argc>3;
  if( ARG_IS(0, "HELLO") ) return i>=3 && ARG_IS(i-2, "AUTH");
  if( ARG_IS(0, "MIGRATE") ){
    return ARG_IS(i-1, "AUTH") || (i>=2 && ARG_IS(i-2, "AUTH2"));
  }
  if( ARG_IS(0, "CONFIG") && argc>=4 && ARG_IS(1, "SET") ){
    return i>=3 && (i%2)==1
        && (ARG_IS(i-1, "requirepass") || ARG_IS(i-1, "masterauth"));
  }
  if( ARG_IS(0, "ACL") && argc>=3 && ARG_IS(1, "SETUSER") && i>=3 ){
    char c = anArg[i]>0 ? azArg[i][0] : 0;
    return c=='>' || c=='<' || c=='#' || c=='!';
  }
  return 0;
#undef ARG_IS
}

/* The text of a command, as fed_explain and errors show it, passwords
** masked (sqlite3_malloc'd). */
static char *cmdText(int argc, const char **azArg, const size_t *anArg){
  sqlite3_str *s;
  i64 nByte = 0;
  int i;
  for(i=1; i<argc; i++){
    if( argIsSecret(argc, azArg, anArg, i) ) break;
  }
  if( i<argc ){
    s = sqlite3_str_new(0);
    for(i=0; i<argc; i++){
      if( i ) sqlite3_str_appendchar(s, 1, ' ');
      if( i==0 ) sqlite3_str_append(s, azArg[i], (int)anArg[i]);
      else if( argIsSecret(argc, azArg, anArg, i) ){
        sqlite3_str_appendall(s, "********");
      }else{
        renderArg(s, azArg[i], (int)anArg[i]);
      }
    }
    return sqlite3_str_finish(s);
  }
  /* Most commands show every argument bare (renderArg()): one copy. */
  for(i=0; i<argc; i++){
    const unsigned char *z = (const unsigned char*)azArg[i];
    size_t j, n = anArg[i];
    if( i>0 ){
      if( n==0 || n>RD_EXPLAIN_ARG ) break;
      for(j=0; j<n; j++){
        if( z[j]<=0x20 || z[j]>=0x7f || z[j]=='"' || z[j]=='\\' || z[j]=='\'' ){
          break;
        }
      }
      if( j<n ) break;
    }
    nByte += (i64)n + 1;
  }
  if( i==argc && argc>0 ){
    char *zOut = sqlite3_malloc64((u64)nByte);
    char *z = zOut;
    if( zOut==0 ) return 0;
    for(i=0; i<argc; i++){
      if( i ) *z++ = ' ';
      memcpy(z, azArg[i], anArg[i]);
      z += anArg[i];
    }
    *z = 0;
    return zOut;
  }
  s = sqlite3_str_new(0);
  for(i=0; i<argc; i++){
    if( i ) sqlite3_str_appendchar(s, 1, ' ');
    if( i==0 ) sqlite3_str_append(s, azArg[i], (int)anArg[i]);
    else renderArg(s, azArg[i], (int)anArg[i]);
  }
  return sqlite3_str_finish(s);
}

static char *pipeText(const RedisPipe *P, int iCmd){
  int i0 = P->aFirst[iCmd];
  return cmdText(pipeArgc(P, iCmd), &P->azArg[i0], &P->anArg[i0]);
}

/* Rows a reply counts for in fed_explain. */
static i64 replyRows(const redisReply *r){
  if( r==0 ) return 0;
  if( r->type==REDIS_REPLY_ARRAY && r->elements==2
   && r->element[1]->type==REDIS_REPLY_ARRAY ){
    return (i64)r->element[1]->elements;       /* SCAN: its keys */
  }
  if( r->type==REDIS_REPLY_ARRAY ) return (i64)r->elements;
  if( r->type==REDIS_REPLY_NIL ) return 0;
  return 1;
}

/* "redis: <what> (remote command: <text>)". */
static void rdSetError(char **pzErr, const char *zWhat, const char *zCmd){
  if( zCmd ){
    fedSetError(pzErr, "%s: %s (remote command: %s)", RD_STORE, zWhat, zCmd);
  }else{
    fedSetError(pzErr, "%s: %s", RD_STORE, zWhat);
  }
}

/* The error of a broken connection, for command zCmd (may be NULL). */
static void connIoError(RedisConn *p, const char *zCmd, char **pzErr){
  char *z;
  const char *zServer = p->base.pServer->zName;
  if( p->eWait==FED_WAIT_INTERRUPT ){
    z = sqlite3_mprintf("interrupted; the connection to server \"%s\" was"
                        " closed", zServer);
  }else if( p->eWait==FED_WAIT_TIMEOUT || (p->c && p->c->err==REDIS_ERR_IO
   && (errno==EAGAIN || errno==EWOULDBLOCK || errno==ETIMEDOUT
       || strstr(p->c->errstr, "temporarily unavailable"))) ){
    z = sqlite3_mprintf("server \"%s\" did not answer within %d s"
                        " (command_timeout)", zServer, p->nCmdTimeout);
  }else{
    z = sqlite3_mprintf("connection to server \"%s\" lost: %s", zServer,
        (p->c && p->c->err) ? p->c->errstr : "closed");
  }
  rdSetError(pzErr, z ? z : "connection lost", zCmd);
  sqlite3_free(z);
  p->eWait = 0;
  p->bDead = 1;
}

/*
** Wait until the connection's socket can be read (or written, bWrite):
** at most command_timeout, and not past an interrupt of the statement
** (sqlite3_interrupt).  hiredis's own blocking reads would only give up
** after command_timeout (SO_RCVTIMEO) and never on an interrupt.  When
** the wait ends early the socket is shut down (the connection is dead:
** replies may still be on their way) and REDIS_ERR returned, p->eWait
** saying why.
*/
static int connWait(RedisConn *p, int bWrite){
  i64 iDeadline = p->nCmdTimeout>0 ? fedNowMs() + p->nCmdTimeout*(i64)1000
                                   : 0;
  int e = fedWaitFd(rdCtx(p)->db, p->c->fd, bWrite, iDeadline);
  if( e==FED_WAIT_READY ) return REDIS_OK;
  p->eWait = e;
  shutdown(p->c->fd, SHUT_RDWR);
  p->bDead = 1;
  return REDIS_ERR;
}

/* redisGetReply(), bounded by connWait(). */
static int connGetReply(RedisConn *p, void **ppReply){
  *ppReply = 0;
  if( redisGetReplyFromReader(p->c, ppReply)!=REDIS_OK ) return REDIS_ERR;
  while( *ppReply==0 ){
    if( connWait(p, 0)!=REDIS_OK ) return REDIS_ERR;
    if( redisBufferRead(p->c)!=REDIS_OK ) return REDIS_ERR;
    if( redisGetReplyFromReader(p->c, ppReply)!=REDIS_OK ) return REDIS_ERR;
  }
  return REDIS_OK;
}

/* Append n bytes to the pipeline's protocol text; 1 on OOM. */
static int outReserve(RedisPipe *P, i64 n){
  if( P->nOut+n>P->nOutAlloc ){
    i64 nNew = P->nOutAlloc ? P->nOutAlloc*2 : 4096;
    char *z;
    while( nNew<P->nOut+n ) nNew *= 2;
    z = sqlite3_realloc64(P->zOut, (u64)nNew);
    if( z==0 ) return 1;
    P->zOut = z;
    P->nOutAlloc = nNew;
  }
  return 0;
}

/* "<c><v>\r\n" at the end of the protocol text (room reserved). */
static void outHeader(RedisPipe *P, char c, u64 v){
  char zBuf[24];
  int i = (int)sizeof(zBuf);
  char *z = &P->zOut[P->nOut];
  do{ zBuf[--i] = (char)('0' + v%10); v /= 10; }while( v );
  *z++ = c;
  memcpy(z, &zBuf[i], sizeof(zBuf)-i);
  z += sizeof(zBuf)-i;
  *z++ = '\r';
  *z++ = '\n';
  P->nOut = z - P->zOut;
}

/* Append one command to the pipeline's protocol text (the RESP that
** redisAppendCommandArgv would write: formatting it here costs a fifth of
** hiredis's sdscatfmt), recording it in fed_explain if bRecord; returns
** its explain sequence id (0 if not recorded). */
static i64 connAppend(RedisConn *p, RedisPipe *P, int argc,
                      const char **azArg, const size_t *anArg, int bRecord,
                      int *pRc){
  char *zText;
  i64 iSeq = 0, nByte = 32;
  int i;
  if( *pRc ) return 0;
  if( bRecord ){
    zText = cmdText(argc, azArg, anArg);   /* Passwords masked */
    /* Out of memory here loses the record, never the command. */
    iSeq = zText ? fedExplainAdd(rdCtx(p), p->base.pServer->zName, zText, 0)
                 : 0;
    sqlite3_free(zText);
  }
  for(i=0; i<argc; i++) nByte += 32 + (i64)anArg[i];
  if( outReserve(P, nByte) ){
    *pRc = SQLITE_NOMEM;
    return iSeq;
  }
  outHeader(P, '*', (u64)argc);
  for(i=0; i<argc; i++){
    outHeader(P, '$', (u64)anArg[i]);
    if( anArg[i] ) memcpy(&P->zOut[P->nOut], azArg[i], anArg[i]);
    P->nOut += (i64)anArg[i];
    P->zOut[P->nOut++] = '\r';
    P->zOut[P->nOut++] = '\n';
  }
  return iSeq;
}

/* Read and discard n replies, so that the connection is in step again
** after an error; a connection that cannot be read is marked dead. */
static void connDrain(RedisConn *p, int n){
  while( n-->0 && !p->bDead ){
    void *pReply = 0;
    if( connGetReply(p, &pReply)!=REDIS_OK ){
      p->eWait = 0;
      p->bDead = 1;
    }else if( pReply ){
      freeReplyObject(pReply);
    }
  }
}

/*
** Send every command of P and read every reply into P->apReply.  Before
** them go an owed UNWATCH and the SELECT a command's database needs.
** Error replies are returned as replies (the caller decides); an I/O error
** or timeout fails the whole pipeline and marks the connection dead, and
** so does running out of memory while reading (SQLITE_NOMEM).  With
** P->pReplies the replies are built in that arena (replyFns).
*/
static int pipeRun(RedisConn *p, RedisPipe *P, char **pzErr){
  static const char *azSelect[2] = { "SELECT", 0 };
  static const char *azUnwatch[1] = { "UNWATCH" };
  size_t anSelect[2], anUnwatch[1] = { 7 };
  int *aMap = 0;                /* Sent command -> P's command, -1 extra */
  i64 *aSeq = 0;
  int nSent = 0, nSkip, i, rc = SQLITE_OK;
  char zDb[16];
  redisReader *pReader;
  redisReplyObjectFunctions *pFnSave = 0;

  if( P->rc ) return P->rc;
  if( P->nCmd==0 ) return SQLITE_OK;
  if( p->c==0 || p->bDead ){
    connIoError(p, 0, pzErr);
    return SQLITE_ERROR;
  }
  pipeFreeReplies(P);
  if( P->nCmd>P->nReplyAlloc ){
    sqlite3_free(P->apReply);
    P->apReply = sqlite3_malloc64(sizeof(redisReply*)*P->nCmdAlloc);
    P->nReplyAlloc = P->apReply ? P->nCmdAlloc : 0;
  }
  if( P->apReply ){
    memset(P->apReply, 0, sizeof(redisReply*)*P->nCmd);
    P->nReply = P->nCmd;
  }
  aMap = sqlite3_malloc64(sizeof(int)*(2*P->nCmd+1));
  aSeq = sqlite3_malloc64(sizeof(i64)*(2*P->nCmd+1));
  if( P->apReply==0 || aMap==0 || aSeq==0 ){
    rc = SQLITE_NOMEM;
    goto cleanup;
  }
  rc = fedFault(FED_FAULT_SEND, pzErr);
  if( rc ) goto cleanup;

  /* A batch of reads is longer than fed_explain's ring: rendering the text
  ** of commands that the batch's last ones overwrite would cost a tenth of
  ** a scan, so only those that stay are rendered. */
  {
    int nTotal = P->nCmd + (p->bUnwatch ? 1 : 0), iDb = p->iCurDb;
    for(i=0; i<P->nCmd; i++){
      if( P->aDb[i]>=0 && P->aDb[i]!=iDb ){ nTotal++; iDb = P->aDb[i]; }
    }
    nSkip = (int)fedExplainSkip(rdCtx(p), nTotal);
  }
  P->nOut = 0;
  if( p->bUnwatch ){
    aSeq[nSent] = connAppend(p, P, 1, azUnwatch, anUnwatch, nSent>=nSkip,
                             &rc);
    aMap[nSent++] = -1;
    p->bUnwatch = 0;
  }
  for(i=0; i<P->nCmd && rc==SQLITE_OK; i++){
    int i0 = P->aFirst[i];
    if( P->aDb[i]>=0 && P->aDb[i]!=p->iCurDb ){
      sqlite3_snprintf(sizeof(zDb), zDb, "%d", P->aDb[i]);
      azSelect[1] = zDb;
      anSelect[0] = 6;
      anSelect[1] = strlen(zDb);
      aSeq[nSent] = connAppend(p, P, 2, azSelect, anSelect, nSent>=nSkip,
                               &rc);
      aMap[nSent++] = -2 - P->aDb[i];
      p->iCurDb = P->aDb[i];
    }
    aSeq[nSent] = connAppend(p, P, pipeArgc(P, i), &P->azArg[i0],
                             &P->anArg[i0], nSent>=nSkip, &rc);
    aMap[nSent++] = i;
  }
  if( rc==SQLITE_OK
   && redisAppendFormattedCommand(p->c, P->zOut, (size_t)P->nOut)!=REDIS_OK ){
    rc = SQLITE_NOMEM;
  }
  if( rc ){
    /* Nothing was written, but the owed UNWATCH and SELECT are lost. */
    p->bDead = 1;
    goto cleanup;
  }
  /* Send everything now, so that what follows happens after sending. */
  {
    int bDone = 0;
    P->bSent = 0;
    while( !bDone ){
      if( connWait(p, 1)!=REDIS_OK
       || redisBufferWrite(p->c, &bDone)!=REDIS_OK ){
        char *zText = pipeText(P, 0);
        connIoError(p, zText, pzErr);
        sqlite3_free(zText);
        rc = SQLITE_ERROR;
        goto cleanup;
      }
    }
    P->bSent = 1;
  }
  if( fedFault(FED_FAULT_RECV, pzErr) ){
    connDrain(p, nSent);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  pReader = p->c->reader;
  if( P->pReplies ){
    pFnSave = pReader->fn;
    pReader->fn = &replyFns;
    pReader->privdata = P->pReplies;
  }
  for(i=0; i<nSent; i++){
    void *pReply = 0;
    if( connGetReply(p, &pReply)!=REDIS_OK || pReply==0 ){
      if( p->c->err==REDIS_ERR_OOM ){
        p->bDead = 1;
        rc = SQLITE_NOMEM;
      }else{
        char *zText = P->iBlame>0 ? pipeText(P, P->iBlame-1)
                    : aMap[i]>=0 ? pipeText(P, aMap[i]) : 0;
        connIoError(p, zText, pzErr);
        sqlite3_free(zText);
        rc = SQLITE_ERROR;
      }
      break;
    }
    fedExplainRows(rdCtx(p), aSeq[i], replyRows(pReply), 1);
    if( aMap[i]>=0 ){
      P->apReply[aMap[i]] = (redisReply*)pReply;
    }else{
      redisReply *r = (redisReply*)pReply;
      if( r->type==REDIS_REPLY_ERROR && rc==SQLITE_OK ){
        char *zMsg = sqlite3_mprintf("%.*s", (int)r->len, r->str);
        char *zCmd = aMap[i]==-1 ? sqlite3_mprintf("UNWATCH")
                                 : sqlite3_mprintf("SELECT %d", -2-aMap[i]);
        rdSetError(pzErr, zMsg ? zMsg : "error", zCmd);
        sqlite3_free(zMsg);
        sqlite3_free(zCmd);
        p->iCurDb = -1;
        rc = SQLITE_ERROR;
      }
      if( P->pReplies==0 ) freeReplyObject(pReply);
    }
  }
  if( pFnSave ){
    /* A reply half read when the connection failed stays the reader's
    ** until redisFree(), which must not free() it: the arena's functions
    ** stay, without the arena. */
    if( pReader->reply==0 ) pReader->fn = pFnSave;
    pReader->privdata = 0;
  }

cleanup:
  if( rc ) pipeFreeReplies(P);
  sqlite3_free(aMap);
  sqlite3_free(aSeq);
  return rc;
}

/* An error reply of command iCmd of P as an error message. */
static void pipeReplyError(RedisPipe *P, int iCmd, char **pzErr){
  redisReply *r = P->apReply[iCmd];
  char *zText = pipeText(P, iCmd);
  char *zMsg = sqlite3_mprintf("%.*s", (int)r->len, r->str);
  rdSetError(pzErr, zMsg ? zMsg : "error", zText);
  sqlite3_free(zMsg);
  sqlite3_free(zText);
}

static int isWrongType(const redisReply *r){
  return r && r->type==REDIS_REPLY_ERROR && r->len>=9
      && memcmp(r->str, "WRONGTYPE", 9)==0;
}

/**************************************************************************
** Connection.  The DSN is redis://[user@]host[:port][/db] or
** unix:/path/to/socket[?db=N]; it never holds a password: that comes from
** the environment variable named by password_env=.
*/
static const char *const azRdServerOpt[] = {
  "password_env", "connect_timeout", "command_timeout", 0
};
static const char *const azRdTableOpt[] = {
  "keys", "prefix", "type", "fields", "db", "scan_count", 0
};

struct RedisDsn {
  char *zUser;                  /* ACL user, or NULL */
  char *zHost;                  /* TCP host, or NULL for a unix socket */
  char *zPath;                  /* Unix socket path */
  int iPort;
  int iDb;
};

static void dsnFree(RedisDsn *d){
  sqlite3_free(d->zUser);
  sqlite3_free(d->zHost);
  sqlite3_free(d->zPath);
  memset(d, 0, sizeof(*d));
}

/* Read a decimal number of at most 9 digits at z[0..n). */
static int dsnNumber(const char *z, int n, int *piOut){
  int i, v = 0;
  if( n<=0 || n>9 ) return 1;
  for(i=0; i<n; i++){
    if( z[i]<'0' || z[i]>'9' ) return 1;
    v = v*10 + (z[i]-'0');
  }
  *piOut = v;
  return 0;
}

static int dsnParse(const char *zDsn, RedisDsn *d, char **pzErr){
  const char *z = zDsn;
  int rc = SQLITE_OK;
  memset(d, 0, sizeof(*d));
  d->iPort = 6379;
  if( sqlite3_strnicmp(z, "redis://", 8)==0 ){
    const char *zAt, *zEnd, *zHostEnd, *zColon = 0;
    z += 8;
    zEnd = z;
    while( *zEnd && *zEnd!='/' && *zEnd!='?' ) zEnd++;
    zAt = z;
    while( zAt<zEnd && *zAt!='@' ) zAt++;
    if( zAt<zEnd ){
      if( zAt==z ){ rc = SQLITE_ERROR; goto done; }
      d->zUser = fedStrdup(z, (int)(zAt-z));
      if( d->zUser==0 ) return SQLITE_NOMEM;
      z = zAt+1;
    }
    if( *z=='[' ){
      /* [ipv6]:port */
      const char *zClose = z;
      while( zClose<zEnd && *zClose!=']' ) zClose++;
      if( zClose>=zEnd ){ rc = SQLITE_ERROR; goto done; }
      d->zHost = fedStrdup(z+1, (int)(zClose-z-1));
      zHostEnd = zClose+1;
      if( zHostEnd<zEnd && *zHostEnd==':' ) zColon = zHostEnd;
      else if( zHostEnd!=zEnd ){ rc = SQLITE_ERROR; goto done; }
    }else{
      zHostEnd = z;
      while( zHostEnd<zEnd && *zHostEnd!=':' ) zHostEnd++;
      if( zHostEnd<zEnd ) zColon = zHostEnd;
      d->zHost = fedStrdup(z, (int)(zHostEnd-z));
    }
    if( d->zHost==0 ) return SQLITE_NOMEM;
    if( d->zHost[0]==0 ){ rc = SQLITE_ERROR; goto done; }
    if( zColon && (dsnNumber(zColon+1, (int)(zEnd-zColon-1), &d->iPort)
                   || d->iPort<1 || d->iPort>65535) ){
      rc = SQLITE_ERROR;
      goto done;
    }
    z = zEnd;
    if( *z=='/' ){
      const char *zDb = ++z;
      while( *z && *z!='?' ) z++;
      if( z>zDb && dsnNumber(zDb, (int)(z-zDb), &d->iDb) ){
        rc = SQLITE_ERROR;
        goto done;
      }
    }
    if( *z ){ rc = SQLITE_ERROR; goto done; }
  }else if( sqlite3_strnicmp(z, "unix:", 5)==0 ){
    const char *zQ;
    z += 5;
    while( z[0]=='/' && z[1]=='/' ) z++;
    zQ = strchr(z, '?');
    d->zPath = fedStrdup(z, zQ ? (int)(zQ-z) : -1);
    if( d->zPath==0 ) return SQLITE_NOMEM;
    if( d->zPath[0]!='/' ){ rc = SQLITE_ERROR; goto done; }
    if( zQ ){
      if( sqlite3_strnicmp(zQ, "?db=", 4)!=0
       || dsnNumber(zQ+4, (int)strlen(zQ+4), &d->iDb) ){
        rc = SQLITE_ERROR;
        goto done;
      }
    }
  }else{
    rc = SQLITE_ERROR;
  }
done:
  if( rc==SQLITE_ERROR ){
    fedSetError(pzErr, "%s: malformed server address '%s' (expected"
        " redis://[user@]host[:port][/db] or unix:/path/to/socket[?db=N])",
        RD_STORE, zDsn);
    dsnFree(d);
  }
  return rc;
}

/* Check a server definition when fed_server() registers it. */
static int rdServerCheck(FedServer *pServer, char **pzErr){
  RedisDsn d;
  i64 v;
  int rc = dsnParse(pServer->zDsn, &d, pzErr);
  dsnFree(&d);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &v,
                      RD_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "command_timeout", 30, 0, 86400, &v,
                      RD_STORE, pzErr);
  }
  return rc;
}

static void txnClear(RedisTxn *t);

static void rdDisconnect(FedConn *pConn){
  RedisConn *p = (RedisConn*)pConn;
  if( p==0 ) return;
  if( p->pSub ) rdDisconnect(&p->pSub->base);
  if( p->c ) redisFree(p->c);
  txnClear(&p->txn);
  sqlite3_free(p);
}

/* 0 if the connection is known to be unusable.  An idle connection has
** nothing to read: anything there (or end of file) means the server
** closed it or is about to. */
static int rdIsAlive(FedConn *pConn){
  RedisConn *p = (RedisConn*)pConn;
  struct pollfd fd;
  if( p->c==0 || p->bDead || p->c->err ) return 0;
  fd.fd = p->c->fd;
  fd.events = POLLIN;
  fd.revents = 0;
  if( fd.fd<0 ) return 0;
  if( poll(&fd, 1, 0)>0 ) return 0;
  return 1;
}

static void shadowFree(void *pArg);

static int rdConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  const char *zPwEnv = 0;
  const char *zPw = 0;
  RedisConn *p = 0;
  RedisDsn d;
  RedisPipe P;
  i64 nConnect, nCommand;
  struct timeval tv;
  int rc, i;

  *ppConn = 0;
  memset(&d, 0, sizeof(d));
  pipeInit(&P);
  rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc==SQLITE_OK ) rc = rdServerCheck(pServer, pzErr);
  if( rc==SQLITE_OK ){
    fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &nConnect,
                 RD_STORE, pzErr);
    fedConfigInt(pServer->pOpt, "command_timeout", 30, 0, 86400, &nCommand,
                 RD_STORE, pzErr);
    rc = dsnParse(pServer->zDsn, &d, pzErr);
  }
  if( rc ) goto cleanup;
  if( zPwEnv ){
    zPw = getenv(zPwEnv);
    if( zPw==0 ){
      fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
          " by password_env) is not set", RD_STORE, pServer->zName, zPwEnv);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }

  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  p->iDb = d.iDb;
  p->iCurDb = 0;
  p->nCmdTimeout = (int)nCommand;
  p->txn.shadow.xDel = shadowFree;
  /* A tombstone no real value is likely to equal. */
  {
    unsigned char aRand[12];
    sqlite3_randomness(sizeof(aRand), aRand);
    memcpy(p->zTomb, "\x00" "federate-deleted-", 18);
    for(i=0; i<12; i++){
      sqlite3_snprintf(3, &p->zTomb[18+2*i], "%02x", aRand[i]);
    }
    p->nTomb = 18+24;
  }

  tv.tv_sec = (long)nConnect;
  tv.tv_usec = 0;
  if( d.zPath ){
    p->c = redisConnectUnixWithTimeout(d.zPath, tv);
  }else{
    p->c = redisConnectWithTimeout(d.zHost, d.iPort, tv);
  }
  if( p->c==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  if( p->c->err ){
    fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s", RD_STORE,
                pServer->zName, p->c->errstr);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( nCommand>0 ){
    tv.tv_sec = (long)nCommand;
    redisSetTimeout(p->c, tv);
  }
  if( d.zPath==0 ) redisEnableKeepAlive(p->c);

  /* AUTH and SELECT in one round trip. */
  if( zPw ){
    pipeCmd(&P, -1, "AUTH");
    if( d.zUser ) pipeArg(&P, d.zUser, -1);
    pipeArg(&P, zPw, -1);
  }
  if( d.iDb!=0 ){
    pipeCmd(&P, -1, "SELECT");
    pipeArgInt(&P, d.iDb);
  }
  if( P.rc ){
    rc = P.rc;
    goto cleanup;
  }
  if( P.nCmd>0 ){
    rc = pipeRun(p, &P, pzErr);
    for(i=0; rc==SQLITE_OK && i<P.nCmd; i++){
      redisReply *r = P.apReply[i];
      if( r->type==REDIS_REPLY_ERROR ){
        fedSetError(pzErr, "%s: server \"%s\": %s failed: %.*s", RD_STORE,
            pServer->zName, (zPw && i==0) ? "AUTH" : "SELECT",
            (int)r->len, r->str);
        rc = SQLITE_ERROR;
      }
    }
    if( rc ) goto cleanup;
  }
  p->iCurDb = d.iDb;
  *ppConn = &p->base;
  p = 0;

cleanup:
  pipeFree(&P);
  dsnFree(&d);
  if( p ) rdDisconnect(&p->base);
  return rc;
}

/**************************************************************************
** Tables: options, columns, planning.
*/
struct RedisTable {
  int eMode;                    /* RT_STRING..RT_ZSET, RM_ANY, RM_FIELDS */
  char *zPattern;               /* Key space, a Redis glob */
  int nPattern;
  int iDb;                      /* Database, or -1 for the DSN's */
  int nScanCount;
  int iKey, iField, iValue, iScore, iIdx, iTtl, iType;   /* Columns, -1 */
  int iFirstField, nField;      /* fields=: its columns */
  RHash ident;                  /* rowid -> RedisIdent* (rows read by this
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

static void identFree(void *pArg){
  RedisIdent *p = (RedisIdent*)pArg;
  if( p ){
    rbufFree(&p->key);
    rbufFree(&p->sub);
    rbufFree(&p->val);
    sqlite3_free(p);
  }
}

static int modeFromName(const char *z){
  if( sqlite3_stricmp(z, "string")==0 ) return RT_STRING;
  if( sqlite3_stricmp(z, "hash")==0 ) return RT_HASH;
  if( sqlite3_stricmp(z, "list")==0 ) return RT_LIST;
  if( sqlite3_stricmp(z, "set")==0 ) return RT_SET;
  if( sqlite3_stricmp(z, "zset")==0 ) return RT_ZSET;
  if( sqlite3_stricmp(z, "any")==0 ) return RM_ANY;
  return 0;
}

/* The kind of a field declared in fields=, or 0. */
static int fieldKind(const char *zType){
  if( sqlite3_stricmp(zType, "text")==0 ) return RC_F_TEXT;
  if( sqlite3_stricmp(zType, "integer")==0 || sqlite3_stricmp(zType, "int")==0
   || sqlite3_stricmp(zType, "bigint")==0 ) return RC_F_INT;
  if( sqlite3_stricmp(zType, "real")==0 || sqlite3_stricmp(zType, "float")==0
   || sqlite3_stricmp(zType, "double")==0 ) return RC_F_REAL;
  if( sqlite3_stricmp(zType, "blob")==0 ) return RC_F_BLOB;
  return 0;
}

static void rdTableFree(FedTable *pTab){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  if( pRt ){
    sqlite3_free(pRt->zPattern);
    rhashClear(&pRt->ident);
    sqlite3_free(pRt);
    pTab->pStoreTab = 0;
  }
}

/* Parse the table options into a RedisTable (not yet attached). */
static int tableOptions(FedTable *pTab, RedisTable **ppRt, FedColumn **paF,
                        int *pnF, char **pzErr){
  FedConfig *pCfg = pTab->pCfg;
  const char *zType = fedConfigGet(pCfg, "type");
  const char *zKeys = fedConfigGet(pCfg, "keys");
  const char *zPrefix = fedConfigGet(pCfg, "prefix");
  const char *zFields = fedConfigGet(pCfg, "fields");
  RedisTable *pRt;
  i64 v;
  int rc = SQLITE_OK, i;

  *ppRt = 0;
  if( paF ){ *paF = 0; *pnF = 0; }
  pRt = sqlite3_malloc64(sizeof(*pRt));
  if( pRt==0 ) return SQLITE_NOMEM;
  memset(pRt, 0, sizeof(*pRt));
  pRt->ident.xDel = identFree;
  pRt->eMode = zType ? modeFromName(zType) : RT_STRING;
  if( pRt->eMode==0 ){
    fedSetError(pzErr, "%s: unknown type '%s' (expected string, hash, list,"
                " set, zset or any)", RD_STORE, zType);
    rc = SQLITE_ERROR;
    goto done;
  }
  if( zKeys && zPrefix ){
    fedSetError(pzErr, "%s: give keys= or prefix=, not both", RD_STORE);
    rc = SQLITE_ERROR;
    goto done;
  }
  if( zPrefix ){
    pRt->zPattern = prefixPattern(zPrefix);
  }else{
    pRt->zPattern = fedStrdup(zKeys ? zKeys : "*", -1);
  }
  if( pRt->zPattern==0 ){ rc = SQLITE_NOMEM; goto done; }
  pRt->nPattern = (int)strlen(pRt->zPattern);
  if( pRt->nPattern==0 ){
    fedSetError(pzErr, "%s: keys= must not be empty", RD_STORE);
    rc = SQLITE_ERROR;
    goto done;
  }
  rc = fedConfigInt(pCfg, "db", -1, 0, 2147483647, &v, RD_STORE, pzErr);
  if( rc ) goto done;
  pRt->iDb = (int)v;
  rc = fedConfigInt(pCfg, "scan_count", 1000, 1, 1000000, &v, RD_STORE, pzErr);
  if( rc ) goto done;
  pRt->nScanCount = (int)v;
  if( zFields ){
    FedColumn *aF = 0;
    int nF = 0;
    if( pRt->eMode!=RT_HASH ){
      fedSetError(pzErr, "%s: fields= is only for type=hash", RD_STORE);
      rc = SQLITE_ERROR;
      goto done;
    }
    rc = fedColumnsParse(RD_STORE, zFields, &aF, &nF, pzErr);
    for(i=0; rc==SQLITE_OK && i<nF; i++){
      if( fieldKind(aF[i].zType)==0 ){
        fedSetError(pzErr, "%s: field \"%s\" has type '%s' (expected text,"
            " integer, real or blob)", RD_STORE, aF[i].zName, aF[i].zType);
        rc = SQLITE_ERROR;
      }else if( sqlite3_stricmp(aF[i].zName, "key")==0
             || sqlite3_stricmp(aF[i].zName, "ttl")==0 ){
        fedSetError(pzErr, "%s: a field may not be named \"%s\" (that"
            " column is always there)", RD_STORE, aF[i].zName);
        rc = SQLITE_ERROR;
      }
    }
    if( rc==SQLITE_OK && nF+2>FED_MAX_COLUMNS ){
      fedSetError(pzErr, "%s: too many fields (%d, at most %d)", RD_STORE,
                  nF, FED_MAX_COLUMNS-2);
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK && paF ){
      *paF = aF;
      *pnF = nF;
    }else{
      fedColumnsFree(aF, nF);
    }
    if( rc ) goto done;
    pRt->eMode = RM_FIELDS;
  }
done:
  if( rc ){
    if( paF && *paF ){ fedColumnsFree(*paF, *pnF); *paF = 0; *pnF = 0; }
    sqlite3_free(pRt->zPattern);
    sqlite3_free(pRt);
    return rc;
  }
  *ppRt = pRt;
  return SQLITE_OK;
}

/* Append column zName of type zType to pTab (xDescribe). */
static int addColumn(FedTable *pTab, const char *zName, const char *zType,
                     int bPk){
  FedColumn *aNew = sqlite3_realloc64(pTab->aCol,
                                      sizeof(FedColumn)*(pTab->nCol+1));
  FedColumn *pCol;
  if( aNew==0 ) return SQLITE_NOMEM;
  pTab->aCol = aNew;
  pCol = &aNew[pTab->nCol];
  memset(pCol, 0, sizeof(*pCol));
  pCol->zName = fedStrdup(zName, -1);
  pCol->zType = fedStrdup(zType, -1);
  pCol->bPk = (u8)bPk;
  pCol->bNotNull = (u8)bPk;
  pTab->nCol++;
  if( pCol->zName==0 || pCol->zType==0 ) return SQLITE_NOMEM;
  return SQLITE_OK;
}

/*
** The columns follow from the options alone, so nothing is sent here even
** when a connection is given.  zRemote is the key pattern.
*/
static int rdDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  RedisTable *pRt = 0;
  FedColumn *aF = 0;
  int nF = 0, rc, i, eMode;
  (void)pConn;
  if( pTab->nCol>0 ){
    fedSetError(pzErr, "%s: columns= is not an option of redis tables: the"
        " columns follow from type= (and fields= for a hash with one column"
        " per field)", RD_STORE);
    return SQLITE_ERROR;
  }
  rc = tableOptions(pTab, &pRt, &aF, &nF, pzErr);
  if( rc ) return rc;
  eMode = pRt->eMode;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = fedStrdup(pRt->zPattern, -1);
  if( pTab->zRemote==0 ) rc = SQLITE_NOMEM;
  sqlite3_free(pRt->zPattern);
  sqlite3_free(pRt);
  if( rc==SQLITE_OK ){
    int bKeyPk = eMode==RT_STRING || eMode==RM_ANY || eMode==RM_FIELDS;
    rc = addColumn(pTab, "key", "text", bKeyPk);
    switch( eMode ){
      case RT_STRING:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_HASH:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "field", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_LIST:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "idx", "integer", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_SET:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_ZSET:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "score", "real", 0);
        break;
      case RM_ANY:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "type", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RM_FIELDS:
        for(i=0; rc==SQLITE_OK && i<nF; i++){
          rc = addColumn(pTab, aF[i].zName, aF[i].zType, 0);
        }
        break;
    }
    if( rc==SQLITE_OK ) rc = addColumn(pTab, "ttl", "integer", 0);
  }
  fedColumnsFree(aF, nF);
  return rc;
}

/* Kinds, affinities and the key of the columns (from xDescribe, or from
** the fed_tables record when a file is opened). */
static int rdColumns(FedTable *pTab, char **pzErr){
  RedisTable *pRt = 0;
  int rc, i;
  rc = tableOptions(pTab, &pRt, 0, 0, pzErr);
  if( rc ) return rc;
  rdTableFree(pTab);
  pTab->pStoreTab = pRt;
  pRt->iKey = pRt->iField = pRt->iValue = pRt->iScore = -1;
  pRt->iIdx = pRt->iTtl = pRt->iType = pRt->iFirstField = -1;
  pTab->iPk = -1;
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    const char *zName = pCol->zName;
    int eKind = 0;
    if( sqlite3_stricmp(zName, "key")==0 ){
      eKind = RC_KEY; pRt->iKey = i;
    }else if( sqlite3_stricmp(zName, "ttl")==0 ){
      eKind = RC_TTL; pRt->iTtl = i;
    }else if( pRt->eMode==RM_FIELDS ){
      eKind = fieldKind(pCol->zType);
      if( pRt->iFirstField<0 ) pRt->iFirstField = i;
      pRt->nField++;
    }else if( sqlite3_stricmp(zName, "value")==0 ){
      eKind = RC_VALUE; pRt->iValue = i;
    }else if( sqlite3_stricmp(zName, "field")==0 && pRt->eMode==RT_HASH ){
      eKind = RC_FIELD; pRt->iField = i;
    }else if( sqlite3_stricmp(zName, "score")==0 && pRt->eMode==RT_ZSET ){
      eKind = RC_SCORE; pRt->iScore = i;
    }else if( sqlite3_stricmp(zName, "idx")==0 && pRt->eMode==RT_LIST ){
      eKind = RC_IDX; pRt->iIdx = i;
    }else if( sqlite3_stricmp(zName, "type")==0 && pRt->eMode==RM_ANY ){
      eKind = RC_TYPE; pRt->iType = i;
    }
    if( eKind==0 ){
      fedSetError(pzErr, "%s: unexpected column \"%s\" for a table of"
                  " type %s", RD_STORE, zName, fedConfigGet(pTab->pCfg,
                  "type") ? fedConfigGet(pTab->pCfg, "type") : "string");
      return SQLITE_ERROR;
    }
    pCol->eKind = eKind;
    switch( eKind ){
      case RC_SCORE: case RC_F_REAL: pCol->zAffinity = "REAL"; break;
      case RC_IDX: case RC_TTL: case RC_F_INT: pCol->zAffinity = "INTEGER"; break;
      case RC_F_BLOB: pCol->zAffinity = "BLOB"; break;
      default: pCol->zAffinity = "TEXT"; break;
    }
    if( pCol->bPk ) pTab->iPk = i;
  }
  if( pRt->iKey<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no key column", RD_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** Which conditions go to Redis.  key = and key IN name the keys (no SCAN);
** key GLOB is checked here exactly and narrows the SCAN MATCH; key LIKE
** narrows the MATCH and is re-checked by SQLite; a hash field or a
** set/zset member = / IN names the fields or members to read; score and
** list idx comparisons become ZRANGEBYSCORE / LRANGE bounds.  A value
** unknown at plan time may be a number that SQLite would compare with
** numeric affinity, so such an = is pushed loosely.
*/
static int rdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  int eKind = pTab->aCol[iCol].eKind;
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  int bSub = eKind==RC_FIELD
          || (eKind==RC_VALUE && (pRt->eMode==RT_SET || pRt->eMode==RT_ZSET));
  if( eKind==RC_KEY || bSub ){
    if( op==FED_OP_EQ ) return pRhs ? FED_PUSH_EXACT : FED_PUSH_LOOSE;
    if( eKind==RC_KEY && op==FED_OP_GLOB ) return FED_PUSH_EXACT;
    if( eKind==RC_KEY && op==FED_OP_LIKE ) return FED_PUSH_LOOSE;
    return FED_PUSH_NO;
  }
  if( eKind==RC_SCORE || eKind==RC_IDX ){
    if( op==FED_OP_EQ || op==FED_OP_LT || op==FED_OP_LE || op==FED_OP_GT
     || op==FED_OP_GE ){
      if( pRhs && (sqlite3_value_type(pRhs)==SQLITE_INTEGER
                || sqlite3_value_type(pRhs)==SQLITE_FLOAT
                || sqlite3_value_type(pRhs)==SQLITE_NULL) ){
        return FED_PUSH_EXACT;
      }
      return FED_PUSH_LOOSE;
    }
  }
  return FED_PUSH_NO;
}

/* Redis returns keys in no order: SQLite sorts. */
static int rdOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)iCol; (void)bDesc;
  return 0;
}

/**************************************************************************
** The transaction queue and its shadows.
**
** Writes never reach Redis before COMMIT: each becomes a RedisOp.  So that
** reads inside the transaction see its own writes, a key with queued
** commands (a dirty key) is read through its shadow: its state on the
** server, read under WATCH, with the queued commands replayed here.  The
** replay is also how COMMIT checks, before sending MULTI, that no command
** inside EXEC can fail (Redis would apply the others): INSERT conflicts,
** wrong types, a list changed under an index.
*/
static void opFree(RedisOp *pOp){
  int i;
  rbufFree(&pOp->key);
  for(i=0; i<pOp->nArg; i++) rbufFree(&pOp->aArg[i]);
  sqlite3_free(pOp->aArg);
  memset(pOp, 0, sizeof(*pOp));
}

static void shadowReset(RedisShadow *sh){
  int i;
  rbufFree(&sh->str);
  rhashClear(&sh->map);
  for(i=0; i<sh->nList; i++) rbufFree(&sh->aList[i]);
  sqlite3_free(sh->aList);
  sh->aList = 0;
  sh->nList = sh->nListAlloc = 0;
}

static void shadowFree(void *pArg){
  RedisShadow *sh = (RedisShadow*)pArg;
  if( sh ){
    shadowReset(sh);
    sqlite3_free(sh);
  }
}

static void rbufPtrFree(void *p){
  rbufFree((RBuf*)p);
  sqlite3_free(p);
}

static void txnClear(RedisTxn *t){
  int i;
  for(i=0; i<t->nOp; i++) opFree(&t->aOp[i]);
  sqlite3_free(t->aOp);
  sqlite3_free(t->aMark);
  rhashClear(&t->shadow);
  rhashClear(&t->dirty);
  rhashClear(&t->seenType);
  rhashClear(&t->lrem);
  sqlite3_free(t->zDoom);
  memset(t, 0, sizeof(*t));
  t->shadow.xDel = shadowFree;
}

static RedisShadow *shadowGet(RedisTxn *t, int iDb, const char *z, int n){
  RHashElem *e = rhashFind(&t->shadow, iDb, z, n);
  return e ? (RedisShadow*)e->pVal : 0;
}

static void shadowDrop(RedisTxn *t, int iDb, const char *z, int n){
  rhashRemove(&t->shadow, iDb, z, n);
}

/* The keys an op touches: its key, and for RENAME the new name. */
static int opKeys(const RedisOp *pOp, const RBuf **aKey){
  aKey[0] = &pOp->key;
  if( pOp->eOp==ROP_RENAME ){
    aKey[1] = &pOp->aArg[0];
    return 2;
  }
  return 1;
}

static int txnIsDirty(RedisTxn *t, int iDb, const char *z, int n){
  return rhashFind(&t->dirty, iDb, z, n)!=0;
}

/* Remove the ops from nOp on (statement or row rolled back): their keys'
** shadows are dropped, to be rebuilt from the server and the queue. */
static void txnTruncate(RedisTxn *t, int nOp){
  while( t->nOp>nOp ){
    RedisOp *pOp = &t->aOp[--t->nOp];
    const RBuf *aKey[2];
    int i, nKey = opKeys(pOp, aKey);
    for(i=0; i<nKey; i++){
      RHashElem *e = rhashFind(&t->dirty, pOp->iDb, aKey[i]->z, aKey[i]->n);
      if( e && --e->i<=0 ){
        rhashRemove(&t->dirty, pOp->iDb, aKey[i]->z, aKey[i]->n);
      }
      shadowDrop(t, pOp->iDb, aKey[i]->z, aKey[i]->n);
      if( pOp->eOp==ROP_LSET || pOp->eOp==ROP_LREM ){
        rhashRemove(&t->lrem, pOp->iDb, aKey[i]->z, aKey[i]->n);
      }
    }
    opFree(pOp);
  }
}

/* A new op at the end of the queue with nArg empty arguments; NULL on
** OOM.  It is part of the queue (and of the dirty index) once
** opCommit() is called; until then opFree() it on error. */
static RedisOp *opNew(RedisTxn *t, int eOp, int iDb, int iRow,
                      const char *zKey, int nKey, int nArg){
  RedisOp *pOp;
  if( t->nOp>=t->nOpAlloc ){
    int nNew = t->nOpAlloc ? t->nOpAlloc*2 : 16;
    RedisOp *a = sqlite3_realloc64(t->aOp, sizeof(RedisOp)*nNew);
    if( a==0 ) return 0;
    t->aOp = a;
    t->nOpAlloc = nNew;
  }
  pOp = &t->aOp[t->nOp];
  memset(pOp, 0, sizeof(*pOp));
  pOp->eOp = (u8)eOp;
  pOp->iDb = iDb;
  pOp->iRow = iRow;
  if( nArg>0 ){
    pOp->aArg = sqlite3_malloc64(sizeof(RBuf)*nArg);
    if( pOp->aArg==0 ) return 0;
    memset(pOp->aArg, 0, sizeof(RBuf)*nArg);
    pOp->nArg = nArg;
  }
  if( rbufSet(&pOp->key, zKey, nKey) ){
    opFree(pOp);
    return 0;
  }
  return pOp;
}

static int opCommit(RedisTxn *t){
  RedisOp *pOp = &t->aOp[t->nOp];
  const RBuf *aKey[2];
  int i, nKey = opKeys(pOp, aKey);
  for(i=0; i<nKey; i++){
    RHashElem *e = rhashAdd(&t->dirty, pOp->iDb, aKey[i]->z, aKey[i]->n, 0);
    if( e==0 ){
      /* Undo the counts already made. */
      int j;
      for(j=0; j<i; j++){
        RHashElem *e2 = rhashFind(&t->dirty, pOp->iDb, aKey[j]->z,
                                  aKey[j]->n);
        if( e2 && --e2->i<=0 ){
          rhashRemove(&t->dirty, pOp->iDb, aKey[j]->z, aKey[j]->n);
        }
      }
      opFree(pOp);
      return SQLITE_NOMEM;
    }
    e->i++;
  }
  t->nOp++;
  return SQLITE_OK;
}

/* The type of the keys an op writes, or RT_NONE for any type. */
static int opType(const RedisOp *pOp){
  switch( pOp->eOp ){
    case ROP_SET: return RT_STRING;
    case ROP_HSET: case ROP_HDEL: return RT_HASH;
    case ROP_RPUSH: case ROP_LSET: case ROP_LREM: return RT_LIST;
    case ROP_SADD: case ROP_SREM: return RT_SET;
    case ROP_ZADD: case ROP_ZREM: return RT_ZSET;
  }
  return RT_NONE;
}

/* True if checking pOp needs the content of its key, not just the type. */
static int opNeedsContent(const RedisOp *pOp){
  if( pOp->eOp==ROP_LSET ) return 1;
  return pOp->eCond==RCOND_NX
      && (pOp->eOp==ROP_HSET || pOp->eOp==ROP_SADD || pOp->eOp==ROP_ZADD);
}

/* True if pOp can fail inside EXEC, so that its key must be checked. */
static int opNeedsCheck(const RedisOp *pOp){
  switch( pOp->eOp ){
    case ROP_DEL: case ROP_EXPIRE: case ROP_PERSIST: return 0;
    case ROP_SET: return pOp->eCond!=RCOND_NONE;
  }
  return 1;
}

static void shadowClear(RedisShadow *sh){
  shadowReset(sh);
  sh->eType = RT_NONE;
  sh->bContent = 1;
  sh->iTtl = -1;
}

/* Set *pzErr for a condition or type failure of pOp. */
static void opError(const RedisOp *pOp, int eErr, const RedisShadow *sh,
                    char **pzErr){
  char *zKey = renderKey(pOp->key.z, pOp->key.n);
  char *zSub = pOp->nArg>0 ? renderKey(pOp->aArg[0].z, pOp->aArg[0].n) : 0;
  switch( eErr ){
    case 1:       /* A row that exists already */
      if( pOp->eOp==ROP_HSET && pOp->eCond==RCOND_NX ){
        fedSetError(pzErr, "%s: cannot insert: field %s of hash %s already"
                    " exists", RD_STORE, zSub, zKey);
      }else if( pOp->eOp==ROP_SADD || pOp->eOp==ROP_ZADD ){
        fedSetError(pzErr, "%s: cannot insert: member %s of %s %s already"
            " exists", RD_STORE, zSub, pOp->eOp==ROP_SADD ? "set" : "zset",
            zKey);
      }else if( pOp->eOp==ROP_RENAME ){
        fedSetError(pzErr, "%s: cannot rename key %s: key %s already exists",
                    RD_STORE, zKey, zSub);
      }else{
        fedSetError(pzErr, "%s: cannot insert: key %s already exists",
                    RD_STORE, zKey);
      }
      break;
    case 2:       /* Wrong type */
      fedSetError(pzErr, "%s: key %s holds a %s, not a %s (WRONGTYPE)",
          RD_STORE, zKey, typeName(sh->eType),
          typeName(pOp->eOp==ROP_RENAME ? RT_STRING : opType(pOp)));
      break;
    case 3:       /* Gone */
      fedSetError(pzErr, "%s: key %s no longer exists", RD_STORE, zKey);
      break;
    default:      /* A list changed under an index */
      fedSetError(pzErr, "%s: list %s changed since it was read (element"
                  " %lld)", RD_STORE, zKey, pOp->iNum);
      break;
  }
  sqlite3_free(zKey);
  sqlite3_free(zSub);
}

/*
** Apply pOp to the shadow sh of its key (sh2: of the new name, RENAME).
** Returns SQLITE_OK; SQLITE_CONSTRAINT when its condition fails (the row
** exists); SQLITE_ERROR when it would fail in EXEC; SQLITE_DONE when the
** shadow lacks the content to decide; or SQLITE_NOMEM.
*/
static int shadowApply(const RedisOp *pOp, RedisShadow *sh, RedisShadow *sh2,
                       char **pzErr){
  int eWant = opType(pOp);
  int i;
  if( eWant!=RT_NONE && sh->eType!=RT_NONE && sh->eType!=eWant
   && !(pOp->eOp==ROP_SET && pOp->eCond==RCOND_NONE) ){
    if( pOp->eOp==ROP_SET && pOp->eCond==RCOND_NX ){
      opError(pOp, 1, sh, pzErr);
      return SQLITE_CONSTRAINT;
    }
    opError(pOp, 2, sh, pzErr);
    return SQLITE_ERROR;
  }
  switch( pOp->eOp ){
    case ROP_SET:
      if( pOp->eCond==RCOND_NX && sh->eType!=RT_NONE ){
        opError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( pOp->eCond==RCOND_STRING && sh->eType==RT_NONE ){
        opError(pOp, 3, sh, pzErr);
        return SQLITE_ERROR;
      }
      {
        i64 iTtl = sh->iTtl;
        if( sh->eType==RT_NONE ) iTtl = -1;
        shadowReset(sh);
        if( rbufSet(&sh->str, pOp->aArg[0].z, pOp->aArg[0].n) ){
          shadowClear(sh);
          return SQLITE_NOMEM;
        }
        sh->eType = RT_STRING;
        sh->bContent = 1;
        sh->iTtl = pOp->eTtl==RTTL_EX ? pOp->iNum
                 : pOp->eTtl==RTTL_KEEP ? iTtl : -1;
      }
      return SQLITE_OK;
    case ROP_DEL:
      shadowClear(sh);
      return SQLITE_OK;
    case ROP_EXPIRE:
      if( sh->eType!=RT_NONE ){
        if( pOp->iNum<=0 ) shadowClear(sh);
        else sh->iTtl = pOp->iNum;
      }
      return SQLITE_OK;
    case ROP_PERSIST:
      if( sh->eType!=RT_NONE ) sh->iTtl = -1;
      return SQLITE_OK;
    case ROP_RENAME:
      if( sh->eType==RT_NONE ){
        opError(pOp, 3, sh, pzErr);
        return SQLITE_ERROR;
      }
      if( pOp->eCond==RCOND_NX && sh2->eType!=RT_NONE ){
        opError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      shadowReset(sh2);
      *sh2 = *sh;
      memset(sh, 0, sizeof(*sh));
      shadowClear(sh);
      return SQLITE_OK;
    case ROP_HSET:
      if( pOp->eCond==RCOND_NXKEY && sh->eType!=RT_NONE ){
        opError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( sh->eType==RT_NONE ){
        shadowClear(sh);
        sh->eType = RT_HASH;
      }else if( !sh->bContent ){
        return pOp->eCond==RCOND_NX ? SQLITE_DONE : SQLITE_OK;
      }
      if( pOp->eCond==RCOND_NX
       && rhashFind(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n) ){
        opError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      sh->map.xDel = rbufPtrFree;
      for(i=0; i+1<pOp->nArg; i+=2){
        RHashElem *e = rhashAdd(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n, 0);
        RBuf *pV;
        if( e==0 ) return SQLITE_NOMEM;
        pV = (RBuf*)e->pVal;
        if( pV==0 ){
          pV = sqlite3_malloc64(sizeof(RBuf));
          if( pV==0 ){
            rhashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
            return SQLITE_NOMEM;
          }
          memset(pV, 0, sizeof(*pV));
          e->pVal = pV;
        }
        if( rbufSet(pV, pOp->aArg[i+1].z, pOp->aArg[i+1].n) ){
          rhashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
          return SQLITE_NOMEM;
        }
      }
      return SQLITE_OK;
    case ROP_HDEL: case ROP_SREM: case ROP_ZREM:
      if( sh->eType==RT_NONE || !sh->bContent ) return SQLITE_OK;
      for(i=0; i<pOp->nArg; i++){
        rhashRemove(&sh->map, 0, pOp->aArg[i].z, pOp->aArg[i].n);
      }
      if( sh->map.nElem==0 ) shadowClear(sh);
      return SQLITE_OK;
    case ROP_RPUSH:
      if( sh->eType==RT_NONE ){
        shadowClear(sh);
        sh->eType = RT_LIST;
      }
      if( !sh->bContent ) return SQLITE_OK;
      if( sh->nList>=sh->nListAlloc ){
        int nNew = sh->nListAlloc ? sh->nListAlloc*2 : 8;
        RBuf *a = sqlite3_realloc64(sh->aList, sizeof(RBuf)*nNew);
        if( a==0 ) return SQLITE_NOMEM;
        sh->aList = a;
        sh->nListAlloc = nNew;
      }
      memset(&sh->aList[sh->nList], 0, sizeof(RBuf));
      if( rbufSet(&sh->aList[sh->nList], pOp->aArg[0].z, pOp->aArg[0].n) ){
        return SQLITE_NOMEM;
      }
      sh->nList++;
      return SQLITE_OK;
    case ROP_LSET:
      if( sh->eType==RT_NONE ){
        opError(pOp, 4, sh, pzErr);
        return SQLITE_ERROR;
      }
      if( !sh->bContent ) return SQLITE_DONE;
      if( pOp->iNum<0 || pOp->iNum>=sh->nList
       || !rbufEq(&sh->aList[pOp->iNum], pOp->aArg[1].z, pOp->aArg[1].n) ){
        opError(pOp, 4, sh, pzErr);
        return SQLITE_ERROR;
      }
      return rbufSet(&sh->aList[pOp->iNum], pOp->aArg[0].z, pOp->aArg[0].n);
    case ROP_LREM:
      if( sh->eType==RT_NONE || !sh->bContent ) return SQLITE_OK;
      {
        int j = 0;
        for(i=0; i<sh->nList; i++){
          if( rbufEq(&sh->aList[i], pOp->aArg[0].z, pOp->aArg[0].n) ){
            rbufFree(&sh->aList[i]);
          }else{
            sh->aList[j++] = sh->aList[i];
          }
        }
        sh->nList = j;
        if( j==0 ) shadowClear(sh);
      }
      return SQLITE_OK;
    case ROP_SADD: case ROP_ZADD: {
      RHashElem *e;
      int bNew;
      if( sh->eType==RT_NONE ){
        if( pOp->eCond==RCOND_XX ) return SQLITE_OK;
        shadowClear(sh);
        sh->eType = eWant;
      }else if( !sh->bContent ){
        return pOp->eCond==RCOND_NX ? SQLITE_DONE : SQLITE_OK;
      }
      e = rhashFind(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n);
      if( e && pOp->eCond==RCOND_NX ){
        opError(pOp, 1, sh, pzErr);
        return SQLITE_CONSTRAINT;
      }
      if( e==0 && pOp->eCond==RCOND_XX ) return SQLITE_OK;
      e = rhashAdd(&sh->map, 0, pOp->aArg[0].z, pOp->aArg[0].n, &bNew);
      if( e==0 ) return SQLITE_NOMEM;
      e->r = pOp->rScore;
      return SQLITE_OK;
    }
  }
  return SQLITE_OK;
}

/* One key to give a shadow (shadowLoad). */
typedef struct ShadowReq ShadowReq;
struct ShadowReq {
  int iDb;
  const char *z;
  int n;
  int eWant;                    /* Type whose content is needed, RT_NONE
                                ** when the type is enough, or -1 for a key
                                ** the queue overwrites first (not read) */
};

/* Fill a new shadow from the replies to TYPE, TTL and the fetch. */
static int shadowFill(RedisShadow *sh, redisReply *rType, redisReply *rTtl,
                      redisReply *rData, int eWant){
  int i;
  shadowClear(sh);
  sh->bContent = 0;
  if( rType==0 || rType->type!=REDIS_REPLY_STATUS ) return SQLITE_ERROR;
  sh->eType = typeFromName(rType->str, (int)rType->len);
  if( rTtl && rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
    sh->iTtl = rTtl->integer;
  }
  if( sh->eType==RT_NONE ){
    sh->bContent = 1;
    return SQLITE_OK;
  }
  if( eWant==RT_NONE || sh->eType!=eWant || rData==0
   || rData->type==REDIS_REPLY_ERROR ){
    return SQLITE_OK;
  }
  switch( sh->eType ){
    case RT_STRING:
      if( rData->type!=REDIS_REPLY_STRING ) return SQLITE_OK;
      if( rbufSet(&sh->str, rData->str, (int)rData->len) ) return SQLITE_NOMEM;
      break;
    case RT_HASH:
      sh->map.xDel = rbufPtrFree;
      for(i=0; i+1<(int)rData->elements; i+=2){
        redisReply *f = rData->element[i], *v = rData->element[i+1];
        RHashElem *e = rhashAdd(&sh->map, 0, f->str, (int)f->len, 0);
        RBuf *pV;
        if( e==0 ) return SQLITE_NOMEM;
        pV = sqlite3_malloc64(sizeof(RBuf));
        if( pV==0 ) return SQLITE_NOMEM;
        memset(pV, 0, sizeof(*pV));
        e->pVal = pV;
        if( rbufSet(pV, v->str, (int)v->len) ) return SQLITE_NOMEM;
      }
      break;
    case RT_LIST:
      if( rData->elements>0 ){
        sh->aList = sqlite3_malloc64(sizeof(RBuf)*rData->elements);
        if( sh->aList==0 ) return SQLITE_NOMEM;
        memset(sh->aList, 0, sizeof(RBuf)*rData->elements);
        sh->nListAlloc = (int)rData->elements;
      }
      for(i=0; i<(int)rData->elements; i++){
        redisReply *v = rData->element[i];
        if( rbufSet(&sh->aList[i], v->str, (int)v->len) ) return SQLITE_NOMEM;
        sh->nList++;
      }
      break;
    case RT_SET:
      for(i=0; i<(int)rData->elements; i++){
        redisReply *m = rData->element[i];
        if( rhashAdd(&sh->map, 0, m->str, (int)m->len, 0)==0 ){
          return SQLITE_NOMEM;
        }
      }
      break;
    case RT_ZSET:
      for(i=0; i+1<(int)rData->elements; i+=2){
        redisReply *m = rData->element[i], *s = rData->element[i+1];
        RHashElem *e = rhashAdd(&sh->map, 0, m->str, (int)m->len, 0);
        if( e==0 ) return SQLITE_NOMEM;
        e->r = strtod(s->str, 0);
      }
      break;
  }
  sh->bContent = 1;
  return SQLITE_OK;
}

/* Add the command that reads a whole key of type eType to P. */
static void pipeFetchWhole(RedisPipe *P, int iDb, int eType, const char *z,
                           int n){
  switch( eType ){
    case RT_STRING:
      pipeCmd(P, iDb, "GET");
      pipeArg(P, z, n);
      break;
    case RT_HASH:
      pipeCmd(P, iDb, "HGETALL");
      pipeArg(P, z, n);
      break;
    case RT_LIST:
      pipeCmd(P, iDb, "LRANGE");
      pipeArg(P, z, n);
      pipeArg(P, "0", 1);
      pipeArg(P, "-1", 2);
      break;
    case RT_SET:
      pipeCmd(P, iDb, "SMEMBERS");
      pipeArg(P, z, n);
      break;
    case RT_ZSET:
      pipeCmd(P, iDb, "ZRANGE");
      pipeArg(P, z, n);
      pipeArg(P, "0", 1);
      pipeArg(P, "-1", 2);
      pipeArg(P, "WITHSCORES", 10);
      break;
  }
}

/* WATCH the keys of aE[0..n) (all in database iDb), in chunks. */
static void pipeWatch(RedisPipe *P, int iDb, RHashElem **aE, int n){
  int i;
  for(i=0; i<n; i++){
    if( i%RD_WATCH_CHUNK==0 ) pipeCmd(P, iDb, "WATCH");
    pipeArg(P, aE[i]->zKey, aE[i]->nKey);
  }
}

/*
** Give every key of aReq a shadow that holds at least what it asks for:
** read the keys (and, through RENAMEs, the keys their content came from
** or went to) under WATCH, then replay the queued ops that touch them.
** A failed replay is an error (the transaction is doomed: some INSERT
** already accepted conflicts, or a command would fail in EXEC), except
** for INSERT OR IGNORE rows, whose ops are marked bSkip.
*/
static int shadowLoad(RedisConn *p, ShadowReq *aReq, int nReq, char **pzErr){
  RedisTxn *t = &p->txn;
  RHash set;                    /* Keys to load: elem.i = type wanted */
  RHashElem **aE = 0;
  RedisPipe P;
  int *aiCmd = 0;               /* First command (TYPE) of each key, or -1 */
  int i, j, nE = 0, nF = 0, rc = SQLITE_OK, bMore, bNew;

  memset(&set, 0, sizeof(set));
  pipeInit(&P);
  for(i=0; i<nReq; i++){
    RedisShadow *sh = shadowGet(t, aReq[i].iDb, aReq[i].z, aReq[i].n);
    RHashElem *e;
    if( sh && (aReq[i].eWant==RT_NONE || sh->bContent
               || sh->eType!=aReq[i].eWant) ){
      continue;
    }
    e = rhashAdd(&set, aReq[i].iDb, aReq[i].z, aReq[i].n, &bNew);
    if( e==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    if( bNew ) e->r = set.nElem;
    if( aReq[i].eWant!=RT_NONE ) e->i = aReq[i].eWant;
  }
  if( set.nElem==0 ) goto cleanup;

  /* Keys connected by a RENAME are rebuilt together. */
  do{
    bMore = 0;
    for(i=0; i<t->nOp; i++){
      RedisOp *pOp = &t->aOp[i];
      RHashElem *e1, *e2;
      if( pOp->eOp!=ROP_RENAME ) continue;
      e1 = rhashFind(&set, pOp->iDb, pOp->key.z, pOp->key.n);
      e2 = rhashFind(&set, pOp->iDb, pOp->aArg[0].z, pOp->aArg[0].n);
      if( (e1==0)==(e2==0) ) continue;
      if( e1==0 ){
        e1 = rhashAdd(&set, pOp->iDb, pOp->key.z, pOp->key.n, 0);
        if( e1==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
        e1->i = e2->i;
        e1->r = set.nElem;
      }else{
        e2 = rhashAdd(&set, pOp->iDb, pOp->aArg[0].z, pOp->aArg[0].n, 0);
        if( e2==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
        e2->i = e1->i;
        e2->r = set.nElem;
      }
      bMore = 1;
    }
  }while( bMore );

  aE = sqlite3_malloc64(sizeof(RHashElem*)*set.nElem);
  aiCmd = sqlite3_malloc64(sizeof(int)*set.nElem);
  if( aE==0 || aiCmd==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  {
    RHashElem *e;
    RHASH_EACH(&set, i, e){ aE[(int)e->r-1] = e; nE++; }
  }

  /* The keys to read come first (a watched read may have told a key's
  ** type already), grouped by database for WATCH. */
  for(i=0; i<nE; i++){
    RHashElem *eSeen = rhashFind(&t->seenType, aE[i]->iDb, aE[i]->zKey,
                                 aE[i]->nKey);
    if( aE[i]->i<0 ) continue;
    if( eSeen && (aE[i]->i==RT_NONE || eSeen->i==RT_NONE) ) continue;
    /* Stable: move aE[i] down to aE[nF]. */
    { RHashElem *t0 = aE[i]; for(j=i; j>nF; j--) aE[j] = aE[j-1]; aE[nF] = t0; }
    nF++;
  }
  for(i=0; i<nF; i++){
    int iDb = aE[i]->iDb, n = 0;
    if( i>0 && aE[i-1]->iDb==iDb ) continue;
    for(j=i; j<nF; j++){
      if( aE[j]->iDb==iDb ){
        RHashElem *t0 = aE[j];
        int k;
        for(k=j; k>i+n; k--) aE[k] = aE[k-1];
        aE[i+n] = t0;
        n++;
      }
    }
    pipeWatch(&P, iDb, &aE[i], n);
  }
  for(i=0; i<nE; i++){
    aiCmd[i] = -1;
    if( i>=nF ) continue;
    aiCmd[i] = P.nCmd;
    pipeCmd(&P, aE[i]->iDb, "TYPE");
    pipeArg(&P, aE[i]->zKey, aE[i]->nKey);
    pipeCmd(&P, aE[i]->iDb, "TTL");
    pipeArg(&P, aE[i]->zKey, aE[i]->nKey);
    if( aE[i]->i!=RT_NONE ){
      pipeFetchWhole(&P, aE[i]->iDb, (int)aE[i]->i, aE[i]->zKey, aE[i]->nKey);
    }
  }
  if( P.rc ){
    rc = P.rc;
    goto cleanup;
  }
  if( P.nCmd>0 ){
    rc = pipeRun(p, &P, pzErr);
    if( rc ) goto cleanup;
    t->bWatched = 1;
  }
  for(i=0; i<P.nCmd; i++){
    redisReply *r = P.apReply[i];
    if( r->type==REDIS_REPLY_ERROR && !isWrongType(r) ){
      pipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }

  /* The shadows as the server has them. */
  for(i=0; i<nE && rc==SQLITE_OK; i++){
    RedisShadow *sh = sqlite3_malloc64(sizeof(RedisShadow));
    RHashElem *e;
    if( sh==0 ){ rc = SQLITE_NOMEM; break; }
    memset(sh, 0, sizeof(*sh));
    shadowDrop(t, aE[i]->iDb, aE[i]->zKey, aE[i]->nKey);
    e = rhashAdd(&t->shadow, aE[i]->iDb, aE[i]->zKey, aE[i]->nKey, 0);
    if( e==0 ){ shadowFree(sh); rc = SQLITE_NOMEM; break; }
    e->pVal = sh;
    if( aiCmd[i]<0 && aE[i]->i<0 ){
      shadowClear(sh);              /* Overwritten first: start empty */
    }else if( aiCmd[i]<0 ){
      RHashElem *eSeen = rhashFind(&t->seenType, aE[i]->iDb, aE[i]->zKey,
                                   aE[i]->nKey);
      shadowClear(sh);
      sh->eType = (int)eSeen->i;
      sh->bContent = sh->eType==RT_NONE;
    }else{
      int k = aiCmd[i];
      rc = shadowFill(sh, P.apReply[k], P.apReply[k+1],
                      aE[i]->i!=RT_NONE ? P.apReply[k+2] : 0, (int)aE[i]->i);
      if( rc==SQLITE_ERROR ){
        rdSetError(pzErr, "unexpected reply to TYPE", 0);
      }
    }
  }
  if( rc ){
    /* Half-built shadows would lie: drop them all. */
    for(i=0; i<nE; i++) shadowDrop(t, aE[i]->iDb, aE[i]->zKey, aE[i]->nKey);
    goto cleanup;
  }

  /* Replay the queue on them. */
  for(i=0; i<t->nOp; i++){
    RedisOp *pOp = &t->aOp[i];
    if( rhashFind(&set, pOp->iDb, pOp->key.z, pOp->key.n) ) pOp->bSkip = 0;
  }
  for(i=0; i<t->nOp && rc==SQLITE_OK; i++){
    RedisOp *pOp = &t->aOp[i];
    RedisShadow *sh, *sh2 = 0;
    char *zErr = 0;
    int rc2;
    if( pOp->bSkip ) continue;
    if( !rhashFind(&set, pOp->iDb, pOp->key.z, pOp->key.n) ) continue;
    sh = shadowGet(t, pOp->iDb, pOp->key.z, pOp->key.n);
    if( pOp->eOp==ROP_RENAME ){
      sh2 = shadowGet(t, pOp->iDb, pOp->aArg[0].z, pOp->aArg[0].n);
    }
    rc2 = shadowApply(pOp, sh, sh2, &zErr);
    if( rc2==SQLITE_CONSTRAINT && pOp->bIgnore ){
      /* INSERT OR IGNORE: the row's commands are dropped. */
      for(j=i; j<t->nOp && t->aOp[j].iRow==pOp->iRow; j++){
        RedisOp *pO2 = &t->aOp[j];
        t->aOp[j].bSkip = 1;
        if( j>i && !rhashFind(&set, pO2->iDb, pO2->key.z, pO2->key.n) ){
          shadowDrop(t, pO2->iDb, pO2->key.z, pO2->key.n);
        }
      }
      sqlite3_free(zErr);
      continue;
    }
    if( rc2==SQLITE_DONE ){
      rdSetError(&zErr, "internal error: a check needed content that was"
                 " not read", 0);
      rc2 = SQLITE_ERROR;
    }
    if( rc2!=SQLITE_OK ){
      if( rc2!=SQLITE_NOMEM && t->zDoom==0 ) t->zDoom = fedStrdup(zErr, -1);
      if( rc2!=SQLITE_NOMEM ){
        sqlite3_free(*pzErr);
        *pzErr = zErr;
        zErr = 0;
        rc2 = SQLITE_ERROR;
      }
      rc = rc2;
    }
    sqlite3_free(zErr);
  }
  if( rc ){
    for(i=0; i<nE; i++) shadowDrop(t, aE[i]->iDb, aE[i]->zKey, aE[i]->nKey);
  }

cleanup:
  pipeFree(&P);
  sqlite3_free(aE);
  sqlite3_free(aiCmd);
  rhashClear(&set);
  return rc;
}

/**************************************************************************
** Scans.  The keys come from the plan (key = / IN: no SCAN at all) or
** from SCAN MATCH ... COUNT ...; each batch pipelines the reads of the
** keys of the previous SCAN reply with the next SCAN, so a batch costs one
** round trip.  Rows point into the batch's replies (or into copies, for
** rows read through a shadow) until the next batch.  The replies are built
** in two arenas (RReplyArena) used in turn: a batch's pipeline goes to the
** one that does not hold the SCAN reply whose keys the batch reads, so
** resetting it frees only replies that no row points to any more.
*/

/* A pushed condition checked here, with its values copied from xFilter. */
struct RedisTerm {
  int eKind;                    /* RC_KEY, RC_FIELD (field or member),
                                ** RC_SCORE or RC_IDX */
  int op;                       /* FED_OP_* */
  RHash set;                    /* EQ/IN: (class, bytes) of the values */
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

static void termsFree(RedisCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nTerm; i++){
    rhashClear(&pCsr->aTerm[i].set);
    sqlite3_free(pCsr->aTerm[i].zGlob);
  }
  sqlite3_free(pCsr->aTerm);
  pCsr->aTerm = 0;
  pCsr->nTerm = 0;
}

static void batchFree(RedisCursor *pCsr){
  pipeClear(&pCsr->P);
  arenaFree(&pCsr->arena);
  pCsr->nRow = pCsr->iRow = 0;
  pCsr->nFv = 0;
  pCsr->pOldKeys = 0;
}

static void cursorReset(RedisCursor *pCsr){
  int i;
  batchFree(pCsr);
  pCsr->pScanKeys = 0;
  replyArenaReset(&pCsr->aReplies[0]);
  replyArenaReset(&pCsr->aReplies[1]);
  for(i=0; i<pCsr->nKey; i++) rbufFree(&pCsr->aKey[i]);
  sqlite3_free(pCsr->aKey);
  pCsr->aKey = 0;
  pCsr->nKey = pCsr->iKey = 0;
  for(i=0; i<pCsr->nSub; i++) rbufFree(&pCsr->aSub[i]);
  sqlite3_free(pCsr->aSub);
  pCsr->aSub = 0;
  pCsr->nSub = 0;
  sqlite3_free(pCsr->zMatch);
  pCsr->zMatch = 0;
  termsFree(pCsr);
  keySetClear(&pCsr->seen);
  keySetClear(&pCsr->tailSet);
  for(i=0; i<pCsr->nTail; i++) rbufFree(&pCsr->aTail[i]);
  sqlite3_free(pCsr->aTail);
  pCsr->aTail = 0;
  pCsr->nTail = 0;
  pCsr->bEof = 1;
  pCsr->bEmpty = pCsr->bNamed = pCsr->bDone = 0;
  pCsr->bLo = pCsr->bHi = pCsr->bLoExcl = pCsr->bHiExcl = 0;
  pCsr->iIdxLo = 0;
  pCsr->iIdxHi = -1;
  pCsr->nLimit = -1;
  pCsr->nOffset = pCsr->nPassed = 0;
  pCsr->bScanStarted = pCsr->bScanDone = pCsr->bTailDone = 0;
  pCsr->iPending = 0;
  memcpy(pCsr->zCursor, "0", 2);
}

static int rdOpen(FedCursor *pFedCsr, char **pzErr){
  RedisCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  RedisTable *pRt = (RedisTable*)pFedCsr->pTab->pStoreTab;
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->pFed = pFedCsr;
  pCsr->pRt = pRt;
  pCsr->bEof = 1;
  pCsr->nLimit = -1;
  pCsr->iIdxHi = -1;
  /* Rows a previous statement read for writing are no longer needed once
  ** no scan of this table is open. */
  if( pRt->nOpenCsr==0 ) rhashClear(&pRt->ident);
  pRt->nOpenCsr++;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

static void rdClose(FedCursor *pFedCsr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorReset(pCsr);
  pipeFree(&pCsr->P);
  replyArenaFree(&pCsr->aReplies[0]);
  replyArenaFree(&pCsr->aReplies[1]);
  sqlite3_free(pCsr->aRow);
  sqlite3_free(pCsr->aFv);
  sqlite3_free((void*)pCsr->azK);
  sqlite3_free(pCsr->anK);
  sqlite3_free(pCsr->aiCmd);
  sqlite3_free(pCsr->aReq);
  pCsr->pRt->nOpenCsr--;
  sqlite3_free(pCsr);
  pFedCsr->pStoreCsr = 0;
}

/*
** The class and bytes an = value selects on a text column (key, field,
** member): 1 for TEXT, 2 for BLOB, 0 when no row can be equal (NULL, or
** text that is not valid UTF-8: such a key reads as a BLOB), -1 when the
** value cannot be expressed (a number compared loosely: its affinity is
** not known here).  Numbers compared exactly are literals, converted to
** text as SQLite's TEXT affinity does.
*/
static int eqClass(sqlite3_value *v, int bExact, const char **pz, int *pn){
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL:
      return 0;
    case SQLITE_INTEGER: case SQLITE_FLOAT:
      if( !bExact ) return -1;
      *pz = (const char*)sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      return *pz ? 1 : -2;
    case SQLITE_BLOB:
      *pz = (const char*)sqlite3_value_blob(v);
      *pn = sqlite3_value_bytes(v);
      if( *pz==0 ) *pz = "";
      return isTextBytes(*pz, *pn) ? 0 : 2;
    default:
      *pz = (const char*)sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      if( *pz==0 ) return -2;
      return isTextBytes(*pz, *pn) ? 1 : 0;
  }
}

/* Add a value to a set of values, remembering the order (elem.i). */
static int setAdd(RHash *pSet, int eCls, const char *z, int n){
  int bNew = 0;
  RHashElem *e = rhashAdd(pSet, eCls, z, n, &bNew);
  if( e==0 ) return 1;
  if( bNew ) e->i = pSet->nElem-1;
  return 0;
}

/* Collect the values of an = or IN term into pSet (class as iDb).
** Returns 1 if usable, 0 if it cannot be expressed, -2 on OOM. */
static int termValues(const FedPlanTerm *t, sqlite3_value *pVal, RHash *pSet){
  sqlite3_value *pV;
  int rc;
  if( t->op==FED_OP_EQ ){
    const char *z;
    int n, eCls = eqClass(pVal, t->bExact, &z, &n);
    if( eCls==-2 ) return -2;
    if( eCls<0 ) return 0;
    if( eCls>0 && setAdd(pSet, eCls, z, n) ) return -2;
    return 1;
  }
  for(rc=sqlite3_vtab_in_first(pVal, &pV); rc==SQLITE_OK && pV;
      rc=sqlite3_vtab_in_next(pVal, &pV)){
    const char *z;
    int n, eCls = eqClass(pV, t->bExact, &z, &n);
    if( eCls==-2 ) return -2;
    if( eCls<0 ) return 0;
    if( eCls>0 && setAdd(pSet, eCls, z, n) ) return -2;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_DONE ) return rc==SQLITE_NOMEM ? -2 : 0;
  return 1;
}

/* Copy the values of pSet into an array of RBuf (the named keys). */
static int setToArray(RHash *pSet, RBuf **paOut, int *pnOut){
  RHashElem *e;
  int i, n = 0;
  RBuf *a = sqlite3_malloc64(sizeof(RBuf)*(pSet->nElem+1));
  if( a==0 ) return SQLITE_NOMEM;
  memset(a, 0, sizeof(RBuf)*(pSet->nElem+1));
  RHASH_EACH(pSet, i, e){
    if( rbufSet(&a[e->i], e->zKey, e->nKey) ){
      for(n=0; n<pSet->nElem; n++) rbufFree(&a[n]);
      sqlite3_free(a);
      return SQLITE_NOMEM;
    }
  }
  n = pSet->nElem;
  *paOut = a;
  *pnOut = n;
  return SQLITE_OK;
}

/* A number-valued term: *pbInt and the value; 0 if not a number, -1 if
** out of memory. */
static int termNumber(sqlite3_value *pVal, int *pbInt, i64 *piVal,
                      double *prVal){
  sqlite3_value *pDup = 0;
  int eType = sqlite3_value_type(pVal);
  int bOk = 1;
  if( eType==SQLITE_TEXT ){
    pDup = sqlite3_value_dup(pVal);
    if( pDup==0 ) return -1;
    eType = sqlite3_value_numeric_type(pDup);
    pVal = pDup;
  }
  if( eType==SQLITE_INTEGER ){
    *pbInt = 1;
    *piVal = sqlite3_value_int64(pVal);
    *prVal = (double)*piVal;
  }else if( eType==SQLITE_FLOAT ){
    *pbInt = 0;
    *prVal = sqlite3_value_double(pVal);
  }else{
    bOk = 0;
  }
  sqlite3_value_free(pDup);
  return bOk;
}

/* Narrow the score bounds by "score op value" (a superset when the value
** is an integer no double holds exactly). */
static void scoreBound(RedisCursor *pCsr, int op, int bInt, i64 iVal,
                       double rVal){
  double d = rVal;
  int bExactD = !bInt || (d>-9223372036854775808.0
                          && d<9223372036854775808.0 && (i64)d==iVal);
  int bLo = op==FED_OP_GT || op==FED_OP_GE || op==FED_OP_EQ;
  int bHi = op==FED_OP_LT || op==FED_OP_LE || op==FED_OP_EQ;
  if( bLo ){
    double lo = bExactD ? d : nextafter(d, -HUGE_VAL);
    int bExcl = bExactD && op==FED_OP_GT;
    if( !pCsr->bLo || lo>pCsr->rLo || (lo==pCsr->rLo && bExcl) ){
      pCsr->rLo = lo;
      pCsr->bLoExcl = bExcl;
      pCsr->bLo = 1;
    }
  }
  if( bHi ){
    double hi = bExactD ? d : nextafter(d, HUGE_VAL);
    int bExcl = bExactD && op==FED_OP_LT;
    if( !pCsr->bHi || hi<pCsr->rHi || (hi==pCsr->rHi && bExcl) ){
      pCsr->rHi = hi;
      pCsr->bHiExcl = bExcl;
      pCsr->bHi = 1;
    }
  }
}

/* Narrow the list bounds by "idx op value".  Indexes are never negative,
** so an upper bound below 0 leaves nothing (computed without overflow:
** idx < -9223372036854775808 has no integer bound). */
static void idxBound(RedisCursor *pCsr, int op, int bInt, i64 iVal,
                     double rVal){
  i64 lo = 0, hi = 0;
  int bLo = 0, bHi = 0;
  if( bInt ){
    switch( op ){
      case FED_OP_GT:
        if( iVal==LLONG_MAX ){ pCsr->bEmpty = 1; }
        else{ lo = iVal+1; bLo = 1; }
        break;
      case FED_OP_GE: lo = iVal; bLo = 1; break;
      case FED_OP_LT:
        if( iVal<=0 ){ pCsr->bEmpty = 1; }
        else{ hi = iVal-1; bHi = 1; }
        break;
      case FED_OP_LE: hi = iVal; bHi = 1; break;
      case FED_OP_EQ: lo = hi = iVal; bLo = bHi = 1; break;
    }
  }else{
    double f = floor(rVal), c = ceil(rVal);
    if( rVal>=9.2e18 ){ f = c = 9.2e18; }
    if( rVal<=-9.2e18 ){ f = c = -9.2e18; }
    switch( op ){
      case FED_OP_GT: lo = (i64)f+1; bLo = 1; break;
      case FED_OP_GE: lo = (i64)c; bLo = 1; break;
      case FED_OP_LT: hi = (i64)c-1; bHi = 1; break;
      case FED_OP_LE: hi = (i64)f; bHi = 1; break;
      case FED_OP_EQ:
        if( f==rVal ){ lo = hi = (i64)f; bLo = bHi = 1; }
        else{ pCsr->bEmpty = 1; }
        break;
    }
  }
  if( bLo && lo>pCsr->iIdxLo ) pCsr->iIdxLo = lo;
  if( bHi ){
    if( hi<0 ) pCsr->bEmpty = 1;
    else if( pCsr->iIdxHi<0 || hi<pCsr->iIdxHi ) pCsr->iIdxHi = hi;
  }
}

/*
** Turn the plan and xFilter's values into what to read: named keys or a
** SCAN pattern, named fields/members, score and index bounds, LIMIT, and
** the conditions to check here.
*/
static int cursorPlan(RedisCursor *pCsr, int argc, sqlite3_value **argv,
                      char **pzErr){
  FedTable *pTab = pCsr->pFed->pTab;
  RedisTable *pRt = pCsr->pRt;
  const FedPlan *pPlan = pCsr->pFed->pPlan;
  int i, rc = SQLITE_OK;
  int bKeyDone = 0, bSubDone = 0;
  int nBest = matchScore(pRt->zPattern, pRt->nPattern);
  (void)pzErr;
  /* Builds with LIKE_DOESNT_MATCH_BLOBS (Debian's) never GLOB a blob. */
  pCsr->bNoBlobGlob = sqlite3_compileoption_used("LIKE_DOESNT_MATCH_BLOBS");

  pCsr->zMatch = fedStrdup(pRt->zPattern, pRt->nPattern);
  if( pCsr->zMatch==0 ) return SQLITE_NOMEM;
  if( pPlan->nTerm>0 ){
    pCsr->aTerm = sqlite3_malloc64(sizeof(RedisTerm)*pPlan->nTerm);
    if( pCsr->aTerm==0 ) return SQLITE_NOMEM;
    memset(pCsr->aTerm, 0, sizeof(RedisTerm)*pPlan->nTerm);
  }
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK && !pCsr->bEmpty; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal;
    int eKind;
    if( t->iCol<0 || t->iCol>=pTab->nCol || t->iArg<0 ) continue;
    if( t->iArg>=argc ) return SQLITE_CORRUPT_VTAB;
    pVal = argv[t->iArg];
    eKind = pTab->aCol[t->iCol].eKind;
    if( eKind==RC_VALUE ) eKind = RC_FIELD;     /* a set/zset member */
    if( (eKind==RC_KEY || eKind==RC_FIELD)
     && (t->op==FED_OP_EQ || t->op==FED_OP_IN) ){
      RHash set;
      int bUse;
      memset(&set, 0, sizeof(set));
      bUse = termValues(t, pVal, &set);
      if( bUse==-2 ){ rhashClear(&set); return SQLITE_NOMEM; }
      if( bUse && set.nElem==0 ){
        pCsr->bEmpty = 1;
      }else if( bUse && eKind==RC_KEY && !bKeyDone ){
        bKeyDone = 1;
        pCsr->bNamed = 1;
        rc = setToArray(&set, &pCsr->aKey, &pCsr->nKey);
      }else if( bUse && eKind==RC_FIELD && !bSubDone ){
        bSubDone = 1;
        rc = setToArray(&set, &pCsr->aSub, &pCsr->nSub);
      }
      if( bUse && t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = eKind;
        pT->op = FED_OP_EQ;
        pT->set = set;
      }else{
        rhashClear(&set);
      }
    }else if( eKind==RC_KEY && (t->op==FED_OP_GLOB || t->op==FED_OP_LIKE) ){
      const char *zPat;
      char *zMatch;
      int bNone = 0;
      /* Such a build matches no blob pattern either.  Asked before
      ** sqlite3_value_text(), which makes the blob read as text. */
      if( pCsr->bNoBlobGlob && sqlite3_value_type(pVal)==SQLITE_BLOB ){
        pCsr->bEmpty = 1;
        break;
      }
      zPat = (const char*)sqlite3_value_text(pVal);
      if( zPat==0 ){
        if( sqlite3_value_type(pVal)!=SQLITE_NULL ) return SQLITE_NOMEM;
        pCsr->bEmpty = 1;
        break;
      }
      zMatch = t->op==FED_OP_GLOB ? globToMatch(zPat, &bNone)
                                  : likeToMatch(zPat);
      if( zMatch==0 ) return SQLITE_NOMEM;
      if( bNone || matchDisjoint(pRt->zPattern, zMatch) ){
        pCsr->bEmpty = 1;
      }else{
        int nScore = matchScore(zMatch, (int)strlen(zMatch));
        if( nScore>nBest ){
          nBest = nScore;
          sqlite3_free(pCsr->zMatch);
          pCsr->zMatch = zMatch;
          zMatch = 0;
        }
      }
      sqlite3_free(zMatch);
      if( t->op==FED_OP_GLOB && t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = RC_KEY;
        pT->op = FED_OP_GLOB;
        pT->zGlob = fedStrdup(zPat, -1);
        if( pT->zGlob==0 ) return SQLITE_NOMEM;
      }
    }else if( (eKind==RC_SCORE || eKind==RC_IDX) && t->op!=FED_OP_IN ){
      int bInt = 0;
      i64 iVal = 0;
      double rVal = 0.0;
      if( sqlite3_value_type(pVal)==SQLITE_NULL ){
        if( t->bExact ) pCsr->bEmpty = 1;
        continue;
      }
      rc = termNumber(pVal, &bInt, &iVal, &rVal);
      if( rc<0 ) return SQLITE_NOMEM;
      if( rc==0 ) continue;
      rc = SQLITE_OK;
      if( eKind==RC_SCORE ) scoreBound(pCsr, t->op, bInt, iVal, rVal);
      else idxBound(pCsr, t->op, bInt, iVal, rVal);
      if( t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = eKind;
        pT->op = t->op;
        pT->bInt = bInt;
        pT->iVal = iVal;
        pT->rVal = rVal;
      }
    }
  }
  if( rc ) return rc;
  if( pCsr->bLo && pCsr->bHi && (pCsr->rLo>pCsr->rHi
      || (pCsr->rLo==pCsr->rHi && (pCsr->bLoExcl || pCsr->bHiExcl))) ){
    pCsr->bEmpty = 1;
  }
  if( pCsr->iIdxHi>=0 && pCsr->iIdxHi<pCsr->iIdxLo ) pCsr->bEmpty = 1;
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    pCsr->nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( pCsr->nLimit==0 ) pCsr->bEmpty = 1;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    pCsr->nOffset = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( pCsr->nOffset<0 ) pCsr->nOffset = 0;
  }
  /* The declared fields read (fields=). */
  pCsr->nFieldUsed = 0;
  for(i=0; i<pRt->nField; i++){
    if( fedPlanColUsed(pPlan, pRt->iFirstField+i) ){
      pCsr->aField[pCsr->nFieldUsed++] = i;
    }
  }
  return SQLITE_OK;
}

/* The key passes the table's key space and the conditions on keys. */
static int keyWanted(RedisCursor *pCsr, const char *z, int n){
  RedisTable *pRt = pCsr->pRt;
  int i;
  if( !keyInSpace(pRt->zPattern, pRt->nPattern, z, n) ) return 0;
  if( n>=(int)sizeof(RD_RESERVED)-1
   && memcmp(z, RD_RESERVED, sizeof(RD_RESERVED)-1)==0 ){
    return 0;
  }
  for(i=0; i<pCsr->nTerm; i++){
    RedisTerm *pT = &pCsr->aTerm[i];
    if( pT->eKind!=RC_KEY ) continue;
    if( pT->op==FED_OP_EQ ){
      if( !rhashFind(&pT->set, isTextBytes(z, n) ? 1 : 2, z, n) ) return 0;
    }else if( pT->op==FED_OP_GLOB ){
      /* SQLite's GLOB sees a blob key up to its first NUL byte. */
      char zBuf[256];
      char *zKey;
      int bMatch;
      if( pCsr->bNoBlobGlob && !isTextBytes(z, n) ) return 0;
      zKey = n<(int)sizeof(zBuf) ? zBuf : sqlite3_malloc64((u64)n+1);
      if( zKey==0 ) return -1;
      memcpy(zKey, z, n);
      zKey[n] = 0;
      bMatch = sqlite3_strglob(pT->zGlob, zKey)==0;
      if( zKey!=zBuf ) sqlite3_free(zKey);
      if( !bMatch ) return 0;
    }
  }
  return 1;
}

/* The row passes the conditions on fields, members, scores, indexes. */
static int rowWanted(RedisCursor *pCsr, const RedisRow *pRow){
  int i;
  for(i=0; i<pCsr->nTerm; i++){
    RedisTerm *pT = &pCsr->aTerm[i];
    int c;
    if( pT->eKind==RC_FIELD ){
      if( pRow->zSub==0 ) return 0;
      if( !rhashFind(&pT->set, isTextBytes(pRow->zSub, pRow->nSub) ? 1 : 2,
                     pRow->zSub, pRow->nSub) ){
        return 0;
      }
      continue;
    }
    if( pT->eKind==RC_SCORE ){
      if( pT->bInt ){
        c = -intDoubleCmp(pT->iVal, pRow->rScore);
      }else{
        c = pRow->rScore<pT->rVal ? -1 : pRow->rScore>pT->rVal;
      }
    }else if( pT->eKind==RC_IDX ){
      if( pT->bInt ){
        c = pRow->iIdx<pT->iVal ? -1 : pRow->iIdx>pT->iVal;
      }else{
        c = intDoubleCmp(pRow->iIdx, pT->rVal);
      }
    }else{
      continue;
    }
    switch( pT->op ){
      case FED_OP_EQ: if( c!=0 ) return 0; break;
      case FED_OP_LT: if( c>=0 ) return 0; break;
      case FED_OP_LE: if( c>0 ) return 0; break;
      case FED_OP_GT: if( c<=0 ) return 0; break;
      case FED_OP_GE: if( c<0 ) return 0; break;
    }
  }
  return 1;
}

/* Add a row to the batch if it passes the conditions, OFFSET and LIMIT.
** The row is copied; its pointers must live as long as the batch. */
static int batchRow(RedisCursor *pCsr, const RedisRow *pRow){
  if( pCsr->bDone ) return SQLITE_OK;
  if( !rowWanted(pCsr, pRow) ) return SQLITE_OK;
  pCsr->nPassed++;
  if( pCsr->nPassed<=pCsr->nOffset ) return SQLITE_OK;
  if( pCsr->nLimit>=0 && pCsr->nPassed>=pCsr->nOffset+pCsr->nLimit ){
    pCsr->bDone = 1;
  }
  if( pCsr->nRow>=pCsr->nRowAlloc ){
    int nNew = pCsr->nRowAlloc ? pCsr->nRowAlloc*2 : 64;
    RedisRow *a = sqlite3_realloc64(pCsr->aRow, sizeof(RedisRow)*nNew);
    if( a==0 ) return SQLITE_NOMEM;
    pCsr->aRow = a;
    pCsr->nRowAlloc = nNew;
  }
  pCsr->aRow[pCsr->nRow++] = *pRow;
  return SQLITE_OK;
}

/* Room for nField values of fields= in the batch; the index of the first,
** or -1 on OOM. */
static int batchFv(RedisCursor *pCsr){
  int n = pCsr->pRt->nField;
  int iFirst = pCsr->nFv;
  if( pCsr->nFv+n>pCsr->nFvAlloc ){
    int nNew = pCsr->nFvAlloc ? pCsr->nFvAlloc*2 : 64;
    RedisFv *a;
    while( nNew<pCsr->nFv+n ) nNew *= 2;
    a = sqlite3_realloc64(pCsr->aFv, sizeof(RedisFv)*nNew);
    if( a==0 ) return -1;
    pCsr->aFv = a;
    pCsr->nFvAlloc = nNew;
  }
  memset(&pCsr->aFv[iFirst], 0, sizeof(RedisFv)*n);
  pCsr->nFv += n;
  return iFirst;
}

/* The error for a named key of another type. */
static void wrongTypeError(RedisCursor *pCsr, const char *z, int n,
                           const char *zHolds, char **pzErr){
  char *zKey = renderKey(z, n);
  fedSetError(pzErr, "%s: key %s holds a %s, not a %s (table \"%s\")",
      RD_STORE, zKey, zHolds, typeName(modeType(pCsr->pRt->eMode)),
      pCsr->pFed->pTab->zName);
  sqlite3_free(zKey);
}

/* The rows of a key read through its shadow (copied into the arena). */
static int shadowRows(RedisCursor *pCsr, const char *zKey0, int nKey,
                      RedisShadow *sh, const char *zTomb, int nTomb,
                      char **pzErr){
  RedisTable *pRt = pCsr->pRt;
  RArena *pA = &pCsr->arena;
  RedisRow row;
  RHashElem *e;
  int i, rc = SQLITE_OK;
  int eWant = modeType(pRt->eMode);
  const char *zKey;
  if( sh->eType==RT_NONE ) return SQLITE_OK;
  if( pRt->eMode!=RM_ANY && sh->eType!=eWant ){
    if( pCsr->bNamed ){
      wrongTypeError(pCsr, zKey0, nKey, typeName(sh->eType), pzErr);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  zKey = arenaDup(pA, zKey0, nKey);
  if( zKey==0 ) return SQLITE_NOMEM;
  memset(&row, 0, sizeof(row));
  row.zKey = zKey;
  row.nKey = nKey;
  row.iTtl = sh->iTtl;
  switch( pRt->eMode ){
    case RM_ANY:
      row.zType = typeName(sh->eType);
      if( sh->eType==RT_STRING ){
        row.zVal = arenaDup(pA, sh->str.z, sh->str.n);
        row.nVal = sh->str.n;
        if( row.zVal==0 ) return SQLITE_NOMEM;
      }
      return batchRow(pCsr, &row);
    case RT_STRING:
      row.zVal = arenaDup(pA, sh->str.z, sh->str.n);
      row.nVal = sh->str.n;
      if( row.zVal==0 ) return SQLITE_NOMEM;
      return batchRow(pCsr, &row);
    case RM_FIELDS:
      row.iFv = batchFv(pCsr);
      if( row.iFv<0 ) return SQLITE_NOMEM;
      for(i=0; i<pRt->nField; i++){
        const char *zF = pCsr->pFed->pTab->aCol[pRt->iFirstField+i].zName;
        RHashElem *eF = rhashFind(&sh->map, 0, zF, (int)strlen(zF));
        if( eF ){
          RBuf *pV = (RBuf*)eF->pVal;
          pCsr->aFv[row.iFv+i].z = arenaDup(pA, pV->z, pV->n);
          pCsr->aFv[row.iFv+i].n = pV->n;
          if( pCsr->aFv[row.iFv+i].z==0 ) return SQLITE_NOMEM;
        }
      }
      return batchRow(pCsr, &row);
    case RT_LIST:
      for(i=0; i<sh->nList && rc==SQLITE_OK; i++){
        RBuf *pV = &sh->aList[i];
        /* Elements deleted by this statement wait for their LREM. */
        if( rbufEq(pV, zTomb, nTomb) ) continue;
        row.iIdx = i;
        row.zVal = arenaDup(pA, pV->z, pV->n);
        row.nVal = pV->n;
        if( row.zVal==0 ) return SQLITE_NOMEM;
        rc = batchRow(pCsr, &row);
      }
      return rc;
    default:
      RHASH_EACH(&sh->map, i, e){
        if( rc ) break;
        row.zSub = arenaDup(pA, e->zKey, e->nKey);
        row.nSub = e->nKey;
        if( row.zSub==0 ) return SQLITE_NOMEM;
        if( pRt->eMode==RT_HASH ){
          RBuf *pV = (RBuf*)e->pVal;
          row.zVal = arenaDup(pA, pV->z, pV->n);
          row.nVal = pV->n;
          if( row.zVal==0 ) return SQLITE_NOMEM;
        }else{
          row.zVal = row.zSub;
          row.nVal = row.nSub;
          row.rScore = e->r;
        }
        rc = batchRow(pCsr, &row);
      }
      return rc;
  }
}

/* The Redis type of a named key that gave WRONGTYPE, for the message. */
static void namedWrongType(RedisCursor *pCsr, RedisConn *p, const char *z,
                           int n, char **pzErr){
  RedisPipe P;
  char *zErr = 0;
  const char *zHolds = "value of another type";
  pipeInit(&P);
  pipeCmd(&P, pCsr->iDb, "TYPE");
  pipeArg(&P, z, n);
  if( pipeRun(p, &P, &zErr)==SQLITE_OK
   && P.apReply[0]->type==REDIS_REPLY_STATUS ){
    zHolds = P.apReply[0]->str;
  }
  wrongTypeError(pCsr, z, n, zHolds, pzErr);
  sqlite3_free(zErr);
  pipeFree(&P);
}

/* Append the commands that read one key (not the MGET of a string SCAN
** batch) to P. */
static void fetchCmds(RedisCursor *pCsr, RedisPipe *P, const char *z, int n,
                      int bTtl){
  RedisTable *pRt = pCsr->pRt;
  FedTable *pTab = pCsr->pFed->pTab;
  int iDb = pCsr->iDb, i;
  char zLo[40], zHi[40];
  switch( pRt->eMode ){
    case RT_STRING:
      if( pCsr->bNamed ){
        pipeCmd(P, iDb, "GET");
        pipeArg(P, z, n);
      }
      break;
    case RT_HASH:
      if( pCsr->aSub ){
        pipeCmd(P, iDb, "HMGET");
        pipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++) pipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
      }else{
        pipeCmd(P, iDb, "HGETALL");
        pipeArg(P, z, n);
      }
      break;
    case RM_FIELDS:
      if( pCsr->nFieldUsed>0 && !bTtl ){
        /* One command, where HMGET needs a TTL to tell a missing key from
        ** missing fields (keyRows() picks the fields read). */
        pipeCmd(P, iDb, "HGETALL");
        pipeArg(P, z, n);
        break;
      }
      if( pCsr->nFieldUsed>0 ){
        pipeCmd(P, iDb, "HMGET");
        pipeArg(P, z, n);
        for(i=0; i<pCsr->nFieldUsed; i++){
          pipeArg(P, pTab->aCol[pRt->iFirstField+pCsr->aField[i]].zName, -1);
        }
      }
      pipeCmd(P, iDb, "TTL");
      pipeArg(P, z, n);
      bTtl = 0;
      break;
    case RT_LIST:
      pipeCmd(P, iDb, "LRANGE");
      pipeArg(P, z, n);
      pipeArgInt(P, pCsr->iIdxLo);
      pipeArgInt(P, pCsr->iIdxHi);
      break;
    case RT_SET:
      if( pCsr->aSub ){
        pipeCmd(P, iDb, "SMISMEMBER");
        pipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++) pipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
      }else{
        pipeCmd(P, iDb, "SMEMBERS");
        pipeArg(P, z, n);
      }
      break;
    case RT_ZSET:
      if( pCsr->aSub ){
        pipeCmd(P, iDb, "ZMSCORE");
        pipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++) pipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
      }else if( pCsr->bLo || pCsr->bHi ){
        pipeCmd(P, iDb, "ZRANGEBYSCORE");
        pipeArg(P, z, n);
        if( pCsr->bLo ){
          zLo[0] = '(';
          doubleArg(pCsr->rLo, &zLo[1], sizeof(zLo)-1);
          pipeArgCopy(P, pCsr->bLoExcl ? zLo : &zLo[1], -1);
        }else{
          pipeArg(P, "-inf", 4);
        }
        if( pCsr->bHi ){
          zHi[0] = '(';
          doubleArg(pCsr->rHi, &zHi[1], sizeof(zHi)-1);
          pipeArgCopy(P, pCsr->bHiExcl ? zHi : &zHi[1], -1);
        }else{
          pipeArg(P, "+inf", 4);
        }
        pipeArg(P, "WITHSCORES", 10);
      }else{
        pipeCmd(P, iDb, "ZRANGE");
        pipeArg(P, z, n);
        pipeArg(P, "0", 1);
        pipeArg(P, "-1", 2);
        pipeArg(P, "WITHSCORES", 10);
      }
      break;
    case RM_ANY:
      pipeCmd(P, iDb, "TYPE");
      pipeArg(P, z, n);
      if( pRt->iValue>=0 && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iValue) ){
        pipeCmd(P, iDb, "GET");
        pipeArg(P, z, n);
      }
      break;
  }
  if( bTtl ){
    pipeCmd(P, iDb, "TTL");
    pipeArg(P, z, n);
  }
}

/* Remember the type a watched read saw, so that COMMIT need not ask. */
static void seenType(RedisConn *p, RedisCursor *pCsr, const char *z, int n,
                     int eType){
  if( pCsr->bWatch ){
    RHashElem *e = rhashAdd(&p->txn.seenType, pCsr->iDb, z, n, 0);
    if( e ) e->i = eType;       /* Out of memory: COMMIT asks again */
  }
}

static int keyArrayRows(RedisCursor *pCsr, redisReply *r, RedisRow *pRow,
                        int *pbFound);

/* Rows of one key from its replies, starting at command *piCmd (advanced
** past them); pMget is its element of a string batch's MGET. */
static int keyRows(RedisCursor *pCsr, RedisConn *p, const char *zKey,
                   int nKey, RedisPipe *P, int *piCmd, redisReply *pMget,
                   int bTtl, char **pzErr){
  RedisTable *pRt = pCsr->pRt;
  redisReply *r = 0, *rTtl = 0, *rVal = 0;
  RedisRow row;
  int i, rc = SQLITE_OK, iCmd = *piCmd;
  int eMode = pRt->eMode;
  int bAll = eMode==RM_FIELDS && pCsr->nFieldUsed>0 && !bTtl;  /* HGETALL */

  memset(&row, 0, sizeof(row));
  row.zKey = zKey;
  row.nKey = nKey;
  row.iTtl = -1;
  if( pMget ){
    r = pMget;
  }else if( eMode!=RM_FIELDS || pCsr->nFieldUsed>0 ){
    r = P->apReply[iCmd++];
  }
  if( eMode==RM_ANY && pRt->iValue>=0
   && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iValue) ){
    rVal = P->apReply[iCmd++];
  }
  if( (eMode==RM_FIELDS && !bAll) || bTtl ) rTtl = P->apReply[iCmd++];
  *piCmd = iCmd;

  if( r && r->type==REDIS_REPLY_ERROR ){
    if( !isWrongType(r) ){
      redisReply *rE = r;
      char *zMsg = sqlite3_mprintf("%.*s", (int)rE->len, rE->str);
      char *zK = renderKey(zKey, nKey);
      fedSetError(pzErr, "%s: %s (reading key %s)", RD_STORE,
                  zMsg ? zMsg : "", zK ? zK : "");
      sqlite3_free(zMsg);
      sqlite3_free(zK);
      return SQLITE_ERROR;
    }
    /* Another type: not a row of this table; an error if named. */
    if( pCsr->bNamed ){
      namedWrongType(pCsr, p, zKey, nKey, pzErr);
      return SQLITE_ERROR;
    }
    return SQLITE_OK;
  }
  if( rTtl && rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
    row.iTtl = rTtl->integer;
  }
  switch( eMode ){
    case RT_STRING:
      if( r->type!=REDIS_REPLY_STRING ){
        if( pMget==0 ) seenType(p, pCsr, zKey, nKey, RT_NONE);
        return SQLITE_OK;
      }
      seenType(p, pCsr, zKey, nKey, RT_STRING);
      row.zVal = r->str;
      row.nVal = (int)r->len;
      return batchRow(pCsr, &row);
    case RM_ANY:
      if( r->type!=REDIS_REPLY_STATUS ) return SQLITE_OK;
      seenType(p, pCsr, zKey, nKey, typeFromName(r->str, (int)r->len));
      if( typeFromName(r->str, (int)r->len)==RT_NONE ) return SQLITE_OK;
      row.zType = r->str;
      if( rVal && rVal->type==REDIS_REPLY_STRING ){
        row.zVal = rVal->str;
        row.nVal = (int)rVal->len;
      }
      return batchRow(pCsr, &row);
    case RM_FIELDS:
      if( bAll ){
        FedTable *pTab = pCsr->pFed->pTab;
        int j;
        if( r->type!=REDIS_REPLY_ARRAY || r->elements==0 ){
          seenType(p, pCsr, zKey, nKey, RT_NONE);
          return SQLITE_OK;
        }
        seenType(p, pCsr, zKey, nKey, RT_HASH);
        row.iFv = batchFv(pCsr);
        if( row.iFv<0 ) return SQLITE_NOMEM;
        for(i=0; i+1<(int)r->elements; i+=2){
          redisReply *f = r->element[i], *v = r->element[i+1];
          for(j=0; j<pCsr->nFieldUsed; j++){
            const char *zF = pTab->aCol[pRt->iFirstField+pCsr->aField[j]].zName;
            if( strlen(zF)==f->len && memcmp(zF, f->str, f->len)==0 ){
              pCsr->aFv[row.iFv+pCsr->aField[j]].z = v->str;
              pCsr->aFv[row.iFv+pCsr->aField[j]].n = (int)v->len;
              break;
            }
          }
        }
        return batchRow(pCsr, &row);
      }
      if( rTtl==0 || rTtl->type!=REDIS_REPLY_INTEGER || rTtl->integer==-2 ){
        seenType(p, pCsr, zKey, nKey, RT_NONE);
        return SQLITE_OK;
      }
      if( r ) seenType(p, pCsr, zKey, nKey, RT_HASH);
      row.iFv = batchFv(pCsr);
      if( row.iFv<0 ) return SQLITE_NOMEM;
      for(i=0; r && i<pCsr->nFieldUsed && i<(int)r->elements; i++){
        redisReply *v = r->element[i];
        if( v->type==REDIS_REPLY_STRING ){
          pCsr->aFv[row.iFv+pCsr->aField[i]].z = v->str;
          pCsr->aFv[row.iFv+pCsr->aField[i]].n = (int)v->len;
        }
      }
      return batchRow(pCsr, &row);
    default:
      break;
  }
  if( r->type!=REDIS_REPLY_ARRAY ) return SQLITE_OK;
  if( eMode==RT_HASH && pCsr->aSub==0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_HASH : RT_NONE);
  }else if( eMode==RT_SET && pCsr->aSub==0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_SET : RT_NONE);
  }else if( eMode==RT_LIST && pCsr->iIdxLo==0 && pCsr->iIdxHi<0 ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_LIST : RT_NONE);
  }else if( eMode==RT_ZSET && pCsr->aSub==0 && !pCsr->bLo && !pCsr->bHi ){
    seenType(p, pCsr, zKey, nKey, r->elements ? RT_ZSET : RT_NONE);
  }
  {
    int bFound = 0;
    rc = keyArrayRows(pCsr, r, &row, &bFound);
    /* A partial read that found something tells the type too. */
    if( rc==SQLITE_OK && bFound ) seenType(p, pCsr, zKey, nKey, modeType(eMode));
  }
  return rc;
}

/* The rows of an array reply (HGETALL, HMGET, LRANGE, SMEMBERS, ...). */
static int keyArrayRows(RedisCursor *pCsr, redisReply *r, RedisRow *pRow,
                        int *pbFound){
  RedisRow row = *pRow;
  int i, rc = SQLITE_OK, eMode = pCsr->pRt->eMode;
  for(i=0; i<(int)r->elements && rc==SQLITE_OK; i++){
    redisReply *e = r->element[i];
    switch( eMode ){
      case RT_HASH:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_STRING || i>=pCsr->nSub ) continue;
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
          row.zVal = e->str;
          row.nVal = (int)e->len;
        }else{
          if( i+1>=(int)r->elements ) continue;
          row.zSub = e->str;
          row.nSub = (int)e->len;
          row.zVal = r->element[i+1]->str;
          row.nVal = (int)r->element[i+1]->len;
          i++;
        }
        break;
      case RT_LIST:
        row.iIdx = pCsr->iIdxLo + i;
        row.zVal = e->str;
        row.nVal = (int)e->len;
        break;
      case RT_SET:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_INTEGER || e->integer!=1 || i>=pCsr->nSub ){
            continue;
          }
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
        }else{
          row.zSub = e->str;
          row.nSub = (int)e->len;
        }
        row.zVal = row.zSub;
        row.nVal = row.nSub;
        break;
      case RT_ZSET:
        if( pCsr->aSub ){
          if( e->type!=REDIS_REPLY_STRING || i>=pCsr->nSub ) continue;
          row.zSub = pCsr->aSub[i].z;
          row.nSub = pCsr->aSub[i].n;
          row.rScore = strtod(e->str, 0);
        }else{
          if( i+1>=(int)r->elements ) continue;
          row.zSub = e->str;
          row.nSub = (int)e->len;
          row.rScore = strtod(r->element[i+1]->str, 0);
          i++;
        }
        row.zVal = row.zSub;
        row.nVal = row.nSub;
        break;
    }
    *pbFound = 1;
    rc = batchRow(pCsr, &row);
  }
  return rc;
}

/* Number of keys of the last SCAN reply not yet taken. */
static int scanPending(RedisCursor *pCsr){
  redisReply *r = pCsr->pScanKeys;
  if( r==0 ) return 0;
  return (int)r->element[1]->elements - pCsr->iPending;
}

/* Add the SCAN command that continues this cursor's iteration to P. */
static void scanCmd(RedisCursor *pCsr, RedisPipe *P){
  RedisTable *pRt = pCsr->pRt;
  int eType = modeType(pRt->eMode);
  pipeCmd(P, pCsr->iDb, "SCAN");
  pipeArgCopy(P, pCsr->zCursor, -1);
  if( pCsr->zMatch[strspn(pCsr->zMatch, "*")]!=0 ){
    pipeArg(P, "MATCH", 5);
    pipeArg(P, pCsr->zMatch, -1);
  }
  pipeArg(P, "COUNT", 5);
  pipeArgInt(P, pRt->nScanCount);
  if( eType!=RT_NONE ){
    pipeArg(P, "TYPE", 4);
    pipeArg(P, typeName(eType), -1);
  }
  pCsr->bScanStarted = 1;
}

/* Take the reply of a SCAN: the next cursor, and its keys as pending. */
static int scanTake(RedisCursor *pCsr, RedisPipe *P, int iCmd, char **pzErr){
  redisReply *r = P->apReply[iCmd];
  if( r->type==REDIS_REPLY_ERROR ){
    pipeReplyError(P, iCmd, pzErr);
    return SQLITE_ERROR;
  }
  if( r->type!=REDIS_REPLY_ARRAY || r->elements!=2
   || r->element[0]->type!=REDIS_REPLY_STRING
   || r->element[1]->type!=REDIS_REPLY_ARRAY
   || r->element[0]->len>=sizeof(pCsr->zCursor) ){
    rdSetError(pzErr, "unexpected reply to SCAN", 0);
    return SQLITE_ERROR;
  }
  memcpy(pCsr->zCursor, r->element[0]->str, r->element[0]->len+1);
  pCsr->bScanDone = strcmp(pCsr->zCursor, "0")==0;
  /* The keys of the previous reply may be in use by this batch's rows. */
  pCsr->pOldKeys = pCsr->pScanKeys;
  pCsr->pScanKeys = r;
  pCsr->iScanArena = P->pReplies==&pCsr->aReplies[1];
  pCsr->iPending = 0;
  P->apReply[iCmd] = 0;
  return SQLITE_OK;
}

/* Run the cursor's pipeline, its replies in the arena that does not hold
** the SCAN reply still in use (emptied first). */
static int cursorPipeRun(RedisCursor *pCsr, RedisConn *p, char **pzErr){
  RReplyArena *pA = &pCsr->aReplies[!pCsr->iScanArena];
  replyArenaReset(pA);
  pCsr->P.pReplies = pA;
  return pipeRun(p, &pCsr->P, pzErr);
}

/*
** Read the next batch of rows into the cursor.  At the end of the keys
** (and of the transaction's own new keys) the cursor is at EOF.
*/
static int cursorFill(RedisCursor *pCsr, char **pzErr){
  FedTable *pTab = pCsr->pFed->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisConn *p = pTab->pServer ? (RedisConn*)pTab->pServer->pConn : 0;
  RedisTxn *t;
  const char **azK;
  int *anK, *aiCmd;
  ShadowReq *aReq;
  int rc = SQLITE_OK;
  int bTtl = pRt->iTtl>=0 && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iTtl);
  int eWant = pRt->eMode==RM_ANY ? RT_STRING : modeType(pRt->eMode);

  if( p==0 ){
    fedSetError(pzErr, "%s: connection to server \"%s\" lost", RD_STORE,
                pTab->zServer);
    return SQLITE_ERROR;
  }
  t = &p->txn;
  while( rc==SQLITE_OK ){
    int nK = 0, nClean = 0, nDirty = 0, i, iCmd, iScan = -1, iMget = -1;
    int nChunk;
    batchFree(pCsr);
    if( pCsr->bDone ) break;

    /* The keys of this batch. */
    nChunk = pCsr->bNamed ? RD_PIPE_KEYS : scanPending(pCsr);
    if( pCsr->nLimit>=0 && (pRt->eMode==RT_STRING || pRt->eMode==RM_ANY
                            || pRt->eMode==RM_FIELDS) ){
      i64 nLeft = pCsr->nOffset + pCsr->nLimit - pCsr->nPassed;
      if( nLeft<nChunk ) nChunk = nLeft<1 ? 1 : (int)nLeft;
    }
    if( pCsr->bNamed ){
      if( pCsr->iKey>=pCsr->nKey ) break;
    }else if( scanPending(pCsr)==0 ){
      if( !pCsr->bScanDone ){
        scanCmd(pCsr, &pCsr->P);
        rc = cursorPipeRun(pCsr, p, pzErr);
        if( rc==SQLITE_OK ) rc = scanTake(pCsr, &pCsr->P, 0, pzErr);
        continue;
      }
      if( pCsr->bTailDone || !t->bActive || pCsr->nTail==0 ){
        pCsr->bTailDone = 1;
        break;
      }
      nChunk = pCsr->nTail;
    }
    if( nChunk>pCsr->nKAlloc ){
      int nAlloc = nChunk;
      sqlite3_free((void*)pCsr->azK);
      sqlite3_free(pCsr->anK);
      sqlite3_free(pCsr->aiCmd);
      sqlite3_free(pCsr->aReq);
      pCsr->azK = sqlite3_malloc64(sizeof(char*)*nAlloc);
      pCsr->anK = sqlite3_malloc64(sizeof(int)*nAlloc);
      pCsr->aiCmd = sqlite3_malloc64(sizeof(int)*nAlloc);
      pCsr->aReq = sqlite3_malloc64(sizeof(ShadowReq)*nAlloc);
      if( !pCsr->azK || !pCsr->anK || !pCsr->aiCmd || !pCsr->aReq ){
        pCsr->nKAlloc = 0;
        rc = SQLITE_NOMEM;
        break;
      }
      pCsr->nKAlloc = nAlloc;
    }
    azK = pCsr->azK;
    anK = pCsr->anK;
    aiCmd = pCsr->aiCmd;
    aReq = pCsr->aReq;
    if( pCsr->bNamed ){
      while( nK<nChunk && pCsr->iKey<pCsr->nKey ){
        RBuf *pK = &pCsr->aKey[pCsr->iKey++];
        int w = keyWanted(pCsr, pK->z, pK->n);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( w ){ azK[nK] = pK->z; anK[nK++] = pK->n; }
      }
    }else if( scanPending(pCsr)>0 ){
      redisReply *rKeys = pCsr->pScanKeys->element[1];
      while( nK<nChunk && scanPending(pCsr)>0 ){
        redisReply *k = rKeys->element[pCsr->iPending++];
        int w, bNew;
        if( k->type!=REDIS_REPLY_STRING ) continue;
        w = keyWanted(pCsr, k->str, (int)k->len);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( !w ) continue;
        bNew = keySetAdd(&pCsr->seen, k->str, (int)k->len);
        if( bNew<0 ){ rc = SQLITE_NOMEM; break; }
        if( bNew ){ azK[nK] = k->str; anK[nK++] = (int)k->len; }
      }
    }else{
      /* The transaction's own keys that SCAN did not return (those still
      ** written: a ROLLBACK TO may have taken some back). */
      pCsr->bTailDone = 1;
      for(i=0; i<pCsr->nTail; i++){
        RBuf *pK = &pCsr->aTail[i];
        int w, bNew;
        if( !txnIsDirty(t, pCsr->iDb, pK->z, pK->n) ) continue;
        w = keyWanted(pCsr, pK->z, pK->n);
        if( w<0 ){ rc = SQLITE_NOMEM; break; }
        if( !w ) continue;
        bNew = keySetAdd(&pCsr->seen, pK->z, pK->n);
        if( bNew<0 ){ rc = SQLITE_NOMEM; break; }
        if( bNew ){ azK[nK] = pK->z; anK[nK++] = pK->n; }
      }
    }
    if( rc ) break;

    /* Keys the transaction wrote are read through their shadows. */
    for(i=0; i<nK; i++){
      /* (Only keys written before the scan began: the server still holds
      ** what the others held then.) */
      if( t->bActive && txnIsDirty(t, pCsr->iDb, azK[i], anK[i])
       && keySetHas(&pCsr->tailSet, azK[i], anK[i]) ){
        aReq[nDirty].iDb = pCsr->iDb;
        aReq[nDirty].z = azK[i];
        aReq[nDirty].n = anK[i];
        aReq[nDirty].eWant = eWant;
        nDirty++;
      }else{
        azK[nClean] = azK[i];
        anK[nClean++] = anK[i];
      }
    }
    if( nDirty>0 ){
      rc = shadowLoad(p, aReq, nDirty, pzErr);
      for(i=0; rc==SQLITE_OK && i<nDirty; i++){
        RedisShadow *sh = shadowGet(t, pCsr->iDb, aReq[i].z, aReq[i].n);
        if( sh ){
          rc = shadowRows(pCsr, aReq[i].z, aReq[i].n, sh, p->zTomb,
                          p->nTomb, pzErr);
        }
      }
      if( rc ) break;
    }

    /* The others from the server, with the next SCAN in the same trip. */
    if( nClean>0 && pCsr->bWatch ){
      for(i=0; i<nClean; i++){
        if( i%RD_WATCH_CHUNK==0 ) pipeCmd(&pCsr->P, pCsr->iDb, "WATCH");
        pipeArg(&pCsr->P, azK[i], anK[i]);
      }
    }
    if( nClean>0 && pRt->eMode==RT_STRING && !pCsr->bNamed ){
      iMget = pCsr->P.nCmd;
      pipeCmd(&pCsr->P, pCsr->iDb, "MGET");
      for(i=0; i<nClean; i++) pipeArg(&pCsr->P, azK[i], anK[i]);
    }
    for(i=0; i<nClean; i++){
      aiCmd[i] = pCsr->P.nCmd;
      fetchCmds(pCsr, &pCsr->P, azK[i], anK[i], bTtl);
    }
    if( !pCsr->bNamed && !pCsr->bScanDone && scanPending(pCsr)==0
     && pCsr->bScanStarted && !pCsr->bDone ){
      iScan = pCsr->P.nCmd;
      scanCmd(pCsr, &pCsr->P);
    }
    if( pCsr->P.rc ){
      rc = pCsr->P.rc;
      break;
    }
    if( pCsr->P.nCmd==0 ){
      if( pCsr->nRow>0 ) break;
      continue;
    }
    rc = cursorPipeRun(pCsr, p, pzErr);
    if( rc ) break;
    if( pCsr->bWatch && nClean>0 ) t->bWatched = 1;
    for(i=0; i<pCsr->P.nCmd; i++){
      redisReply *r = pCsr->P.apReply[i];
      if( r->type==REDIS_REPLY_ERROR && i<aiCmd[0] && i!=iMget ){
        pipeReplyError(&pCsr->P, i, pzErr);
        rc = SQLITE_ERROR;
        break;
      }
    }
    for(i=0; rc==SQLITE_OK && i<nClean; i++){
      redisReply *pMget = 0;
      if( iMget>=0 ){
        redisReply *rM = pCsr->P.apReply[iMget];
        if( rM->type!=REDIS_REPLY_ARRAY || i>=(int)rM->elements ){
          pipeReplyError(&pCsr->P, iMget, pzErr);
          rc = SQLITE_ERROR;
          break;
        }
        pMget = rM->element[i];
      }
      iCmd = aiCmd[i];
      rc = keyRows(pCsr, p, azK[i], anK[i], &pCsr->P, &iCmd, pMget, bTtl,
                   pzErr);
    }
    if( rc==SQLITE_OK && iScan>=0 ) rc = scanTake(pCsr, &pCsr->P, iScan, pzErr);
    if( rc || pCsr->nRow>0 ) break;
  }
  if( rc ){
    batchFree(pCsr);
    pCsr->bEof = 1;
    return rc;
  }
  pCsr->iRow = 0;
  pCsr->bEof = pCsr->nRow==0;
  return SQLITE_OK;
}

/* Copy the keys of pCsr's database that transaction t has written so
** far (pCsr->aTail). */
static int cursorTailKeys(RedisCursor *pCsr, RedisTxn *t){
  RHashElem *e;
  int i;
  pCsr->aTail = sqlite3_malloc64(sizeof(RBuf)*(i64)t->dirty.nElem);
  if( pCsr->aTail==0 ) return SQLITE_NOMEM;
  RHASH_EACH(&t->dirty, i, e){
    if( e->iDb!=pCsr->iDb ) continue;
    memset(&pCsr->aTail[pCsr->nTail], 0, sizeof(RBuf));
    if( rbufSet(&pCsr->aTail[pCsr->nTail], e->zKey, e->nKey) ){
      return SQLITE_NOMEM;
    }
    pCsr->nTail++;
    if( keySetAdd(&pCsr->tailSet, e->zKey, e->nKey)<0 ) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

static int rdFilter(FedCursor *pFedCsr, int argc, sqlite3_value **argv,
                    char **pzErr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisConn *p = (RedisConn*)pTab->pServer->pConn;
  int rc;

  cursorReset(pCsr);
  pCsr->iDb = pRt->iDb>=0 ? pRt->iDb : p->iDb;
  pCsr->bWatch = p->txn.bActive && (p->txn.bSnapshot || pFedCsr->bForUpdate);
  rc = cursorPlan(pCsr, argc, argv, pzErr);
  if( rc ) return rc;
  if( pCsr->bEmpty ){
    pCsr->bEof = 1;
    return SQLITE_OK;
  }
  if( p->txn.bActive && p->txn.dirty.nElem>0 ){
    rc = cursorTailKeys(pCsr, &p->txn);
    if( rc ) return rc;
  }
  return cursorFill(pCsr, pzErr);
}

static int rdNext(FedCursor *pFedCsr, char **pzErr){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  if( pCsr->bEof ) return SQLITE_OK;
  if( ++pCsr->iRow<pCsr->nRow ) return SQLITE_OK;
  return cursorFill(pCsr, pzErr);
}

static int rdEof(FedCursor *pFedCsr){
  return ((RedisCursor*)pFedCsr->pStoreCsr)->bEof;
}

/* Is c one of the characters SQLite skips around a number's text? */
static int affSpace(char c){
  return c==' ' || (c>='\t' && c<='\r');
}

/* Apply SQLite's numeric affinity (INTEGER when bInt, else REAL) to the
** text z[0..n), as SQLite does when such text is stored in a column of
** that declared type (https://www.sqlite.org/datatype3.html): text that
** is a well-formed number, spaces around it allowed (' 1', '3.0', '1e3',
** '+.5', '7.'), becomes that number; any other text stays text.  INTEGER
** affinity keeps a real whose value is an integer that an int64 holds as
** that integer ('3.0' is 3), REAL affinity makes every number a real.
** Returns SQLITE_INTEGER (*pi), SQLITE_FLOAT (*pr) or 0 (stays text);
** SQLITE_NOMEM for a long number whose copy cannot be made.  Bytes that
** are not such ASCII text (a NUL, invalid UTF-8) are never a number. */
static int numericAffinity(const char *z, int n, int bInt, i64 *pi,
                           double *pr){
  char zBuf[128], *zCopy = zBuf;
  int i = 0, iEnd = n, nDigit = 0, bReal = 0, eRet = 0;
  i64 v;
  double r;
  while( i<iEnd && affSpace(z[i]) ) i++;
  while( iEnd>i && affSpace(z[iEnd-1]) ) iEnd--;
  if( i==iEnd ) return 0;
  /* The grammar: [+-] digits [. digits] [eE [+-] digits], with at least
  ** one digit before the exponent (which needs one of its own). */
  {
    int j = i;
    if( z[j]=='+' || z[j]=='-' ) j++;
    while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nDigit++; }
    if( j<iEnd && z[j]=='.' ){
      bReal = 1;
      j++;
      while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nDigit++; }
    }
    if( nDigit==0 ) return 0;
    if( j<iEnd && (z[j]=='e' || z[j]=='E') ){
      int nExp = 0;
      bReal = 1;
      j++;
      if( j<iEnd && (z[j]=='+' || z[j]=='-') ) j++;
      while( j<iEnd && z[j]>='0' && z[j]<='9' ){ j++; nExp++; }
      if( nExp==0 ) return 0;
    }
    if( j!=iEnd ) return 0;
  }
  if( !bReal && fedParseInt64(&z[i], iEnd-i, &v)==0 ){
    if( bInt ){ *pi = v; return SQLITE_INTEGER; }
    *pr = (double)v;
    return SQLITE_FLOAT;
  }
  /* A real, or an integer too large for an int64. */
  if( iEnd-i>=(int)sizeof(zBuf) ){
    zCopy = sqlite3_malloc64(iEnd-i+1);
    if( zCopy==0 ) return SQLITE_NOMEM;
  }
  memcpy(zCopy, &z[i], iEnd-i);
  zCopy[iEnd-i] = 0;
  r = strtod(zCopy, 0);
  if( zCopy!=zBuf ) sqlite3_free(zCopy);
  eRet = SQLITE_FLOAT;
  /* -2^63 and 2^63 excluded, as SQLite excludes them. */
  if( bInt && r==floor(r) && r>-9223372036854775808.0
   && r<9223372036854775808.0 ){
    *pi = (i64)r;
    if( *pi!=(i64)0x8000000000000000ULL ) return SQLITE_INTEGER;
  }
  *pr = r;
  return eRet;
}

/* A value of a field declared in fields=, by its declared type: the
** value SQLite would hold in a column of that type (numeric affinity for
** integer and real, bytes for blob, text or blob bytes for text). */
static void resultField(sqlite3_context *ctx, int eKind, const char *z,
                        int n){
  if( z==0 ) return;
  if( eKind==RC_F_INT || eKind==RC_F_REAL ){
    i64 v = 0;
    double r = 0.0;
    switch( numericAffinity(z, n, eKind==RC_F_INT, &v, &r) ){
      case SQLITE_INTEGER: sqlite3_result_int64(ctx, v); return;
      case SQLITE_FLOAT:   sqlite3_result_double(ctx, r); return;
      case SQLITE_NOMEM:   sqlite3_result_error_nomem(ctx); return;
    }
  }else if( eKind==RC_F_BLOB ){
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
    return;
  }
  resultBytes(ctx, z, n);
}

static int rdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  RedisTable *pRt = pCsr->pRt;
  RedisRow *pRow;
  int eKind = pTab->aCol[iCol].eKind;
  if( pCsr->bEof || pCsr->iRow>=pCsr->nRow ) return SQLITE_OK;
  pRow = &pCsr->aRow[pCsr->iRow];
  /* An UPDATE that does not set this column: leave it alone.  The columns
  ** that name a row (key, field, member, idx) are always returned. */
  if( (eKind==RC_TTL || eKind==RC_TYPE || eKind>=RC_F_TEXT
       || (eKind==RC_VALUE && (pRt->eMode==RT_STRING || pRt->eMode==RM_ANY)))
   && sqlite3_vtab_nochange(ctx) ){
    return SQLITE_OK;
  }
  switch( eKind ){
    case RC_KEY:   resultBytes(ctx, pRow->zKey, pRow->nKey); break;
    case RC_FIELD: resultBytes(ctx, pRow->zSub, pRow->nSub); break;
    case RC_VALUE: resultBytes(ctx, pRow->zVal, pRow->nVal); break;
    case RC_SCORE: sqlite3_result_double(ctx, pRow->rScore); break;
    case RC_IDX:   sqlite3_result_int64(ctx, pRow->iIdx); break;
    case RC_TTL:
      if( pRow->iTtl>=0 ) sqlite3_result_int64(ctx, pRow->iTtl);
      break;
    case RC_TYPE:
      if( pRow->zType ){
        sqlite3_result_text(ctx, pRow->zType, -1, SQLITE_TRANSIENT);
      }
      break;
    default: {
      RedisFv *pFv = &pCsr->aFv[pRow->iFv + (iCol - pRt->iFirstField)];
      resultField(ctx, eKind, pFv->z, pFv->n);
      break;
    }
  }
  return SQLITE_OK;
}

/* A rowid that names the row (key and field, member or index) by a hash,
** the same in every scan; the row is remembered for UPDATE and DELETE.
** Two rows that hash alike are an error, never a wrong write. */
static int rdRowid(FedCursor *pFedCsr, i64 *piRowid){
  RedisCursor *pCsr = (RedisCursor*)pFedCsr->pStoreCsr;
  RedisTable *pRt = pCsr->pRt;
  RedisRow *pRow;
  RedisIdent *pId;
  RHashElem *e;
  u64 h = 14695981039346656037ULL;
  i64 iRowid;
  int i, bNew;
  if( pCsr->bEof || pCsr->iRow>=pCsr->nRow ){
    *piRowid = 0;
    return SQLITE_OK;
  }
  pRow = &pCsr->aRow[pCsr->iRow];
  for(i=0; i<pRow->nKey; i++){ h ^= (u8)pRow->zKey[i]; h *= 1099511628211ULL; }
  h ^= 0xff; h *= 1099511628211ULL;
  if( pRt->eMode==RT_LIST ){
    for(i=0; i<8; i++){ h ^= (u8)(pRow->iIdx>>(8*i)); h *= 1099511628211ULL; }
  }else{
    for(i=0; i<pRow->nSub; i++){ h ^= (u8)pRow->zSub[i]; h *= 1099511628211ULL; }
  }
  h ^= h>>33; h *= 0xff51afd7ed558ccdULL; h ^= h>>33;
  iRowid = (i64)(h & 0x7fffffffffffffffULL);
  e = rhashAdd(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid), &bNew);
  if( e==0 ) return SQLITE_NOMEM;
  pId = (RedisIdent*)e->pVal;
  if( !bNew && pId ){
    int bSame = rbufEq(&pId->key, pRow->zKey, pRow->nKey)
      && (pRt->eMode==RT_LIST ? pId->iIdx==pRow->iIdx
                              : rbufEq(&pId->sub, pRow->zSub, pRow->nSub));
    if( !bSame ){
      fedTableError(pFedCsr->pTab, "%s: two rows of table \"%s\" have the"
                    " same rowid", RD_STORE, pFedCsr->pTab->zName);
      return SQLITE_ERROR;
    }
    /* Re-read: remember the value as read now. */
  }
  if( pId==0 ){
    pId = sqlite3_malloc64(sizeof(*pId));
    if( pId==0 ){
      rhashRemove(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid));
      return SQLITE_NOMEM;
    }
    memset(pId, 0, sizeof(*pId));
    e->pVal = pId;
  }
  pId->iIdx = pRow->iIdx;
  pId->rScore = pRow->rScore;
  if( rbufSet(&pId->key, pRow->zKey, pRow->nKey)
   || (pRow->zSub && rbufSet(&pId->sub, pRow->zSub, pRow->nSub))
   || (pRow->zVal && rbufSet(&pId->val, pRow->zVal, pRow->nVal)) ){
    rhashRemove(&pRt->ident, 0, (const char*)&iRowid, sizeof(iRowid));
    return SQLITE_NOMEM;
  }
  *piRowid = iRowid;
  return SQLITE_OK;
}

/**************************************************************************
** Writes.  Each xUpdate appends its commands to the transaction queue
** (nothing is sent: see "Transactions").  A command that touches keys
** the transaction has already read through shadows is applied to them at
** once, so that a conflict is reported by the statement that makes it.
*/

/* Append pOp (built at the end of the queue by opNew) to the queue and
** apply it to the shadows of its keys where they exist.  On error the op
** is not queued; SQLITE_CONSTRAINT is a conflict (an existing row). */
static int queueOp(RedisConn *p, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp;
  RedisShadow *sh, *sh2 = 0;
  int rc = opCommit(t);
  if( rc ) return rc;
  pOp = &t->aOp[t->nOp-1];
  sh = shadowGet(t, pOp->iDb, pOp->key.z, pOp->key.n);
  if( pOp->eOp==ROP_RENAME ){
    sh2 = shadowGet(t, pOp->iDb, pOp->aArg[0].z, pOp->aArg[0].n);
  }
  if( sh && (pOp->eOp!=ROP_RENAME || sh2) ){
    rc = shadowApply(pOp, sh, sh2, pzErr);
    if( rc==SQLITE_DONE ) rc = SQLITE_OK, sh2 = sh = 0;
    else if( rc==SQLITE_OK ) return SQLITE_OK;
  }
  if( rc==SQLITE_OK ){
    /* Not enough is known here: the keys are re-read when next needed. */
    shadowDrop(t, pOp->iDb, pOp->key.z, pOp->key.n);
    if( pOp->eOp==ROP_RENAME ){
      shadowDrop(t, pOp->iDb, pOp->aArg[0].z, pOp->aArg[0].n);
    }
    return SQLITE_OK;
  }
  /* The shadows may have been changed half way: drop them with the op. */
  txnTruncate(t, t->nOp-1);
  return rc;
}

/* Build and queue one op: nArg arguments given as (z, n) pairs after the
** key.  Arguments with n<0 are NUL-terminated. */
static int addOp(RedisConn *p, int eOp, int eCond, int iDb, int iRow,
                 int bIgnore, const char *zKey, int nKey, int nArg,
                 const char **azArg, const int *anArg, i64 iNum,
                 char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = opNew(t, eOp, iDb, iRow, zKey, nKey, nArg);
  int i;
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->iNum = iNum;
  for(i=0; i<nArg; i++){
    int n = anArg[i]<0 ? (int)strlen(azArg[i]) : anArg[i];
    if( rbufSet(&pOp->aArg[i], azArg[i], n) ){
      opFree(pOp);
      return SQLITE_NOMEM;
    }
  }
  return queueOp(p, pzErr);
}

/* SET with its expiry. */
static int addSet(RedisConn *p, int eCond, int iDb, int iRow, int bIgnore,
                  const char *zKey, int nKey, const char *zVal, int nVal,
                  int eTtl, i64 nTtl, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = opNew(t, ROP_SET, iDb, iRow, zKey, nKey, 1);
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->eTtl = (u8)eTtl;
  pOp->iNum = nTtl;
  if( rbufSet(&pOp->aArg[0], zVal, nVal) ){
    opFree(pOp);
    return SQLITE_NOMEM;
  }
  return queueOp(p, pzErr);
}

static int addZadd(RedisConn *p, int eCond, int iDb, int iRow, int bIgnore,
                   const char *zKey, int nKey, const char *zMember,
                   int nMember, double rScore, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = opNew(t, ROP_ZADD, iDb, iRow, zKey, nKey, 1);
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->rScore = rScore;
  if( rbufSet(&pOp->aArg[0], zMember, nMember) ){
    opFree(pOp);
    return SQLITE_NOMEM;
  }
  return queueOp(p, pzErr);
}

/* ttl as written: 1 and *pn for a number of seconds, 0 for NULL; -1
** (with *pzErr) for anything else, -2 when out of memory. */
static int ttlValue(sqlite3_value *pVal, i64 *pn, int bInsert, char **pzErr){
  int bInt = 0, bNum;
  i64 i = 0;
  double r = 0.0;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ) return 0;
  if( sqlite3_value_type(pVal)!=SQLITE_BLOB
   && (bNum = termNumber(pVal, &bInt, &i, &r))!=0 ){
    if( bNum<0 ) return -2;
    if( !bInt && r==floor(r) && r>-9.2e18 && r<9.2e18 ){
      bInt = 1;
      i = (i64)r;
    }
    if( bInt && (i>0 || !bInsert) ){
      *pn = i;
      return 1;
    }
  }
  fedSetError(pzErr, "%s: ttl must be a%s number of seconds, or NULL for"
              " no expiry", RD_STORE, bInsert ? " positive" : "n integer");
  return -1;
}

/* The score as written; an error if it is not a number (NULL included). */
static int scoreValue(sqlite3_value *pVal, double *pr, char **pzErr){
  int bInt = 0, bNum = 0;
  i64 i = 0;
  if( sqlite3_value_type(pVal)!=SQLITE_BLOB
   && sqlite3_value_type(pVal)!=SQLITE_NULL
   && (bNum = termNumber(pVal, &bInt, &i, pr))!=0 ){
    return bNum<0 ? SQLITE_NOMEM : SQLITE_OK;
  }
  fedSetError(pzErr, "%s: score must be a number", RD_STORE);
  /* A NULL breaks a NOT NULL constraint (OR IGNORE skips the row, as it
  ** does for a NULL value); anything else is a type mismatch. */
  return sqlite3_value_type(pVal)==SQLITE_NULL ? SQLITE_CONSTRAINT
                                                : SQLITE_MISMATCH;
}

/* A key given to INSERT or UPDATE: not NULL, and in the key space. */
static int keyValue(FedTable *pTab, sqlite3_value *pVal, const char **pz,
                    int *pn, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    fedSetError(pzErr, "%s: key of table \"%s\" may not be NULL", RD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  valueBytes(pVal, pz, pn);
  if( !keyInSpace(pRt->zPattern, pRt->nPattern, *pz, *pn) ){
    char *zKey = renderKey(*pz, *pn);
    fedSetError(pzErr, "%s: key %s is outside the key space of table \"%s\""
                " (keys '%s')", RD_STORE, zKey, pTab->zName, pRt->zPattern);
    sqlite3_free(zKey);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

/* A value that must not be NULL (Redis has no NULL). */
static int notNull(FedTable *pTab, sqlite3_value *pVal, const char *zCol,
                   char **pzErr){
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    fedSetError(pzErr, "%s: %s of table \"%s\" may not be NULL (Redis has no"
                " NULL; DELETE the row instead)", RD_STORE, zCol, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

/* The bytes a declared field is written as (fields=). */
static void fieldBytes(int eKind, sqlite3_value *pVal, char *zBuf, int nBuf,
                       const char **pz, int *pn){
  int eType = sqlite3_value_type(pVal);
  if( eKind==RC_F_INT && eType==SQLITE_FLOAT ){
    double r = sqlite3_value_double(pVal);
    if( r==floor(r) && r>-9.2e18 && r<9.2e18 ){
      sqlite3_snprintf(nBuf, zBuf, "%lld", (i64)r);
      *pz = zBuf;
      *pn = (int)strlen(zBuf);
      return;
    }
  }
  if( (eKind==RC_F_REAL || eKind==RC_F_INT) && eType==SQLITE_FLOAT ){
    fedDoubleText(sqlite3_value_double(pVal), zBuf, nBuf);
    *pz = zBuf;
    *pn = (int)strlen(zBuf);
    return;
  }
  valueBytes(pVal, pz, pn);
}

/* The ops that set the expiry of a written key (ttl given). */
static int addTtl(RedisConn *p, int iDb, int iRow, const char *zKey,
                  int nKey, int bSet, i64 nTtl, char **pzErr){
  if( bSet ){
    return addOp(p, ROP_EXPIRE, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, nTtl,
                 pzErr);
  }
  return addOp(p, ROP_PERSIST, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, 0, pzErr);
}

static int rdFlush(FedConn *pConn, char **pzErr);
static int rdBegin(FedConn *pConn, int bSnapshot, char **pzErr);

/* xUpdate for tables whose rows are named by the key (string, any,
** fields=): argv[0] is the old key. */
static int updateByKey(FedTable *pTab, RedisConn *p, int argc,
                       sqlite3_value **argv, int iDb, int iRow, int bIgnore,
                       int bReplace, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  sqlite3_value **aV = &argv[2];
  const char *zKey, *zOld;
  int nKey, nOld, rc = SQLITE_OK, i, bTtl = 0;
  i64 nTtl = 0;
  int eMode = pRt->eMode;

  if( argc==1 ){
    valueBytes(argv[0], &zOld, &nOld);
    return addOp(p, ROP_DEL, 0, iDb, iRow, 0, zOld, nOld, 0, 0, 0, 0, pzErr);
  }
  rc = keyValue(pTab, aV[pRt->iKey], &zKey, &nKey, pzErr);
  if( rc ) return rc;
  if( pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    bTtl = ttlValue(aV[pRt->iTtl], &nTtl, sqlite3_value_type(argv[0])==
                    SQLITE_NULL, pzErr);
    if( bTtl<0 ) return bTtl==-2 ? SQLITE_NOMEM : SQLITE_CONSTRAINT;
  }

  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    /* INSERT */
    if( eMode==RM_FIELDS ){
      const char *azA[2*FED_MAX_COLUMNS];
      int anA[2*FED_MAX_COLUMNS];
      char aBuf[FED_MAX_COLUMNS][40];
      int nA = 0;
      for(i=0; i<pRt->nField; i++){
        int iCol = pRt->iFirstField+i;
        if( sqlite3_value_type(aV[iCol])==SQLITE_NULL ) continue;
        azA[nA] = pTab->aCol[iCol].zName;
        anA[nA++] = -1;
        fieldBytes(pTab->aCol[iCol].eKind, aV[iCol], aBuf[i], 40, &azA[nA],
                   &anA[nA]);
        nA++;
      }
      if( nA==0 ){
        fedSetError(pzErr, "%s: a row of table \"%s\" needs at least one"
            " non-NULL field (Redis has no empty hash)", RD_STORE,
            pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      if( bReplace ){
        rc = addOp(p, ROP_DEL, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, 0, pzErr);
      }
      if( rc==SQLITE_OK ){
        rc = addOp(p, ROP_HSET, bReplace ? RCOND_NONE : RCOND_NXKEY, iDb,
                   iRow, bIgnore, zKey, nKey, nA, azA, anA, 0, pzErr);
      }
      if( rc==SQLITE_OK && bTtl ){
        rc = addTtl(p, iDb, iRow, zKey, nKey, 1, nTtl, pzErr);
      }
      return rc;
    }
    if( eMode==RM_ANY && pRt->iType>=0
     && sqlite3_value_type(aV[pRt->iType])!=SQLITE_NULL ){
      const char *zT = (const char*)sqlite3_value_text(aV[pRt->iType]);
      if( zT==0 || strcmp(zT, "string")!=0 ){
        fedSetError(pzErr, "%s: only strings can be inserted into table"
            " \"%s\" (type=any): leave type NULL or 'string'", RD_STORE,
            pTab->zName);
        return SQLITE_CONSTRAINT;
      }
    }
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc==SQLITE_OK ){
      const char *zVal;
      int nVal;
      valueBytes(aV[pRt->iValue], &zVal, &nVal);
      rc = addSet(p, bReplace ? RCOND_NONE : RCOND_NX, iDb, iRow, bIgnore,
                  zKey, nKey, zVal, nVal, bTtl ? RTTL_EX : RTTL_CLEAR, nTtl,
                  pzErr);
    }
    return rc;
  }

  /* UPDATE: a new key is a RENAME (which keeps the expiry). */
  valueBytes(argv[0], &zOld, &nOld);
  if( nOld!=nKey || memcmp(zOld, zKey, nKey)!=0 ){
    const char *azA[1];
    int anA[1];
    azA[0] = zKey;
    anA[0] = nKey;
    rc = addOp(p, ROP_RENAME, bReplace ? RCOND_NONE : RCOND_NX, iDb, iRow,
               bIgnore, zOld, nOld, 1, azA, anA, 0, pzErr);
    if( rc ) return rc;
  }
  if( eMode==RM_ANY && pRt->iType>=0 && !sqlite3_value_nochange(aV[pRt->iType]) ){
    fedSetError(pzErr, "%s: the type of a key cannot be changed (table"
                " \"%s\")", RD_STORE, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( eMode==RM_FIELDS ){
    const char *azSet[2*FED_MAX_COLUMNS], *azDel[FED_MAX_COLUMNS];
    int anSet[2*FED_MAX_COLUMNS], anDel[FED_MAX_COLUMNS];
    char aBuf[FED_MAX_COLUMNS][40];
    int nSet = 0, nDel = 0;
    for(i=0; i<pRt->nField; i++){
      int iCol = pRt->iFirstField+i;
      if( sqlite3_value_nochange(aV[iCol]) ) continue;
      if( sqlite3_value_type(aV[iCol])==SQLITE_NULL ){
        azDel[nDel] = pTab->aCol[iCol].zName;
        anDel[nDel++] = -1;
      }else{
        azSet[nSet] = pTab->aCol[iCol].zName;
        anSet[nSet++] = -1;
        fieldBytes(pTab->aCol[iCol].eKind, aV[iCol], aBuf[i], 40,
                   &azSet[nSet], &anSet[nSet]);
        nSet++;
      }
    }
    if( nSet ){
      rc = addOp(p, ROP_HSET, 0, iDb, iRow, 0, zKey, nKey, nSet, azSet, anSet,
                 0, pzErr);
    }
    if( rc==SQLITE_OK && nDel ){
      rc = addOp(p, ROP_HDEL, 0, iDb, iRow, 0, zKey, nKey, nDel, azDel, anDel,
                 0, pzErr);
    }
  }else if( !sqlite3_value_nochange(aV[pRt->iValue]) ){
    const char *zVal;
    int nVal;
    int bTtlSet = pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]);
    int eTtl = !bTtlSet ? RTTL_KEEP
             : !bTtl ? RTTL_CLEAR : nTtl>0 ? RTTL_EX : RTTL_KEEP;
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc ) return rc;
    valueBytes(aV[pRt->iValue], &zVal, &nVal);
    rc = addSet(p, eMode==RM_ANY ? RCOND_STRING : RCOND_NONE, iDb, iRow, 0,
                zKey, nKey, zVal, nVal, eTtl, nTtl, pzErr);
    if( rc==SQLITE_OK && bTtl && nTtl<=0 ){
      rc = addTtl(p, iDb, iRow, zKey, nKey, 1, nTtl, pzErr);
    }
    return rc;
  }
  if( rc==SQLITE_OK && pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    rc = addTtl(p, iDb, iRow, zKey, nKey, bTtl, nTtl, pzErr);
  }
  return rc;
}

/* xUpdate for tables of rows inside a key (hash, list, set, zset): the
** rowid stands for the key and the field, member or index (rdRowid). */
static int updateInKey(FedTable *pTab, RedisConn *p, int argc,
                       sqlite3_value **argv, int iDb, int iRow, int bIgnore,
                       int bReplace, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  sqlite3_value **aV = &argv[2];
  RedisIdent *pId = 0;
  const char *zKey = 0, *zSub = 0, *zVal = 0;
  int nKey = 0, nSub = 0, nVal = 0, rc = SQLITE_OK, bTtl = 0;
  int eMode = pRt->eMode;
  int bInsert = argc>1 && sqlite3_value_type(argv[0])==SQLITE_NULL;
  int bMove = 0;
  double rScore = 0.0;
  i64 nTtl = 0, iOld = 0;

  if( !bInsert ){
    RHashElem *e;
    iOld = sqlite3_value_int64(argv[0]);
    e = rhashFind(&pRt->ident, 0, (const char*)&iOld, sizeof(iOld));
    pId = e ? (RedisIdent*)e->pVal : 0;
    if( pId==0 ){
      fedSetError(pzErr, "%s: row %lld of table \"%s\" was not read by this"
                  " statement; address rows by key and %s", RD_STORE, iOld,
                  pTab->zName, eMode==RT_HASH ? "field" : eMode==RT_LIST
                  ? "idx" : "value");
      return SQLITE_ERROR;
    }
  }
  if( argc==1 ){
    switch( eMode ){
      case RT_HASH:
        rc = addOp(p, ROP_HDEL, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 1,
                   (const char**)&pId->sub.z, &pId->sub.n, 0, pzErr);
        break;
      case RT_SET: case RT_ZSET:
        rc = addOp(p, eMode==RT_SET ? ROP_SREM : ROP_ZREM, 0, iDb, iRow, 0,
                   pId->key.z, pId->key.n, 1, (const char**)&pId->sub.z,
                   &pId->sub.n, 0, pzErr);
        break;
      case RT_LIST: {
        const char *azA[2];
        int anA[2];
        azA[0] = p->zTomb; anA[0] = p->nTomb;
        azA[1] = pId->val.z ? pId->val.z : ""; anA[1] = pId->val.n;
        rc = addOp(p, ROP_LSET, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 2,
                   azA, anA, pId->iIdx, pzErr);
        if( rc==SQLITE_OK
         && rhashAdd(&p->txn.lrem, iDb, pId->key.z, pId->key.n, 0)==0 ){
          rc = SQLITE_NOMEM;
        }
        break;
      }
    }
    if( rc==SQLITE_OK ) rhashRemove(&pRt->ident, 0, (const char*)&iOld,
                                    sizeof(iOld));
    return rc;
  }

  if( sqlite3_value_type(argv[1])!=SQLITE_NULL
   && (bInsert || sqlite3_value_int64(argv[1])!=iOld) ){
    fedSetError(pzErr, "%s: cannot set the rowid of table \"%s\"", RD_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  rc = keyValue(pTab, aV[pRt->iKey], &zKey, &nKey, pzErr);
  if( rc ) return rc;
  if( pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    bTtl = ttlValue(aV[pRt->iTtl], &nTtl, bInsert, pzErr);
    if( bTtl<0 ) return bTtl==-2 ? SQLITE_NOMEM : SQLITE_CONSTRAINT;
  }
  if( eMode!=RT_LIST ){
    int iSub = eMode==RT_HASH ? pRt->iField : pRt->iValue;
    rc = notNull(pTab, aV[iSub], eMode==RT_HASH ? "field" : "value", pzErr);
    if( rc ) return rc;
    valueBytes(aV[iSub], &zSub, &nSub);
  }
  if( eMode==RT_HASH || eMode==RT_LIST ){
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc ) return rc;
    valueBytes(aV[pRt->iValue], &zVal, &nVal);
  }
  if( eMode==RT_ZSET ){
    rc = scoreValue(aV[pRt->iScore], &rScore, pzErr);
    if( rc ) return rc;
  }
  if( pId ){
    bMove = !rbufEq(&pId->key, zKey, nKey)
         || (eMode!=RT_LIST && !rbufEq(&pId->sub, zSub, nSub));
  }

  if( eMode==RT_LIST ){
    if( bInsert ){
      if( sqlite3_value_type(aV[pRt->iIdx])!=SQLITE_NULL ){
        fedSetError(pzErr, "%s: INSERT appends to the list: leave idx NULL"
                    " (table \"%s\")", RD_STORE, pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      rc = addOp(p, ROP_RPUSH, 0, iDb, iRow, 0, zKey, nKey, 1, &zVal, &nVal,
                 0, pzErr);
    }else{
      if( bMove || sqlite3_value_int64(aV[pRt->iIdx])!=pId->iIdx
       || sqlite3_value_type(aV[pRt->iIdx])!=SQLITE_INTEGER ){
        fedSetError(pzErr, "%s: the key and idx of a list element cannot be"
            " changed (table \"%s\")", RD_STORE, pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      if( !rbufEq(&pId->val, zVal, nVal) ){
        const char *azA[2];
        int anA[2];
        azA[0] = zVal; anA[0] = nVal;
        azA[1] = pId->val.z ? pId->val.z : ""; anA[1] = pId->val.n;
        rc = addOp(p, ROP_LSET, 0, iDb, iRow, 0, zKey, nKey, 2, azA, anA,
                   pId->iIdx, pzErr);
      }
    }
  }else if( bInsert || bMove ){
    /* The new row first: its condition decides for the whole row. */
    int eCond = bReplace ? RCOND_NONE : RCOND_NX;
    if( eMode==RT_HASH ){
      const char *azA[2];
      int anA[2];
      azA[0] = zSub; anA[0] = nSub;
      azA[1] = zVal; anA[1] = nVal;
      rc = addOp(p, ROP_HSET, eCond, iDb, iRow, bIgnore, zKey, nKey, 2, azA,
                 anA, 0, pzErr);
    }else if( eMode==RT_SET ){
      rc = addOp(p, ROP_SADD, eCond, iDb, iRow, bIgnore, zKey, nKey, 1, &zSub,
                 &nSub, 0, pzErr);
    }else{
      rc = addZadd(p, eCond, iDb, iRow, bIgnore, zKey, nKey, zSub, nSub,
                   rScore, pzErr);
    }
    if( rc==SQLITE_OK && bMove ){
      int eDel = eMode==RT_HASH ? ROP_HDEL : eMode==RT_SET ? ROP_SREM : ROP_ZREM;
      rc = addOp(p, eDel, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 1,
                 (const char**)&pId->sub.z, &pId->sub.n, 0, pzErr);
    }
  }else if( eMode==RT_HASH && !rbufEq(&pId->val, zVal, nVal) ){
    const char *azA[2];
    int anA[2];
    azA[0] = zSub; anA[0] = nSub;
    azA[1] = zVal; anA[1] = nVal;
    rc = addOp(p, ROP_HSET, 0, iDb, iRow, 0, zKey, nKey, 2, azA, anA, 0,
               pzErr);
  }else if( eMode==RT_ZSET && rScore!=pId->rScore ){
    rc = addZadd(p, RCOND_XX, iDb, iRow, 0, zKey, nKey, zSub, nSub, rScore,
                 pzErr);
  }
  if( rc==SQLITE_OK && pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl])
   && (bTtl || !bInsert) ){
    rc = addTtl(p, iDb, iRow, zKey, nKey, bTtl, nTtl, pzErr);
  }
  if( rc==SQLITE_OK && pId && !bInsert ){
    rhashRemove(&pRt->ident, 0, (const char*)&iOld, sizeof(iOld));
  }
  return rc;
}

/* Refuse a write of a key in federate's reserved namespace (RD_RESERVED:
** the commit markers and fences).  A table whose keys= takes every key
** could otherwise overwrite the marker hash with another type, and a
** later cross-store EXEC would fail on it after applying the rest. */
static int reservedKey(FedTable *pTab, sqlite3_value *pVal, const char *zOp,
                       char **pzErr){
  const char *z;
  int n;
  if( pVal==0 || sqlite3_value_type(pVal)==SQLITE_NULL ) return SQLITE_OK;
  valueBytes(pVal, &z, &n);
  if( n<0 ) return SQLITE_NOMEM;
  if( n>=(int)sizeof(RD_RESERVED)-1
   && memcmp(z, RD_RESERVED, sizeof(RD_RESERVED)-1)==0 ){
    char *zKey = renderKey(z, n);
    fedSetError(pzErr, "%s: cannot %s key %s in table \"%s\": keys that"
        " start with %s are reserved for federate's commit markers",
        RD_STORE, zOp, zKey ? zKey : "?", pTab->zName, RD_RESERVED);
    sqlite3_free(zKey);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

static int rdUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                    i64 *piRowid, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  RedisConn *p = (RedisConn*)pTab->pServer->pConn;
  RedisTxn *t = &p->txn;
  int eConflict = sqlite3_vtab_on_conflict(pTab->pCtx->db);
  int bIgnore = eConflict==SQLITE_IGNORE;
  int bReplace = eConflict==SQLITE_REPLACE;
  int iDb = pRt->iDb>=0 ? pRt->iDb : p->iDb;
  int nStart, rc, i;
  (void)piRowid;
  /* Numbers are written as text: convert them now, where running out of
  ** memory can still be reported (later calls reuse the text). */
  for(i=0; i<argc; i++){
    int eType = sqlite3_value_type(argv[i]);
    if( (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT)
     && sqlite3_value_text(argv[i])==0 ){
      return SQLITE_NOMEM;
    }
  }
  {
    const char *zOp = argc==1 ? "DELETE"
        : sqlite3_value_type(argv[0])==SQLITE_NULL ? "INSERT" : "UPDATE";
    rc = SQLITE_OK;
    if( pTab->iPk>=0 ) rc = reservedKey(pTab, argv[0], zOp, pzErr);
    if( rc==SQLITE_OK && argc>1 ){
      rc = reservedKey(pTab, argv[2+pRt->iKey], zOp, pzErr);
    }
    if( rc ) return rc;
  }
  if( !t->bActive ){
    rc = rdBegin(&p->base, 0, pzErr);
    if( rc ) return rc;
  }
  if( argc==1 ) bIgnore = bReplace = 0;
  nStart = t->nOp;
  t->iRowSeq++;
  if( pTab->iPk>=0 ){
    rc = updateByKey(pTab, p, argc, argv, iDb, t->iRowSeq, bIgnore, bReplace,
                     pzErr);
  }else{
    rc = updateInKey(pTab, p, argc, argv, iDb, t->iRowSeq, bIgnore, bReplace,
                     pzErr);
  }
  if( rc ){
    txnTruncate(t, nStart);
    if( rc==SQLITE_CONSTRAINT && bIgnore ){
      sqlite3_free(*pzErr);
      *pzErr = 0;
      rc = SQLITE_OK;
    }
  }
  return rc;
}

/**************************************************************************
** Transactions (FED_TXN_BATCH).  xBegin starts an empty queue; xUpdate
** appends to it; savepoints are queue lengths; xRollback and xRollbackTo
** drop commands; xCommit sends the queue as one MULTI ... EXEC.  Inside
** BEGIN...COMMIT, and in the scan of an UPDATE or DELETE, every key read is
** WATCHed first, so EXEC fails (and nothing is written) if another client
** changed what the transaction read.  A single command that cannot fail
** half way is sent alone: an autocommit INSERT is one round trip.
*/
static int rdBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  (void)pzErr;
  if( p->txn.bWatched ) p->bUnwatch = 1;
  txnClear(&p->txn);
  p->txn.bActive = 1;
  p->txn.bSnapshot = bSnapshot;
  return SQLITE_OK;
}

/* Statement boundary: the elements this statement deleted from lists
** (LSET to the tombstone) are removed now, by one LREM per list. */
static int rdFlush(FedConn *pConn, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = &p->txn;
  RHashElem *e;
  int i, rc = SQLITE_OK;
  if( !t->bActive || t->lrem.nElem==0 ) return SQLITE_OK;
  t->iRowSeq++;
  RHASH_EACH(&t->lrem, i, e){
    const char *azA[1];
    int anA[1];
    azA[0] = p->zTomb;
    anA[0] = p->nTomb;
    if( rc==SQLITE_OK ){
      rc = addOp(p, ROP_LREM, 0, e->iDb, t->iRowSeq, 0, e->zKey, e->nKey, 1,
                 azA, anA, 0, pzErr);
    }
  }
  rhashClear(&t->lrem);
  return rc;
}

/* Append the command of pOp to P. */
static void pipeOp(RedisPipe *P, const RedisOp *pOp){
  int i;
  char zBuf[40];
  switch( pOp->eOp ){
    case ROP_SET:
      pipeCmd(P, pOp->iDb, "SET");
      pipeArg(P, pOp->key.z, pOp->key.n);
      pipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      if( pOp->eCond==RCOND_NX ) pipeArg(P, "NX", 2);
      if( pOp->eCond==RCOND_STRING ) pipeArg(P, "XX", 2);
      if( pOp->eTtl==RTTL_EX ){
        pipeArg(P, "EX", 2);
        pipeArgInt(P, pOp->iNum);
      }else if( pOp->eTtl==RTTL_KEEP ){
        pipeArg(P, "KEEPTTL", 7);
      }
      return;
    case ROP_DEL:     pipeCmd(P, pOp->iDb, "DEL"); break;
    case ROP_EXPIRE:  pipeCmd(P, pOp->iDb, "EXPIRE"); break;
    case ROP_PERSIST: pipeCmd(P, pOp->iDb, "PERSIST"); break;
    case ROP_RENAME:
      pipeCmd(P, pOp->iDb, pOp->eCond==RCOND_NX ? "RENAMENX" : "RENAME");
      break;
    case ROP_HSET:
      pipeCmd(P, pOp->iDb, pOp->eCond==RCOND_NX ? "HSETNX" : "HSET");
      break;
    case ROP_HDEL:    pipeCmd(P, pOp->iDb, "HDEL"); break;
    case ROP_RPUSH:   pipeCmd(P, pOp->iDb, "RPUSH"); break;
    case ROP_LSET:
      pipeCmd(P, pOp->iDb, "LSET");
      pipeArg(P, pOp->key.z, pOp->key.n);
      pipeArgInt(P, pOp->iNum);
      pipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_LREM:
      pipeCmd(P, pOp->iDb, "LREM");
      pipeArg(P, pOp->key.z, pOp->key.n);
      pipeArg(P, "0", 1);
      pipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_SADD:    pipeCmd(P, pOp->iDb, "SADD"); break;
    case ROP_SREM:    pipeCmd(P, pOp->iDb, "SREM"); break;
    case ROP_ZADD:
      pipeCmd(P, pOp->iDb, "ZADD");
      pipeArg(P, pOp->key.z, pOp->key.n);
      if( pOp->eCond==RCOND_NX ) pipeArg(P, "NX", 2);
      if( pOp->eCond==RCOND_XX ) pipeArg(P, "XX", 2);
      doubleArg(pOp->rScore, zBuf, sizeof(zBuf));
      pipeArgCopy(P, zBuf, -1);
      pipeArg(P, pOp->aArg[0].z, pOp->aArg[0].n);
      return;
    case ROP_ZREM:    pipeCmd(P, pOp->iDb, "ZREM"); break;
  }
  pipeArg(P, pOp->key.z, pOp->key.n);
  if( pOp->eOp==ROP_EXPIRE ) pipeArgInt(P, pOp->iNum);
  for(i=0; i<pOp->nArg; i++) pipeArg(P, pOp->aArg[i].z, pOp->aArg[i].n);
}

/* True if the reply of pOp sent alone says whether its condition held
** and a failure leaves nothing half done. */
static int opAlone(const RedisOp *pOp){
  return pOp->eOp!=ROP_LSET && pOp->eCond!=RCOND_NXKEY
      && pOp->eCond!=RCOND_STRING;
}

/* Did the reply to pOp say its condition failed (the row existed)? */
static int opConflicted(const RedisOp *pOp, const redisReply *r){
  if( pOp->eCond!=RCOND_NX ) return 0;
  if( pOp->eOp==ROP_SET ) return r->type==REDIS_REPLY_NIL;
  return r->type==REDIS_REPLY_INTEGER && r->integer==0;
}

/* Check every key the queue writes that no shadow covers yet: read it
** under WATCH (its type, or its content where a condition needs it) and
** replay the queue on it.  After this, EXEC cannot fail half way. */
static int txnValidate(RedisConn *p, char **pzErr){
  RedisTxn *t = &p->txn;
  RHash need;
  RHashElem *e;
  RHashElem **aOrder = 0;       /* The keys of need, in queue order */
  ShadowReq *aReq = 0;
  int i, nReq = 0, nOrder = 0, rc = SQLITE_OK;
  memset(&need, 0, sizeof(need));
  for(i=0; i<t->nOp && rc==SQLITE_OK; i++){
    RedisOp *pOp = &t->aOp[i];
    const RBuf *aKey[2];
    int k, nKey, bNew;
    if( pOp->bSkip ) continue;
    nKey = opKeys(pOp, aKey);
    for(k=0; k<nKey; k++){
      if( shadowGet(t, pOp->iDb, aKey[k]->z, aKey[k]->n) ) continue;
      e = rhashAdd(&need, pOp->iDb, aKey[k]->z, aKey[k]->n, &bNew);
      if( e==0 ){ rc = SQLITE_NOMEM; break; }
      if( bNew ){
        RHashElem **a = sqlite3_realloc64(aOrder, sizeof(RHashElem*)*(nOrder+1));
        if( a==0 ){
          rhashRemove(&need, pOp->iDb, aKey[k]->z, aKey[k]->n);
          rc = SQLITE_NOMEM;
          break;
        }
        aOrder = a;
        aOrder[nOrder++] = e;
        /* e->r: 1 if the first op overwrites the key whatever it held
        ** (DEL, SET): then nothing is read and the replay starts from an
        ** empty key (3 once a later op needs checking); 2 to read it. */
        e->r = (pOp->eOp==ROP_DEL || (pOp->eOp==ROP_SET
                && pOp->eCond==RCOND_NONE && pOp->eTtl!=RTTL_KEEP)) ? 1 : 0;
      }
      if( pOp->eOp==ROP_RENAME ){
        e->r = 2;
      }else if( opNeedsCheck(pOp) ){
        if( e->r==1 ) e->r = 3;
        if( e->r==0 ) e->r = 2;
      }
      if( e->r==2 && opNeedsContent(pOp) ) e->i = opType(pOp);
    }
  }
  if( rc==SQLITE_OK && need.nElem>0 ){
    aReq = sqlite3_malloc64(sizeof(ShadowReq)*need.nElem);
    if( aReq==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK && need.nElem>0 ){
    for(i=0; i<nOrder; i++){
      e = aOrder[i];
      if( e->r<2 ) continue;
      aReq[nReq].iDb = e->iDb;
      aReq[nReq].z = e->zKey;
      aReq[nReq].n = e->nKey;
      aReq[nReq].eWant = e->r==3 ? -1 : (int)e->i;
      nReq++;
    }
    rc = shadowLoad(p, aReq, nReq, pzErr);
  }
  sqlite3_free(aReq);
  sqlite3_free(aOrder);
  rhashClear(&need);
  return rc;
}

/*
** Before the MULTI of a transaction that writes the commit marker of
** global id zGid, one round trip:
**
**   WATCH __federate:fence:<gid>     so that a later fence (rdMarkerCheck
**                                    touches that key) makes this EXEC
**                                    fail if it has not run yet
**   TYPE __federate:txn              the marker hash must be a hash (or
**                                    absent), or HSET would fail inside
**                                    EXEC after the writes were applied
**
** The WATCH must be answered before EXEC is sent: a WATCH still in flight
** with its EXEC would be registered after the fence.
*/
static int markerFence(RedisConn *p, const char *zGid, char **pzErr){
  RedisPipe P;
  int rc;
  char *zFence = sqlite3_mprintf("%s%s", RD_FENCE, zGid);
  if( zFence==0 ) return SQLITE_NOMEM;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, "WATCH");
  pipeArg(&P, zFence, -1);
  pipeCmd(&P, p->iDb, "TYPE");
  pipeArg(&P, RD_MARKER, -1);
  rc = P.rc ? P.rc : pipeRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    redisReply *r = P.apReply[1];
    if( P.apReply[0]->type==REDIS_REPLY_ERROR ){
      pipeReplyError(&P, 0, pzErr);
      rc = SQLITE_ERROR;
    }else if( r->type==REDIS_REPLY_ERROR ){
      pipeReplyError(&P, 1, pzErr);
      rc = SQLITE_ERROR;
    }else if( !(r->len==4 && memcmp(r->str, "none", 4)==0)
           && !(r->len==4 && memcmp(r->str, "hash", 4)==0) ){
      fedSetError(pzErr, "%s: cannot commit on server \"%s\": key %s, reserved"
          " for federate's commit markers, holds a %.*s instead of a hash"
          " (another client wrote it); nothing was written", RD_STORE,
          p->base.pServer->zName, RD_MARKER, (int)r->len, r->str);
      rc = SQLITE_ERROR;
    }
  }
  p->txn.bWatched = 1;
  pipeFree(&P);
  sqlite3_free(zFence);
  return rc;
}

static int rdCommit(FedConn *pConn, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = &p->txn;
  RedisPipe P;
  RedisOp *pOne = 0;
  const char *zMarker = pConn->zMarker;
  int i, n = 0, iExec, rc;

  if( !t->bActive && zMarker==0 ) return SQLITE_OK;
  rc = rdFlush(pConn, pzErr);
  if( rc ) return rc;
  if( t->zDoom ){
    fedSetError(pzErr, "%s", t->zDoom);
    return SQLITE_ERROR;
  }
  for(i=0; i<t->nOp; i++){
    if( !t->aOp[i].bSkip ){ n++; pOne = &t->aOp[i]; }
  }
  if( n==0 && zMarker==0 ){
    if( t->bWatched ) p->bUnwatch = 1;
    txnClear(t);
    return SQLITE_OK;
  }
  pipeInit(&P);

  if( n==1 && !t->bWatched && opAlone(pOne) && zMarker==0 ){
    /* One command that answers for itself: no MULTI, one round trip. */
    rc = fedFault(FED_FAULT_COMMIT, pzErr);
    if( rc ) goto done;
    pipeOp(&P, pOne);
    rc = pipeRun(p, &P, pzErr);
    if( rc ) goto done;
    if( P.apReply[0]->type==REDIS_REPLY_ERROR ){
      pipeReplyError(&P, 0, pzErr);
      rc = SQLITE_ERROR;
    }else if( opConflicted(pOne, P.apReply[0]) && !pOne->bIgnore ){
      opError(pOne, 1, 0, pzErr);
      rc = SQLITE_CONSTRAINT;
    }
    goto done;
  }

  rc = txnValidate(p, pzErr);
  if( rc==SQLITE_OK && t->zDoom ){
    fedSetError(pzErr, "%s", t->zDoom);
    rc = SQLITE_ERROR;
  }
  if( rc ) goto done;
  if( zMarker ){
    rc = markerFence(p, zMarker, pzErr);
    if( rc ) goto done;
  }
  rc = fedFault(FED_FAULT_COMMIT, pzErr);
  if( rc ) goto done;
  pipeCmd(&P, -1, "MULTI");
  for(i=0; i<t->nOp; i++){
    if( !t->aOp[i].bSkip ) pipeOp(&P, &t->aOp[i]);
  }
  if( zMarker ){
    /* The commit marker, in the same MULTI/EXEC as the writes. */
    pipeCmd(&P, p->iDb, "HSET");
    pipeArg(&P, RD_MARKER, -1);
    pipeArg(&P, zMarker, -1);
    pipeArgInt(&P, (i64)time(0));
  }
  iExec = P.nCmd;
  pipeCmd(&P, -1, "EXEC");
  P.iBlame = iExec+1;
  rc = pipeRun(p, &P, pzErr);
  if( rc ){
    /* Every byte sent and no answer: EXEC may have run.  Only the marker
    ** can tell (txn.c asks it on a fresh connection). */
    if( rc==SQLITE_ERROR && P.bSent && zMarker ) pConn->bUnknown = 1;
    p->iCurDb = -1;
    goto done;
  }
  {
    redisReply *rExec = P.apReply[iExec];
    if( rExec->type==REDIS_REPLY_NIL ){
      fedSetError(pzErr, "%s: transaction on server \"%s\" aborted: a key it"
          " read or writes was changed by another client meanwhile (WATCH);"
          " nothing was written", RD_STORE, p->base.pServer->zName);
      rc = SQLITE_BUSY;
      p->iCurDb = -1;
    }else if( rExec->type!=REDIS_REPLY_ARRAY ){
      /* EXECABORT: a command was refused when queued; say which. */
      for(i=1; i<iExec; i++){
        if( P.apReply[i]->type==REDIS_REPLY_ERROR ){
          pipeReplyError(&P, i, pzErr);
          break;
        }
      }
      if( i>=iExec ) pipeReplyError(&P, iExec, pzErr);
      rc = SQLITE_ERROR;
      p->iCurDb = -1;
    }else{
      /* Applied.  An error here means the checks missed something:
      ** the other commands were applied (Redis does not roll back). */
      for(i=0; i<(int)rExec->elements; i++){
        if( rExec->element[i]->type==REDIS_REPLY_ERROR ){
          char *zMsg = sqlite3_mprintf("EXEC applied the transaction only in"
              " part: %.*s", (int)rExec->element[i]->len,
              rExec->element[i]->str);
          rdSetError(pzErr, zMsg ? zMsg : "EXEC failed in part", 0);
          sqlite3_free(zMsg);
          rc = SQLITE_ERROR;
          break;
        }
      }
    }
  }

done:
  pipeFree(&P);
  if( rc==SQLITE_OK || rc==SQLITE_BUSY || rc==SQLITE_CONSTRAINT ){
    txnClear(t);
    if( rc==SQLITE_BUSY ) rc = SQLITE_ERROR;
  }
  return rc;
}

static int rdRollback(FedConn *pConn, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  int rc = fedFault(FED_FAULT_ROLLBACK, pzErr);
  if( p->txn.bWatched ) p->bUnwatch = 1;
  txnClear(&p->txn);
  return rc;
}

/* Savepoints are queue lengths. */
static int rdSavepoint(FedConn *pConn, int iRelease, int iFrom, int iTo,
                       char **pzErr){
  RedisTxn *t = &((RedisConn*)pConn)->txn;
  int i;
  if( fedFault(FED_FAULT_SAVEPOINT, pzErr) ) return SQLITE_ERROR;
  if( iRelease>=0 && iRelease<t->nMark ) t->nMark = iRelease;
  if( iTo>t->nMarkAlloc ){
    int *a = sqlite3_realloc64(t->aMark, sizeof(int)*(iTo+8));
    if( a==0 ) return SQLITE_NOMEM;
    t->aMark = a;
    t->nMarkAlloc = iTo+8;
  }
  for(i=t->nMark; i<iFrom; i++) t->aMark[i] = t->nOp;
  for(i=iFrom; i<iTo; i++) t->aMark[i] = t->nOp;
  if( iTo>t->nMark ) t->nMark = iTo;
  return SQLITE_OK;
}

static int rdRelease(FedConn *pConn, int iLevel, char **pzErr){
  RedisTxn *t = &((RedisConn*)pConn)->txn;
  (void)pzErr;
  if( iLevel>=0 && iLevel<t->nMark ) t->nMark = iLevel;
  return SQLITE_OK;
}

static int rdRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  RedisTxn *t = &((RedisConn*)pConn)->txn;
  int rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( iLevel>=0 && iLevel<t->nMark ){
    txnTruncate(t, t->aMark[iLevel]);
    t->nMark = iLevel+1;
  }
  rhashClear(&t->lrem);
  sqlite3_free(t->zDoom);
  t->zDoom = 0;
  return rc;
}

/**************************************************************************
** Pass-through: fed_query('rd', 'HGETALL user:1') and fed_exec().  The
** command is split into words as redis-cli does ("..." with \n \t \" \\
** \xHH escapes, '...' literally); a word that is exactly ? takes the next
** parameter, binary-safe.  The command is sent at once, also inside a
** transaction (it is not queued).  Each element of an array reply is one
** row {"value": ...}; any other reply is one row.
*/

/* Split zCmd into words (sqlite3_malloc'd copies in *paWord). */
static int splitCommand(const char *z, RBuf **paWord, int *pnWord,
                        char **pzErr){
  RBuf *aWord = 0;
  int nWord = 0, rc = SQLITE_OK;
  while( rc==SQLITE_OK ){
    sqlite3_str *s;
    int n;
    char *zWord;
    RBuf *aNew;
    while( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' ) z++;
    if( *z==0 ) break;
    s = sqlite3_str_new(0);
    if( *z=='"' ){
      z++;
      while( *z && *z!='"' ){
        if( *z=='\\' && z[1] ){
          z++;
          switch( *z ){
            case 'n': sqlite3_str_appendchar(s, 1, '\n'); break;
            case 't': sqlite3_str_appendchar(s, 1, '\t'); break;
            case 'r': sqlite3_str_appendchar(s, 1, '\r'); break;
            case 'x': {
              int k, v = 0;
              for(k=1; k<=2; k++){
                char c = z[k];
                if( c>='0' && c<='9' ) v = v*16 + c-'0';
                else if( c>='a' && c<='f' ) v = v*16 + c-'a'+10;
                else if( c>='A' && c<='F' ) v = v*16 + c-'A'+10;
                else break;
              }
              if( k==3 ){ sqlite3_str_appendchar(s, 1, (char)v); z += 2; }
              else sqlite3_str_appendchar(s, 1, 'x');
              break;
            }
            default: sqlite3_str_appendchar(s, 1, *z); break;
          }
          z++;
        }else{
          sqlite3_str_appendchar(s, 1, *z++);
        }
      }
      if( *z!='"' ) rc = SQLITE_ERROR; else z++;
    }else if( *z=='\'' ){
      z++;
      while( *z && *z!='\'' ) sqlite3_str_appendchar(s, 1, *z++);
      if( *z!='\'' ) rc = SQLITE_ERROR; else z++;
    }else{
      while( *z && *z!=' ' && *z!='\t' && *z!='\n' && *z!='\r' ){
        sqlite3_str_appendchar(s, 1, *z++);
      }
    }
    n = sqlite3_str_length(s);
    if( sqlite3_str_errcode(s) ) rc = SQLITE_NOMEM;
    zWord = sqlite3_str_finish(s);
    if( rc==SQLITE_ERROR ){
      fedSetError(pzErr, "%s: unbalanced quotes in command", RD_STORE);
    }
    if( rc==SQLITE_OK && zWord==0 ){
      zWord = sqlite3_malloc(1);
      if( zWord==0 ) rc = SQLITE_NOMEM; else zWord[0] = 0;
    }
    if( rc ){
      sqlite3_free(zWord);
      break;
    }
    aNew = sqlite3_realloc64(aWord, sizeof(RBuf)*(nWord+1));
    if( aNew==0 ){
      sqlite3_free(zWord);
      rc = SQLITE_NOMEM;
      break;
    }
    aWord = aNew;
    aWord[nWord].z = zWord;
    aWord[nWord].n = n;
    nWord++;
  }
  if( rc ){
    while( nWord>0 ) rbufFree(&aWord[--nWord]);
    sqlite3_free(aWord);
    return rc;
  }
  *paWord = aWord;
  *pnWord = nWord;
  return SQLITE_OK;
}

/* Append a reply as JSON: text as a string, other bytes as "x'..'". */
static void replyJson(sqlite3_str *s, const redisReply *r){
  size_t i;
  switch( r->type ){
    case REDIS_REPLY_INTEGER:
      sqlite3_str_appendf(s, "%lld", r->integer);
      break;
    case REDIS_REPLY_NIL:
      sqlite3_str_appendall(s, "null");
      break;
    case REDIS_REPLY_ARRAY:
      sqlite3_str_appendchar(s, 1, '[');
      for(i=0; i<r->elements; i++){
        if( i ) sqlite3_str_appendchar(s, 1, ',');
        replyJson(s, r->element[i]);
      }
      sqlite3_str_appendchar(s, 1, ']');
      break;
    default:
      if( isTextBytes(r->str, (int)r->len) ){
        fedJsonQuote(s, r->str, (int)r->len);
      }else{
        sqlite3_str_appendall(s, "\"x'");
        for(i=0; i<r->len; i++){
          sqlite3_str_appendf(s, "%02x", (unsigned char)r->str[i]);
        }
        sqlite3_str_appendall(s, "'\"");
      }
      break;
  }
}

/* Commands that would take the connection out of federate's hands. */
static const char *const azNoPass[] = {
  "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE",
  "SSUBSCRIBE", "MONITOR", "QUIT", "RESET", "HELLO", "SYNC", "PSYNC", 0
};

static int rdQuery(FedConn *pConn, const char *zQuery, int nParam,
                   sqlite3_value **apParam, char ***pazRow, int *pnRow,
                   i64 *pnChanged, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RBuf *aWord = 0;
  RedisPipe P;
  char **azRow = 0;
  int nWord = 0, i, iParam = 0, nRow = 0, rc;
  redisReply *r;

  *pazRow = 0;
  *pnRow = 0;
  *pnChanged = 0;
  pipeInit(&P);
  for(i=0; i<nParam; i++){
    int eType = sqlite3_value_type(apParam[i]);
    if( (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT)
     && sqlite3_value_text(apParam[i])==0 ){
      return SQLITE_NOMEM;
    }
  }
  rc = splitCommand(zQuery, &aWord, &nWord, pzErr);
  if( rc ) return rc;
  if( nWord==0 ){
    fedSetError(pzErr, "%s: empty command", RD_STORE);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  for(i=0; azNoPass[i]; i++){
    if( sqlite3_stricmp(aWord[0].z, azNoPass[i])==0 ){
      fedSetError(pzErr, "%s: %s cannot be sent through fed_query or"
          " fed_exec: federate manages the connection's transactions and"
          " replies", RD_STORE, azNoPass[i]);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }
  pipeCmd(&P, p->iDb, aWord[0].z);
  for(i=1; i<nWord; i++){
    if( aWord[i].n==1 && aWord[i].z[0]=='?' ){
      const char *z;
      int n;
      if( iParam>=nParam ){
        fedSetError(pzErr, "%s: more ? in the command than parameters",
                    RD_STORE);
        rc = SQLITE_ERROR;
        goto cleanup;
      }
      valueBytes(apParam[iParam++], &z, &n);
      pipeArg(&P, z, n);
    }else{
      pipeArg(&P, aWord[i].z, aWord[i].n);
    }
  }
  rc = pipeRun(p, &P, pzErr);
  if( rc ) goto cleanup;
  /* After a SELECT the database is not the one federate thinks. */
  if( sqlite3_stricmp(aWord[0].z, "SELECT")==0 ) p->iCurDb = -1;
  r = P.apReply[0];
  if( r->type==REDIS_REPLY_ERROR ){
    pipeReplyError(&P, 0, pzErr);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  nRow = r->type==REDIS_REPLY_ARRAY ? (int)r->elements : 1;
  *pnChanged = r->type==REDIS_REPLY_INTEGER ? r->integer : nRow;
  if( nRow>0 ){
    azRow = sqlite3_malloc64(sizeof(char*)*nRow);
    if( azRow==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    memset(azRow, 0, sizeof(char*)*nRow);
  }
  for(i=0; i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendall(s, "{\"value\":");
    replyJson(s, r->type==REDIS_REPLY_ARRAY ? r->element[i] : r);
    sqlite3_str_appendchar(s, 1, '}');
    azRow[i] = sqlite3_str_finish(s);
    if( azRow[i]==0 ){ rc = SQLITE_NOMEM; break; }
  }
  if( rc ){
    for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
    sqlite3_free(azRow);
    goto cleanup;
  }
  *pazRow = azRow;
  *pnRow = nRow;

cleanup:
  pipeFree(&P);
  for(i=0; i<nWord; i++) rbufFree(&aWord[i]);
  sqlite3_free(aWord);
  return rc;
}

/**************************************************************************
** Commit markers (FedStore.xMarkerCheck): fields of the hash RD_MARKER in
** the DSN's database, written by rdCommit inside the transaction's
** MULTI/EXEC when the coordinator sets FedConn.zMarker.
*/

/* Send one command about the marker hash: zCmd RD_MARKER [zField].  On
** success *ppReply is the reply (freeReplyObject it). */
static int markerCmd(RedisConn *p, const char *zCmd, const char *zField,
                     redisReply **ppReply, char **pzErr){
  RedisPipe P;
  int rc;
  *ppReply = 0;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, zCmd);
  pipeArg(&P, RD_MARKER, -1);
  if( zField ) pipeArg(&P, zField, -1);
  rc = P.rc ? P.rc : pipeRun(p, &P, pzErr);
  if( rc==SQLITE_OK && P.apReply[0]->type==REDIS_REPLY_ERROR ){
    pipeReplyError(&P, 0, pzErr);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    *ppReply = P.apReply[0];
    P.apReply[0] = 0;
  }
  pipeFree(&P);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
  return rc;
}

/* The fence, then the marker: SET and DEL of __federate:fence:<gid> touch
** the key that the transaction's connection WATCHed before its MULTI
** (markerFence), so its EXEC, if Redis has not run it yet (it waits in a
** lost connection's buffer, or Redis is stopped), fails whenever it
** comes; Redis runs one command at a time, so HEXISTS after it is final. */
static int rdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                         char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc, i;
  char *zFence = sqlite3_mprintf("%s%s", RD_FENCE, zGid);
  *pbExists = 0;
  if( zFence==0 ) return SQLITE_NOMEM;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, "SET");
  pipeArg(&P, zFence, -1);
  pipeArg(&P, "1", 1);
  pipeCmd(&P, p->iDb, "DEL");
  pipeArg(&P, zFence, -1);
  pipeCmd(&P, p->iDb, "HEXISTS");
  pipeArg(&P, RD_MARKER, -1);
  pipeArg(&P, zGid, -1);
  rc = P.rc ? P.rc : pipeRun(p, &P, pzErr);
  for(i=0; rc==SQLITE_OK && i<3; i++){
    if( P.apReply[i]->type==REDIS_REPLY_ERROR ){
      pipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    *pbExists = P.apReply[2]->type==REDIS_REPLY_INTEGER
             && P.apReply[2]->integer==1;
  }
  pipeFree(&P);
  sqlite3_free(zFence);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
  return rc;
}

static int rdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  redisReply *r = 0;
  int rc = markerCmd((RedisConn*)pConn, "HDEL", zGid, &r, pzErr);
  if( r ) freeReplyObject(r);
  return rc;
}

static int rdMarkerList(FedConn *pConn, const char *zPrefix, char ***pazGid,
                        int *pn, char **pzErr){
  redisReply *r = 0;
  char **az = 0;
  int n = 0, rc;
  size_t i, nPrefix = strlen(zPrefix);
  *pazGid = 0;
  *pn = 0;
  rc = markerCmd((RedisConn*)pConn, "HKEYS", 0, &r, pzErr);
  if( rc ) return rc;
  if( r->type==REDIS_REPLY_ARRAY && r->elements>0 ){
    az = sqlite3_malloc64(sizeof(char*)*r->elements);
    if( az==0 ) rc = SQLITE_NOMEM;
    for(i=0; rc==SQLITE_OK && i<r->elements; i++){
      redisReply *e = r->element[i];
      if( e->type!=REDIS_REPLY_STRING || e->len<nPrefix
       || memcmp(e->str, zPrefix, nPrefix)!=0 ){
        continue;
      }
      az[n] = fedStrdup(e->str, (int)e->len);
      if( az[n]==0 ) rc = SQLITE_NOMEM;
      else n++;
    }
  }
  freeReplyObject(r);
  if( rc ){
    while( n>0 ) sqlite3_free(az[--n]);
    sqlite3_free(az);
    return rc;
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}

/**************************************************************************
** Undo images (FedStore.xUndoImages, ext/undo.c): for a transaction that
** writes this server and another without two-phase commit.  An image is
** one whole key of any type, in a canonical encoding:
**
**   byte 0       's' string, 'h' hash, 'l' list, 'S' set, 'z' zset
**   bytes 1..8   the expiry, Unix time in ms, big-endian (-1: none)
**   the rest     string: its bytes.  Otherwise elements, each a 4-byte
**                big-endian length and its bytes: a list's in order; a
**                hash's field and value pairs, a set's members, a zset's
**                members each followed by its score (8 bytes, the IEEE
**                bits, big-endian), sorted by field or member bytes.
**
** The before-images are read under WATCH, so that the commit fails if a
** key changes before EXEC, and the after-images are what replaying the
** queue on them leaves (as the checks before EXEC replay it).  Two images
** hold the same key when all but the expiry match: an expiry is put back
** with the before-image (PEXPIREAT; one already past removes the key, as
** it would have expired) but not compared, and an after-image carries
** none.  Keys of other types (streams, modules) are refused.
*/
#define IMG_HDR 9               /* Type byte and expiry */

static const char imgTag[] = "?shlSz";      /* Indexed by RT_* */

static int imgType(char c){
  const char *z = strchr(imgTag+1, c);
  return c && z ? (int)(z - imgTag) : RT_NONE;
}

static void imgPutBytes(sqlite3_str *s, const char *z, int n){
  char a[4];
  a[0] = (char)(n>>24); a[1] = (char)(n>>16); a[2] = (char)(n>>8);
  a[3] = (char)n;
  sqlite3_str_append(s, a, 4);
  if( n>0 ) sqlite3_str_append(s, z, n);
}

static void imgPut64(sqlite3_str *s, u64 v){
  char a[8];
  int i;
  for(i=0; i<8; i++) a[i] = (char)(v >> (56-8*i));
  sqlite3_str_append(s, a, 8);
}

static u64 imgGet64(const char *a){
  u64 v = 0;
  int i;
  for(i=0; i<8; i++) v = (v<<8) | (u8)a[i];
  return v;
}

static int elemCmp(const void *pA, const void *pB){
  const RHashElem *x = *(RHashElem*const*)pA, *y = *(RHashElem*const*)pB;
  int c = memcmp(x->zKey, y->zKey, x->nKey<y->nKey ? x->nKey : y->nKey);
  return c ? c : x->nKey - y->nKey;
}

/* The image of shadow sh with expiry iExp into *pa, *pn (sqlite3_malloc'd;
** NULL for no key).  SQLITE_OK, SQLITE_NOMEM or SQLITE_TOOBIG. */
static int imageOf(const RedisShadow *sh, i64 iExp, char **pa, int *pn){
  sqlite3_str *s;
  RHashElem **aE = 0, *e;
  int i, n = 0, rc;
  *pa = 0;
  *pn = 0;
  if( sh->eType==RT_NONE ) return SQLITE_OK;
  s = sqlite3_str_new(0);
  sqlite3_str_appendchar(s, 1, imgTag[sh->eType]);
  imgPut64(s, (u64)iExp);
  if( sh->eType==RT_STRING ){
    if( sh->str.n>0 ) sqlite3_str_append(s, sh->str.z, sh->str.n);
  }else if( sh->eType==RT_LIST ){
    for(i=0; i<sh->nList; i++) imgPutBytes(s, sh->aList[i].z, sh->aList[i].n);
  }else if( sh->map.nElem>0 ){
    aE = sqlite3_malloc64(sizeof(RHashElem*)*sh->map.nElem);
    if( aE==0 ){
      sqlite3_free(sqlite3_str_finish(s));
      return SQLITE_NOMEM;
    }
    RHASH_EACH(&sh->map, i, e){ aE[n++] = e; }
    qsort(aE, n, sizeof(RHashElem*), elemCmp);
    for(i=0; i<n; i++){
      imgPutBytes(s, aE[i]->zKey, aE[i]->nKey);
      if( sh->eType==RT_HASH ){
        const RBuf *pV = (const RBuf*)aE[i]->pVal;
        imgPutBytes(s, pV->z, pV->n);
      }else if( sh->eType==RT_ZSET ){
        double r = aE[i]->r==0.0 ? 0.0 : aE[i]->r;     /* -0.0 is 0 */
        u64 v;
        memcpy(&v, &r, 8);
        imgPut64(s, v);
      }
    }
    sqlite3_free(aE);
  }
  rc = sqlite3_str_errcode(s);
  *pn = sqlite3_str_length(s);
  *pa = sqlite3_str_finish(s);
  if( rc ){
    sqlite3_free(*pa);
    *pa = 0;
    *pn = 0;
  }
  return rc;
}

/* Do images a and b hold the same key (expiries aside)? */
static int imageSame(const char *a, int na, const char *b, int nb){
  if( a==0 || b==0 ) return a==b;
  return na==nb && na>=IMG_HDR && a[0]==b[0]
      && memcmp(a+IMG_HDR, b+IMG_HDR, na-IMG_HDR)==0;
}

/* Add to P the commands that make the deleted key zKey hold image a (NULL:
** nothing).  SQLITE_CORRUPT if a is not an image. */
static int imageRestore(RedisPipe *P, int iDb, const char *zKey, int nKey,
                        const char *a, int n){
  static const char *const azCmd[] = {0, "SET", "HSET", "RPUSH", "SADD",
                                      "ZADD"};
  const char *p, *pEnd;
  int eType, nPer, nArg = 0;
  i64 iExp;
  if( a==0 ) return SQLITE_OK;
  pEnd = a + n;
  eType = n>=IMG_HDR ? imgType(a[0]) : RT_NONE;
  if( eType==RT_NONE ) return SQLITE_CORRUPT;
  iExp = (i64)imgGet64(a+1);
  p = a + IMG_HDR;
  if( eType==RT_STRING ){
    pipeCmd(P, iDb, "SET");
    pipeArg(P, zKey, nKey);
    pipeArg(P, p, (int)(pEnd-p));
  }
  nPer = (eType==RT_HASH || eType==RT_ZSET) ? 2 : 1;
  while( eType!=RT_STRING && p<pEnd ){
    const char *zElem[2];
    int nElem[2], k;
    char zScore[40];
    for(k=0; k<nPer; k++){
      if( eType==RT_ZSET && k==1 ){
        u64 v;
        double r;
        if( pEnd-p<8 ) return SQLITE_CORRUPT;
        v = imgGet64(p);
        memcpy(&r, &v, 8);
        doubleArg(r, zScore, sizeof(zScore));
        p += 8;
        continue;
      }
      if( pEnd-p<4 ) return SQLITE_CORRUPT;
      nElem[k] = (int)(((unsigned)(u8)p[0]<<24) | ((unsigned)(u8)p[1]<<16)
                       | ((unsigned)(u8)p[2]<<8) | (u8)p[3]);
      p += 4;
      if( nElem[k]<0 || pEnd-p<nElem[k] ) return SQLITE_CORRUPT;
      zElem[k] = p;
      p += nElem[k];
    }
    if( nArg==0 ){
      pipeCmd(P, iDb, azCmd[eType]);
      pipeArg(P, zKey, nKey);
    }
    if( eType==RT_ZSET ){
      pipeArgCopy(P, zScore, -1);
      pipeArg(P, zElem[0], nElem[0]);
    }else{
      for(k=0; k<nPer; k++) pipeArg(P, zElem[k], nElem[k]);
    }
    if( ++nArg==256 ) nArg = 0;             /* 256 elements a command */
  }
  if( iExp>=0 ){
    pipeCmd(P, iDb, "PEXPIREAT");
    pipeArg(P, zKey, nKey);
    pipeArgInt(P, iExp);
  }
  return SQLITE_OK;
}

/* "<store>: <zWhat> key <key> on server "<name>"<zTail>" */
static void imageError(RedisConn *p, const char *zWhat, const char *z, int n,
                       const char *zTail, char **pzErr){
  char *zKey = renderKey(z, n);
  fedSetError(pzErr, "%s: %s key %s on server \"%s\"%s", RD_STORE, zWhat,
              zKey ? zKey : "?", p->base.pServer->zName, zTail);
  sqlite3_free(zKey);
}

/*
** Read the n keys aKey[] (databases aiDb[]) under WATCH: their whole
** content into the shadows aSh[] (zeroed by the caller, shadowReset() by
** it after) and their expiries as Unix ms (-1: none) into aiExp[].
** aeGuess[] is the type each is expected to have (RT_NONE: unknown), read
** with the TYPE; a key of another type costs a second round trip.
** bCommit: for a commit (an error says nothing was committed).
*/
static int imageRead(RedisConn *p, int bCommit, int n, const int *aiDb,
                     const RBuf *aKey, const int *aeGuess, RedisShadow *aSh,
                     i64 *aiExp, char **pzErr){
  RedisPipe P, P2;
  int *aiCmd = 0, *aiCmd2 = 0;
  i64 iNow = 0;
  int i, iTime, rc;
  pipeInit(&P);
  pipeInit(&P2);
  aiCmd = sqlite3_malloc64(sizeof(int)*2*(n+1));
  if( aiCmd==0 ) return SQLITE_NOMEM;
  aiCmd2 = &aiCmd[n+1];
  for(i=0; i<n; i++){
    aiCmd[i] = P.nCmd;
    pipeCmd(&P, aiDb[i], "WATCH");
    pipeArg(&P, aKey[i].z, aKey[i].n);
    pipeCmd(&P, aiDb[i], "TYPE");
    pipeArg(&P, aKey[i].z, aKey[i].n);
    pipeCmd(&P, aiDb[i], "PTTL");
    pipeArg(&P, aKey[i].z, aKey[i].n);
    if( aeGuess[i]!=RT_NONE ){
      pipeFetchWhole(&P, aiDb[i], aeGuess[i], aKey[i].z, aKey[i].n);
    }
  }
  iTime = P.nCmd;
  pipeCmd(&P, -1, "TIME");
  rc = pipeRun(p, &P, pzErr);
  if( rc ) goto done;
  p->txn.bWatched = 1;
  for(i=0; i<P.nCmd; i++){
    if( P.apReply[i]->type==REDIS_REPLY_ERROR && !isWrongType(P.apReply[i]) ){
      pipeReplyError(&P, i, pzErr);
      rc = SQLITE_ERROR;
      goto done;
    }
  }
  {
    redisReply *r = P.apReply[iTime];
    if( r->type==REDIS_REPLY_ARRAY && r->elements==2
     && r->element[0]->type==REDIS_REPLY_STRING
     && r->element[1]->type==REDIS_REPLY_STRING ){
      iNow = strtoll(r->element[0]->str, 0, 10)*1000
           + strtoll(r->element[1]->str, 0, 10)/1000;
    }
  }

  /* Keys whose type was not the one guessed: a second read. */
  for(i=0; i<n; i++){
    redisReply *rType = P.apReply[aiCmd[i]+1];
    int eType = RT_OTHER;
    aiCmd2[i] = -1;
    if( rType->type==REDIS_REPLY_STATUS ){
      eType = typeFromName(rType->str, (int)rType->len);
    }
    if( eType==RT_OTHER ){
      imageError(p, bCommit ? "cannot compensate this transaction: undo"
                 " images cover strings, hashes, lists, sets and zsets, and"
                 : "cannot undo: undo images cover strings, hashes, lists,"
                 " sets and zsets, and", aKey[i].z, aKey[i].n,
                 bCommit ? " holds another type; nothing was committed"
                 : " holds another type now", pzErr);
      rc = SQLITE_ERROR;
      goto done;
    }
    if( eType!=RT_NONE && eType!=aeGuess[i] ){
      aiCmd2[i] = P2.nCmd;
      pipeFetchWhole(&P2, aiDb[i], eType, aKey[i].z, aKey[i].n);
    }
  }
  rc = pipeRun(p, &P2, pzErr);
  if( rc ) goto done;
  for(i=0; i<n && rc==SQLITE_OK; i++){
    int k = aiCmd[i];
    redisReply *rData = 0, *rTtl = P.apReply[k+2];
    int eType = typeFromName(P.apReply[k+1]->str, (int)P.apReply[k+1]->len);
    if( aiCmd2[i]>=0 ){
      rData = P2.apReply[aiCmd2[i]];
    }else if( aeGuess[i]!=RT_NONE ){
      rData = P.apReply[k+3];
    }
    rc = shadowFill(&aSh[i], P.apReply[k+1], 0, rData, eType);
    if( rc==SQLITE_OK && !aSh[i].bContent ){
      /* The type changed between the two reads. */
      imageError(p, "cannot read", aKey[i].z, aKey[i].n, ": another client"
                 " changed it while it was read", pzErr);
      rc = SQLITE_BUSY;
    }
    aiExp[i] = -1;
    if( rTtl->type==REDIS_REPLY_INTEGER && rTtl->integer>=0 ){
      aiExp[i] = iNow + rTtl->integer;
    }
  }

done:
  pipeFree(&P);
  pipeFree(&P2);
  sqlite3_free(aiCmd);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
  return rc;
}

static int rdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                        char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisTxn *t = &p->txn;
  FedUndoImage *a = 0;
  RHash keys;                   /* Key -> its index in a[] (elem.i) */
  RedisShadow *aSh = 0;
  RBuf *aKey = 0;
  int *aiDb = 0, *aeGuess = 0;
  i64 *aiExp = 0;
  int n = 0, nGuessAlloc = 0, i, j, rc;
  *paImg = 0;
  *pnImg = 0;
  memset(&keys, 0, sizeof(keys));
  rc = rdFlush(pConn, pzErr);
  if( rc==SQLITE_OK && t->zDoom==0 ){
    /* Settles which INSERT OR IGNORE rows are dropped. */
    rc = txnValidate(p, pzErr);
  }
  if( rc ) return rc;
  if( t->zDoom ){
    fedSetError(pzErr, "%s", t->zDoom);
    return SQLITE_ERROR;
  }

  /* The keys the queue writes, in queue order, each with the type its
  ** first command expects. */
  for(i=0; rc==SQLITE_OK && i<t->nOp; i++){
    RedisOp *pOp = &t->aOp[i];
    const RBuf *aK[2];
    int k, nK, bNew;
    if( pOp->bSkip ) continue;
    nK = opKeys(pOp, aK);
    for(k=0; rc==SQLITE_OK && k<nK; k++){
      RHashElem *e = rhashAdd(&keys, pOp->iDb, aK[k]->z, aK[k]->n, &bNew);
      if( e==0 ){ rc = SQLITE_NOMEM; break; }
      if( !bNew ) continue;
      e->i = n;
      rc = fedUndoImageSet(&a, &n, pOp->iDb, aK[k]->z, aK[k]->n, 0, 0);
      if( rc==SQLITE_OK && n>nGuessAlloc ){
        int *ai;
        nGuessAlloc = nGuessAlloc ? nGuessAlloc*2 : 16;
        ai = sqlite3_realloc64(aeGuess, sizeof(int)*nGuessAlloc);
        if( ai==0 ){ rc = SQLITE_NOMEM; break; }
        aeGuess = ai;
      }
      if( rc==SQLITE_OK ) aeGuess[n-1] = k==0 ? opType(pOp) : RT_NONE;
    }
  }
  if( rc==SQLITE_OK && n>0 ){
    aSh = sqlite3_malloc64(sizeof(RedisShadow)*n);
    if( aSh ) memset(aSh, 0, sizeof(RedisShadow)*n);
    aKey = sqlite3_malloc64(sizeof(RBuf)*n);
    aiDb = sqlite3_malloc64(sizeof(int)*n);
    aiExp = sqlite3_malloc64(sizeof(i64)*n);
    if( aSh==0 || aKey==0 || aiDb==0 || aiExp==0 ){
      rc = SQLITE_NOMEM;
    }else{
      for(j=0; j<n; j++){
        aKey[j].z = a[j].aKey;
        aKey[j].n = a[j].nKey;
        aiDb[j] = a[j].iDb;
      }
      rc = imageRead(p, 1, n, aiDb, aKey, aeGuess, aSh, aiExp, pzErr);
    }
  }

  /* The before-images, then the queue replayed on them. */
  for(j=0; rc==SQLITE_OK && j<n; j++){
    rc = imageOf(&aSh[j], aiExp[j], &a[j].aBefore, &a[j].nBefore);
  }
  for(i=0; rc==SQLITE_OK && i<t->nOp; i++){
    RedisOp *pOp = &t->aOp[i];
    RedisShadow *sh, *sh2 = 0;
    if( pOp->bSkip ) continue;
    sh = &aSh[rhashFind(&keys, pOp->iDb, pOp->key.z, pOp->key.n)->i];
    if( pOp->eOp==ROP_RENAME ){
      sh2 = &aSh[rhashFind(&keys, pOp->iDb, pOp->aArg[0].z,
                           pOp->aArg[0].n)->i];
    }
    rc = shadowApply(pOp, sh, sh2, pzErr);
    if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      /* The keys changed since the checks: EXEC would fail anyway. */
      rc = SQLITE_ERROR;
    }
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    rc = imageOf(&aSh[j], -1, &a[j].aAfter, &a[j].nAfter);
  }
  if( rc==SQLITE_TOOBIG ){
    imageError(p, "cannot compensate this transaction: the undo image of",
               a[j-1].aKey, a[j-1].nKey, " is too large; nothing was"
               " committed", pzErr);
    rc = SQLITE_ERROR;
  }

  for(j=0; aSh && j<n; j++) shadowReset(&aSh[j]);
  sqlite3_free(aSh);
  sqlite3_free(aKey);
  sqlite3_free(aiDb);
  sqlite3_free(aiExp);
  sqlite3_free(aeGuess);
  rhashClear(&keys);
  if( rc ){
    fedUndoImagesFree(a, n);
    if( rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
    return rc;
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

static int rdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                       char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisShadow sh;
  RedisPipe P;
  RBuf key;
  char *aNow = 0;
  int nNow = 0, eGuess, rc;
  i64 iExp;
  memset(&sh, 0, sizeof(sh));
  pipeInit(&P);
  key.z = pImg->aKey;
  key.n = pImg->nKey;
  eGuess = pImg->aAfter ? imgType(pImg->aAfter[0])
         : pImg->aBefore ? imgType(pImg->aBefore[0]) : RT_NONE;
  rc = imageRead(p, 0, 1, &pImg->iDb, &key, &eGuess, &sh, &iExp, pzErr);
  if( rc==SQLITE_OK ) rc = imageOf(&sh, -1, &aNow, &nNow);
  if( rc ) goto done;
  if( imageSame(aNow, nNow, pImg->aAfter, pImg->nAfter) ){
    int iExec;
    pipeCmd(&P, -1, "MULTI");
    pipeCmd(&P, pImg->iDb, "DEL");
    pipeArg(&P, pImg->aKey, pImg->nKey);
    rc = imageRestore(&P, pImg->iDb, pImg->aKey, pImg->nKey, pImg->aBefore,
                      pImg->nBefore);
    if( rc==SQLITE_CORRUPT ){
      p->bUnwatch = 1;
      imageError(p, "cannot undo", pImg->aKey, pImg->nKey, ": its undo image"
                 " is damaged", pzErr);
      rc = SQLITE_ERROR;
      goto done;
    }
    iExec = P.nCmd;
    pipeCmd(&P, -1, "EXEC");
    rc = pipeRun(p, &P, pzErr);
    p->iCurDb = -1;
    if( rc ) goto done;
    if( P.apReply[iExec]->type==REDIS_REPLY_ARRAY ){
      redisReply *r = P.apReply[iExec];
      size_t k;
      for(k=0; k<r->elements; k++){
        if( r->element[k]->type==REDIS_REPLY_ERROR ){
          rdSetError(pzErr, r->element[k]->str, "EXEC");
          rc = SQLITE_ERROR;
          break;
        }
      }
      goto done;
    }
    rc = SQLITE_BUSY;
  }else if( imageSame(aNow, nNow, pImg->aBefore, pImg->nBefore) ){
    p->bUnwatch = 1;
    goto done;                  /* Never applied, or undone already */
  }else{
    p->bUnwatch = 1;
    rc = SQLITE_BUSY;
  }
  imageError(p, "cannot undo", pImg->aKey, pImg->nKey, ": another client"
             " changed it after this transaction wrote it; it was left as it"
             " is", pzErr);
done:
  shadowReset(&sh);
  sqlite3_free(aNow);
  pipeFree(&P);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
  return rc;
}

/*
** Cache invalidation (cache.c) by keyspace notifications.  A second
** connection of the server subscribes to __keyspace@<db>__:*; any event
** on the database invalidates every cached table of the server (the
** events name keys, and which table a key belongs to is the table's
** business).  The server must have notify-keyspace-events with K and A
** (or the classes of the commands used); fed_cache_watch() adds "KA" to
** what is configured, and listening is refused when they are missing, so
** that a cache never trusts notifications that will not come.
*/
static int rdRunOne(RedisConn *p, RedisPipe *P, const char *zCmd,
                    const char *zArg1, const char *zArg2, char **pzErr){
  pipeInit(P);
  pipeCmd(P, -1, zCmd);
  if( zArg1 ) pipeArg(P, zArg1, -1);
  if( zArg2 ) pipeArg(P, zArg2, -1);
  return pipeRun(p, P, pzErr);
}

static int rdWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  const char *zFlags = "";
  char zPat[48];
  int rc;
  redisReply *r;

  rc = rdRunOne(p, &P, "CONFIG", "GET", "notify-keyspace-events", pzErr);
  if( rc==SQLITE_OK ){
    r = P.apReply[0];
    if( r->type==REDIS_REPLY_ARRAY && r->elements==2
     && r->element[1]->type==REDIS_REPLY_STRING ){
      zFlags = r->element[1]->str;
    }else{
      fedSetError(pzErr, "%s: server \"%s\" does not show its"
          " notify-keyspace-events (CONFIG GET)", RD_STORE,
          p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK && (strchr(zFlags, 'K')==0 || strchr(zFlags, 'A')==0) ){
    if( pTab ){
      char *zNew = sqlite3_mprintf("%sKA", zFlags);
      RedisPipe Q;
      if( zNew==0 ){
        rc = SQLITE_NOMEM;
      }else{
        {
          pipeInit(&Q);
          pipeCmd(&Q, -1, "CONFIG");
          pipeArg(&Q, "SET", -1);
          pipeArg(&Q, "notify-keyspace-events", -1);
          pipeArg(&Q, zNew, -1);
          rc = pipeRun(p, &Q, pzErr);
          if( rc==SQLITE_OK && Q.apReply[0]->type==REDIS_REPLY_ERROR ){
            fedSetError(pzErr, "%s: server \"%s\": CONFIG SET"
                " notify-keyspace-events: %s", RD_STORE,
                p->base.pServer->zName, Q.apReply[0]->str);
            rc = SQLITE_ERROR;
          }
          pipeFree(&Q);
        }
        sqlite3_free(zNew);
      }
    }else{
      fedSetError(pzErr, "%s: server \"%s\" sends no keyspace events"
          " (notify-keyspace-events needs K and A; fed_cache_watch() sets"
          " them)", RD_STORE, p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
  }
  pipeFree(&P);
  if( rc==SQLITE_OK && p->pSub==0 ){
    FedConn *pSub = 0;
    rc = rdConnect(p->base.pServer, &pSub, pzErr);
    if( rc==SQLITE_OK ){
      p->pSub = (RedisConn*)pSub;
      sqlite3_snprintf(sizeof(zPat), zPat, "__keyspace@%d__:*", p->iDb);
      rc = rdRunOne(p->pSub, &P, "PSUBSCRIBE", zPat, 0, pzErr);
      pipeFree(&P);
      if( rc ){
        rdDisconnect(pSub);
        p->pSub = 0;
      }
    }
  }
  if( rc==SQLITE_OK && p->base.iListen==0 ) p->base.iListen = 1;
  return rc;
}

static int rdChanges(FedConn *pConn, char ***pazRel, int *pnRel){
  RedisConn *p = (RedisConn*)pConn;
  RedisConn *pSub = p->pSub;
  struct pollfd fd;
  int bAny = 0;
  *pazRel = 0;
  *pnRel = 0;
  if( pSub==0 ) return SQLITE_OK;
  fd.fd = pSub->c->fd;
  fd.events = POLLIN;
  fd.revents = 0;
  if( poll(&fd, 1, 0)>0 ){
    void *pReply = 0;
    if( redisBufferRead(pSub->c)!=REDIS_OK ){
      /* Lost: nothing is heard until a new subscription, which the cache
      ** makes (and distrusts what it has) at its next scan. */
      rdDisconnect(&pSub->base);
      p->pSub = 0;
      p->base.iListen = 0;
      bAny = 1;
    }else{
      while( redisGetReplyFromReader(pSub->c, &pReply)==REDIS_OK && pReply ){
        freeReplyObject(pReply);
        pReply = 0;
        bAny = 1;
      }
    }
  }
  if( bAny ){
    char **az = sqlite3_malloc64(sizeof(char*));
    if( az==0 ) return SQLITE_NOMEM;
    az[0] = fedStrdup("*", 1);
    if( az[0]==0 ){ sqlite3_free(az); return SQLITE_NOMEM; }
    *pazRel = az;
    *pnRel = 1;
  }
  return SQLITE_OK;
}

extern const FedKvOps fedRedisKv;     /* L2 capability, at the end */
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
};

/* ---- BEGIN L2 capability (cachesplit) ---- */
/**************************************************************************
** The key-value capability (FedStore.pKv) that lets a Redis server hold
** the L2 cache (ext/cache/l2.c): GET, SET ... PX and INCR, each one
** pipeline in the server's database, recorded in fed_explain like any
** other command.
*/

/* Run the one command of P; an error reply is an error. */
static int kvRun(RedisConn *p, RedisPipe *P, char **pzErr){
  int rc = pipeRun(p, P, pzErr);
  if( rc==SQLITE_OK && P->apReply[0]->type==REDIS_REPLY_ERROR ){
    pipeReplyError(P, 0, pzErr);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int kvGet(FedConn *pConn, const char *zKey, int nKey, char **paVal,
                 int *pnVal, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  redisReply *r;
  int rc;
  *paVal = 0;
  *pnVal = 0;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, "GET");
  pipeArg(&P, zKey, nKey);
  rc = kvRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    r = P.apReply[0];
    if( r->type==REDIS_REPLY_STRING ){
      *paVal = sqlite3_malloc64(r->len+1);
      if( *paVal==0 ){
        rc = SQLITE_NOMEM;
      }else{
        memcpy(*paVal, r->str, r->len);
        (*paVal)[r->len] = 0;
        *pnVal = (int)r->len;
      }
    }else if( r->type!=REDIS_REPLY_NIL ){
      fedSetError(pzErr, "%s: GET: unexpected reply", RD_STORE);
      rc = SQLITE_ERROR;
    }
  }
  pipeFree(&P);
  return rc;
}

static int kvSet(FedConn *pConn, const char *zKey, int nKey,
                 const char *aVal, int nVal, i64 nTtlMs, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, "SET");
  pipeArg(&P, zKey, nKey);
  pipeArg(&P, aVal, nVal);
  pipeArg(&P, "PX", 2);
  pipeArgInt(&P, nTtlMs);
  rc = kvRun(p, &P, pzErr);
  pipeFree(&P);
  return rc;
}

static int kvIncr(FedConn *pConn, const char *zKey, int nKey, i64 *piNew,
                  char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc;
  *piNew = 0;
  pipeInit(&P);
  pipeCmd(&P, p->iDb, "INCR");
  pipeArg(&P, zKey, nKey);
  rc = kvRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    if( P.apReply[0]->type==REDIS_REPLY_INTEGER ){
      *piNew = P.apReply[0]->integer;
    }else{
      fedSetError(pzErr, "%s: INCR: unexpected reply", RD_STORE);
      rc = SQLITE_ERROR;
    }
  }
  pipeFree(&P);
  return rc;
}

const FedKvOps fedRedisKv = { kvGet, kvSet, kvIncr };
/* ---- END L2 capability (cachesplit) ---- */
