# tests/cli/lib.sh: the prologue the CLI test scripts share. Source it first thing:
#     . "$(dirname "$0")/lib.sh"
# It turns on `set -euo pipefail` and sets
#   ROOT    the repository
#   MAGPIE  the binary under test, made absolute (default $ROOT/build/magpie; the caller's MAGPIE wins)
#   tmp     a fresh directory, removed on exit (kept when KEEP_TMP is set), and the current directory
#   pid     empty; a script that starts `magpie serve` in the background stores its pid here, and the exit trap
#           kills it (set pid="" after stopping the server yourself)
# and defines fail, expect_fail, expect_fail_code, wait_ready and server_url (below).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAGPIE=${MAGPIE:-$ROOT/build/magpie}
case $MAGPIE in /*) ;; *) MAGPIE="$PWD/$MAGPIE" ;; esac
tmp=$(mktemp -d)
pid=""
mp_cleanup() {
    if [ -n "${pid:-}" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap mp_cleanup EXIT
if [ -n "${KEEP_TMP:-}" ]; then trap - EXIT; echo "keeping $tmp" >&2; fi
cd "$tmp"

# fail MESSAGE...: prints FAIL (and the tail of a server's serve.err, when there is one) and exits 1.
fail() {
    echo "FAIL: $*" >&2
    if [ -f serve.err ]; then tail -20 serve.err >&2; fi
    exit 1
}

# expect_fail "needle" cmd...: the command must fail and say "needle" on stderr (out.txt / err.txt keep its output).
expect_fail() {
    local needle=$1; shift
    if "$@" >out.txt 2>err.txt; then fail "expected failure: $*"; fi
    grep -qF -- "$needle" err.txt || { cat err.txt >&2; fail "expected \"$needle\" from: $*"; }
}

# expect_fail_code CODE "needle" cmd...: the command must exit with CODE and say "needle" on stderr.
expect_fail_code() {
    local code=$1 needle=$2; shift 2
    local rc=0
    "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" = "$code" ] || { cat err.txt >&2; fail "expected exit $code, got $rc: $*"; }
    grep -qF -- "$needle" err.txt || { cat err.txt >&2; fail "expected \"$needle\" from: $*"; }
}

# wait_ready [LOG [TENTHS]]: waits until the server writing LOG (default serve.err) says "ready in", at most
# TENTHS tenths of a second (default 100); fails if it never does, or if the server $pid exits first.
wait_ready() {
    local log=${1:-serve.err} n=${2:-100}
    for _ in $(seq 1 "$n"); do
        grep -q "ready in" "$log" 2>/dev/null && return 0
        if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then fail "magpie serve exited at start"; fi
        sleep 0.1
    done
    grep -q "ready in" "$log" || fail "server not ready"
}

# server_url [LOG]: the http://host:port the server writing LOG (default serve.err) listens on (port 0 picks a free
# one; the server prints it).
server_url() {
    sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "${1:-serve.err}" | head -1
}
