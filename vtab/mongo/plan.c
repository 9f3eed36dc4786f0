/*
** plan.c: pure (no I/O; libbson only): the find command of a scan from
** its plan and values (filter, projection, skip, limit, batchSize), and
** its fed_explain text.  What is pushed and why is in docs/mongo.md
** ("Pushdown"); table.c's mongoPushable() decides, this file builds.
*/
#include "mongoInt.h"
#include <stdio.h>
#include <math.h>

void mongoFindClear(MongoFind *p){
  int i;
  bson_destroy(&p->filter);
  bson_destroy(&p->opts);
  for(i=0; i<p->nIdVal; i++) sqlite3_value_free(p->apIdVal[i]);
  sqlite3_free(p->apIdVal);
  sqlite3_free(p->aiIdTerm);
  memset(p, 0, sizeof(*p));
}

static i64 daysFromCivil(int y, int m, int d){
  i64 era, yoe, doy, doe;
  y -= m<=2;
  era = (y>=0 ? y : y-399) / 400;
  yoe = y - era*400;
  doy = (153*(m + (m>2 ? -3 : 9)) + 2)/5 + d-1;
  doe = yoe*365 + yoe/4 - yoe/100 + doy;
  return era*146097 + doe - 719468;
}

/* The date whose text (mongoDateText) is exactly z[0..n-1], if any. */
static int dateFromText(const char *z, int n, i64 *piMs){
  char zBuf[48], zBack[48];
  int y, mo, d, h, mi, s, nUsed = 0, ms = 0;
  i64 iMs;
  if( n<25 || n>=(int)sizeof(zBuf) ) return 0;
  memcpy(zBuf, z, n);
  zBuf[n] = 0;
  if( sscanf(zBuf, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s,
             &nUsed)!=6 ) return 0;
  if( zBuf[nUsed]=='.' ){
    int k, f = 0;
    for(k=1; k<=3 && zBuf[nUsed+k]>='0' && zBuf[nUsed+k]<='9'; k++){
      f = f*10 + zBuf[nUsed+k]-'0';
    }
    for(; k<=3; k++) f *= 10;
    ms = f;
  }
  if( mo<1 || mo>12 || d<1 || d>31 || h>23 || mi>59 || s>59 ) return 0;
  iMs = (daysFromCivil(y, mo, d)*86400 + h*3600 + mi*60 + s)*1000 + ms;
  if( !mongoDateText(iMs, zBack) || strcmp(zBack, zBuf)!=0 ) return 0;
  *piMs = iMs;
  return 1;
}

/* 1 if z is 24 lower-case hexadecimal digits: an ObjectId's text. */
static int isOidText(const char *z, int n){
  int i;
  if( n!=24 ) return 0;
  for(i=0; i<24; i++){
    if( !((z[i]>='0' && z[i]<='9') || (z[i]>='a' && z[i]<='f')) ) return 0;
  }
  return 1;
}

/*
** Append to the array pIn the BSON values whose reading equals pV (a
** superset of them; the scan checks exactly).  Sets *pbAll when no finite
** list covers them (a text that may be a JSON rendering).  *pbBin when a
** blob: every binary subtype reads as a BLOB.  *pbNaN for the text 'NaN',
** which a double or decimal NaN reads as (NaN equals nothing in some
** engines: the caller adds every double and decimal).
*/
static void idAlternatives(bson_t *pIn, int *piKey, sqlite3_value *pV,
                           int *pbAll, int *pbBin, int *pbNaN){
  char zKey[16];
  const char *zK;
#define NEXTKEY() (bson_uint32_to_string((*piKey)++, &zK, zKey, sizeof(zKey)))
  switch( sqlite3_value_type(pV) ){
    case SQLITE_INTEGER: {
      i64 i = sqlite3_value_int64(pV);
      NEXTKEY(); bson_append_int64(pIn, zK, -1, i);
      if( i==0 || i==1 ){ NEXTKEY(); bson_append_bool(pIn, zK, -1, i==1); }
      break;
    }
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pV);
      NEXTKEY(); bson_append_double(pIn, zK, -1, r);
      if( r==0.0 || r==1.0 ){ NEXTKEY(); bson_append_bool(pIn, zK, -1, r==1.0); }
      break;
    }
    case SQLITE_TEXT: {
      const char *z = (const char*)sqlite3_value_text(pV);
      int n = sqlite3_value_bytes(pV);
      bson_decimal128_t dec;
      i64 iMs;
      if( z==0 ) break;
      if( n>0 && (z[0]=='{' || z[0]=='[') ){ *pbAll = 1; break; }
      NEXTKEY(); bson_append_utf8(pIn, zK, -1, z, n);
      if( isOidText(z, n) ){
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, z);
        NEXTKEY(); bson_append_oid(pIn, zK, -1, &oid);
      }
      if( (int)strlen(z)==n && bson_decimal128_from_string(z, &dec) ){
        NEXTKEY(); bson_append_decimal128(pIn, zK, -1, &dec);
      }
      if( n==3 && memcmp(z, "NaN", 3)==0 ) *pbNaN = 1;  /* a double NaN */
      if( dateFromText(z, n, &iMs) ){
        NEXTKEY(); bson_append_date_time(pIn, zK, -1, iMs);
      }
      break;
    }
    case SQLITE_BLOB:
      *pbBin = 1;
      break;
  }
