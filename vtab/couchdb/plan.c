/*
** plan.c: pure (no I/O): what a scan asks CouchDB for, from the plan and
** xFilter's values (couchPlanScan: every document in key order, a key
** range, or a list of keys; the _id checks the scan makes itself; LIMIT
** and OFFSET), and the request of each page (couchPlanPage).
** docs/couchdb.md ("Pushdown") says why each is exact.
*/
#include "couchInt.h"
#include <math.h>

void couchScanClear(CouchScan *p){
  int i;
  sqlite3_free(p->zLo);
  sqlite3_free(p->zHi);
  for(i=0; i<p->nKey; i++) sqlite3_free(p->azKey[i]);
  sqlite3_free(p->azKey);
  sqlite3_free(p->anKey);
  for(i=0; i<p->nCheck; i++) sqlite3_free(p->aCheck[i].z);
  sqlite3_free(p->aCheck);
  json_decref(p->pSelector);
  json_decref(p->pFields);
  memset(p, 0, sizeof(*p));
}

/* SQLite's BINARY comparison of two texts. */
static int bytesCmp(const char *a, int na, const char *b, int nb){
  int c = memcmp(a, b, na<nb ? na : nb);
  return c ? c : na-nb;
}

static int addCheck(CouchScan *p, int op, sqlite3_value *pV){
  CouchIdCheck *aNew;
  const char *z = (const char*)sqlite3_value_text(pV);
  int n = sqlite3_value_bytes(pV);
  if( z==0 ) return SQLITE_NOMEM;
  aNew = sqlite3_realloc64(p->aCheck, sizeof(CouchIdCheck)*(p->nCheck+1));
  if( aNew==0 ) return SQLITE_NOMEM;
  p->aCheck = aNew;
  aNew[p->nCheck].op = op;
  aNew[p->nCheck].n = n;
  aNew[p->nCheck].z = fedStrdup(z, n);
  if( aNew[p->nCheck].z==0 ) return SQLITE_NOMEM;
  p->nCheck++;
  return SQLITE_OK;
}

int couchScanCheck(const CouchScan *p, const char *z, int n){
  int i;
  for(i=0; i<p->nCheck; i++){
    const CouchIdCheck *c = &p->aCheck[i];
    int cmp = bytesCmp(z, n, c->z, c->n);
    switch( c->op ){
      case FED_OP_EQ: if( cmp!=0 ) return 0; break;
      case FED_OP_GT: if( cmp<=0 ) return 0; break;
      case FED_OP_GE: if( cmp<0 ) return 0; break;
      case FED_OP_LT: if( cmp>=0 ) return 0; break;
      case FED_OP_LE: if( cmp>0 ) return 0; break;
    }
  }
  return 1;
}

/* Narrow the key range to [z, ...) or (..., z]. */
static int setBound(char **pz, int *pn, const char *z, int n, int bLo){
  if( *pz ){
    int cmp = bytesCmp(z, n, *pz, *pn);
    if( bLo ? cmp<=0 : cmp>=0 ) return SQLITE_OK;
    sqlite3_free(*pz);
  }
  *pz = fedStrdup(z, n);
  *pn = n;
  return *pz ? SQLITE_OK : SQLITE_NOMEM;
}

/* The text values of an = or IN term as keys; *pbAll when a value is a
** number (it may equal many texts: '5', '05', '5.0'), so that the term
** does not narrow the scan. */
static int termKeys(CouchScan *p, const FedPlanTerm *pTerm,
                    sqlite3_value **argv, int *pbAll){
  sqlite3_value *pList = argv[pTerm->iArg];
  sqlite3_value *pV = pList;
  int rc = SQLITE_OK;
  *pbAll = 0;
  while( 1 ){
    int t;
    if( pTerm->op==FED_OP_IN ){
      int rc2 = pV==pList ? sqlite3_vtab_in_first(pList, &pV)
                          : sqlite3_vtab_in_next(pList, &pV);
      if( rc2!=SQLITE_OK && rc2!=SQLITE_DONE ) return rc2;
      if( rc2==SQLITE_DONE || pV==0 ) break;
    }
    t = sqlite3_value_type(pV);
    if( t==SQLITE_INTEGER || t==SQLITE_FLOAT ){
      *pbAll = 1;
    }else if( t==SQLITE_TEXT ){
      const char *z = (const char*)sqlite3_value_text(pV);
      int n = sqlite3_value_bytes(pV);
      char **azNew;
      int *anNew;
      if( z==0 ) return SQLITE_NOMEM;
      azNew = sqlite3_realloc64(p->azKey, sizeof(char*)*(p->nKey+1));
      if( azNew==0 ) return SQLITE_NOMEM;
      p->azKey = azNew;
      anNew = sqlite3_realloc64(p->anKey, sizeof(int)*(p->nKey+1));
      if( anNew==0 ) return SQLITE_NOMEM;
      p->anKey = anNew;
      p->azKey[p->nKey] = fedStrdup(z, n);
      if( p->azKey[p->nKey]==0 ) return SQLITE_NOMEM;
      p->anKey[p->nKey++] = n;
    }
    /* NULL and blobs equal no _id (a text). */
    if( pTerm->op!=FED_OP_IN ) break;
  }
  return rc;
}

