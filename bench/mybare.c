/*
** mybare.c: the physical limits of MariaDB / MySQL access, bare libmariadb
** loops that do what federate's mysql tables must do and nothing more.
** bench/run.sh compares federate's times with these.
**
**   mybare scan   HOST PORT DB SQL         mysql_use_result (one row in
**                                          memory), touch every value
**   mybare lookup HOST PORT DB SQL N MAXID server-side prepared statement
**                                          (one ? bound as BIGINT), N
**                                          executions with a pseudo-random
**                                          id in 1..MAXID (fedbench lookup's
**                                          sequence), one column fetched
**   mybare lookuptext HOST PORT DB SQL N MAXID
**                                          the same as text statements: SQL
**                                          holds one %ld, each execution is
**                                          mysql_real_query + use_result
**   mybare insert HOST PORT DB TABLE N     BEGIN; multi-row INSERT, 1000
**                                          rows a statement; COMMIT
**
** User root without a password (tcl-tests/servers/mysql.sh's server).
** Prints "<rows> rows <seconds> s", as pgbare does.
*/
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

static void die(MYSQL *my, const char *zWhat){
  fprintf(stderr, "mybare: %s: %s\n", zWhat, mysql_error(my));
  exit(1);
}

static void run(MYSQL *my, const char *zSql){
  if( mysql_real_query(my, zSql, strlen(zSql)) ) die(my, zSql);
}

/* Read the result of the last query row by row; touch every value. */
static long readRows(MYSQL *my, long *pnByte){
  MYSQL_RES *res = mysql_use_result(my);
  MYSQL_ROW row;
  long nRow = 0;
  unsigned int i, nCol;
  if( res==0 ) die(my, "use_result");
  nCol = mysql_num_fields(res);
  while( (row = mysql_fetch_row(res))!=0 ){
    unsigned long *aLen = mysql_fetch_lengths(res);
    for(i=0; i<nCol; i++){
      *pnByte += aLen[i] + (row[i]!=0 && row[i][0]!=0);
    }
    nRow++;
  }
  if( mysql_errno(my) ) die(my, "fetch_row");
  mysql_free_result(res);
  return nRow;
}

int main(int argc, char **argv){
  MYSQL *my;
  long nRow = 0;
  double t0;
  if( argc<6 ){
    fprintf(stderr, "usage: mybare scan|lookup|lookuptext|insert HOST PORT DB ARG...\n");
    return 1;
  }
  my = mysql_init(0);
  if( my==0 ) return 1;
  if( !mysql_real_connect(my, argv[2], "root", 0, argv[4], atoi(argv[3]), 0, 0) ){
    die(my, "connect");
  }
  run(my, "SET NAMES utf8mb4, time_zone = '+00:00'");
  t0 = now();
  if( strcmp(argv[1], "scan")==0 ){
    long nByte = 0;
    run(my, argv[5]);
    nRow = readRows(my, &nByte);
    if( nByte==0 ) nRow = -nRow;
  }else if( strcmp(argv[1], "lookup")==0 && argc>=8 ){
    long i, n = atol(argv[6]), nMax = atol(argv[7]);
    unsigned long x = 12345;
    MYSQL_STMT *st = mysql_stmt_init(my);
    MYSQL_BIND param, result;
    long long id = 0;
    char zBuf[256];
    unsigned long nLen = 0;
    my_bool bNull = 0;
    if( st==0 || mysql_stmt_prepare(st, argv[5], strlen(argv[5])) ){
      die(my, "prepare");
    }
    memset(&param, 0, sizeof(param));
    param.buffer_type = MYSQL_TYPE_LONGLONG;
    param.buffer = &id;
    memset(&result, 0, sizeof(result));
    result.buffer_type = MYSQL_TYPE_STRING;
    result.buffer = zBuf;
    result.buffer_length = sizeof(zBuf);
    result.length = &nLen;
    result.is_null = &bNull;
    if( mysql_stmt_bind_param(st, &param) || mysql_stmt_bind_result(st, &result) ){
      die(my, "bind");
    }
    t0 = now();
    for(i=0; i<n; i++){
      int rc;
      x = x*6364136223846793005UL + 1442695040888963407UL;
      id = (long long)(1 + (x>>33) % nMax);
      if( mysql_stmt_execute(st) ) die(my, mysql_stmt_error(st));
      while( (rc = mysql_stmt_fetch(st))==0 || rc==MYSQL_DATA_TRUNCATED ) nRow++;
      if( rc!=MYSQL_NO_DATA ) die(my, mysql_stmt_error(st));
    }
    mysql_stmt_close(st);
  }else if( strcmp(argv[1], "lookuptext")==0 && argc>=8 ){
    long i, n = atol(argv[6]), nMax = atol(argv[7]), nByte = 0;
    unsigned long x = 12345;
    for(i=0; i<n; i++){
      char zSql[512];
      x = x*6364136223846793005UL + 1442695040888963407UL;
      snprintf(zSql, sizeof(zSql), argv[5], (long)(1 + (x>>33) % nMax));
      run(my, zSql);
      nRow += readRows(my, &nByte);
    }
  }else if( strcmp(argv[1], "insert")==0 && argc>=7 ){
    long i, n = atol(argv[6]);
    char *z = malloc(200*1000 + 256);
    run(my, "BEGIN");
    for(i=1; i<=n; ){
      int k = snprintf(z, 256, "INSERT INTO %s VALUES ", argv[5]);
      long j;
      for(j=0; j<1000 && i<=n; j++, i++){
        k += snprintf(&z[k], 200, "%s(%ld,'name%ld',%g,'2024-01-01 00:00:00','{\"k\": %ld}')",
                      j ? "," : "", i, i, i*1.5, i);
      }
      run(my, z);
    }
    run(my, "COMMIT");
    free(z);
    nRow = n;
  }else{
    fprintf(stderr, "mybare: bad arguments\n");
    return 1;
  }
  printf("%ld rows %.4f s\n", nRow, now()-t0);
  mysql_close(my);
  return 0;
}
