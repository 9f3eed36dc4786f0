/*
** pgbare.c: the physical limits of PostgreSQL access, bare libpq loops that
** do what federate must do and nothing more.  bench/run.sh compares
** federate's times with these.
**
**   pgbare scan   CONNINFO SQL      single-row mode, touch every value
**   pgbare copy   CONNINFO SQL      COPY (SQL) TO STDOUT (BINARY)
**   pgbare fetch  CONNINFO SQL N    BEGIN; DECLARE CURSOR; FETCH N until
**                                   done, two FETCHes in flight (pipeline
**                                   mode); COMMIT
**   pgbare lookup CONNINFO SQL N MAXID
**                                   prepared statement, N executions with
**                                   $1 = pseudo-random id in 1..MAXID
**   pgbare copyin CONNINFO TABLE N  COPY TABLE FROM STDIN, N rows
**   pgbare insert CONNINFO TABLE N  multi-row INSERT, 1000 rows a statement
**
** Prints "<rows> rows <seconds> s".
*/
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

static void check(PGconn *pg, PGresult *res, ExecStatusType want){
  if( PQresultStatus(res)!=want ){
    fprintf(stderr, "pgbare: %s", PQerrorMessage(pg));
    exit(1);
  }
}

int main(int argc, char **argv){
  PGconn *pg;
  long nRow = 0;
  double t0;
  if( argc<4 ){
    fprintf(stderr, "usage: pgbare scan|copy|lookup|copyin|insert CONNINFO ARG...\n");
    return 1;
  }
  pg = PQconnectdb(argv[2]);
  if( PQstatus(pg)!=CONNECTION_OK ){
    fprintf(stderr, "%s", PQerrorMessage(pg));
    return 1;
  }
  t0 = now();
  if( strcmp(argv[1], "scan")==0 ){
    PGresult *res;
    long nByte = 0;
    PQsendQueryParams(pg, argv[3], 0, 0, 0, 0, 0, 0);
    PQsetSingleRowMode(pg);
    while( (res = PQgetResult(pg))!=0 ){
      if( PQresultStatus(res)==PGRES_SINGLE_TUPLE ){
        int i;
        for(i=0; i<PQnfields(res); i++){
          nByte += PQgetlength(res, 0, i) + (PQgetvalue(res, 0, i)[0]!=0);
        }
        nRow++;
      }else if( PQresultStatus(res)!=PGRES_TUPLES_OK ){
        check(pg, res, PGRES_TUPLES_OK);
      }
      PQclear(res);
    }
    if( nByte==0 ) nRow = -nRow;
  }else if( strcmp(argv[1], "fetch")==0 && argc>=5 ){
    /* Two FETCHes in flight (libpq pipeline mode), so that the server
    ** produces the next batch while this one is read. */
    char *zSql = malloc(strlen(argv[3])+64), zFetch[64];
    long nByte = 0;
    int nFlight = 0, bEnd = 0;
    sprintf(zSql, "DECLARE c NO SCROLL CURSOR FOR %s", argv[3]);
    snprintf(zFetch, sizeof(zFetch), "FETCH %d FROM c", atoi(argv[4]));
    PQclear(PQexec(pg, "BEGIN"));
    check(pg, PQexec(pg, zSql), PGRES_COMMAND_OK);
    PQenterPipelineMode(pg);
    while( nFlight<2 ){
      PQsendQueryParams(pg, zFetch, 0, 0, 0, 0, 0, 0);
      nFlight++;
    }
    PQsendFlushRequest(pg);
    PQflush(pg);
    while( nFlight>0 ){
      PGresult *res = PQgetResult(pg);
      int r, i, nf, nGot;
      check(pg, res, PGRES_TUPLES_OK);
      nGot = PQntuples(res);
      if( nGot==0 ) bEnd = 1;
      if( !bEnd ){
        PQsendQueryParams(pg, zFetch, 0, 0, 0, 0, 0, 0);
        PQsendFlushRequest(pg);
        PQflush(pg);
        nFlight++;
      }
      nf = PQnfields(res);
      for(r=0; r<nGot; r++){
        for(i=0; i<nf; i++){
          nByte += PQgetlength(res, r, i) + (PQgetvalue(res, r, i)[0]!=0);
        }
      }
      nRow += nGot;
      PQclear(res);
      res = PQgetResult(pg);        /* NULL: the end of this FETCH */
      if( res ) PQclear(res);
      nFlight--;
    }
    PQpipelineSync(pg);
    PQclear(PQgetResult(pg));
    PQexitPipelineMode(pg);
    PQclear(PQexec(pg, "COMMIT"));
    if( nByte==0 ) nRow = -nRow;
    free(zSql);
  }else if( strcmp(argv[1], "copy")==0 ){
    char *zSql = malloc(strlen(argv[3])+64);
    char *buf;
    int n;
    sprintf(zSql, "COPY (%s) TO STDOUT (FORMAT binary)", argv[3]);
    check(pg, PQexec(pg, zSql), PGRES_COPY_OUT);
    while( (n = PQgetCopyData(pg, &buf, 0))>0 ){
      nRow++;
      PQfreemem(buf);
    }
    nRow -= 2;                  /* header and trailer chunks */
    free(zSql);
  }else if( strcmp(argv[1], "lookup")==0 ){
    long i, n = atol(argv[4]), nMax = atol(argv[5]);
    unsigned long x = 12345;
    check(pg, PQprepare(pg, "q", argv[3], 1, 0), PGRES_COMMAND_OK);
    t0 = now();
    for(i=0; i<n; i++){
      char zId[32];
      const char *azV[1];
      PGresult *res;
      x = x*6364136223846793005UL + 1442695040888963407UL;
      snprintf(zId, sizeof(zId), "%lu", 1 + (x>>33) % nMax);
      azV[0] = zId;
      res = PQexecPrepared(pg, "q", 1, azV, 0, 0, 0);
      check(pg, res, PGRES_TUPLES_OK);
      nRow += PQntuples(res);
      PQclear(res);
    }
  }else if( strcmp(argv[1], "copyin")==0 || strcmp(argv[1], "insert")==0 ){
    long i, n = atol(argv[4]);
    char zSql[256];
    int bCopy = argv[1][0]=='c';
    PQclear(PQexec(pg, "BEGIN"));
    if( bCopy ){
      snprintf(zSql, sizeof(zSql), "COPY %s FROM STDIN", argv[3]);
      check(pg, PQexec(pg, zSql), PGRES_COPY_IN);
      for(i=1; i<=n; i++){
        char zLine[256];
        int k = snprintf(zLine, sizeof(zLine),
            "%ld\tname%ld\t%g\t2024-01-01 00:00:00+00\t{\"k\": %ld}\n",
            i, i, i*1.5, i);
        PQputCopyData(pg, zLine, k);
      }
      PQputCopyEnd(pg, 0);
      check(pg, PQgetResult(pg), PGRES_COMMAND_OK);
    }else{
      for(i=1; i<=n; ){
        char *z = malloc(200*1000 + 256);
        int k = snprintf(z, 256, "INSERT INTO %s VALUES ", argv[3]);
        long j;
        for(j=0; j<1000 && i<=n; j++, i++){
          k += snprintf(&z[k], 200, "%s(%ld,'name%ld',%g,'2024-01-01 00:00:00+00','{\"k\": %ld}')",
                        j ? "," : "", i, i, i*1.5, i);
        }
        check(pg, PQexec(pg, z), PGRES_COMMAND_OK);
        free(z);
      }
    }
    PQclear(PQexec(pg, "COMMIT"));
    nRow = n;
  }
  printf("%ld rows %.4f s\n", nRow, now()-t0);
  PQfinish(pg);
  return 0;
}
