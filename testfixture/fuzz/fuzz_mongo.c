/*
** fuzz_mongo.c: libFuzzer target for the MongoDB store's find builder
** (vtab/mongo/plan.c, with types.c: the store's pure files), without a
** server: libbson only.
**
** Input: a mode byte (unused), then NUL-separated parts: the columns, one
** character each ('i' _id, 'd' doc, any other a declared path whose path
** and affinity the character picks), the plan text (idxStr, as
** ext/plan.c encodes it), then values, each a type letter (i f t b n) and
** its text.  The find is built; its fed_explain text must be valid JSON.
*/
#include "mongoInt.h"
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

static const char *const azPath[] = { "a", "b.c", "l.0", "x.1.y", "n" };
static const int aAff[] = {
  MONGO_AFF_NONE, MONGO_AFF_INTEGER, MONGO_AFF_REAL, MONGO_AFF_TEXT
};

static void mongoFuzzFind(sqlite3 *db, const char *zCols, const char *zPlan, int nVal,
                          sqlite3_value **apVal){
  FedTable tab;
  MongoTable mt;
  MongoCol aCol[FED_MAX_COLUMNS];
  FedPlan *pPlan = 0;
  MongoFind *pFind;
  void *pAlloc;
  char *zErr = 0;
  int i, rc;

  memset(&tab, 0, sizeof(tab));
  memset(&mt, 0, sizeof(mt));
  memset(aCol, 0, sizeof(aCol));
  tab.zName = "t";
  tab.pStoreTab = &mt;
  tab.iPk = -1;
  mt.zColl = "c";
  mt.nBatch = 3;
  mt.aCol = aCol;
  for(i=0; zCols[i] && i<FED_MAX_COLUMNS; i++){
    unsigned char c = (unsigned char)zCols[i];
    if( c=='i' ){
      aCol[i].eKind = MONGO_KIND_ID;
      if( tab.iPk<0 ) tab.iPk = i;
    }else if( c=='d' ){
      aCol[i].eKind = MONGO_KIND_DOC;
    }else{
      aCol[i].eKind = MONGO_KIND_PATH;
      aCol[i].zPath = (char*)azPath[c%5];
      aCol[i].bTop = strchr(aCol[i].zPath, '.')==0;
      aCol[i].eAff = aAff[(c/5)%4];
    }
  }
  mt.nCol = i;
  if( fedPlanDecode(zPlan, &pPlan)!=SQLITE_OK ) return;
  /* Only terms the planner could make: no IN list (only SQLite's xFilter
  ** gives one), arguments in range, pushable terms (others IS NULL). */
  for(i=0; i<pPlan->nTerm; i++){
    FedPlanTerm *t = &pPlan->aTerm[i];
    if( t->op==FED_OP_IN ) t->op = FED_OP_EQ;
    if( t->iArg>=nVal ) t->iArg = -1;
    if( t->iArg<0 && t->op!=FED_OP_ISNULL && t->op!=FED_OP_NOTNULL ){
      t->op = FED_OP_ISNULL;
    }
    if( t->iCol>=0 && t->iCol<mt.nCol
     && (t->op==FED_OP_GT || t->op==FED_OP_GE || t->op==FED_OP_LT
         || t->op==FED_OP_LE || t->op==FED_OP_LIKE || t->op==FED_OP_GLOB)
     && mongoRangePushable(&aCol[t->iCol], t->op,
                           t->iArg>=0 ? apVal[t->iArg] : 0)==FED_PUSH_NO ){
      t->op = FED_OP_ISNULL;
    }
  }
  if( pPlan->iLimitArg>=nVal ) pPlan->iLimitArg = -1;
  if( pPlan->iOffsetArg>=nVal ) pPlan->iOffsetArg = -1;
  /* MongoFind holds 128-byte aligned bson_t's. */
  pAlloc = malloc(sizeof(MongoFind) + 128);
  pFind = (MongoFind*)(((uintptr_t)pAlloc + 127) & ~(uintptr_t)127);
  rc = mongoPlanFind(&tab, pPlan, nVal, apVal, pFind, &zErr);
  if( rc==SQLITE_OK ){
    char *zText = mongoFindText("c", pFind);
    if( zText ){
      /* Valid JSON (libbson's own parser cannot read every query back:
      ** it takes {"$type": [...]} for its legacy binary form). */
      sqlite3_stmt *pStmt = 0;
      sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &pStmt, 0);
      sqlite3_bind_text(pStmt, 1, zText, -1, SQLITE_STATIC);
      assert( sqlite3_step(pStmt)==SQLITE_ROW );
      assert( sqlite3_column_int(pStmt, 0)==1 );
      sqlite3_finalize(pStmt);
      sqlite3_free(zText);
    }
  }
  mongoFindClear(pFind);
  free(pAlloc);
  fedPlanFree(pPlan);
  sqlite3_free(zErr);
}

#define MAX_PART 12

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  static sqlite3 *db = 0;
  char *zBuf;
  char *azPart[MAX_PART];
  int nPart = 0;
  size_t i;
  if( nData<2 || nData>4096 ) return 0;
  if( db==0 ) sqlite3_open(":memory:", &db);
  zBuf = malloc(nData);
  memcpy(zBuf, aData+1, nData-1);
  zBuf[nData-1] = 0;
  azPart[nPart++] = zBuf;
  for(i=0; i<nData-1 && nPart<MAX_PART; i++){
    if( zBuf[i]==0 && i+1<nData-1 ) azPart[nPart++] = &zBuf[i+1];
  }
  if( nPart>=2 ){
    sqlite3_value *apVal[MAX_PART];
    int nVal = 0, k;
    for(k=2; k<nPart; k++){
      sqlite3_stmt *pStmt = 0;
      const char *z = azPart[k];
      sqlite3_prepare_v2(db, "SELECT ?1", -1, &pStmt, 0);
      switch( z[0] ){
        case 'i': sqlite3_bind_int64(pStmt, 1, strtoll(z+1, 0, 10)); break;
        case 'f': sqlite3_bind_double(pStmt, 1, strtod(z+1, 0)); break;
        case 'b': sqlite3_bind_blob(pStmt, 1, z+1, (int)strlen(z+1),
                                    SQLITE_TRANSIENT); break;
        case 'n': break;
        default:  sqlite3_bind_text(pStmt, 1, z[0] ? z+1 : z, -1,
                                    SQLITE_TRANSIENT); break;
      }
      sqlite3_step(pStmt);
      apVal[nVal++] = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
      sqlite3_finalize(pStmt);
    }
    mongoFuzzFind(db, azPart[0], azPart[1], nVal, apVal);
    for(k=0; k<nVal; k++) sqlite3_value_free(apVal[k]);
  }
  free(zBuf);
  return 0;
}
