/*
** plan.c: pure (no I/O): what a scan asks CouchDB for, from the plan and
** xFilter's values (couchPlanScan: every document in key order, a key
** range, or a list of keys; the _id checks the scan makes itself; LIMIT
** and OFFSET), and the request of each page (couchPlanPage).
** docs/couchdb.md ("Pushdown") says why each is exact.
*/
#include "couchInt.h"

void couchScanClear(CouchScan *p){
  int i;
  sqlite3_free(p->zLo);
  sqlite3_free(p->zHi);
  for(i=0; i<p->nKey; i++) sqlite3_free(p->azKey[i]);
  sqlite3_free(p->azKey);
  sqlite3_free(p->anKey);
  for(i=0; i<p->nCheck; i++) sqlite3_free(p->aCheck[i].z);
  sqlite3_free(p->aCheck);
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

int couchPlanScan(
  FedTable *pTab, const FedPlan *pPlan, int argc, sqlite3_value **argv,
  CouchScan *p, char **pzErr
){
  int i, rc = SQLITE_OK, bKeys = 0;
  (void)pzErr;
  memset(p, 0, sizeof(*p));
  p->eMode = COUCH_SCAN_ALL;
  p->nLimit = -1;
  for(i=0; rc==SQLITE_OK && i<pPlan->nTerm; i++){
    const FedPlanTerm *pTerm = &pPlan->aTerm[i];
    sqlite3_value *pV;
    int t;
    if( pTerm->iCol!=pTab->iPk || pTerm->iArg<0 || pTerm->iArg>=argc ){
      continue;
    }
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
  sqlite3_str_appendf(s, "/%s/_all_docs?include_docs=true", zDbEsc);
  sqlite3_free(zDbEsc);
  if( p->eMode==COUCH_SCAN_KEYS ){
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
