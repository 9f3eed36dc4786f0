/*
** conn.c: connections of the MariaDB/MySQL store: the DSN
** ("host=H port=P dbname=D user=U", or socket=PATH), the password (only
** from password_env or the client's option files: option_group=NAME),
** every wait over libmariadb's non-blocking API bounded by
** connect_timeout/command_timeout and ended by sqlite3_interrupt(), the
** session settings every answer depends on (UTC, utf8mb4, a fixed
** sql_mode), running commands (recorded in fed_explain, through the
** fault sites).  txn.c has the transactions.
*/
#include "myInt.h"
#include <mysql.h>
#include <errmsg.h>
#include <string.h>
#include <stdlib.h>

/* The session: UTC (TIMESTAMP values), utf8mb4, an sql_mode in which
** || is OR, '\' escapes in literals and LIKE, as deparse.c assumes, and
** sorts by whole values up to 64 KiB (deparse.c, myOrderOk()). */
#define MY_SESSION_SQL \
  "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES'," \
  " div_precision_increment = 4, max_sort_length = 65536"

/**************************************************************************
** Waiting.  A non-blocking call returns the events it waits for; this
** waits for them (bounded by iDeadline, ended by an interrupt) and returns
** what happened, or -1 when the wait was cut short (*pzWhy says why).
*/
static int myWait(MyConn *p, int status, i64 iDeadline, const char **pzWhy){
  MYSQL *m = (MYSQL*)p->my;
  sqlite3 *db = myCtx(p)->db;
  i64 iEnd = iDeadline;
  int bLibTimeout = 0, e, bWrite;
  if( status & MYSQL_WAIT_TIMEOUT ){
    i64 iLib = fedNowMs() + mysql_get_timeout_value_ms(m);
    if( iEnd==0 || iLib<iEnd ){ iEnd = iLib; bLibTimeout = 1; }
  }
  bWrite = (status & MYSQL_WAIT_WRITE) ? ((status & MYSQL_WAIT_READ) ? 2 : 1)
                                       : 0;
  e = fedWaitFd(db, mysql_get_socket(m), bWrite, iEnd);
  if( e==FED_WAIT_READY ){
    return status & (MYSQL_WAIT_READ|MYSQL_WAIT_WRITE|MYSQL_WAIT_EXCEPT);
  }
  if( e==FED_WAIT_TIMEOUT && bLibTimeout ) return MYSQL_WAIT_TIMEOUT;
  *pzWhy = e==FED_WAIT_INTERRUPT ? "interrupted" : "timeout";
  p->bDead = 1;
  return -1;
}

static i64 myDeadline(MyConn *p){
  return p->nCmdTimeoutMs>0 ? fedNowMs() + p->nCmdTimeoutMs : 0;
}

/* The error of the last call on p, for operation zOp; *pzWhy when a wait
** was cut short. */
static void mySetError(MyConn *p, char **pzErr, const char *zOp,
                       const char *zWhy, const char *zSql){
  MYSQL *m = (MYSQL*)p->my;
  /* A batch of INSERT rows can be long: its first 400 bytes say which. */
  int nSql = zSql ? (int)strlen(zSql) : 0;
  char *zRemote = zSql ? sqlite3_mprintf(" (remote request: %.*s%s)",
      nSql>400 ? 400 : nSql, zSql, nSql>400 ? " ..." : "") : 0;
  if( zWhy && strcmp(zWhy, "interrupted")==0 ){
    fedSetError(pzErr, "%s: %s on server \"%s\": interrupted; the connection"
        " was closed%s", MY_STORE, zOp, p->base.pServer->zName,
        zRemote ? zRemote : "");
  }else if( zWhy ){
    fedSetError(pzErr, "%s: %s on server \"%s\": no answer within %lld s"
        " (command_timeout); the connection was closed%s", MY_STORE, zOp,
        p->base.pServer->zName, p->nCmdTimeoutMs/1000,
        zRemote ? zRemote : "");
  }else{
    unsigned int e = mysql_errno(m);
    if( e==CR_SERVER_GONE_ERROR || e==CR_SERVER_LOST || e==CR_CONN_HOST_ERROR
     || e==CR_CONNECTION_ERROR ){
      p->bDead = 1;
    }
    fedSetError(pzErr, "%s: %s on server \"%s\": %s (%u)%s", MY_STORE, zOp,
        p->base.pServer->zName, mysql_error(m), e, zRemote ? zRemote : "");
  }
  sqlite3_free(zRemote);
}

