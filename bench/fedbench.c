/*
** fedbench.c: the same work as pgbare.c, through SQLite and a virtual
** table: federate (linked in) or VirtualPG (loaded).
**
**   fedbench scan   DBFILE SQL            step every row, read every column
**   fedbench lookup DBFILE SQL N MAXID    prepared, ?1 = pseudo-random id
**   fedbench insert DBFILE TABLE N        BEGIN; N prepared INSERTs; COMMIT
**   fedbench insertsql DBFILE N SQL       the same with an INSERT of one's
**                                         own: ?1 = i, ?2 = 'name<i>',
**                                         ?3 = i*1.5, ?4 a timestamp text,
**                                         ?5 = '{"k": i}' (those it has)
**   fedbench exec   DBFILE SQL            run setup SQL
**   fedbench repeat DBFILE N SQL          run SQL N times (sqlite3_exec)
**
** The environment variable FEDBENCH_LOAD names an extension to load first
** (VirtualPG: "/usr/lib/x86_64-linux-gnu/mod_virtualpg.so.0.1.1"), and
** FEDBENCH_WARM SQL to run before the clock starts (to connect).
** Prints "<rows> rows <seconds> s".
*/
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include "federate.h"

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

static void die(sqlite3 *db){
  fprintf(stderr, "fedbench: %s\n", sqlite3_errmsg(db));
  exit(1);
}

int main(int argc, char **argv){
  sqlite3 *db;
  sqlite3_stmt *pStmt;
  const char *zLoad = getenv("FEDBENCH_LOAD");
  long nRow = 0;
  double t0;
  if( argc<4 ){
    fprintf(stderr, "usage: fedbench scan|lookup|insert|exec DB ARG...\n");
    return 1;
  }
  sqlite3_auto_extension((void(*)(void))sqlite3_federate_init);
  if( sqlite3_open(argv[2], &db) ) die(db);
  if( zLoad ){
    char *zErr = 0;
    sqlite3_enable_load_extension(db, 1);
    if( sqlite3_load_extension(db, zLoad, "sqlite3_modvirtualpg_init", &zErr) ){
      fprintf(stderr, "fedbench: %s\n", zErr);
      return 1;
    }
  }
  /* Connect before the clock starts, as the bare loops do. */
  if( getenv("FEDBENCH_WARM") && sqlite3_exec(db, getenv("FEDBENCH_WARM"), 0, 0, 0) ){
    die(db);
  }
  t0 = now();
  if( strcmp(argv[1], "exec")==0 ){
    if( sqlite3_exec(db, argv[3], 0, 0, 0) ) die(db);
  }else if( strcmp(argv[1], "repeat")==0 && argc>=5 ){
    long i, n = atol(argv[3]);
    for(i=0; i<n; i++){
      if( sqlite3_exec(db, argv[4], 0, 0, 0) ) die(db);
    }
    nRow = n;
  }else if( strcmp(argv[1], "scan")==0 ){
    long nByte = 0;
    if( sqlite3_prepare_v2(db, argv[3], -1, &pStmt, 0) ) die(db);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      int i;
      for(i=0; i<sqlite3_column_count(pStmt); i++){
        switch( sqlite3_column_type(pStmt, i) ){
          case SQLITE_INTEGER: nByte += sqlite3_column_int64(pStmt, i)&1; break;
          case SQLITE_FLOAT: nByte += sqlite3_column_double(pStmt, i)>0; break;
          default: nByte += sqlite3_column_bytes(pStmt, i);
        }
      }
      nRow++;
    }
    if( sqlite3_finalize(pStmt) ) die(db);
    if( nByte==0 ) nRow = -nRow;
  }else if( strcmp(argv[1], "lookup")==0 ){
    long i, n = atol(argv[4]), nMax = atol(argv[5]);
    unsigned long x = 12345;
    if( sqlite3_prepare_v2(db, argv[3], -1, &pStmt, 0) ) die(db);
    t0 = now();
    for(i=0; i<n; i++){
      x = x*6364136223846793005UL + 1442695040888963407UL;
      sqlite3_bind_int64(pStmt, 1, 1 + (x>>33) % nMax);
      while( sqlite3_step(pStmt)==SQLITE_ROW ){
        (void)sqlite3_column_text(pStmt, 0);
        nRow++;
      }
      if( sqlite3_reset(pStmt) ) die(db);
    }
    sqlite3_finalize(pStmt);
  }else if( strcmp(argv[1], "insert")==0
         || (strcmp(argv[1], "insertsql")==0 && argc>=5) ){
    long i, n = atol(argv[1][6] ? argv[3] : argv[4]);
    int nParam;
    char zSql[512];
    if( argv[1][6] ){
      snprintf(zSql, sizeof(zSql), "%s", argv[4]);
    }else{
      snprintf(zSql, sizeof(zSql), "INSERT INTO %s VALUES(?1, ?2, ?3, ?4, ?5)",
               argv[3]);
    }
    if( sqlite3_exec(db, "BEGIN", 0, 0, 0) ) die(db);
    if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) ) die(db);
    nParam = sqlite3_bind_parameter_count(pStmt);
    for(i=1; i<=n; i++){
      char zName[32], zDoc[48];
      snprintf(zName, sizeof(zName), "name%ld", i);
      snprintf(zDoc, sizeof(zDoc), "{\"k\": %ld}", i);
      sqlite3_bind_int64(pStmt, 1, i);
      if( nParam>=2 ) sqlite3_bind_text(pStmt, 2, zName, -1, SQLITE_TRANSIENT);
      if( nParam>=3 ) sqlite3_bind_double(pStmt, 3, i*1.5);
      if( nParam>=4 ){
        sqlite3_bind_text(pStmt, 4, "2024-01-01 00:00:00+00:00", -1, SQLITE_STATIC);
      }
      if( nParam>=5 ) sqlite3_bind_text(pStmt, 5, zDoc, -1, SQLITE_TRANSIENT);
      sqlite3_step(pStmt);
      if( sqlite3_reset(pStmt) ) die(db);
    }
    sqlite3_finalize(pStmt);
    if( sqlite3_exec(db, "COMMIT", 0, 0, 0) ) die(db);
    nRow = n;
  }
  printf("%ld rows %.4f s\n", nRow, now()-t0);
  sqlite3_close(db);
  return 0;
}
