#!/usr/bin/env bash
# couchdb.sh: a throwaway CouchDB-API server for the tests, on 127.0.0.1:
# pouchdb-server 4.2.0 from npm (there is no CouchDB in Debian 12), its
# data in DIR/data.  The verbs (start, stop, kill, restart, pause, resume,
# setup, vars) are in kv.bash; besides:
#
#   couchdb.sh install     npm install --ignore-scripts pouchdb-server@4.2.0
#                          into $FED_COUCHDB_NPM_DIR (default
#                          /var/cache/federate-pouchdb; .ci/run and make
#                          deps call it; a plain install would compile
#                          sqlite3 for ~50 s, which the server never uses)
#
# setup exports FED_TEST_COUCHDB_URL ("http://127.0.0.1:P"),
# FED_TEST_COUCHDB_PORT and FED_TEST_COUCHDB_CTL (a command prefix for the
# verbs).  It starts nothing (exit 3) when FED_TEST_COUCHDB_URL is already
# set (a real CouchDB) or pouchdb-server is not installed.
#
# fedtest: on-demand.  run.sh starts this server only when a test file it
# runs says "require_server couchdb" (tcl-tests/couchdb*.test).
#
# The server runs with --unhandled-rejections=warn: without it, a request
# pouchdb-server does not handle (_changes?filter=_selector) ends the
# process.  It writes files to its working directory, so it runs in DIR.
set -euo pipefail
# store and dir are kv.bash's (it sets dir from the arguments).
# shellcheck disable=SC2034
store=couchdb
dir=""
npmdir=${FED_COUCHDB_NPM_DIR:-/var/cache/federate-pouchdb}
bin=$npmdir/node_modules/pouchdb-server/bin/pouchdb-server

if [ "${1:-}" = install ]; then
  if [ -f "$bin" ]; then exit 0; fi
  mkdir -p "$npmdir"
  cd "$npmdir"
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error \
    pouchdb-server@4.2.0 >&2
  exit 0
fi

# shellcheck disable=SC1091   # kv.bash, beside this script
. "$(dirname "${BASH_SOURCE[0]}")/kv.bash"

store_vars() { echo FED_TEST_COUCHDB_URL; }

setup_check() {
  [ -z "${FED_TEST_COUCHDB_URL:-}" ] ||
    not_here "using the CouchDB server of FED_TEST_COUCHDB_URL"
  command -v node >/dev/null ||
    not_here "no node: the CouchDB tests will skip"
  [ -f "$bin" ] ||
    not_here "no pouchdb-server in $npmdir (bash $0 install): the CouchDB tests will skip"
}

setup_env() { emit FED_TEST_COUCHDB_URL "http://127.0.0.1:$1"; }

prepare_dir() { mkdir -p "$dir/data"; echo '{}' >"$dir/config.json"; }

# wait_http PORT: until GET / answers (10 s).
wait_http() {
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

launch() {
  local port=$1
  (cd "$dir" && exec node --unhandled-rejections=warn "$bin" \
     --host 127.0.0.1 --port "$port" --dir "$dir/data" \
     --config "$dir/config.json" >>"$dir/log" 2>&1) &
  echo $! >"$dir/pid"
  wait_http "$port" || { cat "$dir/log" >&2; die "pouchdb-server did not start"; }
}

kv_main "$@"
