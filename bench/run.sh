#!/usr/bin/env bash
# bench/run.sh: federate against the bare client library and its peers, in
# one run, as ratios (make bench).  Starts its own PostgreSQL, Redis,
# MariaDB and MongoDB test server (throwaway, as the tests do), loads the
# data, runs every case REPS times interleaved, and prints one table: case,
# federate median, each peer's median, ratio with its spread.
#
#   BENCH_ROWS   rows of the scanned tables (PostgreSQL, MariaDB), and
#                hashes of the Redis scan (default 1000000)
#   BENCH_REPS   repetitions of each case (default 5)
#   BENCH_OUT    also write the table to this file (markdown)
#   BENCH_SCALE  largest table for the scan-vs-rows series (default
#                BENCH_ROWS; 10000000 for the 10M point: ~1.5 GB, a minute)
#   BENCH_PLOTS  directory for the PNG plots (default: none; needs gnuplot)
#   BENCH_STORES the stores whose cases run (default "pg redis mysql
#                mongo"; mysql starts PostgreSQL too, for mysql_fdw)
#   BENCH_MONGO_URI  a real MongoDB server (mongodb://host:port, no
#                password) instead of the Python test server; else
#                FED_TEST_MONGO_URI when set.  The bench drops and fills
#                the collections big, ins and warm of database fedbench.
#   BENCH_MONGO_DOCS     documents of the MongoDB scan (default 20000)
#   BENCH_MONGO_LOOKUPS  MongoDB point lookups per case (default 20: the
#                test server answers one in 50-300 ms)
#
# Ratios: each repetition runs federate and its peer back to back, so a
# ratio is taken per repetition; the table prints the median of those and
# their minimum and maximum.  The 1-minute load average is sampled every
# 10 s while the timed cases run, and printed under the table.
#
# CPU placement: on a 2-vCPU machine a round trip costs ~10 us when client
# and server share a vCPU and ~80 us across vCPUs, at random.  The servers
# are pinned to CPU 1 and every client to CPU 0 (taskset), so every case
# pays the cross-CPU round trip the same way; the table says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"
ROWS=${BENCH_ROWS:-1000000}
REPS=${BENCH_REPS:-5}
STORES=${BENCH_STORES:-pg redis mysql mongo}
NLOOK=10000
NINS=100000
NTXN=1000
MDOCS=${BENCH_MONGO_DOCS:-20000}
MLOOK=${BENCH_MONGO_LOOKUPS:-20}
MBATCH=1000
VPG=/usr/lib/x86_64-linux-gnu/mod_virtualpg.so.0.1.1
MURI=${BENCH_MONGO_URI:-${FED_TEST_MONGO_URI:-}}

# libmongoc's shared-memory counters: off (else each process warns).
export MONGOC_DISABLE_SHM=1

on() { case " $STORES " in *" $1 "*) return 0 ;; esac; return 1; }
usepg=0
if on pg || on mysql; then usepg=1; fi

need=()
pkgs="libsqlite3-mod-virtualpg postgresql-15 libpq-dev libsqlite3-dev gnuplot-nox time
      redis-server libhiredis-dev libmariadb-dev libmongoc-dev"
on mysql && pkgs+=" mariadb-server mariadb-client postgresql-15-mysql-fdw"
on mongo && [ -z "$MURI" ] && pkgs+=" python3-mongomock python3-bson"
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

make -s libfederate.a
mkdir -p build/bench
cc -O2 -o build/bench/pgbare bench/pgbare.c $(pkg-config --cflags libpq) -lpq
cc -O2 -o build/bench/rdbare bench/rdbare.c -lhiredis
cc -O2 -o build/bench/mybare bench/mybare.c $(pkg-config --cflags --libs libmariadb)
cc -O2 -o build/bench/mongobare bench/mongobare.c $(pkg-config --cflags --libs libmongoc-1.0)
cc -O2 -Iext $(pkg-config --cflags libpq) -o build/bench/fedbench bench/fedbench.c \
   libfederate.a -lsqlite3 $(make -s print-libs)
PGBARE=build/bench/pgbare
RDBARE=build/bench/rdbare
MYBARE=build/bench/mybare
MGBARE=build/bench/mongobare
FEDBENCH=build/bench/fedbench

