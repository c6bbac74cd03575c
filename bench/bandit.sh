#!/usr/bin/env bash
# bench/bandit.sh: the exploration policies of issue 6 section 1 (magpie/bandit.h) on a seeded synthetic shop with
# OBD-like click rates: 34 items, slates of 3, contextual linear click model, a noisy offline base model.
# Prints one table: cumulative clicks, CTR and regret against the oracle slate for uniform, greedy on the base
# model alone, greedy on base + online ridge, egreedy, softmax, LinUCB, linear TS and SquareCB (mean +- sd over
# seeds; the regret column beside uniform's).
#
# Usage: bench/bandit.sh        (BUILD=dir picks the build, default build; ROUNDS=200000, SEEDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-200000}
SEEDS=${SEEDS:-3}
[ -x "$BUILD/bench/bandit_sim" ] || { echo "build first: make BUILD=$BUILD" >&2; exit 1; }
"$BUILD/bench/bandit_sim" "$ROUNDS" "$SEEDS"
