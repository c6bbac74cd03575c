#!/usr/bin/env bash
# bench/speed.sh: training and serving speed beside peers, as markdown tables on stdout (logs on stderr).
#
#   ALS (implicit feedback, CG solver, 3 CG steps), seconds per iteration at 64 and 128 factors, same thread count:
#     - synthetic power-law matrix built by bench/als_speed (zipf(1.3)-like item popularity, 1M users x 100k items,
#       ~13M non-zeros, seeded, duplicates summed), written to a file that the peer reads;
#     - the peer: bench/torch_als.py, the same CG-ALS written with PyTorch (Debian's python3-torch, installed with
#       apt when missing and possible; otherwise the comparison is skipped with a note);
#     - implicit (the fastest common CPU ALS) as measured when issue 3 was written, on this kind of machine;
#     - achieved GFLOP/s against an OpenBLAS sgemm measured in the same run; Cholesky solver; top-10 for every
#       user through batched sgemm; peak RSS against the bytes of CSR + CSC + factors;
#     - the real sets (ML-100K, Beauty) when ../shared/data is there.
#   BPR: $BUILD/bench/bpr_speed, when it exists, prints its own table.
#   Every model on ML-100K and Beauty: fit time, top-10 serving rate and peak RSS ($BUILD/bench/knn_speed).
#
# Usage: bench/speed.sh     (BUILD=dir picks the build, default build)
#   THREADS=2  USERS=1000000 ITEMS=100000 DRAWS=17500000 (draws before duplicates are summed: ~13.0M non-zeros)  ITERS=3
#   TORCH_ITERS=1  TORCH=0 (skip the PyTorch peer)  TOPN_USERS=all|N  QUICK=1 (a 10x smaller synthetic matrix)
#   Note: timings on a machine shared with other work are noisy; the CPU-seconds column (process CPU time per
#   iteration / threads) is what the wall time would be with the cores to ourselves.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
DATA=${MAGPIE_SHARED_DATA:-../shared/data}
OUT=bench/out/speed
ITERS=${ITERS:-3}
TORCH_ITERS=${TORCH_ITERS:-1}
if [ "${QUICK:-0}" = 1 ]; then
    USERS=${USERS:-100000} ITEMS=${ITEMS:-10000} DRAWS=${DRAWS:-1500000}
else
    USERS=${USERS:-1000000} ITEMS=${ITEMS:-100000} DRAWS=${DRAWS:-17500000}
