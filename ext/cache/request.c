/*
** cache/request.c: a scan's request (columns, pushed terms and values,
** ORDER BY, LIMIT/OFFSET) in canonical form, and which entry answers it:
** the identical request, or an entry whose terms the request implies
** (subsumption), read through a query over its rows.
*/
#include "cacheInt.h"

/**************************************************************************
** Requests.
*/

/* Bind a value with the comparison affinity zAff applied, as SQLite does to
** the other operand of a comparison with a column of that affinity. */
int fedCacheBind(sqlite3_stmt *pStmt, int i, const CacheVal *pV){
  sqlite3_value *p = pV->pVal;
  int eType = sqlite3_value_type(p);
  const char *zAff = pV->zAff;
  if( zAff && eType==SQLITE_TEXT
   && (strcmp(zAff, "INTEGER")==0 || strcmp(zAff, "REAL")==0
       || strcmp(zAff, "NUMERIC")==0) ){
    sqlite3_value *pDup = sqlite3_value_dup(p);
    int rc;
    if( pDup==0 ) return SQLITE_NOMEM;
    sqlite3_value_numeric_type(pDup);
    rc = sqlite3_bind_value(pStmt, i, pDup);
    sqlite3_value_free(pDup);
    return rc;
  }
  if( zAff && strcmp(zAff, "TEXT")==0
   && (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT) ){
    const char *z = (const char*)sqlite3_value_text(p);
    if( z==0 ) return SQLITE_NOMEM;
    return sqlite3_bind_text(pStmt, i, z, -1, SQLITE_TRANSIENT);
  }
  return sqlite3_bind_value(pStmt, i, p);
}

/* Append a value as text that says its storage class and bytes exactly
** (the request key, and the rows of an L2 entry; l2Bind() reads it back):
**   n | i<int>; | f<16 hex digits of the IEEE bits> | t<len>:<bytes> |
**   x<len>:<hex> (text holding a NUL byte) | b<len>:<hex> */
void fedCacheValText(sqlite3_str *s, sqlite3_value *p){
  const u8 *a;
  int n, i;
  switch( sqlite3_value_type(p) ){
    case SQLITE_NULL: sqlite3_str_appendchar(s, 1, 'n'); break;
    case SQLITE_INTEGER:
      sqlite3_str_appendf(s, "i%lld;", sqlite3_value_int64(p));
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(p);
      u64 u;
      memcpy(&u, &r, 8);
      sqlite3_str_appendf(s, "f%016llx", (unsigned long long)u);
      break;
    }
    case SQLITE_TEXT:
      a = sqlite3_value_text(p);
      n = sqlite3_value_bytes(p);
      if( a && memchr(a, 0, n)==0 ){
        sqlite3_str_appendf(s, "t%d:", n);
        sqlite3_str_append(s, (const char*)a, n);
        break;
      }
      sqlite3_str_appendf(s, "x%d:", n);
      for(i=0; a && i<n; i++) sqlite3_str_appendf(s, "%02x", a[i]);
      break;
    default:
      a = (const u8*)sqlite3_value_blob(p);
      n = sqlite3_value_bytes(p);
      sqlite3_str_appendf(s, "b%d:", n);
      for(i=0; i<n; i++) sqlite3_str_appendf(s, "%02x", a[i]);
      break;
  }
}

/* Append a value of a request to its canonical text: the value, then
** "/" and the first letter of the column's affinity ("/-" for a column
** without one, whose zAff is "").  The key must never hold a NUL byte:
** it is compared as a C string, and a NUL would cut off the terms after
** it, so that a request with fewer terms found this entry as its own. */
static void cacheKeyVal(sqlite3_str *s, const CacheVal *pV){
  fedCacheValText(s, pV->pVal);
  if( pV->zAff ){
    sqlite3_str_appendf(s, "/%c", pV->zAff[0] ? pV->zAff[0] : '-');
  }
}

