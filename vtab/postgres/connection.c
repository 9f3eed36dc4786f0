/*
** connection.c: the PostgreSQL store's connections (postgres_fdw's
** connection.c): connect with the server's DSN and options (password_env,
** connect_timeout, command_timeout), error text, waits bounded by
** command_timeout and ended by interrupts (cancel, or close), sending
** commands through the per-connection statement cache, and disconnect.
*/
#include "pgInt.h"
#include <stdlib.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

/*
** Why the last bounded wait on a connection ended early (fedPgResult()): a
** timeout or an interrupt.  libpq's own error text cannot be set, and
** fedPgSetError() is given the PGconn only, so the reason is kept per thread
** with the PGconn it is about, and pgErrText() takes it (sqlite3_malloc'd).
*/
static __thread PGconn *pWaitPg = 0;
static __thread char *zWaitErr = 0;

int fedPgWaitPending(PGconn *pg){
  return pg && pg==pWaitPg && zWaitErr!=0;
}

static void pgWaitErrorSet(PGconn *pg, char *z){
  sqlite3_free(zWaitErr);
  zWaitErr = z;
  pWaitPg = z ? pg : 0;
}

/* The error text of the connection, without libpq's trailing newline,
** prefixed by the store name; sqlite3_malloc'd. */
static char *pgErrText(PGconn *pg, const PGresult *pRes){
  const char *z = pRes ? PQresultErrorMessage(pRes) : 0;
  int n;
  if( pg && pg==pWaitPg && zWaitErr ){
    char *zWait = zWaitErr;
    zWaitErr = 0;
    pWaitPg = 0;
    return zWait;
  }
  if( z==0 || z[0]==0 ) z = pg ? PQerrorMessage(pg) : "out of memory";
  if( sqlite3_strnicmp(z, "ERROR:  ", 8)==0 ) z += 8;
  else if( sqlite3_strnicmp(z, "FATAL:  ", 8)==0 ) z += 8;
  n = (int)strlen(z);
  while( n>0 && (z[n-1]=='\n' || z[n-1]==' ') ) n--;
  return sqlite3_mprintf("%.*s", n, z);
}

/* Set *pzErr to "postgres: <server error> (remote query: <sql>)". */
void fedPgSetError(
  char **pzErr, PGconn *pg, const PGresult *pRes, const char *zSql
){
  char *z = pgErrText(pg, pRes);
  if( zSql ){
    fedSetError(pzErr, "%s: %s (remote query: %s)", PG_STORE, z ? z : "",
                zSql);
  }else{
    fedSetError(pzErr, "%s: %s", PG_STORE, z ? z : "");
  }
  sqlite3_free(z);
}

static void pgNoticeIgnore(void *pArg, const char *zMsg){
  (void)pArg; (void)zMsg;
}

static void stmtCacheFree(PgConn *p){
  while( p->pStmt ){
    PgStmt *pS = p->pStmt;
    p->pStmt = pS->pNext;
    sqlite3_free(pS->zSql);
    sqlite3_free(pS);
  }
  p->nStmt = 0;
}

void fedPgDisconnect(FedConn *pConn){
  PgConn *p = (PgConn*)pConn;
  if( p==0 ) return;
  if( p->pActive ){
    p->pActive->bStreaming = 0;
    p->pActive->pConn = 0;
  }
  if( p->pg && p->pg==pWaitPg ) pgWaitErrorSet(0, 0);
  if( p->pg ) PQfinish(p->pg);
  stmtCacheFree(p);
  fedPgBatchClear(&p->batch);
  fedPgParamsFree(&p->batch.params);
  sqlite3_free(p->batch.aCopy);
  fedPgParamsFree(&p->scan);
  sqlite3_free(p->zDoom);
  while( p->nNote>0 ) sqlite3_free(p->azNote[--p->nNote]);
  sqlite3_free(p->azNote);
  sqlite3_free(p->zCopyRel);
  sqlite3_free(p->batch.zCopyErr);
  sqlite3_free(p);
}