/* Sort the keys by bytes and drop repeats (IN gives each row once). */
static void keysSortDistinct(CouchScan *p){
  int a, b, n = 0;
  for(a=1; a<p->nKey; a++){
    for(b=a; b>0 && bytesCmp(p->azKey[b-1], p->anKey[b-1],
                             p->azKey[b], p->anKey[b])>0; b--){
      char *z = p->azKey[b]; int nz = p->anKey[b];
      p->azKey[b] = p->azKey[b-1]; p->anKey[b] = p->anKey[b-1];
      p->azKey[b-1] = z; p->anKey[b-1] = nz;
    }
  }
  for(a=0; a<p->nKey; a++){
    if( n>0 && bytesCmp(p->azKey[n-1], p->anKey[n-1],
                        p->azKey[a], p->anKey[a])==0 ){
      sqlite3_free(p->azKey[a]);
      continue;
    }
    p->azKey[n] = p->azKey[a];
    p->anKey[n] = p->anKey[a];
    n++;
  }
  p->nKey = n;
}

/* {zPath: {zOp: pArg}}, taking pArg's reference; NULL on OOM. */
static json_t *fieldOp(const char *zPath, const char *zOp, json_t *pArg){
  json_t *pOp, *pOut;
  if( pArg==0 ) return 0;
  pOp = json_object();
  if( pOp==0 ){
    json_decref(pArg);
    return 0;
  }
  if( json_object_set_new(pOp, zOp, pArg) ){   /* (consumes pArg) */
    json_decref(pOp);
    return 0;
  }
  pOut = json_object();
  if( pOut==0 || json_object_set_new(pOut, zPath, pOp) ){
    if( pOut==0 ) json_decref(pOp);
    json_decref(pOut);
    return 0;
  }
  return pOut;
}

/* 1 if SQLite would take the text value pV for a number under a numeric
** affinity (asked of SQLite, on a copy). */
static int textIsNumeric(sqlite3_value *pV, int *pRc){
  sqlite3_value *pCopy = sqlite3_value_dup(pV);
  int t;
  if( pCopy==0 ){
    *pRc = SQLITE_NOMEM;
    return 0;
  }
  t = sqlite3_value_numeric_type(pCopy);
  sqlite3_value_free(pCopy);
  return t==SQLITE_INTEGER || t==SQLITE_FLOAT;
}

static int appendType(json_t *pAlt, const char *zPath, const char *zType){
  json_t *p = fieldOp(zPath, "$type", json_string(zType));
  return p==0 || json_array_append_new(pAlt, p) ? SQLITE_NOMEM : SQLITE_OK;
}

