#!/usr/bin/env bash
# demo.sh: the main job.  Starts a throwaway PostgreSQL on 127.0.0.1 (in a
# temporary directory, stopped and removed at the end), fills a small
# schema, and runs demo.sql in the stock sqlite3 shell with federate loaded.
# Run from the repository top after `make` (the Makefile's `make demo`).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

need=""
[ -x /usr/lib/postgresql/15/bin/postgres ] || need="$need postgresql-15"
command -v sqlite3 >/dev/null || need="$need sqlite3"
if [ -n "$need" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
fi
[ -f federate.so ] || make federate.so

dir=$(mktemp -d /tmp/fed-demo.XXXXXX)
chmod 755 "$dir"
trap 'bash tcl-tests/servers/postgres.sh stop "$dir/pg" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
export FED_TEST_PG_PASSWORD=${FED_TEST_PG_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d " \n")}
port=$(bash tcl-tests/servers/postgres.sh start "$dir/pg")
dsn="host=127.0.0.1 port=$port dbname=fedtest user=postgres"

psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest <<'SQL'
CREATE SCHEMA shop;
CREATE TABLE shop.users(id serial PRIMARY KEY, username text NOT NULL,
  active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE shop.orders(id serial PRIMARY KEY, user_id int REFERENCES shop.users,
  amount numeric(10,2) NOT NULL);
INSERT INTO shop.users(username, created_at) VALUES
  ('alice', '2024-01-05 09:30:00+00'), ('bob', '2024-02-11 17:00:00+00'),
  ('carol', '2024-03-02 08:15:00+00'), ('dan', '2024-04-20 12:00:00+00');
INSERT INTO shop.orders(user_id, amount) VALUES (1, 12.50), (3, 99.00), (3, 1.25);
SQL

sed "s|:PGDSN|$dsn|" demo/demo.sql | sqlite3 "$dir/demo.db"
echo
echo "-- 8. The file remembers servers and tables, but holds no secret:"
sqlite3 "$dir/demo.db" "SELECT name, store, dsn FROM fed_servers"
