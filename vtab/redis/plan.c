/*
** plan.c: what a scan reads, from the plan and xFilter's values, with no
** I/O: named keys or a SCAN pattern, value sets, score and index bounds,
** the conditions checked here, and the SCAN and fetch commands.
*/
#include "redisInt.h"

/*
** The class and bytes an = value selects on a text column (key, field,
** member): 1 and *peCls (FED_KV_TEXT or FED_KV_BLOB, ext/kv.h) when a
** row can be equal, 0 when none can (NULL, or text that is not valid
** UTF-8: such a key reads as a BLOB), -1 when the value cannot be
** expressed (a number compared loosely: its affinity is not known here),
** -2 on OOM.  Numbers compared exactly are literals, converted to text as
** SQLite's TEXT affinity does.
*/
static int eqClass(sqlite3_value *v, int bExact, const char **pz, int *pn,
                   int *peCls){
  *peCls = FED_KV_TEXT;
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL:
      return 0;
    case SQLITE_INTEGER: case SQLITE_FLOAT:
      if( !bExact ) return -1;
      *pz = (const char*)sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      return *pz ? 1 : -2;
    case SQLITE_BLOB:
      *pz = (const char*)sqlite3_value_blob(v);
      *pn = sqlite3_value_bytes(v);
      if( *pz==0 ) *pz = "";
      *peCls = FED_KV_BLOB;
      return fedKvIsText(*pz, *pn) ? 0 : 1;
    default:
      *pz = (const char*)sqlite3_value_text(v);
      *pn = sqlite3_value_bytes(v);
      if( *pz==0 ) return -2;
      return fedKvIsText(*pz, *pn) ? 1 : 0;
  }
}

/* Add a value to a set of values, remembering the order (elem.i). */
static int setAdd(FedKvHash *pSet, int eCls, const char *z, int n){
  int bNew = 0;
  FedKvElem *e = fedKvHashAdd(pSet, eCls, z, n, &bNew);
  if( e==0 ) return 1;
  if( bNew ) e->i = pSet->nElem-1;
  return 0;
}

/* Collect the values of an = or IN term into pSet (class as iDb).
** Returns 1 if usable, 0 if it cannot be expressed, -2 on OOM. */
static int termValues(const FedPlanTerm *t, sqlite3_value *pVal,
                      FedKvHash *pSet){
  sqlite3_value *pV;
  int rc;
  if( t->op==FED_OP_EQ ){
    const char *z;
    int n, eCls, rc2 = eqClass(pVal, t->bExact, &z, &n, &eCls);
    if( rc2==-2 ) return -2;
    if( rc2<0 ) return 0;
    if( rc2>0 && setAdd(pSet, eCls, z, n) ) return -2;
    return 1;
  }
  for(rc=sqlite3_vtab_in_first(pVal, &pV); rc==SQLITE_OK && pV;
      rc=sqlite3_vtab_in_next(pVal, &pV)){
    const char *z;
    int n, eCls, rc2 = eqClass(pV, t->bExact, &z, &n, &eCls);
    if( rc2==-2 ) return -2;
    if( rc2<0 ) return 0;
    if( rc2>0 && setAdd(pSet, eCls, z, n) ) return -2;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_DONE ) return rc==SQLITE_NOMEM ? -2 : 0;
  return 1;
}

/* Copy the values of pSet into an array of RBuf (the named keys). */
static int setToArray(FedKvHash *pSet, RBuf **paOut, int *pnOut){
  FedKvElem *e;
  int i, n = 0;
  RBuf *a = sqlite3_malloc64(sizeof(RBuf)*(pSet->nElem+1));
  if( a==0 ) return SQLITE_NOMEM;
  memset(a, 0, sizeof(RBuf)*(pSet->nElem+1));
  FEDKV_EACH(pSet, i, e){
    if( rdBufSet(&a[e->i], e->zKey, e->nKey) ){
      for(n=0; n<pSet->nElem; n++) rdBufFree(&a[n]);
      sqlite3_free(a);
      return SQLITE_NOMEM;
    }
  }
  n = pSet->nElem;
  *paOut = a;
  *pnOut = n;
  return SQLITE_OK;
}

