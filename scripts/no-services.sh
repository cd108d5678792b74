# Sourced by the install scripts: while they run, package scripts may not
# start services (a policy-rc.d exiting 101 tells invoke-rc.d so). One that
# is already there (Docker images have one) is left as it is; one we create
# is removed on exit. Needs SUDO (an array, empty as root) to be set.
policy=/usr/sbin/policy-rc.d
created_policy=
remove_policy() {
	if [ -n "$created_policy" ]; then
		"${SUDO[@]}" rm -f "$policy"
	fi
}
trap remove_policy EXIT
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
	"${SUDO[@]}" chmod 0755 "$policy"
	created_policy=1
fi