int fedPgIsAlive(FedConn *pConn){
  PgConn *p = (PgConn*)pConn;
  struct pollfd fd;
  if( p->pg==0 || PQstatus(p->pg)!=CONNECTION_OK ) return 0;
  if( p->pActive ) return 1;
  /* Inside a COPY the server may already have said why it failed; the
  ** COPY's end reports it (or that the connection was lost). */
  if( p->batch.nCopied>0 ) return 1;
  /* An idle connection should have nothing to read: if it has, the server
  ** closed it or is saying why it will. */
  fd.fd = PQsocket(p->pg);
  fd.events = POLLIN;
  fd.revents = 0;
  if( fd.fd<0 ) return 0;
  if( poll(&fd, 1, 0)>0 ){
    /* A notification (LISTEN fed_cache), or else the end of the stream or
    ** the message a server sends as it shuts down ("terminating
    ** connection ..."): then it is going. */
    if( p->base.iListen && PQconsumeInput(p->pg)
     && PQstatus(p->pg)==CONNECTION_OK && fedPgTakeNotes(p)>0 ){
      fd.revents = 0;
      return poll(&fd, 1, 0)==0;
    }
    return 0;
  }
  return 1;
}

/**************************************************************************
** Waiting for the server: every wait is bounded by command_timeout (the
** longest the server may stay silent) and ends early when the statement
** is interrupted.  libpq's own calls block without bound, so commands are
** sent with its asynchronous calls and waited for here.
*/

static sqlite3 *pgDb(PgConn *p){
  return p->base.pServer->pCtx->db;
}

/* Close the connection's socket: libpq then reports the connection lost,
** and the next statement opens a new one.  For a server that stopped
** answering, where a polite goodbye would wait forever too. */
static void pgKill(PgConn *p){
  int fd = PQsocket(p->pg);
  if( fd>=0 ) shutdown(fd, SHUT_RDWR);
}

/* PQcancel() waits for the server to close the cancel connection, which a
** stopped server never does: it runs on a thread of its own. */
static void *pgCancelMain(void *pArg){
  char zErr[256];
  PQcancel((PGcancel*)pArg, zErr, sizeof(zErr));
  PQfreeCancel((PGcancel*)pArg);
  return 0;
}

/* Send a cancel request for the command running on p, without waiting. */
void fedPgCancelAsync(PgConn *p){
  PGcancel *pCancel = PQgetCancel(p->pg);
  pthread_attr_t attr;
  pthread_t t;
  if( pCancel==0 ) return;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  if( pthread_create(&t, &attr, pgCancelMain, pCancel) ){
    PQfreeCancel(pCancel);
  }
  pthread_attr_destroy(&attr);
}

/* Read and discard what is left of the current command, for at most nMs
** (then the connection is closed: returns 1).  Not interruptible: it is
** the end of an interrupt already. */
static int pgDiscard(PgConn *p, int nMs){
  i64 iDeadline = fedNowMs() + nMs;
  int bKilled = 0;
  for(;;){
    PGresult *pRes;
    PQflush(p->pg);             /* A CopyFail queued below, say */
    while( PQisBusy(p->pg) ){
      if( fedWaitFd(0, PQsocket(p->pg), 0, iDeadline)!=FED_WAIT_READY ){
        pgKill(p);
        bKilled = 1;
      }
      if( !PQconsumeInput(p->pg) ) break;
    }
    pRes = PQgetResult(p->pg);
    if( pRes==0 ) break;
    switch( PQresultStatus(pRes) ){
      case PGRES_COPY_IN:
        PQputCopyEnd(p->pg, "federate: cancelled");
        break;
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH: {
        /* PQgetResult() returns the COPY state until its data is read. */
        char *zBuf = 0;
        int n;
        while( (n = PQgetCopyData(p->pg, &zBuf, 1))>=0 ){
          if( zBuf ){ PQfreemem(zBuf); zBuf = 0; continue; }
          if( fedWaitFd(0, PQsocket(p->pg), 0, iDeadline)!=FED_WAIT_READY ){
            pgKill(p);
            bKilled = 1;
          }
          if( !PQconsumeInput(p->pg) ) break;
        }
        break;
      }
      default:
        break;
    }
    PQclear(pRes);
  }
  return bKilled;
}

