#!/usr/bin/env bash
# postgres.sh: a throwaway PostgreSQL 15 for the tests, on 127.0.0.1.
#
#   postgres.sh start DIR       initdb in DIR/data, start on a free port,
#                               create role fedpw and database fedtest;
#                               prints the port
#   postgres.sh stop DIR        fast shutdown (SIGINT), then remove DIR
#   postgres.sh kill DIR        SIGKILL the server and its backends, as if
#                               the machine had lost the process
#   postgres.sh immediate DIR   immediate shutdown (SIGQUIT): no checkpoint,
#                               crash recovery on the next start
#   postgres.sh restart DIR     (stop if running, then) start again on the
#                               same port and data; prints the port
#   postgres.sh status DIR      prints "running PID PORT" or "stopped"
#   postgres.sh setup DIR       run.sh's verb (docs/TESTING.md): start, then
#                               print "export FED_TEST_PG_...=..." lines:
#                               DSN ("host=127.0.0.1 port=P dbname=fedtest
#                               user=postgres"), PORT, DATADIR (PGDATA),
#                               SOCKET (the unix socket's directory),
#                               PASSWORD (role fedpw's, random unless given)
#                               and CTL (a command prefix for the verbs,
#                               pg_server in tester.tcl); exit status 3, the
#                               reason on stderr, when it starts none here
#                               (not root, or FED_TEST_PG_DSN already set)
#   postgres.sh vars            the variable tests find the server by
#
# "postgres.sh --dir DIR ACTION" is the same, so that a caller can keep
# "bash postgres.sh --dir DIR" as one command prefix (FED_TEST_PG_CTL).
#
# DIR holds data/ (PGDATA), the unix socket, port, and log.  The server runs
# as the postgres user (initdb and postgres refuse root), with
# max_prepared_transactions=20 and fsync=off.  Authentication: local and
# 127.0.0.1 connections are trusted, except role fedpw over TCP, which must
# give the password in $FED_TEST_PG_PASSWORD (scram-sha-256).  Role
# postgres (superuser) is the normal test user; database fedtest is the
# tests' database.  Must run as root.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PGUSER=postgres

die() { echo "postgres.sh: $*" >&2; exit 1; }

usage() {
  die "usage: postgres.sh start|stop|kill|immediate|restart|status|setup DIR, or vars"
}

