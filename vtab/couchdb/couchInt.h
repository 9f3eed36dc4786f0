/*
** couchInt.h: what the files of the CouchDB store (vtab/couchdb/) share:
** constants, the connection, table and cursor structs, and one section of
** declarations per file.  libcurl and jansson reach this folder through
** vtab/http.h only.  docs/couchdb.md is the user's view.
*/
#ifndef COUCH_INT_H
#define COUCH_INT_H

#include "fedInt.h"
#include "../http.h"
#include <stdlib.h>
#include <string.h>

#define COUCH_STORE "couchdb"

/* Column kinds (FedColumn.eKind). */
#define COUCH_KIND_ID    0      /* _id */
#define COUCH_KIND_REV   1      /* _rev */
#define COUCH_KIND_DOC   2      /* doc: the whole document as JSON */
#define COUCH_KIND_PATH  3      /* a declared field path */

/* The affinity a declared column applies to what it reads, as a column of
** a local SQLite table applies it when a value is stored. */
#define COUCH_AFF_NONE    0
#define COUCH_AFF_INTEGER 1     /* INTEGER and NUMERIC */
#define COUCH_AFF_REAL    2
#define COUCH_AFF_TEXT    3

/* One column's reading rule. */
typedef struct CouchCol CouchCol;
struct CouchCol {
  int eKind;                    /* COUCH_KIND_* */
  int eAff;                     /* COUCH_AFF_* */
  char *zPath;                  /* Dotted path ("address.city"), or NULL */
  u8 bTop;                      /* The path is one top-level field */
  u8 bMango;                    /* Mango can name the path: no segment is
                                ** a number (an array index), starts with
                                ** '$' or holds a backslash */
};

/* Table state (FedTable.pStoreTab). */
typedef struct CouchTable CouchTable;
struct CouchTable {
  char *zDb;                    /* Database name (unescaped) */
  i64 nPage;                    /* page_size: documents per request */
  int nCol;
  CouchCol *aCol;               /* One per FedTable.aCol */
};

/* A value read from a document, before SQLite sees it. */
typedef struct CouchVal CouchVal;
struct CouchVal {
  int eType;                    /* SQLITE_INTEGER, _FLOAT, _TEXT, _NULL */
  i64 i;
  double r;
  const char *z;                /* Text: into the document or zOwn */
  int n;
  char *zOwn;                   /* sqlite3_free() it */
};

/**************************************************************************
** conn.c: the FedStore, connections, requests, errors.
*/
typedef struct CouchConn CouchConn;
struct CouchConn {
  FedConn base;                 /* Base class. Must be first */
  FedHttp *pHttp;
  i64 nSample;                  /* Server's sample_size */
};
extern const char *const azCouchTableOpt[];
int couchRc(int rc, char **pzErr);
/* One request; *ppOut gets the parsed reply (json_decref it), NULL if the
** reply was empty.  zExplain NULL: "METHOD path body".  *piExplain (may be
** NULL) gets the fed_explain entry. */
int couchCall(CouchConn *, const char *zMethod, const char *zPath,
              json_t *pBody, const char *zExplain, json_t **ppOut,
              i64 *piExplain, char **pzErr);
/* The databases of the server (GET /_all_dbs), those starting with '_'
** left out, in the server's order. */
int couchListDbs(CouchConn *, char ***pazName, int *pnName, char **pzErr);

/**************************************************************************
** table.c: options, columns, sampling (fed_import), pushdown.
*/
int couchDescribe(FedConn *, FedTable *, char **pzErr);
int couchColumns(FedTable *, char **pzErr);
int couchPushable(FedTable *, int iCol, int op, sqlite3_value *pRhs);
int couchOrderable(FedTable *, int iCol, int bDesc);
void couchTableFree(FedTable *);
int couchListTables(FedConn *, const char *zSchema, char ***pazName,
                    int *pnName, char **pzErr);
/* 1 if every character of the UTF-8 text z[0..n) is below U+D800: such a
** bound compares with every key alike in byte order (CouchDB's raw
** collation) and in UTF-16 order (JavaScript's, pouchdb-server's). */
int couchSafeBound(const char *z, int n);

