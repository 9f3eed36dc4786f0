#!/usr/bin/env bash
# demo.sh: the main job.  Starts three throwaway servers on 127.0.0.1 (in a
# temporary directory, stopped and removed at the end): PostgreSQL for the
# users, a MongoDB-protocol server for their preferences and profiles, and
# Redis for their sessions (the seed's own scenario), then runs demo.sql in
# the stock sqlite3 shell with federate loaded.
# Run from the repository top after `make` (the Makefile's `make demo`).
#
# The MongoDB server is tcl-tests/servers/mongoserver.py (MongoDB's wire
# protocol over Debian's python3-mongomock; no mongod is packaged for
# Debian 12; docs/mongo-testserver.md).  With FED_DEMO_MONGO_URI set (a
# real mongod, the URI naming an empty database), the demo uses that
# server instead and leaves what it wrote there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

need=""
[ -x /usr/lib/postgresql/15/bin/postgres ] || need="$need postgresql-15"
command -v sqlite3 >/dev/null || need="$need sqlite3"
command -v redis-server >/dev/null || need="$need redis-server"
/usr/bin/python3 -c 'import mongomock, bson' 2>/dev/null ||
  need="$need python3-mongomock python3-bson"
if [ -n "$need" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
fi
[ -f federate.so ] || make federate.so

dir=$(mktemp -d /tmp/fed-demo.XXXXXX)
chmod 755 "$dir"
cleanup() {
  bash tcl-tests/servers/postgres.sh stop "$dir/pg" >/dev/null 2>&1 || true
  bash tcl-tests/servers/redis.sh stop "$dir/rd" >/dev/null 2>&1 || true
  bash tcl-tests/servers/mongo.sh stop "$dir/mg" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
export FED_TEST_PG_PASSWORD=${FED_TEST_PG_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d " \n")}
pgport=$(bash tcl-tests/servers/postgres.sh start "$dir/pg")
rdport=$(bash tcl-tests/servers/redis.sh start "$dir/rd")
if [ -n "${FED_DEMO_MONGO_URI:-}" ]; then
  mguri=$FED_DEMO_MONGO_URI
else
  MONGOSERVER_MAX_SECONDS=600 bash tcl-tests/servers/mongo.sh start "$dir/mg" >"$dir/mgport"
  mguri="mongodb://127.0.0.1:$(cat "$dir/mgport")/demo"
fi
dsn="host=127.0.0.1 port=$pgport dbname=fedtest user=postgres"

psql -q -h 127.0.0.1 -p "$pgport" -U postgres -d fedtest <<'SQL'
CREATE SCHEMA shop;
CREATE TABLE shop.users(id serial PRIMARY KEY, username text NOT NULL UNIQUE,
  email text, status text NOT NULL DEFAULT 'active',
  active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE shop.orders(id serial PRIMARY KEY, user_id int REFERENCES shop.users,
  amount numeric(10,2) NOT NULL);
CREATE TABLE shop.email_queue(id serial PRIMARY KEY,
  "to" text NOT NULL CHECK ("to" LIKE '%@%'), template text NOT NULL,
  status text NOT NULL DEFAULT 'pending');
INSERT INTO shop.users(username, email, created_at) VALUES
  ('alice', 'alice@example.com', '2024-01-05 09:30:00+00'),
  ('bob',   'bob@example.com',   '2024-02-11 17:00:00+00'),
  ('carol', 'carol@example.com', '2024-03-02 08:15:00+00'),
  ('dan',   'dan@example.com',   '2024-04-20 12:00:00+00');
INSERT INTO shop.orders(user_id, amount) VALUES (1, 12.50), (3, 99.00), (3, 1.25);
SQL

# Two statements fail on purpose (4b and 8: atomicity and compensation
# shown); the shell then exits 1, so its status is not the demo's: any
# other error is.
sed -e "s|:PGDSN|$dsn|" -e "s|:MGURI|$mguri|" \
    -e "s|:RDURL|redis://127.0.0.1:$rdport/0|" demo/demo.sql |
  sqlite3 "$dir/demo.db" 2>&1 | tee "$dir/out" || true
nerr=$(grep -c -E '^(Parse|Runtime) error' "$dir/out" || true)
if [ "$nerr" -ne 2 ]; then
  echo "demo: $nerr statements failed; 2 (4b and 8) were meant to" >&2
  exit 1
fi
echo
echo "-- 12. The file remembers servers and tables, but holds no secret:"
sqlite3 "$dir/demo.db" "SELECT name, store, dsn FROM fed_servers"
