#!/usr/bin/env bash
# bench/quality.sh: Magpie's models beside published rows, as markdown tables on stdout.
#
#   1. MovieLens-100K, Microsoft Recommenders protocol: per-user stratified 75/25 random split, top-10, seen items
#      excluded, seeds 1..5, mean ± sample std of MAP@10, nDCG@10, P@10, R@10, beside BiVAE (the best published
#      row of the Recommenders benchmark) and Cornac BPR; rows that beat BiVAE on all four are marked.
#   2. Beauty, S3-Rec protocol: leave-last-one-out, full ranking, history items scored 0 (as the S3-Rec code),
#      HR and NDCG at 5, 10, 20, beside PopRec, SASRec and S3-Rec as published.
#   3. Explicit ratings: 5-fold cross-validation on u.data (events dealt into folds by a seeded permutation, as
#      Surprise's KFold), RMSE and MAE of mf and of pop's damped item mean, beside Surprise's SVD and SVD++.
#
# Every model gets up to three settings, each its own row: its defaults (what a user who passes no parameter gets),
# the bench's setting below (when it has one), and what `magpie tune` finds on the validation part of that dataset's
# split (TUNE_TRIALS trials, seed 1; the test part is never looked at while tuning). Models not in the registry
# (`magpie eval --help`) are skipped. On MovieLens every model is fitted on the training part only. On Beauty each
# setting gets a row per fit: on the training part with the validation part for early stopping, and refitted on
# training + validation (the validation item is history at test time in that protocol).
#
# Usage: bench/quality.sh                  (BUILD=dir picks the build, default build)
#   MODELS="pop ease"   models to run (default: all of pop itemknn als bpr ease seqknn hybrid mf that are registered)
#   SETTINGS="defaults bench tuned"   which rows per model (bench rows only where PARAMS_<model> is set)
#   SECTIONS="ml beauty ratings"   which tables
#   SEEDS="1 2 3 4 5"   seeds of the MovieLens split;  THREADS=2
#   BEAUTY_FITS="train train+valid"  Beauty rows per setting: fitted on train (validation for early stopping) and/or
#                       refitted on train+valid (`magpie eval --fit-on`)
#   PARAMS_<model>="k=v,..."         the bench's setting of a model (all datasets)
#   RATING_PARAMS_<model>="k=v,..."  the bench's setting in the explicit-ratings table
#   TUNE_TRIALS=N       trials of `magpie tune` per model and dataset for the tuned rows (default 20; 0: no tuned rows)
#   FRESH=1             re-import the datasets
# Needs ../shared/data (or MAGPIE_SHARED_DATA). Work files and raw outputs go to bench/out/quality/.
set -uo pipefail
cd "$(dirname "$0")/.."

# ---- parameters per model: the model owners' best settings (one setting for every dataset) ----------------------
: "${PARAMS_pop=}"
: "${PARAMS_itemknn=}"
: "${PARAMS_als=}"
: "${PARAMS_bpr=epochs=300,learning_rate=0.02,regularization=0.04,sampling=adaptive,candidates=8}"
: "${PARAMS_ease=}"
: "${PARAMS_mf=}"
: "${RATING_PARAMS_mf=}"
: "${RATING_PARAMS_pop=}"
# ---------------------------------------------------------------------------------------------------------------------

BUILD=${BUILD:-build}
MAGPIE=${MAGPIE:-$PWD/$BUILD/magpie}
DATA=${MAGPIE_SHARED_DATA:-../shared/data}
OUT=bench/out/quality
SEEDS=${SEEDS:-1 2 3 4 5}
THREADS=${THREADS:-2}
SECTIONS=${SECTIONS:-ml beauty ratings}
BEAUTY_FITS=${BEAUTY_FITS:-train train+valid}
TUNE_TRIALS=${TUNE_TRIALS:-20}
SETTINGS=${SETTINGS:-defaults bench tuned}
mkdir -p "$OUT"
[ -x "$MAGPIE" ] || { echo "quality: $MAGPIE not built (run make)" >&2; exit 1; }
[ -d "$DATA/ml-100k" ] && [ -d "$DATA/amazon-s3rec" ] || { echo "quality: datasets not found under $DATA" >&2; exit 1; }

