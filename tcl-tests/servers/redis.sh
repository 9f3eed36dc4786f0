#!/usr/bin/env bash
# redis.sh: a throwaway Redis for the tests, on 127.0.0.1, with keyspace
# notifications on and no persistence.  The verbs (start, stop, kill,
# restart, pause, resume, setup, vars) are in kv.bash.  setup exports
# FED_TEST_REDIS_URL ("redis://127.0.0.1:P/0"), FED_TEST_REDIS_PORT and
# FED_TEST_REDIS_CTL (a command prefix for the verbs: redis_server in
# tester.tcl).
set -euo pipefail
# store and dir are kv.bash's (it sets dir from the arguments).
# shellcheck disable=SC2034
store=redis
dir=""
# shellcheck disable=SC1091   # kv.bash, beside this script
. "$(dirname "${BASH_SOURCE[0]}")/kv.bash"

store_vars() { echo FED_TEST_REDIS_URL; }

setup_check() {
  [ -z "${FED_TEST_REDIS_URL:-}" ] ||
    not_here "using the Redis server of FED_TEST_REDIS_URL"
  command -v redis-server >/dev/null ||
    not_here "no redis-server: the Redis tests will skip"
}

setup_env() { emit FED_TEST_REDIS_URL "redis://127.0.0.1:$1/0"; }

launch() {
  local port=$1
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
    --appendonly no --notify-keyspace-events KEA --daemonize no \
    >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_port "$port" || { cat "$dir/log" >&2; die "redis did not start"; }
}

kv_main "$@"
