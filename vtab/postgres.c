/*
** postgres.c: the PostgreSQL store, over libpq.
**
**   SELECT fed_server('pg', 'postgres', 'host=127.0.0.1 port=5432 dbname=app user=app',
**                     'password_env=APP_PGPASSWORD, connect_timeout=5');
**   CREATE VIRTUAL TABLE users USING postgres(
**       server=pg,                      -- required: a fed_server() name
**       table='public.users',           -- remote table or view (PostgreSQL
**                                       -- identifier rules; default: local name)
**       columns='id bigint primary key, name text',  -- optional: skip discovery
**       batch_size=1000                 -- rows per multi-row INSERT (COPY)
**   );
**
** Sections: connection, deparse (building remote SQL, pure), scan,
** values, writes, transactions, pass-through, catalog.  Values are sent as
** bound parameters, identifiers double-quoted; each pushed condition means
** exactly what SQLite means (docs/postgres.md has the rules).
*/
#include "fedInt.h"
#include <libpq-fe.h>
#include <math.h>
#include <stdlib.h>
#include <poll.h>
#include <assert.h>
#include <pthread.h>
#include <sys/socket.h>

#define PG_STORE "postgres"

/* Conversion kinds of a column (FedColumn.eKind). */
#define PG_INT     1            /* smallint integer bigint oid */
#define PG_BOOL    2            /* boolean, as 0/1 */
#define PG_FLOAT   3            /* real double precision; NaN -> NULL */
#define PG_NUMERIC 4            /* numeric: integer, real or exact text */
#define PG_TEXT    5            /* text varchar name */
#define PG_BPCHAR  6            /* character(n): padded, not pushed */
#define PG_BYTEA   7            /* bytea, as a blob */
#define PG_TSTZ    8            /* timestamptz/timetz: "+00" -> "+00:00" */
#define PG_OTHER   9            /* any other type: its text output */
#define PG_ARRAY   10           /* arrays, as JSON (to_json) */

/* Comparison classes, in SQLite's order: NULL < numbers < text < blob. */
#define CLASS_NULL 0
#define CLASS_NUM  1
#define CLASS_TEXT 2
#define CLASS_BLOB 3

#define PG_STMT_CACHE 64        /* Prepared statements kept per connection */
#define PG_COPY_MIN 100         /* Batches of this many rows go by COPY */
#define PG_DRAIN_BEFORE_CANCEL 256
#define PG_CHUNK (64*1024)      /* Bytes of held rows per allocation */
#define PG_CANCEL_WAIT_MS 80    /* After a cancel request, how long the
                                ** server has to end the command before
                                ** the connection is closed instead */

typedef struct PgConn PgConn;
typedef struct PgCursor PgCursor;
typedef struct PgParams PgParams;
typedef struct PgStmt PgStmt;
typedef struct PgBatch PgBatch;
typedef struct PgChunk PgChunk;

/*
** Bound parameters: values live in one growing buffer (aBuf) and are
** addressed by offset until the command is sent, so that adding a value
** costs no allocation of its own.
*/
struct PgParams {
  int n, nAlloc;
  i64 *aOff;                    /* Offset in aBuf, or -1 for NULL */
  int *aLen;                    /* Length in bytes */
  int *aFmt;                    /* 0 text, 1 binary */
  char *aBuf;
  i64 nBuf, nBufAlloc;
};

struct PgStmt {
  char *zSql;                   /* Statement text (the cache key) */
  int iName;                    /* Prepared as "fed_<iName>", or 0 if only
                                ** seen once so far */
  char zName[16];               /* "fed_<iName>" */
  PgStmt *pNext;
};

/* Rows of INSERT waiting to be sent as one multi-row INSERT. */
struct PgBatch {
  FedTable *pTab;               /* Table the rows are for, or NULL */
  u64 mCol;                     /* Columns present in each row */
  int nCol;                     /* Number of columns in mCol */
  int nRow;
  char *zPrefix;                /* "INSERT INTO t(a,b) VALUES " */
  PgParams params;
  int nCopied;                  /* Rows already streamed into an open COPY
                                ** (0: no COPY open on the connection) */
  char *zCopyErr;               /* The COPY could not start: the error the
                                ** batch reports when it is sent */
  char *aCopy;                  /* Buffer of pgCopyPut() */
  i64 nCopyAlloc;
};

struct PgConn {
  FedConn base;                 /* Base class. Must be first */
  PGconn *pg;
  PgCursor *pActive;            /* Cursor streaming on this connection */
  PgStmt *pStmt;                /* Statement cache, most recent first */
  int nStmt;
  int iStmtSeq;
  PgBatch batch;
  int bBeginPending;            /* BEGIN owed before the next command */
  int bOpen;                    /* BEGIN sent: a remote transaction is open */
  char *zDoom;                  /* Why this transaction cannot commit: rows
                                ** buffered earlier were not inserted */
  char **azNote;                /* NOTIFY fed_cache payloads not yet taken */
  int nNote;
  char *zCopyRel;               /* Relation checked for COPY in this remote
                                ** transaction (zRemote), or NULL */
  int bCopyOk;                  /* COPY into zCopyRel is exactly INSERT */
  PgParams scan;                /* The values of a scan, from its deparse
                                ** to its send (kept: no allocation per
                                ** lookup) */
  i64 nCmdTimeoutMs;            /* command_timeout in ms; 0: none */
  sqlite3_str *pCopyOut;        /* COPY TO STDOUT of a pass-through: its
                                ** rows as JSON objects, one per line, for
                                ** pgQuery() to take (NULL: none) */
  int nCopyOut;                 /* Lines in pCopyOut */
};

/*
** Rows of a scan held while another command uses the connection (a join
** of two tables on one server): compact, in sqlite3_malloc'd chunks that
** SQLite counts and that are freed as the rows are read.  A row is, per
** result column, a 4-byte length (-1 for NULL), then that many bytes and
** a NUL.  A row longer than PG_CHUNK gets a chunk of its own.
*/
struct PgChunk {
  PgChunk *pNext;
  i64 nUsed;                    /* Bytes of a[] holding rows */
  i64 nAlloc;                   /* Size of a[] */
  char a[];
};

struct PgCursor {
  PgConn *pConn;                /* Connection of the current scan */
  PGresult *pRes;               /* Current row(s) */
  int iRow;                     /* Current row within pRes */
  int bEof;
  int bStreaming;               /* Rows still arriving on pConn */
  PgChunk *pHeld, *pHeldLast;   /* Rows held (read from pHeld at iHeld) */
  i64 iHeld;
  i64 nHeldRow;                 /* Rows held and not read yet */
  int nField;                   /* Result columns of a held row */
  int bHeldRow;                 /* The current row is a held one: */
  const char *azVal[FED_MAX_COLUMNS+1];  /* its values (NULL: SQL NULL) */
  int anVal[FED_MAX_COLUMNS+1];
  int aResCol[FED_MAX_COLUMNS]; /* Result column of each table column */
  i64 iRowid;                   /* Row number, for tables without a key */
  i64 iExplain;                 /* fed_explain entry of this scan */
  int bDrainLost;               /* Rows lost to OOM while draining */
  char *zDrainErr;              /* Why the rest of the scan was not held:
                                ** reported after the rows that were */
  char *zSql;                   /* Remote query, for error messages */
};

/**************************************************************************
** Parameters.
*/
static void paramsReset(PgParams *p){
  p->n = 0;
  p->nBuf = 0;
}

static void paramsFree(PgParams *p){
  sqlite3_free(p->aOff);
  sqlite3_free(p->aLen);
  sqlite3_free(p->aFmt);
  sqlite3_free(p->aBuf);
  memset(p, 0, sizeof(*p));
}

/* The bytes of a blob or text value, never NULL (an empty blob gives a
** NULL pointer from sqlite3_value_blob, which would read as SQL NULL). */
static const char *valueBytes(sqlite3_value *p){
  const char *z = (const char*)sqlite3_value_blob(p);
  return z ? z : "";
}

/* Append one parameter (z==0: NULL).  Returns SQLITE_OK or NOMEM. */
static int paramsAdd(PgParams *p, const char *z, int n, int bBinary){
  if( p->n>=p->nAlloc ){
    int nNew = p->nAlloc ? p->nAlloc*2 : 16;
    i64 *aOff = sqlite3_realloc64(p->aOff, sizeof(i64)*nNew);
    int *aLen, *aFmt;
    if( aOff==0 ) return SQLITE_NOMEM;
    p->aOff = aOff;
    aLen = sqlite3_realloc64(p->aLen, sizeof(int)*nNew);
    if( aLen==0 ) return SQLITE_NOMEM;
    p->aLen = aLen;
    aFmt = sqlite3_realloc64(p->aFmt, sizeof(int)*nNew);
    if( aFmt==0 ) return SQLITE_NOMEM;
    p->aFmt = aFmt;
    p->nAlloc = nNew;
  }
  if( z==0 ){
    p->aOff[p->n] = -1;
    p->aLen[p->n] = 0;
  }else{
    if( n<0 ) n = (int)strlen(z);
    if( p->nBuf+n+1>p->nBufAlloc ){
      i64 nNew = p->nBufAlloc ? p->nBufAlloc*2 : 256;
      char *a;
      while( nNew<p->nBuf+n+1 ) nNew *= 2;
      a = sqlite3_realloc64(p->aBuf, nNew);
      if( a==0 ) return SQLITE_NOMEM;
      p->aBuf = a;
      p->nBufAlloc = nNew;
    }
    memcpy(&p->aBuf[p->nBuf], z, n);
    p->aBuf[p->nBuf+n] = 0;
    p->aOff[p->n] = p->nBuf;
    p->aLen[p->n] = n;
    p->nBuf += n+1;
  }
  p->aFmt[p->n] = bBinary;
  p->n++;
  return SQLITE_OK;
}

/* Append an integer as its decimal text (by hand: this is every key of
** every lookup, and a formatted print costs more than the rest). */
static int paramsAddInt(PgParams *p, i64 v){
  char zBuf[24];
  char *z = &zBuf[sizeof(zBuf)];
  u64 u = v<0 ? -(u64)v : (u64)v;
  do{
    *--z = (char)('0' + u%10);
    u /= 10;
  }while( u );
  if( v<0 ) *--z = '-';
  return paramsAdd(p, z, (int)(&zBuf[sizeof(zBuf)] - z), 0);
}

/* The values array libpq wants; sqlite3_malloc'd. */
static const char **paramsValues(PgParams *p){
  const char **az = sqlite3_malloc64(sizeof(char*)*(p->n+1));
  int i;
  if( az==0 ) return 0;
  for(i=0; i<p->n; i++){
    az[i] = p->aOff[i]<0 ? 0 : &p->aBuf[p->aOff[i]];
  }
  return az;
}

/* Bound values as a JSON array for fed_explain (long lists shortened). */
static char *paramsJson(PgParams *p){
  sqlite3_str *s;
  int i;
  if( p->n==0 ) return 0;
  s = sqlite3_str_new(0);
  sqlite3_str_appendchar(s, 1, '[');
  for(i=0; i<p->n; i++){
    if( i ) sqlite3_str_appendchar(s, 1, ',');
    if( i>=20 ){
      sqlite3_str_appendf(s, "\"... %d more\"", p->n - i);
      break;
    }
    if( p->aOff[i]<0 ){
      sqlite3_str_appendall(s, "null");
    }else if( p->aFmt[i] ){
      sqlite3_str_appendf(s, "\"<%d bytes>\"", p->aLen[i]);
    }else{
      fedJsonQuote(s, &p->aBuf[p->aOff[i]], p->aLen[i]);
    }
  }
  sqlite3_str_appendchar(s, 1, ']');
  return sqlite3_str_finish(s);
}

/**************************************************************************
** Connection.
*/
static const char *const azPgServerOpt[] = {
  "password_env", "connect_timeout", "command_timeout", 0
};
static const char *const azPgTableOpt[] = { "table", "batch_size", 0 };

/*
** Why the last bounded wait on a connection ended early (pgResult()): a
** timeout or an interrupt.  libpq's own error text cannot be set, and
** pgSetError() is given the PGconn only, so the reason is kept per thread
** with the PGconn it is about, and pgErrText() takes it (sqlite3_malloc'd).
*/
static __thread PGconn *pWaitPg = 0;
static __thread char *zWaitErr = 0;

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
static void pgSetError(
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

static void batchClear(PgBatch *b){
  sqlite3_free(b->zPrefix);
  b->zPrefix = 0;
  b->pTab = 0;
  b->nRow = 0;
  paramsReset(&b->params);
}

static void cursorDrain(PgCursor *pCsr);

static void pgDisconnect(FedConn *pConn){
  PgConn *p = (PgConn*)pConn;
  if( p==0 ) return;
  if( p->pActive ){
    p->pActive->bStreaming = 0;
    p->pActive->pConn = 0;
  }
  if( p->pg && p->pg==pWaitPg ) pgWaitErrorSet(0, 0);
  if( p->pg ) PQfinish(p->pg);
  stmtCacheFree(p);
  batchClear(&p->batch);
  paramsFree(&p->batch.params);
  sqlite3_free(p->batch.aCopy);
  paramsFree(&p->scan);
  sqlite3_free(p->zDoom);
  while( p->nNote>0 ) sqlite3_free(p->azNote[--p->nNote]);
  sqlite3_free(p->azNote);
  sqlite3_free(p->zCopyRel);
  sqlite3_free(p->batch.zCopyErr);
  sqlite3_free(p);
}

/* Move the notifications libpq has parsed into p->azNote (payloads of
** channel fed_cache; a payload that cannot be kept for lack of memory
** becomes "*", which invalidates every table).  Returns how many. */
static int pgTakeNotes(PgConn *p){
  PGnotify *pN;
  int n = 0;
  while( (pN = PQnotifies(p->pg))!=0 ){
    if( strcmp(pN->relname, "fed_cache")==0 ){
      char **azNew = sqlite3_realloc64(p->azNote, sizeof(char*)*(p->nNote+1));
      if( azNew ){
        p->azNote = azNew;
        p->azNote[p->nNote] = fedStrdup(pN->extra, -1);
        if( p->azNote[p->nNote] ) p->nNote++;
      }
    }
    PQfreemem(pN);
    n++;
  }
  return n;
}

static int pgIsAlive(FedConn *pConn){
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
     && PQstatus(p->pg)==CONNECTION_OK && pgTakeNotes(p)>0 ){
      fd.revents = 0;
      return poll(&fd, 1, 0)==0;
    }
    return 0;
  }
  return 1;
}

