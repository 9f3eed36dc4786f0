/*
** http.h: a small HTTP client shared by the stores that speak HTTP and
** JSON (etcd today; CouchDB, InfluxDB and Neo4j later), over libcurl and
** jansson.  Only vtab/ files include it; libcurl and jansson are included
** here and in the stores that use this header, nowhere in ext/.
**
** One FedHttp is one keep-alive connection to one base URL, owned by one
** store connection (FedConn): libcurl keeps the TCP connection open between
** calls and reconnects transparently when the server closed it.  A call is
** synchronous: it sends one request and reads the whole reply (a store
** that must stream a long result asks for it in pages, as etcd does).
** Redirects are not followed, proxies from the environment (http_proxy)
** are not used, and https certificates are always verified.  A FedHttp is
** used by one SQLite connection at a time (SQLite serialises them).
**
**   FedHttpConfig cfg;
**   FedHttpCall call;
**   FedHttp *pHttp = 0;
**   memset(&cfg, 0, sizeof(cfg));
**   cfg.zStore = "etcd";
**   cfg.pServer = pServer;                  // names and fed_explain
**   cfg.zBaseUrl = "http://127.0.0.1:2379";
**   rc = fedHttpOpen(&cfg, &pHttp, pzErr);  // no network yet
**
**   memset(&call, 0, sizeof(call));
**   call.zMethod = "POST";
**   call.zPath = "/v3/kv/range";
**   call.pJson = pBody;                     // borrowed, not consumed
**   call.zExplain = "POST /v3/kv/range {\"key\":\"a\"}";
**   rc = fedHttpCall(pHttp, &call, pzErr);
**   ... call.iStatus, call.pOut (parsed reply), call.aBody/nBody ...
**   fedHttpCallClear(&call);                // json_decref(call.pOut)
**   fedHttpClose(pHttp);
**
** Memory.  Everything is allocated with sqlite3_malloc, so that the
** testfixture's out-of-memory injection and leak checks cover it: jansson
** through json_set_alloc_funcs() and libcurl through curl_global_init_mem(),
** both installed by the first fedHttpOpen() of the process.  Both settings
** are process-wide; docs/etcd.md ("Memory") says what that means for a
** host that uses libcurl or jansson itself.  libcurl's global state is
** released (curl_global_cleanup) when the last FedHttp closes.
**
** Errors.  Every function returns an SQLite result code and, on error,
** leaves a message in *pzErr (sqlite3_malloc'd) that names the store, the
** server and the request, never a secret:
**
**   etcd: request to server "ec" failed: Failed to connect to 127.0.0.1
**     port 2379 after 0 ms: Couldn't connect to server (remote request:
**     POST /v3/kv/range {"key":"a"})
**   etcd: etcdserver: mvcc: required revision has been compacted (remote
**     request: POST /v3/kv/range {...})
**
** SQLITE_NOMEM is returned, without a message, when an allocation failed
** anywhere (in libcurl, in jansson or here).
**
** Fault sites (ext/fault.c): fedHttpCall() calls fedFault() with the
** call's site (FED_FAULT_SEND unless iFault says otherwise) before it
** sends, and with FED_FAULT_RECV when the reply has arrived.
*/
#ifndef FED_HTTP_H
#define FED_HTTP_H

#include "fedInt.h"
#include <jansson.h>
#include <stddef.h>

typedef struct FedHttp FedHttp;
typedef struct FedHttpConfig FedHttpConfig;
typedef struct FedHttpCall FedHttpCall;

/* How to reach one server.  Strings are copied by fedHttpOpen(). */
struct FedHttpConfig {
  const char *zStore;           /* Store name, first word of every error */
  FedServer *pServer;           /* Server: its name in errors, its
                                ** connection's fed_explain; may be NULL */
  const char *zBaseUrl;         /* "http://host:port[/base]"; http or https
                                ** only; a trailing '/' is ignored */
  int nConnectTimeoutMs;        /* 0: 10 s */
  int nTimeoutMs;               /* Whole request; 0: 30 s */
  const char *zCaFile;          /* PEM bundle to verify https servers
                                ** with, or NULL for the system's */
  const char *zUser;            /* HTTP basic authentication, or NULL */
  const char *zPassword;        /* (not kept after the call if NULL) */
};

/* One request and its reply.  Zero it, fill in the inputs, call
** fedHttpCall(), read the outputs, then fedHttpCallClear(). */
struct FedHttpCall {
  /* Inputs */
  const char *zMethod;          /* "GET", "POST", "PUT", "DELETE", ... */
  const char *zPath;            /* Path and query, appended to the base URL
                                ** ("/v3/kv/range", "/db/_find?x=1") */
  json_t *pJson;                /* JSON body (borrowed), or NULL */
  const char *aBody;            /* Raw body when pJson is NULL, or NULL */
  size_t nBody;
  const char *zContentType;     /* Of the raw body; default
                                ** "application/json" */
  const char *zExplain;         /* Text for fed_explain and for errors;
                                ** NULL: "METHOD path body" */
  int iFault;                   /* Fault site before sending; 0 means
                                ** FED_FAULT_SEND */
  u8 bAnyStatus;                /* Return 4xx/5xx replies as results
                                ** instead of errors */
  u8 bRawReply;                 /* Do not parse the reply as JSON */
  u8 bNoExplain;                /* Do not record the call in fed_explain */
  /* Outputs */
  long iStatus;                 /* HTTP status, 0 if no reply */
  json_t *pOut;                 /* Parsed reply (owned: fedHttpCallClear),
                                ** or NULL if empty, raw or not JSON */
  const char *aReply;           /* Raw reply, NUL-terminated; owned by the
                                ** FedHttp, valid until its next call */
  size_t nReply;
  i64 iExplain;                 /* fed_explain entry, for fedExplainRows() */
  u8 bMaybeSent;                /* The call failed after the request went
                                ** out, before its reply was read: the
                                ** server may have acted on it */
};