work=$(mktemp -d /tmp/fedbench.XXXXXX)
chmod 755 "$work"
loadpid=""
trap '[ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null
      bash tcl-tests/servers/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
      bash tcl-tests/servers/redis.sh stop "$work/rd" >/dev/null 2>&1 || true
      bash tcl-tests/servers/mysql.sh stop "$work/my" >/dev/null 2>&1 || true
      bash tcl-tests/servers/mongo.sh stop "$work/mg" >/dev/null 2>&1 || true
      rm -rf "$work"' EXIT
pin=""
placement="unpinned ($(nproc) CPU)"
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  pin="taskset -c 0"
  placement="servers on CPU 1, clients on CPU 0"
fi
# pinserver PID: every thread of a server on CPU 1
pinserver() { [ -z "$pin" ] || taskset -acp 1 "$1" >/dev/null; }

DB=$work/bench.db
if [ "$usepg" = 1 ]; then
  export FED_TEST_PG_PASSWORD=${FED_TEST_PG_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  port=$(bash tcl-tests/servers/postgres.sh start "$work/pg")
  C="host=127.0.0.1 port=$port dbname=fedtest user=postgres"
  pinserver "$(head -1 "$work/pg/data/postmaster.pid")"
fi
if on redis; then
  rport=$(bash tcl-tests/servers/redis.sh start "$work/rd")
  pinserver "$(cat "$work/rd/pid")"
fi
if on mysql; then
  # A tmpdir of its own (mariadbd takes TMPDIR): mysql_fdw's cursors
  # become temporary tables there, and in the shared /tmp one vanished
  # under a running scan twice ("Error on delete of '/tmp/#sql-temptable-...").
  mkdir -p "$work/mytmp"
  chown mysql: "$work/mytmp"
  myport=$(TMPDIR=$work/mytmp bash tcl-tests/servers/mysql.sh start "$work/my")
  pinserver "$(cat "$work/my/pid")"
fi
if on mongo; then
  if [ -z "$MURI" ]; then
    mport=$(bash tcl-tests/servers/mongo.sh start "$work/mg")
    pinserver "$(cat "$work/mg/pid")"
    MURI="mongodb://127.0.0.1:$mport"
    mserver="the Python test server (tcl-tests/servers/mongoserver.py: mongomock), pinned like the others"
  else
    mserver="the MongoDB server of BENCH_MONGO_URI / FED_TEST_MONGO_URI (not pinned)"
  fi
fi

if on pg; then
psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest <<SQL
CREATE TABLE big(id bigint PRIMARY KEY, name text, val float8, ts timestamptz, doc jsonb);
INSERT INTO big SELECT g, 'name' || g, g * 1.5,
  '2024-01-01'::timestamptz + g * interval '1 second', jsonb_build_object('k', g)
  FROM generate_series(1, $ROWS) g;
CREATE TABLE ins(id bigint PRIMARY KEY, name text, val float8, ts timestamptz, doc jsonb);
CREATE TABLE acct(id int PRIMARY KEY, bal bigint);
INSERT INTO acct VALUES (1, 0);
CREATE DATABASE fedtest2;
ANALYZE big;
CREATE EXTENSION postgres_fdw;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '127.0.0.1', port '$port', dbname 'fedtest');
CREATE USER MAPPING FOR postgres SERVER loop OPTIONS (user 'postgres');
CREATE FOREIGN TABLE fbig(id bigint, name text, val float8, ts timestamptz, doc jsonb)
  SERVER loop OPTIONS (table_name 'big');
SQL

psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest2 -c \
  "CREATE TABLE acct(id int PRIMARY KEY, bal bigint); INSERT INTO acct VALUES (1, 0);"
C2="host=127.0.0.1 port=$port dbname=fedtest2 user=postgres"

$FEDBENCH exec "$DB" "SELECT fed_server('pg','postgres','$C');
  CREATE VIRTUAL TABLE big USING postgres(server=pg, table='big');
  CREATE VIRTUAL TABLE ins USING postgres(server=pg, table='ins');
  CREATE VIRTUAL TABLE ins10k USING postgres(server=pg, table='ins', batch_size=10000);
  SELECT fed_server('pg2','postgres','$C2');
  CREATE VIRTUAL TABLE acct1 USING postgres(server=pg, table='acct');
  CREATE VIRTUAL TABLE acct2 USING postgres(server=pg2, table='acct');
  CREATE VIRTUAL TABLE cbig USING postgres(server=pg, table='big',
    cache_ttl=86400, cache_max_bytes=4000000000, cache_db='$work/cache.db');
  CREATE TABLE nbig(id INTEGER PRIMARY KEY, name, val, ts, doc);
  INSERT INTO nbig SELECT * FROM big;" >/dev/null
