/*
** etcdInt.h: what the files of the etcd store (vtab/etcd/) share: its
** constants, the connection, table, scan and cursor structs, and one
** section of declarations per file.  Only vtab/etcd/ includes it.
*/
#ifndef ETCD_INT_H
#define ETCD_INT_H

#include "../http.h"
#include "kv.h"
#include <stdlib.h>
#include <math.h>
#include <time.h>

#define ETCD_STORE "etcd"

#define ETCD_COL_KEY     0
#define ETCD_COL_VALUE   1
#define ETCD_COL_CREATE  2
#define ETCD_COL_MOD     3
#define ETCD_COL_VERSION 4
#define ETCD_COL_LEASE   5
#define ETCD_NCOL        6

/* Classes of a key or value (FED_KV_TEXT, FED_KV_BLOB: ext/kv.h), as bits
** of a mask. */
#define CLS_MASK(c) (1<<(c))

/* A scan buffers the keys of its second class seen during the first
** range, up to this much, instead of reading them again. */
#define ETCD_BUFFER_ROWS  1000
#define ETCD_BUFFER_BYTES (4<<20)

#define I64_MAX ((i64)0x7fffffffffffffffLL)
#define I64_MIN (-I64_MAX-1)

/* Keys that start with ETCD_RESERVED belong to federate and no table shows
** them.  ETCD_MARKER + <global id> is the commit marker of a transaction
** where this server was the last resource (value: unix time of the
** commit, no lease: recovery may need it long after). */
#define ETCD_RESERVED "__federate/"
#define ETCD_MARKER   "__federate/txn/"
/* A marker key whose value starts with this is not a marker but a fence:
** recovery found no marker and wrote this one, so that the transaction's
** txn, if it is still in flight, fails its compare (the marker key must
** be absent) whenever it reaches etcd.  Kept ETCD_FENCE_KEEP seconds. */
#define ETCD_FENCE    "abort "
#define ETCD_FENCE_KEEP 86400

/* fed_explain shows at most this many bytes of a value. */
#define ETCD_EXPLAIN_VALUE_MAX 200

typedef struct EtcdConn EtcdConn;
typedef struct EtcdTable EtcdTable;
typedef struct EtcdCursor EtcdCursor;
typedef struct EtcdRange EtcdRange;
typedef struct EtcdPoint EtcdPoint;
typedef struct EtcdScan EtcdScan;
typedef struct EtcdStep EtcdStep;
typedef struct EtcdRow EtcdRow;
typedef struct EtcdOwned EtcdOwned;
typedef struct EtcdOp EtcdOp;

/* A key range: [aLo, aHi) in bytes, bHiInf for no upper bound (plan.c). */
struct EtcdRange {
  char *aLo; int nLo;           /* Inclusive lower bound */
  char *aHi; int nHi;           /* Exclusive upper bound, unless bHiInf */
  u8 bHiInf;
  u8 bEmpty;
};

/* One queued write or compare of the transaction. */
#define OP_PUT        1         /* put aKey = aVal (lease iLease) */
#define OP_DEL        2         /* delete aKey */
#define OP_CMP_ABSENT 3         /* aKey must not exist (INSERT) */
#define OP_CMP_SAME   4         /* aKey unchanged since revision iRev */
#define OP_CMP_REV    5         /* aKey not written after revision iRev
                                ** (it may be absent): an undo image's
                                ** guard (etcdUndoImages) */

struct EtcdOp {
  FedKvOp hdr;                  /* The batch layer's part (ext/kv.h): OP_*,
                                ** the remote key (with the table's prefix);
                                ** puts and deletes are hdr.bWrite, the
                                ** compares guard.  Must be first */
  char *aVal; int nVal;         /* OP_PUT */
  i64 iLease;                   /* OP_PUT: 0 for none */
  i64 iRev;                     /* OP_CMP_SAME */
  char *zTab;                   /* Table name, for UNIQUE errors */
};

