#!/usr/bin/env bash
# Runs the unit tests and every tests/cli/*.sh script against $BUILD, then prints one closing line
# "N passed, N failed" counting unit tests and scripts together. CLI_SCRIPTS="name ..." runs only those scripts
# (scripts/test.sh uses it for the plain-C kernels build: the scripts whose results depend on the kernels).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export MAGPIE="$PWD/$BUILD/magpie"
passed=0
failed=0
failed_names=()

out=$(mktemp)
"$BUILD/magpie-tests" "$@" | tee "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | awk '{print $1}')))
    failed=$((failed + $(echo "$line" | awk '{print $3}')))
else
    echo "FAIL unit test runner crashed"
    failed=$((failed + 1))
fi
rm -f "$out"

if [ $# -eq 0 ]; then
    for script in tests/cli/*.sh; do
        [ -e "$script" ] || continue
        name=$(basename "$script" .sh)
        [ "$name" = lib ] && continue # the shared prologue the scripts source, not a test
        if [ -n "${CLI_SCRIPTS:-}" ] && [[ " $CLI_SCRIPTS " != *" $name "* ]]; then continue; fi
        log=$(mktemp)
        start=$(date +%s)
        if bash "$script" >"$log" 2>&1; then
            passed=$((passed + 1))
            echo "ok   cli/$name ($(( $(date +%s) - start )) s)"
        else
            failed=$((failed + 1))
            failed_names+=("cli/$name")
            echo "FAIL cli/$name ($(( $(date +%s) - start )) s)"
            sed 's/^/     /' "$log" | tail -40
        fi
        rm -f "$log"
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
