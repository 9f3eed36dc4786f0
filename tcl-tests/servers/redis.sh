#!/usr/bin/env bash
# kvserver.sh: throwaway Redis and etcd servers for the tests, on 127.0.0.1.
#
#   kvserver.sh start redis|etcd DIR    start on free ports; prints the port
#   kvserver.sh stop redis|etcd DIR     stop, then remove DIR
#   kvserver.sh kill redis|etcd DIR     SIGKILL (as if the process died)
#   kvserver.sh restart redis|etcd DIR  start again on the same port and data
#   kvserver.sh pause|resume redis|etcd DIR  SIGSTOP / SIGCONT: a server
#                                       that stops answering, then again
#
# "kvserver.sh --dir DIR STORE ACTION" is the same, so that a caller can keep
# "bash kvserver.sh --dir DIR STORE" as one command prefix.  DIR holds the
# data, the port, the pid and the log.  Redis runs with keyspace
# notifications on and no persistence; etcd with a single member.
set -euo pipefail

die() { echo "kvserver.sh: $*" >&2; exit 1; }
usage() { die "usage: kvserver.sh start|stop|kill|restart|pause|resume redis|etcd DIR"; }

if [ "${1:-}" = "--dir" ]; then
  [ $# -eq 4 ] || usage
  dir=$2; store=$3; action=$4
else
  [ $# -eq 3 ] || usage
  action=$1; store=$2; dir=$3
fi
case $store in redis|etcd) ;; *) usage ;; esac
dir=$(realpath -m -- "$dir")

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

wait_port() {     # wait_port PORT: until something listens there (5 s)
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

launch() {
  local port=$1
  case $store in
    redis)
      redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
        --appendonly no --notify-keyspace-events KEA --daemonize no \
        >"$dir/log" 2>&1 &
      ;;
    etcd)
      local peer
      peer=$(cat "$dir/peerport")
      etcd --name s1 --data-dir "$dir/data" \
        --listen-client-urls "http://127.0.0.1:$port" \
        --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "s1=http://127.0.0.1:$peer" \
        >"$dir/log" 2>&1 &
      ;;
  esac
  echo $! >"$dir/pid"
  wait_port "$port" || { cat "$dir/log" >&2; die "$store did not start"; }
  # etcd listens before it serves: wait for a successful request.
  if [ "$store" = etcd ]; then
    local i
    for i in $(seq 1 100); do
      if curl -sf -X POST "http://127.0.0.1:$port/v3/kv/range" \
           -d '{"key":"AA=="}' >/dev/null 2>&1; then break; fi
      sleep 0.05
    done
  fi
}

case $action in
  start)
    mkdir -p "$dir"
    port=$(free_port)
    echo "$port" >"$dir/port"
    [ "$store" = etcd ] && free_port >"$dir/peerport"
    launch "$port"
    echo "$port"
    ;;
  restart)
    [ -f "$dir/port" ] || die "no server in $dir"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      kill -TERM "$(cat "$dir/pid")" 2>/dev/null || true
      sleep 0.2
    fi
    launch "$(cat "$dir/port")"
    cat "$dir/port"
    ;;
  pause|resume)
    [ -f "$dir/pid" ] || die "no server in $dir"
    if [ "$action" = pause ]; then sig=STOP; else sig=CONT; fi
    kill -"$sig" "$(cat "$dir/pid")"
    ;;
  kill)
    [ -f "$dir/pid" ] && kill -KILL "$(cat "$dir/pid")" 2>/dev/null || true
    sleep 0.1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf -- "$dir"
    ;;
  *) usage ;;
esac
