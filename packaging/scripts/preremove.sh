#!/bin/sh
# gssocks preremove (deb prerm, rpm %preun): stop the service when the
# package goes away, not on upgrade (deb "upgrade", rpm $1 = 1).
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop gssocks.service >/dev/null 2>&1 || true
		systemctl disable gssocks.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
