#!/usr/bin/env bash
# etcd.sh: a throwaway single-member etcd for the tests, on 127.0.0.1.  The
# verbs (start, stop, kill, restart, pause, resume, setup, vars) are in
# kv.bash.  setup exports FED_TEST_ETCD_URL ("http://127.0.0.1:P"),
# FED_TEST_ETCD_PORT and FED_TEST_ETCD_CTL (a command prefix for the verbs:
# etcd_server in tester.tcl).
set -euo pipefail
# store and dir are kv.bash's (it sets dir from the arguments).
# shellcheck disable=SC2034
store=etcd
dir=""
# shellcheck disable=SC1091   # kv.bash, beside this script
. "$(dirname "${BASH_SOURCE[0]}")/kv.bash"

store_vars() { echo FED_TEST_ETCD_URL; }

setup_check() {
  [ -z "${FED_TEST_ETCD_URL:-}" ] ||
    not_here "using the etcd server of FED_TEST_ETCD_URL"
  command -v etcd >/dev/null || not_here "no etcd: the etcd tests will skip"
}

setup_env() { emit FED_TEST_ETCD_URL "http://127.0.0.1:$1"; }

prepare_dir() { free_port >"$dir/peerport"; }

launch() {
  local port=$1 peer
  peer=$(cat "$dir/peerport")
  etcd --name s1 --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "s1=http://127.0.0.1:$peer" \
    >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_port "$port" || { cat "$dir/log" >&2; die "etcd did not start"; }
  # etcd listens before it serves: wait for a successful request.
  for _ in $(seq 1 100); do
    if curl -sf -X POST "http://127.0.0.1:$port/v3/kv/range" \
         -d '{"key":"AA=="}' >/dev/null 2>&1; then break; fi
    sleep 0.05
  done
}

kv_main "$@"
