/*
** table.c: tables: options, columns (xDescribe, xColumns), and which
** conditions and orders Redis can take (xPushable, xOrderable).
*/
#include "redisInt.h"

static void identFree(void *pArg){
  RedisIdent *p = (RedisIdent*)pArg;
  if( p ){
    rdBufFree(&p->key);
    rdBufFree(&p->sub);
    rdBufFree(&p->val);
    sqlite3_free(p);
  }
}

static int modeFromName(const char *z){
  if( sqlite3_stricmp(z, "string")==0 ) return RT_STRING;
  if( sqlite3_stricmp(z, "hash")==0 ) return RT_HASH;
  if( sqlite3_stricmp(z, "list")==0 ) return RT_LIST;
  if( sqlite3_stricmp(z, "set")==0 ) return RT_SET;
  if( sqlite3_stricmp(z, "zset")==0 ) return RT_ZSET;
  if( sqlite3_stricmp(z, "any")==0 ) return RM_ANY;
  return 0;
}

/* The kind of a field declared in fields=, or 0. */
static int fieldKind(const char *zType){
  if( sqlite3_stricmp(zType, "text")==0 ) return RC_F_TEXT;
  if( sqlite3_stricmp(zType, "integer")==0 || sqlite3_stricmp(zType, "int")==0
   || sqlite3_stricmp(zType, "bigint")==0 ) return RC_F_INT;
  if( sqlite3_stricmp(zType, "real")==0 || sqlite3_stricmp(zType, "float")==0
   || sqlite3_stricmp(zType, "double")==0 ) return RC_F_REAL;
  if( sqlite3_stricmp(zType, "blob")==0 ) return RC_F_BLOB;
  return 0;
}

void rdTableFree(FedTable *pTab){
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  if( pRt ){
    sqlite3_free(pRt->zPattern);
    fedKvHashClear(&pRt->ident);
    sqlite3_free(pRt);
    pTab->pStoreTab = 0;
  }
}

/* Parse the table options into a RedisTable (not yet attached). */
static int tableOptions(FedTable *pTab, RedisTable **ppRt, FedColumn **paF,
                        int *pnF, char **pzErr){
  FedConfig *pCfg = pTab->pCfg;
  const char *zType = fedConfigGet(pCfg, "type");
  const char *zKeys = fedConfigGet(pCfg, "keys");
  const char *zPrefix = fedConfigGet(pCfg, "prefix");
  const char *zFields = fedConfigGet(pCfg, "fields");
  RedisTable *pRt;
  i64 v;
  int rc = SQLITE_OK, i;

  *ppRt = 0;
  if( paF ){ *paF = 0; *pnF = 0; }
  pRt = sqlite3_malloc64(sizeof(*pRt));
  if( pRt==0 ) return SQLITE_NOMEM;
  memset(pRt, 0, sizeof(*pRt));
  pRt->ident.xDel = identFree;
  pRt->eMode = zType ? modeFromName(zType) : RT_STRING;
  if( pRt->eMode==0 ){
    fedSetError(pzErr, "%s: unknown type '%s' (expected string, hash, list,"
                " set, zset or any)", RD_STORE, zType);
    rc = SQLITE_ERROR;
    goto done;
  }
  if( zKeys && zPrefix ){
    fedSetError(pzErr, "%s: give keys= or prefix=, not both", RD_STORE);
    rc = SQLITE_ERROR;
    goto done;
  }
  if( zPrefix ){
    pRt->zPattern = rdPrefixPattern(zPrefix);
  }else{
    pRt->zPattern = fedStrdup(zKeys ? zKeys : "*", -1);
  }
  if( pRt->zPattern==0 ){ rc = SQLITE_NOMEM; goto done; }
  pRt->nPattern = (int)strlen(pRt->zPattern);
  if( pRt->nPattern==0 ){
    fedSetError(pzErr, "%s: keys= must not be empty", RD_STORE);
    rc = SQLITE_ERROR;
    goto done;
  }
  rc = fedConfigInt(pCfg, "db", -1, 0, 2147483647, &v, RD_STORE, pzErr);
  if( rc ) goto done;
  pRt->iDb = (int)v;
  rc = fedConfigInt(pCfg, "scan_count", 1000, 1, 1000000, &v, RD_STORE, pzErr);
  if( rc ) goto done;
  pRt->nScanCount = (int)v;
  if( zFields ){
    FedColumn *aF = 0;
    int nF = 0;
    if( pRt->eMode!=RT_HASH ){
      fedSetError(pzErr, "%s: fields= is only for type=hash", RD_STORE);
      rc = SQLITE_ERROR;
      goto done;
    }
    rc = fedColumnsParse(RD_STORE, zFields, &aF, &nF, pzErr);
    for(i=0; rc==SQLITE_OK && i<nF; i++){
      if( fieldKind(aF[i].zType)==0 ){
        fedSetError(pzErr, "%s: field \"%s\" has type '%s' (expected text,"
            " integer, real or blob)", RD_STORE, aF[i].zName, aF[i].zType);
        rc = SQLITE_ERROR;
      }else if( sqlite3_stricmp(aF[i].zName, "key")==0
             || sqlite3_stricmp(aF[i].zName, "ttl")==0 ){
        fedSetError(pzErr, "%s: a field may not be named \"%s\" (that"
            " column is always there)", RD_STORE, aF[i].zName);
        rc = SQLITE_ERROR;
      }
    }
    if( rc==SQLITE_OK && nF+2>FED_MAX_COLUMNS ){
      fedSetError(pzErr, "%s: too many fields (%d, at most %d)", RD_STORE,
                  nF, FED_MAX_COLUMNS-2);
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK && paF ){
      *paF = aF;
      *pnF = nF;
    }else{
      fedColumnsFree(aF, nF);
    }
    if( rc ) goto done;
    pRt->eMode = RM_FIELDS;
  }
done:
  if( rc ){
    if( paF && *paF ){ fedColumnsFree(*paF, *pnF); *paF = 0; *pnF = 0; }
    sqlite3_free(pRt->zPattern);
    sqlite3_free(pRt);
    return rc;
  }
  *ppRt = pRt;
  return SQLITE_OK;
}

