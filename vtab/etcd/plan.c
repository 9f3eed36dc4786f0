/*
** plan.c: the pure part of the etcd store (no network, no connection
** state beyond the snapshot revision): bytes and their classes, key
** ranges, JSON request bodies and their fed_explain text, and scan
** planning: from a plan and xFilter's values to the byte ranges, points
** and range requests a scan sends.
*/
#include "etcdInt.h"

/**************************************************************************
** Values and classes (the classes, the UTF-8 check and the byte order are
** the batch layer's: ext/kv.h).
*/

/* A copy of a[0..n), followed by a NUL byte that is part of the string
** when bNul is set (the smallest string above a); NUL-terminated. */
char *etcdBytesDup(const char *a, int n, int bNul, int *pn){
  char *z = sqlite3_malloc64((i64)n+2);
  if( z==0 ) return 0;
  if( n ) memcpy(z, a, n);
  z[n] = 0;
  z[n+1] = 0;
  *pn = n + (bNul ? 1 : 0);
  return z;
}

/* Append bytes as fed_explain and error messages show them: a JSON string
** when they are valid UTF-8 (NUL and other controls escaped as \u0000),
** else x'hex'.  nMax>0 shortens long ones, marking the cut with
** "...(N bytes)". */
void etcdAppendBytes(sqlite3_str *s, const char *a, int n, int nMax){
  int nShow = n;
  if( nMax>0 && n>nMax ){
    nShow = nMax;
    /* Do not cut inside a UTF-8 sequence. */
    while( nShow>0 && (((unsigned char)a[nShow])&0xC0)==0x80 ) nShow--;
  }
  if( fedKvUtf8(a, nShow, 1) ){
    fedJsonQuote(s, a, nShow);
  }else{
    static const char aHex[] = "0123456789abcdef";
    int i;
    sqlite3_str_appendall(s, "x'");
    for(i=0; i<nShow; i++){
      unsigned char c = (unsigned char)a[i];
      sqlite3_str_appendchar(s, 1, aHex[c>>4]);
      sqlite3_str_appendchar(s, 1, aHex[c&15]);
    }
    sqlite3_str_appendchar(s, 1, '\'');
  }
  if( nShow<n ) sqlite3_str_appendf(s, "...(%d bytes)", n);
}

/* The bytes an SQLite value is written as: text and blobs as they are,
** numbers as SQLite renders them as text.  NULL gives *pa==0. */
void etcdValueBytes(sqlite3_value *v, const char **pa, int *pn){
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL:
      *pa = 0;
      *pn = 0;
      return;
    case SQLITE_BLOB:
      *pa = (const char*)sqlite3_value_blob(v);
      *pn = sqlite3_value_bytes(v);
      if( *pa==0 ) *pa = "";
      return;
    default:
      *pa = (const char*)sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      if( *pa==0 ){ *pa = ""; *pn = -1; }   /* -1: out of memory */
      return;
  }
}

/**************************************************************************
** Key ranges: [aLo, aHi) in bytes, bHiInf for no upper bound.  Pure.
*/

void etcdRangeFree(EtcdRange *r){
  sqlite3_free(r->aLo);
  sqlite3_free(r->aHi);
  memset(r, 0, sizeof(*r));
}

/* The whole key space: ["", infinity). */
static int rangeInitAll(EtcdRange *r){
  memset(r, 0, sizeof(*r));
  r->aLo = etcdBytesDup("", 0, 0, &r->nLo);
  r->bHiInf = 1;
  return r->aLo ? SQLITE_OK : SQLITE_NOMEM;
}

