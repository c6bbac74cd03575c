#!/usr/bin/env bash
# bench/serve_bandit.sh: exploration learning online inside `magpie serve` (issue 6 section 1), closed loop.
#
# A demo shop (USERS x ITEMS) and an ALS model; one server run per re-ranking policy (POLICIES): greedy (the
# model's order), egreedy, softmax, LinUCB over the ALS item factors and the normalised model score (one shared
# ridge model), LinUCB with one ridge model per item (disjoint arms) and linear Thompson sampling per item.
# Simulated shoppers (bench/serve_bandit_driver.py) click items with a hidden per-item click rate the model does
# not know, times their interest in the item's category (which the model learned from behaviour), and every shown
# item gets POST /v1/feedback. A policy can only beat greedy by learning from that feedback which of the user's
# candidates (the model's top n * bandit_pool) get clicked. Every policy serves the same sequence of shoppers.
# Prints per policy: impressions, clicks, CTR, expected CTR (without click noise), CTR in the second half, the
# ratio of the expected CTR to greedy's (the first policy) and the server's feedback updates (its click count is
# checked against the driver's).
#
# Usage: bench/serve_bandit.sh   (BUILD=build; USERS=1000 ITEMS=400 ROUNDS=6000 K=5 BASE_CTR=0.03 SEED=7;
#                                 POLICIES="greedy linucb:alpha=0.3 ...", greedy first)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
MAGPIE=$ROOT/$BUILD/magpie
USERS=${USERS:-1000}
ITEMS=${ITEMS:-400}
ROUNDS=${ROUNDS:-6000}
K=${K:-5}
BASE_CTR=${BASE_CTR:-0.03}
SEED=${SEED:-7}
POLICIES=${POLICIES:-"greedy egreedy:epsilon=0.1 softmax:tau=0.05 linucb:alpha=0.3,intercept=1 linucb:alpha=0.3,intercept=1,disjoint=1 ts:v=0.3,intercept=1,disjoint=1,draws=200"}
[ -x "$MAGPIE" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed for the shopper driver" >&2; exit 1; }
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"
"$MAGPIE" gen-demo --out shop --users "$USERS" --items "$ITEMS" --seed "$SEED" --quiet
"$MAGPIE" import items shop/items.jsonl --db shop.db --quiet
"$MAGPIE" import events shop/events.jsonl --db shop.db --quiet
"$MAGPIE" train --model als --db shop.db --out als.model --param factors=16,iterations=8 --quiet
echo "magpie serve: ALS 16 factors over $ITEMS items, $USERS shoppers, $ROUNDS lists of $K per policy, hidden CTR" \
     "median $BASE_CTR (log-normal, sigma 1) x interest (1 in the shopper's two main categories, else 0.3)," \
     "position bias 1/sqrt(1+pos), feedback on every impression"
: >driver.jsonl
: >server.jsonl
for policy in $POLICIES; do
    rm -f serve.err # else the wait below could read the previous server's "ready" line and address
    "$MAGPIE" serve --db shop.db --model als.model --port 0 --encoder none --embed-items false --threads 2 \
        --bandit "$policy" --bandit-log serving.jsonl 2>serve.err &
    pid=$!
    for _ in $(seq 1 200); do grep -q "ready in" serve.err 2>/dev/null && break; sleep 0.1; done
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' serve.err | head -1)
    [ -n "$url" ] || { cat serve.err >&2; exit 1; }
    t0=$(date +%s.%N)
    python3 "$ROOT/bench/serve_bandit_driver.py" "$url" shop/events.jsonl shop/items.jsonl "$ROUNDS" "$K" "$SEED" \
        "$BASE_CTR" "$policy" >>driver.jsonl
    t1=$(date +%s.%N)
    curl -s "$url/v1/stats" >stats.json
    python3 -c 'import json, sys
v = json.load(open("stats.json"))["bandit"]["variants"][0]
print(json.dumps({"clicks": v["clicks"], "updates": v["updates"], "seconds": float(sys.argv[2]) - float(sys.argv[1])}))' \
        "$t0" "$t1" >>server.jsonl
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
done
python3 - "$ROUNDS" <<'EOF'
import json, sys
rounds = int(sys.argv[1])
rows = [json.loads(l) for l in open("driver.jsonl")]
srv = [json.loads(l) for l in open("server.jsonl")]
g = rows[0]
print()
print("| policy | impressions | clicks | CTR | expected CTR | CTR 2nd half | expected CTR / greedy | updates | s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r, s in zip(rows, srv):
    assert s["clicks"] == r["clicks"], "server and driver disagree on the clicks of %s" % r["variant"]
    print("| %s | %d | %d | %.4f | %.4f | %.4f | %.3f | %d | %.0f |" % (
        r["variant"], r["impressions"], r["clicks"], r["ctr"], r["expected_ctr"], r["late_ctr"],
        r["expected_ctr"] / g["expected_ctr"], s["updates"], s["seconds"]))
print()
print("expected CTR = the mean click probability of the items shown (the CTR without click noise); every policy")
print("served %d lists to the same sequence of shoppers; s = seconds of recommend + feedback calls" % rounds)
EOF
