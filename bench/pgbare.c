/*
** pgbare.c: the physical limit for a PostgreSQL scan: a bare libpq loop in
** single-row mode that touches every value, as federate must.
**   pgbare "conninfo" "SELECT ..."     prints rows and elapsed seconds
*/
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

int main(int argc, char **argv){
  PGconn *pg;
  PGresult *res;
  long nRow = 0, nByte = 0;
  double t0;
  if( argc<3 ){
    fprintf(stderr, "usage: %s conninfo query\n", argv[0]);
    return 1;
  }
  pg = PQconnectdb(argv[1]);
  if( PQstatus(pg)!=CONNECTION_OK ){
    fprintf(stderr, "%s", PQerrorMessage(pg));
    return 1;
  }
  t0 = now();
  PQsendQueryParams(pg, argv[2], 0, 0, 0, 0, 0, 0);
  PQsetSingleRowMode(pg);
  while( (res = PQgetResult(pg))!=0 ){
    if( PQresultStatus(res)==PGRES_SINGLE_TUPLE ){
      int i;
      for(i=0; i<PQnfields(res); i++){
        nByte += PQgetlength(res, 0, i);
        (void)PQgetvalue(res, 0, i);
      }
      nRow++;
    }
    PQclear(res);
  }
  printf("%ld rows %ld bytes %.3f s\n", nRow, nByte, now()-t0);
  PQfinish(pg);
  return 0;
}
