#!/usr/bin/env bash
# The layering check (scripts/check_layers.py against the "## Module order" table of docs/architecture.md):
# first that it catches each kind of violation on a small made-up tree, then that the real tree is clean, with the
# calls read from this build's object files.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
MAGPIE=${MAGPIE:-$root/build/magpie}
build=$(dirname "$MAGPIE")
check="$root/scripts/check_layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A made-up tree: low <- mid <- top. Each case breaks one rule; the checker must name it.
make_tree() {
    rm -rf "$tmp/t" && mkdir -p "$tmp/t/docs" "$tmp/t/include/magpie" "$tmp/t/src/low" "$tmp/t/src/mid" "$tmp/t/src/top"
    cat > "$tmp/t/docs/architecture.md" <<'EOF'
## Module order
| module | folder | public headers | uses |
|---|---|---|---|
| low | src/low | low | - |
| mid | src/mid | mid | low |
| top | src/top | top | mid, low |
EOF
    echo 'int low_f(void);' > "$tmp/t/include/magpie/low.h"
    echo 'int mid_f(void);' > "$tmp/t/include/magpie/mid.h"
    echo 'int top_f(void);' > "$tmp/t/include/magpie/top.h"
    printf '#include "magpie/low.h"\nint low_f(void) { return 1; }\n' > "$tmp/t/src/low/low.c"
    printf '#include "magpie/mid.h"\n#include "magpie/low.h"\nint mid_f(void) { return low_f(); }\n' > "$tmp/t/src/mid/mid.c"
    printf '#include "magpie/top.h"\n#include "magpie/mid.h"\nint top_f(void) { return mid_f(); }\n' > "$tmp/t/src/top/top.c"
}
compile_tree() {
    for d in low mid top; do
        mkdir -p "$tmp/t/build/src/$d"
        for c in "$tmp/t/src/$d"/*.c; do
            cc -c -I"$tmp/t/include" -I"$tmp/t/src" "$c" -o "$tmp/t/build/src/$d/$(basename "$c" .c).o"
        done
    done
}
expect() { # expect RC NEEDLE: run the checker on the made-up tree
    local rc=0
    python3 "$check" --root "$tmp/t" --build "$tmp/t/build" > "$tmp/out.txt" 2>&1 || rc=$?
    [ "$rc" -eq "$1" ] || { cat "$tmp/out.txt"; fail "checker exit $rc, expected $1 ($2)"; }
    grep -qF -- "$2" "$tmp/out.txt" || { cat "$tmp/out.txt"; fail "checker did not say: $2"; }
}

make_tree; compile_tree
expect 0 "layering: clean"

# An include of a module above.
make_tree; printf '#include "magpie/top.h"\n' >> "$tmp/t/src/low/low.c"; compile_tree
expect 1 "src/low/low.c:3: includes magpie/top.h of module \`top\`, which \`low\` may not use"

# A call to a module above without its header (an extern written by hand): only the objects show it.
make_tree
printf '#include "magpie/low.h"\nint top_f(void);\nint low_f(void) { return top_f(); }\n' > "$tmp/t/src/low/low.c"
compile_tree
expect 1 "src/low/low.c: calls top_f (src/top/top.c) of module \`top\`, which \`low\` may not use"

# Another module's private header.
make_tree; echo 'int mid_private;' > "$tmp/t/src/mid/mid_internal.h"
printf '#include "mid/mid_internal.h"\n' >> "$tmp/t/src/top/top.c"; compile_tree
expect 1 "includes mid/mid_internal.h, a private header of module \`mid\`"

# Two files of one module calling each other.
make_tree
printf 'int b_f(void);\nint a_f(void) { return 1; }\nint a_g(void) { return b_f(); }\n' > "$tmp/t/src/mid/a.c"
printf 'int a_f(void);\nint b_f(void) { return a_f(); }\n' > "$tmp/t/src/mid/b.c"
compile_tree
expect 1 "call loop: src/mid/a.c <-> src/mid/b.c"

# Two headers including each other.
make_tree
printf '#include "low/y.h"\n' > "$tmp/t/src/low/x.h"; printf '#include "low/x.h"\n' > "$tmp/t/src/low/y.h"; compile_tree
expect 1 "include loop: src/low/x.h <-> src/low/y.h"

# A table whose uses point upwards, a folder and a header that the table does not place.
make_tree; sed -i 's/^| low | src\/low | low | - |/| low | src\/low | low | top |/' "$tmp/t/docs/architecture.md"
mkdir -p "$tmp/t/src/extra"; echo 'int extra;' > "$tmp/t/include/magpie/extra.h"; compile_tree
expect 1 "table: \`low\` uses \`top\`, which is not below it in the order"
grep -qF "src/extra/: a folder that is no module of the table" "$tmp/out.txt" || fail "unplaced folder"
grep -qF "include/magpie/extra.h: a public header that no module of the table lists" "$tmp/out.txt" || fail "unplaced header"

# The real tree, with this build's objects.
[ -d "$build/src" ] || fail "no build at $build"
python3 "$check" --root "$root" --build "$build" || fail "the tree breaks its layering (see above)"
echo "layering ok"
