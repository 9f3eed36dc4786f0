/*
** containers.c: the Redis store's utilities: owned byte strings (RBuf),
** arenas (RArena) for copies that must not move, the key set of a scan
** (RKeySet), and small helpers on bytes, types and numbers.  The hash map
** keyed by (database, bytes) is the batch layer's FedKvHash (ext/kv.h).
*/
#include "redisInt.h"

int rdBufSet(RBuf *p, const char *z, int n){
  char *zNew = sqlite3_malloc64((u64)n+1);
  if( zNew==0 ) return SQLITE_NOMEM;
  if( n>0 ) memcpy(zNew, z, n);
  zNew[n] = 0;
  sqlite3_free(p->z);
  p->z = zNew;
  p->n = n;
  return SQLITE_OK;
}

void rdBufFree(RBuf *p){
  sqlite3_free(p->z);
  p->z = 0;
  p->n = 0;
}

int rdBufEq(const RBuf *p, const char *z, int n){
  return p->z && p->n==n && (n==0 || memcmp(p->z, z, n)==0);
}

char *rdArenaDup(RArena *pA, const char *z, int n){
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
void rdArenaReset(RArena *pA){
  RChunk *p = pA->pFirst;
  if( p==0 ) return;
  while( p->pNext ){
    RChunk *pNext = p->pNext;
    p->pNext = pNext->pNext;
    sqlite3_free(pNext);
  }
  p->nUsed = 0;
}

void rdArenaFree(RArena *pA){
  while( pA->pFirst ){
    RChunk *p = pA->pFirst;
    pA->pFirst = p->pNext;
    sqlite3_free(p);
  }
}

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
int rdKeySetAdd(RKeySet *p, const char *z, int n){
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
int rdKeySetHas(const RKeySet *p, const char *z, int n){
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

void rdKeySetClear(RKeySet *p){
  int i;
  for(i=0; i<p->nBlock; i++) sqlite3_free(p->aBlock[i]);
  sqlite3_free(p->aBlock);
  sqlite3_free(p->aSlot);
  memset(p, 0, sizeof(*p));
}

/* Return bytes to SQLite as TEXT or BLOB (fedKvIsText(), ext/kv.c). */
void rdResultBytes(sqlite3_context *ctx, const char *z, int n){
  if( z==0 ) return;
  if( fedKvIsText(z, n) ){
    sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
  }else{
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
  }
}

/* Append bytes the way fed_explain and error messages show a Redis
** argument: bare when it is plain printable ASCII, else "quoted" with
** \xHH escapes (valid UTF-8 stays readable); long ones are cut. */
void rdRenderArg(sqlite3_str *s, const char *zIn, int n){
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
        if( i+nSeq<=nShow && fedKvIsText(zIn+i, nSeq) ){
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
char *rdRenderKey(const char *z, int n){
  sqlite3_str *s = sqlite3_str_new(0);
  rdRenderArg(s, z, n);
  return sqlite3_str_finish(s);
}

/* The bytes a value is written as: text as is, numbers as SQLite's text
** affinity would store them, blobs as they are.  *pz points into pVal. */
void rdValueBytes(sqlite3_value *pVal, const char **pz, int *pn){
  if( sqlite3_value_type(pVal)==SQLITE_BLOB ){
    *pz = (const char*)sqlite3_value_blob(pVal);
  }else{
    *pz = (const char*)sqlite3_value_text(pVal);
  }
  *pn = sqlite3_value_bytes(pVal);
  if( *pz==0 ) *pz = "";
}

const char *rdTypeName(int eType){
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

int rdTypeFromName(const char *z, int n){
  if( n==6 && memcmp(z, "string", 6)==0 ) return RT_STRING;
  if( n==4 && memcmp(z, "hash", 4)==0 ) return RT_HASH;
  if( n==4 && memcmp(z, "list", 4)==0 ) return RT_LIST;
  if( n==3 && memcmp(z, "set", 3)==0 ) return RT_SET;
  if( n==4 && memcmp(z, "zset", 4)==0 ) return RT_ZSET;
  if( n==4 && memcmp(z, "none", 4)==0 ) return RT_NONE;
  return RT_OTHER;
}

/* The Redis type of the keys of a table mode (RT_NONE for "any"). */
int rdModeType(int eMode){
  if( eMode==RM_FIELDS ) return RT_HASH;
  if( eMode==RM_ANY ) return RT_NONE;
  return eMode;
}

/* Render a double so that Redis parses the same double back. */
void rdDoubleArg(double r, char *zBuf, int nBuf){
  if( isinf(r) ){
    sqlite3_snprintf(nBuf, zBuf, "%s", r<0 ? "-inf" : "+inf");
  }else{
    fedDoubleText(r, zBuf, nBuf);
  }
}

/* SQLite's exact comparison of an integer with a double: <0, 0, >0 as
** i is less than, equal to or greater than r. */
int rdIntDoubleCmp(i64 i, double r){
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
