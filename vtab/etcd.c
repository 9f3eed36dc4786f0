/*
** etcd.c: the etcd store, over etcd's v3 JSON gateway (vtab/http.c).
**
**   SELECT fed_server('ec', 'etcd', 'http://127.0.0.1:2379',
**                     'timeout=30, connect_timeout=10, max_txn_ops=128,
**                      user=app, password_env=ETCD_PASSWORD, ca_file=/ca.pem');
**   CREATE VIRTUAL TABLE cfg USING etcd(
**       server=ec,                  -- required: a fed_server() name
**       prefix='config/',           -- the key space: keys that start with
**                                   -- it, shown without it (default: all)
**       page_size=1000              -- keys per range request of a scan
**   );
**   -- columns: key, value, create_revision, mod_revision, version, lease
**
** Sections: values and classes, key ranges (pure), requests and their
** fed_explain text (pure), connection, table, scan planning (pure), scan,
** writes, transactions, pass-through.  docs/etcd.md is the user's view.
**
** Keys and values are bytes.  They read as TEXT when they are valid UTF-8
** without NUL bytes, else as BLOB.  SQLite orders every TEXT before every
** BLOB and each class by bytes (BINARY); etcd orders all keys by bytes.  A
** scan therefore covers two byte ranges, one per class, and returns the
** TEXT keys first (ascending), so that conditions on the key and ORDER BY
** key are exact.  Writes are queued and sent at commit as one atomic
** /v3/kv/txn whose compares check that the rows read for update are
** unchanged since the transaction's snapshot revision.
*/
#include "http.h"
#include <stdlib.h>
#include <math.h>
#include <time.h>

#define ETCD_STORE "etcd"

#define ETCD_COL_KEY     0
#define ETCD_COL_VALUE   1
#define ETCD_COL_CREATE  2
#define ETCD_COL_MOD     3
#define ETCD_COL_VERSION 4
#define ETCD_COL_LEASE   5
#define ETCD_NCOL        6

/* Classes of a key or value, in SQLite's order. */
#define CLS_TEXT 0
#define CLS_BLOB 1
#define CLS_MASK(c) (1<<(c))

/* A scan buffers the keys of its second class seen during the first
** range, up to this much, instead of reading them again. */
#define ETCD_BUFFER_ROWS  1000
#define ETCD_BUFFER_BYTES (4<<20)

#define I64_MAX ((i64)0x7fffffffffffffffLL)
#define I64_MIN (-I64_MAX-1)

/* Keys that start with ETCD_RESERVED belong to federate and no table shows
** them.  ETCD_MARKER + <global id> is the commit marker of a transaction
** where this server was the last resource (value: unix time of the
** commit, no lease: recovery may need it long after). */
#define ETCD_RESERVED "__federate/"
#define ETCD_MARKER   "__federate/txn/"
/* A marker key whose value starts with this is not a marker but a fence:
** recovery found no marker and wrote this one, so that the transaction's
** txn, if it is still in flight, fails its compare (the marker key must
** be absent) whenever it reaches etcd.  Kept ETCD_FENCE_KEEP seconds. */
#define ETCD_FENCE    "abort "
#define ETCD_FENCE_KEEP 86400

/* fed_explain shows at most this many bytes of a value. */
#define ETCD_EXPLAIN_VALUE_MAX 200

typedef struct EtcdConn EtcdConn;
typedef struct EtcdTable EtcdTable;
typedef struct EtcdCursor EtcdCursor;
typedef struct EtcdRange EtcdRange;
typedef struct EtcdPoint EtcdPoint;
typedef struct EtcdScan EtcdScan;
typedef struct EtcdStep EtcdStep;
typedef struct EtcdRow EtcdRow;
typedef struct EtcdOwned EtcdOwned;
typedef struct EtcdOp EtcdOp;

static const char *const azEtcdColumn[ETCD_NCOL] = {
  "key", "value", "create_revision", "mod_revision", "version", "lease"
};
static const char *const azEtcdType[ETCD_NCOL] = {
  "bytes", "bytes", "int64", "int64", "int64", "int64"
};

/**************************************************************************
** Values and classes.
*/

/* 1 if a[0..n) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or
** code points above U+10FFFF), and has no NUL byte unless bNulOk. */
static int utf8Valid(const char *aIn, int n, int bNulOk){
  const unsigned char *a = (const unsigned char*)aIn;
  int i = 0;
  while( i<n ){
    unsigned c = a[i];
    unsigned cp, cMin;
    int k, nMore;
    if( c<0x80 ){
      if( c==0 && !bNulOk ) return 0;
      i++;
      continue;
    }
    if( c>=0xC2 && c<=0xDF ){ nMore = 1; cp = c&0x1F; cMin = 0x80; }
    else if( c>=0xE0 && c<=0xEF ){ nMore = 2; cp = c&0x0F; cMin = 0x800; }
    else if( c>=0xF0 && c<=0xF4 ){ nMore = 3; cp = c&0x07; cMin = 0x10000; }
    else return 0;
    if( i+nMore>=n ) return 0;
    for(k=1; k<=nMore; k++){
      unsigned cc = a[i+k];
      if( (cc&0xC0)!=0x80 ) return 0;
      cp = (cp<<6) | (cc&0x3F);
    }
    if( cp<cMin || cp>0x10FFFF || (cp>=0xD800 && cp<=0xDFFF) ) return 0;
    i += nMore+1;
  }
  return 1;
}

/* The class of bytes read from etcd: TEXT if valid UTF-8 without NUL. */
static int classOf(const char *a, int n){
  return utf8Valid(a, n, 0) ? CLS_TEXT : CLS_BLOB;
}

/* Compare byte strings as memcmp() then length: etcd's and BINARY's
** order. */
static int bytesCmp(const char *a, int na, const char *b, int nb){
  int n = na<nb ? na : nb;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : na-nb;
}

