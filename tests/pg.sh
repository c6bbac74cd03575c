#!/usr/bin/env bash
# tests/pg.sh: a throwaway PostgreSQL server for the tests and benches.
#
#   eval "$(tests/pg.sh start)"      # sets MAGPIE_TEST_PG (a postgres:// URI) and MAGPIE_TEST_PG_DIR
#   ...
#   tests/pg.sh stop "$MAGPIE_TEST_PG_DIR"
#
# `start` runs initdb in a fresh temporary directory and starts the server there: listening on 127.0.0.1 only, on a
# free port, with its unix socket in that directory (the URI uses the socket), trust authentication for the database
# superuser "magpie", and an empty database "magpie". PostgreSQL refuses to run as root, so as root the server runs
# as the system user magpie-test (created here with useradd when missing); otherwise as the calling user.
# `stop` stops it (fast shutdown) and removes the directory. Callers stop it from an EXIT trap, so it goes also on
# failure.
#
# The cluster runs with fsync=off: it starts faster and writes less, and the tests do not crash the server or the
# machine, only Magpie's own processes (tests/cli/kill9.sh kills `magpie import`, never postgres). A commit that the
# server acknowledged is in the server process's hands whatever fsync says, so a kill -9 of the client cannot lose it;
# fsync only matters when the server's machine goes down, which no test does.
set -euo pipefail
PGBIN=${PGBIN:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
[ -x "$PGBIN/initdb" ] || PGBIN=/usr/lib/postgresql/15/bin

as_owner() { # runs "$@" as the cluster's owner
    if [ "$(id -u)" = 0 ]; then runuser -u magpie-test -- "$@"; else "$@"; fi
}

free_port() { # a TCP port on 127.0.0.1 nobody listens on now (the server's bind below is the real test)
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    echo "pg.sh: no free port found" >&2
    return 1
}

start() {
    [ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found in $PGBIN (install postgresql)" >&2; exit 1; }
    if [ "$(id -u)" = 0 ] && ! id magpie-test >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin magpie-test
    fi
    local dir
    dir=$(mktemp -d /tmp/magpie-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown magpie-test "$dir"
    as_owner "$PGBIN/initdb" -D "$dir/data" -U magpie -A trust -E UTF8 --locale=C --no-sync --no-instructions \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    local port ok=0
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off \
                -c full_page_writes=off -c max_connections=40 -c shared_buffers=64MB" start >/dev/null 2>&1; then
            ok=1
            break
        fi
    done
    if [ $ok = 0 ]; then
        tail -20 "$dir/server.log" >&2 || true
        rm -rf "$dir"
        echo "pg.sh: the test PostgreSQL did not start" >&2
        exit 1
    fi
    "$PGBIN/psql" -X -q -h "$dir" -p "$port" -U magpie -d postgres -c "CREATE DATABASE magpie" >/dev/null
    echo "export MAGPIE_TEST_PG='postgresql://magpie@/magpie?host=$dir&port=$port'"
    echo "export MAGPIE_TEST_PG_DIR='$dir'"
}

stop() {
    local dir=${1:-}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    case $dir in /tmp/magpie-pg.*) ;; *) echo "pg.sh: refusing to remove $dir" >&2; exit 1 ;; esac
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 -s stop >/dev/null 2>&1 ||
            as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -s stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: tests/pg.sh start | stop DIR" >&2; exit 2 ;;
esac