void fedCacheCsrReset(FedCacheCsr *p){
  int i, j;
  for(i=0; i<p->nTerm; i++){
    for(j=0; j<p->aTerm[i].nVal; j++){
      sqlite3_value_free(p->aTerm[i].aVal[j].pVal);
    }
    sqlite3_free(p->aTerm[i].aVal);
  }
  sqlite3_free(p->aTerm);
  p->aTerm = 0;
  p->nTerm = 0;
  sqlite3_value_free(p->pLimit);
  sqlite3_value_free(p->pOffset);
  p->pLimit = p->pOffset = 0;
  sqlite3_free(p->zKey);
  p->zKey = 0;
  sqlite3_finalize(p->pRead);
  p->pRead = 0;
  sqlite3_free(p->aCell);
  p->aCell = 0;
  sqlite3_finalize(p->pIns);
  p->pIns = 0;
  p->bEof = 0;
}

/* Comparison ops take the column's affinity; LIKE and GLOB are functions
** and take none. */
static int cacheOpAffinity(int op){
  return op!=FED_OP_LIKE && op!=FED_OP_GLOB;
}

/* Build the request of a scan from its plan and xFilter's values. */
int fedCacheRequest(FedCursor *pCsr, FedCacheCsr *p, int argc,
                    sqlite3_value **argv){
  FedPlan *pPlan = pCsr->pPlan;
  FedTable *pTab = pCsr->pTab;
  sqlite3_str *s;
  int i, rc = SQLITE_OK;

  p->cols = pPlan->colUsed;
  if( pTab->iPk>=0 ) p->cols |= ((u64)1)<<pTab->iPk;
  p->aTerm = sqlite3_malloc64(sizeof(CacheTerm)*(pPlan->nTerm+1));
  if( p->aTerm==0 ) return SQLITE_NOMEM;
  memset(p->aTerm, 0, sizeof(CacheTerm)*(pPlan->nTerm+1));
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    CacheTerm *c = &p->aTerm[p->nTerm];
    const char *zAff;
    if( t->iCol<0 || t->iCol>=pTab->nCol ) return SQLITE_MISUSE;
    zAff = cacheOpAffinity(t->op) ? pTab->aCol[t->iCol].zAffinity : 0;
    c->iCol = t->iCol;
    c->op = t->op;
    c->bExact = t->bExact;
    p->nTerm++;
    if( t->iArg<0 ) continue;
    if( t->iArg>=argc ) return SQLITE_MISUSE;
    if( t->op==FED_OP_IN ){
      sqlite3_value *pV = 0;
      int n = 0, nAlloc = 0;
      for(rc=sqlite3_vtab_in_first(argv[t->iArg], &pV);
          rc==SQLITE_OK && pV;
          rc=sqlite3_vtab_in_next(argv[t->iArg], &pV)){
        if( n>=nAlloc ){
          CacheVal *aNew;
          nAlloc = nAlloc ? nAlloc*2 : 8;
          aNew = sqlite3_realloc64(c->aVal, sizeof(CacheVal)*nAlloc);
          if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
          c->aVal = aNew;
        }
        c->aVal[n].zAff = zAff;
        c->aVal[n].pVal = sqlite3_value_dup(pV);
        if( c->aVal[n].pVal==0 ){ rc = SQLITE_NOMEM; break; }
        c->nVal = ++n;
      }
      if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    }else{
      c->aVal = sqlite3_malloc64(sizeof(CacheVal));
      if( c->aVal==0 ) return SQLITE_NOMEM;
      c->aVal[0].zAff = zAff;
      c->aVal[0].pVal = sqlite3_value_dup(argv[t->iArg]);
      if( c->aVal[0].pVal==0 ) return SQLITE_NOMEM;
      c->nVal = 1;
    }
  }
  if( rc ) return rc;
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    p->pLimit = sqlite3_value_dup(argv[pPlan->iLimitArg]);
    if( p->pLimit==0 ) return SQLITE_NOMEM;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    p->pOffset = sqlite3_value_dup(argv[pPlan->iOffsetArg]);
    if( p->pOffset==0 ) return SQLITE_NOMEM;
  }

  /* The canonical text: identical requests, identical text. */
  s = sqlite3_str_new(0);
  sqlite3_str_appendf(s, "u=%llx", (unsigned long long)p->cols);
  for(i=0; i<p->nTerm; i++){
    CacheTerm *c = &p->aTerm[i];
    int j;
    sqlite3_str_appendf(s, ";t=%d:%d:%d", c->iCol, c->op, c->bExact);
    for(j=0; j<c->nVal; j++){
      sqlite3_str_appendchar(s, 1, j ? ',' : ':');
      cacheKeyVal(s, &c->aVal[j]);
    }
  }
  for(i=0; i<pPlan->nOrder; i++){
    sqlite3_str_appendf(s, ";o=%d%s", pPlan->aOrderCol[i],
                        pPlan->aOrderDesc[i] ? "d" : "");
  }
  if( p->pLimit ){
    CacheVal v;
    v.pVal = p->pLimit; v.zAff = 0;
    sqlite3_str_appendall(s, ";l=");
    cacheKeyVal(s, &v);
  }
  if( p->pOffset ){
    CacheVal v;
    v.pVal = p->pOffset; v.zAff = 0;
    sqlite3_str_appendall(s, ";f=");
    cacheKeyVal(s, &v);
  }
  p->zKey = sqlite3_str_finish(s);
  return p->zKey ? SQLITE_OK : SQLITE_NOMEM;
}

