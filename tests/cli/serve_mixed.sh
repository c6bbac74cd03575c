#!/usr/bin/env bash
# Mixed load on `magpie serve`: 2 writer threads post event batches while 2 reader threads ask for
# recommendations, for MIXED_SECONDS (default 10). Every request must answer 200; no recommendation may contain an
# item the user was acknowledged to have interacted with before the request was sent (seen-item filtering takes
# effect at once, also right after posting an item that was just recommended); afterwards the store must hold
# exactly the events before plus the acknowledged ones (tests/serve/mixed.py does the work). The server runs an
# ALS model trained on the store, so writes also go through the model's fold-in.
set -u
MAGPIE=${MAGPIE:-build/magpie}
case "$MAGPIE" in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$MAGPIE" gen-demo --out "$dir/shop" --users 400 --items 600 --seed 11 --quiet || { echo "FAIL: gen-demo"; exit 1; }
"$MAGPIE" import items "$dir/shop/items.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import items"; exit 1; }
"$MAGPIE" import events "$dir/shop/events.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import events"; exit 1; }
"$MAGPIE" train --db "$dir/store.db" --model als --param factors=16,iterations=4 --out "$dir/als.model" --quiet ||
    { echo "FAIL: train"; exit 1; }

python3 "$here/serve/mixed.py" --magpie "$MAGPIE" --db "$dir/store.db" --seconds "${MIXED_SECONDS:-10}" \
    --writers 2 --readers 2 --serve-arg=--model --serve-arg="$dir/als.model" ${MIXED_SEED:+--seed "$MIXED_SEED"}
status=$?
if [ $status != 0 ]; then
    echo "--- server stderr (tail) ---"
    tail -c 3000 "$dir/store.db.serve.log" 2>/dev/null
fi
exit $status
