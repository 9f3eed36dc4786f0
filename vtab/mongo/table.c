/*
** table.c: MongoDB tables: the options (collection=, table=, database=,
** batch_size=, sample_size=), the columns (_id, the declared paths, doc)
** and their reading rules, the columns sampled when none are given
** (CREATE without columns=, fed_import), and what the planner may push
** (xPushable, xOrderable).  docs/mongo.md says why each push is exact.
*/
#include "mongoInt.h"

const char *const azMongoTableOpt[] = {
  "collection", "table", "database", "batch_size", "sample_size", 0
};

void mongoTableFree(FedTable *pTab){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  int i;
  if( pMT==0 ) return;
  for(i=0; i<pMT->nCol; i++) sqlite3_free(pMT->aCol[i].zPath);
  sqlite3_free(pMT->aCol);
  sqlite3_free(pMT->zDb);
  sqlite3_free(pMT->zColl);
  sqlite3_free(pMT);
  pTab->pStoreTab = 0;
}

/* Parse the table options into pTab->pStoreTab (once). */
static int tableInit(FedTable *pTab, char **pzErr){
  MongoTable *pMT;
  const char *zColl = fedConfigGet(pTab->pCfg, "collection");
  const char *zNs = fedConfigGet(pTab->pCfg, "table");
  const char *zDb = fedConfigGet(pTab->pCfg, "database");
  i64 nBatch, nSample;
  int rc;
  if( pTab->pStoreTab ) return SQLITE_OK;
  rc = fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 1000000, &nBatch,
                    MONGO_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pTab->pCfg, "sample_size", 100, 1, 100000, &nSample,
                      MONGO_STORE, pzErr);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( (zColl==0)==(zNs==0) ){
    fedSetError(pzErr, "%s: table \"%s\": give one of collection= or"
                " table= ('database.collection')", MONGO_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  pMT = sqlite3_malloc64(sizeof(*pMT));
  if( pMT==0 ) return SQLITE_NOMEM;
  memset(pMT, 0, sizeof(*pMT));
  pMT->nBatch = nBatch;
  if( zNs ){
    const char *zDot = strchr(zNs, '.');
    if( zDot && zDb==0 ){
      pMT->zDb = fedStrdup(zNs, (int)(zDot-zNs));
      pMT->zColl = fedStrdup(zDot+1, -1);
      if( pMT->zDb==0 ) rc = SQLITE_NOMEM;
    }else{
      pMT->zColl = fedStrdup(zNs, -1);
    }
  }else{
    pMT->zColl = fedStrdup(zColl, -1);
  }
  if( pMT->zColl==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK && zDb ){
    pMT->zDb = fedStrdup(zDb, -1);
    if( pMT->zDb==0 ) rc = SQLITE_NOMEM;
  }
  pTab->pStoreTab = pMT;
  if( rc==SQLITE_OK && (pMT->zColl[0]==0 || (pMT->zDb && pMT->zDb[0]==0)) ){
    fedSetError(pzErr, "%s: table \"%s\": empty collection or database"
                " name", MONGO_STORE, pTab->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

const char *mongoTableDb(FedTable *pTab){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  if( pMT && pMT->zDb ) return pMT->zDb;
  if( pTab->pServer && pTab->pServer->pConn ){
    return ((MongoConn*)pTab->pServer->pConn)->zDb;
  }
  return 0;
}

static int colSet(FedColumn *pCol, const char *zName, const char *zType,
                  int bPk){
  memset(pCol, 0, sizeof(*pCol));
  pCol->zName = fedStrdup(zName, -1);
  pCol->zType = fedStrdup(zType, -1);
  pCol->bPk = (u8)bPk;
  return (pCol->zName && pCol->zType) ? SQLITE_OK : SQLITE_NOMEM;
}

/* Columns from a sample of documents: each top-level field seen (in order
** of first appearance), typed when all its non-null values read as one
** SQLite type, untyped when mixed. */
static int sampleColumns(FedConn *pConn, FedTable *pTab, char **pzErr){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  const char *zDb = pMT->zDb ? pMT->zDb : ((MongoConn*)pConn)->zDb;
  bson_t **aDoc = 0;
  int nDoc = 0, i, rc, nField = 0;
  char *azField[FED_MAX_COLUMNS];
  int aMask[FED_MAX_COLUMNS];
  i64 nSample;
  const char *zSample = fedConfigGet(pTab->pCfg, "sample_size");

  if( zSample ){
    rc = fedConfigInt(pTab->pCfg, "sample_size", 100, 1, 100000, &nSample,
                      MONGO_STORE, pzErr);
  }else{
    rc = fedConfigInt(pConn->pServer->pOpt, "sample_size", 100, 1, 100000,
                      &nSample, MONGO_STORE, pzErr);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( zDb==0 ){
    fedSetError(pzErr, "%s: table \"%s\": no database (give database= or"
                " put it in the server's URI)", MONGO_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  rc = mongoConnSample(pConn, zDb, pMT->zColl, (int)nSample, &aDoc, &nDoc,
                       pzErr);
  for(i=0; rc==SQLITE_OK && i<nDoc; i++){
    bson_iter_t it;
    if( !bson_iter_init(&it, aDoc[i]) ) continue;
    while( rc==SQLITE_OK && bson_iter_next(&it) ){
      const char *zKey = bson_iter_key(&it);
      int k, c = mongoIterClass(&it);
      if( strcmp(zKey, "_id")==0 || sqlite3_stricmp(zKey, "doc")==0
       || sqlite3_stricmp(zKey, "_id")==0
       || zKey[0]==0 || zKey[0]=='$' || strchr(zKey, '.') ) continue;
      for(k=0; k<nField && strcmp(azField[k], zKey)!=0; k++){}
      if( k==nField ){
        int j;
        for(j=0; j<nField && sqlite3_stricmp(azField[j], zKey)!=0; j++){}
        if( j<nField || nField>=FED_MAX_COLUMNS-2 ) continue;
        azField[k] = fedStrdup(zKey, -1);
        if( azField[k]==0 ){ rc = SQLITE_NOMEM; break; }
        aMask[k] = 0;
        nField++;
      }
      if( c!=SQLITE_NULL ) aMask[k] |= 1<<c;
    }
  }
  if( rc==SQLITE_OK ){
    pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*(nField+2));
    if( pTab->aCol==0 ) rc = SQLITE_NOMEM;
    else memset(pTab->aCol, 0, sizeof(FedColumn)*(nField+2));
  }
  if( rc==SQLITE_OK ){
    rc = colSet(&pTab->aCol[pTab->nCol++], "_id", "$._id", 1);
  }
  for(i=0; rc==SQLITE_OK && i<nField; i++){
    const char *zAff = "";
    char *zType;
    switch( aMask[i] ){
      case 1<<SQLITE_INTEGER: zAff = "INTEGER "; break;
      case 1<<SQLITE_FLOAT:   zAff = "REAL "; break;
      case 1<<SQLITE_TEXT:    zAff = "TEXT "; break;
      case 1<<SQLITE_BLOB:    zAff = "BLOB "; break;
    }
    zType = sqlite3_mprintf("%s$.%s", zAff, azField[i]);
    if( zType==0 ){ rc = SQLITE_NOMEM; break; }
    rc = colSet(&pTab->aCol[pTab->nCol++], azField[i], zType, 0);
    sqlite3_free(zType);
  }
  if( rc==SQLITE_OK ){
    rc = colSet(&pTab->aCol[pTab->nCol++], "doc", "TEXT $", 0);
  }
  for(i=0; i<nField; i++) sqlite3_free(azField[i]);
  for(i=0; i<nDoc; i++) bson_destroy(aDoc[i]);
  sqlite3_free(aDoc);
  return rc;
}

/* Declared columns: _id first (unless declared), doc last. */
static int givenColumns(FedTable *pTab, char **pzErr){
  FedColumn *aNew;
  int i, iId = -1, n = 0;
  for(i=0; i<pTab->nCol; i++){
    if( sqlite3_stricmp(pTab->aCol[i].zName, "doc")==0 ){
      fedSetError(pzErr, "%s: table \"%s\": column \"doc\" is the whole"
          " document and is always there; do not declare it", MONGO_STORE,
          pTab->zName);
      return SQLITE_ERROR;
    }
    if( sqlite3_stricmp(pTab->aCol[i].zName, "_id")==0 ) iId = i;
  }
  if( pTab->nCol+(iId<0)+1 > FED_MAX_COLUMNS ){
    fedSetError(pzErr, "%s: too many columns (%d, at most %d with _id and"
                " doc)", MONGO_STORE, pTab->nCol, FED_MAX_COLUMNS);
    return SQLITE_ERROR;
  }
  aNew = sqlite3_malloc64(sizeof(FedColumn)*(pTab->nCol+2));
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew, 0, sizeof(FedColumn)*(pTab->nCol+2));
  if( iId<0 && colSet(&aNew[n++], "_id", "$._id", 1) ) goto nomem;
  for(i=0; i<pTab->nCol; i++){
    aNew[n] = pTab->aCol[i];
    if( i==iId ) aNew[n].bPk = 1;
    n++;
  }
  sqlite3_free(pTab->aCol);
  pTab->aCol = aNew;
  pTab->nCol = n;
  /* Counted first: a half-set column is freed with the others. */
  pTab->nCol++;
  return colSet(&aNew[pTab->nCol-1], "doc", "TEXT $", 0);
nomem:
  fedColumnsFree(aNew, pTab->nCol+2);
  return SQLITE_NOMEM;
}

static int mongoDescribeImpl(FedConn *pConn, FedTable *pTab, char **pzErr){
  MongoTable *pMT;
  int rc = tableInit(pTab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pMT = (MongoTable*)pTab->pStoreTab;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = pMT->zDb ? sqlite3_mprintf("%s.%s", pMT->zDb, pMT->zColl)
                           : sqlite3_mprintf("%s", pMT->zColl);
  if( pTab->zRemote==0 ) return SQLITE_NOMEM;
  if( pTab->nCol>0 ) return givenColumns(pTab, pzErr);
  if( pConn==0 ){
    fedSetError(pzErr, "%s: table \"%s\" needs columns=", MONGO_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  return sampleColumns(pConn, pTab, pzErr);
}

int mongoDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  return mongoRc(mongoDescribeImpl(pConn, pTab, pzErr), pzErr);
}

/* "[AFFINITY] [$.path]" -> affinity, path.  Paths are $ (the whole
** document: doc only) or $.field.field... */
static int colParse(FedTable *pTab, FedColumn *pCol, MongoCol *pMC,
                    char **pzErr){
  const char *z = pCol->zType;
  const char *zPath = 0;
  int n;
  while( *z==' ' || *z=='\t' ) z++;
  for(n=0; z[n] && z[n]!=' ' && z[n]!='\t'; n++){}
  pCol->zAffinity = "";
  pMC->eAff = MONGO_AFF_NONE;
  if( z[0]=='$' ){
    zPath = z;
  }else{
    static const struct { const char *z; const char *zAff; int e; } aAff[] = {
      { "INTEGER", "INTEGER", MONGO_AFF_INTEGER },
      { "INT",     "INTEGER", MONGO_AFF_INTEGER },
      { "NUMERIC", "NUMERIC", MONGO_AFF_INTEGER },
      { "REAL",    "REAL",    MONGO_AFF_REAL },
      { "DOUBLE",  "REAL",    MONGO_AFF_REAL },
      { "TEXT",    "TEXT",    MONGO_AFF_TEXT },
      { "BLOB",    "BLOB",    MONGO_AFF_NONE },
    };
    int k;
    for(k=0; k<(int)(sizeof(aAff)/sizeof(aAff[0])); k++){
      if( (int)strlen(aAff[k].z)==n && sqlite3_strnicmp(z, aAff[k].z, n)==0 ){
        pCol->zAffinity = aAff[k].zAff;
        pMC->eAff = aAff[k].e;
        break;
      }
    }
    if( k==(int)(sizeof(aAff)/sizeof(aAff[0])) ){
      fedSetError(pzErr, "%s: table \"%s\": column \"%s\": unknown type"
          " \"%.*s\" (INTEGER, NUMERIC, REAL, TEXT, BLOB, or none)",
          MONGO_STORE, pTab->zName, pCol->zName, n, z);
      return SQLITE_ERROR;
    }
    zPath = &z[n];
    while( *zPath==' ' || *zPath=='\t' ) zPath++;
    if( *zPath==0 ) zPath = 0;
  }
  if( zPath==0 ){
    pMC->zPath = fedStrdup(pCol->zName, -1);
  }else if( strcmp(zPath, "$")==0 ){
    pMC->zPath = 0;
  }else if( strncmp(zPath, "$.", 2)==0 ){
    pMC->zPath = fedStrdup(&zPath[2], -1);
  }else{
    goto badpath;
  }
  if( zPath && pMC->zPath==0 && strcmp(zPath, "$")!=0 ) return SQLITE_NOMEM;
  if( zPath==0 && pMC->zPath==0 ) return SQLITE_NOMEM;
  if( pMC->zPath ){
    const char *p = pMC->zPath;
    int i, nLen = (int)strlen(p);
    if( nLen==0 || p[0]=='.' || p[nLen-1]=='.' || strstr(p, "..")
     || strchr(p, '[') || strchr(p, ' ') ) goto badpath;
    for(i=0; p[i]; i++){ if( p[i]=='$' ) goto badpath; }
    pMC->bTop = strchr(p, '.')==0;
  }
  if( sqlite3_stricmp(pCol->zName, "doc")==0 ){
    if( pMC->zPath ) goto badpath;
    pMC->eKind = MONGO_KIND_DOC;
  }else if( pMC->zPath==0 ){
    goto badpath;
  }else if( sqlite3_stricmp(pCol->zName, "_id")==0 ){
    if( strcmp(pMC->zPath, "_id")!=0 ) goto badpath;
    pMC->eKind = MONGO_KIND_ID;
  }else{
    pMC->eKind = MONGO_KIND_PATH;
  }
  pCol->eKind = pMC->eKind;
  return SQLITE_OK;
badpath:
  fedSetError(pzErr, "%s: table \"%s\": column \"%s\": bad path \"%s\""
      " (a path is $.field or $.field.field...; _id is $._id, doc is $)",
      MONGO_STORE, pTab->zName, pCol->zName, zPath ? zPath : "");
  return SQLITE_ERROR;
}

static int mongoColumnsImpl(FedTable *pTab, char **pzErr){
  MongoTable *pMT;
  int i, rc = tableInit(pTab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pMT = (MongoTable*)pTab->pStoreTab;
  if( pTab->zRemote==0 ){
    pTab->zRemote = pMT->zDb ? sqlite3_mprintf("%s.%s", pMT->zDb, pMT->zColl)
                             : sqlite3_mprintf("%s", pMT->zColl);
    if( pTab->zRemote==0 ) return SQLITE_NOMEM;
  }
  if( pMT->aCol==0 ){
    pMT->aCol = sqlite3_malloc64(sizeof(MongoCol)*(pTab->nCol+1));
    if( pMT->aCol==0 ) return SQLITE_NOMEM;
    memset(pMT->aCol, 0, sizeof(MongoCol)*(pTab->nCol+1));
  }
  pMT->nCol = pTab->nCol;
  pTab->iPk = -1;
  for(i=0; rc==SQLITE_OK && i<pTab->nCol; i++){
    rc = colParse(pTab, &pTab->aCol[i], &pMT->aCol[i], pzErr);
    if( rc==SQLITE_OK && pMT->aCol[i].eKind==MONGO_KIND_ID ) pTab->iPk = i;
  }
  if( rc==SQLITE_OK && pTab->iPk<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no _id column; drop and create"
                " it again", MONGO_STORE, pTab->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

int mongoColumns(FedTable *pTab, char **pzErr){
  return mongoRc(mongoColumnsImpl(pTab, pzErr), pzErr);
}

/*
** Exact pushes only (docs/mongo.md, "Pushdown"):
**  - _id = <a text or blob known now>, when _id has no declared type:
**    the filter is a superset (a text as string, ObjectId, decimal128,
**    date), and the scan checks each _id itself (exact); _id = <number>,
**    _id IN (...) and _id = <a value known only at run time> are pushed
**    as a wider superset (the value may carry an affinity) that SQLite
**    re-checks;
**  - IS NULL / IS NOT NULL on a top-level field (the array guard);
**  - = and IN on a declared field, as a superset SQLite checks (arrays
**    matching by element only add rows).
** Ranges, LIKE and GLOB are left to SQLite: MongoDB brackets them by type
** and matches array elements, SQLite orders across types.
*/
int mongoPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  MongoTable *pMT = (MongoTable*)pTab->pStoreTab;
  const MongoCol *pCol;
  if( pMT==0 || iCol<0 || iCol>=pMT->nCol ) return FED_PUSH_NO;
  pCol = &pMT->aCol[iCol];
  if( pCol->eKind==MONGO_KIND_ID && pCol->eAff==MONGO_AFF_NONE
   && (op==FED_OP_EQ || op==FED_OP_IN) ){
    /* A value known now is a literal, without affinity of its own; one
    ** from another column may carry one (b._id = a.e, e REAL: the text
    ** _id '1' then equals 1.0), so the filter is widened and SQLite
    ** checks. */
    if( pRhs && op==FED_OP_EQ ){
      /* A number known now may still carry an affinity: SQLite evaluates
      ** CAST('1' AS INTEGER) at plan time, and its INTEGER affinity makes
      ** the text _id '1' equal.  A text or a blob carries none that
      ** changes _id (SQLite compares _id = CAST(1 AS TEXT) as is). */
      int t = sqlite3_value_type(pRhs);
      if( t==SQLITE_TEXT || t==SQLITE_BLOB || t==SQLITE_NULL ){
        return FED_PUSH_EXACT;
      }
      return FED_PUSH_LOOSE;
    }
    /* The cache's subsumption takes "_id = v" to mean the value without
    ** affinity (an entry for _id = 10 would answer _id = a.e with a.e
    ** 10.0 from a REAL column, missing the text _id '10'): a cached
    ** table leaves such terms to SQLite. */
    if( !pTab->bCacheInit || pTab->pCache ) return FED_PUSH_NO;
    return FED_PUSH_LOOSE;
  }
  if( pCol->eKind==MONGO_KIND_PATH && pCol->bTop
   && (op==FED_OP_ISNULL || op==FED_OP_NOTNULL) ){
    return FED_PUSH_EXACT;
  }
  if( pCol->eKind==MONGO_KIND_PATH && (op==FED_OP_EQ || op==FED_OP_IN) ){
    /* A superset: the values that read as v, or the types whose values
    ** may convert to it (plan.c, eqClause); SQLite checks.  The cache
    ** holds no exact = term of such a column to answer it wrongly. */
    return FED_PUSH_LOOSE;
  }
  return mongoRangePushable(pCol, op, pRhs);
}

int mongoOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)iCol; (void)bDesc;
  return 0;
}

int mongoListTables(FedConn *pConn, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr){
  char **az = 0, **azOut;
  int n = 0, i, rc;
  *pazName = 0;
  *pnName = 0;
  rc = mongoConnCollections(pConn, zSchema, &az, &n, pzErr);
  azOut = rc ? 0 : sqlite3_malloc64(sizeof(char*)*(2*n+1));
  if( rc==SQLITE_OK && azOut==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    azOut[2*i] = az[i];
    azOut[2*i+1] = sqlite3_mprintf("%s.%s", zSchema, az[i]);
    az[i] = 0;
    if( azOut[2*i+1]==0 ){
      sqlite3_free(azOut[2*i]);
      rc = SQLITE_NOMEM;
      break;
    }
    *pnName = i+1;
  }
  for(i=0; i<n; i++) sqlite3_free(az[i]);
  sqlite3_free(az);
  if( rc==SQLITE_OK ) *pazName = azOut;
  else if( azOut ){
    for(i=0; i<2*(*pnName); i++) sqlite3_free(azOut[i]);
    sqlite3_free(azOut);
    *pnName = 0;
  }
  return mongoRc(rc, pzErr);
}
