package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeNotifiesSystemd runs the real binary with NOTIFY_SOCKET set, as
// systemd does for Type=notify and notify-reload units: READY=1 once the
// listeners serve; RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// SIGHUP, also when the reloaded file is broken; STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed while waiting for %q", want)
				}
				if strings.HasPrefix(m, "STATUS=") && !strings.HasPrefix(want, "STATUS=") {
					continue
				}
				if !strings.HasPrefix(m, want) {
					t.Fatalf("sd_notify message %q, want %q", m, want)
				}
				return m
			case <-time.After(15 * time.Second):
				t.Fatalf("no sd_notify message %q", want)
			}
		}
	}

	conf := filepath.Join(dir, "gssocks.hcl")
	writeConfig(t, conf, `"`+freeAddr(t)+`"`, env.Keytab, `rule "all" {}`)
	p := startProcess(t, bin, conf, append(os.Environ(), "NOTIFY_SOCKET="+sock))
	next("READY=1")

	p.cmd.Process.Signal(syscall.SIGHUP)
	if m := next("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING without MONOTONIC_USEC: %q", m)
	}
	next("READY=1")

	if err := os.WriteFile(conf, []byte("rule {"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1")
	if m := next("STATUS="); !strings.Contains(m, "reload failed") {
		t.Errorf("status after a failed reload: %q", m)
	}
	next("READY=1")

	p.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := p.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs())
	}
}
