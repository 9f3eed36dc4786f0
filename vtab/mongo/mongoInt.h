/*
** mongoInt.h: what the files of the MongoDB store (vtab/mongo/) share:
** constants, the connection, table and cursor structs, and one section of
** declarations per file.  libmongoc and libbson are included in this
** folder only.  docs/mongo.md is the user's view.
*/
#ifndef MONGO_INT_H
#define MONGO_INT_H

#include "fedInt.h"
#include "kv.h"
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#define MONGO_STORE "mongo"

/* Column kinds (FedColumn.eKind). */
#define MONGO_KIND_ID    0      /* _id */
#define MONGO_KIND_DOC   1      /* doc: the whole document as JSON */
#define MONGO_KIND_PATH  2      /* a declared field path */

/* The affinity a declared column applies to what it reads, as a column of
** a local SQLite table applies it when a value is stored. */
#define MONGO_AFF_NONE    0
#define MONGO_AFF_INTEGER 1     /* INTEGER and NUMERIC */
#define MONGO_AFF_REAL    2
#define MONGO_AFF_TEXT    3

/* One column's reading rule. */
typedef struct MongoCol MongoCol;
struct MongoCol {
  int eKind;                    /* MONGO_KIND_* */
  int eAff;                     /* MONGO_AFF_* */
  char *zPath;                  /* Dotted path ("notifications.email") */
  int bTop;                     /* The path is one top-level field */
};

/* Table state (FedTable.pStoreTab). */
typedef struct MongoTable MongoTable;
struct MongoTable {
  char *zDb;                    /* Database, or NULL: the URI's */
  char *zColl;                  /* Collection */
  i64 nBatch;                   /* batch_size: documents per reply */
  int nCol;
  MongoCol *aCol;               /* One per FedTable.aCol */
};

/* A value read from a document, before SQLite sees it: the SQLite type and
** the bytes (z/n point into the document or into zOwn). */
typedef struct MongoVal MongoVal;
struct MongoVal {
  int eType;                    /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL */
  i64 i;
  double r;
  const char *z;
  int n;
  char *zOwn;                   /* bson_free() it */
};

/**************************************************************************
** conn.c: the FedStore, connections, errors.
*/
typedef struct MongoConn MongoConn;
typedef struct MongoPlan MongoPlan;
struct MongoConn {
  FedConn base;                 /* Base class. Must be first */
  mongoc_client_t *pClient;
  char *zDb;                    /* The URI's database, or NULL */
  FedKvTxn kv;                  /* The write queue (MongoOp), savepoint
                                ** marks (ext/kv.h; write.c) */
  MongoPlan *pPlan;             /* The commit computed by xUndoImages, sent
                                ** by xCommit (commit.c), or NULL */
  int bInterrupted;             /* A read ended by sqlite3_interrupt() */
};
extern const char *const azMongoTableOpt[];
int mongoRc(int rc, char **pzErr);
/* The database a table reads: its own, or the URI's; NULL if neither. */
const char *mongoTableDb(FedTable *);
/* Defined in conn.c, which owns libmongoc's handles. */
int mongoConnSample(FedConn *, const char *zDb, const char *zColl, int nDoc,
                    bson_t ***paDoc, int *pnDoc, char **pzErr);
int mongoConnCollections(FedConn *, const char *zDb, char ***pazName,
                         int *pnName, char **pzErr);

/**************************************************************************
** table.c: options, columns, sampling (fed_import), pushdown.
*/
int mongoDescribe(FedConn *, FedTable *, char **pzErr);
int mongoColumns(FedTable *, char **pzErr);
int mongoPushable(FedTable *, int iCol, int op, sqlite3_value *pRhs);
int mongoOrderable(FedTable *, int iCol, int bDesc);
void mongoTableFree(FedTable *);
int mongoListTables(FedConn *, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr);

