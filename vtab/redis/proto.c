/*
** proto.c: building pipelines (RedisPipe), the reply arena of a scan's
** batches, and the text of a command as fed_explain and errors show it.
**
** Commands and pipelines.  A pipeline is built (arguments referenced, or
** copied into its arena), then sent whole, and every reply read before
** anything else uses the connection: a connection is never left with
** replies pending between two calls.  Each command is recorded in
** fed_explain with its exact text.
*/
#include "redisInt.h"

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
void rdReplyArenaReset(RReplyArena *pA){
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

void rdReplyArenaFree(RReplyArena *pA){
  rdReplyArenaReset(pA);
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

redisReplyObjectFunctions rdReplyFns = {
  replyString, replyArray, replyInteger, replyNil, replyFreeNothing
};

void rdPipeInit(RedisPipe *P){
  memset(P, 0, sizeof(*P));
}

void rdPipeFreeReplies(RedisPipe *P){
  int i;
  for(i=0; i<P->nReply; i++){
    if( P->apReply[i] && P->pReplies==0 ) freeReplyObject(P->apReply[i]);
    P->apReply[i] = 0;
  }
  P->nReply = 0;
}

/* Forget the commands and replies of P but keep its arrays, for the next
** batch of a scan (regrowing them each batch costs more than the reads). */
void rdPipeClear(RedisPipe *P){
  rdPipeFreeReplies(P);
  rdArenaReset(&P->arena);
  P->rc = 0;
  P->nCmd = P->nArg = 0;
}

void rdPipeFree(RedisPipe *P){
  rdPipeFreeReplies(P);
  sqlite3_free(P->apReply);
  sqlite3_free(P->zOut);
  sqlite3_free(P->aFirst);
  sqlite3_free(P->aDb);
  sqlite3_free(P->azArg);
  sqlite3_free(P->anArg);
  rdArenaFree(&P->arena);
  memset(P, 0, sizeof(*P));
}

/* Add an argument (not copied: it must live until rdPipeRun()). */
void rdPipeArg(RedisPipe *P, const char *z, int n){
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

void rdPipeArgCopy(RedisPipe *P, const char *z, int n){
  char *zCopy;
  if( P->rc ) return;
  if( n<0 ) n = (int)strlen(z);
  zCopy = rdArenaDup(&P->arena, z, n);
  if( zCopy==0 ){ P->rc = SQLITE_NOMEM; return; }
  rdPipeArg(P, zCopy, n);
}

void rdPipeArgInt(RedisPipe *P, i64 v){
  char zBuf[32];
  sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", v);
  rdPipeArgCopy(P, zBuf, -1);
}

/* Start a command named zName (a static string) in database iDb. */
void rdPipeCmd(RedisPipe *P, int iDb, const char *zName){
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
  rdPipeArg(P, zName, -1);
}

int rdPipeArgc(const RedisPipe *P, int iCmd){
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
char *rdCmdText(int argc, const char **azArg, const size_t *anArg){
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
        rdRenderArg(s, azArg[i], (int)anArg[i]);
      }
    }
    return sqlite3_str_finish(s);
  }
  /* Most commands show every argument bare (rdRenderArg()): one copy. */
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
    else rdRenderArg(s, azArg[i], (int)anArg[i]);
  }
  return sqlite3_str_finish(s);
}

char *rdPipeText(const RedisPipe *P, int iCmd){
  int i0 = P->aFirst[iCmd];
  return rdCmdText(rdPipeArgc(P, iCmd), &P->azArg[i0], &P->anArg[i0]);
}

/* Rows a reply counts for in fed_explain. */
i64 rdReplyRows(const redisReply *r){
  if( r==0 ) return 0;
  if( r->type==REDIS_REPLY_ARRAY && r->elements==2
   && r->element[1]->type==REDIS_REPLY_ARRAY ){
    return (i64)r->element[1]->elements;       /* SCAN: its keys */
  }
  if( r->type==REDIS_REPLY_ARRAY ) return (i64)r->elements;
  if( r->type==REDIS_REPLY_NIL ) return 0;
  return 1;
}