# The cache case: one scan fills the cache file; later processes read it.
$FEDBENCH scan "$DB" "SELECT id, name, val, ts, doc FROM cbig" >/dev/null
$FEDBENCH scan "$DB" "SELECT id, name, val, ts, doc FROM cbig WHERE id BETWEEN $((ROWS/2)) AND $((ROWS/2 + ROWS/100 - 1))" >/dev/null
FEDBENCH_LOAD=$VPG FEDBENCH_WARM= $FEDBENCH exec "$DB" \
  "CREATE VIRTUAL TABLE vbig USING VirtualPostgres('$C', 'public', 'big')" >/dev/null
fi

if on redis; then
  # Redis: ROWS hashes h:1..h:ROWS of three fields (name, val, n).
  $RDBARE load 127.0.0.1 "$rport" h: "$ROWS" >/dev/null
  $FEDBENCH exec "$DB" "SELECT fed_server('rd','redis','redis://127.0.0.1:$rport/0');
    CREATE VIRTUAL TABLE h USING redis(server=rd, prefix='h:', type=hash);" >/dev/null
fi

# The MariaDB cases: the same ROWS x 5 columns as PostgreSQL's big, in
# InnoDB under the server's default collation (utf8mb4_general_ci); the
# buffer pool raised so that the table stays in memory, as PostgreSQL's
# does in its shared buffers and the page cache.  mysql_fdw reads it
# through PostgreSQL (a foreign table read by the bare libpq loop, as
# postgres_fdw is).  A write that federate cannot do yet is reported "not
# available" with its error, not timed.
my() { mariadb --no-defaults -h 127.0.0.1 -P "$myport" -u root test "$@"; }
MYINS_NA=""
if on mysql; then
  my <<SQL
SET GLOBAL innodb_buffer_pool_size = 1073741824;
CREATE TABLE big(id BIGINT PRIMARY KEY, name VARCHAR(64), val DOUBLE, ts DATETIME, doc JSON);
INSERT INTO big SELECT seq, CONCAT('name', seq), seq * 1.5,
  '2024-01-01' + INTERVAL seq SECOND, JSON_OBJECT('k', seq) FROM seq_1_to_$ROWS;
CREATE TABLE ins LIKE big;
ANALYZE TABLE big;
SQL
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest <<SQL
CREATE EXTENSION mysql_fdw;
CREATE SERVER mysvr FOREIGN DATA WRAPPER mysql_fdw OPTIONS (host '127.0.0.1', port '$myport');
CREATE USER MAPPING FOR postgres SERVER mysvr OPTIONS (username 'root');
CREATE FOREIGN TABLE mybig(id bigint, name text, val float8, ts timestamp, doc text)
  SERVER mysvr OPTIONS (dbname 'test', table_name 'big');
SQL
  $FEDBENCH exec "$DB" "SELECT fed_server('my','mysql','host=127.0.0.1 port=$myport dbname=test user=root');
    CREATE VIRTUAL TABLE mybig USING mysql(server=my, table='big');
    CREATE VIRTUAL TABLE myins USING mysql(server=my, table='ins');" >/dev/null
  if ! MYINS_NA=$($FEDBENCH exec "$DB" "INSERT INTO myins VALUES(0, 'x', 0.0, '2024-01-01 00:00:00', '{}')" 2>&1); then
    MYINS_NA="not available: ${MYINS_NA#fedbench: }"
  else
    MYINS_NA=""
  fi
  my -e "TRUNCATE ins"
fi

# The MongoDB cases: MDOCS documents {_id, name, val, ts (a date), n}, read
# through declared columns; an index on n (the Python server ignores
# indexes: it reads the collection for every find).
MGINS_NA=""
if on mongo; then
  $MGBARE load "$MURI" fedbench big "$MDOCS" >/dev/null
  $MGBARE index "$MURI" fedbench big n >/dev/null
  $MGBARE drop "$MURI" fedbench warm >/dev/null
  $MGBARE drop "$MURI" fedbench ins >/dev/null
  MCOLS='name TEXT $.name, val REAL $.val, ts TEXT $.ts, n INTEGER $.n'
  $FEDBENCH exec "$DB" "SELECT fed_server('mg','mongo','$MURI');
    CREATE VIRTUAL TABLE mbig USING mongo(server=mg, database='fedbench', collection='big', columns='$MCOLS');
    CREATE VIRTUAL TABLE mins USING mongo(server=mg, database='fedbench', collection='ins', columns='$MCOLS');
    CREATE VIRTUAL TABLE mwarm USING mongo(server=mg, database='fedbench', collection='warm', columns='n INTEGER');" >/dev/null
  if ! MGINS_NA=$($FEDBENCH exec "$DB" "INSERT INTO mins(_id, name, val, ts, n) VALUES(0, 'x', 0.0, '2024-01-01 00:00:00', 0)" 2>&1); then
    MGINS_NA="not available: ${MGINS_NA#fedbench: }"
  else
    MGINS_NA=""
  fi
  $MGBARE drop "$MURI" fedbench ins >/dev/null
