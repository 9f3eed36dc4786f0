/*
** table.c: etcd tables: the table options (prefix=, page_size=), the
** fixed columns (xDescribe, xColumns), and what the planner may push down
** (xPushable, xOrderable).
*/
#include "etcdInt.h"

const char *const azEtcdColumn[ETCD_NCOL] = {
  "key", "value", "create_revision", "mod_revision", "version", "lease"
};
static const char *const azEtcdType[ETCD_NCOL] = {
  "bytes", "bytes", "int64", "int64", "int64", "int64"
};
const char *const azEtcdTableOpt[] = { "prefix", "page_size", 0 };

/**************************************************************************
** Table.
*/

void etcdTableFree(FedTable *pTab){
  EtcdTable *pET = (EtcdTable*)pTab->pStoreTab;
  if( pET ){
    sqlite3_free(pET->aPrefix);
    sqlite3_free(pET);
    pTab->pStoreTab = 0;
  }
}

/* Parse the table options into pTab->pStoreTab (once). */
static int etcdTableInit(FedTable *pTab, char **pzErr){
  EtcdTable *pET;
  const char *zPrefix;
  i64 nPage;
  int rc;
  if( pTab->pStoreTab ) return SQLITE_OK;
  rc = fedConfigInt(pTab->pCfg, "page_size", 1000, 1, 1000000, &nPage,
                    ETCD_STORE, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pET = sqlite3_malloc64(sizeof(*pET));
  if( pET==0 ) return SQLITE_NOMEM;
  memset(pET, 0, sizeof(*pET));
  zPrefix = fedConfigGet(pTab->pCfg, "prefix");
  pET->aPrefix = fedStrdup(zPrefix ? zPrefix : "", -1);
  if( pET->aPrefix==0 ){
    sqlite3_free(pET);
    return SQLITE_NOMEM;
  }
  pET->nPrefix = (int)strlen(pET->aPrefix);
  pET->nPage = nPage;
  pTab->pStoreTab = pET;
  return SQLITE_OK;
}

/*
** The columns are fixed; a given column list is refused.  With a
** connection (CREATE VIRTUAL TABLE), count the keys once: it checks that
** the server answers and gives the planner an estimate.
*/
static int etcdDescribeImpl(FedConn *pConn, FedTable *pTab, char **pzErr){
  EtcdTable *pET;
  int i, rc;
  if( pTab->nCol>0 ){
    fedSetError(pzErr, "%s: the columns of an etcd table are fixed (key,"
        " value, create_revision, mod_revision, version, lease); leave out"
        " columns=", ETCD_STORE);
    return SQLITE_ERROR;
  }
  rc = etcdTableInit(pTab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pET = (EtcdTable*)pTab->pStoreTab;
  sqlite3_free(pTab->zRemote);
  pTab->zRemote = fedStrdup(pET->aPrefix, -1);
  if( pTab->zRemote==0 ) return SQLITE_NOMEM;
  pTab->aCol = sqlite3_malloc64(sizeof(FedColumn)*ETCD_NCOL);
  if( pTab->aCol==0 ) return SQLITE_NOMEM;
  memset(pTab->aCol, 0, sizeof(FedColumn)*ETCD_NCOL);
  for(i=0; i<ETCD_NCOL; i++){
    FedColumn *pCol = &pTab->aCol[i];
    pTab->nCol++;
    pCol->zName = fedStrdup(azEtcdColumn[i], -1);
    pCol->zType = fedStrdup(azEtcdType[i], -1);
    if( pCol->zName==0 || pCol->zType==0 ) return SQLITE_NOMEM;
    pCol->bPk = i==ETCD_COL_KEY;
    pCol->bNotNull = i<=ETCD_COL_VALUE;
  }
  if( pConn ){
    EtcdConn *p = (EtcdConn*)pConn;
    json_t *pBody, *pOut = 0;
    i64 nCount = 0;
    rc = SQLITE_OK;
    pBody = etcdJsonNew(json_object(), &rc);
    etcdJsonSetTableRange(pBody, pET, &rc);
    etcdJsonSet(pBody, "count_only", etcdJsonNew(json_true(), &rc), &rc);
    if( rc==SQLITE_OK ){
      rc = etcdCall(p, "/v3/kv/range", pBody, 0, &pOut, 0, pzErr);
    }
    if( rc==SQLITE_OK ){
      fedJsonInt64(json_object_get(pOut, "count"), &nCount);
      pTab->nRowEst = nCount>0 ? (double)nCount : 1.0;
    }
    json_decref(pOut);
    json_decref(pBody);
  }
  return rc;
}

int etcdDescribe(
  FedConn *pConn, FedTable *pTab, char **pzErr
){
  return etcdRc(etcdDescribeImpl(pConn, pTab, pzErr), pzErr);
}

int etcdColumns(FedTable *pTab, char **pzErr){
  int i, rc;
  if( pTab->nCol!=ETCD_NCOL ) goto bad;
  for(i=0; i<ETCD_NCOL; i++){
    FedColumn *pCol = &pTab->aCol[i];
    if( sqlite3_stricmp(pCol->zName, azEtcdColumn[i])!=0 ) goto bad;
    pCol->eKind = i;
    pCol->zAffinity = i<=ETCD_COL_VALUE ? "TEXT" : "INTEGER";
  }
  pTab->iPk = ETCD_COL_KEY;
  rc = etcdTableInit(pTab, pzErr);
  if( rc==SQLITE_OK && pTab->zRemote==0 ){
    pTab->zRemote = fedStrdup(((EtcdTable*)pTab->pStoreTab)->aPrefix, -1);
    if( pTab->zRemote==0 ) rc = SQLITE_NOMEM;
  }
  return rc;
bad:
  fedSetError(pzErr, "%s: table \"%s\": the column record does not list"
      " etcd's columns; drop and create the table again", ETCD_STORE,
      pTab->zName);
  return SQLITE_ERROR;
}

int etcdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs){
  (void)pTab;
  if( iCol==ETCD_COL_KEY ){
    switch( op ){
      case FED_OP_ISNULL: case FED_OP_NOTNULL:
        return FED_PUSH_EXACT;
      case FED_OP_EQ: case FED_OP_IS: case FED_OP_GT: case FED_OP_GE:
      case FED_OP_LT: case FED_OP_LE:
        /* A number compares as text only when it has no affinity of its
        ** own (a literal), but one known at plan time may have one
        ** (CAST(10 AS INTEGER) compares numerically with '010'): only a
        ** text or blob value is exact; a number goes loose, as a join
        ** value does. */
        if( pRhs && sqlite3_value_type(pRhs)!=SQLITE_INTEGER
         && sqlite3_value_type(pRhs)!=SQLITE_FLOAT ){
          return FED_PUSH_EXACT;
        }
        return FED_PUSH_LOOSE;
      case FED_OP_LIKE: case FED_OP_GLOB: {
        const char *z;
        int nPrefix, bExact;
        if( pRhs==0 ) return FED_PUSH_LOOSE;
        z = (const char*)sqlite3_value_text(pRhs);
        if( z==0 ) return FED_PUSH_EXACT;         /* NULL: no rows */
        etcdPatternPrefix(z, op==FED_OP_GLOB, &nPrefix, &bExact);
        return bExact ? FED_PUSH_EXACT : FED_PUSH_LOOSE;
      }
    }
    return FED_PUSH_NO;
  }
  if( iCol==ETCD_COL_CREATE || iCol==ETCD_COL_MOD ){
    switch( op ){
      case FED_OP_EQ: case FED_OP_GT: case FED_OP_GE:
      case FED_OP_LT: case FED_OP_LE:
        return FED_PUSH_EXACT;
    }
  }
  return FED_PUSH_NO;
}

int etcdOrderable(FedTable *pTab, int iCol, int bDesc){
  (void)pTab; (void)bDesc;
  return iCol==ETCD_COL_KEY;
}
