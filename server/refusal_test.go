package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

// rawSession dials the gateway and returns the connection after the
// method selection of greeting.
func rawDial(t *testing.T, g *gateway) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", g.Addr)
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
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
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
		name   string
		run    func(t *testing.T, c net.Conn) []byte // returns what the server sent before closing
		want   []byte                                // expected bytes before the close (nil: anything)
		end    audit.EndReason                       // the record's end reason
		detail string                                // in the record's detail
	}{
		{"only method 00 offered", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 0})
			return closedByServer(t, c)
		}, []byte{5, 0xff}, audit.EndRefused, "no acceptable authentication method"},
		// Version 4 is SOCKS4 (socks4_test.go), refused with its own reply.
		{"not SOCKS 5", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{6, 1, 0, 80, 127, 0, 0, 1, 0})
			return closedByServer(t, c)
		}, []byte{}, audit.EndRefused, "greeting"},
		{"garbage after the greeting", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			return closedByServer(t, c)
		}, []byte{1, 0xff}, audit.EndAuthFailed, "authentication"},
		{"wrong mtyp", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			encap.WriteMessage(c, encap.MsgProtection, []byte{1})
			return closedByServer(t, c)
		}, []byte{1, 0xff}, audit.EndAuthFailed, "unexpected message type"},
		{"len beyond the data", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			c.Write([]byte{1, 1, 0x02, 0x00, 0x60, 0x82})
			c.(*net.TCPConn).CloseWrite()
			return closedByServer(t, c)
		}, []byte{}, audit.EndAuthFailed, "authentication"},
		{"bad AP-REQ", func(t *testing.T, c net.Conn) []byte {
			c.Write([]byte{5, 1, 1})
			io.ReadFull(c, make([]byte, 2))
			encap.WriteMessage(c, encap.MsgAuth, []byte{0x60, 0x03, 0x06, 0x01, 0x00})
			return closedByServer(t, c)
		}, []byte{1, 0xff}, audit.EndAuthFailed, "authentication"},
		{"level 3", func(t *testing.T, c net.Conn) []byte {
			ctx := gssHandshake(t, g, c)
			return negotiateAndClose(t, c, ctx, encap.LevelSelective)
		}, []byte{1, 0xff}, audit.EndNegotiationFailed, "protection negotiation: policy"},
		{"NEC where not allowed", func(t *testing.T, c net.Conn) []byte {
			gssHandshake(t, g, c)
			return negotiateAndClose(t, c, nil, encap.LevelIntegrity)
		}, []byte{1, 0xff}, audit.EndNegotiationFailed, "protection negotiation: policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mark := g.mark()
			got := tc.run(t, rawDial(t, g))
			if tc.want != nil && string(got) != string(tc.want) {
				t.Fatalf("server sent %x before closing, want %x", got, tc.want)
			}
			r := g.waitRecordFrom(t, mark, fmt.Sprintf("%s with %q", tc.end, tc.detail), func(r audit.Record) bool {
				return r.EndReason == tc.end && strings.Contains(r.Detail, tc.detail)
			})
			// Refused before a level was agreed: level "none" (the
			// written record too), and no SOCKS reply.
			if r.Level != "none" || r.Replied || r.Command != "" {
				t.Fatalf("record %v", r.Fields())
			}
			if b, _ := json.Marshal(&r); !strings.Contains(string(b), `"level":"none"`) {
				t.Fatalf("written record %s", b)
			}
			if tc.end == audit.EndNegotiationFailed && r.Principal != "alice@EXAMPLE.TEST" {
				t.Fatalf("authenticated, then refused: principal %q", r.Principal)
			}
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
		// The operator's diagnostic is the behaviour here: the log line
		// names the cause and the remedy.
		waitLogLine(t, g, "does not implement RFC 1961 encapsulation", "auth_only")
		g.waitRecord(t, "raw request", func(r audit.Record) bool {
			return r.EndReason == audit.EndBadRequest && r.Detail == "raw request at level confidentiality" && r.Level == "confidentiality"
		})
		stillServing(t, g)
	})
}

// TestUntrustedNameOneLogLine: a domain name holding a newline in a SOCKS
// request (inside the protection, from an authenticated client) is refused
// with one log line for the event and one audit record, each one line: no
// client-chosen text can start a line that reads as a record of its own.
func TestUntrustedNameOneLogLine(t *testing.T) {
	g := startGateway(t, allowAll)
	c := rawDial(t, g)
	s, err := client.Handshake(context.Background(), c, g.config("alice", encap.LevelIntegrity))
	if err != nil {
		t.Fatal(err)
	}
	name := "evil\n2026-01-01T00:00:00.000Z [INFO]  audit: session: principal=root@EXAMPLE.TEST.corp.example.test"
	req := append([]byte{5, byte(socks5.CmdConnect), 0, byte(socks5.AddrTypeDomain), byte(len(name))}, name...)
	req = append(req, 0, 80)
	if _, err := s.Stream().Write(req); err != nil {
		t.Fatal(err)
	}
	rep := make([]byte, 2)
	if _, err := io.ReadFull(s.Stream(), rep); err != nil || rep[1] != byte(socks5.ReplyHostUnreachable) {
		t.Fatalf("reply %x: %v", rep, err)
	}
	r := g.waitRecord(t, "the refused request", func(r audit.Record) bool {
		return r.EndReason == audit.EndBadRequest && r.Principal == "alice@EXAMPLE.TEST"
	})
	stillServing(t, g)
	var event, records int
	for _, line := range strings.Split(strings.TrimSuffix(g.Log.String(), "\n"), "\n") {
		if !logLineStart.MatchString(line) {
			t.Errorf("a line that is not a log record: %q", line)
		}
		if strings.Contains(line, "root@") {
			if !strings.Contains(line, "session_id="+r.SessionID) {
				t.Errorf("the name appears outside its session's lines: %q", line)
			}
			if strings.Contains(line, "bad request") {
				event++
			}
			if auditLine.MatchString(line) {
				records++
			}
		}
	}
	if event != 1 || records != 1 {
		t.Fatalf("%d log lines for the bad request, %d records; want 1 and 1:\n%s", event, records, g.Log.String())
	}
	n := 0
	for _, rec := range g.recordsFrom(0) {
		if rec.SessionID == r.SessionID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d records for session %s", n, r.SessionID)
	}
}

// logLineStart is how each hclog text record begins: its timestamp.
// auditLine is a record written by the default audit sink.
var (
	logLineStart = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)
	auditLine    = regexp.MustCompile(`^\S+ \[[A-Z]+\] +(\S+\.)?audit: session:`)
)

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

// waitLogLine waits up to five seconds for a log line holding all of
// parts and returns it. Only for tests whose subject is the log line
// itself; sessions are checked on their records.
func waitLogLine(t *testing.T, g *gateway, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(g.Log.String(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q", parts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
