#!/bin/sh
# packaging/deb.sh BUILD VERSION COMPRESS MAKE [MAKE VARIABLES...]: builds BUILD/magpie_VERSION_ARCH.deb from the
# build in BUILD (`make deb` calls it): `make install` into a staging tree (PREFIX=/usr, the multiarch libdir),
# stripped, plus the systemd unit, /etc/magpie/magpie.conf (a conffile) and the maintainer scripts
# (packaging/debian). Depends comes from the shared libraries the binary and libmagpie.so actually link:
# dpkg-shlibdeps when it is installed (dpkg-dev), else the packages that own what ldd resolves.
set -eu
[ $# -ge 4 ] || { echo "usage: deb.sh BUILD VERSION COMPRESS MAKE [VAR=VALUE...]" >&2; exit 2; }
build=$1 version=$2 compress=$3 make=$4
shift 4
here=$(pwd)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || ${CC:-cc} -print-multiarch)
work=$here/$build/deb
stage=$work/root
rm -rf "$work"
mkdir -p "$stage"

"$make" -s --no-print-directory "$@" install DESTDIR="$stage" PREFIX=/usr LIBDIR="/usr/lib/$multiarch" >/dev/null
lib=$stage/usr/lib/$multiarch/libmagpie.so.$version
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/magpie" "$lib"
strip --strip-debug "$stage/usr/lib/$multiarch/libmagpie.a"

install -D -m 0644 packaging/magpie.service "$stage/lib/systemd/system/magpie.service"
install -D -m 0644 packaging/magpie.conf "$stage/etc/magpie/magpie.conf"
install -D -m 0644 packaging/debian/copyright "$stage/usr/share/doc/magpie/copyright"
printf 'magpie (%s) unstable; urgency=medium\n\n  * Built from the Magpie tree with make deb.\n\n -- Magpie developers <magpie@localhost>  %s\n' \
    "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(stat -c %Y VERSION)}")" |
    gzip -9n >"$stage/usr/share/doc/magpie/changelog.Debian.gz"
chmod 0644 "$stage/usr/share/doc/magpie/changelog.Debian.gz"
gzip -9nf "$stage"/usr/share/man/man1/*.1

# Depends
depends=""
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    mkdir -p "$work/shlibs/debian"
    printf 'Source: magpie\n\nPackage: magpie\nArchitecture: any\n' >"$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$stage/usr/bin/magpie" -e"$lib" 2>"$work/shlibdeps.err" |
        sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.err" >&2; exit 1; }
else
    for f in "$stage/usr/bin/magpie" "$lib"; do
        ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
    done | sort -u | while read -r so; do
        real=$(readlink -f "$so")
        pkg=$(dpkg -S "$so" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null) ||
            { echo "deb.sh: no package owns $so" >&2; exit 1; }
        echo "${pkg%%:*}"
    done | sort -u >"$work/owners"
    depends=$(paste -sd, "$work/owners" | sed 's/,/, /g')
fi
[ -n "$depends" ] || { echo "deb.sh: no shared-library dependencies found" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: magpie
Version: $version
Architecture: $arch
Maintainer: Magpie developers <magpie@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends, adduser
Section: misc
Priority: optional
Description: self-hosted recommendation engine
 Magpie ingests behaviour events, item and user data, trains recommendation
 models and serves them over HTTP/JSON. This package holds the magpie command
 (with magpie serve and its systemd unit magpie.service, configured in
 /etc/magpie/magpie.conf, state in /var/lib/magpie), the library libmagpie
 (shared and static), its headers and pkg-config file, and the man pages.
EOF
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$stage/DEBIAN/$s"; done
echo /etc/magpie/magpie.conf >"$stage/DEBIAN/conffiles"
printf 'activate-noawait ldconfig\n' >"$stage/DEBIAN/triggers"
printf 'libmagpie %s magpie (>= %s)\n' "${version%%.*}" "$version" >"$stage/DEBIAN/shlibs"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
    xargs md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/triggers" "$stage/DEBIAN/shlibs" \
    "$stage/DEBIAN/md5sums"

out=$build/magpie_${version}_$arch.deb
dpkg-deb --root-owner-group -Z"$compress" -b "$stage" "$out" >/dev/null
echo "$out"