struct EtcdConn {
  FedConn base;                 /* Base class. Must be first */
  FedHttp *pHttp;
  i64 nMaxOps;                  /* Operations per txn the server takes */
  char *zUser;                  /* etcd user, or NULL */
  char *zPwEnv;                 /* Environment variable of its password */
  /* Reads */
  i64 iReadRev;                 /* Snapshot revision of the reads of this
                                ** statement or transaction; 0: none yet */
  EtcdCursor *pCsrList;         /* Open cursors that use this connection */
  /* The transaction: writes queued until commit */
  FedKvTxn kv;                  /* The queue (EtcdOp) and savepoint marks
                                ** (ext/kv.h) */
  int bMaybeSent;               /* The last etcdCall failed after its
                                ** request went out (FedHttpCall) */
  /* Cache invalidation */
  FedHttpStream *pWatch;        /* The watch of every key, or NULL */
  int bChanged;                 /* A change not yet told to the cache */
};

/* A table's options (table.c). */
struct EtcdTable {
  char *aPrefix;                /* Key prefix (remote), NUL-terminated */
  int nPrefix;
  i64 nPage;                    /* page_size */
};

/* What a scan reads (plan.c, etcdScanPlan): a byte range per class, or
** exact keys, and revision bounds.  See the banner of "Scan planning". */
struct EtcdPoint {
  u8 eCls;
  char *a; int n;               /* Local key */
};

struct EtcdScan {
  u8 bEmpty;                    /* No row can match */
  EtcdRange aPart[2];           /* Byte ranges of TEXT keys, of BLOB keys */
  EtcdPoint *aPoint;            /* Exactly these keys (bPoints), sorted */
  int nPoint;
  u8 bPoints;
  i64 aRevMin[2], aRevMax[2];   /* [0] create_revision, [1] mod_revision */
  i64 *aRevIn[2];               /* IN sets (bRevIn), sorted */
  int nRevIn[2];
  u8 bRevIn[2];
  u8 bRevTerm;                  /* Some revision condition: rows of this
                                ** transaction's own writes never match */
  u8 bOrdered, bDesc;           /* ORDER BY key [DESC] consumed */
  u8 bKeysOnly;                 /* value unused: keys_only */
  i64 nLimit;                   /* Rows still to return; -1: no LIMIT */
  i64 nOffset;                  /* Rows still to skip */
};

/* A cursor (scan.c) runs its scan as steps: see the banner of "Scan". */
#define STEP_SCAN   1
#define STEP_BUFFER 2
#define STEP_POINTS 3
#define ETCD_MAX_STEP 8

struct EtcdStep {
  int eType;                    /* STEP_* */
  EtcdRange r;                  /* STEP_SCAN: the part not read yet */
  u8 mEmit;                     /* Classes returned as they come (a probe:
                                ** collected in aFound) */
  u8 mBuffer;                   /* Classes kept for the STEP_BUFFER */
  u8 bDesc;                     /* STEP_SCAN: descending */
  u8 bProbe;                    /* STEP_SCAN: a probe (keys only, into
                                ** aFound); STEP_POINTS: read aFound */
  EtcdRange rAll;               /* A probe: its whole range (for when it
                                ** finds too many keys) */
  u8 bStarted;                  /* Some page of this step was requested */
  u8 bSkipped;                  /* Some row read was not returned */
};

/* A row as xColumn sees it.  Pointers are borrowed. */
struct EtcdRow {
  const char *aKey; int nKey;   /* Local key (without the prefix) */
  const char *aVal; int nVal;   /* Value, or aVal==0 if not read */
  i64 aRev[2];                  /* create_revision, mod_revision */
  i64 iVersion;
  i64 iLease;                   /* 0: none */
  u8 eCls;                      /* Class of the key */
  u8 bOwn;                      /* A write of this transaction, not yet
                                ** sent: revisions and version unknown */
};

/* A row that owns its memory (buffered or pending). */
struct EtcdOwned {
  EtcdRow row;
  char *aMem;
};