#undef NEXTKEY
}

static int keepIdValue(MongoFind *p, int iTerm, sqlite3_value *pV){
  sqlite3_value **ap;
  int *ai;
  ap = sqlite3_realloc64(p->apIdVal, sizeof(*ap)*(p->nIdVal+1));
  if( ap==0 ) return SQLITE_NOMEM;
  p->apIdVal = ap;
  ai = sqlite3_realloc64(p->aiIdTerm, sizeof(*ai)*(p->nIdVal+1));
  if( ai==0 ) return SQLITE_NOMEM;
  p->aiIdTerm = ai;
  ap[p->nIdVal] = sqlite3_value_dup(pV);
  if( ap[p->nIdVal]==0 ) return SQLITE_NOMEM;
  ai[p->nIdVal] = iTerm;
  p->nIdVal++;
  return SQLITE_OK;
}

/* Append {zField: OP} to the array pOr under the next key. */
static void orAlt(bson_t *pOr, int *piOr, const char *zField, const char *zOp,
                  const bson_t *pArr, const char *zType){
  bson_t alt, op;
  char zKey[16];
  const char *zK;
  bson_uint32_to_string((*piOr)++, &zK, zKey, sizeof(zKey));
  bson_append_document_begin(pOr, zK, -1, &alt);
  bson_append_document_begin(&alt, zField, -1, &op);
  if( pArr ) bson_append_array(&op, zOp, -1, pArr);
  else bson_append_utf8(&op, zOp, -1, zType, -1);
  bson_append_document_end(&alt, &op);
  bson_append_document_end(pOr, &alt);
}

