#!/usr/bin/env bash
# The Python package (clients/python/magpie) against this build's libmagpie.so: its pytest suite
# (clients/python/tests: ctypes layouts against the headers, the registry, implicit-style use, DataFrames, errors,
# progress, ALS fitted from Python == `magpie train`, model files both ways, evaluate == `magpie eval`, the
# MovieLens example when ../shared/data has it, `pip install`). Builds nothing: the library is the one beside
# $MAGPIE. In an ASan build the library needs the ASan runtime loaded first, so python runs with it preloaded
# (leak detection off: the interpreter itself does not free everything at exit).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
BUILD_DIR=$(dirname "$MAGPIE")
LIB=$BUILD_DIR/libmagpie.so
[ -f "$LIB" ] || fail "no $LIB (build with make BUILD=$(basename "$BUILD_DIR"))"
"$PY" -c 'import numpy, scipy, pandas, pytest' 2>/dev/null ||
    fail "/usr/bin/python3 lacks numpy/scipy/pandas/pytest: run ./scripts/deps.sh test"
export MAGPIE MAGPIE_LIB=$LIB PYTHONDONTWRITEBYTECODE=1
preload=""
asan=$(ldd "$LIB" | awk '/libasan\.so/ {print $3; exit}')
if [ -n "$asan" ]; then
    preload=$asan
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 MAGPIE_ASAN=1
    echo "ASan build: python runs with LD_PRELOAD=$preload"
fi
cd "$ROOT/clients/python"
status=0
LD_PRELOAD=$preload "$PY" -m pytest -q -rs -p no:cacheprovider -p no:hypothesispytest tests >"$tmp/pytest.log" 2>&1 ||
    status=$?
cat "$tmp/pytest.log"
[ "$status" -eq 0 ] || fail "pytest (exit $status)"
grep -qE '^[0-9]+ passed' "$tmp/pytest.log" || fail "pytest printed no pass count"
if grep -qE 'runtime error|AddressSanitizer' "$tmp/pytest.log"; then fail "sanitizer report"; fi
echo "ok"