if [ "${1:-}" = vars ] && [ $# -eq 1 ]; then
  echo FED_TEST_PG_DSN
  exit 0
fi
if [ "${1:-}" = "--dir" ]; then
  [ $# -eq 3 ] || usage
  action=$3; dir=$2
else
  [ $# -eq 2 ] || usage
  action=$1; dir=$2
fi
[ -n "$dir" ] || usage
dir=$(realpath -m -- "$dir")
data=$dir/data

as_postgres() {
  setpriv --reuid="$PGUSER" --regid="$PGUSER" --init-groups "$@"
}

# True if process $1 exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != "Z" ]
}

# The postmaster's PID from its lock file, or nothing.
server_pid() {
  local pid
  [ -f "$data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && alive "$pid"; then echo "$pid"; fi
}

# The PIDs of the live children of process $1 (the backends, for a
# postmaster), from /proc.
children() {
  local f stat rest
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    rest=${stat##*) }
    rest=${rest#* }
    if [ "${rest%% *}" = "$1" ]; then
      f=${f#/proc/}
      echo "${f%/stat}"
    fi
  done
}

# Wait until every PID given has gone (up to $WAIT_SECS seconds).  Returns 1
# if some is still there.
wait_gone() {
  local i pid left
  for ((i = 0; i < ${WAIT_SECS:-60} * 10; i++)); do
    left=0
    for pid in "$@"; do
      if alive "$pid"; then left=1; break; fi
    done
    [ $left -eq 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# Send signal $1 to the postmaster and wait for it and its backends to go.
signal_server() {
  local sig=$1 pid kids
  pid=$(server_pid)
  [ -n "$pid" ] || return 0
  kids=$(children "$pid")
  kill "-$sig" "$pid" 2>/dev/null || true
  if [ "$sig" = KILL ]; then
    # shellcheck disable=SC2086
    [ -z "$kids" ] || kill -KILL $kids 2>/dev/null || true
  fi
  # shellcheck disable=SC2086
  if ! wait_gone "$pid" $kids; then
    echo "postgres.sh: the server did not stop on SIG$sig; killing it" >&2
    # shellcheck disable=SC2046
    kill -KILL "$pid" $(children "$pid") 2>/dev/null || true
    # shellcheck disable=SC2086
    WAIT_SECS=10 wait_gone "$pid" $kids || die "cannot stop process $pid"
  fi
}

# After a kill: remove what a dead server left that would stop the next one
# starting.  Its PID stays "alive" to the new server's check when it is a
# zombie nobody reaps (a container whose init does not), so the lock files
# go; and the SysV segment its lock file names goes, which the new server
# would otherwise have freed itself.  Refuses while any process is still
# attached to that segment: an old backend still running on the data.
clear_stale() {
  local pid shmid nattch
  [ -f "$data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$data/postmaster.pid")
  if [ -n "$pid" ] && alive "$pid"; then return 0; fi
  read -r _ shmid < <(sed -n 7p "$data/postmaster.pid") || true
  if [ -n "${shmid:-}" ] && [ -r /proc/sysvipc/shm ]; then
    nattch=$(awk -v id="$shmid" '$2 == id { print $7 }' /proc/sysvipc/shm)
    if [ -n "$nattch" ]; then
      [ "$nattch" = 0 ] || die "old server processes still use $data"
      ipcrm -m "$shmid" 2>/dev/null || true
    fi
  fi
  rm -f -- "$data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
}

install_postgres() {
  [ -x "$PGBIN/postgres" ] && return 0
  echo "postgres.sh: installing postgresql-15" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y postgresql-15 >&2
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# Start postgres on port $1 and wait until it accepts connections.  Returns
# 2 if the port was taken meanwhile, 1 on any other failure.
launch() {
  local port=$1 pid i
  echo "$port" >"$dir/port"
  : >>"$dir/log"
  chown "$PGUSER:" "$dir/log"
  (
    cd "$dir"
    exec setpriv --reuid="$PGUSER" --regid="$PGUSER" --init-groups \
      "$PGBIN/postgres" -D "$data" -p "$port" -k "$dir" \
      -c listen_addresses=127.0.0.1 \
      -c max_prepared_transactions=20 \
      -c fsync=off \
      </dev/null >>"$dir/log" 2>&1
  ) &
  pid=$!
  for ((i = 0; i < 300; i++)); do
    if pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; then
      return 0
    fi
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      if tail -n 20 "$dir/log" | grep -q "could not bind\|Address already in use"; then
        return 2
      fi
      return 1
    fi
    sleep 0.1
  done
  return 1
}

# Start on the port in DIR/port, or on a free one; retry if it was taken.
start_server() {
  local port tries rc
  clear_stale
  for ((tries = 0; tries < 5; tries++)); do
    if [ -s "$dir/port" ] && [ "$action" = restart ]; then
      port=$(cat "$dir/port")
    else
      port=$(free_port)
    fi
    rc=0
    launch "$port" || rc=$?
    [ $rc -eq 0 ] && return 0
    if [ $rc -ne 2 ] || [ "$action" = restart ]; then break; fi
  done
  echo "postgres.sh: postgres did not start; the end of $dir/log:" >&2
  tail -n 20 "$dir/log" >&2
  exit 1
}

cmd_start() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (the server runs as $PGUSER)"
  install_postgres
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  touch "$dir/.fedtest-pg"
  chown "$PGUSER:" "$dir"
  chmod 755 "$dir"
  as_postgres test -w "$dir" ||
    die "user $PGUSER cannot write $dir: its parents must be world-searchable"

  (cd "$dir" && LC_ALL=C as_postgres "$PGBIN/initdb" -D "$data" -U postgres \
     --auth=trust --encoding=UTF8 --locale=C --no-sync >"$dir/log" 2>&1) ||
    { tail -n 20 "$dir/log" >&2; die "initdb failed"; }
  cat >"$data/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER   ADDRESS        METHOD
local   all       all                   trust
host    all       fedpw  127.0.0.1/32   scram-sha-256
host    all       all    127.0.0.1/32   trust
EOF
  chown "$PGUSER:" "$data/pg_hba.conf"

  start_server
  local port pw sql
  port=$(cat "$dir/port")
  pw=${FED_TEST_PG_PASSWORD:-}
  if [ -n "$pw" ]; then
    sql="CREATE ROLE fedpw LOGIN PASSWORD '${pw//\'/\'\'}';"
  else
    echo "postgres.sh: FED_TEST_PG_PASSWORD is not set: role fedpw has no password" >&2
    sql="CREATE ROLE fedpw LOGIN;"
  fi
  # The password goes through stdin, never a command line.
  psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
    >/dev/null <<EOF
$sql
CREATE DATABASE fedtest OWNER postgres;
GRANT ALL ON DATABASE fedtest TO fedpw;
\\connect fedtest
GRANT ALL ON SCHEMA public TO fedpw;
EOF
  echo "$port"
}

# Refuse to act on a directory this script did not make.
check_dir() {
  [ -f "$dir/.fedtest-pg" ] || die "$dir was not made by postgres.sh start"
}

# setup: not_here REASON when no server starts here (exit status 3).
not_here() { echo "postgres.sh: $*" >&2; exit 3; }

cmd_setup() {
  local port here
  [ -z "${FED_TEST_PG_DSN:-}" ] ||
    not_here "using the PostgreSQL server of FED_TEST_PG_DSN"
  [ "$(id -u)" -eq 0 ] ||
    not_here "not root: no PostgreSQL server, its tests will skip"
  if [ -z "${FED_TEST_PG_PASSWORD:-}" ]; then
    FED_TEST_PG_PASSWORD=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  fi
  export FED_TEST_PG_PASSWORD
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  port=$(cmd_start) || exit 1
  echo "postgres.sh: PostgreSQL 15 on 127.0.0.1:$port" >&2
  printf 'export %s=%q\n' \
    FED_TEST_PG_PORT "$port" \
    FED_TEST_PG_DSN "host=127.0.0.1 port=$port dbname=fedtest user=postgres" \
    FED_TEST_PG_DATADIR "$data" \
    FED_TEST_PG_SOCKET "$dir" \
    FED_TEST_PG_PASSWORD "$FED_TEST_PG_PASSWORD" \
    FED_TEST_PG_CTL "bash $here/postgres.sh --dir $dir"
}

case $action in
  start)
    cmd_start
    ;;
  setup)
    cmd_setup
    ;;
  stop)
    check_dir
    signal_server INT
    rm -rf -- "$dir"
    ;;
  kill)
    check_dir
    signal_server KILL
    clear_stale
    ;;
  immediate)
    check_dir
    signal_server QUIT
    clear_stale
    ;;
  restart)
    check_dir
    signal_server INT
    start_server
    cat "$dir/port"
    ;;
  status)
    check_dir
    pid=$(server_pid)
    if [ -n "$pid" ]; then
      echo "running $pid $(cat "$dir/port")"
    else
      echo "stopped"
    fi
    ;;
  *)
    usage
    ;;
esac