/*
** A superset of the rows whose _id equals one of the term's values:
** {_id: {$in: [...]}}, or an $or of it with {_id: {$type: ...}} clauses:
** binData for a blob (every subtype reads as a BLOB); for a term that is
** not exact (the value may carry an affinity, so that the text _id '1'
** equals 1.0, or the number 1 equals the text '1'), the types whose
** values may convert: string, decimal and objectId for a number; the
** numbers and booleans for a text.  An exact term's values are kept for
** the scan's own check.
*/
static int eqClause(MongoFind *p, bson_t *pAnd, int *piAnd,
                    const FedPlanTerm *pTerm, sqlite3_value **argv,
                    const char *zField, int eAff){
  bson_t in, clause, or;
  sqlite3_value *pList = argv[pTerm->iArg];
  sqlite3_value *pV = 0;
  int iKey = 0, bAll = 0, bBin = 0, nVal = 0, rc = SQLITE_OK;
  int bNum = 0, bText = 0, bNaN = 0, iOr = 0;
  int iTerm = pTerm->bExact ? p->nIdTerm++ : -1;
  char zKey[16];
  const char *zK;

  bson_init(&in);
  for(pV = pList; 1; ){
    if( pTerm->op==FED_OP_IN ){
      int rc2 = pV==pList ? sqlite3_vtab_in_first(pList, &pV)
                          : sqlite3_vtab_in_next(pList, &pV);
      if( rc2!=SQLITE_OK && rc2!=SQLITE_DONE ){ rc = rc2; break; }
      if( rc2==SQLITE_DONE || pV==0 ) break;
    }
    if( sqlite3_value_type(pV)!=SQLITE_NULL ){
      int t = sqlite3_value_type(pV);
      idAlternatives(&in, &iKey, pV, &bAll, &bBin, &bNaN);
      if( t==SQLITE_INTEGER || t==SQLITE_FLOAT ) bNum = 1;
      if( t==SQLITE_TEXT ) bText = 1;
      if( iTerm>=0 ) rc = keepIdValue(p, iTerm, pV);
      if( rc ) break;
      nVal++;
    }
    if( pTerm->op!=FED_OP_IN ) break;
  }
  if( rc==SQLITE_OK && nVal==0 ) p->bEmpty = 1;
  if( rc==SQLITE_OK && !bAll && nVal>0 ){
    int bTypes = !pTerm->bExact && (bNum || bText);
    bson_uint32_to_string((*piAnd)++, &zK, zKey, sizeof(zKey));
    bson_append_document_begin(pAnd, zK, -1, &clause);
    if( !bBin && !bTypes && !bNaN ){
      bson_t op;
      bson_append_document_begin(&clause, zField, -1, &op);
      bson_append_array(&op, "$in", -1, &in);
      bson_append_document_end(&clause, &op);
    }else{
      bson_append_array_begin(&clause, "$or", -1, &or);
      orAlt(&or, &iOr, zField, "$in", &in, 0);
      if( bBin ) orAlt(&or, &iOr, zField, "$type", 0, "binData");
      if( bNaN ){
        orAlt(&or, &iOr, zField, "$type", 0, "double");
        orAlt(&or, &iOr, zField, "$type", 0, "decimal");
      }
      if( bTypes ){
        bson_t types;
        int iType = 0;
        bson_init(&types);
#define ADDTYPE(z) \
        bson_uint32_to_string(iType++, &zK, zKey, sizeof(zKey)); \
        bson_append_utf8(&types, zK, -1, z, -1)
        /* A number may equal a text that converts (a string, a decimal,
        ** an all-digit ObjectId) and, read as REAL, a rounded int64; a
        ** text may equal a number's rendering or, under a numeric type,
        ** anything that converts to the same number. */
        int bNumAff = eAff==MONGO_AFF_INTEGER || eAff==MONGO_AFF_REAL;
        if( bNum || (bText && bNumAff) ){
          ADDTYPE("string"); ADDTYPE("decimal"); ADDTYPE("objectId");
        }
        if( bText || (bNum && eAff==MONGO_AFF_REAL) ){
          ADDTYPE("long");
        }
        if( bText ){ ADDTYPE("int"); ADDTYPE("double"); ADDTYPE("bool"); }
#undef ADDTYPE
        orAlt(&or, &iOr, zField, "$type", &types, 0);
        bson_destroy(&types);
      }
      bson_append_array_end(&clause, &or);
    }
    bson_append_document_end(pAnd, &clause);
  }
  bson_destroy(&in);
  return rc;
}

/*
** A top-level field reads NULL exactly when it is missing or null:
**   IS NULL      {$and: [{f: null}, {f: {$not: {$type: "array"}}}]}
**   IS NOT NULL  {$or: [{f: {$ne: null}}, {f: {$type: "array"}}]}
** ({f: null} also matches an array holding null, which reads as text.)
*/
static void nullClause(bson_t *pAnd, int *piAnd, const char *zField,
                       int bNull){
  bson_t clause, list, alt, op, notOp;
  char zKey[16];
  const char *zK;
  bson_uint32_to_string((*piAnd)++, &zK, zKey, sizeof(zKey));
  bson_append_document_begin(pAnd, zK, -1, &clause);
  bson_append_array_begin(&clause, bNull ? "$and" : "$or", -1, &list);
  bson_append_document_begin(&list, "0", -1, &alt);
  if( bNull ){
    bson_append_null(&alt, zField, -1);
  }else{
    bson_append_document_begin(&alt, zField, -1, &op);
    bson_append_null(&op, "$ne", -1);
    bson_append_document_end(&alt, &op);
  }
  bson_append_document_end(&list, &alt);
  bson_append_document_begin(&list, "1", -1, &alt);
  bson_append_document_begin(&alt, zField, -1, &op);
  if( bNull ){
    bson_append_document_begin(&op, "$not", -1, &notOp);
    bson_append_utf8(&notOp, "$type", -1, "array", -1);
    bson_append_document_end(&op, &notOp);
  }else{
    bson_append_utf8(&op, "$type", -1, "array", -1);
  }
  bson_append_document_end(&alt, &op);
  bson_append_document_end(&list, &alt);
  bson_append_array_end(&clause, &list);
  bson_append_document_end(pAnd, &clause);
}

