/*
** cache/l2.c: the L2 cache: entries shared by processes in a store that
** declares the key-value capability (FedStore.pKv, Redis), keyed by a
** relation generation that writes bump.
*/
#include "cacheInt.h"

/**************************************************************************
** L2: entries in a server shared by processes (cache_l2=SERVER), through
** the key-value capability its store declares (FedStore.pKv: Redis).
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
**   fedCacheValText() writes it
**
** Everything L2 does is best effort: an error of the server is a miss.
*/

/* 64-bit FNV-1a, as 16 hex digits. */
static void cacheHash(const char *z, char *zOut){
  u64 h = 0xcbf29ce484222325ULL;
  while( *z ){ h ^= (u8)*z++; h *= 0x100000001b3ULL; }
  sqlite3_snprintf(17, zOut, "%016llx", (unsigned long long)h);
}

/* The L2 server's key-value operations and its connection, or an error
** (a miss for the caller): the server is unknown, its store has no
** key-value capability, or its connection is inside a transaction (the
** L2 commands must not join it). */
static int cacheL2Conn(FedCacheTab *pCT, const FedKvOps **ppKv,
                       FedConn **ppConn){
  FedTable *pTab = pCT->pTab;
  FedServer *pServer = 0;
  char *zErr = 0;
  int rc;
  rc = fedServerFind(pTab->pCtx, pCT->zL2, &pServer, &zErr);
  if( rc==SQLITE_OK && pServer->pStore->pKv==0 ) rc = SQLITE_ERROR;
  if( rc==SQLITE_OK ) rc = fedServerConn(pTab->pCtx, pServer, ppConn, &zErr);
  if( rc==SQLITE_OK && (*ppConn)->bTxn ) rc = SQLITE_BUSY;
  if( rc==SQLITE_OK ) *ppKv = pServer->pStore->pKv;
  sqlite3_free(zErr);
  return rc;
}

/* GET zKey from L2: *paVal the value (sqlite3_malloc'd) or NULL. */
static int cacheL2GetKey(FedCacheTab *pCT, const char *zKey, char **paVal,
                         int *pnVal){
  const FedKvOps *pKv = 0;
  FedConn *pConn = 0;
  char *zErr = 0;
  int rc = cacheL2Conn(pCT, &pKv, &pConn);
  *paVal = 0;
  *pnVal = 0;
  if( rc==SQLITE_OK ){
    rc = pKv->xGet(pConn, zKey, (int)strlen(zKey), paVal, pnVal, &zErr);
  }
  sqlite3_free(zErr);
  return rc;
}

/* The table's L2 key prefix "fedcache:<hash>:" and current generation. */
static int cacheL2Prefix(FedCacheTab *pCT, char *zPrefix, i64 *piGen){
  char *zKey = fedCacheRelKey(pCT->pTab);
  char *aVal = 0, zGenKey[48];
  char zHash[17];
  int rc, nVal = 0, i;
  if( zKey==0 ) return SQLITE_NOMEM;
  cacheHash(zKey, zHash);
  sqlite3_free(zKey);
  sqlite3_snprintf(27, zPrefix, "fedcache:%s:", zHash);
  if( piGen==0 ) return SQLITE_OK;
  sqlite3_snprintf(sizeof(zGenKey), zGenKey, "%sgen", zPrefix);
  rc = cacheL2GetKey(pCT, zGenKey, &aVal, &nVal);
  *piGen = 0;
  for(i=0; rc==SQLITE_OK && i<nVal && aVal[i]>='0' && aVal[i]<='9'; i++){
    *piGen = *piGen*10 + (aVal[i] - '0');
  }
  sqlite3_free(aVal);
  return rc;
}

/* The hash of an entry's table key (with its columns) and request. */
static int cacheL2EntryHash(FedTable *pTab, const char *zReq, char *zHash){
  char *zTKey = fedCacheTableKey(pTab);
  char *z;
  if( zTKey==0 ) return SQLITE_NOMEM;
  z = sqlite3_mprintf("%s\n%s", zTKey, zReq);
  sqlite3_free(zTKey);
  if( z==0 ) return SQLITE_NOMEM;
  cacheHash(z, zHash);
  sqlite3_free(z);
  return SQLITE_OK;
}

