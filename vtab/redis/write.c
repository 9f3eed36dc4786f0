/*
** write.c: xUpdate: each INSERT, UPDATE or DELETE becomes queued commands.
**
** Writes.  Each xUpdate appends its commands to the transaction queue
** (nothing is sent: see txn.c).  A command that touches keys
** the transaction has already read through shadows is applied to them at
** once, so that a conflict is reported by the statement that makes it.
*/
#include "redisInt.h"

/* Append pOp (built at the end of the queue by rdOpNew) to the queue and
** apply it to the shadows of its keys where they exist.  On error the op
** is not queued; SQLITE_CONSTRAINT is a conflict (an existing row). */
static int queueOp(RedisConn *p, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp;
  RedisShadow *sh, *sh2 = 0;
  int rc = rdOpCommit(t);
  if( rc ) return rc;
  pOp = rdOp(t, t->kv.nOp-1);
  sh = rdShadowGet(t, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey);
  if( pOp->hdr.eOp==ROP_RENAME ){
    sh2 = rdShadowGet(t, pOp->hdr.iSpace, pOp->aArg[0].z, pOp->aArg[0].n);
  }
  if( sh && (pOp->hdr.eOp!=ROP_RENAME || sh2) ){
    rc = rdShadowApply(pOp, sh, sh2, pzErr);
    if( rc==SQLITE_DONE ) rc = SQLITE_OK, sh2 = sh = 0;
    else if( rc==SQLITE_OK ) return SQLITE_OK;
  }
  if( rc==SQLITE_OK ){
    /* Not enough is known here: the keys are re-read when next needed. */
    rdShadowDrop(t, pOp->hdr.iSpace, pOp->hdr.aKey, pOp->hdr.nKey);
    if( pOp->hdr.eOp==ROP_RENAME ){
      rdShadowDrop(t, pOp->hdr.iSpace, pOp->aArg[0].z, pOp->aArg[0].n);
    }
    return SQLITE_OK;
  }
  /* The shadows may have been changed half way: drop them with the op. */
  rdTxnTruncate(t, t->kv.nOp-1);
  return rc;
}

/* Build and queue one op: nArg arguments given as (z, n) pairs after the
** key.  Arguments with n<0 are NUL-terminated. */
int rdAddOp(RedisConn *p, int eOp, int eCond, int iDb, int iRow,
            int bIgnore, const char *zKey, int nKey, int nArg,
            const char **azArg, const int *anArg, i64 iNum,
            char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = rdOpNew(t, eOp, iDb, iRow, zKey, nKey, nArg);
  int i;
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->iNum = iNum;
  for(i=0; i<nArg; i++){
    int n = anArg[i]<0 ? (int)strlen(azArg[i]) : anArg[i];
    if( rdBufSet(&pOp->aArg[i], azArg[i], n) ){
      fedKvOpDiscard(&t->kv);
      return SQLITE_NOMEM;
    }
  }
  return queueOp(p, pzErr);
}

/* SET with its expiry. */
static int addSet(RedisConn *p, int eCond, int iDb, int iRow, int bIgnore,
                  const char *zKey, int nKey, const char *zVal, int nVal,
                  int eTtl, i64 nTtl, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = rdOpNew(t, ROP_SET, iDb, iRow, zKey, nKey, 1);
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->eTtl = (u8)eTtl;
  pOp->iNum = nTtl;
  if( rdBufSet(&pOp->aArg[0], zVal, nVal) ){
    fedKvOpDiscard(&t->kv);
    return SQLITE_NOMEM;
  }
  return queueOp(p, pzErr);
}

