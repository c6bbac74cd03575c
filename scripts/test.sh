#!/usr/bin/env bash
# Builds Magpie and runs the whole test suite three times: a normal optimised build, under AddressSanitizer +
# UndefinedBehaviorSanitizer, and with the plain-C kernels instead of OpenBLAS (BLAS=none), then runs the
# libFuzzer targets for FUZZ_SECONDS each (default 30 here; tests/fuzz/run.sh alone defaults to 60). Prints each
# phase's wall time and ends with one line "N passed, N failed" totalling all runs.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh test || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }
echo "== dependencies: $SECONDS s =="

# One throwaway PostgreSQL for the whole run (all three builds): the store tests and tests/cli/kill9.sh and
# pg_store.sh run against it as well as against SQLite. MAGPIE_TEST_PG_REQUIRED makes its absence a failure of those
# tests rather than "not run". Stopped on exit, also on failure or Ctrl-C.
export MAGPIE_TEST_PG_REQUIRED=1
pg_dir=""
trap '[ -n "$pg_dir" ] && ./tests/pg.sh stop "$pg_dir"' EXIT
t0=$SECONDS
if pg_env=$(./tests/pg.sh start); then
    eval "$pg_env"
    pg_dir=$MAGPIE_TEST_PG_DIR
    echo "== PostgreSQL for the tests: $MAGPIE_TEST_PG ($((SECONDS - t0)) s) =="
else
    echo "== PostgreSQL did not start: every PostgreSQL test will FAIL =="
fi

total_pass=0
total_fail=0
run_suite() { # $1 = label, rest = make variables
    local label=$1; shift
    local log t0=$SECONDS
    log=$(mktemp)
    echo "== $label =="
    if ! make -j2 "$@" all >"$log" 2>&1; then
        cat "$log"
        echo "build failed ($label)"
        total_fail=$((total_fail + 1))
        rm -f "$log"
        return
    fi
    make -s "$@" test 2>&1 | tee "$log"
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -n "$line" ]; then
        total_pass=$((total_pass + $(echo "$line" | awk '{print $1}')))
        total_fail=$((total_fail + $(echo "$line" | awk '{print $3}')))
    else
        total_fail=$((total_fail + 1))
    fi
    rm -f "$log"
    echo "== $label: $((SECONDS - t0)) s =="
}

run_suite "release build" BUILD=build
run_suite "ASan + UBSan build" BUILD=build-asan SANITIZER=address,undefined
# libFuzzer targets (JSON request decoder, model-file loader) under ASan + UBSan, FUZZ_SECONDS each (default 30
# here). They run in the background beside the plain-C kernels suite: a fuzzer's run is bound by wall time, and the
# suite's scripts leave a core idle while they wait on servers.
fuzz_log=$(mktemp)
t0=$SECONDS
FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_JOBS=1 ./tests/fuzz/run.sh >"$fuzz_log" 2>&1 &
fuzz_pid=$!
# The plain-C kernels build runs every unit test and the CLI scripts that train, evaluate or embed (their results
# depend on the kernels); the server's transport, crash and auth scripts are covered by the two builds above.
CLI_SCRIPTS="train_recommend eval tune hybrid published_baselines simulate ope textclf embed_import use_parity serve_search serve_realtime" \
    run_suite "plain-C kernels build (BLAS=none)" BUILD=build-noblas BLAS=none
echo "== fuzzing (libFuzzer, ASan + UBSan) =="
wait "$fuzz_pid"
grep -E '^(ok|FAIL) ' "$fuzz_log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$fuzz_log" | tail -1)
if [ -n "$line" ]; then
    total_pass=$((total_pass + $(echo "$line" | awk '{print $1}')))
    total_fail=$((total_fail + $(echo "$line" | awk '{print $3}')))
else
    tail -30 "$fuzz_log"
    total_fail=$((total_fail + 1))
fi
rm -f "$fuzz_log"
echo "== fuzzing: $((SECONDS - t0)) s =="
echo "== total (all builds): $SECONDS s =="
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
