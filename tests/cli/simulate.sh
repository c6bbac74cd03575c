#!/usr/bin/env bash
# `magpie simulate`: --help, usage errors (exit 2), a missing store (exit 1), and a tiny deterministic run on a
# generated store with greedy, a bandit and the RL re-ranker.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" simulate --help > help.txt
grep -q "usage: magpie simulate" help.txt || fail "simulate --help"
"$MAGPIE" --help | grep -q "simulate" || fail "simulate is not in the command list"

expect_fail_code 2 "unknown simulator option \`bogus\`" "$MAGPIE" simulate --sim bogus=1
expect_fail_code 2 "\`days\`" "$MAGPIE" simulate --sim days=0
expect_fail_code 2 "n_cands" "$MAGPIE" simulate --sim n_cands=3,slate=5
expect_fail_code 2 "--policy \`nosuch\`" "$MAGPIE" simulate --policy nosuch
expect_fail_code 2 "--seeds" "$MAGPIE" simulate --seeds 0
expect_fail_code 2 "overlaps the evaluation seeds" "$MAGPIE" simulate --seed 1 --seeds 5 --rl-seed 3
expect_fail_code 2 "unexpected argument" "$MAGPIE" simulate extra
expect_fail_code 2 "keys: topk" "$MAGPIE" simulate --policy rl-offpolicy:bogus=1
expect_fail_code 2 "keys: topk" "$MAGPIE" simulate --policy rl-offpolicy:topk=2
expect_fail_code 2 "no +protect" "$MAGPIE" simulate --policy rl-offpolicy+protect
expect_fail_code 2 "softmax:tau=X" "$MAGPIE" simulate --rl-behavior greedy
expect_fail_code 2 "--rl-is-cap" "$MAGPIE" simulate --rl-is-cap -1
grep -q "rl-offpolicy" help.txt || fail "--help documents rl-offpolicy"
expect_fail_code 1 "missing.db" "$MAGPIE" simulate --db "$tmp/missing.db" --policy greedy --quiet

"$MAGPIE" gen-demo --out shop --users 120 --items 150 --seed 3 --quiet
export MAGPIE_DB="$tmp/shop.db"
"$MAGPIE" import events shop/events.jsonl --quiet
args=(--policy greedy --policy rl --policy rl-behavior --policy rl-offpolicy --policy "rl-offpolicy:topk=0,pos=1"
      --policy "linucb:alpha=1+protect" --seeds 2 --rl-epochs 3 --rl-batch 50
      --sim days=8,n_cands=30,slate=5 --model-params factors=8,iterations=3 --threads 1 --quiet)
"$MAGPIE" simulate "${args[@]}" > a.txt
"$MAGPIE" simulate "${args[@]}" > b.txt
cmp -s a.txt b.txt || fail "simulate is not deterministic with the same seeds"
grep -q "^greedy " a.txt || fail "greedy row"
grep -q "^rl " a.txt || fail "rl row"
grep -q "^rl-offpolicy " a.txt || fail "rl-offpolicy row"
grep -q "^rl-behavior " a.txt || fail "rl-behavior row"
grep -q "^rl-offpolicy:topk=0,pos=1 " a.txt || fail "rl-offpolicy:topk=0,pos=1 row"
"$MAGPIE" simulate "${args[@]}" --rl-behavior uniform --rl-is-cap 5 > c.txt
cmp -s a.txt c.txt && fail "--rl-behavior / --rl-is-cap change nothing"
grep "^rl " a.txt > rl_a.txt; grep "^rl " c.txt > rl_c.txt
cmp -s rl_a.txt rl_c.txt || fail "the on-policy rl row depends on the off-policy options"
grep -q "against greedy" a.txt || fail "ratios against greedy"
"$MAGPIE" simulate "${args[@]}" --json > j.txt
[ "$(grep -c '"policy"' j.txt)" = 6 ] || fail "--json prints one object per policy"
grep -q '"ret30_ci"' j.txt || fail "--json has the intervals"
echo "simulate: ok"
