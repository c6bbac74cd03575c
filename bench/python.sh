#!/usr/bin/env bash
# bench/python.sh: ALS fitted from Python (clients/python, ctypes over libmagpie.so) against `magpie train` on the
# same store, same parameters, same threads. Prints a markdown table: median seconds of REPEAT runs of each
# (interleaved), the Python / CLI ratio (the goal: within 5%, i.e. <= 1.05) for the fit alone and end to end
# (process start, store load, fit, save), and whether the two item-factor matrices are bit-identical.
#
# Usage: bench/python.sh   (BUILD=dir, default build)
# The fit row is the library's fit call alone on both sides: what `magpie train` logs ("fit X s", 2 decimals) and
# Model.fit_seconds (without the training-matrix build, which `magpie train` counts under load).
#   USERS=40000 ITEMS=8000 (demo shop size)  FACTORS=64 ITERS=15 THREADS=2 REPEAT=5
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
MAGPIE=$ROOT/$BUILD/magpie
LIB=$ROOT/$BUILD/libmagpie.so
USERS=${USERS:-40000} ITEMS=${ITEMS:-8000} FACTORS=${FACTORS:-64} ITERS=${ITERS:-15} THREADS=${THREADS:-2}
REPEAT=${REPEAT:-5}
[ -x "$MAGPIE" ] && [ -f "$LIB" ] || { echo "python bench: build first (make BUILD=$BUILD)" >&2; exit 1; }
/usr/bin/python3 -c 'import numpy, scipy, pandas' || { echo "python bench: needs python3-numpy/scipy/pandas" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log() { echo "python bench: $*" >&2; }

log "demo shop: $USERS users, $ITEMS items"
"$MAGPIE" gen-demo --out "$tmp/shop" --users "$USERS" --items "$ITEMS" --seed 42 --quiet
for k in items users events; do "$MAGPIE" import "$k" "$tmp/shop/$k.jsonl" --db "$tmp/shop.db" --quiet; done
params="factors=$FACTORS,iterations=$ITERS,seed=7"

cat >"$tmp/fit.py" <<'PY'
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import magpie
db, params, threads, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
kw = dict(kv.split("=") for kv in params.split(","))
ds = magpie.Dataset.from_store(db)
model = magpie.Model("als", **kw).fit(ds, show_progress=False, n_threads=threads)
model.save(out)
print(f"{model.fit_seconds:.4f} {time.perf_counter() - t0:.4f}")
PY

cli_fit=() cli_all=() py_fit=() py_all=()
for r in $(seq 1 "$REPEAT"); do
    t0=$(date +%s.%N)
    "$MAGPIE" train --db "$tmp/shop.db" --model als --param "$params" --threads "$THREADS" --out "$tmp/cli.mpm" \
        2>"$tmp/train.log"
    t1=$(date +%s.%N)
    cli_fit+=("$(sed -n 's/.*fit \([0-9.]*\) s$/\1/p' "$tmp/train.log" | tail -1)")
    cli_all+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
    read -r f a < <(MAGPIE_LIB=$LIB /usr/bin/python3 "$tmp/fit.py" "$ROOT/clients/python" "$tmp/shop.db" "$params" \
        "$THREADS" "$tmp/py.mpm")
    py_fit+=("$f") py_all+=("$a")
    log "run $r: cli fit ${cli_fit[-1]} s (total ${cli_all[-1]} s), python fit $f s (total $a s)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
cf=$(median "${cli_fit[@]}") ca=$(median "${cli_all[@]}") pf=$(median "${py_fit[@]}") pa=$(median "${py_all[@]}")
same=$(MAGPIE_LIB=$LIB /usr/bin/python3 -c "
import sys; sys.path.insert(0, '$ROOT/clients/python')
import magpie, numpy as np
a = magpie.load('$tmp/cli.mpm').item_factors; b = magpie.load('$tmp/py.mpm').item_factors
print('yes' if np.array_equal(a, b) else 'no (max difference %g)' % np.abs(a - b).max())")
echo "### ALS from Python vs \`magpie train\` ($USERS users x $ITEMS items demo shop, $params, $THREADS threads, median of $REPEAT)"
echo
echo "| | magpie train (s) | Python (s) | Python / CLI |"
echo "|---|---:|---:|---:|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
printf '| fit | %.3f | %.3f | %s |\n' "$cf" "$pf" "$(ratio "$pf" "$cf")"
printf '| end to end (start, load, fit, save) | %.3f | %.3f | %s |\n' "$ca" "$pa" "$(ratio "$pa" "$ca")"
echo
echo "item factors bit-identical: $same"
