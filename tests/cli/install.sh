#!/usr/bin/env bash
# `make install` like a system library: installs the build into a temporary PREFIX under DESTDIR, then
#   - the shared library has soname libmagpie.so.MAJOR (MAJOR.MINOR.PATCH from VERSION) and exports only the API;
#   - a C program built with `pkg-config --cflags --libs magpie` (and one linked with the static library) creates a
#     model, fits it on events made in code and recommends the right items;
#   - the installed `magpie` runs gen-demo -> import -> train -> recommend;
#   - every man page renders without a warning and lists every option its command's --help lists;
#   - `make uninstall` leaves no file behind.
. "$(dirname "$0")/lib.sh"

# the build the binary under test comes from (make variables such as SANITIZER come through MAKEFLAGS under make)
build=$(dirname "$MAGPIE")
case $build in "$ROOT"/*) build=${build#"$ROOT"/} ;; esac
version=$(cat "$ROOT/VERSION")
major=${version%%.*}
prefix=/opt/magpie-test
dest=$tmp/dest
make -s --no-print-directory -C "$ROOT" BUILD="$build" install PREFIX="$prefix" DESTDIR="$dest" >make.out 2>&1 ||
    { cat make.out >&2; fail "make install"; }
root=$dest$prefix
for f in bin/magpie lib/libmagpie.a "lib/libmagpie.so.$version" include/magpie/model.h include/magpie/error.h \
    lib/pkgconfig/magpie.pc share/man/man1/magpie.1 share/man/man1/magpie-serve.1; do
    [ -e "$root/$f" ] || fail "make install did not install $prefix/$f"
done
[ "$(find "$root/include/magpie" -name '*.h' | wc -l)" -eq "$(find "$ROOT/include/magpie" -name '*.h' | wc -l)" ] ||
    fail "not every public header was installed"

# soname and links
soname=$(readelf -d "$root/lib/libmagpie.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libmagpie.so.$major" ] || fail "soname is '$soname', expected libmagpie.so.$major"
[ "$(readlink "$root/lib/libmagpie.so.$major")" = "libmagpie.so.$version" ] || fail "libmagpie.so.$major link"
[ "$(readlink "$root/lib/libmagpie.so")" = "libmagpie.so.$major" ] || fail "libmagpie.so link"
"$root/bin/magpie" --version | grep -qx "magpie $version" || fail "magpie --version is not $version"
# the API only: every exported function or object is mp_* (internal helpers stay hidden)
nm -D --defined-only "$root/lib/libmagpie.so.$version" >exports.txt
others=$(awk '$2 ~ /^[TDBR]$/ && $3 !~ /^mp_/ && $3 !~ /^_/ && $3 !~ /^\.gomp_critical/ { print $3 }' exports.txt)
[ -z "$others" ] || fail "libmagpie.so exports non-API symbols: $(echo "$others" | head -5 | tr '\n' ' ')"
grep -q ' T mp_model_fit$' exports.txt || fail "mp_model_fit not exported"

# pkg-config
export PKG_CONFIG_PATH=$root/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion magpie)" = "$version" ] || fail "pkg-config --modversion"
cflags=$(pkg-config --cflags magpie)
libs=$(pkg-config --libs magpie)
[[ " $cflags " == *" -I$root/include "* ]] || fail "pkg-config --cflags: $cflags"
[[ " $libs " == *" -lmagpie "* ]] || fail "pkg-config --libs: $libs"

cat >prog.c <<'EOF'
/* Builds against the installed libmagpie: a popularity model on events made here, recommendations for a user. */
#include <magpie/error.h>
#include <magpie/model.h>
#include <magpie/trainset.h>
#include <stdio.h>

int main(void) {
    mp_error err;
    mp_error_clear(&err);
    /* 5 users; user u bought items 0 .. 4-u, so item i has 5-i buyers and user 4 bought item 0 only */
    mp_interaction ev[15];
    size_t n = 0;
    for (uint32_t u = 0; u < 5; u++)
        for (uint32_t i = 0; i < 5 - u; i++)
            ev[n++] = (mp_interaction){.user = u, .item = i, .ts = 1000 + (int64_t)n, .type = MP_EV_PURCHASE};
    mp_train_data d = {.n_users = 5, .n_items = 5, .events = ev, .n_events = n, .now = 2000};
    mp_model *m = NULL;
    if (mp_model_create(&m, "pop", &err) != MP_OK || mp_model_fit(m, &d, NULL, &err) != MP_OK) {
        fprintf(stderr, "prog: %s\n", err.msg);
        mp_model_destroy(m);
        return 1;
    }
    mp_user_ctx ctx = {.user = 4, .history = &ev[n - 1], .n_history = 1};
    uint32_t items[5];
    float scores[5];
    size_t got = 0;
    if (mp_model_recommend(m, &ctx, 3, NULL, 0, 1, NULL, items, scores, &got, &err) != MP_OK) {
        fprintf(stderr, "prog: %s\n", err.msg);
        mp_model_destroy(m);
        return 1;
    }
    printf("recommended");
    for (size_t k = 0; k < got; k++)
        printf(" %u", (unsigned)items[k]);
    printf("\n");
    mp_model_destroy(m);
    return 0;
}
EOF
san=()
if [[ $(readelf -d "$root/lib/libmagpie.so.$version") == *lib[at]san* || $(readelf -d "$root/lib/libmagpie.so.$version") == *libubsan* ]]; then
    san=(-fsanitize=address,undefined) # a sanitizer build: the program must carry the same runtime
