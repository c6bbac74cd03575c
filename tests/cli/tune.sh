#!/usr/bin/env bash
# `magpie tune` on a planted dataset (the best half-life region is known), its determinism, JSON and errors; the
# kfold protocol of `magpie eval`; `magpie train --valid-share` and `--threads`.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" tune --help > help.txt
grep -q "usage: magpie tune" help.txt || fail "tune --help"
grep -q "pop .*half_life_days=" help.txt || fail "--help lists pop's default space"
"$MAGPIE" --help | grep -q "tune" || fail "tune is not in the command list"

# The planted set (as tests/test_tune.c): 20 old users view two of the items a0..a4 four times each on day 0;
# 20 recent users view five of b0..b4 on day 100 (loo: the 4th is validation, the 5th test). Popularity with
# half-life h ranks the unseen b items first exactly when h < 70.67 days.
day=86400
{
    for u in $(seq 0 19); do
        for r in 0 1 2 3; do
            printf '{"user":"old%d","item":"a%d","type":"view","ts":%d}\n' "$u" $((u % 5)) $((r * 2))
            printf '{"user":"old%d","item":"a%d","type":"view","ts":%d}\n' "$u" $(((u + 1) % 5)) $((r * 2 + 1))
        done
    done
    for r in $(seq 0 19); do
        for j in 0 1 2 3 4; do
            printf '{"user":"new%d","item":"b%d","type":"view","ts":%d}\n' "$r" $(((r + j) % 5)) $((100 * day + j))
        done
    done
} > events.jsonl
"$MAGPIE" import events events.jsonl --db t.db --quiet

space='half_life_days=1:1000:log:real,category_boost=0:2:real'
"$MAGPIE" tune --db t.db --model pop --space "$space" --trials 12 --seed 5 --metric ndcg@5 --k 5 --json --quiet \
    > a.json
"$MAGPIE" tune --db t.db --model pop --space "$space" --trials 12 --seed 5 --metric ndcg@5 --k 5 --json --quiet \
    > b.json
cmp -s <(sed 's/"fit_seconds":[0-9.]*,"eval_seconds":[0-9.]*//g' a.json) \
       <(sed 's/"fit_seconds":[0-9.]*,"eval_seconds":[0-9.]*//g' b.json) || fail "same seed, different trials"
python3 - a.json <<'EOF' || fail "planted region not found"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "pop" and r["metric"] == "ndcg@5" and len(r["trials"]) == 12, r
best = r["best"]
h = float(best["params"].split("half_life_days=")[1].split(",")[0])
assert h < 70.67, best
assert best["value"] > 0.6, best
for t in r["trials"]:
    th = float(t["params"].split("half_life_days=")[1].split(",")[0])
    if th > 71: assert t["value"] == 0, t
assert r["test"]["groups"]["overall"]["at"]["5"]["ndcg"] > 0.6, r["test"]
EOF

# The markdown form: a table of trials, the best marked, then the test table.
"$MAGPIE" tune --db t.db --model pop --space "$space" --trials 4 --seed 5 --quiet > t.md
grep -q '^| trial | ndcg@10 (valid) | fit s | params |' t.md || { cat t.md; fail "trial table header"; }
grep -q '^best params: ' t.md || fail "best params line"
grep -q '^| overall | 10 |' t.md || fail "test table"
# a finite space runs out: three configurations, three trials
"$MAGPIE" tune --db t.db --model pop --space 'half_life_days=0|10|1000' --trials 30 --json --quiet > f.json
python3 -c 'import json,sys; r=json.load(open("f.json")); assert len(r["trials"]) == 3, r; assert r["best"]["params"] == "half_life_days=10", r' ||
    fail "finite space"

