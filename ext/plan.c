/*
** plan.c: from sqlite3_index_info to a store-neutral FedPlan, and the plan's
** text form that travels from xBestIndex to xFilter as idxStr:
**
**     u=<colUsed hex>;t=<col>:<op>:<arg>:<exact>,...;o=<col>[d],...;l=<arg>;f=<arg>
**
** Each store decides per constraint (xPushable) and per ORDER BY column
** (xOrderable); this file applies the rules that keep a federated answer
** equal to SQLite's own (docs/ARCHITECTURE.md, "pushdown rules"):
** LIMIT/OFFSET go down only when every constraint went down exactly and
** the ORDER BY (if any) is consumed.
**
** Hidden terms.  Some SQLite releases (3.40) offer LIMIT and OFFSET to
** xBestIndex even when the WHERE clause holds a term it never shows
** xBestIndex: one whose right side reads the same table (a = id % 7, a =
** length(b)).  SQLite evaluates such a term itself, after the store has
** already cut the scan at LIMIT, so rows it rejects leave the answer short.
** On those releases (fedPlanLimitHidesTerms() asks) LIMIT is only a hint (";c=1" in idxStr): it is pushed
** only where the order is total (the ORDER BY, with the primary key
** appended when absent), OFFSET is never pushed, and if SQLite asks for a
** row past the hint (it only does so when it rejected some), vtab.c
** continues the scan with OFFSET <hint> and no LIMIT, which is exact
** because the order is total.  Later releases do not offer LIMIT in that
** case (sqlite3WhereAddLimit checks prereqRight), so they keep the plain
** rule.
*/
#include "fedInt.h"
#include <stdlib.h>

void fedPlanFree(FedPlan *p){
  if( p==0 ) return;
  sqlite3_free(p->aTerm);
  sqlite3_free(p->aOrderCol);
  sqlite3_free(p->aOrderDesc);
  sqlite3_free(p);
}

int fedPlanColUsed(const FedPlan *p, int iCol){
  if( iCol<0 ) return 1;
  if( iCol>=63 ) return (p->colUsed>>63)&1;
  return (p->colUsed>>iCol)&1;
}

char *fedPlanEncode(const FedPlan *p){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendf(s, "u=%llx", p->colUsed);
  for(i=0; i<p->nTerm; i++){
    const FedPlanTerm *t = &p->aTerm[i];
    sqlite3_str_appendf(s, "%s%d:%d:%d:%d", i ? "," : ";t=",
                        t->iCol, t->op, t->iArg, t->bExact);
  }
  for(i=0; i<p->nOrder; i++){
    sqlite3_str_appendf(s, "%s%d%s", i ? "," : ";o=", p->aOrderCol[i],
                        p->aOrderDesc[i] ? "d" : "");
  }
  if( p->iLimitArg>=0 ) sqlite3_str_appendf(s, ";l=%d", p->iLimitArg);
  if( p->iOffsetArg>=0 ) sqlite3_str_appendf(s, ";f=%d", p->iOffsetArg);
  if( p->bLimitCont ) sqlite3_str_appendall(s, ";c=1");
  return sqlite3_str_finish(s);
}

/* Read a (possibly negative) decimal integer at *pz, advancing it. */
static int readInt(const char **pz, int *pOut){
  const char *z = *pz;
  int bNeg = 0;
  long v = 0;
  if( *z=='-' ){ bNeg = 1; z++; }
  if( *z<'0' || *z>'9' ) return 1;
  while( *z>='0' && *z<='9' ){
    v = v*10 + (*z - '0');
    if( v>1000000 ) return 1;
    z++;
  }
  *pOut = bNeg ? (int)-v : (int)v;
  *pz = z;
  return 0;
}

static int planGrow(FedPlan *p, int bOrder){
  if( bOrder ){
    int *aCol = sqlite3_realloc64(p->aOrderCol, sizeof(int)*(p->nOrder+1));
    u8 *aDesc;
    if( aCol==0 ) return SQLITE_NOMEM;
    p->aOrderCol = aCol;
    aDesc = sqlite3_realloc64(p->aOrderDesc, p->nOrder+1);
    if( aDesc==0 ) return SQLITE_NOMEM;
    p->aOrderDesc = aDesc;
  }else{
    FedPlanTerm *a = sqlite3_realloc64(p->aTerm,
                                       sizeof(FedPlanTerm)*(p->nTerm+1));
    if( a==0 ) return SQLITE_NOMEM;
    p->aTerm = a;
  }
  return SQLITE_OK;
}

