/*
** write.c: xUpdate.  INSERT, UPDATE and DELETE on an etcd table queue
** (queue.c) what the commit puts, deletes and checks.
*/
#include "etcdInt.h"

/**************************************************************************
** Writes.  Each write appends to the connection's queue; the commit sends
** the queue as one txn (etcdCommit).  The first operation on a key also
** queues what its commit must check:
**
**   INSERT             the key must not exist (create_revision = 0)
**   INSERT OR REPLACE  nothing: a blind put
**   INSERT OR IGNORE   whether the key exists is asked now; if not, as
**                      INSERT
**   UPDATE, DELETE     the row read is unchanged: mod_revision below the
**                      snapshot revision + 1 and version > 0
*/

/* The remote key of a local key value: prefix + bytes.  *pz is
** sqlite3_malloc'd.  SQLITE_CONSTRAINT for NULL and empty keys. */
static int remoteKey(
  FedTable *pTab, sqlite3_value *pKey, char **pz, int *pn, char **pzErr
){
  EtcdTable *pET = (EtcdTable*)pTab->pStoreTab;
  const char *a;
  int n;
  *pz = 0;
  etcdValueBytes(pKey, &a, &n);
  if( a==0 ){
    fedSetError(pzErr, "%s: NOT NULL constraint failed: %s.key", ETCD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( n<0 ) return SQLITE_NOMEM;
  if( n+pET->nPrefix==0 ){
    fedSetError(pzErr, "%s: etcd has no empty key (table %s)", ETCD_STORE,
                pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  *pz = sqlite3_malloc64((i64)pET->nPrefix+n+1);
  if( *pz==0 ) return SQLITE_NOMEM;
  memcpy(*pz, pET->aPrefix, pET->nPrefix);
  if( n ) memcpy(&(*pz)[pET->nPrefix], a, n);
  (*pz)[pET->nPrefix+n] = 0;
  *pn = pET->nPrefix+n;
  return SQLITE_OK;
}

/* Does remote key a exist now (at the snapshot, if there is one)? */
static int keyExists(EtcdConn *p, const char *a, int n, int *pbExists,
                     char **pzErr){
  json_t *pReq, *pOut = 0;
  i64 nCount = 0;
  int rc = SQLITE_OK;
  pReq = etcdJsonNew(json_object(), &rc);
  etcdJsonSetKey(pReq, "key", 0, 0, a, n, &rc);
  etcdJsonSetRevision(p, pReq, &rc);
  etcdJsonSet(pReq, "count_only", etcdJsonNew(json_true(), &rc), &rc);
  if( rc==SQLITE_OK ){
    rc = etcdCall(p, "/v3/kv/range", pReq, 0, &pOut, 0, pzErr);
  }
  json_decref(pReq);
  if( rc==SQLITE_OK ){
    etcdNoteRevision(p, pOut);
    fedJsonInt64(json_object_get(pOut, "count"), &nCount);
    *pbExists = nCount>0;
  }
  json_decref(pOut);
  return rc;
}

/* Does remote key a exist for this transaction: its own queued put or
** delete decides, else the server (keyExists). */
static int keyExistsNow(EtcdConn *p, const char *a, int n, int *pbExists,
                        char **pzErr){
  int bTouched;
  int iLast = fedKvLastWrite(&p->kv, 0, a, n, &bTouched);
  if( iLast>=0 ){
    *pbExists = etcdOp(p, iLast)->hdr.eOp==OP_PUT;
    return SQLITE_OK;
  }
  return keyExists(p, a, n, pbExists, pzErr);
}

/* Queue the put of an INSERT (eConflict: SQLITE_REPLACE, SQLITE_IGNORE or
** another: plain INSERT). */
static int writeInsert(
  EtcdConn *p, FedTable *pTab, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, int eConflict, char **pzErr
){
  int bTouched, rc;
  int iLast = fedKvLastWrite(&p->kv, 0, aKey, nKey, &bTouched);
  if( iLast>=0 && etcdOp(p, iLast)->hdr.eOp==OP_PUT ){
    /* The key exists in this transaction's own writes. */
    if( eConflict==SQLITE_IGNORE ) return SQLITE_OK;
    if( eConflict!=SQLITE_REPLACE ){
      fedSetError(pzErr, "%s: UNIQUE constraint failed: %s.key", ETCD_STORE,
                  pTab->zName);
      return SQLITE_CONSTRAINT;
    }
  }else if( !bTouched && eConflict!=SQLITE_REPLACE ){
    if( eConflict==SQLITE_IGNORE ){
      int bExists = 0;
      rc = keyExists(p, aKey, nKey, &bExists, pzErr);
      if( rc || bExists ) return rc;
    }
    rc = etcdQueueAdd(p, OP_CMP_ABSENT, aKey, nKey, 0, 0, 0, pTab->zName);
    if( rc ) return rc;
  }
  return etcdQueueAdd(p, OP_PUT, aKey, nKey, aVal, nVal, iLease, 0);
}

/* Queue the put (aVal) or delete (aVal==0) of a row that was read. */
static int writeRead(
  EtcdConn *p, const char *aKey, int nKey, const char *aVal, int nVal,
  i64 iLease
){
  int bTouched, rc;
  if( fedKvLastWrite(&p->kv, 0, aKey, nKey, &bTouched)<0 && !bTouched ){
    rc = etcdQueueAdd(p, OP_CMP_SAME, aKey, nKey, 0, 0, 0, 0);
    if( rc ) return rc;
  }
  return etcdQueueAdd(p, aVal ? OP_PUT : OP_DEL, aKey, nKey, aVal, nVal, iLease,
                      0);
}

/* The lease column as written: NULL or 0 for none, else an integer. */
static int leaseValue(FedTable *pTab, sqlite3_value *pVal, i64 *piLease,
                      char **pzErr){
  *piLease = 0;
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:
      return SQLITE_OK;
    case SQLITE_INTEGER:
      *piLease = sqlite3_value_int64(pVal);
      return SQLITE_OK;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(pVal);
      if( r==floor(r) && r<9.2e18 && r>-9.2e18 ){
        *piLease = (i64)r;
        return SQLITE_OK;
      }
      break;
    }
    case SQLITE_TEXT: {
      /* As an INTEGER column would hold the text: SQLite's own numeric
      ** affinity (' 7', '7.0' and '7e0' are 7). */
      sqlite3_value *pDup = sqlite3_value_dup(pVal);
      int eType, bOk = 0;
      if( pDup==0 ) return SQLITE_NOMEM;
      eType = sqlite3_value_numeric_type(pDup);
      if( eType==SQLITE_INTEGER ){
        *piLease = sqlite3_value_int64(pDup);
        bOk = 1;
      }else if( eType==SQLITE_FLOAT ){
        double r = sqlite3_value_double(pDup);
        if( r==floor(r) && r<9.2e18 && r>-9.2e18 ){
          *piLease = (i64)r;
          bOk = 1;
        }
      }
      sqlite3_value_free(pDup);
      if( bOk ) return SQLITE_OK;
      break;
    }
  }
  fedSetError(pzErr, "%s: %s.lease must be a lease ID (an integer) or NULL",
              ETCD_STORE, pTab->zName);
  return SQLITE_MISMATCH;
}

/* Refuse a write of a key in federate's reserved namespace
** (ETCD_RESERVED: commit markers and fences): a table with prefix='' could
** otherwise forge or delete a marker and decide another transaction. */
static int reservedKey(FedTable *pTab, const char *a, int n, const char *zOp,
                       char **pzErr){
  return fedKvReserved(&etcdKvDriver, ETCD_RESERVED, a, n, zOp, pTab->zName,
                       pzErr);
}

static int etcdUpdateImpl(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  EtcdConn *p = (EtcdConn*)pTab->pServer->pConn;
  char *aKey = 0, *aOld = 0;
  int nKey = 0, nOld = 0, i, rc;
  const char *aVal = 0;
  int nVal = 0;
  i64 iLease = 0;
  (void)piRowid;

  if( argc==1 ){
    rc = remoteKey(pTab, argv[0], &aOld, &nOld, pzErr);
    if( rc==SQLITE_OK ) rc = reservedKey(pTab, aOld, nOld, "DELETE", pzErr);
    if( rc==SQLITE_OK ) rc = writeRead(p, aOld, nOld, 0, 0, 0);
    sqlite3_free(aOld);
    return rc;
  }

  /* INSERT or UPDATE: check the columns. */
  for(i=ETCD_COL_CREATE; i<=ETCD_COL_VERSION; i++){
    sqlite3_value *pV = argv[2+i];
    int bSet = sqlite3_value_type(argv[0])==SQLITE_NULL
             ? sqlite3_value_type(pV)!=SQLITE_NULL
             : !sqlite3_value_nochange(pV);
    if( bSet ){
      fedSetError(pzErr, "%s: column %s.%s is read-only", ETCD_STORE,
                  pTab->zName, azEtcdColumn[i]);
      return SQLITE_CONSTRAINT;
    }
  }
  /* A NULL value, a NULL key or the empty key (without a prefix) break a
  ** NOT NULL constraint or etcd's own; under OR IGNORE (INSERT, UPDATE)
  ** SQLite skips such a row, and so does this table.  (OR REPLACE has no
  ** default to put in, so it fails as SQLite does.) */
  etcdValueBytes(argv[2+ETCD_COL_VALUE], &aVal, &nVal);
  if( aVal==0 ){
    if( sqlite3_vtab_on_conflict(pTab->pCtx->db)==SQLITE_IGNORE ){
      return SQLITE_OK;
    }
    fedSetError(pzErr, "%s: NOT NULL constraint failed: %s.value (etcd"
                " values are never NULL)", ETCD_STORE, pTab->zName);
    return SQLITE_CONSTRAINT;
  }
  if( nVal<0 ) return SQLITE_NOMEM;
  rc = leaseValue(pTab, argv[2+ETCD_COL_LEASE], &iLease, pzErr);
  if( rc ) return rc;
  rc = remoteKey(pTab, argv[2+ETCD_COL_KEY], &aKey, &nKey, pzErr);
  if( rc==SQLITE_CONSTRAINT
   && sqlite3_vtab_on_conflict(pTab->pCtx->db)==SQLITE_IGNORE ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
    return SQLITE_OK;
  }
  if( rc ) return rc;
  rc = reservedKey(pTab, aKey, nKey,
      sqlite3_value_type(argv[0])==SQLITE_NULL ? "INSERT" : "UPDATE", pzErr);
  if( rc ){
    sqlite3_free(aKey);
    return rc;
  }

  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    rc = writeInsert(p, pTab, aKey, nKey, aVal, nVal, iLease,
                     sqlite3_vtab_on_conflict(pTab->pCtx->db), pzErr);
  }else{
    rc = remoteKey(pTab, argv[0], &aOld, &nOld, pzErr);
    if( rc==SQLITE_OK ) rc = reservedKey(pTab, aOld, nOld, "UPDATE", pzErr);
    if( rc==SQLITE_OK ){
      if( nOld==nKey && memcmp(aOld, aKey, nKey)==0 ){
        rc = writeRead(p, aKey, nKey, aVal, nVal, iLease);
      }else{
        /* A new key: delete the old row, insert the new one.  Under OR
        ** IGNORE a new key that exists skips the whole row, as SQLite
        ** does: asked before the delete of the old key is queued, which
        ** would otherwise lose that row. */
        int eConflict = sqlite3_vtab_on_conflict(pTab->pCtx->db);
        int bSkip = 0;
        if( eConflict==SQLITE_IGNORE ){
          rc = keyExistsNow(p, aKey, nKey, &bSkip, pzErr);
          eConflict = SQLITE_ABORT;   /* Asked: the commit's compare guards */
        }
        if( rc==SQLITE_OK && !bSkip ) rc = writeRead(p, aOld, nOld, 0, 0, 0);
        if( rc==SQLITE_OK && !bSkip ){
          rc = writeInsert(p, pTab, aKey, nKey, aVal, nVal, iLease,
                           eConflict, pzErr);
        }
      }
    }
  }
  sqlite3_free(aKey);
  sqlite3_free(aOld);
  return rc;
}

int etcdUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
){
  return etcdRc(etcdUpdateImpl(pTab, argc, argv, piRowid, pzErr), pzErr);
}
