/*
** stream.c: the MongoDB store's sockets, made interruptible.  libmongoc
** blocks in its own socket calls, where sqlite3_interrupt() cannot reach;
** so every connection's stream (libmongoc's own: TCP, Unix or TLS) is
** wrapped in one whose reads first wait for the reply in slices of
** FED_WAIT_SLICE_MS, checking fedInterrupted() between them.  An interrupt
** fails the read (libmongoc then closes the connection, and reconnects at
** the next command) and marks the connection, so that the error says
** "interrupted" (mongoStreamInterrupted()); while the statement is still
** interrupted, later reads and new connections of the client fail too
** (libmongoc retries a read command once).  A reply that stalls after
** its first bytes arrived waits for command_timeout: only the wait for a
** reply to start is sliced.  Writes are not sliced (a request is small).
**
** Only a plain TCP connection is wrapped: libmongoc's own initiator adds
** a buffered layer whose buffer a poll of the socket cannot see, so the
** socket is opened here with mongoc_client_connect_tcp(), unbuffered.
** With TLS or a Unix socket the default initiator runs and waits are not
** interruptible (docs/mongo.md).  Both functions are exported by libmongoc
** 1.23 but not declared in its public headers; their declarations are
** below, as in its mongoc-client-private.h.
*/
#include "mongoInt.h"
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

mongoc_stream_t *mongoc_client_default_stream_initiator(
    const mongoc_uri_t *, const mongoc_host_list_t *, void *, bson_error_t *);
mongoc_stream_t *mongoc_client_connect_tcp(int32_t connecttimeoutms,
    const mongoc_host_list_t *host, bson_error_t *error);

#define MONGO_STREAM_TYPE 0x4d49      /* Not one of libmongoc's types */

typedef struct MongoIStream MongoIStream;
struct MongoIStream {
  mongoc_stream_t vtab;         /* Base class. Must be first */
  mongoc_stream_t *pBase;       /* libmongoc's stream */
  MongoConn *pConn;             /* For the interrupt check and the mark */
};

static mongoc_stream_t *baseOf(mongoc_stream_t *s){
  return ((MongoIStream*)s)->pBase;
}

static void isDestroy(mongoc_stream_t *s){
  mongoc_stream_destroy(baseOf(s));
  sqlite3_free(s);
}
static int isClose(mongoc_stream_t *s){
  return mongoc_stream_close(baseOf(s));
}
static int isFlush(mongoc_stream_t *s){
  return mongoc_stream_flush(baseOf(s));
}
static ssize_t isWritev(mongoc_stream_t *s, mongoc_iovec_t *iov,
                        size_t iovcnt, int32_t timeout_msec){
  return mongoc_stream_writev(baseOf(s), iov, iovcnt, timeout_msec);
}
static int isSetsockopt(mongoc_stream_t *s, int level, int optname,
                        void *optval, mongoc_socklen_t optlen){
  return mongoc_stream_setsockopt(baseOf(s), level, optname, optval, optlen);
}
static mongoc_stream_t *isGetBase(mongoc_stream_t *s){
  return baseOf(s);
}
static bool isCheckClosed(mongoc_stream_t *s){
  return mongoc_stream_check_closed(baseOf(s));
}
static void isFailed(mongoc_stream_t *s){
  /* libmongoc's "failed" destroys the stream. */
  MongoIStream *p = (MongoIStream*)s;
  mongoc_stream_failed(p->pBase);
  sqlite3_free(p);
}
static bool isTimedOut(mongoc_stream_t *s){
  return mongoc_stream_timed_out(baseOf(s));
}
static bool isShouldRetry(mongoc_stream_t *s){
  return mongoc_stream_should_retry(baseOf(s));
}

/* Poll the base streams (all of this type, as libmongoc polls a set of
** streams of one type). */
static ssize_t isPoll(mongoc_stream_poll_t *a, size_t n, int32_t timeout){
  mongoc_stream_poll_t aBase[8];
  size_t i;
  ssize_t r;
  if( n>sizeof(aBase)/sizeof(aBase[0]) ){
    errno = EINVAL;
    return -1;
  }
  for(i=0; i<n; i++){
    aBase[i].stream = baseOf(a[i].stream);
    aBase[i].events = a[i].events;
    aBase[i].revents = 0;
  }
  r = mongoc_stream_poll(aBase, n, timeout);
  for(i=0; i<n; i++) a[i].revents = aBase[i].revents;
  return r;
}

