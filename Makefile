# federate: build the loadable extension, the static library, the testfixture
# and the shell launcher.  Debian 12 packages only (see README.md).
#
#   make               federate.so libfederate.a build/testfixture federate-shell
#   make test          the Tcl suite against real servers (tcl-tests/run.sh)
#   make quicktest     the same, faster: sampled OOM loops, one crash loop
#   make demo          the main job: a short demonstration (demo/demo.sh)
#   make install PREFIX=/usr/local
#   make deps          install the Debian packages the build and tests need

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra
PREFIX  ?= /usr/local
MONGO_INC := $(shell pkg-config --cflags libmongoc-1.0 2>/dev/null)
MONGO_LIB := $(shell pkg-config --libs libmongoc-1.0 2>/dev/null || echo -lmongoc-1.0 -lbson-1.0)
PG_INC  := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
TCL_INC  = -I/usr/include/tcl8.6
MY_INC  := $(shell pkg-config --cflags libmariadb 2>/dev/null || echo -I/usr/include/mariadb)
INCS     = -Iext $(PG_INC) $(MY_INC) $(MONGO_INC)
LIBS     = -lpq -lcurl -ljansson -lhiredis -lmariadb $(MONGO_LIB) -lm

CORE    = ext/main.c ext/config.c ext/server.c ext/plan.c ext/value.c \
          ext/vtab.c ext/txn.c ext/explain.c ext/query.c ext/fault.c ext/txlog.c ext/saga.c \
          ext/undo.c ext/eponymous.c ext/context.c ext/kv.c ext/stats.c \
          $(wildcard ext/cache/*.c)
# The stores: one name each; a store's sources are vtab/<name>/*.c.
STORE_NAMES = postgres redis etcd mysql mongo couchdb
STORES  = vtab/http.c $(foreach s,$(STORE_NAMES),$(wildcard vtab/$(s).c vtab/$(s)/*.c))
SRC     = $(CORE) $(STORES)
HDRS    = ext/federate.h ext/fedInt.h ext/kv.h $(wildcard ext/*/*.h) vtab/http.h $(wildcard vtab/*/*.h)

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

TF_SRC = testfixture/testfixture.c testfixture/test_store.c
build/testfixture: $(TF_SRC) libfederate.a $(HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(WARN) -DSQLITE_CORE $(INCS) $(TCL_INC) -o $@ \
	  $(TF_SRC) libfederate.a -ltcl8.6 -lsqlite3 $(LIBS)

federate-shell: shell/federate-shell.in federate.so
	sed "s|@FEDERATE_SO@|$(CURDIR)/federate|" shell/federate-shell.in > $@
	chmod +x $@

# Debian 12 packages for the build, the tests and the demo; apt-get runs
# only when one is missing.
DEPS = gcc make pkg-config libpq-dev libsqlite3-dev sqlite3 tcl8.6-dev \
       libsqlite3-tcl postgresql-15 postgresql-client-15 redis-server \
       libcurl4-openssl-dev libjansson-dev libhiredis-dev python3 \
       libmariadb-dev mariadb-server libmongoc-dev python3-mongomock python3-bson
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

# No two ext/ files may call each other in a circle (docs/ARCHITECTURE.md).
check-cycles: libfederate.a
	@python3 testfixture/checkcycles.py

test: all check-exports check-cycles
	bash tcl-tests/run.sh

# The minutes-long loop: every file, with every 40th OOM point, one pass of
# each crash point and short random differential runs (FED_TEST_QUICK=1).
quicktest: all
	FED_TEST_QUICK=1 FED_TEST_OOM_STRIDE=$${FED_TEST_OOM_STRIDE:-40} \
	  FED_TEST_CRASH_LOOPS=$${FED_TEST_CRASH_LOOPS:-1} bash tcl-tests/run.sh

demo: all
	bash demo/demo.sh

bench: libfederate.a
	bash bench/run.sh

# The libraries a program that links libfederate.a needs (bench/run.sh).
print-libs:
	@echo $(LIBS)

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

.PHONY: all test quicktest demo bench deps install clean check-exports check-cycles print-libs

# --- sanitizers and fuzzing ---
# Separate clang builds under build/asan/ and build/fuzz/; see
# docs/TESTING.md, "Sanitizers and fuzzing".
#
#   make test-asan       the suite with an ASan+UBSan testfixture
#   make test-valgrind   the suite under valgrind (the normal testfixture)
#   make fuzz            the libFuzzer targets, each for FUZZ_SECONDS (60)
#   make fuzz-replay     each target once over its committed corpus (CI)

CLANG        ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS  = config plan value sql pg mongo
FUZZ_DIR      = testfixture/fuzz
SAN           = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
SAN_CFLAGS    = -O1 -g $(WARN) -fvisibility=hidden -DSQLITE_CORE $(INCS)
ASAN_OBJ      = $(SRC:%.c=build/asan/%.o)
FUZZ_OBJ      = $(SRC:%.c=build/fuzz/obj/%.o)
FUZZ_BIN      = $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

# Leaks are fatal (LSan at exit; federate's sqlite3_malloc memory is also
# counted by the harness's per-file leak check): libtcl and libpq free or
# keep reachable what they allocate, so no suppressions are needed.  A UBSan
# report stops the process, so its file fails.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

build/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN) $(SAN_CFLAGS) -c $< -o $@

# The same sources as build/testfixture (TF_SRC when the rules above name it).
ASAN_TF_SRC   = $(or $(TF_SRC),testfixture/testfixture.c)
build/asan/testfixture: $(ASAN_TF_SRC) $(ASAN_OBJ) $(HDRS)
	$(CLANG) $(SAN) $(SAN_CFLAGS) $(TCL_INC) -o $@ \
	  $(ASAN_TF_SRC) $(ASAN_OBJ) -ltcl8.6 -lsqlite3 $(LIBS)

test-asan: build/asan/testfixture
	$(SAN_ENV) FED_TESTFIXTURE=build/asan/testfixture bash tcl-tests/run.sh

# Exit status 99 on a valgrind error, so that all.tcl reports it even in a
# file that also has failing checks (those exit with 1).  Valgrind does x87
# long double arithmetic in 64 bits, and SQLite 3.40 converts REAL <-> text
# with it: pgread's exact-float checks fail under valgrind (docs/TESTING.md).
test-valgrind: build/testfixture
	FED_TESTFIXTURE_WRAPPER="valgrind --error-exitcode=99 -q --leak-check=no" \
	  FED_TESTFIXTURE=build/testfixture bash tcl-tests/run.sh

# The fuzz targets link the ext/ and vtab/ objects themselves (the internal
# functions are hidden from federate.so, not from an object file).
build/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CLANG) -fsanitize=fuzzer-no-link $(SAN) $(SAN_CFLAGS) -c $< -o $@

build/fuzz/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_OBJ) $(HDRS)
	$(CLANG) -fsanitize=fuzzer $(SAN) $(SAN_CFLAGS) -o $@ $< $(FUZZ_OBJ) \
	  -lsqlite3 $(LIBS)

# fuzz_pg links the PostgreSQL store's pure files (PG_PURE: they build SQL
# and decode values without libpq) and, from an archive of the core, only
# what they need: no other store file, no libpq.
PG_PURE     = vtab/postgres/types.c vtab/postgres/deparse.c
PG_FUZZ_OBJ = $(PG_PURE:%.c=build/fuzz/obj/%.o)
build/fuzz/libcore.a: $(CORE:%.c=build/fuzz/obj/%.o)
	rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_pg: $(FUZZ_DIR)/fuzz_pg.c $(PG_FUZZ_OBJ) build/fuzz/libcore.a $(HDRS)
	$(CLANG) -fsanitize=fuzzer $(SAN) $(SAN_CFLAGS) -Ivtab/postgres -o $@ $< \
	  $(PG_FUZZ_OBJ) build/fuzz/libcore.a -lsqlite3 -lm

# fuzz_mongo: the MongoDB store's pure files (the find builder) and libbson.
MONGO_PURE     = vtab/mongo/plan.c vtab/mongo/types.c
MONGO_FUZZ_OBJ = $(MONGO_PURE:%.c=build/fuzz/obj/%.o)
build/fuzz/fuzz_mongo: $(FUZZ_DIR)/fuzz_mongo.c $(MONGO_FUZZ_OBJ) build/fuzz/libcore.a $(HDRS)
	$(CLANG) -fsanitize=fuzzer $(SAN) $(SAN_CFLAGS) -Ivtab/mongo -o $@ $< \
	  $(MONGO_FUZZ_OBJ) build/fuzz/libcore.a -lsqlite3 $(MONGO_LIB) -lm

# Keep the objects: make would delete them as intermediates of the rule above.
.SECONDARY: $(FUZZ_OBJ)
fuzz-build: $(FUZZ_BIN)

# Fuzz a copy of each committed corpus (build/fuzz/corpus/<target>, kept
# between runs); crashes land in build/fuzz/crashes/.  One line per target
# at the end: executions, corpus size, result.
fuzz: fuzz-build
	@mkdir -p build/fuzz/crashes; fail=0; summary=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  cp -r $(FUZZ_DIR)/corpus/$$t/. build/fuzz/corpus/$$t/; \
	  dict=""; [ -f $(FUZZ_DIR)/$$t.dict ] && dict=-dict=$(FUZZ_DIR)/$$t.dict; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  rc=0; $(SAN_ENV) build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -print_final_stats=1 $$dict \
	    -artifact_prefix=build/fuzz/crashes/$$t- build/fuzz/corpus/$$t \
	    > build/fuzz/$$t.log 2>&1 || rc=$$?; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$t.log); \
	  line="fuzz_$$t: $${execs:-?} executions, $$(ls build/fuzz/corpus/$$t | wc -l) corpus files"; \
	  if [ $$rc -ne 0 ]; then \
	    fail=1; line="$$line, FAILED (exit $$rc; build/fuzz/$$t.log)"; \
	    grep -a -E "^(fuzz_$$t: |==[0-9]+==ERROR|SUMMARY|.*runtime error)" \
	      build/fuzz/$$t.log | head -5; \
	  fi; \
	  summary="$$summary$$line\n"; \
	done; printf "$$summary"; exit $$fail

# Each target once over its committed corpus: no mutation, nothing written.
fuzz-replay: fuzz-build
	@mkdir -p build/fuzz/crashes; fail=0; for t in $(FUZZ_TARGETS); do \
	  rc=0; $(SAN_ENV) build/fuzz/fuzz_$$t -runs=0 \
	    -artifact_prefix=build/fuzz/crashes/replay-$$t- $(FUZZ_DIR)/corpus/$$t \
	    > build/fuzz/$$t-replay.log 2>&1 || rc=$$?; \
	  n=$$(ls $(FUZZ_DIR)/corpus/$$t | wc -l); \
	  if [ $$rc -eq 0 ]; then echo "fuzz_$$t: $$n inputs ok"; \
	  else fail=1; echo "fuzz_$$t: FAILED (exit $$rc)"; \
	    tail -n 40 build/fuzz/$$t-replay.log; fi; \
	done; exit $$fail

.PHONY: test-asan test-valgrind fuzz fuzz-build fuzz-replay
# --- end sanitizers and fuzzing ---
