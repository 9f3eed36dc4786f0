/*
** vtab/redis/l2.c: the key-value capability of the Redis store
** (FedStore.pKv): GET, SET ... PX and INCR of one key, which is what the
** L2 cache (ext/cache/l2.c) needs from a store.
** Each is one pipeline in the table's database, recorded in fed_explain
** like any other command.
*/
#include "redisInt.h"

/* Run the one command of P; an error reply is an error. */
static int kvRun(RedisConn *p, RedisPipe *P, char **pzErr){
  int rc = rdPipeRun(p, P, pzErr);
  if( rc==SQLITE_OK && P->apReply[0]->type==REDIS_REPLY_ERROR ){
    rdPipeReplyError(P, 0, pzErr);
    rc = SQLITE_ERROR;
  }
  return rc;
}

static int kvGet(FedConn *pConn, const char *zKey, int nKey, char **paVal,
                 int *pnVal, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  redisReply *r;
  int rc;
  *paVal = 0;
  *pnVal = 0;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, "GET");
  rdPipeArg(&P, zKey, nKey);
  rc = kvRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    r = P.apReply[0];
    if( r->type==REDIS_REPLY_STRING ){
      *paVal = sqlite3_malloc64(r->len+1);
      if( *paVal==0 ){
        rc = SQLITE_NOMEM;
      }else{
        memcpy(*paVal, r->str, r->len);
        (*paVal)[r->len] = 0;
        *pnVal = (int)r->len;
      }
    }else if( r->type!=REDIS_REPLY_NIL ){
      fedSetError(pzErr, "%s: GET: unexpected reply", RD_STORE);
      rc = SQLITE_ERROR;
    }
  }
  rdPipeFree(&P);
  return rc;
}

static int kvSet(FedConn *pConn, const char *zKey, int nKey,
                 const char *aVal, int nVal, i64 nTtlMs, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, "SET");
  rdPipeArg(&P, zKey, nKey);
  rdPipeArg(&P, aVal, nVal);
  rdPipeArg(&P, "PX", 2);
  rdPipeArgInt(&P, nTtlMs);
  rc = kvRun(p, &P, pzErr);
  rdPipeFree(&P);
  return rc;
}

static int kvIncr(FedConn *pConn, const char *zKey, int nKey, i64 *piNew,
                  char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RedisPipe P;
  int rc;
  *piNew = 0;
  rdPipeInit(&P);
  rdPipeCmd(&P, p->iDb, "INCR");
  rdPipeArg(&P, zKey, nKey);
  rc = kvRun(p, &P, pzErr);
  if( rc==SQLITE_OK ){
    if( P.apReply[0]->type==REDIS_REPLY_INTEGER ){
      *piNew = P.apReply[0]->integer;
    }else{
      fedSetError(pzErr, "%s: INCR: unexpected reply", RD_STORE);
      rc = SQLITE_ERROR;
    }
  }
  rdPipeFree(&P);
  return rc;
}

const FedKvOps fedRedisKv = { kvGet, kvSet, kvIncr };
