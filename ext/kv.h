/*
** kv.h: the shared layer of the stores that commit with one atomic
** request (FED_TXN_BATCH: Redis MULTI/EXEC, etcd Txn; next MongoDB,
** CouchDB, InfluxDB).  ext/kv.c implements it; a store includes this
** header after fedInt.h.
**
** What the layer owns, once for every such store:
**
**   FedKvHash   a hash map keyed by (namespace, key bytes)
**   FedKvTxn    the transaction: the write queue, indexed by key (read
**               your own writes), savepoint marks and rollback-to, the
**               doom reason, the commit skeleton with its fault sites
**   markers     the reserved-key check, the marker's time stamp, lists
**               of global ids
**   undo        capture of the keys a commit changes (in queue order),
**               compensation of one image (read, compare, restore)
**
** What a store supplies (FedKvDriver): its own part of each queued
** operation (the command or request it becomes), the atomic request
** itself (apply the batch under its guards), reading a key for an undo
** image and putting a before-image back.  The reads of a scan, and the
** watch that invalidates the cache, stay the store's own: the layer only
** answers "what does this transaction's queue say about this key".
**
** Notes on the order of calls (FedStore method -> layer):
**
**   xBegin(bSnapshot)       fedKvBegin: an empty queue, bActive
**   xUpdate                 the store checks the row, then for each write
**                           fedKvOpNew + its own fields + fedKvOpAppend
**                           (fedKvOpDiscard on an error in between);
**                           fedKvLast / fedKvLastWrite / fedKvGuarded say
**                           what the queue holds for a key already
**   xFilter                 the scan merges its remote rows with the queue:
**                           fedKvLastWrite per key, or fedKvKeys for every
**                           written key under a prefix, in key order
**   xSavepoint(r, f, t)     fedKvSavepoint: levels >= r released, marks
**                           f..t-1 set to the queue length
**   xRelease(l)             fedKvRelease
**   xRollbackTo(l)          fedKvRollbackTo: the queue is cut back to
**                           mark l (xOpDrop, xOpFree per op dropped), the
**                           doom is lifted, xRolledBackTo runs
**   xUndoImages             fedKvUndoCapture: the keys the queue changes
**                           (the store reads before-images, computes
**                           after-images, adds its guards)
**   xCommit                 fedKvCommit: xFlush, the doom, xApply (the one
**                           atomic request, with the marker when
**                           FedConn.zMarker is set); the queue is cleared
**                           when the outcome is known
**   xRollback               fedKvRollback: the queue is dropped
**   xUndoApply              fedKvUndoApply: xImageRead, compare with the
**                           image's after- and before-value, xImageRestore
**                           or xImageRelease
**
** Fault sites: fedKvCommit passes FED_FAULT_COMMIT only through xApply
** (the store calls it just before sending, as it knows where that is);
** fedKvSavepoint/fedKvRollbackTo pass FED_FAULT_SAVEPOINT and
** fedKvRollback FED_FAULT_ROLLBACK, for every store alike, though they
** send nothing: a test arms the same site whatever the store.
*/
#ifndef FED_KV_H
#define FED_KV_H
#include "fedInt.h"

typedef struct FedKvHash FedKvHash;
typedef struct FedKvElem FedKvElem;
typedef struct FedKvOp FedKvOp;
typedef struct FedKvTxn FedKvTxn;
typedef struct FedKvDriver FedKvDriver;
typedef struct FedKvRef FedKvRef;

/**************************************************************************
** Classes of bytes read from a store: TEXT if valid UTF-8 without NUL,
** else BLOB.  SQLite orders every TEXT value before every BLOB, and each
** class by bytes (BINARY).  One numbering for every store.
*/
#define FED_KV_TEXT 0
#define FED_KV_BLOB 1
int fedKvUtf8(const char *z, int n, int bNulOk);  /* 1: valid UTF-8 */
int fedKvIsText(const char *z, int n);  /* 1: valid UTF-8, no NUL byte */
int fedKvClass(const char *z, int n);   /* FED_KV_TEXT or FED_KV_BLOB */
int fedKvBytesCmp(const char *a, int na, const char *b, int nb);

