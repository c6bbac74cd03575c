#!/usr/bin/env bash
# The evaluation harness reproduces published popularity figures on the real Beauty data (S3-Rec files, full
# ranking, history scored 0) to the fourth decimal:
#   leaky (popularity over whole sequences, as published): HR@10 0.0152, NDCG@10 0.0068 (+ @5, @20)
#   honest (training part only, the default):             HR@10 0.0115, NDCG@10 0.0055
# Skipped (exit 0 with a note) when ../shared/data is not beside the repository.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-$ROOT/build/magpie}
DATA=${MAGPIE_SHARED_DATA:-$ROOT/../shared/data}
if [ ! -f "$DATA/amazon-s3rec/Beauty.txt" ]; then
    echo "skipped: $DATA/amazon-s3rec/Beauty.txt not found"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$MAGPIE" import --preset s3rec "$DATA/amazon-s3rec" --db "$tmp/b.db" --quiet
check() { # $1 = --fit-on value, $2 = expected "HR@5 NDCG@5 HR@10 NDCG@10 HR@20 NDCG@20"
    local got
    got=$("$MAGPIE" eval --db "$tmp/b.db" --model pop --protocol loo --history zero --k 5,10,20 --fit-on "$1" \
        --quiet | awk -F'|' 'NF >= 12 && $2 ~ /overall/ && $3 ~ /[0-9]/ {gsub(/ /,""); printf "%s %s ", $4, $7}')
    got=${got% }
    if [ "$got" != "$2" ]; then
        echo "FAIL: --fit-on $1: expected \"$2\", got \"$got\"" >&2
        exit 1
    fi
    echo "ok: --fit-on $1: $got"
}
check all "0.0080 0.0044 0.0152 0.0068 0.0217 0.0084"
check train "0.0075 0.0041 0.0115 0.0055 0.0203 0.0076"
