#!/usr/bin/env bash
# bench/run.sh: federate against the bare client library and its peers, in
# one run, as ratios (make bench).  Starts its own PostgreSQL and Redis
# (throwaway, as the tests do), loads the data, runs every case REPS times interleaved, and
# prints one table: case, federate median, each peer's median, ratio.
#
#   BENCH_ROWS   rows of the scanned table, and hashes of the Redis scan
#                (default 1000000)
#   BENCH_REPS   repetitions of each case (default 5)
#   BENCH_OUT    also write the table to this file (markdown)
#   BENCH_SCALE  largest table for the scan-vs-rows series (default
#                BENCH_ROWS; 10000000 for the 10M point: ~1.5 GB, a minute)
#   BENCH_PLOTS  directory for the PNG plots (default: none; needs gnuplot)
#
# CPU placement: on a 2-vCPU machine a round trip costs ~10 us when client
# and server share a vCPU and ~80 us across vCPUs, at random.  The server is
# pinned to CPU 1 and every client to CPU 0 (taskset), so every case pays
# the cross-CPU round trip the same way; the table says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cd "$top"
ROWS=${BENCH_ROWS:-1000000}
REPS=${BENCH_REPS:-5}
NLOOK=10000
NINS=100000
NTXN=1000
VPG=/usr/lib/x86_64-linux-gnu/mod_virtualpg.so.0.1.1

need=()
for p in libsqlite3-mod-virtualpg postgresql-15 libpq-dev libsqlite3-dev gnuplot-nox time \
         redis-server libhiredis-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

make -s libfederate.a
mkdir -p build/bench
cc -O2 -o build/bench/pgbare bench/pgbare.c $(pkg-config --cflags libpq) -lpq
cc -O2 -o build/bench/rdbare bench/rdbare.c -lhiredis
cc -O2 -Iext $(pkg-config --cflags libpq) -o build/bench/fedbench bench/fedbench.c \
   libfederate.a -lsqlite3 $(make -s print-libs)
PGBARE=build/bench/pgbare
RDBARE=build/bench/rdbare
FEDBENCH=build/bench/fedbench

work=$(mktemp -d /tmp/fedbench.XXXXXX)
chmod 755 "$work"
trap 'bash tcl-tests/servers/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
      bash tcl-tests/servers/redis.sh stop "$work/rd" >/dev/null 2>&1 || true
      rm -rf "$work"' EXIT