/* A number-valued term: *pbInt and the value; 0 if not a number, -1 if
** out of memory. */
int rdTermNumber(sqlite3_value *pVal, int *pbInt, i64 *piVal,
                 double *prVal){
  sqlite3_value *pDup = 0;
  int eType = sqlite3_value_type(pVal);
  int bOk = 1;
  if( eType==SQLITE_TEXT ){
    pDup = sqlite3_value_dup(pVal);
    if( pDup==0 ) return -1;
    eType = sqlite3_value_numeric_type(pDup);
    pVal = pDup;
  }
  if( eType==SQLITE_INTEGER ){
    *pbInt = 1;
    *piVal = sqlite3_value_int64(pVal);
    *prVal = (double)*piVal;
  }else if( eType==SQLITE_FLOAT ){
    *pbInt = 0;
    *prVal = sqlite3_value_double(pVal);
  }else{
    bOk = 0;
  }
  sqlite3_value_free(pDup);
  return bOk;
}

/* Narrow the score bounds by "score op value" (a superset when the value
** is an integer no double holds exactly). */
static void scoreBound(RedisCursor *pCsr, int op, int bInt, i64 iVal,
                       double rVal){
  double d = rVal;
  int bExactD = !bInt || (d>-9223372036854775808.0
                          && d<9223372036854775808.0 && (i64)d==iVal);
  int bLo = op==FED_OP_GT || op==FED_OP_GE || op==FED_OP_EQ;
  int bHi = op==FED_OP_LT || op==FED_OP_LE || op==FED_OP_EQ;
  if( bLo ){
    double lo = bExactD ? d : nextafter(d, -HUGE_VAL);
    int bExcl = bExactD && op==FED_OP_GT;
    if( !pCsr->bLo || lo>pCsr->rLo || (lo==pCsr->rLo && bExcl) ){
      pCsr->rLo = lo;
      pCsr->bLoExcl = bExcl;
      pCsr->bLo = 1;
    }
  }
  if( bHi ){
    double hi = bExactD ? d : nextafter(d, HUGE_VAL);
    int bExcl = bExactD && op==FED_OP_LT;
    if( !pCsr->bHi || hi<pCsr->rHi || (hi==pCsr->rHi && bExcl) ){
      pCsr->rHi = hi;
      pCsr->bHiExcl = bExcl;
      pCsr->bHi = 1;
    }
  }
}

/* Narrow the list bounds by "idx op value".  Indexes are never negative,
** so an upper bound below 0 leaves nothing (computed without overflow:
** idx < -9223372036854775808 has no integer bound). */
static void idxBound(RedisCursor *pCsr, int op, int bInt, i64 iVal,
                     double rVal){
  i64 lo = 0, hi = 0;
  int bLo = 0, bHi = 0;
  if( bInt ){
    switch( op ){
      case FED_OP_GT:
        if( iVal==LLONG_MAX ){ pCsr->bEmpty = 1; }
        else{ lo = iVal+1; bLo = 1; }
        break;
      case FED_OP_GE: lo = iVal; bLo = 1; break;
      case FED_OP_LT:
        if( iVal<=0 ){ pCsr->bEmpty = 1; }
        else{ hi = iVal-1; bHi = 1; }
        break;
      case FED_OP_LE: hi = iVal; bHi = 1; break;
      case FED_OP_EQ: lo = hi = iVal; bLo = bHi = 1; break;
    }
  }else{
    double f = floor(rVal), c = ceil(rVal);
    if( rVal>=9.2e18 ){ f = c = 9.2e18; }
    if( rVal<=-9.2e18 ){ f = c = -9.2e18; }
    switch( op ){
      case FED_OP_GT: lo = (i64)f+1; bLo = 1; break;
      case FED_OP_GE: lo = (i64)c; bLo = 1; break;
      case FED_OP_LT: hi = (i64)c-1; bHi = 1; break;
      case FED_OP_LE: hi = (i64)f; bHi = 1; break;
      case FED_OP_EQ:
        if( f==rVal ){ lo = hi = (i64)f; bLo = bHi = 1; }
        else{ pCsr->bEmpty = 1; }
        break;
    }
  }
  if( bLo && lo>pCsr->iIdxLo ) pCsr->iIdxLo = lo;
  if( bHi ){
    if( hi<0 ) pCsr->bEmpty = 1;
    else if( pCsr->iIdxHi<0 || hi<pCsr->iIdxHi ) pCsr->iIdxHi = hi;
  }
}