/*
** The selector of one = or IN term on a declared field (zPath): a superset
** of the documents whose field reads, under the column's affinity (and
** one the value itself may carry), as one of the values.  The values
** themselves ({"f": {"$in": [...]}}: Mango's equality, exact for strings
** in pouchdb-server, ICU equality, a superset, in CouchDB), or'd with the
** JSON types whose values may read as them: numbers, booleans and
** strings for a text that looks like a number (5 reads '5' under TEXT
** affinity, true '1'; under a numeric affinity such a text is compared as
** a number, which "05" also reads as), arrays or objects for a text that
** starts with '[' or '{' (their compact JSON), strings and booleans for a
** number ("05" reads 5 under a numeric affinity, true 1).  *ppSel
** is NULL when the term does not narrow (a text that is not UTF-8, a
** non-finite double); *pbEmpty when no value can match (NULL, blobs).
*/
static int fieldSelector(
  const FedPlanTerm *pTerm, sqlite3_value **argv, const char *zPath,
  json_t **ppSel, int *pbEmpty
){
  sqlite3_value *pList = argv[pTerm->iArg];
  sqlite3_value *pV = pList;
  json_t *pLits = json_array();
  json_t *pAlt = json_array();
  int nVal = 0, bText = 0, bNum = 0, bArr = 0, bObj = 0, bWide = 0;
  int rc = SQLITE_OK;
  *ppSel = 0;
  *pbEmpty = 0;
  if( pLits==0 || pAlt==0 ) rc = SQLITE_NOMEM;
  while( rc==SQLITE_OK ){
    json_t *pLit = 0;
    int t;
    if( pTerm->op==FED_OP_IN ){
      int rc2 = pV==pList ? sqlite3_vtab_in_first(pList, &pV)
                          : sqlite3_vtab_in_next(pList, &pV);
      if( rc2!=SQLITE_OK && rc2!=SQLITE_DONE ){ rc = rc2; break; }
      if( rc2==SQLITE_DONE || pV==0 ) break;
    }
    t = sqlite3_value_type(pV);
    if( t==SQLITE_TEXT ){
      const char *z = (const char*)sqlite3_value_text(pV);
      int n = sqlite3_value_bytes(pV);
      if( z==0 ){ rc = SQLITE_NOMEM; break; }
      pLit = json_stringn(z, n);
      if( pLit==0 ) bWide = 1;          /* not UTF-8 (or OOM: no harm) */
      /* A text that looks like a number may be compared as one (under a
      ** numeric affinity), and then equals the numbers, booleans and
      ** other strings ("05", " 5") that read as that number. */
      if( textIsNumeric(pV, &rc) ) bText = 1;
      if( rc ){
        json_decref(pLit);
        break;
      }
      if( n>0 && z[0]=='[' ) bArr = 1;
      if( n>0 && z[0]=='{' ) bObj = 1;
      nVal++;
    }else if( t==SQLITE_INTEGER ){
      pLit = json_integer(sqlite3_value_int64(pV));
      if( pLit==0 ){ rc = SQLITE_NOMEM; break; }
      bNum = 1;
      nVal++;
    }else if( t==SQLITE_FLOAT ){
      double r = sqlite3_value_double(pV);
      if( isfinite(r) ){
        pLit = json_real(r);
        if( pLit==0 ){ rc = SQLITE_NOMEM; break; }
      }else{
        bWide = 1;
      }
      bNum = 1;
      nVal++;
    }
    /* NULL and blobs equal nothing a document reads as. */
    if( pLit && json_array_append_new(pLits, pLit) ) rc = SQLITE_NOMEM;
    if( pTerm->op!=FED_OP_IN ) break;
  }
  if( rc==SQLITE_OK && nVal==0 ) *pbEmpty = 1;
  if( rc==SQLITE_OK && nVal>0 && !bWide ){
    json_t *p = fieldOp(zPath, "$in", pLits);
    pLits = 0;
    if( p==0 || json_array_append_new(pAlt, p) ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK && bText ) rc = appendType(pAlt, zPath, "number");
    if( rc==SQLITE_OK && (bText || bNum) ){
      rc = appendType(pAlt, zPath, "boolean");
    }
    if( rc==SQLITE_OK && (bText || bNum) ){
      rc = appendType(pAlt, zPath, "string");
    }
    if( rc==SQLITE_OK && bArr ) rc = appendType(pAlt, zPath, "array");
    if( rc==SQLITE_OK && bObj ) rc = appendType(pAlt, zPath, "object");
    if( rc==SQLITE_OK ){
      if( json_array_size(pAlt)==1 ){
        *ppSel = json_incref(json_array_get(pAlt, 0));
      }else{
        *ppSel = json_object();
        if( *ppSel==0 || json_object_set(*ppSel, "$or", pAlt) ){
          rc = SQLITE_NOMEM;
        }
      }
    }
  }
  json_decref(pLits);
  json_decref(pAlt);
  if( rc ){
    json_decref(*ppSel);
    *ppSel = 0;
  }
  return rc;
}

