#!/usr/bin/env bash
# mongo.sh: a throwaway MongoDB-protocol test server on 127.0.0.1
# (tcl-tests/servers/mongoserver.py: mongomock behind a wire-protocol front end;
# there is no mongod for Debian 12).  See docs/mongo-testserver.md.
#
#   mongo.sh start DIR     start on a free port; prints the port
#   mongo.sh stop DIR      stop, then remove DIR
#   mongo.sh kill DIR      SIGKILL (as if the process died)
#   mongo.sh restart DIR   start again on the same port
#   mongo.sh setup DIR     run.sh's verb (docs/TESTING.md): start, then print
#                          "export FED_TEST_MONGO_...=..." lines: URI
#                          ("mongodb://127.0.0.1:P"), PORT and CTL (a
#                          command prefix for the verbs); exit status 3, the
#                          reason on stderr, when it starts none here
#   mongo.sh vars          the variable tests find the server by
#
# fedtest: on-demand.  run.sh starts this server only when a test file it
# runs says "require_server mongo" (tcl-tests/mongo*.test).
#
# "mongo.sh --dir DIR ACTION" is the same, so that a caller can keep
# "bash mongo.sh --dir DIR" as one command prefix.  DIR holds the
# port, the pid and the log.  The data lives in the server's memory only:
# after kill or restart the server comes back EMPTY (no collections, no
# indexes).  MONGOSERVER_MAX_SECONDS (default 3600) bounds the server's
# lifetime, so a forgotten server never outlives a test run.
set -euo pipefail

die() { echo "mongo.sh: $*" >&2; exit 1; }
usage() { die "usage: mongo.sh start|stop|kill|restart|setup DIR, or vars"; }

if [ "${1:-}" = vars ] && [ $# -eq 1 ]; then
  echo FED_TEST_MONGO_URI
  exit 0
fi
if [ "${1:-}" = "--dir" ]; then
  [ $# -eq 3 ] || usage
  dir=$2; action=$3
else
  [ $# -eq 2 ] || usage
  action=$1; dir=$2
fi
dir=$(realpath -m -- "$dir")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=/usr/bin/python3      # Debian's: python3-mongomock and python3-bson live there

free_port() {
  "$py" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# wait_ping PORT: until the server answers an OP_MSG ping (10 s).
wait_ping() {
  "$py" - "$1" <<'PY'
import socket, struct, sys, time, bson
port = int(sys.argv[1])
body = bson.encode({"ping": 1, "$db": "admin"})
msg = struct.pack("<I", 0) + b"\0" + body
req = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg
end = time.time() + 10
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(req)
        hdr = s.recv(16)
        n = struct.unpack("<i", hdr[:4])[0] - 16
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        s.close()
        if bson.decode(data[5:]).get("ok") == 1:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.05)
sys.exit(1)
PY
}

launch() {
  local port=$1
  "$py" "$here/mongoserver.py" --port "$port" \
    --max-seconds "${MONGOSERVER_MAX_SECONDS:-3600}" >>"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_ping "$port" || { cat "$dir/log" >&2; die "mongoserver did not start"; }
}

stop_pid() {      # stop_pid SIGNAL: signal the server, wait until it is gone
  [ -f "$dir/pid" ] || return 0
  local pid
  pid=$(cat "$dir/pid")
  kill "-$1" "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_start() {
  mkdir -p "$dir"
  port=$(free_port)
  echo "$port" >"$dir/port"
  launch "$port"
  echo "$port"
}

case $action in
  start)
    cmd_start
    ;;
  setup)
    [ -z "${FED_TEST_MONGO_URI:-}" ] ||
      { echo "mongo.sh: using the MongoDB server of FED_TEST_MONGO_URI" >&2; exit 3; }
    "$py" -c 'import mongomock, bson' 2>/dev/null ||
      { echo "mongo.sh: no python3-mongomock: the MongoDB tests will skip" >&2; exit 3; }
    port=$(cmd_start) || exit 1
    echo "mongo.sh: MongoDB (mongoserver.py) on 127.0.0.1:$port" >&2
    printf 'export %s=%q\n' \
      FED_TEST_MONGO_URI "mongodb://127.0.0.1:$port" \
      FED_TEST_MONGO_PORT "$port" \
      FED_TEST_MONGO_CTL "bash $here/mongo.sh --dir $dir"
    ;;
  restart)
    [ -f "$dir/port" ] || die "no server in $dir"
    stop_pid TERM
    launch "$(cat "$dir/port")"
    cat "$dir/port"
    ;;
  kill)
    stop_pid KILL
    ;;
  stop)
    stop_pid TERM
    rm -rf -- "$dir"
    ;;
  *) usage ;;
esac
