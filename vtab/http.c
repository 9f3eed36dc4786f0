/*
** http.c: the HTTP/JSON client of vtab/http.h, over libcurl's easy
** interface (one reused handle per connection, so keep-alive comes free)
** and jansson; plus the small encoders JSON APIs need (base64, URL
** escaping, int64 read from strings).  See http.h for the API.
*/
#include "http.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>

#define HTTP_EXPLAIN_BODY_MAX 2000   /* Default fed_explain text: body cut */
#define HTTP_ERROR_REQUEST_MAX 300   /* Request text quoted in an error */
#define HTTP_KEEP_BUFFER (1<<20)     /* Reply buffer kept between calls */

typedef struct HttpHeader HttpHeader;
struct HttpHeader {
  char *zName;
  char *zLine;                  /* "Name: value" */
};

struct FedHttp {
  CURL *pCurl;
  CURLM *pMulti;                /* Runs pCurl's requests, so that waiting
                                ** for a reply can stop at an interrupt;
                                ** it keeps the open connections */
  char *zStore;
  char *zServer;                /* Server name, "" if none */
  FedServer *pServer;           /* For fed_explain, or NULL */
  char *zBase;                  /* Base URL without a trailing '/' */
  HttpHeader *aHdr;             /* Headers sent with every request */
  int nHdr;
  char *aBuf;                   /* Reply being read / last reply */
  size_t nBuf, nAlloc;
  int bNoMem;                   /* The write callback ran out of memory */
  char zCurlErr[CURL_ERROR_SIZE];
};

/**************************************************************************
** Process-wide: allocators and libcurl's global state.
*/
static pthread_mutex_t httpMutex = PTHREAD_MUTEX_INITIALIZER;
static int nHttpUser = 0;       /* Open FedHttp objects (curl global refs) */
static int bJsonAlloc = 0;      /* json_set_alloc_funcs() done */
static volatile int nAllocFail = 0;   /* Failed allocations, ever */

static void *httpMalloc(size_t n){
  void *p = sqlite3_malloc64(n ? n : 1);
  if( p==0 ) nAllocFail++;
  return p;
}
static void httpFree(void *p){
  sqlite3_free(p);
}
static void *httpRealloc(void *p, size_t n){
  void *pNew = sqlite3_realloc64(p, n ? n : 1);
  if( pNew==0 ) nAllocFail++;
  return pNew;
}
static char *httpStrdup(const char *z){
  size_t n = strlen(z)+1;
  char *p = httpMalloc(n);
  if( p ) memcpy(p, z, n);
  return p;
}
static void *httpCalloc(size_t nElem, size_t nSize){
  void *p;
  if( nSize && nElem>SIZE_MAX/nSize ) return 0;
  p = httpMalloc(nElem*nSize);
  if( p ) memset(p, 0, nElem*nSize);
  return p;
}

