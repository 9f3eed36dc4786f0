/*
** cache/options.c: a table's cache options (cache, cache_ttl, ...,
** cache_l2_ttl) read from the table and its server, the per-table state
** FedTable.pCache, and the counters by table name behind fed_cache_stats.
*/
#include "cacheInt.h"

i64 fedCacheNow(void){
  return fedNowUsec()/1000;
}

/**************************************************************************
** Options.
*/
const char *const fedCacheOptions[] = {
  "cache", "cache_ttl", "cache_max_bytes", "cache_db", "cache_notify",
  "cache_l2", "cache_l2_ttl", 0
};

/* The value of option zKey for pTab: the table's, else its server's. */
static const char *cacheOpt(FedTable *pTab, FedServer *pServer,
                            const char *zKey){
  const char *z = fedConfigGet(pTab->pCfg, zKey);
  if( z==0 && pServer ) z = fedConfigGet(pServer->pOpt, zKey);
  return z;
}

static int cacheBool(const char *zWho, const char *zKey, const char *z,
                     int *pb, char **pzErr){
  if( sqlite3_stricmp(z, "on")==0 || sqlite3_stricmp(z, "1")==0
   || sqlite3_stricmp(z, "true")==0 || sqlite3_stricmp(z, "yes")==0 ){
    *pb = 1;
  }else if( sqlite3_stricmp(z, "off")==0 || sqlite3_stricmp(z, "0")==0
   || sqlite3_stricmp(z, "false")==0 || sqlite3_stricmp(z, "no")==0 ){
    *pb = 0;
  }else{
    fedSetError(pzErr, "%s: %s must be on or off, not \"%s\"", zWho, zKey, z);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* Seconds (decimal fractions allowed) to milliseconds, 1 ms .. 10 years. */
static int cacheSeconds(const char *zWho, const char *zKey, const char *z,
                        i64 *pMs, char **pzErr){
  const char *p = z;
  i64 iInt = 0, iFrac = 0, nFrac = 0;
  int nDigit = 0;
  while( *p>='0' && *p<='9' && nDigit<10 ){ iInt = iInt*10 + (*p++ - '0'); nDigit++; }
  if( *p=='.' ){
    p++;
    while( *p>='0' && *p<='9' ){
      if( nFrac<3 ){ iFrac = iFrac*10 + (*p - '0'); nFrac++; }
      p++;
      nDigit++;
    }
  }
  while( nFrac<3 ){ iFrac *= 10; nFrac++; }
  if( nDigit==0 || *p!=0 || iInt*1000+iFrac<1 || iInt>315360000 ){
    fedSetError(pzErr, "%s: %s must be a number of seconds between 0.001"
                " and 315360000, not \"%s\"", zWho, zKey, z);
    return SQLITE_ERROR;
  }
  *pMs = iInt*1000 + iFrac;
  return SQLITE_OK;
}

/* Check the cache options of a server (fed_server() time) or of a table
** (CREATE VIRTUAL TABLE). */
static int cacheCheckServer(FedServer *pServer, char **pzErr){
  return fedCacheCheckConfig(pServer->pOpt, pServer->pStore->zName, pzErr);
}

/* The cache's part in the server registry: its options on fed_server(),
** checked when a server is defined (registered by fedCacheRegister). */
const FedServerHook fedCacheServerHook = {
  fedCacheOptions, cacheCheckServer, 0, 0
};

int fedCacheCheckConfig(FedConfig *pOpt, const char *zWho, char **pzErr){
  const char *z;
  int b;
  i64 n;
  FedServer srv, *pServer = &srv;
  srv.pOpt = pOpt;
  if( (z = fedConfigGet(pServer->pOpt, "cache"))!=0
   && cacheBool(zWho, "cache", z, &b, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_notify"))!=0
   && cacheBool(zWho, "cache_notify", z, &b, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_ttl"))!=0
   && cacheSeconds(zWho, "cache_ttl", z, &n, pzErr) ) return SQLITE_ERROR;
  if( (z = fedConfigGet(pServer->pOpt, "cache_l2_ttl"))!=0
   && cacheSeconds(zWho, "cache_l2_ttl", z, &n, pzErr) ) return SQLITE_ERROR;
  if( fedConfigGet(pServer->pOpt, "cache_max_bytes") ){
    return fedConfigInt(pServer->pOpt, "cache_max_bytes", 0, 0,
                        (i64)1<<50, &n, zWho, pzErr);
  }
  return SQLITE_OK;
}

static FedCacheStat *cacheStat(FedContext *pCtx, const char *zName){
  FedCacheStat *p;
  for(p=pCtx->pCacheStat; p; p=p->pNext){
    if( strcmp(p->zName, zName)==0 ) return p;
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->zName = fedStrdup(zName, -1);
  if( p->zName==0 ){ sqlite3_free(p); return 0; }
  p->pNext = pCtx->pCacheStat;
  pCtx->pCacheStat = p;
  return p;
}

/* Read the cache options of pTab (its server's as defaults) into a new
** FedCacheTab, or leave pTab->pCache NULL when caching is off.  The server
** is looked up without touching the network.  Called at the first scan. */
int fedCacheTabInit(FedTable *pTab, char **pzErr){
  const char *zWho = pTab->pStore->zName;
  FedServer *pServer = 0;
  FedCacheTab *p;
  const char *z;
  int bOn = 0, bNotify = 0, rc;
  i64 nTtl = CACHE_DEF_TTL_MS, nMax = CACHE_DEF_MAX, nL2Ttl = 0;
  char *zName;

  pTab->bCacheInit = 1;
  rc = fedServerFind(pTab->pCtx, pTab->zServer, &pServer, pzErr);
  if( rc ) return rc;
  if( (z = cacheOpt(pTab, pServer, "cache_ttl"))!=0 ){
    if( cacheSeconds(zWho, "cache_ttl", z, &nTtl, pzErr) ) return SQLITE_ERROR;
    bOn = 1;
  }
  if( (z = cacheOpt(pTab, pServer, "cache"))!=0 ){
    if( cacheBool(zWho, "cache", z, &bOn, pzErr) ) return SQLITE_ERROR;
  }
  if( !bOn ) return SQLITE_OK;
  if( (z = cacheOpt(pTab, pServer, "cache_notify"))!=0 ){
    if( cacheBool(zWho, "cache_notify", z, &bNotify, pzErr) ){
      return SQLITE_ERROR;
    }
  }
  if( (z = cacheOpt(pTab, pServer, "cache_max_bytes"))!=0 ){
    FedConfig cfg;
    char *azK[1], *azV[1];
    azK[0] = "cache_max_bytes";
    azV[0] = (char*)z;
    cfg.nOpt = 1; cfg.azKey = azK; cfg.azVal = azV;
    rc = fedConfigInt(&cfg, "cache_max_bytes", 0, 0, (i64)1<<50, &nMax, zWho,
                      pzErr);
    if( rc ) return rc;
  }
  nL2Ttl = nTtl;
  if( (z = cacheOpt(pTab, pServer, "cache_l2_ttl"))!=0 ){
    if( cacheSeconds(zWho, "cache_l2_ttl", z, &nL2Ttl, pzErr) ){
      return SQLITE_ERROR;
    }
  }
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pTab = pTab;
  p->bOn = 1;
  p->bNotify = (u8)bNotify;
  p->nTtlMs = nTtl;
  p->nMaxBytes = nMax;
  p->nL2TtlMs = nL2Ttl;
  z = cacheOpt(pTab, pServer, "cache_db");
  p->zDbPath = fedStrdup(z ? z : ":memory:", -1);
  z = cacheOpt(pTab, pServer, "cache_l2");
  if( z ) p->zL2 = fedStrdup(z, -1);
  zName = sqlite3_mprintf("%s.%s", pTab->zSchema, pTab->zName);
  if( zName ) p->pStat = cacheStat(pTab->pCtx, zName);
  sqlite3_free(zName);
  if( p->zDbPath==0 || (z && p->zL2==0) || p->pStat==0 ){
    sqlite3_free(p->zDbPath);
    sqlite3_free(p->zL2);
    sqlite3_free(p);
    return SQLITE_NOMEM;
  }
  p->pStat->pTab = pTab;
  pTab->pCache = p;
  return SQLITE_OK;
}

void fedCacheConnect(FedTable *pTab){
  char *zErr = 0;
  if( fedCacheTabInit(pTab, &zErr)!=SQLITE_OK ) pTab->bCacheInit = 0;
  sqlite3_free(zErr);
}

void fedCacheTableFree(FedTable *pTab){
  FedCacheTab *p = pTab->pCache;
  if( p==0 ) return;
  if( p->pStat && p->pStat->pTab==pTab ) p->pStat->pTab = 0;
  sqlite3_free(p->zDbPath);
  sqlite3_free(p->zL2);
  sqlite3_free(p);
  pTab->pCache = 0;
}
