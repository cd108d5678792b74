#!/bin/sh
# gssocks postremove (deb postrm, rpm %postun). On purge (deb only) the
# logs and state go too; the gssocks user stays, as Debian does for system
# users, since files elsewhere may still belong to it.
set -e

case "$1" in
purge)
	rm -rf /var/log/gssocks /var/lib/gssocks
	rmdir /etc/gssocks 2>/dev/null || true
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