static int httpGlobalInit(char **pzErr, const char *zStore){
  int rc = SQLITE_OK;
  pthread_mutex_lock(&httpMutex);
  if( !bJsonAlloc ){
    json_set_alloc_funcs(httpMalloc, httpFree);
    bJsonAlloc = 1;
  }
  if( nHttpUser==0 ){
    CURLcode e = curl_global_init_mem(CURL_GLOBAL_DEFAULT, httpMalloc,
                     httpFree, httpRealloc, httpStrdup, httpCalloc);
    if( e==CURLE_OUT_OF_MEMORY ){
      rc = SQLITE_NOMEM;
    }else if( e!=CURLE_OK ){
      fedSetError(pzErr, "%s: libcurl could not be initialised: %s",
                  zStore, curl_easy_strerror(e));
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ) nHttpUser++;
  pthread_mutex_unlock(&httpMutex);
  return rc;
}

static void httpGlobalRelease(void){
  pthread_mutex_lock(&httpMutex);
  if( nHttpUser>0 && --nHttpUser==0 ) curl_global_cleanup();
  pthread_mutex_unlock(&httpMutex);
}

/**************************************************************************
** Small encoders.
*/
static const char aB64[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *fedBase64Encode(const void *aIn, int n){
  const unsigned char *a = (const unsigned char*)aIn;
  char *z = sqlite3_malloc64(((i64)n+2)/3*4 + 1);
  int i, j = 0;
  if( z==0 ) return 0;
  for(i=0; i+2<n; i+=3){
    unsigned v = (a[i]<<16) | (a[i+1]<<8) | a[i+2];
    z[j++] = aB64[(v>>18)&63];
    z[j++] = aB64[(v>>12)&63];
    z[j++] = aB64[(v>>6)&63];
    z[j++] = aB64[v&63];
  }
  if( i<n ){
    unsigned v = a[i]<<16;
    if( i+1<n ) v |= a[i+1]<<8;
    z[j++] = aB64[(v>>18)&63];
    z[j++] = aB64[(v>>12)&63];
    z[j++] = i+1<n ? aB64[(v>>6)&63] : '=';
    z[j++] = '=';
  }
  z[j] = 0;
  return z;
}

static int b64Value(char c){
  if( c>='A' && c<='Z' ) return c-'A';
  if( c>='a' && c<='z' ) return c-'a'+26;
  if( c>='0' && c<='9' ) return c-'0'+52;
  if( c=='+' || c=='-' ) return 62;
  if( c=='/' || c=='_' ) return 63;
  return -1;
}

int fedBase64Decode(
  const char *z, int n, char **paBuf, int *pnAlloc, int *pnOut
){
  unsigned char *a;
  int i, j = 0, nBits = 0, nNeed;
  unsigned v = 0;
  *pnOut = 0;
  if( n<0 ) n = (int)strlen(z);
  while( n>0 && z[n-1]=='=' ) n--;
  nNeed = n/4*3 + 3;
  if( *paBuf==0 || *pnAlloc<nNeed ){
    int nNew = nNeed<64 ? 64 : nNeed;
    char *aNew = sqlite3_realloc64(*paBuf, nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    *paBuf = aNew;
    *pnAlloc = nNew;
  }
  a = (unsigned char*)*paBuf;
  for(i=0; i<n; i++){
    int d = b64Value(z[i]);
    if( d<0 ) return SQLITE_MISMATCH;
    v = (v<<6) | (unsigned)d;
    nBits += 6;
    if( nBits>=8 ){
      nBits -= 8;
      a[j++] = (unsigned char)(v>>nBits);
    }
  }
  a[j] = 0;
  *pnOut = j;
  return SQLITE_OK;
}

char *fedHttpEscape(const char *z, int n){
  static const char aHex[] = "0123456789ABCDEF";
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  if( n<0 ) n = (int)strlen(z);
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    if( (c>='A' && c<='Z') || (c>='a' && c<='z') || (c>='0' && c<='9')
     || c=='-' || c=='_' || c=='.' || c=='~' ){
      sqlite3_str_appendchar(s, 1, (char)c);
    }else{
      char zEsc[3] = { '%', aHex[c>>4], aHex[c&15] };
      sqlite3_str_append(s, zEsc, 3);
    }
  }
  return sqlite3_str_finish(s);
}

int fedJsonInt64(const json_t *pVal, i64 *piOut){
  if( json_is_integer(pVal) ){
    *piOut = (i64)json_integer_value(pVal);
    return 0;
  }
  if( json_is_string(pVal) ){
    i64 v;
    if( fedParseInt64(json_string_value(pVal), (int)json_string_length(pVal),
                      &v)==0 ){
      *piOut = v;
      return 0;
    }
  }
  return 1;
}

static int jsonAppendCb(const char *z, size_t n, void *pArg){
  sqlite3_str_append((sqlite3_str*)pArg, z, (int)n);
  return 0;
}

int fedHttpJsonAppend(sqlite3_str *s, const json_t *pJson){
  int rc = json_dump_callback(pJson, jsonAppendCb, s,
                              JSON_COMPACT|JSON_ENCODE_ANY);
  return (rc || sqlite3_str_errcode(s)) ? SQLITE_NOMEM : SQLITE_OK;
}

int fedHttpJsonParse(const char *z, size_t n, json_t **ppOut, char **pzErr){
  json_error_t err;
  int nFail = nAllocFail;
  *ppOut = json_loadb(z, n, JSON_DECODE_ANY, &err);
  if( *ppOut ) return SQLITE_OK;
  /* jansson does not always say that it ran out of memory. */
  if( json_error_code(&err)==json_error_out_of_memory || nAllocFail!=nFail ){
    return SQLITE_NOMEM;
  }
  fedSetError(pzErr, "%s", err.text);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

const char *fedHttpErrorText(json_t *pReply){
  static const char *const azField[] = { "message", "reason", "error" };
  json_t *p;
  size_t i;
  if( !json_is_object(pReply) ) return 0;
  for(i=0; i<sizeof(azField)/sizeof(azField[0]); i++){
    p = json_object_get(pReply, azField[i]);
    if( json_is_string(p) && json_string_length(p)>0 ){
      return json_string_value(p);
    }
  }
  p = json_object_get(pReply, "errors");
  if( json_is_array(p) && json_array_size(p)>0 ){
    p = json_object_get(json_array_get(p, 0), "message");
    if( json_is_string(p) ) return json_string_value(p);
  }
  return 0;
}

/**************************************************************************
** The client.
*/
void fedHttpClose(FedHttp *p){
  int i;
  if( p==0 ) return;
  if( p->pCurl ) curl_easy_cleanup(p->pCurl);
  if( p->pMulti ) curl_multi_cleanup(p->pMulti);
  for(i=0; i<p->nHdr; i++){
    sqlite3_free(p->aHdr[i].zName);
    sqlite3_free(p->aHdr[i].zLine);
  }
  sqlite3_free(p->aHdr);
  sqlite3_free(p->aBuf);
  sqlite3_free(p->zStore);
  sqlite3_free(p->zServer);
  sqlite3_free(p->zBase);
  sqlite3_free(p);
  httpGlobalRelease();
}

/* Append ptr[0..n) to the buffer *paBuf of *pnBuf bytes (*pnAlloc
** allocated), keeping room for a terminating NUL.  0, or 1 when out of
** memory.  Both kinds of reply (whole and streamed) are read with it. */
static int httpBufAppend(char **paBuf, size_t *pnBuf, size_t *pnAlloc,
                         const char *ptr, size_t n){
  if( *pnBuf+n+1>*pnAlloc ){
    size_t nNew = *pnAlloc ? *pnAlloc*2 : 4096;
    char *aNew;
    while( nNew<*pnBuf+n+1 ) nNew *= 2;
    aNew = sqlite3_realloc64(*paBuf, nNew);
    if( aNew==0 ) return 1;
    *paBuf = aNew;
    *pnAlloc = nNew;
  }
  memcpy(&(*paBuf)[*pnBuf], ptr, n);
  *pnBuf += n;
  return 0;
}

static size_t httpWrite(char *ptr, size_t size, size_t nmemb, void *pArg){
  FedHttp *p = (FedHttp*)pArg;
  size_t n = size*nmemb;
  if( httpBufAppend(&p->aBuf, &p->nBuf, &p->nAlloc, ptr, n) ){
    p->bNoMem = 1;
    return 0;
  }
  return n;
}

int fedHttpOpen(const FedHttpConfig *pCfg, FedHttp **ppHttp, char **pzErr){
  FedHttp *p;
  CURL *c;
  int rc, n;
  *ppHttp = 0;
  if( sqlite3_strnicmp(pCfg->zBaseUrl, "http://", 7)!=0
   && sqlite3_strnicmp(pCfg->zBaseUrl, "https://", 8)!=0 ){
    fedSetError(pzErr, "%s: server \"%s\": \"%s\" is not an http:// or"
        " https:// URL", pCfg->zStore,
        pCfg->pServer ? pCfg->pServer->zName : "", pCfg->zBaseUrl);
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  rc = httpGlobalInit(pzErr, pCfg->zStore);
  if( rc!=SQLITE_OK ) return rc;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ){
    httpGlobalRelease();
    return SQLITE_NOMEM;
  }
  memset(p, 0, sizeof(*p));
  p->pServer = pCfg->pServer;
  p->zStore = fedStrdup(pCfg->zStore, -1);
  p->zServer = fedStrdup(pCfg->pServer ? pCfg->pServer->zName : "", -1);
  n = (int)strlen(pCfg->zBaseUrl);
  while( n>0 && pCfg->zBaseUrl[n-1]=='/' ) n--;
  p->zBase = fedStrdup(pCfg->zBaseUrl, n);
  p->pCurl = c = curl_easy_init();
  if( p->zStore==0 || p->zServer==0 || p->zBase==0 || c==0 ){
    fedHttpClose(p);
    return SQLITE_NOMEM;
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httpWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->zCurlErr);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
      (long)(pCfg->nConnectTimeoutMs>0 ? pCfg->nConnectTimeoutMs : 10000));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
      (long)(pCfg->nTimeoutMs>0 ? pCfg->nTimeoutMs : 30000));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  rc = SQLITE_OK;
  /* "" ignores http_proxy and the like: a store is reached directly. */
  if( curl_easy_setopt(c, CURLOPT_PROXY, "")
   || curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https")
   || curl_easy_setopt(c, CURLOPT_USERAGENT, "federate/" FEDERATE_VERSION)
   || (pCfg->zCaFile && curl_easy_setopt(c, CURLOPT_CAINFO, pCfg->zCaFile))
   || (pCfg->zUser && (curl_easy_setopt(c, CURLOPT_HTTPAUTH,
                                        (long)CURLAUTH_BASIC)
                       || curl_easy_setopt(c, CURLOPT_USERNAME, pCfg->zUser)
                       || curl_easy_setopt(c, CURLOPT_PASSWORD,
                              pCfg->zPassword ? pCfg->zPassword : ""))) ){
    rc = SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ){
    fedHttpClose(p);
    return rc;
  }
  *ppHttp = p;
  return SQLITE_OK;
}

int fedHttpSetHeader(FedHttp *p, const char *zName, const char *zValue){
  int i;
  for(i=0; i<p->nHdr; i++){
    if( sqlite3_stricmp(p->aHdr[i].zName, zName)==0 ) break;
  }
  if( zValue==0 ){
    if( i<p->nHdr ){
      sqlite3_free(p->aHdr[i].zName);
      sqlite3_free(p->aHdr[i].zLine);
      p->aHdr[i] = p->aHdr[--p->nHdr];
    }
    return SQLITE_OK;
  }
  if( i==p->nHdr ){
    HttpHeader *a = sqlite3_realloc64(p->aHdr, sizeof(HttpHeader)*(p->nHdr+1));
    char *zCopy;
    if( a==0 ) return SQLITE_NOMEM;
    p->aHdr = a;
    zCopy = fedStrdup(zName, -1);
    if( zCopy==0 ) return SQLITE_NOMEM;
    a[i].zName = zCopy;
    a[i].zLine = 0;
    p->nHdr++;
  }
  sqlite3_free(p->aHdr[i].zLine);
  p->aHdr[i].zLine = sqlite3_mprintf("%s: %s", p->aHdr[i].zName, zValue);
  if( p->aHdr[i].zLine==0 ){
    sqlite3_free(p->aHdr[i].zName);
    p->aHdr[i] = p->aHdr[--p->nHdr];
    return SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

void fedHttpCallClear(FedHttpCall *pCall){
  json_decref(pCall->pOut);
  pCall->pOut = 0;
}

/* Set *pzErr to "<store>: <message> (remote request: <request>)", the
** request shortened.  Returns SQLITE_ERROR, or SQLITE_NOMEM if the message
** could not be made. */
static int httpSetError(
  FedHttp *p, char **pzErr, const char *zExplain, const char *zFmt, ...
){
  va_list ap;
  char *zMsg;
  int n = (int)strlen(zExplain);
  va_start(ap, zFmt);
  zMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zMsg==0 ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_NOMEM;
  }
  if( n>HTTP_ERROR_REQUEST_MAX ){
    fedSetError(pzErr, "%s: %s (remote request: %.*s...)", p->zStore,
                zMsg, HTTP_ERROR_REQUEST_MAX, zExplain);
  }else{
    fedSetError(pzErr, "%s: %s (remote request: %s)", p->zStore, zMsg,
                zExplain);
  }
  sqlite3_free(zMsg);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int httpStatusError(
  FedHttp *p, const FedHttpCall *pCall, const char *zExplain, char **pzErr
){
  const char *zText = fedHttpErrorText(pCall->pOut);
  if( zText ){
    return httpSetError(p, pzErr, zExplain, "%s", zText);
  }
  return httpSetError(p, pzErr, zExplain,
      "server \"%s\" answered HTTP %ld%s%.100s", p->zServer, pCall->iStatus,
      pCall->nReply ? ": " : "", pCall->aReply ? pCall->aReply : "");
}

int fedHttpStatusError(FedHttp *p, const FedHttpCall *pCall, char **pzErr){
  return httpStatusError(p, pCall, pCall->zExplain ? pCall->zExplain
                         : (pCall->zPath ? pCall->zPath : ""), pzErr);
}

/*
** Run the request set up on p->pCurl, as curl_easy_perform() would, but
** through the multi interface, waking every FED_WAIT_SLICE_MS to ask
** whether the statement was interrupted; then the transfer is abandoned
** (its connection closed) and *pbInterrupted set.  The request's own
** bounds (CURLOPT_TIMEOUT_MS, CURLOPT_CONNECTTIMEOUT_MS) apply as usual.
*/
static CURLcode httpPerform(FedHttp *p, int *pbInterrupted){
  sqlite3 *db = p->pServer ? p->pServer->pCtx->db : 0;
  CURLcode e = CURLE_OK;
  CURLMsg *pMsg;
  int nRunning = 1, nMsg;
  *pbInterrupted = 0;
  if( p->pMulti==0 ){
    p->pMulti = curl_multi_init();
    if( p->pMulti==0 ) return CURLE_OUT_OF_MEMORY;
  }
  if( curl_multi_add_handle(p->pMulti, p->pCurl)!=CURLM_OK ){
    return CURLE_OUT_OF_MEMORY;
  }
  for(;;){
    if( curl_multi_perform(p->pMulti, &nRunning)!=CURLM_OK ){
      e = CURLE_OUT_OF_MEMORY;
      break;
    }
    if( nRunning==0 ) break;
    if( curl_multi_poll(p->pMulti, 0, 0, FED_WAIT_SLICE_MS, 0)!=CURLM_OK ){
      e = CURLE_OUT_OF_MEMORY;
      break;
    }
    if( fedInterrupted(db) ){
      *pbInterrupted = 1;
      break;
    }
  }
  if( nRunning==0 && e==CURLE_OK ){
    while( (pMsg = curl_multi_info_read(p->pMulti, &nMsg))!=0 ){
      if( pMsg->msg==CURLMSG_DONE ) e = pMsg->data.result;
    }
  }
  curl_multi_remove_handle(p->pMulti, p->pCurl);
  return e;
}

int fedHttpCall(FedHttp *p, FedHttpCall *pCall, char **pzErr){
  CURL *c = p->pCurl;
  struct curl_slist *pList = 0, *pNew;
  sqlite3_str *s;
  char *zBody = 0;              /* Serialised pJson */
  const char *aBody = pCall->aBody;
  size_t nBody = pCall->nBody;
  char *zExplain = 0;
  char *zUrl = 0;
  char *zLine = 0;
  const char *zMethod = pCall->zMethod ? pCall->zMethod : "GET";
  int bBody = pCall->pJson!=0 || pCall->aBody!=0;
  int nFailBefore, i, rc = SQLITE_OK;
  int bInterrupted = 0;
  FedContext *pCtx = p->pServer ? p->pServer->pCtx : 0;
  CURLcode e;

  pCall->iStatus = 0;
  pCall->pOut = 0;
  pCall->aReply = 0;
  pCall->nReply = 0;
  pCall->iExplain = 0;

  /* The body, and the text fed_explain and errors show. */
  if( pCall->pJson ){
    s = sqlite3_str_new(0);
    rc = fedHttpJsonAppend(s, pCall->pJson);
    nBody = sqlite3_str_length(s);
    zBody = sqlite3_str_finish(s);
    if( zBody==0 || rc!=SQLITE_OK ){ rc = SQLITE_NOMEM; goto cleanup; }
    aBody = zBody;
  }
  if( pCall->zExplain==0 ){
    s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "%s %s", zMethod, pCall->zPath);
    if( bBody && nBody>0 ){
      int nShow = nBody>HTTP_EXPLAIN_BODY_MAX ? HTTP_EXPLAIN_BODY_MAX
                                              : (int)nBody;
      sqlite3_str_appendchar(s, 1, ' ');
      sqlite3_str_append(s, aBody, nShow);
      if( nShow<(int)nBody ) sqlite3_str_appendall(s, "...");
    }
    zExplain = sqlite3_str_finish(s);
    if( zExplain==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  }
  zUrl = sqlite3_mprintf("%s%s", p->zBase, pCall->zPath);
  if( zUrl==0 ){ rc = SQLITE_NOMEM; goto cleanup; }

  /* Headers: curl copies each line into its own list. */
  zLine = sqlite3_mprintf("Content-Type: %s", pCall->zContentType
                          ? pCall->zContentType : "application/json");
  if( zLine==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  {
    const char *azFixed[3];
    azFixed[0] = "Accept: application/json";
    azFixed[1] = "Expect:";
    azFixed[2] = bBody ? zLine : 0;
    for(i=0; i<3 && azFixed[i]; i++){
      pNew = curl_slist_append(pList, azFixed[i]);
      if( pNew==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
      pList = pNew;
    }
  }
  for(i=0; i<p->nHdr; i++){
    pNew = curl_slist_append(pList, p->aHdr[i].zLine);
    if( pNew==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    pList = pNew;
  }

  /* The request. */
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char*)0);
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  if( curl_easy_setopt(c, CURLOPT_URL, zUrl) ){ rc = SQLITE_NOMEM; goto cleanup; }
  if( bBody || sqlite3_stricmp(zMethod, "POST")==0 ){
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)nBody);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, bBody ? aBody : "");
  }
  if( sqlite3_stricmp(zMethod, "GET")!=0 && sqlite3_stricmp(zMethod, "POST")!=0 ){
    if( curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, zMethod) ){
      rc = SQLITE_NOMEM;
      goto cleanup;
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, pList);

  rc = fedFault(pCall->iFault ? pCall->iFault : FED_FAULT_SEND, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  if( pCtx && !pCall->bNoExplain ){
    pCall->iExplain = fedExplainAdd(pCtx, p->zServer,
        pCall->zExplain ? pCall->zExplain : zExplain, 0);
  }
  if( p->nAlloc>HTTP_KEEP_BUFFER ){
    sqlite3_free(p->aBuf);
    p->aBuf = 0;
    p->nAlloc = 0;
  }
  p->nBuf = 0;
  p->bNoMem = 0;
  p->zCurlErr[0] = 0;
  nFailBefore = nAllocFail;
  e = httpPerform(p, &bInterrupted);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist*)0);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char*)0);
  if( pCtx ) fedExplainRows(pCtx, pCall->iExplain, 0, 1);
  if( bInterrupted ){
    rc = httpSetError(p, pzErr, pCall->zExplain ? pCall->zExplain
        : zExplain, "interrupted; the request to server \"%s\" was"
        " abandoned", p->zServer);
    goto cleanup;
  }
  if( e!=CURLE_OK ){
    long nReqBytes = 0;
    /* Request bytes went out (the headers at least): an atomic request's
    ** outcome is then unknown to the caller. */
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &nReqBytes);
    pCall->bMaybeSent = nReqBytes>0;
    if( p->bNoMem || e==CURLE_OUT_OF_MEMORY || nAllocFail!=nFailBefore ){
      rc = SQLITE_NOMEM;
    }else{
      rc = httpSetError(p, pzErr, pCall->zExplain ? pCall->zExplain
          : zExplain, "request to server \"%s\" failed: %s", p->zServer,
          p->zCurlErr[0] ? p->zCurlErr : curl_easy_strerror(e));
    }
    goto cleanup;
  }
  if( p->aBuf ) p->aBuf[p->nBuf] = 0;
  pCall->aReply = p->aBuf ? p->aBuf : "";
  pCall->nReply = p->nBuf;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &pCall->iStatus);

  rc = fedFault(FED_FAULT_RECV, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;

  /* Parse the reply: JSON unless asked not to, and for error texts. */
  if( p->nBuf>0 && (!pCall->bRawReply || pCall->iStatus>=400) ){
    char *zJsonErr = 0;
    rc = fedHttpJsonParse(p->aBuf, p->nBuf, &pCall->pOut, &zJsonErr);
    if( rc==SQLITE_ERROR && pCall->iStatus<400 ){
      rc = httpSetError(p, pzErr, pCall->zExplain ? pCall->zExplain
          : zExplain, "server \"%s\" sent a reply that is not JSON (%s):"
          " %.100s", p->zServer, zJsonErr, p->aBuf);
    }else if( rc==SQLITE_ERROR ){
      rc = SQLITE_OK;           /* An error page that is not JSON */
    }
    sqlite3_free(zJsonErr);
    if( rc!=SQLITE_OK ) goto cleanup;
  }
  if( pCall->iStatus>=400 && !pCall->bAnyStatus ){
    rc = httpStatusError(p, pCall, pCall->zExplain ? pCall->zExplain
                                                   : zExplain, pzErr);
  }

cleanup:
  if( rc!=SQLITE_OK ) fedHttpCallClear(pCall);
  if( pList ) curl_slist_free_all(pList);
  sqlite3_free(zLine);
  sqlite3_free(zUrl);
  sqlite3_free(zExplain);
  sqlite3_free(zBody);
  return rc;
}

