#!/usr/bin/env bash
# bench/ann.sh: Magpie's HNSW index (src/ann) beside hnswlib and exact search, as markdown tables on stdout (logs on
# stderr; raw outputs and the tables in bench/out/ann/).
#
# For each dataset, $BUILD/bench/ann_speed generates the vectors and queries (seeded; see the top of
# bench/ann_speed.c for how), computes the exact top-k of every query, measures exact search (mp_ann_exact, one
# query at a time, one thread), builds Magpie's index and sweeps ef; it writes vectors, queries and ground truth to
# a file that bench/ann_hnswlib.cc (compiled here with g++ -O3 -march=native against Debian's libhnswlib-dev) reads
# to build hnswlib's index with the same M, ef_construction and thread count and sweep the same ef values.
#   gauss      N x 64 standard normal vectors (no structure: the hardest case for a graph)
#   clustered  N x 64 item-embedding-like vectors: 2000 gaussian clusters of lognormal popularity, lognormal norms
# Metric: inner product (IP) for both, queries from the same distribution as the items.
# Reported per engine: build time (wall, THREADS threads), index size (Magpie: vectors + graph; hnswlib: its
# level-0 block, upper lists, levels and per-node locks) and growth of resident memory during the build; QPS at
# recall@10 = 0.90 / 0.95 / 0.99, linearly interpolated between the two swept ef values around the target (the ef
# shown is the first swept one reaching it). QPS are single-thread, best of REPS passes over all queries, by wall
# time; the "(cpu)" rows count the query thread's CPU time instead (equal on a quiet machine, steadier when the
# machine is shared).
#
# Usage: bench/ann.sh     (BUILD=dir picks the build, default build)
#   N=1000000 DIM=64 Q=1000 K=10 M=16 EFC=200 THREADS=2 REPS=3 EXACT_Q=50 DATASETS="gauss clustered"
#   EFS=10,16,24,32,48,64,96,128,192,256,384,512,768,1024,1536,2048,3072,4096  (each sweep stops at recall 0.999)
#   N=100000 for a quick run. KEEP=1 keeps the data files (N x DIM floats each).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-1000000}
DIM=${DIM:-64}
Q=${Q:-1000}
K=${K:-10}
M=${M:-16}
EFC=${EFC:-200}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
EXACT_Q=${EXACT_Q:-50}
DATASETS=${DATASETS:-"gauss clustered"}
EFS=${EFS:-10,16,24,32,48,64,96,128,192,256,384,512,768,1024,1536,2048,3072,4096}
OUT=bench/out/ann
SPEED=$BUILD/bench/ann_speed
PEER=$OUT/ann_hnswlib
mkdir -p "$OUT"
log() { echo "ann: $*" >&2; }
[ -x "$SPEED" ] || { log "$SPEED not built (run make BUILD=$BUILD)"; exit 1; }

PEER_NOTE=""
if [ -f /usr/include/hnswlib/hnswlib.h ] && command -v g++ >/dev/null; then
    g++ -O3 -march=native -std=c++17 -pthread -o "$PEER" bench/ann_hnswlib.cc
else
    PEER=""
    PEER_NOTE="hnswlib not compared: install libhnswlib-dev and g++ (apt-get install libhnswlib-dev g++)"
    log "$PEER_NOTE"
fi

val() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) v = kv[2] } } END { print v }' "$2"; }

# qps_at FILE TARGET COLUMN: QPS at recall TARGET from the sweep lines of FILE, interpolated between the swept ef
# values around it; prints "QPS (ef E)" or "n/a (max R)".
qps_at() {
    awk -v t="$2" -v col="$3" '
        /^sweep/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            r = f["recall"] + 0; q = f[col] + 0; e = f["ef"]
            if (r > best) best = r
            if (!done && r >= t) {
                if (have && r0 < t && r > r0) q = q0 + (q - q0) * (t - r0) / (r - r0)
                printf "%.0f (ef %s)", q, e; done = 1
            }
            have = 1; r0 = r; q0 = q
        }
        END { if (!done) printf "n/a (max %.3f)", best }' "$1"
}

