#!/usr/bin/env bash
# bench/ingest.sh: how fast events get into a store.
#
# Generates a CSV of N events (default 5,000,000; 200k users, 20k items) and times
#   (a) parse only:   magpie import events FILE --dry-run
#   (b) full import:  magpie import events FILE into a fresh store
#   (c) sqlite3 .import of the same CSV into a fresh table with the same columns (plain rowid table, no index)
# then prints a markdown table with events/s and the goals. Work files go to bench/out/ (gitignored).
#
#   BUILD=build bench/ingest.sh            # or: make bench
#   EVENTS=1000000 bench/ingest.sh         # smaller run
#   KEEP=1 bench/ingest.sh                 # reuse an existing CSV of the same size
#   GEN=awk bench/ingest.sh                # plain 4-column CSV from awk even if gen-demo exists
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
rm -f "$OUT"/sqlite.db "$OUT"/none.db
