/*
** config.c: the arguments of CREATE VIRTUAL TABLE (key=value, quoted as
** SQL quotes), the options strings of fed_server() and fed_import(), and
** the column specification language (columns='id bigint primary key, ...').
** An unknown option is an error that names the nearest known one.
*/
#include "fedInt.h"

char *fedUnquote(const char *z, int n){
  char *zOut;
  char q, qEnd;
  int i, j;
  if( n<0 ) n = (int)strlen(z);
  while( n>0 && (z[0]==' ' || z[0]=='\t' || z[0]=='\n') ){ z++; n--; }
  while( n>0 && (z[n-1]==' ' || z[n-1]=='\t' || z[n-1]=='\n') ) n--;
  zOut = sqlite3_malloc64((sqlite3_uint64)n+1);
  if( zOut==0 ) return 0;
  q = n>=2 ? z[0] : 0;
  qEnd = q=='[' ? ']' : q;
  if( (q=='\'' || q=='"' || q=='`' || q=='[') && z[n-1]==qEnd ){
    for(i=1, j=0; i<n-1; i++){
      zOut[j++] = z[i];
      if( z[i]==qEnd && q!='[' && i+1<n-1 && z[i+1]==qEnd ) i++;
    }
    zOut[j] = 0;
  }else{
    memcpy(zOut, z, n);
    zOut[n] = 0;
  }
  return zOut;
}

/* Edit distance, for "did you mean" hints; small strings only. */
static int editDistance(const char *a, const char *b){
  int na = (int)strlen(a), nb = (int)strlen(b);
  int d[32][32];
  int i, j;
  if( na>=31 || nb>=31 ) return 99;
  for(i=0; i<=na; i++) d[i][0] = i;
  for(j=0; j<=nb; j++) d[0][j] = j;
  for(i=1; i<=na; i++){
    for(j=1; j<=nb; j++){
      int c = d[i-1][j-1] + (a[i-1]!=b[j-1]);
      if( d[i-1][j]+1<c ) c = d[i-1][j]+1;
      if( d[i][j-1]+1<c ) c = d[i][j-1]+1;
      d[i][j] = c;
    }
  }
  return d[na][nb];
}

void fedConfigFree(FedConfig *p){
  int i;
  if( p==0 ) return;
  for(i=0; i<p->nOpt; i++){
    sqlite3_free(p->azKey[i]);
    sqlite3_free(p->azVal[i]);
  }
  sqlite3_free(p->azKey);
  sqlite3_free(p->azVal);
  sqlite3_free(p);
}

const char *fedConfigGet(const FedConfig *p, const char *zKey){
  int i;
  if( p==0 ) return 0;
  for(i=0; i<p->nOpt; i++){
    if( strcmp(p->azKey[i], zKey)==0 ) return p->azVal[i];
  }
  return 0;
}

int fedConfigInt(
  const FedConfig *p, const char *zKey, i64 iDefault, i64 iMin, i64 iMax,
  i64 *piOut, const char *zWho, char **pzErr
){
  const char *z = fedConfigGet(p, zKey);
  i64 v;
  if( z==0 ){
    *piOut = iDefault;
    return SQLITE_OK;
  }
  if( fedParseInt64(z, -1, &v) || v<iMin || v>iMax ){
    fedSetError(pzErr, "%s: option %s must be an integer from %lld to %lld,"
        " not '%s'", zWho, zKey, iMin, iMax, z);
    return SQLITE_ERROR;
  }
  *piOut = v;
  return SQLITE_OK;
}

