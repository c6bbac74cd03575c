#!/usr/bin/env bash
# The CLI and the server on a PostgreSQL store (a postgres:// URI wherever a store path goes): import, stats,
# train, recommend, dry run into an empty store, `magpie serve --store URI` taking an event over HTTP, and the
# errors for an unreachable server and a schema newer than this magpie. The same data imported into SQLite gives
# the same counts. Uses $MAGPIE_TEST_PG (scripts/test.sh starts the server); run alone, it starts its own
# (tests/pg.sh) and stops it on exit.
. "$(dirname "$0")/lib.sh"
PSQL=$(pg_config --bindir)/psql
own_pg=""
if [ -z "${MAGPIE_TEST_PG:-}" ]; then
    [ -n "${MAGPIE_TEST_PG_REQUIRED:-}" ] && fail "MAGPIE_TEST_PG is not set (did tests/pg.sh start fail?)"
    eval "$("$ROOT/tests/pg.sh" start)" || fail "cannot start a test PostgreSQL"
    own_pg=$MAGPIE_TEST_PG_DIR
fi
cleanup() {
    if [ -n "${pid:-}" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    [ -n "$own_pg" ] && "$ROOT/tests/pg.sh" stop "$own_pg"
    rm -rf "$tmp"
}
trap cleanup EXIT
# a schema of its own, so this script sees nothing of the other tests
sep='?'
case $MAGPIE_TEST_PG in *\?*) sep='&' ;; esac
"$PSQL" -X -q "$MAGPIE_TEST_PG" -c "DROP SCHEMA IF EXISTS cli_pg CASCADE; CREATE SCHEMA cli_pg;
    DROP SCHEMA IF EXISTS cli_pg_empty CASCADE; CREATE SCHEMA cli_pg_empty" >/dev/null 2>&1
URI="${MAGPIE_TEST_PG}${sep}options=-csearch_path%3Dcli_pg"
EMPTY="${MAGPIE_TEST_PG}${sep}options=-csearch_path%3Dcli_pg_empty"
sql() { "$PSQL" -X -q -t -A "$URI" -c "$1"; }

"$MAGPIE" gen-demo --out shop --users 300 --items 200 --seed 5 --quiet
# a dry run into a store that does not exist yet validates without creating anything
"$MAGPIE" import events shop/events.jsonl --db "$EMPTY" --dry-run --quiet || fail "dry run into an empty schema"
[ "$("$PSQL" -X -t -A "$EMPTY" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'cli_pg_empty'")" = 0 ] ||
    fail "the dry run created tables"
for kind in items users events; do
    "$MAGPIE" import "$kind" "shop/$kind.jsonl" --store "$URI" --quiet || fail "import $kind into PostgreSQL"
    "$MAGPIE" import "$kind" "shop/$kind.jsonl" --db shop.db --quiet || fail "import $kind into SQLite"
done
"$MAGPIE" import events shop/events.jsonl --store "$URI" --quiet || fail "re-import"
pg_stats=$("$MAGPIE" stats --db "$URI" --json)
sq_stats=$("$MAGPIE" stats --db shop.db --json)
[ "$pg_stats" = "$sq_stats" ] || { echo "pg: $pg_stats"; echo "sqlite: $sq_stats"; fail "stats differ between backends"; }
n_events=$(echo "$pg_stats" | sed 's/.*"events":\([0-9]*\).*/\1/')
[ "$n_events" -gt 1000 ] || fail "only $n_events events"
[ "$(sql 'SELECT count(*) FROM events')" = "$n_events" ] || fail "psql sees another count"

# train and recommend read the URI (no file checks in the way)
"$MAGPIE" train --model pop --db "$URI" --out pop.model --quiet || fail "train from PostgreSQL"
"$MAGPIE" train --model pop --db shop.db --out pop_sq.model --quiet
"$MAGPIE" recommend --model pop.model --db "$URI" --users 3 --n 5 --json >rec_pg.json || fail "recommend"
"$MAGPIE" recommend --model pop_sq.model --db shop.db --users 3 --n 5 --json >rec_sq.json
cmp -s rec_pg.json rec_sq.json || { diff rec_pg.json rec_sq.json | head; fail "recommendations differ between backends"; }

# the server on the URI: an event over HTTP is committed to PostgreSQL before the answer
"$MAGPIE" serve --store "$URI" --model pop.model --port 0 2>serve.err &
pid=$!
wait_ready serve.err 100
url=$(server_url serve.err)
code=$(curl -s -o post.json -w '%{http_code}' -X POST "$url/v1/events" -H 'Content-Type: application/json' \
    -d '[{"user":"pg-newcomer","item":"sku-1","type":"purchase","ts":'"$(date +%s)"'}]')
[ "$code" = 200 ] || { cat post.json; fail "POST /v1/events answered $code"; }
[ "$(sql "SELECT count(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.ext = 'pg-newcomer'::bytea")" = 1 ] ||
    fail "the event posted to the server is not in PostgreSQL"
curl -sf "$url/v1/recommend/pg-newcomer?n=3" | grep -q '"item"' || fail "recommendations from the server"
kill -TERM "$pid"
wait "$pid" || fail "server exit status"
pid=""

# faults: an unreachable server, a schema newer than this magpie
expect_fail "cannot connect to PostgreSQL at host 127.0.0.1 port 1 database nowhere" \
    "$MAGPIE" stats --db "postgresql://magpie@127.0.0.1:1/nowhere?connect_timeout=3"
expect_fail "cannot connect to PostgreSQL" "$MAGPIE" import events shop/events.jsonl \
    --db "postgres://127.0.0.1:1/nowhere?connect_timeout=3" --quiet
sql "UPDATE meta SET value = '99' WHERE key = 'schema_version'"
expect_fail "has schema version 99 but this magpie supports up to version" "$MAGPIE" stats --db "$URI"
expect_fail "schema version 99" "$MAGPIE" import events shop/events.jsonl --db "$URI" --quiet
"$PSQL" -X -q "$MAGPIE_TEST_PG" -c "DROP SCHEMA cli_pg CASCADE; DROP SCHEMA cli_pg_empty CASCADE" >/dev/null 2>&1
echo "pg_store: ok ($n_events events, both backends agree)"
