/*
** testfixture.c: the Tcl shell that runs the tests in tcl-tests/.
**
** A tclsh in which every SQLite allocation goes through a counting wrapper
** with out-of-memory injection (the idea of SQLite's faultsim), and every
** new connection gets federate through sqlite3_auto_extension().  Scripts
** load Debian's libsqlite3-tcl with "package require sqlite3"; it shares
** this process's libsqlite3, so it sees both.  Commands added:
**
**   fed_malloc_count              -> {outstanding_allocations outstanding_bytes}
**   fed_faultsim N ?-persistent?  the Nth allocation from now fails: once, or
**                                 with -persistent that one and every one
**                                 after it.  N==0 disarms.  Returns the
**                                 failures injected under the previous arming.
**   fed_faultsim_hits             -> failures injected since last armed
**   fed_faultsim_reset            disarm and zero the failure count
**   fed_fault SITE N ?error|hang|crash? ?MS?   federate's fault sites
**   fed_fault_hits, fed_fault_calls SITE       (ext/fault.c)
**   fed_limit_hides_terms         1 if this SQLite offers LIMIT to xBestIndex
**                                 while hiding a WHERE term (ext/plan.c)
**   fed_interrupt_after DB MS     another thread calls sqlite3_interrupt()
**                                 on DB's connection MS ms from now (a Tcl
**                                 "after" cannot run while DB's eval blocks)
**   fed_interrupt_elapsed         wait for that thread; -> ms from its
**                                 sqlite3_interrupt() call until now
**
** and the scripted store "tclstore" (test_store.c) is registered.
**
** Built with -DFED_NO_EXTENSION it is the same shell without federate, which
** is how the harness itself can be tested while the extension is broken.
*/
#include <sqlite3.h>
#include <tcl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#ifndef FED_NO_EXTENSION
# include "federate.h"
#endif

/* Where Debian's libsqlite3-tcl keeps its pkgIndex.tcl. */
#define FED_TCLSQLITE_DIR "/usr/lib/tcltk"

/*
** The state of the counting allocator.  All fields are guarded by mutex:
** SQLite calls its allocator from whichever thread allocates, and only
** serialises the calls itself when SQLITE_CONFIG_MEMSTATUS is on.
*/
typedef struct FedMem FedMem;
struct FedMem {
  sqlite3_mem_methods base;     /* The allocator being wrapped */
  pthread_mutex_t mutex;
  sqlite3_int64 nAlloc;         /* Outstanding allocations */
  sqlite3_int64 nByte;          /* Outstanding bytes (base.xSize of each) */
  int bArmed;                   /* True while a fault is pending */
  int bPersistent;              /* Keep failing once the first fault hits */
  sqlite3_int64 nCountdown;     /* Allocation number that fails (1 = next) */
  sqlite3_int64 nHit;           /* Failures injected since last armed */
};
static FedMem fedMem = { {0}, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0 };

/*
** Decide whether the allocation being made now fails.  Called with the
** mutex held, once for every xMalloc and xRealloc.  Returns non-zero to fail.
*/
static int memFaultStep(void){
  if( !fedMem.bArmed ) return 0;
  if( fedMem.nCountdown>1 ){
    fedMem.nCountdown--;
    return 0;
  }
  fedMem.nHit++;
  if( !fedMem.bPersistent ) fedMem.bArmed = 0;
  return 1;
}

static void *memMalloc(int nByte){
  void *p = 0;
  pthread_mutex_lock(&fedMem.mutex);
  if( !memFaultStep() ){
    p = fedMem.base.xMalloc(nByte);
    if( p ){
      fedMem.nAlloc++;
      fedMem.nByte += fedMem.base.xSize(p);
    }
  }
  pthread_mutex_unlock(&fedMem.mutex);
  return p;
}

static void memFree(void *p){
  if( p==0 ) return;
  pthread_mutex_lock(&fedMem.mutex);
  fedMem.nAlloc--;
  fedMem.nByte -= fedMem.base.xSize(p);
  fedMem.base.xFree(p);
  pthread_mutex_unlock(&fedMem.mutex);
}

