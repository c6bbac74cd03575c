#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer targets with ASan + UBSan and runs each for FUZZ_SECONDS.
#
# usage: tests/fuzz/run.sh [TARGET...]      TARGET: request, modelfile (default: both)
# env:   FUZZ_SECONDS  seconds per target (default 60)
#        FUZZ_OUT      build and corpus directory (default build-fuzz)
#        FUZZ_CC       compiler (default clang, else clang-14); needs libFuzzer (clang's compiler-rt)
#        FUZZ_JOBS     parallel compile jobs (default 2)
# Exits 0 when every target ran its time without a crash, leak, timeout or sanitizer report; otherwise prints the
# report, the reproducer file and the command that replays it, and exits 1 (2 for a build or setup failure).
#
# Layout of FUZZ_OUT: obj/ (instrumented library objects), fuzz_request, fuzz_modelfile, seedgen, seeds/ (written
# by tests/fuzz/seeds.sh on every run), corpus/<target>/ (what the fuzzer found; kept between runs, so CI may cache
# it), artifacts/ (reproducers), <target>.log.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

secs=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(request modelfile)
for t in "${targets[@]}"; do
    case "$t" in request | modelfile) ;; *) echo "run.sh: unknown target \"$t\" (request, modelfile)" >&2; exit 2 ;; esac
done

cc=${FUZZ_CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14; do command -v "$c" >/dev/null 2>&1 && { cc=$c; break; }; done
fi
[ -n "$cc" ] || { echo "run.sh: clang not found (install clang and its compiler-rt, e.g. libclang-rt-14-dev)" >&2; exit 2; }

# The Makefile's flags, minus -Werror (another compiler's warnings must not stop fuzzing) and BLAS (plain-C
# kernels only). OpenMP stays: the library calls omp_* functions (clang links libomp).
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-std=c11 -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-pass-failed -D_GNU_SOURCE -Iinclude -Isrc -pthread -fopenmp"
cflags="$cflags $(pkg-config --cflags sqlite3 icu-uc libcurl libpq 2>/dev/null)"
libs="$(pkg-config --libs sqlite3 icu-uc libcurl libpq 2>/dev/null || echo -lsqlite3 -licuuc -lcurl -lpq) -lm -pthread -fopenmp"

mkdir -p "$out/obj" "$out/artifacts" || exit 2

# ---- build: library sources (as in the Makefile's LIB_SRC) plus the request decoders, instrumented for coverage.
# An object is rebuilt when it is missing or older than its source or than any header.
lib_src=$(ls src/core/*.c src/io/*.c src/nn/*.c src/data/*.c src/store/*.c src/models/*.c src/eval/*.c src/ann/*.c \
    src/live/*.c src/text/*.c src/bandit/*.c src/sim/*.c 2>/dev/null | sort)
newest_h=$(find include src -name '*.h' -printf '%T@\n' | sort -n | tail -1)
todo=()
objs=()
serve_src="src/serve/decode.c src/serve/jsonbody.c" # the request decoders, linked into fuzz_request only
for s in $lib_src $serve_src; do
    o="$out/obj/${s%.c}.o"
    case " $serve_src " in *" $s "*) ;; *) objs+=("$o") ;; esac
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ "$(stat -c %Y "$o")" -lt "${newest_h%.*}" ]; then todo+=("$s"); fi
done
echo "run.sh: compiling ${#todo[@]} sources with $cc" >&2
build_one() { # build_one SRC: compile into the object tree
    local s=$1 o="$out/obj/${1%.c}.o"
    mkdir -p "$(dirname "$o")" && $cc $cflags $san -fsanitize=fuzzer-no-link -c "$s" -o "$o.tmp" && mv "$o.tmp" "$o"
}
export -f build_one
export cc cflags san out
if [ ${#todo[@]} -gt 0 ]; then
    printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} bash -c 'build_one "$@" || exit 255' _ {} ||
        { echo "run.sh: compile failed" >&2; exit 2; }
fi
rm -f "$out/libmagpie-fuzz.a"
ar rcs "$out/libmagpie-fuzz.a" "${objs[@]}" || exit 2
link_bin() { # link_bin OUTPUT FLAGS... SOURCES...
    local o=$1
    shift
    $cc $cflags "$@" "$out/libmagpie-fuzz.a" $libs -o "$o" || { echo "run.sh: link of $o failed" >&2; exit 2; }
}
link_bin "$out/fuzz_request" $san -fsanitize=fuzzer tests/fuzz/fuzz_request.c "$out/obj/src/serve/decode.o" \
    "$out/obj/src/serve/jsonbody.o"
link_bin "$out/fuzz_modelfile" $san -fsanitize=fuzzer tests/fuzz/fuzz_modelfile.c
link_bin "$out/seedgen" $san tests/fuzz/seedgen.c

# ---- seeds
SEEDGEN="$out/seedgen" tests/fuzz/seeds.sh "$out/seeds" || { echo "run.sh: writing the seeds failed" >&2; exit 2; }

# ---- fuzz
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
failed=0
n_ok=0
n_fail=0
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus/$t"
    dict=()
    [ "$t" = request ] && dict=(-dict="$out/seeds/json.dict")
    log="$out/$t.log"
    echo "run.sh: fuzzing $t for ${secs}s (log: $log)" >&2
    "$out/fuzz_$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t-" "${dict[@]}" "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log"; then
        failed=1
        n_fail=$((n_fail + 1))
        echo "FAIL fuzz/$t (${secs} s)"
        echo "run.sh: FAIL: $t (exit $rc)" >&2
        grep -nE -m1 -A40 'ERROR: |runtime error:|==ERROR|deadly signal' "$log" >&2 || tail -40 "$log" >&2
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$repro" ]; then
            echo "run.sh: reproducer: $repro" >&2
            echo "run.sh: replay with: $out/fuzz_$t $repro" >&2
        fi
    else
        n_ok=$((n_ok + 1))
        echo "ok   fuzz/$t (${secs} s)"
        echo "run.sh: ok: $t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs," \
            "corpus $(ls "$out/corpus/$t" | wc -l) files" >&2
    fi
done
echo "$n_ok passed, $n_fail failed"
exit $failed