# Errors: usage (exit 2) with a message naming the problem.
expect_fail_code 2 'has no parameter "factors"' "$MAGPIE" tune --db t.db --model pop --space 'factors=8:64'
expect_fail_code 2 'lower bound 5 is above the upper bound 1' "$MAGPIE" tune --db t.db --model pop --space 'half_life_days=5:1'
expect_fail_code 2 'log range needs a lower bound above 0' "$MAGPIE" tune --db t.db --model pop --space 'half_life_days=0:9:log'
expect_fail_code 2 'unknown flag "lg"' "$MAGPIE" tune --db t.db --model pop --space 'half_life_days=1:9:lg'
expect_fail_code 2 'expected name=lo:hi' "$MAGPIE" tune --db t.db --model pop --space 'half_life_days'
expect_fail_code 2 'expected 0 or 1' "$MAGPIE" tune --db t.db --model pop --space 'weighted=0|5'
expect_fail_code 2 'metric "ndcg": expected a cut-off' "$MAGPIE" tune --db t.db --model pop --metric ndcg
expect_fail_code 2 'has no validation part' "$MAGPIE" tune --db t.db --model pop --protocol cold-item
expect_fail_code 2 'nosuch' "$MAGPIE" tune --db t.db --model nosuch
expect_fail_code 2 '--model NAME is required' "$MAGPIE" tune --db t.db
expect_fail_code 2 'go with --protocol kfold' "$MAGPIE" tune --db t.db --model pop --folds 5
expect_fail_code 2 '--param' "$MAGPIE" tune --db t.db --model pop --param weighted=3
# views carry no ratings: every rmse trial fails, and tune says why
expect_fail_code 1 'rmse is not available' "$MAGPIE" tune --db t.db --model pop --metric rmse --trials 2 --quiet

# kfold in eval: ratings, 5 folds; every fold is evaluated and reports RMSE (pop predicts damped item means).
{
    for u in $(seq 0 29); do
        for i in $(seq 0 9); do
            printf '{"user":"u%d","item":"i%d","type":"rating","value":%d,"ts":%d}\n' "$u" "$i" $(((u + i) % 5 + 1)) "$i"
        done
    done
} > ratings.jsonl
"$MAGPIE" import events ratings.jsonl --db r.db --quiet
total=0
for f in 0 1 2 3 4; do
    "$MAGPIE" eval --db r.db --model pop --protocol kfold --folds 5 --fold "$f" --seed 1 --k 5 --json --quiet > k$f.json
    n=$(python3 -c 'import json; r=json.load(open("k'$f'.json")); print(r["groups"]["overall"]["ratings"]); assert r["groups"]["overall"]["rmse"] > 0' 2>/dev/null) ||
        { cat k$f.json; fail "kfold fold $f: no RMSE"; }
    total=$((total + n))
done
[ "$total" = 300 ] || fail "kfold: the 5 test folds hold $total rated events, expected all 300"
"$MAGPIE" eval --db r.db --model pop --protocol kfold --fold 2 --seed 1 --k 5 --json --quiet > again.json
cmp -s k2.json again.json || fail "kfold is not deterministic"
expect_fail_code 2 '--fold: expected 0 to 4' "$MAGPIE" eval --db r.db --model pop --protocol kfold --fold 5
expect_fail_code 2 'go with --protocol kfold' "$MAGPIE" eval --db r.db --model pop --protocol loo --folds 3
expect_fail_code 2 'kfold' "$MAGPIE" eval --db r.db --model pop --protocol kfold --folds 2 --on valid
# tune with kfold and rmse: the validation fold is fold+1
"$MAGPIE" tune --db r.db --model pop --protocol kfold --seed 1 --metric rmse --space 'category_boost=0|1' --json --quiet \
    > kt.json
python3 -c 'import json; r=json.load(open("kt.json")); assert r["best"]["value"] > 0 and r["test"]["groups"]["overall"]["rmse"] > 0, r' ||
    fail "tune kfold rmse"

# train: --valid-share / loo / --threads, and their errors
"$MAGPIE" train --db t.db --model pop --out m1.model --valid-share 0.2 --threads 1 2> log.txt
grep -q 'validation: .* held out' log.txt || { cat log.txt; fail "train --valid-share does not say what it held out"; }
"$MAGPIE" train --db t.db --model pop --out m2.model --valid-share loo --quiet
[ -s m1.model ] && [ -s m2.model ] || fail "train with validation wrote no model"
expect_fail_code 2 'between 0 and 1' "$MAGPIE" train --db t.db --model pop --out m3.model --valid-share 1.5
expect_fail_code 2 '--threads' "$MAGPIE" train --db t.db --model pop --out m3.model --threads 0
"$MAGPIE" eval --db t.db --model pop --threads 1 --quiet > /dev/null || fail "eval --threads"
echo "tune.sh: ok"
