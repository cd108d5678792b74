package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
)

// panicDialer dials for real; its connections panic when they read the
// marker, quoting what they read, as a parser choking on hostile data
// would.
type panicDialer struct{}

func (panicDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return panicConn{c}, nil
}

type panicConn struct{ net.Conn }

// CloseWrite passes the relay's half-close on to the destination.
func (c panicConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

func (c panicConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if bytes.Contains(p[:n], []byte("PANIC-NOW")) {
		panic("choked on " + string(p[:n]))
	}
	return n, err
}

// TestPanicEndsOnlyItsSession: a panic in a relay goroutine or in a UDP
// association's goroutine ends that session only: recovered at the
// goroutine's top, counted (Server.Panics), logged with a stack but
// without the panic's text (which may quote the payload), recorded as an
// error; another session relaying at the time goes on, and new sessions
// are served. A panic there used to take the whole process down.
func TestPanicEndsOnlyItsSession(t *testing.T) {
	g := startGateway(t, allowAll, testutil.WithServerOption(func(o *server.Options) { o.Dialer = panicDialer{} }))
	echo := echoServer(t)
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	bystander, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()

	// The relay: the echo sends the marker back, and the direction from
	// the destination panics reading it.
	victim, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	victim.Write([]byte("PANIC-NOW secret-payload"))
	victim.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(victim); len(b) != 0 || err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the session whose relay panicked: %q, %v", b, err)
	}
	r := g.waitRecord(t, "the relay's panic", func(r audit.Record) bool {
		return r.Command == "connect" && r.EndReason == audit.EndError && r.Detail == "internal error in relay (destination to client)"
	})
	line := waitLogLine(t, g, "internal error: panic in relay (destination to client)", "session_id="+r.SessionID)
	if !strings.Contains(line, "panic of type string") || !strings.Contains(line, "stack=") || !strings.Contains(line, "recoverPanic") ||
		strings.Contains(g.Log.String(), "secret-payload") {
		t.Fatalf("log line: %s", line)
	}

	// The UDP association: resolving a datagram's name panics.
	s, a, local, err := associate(t, g, "alice", encap.LevelIntegrity)
	if err != nil {
		t.Fatal(err)
	}
	a.WriteTo([]byte("x"), socks5.Addr{Host: "panic.corp.example.test", Port: 53})
	s.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, s.Stream())
	local.Close()
	g.waitRecord(t, "the association's panic", func(r audit.Record) bool {
		return r.Command == "udp" && r.EndReason == audit.EndError && r.Detail == "internal error in udp relay (client to destinations)"
	})
	if n := g.Server().Panics(); n != 2 {
		t.Fatalf("%d panics counted, want 2", n)
	}
	roundTrip(t, bystander, 1000)
	stillServing(t, g)
}