int fedPlanDecode(const char *z, FedPlan **ppPlan){
  FedPlan *p;
  int rc = SQLITE_OK;
  *ppPlan = 0;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->iLimitArg = -1;
  p->iOffsetArg = -1;
  if( z==0 ) z = "";
  while( rc==SQLITE_OK && *z ){
    char c = z[0];
    if( z[1]!='=' ){ rc = SQLITE_CORRUPT_VTAB; break; }
    z += 2;
    switch( c ){
      case 'u': {
        u64 v = 0;
        int n = 0;
        while( n<16 && ((*z>='0' && *z<='9') || (*z>='a' && *z<='f')) ){
          v = (v<<4) | (u64)(*z<='9' ? *z-'0' : *z-'a'+10);
          z++; n++;
        }
        if( n==0 ) rc = SQLITE_CORRUPT_VTAB;
        p->colUsed = v;
        break;
      }
      case 't':
        do{
          FedPlanTerm t;
          int bExact = 0;
          if( *z==',' ) z++;
          if( readInt(&z, &t.iCol) || *z++!=':' || readInt(&z, &t.op)
           || *z++!=':' || readInt(&z, &t.iArg) || *z++!=':'
           || readInt(&z, &bExact) || t.op<FED_OP_EQ || t.op>FED_OP_IN
           || t.iCol<-1 || t.iCol>=FED_MAX_COLUMNS || t.iArg<-1 ){
            rc = SQLITE_CORRUPT_VTAB;
            break;
          }
          t.bExact = bExact!=0;
          rc = planGrow(p, 0);
          if( rc==SQLITE_OK ) p->aTerm[p->nTerm++] = t;
        }while( rc==SQLITE_OK && *z==',' );
        break;
      case 'o':
        do{
          int iCol;
          if( *z==',' ) z++;
          if( readInt(&z, &iCol) || iCol<0 || iCol>=FED_MAX_COLUMNS ){
            rc = SQLITE_CORRUPT_VTAB;
            break;
          }
          rc = planGrow(p, 1);
          if( rc==SQLITE_OK ){
            p->aOrderCol[p->nOrder] = iCol;
            p->aOrderDesc[p->nOrder] = (*z=='d');
            p->nOrder++;
          }
          if( *z=='d' ) z++;
        }while( rc==SQLITE_OK && *z==',' );
        break;
      case 'l':
        if( readInt(&z, &p->iLimitArg) || p->iLimitArg<0 ){
          rc = SQLITE_CORRUPT_VTAB;
        }
        break;
      case 'f':
        if( readInt(&z, &p->iOffsetArg) || p->iOffsetArg<0 ){
          rc = SQLITE_CORRUPT_VTAB;
        }
        break;
      case 'c':
        if( *z!='1' ) rc = SQLITE_CORRUPT_VTAB;
        else{ p->bLimitCont = 1; z++; }
        break;
      default:
        rc = SQLITE_CORRUPT_VTAB;
    }
    if( rc==SQLITE_OK ){
      if( *z==';' ) z++;
      else if( *z ) rc = SQLITE_CORRUPT_VTAB;
    }
  }
  if( rc!=SQLITE_OK ){
    fedPlanFree(p);
    return rc;
  }
  *ppPlan = p;
  return SQLITE_OK;
}

