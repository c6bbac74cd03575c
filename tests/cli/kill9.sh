#!/usr/bin/env bash
# Crash safety: imports killed with SIGKILL at random points must leave the store holding exactly the imports
# that committed (nothing half-written, nothing lost, nothing doubled); re-running them converges to exactly the
# distinct (user, item, type, ts) of all inputs; an import that reported success survives later kills.
# Runs twice: on an SQLite file, then on PostgreSQL ($MAGPIE_TEST_PG, which scripts/test.sh sets; run alone, the
# script starts its own server with tests/pg.sh). What is killed is `magpie import`, never the server: a commit the
# server acknowledged is then safe in the server process whatever its fsync setting (the test cluster runs with
# fsync=off, see tests/pg.sh), and an unfinished transaction dies with its connection.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-build/magpie}
case $MAGPIE in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
MIN_KILLS=${MIN_KILLS:-10}
MIN_KILLS_PG=${MIN_KILLS_PG:-5}
PSQL=$(pg_config --bindir 2>/dev/null)/psql
dir=$(mktemp -d)
own_pg=""
trap '[ -n "$own_pg" ] && "$ROOT/tests/pg.sh" stop "$own_pg"; rm -rf "$dir"' EXIT
cd "$dir"
fail=0

run_kill9() { # $1 = label, $2 = store (path or URI), $3 = events per block, $4 = minimum kills, $5 = time bound (s)
local label=$1 db=$2 S=$3 min_kills=$4 bound=$5
rm -f events-*.csv
# Four overlapping CSV files of 5 blocks of S events: file f holds event indices [4fS, 4fS + 5S), so neighbours
# share S events, and every 40th line is written twice inside a file.
n_files=4
for f in $(seq 0 $((n_files - 1))); do
    awk -v lo=$((f * 4 * S)) -v hi=$((f * 4 * S + 5 * S)) 'BEGIN {
        split("view click cart purchase fav", types, " "); print "user,item,type,ts";
        for (j = lo; j < hi; j++) {
            line = sprintf("u%d,sku-%d,%s,%d", (j * 7919) % 20000, (j * 31) % 5000, types[1 + j % 5], 1735689600 + j);
            print line; if (j % 40 == 0) print line;
        }
    }' >"events-$f.csv"
done