/**************************************************************************
** A hash map keyed by (iSpace, bytes): iSpace is a store-defined small
** namespace (Redis: the database number), 0 if none.  Elements own a copy
** of their key (NUL-terminated) and carry a value for the user.
*/
struct FedKvElem {
  FedKvElem *pNext;             /* Next in the bucket */
  unsigned int h;               /* Hash of (iSpace, key) */
  int iSpace;
  int nKey;
  char *zKey;                   /* Stored just after this struct */
  void *pVal;                   /* Freed by FedKvHash.xDel */
  double r;                     /* Free for the user */
  i64 i;                        /* Free for the user */
};

struct FedKvHash {
  int nElem;
  int nBucket;
  FedKvElem **aBucket;
  void (*xDel)(void*);          /* Destructor of pVal, or NULL */
};

FedKvElem *fedKvHashFind(const FedKvHash *, int iSpace, const char *z,
                         int n);
/* Find or add.  *pbNew (may be NULL) is set when added.  NULL on OOM. */
FedKvElem *fedKvHashAdd(FedKvHash *, int iSpace, const char *z, int n,
                        int *pbNew);
void fedKvHashRemove(FedKvHash *, int iSpace, const char *z, int n);
void fedKvHashClear(FedKvHash *);       /* Empty; the struct is reusable */

#define FEDKV_EACH(pH, i, p) \
  for(i=0; i<(pH)->nBucket; i++) for(p=(pH)->aBucket[i]; p; p=p->pNext)

/**************************************************************************
** The write queue.  Each queued operation is a store struct that starts
** with a FedKvOp (its first member), FedKvDriver.szOp bytes long, kept in
** one array in queue order.  The layer owns the key (and the second key)
** of the header; the store frees the rest in xOpFree.
*/
struct FedKvOp {
  u8 eOp;                       /* Store-defined kind */
  u8 bWrite;                    /* Changes its key(s); 0: only guards them
                                ** (a compare, a condition checked at the
                                ** commit) */
  u8 bSkip;                     /* Dropped from the batch (an ignored
                                ** conflict); still in the queue */
  int iSpace;                   /* Namespace of both keys */
  char *aKey; int nKey;         /* The key (NUL-terminated copy) */
  char *aKey2; int nKey2;       /* A second key it changes (a rename's new
                                ** name), or NULL */
  int aPrev[2];                 /* Previous op on aKey, on aKey2, or -1 */
};

/*
** The store's part of a batch store.  Methods may be NULL where noted.
*/
struct FedKvDriver {
  const char *zStore;           /* Store name, first word of messages */
  int szOp;                     /* sizeof the store's op struct */
  /* Free the store's part of an op (the header's keys are the layer's). */
  void (*xOpFree)(FedKvOp *);
  /* An op leaves the queue by rollback-to: forget what the store derived
  ** from it (Redis: the shadows of its keys).  May be NULL. */
  void (*xOpDrop)(FedKvTxn *, FedKvOp *);
  /* After fedKvRollbackTo cut the queue (Redis: the statement's list
  ** tombstones).  May be NULL. */
  void (*xRolledBackTo)(FedKvTxn *);
  /* fedKvTxnClear emptied the queue (begin, commit, rollback, close):
  ** forget the store's own state of the transaction (Redis: the shadows).
  ** May be NULL. */
  void (*xCleared)(FedKvTxn *);
  /* Render a key for a message (quoting, cutting long ones). */
  void (*xRenderKey)(sqlite3_str *, const char *z, int n);