/* Add one "key=value" argument to p. */
static int configAdd(
  FedConfig *p, const char *zWho, const char *zArg,
  const char *const *azAllowed, char **pzErr
){
  const char *zEq = strchr(zArg, '=');
  char *zKey, *zVal;
  char **az;
  int i;
  if( zEq==0 ){
    char *z = fedUnquote(zArg, -1);
    fedSetError(pzErr, "%s: malformed option \"%s\": expected key=value",
                zWho, z ? z : zArg);
    sqlite3_free(z);
    return SQLITE_ERROR;
  }
  zKey = fedUnquote(zArg, (int)(zEq-zArg));
  zVal = fedUnquote(zEq+1, -1);
  if( zKey==0 || zVal==0 ) goto nomem;
  for(i=0; zKey[i]; i++){
    if( zKey[i]>='A' && zKey[i]<='Z' ) zKey[i] += 'a'-'A';
  }
  for(i=0; azAllowed && azAllowed[i]; i++){
    if( strcmp(azAllowed[i], zKey)==0 ) break;
  }
  if( azAllowed==0 || azAllowed[i]==0 ){
    const char *zBest = 0;
    int dBest = 3;
    for(i=0; azAllowed && azAllowed[i]; i++){
      int d = editDistance(azAllowed[i], zKey);
      if( d<dBest ){ dBest = d; zBest = azAllowed[i]; }
    }
    if( zBest ){
      fedSetError(pzErr, "%s: unknown option \"%s\" (did you mean \"%s\"?)",
                  zWho, zKey, zBest);
    }else{
      fedSetError(pzErr, "%s: unknown option \"%s\"", zWho, zKey);
    }
    sqlite3_free(zKey);
    sqlite3_free(zVal);
    return SQLITE_ERROR;
  }
  if( fedConfigGet(p, zKey) ){
    fedSetError(pzErr, "%s: option \"%s\" given twice", zWho, zKey);
    sqlite3_free(zKey);
    sqlite3_free(zVal);
    return SQLITE_ERROR;
  }
  az = sqlite3_realloc64(p->azKey, sizeof(char*)*(p->nOpt+1));
  if( az==0 ) goto nomem;
  p->azKey = az;
  az = sqlite3_realloc64(p->azVal, sizeof(char*)*(p->nOpt+1));
  if( az==0 ) goto nomem;
  p->azVal = az;
  p->azKey[p->nOpt] = zKey;
  p->azVal[p->nOpt] = zVal;
  p->nOpt++;
  return SQLITE_OK;

nomem:
  sqlite3_free(zKey);
  sqlite3_free(zVal);
  return SQLITE_NOMEM;
}