/* SQLite never passes NULL here (sqlite3_realloc(0,n) becomes a malloc),
** but a NULL is handled as a malloc anyway.  On failure p is untouched. */
static void *memRealloc(void *p, int nByte){
  void *pNew = 0;
  if( p==0 ) return memMalloc(nByte);
  pthread_mutex_lock(&fedMem.mutex);
  if( !memFaultStep() ){
    int nOld = fedMem.base.xSize(p);
    pNew = fedMem.base.xRealloc(p, nByte);
    if( pNew ) fedMem.nByte += fedMem.base.xSize(pNew) - nOld;
  }
  pthread_mutex_unlock(&fedMem.mutex);
  return pNew;
}

static int memSize(void *p){ return fedMem.base.xSize(p); }
static int memRoundup(int n){ return fedMem.base.xRoundup(n); }
static int memInit(void *pUnused){
  (void)pUnused;
  return fedMem.base.xInit(fedMem.base.pAppData);
}
static void memShutdown(void *pUnused){
  (void)pUnused;
  fedMem.base.xShutdown(fedMem.base.pAppData);
}

/*
** Wrap SQLite's allocator.  Must run before anything initialises SQLite,
** since SQLITE_CONFIG_MALLOC is refused after that.  Returns an SQLite
** result code.
*/
static int fedMemInstall(void){
  static const sqlite3_mem_methods wrapper = {
    memMalloc, memFree, memRealloc, memSize, memRoundup,
    memInit, memShutdown, 0
  };
  int rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fedMem.base);
  if( rc==SQLITE_OK ) rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &wrapper);
  return rc;
}

/* fed_malloc_count -> {outstanding_allocations outstanding_bytes} */
static int cmdMallocCount(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  Tcl_Obj *aVal[2];
  (void)cd;
  if( objc!=1 ){
    Tcl_WrongNumArgs(interp, 1, objv, "");
    return TCL_ERROR;
  }
  pthread_mutex_lock(&fedMem.mutex);
  aVal[0] = Tcl_NewWideIntObj(fedMem.nAlloc);
  aVal[1] = Tcl_NewWideIntObj(fedMem.nByte);
  pthread_mutex_unlock(&fedMem.mutex);
  Tcl_SetObjResult(interp, Tcl_NewListObj(2, aVal));
  return TCL_OK;
}

/* fed_faultsim N ?-persistent? -> failures injected under the previous arming */
static int cmdFaultsim(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  Tcl_WideInt iFail = 0;
  int bPersistent = 0;
  sqlite3_int64 nPrev;
  (void)cd;
  if( objc==3 && strcmp(Tcl_GetString(objv[2]), "-persistent")==0 ){
    bPersistent = 1;
  }else if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "N ?-persistent?");
    return TCL_ERROR;
  }
  if( Tcl_GetWideIntFromObj(interp, objv[1], &iFail) ) return TCL_ERROR;
  if( iFail<0 ){
    Tcl_SetObjResult(interp,
        Tcl_NewStringObj("fed_faultsim: N must be 0 (disarm) or more", -1));
    return TCL_ERROR;
  }
  pthread_mutex_lock(&fedMem.mutex);
  nPrev = fedMem.nHit;
  fedMem.nHit = 0;
  fedMem.nCountdown = iFail;
  fedMem.bPersistent = bPersistent;
  fedMem.bArmed = iFail>0;
  pthread_mutex_unlock(&fedMem.mutex);
  Tcl_SetObjResult(interp, Tcl_NewWideIntObj(nPrev));
  return TCL_OK;
}

/* fed_faultsim_hits -> failures injected since last armed */
static int cmdFaultsimHits(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  sqlite3_int64 nHit;
  (void)cd;
  if( objc!=1 ){
    Tcl_WrongNumArgs(interp, 1, objv, "");
    return TCL_ERROR;
  }
  pthread_mutex_lock(&fedMem.mutex);
  nHit = fedMem.nHit;
  pthread_mutex_unlock(&fedMem.mutex);
  Tcl_SetObjResult(interp, Tcl_NewWideIntObj(nHit));
  return TCL_OK;
}

/* fed_faultsim_reset: disarm and zero the failure count */
static int cmdFaultsimReset(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  (void)cd;
  if( objc!=1 ){
    Tcl_WrongNumArgs(interp, 1, objv, "");
    return TCL_ERROR;
  }
  pthread_mutex_lock(&fedMem.mutex);
  fedMem.bArmed = 0;
  fedMem.bPersistent = 0;
  fedMem.nCountdown = 0;
  fedMem.nHit = 0;
  pthread_mutex_unlock(&fedMem.mutex);
  return TCL_OK;
}

