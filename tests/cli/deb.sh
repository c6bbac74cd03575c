#!/usr/bin/env bash
# `make deb`: the Debian package of the build. Always (any user):
#   - control fields, contents, conffiles, maintainer scripts that parse;
#   - Depends names the package of every shared library the binary and libmagpie.so load (ldd);
#   - the systemd unit passes `systemd-analyze verify` (a copy whose ExecStart is the extracted binary) and
#     `systemd-analyze security` rates it hardened; the packaged config parses and keeps state in /var/lib/magpie.
# As root (CI) with no magpie package installed: `dpkg -i`, then the service's command runs as the magpie user on
# loopback and writes its store in /var/lib/magpie, the installed unit verifies, `dpkg -r` keeps only the
# conffile and `dpkg --purge` leaves no file of the package, no state directory and no user behind.
# Otherwise that part is skipped with the reason printed.
. "$(dirname "$0")/lib.sh"

# A package is made from a release build; the sanitizer build's run of this script would check the same scripts
# and files again (about 9 s), so it stops here, saying so.
if [[ $(readelf -d "$MAGPIE" 2>/dev/null) == *libasan* || $(readelf -d "$MAGPIE" 2>/dev/null) == *libubsan* ]]; then
    echo "deb: skipped in a sanitizer build (packages are made from release builds)"
    echo "ok"
    exit 0
fi