/*
** Turn the plan and xFilter's values into what to read: named keys or a
** SCAN pattern, named fields/members, score and index bounds, LIMIT, and
** the conditions to check here.
*/
int rdCursorPlan(RedisCursor *pCsr, int argc, sqlite3_value **argv,
                 char **pzErr){
  FedTable *pTab = pCsr->pFed->pTab;
  RedisTable *pRt = pCsr->pRt;
  const FedPlan *pPlan = pCsr->pFed->pPlan;
  int i, rc = SQLITE_OK;
  int bKeyDone = 0, bSubDone = 0;
  int nBest = rdMatchScore(pRt->zPattern, pRt->nPattern);
  (void)pzErr;
  /* Builds with LIKE_DOESNT_MATCH_BLOBS (Debian's) never GLOB a blob. */
  pCsr->bNoBlobGlob = sqlite3_compileoption_used("LIKE_DOESNT_MATCH_BLOBS");

  pCsr->zMatch = fedStrdup(pRt->zPattern, pRt->nPattern);
  if( pCsr->zMatch==0 ) return SQLITE_NOMEM;
  if( pPlan->nTerm>0 ){
    pCsr->aTerm = sqlite3_malloc64(sizeof(RedisTerm)*pPlan->nTerm);
    if( pCsr->aTerm==0 ) return SQLITE_NOMEM;
    memset(pCsr->aTerm, 0, sizeof(RedisTerm)*pPlan->nTerm);
  }
  for(i=0; i<pPlan->nTerm && rc==SQLITE_OK && !pCsr->bEmpty; i++){
    const FedPlanTerm *t = &pPlan->aTerm[i];
    sqlite3_value *pVal;
    int eKind;
    if( t->iCol<0 || t->iCol>=pTab->nCol || t->iArg<0 ) continue;
    if( t->iArg>=argc ) return SQLITE_CORRUPT_VTAB;
    pVal = argv[t->iArg];
    eKind = pTab->aCol[t->iCol].eKind;
    if( eKind==RC_VALUE ) eKind = RC_FIELD;     /* a set/zset member */
    if( (eKind==RC_KEY || eKind==RC_FIELD)
     && (t->op==FED_OP_EQ || t->op==FED_OP_IN) ){
      FedKvHash set;
      int bUse;
      memset(&set, 0, sizeof(set));
      bUse = termValues(t, pVal, &set);
      if( bUse==-2 ){ fedKvHashClear(&set); return SQLITE_NOMEM; }
      if( bUse && set.nElem==0 ){
        pCsr->bEmpty = 1;
      }else if( bUse && eKind==RC_KEY && !bKeyDone ){
        bKeyDone = 1;
        pCsr->bNamed = 1;
        rc = setToArray(&set, &pCsr->aKey, &pCsr->nKey);
      }else if( bUse && eKind==RC_FIELD && !bSubDone ){
        bSubDone = 1;
        rc = setToArray(&set, &pCsr->aSub, &pCsr->nSub);
      }
      if( bUse && t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = eKind;
        pT->op = FED_OP_EQ;
        pT->set = set;
      }else{
        fedKvHashClear(&set);
      }
    }else if( eKind==RC_KEY && (t->op==FED_OP_GLOB || t->op==FED_OP_LIKE) ){
      const char *zPat;
      char *zMatch;
      int bNone = 0;
      /* Such a build matches no blob pattern either.  Asked before
      ** sqlite3_value_text(), which makes the blob read as text. */
      if( pCsr->bNoBlobGlob && sqlite3_value_type(pVal)==SQLITE_BLOB ){
        pCsr->bEmpty = 1;
        break;
      }
      zPat = (const char*)sqlite3_value_text(pVal);
      if( zPat==0 ){
        if( sqlite3_value_type(pVal)!=SQLITE_NULL ) return SQLITE_NOMEM;
        pCsr->bEmpty = 1;
        break;
      }
      zMatch = t->op==FED_OP_GLOB ? rdGlobToMatch(zPat, &bNone)
                                  : rdLikeToMatch(zPat);
      if( zMatch==0 ) return SQLITE_NOMEM;
      if( bNone || rdMatchDisjoint(pRt->zPattern, zMatch) ){
        pCsr->bEmpty = 1;
      }else{
        int nScore = rdMatchScore(zMatch, (int)strlen(zMatch));
        if( nScore>nBest ){
          nBest = nScore;
          sqlite3_free(pCsr->zMatch);
          pCsr->zMatch = zMatch;
          zMatch = 0;
        }
      }
      sqlite3_free(zMatch);
      if( t->op==FED_OP_GLOB && t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = RC_KEY;
        pT->op = FED_OP_GLOB;
        pT->zGlob = fedStrdup(zPat, -1);
        if( pT->zGlob==0 ) return SQLITE_NOMEM;
      }
    }else if( (eKind==RC_SCORE || eKind==RC_IDX) && t->op!=FED_OP_IN ){
      int bInt = 0;
      i64 iVal = 0;
      double rVal = 0.0;
      if( sqlite3_value_type(pVal)==SQLITE_NULL ){
        if( t->bExact ) pCsr->bEmpty = 1;
        continue;
      }
      rc = rdTermNumber(pVal, &bInt, &iVal, &rVal);
      if( rc<0 ) return SQLITE_NOMEM;
      if( rc==0 ) continue;
      rc = SQLITE_OK;
      if( eKind==RC_SCORE ) scoreBound(pCsr, t->op, bInt, iVal, rVal);
      else idxBound(pCsr, t->op, bInt, iVal, rVal);
      if( t->bExact ){
        RedisTerm *pT = &pCsr->aTerm[pCsr->nTerm++];
        pT->eKind = eKind;
        pT->op = t->op;
        pT->bInt = bInt;
        pT->iVal = iVal;
        pT->rVal = rVal;
      }
    }
  }
  if( rc ) return rc;
  if( pCsr->bLo && pCsr->bHi && (pCsr->rLo>pCsr->rHi
      || (pCsr->rLo==pCsr->rHi && (pCsr->bLoExcl || pCsr->bHiExcl))) ){
    pCsr->bEmpty = 1;
  }
  if( pCsr->iIdxHi>=0 && pCsr->iIdxHi<pCsr->iIdxLo ) pCsr->bEmpty = 1;
  if( pPlan->iLimitArg>=0 && pPlan->iLimitArg<argc ){
    pCsr->nLimit = sqlite3_value_int64(argv[pPlan->iLimitArg]);
    if( pCsr->nLimit==0 ) pCsr->bEmpty = 1;
  }
  if( pPlan->iOffsetArg>=0 && pPlan->iOffsetArg<argc ){
    pCsr->nOffset = sqlite3_value_int64(argv[pPlan->iOffsetArg]);
    if( pCsr->nOffset<0 ) pCsr->nOffset = 0;
  }
  /* The declared fields read (fields=). */
  pCsr->nFieldUsed = 0;
  for(i=0; i<pRt->nField; i++){
    if( fedPlanColUsed(pPlan, pRt->iFirstField+i) ){
      pCsr->aField[pCsr->nFieldUsed++] = i;
    }
  }
  return SQLITE_OK;
}

