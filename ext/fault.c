/*
** fault.c: numbered fault sites at every remote interaction, for tests.
**
** A store calls fedFault(FED_FAULT_xxx, pzErr) just before it does the
** thing the site names.  Normally that costs one load and a compare.  When
** a test has armed the site (fedFaultArm(), the testfixture's fed_fault
** command), the Nth call from then on fails in the way asked:
**
**   error   the call returns SQLITE_ERROR with the message
**           "federate: injected fault at <site>"
**   hang    the call sleeps for the armed number of milliseconds first
**           (then goes on), to run past timeouts
**   crash   the process ends at once (_exit(99)), as if killed, with no
**           cleanup: what recovery must cope with
**
** The sites and their names are listed in aSite[] and docs/TESTING.md.
** The state is process-wide and not thread-safe: a test-only mechanism.
*/
#include "fedInt.h"
#include <unistd.h>

static const char *const aSite[FED_FAULT_MAX] = {
  "none",
  "connect",          /* FED_FAULT_CONNECT: opening a connection */
  "send",             /* FED_FAULT_SEND: sending a command */
  "receive",          /* FED_FAULT_RECV: reading a result or a row */
  "commit",           /* FED_FAULT_COMMIT: sending a remote COMMIT */
  "rollback",         /* FED_FAULT_ROLLBACK: sending a remote ROLLBACK */
  "savepoint",        /* FED_FAULT_SAVEPOINT: SAVEPOINT/ROLLBACK TO */
  "prepare",          /* FED_FAULT_PREPARE: PREPARE TRANSACTION */
  "decision",         /* FED_FAULT_DECISION: after the decision row */
  "resolve",          /* FED_FAULT_RESOLVE: COMMIT/ROLLBACK PREPARED */
  "undo",             /* FED_FAULT_UNDO: applying one undo image */
};

static struct {
  int iSite;          /* Armed site, or 0 */
  int nCountdown;     /* Calls left before the one that fails (1 = next) */
  int eAction;        /* FED_FAULT_ERROR, _HANG, _CRASH */
  int nHangMs;        /* For FED_FAULT_HANG */
  int nHit;           /* Faults injected since armed */
  int nCall[FED_FAULT_MAX];   /* Calls seen per site (for tests) */
} fault;

const char *fedFaultName(int iSite){
  return (iSite>=0 && iSite<FED_FAULT_MAX) ? aSite[iSite] : 0;
}

int fedFaultSite(const char *zName){
  int i;
  for(i=1; i<FED_FAULT_MAX; i++){
    if( strcmp(aSite[i], zName)==0 ) return i;
  }
  return 0;
}

void fedFaultArm(int iSite, int nCountdown, int eAction, int nHangMs){
  memset(&fault, 0, sizeof(fault));
  fault.iSite = nCountdown>0 ? iSite : 0;
  fault.nCountdown = nCountdown;
  fault.eAction = eAction;
  fault.nHangMs = nHangMs;
}

int fedFaultHits(void){ return fault.nHit; }
int fedFaultCalls(int iSite){
  return (iSite>0 && iSite<FED_FAULT_MAX) ? fault.nCall[iSite] : 0;
}

int fedFault(int iSite, char **pzErr){
  fault.nCall[iSite]++;
  if( fault.iSite!=iSite ) return SQLITE_OK;
  if( --fault.nCountdown>0 ) return SQLITE_OK;
  fault.iSite = 0;
  fault.nHit++;
  switch( fault.eAction ){
    case FED_FAULT_CRASH:
      _exit(99);
    case FED_FAULT_HANG:
      usleep((useconds_t)fault.nHangMs*1000);
      return SQLITE_OK;
  }
  fedSetError(pzErr, "federate: injected fault at %s", aSite[iSite]);
  return SQLITE_ERROR;
}