  /* The commit.  xFlush (may be NULL) queues what a statement boundary
  ** owes; xApply sends the queue as one atomic request, with the marker
  ** of zMarker (FedConn.zMarker, may be NULL), calling
  ** fedFault(FED_FAULT_COMMIT) just before.  It returns SQLITE_OK when
  ** applied, SQLITE_CONSTRAINT or SQLITE_BUSY (a guard failed: reported as
  ** SQLITE_ERROR) when surely not applied, another code when unknown or
  ** not sent (the queue is kept for xRollback). */
  int (*xFlush)(FedKvTxn *, FedConn *, char **pzErr);
  int (*xApply)(FedKvTxn *, FedConn *, const char *zMarker, char **pzErr);

  /* Compensation (fedKvUndoApply).  xImageRead reads the key of pImg as
  ** it is now, encoded as its images are (*paNow sqlite3_malloc'd, NULL
  ** when absent), and *piGuard, what xImageRestore needs to make sure the
  ** key has not changed since (or the store keeps that itself: Redis
  ** WATCHes).  xImageSame compares two images (NULL: as bytes).
  ** xImageRestore puts the before-image back: SQLITE_BUSY if the key
  ** changed since xImageRead.  xImageRelease (may be NULL) is called
  ** instead when the key is left alone. */
  int (*xImageRead)(FedConn *, const FedUndoImage *, char **paNow,
                    int *pnNow, i64 *piGuard, char **pzErr);
  int (*xImageSame)(const char *a, int na, const char *b, int nb);
  int (*xImageRestore)(FedConn *, const FedUndoImage *, i64 iGuard,
                       char **pzErr);
  void (*xImageRelease)(FedConn *);
};

/*
** The transaction of one connection.  A store embeds it (as the first
** member of its own transaction struct when its driver methods need to
** reach the rest, as Redis does).
*/
struct FedKvTxn {
  const FedKvDriver *pDrv;
  int bActive;                  /* xBegin seen, not yet ended */
  int bSnapshot;                /* Inside BEGIN...COMMIT */
  char *aOp;                    /* nOp ops of pDrv->szOp bytes each */
  int nOp, nOpAlloc;
  int *aMark;                   /* aMark[i]: nOp when savepoint i began */
  int nMark, nMarkAlloc;
  FedKvHash index;              /* (space, key) -> last op on it (elem.i) */
  char *zDoom;                  /* Why the commit must fail, or NULL */
};

void fedKvTxnInit(FedKvTxn *, const FedKvDriver *);
/* Drop the queue, the marks and the doom (bActive=0), then xCleared;
** reusable after.  Safe on a zeroed struct. */
void fedKvTxnClear(FedKvTxn *);

/* Op iOp of the queue (0 <= iOp < nOp, or nOp: the one being built). */
#define fedKvOp(pTxn, iOp) \
  ((FedKvOp*)((pTxn)->aOp + (size_t)(iOp)*(pTxn)->pDrv->szOp))

/* A zeroed op at the end of the queue, not yet in it, with its key
** copied; NULL on OOM.  Fill the store's fields, then fedKvOpAppend
** (which frees it on OOM) or fedKvOpDiscard. */
FedKvOp *fedKvOpNew(FedKvTxn *, int eOp, int bWrite, int iSpace,
                    const char *aKey, int nKey);
int fedKvOpSetKey2(FedKvOp *, const char *aKey, int nKey);
int fedKvOpAppend(FedKvTxn *);
void fedKvOpDiscard(FedKvTxn *);

/* Read your writes.  fedKvLast: the last op on the key (either of its
** keys), or -1.  fedKvPrev: the op on the same key before op iOp.
** fedKvLastWrite: the last op that changes the key, or -1; *pbTouched
** (may be NULL): some op names it.  fedKvGuarded: some op only guards
** it. */
int fedKvLast(const FedKvTxn *, int iSpace, const char *z, int n);
int fedKvPrev(const FedKvTxn *, int iOp, int iSpace, const char *z, int n);
int fedKvLastWrite(const FedKvTxn *, int iSpace, const char *z, int n,
                   int *pbTouched);
