#!/usr/bin/env bash
# bench/ingest.sh: how fast events get into a store.
#
# Generates a CSV of N events (default 5,000,000; 200k users, 20k items) and times
#   (a) parse only:   magpie import events FILE --dry-run
#   (b) full import:  magpie import events FILE into a fresh store
#   (c) sqlite3 .import of the same CSV into a fresh table with the same columns (plain rowid table, no index)
#   (d) magpie import events FILE into a fresh PostgreSQL store (a new schema; COPY, dedup, commit)
#   (e) psql \copy of the same CSV into a plain table with the same columns (no index, no dedup)
# then prints a markdown table with events/s and the goals. Work files go to bench/out/ (gitignored).
# PostgreSQL: MAGPIE_BENCH_PG=postgres://... uses that database; otherwise a throwaway server is started with
# tests/pg.sh (fsync=off, like the tests) and stopped at the end; PG=0 skips (d) and (e).
#
#   BUILD=build bench/ingest.sh            # or: make bench
#   EVENTS=1000000 bench/ingest.sh         # smaller run
#   KEEP=1 bench/ingest.sh                 # reuse an existing CSV of the same size
#   GEN=awk bench/ingest.sh                # plain 4-column CSV from awk even if gen-demo exists
#   PG=0 bench/ingest.sh                   # SQLite rows only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MAGPIE=${MAGPIE:-$PWD/$BUILD/magpie}
EVENTS=${EVENTS:-5000000}
USERS=${USERS:-200000}
ITEMS=${ITEMS:-20000}
OUT=bench/out
mkdir -p "$OUT"
GEN=${GEN:-auto}
CSV=$OUT/events-$EVENTS-$GEN.csv

[ -x "$MAGPIE" ] || { echo "bench: $MAGPIE not built (run make BUILD=$BUILD)" >&2; exit 1; }

# The sqlite3 shell is the yardstick; install it once if missing.
if ! command -v sqlite3 >/dev/null 2>&1; then
    echo "bench: installing the sqlite3 command-line shell" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y sqlite3 >/dev/null; else sudo apt-get install -y sqlite3 >/dev/null; fi
fi

now() { date +%s.%N; }

# ---- data: prefer `magpie gen-demo --format csv`, fall back to awk ----
if [ ! -s "$CSV" ] || [ -z "${KEEP:-}" ]; then
    rm -f "$CSV"
    gen_dir=$OUT/gen
    rm -rf "$gen_dir"
    if [ "$GEN" != awk ] && "$MAGPIE" gen-demo --help >/dev/null 2>&1 &&
        "$MAGPIE" gen-demo --out "$gen_dir" --format csv --users "$USERS" --items "$ITEMS" --max-events "$EVENTS" \
            --sessions-per-user 8 --quiet >/dev/null 2>&1 && [ -s "$gen_dir/events.csv" ]; then
        mv "$gen_dir/events.csv" "$CSV"
        rm -rf "$gen_dir"
        echo "bench: data from magpie gen-demo" >&2
    else
        # Time-ordered log: each line a random user and item (skewed towards popular items), a type drawn with
        # funnel frequencies, ts increasing by 0-2 s. Column order matches the CSV contract in records.h.
        awk -v n="$EVENTS" -v users="$USERS" -v items="$ITEMS" 'BEGIN {
            srand(42); print "user,item,type,ts"; ts = 1735689600;
            split("view view view view view view click click cart purchase fav review", types, " ");
            for (i = 0; i < n; i++) {
                u = int(rand() * users); r = rand(); it = int(r * r * items);
                ts += int(rand() * 3);
                printf "u%d,sku-%d,%s,%d\n", u, it, types[1 + int(rand() * 12)], ts;
            }
        }' >"$CSV"
        echo "bench: data from awk (magpie gen-demo unavailable)" >&2
    fi
fi
n_lines=$(($(wc -l <"$CSV") - 1))
size_mb=$(du -m "$CSV" | cut -f1)
distinct=$(tail -n +2 "$CSV" | sort -u -t, -k1,4 -S 25% | wc -l)
echo "bench: $CSV: $n_lines events ($size_mb MiB), $distinct distinct (user,item,type,ts)" >&2

# Warm the page cache so every contender reads the file from memory.
cat "$CSV" >/dev/null

# ---- (a) parse only ----
t0=$(now)
"$MAGPIE" import events "$CSV" --dry-run --db "$OUT/none.db" --quiet
t1=$(now)
parse_s=$(echo "$t1 - $t0" | bc -l)

# ---- (b) full import into a fresh store ----
rm -f "$OUT"/bench.db "$OUT"/bench.db-wal "$OUT"/bench.db-shm
t0=$(now)
"$MAGPIE" import events "$CSV" --db "$OUT/bench.db" --quiet
t1=$(now)
import_s=$(echo "$t1 - $t0" | bc -l)
stored=$("$MAGPIE" stats --db "$OUT/bench.db" --json | sed 's/.*"events":\([0-9]*\).*/\1/')
[ "$stored" = "$distinct" ] || { echo "bench: store holds $stored events, expected $distinct" >&2; exit 1; }

# ---- (c) sqlite3 .import of the same CSV ----
rm -f "$OUT"/sqlite.db
header=$(head -1 "$CSV")
cols=$(echo "$header" | awk -F, '{for (i = 1; i <= NF; i++) printf "%s%s %s", (i > 1 ? ", " : ""), $i, ($i == "ts" || $i == "value" ? "INTEGER" : "TEXT")}')
t0=$(now)
sqlite3 "$OUT/sqlite.db" "CREATE TABLE events($cols);" ".import --csv --skip 1 $CSV events"
t1=$(now)
sqlite_s=$(echo "$t1 - $t0" | bc -l)
sq_rows=$(sqlite3 "$OUT/sqlite.db" "SELECT count(*) FROM events")

