#!/usr/bin/env bash
# bench/sequential.sh: the sequential transformer (sasrec) on Beauty beside the published rows, seqknn and a blend,
# then its speed beside PyTorch (the same model and configuration, Debian python3-torch, same threads and batch)
# and OpenBLAS sgemm, a 1M-item catalog with the sampled softmax, and inference latency. One command; markdown
# tables on stdout, raw logs in bench/out/sequential/.
#
#   Beauty: ../shared/data/amazon-s3rec, S3-Rec protocol (leave-last-one-out, full ranking, history scored 0).
#   Magpie rows use each model's defaults (what a user gets) unless SASREC_PARAMS / SEQKNN_PARAMS say otherwise.
#
# Usage: bench/sequential.sh        (BUILD=dir picks the build, default build; THREADS=2)
#   SECTIONS="quality speed large"  which parts
#   TORCH_QUALITY=1                 also train the PyTorch reference to its best validation epoch (about an hour on
#                                   two cores); otherwise its published-by-us row from the issue is shown
#   TORCH_EPOCHS=2                  epochs the PyTorch speed row trains
#   LARGE_ITEMS=1000000 LARGE_USERS=50000   the synthetic catalog
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
DATA=${MAGPIE_SHARED_DATA:-../shared/data}
OUT=bench/out/sequential
SECTIONS=${SECTIONS:-quality speed large}
MAGPIE=$PWD/$BUILD/magpie
BENCH=$PWD/$BUILD/bench/seq_bench
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -x "$MAGPIE" ] && [ -x "$BENCH" ] || { echo "sequential: build first (make)" >&2; exit 1; }
[ -f "$DATA/amazon-s3rec/Beauty.txt" ] || { echo "sequential: $DATA/amazon-s3rec not found" >&2; exit 1; }
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
DB=$OUT/beauty.db
if [ ! -s "$DB" ]; then
    "$MAGPIE" import --preset s3rec "$DATA/amazon-s3rec" --db "$DB" --quiet || { echo "sequential: import failed" >&2; exit 1; }
fi
val() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1" | head -1; }

if [[ " $SECTIONS " == *" quality "* ]]; then
    echo "## Beauty, S3-Rec protocol (leave-last-one-out, full ranking, history scored 0)"
    echo
    "$BENCH" quality "$DB" "${SASREC_PARAMS:-}" "${SEQKNN_PARAMS:-}" > "$OUT/quality.md" 2> "$OUT/quality.err" ||
        { tail -5 "$OUT/quality.err" >&2; echo "sequential: quality run failed" >&2; }
    grep '^|' "$OUT/quality.md" | head -2
    echo "| SASRec, BCE (S3-Rec table) | published | 0.0387 | 0.0249 | 0.0605 | 0.0318 | 0.0902 | 0.0394 | | |"
    echo "| ICLRec (WWW 2022) | published | 0.0500 | 0.0326 | 0.0744 | 0.0403 | 0.1058 | 0.0483 | | |"
    echo "| HSTU | published | | | | 0.0389 | | | | |"
    echo "| DuoRec | published | | | | 0.0443 | | | | |"
    echo "| eSASRec | published | | | | 0.0523 | | | | |"
    echo "| SASRec, sampled softmax | published | | | | 0.0531 | | | | |"
    echo "| BSARec (AAAI 2024) | published | | | 0.1008 | 0.0611 | | | | |"
    echo "| PyTorch SASRec, full softmax (measured when the issue was written) | 2 blocks, 64 d, dropout 0.5 | | | 0.0936 | 0.0560 | | | 40 | |"
    if [ "${TORCH_QUALITY:-0}" = 1 ]; then
        $PY bench/sasrec_torch.py --data "$DATA/amazon-s3rec/Beauty.txt" --threads "$THREADS" > "$OUT/torch_quality.log" 2>&1
    fi
    # the PyTorch row: this run's (TORCH_QUALITY=1) or the last one kept in $OUT
    if [ -s "$OUT/torch_quality.log" ]; then
        head -1 "$OUT/torch_quality.log" | sed 's/^config: /PyTorch config: /' >&2
        r=$(grep '^RESULT torch_sasrec ' "$OUT/torch_quality.log" | tail -1)
        [ -n "$r" ] && echo "$r" | awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
            printf "| PyTorch SASRec (bench/sasrec_torch.py, log in bench/out) | same architecture, its flags in the log | %s | %s | %s | %s | %s | %s | %s | |\n",
                   v["hr5"], v["ndcg5"], v["hr10"], v["ndcg10"], v["hr20"], v["ndcg20"], v["best_epoch"]}'
    fi
    grep '^|' "$OUT/quality.md" | tail -n +3
    echo
    grep '^RESULT latency' "$OUT/quality.md" | sed 's/^RESULT /inference, one 50-item session, one thread: /'
    echo