static int addZadd(RedisConn *p, int eCond, int iDb, int iRow, int bIgnore,
                   const char *zKey, int nKey, const char *zMember,
                   int nMember, double rScore, char **pzErr){
  RedisTxn *t = &p->txn;
  RedisOp *pOp = rdOpNew(t, ROP_ZADD, iDb, iRow, zKey, nKey, 1);
  if( pOp==0 ) return SQLITE_NOMEM;
  pOp->eCond = (u8)eCond;
  pOp->bIgnore = (u8)bIgnore;
  pOp->rScore = rScore;
  if( rdBufSet(&pOp->aArg[0], zMember, nMember) ){
    fedKvOpDiscard(&t->kv);
    return SQLITE_NOMEM;
  }
  return queueOp(p, pzErr);
}

/* ttl as written: 1 and *pn for a number of seconds, 0 for NULL; -1
** (with *pzErr) for anything else, -2 when out of memory. */
static int ttlValue(sqlite3_value *pVal, i64 *pn, int bInsert, char **pzErr){
  int bInt = 0, bNum;
  i64 i = 0;
  double r = 0.0;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ) return 0;
  if( sqlite3_value_type(pVal)!=SQLITE_BLOB
   && (bNum = rdTermNumber(pVal, &bInt, &i, &r))!=0 ){
    if( bNum<0 ) return -2;
    if( !bInt && r==floor(r) && r>-9.2e18 && r<9.2e18 ){
      bInt = 1;
      i = (i64)r;
    }
    if( bInt && (i>0 || !bInsert) ){
      *pn = i;
      return 1;
    }
  }
  fedSetError(pzErr, "%s: ttl must be a%s number of seconds, or NULL for"
              " no expiry", RD_STORE, bInsert ? " positive" : "n integer");
  return -1;
}

/* The score as written; an error if it is not a number (NULL included). */
static int scoreValue(sqlite3_value *pVal, double *pr, char **pzErr){
  int bInt = 0, bNum = 0;
  i64 i = 0;
  if( sqlite3_value_type(pVal)!=SQLITE_BLOB
   && sqlite3_value_type(pVal)!=SQLITE_NULL
   && (bNum = rdTermNumber(pVal, &bInt, &i, pr))!=0 ){
    return bNum<0 ? SQLITE_NOMEM : SQLITE_OK;
  }
  fedSetError(pzErr, "%s: score must be a number", RD_STORE);
  /* A NULL breaks a NOT NULL constraint (OR IGNORE skips the row, as it
  ** does for a NULL value); anything else is a type mismatch. */
  return sqlite3_value_type(pVal)==SQLITE_NULL ? SQLITE_CONSTRAINT
                                                : SQLITE_MISMATCH;
}

