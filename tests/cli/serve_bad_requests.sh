#!/usr/bin/env bash
# `magpie serve` against broken and hostile requests (tests/serve/bad_requests.py): each gets the right 4xx and
# the JSON error body, /healthz answers after each, hostile ids are plain ids, slow clients are cut off while
# others are served, the store is intact afterwards and SIGTERM ends the server with status 0. In an ASan build
# its stderr must hold no LeakSanitizer or UBSan ("runtime error") report.
set -u
MAGPIE=${MAGPIE:-build/magpie}
case "$MAGPIE" in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$MAGPIE" gen-demo --out "$dir/shop" --users 200 --items 300 --seed 5 --quiet || { echo "FAIL: gen-demo"; exit 1; }
"$MAGPIE" import items "$dir/shop/items.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import items"; exit 1; }
"$MAGPIE" import events "$dir/shop/events.jsonl" --db "$dir/store.db" --quiet || { echo "FAIL: import events"; exit 1; }

sanitized=no
if [ -n "${SANITIZER:-}" ] || ldd "$MAGPIE" 2>/dev/null | grep -q 'libasan\|libubsan' ||
    nm "$MAGPIE" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
    sanitized=yes
    # leaks are reported at exit; make a report fail the exit status too
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
fi
echo "serve_bad_requests: sanitizer build: $sanitized"

python3 "$here/serve/bad_requests.py" --magpie "$MAGPIE" --db "$dir/store.db"
status=$?
# the python side already scans stderr; say it again here so the report names the build
if [ "$sanitized" = yes ] && grep -q 'LeakSanitizer\|runtime error' "$dir/store.db.serve.log" 2>/dev/null; then
    echo "FAIL: sanitizer report in the server's stderr:"
    grep -A20 'LeakSanitizer\|runtime error' "$dir/store.db.serve.log" | head -60
    status=1
fi
exit $status