fi

if [[ " $SECTIONS " == *" speed "* ]]; then
    echo "## Speed (threads: $THREADS, load average before: $(cut -d' ' -f1 /proc/loadavg); ratios are only meaningful on a quiet machine)"
    echo
    "$BENCH" step > "$OUT/step.txt" 2>&1
    # Magpie's epoch (training part, 3 epochs) right before PyTorch's, so both see the same machine
    SEQ_BENCH_EPOCH_ONLY=1 "$BENCH" quality "$DB" "${SASREC_PARAMS:-}" > "$OUT/epoch.txt" 2>/dev/null
    mag_epoch=$(val "$OUT/epoch.txt" sasrec_epoch_s)
    # the same configuration as sasrec's defaults (its clipping at global norm 1 included)
    $PY bench/sasrec_torch.py --data "$DATA/amazon-s3rec/Beauty.txt" --threads "$THREADS" --max-norm 1 \
        --epochs-only-timing "${TORCH_EPOCHS:-2}" > "$OUT/torch_speed.log" 2>&1
    torch_epoch=$(sed -n 's/.*mean_epoch_s=\([0-9.]*\).*/\1/p' "$OUT/torch_speed.log" | tail -1)
    step_ms=$(val "$OUT/step.txt" ms)
    gf=$(val "$OUT/step.txt" gflops)
    sg=$(grep '^RESULT sgemm' "$OUT/step.txt" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p')
    echo "| measure | Magpie | PyTorch | ratio |"
    echo "|---|---:|---:|---:|"
    echo "| Beauty epoch (s), defaults, batch 256 | ${mag_epoch:-?} | ${torch_epoch:-?} | $(awk -v a="${mag_epoch:-0}" -v b="${torch_epoch:-0}" 'BEGIN {if (a > 0 && b > 0) printf "%.1fx", b / a; else print "?"}') |"
    echo "| full batch step (ms), 256 x 50, 12,101 items | ${step_ms:-?} | | |"
    echo "| GFLOP/s over the whole step vs OpenBLAS sgemm | ${gf:-?} | sgemm ${sg:-n/a} | $(awk -v a="${gf:-0}" -v b="${sg:-0}" 'BEGIN {if (a > 0 && b > 0) printf "%.0f%% of sgemm", 100 * a / b; else print "?"}') |"
    echo
    grep '^RESULT step' "$OUT/step.txt"
    echo
fi

if [[ " $SECTIONS " == *" large "* ]]; then
    echo "## A synthetic catalog of ${LARGE_ITEMS:-1000000} items (loss=sampled)"
    echo
    "$BENCH" large "${LARGE_ITEMS:-1000000}" "${LARGE_USERS:-50000}" 20 > "$OUT/large.txt" 2> "$OUT/large.err" ||
        { tail -5 "$OUT/large.err" >&2; echo "sequential: large run failed" >&2; }
    grep '^RESULT' "$OUT/large.txt"
    echo
fi
