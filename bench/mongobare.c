/*
** mongobare.c: the physical limits of MongoDB access, bare libmongoc loops
** that do what federate's mongo tables must do and nothing more.
** bench/run.sh compares federate's times with these.
**
**   mongobare drop   URI DB COLL          drop the collection (untimed)
**   mongobare load   URI DB COLL N        drop, then N documents by
**                                         insert_many, 1000 a call (timed:
**                                         the inserts only)
**   mongobare index  URI DB COLL FIELD    create the index {FIELD: 1}
**                                         (untimed)
**   mongobare scan   URI DB COLL BATCH    find {} with the projection of
**                                         the scanned fields and batchSize
**                                         BATCH; touch every value
**   mongobare lookup URI DB COLL FIELD N MAXID BATCH
**                                         N finds of {FIELD: id}, id
**                                         pseudo-random in 1..MAXID (the
**                                         sequence of fedbench lookup),
**                                         projection {name: 1}; a FIELD
**                                         ending in "+" sends federate's
**                                         superset filter instead (see
**                                         docs/mongo.md): {$or: [{F: {$in:
**                                         [id]}}, {F: {$type: ["string",
**                                         "decimal", "objectId"]}}]}
**
** The documents: {_id: i, name: "name<i>", val: i*1.5, ts: <date
** 2024-01-01 + i seconds>, n: i} (int32 _id and n).
** Prints "<rows> rows <seconds> s", as pgbare does.
*/
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static double now(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return tv.tv_sec + tv.tv_usec/1e6;
}

static void die(const char *zWhat, const bson_error_t *pErr){
  fprintf(stderr, "mongobare: %s: %s\n", zWhat, pErr ? pErr->message : "failed");
  exit(1);
}

/* Touch every value of one document, as federate reads every column. */
static long touch(const bson_t *pDoc){
  bson_iter_t it;
  long n = 0;
  if( !bson_iter_init(&it, pDoc) ) return 0;
  while( bson_iter_next(&it) ){
    switch( bson_iter_type(&it) ){
      case BSON_TYPE_UTF8: { uint32_t k; bson_iter_utf8(&it, &k); n += k; break; }
      case BSON_TYPE_INT32: n += bson_iter_int32(&it)&1; break;
      case BSON_TYPE_INT64: n += bson_iter_int64(&it)&1; break;
      case BSON_TYPE_DOUBLE: n += bson_iter_double(&it)>0; break;
      case BSON_TYPE_DATE_TIME: n += bson_iter_date_time(&it)&1; break;
      default: n++;
    }
  }
  return n;
}

static mongoc_cursor_t *findDocs(mongoc_collection_t *pColl, const bson_t *pFilter,
                                 const char *zProj, long nBatch){
  bson_t opts, proj;
  mongoc_cursor_t *pCur;
  bson_init(&opts);
  bson_append_document_begin(&opts, "projection", -1, &proj);
  if( strcmp(zProj, "scan")==0 ){
    BSON_APPEND_INT32(&proj, "name", 1);
    BSON_APPEND_INT32(&proj, "val", 1);
    BSON_APPEND_INT32(&proj, "ts", 1);
    BSON_APPEND_INT32(&proj, "n", 1);
  }else{
    BSON_APPEND_INT32(&proj, "name", 1);
  }
  bson_append_document_end(&opts, &proj);
  BSON_APPEND_INT64(&opts, "batchSize", nBatch);
  pCur = mongoc_collection_find_with_opts(pColl, pFilter, &opts, 0);
  bson_destroy(&opts);
  return pCur;
}