/* IS NULL: missing or null; IS NOT NULL: present and not null (a
** top-level field). */
static json_t *nullSelector(const char *zPath, int bNull){
  if( bNull ){
    json_t *pOr = json_array();
    json_t *pOut = json_object();
    json_t *a = fieldOp(zPath, "$exists", json_false());
    /* {"$eq": null}, not null itself: pouchdb-server fails on a null
    ** literal inside $and ("Cannot convert undefined or null to object"). */
    json_t *b = fieldOp(zPath, "$eq", json_null());
    if( pOr==0 || pOut==0 || a==0 || b==0
     || json_array_append(pOr, a) || json_array_append(pOr, b)
     || json_object_set(pOut, "$or", pOr) ){
      json_decref(pOut);
      pOut = 0;
    }
    json_decref(pOr);
    json_decref(a);
    json_decref(b);
    return pOut;
  }else{
    json_t *pOp = json_object();
    json_t *pOut = json_object();
    if( pOp==0 || pOut==0
     || json_object_set_new(pOp, "$exists", json_true())
     || json_object_set_new(pOp, "$ne", json_null())
     || json_object_set(pOut, zPath, pOp) ){
      json_decref(pOut);
      pOut = 0;
    }
    json_decref(pOp);
    return pOut;
  }
}

/* The fields a _find returns: _id, _rev if read, and the top-level field
** of every declared path read; NULL (the whole document) when doc is read
** or a field name would need escaping. */
static int findFields(FedTable *pTab, const FedPlan *pPlan, json_t **ppOut){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  json_t *pArr;
  int i;
  *ppOut = 0;
  for(i=0; i<pCT->nCol; i++){
    const CouchCol *pCol = &pCT->aCol[i];
    if( !fedPlanColUsed(pPlan, i) ) continue;
    if( pCol->eKind==COUCH_KIND_DOC ) return SQLITE_OK;
    if( pCol->eKind==COUCH_KIND_PATH && !pCol->bMango ) return SQLITE_OK;
  }
  if( pCT->nCol>63 && fedPlanColUsed(pPlan, 63) ) return SQLITE_OK;
  pArr = json_array();
  if( pArr==0 || json_array_append_new(pArr, json_string("_id")) ) goto nomem;
  for(i=0; i<pCT->nCol; i++){
    const CouchCol *pCol = &pCT->aCol[i];
    if( !fedPlanColUsed(pPlan, i) ) continue;
    if( pCol->eKind==COUCH_KIND_REV ){
      if( json_array_append_new(pArr, json_string("_rev")) ) goto nomem;
    }else if( pCol->eKind==COUCH_KIND_PATH ){
      const char *zDot = strchr(pCol->zPath, '.');
      int n = zDot ? (int)(zDot-pCol->zPath) : (int)strlen(pCol->zPath);
      size_t k;
      json_t *pName;
      for(k=0; k<json_array_size(pArr); k++){
        pName = json_array_get(pArr, k);
        if( (int)json_string_length(pName)==n
         && memcmp(json_string_value(pName), pCol->zPath, n)==0 ) break;
      }
      if( k<json_array_size(pArr) ) continue;
      pName = json_stringn(pCol->zPath, n);
      if( pName==0 ){
        /* Not UTF-8: ask for the whole document. */
        json_decref(pArr);
        return SQLITE_OK;
      }
      if( json_array_append_new(pArr, pName) ) goto nomem;
    }
  }
  *ppOut = pArr;
  return SQLITE_OK;
nomem:
  json_decref(pArr);
  return SQLITE_NOMEM;
}