fi
TOPN_USERS=${TOPN_USERS:-all}
[ "$TOPN_USERS" = all ] && TOPN_USERS=$USERS
ALS=$BUILD/bench/als_speed
MAGPIE=$BUILD/magpie
mkdir -p "$OUT"
[ -x "$ALS" ] || { echo "speed: $ALS not built (run make BUILD=$BUILD)" >&2; exit 1; }
log() { echo "speed: $*" >&2; }
val() { awk -v k="$1" '$1 == k {print $2}' "$2" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.1fx", a / b }'; }

# ---- Magpie on the synthetic matrix ----
SYN=$OUT/als_synthetic.txt
log "als_speed: ${USERS} users x ${ITEMS} items, ${DRAWS} draws, ${THREADS} threads (a few minutes)"
"$ALS" --users "$USERS" --items "$ITEMS" --draws "$DRAWS" --seed 0 --threads "$THREADS" --iters "$ITERS" \
    --factors 128,64 --cholesky 1 --topn-users "$TOPN_USERS" --write "$OUT/synthetic.bin" > "$SYN"

# ---- the PyTorch peer ----
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
TORCH_NOTE=""
TOR=$OUT/torch_synthetic.txt
: > "$TOR"
if [ "${TORCH:-1}" = 1 ]; then
    if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing python3-torch with apt (once)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-torch python3-numpy \
                >&2 || true
        fi
    fi
    if "$PY" -c 'import torch, numpy' 2>/dev/null; then
        log "torch_als.py on the same matrix, ${THREADS} threads, ${TORCH_ITERS} iteration(s) per size"
        "$PY" bench/torch_als.py --matrix "$OUT/synthetic.bin" --factors 64,128 --iters "$TORCH_ITERS" \
            --threads "$THREADS" > "$TOR" || TORCH_NOTE="torch_als.py failed (see stderr)"
    else
        TORCH_NOTE="PyTorch is not available (python3-torch could not be installed), so the PyTorch comparison is skipped"
    fi
else
    TORCH_NOTE="PyTorch comparison skipped (TORCH=0)"
fi

# implicit 0.7 (C++/Cython, CG), 2 threads, zipf(1.3) 1M x 100k x 13.0M, measured when issue 3 was written
IMPLICIT_64=3.59
IMPLICIT_128=7.59

echo "## ALS speed, synthetic power-law matrix"
echo
echo "$(val matrix_users "$SYN") users x $(val matrix_items "$SYN") items, $(val matrix_nnz "$SYN") non-zeros;" \
    "${THREADS} threads; OpenBLAS sgemm measured in the same run: $(val sgemm_gflops "$SYN") GFLOP/s."
echo
echo "| factors | Magpie CG s/iter | CPU-s/iter / threads | GFLOP/s | % of sgemm | PyTorch CG s/iter | PyTorch / Magpie | implicit s/iter (issue) | implicit / Magpie | Magpie Cholesky s/iter |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for k in 64 128; do
    m=$(val cg_k${k}_sec_per_iter "$SYN")
    cpu=$(val cg_k${k}_cpu_sec_per_iter "$SYN")
    cpu_t=$(awk -v c="$cpu" -v t="$THREADS" 'BEGIN { printf "%.3f", c / t }')
    gf=$(val cg_k${k}_gflops "$SYN")
    pk=$(awk -v g="$gf" -v p="$(val sgemm_gflops "$SYN")" 'BEGIN { printf "%.0f%%", 100 * g / p }')
    tt=$(val torch_k${k}_sec_per_iter "$TOR")
    im=$([ "$k" = 64 ] && echo $IMPLICIT_64 || echo $IMPLICIT_128)
    ch=$(val chol_k${k}_sec_per_iter "$SYN")
    echo "| $k | $m | $cpu_t | $gf | $pk | ${tt:-n/a} | $(ratio "$tt" "$m") | $im | $(ratio "$im" "$m") | $ch |"
done
echo
[ -n "$TORCH_NOTE" ] && { echo "Note: $TORCH_NOTE."; echo; }
echo "The implicit figures were measured on a matrix generated the same way but with numpy (seed 0), not this very"
echo "matrix; the PyTorch peer runs on exactly this matrix."
echo
kt=$(val topn_k64_users "$SYN")
[ -z "$kt" ] && kt=$(val topn_k128_users "$SYN")
for k in 64 128; do
    n=$(val topn_k${k}_users "$SYN")
    [ -z "$n" ] && continue
    echo "Top-10 for $n users ($k factors, training items excluded, batched sgemm + partial sort):" \
        "$(val topn_k${k}_seconds "$SYN") s, $(val topn_k${k}_users_per_sec "$SYN") users/s," \
        "$(val topn_k${k}_gflops "$SYN") GFLOP/s."
done
echo
rss=$(val rss_peak_bytes "$SYN")
base=$(val rss_base_bytes "$SYN")
echo "Peak RSS of training (both sizes): $(awk -v r="$rss" 'BEGIN { printf "%.0f MiB", r / 1048576 }') vs" \
    "$(awk -v r="$base" 'BEGIN { printf "%.0f MiB", r / 1048576 }') for CSR + CSC + the 128-factor matrices:" \
    "$(val rss_ratio "$SYN")x (goal <= 1.5x)."
echo

# ---- real sets ----
if [ -x "$MAGPIE" ] && [ -d "$DATA/ml-100k" ] && [ -d "$DATA/amazon-s3rec" ]; then
    echo "## ALS speed, real sets (every event, default weights)"
    echo
    echo "| set | users | items | non-zeros | CG 64 s/iter | CG 128 s/iter | Cholesky 64 s/iter | Cholesky 128 s/iter |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for set in ml100k:movielens:ml-100k beauty:s3rec:amazon-s3rec; do
        IFS=: read -r name preset dir <<< "$set"
        db=$OUT/$name.db
        [ -f "$db" ] || "$MAGPIE" import --preset "$preset" "$DATA/$dir" --db "$db" --quiet
        f=$OUT/als_$name.txt
        "$ALS" --db "$db" --threads "$THREADS" --iters 10 --factors 64,128 --cholesky 1 --topn-users 0 > "$f"
        echo "| $name | $(val matrix_users "$f") | $(val matrix_items "$f") | $(val matrix_nnz "$f") |" \
            "$(val cg_k64_sec_per_iter "$f") | $(val cg_k128_sec_per_iter "$f") | $(val chol_k64_sec_per_iter "$f") |" \
            "$(val chol_k128_sec_per_iter "$f") |"
    done
    echo
fi

# ---- every model on the real sets: fit time, top-10 serving rate, peak RSS (bench/knn_speed works for any model) ----
MODEL_BENCH=$BUILD/bench/knn_speed
if [ -x "$MODEL_BENCH" ] && [ -d "$DATA/amazon-s3rec" ] && [ -d "$DATA/ml-100k" ]; then
    log "every model: fit, serve, peak RSS"
    echo "## Every model on the real sets: fit on every event, top-10 for every user (1 serving thread), peak RSS"
    echo
    echo "| set | model | fit s | serving users/s | peak RSS MiB (fit + serving, one process) |"
    echo "|---|---|---:|---:|---:|"
    for set in ml100k:movielens:ml-100k beauty:s3rec:amazon-s3rec; do
        IFS=: read -r name preset dir <<< "$set"
        db=$OUT/$name.db
        [ -f "$db" ] || "$MAGPIE" import --preset "$preset" "$DATA/$dir" --db "$db" --quiet
        for model in pop itemknn ease als bpr mf; do
            line=$("$MODEL_BENCH" "$db" "$model" --threads "$THREADS" 2>/dev/null | tail -1) || line=""
            kv() { tr ' ' '\n' <<< "$line" | awk -F= -v k="$1" '$1 == k {print $2}'; }
            if [ -z "$line" ]; then
                echo "| $name | $model | n/a (model cannot fit this set) | | |"
            else
                echo "| $name | $model | $(kv fit_s) | $(kv serve_users_per_s) | $(kv peak_rss_mb) |"
            fi
        done
    done
    echo
fi

# ---- BPR ----
if [ -x "$BUILD/bench/bpr_speed" ]; then
    log "bpr_speed (on the same synthetic matrix)"
    if [ -f "$OUT/synthetic.bin" ]; then "$BUILD/bench/bpr_speed" --read "$OUT/synthetic.bin"; else "$BUILD/bench/bpr_speed"; fi
fi
rm -f "$OUT/synthetic.bin"