#ifndef FED_NO_EXTENSION
/* The scripted store (test_store.c). */
int fedTestStoreRegister(void);
void fedTestStoreInterp(Tcl_Interp *);

/* federate's fault sites (ext/fault.c); hidden symbols, linked statically. */
void fedFaultArm(int iSite, int nCountdown, int eAction, int nHangMs);
int fedFaultSite(const char *zName);
int fedFaultHits(void);
int fedFaultCalls(int iSite);

/*
** fed_fault SITE N ?error|hang|crash? ?MS?   the Nth call at SITE (connect,
**     send, receive, commit, rollback, savepoint) from now fails with an
**     error (default), sleeps MS milliseconds, or ends the process.
**     N==0 disarms.
** fed_fault_hits                 -> faults injected since armed
** fed_fault_calls SITE           -> calls seen at SITE since armed
*/
static int cmdFault(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  static const char *const azAction[] = { "error", "hang", "crash", 0 };
  int iSite, n, iAction = 0, nMs = 0;
  (void)cd;
  if( objc<3 || objc>5 ){
    Tcl_WrongNumArgs(interp, 1, objv, "SITE N ?error|hang|crash? ?MS?");
    return TCL_ERROR;
  }
  iSite = fedFaultSite(Tcl_GetString(objv[1]));
  if( iSite==0 ){
    Tcl_AppendResult(interp, "unknown fault site: ", Tcl_GetString(objv[1]), 0);
    return TCL_ERROR;
  }
  if( Tcl_GetIntFromObj(interp, objv[2], &n) ) return TCL_ERROR;
  if( objc>3 && Tcl_GetIndexFromObj(interp, objv[3], azAction, "action", 0,
                                    &iAction) ){
    return TCL_ERROR;
  }
  if( objc>4 && Tcl_GetIntFromObj(interp, objv[4], &nMs) ) return TCL_ERROR;
  fedFaultArm(iSite, n, iAction+1, nMs);
  return TCL_OK;
}

static int cmdFaultHits(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  (void)cd; (void)objc; (void)objv;
  Tcl_SetObjResult(interp, Tcl_NewIntObj(fedFaultHits()));
  return TCL_OK;
}

int fedPlanLimitHidesTerms(void);

/* fed_limit_hides_terms: 1 if this SQLite offers LIMIT to xBestIndex
** while a WHERE term it does not show still filters (ext/plan.c). */
static int cmdLimitHidesTerms(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  (void)cd; (void)objc; (void)objv;
  Tcl_SetObjResult(interp, Tcl_NewIntObj(fedPlanLimitHidesTerms()));
  return TCL_OK;
}

static int cmdFaultCalls(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  int iSite;
  (void)cd;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "SITE");
    return TCL_ERROR;
  }
  iSite = fedFaultSite(Tcl_GetString(objv[1]));
  if( iSite==0 ){
    Tcl_AppendResult(interp, "unknown fault site: ", Tcl_GetString(objv[1]), 0);
    return TCL_ERROR;
  }
  Tcl_SetObjResult(interp, Tcl_NewIntObj(fedFaultCalls(iSite)));
  return TCL_OK;
}
#endif /* FED_NO_EXTENSION */

/*
** fed_interrupt_after DB MS, fed_interrupt_elapsed: one interrupting thread
** at a time.  The connection is the first field of tclsqlite's SqliteDb,
** the client data of DB's command (as SQLite's own test code reads it).
*/
static struct {
  pthread_t thread;
  int bRunning;                 /* thread started and not joined */
  sqlite3 *db;
  int nMs;
  struct timespec tFired;       /* When sqlite3_interrupt() was called */
} interruptState;

static void *interruptMain(void *pArg){
  struct timespec t;
  (void)pArg;
  t.tv_sec = interruptState.nMs/1000;
  t.tv_nsec = (long)(interruptState.nMs%1000)*1000000;
  nanosleep(&t, 0);
  clock_gettime(CLOCK_MONOTONIC, &interruptState.tFired);
  sqlite3_interrupt(interruptState.db);
  return 0;
}

