package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks4"
	"github.com/gssocks/gssocks/socks5"
)

// labSource is the no_auth network of TestFrontDoorsOneGateway: the
// clients of methods none and socks4 dial from it, the others from
// 127.0.0.1.
const labSource = "127.0.0.5"

// doorsConfig has every front door on, one destination port per door,
// each allowed by a rule whose methods matcher names that door alone.
// Rule "kerberos-only" has no identity matcher and accepts every level,
// clear included: only its methods matcher keeps the other doors out.
const doorsConfig = `
listen      = ["127.0.0.1:1080"]
http_listen = ["127.0.0.1:3128"]
kerberos {
  keytab = %q
}
timeouts {
  negotiation = "20s"
}
password_auth {
  sources   = ["127.0.0.0/8"]
  krb5_conf = %q
}
no_auth {
  sources = ["` + labSource + `/32"]
  socks4  = true
}
rule "kerberos-only" {
  methods      = ["gssapi"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%s"]
  protection   = ["clear", "integrity", "confidentiality"]
}
rule "passwords" {
  principals   = ["*@EXAMPLE.TEST"]
  methods      = ["password"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%s"]
  protection   = ["clear"]
}
rule "browsers" {
  principals   = ["*@EXAMPLE.TEST"]
  methods      = ["negotiate"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%s"]
  protection   = ["clear"]
}
rule "lab-none" {
  sources      = ["` + labSource + `/32"]
  methods      = ["none"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%s"]
  protection   = ["clear"]
}
rule "lab-socks4" {
  sources      = ["` + labSource + `/32"]
  methods      = ["socks4"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%s"]
  protection   = ["clear"]
}
`

// door is one way into the gateway: its method (as rules, audit records
// and explain name it), the client's source, and a client that runs one
// CONNECT to dest and echoes through it; connect reports whether the
// gateway let it through, and fails the test on anything but an allowed
// echo or the door's denial.
type door struct {
	method  string
	source  string
	connect func(t *testing.T, dest string) bool
}

