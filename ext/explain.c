/*
** explain.c: fed_explain, an eponymous table of the last remote commands
** this connection sent, with their bound values, rows and time:
**
**   SELECT seq, server, command, params, rows, time_ms FROM fed_explain;
**   DELETE FROM fed_explain;            -- forget them
**
** Stores call fedExplainAdd() when they send a command and
** fedExplainRows() as rows arrive.  The ring keeps FED_EXPLAIN_MAX entries.
*/
#include "fedInt.h"
#include <sys/time.h>

#define FED_EXPLAIN_MAX 256

i64 fedNowUsec(void){
  struct timeval tv;
  gettimeofday(&tv, 0);
  return (i64)tv.tv_sec*1000000 + tv.tv_usec;
}

static void explainFreeEntry(FedExplain *p){
  if( p->aValue ){
    sqlite3_free(p->aValue);      /* zServer and zCommand too */
  }else{
    sqlite3_free(p->zServer);
    sqlite3_free(p->zCommand);
  }
  sqlite3_free(p->zParams);
  memset(p, 0, sizeof(*p));
}

void fedExplainClear(FedContext *pCtx){
  int i;
  if( pCtx->aExplain==0 ) return;
  for(i=0; i<FED_EXPLAIN_MAX; i++) explainFreeEntry(&pCtx->aExplain[i]);
}

/* Out of memory here loses the record, never the command. */
i64 fedExplainAdd(
  FedContext *pCtx, const char *zServer, const char *zCommand,
  const char *zParams
){
  FedExplain *p;
  if( pCtx->aExplain==0 ){
    pCtx->aExplain = sqlite3_malloc64(sizeof(FedExplain)*FED_EXPLAIN_MAX);
    if( pCtx->aExplain==0 ) return 0;
    memset(pCtx->aExplain, 0, sizeof(FedExplain)*FED_EXPLAIN_MAX);
  }
  pCtx->iExplainSeq++;
  p = &pCtx->aExplain[pCtx->iExplainSeq % FED_EXPLAIN_MAX];
  explainFreeEntry(p);
  p->iSeq = pCtx->iExplainSeq;
  p->zServer = zServer ? fedStrdup(zServer, -1) : 0;
  p->zCommand = zCommand ? fedStrdup(zCommand, -1) : 0;
  p->zParams = zParams ? fedStrdup(zParams, -1) : 0;
  p->iStart = fedNowUsec();
  p->nUsec = -1;
  return p->iSeq;
}

/* Values shown of a command's bound values; the rest are counted. */
#define FED_EXPLAIN_VALUES 20

/*
** A command recorded with its values as they are sent: one allocation
** holds the server, the command and a copy of the values shown (for each,
** its length as an int, -1 for NULL, its format byte, its bytes); the JSON
** is made by explainValuesJson() when fed_explain is read.  A lookup run
** many times thus pays one copy, not the JSON of values nobody reads.
*/
i64 fedExplainAddValues(
  FedContext *pCtx, const char *zServer, const char *zCommand, int nVal,
  const char *const *azVal, const int *anVal, const int *aFmt
){
  i64 iSeq, nByte;
  int nServer, nCommand, i, nShow = nVal<FED_EXPLAIN_VALUES ? nVal : FED_EXPLAIN_VALUES;
  FedExplain *p;
  char *a, *z;
  if( nVal<=0 ) return fedExplainAdd(pCtx, zServer, zCommand, 0);
  nServer = (int)strlen(zServer)+1;
  nCommand = (int)strlen(zCommand)+1;
  nByte = nServer + nCommand;
  for(i=0; i<nShow; i++){
    nByte += sizeof(int) + 1 + (azVal[i] && !aFmt[i] ? anVal[i] : 0);
  }
  iSeq = fedExplainAdd(pCtx, 0, 0, 0);
  if( iSeq==0 ) return 0;
  p = &pCtx->aExplain[iSeq % FED_EXPLAIN_MAX];
  a = sqlite3_malloc64(nByte);
  if( a==0 ) return iSeq;
  memcpy(a, zServer, nServer);
  memcpy(&a[nServer], zCommand, nCommand);
  z = &a[nServer+nCommand];
  for(i=0; i<nShow; i++){
    int n = azVal[i]==0 ? -1 : anVal[i];
    memcpy(z, &n, sizeof(int));
    z += sizeof(int);
    *z++ = (char)(aFmt[i]!=0);
    if( n>0 && !aFmt[i] ){
      memcpy(z, azVal[i], n);
      z += n;
    }
  }
  p->aValue = a;
  p->zServer = a;
  p->zCommand = &a[nServer];
  p->nValue = nVal;
  return iSeq;
}