/**************************************************************************
** types.c (pure): JSON values as SQLite values.
*/
/* The value of column pCol in document pDoc. */
int couchColumnValue(json_t *pDoc, const CouchCol *pCol, CouchVal *pVal);
/* The SQLite value of one JSON value (no affinity); NULL: SQL NULL. */
int couchJsonValue(json_t *pJson, CouchVal *pVal);
void couchValClear(CouchVal *);
/* Apply a declared affinity, as a local table would on INSERT.  pNum is a
** prepared "SELECT ?1" on the table's database (SQLite's own text-to-
** number rule through sqlite3_value_numeric_type()). */
int couchApplyAffinity(CouchVal *, int eAff, sqlite3_stmt *pNum);
void couchResult(sqlite3_context *, const CouchVal *);
/* The SQLite type class a JSON value reads as, for sampling. */
int couchJsonClass(json_t *);

/**************************************************************************
** plan.c (pure): what a scan asks for, and each page's request.
*/
#define COUCH_SCAN_ALL   0      /* GET _all_docs, in key order */
#define COUCH_SCAN_KEYS  1      /* POST _all_docs {"keys": [...]} */
#define COUCH_SCAN_EMPTY 2      /* No row can match: nothing is sent */
#define COUCH_SCAN_FIND  3      /* POST _find {"selector": ...}, a superset
                                ** of the rows that SQLite re-checks */

/* One _id condition the scan checks itself (exactly, as SQLite would). */
typedef struct CouchIdCheck CouchIdCheck;
struct CouchIdCheck {
  int op;                       /* FED_OP_EQ, _GT, _GE, _LT, _LE */
  char *z;                      /* The text value */
  int n;
};

typedef struct CouchScan CouchScan;
struct CouchScan {
  int eMode;                    /* COUCH_SCAN_* */
  char *zLo; int nLo;           /* Start key (ALL), or NULL */
  char *zHi; int nHi;           /* End key, inclusive (ALL), or NULL */
  int nKey;                     /* KEYS: sorted, distinct */
  char **azKey; int *anKey;
  int nCheck;
  CouchIdCheck *aCheck;
  i64 nLimit;                   /* -1: none */
  i64 nSkip;
  json_t *pSelector;            /* FIND: the selector */
  json_t *pFields;              /* FIND: the fields to return, or NULL */
};
int couchPlanScan(FedTable *, const FedPlan *, int argc, sqlite3_value **argv,
                  CouchScan *, char **pzErr);
void couchScanClear(CouchScan *);
/* 1 if the _id z[0..n) passes every check. */
int couchScanCheck(const CouchScan *, const char *z, int n);
/* The request of one page: ALL from zAfter (the last key of the previous
** page, NULL for the first), KEYS from key iKey, FIND from zBookmark
** (the previous reply's, when the server sends one) or else after nDone
** documents (skip).  *pzPath is the path and query (sqlite3_malloc'd);
** *ppBody the JSON body or NULL. */
int couchPlanPage(const char *zDb, const CouchScan *, i64 nPage,
                  const char *zAfter, int nAfter, int iKey,
                  const char *zBookmark, i64 nDone,
                  char **pzPath, json_t **ppBody);

/**************************************************************************
** scan.c: cursors.
*/
int couchOpen(FedCursor *, char **pzErr);
void couchClose(FedCursor *);
int couchFilter(FedCursor *, int argc, sqlite3_value **argv, char **pzErr);
int couchNext(FedCursor *, char **pzErr);
int couchEof(FedCursor *);
int couchColumn(FedCursor *, sqlite3_context *, int iCol);
int couchRowid(FedCursor *, i64 *piRowid);
/* 0 if a row of an _all_docs reply (include_docs=true) has neither its
** document (null for a deleted one) nor an "error" (a key that names no
** document): as if include_docs had not arrived, seen only when an
** allocation failed inside libcurl; the caller asks once more. */
int couchPageHasDocs(json_t *pPage);

/**************************************************************************
** query.c: pass-through.
*/
int couchQuery(FedConn *, const char *zQuery, int nParam,
               sqlite3_value **apParam, char ***pazRow, int *pnRow,
               i64 *pnChanged, char **pzErr);

#endif /* COUCH_INT_H */