int fedKvGuarded(const FedKvTxn *, int iSpace, const char *z, int n);

/* The keys of the queue in key order (space, then bytes), each once,
** those of space iSpace that start with aPrefix (nPrefix<0: every key):
** eWhich FED_KV_LAST_WRITE, with the last op that changes the key (keys
** only guarded are left out); FED_KV_FIRST_GUARD, with the first op that
** only guards it (keys never guarded left out).  *paRef is
** sqlite3_malloc'd. */
struct FedKvRef {
  const char *a; int n;         /* The key (the op's copy) */
  int iOp;
};
#define FED_KV_LAST_WRITE  1
#define FED_KV_FIRST_GUARD 2
int fedKvKeys(const FedKvTxn *, int eWhich, int iSpace, const char *aPrefix,
              int nPrefix, FedKvRef **paRef, int *pnRef);

/* Transactions, savepoints and the doom (see the notes above). */
void fedKvBegin(FedKvTxn *, int bSnapshot);
int fedKvSavepoint(FedKvTxn *, int iRelease, int iFrom, int iTo,
                   char **pzErr);
void fedKvRelease(FedKvTxn *, int iLevel);
int fedKvRollbackTo(FedKvTxn *, int iLevel, char **pzErr);
int fedKvRollback(FedKvTxn *, char **pzErr);
/* Drop the ops from nOp on (a row or a statement failed half way). */
void fedKvTruncate(FedKvTxn *, int nOp);
/* Doom the transaction with the message zMsg (copied; the first reason
** stays).  A later fedKvCommit fails with it; fedKvRollbackTo lifts it. */
void fedKvDoom(FedKvTxn *, const char *zMsg);
/* SQLITE_ERROR with the doom's message if doomed, else SQLITE_OK. */
int fedKvDoomed(const FedKvTxn *, char **pzErr);
int fedKvCommit(FedKvTxn *, FedConn *, char **pzErr);

/**************************************************************************
** Commit markers and reserved keys.
*/
/* Refuse (SQLITE_CONSTRAINT) a write of key z[0..n) that starts with
** zReserved, the store's namespace for markers and fences. */
int fedKvReserved(const FedKvDriver *, const char *zReserved, const char *z,
                  int n, const char *zOp, const char *zTab, char **pzErr);
/* The value of a marker or fence: the unix time in decimal. */
void fedKvMarkerTime(char *zBuf, int nBuf);
/* Append a copy of z[0..n) to the list *paz of *pn strings when it
** starts with zPrefix (NULL: always).  SQLITE_OK or SQLITE_NOMEM. */
int fedKvNameAdd(char ***paz, int *pn, const char *zPrefix, const char *z,
                 int n);
void fedKvNamesFree(char **az, int n);

/**************************************************************************
** Undo images (ext/undo.c) of a batch store.
*/
/* One FedUndoImage per key the queue changes (ops not bSkip), in the order
** of their first change, key and space set, values NULL.  (*paiFirst)[j]
** and (*paiLast)[j] (may be NULL) are the first and the last op that
** change key j.  All sqlite3_malloc'd; *pa for fedUndoImagesFree. */
int fedKvUndoCapture(const FedKvTxn *, FedUndoImage **pa, int *pn,
                     int **paiFirst, int **paiLast);
/* Which key of pOp is (iSpace, z, n): 0 (aKey), 1 (aKey2), -1 neither. */
int fedKvOpSlot(const FedKvOp *, int iSpace, const char *z, int n);
/* "<store>: cannot undo key K on server "S": another client changed it
** after this transaction wrote it; it was left as it is" */
void fedKvUndoBusy(const FedKvDriver *, FedConn *, const FedUndoImage *,
                   char **pzErr);
/* FedStore.xUndoApply for a batch store, through the driver's xImage*. */
int fedKvUndoApply(const FedKvDriver *, FedConn *, const FedUndoImage *,
                   char **pzErr);

#endif /* FED_KV_H */
