// Package sdnotify tells systemd where the gateway is in its life: ready,
// reloading, stopping, and a one-line status for `systemctl status`. It is
// a thin layer over github.com/coreos/go-systemd/v22/daemon, which speaks
// the sd_notify(3) datagram protocol on the socket named by $NOTIFY_SOCKET.
//
// Outside systemd (no $NOTIFY_SOCKET) every call does nothing and reports
// sent = false with a nil error, so callers need not know how they were
// started. The package does not implement the watchdog (WATCHDOG=1), file
// descriptor storage or socket activation.
//
// Unit types: Type=notify (systemd 252, Debian 12) honours READY=1,
// RELOADING=1 and STOPPING=1; Type=notify-reload (systemd >= 253)
// additionally sends SIGHUP itself on `systemctl reload` and requires the
// RELOADING=1 message to carry MONOTONIC_USEC, which Reloading adds.
package sdnotify

import (
	"fmt"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready reports that start-up, or a reload begun with Reloading, is
// finished: systemd then considers the unit active and `systemctl start`
// or `systemctl reload` returns. sent is false outside systemd.
func Ready() (sent bool, err error) { return notify(daemon.SdNotifyReady) }

// Reloading reports that a configuration reload has begun; Ready must
// follow once it has finished, whether it succeeded or not. The message
// carries MONOTONIC_USEC, the CLOCK_MONOTONIC time in microseconds, which
// Type=notify-reload needs to match the message to the reload it asked for.
func Reloading() (sent bool, err error) {
	usec := daemon.SdNotifyMonotonicUsec() // "MONOTONIC_USEC=...\n" or ""
	return notify(daemon.SdNotifyReloading + "\n" + strings.TrimSuffix(usec, "\n"))
}

// Stopping reports that the gateway has begun to shut down (draining its
// sessions), so systemd shows the unit as deactivating rather than failed.
func Stopping() (sent bool, err error) { return notify(daemon.SdNotifyStopping) }

// Status sets the free-form line `systemctl status` shows (STATUS=...).
// Newlines in s are replaced with spaces: each line of a notification is
// an assignment, and a status line must not be able to add READY=1 or
// MAINPID=... of its own.
func Status(s string) (sent bool, err error) {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	return notify("STATUS=" + s)
}

func notify(state string) (bool, error) {
	state = strings.TrimSuffix(state, "\n")
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		return false, fmt.Errorf("sdnotify: %s: %w", firstAssignment(state), err)
	}
	return sent, nil
}

// firstAssignment names a notification in an error ("READY=1",
// "STATUS"), without the status text.
func firstAssignment(state string) string {
	first, _, _ := strings.Cut(state, "\n")
	if name, _, ok := strings.Cut(first, "="); ok && name == "STATUS" {
		return name
	}
	return first
}
