#!/usr/bin/env bash
# bench/use.sh: sentences per second of Magpie's C Universal Sentence Encoder (src/text/use.c) beside the same
# model run by TensorFlow.js, on the same sentences in one run; prints a markdown table on stdout (logs on stderr,
# inputs and vectors in bench/out/use/).
#
# Protocol:
#   - Sentences: the first N non-empty titles of ../shared/data/amazon-games-text/Games-6k.item (product titles,
#     as Magpie embeds them), one per line.
#   - TF.js: tests/use/embed.js = @energetic-ai/embeddings 0.2.0 (its tokenizer and embed()) on TF.js 4.5.0 with the
#     pure-JS 'cpu' backend (single-threaded JavaScript), BATCH sentences per embed() call. Its time covers the
#     embed() calls only (not Node start-up nor model loading).
#   - Magpie: $BUILD/bench/use_bench --speed, BATCH sentences per mp_use_embed call, timed the same way (model
#     loading excluded), at 1 thread (OpenMP and OPENBLAS_NUM_THREADS=1) and at THREADS threads; plus one row with
#     a larger batch (BIG_BATCH) to show what batching gives.
#   - Parity: both runs' vectors are compared row by row (min and mean cosine), so the speed is for the same output.
#
# Usage: bench/use.sh     (BUILD=dir picks the build, default build)
#   N=500 BATCH=32 BIG_BATCH=256 THREADS=$(nproc) DATA=../shared/data/amazon-games-text/Games-6k.item
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-500}
BATCH=${BATCH:-32}
BIG_BATCH=${BIG_BATCH:-256}
THREADS=${THREADS:-$(nproc)}
DATA=${DATA:-../shared/data/amazon-games-text/Games-6k.item}
OUT=bench/out/use
bench="$BUILD/bench/use_bench"

[ -x "$bench" ] || { echo "bench/use.sh: $bench not built (make BUILD=$BUILD all)" >&2; exit 1; }
[ -r "$DATA" ] || { echo "bench/use.sh: $DATA not found" >&2; exit 1; }
if [ ! -d tests/use/node_modules/@tensorflow/tfjs-backend-cpu ] || [ ! -d tests/use/node_modules/@energetic-ai/embeddings ]; then
    echo "installing the TF.js reference: npm ci --prefix tests/use" >&2
    npm ci --prefix tests/use --no-audit --no-fund >&2
fi
mkdir -p "$OUT"
sents="$OUT/titles-$N.txt"
awk -F'\t' -v n="$N" 'NR > 1 && $2 ~ /[^[:space:]]/ { print $2; if (++c == n) exit }' "$DATA" > "$sents"
n=$(grep -c '' "$sents")
echo "bench/use.sh: $n sentences from $DATA; TF.js first (slow)" >&2

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

tf_line=$(node tests/use/embed.js --in "$sents" --out "$OUT/tfjs.f32" --batch "$BATCH" 2>/dev/null)
echo "tfjs: $tf_line" >&2
tf_ps=$(echo "$tf_line" | field per_s)
tf_s=$(echo "$tf_line" | field seconds)

run_magpie() { # threads batch
    OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 "$bench" --speed "$sents" --threads "$1" --batch "$2"
}
m1=$(run_magpie 1 "$BATCH");            echo "magpie: $m1" >&2
mt=$(run_magpie "$THREADS" "$BATCH");   echo "magpie: $mt" >&2
mb=$(run_magpie "$THREADS" "$BIG_BATCH"); echo "magpie: $mb" >&2
OPENBLAS_NUM_THREADS=$THREADS "$bench" --dump "$sents" "$OUT/magpie.f32" --threads "$THREADS" >/dev/null
parity=$(node tests/use/compare.js "$OUT/tfjs.f32" "$OUT/magpie.f32")
blas=$(echo "$m1" | sed -n 's/.*blas=\([a-z]*\).*/\1/p')
[ "$blas" = openblas ] && blas="OpenBLAS sgemm" || blas="plain C, BLAS=none"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
row() { # label threads batch line
    local ps s
    ps=$(echo "$4" | field per_s)
    s=$(echo "$4" | field seconds)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$s" "$ps" "$(ratio "$ps" "$tf_ps")"
}
echo "## USE Lite embeddings: $n Games-6k titles, $(nproc) cores ($(date -u +%Y-%m-%d); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| engine | threads | batch | seconds | sentences/s | vs TF.js |"
echo "|---|---|---|---|---|---|"
printf '| TF.js 4.5.0 cpu backend (pure JS) | 1 | %s | %s | %s | 1.0x |\n' "$BATCH" "$tf_s" "$tf_ps"
row "Magpie C ($blas)" 1 "$BATCH" "$m1"
row "Magpie C ($blas)" "$THREADS" "$BATCH" "$mt"
row "Magpie C ($blas)" "$THREADS" "$BIG_BATCH" "$mb"
echo
echo "Parity of the vectors (TF.js vs Magpie, cosine per sentence): $parity"