/* One term on a declared field: its selector joins *ppAnd (created on
** first use); a term that no row can meet empties the scan.  Only the
** first term of each path is sent (pSeen: the paths sent): pouchdb-server
** answers two conditions on one path inside $and wrongly (two $or of
** "n.x" found nothing where both held); the others stay with SQLite. */
static int fieldTerm(
  FedTable *pTab, const FedPlanTerm *pTerm, int argc, sqlite3_value **argv,
  CouchScan *p, json_t **ppAnd, json_t *pSeen
){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  const CouchCol *pCol;
  json_t *pSel = 0;
  int rc = SQLITE_OK, bEmpty = 0;
  if( pTerm->iCol<0 || pTerm->iCol>=pCT->nCol ) return SQLITE_OK;
  pCol = &pCT->aCol[pTerm->iCol];
  if( pCol->eKind!=COUCH_KIND_PATH || !pCol->bMango ) return SQLITE_OK;
  if( json_object_get(pSeen, pCol->zPath) ) return SQLITE_OK;
  if( pTerm->op==FED_OP_EQ || pTerm->op==FED_OP_IN ){
    if( pTerm->iArg<0 || pTerm->iArg>=argc ) return SQLITE_OK;
    rc = fieldSelector(pTerm, argv, pCol->zPath, &pSel, &bEmpty);
  }else if( (pTerm->op==FED_OP_ISNULL || pTerm->op==FED_OP_NOTNULL)
         && pCol->bTop ){
    pSel = nullSelector(pCol->zPath, pTerm->op==FED_OP_ISNULL);
    if( pSel==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK && bEmpty ) p->eMode = COUCH_SCAN_EMPTY;
  if( rc==SQLITE_OK && pSel ){
    if( *ppAnd==0 ) *ppAnd = json_array();
    if( *ppAnd==0 || json_array_append(*ppAnd, pSel)
     || json_object_set_new(pSeen, pCol->zPath, json_true()) ){
      rc = SQLITE_NOMEM;
    }
  }
  json_decref(pSel);
  return rc;
}

int couchPlanScan(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  CouchScan *p, char **pzErr
){
  int i, rc = SQLITE_OK, bKeys = 0;
  json_t *pAnd = 0, *pSeen = 0;
  (void)pzErr;
  memset(p, 0, sizeof(*p));
  p->eMode = COUCH_SCAN_ALL;
  p->nLimit = -1;
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    const FedPlanTerm *pTerm = &pPlan->aTerm[i];
    sqlite3_value *pV;
    int t;
    if( pTerm->iCol!=pTab->iPk ){
      if( pSeen==0 ){
        pSeen = json_object();
        if( pSeen==0 ){ rc = SQLITE_NOMEM; break; }
      }
      rc = fieldTerm(pTab, pTerm, argc, argv, p, &pAnd, pSeen);
      continue;
    }
    if( pTerm->iArg<0 || pTerm->iArg>=argc ) continue;
    pV = argv[pTerm->iArg];
    t = sqlite3_value_type(pV);
    switch( pTerm->op ){
      case FED_OP_EQ:
      case FED_OP_IN: {
        int bAll = 0;
        if( pTerm->op==FED_OP_EQ && t==SQLITE_TEXT ){
          rc = addCheck(p, FED_OP_EQ, pV);
        }
        if( rc==SQLITE_OK && pTerm->op==FED_OP_EQ
         && (t==SQLITE_NULL || t==SQLITE_BLOB) ){
          p->eMode = COUCH_SCAN_EMPTY;
        }
        if( rc==SQLITE_OK && !bKeys ){
          /* The first = or IN term that narrows chooses the keys. */
          rc = termKeys(p, pTerm, argv, &bAll);
          if( rc==SQLITE_OK && bAll ){
            int k;
            for(k=0; k<p->nKey; k++) sqlite3_free(p->azKey[k]);
            p->nKey = 0;
          }else if( rc==SQLITE_OK ){
            bKeys = 1;
          }
        }
        break;
      }
      case FED_OP_GT: case FED_OP_GE: case FED_OP_LT: case FED_OP_LE:
        if( t!=SQLITE_TEXT ) break;   /* never pushed so */
        rc = addCheck(p, pTerm->op, pV);
        if( rc==SQLITE_OK ){
          int bLo = pTerm->op==FED_OP_GT || pTerm->op==FED_OP_GE;
          rc = setBound(bLo ? &p->zLo : &p->zHi, bLo ? &p->nLo : &p->nHi,
                        (const char*)sqlite3_value_text(pV),
                        sqlite3_value_bytes(pV), bLo);
        }
        break;
    }
  }
  if( rc==SQLITE_OK && bKeys ){
    keysSortDistinct(p);
    if( p->nKey==0 ) p->eMode = COUCH_SCAN_EMPTY;
    else if( p->eMode!=COUCH_SCAN_EMPTY ) p->eMode = COUCH_SCAN_KEYS;
  }
  if( rc==SQLITE_OK && p->zLo && p->zHi
   && bytesCmp(p->zLo, p->nLo, p->zHi, p->nHi)>0 ){
    p->eMode = COUCH_SCAN_EMPTY;
  }
  /* Field terms are used only when _id does not narrow the scan. */
  if( rc==SQLITE_OK && p->eMode==COUCH_SCAN_ALL && p->zLo==0 && p->zHi==0
   && pAnd && json_array_size(pAnd)>0 ){
    p->eMode = COUCH_SCAN_FIND;
    if( json_array_size(pAnd)==1 ){
      p->pSelector = json_incref(json_array_get(pAnd, 0));
    }else{
      p->pSelector = json_object();
      if( p->pSelector==0 || json_object_set(p->pSelector, "$and", pAnd) ){
        rc = SQLITE_NOMEM;
      }
    }
    if( rc==SQLITE_OK ) rc = findFields(pTab, pPlan, &p->pFields);
  }
  json_decref(pAnd);
  json_decref(pSeen);
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    p->nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( p->nLimit<0 ) p->nLimit = -1;
    if( p->nLimit==0 ) p->eMode = COUCH_SCAN_EMPTY;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    p->nSkip = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( p->nSkip<0 ) p->nSkip = 0;
  }
  return rc;
}

