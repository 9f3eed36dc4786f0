# kv.bash: what servers/redis.sh and servers/etcd.sh share (sourced, not
# run; its name does not end in .sh, so run.sh does not take it for a
# store).  A script that sources it sets $store (its name in messages) and
# defines launch PORT (start the server in $dir on PORT, in the background,
# its pid in $dir/pid, and wait until it serves) and setup_env PORT (print
# the export lines of "setup"); then calls kv_main "$@".
#
#   STORE.sh start DIR     start on a free port; prints the port
#   STORE.sh stop DIR      stop, then remove DIR
#   STORE.sh kill DIR      SIGKILL (as if the process died)
#   STORE.sh restart DIR   start again on the same port and data
#   STORE.sh pause DIR, STORE.sh resume DIR
#                          SIGSTOP / SIGCONT: a server that stops answering,
#                          then answers again
#   STORE.sh setup DIR     run.sh's verb (docs/TESTING.md): start, then print
#                          "export FED_TEST_...=..." lines; exit status 3,
#                          with the reason on stderr, when no server is
#                          started here
#   STORE.sh vars          the variables tests find the server by
#
# "STORE.sh --dir DIR ACTION" is the same, so that a caller can keep
# "bash STORE.sh --dir DIR" as one command prefix (FED_TEST_<STORE>_CTL).
# DIR holds the data, the port, the pid and the log.

# shellcheck shell=bash disable=SC2154  # store: set by the sourcing script

die() { echo "$store.sh: $*" >&2; exit 1; }
usage() { die "usage: $store.sh start|stop|kill|restart|pause|resume|setup DIR, or vars"; }

# not_here REASON: setup starts nothing here (run.sh says REASON).
not_here() { echo "$store.sh: $*" >&2; exit 3; }

# emit NAME VALUE: one line of setup's output, quoted for the shell.
emit() { printf 'export %s=%q\n' "$1" "$2"; }

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
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

kv_start() {
  mkdir -p "$dir"
  port=$(free_port)
  echo "$port" >"$dir/port"
  if declare -F prepare_dir >/dev/null; then prepare_dir; fi
  launch "$port"
  echo "$port"
}

kv_main() {
  local action here
  if [ "${1:-}" = "--dir" ]; then
    [ $# -eq 3 ] || usage
    dir=$2; action=$3
  elif [ "${1:-}" = vars ]; then
    [ $# -eq 1 ] || usage
    action=vars
  else
    [ $# -eq 2 ] || usage
    action=$1; dir=$2
  fi
  [ "$action" = vars ] || dir=$(realpath -m -- "$dir")
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)

  case $action in
    vars)
      store_vars
      ;;
    setup)
      setup_check
      port=$(kv_start) || exit 1
      echo "$store.sh: $store on 127.0.0.1:$port" >&2
      setup_env "$port"
      emit "FED_TEST_${store^^}_PORT" "$port"
      emit "FED_TEST_${store^^}_CTL" "bash $here/$store.sh --dir $dir"
      ;;
    start)
      kv_start
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
      if [ -f "$dir/pid" ]; then
        kill -KILL "$(cat "$dir/pid")" 2>/dev/null || true
      fi
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
}