/* Run a command that returns no rows, with fed_explain bookkeeping. */
static int pgExecSimple(PgConn *p, const char *zSql, char **pzErr);

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
static void pgCancelAsync(PgConn *p){
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
** interruptible as pgResult().  SQLITE_OK when it is all sent (or libpq
** gave up on the socket: the read that follows reports it); else the
** socket is closed (a command cut half way cannot be cancelled) and the
** reason kept for pgErrText().
*/
static int pgPush(PgConn *p){
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
static PGresult *pgResult(PgConn *p){
  i64 iTimeout = p->nCmdTimeoutMs;
  i64 iDeadline = iTimeout>0 ? fedNowMs()+iTimeout : 0;
  const char *zServer = p->base.pServer->zName;
  /* A reason kept from an earlier command that nobody reported is stale. */
  if( pWaitPg==p->pg && PQisBusy(p->pg) ) pgWaitErrorSet(0, 0);
  if( PQstatus(p->pg)==CONNECTION_OK && pgPush(p)!=SQLITE_OK ){
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
      pgCancelAsync(p);
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
** bounded as pgResult(): the last result, the first error, or the COPY
** state the command entered. */
static PGresult *pgCollect(PgConn *p, int bSent){
  PGresult *pRes, *pLast = 0;
  if( !bSent ) return PQmakeEmptyPGresult(p->pg, PGRES_FATAL_ERROR);
  while( (pRes = pgResult(p))!=0 ){
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
#define pgExecWait(p, zSql) pgCollect(p, PQsendQuery((p)->pg, zSql))

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

static int pgConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
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
    pgDisconnect(&p->base);
    return rc;
  }
  if( PQstatus(p->pg)!=CONNECTION_OK ){
    char *z = pgErrText(p->pg, 0);
    fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s", PG_STORE,
                pServer->zName, z ? z : "");
    sqlite3_free(z);
    pgDisconnect(&p->base);
    return SQLITE_ERROR;
  }
  PQsetNoticeProcessor(p->pg, pgNoticeIgnore, 0);
  /* Commands are queued and pushed out by pgPush(), never blocking. */
  if( PQsetnonblocking(p->pg, 1) ){
    pgSetError(pzErr, p->pg, 0, 0);
    pgDisconnect(&p->base);
    return SQLITE_ERROR;
  }
  /* Fixed output formats, so that values convert the same everywhere. */
  rc = pgExecSimple(p, "SET datestyle = 'ISO, YMD'; SET timezone = 'UTC';"
                    " SET intervalstyle = 'iso_8601';"
                    " SET extra_float_digits = 1; SET bytea_output = 'hex'",
                    pzErr);
  if( rc!=SQLITE_OK ){
    pgDisconnect(&p->base);
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
static void pgConnIdle(PgConn *p){
  if( p->pActive ) cursorDrain(p->pActive);
}

static FedContext *pgCtx(PgConn *p){
  return p->base.pServer->pCtx;
}

/* Run a command that returns no rows, as it is (no owed BEGIN first). */
static int pgExecRaw(PgConn *p, const char *zSql, char **pzErr){
  PGresult *pRes;
  i64 iSeq;
  int rc = SQLITE_OK;
  pgConnIdle(p);
  if( fedFault(FED_FAULT_SEND, pzErr) ) return SQLITE_ERROR;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, 0);
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK
   && PQresultStatus(pRes)!=PGRES_TUPLES_OK ){
    pgSetError(pzErr, p->pg, pRes, zSql);
    rc = SQLITE_ERROR;
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  return rc;
}

/*
** Make the connection ready for the next command of the transaction: the
** streaming scan read aside, an earlier lost batch reported, an owed
** BEGIN sent.
*/
static int pgFlushBatch(PgConn *p, char **pzErr);

/* After an error inside a transaction PostgreSQL refuses everything but
** ROLLBACK ("current transaction is aborted").  Say so plainly instead,
** and keep COMMIT from pretending: SQLite's transaction stays open until
** the user rolls it back.  (ROLLBACK TO a savepoint taken earlier makes
** the remote transaction usable again, so this is asked each time.) */
static int pgAborted(PgConn *p, char **pzErr){
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

static int pgReady(PgConn *p, char **pzErr){
  int rc = SQLITE_OK;
  /* Rows streaming into a COPY: end it first (the batch is sent). */
  if( p->batch.nCopied>0 || p->batch.zCopyErr ){
    rc = pgFlushBatch(p, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  pgConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( pgAborted(p, pzErr) ) return SQLITE_ERROR;
  if( p->bBeginPending ){
    p->bBeginPending = 0;
    rc = pgExecRaw(p, "BEGIN", pzErr);
    if( rc==SQLITE_OK ) p->bOpen = 1;
  }
  return rc;
}

static int pgExecSimple(PgConn *p, const char *zSql, char **pzErr){
  int rc = pgReady(p, pzErr);
  return rc==SQLITE_OK ? pgExecRaw(p, zSql, pzErr) : rc;
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
static int pgSend(
  PgConn *p, const char *zSql, PgParams *pParams, i64 *piSeq, char **pzErr
){
  const char **azVal = 0;
  const char *azOne[8];
  PgStmt *pS;
  int ok;
  int nParam = pParams ? pParams->n : 0;
  if( nParam>(int)(sizeof(azOne)/sizeof(azOne[0])) ){
    azVal = paramsValues(pParams);
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
    pRes = pgCollect(p, PQsendPrepare(p->pg, pS->zName, zSql, nParam, 0));
    if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
      pgSetError(pzErr, p->pg, pRes, zSql);
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
    pgSetError(pzErr, p->pg, 0, zSql);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** The command of a pass-through entered COPY TO STDOUT: read its lines
** into p->pCopyOut as rows {"line": "<the line, without its newline>"},
** bounded as pgResult().  The COPY's own result follows, from pgResult().
*/
static int pgCopyOutRead(PgConn *p, const char *zSql, char **pzErr){
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
      pgCancelAsync(p);
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
static int pgExec(
  PgConn *p, const char *zSql, PgParams *pParams, PGresult **ppRes,
  char **pzErr
){
  PGresult *pRes, *pLast = 0;
  i64 iSeq, nRow = 0;
  int rc = pgReady(p, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  rc = pgSend(p, zSql, pParams, &iSeq, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  while( (pRes = pgResult(p))!=0 ){
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
      int rc2 = pgCopyOutRead(p, zSql, rc==SQLITE_OK ? pzErr : 0);
      if( rc==SQLITE_OK ) rc = rc2;
      PQclear(pRes);
      continue;
    }
    if( e!=PGRES_COMMAND_OK && e!=PGRES_TUPLES_OK && rc==SQLITE_OK ){
      pgSetError(pzErr, p->pg, pRes, zSql);
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
    pgSetError(pzErr, p->pg, 0, zSql);
    rc = SQLITE_ERROR;
  }
  if( ppRes && rc==SQLITE_OK ){
    *ppRes = pLast;
  }else{
    PQclear(pLast);
  }
  return rc;
}

/**************************************************************************
** Columns and kinds.
*/
static int startsWith(const char *z, const char *zPrefix){
  return sqlite3_strnicmp(z, zPrefix, (int)strlen(zPrefix))==0;
}

static int pgKindOf(const char *zType){
  int n = (int)strlen(zType);
  if( n>=2 && zType[n-1]==']' ) return PG_ARRAY;
  if( sqlite3_stricmp(zType, "smallint")==0 || sqlite3_stricmp(zType, "integer")==0
   || sqlite3_stricmp(zType, "bigint")==0 || sqlite3_stricmp(zType, "int")==0
   || sqlite3_stricmp(zType, "int2")==0 || sqlite3_stricmp(zType, "int4")==0
   || sqlite3_stricmp(zType, "int8")==0 || sqlite3_stricmp(zType, "oid")==0
   || sqlite3_stricmp(zType, "serial")==0 || sqlite3_stricmp(zType, "bigserial")==0
   || sqlite3_stricmp(zType, "smallserial")==0 ){
    return PG_INT;
  }
  if( sqlite3_stricmp(zType, "boolean")==0 || sqlite3_stricmp(zType, "bool")==0 ){
    return PG_BOOL;
  }
  if( sqlite3_stricmp(zType, "real")==0 || sqlite3_stricmp(zType, "float4")==0
   || sqlite3_stricmp(zType, "float8")==0 || startsWith(zType, "double precision")
   || startsWith(zType, "float") ){
    return PG_FLOAT;
  }
  if( startsWith(zType, "numeric") || startsWith(zType, "decimal") ){
    return PG_NUMERIC;
  }
  if( sqlite3_stricmp(zType, "text")==0 || startsWith(zType, "character varying")
   || startsWith(zType, "varchar") || sqlite3_stricmp(zType, "name")==0 ){
    return PG_TEXT;
  }
  if( startsWith(zType, "character") || startsWith(zType, "char")
   || sqlite3_stricmp(zType, "bpchar")==0 ){
    return PG_BPCHAR;
  }
  if( sqlite3_stricmp(zType, "bytea")==0 ) return PG_BYTEA;
  if( (startsWith(zType, "time") && strstr(zType, "with time zone"))
   || sqlite3_stricmp(zType, "timestamptz")==0
   || sqlite3_stricmp(zType, "timetz")==0 ){
    return PG_TSTZ;
  }
  return PG_OTHER;
}

static int pgServerCheck(FedServer *pServer, char **pzErr){
  i64 v;
  return fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &v,
                      PG_STORE, pzErr);
}

/* Skip a double-quoted identifier at z[*pi] ("" inside); 0 if malformed. */
static int pgSkipQuoted(const char *z, int *pi){
  int i = *pi;
  if( z[i]!='"' ) return 0;
  for(i++; z[i]; i++){
    if( z[i]=='"' ){
      if( z[i+1]!='"' ){ *pi = i+1; return 1; }
      i++;
    }
  }
  return 0;
}

/* True if z is a remote name as pgDescribe() records it in fed_tables:
** "table" or "schema"."table", quoted.  The record is read back from the
** file, and the name is pasted into every remote command. */
static int pgRemoteValid(const char *z){
  int i = 0, nPart = 0;
  while( 1 ){
    if( !pgSkipQuoted(z, &i) ) return 0;
    nPart++;
    if( z[i]==0 ) return 1;
    if( z[i]!='.' || nPart>=2 ) return 0;
    i++;
  }
}

/* True if z is a type name as format_type() writes it, or as a user
** writes one in columns=: words, quoted names, dots, (n[,n]) and [] (and
** nothing else: the type is pasted into remote SQL as a cast). */
static int pgTypeValid(const char *z){
  int i = 0, bWord = 0;
  while( z[i] ){
    char c = z[i];
    if( (c>='a' && c<='z') || (c>='A' && c<='Z') || c=='_' ){
      while( (z[i]>='a' && z[i]<='z') || (z[i]>='A' && z[i]<='Z')
          || (z[i]>='0' && z[i]<='9') || z[i]=='_' || z[i]=='$' ) i++;
      bWord = 1;
    }else if( c=='"' ){
      if( !pgSkipQuoted(z, &i) ) return 0;
      bWord = 1;
    }else if( c==' ' || c=='.' ){
      i++;
    }else if( c=='(' && bWord ){
      i++;
      do{
        if( z[i]==',' ) i++;
        while( z[i]==' ' ) i++;
        if( z[i]<'0' || z[i]>'9' ) return 0;
        while( z[i]>='0' && z[i]<='9' ) i++;
        while( z[i]==' ' ) i++;
      }while( z[i]==',' );
      if( z[i]!=')' ) return 0;
      i++;
    }else if( c=='[' && bWord ){
      for(i++; z[i]>='0' && z[i]<='9'; i++){}
      if( z[i]!=']' ) return 0;
      i++;
    }else{
      return 0;
    }
  }
  return bWord;
}

static int pgColumns(FedTable *pTab, char **pzErr){
  int i;
  i64 v;
  pTab->iPk = -1;
  /* The remote name and the types come from the file (fed_tables, or
  ** columns= in sqlite_schema): held to what CREATE could have written. */
  if( pTab->zRemote && !pgRemoteValid(pTab->zRemote) ){
    fedSetError(pzErr, "%s: table \"%s\": malformed remote name in"
        " fed_tables (expected \"schema\".\"table\"); drop the table and"
        " create it again", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  for(i=0; i<pTab->nCol; i++){
    if( !pgTypeValid(pTab->aCol[i].zType) ){
      fedSetError(pzErr, "%s: table \"%s\": column \"%s\" has a malformed"
          " type '%s' (expected a type name such as integer, varchar(20),"
          " numeric(10,2) or text[])", PG_STORE, pTab->zName,
          pTab->aCol[i].zName, pTab->aCol[i].zType);
      return SQLITE_ERROR;
    }
  }
  if( fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 100000, &v, PG_STORE,
                   pzErr) ){
    return SQLITE_ERROR;
  }
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pCol->eKind = pgKindOf(pCol->zType);
    switch( pCol->eKind ){
      case PG_INT: case PG_BOOL: pCol->zAffinity = "INTEGER"; break;
      case PG_FLOAT:             pCol->zAffinity = "REAL"; break;
      case PG_NUMERIC:           pCol->zAffinity = "NUMERIC"; break;
      case PG_BYTEA:             pCol->zAffinity = "BLOB"; break;
      default:                   pCol->zAffinity = "TEXT"; break;
    }
  }
  for(i=0; i<pTab->nCol; i++){
    if( pTab->aCol[i].bPk ){
      if( pTab->iPk>=0 ){ pTab->iPk = -1; break; }   /* Composite key */
      pTab->iPk = i;
    }
  }
  return SQLITE_OK;
}

/* Append a double-quoted identifier. */
static void pgQuoteIdent(sqlite3_str *s, const char *z, int n){
  int i;
  if( n<0 ) n = (int)strlen(z);
  sqlite3_str_appendchar(s, 1, '"');
  for(i=0; i<n; i++){
    if( z[i]=='"' ) sqlite3_str_appendchar(s, 1, '"');
    sqlite3_str_appendchar(s, 1, z[i]);
  }
  sqlite3_str_appendchar(s, 1, '"');
}

/*
** Parse a PostgreSQL qualified name ("schema"."table", schema.table, or
** table): unquoted parts fold to lower case, quoted ones keep their case.
** Writes the quoted form into s.  Returns 1 if malformed, 2 if out of
** memory, else 0.
*/
static int pgQualifiedName(sqlite3_str *s, const char *z){
  int nPart = 0;
  while( *z ){
    sqlite3_str *pPart = sqlite3_str_new(0);
    char *zPart;
    int nByte;
    while( *z==' ' ) z++;
    if( *z=='"' ){
      z++;
      while( *z ){
        if( *z=='"' ){
          if( z[1]=='"' ){ sqlite3_str_appendchar(pPart, 1, '"'); z += 2; continue; }
          break;
        }
        sqlite3_str_appendchar(pPart, 1, *z++);
      }
      if( *z!='"' ){ sqlite3_free(sqlite3_str_finish(pPart)); return 1; }
      z++;
    }else{
      while( *z && *z!='.' && *z!=' ' ){
        char c = *z++;
        if( c>='A' && c<='Z' ) c += 'a'-'A';
        sqlite3_str_appendchar(pPart, 1, c);
      }
    }
    nByte = sqlite3_str_length(pPart);
    if( sqlite3_str_errcode(pPart) ){
      sqlite3_free(sqlite3_str_finish(pPart));
      return 2;
    }
    zPart = sqlite3_str_finish(pPart);
    if( nByte==0 ){ sqlite3_free(zPart); return 1; }
    if( nPart++ ) sqlite3_str_appendchar(s, 1, '.');
    pgQuoteIdent(s, zPart, nByte);
    sqlite3_free(zPart);
    while( *z==' ' ) z++;
    if( *z=='.' ){
      z++;
      if( *z==0 ) return 1;
    }else if( *z ){
      return 1;
    }
  }
  return nPart==0 || nPart>2;
}

/* The table= option (or the local name) as a quoted qualified name. */
static int pgRemoteName(FedTable *pTab, char **pzOut, char **pzErr){
  const char *zTable = fedConfigGet(pTab->pCfg, "table");
  sqlite3_str *s = sqlite3_str_new(0);
  int bad;
  if( zTable==0 ){
    pgQuoteIdent(s, pTab->zName, -1);
    bad = 0;
  }else{
    bad = pgQualifiedName(s, zTable);
  }
  if( bad==0 && sqlite3_str_errcode(s) ) bad = 2;
  *pzOut = sqlite3_str_finish(s);
  if( bad==2 ){
    sqlite3_free(*pzOut);
    *pzOut = 0;
    return SQLITE_NOMEM;
  }
  if( bad ){
    fedSetError(pzErr, "%s: malformed table name '%s' (expected table or"
                " schema.table, with \"quotes\" where needed)", PG_STORE,
                zTable);
    sqlite3_free(*pzOut);
    *pzOut = 0;
    return SQLITE_ERROR;
  }
  return *pzOut ? SQLITE_OK : SQLITE_NOMEM;
}

static int pgDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  static const char *zCatalog =
    "SELECT n.nspname, c.relname, a.attname,"
    " format_type(CASE WHEN t.typtype='d' THEN t.typbasetype ELSE a.atttypid END,"
    "   CASE WHEN t.typtype='d' THEN t.typtypmod ELSE a.atttypmod END),"
    " a.attnotnull OR coalesce(t.typtype='d' AND t.typnotnull, false),"
    " a.atthasdef OR a.attidentity<>'' OR a.attgenerated<>'',"
    " EXISTS(SELECT 1 FROM pg_index i WHERE i.indrelid=c.oid AND i.indisprimary"
    "   AND i.indnatts=1 AND i.indkey[0]=a.attnum)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid=c.relnamespace"
    " LEFT JOIN pg_attribute a ON a.attrelid=c.oid AND a.attnum>0"
    "   AND NOT a.attisdropped"
    " LEFT JOIN pg_type t ON t.oid=a.atttypid"
    " WHERE c.oid = to_regclass($1) ORDER BY a.attnum";
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes = 0;
  PgParams params;
  char *zRemote = 0;
  int rc, i, nRow;
  sqlite3_str *s;

  rc = pgRemoteName(pTab, &zRemote, pzErr);
  if( rc!=SQLITE_OK || p==0 ){
    /* No network: columns were given; trust the name as written. */
    sqlite3_free(pTab->zRemote);
    pTab->zRemote = zRemote;
    return rc;
  }
  memset(&params, 0, sizeof(params));
  rc = paramsAdd(&params, zRemote, -1, 0);
  if( rc==SQLITE_OK ) rc = pgExec(p, zCatalog, &params, &pRes, pzErr);
  paramsFree(&params);
  if( rc!=SQLITE_OK ) goto cleanup;
  nRow = PQntuples(pRes);
  if( nRow==0 ){
    fedSetError(pzErr, "%s: relation %s does not exist on server \"%s\"",
                PG_STORE, zRemote, p->base.pServer->zName);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( PQgetisnull(pRes, 0, 2) ){
    fedSetError(pzErr, "%s: relation %s has no columns", PG_STORE, zRemote);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( nRow>FED_MAX_COLUMNS ){
    fedSetError(pzErr, "%s: relation %s has %d columns; at most %d are"
        " supported (name the ones you need with columns=)", PG_STORE,
        zRemote, nRow, FED_MAX_COLUMNS);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  s = sqlite3_str_new(0);
  pgQuoteIdent(s, PQgetvalue(pRes, 0, 0), -1);
  sqlite3_str_appendchar(s, 1, '.');
  pgQuoteIdent(s, PQgetvalue(pRes, 0, 1), -1);
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = sqlite3_str_finish(s);
  if( pTab->zRemote==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*nRow);
  if( pTab->aCol==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
  memset(pTab->aCol, 0, sizeof(FedColumn)*nRow);
  for(i=0; i<nRow; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pTab->nCol++;
    pCol->zName = fedStrdup(PQgetvalue(pRes, i, 2), -1);
    pCol->zType = fedStrdup(PQgetvalue(pRes, i, 3), -1);
    if( pCol->zName==0 || pCol->zType==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    pCol->bNotNull = PQgetvalue(pRes, i, 4)[0]=='t';
    pCol->bDefault = PQgetvalue(pRes, i, 5)[0]=='t';
    pCol->bPk = PQgetvalue(pRes, i, 6)[0]=='t';
  }

cleanup:
  PQclear(pRes);
  sqlite3_free(zRemote);
  return rc;
}

/**************************************************************************
** Deparse: what may run remotely, and the text of it.
*/

/* The comparison class of a kind, or -1 if comparisons are not pushed. */
static int kindClass(int eKind){
  switch( eKind ){
    case PG_INT: case PG_BOOL: case PG_FLOAT: return CLASS_NUM;
    case PG_TEXT: case PG_TSTZ: case PG_OTHER: case PG_ARRAY: return CLASS_TEXT;
    case PG_BYTEA: return CLASS_BLOB;
  }
  return -1;
}

/*
** Append the expression whose order and equality, in PostgreSQL, are
** exactly those SQLite applies to the value federate returns for the
** column.  bText: the text form, for LIKE and GLOB.
*/
static void pgColumnExpr(sqlite3_str *s, const FedColumn *pCol, int bText){
  switch( pCol->eKind ){
    case PG_INT:
      pgQuoteIdent(s, pCol->zName, -1);
      if( bText ) sqlite3_str_appendall(s, "::text COLLATE \"C\"");
      break;
    case PG_BOOL:
      pgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, bText ? "::int::text COLLATE \"C\"" : "::int");
      break;
    case PG_FLOAT:
      sqlite3_str_appendall(s, "NULLIF(");
      pgQuoteIdent(s, pCol->zName, -1);
      if( pCol->zType && (sqlite3_stricmp(pCol->zType, "real")==0
                       || sqlite3_stricmp(pCol->zType, "float4")==0) ){
        /* SQLite gets the double of real's shortest text (0.1), not the
        ** float4 widened (0.100000001490116): compare that one. */
        sqlite3_str_appendall(s, "::text::float8");
      }
      sqlite3_str_appendall(s, ", 'NaN')");
      break;
    case PG_TEXT:
      pgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, " COLLATE \"C\"");
      break;
    case PG_TSTZ:
      sqlite3_str_appendall(s, "regexp_replace(");
      pgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, "::text, '\\+00$', '+00:00') COLLATE \"C\"");
      break;
    case PG_ARRAY:
      sqlite3_str_appendall(s, "to_json(");
      pgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, ")::text COLLATE \"C\"");
      break;
    case PG_OTHER:
      pgQuoteIdent(s, pCol->zName, -1);
      sqlite3_str_appendall(s, "::text COLLATE \"C\"");
      break;
    default:
      pgQuoteIdent(s, pCol->zName, -1);
      break;
  }
}

static int pgPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  const FedColumn *pCol = &pTab->aCol[iCol];
  int eClass = kindClass(pCol->eKind);
  if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ){
    /* NaN reads as NULL, so IS NULL on floats is pushed as NULLIF(..). */
    return FED_PUSH_EXACT;
  }
  if( op==FED_OP_LIKE || op==FED_OP_GLOB ){
    switch( pCol->eKind ){
      case PG_INT: case PG_BOOL: case PG_TEXT: case PG_TSTZ: case PG_OTHER:
      case PG_ARRAY:
        /* The regex is exactly SQLite's built-in LIKE, but PRAGMA
        ** case_sensitive_like can make LIKE stricter, unseen from here:
        ** SQLite re-checks LIKE.  GLOB cannot change. */
        return op==FED_OP_LIKE ? FED_PUSH_LOOSE : FED_PUSH_EXACT;
    }
    return FED_PUSH_NO;
  }
  if( eClass<0 ) return FED_PUSH_NO;
  if( eClass==CLASS_TEXT ){
    /* "Type conversions prior to comparison": a number compared with a
    ** TEXT column becomes text when it has no affinity (a literal 10), but
    ** if it has INTEGER or REAL affinity (CAST(10 AS INTEGER), a column of
    ** another table) the column's text becomes a number where it looks
    ** like one ('010' = 10).  Both arrive here as the integer 10, so a
    ** number is SQLite's to compare.  A text value is compared as text
    ** either way, except that an operand of numeric affinity turns the
    ** numeric-looking column values into numbers: only equality keeps a
    ** superset then (a number never equals text); see pgDeparseTerm(). */
    if( pRhs==0 ) return FED_PUSH_LOOSE;
    if( sqlite3_value_type(pRhs)==SQLITE_INTEGER
     || sqlite3_value_type(pRhs)==SQLITE_FLOAT ){
      return FED_PUSH_NO;
    }
    if( sqlite3_value_type(pRhs)==SQLITE_TEXT ){
      /* A text parameter ends at a NUL; SQLite compares every byte. */
      const char *z = (const char*)sqlite3_value_text(pRhs);
      if( z && memchr(z, 0, sqlite3_value_bytes(pRhs)) ) return FED_PUSH_NO;
    }
  }
  return FED_PUSH_EXACT;
}

static int pgOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)bDesc;
  return kindClass(pTab->aCol[iCol].eKind)>=0;
}

/* The class of a constraint value, after the column's affinity. */
static int valueClass(sqlite3_value *pVal, int eColClass, sqlite3_value **ppConv){
  int eType = sqlite3_value_type(pVal);
  *ppConv = 0;
  if( eType==SQLITE_TEXT && eColClass==CLASS_NUM ){
    /* Numeric affinity: text that looks like a number becomes one. */
    sqlite3_value *pDup = sqlite3_value_dup(pVal);
    if( pDup ){
      eType = sqlite3_value_numeric_type(pDup);
      if( eType!=SQLITE_TEXT ){
        *ppConv = pDup;
      }else{
        sqlite3_value_free(pDup);
      }
    }
  }
  switch( eType ){
    case SQLITE_NULL: return CLASS_NULL;
    case SQLITE_INTEGER: case SQLITE_FLOAT: return CLASS_NUM;
    case SQLITE_TEXT: return CLASS_TEXT;
  }
  return CLASS_BLOB;
}

/* Append "TRUE" or "FALSE" or "<expr> IS NOT NULL" for a comparison whose
** outcome follows from the classes alone. */
static void pgConstCondition(
  sqlite3_str *s, const FedColumn *pCol, int op, int eColClass, int eValClass
){
  int bTrue;
  if( eValClass==CLASS_NULL ){
    bTrue = 0;
  }else switch( op ){
    case FED_OP_EQ: case FED_OP_IS: bTrue = 0; break;
    case FED_OP_NE: bTrue = 1; break;
    case FED_OP_ISNOT: sqlite3_str_appendall(s, "TRUE"); return;
    case FED_OP_LT: case FED_OP_LE: bTrue = eColClass<eValClass; break;
    default: bTrue = eColClass>eValClass; break;
  }
  if( bTrue ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, " IS NOT NULL");
  }else{
    sqlite3_str_appendall(s, "FALSE");
  }
}

static const char *pgOpText(int op){
  switch( op ){
    case FED_OP_EQ: return "=";
    case FED_OP_GT: return ">";
    case FED_OP_LE: return "<=";
    case FED_OP_LT: return "<";
    case FED_OP_GE: return ">=";
    case FED_OP_NE: return "<>";
    case FED_OP_IS: return "IS NOT DISTINCT FROM";
    case FED_OP_ISNOT: return "IS DISTINCT FROM";
  }
  return "=";
}

/* True if the integer v is exactly a double. */
static int pgIntIsDouble(i64 v){
  double r = (double)v;
  if( r>=9223372036854775808.0 || r<-9223372036854775808.0 ) return 0;
  return (i64)r==v;
}

/* The range of the values PostgreSQL holds in an integer column (as
** pgColumnExpr() reads it): a constant outside it would make PostgreSQL
** fail ("out of range for type integer") where SQLite simply compares. */
static void pgIntRange(const FedColumn *pCol, i64 *pMin, i64 *pMax){
  const char *z = pCol->zType ? pCol->zType : "";
  if( pCol->eKind==PG_BOOL ){
    *pMin = 0; *pMax = 1;
  }else if( sqlite3_stricmp(z, "smallint")==0 || sqlite3_stricmp(z, "int2")==0
         || sqlite3_stricmp(z, "smallserial")==0 ){
    *pMin = -32768; *pMax = 32767;
  }else if( sqlite3_stricmp(z, "integer")==0 || sqlite3_stricmp(z, "int")==0
         || sqlite3_stricmp(z, "int4")==0 || sqlite3_stricmp(z, "serial")==0 ){
    *pMin = -2147483647-1; *pMax = 2147483647;
  }else if( sqlite3_stricmp(z, "oid")==0 ){
    *pMin = 0; *pMax = 4294967295LL;
  }else{
    *pMin = -9223372036854775807LL-1; *pMax = 9223372036854775807LL;
  }
}

/* "col <op> v" where v lies beyond every value of column pCol (above
** them all if bAbove, else below): the answer follows from that side
** alone.  Append TRUE, FALSE or "<col> IS NOT NULL".  IS NOT is one word,
** TRUE (NULL IS NOT v holds too), never "x OR TRUE": the terms are joined
** with AND unparenthesised. */
static void pgBeyondRange(sqlite3_str *s, const FedColumn *pCol, int op,
                          int bAbove){
  int bTrue;
  switch( op ){
    case FED_OP_LT: case FED_OP_LE: bTrue = bAbove; break;
    case FED_OP_GT: case FED_OP_GE: bTrue = !bAbove; break;
    case FED_OP_NE: case FED_OP_ISNOT: bTrue = 1; break;
    default: bTrue = 0; break;
  }
  if( op==FED_OP_ISNOT ){
    sqlite3_str_appendall(s, "TRUE");
  }else if( bTrue ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, " IS NOT NULL");
  }else{
    sqlite3_str_appendall(s, "FALSE");
  }
}

/* If the integer v lies outside the range of integer column pCol, the
** comparison "col <op> v" follows from the side v lies on: append it
** (pgBeyondRange) and return 1.  Else return 0. */
static int pgIntOutside(sqlite3_str *s, const FedColumn *pCol, int op, i64 v){
  i64 mn, mx;
  pgIntRange(pCol, &mn, &mx);
  if( v>=mn && v<=mx ) return 0;
  pgBeyondRange(s, pCol, op, v>mx);
  return 1;
}

/* Append the value of a number-class comparison as a parameter.  For an
** integer column and a real value, rewrite to an exact integer comparison
** (x < 1.5 is x <= 1), since PostgreSQL would compare in floating point.
** Returns 0 if the condition was fully written, else the op to use. */
static int pgNumParam(
  sqlite3_str *s, PgParams *pParams, const FedColumn *pCol, int op,
  sqlite3_value *pVal, int *pRc
){
  char zBuf[64];
  if( sqlite3_value_type(pVal)==SQLITE_INTEGER ){
    i64 v = sqlite3_value_int64(pVal);
    if( pCol->eKind==PG_FLOAT && !pgIntIsDouble(v) ){
      /* No double equals v: compare with the doubles either side of it,
      ** exactly, where PostgreSQL would round v first. */
      double r = (double)v, lo, hi;
      int bAbove = r>=9223372036854775808.0 || (i64)r>v;
      lo = bAbove ? nextafter(r, -HUGE_VAL) : r;
      hi = bAbove ? r : nextafter(r, HUGE_VAL);
      switch( op ){
        case FED_OP_LT: case FED_OP_LE:
          fedDoubleText(lo, zBuf, sizeof(zBuf));
          *pRc = paramsAdd(pParams, zBuf, -1, 0);
          return FED_OP_LE;
        case FED_OP_GT: case FED_OP_GE:
          fedDoubleText(hi, zBuf, sizeof(zBuf));
          *pRc = paramsAdd(pParams, zBuf, -1, 0);
          return FED_OP_GE;
        case FED_OP_NE:
          pgColumnExpr(s, pCol, 0);
          sqlite3_str_appendall(s, " IS NOT NULL");
          return 0;
        default:
          sqlite3_str_appendall(s, op==FED_OP_ISNOT ? "TRUE" : "FALSE");
          return 0;
      }
    }
    if( pCol->eKind!=PG_FLOAT && pgIntOutside(s, pCol, op, v) ) return 0;
    *pRc = paramsAddInt(pParams, v);
    return op;
  }
  if( pCol->eKind==PG_FLOAT ){
    fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
    *pRc = paramsAdd(pParams, zBuf, -1, 0);
    return op;
  }else{
    double r = sqlite3_value_double(pVal);
    double f = floor(r), c = ceil(r);
    int bIntegral = (f==r);
    if( r>=9223372036854775807.0 || r<-9223372036854775808.0 ){
      /* Beyond every integer: decided by the sign alone. */
      pgBeyondRange(s, pCol, op, r>0);
      return 0;
    }
    switch( op ){
      case FED_OP_LT: case FED_OP_GE:
        if( pgIntOutside(s, pCol, op, (i64)c) ) return 0;
        *pRc = paramsAddInt(pParams, (i64)c);
        return op;
      case FED_OP_LE: case FED_OP_GT:
        if( pgIntOutside(s, pCol, op, (i64)f) ) return 0;
        *pRc = paramsAddInt(pParams, (i64)f);
        return op;
      default:
        if( bIntegral ){
          if( pgIntOutside(s, pCol, op, (i64)r) ) return 0;
          *pRc = paramsAddInt(pParams, (i64)r);
          return op;
        }
        /* = or IS a non-integral real: never; <> or IS NOT: always. */
        if( op==FED_OP_NE ){
          pgColumnExpr(s, pCol, 0);
          sqlite3_str_appendall(s, " IS NOT NULL");
        }else{
          sqlite3_str_appendall(s, op==FED_OP_ISNOT ? "TRUE" : "FALSE");
        }
        return 0;
    }
  }
}

/* Read one UTF-8 character at *pz (advancing it); returns its code point. */
static unsigned pgUtf8Read(const unsigned char **pz){
  const unsigned char *z = *pz;
  unsigned c = *z++;
  if( c>=0xc0 ){
    int nMore = c>=0xf0 ? 3 : (c>=0xe0 ? 2 : 1);
    c &= (0x3f >> nMore);
    while( nMore-- && (*z & 0xc0)==0x80 ) c = (c<<6) | (*z++ & 0x3f);
  }
  *pz = z;
  return c;
}

/* Append code point c as a regular-expression escape (\uXXXX). */
static void pgRegexChar(sqlite3_str *s, unsigned c){
  if( (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9') ){
    sqlite3_str_appendchar(s, 1, (char)c);
  }else if( c<0x10000 ){
    sqlite3_str_appendf(s, "\\u%04x", c);
  }else{
    sqlite3_str_appendf(s, "\\U%08x", c);
  }
}

/*
** Translate a GLOB set starting at *pp (on the '[') the way SQLite reads
** it: "^" first inverts; "]" first is a literal; "a-z" is a range when a
** single character precedes the "-" and something other than "]" follows
** (a range resets that, so "a-c-e" is a-c, "-", "e"); a reversed range
** matches nothing.  Returns non-zero if the set is not terminated.
*/
static int pgGlobSet(sqlite3_str *s, const unsigned char **pp){
  const unsigned char *z = *pp + 1;
  unsigned *aLo, *aHi;            /* Members: ranges lo..hi */
  int n = 0, i;
  int bInvert = 0;
  int bPrior = 0;                 /* aLo[n-1] may start a range */
  aLo = sqlite3_malloc64(sizeof(unsigned)*2*(strlen((const char*)z)+1));
  if( aLo==0 ){
    *pp = z + strlen((const char*)z);
    return 1;
  }
  aHi = &aLo[strlen((const char*)z)+1];
  if( *z=='^' ){ bInvert = 1; z++; }
  if( *z==']' ){ aLo[n] = aHi[n] = ']'; n++; z++; }
  while( *z && *z!=']' ){
    unsigned c = pgUtf8Read(&z);
    if( c=='-' && *z!=']' && *z!=0 && bPrior ){
      unsigned hi = pgUtf8Read(&z);
      if( aLo[n-1]<=hi ){
        aHi[n-1] = hi;
      }
      /* A reversed range still matched its first character. */
      bPrior = 0;
    }else{
      aLo[n] = aHi[n] = c;
      n++;
      bPrior = 1;
    }
  }
  if( *z==0 ){
    sqlite3_free(aLo);
    return 1;
  }
  sqlite3_str_appendall(s, bInvert ? "[^" : "[");
  for(i=0; i<n; i++){
    pgRegexChar(s, aLo[i]);
    if( aHi[i]!=aLo[i] ){
      sqlite3_str_appendchar(s, 1, '-');
      pgRegexChar(s, aHi[i]);
    }
  }
  sqlite3_str_appendchar(s, 1, ']');
  sqlite3_free(aLo);
  *pp = z+1;
  return 0;
}

/* Append a LIKE (case-insensitive for ASCII, % and _) or GLOB (*, ?, [..])
** pattern translated to an anchored PostgreSQL regular expression. */
static void pgPatternRegex(sqlite3_str *s, const char *z, int bGlob){
  const unsigned char *p = (const unsigned char*)z;
  sqlite3_str_appendchar(s, 1, '^');
  while( *p ){
    unsigned c = *p;
    if( !bGlob && c=='%' ){ sqlite3_str_appendall(s, ".*"); p++; continue; }
    if( !bGlob && c=='_' ){ sqlite3_str_appendall(s, "."); p++; continue; }
    if( bGlob && c=='*' ){ sqlite3_str_appendall(s, ".*"); p++; continue; }
    if( bGlob && c=='?' ){ sqlite3_str_appendall(s, "."); p++; continue; }
    if( bGlob && c=='[' ){
      if( pgGlobSet(s, &p) ){
        /* An unterminated set matches nothing, as in SQLite. */
        sqlite3_str_reset(s);
        sqlite3_str_appendall(s, "^(?!)");
        return;
      }
      continue;
    }
    if( !bGlob && ((c>='a' && c<='z') || (c>='A' && c<='Z')) ){
      sqlite3_str_appendf(s, "[%c%c]", (char)(c|0x20), (char)(c&~0x20));
    }else if( c<0x80 && !((c>='0' && c<='9') || (c>='a' && c<='z')
                         || (c>='A' && c<='Z')) ){
      sqlite3_str_appendchar(s, 1, '\\');
      sqlite3_str_appendchar(s, 1, (char)c);
    }else{
      sqlite3_str_appendchar(s, 1, (char)c);
    }
    p++;
  }
  sqlite3_str_appendchar(s, 1, '$');
}

/* Bind a LIKE or GLOB pattern as its regular expression. */
static int pgPatternParam(PgParams *pParams, const char *zPat, int bGlob){
  sqlite3_str *pRe = sqlite3_str_new(0);
  char *zRe;
  int rc;
  pgPatternRegex(pRe, zPat, bGlob);
  zRe = sqlite3_str_finish(pRe);
  if( zRe==0 ) return SQLITE_NOMEM;
  rc = paramsAdd(pParams, zRe, -1, 0);
  sqlite3_free(zRe);
  return rc;
}

/* Append "$n" for the next parameter, with a cast where needed. */
static void pgPlaceholder(sqlite3_str *s, PgParams *pParams, const char *zCast){
  sqlite3_str_appendf(s, "$%d%s", pParams->n, zCast ? zCast : "");
}

/*
** Append the condition for one pushed term, or nothing (returning 0) when
** the term was pushed loosely and this value cannot be expressed exactly.
** Returns 1 if something was appended.
*/
static int pgDeparseTerm(
  sqlite3_str *s, PgParams *pParams, FedTable *pTab, const FedPlanTerm *t,
  sqlite3_value *pVal, int *pRc
){
  const FedColumn *pCol = &pTab->aCol[t->iCol];
  int eColClass = kindClass(pCol->eKind);
  int op = t->op;
  sqlite3_value *pConv = 0;
  int eValClass;

  if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, op==FED_OP_ISNULL ? " IS NULL" : " IS NOT NULL");
    return 1;
  }
  if( op==FED_OP_LIKE || op==FED_OP_GLOB ){
    const char *zPat = (const char*)sqlite3_value_text(pVal);
    if( zPat==0 ){
      sqlite3_str_appendall(s, "FALSE");
      return 1;
    }
    pgColumnExpr(s, pCol, 1);
    *pRc = pgPatternParam(pParams, zPat, op==FED_OP_GLOB);
    sqlite3_str_appendall(s, " ~ ");
    pgPlaceholder(s, pParams, 0);
    return 1;
  }
  if( op==FED_OP_IN ){
    /* The whole list as one array parameter: any length, one prepared
    ** statement for every list. */
    sqlite3_value *pV;
    int n = 0, rc;
    sqlite3_str *pArr = sqlite3_str_new(0);
    char *zArr;
    int nArr;
    sqlite3_str_appendchar(pArr, 1, '{');
    for(rc=sqlite3_vtab_in_first(pVal, &pV); rc==SQLITE_OK && pV;
        rc=sqlite3_vtab_in_next(pVal, &pV)){
      sqlite3_value *pC = 0;
      int eCls = valueClass(pV, eColClass, &pC);
      sqlite3_value *pUse = pC ? pC : pV;
      if( eCls==eColClass ){
        char zBuf[64];
        zBuf[0] = 0;
        if( eColClass==CLASS_NUM ){
          if( sqlite3_value_type(pUse)==SQLITE_INTEGER ){
            i64 v = sqlite3_value_int64(pUse);
            /* A float column equals an integer only if the integer is
            ** exactly a double. */
            i64 mn, mx;
            pgIntRange(pCol, &mn, &mx);
            if( pCol->eKind==PG_FLOAT ? pgIntIsDouble(v) : (v>=mn && v<=mx) ){
              sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", v);
            }
          }else{
            double r = sqlite3_value_double(pUse);
            if( pCol->eKind==PG_FLOAT ){
              fedDoubleText(r, zBuf, sizeof(zBuf));
            }else if( r==floor(r) && r<9223372036854775807.0
                   && r>=-9223372036854775808.0 ){
              i64 mn, mx;
              pgIntRange(pCol, &mn, &mx);
              if( (i64)r>=mn && (i64)r<=mx ){
                sqlite3_snprintf(sizeof(zBuf), zBuf, "%lld", (i64)r);
              }
            }
          }
          if( zBuf[0] ){
            sqlite3_str_appendf(pArr, "%s%s", n++ ? "," : "", zBuf);
          }
        }else if( eColClass==CLASS_BLOB ){
          const unsigned char *a = sqlite3_value_blob(pUse);
          int k, nByte = sqlite3_value_bytes(pUse);
          sqlite3_str_appendall(pArr, n++ ? ",\"\\\\x" : "\"\\\\x");
          for(k=0; k<nByte; k++) sqlite3_str_appendf(pArr, "%02x", a[k]);
          sqlite3_str_appendchar(pArr, 1, '"');
        }else{
          const char *z = (const char*)sqlite3_value_text(pUse);
          int k, nByte = sqlite3_value_bytes(pUse);
          sqlite3_str_appendall(pArr, n++ ? ",\"" : "\"");
          for(k=0; k<nByte; k++){
            if( z[k]=='"' || z[k]=='\\' ) sqlite3_str_appendchar(pArr, 1, '\\');
            sqlite3_str_appendchar(pArr, 1, z[k]);
          }
          sqlite3_str_appendchar(pArr, 1, '"');
        }
      }else if( eColClass==CLASS_TEXT && eCls==CLASS_NUM && !t->bExact ){
        /* Loose: a number against text depends on affinities we cannot
        ** see; push nothing for this term. */
        sqlite3_value_free(pC);
        sqlite3_free(sqlite3_str_finish(pArr));
        return 0;
      }
      sqlite3_value_free(pC);
    }
    sqlite3_str_appendchar(pArr, 1, '}');
    nArr = sqlite3_str_length(pArr);
    zArr = sqlite3_str_finish(pArr);
    if( zArr==0 ){ *pRc = SQLITE_NOMEM; return 0; }
    if( rc!=SQLITE_OK && rc!=SQLITE_DONE ){ *pRc = rc; sqlite3_free(zArr); return 0; }
    if( n==0 ){
      sqlite3_str_appendall(s, "FALSE");
    }else{
      static const char *azArrType[] = { "", "::bigint[]", "::text[]",
                                         "::bytea[]" };
      pgColumnExpr(s, pCol, 0);
      *pRc = paramsAdd(pParams, zArr, nArr, 0);
      sqlite3_str_appendf(s, " = ANY($%d%s)", pParams->n,
          pCol->eKind==PG_FLOAT ? "::float8[]" : azArrType[eColClass]);
    }
    sqlite3_free(zArr);
    return 1;
  }

  eValClass = valueClass(pVal, eColClass, &pConv);
  if( pConv ) pVal = pConv;
  if( eValClass==CLASS_NULL && (op==FED_OP_IS || op==FED_OP_ISNOT) ){
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, op==FED_OP_IS ? " IS NULL" : " IS NOT NULL");
    sqlite3_value_free(pConv);
    return 1;
  }
  if( eColClass==CLASS_TEXT && !t->bExact && eValClass!=CLASS_NULL
   && (eValClass!=CLASS_TEXT || (op!=FED_OP_EQ && op!=FED_OP_IS)) ){
    /* The operand's affinity is unknown (pgPushable()): only text
    ** equality is a sure superset. */
    sqlite3_value_free(pConv);
    return 0;
  }
  if( eColClass==CLASS_TEXT && eValClass==CLASS_NUM ){
    /* Exact only for a value known as text at planning time: a number now
    ** is a parameter bound again, which has no affinity: TEXT applies. */
    eValClass = CLASS_TEXT;
  }
  if( eValClass!=eColClass ){
    pgConstCondition(s, pCol, op, eColClass, eValClass);
    sqlite3_value_free(pConv);
    return 1;
  }
  {
    sqlite3_str *pTmp = sqlite3_str_new(0);
    int opUse = op;
    char *zTmp;
    if( eColClass==CLASS_NUM ){
      opUse = pgNumParam(pTmp, pParams, pCol, op, pVal, pRc);
    }else if( eColClass==CLASS_BLOB ){
      *pRc = paramsAdd(pParams, valueBytes(pVal),
                       sqlite3_value_bytes(pVal), 1);
    }else{
      *pRc = paramsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                       sqlite3_value_bytes(pVal), 0);
    }
    zTmp = sqlite3_str_finish(pTmp);
    if( opUse==0 ){
      sqlite3_str_appendall(s, zTmp ? zTmp : "FALSE");
    }else{
      pgColumnExpr(s, pCol, 0);
      sqlite3_str_appendf(s, " %s ", pgOpText(opUse));
      pgPlaceholder(s, pParams, eColClass==CLASS_BLOB ? "::bytea"
                    : (pCol->eKind==PG_FLOAT ? "::float8" : 0));
    }
    sqlite3_free(zTmp);
  }
  sqlite3_value_free(pConv);
  return 1;
}

/* The select-list expression of a column. */
static void pgSelectExpr(sqlite3_str *s, const FedColumn *pCol){
  if( pCol->eKind==PG_ARRAY ){
    sqlite3_str_appendall(s, "to_json(");
    pgQuoteIdent(s, pCol->zName, -1);
    sqlite3_str_appendall(s, ")");
  }else{
    pgQuoteIdent(s, pCol->zName, -1);
  }
}

/*
** Build the SELECT for a plan and xFilter's values.  aResCol[] receives
** the result column of each table column (-1: not fetched).  Pure: no
** network; the text is what fed_explain shows.
*/
static int pgDeparseSelect(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, int *aResCol, char **pzSql, PgParams *pParams
){
  sqlite3_str *s = sqlite3_str_new(0);
  int i, nRes = 0, nWhere = 0, rc = SQLITE_OK;

  sqlite3_str_appendall(s, "SELECT ");
  for(i=0; i<pTab->nCol; i++){
    /* The key is always fetched: a DELETE or UPDATE reads it even when
    ** colUsed does not say so. */
    if( fedPlanColUsed(pPlan, i) || i==pTab->iPk ){
      if( nRes ) sqlite3_str_appendall(s, ", ");
      pgSelectExpr(s, &pTab->aCol[i]);
      aResCol[i] = nRes++;
    }else{
      aResCol[i] = -1;
    }
  }
  sqlite3_str_appendf(s, " FROM %s", pTab->zRemote);
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = 0;
    int nBefore = sqlite3_str_length(s);
    if( t->iCol<0 || t->iCol>=pTab->nCol ) continue;
    if( t->iArg>=0 ){
      if( t->iArg>=argc ){ rc = SQLITE_CORRUPT_VTAB; break; }
      pVal = argv[t->iArg];
    }else if( t->op!=FED_OP_ISNULL && t->op!=FED_OP_NOTNULL ){
      rc = SQLITE_CORRUPT_VTAB;   /* an operator without its value */
      break;
    }
    sqlite3_str_appendall(s, nWhere ? " AND " : " WHERE ");
    if( pgDeparseTerm(s, pParams, pTab, t, pVal, &rc) ){
      nWhere++;
    }else{
      /* Nothing pushed for this term: take the connective back. */
      char *z = sqlite3_str_value(s);
      if( z ){
        sqlite3_str *s2 = sqlite3_str_new(0);
        sqlite3_str_append(s2, z, nBefore);
        sqlite3_free(sqlite3_str_finish(s));
        s = s2;
      }
    }
  }
  for(i=0; i<pPlan->nOrder; i++){
    const FedColumn *pCol = &pTab->aCol[pPlan->aOrderCol[i]];
    sqlite3_str_appendall(s, i ? ", " : " ORDER BY ");
    pgColumnExpr(s, pCol, 0);
    sqlite3_str_appendall(s, pPlan->aOrderDesc[i] ? " DESC NULLS LAST"
                                                  : " ASC NULLS FIRST");
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( n>=0 ){
      if( rc==SQLITE_OK ) rc = paramsAddInt(pParams, n);
      sqlite3_str_appendf(s, " LIMIT $%d", pParams->n);
    }
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( n>0 ){
      if( rc==SQLITE_OK ) rc = paramsAddInt(pParams, n);
      sqlite3_str_appendf(s, " OFFSET $%d", pParams->n);
    }
  }
  /* Rows read by a statement that writes the table are locked, so that
  ** what it writes back is computed from what is there. */
  if( bForUpdate ) sqlite3_str_appendall(s, " FOR UPDATE");
  *pzSql = sqlite3_str_finish(s);
  if( *pzSql==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzSql);
    *pzSql = 0;
  }
  return rc;
}

/*
** Deparsed SELECTs kept per table (PgTable), so that a scan repeated with
** the same plan (a lookup by key, run many times) builds its SQL once and
** then only binds its values.  The text depends on the plan and, for some
** values, on the value itself (a NULL, a real against an integer column,
** a number against a text column, an IN list: see pgDeparseTerm()).  A
** term's shape says what its value contributes: the shapes below bind one
** plain parameter and leave the text alone; any other value is
** PG_SHAPE_VARIES, and a plan with such a term is deparsed every time.
** Entries live as long as the table, whose columns and remote name never
** change; the statement cache of each connection is keyed by the text, so
** a new or redefined server's connection prepares it again.
*/
#define PG_SHAPE_VARIES  0      /* The text depends on the value */
#define PG_SHAPE_NONE    1      /* No value: IS NULL, IS NOT NULL */
#define PG_SHAPE_INT     2      /* An integer (exactly a double for floats) */
#define PG_SHAPE_REAL    3      /* A real against a float column */
#define PG_SHAPE_TEXT    4      /* Text against a text-class column */
#define PG_SHAPE_BLOB    5      /* A blob against a bytea column */
#define PG_SHAPE_PATTERN 6      /* A LIKE or GLOB pattern, not NULL */

#define PG_SELECT_KEPT   4      /* Deparsed SELECTs kept per table */

typedef struct PgSelect PgSelect;
typedef struct PgTable PgTable;

struct PgSelect {
  FedPlan plan;                 /* The plan (arrays in this allocation) */
  u8 bForUpdate;                /* Deparsed with FOR UPDATE */
  u8 bLimit, bOffset;           /* LIMIT / OFFSET parameters appended */
  int *aShape;                  /* Shape of each plan term */
  int aResCol[FED_MAX_COLUMNS]; /* As pgDeparseSelect() set it */
  char *zSql;                   /* The text */
  PgSelect *pNext;              /* Next kept, less recently used */
};

/* The store's part of a FedTable (FedTable.pStoreTab). */
struct PgTable {
  PgSelect *pSelect;            /* Most recently used first */
  int nSelect;
};

/* The shape of the value of term t (pVal: its value, or NULL). */
static int pgTermShape(FedTable *pTab, const FedPlanTerm *t, sqlite3_value *pVal){
  const FedColumn *pCol;
  int eType;
  if( t->iCol<0 || t->iCol>=pTab->nCol ) return PG_SHAPE_VARIES;
  if( t->op==FED_OP_ISNULL || t->op==FED_OP_NOTNULL ) return PG_SHAPE_NONE;
  if( pVal==0 || t->op==FED_OP_IN ) return PG_SHAPE_VARIES;
  pCol = &pTab->aCol[t->iCol];
  eType = sqlite3_value_type(pVal);
  if( t->op==FED_OP_LIKE || t->op==FED_OP_GLOB ){
    return eType==SQLITE_NULL ? PG_SHAPE_VARIES : PG_SHAPE_PATTERN;
  }
  switch( kindClass(pCol->eKind) ){
    case CLASS_NUM:
      if( eType==SQLITE_INTEGER ){
        if( pCol->eKind!=PG_FLOAT ){
          i64 mn, mx, v = sqlite3_value_int64(pVal);
          pgIntRange(pCol, &mn, &mx);
          return (v>=mn && v<=mx) ? PG_SHAPE_INT : PG_SHAPE_VARIES;
        }
        return pgIntIsDouble(sqlite3_value_int64(pVal)) ? PG_SHAPE_INT
                                                         : PG_SHAPE_VARIES;
      }
      if( eType==SQLITE_FLOAT && pCol->eKind==PG_FLOAT ) return PG_SHAPE_REAL;
      break;
    case CLASS_TEXT:
      /* Loose (operand affinity unknown): only equality is pushed. */
      if( !t->bExact && t->op!=FED_OP_EQ && t->op!=FED_OP_IS ) break;
      if( eType==SQLITE_TEXT ) return PG_SHAPE_TEXT;
      break;
    case CLASS_BLOB:
      if( eType==SQLITE_BLOB ) return PG_SHAPE_BLOB;
      break;
  }
  return PG_SHAPE_VARIES;
}

/* Bind the value of a term of shape eShape, as pgDeparseTerm() does. */
static int pgTermBind(
  PgParams *pParams, int eShape, const FedPlanTerm *t, sqlite3_value *pVal
){
  char zBuf[64];
  switch( eShape ){
    case PG_SHAPE_INT:
      return paramsAddInt(pParams, sqlite3_value_int64(pVal));
    case PG_SHAPE_REAL:
      fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
      return paramsAdd(pParams, zBuf, -1, 0);
    case PG_SHAPE_TEXT:
      return paramsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                       sqlite3_value_bytes(pVal), 0);
    case PG_SHAPE_BLOB:
      return paramsAdd(pParams, valueBytes(pVal), sqlite3_value_bytes(pVal), 1);
    case PG_SHAPE_PATTERN: {
      const char *zPat = (const char*)sqlite3_value_text(pVal);
      if( zPat==0 ) return SQLITE_NOMEM;
      return pgPatternParam(pParams, zPat, t->op==FED_OP_GLOB);
    }
  }
  return SQLITE_OK;
}

