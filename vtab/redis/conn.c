/*
** conn.c: connections: the DSN, connect and disconnect, and running a
** pipeline on the socket with deadlines (rdPipeRun); errors of replies.
**
** Connection.  The DSN is redis://[user@]host[:port][/db] or
** unix:/path/to/socket[?db=N]; it never holds a password: that comes from
** the environment variable named by password_env=.
*/
#include "redisInt.h"

static FedContext *rdCtx(RedisConn *p){
  return p->base.pServer->pCtx;
}

/* "redis: <what> (remote command: <text>)". */
void rdSetError(char **pzErr, const char *zWhat, const char *zCmd){
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
    zText = rdCmdText(argc, azArg, anArg);   /* Passwords masked */
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
** P->pReplies the replies are built in that arena (rdReplyFns).
*/
int rdPipeRun(RedisConn *p, RedisPipe *P, char **pzErr){
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
  rdPipeFreeReplies(P);
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
    aSeq[nSent] = connAppend(p, P, rdPipeArgc(P, i), &P->azArg[i0],
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
        char *zText = rdPipeText(P, 0);
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
    pReader->fn = &rdReplyFns;
    pReader->privdata = P->pReplies;
  }
  for(i=0; i<nSent; i++){
    void *pReply = 0;
    if( connGetReply(p, &pReply)!=REDIS_OK || pReply==0 ){
      if( p->c->err==REDIS_ERR_OOM ){
        p->bDead = 1;
        rc = SQLITE_NOMEM;
      }else{
        char *zText = P->iBlame>0 ? rdPipeText(P, P->iBlame-1)
                    : aMap[i]>=0 ? rdPipeText(P, aMap[i]) : 0;
        connIoError(p, zText, pzErr);
        sqlite3_free(zText);
        rc = SQLITE_ERROR;
      }
      break;
    }
    fedExplainRows(rdCtx(p), aSeq[i], rdReplyRows(pReply), 1);
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
  if( rc ) rdPipeFreeReplies(P);
  sqlite3_free(aMap);
  sqlite3_free(aSeq);
  return rc;
}

/* An error reply of command iCmd of P as an error message. */
void rdPipeReplyError(RedisPipe *P, int iCmd, char **pzErr){
  redisReply *r = P->apReply[iCmd];
  char *zText = rdPipeText(P, iCmd);
  char *zMsg = sqlite3_mprintf("%.*s", (int)r->len, r->str);
  rdSetError(pzErr, zMsg ? zMsg : "error", zText);
  sqlite3_free(zMsg);
  sqlite3_free(zText);
}

int rdIsWrongType(const redisReply *r){
  return r && r->type==REDIS_REPLY_ERROR && r->len>=9
      && memcmp(r->str, "WRONGTYPE", 9)==0;
}

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
int rdServerCheck(FedServer *pServer, char **pzErr){
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

void rdDisconnect(FedConn *pConn){
  RedisConn *p = (RedisConn*)pConn;
  if( p==0 ) return;
  if( p->pSub ) rdDisconnect(&p->pSub->base);
  if( p->c ) redisFree(p->c);
  rdTxnClear(&p->txn);
  sqlite3_free(p);
}

/* 0 if the connection is known to be unusable.  An idle connection has
** nothing to read: anything there (or end of file) means the server
** closed it or is about to. */
int rdIsAlive(FedConn *pConn){
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

int rdConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
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
  rdPipeInit(&P);
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
  fedKvTxnInit(&p->txn.kv, &rdKvDriver);
  p->txn.shadow.xDel = rdShadowFree;
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
    rdPipeCmd(&P, -1, "AUTH");
    if( d.zUser ) rdPipeArg(&P, d.zUser, -1);
    rdPipeArg(&P, zPw, -1);
  }
  if( d.iDb!=0 ){
    rdPipeCmd(&P, -1, "SELECT");
    rdPipeArgInt(&P, d.iDb);
  }
  if( P.rc ){
    rc = P.rc;
    goto cleanup;
  }
  if( P.nCmd>0 ){
    rc = rdPipeRun(p, &P, pzErr);
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
  rdPipeFree(&P);
  dsnFree(&d);
  if( p ) rdDisconnect(&p->base);
  return rc;
}