build=$(dirname "$MAGPIE")
case $build in "$ROOT"/*) build=${build#"$ROOT"/} ;; esac
version=$(cat "$ROOT/VERSION")
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || cc -print-multiarch)
make -s --no-print-directory -C "$ROOT" BUILD="$build" deb >make.out 2>&1 || { cat make.out >&2; fail "make deb"; }
deb=$ROOT/$build/magpie_${version}_$arch.deb
[ -f "$deb" ] || fail "make deb did not write $deb"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = magpie ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), VERSION says $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep -v '^$' >contents.txt
for f in /usr/bin/magpie "/usr/lib/$multiarch/libmagpie.so.$version" "/usr/lib/$multiarch/libmagpie.so.0" \
    "/usr/lib/$multiarch/libmagpie.a" "/usr/lib/$multiarch/pkgconfig/magpie.pc" /usr/include/magpie/model.h \
    /usr/share/man/man1/magpie.1.gz /usr/share/man/man1/magpie-serve.1.gz /lib/systemd/system/magpie.service \
    /etc/magpie/magpie.conf /usr/share/doc/magpie/copyright; do
    grep -qxF "$f" contents.txt || fail "the package lacks $f"
done
dpkg-deb -e "$deb" control
grep -qx /etc/magpie/magpie.conf control/conffiles || fail "magpie.conf is not a conffile"
for s in postinst prerm postrm; do
    [ -x "control/$s" ] || fail "no executable $s"
    sh -n "control/$s" || fail "$s does not parse"
done
grep -q 'adduser --system' control/postinst || fail "postinst does not create a system user"
grep -q 'rm -rf /var/lib/magpie' control/postrm || fail "postrm purge keeps /var/lib/magpie"

# Depends against ldd: the package owning each library that the packaged files link must be a dependency.
dpkg-deb -x "$deb" x
for f in x/usr/bin/magpie "x/usr/lib/$multiarch/libmagpie.so.$version"; do
    ldd "$f" >ldd.txt || fail "ldd $f"
    grep -q 'not found' ldd.txt && fail "$f: a library is missing: $(grep 'not found' ldd.txt)"
    # the libraries the file itself needs (NEEDED), where ldd finds them (the rest come with those packages)
    readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r need; do
        awk -v n="$need" '$1 == n && $2 == "=>" { print $3 }' ldd.txt
    done
done | sort -u >libs.txt
[ "$(wc -l <libs.txt)" -ge 5 ] || fail "ldd found too few libraries: $(cat libs.txt)"
while read -r so; do
    real=$(readlink -f "$so")
    owner=$(dpkg -S "$so" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null ||
        dpkg -S "${so#/usr}" 2>/dev/null) || fail "no package owns $so"
    pkg=${owner%%:*}
    deps=",$(echo "$depends" | sed 's/([^)]*)//g; s/[ ]//g; s/|/,/g'),"
    [[ $deps == *",$pkg,"* ]] && continue
    # or the package the owner's shlibs file names for this soname (libopenblas0-pthread says libopenblas0)
    base=$(basename "$so")
    declared=$({ cat /var/lib/dpkg/info/"$pkg".shlibs /var/lib/dpkg/info/"$pkg":*.shlibs 2>/dev/null || true; } |
        awk -v n="${base%.so.*}" -v v="${base##*.so.}" '$1 == n && $2 == v { print $3; exit }')
    [ -n "$declared" ] && [[ $deps == *",$declared,"* ]] ||
        fail "Depends ($depends) lacks $pkg${declared:+ or $declared}, which provides $so"
done <libs.txt

# The unit: verify a copy that runs the extracted binary (the installed path does not exist here), with the
# extracted man pages for its Documentation= line; any message is a failure.
mkdir unit
sed "s|^ExecStart=/usr/bin/magpie |ExecStart=$tmp/x/usr/bin/magpie |" x/lib/systemd/system/magpie.service \
    >unit/magpie.service
grep -q "^ExecStart=$tmp/x/usr/bin/magpie serve --config /etc/magpie/magpie.conf$" unit/magpie.service ||
    fail "unexpected ExecStart: $(grep ExecStart x/lib/systemd/system/magpie.service)"
out=$(MANPATH=$tmp/x/usr/share/man systemd-analyze verify unit/magpie.service 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
for k in 'User=magpie' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/magpie' \
    'StateDirectory=magpie' 'PrivateTmp=yes' 'CapabilityBoundingSet='; do
    grep -qx "$k" unit/magpie.service || fail "the unit lacks $k"
done
# exposure on systemd's 0-10 scale (threshold in tenths): at most 2.5, "OK"
systemd-analyze security --offline=yes --threshold=25 unit/magpie.service >security.txt 2>&1 ||
    fail "systemd-analyze security: $(tail -2 security.txt)"
# the packaged config: the state in /var/lib/magpie, loopback only
x/usr/bin/magpie serve --config x/etc/magpie/magpie.conf --print-config >config.txt 2>&1 ||
    { cat config.txt >&2; fail "the packaged config does not parse"; }
grep -Eq '^db *= *"?/var/lib/magpie/magpie.db"? ' config.txt || fail "db is not under /var/lib/magpie: $(grep '^db' config.txt)"
grep -Eq '^listen *= *"?127.0.0.1"? ' config.txt || fail "the packaged config does not listen on loopback"

# The real install, as root only.
skip=""
if [ "$(id -u)" -ne 0 ]; then
    skip="not root (dpkg -i needs root; CI runs as root)"
elif dpkg-query -W -f='${Status}' magpie 2>/dev/null | grep -q 'installed\|config-files'; then
    skip="a magpie package is already installed on this machine; not touching it"
elif getent passwd magpie >/dev/null || [ -e /var/lib/magpie ] || [ -e /etc/magpie ]; then
    skip="a magpie user, /var/lib/magpie or /etc/magpie exists already; not touching it"
fi
if [ -n "$skip" ]; then
    echo "deb: skipping dpkg -i / dpkg --purge: $skip (the package contents were checked)"
    echo "ok"
    exit 0
fi

# dpkg may be locked by another apt run for a moment: retry, bounded
dpkg_retry() {
    local n
    for n in $(seq 1 30); do
        if dpkg "$@" >dpkg.out 2>&1; then return 0; fi
        grep -qi 'lock' dpkg.out || break
        sleep 1
    done
    cat dpkg.out >&2
    return 1
}
installed=""
deb_cleanup() {
    if [ -n "$installed" ]; then dpkg --purge magpie >/dev/null 2>&1 || true; fi
    mp_cleanup
}
trap deb_cleanup EXIT

installed=yes
dpkg_retry -i "$deb" || fail "dpkg -i"
dpkg-query -W -f='${Status}' magpie | grep -q 'install ok installed' || fail "magpie is not installed"
[ "$(/usr/bin/magpie --version)" = "magpie $version" ] || fail "installed magpie --version"
getent passwd magpie >/dev/null || fail "postinst did not create the user magpie"
[ "$(stat -c %U:%G /var/lib/magpie)" = magpie:magpie ] || fail "/var/lib/magpie is not owned by magpie"
[[ $(getent passwd magpie) == *:/usr/sbin/nologin || $(getent passwd magpie) == *:/bin/false ]] ||
    fail "the magpie user has a login shell: $(getent passwd magpie)"
[[ $(ldconfig -p) == *"libmagpie.so.0 "* ]] || fail "ldconfig does not know libmagpie.so.0 after dpkg -i"
[ "$(pkg-config --modversion magpie)" = "$version" ] || fail "pkg-config magpie after dpkg -i"
# (images that tell dpkg to leave out /usr/share/man install no pages)
if ! grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    man -w magpie-serve >/dev/null || fail "man -w magpie-serve"
fi
out=$(systemd-analyze verify /lib/systemd/system/magpie.service 2>&1) || fail "verify installed unit: $out"
[ -z "$out" ] || fail "systemd-analyze verify (installed): $out"
# the service's command as the service's user (on a free loopback port): it creates its store in /var/lib/magpie
cd /var/lib/magpie
setpriv --reuid magpie --regid magpie --init-groups --no-new-privs \
    /usr/bin/magpie serve --config /etc/magpie/magpie.conf --port 0 2>"$tmp/serve.err" &
pid=$!
cd "$tmp"
wait_ready serve.err 100
url=$(server_url serve.err)
case $url in http://127.0.0.1:*) ;; *) fail "the service listens on $url, not loopback" ;; esac
[ "$(curl -s "$url/healthz")" = '{"status":"ok"}' ] || fail "/healthz of the installed service"
kill -TERM "$pid"
wait "$pid" || fail "the installed service did not stop cleanly"
pid=""
[ "$(stat -c %U /var/lib/magpie/magpie.db)" = magpie ] || fail "the store is not the magpie user's"

dpkg_retry -r magpie || fail "dpkg -r"
[ ! -e /usr/bin/magpie ] || fail "dpkg -r left /usr/bin/magpie"
[ -f /etc/magpie/magpie.conf ] || fail "dpkg -r removed the conffile (only --purge should)"
dpkg_retry --purge magpie || fail "dpkg --purge"
installed=""
left=""
while read -r f; do
    case $f in / | /etc | /lib | /lib/systemd | /lib/systemd/system | /usr | /usr/* ) [ -d "$f" ] && continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done <contents.txt
[ -z "$left" ] || fail "dpkg --purge left:$left"
[ ! -e /etc/magpie ] || fail "dpkg --purge left /etc/magpie"
[ ! -e /var/lib/magpie ] || fail "dpkg --purge left /var/lib/magpie"
! getent passwd magpie >/dev/null || fail "dpkg --purge left the user magpie"
! getent group magpie >/dev/null || fail "dpkg --purge left the group magpie"
! dpkg-query -W magpie >/dev/null 2>&1 || fail "dpkg still knows magpie after --purge"
echo "ok"
