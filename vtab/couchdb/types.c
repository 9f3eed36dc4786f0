/*
** types.c: pure (no I/O): JSON values as SQLite values (the mapping of
** docs/couchdb.md, "Types"), a path walked through a document, and a
** declared column's affinity applied as a local SQLite table applies it
** on INSERT.  (The affinity rule is the MongoDB store's, vtab/mongo/
** types.c, over jansson values instead of BSON.)
*/
#include "couchInt.h"

void couchValClear(CouchVal *p){
  sqlite3_free(p->zOwn);
  memset(p, 0, sizeof(*p));
}

static int setOwnText(CouchVal *p, char *z){
  if( z==0 ) return SQLITE_NOMEM;
  p->eType = SQLITE_TEXT;
  p->zOwn = z;
  p->z = z;
  p->n = (int)strlen(z);
  return SQLITE_OK;
}

int couchJsonValue(json_t *pJson, CouchVal *p){
  memset(p, 0, sizeof(*p));
  switch( json_typeof(pJson) ){
    case JSON_NULL:
      p->eType = SQLITE_NULL;
      return SQLITE_OK;
    case JSON_TRUE:
    case JSON_FALSE:
      p->eType = SQLITE_INTEGER;
      p->i = json_is_true(pJson);
      return SQLITE_OK;
    case JSON_INTEGER:
      p->eType = SQLITE_INTEGER;
      p->i = (i64)json_integer_value(pJson);
      return SQLITE_OK;
    case JSON_REAL:
      p->eType = SQLITE_FLOAT;
      p->r = json_real_value(pJson);
      return SQLITE_OK;
    case JSON_STRING:
      p->eType = SQLITE_TEXT;
      p->z = json_string_value(pJson);
      p->n = (int)json_string_length(pJson);
      return SQLITE_OK;
    default: {
      /* objects and arrays: compact JSON text */
      sqlite3_str *s = sqlite3_str_new(0);
      int rc = fedHttpJsonAppend(s, pJson);
      char *z = sqlite3_str_finish(s);
      if( rc ){
        sqlite3_free(z);
        return rc;
      }
      return setOwnText(p, z);
    }
  }
}

/* Walk "a.b.0" through objects (by key) and arrays (by decimal index). */
static json_t *walkPath(json_t *pDoc, const char *zPath){
  json_t *p = pDoc;
  const char *z = zPath;
  char zKey[256];
  while( p && *z ){
    int n;
    for(n=0; z[n] && z[n]!='.'; n++){}
    if( json_is_object(p) ){
      if( n<(int)sizeof(zKey) ){
        memcpy(zKey, z, n);
        zKey[n] = 0;
        p = json_object_get(p, zKey);
      }else{
        char *zBig = fedStrdup(z, n);
        p = zBig ? json_object_get(p, zBig) : 0;
        sqlite3_free(zBig);
      }
    }else if( json_is_array(p) ){
      i64 i = 0;
      int k;
      if( n==0 || n>9 || (z[0]=='0' && n>1) ) return 0;
      for(k=0; k<n; k++){
        if( z[k]<'0' || z[k]>'9' ) return 0;
        i = i*10 + (z[k]-'0');
      }
      p = json_array_get(p, (size_t)i);
    }else{
      return 0;
    }
    z += n;
    if( *z=='.' ) z++;
  }
  return p;
}

int couchColumnValue(json_t *pDoc, const CouchCol *pCol, CouchVal *p){
  json_t *pVal;
  memset(p, 0, sizeof(*p));
  switch( pCol->eKind ){
    case COUCH_KIND_DOC: {
      sqlite3_str *s = sqlite3_str_new(0);
      int rc = fedHttpJsonAppend(s, pDoc);
      char *z = sqlite3_str_finish(s);
      if( rc ){
        sqlite3_free(z);
        return rc;
      }
      return setOwnText(p, z);
    }
    case COUCH_KIND_ID:  pVal = json_object_get(pDoc, "_id"); break;
    case COUCH_KIND_REV: pVal = json_object_get(pDoc, "_rev"); break;
    default:             pVal = walkPath(pDoc, pCol->zPath); break;
  }
  if( pVal==0 ){
    p->eType = SQLITE_NULL;
    return SQLITE_OK;
  }
  return couchJsonValue(pVal, p);
}

/* SQLite's sqlite3VdbeIntegerAffinity(): a double that is exactly an
** integer strictly inside the int64 range becomes that integer. */
static void integerAffinity(CouchVal *p){
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

int couchApplyAffinity(CouchVal *p, int eAff, sqlite3_stmt *pNum){
  if( eAff==COUCH_AFF_NONE || p->eType==SQLITE_NULL ) return SQLITE_OK;
  if( eAff==COUCH_AFF_TEXT ){
    char *z;
    if( p->eType==SQLITE_INTEGER ){
      z = sqlite3_mprintf("%lld", p->i);
    }else if( p->eType==SQLITE_FLOAT ){
      z = sqlite3_mprintf("%!.15g", p->r);
    }else{
      return SQLITE_OK;
    }
    couchValClear(p);
    return setOwnText(p, z);
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
      couchValClear(p);
      p->eType = t;
      p->i = i;
      p->r = r;
    }
    sqlite3_reset(pNum);
    sqlite3_clear_bindings(pNum);
  }
  if( eAff==COUCH_AFF_REAL ){
    if( p->eType==SQLITE_INTEGER ){
      p->eType = SQLITE_FLOAT;
      p->r = (double)p->i;
    }
  }else{
    integerAffinity(p);
  }
  return SQLITE_OK;
}

void couchResult(sqlite3_context *ctx, const CouchVal *p){
  switch( p->eType ){
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, p->i); break;
    case SQLITE_FLOAT:   sqlite3_result_double(ctx, p->r); break;
    case SQLITE_TEXT:
      sqlite3_result_text(ctx, p->z, p->n, SQLITE_TRANSIENT);
      break;
    default: sqlite3_result_null(ctx); break;
  }
}

int couchJsonClass(json_t *p){
  switch( json_typeof(p) ){
    case JSON_NULL:    return SQLITE_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_INTEGER: return SQLITE_INTEGER;
    case JSON_REAL:    return SQLITE_FLOAT;
    default:           return SQLITE_TEXT;
  }
}