/* Evaluate "?1 <op> ?2" in the cache database: 1 true, 0 false or NULL,
** <0 on error. */
static int cacheEval(FedCacheDb *pDb, const CacheVal *a, const char *zOp,
                     const CacheVal *b){
  sqlite3_stmt *pStmt = 0;
  char zSql[48];
  int rc, bTrue = 0;
  sqlite3_snprintf(sizeof(zSql), zSql, "SELECT (?1 %s ?2) IS 1", zOp);
  rc = sqlite3_prepare_v2(pDb->db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK ) rc = fedCacheBind(pStmt, 1, a);
  if( rc==SQLITE_OK ) rc = fedCacheBind(pStmt, 2, b);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    bTrue = sqlite3_column_int(pStmt, 0);
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK ) rc = SQLITE_ERROR;
  return rc==SQLITE_OK ? bTrue : -1;
}

static const char *cacheOpText(int op){
  switch( op ){
    case FED_OP_EQ:    return "=";
    case FED_OP_GT:    return ">";
    case FED_OP_LE:    return "<=";
    case FED_OP_LT:    return "<";
    case FED_OP_GE:    return ">=";
    case FED_OP_NE:    return "!=";
    case FED_OP_IS:    return "IS";
    case FED_OP_ISNOT: return "IS NOT";
    case FED_OP_LIKE:  return "LIKE";
    case FED_OP_GLOB:  return "GLOB";
    case FED_OP_IN:    return "=";
  }
  return 0;
}

/* Identical values: same storage class and same bytes. */
static int cacheSameVal(const CacheVal *a, const CacheVal *b){
  sqlite3_value *x = a->pVal, *y = b->pVal;
  int t = sqlite3_value_type(x);
  if( t!=sqlite3_value_type(y) ) return 0;
  if( (a->zAff==0)!=(b->zAff==0) ) return 0;
  if( a->zAff && strcmp(a->zAff, b->zAff)!=0 ) return 0;
  switch( t ){
    case SQLITE_NULL: return 1;
    case SQLITE_INTEGER: return sqlite3_value_int64(x)==sqlite3_value_int64(y);
    case SQLITE_FLOAT: return sqlite3_value_double(x)==sqlite3_value_double(y);
    default: {
      int n = sqlite3_value_bytes(x);
      const void *px = t==SQLITE_TEXT ? (const void*)sqlite3_value_text(x)
                                      : sqlite3_value_blob(x);
      const void *py = t==SQLITE_TEXT ? (const void*)sqlite3_value_text(y)
                                      : sqlite3_value_blob(y);
      return n==sqlite3_value_bytes(y) && (n==0 || memcmp(px, py, n)==0);
    }
  }
}