/* Map SQLite's constraint operator to FED_OP_*, or 0. */
static int planOp(unsigned char op){
  switch( op ){
    case SQLITE_INDEX_CONSTRAINT_EQ:        return FED_OP_EQ;
    case SQLITE_INDEX_CONSTRAINT_GT:        return FED_OP_GT;
    case SQLITE_INDEX_CONSTRAINT_LE:        return FED_OP_LE;
    case SQLITE_INDEX_CONSTRAINT_LT:        return FED_OP_LT;
    case SQLITE_INDEX_CONSTRAINT_GE:        return FED_OP_GE;
    case SQLITE_INDEX_CONSTRAINT_NE:        return FED_OP_NE;
    case SQLITE_INDEX_CONSTRAINT_ISNULL:    return FED_OP_ISNULL;
    case SQLITE_INDEX_CONSTRAINT_ISNOTNULL: return FED_OP_NOTNULL;
    case SQLITE_INDEX_CONSTRAINT_IS:        return FED_OP_IS;
    case SQLITE_INDEX_CONSTRAINT_ISNOT:     return FED_OP_ISNOT;
    case SQLITE_INDEX_CONSTRAINT_LIKE:      return FED_OP_LIKE;
    case SQLITE_INDEX_CONSTRAINT_GLOB:      return FED_OP_GLOB;
  }
  return 0;
}

/*
** Whether this process's SQLite offers LIMIT to xBestIndex although the
** WHERE clause holds a term it hides (see "hidden terms" above).  Asked of
** SQLite itself rather than guessed from its version: a private in-memory
** connection prepares "... WHERE a = b LIMIT 1" over a probe table and the
** probe's xBestIndex records whether LIMIT came.  The answer depends only
** on the library, so it is kept for the process (0: not asked yet).  A
** probe that fails (out of memory) is not kept and counts as "offers":
** the careful rule is always exact.
*/
static int planLimitProbeSeen;  /* Set by probeBestIndex: LIMIT offered */

static int probeConnect(sqlite3 *db, void *pAux, int argc,
                        const char *const *argv, sqlite3_vtab **ppVtab,
                        char **pzErr){
  int rc;
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(a, b)");
  if( rc!=SQLITE_OK ) return rc;
  *ppVtab = sqlite3_malloc64(sizeof(sqlite3_vtab));
  if( *ppVtab==0 ) return SQLITE_NOMEM;
  memset(*ppVtab, 0, sizeof(sqlite3_vtab));
  return SQLITE_OK;
}
static int probeDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}
static int probeBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i;
  (void)pVtab;
  for(i=0; i<pInfo->nConstraint; i++){
    if( pInfo->aConstraint[i].op==SQLITE_INDEX_CONSTRAINT_LIMIT ){
      planLimitProbeSeen = 1;
    }
  }
  pInfo->estimatedCost = 1000.0;
  return SQLITE_OK;
}
static int probeOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCsr){
  (void)pVtab; (void)ppCsr;
  return SQLITE_ERROR;            /* Never stepped */
}

