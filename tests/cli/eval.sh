#!/usr/bin/env bash
# import a tiny sequence dataset -> `magpie eval` with each protocol, history mode, sampled and leaky runs,
# checking hand-computed numbers, labels and usage errors.
. "$(dirname "$0")/lib.sh"

"$MAGPIE" eval --help > help.txt
grep -q "usage: magpie eval" help.txt || fail "eval --help"
grep -q -- "--history zero" help.txt || fail "--help must say how to reproduce S3-Rec"

# Sequences with ts = position. Items get internal ids a=0 b=1 c=2 d=3 in order of first appearance.
#   u0: a b c   u1: a b d   u2: a c b
ev() { printf '{"user":"%s","item":"%s","type":"view","ts":%d}\n' "$1" "$2" "$3"; }
{
    ev u0 a 0; ev u0 b 1; ev u0 c 2
    ev u1 a 0; ev u1 b 1; ev u1 d 2
    ev u2 a 0; ev u2 c 1; ev u2 b 2
} > events.jsonl
"$MAGPIE" import events events.jsonl --db t.db --quiet

# loo + exclude: training popularity is only `a`; the rest tie at 0 and go by lower id.
# u0 ranks [c d] (target c), u1 [c d] (target d), u2 [b d] (target b): HR@1 = 2/3, HR@2 = 1.
"$MAGPIE" eval --db t.db --model pop --k 1,2 --json --quiet > loo.json
grep -q '"1":{"hr":0.6666666667,' loo.json || { cat loo.json; fail "loo HR@1"; }
grep -q '"2":{"hr":1,' loo.json || { cat loo.json; fail "loo HR@2"; }
grep -q '"sampled":false' loo.json || fail "sampled flag"

# The table form names the groups and the history mode.
"$MAGPIE" eval --db t.db --model pop --k 1,2 --history zero --quiet > loo.md
grep -q '^| overall | 1 |' loo.md || { cat loo.md; fail "table rows"; }
grep -q 'history: zero' loo.md || fail "history label"

# Sampled negatives are labelled; leaky fits are labelled.
"$MAGPIE" eval --db t.db --model pop --k 1 --sampled 1 --quiet > s.md
grep -q 'SAMPLED' s.md || fail "sampled label in the table"
"$MAGPIE" eval --db t.db --model pop --k 1 --sampled 1 --json --quiet > s.json
grep -q '"sampled":true' s.json || fail "sampled json"
"$MAGPIE" eval --db t.db --model pop --k 1 --fit-on all --quiet > l.md
grep -q 'LEAKY' l.md || fail "leaky label"
"$MAGPIE" eval --db t.db --model pop --k 1 --fit-on all --json --quiet > l.json
grep -q '"leaky":true' l.json || fail "leaky json"

# Every protocol runs; the same seed gives the same output, a different thread count too.
for p in ratio temporal cold-item cold-user; do
    "$MAGPIE" eval --db t.db --model pop --protocol $p --share 0.4 --json --quiet > a.json || fail "protocol $p"
    "$MAGPIE" eval --db t.db --model pop --protocol $p --share 0.4 --json --quiet --threads 3 > b.json
    cmp -s a.json b.json || fail "protocol $p is not deterministic"
done
"$MAGPIE" eval --db t.db --model pop --on valid --k 1 --quiet > /dev/null || fail "--on valid"

# Usage errors exit 2 with an actionable message; a missing store exits 1.
expect_fail "--model is required" "$MAGPIE" eval --db t.db
expect_fail 'unknown model "nope"' "$MAGPIE" eval --db t.db --model nope
expect_fail "--protocol: expected loo" "$MAGPIE" eval --db t.db --model pop --protocol random
expect_fail "has no validation part" "$MAGPIE" eval --db t.db --model pop --protocol cold-item --on valid
expect_fail "--k:" "$MAGPIE" eval --db t.db --model pop --k 5,x
expect_fail "does not exist" "$MAGPIE" eval --db missing.db --model pop
set +e
"$MAGPIE" eval --db t.db --model pop --history nope 2>/dev/null
[ $? -eq 2 ] || fail "usage errors must exit 2"
set -e
echo "eval.sh: all checks passed"