/* Append column zName of type zType to pTab (xDescribe). */
static int addColumn(FedTable *pTab, const char *zName, const char *zType,
                     int bPk){
  FedColumn *aNew = sqlite3_realloc64(pTab->aCol,
                                      sizeof(FedColumn)*(pTab->nCol+1));
  FedColumn *pCol;
  if( aNew==0 ) return SQLITE_NOMEM;
  pTab->aCol = aNew;
  pCol = &aNew[pTab->nCol];
  memset(pCol, 0, sizeof(*pCol));
  pCol->zName = fedStrdup(zName, -1);
  pCol->zType = fedStrdup(zType, -1);
  pCol->bPk = (u8)bPk;
  pCol->bNotNull = (u8)bPk;
  pTab->nCol++;
  if( pCol->zName==0 || pCol->zType==0 ) return SQLITE_NOMEM;
  return SQLITE_OK;
}

/*
** The columns follow from the options alone, so nothing is sent here even
** when a connection is given.  zRemote is the key pattern.
*/
int rdDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  RedisTable *pRt = 0;
  FedColumn *aF = 0;
  int nF = 0, rc, i, eMode;
  (void)pConn;
  if( pTab->nCol>0 ){
    fedSetError(pzErr, "%s: columns= is not an option of redis tables: the"
        " columns follow from type= (and fields= for a hash with one column"
        " per field)", RD_STORE);
    return SQLITE_ERROR;
  }
  rc = tableOptions(pTab, &pRt, &aF, &nF, pzErr);
  if( rc ) return rc;
  eMode = pRt->eMode;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = fedStrdup(pRt->zPattern, -1);
  if( pTab->zRemote==0 ) rc = SQLITE_NOMEM;
  sqlite3_free(pRt->zPattern);
  sqlite3_free(pRt);
  if( rc==SQLITE_OK ){
    int bKeyPk = eMode==RT_STRING || eMode==RM_ANY || eMode==RM_FIELDS;
    rc = addColumn(pTab, "key", "text", bKeyPk);
    switch( eMode ){
      case RT_STRING:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_HASH:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "field", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_LIST:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "idx", "integer", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_SET:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RT_ZSET:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "score", "real", 0);
        break;
      case RM_ANY:
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "type", "text", 0);
        if( rc==SQLITE_OK ) rc = addColumn(pTab, "value", "text", 0);
        break;
      case RM_FIELDS:
        for(i=0; rc==SQLITE_OK && i<nF; i++){
          rc = addColumn(pTab, aF[i].zName, aF[i].zType, 0);
        }
        break;
    }
    if( rc==SQLITE_OK ) rc = addColumn(pTab, "ttl", "integer", 0);
  }
  fedColumnsFree(aF, nF);
  return rc;
}