/**************************************************************************
** Streams: a POST whose reply is read line by line as it arrives (etcd's
** watch), on a handle and connection of its own, through libcurl's multi
** interface so that reading never blocks longer than asked.
*/
struct FedHttpStream {
  CURLM *pMulti;
  CURL *pCurl;
  struct curl_slist *pList;     /* Request headers */
  char *zUrl;
  char *zBody;                  /* Sent while the transfer lasts */
  char *aBuf;                   /* Received, not yet a whole line */
  size_t nBuf, nAlloc;
  int bNoMem;                   /* The write callback ran out of memory */
  int bDone;                    /* The transfer has ended */
};

static size_t httpStreamWrite(char *ptr, size_t size, size_t nmemb,
                              void *pArg){
  FedHttpStream *s = (FedHttpStream*)pArg;
  size_t n = size*nmemb;
  if( httpBufAppend(&s->aBuf, &s->nBuf, &s->nAlloc, ptr, n) ){
    s->bNoMem = 1;
    return 0;
  }
  return n;
}

void fedHttpStreamClose(FedHttpStream *s){
  if( s==0 ) return;
  if( s->pMulti && s->pCurl ) curl_multi_remove_handle(s->pMulti, s->pCurl);
  if( s->pCurl ) curl_easy_cleanup(s->pCurl);
  if( s->pMulti ) curl_multi_cleanup(s->pMulti);
  if( s->pList ) curl_slist_free_all(s->pList);
  sqlite3_free(s->zUrl);
  sqlite3_free(s->zBody);
  sqlite3_free(s->aBuf);
  sqlite3_free(s);
  httpGlobalRelease();
}

