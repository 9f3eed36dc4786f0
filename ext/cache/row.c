/*
** cache/row.c: the row codec: one record blob per cached row, encoded by
** fed_cache_rec(), decoded by hand for a scan, or one value at a time by
** fed_cache_val() for queries over the cached rows.
*/
#include "cacheInt.h"

/**************************************************************************
** Rows.  A cached row is one blob, fed_cache_r<tid>.rec, holding the
** table's nCol values in column order (NULL for the columns the entry did
** not read), each a tag byte and its bytes:
**
**   0 NULL | 1..8 an integer in that many bytes, little-endian, two's
**   complement | 9 a real, its IEEE bits in 8 bytes, little-endian |
**   10 text (UTF-8), 11 blob: the length as a varint (7 bits a byte, low
**   first), then the bytes
**
** A scan from the cache decodes each row by hand into CacheCell's that
** xColumn hands to SQLite by type: cheaper than letting SQLite decode a
** column per value into a statement, to be copied once more through the
** virtual-table interface.  fed_cache_rec(v0, v1, ...) builds a record,
** fed_cache_val(rec, i) decodes value i (for SQL over the rows: terms,
** ORDER BY, L2).
*/

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__==__ORDER_LITTLE_ENDIAN__
# define CACHE_LE 1             /* A real's 8 bytes are memcpy()'d */
#else
# define CACHE_LE 0
#endif

/* Decode record a (n bytes) into aCell[0..nCell-1]; with bOne, decode
** nCell values into aCell[0] (the last one stays) and allow more bytes.
** SQLITE_OK, or SQLITE_CORRUPT for a malformed record.  Hot: every row
** read from the cache passes here. */
int fedCacheRecDecode(const u8 *a, int n, CacheCell *aCell, int nCell,
                      int bOne){
  int i, j = 0, k;
  for(i=0; i<nCell; i++){
    CacheCell *c = bOne ? aCell : &aCell[i];
    int t;
    if( j>=n ) return SQLITE_CORRUPT;
    t = a[j++];
    if( t==0 ){
      c->eType = SQLITE_NULL;
    }else if( t<=8 ){
      u64 u;
      if( t>n-j ) return SQLITE_CORRUPT;
      u = (u64)(i64)(signed char)a[j+t-1];
      for(k=t-2; k>=0; k--) u = (u<<8) | a[j+k];
      c->eType = SQLITE_INTEGER;
      c->u.i = (i64)u;
      j += t;
    }else if( t==9 ){
      if( 8>n-j ) return SQLITE_CORRUPT;
      if( CACHE_LE ){
        memcpy(&c->u.r, a+j, 8);
      }else{
        u64 u = 0;
        for(k=7; k>=0; k--) u = (u<<8) | a[j+k];
        memcpy(&c->u.r, &u, 8);
      }
      c->eType = SQLITE_FLOAT;
      j += 8;
    }else if( t==10 || t==11 ){
      unsigned len;
      if( j>=n ) return SQLITE_CORRUPT;
      len = a[j++];
      if( len>=0x80 ){
        int sh = 7;
        len &= 0x7f;
        do{
          if( j>=n || sh>28 ) return SQLITE_CORRUPT;
          len |= (unsigned)(a[j]&0x7f) << sh;
          sh += 7;
        }while( a[j++]&0x80 );
      }
      if( len>(unsigned)(n-j) ) return SQLITE_CORRUPT;
      c->eType = t==10 ? SQLITE_TEXT : SQLITE_BLOB;
      c->n = (int)len;
      c->u.z = a+j;
      j += (int)len;
    }else{
      return SQLITE_CORRUPT;
    }
  }
  return (bOne || j==n) ? SQLITE_OK : SQLITE_CORRUPT;
}

