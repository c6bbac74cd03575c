#!/usr/bin/env bash
# The dashboard (web/) in headless Chromium against a real `magpie serve` on a demo store: the browser test in
# tests/dashboard/dashboard.test.mjs, once on an open server and once on a server with API keys.
# Installs what is missing: Debian's chromium (as root) and tests/dashboard/node_modules (npm ci). If they cannot
# be installed (no registry), this FAILS: it never skips.
# DASHBOARD_SCREENSHOT=path keeps the screenshot (default: a temporary file).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-$ROOT/build/magpie}
TESTDIR=$ROOT/tests/dashboard
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- dependencies
if [ ! -x "$CHROMIUM" ]; then
    [ "$(id -u)" -eq 0 ] || fail "$CHROMIUM is missing; install Debian's chromium as root: apt-get install -y chromium"
    echo "installing chromium with apt" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } ||
        fail "apt-get install chromium failed (is the Debian mirror reachable?)"
    [ -x "$CHROMIUM" ] || fail "chromium installed but $CHROMIUM is still missing"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || fail "node and npm are needed (Node.js 20 or newer)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null || fail "apt-get install nodejs npm failed"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: playwright-core needs 20 or newer"
if [ ! -f "$TESTDIR/node_modules/playwright-core/package.json" ]; then
    echo "installing tests/dashboard dependencies with npm ci" >&2
    (cd "$TESTDIR" && npm ci --no-audit --no-fund --loglevel=error) ||
        fail "npm ci in tests/dashboard failed: the npm registry must be reachable to install playwright-core (see the npm output above)"
fi

# ---- a demo store and a model
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"
"$MAGPIE" gen-demo --out shop --users 300 --items 200 --seed 11 --quiet
export MAGPIE_DB="$tmp/shop.db"
"$MAGPIE" import items shop/items.jsonl --quiet
"$MAGPIE" import users shop/users.jsonl --quiet
"$MAGPIE" import events shop/events.jsonl --quiet
"$MAGPIE" train --model itemknn --valid-share 0.1 --out knn.model --quiet
[ -s knn.model.meta.json ] || fail "train wrote no knn.model.meta.json"
user=$(head -1 shop/events.jsonl | sed -n 's/.*"user":"\([^"]*\)".*/\1/p')
[ -n "$user" ] || fail "no user in shop/events.jsonl"
# the server with keys gets a copy of the store (two servers, one browser run)
cp shop.db keys.db

# start_server LOG DB ARGS...: starts `magpie serve` on a free port; sets url and pid (also kept in pids).
start_server() {
    local log=$1 db=$2
    shift 2
    "$MAGPIE" serve --db "$db" --model "$tmp/knn.model" --port 0 --threads 2 "$@" 2>"$log" &
    pid=$!
    pids+=("$pid")
    url=
    for _ in $(seq 1 200); do
        url=$(sed -n 's/.*magpie serve: listening on \(http:\/\/[^ ]*\).*/\1/p' "$log" | head -1)
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "magpie serve exited at start"; }
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$log" >&2; fail "magpie serve printed no 'listening on' line in 20 s"; }
    for _ in $(seq 1 100); do
        curl -sf "$url/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$log" >&2
    fail "$url/readyz never answered 200"
}
stop_server() { # stop_server PID LOG: SIGTERM, and it must exit 0
    kill -TERM "$1"
    local rc=0
    wait "$1" || rc=$?
    [ "$rc" -eq 0 ] || { tail -20 "$2" >&2; fail "magpie serve exited with status $rc after SIGTERM"; }
    if grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$2"; then cat "$2" >&2; fail "sanitizer report in $2"; fi
}

start_server serve.log shop.db
open_url=$url open_pid=$pid
start_server serve-keys.log keys.db --read-keys dash-read-key --write-keys dash-write-key
keys_url=$url keys_pid=$pid

# ---- a few events and the static files, with curl
url=$open_url
items=$(head -3 shop/items.jsonl | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ "$(echo "$items" | wc -l)" -eq 3 ] || fail "no item ids in shop/items.jsonl"
i=0
for item in $items; do
    i=$((i + 1))
    curl -sf -o posted.json -H 'Content-Type: application/json' \
        -d "[{\"user\":\"$user\",\"item\":\"$item\",\"type\":\"view\",\"ts\":$(( $(date +%s) - 100 + i ))}]" \
        "$url/v1/events" || fail "POST /v1/events"
    grep -q '"accepted":1' posted.json || fail "POST /v1/events answered $(cat posted.json)"
done
# (to files first: grep -q closing the pipe early would make curl fail under pipefail)
curl -sf -o page.html "$url/" && grep -q '<canvas id="rate-chart"' page.html || fail "GET / is not the dashboard"
curl -sf -o page.js "$url/dashboard.js" && grep -q 'drawRateChart' page.js || fail "GET /dashboard.js"
curl -sf -o page.css "$url/dashboard.css" && grep -q '#rate-chart' page.css || fail "GET /dashboard.css"
cmp -s page.js "$ROOT/web/dashboard.js" || fail "the server's dashboard.js differs from web/dashboard.js (rebuild?)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$keys_url/v1/stats")
[ "$code" = 401 ] || fail "GET /v1/stats without a key answered $code, expected 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "$keys_url/")
[ "$code" = 200 ] || fail "GET / (the dashboard) on the server with keys answered $code, expected 200 without a key"

# ---- the browser: the full test on the open server, then the key handling on the other
status=0
node "$TESTDIR/dashboard.test.mjs" --url "$open_url" --user "$user" --n 5 \
    --screenshot "${DASHBOARD_SCREENSHOT:-$tmp/dashboard.png}" \
    --auth-url "$keys_url" --auth-key dash-read-key || status=$?
stop_server "$open_pid" serve.log
stop_server "$keys_pid" serve-keys.log
pids=()
if [ "$status" -ne 0 ]; then
    tail -20 serve.log serve-keys.log >&2
    fail "browser test (exit status $status)"
fi
echo "ok"