/* True if plans a and b are the same. */
static int pgPlanSame(const FedPlan *a, const FedPlan *b){
  int i;
  if( a->nTerm!=b->nTerm || a->nOrder!=b->nOrder || a->colUsed!=b->colUsed
   || a->iLimitArg!=b->iLimitArg || a->iOffsetArg!=b->iOffsetArg ){
    return 0;
  }
  for(i=0; i<a->nTerm; i++){
    const FedPlanTerm *x = &a->aTerm[i], *y = &b->aTerm[i];
    if( x->iCol!=y->iCol || x->op!=y->op || x->iArg!=y->iArg
     || x->bExact!=y->bExact ){
      return 0;
    }
  }
  for(i=0; i<a->nOrder; i++){
    if( a->aOrderCol[i]!=b->aOrderCol[i]
     || a->aOrderDesc[i]!=b->aOrderDesc[i] ){
      return 0;
    }
  }
  return 1;
}

/* True if pSel was deparsed for this plan and values of the same shapes. */
static int pgSelectMatch(
  FedTable *pTab, const PgSelect *pSel, const FedPlan *pPlan, int argc,
  sqlite3_value **argv, int bForUpdate
){
  int i;
  if( pSel->bForUpdate!=bForUpdate || !pgPlanSame(&pSel->plan, pPlan) ){
    return 0;
  }
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    if( pgTermShape(pTab, t, pVal)!=pSel->aShape[i] ) return 0;
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc
   && (sqlite3_value_int64(argv[pPlan->iLimitArg])>=0)!=pSel->bLimit ){
    return 0;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc
   && (sqlite3_value_int64(argv[pPlan->iOffsetArg])>0)!=pSel->bOffset ){
    return 0;
  }
  return 1;
}