/* The key passes the table's key space and the conditions on keys. */
int rdKeyWanted(RedisCursor *pCsr, const char *z, int n){
  RedisTable *pRt = pCsr->pRt;
  int i;
  if( !rdKeyInSpace(pRt->zPattern, pRt->nPattern, z, n) ) return 0;
  if( n>=(int)sizeof(RD_RESERVED)-1
   && memcmp(z, RD_RESERVED, sizeof(RD_RESERVED)-1)==0 ){
    return 0;
  }
  for(i=0; i<pCsr->nTerm; i++){
    RedisTerm *pT = &pCsr->aTerm[i];
    if( pT->eKind!=RC_KEY ) continue;
    if( pT->op==FED_OP_EQ ){
      if( !fedKvHashFind(&pT->set, fedKvClass(z, n), z, n) ) return 0;
    }else if( pT->op==FED_OP_GLOB ){
      /* SQLite's GLOB sees a blob key up to its first NUL byte. */
      char zBuf[256];
      char *zKey;
      int bMatch;
      if( pCsr->bNoBlobGlob && !fedKvIsText(z, n) ) return 0;
      zKey = n<(int)sizeof(zBuf) ? zBuf : sqlite3_malloc64((u64)n+1);
      if( zKey==0 ) return -1;
      memcpy(zKey, z, n);
      zKey[n] = 0;
      bMatch = sqlite3_strglob(pT->zGlob, zKey)==0;
      if( zKey!=zBuf ) sqlite3_free(zKey);
      if( !bMatch ) return 0;
    }
  }
  return 1;
}