fi

# Connect before the clock starts; lock the SQLite file once, as an
# application that owns its database would (else every statement pays
# SQLite's file-lock system calls, about 10 us).  MongoDB has no fed_exec
# yet: a scan of an empty collection connects.
export FEDBENCH_WARM="PRAGMA locking_mode=EXCLUSIVE"
on pg && FEDBENCH_WARM+="; SELECT fed_exec('pg', 'SELECT 1')"
WMY="PRAGMA locking_mode=EXCLUSIVE; SELECT fed_exec('my', 'SELECT 1')"
WMG="PRAGMA locking_mode=EXCLUSIVE; SELECT count(*) FROM mwarm"

# time CMD...: run it pinned, print its seconds; a run that fails prints
# NA (left out of medians and ratios) and is listed under the table, so
# that one failure on the shared machine does not lose the whole run.
t() {
  local o
  if o=$($pin "$@" 2>"$work/err"); then
    echo "$o" | awk '{print $3}'
  else
    echo NA
    echo "\`$(basename "$1") ${*:2}\`: $(tail -1 "$work/err")" >>"$work/failures"
  fi
}
median() { grep -v NA | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# The load average (1 minute) every 10 s while the timed cases run.
( while :; do cut -d' ' -f1 /proc/loadavg; sleep 10; done ) >"$work/load" &
loadpid=$!

lo=$((ROWS/2)); hi=$((ROWS/2 + ROWS/100 - 1))
SCAN="SELECT id, name, val, ts, doc FROM"
MYLOOK='SELECT name FROM big WHERE id'
declare -A R
for rep in $(seq 1 "$REPS"); do
  echo "repetition $rep/$REPS, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  if on pg; then
  R[scan.bare]+="$(t $PGBARE scan "$C" "$SCAN big") "
  R[scan.copy]+="$(t $PGBARE copy "$C" "$SCAN big") "
  R[scan.fetch]+="$(t $PGBARE fetch "$C" "$SCAN big" 10000) "
  R[scan.fed]+="$(t $FEDBENCH scan "$DB" "$SCAN big") "
  R[scan.vpg]+="$(FEDBENCH_LOAD=$VPG t $FEDBENCH scan "$DB" "$SCAN vbig") "
  R[scan.fdw]+="$(t $PGBARE scan "$C" "$SCAN fbig") "
  R[cache.fed]+="$(t $FEDBENCH scan "$DB" "$SCAN cbig") "
  R[cache.native]+="$(t $FEDBENCH scan "$DB" "$SCAN nbig") "
  # An application that uses the cache has its file open already: one
  # small hit (another entry) before the clock, as the native case has its
  # database open.
  R[crange.fed]+="$(FEDBENCH_WARM="$FEDBENCH_WARM; SELECT id FROM cbig WHERE id BETWEEN $lo AND $lo" \
                    t $FEDBENCH scan "$DB" "$SCAN cbig WHERE id BETWEEN $lo AND $hi") "
  R[crange.native]+="$(t $FEDBENCH scan "$DB" "$SCAN nbig WHERE id BETWEEN $lo AND $hi") "
  R[range.bare]+="$(t $PGBARE scan "$C" "$SCAN big WHERE id BETWEEN $lo AND $hi") "
  R[range.fed]+="$(t $FEDBENCH scan "$DB" "$SCAN big WHERE id BETWEEN $lo AND $hi") "
  R[range.vpg]+="$(FEDBENCH_LOAD=$VPG t $FEDBENCH scan "$DB" "$SCAN vbig WHERE id BETWEEN $lo AND $hi") "
  R[range.fdw]+="$(t $PGBARE scan "$C" "$SCAN fbig WHERE id BETWEEN $lo AND $hi") "
  R[lookup.bare]+="$(t $PGBARE lookup "$C" 'SELECT name FROM big WHERE id = $1' $NLOOK "$ROWS") "
  R[lookup.fed]+="$(t $FEDBENCH lookup "$DB" 'SELECT name FROM big WHERE id = ?1' $NLOOK "$ROWS") "
  R[lookup.fdw]+="$(t $PGBARE lookup "$C" 'SELECT name FROM fbig WHERE id = $1' $NLOOK "$ROWS") "
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "TRUNCATE ins"
  R[insert.copy]+="$(t $PGBARE copyin "$C" ins $NINS) "
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "TRUNCATE ins"
  R[insert.bare]+="$(t $PGBARE insert "$C" ins $NINS) "
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "TRUNCATE ins"
  R[insert.fed]+="$(t $FEDBENCH insert "$DB" ins $NINS) "
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "TRUNCATE ins"
  R[insert.fed10k]+="$(t $FEDBENCH insert "$DB" ins10k $NINS) "
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "TRUNCATE ins"
  R[txn2.fed]+="$(t $FEDBENCH repeat "$DB" $NTXN "BEGIN; UPDATE acct1 SET bal = bal + 1 WHERE id = 1; UPDATE acct2 SET bal = bal - 1 WHERE id = 1; COMMIT;") "
  fi
  if on redis; then
  R[redis.bare]+="$(t $RDBARE scan 127.0.0.1 "$rport" 'h:*' 1000) "
  R[redis.fed]+="$(t $FEDBENCH scan "$DB" "SELECT key, field, value FROM h") "
  fi
  if on pg; then
  R[txn1.fed]+="$(t $FEDBENCH repeat "$DB" $NTXN "UPDATE acct1 SET bal = bal + 1 WHERE id = 1; UPDATE acct2 SET bal = bal - 1 WHERE id = 1;") "
  fi
  if on mysql; then
  R[myscan.bare]+="$(t $MYBARE scan 127.0.0.1 "$myport" test "$SCAN big") "
  R[myscan.fed]+="$(FEDBENCH_WARM=$WMY t $FEDBENCH scan "$DB" "$SCAN mybig") "
  R[myscan.fdw]+="$(t $PGBARE scan "$C" "$SCAN mybig") "
  R[myrange.bare]+="$(t $MYBARE scan 127.0.0.1 "$myport" test "$SCAN big WHERE id BETWEEN $lo AND $hi") "
  R[myrange.fed]+="$(FEDBENCH_WARM=$WMY t $FEDBENCH scan "$DB" "$SCAN mybig WHERE id BETWEEN $lo AND $hi") "
  R[myrange.fdw]+="$(t $PGBARE scan "$C" "$SCAN mybig WHERE id BETWEEN $lo AND $hi") "
  R[mylook.bare]+="$(t $MYBARE lookup 127.0.0.1 "$myport" test "$MYLOOK = ?" $NLOOK "$ROWS") "
  R[mylook.text]+="$(t $MYBARE lookuptext 127.0.0.1 "$myport" test "$MYLOOK = %ld" $NLOOK "$ROWS") "
  R[mylook.fed]+="$(FEDBENCH_WARM=$WMY t $FEDBENCH lookup "$DB" 'SELECT name FROM mybig WHERE id = ?1' $NLOOK "$ROWS") "
  R[mylook.fdw]+="$(t $PGBARE lookup "$C" 'SELECT name FROM mybig WHERE id = $1' $NLOOK "$ROWS") "
  my -e "TRUNCATE ins"
  R[myins.bare]+="$(t $MYBARE insert 127.0.0.1 "$myport" test ins $NINS) "
  my -e "TRUNCATE ins"
  if [ -z "$MYINS_NA" ]; then
    R[myins.fed]+="$(FEDBENCH_WARM=$WMY t $FEDBENCH insertsql "$DB" $NINS "INSERT INTO myins VALUES(?1, ?2, ?3, '2024-01-01 00:00:00', ?5)") "
    my -e "TRUNCATE ins"
  fi
  fi
  if on mongo; then
  R[mscan.bare]+="$(t $MGBARE scan "$MURI" fedbench big $MBATCH) "
  R[mscan.fed]+="$(FEDBENCH_WARM=$WMG t $FEDBENCH scan "$DB" "SELECT _id, name, val, ts, n FROM mbig") "
  for f in _id n; do
    R[m$f.bare]+="$(t $MGBARE lookup "$MURI" fedbench big $f "$MLOOK" "$MDOCS" $MBATCH) "
    R[m$f.sup]+="$(t $MGBARE lookup "$MURI" fedbench big $f+ "$MLOOK" "$MDOCS" $MBATCH) "
    R[m$f.fed]+="$(FEDBENCH_WARM=$WMG t $FEDBENCH lookup "$DB" "SELECT name FROM mbig WHERE $f = ?1" "$MLOOK" "$MDOCS") "
  done
  $MGBARE drop "$MURI" fedbench ins >/dev/null
  R[mins.bare]+="$(t $MGBARE load "$MURI" fedbench ins "$MDOCS") "
  $MGBARE drop "$MURI" fedbench ins >/dev/null
  if [ -z "$MGINS_NA" ]; then
    R[mins.fed]+="$(FEDBENCH_WARM=$WMG t $FEDBENCH insertsql "$DB" "$MDOCS" "INSERT INTO mins(_id, name, val, ts, n) VALUES(?1, ?2, ?3, ?4, ?1)") "
    $MGBARE drop "$MURI" fedbench ins >/dev/null
  fi
  fi
done

SCALE=${BENCH_SCALE:-$ROWS}
series=""
if on pg; then
# Scan time against rows returned (pushdown: WHERE id <= N): medians of
# three interleaved runs (one at 10M and above, where a run takes seconds).
if [ "$SCALE" -gt "$ROWS" ]; then
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "INSERT INTO big
    SELECT g, 'name' || g, g * 1.5, '2024-01-01'::timestamptz + g * interval '1 second',
    jsonb_build_object('k', g) FROM generate_series($ROWS + 1, $SCALE) g"
fi
n=1000
while [ "$n" -le "$SCALE" ]; do
  sf=""; sb=""
  for rep in 1 2 3; do
    sf+="$(t $FEDBENCH scan "$DB" "$SCAN big WHERE id <= $n") "
    sb+="$(t $PGBARE scan "$C" "$SCAN big WHERE id <= $n") "
    [ "$n" -ge 10000000 ] && break
  done
  series+="$n $(echo $sf | tr ' ' '\n' | median) $(echo $sb | tr ' ' '\n' | median)
"
  n=$((n*10))
done
# Peak memory of a full scan, against one of a tenth of the rows: flat.
mem() { /usr/bin/time -f %M $pin $FEDBENCH scan "$DB" "$1" 2>&1 >/dev/null | tail -1; }
MEMBIG=$(mem "$SCAN big")
MEMSMALL=$(mem "$SCAN big WHERE id <= $((SCALE/10))")
# VirtualPG has no pushdown: a lookup reads the whole table.  Three are
# enough to show it; scaled to NLOOK.
v=$(FEDBENCH_LOAD=$VPG t $FEDBENCH lookup "$DB" 'SELECT name FROM vbig WHERE id = ?1' 3 "$ROWS")
R[lookup.vpg]=$(awk -v v="$v" -v n=$NLOOK 'BEGIN{print v/3*n}')
fi
kill "$loadpid" 2>/dev/null || true
loadpid=""

m() { echo ${R[$1]:-} | tr ' ' '\n' | grep . | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }'; }
# rr A B: the ratio of case A to case B in each repetition (they ran back
# to back), as "median (min-max)"; "-" when either has no times.
rr() {
  paste <(echo ${R[$1]:-} | tr ' ' '\n' | grep .) <(echo ${R[$2]:-} | tr ' ' '\n' | grep .) |
    awk 'NF==2 && $1!="NA" && $2!="NA" && $2>0 {print $1/$2}' | sort -g |
    awk '{a[NR]=$1} END { if (NR==0) { print "-"; exit }
         med = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
         if (NR==1) printf "%.2f", med; else printf "%.2f (%.2f-%.2f)", med, a[1], a[NR] }'
}
loadline=$(sort -g "$work/load" | awk '{a[NR]=$1} END { if (NR) printf "min %.2f, median %.2f, max %.2f (%d samples, every 10 s)", a[1], (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2, a[NR], NR }')

