#!/usr/bin/env bash
# bench/textclf.sh: Magpie's fastText-class text classifier (src/text/textclf.c) beside Debian's fastText 0.9.2 on
# the Chinese online-shopping reviews (../shared/data/reviews-zh-online-shopping), as a markdown table on stdout
# (logs on stderr; splits, models and raw outputs in bench/out/textclf/).
#
# Protocol, per task (sentiment: label 0/1; cat: the 10 product categories):
#   - $BUILD/bench/textclf_bench split: one fixed, seeded (SEED) 80/20 split of the 62,774 reviews, written once
#     twice over: for fastText as "__label__X c h a r s" (text split into code points, whitespace dropped, so that
#     -wordNgrams 2 adds the character bigrams), for Magpie as "X<TAB>review" (its feature tokenizer makes the CJK
#     unigrams and bigrams itself; punctuation, which it drops, is added back as features with the classifier's
#     punct option, since fastText sees it as tokens).
#   - fastText: `fasttext supervised -wordNgrams 2 -epoch EPOCH -thread THREADS -dim DIM -lr LR -bucket BUCKET
#     -seed SEED`, then `fasttext predict` on the test part; P@1 = share of test rows whose top label is right
#     (`fasttext test` prints the same number, to 3 digits, in the log).
#   - Magpie: `textclf_bench train` with the same dim, epochs, lr, threads, buckets, seed (punct on, word bigrams off:
#     the CJK bigrams already are the character bigrams); it trains, then predicts
#     the test part in the same process.
#   - train_s: wall time of the whole training process under /usr/bin/time -v (fastText: reading, training, saving
#     its model; Magpie: reading, training, and predicting the test set), so both include their own I/O.
#     magpie_fit_s is Magpie's training call alone. peak_rss_mb: "Maximum resident set size" of the same process.
#   - Both train REPS times (training seeds SEED, SEED+1, ...; same split): with 2 Hogwild threads neither is
#     deterministic and single runs differ by about +-0.002 P@1, so the table shows means (peak RSS: the largest);
#     the per-run P@1 go to stderr.
#
# Usage: bench/textclf.sh     (BUILD=dir picks the build, default build)
#   SEED=42 REPS=3 THREADS=2 DIM=100 EPOCH=10 LR=0.5 BUCKET=2000000 TASKS="sentiment cat"
#   FASTTEXT=/usr/bin/fasttext DATA=../shared/data/reviews-zh-online-shopping
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SEED=${SEED:-42}
THREADS=${THREADS:-2}
DIM=${DIM:-100}
EPOCH=${EPOCH:-10}
LR=${LR:-0.5}
BUCKET=${BUCKET:-2000000}
TASKS=${TASKS:-"sentiment cat"}
REPS=${REPS:-3}
FASTTEXT=${FASTTEXT:-/usr/bin/fasttext}
DATA=${DATA:-../shared/data/reviews-zh-online-shopping}
OUT=bench/out/textclf

for tool in "$FASTTEXT" /usr/bin/time; do
    [ -x "$tool" ] || { echo "textclf.sh: $tool not found (apt-get install fasttext time)" >&2; exit 1; }
done
[ -f "$DATA/online_shopping_10_cats.part1.csv" ] || { echo "textclf.sh: no data in $DATA" >&2; exit 1; }
make -s BUILD="$BUILD" "$BUILD/bench/textclf_bench" >&2
BENCH=$BUILD/bench/textclf_bench
mkdir -p "$OUT"

# Seconds from /usr/bin/time -v's "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:19.92".
wall_s() { sed -n 's/.*Elapsed (wall clock) time ([^)]*): //p' "$1" | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; printf "%.2f", s}'; }
rss_mb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1" | awk '{printf "%.0f", $1/1024}'; }

echo "## Text classifier: Magpie vs fastText $(dpkg-query -W -f='${Version}' fasttext 2>/dev/null || echo '?')"
echo
echo "Reviews-zh online shopping, seeded 80/20 split (seed $SEED); dim $DIM, epochs $EPOCH, lr $LR, buckets $BUCKET," \
     "$THREADS threads; mean of $REPS training runs; fastText: character unigrams + -wordNgrams 2; Magpie: CJK character unigrams + bigrams + punctuation."