static int cmdInterruptAfter(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  Tcl_CmdInfo info;
  int nMs;
  (void)cd;
  if( objc!=3 ){
    Tcl_WrongNumArgs(interp, 1, objv, "DB MS");
    return TCL_ERROR;
  }
  if( !Tcl_GetCommandInfo(interp, Tcl_GetString(objv[1]), &info) ){
    Tcl_AppendResult(interp, "no such database: ", Tcl_GetString(objv[1]), 0);
    return TCL_ERROR;
  }
  if( Tcl_GetIntFromObj(interp, objv[2], &nMs) ) return TCL_ERROR;
  if( interruptState.bRunning ){
    pthread_join(interruptState.thread, 0);
    interruptState.bRunning = 0;
  }
  interruptState.db = *(sqlite3**)info.objClientData;
  interruptState.nMs = nMs<0 ? 0 : nMs;
  if( pthread_create(&interruptState.thread, 0, interruptMain, 0) ){
    Tcl_AppendResult(interp, "cannot start a thread", 0);
    return TCL_ERROR;
  }
  interruptState.bRunning = 1;
  return TCL_OK;
}

static int cmdInterruptElapsed(
  ClientData cd, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[]
){
  struct timespec t;
  double ms;
  (void)cd; (void)objc; (void)objv;
  if( !interruptState.bRunning ){
    Tcl_AppendResult(interp, "no fed_interrupt_after pending", 0);
    return TCL_ERROR;
  }
  pthread_join(interruptState.thread, 0);
  interruptState.bRunning = 0;
  clock_gettime(CLOCK_MONOTONIC, &t);
  ms = (t.tv_sec - interruptState.tFired.tv_sec)*1e3
     + (t.tv_nsec - interruptState.tFired.tv_nsec)/1e6;
  Tcl_SetObjResult(interp, Tcl_NewDoubleObj(ms));
  return TCL_OK;
}

/*
** Tcl_Main's application initialiser: the standard library, the commands
** above, and the directory of Debian's sqlite3 package on auto_path (it is
** there already when libtcl was built with Debian's tcl_pkgPath; this keeps
** "package require sqlite3" working when it was not).
*/
static int fedAppInit(Tcl_Interp *interp){
  static const struct {
    const char *zName;
    Tcl_ObjCmdProc *xProc;
  } aCmd[] = {
    { "fed_malloc_count",   cmdMallocCount },
    { "fed_faultsim",       cmdFaultsim },
    { "fed_faultsim_hits",  cmdFaultsimHits },
    { "fed_faultsim_reset", cmdFaultsimReset },
    { "fed_interrupt_after", cmdInterruptAfter },
    { "fed_interrupt_elapsed", cmdInterruptElapsed },
#ifndef FED_NO_EXTENSION
    { "fed_fault",          cmdFault },
    { "fed_fault_hits",     cmdFaultHits },
    { "fed_fault_calls",    cmdFaultCalls },
    { "fed_limit_hides_terms", cmdLimitHidesTerms },
#endif
  };
  size_t i;
  if( Tcl_Init(interp)!=TCL_OK ) return TCL_ERROR;
#ifndef FED_NO_EXTENSION
  fedTestStoreInterp(interp);
#endif
  for(i=0; i<sizeof(aCmd)/sizeof(aCmd[0]); i++){
    Tcl_CreateObjCommand(interp, aCmd[i].zName, aCmd[i].xProc, 0, 0);
  }
  return Tcl_Eval(interp,
      "if {[lsearch -exact $::auto_path " FED_TCLSQLITE_DIR "]<0} {\n"
      "  lappend ::auto_path " FED_TCLSQLITE_DIR "\n"
      "}\n"
  );
}

int main(int argc, char **argv){
  int rc = fedMemInstall();
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "testfixture: cannot install the counting allocator: %s\n",
            sqlite3_errstr(rc));
    return 1;
  }
#ifndef FED_NO_EXTENSION
  rc = fedTestStoreRegister();
  if( rc==SQLITE_OK ){
    rc = sqlite3_auto_extension((void(*)(void))sqlite3_federate_init);
  }
#else
  rc = sqlite3_initialize();
#endif
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "testfixture: cannot register federate: %s\n",
            sqlite3_errstr(rc));
    return 1;
  }
  Tcl_Main(argc, argv, fedAppInit);
  return 0;
}
