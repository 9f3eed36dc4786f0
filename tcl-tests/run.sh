#!/usr/bin/env bash
# run.sh: the test suite, as "make test" runs it (after make builds the
# testfixture).  Installs what is missing, starts a throwaway server of
# each store on 127.0.0.1 (tcl-tests/servers/*.sh, below), runs every
# tcl-tests/*.test in its own testfixture process (all.tcl), stops the
# servers, and ends with the line
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
#   FED_TEST_NO_<STORE>=1     start no server for STORE (POSTGRES, REDIS,
#                             ETCD, MONGO: a script's name in upper case):
#                             its tests skip.  FED_TEST_NO_PG is
#                             FED_TEST_NO_POSTGRES; FED_TEST_NO_KV is both
#                             FED_TEST_NO_REDIS and FED_TEST_NO_ETCD
#   FED_TEST_PG_DSN, FED_TEST_REDIS_URL, FED_TEST_ETCD_URL,
#   FED_TEST_MONGO_URI        set: use that server instead of starting one
#                             (kill/restart tests then skip)
#   FED_TEST_PG_PASSWORD      the password of role fedpw (default: random)
#   FED_TEST_MATCH, FED_TEST_KEEP, FED_TEST_OOM_VERBOSE: see tester.tcl
#
# The servers: every tcl-tests/servers/STORE.sh is a store's server script.
# "STORE.sh setup DIR" starts a throwaway server in DIR and prints the
# variables the tests find it by, as lines "export FED_TEST_...=..."
# (exit status 3: it starts none here, and says why on stderr); "STORE.sh
# stop DIR" stops it at the end; "STORE.sh vars" names the variables that
# FED_TEST_NO_STORE unsets.  A script with the line "# fedtest: on-demand"
# is set up only when a test file to run says "require_server STORE".
# Each script's header lists what it exports; today:
#   postgres.sh  FED_TEST_PG_DSN, _PORT, _DATADIR, _SOCKET, _PASSWORD, _CTL
#   redis.sh     FED_TEST_REDIS_URL, _PORT, _CTL
#   etcd.sh      FED_TEST_ETCD_URL, _PORT, _CTL
#   mongo.sh     FED_TEST_MONGO_URI, _PORT, _CTL (on demand: mongo*.test)
#   couchdb.sh   FED_TEST_COUCHDB_URL, _PORT, _CTL (on demand: couchdb*.test)
# A _CTL variable is a command prefix for the script's verbs (kill,
# restart, ...; see each script), e.g. from Tcl:
#     exec {*}$env(FED_TEST_PG_CTL) restart
# Besides: FED_TEST_TMPDIR (where each file makes its temporary directory)
# and FED_TESTFIXTURE (the testfixture binary).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
cd "$top"

say() { echo "run.sh: $*" >&2; }

started=()                     # "STORE DIR" of each server running

# Stop the test servers that were started, the last first.  Returns
# non-zero if one would not stop.
stop_servers() {
  local i store dir rc=0
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    read -r store dir <<<"${started[$i]}"
    bash "$here/servers/$store.sh" stop "$dir" >/dev/null ||
      { say "could not stop the $store server"; rc=1; }
  done
  started=()
  return $rc
}

# Stop here as a failed run: the last line is still a count.
give_up() {
  say "$*"
  stop_servers || true
  echo "0 passed, 1 failed"
  exit 1
}

#-------------------------------------------------------------------------
# Packages, installed only when missing.
#
need=(postgresql-15 libpq-dev tcl8.6 tcl8.6-dev libsqlite3-tcl libsqlite3-dev
      sqlite3 redis-server etcd-server curl libcurl4-openssl-dev libjansson-dev
      libhiredis-dev mariadb-server libmariadb-dev libmongoc-dev
      python3-mongomock python3-bson)
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
# the servers, always stopped at exit.
#
work=$(mktemp -d "${TMPDIR:-/tmp}/fedtest.XXXXXX")
chmod 755 "$work"              # the postgres user must reach $work/postgres
export FED_TEST_TMPDIR=$work/files
mkdir "$FED_TEST_TMPDIR"
failed=1

# shellcheck disable=SC2317     # (called from the trap)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_servers || true
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

# True if FED_TEST_NO_<STORE> (or its older alias) asks for no server.
disabled() {
  local var="FED_TEST_NO_${1^^}"
  [ -n "${!var:-}" ] && return 0
  case $1 in
    postgres)  [ -n "${FED_TEST_NO_PG:-}" ] ;;
    redis|etcd) [ -n "${FED_TEST_NO_KV:-}" ] ;;
    *) return 1 ;;
  esac
}

# True if a test file to run says "require_server STORE" (the stores of
# on-demand scripts).
wanted() {
  local f
  for f in "${files[@]}"; do
    grep -Eq "require_server[[:space:]]+$1([^[:alnum:]_]|\$)" "$f" && return 0
  done
  return 1
}

for script in "$here"/servers/*.sh; do
  store=$(basename "$script" .sh)
  if disabled "$store"; then
    say "FED_TEST_NO_${store^^} is set: no $store server, its tests will skip"
    for var in $(bash "$script" vars); do unset "$var"; done
    continue
  fi
  if grep -q '^# fedtest: on-demand' "$script" && ! wanted "$store"; then
    continue
  fi
  rc=0
  out=$(bash "$script" setup "$work/$store") || rc=$?
  if [ $rc -eq 3 ]; then continue; fi     # It said why on stderr
  [ -d "$work/$store" ] && started+=("$store $work/$store")
  [ $rc -eq 0 ] || give_up "the $store server did not start"
  while IFS= read -r line; do
    [[ $line =~ ^export\ FED_TEST_[A-Z0-9_]+= ]] ||
      give_up "servers/$store.sh setup printed \"$line\""
    eval "$line"
  done <<<"$out"
done

#-------------------------------------------------------------------------
# The tests.  all.tcl prints the total as its last line; the cleanup after
# it prints nothing unless stopping a server fails, and then the total is
# printed again so that it stays last.
#
rc=0
"$tf" "$here/all.tcl" "${files[@]}" | tee "$work/out" || rc=$?
summary=$(tail -n 1 "$work/out")
[[ $summary =~ ^[0-9]+\ passed,\ [0-9]+\ failed ]] ||
  { summary="0 passed, 1 failed"; rc=1; echo "$summary"; }
[ $rc -eq 0 ] && failed=0

stop_servers || echo "$summary"
exit $rc