registered=$("$MAGPIE" eval --help | awk '/^models:/ {m = 1; next} m && /^  [a-z]/ {print $1} m && /^$/ {m = 0}')
is_registered() { grep -qx "$1" <<< "$registered"; }
models=()
for m in ${MODELS:-pop itemknn als bpr ease seqknn hybrid mf}; do
    if is_registered "$m"; then models+=("$m"); else echo "quality: skipping $m (not in the registry)" >&2; fi
done

params_of() { local v="PARAMS_$1"; printf '%s' "${!v-}"; }
rating_params_of() { local v="RATING_PARAMS_$1"; printf '%s' "${!v-}"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
# The first error line of a failed run, for the table.
why() { grep -m1 'magpie' "$1" | sed 's/^magpie [a-z]*: //; s/|/\\|/g' | cut -c1-120; }

import_once() { # import_once DB preset PATH
    if [ "${FRESH:-0}" = 1 ] || [ ! -s "$1" ]; then
        rm -f "$1" "$1-wal" "$1-shm"
        "$MAGPIE" import --preset "$2" "$3" --db "$1" --quiet || { echo "quality: importing $3 failed" >&2; exit 1; }
    fi
}
ML="$OUT/ml100k.db"
BEAUTY="$OUT/beauty.db"
import_once "$ML" movielens "$DATA/ml-100k"
import_once "$BEAUTY" s3rec "$DATA/amazon-s3rec"

# What `magpie tune` finds on the validation part of `db`, from the model's defaults (empty when tuning fails).
tuned_params() { # tuned_params model db label tune-args...
    local m=$1 db=$2 label=$3
    shift 3
    local f="$OUT/tune-$label-$m"
    if "$MAGPIE" tune --db "$db" --model "$m" --trials "$TUNE_TRIALS" --seed 1 --threads "$THREADS" --quiet "$@" \
        > "$f.md" 2> "$f.err"; then
        sed -n 's/^best params: //p' "$f.md"
    else
        echo "quality: tuning $m on $label failed: $(why "$f.err")" >&2
        return 1
    fi
}
# The settings of a model on one dataset, a line each: "label<TAB>params" (params empty for the defaults).
settings_of() { # settings_of model bench-params db label tune-args...
    local m=$1 bench=$2 db=$3 label=$4
    shift 4
    local s t
    for s in $SETTINGS; do
        case $s in
        defaults) printf 'defaults\t\n' ;;
        bench) [ -n "$bench" ] && printf 'bench\t%s\n' "$bench" ;;
        tuned) if [ "$TUNE_TRIALS" -gt 0 ] && t=$(tuned_params "$m" "$db" "$label" "$@"); then
                   printf 'tuned\t%s\n' "$t"
               fi ;;
        esac
    done
    return 0
}
# "defaults" for a defaults row, else "setting: params".
setting_label() { if [ -z "$2" ]; then printf 'defaults'; else printf '%s: %s' "$1" "$2"; fi; }

# Mean ± sample standard deviation of each column of whitespace-separated numbers on stdin, "%.4f ± %.4f" each,
# joined by " | ".
mean_std() {
    awk '{for (i = 1; i <= NF; i++) {s[i] += $i; ss[i] += $i * $i}; n = NF; c++}
        END {for (i = 1; i <= n; i++) {m = s[i] / c; v = c > 1 ? (ss[i] - c * m * m) / (c - 1) : 0;
             printf "%s%.4f ± %.4f", (i > 1 ? " | " : ""), m, (v > 0 ? sqrt(v) : 0)}}'
}
# "k HR P R NDCG MAP MRR" for each k of the overall rows of an eval table.
overall_rows() { awk -F'|' 'NF >= 12 && $2 ~ /overall/ && $3 ~ /[0-9]/ {gsub(/ /, ""); print $3, $4, $5, $6, $7, $8, $9}'; }
# "RMSE MAE" of the overall row of the rating table.
overall_rating() { awk -F'|' 'NF == 8 && $2 ~ /overall/ {gsub(/ /, ""); print $6, $7}'; }