/* Bind argv as pgDeparseSelect() would for the text of pSel. */
static int pgSelectBind(
  const PgSelect *pSel, const FedPlan *pPlan, sqlite3_value **argv,
  PgParams *pParams
){
  int i, rc = SQLITE_OK;
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    rc = pgTermBind(pParams, pSel->aShape[i], t, t->iArg>=0 ? argv[t->iArg] : 0);
  }
  if( pSel->bLimit && rc==SQLITE_OK ){
    rc = paramsAddInt(pParams, sqlite3_value_int64(argv[pPlan->iLimitArg]));
  }
  if( pSel->bOffset && rc==SQLITE_OK ){
    rc = paramsAddInt(pParams, sqlite3_value_int64(argv[pPlan->iOffsetArg]));
  }
  return rc;
}

/*
** A kept SELECT for this plan whose value shapes match argv: its values
** are bound into pParams (*pRc set) and it is returned.  NULL (nothing
** bound): deparse.
*/
static PgSelect *pgSelectFind(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, PgParams *pParams, int *pRc
){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  PgSelect **pp, *pSel;
  if( pPt==0 ) return 0;
  for(pp=&pPt->pSelect; (pSel = *pp)!=0; pp=&pSel->pNext){
    if( pgSelectMatch(pTab, pSel, pPlan, argc, argv, bForUpdate) ) break;
  }
  if( pSel==0 ) return 0;
  *pRc = pgSelectBind(pSel, pPlan, argv, pParams);
  /* Most recently used first. */
  *pp = pSel->pNext;
  pSel->pNext = pPt->pSelect;
  pPt->pSelect = pSel;
  return pSel;
}

/*
** Keep zSql, just deparsed for this plan and these values, if every term's
** shape lets a later scan reuse it.  Out of memory only loses the entry.
*/
static void pgSelectKeep(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  int bForUpdate, const int *aResCol, const char *zSql
){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  PgSelect *pSel;
  i64 nByte;
  int i;
  char *z;
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    if( pgTermShape(pTab, t, pVal)==PG_SHAPE_VARIES ) return;
  }
  if( pPt==0 ){
    pPt = sqlite3_malloc64(sizeof(*pPt));
    if( pPt==0 ) return;
    memset(pPt, 0, sizeof(*pPt));
    pTab->pStoreTab = pPt;
  }
  if( pPt->nSelect>=PG_SELECT_KEPT ){
    PgSelect **pp = &pPt->pSelect;
    while( (*pp)->pNext ) pp = &(*pp)->pNext;
    sqlite3_free(*pp);
    *pp = 0;
    pPt->nSelect--;
  }
  nByte = sizeof(*pSel) + (sizeof(FedPlanTerm) + sizeof(int))*pPlan->nTerm
        + (sizeof(int) + 1)*pPlan->nOrder + strlen(zSql) + 1;
  pSel = sqlite3_malloc64(nByte);
  if( pSel==0 ) return;
  memset(pSel, 0, sizeof(*pSel));
  pSel->plan = *pPlan;
  z = (char*)&pSel[1];
  pSel->plan.aTerm = (FedPlanTerm*)z;
  if( pPlan->nTerm ) memcpy(z, pPlan->aTerm, sizeof(FedPlanTerm)*pPlan->nTerm);
  z += sizeof(FedPlanTerm)*pPlan->nTerm;
  pSel->aShape = (int*)z;
  z += sizeof(int)*pPlan->nTerm;
  pSel->plan.aOrderCol = (int*)z;
  if( pPlan->nOrder ){
    memcpy(z, pPlan->aOrderCol, sizeof(int)*pPlan->nOrder);
    memcpy(z + sizeof(int)*pPlan->nOrder, pPlan->aOrderDesc, pPlan->nOrder);
  }
  z += sizeof(int)*pPlan->nOrder;
  pSel->plan.aOrderDesc = (u8*)z;
  z += pPlan->nOrder;
  pSel->zSql = z;
  memcpy(z, zSql, strlen(zSql)+1);
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal = t->iArg>=0 && t->iArg<argc ? argv[t->iArg] : 0;
    pSel->aShape[i] = pgTermShape(pTab, t, pVal);
  }
  pSel->bForUpdate = (u8)bForUpdate;
  pSel->bLimit = pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc
              && sqlite3_value_int64(argv[pPlan->iLimitArg])>=0;
  pSel->bOffset = pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc
               && sqlite3_value_int64(argv[pPlan->iOffsetArg])>0;
  memcpy(pSel->aResCol, aResCol, sizeof(int)*pTab->nCol);
  pSel->pNext = pPt->pSelect;
  pPt->pSelect = pSel;
  pPt->nSelect++;
}