fi
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror "${san[@]}" $cflags -o prog prog.c $libs || fail "build against pkg-config magpie"
[[ $(ldd prog) == *"libmagpie.so.$major => not found"* ]] || fail "prog should need libmagpie.so.$major"
out=$(LD_LIBRARY_PATH=$root/lib ./prog) || fail "prog failed"
[ "$out" = "recommended 1 2 3" ] || fail "prog printed '$out', expected 'recommended 1 2 3'"
[[ $(LD_LIBRARY_PATH=$root/lib ldd prog) == *"libmagpie.so.$major => $root/lib/libmagpie.so.$major"* ]] ||
    fail "prog did not load the installed library"
# static: the archive plus Libs.private
static_libs=$(pkg-config --static --libs-only-l magpie | sed 's/-lmagpie//')
# shellcheck disable=SC2086
cc -std=c11 "${san[@]}" $cflags -o prog-static prog.c "$root/lib/libmagpie.a" \
    $(pkg-config --static --libs-only-L magpie) $static_libs $(pkg-config --static --libs-only-other magpie) ||
    fail "static link with pkg-config --static"
[[ $(ldd prog-static) != *libmagpie* ]] || fail "prog-static should not need libmagpie.so"
[ "$(./prog-static)" = "recommended 1 2 3" ] || fail "prog-static"

# the installed binary, end to end
bin=$root/bin/magpie
"$bin" gen-demo --out shop --users 60 --items 40 --seed 2 --quiet
"$bin" import events shop/events.jsonl --db shop.db --quiet
"$bin" train --db shop.db --model itemknn --out knn.mpm --quiet
user=$(head -1 shop/events.jsonl | sed 's/.*"user":"\([^"]*\)".*/\1/')
"$bin" recommend --db shop.db --model knn.mpm --user "$user" --n 3 >rec.txt || fail "installed magpie recommend"
grep -q 'sku-' rec.txt || fail "installed magpie recommend printed no items"

# man pages: one per command of `magpie --help`, rendering without warnings, listing every option of --help
commands=$("$bin" --help | awk '/^commands:$/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
[ "$(echo "$commands" | wc -w)" -ge 10 ] || fail "magpie --help lists too few commands: $commands"
for page in magpie $(for c in $commands; do echo "magpie-$c"; done); do
    f=$root/share/man/man1/$page.1
    [ -f "$f" ] || fail "no man page $page.1"
    [[ $(head -1 "$f") == ".TH "* ]] || fail "$page.1 does not start with .TH"
    grep -q '^\.SH NAME$' "$f" && grep -q '^\.SH DESCRIPTION$' "$f" || fail "$page.1 lacks NAME / DESCRIPTION"
    # one groff pass: the text, and any warning on stderr (what man would run, without its pager and cache)
    groff -man -Tutf8 -P-cbou -rLL=200n -ww "$f" >"$page.txt" 2>groff.err || fail "groff failed on $page.1"
    [ ! -s groff.err ] || fail "groff warns on $page.1: $(cat groff.err)"
    grep -q "^NAME" "$page.txt" || fail "$page.1 did not render"
done
MANWIDTH=120 man -l "$root/share/man/man1/magpie.1" >man.txt 2>&1 || fail "man -l magpie.1: $(cat man.txt)"
grep -q "magpie-train(1)" man.txt || fail "man -l magpie.1 lacks SEE ALSO magpie-train(1)"
grep -q "magpie-serve - HTTP/JSON service" magpie-serve.txt || fail "magpie-serve(1) NAME line"
for c in $commands; do
    "$bin" "$c" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u >opts.txt
    while read -r o; do
        grep -q -- "$o" "magpie-$c.txt" || fail "magpie-$c(1) lacks $o of \`magpie $c --help\`"
    done <opts.txt
done

make -s --no-print-directory -C "$ROOT" BUILD="$build" uninstall PREFIX="$prefix" DESTDIR="$dest" >make.out 2>&1 ||
    { cat make.out >&2; fail "make uninstall"; }
left=$(find "$dest" ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "ok"