# Distinct events in the union of the given files, from their index ranges: file f covers the S-blocks
# 4f .. 4f+4. (Checked against sort -u once below.)
distinct() {
    local blocks=() f b n=0
    for f in "$@"; do
        f=${f#events-}
        f=${f%.csv}
        for b in $(seq $((4 * f)) $((4 * f + 4))); do blocks[$b]=1; done
    done
    for b in "${!blocks[@]}"; do n=$((n + 1)); done
    echo $((n * S))
}
[ "$(distinct events-0.csv events-1.csv)" = "$(cat events-0.csv events-1.csv | grep -v '^user,' | sort -u | wc -l)" ] ||
    { echo "FAIL: the expected-count helper is wrong"; exit 1; }
stored() { "$MAGPIE" stats --db "$db" --json | sed 's/.*"events":\([0-9]*\).*/\1/'; }

t0=$(date +%s%N)
"$MAGPIE" import events events-0.csv --db "$db" --quiet || { echo "FAIL: first import"; exit 1; }
import_ms=$((($(date +%s%N) - t0) / 1000000))
committed=(events-0.csv)
[ "$(stored)" = "$(distinct "${committed[@]}")" ] || { echo "FAIL: first import incomplete"; exit 1; }
# With PostgreSQL most of the first import's time goes into creating the 20k users: the kill window is sized by an
# import that creates none, as all the later ones are, and made 1.5x as long, so some kills land after the commit.
if [ "$label" = postgres ]; then
    t0=$(date +%s%N)
    "$MAGPIE" import events events-0.csv --db "$db" --quiet || { echo "FAIL: re-import"; exit 1; }
    import_ms=$((($(date +%s%N) - t0) * 3 / 2000000))
fi

kills=0
successes=0
late=0
start=$(date +%s)
round=0
while [ $kills -lt "$min_kills" ]; do
    round=$((round + 1))
    f="events-$((round % n_files)).csv"
    before=$(stored)
    # kill after 0-110% of an import's duration: before, during and (sometimes) after the commit
    delay=$(awk -v s="$round$RANDOM" -v ms="$import_ms" 'BEGIN { srand(s); printf "%.3f", rand() * 1.1 * ms / 1000 }')
    "$MAGPIE" import events "$f" --db "$db" --quiet 2>/dev/null &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    status=$?
    now=$(stored) || { echo "FAIL round $round: store unreadable after kill"; fail=1; break; }
    with_f=$(distinct "${committed[@]}" "$f")
    if [ "$status" = 0 ]; then
        successes=$((successes + 1))
        # it reported success: everything must be there
        [ "$now" = "$with_f" ] || { echo "FAIL round $round: import of $f succeeded but store has $now, expected $with_f"; fail=1; }
        committed+=("$f")
        # it finished before the kill: imports run faster than the window assumed (the machine's load changes), so
        # narrow the window, else a loaded run might kill too few
        import_ms=$((import_ms * 7 / 10))
    else
        kills=$((kills + 1))
        # killed: either all of it committed or none of it
        if [ "$now" = "$with_f" ]; then
            [ "$now" != "$before" ] && late=$((late + 1))
            committed+=("$f")
        elif [ "$now" != "$before" ]; then
            echo "FAIL round $round: killed import of $f left $now events; expected $before (rolled back) or $with_f (committed)"
            fail=1
        fi
    fi
    if [ $(($(date +%s) - start)) -gt "$bound" ]; then echo "kill9 $label: stopping after $round rounds (time bound)"; break; fi
    if [ $round -ge 60 ]; then break; fi
done
echo "kill9 $label: $round rounds: $kills imports killed ($late of them after their commit), $successes completed before the kill"
[ $kills -ge 3 ] || { echo "FAIL $label: only $kills imports were actually killed"; fail=1; }

# An import that printed success survives a later kill.
"$MAGPIE" import events events-3.csv --db "$db" --quiet || { echo "FAIL: import of events-3.csv"; fail=1; }
committed+=(events-3.csv)
expect=$(distinct "${committed[@]}")
"$MAGPIE" import events events-1.csv --db "$db" --quiet 2>/dev/null &
pid=$!
sleep 0.1
kill -9 "$pid" 2>/dev/null
{ wait "$pid"; } 2>/dev/null
if [ $? = 0 ]; then expect=$(distinct "${committed[@]}" events-1.csv); fi
[ "$(stored)" = "$expect" ] || { echo "FAIL: after a later kill the store has $(stored), expected $expect"; fail=1; }

# Re-run everything without kills: exactly the distinct events of all inputs, nothing doubled.
for f in events-*.csv; do "$MAGPIE" import events "$f" --db "$db" --quiet || { echo "FAIL: re-import of $f"; fail=1; }; done
all=$(distinct events-*.csv)
[ "$(stored)" = "$all" ] || { echo "FAIL: final store has $(stored) events, expected $all distinct"; fail=1; }
if [ "$label" = sqlite ] && command -v sqlite3 >/dev/null 2>&1; then
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || { echo "FAIL: integrity_check"; fail=1; }
    n=$(sqlite3 "$db" 'SELECT count(*) FROM (SELECT DISTINCT user, item, type, ts FROM events)')
    [ "$n" = "$all" ] || { echo "FAIL: sqlite3 sees $n distinct events, expected $all"; fail=1; }
    users=$(sqlite3 "$db" 'SELECT count(*) FROM users')
    [ "$users" = 20000 ] || { echo "FAIL: $users users, expected 20000 (no duplicates, none lost)"; fail=1; }
elif [ "$label" = postgres ]; then
    n=$("$PSQL" -X -t -A "$db" -c 'SELECT count(*) FROM (SELECT DISTINCT user_id, item_id, type, ts FROM events) d')
    [ "$n" = "$all" ] || { echo "FAIL: psql sees $n distinct events, expected $all"; fail=1; }
    users=$("$PSQL" -X -t -A "$db" -c 'SELECT count(*) FROM users')
    [ "$users" = 20000 ] || { echo "FAIL: $users users, expected 20000 (no duplicates, none lost)"; fail=1; }
    left=$("$PSQL" -X -t -A "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'magpie'")
    [ "$left" = 0 ] || { echo "FAIL: $left connections of killed imports still open on the server"; fail=1; }
fi
[ $fail = 0 ] && echo "kill9 $label: store holds exactly $all distinct events"
}

run_kill9 sqlite store.db 50000 "$MIN_KILLS" 40

# PostgreSQL: a schema of its own in the test database; smaller files (PostgreSQL imports more slowly).
if [ -z "${MAGPIE_TEST_PG:-}" ]; then
    if [ -n "${MAGPIE_TEST_PG_REQUIRED:-}" ]; then echo "FAIL: MAGPIE_TEST_PG is not set (did tests/pg.sh start fail?)"; exit 1; fi
    eval "$("$ROOT/tests/pg.sh" start)" || { echo "FAIL: cannot start a test PostgreSQL"; exit 1; }
    own_pg=$MAGPIE_TEST_PG_DIR
fi
sep='?'
case $MAGPIE_TEST_PG in *\?*) sep='&' ;; esac
"$PSQL" -X -q "$MAGPIE_TEST_PG" -c "DROP SCHEMA IF EXISTS kill9 CASCADE; CREATE SCHEMA kill9" >/dev/null 2>&1 ||
    { echo "FAIL: cannot create schema kill9 in $MAGPIE_TEST_PG"; exit 1; }
run_kill9 postgres "${MAGPIE_TEST_PG}${sep}options=-csearch_path%3Dkill9" 10000 "$MIN_KILLS_PG" 30
"$PSQL" -X -q "$MAGPIE_TEST_PG" -c "DROP SCHEMA kill9 CASCADE" >/dev/null 2>&1
exit $fail