struct EtcdCursor {
  EtcdConn *pConn;              /* Connection, while filtered */
  EtcdCursor *pNextCsr;         /* Next in pConn->pCsrList */
  EtcdTable *pET;
  EtcdScan scan;
  EtcdStep aStep[ETCD_MAX_STEP];
  int nStep, iStep;
  /* The reply being read */
  json_t *pPage;                /* Reply (owned) */
  json_t *pKvs;                 /* STEP_SCAN: its kvs (borrowed) */
  size_t iKv, nKv;              /* Next entry, number of entries */
  u8 bMore;                     /* The step has more to read */
  u8 bChunkTxn;                 /* STEP_POINTS: the reply is a txn */
  int iPoint;                   /* STEP_POINTS: next key to request */
  int iChunk;                   /* STEP_POINTS: first key of pPage */
  /* Decoded key and value of the remote row */
  char *aKeyBuf; int nKeyAlloc, nKeyRemote;
  char *aValBuf; int nValAlloc;
  /* Keys collected by a probe, for the STEP_POINTS after it */
  EtcdPoint *aFound;
  int nFound, nFoundAlloc;
  /* Rows of the second class met by the first range */
  EtcdOwned *aBuf;
  int nBuf, nBufAlloc, iBuf;
  i64 nBufBytes;
  u8 bOverflow;
  /* This transaction's writes under the prefix */
  EtcdOwned *aPend;             /* Puts that match, in output order */
  int nPend, iPend;
  EtcdPoint *aSup;              /* Remote keys of every write, sorted:
                                ** their remote rows are not returned */
  int nSup;
  /* Merge */
  EtcdRow remote;               /* Next remote row, if bRemote */
  u8 bRemote, bRemoteEof;
  EtcdRow cur;                  /* Current row */
  u8 bEof;
  i64 iRowid;
};

/**************************************************************************
** Interface to code in conn.c.
*/
int etcdRc(int rc, char **pzErr);
FedContext *etcdCtx(EtcdConn *p);
int etcdCall(
  EtcdConn *p, const char *zPath, json_t *pBody, int iFault,
  json_t **ppOut, i64 *piExplain, char **pzErr
);
int etcdServerOptions(
  FedServer *pServer, i64 *piTimeout, i64 *piConnTimeout, i64 *pnMaxOps,
  char **pzErr
);

/**************************************************************************
** Interface to code in table.c.
*/
extern const char *const azEtcdColumn[ETCD_NCOL];
extern const char *const azEtcdTableOpt[];
void etcdTableFree(FedTable *pTab);
int etcdDescribe(
  FedConn *pConn, FedTable *pTab, char **pzErr
);
int etcdColumns(FedTable *pTab, char **pzErr);
int etcdPushable(FedTable *pTab, int iCol, int op, sqlite3_value *pRhs);
int etcdOrderable(FedTable *pTab, int iCol, int bDesc);

/**************************************************************************
** Interface to code in plan.c.
*/
char *etcdBytesDup(const char *a, int n, int bNul, int *pn);
void etcdAppendBytes(sqlite3_str *s, const char *a, int n, int nMax);
void etcdValueBytes(sqlite3_value *v, const char **pa, int *pn);
void etcdRangeFree(EtcdRange *r);
int etcdRangeCopy(EtcdRange *pTo, const EtcdRange *pFrom);
void etcdRangeRaiseLo(EtcdRange *r, const char *a, int n, int bNul,
                      int *pRc);
void etcdRangeLowerHi(EtcdRange *r, const char *a, int n, int bNul,
                      int *pRc);
int etcdPrefixEnd(const char *a, int n, char **pz, int *pn, int *pRc);
json_t *etcdJsonNew(json_t *p, int *pRc);
void etcdJsonSet(json_t *pObj, const char *zKey, json_t *pVal, int *pRc);
void etcdJsonAppend(json_t *pArr, json_t *pVal, int *pRc);
json_t *etcdJsonInt(i64 v, int *pRc);
void etcdJsonSetKey(json_t *pObj, const char *zField, const char *aPrefix,
                    int nPrefix, const char *a, int n, int *pRc);
char *etcdExplainText(const char *zPath, json_t *pBody, int *pRc);
void etcdJsonSetTableRange(json_t *pObj, EtcdTable *pET, int *pRc);
void etcdPatternPrefix(const char *z, int bGlob, int *pnPrefix,
                       int *pbExact);
