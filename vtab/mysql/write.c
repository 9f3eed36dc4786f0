/*
** write.c: writes to a MariaDB/MySQL table (xUpdate, xFlush): INSERT rows
** wait in a batch sent as one multi-row INSERT (bounded by the table's
** batch_size and by MY_BATCH_BYTES of text; sent when another table or
** column set comes, before any other command of the connection, at the
** end of a statement inside BEGIN...COMMIT and at COMMIT); UPDATE and
** DELETE by the one-column primary key; tables of non-transactional
** engines (MyISAM, MEMORY, Aria, ...) refused.  The text comes from
** deparse.c, values as literals.
*/
#include "myInt.h"
#include <mysql.h>

/* The text of one batch stays well under max_allowed_packet (16 MiB by
** default in MariaDB 10.11, at least 1 MiB everywhere). */
#define MY_BATCH_BYTES (1024*1024)

/* Forget the rows of the batch (sent, or dropped with the transaction). */
void fedMyBatchClear(MyBatch *b){
  if( b->pSql ) sqlite3_free(sqlite3_str_finish(b->pSql));
  memset(b, 0, sizeof(*b));
}

/* Send the waiting INSERT rows as one statement.  A failure inside an open
** transaction dooms it: the rows came from statements SQLite considers
** done (the savepoint callbacks that flush drop their messages). */
int fedMyFlushBatch(MyConn *p, char **pzErr){
  MyBatch *b = &p->batch;
  FedTable *pTab = b->pTab;
  int nRow = b->nRow, rc;
  char *zSql, *zOp = 0;
  if( nRow==0 ) return SQLITE_OK;
  zSql = sqlite3_str_finish(b->pSql);
  b->pSql = 0;
  fedMyBatchClear(b);           /* Sent once, whatever the outcome */
  if( zSql ){
    zOp = sqlite3_mprintf("inserting %d row%s into table \"%s\"", nRow,
                          nRow==1 ? "" : "s", pTab->zName);
  }
  rc = zOp ? fedMyExecOp(p, zSql, zOp, 0, pzErr) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  sqlite3_free(zOp);
  if( rc!=SQLITE_OK && p->bOpen && p->zDoom==0 ){
    p->zDoom = sqlite3_mprintf("%s: rows buffered earlier in this"
        " transaction were not inserted, so it cannot commit: ROLLBACK"
        " (or ROLLBACK TO a savepoint) and retry; %s", MY_STORE,
        *pzErr==0 ? "out of memory" :
        strncmp(*pzErr, MY_STORE ": ", strlen(MY_STORE)+2)==0 ?
            *pzErr + strlen(MY_STORE) + 2 : *pzErr);
  }
  return rc;
}

int fedMyFlush(FedConn *pConn, char **pzErr){
  MyConn *p = (MyConn*)pConn;
  if( p->batch.nRow==0 ) return SQLITE_OK;
  return fedMyReady(p, pzErr);
}