int fedPlanLimitHidesTerms(void){
  static int eHides = 0;          /* 0 unknown, 1 hides, 2 does not */
  static const sqlite3_module probeModule = {
    0, 0, probeConnect, probeBestIndex, probeDisconnect, 0,
    probeOpen, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
  };
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( eHides ) return eHides==1;
  rc = sqlite3_open_v2(":memory:", &db,
                       SQLITE_OPEN_READWRITE|SQLITE_OPEN_MEMORY, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_module(db, "fed_limit_probe", &probeModule, 0);
  }
  if( rc==SQLITE_OK ){
    planLimitProbeSeen = 0;
    rc = sqlite3_prepare_v2(db,
        "SELECT a FROM fed_limit_probe WHERE a = b LIMIT 1", -1, &pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  if( rc!=SQLITE_OK ) return 1;
  eHides = planLimitProbeSeen ? 1 : 2;
  return eHides==1;
}

int fedPlanBest(FedTable *pTab, sqlite3_index_info *pInfo){
  const FedStore *pStore = pTab->pStore;
  FedPlan plan;
  int i, nArg = 0, rc = SQLITE_OK;
  int bAllExact = 1;            /* Every usable constraint went down exactly */
  int bOrder = 0;
  int iLimit = -1, iOffset = -1;
  double nRowAll = pTab->nRowEst>0 ? pTab->nRowEst : 1000000.0;
  double nRow = nRowAll;
  int bUnique = 0;
  int nIn = 0;
  char *zIdx;

  memset(&plan, 0, sizeof(plan));
  plan.iLimitArg = -1;
  plan.iOffsetArg = -1;
  plan.colUsed = pInfo->colUsed;
  plan.aTerm = sqlite3_malloc64(sizeof(FedPlanTerm)*(pInfo->nConstraint+1));
  if( plan.aTerm==0 ) return SQLITE_NOMEM;

  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *pCons = &pInfo->aConstraint[i];
    sqlite3_value *pRhs = 0;
    int op, ePush;
    FedPlanTerm *t;
    if( pCons->op==SQLITE_INDEX_CONSTRAINT_LIMIT ){
      if( pCons->usable ) iLimit = i;
      continue;
    }
    if( pCons->op==SQLITE_INDEX_CONSTRAINT_OFFSET ){
      if( pCons->usable ) iOffset = i;
      continue;
    }
    /* An unusable constraint (its value comes from a table later in the
    ** join) is SQLite's to check, row by row, after the store's LIMIT. */
    if( !pCons->usable ){
      bAllExact = 0;
      continue;
    }
    op = planOp(pCons->op);
    if( op==0 || pCons->iColumn<0 ){
      bAllExact = 0;
      continue;
    }
    /* A comparison under NOCASE, RTRIM or a custom collation is SQLite's
    ** to make, unless the column only ever holds numbers. */
    if( op!=FED_OP_ISNULL && op!=FED_OP_NOTNULL
     && sqlite3_stricmp(sqlite3_vtab_collation(pInfo, i), "BINARY")!=0
     && strcmp(pTab->aCol[pCons->iColumn].zAffinity, "INTEGER")!=0
     && strcmp(pTab->aCol[pCons->iColumn].zAffinity, "REAL")!=0 ){
      bAllExact = 0;
      continue;
    }
    if( sqlite3_vtab_rhs_value(pInfo, i, &pRhs)!=SQLITE_OK ) pRhs = 0;
    ePush = pStore->xPushable(pTab, pCons->iColumn, op, pRhs);
    if( ePush==FED_PUSH_NO ){
      bAllExact = 0;
      continue;
    }
    t = &plan.aTerm[plan.nTerm++];
    t->iCol = pCons->iColumn;
    t->op = op;
    t->bExact = ePush==FED_PUSH_EXACT;
    if( op==FED_OP_ISNULL || op==FED_OP_NOTNULL ){
      t->iArg = -1;
    }else{
      t->iArg = nArg;
      pInfo->aConstraintUsage[i].argvIndex = ++nArg;
    }
    pInfo->aConstraintUsage[i].omit = t->bExact;
    if( !t->bExact ) bAllExact = 0;
    if( op==FED_OP_EQ && sqlite3_vtab_in(pInfo, i, -1) ){
      sqlite3_vtab_in(pInfo, i, 1);
      t->op = FED_OP_IN;
      nIn++;
    }

    /* Cost: each pushed term narrows the estimate. */
    if( op==FED_OP_EQ || op==FED_OP_IS ){
      if( pCons->iColumn==pTab->iPk && t->op==FED_OP_EQ ){
        /* One row only when the store's answer is exact: from a superset
        ** SQLite's one-pass UPDATE/DELETE would take the first row only,
        ** which may be one that SQLite then rejects. */
        if( t->bExact ) bUnique = 1;
        nRow = 1;
      }else{
        nRow /= (t->op==FED_OP_IN ? 5 : 20);
      }
    }else if( op==FED_OP_ISNULL || op==FED_OP_LIKE || op==FED_OP_GLOB ){
      nRow /= 10;
    }else if( op!=FED_OP_NE && op!=FED_OP_NOTNULL && op!=FED_OP_ISNOT ){
      nRow /= 3;
    }
  }

  /* ORDER BY: all of it or none of it. */
  if( pInfo->nOrderBy>0 && nIn==0 ){
    bOrder = 1;
    for(i=0; i<pInfo->nOrderBy; i++){
      int iCol = pInfo->aOrderBy[i].iColumn;
      if( iCol<0 || !pStore->xOrderable(pTab, iCol, pInfo->aOrderBy[i].desc) ){
        bOrder = 0;
        break;
      }
    }
    if( bOrder ){
      plan.aOrderCol = sqlite3_malloc64(sizeof(int)*(pInfo->nOrderBy+1));
      plan.aOrderDesc = sqlite3_malloc64(pInfo->nOrderBy+1);
      if( plan.aOrderCol==0 || plan.aOrderDesc==0 ){
        rc = SQLITE_NOMEM;
        goto cleanup;
      }
      for(i=0; i<pInfo->nOrderBy; i++){
        plan.aOrderCol[i] = pInfo->aOrderBy[i].iColumn;
        plan.aOrderDesc[i] = pInfo->aOrderBy[i].desc;
      }
      plan.nOrder = pInfo->nOrderBy;
      pInfo->orderByConsumed = 1;
    }
  }

  /* LIMIT and OFFSET only when the store returns exactly SQLite's rows in
  ** SQLite's order. */
  if( bAllExact && (pInfo->nOrderBy==0 || bOrder) && iLimit>=0 ){
    if( !fedPlanLimitHidesTerms() ){
      plan.iLimitArg = nArg;
      pInfo->aConstraintUsage[iLimit].argvIndex = ++nArg;
      pInfo->aConstraintUsage[iLimit].omit = 1;
      if( iOffset>=0 ){
        plan.iOffsetArg = nArg;
        pInfo->aConstraintUsage[iOffset].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iOffset].omit = 1;
      }
    }else if( iOffset<0 && nIn==0 && pTab->iPk>=0 ){
      /* A hint that vtab.c can continue (see "hidden terms" above): the
      ** order must be total, so the primary key ends it if it is not in
      ** it already. */
      int bHasPk = 0;
      for(i=0; i<plan.nOrder; i++){
        if( plan.aOrderCol[i]==pTab->iPk ) bHasPk = 1;
      }
      if( !bHasPk && pStore->xOrderable(pTab, pTab->iPk, 0) ){
        if( plan.aOrderCol==0 ){
          plan.aOrderCol = sqlite3_malloc64(sizeof(int));
          plan.aOrderDesc = sqlite3_malloc64(1);
          if( plan.aOrderCol==0 || plan.aOrderDesc==0 ){
            rc = SQLITE_NOMEM;
            goto cleanup;
          }
        }
        plan.aOrderCol[plan.nOrder] = pTab->iPk;
        plan.aOrderDesc[plan.nOrder] = 0;
        plan.nOrder++;
        bHasPk = 1;
      }
      if( bHasPk ){
        plan.iLimitArg = nArg;
        plan.bLimitCont = 1;
        pInfo->aConstraintUsage[iLimit].argvIndex = ++nArg;
        /* omit stays 0: SQLite counts its LIMIT anyway, and 3.40 drops a
        ** hidden term such as "a < c" altogether when LIMIT is omitted. */
      }
    }
  }

  if( nRow<1 ) nRow = 1;
  pInfo->estimatedRows = (sqlite3_int64)nRow;
  /* One round trip costs about as much as reading a thousand rows. */
  pInfo->estimatedCost = 1000.0 + nRow;
  /* SQLite may answer "a=1 OR b=2" with one scan per term, merged by
  ** rowid.  Where rowids are only positions within one scan (no key, and
  ** the store has no stable rowid) that merge would drop distinct rows, so
  ** every plan of such a table costs what a full scan costs: two scans
  ** then always cost more than one, and SQLite reads the table once.  The
  ** smaller estimatedRows still makes a pushed term the better plan. */
  if( pTab->iPk<0 && !pStore->bRowidStable ){
    pInfo->estimatedCost = 1000.0 + nRowAll;
  }
  if( bUnique ) pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;

  zIdx = fedPlanEncode(&plan);
  if( zIdx==0 ){
    rc = SQLITE_NOMEM;
    goto cleanup;
  }
  pInfo->idxStr = zIdx;
  pInfo->needToFreeIdxStr = 1;

cleanup:
  sqlite3_free(plan.aTerm);
  sqlite3_free(plan.aOrderCol);
  sqlite3_free(plan.aOrderDesc);
  return rc;
}