/*
** Ranges and LIKE/GLOB prefixes (docs/mongo.md, "Pushdown").  MongoDB's
** $gt/$lt and $regex only see values of the constant's own type class,
** so each is sent as {$or: [{f: {$op: v}}, {f: {$type: [...]}}]}: the
** operator for the types it compares as SQLite does, and every other type
** whose reading SQLite might find true, whole.  SQLite re-checks (LOOSE).
** Only positive conditions are used where a path may reach a value
** through an array (a path with an all-digit step), since a $not over
** several candidates could drop the one that is read.
*/
#define MT_NUM   1              /* int, long, double: the operator's own */
#define MT_BOOL  2              /* reads 1 / 0 */
#define MT_STR   3              /* string */
#define MT_CONV  4              /* decimal, objectId, date: plain text */
#define MT_JSON  5              /* renderings that start with { or [ */
#define MT_BLOB  6              /* binData */
static const struct MongoTypeClass {
  const char *zName;
  int eCls;
} aTypeClass[] = {
  { "double", MT_NUM },   { "int", MT_NUM },        { "long", MT_NUM },
  { "bool", MT_BOOL },    { "string", MT_STR },     { "decimal", MT_CONV },
  { "objectId", MT_CONV },{ "date", MT_CONV },      { "object", MT_JSON },
  { "array", MT_JSON },   { "regex", MT_JSON },     { "timestamp", MT_JSON },
  { "javascript", MT_JSON }, { "symbol", MT_JSON },
  { "javascriptWithScope", MT_JSON }, { "minKey", MT_JSON },
  { "maxKey", MT_JSON },  { "dbPointer", MT_JSON }, { "binData", MT_BLOB },
};

static int isRangeOp(int op){
  return op==FED_OP_GT || op==FED_OP_GE || op==FED_OP_LT || op==FED_OP_LE;
}

/* 1 if some step of the path is all digits (an array index, or a field
** named like one: MongoDB then looks at several values). */
static int pathHasIndex(const char *z){
  const char *p = z;
  while( p && *p ){
    const char *e = strchr(p, '.');
    int n = e ? (int)(e-p) : (int)strlen(p), k;
    for(k=0; k<n && p[k]>='0' && p[k]<='9'; k++){}
    if( n>0 && k==n ) return 1;
    p = e ? e+1 : 0;
  }
  return 0;
}

static const char *colField(const MongoCol *pCol){
  return pCol->eKind==MONGO_KIND_ID ? "_id" : pCol->zPath;
}

int mongoRangePushable(const MongoCol *pCol, int op, sqlite3_value *pRhs){
  int t;
  if( pCol->eKind==MONGO_KIND_DOC || colField(pCol)==0 ) return FED_PUSH_NO;
  if( isRangeOp(op) ){
    /* Only a value known at plan time: a text from another column may
    ** carry a numeric affinity that converts the field's strings. */
    if( pRhs==0 ) return FED_PUSH_NO;
    t = sqlite3_value_type(pRhs);
    if( (t==SQLITE_INTEGER || t==SQLITE_FLOAT) && pCol->eAff!=MONGO_AFF_TEXT ){
      return FED_PUSH_LOOSE;
    }
    if( t==SQLITE_TEXT && (pCol->eAff==MONGO_AFF_NONE
                        || pCol->eAff==MONGO_AFF_TEXT) ){
      return FED_PUSH_LOOSE;
    }
    return FED_PUSH_NO;
  }
  if( op==FED_OP_LIKE || op==FED_OP_GLOB ){
    /* LIKE reads a number as its text: under a numeric type the string
    ** ' 7' reads as 7, so no prefix of the string decides. */
    if( pCol->eAff==MONGO_AFF_INTEGER || pCol->eAff==MONGO_AFF_REAL ){
      return FED_PUSH_NO;
    }
    if( pRhs && sqlite3_value_type(pRhs)!=SQLITE_TEXT ) return FED_PUSH_NO;
    return FED_PUSH_LOOSE;
  }
  return FED_PUSH_NO;
}

