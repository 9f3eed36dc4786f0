/*
** types.c: pure (no I/O): BSON values as SQLite values (the mapping of
** docs/mongo.md, "Types"), a declared column's affinity applied as a local
** SQLite table applies it on INSERT, dates as text, and the equality the
** scan checks itself for _id values that a filter cannot express.
*/
#include "mongoInt.h"
#include <math.h>

void mongoValClear(MongoVal *p){
  if( p->zOwn ) bson_free(p->zOwn);
  memset(p, 0, sizeof(*p));
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static void civilFromDays(i64 z, int *pY, int *pM, int *pD){
  i64 era, doe, yoe, y, doy, mp;
  z += 719468;
  era = (z>=0 ? z : z-146096) / 146097;
  doe = z - era*146097;
  yoe = (doe - doe/1460 + doe/36524 - doe/146096) / 365;
  y = yoe + era*400;
  doy = doe - (365*yoe + yoe/4 - yoe/100);
  mp = (5*doy + 2)/153;
  *pD = (int)(doy - (153*mp+2)/5 + 1);
  *pM = (int)(mp<10 ? mp+3 : mp-9);
  *pY = (int)(y + (*pM<=2));
}

int mongoDateText(i64 iMs, char *z){
  i64 iDay, iSec;
  int ms, y, m, d, n;
  if( iMs < -62135596800000LL || iMs > 253402300799999LL ) return 0;
  iDay = iMs>=0 ? iMs/86400000 : -((-iMs+86399999)/86400000);
  iSec = (iMs - iDay*86400000)/1000;
  ms = (int)((iMs - iDay*86400000) % 1000);
  civilFromDays(iDay, &y, &m, &d);
  n = sprintf(z, "%04d-%02d-%02d %02d:%02d:%02d", y, m, d,
              (int)(iSec/3600), (int)(iSec/60%60), (int)(iSec%60));
  if( ms ){
    n += sprintf(&z[n], ".%03d", ms);
    while( z[n-1]=='0' ) n--;
  }
  memcpy(&z[n], "+00:00", 7);
  return 1;
}

/* Relaxed extended JSON of one element, through a wrapper document. */
static int iterJson(const bson_iter_t *pIter, MongoVal *p){
  bson_t wrap;
  const bson_value_t *pV = bson_iter_value((bson_iter_t*)pIter);
  char *zJson;
  size_t n;
  bson_init(&wrap);
  if( !bson_append_value(&wrap, "v", 1, pV) ){
    bson_destroy(&wrap);
    return SQLITE_NOMEM;
  }
  zJson = bson_as_relaxed_extended_json(&wrap, &n);
  bson_destroy(&wrap);
  if( zJson==0 ) return SQLITE_NOMEM;
  /* "{ "v" : X }" -> X */
  if( n<10 || memcmp(zJson, "{ \"v\" : ", 8)!=0 ){
    bson_free(zJson);
    return SQLITE_ERROR;
  }
  p->eType = SQLITE_TEXT;
  p->zOwn = zJson;
  p->z = zJson+8;
  p->n = (int)n - 10;
  return SQLITE_OK;
}

int mongoIterValue(const bson_iter_t *pIter, MongoVal *p){
  memset(p, 0, sizeof(*p));
  switch( bson_iter_type(pIter) ){
    case BSON_TYPE_EOD:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
      p->eType = SQLITE_NULL;
      return SQLITE_OK;
    case BSON_TYPE_INT32:
      p->eType = SQLITE_INTEGER;
      p->i = bson_iter_int32(pIter);
      return SQLITE_OK;
    case BSON_TYPE_INT64:
      p->eType = SQLITE_INTEGER;
      p->i = bson_iter_int64(pIter);
      return SQLITE_OK;
    case BSON_TYPE_BOOL:
      p->eType = SQLITE_INTEGER;
      p->i = bson_iter_bool(pIter);
      return SQLITE_OK;
    case BSON_TYPE_DOUBLE:
      p->r = bson_iter_double(pIter);
      if( isnan(p->r) ){
        p->eType = SQLITE_TEXT;
        p->z = "NaN";
        p->n = 3;
      }else{
        p->eType = SQLITE_FLOAT;
      }
      return SQLITE_OK;
    case BSON_TYPE_UTF8: {
      uint32_t n;
      p->z = bson_iter_utf8(pIter, &n);
      p->n = (int)n;
      p->eType = SQLITE_TEXT;
      return SQLITE_OK;
    }
    case BSON_TYPE_BINARY: {
      bson_subtype_t t;
      uint32_t n;
      const uint8_t *a;
      bson_iter_binary(pIter, &t, &n, &a);
      p->eType = SQLITE_BLOB;
      p->z = (const char*)(a ? a : (const uint8_t*)"");
      p->n = (int)n;
      return SQLITE_OK;
    }
    case BSON_TYPE_OID:
      p->zOwn = bson_malloc(25);
      bson_oid_to_string(bson_iter_oid(pIter), p->zOwn);
      p->eType = SQLITE_TEXT;
      p->z = p->zOwn;
      p->n = 24;
      return SQLITE_OK;
    case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      bson_iter_decimal128(pIter, &d);
      p->zOwn = bson_malloc(BSON_DECIMAL128_STRING);
      bson_decimal128_to_string(&d, p->zOwn);
      p->eType = SQLITE_TEXT;
      p->z = p->zOwn;
      p->n = (int)strlen(p->zOwn);
      return SQLITE_OK;
    }
    case BSON_TYPE_DATE_TIME: {
      char z[48];
      if( mongoDateText(bson_iter_date_time(pIter), z) ){
        p->n = (int)strlen(z);
        p->zOwn = bson_malloc(p->n+1);
        memcpy(p->zOwn, z, p->n+1);
        p->eType = SQLITE_TEXT;
        p->z = p->zOwn;
        return SQLITE_OK;
      }
      return iterJson(pIter, p);
    }
    default:
      /* documents, arrays, regex, timestamp, code, symbol, minKey, ... */
      return iterJson(pIter, p);
  }
}