int fedHttpStreamOpen(FedHttp *p, const char *zPath, const char *zBody,
                      FedHttpStream **ppStream, char **pzErr){
  FedHttpStream *s;
  CURL *c;
  int i, rc;
  *ppStream = 0;
  rc = httpGlobalInit(pzErr, p->zStore);
  if( rc!=SQLITE_OK ) return rc;
  s = sqlite3_malloc64(sizeof(*s));
  if( s==0 ){
    httpGlobalRelease();
    return SQLITE_NOMEM;
  }
  memset(s, 0, sizeof(*s));
  s->zUrl = sqlite3_mprintf("%s%s", p->zBase, zPath);
  s->zBody = fedStrdup(zBody, -1);
  s->pMulti = curl_multi_init();
  /* The stream's handle has the client's settings (timeouts, TLS,
  ** authentication), then its own. */
  s->pCurl = c = curl_easy_duphandle(p->pCurl);
  if( s->zUrl==0 || s->zBody==0 || s->pMulti==0 || c==0 ){
    fedHttpStreamClose(s);
    return SQLITE_NOMEM;
  }
  s->pList = curl_slist_append(0, "Content-Type: application/json");
  for(i=0; s->pList && i<p->nHdr; i++){
    struct curl_slist *pNew = curl_slist_append(s->pList, p->aHdr[i].zLine);
    if( pNew==0 ){
      curl_slist_free_all(s->pList);
      s->pList = 0;
    }
    s->pList = pNew;
  }
  if( s->pList==0
   || curl_easy_setopt(c, CURLOPT_URL, s->zUrl)
   || curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, (char*)0)
   || curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->zBody)
   || curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       (curl_off_t)strlen(s->zBody))
   || curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->pList)
   || curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, httpStreamWrite)
   || curl_easy_setopt(c, CURLOPT_WRITEDATA, s)
   || curl_easy_setopt(c, CURLOPT_ERRORBUFFER, (char*)0)
   || curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L)
   || curl_multi_add_handle(s->pMulti, c) ){
    fedHttpStreamClose(s);
    return SQLITE_NOMEM;
  }
  *ppStream = s;
  return SQLITE_OK;
}

