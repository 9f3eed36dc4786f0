/*
** mongoprobe.c: checks a MongoDB server through libmongoc, the client
** library the federate Mongo store will use (issue #14).  Written to
** validate tcl-tests/servers/mongoserver.py; it runs as well against a real mongod.
**
**   cc -O1 -o /tmp/mongoprobe tcl-tests/mongoprobe.c \
**      $(pkg-config --cflags --libs libmongoc-1.0)
**   /tmp/mongoprobe mongodb://127.0.0.1:PORT/
**
** Prints one line per check ("ok NAME" or "FAIL NAME: why") and ends with
** "N passed, N failed".  Exit status 0 when nothing failed.  It uses the
** database "mongoprobe" and drops it first.
*/
#include <mongoc/mongoc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

static int nPass = 0, nFail = 0;
static mongoc_client_t *client;
static mongoc_database_t *db;
static int nGetMore = 0, nKillCursors = 0;
static bson_t lastKillReply;

static void check(int ok, const char *name, const char *fmt, ...){
  if( ok ){
    nPass++;
    printf("ok %s\n", name);
  }else{
    va_list ap;
    nFail++;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
  }
  fflush(stdout);
}

static bson_t *J(const char *json){
  bson_error_t e;
  bson_t *b = bson_new_from_json((const uint8_t*)json, -1, &e);
  if( !b ){ fprintf(stderr, "bad json %s: %s\n", json, e.message); exit(2); }
  return b;
}

static char *S(const bson_t *b){
  static char buf[8][2048];
  static int i = 0;
  char *s = bson_as_canonical_extended_json(b, NULL);
  char *out = buf[i++ % 8];
  snprintf(out, 2048, "%s", s ? s : "(null)");
  bson_free(s);
  return out;
}

/* APM: count getMore and killCursors commands and keep killCursors' reply */
static void on_started(const mongoc_apm_command_started_t *ev){
  const char *n = mongoc_apm_command_started_get_command_name(ev);
  if( !strcmp(n, "getMore") ) nGetMore++;
  if( !strcmp(n, "killCursors") ) nKillCursors++;
}
static void on_succeeded(const mongoc_apm_command_succeeded_t *ev){
  if( !strcmp(mongoc_apm_command_succeeded_get_command_name(ev), "killCursors") ){
    bson_destroy(&lastKillReply);
    bson_copy_to(mongoc_apm_command_succeeded_get_reply(ev), &lastKillReply);
  }
}

/* Run command JSON on the probe database; REPLY is initialised. */
static int cmd(const char *json, bson_t *reply, bson_error_t *e){
  bson_t *c = J(json);
  int ok = mongoc_database_command_simple(db, c, NULL, reply, e);
  bson_destroy(c);
  return ok;
}

static int32_t get_i32(const bson_t *b, const char *path){
  bson_iter_t it, f;
  if( bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &f) ){
    if( BSON_ITER_HOLDS_INT32(&f) ) return bson_iter_int32(&f);
    if( BSON_ITER_HOLDS_INT64(&f) ) return (int32_t)bson_iter_int64(&f);
    if( BSON_ITER_HOLDS_DOUBLE(&f) ) return (int32_t)bson_iter_double(&f);
  }
  return -999;
}
static const char *get_str(const bson_t *b, const char *path){
  bson_iter_t it, f;
  if( bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, &f)
   && BSON_ITER_HOLDS_UTF8(&f) ) return bson_iter_utf8(&f, NULL);
  return "";
}

static int64_t count_filter(mongoc_collection_t *c, const bson_t *flt, bson_error_t *e){
  return mongoc_collection_count_documents(c, flt, NULL, NULL, NULL, e);
}

static void check_count(mongoc_collection_t *c, const char *name,
                        const char *json, int64_t want){
  bson_error_t e;
  bson_t *f = J(json);
  int64_t n = count_filter(c, f, &e);
  char nm[128];
  snprintf(nm, sizeof nm, "filter %s", name);
  check(n == want, nm, "%s: got %lld want %lld (%s)", json, (long long)n,
        (long long)want, n < 0 ? e.message : "");
  bson_destroy(f);
}

/* JSON plus {FIELD: {$type: T}} appended by hand */
static bson_t *TJ(const char *json, const char *field, const char *t){
  bson_t *b = J(json), sub;
  BSON_APPEND_DOCUMENT_BEGIN(b, field, &sub);
  BSON_APPEND_UTF8(&sub, "$type", t);
  bson_append_document_end(b, &sub);
  return b;
}

/* {FIELD: {$type: T}} built by hand: libbson's JSON parser reads "$type"
** as the legacy extended JSON for binary */
static void check_type(mongoc_collection_t *c, const char *name, const char *field,
                       const char *t, int code, int64_t want){
  bson_t f, sub;
  bson_error_t e;
  char nm[128];
  bson_init(&f);
  BSON_APPEND_DOCUMENT_BEGIN(&f, field, &sub);
  if( t ) BSON_APPEND_UTF8(&sub, "$type", t); else BSON_APPEND_INT32(&sub, "$type", code);
  bson_append_document_end(&f, &sub);
  int64_t n = count_filter(c, &f, &e);
  snprintf(nm, sizeof nm, "filter %s", name);
  check(n == want, nm, "%s: got %lld want %lld %s", S(&f), (long long)n, (long long)want, n < 0 ? e.message : "");
  bson_destroy(&f);
}

/* {FIELD: {$regex: PAT, $options: OPT}} with the $regex operator (string) */
static void check_regex_op(mongoc_collection_t *c, const char *name,
                           const char *pat, const char *opt, int64_t want){
  bson_t f, sub;
  bson_error_t e;
  bson_init(&f);
  BSON_APPEND_DOCUMENT_BEGIN(&f, "b", &sub);
  BSON_APPEND_UTF8(&sub, "$regex", pat);
  if( opt ) BSON_APPEND_UTF8(&sub, "$options", opt);
  bson_append_document_end(&f, &sub);
  int64_t n = count_filter(c, &f, &e);
  check(n == want, name, "%s: got %lld want %lld", S(&f), (long long)n, (long long)want);
  bson_destroy(&f);
}

/* The _id values of CURSOR's documents, as "1,2,3" */
static void ids_of(mongoc_cursor_t *cur, char *out, size_t n){
  const bson_t *d;
  bson_error_t e;
  out[0] = 0;
  while( mongoc_cursor_next(cur, &d) ){
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s%d", out[0] ? "," : "", get_i32(d, "_id"));
    strncat(out, tmp, n - strlen(out) - 1);
  }
  if( mongoc_cursor_error(cur, &e) ){
    strncat(out, " ERROR ", n - strlen(out) - 1);
    strncat(out, e.message, n - strlen(out) - 1);
  }
}