/* Kinds, affinities and the key of the columns (from xDescribe, or from
** the fed_tables record when a file is opened). */
int rdColumns(FedTable *pTab, char **pzErr){
  RedisTable *pRt = 0;
  int rc, i;
  rc = tableOptions(pTab, &pRt, 0, 0, pzErr);
  if( rc ) return rc;
  rdTableFree(pTab);
  pTab->pStoreTab = pRt;
  pRt->iKey = pRt->iField = pRt->iValue = pRt->iScore = -1;
  pRt->iIdx = pRt->iTtl = pRt->iType = pRt->iFirstField = -1;
  pTab->iPk = -1;
  for(i=0; i<pTab->nCol; i++){
    FedColumn *pCol = &pTab->aCol[i];
    const char *zName = pCol->zName;
    int eKind = 0;
    if( sqlite3_stricmp(zName, "key")==0 ){
      eKind = RC_KEY; pRt->iKey = i;
    }else if( sqlite3_stricmp(zName, "ttl")==0 ){
      eKind = RC_TTL; pRt->iTtl = i;
    }else if( pRt->eMode==RM_FIELDS ){
      eKind = fieldKind(pCol->zType);
      if( pRt->iFirstField<0 ) pRt->iFirstField = i;
      pRt->nField++;
    }else if( sqlite3_stricmp(zName, "value")==0 ){
      eKind = RC_VALUE; pRt->iValue = i;
    }else if( sqlite3_stricmp(zName, "field")==0 && pRt->eMode==RT_HASH ){
      eKind = RC_FIELD; pRt->iField = i;
    }else if( sqlite3_stricmp(zName, "score")==0 && pRt->eMode==RT_ZSET ){
      eKind = RC_SCORE; pRt->iScore = i;
    }else if( sqlite3_stricmp(zName, "idx")==0 && pRt->eMode==RT_LIST ){
      eKind = RC_IDX; pRt->iIdx = i;
    }else if( sqlite3_stricmp(zName, "type")==0 && pRt->eMode==RM_ANY ){
      eKind = RC_TYPE; pRt->iType = i;
    }
    if( eKind==0 ){
      fedSetError(pzErr, "%s: unexpected column \"%s\" for a table of"
                  " type %s", RD_STORE, zName, fedConfigGet(pTab->pCfg,
                  "type") ? fedConfigGet(pTab->pCfg, "type") : "string");
      return SQLITE_ERROR;
    }
    pCol->eKind = eKind;
    switch( eKind ){
      case RC_SCORE: case RC_F_REAL: pCol->zAffinity = "REAL"; break;
      case RC_IDX: case RC_TTL: case RC_F_INT: pCol->zAffinity = "INTEGER"; break;
      case RC_F_BLOB: pCol->zAffinity = "BLOB"; break;
      default: pCol->zAffinity = "TEXT"; break;
    }
    if( pCol->bPk ) pTab->iPk = i;
  }
  if( pRt->iKey<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no key column", RD_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** Which conditions go to Redis.  key = and key IN name the keys (no SCAN);
** key GLOB is checked here exactly and narrows the SCAN MATCH; key LIKE
** narrows the MATCH and is re-checked by SQLite; a hash field or a
** set/zset member = / IN names the fields or members to read; score and
** list idx comparisons become ZRANGEBYSCORE / LRANGE bounds.  A value
** unknown at plan time may be a number that SQLite would compare with
** numeric affinity, so such an = is pushed loosely.
*/
int rdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  int eKind = pTab->aCol[iCol].eKind;
  RedisTable *pRt = (RedisTable*)pTab->pStoreTab;
  int bSub = eKind==RC_FIELD
          || (eKind==RC_VALUE && (pRt->eMode==RT_SET || pRt->eMode==RT_ZSET));
  if( eKind==RC_KEY || bSub ){
    /* A number known at plan time may still carry an affinity of its own
    ** (CAST(10 AS INTEGER) compares numerically with the text '010'):
    ** only a text or blob value is exact; a number goes as a join value
    ** does, loose. */
    if( op==FED_OP_EQ ){
      int eType = pRhs ? sqlite3_value_type(pRhs) : SQLITE_NULL;
      return (pRhs && eType!=SQLITE_INTEGER && eType!=SQLITE_FLOAT)
             ? FED_PUSH_EXACT : FED_PUSH_LOOSE;
    }
    if( eKind==RC_KEY && op==FED_OP_GLOB ) return FED_PUSH_EXACT;
    if( eKind==RC_KEY && op==FED_OP_LIKE ) return FED_PUSH_LOOSE;
    return FED_PUSH_NO;
  }
  if( eKind==RC_SCORE || eKind==RC_IDX ){
    if( op==FED_OP_EQ || op==FED_OP_LT || op==FED_OP_LE || op==FED_OP_GT
     || op==FED_OP_GE ){
      if( pRhs && (sqlite3_value_type(pRhs)==SQLITE_INTEGER
                || sqlite3_value_type(pRhs)==SQLITE_FLOAT
                || sqlite3_value_type(pRhs)==SQLITE_NULL) ){
        return FED_PUSH_EXACT;
      }
      return FED_PUSH_LOOSE;
    }
  }
  return FED_PUSH_NO;
}

/* Redis returns keys in no order: SQLite sorts. */
int rdOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)iCol; (void)bDesc;
  return 0;
}
