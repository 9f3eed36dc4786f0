/*
** federate: SQLite virtual tables over remote data stores.
**
** The public C interface.  A program that links libfederate.a registers the
** extension on one connection with sqlite3_federate_init(), or on every new
** connection with sqlite3_auto_extension((void(*)(void))sqlite3_federate_init).
** The loadable build (federate.so) exports the same entry point, so
** ".load ./federate" in the sqlite3 shell finds it by name.
*/
#ifndef FEDERATE_H
#define FEDERATE_H

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FEDERATE_VERSION "0.1.0"

#if defined(_WIN32)
# define FEDERATE_API __declspec(dllexport)
#else
# define FEDERATE_API __attribute__((visibility("default")))
#endif

/*
** Register every federate module and function on db.  Returns SQLITE_OK or
** an SQLite error code, with *pzErrMsg (if pzErrMsg is not NULL) set to a
** message from sqlite3_malloc() that the caller frees.
*/
FEDERATE_API int sqlite3_federate_init(
  sqlite3 *db,
  char **pzErrMsg,
  const struct sqlite3_api_routines *pApi
);

/* The library version, FEDERATE_VERSION. */
FEDERATE_API const char *sqlite3_federate_version(void);

#ifdef __cplusplus
}
#endif
#endif /* FEDERATE_H */