static void seed_filter_data(mongoc_collection_t *c){
  const char *docs[] = {
    "{\"_id\":1,\"a\":1,\"b\":\"apple\",\"t\":[\"red\",\"green\"],\"s\":{\"c\":5},"
      "\"n\":null,\"e\":[{\"k\":1,\"v\":2},{\"k\":3,\"v\":4}],"
      "\"l\":{\"$numberLong\":\"10\"},\"d\":2.5}",
    "{\"_id\":2,\"a\":2,\"b\":\"banana\",\"t\":[\"red\"],\"s\":{\"c\":7},"
      "\"e\":[{\"k\":1,\"v\":5}],\"l\":{\"$numberLong\":\"20\"},\"d\":3.5}",
    "{\"_id\":3,\"a\":3,\"b\":\"cherry\",\"t\":[],\"s\":{\"c\":5},\"n\":1,"
      "\"l\":30,\"d\":4.0}",
    "{\"_id\":4,\"a\":\"3\",\"b\":\"Apple pie\",\"t\":[\"green\",\"blue\",\"red\"],"
      "\"s\":{},\"e\":[],\"d\":{\"$numberDecimal\":\"5.5\"}}",
    "{\"_id\":5,\"b\":null,\"t\":\"red\"}",
    0
  };
  int i;
  for(i=0; docs[i]; i++){
    bson_error_t e;
    bson_t *d = J(docs[i]);
    if( !mongoc_collection_insert_one(c, d, NULL, NULL, &e) ){
      fprintf(stderr, "seed: %s\n", e.message);
    }
    bson_destroy(d);
  }
}

