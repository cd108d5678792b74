#!/usr/bin/env bash
# Installs Samba as an Active Directory domain controller, for the AD tests
# (testenv/samba, internal/adtest): a real Heimdal KDC issuing tickets with
# a PAC. Debian 12 packages, installed with --no-install-recommends (the
# recommended libpam-winbind/libnss-winbind would edit /etc/pam.d and
# /etc/nsswitch.conf); samba-ad-provision, only recommended by samba-ad-dc,
# is named because samba-tool domain provision needs its schema files.
#
#   scripts/install-samba.sh
#
# Idempotent: does nothing when every package is installed (apt-get update
# runs only when something is missing). Package scripts are kept from
# starting services with a policy-rc.d exiting 101, removed afterwards if
# this script created it; should a package have started smbd, nmbd, samba
# (samba-ad-dc) or winbind anyway, they are stopped and disabled: the tests
# run their own samba in a network namespace, never the system's.
#
# Exit status 3 means it cannot install here (no apt-get, not root and no
# password-less sudo); other failures exit 1.
set -euo pipefail

me="install-samba"
packages=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind samba-common-bin python3-samba ldb-tools krb5-user iproute2)
tools=(samba samba-tool ldbsearch ldbmodify ip)
services=(samba-ad-dc samba smbd nmbd winbind)

die() {
	echo "$me: $*" >&2
	exit 1
}
cannot() {
	echo "$me: cannot install here: $*" >&2
	exit 3
}
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for p in "${packages[@]}"; do
		installed "$p" || missing+=("$p")
	done
else
	missing=("${packages[@]}")
fi
if [ ${#missing[@]} -eq 0 ]; then
	for t in "${tools[@]}"; do
		have "$t" || die "$t missing although ${packages[*]} are installed"
	done
	echo "$me: all packages present"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 || cannot "no apt-get (Debian/Ubuntu only); install the equivalent of: ${packages[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
		cannot "not root and no password-less sudo; as root run: apt-get install --no-install-recommends ${missing[*]}"
	fi
	SUDO=(sudo -n)
fi

# shellcheck source=no-services.sh
. "$(dirname "${BASH_SOURCE[0]}")/no-services.sh"

echo "$me: installing ${missing[*]}"
start=$(date +%s)
# Other tests' scripts may be running apt-get too: wait for its locks.
updated=
for attempt in 1 2 3 4 5; do
	if "${SUDO[@]}" apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null; then
		updated=1
		break
	fi
	echo "$me: apt-get update failed (attempt $attempt), retrying" >&2
	sleep 5
done
[ -n "$updated" ] || echo "$me: apt-get update kept failing; installing from the lists there are" >&2
# Only what is missing: installed packages (MIT Kerberos's, used by other
# tests) are not upgraded under running tests.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null

# Whatever a package started anyway: stop it and keep it from starting at
# boot (systemd, else the SysV init scripts), and end what is left by the
# pid files the daemons write.
for s in "${services[@]}"; do
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		"${SUDO[@]}" systemctl disable --now "$s" >/dev/null 2>&1 || true
	else
		if [ -x "/etc/init.d/$s" ]; then
			"${SUDO[@]}" "/etc/init.d/$s" stop >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1; then
			"${SUDO[@]}" update-rc.d "$s" disable >/dev/null 2>&1 || true
		fi
	fi
done
for pidfile in /run/samba/smbd.pid /run/samba/nmbd.pid /run/samba/samba.pid /run/samba/winbindd.pid; do
	if [ -r "$pidfile" ]; then
		pid=$(cat "$pidfile" 2>/dev/null || true)
		case $pid in
		'' | *[!0-9]*) ;;
		*)
			# Only a Samba daemon: a stale pid file may name another process.
			case $(cat "/proc/$pid/comm" 2>/dev/null || true) in
			samba | smbd | nmbd | winbindd) "${SUDO[@]}" kill "$pid" 2>/dev/null || true ;;
			esac
			;;
		esac
	fi
done

for t in "${tools[@]}"; do
	have "$t" || die "$t still missing after installing ${packages[*]}"
done
echo "$me: done in $(($(date +%s) - start))s"