// TestFrontDoorsOneGateway: one gateway with every front door on (SOCKS5
// GSS-API, RFC 1929 passwords checked by the real KDC, the HTTP proxy
// with Negotiate, SOCKS5 method 00 and SOCKS4 from a no_auth source) and
// rules whose methods matchers give each door its own destination. Each
// door reaches its own destination and no other; the rule with methods
// = ["gssapi"], which has no identity matcher and accepts clear, admits
// no session of another door; each audit record carries its door's
// method and deciding rule; and `gssocks explain --method` on the same
// configuration file decides every (door, destination) pair as the
// gateway did, including the refusals at the door (SOCKS4 and method 00
// from a source outside no_auth).
func TestFrontDoorsOneGateway(t *testing.T) {
	env := realm.Get(t)
	kt := doorsKeytab(t, env)
	methods := []string{"gssapi", "password", "negotiate", "none", "socks4"}
	dests := map[string]string{} // method → its destination, 127.0.0.1:port
	var ports []any
	for _, m := range methods {
		dests[m] = testutil.EchoServer(t)
		_, p, _ := net.SplitHostPort(dests[m])
		ports = append(ports, p)
	}
	g := testutil.StartGateway(t, fmt.Sprintf(doorsConfig, append([]any{kt, env.Realm.Krb5Conf}, ports...)...))
	socksAddr, httpAddr := g.Addr, g.HTTPAddrs()[0]

	doors := []door{
		{"gssapi", "127.0.0.1", func(t *testing.T, dest string) bool {
			d := client.Dialer{Proxy: socksAddr, Config: client.Config{
				Level: encap.LevelConfidentiality,
				Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
					return env.InitiatorConfig("alice", "rcmd/localhost", "")
				},
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", dest)
			var re *client.ReplyError
			if errors.As(err, &re) && re.Reply == socks5.ReplyNotAllowed {
				return false
			}
			if err != nil {
				t.Fatalf("gssapi to %s: %v", dest, err)
			}
			defer c.Close()
			echoThrough(t, c)
			return true
		}},
		{"password", "127.0.0.1", func(t *testing.T, dest string) bool {
			c := dialDoor(t, "127.0.0.1", socksAddr)
			c.Write([]byte{5, 1, 2})
			if sel := readN(t, c, 2); !bytes.Equal(sel, []byte{5, 2}) {
				t.Fatalf("password: method selection % x, want 05 02", sel)
			}
			req, err := socks5.AppendUserPassRequest(nil, socks5.UserPassRequest{Username: "alice", Password: "alice-password-1"})
			if err != nil {
				t.Fatal(err)
			}
			c.Write(req)
			if st := readN(t, c, 2); !bytes.Equal(st, []byte{1, 0}) {
				t.Fatalf("password: status % x, want 01 00", st)
			}
			return socks5Connect(t, c, dest)
		}},
		{"negotiate", "127.0.0.1", func(t *testing.T, dest string) bool {
			c := dialDoor(t, "127.0.0.1", httpAddr)
			_, tok := env.Initiator(t, "alice", "HTTP/localhost", "")
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Negotiate %s\r\n\r\n", dest, dest, base64.StdEncoding.EncodeToString(tok))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil {
				t.Fatalf("negotiate to %s: no response: %v", dest, err)
			}
			switch resp.StatusCode {
			case http.StatusForbidden:
				return false
			case http.StatusOK:
				if br.Buffered() > 0 {
					t.Fatalf("negotiate: %d bytes after the 200 before the tunnel carried anything", br.Buffered())
				}
				echoThrough(t, c)
				return true
			}
			t.Fatalf("negotiate to %s: %s", dest, resp.Status)
			return false
		}},
		{"none", labSource, func(t *testing.T, dest string) bool {
			c := dialDoor(t, labSource, socksAddr)
			c.Write([]byte{5, 1, 0})
			if sel := readN(t, c, 2); !bytes.Equal(sel, []byte{5, 0}) {
				t.Fatalf("none: method selection % x, want 05 00", sel)
			}
			return socks5Connect(t, c, dest)
		}},
		{"socks4", labSource, func(t *testing.T, dest string) bool {
			c := dialDoor(t, labSource, socksAddr)
			rep := socks4Connect(t, c, dest)
			if rep == socks4.ReplyGranted {
				echoThrough(t, c)
				return true
			}
			return false
		}},
	}

	for _, d := range doors {
		for _, to := range methods {
			dest := dests[to]
			allowed, want := d.connect(t, dest), to == d.method
			if allowed != want {
				t.Errorf("%s session to %s's destination: allowed %v, want %v", d.method, to, allowed, want)
			}
			rec := g.WaitRecord(t, func(r audit.Record) bool { return r.Method == d.method && r.Destination == dest })
			wantRule, wantEnd := "(default deny)", audit.EndDenied
			if want {
				wantRule, wantEnd = ruleOf(d.method), audit.EndCompleted
			}
			if rec.Rule != wantRule || rec.EndReason != wantEnd {
				t.Errorf("%s session to %s's destination: record rule %q end %s, want %q %s", d.method, to, rec.Rule, rec.EndReason, wantRule, wantEnd)
			}
			if authenticated := d.method != "none" && d.method != "socks4"; authenticated != (rec.Principal == "alice@EXAMPLE.TEST") {
				t.Errorf("%s record: principal %q", d.method, rec.Principal)
			}
			if d.method != "gssapi" && rec.Level != "clear" {
				t.Errorf("%s record: level %q, want clear", d.method, rec.Level)
			}

			// explain on the same file decides as the gateway did.
			out := explainDoor(t, g.Path, d.method, d.source, dest)
			decision := lineWith(out, "decision:")
			if allowed != strings.HasPrefix(decision, "decision:   ALLOW") || !strings.Contains(decision, rec.Rule) {
				t.Errorf("explain --method %s --dest %s (%s's): %q; the gateway: rule %q, %s\n%s", d.method, dest, to, decision, rec.Rule, rec.EndReason, out)
			}
			if to == "gssapi" && d.method != "gssapi" {
				if want := fmt.Sprintf("no match: method %s not in [gssapi]", d.method); !strings.Contains(lineWith(out, `rule "kerberos-only"`), want) {
					t.Errorf("explain --method %s: rule kerberos-only line %q, want %q", d.method, lineWith(out, `rule "kerberos-only"`), want)
				}
			}
		}
	}

	// Refused at the door: SOCKS4 and method 00 from a source outside
	// no_auth, whatever the destination; explain says so before any rule.
	c := dialDoor(t, "127.0.0.1", socksAddr)
	if rep := socks4Connect(t, c, dests["socks4"]); rep != socks4.ReplyRejected {
		t.Errorf("SOCKS4 from 127.0.0.1: reply %v, want rejected", rep)
	}
	rec := g.WaitRecord(t, func(r audit.Record) bool {
		return r.Method == "socks4" && r.Source.Addr() == netip.MustParseAddr("127.0.0.1")
	})
	if rec.EndReason != audit.EndRefused || rec.Rule != "" {
		t.Errorf("SOCKS4 from 127.0.0.1: record end %s rule %q, want refused before any rule", rec.EndReason, rec.Rule)
	}
	out := explainDoor(t, g.Path, "socks4", "127.0.0.1", dests["socks4"])
	if d := lineWith(out, "decision:"); !strings.Contains(d, "DENY (SOCKS4 reply 0x5b before any rule)") {
		t.Errorf("explain --method socks4 --source 127.0.0.1: %q\n%s", d, out)
	}
	c = dialDoor(t, "127.0.0.1", socksAddr)
	c.Write([]byte{5, 1, 0})
	if sel := readN(t, c, 2); !bytes.Equal(sel, []byte{5, 0xff}) {
		t.Errorf("method 00 from 127.0.0.1: selection % x, want 05 ff", sel)
	}
	out = explainDoor(t, g.Path, "none", "127.0.0.1", dests["none"])
	if d := lineWith(out, "decision:"); !strings.Contains(d, "DENY (method selection answers 05 ff before any rule)") {
		t.Errorf("explain --method none --source 127.0.0.1: %q\n%s", d, out)
	}
}