static void test_types(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "types");
  bson_t doc, sub, arr;
  bson_error_t e;
  bson_oid_t oid;
  bson_decimal128_t dec;
  uint8_t uuid[16] = {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16};
  uint8_t bin[5] = {0, 1, 0xff, 0x80, 0};
  bson_t scope;

  bson_init(&doc);
  BSON_APPEND_INT32(&doc, "_id", 1);
  BSON_APPEND_DOUBLE(&doc, "double", 1.25);
  BSON_APPEND_DOUBLE(&doc, "negzero", -0.0);
  BSON_APPEND_DOUBLE(&doc, "inf", INFINITY);
  BSON_APPEND_DOUBLE(&doc, "nan", NAN);
  BSON_APPEND_DOUBLE(&doc, "whole", 3.0);
  BSON_APPEND_UTF8(&doc, "utf8", "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
  bson_append_utf8(&doc, "nul", -1, "a\0b", 3);
  BSON_APPEND_DOCUMENT_BEGIN(&doc, "doc", &sub);
  BSON_APPEND_INT32(&sub, "z", 1);
  BSON_APPEND_INT32(&sub, "a", 2);          /* key order must survive */
  bson_append_document_end(&doc, &sub);
  BSON_APPEND_ARRAY_BEGIN(&doc, "array", &arr);
  BSON_APPEND_INT32(&arr, "0", 1);
  BSON_APPEND_UTF8(&arr, "1", "two");
  BSON_APPEND_NULL(&arr, "2");
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_BINARY(&doc, "bin0", BSON_SUBTYPE_BINARY, bin, sizeof bin);
  BSON_APPEND_BINARY(&doc, "binempty", BSON_SUBTYPE_BINARY, bin, 0);
  BSON_APPEND_BINARY(&doc, "uuid4", BSON_SUBTYPE_UUID, uuid, 16);
  BSON_APPEND_BINARY(&doc, "uuid3", BSON_SUBTYPE_UUID_DEPRECATED, uuid, 16);
  BSON_APPEND_BINARY(&doc, "user", BSON_SUBTYPE_USER, bin, 3);
  bson_oid_init_from_string(&oid, "5f1a2b3c4d5e6f7081928374");
  BSON_APPEND_OID(&doc, "oid", &oid);
  BSON_APPEND_BOOL(&doc, "true", true);
  BSON_APPEND_BOOL(&doc, "false", false);
  BSON_APPEND_DATE_TIME(&doc, "date", 1577934123456LL);
  BSON_APPEND_DATE_TIME(&doc, "date1900", -2208988800000LL + 1);
  BSON_APPEND_NULL(&doc, "null");
  BSON_APPEND_REGEX(&doc, "regex", "^a.c$", "im");
  BSON_APPEND_CODE(&doc, "code", "function(){return 1;}");
  bson_init(&scope);
  BSON_APPEND_INT32(&scope, "x", 1);
  BSON_APPEND_CODE_WITH_SCOPE(&doc, "codews", "x+1", &scope);
  bson_destroy(&scope);
  BSON_APPEND_INT32(&doc, "i32", 7);
  BSON_APPEND_INT32(&doc, "i32min", INT32_MIN);
  BSON_APPEND_INT32(&doc, "i32max", INT32_MAX);
  BSON_APPEND_INT64(&doc, "i64small", 7);                /* int64 that fits int32 */
  BSON_APPEND_INT64(&doc, "i64min", INT64_MIN);
  BSON_APPEND_INT64(&doc, "i64max", INT64_MAX);
  BSON_APPEND_TIMESTAMP(&doc, "ts", 1600000000, 7);
  bson_decimal128_from_string("1.10", &dec);
  BSON_APPEND_DECIMAL128(&doc, "dec", &dec);
  bson_decimal128_from_string("-1.234567890123456789012345678901234E+6000", &dec);
  BSON_APPEND_DECIMAL128(&doc, "decbig", &dec);
  bson_decimal128_from_string("NaN", &dec);
  BSON_APPEND_DECIMAL128(&doc, "decnan", &dec);
  BSON_APPEND_MINKEY(&doc, "minkey");
  BSON_APPEND_MAXKEY(&doc, "maxkey");

  if( !mongoc_collection_insert_one(c, &doc, NULL, NULL, &e) ){
    check(0, "types insert", "%s", e.message);
  }else{
    bson_t *q = J("{\"_id\":1}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, q, NULL, NULL);
    const bson_t *got;
    if( mongoc_cursor_next(cur, &got) ){
      int same = bson_equal(got, &doc);
      check(same, "types read back identical (every BSON type)",
            "\nsent %s\ngot  %s", S(&doc), S(got));
      if( !same ){
        bson_iter_t a, b;
        bson_iter_init(&a, &doc);
        while( bson_iter_next(&a) ){
          const char *k = bson_iter_key(&a);
          if( !bson_iter_init_find(&b, got, k) ){ printf("  missing %s\n", k); continue; }
          if( bson_iter_type(&a)!=bson_iter_type(&b) ) printf("  type %s: %d -> %d\n", k, bson_iter_type(&a), bson_iter_type(&b));
        }
      }
    }else{
      check(0, "types read back identical (every BSON type)", "not found");
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(q);
  }
  bson_destroy(&doc);

  /* $type over the stored types */
  {
    struct { const char *f; const char *t; int want; } tt[] = {
      {"i32","int",1},{"i64small","long",1},{"i64small","int",0},{"i32","long",0},
      {"double","double",1},{"whole","double",1},{"whole","int",0},
      {"dec","decimal",1},{"date","date",1},{"bin0","binData",1},{"uuid4","binData",1},
      {"oid","objectId",1},{"regex","regex",1},{"ts","timestamp",1},{"null","null",1},
      {"minkey","minKey",1},{"maxkey","maxKey",1},{"array","array",1},{"doc","object",1},
      {"true","bool",1},{"utf8","string",1},{0,0,0}
    };
    int i, bad = 0;
    char why[1024] = "";
    for(i=0; tt[i].f; i++){
      char js[200];
      snprintf(js, sizeof js, "{\"%s\":{\"$type\":\"%s\"}}", tt[i].f, tt[i].t);
      bson_t *f = TJ("{}", tt[i].f, tt[i].t);
      int64_t n = count_filter(c, f, &e);
      if( n != tt[i].want ){
        bad++;
        snprintf(why+strlen(why), sizeof why - strlen(why), " %s=%lld", js, (long long)n);
      }
      bson_destroy(f);
    }
    check(bad == 0, "$type on every stored type (int32/int64/double distinct)", "%s", why);
  }

  /* _id of each type is stored as given */
  {
    const char *ids[] = {"{\"_id\":\"str\",\"v\":1}", "{\"_id\":{\"$numberLong\":\"2\"},\"v\":1}",
                         "{\"_id\":2.5,\"v\":1}", "{\"_id\":{\"a\":1,\"b\":2},\"v\":1}",
                         "{\"_id\":{\"$oid\":\"5f1a2b3c4d5e6f7081928375\"},\"v\":1}", 0};
    int i, bad = 0;
    char why[1024] = "";
    for(i=0; ids[i]; i++){
      bson_t *d = J(ids[i]);
      if( !mongoc_collection_insert_one(c, d, NULL, NULL, &e) ){
        bad++; snprintf(why+strlen(why), sizeof why-strlen(why), " insert %s: %s", ids[i], e.message);
      }else{
        bson_t q; bson_iter_t it;
        bson_init(&q);
        bson_iter_init_find(&it, d, "_id");
        bson_append_iter(&q, "_id", -1, &it);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &q, NULL, NULL);
        const bson_t *got;
        if( !mongoc_cursor_next(cur, &got) || !bson_equal(got, d) ){
          bad++; snprintf(why+strlen(why), sizeof why-strlen(why), " %s read back differently", ids[i]);
        }
        mongoc_cursor_destroy(cur);
        bson_destroy(&q);
      }
      bson_destroy(d);
    }
    /* int64 _id 2 and double _id 2.5 are distinct, int32 1 exists: a new
    ** document without _id gets an ObjectId */
    bson_t *d = J("{\"v\":2}");
    bson_t *q = TJ("{\"v\":2}", "_id", "objectId");
    mongoc_collection_insert_one(c, d, NULL, NULL, &e);
    if( count_filter(c, q, &e) != 1 ){ bad++; strcat(why, " no ObjectId _id generated"); }
    bson_destroy(d); bson_destroy(q);
    check(bad == 0, "_id types kept as given (string, int64, double, document, ObjectId)", "%s", why);
  }
  mongoc_collection_destroy(c);
}

static void test_filters(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "f");
  seed_filter_data(c);
  check_count(c, "$eq", "{\"a\":{\"$eq\":1}}", 1);
  check_count(c, "implicit eq", "{\"a\":1}", 1);
  check_count(c, "$ne (missing matches)", "{\"a\":{\"$ne\":1}}", 4);
  check_count(c, "$gt (type bracketing)", "{\"a\":{\"$gt\":1}}", 2);
  check_count(c, "$gte", "{\"a\":{\"$gte\":2}}", 2);
  check_count(c, "$lt", "{\"a\":{\"$lt\":3}}", 2);
  check_count(c, "$lte", "{\"a\":{\"$lte\":3}}", 3);
  check_count(c, "$gt string", "{\"b\":{\"$gt\":\"b\"}}", 2);
  check_count(c, "$in", "{\"a\":{\"$in\":[1,\"3\"]}}", 2);
  check_count(c, "$nin", "{\"a\":{\"$nin\":[1,2]}}", 3);
  check_count(c, "$exists true", "{\"n\":{\"$exists\":true}}", 2);
  check_count(c, "$exists false", "{\"n\":{\"$exists\":false}}", 3);
  check_count(c, "null matches null and missing", "{\"n\":null}", 4);
  check_type(c, "$type null only null", "n", "null", 0, 1);
  check_type(c, "$type int", "a", "int", 0, 3);
  check_type(c, "$type numeric code 16", "a", 0, 16, 3);
  check_type(c, "$type string", "a", "string", 0, 1);
  check_type(c, "$type long", "l", "long", 0, 2);
  check_type(c, "$type decimal", "d", "decimal", 0, 1);
  check_type(c, "$type number", "d", "number", 0, 4);
  check_type(c, "$type array", "t", "array", 0, 4);
  check_regex_op(c, "filter $regex with $options", "^a", "i", 2);
  check_regex_op(c, "filter $regex", "an", 0, 1);
  check_count(c, "regex value", "{\"b\":{\"$regularExpression\":{\"pattern\":\"rr\",\"options\":\"\"}}}", 1);
  check_count(c, "$and", "{\"$and\":[{\"a\":{\"$gte\":1}},{\"s.c\":5}]}", 2);
  check_count(c, "$or", "{\"$or\":[{\"a\":1},{\"b\":\"banana\"}]}", 2);
  check_count(c, "$nor", "{\"$nor\":[{\"a\":1},{\"b\":\"banana\"}]}", 3);
  check_count(c, "$not", "{\"a\":{\"$not\":{\"$gt\":1}}}", 3);
  check_count(c, "$elemMatch", "{\"e\":{\"$elemMatch\":{\"k\":1,\"v\":{\"$gt\":3}}}}", 1);
  check_count(c, "$size 2", "{\"t\":{\"$size\":2}}", 1);
  check_count(c, "$size 0", "{\"t\":{\"$size\":0}}", 1);
  check_count(c, "$all", "{\"t\":{\"$all\":[\"red\",\"green\"]}}", 2);
  check_count(c, "array contains", "{\"t\":\"red\"}", 4);
  check_count(c, "dotted path", "{\"s.c\":5}", 2);
  check_count(c, "dotted path into array", "{\"e.k\":3}", 1);
  check_count(c, "dotted path missing", "{\"s.c\":{\"$exists\":false}}", 2);
  check_count(c, "int64 equals int32 value", "{\"l\":{\"$numberLong\":\"30\"}}", 1);
  check_count(c, "double equals int value", "{\"d\":4}", 1);
  check_count(c, "$mod", "{\"a\":{\"$mod\":[2,1]}}", 2);
  check_count(c, "$expr", "{\"$expr\":{\"$gt\":[\"$l\",15]}}", 2);
  mongoc_collection_destroy(c);
}

