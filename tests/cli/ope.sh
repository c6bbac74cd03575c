#!/usr/bin/env bash
# `magpie ope` on the Open Bandit Dataset's Men's files (BTS estimated from the random log: every estimator with an
# interval, the on-policy value beside), on a hand-made CSV and JSONL log, and its errors; `magpie abtest`.
. "$(dirname "$0")/lib.sh"
DATA=$ROOT/../shared/data/open-bandit-dataset

"$MAGPIE" ope --help > help.txt
grep -q "usage: magpie ope" help.txt || fail "ope --help"
grep -q "jsonl" help.txt || fail "--help documents the JSONL log"
"$MAGPIE" --help | grep -q "ope" || fail "ope is not in the command list"
"$MAGPIE" abtest --help | grep -q "usage: magpie abtest" || fail "abtest --help"

if [ -f "$DATA/random/men/men.csv" ]; then
    "$MAGPIE" ope --format obd --log "$DATA/random/men/men.csv" --policy "bts:$DATA/prior_bts.yaml:men" \
        --on-policy "$DATA/bts/men/men.csv" --bootstrap 200 --n-sim 20000 > obd.txt
    cat obd.txt
    for e in dm ips snips dr sndr switch-dr; do
        grep -qE "^$e +0\.[0-9]+ +\[-?[0-9.]+, [0-9.]+\]" obd.txt || fail "no $e estimate with an interval"
    done
    grep -qE "^on-policy +0\.006900 +\[" obd.txt || fail "no on-policy value 0.0069 with its interval"
    grep -q "10000 rounds, 34 items, 3 slots" obd.txt || fail "log summary"
    # IPS on the random log lands at about 0.0045 (relative error ~0.33 against 0.0069, as the issue found).
    ips=$(awk '$1 == "ips" {print $2}' obd.txt)
    awk -v v="$ips" 'BEGIN { exit !(v > 0.0035 && v < 0.0056) }' || fail "IPS estimate $ips out of the expected range"
    "$MAGPIE" ope --format obd --log "$DATA/random/men/men.csv" --policy "bts:$DATA/prior_bts.yaml:men" \
        --bootstrap 50 --n-sim 5000 --estimators ips,snips --json > obd.json
    grep -q '"ips":{"value":' obd.json || fail "JSON output"
    grep -q '"dr"' obd.json && fail "--estimators ips,snips printed dr"
    # The generic CSV reader refuses the OBD file (no `action` column) with a clear message.
    expect_fail_code 1 "men.csv:1: no column \`action\`" "$MAGPIE" ope --log "$DATA/random/men/men.csv" --policy uniform
    expect_fail_code 1 "has priors for 80 items but the log has 34" "$MAGPIE" ope --format obd \
        --log "$DATA/random/men/men.csv" --policy "bts:$DATA/prior_bts.yaml:all" --bootstrap 0 --n-sim 10
fi

# A CSV log: uniform logging over 2 items; the policy always shows item b. IPS = mean(w r) = (2 + 2) / 4 = 1 ... :
# rows b/1, b/1, a/0, a/1 -> w = 2 for b rows, 0 for a rows: IPS = (2 + 2) / 4 = 1.0, SNIPS = 4 / 4 = 1.0.
cat > log.csv <<'CSV'
action,reward,propensity
b,1,0.5
b,1,0.5
a,0,0.5
a,1,0.5
CSV
printf 'action,prob\nb,1\na,0\n' > pol.csv
"$MAGPIE" ope --log log.csv --policy matrix:pol.csv --estimators ips,snips --bootstrap 0 > csv.txt
grep -qE "^ips +1\.000000" csv.txt || { cat csv.txt; fail "IPS on the hand log"; }
grep -qE "^snips +1\.000000" csv.txt || fail "SNIPS on the hand log"

# Magpie's JSONL feedback log.
cat > fb.jsonl <<'J'
{"event_id":"e1","user":"u1","item":"shoe","position":1,"propensity":0.5,"reward":1}
{"event_id":"e2","user":"u2","item":"hat","position":1,"propensity":0.5,"reward":0}
J
"$MAGPIE" ope --log fb.jsonl --policy uniform --estimators ips --bootstrap 0 > jl.txt
grep -qE "^ips +0\.500000" jl.txt || { cat jl.txt; fail "IPS on the JSONL log"; }

# Errors: a zero propensity names file:line; unknown policy and estimator are usage errors.
printf 'action,reward,propensity\nb,1,0.5\na,0,0\n' > zero.csv
expect_fail_code 1 "zero.csv:3: column \`propensity\`: propensity 0 is not in (0, 1]" "$MAGPIE" ope --log zero.csv --policy uniform
expect_fail_code 2 "unknown policy" "$MAGPIE" ope --log log.csv --policy nope
expect_fail_code 2 "unknown estimator" "$MAGPIE" ope --log log.csv --policy uniform --estimators foo
expect_fail_code 2 "--log FILE is required" "$MAGPIE" ope --policy uniform
printf 'action,prob\nb,0.7\na,0.2\n' > badpol.csv
expect_fail_code 1 "sum to 0.9" "$MAGPIE" ope --log log.csv --policy matrix:badpol.csv

# abtest: numbers of the two-proportion z-test, sample size, A/A and assignment.
"$MAGPIE" abtest --a 1000:100 --b 1000:130 --bootstrap 500 > ab.txt
grep -q "z = 2.1027, p-value = 0.0354885: significant" ab.txt || { cat ab.txt; fail "z-test"; }
grep -q "CI \[+0.002068, +0.057932\]" ab.txt || fail "difference interval"
"$MAGPIE" abtest --sample-size --baseline 0.10 --mde 0.02 | grep -q "users per arm: 3841" || fail "sample size"
"$MAGPIE" abtest --sample-size --baseline 0.10 --mde 0.2 --relative | grep -q "users per arm: 3841" || fail "relative mde"
"$MAGPIE" abtest --aa --rate 0.05 --users 500 --sims 1000 --seed 3 | grep -q "false-positive rate 0.0" || fail "A/A"
v1=$("$MAGPIE" abtest --assign user-1 --salt exp --weights 1,1)
v2=$("$MAGPIE" abtest --assign user-1 --salt exp --weights 1,1)
[ "$v1" = "$v2" ] || fail "assignment is not deterministic"
printf 'variant,user,converted,value\nA,u1,1,10\nA,u2,0,0\nB,u3,1,20\nB,u4,1,5\n' > users.csv
"$MAGPIE" abtest --csv users.csv --bootstrap 100 > csvab.txt
grep -q "rate 0.500000" csvab.txt && grep -q "rate 1.000000" csvab.txt || { cat csvab.txt; fail "--csv rates"; }
grep -q "value/user   5.0000 -> 12.5000" csvab.txt || fail "--csv values"
printf 'variant,user,converted\nA,u1,1\nB,u1,0\n' > dup.csv
expect_fail_code 1 "dup.csv:3: user \"u1\" appears twice" "$MAGPIE" abtest --csv dup.csv
expect_fail_code 2 "exactly one of" "$MAGPIE" abtest --a 10:1 --sample-size
echo "ok"
