package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
)

// sessionGoroutines counts the goroutines running the gateway's session
// code (a frame of server.(*session) in their stack).
func sessionGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "gssocks/server.(*session)") {
			count++
		}
	}
	return count
}

// TestIdleSessionGoroutines: an idle relayed session at confidentiality
// costs the gateway two goroutines, the session's own carrying one
// direction and one more for the other; none waits for the others (the
// third goroutine sessions had, 5 KiB of the 38 KiB an idle session cost).
// Data still moves both ways afterwards.
func TestIdleSessionGoroutines(t *testing.T) {
	g := startGateway(t, allowAll)
	dest := echoServer(t)
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
	const n = 8
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	msg := []byte("ping")
	for range n {
		c, err := d.DialContext(context.Background(), "tcp", dest)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	// The last session's goroutines may still be on their way to their
	// waits; the count settles at once.
	var got int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got = sessionGoroutines(); got == 2*n || time.Now().After(deadline) {
			break
		}
	}
	if got != 2*n {
		t.Fatalf("%d goroutines in session code for %d idle sessions, want %d", got, n, 2*n)
	}
	for _, c := range conns {
		roundTrip(t, c, 256<<10)
	}
}
