package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
)

// tune changes the settings new sessions get.
func (g *gateway) tune(t *testing.T, f func(*server.Settings)) {
	t.Helper()
	st := *g.Server().Settings()
	f(&st)
	if err := g.Server().Reload(st); err != nil {
		t.Fatal(err)
	}
}

// TestSessionLimit: max_sessions counts sessions past their handshake.
// With one allowed and held, the next client is refused right after it
// authenticated, with the RFC 1961 abort message, and its record says
// so; once the first ends, clients are served again.
func TestSessionLimit(t *testing.T) {
	g := startGateway(t, allowAll+"limits {\n  max_sessions = 1\n}\n")
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
	hold, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	mark := g.mark()
	if _, err := client.Open(context.Background(), g.Addr, g.config("bob", encap.LevelConfidentiality)); !errors.Is(err, encap.ErrAborted) {
		t.Fatalf("over the limit: %v, want the abort message", err)
	}
	// Refused before the level was negotiated: the level is "none".
	g.waitRecordFrom(t, mark, "refused: session limit", func(r audit.Record) bool {
		return r.EndReason == audit.EndRefused && r.Detail == "session limit reached" && r.Level == "none" &&
			r.Method == "gssapi" && r.Principal == "bob@EXAMPLE.TEST" && !r.Replied
	})
	hold.Close()
	for deadline := time.Now().Add(5 * time.Second); g.Server().ActiveSessions() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held session did not end")
		}
	}
	stillServing(t, g)
}

// TestHandshakesDoNotStarveSessions: connections that never authenticate
// count against their own limits, not max_sessions. Silent connections as
// many as max_sessions used to hold every slot (a real client got 05 ff);
// now the real client is served. Past max_handshakes_per_source a source
// gets 05 ff at once while another source is served, and past
// max_handshakes every source does.
func TestHandshakesDoNotStarveSessions(t *testing.T) {
	g := startGateway(t, allowAll+`
limits {
  max_sessions              = 2
  max_handshakes            = 6
  max_handshakes_per_source = 3
}`)
	echo := echoServer(t)
	silent := func(from string) net.Conn {
		t.Helper()
		c := dialFrom(t, from, g.Addr)
		c.Write([]byte{5, 1, 1}) // a greeting, then nothing
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatalf("method selection for a silent client from %s: %v", from, err)
		}
		return c
	}
	served := func(from string) {
		t.Helper()
		s, err := client.Handshake(context.Background(), dialFrom(t, from, g.Addr), g.config("alice", encap.LevelIntegrity))
		if err != nil {
			t.Fatalf("a real client from %s: %v", from, err)
		}
		defer s.Close()
		dest, _ := socks5.ParseHostPort(echo)
		if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
			t.Fatalf("a real client from %s: %v", from, err)
		}
		roundTrip(t, s.Stream(), 100)
	}
	refusedAtOnce := func(from, why string) {
		t.Helper()
		mark := g.mark()
		c := dialFrom(t, from, g.Addr)
		start := time.Now()
		if got := closedByServer(t, c); string(got) != string([]byte{5, 0xff}) {
			t.Fatalf("from %s: %x, want 05 ff", from, got)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("from %s: refused after %s", from, d)
		}
		g.waitRecordFrom(t, mark, why, func(r audit.Record) bool {
			return r.EndReason == audit.EndRefused && r.Detail == why && r.Source.Addr().String() == from
		})
	}

	// As many silent connections as max_sessions: a real client is served.
	silent("127.0.0.1")
	silent("127.0.0.1")
	served("127.0.0.1")
	// A third silent one fills 127.0.0.1's share: its next connection is
	// refused before its greeting, another source's is served.
	silent("127.0.0.1")
	refusedAtOnce("127.0.0.1", "per-source handshake limit reached")
	served("127.0.0.2")
	// Three more from 127.0.0.3 fill max_handshakes: every source is
	// refused.
	for range 3 {
		silent("127.0.0.3")
	}
	refusedAtOnce("127.0.0.4", "handshake limit reached")
}

// dialFrom connects to addr from the loopback address from, with a
// deadline; the test closes it.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func TestNegotiationTimeout(t *testing.T) {
	g := startGateway(t, allowAll)
	g.tune(t, func(s *server.Settings) { s.Timeouts.Negotiation = 200 * time.Millisecond })
	c := rawDial(t, g)
	start := time.Now()
	closedByServer(t, c) // says nothing: closed at the deadline
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %s", d)
	}
}

