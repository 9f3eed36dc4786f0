/*
** match.c: key patterns: the Redis glob matcher, LIKE and GLOB turned into
** SCAN MATCH patterns, prefix and disjointness checks.
**
** Patterns.  A table's key space is a Redis glob (MATCH syntax), matched
** here exactly as Redis's stringmatchlen() does.  SQLite GLOB and LIKE
** patterns on the key are translated into a MATCH pattern that selects a
** superset of their keys; each key is then checked locally with SQLite's
** own GLOB (sqlite3_strglob), or by SQLite itself for LIKE.
*/
#include "redisInt.h"

/* Redis's glob: * ? [...] (with ^ and ranges) and \ escapes, on bytes. */
static int redisGlob(const char *p, int pn, const char *s, int sn, int nest){
  if( nest>1000 ) return 0;
  while( pn>0 && sn>0 ){
    switch( p[0] ){
      case '*':
        while( pn>1 && p[1]=='*' ){ p++; pn--; }
        if( pn==1 ) return 1;
        while( sn>0 ){
          if( redisGlob(p+1, pn-1, s, sn, nest+1) ) return 1;
          s++; sn--;
        }
        return 0;
      case '?':
        s++; sn--;
        break;
      case '[': {
        int bNot, bMatch = 0;
        p++; pn--;
        bNot = pn>0 && p[0]=='^';
        if( bNot ){ p++; pn--; }
        while( 1 ){
          if( pn==0 ){
            p--; pn++;
            break;
          }else if( p[0]=='\\' && pn>=2 ){
            p++; pn--;
            if( p[0]==s[0] ) bMatch = 1;
          }else if( p[0]==']' ){
            break;
          }else if( pn>=3 && p[1]=='-' ){
            /* Signed chars, as Redis compares them. */
            int iStart = (signed char)p[0];
            int iEnd = (signed char)p[2];
            int c = (signed char)s[0];
            if( iStart>iEnd ){ int t = iStart; iStart = iEnd; iEnd = t; }
            p += 2; pn -= 2;
            if( c>=iStart && c<=iEnd ) bMatch = 1;
          }else if( p[0]==s[0] ){
            bMatch = 1;
          }
          p++; pn--;
        }
        if( bNot ) bMatch = !bMatch;
        if( !bMatch ) return 0;
        s++; sn--;
        break;
      }
      case '\\':
        if( pn>=2 ){ p++; pn--; }
        /* fall through */
      default:
        if( p[0]!=s[0] ) return 0;
        s++; sn--;
        break;
    }
    p++; pn--;
    if( sn==0 ){
      while( pn>0 && p[0]=='*' ){ p++; pn--; }
      break;
    }
  }
  return pn==0 && sn==0;
}

/* A key in a table's key space (pattern zPat): Redis's glob, except that
** a pattern of only '*' also takes the empty key (as SCAN does). */
int rdKeyInSpace(const char *zPat, int nPat, const char *z, int n){
  if( n==0 ){
    int i;
    for(i=0; i<nPat && zPat[i]=='*'; i++){}
    return i==nPat;
  }
  return redisGlob(zPat, nPat, z, n, 0);
}

/* The literal prefix of a Redis pattern (escapes removed) into zOut;
** returns its length. */
static int matchPrefix(const char *z, char *zOut, int nOut){
  int n = 0;
  while( *z && *z!='*' && *z!='?' && *z!='[' && n<nOut ){
    if( *z=='\\' && z[1] ) z++;
    zOut[n++] = *z++;
  }
  return n;
}

/* True if no key can match both patterns: their literal prefixes differ
** before either ends. */
int rdMatchDisjoint(const char *zA, const char *zB){
  char aA[64], aB[64];
  int nA = matchPrefix(zA, aA, sizeof(aA));
  int nB = matchPrefix(zB, aB, sizeof(aB));
  int n = nA<nB ? nA : nB;
  return memcmp(aA, aB, n)!=0;
}

/* Append c escaped for a Redis pattern. */
static void matchLiteral(sqlite3_str *s, char c){
  if( c=='*' || c=='?' || c=='[' || c==']' || c=='\\' ){
    sqlite3_str_appendchar(s, 1, '\\');
  }
  sqlite3_str_appendchar(s, 1, c);
}

/* The Redis pattern of a literal prefix: prefix='a*b' -> a\*b* */
char *rdPrefixPattern(const char *z){
  sqlite3_str *s = sqlite3_str_new(0);
  for(; *z; z++) matchLiteral(s, *z);
  sqlite3_str_appendchar(s, 1, '*');
  return sqlite3_str_finish(s);
}

/* Length of the UTF-8 character at z (1 for a stray byte). */
static int utf8Len(const unsigned char *z){
  int n = 1;
  if( z[0]>=0xc0 ){
    while( (z[n]&0xc0)==0x80 ) n++;
  }
  return n;
}