/**************************************************************************
** The DSN: space-separated key=value pairs (value optionally quoted).
*/
typedef struct MyDsn MyDsn;
struct MyDsn {
  char *zHost, *zDb, *zUser, *zSocket;
  unsigned int iPort;
};

static void myDsnFree(MyDsn *d){
  sqlite3_free(d->zHost);
  sqlite3_free(d->zDb);
  sqlite3_free(d->zUser);
  sqlite3_free(d->zSocket);
}

static int myDsnParse(FedServer *pServer, MyDsn *d, char **pzErr){
  const char *z = pServer->zDsn;
  memset(d, 0, sizeof(*d));
  d->iPort = 3306;
  while( *z ){
    const char *zKey, *zVal;
    int nKey, nVal;
    char *zCopy, **pz = 0;
    while( *z==' ' || *z=='\t' ) z++;
    if( *z==0 ) break;
    zKey = z;
    while( *z && *z!='=' && *z!=' ' ) z++;
    nKey = (int)(z - zKey);
    if( *z!='=' ){
      fedSetError(pzErr, "%s: server \"%s\": bad connection string at"
          " \"%.*s\": expected key=value", MY_STORE, pServer->zName, nKey,
          zKey);
      return SQLITE_ERROR;
    }
    z++;
    if( *z=='\'' || *z=='"' ){
      char q = *z++;
      zVal = z;
      while( *z && *z!=q ) z++;
      nVal = (int)(z - zVal);
      if( *z ) z++;
    }else{
      zVal = z;
      while( *z && *z!=' ' && *z!='\t' ) z++;
      nVal = (int)(z - zVal);
    }
    if( nKey==4 && sqlite3_strnicmp(zKey, "host", 4)==0 ) pz = &d->zHost;
    else if( nKey==6 && sqlite3_strnicmp(zKey, "dbname", 6)==0 ) pz = &d->zDb;
    else if( nKey==4 && sqlite3_strnicmp(zKey, "user", 4)==0 ) pz = &d->zUser;
    else if( nKey==6 && sqlite3_strnicmp(zKey, "socket", 6)==0 ){
      pz = &d->zSocket;
    }else if( nKey==4 && sqlite3_strnicmp(zKey, "port", 4)==0 ){
      i64 v = 0;
      if( fedParseInt64(zVal, nVal, &v) || v<1 || v>65535 ){
        fedSetError(pzErr, "%s: server \"%s\": port must be 1..65535, not"
            " \"%.*s\"", MY_STORE, pServer->zName, nVal, zVal);
        return SQLITE_ERROR;
      }
      d->iPort = (unsigned int)v;
      continue;
    }else{
      fedSetError(pzErr, "%s: server \"%s\": unknown connection string key"
          " \"%.*s\" (known: host, port, dbname, user, socket)", MY_STORE,
          pServer->zName, nKey, zKey);
      return SQLITE_ERROR;
    }
    zCopy = fedStrdup(zVal, nVal);
    if( zCopy==0 ) return SQLITE_NOMEM;
    sqlite3_free(*pz);
    *pz = zCopy;
  }
  return SQLITE_OK;
}

int fedMyServerCheck(FedServer *pServer, char **pzErr){
  MyDsn d;
  i64 v;
  int rc = myDsnParse(pServer, &d, pzErr);
  myDsnFree(&d);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600, &v,
                      MY_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "command_timeout", 300, 0, 86400, &v,
                      MY_STORE, pzErr);
  }
  return rc;
}