export FED_TEST_PG_PASSWORD=${FED_TEST_PG_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
port=$(bash tcl-tests/servers/postgres.sh start "$work/pg")
C="host=127.0.0.1 port=$port dbname=fedtest user=postgres"
rport=$(bash tcl-tests/servers/redis.sh start "$work/rd")
pin=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  taskset -acp 1 "$(head -1 "$work/pg/data/postmaster.pid")" >/dev/null
  taskset -acp 1 "$(cat "$work/rd/pid")" >/dev/null
  pin="taskset -c 0"
  placement="servers on CPU 1, clients on CPU 0"
else
  placement="unpinned ($(nproc) CPU)"
fi

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

# Redis: ROWS hashes h:1..h:ROWS of three fields (name, val, n).
$RDBARE load 127.0.0.1 "$rport" h: "$ROWS" >/dev/null

DB=$work/bench.db
$FEDBENCH exec "$DB" "SELECT fed_server('rd','redis','redis://127.0.0.1:$rport/0');
  CREATE VIRTUAL TABLE h USING redis(server=rd, prefix='h:', type=hash);
  SELECT fed_server('pg','postgres','$C');
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

# Connect before the clock starts; lock the SQLite file once, as an
# application that owns its database would (else every statement pays
# SQLite's file-lock system calls, about 10 us).
export FEDBENCH_WARM="PRAGMA locking_mode=EXCLUSIVE; SELECT fed_exec('pg', 'SELECT 1')"

# time CMD...: run it pinned, print its seconds
t() { $pin "$@" | awk '{print $3}'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

lo=$((ROWS/2)); hi=$((ROWS/2 + ROWS/100 - 1))
SCAN="SELECT id, name, val, ts, doc FROM"
declare -A R
for rep in $(seq 1 "$REPS"); do
  echo "repetition $rep/$REPS" >&2
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
  R[redis.bare]+="$(t $RDBARE scan 127.0.0.1 "$rport" 'h:*' 1000) "
  R[redis.fed]+="$(t $FEDBENCH scan "$DB" "SELECT key, field, value FROM h") "
  R[txn1.fed]+="$(t $FEDBENCH repeat "$DB" $NTXN "UPDATE acct1 SET bal = bal + 1 WHERE id = 1; UPDATE acct2 SET bal = bal - 1 WHERE id = 1;") "
done

# Scan time against rows returned (pushdown: WHERE id <= N): medians of
# three interleaved runs (one at 10M and above, where a run takes seconds).
SCALE=${BENCH_SCALE:-$ROWS}
if [ "$SCALE" -gt "$ROWS" ]; then
  psql -q -h 127.0.0.1 -p "$port" -U postgres -d fedtest -c "INSERT INTO big
    SELECT g, 'name' || g, g * 1.5, '2024-01-01'::timestamptz + g * interval '1 second',
    jsonb_build_object('k', g) FROM generate_series($ROWS + 1, $SCALE) g"
fi
series=""
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

m() { echo ${R[$1]:-} | tr ' ' '\n' | grep . | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }'; }

out=$(mktemp)
{
  echo "federate benchmarks: $ROWS rows, medians of $REPS interleaved runs, seconds; $placement"
  echo
  echo "| case | federate | bare client | ratio | peer | peer time | federate / peer |"
  echo "|---|---|---|---|---|---|---|"
  f=$(m scan.fed); b=$(m scan.bare)
  echo "| scan $ROWS x 5 columns | $f | $b (single-row) | $(ratio $f $b) | binary COPY | $(m scan.copy) | $(ratio $f $(m scan.copy)) |"
  echo "| | | | | cursor, FETCH 10000 (libpq) | $(m scan.fetch) | $(ratio $f $(m scan.fetch)) |"
  echo "| | | | | VirtualPG | $(m scan.vpg) | $(ratio $f $(m scan.vpg)) |"
  echo "| | | | | postgres_fdw | $(m scan.fdw) | $(ratio $f $(m scan.fdw)) |"
  f=$(m cache.fed); b=$(m cache.native)
  echo "| scan from the L1 cache (file) | $f | | | native SQLite table | $b | $(ratio $f $b) |"
  echo "| | | | | uncached federate scan | $(m scan.fed) | $(ratio $f $(m scan.fed)) |"
  f=$(m crange.fed); b=$(m crange.native)
  echo "| 1% range from the L1 cache | $f | | | native SQLite table (by key) | $b | $(ratio $f $b) |"
  echo "| | | | | uncached federate range | $(m range.fed) | $(ratio $f $(m range.fed)) |"
  f=$(m range.fed); b=$(m range.bare)
  echo "| 1% range (id BETWEEN) | $f | $b | $(ratio $f $b) | VirtualPG | $(m range.vpg) | $(ratio $f $(m range.vpg)) |"
  echo "| | | | | postgres_fdw | $(m range.fdw) | $(ratio $f $(m range.fdw)) |"
  f=$(m lookup.fed); b=$(m lookup.bare)
  echo "| $NLOOK point lookups | $f | $b (prepared) | $(ratio $f $b) | VirtualPG (from 3) | ${R[lookup.vpg]} | $(ratio $f ${R[lookup.vpg]}) |"
  echo "| | | | | postgres_fdw | $(m lookup.fdw) | $(ratio $f $(m lookup.fdw)) |"
  f=$(m insert.fed); b=$(m insert.copy)
  echo "| insert $NINS rows | $f | $b (COPY FROM STDIN) | $(ratio $f $b) | multi-row INSERT | $(m insert.bare) | $(ratio $f $(m insert.bare)) |"
  f=$(m insert.fed10k)
  echo "| insert, batch_size=10000 | $f | $b (COPY FROM STDIN) | $(ratio $f $b) | | | |"
  f=$(m redis.fed); b=$(m redis.bare)
  echo "| Redis scan $ROWS hashes x 3 fields ($((3*ROWS)) rows) | $f | $b (hiredis SCAN + pipelined HGETALL) | $(ratio $f $b) | | | |"
  f=$(m txn2.fed); b=$(m txn1.fed)
  echo "| $NTXN two-server transactions (2PC) | $f | | | two single-server commits | $b | $(ratio $f $b) |"
  echo
  echo "Scan time against rows returned (federate, bare libpq), seconds:"
  echo
  echo "| rows | federate | bare libpq | ratio |"
  echo "|---|---|---|---|"
  echo -n "$series" | while read -r n f b; do echo "| $n | $f | $b | $(ratio $f $b) |"; done
  echo
  echo "Peak memory (max RSS) of a federate scan: $MEMBIG KB for $SCALE rows, $MEMSMALL KB for $((SCALE/10)) rows."
} > "$out"
cat "$out"
[ -n "${BENCH_OUT:-}" ] && cp "$out" "$BENCH_OUT"
rm -f "$out"

if [ -n "${BENCH_PLOTS:-}" ] && command -v gnuplot >/dev/null; then
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