void fedCacheL2Bump(FedCacheTab *pCT){
  char zPrefix[32], zGenKey[48], *zErr = 0;
  const FedKvOps *pKv = 0;
  FedConn *pConn = 0;
  i64 iGen = 0;
  if( pCT->zL2==0 || pCT->pDb==0 ) return;
  if( cacheL2Prefix(pCT, zPrefix, 0) ) return;
  sqlite3_snprintf(sizeof(zGenKey), zGenKey, "%sgen", zPrefix);
  if( cacheL2Conn(pCT, &pKv, &pConn)==SQLITE_OK ){
    pKv->xIncr(pConn, zGenKey, (int)strlen(zGenKey), &iGen, &zErr);
    sqlite3_free(zErr);
  }
}

/* Copy a complete L1 entry to L2. */
void fedCacheL2Put(FedCursor *pCsr, i64 iEntry){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedTable *pTab = pCsr->pTab;
  sqlite3_stmt *pStmt = 0;
  sqlite3_str *s;
  char zPrefix[32], zKey[80], zHash[17];
  char *zTKey = 0, *zVal = 0;
  int i, nCol = 0, rc;
  i64 iGen = 0, nRow = 0, iCreated = 0;

  /* The generation read when the miss was found saves a round trip (a
  ** write since then abandoned the fill, so it is still this scan's). */
  if( cacheL2Prefix(pCT, zPrefix, p->iL2Gen>=0 ? 0 : &iGen) ) return;
  if( p->iL2Gen>=0 ) iGen = p->iL2Gen;
  if( cacheL2EntryHash(pTab, p->zKey, zHash) ) return;
  sqlite3_snprintf(sizeof(zKey), zKey, "%s%lld:%s", zPrefix, iGen, zHash);
  zTKey = fedCacheTableKey(pTab);
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
      for(i=0; i<=nCol; i++) fedCacheValText(s, sqlite3_column_value(pStmt, i));
    }
    rc = sqlite3_finalize(pStmt);
  }
  i = sqlite3_str_length(s);
  zVal = sqlite3_str_finish(s);
  if( rc==SQLITE_OK && zVal ){
    const FedKvOps *pKv = 0;
    FedConn *pConn = 0;
    char *zErr = 0;
    if( cacheL2Conn(pCT, &pKv, &pConn)==SQLITE_OK ){
      pKv->xSet(pConn, zKey, (int)strlen(zKey), zVal, i, pCT->nL2TtlMs,
                &zErr);
      sqlite3_free(zErr);
    }
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
int fedCacheL2Get(FedCursor *pCsr, i64 *piEntry){
  FedCacheCsr *p = pCsr->pCache;
  FedCacheTab *pCT = p->pCT;
  FedTable *pTab = pCsr->pTab;
  FedCacheDb *pDb = pCT->pDb;
  char zPrefix[32], zKey[80], zHash[17];
  char *aVal = 0, *zTKey = 0;
  L2Parse r;
  i64 iGen = 0, iCreated, nRow, iEntry = 0, k;
  int nCol, i, rc, nVal = 0, nValid = 0;

  *piEntry = 0;
  if( cacheL2Prefix(pCT, zPrefix, &iGen) ) return SQLITE_OK;
  p->iL2Gen = iGen;             /* For the put after the fill */
  if( cacheL2EntryHash(pTab, p->zKey, zHash) ) return SQLITE_NOMEM;
  sqlite3_snprintf(sizeof(zKey), zKey, "%s%lld:%s", zPrefix, iGen, zHash);
  rc = cacheL2GetKey(pCT, zKey, &aVal, &nVal);
  if( rc==SQLITE_NOMEM ) return rc;
  if( rc || aVal==0 ) return SQLITE_OK;
  r.z = aVal;
  r.n = nVal;
  r.i = 0;
  nValid = 1;
  zTKey = fedCacheTableKey(pTab);
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
    nValid = nValid && nCol==k && iCreated>fedCacheNow()-pCT->nTtlMs;
    if( nValid && fedCacheFillBegin(pDb)==SQLITE_OK ){
      sqlite3_str *s = sqlite3_str_new(0);
      char *zSql;
      rc = fedCacheEntryCreate(pCT, p, iCreated, &iEntry);
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
        rc = zUpd ? fedCacheExec(pDb, zUpd) : SQLITE_NOMEM;
        sqlite3_free(zUpd);
      }
      if( rc==SQLITE_OK ){
        *piEntry = iEntry;
        pCT->pStat->nL2Hit++;
      }else if( iEntry ){
        fedCacheEntryDelete(pDb, pCT->iTid, iEntry);
      }
      pDb->nFill--;
      fedCacheDbSettle(pDb);
    }
  }
  sqlite3_free(zTKey);
  sqlite3_free(aVal);
  return rc==SQLITE_NOMEM ? rc : SQLITE_OK;
}