/* Append "&name=<JSON string z, percent-encoded>". */
static int appendKeyParam(sqlite3_str *s, const char *zName,
                          const char *z, int n){
  sqlite3_str *j = sqlite3_str_new(0);
  char *zJson, *zEsc;
  fedJsonQuote(j, z, n);
  zJson = sqlite3_str_finish(j);
  zEsc = zJson ? fedHttpEscape(zJson, -1) : 0;
  sqlite3_free(zJson);
  if( zEsc==0 ) return SQLITE_NOMEM;
  sqlite3_str_appendf(s, "&%s=%s", zName, zEsc);
  sqlite3_free(zEsc);
  return SQLITE_OK;
}

int couchPlanPage(
  const char *zDb, const CouchScan *p, i64 nPage,
  const char *zAfter, int nAfter, int iKey,
  const char *zBookmark, i64 nDone,
  char **pzPath, json_t **ppBody
){
  sqlite3_str *s = sqlite3_str_new(0);
  char *zDbEsc = fedHttpEscape(zDb, -1);
  char *zPath;
  int rc = SQLITE_OK;
  *pzPath = 0;
  *ppBody = 0;
  if( zDbEsc==0 ){
    sqlite3_free(sqlite3_str_finish(s));
    return SQLITE_NOMEM;
  }
  if( p->eMode==COUCH_SCAN_FIND ){
    json_t *pBody = json_object();
    sqlite3_str_appendf(s, "/%s/_find", zDbEsc);
    if( pBody==0 || json_object_set(pBody, "selector", p->pSelector)
     || (p->pFields && json_object_set(pBody, "fields", p->pFields))
     || json_object_set_new(pBody, "limit", json_integer(nPage))
     || (zBookmark && json_object_set_new(pBody, "bookmark",
                                          json_string(zBookmark)))
     || (!zBookmark && nDone>0
         && json_object_set_new(pBody, "skip", json_integer(nDone))) ){
      rc = SQLITE_NOMEM;
    }
    if( rc ) json_decref(pBody);
    else *ppBody = pBody;
  }else{
    sqlite3_str_appendf(s, "/%s/_all_docs?include_docs=true", zDbEsc);
  }
  sqlite3_free(zDbEsc);
  if( p->eMode==COUCH_SCAN_FIND ){
    /* done above */
  }else if( p->eMode==COUCH_SCAN_KEYS ){
    json_t *pBody = json_object();
    json_t *pKeys = json_array();
    int i;
    if( pBody==0 || pKeys==0 || json_object_set(pBody, "keys", pKeys) ){
      rc = SQLITE_NOMEM;
    }
    for(i=iKey; rc==SQLITE_OK && i<p->nKey && i<iKey+nPage; i++){
      if( json_array_append_new(pKeys,
                                json_stringn_nocheck(p->azKey[i],
                                                     p->anKey[i])) ){
        rc = SQLITE_NOMEM;
      }
    }
    json_decref(pKeys);
    if( rc ) json_decref(pBody);
    else *ppBody = pBody;
  }else{
    sqlite3_str_appendf(s, "&limit=%lld", nPage);
    if( zAfter ){
      rc = appendKeyParam(s, "startkey", zAfter, nAfter);
      sqlite3_str_appendall(s, "&skip=1");
    }else if( p->zLo ){
      rc = appendKeyParam(s, "startkey", p->zLo, p->nLo);
    }
    if( rc==SQLITE_OK && p->zHi ){
      rc = appendKeyParam(s, "endkey", p->zHi, p->nHi);
    }
  }
  if( sqlite3_str_errcode(s) ) rc = SQLITE_NOMEM;
  zPath = sqlite3_str_finish(s);
  if( zPath==0 ) rc = SQLITE_NOMEM;
  if( rc ){
    sqlite3_free(zPath);
    json_decref(*ppBody);
    *ppBody = 0;
    return SQLITE_NOMEM;
  }
  *pzPath = zPath;
  return SQLITE_OK;
}