/* Append z to the array pArr under the next key. */
static void arrStr(bson_t *pArr, int *piKey, const char *z){
  char zKey[16];
  const char *zK;
  bson_uint32_to_string((*piKey)++, &zK, zKey, sizeof(zKey));
  bson_append_utf8(pArr, zK, -1, z, -1);
}

/* {field: {$type: "double", $not: {$gte: -Infinity}}}: a double NaN (it
** reads as the text 'NaN'), under the next key of pOr. */
static void nanAlt(bson_t *pOr, int *piOr, const char *zField){
  bson_t alt, op, notOp;
  char zKey[16];
  const char *zK;
  bson_uint32_to_string((*piOr)++, &zK, zKey, sizeof(zKey));
  bson_append_document_begin(pOr, zK, -1, &alt);
  bson_append_document_begin(&alt, zField, -1, &op);
  bson_append_utf8(&op, "$type", -1, "double", -1);
  bson_append_document_begin(&op, "$not", -1, &notOp);
  bson_append_double(&notOp, "$gte", -1, -INFINITY);
  bson_append_document_end(&op, &notOp);
  bson_append_document_end(&alt, &op);
  bson_append_document_end(pOr, &alt);
}

/* Close a clause: {$or: [main, {f: {$type: types}}, nan]}, or main alone. */
static void superClause(bson_t *pAnd, int *piAnd, const char *zField,
                        const bson_t *pMain, const bson_t *pTypes, int nType,
                        int bNaN){
  bson_t clause, or;
  char zKey[16];
  const char *zK;
  int iOr = 0;
  bson_uint32_to_string((*piAnd)++, &zK, zKey, sizeof(zKey));
  bson_append_document_begin(pAnd, zK, -1, &clause);
  if( nType==0 && !bNaN ){
    bson_concat(&clause, pMain);
  }else{
    bson_append_array_begin(&clause, "$or", -1, &or);
    bson_uint32_to_string(iOr++, &zK, zKey, sizeof(zKey));
    bson_append_document(&or, zK, -1, pMain);
    if( nType>0 ) orAlt(&or, &iOr, zField, "$type", pTypes, 0);
    if( bNaN ) nanAlt(&or, &iOr, zField);
    bson_append_array_end(&clause, &or);
  }
  bson_append_document_end(pAnd, &clause);
}

