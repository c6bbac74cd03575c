#!/usr/bin/env bash
# bench/baselines.sh: popularity baselines on the real public datasets, beside the published rows.
#
#   Beauty (S3-Rec files, full ranking, leave-last-one-out, history scored 0 as in the S3-Rec code):
#     - honest: popularity counted on the training part only (the default)
#     - leaky:  popularity counted over whole sequences, test items included (--fit-on all), which is how the
#               published PopRec row comes out
#   MovieLens-100K (Microsoft Recommenders protocol: per-user stratified 75/25 random split, top-10, seen
#     items excluded), 5 seeds, mean and standard deviation.
#
# Needs ../shared/data (or MAGPIE_SHARED_DATA). Work files go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MAGPIE=${MAGPIE:-$PWD/$BUILD/magpie}
DATA=${MAGPIE_SHARED_DATA:-../shared/data}
OUT=bench/out
mkdir -p "$OUT"
[ -x "$MAGPIE" ] || { echo "bench: $MAGPIE not built (run make)" >&2; exit 1; }
[ -d "$DATA/amazon-s3rec" ] || { echo "bench: $DATA/amazon-s3rec not found" >&2; exit 1; }

rm -f "$OUT/beauty.db" "$OUT/ml100k.db"
"$MAGPIE" import --preset s3rec "$DATA/amazon-s3rec" --db "$OUT/beauty.db" --quiet
"$MAGPIE" import --preset movielens "$DATA/ml-100k" --db "$OUT/ml100k.db" --quiet

# Prints the overall row's columns for each k as "k HR P R NDCG MAP MRR ...".
overall_rows() { awk -F'|' 'NF >= 12 && $2 ~ /overall/ && $3 ~ /[0-9]/ {gsub(/ /,""); print $3, $4, $5, $6, $7, $8, $9}'; }

echo "## Beauty, full ranking (S3-Rec protocol: loo, history scored 0), popularity"
echo
echo "| run | HR@5 | NDCG@5 | HR@10 | NDCG@10 | HR@20 | NDCG@20 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| published PopRec (S3-Rec repo, all_rank.PNG) | 0.0080 | 0.0044 | 0.0152 | 0.0068 | 0.0217 | 0.0084 |"
for fit in all train; do
    label="Magpie pop, fit on train only (honest, default)"
    [ "$fit" = all ] && label="Magpie pop, --fit-on all (leaky, as published)"
    "$MAGPIE" eval --db "$OUT/beauty.db" --model pop --protocol loo --history zero --k 5,10,20 \
        --fit-on "$fit" --quiet | overall_rows |
        awk -v label="$label" '{hr[NR]=$2; nd[NR]=$5} END {printf "| %s | %s | %s | %s | %s | %s | %s |\n", label, hr[1], nd[1], hr[2], nd[2], hr[3], nd[3]}'
done

echo
echo "## MovieLens-100K, Microsoft Recommenders protocol (75/25 stratified per user, top-10, seen excluded), 5 seeds"
echo
echo "| model | MAP@10 | nDCG@10 | Precision@10 | Recall@10 |"
echo "|---|---:|---:|---:|---:|"
for seed in 1 2 3 4 5; do
    "$MAGPIE" eval --db "$OUT/ml100k.db" --model pop --protocol ratio --ratio 0.75 --seed "$seed" --k 10 --quiet |
        overall_rows
done | awk '{p+=$3; pp+=$3*$3; r+=$4; rr+=$4*$4; n+=$5; nn+=$5*$5; m+=$6; mm+=$6*$6; c++}
    function sd(s, ss) { v = ss / c - (s / c) ^ 2; return v > 0 ? sqrt(v * c / (c - 1)) : 0 }
    END {printf "| Magpie pop | %.4f ± %.4f | %.4f ± %.4f | %.4f ± %.4f | %.4f ± %.4f |\n",
                m/c, sd(m,mm), n/c, sd(n,nn), p/c, sd(p,pp), r/c, sd(r,rr)}'
echo "| BiVAE (best published row, Recommenders benchmark) | 0.1461 | 0.4751 | 0.4118 | 0.2191 |"