/* A copy of a[0..n), followed by a NUL byte that is part of the string
** when bNul is set (the smallest string above a); NUL-terminated. */
static char *bytesDup(const char *a, int n, int bNul, int *pn){
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
static void appendBytes(sqlite3_str *s, const char *a, int n, int nMax){
  int nShow = n;
  if( nMax>0 && n>nMax ){
    nShow = nMax;
    /* Do not cut inside a UTF-8 sequence. */
    while( nShow>0 && (((unsigned char)a[nShow])&0xC0)==0x80 ) nShow--;
  }
  if( utf8Valid(a, nShow, 1) ){
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
static void valueBytes(sqlite3_value *v, const char **pa, int *pn){
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

/* At the store's entry points: an error without a message means that
** making the message failed, i.e. memory ran out. */
static int etcdRc(int rc, char **pzErr){
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ) rc = SQLITE_NOMEM;
  return rc;
}

/**************************************************************************
** Key ranges: [aLo, aHi) in bytes, bHiInf for no upper bound.  Pure.
*/
struct EtcdRange {
  char *aLo; int nLo;           /* Inclusive lower bound */
  char *aHi; int nHi;           /* Exclusive upper bound, unless bHiInf */
  u8 bHiInf;
  u8 bEmpty;
};

static void rangeFree(EtcdRange *r){
  sqlite3_free(r->aLo);
  sqlite3_free(r->aHi);
  memset(r, 0, sizeof(*r));
}

/* The whole key space: ["", infinity). */
static int rangeInitAll(EtcdRange *r){
  memset(r, 0, sizeof(*r));
  r->aLo = bytesDup("", 0, 0, &r->nLo);
  r->bHiInf = 1;
  return r->aLo ? SQLITE_OK : SQLITE_NOMEM;
}

static int rangeCopy(EtcdRange *pTo, const EtcdRange *pFrom){
  memset(pTo, 0, sizeof(*pTo));
  pTo->bHiInf = pFrom->bHiInf;
  pTo->bEmpty = pFrom->bEmpty;
  pTo->aLo = bytesDup(pFrom->aLo, pFrom->nLo, 0, &pTo->nLo);
  if( pTo->aLo==0 ) return SQLITE_NOMEM;
  if( !pFrom->bHiInf ){
    pTo->aHi = bytesDup(pFrom->aHi, pFrom->nHi, 0, &pTo->nHi);
    if( pTo->aHi==0 ) return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

static void rangeCheckEmpty(EtcdRange *r){
  if( !r->bHiInf && bytesCmp(r->aLo, r->nLo, r->aHi, r->nHi)>=0 ){
    r->bEmpty = 1;
  }
}

/* Raise the lower bound to a (or to a followed by NUL: "> a"). */
static void rangeRaiseLo(EtcdRange *r, const char *a, int n, int bNul,
                         int *pRc){
  char *z;
  int nz;
  if( *pRc || r->bEmpty ) return;
  z = bytesDup(a, n, bNul, &nz);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( bytesCmp(z, nz, r->aLo, r->nLo)>0 ){
    sqlite3_free(r->aLo);
    r->aLo = z;
    r->nLo = nz;
  }else{
    sqlite3_free(z);
  }
  rangeCheckEmpty(r);
}

/* Lower the (exclusive) upper bound to a (or a followed by NUL: "<= a"). */
static void rangeLowerHi(EtcdRange *r, const char *a, int n, int bNul,
                         int *pRc){
  char *z;
  int nz;
  if( *pRc || r->bEmpty ) return;
  z = bytesDup(a, n, bNul, &nz);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( r->bHiInf || bytesCmp(z, nz, r->aHi, r->nHi)<0 ){
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
  if( bytesCmp(a, n, r->aLo, r->nLo)<0 ) return 0;
  if( !r->bHiInf && bytesCmp(a, n, r->aHi, r->nHi)>=0 ) return 0;
  return 1;
}

/* The smallest string above every string that starts with a[0..n):
** increment the last byte below 0xff, dropping those after it.  Returns 0
** (no bound) when there is none; else a copy in *pz, *pn. */
static int prefixEnd(const char *a, int n, char **pz, int *pn, int *pRc){
  int i;
  *pz = 0;
  for(i=n-1; i>=0 && (unsigned char)a[i]==0xff; i--){}
  if( i<0 ) return 0;
  *pz = bytesDup(a, i+1, 0, pn);
  if( *pz==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  (*pz)[i] = (char)((unsigned char)(*pz)[i] + 1);
  return 1;
}

/**************************************************************************
** Requests.  JSON bodies are built with jansson; keys and values travel
** base64-encoded.  Builders take a sticky error code (int *pRc) and do
** nothing once it is set.
*/
static json_t *jNew(json_t *p, int *pRc){
  if( p==0 && *pRc==SQLITE_OK ) *pRc = SQLITE_NOMEM;
  return p;
}

static void jSet(json_t *pObj, const char *zKey, json_t *pVal, int *pRc){
  if( *pRc!=SQLITE_OK || pObj==0 ){
    json_decref(pVal);
    return;
  }
  if( pVal==0 || json_object_set_new(pObj, zKey, pVal) ) *pRc = SQLITE_NOMEM;
}

static void jAppend(json_t *pArr, json_t *pVal, int *pRc){
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
  p = jNew(json_string_nocheck(z), pRc);
  sqlite3_free(z);
  return p;
}

static json_t *jInt(i64 v, int *pRc){
  if( *pRc ) return 0;
  return jNew(json_integer((json_int_t)v), pRc);
}

/* Set "key" (and "range_end" unless NULL) as remote bytes: the table's
** prefix followed by the local bytes. */
static void jSetKey(json_t *pObj, const char *zField, const char *aPrefix,
                    int nPrefix, const char *a, int n, int *pRc){
  char *z;
  if( *pRc ) return;
  z = sqlite3_malloc64((i64)nPrefix+n+1);
  if( z==0 ){ *pRc = SQLITE_NOMEM; return; }
  if( nPrefix ) memcpy(z, aPrefix, nPrefix);
  if( n ) memcpy(&z[nPrefix], a, n);
  jSet(pObj, zField, jBytes(z, nPrefix+n, pRc), pRc);
  sqlite3_free(z);
}

/* Is zName one of the fields that carry bytes as base64? */
static int isBytesField(const char *zName){
  return strcmp(zName, "key")==0 || strcmp(zName, "range_end")==0
      || strcmp(zName, "value")==0;
}

/* Append pJson as fed_explain shows it: JSON with the base64 fields
** decoded (appendBytes()), values shortened. */
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
      appendBytes(s, a, n, ETCD_EXPLAIN_VALUE_MAX);
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
static char *explainText(const char *zPath, json_t *pBody, int *pRc){
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

/**************************************************************************
** Connection.
*/

/* One queued write or compare of the transaction. */
#define OP_PUT        1         /* put aKey = aVal (lease iLease) */
#define OP_DEL        2         /* delete aKey */
#define OP_CMP_ABSENT 3         /* aKey must not exist (INSERT) */
#define OP_CMP_SAME   4         /* aKey unchanged since revision iRev */
#define OP_CMP_REV    5         /* aKey not written after revision iRev
                                ** (it may be absent): an undo image's
                                ** guard (etcdUndoImages) */

struct EtcdOp {
  u8 eOp;
  char *aKey; int nKey;         /* Remote key (with the table's prefix) */
  char *aVal; int nVal;         /* OP_PUT */
  i64 iLease;                   /* OP_PUT: 0 for none */
  i64 iRev;                     /* OP_CMP_SAME */
  char *zTab;                   /* Table name, for UNIQUE errors */
};

struct EtcdConn {
  FedConn base;                 /* Base class. Must be first */
  FedHttp *pHttp;
  i64 nMaxOps;                  /* Operations per txn the server takes */
  char *zUser;                  /* etcd user, or NULL */
  char *zPwEnv;                 /* Environment variable of its password */
  /* Reads */
  i64 iReadRev;                 /* Snapshot revision of the reads of this
                                ** statement or transaction; 0: none yet */
  EtcdCursor *pCsrList;         /* Open cursors that use this connection */
  /* The transaction: writes queued until commit */
  EtcdOp *aOp;
  int nOp, nOpAlloc;
  int *aMark;                   /* aMark[i]: nOp when savepoint i began */
  int nMark, nMarkAlloc;
  int bMaybeSent;               /* The last etcdCall failed after its
                                ** request went out (FedHttpCall) */
  /* Cache invalidation */
  FedHttpStream *pWatch;        /* The watch of every key, or NULL */
  int bChanged;                 /* A change not yet told to the cache */
};

static FedContext *etcdCtx(EtcdConn *p){
  return p->base.pServer->pCtx;
}

static const char *const azEtcdServerOpt[] = {
  "timeout", "command_timeout", "connect_timeout", "max_txn_ops", "user",
  "password_env", "ca_file", 0
};
static const char *const azEtcdTableOpt[] = { "prefix", "page_size", 0 };

static void opClear(EtcdOp *pOp){
  sqlite3_free(pOp->aKey);
  sqlite3_free(pOp->aVal);
  sqlite3_free(pOp->zTab);
  memset(pOp, 0, sizeof(*pOp));
}

/* Drop queued operations from iFrom on. */
static void queueTruncate(EtcdConn *p, int iFrom){
  while( p->nOp>iFrom ) opClear(&p->aOp[--p->nOp]);
}

static void queueReset(EtcdConn *p){
  queueTruncate(p, 0);
  p->nMark = 0;
}

static void cursorDetach(EtcdCursor *pCsr);

static void etcdDisconnect(FedConn *pConn){
  EtcdConn *p = (EtcdConn*)pConn;
  if( p==0 ) return;
  while( p->pCsrList ) cursorDetach(p->pCsrList);
  fedHttpStreamClose(p->pWatch);
  fedHttpClose(p->pHttp);
  queueReset(p);
  sqlite3_free(p->aOp);
  sqlite3_free(p->aMark);
  sqlite3_free(p->zUser);
  sqlite3_free(p->zPwEnv);
  sqlite3_free(p);
}

/* HTTP is connectionless for our purpose: libcurl reconnects by itself,
** and a transaction lives in the client until commit. */
static int etcdIsAlive(FedConn *pConn){
  (void)pConn;
  return 1;
}

/* Authenticate as zUser and keep the token as the Authorization header. */
static int etcdAuthenticate(EtcdConn *p, char **pzErr){
  const char *zPw = getenv(p->zPwEnv);
  FedHttpCall call;
  json_t *pBody;
  json_t *pToken;
  char *zExplain;
  int rc = SQLITE_OK;
  if( zPw==0 ){
    fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
        " by password_env) is not set", ETCD_STORE, p->base.pServer->zName,
        p->zPwEnv);
    return SQLITE_ERROR;
  }
  fedHttpSetHeader(p->pHttp, "Authorization", 0);
  pBody = jNew(json_object(), &rc);
  jSet(pBody, "name", jNew(json_string(p->zUser), &rc), &rc);
  jSet(pBody, "password", jNew(json_string(zPw), &rc), &rc);
  {
    /* The password never reaches fed_explain or an error message. */
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendall(s, "POST /v3/auth/authenticate {\"name\":");
    fedJsonQuote(s, p->zUser, -1);
    sqlite3_str_appendall(s, ",\"password\":\"***\"}");
    zExplain = sqlite3_str_finish(s);
    if( zExplain==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    memset(&call, 0, sizeof(call));
    call.zMethod = "POST";
    call.zPath = "/v3/auth/authenticate";
    call.pJson = pBody;
    call.zExplain = zExplain;
    rc = fedHttpCall(p->pHttp, &call, pzErr);
    if( rc==SQLITE_OK ){
      pToken = json_object_get(call.pOut, "token");
      if( !json_is_string(pToken) ){
        fedSetError(pzErr, "%s: server \"%s\" sent no token for user \"%s\"",
                    ETCD_STORE, p->base.pServer->zName, p->zUser);
        rc = SQLITE_ERROR;
      }else{
        rc = fedHttpSetHeader(p->pHttp, "Authorization",
                              json_string_value(pToken));
      }
    }
    fedHttpCallClear(&call);
  }
  json_decref(pBody);
  sqlite3_free(zExplain);
  return rc;
}

/*
** Send one request; *ppOut gets the parsed reply (json_decref it).  The
** fed_explain text shows the body with keys and values decoded.  With
** authentication, an expired token is renewed once.  *piExplain (if not
** NULL) gets the fed_explain entry.
*/
static int etcdCall(
  EtcdConn *p, const char *zPath, json_t *pBody, int iFault,
  json_t **ppOut, i64 *piExplain, char **pzErr
){
  FedHttpCall call;
  char *zExplain;
  int rc = SQLITE_OK, nTry;
  *ppOut = 0;
  zExplain = explainText(zPath, pBody, &rc);
  if( rc ) return rc;
  for(nTry=0; nTry<2; nTry++){
    memset(&call, 0, sizeof(call));
    call.zMethod = "POST";
    call.zPath = zPath;
    call.pJson = pBody;
    call.zExplain = zExplain;
    call.iFault = iFault;
    call.bAnyStatus = p->zUser!=0;
    rc = fedHttpCall(p->pHttp, &call, pzErr);
    p->bMaybeSent = rc!=SQLITE_OK && call.bMaybeSent;
    if( rc==SQLITE_OK && call.iStatus>=400 ){
      const char *zText = fedHttpErrorText(call.pOut);
      if( nTry==0 && (call.iStatus==401
            || (zText && strstr(zText, "invalid auth token"))) ){
        fedHttpCallClear(&call);
        rc = etcdAuthenticate(p, pzErr);
        if( rc ) break;
        continue;
      }
      rc = fedHttpStatusError(p->pHttp, &call, pzErr);
      fedHttpCallClear(&call);
    }
    break;
  }
  if( rc==SQLITE_OK ){
    *ppOut = call.pOut;
    if( piExplain ) *piExplain = call.iExplain;
  }
  sqlite3_free(zExplain);
  return rc;
}

/* The server's options, checked; also at fed_server() (xServerCheck). */
static int serverOptions(
  FedServer *pServer, i64 *piTimeout, i64 *piConnTimeout, i64 *pnMaxOps,
  char **pzErr
){
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = fedConfigGet(pServer->pOpt, "password_env");
  int rc;
  if( sqlite3_strnicmp(pServer->zDsn, "http://", 7)!=0
   && sqlite3_strnicmp(pServer->zDsn, "https://", 8)!=0 ){
    fedSetError(pzErr, "%s: server \"%s\": the address must be an"
        " http:// or https:// URL (etcd's client URL, e.g."
        " http://127.0.0.1:2379)", ETCD_STORE, pServer->zName);
    return SQLITE_ERROR;
  }
  /* command_timeout, the name every store uses; timeout, its older name. */
  rc = fedConfigInt(pServer->pOpt, fedConfigGet(pServer->pOpt,
                    "command_timeout") ? "command_timeout" : "timeout",
                    30, 1, 86400, piTimeout, ETCD_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600,
                      piConnTimeout, ETCD_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "max_txn_ops", 128, 1, 1000000,
                      pnMaxOps, ETCD_STORE, pzErr);
  }
  if( rc==SQLITE_OK && (zUser==0)!=(zPwEnv==0) ){
    fedSetError(pzErr, "%s: server \"%s\": user= and password_env= go"
                " together", ETCD_STORE, pServer->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int etcdServerCheck(FedServer *pServer, char **pzErr){
  i64 a, b, c;
  return serverOptions(pServer, &a, &b, &c, pzErr);
}

static int etcdConnectImpl(FedServer *pServer, FedConn **ppConn, char **pzErr){
  FedHttpConfig cfg;
  EtcdConn *p;
  i64 iTimeout, iConnTimeout, nMaxOps;
  const char *zUser = fedConfigGet(pServer->pOpt, "user");
  const char *zPwEnv = 0;
  int rc;

  *ppConn = 0;
  rc = serverOptions(pServer, &iTimeout, &iConnTimeout, &nMaxOps, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc!=SQLITE_OK ) return rc;

  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  p->nMaxOps = nMaxOps;
  if( zUser ){
    p->zUser = fedStrdup(zUser, -1);
    p->zPwEnv = fedStrdup(zPwEnv, -1);
    if( p->zUser==0 || p->zPwEnv==0 ){
      etcdDisconnect(&p->base);
      return SQLITE_NOMEM;
    }
  }
  memset(&cfg, 0, sizeof(cfg));
  cfg.zStore = ETCD_STORE;
  cfg.pServer = pServer;
  cfg.zBaseUrl = pServer->zDsn;
  cfg.nConnectTimeoutMs = (int)iConnTimeout*1000;
  cfg.nTimeoutMs = (int)(iTimeout>2000000 ? 2000000 : iTimeout)*1000;
  cfg.zCaFile = fedConfigGet(pServer->pOpt, "ca_file");
  rc = fedHttpOpen(&cfg, &p->pHttp, pzErr);
  if( rc==SQLITE_OK && p->zUser ) rc = etcdAuthenticate(p, pzErr);
  if( rc!=SQLITE_OK ){
    etcdDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

static int etcdConnect(
  FedServer *pServer, FedConn **ppConn, char **pzErr
){
  return etcdRc(etcdConnectImpl(pServer, ppConn, pzErr), pzErr);
}

/**************************************************************************
** Table.
*/
struct EtcdTable {
  char *aPrefix;                /* Key prefix (remote), NUL-terminated */
  int nPrefix;
  i64 nPage;                    /* page_size */
};

static void etcdTableFree(FedTable *pTab){
  EtcdTable *pET = (EtcdTable*)pTab->pStoreTab;
  if( pET ){
    sqlite3_free(pET->aPrefix);
    sqlite3_free(pET);
    pTab->pStoreTab = 0;
  }
}

/* Parse the table options into pTab->pStoreTab (once). */
static int etcdTableInit(FedTable *pTab, char **pzErr){
  EtcdTable *pET;
  const char *zPrefix;
  i64 nPage;
  int rc;
  if( pTab->pStoreTab ) return SQLITE_OK;
  rc = fedConfigInt(pTab->pCfg, "page_size", 1000, 1, 1000000, &nPage,
                    ETCD_STORE, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pET = sqlite3_malloc64(sizeof(*pET));
  if( pET==0 ) return SQLITE_NOMEM;
  memset(pET, 0, sizeof(*pET));
  zPrefix = fedConfigGet(pTab->pCfg, "prefix");
  pET->aPrefix = fedStrdup(zPrefix ? zPrefix : "", -1);
  if( pET->aPrefix==0 ){
    sqlite3_free(pET);
    return SQLITE_NOMEM;
  }
  pET->nPrefix = (int)strlen(pET->aPrefix);
  pET->nPage = nPage;
  pTab->pStoreTab = pET;
  return SQLITE_OK;
}

/* The remote range of the whole table, for a request body. */
static void jSetTableRange(json_t *pObj, EtcdTable *pET, int *pRc){
  char *zEnd = 0;
  int nEnd = 0;
  if( pET->nPrefix==0 ){
    jSetKey(pObj, "key", 0, 0, "\0", 1, pRc);
    jSetKey(pObj, "range_end", 0, 0, "\0", 1, pRc);
  }else{
    jSetKey(pObj, "key", pET->aPrefix, pET->nPrefix, "", 0, pRc);
    if( prefixEnd(pET->aPrefix, pET->nPrefix, &zEnd, &nEnd, pRc) ){
      jSetKey(pObj, "range_end", zEnd, nEnd, "", 0, pRc);
    }else{
      jSetKey(pObj, "range_end", 0, 0, "\0", 1, pRc);
    }
    sqlite3_free(zEnd);
  }
}

/*
** The columns are fixed; a given column list is refused.  With a
** connection (CREATE VIRTUAL TABLE), count the keys once: it checks that
** the server answers and gives the planner an estimate.
*/
static int etcdDescribeImpl(FedConn *pConn, FedTable *pTab, char **pzErr){
  EtcdTable *pET;
  int i, rc;
  if( pTab->nCol>0 ){
    fedSetError(pzErr, "%s: the columns of an etcd table are fixed (key,"
        " value, create_revision, mod_revision, version, lease); leave out"
        " columns=", ETCD_STORE);
    return SQLITE_ERROR;
  }
  rc = etcdTableInit(pTab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pET = (EtcdTable*)pTab->pStoreTab;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = fedStrdup(pET->aPrefix, -1);
  if( pTab->zRemote==0 ) return SQLITE_NOMEM;
  pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*ETCD_NCOL);
  if( pTab->aCol==0 ) return SQLITE_NOMEM;
  memset(pTab->aCol, 0, sizeof(FedColumn)*ETCD_NCOL);
  for(i=0; i<ETCD_NCOL; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pTab->nCol++;
    pCol->zName = fedStrdup(azEtcdColumn[i], -1);
    pCol->zType = fedStrdup(azEtcdType[i], -1);
    if( pCol->zName==0 || pCol->zType==0 ) return SQLITE_NOMEM;
    pCol->bPk = i==ETCD_COL_KEY;
    pCol->bNotNull = i<=ETCD_COL_VALUE;
  }
  if( pConn ){
    EtcdConn *p = (EtcdConn*)pConn;
    json_t *pBody, *pOut = 0;
    i64 nCount = 0;
    rc = SQLITE_OK;
    pBody = jNew(json_object(), &rc);
    jSetTableRange(pBody, pET, &rc);
    jSet(pBody, "count_only", jNew(json_true(), &rc), &rc);
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, "/v3/kv/range", pBody, 0, &pOut, 0, pzErr);
    }
    if( rc==SQLITE_OK ){
      fedJsonInt64(json_object_get(pOut, "count"), &nCount);
      pTab->nRowEst = nCount>0 ? (double)nCount : 1.0;
    }
    json_decref(pOut);
    json_decref(pBody);
  }
  return rc;
}

static int etcdDescribe(
  FedConn *pConn, FedTable *pTab, char **pzErr
){
  return etcdRc(etcdDescribeImpl(pConn, pTab, pzErr), pzErr);
}

static int etcdColumns(FedTable *pTab, char **pzErr){
  int i, rc;
  if( pTab->nCol!=ETCD_NCOL ) goto bad;
  for(i=0; i<ETCD_NCOL; i++){
    FedColumn *pCol = &pTab->aCol[i];
    if( sqlite3_stricmp(pCol->zName, azEtcdColumn[i])!=0 ) goto bad;
    pCol->eKind = i;
    pCol->zAffinity = i<=ETCD_COL_VALUE ? "TEXT" : "INTEGER";
  }
  pTab->iPk = ETCD_COL_KEY;
  rc = etcdTableInit(pTab, pzErr);
  if( rc==SQLITE_OK && pTab->zRemote==0 ){
    pTab->zRemote = fedStrdup(((EtcdTable*)pTab->pStoreTab)->aPrefix, -1);
    if( pTab->zRemote==0 ) rc = SQLITE_NOMEM;
  }
  return rc;
bad:
  fedSetError(pzErr, "%s: table \"%s\": the column record does not list"
      " etcd's columns; drop and create the table again", ETCD_STORE,
      pTab->zName);
  return SQLITE_ERROR;
}

/*
** The ASCII literal prefix of a LIKE or GLOB pattern (up to the first
** wildcard or non-ASCII byte), its length in *pnPrefix, and whether the
** pattern is exactly that prefix followed by one final '%' or '*' with
** nothing in the prefix that LIKE folds (then the prefix range is exact).
*/
static void patternPrefix(const char *z, int bGlob, int *pnPrefix,
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

static int etcdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  (void)pTab;
  if( iCol==ETCD_COL_KEY ){
    switch( op ){
      case FED_OP_ISNULL: case FED_OP_NOTNULL:
        return FED_PUSH_EXACT;
      case FED_OP_EQ: case FED_OP_IS: case FED_OP_GT: case FED_OP_GE:
      case FED_OP_LT: case FED_OP_LE:
        /* A number compares as text only when it has no affinity of its
        ** own (a literal): exact only when the value is known now. */
        return pRhs ? FED_PUSH_EXACT : FED_PUSH_LOOSE;
      case FED_OP_LIKE: case FED_OP_GLOB: {
        const char *z;
        int nPrefix, bExact;
        if( pRhs==0 ) return FED_PUSH_LOOSE;
        z = (const char*)sqlite3_value_text(pRhs);
        if( z==0 ) return FED_PUSH_EXACT;         /* NULL: no rows */
        patternPrefix(z, op==FED_OP_GLOB, &nPrefix, &bExact);
        return bExact ? FED_PUSH_EXACT : FED_PUSH_LOOSE;
      }
    }
    return FED_PUSH_NO;
  }
  if( iCol==ETCD_COL_CREATE || iCol==ETCD_COL_MOD ){
    switch( op ){
      case FED_OP_EQ: case FED_OP_GT: case FED_OP_GE:
      case FED_OP_LT: case FED_OP_LE:
        return FED_PUSH_EXACT;
    }
  }
  return FED_PUSH_NO;
}

static int etcdOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)bDesc;
  return iCol==ETCD_COL_KEY;
}

/**************************************************************************
** Scan planning: from the plan and xFilter's values to what to read.
** Pure: no network.
**
** A key condition is a range in SQLite's order of keys: every TEXT key
** before every BLOB key, bytes within a class.  It becomes one byte range
** per class (aPart[CLS_TEXT], aPart[CLS_BLOB]): "key > 'm'" is the TEXT
** keys from "m\0" on and every BLOB key; "key < x'ff'" is every TEXT key
** and the BLOB keys below "\xff".  An IN list becomes a set of exact keys.
** create_revision and mod_revision conditions become inclusive bounds
** (etcd's min_/max_..._revision filters) and, for IN, sets.
*/
struct EtcdPoint {
  u8 eCls;
  char *a; int n;               /* Local key */
};

struct EtcdScan {
  u8 bEmpty;                    /* No row can match */
  EtcdRange aPart[2];           /* Byte ranges of TEXT keys, of BLOB keys */
  EtcdPoint *aPoint;            /* Exactly these keys (bPoints), sorted */
  int nPoint;
  u8 bPoints;
  i64 aRevMin[2], aRevMax[2];   /* [0] create_revision, [1] mod_revision */
  i64 *aRevIn[2];               /* IN sets (bRevIn), sorted */
  int nRevIn[2];
  u8 bRevIn[2];
  u8 bRevTerm;                  /* Some revision condition: rows of this
                                ** transaction's own writes never match */
  u8 bOrdered, bDesc;           /* ORDER BY key [DESC] consumed */
  u8 bKeysOnly;                 /* value unused: keys_only */
  i64 nLimit;                   /* Rows still to return; -1: no LIMIT */
  i64 nOffset;                  /* Rows still to skip */
};

static void scanFree(EtcdScan *p){
  int i;
  rangeFree(&p->aPart[0]);
  rangeFree(&p->aPart[1]);
  for(i=0; i<p->nPoint; i++) sqlite3_free(p->aPoint[i].a);
  sqlite3_free(p->aPoint);
  sqlite3_free(p->aRevIn[0]);
  sqlite3_free(p->aRevIn[1]);
  memset(p, 0, sizeof(*p));
}

static int pointCmp(const EtcdPoint *a, const EtcdPoint *b){
  if( a->eCls!=b->eCls ) return a->eCls - b->eCls;
  return bytesCmp(a->a, a->n, b->a, b->n);
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

static int pointFind(const EtcdPoint *a, int n, const EtcdPoint *pKey){
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
    *peCls = CLS_TEXT;
    return 1;
  }
  if( eType==SQLITE_BLOB ){
    *pa = (const char*)sqlite3_value_blob(pVal);
    *pn = sqlite3_value_bytes(pVal);
    if( *pa==0 ) *pa = "";
    *peCls = CLS_BLOB;
    return 1;
  }
  *pa = (const char*)sqlite3_value_text(pVal);
  if( *pa==0 ){ *pRc = SQLITE_NOMEM; return 0; }
  *pn = sqlite3_value_bytes(pVal);
  *peCls = CLS_TEXT;
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
      if( classOf(a, n)!=eCls ) pMine->bEmpty = 1;
      rangeRaiseLo(pMine, a, n, 0, pRc);
      rangeLowerHi(pMine, a, n, 1, pRc);
      pOther->bEmpty = 1;
      break;
    case FED_OP_GT: case FED_OP_GE:
      rangeRaiseLo(pMine, a, n, op==FED_OP_GT, pRc);
      /* Every BLOB is above any TEXT; no TEXT is above a BLOB. */
      if( eCls==CLS_BLOB ) pOther->bEmpty = 1;
      break;
    case FED_OP_LT: case FED_OP_LE:
      rangeLowerHi(pMine, a, n, op==FED_OP_LE, pRc);
      if( eCls==CLS_TEXT ) pOther->bEmpty = 1;
      break;
  }
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
  if( !likeMatchesBlobs() ) p->aPart[CLS_BLOB].bEmpty = 1;
  patternPrefix(z, bGlob, &nPrefix, &bExact);
  if( nPrefix==0 || *pRc ) return;
  zLo = bytesDup(z, nPrefix, 0, &nLo);
  zHi = bytesDup(z, nPrefix, 0, &nHi);
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
      rangeRaiseLo(&p->aPart[i], zLo, nLo, 0, pRc);
      if( prefixEnd(zHi, nHi, &zEnd, &nEnd, pRc) ){
        rangeLowerHi(&p->aPart[i], zEnd, nEnd, 0, pRc);
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
    if( r>0 && classOf(aKey, nKey)==eCls ){
      if( n>=nAlloc ){
        EtcdPoint *aNew;
        nAlloc = nAlloc ? nAlloc*2 : 16;
        aNew = sqlite3_realloc64(a, sizeof(EtcdPoint)*nAlloc);
        if( aNew==0 ){ *pRc = SQLITE_NOMEM; sqlite3_value_free(pTmp); break; }
        a = aNew;
      }
      a[n].eCls = (u8)eCls;
      a[n].a = bytesDup(aKey, nKey, 0, &a[n].n);
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
      if( pointFind(p->aPoint, p->nPoint, &a[i]) ) a[j++] = a[i];
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
static int scanPlan(
  const FedPlan *pPlan, int argc, sqlite3_value **argv, EtcdScan *p
){
  int i, rc = SQLITE_OK;
  memset(p, 0, sizeof(*p));
  rc = rangeInitAll(&p->aPart[CLS_TEXT]);
  if( rc==SQLITE_OK ) rc = rangeInitAll(&p->aPart[CLS_BLOB]);
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
static int scanMatch(const EtcdScan *p, int eCls, const char *a, int n,
                     const i64 *aRev){
  int j;
  if( p->bEmpty ) return 0;
  if( p->bPoints ){
    EtcdPoint pt;
    pt.eCls = (u8)eCls;
    pt.a = (char*)a;
    pt.n = n;
    if( !pointFind(p->aPoint, p->nPoint, &pt) ) return 0;
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
** Scan.  A scan is a list of steps: range requests read page by page
** (page_size keys, continuing after the last key, every page at the
** revision of the first, so that a scan is one snapshot and memory stays
** at one page), the rows of the second class that the first range met
** (buffered, up to ETCD_BUFFER_*, so that ORDER BY key reads each key
** once), the exact keys of an IN list (one txn of range requests per
** max_txn_ops keys), or a probe: an ascending keys-only read of a range
** that collects its BLOB keys (few, usually none), which a points step then
** reads whole, in either order.  Probes find BLOB keys without reading
** every value, and without etcd's DESCEND sort, which re-sorts the whole
** range for every page.  Rows of this transaction's own queued writes are
** merged in, in key order when ORDER BY key was consumed.
*/
#define STEP_SCAN   1
#define STEP_BUFFER 2
#define STEP_POINTS 3
#define ETCD_MAX_STEP 8

struct EtcdStep {
  int eType;                    /* STEP_* */
  EtcdRange r;                  /* STEP_SCAN: the part not read yet */
  u8 mEmit;                     /* Classes returned as they come (a probe:
                                ** collected in aFound) */
  u8 mBuffer;                   /* Classes kept for the STEP_BUFFER */
  u8 bDesc;                     /* STEP_SCAN: descending */
  u8 bProbe;                    /* STEP_SCAN: a probe (keys only, into
                                ** aFound); STEP_POINTS: read aFound */
  EtcdRange rAll;               /* A probe: its whole range (for when it
                                ** finds too many keys) */
  u8 bStarted;                  /* Some page of this step was requested */
  u8 bSkipped;                  /* Some row read was not returned */
};

/* A row as xColumn sees it.  Pointers are borrowed. */
struct EtcdRow {
  const char *aKey; int nKey;   /* Local key (without the prefix) */
  const char *aVal; int nVal;   /* Value, or aVal==0 if not read */
  i64 aRev[2];                  /* create_revision, mod_revision */
  i64 iVersion;
  i64 iLease;                   /* 0: none */
  u8 eCls;                      /* Class of the key */
  u8 bOwn;                      /* A write of this transaction, not yet
                                ** sent: revisions and version unknown */
};

/* A row that owns its memory (buffered or pending). */
struct EtcdOwned {
  EtcdRow row;
  char *aMem;
};

struct EtcdCursor {
  EtcdConn *pConn;              /* Connection, while filtered */
  EtcdCursor *pNextCsr;         /* Next in pConn->pCsrList */
  EtcdTable *pET;
  EtcdScan scan;
  EtcdStep aStep[ETCD_MAX_STEP];
  int nStep, iStep;
  /* The reply being read */
  json_t *pPage;                /* Reply (owned) */
  json_t *pKvs;                 /* STEP_SCAN: its kvs (borrowed) */
  size_t iKv, nKv;              /* Next entry, number of entries */
  u8 bMore;                     /* The step has more to read */
  u8 bChunkTxn;                 /* STEP_POINTS: the reply is a txn */
  int iPoint;                   /* STEP_POINTS: next key to request */
  int iChunk;                   /* STEP_POINTS: first key of pPage */
  /* Decoded key and value of the remote row */
  char *aKeyBuf; int nKeyAlloc, nKeyRemote;
  char *aValBuf; int nValAlloc;
  /* Keys collected by a probe, for the STEP_POINTS after it */
  EtcdPoint *aFound;
  int nFound, nFoundAlloc;
  /* Rows of the second class met by the first range */
  EtcdOwned *aBuf;
  int nBuf, nBufAlloc, iBuf;
  i64 nBufBytes;
  u8 bOverflow;
  /* This transaction's writes under the prefix */
  EtcdOwned *aPend;             /* Puts that match, in output order */
  int nPend, iPend;
  EtcdPoint *aSup;              /* Remote keys of every write, sorted:
                                ** their remote rows are not returned */
  int nSup;
  /* Merge */
  EtcdRow remote;               /* Next remote row, if bRemote */
  u8 bRemote, bRemoteEof;
  EtcdRow cur;                  /* Current row */
  u8 bEof;
  i64 iRowid;
};

static void ownedFree(EtcdOwned *a, int n){
  int i;
  for(i=0; i<n; i++) sqlite3_free(a[i].aMem);
  sqlite3_free(a);
}

/* Copy a row into owned memory. */
static int ownedSet(EtcdOwned *pOut, const EtcdRow *pRow){
  i64 n = (i64)pRow->nKey + (pRow->aVal ? pRow->nVal : 0) + 2;
  char *a = sqlite3_malloc64(n);
  if( a==0 ) return SQLITE_NOMEM;
  pOut->row = *pRow;
  if( pRow->nKey ) memcpy(a, pRow->aKey, pRow->nKey);
  a[pRow->nKey] = 0;
  pOut->row.aKey = a;
  if( pRow->aVal ){
    char *aVal = &a[pRow->nKey+1];
    if( pRow->nVal ) memcpy(aVal, pRow->aVal, pRow->nVal);
    aVal[pRow->nVal] = 0;
    pOut->row.aVal = aVal;
  }
  pOut->aMem = a;
  return SQLITE_OK;
}

static void bufferClear(EtcdCursor *pCsr){
  ownedFree(pCsr->aBuf, pCsr->nBuf);
  pCsr->aBuf = 0;
  pCsr->nBuf = pCsr->nBufAlloc = pCsr->iBuf = 0;
  pCsr->nBufBytes = 0;
}

static void foundClear(EtcdCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nFound; i++) sqlite3_free(pCsr->aFound[i].a);
  sqlite3_free(pCsr->aFound);
  pCsr->aFound = 0;
  pCsr->nFound = pCsr->nFoundAlloc = 0;
}

static void pageClear(EtcdCursor *pCsr){
  json_decref(pCsr->pPage);
  pCsr->pPage = 0;
  pCsr->pKvs = 0;
  pCsr->iKv = pCsr->nKv = 0;
}

static void stepsClear(EtcdCursor *pCsr){
  int i;
  for(i=0; i<pCsr->nStep; i++){
    rangeFree(&pCsr->aStep[i].r);
    rangeFree(&pCsr->aStep[i].rAll);
  }
  pCsr->nStep = pCsr->iStep = 0;
}

/* Forget the scan (keeps the decode buffers). */
static void cursorReset(EtcdCursor *pCsr){
  int i;
  pageClear(pCsr);
  stepsClear(pCsr);
  bufferClear(pCsr);
  scanFree(&pCsr->scan);
  ownedFree(pCsr->aPend, pCsr->nPend);
  pCsr->aPend = 0;
  pCsr->nPend = pCsr->iPend = 0;
  foundClear(pCsr);
  for(i=0; i<pCsr->nSup; i++) sqlite3_free(pCsr->aSup[i].a);
  sqlite3_free(pCsr->aSup);
  pCsr->aSup = 0;
  pCsr->nSup = 0;
  pCsr->bRemote = pCsr->bRemoteEof = 0;
  pCsr->bOverflow = 0;
  pCsr->iPoint = pCsr->iChunk = 0;
  pCsr->bMore = 0;
  memset(&pCsr->cur, 0, sizeof(pCsr->cur));
  pCsr->bEof = 1;
  pCsr->iRowid = 0;
}

/* Take the cursor off its connection's list. */
static void cursorDetach(EtcdCursor *pCsr){
  EtcdCursor **pp;
  if( pCsr->pConn==0 ) return;
  for(pp=&pCsr->pConn->pCsrList; *pp; pp=&(*pp)->pNextCsr){
    if( *pp==pCsr ){
      *pp = pCsr->pNextCsr;
      break;
    }
  }
  pCsr->pConn = 0;
  pCsr->pNextCsr = 0;
}

/*
** Put the cursor on the connection's list.  The first cursor of a
** statement outside a transaction starts a new snapshot: the statement's
** reads all happen at the revision its first request sees.
*/
static void cursorAttach(EtcdCursor *pCsr, EtcdConn *p){
  if( pCsr->pConn==p ) return;
  cursorDetach(pCsr);
  if( p->pCsrList==0 && !p->base.bTxn ) p->iReadRev = 0;
  pCsr->pConn = p;
  pCsr->pNextCsr = p->pCsrList;
  p->pCsrList = pCsr;
}

static int stepAdd(EtcdCursor *pCsr, int eType, const EtcdRange *pR,
                   int mEmit, int mBuffer){
  EtcdStep *pStep;
  int rc = SQLITE_OK;
  if( pR && pR->bEmpty ) return SQLITE_OK;
  pStep = &pCsr->aStep[pCsr->nStep];
  memset(pStep, 0, sizeof(*pStep));
  pStep->eType = eType;
  pStep->mEmit = (u8)mEmit;
  pStep->mBuffer = (u8)mBuffer;
  pStep->bDesc = pCsr->scan.bDesc;
  if( pR ) rc = rangeCopy(&pStep->r, pR);
  pCsr->nStep++;
  return rc;
}

/* Read the BLOB keys of range pR (class eCls): a keys-only ascending
** probe, then those keys whole, in the scan's order.  Keys only anyway:
** a plain range read costs the same. */
static int stepAddBlobs(EtcdCursor *pCsr, const EtcdRange *pR, int eCls){
  int rc;
  if( pR->bEmpty ) return SQLITE_OK;
  if( pCsr->scan.bKeysOnly && !pCsr->scan.bDesc ){
    return stepAdd(pCsr, STEP_SCAN, pR, CLS_MASK(eCls), 0);
  }
  rc = stepAdd(pCsr, STEP_SCAN, pR, CLS_MASK(eCls), 0);
  if( rc==SQLITE_OK ){
    EtcdStep *pProbe = &pCsr->aStep[pCsr->nStep-1];
    pProbe->bProbe = 1;
    pProbe->bDesc = 0;
    rc = rangeCopy(&pProbe->rAll, pR);
  }
  if( rc==SQLITE_OK ){
    rc = stepAdd(pCsr, STEP_POINTS, 0, CLS_MASK(eCls), 0);
    pCsr->aStep[pCsr->nStep-1].bProbe = 1;
  }
  return rc;
}

/* Turn the scan into steps. */
static int stepsBuild(EtcdCursor *pCsr){
  EtcdScan *p = &pCsr->scan;
  int c1 = p->bDesc ? CLS_BLOB : CLS_TEXT;
  int c2 = 1-c1;
  EtcdRange *pR1 = &p->aPart[c1];
  EtcdRange *pR2 = &p->aPart[c2];
  EtcdRange lower, upper;
  int rc = SQLITE_OK;

  if( p->bEmpty ) return SQLITE_OK;
  if( p->bPoints ) return stepAdd(pCsr, STEP_POINTS, 0, 3, 0);
  if( pR2->bEmpty ) return stepAdd(pCsr, STEP_SCAN, pR1, CLS_MASK(c1), 0);
  if( pR1->bEmpty ) return stepAdd(pCsr, STEP_SCAN, pR2, CLS_MASK(c2), 0);

  /* Both classes, descending: the BLOB keys (probed), then the TEXT keys. */
  if( p->bDesc ){
    rc = stepAddBlobs(pCsr, pR1, c1);
    if( rc==SQLITE_OK ) rc = stepAdd(pCsr, STEP_SCAN, pR2, CLS_MASK(c2), 0);
    return rc;
  }

  /* Ascending: the TEXT range returns its keys and keeps (or, unordered,
  ** returns) the BLOB keys it meets; the rest of the BLOB range is read
  ** around it. */
  rc = stepAdd(pCsr, STEP_SCAN, pR1,
               CLS_MASK(c1) | (p->bOrdered ? 0 : CLS_MASK(c2)),
               p->bOrdered ? CLS_MASK(c2) : 0);
  memset(&lower, 0, sizeof(lower));
  memset(&upper, 0, sizeof(upper));
  if( rc==SQLITE_OK ) rc = rangeCopy(&lower, pR2);
  if( rc==SQLITE_OK ) rc = rangeCopy(&upper, pR2);
  if( rc==SQLITE_OK ){
    rangeLowerHi(&lower, pR1->aLo, pR1->nLo, 0, &rc);
    if( pR1->bHiInf ){
      upper.bEmpty = 1;
    }else{
      rangeRaiseLo(&upper, pR1->aHi, pR1->nHi, 0, &rc);
    }
  }
  if( rc==SQLITE_OK ) rc = stepAddBlobs(pCsr, &lower, c2);
  if( rc==SQLITE_OK && p->bOrdered ) rc = stepAdd(pCsr, STEP_BUFFER, 0, 0, 0);
  if( rc==SQLITE_OK ) rc = stepAddBlobs(pCsr, &upper, c2);
  rangeFree(&lower);
  rangeFree(&upper);
  return rc;
}

static void malformed(EtcdCursor *pCsr, char **pzErr, const char *zWhat){
  fedSetError(pzErr, "%s: malformed reply from server \"%s\": %s",
      ETCD_STORE, pCsr->pConn ? pCsr->pConn->base.pServer->zName : "?",
      zWhat);
}

/* Decode the key of kv into aKeyBuf.  Returns SQLITE_OK, NOMEM or ERROR
** (malformed). */
static int decodeKey(EtcdCursor *pCsr, json_t *pKv, char **pzErr){
  json_t *pKey = json_object_get(pKv, "key");
  int rc;
  if( !json_is_string(pKey) ){
    malformed(pCsr, pzErr, "a key-value pair without a key");
    return SQLITE_ERROR;
  }
  rc = fedBase64Decode(json_string_value(pKey),
                       (int)json_string_length(pKey), &pCsr->aKeyBuf,
                       &pCsr->nKeyAlloc, &pCsr->nKeyRemote);
  if( rc==SQLITE_MISMATCH ){
    malformed(pCsr, pzErr, "a key that is not base64");
    return SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && (pCsr->nKeyRemote<pCsr->pET->nPrefix
        || memcmp(pCsr->aKeyBuf, pCsr->pET->aPrefix, pCsr->pET->nPrefix)) ){
    malformed(pCsr, pzErr, "a key outside the requested range");
    return SQLITE_ERROR;
  }
  return rc;
}

/* Fill pCsr->remote from kv, whose key is in aKeyBuf already. */
static int decodeRow(EtcdCursor *pCsr, json_t *pKv, int bValue, char **pzErr){
  EtcdRow *r = &pCsr->remote;
  int nPrefix = pCsr->pET->nPrefix;
  memset(r, 0, sizeof(*r));
  r->aKey = &pCsr->aKeyBuf[nPrefix];
  r->nKey = pCsr->nKeyRemote - nPrefix;
  r->eCls = (u8)classOf(r->aKey, r->nKey);
  fedJsonInt64(json_object_get(pKv, "create_revision"), &r->aRev[0]);
  fedJsonInt64(json_object_get(pKv, "mod_revision"), &r->aRev[1]);
  fedJsonInt64(json_object_get(pKv, "version"), &r->iVersion);
  fedJsonInt64(json_object_get(pKv, "lease"), &r->iLease);
  if( bValue ){
    json_t *pVal = json_object_get(pKv, "value");
    int rc;
    if( pVal==0 ){
      /* The gateway leaves out empty values. */
      r->aVal = "";
      r->nVal = 0;
    }else{
      rc = SQLITE_MISMATCH;
      if( json_is_string(pVal) ){
        rc = fedBase64Decode(json_string_value(pVal),
                             (int)json_string_length(pVal), &pCsr->aValBuf,
                             &pCsr->nValAlloc, &r->nVal);
      }
      if( rc==SQLITE_MISMATCH ){
        malformed(pCsr, pzErr, "a value that is not base64");
        return SQLITE_ERROR;
      }
      if( rc ) return rc;
      r->aVal = pCsr->aValBuf;
    }
  }
  return SQLITE_OK;
}

/* Add "revision" (the snapshot) to a range request, if there is one. */
static void jSetRevision(EtcdConn *p, json_t *pReq, int *pRc){
  if( p->iReadRev>0 ) jSet(pReq, "revision", jInt(p->iReadRev, pRc), pRc);
}

/* The first reply of a snapshot fixes its revision. */
static void noteRevision(EtcdConn *p, json_t *pReply){
  if( p->iReadRev==0 ){
    fedJsonInt64(json_object_get(json_object_get(pReply, "header"),
                                 "revision"), &p->iReadRev);
  }
}

/* The body of a range request over local range r.  bAll: every key read
** so far by this step was returned, so a LIMIT may shrink the page to the
** rows still wanted; once some were skipped (the other class, or kept for
** later) pages are page_size, lest a LIMIT 3 read millions 3 at a time. */
static json_t *scanRequest(
  EtcdCursor *pCsr, const EtcdStep *pStep, const EtcdRange *r, int bAll,
  int *pRc
){
  EtcdConn *p = pCsr->pConn;
  EtcdTable *pET = pCsr->pET;
  EtcdScan *pScan = &pCsr->scan;
  json_t *pReq = jNew(json_object(), pRc);
  i64 nLimit = pET->nPage;
  int j;
  /* A range of one key is sent as the key alone, without limit or sort. */
  int bOne = !r->bHiInf && r->nHi==r->nLo+1 && r->aHi[r->nLo]==0
          && memcmp(r->aHi, r->aLo, r->nLo)==0;
  if( pET->nPrefix==0 && r->nLo==0 ){
    jSetKey(pReq, "key", 0, 0, "\0", 1, pRc);     /* "" is not a key */
  }else{
    jSetKey(pReq, "key", pET->aPrefix, pET->nPrefix, r->aLo, r->nLo, pRc);
  }
  if( r->bHiInf ){
    char *zEnd = 0;
    int nEnd = 0;
    if( prefixEnd(pET->aPrefix, pET->nPrefix, &zEnd, &nEnd, pRc) ){
      jSetKey(pReq, "range_end", zEnd, nEnd, "", 0, pRc);
    }else{
      jSetKey(pReq, "range_end", 0, 0, "\0", 1, pRc);  /* no end */
    }
    sqlite3_free(zEnd);
  }else if( !bOne ){
    jSetKey(pReq, "range_end", pET->aPrefix, pET->nPrefix, r->aHi, r->nHi,
            pRc);
  }
  if( bAll && pScan->nLimit>=0 && pScan->nLimit+pScan->nOffset<nLimit ){
    nLimit = pScan->nLimit + pScan->nOffset;
  }
  if( nLimit<1 ) nLimit = 1;
  if( !bOne ) jSet(pReq, "limit", jInt(nLimit, pRc), pRc);
  jSetRevision(p, pReq, pRc);
  if( pStep->bDesc && !bOne ){
    jSet(pReq, "sort_order", jNew(json_string("DESCEND"), pRc), pRc);
    jSet(pReq, "sort_target", jNew(json_string("KEY"), pRc), pRc);
  }
  if( pScan->bKeysOnly || pStep->bProbe ){
    jSet(pReq, "keys_only", jNew(json_true(), pRc), pRc);
  }
  for(j=0; j<2; j++){
    static const char *const azMin[2] = {"min_create_revision",
                                         "min_mod_revision"};
    static const char *const azMax[2] = {"max_create_revision",
                                         "max_mod_revision"};
    if( pScan->aRevMin[j]>1 ){
      jSet(pReq, azMin[j], jInt(pScan->aRevMin[j], pRc), pRc);
    }
    if( pScan->aRevMax[j]<I64_MAX ){
      jSet(pReq, azMax[j], jInt(pScan->aRevMax[j], pRc), pRc);
    }
  }
  if( *pRc ){
    json_decref(pReq);
    pReq = 0;
  }
  return pReq;
}

static int noConnection(EtcdCursor *pCsr, char **pzErr){
  (void)pCsr;
  fedSetError(pzErr, "%s: the connection was closed during the scan",
              ETCD_STORE);
  return SQLITE_ERROR;
}

/* Request the next page of a STEP_SCAN. */
static int scanFetch(EtcdCursor *pCsr, EtcdStep *pStep, char **pzErr){
  EtcdConn *p = pCsr->pConn;
  json_t *pReq, *pOut = 0;
  i64 iExplain = 0;
  int rc = SQLITE_OK;
  if( p==0 ) return noConnection(pCsr, pzErr);
  if( pStep->bStarted && pCsr->nKv>0 ){
    /* Continue after the last key of the previous page. */
    json_t *pLast = json_array_get(pCsr->pKvs, pCsr->nKv-1);
    rc = decodeKey(pCsr, pLast, pzErr);
    if( rc ) return rc;
    if( pStep->bDesc ){
      rangeLowerHi(&pStep->r, &pCsr->aKeyBuf[pCsr->pET->nPrefix],
                   pCsr->nKeyRemote - pCsr->pET->nPrefix, 0, &rc);
    }else{
      rangeRaiseLo(&pStep->r, &pCsr->aKeyBuf[pCsr->pET->nPrefix],
                   pCsr->nKeyRemote - pCsr->pET->nPrefix, 1, &rc);
    }
    if( rc ) return rc;
  }
  pageClear(pCsr);
  pStep->bStarted = 1;
  pCsr->bMore = 0;
  if( pStep->r.bEmpty ) return SQLITE_OK;
  pReq = scanRequest(pCsr, pStep, &pStep->r,
                     !pStep->bSkipped && !pStep->bProbe, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, &iExplain, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  noteRevision(p, pOut);
  pCsr->pPage = pOut;
  pCsr->pKvs = json_object_get(pOut, "kvs");
  pCsr->nKv = json_is_array(pCsr->pKvs) ? json_array_size(pCsr->pKvs) : 0;
  pCsr->iKv = 0;
  pCsr->bMore = json_is_true(json_object_get(pOut, "more")) && pCsr->nKv>0;
  fedExplainRows(etcdCtx(p), iExplain, (i64)pCsr->nKv, 1);
  return SQLITE_OK;
}

/* The keys of a STEP_POINTS: an IN list, or what a probe found. */
static EtcdPoint *stepPoints(EtcdCursor *pCsr, const EtcdStep *pStep,
                             int *pn){
  if( pStep->bProbe ){
    *pn = pCsr->nFound;
    return pCsr->aFound;
  }
  *pn = pCsr->scan.nPoint;
  return pCsr->scan.aPoint;
}

/* Request the next chunk of STEP_POINTS keys: one range request, or one
** txn of range requests. */
static int pointsFetch(EtcdCursor *pCsr, EtcdStep *pStep, char **pzErr){
  EtcdConn *p = pCsr->pConn;
  EtcdScan *pScan = &pCsr->scan;
  json_t *pReq = 0, *pOut = 0, *pOps = 0;
  i64 iExplain = 0;
  int n, i, nPoint, rc = SQLITE_OK;
  EtcdPoint *aPoint = stepPoints(pCsr, pStep, &nPoint);
  if( p==0 ) return noConnection(pCsr, pzErr);
  pageClear(pCsr);
  n = nPoint - pCsr->iPoint;
  if( n>p->nMaxOps ) n = (int)p->nMaxOps;
  pCsr->iChunk = pCsr->iPoint;
  pCsr->bChunkTxn = n>1;
  if( n<=0 ){
    pCsr->bMore = 0;
    return SQLITE_OK;
  }
  if( n>1 ){
    pReq = jNew(json_object(), &rc);
    pOps = jNew(json_array(), &rc);
    jSet(pReq, "success", pOps, &rc);
  }
  for(i=0; i<n && rc==SQLITE_OK; i++){
    EtcdPoint *pt = &aPoint[pCsr->iPoint+i];
    json_t *pRange = jNew(json_object(), &rc);
    jSetKey(pRange, "key", pCsr->pET->aPrefix, pCsr->pET->nPrefix, pt->a,
            pt->n, &rc);
    jSetRevision(p, pRange, &rc);
    if( pScan->bKeysOnly ){
      jSet(pRange, "keys_only", jNew(json_true(), &rc), &rc);
    }
    if( n==1 ){
      pReq = pRange;
    }else{
      json_t *pOp = jNew(json_object(), &rc);
      jSet(pOp, "request_range", pRange, &rc);
      jAppend(pOps, pOp, &rc);
    }
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, n>1 ? "/v3/kv/txn" : "/v3/kv/range", pReq, 0, &pOut,
                  &iExplain, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  noteRevision(p, pOut);
  pCsr->pPage = pOut;
  pCsr->iKv = 0;
  pCsr->nKv = n;
  pCsr->iPoint += n;
  pCsr->bMore = pCsr->iPoint<nPoint;
  fedExplainRows(etcdCtx(p), iExplain, n, 1);
  return SQLITE_OK;
}

/* The kv of the iKv'th key of a STEP_POINTS reply, or NULL. */
static json_t *pointsKv(EtcdCursor *pCsr, size_t iKv){
  json_t *pRange = pCsr->pPage;
  if( pCsr->bChunkTxn ){
    pRange = json_object_get(json_array_get(
        json_object_get(pCsr->pPage, "responses"), iKv), "response_range");
  }
  return json_array_get(json_object_get(pRange, "kvs"), 0);
}

/* Is remote key a[0..n) written by this transaction? */
static int isSuppressed(EtcdCursor *pCsr, const char *a, int n){
  EtcdPoint pt;
  if( pCsr->nSup==0 ) return 0;
  pt.eCls = 0;
  pt.a = (char*)a;
  pt.n = n;
  return pointFind(pCsr->aSup, pCsr->nSup, &pt);
}

/* Keep a row of the second class for the STEP_BUFFER.  Past the limits,
** drop the buffer and read the second range whole instead. */
static int bufferPush(EtcdCursor *pCsr, int eCls){
  EtcdScan *pScan = &pCsr->scan;
  const EtcdRow *r = &pCsr->remote;
  int rc;
  if( pCsr->bOverflow ) return SQLITE_OK;
  if( pCsr->nBuf>=ETCD_BUFFER_ROWS
   || pCsr->nBufBytes+r->nKey+r->nVal>ETCD_BUFFER_BYTES ){
    int i;
    bufferClear(pCsr);
    pCsr->bOverflow = 1;
    for(i=pCsr->iStep+1; i<pCsr->nStep; i++){
      rangeFree(&pCsr->aStep[i].r);
      rangeFree(&pCsr->aStep[i].rAll);
    }
    pCsr->nStep = pCsr->iStep+1;
    return stepAdd(pCsr, STEP_SCAN, &pScan->aPart[eCls], CLS_MASK(eCls), 0);
  }
  if( pCsr->nBuf>=pCsr->nBufAlloc ){
    int nNew = pCsr->nBufAlloc ? pCsr->nBufAlloc*2 : 16;
    EtcdOwned *aNew = sqlite3_realloc64(pCsr->aBuf, sizeof(EtcdOwned)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pCsr->aBuf = aNew;
    pCsr->nBufAlloc = nNew;
  }
  rc = ownedSet(&pCsr->aBuf[pCsr->nBuf], r);
  if( rc==SQLITE_OK ){
    pCsr->nBuf++;
    pCsr->nBufBytes += r->nKey + r->nVal;
  }
  return rc;
}

static void foundReverse(EtcdCursor *pCsr){
  int i, j;
  for(i=0, j=pCsr->nFound-1; i<j; i++, j--){
    EtcdPoint t = pCsr->aFound[i];
    pCsr->aFound[i] = pCsr->aFound[j];
    pCsr->aFound[j] = t;
  }
}

/* A probe found a key of its class.  Past ETCD_BUFFER_ROWS, the probe
** gives up: it becomes a plain read of its whole range, in the scan's
** order, and the points step after it goes. */
static int foundPush(EtcdCursor *pCsr, int eCls){
  const EtcdRow *r = &pCsr->remote;
  EtcdPoint *pt;
  if( pCsr->nFound>=ETCD_BUFFER_ROWS ){
    EtcdStep *pStep = &pCsr->aStep[pCsr->iStep];
    foundClear(pCsr);
    pageClear(pCsr);
    rangeFree(&pStep->r);
    pStep->r = pStep->rAll;
    memset(&pStep->rAll, 0, sizeof(pStep->rAll));
    pStep->bProbe = 0;
    pStep->bDesc = pCsr->scan.bDesc;
    pStep->bStarted = 0;
    pStep->bSkipped = 0;
    if( pCsr->iStep+1<pCsr->nStep ){
      EtcdStep *pNext = &pCsr->aStep[pCsr->iStep+1];
      rangeFree(&pNext->r);
      rangeFree(&pNext->rAll);
      memmove(pNext, pNext+1,
              sizeof(EtcdStep)*(pCsr->nStep - pCsr->iStep - 2));
      pCsr->nStep--;
    }
    return SQLITE_OK;
  }
  if( pCsr->nFound>=pCsr->nFoundAlloc ){
    int nNew = pCsr->nFoundAlloc ? pCsr->nFoundAlloc*2 : 16;
    EtcdPoint *aNew = sqlite3_realloc64(pCsr->aFound, sizeof(EtcdPoint)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pCsr->aFound = aNew;
    pCsr->nFoundAlloc = nNew;
  }
  pt = &pCsr->aFound[pCsr->nFound];
  pt->eCls = (u8)eCls;
  pt->a = bytesDup(r->aKey, r->nKey, 0, &pt->n);
  if( pt->a==0 ) return SQLITE_NOMEM;
  pCsr->nFound++;
  return SQLITE_OK;
}

/* Advance to the next remote row that the scan returns (pCsr->remote,
** bRemote), or to the end (bRemoteEof). */
static int remoteNext(EtcdCursor *pCsr, char **pzErr){
  int rc;
  pCsr->bRemote = 0;
  while( pCsr->iStep<pCsr->nStep ){
    EtcdStep *pStep = &pCsr->aStep[pCsr->iStep];
    json_t *pKv;
    int eCls, mClass;
    if( pStep->eType==STEP_BUFFER ){
      if( pCsr->iBuf<pCsr->nBuf ){
        pCsr->remote = pCsr->aBuf[pCsr->iBuf++].row;
        pCsr->bRemote = 1;
        return SQLITE_OK;
      }
      pCsr->iStep++;
      continue;
    }
    if( pCsr->iKv>=pCsr->nKv ){
      if( pStep->bStarted && !pCsr->bMore ){
        pageClear(pCsr);
        if( pStep->eType==STEP_POINTS && pStep->bProbe ) foundClear(pCsr);
        if( pStep->bProbe && pStep->eType==STEP_SCAN && pCsr->scan.bDesc ){
          foundReverse(pCsr);
        }
        pCsr->iPoint = 0;
        pCsr->iStep++;
        continue;
      }
      rc = pStep->eType==STEP_SCAN ? scanFetch(pCsr, pStep, pzErr)
                                   : pointsFetch(pCsr, pStep, pzErr);
      if( rc ) return rc;
      pStep->bStarted = 1;
      continue;
    }
    if( pStep->eType==STEP_SCAN ){
      pKv = json_array_get(pCsr->pKvs, pCsr->iKv);
    }else{
      pKv = pointsKv(pCsr, pCsr->iKv);
    }
    pCsr->iKv++;
    if( pKv==0 ) continue;                /* An IN key that is absent */
    rc = decodeKey(pCsr, pKv, pzErr);
    if( rc ) return rc;
    if( isSuppressed(pCsr, pCsr->aKeyBuf, pCsr->nKeyRemote)
     || (pCsr->nKeyRemote>=(int)sizeof(ETCD_RESERVED)-1
         && memcmp(pCsr->aKeyBuf, ETCD_RESERVED, sizeof(ETCD_RESERVED)-1)==0)
    ){
      pStep->bSkipped = 1;
      continue;
    }
    rc = decodeRow(pCsr, pKv, 0, pzErr);
    if( rc ) return rc;
    eCls = pCsr->remote.eCls;
    mClass = CLS_MASK(eCls);
    if( (mClass & (pStep->mEmit|pStep->mBuffer))==0
     || !scanMatch(&pCsr->scan, eCls, pCsr->remote.aKey, pCsr->remote.nKey,
                   pCsr->remote.aRev) ){
      pStep->bSkipped = 1;
      continue;
    }
    if( !pCsr->scan.bKeysOnly ){
      rc = decodeRow(pCsr, pKv, 1, pzErr);
      if( rc ) return rc;
    }
    if( (mClass & pStep->mEmit) && pStep->bProbe
     && pStep->eType==STEP_SCAN ){
      rc = foundPush(pCsr, eCls);
      if( rc ) return rc;
      continue;
    }
    if( mClass & pStep->mEmit ){
      pCsr->bRemote = 1;
      return SQLITE_OK;
    }
    pStep->bSkipped = 1;
    rc = bufferPush(pCsr, eCls);
    if( rc ) return rc;
  }
  pCsr->bRemoteEof = 1;
  return SQLITE_OK;
}

/* Order of two rows in the scan's output. */
static int rowCmp(const EtcdScan *pScan, const EtcdRow *a, const EtcdRow *b){
  int c = a->eCls!=b->eCls ? a->eCls - b->eCls
                           : bytesCmp(a->aKey, a->nKey, b->aKey, b->nKey);
  return pScan->bDesc ? -c : c;
}

/* Advance to the next row of the cursor: remote rows and this
** transaction's own, then OFFSET and LIMIT. */
static int cursorStep(EtcdCursor *pCsr, char **pzErr){
  EtcdScan *pScan = &pCsr->scan;
  int rc;
  while( 1 ){
    if( pScan->nLimit==0 ){
      pCsr->bEof = 1;
      return SQLITE_OK;
    }
    if( !pCsr->bRemote && !pCsr->bRemoteEof ){
      rc = remoteNext(pCsr, pzErr);
      if( rc ) return rc;
    }
    if( pCsr->iPend<pCsr->nPend
     && (!pScan->bOrdered || !pCsr->bRemote
         || rowCmp(pScan, &pCsr->aPend[pCsr->iPend].row, &pCsr->remote)<0) ){
      pCsr->cur = pCsr->aPend[pCsr->iPend++].row;
    }else if( pCsr->bRemote ){
      pCsr->cur = pCsr->remote;
      pCsr->bRemote = 0;
    }else{
      pCsr->bEof = 1;
      return SQLITE_OK;
    }
    if( pScan->nOffset>0 ){
      pScan->nOffset--;
      continue;
    }
    if( pScan->nLimit>0 ) pScan->nLimit--;
    pCsr->iRowid++;
    return SQLITE_OK;
  }
}

typedef struct EtcdKeyRef EtcdKeyRef;
struct EtcdKeyRef {
  const char *a; int n;
  int iOp;
};

static int keyRefCmp(const void *pA, const void *pB){
  const EtcdKeyRef *a = (const EtcdKeyRef*)pA, *b = (const EtcdKeyRef*)pB;
  int c = bytesCmp(a->a, a->n, b->a, b->n);
  return c ? c : a->iOp - b->iOp;
}

/* The queued puts and deletes, in key order, each key once (its last
** operation) if bLast, else all of them; those under aPrefix only when
** nPrefix>=0.  *paRef is sqlite3_malloc'd. */
static int queueKeys(EtcdConn *p, const char *aPrefix, int nPrefix,
                     EtcdKeyRef **paRef, int *pnRef){
  EtcdKeyRef *a;
  int i, n = 0, j = 0;
  *paRef = 0;
  *pnRef = 0;
  if( p->nOp==0 ) return SQLITE_OK;
  a = sqlite3_malloc64(sizeof(EtcdKeyRef)*p->nOp);
  if( a==0 ) return SQLITE_NOMEM;
  for(i=0; i<p->nOp; i++){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->eOp!=OP_PUT && pOp->eOp!=OP_DEL ) continue;
    if( nPrefix>0 && (pOp->nKey<nPrefix
                      || memcmp(pOp->aKey, aPrefix, nPrefix)) ){
      continue;
    }
    a[n].a = pOp->aKey;
    a[n].n = pOp->nKey;
    a[n].iOp = i;
    n++;
  }
  qsort(a, n, sizeof(EtcdKeyRef), keyRefCmp);
  /* Keep the last operation of each key. */
  for(i=0; i<n; i++){
    if( i+1<n && bytesCmp(a[i].a, a[i].n, a[i+1].a, a[i+1].n)==0 ) continue;
    a[j++] = a[i];
  }
  *paRef = a;
  *pnRef = j;
  return SQLITE_OK;
}

static int ownedCmpQsortAsc(const void *pA, const void *pB){
  const EtcdRow *a = &((const EtcdOwned*)pA)->row;
  const EtcdRow *b = &((const EtcdOwned*)pB)->row;
  int c = a->eCls!=b->eCls ? a->eCls - b->eCls
                           : bytesCmp(a->aKey, a->nKey, b->aKey, b->nKey);
  return c;
}
static int ownedCmpQsortDesc(const void *pA, const void *pB){
  return -ownedCmpQsortAsc(pA, pB);
}

/* Reads see the transaction's own writes: collect those under the
** table's prefix.  Puts that match the scan are returned by it; the remote
** rows of every written key are hidden. */
static int overlayBuild(EtcdCursor *pCsr){
  EtcdConn *p = pCsr->pConn;
  EtcdTable *pET = pCsr->pET;
  EtcdKeyRef *aRef = 0;
  int nRef = 0, i, rc;
  rc = queueKeys(p, pET->aPrefix, pET->nPrefix, &aRef, &nRef);
  if( rc || nRef==0 ) return rc;
  pCsr->aSup = sqlite3_malloc64(sizeof(EtcdPoint)*nRef);
  pCsr->aPend = sqlite3_malloc64(sizeof(EtcdOwned)*nRef);
  if( pCsr->aSup==0 || pCsr->aPend==0 ) rc = SQLITE_NOMEM;
  for(i=0; i<nRef && rc==SQLITE_OK; i++){
    EtcdOp *pOp = &p->aOp[aRef[i].iOp];
    EtcdPoint *pt = &pCsr->aSup[pCsr->nSup];
    pt->eCls = 0;
    pt->a = bytesDup(pOp->aKey, pOp->nKey, 0, &pt->n);
    if( pt->a==0 ){ rc = SQLITE_NOMEM; break; }
    pCsr->nSup++;
    if( pOp->eOp==OP_PUT ){
      EtcdRow r;
      memset(&r, 0, sizeof(r));
      r.aKey = &pOp->aKey[pET->nPrefix];
      r.nKey = pOp->nKey - pET->nPrefix;
      r.eCls = (u8)classOf(r.aKey, r.nKey);
      r.aVal = pOp->aVal ? pOp->aVal : "";
      r.nVal = pOp->nVal;
      r.iLease = pOp->iLease;
      r.bOwn = 1;
      if( scanMatch(&pCsr->scan, r.eCls, r.aKey, r.nKey, 0) ){
        rc = ownedSet(&pCsr->aPend[pCsr->nPend], &r);
        if( rc==SQLITE_OK ) pCsr->nPend++;
      }
    }
  }
  sqlite3_free(aRef);
  if( rc==SQLITE_OK && pCsr->nPend>1 ){
    qsort(pCsr->aPend, pCsr->nPend, sizeof(EtcdOwned),
          pCsr->scan.bDesc ? ownedCmpQsortDesc : ownedCmpQsortAsc);
  }
  return rc;
}

static int etcdOpen(FedCursor *pFedCsr, char **pzErr){
  EtcdCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->bEof = 1;
  pCsr->pET = (EtcdTable*)pFedCsr->pTab->pStoreTab;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

static void etcdClose(FedCursor *pFedCsr){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorDetach(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->aKeyBuf);
  sqlite3_free(pCsr->aValBuf);
  sqlite3_free(pCsr);
  pFedCsr->pStoreCsr = 0;
}

/* Without a prefix, the local key '' is the remote key "", which etcd
** refuses to read ("key is not provided") and never holds: an IN list
** (or a value known only when the scan starts) that names it names no
** row, so the point goes. */
static void scanDropEmptyKey(EtcdScan *p){
  int i, j = 0;
  if( !p->bPoints ) return;
  for(i=0; i<p->nPoint; i++){
    if( p->aPoint[i].n==0 ){
      sqlite3_free(p->aPoint[i].a);
    }else{
      p->aPoint[j++] = p->aPoint[i];
    }
  }
  p->nPoint = j;
  if( j==0 ) p->bEmpty = 1;
}

static int etcdFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  EtcdConn *p = (EtcdConn*)pTab->pServer->pConn;
  int rc;
  cursorReset(pCsr);
  cursorAttach(pCsr, p);
  rc = scanPlan(pFedCsr->pPlan, argc, argv, &pCsr->scan);
  if( rc==SQLITE_OK && pCsr->pET->nPrefix==0 ) scanDropEmptyKey(&pCsr->scan);
  if( rc==SQLITE_OK ) rc = stepsBuild(pCsr);
  if( rc==SQLITE_OK && p->nOp>0 ) rc = overlayBuild(pCsr);
  if( rc==SQLITE_OK ){
    pCsr->bEof = 0;
    rc = cursorStep(pCsr, pzErr);
  }
  if( rc!=SQLITE_OK ) pCsr->bEof = 1;
  return etcdRc(rc, pzErr);
}

static int etcdNext(FedCursor *pFedCsr, char **pzErr){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  int rc = cursorStep(pCsr, pzErr);
  if( rc!=SQLITE_OK ) pCsr->bEof = 1;
  return etcdRc(rc, pzErr);
}

static int etcdEof(FedCursor *pFedCsr){
  return ((EtcdCursor*)pFedCsr->pStoreCsr)->bEof;
}

/* Bytes as TEXT when valid UTF-8 without NUL, else as a BLOB. */
static void resultBytes(sqlite3_context *ctx, const char *a, int n){
  if( classOf(a, n)==CLS_TEXT ){
    sqlite3_result_text(ctx, a, n, SQLITE_TRANSIENT);
  }else{
    sqlite3_result_blob(ctx, a, n, SQLITE_TRANSIENT);
  }
}

static int etcdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  EtcdCursor *pCsr = (EtcdCursor*)pFedCsr->pStoreCsr;
  const EtcdRow *r = &pCsr->cur;
  if( r->aKey==0 ) return SQLITE_OK;
  switch( iCol ){
    case ETCD_COL_KEY:
      resultBytes(ctx, r->aKey, r->nKey);
      break;
    case ETCD_COL_VALUE:
      if( r->aVal ) resultBytes(ctx, r->aVal, r->nVal);
      break;
    case ETCD_COL_LEASE:
      if( r->iLease ) sqlite3_result_int64(ctx, r->iLease);
      break;
    default:
      /* Read-only columns: an UPDATE that does not set them leaves
      ** them "unchanged", so that one that does can be refused. */
      if( sqlite3_vtab_nochange(ctx) ) break;
      if( r->bOwn ) break;
      sqlite3_result_int64(ctx, iCol==ETCD_COL_VERSION ? r->iVersion
                                : r->aRev[iCol==ETCD_COL_MOD]);
      break;
  }
  return SQLITE_OK;
}

static int etcdRowid(FedCursor *pFedCsr, i64 *piRowid){
  *piRowid = ((EtcdCursor*)pFedCsr->pStoreCsr)->iRowid;
  return SQLITE_OK;
}

/**************************************************************************
** Writes.  Each write appends to the connection's queue; the commit sends
** the queue as one txn (etcdCommit).  The first operation on a key also
** queues what its commit must check:
**
**   INSERT             the key must not exist (create_revision = 0)
**   INSERT OR REPLACE  nothing: a blind put
**   INSERT OR IGNORE   whether the key exists is asked now; if not, as
**                      INSERT
**   UPDATE, DELETE     the row read is unchanged: mod_revision below the
**                      snapshot revision + 1 and version > 0
*/
static int queueGrow(EtcdConn *p){
  if( p->nOp>=p->nOpAlloc ){
    int nNew = p->nOpAlloc ? p->nOpAlloc*2 : 16;
    EtcdOp *aNew = sqlite3_realloc64(p->aOp, sizeof(EtcdOp)*nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aOp = aNew;
    p->nOpAlloc = nNew;
  }
  return SQLITE_OK;
}

static int queueAdd(
  EtcdConn *p, int eOp, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, const char *zTab
){
  EtcdOp *pOp;
  int rc = queueGrow(p);
  if( rc ) return rc;
  pOp = &p->aOp[p->nOp];
  memset(pOp, 0, sizeof(*pOp));
  pOp->eOp = (u8)eOp;
  pOp->iLease = iLease;
  pOp->iRev = p->iReadRev;
  pOp->aKey = bytesDup(aKey, nKey, 0, &pOp->nKey);
  if( pOp->aKey==0 ) return SQLITE_NOMEM;
  if( aVal ){
    pOp->aVal = bytesDup(aVal, nVal, 0, &pOp->nVal);
    if( pOp->aVal==0 ){ opClear(pOp); return SQLITE_NOMEM; }
  }
  if( zTab ){
    pOp->zTab = fedStrdup(zTab, -1);
    if( pOp->zTab==0 ){ opClear(pOp); return SQLITE_NOMEM; }
  }
  p->nOp++;
  return SQLITE_OK;
}

/* The last put or delete queued for remote key a, or -1.  *pbTouched:
** some operation (a compare too) names the key. */
static int queueFind(EtcdConn *p, const char *a, int n, int *pbTouched){
  int i;
  *pbTouched = 0;
  for(i=p->nOp-1; i>=0; i--){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->nKey==n && memcmp(pOp->aKey, a, n)==0 ){
      *pbTouched = 1;
      if( pOp->eOp==OP_PUT || pOp->eOp==OP_DEL ) return i;
    }
  }
  return -1;
}

/* The remote key of a local key value: prefix + bytes.  *pz is
** sqlite3_malloc'd.  SQLITE_CONSTRAINT for NULL and empty keys. */
static int remoteKey(
  FedTable *pTab, sqlite3_value *pKey, char **pz, int *pn, char **pzErr
){
  EtcdTable *pET = (EtcdTable*)pTab->pStoreTab;
  const char *a;
  int n;
  *pz = 0;
  valueBytes(pKey, &a, &n);
  if( a==0 ){
    fedSetError(pzErr, "%s: NOT NULL constraint failed: %s.key", ETCD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( n<0 ) return SQLITE_NOMEM;
  if( n+pET->nPrefix==0 ){
    fedSetError(pzErr, "%s: etcd has no empty key (table %s)", ETCD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  *pz = sqlite3_malloc64((i64)pET->nPrefix+n+1);
  if( *pz==0 ) return SQLITE_NOMEM;
  memcpy(*pz, pET->aPrefix, pET->nPrefix);
  if( n ) memcpy(&(*pz)[pET->nPrefix], a, n);
  (*pz)[pET->nPrefix+n] = 0;
  *pn = pET->nPrefix+n;
  return SQLITE_OK;
}

/* Does remote key a exist now (at the snapshot, if there is one)? */
static int keyExists(EtcdConn *p, const char *a, int n, int *pbExists,
                     char **pzErr){
  json_t *pReq, *pOut = 0;
  i64 nCount = 0;
  int rc = SQLITE_OK;
  pReq = jNew(json_object(), &rc);
  jSetKey(pReq, "key", 0, 0, a, n, &rc);
  jSetRevision(p, pReq, &rc);
  jSet(pReq, "count_only", jNew(json_true(), &rc), &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  if( rc==SQLITE_OK ){
    noteRevision(p, pOut);
    fedJsonInt64(json_object_get(pOut, "count"), &nCount);
    *pbExists = nCount>0;
  }
  json_decref(pOut);
  return rc;
}

/* Does remote key a exist for this transaction: its own queued put or
** delete decides, else the server (keyExists). */
static int keyExistsNow(EtcdConn *p, const char *a, int n, int *pbExists,
                        char **pzErr){
  int bTouched;
  int iLast = queueFind(p, a, n, &bTouched);
  if( iLast>=0 ){
    *pbExists = p->aOp[iLast].eOp==OP_PUT;
    return SQLITE_OK;
  }
  return keyExists(p, a, n, pbExists, pzErr);
}

/* Queue the put of an INSERT (eConflict: SQLITE_REPLACE, SQLITE_IGNORE or
** another: plain INSERT). */
static int writeInsert(
  EtcdConn *p, FedTable *pTab, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, int eConflict, char **pzErr
){
  int bTouched, rc;
  int iLast = queueFind(p, aKey, nKey, &bTouched);
  if( iLast>=0 && p->aOp[iLast].eOp==OP_PUT ){
    /* The key exists in this transaction's own writes. */
    if( eConflict==SQLITE_IGNORE ) return SQLITE_OK;
    if( eConflict!=SQLITE_REPLACE ){
      fedSetError(pzErr, "%s: UNIQUE constraint failed: %s.key", ETCD_STORE,
                  pTab->zName);
      return SQLITE_CONSTRAINT;
    }
  }else if( !bTouched && eConflict!=SQLITE_REPLACE ){
    if( eConflict==SQLITE_IGNORE ){
      int bExists = 0;
      rc = keyExists(p, aKey, nKey, &bExists, pzErr);
      if( rc || bExists ) return rc;
    }
    rc = queueAdd(p, OP_CMP_ABSENT, aKey, nKey, 0, 0, 0, pTab->zName);
    if( rc ) return rc;
  }
  return queueAdd(p, OP_PUT, aKey, nKey, aVal, nVal, iLease, 0);
}

/* Queue the put (aVal) or delete (aVal==0) of a row that was read. */
static int writeRead(
  EtcdConn *p, const char *aKey, int nKey, const char *aVal, int nVal,
  i64 iLease
){
  int bTouched, rc;
  if( queueFind(p, aKey, nKey, &bTouched)<0 && !bTouched ){
    rc = queueAdd(p, OP_CMP_SAME, aKey, nKey, 0, 0, 0, 0);
    if( rc ) return rc;
  }
  return queueAdd(p, aVal ? OP_PUT : OP_DEL, aKey, nKey, aVal, nVal, iLease,
                  0);
}

/* The lease column as written: NULL or 0 for none, else an integer. */
static int leaseValue(FedTable *pTab, sqlite3_value *pVal, i64 *piLease,
                      char **pzErr){
  *piLease = 0;
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:
      return SQLITE_OK;
    case SQLITE_INTEGER:
      *piLease = sqlite3_value_int64(pVal);
      return SQLITE_OK;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pVal);
      if( r==floor(r) && r<9.2e18 && r>-9.2e18 ){
        *piLease = (i64)r;
        return SQLITE_OK;
      }
      break;
    }
    case SQLITE_TEXT: {
      /* As an INTEGER column would hold the text: SQLite's own numeric
      ** affinity (' 7', '7.0' and '7e0' are 7). */
      sqlite3_value *pDup = sqlite3_value_dup(pVal);
      int eType, bOk = 0;
      if( pDup==0 ) return SQLITE_NOMEM;
      eType = sqlite3_value_numeric_type(pDup);
      if( eType==SQLITE_INTEGER ){
        *piLease = sqlite3_value_int64(pDup);
        bOk = 1;
      }else if( eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pDup);
        if( r==floor(r) && r<9.2e18 && r>-9.2e18 ){
          *piLease = (i64)r;
          bOk = 1;
        }
      }
      sqlite3_value_free(pDup);
      if( bOk ) return SQLITE_OK;
      break;
    }
  }
  fedSetError(pzErr, "%s: %s.lease must be a lease ID (an integer) or NULL",
              ETCD_STORE, pTab->zName);
  return SQLITE_MISMATCH;
}

/* Refuse a write of a key in federate's reserved namespace
** (ETCD_RESERVED: commit markers and fences): a table with prefix='' could
** otherwise forge or delete a marker and decide another transaction. */
static int reservedKey(FedTable *pTab, const char *a, int n, const char *zOp,
                       char **pzErr){
  if( a && n>=(int)sizeof(ETCD_RESERVED)-1
   && memcmp(a, ETCD_RESERVED, sizeof(ETCD_RESERVED)-1)==0 ){
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKey;
    appendBytes(s, a, n, 100);
    zKey = sqlite3_str_finish(s);
    if( zKey==0 ) return SQLITE_NOMEM;
    fedSetError(pzErr, "%s: cannot %s key %s in table \"%s\": keys that"
        " start with %s are reserved for federate's commit markers",
        ETCD_STORE, zOp, zKey, pTab->zName, ETCD_RESERVED);
    sqlite3_free(zKey);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

static int etcdUpdateImpl(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pTab->pServer->pConn;
  char *aKey = 0, *aOld = 0;
  int nKey = 0, nOld = 0, i, rc;
  const char *aVal = 0;
  int nVal = 0;
  i64 iLease = 0;
  (void)piRowid;

  if( argc==1 ){
    rc = remoteKey(pTab, argv[0], &aOld, &nOld, pzErr);
    if( rc==SQLITE_OK ) rc = reservedKey(pTab, aOld, nOld, "DELETE", pzErr);
    if( rc==SQLITE_OK ) rc = writeRead(p, aOld, nOld, 0, 0, 0);
    sqlite3_free(aOld);
    return rc;
  }

  /* INSERT or UPDATE: check the columns. */
  for(i=ETCD_COL_CREATE; i<=ETCD_COL_VERSION; i++){
    sqlite3_value *pV = argv[2+i];
    int bSet = sqlite3_value_type(argv[0])==SQLITE_NULL
             ? sqlite3_value_type(pV)!=SQLITE_NULL
             : !sqlite3_value_nochange(pV);
    if( bSet ){
      fedSetError(pzErr, "%s: column %s.%s is read-only", ETCD_STORE,
                  pTab->zName, azEtcdColumn[i]);
      return SQLITE_CONSTRAINT;
    }
  }
  /* A NULL value, a NULL key or the empty key (without a prefix) break a
  ** NOT NULL constraint or etcd's own; under OR IGNORE (INSERT, UPDATE)
  ** SQLite skips such a row, and so does this table.  (OR REPLACE has no
  ** default to put in, so it fails as SQLite does.) */
  valueBytes(argv[2+ETCD_COL_VALUE], &aVal, &nVal);
  if( aVal==0 ){
    if( sqlite3_vtab_on_conflict(pTab->pCtx->db)==SQLITE_IGNORE ){
      return SQLITE_OK;
    }
    fedSetError(pzErr, "%s: NOT NULL constraint failed: %s.value (etcd"
                " values are never NULL)", ETCD_STORE, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( nVal<0 ) return SQLITE_NOMEM;
  rc = leaseValue(pTab, argv[2+ETCD_COL_LEASE], &iLease, pzErr);
  if( rc ) return rc;
  rc = remoteKey(pTab, argv[2+ETCD_COL_KEY], &aKey, &nKey, pzErr);
  if( rc==SQLITE_CONSTRAINT
   && sqlite3_vtab_on_conflict(pTab->pCtx->db)==SQLITE_IGNORE ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc ) return rc;
  rc = reservedKey(pTab, aKey, nKey,
      sqlite3_value_type(argv[0])==SQLITE_NULL ? "INSERT" : "UPDATE", pzErr);
  if( rc ){
    sqlite3_free(aKey);
    return rc;
  }

  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    rc = writeInsert(p, pTab, aKey, nKey, aVal, nVal, iLease,
                     sqlite3_vtab_on_conflict(pTab->pCtx->db), pzErr);
  }else{
    rc = remoteKey(pTab, argv[0], &aOld, &nOld, pzErr);
    if( rc==SQLITE_OK ) rc = reservedKey(pTab, aOld, nOld, "UPDATE", pzErr);
    if( rc==SQLITE_OK ){
      if( nOld==nKey && memcmp(aOld, aKey, nKey)==0 ){
        rc = writeRead(p, aKey, nKey, aVal, nVal, iLease);
      }else{
        /* A new key: delete the old row, insert the new one.  Under OR
        ** IGNORE a new key that exists skips the whole row, as SQLite
        ** does: asked before the delete of the old key is queued, which
        ** would otherwise lose that row. */
        int eConflict = sqlite3_vtab_on_conflict(pTab->pCtx->db);
        int bSkip = 0;
        if( eConflict==SQLITE_IGNORE ){
          rc = keyExistsNow(p, aKey, nKey, &bSkip, pzErr);
          eConflict = SQLITE_ABORT;   /* Asked: the commit's compare guards */
        }
        if( rc==SQLITE_OK && !bSkip ) rc = writeRead(p, aOld, nOld, 0, 0, 0);
        if( rc==SQLITE_OK && !bSkip ){
          rc = writeInsert(p, pTab, aKey, nKey, aVal, nVal, iLease,
                           eConflict, pzErr);
        }
      }
    }
  }
  sqlite3_free(aKey);
  sqlite3_free(aOld);
  return rc;
}

static int etcdUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  return etcdRc(etcdUpdateImpl(pTab, argc, argv, piRowid, pzErr), pzErr);
}

/**************************************************************************
** Transactions.  The queue is the transaction: xBegin starts it, each
** write appends, savepoints are positions in it, and xCommit sends it as
** one txn whose compares guard the keys read for update and the keys
** INSERT creates; etcd applies all of it or none.  Nothing is remote
** before the commit, so ROLLBACK, SAVEPOINT and ROLLBACK TO send nothing
** (and never reach the rollback and savepoint fault sites).
*/
static int etcdBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  queueReset(p);
  /* BEGIN...COMMIT reads one snapshot, taken at its first read.  A write
  ** outside BEGIN keeps the snapshot its statement has read. */
  if( bSnapshot ) p->iReadRev = 0;
  return SQLITE_OK;
}

/* Compare a key of the failure branch's reply: 1 if the compare queued
** for it (pCmp) fails now. */
static int compareFailed(const EtcdOp *pCmp, json_t *pKv){
  i64 iMod = 0;
  if( pCmp->eOp==OP_CMP_ABSENT ) return pKv!=0;
  if( pCmp->eOp==OP_CMP_REV ){
    if( pKv==0 ) return 0;
    fedJsonInt64(json_object_get(pKv, "mod_revision"), &iMod);
    return iMod>pCmp->iRev;
  }
  if( pKv==0 ) return 1;
  fedJsonInt64(json_object_get(pKv, "mod_revision"), &iMod);
  return pCmp->iRev>0 && iMod>pCmp->iRev;
}

/* Build and send the txn of the queue. */
static int commitSend(EtcdConn *p, char **pzErr){
  EtcdKeyRef *aKey = 0, *aCmp = 0;
  int nKey = 0, nCmp = 0, nCmpOps = 0, i, j, rc;
  json_t *pReq = 0, *pOut = 0, *pCompare = 0, *pSuccess = 0, *pFailure = 0;
  const char *zServer = p->base.pServer->zName;
  const char *zMarker = p->base.zMarker;
  i64 iExplain = 0;

  rc = queueKeys(p, 0, 0, &aKey, &nKey);
  if( rc ) return rc;
  /* The compares, the first one of each key. */
  if( p->nOp>0 ){
    aCmp = sqlite3_malloc64(sizeof(EtcdKeyRef)*p->nOp);
    if( aCmp==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    for(i=0; i<p->nOp; i++){
      EtcdOp *pOp = &p->aOp[i];
      if( pOp->eOp!=OP_CMP_ABSENT && pOp->eOp!=OP_CMP_SAME
       && pOp->eOp!=OP_CMP_REV ){
        continue;
      }
      aCmp[nCmp].a = pOp->aKey;
      aCmp[nCmp].n = pOp->nKey;
      aCmp[nCmp].iOp = i;
      nCmp++;
    }
    qsort(aCmp, nCmp, sizeof(EtcdKeyRef), keyRefCmp);
    for(i=j=0; i<nCmp; i++){
      if( j>0 && bytesCmp(aCmp[j-1].a, aCmp[j-1].n, aCmp[i].a, aCmp[i].n)==0 ){
        continue;
      }
      aCmp[j++] = aCmp[i];
    }
    nCmp = j;
  }
  for(i=0; i<nCmp; i++){
    const EtcdOp *pOp = &p->aOp[aCmp[i].iOp];
    nCmpOps += (pOp->eOp==OP_CMP_SAME && pOp->iRev>0) ? 2 : 1;
  }
  if( zMarker ) nCmpOps++;
  if( nKey==0 && zMarker==0 ) goto cleanup;   /* Nothing was written */
  if( nKey+(zMarker ? 1 : 0)>p->nMaxOps || nCmpOps>p->nMaxOps ){
    fedSetError(pzErr, "%s: this transaction writes %d keys with %d"
        " compares; server \"%s\" takes at most %lld operations of each in"
        " one transaction (etcd's --max-txn-ops; set max_txn_ops= in the"
        " fed_server() options to match); nothing was written", ETCD_STORE,
        nKey+(zMarker ? 1 : 0), nCmpOps, zServer, p->nMaxOps);
    rc = SQLITE_ERROR;
    goto cleanup;
  }

  if( nCmp==0 && nKey==1 && zMarker==0 ){
    /* One blind write: a plain put or deleterange. */
    EtcdOp *pOp = &p->aOp[aKey[0].iOp];
    pReq = jNew(json_object(), &rc);
    jSetKey(pReq, "key", 0, 0, pOp->aKey, pOp->nKey, &rc);
    if( pOp->eOp==OP_PUT ){
      jSetKey(pReq, "value", 0, 0, pOp->aVal, pOp->nVal, &rc);
      if( pOp->iLease ) jSet(pReq, "lease", jInt(pOp->iLease, &rc), &rc);
    }
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, pOp->eOp==OP_PUT ? "/v3/kv/put" : "/v3/kv/deleterange",
                    pReq, FED_FAULT_COMMIT, &pOut, &iExplain, pzErr);
    }
    if( rc==SQLITE_OK ) fedExplainRows(etcdCtx(p), iExplain, 1, 1);
    goto cleanup;
  }

  pReq = jNew(json_object(), &rc);
  pCompare = jNew(json_array(), &rc);
  jSet(pReq, "compare", pCompare, &rc);
  pSuccess = jNew(json_array(), &rc);
  jSet(pReq, "success", pSuccess, &rc);
  if( nCmp>0 || zMarker ){
    pFailure = jNew(json_array(), &rc);
    jSet(pReq, "failure", pFailure, &rc);
  }
  for(i=0; i<nCmp && rc==SQLITE_OK; i++){
    const EtcdOp *pOp = &p->aOp[aCmp[i].iOp];
    json_t *pC = jNew(json_object(), &rc);
    json_t *pRange = jNew(json_object(), &rc);
    json_t *pF = jNew(json_object(), &rc);
    jSetKey(pC, "key", 0, 0, pOp->aKey, pOp->nKey, &rc);
    if( pOp->eOp==OP_CMP_ABSENT ){
      jSet(pC, "target", jNew(json_string("CREATE"), &rc), &rc);
      jSet(pC, "result", jNew(json_string("EQUAL"), &rc), &rc);
      jSet(pC, "create_revision", jInt(0, &rc), &rc);
      jAppend(pCompare, pC, &rc);
    }else if( pOp->eOp==OP_CMP_REV ){
      jSet(pC, "target", jNew(json_string("MOD"), &rc), &rc);
      jSet(pC, "result", jNew(json_string("LESS"), &rc), &rc);
      jSet(pC, "mod_revision", jInt(pOp->iRev+1, &rc), &rc);
      jAppend(pCompare, pC, &rc);
    }else{
      if( pOp->iRev>0 ){
        jSet(pC, "target", jNew(json_string("MOD"), &rc), &rc);
        jSet(pC, "result", jNew(json_string("LESS"), &rc), &rc);
        jSet(pC, "mod_revision", jInt(pOp->iRev+1, &rc), &rc);
        jAppend(pCompare, pC, &rc);
        pC = jNew(json_object(), &rc);
        jSetKey(pC, "key", 0, 0, pOp->aKey, pOp->nKey, &rc);
      }
      jSet(pC, "target", jNew(json_string("VERSION"), &rc), &rc);
      jSet(pC, "result", jNew(json_string("GREATER"), &rc), &rc);
      jSet(pC, "version", jInt(0, &rc), &rc);
      jAppend(pCompare, pC, &rc);
    }
    jSetKey(pRange, "key", 0, 0, pOp->aKey, pOp->nKey, &rc);
    jSet(pRange, "keys_only", jNew(json_true(), &rc), &rc);
    jSet(pF, "request_range", pRange, &rc);
    jAppend(pFailure, pF, &rc);
  }
  for(i=0; i<nKey && rc==SQLITE_OK; i++){
    const EtcdOp *pOp = &p->aOp[aKey[i].iOp];
    json_t *pS = jNew(json_object(), &rc);
    json_t *pW = jNew(json_object(), &rc);
    jSetKey(pW, "key", 0, 0, pOp->aKey, pOp->nKey, &rc);
    if( pOp->eOp==OP_PUT ){
      jSetKey(pW, "value", 0, 0, pOp->aVal, pOp->nVal, &rc);
      if( pOp->iLease ) jSet(pW, "lease", jInt(pOp->iLease, &rc), &rc);
      jSet(pS, "request_put", pW, &rc);
    }else{
      jSet(pS, "request_delete_range", pW, &rc);
    }
    jAppend(pSuccess, pS, &rc);
  }
  if( zMarker && rc==SQLITE_OK ){
    /* The marker key must be absent: a fence (etcdMarkerCheck) written by
    ** recovery meanwhile makes this txn fail, whenever it arrives.  Its
    ** value is read in the failure branch, after the other compares'. */
    json_t *pC = jNew(json_object(), &rc);
    json_t *pRange = jNew(json_object(), &rc);
    json_t *pF = jNew(json_object(), &rc);
    jSetKey(pC, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zMarker,
            (int)strlen(zMarker), &rc);
    jSet(pC, "target", jNew(json_string("CREATE"), &rc), &rc);
    jSet(pC, "result", jNew(json_string("EQUAL"), &rc), &rc);
    jSet(pC, "create_revision", jInt(0, &rc), &rc);
    jAppend(pCompare, pC, &rc);
    jSetKey(pRange, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zMarker,
            (int)strlen(zMarker), &rc);
    jSet(pF, "request_range", pRange, &rc);
    jAppend(pFailure, pF, &rc);
  }
  if( zMarker && rc==SQLITE_OK ){
    /* The commit marker, in the same txn as the writes. */
    json_t *pS = jNew(json_object(), &rc);
    json_t *pW = jNew(json_object(), &rc);
    char zTime[32];
    sqlite3_snprintf(sizeof(zTime), zTime, "%lld", (i64)time(0));
    jSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zMarker,
            (int)strlen(zMarker), &rc);
    jSetKey(pW, "value", 0, 0, zTime, (int)strlen(zTime), &rc);
    jSet(pS, "request_put", pW, &rc);
    jAppend(pSuccess, pS, &rc);
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/txn", pReq, FED_FAULT_COMMIT, &pOut, &iExplain,
                  pzErr);
    /* Sent, and no reply: etcd may have applied it (once proposed to raft
    ** it is applied even if this connection is gone).  The marker says. */
    if( rc==SQLITE_ERROR && zMarker && p->bMaybeSent ){
      p->base.bUnknown = 1;
    }
  }
  if( rc==SQLITE_OK ) fedExplainRows(etcdCtx(p), iExplain, nKey, 1);
  if( rc==SQLITE_OK && zMarker
   && !json_is_true(json_object_get(pOut, "succeeded")) ){
    /* Did the marker's compare fail?  Then the marker key exists: this
    ** very txn was applied already (a request sent twice), or recovery
    ** fenced it. */
    json_t *pKv = json_array_get(json_object_get(json_object_get(
        json_array_get(json_object_get(pOut, "responses"), nCmp),
        "response_range"), "kvs"), 0);
    if( pKv ){
      json_t *pVal = json_object_get(pKv, "value");
      char *aVal = 0;
      int nAlloc = 0, nVal = 0;
      int rc2 = json_is_string(pVal)
          ? fedBase64Decode(json_string_value(pVal),
                (int)json_string_length(pVal), &aVal, &nAlloc, &nVal)
          : SQLITE_MISMATCH;
      if( rc2==SQLITE_NOMEM ){
        rc = SQLITE_NOMEM;
      }else if( rc2==SQLITE_OK && nVal>=(int)sizeof(ETCD_FENCE)-1
             && memcmp(aVal, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0 ){
        fedSetError(pzErr, "%s: the commit of this transaction on server"
            " \"%s\" was fenced off by recovery, which found no marker;"
            " nothing was written", ETCD_STORE, zServer);
        rc = SQLITE_ERROR;
      }else{
        json_decref(pOut);
        pOut = json_pack("{s:b}", "succeeded", 1);
        if( pOut==0 ) rc = SQLITE_NOMEM;
      }
      sqlite3_free(aVal);
    }
  }
  if( rc==SQLITE_OK && !json_is_true(json_object_get(pOut, "succeeded")) ){
    /* A compare failed: find which, from the failure branch's reads. */
    json_t *pResp = json_object_get(pOut, "responses");
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKey;
    for(i=0; i<nCmp; i++){
      const EtcdOp *pOp = &p->aOp[aCmp[i].iOp];
      json_t *pKv = json_array_get(json_object_get(json_object_get(
          json_array_get(pResp, i), "response_range"), "kvs"), 0);
      if( compareFailed(pOp, pKv) ) break;
    }
    if( i<nCmp ){
      const EtcdOp *pOp = &p->aOp[aCmp[i].iOp];
      appendBytes(s, pOp->aKey, pOp->nKey, 100);
      zKey = sqlite3_str_finish(s);
      if( zKey==0 ){
        rc = SQLITE_NOMEM;
      }else if( pOp->eOp==OP_CMP_ABSENT ){
        fedSetError(pzErr, "%s: UNIQUE constraint failed: %s.key: key %s"
            " already exists on server \"%s\"; nothing was written",
            ETCD_STORE, pOp->zTab ? pOp->zTab : "?", zKey, zServer);
        rc = SQLITE_CONSTRAINT;
      }else{
        fedSetError(pzErr, "%s: key %s was changed on server \"%s\" after"
            " this transaction read it; nothing was written", ETCD_STORE,
            zKey, zServer);
        rc = SQLITE_ERROR;
      }
      sqlite3_free(zKey);
    }else{
      sqlite3_free(sqlite3_str_finish(s));
      fedSetError(pzErr, "%s: a key this transaction read or inserted was"
          " changed on server \"%s\"; nothing was written", ETCD_STORE,
          zServer);
      rc = SQLITE_ERROR;
    }
  }

cleanup:
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(aKey);
  sqlite3_free(aCmp);
  return rc;
}

static int etcdCommit(FedConn *pConn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  int rc = commitSend(p, pzErr);
  queueReset(p);
  if( p->pCsrList==0 ) p->iReadRev = 0;
  return etcdRc(rc, pzErr);
}

static int etcdRollback(FedConn *pConn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  queueReset(p);
  if( p->pCsrList==0 ) p->iReadRev = 0;
  return SQLITE_OK;
}

static int etcdSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pConn;
  int i;
  (void)pzErr;
  (void)iRelease;
  if( iTo>p->nMarkAlloc ){
    int *aNew = sqlite3_realloc64(p->aMark, sizeof(int)*(iTo+8));
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aMark = aNew;
    p->nMarkAlloc = iTo+8;
  }
  /* Released levels (iRelease and above) are forgotten: iFrom is never
  ** above iRelease. */
  if( iFrom<p->nMark ) p->nMark = iFrom;
  for(i=p->nMark; i<iTo; i++) p->aMark[i] = p->nOp;
  p->nMark = iTo;
  return SQLITE_OK;
}

static int etcdRelease(FedConn *pConn, int iLevel, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  if( iLevel<p->nMark ) p->nMark = iLevel;
  return SQLITE_OK;
}

static int etcdRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  (void)pzErr;
  if( iLevel<p->nMark ){
    queueTruncate(p, p->aMark[iLevel]);
    p->nMark = iLevel+1;
  }
  return SQLITE_OK;
}

/**************************************************************************
** Pass-through: fed_query('ec', '/v3/<endpoint> {json}') sends one POST to
** the JSON gateway at once (not queued with the transaction) and returns
** the reply as one row, keys and values base64 as etcd sends them.
*/
static int etcdQueryImpl(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pConn;
  const char *z = zQuery;
  char *zPath = 0;
  json_t *pBody = 0, *pOut = 0;
  char **azRow = 0;
  sqlite3_str *s;
  int n, rc = SQLITE_OK;
  (void)apParam;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  if( sqlite3_strnicmp(z, "POST ", 5)==0 ){
    z += 5;
    while( *z==' ' ) z++;
  }
  if( z[0]!='/' || nParam>0 ){
    fedSetError(pzErr, "%s: fed_query takes \"[POST] /v3/<endpoint>"
        " {json body}\" and no parameters, e.g. '/v3/lease/grant"
        " {\"TTL\":60}'", ETCD_STORE);
    return SQLITE_ERROR;
  }
  for(n=0; z[n] && z[n]!=' ' && z[n]!='\t' && z[n]!='\n' && z[n]!='{'; n++){}
  zPath = fedStrdup(z, n);
  if( zPath==0 ) return SQLITE_NOMEM;
  z += n;
  while( *z==' ' || *z=='\t' || *z=='\n' ) z++;
  if( *z ){
    char *zJsonErr = 0;
    rc = fedHttpJsonParse(z, strlen(z), &pBody, &zJsonErr);
    if( rc==SQLITE_ERROR ){
      fedSetError(pzErr, "%s: fed_query: the body is not JSON: %s",
                  ETCD_STORE, zJsonErr);
    }
    sqlite3_free(zJsonErr);
  }else{
    pBody = jNew(json_object(), &rc);
  }
  if( rc==SQLITE_OK ) rc = etcdCall(p, zPath, pBody, 0, &pOut, 0, pzErr);
  if( rc==SQLITE_OK ){
    azRow = sqlite3_malloc64(sizeof(char*));
    s = sqlite3_str_new(0);
    if( pOut ) rc = fedHttpJsonAppend(s, pOut);
    else sqlite3_str_appendall(s, "{}");
    if( azRow==0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ){
      azRow[0] = sqlite3_str_finish(s);
      if( azRow[0]==0 ) rc = SQLITE_NOMEM;
    }else{
      sqlite3_free(sqlite3_str_finish(s));
    }
  }
  if( rc==SQLITE_OK ){
    *pazRow = azRow;
    *pnRow = 1;
    *pnChanged = 1;
  }else{
    sqlite3_free(azRow);
  }
  json_decref(pBody);
  json_decref(pOut);
  sqlite3_free(zPath);
  return rc;
}

static int etcdQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  return etcdRc(etcdQueryImpl(pConn, zQuery, nParam, apParam, pazRow, pnRow,
                              pnChanged, pzErr), pzErr);
}

/**************************************************************************
** Commit markers (FedStore.xMarkerCheck): the keys ETCD_MARKER<gid>,
** written by commitSend inside the transaction's txn when the coordinator
** sets FedConn.zMarker.  Read at the latest revision, not the snapshot.
*/
/* One txn: if the marker key exists, read it; if not, write the fence in
** its place ("abort <time>"), so that the transaction's own txn, if it is
** still in flight, fails its compare whenever it reaches etcd (etcd applies
** txns one at a time, so the answer is final).  A fence found counts as
** no marker. */
static int etcdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                           char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0, *pC, *pArr, *pOp, *pW, *pKv;
  int rc = SQLITE_OK, nGid = (int)strlen(zGid);
  char zFence[48];
  *pbExists = 0;
  sqlite3_snprintf(sizeof(zFence), zFence, "%s%lld", ETCD_FENCE,
                   (i64)time(0));
  pReq = jNew(json_object(), &rc);
  pC = jNew(json_object(), &rc);
  jSetKey(pC, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
          &rc);
  jSet(pC, "target", jNew(json_string("CREATE"), &rc), &rc);
  jSet(pC, "result", jNew(json_string("GREATER"), &rc), &rc);
  jSet(pC, "create_revision", jInt(0, &rc), &rc);
  pArr = jNew(json_array(), &rc);
  jAppend(pArr, pC, &rc);
  jSet(pReq, "compare", pArr, &rc);
  pW = jNew(json_object(), &rc);
  jSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
          &rc);
  pOp = jNew(json_object(), &rc);
  jSet(pOp, "request_range", pW, &rc);
  pArr = jNew(json_array(), &rc);
  jAppend(pArr, pOp, &rc);
  jSet(pReq, "success", pArr, &rc);
  pW = jNew(json_object(), &rc);
  jSetKey(pW, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid, nGid,
          &rc);
  jSetKey(pW, "value", 0, 0, zFence, (int)strlen(zFence), &rc);
  pOp = jNew(json_object(), &rc);
  jSet(pOp, "request_put", pW, &rc);
  pArr = jNew(json_array(), &rc);
  jAppend(pArr, pOp, &rc);
  jSet(pReq, "failure", pArr, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/txn", pReq, 0, &pOut, 0, pzErr);
  }
  pKv = 0;
  if( rc==SQLITE_OK && json_is_true(json_object_get(pOut, "succeeded")) ){
    pKv = json_array_get(json_object_get(json_object_get(json_array_get(
        json_object_get(pOut, "responses"), 0), "response_range"), "kvs"), 0);
  }
  if( pKv ){
    json_t *pVal = json_object_get(pKv, "value");
    char *aVal = 0;
    int nAlloc = 0, nVal = 0;
    int rc2 = json_is_string(pVal)
        ? fedBase64Decode(json_string_value(pVal),
              (int)json_string_length(pVal), &aVal, &nAlloc, &nVal)
        : SQLITE_OK;
    if( rc2==SQLITE_NOMEM ) rc = SQLITE_NOMEM;
    *pbExists = !(rc2==SQLITE_OK && nVal>=(int)sizeof(ETCD_FENCE)-1
                  && memcmp(aVal, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0);
    sqlite3_free(aVal);
  }
  json_decref(pReq);
  json_decref(pOut);
  return etcdRc(rc, pzErr);
}

static int etcdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0;
  int rc = SQLITE_OK;
  pReq = jNew(json_object(), &rc);
  jSetKey(pReq, "key", ETCD_MARKER, (int)sizeof(ETCD_MARKER)-1, zGid,
          (int)strlen(zGid), &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/deleterange", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  json_decref(pOut);
  return etcdRc(rc, pzErr);
}

static int etcdMarkerList(FedConn *pConn, const char *zPrefix,
                          char ***pazGid, int *pn, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  json_t *pReq, *pOut = 0, *pKvs;
  char *zStart = 0, *zEnd = 0, *aBuf = 0;
  char **az = 0;
  int nStart = 0, nEnd = 0, nAlloc = 0, nKey = 0, n = 0, rc = SQLITE_OK;
  size_t i, nKv;
  const int nMarker = (int)sizeof(ETCD_MARKER)-1;
  *pazGid = 0;
  *pn = 0;
  zStart = sqlite3_mprintf("%s%s", ETCD_MARKER, zPrefix);
  if( zStart==0 ) return SQLITE_NOMEM;
  nStart = (int)strlen(zStart);
  pReq = jNew(json_object(), &rc);
  jSetKey(pReq, "key", 0, 0, zStart, nStart, &rc);
  if( prefixEnd(zStart, nStart, &zEnd, &nEnd, &rc) ){
    jSetKey(pReq, "range_end", 0, 0, zEnd, nEnd, &rc);
  }
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  pKvs = rc==SQLITE_OK ? json_object_get(pOut, "kvs") : 0;
  nKv = json_is_array(pKvs) ? json_array_size(pKvs) : 0;
  if( nKv>0 ){
    az = sqlite3_malloc64(sizeof(char*)*nKv);
    if( az==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<nKv; i++){
    json_t *pKey = json_object_get(json_array_get(pKvs, i), "key");
    json_t *pVal = json_object_get(json_array_get(pKvs, i), "value");
    if( !json_is_string(pKey) ) continue;
    if( json_is_string(pVal) ){
      /* A fence stays until no txn it fences can still be in flight. */
      int nVal = 0;
      rc = fedBase64Decode(json_string_value(pVal),
               (int)json_string_length(pVal), &aBuf, &nAlloc, &nVal);
      if( rc==SQLITE_MISMATCH ){ rc = SQLITE_OK; continue; }
      if( rc ) break;
      if( nVal>=(int)sizeof(ETCD_FENCE)-1
       && memcmp(aBuf, ETCD_FENCE, sizeof(ETCD_FENCE)-1)==0 ){
        i64 iWhen = 0;
        fedParseInt64(&aBuf[sizeof(ETCD_FENCE)-1],
                      nVal-((int)sizeof(ETCD_FENCE)-1), &iWhen);
        if( (i64)time(0)-iWhen<ETCD_FENCE_KEEP ) continue;
      }
    }
    rc = fedBase64Decode(json_string_value(pKey),
                         (int)json_string_length(pKey), &aBuf, &nAlloc, &nKey);
    if( rc==SQLITE_MISMATCH ){ rc = SQLITE_OK; continue; }
    if( rc==SQLITE_OK && nKey>nMarker ){
      az[n] = fedStrdup(&aBuf[nMarker], nKey-nMarker);
      if( az[n]==0 ) rc = SQLITE_NOMEM;
      else n++;
    }
  }
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(zStart);
  sqlite3_free(zEnd);
  sqlite3_free(aBuf);
  if( rc ){
    while( n>0 ) sqlite3_free(az[--n]);
    sqlite3_free(az);
    return etcdRc(rc, pzErr);
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}

/**************************************************************************
** Undo images (FedStore.xUndoImages, ext/undo.c): for a transaction that
** writes this server and another without two-phase commit.  Every key the
** queue puts or deletes gets its value now and the value the commit
** leaves; a key no compare guards yet gets one (unchanged since the
** revision its before-image was read at), so that the commit fails if it
** changes meanwhile.  A lease is not part of an image: a key put back has
** none.
*/

/* Read remote key a[0..n) at the latest revision: *paVal (sqlite3_malloc'd,
** NULL when absent), *piMod its mod_revision (0 when absent), *piRev the
** revision of the read. */
static int undoRead(EtcdConn *p, const char *a, int n, char **paVal,
                    int *pnVal, i64 *piMod, i64 *piRev, char **pzErr){
  json_t *pReq, *pOut = 0, *pKv;
  int rc = SQLITE_OK;
  *paVal = 0;
  *pnVal = 0;
  *piMod = 0;
  *piRev = 0;
  pReq = jNew(json_object(), &rc);
  jSetKey(pReq, "key", 0, 0, a, n, &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  if( rc ) return rc;
  fedJsonInt64(json_object_get(json_object_get(pOut, "header"), "revision"),
               piRev);
  pKv = json_array_get(json_object_get(pOut, "kvs"), 0);
  if( pKv ){
    json_t *pVal = json_object_get(pKv, "value");
    char *aBuf = 0;
    int nAlloc = 0;
    fedJsonInt64(json_object_get(pKv, "mod_revision"), piMod);
    if( json_is_string(pVal) ){
      rc = fedBase64Decode(json_string_value(pVal),
                           (int)json_string_length(pVal), &aBuf, &nAlloc,
                           pnVal);
    }else{
      /* etcd leaves out an empty value. */
      aBuf = sqlite3_malloc64(1);
      if( aBuf==0 ) rc = SQLITE_NOMEM;
      else aBuf[0] = 0;
    }
    if( rc==SQLITE_MISMATCH ){
      fedSetError(pzErr, "%s: server \"%s\" sent a value that is not"
                  " base64", ETCD_STORE, p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
    if( rc ) sqlite3_free(aBuf);
    else *paVal = aBuf;
  }
  json_decref(pOut);
  return rc;
}

static int etcdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                          char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  FedUndoImage *a = 0;
  int n = 0, nOp = p->nOp, i, j, rc = SQLITE_OK;
  *paImg = 0;
  *pnImg = 0;
  for(i=0; rc==SQLITE_OK && i<nOp; i++){
    EtcdOp *pOp = &p->aOp[i];
    if( pOp->eOp!=OP_PUT && pOp->eOp!=OP_DEL ) continue;
    rc = fedUndoImageSet(&a, &n, 0, pOp->aKey, pOp->nKey,
                         pOp->eOp==OP_PUT ? (pOp->aVal ? pOp->aVal : "") : 0,
                         pOp->nVal);
  }
  for(j=0; rc==SQLITE_OK && j<n; j++){
    i64 iMod, iRev;
    int bGuarded = 0;
    rc = undoRead(p, a[j].aKey, a[j].nKey, &a[j].aBefore, &a[j].nBefore,
                  &iMod, &iRev, pzErr);
    for(i=0; rc==SQLITE_OK && i<p->nOp; i++){
      EtcdOp *pOp = &p->aOp[i];
      if( (pOp->eOp==OP_CMP_ABSENT || pOp->eOp==OP_CMP_SAME
           || pOp->eOp==OP_CMP_REV)
       && pOp->nKey==a[j].nKey && memcmp(pOp->aKey, a[j].aKey, a[j].nKey)==0 ){
        bGuarded = 1;
      }
    }
    if( rc==SQLITE_OK && !bGuarded ){
      rc = queueAdd(p, OP_CMP_REV, a[j].aKey, a[j].nKey, 0, 0, 0, 0);
      if( rc==SQLITE_OK ) p->aOp[p->nOp-1].iRev = iRev;
    }
  }
  if( rc ){
    fedUndoImagesFree(a, n);
    return etcdRc(rc, pzErr);
  }
  *paImg = a;
  *pnImg = n;
  return SQLITE_OK;
}

static int etcdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                         char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  char *aCur = 0;
  int nCur = 0, rc;
  i64 iMod = 0, iRev = 0;
  json_t *pReq = 0, *pOut = 0;
  rc = undoRead(p, pImg->aKey, pImg->nKey, &aCur, &nCur, &iMod, &iRev,
                pzErr);
  if( rc ) return etcdRc(rc, pzErr);
  if( (aCur==0)==(pImg->aAfter==0)
   && (aCur==0 || (nCur==pImg->nAfter
                   && memcmp(aCur, pImg->aAfter, nCur)==0)) ){
    /* The key holds the after-image: put the before-image back, unless it
    ** changes meanwhile. */
    json_t *pCmp, *pC, *pOps, *pS, *pW;
    pReq = jNew(json_object(), &rc);
    pCmp = jNew(json_array(), &rc);
    jSet(pReq, "compare", pCmp, &rc);
    pC = jNew(json_object(), &rc);
    jSetKey(pC, "key", 0, 0, pImg->aKey, pImg->nKey, &rc);
    jSet(pC, "target", jNew(json_string("MOD"), &rc), &rc);
    jSet(pC, "result", jNew(json_string("EQUAL"), &rc), &rc);
    jSet(pC, "mod_revision", jInt(iMod, &rc), &rc);
    jAppend(pCmp, pC, &rc);
    pOps = jNew(json_array(), &rc);
    jSet(pReq, "success", pOps, &rc);
    pS = jNew(json_object(), &rc);
    pW = jNew(json_object(), &rc);
    jSetKey(pW, "key", 0, 0, pImg->aKey, pImg->nKey, &rc);
    if( pImg->aBefore ){
      jSetKey(pW, "value", 0, 0, pImg->aBefore, pImg->nBefore, &rc);
      jSet(pS, "request_put", pW, &rc);
    }else{
      jSet(pS, "request_delete_range", pW, &rc);
    }
    jAppend(pOps, pS, &rc);
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, "/v3/kv/txn", pReq, 0, &pOut, 0, pzErr);
    }
    if( rc==SQLITE_OK && !json_is_true(json_object_get(pOut, "succeeded")) ){
      rc = SQLITE_BUSY;
    }
  }else if( (aCur==0)==(pImg->aBefore==0)
   && (aCur==0 || (nCur==pImg->nBefore
                   && memcmp(aCur, pImg->aBefore, nCur)==0)) ){
    rc = SQLITE_OK;             /* Never applied, or undone already */
  }else{
    rc = SQLITE_BUSY;
  }
  if( rc==SQLITE_BUSY ){
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKey;
    appendBytes(s, pImg->aKey, pImg->nKey, 100);
    zKey = sqlite3_str_finish(s);
    fedSetError(pzErr, "%s: cannot undo key %s on server \"%s\": another"
        " client changed it after this transaction wrote it; it was left as"
        " it is", ETCD_STORE, zKey ? zKey : "?", p->base.pServer->zName);
    sqlite3_free(zKey);
  }
  json_decref(pReq);
  json_decref(pOut);
  sqlite3_free(aCur);
  return etcdRc(rc, pzErr);
}

/* Designated initializers: members not named (xFlush, xListTables, the
** two-phase commit methods) are NULL. */
/*
** Cache invalidation (cache.c) by etcd's watch.  One stream per
** connection watches every key of the server (POST /v3/watch, from key
** "\0" to the end) from the moment etcd confirms it ("created"); an event
** on any key outside __federate/ invalidates every cached table of the
** server (which table a key belongs to is the tables' business, as with
** Redis).  A stream that ends or is canceled (etcd restarted, the watched
** revision compacted, the network) stops the listening: the cache then
** starts a new watch and drops what it had cached before.
*/
typedef struct EtcdWatch EtcdWatch;
struct EtcdWatch {
  int bCreated;                 /* etcd confirmed the watch */
  int bChanged;                 /* A key outside __federate/ changed */
  int bLost;                    /* Canceled, or a line not understood */
  char *aKey;                   /* Decoding buffer */
  int nKeyAlloc;
};

/* One line of the watch stream: {"result":{...}} or {"error":{...}}. */
static int etcdWatchLine(void *pArg, const char *z, int n){
  EtcdWatch *w = (EtcdWatch*)pArg;
  json_t *pJson = 0, *pRes, *pEv;
  char *zErr = 0;
  size_t i;
  int rc = fedHttpJsonParse(z, (size_t)n, &pJson, &zErr);
  sqlite3_free(zErr);
  if( rc==SQLITE_NOMEM ){
    w->bChanged = 1;            /* Unread: assume the worst */
    return SQLITE_NOMEM;
  }
  pRes = rc==SQLITE_OK ? json_object_get(pJson, "result") : 0;
  if( !json_is_object(pRes) ){
    w->bLost = 1;
    json_decref(pJson);
    return SQLITE_OK;
  }
  if( json_is_true(json_object_get(pRes, "created")) ) w->bCreated = 1;
  if( json_is_true(json_object_get(pRes, "canceled")) ) w->bLost = 1;
  pEv = json_object_get(pRes, "events");
  for(i=0; rc==SQLITE_OK && !w->bChanged && i<json_array_size(pEv); i++){
    json_t *pKey = json_object_get(json_object_get(json_array_get(pEv, i),
                                   "kv"), "key");
    int nKey = 0;
    if( !json_is_string(pKey) ){
      w->bChanged = 1;
      break;
    }
    rc = fedBase64Decode(json_string_value(pKey), -1, &w->aKey,
                         &w->nKeyAlloc, &nKey);
    if( rc!=SQLITE_OK || nKey<(int)sizeof(ETCD_RESERVED)-1
     || memcmp(w->aKey, ETCD_RESERVED, sizeof(ETCD_RESERVED)-1)!=0 ){
      w->bChanged = 1;
    }
    if( rc!=SQLITE_NOMEM ) rc = SQLITE_OK;
  }
  json_decref(pJson);
  return rc;
}

/* Read what the watch stream has brought, waiting at most msWait ms. */
static int etcdWatchRead(EtcdConn *p, int msWait, EtcdWatch *w){
  int rc = fedHttpStreamRead(p->pWatch, msWait, etcdWatchLine, w);
  if( w->bChanged ) p->bChanged = 1;
  if( rc==SQLITE_DONE || w->bLost ){
    /* Lost: nothing is heard until a new watch. */
    fedHttpStreamClose(p->pWatch);
    p->pWatch = 0;
    p->base.iListen = 0;
    p->bChanged = 1;
    rc = SQLITE_DONE;
  }
  return rc;
}

static int etcdWatchStart(FedConn *pConn, FedTable *pTab, char **pzErr){
  EtcdConn *p = (EtcdConn*)pConn;
  EtcdWatch w;
  i64 iTimeout, iConnTimeout, nMaxOps, iWaited = 0;
  int rc;
  (void)pTab;                   /* Nothing to install: etcd always tells */
  if( p->pWatch ){
    if( p->base.iListen==0 ) p->base.iListen = 1;   /* Trusted again */
    return SQLITE_OK;
  }
  rc = serverOptions(p->base.pServer, &iTimeout, &iConnTimeout, &nMaxOps,
                     pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_SEND, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedHttpStreamOpen(p->pHttp, "/v3/watch", "{\"create_request\":"
        "{\"key\":\"AA==\",\"range_end\":\"AA==\"}}", &p->pWatch, pzErr);
  }
  if( rc ) return rc;
  fedExplainAdd(etcdCtx(p), p->base.pServer->zName, "POST /v3/watch"
      " {\"create_request\":{\"key\":\"AA==\",\"range_end\":\"AA==\"}}", 0);
  memset(&w, 0, sizeof(w));
  /* The watch counts from etcd's "created": wait for it. */
  while( rc==SQLITE_OK && !w.bCreated && iWaited<iConnTimeout*1000 ){
    rc = etcdWatchRead(p, 50, &w);
    iWaited += 50;
  }
  sqlite3_free(w.aKey);
  if( rc==SQLITE_OK && w.bCreated ){
    if( p->base.iListen==0 ) p->base.iListen = 1;
    return SQLITE_OK;
  }
  fedHttpStreamClose(p->pWatch);
  p->pWatch = 0;
  if( rc==SQLITE_NOMEM ) return rc;
  fedSetError(pzErr, "%s: server \"%s\" did not start the watch of its keys"
      " (POST /v3/watch)%s", ETCD_STORE, p->base.pServer->zName,
      rc==SQLITE_OK ? ": no answer in connect_timeout" : "");
  return SQLITE_ERROR;
}

static int etcdChanges(FedConn *pConn, char ***pazRel, int *pnRel){
  EtcdConn *p = (EtcdConn*)pConn;
  *pazRel = 0;
  *pnRel = 0;
  if( p->pWatch ){
    EtcdWatch w;
    memset(&w, 0, sizeof(w));
    etcdWatchRead(p, 0, &w);
    sqlite3_free(w.aKey);
  }
  if( p->bChanged ){
    /* Told once it could be told: kept when out of memory. */
    char **az = sqlite3_malloc64(sizeof(char*));
    if( az==0 ) return SQLITE_NOMEM;
    az[0] = fedStrdup("*", 1);
    if( az[0]==0 ){ sqlite3_free(az); return SQLITE_NOMEM; }
    *pazRel = az;
    *pnRel = 1;
    p->bChanged = 0;
  }
  return SQLITE_OK;
}

const FedStore fedEtcdStore = {
  .zName = ETCD_STORE,
  .eTxn = FED_TXN_BATCH,
  .azTableOpt = azEtcdTableOpt,
  .azServerOpt = azEtcdServerOpt,
  .xConnect = etcdConnect,
  .xDisconnect = etcdDisconnect,
  .xIsAlive = etcdIsAlive,
  .xDescribe = etcdDescribe,
  .xColumns = etcdColumns,
  .xPushable = etcdPushable,
  .xOrderable = etcdOrderable,
  .xOpen = etcdOpen,
  .xClose = etcdClose,
  .xFilter = etcdFilter,
  .xNext = etcdNext,
  .xEof = etcdEof,
  .xColumn = etcdColumn,
  .xRowid = etcdRowid,
  .xUpdate = etcdUpdate,
  .xBegin = etcdBegin,
  .xCommit = etcdCommit,
  .xRollback = etcdRollback,
  .xSavepoint = etcdSavepoint,
  .xRelease = etcdRelease,
  .xRollbackTo = etcdRollbackTo,
  .xQuery = etcdQuery,
  .xTableFree = etcdTableFree,
  .xServerCheck = etcdServerCheck,
  .xMarkerCheck = etcdMarkerCheck,
  .xMarkerRemove = etcdMarkerRemove,
  .xMarkerList = etcdMarkerList,
  .xUndoImages = etcdUndoImages,
  .xUndoApply = etcdUndoApply,
  .xWatch = etcdWatchStart,
  .xChanges = etcdChanges,
};