/* The JSON array of an entry's values (long lists shortened). */
static char *explainValuesJson(FedExplain *p){
  sqlite3_str *s = sqlite3_str_new(0);
  const char *z = p->zCommand + strlen(p->zCommand) + 1;
  int i;
  sqlite3_str_appendchar(s, 1, '[');
  for(i=0; i<p->nValue; i++){
    int n;
    if( i ) sqlite3_str_appendchar(s, 1, ',');
    if( i>=FED_EXPLAIN_VALUES ){
      sqlite3_str_appendf(s, "\"... %d more\"", p->nValue - i);
      break;
    }
    memcpy(&n, z, sizeof(int));
    z += sizeof(int);
    if( n<0 ){
      sqlite3_str_appendall(s, "null");
      z++;
    }else if( *z++ ){
      sqlite3_str_appendf(s, "\"<%d bytes>\"", n);
    }else{
      fedJsonQuote(s, z, n);
      z += n;
    }
  }
  sqlite3_str_appendchar(s, 1, ']');
  return sqlite3_str_finish(s);
}

/* Of n commands about to be recorded in a row, the number whose entries
** the later ones would overwrite before anyone could read them (a
** pipeline of 1000 reads).  Their sequence ids are used up here, so the
** caller records only the rest and the ring ends exactly as if it had
** recorded all n. */
i64 fedExplainSkip(FedContext *pCtx, i64 n){
  i64 nSkip = n>FED_EXPLAIN_MAX ? n-FED_EXPLAIN_MAX : 0;
  pCtx->iExplainSeq += nSkip;
  return nSkip;
}

void fedExplainRows(FedContext *pCtx, i64 iSeq, i64 nRow, int bDone){
  FedExplain *p;
  if( pCtx->aExplain==0 || iSeq<=0 ) return;
  p = &pCtx->aExplain[iSeq % FED_EXPLAIN_MAX];
  if( p->iSeq!=iSeq ) return;
  p->nRow = nRow;
  if( bDone && p->nUsec<0 ) p->nUsec = fedNowUsec() - p->iStart;
}

/**************************************************************************
** The eponymous table (eponymous.c): the live entries of the ring, oldest
** first, with their sequence ids as rowids.
*/
static int explainLoad(
  FedContext *pCtx, FedEpoRows *pRows, int idxNum, int argc,
  sqlite3_value **argv, char **pzErr
){
  i64 iSeq = pCtx->iExplainSeq - FED_EXPLAIN_MAX + 1;
  (void)idxNum; (void)argc; (void)argv; (void)pzErr;
  if( pCtx->aExplain==0 ) return SQLITE_OK;
  if( iSeq<1 ) iSeq = 1;
  for(; iSeq<=pCtx->iExplainSeq && fedEpoRc(pRows)==SQLITE_OK; iSeq++){
    FedExplain *p = &pCtx->aExplain[iSeq % FED_EXPLAIN_MAX];
    if( p->iSeq!=iSeq ) continue;         /* Deleted */
    if( p->zParams==0 && p->aValue && p->nValue>0 ){
      p->zParams = explainValuesJson(p);
      if( p->zParams==0 ) return SQLITE_NOMEM;
    }
    fedEpoRow(pRows, p->iSeq);
    fedEpoInt(pRows, 0, p->iSeq);
    fedEpoText(pRows, 1, p->zServer, -1);
    fedEpoText(pRows, 2, p->zCommand, -1);
    fedEpoText(pRows, 3, p->zParams, -1);
    fedEpoInt(pRows, 4, p->nRow);
    if( p->nUsec>=0 ) fedEpoDouble(pRows, 5, p->nUsec/1000.0);
  }
  return fedEpoRc(pRows);
}

/* Only DELETE is allowed: it forgets entries. */
static int explainUpdate(
  sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite3_int64 *piRowid
){
  FedContext *pCtx = fedEpoContext(pVtab);
  (void)piRowid;
  if( argc==1 && pCtx->aExplain ){
    i64 iSeq = sqlite3_value_int64(argv[0]);
    FedExplain *p = &pCtx->aExplain[iSeq % FED_EXPLAIN_MAX];
    if( p->iSeq==iSeq ) explainFreeEntry(p);
    return SQLITE_OK;
  }
  if( argc==1 ) return SQLITE_OK;
  return fedVtabSetError(pVtab, SQLITE_ERROR,
                         sqlite3_mprintf("fed_explain: only DELETE is allowed"));
}

static const sqlite3_module explainMethods = {
  .xUpdate = explainUpdate
};

static const FedEponymous explainTable = {
  "fed_explain",
  "CREATE TABLE x(seq INTEGER, server TEXT, command TEXT, params TEXT,"
  " rows INTEGER, time_ms REAL)",
  6, 1, FED_EXPLAIN_MAX, FED_EXPLAIN_MAX, 0, explainLoad, &explainMethods
};

int fedExplainRegister(sqlite3 *db, FedContext *pCtx){
  return fedEponymousRegister(db, pCtx, &explainTable);
}