/* The row passes the conditions on fields, members, scores, indexes. */
int rdRowWanted(RedisCursor *pCsr, const RedisRow *pRow){
  int i;
  for(i=0; i<pCsr->nTerm; i++){
    RedisTerm *pT = &pCsr->aTerm[i];
    int c;
    if( pT->eKind==RC_FIELD ){
      if( pRow->zSub==0 ) return 0;
      if( !fedKvHashFind(&pT->set, fedKvClass(pRow->zSub, pRow->nSub),
                      pRow->zSub, pRow->nSub) ){
        return 0;
      }
      continue;
    }
    if( pT->eKind==RC_SCORE ){
      if( pT->bInt ){
        c = -rdIntDoubleCmp(pT->iVal, pRow->rScore);
      }else{
        c = pRow->rScore<pT->rVal ? -1 : pRow->rScore>pT->rVal;
      }
    }else if( pT->eKind==RC_IDX ){
      if( pT->bInt ){
        c = pRow->iIdx<pT->iVal ? -1 : pRow->iIdx>pT->iVal;
      }else{
        c = rdIntDoubleCmp(pRow->iIdx, pT->rVal);
      }
    }else{
      continue;
    }
    switch( pT->op ){
      case FED_OP_EQ: if( c!=0 ) return 0; break;
      case FED_OP_LT: if( c>=0 ) return 0; break;
      case FED_OP_LE: if( c>0 ) return 0; break;
      case FED_OP_GT: if( c<=0 ) return 0; break;
      case FED_OP_GE: if( c<0 ) return 0; break;
    }
  }
  return 1;
}