func TestIdleTimeout(t *testing.T) {
	g := startGateway(t, allowAll)
	g.tune(t, func(s *server.Settings) { s.Timeouts.Idle = 300 * time.Millisecond })
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
	c, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Traffic keeps it alive past the timeout.
	var start time.Time
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		c.Write([]byte("ping"))
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Logf("read after idle: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("idle session closed after %s", d)
	}
	g.waitRecord(t, "idle timeout", func(r audit.Record) bool {
		return r.EndReason == audit.EndIdleTimeout && r.Command == "connect" && r.BytesUp == 16 && r.BytesDown == 16
	})
}

func TestGracefulShutdown(t *testing.T) {
	g := startGateway(t, allowAll)
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	c, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.Server().Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	// New connections are refused; the running session goes on.
	if nc, err := net.DialTimeout("tcp", g.Addr, time.Second); err == nil {
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		nc.Write([]byte{5, 1, 1})
		if n, _ := nc.Read(make([]byte, 2)); n > 0 {
			t.Fatal("a new session was served during shutdown")
		}
		nc.Close()
	}
	roundTrip(t, c, 100000)
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("shutdown with a session that finished in time: %v", err)
	}
	g.waitRecord(t, "the session that finished during shutdown, completed", func(r audit.Record) bool {
		return r.EndReason == audit.EndCompleted && r.BytesUp == 100000 && r.BytesDown == 100000
	})
}

// TestShutdownCutsSession: a session still relaying at Shutdown's deadline
// is cut, and its record says so: end reason "shutdown", not a normal
// completion after the CONNECT's "00 succeeded".
func TestShutdownCutsSession(t *testing.T) {
	g := startGateway(t, allowAll)
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
	c, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := g.Server().Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a session open past the deadline: %v", err)
	}
	r := g.waitRecord(t, "the cut session", func(r audit.Record) bool { return r.Command == "connect" })
	if r.EndReason != audit.EndShutdown || !strings.Contains(r.Detail, "shutdown") {
		t.Fatalf("cut session ended %q (%q), want %q", r.EndReason, r.Detail, audit.EndShutdown)
	}
	// The reply is what was sent (the CONNECT did succeed); the end
	// reason beside it, in the written record too, says it was cut.
	if !r.Replied || r.Reply != 0 || r.BytesUp != 4 || r.BytesDown != 4 {
		t.Fatalf("record %v", r.Fields())
	}
	line := waitLogLine(t, g, "audit: session:", "session_id="+r.SessionID)
	if !strings.Contains(line, "end_reason=shutdown") || strings.Contains(line, "end_reason=completed") {
		t.Fatalf("written record: %s", line)
	}
}

func TestPerPrincipalLimit(t *testing.T) {
	g := startGateway(t, `
rule "one-each" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  max_sessions_per_principal = 1
}`)
	echo := echoServer(t)
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	first, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DialContext(context.Background(), "tcp", echo); err == nil {
		t.Fatal("a second session for alice was allowed")
	}
	bob := client.Dialer{Proxy: g.Addr, Config: g.config("bob", encap.LevelIntegrity)}
	if c, err := bob.DialContext(context.Background(), "tcp", echo); err != nil {
		t.Fatalf("bob: %v", err)
	} else {
		c.Close()
	}
	first.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := d.DialContext(context.Background(), "tcp", echo)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice still refused after her session ended: %v", err)
		}
	}
}

// TestNoAuth: method 00 only from no_auth sources, and only rules without
// identity matchers can allow such a session.
func TestNoAuth(t *testing.T) {
	g := startGateway(t, `
no_auth { sources = ["127.0.0.0/8"] }
rule "lab" {
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}`)
	echo := echoServer(t)
	c := rawDial(t, g)
	c.Write([]byte{5, 1, 0})
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[1] != 0 {
		t.Fatalf("method selection %x: %v", sel, err)
	}
	dest, _ := socks5.ParseHostPort(echo)
	c.Write(wire(t)(socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})))
	rep := make([]byte, 10)
	if _, err := io.ReadFull(c, rep); err != nil || rep[1] != 0 {
		t.Fatalf("reply %x: %v", rep, err)
	}
	roundTrip(t, c, 1000)
	// No GSS-API: no principal, and the session ran (and was decided) at
	// level clear.
	g.waitRecord(t, "no-auth session", func(r audit.Record) bool {
		return r.Method == "none" && r.Level == "clear" && r.Principal == "" && r.Rule == "lab" && r.EndReason == audit.EndCompleted
	})

	// The same gateway without no_auth refuses method 00.
	g.tune(t, func(s *server.Settings) { s.NoAuth = nil })
	c = rawDial(t, g)
	c.Write([]byte{5, 1, 0})
	if got := closedByServer(t, c); string(got) != string([]byte{5, 0xff}) {
		t.Fatalf("without no_auth: %x", got)
	}
}