/*
** f < v, f <= v, f > v, f >= v (v known at plan time; mongoRangePushable).
** SQLite orders NULL < numbers < text < blob.  A number v: the operator
** compares int, long and double as SQLite does (exactly, int64 against
** double too), but under REAL a long reads rounded; a NaN reads as text;
** a bool reads 1/0; strings, decimals, ObjectIds and dates may convert to
** numbers (v may carry a numeric affinity: CAST('5' AS INTEGER)); JSON
** renderings and blobs stay above every number.  A text v: the operator
** compares strings as SQLite's BINARY does when the find says collation
** "simple"; numbers and bools sit below text (under TEXT they read as
** text) but a double NaN reads as the text 'NaN', the other texts are
** whole, blobs above.
*/
static void rangeClause(MongoFind *p, bson_t *pAnd, int *piAnd,
                        const MongoCol *pCol, int op, sqlite3_value *pV){
  const char *zField = colField(pCol);
  const char *zOp = op==FED_OP_GT ? "$gt" : op==FED_OP_GE ? "$gte"
                  : op==FED_OP_LT ? "$lt" : "$lte";
  int bGt = op==FED_OP_GT || op==FED_OP_GE;
  int t = sqlite3_value_type(pV);
  int bNum = t==SQLITE_INTEGER || t==SQLITE_FLOAT;
  int i, iType = 0, bNaN = 0;
  bson_t main, opDoc, types;

  if( t==SQLITE_NULL ){ p->bEmpty = 1; return; }
  if( bNum && pCol->eAff==MONGO_AFF_TEXT ) return;
  if( t==SQLITE_TEXT && pCol->eAff!=MONGO_AFF_NONE
   && pCol->eAff!=MONGO_AFF_TEXT ) return;
  if( !bNum && t!=SQLITE_TEXT ) return;
  bson_init(&main);
  bson_append_document_begin(&main, zField, -1, &opDoc);
  if( t==SQLITE_INTEGER ){
    bson_append_int64(&opDoc, zOp, -1, sqlite3_value_int64(pV));
  }else if( t==SQLITE_FLOAT ){
    bson_append_double(&opDoc, zOp, -1, sqlite3_value_double(pV));
  }else{
    const char *z = (const char*)sqlite3_value_text(pV);
    int n = sqlite3_value_bytes(pV);
    if( z==0 || !bson_utf8_validate(z, n, 1) ){
      bson_destroy(&main);
      return;
    }
    bson_append_utf8(&opDoc, zOp, -1, z, n);
    p->bSimple = 1;
  }
  bson_append_document_end(&main, &opDoc);

  bson_init(&types);
  for(i=0; i<(int)(sizeof(aTypeClass)/sizeof(aTypeClass[0])); i++){
    int eCls = aTypeClass[i].eCls, bAdd = 0;
    if( bNum ){
      switch( eCls ){
        case MT_NUM:
          bAdd = pCol->eAff==MONGO_AFF_REAL
              && strcmp(aTypeClass[i].zName, "long")==0;
          break;
        case MT_BOOL: {
          double r = sqlite3_value_double(pV);
          i64 iv = sqlite3_value_int64(pV);
          int b0, b1;
          if( t==SQLITE_INTEGER ){
            b0 = op==FED_OP_GT ? 0>iv : op==FED_OP_GE ? 0>=iv
               : op==FED_OP_LT ? 0<iv : 0<=iv;
            b1 = op==FED_OP_GT ? 1>iv : op==FED_OP_GE ? 1>=iv
               : op==FED_OP_LT ? 1<iv : 1<=iv;
          }else{
            b0 = op==FED_OP_GT ? 0>r : op==FED_OP_GE ? 0>=r
               : op==FED_OP_LT ? 0<r : 0<=r;
            b1 = op==FED_OP_GT ? 1>r : op==FED_OP_GE ? 1>=r
               : op==FED_OP_LT ? 1<r : 1<=r;
          }
          bAdd = b0 || b1;
          break;
        }
        case MT_STR: case MT_CONV: bAdd = 1; break;
        default: bAdd = bGt; break;       /* JSON text, blobs */
      }
    }else{
      switch( eCls ){
        case MT_NUM: case MT_BOOL:
          bAdd = !bGt || pCol->eAff==MONGO_AFF_TEXT;
          break;
        case MT_STR: bAdd = 0; break;
        case MT_BLOB: bAdd = bGt; break;
        default: bAdd = 1; break;
      }
    }
    if( bAdd ) arrStr(&types, &iType, aTypeClass[i].zName);
  }
  if( bGt && (bNum || pCol->eAff!=MONGO_AFF_TEXT) ){
    /* A double NaN reads as the text 'NaN': above every number, and maybe
    ** above a text bound; MongoDB's operator never takes it. */
    if( pathHasIndex(zField) ) arrStr(&types, &iType, "double");
    else bNaN = 1;
  }
  superClause(pAnd, piAnd, zField, &main, &types, iType, bNaN);
  bson_destroy(&types);
  bson_destroy(&main);
}