/* Is the affinity SQLite compares term c's values under known?  SQLite
** picks it from both operands: a column of INTEGER, REAL or NUMERIC
** affinity always compares numerically, but a TEXT or untyped column
** compares as text (TEXT) or as it is (untyped) with a value of no
** affinity, numerically with a column of numeric affinity, as it is with
** a TEXT column ("Type conversions prior to comparison").  xFilter's value
** does not say which: 10 from the literal 10 and from an INTEGER column
** are the same value.  A store pushes a term exactly only when SQLite
** knew its value at plan time (a literal: the column's affinity), so an
** exact term, like a numeric column's, compares under zAff; a loose term
** on any other column may compare under any of them (and its store's
** answer holds the rows of each: "a superset"). */
static int cacheAffKnown(const CacheTerm *c){
  const char *zAff;
  if( c->bExact || c->nVal==0 || !cacheOpAffinity(c->op) ) return 1;
  zAff = c->aVal[0].zAff;
  return zAff && (strcmp(zAff, "INTEGER")==0 || strcmp(zAff, "REAL")==0
      || strcmp(zAff, "NUMERIC")==0);
}

/* Does the scan term q imply the entry term e (every row that satisfies
** q satisfies e)?  1 yes, 0 no or unknown, <0 error.
**
** An entry term of known affinity (cacheAffKnown()) holds the rows that
** satisfy it under zAff; one of unknown affinity holds them under each
** possible one.  A scan term of known affinity is compared with the
** entry's under zAff, which is right for both.  A scan term of unknown
** affinity needs the rows under an affinity the cache cannot see (the
** rows where a TEXT column is '010' satisfy "= 10" numerically, not as
** text): only an entry term of unknown affinity holding each of its
** values, identical, has them all. */
static int cacheImplies(FedCacheDb *pDb, const CacheTerm *q,
                        const CacheTerm *e){
  int i, j, r;
  if( q->iCol!=e->iCol ) return 0;
  if( !cacheAffKnown(q) ){
    if( e->op==FED_OP_NOTNULL ){
      /* Any comparison excludes NULL, "x IS v" when v is not NULL. */
      if( q->op==FED_OP_ISNOT ) return 0;
      return q->op!=FED_OP_IS
          || sqlite3_value_type(q->aVal[0].pVal)!=SQLITE_NULL;
    }
    if( cacheAffKnown(e) ) return 0;
    if( q->op==e->op && q->nVal==e->nVal ){
      for(i=0; i<q->nVal; i++){
        if( !cacheSameVal(&q->aVal[i], &e->aVal[i]) ) break;
      }
      if( i==q->nVal ) return 1;
    }
    /* "x = v" and "x IN (..v..)": each value of q among e's. */
    if( (q->op!=FED_OP_EQ && q->op!=FED_OP_IN)
     || (e->op!=FED_OP_EQ && e->op!=FED_OP_IN) ){
      return 0;
    }
    for(i=0; i<q->nVal; i++){
      for(j=0; j<e->nVal; j++){
        if( cacheSameVal(&q->aVal[i], &e->aVal[j]) ) break;
      }
      if( j==e->nVal ) return 0;
    }
    return 1;
  }
  /* Identical terms. */
  if( q->op==e->op && q->nVal==e->nVal ){
    for(i=0; i<q->nVal; i++){
      if( !cacheSameVal(&q->aVal[i], &e->aVal[i]) ) break;
    }
    if( i==q->nVal ) return 1;
  }
  if( e->op==FED_OP_NOTNULL ){
    /* Any comparison with a value excludes NULL ("x IS ?" only when the
    ** value is not NULL). */
    if( q->op==FED_OP_NOTNULL ) return 1;
    if( q->op==FED_OP_ISNULL || q->op==FED_OP_ISNOT ) return 0;
    if( q->op==FED_OP_IS ){
      return q->nVal==1 && sqlite3_value_type(q->aVal[0].pVal)!=SQLITE_NULL;
    }
    return q->nVal>0 || q->op==FED_OP_IN;
  }
  if( e->op==FED_OP_ISNULL || e->op==FED_OP_LIKE || e->op==FED_OP_GLOB
   || e->op==FED_OP_ISNOT || e->op==FED_OP_NE ){
    return 0;                   /* Only identical terms, above */
  }
  /* q names a set of values (=, IN, IS): each must satisfy e. */
  if( q->op==FED_OP_EQ || q->op==FED_OP_IN || q->op==FED_OP_IS ){
    if( q->op==FED_OP_IS && e->op!=FED_OP_IS ) return 0;
    for(i=0; i<q->nVal; i++){
      if( e->op==FED_OP_IN ){
        for(j=0; j<e->nVal; j++){
          r = cacheEval(pDb, &q->aVal[i], "IS", &e->aVal[j]);
          if( r<0 ) return r;
          if( r ) break;
        }
        if( j==e->nVal ) return 0;
      }else{
        if( e->nVal!=1 ) return 0;
        r = cacheEval(pDb, &q->aVal[i], cacheOpText(e->op), &e->aVal[0]);
        if( r<=0 ) return r;
      }
    }
    return 1;
  }
  /* Ranges in the same direction: "x>b" implies "x>a" when b>=a, and so
  ** on (SQLite's order over all values is total). */
  if( q->nVal!=1 || e->nVal!=1 ) return 0;
  if( (q->op==FED_OP_GT || q->op==FED_OP_GE)
   && (e->op==FED_OP_GT || e->op==FED_OP_GE) ){
    const char *zCmp = (q->op==FED_OP_GE && e->op==FED_OP_GT) ? ">" : ">=";
    return cacheEval(pDb, &q->aVal[0], zCmp, &e->aVal[0]);
  }
  if( (q->op==FED_OP_LT || q->op==FED_OP_LE)
   && (e->op==FED_OP_LT || e->op==FED_OP_LE) ){
    const char *zCmp = (q->op==FED_OP_LE && e->op==FED_OP_LT) ? "<" : "<=";
    return cacheEval(pDb, &q->aVal[0], zCmp, &e->aVal[0]);
  }
  return 0;
}