/*
** The connection is in libpq's nonblocking mode, so that a command (a big
** COPY batch, a long IN list) sent to a server that stopped reading never
** blocks: libpq queues it, and this pushes the queue out, bounded and
** interruptible as fedPgResult().  SQLITE_OK when it is all sent (or libpq
** gave up on the socket: the read that follows reports it); else the
** socket is closed (a command cut half way cannot be cancelled) and the
** reason kept for pgErrText().
*/
int fedPgPush(PgConn *p){
  i64 iTimeout = p->nCmdTimeoutMs;
  i64 iDeadline = iTimeout>0 ? fedNowMs()+iTimeout : 0;
  while( PQflush(p->pg)==1 ){
    /* Wait to write, or to read: the server may be sending while it
    ** cannot take more (libpq's advice), and reading frees it. */
    int e = fedWaitFd(pgDb(p), PQsocket(p->pg), 2, iDeadline);
    if( e==FED_WAIT_READY ){
      if( !PQconsumeInput(p->pg) ) break;
      if( iTimeout>0 ) iDeadline = fedNowMs() + iTimeout;
      continue;
    }
    pgKill(p);
    pgDiscard(p, 0);
    if( e==FED_WAIT_TIMEOUT ){
      pgWaitErrorSet(p->pg, sqlite3_mprintf("server \"%s\" did not take"
          " the command within %lld s (command_timeout); the connection was"
          " closed", p->base.pServer->zName, iTimeout/1000));
    }else{
      pgWaitErrorSet(p->pg, sqlite3_mprintf("interrupted while sending;"
          " the connection was closed"));
    }
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** PQgetResult(), bounded: the next result of the command running on p, or
** NULL when it has no more.  When the server stays silent for
** command_timeout the connection is closed; when the statement is
** interrupted the command is cancelled (a cancel request, then what is
** left is discarded; closed if the server does not end it within
** PG_CANCEL_WAIT_MS).  Either way the result is a fatal error whose text
** (pgErrText) says which, and the connection has no command running.
*/
PGresult *fedPgResult(PgConn *p){
  i64 iTimeout = p->nCmdTimeoutMs;
  i64 iDeadline = iTimeout>0 ? fedNowMs()+iTimeout : 0;
  const char *zServer = p->base.pServer->zName;
  /* A reason kept from an earlier command that nobody reported is stale. */
  if( pWaitPg==p->pg && PQisBusy(p->pg) ) pgWaitErrorSet(0, 0);
  if( PQstatus(p->pg)==CONNECTION_OK && fedPgPush(p)!=SQLITE_OK ){
    return PQmakeEmptyPGresult(p->pg, PGRES_FATAL_ERROR);
  }
  while( PQisBusy(p->pg) ){
    int e = fedWaitFd(pgDb(p), PQsocket(p->pg), 0, iDeadline);
    if( e==FED_WAIT_READY ){
      if( !PQconsumeInput(p->pg) ) break;     /* PQgetResult() says why */
      if( iTimeout>0 ) iDeadline = fedNowMs() + iTimeout;
      continue;
    }
    if( e==FED_WAIT_TIMEOUT ){
      pgKill(p);
      pgDiscard(p, 0);
      pgWaitErrorSet(p->pg, sqlite3_mprintf("server \"%s\" did not answer"
          " within %lld s (command_timeout); the connection was closed",
          zServer, iTimeout/1000));
    }else{
      fedPgCancelAsync(p);
      if( pgDiscard(p, PG_CANCEL_WAIT_MS) ){
        pgWaitErrorSet(p->pg, sqlite3_mprintf("interrupted; the server did"
            " not end the command within %d ms of a cancel request: the"
            " connection was closed", PG_CANCEL_WAIT_MS));
      }else{
        pgWaitErrorSet(p->pg, sqlite3_mprintf("interrupted; the remote"
            " command was cancelled"));
      }
    }
    return PQmakeEmptyPGresult(p->pg, PGRES_FATAL_ERROR);
  }
  return PQgetResult(p->pg);
}

/* PQexec() (and PQprepare(): bSent is what the PQsend... call returned),
** bounded as fedPgResult(): the last result, the first error, or the COPY
** state the command entered. */
PGresult *fedPgCollect(PgConn *p, int bSent){
  PGresult *pRes, *pLast = 0;
  if( !bSent ) return PQmakeEmptyPGresult(p->pg, PGRES_FATAL_ERROR);
  while( (pRes = fedPgResult(p))!=0 ){
    ExecStatusType e = PQresultStatus(pRes);
    if( pLast && PQresultStatus(pLast)==PGRES_FATAL_ERROR ){
      PQclear(pRes);
      continue;
    }
    PQclear(pLast);
    pLast = pRes;
    if( e==PGRES_COPY_IN || e==PGRES_COPY_OUT || e==PGRES_COPY_BOTH ) break;
  }
  return pLast;
}

/*
** Open the connection with libpq's asynchronous calls, so that its
** connect_timeout (the server option, else the DSN's, else 10 s) bounds
** the whole of it, and an interrupt ends it.
*/
static int pgOpenConn(
  FedServer *pServer, const char *const *azKey, const char *const *azVal,
  PGconn **ppPg, char **pzErr
){
  PGconn *pg = PQconnectStartParams(azKey, azVal, 1);
  PQconninfoOption *aOpt, *pOpt;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  i64 iTimeout = 10, iDeadline;
  char *zWhy = 0;
  *ppPg = pg;
  if( pg==0 ) return SQLITE_NOMEM;
  if( PQstatus(pg)==CONNECTION_BAD ) return SQLITE_ERROR;
  aOpt = PQconninfo(pg);
  for(pOpt=aOpt; pOpt && pOpt->keyword; pOpt++){
    if( strcmp(pOpt->keyword, "connect_timeout")==0 && pOpt->val
     && pOpt->val[0] ){
      iTimeout = atoi(pOpt->val);
    }
  }
  PQconninfoFree(aOpt);
  iDeadline = iTimeout>0 ? fedNowMs() + iTimeout*1000 : 0;
  while( st!=PGRES_POLLING_OK && st!=PGRES_POLLING_FAILED ){
    int e = fedWaitFd(pServer->pCtx->db, PQsocket(pg),
                      st==PGRES_POLLING_WRITING, iDeadline);
    if( e==FED_WAIT_TIMEOUT ){
      zWhy = sqlite3_mprintf("no answer within %lld s (connect_timeout)",
                             iTimeout);
      break;
    }
    if( e==FED_WAIT_INTERRUPT ){
      zWhy = sqlite3_mprintf("interrupted");
      break;
    }
    st = PQconnectPoll(pg);
  }
  if( st!=PGRES_POLLING_OK && st!=PGRES_POLLING_FAILED ){
    fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s", PG_STORE,
                pServer->zName, zWhy ? zWhy : "out of memory");
    sqlite3_free(zWhy);
    return SQLITE_ERROR;
  }
  return st==PGRES_POLLING_OK ? SQLITE_OK : SQLITE_ERROR;
}

int fedPgConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  const char *azKey[8];
  const char *azVal[8];
  const char *zPwEnv = 0;
  const char *zTimeout = fedConfigGet(pServer->pOpt, "connect_timeout");
  PgConn *p;
  int n = 0, rc;
  i64 iTimeout, iCmdTimeout;

  *ppConn = 0;
  rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &iTimeout,
                    PG_STORE, pzErr);
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "command_timeout", 300, 0, 86400,
                      &iCmdTimeout, PG_STORE, pzErr);
  }
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  /* Keywords after dbname override the DSN's, those before it do not: the
  ** default connect_timeout goes first, so that a DSN's own is honoured,
  ** and the server option after it. */
  if( zTimeout==0 ){
    azKey[n] = "connect_timeout"; azVal[n++] = "10";
  }
  azKey[n] = "dbname";  azVal[n++] = pServer->zDsn;
  if( zTimeout ){
    azKey[n] = "connect_timeout"; azVal[n++] = zTimeout;
  }
  azKey[n] = "fallback_application_name"; azVal[n++] = "federate";
  azKey[n] = "client_encoding"; azVal[n++] = "UTF8";
  if( zPwEnv ){
    const char *zPw = getenv(zPwEnv);
    if( zPw==0 ){
      fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
          " by password_env) is not set", PG_STORE, pServer->zName, zPwEnv);
      return SQLITE_ERROR;
    }
    azKey[n] = "password"; azVal[n++] = zPw;
  }
  azKey[n] = 0; azVal[n] = 0;

  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  p->nCmdTimeoutMs = iCmdTimeout*1000;
  rc = pgOpenConn(pServer, azKey, azVal, &p->pg, pzErr);
  if( p->pg==0 ){
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK && *pzErr ){
    fedPgDisconnect(&p->base);
    return rc;
  }
  if( PQstatus(p->pg)!=CONNECTION_OK ){
    char *z = pgErrText(p->pg, 0);
    fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s", PG_STORE,
                pServer->zName, z ? z : "");
    sqlite3_free(z);
    fedPgDisconnect(&p->base);
    return SQLITE_ERROR;
  }
  PQsetNoticeProcessor(p->pg, pgNoticeIgnore, 0);
  /* Commands are queued and pushed out by fedPgPush(), never blocking. */
  if( PQsetnonblocking(p->pg, 1) ){
    fedPgSetError(pzErr, p->pg, 0, 0);
    fedPgDisconnect(&p->base);
    return SQLITE_ERROR;
  }
  /* Fixed output formats, so that values convert the same everywhere. */
  rc = fedPgExecSimple(p, "SET datestyle = 'ISO, YMD'; SET timezone = 'UTC';"
                       " SET intervalstyle = 'iso_8601';"
                       " SET extra_float_digits = 1; SET bytea_output = 'hex'",
                       pzErr);
  if( rc!=SQLITE_OK ){
    fedPgDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

/**************************************************************************
** Sending commands.
*/

/* Read the rest of the streaming scan on this connection into its cursor,
** so that the connection is free for another command. */
void fedPgConnIdle(PgConn *p){
  if( p->pActive ) fedPgCursorDrain(p->pActive);
}

/* Run a command that returns no rows, as it is (no owed BEGIN first). */
int fedPgExecRaw(PgConn *p, const char *zSql, char **pzErr){
  PGresult *pRes;
  i64 iSeq;
  int rc = SQLITE_OK;
  fedPgConnIdle(p);
  if( fedFault(FED_FAULT_SEND, pzErr) ) return SQLITE_ERROR;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, 0);
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK
   && PQresultStatus(pRes)!=PGRES_TUPLES_OK ){
    fedPgSetError(pzErr, p->pg, pRes, zSql);
    rc = SQLITE_ERROR;
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  return rc;
}