static void pgTableFree(FedTable *pTab){
  PgTable *pPt = (PgTable*)pTab->pStoreTab;
  if( pPt==0 ) return;
  while( pPt->pSelect ){
    PgSelect *pSel = pPt->pSelect;
    pPt->pSelect = pSel->pNext;
    sqlite3_free(pSel);
  }
  sqlite3_free(pPt);
  pTab->pStoreTab = 0;
}

/**************************************************************************
** Scans: single-row mode, so rows stream with memory bounded by one row.
*/
static void cursorReset(PgCursor *pCsr){
  PQclear(pCsr->pRes);
  pCsr->pRes = 0;
  while( pCsr->pHeld ){
    PgChunk *pC = pCsr->pHeld;
    pCsr->pHeld = pC->pNext;
    sqlite3_free(pC);
  }
  pCsr->pHeldLast = 0;
  pCsr->iHeld = pCsr->nHeldRow = 0;
  pCsr->bHeldRow = 0;
  sqlite3_free(pCsr->zDrainErr);
  pCsr->zDrainErr = 0;
  pCsr->bDrainLost = 0;
  pCsr->bEof = 1;
  pCsr->iRow = 0;
}

/* Stop the stream of this cursor: read what is left (or cancel a long
** rest outside a transaction) so that the connection is idle again. */
static void cursorStop(PgCursor *pCsr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  int n = 0;
  if( p==0 || !pCsr->bStreaming ) return;
  while( (pRes = pgResult(p))!=0 ){
    PQclear(pRes);
    if( ++n==PG_DRAIN_BEFORE_CANCEL && !p->base.bTxn ){
      PGcancel *pCancel = PQgetCancel(p->pg);
      if( pCancel ){
        char zErr[256];
        PQcancel(pCancel, zErr, sizeof(zErr));
        PQfreeCancel(pCancel);
      }
    }
  }
  fedExplainRows(pgCtx(p), pCsr->iExplain, pCsr->iRowid+1, 1);
  pCsr->bStreaming = 0;
  p->pActive = 0;
}

/*
** Append the rows of pRes to the held rows.  SQLITE_NOMEM when memory
** runs out, SQLITE_FULL when the rows would take SQLite's memory past its
** soft heap limit (sqlite3_soft_heap_limit64(), PRAGMA soft_heap_limit).
*/
static int cursorHold(PgCursor *pCsr, PGresult *pRes){
  int nField = PQnfields(pRes);
  int nRow = PQntuples(pRes), iRow, i;
  if( nField>FED_MAX_COLUMNS+1 ) return SQLITE_FULL;
  pCsr->nField = nField;
  for(iRow=0; iRow<nRow; iRow++){
    PgChunk *pC = pCsr->pHeldLast;
    i64 nRowByte = 0;
    char *z;
    for(i=0; i<nField; i++) nRowByte += 5 + PQgetlength(pRes, iRow, i);
    if( pC==0 || pC->nUsed+nRowByte>pC->nAlloc ){
      i64 nAlloc = nRowByte>PG_CHUNK ? nRowByte : PG_CHUNK;
      i64 nLimit = sqlite3_soft_heap_limit64(-1);
      if( nLimit>0 && sqlite3_memory_used()+nAlloc>nLimit ) return SQLITE_FULL;
      pC = sqlite3_malloc64(sizeof(PgChunk) + nAlloc);
      if( pC==0 ) return SQLITE_NOMEM;
      pC->pNext = 0;
      pC->nUsed = 0;
      pC->nAlloc = nAlloc;
      if( pCsr->pHeldLast ){
        pCsr->pHeldLast->pNext = pC;
      }else{
        pCsr->pHeld = pC;
        pCsr->iHeld = 0;
      }
      pCsr->pHeldLast = pC;
    }
    z = &pC->a[pC->nUsed];
    for(i=0; i<nField; i++){
      int n = PQgetisnull(pRes, iRow, i) ? -1 : PQgetlength(pRes, iRow, i);
      memcpy(z, &n, 4);
      z += 4;
      if( n>=0 ){
        memcpy(z, PQgetvalue(pRes, iRow, i), n);
        z[n] = 0;
        z += n+1;
      }
    }
    pC->nUsed = z - pC->a;
    pCsr->nHeldRow++;
  }
  return SQLITE_OK;
}

/* Make the next held row the current one (there is one). */
static void cursorHeldNext(PgCursor *pCsr){
  PgChunk *pC = pCsr->pHeld;
  const char *z;
  int i;
  if( pCsr->iHeld>=pC->nUsed ){
    /* This chunk is read: its memory goes back at once. */
    pCsr->pHeld = pC->pNext;
    if( pCsr->pHeld==0 ) pCsr->pHeldLast = 0;
    sqlite3_free(pC);
    pC = pCsr->pHeld;
    pCsr->iHeld = 0;
  }
  z = &pC->a[pCsr->iHeld];
  for(i=0; i<pCsr->nField; i++){
    int n;
    memcpy(&n, z, 4);
    z += 4;
    pCsr->anVal[i] = n;
    pCsr->azVal[i] = n<0 ? 0 : z;
    if( n>=0 ) z += n+1;
  }
  pCsr->iHeld = z - pC->a;
  pCsr->nHeldRow--;
  pCsr->bHeldRow = 1;
}

/* Another command needs the connection: keep the rest of the rows here.
** If they cannot be kept, the rest of the scan is read and dropped (or
** cancelled, outside a transaction) and the cursor reports why after the
** rows it kept. */
static void cursorDrain(PgCursor *pCsr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  int n = 0, rc = SQLITE_OK;
  if( p==0 || !pCsr->bStreaming ) return;
  p->pActive = 0;
  pCsr->bStreaming = 0;
  while( (pRes = pgResult(p))!=0 ){
    ExecStatusType e = PQresultStatus(pRes);
    if( rc==SQLITE_OK && (e==PGRES_SINGLE_TUPLE || e==PGRES_TUPLES_OK) ){
      rc = cursorHold(pCsr, pRes);
      if( rc==SQLITE_NOMEM ){
        pCsr->bDrainLost = 1;
      }else if( rc==SQLITE_FULL ){
        pCsr->zDrainErr = sqlite3_mprintf("%s: the rest of a scan, held"
            " while another command used server \"%s\", would pass the"
            " soft heap limit (%lld bytes) (remote query: %s)", PG_STORE,
            p->base.pServer->zName, sqlite3_soft_heap_limit64(-1),
            pCsr->zSql ? pCsr->zSql : "");
        if( pCsr->zDrainErr==0 ) pCsr->bDrainLost = 1;
      }
    }else if( rc==SQLITE_OK && e!=PGRES_COMMAND_OK ){
      pgSetError(&pCsr->zDrainErr, p->pg, pRes, pCsr->zSql);
      rc = SQLITE_ERROR;
    }
    PQclear(pRes);
    if( rc!=SQLITE_OK && ++n==PG_DRAIN_BEFORE_CANCEL && !p->base.bTxn ){
      pgCancelAsync(p);
    }
  }
}

static int pgOpen(FedCursor *pFedCsr, char **pzErr){
  PgCursor *pCsr = sqlite3_malloc64(sizeof(*pCsr));
  (void)pzErr;
  if( pCsr==0 ) return SQLITE_NOMEM;
  memset(pCsr, 0, sizeof(*pCsr));
  pCsr->bEof = 1;
  pFedCsr->pStoreCsr = pCsr;
  return SQLITE_OK;
}

static void pgClose(FedCursor *pFedCsr){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  if( pCsr==0 ) return;
  cursorStop(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  sqlite3_free(pCsr);
}

/* Take the next result (streamed or buffered); 1 if a row, 0 at the end,
** or an error. */
static int cursorFetch(PgCursor *pCsr, int *pbRow, char **pzErr){
  PgConn *p = pCsr->pConn;
  PGresult *pRes;
  ExecStatusType e;
  *pbRow = 0;
  PQclear(pCsr->pRes);
  pCsr->pRes = 0;
  pCsr->iRow = 0;
  pCsr->bHeldRow = 0;
  if( pCsr->nHeldRow>0 ){
    cursorHeldNext(pCsr);
    *pbRow = 1;
    return SQLITE_OK;
  }else if( pCsr->bDrainLost ){
    pCsr->bDrainLost = 0;
    return SQLITE_NOMEM;
  }else if( pCsr->zDrainErr ){
    fedSetError(pzErr, "%s", pCsr->zDrainErr);
    sqlite3_free(pCsr->zDrainErr);
    pCsr->zDrainErr = 0;
    return SQLITE_ERROR;
  }else if( pCsr->bStreaming && p ){
    if( fedFault(FED_FAULT_RECV, pzErr) ){
      cursorStop(pCsr);
      return SQLITE_ERROR;
    }
    pRes = pgResult(p);
  }else{
    return SQLITE_OK;
  }
  if( pRes==0 ){
    if( pCsr->bStreaming ){
      pCsr->bStreaming = 0;
      if( p ){
        p->pActive = 0;
        fedExplainRows(pgCtx(p), pCsr->iExplain, pCsr->iRowid+1, 1);
      }
    }
    return SQLITE_OK;
  }
  e = PQresultStatus(pRes);
  if( e==PGRES_SINGLE_TUPLE || (e==PGRES_TUPLES_OK && PQntuples(pRes)>0) ){
    pCsr->pRes = pRes;
    *pbRow = 1;
    return SQLITE_OK;
  }
  if( e==PGRES_TUPLES_OK ){
    /* The end of the rows; the NULL after it frees the connection. */
    PQclear(pRes);
    return cursorFetch(pCsr, pbRow, pzErr);
  }
  pgSetError(pzErr, p ? p->pg : 0, pRes, pCsr->zSql);
  PQclear(pRes);
  if( pCsr->bStreaming && p ){
    while( (pRes = pgResult(p))!=0 ) PQclear(pRes);
    pCsr->bStreaming = 0;
    p->pActive = 0;
  }
  return SQLITE_ERROR;
}

static int pgNext(FedCursor *pFedCsr, char **pzErr){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  int bRow, rc;
  if( pCsr->pRes && pCsr->iRow+1<PQntuples(pCsr->pRes) ){
    pCsr->iRow++;
    pCsr->iRowid++;
    return SQLITE_OK;
  }
  rc = cursorFetch(pCsr, &bRow, pzErr);
  if( rc!=SQLITE_OK || !bRow ){
    pCsr->bEof = 1;
    return rc;
  }
  pCsr->iRowid++;
  return SQLITE_OK;
}

static int pgFlush(FedConn *pConn, char **pzErr);
static int pgFlushBatch(PgConn *p, char **pzErr);

/* True if the plan returns at most a few rows: = on the primary key, or
** a LIMIT of at most 100. */
static int pgSmallResult(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv
){
  int i;
  for(i=0; i<pPlan->nTerm; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    if( t->iCol==pTab->iPk && t->op==FED_OP_EQ && t->bExact ) return 1;
  }
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    i64 n = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( n>=0 && n<=100 ) return 1;
  }
  return 0;
}

static int pgFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  FedTable *pTab = pFedCsr->pTab;
  PgConn *p = (PgConn*)pTab->pServer->pConn;
  PgParams *pParams = &p->scan;
  PgSelect *pSel;
  int rc = SQLITE_OK;

  cursorStop(pCsr);
  cursorReset(pCsr);
  sqlite3_free(pCsr->zSql);
  pCsr->zSql = 0;
  pCsr->pConn = p;
  pCsr->iRowid = 0;
  paramsReset(pParams);

  /* Reads see this connection's own buffered writes. */
  rc = pgFlush(&p->base, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  pSel = pgSelectFind(pTab, pFedCsr->pPlan, argc, argv, pFedCsr->bForUpdate,
                      pParams, &rc);
  if( pSel ){
    if( rc==SQLITE_OK ){
      memcpy(pCsr->aResCol, pSel->aResCol, sizeof(int)*pTab->nCol);
      pCsr->zSql = fedStrdup(pSel->zSql, -1);
      if( pCsr->zSql==0 ) rc = SQLITE_NOMEM;
    }
  }else{
    rc = pgDeparseSelect(pTab, pFedCsr->pPlan, argc, argv,
                         pFedCsr->bForUpdate, pCsr->aResCol, &pCsr->zSql,
                         pParams);
    if( rc==SQLITE_OK ){
      pgSelectKeep(pTab, pFedCsr->pPlan, argc, argv, pFedCsr->bForUpdate,
                   pCsr->aResCol, pCsr->zSql);
    }
  }
  if( rc!=SQLITE_OK ) goto cleanup;
  rc = pgReady(p, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  rc = pgSend(p, pCsr->zSql, pParams, &pCsr->iExplain, pzErr);
  if( rc!=SQLITE_OK ) goto cleanup;
  /* Rows stream one at a time, unless the plan promises a few (a key
  ** lookup, a small LIMIT): those arrive in one result, which saves libpq
  ** a result object per row. */
  if( !pgSmallResult(pTab, pFedCsr->pPlan, argc, argv)
   && !PQsetSingleRowMode(p->pg) ){
    pgSetError(pzErr, p->pg, 0, pCsr->zSql);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  pCsr->bStreaming = 1;
  pCsr->bEof = 0;
  p->pActive = pCsr;
  pCsr->iRowid = -1;
  rc = pgNext(pFedCsr, pzErr);

cleanup:
  /* A long IN list's buffer is not kept. */
  if( pParams->nBufAlloc>65536 || pParams->nAlloc>1024 ) paramsFree(pParams);
  return rc;
}

static int pgEof(FedCursor *pFedCsr){
  return ((PgCursor*)pFedCsr->pStoreCsr)->bEof;
}

/* Decode PostgreSQL's hex bytea output ("\x0a1b...") into a blob. */
static void pgResultBytea(sqlite3_context *ctx, const char *z, int n){
  static const signed char aVal[256] = {
    ['0']=0, ['1']=1, ['2']=2, ['3']=3, ['4']=4, ['5']=5, ['6']=6, ['7']=7,
    ['8']=8, ['9']=9, ['a']=10, ['b']=11, ['c']=12, ['d']=13, ['e']=14,
    ['f']=15, ['A']=10, ['B']=11, ['C']=12, ['D']=13, ['E']=14, ['F']=15
  };
  unsigned char *a;
  int i, nOut;
  if( n<2 || z[0]!='\\' || z[1]!='x' ){
    sqlite3_result_blob(ctx, z, n, SQLITE_TRANSIENT);
    return;
  }
  nOut = (n-2)/2;
  a = sqlite3_malloc64(nOut ? nOut : 1);
  if( a==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  for(i=0; i<nOut; i++){
    a[i] = (unsigned char)((aVal[(unsigned char)z[2+2*i]]<<4)
                           | aVal[(unsigned char)z[3+2*i]]);
  }
  sqlite3_result_blob(ctx, a, nOut, sqlite3_free);
}

/*
** The double of a plain decimal ("-123.456": no exponent, at most 15
** significant digits) without strtod: the digits as an integer, below
** 2^53, divided by a power of ten up to 1e22, both exact, so the one
** rounding is the division's, as strtod's.  Returns 0 when it does not
** apply.
*/
static int pgFastAtof(const char *z, int n, double *pr){
  static const double aPow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
    1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
  };
  u64 m = 0;
  int i = 0, nDigit = 0, nFrac = -1;
  int bNeg = 0;
  if( n>0 && z[0]=='-' ){ bNeg = 1; i = 1; }
  if( i>=n ) return 0;
  for(; i<n; i++){
    char c = z[i];
    if( c>='0' && c<='9' ){
      if( m || c!='0' ) nDigit++;
      if( nDigit>15 ) return 0;
      m = m*10 + (u64)(c-'0');
      if( nFrac>=0 ) nFrac++;
    }else if( c=='.' && nFrac<0 ){
      nFrac = 0;
    }else{
      return 0;
    }
  }
  if( nFrac>22 ) return 0;
  *pr = nFrac>0 ? (double)m / aPow10[nFrac] : (double)m;
  if( bNeg ) *pr = -*pr;
  return 1;
}

/* numeric: an integer if it is one (also "100.00"), a real if it has at
** most 15 significant digits (so the double reads back as written), else
** the exact text. */
static void pgResultNumeric(sqlite3_context *ctx, const char *z, int n){
  i64 v;
  int i, iFirst = -1, iLast = -1, iDot = -1, nDigit;
  if( fedParseInt64(z, n, &v)==0 ){
    sqlite3_result_int64(ctx, v);
    return;
  }
  for(i=0; i<n; i++){
    char c = z[i];
    if( c>='1' && c<='9' ){
      if( iFirst<0 ) iFirst = i;
      iLast = i;
    }else if( c=='.' && iDot<0 ){
      iDot = i;
    }else if( c!='0' && !(c=='-' && i==0) ){
      /* NaN (and anything unexpected): the text */
      sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      return;
    }
  }
  if( iFirst<0 ){
    sqlite3_result_int64(ctx, 0);
    return;
  }
  if( iDot>=0 && iLast<iDot && fedParseInt64(z, iDot, &v)==0 ){
    sqlite3_result_int64(ctx, v);
    return;
  }
  nDigit = iLast - iFirst + 1 - (iDot>iFirst && iDot<iLast);
  if( nDigit<=15 ){
    sqlite3_result_double(ctx, strtod(z, 0));
    return;
  }
  sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
}

static void pgValue(sqlite3_context *, const FedColumn *, const char *, int);

static int pgColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol){
  PgCursor *pCsr = (PgCursor*)pFedCsr->pStoreCsr;
  const FedColumn *pCol = &pFedCsr->pTab->aCol[iCol];
  int iRes = pCsr->aResCol[iCol];
  const char *z;
  int n;
  if( iRes<0 || (pCsr->pRes==0 && !pCsr->bHeldRow) ) return SQLITE_OK;
  if( iCol!=pFedCsr->pTab->iPk && sqlite3_vtab_nochange(ctx) ){
    return SQLITE_OK;           /* UPDATE that does not change it */
  }
  if( pCsr->bHeldRow ){
    if( iRes<pCsr->nField && pCsr->azVal[iRes] ){
      pgValue(ctx, pCol, pCsr->azVal[iRes], pCsr->anVal[iRes]);
    }
    return SQLITE_OK;
  }
  if( PQgetisnull(pCsr->pRes, pCsr->iRow, iRes) ) return SQLITE_OK;
  z = PQgetvalue(pCsr->pRes, pCsr->iRow, iRes);
  n = PQgetlength(pCsr->pRes, pCsr->iRow, iRes);
  pgValue(ctx, pCol, z, n);
  return SQLITE_OK;
}

/* Hand SQLite the value of column pCol whose PostgreSQL text is z[0..n). */
static void pgValue(sqlite3_context *ctx, const FedColumn *pCol,
                    const char *z, int n){
  switch( pCol->eKind ){
    case PG_INT: {
      i64 v;
      if( fedParseInt64(z, n, &v)==0 ){
        sqlite3_result_int64(ctx, v);
      }else{
        sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      }
      break;
    }
    case PG_BOOL:
      sqlite3_result_int(ctx, z[0]=='t');
      break;
    case PG_FLOAT: {
      double r;
      if( z[0]=='N' ) break;                    /* NaN: NULL, as SQLite */
      if( z[0]=='I' ){ sqlite3_result_double(ctx, HUGE_VAL); break; }
      if( z[0]=='-' && z[1]=='I' ){ sqlite3_result_double(ctx, -HUGE_VAL); break; }
      if( !pgFastAtof(z, n, &r) ) r = strtod(z, 0);
      sqlite3_result_double(ctx, r);
      break;
    }
    case PG_NUMERIC:
      pgResultNumeric(ctx, z, n);
      break;
    case PG_BYTEA:
      pgResultBytea(ctx, z, n);
      break;
    case PG_TSTZ:
      if( n>=3 && n<=60 && z[n-3]=='+' && z[n-2]=='0' && z[n-1]=='0' ){
        char zOut[64];
        memcpy(zOut, z, n);
        memcpy(&zOut[n], ":00", 3);
        sqlite3_result_text(ctx, zOut, n+3, SQLITE_TRANSIENT);
        break;
      }
      /* fall through */
    default:
      sqlite3_result_text(ctx, z, n, SQLITE_TRANSIENT);
      break;
  }
}

static int pgRowid(FedCursor *pFedCsr, i64 *piRowid){
  *piRowid = ((PgCursor*)pFedCsr->pStoreCsr)->iRowid;
  return SQLITE_OK;
}

/**************************************************************************
** Writes.
*/

/* Add one value to be written to pCol as a parameter; *pzCast receives a
** cast or wrapper the placeholder needs ("::bytea"). */
static int pgWriteParam(
  PgParams *pParams, const FedColumn *pCol, sqlite3_value *pVal,
  char **pzErr
){
  char zBuf[64];
  int eType = sqlite3_value_type(pVal);
  if( eType==SQLITE_NULL ) return paramsAdd(pParams, 0, 0, 0);
  switch( pCol->eKind ){
    case PG_BYTEA:
      if( eType==SQLITE_BLOB ){
        return paramsAdd(pParams, valueBytes(pVal),
                         sqlite3_value_bytes(pVal), 1);
      }
      return paramsAdd(pParams, (const char*)sqlite3_value_text(pVal),
                       sqlite3_value_bytes(pVal), 1);
    case PG_BOOL:
      if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pVal);
        if( r!=0.0 && r!=1.0 ){
          fedSetError(pzErr, "%s: cannot write %s to boolean column \"%s\""
              " (0 or 1, or 'true'/'false')", PG_STORE,
              sqlite3_value_text(pVal), pCol->zName);
          return SQLITE_MISMATCH;
        }
        return paramsAdd(pParams, r!=0.0 ? "t" : "f", 1, 0);
      }
      break;
    case PG_INT:
      if( eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pVal);
        if( r==floor(r) && r<9223372036854775807.0
         && r>=-9223372036854775808.0 ){
          return paramsAddInt(pParams, (i64)r);
        }
        fedSetError(pzErr, "%s: cannot write %s to integer column \"%s\"",
                    PG_STORE, sqlite3_value_text(pVal), pCol->zName);
        return SQLITE_MISMATCH;
      }
      break;
    case PG_FLOAT:
    case PG_NUMERIC:
      if( eType==SQLITE_FLOAT ){
        fedDoubleText(sqlite3_value_double(pVal), zBuf, sizeof(zBuf));
        return paramsAdd(pParams, zBuf, -1, 0);
      }
      break;
  }
  {
    /* Text sent as text ends at its first NUL, and PostgreSQL's text types
    ** cannot hold one: refuse rather than store fewer bytes. */
    const char *z = eType==SQLITE_BLOB ? valueBytes(pVal)
                                       : (const char*)sqlite3_value_text(pVal);
    int n = sqlite3_value_bytes(pVal);
    if( z==0 && n>0 ) return SQLITE_NOMEM;
    if( n>0 && memchr(z, 0, n)!=0 ){
      fedSetError(pzErr, "%s: cannot write a value holding a NUL character"
          " to column \"%s\" (%s): PostgreSQL cannot store it there;"
          " use a bytea column", PG_STORE, pCol->zName,
          pCol->zType ? pCol->zType : "text");
      return SQLITE_MISMATCH;
    }
    return paramsAdd(pParams, z, n, 0);
  }
}