// ruleOf is the rule of doorsConfig that allows method m.
func ruleOf(m string) string {
	return map[string]string{"gssapi": "kerberos-only", "password": "passwords", "negotiate": "browsers", "none": "lab-none", "socks4": "lab-socks4"}[m]
}

// explainDoor runs `gssocks explain --method m` for a request from
// source to dest; the methods that authenticate are alice's.
func explainDoor(t *testing.T, conf, m, source, dest string) string {
	t.Helper()
	args := []string{"--method", m, "--source", source, "--dest", dest}
	if m != "none" && m != "socks4" {
		args = append(args, "--principal", "alice@EXAMPLE.TEST")
	}
	return runExplain(t, conf, args...)
}

// dialDoor connects to addr from the loopback address from.
func dialDoor(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// socks5Connect sends a clear SOCKS5 CONNECT to dest on c: true and an
// echo through it when it succeeds, false when the rules deny it.
func socks5Connect(t *testing.T, c net.Conn, dest string) bool {
	t.Helper()
	a, err := socks5.ParseHostPort(dest)
	if err != nil {
		t.Fatal(err)
	}
	req, err := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: a})
	if err != nil {
		t.Fatal(err)
	}
	c.Write(req)
	rep, _, err := socks5.ReadReply(c)
	switch {
	case err != nil:
		t.Fatalf("CONNECT %s: %v", dest, err)
	case rep == socks5.ReplyNotAllowed:
		return false
	case rep != socks5.ReplySucceeded:
		t.Fatalf("CONNECT %s: reply %s", dest, rep)
	}
	echoThrough(t, c)
	return true
}

// socks4Connect sends a SOCKS4 CONNECT to dest on c and returns the reply.
func socks4Connect(t *testing.T, c net.Conn, dest string) socks4.Reply {
	t.Helper()
	ap := netip.MustParseAddrPort(dest)
	req, err := socks4.AppendRequest(nil, socks4.Request{Command: socks4.CmdConnect, IP: ap.Addr(), Port: ap.Port(), UserID: "lab-user"})
	if err != nil {
		t.Fatal(err)
	}
	c.Write(req)
	rep, _, err := socks4.ReadReply(c)
	if err != nil {
		t.Fatalf("SOCKS4 CONNECT %s: %v", dest, err)
	}
	return rep
}

// echoThrough sends a message through c to an echo server, reads it
// back and closes c.
func echoThrough(t *testing.T, c net.Conn) {
	t.Helper()
	msg := []byte("through the front door")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
	c.Close()
}