/* Load the terms of entry iEntry; *paTerm (nTerm terms) is freed with
** cacheTermsFree(). */
static void cacheTermsFree(CacheTerm *aTerm, int nTerm){
  int i, j;
  for(i=0; i<nTerm; i++){
    for(j=0; j<aTerm[i].nVal; j++) sqlite3_value_free(aTerm[i].aVal[j].pVal);
    sqlite3_free(aTerm[i].aVal);
  }
  sqlite3_free(aTerm);
}

static int cacheTermsLoad(FedCacheDb *pDb, FedTable *pTab, i64 iEntry,
                          int nTerm, CacheTerm **paTerm){
  sqlite3_stmt *pStmt = 0;
  CacheTerm *aTerm;
  int rc, iPrev = -1, n = 0;
  *paTerm = 0;
  aTerm = sqlite3_malloc64(sizeof(CacheTerm)*(nTerm+1));
  if( aTerm==0 ) return SQLITE_NOMEM;
  memset(aTerm, 0, sizeof(CacheTerm)*(nTerm+1));
  rc = sqlite3_prepare_v2(pDb->db, "SELECT termno, col, op, val FROM"
      " fed_cache_term WHERE entry=?1 ORDER BY termno, rowid", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry);
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      int iTerm = sqlite3_column_int(pStmt, 0);
      CacheTerm *c;
      CacheVal *aNew;
      if( iTerm!=iPrev ){
        if( n>=nTerm ){ rc = SQLITE_CORRUPT; break; }
        iPrev = iTerm;
        n++;
      }
      c = &aTerm[n-1];
      c->iCol = sqlite3_column_int(pStmt, 1);
      c->op = sqlite3_column_int(pStmt, 2);
      if( c->iCol<0 || c->iCol>=pTab->nCol ){ rc = SQLITE_CORRUPT; break; }
      if( sqlite3_column_type(pStmt, 3)==SQLITE_NULL
       && (c->op==FED_OP_ISNULL || c->op==FED_OP_NOTNULL) ){
        continue;
      }
      aNew = sqlite3_realloc64(c->aVal, sizeof(CacheVal)*(c->nVal+1));
      if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
      c->aVal = aNew;
      c->aVal[c->nVal].zAff = cacheOpAffinity(c->op)
                            ? pTab->aCol[c->iCol].zAffinity : 0;
      c->aVal[c->nVal].pVal = sqlite3_value_dup(sqlite3_column_value(pStmt,3));
      if( c->aVal[c->nVal].pVal==0 ){ rc = SQLITE_NOMEM; break; }
      c->nVal++;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && n!=nTerm ) rc = SQLITE_CORRUPT;
  if( rc ){
    cacheTermsFree(aTerm, nTerm);
    return rc;
  }
  *paTerm = aTerm;
  return SQLITE_OK;
}