out=$(mktemp)
{
  echo "federate benchmarks: $ROWS rows, medians of $REPS interleaved runs, seconds; $placement"
  echo "ratios: median of the per-repetition ratios (min-max over the $REPS repetitions)"
  echo "load average (1 min) during the timed cases: $loadline; $(nproc) CPUs"
  echo
  echo "| case | federate | bare client | ratio | peer | peer time | federate / peer |"
  echo "|---|---|---|---|---|---|---|"
  if on pg; then
  f=$(m scan.fed); b=$(m scan.bare)
  echo "| scan $ROWS x 5 columns | $f | $b (single-row) | $(rr scan.fed scan.bare) | binary COPY | $(m scan.copy) | $(rr scan.fed scan.copy) |"
  echo "| | | | | cursor, FETCH 10000 (libpq) | $(m scan.fetch) | $(rr scan.fed scan.fetch) |"
  echo "| | | | | VirtualPG | $(m scan.vpg) | $(rr scan.fed scan.vpg) |"
  echo "| | | | | postgres_fdw | $(m scan.fdw) | $(rr scan.fed scan.fdw) |"
  f=$(m cache.fed); b=$(m cache.native)
  echo "| scan from the L1 cache (file) | $f | | | native SQLite table | $b | $(rr cache.fed cache.native) |"
  echo "| | | | | uncached federate scan | $(m scan.fed) | $(rr cache.fed scan.fed) |"
  f=$(m crange.fed); b=$(m crange.native)
  echo "| 1% range from the L1 cache | $f | | | native SQLite table (by key) | $b | $(rr crange.fed crange.native) |"
  echo "| | | | | uncached federate range | $(m range.fed) | $(rr crange.fed range.fed) |"
  f=$(m range.fed); b=$(m range.bare)
  echo "| 1% range (id BETWEEN) | $f | $b | $(rr range.fed range.bare) | VirtualPG | $(m range.vpg) | $(rr range.fed range.vpg) |"
  echo "| | | | | postgres_fdw | $(m range.fdw) | $(rr range.fed range.fdw) |"
  f=$(m lookup.fed); b=$(m lookup.bare)
  echo "| $NLOOK point lookups | $f | $b (prepared) | $(rr lookup.fed lookup.bare) | VirtualPG (from 3) | ${R[lookup.vpg]} | $(ratio $f ${R[lookup.vpg]}) |"
  echo "| | | | | postgres_fdw | $(m lookup.fdw) | $(rr lookup.fed lookup.fdw) |"
  f=$(m insert.fed); b=$(m insert.copy)
  echo "| insert $NINS rows | $f | $b (COPY FROM STDIN) | $(rr insert.fed insert.copy) | multi-row INSERT | $(m insert.bare) | $(rr insert.fed insert.bare) |"
  f=$(m insert.fed10k)
  echo "| insert, batch_size=10000 | $f | $b (COPY FROM STDIN) | $(rr insert.fed10k insert.copy) | | | |"
  fi
  if on redis; then
  f=$(m redis.fed); b=$(m redis.bare)
  echo "| Redis scan $ROWS hashes x 3 fields ($((3*ROWS)) rows) | $f | $b (hiredis SCAN + pipelined HGETALL) | $(rr redis.fed redis.bare) | | | |"
  fi
  if on pg; then
  f=$(m txn2.fed); b=$(m txn1.fed)
  echo "| $NTXN two-server transactions (2PC) | $f | | | two single-server commits | $b | $(rr txn2.fed txn1.fed) |"
  fi
  if on mysql; then
  f=$(m myscan.fed); b=$(m myscan.bare)
  echo "| MariaDB scan $ROWS x 5 columns | $f | $b (mysql_use_result) | $(rr myscan.fed myscan.bare) | mysql_fdw (through PostgreSQL) | $(m myscan.fdw) | $(rr myscan.fed myscan.fdw) |"
  f=$(m myrange.fed); b=$(m myrange.bare)
  echo "| MariaDB 1% range (id BETWEEN) | $f | $b | $(rr myrange.fed myrange.bare) | mysql_fdw | $(m myrange.fdw) | $(rr myrange.fed myrange.fdw) |"
  f=$(m mylook.fed); b=$(m mylook.bare)
  echo "| MariaDB $NLOOK point lookups | $f | $b (prepared) | $(rr mylook.fed mylook.bare) | bare text statements | $(m mylook.text) | $(rr mylook.fed mylook.text) |"
  echo "| | | | | mysql_fdw | $(m mylook.fdw) | $(rr mylook.fed mylook.fdw) |"
  if [ -n "$MYINS_NA" ]; then
    echo "| MariaDB insert $NINS rows | $MYINS_NA | $(m myins.bare) (multi-row INSERT) | - | | | |"
  else
    f=$(m myins.fed); b=$(m myins.bare)
    echo "| MariaDB insert $NINS rows | $f | $b (multi-row INSERT) | $(rr myins.fed myins.bare) | | | |"
  fi
  fi
  if on mongo; then
  f=$(m mscan.fed); b=$(m mscan.bare)
  echo "| MongoDB scan $MDOCS documents x 5 fields | $f | $b (find + cursor_next, batchSize $MBATCH) | $(rr mscan.fed mscan.bare) | | | |"
  f=$(m m_id.fed); b=$(m m_id.bare)
  echo "| MongoDB $MLOOK lookups by _id | $f | $b ({_id: v}) | $(rr m_id.fed m_id.bare) | bare, federate's superset filter | $(m m_id.sup) | $(rr m_id.fed m_id.sup) |"
  f=$(m mn.fed); b=$(m mn.bare)
  echo "| MongoDB $MLOOK lookups by a declared column (n) | $f | $b ({n: v}) | $(rr mn.fed mn.bare) | bare, federate's superset filter | $(m mn.sup) | $(rr mn.fed mn.sup) |"
  if [ -n "$MGINS_NA" ]; then
    echo "| MongoDB insert $MDOCS documents | $MGINS_NA | $(m mins.bare) (insert_many, 1000 a call) | - | | | |"
  else
    f=$(m mins.fed); b=$(m mins.bare)
    echo "| MongoDB insert $MDOCS documents | $f | $b (insert_many, 1000 a call) | $(rr mins.fed mins.bare) | | | |"
  fi
  fi
  if on pg; then
  echo
  echo "Scan time against rows returned (federate, bare libpq), seconds:"
  echo
  echo "| rows | federate | bare libpq | ratio |"
  echo "|---|---|---|---|"
  echo -n "$series" | while read -r n f b; do echo "| $n | $f | $b | $(ratio $f $b) |"; done
  echo
  echo "Peak memory (max RSS) of a federate scan: $MEMBIG KB for $SCALE rows, $MEMSMALL KB for $((SCALE/10)) rows."
  fi
  if on mongo; then
  echo
  echo "MongoDB server: $mserver."
  fi
  if [ -s "$work/failures" ]; then
    echo
    echo "Runs that failed (left out of the medians and ratios):"
    echo
    sed 's/^/- /' "$work/failures"
  fi
} > "$out"
cat "$out"
[ -n "${BENCH_OUT:-}" ] && cp "$out" "$BENCH_OUT"
rm -f "$out"