/*
** The table's engine, asked once (information_schema.TABLES) at its first
** write: a non-transactional engine cannot roll back a failed statement
** or a transaction, so its tables are refused (docs/mysql.md).  A view
** (no engine) is written as MariaDB allows.
*/
static int myEngineCheck(MyConn *p, FedTable *pTab, char **pzErr){
  static const char *const azTxn[] = { "InnoDB", "XtraDB", "RocksDB",
                                       "TokuDB", 0 };
  MyTab *pMy = (MyTab*)pTab->pStoreTab;
  char *zDb = 0, *zName = 0;
  char **az = 0;
  const char *azP[2];
  int nP = 0, nRow = 0, i, rc;
  if( pMy==0 ){
    pMy = sqlite3_malloc64(sizeof(*pMy));
    if( pMy==0 ) return SQLITE_NOMEM;
    memset(pMy, 0, sizeof(*pMy));
    pTab->pStoreTab = pMy;
  }
  if( pMy->eEngine==MY_ENGINE_UNKNOWN ){
    rc = fedMyRemoteName(pTab, &zDb, &zName, pzErr);
    if( rc!=SQLITE_OK ) return rc;
    if( zDb ) azP[nP++] = zDb;
    azP[nP++] = zName;
    rc = fedMyCatalog(p, zDb
        ? "SELECT ENGINE FROM information_schema.TABLES"
          " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
        : "SELECT ENGINE FROM information_schema.TABLES"
          " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        nP, azP, 1, &az, &nRow, pzErr);
    sqlite3_free(zDb);
    sqlite3_free(zName);
    if( rc!=SQLITE_OK ) return rc;
    pMy->eEngine = MY_ENGINE_TXN;
    if( nRow==1 && az[0] ){
      for(i=0; azTxn[i] && sqlite3_stricmp(az[0], azTxn[i]); i++){}
      if( azTxn[i]==0 ){
        pMy->eEngine = MY_ENGINE_NONTXN;
        sqlite3_free(pMy->zEngine);
        pMy->zEngine = az[0];
        az[0] = 0;
      }
    }
    for(i=0; i<nRow; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
  }
  if( pMy->eEngine==MY_ENGINE_NONTXN ){
    fedSetError(pzErr, "%s: table \"%s\" is stored by engine %s on server"
        " \"%s\", which cannot roll back: writes are refused (a failed or"
        " rolled-back statement would stay half-written)", MY_STORE,
        pTab->zName, pMy->zEngine ? pMy->zEngine : "?",
        pTab->pServer->zName);
    return SQLITE_READONLY;
  }
  return SQLITE_OK;
}

static int myInsert(MyConn *p, FedTable *pTab, sqlite3_value **aVal,
                    char **pzErr){
  MyBatch *b = &p->batch;
  u64 mCol = 0;
  sqlite3_str *pRow;
  char *zRow;
  i64 nBatch;
  int i, rc;

  for(i=0; i<pTab->nCol; i++){
    const FedColumn *pCol = &pTab->aCol[i];
    /* SQLite hands a virtual table NULL for a column an INSERT leaves out.
    ** NULL into a NOT NULL column that has a default (AUTO_INCREMENT,
    ** DEFAULT) means "use the default"; elsewhere NULL stays NULL. */
    if( sqlite3_value_type(aVal[i])==SQLITE_NULL && pCol->bDefault
     && pCol->bNotNull ){
      continue;
    }
    mCol |= (u64)1<<i;
  }
  rc = fedConfigInt(pTab->pCfg, "batch_size", 1000, 1, 100000, &nBatch,
                    MY_STORE, pzErr);
  if( rc!=SQLITE_OK ) return rc;

  /* The row's text first: a value refused leaves no partial row. */
  pRow = sqlite3_str_new(0);
  rc = fedMyDeparseRow(pRow, pTab, mCol, aVal, pzErr);
  zRow = sqlite3_str_finish(pRow);
  if( rc==SQLITE_OK && zRow==0 ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    sqlite3_free(zRow);
    return rc;
  }

  /* Another table or column set, or a batch that would grow too long:
  ** send what waits. */
  if( b->nRow>0 && (b->pTab!=pTab || b->mCol!=mCol
       || sqlite3_str_length(b->pSql) + (int)strlen(zRow) > MY_BATCH_BYTES) ){
    rc = fedMyFlush(&p->base, pzErr);
    if( rc!=SQLITE_OK ){
      sqlite3_free(zRow);
      return rc;
    }
  }
  if( b->nRow==0 ){
    fedMyBatchClear(b);
    b->pSql = sqlite3_str_new(0);
    rc = fedMyDeparseInsert(b->pSql, pTab, mCol);
    b->pTab = pTab;
    b->mCol = mCol;
  }else{
    sqlite3_str_append(b->pSql, ", ", 2);
  }
  sqlite3_str_appendall(b->pSql, zRow);
  sqlite3_free(zRow);
  if( rc==SQLITE_OK ) rc = sqlite3_str_errcode(b->pSql);
  if( rc!=SQLITE_OK ){
    /* The batch's text is lost with earlier rows in it. */
    int nLost = b->nRow;
    fedMyBatchClear(b);
    if( nLost>0 && p->bOpen && p->zDoom==0 ){
      p->zDoom = sqlite3_mprintf("%s: out of memory while buffering rows;"
                                 " ROLLBACK and retry", MY_STORE);
    }
    return rc;
  }
  b->nRow++;
  if( b->nRow>=nBatch ) return fedMyFlush(&p->base, pzErr);
  return SQLITE_OK;
}

int fedMyUpdate(FedTable *pTab, int argc, sqlite3_value **argv,
                i64 *piRowid, char **pzErr){
  MyConn *p = (MyConn*)pTab->pServer->pConn;
  char *zSql = 0, *zOp = 0;
  int rc;
  (void)piRowid;

  if( p->zDoom ){
    fedSetError(pzErr, "%s", p->zDoom);
    return SQLITE_ERROR;
  }
  rc = myEngineCheck(p, pTab, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( argc>1 && sqlite3_value_type(argv[0])==SQLITE_NULL ){
    if( pTab->iPk<0 && sqlite3_value_type(argv[1])!=SQLITE_NULL ){
      fedSetError(pzErr, "%s: cannot set the rowid of table \"%s\"",
                  MY_STORE, pTab->zName);
      return SQLITE_ERROR;
    }
    return myInsert(p, pTab, &argv[2], pzErr);
  }
  if( pTab->iPk<0 ){
    fedSetError(pzErr, "%s: table \"%s\" has no one-column primary key;"
        " UPDATE and DELETE need one (declare it in columns= with"
        " \"primary key\")", MY_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    fedSetError(pzErr, "%s: row of table \"%s\" has a NULL primary key;"
                " cannot UPDATE or DELETE it", MY_STORE, pTab->zName);
    return SQLITE_ERROR;
  }
  rc = fedMyDeparseUpdate(pTab, argc, argv, &zSql, pzErr);
  /* No text: nothing changes, no round trip. */
  if( rc!=SQLITE_OK || zSql==0 ) return rc;
  rc = fedMyReady(p, pzErr);
  if( rc==SQLITE_OK ){
    zOp = sqlite3_mprintf("%s table \"%s\"", argc==1 ? "deleting from" :
                          "updating", pTab->zName);
    rc = zOp ? fedMyExecOp(p, zSql, zOp, 0, pzErr) : SQLITE_NOMEM;
  }
  sqlite3_free(zOp);
  sqlite3_free(zSql);
  return rc;
}
