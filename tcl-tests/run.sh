#!/usr/bin/env bash
# run.sh: the test suite, as "make test" runs it (after make builds the
# testfixture).  Installs what is missing, starts a throwaway PostgreSQL on
# 127.0.0.1, runs every tcl-tests/*.test in its own testfixture process
# (all.tcl), stops the server, and ends with the line
#     N passed, N failed[, N skipped]
# Exit status 1 if anything failed.
#
# Environment it reads (all optional):
#   FED_TEST_FILES            test files to run instead of all: names
#                             ("tester.test", "tester", "pg*.test") or paths
#   FED_TESTFIXTURE           the testfixture binary (default: the first of
#                             build/testfixture, testfixture,
#                             testfixture/testfixture that make built)
#   FED_TESTFIXTURE_WRAPPER   a prefix for each run, e.g.
#                             "valgrind --error-exitcode=1 -q"
#   FED_TEST_TIMEOUT          seconds one file may take (default 1800)
#   FED_TEST_NO_PG=1          start no server: the PostgreSQL tests skip
#   FED_TEST_PG_DSN           set: use that server instead of starting one
#                             (kill/restart tests then skip)
#   FED_TEST_PG_PASSWORD      the password of role fedpw (default: random)
#   FED_TEST_MATCH, FED_TEST_KEEP, FED_TEST_OOM_VERBOSE: see tester.tcl
#
# Environment it sets for the tests, when it starts the server:
#   FED_TEST_PG_DSN       "host=127.0.0.1 port=P dbname=fedtest user=postgres"
#   FED_TEST_PG_PORT      P
#   FED_TEST_PG_DATADIR   the server's data directory (PGDATA)
#   FED_TEST_PG_SOCKET    the directory of its unix socket
#   FED_TEST_PG_PASSWORD  the password of role fedpw (scram-sha-256 over TCP)
#   FED_TEST_PG_CTL       a command prefix; append kill, immediate, restart
#                         or status (see pgserver.sh), e.g. from Tcl:
#                         exec {*}$env(FED_TEST_PG_CTL) restart
#   FED_TEST_REDIS_URL    "redis://127.0.0.1:P/0", FED_TEST_REDIS_PORT, and
#   FED_TEST_REDIS_CTL    a prefix for kill|restart (kvserver.sh)
#   FED_TEST_ETCD_URL     "http://127.0.0.1:P", FED_TEST_ETCD_PORT,
#   FED_TEST_ETCD_CTL     likewise (FED_TEST_NO_KV=1: start neither)
#   FED_TEST_TMPDIR       where each file makes its temporary directory
#   FED_TESTFIXTURE       the testfixture binary
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
cd "$top"

say() { echo "run.sh: $*" >&2; }

pgdir=""                       # The server's directory while it runs

# Stop the test server, if one was started.  Returns non-zero if it would
# not stop.
stop_pg() {
  local dir=$pgdir
  pgdir=""
  [ -n "$dir" ] && [ -f "$dir/.fedtest-pg" ] || return 0
  bash "$here/pgserver.sh" stop "$dir" || { say "could not stop PostgreSQL"; return 1; }
}

# Stop here as a failed run: the last line is still a count.
give_up() {
  say "$*"
  stop_pg || true
  echo "0 passed, 1 failed"
  exit 1
}

#-------------------------------------------------------------------------
# Packages, installed only when missing.
#
need=(postgresql-15 libpq-dev tcl8.6 tcl8.6-dev libsqlite3-tcl libsqlite3-dev
      sqlite3 redis-server etcd-server curl libcurl4-openssl-dev libjansson-dev
      libhiredis-dev)
missing=()
for pkg in "${need[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] ||
    give_up "missing packages: ${missing[*]} (run as root, or install them)"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
fi

#-------------------------------------------------------------------------
# The testfixture.
#
tf=${FED_TESTFIXTURE:-}
if [ -z "$tf" ]; then
  for c in "$top/build/testfixture" "$top/testfixture" \
           "$top/testfixture/testfixture"; do
    if [ -f "$c" ] && [ -x "$c" ]; then tf=$c; break; fi
  done
fi
if [ -z "$tf" ] || [ ! -f "$tf" ] || [ ! -x "$tf" ]; then
  give_up "no testfixture binary: run make first (or set FED_TESTFIXTURE)"
fi
export FED_TESTFIXTURE=$tf

#-------------------------------------------------------------------------
# The test files.
#
files=()
if [ -n "${FED_TEST_FILES:-}" ]; then
  for word in $FED_TEST_FILES; do
    found=0
    for f in "$word" "$here/$word" "$here/$word.test"; do
      if [ -f "$f" ]; then files+=("$f"); found=1; break; fi
    done
    if [ $found -eq 0 ]; then
      for f in "$here"/$word; do
        if [ -f "$f" ]; then files+=("$f"); found=1; fi
      done
    fi
    [ $found -eq 1 ] || give_up "no test file matches \"$word\""
  done
