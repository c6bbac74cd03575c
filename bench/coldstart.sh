#!/usr/bin/env bash
# bench/coldstart.sh: the cold-start benchmarks of issue 5 (section 5), one command, one markdown report on stdout
# and in bench/out/coldstart.md (progress on stderr). The program is $BUILD/bench/coldstart_bench
# (bench/coldstart_bench.c); every number comes from libmagpie (models by name, textindex, skip-gram, USE-Lite,
# eval metrics).
#
#   (a) cold items, Amazon Games with titles (../shared/data/amazon-games-text): a seeded 20% of the items lose
#       every interaction (training and histories); users whose test item is cold rank all items (less their
#       history). Recall@20 / NDCG@20 for random, popularity, TF-IDF titles (character n-grams), USE-Lite titles,
#       the hybrid, and a warm upper bound (co-occurrence models trained with those items' interactions).
#   (b) the LLMRank protocol on Games (200 users of Games.random, 20 candidates = 19 from the user's line with the
#       ground truth removed + the ground truth; NDCG@1/5/10/20 x100), in two labelled settings:
#       zero-shot (titles only: BM25, TF-IDF char n-grams, USE-Lite mean/max/recency, skip-gram trained on the
#       catalog titles, and their combination with fixed equal weights) beside the published BM25/UniSRec/GPT-4
#       rows; and trained on the other users' full sequences (pop, itemknn, als, seqknn, hybrid, and a z-scored
#       blend whose weights are chosen on the Games validation split).
#   (c) new users with <= 3 events on Beauty (../shared/data/amazon-s3rec): a seeded 20% of users keep only their
#       first m = 1, 2, 3 events (in turn); target = their next event; NDCG@10 and HR@10 over all items for pop,
#       itemknn, als, seqknn and the hybrid with the item attributes as content.
#
# Usage: bench/coldstart.sh        (BUILD=dir picks the build, default build)
#   SEED=42 COLD_USERS=3000 (0 = all 9,733 eligible users) SHORT_USERS=0 TUNE_USERS=2000 HYBRID_PARAMS=""
#   ONLY="cold llmrank short" DATA=../shared/data
# Choosing hybrid parameters for (a): run the validation split (history -> Games-6k.valid.inter target, same cold
# items), never the test one: $BUILD/bench/coldstart_bench cold $DATA/amazon-games-text --split valid --users 0 \
#   --models hybrid --hybrid k=v,...
# USE-Lite embeddings of the 16,859 Games titles are cached in bench/out/coldstart/ after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SEED=${SEED:-42}
COLD_USERS=${COLD_USERS:-3000}
SHORT_USERS=${SHORT_USERS:-0}
TUNE_USERS=${TUNE_USERS:-2000}
HYBRID_PARAMS=${HYBRID_PARAMS:-}
ONLY=${ONLY:-"cold llmrank short"}
DATA=${DATA:-${MAGPIE_SHARED_DATA:-../shared/data}}
OUT=bench/out
CACHE=$OUT/coldstart

for d in amazon-games-text amazon-s3rec; do
    [ -d "$DATA/$d" ] || { echo "coldstart.sh: $DATA/$d not found (set DATA=)" >&2; exit 1; }
done
make -s BUILD="$BUILD" "$BUILD/bench/coldstart_bench" >&2
BENCH=$BUILD/bench/coldstart_bench
mkdir -p "$OUT" "$CACHE"

start=$(date +%s)
{
    echo "# Cold start (issue 5, section 5)"
    echo
    echo "Seed $SEED; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); build $BUILD."
    echo
    for part in $ONLY; do
        case $part in
        cold) "$BENCH" cold "$DATA/amazon-games-text" --seed "$SEED" --users "$COLD_USERS" --cache "$CACHE" \
                  --hybrid "$HYBRID_PARAMS" ;;
        llmrank) "$BENCH" llmrank "$DATA/amazon-games-text" --seed "$SEED" --tune-users "$TUNE_USERS" \
                     --cache "$CACHE" --hybrid "$HYBRID_PARAMS" ;;
        short) "$BENCH" short "$DATA/amazon-s3rec" --seed "$SEED" --users "$SHORT_USERS" --hybrid "$HYBRID_PARAMS" ;;
        *) echo "coldstart.sh: unknown part $part (cold, llmrank, short)" >&2; exit 2 ;;
        esac
    done
    echo "Whole script: $(( $(date +%s) - start )) s."
} | tee "$OUT/coldstart.md.tmp"
mv "$OUT/coldstart.md.tmp" "$OUT/coldstart.md"
