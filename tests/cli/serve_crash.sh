#!/usr/bin/env bash
# Crash safety of the server: `magpie serve` is killed with SIGKILL at random moments (0.05-0.5 s into a stream
# of event batches) for at least 20 rounds, restarted each time, and a lost batch is sometimes re-sent. Every
# batch answered 200 must be in the store exactly once, an unanswered batch entirely or not at all, nothing
# doubled, the earlier events untouched and PRAGMA integrity_check ok (tests/serve/crash.py does the rounds).
set -u
MAGPIE=${MAGPIE:-build/magpie}
case "$MAGPIE" in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$MAGPIE" gen-demo --out "$dir/shop" --users 300 --items 400 --seed 7 --quiet || { echo "FAIL: gen-demo"; exit 1; }
"$MAGPIE" import items "$dir/shop/items.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import items"; exit 1; }
"$MAGPIE" import events "$dir/shop/events.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import events"; exit 1; }

python3 "$here/serve/crash.py" --magpie "$MAGPIE" --db "$dir/store.db" --rounds "${CRASH_ROUNDS:-20}" \
    --max-seconds "${CRASH_MAX_SECONDS:-50}" ${CRASH_SEED:+--seed "$CRASH_SEED"}
status=$?
if [ $status != 0 ]; then
    echo "--- server stderr (tail) ---"
    tail -c 3000 "$dir/store.db.serve.log" 2>/dev/null
fi
exit $status