num() { echo "$1" | awk '{ print $1 + 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0 || a + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }

TABLE=$OUT/results.md
{
    echo "## ANN: Magpie HNSW vs hnswlib vs exact search"
    echo
    echo "N=$N x $DIM, metric ip, $Q queries, recall@$K; M=$M, ef_construction=$EFC, $THREADS build threads;" \
         "single-thread search; $(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg)"
    [ -n "$PEER_NOTE" ] && echo && echo "$PEER_NOTE"
} > "$TABLE"

for ds in $DATASETS; do
    DATA=$OUT/$ds.bin
    MINE=$OUT/magpie_$ds.txt
    THEIRS=$OUT/hnswlib_$ds.txt
    log "$ds: generating, ground truth, exact search, Magpie build and sweep (N=$N)"
    "$SPEED" --data "$ds" --n "$N" --dim "$DIM" --queries "$Q" --k "$K" --M "$M" --efc "$EFC" --threads "$THREADS" \
        --efs "$EFS" --exact-queries "$EXACT_Q" --reps "$REPS" --write "$DATA" > "$MINE"
    : > "$THEIRS"
    if [ -n "$PEER" ]; then
        log "$ds: hnswlib build and sweep"
        "$PEER" "$DATA" --M "$M" --efc "$EFC" --threads "$THREADS" --efs "$EFS" --reps "$REPS" > "$THEIRS"
    fi
    [ "${KEEP:-0}" = 1 ] || rm -f "$DATA"

    EXACT=$(val exact_qps "$MINE")
    EXACT_CPU=$(val exact_cpu_qps "$MINE")
    {
        echo
        echo "### $ds"
        echo
        echo "(magpie / hnswlib: below 1 is better for build time and memory, above 1 for QPS)"
        echo
        echo "| engine | build s | index MiB | RSS growth MiB | QPS @ recall 0.90 | QPS @ 0.95 | QPS @ 0.99 |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        for eng in magpie hnswlib; do
            F=$MINE
            [ $eng = hnswlib ] && F=$THEIRS
            [ -s "$F" ] || continue
            echo "| $eng | $(val build_s "$F") | $(val index_mb "$F") | $(val rss_growth_mb "$F") |" \
                 "$(qps_at "$F" 0.90 qps) | $(qps_at "$F" 0.95 qps) | $(qps_at "$F" 0.99 qps) |"
            echo "| $eng (cpu) | | | | $(qps_at "$F" 0.90 cpu_qps) | $(qps_at "$F" 0.95 cpu_qps) |" \
                 "$(qps_at "$F" 0.99 cpu_qps) |"
        done
        if [ -s "$THEIRS" ]; then
            r() { ratio "$(num "$(qps_at "$MINE" "$1" "$2")")" "$(num "$(qps_at "$THEIRS" "$1" "$2")")"; }
            echo "| magpie / hnswlib | $(ratio "$(val build_s "$MINE")" "$(val build_s "$THEIRS")") |" \
                 "$(ratio "$(val index_mb "$MINE")" "$(val index_mb "$THEIRS")") |" \
                 "$(ratio "$(val rss_growth_mb "$MINE")" "$(val rss_growth_mb "$THEIRS")") |" \
                 "$(r 0.90 qps) | $(r 0.95 qps) | $(r 0.99 qps) |"
            echo "| magpie / hnswlib (cpu) | | | | $(r 0.90 cpu_qps) | $(r 0.95 cpu_qps) | $(r 0.99 cpu_qps) |"
        fi
        echo
        echo "Exact search (mp_ann_exact, one thread, $EXACT_Q queries): $EXACT QPS ($EXACT_CPU by CPU time);" \
             "ground truth agreed on $(val exact_agrees "$MINE") queries."
        echo "Magpie at recall 0.95: $(ratio "$(num "$(qps_at "$MINE" 0.95 qps)")" "$EXACT") the exact QPS" \
             "($(ratio "$(num "$(qps_at "$MINE" 0.95 cpu_qps)")" "$EXACT_CPU") by CPU time; goal >= 10x)."
        echo
        echo "Sweeps (ef: recall, QPS) -- magpie: $(awk '/^sweep/ { split($2,a,"="); split($3,b,"="); split($4,c,"="); printf "%s: %s %s; ", a[2], b[2], c[2] }' "$MINE")"
        [ -s "$THEIRS" ] && echo && echo "hnswlib: $(awk '/^sweep/ { split($2,a,"="); split($3,b,"="); split($4,c,"="); printf "%s: %s %s; ", a[2], b[2], c[2] }' "$THEIRS")"
    } >> "$TABLE"
done
cat "$TABLE"