/**************************************************************************
** Connect and disconnect.
*/
void fedMyDisconnect(FedConn *pConn){
  MyConn *p = (MyConn*)pConn;
  if( p==0 ) return;
  if( p->pActive ){
    /* Its result goes with the connection, unread. */
    MYSQL_RES *r = (MYSQL_RES*)p->pActive->pRes;
    if( r ){
      r->handle = 0;
      mysql_free_result(r);
      p->pActive->pRes = 0;
    }
    p->pActive->pConn = 0;
    p->pActive = 0;
  }
  if( p->my ) mysql_close((MYSQL*)p->my);
  fedMyBatchClear(&p->batch);
  sqlite3_free(p->zDoom);
  sqlite3_free(p);
}

int fedMyIsAlive(FedConn *pConn){
  MyConn *p = (MyConn*)pConn;
  return p->my!=0 && !p->bDead;
}

int fedMyConnect(FedServer *pServer, FedConn **ppConn, char **pzErr){
  MyDsn d;
  const char *zPwEnv = 0, *zPw = 0, *zWhy = 0;
  const char *zGroup = fedConfigGet(pServer->pOpt, "option_group");
  i64 iTimeout = 10, iCmd = 300, iDeadline;
  MyConn *p = 0;
  MYSQL *m, *pRet = 0;
  int rc, status;

  *ppConn = 0;
  rc = myDsnParse(pServer, &d, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "connect_timeout", 10, 1, 3600,
                      &iTimeout, MY_STORE, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pServer->pOpt, "command_timeout", 300, 0, 86400, &iCmd,
                      MY_STORE, pzErr);
  }
  if( rc==SQLITE_OK ) rc = fedServerPasswordEnv(pServer, &zPwEnv, pzErr);
  if( rc==SQLITE_OK && zPwEnv ){
    zPw = getenv(zPwEnv);
    if( zPw==0 ){
      fedSetError(pzErr, "%s: server \"%s\": environment variable %s (named"
          " by password_env) is not set", MY_STORE, pServer->zName, zPwEnv);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ) rc = fedFault(FED_FAULT_CONNECT, pzErr);
  if( rc==SQLITE_OK ){
    p = sqlite3_malloc64(sizeof(*p));
    if( p==0 ) rc = SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ){
    myDsnFree(&d);
    return rc;
  }
  memset(p, 0, sizeof(*p));
  p->base.pServer = pServer;
  p->nCmdTimeoutMs = iCmd*1000;
  m = mysql_init(0);
  if( m==0 ){
    myDsnFree(&d);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  p->my = m;
  mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if( zGroup ) mysql_options(m, MYSQL_READ_DEFAULT_GROUP, zGroup);
  {
    unsigned int t = (unsigned int)iTimeout;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
  }
  iDeadline = fedNowMs() + iTimeout*1000;
  status = mysql_real_connect_start(&pRet, m, d.zHost, d.zUser, zPw, d.zDb,
                                    d.zSocket ? 0 : d.iPort, d.zSocket,
                                    CLIENT_FOUND_ROWS);
  while( status ){
    status = myWait(p, status, iDeadline, &zWhy);
    if( status<0 ) break;
    status = mysql_real_connect_cont(&pRet, m, status);
  }
  myDsnFree(&d);
  if( pRet==0 ){
    if( zWhy && strcmp(zWhy, "timeout")==0 ){
      fedSetError(pzErr, "%s: cannot connect to server \"%s\": no answer"
          " within %lld s (connect_timeout)", MY_STORE, pServer->zName,
          iTimeout);
    }else if( zWhy ){
      fedSetError(pzErr, "%s: cannot connect to server \"%s\": interrupted",
          MY_STORE, pServer->zName);
    }else{
      fedSetError(pzErr, "%s: cannot connect to server \"%s\": %s",
          MY_STORE, pServer->zName, mysql_error(m));
    }
    fedMyDisconnect(&p->base);
    return SQLITE_ERROR;
  }
  rc = fedMyExec(p, MY_SESSION_SQL, pzErr);
  if( rc!=SQLITE_OK ){
    fedMyDisconnect(&p->base);
    return rc;
  }
  *ppConn = &p->base;
  return SQLITE_OK;
}

/**************************************************************************
** Commands.
*/

/* The connection is needed for another command: the scan streaming on it
** reads the rest of its rows into memory first. */
void fedMyConnIdle(MyConn *p){
  if( p->pActive ) fedMyCursorHold(p->pActive);
}

/* Send zSql with its '?' marks replaced by the values (deparse.c renders
** them), read its result header; *ppRes is the streaming result (NULL for
** a command without rows).  *piSeq is its fed_explain entry. */
static int myQueryStart(MyConn *p, const char *zSql, const char *zOp,
                        int nParam, const char *const *azVal,
                        const int *anVal, void **ppRes, i64 *piSeq,
                        char **pzErr){
  MYSQL *m;
  const char *zWhy = 0;
  i64 iDeadline;
  int status, ret = 0;
  *ppRes = 0;
  *piSeq = 0;
  fedMyConnIdle(p);
  m = (MYSQL*)p->my;
  if( p->bDead || m==0 ){
    fedSetError(pzErr, "%s: %s on server \"%s\": the connection was lost"
        " (remote request: %s)", MY_STORE, zOp, p->base.pServer->zName,
        zSql);
    return SQLITE_ERROR;
  }
  if( nParam>0 ){
    int *aFmt = sqlite3_malloc64(sizeof(int)*nParam);
    if( aFmt==0 ) return SQLITE_NOMEM;
    memset(aFmt, 0, sizeof(int)*nParam);
    *piSeq = fedExplainAddValues(myCtx(p), p->base.pServer->zName, zSql,
                                 nParam, azVal, anVal, aFmt);
    sqlite3_free(aFmt);
  }else{
    *piSeq = fedExplainAdd(myCtx(p), p->base.pServer->zName, zSql, 0);
  }
  if( fedFault(FED_FAULT_SEND, pzErr) ) return SQLITE_ERROR;
  iDeadline = myDeadline(p);
  status = mysql_real_query_start(&ret, m, zSql, (unsigned long)strlen(zSql));
  while( status ){
    status = myWait(p, status, iDeadline, &zWhy);
    if( status<0 ) break;
    status = mysql_real_query_cont(&ret, m, status);
  }
  if( zWhy || ret ){
    mySetError(p, pzErr, zOp, zWhy, zSql);
    return SQLITE_ERROR;
  }
  if( fedFault(FED_FAULT_RECV, pzErr) ){
    p->bDead = 1;
    return SQLITE_ERROR;
  }
  if( mysql_field_count(m)>0 ){
    MYSQL_RES *pRes = mysql_use_result(m);
    if( pRes==0 ){
      mySetError(p, pzErr, zOp, 0, zSql);
      return SQLITE_ERROR;
    }
    *ppRes = pRes;
  }
  return SQLITE_OK;
}

int fedMyQueryStart(MyConn *p, const char *zSql, int nParam,
                    const char *const *azVal, const int *anVal,
                    void **ppRes, i64 *piSeq, char **pzErr){
  return myQueryStart(p, zSql, "query", nParam, azVal, anVal, ppRes, piSeq,
                      pzErr);
}

/* The next row of a streaming result: *pazRow NULL at the end. */
int fedMyFetch(MyConn *p, void *pRes, char ***pazRow,
               unsigned long **panLen, char **pzErr){
  MYSQL *m = (MYSQL*)p->my;
  MYSQL_ROW row = 0;
  const char *zWhy = 0;
  int status;
  i64 iDeadline = myDeadline(p);
  *pazRow = 0;
  *panLen = 0;
  if( p->bDead ){
    fedSetError(pzErr, "%s: reading rows from server \"%s\": the connection"
        " was lost", MY_STORE, p->base.pServer->zName);
    return SQLITE_ERROR;
  }
  status = mysql_fetch_row_start(&row, (MYSQL_RES*)pRes);
  while( status ){
    status = myWait(p, status, iDeadline, &zWhy);
    if( status<0 ) break;
    status = mysql_fetch_row_cont(&row, (MYSQL_RES*)pRes, status);
  }
  if( zWhy || (row==0 && mysql_errno(m)) ){
    mySetError(p, pzErr, "reading rows", zWhy, 0);
    p->bDead = 1;
    return SQLITE_ERROR;
  }
  if( row ){
    *pazRow = row;
    *panLen = mysql_fetch_lengths((MYSQL_RES*)pRes);
  }
  return SQLITE_OK;
}

/* Free a result, reading what is left of it (MariaDB has no cheap way
** to stop a result half-read).  Outside a remote transaction, a long rest
** (more than MY_DRAIN_MAX rows) is not read: the connection is closed
** instead, and the next statement opens a new one.  A dead connection is
** closed at once: nothing more comes on it. */
#define MY_DRAIN_MAX 256
void fedMyFreeResult(MyConn *p, void *pRes){
  MYSQL_RES *r = (MYSQL_RES*)pRes;
  if( r==0 ) return;
  if( !p->bDead ){
    char **az;
    unsigned long *an;
    char *zErr = 0;
    int n = 0;
    while( fedMyFetch(p, r, &az, &an, &zErr)==SQLITE_OK && az ){
      if( ++n>=MY_DRAIN_MAX && !p->base.bTxn ){
        p->bDead = 1;
        break;
      }
    }
    sqlite3_free(zErr);
  }
  if( p->bDead ){
    /* The rest of the result may never come: close the socket first so
    ** that freeing it does not wait. */
    mysql_close((MYSQL*)p->my);
    p->my = 0;
    r->handle = 0;
  }
  mysql_free_result(r);
}

/* Run a command that returns no rows; errors name the operation zOp
** ("inserting into table t"), *pnChanged (if not NULL) gets the rows it
** matched (CLIENT_FOUND_ROWS).  A command with literals is refused while
** the server says NO_BACKSLASH_ESCAPES (the store escapes with '\'). */
int fedMyExecOp(MyConn *p, const char *zSql, const char *zOp,
                i64 *pnChanged, char **pzErr){
  void *pRes = 0;
  i64 iSeq = 0, nRow = 0;
  int rc;
  if( p->my && (((MYSQL*)p->my)->server_status
                & SERVER_STATUS_NO_BACKSLASH_ESCAPES) ){
    fedSetError(pzErr, "%s: %s on server \"%s\": the session's sql_mode"
        " has NO_BACKSLASH_ESCAPES, which the store's literals do not"
        " allow; nothing was sent", MY_STORE, zOp, p->base.pServer->zName);
    return SQLITE_ERROR;
  }
  rc = myQueryStart(p, zSql, zOp, 0, 0, 0, &pRes, &iSeq, pzErr);
  if( rc==SQLITE_ERROR && p->bOpen && p->my && p->zDoom==0
   && mysql_errno((MYSQL*)p->my)==1213 ){
    /* A deadlock: the server rolled the whole transaction back, and
    ** would run what follows in autocommit mode (txn.c). */
    p->zDoom = sqlite3_mprintf("%s: server \"%s\" rolled the transaction"
        " back (deadlock, 1213): ROLLBACK and retry", MY_STORE,
        p->base.pServer->zName);
  }
  if( rc==SQLITE_OK && pRes==0 && p->my ){
    nRow = (i64)mysql_affected_rows((MYSQL*)p->my);
  }
  if( pRes ) fedMyFreeResult(p, pRes);
  if( iSeq ) fedExplainRows(myCtx(p), iSeq, nRow, 1);
  if( pnChanged ) *pnChanged = nRow;
  return rc;
}

/* Run a command that returns no rows. */
int fedMyExec(MyConn *p, const char *zSql, char **pzErr){
  void *pRes = 0;
  i64 iSeq = 0;
  int rc = fedMyQueryStart(p, zSql, 0, 0, 0, &pRes, &iSeq, pzErr);
  if( pRes ) fedMyFreeResult(p, pRes);
  if( iSeq ) fedExplainRows(myCtx(p), iSeq, 0, 1);
  return rc;
}
