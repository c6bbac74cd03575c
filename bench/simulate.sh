#!/usr/bin/env bash
# bench/simulate.sh: the long-term goals of issue 6 section 5 in the shopper simulator of section 4 (`magpie
# simulate`, include/magpie/sim.h). Shoppers' tastes are ALS factors (32) fitted on MovieLens-100K (or Tianchi with
# DATASET=tianchi); 943 shoppers, 30 simulated days, 300 candidates per session from the fitted model, slates of 10.
# The RL re-ranker (REINFORCE, softmax slate policy over 8 per-item features) is trained on seeds 1000+, with the
# objective purchases + 0.1 clicks + 0.05 per retained day + 0.02 per item new to the shopper + 2 per item new to
# the platform (cover_reward=2: catalog coverage is one of the goals; with cover_reward=1 it reaches ~2.0x coverage
# and more purchases), and is
# evaluated with greedy (top model score), greedy with shopper protection (fatigue + novelty), and the bandits of
# section 1 (egreedy, softmax, LinUCB, linear TS, SquareCB) on evaluation seeds 1..SEEDS.
# Prints one table (mean +- 95% t-interval over seeds) and the ratios to greedy against the goals
# (30-day retention >= 1.10x, purchases >= 1.05x, catalog coverage >= 2x; "yes" when the interval's lower bound
# meets the goal).
#
# Usage: bench/simulate.sh   (BUILD=dir, default build; SEEDS=5; EPOCHS=80; DATASET=movielens|tianchi;
#                             SIM="k=v,..." extra simulator parameters)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SEEDS=${SEEDS:-5}
EPOCHS=${EPOCHS:-80}
DATASET=${DATASET:-movielens}
SIM=${SIM:-}
[ -x "$BUILD/magpie" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
case "$DATASET" in
movielens) DATA=../shared/data/ml-100k; PRESET=movielens ;;
tianchi) DATA=../shared/data/tianchi-ecomm-multibehavior; PRESET=tianchi ;;
*) echo "DATASET must be movielens or tianchi" >&2; exit 2 ;;
esac
[ -d "$DATA" ] || { echo "dataset not found: $DATA" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/magpie" import --preset "$PRESET" "$DATA" --db "$tmp/sim.db" --quiet
spec="n_cands=300,cover_reward=2${SIM:+,$SIM}"
echo "magpie simulate --db <$DATASET> --seeds $SEEDS --rl-epochs $EPOCHS --sim $spec"
"$BUILD/magpie" simulate --db "$tmp/sim.db" --seeds "$SEEDS" --rl-epochs "$EPOCHS" --sim "$spec" \
    --policy greedy --policy rl --policy greedy+protect --policy egreedy:epsilon=0.1 --policy softmax:tau=0.5 \
    --policy linucb:alpha=1 --policy ts:v=0.5 --policy squarecb:gamma=100 --policy uniform