static void test_find_options(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "f");
  char ids[512];
  bson_t *q = J("{}");
  bson_t *o = J("{\"sort\":{\"_id\":-1},\"skip\":1,\"limit\":2,\"projection\":{\"b\":1}}");
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  const bson_t *d;
  char got[1024] = "";
  while( mongoc_cursor_next(cur, &d) ){ strcat(got, S(d)); }
  mongoc_cursor_destroy(cur);
  check(!strcmp(got, "{ \"_id\" : { \"$numberInt\" : \"4\" }, \"b\" : \"Apple pie\" }"
                     "{ \"_id\" : { \"$numberInt\" : \"3\" }, \"b\" : \"cherry\" }"),
        "find sort/skip/limit/projection", "%s", got);
  bson_destroy(o);

  o = J("{\"sort\":{\"s.c\":1,\"_id\":-1}}");
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  ids_of(cur, ids, sizeof ids);
  mongoc_cursor_destroy(cur);
  /* s.c: 5 (missing), 4 ({} -> missing), then 5,5,7: missing sorts first */
  check(!strcmp(ids, "5,4,3,1,2"), "sort on dotted path, missing first", "%s", ids);
  bson_destroy(o);

  o = J("{\"sort\":{\"a\":1}}");
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  ids_of(cur, ids, sizeof ids);
  mongoc_cursor_destroy(cur);
  check(!strcmp(ids, "5,1,2,3,4"), "sort across types (missing, numbers, strings)", "%s", ids);
  bson_destroy(o);

  o = J("{\"projection\":{\"t\":0,\"e\":0,\"s\":0,\"l\":0,\"d\":0,\"n\":0},\"sort\":{\"_id\":1},\"limit\":1}");
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  got[0] = 0;
  while( mongoc_cursor_next(cur, &d) ){ strcat(got, S(d)); }
  mongoc_cursor_destroy(cur);
  check(!strcmp(got, "{ \"_id\" : { \"$numberInt\" : \"1\" }, \"a\" : { \"$numberInt\" : \"1\" }, \"b\" : \"apple\" }"),
        "exclusion projection", "%s", got);
  bson_destroy(o);

  o = J("{\"projection\":{\"s.c\":1,\"_id\":0},\"sort\":{\"_id\":1},\"limit\":1}");
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  got[0] = 0;
  while( mongoc_cursor_next(cur, &d) ){ strcat(got, S(d)); }
  mongoc_cursor_destroy(cur);
  check(!strcmp(got, "{ \"s\" : { \"c\" : { \"$numberInt\" : \"5\" } } }"),
        "dotted projection without _id", "%s", got);
  bson_destroy(o);

  o = J("{\"limit\":-2,\"sort\":{\"_id\":1}}");   /* negative: single batch */
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  ids_of(cur, ids, sizeof ids);
  mongoc_cursor_destroy(cur);
  check(!strcmp(ids, "1,2"), "singleBatch (negative limit)", "%s", ids);
  bson_destroy(o);
  bson_destroy(q);
  mongoc_collection_destroy(c);
}

static void test_paging(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "p");
  mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(c, NULL);
  bson_error_t e;
  bson_t reply;
  int i;
  for(i=0; i<1000; i++){
    bson_t d;
    bson_init(&d);
    BSON_APPEND_INT32(&d, "_id", i);
    BSON_APPEND_UTF8(&d, "pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    mongoc_bulk_operation_insert(bulk, &d);
    bson_destroy(&d);
  }
  int ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
  check(ok && get_i32(&reply, "nInserted") == 1000, "bulk insert 1000", "%s %s", ok ? "" : e.message, S(&reply));
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);

  bson_t *q = J("{}");
  bson_t *o = J("{\"batchSize\":100,\"sort\":{\"_id\":1}}");
  nGetMore = 0;
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  const bson_t *d;
  int n = 0, inorder = 1;
  while( mongoc_cursor_next(cur, &d) ){
    if( get_i32(d, "_id") != n ) inorder = 0;
    n++;
  }
  ok = !mongoc_cursor_error(cur, &e);
  mongoc_cursor_destroy(cur);
  check(ok && n == 1000 && inorder && nGetMore >= 9 && nGetMore <= 10,
        "getMore paging: 1000 docs, batchSize 100", "n=%d inorder=%d getMores=%d %s",
        n, inorder, nGetMore, ok ? "" : e.message);
  bson_destroy(o);

  /* killCursors: abandon a cursor after its first batch */
  o = J("{\"batchSize\":10}");
  nKillCursors = 0;
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  mongoc_cursor_next(cur, &d);
  int64_t id = mongoc_cursor_get_id(cur);
  mongoc_cursor_destroy(cur);
  check(id != 0 && nKillCursors == 1 && get_i32(&lastKillReply, "cursorsKilled.0") != -999,
        "killCursors on an abandoned cursor", "id=%lld kills=%d reply=%s",
        (long long)id, nKillCursors, S(&lastKillReply));
  {
    bson_t gm;
    bson_init(&gm);
    BSON_APPEND_INT64(&gm, "getMore", id);
    BSON_APPEND_UTF8(&gm, "collection", "p");
    ok = mongoc_database_command_simple(db, &gm, NULL, &reply, &e);
    check(!ok && e.code == 43, "getMore on a killed cursor: CursorNotFound (43)",
          "ok=%d code=%d %s", ok, e.code, e.message);
    bson_destroy(&reply);
    bson_destroy(&gm);
  }
  bson_destroy(o);

  /* limit with batchSize: no more than limit docs, over several batches */
  o = J("{\"batchSize\":7,\"limit\":25}");
  cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  n = 0;
  while( mongoc_cursor_next(cur, &d) ) n++;
  mongoc_cursor_destroy(cur);
  check(n == 25, "limit 25 with batchSize 7", "n=%d", n);
  bson_destroy(o);
  bson_destroy(q);
  mongoc_collection_destroy(c);
}