/**************************************************************************
** types.c (pure): BSON values as SQLite values.
*/
/* The value of column pCol in document pDoc. */
int mongoColumnValue(const bson_t *pDoc, const MongoCol *pCol, MongoVal *pVal);
void mongoValClear(MongoVal *);
/* The SQLite value of one BSON element (no affinity). */
int mongoIterValue(const bson_iter_t *, MongoVal *);
/* Apply a declared affinity, as a local table would on INSERT. */
/* pNum is a prepared "SELECT ?1" on the table's database: SQLite's own
** text-to-number rule, through sqlite3_value_numeric_type(). */
int mongoApplyAffinity(MongoVal *, int eAff, sqlite3_stmt *pNum);
void mongoResult(sqlite3_context *, const MongoVal *);
/* 1 if the two values are equal under SQLite's "=" without affinity. */
int mongoValEqual(const MongoVal *, sqlite3_value *);
/* Date text: "YYYY-MM-DD HH:MM:SS[.fff]+00:00" into z (>= 40 bytes);
** returns 0 when the year is outside 1..9999. */
int mongoDateText(i64 iMs, char *z);
/* The "type class" an element would read as, for sampling. */
int mongoIterClass(const bson_iter_t *);

/**************************************************************************
** plan.c (pure): the find command of a scan, and its fed_explain text.
*/
typedef struct MongoFind MongoFind;
struct MongoFind {
  bson_t filter;                /* The find's filter */
  bson_t opts;                  /* projection, skip, limit, batchSize */
  /* _id terms are also checked here, exactly (the remote filter is only a
  ** superset: decimal 5 equals 5 remotely but reads as the text '5').
  ** Row passes if for every term some value of it equals the _id. */
  int nIdTerm;                  /* _id terms */
  int nIdVal;
  sqlite3_value **apIdVal;      /* Copies (sqlite3_value_dup) */
  int *aiIdTerm;                /* Term of each value */
  i64 nLimit, nSkip;            /* Applied here when nIdTerm>0 (-1: none) */
  int bEmpty;                   /* No row can match: nothing is sent */
  int bSimple;                  /* A string range: send collation "simple" */
};
/* FED_PUSH_* for ranges and LIKE/GLOB on a column (table.c asks). */
int mongoRangePushable(const MongoCol *, int op, sqlite3_value *pRhs);
int mongoPlanFind(FedTable *, const FedPlan *, int argc, sqlite3_value **argv,
                  MongoFind *, char **pzErr);
void mongoFindClear(MongoFind *);
/* {"find": coll, "filter": ..., <opts>} as canonical extended JSON
** (sqlite3_malloc'd). */
char *mongoFindText(const char *zColl, const MongoFind *);

/**************************************************************************
** scan.c: cursors.
*/
int mongoOpen(FedCursor *, char **pzErr);
void mongoClose(FedCursor *);
int mongoFilter(FedCursor *, int argc, sqlite3_value **argv, char **pzErr);
int mongoNext(FedCursor *, char **pzErr);
int mongoEof(FedCursor *);
int mongoColumn(FedCursor *, sqlite3_context *, int iCol);
int mongoRowid(FedCursor *, i64 *piRowid);

/**************************************************************************
** write.c: INSERT, UPDATE, DELETE queued (ext/kv.c), documents built from
** declared paths, SQLite values as BSON; the transaction methods.
*/
#define MONGO_OP_INSERT 1       /* pDoc; eConflict REPLACE: an upsert */
#define MONGO_OP_UPDATE 2       /* apVal: the new values of the columns */
#define MONGO_OP_DELETE 3
typedef struct MongoOp MongoOp;
struct MongoOp {
  FedKvOp hdr;                  /* The batch layer's part: the key is the
                                ** database, the collection and the _id
                                ** (mongoKey) */
  char *zTab;                   /* Local table name, for messages */
  int eConflict;                /* SQLITE_ABORT, _IGNORE, _REPLACE */
  bson_t *pDoc;                 /* INSERT: the document (bson_destroy) */
  int nVal;                     /* UPDATE: columns of the table */
  sqlite3_value **apVal;        /* UPDATE: new values (NULL: _id) */
  MongoCol *aCol;               /* UPDATE: copies of the columns' rules */
};
extern const FedKvDriver mongoKvDriver;
#define mongoOp(p, i) ((MongoOp*)fedKvOp(&(p)->kv, (i)))
/* The queue key of an _id read as SQLite value pV in zDb.zColl. */
int mongoKey(const char *zDb, const char *zColl, const MongoVal *pId,
             char **paKey, int *pnKey);
