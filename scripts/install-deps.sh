#!/usr/bin/env bash
# Installs what the gssocks tests and demo need on Debian 12: the MIT
# Kerberos KDC, admin and client tools, the krb5 headers and a C compiler
# (for the MIT GSS-API peer in testenv/mitpeer), make, and redis-server (the
# shared replay store's tests start their own). Idempotent: does
# nothing when the tools are already there. Package scripts are kept from
# starting the krb5kdc/kadmind system services; the tests run their own KDCs.
# systemd-analyze and rpm check the packages (packaging/). OpenSSH, git and
# node are third-party clients of the bridge tests (git clone over ssh with
# gssocks connect as ProxyCommand, against an sshd they start; node runs
# the PAC file).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# more installs, now rather than from inside concurrently running test
# binaries (two apt-get runs at once would fight over the dpkg lock), what
# the Dante build and the Active Directory tests need. Both scripts do
# nothing when everything is there.
more() {
	bash "$here/build-dante.sh" --deps-only
	if [ -f "$here/install-samba.sh" ]; then
		bash "$here/install-samba.sh"
	fi
}

tools=(krb5kdc kdb5_util kadmin.local kinit krb5-config gcc make curl python3 redis-server systemd-analyze rpm sshd ssh ssh-keygen git node haproxy)
packages=(krb5-kdc krb5-admin-server krb5-user krb5-pkinit libkrb5-dev gcc libc6-dev make ca-certificates curl python3 redis-server systemd rpm openssh-server openssh-client git nodejs haproxy)

have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

# MIT's PKINIT plugin (krb5-pkinit), for the anonymous-ticket tests
# (kinit -n); a library, not a program.
have_pkinit() {
	compgen -G "/usr/lib/*/krb5/plugins/preauth/pkinit.so" >/dev/null
}

missing=()
for t in "${tools[@]}"; do
	have "$t" || missing+=("$t")
done
have_pkinit || missing+=(pkinit.so)
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all tools present"
	more
	exit 0
fi
echo "install-deps: missing ${missing[*]}; installing ${packages[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: no apt-get; install the equivalent of: ${packages[*]}" >&2
	exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "install-deps: not root and no sudo; as root run: apt-get install ${packages[*]}" >&2
		exit 1
	fi
	SUDO=(sudo)
fi

# shellcheck source=no-services.sh
. "$(dirname "${BASH_SOURCE[0]}")/no-services.sh"

"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y --no-install-recommends "${packages[@]}"

for t in "${tools[@]}"; do
	if ! have "$t"; then
		echo "install-deps: $t still missing after installing ${packages[*]}" >&2
		exit 1
	fi
done
if ! have_pkinit; then
	echo "install-deps: pkinit.so still missing after installing ${packages[*]}" >&2
	exit 1
fi
more
echo "install-deps: done"
