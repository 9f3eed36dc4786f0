/*
** notify.c: cache invalidation for the PostgreSQL store: a statement
** trigger sends NOTIFY fed_cache with the table's remote name, the
** connection LISTENs, and fedPgChanges() hands the names to cache.c.
*/
#include "pgInt.h"
#include <poll.h>

/*
** Cache invalidation (cache.c): fed_cache_watch() installs a statement
** trigger that sends NOTIFY fed_cache with the table's remote name after
** every change by anyone; the connection LISTENs, and fedPgChanges() hands
** the names over without blocking.
*/
int fedPgWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  PgConn *p = (PgConn*)pConn;
  char *zSql;
  int rc = SQLITE_OK;
  if( pTab ){
    if( p->base.bTxn ){
      fedSetError(pzErr, "%s: cannot install the cache trigger of \"%s\""
          " inside a transaction", PG_STORE, pTab->zName);
      return SQLITE_ERROR;
    }
    zSql = fedPgDeparseWatch(pTab);
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = fedPgExecSimple(p, zSql, pzErr);
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK && p->base.iListen==0 ){
    rc = fedPgExecSimple(p, "LISTEN fed_cache", pzErr);
    if( rc==SQLITE_OK ) p->base.iListen = 1;
  }
  return rc;
}

int fedPgChanges(FedConn *pConn, char ***pazRel, int *pnRel){
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
  fedPgTakeNotes(p);
  *pazRel = p->azNote;
  *pnRel = p->nNote;
  p->azNote = 0;
  p->nNote = 0;
  return SQLITE_OK;
}

/* Move the notifications libpq has parsed into p->azNote (payloads of
** channel fed_cache; a payload that cannot be kept for lack of memory
** becomes "*", which invalidates every table).  Returns how many. */
int fedPgTakeNotes(PgConn *p){
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