if on pg && [ -n "${BENCH_PLOTS:-}" ] && command -v gnuplot >/dev/null; then
  mkdir -p "$BENCH_PLOTS"
  rate() { awk -v r="$1" -v t="$2" 'BEGIN{ if (t>0) printf "%.0f", r/t; else print 0 }'; }
  cat > "$work/thr.dat" <<DAT
"scan" $(rate $ROWS $(m scan.fed)) $(rate $ROWS $(m scan.bare)) $(rate $ROWS $(m scan.vpg)) $(rate $ROWS $(m scan.fdw))
"1% range" $(rate $((ROWS/100)) $(m range.fed)) $(rate $((ROWS/100)) $(m range.bare)) $(rate $((ROWS/100)) $(m range.vpg)) $(rate $((ROWS/100)) $(m range.fdw))
"lookups" $(rate $NLOOK $(m lookup.fed)) $(rate $NLOOK $(m lookup.bare)) $(rate $NLOOK ${R[lookup.vpg]}) $(rate $NLOOK $(m lookup.fdw))
"insert" $(rate $NINS $(m insert.fed)) $(rate $NINS $(m insert.copy)) 0 $(rate $NINS $(m insert.bare))
"Redis scan" $(rate $((3*ROWS)) $(m redis.fed)) $(rate $((3*ROWS)) $(m redis.bare)) 0 0
DAT
  echo -n "$series" > "$work/scale.dat"
  gnuplot <<GP
set terminal png size 900,500 noenhanced
set output "$BENCH_PLOTS/bench-throughput.png"
set title "Rows per second (higher is better), $placement"
set style data histogram
set style histogram cluster gap 1
set style fill solid border -1
set logscale y
set ylabel "rows/s"
set key top right
plot "$work/thr.dat" using 2:xtic(1) title "federate", '' using 3 title "bare client (COPY for insert)", '' using 4 title "VirtualPG", '' using 5 title "postgres_fdw (multi-row INSERT for insert)"
set output "$BENCH_PLOTS/bench-scaling.png"
set title "Scan time against rows returned (WHERE id <= N)"
set style data linespoints
unset style
set logscale xy
set xlabel "rows"
set ylabel "seconds"
set key top left
plot "$work/scale.dat" using 1:2 title "federate" with linespoints, '' using 1:3 title "bare libpq" with linespoints
GP
  echo "plots: $BENCH_PLOTS/bench-throughput.png $BENCH_PLOTS/bench-scaling.png"
fi
