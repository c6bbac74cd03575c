#!/usr/bin/env bash
# Demo pipeline on a generated shop: gen-demo -> import -> stats -> eval -> train -> recommend.
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