echo
echo "| task | engine | P@1 | train_s | peak_rss_mb | magpie_fit_s |"
echo "|---|---|---:|---:|---:|---:|"
SUMMARY=""
for task in $TASKS; do
    dir=$OUT/$task-seed$SEED
    mkdir -p "$dir"
    if [ ! -s "$dir/test.tsv" ]; then
        echo "textclf.sh: writing the $task split to $dir" >&2
        "$BENCH" split "$DATA" "$dir" "$SEED" "$task" >&2
    fi
    : >"$dir/ft.runs"
    : >"$dir/mp.runs"
    for ((rep = 0; rep < REPS; rep++)); do
        rs=$((SEED + rep))
        echo "textclf.sh: $task: fastText (training seed $rs)" >&2
        /usr/bin/time -v -o "$dir/ft.time" "$FASTTEXT" supervised -input "$dir/train.ft" -output "$dir/ft_model" \
            -wordNgrams 2 -epoch "$EPOCH" -thread "$THREADS" -dim "$DIM" -lr "$LR" -bucket "$BUCKET" -seed "$rs" \
            -verbose 0 >"$dir/ft.log" 2>&1
        "$FASTTEXT" test "$dir/ft_model.bin" "$dir/test.ft" >>"$dir/ft.log" 2>&1
        "$FASTTEXT" predict "$dir/ft_model.bin" "$dir/test.ft" >"$dir/ft.pred"
        p1=$(cut -d' ' -f1 "$dir/test.ft" | paste -d' ' - "$dir/ft.pred" |
             awk '{n++; if ($1 == $2) r++} END {printf "%.4f", r / n}')
        echo "$p1 $(wall_s "$dir/ft.time") $(rss_mb "$dir/ft.time") 0" >>"$dir/ft.runs"
        rm -f "$dir/ft_model.bin" "$dir/ft_model.vec"

        echo "textclf.sh: $task: Magpie (training seed $rs)" >&2
        /usr/bin/time -v -o "$dir/mp.time" "$BENCH" train "$dir/train.tsv" "$dir/test.tsv" "$DIM" "$EPOCH" "$LR" \
            "$THREADS" "$BUCKET" 0 "$rs" 1 >"$dir/mp.log" 2>&1
        p1=$(sed -n 's/.*p_at_1=\([0-9.]*\).*/\1/p' "$dir/mp.log")
        fit=$(sed -n 's/.*train_s=\([0-9.]*\).*/\1/p' "$dir/mp.log")
        echo "$p1 $(wall_s "$dir/mp.time") $(rss_mb "$dir/mp.time") $fit" >>"$dir/mp.runs"
    done
    # Means over the REPS runs (peak RSS: the largest).
    read -r ft_p1 ft_s ft_mb _ < <(awk '{p+=$1; s+=$2; if ($3>m) m=$3; n++} END {printf "%.4f %.2f %d 0\n", p/n, s/n, m}' "$dir/ft.runs")
    read -r mp_p1 mp_s mp_mb mp_fit < <(awk '{p+=$1; s+=$2; if ($3>m) m=$3; f+=$4; n++} END {printf "%.4f %.2f %d %.2f\n", p/n, s/n, m, f/n}' "$dir/mp.runs")
    echo "textclf.sh: $task: P@1 per run: fastText $(cut -d' ' -f1 "$dir/ft.runs" | tr '\n' ' '); Magpie $(cut -d' ' -f1 "$dir/mp.runs" | tr '\n' ' ')" >&2

    echo "| $task | fastText | $ft_p1 | $ft_s | $ft_mb | |"
    echo "| $task | Magpie | $mp_p1 | $mp_s | $mp_mb | $mp_fit |"
    SUMMARY+=$(awk -v t="$task" -v a="$mp_p1" -v b="$ft_p1" -v c="$mp_s" -v d="$ft_s" -v e="$mp_mb" -v f="$ft_mb" \
        'BEGIN {printf "| %s | %+.4f | %.3f | %.3f | %s |", t, a - b, c / d, e / f,
                (a >= b && c <= d && e <= f) ? "yes" : "no"}')
    SUMMARY+=$'\n'
done
echo
echo "Ratios Magpie / fastText (goal: P@1 difference >= 0, time and memory ratios <= 1):"
echo
echo "| task | P@1 Magpie - fastText | train_s ratio | peak_rss ratio | goal met |"
echo "|---|---:|---:|---:|---|"
printf '%s' "$SUMMARY"
