#!/usr/bin/env bash
# mysql.sh: a throwaway MariaDB 10.11 for the tests, on 127.0.0.1, its data
# in DIR/data (owned by the mysql user: mariadbd drops root), no binary
# log, small InnoDB sizes.  The verbs (start, stop, kill, restart, pause,
# resume, setup, vars) are in kv.bash.  setup exports FED_TEST_MYSQL_DSN
# ("host=127.0.0.1 port=P dbname=test user=root"; root@127.0.0.1 has no
# password), FED_TEST_MYSQL_PORT and FED_TEST_MYSQL_CTL (a command prefix
# for the verbs: mysql_server in tester.tcl).  Database "test" exists.
# fedtest: on-demand
set -euo pipefail
# store and dir are kv.bash's (it sets dir from the arguments).
# shellcheck disable=SC2034
store=mysql
dir=""
# shellcheck disable=SC1091   # kv.bash, beside this script
. "$(dirname "${BASH_SOURCE[0]}")/kv.bash"

store_vars() { echo FED_TEST_MYSQL_DSN; }

setup_check() {
  [ -z "${FED_TEST_MYSQL_DSN:-}" ] ||
    not_here "using the MariaDB server of FED_TEST_MYSQL_DSN"
  [ "$(id -u)" -eq 0 ] ||
    not_here "not root: no MariaDB server, its tests will skip"
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null ||
    not_here "no mariadbd: the MariaDB tests will skip"
}

setup_env() {
  emit FED_TEST_MYSQL_DSN "host=127.0.0.1 port=$1 dbname=test user=root"
}

# The data directory, made once (restart keeps it).
prepare_dir() {
  chown mysql: "$dir"
  chmod 755 "$dir"
  mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$dir/log" 2>&1 || { cat "$dir/log" >&2; die "mariadb-install-db failed"; }
}

launch() {
  local port=$1
  mariadbd --no-defaults --user=mysql --datadir="$dir/data" \
    --port="$port" --bind-address=127.0.0.1 --socket="$dir/sock" \
    --pid-file="$dir/mariadbd.pid" --skip-name-resolve --skip-log-bin \
    --innodb-log-file-size=8M --innodb-buffer-pool-size=64M \
    --innodb-flush-log-at-trx-commit=2 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci \
    >>"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_port "$port" || { tail -n 20 "$dir/log" >&2; die "mariadbd did not start"; }
  for _ in $(seq 1 100); do
    if mariadb --no-defaults -h 127.0.0.1 -P "$port" -u root \
         -e 'CREATE DATABASE IF NOT EXISTS test' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  tail -n 20 "$dir/log" >&2
  die "mariadbd does not answer"
}

kv_main "$@"
