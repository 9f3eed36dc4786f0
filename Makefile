# federate: build the loadable extension, the static library, the testfixture
# and the shell launcher.  Debian 12 packages only (see README.md).
#
#   make               federate.so libfederate.a build/testfixture federate-shell
#   make test          the Tcl suite against real servers (tcl-tests/run.sh)
#   make demo          the main job: a short demonstration (demo/demo.sh)
#   make install PREFIX=/usr/local
#   make deps          install the Debian packages the build and tests need

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra
PREFIX  ?= /usr/local
PG_INC  := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
TCL_INC  = -I/usr/include/tcl8.6
INCS     = -Iext $(PG_INC)
LIBS     = -lpq -lm

CORE    = ext/main.c ext/config.c ext/server.c ext/plan.c ext/value.c \
          ext/vtab.c ext/txn.c ext/explain.c ext/query.c ext/fault.c
STORES  = vtab/postgres.c
SRC     = $(CORE) $(STORES)
HDRS    = ext/federate.h ext/fedInt.h

SO_OBJ  = $(SRC:%.c=build/so/%.o)
LIB_OBJ = $(SRC:%.c=build/lib/%.o)

all: federate.so libfederate.a build/testfixture federate-shell

# The loadable extension reaches SQLite through the sqlite3_api table.
build/so/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden $(INCS) -c $< -o $@

# The static library calls SQLite directly (SQLITE_CORE).
build/lib/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -DSQLITE_CORE $(INCS) -c $< -o $@

federate.so: $(SO_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $(SO_OBJ) $(LIBS)

libfederate.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

build/testfixture: testfixture/testfixture.c libfederate.a
	@mkdir -p build
	$(CC) $(CFLAGS) $(WARN) -DSQLITE_CORE $(INCS) $(TCL_INC) -o $@ \
	  testfixture/testfixture.c libfederate.a -ltcl8.6 -lsqlite3 $(LIBS)

federate-shell: shell/federate-shell.in federate.so
	sed "s|@FEDERATE_SO@|$(CURDIR)/federate|" shell/federate-shell.in > $@
	chmod +x $@

# Debian 12 packages for the build, the tests and the demo; apt-get runs
# only when one is missing.
DEPS = gcc make pkg-config libpq-dev libsqlite3-dev sqlite3 tcl8.6-dev \
       libsqlite3-tcl postgresql-15 postgresql-client-15
deps:
	@missing=$$(for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Only the entry point and the public API may be exported.
check-exports: federate.so
	@bad=$$(nm -D --defined-only federate.so | awk '{print $$3}' | \
	  grep -v -E '^(sqlite3_federate_init|sqlite3_federate_[a-z_]+|_init|_fini)$$'); \
	if [ -n "$$bad" ]; then echo "unexpected exports: $$bad"; exit 1; fi; \
	echo "exports ok"

test: all check-exports
	bash tcl-tests/run.sh

demo: all
	bash demo/demo.sh

federate.pc: federate.pc.in
	sed "s|@PREFIX@|$(PREFIX)|" federate.pc.in > $@

install: federate.so libfederate.a federate.pc
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 federate.so $(DESTDIR)$(PREFIX)/lib/federate.so
	install -m 644 libfederate.a $(DESTDIR)$(PREFIX)/lib/libfederate.a
	install -m 644 ext/federate.h $(DESTDIR)$(PREFIX)/include/federate.h
	install -m 644 federate.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/federate.pc
	sed "s|@FEDERATE_SO@|$(PREFIX)/lib/federate|" shell/federate-shell.in > $(DESTDIR)$(PREFIX)/bin/federate-shell
	chmod 755 $(DESTDIR)$(PREFIX)/bin/federate-shell

clean:
	rm -rf build federate.so libfederate.a federate-shell federate.pc

.PHONY: all test demo deps install clean check-exports