/* Set the result of ctx to cell c (text and blob copied). */
void fedCacheCellResult(sqlite3_context *ctx, const CacheCell *c){
  switch( c->eType ){
    case SQLITE_INTEGER: sqlite3_result_int64(ctx, c->u.i); break;
    case SQLITE_FLOAT: sqlite3_result_double(ctx, c->u.r); break;
    case SQLITE_TEXT:
      sqlite3_result_text(ctx, (const char*)c->u.z, c->n, SQLITE_TRANSIENT);
      break;
    case SQLITE_BLOB:
      sqlite3_result_blob(ctx, c->u.z, c->n, SQLITE_TRANSIENT);
      break;
  }
}

static int cacheVarintLen(unsigned v){
  int n = 1;
  while( v>=0x80 ){ v >>= 7; n++; }
  return n;
}

/* fed_cache_rec(v0, v1, ...): the record of a row (see "Rows"). */
void fedCacheRecFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  i64 nByte = 0;
  u8 *a, *z;
  int i, k;
  for(i=0; i<argc; i++){
    switch( sqlite3_value_type(argv[i]) ){
      case SQLITE_NULL: nByte += 1; break;
      case SQLITE_INTEGER: nByte += 9; break;
      case SQLITE_FLOAT: nByte += 9; break;
      case SQLITE_TEXT: {
        int nb = sqlite3_value_bytes(argv[i]);
        nByte += 1 + cacheVarintLen((unsigned)nb) + nb;
        break;
      }
      default: {
        int nb = sqlite3_value_bytes(argv[i]);
        nByte += 1 + cacheVarintLen((unsigned)nb) + nb;
        break;
      }
    }
  }
  a = z = sqlite3_malloc64(nByte ? nByte : 1);
  if( a==0 ){ sqlite3_result_error_nomem(ctx); return; }
  for(i=0; i<argc; i++){
    sqlite3_value *v = argv[i];
    switch( sqlite3_value_type(v) ){
      case SQLITE_NULL: *z++ = 0; break;
      case SQLITE_INTEGER: {
        i64 x = sqlite3_value_int64(v);
        u64 u = (u64)x;
        int nb = 1;
        while( nb<8 && (x < -((i64)1<<(8*nb-1)) || x >= ((i64)1<<(8*nb-1))) ){
          nb++;
        }
        *z++ = (u8)nb;
        for(k=0; k<nb; k++){ *z++ = (u8)u; u >>= 8; }
        break;
      }
      case SQLITE_FLOAT: {
        double r = sqlite3_value_double(v);
        u64 u;
        memcpy(&u, &r, 8);
        *z++ = 9;
        for(k=0; k<8; k++){ *z++ = (u8)u; u >>= 8; }
        break;
      }
      default: {
        /* Text by its bytes: sqlite3_value_text() would add a NUL (a
        ** copy).  Arguments are already in the database's UTF-8. */
        int bText = sqlite3_value_type(v)==SQLITE_TEXT;
        const u8 *p = (const u8*)sqlite3_value_blob(v);
        unsigned nb = (unsigned)sqlite3_value_bytes(v);
        if( p==0 && nb>0 ){
          sqlite3_free(a);
          sqlite3_result_error_nomem(ctx);
          return;
        }
        *z++ = bText ? 10 : 11;
        while( nb>=0x80 ){ *z++ = (u8)(nb|0x80); nb >>= 7; }
        *z++ = (u8)nb;
        nb = (unsigned)sqlite3_value_bytes(v);
        if( nb ) memcpy(z, p, nb);
        z += nb;
        break;
      }
    }
  }
  sqlite3_result_blob64(ctx, a, (sqlite3_uint64)(z-a), sqlite3_free);
}

/* fed_cache_val(rec, i): value i of a record. */
void fedCacheValFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const u8 *a = (const u8*)sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  int iCol = sqlite3_value_int(argv[1]);
  CacheCell c;
  (void)argc;
  c.eType = SQLITE_NULL;
  if( iCol<0 || fedCacheRecDecode(a, n, &c, iCol+1, 1) ){
    sqlite3_result_error(ctx, "malformed row in the federate cache", -1);
    return;
  }
  fedCacheCellResult(ctx, &c);
}