/* The placeholder for a value written to pCol. */
static void pgWritePlaceholder(sqlite3_str *s, const FedColumn *pCol, int iParam){
  switch( pCol->eKind ){
    case PG_BYTEA:
      sqlite3_str_appendf(s, "$%d::bytea", iParam);
      break;
    case PG_ARRAY:
      /* Arrays are read as JSON, so they are written as JSON too. */
      sqlite3_str_appendf(s, "CASE WHEN $%d::json IS NULL THEN NULL ELSE"
          " ARRAY(SELECT json_array_elements_text($%d::json)) END::%s",
          iParam, iParam, pCol->zType);
      break;
    default:
      sqlite3_str_appendf(s, "$%d", iParam);
      break;
  }
}

/*
** COPY FROM STDIN does exactly what the multi-row INSERT would when the
** target is a plain or partitioned table without rules (COPY ignores
** rules, and is refused on a view or with row-level security) and every
** value is a plain parameter (an array column's placeholder is an
** expression).  The relation is asked once per remote transaction.
** Returns SQLITE_OK and sets *pbOk, or an error.
*/
static int pgCopyExact(PgConn *p, char **pzErr, int *pbOk){
  static const char *zCheck =
    "SELECT c.relkind IN ('r','p') AND NOT c.relhasrules"
    " AND NOT c.relrowsecurity FROM pg_class c WHERE c.oid = to_regclass($1)";
  PgBatch *b = &p->batch;
  FedTable *pTab = b->pTab;
  PgParams params;
  PGresult *pRes = 0;
  int i, rc;
  *pbOk = 0;
  if( b->nRow<PG_COPY_MIN || b->nCol==0 ) return SQLITE_OK;
  for(i=0; i<pTab->nCol; i++){
    if( (b->mCol & ((u64)1<<i)) && pTab->aCol[i].eKind==PG_ARRAY ){
      return SQLITE_OK;
    }
  }
  if( p->zCopyRel && strcmp(p->zCopyRel, pTab->zRemote)==0 ){
    *pbOk = p->bCopyOk;
    return SQLITE_OK;
  }
  memset(&params, 0, sizeof(params));
  rc = paramsAdd(&params, pTab->zRemote, -1, 0);
  if( rc==SQLITE_OK ) rc = pgExec(p, zCheck, &params, &pRes, pzErr);
  paramsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  *pbOk = PQntuples(pRes)==1 && PQgetvalue(pRes, 0, 0)[0]=='t';
  PQclear(pRes);
  sqlite3_free(p->zCopyRel);
  p->zCopyRel = fedStrdup(pTab->zRemote, -1);
  p->bCopyOk = *pbOk;
  return SQLITE_OK;
}

/*
** One value in COPY's text format, as the server would have read it as a
** bound parameter: NULL as \N; text up to its first NUL byte (libpq sends
** a text parameter as a C string) with backslash, tab, newline and
** carriage return escaped; a binary (bytea) parameter in bytea's hex form.
** Writes at most pgCopyFieldMax(n) bytes at z; returns how many.
*/
#define pgCopyFieldMax(n) (3 + 2*(i64)(n))
static i64 pgCopyField(char *zOut, const char *z, int n, int bBinary){
  static const char aHex[] = "0123456789abcdef";
  char *zEnd = zOut;
  int i;
  if( z==0 ){
    memcpy(zOut, "\\N", 2);
    return 2;
  }
  if( bBinary ){
    memcpy(zEnd, "\\\\x", 3);
    zEnd += 3;
    for(i=0; i<n; i++){
      *zEnd++ = aHex[((unsigned char)z[i])>>4];
      *zEnd++ = aHex[((unsigned char)z[i])&0xf];
    }
    return zEnd - zOut;
  }
  for(i=0; i<n && z[i]; i++){
    char c = z[i];
    switch( c ){
      case '\\': *zEnd++ = '\\'; break;
      case '\t':  *zEnd++ = '\\'; c = 't'; break;
      case '\n':  *zEnd++ = '\\'; c = 'n'; break;
      case '\r':  *zEnd++ = '\\'; c = 'r'; break;
    }
    *zEnd++ = c;
  }
  return zEnd - zOut;
}

/* "COPY t (cols) FROM STDIN" for the batch; sqlite3_malloc'd. */
static char *pgCopyCommand(PgBatch *b){
  FedTable *pTab = b->pTab;
  sqlite3_str *s = sqlite3_str_new(0);
  int i, n = 0;
  sqlite3_str_appendf(s, "COPY %s (", pTab->zRemote);
  for(i=0; i<pTab->nCol; i++){
    if( b->mCol & ((u64)1<<i) ){
      if( n++ ) sqlite3_str_appendall(s, ", ");
      pgQuoteIdent(s, pTab->aCol[i].zName, -1);
    }
  }
  sqlite3_str_appendall(s, ") FROM STDIN");
  return sqlite3_str_finish(s);
}

/* The batch's rows from row iFrom on as COPY data, given to libpq (the
** values are counted, not b->nRow, which a send zeroes first), written
** into the batch's buffer (kept: a streaming batch puts one row a call).
** Returns SQLITE_NOMEM, or SQLITE_OK (a failure to send shows in the
** result). */
static int pgCopyPut(PgConn *p, int iFrom){
  PgBatch *b = &p->batch;
  PgParams *pP = &b->params;
  i64 nData = 0, nMax = 0;
  int i;
  for(i=iFrom*b->nCol; i<pP->n; i++){
    nMax += pgCopyFieldMax(pP->aLen[i]) + 1;
  }
  if( nMax==0 ) return SQLITE_OK;
  if( nMax>b->nCopyAlloc ){
    char *a = sqlite3_realloc64(b->aCopy, nMax);
    if( a==0 ) return SQLITE_NOMEM;
    b->aCopy = a;
    b->nCopyAlloc = nMax;
  }
  for(i=iFrom*b->nCol; i<pP->n; i++){
    nData += pgCopyField(&b->aCopy[nData],
                         pP->aOff[i]<0 ? 0 : &pP->aBuf[pP->aOff[i]],
                         pP->aLen[i], pP->aFmt[i]);
    b->aCopy[nData++] = (i+1)%b->nCol ? '\t' : '\n';
  }
  /* Nonblocking: libpq queues the data (0 only when its buffer cannot
  ** grow); pgPush() sends it, and a failure to is reported by the COPY's
  ** end, from the dead connection. */
  if( PQputCopyData(p->pg, b->aCopy, (int)nData)==0 ) return SQLITE_NOMEM;
  pgPush(p);
  /* A whole batch's buffer is not kept. */
  if( b->nCopyAlloc>65536 ){
    sqlite3_free(b->aCopy);
    b->aCopy = 0;
    b->nCopyAlloc = 0;
  }
  return SQLITE_OK;
}

/*
** Open the COPY of this batch on the connection and give it the rows so
** far, so that the server inserts them while SQLite produces the next
** ones; pgCopyBatch() ends it when the batch is sent.  Only inside the
** remote transaction (pgCopyExact() sent an owed BEGIN).  If the server
** refuses the COPY, the refusal is kept and reported when the batch is
** sent, as the INSERT's would be.
*/
static int pgCopyStart(PgConn *p){
  PgBatch *b = &p->batch;
  char *zSql;
  PGresult *pRes;
  pgConnIdle(p);
  zSql = pgCopyCommand(b);
  if( zSql==0 ) return SQLITE_NOMEM;
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)==PGRES_COPY_IN ){
    b->nCopied = b->params.n / b->nCol;
    PQclear(pRes);
    sqlite3_free(zSql);
    return pgCopyPut(p, 0);
  }
  b->zCopyErr = 0;
  pgSetError(&b->zCopyErr, p->pg, pRes, zSql);
  PQclear(pRes);
  while( (pRes = pgResult(p))!=0 ) PQclear(pRes);
  sqlite3_free(zSql);
  return SQLITE_OK;
}

/* Give the rows added since the last call to the open COPY. */
static int pgCopyMore(PgConn *p){
  PgBatch *b = &p->batch;
  int iFrom = b->nCopied;
  b->nCopied = b->params.n / b->nCol;
  return pgCopyPut(p, iFrom);
}

/* Abandon an open COPY (ROLLBACK, ROLLBACK TO): the server discards it. */
static void pgCopyAbort(PgConn *p){
  PgBatch *b = &p->batch;
  if( b->nCopied>0 ){
    PGresult *pRes;
    b->nCopied = 0;
    PQputCopyEnd(p->pg, "rolled back");
    while( (pRes = pgResult(p))!=0 ) PQclear(pRes);
  }
  sqlite3_free(b->zCopyErr);
  b->zCopyErr = 0;
}

/* Send the waiting rows by COPY FROM STDIN (pgCopyExact() said it is the
** same as their INSERT), or end the COPY they stream into.  The command,
** its values and its row count are in fed_explain as for the INSERT. */
static int pgCopyBatch(PgConn *p, char **pzErr){
  PgBatch *b = &p->batch;
  char *zSql = pgCopyCommand(b), *zParams = paramsJson(&b->params);
  PGresult *pRes = 0;
  int rc = SQLITE_OK;
  i64 iSeq, nRow = 0;

  if( zSql==0 || (zParams==0 && b->params.n>0) ){
    rc = SQLITE_NOMEM;
    goto cleanup;
  }
  if( b->zCopyErr ){
    fedSetError(pzErr, "%s", b->zCopyErr);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  if( b->nCopied==0 ){
    rc = pgReady(p, pzErr);
    if( rc!=SQLITE_OK ) goto cleanup;
  }
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, zParams);
  if( fedFault(FED_FAULT_SEND, pzErr) ){
    rc = SQLITE_ERROR;
    if( b->nCopied>0 ) pgCopyAbort(p);
    goto cleanup;
  }
  if( b->nCopied>0 ){
    rc = pgCopyMore(p);
    b->nCopied = 0;
    if( rc==SQLITE_OK && PQputCopyEnd(p->pg, 0)!=1 ){
      pgSetError(pzErr, p->pg, 0, zSql);
      rc = SQLITE_ERROR;
    }
    pRes = pgResult(p);
  }else{
    pRes = pgExecWait(p, zSql);
    if( PQresultStatus(pRes)==PGRES_COPY_IN ){
      PQclear(pRes);
      rc = pgCopyPut(p, 0);
      if( rc==SQLITE_OK && PQputCopyEnd(p->pg, 0)!=1 ){
        pgSetError(pzErr, p->pg, 0, zSql);
        rc = SQLITE_ERROR;
      }
      if( rc==SQLITE_NOMEM ) PQputCopyEnd(p->pg, "out of memory");
      /* The result of the COPY (after an error above too: libpq ends it). */
      pRes = pgResult(p);
    }
  }
  if( rc==SQLITE_OK && PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    pgSetError(pzErr, p->pg, pRes, zSql);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) nRow = atoll(PQcmdTuples(pRes));
  PQclear(pRes);
  while( (pRes = pgResult(p))!=0 ) PQclear(pRes);
  fedExplainRows(pgCtx(p), iSeq, nRow, 1);

cleanup:
  if( b->nCopied>0 ) pgCopyAbort(p);
  sqlite3_free(b->zCopyErr);
  b->zCopyErr = 0;
  sqlite3_free(zSql);
  sqlite3_free(zParams);
  return rc;
}

/* Send the waiting INSERT rows as one statement (or one COPY). */
static int pgFlushBatch(PgConn *p, char **pzErr){
  PgBatch *b = &p->batch;
  FedTable *pTab = b->pTab;
  sqlite3_str *s;
  char *zSql;
  int iRow, i, iParam = 0, rc = SQLITE_OK, bCopy = 0;
  if( b->nRow==0 ) return SQLITE_OK;
  if( b->nCopied>0 || b->zCopyErr ){
    bCopy = 1;                  /* Streaming into a COPY, or it failed */
  }else{
    rc = pgCopyExact(p, pzErr, &bCopy);
  }
  if( rc==SQLITE_OK && bCopy ){
    b->nRow = 0;                /* Sent once, whatever the outcome */
    rc = pgCopyBatch(p, pzErr);
    batchClear(b);
    goto done;
  }
  if( rc!=SQLITE_OK ){
    batchClear(b);
    goto done;
  }
  s = sqlite3_str_new(0);
  sqlite3_str_appendall(s, b->zPrefix);
  for(iRow=0; iRow<b->nRow; iRow++){
    int n = 0;
    sqlite3_str_appendall(s, iRow ? ", (" : "(");
    for(i=0; i<pTab->nCol; i++){
      if( (b->mCol & ((u64)1<<i))==0 ) continue;
      if( n++ ) sqlite3_str_appendall(s, ", ");
      pgWritePlaceholder(s, &pTab->aCol[i], ++iParam);
    }
    sqlite3_str_appendchar(s, 1, ')');
  }
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ){
    if( p->bOpen && p->zDoom==0 ){
      p->zDoom = sqlite3_mprintf("%s: out of memory while sending buffered"
                                 " rows; ROLLBACK and retry", PG_STORE);
    }
    batchClear(b);
    return SQLITE_NOMEM;
  }
  b->nRow = 0;                  /* Sent once, whatever the outcome */
  rc = pgExec(p, zSql, &b->params, 0, pzErr);
  sqlite3_free(zSql);
  batchClear(b);
done:
  /* The rows came from statements SQLite considers done: if they did not
  ** make it, neither may the transaction.  Inside BEGIN...COMMIT the
  ** reason is kept and given to every later command until ROLLBACK, since
  ** SQLite drops messages from the savepoint callbacks that flush. */
  if( rc!=SQLITE_OK && p->bOpen ){
    sqlite3_free(p->zDoom);
    p->zDoom = sqlite3_mprintf("%s: rows buffered earlier in this"
        " transaction were not inserted, so it cannot commit: ROLLBACK"
        " (or ROLLBACK TO a savepoint) and retry; %s", PG_STORE,
        *pzErr==0 ? "out of memory" :
        strncmp(*pzErr, PG_STORE ": ", strlen(PG_STORE)+2)==0 ?
            *pzErr + strlen(PG_STORE) + 2 : *pzErr);
  }
  return rc;
}

static int pgFlush(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int rc;
  if( p->batch.nRow==0 ) return SQLITE_OK;
  rc = pgReady(p, pzErr);
  return rc==SQLITE_OK ? pgFlushBatch(p, pzErr) : rc;
}