/* Can entry (cols, terms) answer request p? */
static int cacheSubsumes(FedCacheDb *pDb, FedCacheCsr *p, u64 cols,
                         CacheTerm *aE, int nE){
  int i, j, r;
  if( (p->cols & ~cols)!=0 ) return 0;
  for(i=0; i<nE; i++){
    for(j=0; j<p->nTerm; j++){
      r = cacheImplies(pDb, &p->aTerm[j], &aE[i]);
      if( r<0 ) return r;
      if( r ) break;
    }
    if( j==p->nTerm ) return 0;
  }
  return 1;
}

/* Prepare the read of entry iEntry for request p.  An entry made for this
** very request (bSame) is read as it is; another one with the scan's
** exact terms, its ORDER BY, LIMIT and OFFSET applied. */
int fedCacheReadPrepare(FedCursor *pCsr, FedCacheCsr *p, i64 iEntry,
                        int bSame){
  FedCacheTab *pCT = p->pCT;
  FedPlan *pPlan = pCsr->pPlan;
  sqlite3_str *s;
  char *zSql;
  int i, j, iBind = 3, rc;

  if( p->aCell==0 ){
    p->aCell = sqlite3_malloc64(sizeof(CacheCell)*(pCsr->pTab->nCol+1));
    if( p->aCell==0 ) return SQLITE_NOMEM;
  }
  s = sqlite3_str_new(0);
  /* rid only for tables without a key: one column less to read. */
  sqlite3_str_appendall(s, pCsr->pTab->iPk<0 ? "SELECT rid" : "SELECT NULL");
  sqlite3_str_appendf(s, ", rec FROM fed_cache_r%lld WHERE rowid BETWEEN ?1"
                      " AND ?2", pCT->iTid);
  for(i=0; i<p->nTerm && !bSame; i++){
    CacheTerm *c = &p->aTerm[i];
    if( !c->bExact ) continue;
    switch( c->op ){
      case FED_OP_ISNULL:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IS NULL",
                            c->iCol);
        break;
      case FED_OP_NOTNULL:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IS NOT NULL",
                            c->iCol);
        break;
      case FED_OP_IN:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) IN (", c->iCol);
        for(j=0; j<c->nVal; j++){
          sqlite3_str_appendf(s, "%s?%d", j ? "," : "", iBind++);
        }
        if( c->nVal==0 ) sqlite3_str_appendall(s, "NULL");
        sqlite3_str_appendall(s, ")");
        break;
      default:
        sqlite3_str_appendf(s, " AND fed_cache_val(rec, %d) %s ?%d", c->iCol,
                            cacheOpText(c->op), iBind++);
        break;
    }
  }
  if( pPlan->nOrder>0 && !bSame ){
    sqlite3_str_appendall(s, " ORDER BY ");
    for(i=0; i<pPlan->nOrder; i++){
      sqlite3_str_appendf(s, "%sfed_cache_val(rec, %d)%s", i ? ", " : "",
                          pPlan->aOrderCol[i],
                          pPlan->aOrderDesc[i] ? " DESC" : "");
    }
    sqlite3_str_appendall(s, ", rowid");
  }
  if( p->pLimit && !bSame ){
    sqlite3_str_appendf(s, " LIMIT ?%d", iBind++);
    if( p->pOffset ) sqlite3_str_appendf(s, " OFFSET ?%d", iBind++);
  }
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pCT->pDb->db, zSql, -1, &p->pRead, 0);
  sqlite3_free(zSql);
  if( rc ) return rc;
  sqlite3_bind_int64(p->pRead, 1, iEntry<<32);
  sqlite3_bind_int64(p->pRead, 2, (iEntry<<32) | 0xffffffff);
  iBind = 3;
  for(i=0; i<p->nTerm && rc==SQLITE_OK && !bSame; i++){
    CacheTerm *c = &p->aTerm[i];
    if( !c->bExact ) continue;
    for(j=0; j<c->nVal && rc==SQLITE_OK; j++){
      rc = fedCacheBind(p->pRead, iBind++, &c->aVal[j]);
    }
  }
  if( rc==SQLITE_OK && p->pLimit && !bSame ){
    rc = sqlite3_bind_value(p->pRead, iBind++, p->pLimit);
    if( rc==SQLITE_OK && p->pOffset ){
      rc = sqlite3_bind_value(p->pRead, iBind++, p->pOffset);
    }
  }
  return rc;
}

