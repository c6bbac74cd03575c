#!/usr/bin/env bash
# bench/ope.sh: off-policy evaluation and A/B analysis (issue 6, sections 3 and 6), everything on stdout.
#
#  1. Open Bandit Dataset, Men's campaign (../shared/data/open-bandit-dataset): the Bernoulli-TS policy's CTR
#     estimated from the uniform-random policy's log (BTS slot distribution by Monte Carlo from prior_bts.yaml,
#     100000 draws, as obp builds it) by DM, IPS, SNIPS, DR, SNDR and Switch-DR, each with its 95% bootstrap
#     interval, beside BTS's on-policy CTR in its own log (0.0069); once with the logistic reward model, once with
#     the smoothed per-(item, slot) CTR model. Then the reverse check: the random policy's CTR estimated from
#     BTS's log, beside random's on-policy CTR (0.0046).
#  2. A learned policy: epsilon-greedy on a reward model fitted on half of the random log, evaluated on the other
#     half (no on-policy log exists for it; the random policy's CTR is the baseline).
#  3. Accuracy where the truth is known: bench/ope_synth on synthetic logs of 10k..10M rows (goal: relative error
#     <= 0.05 for SNIPS and DR at 1M rows).
#  4. A/B testing: a two-arm comparison, the sample-size calculator, and an A/A simulation (false-positive rate ~5%).
#
# Usage: bench/ope.sh      (BUILD=dir picks the build, default build; MAX_ROWS=1000000 stops the curve earlier;
#                           DATA=path/to/open-bandit-dataset)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MAGPIE=$BUILD/magpie
DATA=${DATA:-../shared/data/open-bandit-dataset}
MAX_ROWS=${MAX_ROWS:-10000000}
[ -x "$MAGPIE" ] && [ -x "$BUILD/bench/ope_synth" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }

echo "## 1. Open Bandit Dataset (Men's): Bernoulli TS estimated from the random policy's log"
echo
if [ -f "$DATA/random/men/men.csv" ]; then
    for rm in logistic ctr; do
        echo "### reward model: $rm"
        "$MAGPIE" ope --format obd --log "$DATA/random/men/men.csv" --policy "bts:$DATA/prior_bts.yaml:men" \
            --on-policy "$DATA/bts/men/men.csv" --reward-model "$rm" --bootstrap 1000 --seed 12345
        echo
    done
    echo "### reverse: the uniform-random policy estimated from BTS's log (its on-policy CTR 0.0046)"
    "$MAGPIE" ope --format obd --log "$DATA/bts/men/men.csv" --policy uniform \
        --on-policy "$DATA/random/men/men.csv" --bootstrap 1000 --seed 12345
    echo
    echo "## 2. A learned policy: epsilon-greedy (eps 0.1) on a logistic reward model of random-policy data"
    echo "(no on-policy log exists for it; baseline beside: the random policy's CTR 0.0046, BTS's 0.0069)"
    echo
    echo "### learned on a random half of the random log, evaluated on the other half"
    "$MAGPIE" ope --format obd --log "$DATA/random/men/men.csv" --policy greedy:0.1 --bootstrap 1000 --seed 12345
    echo
    echo "### learned on the whole random log, evaluated on BTS's log"
    "$MAGPIE" ope --format obd --log "$DATA/bts/men/men.csv" --train "$DATA/random/men/men.csv" --policy greedy:0.1 \
        --bootstrap 1000 --seed 12345
    echo
else
    echo "(skipped: $DATA not found)"
    echo
fi

echo "## 3. Accuracy where the truth is known (synthetic logs)"
echo
"$BUILD/bench/ope_synth" "$MAX_ROWS" 200
echo

echo "## 4. A/B testing"
echo
echo "### two arms: 10000 users each, 500 vs 560 conversions"
"$MAGPIE" abtest --a 10000:500 --b 10000:560
echo
echo "### sample size: baseline 10%, +2 points, alpha 0.05, power 0.8 (textbook: 3841 per arm)"
"$MAGPIE" abtest --sample-size --baseline 0.10 --mde 0.02
echo
echo "### A/A simulation: 5000 experiments, 5% conversion, 2000 users per arm"
"$MAGPIE" abtest --aa --rate 0.05 --users 2000 --sims 5000 --seed 1