/* The parts of a key: database, collection, and the _id's SQLite value
** (pointing into the key). */
void mongoKeySplit(const char *aKey, const char **pzDb, const char **pzColl,
                   MongoVal *pId);
/* Append SQLite value pV under zName as BSON (INTEGER: int32 when it
** fits, else int64; REAL: double; TEXT: string; BLOB: binary; NULL:
** null). */
void mongoAppendVal(bson_t *, const char *zName, const MongoVal *pV);
/* A MongoVal that points into sqlite3_value pV. */
void mongoValFrom(sqlite3_value *pV, MongoVal *p);
/* Parse JSON text that must be an object (bson_init_from_json takes an
** array too) into pDoc (initialised here on success). */
int mongoJsonObject(const char *z, int n, bson_t *pDoc, bson_error_t *pErr);
/* "_id=<SQL literal>" for messages (sqlite3_malloc'd). */
char *mongoIdText(const MongoVal *pId);
int mongoUpdate(FedTable *, int argc, sqlite3_value **argv, i64 *piRowid,
                char **pzErr);
int mongoBegin(FedConn *, int bSnapshot, char **pzErr);
int mongoSavepoint(FedConn *, int iRelease, int iFrom, int iTo,
                   char **pzErr);
int mongoRelease(FedConn *, int iLevel, char **pzErr);
int mongoRollbackTo(FedConn *, int iLevel, char **pzErr);
int mongoRollback(FedConn *, char **pzErr);
int mongoCommit(FedConn *, char **pzErr);
/* Apply patches (declared paths set or unset) to document pIn (NULL:
** none) into pOut (initialised by the caller), _id first when pId is
** given.  azPath[i] is a dotted path, apVal[i] its value (NULL or an SQL
** NULL: unset).  SQLITE_ERROR with *pzErr when a path goes through a
** field that is not a document, or two paths overlap. */
int mongoPatch(const bson_t *pIn, const MongoVal *pId, int n,
               const char *const *azPath, const MongoVal *const *apVal,
               bson_t *pOut, char **pzErr);

/**************************************************************************
** commit.c: the commit: before-images read by _id, the ordered bulk write
** commands, compensation of a commit that failed half way, undo images.
*/
void mongoPlanFree(MongoPlan *);
int mongoKvApply(FedKvTxn *, FedConn *, const char *zMarker, char **pzErr);
int mongoUndoImages(FedConn *, FedUndoImage **paImg, int *pnImg,
                    char **pzErr);
int mongoUndoApply(FedConn *, const FedUndoImage *, char **pzErr);
int mongoImageRead(FedConn *, const FedUndoImage *, char **paNow,
                   int *pnNow, i64 *piGuard, char **pzErr);
int mongoImageSame(const char *a, int na, const char *b, int nb);
int mongoImageRestore(FedConn *, const FedUndoImage *, i64 iGuard,
                      char **pzErr);

/**************************************************************************
** stream.c: interruptible sockets.
*/
/* Wrap every stream of the connection's client (call before its first
** command). */
void mongoStreamInstall(MongoConn *);
/* 1 (once) if a read of the connection was ended by an interrupt. */
int mongoStreamInterrupted(MongoConn *);

/**************************************************************************
** query.c: the pass-through (fed_query, fed_exec).
*/
int mongoQuery(FedConn *, const char *zQuery, int nParam,
               sqlite3_value **apParam, char ***pazRow, int *pnRow,
               i64 *pnChanged, char **pzErr);

#endif /* MONGO_INT_H */