/*
** Translate an SQLite GLOB pattern into a Redis MATCH pattern that
** matches at least every key the GLOB matches: '?' and any non-ASCII or
** negated part become "?*" (one character may be several bytes), classes
** of ASCII characters are spelled out, and a '*' is added at the end
** (SQLite stops comparing at a NUL byte of a blob key; Redis does not).
** *pbNone is set when the pattern can match nothing (an unterminated or
** empty [...]).  Returns an sqlite3_malloc'd pattern or NULL (OOM).
*/
char *rdGlobToMatch(const char *zGlob, int *pbNone){
  const unsigned char *z = (const unsigned char*)zGlob;
  sqlite3_str *s = sqlite3_str_new(0);
  *pbNone = 0;
  while( *z ){
    unsigned c = *z;
    if( c=='*' ){
      sqlite3_str_appendchar(s, 1, '*');
      z++;
    }else if( c=='?' ){
      sqlite3_str_appendall(s, "?*");
      z++;
    }else if( c=='[' ){
      /* SQLite: [^...] inverts, a ']' first is literal, a-b is a range. */
      const unsigned char *q = z+1;
      int bInvert = 0, bAscii = 1, nMember = 0;
      unsigned char aSeen[128];
      unsigned prior = 0;
      memset(aSeen, 0, sizeof(aSeen));
      if( *q=='^' ){ bInvert = 1; q++; }
      if( *q==']' ){ aSeen[']'] = 1; nMember++; q++; }
      while( *q && *q!=']' ){
        unsigned c2 = *q;
        int n2 = utf8Len(q);
        if( c2=='-' && q[1]!=']' && q[1]!=0 && prior>0 ){
          unsigned cEnd = q[1];
          int nEnd = utf8Len(q+1);
          if( cEnd>=0x80 || prior>=0x80 ){
            bAscii = 0;
          }else{
            unsigned k;
            for(k=prior; k<=cEnd; k++){ aSeen[k] = 1; nMember++; }
          }
          q += 1+nEnd;
          prior = 0;
          continue;
        }
        if( c2>=0x80 ) bAscii = 0; else { aSeen[c2] = 1; nMember++; }
        prior = c2>=0x80 ? 0x80 : c2;
        q += n2;
      }
      if( *q==0 ){
        /* Unterminated: SQLite's GLOB matches nothing at all. */
        *pbNone = 1;
        break;
      }
      if( bInvert || !bAscii ){
        sqlite3_str_appendall(s, "?*");
      }else if( nMember==0 ){
        *pbNone = 1;
        break;
      }else{
        unsigned k;
        sqlite3_str_appendchar(s, 1, '[');
        for(k=1; k<128; k++){
          if( aSeen[k] ){
            if( k==']' || k=='\\' || k=='^' || k=='-' || k=='[' ){
              sqlite3_str_appendchar(s, 1, '\\');
            }
            sqlite3_str_appendchar(s, 1, (char)k);
          }
        }
        sqlite3_str_appendchar(s, 1, ']');
      }
      z = q+1;
    }else if( c>=0x80 ){
      sqlite3_str_appendall(s, "?*");
      z += utf8Len(z);
    }else{
      matchLiteral(s, (char)c);
      z++;
    }
  }
  if( sqlite3_str_length(s)==0
   || sqlite3_str_value(s)[sqlite3_str_length(s)-1]!='*' ){
    sqlite3_str_appendchar(s, 1, '*');
  }
  return sqlite3_str_finish(s);
}

/* Translate an SQLite LIKE pattern (ASCII case-insensitive, % and _) into
** a Redis MATCH pattern selecting a superset of its keys. */
char *rdLikeToMatch(const char *zLike){
  const unsigned char *z = (const unsigned char*)zLike;
  sqlite3_str *s = sqlite3_str_new(0);
  while( *z ){
    unsigned c = *z;
    if( c=='%' ){
      sqlite3_str_appendchar(s, 1, '*');
      z++;
    }else if( c=='_' ){
      sqlite3_str_appendall(s, "?*");
      z++;
    }else if( c>=0x80 ){
      sqlite3_str_appendall(s, "?*");
      z += utf8Len(z);
    }else if( (c>='a' && c<='z') || (c>='A' && c<='Z') ){
      sqlite3_str_appendf(s, "[%c%c]", (char)(c|0x20), (char)(c&~0x20));
      z++;
    }else{
      matchLiteral(s, (char)c);
      z++;
    }
  }
  if( sqlite3_str_length(s)==0
   || sqlite3_str_value(s)[sqlite3_str_length(s)-1]!='*' ){
    sqlite3_str_appendchar(s, 1, '*');
  }
  return sqlite3_str_finish(s);
}

/* How selective a MATCH pattern is: the characters it fixes before its
** first wildcard (a [...] counts as one). */
int rdMatchScore(const char *z, int n){
  int i = 0, nScore = 0;
  while( i<n ){
    char c = z[i];
    if( c=='*' || c=='?' ) break;
    if( c=='\\' ){ i += 2; nScore++; continue; }
    if( c=='[' ){
      i++;
      while( i<n && z[i]!=']' ){ if( z[i]=='\\' ) i++; i++; }
      i++;
      nScore++;
      continue;
    }
    i++;
    nScore++;
  }
  return nScore;
}