static void test_bulk_errors(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "u");
  bson_error_t e;
  bson_t reply;
  int ok = cmd("{\"createIndexes\":\"u\",\"indexes\":[{\"key\":{\"email\":1},"
               "\"name\":\"email_1\",\"unique\":true}]}", &reply, &e);
  check(ok && get_i32(&reply, "numIndexesAfter") == 2, "createIndexes unique",
        "%s %s", ok ? "" : e.message, S(&reply));
  bson_destroy(&reply);

  /* unordered bulk: the second and fourth collide */
  mongoc_bulk_operation_t *bulk;
  bson_t *opts = J("{\"ordered\":false}");
  bulk = mongoc_collection_create_bulk_operation_with_opts(c, opts);
  bson_destroy(opts);
  const char *docs[] = {"{\"_id\":1,\"email\":\"a@x\"}", "{\"_id\":2,\"email\":\"a@x\"}",
                        "{\"_id\":3,\"email\":\"b@x\"}", "{\"_id\":1,\"email\":\"c@x\"}", 0};
  int i;
  for(i=0; docs[i]; i++){ bson_t *d = J(docs[i]); mongoc_bulk_operation_insert(bulk, d); bson_destroy(d); }
  ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
  check(!ok && e.code == 11000 && get_i32(&reply, "nInserted") == 2
        && get_i32(&reply, "writeErrors.0.index") == 1
        && get_i32(&reply, "writeErrors.0.code") == 11000
        && strstr(get_str(&reply, "writeErrors.0.errmsg"), "email_1")
        && get_i32(&reply, "writeErrors.1.index") == 3
        && strstr(get_str(&reply, "writeErrors.1.errmsg"), "_id_"),
        "unordered bulk, duplicate keys: writeErrors index/code 11000/index name",
        "ok=%d code=%d %s", ok, e.code, S(&reply));
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);

  /* ordered bulk stops at the first error */
  bulk = mongoc_collection_create_bulk_operation_with_opts(c, NULL);
  const char *docs2[] = {"{\"_id\":10,\"email\":\"d@x\"}", "{\"_id\":11,\"email\":\"d@x\"}",
                         "{\"_id\":12,\"email\":\"e@x\"}", 0};
  for(i=0; docs2[i]; i++){ bson_t *d = J(docs2[i]); mongoc_bulk_operation_insert(bulk, d); bson_destroy(d); }
  ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
  check(!ok && get_i32(&reply, "nInserted") == 1 && get_i32(&reply, "writeErrors.0.index") == 1
        && get_i32(&reply, "writeErrors.0.code") == 11000,
        "ordered bulk stops at the duplicate", "%s", S(&reply));
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);

  /* update into a duplicate */
  bson_t *q = J("{\"_id\":3}"), *u = J("{\"$set\":{\"email\":\"a@x\"}}");
  ok = mongoc_collection_update_one(c, q, u, NULL, &reply, &e);
  check(!ok && e.code == 11000 && strstr(e.message, "email_1"),
        "update into a unique duplicate: 11000 naming the index", "ok=%d code=%d %s", ok, e.code, e.message);
  bson_destroy(&reply); bson_destroy(q); bson_destroy(u);

  /* a unique index over existing duplicates is refused */
  bson_t *d = J("{\"_id\":20,\"k\":1}"); mongoc_collection_insert_one(c, d, NULL, NULL, &e); bson_destroy(d);
  d = J("{\"_id\":21,\"k\":1}"); mongoc_collection_insert_one(c, d, NULL, NULL, &e); bson_destroy(d);
  ok = cmd("{\"createIndexes\":\"u\",\"indexes\":[{\"key\":{\"k\":1},\"name\":\"k_1\",\"unique\":true}]}", &reply, &e);
  check(!ok && e.code == 11000, "unique index over duplicates refused", "ok=%d code=%d %s", ok, e.code, e.message);
  bson_destroy(&reply);

  /* listIndexes */
  mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(c, NULL);
  const bson_t *ix;
  char names[256] = "";
  int uniq = 0;
  while( mongoc_cursor_next(cur, &ix) ){
    strcat(names, get_str(ix, "name")); strcat(names, " ");
    bson_iter_t it;
    if( bson_iter_init_find(&it, ix, "unique") && bson_iter_as_bool(&it) ) uniq++;
  }
  mongoc_cursor_destroy(cur);
  check(!strcmp(names, "_id_ email_1 ") && uniq == 1, "listIndexes", "%s uniq=%d", names, uniq);
  mongoc_collection_destroy(c);
}