/*
** f LIKE pattern, f GLOB pattern: the pattern's literal prefix (up to the
** first wildcard) as an anchored $regex for strings (case-insensitive for
** LIKE: PCRE's folding is wider than SQLite's ASCII one, a superset), and
** the types whose text could start with the prefix's first character:
** numbers (digits, '-', "Inf", "NaN"), bools ('0', '1'), decimals,
** ObjectIds and dates (letters, digits, '-', '{'), JSON renderings ('{',
** '['), blobs always (LIKE reads their bytes).
*/
static void likeClause(bson_t *pAnd, int *piAnd, const MongoCol *pCol,
                       int op, sqlite3_value *pV){
  const char *zField = colField(pCol);
  const char *z;
  char *zRe;
  int n, i, j, iType = 0, bLike = op==FED_OP_LIKE;
  char c, cl;
  bson_t main, opDoc, types;

  if( sqlite3_value_type(pV)!=SQLITE_TEXT ) return;
  z = (const char*)sqlite3_value_text(pV);
  if( z==0 ) return;
  for(n=0; z[n]; n++){
    if( bLike ? (z[n]=='%' || z[n]=='_')
              : (z[n]=='*' || z[n]=='?' || z[n]=='[') ) break;
  }
  /* A cut inside a UTF-8 sequence cannot happen (wildcards are ASCII),
  ** but the text itself may not be UTF-8. */
  if( n==0 || !bson_utf8_validate(z, n, 0) ) return;
  zRe = sqlite3_malloc64(2*(i64)n+2);
  if( zRe==0 ) return;          /* No clause: a superset still */
  zRe[0] = '^';
  for(i=0, j=1; i<n; i++){
    unsigned char u = (unsigned char)z[i];
    if( u<0x80 && u>=0x20 && !((u>='0' && u<='9') || (u>='a' && u<='z')
                               || (u>='A' && u<='Z')) ){
      zRe[j++] = '\\';
    }
    zRe[j++] = z[i];
  }
  zRe[j] = 0;
  bson_init(&main);
  bson_append_document_begin(&main, zField, -1, &opDoc);
  bson_append_utf8(&opDoc, "$regex", -1, zRe, j);
  if( bLike ) bson_append_utf8(&opDoc, "$options", -1, "i", 1);
  bson_append_document_end(&main, &opDoc);
  sqlite3_free(zRe);

  c = z[0];
  cl = (bLike && c>='A' && c<='Z') ? c+('a'-'A') : c;
  bson_init(&types);
  for(i=0; i<(int)(sizeof(aTypeClass)/sizeof(aTypeClass[0])); i++){
    int bAdd = 0, bDigit = c>='0' && c<='9';
    switch( aTypeClass[i].eCls ){
      case MT_NUM:
        bAdd = bDigit || c=='-' || (bLike ? (cl=='i' || cl=='n')
                                          : (c=='I' || c=='N'));
        break;
      case MT_BOOL: bAdd = c=='0' || c=='1'; break;
      case MT_STR:  bAdd = 0; break;
      case MT_CONV:
        bAdd = bDigit || c=='-' || c=='{' || (c>='a' && c<='z')
            || (c>='A' && c<='Z');
        break;
      case MT_JSON: bAdd = c=='{' || c=='['; break;
      default:      bAdd = 1; break;
    }
    if( bAdd ) arrStr(&types, &iType, aTypeClass[i].zName);
  }
  superClause(pAnd, piAnd, zField, &main, &types, iType, 0);
  bson_destroy(&types);
  bson_destroy(&main);
}