int etcdRangeCopy(EtcdRange *pTo, const EtcdRange *pFrom){
  memset(pTo, 0, sizeof(*pTo));
  pTo->bHiInf = pFrom->bHiInf;
  pTo->bEmpty = pFrom->bEmpty;
  pTo->aLo = etcdBytesDup(pFrom->aLo, pFrom->nLo, 0, &pTo->nLo);
  if( pTo->aLo==0 ) return SQLITE_NOMEM;
  if( !pFrom->bHiInf ){
    pTo->aHi = etcdBytesDup(pFrom->aHi, pFrom->nHi, 0, &pTo->nHi);
    if( pTo->aHi==0 ) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

static void rangeCheckEmpty(EtcdRange *r){
  if( !r->bHiInf && fedKvBytesCmp(r->aLo, r->nLo, r->aHi, r->nHi)>=0 ){
    r->bEmpty = 1;
  }
}

/* Raise the lower bound to a (or to a followed by NUL: "> a"). */
void etcdRangeRaiseLo(EtcdRange *r, const char *a, int n, int bNul,
                      int *pRc){
  char *z;
  int nz;
  if( *pRc || r->bEmpty ) return;
  z = etcdBytesDup(a, n, bNul, &nz);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( fedKvBytesCmp(z, nz, r->aLo, r->nLo)>0 ){
    sqlite3_free(r->aLo);
    r->aLo = z;
    r->nLo = nz;
  }else{
    sqlite3_free(z);
  }
  rangeCheckEmpty(r);
}

/* Lower the (exclusive) upper bound to a (or a followed by NUL: "<= a"). */
void etcdRangeLowerHi(EtcdRange *r, const char *a, int n, int bNul,
                      int *pRc){
  char *z;
  int nz;
  if( *pRc || r->bEmpty ) return;
  z = etcdBytesDup(a, n, bNul, &nz);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( r->bHiInf || fedKvBytesCmp(z, nz, r->aHi, r->nHi)<0 ){
    sqlite3_free(r->aHi);
    r->aHi = z;
    r->nHi = nz;
    r->bHiInf = 0;
  }else{
    sqlite3_free(z);
  }
  rangeCheckEmpty(r);
}

static int rangeContains(const EtcdRange *r, const char *a, int n){
  if( r->bEmpty ) return 0;
  if( fedKvBytesCmp(a, n, r->aLo, r->nLo)<0 ) return 0;
  if( !r->bHiInf && fedKvBytesCmp(a, n, r->aHi, r->nHi)>=0 ) return 0;
  return 1;
}

/* The smallest string above every string that starts with a[0..n):
** increment the last byte below 0xff, dropping those after it.  Returns 0
** (no bound) when there is none; else a copy in *pz, *pn. */
int etcdPrefixEnd(const char *a, int n, char **pz, int *pn, int *pRc){
  int i;
  *pz = 0;
  for(i=n-1; i>=0 && (unsigned char)a[i]==0xff; i--){}
  if( i<0 ) return 0;
  *pz = etcdBytesDup(a, i+1, 0, pn);
  if( *pz==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  (*pz)[i] = (char)((unsigned char)(*pz)[i] + 1);
  return 1;
}

/**************************************************************************
** Requests.  JSON bodies are built with jansson; keys and values travel
** base64-encoded.  Builders take a sticky error code (int *pRc) and do
** nothing once it is set.
*/
json_t *etcdJsonNew(json_t *p, int *pRc){
  if( p==0 && *pRc==SQLITE_OK ) *pRc = SQLITE_NOMEM;
  return p;
}

void etcdJsonSet(json_t *pObj, const char *zKey, json_t *pVal, int *pRc){
  if( *pRc!=SQLITE_OK || pObj==0 ){
    json_decref(pVal);
    return;
  }
  if( pVal==0 || json_object_set_new(pObj, zKey, pVal) ) *pRc = SQLITE_NOMEM;
}

void etcdJsonAppend(json_t *pArr, json_t *pVal, int *pRc){
  if( *pRc!=SQLITE_OK || pArr==0 ){
    json_decref(pVal);
    return;
  }
  if( pVal==0 || json_array_append_new(pArr, pVal) ) *pRc = SQLITE_NOMEM;
}

static json_t *jBytes(const char *a, int n, int *pRc){
  char *z;
  json_t *p;
  if( *pRc ) return 0;
  z = fedBase64Encode(a, n);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  p = etcdJsonNew(json_string_nocheck(z), pRc);
  sqlite3_free(z);
  return p;
}

json_t *etcdJsonInt(i64 v, int *pRc){
  if( *pRc ) return 0;
  return etcdJsonNew(json_integer((json_int_t)v), pRc);
}

/* Set "key" (and "range_end" unless NULL) as remote bytes: the table's
** prefix followed by the local bytes. */
void etcdJsonSetKey(json_t *pObj, const char *zField, const char *aPrefix,
                    int nPrefix, const char *a, int n, int *pRc){
  char *z;
  if( *pRc ) return;
  z = sqlite3_malloc64((i64)nPrefix+n+1);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( nPrefix ) memcpy(z, aPrefix, nPrefix);
  if( n ) memcpy(&z[nPrefix], a, n);
  etcdJsonSet(pObj, zField, jBytes(z, nPrefix+n, pRc), pRc);
  sqlite3_free(z);
}

/* Is zName one of the fields that carry bytes as base64? */
static int isBytesField(const char *zName){
  return strcmp(zName, "key")==0 || strcmp(zName, "range_end")==0
      || strcmp(zName, "value")==0;
}

/* Append pJson as fed_explain shows it: JSON with the base64 fields
** decoded (etcdAppendBytes()), values shortened. */
static void explainJson(sqlite3_str *s, json_t *pJson, int bBytes, int *pRc){
  if( *pRc ) return;
  if( json_is_object(pJson) ){
    const char *zName;
    json_t *pVal;
    int i = 0;
    sqlite3_str_appendchar(s, 1, '{');
    json_object_foreach(pJson, zName, pVal){
      if( i++ ) sqlite3_str_appendchar(s, 1, ',');
      fedJsonQuote(s, zName, -1);
      sqlite3_str_appendchar(s, 1, ':');
      explainJson(s, pVal, isBytesField(zName), pRc);
    }
    sqlite3_str_appendchar(s, 1, '}');
  }else if( json_is_array(pJson) ){
    size_t i;
    sqlite3_str_appendchar(s, 1, '[');
    for(i=0; i<json_array_size(pJson); i++){
      if( i ) sqlite3_str_appendchar(s, 1, ',');
      explainJson(s, json_array_get(pJson, i), 0, pRc);
    }
    sqlite3_str_appendchar(s, 1, ']');
  }else if( bBytes && json_is_string(pJson) ){
    char *a = 0;
    int nAlloc = 0, n = 0;
    int rc = fedBase64Decode(json_string_value(pJson),
                             (int)json_string_length(pJson), &a, &nAlloc, &n);
    if( rc==SQLITE_OK ){
      etcdAppendBytes(s, a, n, ETCD_EXPLAIN_VALUE_MAX);
    }else if( rc==SQLITE_NOMEM ){
      *pRc = rc;
    }else{
      fedHttpJsonAppend(s, pJson);
    }
    sqlite3_free(a);
  }else{
    if( fedHttpJsonAppend(s, pJson) ) *pRc = SQLITE_NOMEM;
  }
}

/* "POST <zPath> <body as explainJson shows it>", sqlite3_malloc'd. */
char *etcdExplainText(const char *zPath, json_t *pBody, int *pRc){
  static const char *const azSecret[] = { "password", "hashedPassword", 0 };
  json_t *pShown = pBody;
  sqlite3_str *s;
  char *z;
  int i;
  if( *pRc ) return 0;
  /* A request through fed_query may carry a password (auth/authenticate,
  ** auth/user/add, auth/user/changepw): fed_explain and error messages
  ** show "***" instead. */
  for(i=0; json_is_object(pBody) && azSecret[i]; i++){
    if( json_object_get(pBody, azSecret[i]) ){
      if( pShown==pBody ){
        pShown = json_copy(pBody);
        if( pShown==0 ){ *pRc = SQLITE_NOMEM; return 0; }
      }
      if( json_object_set_new(pShown, azSecret[i], json_string("***")) ){
        json_decref(pShown);
        *pRc = SQLITE_NOMEM;
        return 0;
      }
    }
  }
  s = sqlite3_str_new(0);
  sqlite3_str_appendf(s, "POST %s ", zPath);
  explainJson(s, pShown, 0, pRc);
  if( pShown!=pBody ) json_decref(pShown);
  z = sqlite3_str_finish(s);
  if( z==0 && *pRc==SQLITE_OK ) *pRc = SQLITE_NOMEM;
  if( *pRc ){
    sqlite3_free(z);
    z = 0;
  }
  return z;
}

/* The remote range of the whole table, for a request body. */
void etcdJsonSetTableRange(json_t *pObj, EtcdTable *pET, int *pRc){
  char *zEnd = 0;
  int nEnd = 0;
  if( pET->nPrefix==0 ){
    etcdJsonSetKey(pObj, "key", 0, 0, "\0", 1, pRc);
    etcdJsonSetKey(pObj, "range_end", 0, 0, "\0", 1, pRc);
  }else{
    etcdJsonSetKey(pObj, "key", pET->aPrefix, pET->nPrefix, "", 0, pRc);
    if( etcdPrefixEnd(pET->aPrefix, pET->nPrefix, &zEnd, &nEnd, pRc) ){
      etcdJsonSetKey(pObj, "range_end", zEnd, nEnd, "", 0, pRc);
    }else{
      etcdJsonSetKey(pObj, "range_end", 0, 0, "\0", 1, pRc);
    }
    sqlite3_free(zEnd);
  }
}

/**************************************************************************
** Scan planning: from the plan and xFilter's values to what to read.
** Pure: no network.
**
** A key condition is a range in SQLite's order of keys: every TEXT key
** before every BLOB key, bytes within a class.  It becomes one byte range
** per class (aPart[FED_KV_TEXT], aPart[FED_KV_BLOB]): "key > 'm'" is the TEXT
** keys from "m\0" on and every BLOB key; "key < x'ff'" is every TEXT key
** and the BLOB keys below "\xff".  An IN list becomes a set of exact keys.
** create_revision and mod_revision conditions become inclusive bounds
** (etcd's min_/max_..._revision filters) and, for IN, sets.
*/

void etcdScanFree(EtcdScan *p){
  int i;
  etcdRangeFree(&p->aPart[0]);
  etcdRangeFree(&p->aPart[1]);
  for(i=0; i<p->nPoint; i++) sqlite3_free(p->aPoint[i].a);
  sqlite3_free(p->aPoint);
  sqlite3_free(p->aRevIn[0]);
  sqlite3_free(p->aRevIn[1]);
  memset(p, 0, sizeof(*p));
}

static int pointCmp(const EtcdPoint *a, const EtcdPoint *b){
  if( a->eCls!=b->eCls ) return a->eCls - b->eCls;
  return fedKvBytesCmp(a->a, a->n, b->a, b->n);
}

static int pointCmpQsort(const void *a, const void *b){
  return pointCmp((const EtcdPoint*)a, (const EtcdPoint*)b);
}

static int i64CmpQsort(const void *a, const void *b){
  i64 x = *(const i64*)a, y = *(const i64*)b;
  return x<y ? -1 : x>y;
}

/* Sort and remove duplicates. */
static void pointsNormalise(EtcdPoint *a, int *pn){
  int i, j = 0;
  if( *pn<=1 ) return;
  qsort(a, *pn, sizeof(EtcdPoint), pointCmpQsort);
  for(i=0; i<*pn; i++){
    if( j>0 && pointCmp(&a[j-1], &a[i])==0 ){
      sqlite3_free(a[i].a);
    }else{
      a[j++] = a[i];
    }
  }
  *pn = j;
}

int etcdPointFind(const EtcdPoint *a, int n, const EtcdPoint *pKey){
  int lo = 0, hi = n-1;
  while( lo<=hi ){
    int mid = (lo+hi)/2;
    int c = pointCmp(&a[mid], pKey);
    if( c==0 ) return 1;
    if( c<0 ) lo = mid+1; else hi = mid-1;
  }
  return 0;
}

/*
** The class and bytes a key condition's value compares as.  Returns 1 and
** sets *peCls, *pa, *pn; 0 if the value is NULL (nothing compares with
** NULL); -1 if the value is a number in a loose term, whose comparison
** depends on affinities only SQLite knows (then the term restricts
** nothing).  *ppTmp may get a copy to free.
*/
static int keyOperand(
  sqlite3_value *pVal, int bExact, sqlite3_value **ppTmp,
  int *peCls, const char **pa, int *pn, int *pRc
){
  int eType = sqlite3_value_type(pVal);
  *ppTmp = 0;
  if( eType==SQLITE_NULL ) return 0;
  if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
    if( !bExact ) return -1;
    /* A literal: the TEXT affinity of the key column applies. */
    *ppTmp = sqlite3_value_dup(pVal);
    if( *ppTmp==0 ){ *pRc = SQLITE_NOMEM; return 0; }
    pVal = *ppTmp;
    *pa = (const char*)sqlite3_value_text(pVal);
    if( *pa==0 ){ *pRc = SQLITE_NOMEM; return 0; }
    *pn = sqlite3_value_bytes(pVal);
    *peCls = FED_KV_TEXT;
    return 1;
  }
  if( eType==SQLITE_BLOB ){
    *pa = (const char*)sqlite3_value_blob(pVal);
    *pn = sqlite3_value_bytes(pVal);
    if( *pa==0 ) *pa = "";
    *peCls = FED_KV_BLOB;
    return 1;
  }
  *pa = (const char*)sqlite3_value_text(pVal);
  if( *pa==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  *pn = sqlite3_value_bytes(pVal);
  *peCls = FED_KV_TEXT;
  return 1;
}

/* Apply "key op (eCls, a)" to the two byte ranges. */
static void scanKeyCompare(
  EtcdScan *p, int op, int eCls, const char *a, int n, int *pRc
){
  EtcdRange *pMine = &p->aPart[eCls];
  EtcdRange *pOther = &p->aPart[1-eCls];
  switch( op ){
    case FED_OP_EQ: case FED_OP_IS:
      /* x'616263' is never a key: those bytes read as TEXT. */
      if( fedKvClass(a, n)!=eCls ) pMine->bEmpty = 1;
      etcdRangeRaiseLo(pMine, a, n, 0, pRc);
      etcdRangeLowerHi(pMine, a, n, 1, pRc);
      pOther->bEmpty = 1;
      break;
    case FED_OP_GT: case FED_OP_GE:
      etcdRangeRaiseLo(pMine, a, n, op==FED_OP_GT, pRc);
      /* Every BLOB is above any TEXT; no TEXT is above a BLOB. */
      if( eCls==FED_KV_BLOB ) pOther->bEmpty = 1;
      break;
    case FED_OP_LT: case FED_OP_LE:
      etcdRangeLowerHi(pMine, a, n, op==FED_OP_LE, pRc);
      if( eCls==FED_KV_TEXT ) pOther->bEmpty = 1;
      break;
  }
}

/*
** The ASCII literal prefix of a LIKE or GLOB pattern (up to the first
** wildcard or non-ASCII byte), its length in *pnPrefix, and whether the
** pattern is exactly that prefix followed by one final '%' or '*' with
** nothing in the prefix that LIKE folds (then the prefix range is exact).
*/
void etcdPatternPrefix(const char *z, int bGlob, int *pnPrefix,
                       int *pbExact){
  int i, bLetter = 0;
  for(i=0; z[i]; i++){
    unsigned char c = (unsigned char)z[i];
    if( c>=0x80 ) break;
    if( bGlob ? (c=='*' || c=='?' || c=='[') : (c=='%' || c=='_') ) break;
    if( (c>='a' && c<='z') || (c>='A' && c<='Z') ) bLetter = 1;
  }
  *pnPrefix = i;
  *pbExact = z[i]==(bGlob ? '*' : '%') && z[i+1]==0 && (bGlob || !bLetter);
}

/* SQLite built with SQLITE_LIKE_DOESNT_MATCH_BLOBS (Debian's is) says
** no BLOB is LIKE or GLOB anything; others read the BLOB as text. */
static int likeMatchesBlobs(void){
  return !sqlite3_compileoption_used("LIKE_DOESNT_MATCH_BLOBS");
}

/* "key LIKE/GLOB pattern": the byte range of its literal prefix, for the
** TEXT keys and (if this SQLite matches BLOBs) the BLOB keys.  LIKE folds
** ASCII case, so its range runs from the upper-case to the lower-case
** spelling. */
static void scanKeyPattern(EtcdScan *p, const char *z, int bGlob, int *pRc){
  int nPrefix, bExact, i;
  char *zLo, *zHi, *zEnd = 0;
  int nLo, nHi, nEnd = 0;
  if( !likeMatchesBlobs() ) p->aPart[FED_KV_BLOB].bEmpty = 1;
  etcdPatternPrefix(z, bGlob, &nPrefix, &bExact);
  if( nPrefix==0 || *pRc ) return;
  zLo = etcdBytesDup(z, nPrefix, 0, &nLo);
  zHi = etcdBytesDup(z, nPrefix, 0, &nHi);
  if( zLo==0 || zHi==0 ){
    *pRc = SQLITE_NOMEM;
  }else{
    if( !bGlob ){
      for(i=0; i<nPrefix; i++){
        if( zLo[i]>='a' && zLo[i]<='z' ) zLo[i] -= 'a'-'A';
        if( zHi[i]>='A' && zHi[i]<='Z' ) zHi[i] += 'a'-'A';
      }
    }
    for(i=0; i<2; i++){
      etcdRangeRaiseLo(&p->aPart[i], zLo, nLo, 0, pRc);
      if( etcdPrefixEnd(zHi, nHi, &zEnd, &nEnd, pRc) ){
        etcdRangeLowerHi(&p->aPart[i], zEnd, nEnd, 0, pRc);
      }
      sqlite3_free(zEnd);
      zEnd = 0;
    }
  }
  sqlite3_free(zLo);
  sqlite3_free(zHi);
}

/* "key IN (...)": the exact keys.  A second IN on key intersects. */
static void scanKeyIn(EtcdScan *p, sqlite3_value *pList, int bExact,
                      int *pRc){
  EtcdPoint *a = 0;
  int n = 0, nAlloc = 0, rc;
  sqlite3_value *pV;
  for(rc=sqlite3_vtab_in_first(pList, &pV); rc==SQLITE_OK && pV && !*pRc;
      rc=sqlite3_vtab_in_next(pList, &pV)){
    sqlite3_value *pTmp = 0;
    const char *aKey;
    int nKey, eCls;
    int r = keyOperand(pV, bExact, &pTmp, &eCls, &aKey, &nKey, pRc);
    if( r<0 ){
      /* A number of unknown affinity: restrict nothing. */
      sqlite3_value_free(pTmp);
      while( n>0 ) sqlite3_free(a[--n].a);
      sqlite3_free(a);
      return;
    }
    if( r>0 && fedKvClass(aKey, nKey)==eCls ){
      if( n>=nAlloc ){
        EtcdPoint *aNew;
        nAlloc = nAlloc ? nAlloc*2 : 16;
        aNew = sqlite3_realloc64(a, sizeof(EtcdPoint)*nAlloc);
        if( aNew==0 ){ *pRc = SQLITE_NOMEM; sqlite3_value_free(pTmp); break; }
        a = aNew;
      }
      a[n].eCls = (u8)eCls;
      a[n].a = etcdBytesDup(aKey, nKey, 0, &a[n].n);
      if( a[n].a==0 ) *pRc = SQLITE_NOMEM; else n++;
    }
    sqlite3_value_free(pTmp);
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_DONE && !*pRc ) *pRc = rc;
  if( *pRc ){
    while( n>0 ) sqlite3_free(a[--n].a);
    sqlite3_free(a);
    return;
  }
  pointsNormalise(a, &n);
  if( p->bPoints ){
    int i, j = 0;
    for(i=0; i<n; i++){
      if( etcdPointFind(p->aPoint, p->nPoint, &a[i]) ) a[j++] = a[i];
      else sqlite3_free(a[i].a);
    }
    n = j;
    for(i=0; i<p->nPoint; i++) sqlite3_free(p->aPoint[i].a);
    sqlite3_free(p->aPoint);
  }
  p->aPoint = a;
  p->nPoint = n;
  p->bPoints = 1;
}

/*
** "revision op value" as SQLite compares an INTEGER column: numeric
** affinity for the value, integers below text below blobs, exact
** integer/real comparison.  Narrows [*pMin, *pMax] or sets *pbEmpty.
*/
static void revCompare(
  int op, sqlite3_value *pVal, i64 *pMin, i64 *pMax, u8 *pbEmpty, int *pRc
){
  sqlite3_value *pDup = sqlite3_value_dup(pVal);
  i64 lo = I64_MIN, hi = I64_MAX;
  int eType;
  if( pDup==0 ){ *pRc = SQLITE_NOMEM; return; }
  eType = sqlite3_value_numeric_type(pDup);
  if( eType==SQLITE_INTEGER ){
    i64 v = sqlite3_value_int64(pDup);
    switch( op ){
      case FED_OP_EQ: lo = hi = v; break;
      case FED_OP_GT:
        if( v==I64_MAX ) *pbEmpty = 1; else lo = v+1;
        break;
      case FED_OP_GE: lo = v; break;
      case FED_OP_LT:
        if( v==I64_MIN ) *pbEmpty = 1; else hi = v-1;
        break;
      case FED_OP_LE: hi = v; break;
    }
  }else if( eType==SQLITE_FLOAT ){
    double r = sqlite3_value_double(pDup);
    if( r>=9223372036854775807.0 ){
      if( op!=FED_OP_LT && op!=FED_OP_LE ) *pbEmpty = 1;
    }else if( r<-9223372036854775808.0 ){
      if( op!=FED_OP_GT && op!=FED_OP_GE ) *pbEmpty = 1;
    }else{
      i64 f = (i64)floor(r), c = (i64)ceil(r);
      switch( op ){
        case FED_OP_EQ:
          if( f==c && (double)f==r ) lo = hi = f; else *pbEmpty = 1;
          break;
        case FED_OP_GT:                        /* > r:  >= floor(r)+1 */
          if( f==I64_MAX ) *pbEmpty = 1; else lo = f+1;
          break;
        case FED_OP_GE: lo = c; break;
        case FED_OP_LT:                        /* < r:  <= ceil(r)-1 */
          if( c==I64_MIN ) *pbEmpty = 1; else hi = c-1;
          break;
        case FED_OP_LE: hi = f; break;
      }
    }
  }else if( eType==SQLITE_NULL ){
    *pbEmpty = 1;
  }else{
    /* Text or blob: above every integer. */
    if( op!=FED_OP_LT && op!=FED_OP_LE ) *pbEmpty = 1;
  }
  sqlite3_value_free(pDup);
  if( lo>*pMin ) *pMin = lo;
  if( hi<*pMax ) *pMax = hi;
  if( *pMin>*pMax ) *pbEmpty = 1;
}

/* "revision IN (...)": the integers of the list (others never match). */
static void revIn(EtcdScan *p, int j, sqlite3_value *pList, int *pRc){
  i64 *a = 0;
  int n = 0, nAlloc = 0, rc, i, k;
  sqlite3_value *pV;
  for(rc=sqlite3_vtab_in_first(pList, &pV); rc==SQLITE_OK && pV && !*pRc;
      rc=sqlite3_vtab_in_next(pList, &pV)){
    i64 lo = I64_MIN, hi = I64_MAX;
    u8 bNone = 0;
    revCompare(FED_OP_EQ, pV, &lo, &hi, &bNone, pRc);
    if( bNone || *pRc ) continue;
    if( n>=nAlloc ){
      i64 *aNew;
      nAlloc = nAlloc ? nAlloc*2 : 16;
      aNew = sqlite3_realloc64(a, sizeof(i64)*nAlloc);
      if( aNew==0 ){ *pRc = SQLITE_NOMEM; break; }
      a = aNew;
    }
    a[n++] = lo;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_DONE && !*pRc ) *pRc = rc;
  if( *pRc ){ sqlite3_free(a); return; }
  if( n>1 ) qsort(a, n, sizeof(i64), i64CmpQsort);
  for(i=k=0; i<n; i++){
    if( k>0 && a[k-1]==a[i] ) continue;
    if( p->bRevIn[j] && !bsearch(&a[i], p->aRevIn[j], p->nRevIn[j],
                                 sizeof(i64), i64CmpQsort) ){
      continue;
    }
    a[k++] = a[i];
  }
  sqlite3_free(p->aRevIn[j]);
  p->aRevIn[j] = a;
  p->nRevIn[j] = k;
  p->bRevIn[j] = 1;
  if( k==0 ){
    p->bEmpty = 1;
  }else{
    if( a[0]>p->aRevMin[j] ) p->aRevMin[j] = a[0];
    if( a[k-1]<p->aRevMax[j] ) p->aRevMax[j] = a[k-1];
    if( p->aRevMin[j]>p->aRevMax[j] ) p->bEmpty = 1;
  }
}

/* Fill *p from the plan and xFilter's values. */
int etcdScanPlan(
  const FedPlan *pPlan, int argc, sqlite3_value **argv, EtcdScan *p
){
  int i, rc = SQLITE_OK;
  memset(p, 0, sizeof(*p));
  rc = rangeInitAll(&p->aPart[FED_KV_TEXT]);
  if( rc==SQLITE_OK ) rc = rangeInitAll(&p->aPart[FED_KV_BLOB]);
  p->aRevMin[0] = p->aRevMin[1] = I64_MIN;
  p->aRevMax[0] = p->aRevMax[1] = I64_MAX;
  p->nLimit = -1;
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = 0;
    if( t->iArg>=0 ){
      if( t->iArg>=argc ) return SQLITE_CORRUPT_VTAB;
      pVal = argv[t->iArg];
    }
    if( t->iCol==ETCD_COL_KEY ){
      switch( t->op ){
        case FED_OP_ISNULL:
          p->bEmpty = 1;
          break;
        case FED_OP_NOTNULL:
          break;
        case FED_OP_LIKE: case FED_OP_GLOB: {
          const char *z;
          /* A build where no blob is LIKE anything also matches nothing
          ** with a blob pattern. */
          if( sqlite3_value_type(pVal)==SQLITE_BLOB && !likeMatchesBlobs() ){
            p->bEmpty = 1;
            break;
          }
          z = (const char*)sqlite3_value_text(pVal);
          if( z==0 ){
            if( sqlite3_value_type(pVal)!=SQLITE_NULL ) rc = SQLITE_NOMEM;
            p->bEmpty = 1;
          }else{
            scanKeyPattern(p, z, t->op==FED_OP_GLOB, &rc);
          }
          break;
        }
        case FED_OP_IN:
          scanKeyIn(p, pVal, t->bExact, &rc);
          break;
        default: {
          sqlite3_value *pTmp = 0;
          const char *a;
          int n, eCls;
          int r = keyOperand(pVal, t->bExact, &pTmp, &eCls, &a, &n, &rc);
          if( r==0 && rc==SQLITE_OK ) p->bEmpty = 1;
          if( r>0 ) scanKeyCompare(p, t->op, eCls, a, n, &rc);
          sqlite3_value_free(pTmp);
          break;
        }
      }
    }else if( t->iCol==ETCD_COL_CREATE || t->iCol==ETCD_COL_MOD ){
      int j = t->iCol==ETCD_COL_MOD;
      p->bRevTerm = 1;
      if( t->op==FED_OP_IN ){
        revIn(p, j, pVal, &rc);
      }else{
        revCompare(t->op, pVal, &p->aRevMin[j], &p->aRevMax[j], &p->bEmpty,
                   &rc);
      }
    }
  }
  if( rc!=SQLITE_OK ) return rc;
  /* Revisions are at least 1. */
  if( p->aRevMax[0]<1 || p->aRevMax[1]<1 ) p->bEmpty = 1;
  if( p->bPoints ){
    /* Keep the keys inside the ranges of their class. */
    int j = 0;
    for(i=0; i<p->nPoint; i++){
      EtcdPoint *pt = &p->aPoint[i];
      if( rangeContains(&p->aPart[pt->eCls], pt->a, pt->n) ){
        p->aPoint[j++] = *pt;
      }else{
        sqlite3_free(pt->a);
      }
    }
    p->nPoint = j;
    if( j==0 ) p->bEmpty = 1;
  }else if( p->aPart[0].bEmpty && p->aPart[1].bEmpty ){
    p->bEmpty = 1;
  }
  p->bOrdered = pPlan->nOrder>0;
  p->bDesc = p->bOrdered && pPlan->aOrderDesc[0];
  p->bKeysOnly = !fedPlanColUsed(pPlan, ETCD_COL_VALUE);
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    p->nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( p->nLimit<0 ) p->nLimit = -1;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    p->nOffset = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( p->nOffset<0 ) p->nOffset = 0;
  }
  return SQLITE_OK;
}

/* Does a row match the pushed conditions?  aRev is {create, mod}, or NULL
** for a row of this transaction's own writes (revisions unknown). */
int etcdScanMatch(const EtcdScan *p, int eCls, const char *a, int n,
                  const i64 *aRev){
  int j;
  if( p->bEmpty ) return 0;
  if( p->bPoints ){
    EtcdPoint pt;
    pt.eCls = (u8)eCls;
    pt.a = (char*)a;
    pt.n = n;
    if( !etcdPointFind(p->aPoint, p->nPoint, &pt) ) return 0;
  }else if( !rangeContains(&p->aPart[eCls], a, n) ){
    return 0;
  }
  if( p->bRevTerm ){
    if( aRev==0 ) return 0;
    for(j=0; j<2; j++){
      if( aRev[j]<p->aRevMin[j] || aRev[j]>p->aRevMax[j] ) return 0;
      if( p->bRevIn[j] && !bsearch(&aRev[j], p->aRevIn[j], p->nRevIn[j],
                                   sizeof(i64), i64CmpQsort) ){
        return 0;
      }
    }
  }
  return 1;
}

/**************************************************************************
** The range requests of a scan (scan.c sends them).
*/

/* Add "revision" (the snapshot) to a range request, if there is one. */
void etcdJsonSetRevision(EtcdConn *p, json_t *pReq, int *pRc){
  if( p->iReadRev>0 ){
    etcdJsonSet(pReq, "revision", etcdJsonInt(p->iReadRev, pRc), pRc);
  }
}

/* The body of a range request over local range r.  bAll: every key read
** so far by this step was returned, so a LIMIT may shrink the page to the
** rows still wanted; once some were skipped (the other class, or kept for
** later) pages are page_size, lest a LIMIT 3 read millions 3 at a time. */
json_t *etcdScanRequest(
  EtcdCursor *pCsr, const EtcdStep *pStep, const EtcdRange *r, int bAll,
  int *pRc
){
  EtcdConn *p = pCsr->pConn;
  EtcdTable *pET = pCsr->pET;
  EtcdScan *pScan = &pCsr->scan;
  json_t *pReq = etcdJsonNew(json_object(), pRc);
  i64 nLimit = pET->nPage;
  int j;
  /* A range of one key is sent as the key alone, without limit or sort. */
  int bOne = !r->bHiInf && r->nHi==r->nLo+1 && r->aHi[r->nLo]==0
          && memcmp(r->aHi, r->aLo, r->nLo)==0;
  if( pET->nPrefix==0 && r->nLo==0 ){
    etcdJsonSetKey(pReq, "key", 0, 0, "\0", 1, pRc);     /* "" is not a key */
  }else{
    etcdJsonSetKey(pReq, "key", pET->aPrefix, pET->nPrefix, r->aLo, r->nLo,
                   pRc);
  }
  if( r->bHiInf ){
    char *zEnd = 0;
    int nEnd = 0;
    if( etcdPrefixEnd(pET->aPrefix, pET->nPrefix, &zEnd, &nEnd, pRc) ){
      etcdJsonSetKey(pReq, "range_end", zEnd, nEnd, "", 0, pRc);
    }else{
      etcdJsonSetKey(pReq, "range_end", 0, 0, "\0", 1, pRc);  /* no end */
    }
    sqlite3_free(zEnd);
  }else if( !bOne ){
    etcdJsonSetKey(pReq, "range_end", pET->aPrefix, pET->nPrefix, r->aHi,
                   r->nHi, pRc);
  }
  if( bAll && pScan->nLimit>=0 && pScan->nLimit+pScan->nOffset<nLimit ){
    nLimit = pScan->nLimit + pScan->nOffset;
  }
  if( nLimit<1 ) nLimit = 1;
  if( !bOne ) etcdJsonSet(pReq, "limit", etcdJsonInt(nLimit, pRc), pRc);
  etcdJsonSetRevision(p, pReq, pRc);
  if( pStep->bDesc && !bOne ){
    etcdJsonSet(pReq, "sort_order", etcdJsonNew(json_string("DESCEND"), pRc),
                pRc);
    etcdJsonSet(pReq, "sort_target", etcdJsonNew(json_string("KEY"), pRc), pRc);
  }
  if( pScan->bKeysOnly || pStep->bProbe ){
    etcdJsonSet(pReq, "keys_only", etcdJsonNew(json_true(), pRc), pRc);
  }
  for(j=0; j<2; j++){
    static const char *const azMin[2] = {"min_create_revision",
                                         "min_mod_revision"};
    static const char *const azMax[2] = {"max_create_revision",
                                         "max_mod_revision"};
    if( pScan->aRevMin[j]>1 ){
      etcdJsonSet(pReq, azMin[j], etcdJsonInt(pScan->aRevMin[j], pRc), pRc);
    }
    if( pScan->aRevMax[j]<I64_MAX ){
      etcdJsonSet(pReq, azMax[j], etcdJsonInt(pScan->aRevMax[j], pRc), pRc);
    }
  }
  if( *pRc ){
    json_decref(pReq);
    pReq = 0;
  }
  return pReq;
}
