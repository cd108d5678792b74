#!/bin/sh
# gssocks postinstall (deb postinst "configure", rpm %post): the gssocks
# system user and the owners of its directories. Idempotent: runs on every
# install and upgrade. Does not enable or start the service: it needs a
# keytab and a reviewed configuration first.
set -e

# useradd and groupadd are in Debian's required "passwd" package and in
# RHEL's shadow-utils; Debian's adduser is the fallback.
if ! getent group gssocks >/dev/null; then
	if command -v groupadd >/dev/null 2>&1; then
		groupadd --system gssocks
	else
		addgroup --system --quiet gssocks
	fi
fi
if ! getent passwd gssocks >/dev/null; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	if command -v useradd >/dev/null 2>&1; then
		useradd --system --gid gssocks --home-dir /var/lib/gssocks --no-create-home \
			--shell "$nologin" --comment "gssocks SOCKS5 gateway" gssocks
	else
		adduser --system --quiet --ingroup gssocks --home /var/lib/gssocks \
			--no-create-home --shell "$nologin" --gecos "gssocks SOCKS5 gateway" gssocks
	fi
fi

# The configuration is readable by the service, writable by root only;
# the keytab (root, 0600) is handed over by systemd's LoadCredential=.
chown root:gssocks /etc/gssocks
chmod 0750 /etc/gssocks
if [ -f /etc/gssocks/config.hcl ]; then
	chown root:gssocks /etc/gssocks/config.hcl
	chmod 0640 /etc/gssocks/config.hcl
fi
for d in /var/lib/gssocks /var/log/gssocks; do
	mkdir -p "$d"
	chown gssocks:gssocks "$d"
	chmod 0750 "$d"
done

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