int mongoColumnValue(const bson_t *pDoc, const MongoCol *pCol, MongoVal *p){
  bson_iter_t it, child;
  memset(p, 0, sizeof(*p));
  if( pCol->eKind==MONGO_KIND_DOC ){
    size_t n;
    char *z = bson_as_relaxed_extended_json(pDoc, &n);
    if( z==0 ) return SQLITE_NOMEM;
    p->eType = SQLITE_TEXT;
    p->zOwn = z;
    p->z = z;
    p->n = (int)n;
    return SQLITE_OK;
  }
  if( !bson_iter_init(&it, pDoc) ) return SQLITE_ERROR;
  if( pCol->bTop ){
    if( !bson_iter_find(&it, pCol->zPath) ){
      p->eType = SQLITE_NULL;
      return SQLITE_OK;
    }
    return mongoIterValue(&it, p);
  }
  if( !bson_iter_find_descendant(&it, pCol->zPath, &child) ){
    p->eType = SQLITE_NULL;
    return SQLITE_OK;
  }
  return mongoIterValue(&child, p);
}

/* SQLite's sqlite3VdbeIntegerAffinity(): a double that is exactly an
** integer strictly inside the int64 range becomes that integer. */
static void integerAffinity(MongoVal *p){
  if( p->eType==SQLITE_FLOAT && p->r > -9223372036854775808.0
   && p->r < 9223372036854775808.0 ){
    i64 ix = (i64)p->r;
    if( (double)ix==p->r && ix>(i64)0x8000000000000000LL
     && ix<0x7fffffffffffffffLL ){
      p->eType = SQLITE_INTEGER;
      p->i = ix;
    }
  }
}