/* Note that entry iEntry was used (for LRU), at most once a second. */
void fedCacheTouch(FedCacheTab *pCT, i64 iEntry){
  sqlite3_stmt *pStmt = 0;
  if( sqlite3_prepare_v2(pCT->pDb->db, "UPDATE fed_cache_entry SET used=?2"
        " WHERE id=?1 AND used<?2-1000", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_int64(pStmt, 1, iEntry);
    sqlite3_bind_int64(pStmt, 2, fedCacheNow());
    sqlite3_step(pStmt);
  }
  sqlite3_finalize(pStmt);
}

/* Find an entry that answers p: exact request first, then the most
** specific complete entry that subsumes it.  *piEntry = 0 when none. */
int fedCacheLookup(FedCacheCsr *p, FedTable *pTab, i64 *piEntry,
                   int *pbSame){
  FedCacheTab *pCT = p->pCT;
  FedCacheDb *pDb = pCT->pDb;
  sqlite3_stmt *pStmt = 0;
  i64 iNow = fedCacheNow();
  i64 iMin = iNow - pCT->nTtlMs;
  int rc, n = 0;
  *piEntry = 0;
  *pbSame = 0;
  rc = sqlite3_prepare_v2(pDb->db, "SELECT id FROM fed_cache_entry"
      " WHERE tid=?1 AND qkey=?2 AND created>?3 AND nrow>=0", -1, &pStmt, 0);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, pCT->iTid);
  sqlite3_bind_text(pStmt, 2, p->zKey, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 3, iMin);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *piEntry = sqlite3_column_int64(pStmt,0);
    *pbSame = 1;
  }
  rc = sqlite3_finalize(pStmt);
  if( rc || *piEntry ) return rc;

  /* A subsuming entry is read whole (its rows have no index): beyond
  ** CACHE_SUBSUME_ROWS rows, asking the store for a request with terms
  ** (which it answers from its indexes) and caching that is cheaper. */
  rc = sqlite3_prepare_v2(pDb->db, "SELECT id, cols, nterm FROM"
      " fed_cache_entry WHERE tid=?1 AND blimit=0 AND created>?2 AND nrow>=0"
      " AND (nrow<=?4 OR ?5) ORDER BY nterm DESC, nrow LIMIT ?3", -1,
      &pStmt, 0);
  if( rc ) return rc;
  sqlite3_bind_int64(pStmt, 1, pCT->iTid);
  sqlite3_bind_int64(pStmt, 2, iMin);
  sqlite3_bind_int(pStmt, 3, CACHE_MAX_CAND);
  sqlite3_bind_int(pStmt, 4, CACHE_SUBSUME_ROWS);
  sqlite3_bind_int(pStmt, 5, p->nTerm==0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    i64 iEntry = sqlite3_column_int64(pStmt, 0);
    u64 cols = (u64)sqlite3_column_int64(pStmt, 1);
    int nTerm = sqlite3_column_int(pStmt, 2);
    CacheTerm *aE = 0;
    int r;
    if( (p->cols & ~cols)!=0 ) continue;
    rc = cacheTermsLoad(pDb, pTab, iEntry, nTerm, &aE);
    if( rc ) break;
    r = cacheSubsumes(pDb, p, cols, aE, nTerm);
    cacheTermsFree(aE, nTerm);
    if( r<0 ){ rc = SQLITE_ERROR; break; }
    if( r ){ *piEntry = iEntry; break; }
    n++;
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK && rc==SQLITE_OK ) rc = SQLITE_ERROR;
  return rc;
}
