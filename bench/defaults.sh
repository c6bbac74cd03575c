#!/usr/bin/env bash
# bench/defaults.sh: experiments for choosing models' default hyper-parameters on VALIDATION splits only.
#
#   bench/defaults.sh import                       import the datasets into bench/out/defaults/*.db
#   bench/defaults.sh valid DATASET MODEL [PARAMS] validation NDCG@10 (magpie eval --on valid), one line to results.tsv
#   bench/defaults.sh tune DATASET MODEL TRIALS [SPACE]   magpie tune (trials scored on validation), best line
#   bench/defaults.sh test DATASET MODEL [PARAMS]  test NDCG@10 (reporting only, for chosen defaults)
#
# Datasets and their protocols (the same as the issue's):
#   beauty  S3-Rec Beauty, --protocol loo --history zero
#   games   Amazon Games (LLMRank Games-6k), --protocol loo --history zero
#   ml100k  MovieLens-100K, --protocol ratio --ratio 0.75 --seed 1
#   demo    magpie gen-demo (defaults, seed 42), --protocol loo
#   tianchi Tianchi EComm multi-behaviour sample, --protocol loo
# --on valid fits on the training part only (no validation events given for early stopping) and scores the
# validation part with history = training: exactly what `magpie tune` does for each trial.
# One thread everywhere (OMP/OpenBLAS and --threads 1).
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
BUILD=${BUILD:-build}
MAGPIE=${MAGPIE:-$PWD/$BUILD/magpie}
DATA=${MAGPIE_SHARED_DATA:-../shared/data}
OUT=bench/out/defaults
RES=$OUT/results.tsv
mkdir -p "$OUT"

proto() {
    case $1 in
        beauty|games) echo "--protocol loo --history zero" ;;
        ml100k) echo "--protocol ratio --ratio 0.75 --seed 1" ;;
        demo|tianchi) echo "--protocol loo" ;;
        *) echo "defaults: unknown dataset $1" >&2; exit 2 ;;
    esac
}
ndcg10() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.4f" % d["groups"]["overall"]["at"]["10"]["ndcg"])'; }

cmd=${1:-}; shift || true
case $cmd in
import)
    rm -f $OUT/*.db
    "$MAGPIE" import --preset s3rec "$DATA/amazon-s3rec" --db $OUT/beauty.db --quiet
    "$MAGPIE" import --preset movielens "$DATA/ml-100k" --db $OUT/ml100k.db --quiet
    "$MAGPIE" import --preset amazon-games "$DATA/amazon-games-text" --db $OUT/games.db --quiet
    "$MAGPIE" import --preset tianchi "$DATA/tianchi-ecomm-multibehavior" --db $OUT/tianchi.db --quiet
    "$MAGPIE" gen-demo --out $OUT/demo --quiet
    for k in items users events; do "$MAGPIE" import $k $OUT/demo/$k.jsonl --db $OUT/demo.db --quiet; done
    ;;
valid|test)
    ds=$1 m=$2 p=${3:-}
    t0=$(date +%s.%N)
    on=valid; [ "$cmd" = test ] && on=test
    r=$("$MAGPIE" eval --db $OUT/$ds.db --model "$m" ${p:+--param "$p"} $(proto "$ds") --on $on --k 10 --threads 1 \
        --json --quiet 2> $OUT/last.err | ndcg10) || { echo "failed: $(head -c 300 $OUT/last.err)"; exit 1; }
    t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%H:%M)" "$on" "$ds" "$m" "${p:-defaults}" "$r" "$t" | tee -a $RES
    ;;
tune)
    ds=$1 m=$2 n=$3 sp=${4:-}
    t0=$(date +%s.%N)
    f=$OUT/tune-$ds-$m-$n.md
    "$MAGPIE" tune --db $OUT/$ds.db --model "$m" $(proto "$ds") --trials "$n" --seed 1 --threads 1 --k 10 \
        ${sp:+--space "$sp"} --quiet > "$f" 2> $OUT/last.err || { echo "failed: $(head -c 300 $OUT/last.err)"; exit 1; }
    t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    best=$(sed -n 's/^best params: //p' "$f")
    bv=$(sed -n 's/^best: trial [0-9]*, [a-z@0-9]* \([0-9.]*\) on validation.*/\1/p' "$f")
    printf '%s\ttune%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%H:%M)" "$n" "$ds" "$m" "$best" "$bv" "$t" | tee -a $RES
    ;;
*) sed -n 2,20p "$0"; exit 2 ;;
esac
