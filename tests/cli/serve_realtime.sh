#!/usr/bin/env bash
# magpie serve, end to end: events change the next recommendations at once (< 100 ms), popularity counters move,
# the right to be forgotten empties the store, the model is reloaded (file change, SIGHUP, admin call) under
# concurrent traffic with no failed request, auth answers 401/403, /metrics and the dashboard are served.
. "$(dirname "$0")/lib.sh"
HERE=$ROOT/tests

"$MAGPIE" serve --help | grep -q "usage: magpie serve" || fail "serve --help"
"$MAGPIE" serve --help | grep -q -- "--max-body" || fail "serve --help lists the settings"
"$MAGPIE" gen-demo --out shop --users 400 --items 300 --seed 3 --quiet
"$MAGPIE" import items shop/items.jsonl --db shop.db --quiet
"$MAGPIE" import events shop/events.jsonl --db shop.db --quiet
"$MAGPIE" train --db shop.db --model als --param factors=16,iterations=5 --valid-share 0.1 --out als.mpm --quiet
[ -s als.mpm.meta.json ] || fail "train writes als.mpm.meta.json"
grep -q '"ndcg@10"' als.mpm.meta.json || fail "meta has offline metrics"

"$MAGPIE" serve --db shop.db --model als.mpm --port 0 --reload-poll 200ms --write-keys wkey --read-keys rkey \
    2>serve.err &
pid=$!
wait_ready serve.err 100
url=$(server_url serve.err)
python3 "$HERE/serve/realtime_api.py" "$url" "$MAGPIE" "$tmp" "$pid" || fail "realtime_api.py"
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "server exit status $rc after SIGTERM"
grep -q "stopped" serve.err || fail "no clean stop"
if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve.err; then fail "sanitizer report"; fi

# The retrain scheduler: `magpie train` runs every second in the background and each new file is swapped in.
"$MAGPIE" serve --db shop.db --model als.mpm --port 0 --reload-poll 200ms --retrain-every 1s \
    --retrain-args "--param factors=8,iterations=2" 2>serve2.err &
pid=$!
for _ in $(seq 1 100); do grep -q "ready in" serve2.err 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' serve2.err | head -1)
v=0
for _ in $(seq 1 150); do
    v=$(curl -s "$url/readyz" | sed -n 's/.*"model_version":\([0-9]*\).*/\1/p')
    [ "${v:-0}" -ge 3 ] && break
    sleep 0.2
done
[ "${v:-0}" -ge 3 ] || { cat serve2.err >&2; fail "scheduled retrains were not served (model version ${v:-none})"; }
grep -q "scheduled retrain started" serve2.err || fail "no scheduled retrain logged"
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "server exit status $rc after SIGTERM (scheduler run)"
if grep -q -E "LeakSanitizer|runtime error|AddressSanitizer" serve2.err; then fail "sanitizer report (scheduler run)"; fi
echo "ok"
