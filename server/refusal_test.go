package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

// rawSession dials the gateway and returns the connection after the
// method selection of greeting.
func rawDial(t *testing.T, g *gateway) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// closedByServer reads until EOF and returns what came before it.
func closedByServer(t *testing.T, c net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("expected a clean close: %v", err)
	}
	return b
}

// stillServing proves the gateway serves a good session after a bad one.
func stillServing(t *testing.T, g *gateway) {
	t.Helper()
	d := client.Dialer{Proxy: g.addr, Config: g.config("alice", encap.LevelConfidentiality)}
	c, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatalf("gateway no longer serving: %v", err)
	}
	roundTrip(t, c, 100)
	c.Close()
}

func gssHandshake(t *testing.T, g *gateway, c net.Conn) *gssapi.Context {
	t.Helper()
	c.Write([]byte{5, 1, 1})
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 1} {
		t.Fatalf("method selection %x: %v", sel, err)
	}
	in, tok := g.env.Initiator(t, "alice", "rcmd/localhost", "")
	ctx, err := encap.InitiateContext(c, in, tok)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestRefusals(t *testing.T) {
	g := startGateway(t, allowAll+`
rule "nec-ok" {
  principals = ["bob@EXAMPLE.TEST"]
  protection = ["integrity"]
  nec = true
}`)
	cases := []struct {
		name string
		run  func(t *testing.T, c net.Conn) []byte // returns what the server sent before closing
		want []byte                                // expected bytes before the close (nil: anything)
		log  string
	}{
		{"only method 00 offered", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 0})
			return closedByServer(t, c)
		}, []byte{5, 0xff}, "no acceptable method"},
		{"not SOCKS 5", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{4, 1, 0, 80, 127, 0, 0, 1, 0})
			return closedByServer(t, c)
		}, []byte{}, "bad greeting"},
		{"garbage after the greeting", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			return closedByServer(t, c)
		}, []byte{1, 0xff}, "authentication failed"},
		{"wrong mtyp", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			encap.WriteMessage(c, encap.MsgProtection, []byte{1})
			return closedByServer(t, c)
		}, []byte{1, 0xff}, "unexpected message type"},
		{"len beyond the data", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte{1, 1, 0x02, 0x00, 0x60, 0x82})
			c.(*net.TCPConn).CloseWrite()
			return closedByServer(t, c)
		}, []byte{}, "authentication failed"},
		{"bad AP-REQ", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			encap.WriteMessage(c, encap.MsgAuth, []byte{0x60, 0x03, 0x06, 0x01, 0x00})
			return closedByServer(t, c)
		}, []byte{1, 0xff}, "authentication failed"},
		{"level 3", func(t *testing.T, c net.Conn) []byte {
			ctx := gssHandshake(t, g, c)
			return negotiateAndClose(t, c, ctx, encap.LevelSelective)
		}, []byte{1, 0xff}, "protection level refused"},
		{"NEC where not allowed", func(t *testing.T, c net.Conn) []byte {
			gssHandshake(t, g, c)
			return negotiateAndClose(t, c, nil, encap.LevelIntegrity)
		}, []byte{1, 0xff}, "protection level refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run(t, rawDial(t, g))
			if tc.want != nil && string(got) != string(tc.want) {
				t.Fatalf("server sent %x before closing, want %x", got, tc.want)
			}
			waitLog(t, g, tc.log)
			stillServing(t, g)
		})
	}
	t.Run("raw request after protection was agreed", func(t *testing.T) {
		c := rawDial(t, g)
		s, err := client.Handshake(context.Background(), c, g.config("alice", encap.LevelConfidentiality))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(wire(t)(socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: socks5.Addr{Host: "echo.corp.example.test", Port: 7}})))
		if got := closedByServer(t, c); len(got) != 0 {
			t.Fatalf("server answered %x", got)
		}
		_ = s
		waitLog(t, g, "does not implement RFC 1961 encapsulation")
		stillServing(t, g)
	})
}

// negotiateAndClose sends a level request (wrapped with ctx, or in the NEC
// form when ctx is nil) and expects the server to close.
func negotiateAndClose(t *testing.T, c net.Conn, ctx *gssapi.Context, lvl encap.Level) []byte {
	t.Helper()
	tok := []byte{byte(lvl)}
	if ctx != nil {
		var err error
		if tok, err = ctx.Wrap(nil, tok, false); err != nil {
			t.Fatal(err)
		}
	}
	encap.WriteMessage(c, encap.MsgProtection, tok)
	return closedByServer(t, c)
}

func waitLog(t *testing.T, g *gateway, s string) {
	t.Helper()
	if s == "" {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(g.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