int fedConfigParse(
  const char *zWho, int argc, const char *const *argv,
  const char *const *azAllowed, FedConfig **ppCfg, char **pzErr
){
  FedConfig *p;
  int i, rc = SQLITE_OK;
  *ppCfg = 0;
  p = sqlite3_malloc64(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  for(i=0; rc==SQLITE_OK && i<argc; i++){
    rc = configAdd(p, zWho, argv[i], azAllowed, pzErr);
  }
  if( rc!=SQLITE_OK ){
    fedConfigFree(p);
    return rc;
  }
  *ppCfg = p;
  return SQLITE_OK;
}

/*
** Split z at top-level commas (outside quotes, parentheses and brackets).
** Calls xPart(pArg, zPart, nPart) for each non-empty part.  A quote left
** open at the end is an error naming the part's key (zWhat is "option" or
** "column"): the rest of the string would otherwise vanish unseen.
*/
static int splitList(
  const char *z, int (*xPart)(void*, const char*, int), void *pArg,
  const char *zWho, const char *zWhat, char **pzErr
){
  int depth = 0;
  char q = 0;
  const char *zStart = z;
  const char *p;
  int rc = SQLITE_OK;
  for(p=z; rc==SQLITE_OK; p++){
    char c = *p;
    if( q ){
      if( c==0 ){
        const char *s = zStart;
        int n = 0;
        while( *s==' ' || *s=='\t' || *s=='\n' || *s=='\r' ) s++;
        if( *s=='\'' || *s=='"' || *s=='`' ) s++;
        while( s[n] && s[n]!='=' && s[n]!=' ' && s[n]!='\t' && s[n]!='\n'
            && s[n]!='\r' && s[n]!='\'' && s[n]!='"' && s[n]!='`' ) n++;
        fedSetError(pzErr, "%s: unbalanced quote (%c) in %s \"%.*s\"",
                    zWho, q, zWhat, n, s);
        rc = SQLITE_ERROR;
        break;
      }
      if( c==q ) q = 0;
      continue;
    }
    if( c=='\'' || c=='"' || c=='`' ){ q = c; continue; }
    if( c=='(' || c=='[' ){ depth++; continue; }
    if( (c==')' || c==']') && depth>0 ){ depth--; continue; }
    if( c==0 || (c==',' && depth==0) ){
      const char *s = zStart;
      int n = (int)(p - zStart);
      while( n>0 && (*s==' ' || *s=='\t' || *s=='\n') ){ s++; n--; }
      if( n>0 ) rc = xPart(pArg, s, n);
      if( c==0 ) break;
      zStart = p+1;
    }
  }
  return rc;
}

typedef struct ConfigSplit ConfigSplit;
struct ConfigSplit {
  FedConfig *p;
  const char *zWho;
  const char *const *azAllowed;
  char **pzErr;
};

static int configPart(void *pArg, const char *z, int n){
  ConfigSplit *s = (ConfigSplit*)pArg;
  char *zArg = fedStrdup(z, n);
  int rc;
  if( zArg==0 ) return SQLITE_NOMEM;
  rc = configAdd(s->p, s->zWho, zArg, s->azAllowed, s->pzErr);
  sqlite3_free(zArg);
  return rc;
}

int fedConfigParseString(
  const char *zWho, const char *zOptions, const char *const *azAllowed,
  FedConfig **ppCfg, char **pzErr
){
  ConfigSplit s;
  int rc;
  rc = fedConfigParse(zWho, 0, 0, azAllowed, ppCfg, pzErr);
  if( rc!=SQLITE_OK || zOptions==0 ) return rc;
  s.p = *ppCfg;
  s.zWho = zWho;
  s.azAllowed = azAllowed;
  s.pzErr = pzErr;
  rc = splitList(zOptions, configPart, &s, zWho, "option", pzErr);
  if( rc!=SQLITE_OK ){
    fedConfigFree(*ppCfg);
    *ppCfg = 0;
  }
  return rc;
}

/*
** The secret detector.  fed_server() and CREATE VIRTUAL TABLE refuse a
** connection string or option that the store's client would read as a
** password, because both are stored in the database file.  The text is
** parsed the way the client parses it, so that a key is found however it
** is spelled, and a value is never mistaken for a key:
**
**   - libpq keyword=value pairs (also federate's comma-separated options):
**     blanks (space, tab, newline, ...) around keys and "=", values in
**     single quotes with backslash escapes, or in " ` quotes (federate's);
**     the value of dbname= is itself a connection string to libpq, and is
**     read again;
**   - URIs (postgresql://, redis://, http://): a password in user:pw@, or
**     a query parameter whose key, percent-decoded (?pass%77ord=), names
**     a secret.
**
** libpq 15's password-bearing keywords (PQconndefaults(), display "*")
** are password and sslpassword; later ones add oauth_client_secret.  The
** key test is wider on purpose: pwd, pass, and any key containing
** password, passwd, secret or token, except names of where a secret is
** kept (password_env, passfile, ..._file).
*/
static int isBlank(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r' || c=='\f' || c=='\v';
}

static int hexValue(char c){
  if( c>='0' && c<='9' ) return c-'0';
  if( c>='a' && c<='f' ) return c-'a'+10;
  if( c>='A' && c<='F' ) return c-'A'+10;
  return -1;
}

/* True if the key z[0..n), percent-decoded and lower-cased, names a
** secret.  Keys longer than 63 bytes are no option name any client
** knows; they are judged by their first 63. */
static int isSecretKey(const char *z, int n){
  static const char *const azPart[] = { "password", "passwd", "secret",
                                        "token", 0 };
  char zLow[64];
  int i, j;
  for(i=j=0; i<n && j<(int)sizeof(zLow)-1; i++){
    char c = z[i];
    if( c=='%' && i+2<n && hexValue(z[i+1])>=0 && hexValue(z[i+2])>=0 ){
      c = (char)(hexValue(z[i+1])*16 + hexValue(z[i+2]));
      i += 2;
    }
    zLow[j++] = (c>='A' && c<='Z') ? c+('a'-'A') : c;
  }
  zLow[j] = 0;
  n = j;
  if( strcmp(zLow, "pwd")==0 || strcmp(zLow, "pass")==0 ) return 1;
  if( (n>4 && strcmp(&zLow[n-4], "_env")==0)
   || (n>4 && strcmp(&zLow[n-4], "file")==0) ){
    return 0;
  }
  for(i=0; azPart[i]; i++){
    if( strstr(zLow, azPart[i]) ) return 1;
  }
  return 0;
}

static int secretIn(const char *z, int nDepth);

/* A URI: user:password@ in the authority, or a secret query key. */
static int secretUri(const char *z){
  const char *zAuth = strstr(z, "://") + 3;
  const char *zEnd = zAuth;
  const char *p;
  while( *zEnd && *zEnd!='/' && *zEnd!='?' && *zEnd!='#' ) zEnd++;
  for(p=zAuth; p<zEnd; p++){
    if( *p=='@' ){
      const char *c;
      for(c=zAuth; c<p; c++){
        if( *c==':' ) return 1;
      }
    }
  }
  p = strchr(zEnd, '?');
  while( p && *p && *p!='#' ){
    const char *zKey = ++p;
    while( *p && *p!='=' && *p!='&' && *p!='#' ) p++;
    if( isSecretKey(zKey, (int)(p-zKey)) ) return 1;
    while( *p && *p!='&' && *p!='#' ) p++;
  }
  return 0;
}

/* Skip a quoted run starting at *p (one of ' " `); returns the end. */
static const char *skipQuoted(const char *p){
  char q = *p++;
  while( *p ){
    if( q=='\'' && *p=='\\' && p[1] ){ p += 2; continue; }
    if( *p==q ){
      if( p[1]==q ){ p += 2; continue; }
      return p+1;
    }
    p++;
  }
  return p;
}

/* keyword=value pairs, as libpq (bLibpq: only single quotes quote) or
** federate's option lists (' " ` quote) read them. */
static int secretKv(const char *z, int nDepth, int bLibpq){
  const char *p = z;
  while( *p ){
    const char *zKey, *zKeyEnd, *zVal;
    while( isBlank(*p) || *p==',' ) p++;
    if( *p==0 ) break;
    zKey = p;
    if( *p=='\'' || (!bLibpq && (*p=='"' || *p=='`')) ){
      p = skipQuoted(p);
      zKeyEnd = p;
      if( zKeyEnd-zKey>=2 && zKeyEnd[-1]==*zKey ){ zKey++; zKeyEnd--; }
    }else{
      while( *p && !isBlank(*p) && *p!='=' && *p!=',' ) p++;
      zKeyEnd = p;
    }
    while( isBlank(*p) ) p++;
    if( *p!='=' ) continue;             /* A bare word: not a key */
    p++;
    while( isBlank(*p) ) p++;
    zVal = p;
    if( *p=='\'' || (!bLibpq && (*p=='"' || *p=='`')) ){
      p = skipQuoted(p);
    }else{
      while( *p && !isBlank(*p) && *p!=',' ) p++;
    }
    if( isSecretKey(zKey, (int)(zKeyEnd-zKey)) ) return 1;
    if( zKeyEnd-zKey==6 && sqlite3_strnicmp(zKey, "dbname", 6)==0
     && nDepth<4 ){
      /* libpq reads a dbname holding "=" or a URI as a connection string;
      ** so does this, on an unquoted copy (on the stack: no allocation,
      ** so out-of-memory never looks like a secret). */
      char zInner[1024];
      const char *v = zVal;
      const char *vEnd = p;
      int n = 0;
      if( *v=='\'' || *v=='"' || *v=='`' ){
        char q = *v++;
        if( vEnd>v && vEnd[-1]==q ) vEnd--;
        while( v<vEnd && n<(int)sizeof(zInner)-1 ){
          if( (q=='\'' && *v=='\\') || (*v==q && v+1<vEnd && v[1]==q) ) v++;
          if( v<vEnd ) zInner[n++] = *v++;
        }
      }else{
        while( v<vEnd && n<(int)sizeof(zInner)-1 ) zInner[n++] = *v++;
      }
      if( v<vEnd ) return 1;            /* Too long to read: refuse */
      zInner[n] = 0;
      if( (strchr(zInner, '=') || strstr(zInner, "://"))
       && secretIn(zInner, nDepth+1) ){
        return 1;
      }
    }
  }
  return 0;
}

static int secretIn(const char *z, int nDepth){
  const char *p = z;
  while( isBlank(*p) ) p++;
  /* A URI starts with scheme:// (letters, digits, + - .). */
  while( (*p>='a' && *p<='z') || (*p>='A' && *p<='Z') || (*p>='0' && *p<='9')
      || *p=='+' || *p=='-' || *p=='.' ) p++;
  if( p[0]==':' && p[1]=='/' && p[2]=='/' ) return secretUri(z);
  return secretKv(z, nDepth, 1) || secretKv(z, nDepth, 0);
}

int fedHasSecret(const char *z){
  if( z==0 ) return 0;
  return secretIn(z, 0);
}

/**************************************************************************
** Column specifications.
*/
typedef struct ColumnSplit ColumnSplit;
struct ColumnSplit {
  const char *zWho;
  FedColumn *aCol;
  int nCol;
  char **pzErr;
};

/* Remove a trailing keyword (case-insensitive, as a whole word) from the
** end of z[0..*pn]; returns 1 if it was there. */
static int stripSuffix(const char *z, int *pn, const char *zWord){
  int nWord = (int)strlen(zWord);
  int n = *pn;
  while( n>0 && z[n-1]==' ' ) n--;
  if( n>nWord && sqlite3_strnicmp(&z[n-nWord], zWord, nWord)==0
   && z[n-nWord-1]==' ' ){
    n -= nWord;
    while( n>0 && z[n-1]==' ' ) n--;
    *pn = n;
    return 1;
  }
  return 0;
}

static int columnPart(void *pArg, const char *z, int n){
  ColumnSplit *s = (ColumnSplit*)pArg;
  FedColumn *pCol;
  FedColumn *aNew;
  int i, bAgain;
  const char *zType;
  int nType;

  aNew = sqlite3_realloc64(s->aCol, sizeof(FedColumn)*(s->nCol+1));
  if( aNew==0 ) return SQLITE_NOMEM;
  s->aCol = aNew;
  pCol = &aNew[s->nCol];
  memset(pCol, 0, sizeof(*pCol));
  s->nCol++;

  /* The name: a quoted identifier or a run of non-space characters. */
  if( z[0]=='"' || z[0]=='`' || z[0]=='[' ){
    char qEnd = z[0]=='[' ? ']' : z[0];
    for(i=1; i<n; i++){
      if( z[i]==qEnd ){
        if( qEnd!=']' && i+1<n && z[i+1]==qEnd ){ i++; continue; }
        break;
      }
    }
    if( i>=n ){
      fedSetError(s->pzErr, "%s: unterminated quoted column name in"
                  " columns option", s->zWho);
      return SQLITE_ERROR;
    }
    i++;
    pCol->zName = fedUnquote(z, i);
  }else{
    for(i=0; i<n && z[i]!=' ' && z[i]!='\t'; i++){}
    pCol->zName = fedStrdup(z, i);
  }
  if( pCol->zName==0 ) return SQLITE_NOMEM;
  zType = &z[i];
  nType = n-i;
  while( nType>0 && (*zType==' ' || *zType=='\t') ){ zType++; nType--; }
  do{
    bAgain = 0;
    if( stripSuffix(zType, &nType, "primary key") ){ pCol->bPk = 1; bAgain=1; }
    if( stripSuffix(zType, &nType, "not null") ){ pCol->bNotNull = 1; bAgain=1; }
    if( stripSuffix(zType, &nType, "default") ){ pCol->bDefault = 1; bAgain=1; }
  }while( bAgain );
  if( nType==0 || pCol->zName[0]==0 ){
    fedSetError(s->pzErr, "%s: column \"%s\" needs a type in the columns"
                " option (name type [primary key])", s->zWho, pCol->zName);
    return SQLITE_ERROR;
  }
  for(i=0; i<s->nCol-1; i++){
    if( sqlite3_stricmp(s->aCol[i].zName, pCol->zName)==0 ){
      fedSetError(s->pzErr, "%s: column \"%s\" declared twice",
                  s->zWho, pCol->zName);
      return SQLITE_ERROR;
    }
  }
  pCol->zType = fedStrdup(zType, nType);
  if( pCol->zType==0 ) return SQLITE_NOMEM;
  return SQLITE_OK;
}

int fedColumnsParse(
  const char *zWho, const char *zSpec, FedColumn **paCol, int *pnCol,
  char **pzErr
){
  ColumnSplit s;
  int rc;
  memset(&s, 0, sizeof(s));
  s.zWho = zWho;
  s.pzErr = pzErr;
  rc = splitList(zSpec, columnPart, &s, zWho, "column", pzErr);
  if( rc==SQLITE_OK && s.nCol==0 ){
    fedSetError(pzErr, "%s: the columns option names no column", zWho);
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK && s.nCol>FED_MAX_COLUMNS ){
    fedSetError(pzErr, "%s: too many columns (%d, at most %d)", zWho,
                s.nCol, FED_MAX_COLUMNS);
    rc = SQLITE_ERROR;
  }
  if( rc!=SQLITE_OK ){
    fedColumnsFree(s.aCol, s.nCol);
    return rc;
  }
  *paCol = s.aCol;
  *pnCol = s.nCol;
  return SQLITE_OK;
}

char *fedColumnsRender(const FedColumn *aCol, int nCol){
  sqlite3_str *p = sqlite3_str_new(0);
  int i;
  for(i=0; i<nCol; i++){
    sqlite3_str_appendf(p, "%s\"%w\" %s%s%s%s", i ? ", " : "",
        aCol[i].zName, aCol[i].zType,
        aCol[i].bPk ? " primary key" : "",
        aCol[i].bNotNull ? " not null" : "",
        aCol[i].bDefault ? " default" : "");
  }
  return sqlite3_str_finish(p);
}

void fedColumnsFree(FedColumn *aCol, int nCol){
  int i;
  for(i=0; i<nCol; i++){
    sqlite3_free(aCol[i].zName);
    sqlite3_free(aCol[i].zType);
  }
  sqlite3_free(aCol);
}