int mongoApplyAffinity(MongoVal *p, int eAff, sqlite3_stmt *pNum){
  if( eAff==MONGO_AFF_NONE || p->eType==SQLITE_NULL
   || p->eType==SQLITE_BLOB ) return SQLITE_OK;
  if( eAff==MONGO_AFF_TEXT ){
    char z[64];
    if( p->eType==SQLITE_INTEGER ){
      sqlite3_snprintf(sizeof(z), z, "%lld", p->i);
    }else if( p->eType==SQLITE_FLOAT ){
      sqlite3_snprintf(sizeof(z), z, "%!.15g", p->r);
    }else{
      return SQLITE_OK;
    }
    mongoValClear(p);
    p->n = (int)strlen(z);
    p->zOwn = bson_malloc(p->n+1);
    memcpy(p->zOwn, z, p->n+1);
    p->z = p->zOwn;
    p->eType = SQLITE_TEXT;
    return SQLITE_OK;
  }
  if( p->eType==SQLITE_TEXT ){
    /* SQLite's applyNumericAffinity(): through the library itself. */
    int rc, t;
    sqlite3_value *v;
    if( pNum==0 ) return SQLITE_NOMEM;
    rc = sqlite3_bind_text(pNum, 1, p->z, p->n, SQLITE_STATIC);
    if( rc==SQLITE_OK ) rc = sqlite3_step(pNum);
    if( rc!=SQLITE_ROW ){
      sqlite3_reset(pNum);
      return rc==SQLITE_OK ? SQLITE_ERROR : rc;
    }
    v = sqlite3_column_value(pNum, 0);
    t = sqlite3_value_numeric_type(v);
    if( t==SQLITE_INTEGER || t==SQLITE_FLOAT ){
      i64 i = sqlite3_value_int64(v);
      double r = sqlite3_value_double(v);
      mongoValClear(p);
      p->eType = t;
      p->i = i;
      p->r = r;
    }
    sqlite3_reset(pNum);
    sqlite3_clear_bindings(pNum);
  }
  if( eAff==MONGO_AFF_REAL ){
    if( p->eType==SQLITE_INTEGER ){
      p->eType = SQLITE_FLOAT;
      p->r = (double)p->i;
    }
  }else{
    integerAffinity(p);
  }
  return SQLITE_OK;
}

void mongoResult(sqlite3_context *ctx, const MongoVal *p){
  switch( p->eType ){
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, p->i); break;
    case SQLITE_FLOAT:   sqlite3_result_double(ctx, p->r); break;
    case SQLITE_TEXT:
      sqlite3_result_text(ctx, p->z, p->n, SQLITE_TRANSIENT);
      break;
    case SQLITE_BLOB:
      sqlite3_result_blob(ctx, p->z, p->n, SQLITE_TRANSIENT);
      break;
    default: sqlite3_result_null(ctx); break;
  }
}

/* An int64 equal to a double, exactly. */
static int intEqReal(i64 i, double r){
  if( r!=floor(r) || r < -9223372036854775808.0
   || r >= 9223372036854775808.0 ) return 0;
  return (i64)r==i;
}

int mongoValEqual(const MongoVal *p, sqlite3_value *pV){
  switch( sqlite3_value_type(pV) ){
    case SQLITE_INTEGER:
      if( p->eType==SQLITE_INTEGER ) return p->i==sqlite3_value_int64(pV);
      if( p->eType==SQLITE_FLOAT ) return intEqReal(sqlite3_value_int64(pV), p->r);
      return 0;
    case SQLITE_FLOAT:
      if( p->eType==SQLITE_FLOAT ) return p->r==sqlite3_value_double(pV);
      if( p->eType==SQLITE_INTEGER ) return intEqReal(p->i, sqlite3_value_double(pV));
      return 0;
    case SQLITE_TEXT:
      return p->eType==SQLITE_TEXT && p->n==sqlite3_value_bytes(pV)
          && (p->n==0 || memcmp(p->z, sqlite3_value_text(pV), p->n)==0);
    case SQLITE_BLOB:
      return p->eType==SQLITE_BLOB && p->n==sqlite3_value_bytes(pV)
          && (p->n==0 || memcmp(p->z, sqlite3_value_blob(pV), p->n)==0);
  }
  return 0;
}

int mongoIterClass(const bson_iter_t *pIter){
  MongoVal v;
  int e;
  switch( bson_iter_type(pIter) ){
    case BSON_TYPE_INT32: case BSON_TYPE_INT64: case BSON_TYPE_BOOL:
      return SQLITE_INTEGER;
    case BSON_TYPE_DOUBLE:
      return isnan(bson_iter_double(pIter)) ? SQLITE_TEXT : SQLITE_FLOAT;
    case BSON_TYPE_BINARY: return SQLITE_BLOB;
    case BSON_TYPE_NULL: case BSON_TYPE_UNDEFINED: return SQLITE_NULL;
    default: break;
  }
  (void)v; (void)e;
  return SQLITE_TEXT;
}