else
  for f in "$here"/*.test; do
    [ -f "$f" ] && files+=("$f")
  done
fi

#-------------------------------------------------------------------------
# A scratch directory, removed at exit (the files of failed tests stay), and
# the PostgreSQL server, always stopped at exit.
#
work=$(mktemp -d "${TMPDIR:-/tmp}/fedtest.XXXXXX")
chmod 755 "$work"              # the postgres user must reach $work/pg
export FED_TEST_TMPDIR=$work/files
mkdir "$FED_TEST_TMPDIR"
failed=1

# Redis and etcd (tcl-tests/kvserver.sh), stopped at exit.
kvstores=()
stop_kv() {
  local s
  for s in "${kvstores[@]}"; do
    bash "$here/kvserver.sh" stop "$s" "$work/$s" >/dev/null 2>&1 || true
  done
  kvstores=()
}

# shellcheck disable=SC2317     # (called from the trap)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pg || true
  stop_kv
  if [ "$failed" -eq 0 ]; then
    rm -rf -- "$work"
  elif [ -d "$work" ]; then
    rm -f -- "$work/out"
    rmdir "$FED_TEST_TMPDIR" "$work" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${FED_TEST_NO_PG:-}" ]; then
  say "FED_TEST_NO_PG is set: no PostgreSQL server, its tests will skip"
  unset FED_TEST_PG_DSN
elif [ -n "${FED_TEST_PG_DSN:-}" ]; then
  say "using the PostgreSQL server of FED_TEST_PG_DSN"
elif [ "$(id -u)" -ne 0 ]; then
  say "not root: no PostgreSQL server, its tests will skip"
else
  if [ -z "${FED_TEST_PG_PASSWORD:-}" ]; then
    FED_TEST_PG_PASSWORD=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  fi
  export FED_TEST_PG_PASSWORD
  pgdir=$work/pg
  port=$(bash "$here/pgserver.sh" start "$pgdir") ||
    give_up "PostgreSQL did not start"
  export FED_TEST_PG_PORT=$port
  export FED_TEST_PG_DSN="host=127.0.0.1 port=$port dbname=fedtest user=postgres"
  export FED_TEST_PG_DATADIR=$pgdir/data
  export FED_TEST_PG_SOCKET=$pgdir
  export FED_TEST_PG_CTL="bash $here/pgserver.sh --dir $pgdir"
  say "PostgreSQL 15 on 127.0.0.1:$port"
fi

if [ -n "${FED_TEST_NO_KV:-}" ]; then
  say "FED_TEST_NO_KV is set: no Redis or etcd server, their tests will skip"
  unset FED_TEST_REDIS_URL FED_TEST_ETCD_URL
else
  if [ -z "${FED_TEST_REDIS_URL:-}" ] && command -v redis-server >/dev/null; then
    port=$(bash "$here/kvserver.sh" start redis "$work/redis") ||
      give_up "Redis did not start"
    kvstores+=(redis)
    export FED_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    export FED_TEST_REDIS_PORT=$port
    export FED_TEST_REDIS_CTL="bash $here/kvserver.sh --dir $work/redis redis"
    say "Redis on 127.0.0.1:$port"
  fi
  if [ -z "${FED_TEST_ETCD_URL:-}" ] && command -v etcd >/dev/null; then
    port=$(bash "$here/kvserver.sh" start etcd "$work/etcd") ||
      give_up "etcd did not start"
    kvstores+=(etcd)
    export FED_TEST_ETCD_URL="http://127.0.0.1:$port"
    export FED_TEST_ETCD_PORT=$port
    export FED_TEST_ETCD_CTL="bash $here/kvserver.sh --dir $work/etcd etcd"
    say "etcd on 127.0.0.1:$port"
  fi
fi

#-------------------------------------------------------------------------
# The tests.  all.tcl prints the total as its last line; the cleanup after
# it prints nothing unless stopping the server fails, and then the total is
# printed again so that it stays last.
#
rc=0
"$tf" "$here/all.tcl" "${files[@]}" | tee "$work/out" || rc=$?
summary=$(tail -n 1 "$work/out")
[[ $summary =~ ^[0-9]+\ passed,\ [0-9]+\ failed ]] ||
  { summary="0 passed, 1 failed"; rc=1; echo "$summary"; }
[ $rc -eq 0 ] && failed=0

stop_kv
stop_pg || echo "$summary"
exit $rc
