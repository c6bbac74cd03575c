#!/usr/bin/env bash
# tests/fuzz/seeds.sh: writes the seed corpora of the fuzz targets (no binary blobs in the repository).
#
# usage: tests/fuzz/seeds.sh OUT_DIR
#   OUT_DIR/request/    sample write-request bodies (JSON arrays, wrappers, single records, JSON Lines, bad ones)
#   OUT_DIR/modelfile/  one small model file per registered model and variant, written by the seed generator
#   OUT_DIR/json.dict   a libFuzzer dictionary of JSON tokens and record field names
# env: SEEDGEN   the seed generator binary (tests/fuzz/seedgen.c; tests/fuzz/run.sh builds it as
#                build-fuzz/seedgen). Without it only the request seeds are written and the script fails.
set -euo pipefail

out=${1:?usage: tests/fuzz/seeds.sh OUT_DIR}
seedgen=${SEEDGEN:-build-fuzz/seedgen}
req="$out/request"
mf="$out/modelfile"
rm -rf "$req" "$mf"
mkdir -p "$req" "$mf"

n=0
seed() { # seed TEXT: one request body (printf format, so \n and \xNN work)
    n=$((n + 1))
    printf "$1" >"$req/$(printf 'body-%03d' "$n")"
}

# Events: every body shape, every field, every type.
seed '[{"user":"u1","item":"sku-9","type":"purchase","ts":1735689600,"value":5,"text":"great","session":"s1"}]'
seed '{"events":[{"user":"u1","item":"i1","type":"view","ts":"2025-01-01T10:00:00Z"},{"user":2,"item":3,"type":"click"}]}'
seed '{"user":"u1","item":"i1","type":"cart","ts":1735689600.5}'
seed '{"user":"u1","item":"i1","type":"fav"}\n\n{"user":"u2","item":"i2","type":"rating","value":4.5,"ts":"2025-01-01 10:00:00+02:00"}\r\n'
seed '[{"user":"u","item":"i","type":"dislike","ts":1},{"user":"u","item":"i","type":"return","ts":2},{"user":"u","item":"i","type":"review","text":"caf\\u00e9 \\ud83d\\ude00 \\"q\\"","ts":3}]'
seed '[{"user":"u","item":"i","type":"view","ts":"yesterday"},{"user":"","item":"i","type":"view"},{"item":"i","type":"buy"},17,null,[]]'
seed '[{"user":"u","item":"i","type":"view","value":1e999},{"user":"u","item":"i","type":"view","ts":99999999999999},{"user":"u","item":"i","type":"view","session":null,"text":null}]'
seed '{"user":"u","item":"i","type":"view","colour":"red"}'
seed '{"user":"u","item":"i","type":"view","user":"dup"}'
# Items.
seed '[{"id":"sku-1","title":"Serum","description":"30 ml","category":["Beauty","Skin Care"],"brand":"Acme","price":19.9,"attrs":{"size":"30ml","tags":["a",1,true,null,{"x":[]}]},"available":false}]'
seed '{"items":[{"id":7,"category":"Beauty > Hair","price":0},{"id":"x","category":null,"brand":12,"available":null,"attrs":null}]}'
seed '{"id":"sku-3","category":["A",3],"price":-1}\n{"id":"sku-4","title":"t\\tab\\n","price":"cheap"}\n'
# Users.
seed '[{"id":"u1","attrs":{"tier":"gold","age":33}},{"id":"u2"},{"id":"u3","attrs":[1]}]'
seed '{"users":[{"id":"u1"}]}'
seed '{"id":"u9","attrs":{"nested":{"deeper":{"deepest":[[[[1]]]]}}}}'
# Malformed and hostile.
seed '[{"user":"a","item":"b"'
seed '{"user":"a\xff","item":"b","type":"view"}'
seed '[\xc0\xaf, "\xed\xa0\x80", "\xf4\x90\x80\x80"]'
seed '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]'
seed '[-0.0e+5, 1E-400, 123456789012345678901234567890, -, 01, 1., .5, tru, nul]'
seed '{"events":{"user":"a"}}'
seed '{"events":[],"items":[]}'
seed '"\\u12" "\\ud800" "\\udc00x" "\\u0000"'
seed ' \t\r\n '
seed ''
seed '\xef\xbb\xbf{"id":"bom"}'

# The dictionary: JSON syntax, field names, event types, timestamps.
{
    for tok in '{' '}' '[' ']' ':' ',' '"' 'true' 'false' 'null' '\\u' '\\ud83d\\ude00' '\\"' '1e308' '-0' '0.5' \
        'user' 'item' 'type' 'ts' 'value' 'text' 'session' 'id' 'title' 'description' 'category' 'brand' 'price' \
        'attrs' 'available' 'events' 'items' 'users' 'view' 'click' 'cart' 'fav' 'purchase' 'review' 'rating' \
        'dislike' 'return' '2025-01-01T10:00:00Z' '+05:30' ' > ' '1735689600'; do
        printf '"%s"\n' "$(printf '%s' "$tok" | sed 's/\\/\\\\/g; s/"/\\"/g')"
    done
} >"$out/json.dict"

if [ ! -x "$seedgen" ]; then
    echo "seeds.sh: no seed generator at $seedgen (build it with tests/fuzz/run.sh, or set SEEDGEN)" >&2
    exit 1
fi
OMP_NUM_THREADS=1 "$seedgen" "$mf"
echo "seeds.sh: $(ls "$req" | wc -l) request bodies, $(ls "$mf" | wc -l) model files in $out"
