#!/usr/bin/env bash
# Builds Dante 1.4.2 (the socksify client with its preload library, and the
# sockd server) WITH GSS-API from Debian's own source package, into PREFIX.
# Debian's binary dante packages are built --without-gssapi, so the tests
# and benchmarks need this rebuild.
#
#   scripts/build-dante.sh PREFIX
#   scripts/build-dante.sh --deps-only   (install the build dependencies, as
#                                         scripts/install-deps.sh does up front)
#
# Idempotent and cached: when PREFIX/.built-ok holds the hash of this
# script, it exits 0 at once. Otherwise it
#   - installs the missing build dependencies with apt-get;
#   - fetches Debian's source package (`apt-get source dante`, which applies
#     Debian's patches) through a PRIVATE deb-src configuration in a
#     temporary directory whose URIs, Suites, Components and Signed-By are
#     copied at run time from the machine's own
#     /etc/apt/sources.list.d/debian.sources: the system's apt configuration,
#     lists and caches are not touched;
#   - runs autoreconf (Debian's patches edit configure.ac and Makefile.am),
#     configure with GSS-API against MIT Kerberos (failing unless configure
#     reports "GSSAPI: Enabled"), make and make install;
#   - checks the result and writes PREFIX/.built-ok.
# Takes about three minutes on two cores.
#
# Note that Debian renames the preload library: it is
# PREFIX/lib/libdsocksd.so (and libsocksd.so), not libdsocks.so.
#
# Exit status 3 means the build cannot run here (no apt-get, not root and no
# sudo, no deb822 Debian source entry to copy); other failures exit 1.
set -euo pipefail

me="build-dante"
die() {
	echo "$me: $*" >&2
	exit 1
}
cannot() {
	echo "$me: cannot build here: $*" >&2
	exit 3
}

[ $# -eq 1 ] && [ -n "$1" ] || {
	echo "usage: $0 PREFIX | --deps-only" >&2
	exit 2
}
deps_only=
prefix=$1
if [ "$1" = "--deps-only" ]; then
	deps_only=1
	prefix=/nonexistent
fi
case $prefix in
/*) ;;
*) prefix=$(pwd)/$prefix ;;
esac
prefix=${prefix%/}

recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
stamp=$prefix/.built-ok
if [ -z "$deps_only" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$recipe" ]; then
	echo "$me: up to date in $prefix"
	exit 0
fi

start=$(date +%s)

# ---------------------------------------------------------------- deps
# Installed only when dpkg-query says one is missing. krb5-config (the
# program) comes with libkrb5-dev; the Debian package named krb5-config is
# something else and not needed. curl is what the tests run under socksify.
packages=(dpkg-dev build-essential libkrb5-dev flex bison autoconf automake libtool libtool-bin curl xz-utils)

command -v apt-get >/dev/null 2>&1 || cannot "no apt-get (Debian/Ubuntu only); install Dante with GSS-API by hand"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	SUDO=(sudo -n)
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "$me: installing ${missing[*]}"
	if [ ${#SUDO[@]} -gt 0 ] && ! sudo -n true 2>/dev/null; then
		cannot "not root and no password-less sudo; as root run: apt-get install --no-install-recommends ${missing[*]}"
	fi
	# None of these packages starts a service, so no policy-rc.d is needed.
	"${SUDO[@]}" apt-get update -q >/dev/null
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
for t in dpkg-source autoreconf libtoolize flex bison gcc make krb5-config curl; do
	command -v "$t" >/dev/null 2>&1 || die "$t still missing after installing ${packages[*]}"
done
if [ -n "$deps_only" ]; then
	echo "$me: build dependencies present"
	exit 0
fi

# ------------------------------------------------- private deb-src apt
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gssocks-dante-build.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
# apt run as root downloads as the unprivileged _apt user: let it into the
# work dirs, and let it write the source files.
chmod 0755 "$tmp"
mkdir -p "$tmp/apt/sources.list.d" "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/src"
chmod -R 0755 "$tmp/apt" "$tmp/src"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$tmp/src"
fi

system_sources=/etc/apt/sources.list.d/debian.sources
if [ -r "$system_sources" ]; then
	# The first enabled "Types: deb" stanza (Debian's main archive entry),
	# with its URIs, Suites, Components and Signed-By (continuation lines
	# kept, for an inline key), turned into a deb-src stanza.
	awk '
		function flush() {
			if (isdeb && !disabled && have["URIs"] && have["Suites"] && !done) {
				print "Types: deb-src"
				printf "%s", body
				done = 1
			}
			isdeb = 0; disabled = 0; body = ""; keep = 0; delete have
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { if (keep) body = body $0 "\n"; next }
		{
			field = $0; sub(/:.*/, "", field)
			value = $0; sub(/^[^:]*:[ \t]*/, "", value)
			keep = 0
			if (field == "Types") { if ((" " value " ") ~ / deb /) isdeb = 1 }
			else if (field == "Enabled") { if (tolower(value) == "no") disabled = 1 }
			else if (field == "URIs" || field == "Suites" || field == "Components" || field == "Signed-By") {
				have[field] = 1; keep = 1; body = body $0 "\n"
			}
		}
		END { flush(); if (!done) exit 1 }
	' "$system_sources" >"$tmp/apt/sources.list.d/deb-src.sources" ||
		cannot "no enabled \"Types: deb\" stanza with URIs and Suites in $system_sources"
