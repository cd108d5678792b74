package mitpeer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStuckPeerBounded: a peer that neither reads its commands nor answers
// (here a process that only sleeps, standing in for a peer stuck in a
// library call) costs a test the reply timeout, not the whole test binary:
// a command larger than the pipe fails with a deadline error, and Close
// kills the peer and returns within its bounds.
func TestStuckPeerBounded(t *testing.T) {
	script := filepath.Join(t.TempDir(), "stuck-peer")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := StartAcceptor(script, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	p.timeout = 300 * time.Millisecond

	start := time.Now()
	_, err = p.Step(make([]byte, 1<<17)) // 256 KiB of hex: more than a pipe holds
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Step to a peer that does not read: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Step took %v", d)
	}

	start = time.Now()
	err = p.Close()
	if err == nil {
		t.Fatal("Close of a peer that had to be killed reported no error")
	}
	if d := time.Since(start); d > 4*closeTimeout {
		t.Fatalf("Close took %v", d)
	}
	if p.cmd.ProcessState == nil {
		t.Fatal("the peer was not reaped")
	}
}