int main(int argc, char **argv){
  mongoc_client_t *pClient;
  mongoc_collection_t *pColl;
  bson_error_t err;
  bson_t ping = BSON_INITIALIZER;
  long nRow = 0;
  double t0;
  if( argc<5 ){
    fprintf(stderr, "usage: mongobare drop|load|index|scan|lookup URI DB COLL ARG...\n");
    return 1;
  }
  mongoc_init();
  pClient = mongoc_client_new(argv[2]);
  if( pClient==0 ) die("bad URI", 0);
  /* Connect before the clock starts, as the other bare loops do. */
  BSON_APPEND_INT32(&ping, "ping", 1);
  if( !mongoc_client_command_simple(pClient, "admin", &ping, 0, 0, &err) ){
    die("ping", &err);
  }
  bson_destroy(&ping);
  pColl = mongoc_client_get_collection(pClient, argv[3], argv[4]);
  t0 = now();
  if( strcmp(argv[1], "drop")==0 || strcmp(argv[1], "load")==0 ){
    if( !mongoc_collection_drop(pColl, &err) && strstr(err.message, "not found")==0 ){
      die("drop", &err);
    }
    t0 = now();
    if( argv[1][0]=='l' && argc>=6 ){
      long i, n = atol(argv[5]);
      bson_t *aDoc = calloc(1000, sizeof(bson_t));
      const bson_t **apDoc = calloc(1000, sizeof(bson_t*));
      for(i=1; i<=n; ){
        int j, k;
        for(j=0; j<1000 && i<=n; j++, i++){
          char zName[32];
          bson_init(&aDoc[j]);
          snprintf(zName, sizeof(zName), "name%ld", i);
          BSON_APPEND_INT32(&aDoc[j], "_id", (int32_t)i);
          BSON_APPEND_UTF8(&aDoc[j], "name", zName);
          BSON_APPEND_DOUBLE(&aDoc[j], "val", i*1.5);
          BSON_APPEND_DATE_TIME(&aDoc[j], "ts", (1704067200LL + i)*1000);
          BSON_APPEND_INT32(&aDoc[j], "n", (int32_t)i);
          apDoc[j] = &aDoc[j];
        }
        if( !mongoc_collection_insert_many(pColl, apDoc, j, 0, 0, &err) ){
          die("insert_many", &err);
        }
        for(k=0; k<j; k++) bson_destroy(&aDoc[k]);
      }
      free(aDoc);
      free(apDoc);
      nRow = n;
    }
  }else if( strcmp(argv[1], "index")==0 && argc>=6 ){
    bson_t cmd = BSON_INITIALIZER, aIdx, idx, key;
    char zName[128];
    snprintf(zName, sizeof(zName), "%s_1", argv[5]);
    BSON_APPEND_UTF8(&cmd, "createIndexes", argv[4]);
    bson_append_array_begin(&cmd, "indexes", -1, &aIdx);
    bson_append_document_begin(&aIdx, "0", -1, &idx);
    bson_append_document_begin(&idx, "key", -1, &key);
    BSON_APPEND_INT32(&key, argv[5], 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", zName);
    bson_append_document_end(&aIdx, &idx);
    bson_append_array_end(&cmd, &aIdx);
    if( !mongoc_client_command_simple(pClient, argv[3], &cmd, 0, 0, &err) ){
      die("createIndexes", &err);
    }
    bson_destroy(&cmd);
  }else if( strcmp(argv[1], "scan")==0 && argc>=6 ){
    bson_t filter = BSON_INITIALIZER;
    const bson_t *pDoc;
    long nByte = 0;
    mongoc_cursor_t *pCur = findDocs(pColl, &filter, "scan", atol(argv[5]));
    while( mongoc_cursor_next(pCur, &pDoc) ){
      nByte += touch(pDoc);
      nRow++;
    }
    if( mongoc_cursor_error(pCur, &err) ) die("scan", &err);
    mongoc_cursor_destroy(pCur);
    bson_destroy(&filter);
    if( nByte==0 ) nRow = -nRow;
  }else if( strcmp(argv[1], "lookup")==0 && argc>=9 ){
    long i, n = atol(argv[6]), nMax = atol(argv[7]), nBatch = atol(argv[8]);
    unsigned long x = 12345;
    const char *zField = argv[5];
    size_t nField = strcspn(zField, "+");
    for(i=0; i<n; i++){
      bson_t filter = BSON_INITIALIZER;
      const bson_t *pDoc;
      mongoc_cursor_t *pCur;
      x = x*6364136223846793005UL + 1442695040888963407UL;
      if( zField[nField]=='+' ){
        bson_t aOr, a0, a1, c0, c1, in, ty;
        bson_append_array_begin(&filter, "$or", -1, &aOr);
        bson_append_document_begin(&aOr, "0", -1, &a0);
        bson_append_document_begin(&a0, zField, (int)nField, &c0);
        bson_append_array_begin(&c0, "$in", -1, &in);
        BSON_APPEND_INT64(&in, "0", (int64_t)(1 + (x>>33) % nMax));
        bson_append_array_end(&c0, &in);
        bson_append_document_end(&a0, &c0);
        bson_append_document_end(&aOr, &a0);
        bson_append_document_begin(&aOr, "1", -1, &a1);
        bson_append_document_begin(&a1, zField, (int)nField, &c1);
        bson_append_array_begin(&c1, "$type", -1, &ty);
        BSON_APPEND_UTF8(&ty, "0", "string");
        BSON_APPEND_UTF8(&ty, "1", "decimal");
        BSON_APPEND_UTF8(&ty, "2", "objectId");
        bson_append_array_end(&c1, &ty);
        bson_append_document_end(&a1, &c1);
        bson_append_document_end(&aOr, &a1);
        bson_append_array_end(&filter, &aOr);
      }else{
        BSON_APPEND_INT64(&filter, zField, (int64_t)(1 + (x>>33) % nMax));
      }
      pCur = findDocs(pColl, &filter, "lookup", nBatch);
      while( mongoc_cursor_next(pCur, &pDoc) ){
        touch(pDoc);
        nRow++;
      }
      if( mongoc_cursor_error(pCur, &err) ) die("lookup", &err);
      mongoc_cursor_destroy(pCur);
      bson_destroy(&filter);
    }
  }else{
    fprintf(stderr, "mongobare: bad arguments\n");
    return 1;
  }
  printf("%ld rows %.4f s\n", nRow, now()-t0);
  mongoc_collection_destroy(pColl);
  mongoc_client_destroy(pClient);
  mongoc_cleanup();
  return 0;
}
