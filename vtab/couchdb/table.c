/*
** table.c: CouchDB tables: the options (database=, table=, page_size=,
** sample_size=), the columns (_id, _rev, the declared paths, doc) and
** their reading rules, the columns sampled when none are given (CREATE
** without columns=, fed_import), and what the planner may push
** (xPushable, xOrderable).  docs/couchdb.md says why each push is exact.
**
** The column language and path rules are the MongoDB store's
** (vtab/mongo/table.c, colParse); the parser is repeated here because it
** lives in that store's folder, not in the core.
*/
#include "couchInt.h"

const char *const azCouchTableOpt[] = {
  "database", "table", "page_size", "sample_size", 0
};

void couchTableFree(FedTable *pTab){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  int i;
  if( pCT==0 ) return;
  for(i=0; i<pCT->nCol; i++) sqlite3_free(pCT->aCol[i].zPath);
  sqlite3_free(pCT->aCol);
  sqlite3_free(pCT->zDb);
  sqlite3_free(pCT);
  pTab->pStoreTab = 0;
}

/* Parse the table options into pTab->pStoreTab (once). */
static int tableInit(FedTable *pTab, char **pzErr){
  CouchTable *pCT;
  const char *zDb = fedConfigGet(pTab->pCfg, "database");
  const char *zTable = fedConfigGet(pTab->pCfg, "table");
  i64 nPage, nSample;
  int rc;
  if( pTab->pStoreTab ) return SQLITE_OK;
  rc = fedConfigInt(pTab->pCfg, "page_size", 1000, 1, 100000, &nPage,
                    COUCH_STORE, pzErr);
  if( rc==SQLITE_OK ){
    rc = fedConfigInt(pTab->pCfg, "sample_size", 100, 1, 100000, &nSample,
                      COUCH_STORE, pzErr);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( (zDb==0)==(zTable==0) ){
    fedSetError(pzErr, "%s: table \"%s\": give one of database= or"
                " table= (the database's name)", COUCH_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  if( zDb==0 ) zDb = zTable;
  if( zDb[0]==0 ){
    fedSetError(pzErr, "%s: table \"%s\": empty database name", COUCH_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  pCT = sqlite3_malloc64(sizeof(*pCT));
  if( pCT==0 ) return SQLITE_NOMEM;
  memset(pCT, 0, sizeof(*pCT));
  pCT->nPage = nPage;
  pCT->zDb = fedStrdup(zDb, -1);
  pTab->pStoreTab = pCT;
  return pCT->zDb ? SQLITE_OK : SQLITE_NOMEM;
}

static int colSet(FedColumn *pCol, const char *zName, const char *zType,
                  int bPk){
  memset(pCol, 0, sizeof(*pCol));
  pCol->zName = fedStrdup(zName, -1);
  pCol->zType = fedStrdup(zType, -1);
  pCol->bPk = (u8)bPk;
  return (pCol->zName && pCol->zType) ? SQLITE_OK : SQLITE_NOMEM;
}

static int isReserved(const char *z){
  return sqlite3_stricmp(z, "_id")==0 || sqlite3_stricmp(z, "_rev")==0
      || sqlite3_stricmp(z, "doc")==0;
}

/* Columns from a sample of documents (GET _all_docs?include_docs=true
** &limit=<sample_size>): each top-level field seen (in order of first
** appearance), typed when all its non-null values read as one SQLite
** type, untyped when mixed. */
static int sampleColumns(FedConn *pConn, FedTable *pTab, char **pzErr){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  CouchConn *p = (CouchConn*)pConn;
  const char *zSample = fedConfigGet(pTab->pCfg, "sample_size");
  char *azField[FED_MAX_COLUMNS];
  int aMask[FED_MAX_COLUMNS];
  int nField = 0, i, rc = SQLITE_OK;
  i64 nSample = p->nSample;
  char *zDbEsc, *zPath = 0;
  json_t *pOut = 0, *pRows;
  size_t iRow;

  if( zSample ){
    rc = fedConfigInt(pTab->pCfg, "sample_size", 100, 1, 100000, &nSample,
                      COUCH_STORE, pzErr);
    if( rc ) return rc;
  }
  zDbEsc = fedHttpEscape(pCT->zDb, -1);
  if( zDbEsc ){
    zPath = sqlite3_mprintf("/%s/_all_docs?include_docs=true&limit=%lld",
                            zDbEsc, nSample);
  }
  sqlite3_free(zDbEsc);
  if( zPath==0 ) return SQLITE_NOMEM;
  rc = couchCall(p, "GET", zPath, 0, 0, &pOut, 0, pzErr);
  if( rc==SQLITE_OK && !couchPageHasDocs(pOut) ){
    json_decref(pOut);
    rc = couchCall(p, "GET", zPath, 0, 0, &pOut, 0, pzErr);
    if( rc==SQLITE_OK && !couchPageHasDocs(pOut) ){
      fedSetError(pzErr, "%s: table \"%s\": a row of the sample has no"
                  " document (remote request: GET %s)", COUCH_STORE,
                  pTab->zName, zPath);
      rc = SQLITE_ERROR;
    }
  }
  sqlite3_free(zPath);
  if( rc ){
    json_decref(pOut);
    return rc;
  }
  pRows = json_object_get(pOut, "rows");
  for(iRow=0; rc==SQLITE_OK && iRow<json_array_size(pRows); iRow++){
    json_t *pDoc = json_object_get(json_array_get(pRows, iRow), "doc");
    const char *zKey;
    json_t *pVal;
    if( !json_is_object(pDoc) ) continue;
    zKey = json_string_value(json_object_get(pDoc, "_id"));
    if( zKey && strncmp(zKey, "_design/", 8)==0 ) continue;
    json_object_foreach(pDoc, zKey, pVal){
      int k, c = couchJsonClass(pVal);
      if( isReserved(zKey) || zKey[0]==0 || zKey[0]=='$'
       || zKey[0]=='_' || strchr(zKey, '.') || strchr(zKey, ' ')
       || strchr(zKey, '\t') ) continue;
      for(k=0; k<nField && strcmp(azField[k], zKey)!=0; k++){}
      if( k==nField ){
        int j;
        for(j=0; j<nField && sqlite3_stricmp(azField[j], zKey)!=0; j++){}
        if( j<nField || nField>=FED_MAX_COLUMNS-3 ) continue;
        azField[k] = fedStrdup(zKey, -1);
        if( azField[k]==0 ){ rc = SQLITE_NOMEM; break; }
        aMask[k] = 0;
        nField++;
      }
      if( c!=SQLITE_NULL ) aMask[k] |= 1<<c;
    }
  }
  json_decref(pOut);
  if( rc==SQLITE_OK ){
    pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*(nField+3));
    if( pTab->aCol==0 ) rc = SQLITE_NOMEM;
    else memset(pTab->aCol, 0, sizeof(FedColumn)*(nField+3));
  }
  if( rc==SQLITE_OK ){
    rc = colSet(&pTab->aCol[pTab->nCol++], "_id", "TEXT $._id", 1);
  }
  if( rc==SQLITE_OK ){
    rc = colSet(&pTab->aCol[pTab->nCol++], "_rev", "TEXT $._rev", 0);
  }
  for(i=0; rc==SQLITE_OK && i<nField; i++){
    const char *zAff = "";
    char *zType;
    switch( aMask[i] ){
      case 1<<SQLITE_INTEGER: zAff = "INTEGER "; break;
      case 1<<SQLITE_FLOAT:   zAff = "REAL "; break;
      case 1<<SQLITE_TEXT:    zAff = "TEXT "; break;
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
  return rc;
}

/* Declared columns: _id and _rev first (unless declared), doc last. */
static int givenColumns(FedTable *pTab, char **pzErr){
  FedColumn *aNew;
  int i, iId = -1, iRev = -1, n = 0, nNew;
  for(i=0; i<pTab->nCol; i++){
    if( sqlite3_stricmp(pTab->aCol[i].zName, "doc")==0 ){
      fedSetError(pzErr, "%s: table \"%s\": column \"doc\" is the whole"
          " document and is always there; do not declare it", COUCH_STORE,
          pTab->zName);
      return SQLITE_ERROR;
    }
    if( sqlite3_stricmp(pTab->aCol[i].zName, "_id")==0 ) iId = i;
    if( sqlite3_stricmp(pTab->aCol[i].zName, "_rev")==0 ) iRev = i;
  }
  nNew = pTab->nCol + (iId<0) + (iRev<0) + 1;
  if( nNew > FED_MAX_COLUMNS ){
    fedSetError(pzErr, "%s: too many columns (%d, at most %d with _id, _rev"
                " and doc)", COUCH_STORE, pTab->nCol, FED_MAX_COLUMNS);
    return SQLITE_ERROR;
  }
  aNew = sqlite3_malloc64(sizeof(FedColumn)*nNew);
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew, 0, sizeof(FedColumn)*nNew);
  if( iId<0 && colSet(&aNew[n++], "_id", "TEXT $._id", 1) ) goto nomem;
  if( iRev<0 && colSet(&aNew[n++], "_rev", "TEXT $._rev", 0) ) goto nomem;
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
  fedColumnsFree(aNew, nNew);
  return SQLITE_NOMEM;
}

static int setRemote(FedTable *pTab){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  if( pTab->zRemote ) return SQLITE_OK;
  pTab->zRemote = fedStrdup(pCT->zDb, -1);
  return pTab->zRemote ? SQLITE_OK : SQLITE_NOMEM;
}

static int couchDescribeImpl(FedConn *pConn, FedTable *pTab, char **pzErr){
  int rc = tableInit(pTab, pzErr);
  if( rc==SQLITE_OK ) rc = setRemote(pTab);
  if( rc!=SQLITE_OK ) return rc;
  if( pTab->nCol>0 ) return givenColumns(pTab, pzErr);
  if( pConn==0 ){
    fedSetError(pzErr, "%s: table \"%s\" needs columns=", COUCH_STORE,
                pTab->zName);
    return SQLITE_ERROR;
  }
  return sampleColumns(pConn, pTab, pzErr);
}

int couchDescribe(FedConn *pConn, FedTable *pTab, char **pzErr){
  return couchRc(couchDescribeImpl(pConn, pTab, pzErr), pzErr);
}

/* "[TYPE] [$.path]" -> affinity, path.  Paths are $ (the whole document:
** doc only) or $.field.field...; _id is $._id and _rev $._rev. */
static int colParse(FedTable *pTab, FedColumn *pCol, CouchCol *pCC,
                    char **pzErr){
  static const struct { const char *z; const char *zAff; int e; } aAff[] = {
    { "INTEGER", "INTEGER", COUCH_AFF_INTEGER },
    { "INT",     "INTEGER", COUCH_AFF_INTEGER },
    { "NUMERIC", "NUMERIC", COUCH_AFF_INTEGER },
    { "REAL",    "REAL",    COUCH_AFF_REAL },
    { "DOUBLE",  "REAL",    COUCH_AFF_REAL },
    { "TEXT",    "TEXT",    COUCH_AFF_TEXT },
  };
  const char *z = pCol->zType ? pCol->zType : "";
  const char *zPath = 0;
  int n, k, bWhole = 0;
  while( *z==' ' || *z=='\t' ) z++;
  for(n=0; z[n] && z[n]!=' ' && z[n]!='\t'; n++){}
  pCol->zAffinity = "";
  pCC->eAff = COUCH_AFF_NONE;
  if( z[0]=='$' ){
    zPath = z;
  }else if( n>0 ){
    for(k=0; k<(int)(sizeof(aAff)/sizeof(aAff[0])); k++){
      if( (int)strlen(aAff[k].z)==n && sqlite3_strnicmp(z, aAff[k].z, n)==0 ){
        pCol->zAffinity = aAff[k].zAff;
        pCC->eAff = aAff[k].e;
        break;
      }
    }
    if( k==(int)(sizeof(aAff)/sizeof(aAff[0])) ){
      fedSetError(pzErr, "%s: table \"%s\": column \"%s\": unknown type"
          " \"%.*s\" (INTEGER, NUMERIC, REAL, TEXT, or none)",
          COUCH_STORE, pTab->zName, pCol->zName, n, z);
      return SQLITE_ERROR;
    }
    zPath = &z[n];
    while( *zPath==' ' || *zPath=='\t' ) zPath++;
    if( *zPath==0 ) zPath = 0;
  }
  sqlite3_free(pCC->zPath);
  pCC->zPath = 0;
  if( zPath==0 ){
    pCC->zPath = fedStrdup(pCol->zName, -1);
    if( pCC->zPath==0 ) return SQLITE_NOMEM;
  }else if( strcmp(zPath, "$")==0 ){
    bWhole = 1;
  }else if( strncmp(zPath, "$.", 2)==0 ){
    pCC->zPath = fedStrdup(&zPath[2], -1);
    if( pCC->zPath==0 ) return SQLITE_NOMEM;
  }else{
    goto badpath;
  }
  if( pCC->zPath ){
    const char *p = pCC->zPath;
    int i, nLen = (int)strlen(p);
    if( nLen==0 || p[0]=='.' || p[nLen-1]=='.' || strstr(p, "..")
     || strchr(p, '[') || strchr(p, ' ') ) goto badpath;
    for(i=0; p[i]; i++){ if( p[i]=='$' ) goto badpath; }
    pCC->bTop = strchr(p, '.')==0;
    pCC->bMango = strchr(p, '\\')==0;
    for(i=0; pCC->bMango && p[i]; ){
      int n, bDigits = 1;
      for(n=0; p[i+n] && p[i+n]!='.'; n++){
        if( p[i+n]<'0' || p[i+n]>'9' ) bDigits = 0;
      }
      if( bDigits ) pCC->bMango = 0;
      i += n;
      if( p[i]=='.' ) i++;
    }
  }
  if( sqlite3_stricmp(pCol->zName, "doc")==0 ){
    if( !bWhole ) goto badpath;
    pCC->eKind = COUCH_KIND_DOC;
  }else if( bWhole ){
    goto badpath;
  }else if( sqlite3_stricmp(pCol->zName, "_id")==0 ){
    if( strcmp(pCC->zPath, "_id")!=0 ) goto badpath;
    if( pCC->eAff!=COUCH_AFF_TEXT ) goto badtype;
    pCC->eKind = COUCH_KIND_ID;
  }else if( sqlite3_stricmp(pCol->zName, "_rev")==0 ){
    if( strcmp(pCC->zPath, "_rev")!=0 ) goto badpath;
    if( pCC->eAff!=COUCH_AFF_TEXT ) goto badtype;
    pCC->eKind = COUCH_KIND_REV;
  }else{
    pCC->eKind = COUCH_KIND_PATH;
  }
  pCol->eKind = pCC->eKind;
  return SQLITE_OK;
badtype:
  fedSetError(pzErr, "%s: table \"%s\": column \"%s\" is always TEXT",
              COUCH_STORE, pTab->zName, pCol->zName);
  return SQLITE_ERROR;
badpath:
  fedSetError(pzErr, "%s: table \"%s\": column \"%s\": bad path \"%s\""
      " (a path is $.field or $.field.field...; _id is $._id, _rev is"
      " $._rev, doc is $)", COUCH_STORE, pTab->zName, pCol->zName,
      zPath ? zPath : "");
  return SQLITE_ERROR;
}

static int couchColumnsImpl(FedTable *pTab, char **pzErr){
  CouchTable *pCT;
  int i, rc = tableInit(pTab, pzErr);
  if( rc==SQLITE_OK ) rc = setRemote(pTab);
  if( rc!=SQLITE_OK ) return rc;
  pCT = (CouchTable*)pTab->pStoreTab;
  if( pCT->aCol==0 ){
    pCT->aCol = sqlite3_malloc64(sizeof(CouchCol)*(pTab->nCol+1));
    if( pCT->aCol==0 ) return SQLITE_NOMEM;
    memset(pCT->aCol, 0, sizeof(CouchCol)*(pTab->nCol+1));
    pCT->nCol = pTab->nCol;
  }
  pTab->iPk = -1;
  for(i=0; rc==SQLITE_OK && i<pTab->nCol && i<pCT->nCol; i++){
    rc = colParse(pTab, &pTab->aCol[i], &pCT->aCol[i], pzErr);
    if( rc==SQLITE_OK && pCT->aCol[i].eKind==COUCH_KIND_ID ) pTab->iPk = i;
  }
  if( rc==SQLITE_OK && pTab->iPk<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no _id column; drop and create"
                " it again", COUCH_STORE, pTab->zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

int couchColumns(FedTable *pTab, char **pzErr){
  return couchRc(couchColumnsImpl(pTab, pzErr), pzErr);
}

int couchSafeBound(const char *z, int n){
  int i;
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)z[i];
    if( c>=0xEE ) return 0;
    if( c==0xED && i+1<n && (unsigned char)z[i+1]>=0xA0 ) return 0;
    if( c==0 ) return 0;
  }
  return 1;
}

/*
** Pushed (docs/couchdb.md, "Pushdown"), on _id only, which is always a
** string and is declared TEXT:
**  - _id = <text known now>: exact; the scan asks _all_docs for that key
**    and compares each _id it receives with SQLite's "=" itself;
**  - _id > >= < <= <text known now, every character below U+D800>:
**    exact; a key range of _all_docs (whose order is bytes in CouchDB
**    and UTF-16 code units in pouchdb-server: they agree on such bounds),
**    checked by the scan itself;
**  - _id = <a value known only at run time>, _id IN (...), _id = <number>:
**    a superset that SQLite re-checks (a value from a column of numeric
**    affinity makes SQLite compare '05' = 5 as numbers): text values are
**    looked up as keys, a number reads every document;
**  - = and IN on a declared field that Mango can name, IS [NOT] NULL on a
**    top-level one: a _find selector that is a superset SQLite re-checks
**    (plan.c, fieldSelector: the values themselves, or'd with the JSON
**    types whose values may read as them under an affinity).
** Ranges on fields are not pushed (Mango's order of types and its ICU
** collation are not SQLite's).
*/
int couchPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  CouchTable *pCT = (CouchTable*)pTab->pStoreTab;
  if( pCT==0 || iCol<0 || iCol>=pCT->nCol ) return FED_PUSH_NO;
  if( pCT->aCol[iCol].eKind==COUCH_KIND_PATH && pCT->aCol[iCol].bMango ){
    if( op==FED_OP_EQ || op==FED_OP_IN ) return FED_PUSH_LOOSE;
    if( (op==FED_OP_ISNULL || op==FED_OP_NOTNULL) && pCT->aCol[iCol].bTop ){
      return FED_PUSH_LOOSE;
    }
    return FED_PUSH_NO;
  }
  if( pCT->aCol[iCol].eKind!=COUCH_KIND_ID ) return FED_PUSH_NO;
  switch( op ){
    case FED_OP_EQ:
      if( pRhs && sqlite3_value_type(pRhs)==SQLITE_TEXT ){
        return FED_PUSH_EXACT;
      }
      if( pRhs && sqlite3_value_type(pRhs)!=SQLITE_INTEGER
       && sqlite3_value_type(pRhs)!=SQLITE_FLOAT ) return FED_PUSH_NO;
      /* fall through */
    case FED_OP_IN:
      /* The cache's subsumption takes "_id = v" to mean the value without
      ** affinity; a cached table leaves such terms to SQLite. */
      if( !pTab->bCacheInit || pTab->pCache ) return FED_PUSH_NO;
      return FED_PUSH_LOOSE;
    case FED_OP_GT: case FED_OP_GE: case FED_OP_LT: case FED_OP_LE:
      if( pRhs && sqlite3_value_type(pRhs)==SQLITE_TEXT
       && couchSafeBound((const char*)sqlite3_value_text(pRhs),
                         sqlite3_value_bytes(pRhs)) ){
        return FED_PUSH_EXACT;
      }
      return FED_PUSH_NO;
  }
  return FED_PUSH_NO;
}

int couchOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)iCol; (void)bDesc;
  return 0;
}

/* fed_import('cd', zSchema): every database (those starting with '_'
** left out) whose name starts with zSchema ('' for all). */
int couchListTables(FedConn *pConn, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr){
  char **az = 0, **azOut;
  int n = 0, i, nOut = 0, rc;
  size_t nPre = strlen(zSchema);
  *pazName = 0;
  *pnName = 0;
  rc = couchListDbs((CouchConn*)pConn, &az, &n, pzErr);
  azOut = rc ? 0 : sqlite3_malloc64(sizeof(char*)*(2*n+1));
  if( rc==SQLITE_OK && azOut==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( strncmp(az[i], zSchema, nPre)!=0 ) continue;
    azOut[2*nOut] = az[i];
    azOut[2*nOut+1] = fedStrdup(az[i], -1);
    az[i] = 0;
    if( azOut[2*nOut+1]==0 ){
      sqlite3_free(azOut[2*nOut]);
      rc = SQLITE_NOMEM;
      break;
    }
    nOut++;
  }
  for(i=0; i<n; i++) sqlite3_free(az[i]);
  sqlite3_free(az);
  if( rc==SQLITE_OK ){
    *pazName = azOut;
    *pnName = nOut;
  }else if( azOut ){
    for(i=0; i<2*nOut; i++) sqlite3_free(azOut[i]);
    sqlite3_free(azOut);
  }
  return couchRc(rc, pzErr);
}