total_start=$(now)

# ---- 1. MovieLens-100K -------------------------------------------------------------------------------------------
if [[ " $SECTIONS " == *" ml "* ]]; then
    echo "## MovieLens-100K, Microsoft Recommenders protocol (75/25 stratified per user, top-10, seen excluded), seeds ${SEEDS// /,}"
    echo
    echo "| model | params | MAP@10 | nDCG@10 | P@10 | R@10 | beats BiVAE on all four | time (s) |"
    echo "|---|---|---:|---:|---:|---:|---|---:|"
    echo "| BiVAE (best published row, Recommenders benchmark) | | 0.1461 | 0.4751 | 0.4118 | 0.2191 | | |"
    echo "| Cornac BPR (Recommenders benchmark) | | | 0.4420 | | | | |"
    for m in "${models[@]}"; do
      while IFS=$'\t' read -r setting p; do
        t0=$(now)
        rows="$OUT/ml-$m-$setting.rows"
        : > "$rows"
        failed=""
        for seed in $SEEDS; do
            f="$OUT/ml-$m-$setting-seed$seed"
            if "$MAGPIE" eval --db "$ML" --model "$m" ${p:+--param "$p"} --protocol ratio --ratio 0.75 --seed "$seed" \
                --k 10 --threads "$THREADS" --quiet > "$f.md" 2> "$f.err"; then
                overall_rows < "$f.md" | awk '$1 == 10 {print $6, $5, $3, $4}' >> "$rows" # MAP NDCG P R
            else
                failed=$(why "$f.err")
                break
            fi
        done
        if [ -n "$failed" ] || [ ! -s "$rows" ]; then
            echo "| Magpie $m | $(setting_label "$setting" "$p") | failed: ${failed:-no output} | | | | | $(elapsed "$t0") |"
            continue
        fi
        beats=$(awk '{m += $1; n += $2; pr += $3; r += $4; c++}
            END {print (m / c > 0.1461 && n / c > 0.4751 && pr / c > 0.4118 && r / c > 0.2191) ? "**yes**" : "no"}' "$rows")
        echo "| Magpie $m | $(setting_label "$setting" "$p") | $(mean_std < "$rows") | $beats | $(elapsed "$t0") |"
      done < <(settings_of "$m" "$(params_of "$m")" "$ML" ml --protocol ratio --ratio 0.75)
    done
    echo
fi

# ---- 2. Beauty -----------------------------------------------------------------------------------------------------
if [[ " $SECTIONS " == *" beauty "* ]]; then
    echo "## Beauty, S3-Rec protocol (leave-last-one-out, full ranking, history scored 0)"
    echo
    echo "| model | params | HR@5 | NDCG@5 | HR@10 | NDCG@10 | HR@20 | NDCG@20 | beats SASRec & S3-Rec NDCG@10 | time (s) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
    echo "| PopRec (published; popularity counted over whole sequences) | | 0.0080 | 0.0044 | 0.0152 | 0.0068 | 0.0217 | 0.0084 | | |"
    echo "| SASRec (published, S3-Rec paper) | | 0.0387 | 0.0249 | 0.0605 | 0.0318 | 0.0902 | 0.0394 | | |"
    echo "| S3-Rec (published) | | 0.0387 | 0.0244 | 0.0647 | 0.0327 | 0.0994 | 0.0414 | | |"
    for m in "${models[@]}"; do
      while IFS=$'\t' read -r setting p; do
        for fit in $BEAUTY_FITS; do
          t0=$(now)
          f="$OUT/beauty-$m-$setting-$fit"
          if "$MAGPIE" eval --db "$BEAUTY" --model "$m" ${p:+--param "$p"} --protocol loo --history zero --k 5,10,20 \
              --fit-on "$fit" --threads "$THREADS" --quiet > "$f.md" 2> "$f.err"; then
              overall_rows < "$f.md" | awk -v label="Magpie $m (fit on $fit)" -v p="$(setting_label "$setting" "$p")" \
                  -v t="$(elapsed "$t0")" '
                  {hr[NR] = $2; nd[NR] = $5}
                  END {all = hr[1] > 0.0387 && nd[1] > 0.0249 && hr[2] > 0.0647 && nd[2] > 0.0327 && hr[3] > 0.0994 &&
                             nd[3] > 0.0414
                       b = nd[2] > 0.0327 ? (all ? "**yes** (all six)" : "**yes**") : "no"
                       printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, p, hr[1], nd[1], hr[2], nd[2],
                              hr[3], nd[3], b, t}'
          else
              echo "| Magpie $m (fit on $fit) | $(setting_label "$setting" "$p") | failed: $(why "$f.err") | | | | | | | $(elapsed "$t0") |"
          fi
        done
      done < <(settings_of "$m" "$(params_of "$m")" "$BEAUTY" beauty --protocol loo --history zero)
    done
    echo
    echo "fit on train: the model sees the training part and gets the validation part for early stopping / selection;"
    echo "fit on train+valid: refit on training + validation parts (the validation item is the user's history at"
    echo "test time in this protocol, so this is not a leak), without early stopping."
    echo
fi

# ---- 3. Explicit ratings -----------------------------------------------------------------------------------------
if [[ " $SECTIONS " == *" ratings "* ]]; then
    echo "## Explicit ratings, MovieLens-100K u.data, 5-fold cross-validation (kfold protocol, seed 1)"
    echo
    echo "| model | params | RMSE | MAE | time (s) |"
    echo "|---|---|---:|---:|---:|"
    echo "| Surprise SVD (published) | | 0.934 | 0.737 | |"
    echo "| Surprise SVD++ (published) | | 0.919 | 0.721 | |"
    for m in mf pop; do
        is_registered "$m" || continue
        [[ " ${models[*]} " == *" $m "* ]] || continue
      while IFS=$'\t' read -r setting p; do
        t0=$(now)
        rows="$OUT/ratings-$m-$setting.rows"
        : > "$rows"
        failed=""
        for fold in 0 1 2 3 4; do
            f="$OUT/ratings-$m-$setting-fold$fold"
            if "$MAGPIE" eval --db "$ML" --model "$m" ${p:+--param "$p"} --protocol kfold --folds 5 --fold "$fold" \
                --seed 1 --k 10 --threads "$THREADS" --quiet > "$f.md" 2> "$f.err"; then
                overall_rating < "$f.md" >> "$rows"
            else
                failed=$(why "$f.err")
                break
            fi
        done
        label="Magpie $m"
        [ "$m" = pop ] && label="Magpie pop (damped item mean)"
        if [ -n "$failed" ] || [ ! -s "$rows" ] || grep -q 'n/a' "$rows"; then
            echo "| $label | $(setting_label "$setting" "$p") | failed: ${failed:-no rating predictions} | | $(elapsed "$t0") |"
        else
            echo "| $label | $(setting_label "$setting" "$p") | $(mean_std < "$rows") | $(elapsed "$t0") |"
        fi
      done < <(settings_of "$m" "$(rating_params_of "$m")" "$ML" ratings --protocol kfold --folds 5 --fold 0 --metric rmse)
    done
    echo
fi

echo "total: $(elapsed "$total_start") s on $(nproc) cores, $THREADS threads; raw outputs in $OUT/"