/* Append the commands that read one key (not the MGET of a string SCAN
** batch) to P. */
void rdFetchCmds(RedisCursor *pCsr, RedisPipe *P, const char *z, int n,
                 int bTtl){
  RedisTable *pRt = pCsr->pRt;
  FedTable *pTab = pCsr->pFed->pTab;
  int iDb = pCsr->iDb, i;
  char zLo[40], zHi[40];
  switch( pRt->eMode ){
    case RT_STRING:
      if( pCsr->bNamed ){
        rdPipeCmd(P, iDb, "GET");
        rdPipeArg(P, z, n);
      }
      break;
    case RT_HASH:
      if( pCsr->aSub ){
        rdPipeCmd(P, iDb, "HMGET");
        rdPipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++){
          rdPipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
        }
      }else{
        rdPipeCmd(P, iDb, "HGETALL");
        rdPipeArg(P, z, n);
      }
      break;
    case RM_FIELDS:
      if( pCsr->nFieldUsed>0 && !bTtl ){
        /* One command, where HMGET needs a TTL to tell a missing key from
        ** missing fields (keyRows() picks the fields read). */
        rdPipeCmd(P, iDb, "HGETALL");
        rdPipeArg(P, z, n);
        break;
      }
      if( pCsr->nFieldUsed>0 ){
        rdPipeCmd(P, iDb, "HMGET");
        rdPipeArg(P, z, n);
        for(i=0; i<pCsr->nFieldUsed; i++){
          rdPipeArg(P, pTab->aCol[pRt->iFirstField+pCsr->aField[i]].zName, -1);
        }
      }
      rdPipeCmd(P, iDb, "TTL");
      rdPipeArg(P, z, n);
      bTtl = 0;
      break;
    case RT_LIST:
      rdPipeCmd(P, iDb, "LRANGE");
      rdPipeArg(P, z, n);
      rdPipeArgInt(P, pCsr->iIdxLo);
      rdPipeArgInt(P, pCsr->iIdxHi);
      break;
    case RT_SET:
      if( pCsr->aSub ){
        rdPipeCmd(P, iDb, "SMISMEMBER");
        rdPipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++){
          rdPipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
        }
      }else{
        rdPipeCmd(P, iDb, "SMEMBERS");
        rdPipeArg(P, z, n);
      }
      break;
    case RT_ZSET:
      if( pCsr->aSub ){
        rdPipeCmd(P, iDb, "ZMSCORE");
        rdPipeArg(P, z, n);
        for(i=0; i<pCsr->nSub; i++){
          rdPipeArg(P, pCsr->aSub[i].z, pCsr->aSub[i].n);
        }
      }else if( pCsr->bLo || pCsr->bHi ){
        rdPipeCmd(P, iDb, "ZRANGEBYSCORE");
        rdPipeArg(P, z, n);
        if( pCsr->bLo ){
          zLo[0] = '(';
          rdDoubleArg(pCsr->rLo, &zLo[1], sizeof(zLo)-1);
          rdPipeArgCopy(P, pCsr->bLoExcl ? zLo : &zLo[1], -1);
        }else{
          rdPipeArg(P, "-inf", 4);
        }
        if( pCsr->bHi ){
          zHi[0] = '(';
          rdDoubleArg(pCsr->rHi, &zHi[1], sizeof(zHi)-1);
          rdPipeArgCopy(P, pCsr->bHiExcl ? zHi : &zHi[1], -1);
        }else{
          rdPipeArg(P, "+inf", 4);
        }
        rdPipeArg(P, "WITHSCORES", 10);
      }else{
        rdPipeCmd(P, iDb, "ZRANGE");
        rdPipeArg(P, z, n);
        rdPipeArg(P, "0", 1);
        rdPipeArg(P, "-1", 2);
        rdPipeArg(P, "WITHSCORES", 10);
      }
      break;
    case RM_ANY:
      rdPipeCmd(P, iDb, "TYPE");
      rdPipeArg(P, z, n);
      if( pRt->iValue>=0 && fedPlanColUsed(pCsr->pFed->pPlan, pRt->iValue) ){
        rdPipeCmd(P, iDb, "GET");
        rdPipeArg(P, z, n);
      }
      break;
  }
  if( bTtl ){
    rdPipeCmd(P, iDb, "TTL");
    rdPipeArg(P, z, n);
  }
}

/* Add the SCAN command that continues this cursor's iteration to P. */
void rdScanCmd(RedisCursor *pCsr, RedisPipe *P){
  RedisTable *pRt = pCsr->pRt;
  int eType = rdModeType(pRt->eMode);
  rdPipeCmd(P, pCsr->iDb, "SCAN");
  rdPipeArgCopy(P, pCsr->zCursor, -1);
  if( pCsr->zMatch[strspn(pCsr->zMatch, "*")]!=0 ){
    rdPipeArg(P, "MATCH", 5);
    rdPipeArg(P, pCsr->zMatch, -1);
  }
  rdPipeArg(P, "COUNT", 5);
  rdPipeArgInt(P, pRt->nScanCount);
  if( eType!=RT_NONE ){
    rdPipeArg(P, "TYPE", 4);
    rdPipeArg(P, rdTypeName(eType), -1);
  }
  pCsr->bScanStarted = 1;
}
