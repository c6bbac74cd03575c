#!/usr/bin/env bash
# The Python client (clients/python) against a real `magpie serve` with read and write keys on a demo store:
# every method of MagpieClient, error mapping (401, 403, 404, 422, 400) and the example script.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-$ROOT/build/magpie}
CLIENT=$ROOT/clients/python

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || fail "python3 is needed"

tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"

"$MAGPIE" gen-demo --out shop --users 300 --items 200 --seed 13 --quiet
export MAGPIE_DB="$tmp/shop.db"
"$MAGPIE" import items shop/items.jsonl --quiet
"$MAGPIE" import users shop/users.jsonl --quiet
"$MAGPIE" import events shop/events.jsonl --quiet
"$MAGPIE" train --model itemknn --out knn.model --quiet
user=$(head -1 shop/events.jsonl | sed -n 's/.*"user":"\([^"]*\)".*/\1/p')
[ -n "$user" ] || fail "no user in shop/events.jsonl"

: >serve.log # exists before the loop reads it (the background job's redirection may come later)
"$MAGPIE" serve --db "$MAGPIE_DB" --model "$tmp/knn.model" --port 0 --threads 2 \
    --read-keys py-read-key --write-keys py-write-key 2>serve.log &
server_pid=$!
url=
for _ in $(seq 1 200); do
    url=$(sed -n 's/.*magpie serve: listening on \(http:\/\/[^ ]*\).*/\1/p' serve.log | head -1)
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat serve.log >&2; fail "magpie serve exited at start"; }
    sleep 0.1
done
[ -n "$url" ] || { cat serve.log >&2; fail "magpie serve printed no 'listening on' line in 20 s"; }
for _ in $(seq 1 100); do
    curl -sf "$url/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done

status=0
(cd "$CLIENT" && MAGPIE_URL="$url" MAGPIE_USER="$user" MAGPIE_READ_KEY=py-read-key MAGPIE_WRITE_KEY=py-write-key \
    PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v test_client) 2>&1 | tee unittest.log || status=$?
[ "$status" -eq 0 ] || { tail -20 serve.log >&2; fail "python client tests"; }
grep -q '^OK$' unittest.log || fail "unittest did not report OK"
if grep -q 'skipped' unittest.log; then fail "a client test was skipped: $(grep skipped unittest.log)"; fi

# The example: posts events and prints recommendations with reasons.
PYTHONDONTWRITEBYTECODE=1 python3 "$CLIENT/example.py" "$url" py-write-key >example.txt 2>&1 ||
    { cat example.txt >&2; fail "example.py"; }
cat example.txt
grep -q '^events: 3 accepted' example.txt || fail "example.py: events line"
[ "$(grep -c '^ *[0-9]\. ' example.txt)" -eq 5 ] || fail "example.py: expected 5 recommendations"
grep -q 'because\|popular' example.txt || fail "example.py: no reasons"
PYTHONDONTWRITEBYTECODE=1 python3 "$CLIENT/example.py" "$url" wrong-key >bad.txt 2>&1 && fail "example.py with a wrong key succeeded"
grep -q '401 unauthorized' bad.txt || { cat bad.txt >&2; fail "example.py: wrong key not reported as 401"; }

kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" -eq 0 ] || { tail -20 serve.log >&2; fail "magpie serve exited with status $rc after SIGTERM"; }
if grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' serve.log; then cat serve.log >&2; fail "sanitizer report"; fi
echo "ok"