int fedHttpStreamRead(FedHttpStream *s, int msWait,
                      int (*xLine)(void*, const char*, int), void *pArg){
  int nRunning = 0, rc = SQLITE_OK;
  size_t i, iStart = 0;
  CURLMsg *pMsg;
  int nMsg;
  if( !s->bDone ){
    if( msWait>0 ) curl_multi_poll(s->pMulti, 0, 0, msWait, 0);
    if( curl_multi_perform(s->pMulti, &nRunning)!=CURLM_OK ) s->bDone = 1;
    while( (pMsg = curl_multi_info_read(s->pMulti, &nMsg))!=0 ){
      if( pMsg->msg==CURLMSG_DONE ) s->bDone = 1;
    }
    if( nRunning==0 ) s->bDone = 1;
  }
  if( s->bNoMem ){
    s->bDone = 1;               /* libcurl ended the transfer: data lost */
    return SQLITE_DONE;
  }
  for(i=0; rc==SQLITE_OK && i<s->nBuf; i++){
    if( s->aBuf[i]!='\n' ) continue;
    if( i>iStart ) rc = xLine(pArg, &s->aBuf[iStart], (int)(i-iStart));
    iStart = i+1;
  }
  if( iStart>0 ){
    memmove(s->aBuf, &s->aBuf[iStart], s->nBuf-iStart);
    s->nBuf -= iStart;
  }
  if( rc==SQLITE_OK && s->bDone ) rc = SQLITE_DONE;
  return rc;
}