int mongoPlanFind(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  MongoFind *p, char **pzErr
){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  bson_t and, proj;
  int i, iAnd = 0, rc = SQLITE_OK;
  i64 nLimit = -1, nSkip = 0;
  memset(p, 0, sizeof(*p));
  bson_init(&p->filter);
  bson_init(&p->opts);
  p->nLimit = -1;

  bson_init(&and);
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    const FedPlanTerm *pTerm = &pPlan->aTerm[i];
    const MongoCol *pCol;
    if( pTerm->iCol<0 || pTerm->iCol>=pMT->nCol ) continue;
    pCol = &pMT->aCol[pTerm->iCol];
    switch( pTerm->op ){
      case FED_OP_EQ: case FED_OP_IN:
        if( pCol->eKind==MONGO_KIND_ID ){
          rc = eqClause(p, &and, &iAnd, pTerm, argv, "_id", MONGO_AFF_NONE);
        }else if( pCol->eKind==MONGO_KIND_PATH && !pTerm->bExact ){
          rc = eqClause(p, &and, &iAnd, pTerm, argv, pCol->zPath, pCol->eAff);
        }
        break;
      case FED_OP_GT: case FED_OP_GE: case FED_OP_LT: case FED_OP_LE:
        if( pTerm->iArg>=0 && pTerm->iArg<argc ){
          rangeClause(p, &and, &iAnd, pCol, pTerm->op, argv[pTerm->iArg]);
        }
        break;
      case FED_OP_LIKE: case FED_OP_GLOB:
        if( pTerm->iArg>=0 && pTerm->iArg<argc && pCol->eAff!=MONGO_AFF_INTEGER
         && pCol->eAff!=MONGO_AFF_REAL ){
          likeClause(&and, &iAnd, pCol, pTerm->op, argv[pTerm->iArg]);
        }
        break;
      case FED_OP_ISNULL: case FED_OP_NOTNULL:
        if( pCol->eKind==MONGO_KIND_PATH && pCol->bTop ){
          nullClause(&and, &iAnd, pCol->zPath, pTerm->op==FED_OP_ISNULL);
        }
        break;
    }
  }
  if( rc==SQLITE_OK && iAnd==1 ){
    bson_iter_t it;
    bson_t one;
    const uint8_t *a;
    uint32_t n;
    bson_iter_init_find(&it, &and, "0");
    bson_iter_document(&it, &n, &a);
    bson_init_static(&one, a, n);
    bson_concat(&p->filter, &one);
  }else if( rc==SQLITE_OK && iAnd>1 ){
    bson_append_array(&p->filter, "$and", -1, &and);
  }
  bson_destroy(&and);
  if( rc ){
    if( rc!=SQLITE_NOMEM ){
      fedSetError(pzErr, "%s: table \"%s\": bad IN list", MONGO_STORE,
                  pTab->zName);
    }
    return rc;
  }

  /* The projection: the top-level field of every path read, unless doc
  ** is read (a dotted projection changes what a path into an array
  ** finds; the top-level field keeps it). */
  {
    int bDoc = 0, nProj = 0;
    for(i=0; i<pMT->nCol; i++){
      if( pMT->aCol[i].eKind==MONGO_KIND_DOC && fedPlanColUsed(pPlan, i) ){
        bDoc = 1;
      }
    }
    if( !bDoc ){
      bson_append_document_begin(&p->opts, "projection", -1, &proj);
      for(i=0; i<pMT->nCol; i++){
        const MongoCol *pCol = &pMT->aCol[i];
        char zTop[256];
        int n, k, bDup = 0;
        if( pCol->eKind!=MONGO_KIND_PATH || !fedPlanColUsed(pPlan, i) ) continue;
        for(n=0; pCol->zPath[n] && pCol->zPath[n]!='.'; n++){}
        if( n>=(int)sizeof(zTop) ){ nProj = -1; break; }
        memcpy(zTop, pCol->zPath, n);
        zTop[n] = 0;
        if( strcmp(zTop, "_id")==0 ) continue;
        for(k=0; k<i; k++){
          const MongoCol *pK = &pMT->aCol[k];
          if( pK->eKind==MONGO_KIND_PATH && fedPlanColUsed(pPlan, k)
           && strncmp(pK->zPath, zTop, n)==0
           && (pK->zPath[n]==0 || pK->zPath[n]=='.') ) bDup = 1;
        }
        if( !bDup ){
          bson_append_int32(&proj, zTop, n, 1);
          nProj++;
        }
      }
      if( nProj==0 ) bson_append_int32(&proj, "_id", 3, 1);
      bson_append_document_end(&p->opts, &proj);
      if( nProj<0 ){
        bson_reinit(&p->opts);
      }
    }
  }

  /* LIMIT and OFFSET (the planner gives them only when every term is
  ** exact).  SQLite: a negative LIMIT is none, LIMIT 0 is no rows, a
  ** negative OFFSET is 0.  MongoDB's limit 0 means no limit. */
  if( pPlan->iLimitArg>=0 ){
    nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( nLimit==0 ) p->bEmpty = 1;
  }
  if( pPlan->iOffsetArg>=0 ){
    nSkip = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( nSkip<0 ) nSkip = 0;
  }
  if( p->nIdTerm>0 ){
    p->nLimit = nLimit;
    p->nSkip = nSkip;
  }else{
    if( nSkip>0 ) bson_append_int64(&p->opts, "skip", -1, nSkip);
    if( nLimit>0 ) bson_append_int64(&p->opts, "limit", -1, nLimit);
  }
  if( pMT->nBatch>0 ){
    bson_append_int64(&p->opts, "batchSize", -1, pMT->nBatch);
  }
  if( p->bSimple ){
    /* Strings compared by $gt/$lt: byte order, whatever the collection's
    ** default collation. */
    bson_t coll;
    bson_append_document_begin(&p->opts, "collation", -1, &coll);
    bson_append_utf8(&coll, "locale", -1, "simple", -1);
    bson_append_document_end(&p->opts, &coll);
  }
  return SQLITE_OK;
}

char *mongoFindText(const char *zColl, const MongoFind *p){
  bson_t cmd;
  char *zJson, *zRet;
  bson_init(&cmd);
  bson_append_utf8(&cmd, "find", -1, zColl, -1);
  bson_append_document(&cmd, "filter", -1, &p->filter);
  bson_concat(&cmd, &p->opts);
  zJson = bson_as_canonical_extended_json(&cmd, 0);
  bson_destroy(&cmd);
  if( zJson==0 ) return 0;
  zRet = sqlite3_mprintf("%s", zJson);
  bson_free(zJson);
  return zRet;
}
