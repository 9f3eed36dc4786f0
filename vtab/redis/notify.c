/*
** notify.c: keyspace notifications for the cache (xWatch, xChanges).
**
** Cache invalidation (cache.c) by keyspace notifications.  A second
** connection of the server subscribes to __keyspace@<db>__:*; any event
** on the database invalidates every cached table of the server (the
** events name keys, and which table a key belongs to is the table's
** business).  The server must have notify-keyspace-events with K and A
** (or the classes of the commands used); fed_cache_watch() adds "KA" to
** what is configured, and listening is refused when they are missing, so
** that a cache never trusts notifications that will not come.
*/
#include "redisInt.h"

static int rdRunOne(RedisConn *p, RedisPipe *P, const char *zCmd,
                    const char *zArg1, const char *zArg2, char **pzErr){
  rdPipeInit(P);
  rdPipeCmd(P, -1, zCmd);
  if( zArg1 ) rdPipeArg(P, zArg1, -1);
  if( zArg2 ) rdPipeArg(P, zArg2, -1);
  return rdPipeRun(p, P, pzErr);
}

int rdWatch(FedConn *pConn, FedTable *pTab, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  const char *zFlags = "";
  char zPat[48];
  int rc;
  redisReply *r;

  rc = rdRunOne(p, &P, "CONFIG", "GET", "notify-keyspace-events", pzErr);
  if( rc==SQLITE_OK ){
    r = P.apReply[0];
    if( r->type==REDIS_REPLY_ARRAY && r->elements==2
     && r->element[1]->type==REDIS_REPLY_STRING ){
      zFlags = r->element[1]->str;
    }else{
      fedSetError(pzErr, "%s: server \"%s\" does not show its"
          " notify-keyspace-events (CONFIG GET)", RD_STORE,
          p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK && (strchr(zFlags, 'K')==0 || strchr(zFlags, 'A')==0) ){
    if( pTab ){
      char *zNew = sqlite3_mprintf("%sKA", zFlags);
      RedisPipe Q;
      if( zNew==0 ){
        rc = SQLITE_NOMEM;
      }else{
        {
          rdPipeInit(&Q);
          rdPipeCmd(&Q, -1, "CONFIG");
          rdPipeArg(&Q, "SET", -1);
          rdPipeArg(&Q, "notify-keyspace-events", -1);
          rdPipeArg(&Q, zNew, -1);
          rc = rdPipeRun(p, &Q, pzErr);
          if( rc==SQLITE_OK && Q.apReply[0]->type==REDIS_REPLY_ERROR ){
            fedSetError(pzErr, "%s: server \"%s\": CONFIG SET"
                " notify-keyspace-events: %s", RD_STORE,
                p->base.pServer->zName, Q.apReply[0]->str);
            rc = SQLITE_ERROR;
          }
          rdPipeFree(&Q);
        }
        sqlite3_free(zNew);
      }
    }else{
      fedSetError(pzErr, "%s: server \"%s\" sends no keyspace events"
          " (notify-keyspace-events needs K and A; fed_cache_watch() sets"
          " them)", RD_STORE, p->base.pServer->zName);
      rc = SQLITE_ERROR;
    }
  }
  rdPipeFree(&P);
  if( rc==SQLITE_OK && p->pSub==0 ){
    FedConn *pSub = 0;
    rc = rdConnect(p->base.pServer, &pSub, pzErr);
    if( rc==SQLITE_OK ){
      p->pSub = (RedisConn*)pSub;
      sqlite3_snprintf(sizeof(zPat), zPat, "__keyspace@%d__:*", p->iDb);
      rc = rdRunOne(p->pSub, &P, "PSUBSCRIBE", zPat, 0, pzErr);
      rdPipeFree(&P);
      if( rc ){
        rdDisconnect(pSub);
        p->pSub = 0;
      }
    }
  }
  if( rc==SQLITE_OK && p->base.iListen==0 ) p->base.iListen = 1;
  return rc;
}

int rdChanges(FedConn *pConn, char ***pazRel, int *pnRel){
  RedisConn *p = (RedisConn*)pConn;
  RedisConn *pSub = p->pSub;
  struct pollfd fd;
  int bAny = 0;
  *pazRel = 0;
  *pnRel = 0;
  if( pSub==0 ) return SQLITE_OK;
  fd.fd = pSub->c->fd;
  fd.events = POLLIN;
  fd.revents = 0;
  if( poll(&fd, 1, 0)>0 ){
    void *pReply = 0;
    if( redisBufferRead(pSub->c)!=REDIS_OK ){
      /* Lost: nothing is heard until a new subscription, which the cache
      ** makes (and distrusts what it has) at its next scan. */
      rdDisconnect(&pSub->base);
      p->pSub = 0;
      p->base.iListen = 0;
      bAny = 1;
    }else{
      while( redisGetReplyFromReader(pSub->c, &pReply)==REDIS_OK && pReply ){
        freeReplyObject(pReply);
        pReply = 0;
        bAny = 1;
      }
    }
  }
  if( bAny ){
    char **az = sqlite3_malloc64(sizeof(char*));
    if( az==0 ) return SQLITE_NOMEM;
    az[0] = fedStrdup("*", 1);
    if( az[0]==0 ){ sqlite3_free(az); return SQLITE_NOMEM; }
    *pazRel = az;
    *pnRel = 1;
  }
  return SQLITE_OK;
}