static int pgInsert(
  PgConn *p, FedTable *pTab, sqlite3_value **aVal, i64 *piRowid,
  char **pzErr
){
  PgBatch *b = &p->batch;
  u64 mCol = 0;
  int i, nCol = 0, rc = SQLITE_OK;
  int bReturning = 0;
  i64 nBatch;

  for(i=0; i<pTab->nCol; i++){
    const FedColumn *pCol = &pTab->aCol[i];
    /* SQLite hands a virtual table NULL for a column an INSERT leaves out
    ** (it keeps no defaults for them).  NULL into a NOT NULL column that
    ** has a remote default (serial, identity, DEFAULT) means "use the
    ** default"; elsewhere NULL stays NULL, as in postgres_fdw. */
    if( sqlite3_value_type(aVal[i])==SQLITE_NULL && pCol->bDefault
     && pCol->bNotNull ){
      if( i==pTab->iPk && pCol->eKind==PG_INT ) bReturning = 1;
      continue;
    }
    mCol |= (u64)1<<i;
    nCol++;
  }
  rc = fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 100000, &nBatch,
                    PG_STORE, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( bReturning || nCol==0 ) nBatch = 1;

  /* A different table or column set, or a full batch: send what waits. */
  if( b->nRow>0 && (b->pTab!=pTab || b->mCol!=mCol
                    || b->params.n + nCol > 65535) ){
    rc = pgFlush(&p->base, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( b->nRow==0 ){
    sqlite3_str *s = sqlite3_str_new(0);
    int n = 0;
    batchClear(b);
    sqlite3_str_appendf(s, "INSERT INTO %s", pTab->zRemote);
    if( nCol==0 ){
      sqlite3_str_appendall(s, " DEFAULT VALUES");
    }else{
      sqlite3_str_appendall(s, " (");
      for(i=0; i<pTab->nCol; i++){
        if( mCol & ((u64)1<<i) ){
          if( n++ ) sqlite3_str_appendall(s, ", ");
          pgQuoteIdent(s, pTab->aCol[i].zName, -1);
        }
      }
      sqlite3_str_appendall(s, ") VALUES ");
    }
    b->zPrefix = sqlite3_str_finish(s);
    if( b->zPrefix==0 ) return SQLITE_NOMEM;
    b->pTab = pTab;
    b->mCol = mCol;
    b->nCol = nCol;
  }
  for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
    if( mCol & ((u64)1<<i) ){
      rc = pgWriteParam(&b->params, &pTab->aCol[i], aVal[i], pzErr);
    }
  }
  /* An integer key given: it is the new row's rowid, as in SQLite. */
  if( pTab->iPk>=0 && pTab->aCol[pTab->iPk].eKind==PG_INT
   && sqlite3_value_type(aVal[pTab->iPk])==SQLITE_INTEGER ){
    *piRowid = sqlite3_value_int64(aVal[pTab->iPk]);
  }
  if( rc!=SQLITE_OK ){
    /* Drop the half-added row: no partial row is ever sent. */
    b->params.n -= b->params.n % (b->nCol ? b->nCol : 1);
    if( b->nRow==0 ) batchClear(b);
    return rc;
  }
  b->nRow++;

  if( bReturning ){
    sqlite3_str *s = sqlite3_str_new(0);
    PGresult *pRes = 0;
    char *zSql;
    sqlite3_str_appendall(s, b->zPrefix);
    if( nCol>0 ){
      int n = 0;
      sqlite3_str_appendchar(s, 1, '(');
      for(i=0; i<pTab->nCol; i++){
        if( mCol & ((u64)1<<i) ){
          if( n ) sqlite3_str_appendall(s, ", ");
          pgWritePlaceholder(s, &pTab->aCol[i], ++n);
        }
      }
      sqlite3_str_appendchar(s, 1, ')');
    }
    sqlite3_str_appendall(s, " RETURNING ");
    pgQuoteIdent(s, pTab->aCol[pTab->iPk].zName, -1);
    zSql = sqlite3_str_finish(s);
    b->nRow = 0;
    if( zSql==0 ){
      batchClear(b);
      return SQLITE_NOMEM;
    }
    rc = pgExec(p, zSql, &b->params, &pRes, pzErr);
    sqlite3_free(zSql);
    batchClear(b);
    if( rc==SQLITE_OK && PQntuples(pRes)==1 ){
      fedParseInt64(PQgetvalue(pRes, 0, 0), -1, piRowid);
    }
    PQclear(pRes);
    return rc;
  }
  if( b->nRow>=nBatch ) return pgFlush(&p->base, pzErr);
  /* A batch that will go by COPY streams into it from its 100th row on,
  ** after BEGIN (sent now if owed): the server inserts while SQLite
  ** produces.  Nothing is reported here: the batch reports its outcome
  ** when it is sent, as before. */
  if( b->nCopied>0 ){
    rc = pgCopyMore(p);
  }else if( b->nRow>=PG_COPY_MIN && b->zCopyErr==0
         && (p->bOpen || p->bBeginPending) && p->zDoom==0 ){
    char *zErr = 0;
    int bCopy = 0;
    rc = pgCopyExact(p, &zErr, &bCopy);
    if( rc==SQLITE_OK && bCopy ){
      rc = pgCopyStart(p);
    }else if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
      b->zCopyErr = zErr;       /* The check failed: the send reports it */
      zErr = 0;
    }
    sqlite3_free(zErr);
  }
  if( rc==SQLITE_NOMEM && b->nCopied>0 ){
    /* Part of a row may be in the COPY: abandon it; the send reports. */
    pgCopyAbort(p);
    b->zCopyErr = sqlite3_mprintf("%s: out of memory while sending"
                                  " buffered rows", PG_STORE);
  }
  if( PQstatus(p->pg)!=CONNECTION_OK
   && (b->zCopyErr || (pWaitPg==p->pg && zWaitErr)) ){
    /* The server stopped answering while the batch went into a COPY, and
    ** pgResult() or pgPush() closed the connection: say so now, not as a
    ** lost connection at the next row. */
    if( b->zCopyErr ){
      fedSetError(pzErr, "%s", b->zCopyErr);
      sqlite3_free(b->zCopyErr);
      b->zCopyErr = 0;
    }else{
      char *zCopy = pgCopyCommand(b);
      pgSetError(pzErr, p->pg, 0, zCopy ? zCopy : "COPY");
      sqlite3_free(zCopy);
    }
    b->nCopied = 0;
    return SQLITE_ERROR;
  }
  /* The row is in the batch either way: its send reports the outcome. */
  return SQLITE_OK;
}