/* Create a client for one base URL; nothing is sent.  *ppHttp is freed
** with fedHttpClose(). */
int fedHttpOpen(const FedHttpConfig *, FedHttp **ppHttp, char **pzErr);
/* Close the connection and free the client.  NULL is a no-op. */
void fedHttpClose(FedHttp *);

/* Set a header sent with every later request ("Authorization"), replacing
** one of the same name; zValue NULL removes it.  The value is never shown
** in errors or fed_explain.  SQLITE_OK or SQLITE_NOMEM. */
int fedHttpSetHeader(FedHttp *, const char *zName, const char *zValue);

/* Send one request and read its reply (see FedHttpCall).  A transport
** error, or a 4xx/5xx status unless bAnyStatus, or (unless bRawReply) a
** 2xx reply that is not JSON, is an error. */
int fedHttpCall(FedHttp *, FedHttpCall *, char **pzErr);
/* Free what a call returned (pOut).  Safe on a zeroed or cleared call. */
void fedHttpCallClear(FedHttpCall *);

/* Parse z[0..n) as JSON (any value).  SQLITE_OK and *ppOut (json_decref
** it); SQLITE_NOMEM; or SQLITE_ERROR with jansson's description of the
** error in *pzErr (no store prefix: the caller words the message). */
int fedHttpJsonParse(const char *z, size_t n, json_t **ppOut, char **pzErr);

/* The message of a JSON error reply: the first string among "message",
** "reason", "error", "errors"[0]."message"; NULL if none.  Borrowed from
** pReply. */
const char *fedHttpErrorText(json_t *pReply);

/* Render pJson compactly (jansson's JSON_COMPACT) into s.  SQLITE_OK, or
** SQLITE_NOMEM (s may then hold part of it). */
int fedHttpJsonAppend(sqlite3_str *s, const json_t *pJson);

/* The standard error for a reply with a 4xx/5xx status (for callers that
** set bAnyStatus and then decide it is an error).  Returns SQLITE_ERROR. */
int fedHttpStatusError(FedHttp *, const FedHttpCall *, char **pzErr);

/* A streaming reply (etcd's watch): fedHttpStreamOpen() starts a POST of
** the JSON text zBody to zPath on a connection of its own (the client's
** settings and headers, no overall timeout) and returns at once;
** fedHttpStreamRead() waits at most msWait ms (0: not at all) for data,
** then calls xLine for each whole line received (without its '\n'; an
** xLine error stops it and is returned; the line is given again at the
** next read).  It returns SQLITE_DONE once the reply has ended (the server
** closed it, it failed, or memory ran out while receiving: what was lost
** cannot be read again), or SQLITE_OK.  fedHttpStreamClose(NULL) is a no-op. */
typedef struct FedHttpStream FedHttpStream;
int fedHttpStreamOpen(FedHttp *, const char *zPath, const char *zBody,
                      FedHttpStream **ppStream, char **pzErr);
int fedHttpStreamRead(FedHttpStream *, int msWait,
                      int (*xLine)(void*, const char*, int), void *pArg);
void fedHttpStreamClose(FedHttpStream *);

/* Percent-encode z (n<0: strlen) for a URL path segment or query value;
** sqlite3_malloc'd, NULL on OOM. */
char *fedHttpEscape(const char *z, int n);

/* Base64 (RFC 4648, with padding; decoding also takes the URL-safe
** alphabet), as JSON APIs carry bytes.
** Encode: sqlite3_malloc'd, NUL-terminated, NULL on OOM.
** Decode z (n<0: strlen) into *paBuf, a buffer of *pnAlloc bytes that is
** grown with sqlite3_realloc as needed (start with *paBuf==0, *pnAlloc==0;
** the caller frees it), NUL-terminated, *pnOut bytes.  Returns SQLITE_OK,
** SQLITE_NOMEM, or SQLITE_MISMATCH if z is not base64. */
char *fedBase64Encode(const void *a, int n);
int fedBase64Decode(const char *z, int n, char **paBuf, int *pnAlloc,
                    int *pnOut);

/* Read an int64 from a JSON integer or a decimal string (gRPC gateways
** send int64 as strings).  0 on success, 1 if absent or not an integer
** (*piOut unchanged). */
int fedJsonInt64(const json_t *pVal, i64 *piOut);

#endif /* FED_HTTP_H */
