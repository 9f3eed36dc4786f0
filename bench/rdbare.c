/*
** rdbare.c: the physical limit of a Redis hash scan, a bare hiredis loop
** that does what federate's `type=hash` table must do and nothing more.
** bench/run.sh compares federate's times with it.
**
**   rdbare load HOST PORT PREFIX N   N hashes PREFIX1..PREFIXN, fields
**                                    name, val, n (pipelined HSETs)
**   rdbare scan HOST PORT PATTERN COUNT
**                                    SCAN MATCH PATTERN COUNT n TYPE hash;
**                                    each batch's HGETALLs pipelined with
**                                    the next SCAN (one round trip a batch,
**                                    as federate); touch key, field, value
**
** Prints "<rows> rows <seconds> s" (scan: one row per field, as the table).
*/
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

static redisReply *get(redisContext *c){
  void *r = 0;
  if( redisGetReply(c, &r)!=REDIS_OK || r==0 ){
    fprintf(stderr, "rdbare: %s\n", c->errstr);
    exit(1);
  }
  if( ((redisReply*)r)->type==REDIS_REPLY_ERROR ){
    fprintf(stderr, "rdbare: %s\n", ((redisReply*)r)->str);
    exit(1);
  }
  return r;
}

static void appendScan(redisContext *c, const char *zCursor,
                       const char *zPat, const char *zCount){
  const char *az[8] = { "SCAN", zCursor, "MATCH", zPat, "COUNT", zCount,
                        "TYPE", "hash" };
  redisAppendCommandArgv(c, 8, az, 0);
}

int main(int argc, char **argv){
  redisContext *c;
  long nRow = 0;
  double t0;
  if( argc<6 ){
    fprintf(stderr, "usage: rdbare load|scan HOST PORT ARG ARG\n");
    return 1;
  }
  c = redisConnect(argv[2], atoi(argv[3]));
  if( c==0 || c->err ){
    fprintf(stderr, "rdbare: %s\n", c ? c->errstr : "out of memory");
    return 1;
  }
  t0 = now();
  if( strcmp(argv[1], "load")==0 ){
    long i, n = atol(argv[5]), nPending = 0;
    for(i=1; i<=n; i++){
      redisAppendCommand(c, "HSET %s%ld name name%ld val %g n %ld",
                         argv[4], i, i, i*1.5, i);
      if( ++nPending==10000 || i==n ){
        while( nPending>0 ){ freeReplyObject(get(c)); nPending--; }
      }
    }
    nRow = n;
  }else if( strcmp(argv[1], "scan")==0 ){
    char zCursor[64] = "0";
    long nByte = 0;
    redisReply *rScan;
    appendScan(c, zCursor, argv[4], argv[5]);
    rScan = get(c);
    for(;;){
      redisReply *rKeys = rScan->element[1];
      size_t i, j;
      int bLast;
      snprintf(zCursor, sizeof(zCursor), "%s", rScan->element[0]->str);
      bLast = strcmp(zCursor, "0")==0;
      for(i=0; i<rKeys->elements; i++){
        const char *az[2] = { "HGETALL", rKeys->element[i]->str };
        size_t an[2] = { 7, rKeys->element[i]->len };
        redisAppendCommandArgv(c, 2, az, an);
      }
      if( !bLast ) appendScan(c, zCursor, argv[4], argv[5]);
      for(i=0; i<rKeys->elements; i++){
        redisReply *r = get(c);
        for(j=0; j+1<r->elements; j+=2){
          nByte += rKeys->element[i]->len + r->element[j]->len
                 + r->element[j+1]->len;
          nRow++;
        }
        freeReplyObject(r);
      }
      freeReplyObject(rScan);
      if( bLast ) break;
      rScan = get(c);
    }
    if( nByte==0 ) nRow = -nRow;
  }
  printf("%ld rows %.4f s\n", nRow, now()-t0);
  redisFree(c);
  return 0;
}