static int pgUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  PgConn *p = (PgConn*)pTab->pServer->pConn;
  PgParams params;
  sqlite3_str *s;
  char *zSql = 0;
  int i, n = 0, rc;

  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( argc>1 && sqlite3_value_type(argv[0])==SQLITE_NULL ){
    if( pTab->iPk<0 && sqlite3_value_type(argv[1])!=SQLITE_NULL ){
      fedSetError(pzErr, "%s: cannot set the rowid of table \"%s\"",
                  PG_STORE, pTab->zName);
      return SQLITE_ERROR;
    }
    return pgInsert(p, pTab, &argv[2], piRowid, pzErr);
  }
  if( pTab->iPk<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no single-column primary key;"
        " UPDATE and DELETE need one (declare it in columns= with"
        " \"primary key\")", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    fedSetError(pzErr, "%s: row of table \"%s\" has a NULL primary key;"
                " cannot UPDATE or DELETE it", PG_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  rc = pgFlush(&p->base, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  memset(&params, 0, sizeof(params));
  s = sqlite3_str_new(0);
  if( argc==1 ){
    sqlite3_str_appendf(s, "DELETE FROM %s WHERE ", pTab->zRemote);
  }else{
    sqlite3_str_appendf(s, "UPDATE %s SET ", pTab->zRemote);
    for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
      sqlite3_value *pVal = argv[2+i];
      if( sqlite3_value_nochange(pVal) ) continue;
      if( i==pTab->iPk && sqlite3_value_type(pVal)==sqlite3_value_type(argv[0])
       && sqlite3_value_bytes(pVal)==sqlite3_value_bytes(argv[0])
       && memcmp(valueBytes(pVal), valueBytes(argv[0]),
                 sqlite3_value_bytes(pVal))==0 ){
        continue;               /* Key unchanged */
      }
      if( n++ ) sqlite3_str_appendall(s, ", ");
      pgQuoteIdent(s, pTab->aCol[i].zName, -1);
      sqlite3_str_appendall(s, " = ");
      rc = pgWriteParam(&params, &pTab->aCol[i], pVal, pzErr);
      pgWritePlaceholder(s, &pTab->aCol[i], params.n);
    }
    if( n==0 ){
      /* Nothing changes: no round trip. */
      sqlite3_free(sqlite3_str_finish(s));
      paramsFree(&params);
      return rc;
    }
    sqlite3_str_appendall(s, " WHERE ");
  }
  pgQuoteIdent(s, pTab->aCol[pTab->iPk].zName, -1);
  sqlite3_str_appendall(s, " = ");
  if( rc==SQLITE_OK ){
    rc = pgWriteParam(&params, &pTab->aCol[pTab->iPk], argv[0], pzErr);
  }
  pgWritePlaceholder(s, &pTab->aCol[pTab->iPk], params.n);
  zSql = sqlite3_str_finish(s);
  if( zSql==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK ) rc = pgExec(p, zSql, &params, 0, pzErr);
  sqlite3_free(zSql);
  paramsFree(&params);
  return rc;
}

/**************************************************************************
** Transactions.
*/
/*
** Outside BEGIN...COMMIT a write only owes a BEGIN: if the transaction
** turns out to be nothing but buffered INSERT rows, they go as one
** multi-row INSERT, atomic by itself, in a single round trip.
*/
static int pgBegin(FedConn *pConn, int bSnapshot, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int rc;
  if( !bSnapshot ){
    p->bBeginPending = 1;
    return SQLITE_OK;
  }
  rc = pgExecSimple(p, "BEGIN ISOLATION LEVEL REPEATABLE READ", pzErr);
  if( rc==SQLITE_OK ) p->bOpen = 1;
  return rc;
}

static void pgCopyAbort(PgConn *p);
static void pgTxnEnd(PgConn *p){
  pgCopyAbort(p);
  batchClear(&p->batch);
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  sqlite3_free(p->zCopyRel);
  p->zCopyRel = 0;
  p->bBeginPending = 0;
  p->bOpen = 0;
}

static int pgCommit(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes;
  i64 iSeq;
  int rc = SQLITE_OK;
  pgConnIdle(p);
  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  if( p->bBeginPending ){
    /* Nothing sent yet: the batch is the whole transaction, atomic as one
    ** statement. */
    p->bBeginPending = 0;
    rc = p->batch.nRow>0 ? pgFlushBatch(p, pzErr) : SQLITE_OK;
    pgTxnEnd(p);
    return rc;
  }
  if( !p->bOpen ) return SQLITE_OK;
  rc = p->batch.nRow>0 ? pgFlushBatch(p, pzErr) : SQLITE_OK;
  if( rc==SQLITE_OK && !pgIsAlive(pConn) ){
    fedSetError(pzErr, "%s: connection to server \"%s\" was lost inside a"
        " transaction; its remote changes were rolled back", PG_STORE,
        p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ) rc = pgAborted(p, pzErr);
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_COMMIT, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, "COMMIT", 0);
  pRes = pgExecWait(p, "COMMIT");
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    if( PQstatus(p->pg)!=CONNECTION_OK ){
      fedSetError(pzErr, "%s: connection to server \"%s\" was lost during"
          " COMMIT: the transaction may or may not have committed there",
          PG_STORE, p->base.pServer->zName);
    }else{
      pgSetError(pzErr, p->pg, pRes, "COMMIT");
    }
    rc = SQLITE_ERROR;
  }else if( strcmp(PQcmdStatus(pRes), "ROLLBACK")==0 ){
    /* The server had already failed the transaction. */
    fedSetError(pzErr, "%s: the remote transaction on server \"%s\" had"
        " failed and was rolled back", PG_STORE, p->base.pServer->zName);
    rc = SQLITE_ERROR;
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  pgTxnEnd(p);
  return rc;
}

static int pgRollback(FedConn *pConn, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  int bOpen = p->bOpen;
  pgTxnEnd(p);
  if( !bOpen || PQstatus(p->pg)!=CONNECTION_OK ) return SQLITE_OK;
  if( fedFault(FED_FAULT_ROLLBACK, pzErr) ) return SQLITE_ERROR;
  return pgExecRaw(p, "ROLLBACK", pzErr);
}

/*
** Two-phase commit.  PREPARE TRANSACTION ends the session's transaction:
** the server keeps it, under zGid, until COMMIT PREPARED or ROLLBACK
** PREPARED from any session (max_prepared_transactions must be > 0).
*/
static int pgPrepare(FedConn *pConn, const char *zGid, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  char *zSql;
  int rc = pgReady(p, pzErr);             /* an owed BEGIN goes first */
  if( rc==SQLITE_OK && p->batch.nRow>0 ) rc = pgFlushBatch(p, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zSql = sqlite3_mprintf("PREPARE TRANSACTION '%q'", zGid);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = pgExecRaw(p, zSql, pzErr);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    pgTxnEnd(p);
  }else if( *pzErr && strstr(*pzErr, "max_prepared_transactions") ){
    fedSetError(pzErr, "%s: server \"%s\" cannot take part in a"
        " transaction across servers: its max_prepared_transactions is 0"
        " (set it above 0 in postgresql.conf)", PG_STORE,
        p->base.pServer->zName);
  }
  return rc;
}

static int pgResolve(FedConn *pConn, const char *zGid, int bCommit,
                     char **pzErr){
  PgConn *p = (PgConn*)pConn;
  PGresult *pRes;
  char *zSql;
  i64 iSeq;
  int rc = SQLITE_OK;
  pgConnIdle(p);
  if( PQstatus(p->pg)!=CONNECTION_OK ){
    fedSetError(pzErr, "%s: server \"%s\" is not connected", PG_STORE,
                p->base.pServer->zName);
    return SQLITE_ERROR;
  }
  zSql = sqlite3_mprintf("%s PREPARED '%q'", bCommit ? "COMMIT" : "ROLLBACK",
                         zGid);
  if( zSql==0 ) return SQLITE_NOMEM;
  iSeq = fedExplainAdd(pgCtx(p), p->base.pServer->zName, zSql, 0);
  pRes = pgExecWait(p, zSql);
  if( PQresultStatus(pRes)!=PGRES_COMMAND_OK ){
    const char *zState = PQresultErrorField(pRes, PG_DIAG_SQLSTATE);
    /* 42704: no such prepared transaction: resolved already. */
    if( zState==0 || strcmp(zState, "42704")!=0 ){
      pgSetError(pzErr, p->pg, pRes, zSql);
      rc = SQLITE_ERROR;
    }
  }
  fedExplainRows(pgCtx(p), iSeq, 0, 1);
  PQclear(pRes);
  sqlite3_free(zSql);
  return rc;
}

/* Wait, up to 10 s, while another session of this database is running a
** PREPARE TRANSACTION of an id that starts with zPrefix: a coordinator
** that died right after sending it leaves the statement running, and its
** id appears in pg_prepared_xacts only when it ends (fed_recover() would
** miss it and leave it prepared until its next run). */
static int pgWaitPrepares(PgConn *p, const char *zPrefix, char **pzErr){
  int nTry, rc = SQLITE_OK;
  for(nTry=0; rc==SQLITE_OK && nTry<100; nTry++){
    PgParams params;
    PGresult *pRes = 0;
    int bBusy = 0;
    memset(&params, 0, sizeof(params));
    rc = paramsAdd(&params, zPrefix, -1, 0);
    if( rc==SQLITE_OK ){
      rc = pgExec(p, "SELECT count(*) FROM pg_stat_activity WHERE"
          " pid <> pg_backend_pid() AND datname = current_database()"
          " AND state = 'active' AND left(query, 21 + length($1))"
          " = 'PREPARE TRANSACTION ''' || $1", &params, &pRes, pzErr);
    }
    paramsFree(&params);
    if( rc==SQLITE_OK ){
      bBusy = PQntuples(pRes)==1 && atoi(PQgetvalue(pRes, 0, 0))>0;
      PQclear(pRes);
    }
    if( !bBusy ) break;
    sqlite3_sleep(100);
  }
  return rc;
}

static int pgListPrepared(
  FedConn *pConn, const char *zPrefix, int nMinAge, char ***pazGid, int *pn,
  char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **az = 0;
  int i, n, rc;
  *pazGid = 0;
  *pn = 0;
  if( nMinAge==0 ){
    /* fed_recover(), which waits for no grace period. */
    rc = pgWaitPrepares(p, zPrefix, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  memset(&params, 0, sizeof(params));
  rc = paramsAdd(&params, zPrefix, -1, 0);
  if( rc==SQLITE_OK ) rc = paramsAddInt(&params, nMinAge);
  if( rc==SQLITE_OK ){
    rc = pgExec(p, "SELECT gid FROM pg_prepared_xacts WHERE"
        " database = current_database() AND left(gid, length($1)) = $1"
        " AND prepared <= now() - make_interval(secs => $2) ORDER BY gid",
        &params, &pRes, pzErr);
  }
  paramsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  n = PQntuples(pRes);
  if( n>0 ){
    az = sqlite3_malloc64(sizeof(char*)*n);
    if( az==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<n; i++){
    az[i] = fedStrdup(PQgetvalue(pRes, i, 0), -1);
    if( az[i]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    while( i>0 ) sqlite3_free(az[--i]);
    sqlite3_free(az);
    return rc;
  }
  *pazGid = az;
  *pn = n;
  return SQLITE_OK;
}

static int pgSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
){
  sqlite3_str *s = sqlite3_str_new(0);
  char *zSql;
  int i, rc;
  if( iRelease>=0 ){
    sqlite3_str_appendf(s, "RELEASE SAVEPOINT fed_sp_%d; ", iRelease);
  }
  for(i=iFrom; i<iTo; i++){
    sqlite3_str_appendf(s, "SAVEPOINT fed_sp_%d%s", i, i+1<iTo ? "; " : "");
  }
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = fedFault(FED_FAULT_SAVEPOINT, pzErr);
  if( rc==SQLITE_OK ) rc = pgExecSimple((PgConn*)pConn, zSql, pzErr);
  sqlite3_free(zSql);
  return rc;
}

static int pgRelease(FedConn *pConn, int iLevel, char **pzErr){
  char zSql[64];
  sqlite3_snprintf(sizeof(zSql), zSql, "RELEASE SAVEPOINT fed_sp_%d", iLevel);
  return pgExecSimple((PgConn*)pConn, zSql, pzErr);
}

static int pgRollbackTo(FedConn *pConn, int iLevel, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  char zSql[64];
  pgCopyAbort(p);
  batchClear(&p->batch);
  sqlite3_snprintf(sizeof(zSql), zSql, "ROLLBACK TO SAVEPOINT fed_sp_%d",
                   iLevel);
  /* Rows buffered (and a batch that failed) came after the savepoint. */
  sqlite3_free(p->zDoom);
  p->zDoom = 0;
  if( fedFault(FED_FAULT_SAVEPOINT, pzErr) ) return SQLITE_ERROR;
  return pgExecRaw(p, zSql, pzErr);
}

/**************************************************************************
** Pass-through and catalog.
*/

/* Append one result value as JSON, typed by its PostgreSQL type oid. */
static void pgJsonValue(sqlite3_str *s, PGresult *pRes, int iRow, int iCol){
  const char *z;
  if( PQgetisnull(pRes, iRow, iCol) ){
    sqlite3_str_appendall(s, "null");
    return;
  }
  z = PQgetvalue(pRes, iRow, iCol);
  switch( PQftype(pRes, iCol) ){
    case 20: case 21: case 23: case 26:         /* int8 int2 int4 oid */
      sqlite3_str_appendall(s, z);
      break;
    case 700: case 701: case 1700:              /* float4 float8 numeric */
      if( z[0]=='N' || z[0]=='I' || (z[0]=='-' && z[1]=='I') ){
        fedJsonQuote(s, z, -1);
      }else{
        sqlite3_str_appendall(s, z);
      }
      break;
    case 16:                                    /* bool */
      sqlite3_str_appendall(s, z[0]=='t' ? "true" : "false");
      break;
    case 114: case 3802:                        /* json jsonb */
      sqlite3_str_appendall(s, z);
      break;
    case 1184: case 1266: {                     /* timestamptz timetz */
      int n = PQgetlength(pRes, iRow, iCol);
      if( n>=3 && strcmp(&z[n-3], "+00")==0 ){
        /* As table reads give it: "+00:00" */
        sqlite3_str_appendf(s, "\"%s:00\"", z);
        break;
      }
      fedJsonQuote(s, z, n);
      break;
    }
    default:
      fedJsonQuote(s, z, PQgetlength(pRes, iRow, iCol));
  }
}

/*
** Transaction control in pass-through text.  The coordinator (txn.c) owns
** the remote transaction: a BEGIN sent behind its back would make the
** writes after it vanish at COMMIT, a COMMIT would break atomicity.  Each
** statement of zSql (split at top-level semicolons: quotes, E'' strings,
** "identifiers", $tag$ bodies$tag$ and comments are skipped) is looked at
** by its leading words.  Returns the refused command as written in the
** error ("BEGIN", "PREPARE TRANSACTION", ...), or NULL.
*/
static const char *pgSkipBlank(const char *z){
  while( 1 ){
    if( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' || *z=='\f'
     || *z=='\v' ){
      z++;
    }else if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      int nDepth = 1;
      z += 2;
      while( *z && nDepth>0 ){
        if( z[0]=='/' && z[1]=='*' ){ nDepth++; z += 2; }
        else if( z[0]=='*' && z[1]=='/' ){ nDepth--; z += 2; }
        else z++;
      }
    }else{
      return z;
    }
  }
}

static int pgIsWordChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || (c&0x80)!=0;
}

/* If the word at z (after blanks) is zWord, the text after it, else 0. */
static const char *pgWord(const char *z, const char *zWord){
  int n = (int)strlen(zWord);
  z = pgSkipBlank(z);
  if( sqlite3_strnicmp(z, zWord, n)==0 && !pgIsWordChar(z[n]) ) return z+n;
  return 0;
}

static const char *pgStatementControl(const char *z){
  static const char *const azOne[] = {
    "BEGIN", "START", "COMMIT", "END", "ABORT", "ROLLBACK", "SAVEPOINT",
    "RELEASE", 0
  };
  const char *z2;
  int i;
  for(i=0; azOne[i]; i++){
    if( pgWord(z, azOne[i]) ) return azOne[i];
  }
  if( (z2 = pgWord(z, "PREPARE"))!=0 && pgWord(z2, "TRANSACTION") ){
    return "PREPARE TRANSACTION";
  }
  if( (z2 = pgWord(z, "SET"))!=0 ){
    if( pgWord(z2, "TRANSACTION") ) return "SET TRANSACTION";
    if( (z2 = pgWord(z2, "SESSION"))!=0 && pgWord(z2, "CHARACTERISTICS") ){
      return "SET SESSION CHARACTERISTICS";
    }
  }
  return 0;
}

static int pgIsTagChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || (c&0x80)!=0;
}

static const char *pgTxnControl(const char *zSql){
  const char *z = zSql;
  const char *zRet = pgStatementControl(z);
  while( zRet==0 && *z ){
    char c = *z;
    if( (c=='-' && z[1]=='-') || (c=='/' && z[1]=='*') ){
      z = pgSkipBlank(z);
    }else if( c=='\'' ){
      /* E'...' (an E that is a word of its own) takes backslash escapes. */
      int bEsc = z>zSql && (z[-1]=='e' || z[-1]=='E')
              && (z-1==zSql || !pgIsWordChar(z[-2]));
      for(z++; *z; z++){
        if( bEsc && *z=='\\' && z[1] ){ z++; continue; }
        if( *z=='\'' ){
          if( z[1]=='\'' ){ z++; continue; }
          break;
        }
      }
      if( *z ) z++;
    }else if( c=='"' ){
      for(z++; *z; z++){
        if( *z=='"' ){
          if( z[1]=='"' ){ z++; continue; }
          break;
        }
      }
      if( *z ) z++;
    }else if( c=='$' ){
      /* $tag$ ... $tag$ (the tag may be empty); $1 is a parameter. */
      int n = 1;
      if( z[1]<'0' || z[1]>'9' ){
        while( pgIsTagChar(z[n]) ) n++;
      }
      if( z[n]=='$' ){
        const char *zEnd = z+n+1;
        n++;
        while( *zEnd && strncmp(zEnd, z, n)!=0 ) zEnd++;
        z = *zEnd ? zEnd+n : zEnd;
      }else{
        z += n;
      }
    }else if( pgIsWordChar(c) ){
      /* A whole word, so that a$b$ is not taken for a dollar quote. */
      while( pgIsWordChar(*z) ) z++;
    }else if( c==';' ){
      z++;
      zRet = pgStatementControl(z);
    }else{
      z++;
    }
  }
  return zRet;
}

/* Split nLine JSON objects, each ended by a newline (which JSON text
** escapes inside strings), into a new array of strings for pgQuery(). */
static int pgSplitRows(const char *zAll, int nLine, char ***pazRow,
                       int *pnRow){
  char **azRow;
  const char *z = zAll;
  int i;
  *pazRow = 0;
  *pnRow = 0;
  if( nLine==0 ) return SQLITE_OK;
  azRow = sqlite3_malloc64(sizeof(char*)*nLine);
  if( azRow==0 ) return SQLITE_NOMEM;
  for(i=0; i<nLine; i++){
    const char *zEnd = strchr(z, '\n');
    int n = (int)(zEnd - z);
    azRow[i] = fedStrdup(z, n);
    if( azRow[i]==0 ){
      while( i>0 ) sqlite3_free(azRow[--i]);
      sqlite3_free(azRow);
      return SQLITE_NOMEM;
    }
    z += n+1;
  }
  *pazRow = azRow;
  *pnRow = nLine;
  return SQLITE_OK;
}

static int pgQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **azRow = 0;
  int i, j, nRow = 0, rc = SQLITE_OK;
  const char *zTuples;

  memset(&params, 0, sizeof(params));
  {
    const char *zCtl = pgTxnControl(zQuery);
    if( zCtl ){
      fedSetError(pzErr, "%s: %s cannot be sent through fed_query or"
          " fed_exec: SQLite's BEGIN, COMMIT, ROLLBACK and SAVEPOINT control"
          " the server's transaction", PG_STORE, zCtl);
      return SQLITE_ERROR;
    }
  }
  rc = pgFlush(pConn, pzErr);
  for(i=0; rc==SQLITE_OK && i<nParam; i++){
    sqlite3_value *v = apParam[i];
    switch( sqlite3_value_type(v) ){
      case SQLITE_NULL: rc = paramsAdd(&params, 0, 0, 0); break;
      case SQLITE_FLOAT: {
        char zBuf[64];
        fedDoubleText(sqlite3_value_double(v), zBuf, sizeof(zBuf));
        rc = paramsAdd(&params, zBuf, -1, 0);
        break;
      }
      case SQLITE_BLOB:
        rc = paramsAdd(&params, valueBytes(v), sqlite3_value_bytes(v), 1);
        break;
      default:
        rc = paramsAdd(&params, (const char*)sqlite3_value_text(v),
                       sqlite3_value_bytes(v), 0);
    }
  }
  if( rc==SQLITE_OK ) rc = pgExec(p, zQuery, &params, &pRes, pzErr);
  paramsFree(&params);
  if( p->pCopyOut ){
    /* COPY ... TO STDOUT: a row per line, gathered by pgCopyOutRead(). */
    int nLine = p->nCopyOut;
    char *zAll = sqlite3_str_finish(p->pCopyOut);
    p->pCopyOut = 0;
    p->nCopyOut = 0;
    if( rc==SQLITE_OK && zAll==0 && nLine>0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ){
      *pnChanged = nLine;
      rc = pgSplitRows(zAll, nLine, pazRow, pnRow);
    }
    sqlite3_free(zAll);
    PQclear(pRes);
    return rc;
  }
  if( rc!=SQLITE_OK ) return rc;
  nRow = PQntuples(pRes);
  zTuples = PQcmdTuples(pRes);
  *pnChanged = zTuples[0] ? atoll(zTuples) : nRow;
  if( nRow>0 ){
    azRow = sqlite3_malloc64(sizeof(char*)*nRow);
    if( azRow==0 ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendchar(s, 1, '{');
    for(j=0; j<PQnfields(pRes); j++){
      if( j ) sqlite3_str_appendchar(s, 1, ',');
      fedJsonQuote(s, PQfname(pRes, j), -1);
      sqlite3_str_appendchar(s, 1, ':');
      pgJsonValue(s, pRes, i, j);
    }
    sqlite3_str_appendchar(s, 1, '}');
    azRow[i] = sqlite3_str_finish(s);
    if( azRow[i]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    for(j=0; j<i; j++) sqlite3_free(azRow[j]);
    sqlite3_free(azRow);
    return rc;
  }
  *pazRow = azRow;
  *pnRow = nRow;
  return SQLITE_OK;
}

static int pgListTables(
  FedConn *pConn, const char *zSchema, char ***pazName, int *pnName,
  char **pzErr
){
  PgConn *p = (PgConn*)pConn;
  PgParams params;
  PGresult *pRes = 0;
  char **az = 0;
  int i, n, rc;
  memset(&params, 0, sizeof(params));
  rc = paramsAdd(&params, zSchema, -1, 0);
  if( rc==SQLITE_OK ){
    rc = pgExec(p, "SELECT c.relname FROM pg_class c JOIN pg_namespace n"
        " ON n.oid=c.relnamespace WHERE n.nspname=$1"
        " AND c.relkind IN ('r','v','m','f','p') ORDER BY c.relname",
        &params, &pRes, pzErr);
  }
  paramsFree(&params);
  if( rc!=SQLITE_OK ) return rc;
  n = PQntuples(pRes);
  if( n==0 ){
    PQclear(pRes);
    *pazName = 0;
    *pnName = 0;
    return SQLITE_OK;
  }
  az = sqlite3_malloc64(sizeof(char*)*2*n);
  if( az==0 ){ PQclear(pRes); return SQLITE_NOMEM; }
  memset(az, 0, sizeof(char*)*2*n);
  for(i=0; i<n && rc==SQLITE_OK; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    const char *zName = PQgetvalue(pRes, i, 0);
    pgQuoteIdent(s, zSchema, -1);
    sqlite3_str_appendchar(s, 1, '.');
    pgQuoteIdent(s, zName, -1);
    az[2*i] = fedStrdup(zName, -1);
    az[2*i+1] = sqlite3_str_finish(s);
    if( az[2*i]==0 || az[2*i+1]==0 ) rc = SQLITE_NOMEM;
  }
  PQclear(pRes);
  if( rc!=SQLITE_OK ){
    for(i=0; i<2*n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    return rc;
  }
  *pazName = az;
  *pnName = n;
  return SQLITE_OK;
}

/**************************************************************************
** Entry points for the fuzz target testfixture/fuzz/fuzz_pg.c (hidden,
** not part of the API): the deparser and the value decoder, which take
** input from SQL and from the server, without a server.
*/
int fedPgFuzzDeparse(
  const char *zColumns, const char *zPlan, int nVal, sqlite3_value **apVal,
  char **pzSql, char **pzParams
){
  FedTable tab;
  FedPlan *pPlan = 0;
  PgParams params;
  int aResCol[FED_MAX_COLUMNS];
  char *zErr = 0;
  int i, rc;
  memset(&tab, 0, sizeof(tab));
  memset(&params, 0, sizeof(params));
  tab.pStore = &fedPostgresStore;
  tab.zName = "t";
  tab.zRemote = "\"t\"";
  *pzSql = *pzParams = 0;
  rc = fedColumnsParse(PG_STORE, zColumns, &tab.aCol, &tab.nCol, &zErr);
  if( rc==SQLITE_OK ) rc = pgColumns(&tab, &zErr);
  if( rc==SQLITE_OK ) rc = fedPlanDecode(zPlan, &pPlan);
  /* Only plans the planner could make: orderable columns, pushable terms
  ** (others become IS NULL), and no IN list, whose value only SQLite's
  ** xFilter can give. */
  for(i=0; rc==SQLITE_OK && i<pPlan->nOrder; i++){
    if( pPlan->aOrderCol[i]>=tab.nCol
     || !pgOrderable(&tab, pPlan->aOrderCol[i], 0) ){
      rc = SQLITE_CORRUPT_VTAB;
    }
  }
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    FedPlanTerm *t = &pPlan->aTerm[i];
    if( t->op==FED_OP_IN ) t->op = FED_OP_EQ;
    if( t->iCol>=0 && t->iCol<tab.nCol
     && pgPushable(&tab, t->iCol, t->op, 0)==FED_PUSH_NO ){
      t->op = FED_OP_ISNULL;
    }
  }
  if( rc==SQLITE_OK ){
    rc = pgDeparseSelect(&tab, pPlan, nVal, apVal, 0, aResCol, pzSql,
                         &params);
  }
  if( rc==SQLITE_OK ){
    /* A kept SELECT reused for the same values must give the same text
    ** and bind the same values. */
    PgParams again;
    PgSelect *pSel;
    int rc2 = SQLITE_OK;
    memset(&again, 0, sizeof(again));
    pgSelectKeep(&tab, pPlan, nVal, apVal, 0, aResCol, *pzSql);
    pSel = pgSelectFind(&tab, pPlan, nVal, apVal, 0, &again, &rc2);
    if( pSel && rc2==SQLITE_OK ){
      int k;
      assert( strcmp(pSel->zSql, *pzSql)==0 );
      assert( again.n==params.n );
      for(k=0; k<again.n; k++){
        assert( again.aLen[k]==params.aLen[k] && again.aFmt[k]==params.aFmt[k] );
        assert( (again.aOff[k]<0)==(params.aOff[k]<0) );
        assert( again.aOff[k]<0 || memcmp(&again.aBuf[again.aOff[k]],
                          &params.aBuf[params.aOff[k]], params.aLen[k])==0 );
      }
    }
    paramsFree(&again);
    pgTableFree(&tab);
  }
  if( rc==SQLITE_OK ) *pzParams = paramsJson(&params);
  paramsFree(&params);
  fedPlanFree(pPlan);
  fedColumnsFree(tab.aCol, tab.nCol);
  sqlite3_free(zErr);
  return rc;
}

void fedPgFuzzValue(sqlite3_context *ctx, const char *zType, const char *z,
                    int n){
  FedColumn col;
  memset(&col, 0, sizeof(col));
  col.zName = "c";
  col.zType = (char*)zType;
  col.eKind = pgKindOf(zType);
  pgValue(ctx, &col, z, n);
}

/*
** Cache invalidation (cache.c): fed_cache_watch() installs a statement
** trigger that sends NOTIFY fed_cache with the table's remote name after
** every change by anyone; the connection LISTENs, and pgChanges() hands
** the names over without blocking.
*/
static int pgWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  sqlite3_str *s;
  char *zSql, *zLit;
  int rc = SQLITE_OK;
  if( pTab ){
    if( p->base.bTxn ){
      fedSetError(pzErr, "%s: cannot install the cache trigger of \"%s\""
          " inside a transaction", PG_STORE, pTab->zName);
      return SQLITE_ERROR;
    }
    zLit = PQescapeLiteral(p->pg, pTab->zRemote, strlen(pTab->zRemote));
    if( zLit==0 ) return SQLITE_NOMEM;
    s = sqlite3_str_new(0);
    sqlite3_str_appendall(s,
        "CREATE OR REPLACE FUNCTION public.fed_cache_notify() RETURNS trigger"
        " LANGUAGE plpgsql AS $fed$BEGIN"
        " PERFORM pg_notify('fed_cache', TG_ARGV[0]); RETURN NULL;"
        " END$fed$; CREATE OR REPLACE TRIGGER fed_cache_notify AFTER INSERT"
        " OR UPDATE OR DELETE OR TRUNCATE ON ");
    sqlite3_str_appendall(s, pTab->zRemote);
    sqlite3_str_appendf(s, " FOR EACH STATEMENT EXECUTE FUNCTION"
        " public.fed_cache_notify(%s)", zLit);
    PQfreemem(zLit);
    zSql = sqlite3_str_finish(s);
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = pgExecSimple(p, zSql, pzErr);
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK && p->base.iListen==0 ){
    rc = pgExecSimple(p, "LISTEN fed_cache", pzErr);
    if( rc==SQLITE_OK ) p->base.iListen = 1;
  }
  return rc;
}

static int pgChanges(FedConn *pConn, char ***pazRel, int *pnRel){
  PgConn *p = (PgConn*)pConn;
  *pazRel = 0;
  *pnRel = 0;
  if( p->pg==0 ) return SQLITE_OK;
  if( p->pActive==0 ){
    struct pollfd fd;
    fd.fd = PQsocket(p->pg);
    fd.events = POLLIN;
    fd.revents = 0;
    if( fd.fd>=0 && poll(&fd, 1, 0)>0 ) PQconsumeInput(p->pg);
  }
  pgTakeNotes(p);
  *pazRel = p->azNote;
  *pnRel = p->nNote;
  p->azNote = 0;
  p->nNote = 0;
  return SQLITE_OK;
}

const FedStore fedPostgresStore = {
  PG_STORE,
  FED_TXN_2PC,
  azPgTableOpt,
  azPgServerOpt,
  pgConnect,
  pgDisconnect,
  pgIsAlive,
  pgDescribe,
  pgColumns,
  pgPushable,
  pgOrderable,
  pgOpen,
  pgClose,
  pgFilter,
  pgNext,
  pgEof,
  pgColumn,
  pgRowid,
  pgUpdate,
  pgFlush,
  pgBegin,
  pgCommit,
  pgRollback,
  pgSavepoint,
  pgRelease,
  pgRollbackTo,
  pgQuery,
  pgListTables,
  pgTableFree,
  pgServerCheck,
  pgPrepare,
  pgResolve,
  pgListPrepared,
  0, 0, 0,                      /* commit markers: not a last resource */
  0, 0,                         /* undo images: two-phase commit instead */
  pgWatch,
  pgChanges,
  0                             /* pKv: no key-value capability */
};