/* A key given to INSERT or UPDATE: not NULL, and in the key space. */
static int keyValue(FedTable *pTab, sqlite3_value *pVal, const char **pz,
                    int *pn, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    fedSetError(pzErr, "%s: key of table \"%s\" may not be NULL", RD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  rdValueBytes(pVal, pz, pn);
  if( !rdKeyInSpace(pRt->zPattern, pRt->nPattern, *pz, *pn) ){
    char *zKey = rdRenderKey(*pz, *pn);
    fedSetError(pzErr, "%s: key %s is outside the key space of table \"%s\""
                " (keys '%s')", RD_STORE, zKey, pTab->zName, pRt->zPattern);
    sqlite3_free(zKey);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

/* A value that must not be NULL (Redis has no NULL). */
static int notNull(FedTable *pTab, sqlite3_value *pVal, const char *zCol,
                   char **pzErr){
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    fedSetError(pzErr, "%s: %s of table \"%s\" may not be NULL (Redis has no"
                " NULL; DELETE the row instead)", RD_STORE, zCol, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  return SQLITE_OK;
}

/* The bytes a declared field is written as (fields=). */
static void fieldBytes(int eKind, sqlite3_value *pVal, char *zBuf, int nBuf,
                       const char **pz, int *pn){
  int eType = sqlite3_value_type(pVal);
  if( eKind==RC_F_INT && eType==SQLITE_FLOAT ){
    double r = sqlite3_value_double(pVal);
    if( r==floor(r) && r>-9.2e18 && r<9.2e18 ){
      sqlite3_snprintf(nBuf, zBuf, "%lld", (i64)r);
      *pz = zBuf;
      *pn = (int)strlen(zBuf);
      return;
    }
  }
  if( (eKind==RC_F_REAL || eKind==RC_F_INT) && eType==SQLITE_FLOAT ){
    fedDoubleText(sqlite3_value_double(pVal), zBuf, nBuf);
    *pz = zBuf;
    *pn = (int)strlen(zBuf);
    return;
  }
  rdValueBytes(pVal, pz, pn);
}

/* The ops that set the expiry of a written key (ttl given). */
static int addTtl(RedisConn *p, int iDb, int iRow, const char *zKey,
                  int nKey, int bSet, i64 nTtl, char **pzErr){
  if( bSet ){
    return rdAddOp(p, ROP_EXPIRE, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, nTtl,
                   pzErr);
  }
  return rdAddOp(p, ROP_PERSIST, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, 0,
                 pzErr);
}


/* xUpdate for tables whose rows are named by the key (string, any,
** fields=): argv[0] is the old key. */
static int updateByKey(FedTable *pTab, RedisConn *p, int argc,
                       sqlite3_value **argv, int iDb, int iRow, int bIgnore,
                       int bReplace, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  sqlite3_value **aV = &argv[2];
  const char *zKey, *zOld;
  int nKey, nOld, rc = SQLITE_OK, i, bTtl = 0;
  i64 nTtl = 0;
  int eMode = pRt->eMode;

  if( argc==1 ){
    rdValueBytes(argv[0], &zOld, &nOld);
    return rdAddOp(p, ROP_DEL, 0, iDb, iRow, 0, zOld, nOld, 0, 0, 0, 0, pzErr);
  }
  rc = keyValue(pTab, aV[pRt->iKey], &zKey, &nKey, pzErr);
  if( rc ) return rc;
  if( pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    bTtl = ttlValue(aV[pRt->iTtl], &nTtl, sqlite3_value_type(argv[0])==
                    SQLITE_NULL, pzErr);
    if( bTtl<0 ) return bTtl==-2 ? SQLITE_NOMEM : SQLITE_CONSTRAINT;
  }

  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    /* INSERT */
    if( eMode==RM_FIELDS ){
      const char *azA[2*FED_MAX_COLUMNS];
      int anA[2*FED_MAX_COLUMNS];
      char aBuf[FED_MAX_COLUMNS][40];
      int nA = 0;
      for(i=0; i<pRt->nField; i++){
        int iCol = pRt->iFirstField+i;
        if( sqlite3_value_type(aV[iCol])==SQLITE_NULL ) continue;
        azA[nA] = pTab->aCol[iCol].zName;
        anA[nA++] = -1;
        fieldBytes(pTab->aCol[iCol].eKind, aV[iCol], aBuf[i], 40, &azA[nA],
                   &anA[nA]);
        nA++;
      }
      if( nA==0 ){
        fedSetError(pzErr, "%s: a row of table \"%s\" needs at least one"
            " non-NULL field (Redis has no empty hash)", RD_STORE,
            pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      if( bReplace ){
        rc = rdAddOp(p, ROP_DEL, 0, iDb, iRow, 0, zKey, nKey, 0, 0, 0, 0,
                     pzErr);
      }
      if( rc==SQLITE_OK ){
        rc = rdAddOp(p, ROP_HSET, bReplace ? RCOND_NONE : RCOND_NXKEY, iDb,
                     iRow, bIgnore, zKey, nKey, nA, azA, anA, 0, pzErr);
      }
      if( rc==SQLITE_OK && bTtl ){
        rc = addTtl(p, iDb, iRow, zKey, nKey, 1, nTtl, pzErr);
      }
      return rc;
    }
    if( eMode==RM_ANY && pRt->iType>=0
     && sqlite3_value_type(aV[pRt->iType])!=SQLITE_NULL ){
      const char *zT = (const char*)sqlite3_value_text(aV[pRt->iType]);
      if( zT==0 || strcmp(zT, "string")!=0 ){
        fedSetError(pzErr, "%s: only strings can be inserted into table"
            " \"%s\" (type=any): leave type NULL or 'string'", RD_STORE,
            pTab->zName);
        return SQLITE_CONSTRAINT;
      }
    }
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc==SQLITE_OK ){
      const char *zVal;
      int nVal;
      rdValueBytes(aV[pRt->iValue], &zVal, &nVal);
      rc = addSet(p, bReplace ? RCOND_NONE : RCOND_NX, iDb, iRow, bIgnore,
                  zKey, nKey, zVal, nVal, bTtl ? RTTL_EX : RTTL_CLEAR, nTtl,
                  pzErr);
    }
    return rc;
  }

  /* UPDATE: a new key is a RENAME (which keeps the expiry). */
  rdValueBytes(argv[0], &zOld, &nOld);
  if( nOld!=nKey || memcmp(zOld, zKey, nKey)!=0 ){
    const char *azA[1];
    int anA[1];
    azA[0] = zKey;
    anA[0] = nKey;
    rc = rdAddOp(p, ROP_RENAME, bReplace ? RCOND_NONE : RCOND_NX, iDb, iRow,
                 bIgnore, zOld, nOld, 1, azA, anA, 0, pzErr);
    if( rc ) return rc;
  }
  if( eMode==RM_ANY && pRt->iType>=0 && !sqlite3_value_nochange(aV[pRt->iType]) ){
    fedSetError(pzErr, "%s: the type of a key cannot be changed (table"
                " \"%s\")", RD_STORE, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( eMode==RM_FIELDS ){
    const char *azSet[2*FED_MAX_COLUMNS], *azDel[FED_MAX_COLUMNS];
    int anSet[2*FED_MAX_COLUMNS], anDel[FED_MAX_COLUMNS];
    char aBuf[FED_MAX_COLUMNS][40];
    int nSet = 0, nDel = 0;
    for(i=0; i<pRt->nField; i++){
      int iCol = pRt->iFirstField+i;
      if( sqlite3_value_nochange(aV[iCol]) ) continue;
      if( sqlite3_value_type(aV[iCol])==SQLITE_NULL ){
        azDel[nDel] = pTab->aCol[iCol].zName;
        anDel[nDel++] = -1;
      }else{
        azSet[nSet] = pTab->aCol[iCol].zName;
        anSet[nSet++] = -1;
        fieldBytes(pTab->aCol[iCol].eKind, aV[iCol], aBuf[i], 40,
                   &azSet[nSet], &anSet[nSet]);
        nSet++;
      }
    }
    if( nSet ){
      rc = rdAddOp(p, ROP_HSET, 0, iDb, iRow, 0, zKey, nKey, nSet, azSet, anSet,
                   0, pzErr);
    }
    if( rc==SQLITE_OK && nDel ){
      rc = rdAddOp(p, ROP_HDEL, 0, iDb, iRow, 0, zKey, nKey, nDel, azDel, anDel,
                   0, pzErr);
    }
  }else if( !sqlite3_value_nochange(aV[pRt->iValue]) ){
    const char *zVal;
    int nVal;
    int bTtlSet = pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]);
    int eTtl = !bTtlSet ? RTTL_KEEP
             : !bTtl ? RTTL_CLEAR : nTtl>0 ? RTTL_EX : RTTL_KEEP;
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc ) return rc;
    rdValueBytes(aV[pRt->iValue], &zVal, &nVal);
    rc = addSet(p, eMode==RM_ANY ? RCOND_STRING : RCOND_NONE, iDb, iRow, 0,
                zKey, nKey, zVal, nVal, eTtl, nTtl, pzErr);
    if( rc==SQLITE_OK && bTtl && nTtl<=0 ){
      rc = addTtl(p, iDb, iRow, zKey, nKey, 1, nTtl, pzErr);
    }
    return rc;
  }
  if( rc==SQLITE_OK && pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    rc = addTtl(p, iDb, iRow, zKey, nKey, bTtl, nTtl, pzErr);
  }
  return rc;
}

/* xUpdate for tables of rows inside a key (hash, list, set, zset): the
** rowid stands for the key and the field, member or index (rdRowid). */
static int updateInKey(FedTable *pTab, RedisConn *p, int argc,
                       sqlite3_value **argv, int iDb, int iRow, int bIgnore,
                       int bReplace, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  sqlite3_value **aV = &argv[2];
  RedisIdent *pId = 0;
  const char *zKey = 0, *zSub = 0, *zVal = 0;
  int nKey = 0, nSub = 0, nVal = 0, rc = SQLITE_OK, bTtl = 0;
  int eMode = pRt->eMode;
  int bInsert = argc>1 && sqlite3_value_type(argv[0])==SQLITE_NULL;
  int bMove = 0;
  double rScore = 0.0;
  i64 nTtl = 0, iOld = 0;

  if( !bInsert ){
    FedKvElem *e;
    iOld = sqlite3_value_int64(argv[0]);
    e = fedKvHashFind(&pRt->ident, 0, (const char*)&iOld, sizeof(iOld));
    pId = e ? (RedisIdent*)e->pVal : 0;
    if( pId==0 ){
      fedSetError(pzErr, "%s: row %lld of table \"%s\" was not read by this"
                  " statement; address rows by key and %s", RD_STORE, iOld,
                  pTab->zName, eMode==RT_HASH ? "field" : eMode==RT_LIST
                  ? "idx" : "value");
      return SQLITE_ERROR;
    }
  }
  if( argc==1 ){
    switch( eMode ){
      case RT_HASH:
        rc = rdAddOp(p, ROP_HDEL, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 1,
                     (const char**)&pId->sub.z, &pId->sub.n, 0, pzErr);
        break;
      case RT_SET: case RT_ZSET:
        rc = rdAddOp(p, eMode==RT_SET ? ROP_SREM : ROP_ZREM, 0, iDb, iRow, 0,
                     pId->key.z, pId->key.n, 1, (const char**)&pId->sub.z,
                     &pId->sub.n, 0, pzErr);
        break;
      case RT_LIST: {
        const char *azA[2];
        int anA[2];
        azA[0] = p->zTomb; anA[0] = p->nTomb;
        azA[1] = pId->val.z ? pId->val.z : ""; anA[1] = pId->val.n;
        rc = rdAddOp(p, ROP_LSET, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 2,
                     azA, anA, pId->iIdx, pzErr);
        if( rc==SQLITE_OK
         && fedKvHashAdd(&p->txn.lrem, iDb, pId->key.z, pId->key.n, 0)==0 ){
          rc = SQLITE_NOMEM;
        }
        break;
      }
    }
    if( rc==SQLITE_OK ) fedKvHashRemove(&pRt->ident, 0, (const char*)&iOld,
                                     sizeof(iOld));
    return rc;
  }

  if( sqlite3_value_type(argv[1])!=SQLITE_NULL
   && (bInsert || sqlite3_value_int64(argv[1])!=iOld) ){
    fedSetError(pzErr, "%s: cannot set the rowid of table \"%s\"", RD_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  rc = keyValue(pTab, aV[pRt->iKey], &zKey, &nKey, pzErr);
  if( rc ) return rc;
  if( pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl]) ){
    bTtl = ttlValue(aV[pRt->iTtl], &nTtl, bInsert, pzErr);
    if( bTtl<0 ) return bTtl==-2 ? SQLITE_NOMEM : SQLITE_CONSTRAINT;
  }
  if( eMode!=RT_LIST ){
    int iSub = eMode==RT_HASH ? pRt->iField : pRt->iValue;
    rc = notNull(pTab, aV[iSub], eMode==RT_HASH ? "field" : "value", pzErr);
    if( rc ) return rc;
    rdValueBytes(aV[iSub], &zSub, &nSub);
  }
  if( eMode==RT_HASH || eMode==RT_LIST ){
    rc = notNull(pTab, aV[pRt->iValue], "value", pzErr);
    if( rc ) return rc;
    rdValueBytes(aV[pRt->iValue], &zVal, &nVal);
  }
  if( eMode==RT_ZSET ){
    rc = scoreValue(aV[pRt->iScore], &rScore, pzErr);
    if( rc ) return rc;
  }
  if( pId ){
    bMove = !rdBufEq(&pId->key, zKey, nKey)
         || (eMode!=RT_LIST && !rdBufEq(&pId->sub, zSub, nSub));
  }

  if( eMode==RT_LIST ){
    if( bInsert ){
      if( sqlite3_value_type(aV[pRt->iIdx])!=SQLITE_NULL ){
        fedSetError(pzErr, "%s: INSERT appends to the list: leave idx NULL"
                    " (table \"%s\")", RD_STORE, pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      rc = rdAddOp(p, ROP_RPUSH, 0, iDb, iRow, 0, zKey, nKey, 1, &zVal, &nVal,
                   0, pzErr);
    }else{
      if( bMove || sqlite3_value_int64(aV[pRt->iIdx])!=pId->iIdx
       || sqlite3_value_type(aV[pRt->iIdx])!=SQLITE_INTEGER ){
        fedSetError(pzErr, "%s: the key and idx of a list element cannot be"
            " changed (table \"%s\")", RD_STORE, pTab->zName);
        return SQLITE_CONSTRAINT;
      }
      if( !rdBufEq(&pId->val, zVal, nVal) ){
        const char *azA[2];
        int anA[2];
        azA[0] = zVal; anA[0] = nVal;
        azA[1] = pId->val.z ? pId->val.z : ""; anA[1] = pId->val.n;
        rc = rdAddOp(p, ROP_LSET, 0, iDb, iRow, 0, zKey, nKey, 2, azA, anA,
                     pId->iIdx, pzErr);
      }
    }
  }else if( bInsert || bMove ){
    /* The new row first: its condition decides for the whole row. */
    int eCond = bReplace ? RCOND_NONE : RCOND_NX;
    if( eMode==RT_HASH ){
      const char *azA[2];
      int anA[2];
      azA[0] = zSub; anA[0] = nSub;
      azA[1] = zVal; anA[1] = nVal;
      rc = rdAddOp(p, ROP_HSET, eCond, iDb, iRow, bIgnore, zKey, nKey, 2, azA,
                   anA, 0, pzErr);
    }else if( eMode==RT_SET ){
      rc = rdAddOp(p, ROP_SADD, eCond, iDb, iRow, bIgnore, zKey, nKey, 1, &zSub,
                   &nSub, 0, pzErr);
    }else{
      rc = addZadd(p, eCond, iDb, iRow, bIgnore, zKey, nKey, zSub, nSub,
                   rScore, pzErr);
    }
    if( rc==SQLITE_OK && bMove ){
      int eDel = eMode==RT_HASH ? ROP_HDEL : eMode==RT_SET ? ROP_SREM : ROP_ZREM;
      rc = rdAddOp(p, eDel, 0, iDb, iRow, 0, pId->key.z, pId->key.n, 1,
                   (const char**)&pId->sub.z, &pId->sub.n, 0, pzErr);
    }
  }else if( eMode==RT_HASH && !rdBufEq(&pId->val, zVal, nVal) ){
    const char *azA[2];
    int anA[2];
    azA[0] = zSub; anA[0] = nSub;
    azA[1] = zVal; anA[1] = nVal;
    rc = rdAddOp(p, ROP_HSET, 0, iDb, iRow, 0, zKey, nKey, 2, azA, anA, 0,
                 pzErr);
  }else if( eMode==RT_ZSET && rScore!=pId->rScore ){
    rc = addZadd(p, RCOND_XX, iDb, iRow, 0, zKey, nKey, zSub, nSub, rScore,
                 pzErr);
  }
  if( rc==SQLITE_OK && pRt->iTtl>=0 && !sqlite3_value_nochange(aV[pRt->iTtl])
   && (bTtl || !bInsert) ){
    rc = addTtl(p, iDb, iRow, zKey, nKey, bTtl, nTtl, pzErr);
  }
  if( rc==SQLITE_OK && pId && !bInsert ){
    fedKvHashRemove(&pRt->ident, 0, (const char*)&iOld, sizeof(iOld));
  }
  return rc;
}

/* Refuse a write of a key in federate's reserved namespace (RD_RESERVED:
** the commit markers and fences).  A table whose keys= takes every key
** could otherwise overwrite the marker hash with another type, and a
** later cross-store EXEC would fail on it after applying the rest. */
static int reservedKey(FedTable *pTab, sqlite3_value *pVal, const char *zOp,
                       char **pzErr){
  const char *z;
  int n;
  if( pVal==0 || sqlite3_value_type(pVal)==SQLITE_NULL ) return SQLITE_OK;
  rdValueBytes(pVal, &z, &n);
  if( n<0 ) return SQLITE_NOMEM;
  return fedKvReserved(&rdKvDriver, RD_RESERVED, z, n, zOp, pTab->zName,
                       pzErr);
}

int rdUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
             i64 *piRowid, char **pzErr){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  RedisConn *p = (RedisConn*)pTab->pServer->pConn;
  RedisTxn *t = &p->txn;
  int eConflict = sqlite3_vtab_on_conflict(pTab->pCtx->db);
  int bIgnore = eConflict==SQLITE_IGNORE;
  int bReplace = eConflict==SQLITE_REPLACE;
  int iDb = pRt->iDb>=0 ? pRt->iDb : p->iDb;
  int nStart, rc, i;
  (void)piRowid;
  /* Numbers are written as text: convert them now, where running out of
  ** memory can still be reported (later calls reuse the text). */
  for(i=0; i<argc; i++){
    int eType = sqlite3_value_type(argv[i]);
    if( (eType==SQLITE_INTEGER || eType==SQLITE_FLOAT)
     && sqlite3_value_text(argv[i])==0 ){
      return SQLITE_NOMEM;
    }
  }
  {
    const char *zOp = argc==1 ? "DELETE"
        : sqlite3_value_type(argv[0])==SQLITE_NULL ? "INSERT" : "UPDATE";
    rc = SQLITE_OK;
    if( pTab->iPk>=0 ) rc = reservedKey(pTab, argv[0], zOp, pzErr);
    if( rc==SQLITE_OK && argc>1 ){
      rc = reservedKey(pTab, argv[2+pRt->iKey], zOp, pzErr);
    }
    if( rc ) return rc;
  }
  if( !t->kv.bActive ){
    rc = rdBegin(&p->base, 0, pzErr);
    if( rc ) return rc;
  }
  if( argc==1 ) bIgnore = bReplace = 0;
  nStart = t->kv.nOp;
  t->iRowSeq++;
  if( pTab->iPk>=0 ){
    rc = updateByKey(pTab, p, argc, argv, iDb, t->iRowSeq, bIgnore, bReplace,
                     pzErr);
  }else{
    rc = updateInKey(pTab, p, argc, argv, iDb, t->iRowSeq, bIgnore, bReplace,
                     pzErr);
  }
  if( rc ){
    rdTxnTruncate(t, nStart);
    if( rc==SQLITE_CONSTRAINT && bIgnore ){
      sqlite3_free(*pzErr);
      *pzErr = 0;
      rc = SQLITE_OK;
    }
  }
  return rc;
}