void etcdScanFree(EtcdScan *p);
int etcdPointFind(const EtcdPoint *a, int n, const EtcdPoint *pKey);
int etcdScanPlan(
  const FedPlan *pPlan, int argc, sqlite3_value **argv, EtcdScan *p
);
int etcdScanMatch(const EtcdScan *p, int eCls, const char *a, int n,
                  const i64 *aRev);
void etcdJsonSetRevision(EtcdConn *p, json_t *pReq, int *pRc);
json_t *etcdScanRequest(
  EtcdCursor *pCsr, const EtcdStep *pStep, const EtcdRange *r, int bAll,
  int *pRc
);

/**************************************************************************
** Interface to code in scan.c.
*/
int etcdOwnedSet(EtcdOwned *pOut, const EtcdRow *pRow);
void etcdCursorDetach(EtcdCursor *pCsr);
void etcdNoteRevision(EtcdConn *p, json_t *pReply);
int etcdOpen(FedCursor *pFedCsr, char **pzErr);
void etcdClose(FedCursor *pFedCsr);
int etcdFilter(
  FedCursor *pFedCsr, int argc, sqlite3_value **argv, char **pzErr
);
int etcdNext(FedCursor *pFedCsr, char **pzErr);
int etcdEof(FedCursor *pFedCsr);
int etcdColumn(FedCursor *pFedCsr, sqlite3_context *ctx, int iCol);
int etcdRowid(FedCursor *pFedCsr, i64 *piRowid);

/**************************************************************************
** Interface to code in queue.c.
*/
/* Op i of the queue of EtcdConn p. */
#define etcdOp(p, i) ((EtcdOp*)fedKvOp(&(p)->kv, (i)))
extern const FedKvDriver etcdKvDriver;
int etcdOverlayBuild(EtcdCursor *pCsr);
int etcdQueueAdd(
  EtcdConn *p, int eOp, const char *aKey, int nKey, const char *aVal,
  int nVal, i64 iLease, const char *zTab
);
int etcdKvApply(FedKvTxn *pKv, FedConn *pConn, const char *zMarker,
                char **pzErr);
int etcdImageRead(FedConn *pConn, const FedUndoImage *pImg, char **paNow,
                  int *pnNow, i64 *piGuard, char **pzErr);
int etcdImageRestore(FedConn *pConn, const FedUndoImage *pImg, i64 iGuard,
                     char **pzErr);
int etcdSavepoint(
  FedConn *pConn, int iRelease, int iFrom, int iTo, char **pzErr
);
int etcdRelease(FedConn *pConn, int iLevel, char **pzErr);
int etcdRollbackTo(FedConn *pConn, int iLevel, char **pzErr);

/**************************************************************************
** Interface to code in write.c.
*/
int etcdUpdate(
  FedTable *pTab, int argc, sqlite3_value **argv, i64 *piRowid, char **pzErr
);

/**************************************************************************
** Interface to code in txn.c.
*/
int etcdBegin(FedConn *pConn, int bSnapshot, char **pzErr);
int etcdCommit(FedConn *pConn, char **pzErr);
int etcdRollback(FedConn *pConn, char **pzErr);
int etcdMarkerCheck(FedConn *pConn, const char *zGid, int *pbExists,
                    char **pzErr);
int etcdMarkerRemove(FedConn *pConn, const char *zGid, char **pzErr);
int etcdMarkerList(FedConn *pConn, const char *zPrefix,
                   char ***pazGid, int *pn, char **pzErr);

/**************************************************************************
** Interface to code in undo.c.
*/
int etcdUndoImages(FedConn *pConn, FedUndoImage **paImg, int *pnImg,
                   char **pzErr);
int etcdUndoApply(FedConn *pConn, const FedUndoImage *pImg,
                  char **pzErr);

/**************************************************************************
** Interface to code in query.c.
*/
int etcdQuery(
  FedConn *pConn, const char *zQuery, int nParam, sqlite3_value **apParam,
  char ***pazRow, int *pnRow, i64 *pnChanged, char **pzErr
);

/**************************************************************************
** Interface to code in notify.c.
*/
int etcdWatchStart(FedConn *pConn, FedTable *pTab, char **pzErr);
int etcdChanges(FedConn *pConn, char ***pazRel, int *pnRel);

#endif /* ETCD_INT_H */