# ---- (d) magpie import into PostgreSQL, (e) psql \copy of the same CSV ----
if [ "${PG:-1}" != 0 ]; then
    PSQL=$(pg_config --bindir)/psql
    pg_dir=""
    trap '[ -n "$pg_dir" ] && ./tests/pg.sh stop "$pg_dir"' EXIT
    pg_uri=${MAGPIE_BENCH_PG:-}
    if [ -z "$pg_uri" ]; then
        eval "$(./tests/pg.sh start)"
        pg_dir=$MAGPIE_TEST_PG_DIR
        pg_uri=$MAGPIE_TEST_PG
    fi
    sep='?'
    case $pg_uri in *\?*) sep='&' ;; esac
    "$PSQL" -X -q "$pg_uri" -c "DROP SCHEMA IF EXISTS bench_ingest CASCADE; CREATE SCHEMA bench_ingest" >/dev/null 2>&1
    store_uri="${pg_uri}${sep}options=-csearch_path%3Dbench_ingest"
    t0=$(now)
    "$MAGPIE" import events "$CSV" --db "$store_uri" --quiet
    t1=$(now)
    pg_import_s=$(echo "$t1 - $t0" | bc -l)
    pg_stored=$("$MAGPIE" stats --db "$store_uri" --json | sed 's/.*"events":\([0-9]*\).*/\1/')
    [ "$pg_stored" = "$distinct" ] || { echo "bench: PostgreSQL store holds $pg_stored events, expected $distinct" >&2; exit 1; }
    pg_cols=$(echo "$header" | awk -F, '{for (i = 1; i <= NF; i++) printf "%s\"%s\" %s", (i > 1 ? ", " : ""), $i, ($i == "ts" ? "bigint" : ($i == "value" ? "double precision" : "text"))}')
    "$PSQL" -X -q "$pg_uri" -c "CREATE TABLE bench_ingest.plain($pg_cols)" >/dev/null
    t0=$(now)
    "$PSQL" -X -q "$pg_uri" -c "\\copy bench_ingest.plain FROM '$CSV' WITH (FORMAT csv, HEADER true)" >/dev/null
    t1=$(now)
    psql_s=$(echo "$t1 - $t0" | bc -l)
    psql_rows=$("$PSQL" -X -t -A "$pg_uri" -c "SELECT count(*) FROM bench_ingest.plain")
    pg_mb=$("$PSQL" -X -t -A "$store_uri" -c "SELECT pg_total_relation_size('events') / 1048576")
    plain_mb=$("$PSQL" -X -t -A "$pg_uri" -c "SELECT pg_total_relation_size('bench_ingest.plain') / 1048576")
    pg_server=$("$PSQL" -X -t -A "$pg_uri" -c "SHOW server_version" | cut -d' ' -f1)
    "$PSQL" -X -q "$pg_uri" -c "DROP SCHEMA bench_ingest CASCADE" >/dev/null 2>&1
fi

rate() { echo "$1 / $2" | bc -l | awk '{printf "%.0f", $1}'; }
parse_r=$(rate "$n_lines" "$parse_s")
import_r=$(rate "$n_lines" "$import_s")
sqlite_r=$(rate "$sq_rows" "$sqlite_s")
ratio=$(echo "$sqlite_s / $import_s" | bc -l | awk '{printf "%.2f", $1}')
ok() { if [ "$(echo "$1 >= $2" | bc -l)" = 1 ]; then echo "yes"; else echo "**no**"; fi; }
db_mb=$(du -m "$OUT/bench.db" | cut -f1)
sq_mb=$(du -m "$OUT/sqlite.db" | cut -f1)

cat <<EOF

### Ingest: $n_lines events, $size_mb MiB CSV ($(nproc) cores, $(sqlite3 --version | cut -d' ' -f1) shell)

| step | seconds | events/s | goal | met |
|---|---:|---:|---|---|
| (a) parse only (\`import --dry-run\`) | $(printf %.2f "$parse_s") | $parse_r | >= 1,000,000/s | $(ok "$parse_r" 1000000) |
| (b) magpie import (fresh store, dedup, commit) | $(printf %.2f "$import_s") | $import_r | >= 300,000/s | $(ok "$import_r" 300000) |
| (c) sqlite3 \`.import\` (rowid table, no index) | $(printf %.2f "$sqlite_s") | $sqlite_r | | |
| ratio magpie / sqlite3 (speed) | | $ratio | >= 1.00 | $(ok "$ratio" 1) |

store: $db_mb MiB for $stored events (sqlite3 .import table: $sq_mb MiB)
EOF
if [ -n "${pg_import_s:-}" ]; then
    pg_ratio=$(echo "$psql_s / $pg_import_s" | bc -l | awk '{printf "%.2f", $1}')
    cat <<EOF

### Ingest into PostgreSQL $pg_server (same CSV)

| step | seconds | events/s |
|---|---:|---:|
| (d) magpie import (fresh schema, COPY + dedup into the keyed table, commit) | $(printf %.2f "$pg_import_s") | $(rate "$n_lines" "$pg_import_s") |
| (e) psql \\copy (plain table, no index, no dedup) | $(printf %.2f "$psql_s") | $(rate "$psql_rows" "$psql_s") |
| ratio magpie / psql \\copy (speed) | | $pg_ratio |

PostgreSQL events table: $pg_mb MiB with its key for $pg_stored events (plain \\copy table: $plain_mb MiB)
EOF
fi
rm -f "$OUT"/sqlite.db "$OUT"/none.db