static void test_writes(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "w");
  bson_error_t e;
  bson_t reply;
  int i, ok;
  for(i=1; i<=5; i++){
    bson_t d; bson_init(&d);
    BSON_APPEND_INT32(&d, "_id", i); BSON_APPEND_INT32(&d, "g", i % 2); BSON_APPEND_INT32(&d, "v", i * 10);
    BSON_APPEND_UTF8(&d, "x", "y");
    mongoc_collection_insert_one(c, &d, NULL, NULL, &e);
    bson_destroy(&d);
  }
  bson_t *q = J("{\"_id\":1}"), *u = J("{\"$set\":{\"v\":{\"$numberLong\":\"11\"}},\"$inc\":{\"n\":1}}");
  ok = mongoc_collection_update_one(c, q, u, NULL, &reply, &e);
  check(ok && get_i32(&reply, "matchedCount") == 1 && get_i32(&reply, "modifiedCount") == 1,
        "update_one $set/$inc", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(u);
  {
    bson_t *f = TJ("{\"_id\":1,\"n\":1}", "v", "long");
    check(count_filter(c, f, &e) == 1, "update keeps the int64 type it set", "");
    bson_destroy(f);
  }
  bson_destroy(q);

  q = J("{\"g\":1}"); u = J("{\"$unset\":{\"x\":\"\"}}");
  ok = mongoc_collection_update_many(c, q, u, NULL, &reply, &e);
  check(ok && get_i32(&reply, "matchedCount") == 3 && get_i32(&reply, "modifiedCount") == 3,
        "update_many $unset (multi)", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(q); bson_destroy(u);

  q = J("{\"_id\":2}"); u = J("{\"whole\":\"new\"}");
  ok = mongoc_collection_replace_one(c, q, u, NULL, &reply, &e);
  bson_destroy(&reply);
  {
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, q, NULL, NULL);
    const bson_t *d; char got[256] = "";
    if( mongoc_cursor_next(cur, &d) ) snprintf(got, sizeof got, "%s", S(d));
    mongoc_cursor_destroy(cur);
    check(ok && !strcmp(got, "{ \"_id\" : { \"$numberInt\" : \"2\" }, \"whole\" : \"new\" }"),
          "replace_one (replacement document)", "%s", got);
  }
  bson_destroy(q); bson_destroy(u);

  q = J("{\"_id\":\"up\"}"); u = J("{\"$set\":{\"v\":1}}");
  bson_t *o = J("{\"upsert\":true}");
  ok = mongoc_collection_update_one(c, q, u, o, &reply, &e);
  check(ok && !strcmp(get_str(&reply, "upsertedId"), "up") && get_i32(&reply, "upsertedCount") == 1,
        "upsert reports upsertedId", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(q); bson_destroy(u); bson_destroy(o);

  q = J("{\"g\":0}");     /* _id 4 (2 was replaced) */
  ok = mongoc_collection_delete_one(c, q, NULL, &reply, &e);
  check(ok && get_i32(&reply, "deletedCount") == 1, "delete_one (limit 1)", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(q);
  q = J("{\"_id\":{\"$in\":[1,3,4]}}");
  ok = mongoc_collection_delete_many(c, q, NULL, &reply, &e);
  check(ok && get_i32(&reply, "deletedCount") == 2, "delete_many (limit 0)", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(q);

  /* findAndModify: update returning the new document */
  {
    mongoc_find_and_modify_opts_t *fm = mongoc_find_and_modify_opts_new();
    bson_t *upd = J("{\"$inc\":{\"v\":5}}");
    bson_t *sort = J("{\"_id\":-1}");
    bson_t *fields = J("{\"v\":1}");
    mongoc_find_and_modify_opts_set_update(fm, upd);
    mongoc_find_and_modify_opts_set_sort(fm, sort);
    mongoc_find_and_modify_opts_set_fields(fm, fields);
    mongoc_find_and_modify_opts_set_flags(fm, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    q = J("{\"g\":1}");
    ok = mongoc_collection_find_and_modify_with_opts(c, q, fm, &reply, &e);
    check(ok && get_i32(&reply, "value._id") == 5 && get_i32(&reply, "value.v") == 55
          && get_i32(&reply, "lastErrorObject.n") == 1,
          "findAndModify update, new, sort, fields", "%s", ok ? S(&reply) : e.message);
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_set_flags(fm, MONGOC_FIND_AND_MODIFY_NONE);
    ok = mongoc_collection_find_and_modify_with_opts(c, q, fm, &reply, &e);
    check(ok && get_i32(&reply, "value.v") == 55, "findAndModify returns the old document",
          "%s", ok ? S(&reply) : e.message);
    bson_destroy(&reply);
    bson_destroy(q);
    q = J("{\"_id\":\"fam\"}");
    mongoc_find_and_modify_opts_set_flags(fm, MONGOC_FIND_AND_MODIFY_UPSERT|MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    ok = mongoc_collection_find_and_modify_with_opts(c, q, fm, &reply, &e);
    check(ok && !strcmp(get_str(&reply, "lastErrorObject.upserted"), "fam")
          && get_i32(&reply, "value.v") == 5,
          "findAndModify upsert", "%s", ok ? S(&reply) : e.message);
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(fm);
    fm = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_flags(fm, MONGOC_FIND_AND_MODIFY_REMOVE);
    ok = mongoc_collection_find_and_modify_with_opts(c, q, fm, &reply, &e);
    bson_t *f = J("{\"_id\":\"fam\"}");
    check(ok && !strcmp(get_str(&reply, "value._id"), "fam") && count_filter(c, f, &e) == 0,
          "findAndModify remove", "%s", ok ? S(&reply) : e.message);
    bson_destroy(&reply); bson_destroy(f); bson_destroy(q);
    mongoc_find_and_modify_opts_destroy(fm);
    bson_destroy(upd); bson_destroy(sort); bson_destroy(fields);
  }
  mongoc_collection_destroy(c);
}

static void test_aggregate(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "f");
  bson_t *p = J("{\"pipeline\":[{\"$match\":{\"a\":{\"$gte\":0}}},"
                "{\"$group\":{\"_id\":\"$s.c\",\"total\":{\"$sum\":\"$a\"},\"n\":{\"$sum\":1}}},"
                "{\"$sort\":{\"_id\":1}}]}");
  mongoc_cursor_t *cur = mongoc_collection_aggregate(c, MONGOC_QUERY_NONE, p, NULL, NULL);
  const bson_t *d;
  char got[1024] = "";
  bson_error_t e;
  while( mongoc_cursor_next(cur, &d) ){ strcat(got, S(d)); }
  if( mongoc_cursor_error(cur, &e) ){ strcat(got, e.message); }
  mongoc_cursor_destroy(cur);
  check(!strcmp(got,
    "{ \"_id\" : { \"$numberInt\" : \"5\" }, \"total\" : { \"$numberInt\" : \"4\" }, \"n\" : { \"$numberInt\" : \"2\" } }"
    "{ \"_id\" : { \"$numberInt\" : \"7\" }, \"total\" : { \"$numberInt\" : \"2\" }, \"n\" : { \"$numberInt\" : \"1\" } }"),
    "aggregate $match/$group/$sort", "%s", got);
  bson_destroy(p);

  p = J("{\"pipeline\":[{\"$sort\":{\"_id\":1}},{\"$skip\":1},{\"$limit\":2},"
        "{\"$project\":{\"b\":1,\"_id\":0}}]}");
  bson_t *o = J("{\"batchSize\":1}");
  nGetMore = 0;
  cur = mongoc_collection_aggregate(c, MONGOC_QUERY_NONE, p, o, NULL);
  got[0] = 0;
  while( mongoc_cursor_next(cur, &d) ){ strcat(got, S(d)); }
  mongoc_cursor_destroy(cur);
  check(!strcmp(got, "{ \"b\" : \"banana\" }{ \"b\" : \"cherry\" }") && nGetMore >= 1,
        "aggregate $skip/$limit/$project, batchSize 1 with getMore", "%s getMores=%d", got, nGetMore);
  bson_destroy(p); bson_destroy(o);

  /* count and distinct */
  bson_t *f = J("{\"a\":{\"$gte\":2}}");
  int64_t n = mongoc_collection_count_documents(c, f, NULL, NULL, NULL, &e);
  check(n == 2, "count_documents", "%lld %s", (long long)n, e.message);
  bson_destroy(f);
  n = mongoc_collection_estimated_document_count(c, NULL, NULL, NULL, &e);
  check(n == 5, "estimated_document_count (count command)", "%lld %s", (long long)n, n < 0 ? e.message : "");
  bson_t reply;
  int ok = cmd("{\"count\":\"f\",\"query\":{\"t\":\"red\"},\"skip\":1,\"limit\":2}", &reply, &e);
  check(ok && get_i32(&reply, "n") == 2, "count command with skip/limit", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply);
  ok = cmd("{\"distinct\":\"f\",\"key\":\"s.c\",\"query\":{}}", &reply, &e);
  check(ok && !strcmp(S(&reply) + 0, S(&reply)) && get_i32(&reply, "values.0") + get_i32(&reply, "values.1") == 12
        && get_i32(&reply, "values.2") == -999, "distinct", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply);
  ok = cmd("{\"distinct\":\"f\",\"key\":\"t\",\"query\":{\"_id\":{\"$lte\":2}}}", &reply, &e);
  check(ok && get_i32(&reply, "values.2") == -999 && *get_str(&reply, "values.1"),
        "distinct unwinds arrays", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply);
  mongoc_collection_destroy(c);
}

/* numbers across types: decimal128 ranges and order, int64 arithmetic */
static void test_numbers(void){
  mongoc_collection_t *c = mongoc_database_get_collection(db, "num");
  bson_error_t e;
  bson_t reply;
  const char *docs[] = {
    "{\"_id\":1,\"v\":{\"$numberDecimal\":\"1.10\"}}",
    "{\"_id\":2,\"v\":{\"$numberDecimal\":\"NaN\"}}",
    "{\"_id\":3,\"v\":2.5}",
    "{\"_id\":4,\"v\":{\"$numberLong\":\"3\"}}",
    "{\"_id\":5,\"v\":{\"$numberDecimal\":\"-7E+400\"}}",
    "{\"_id\":6,\"v\":1}", 0};
  int i;
  for(i=0; docs[i]; i++){ bson_t *d = J(docs[i]); mongoc_collection_insert_one(c, d, NULL, NULL, &e); bson_destroy(d); }
  check_count(c, "decimal128 $gt int", "{\"v\":{\"$gt\":1}}", 3);
  check_count(c, "decimal128 range", "{\"v\":{\"$gte\":{\"$numberDecimal\":\"1.1\"},\"$lt\":3}}", 2);
  check_count(c, "decimal128 1.10 equals 1.1", "{\"v\":{\"$numberDecimal\":\"1.1\"}}", 1);
  bson_t *q = J("{}"), *o = J("{\"sort\":{\"v\":1,\"_id\":1}}");
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, q, o, NULL);
  char ids[256];
  ids_of(cur, ids, sizeof ids);
  mongoc_cursor_destroy(cur);
  check(!strcmp(ids, "2,5,6,1,3,4"), "sort across int/long/double/decimal (NaN first)", "%s", ids);
  bson_destroy(q); bson_destroy(o);

  q = J("{\"_id\":4}");
  bson_t *u = J("{\"$inc\":{\"v\":1}}");
  mongoc_collection_update_one(c, q, u, NULL, &reply, &e);
  bson_destroy(&reply); bson_destroy(u); bson_destroy(q);
  bson_t *f = TJ("{\"_id\":4,\"v\":4}", "v", "long");
  check(count_filter(c, f, &e) == 1, "$inc on an int64 keeps int64", "");
  bson_destroy(f);
  q = J("{\"_id\":6}");
  u = J("{\"$inc\":{\"v\":2147483647}}");
  mongoc_collection_update_one(c, q, u, NULL, &reply, &e);
  bson_destroy(&reply); bson_destroy(u); bson_destroy(q);
  f = TJ("{\"_id\":6,\"v\":{\"$numberLong\":\"2147483648\"}}", "v", "long");
  check(count_filter(c, f, &e) == 1, "$inc overflowing int32 becomes int64", "");
  bson_destroy(f);

  bson_t *p = J("{\"pipeline\":[{\"$match\":{\"_id\":{\"$in\":[4]}}},"
                "{\"$group\":{\"_id\":null,\"s\":{\"$sum\":\"$v\"}}}]}");
  cur = mongoc_collection_aggregate(c, MONGOC_QUERY_NONE, p, NULL, NULL);
  const bson_t *d;
  char got[256] = "";
  if( mongoc_cursor_next(cur, &d) ) snprintf(got, sizeof got, "%s", S(d));
  mongoc_cursor_destroy(cur);
  check(!strcmp(got, "{ \"_id\" : null, \"s\" : { \"$numberLong\" : \"4\" } }"),
        "$sum of int64 is int64", "%s", got);
  bson_destroy(p);
  mongoc_collection_destroy(c);
}

static void test_catalog(void){
  bson_error_t e;
  bson_t reply;
  char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
  char all[512] = "";
  int i;
  for(i=0; names && names[i]; i++){ strcat(all, names[i]); strcat(all, " "); }
  check(names && strstr(all, "f ") && strstr(all, "types ") && strstr(all, "u "),
        "listCollections", "%s %s", all, names ? "" : e.message);
  bson_strfreev(names);

  bson_t *o = J("{\"filter\":{\"name\":\"u\"}}");
  mongoc_cursor_t *cur = mongoc_database_find_collections_with_opts(db, o);
  const bson_t *d; int n = 0;
  while( mongoc_cursor_next(cur, &d) ) n++;
  mongoc_cursor_destroy(cur);
  check(n == 1, "listCollections with a filter", "n=%d", n);
  bson_destroy(o);

  int ok = cmd("{\"create\":\"newcoll\"}", &reply, &e);
  bson_destroy(&reply);
  int ok2 = cmd("{\"create\":\"newcoll\"}", &reply, &e);
  check(ok && !ok2 && e.code == 48, "create, and create again: NamespaceExists (48)",
        "ok=%d ok2=%d code=%d %s", ok, ok2, e.code, e.message);
  bson_destroy(&reply);
  mongoc_collection_t *c = mongoc_database_get_collection(db, "newcoll");
  ok = mongoc_collection_drop(c, &e);
  ok2 = mongoc_collection_drop(c, &e);
  check(ok && !ok2 && e.code == 26, "drop, and drop again: NamespaceNotFound (26)",
        "ok=%d ok2=%d code=%d %s", ok, ok2, e.code, e.message);
  mongoc_collection_destroy(c);

  names = mongoc_client_get_database_names_with_opts(client, NULL, &e);
  all[0] = 0;
  for(i=0; names && names[i]; i++){ strcat(all, names[i]); strcat(all, " "); }
  check(names && strstr(all, "mongoprobe "), "listDatabases", "%s", all);
  bson_strfreev(names);

  ok = cmd("{\"noSuchCommand\":1}", &reply, &e);
  check(!ok && e.code == 59 && strstr(e.message, "no such command: 'noSuchCommand'"),
        "unknown command: CommandNotFound (59)", "code=%d %s", e.code, e.message);
  bson_destroy(&reply);
}

static void test_refusals(void){
  bson_error_t e;
  bson_t reply;
  mongoc_client_session_t *s = mongoc_client_start_session(client, NULL, &e);
  check(s != NULL, "start a logical session", "%s", e.message);
  if( s ){
    int ok = mongoc_client_session_start_transaction(s, NULL, &e);
    if( ok ){
      /* the driver let it through: the server must refuse */
      mongoc_collection_t *c = mongoc_database_get_collection(db, "tx");
      bson_t opts = BSON_INITIALIZER;
      mongoc_client_session_append(s, &opts, &e);
      bson_t *d = J("{\"_id\":1}");
      ok = mongoc_collection_insert_one(c, d, &opts, &reply, &e);
      check(!ok && e.code == 20, "transaction refused by the server (IllegalOperation 20)",
            "ok=%d code=%d %s", ok, e.code, e.message);
      bson_destroy(&reply); bson_destroy(d); bson_destroy(&opts);
      mongoc_collection_destroy(c);
    }else{
      check(1, "transaction refused (by libmongoc on a standalone)", "");
      printf("   (libmongoc: %s)\n", e.message);
    }
    mongoc_client_session_destroy(s);
  }
  /* the server-side refusal, whatever the driver does */
  int ok = cmd("{\"insert\":\"tx\",\"documents\":[{\"_id\":1}],"
               "\"lsid\":{\"id\":{\"$binary\":{\"base64\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"subType\":\"04\"}}},"
               "\"txnNumber\":{\"$numberLong\":\"1\"},\"startTransaction\":true,\"autocommit\":false}",
               &reply, &e);
  check(!ok && e.code == 20 && strstr(e.message, "Transaction numbers are only allowed on a replica set member or mongos"),
        "startTransaction refused: IllegalOperation (20)", "ok=%d code=%d %s", ok, e.code, e.message);
  bson_destroy(&reply);

  mongoc_collection_t *c = mongoc_database_get_collection(db, "f");
  bson_t empty = BSON_INITIALIZER;
  mongoc_change_stream_t *cs = mongoc_collection_watch(c, &empty, NULL);
  const bson_t *doc, *errdoc = NULL;
  mongoc_change_stream_next(cs, &doc);
  int err = mongoc_change_stream_error_document(cs, &e, &errdoc);
  check(err && e.code == 40573, "change stream refused (40573)", "code=%d %s", e.code, e.message);
  mongoc_change_stream_destroy(cs);
  mongoc_collection_destroy(c);
}

int main(int argc, char **argv){
  const char *uri = argc > 1 ? argv[1] : "mongodb://127.0.0.1:27017/";
  bson_error_t e;
  bson_t reply;
  mongoc_init();
  bson_init(&lastKillReply);
  client = mongoc_client_new(uri);
  if( !client ){ fprintf(stderr, "bad uri %s\n", uri); return 2; }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  mongoc_apm_callbacks_t *cb = mongoc_apm_callbacks_new();
  mongoc_apm_set_command_started_cb(cb, on_started);
  mongoc_apm_set_command_succeeded_cb(cb, on_succeeded);
  mongoc_client_set_apm_callbacks(client, cb, NULL);
  db = mongoc_client_get_database(client, "mongoprobe");

  /* handshake: server selection runs the hello/isMaster handshake */
  mongoc_server_description_t *sd = mongoc_client_select_server(client, true, NULL, &e);
  check(sd != NULL && !strcmp(mongoc_server_description_type(sd), "Standalone"),
        "handshake: server selected as Standalone", "%s %s",
        sd ? mongoc_server_description_type(sd) : "", sd ? "" : e.message);
  if( sd ){
    const bson_t *h = mongoc_server_description_hello_response(sd);
    check(get_i32(h, "maxWireVersion") >= 6 && get_i32(h, "logicalSessionTimeoutMinutes") > 0,
          "hello: wire version and session timeout", "%s", S(h));
    mongoc_server_description_destroy(sd);
  }
  bson_t *ping = J("{\"ping\":1}");
  int ok = mongoc_client_command_simple(client, "admin", ping, NULL, &reply, &e);
  check(ok, "ping", "%s", e.message);
  bson_destroy(&reply); bson_destroy(ping);
  ok = mongoc_client_get_server_status(client, NULL, &reply, &e);
  bson_destroy(&reply);
  bson_t *bi = J("{\"buildInfo\":1}");
  ok = mongoc_client_command_simple(client, "admin", bi, NULL, &reply, &e);
  check(ok && *get_str(&reply, "version"), "buildInfo", "%s", ok ? S(&reply) : e.message);
  bson_destroy(&reply); bson_destroy(bi);

  mongoc_database_drop(db, &e);
  test_types();
  test_filters();
  test_find_options();
  test_paging();
  test_bulk_errors();
  test_writes();
  test_aggregate();
  test_numbers();
  test_catalog();
  test_refusals();
  ok = mongoc_database_drop(db, &e);
  check(ok, "dropDatabase", "%s", e.message);

  printf("%d passed, %d failed\n", nPass, nFail);
  bson_destroy(&lastKillReply);
  mongoc_database_destroy(db);
  mongoc_client_destroy(client);
  mongoc_apm_callbacks_destroy(cb);
  mongoc_cleanup();
  return nFail ? 1 : 0;
}