else
	# The one-line format (debootstrap, older images): the first "deb" line,
	# as a deb-src line.
	system_sources=/etc/apt/sources.list
	[ -r "$system_sources" ] || cannot "neither /etc/apt/sources.list.d/debian.sources nor $system_sources to copy the Debian archive's address from"
	awk '$1 == "deb" { $1 = "deb-src"; print; found = 1; exit } END { if (!found) exit 1 }' \
		"$system_sources" >"$tmp/apt/sources.list.d/deb-src.list" ||
		cannot "no \"deb\" line in $system_sources"
fi
echo "$me: private deb-src entry (from $system_sources):"
sed 's/^/    /' "$tmp/apt/sources.list.d/"deb-src.*

apt_opts=(
	-o "Dir::Etc::SourceList=/dev/null"
	-o "Dir::Etc::SourceParts=$tmp/apt/sources.list.d"
	-o "Dir::State::Lists=$tmp/apt/lists"
	-o "Dir::Cache=$tmp/apt/cache"
)
apt-get "${apt_opts[@]}" -q update >"$tmp/apt-update.log" 2>&1 ||
	die "apt-get update (private deb-src) failed: $(tail -5 "$tmp/apt-update.log")"
(cd "$tmp/src" && apt-get "${apt_opts[@]}" -q source dante) >"$tmp/apt-source.log" 2>&1 ||
	die "apt-get source dante failed: $(tail -5 "$tmp/apt-source.log")"

srcdir=$(find "$tmp/src" -mindepth 1 -maxdepth 1 -type d -name 'dante-*' | head -1)
[ -n "$srcdir" ] || die "apt-get source dante left no dante-* directory"
version=$(cd "$srcdir" && dpkg-parsechangelog -S Version)
case $version in
1.4.2*) ;;
*) die "Debian's dante source is $version, this recipe is for 1.4.2" ;;
esac
echo "$me: building dante $version (Debian source, patches applied) into $prefix"

# ------------------------------------------------------------- build
cd "$srcdir"
log=$tmp/build.log
run() {
	if ! "$@" >>"$log" 2>&1; then
		echo "$me: failed: $*" >&2
		tail -40 "$log" >&2
		exit 1
	fi
}
# Debian's patches change configure.ac and the Makefile.am files (the
# libdsocks → libdsocksd rename), so regenerate like dh_autoreconf does.
run autoreconf -f -i
# Only GSS-API is wanted: no libwrap, PAM, BSD auth, UPnP, LDAP or SASL.
# The default configuration and pid files live under PREFIX, never /etc or
# /var/run; the tests pass their own with SOCKS_CONF and sockd -f/-p.
run ./configure \
	--prefix="$prefix" \
	--with-gssapi \
	--with-krb5-config="$(command -v krb5-config)" \
	--without-libwrap \
	--without-pam \
	--without-bsdauth \
	--without-upnp \
	--without-ldap \
	--without-sasl \
	--disable-dependency-tracking \
	--with-socks-conf="$prefix/etc/socks.conf" \
	--with-sockd-conf="$prefix/etc/sockd.conf" \
	--with-pidfile="$prefix/run/sockd.pid"
grep -E '^(Client|Server|Preloading|Libwrap|BSD Auth|PAM|GSSAPI|KRB5|SASL|UPNP|LDAP): ' "$log" | sed 's/^/    /' || true
grep -q '^GSSAPI: *Enabled' "$log" ||
	die "configure did not enable GSS-API (want \"GSSAPI: Enabled\"): $(grep '^GSSAPI:' "$log" || echo 'no GSSAPI line')"

# Replace an earlier build, but never a directory this script did not make.
if [ -e "$prefix" ] && [ -n "$(ls -A "$prefix")" ] && [ ! -e "$prefix/.dante-build" ]; then
	die "refusing to replace $prefix: not empty and not made by this script"
fi
rm -rf "$prefix"
mkdir -p "$prefix"
touch "$prefix/.dante-build"
run make -j"$(nproc 2>/dev/null || echo 2)"
run make install
mkdir -p "$prefix/etc" "$prefix/run"

# ------------------------------------------------------------ verify
for f in bin/socksify lib/libdsocksd.so sbin/sockd; do
	[ -e "$prefix/$f" ] || die "$prefix/$f missing after make install"
done
ldd "$prefix/sbin/sockd" | grep -q 'libgssapi' || die "$prefix/sbin/sockd is not linked against libgssapi"
ldd "$prefix/lib/libdsocksd.so" | grep -q 'libgssapi' || die "$prefix/lib/libdsocksd.so is not linked against libgssapi"
"$prefix/sbin/sockd" -v >>"$log" 2>&1 || true

echo "$version" >"$prefix/.dante-version"
echo "$recipe" >"$stamp"
echo "$me: done in $(($(date +%s) - start))s: $prefix/bin/socksify, $prefix/lib/libdsocksd.so, $prefix/sbin/sockd"