/* Wait for the reply to start, FED_WAIT_SLICE_MS at a time, then read. */
static ssize_t isReadv(mongoc_stream_t *s, mongoc_iovec_t *iov,
                       size_t iovcnt, size_t min_bytes, int32_t timeout_msec){
  MongoIStream *p = (MongoIStream*)s;
  FedServer *pServer = p->pConn->base.pServer;
  sqlite3 *db = pServer && pServer->pCtx ? pServer->pCtx->db : 0;
  i64 iDeadline = timeout_msec>0 ? fedNowMs() + timeout_msec : 0;
  if( p->pConn->bInterrupted && db && fedInterrupted(db) ){
    /* Still the interrupted statement: libmongoc retries a read command
    ** once, on a new connection; that fails too. */
    errno = EINTR;
    return -1;
  }
  while( db && timeout_msec!=0 ){
    mongoc_stream_poll_t pfd;
    int ms = FED_WAIT_SLICE_MS;
    ssize_t r;
    if( iDeadline>0 ){
      i64 nLeft = iDeadline - fedNowMs();
      if( nLeft<=0 ) break;     /* The base read times out as usual */
      if( nLeft<ms ) ms = (int)nLeft;
    }
    pfd.stream = p->pBase;
    pfd.events = POLLIN;
    pfd.revents = 0;
    r = mongoc_stream_poll(&pfd, 1, ms);
    if( r!=0 && !(r<0 && errno==EINTR) ) break;
    if( fedInterrupted(db) ){
      p->pConn->bInterrupted = 1;
      errno = EINTR;
      return -1;
    }
  }
  if( iDeadline>0 ){
    i64 nLeft = iDeadline - fedNowMs();
    timeout_msec = nLeft>0 ? (int32_t)nLeft : 1;
  }
  return mongoc_stream_readv(p->pBase, iov, iovcnt, min_bytes, timeout_msec);
}

static mongoc_stream_t *mongoStreamInitiator(
  const mongoc_uri_t *pUri, const mongoc_host_list_t *pHost, void *pArg,
  bson_error_t *pErr
){
  MongoConn *pConn = (MongoConn*)pArg;
  mongoc_stream_t *pBase;
  MongoIStream *p;
  FedServer *pServer = pConn->base.pServer;
  if( pConn->bInterrupted && pServer && pServer->pCtx
   && fedInterrupted(pServer->pCtx->db) ){
    bson_set_error(pErr, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT,
                   "interrupted");
    return 0;
  }
  if( mongoc_uri_get_tls(pUri) || pHost->family==AF_UNIX ){
    return mongoc_client_default_stream_initiator(pUri, pHost,
                                                  pConn->pClient, pErr);
  }
  pBase = mongoc_client_connect_tcp(
      mongoc_uri_get_option_as_int32(pUri, MONGOC_URI_CONNECTTIMEOUTMS,
                                     10000), pHost, pErr);
  if( pBase==0 ) return 0;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ){
    mongoc_stream_destroy(pBase);
    bson_set_error(pErr, MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET,
                   "out of memory");
    return 0;
  }
  memset(p, 0, sizeof(*p));
  p->vtab.type = MONGO_STREAM_TYPE;
  p->vtab.destroy = isDestroy;
  p->vtab.close = isClose;
  p->vtab.flush = isFlush;
  p->vtab.writev = isWritev;
  p->vtab.readv = isReadv;
  p->vtab.setsockopt = isSetsockopt;
  p->vtab.get_base_stream = isGetBase;
  p->vtab.check_closed = isCheckClosed;
  p->vtab.poll = isPoll;
  p->vtab.failed = isFailed;
  p->vtab.timed_out = isTimedOut;
  p->vtab.should_retry = isShouldRetry;
  p->pBase = pBase;
  p->pConn = pConn;
  return &p->vtab;
}

void mongoStreamInstall(MongoConn *pConn){
  mongoc_client_set_stream_initiator(pConn->pClient, mongoStreamInitiator,
                                     pConn);
}

int mongoStreamInterrupted(MongoConn *pConn){
  int b = pConn->bInterrupted;
  pConn->bInterrupted = 0;
  return b;
}
