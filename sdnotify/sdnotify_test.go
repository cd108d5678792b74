package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen binds a unixgram socket the way systemd's notify socket is, points
// $NOTIFY_SOCKET at it and returns a function reading one datagram.
func listen(t *testing.T) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestMessages(t *testing.T) {
	read := listen(t)
	for _, tc := range []struct {
		name string
		call func() (bool, error)
		want string
	}{
		{"Ready", Ready, "READY=1"},
		{"Stopping", Stopping, "STOPPING=1"},
		{"Status", func() (bool, error) { return Status("serving 3 listeners, 12 sessions") }, "STATUS=serving 3 listeners, 12 sessions"},
	} {
		sent, err := tc.call()
		if err != nil || !sent {
			t.Fatalf("%s: sent=%v err=%v", tc.name, sent, err)
		}
		if got := read(); got != tc.want {
			t.Errorf("%s sent %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Type=notify-reload matches RELOADING=1 to the reload it started by
// MONOTONIC_USEC: a message without it, or with a time from another clock,
// leaves `systemctl reload` waiting.
func TestReloadingCarriesMonotonicUsec(t *testing.T) {
	read := listen(t)
	before := monotonicUsec(t)
	if sent, err := Reloading(); err != nil || !sent {
		t.Fatalf("Reloading: sent=%v err=%v", sent, err)
	}
	after := monotonicUsec(t)
	lines := strings.Split(read(), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading sent %q, want RELOADING=1 and MONOTONIC_USEC=N", lines)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d outside [%d, %d]: not CLOCK_MONOTONIC in microseconds", usec, before, after)
	}
}

// A status built from outside text (a file name, an error) must not add
// assignments of its own.
func TestStatusCannotInjectAssignments(t *testing.T) {
	read := listen(t)
	if _, err := Status("bad\nREADY=1\r\nMAINPID=1"); err != nil {
		t.Fatal(err)
	}
	got := read()
	if strings.ContainsAny(got, "\r\n") || !strings.HasPrefix(got, "STATUS=") {
		t.Errorf("Status sent %q: more than one assignment", got)
	}
}

func TestOutsideSystemdIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, call := range map[string]func() (bool, error){"Ready": Ready, "Reloading": Reloading, "Stopping": Stopping} {
		if sent, err := call(); sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: sent=%v err=%v, want false, nil", name, sent, err)
		}
	}
}

// A socket that is gone (systemd restarted, a stale environment) is an
// error the caller can log, naming the message but not the status text.
func TestDeadSocketIsError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	sent, err := Status("secret-looking text")
	if sent || err == nil {
		t.Fatalf("sent=%v err=%v, want an error", sent, err)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("err = %v, want it to wrap ENOENT", err)
	}
	if strings.Contains(err.Error(), "secret-looking") {
		t.Errorf("error %q carries the status text", err)
	}
}
