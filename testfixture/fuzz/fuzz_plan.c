/*
** fuzz_plan.c: libFuzzer target for the plan's text form (ext/plan.c),
** the idxStr that travels from xBestIndex to xFilter.
**
** The input is an idxStr.  fedPlanDecode must reject it or decode it; a
** decoded plan must encode to a string that decodes to the same plan and
** encodes to the same string again (abort() otherwise).
*/
#include "fedInt.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(const char *zWhat, const char *zIn, const char *zOut){
  fprintf(stderr, "fuzz_plan: %s\n  input:  %s\n  output: %s\n", zWhat,
          zIn, zOut ? zOut : "(null)");
  abort();
}

/* Non-zero if the two plans differ in anything xFilter reads. */
static int planDiffers(const FedPlan *a, const FedPlan *b){
  int i;
  if( a->nTerm!=b->nTerm || a->nOrder!=b->nOrder
   || a->iLimitArg!=b->iLimitArg || a->iOffsetArg!=b->iOffsetArg
   || a->colUsed!=b->colUsed ) return 1;
  for(i=0; i<a->nTerm; i++){
    const FedPlanTerm *s = &a->aTerm[i], *t = &b->aTerm[i];
    if( s->iCol!=t->iCol || s->op!=t->op || s->iArg!=t->iArg
     || s->bExact!=t->bExact ) return 1;
  }
  for(i=0; i<a->nOrder; i++){
    if( a->aOrderCol[i]!=b->aOrderCol[i]
     || a->aOrderDesc[i]!=b->aOrderDesc[i] ) return 1;
  }
  return 0;
}

/* What a decoded plan promises xFilter: ops and columns in range. */
static void checkSane(const FedPlan *p, const char *zIn){
  int i;
  for(i=0; i<p->nTerm; i++){
    const FedPlanTerm *t = &p->aTerm[i];
    if( t->op<FED_OP_EQ || t->op>FED_OP_IN || t->iCol<-1
     || t->iCol>=FED_MAX_COLUMNS || t->iArg<-1 ){
      fail("decoded term out of range", zIn, 0);
    }
  }
  for(i=0; i<p->nOrder; i++){
    if( p->aOrderCol[i]<0 || p->aOrderCol[i]>=FED_MAX_COLUMNS ){
      fail("decoded ORDER BY column out of range", zIn, 0);
    }
  }
  for(i=-1; i<=64; i++) fedPlanColUsed(p, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  char *zIn;
  FedPlan *p1 = 0, *p2 = 0;
  char *z1 = 0, *z2 = 0;
  int rc;

  if( nData>65536 ) return 0;
  zIn = malloc(nData+1);
  if( zIn==0 ) return 0;
  memcpy(zIn, aData, nData);
  zIn[nData] = 0;

  rc = fedPlanDecode(zIn, &p1);
  if( rc!=SQLITE_OK ){
    if( rc!=SQLITE_CORRUPT_VTAB && rc!=SQLITE_NOMEM ){
      fail("unexpected result code", zIn, 0);
    }
    if( p1 ) fail("plan left after an error", zIn, 0);
    free(zIn);
    return 0;
  }
  checkSane(p1, zIn);
  z1 = fedPlanEncode(p1);
  if( z1==0 ) fail("fedPlanEncode returned NULL", zIn, 0);
  if( fedPlanDecode(z1, &p2)!=SQLITE_OK ){
    fail("the encoding of a decoded plan does not decode", zIn, z1);
  }
  if( planDiffers(p1, p2) ) fail("round trip changed the plan", zIn, z1);
  z2 = fedPlanEncode(p2);
  if( z2==0 || strcmp(z1, z2)!=0 ) fail("encoding is not stable", z1, z2);

  sqlite3_free(z1);
  sqlite3_free(z2);
  fedPlanFree(p1);
  fedPlanFree(p2);
  free(zIn);
  return 0;
}
