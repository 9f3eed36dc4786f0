/*
** mongoInt.h: what the files of the MongoDB store (vtab/mongo/) share:
** constants, the connection, table and cursor structs, and one section of
** declarations per file.  libmongoc and libbson are included in this
** folder only.  docs/mongo.md is the user's view.
*/
#ifndef MONGO_INT_H
#define MONGO_INT_H

#include "fedInt.h"
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
struct MongoConn {
  FedConn base;                 /* Base class. Must be first */
  mongoc_client_t *pClient;
  char *zDb;                    /* The URI's database, or NULL */
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
