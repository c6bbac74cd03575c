#!/usr/bin/env bash
# bench/serve_load.sh: load benchmark of `magpie serve` against the bare HTTP stack under it.
#
#   1. a demo shop (magpie gen-demo: USERS x ITEMS, about EVENTS events), imported into a store;
#   2. ALS trained on it (FACTORS factors, ITERS sweeps);
#   3. bench/bare_http (libmicrohttpd answering a fixed 10-item JSON body, same threading mode) under wrk at 8 and
#      64 connections, DURATION s each, --latency;
#   4. `magpie serve --model` (HNSW index over the item vectors; waits for /readyz), the same wrk runs on
#      GET /v1/recommend/{random known user}, with the server's VmRSS sampled every second;
#   5. a mixed run (MIXED_DURATION s): one client posting event batches (tests/serve/mixed.py) + wrk on recommend
#      at 8 connections; then the store's event count is compared exactly with what the client got acknowledged;
#   6. SIGTERM: the server must exit 0. A results table against the goals.
# Everything goes to bench/out/serve/ (gitignored): data, store, model, wrk outputs, RSS samples, results.md/json.
#
#   BUILD=build bench/serve_load.sh                          # full size (about 15 minutes on 2 cores)
#   USERS=2000 ITEMS=20000 DURATION=5 bench/serve_load.sh    # small, for development
# Knobs: USERS (100000), ITEMS (1000000), EVENTS (5000000), FACTORS (64), ITERS (3), DURATION (60),
# MIXED_DURATION (= DURATION), CONNS ("8 64"), WRK_THREADS (2), THREADS (server and bare threads, 0: cores),
# WARMUP (10: seconds of each run left out of the RSS growth), REBUILD=1 (regenerate data, store and model even if
# a previous run left them), PREPARE_ONLY=1 (only make the data, store and model, for a later timed run),
# SERVE_ARGS (extra `magpie serve` flags, e.g. "--ann-ef-construction 100" to build the index faster).
# Time at full size on 2 busy cores (extrapolated from 1/5 size): data + store + model ~3 min (skipped when kept),
# server start with the HNSW index over 1M items ~5 min, wrk runs 5 x DURATION + 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
MAGPIE=${MAGPIE:-$ROOT/$BUILD/magpie}
BARE=${BARE:-$ROOT/$BUILD/bench/bare_http}
USERS=${USERS:-100000}
ITEMS=${ITEMS:-1000000}
EVENTS=${EVENTS:-5000000}
FACTORS=${FACTORS:-64}
ITERS=${ITERS:-3}
DURATION=${DURATION:-60}
MIXED_DURATION=${MIXED_DURATION:-$DURATION}
CONNS=${CONNS:-"8 64"}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-0}
WARMUP=${WARMUP:-10}
SERVE_ARGS=${SERVE_ARGS:-}
OUT=bench/out/serve
TAG=u$USERS-i$ITEMS-e$EVENTS-f$FACTORS-it$ITERS
WORK=$OUT/$TAG
DB=$WORK/store.db
MODEL=$WORK/als.model
mkdir -p "$WORK"
OUT_ABS=$ROOT/$OUT

T0=$(date +%s)
say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

[ -x "$MAGPIE" ] || die "$MAGPIE not built (make BUILD=$BUILD)"
[ -x "$BARE" ] || die "$BARE not built (make BUILD=$BUILD builds bench/*.c)"
command -v wrk >/dev/null || die "wrk not installed (apt-get install wrk)"
command -v python3 >/dev/null || die "python3 not installed"
"$MAGPIE" serve --help >/dev/null 2>&1 || die "$MAGPIE has no serve command"
[ "$WARMUP" -lt "$DURATION" ] || WARMUP=$((DURATION / 3))