/* After an error inside a transaction PostgreSQL refuses everything but
** ROLLBACK ("current transaction is aborted").  Say so plainly instead,
** and keep COMMIT from pretending: SQLite's transaction stays open until
** the user rolls it back.  (ROLLBACK TO a savepoint taken earlier makes
** the remote transaction usable again, so this is asked each time.) */
int fedPgAborted(PgConn *p, char **pzErr){
  if( p->pg==0 || !p->bOpen
   || PQtransactionStatus(p->pg)!=PQTRANS_INERROR ){
    return SQLITE_OK;
  }
  fedSetError(pzErr, "%s: an earlier statement of this transaction failed"
      " on server \"%s\", so PostgreSQL has aborted the transaction:"
      " ROLLBACK (or ROLLBACK TO a savepoint taken before the failure)",
      PG_STORE, p->base.pServer->zName);
  return SQLITE_ERROR;
}

/*
** Make the connection ready for the next command of the transaction: the
** streaming scan read aside, an earlier lost batch reported, an owed
** BEGIN sent.
*/
int fedPgReady(PgConn *p, char **pzErr){
  int rc = SQLITE_OK;
  /* Rows streaming into a COPY: end it first (the batch is sent). */
  if( p->batch.nCopied>0 || p->batch.zCopyErr ){
    rc = fedPgFlushBatch(p, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  fedPgConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( fedPgAborted(p, pzErr) ) return SQLITE_ERROR;
  if( p->bBeginPending ){
    p->bBeginPending = 0;
    rc = fedPgExecRaw(p, "BEGIN", pzErr);
    if( rc==SQLITE_OK ) p->bOpen = 1;
  }
  return rc;
}

int fedPgExecSimple(PgConn *p, const char *zSql, char **pzErr){
  int rc = fedPgReady(p, pzErr);
  return rc==SQLITE_OK ? fedPgExecRaw(p, zSql, pzErr) : rc;
}

/* Look zSql up in the statement cache.  Returns the entry (moved to the
** front) or NULL; *pbNew is set when the entry was just created. */
static PgStmt *stmtLookup(PgConn *p, const char *zSql){
  PgStmt **pp, *pS;
  for(pp=&p->pStmt; *pp; pp=&(*pp)->pNext){
    if( strcmp((*pp)->zSql, zSql)==0 ){
      pS = *pp;
      *pp = pS->pNext;
      pS->pNext = p->pStmt;
      p->pStmt = pS;
      return pS;
    }
  }
  return 0;
}

/*
** Record zSql with its parameters in fed_explain and send them, without
** waiting for the result; returns the fed_explain entry in *piSeq.  A text
** seen for the second time is prepared once and then executed by name, so
** that repeated lookups skip the server's parse and plan.
*/
int fedPgSend(
  PgConn *p, const char *zSql, PgParams *pParams, i64 *piSeq, char **pzErr
){
  const char **azVal = 0;
  const char *azOne[8];
  PgStmt *pS;
  int ok;
  int nParam = pParams ? pParams->n : 0;
  if( nParam>(int)(sizeof(azOne)/sizeof(azOne[0])) ){
    azVal = fedPgParamsValues(pParams);
    if( azVal==0 ) return SQLITE_NOMEM;
  }else if( nParam>0 ){
    int i;
    for(i=0; i<nParam; i++){
      azOne[i] = pParams->aOff[i]<0 ? 0 : &pParams->aBuf[pParams->aOff[i]];
    }
    azVal = azOne;
  }
  *piSeq = fedExplainAddValues(pgCtx(p), p->base.pServer->zName, zSql,
                               nParam, azVal, pParams ? pParams->aLen : 0,
                               pParams ? pParams->aFmt : 0);
  if( fedFault(FED_FAULT_SEND, pzErr) ){
    if( azVal!=azOne ) sqlite3_free(azVal);
    return SQLITE_ERROR;
  }
  pS = stmtLookup(p, zSql);
  if( pS && pS->iName==0 ){
    PGresult *pRes;
    sqlite3_snprintf(sizeof(pS->zName), pS->zName, "fed_%d", ++p->iStmtSeq);
    pRes = fedPgCollect(p, PQsendPrepare(p->pg, pS->zName, zSql, nParam,
                                      0));
    if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
      fedPgSetError(pzErr, p->pg, pRes, zSql);
      PQclear(pRes);
      if( azVal!=azOne ) sqlite3_free(azVal);
      return SQLITE_ERROR;
    }
    PQclear(pRes);
    pS->iName = p->iStmtSeq;
  }
  if( pS ){
    ok = PQsendQueryPrepared(p->pg, pS->zName, nParam, azVal,
                             pParams ? pParams->aLen : 0,
                             pParams ? pParams->aFmt : 0, 0);
  }else{
    /* First sight: remember it, run it unnamed. */
    if( p->nStmt>=PG_STMT_CACHE ){
      /* Forget the least recent one; its server-side statement stays
      ** until the connection closes (cheap, and never reused). */
      PgStmt **pp = &p->pStmt;
      while( (*pp)->pNext ) pp = &(*pp)->pNext;
      sqlite3_free((*pp)->zSql);
      sqlite3_free(*pp);
      *pp = 0;
      p->nStmt--;
    }
    pS = sqlite3_malloc64(sizeof(*pS));
    if( pS ) pS->zSql = fedStrdup(zSql, -1);
    if( pS==0 || pS->zSql==0 ){
      sqlite3_free(pS);
      if( azVal!=azOne ) sqlite3_free(azVal);
      return SQLITE_NOMEM;
    }
    pS->iName = 0;
    pS->zName[0] = 0;
    pS->pNext = p->pStmt;
    p->pStmt = pS;
    p->nStmt++;
    ok = PQsendQueryParams(p->pg, zSql, nParam, 0, azVal,
                           pParams ? pParams->aLen : 0,
                           pParams ? pParams->aFmt : 0, 0);
  }
  if( azVal!=azOne ) sqlite3_free(azVal);
  if( !ok ){
    fedPgSetError(pzErr, p->pg, 0, zSql);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** The command of a pass-through entered COPY TO STDOUT: read its lines
** into p->pCopyOut as rows {"line": "<the line, without its newline>"},
** bounded as fedPgResult().  The COPY's own result follows, from fedPgResult().
*/
int fedPgCopyOutRead(PgConn *p, const char *zSql, char **pzErr){
  i64 iTimeout = p->nCmdTimeoutMs;
  i64 iDeadline = iTimeout>0 ? fedNowMs()+iTimeout : 0;
  int rc = SQLITE_OK;
  if( p->pCopyOut==0 ) p->pCopyOut = sqlite3_str_new(0);
  for(;;){
    char *zBuf = 0;
    int n = PQgetCopyData(p->pg, &zBuf, 1), e;
    if( n>0 ){
      if( rc==SQLITE_OK ){
        if( n>0 && zBuf[n-1]=='\n' ) n--;
        sqlite3_str_appendall(p->pCopyOut, "{\"line\":");
        fedJsonQuote(p->pCopyOut, zBuf, n);
        sqlite3_str_appendall(p->pCopyOut, "}\n");
        p->nCopyOut++;
        if( sqlite3_str_errcode(p->pCopyOut) ) rc = SQLITE_NOMEM;
      }
      PQfreemem(zBuf);
      continue;
    }
    if( n<0 ) break;            /* The end (-1), or an error (-2): the
                                ** result says which */
    e = fedWaitFd(pgDb(p), PQsocket(p->pg), 0, iDeadline);
    if( e==FED_WAIT_READY ){
      if( !PQconsumeInput(p->pg) ) break;
      if( iTimeout>0 ) iDeadline = fedNowMs() + iTimeout;
      continue;
    }
    if( e==FED_WAIT_TIMEOUT ){
      pgKill(p);
      fedSetError(pzErr, "%s: server \"%s\" did not answer within %lld s"
          " (command_timeout); the connection was closed (remote query: %s)",
          PG_STORE, p->base.pServer->zName, iTimeout/1000, zSql);
      pgDiscard(p, 0);
    }else{
      fedPgCancelAsync(p);
      if( pgDiscard(p, PG_CANCEL_WAIT_MS) ){
        fedSetError(pzErr, "%s: interrupted; the server did not end the"
            " command within %d ms of a cancel request: the connection was"
            " closed (remote query: %s)", PG_STORE, PG_CANCEL_WAIT_MS, zSql);
      }else{
        fedSetError(pzErr, "%s: interrupted; the remote command was"
                    " cancelled (remote query: %s)", PG_STORE, zSql);
      }
    }
    return SQLITE_ERROR;
  }
  return rc;
}

/* Send and wait for a command that returns no rows (or whose rows are
** read whole).  *ppRes gets the result when ppRes is not NULL. */
int fedPgExec(
  PgConn *p, const char *zSql, PgParams *pParams, PGresult **ppRes,
  char **pzErr
){
  PGresult *pRes, *pLast = 0;
  i64 iSeq, nRow = 0;
  int rc = fedPgReady(p, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = fedPgSend(p, zSql, pParams, &iSeq, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  while( (pRes = fedPgResult(p))!=0 ){
    ExecStatusType e = PQresultStatus(pRes);
    if( e==PGRES_COPY_IN || e==PGRES_COPY_BOTH ){
      /* Only a pass-through can send COPY FROM STDIN, and it has no data
      ** to give: the server is told to end it. */
      PQputCopyEnd(p->pg, "federate: COPY FROM STDIN is not supported");
      if( rc==SQLITE_OK ){
        fedSetError(pzErr, "%s: COPY FROM STDIN is not supported through"
            " fed_query/fed_exec: insert through a postgres table instead"
            " (remote query: %s)", PG_STORE, zSql);
        rc = SQLITE_ERROR;
      }
      PQclear(pRes);
      continue;
    }
    if( e==PGRES_COPY_OUT ){
      int rc2 = fedPgCopyOutRead(p, zSql, rc==SQLITE_OK ? pzErr : 0);
      if( rc==SQLITE_OK ) rc = rc2;
      PQclear(pRes);
      continue;
    }
    if( e!=PGRES_COMMAND_OK && e!=PGRES_TUPLES_OK && rc==SQLITE_OK ){
      fedPgSetError(pzErr, p->pg, pRes, zSql);
      rc = SQLITE_ERROR;
    }
    if( pLast ) PQclear(pLast);
    pLast = pRes;
  }
  if( pLast && rc==SQLITE_OK ){
    const char *zTuples = PQcmdTuples(pLast);
    nRow = zTuples[0] ? atoll(zTuples) : PQntuples(pLast);
  }
  fedExplainRows(pgCtx(p), iSeq, nRow, 1);
  if( rc==SQLITE_OK && pLast==0 ){
    fedPgSetError(pzErr, p->pg, 0, zSql);
    rc = SQLITE_ERROR;
  }
  if( ppRes && rc==SQLITE_OK ){
    *ppRes = pLast;
  }else{
    PQclear(pLast);
  }
  return rc;
}

int fedPgServerCheck(FedServer *pServer, char **pzErr){
  i64 v;
  return fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &v,
                      PG_STORE, pzErr);
}
