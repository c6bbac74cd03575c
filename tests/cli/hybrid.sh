#!/usr/bin/env bash
# train --model hybrid with review sentiment as graded feedback (--review-model) and the errors of the new options;
# recommend with reasons from the content-aware model.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" train --help | grep -q -- "--review-model" || fail "train --help names --review-model"
"$MAGPIE" gen-demo --out shop --users 120 --items 80 --seed 3 --quiet
export MAGPIE_DB="$tmp/shop.db"
"$MAGPIE" import items shop/items.jsonl --quiet
"$MAGPIE" import events shop/events.jsonl --quiet

# A tiny sentiment classifier.
{
    for r in 1 2 3 4; do
        printf '__label__positive %s\n__label__negative %s\n' "happy with it great love" "disappointed broke bad"
        printf '__label__positive %s\n__label__negative %s\n' "excellent works perfectly" "seen better flaws poor"
    done
} > sent.txt
"$MAGPIE" textclf train --input sent.txt --output sent.mpm --dim 8 --epochs 20 --lr 0.5 --buckets 10000 --quiet

"$MAGPIE" train --model hybrid --param epochs=3,threads=1 --review-model sent.mpm --out h.model 2>train.log
grep -q "trained hybrid on" train.log || { cat train.log; fail "train summary"; }
"$MAGPIE" recommend --model h.model --users 3 --n 5 --explain > rec.txt
[ "$(grep -c '^user-' rec.txt)" -eq 3 ] || { cat rec.txt; fail "expected 3 users"; }
grep -qE 'similar to|matches|new in|popular' rec.txt || { cat rec.txt; fail "no reasons"; }

expect_fail "no label \"good\"" "$MAGPIE" train --model hybrid --review-model sent.mpm --review-positive-label good \
    --out x.model
expect_fail "--review-model" "$MAGPIE" train --model hybrid --review-model missing.mpm --out x.model
expect_fail "needs --review-model" "$MAGPIE" train --model hybrid --review-positive-label positive --out x.model
expect_fail "no item embeddings" "$MAGPIE" train --model hybrid --embeddings nosuch --out x.model
expect_fail "id_dropout" "$MAGPIE" train --model hybrid --param id_dropout=2 --out x.model
echo "hybrid: ok"
