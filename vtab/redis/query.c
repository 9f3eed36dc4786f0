/*
** query.c: pass-through commands: fed_query() and fed_exec() (xQuery).
**
** Pass-through: fed_query('rd', 'HGETALL user:1') and fed_exec().  The
** command is split into words as redis-cli does ("..." with \n \t \" \\
** \xHH escapes, '...' literally); a word that is exactly ? takes the next
** parameter, binary-safe.  The command is sent at once, also inside a
** transaction (it is not queued).  Each element of an array reply is one
** row {"value": ...}; any other reply is one row.
*/
#include "redisInt.h"

/* Split zCmd into words (sqlite3_malloc'd copies in *paWord). */
static int splitCommand(const char *z, RBuf **paWord, int *pnWord,
                        char **pzErr){
  RBuf *aWord = 0;
  int nWord = 0, rc = SQLITE_OK;
  while( rc==SQLITE_OK ){
    sqlite3_str *s;
    int n;
    char *zWord;
    RBuf *aNew;
    while( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' ) z++;
    if( *z==0 ) break;
    s = sqlite3_str_new(0);
    if( *z=='"' ){
      z++;
      while( *z && *z!='"' ){
        if( *z=='\\' && z[1] ){
          z++;
          switch( *z ){
            case 'n': sqlite3_str_appendchar(s, 1, '\n'); break;
            case 't': sqlite3_str_appendchar(s, 1, '\t'); break;
            case 'r': sqlite3_str_appendchar(s, 1, '\r'); break;
            case 'x': {
              int k, v = 0;
              for(k=1; k<=2; k++){
                char c = z[k];
                if( c>='0' && c<='9' ) v = v*16 + c-'0';
                else if( c>='a' && c<='f' ) v = v*16 + c-'a'+10;
                else if( c>='A' && c<='F' ) v = v*16 + c-'A'+10;
                else break;
              }
              if( k==3 ){ sqlite3_str_appendchar(s, 1, (char)v); z += 2; }
              else sqlite3_str_appendchar(s, 1, 'x');
              break;
            }
            default: sqlite3_str_appendchar(s, 1, *z); break;
          }
          z++;
        }else{
          sqlite3_str_appendchar(s, 1, *z++);
        }
      }
      if( *z!='"' ) rc = SQLITE_ERROR; else z++;
    }else if( *z=='\'' ){
      z++;
      while( *z && *z!='\'' ) sqlite3_str_appendchar(s, 1, *z++);
      if( *z!='\'' ) rc = SQLITE_ERROR; else z++;
    }else{
      while( *z && *z!=' ' && *z!='\t' && *z!='\n' && *z!='\r' ){
        sqlite3_str_appendchar(s, 1, *z++);
      }
    }
    n = sqlite3_str_length(s);
    if( sqlite3_str_errcode(s) ) rc = SQLITE_NOMEM;
    zWord = sqlite3_str_finish(s);
    if( rc==SQLITE_ERROR ){
      fedSetError(pzErr, "%s: unbalanced quotes in command", RD_STORE);
    }
    if( rc==SQLITE_OK && zWord==0 ){
      zWord = sqlite3_malloc(1);
      if( zWord==0 ) rc = SQLITE_NOMEM; else zWord[0] = 0;
    }
    if( rc ){
      sqlite3_free(zWord);
      break;
    }
    aNew = sqlite3_realloc64(aWord, sizeof(RBuf)*(nWord+1));
    if( aNew==0 ){
      sqlite3_free(zWord);
      rc = SQLITE_NOMEM;
      break;
    }
    aWord = aNew;
    aWord[nWord].z = zWord;
    aWord[nWord].n = n;
    nWord++;
  }
  if( rc ){
    while( nWord>0 ) rdBufFree(&aWord[--nWord]);
    sqlite3_free(aWord);
    return rc;
  }
  *paWord = aWord;
  *pnWord = nWord;
  return SQLITE_OK;
}

/* Append a reply as JSON: text as a string, other bytes as "x'..'". */
static void replyJson(sqlite3_str *s, const redisReply *r){
  size_t i;
  switch( r->type ){
    case REDIS_REPLY_INTEGER:
      sqlite3_str_appendf(s, "%lld", r->integer);
      break;
    case REDIS_REPLY_NIL:
      sqlite3_str_appendall(s, "null");
      break;
    case REDIS_REPLY_ARRAY:
      sqlite3_str_appendchar(s, 1, '[');
      for(i=0; i<r->elements; i++){
        if( i ) sqlite3_str_appendchar(s, 1, ',');
        replyJson(s, r->element[i]);
      }
      sqlite3_str_appendchar(s, 1, ']');
      break;
    default:
      if( fedKvIsText(r->str, (int)r->len) ){
        fedJsonQuote(s, r->str, (int)r->len);
      }else{
        sqlite3_str_appendall(s, "\"x'");
        for(i=0; i<r->len; i++){
          sqlite3_str_appendf(s, "%02x", (unsigned char)r->str[i]);
        }
        sqlite3_str_appendall(s, "'\"");
      }
      break;
  }
}

/* Commands that would take the connection out of federate's hands. */
static const char *const azNoPass[] = {
  "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE", "PSUBSCRIBE",
  "SSUBSCRIBE", "MONITOR", "QUIT", "RESET", "HELLO", "SYNC", "PSYNC", 0
};

int rdQuery(FedConn *pConn, const char *zQuery, int nParam,
            sqlite3_value **apParam, char ***pazRow, int *pnRow,
            i64 *pnChanged, char **pzErr){
  RedisConn *p = (RedisConn*)pConn;
  RBuf *aWord = 0;
  RedisPipe P;
  char **azRow = 0;
  int nWord = 0, i, iParam = 0, nRow = 0, rc;
  redisReply *r;

  *pazRow = 0;
  *pnRow = 0;
  *pnChanged = 0;
  rdPipeInit(&P);
  for(i=0; i<nParam; i++){
    int eType = sqlite3_value_type(apParam[i]);
    if( (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT)
     && sqlite3_value_text(apParam[i])==0 ){
      return SQLITE_NOMEM;
    }
  }
  rc = splitCommand(zQuery, &aWord, &nWord, pzErr);
  if( rc ) return rc;
  if( nWord==0 ){
    fedSetError(pzErr, "%s: empty command", RD_STORE);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  for(i=0; azNoPass[i]; i++){
    if( sqlite3_stricmp(aWord[0].z, azNoPass[i])==0 ){
      fedSetError(pzErr, "%s: %s cannot be sent through fed_query or"
          " fed_exec: federate manages the connection's transactions and"
          " replies", RD_STORE, azNoPass[i]);
      rc = SQLITE_ERROR;
      goto cleanup;
    }
  }
  rdPipeCmd(&P, p->iDb, aWord[0].z);
  for(i=1; i<nWord; i++){
    if( aWord[i].n==1 && aWord[i].z[0]=='?' ){
      const char *z;
      int n;
      if( iParam>=nParam ){
        fedSetError(pzErr, "%s: more ? in the command than parameters",
                    RD_STORE);
        rc = SQLITE_ERROR;
        goto cleanup;
      }
      rdValueBytes(apParam[iParam++], &z, &n);
      rdPipeArg(&P, z, n);
    }else{
      rdPipeArg(&P, aWord[i].z, aWord[i].n);
    }
  }
  rc = rdPipeRun(p, &P, pzErr);
  if( rc ) goto cleanup;
  /* After a SELECT the database is not the one federate thinks. */
  if( sqlite3_stricmp(aWord[0].z, "SELECT")==0 ) p->iCurDb = -1;
  r = P.apReply[0];
  if( r->type==REDIS_REPLY_ERROR ){
    rdPipeReplyError(&P, 0, pzErr);
    rc = SQLITE_ERROR;
    goto cleanup;
  }
  nRow = r->type==REDIS_REPLY_ARRAY ? (int)r->elements : 1;
  *pnChanged = r->type==REDIS_REPLY_INTEGER ? r->integer : nRow;
  if( nRow>0 ){
    azRow = sqlite3_malloc64(sizeof(char*)*nRow);
    if( azRow==0 ){ rc = SQLITE_NOMEM; goto cleanup; }
    memset(azRow, 0, sizeof(char*)*nRow);
  }
  for(i=0; i<nRow; i++){
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendall(s, "{\"value\":");
    replyJson(s, r->type==REDIS_REPLY_ARRAY ? r->element[i] : r);
    sqlite3_str_appendchar(s, 1, '}');
    azRow[i] = sqlite3_str_finish(s);
    if( azRow[i]==0 ){ rc = SQLITE_NOMEM; break; }
  }
  if( rc ){
    for(i=0; i<nRow; i++) sqlite3_free(azRow[i]);
    sqlite3_free(azRow);
    goto cleanup;
  }
  *pazRow = azRow;
  *pnRow = nRow;

cleanup:
  rdPipeFree(&P);
  for(i=0; i<nWord; i++) rdBufFree(&aWord[i]);
  sqlite3_free(aWord);
  return rc;
}