# Processes this script started; stopped by their ids on exit.
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# ---- 1-2. data, store, model (kept between runs of the same size unless REBUILD=1) ----
if [ -n "${REBUILD:-}" ] || [ ! -s "$MODEL" ] || [ ! -s "$DB" ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK"
    # about 7 events per session from gen-demo: sessions per user for the wanted event count
    spu=$(awk -v e="$EVENTS" -v u="$USERS" 'BEGIN { s = e / u / 6.5; if (s < 1) s = 1; printf "%.2f", s }')
    say "gen-demo: $USERS users, $ITEMS items, ~$EVENTS events ($spu sessions per user)"
    "$MAGPIE" gen-demo --out "$WORK/shop" --users "$USERS" --items "$ITEMS" --format csv --sessions-per-user "$spu" \
        --max-events "$EVENTS" --seed 42 --quiet
    say "import items"
    "$MAGPIE" import items "$WORK/shop/items.jsonl" --db "$DB" --quiet
    say "import users"
    "$MAGPIE" import users "$WORK/shop/users.jsonl" --db "$DB" --quiet
    say "import events ($(($(wc -l <"$WORK/shop/events.csv") - 1)) lines)"
    "$MAGPIE" import events "$WORK/shop/events.csv" --db "$DB" --quiet
    rm -rf "$WORK/shop"
    say "train ALS: factors=$FACTORS iterations=$ITERS"
    t=$(date +%s)
    "$MAGPIE" train --db "$DB" --model als --param "factors=$FACTORS,iterations=$ITERS" --out "$MODEL" --quiet
    say "trained in $(($(date +%s) - t)) s"
else
    say "reusing $WORK (store and model of an earlier run; REBUILD=1 to regenerate)"
fi
if [ -n "${PREPARE_ONLY:-}" ]; then
    say "PREPARE_ONLY: $WORK holds the store and the model; a later run of the same size reuses them"
    exit 0
fi
# Every run serves a fresh copy of the prepared store, so runs start from the same state (the mixed run writes).
RUN_DB=$OUT/run.db
rm -f "$RUN_DB" "$RUN_DB-wal" "$RUN_DB-shm"
sqlite3 "$DB" ".backup '$RUN_DB'"
n_events=$(sqlite3 "$RUN_DB" 'SELECT count(*) FROM events')
say "store: $n_events events, $(sqlite3 "$RUN_DB" 'SELECT count(*) FROM users') users, $(sqlite3 "$RUN_DB" 'SELECT count(*) FROM items') items"

# Known users with a history: what wrk asks for.
sqlite3 "$RUN_DB" 'SELECT ext FROM users WHERE id IN (SELECT DISTINCT user FROM events)' >"$WORK/users.txt"
say "$(wc -l <"$WORK/users.txt") users with a history in $WORK/users.txt"

# wrk script: GET /v1/recommend/{random known user}; every wrk thread seeds its own generator.
cat >"$OUT/recommend.lua" <<EOF
local ids = {}
local counter = 0
function setup(thread)
    counter = counter + 1
    thread:set("tid", counter)
end
function init(args)
    for line in io.lines("$OUT_ABS/$TAG/users.txt") do
        ids[#ids + 1] = line:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end)
    end
    math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end
function request()
    return wrk.format("GET", "/v1/recommend/" .. ids[math.random(#ids)] .. "?n=10")
end
EOF

# Starts a server command with stderr to a log, waits for its "listening on" line; sets SRV_PID and SRV_PORT.
start_server() { # log cmd...
    local log=$1
    shift
    "$@" 2>"$log" &
    SRV_PID=$!
    pids+=("$SRV_PID")
    SRV_PORT=
    for _ in $(seq 1 36000); do # up to an hour for loading and the index
        SRV_PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$SRV_PORT" ] && break
        kill -0 "$SRV_PID" 2>/dev/null || { tail -20 "$log" >&2; die "$1 exited before listening"; }
        sleep 0.1
    done
    [ -n "$SRV_PORT" ] || die "$1 never printed its listening line"
}

# Samples VmRSS (KiB) of pid every second into file as "seconds kib" until killed.
rss_sampler() { # pid file
    local t=0
    : >"$2"
    while kill -0 "$1" 2>/dev/null; do
        awk -v t=$t '/^VmRSS:/ { print t, $2 }' "/proc/$1/status" >>"$2" 2>/dev/null || true
        sleep 1
        t=$((t + 1))
    done
}

run_wrk() { # name conns port seconds
    local name=$1 c=$2 port=$3 secs=$4
    wrk -t"$WRK_THREADS" -c"$c" -d"${secs}s" --timeout 10s --latency -s "$OUT/recommend.lua" \
        "http://127.0.0.1:$port" >"$OUT/wrk-$name.txt" 2>&1
    say "$name: $(grep -E '^Requests/sec' "$OUT/wrk-$name.txt") $(grep -E '^ +99%' "$OUT/wrk-$name.txt" | tr -s ' ')"
}

stop_server() { # pid name: SIGTERM, wait, exit status into STOP_STATUS
    kill -TERM "$1"
    set +e
    wait "$1"
    STOP_STATUS=$?
    set -e
    say "$2 stopped: exit status $STOP_STATUS"
}

# ---- 3. the bare stack ----
thr=()
[ "$THREADS" != 0 ] && thr=(--threads "$THREADS")
start_server "$OUT/bare.log" "$BARE" --port 0 "${thr[@]}"
say "bare_http on port $SRV_PORT; warm-up 5 s"
wrk -t"$WRK_THREADS" -c8 -d5s "http://127.0.0.1:$SRV_PORT/" >/dev/null 2>&1
for c in $CONNS; do run_wrk "bare-c$c" "$c" "$SRV_PORT" "$DURATION"; done
stop_server "$SRV_PID" bare_http

# ---- 4. the full path ----
say "starting magpie serve (loading the store, the model and building the index)"
t=$(date +%s)
# shellcheck disable=SC2086
start_server "$OUT/serve.log" "$MAGPIE" serve --db "$RUN_DB" --model "$MODEL" --port 0 --threads "$THREADS" $SERVE_ARGS
SERVE_PID=$SRV_PID
PORT=$SRV_PORT
last_note=$(date +%s)
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -20 "$OUT/serve.log" >&2; die "magpie serve exited while loading"; }
    if [ $(($(date +%s) - last_note)) -ge 15 ]; then
        last_note=$(date +%s)
        say "still loading ($((last_note - t)) s): $(tr '\r' '\n' <"$OUT/serve.log" | grep -v '^$' | tail -1 | head -c 160)"
    fi
    sleep 0.2
done
ready_s=$(($(date +%s) - t))
say "ready after $ready_s s; model: $(curl -s "http://127.0.0.1:$PORT/v1/model" | head -c 300)"
sample_user=$(head -1 "$WORK/users.txt")
code=$(curl -s -o "$OUT/sample-recommend.json" -w '%{http_code}' "http://127.0.0.1:$PORT/v1/recommend/$sample_user?n=10")
[ "$code" = 200 ] || die "GET /v1/recommend/$sample_user answered $code: $(head -c 300 "$OUT/sample-recommend.json")"
say "sample answer ($(wc -c <"$OUT/sample-recommend.json") bytes): $(head -c 200 "$OUT/sample-recommend.json")"
say "warm-up 5 s"
wrk -t"$WRK_THREADS" -c8 -d5s -s "$OUT/recommend.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1
for c in $CONNS; do
    rss_sampler "$SERVE_PID" "$OUT/rss-full-c$c.txt" &
    sp=$!
    pids+=("$sp")
    run_wrk "full-c$c" "$c" "$PORT" "$DURATION"
    kill "$sp" 2>/dev/null || true
    wait "$sp" 2>/dev/null || true
done

# ---- 5. mixed: one client posting event batches + wrk on recommend ----
say "mixed run: ${MIXED_DURATION} s of event batches (1 client) + wrk recommend at 8 connections"
rss_sampler "$SERVE_PID" "$OUT/rss-mixed.txt" &
sp=$!
pids+=("$sp")
set +e
rm -f "$OUT/mixed.ready"
python3 tests/serve/mixed.py --db "$RUN_DB" --port "$PORT" --seconds "$MIXED_DURATION" --writers 1 --readers 0 \
    --batch 100 --users-per-writer 200 --json-out "$OUT/mixed.json" --ready-file "$OUT/mixed.ready" \
    >"$OUT/mixed.txt" 2>&1 &
mixed_pid=$!
pids+=("$mixed_pid")
# the client reads the store's ids first; wrk starts with its timed run
until [ -e "$OUT/mixed.ready" ] || ! kill -0 "$mixed_pid" 2>/dev/null; do sleep 0.1; done
run_wrk "mixed-c8" 8 "$PORT" "$MIXED_DURATION"
wait "$mixed_pid"
mixed_status=$?
set -e
kill "$sp" 2>/dev/null || true
wait "$sp" 2>/dev/null || true
say "mixed client: $(tail -3 "$OUT/mixed.txt" | head -c 600)"
n_events_after=$(sqlite3 "$RUN_DB" 'SELECT count(*) FROM events')
say "store: $n_events events before, $n_events_after after"

# ---- 6. stop ----
stop_server "$SERVE_PID" "magpie serve"
serve_status=$STOP_STATUS

# ---- results ----
python3 - "$OUT" "$CONNS" "$WARMUP" "$serve_status" "$mixed_status" "$ready_s" "$n_events" "$n_events_after" \
    "$TAG" <<'EOF'
import json, os, re, sys
out, conns, warmup, serve_status, mixed_status, ready_s, ev_before, ev_after, tag = sys.argv[1:]
conns = conns.split()
warmup = int(warmup)

def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v if m.group(2) == "ms" else v * 1000 if m.group(2) == "s" else v * 60000

def wrk(name):
    txt = open(os.path.join(out, "wrk-%s.txt" % name)).read()
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", txt).group(1))}
    for p in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % p, txt, re.M)
        r["p" + p] = ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", txt)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    r["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"(\d+) requests in", txt)
    r["requests"] = int(m.group(1)) if m else 0
    return r

def rss(name):
    rows = [tuple(map(int, l.split())) for l in open(os.path.join(out, "rss-%s.txt" % name)) if l.strip()]
    if len(rows) < 2:
        return None
    after = [kib for t, kib in rows if t >= warmup] or [rows[-1][1]]
    base, end, peak = after[0], rows[-1][1], max(k for _, k in rows)
    return {"warm_mib": base / 1024, "end_mib": end / 1024, "peak_mib": peak / 1024,
            "growth_pct": 100.0 * (end - base) / base}

res = {"tag": tag, "ready_seconds": int(ready_s), "serve_exit_status": int(serve_status)}
lines = ["# magpie serve load benchmark (%s)" % tag, "",
         "| run | conns | req/s | p50 ms | p99 ms | non-2xx | socket errors | RSS warm -> end MiB (growth) |",
         "|---|---:|---:|---:|---:|---:|---:|---|"]
ok = True
goals = []
for c in conns:
    b, f = wrk("bare-c" + c), wrk("full-c" + c)
    r = rss("full-c" + c)
    res["bare_c" + c], res["full_c" + c], res["rss_full_c" + c] = b, f, r
    lines.append("| bare_http | %s | %.0f | %.3f | %.3f | %d | %d | |" % (c, b["rps"], b["p50"], b["p99"], b["non2xx"],
                                                                         b["socket_errors"]))
    lines.append("| magpie serve | %s | %.0f | %.3f | %.3f | %d | %d | %s |" % (
        c, f["rps"], f["p50"], f["p99"], f["non2xx"], f["socket_errors"],
        "%.1f -> %.1f (%+.2f%%)" % (r["warm_mib"], r["end_mib"], r["growth_pct"]) if r else "-"))
    ratio, p99x = f["rps"] / b["rps"], f["p99"] / b["p99"] if b["p99"] else float("inf")
    goals.append(("%s conns: full / bare req/s" % c, "%.2f" % ratio, ">= 0.50", ratio >= 0.5))
    goals.append(("%s conns: full p99 / bare p99" % c, "%.2f (%.3f / %.3f ms)" % (p99x, f["p99"], b["p99"]),
                  "<= 2.0", p99x <= 2.0))
    goals.append(("%s conns: RSS growth after %d s warm-up" % (c, warmup),
                  "%+.2f%%" % r["growth_pct"] if r else "n/a", "< 5%", bool(r) and r["growth_pct"] < 5.0))
    goals.append(("%s conns: failed requests" % c, "%d non-2xx, %d socket errors" % (f["non2xx"], f["socket_errors"]),
                  "0", f["non2xx"] == 0 and f["socket_errors"] == 0))
    if c == "8":
        goals.insert(0, ("8 conns: p50 latency", "%.3f ms" % f["p50"], "<= 1 ms", f["p50"] <= 1.0))
mx = wrk("mixed-c8")
mr = rss("mixed")
res["mixed_wrk"], res["rss_mixed"] = mx, mr
mixed = {}
try:
    mixed = json.load(open(os.path.join(out, "mixed.json")))
except (OSError, ValueError):
    pass
res["mixed_client"] = mixed
lines.append("| mixed: serve + 1 writer | 8 | %.0f | %.3f | %.3f | %d | %d | %s |" % (
    mx["rps"], mx["p50"], mx["p99"], mx["non2xx"], mx["socket_errors"],
    "%.1f -> %.1f (%+.2f%%)" % (mr["warm_mib"], mr["end_mib"], mr["growth_pct"]) if mr else "-"))
acked = mixed.get("acked_events")
stored = int(ev_after) - int(ev_before)
goals.append(("mixed: events acknowledged vs added to the store", "%s acknowledged (%s/s, %s ms per 100-event batch), "
              "%d added" % (acked, mixed.get("events_per_s"), mixed.get("write_ms_avg"), stored),
              "equal", acked == stored and int(mixed_status) == 0 and mixed.get("failures") == 0))
goals.append(("mixed: recommend failures", "%d non-2xx, %d socket errors" % (mx["non2xx"], mx["socket_errors"]), "0",
              mx["non2xx"] == 0 and mx["socket_errors"] == 0))
goals.append(("SIGTERM exit status", serve_status, "0", int(serve_status) == 0))
lines += ["", "Server ready (store + model + index loaded) after %s s." % ready_s, "",
          "| goal | measured | target | met |", "|---|---|---|---|"]
for name, got, want, met in goals:
    lines.append("| %s | %s | %s | %s |" % (name, got, want, "yes" if met else "**no**"))
res["goals"] = [{"goal": g[0], "measured": g[1], "target": g[2], "met": g[3]} for g in goals]
text = "\n".join(lines) + "\n"
open(os.path.join(out, "results.md"), "w").write(text)
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=1)
print(text)
EOF
say "done in $(($(date +%s) - T0)) s: $OUT/results.md, $OUT/results.json"
