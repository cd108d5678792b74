package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks4"
)

// socks4Rules serve SOCKS4 from 127.0.0.1 only: a client bound to
// 127.0.0.2 is outside no_auth. The lab rule admits unauthenticated
// sessions of both kinds at level clear; "staff" is for GSS-API users.
const socks4Rules = `
no_auth {
  sources = ["127.0.0.1/32"]
  socks4  = true
}
rule "alice-only" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.1/32"]
  ports        = ["9"]
  protection   = ["clear"]
}
rule "lab" {
  methods      = ["socks4", "none"]
  destinations = ["127.0.0.0/8", "*.corp.example.test"]
  protection   = ["clear"]
}
rule "staff" {
  principals   = ["*@EXAMPLE.TEST"]
  methods      = ["gssapi"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
}
`

// webServer serves a fixed body on 127.0.0.1:0 and returns its port.
func webServer(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// curl runs Debian's curl with args; it returns stdout and the error
// (with stderr) of a failed transfer.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	requireCurl(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--fail", "--max-time", "20", "--noproxy", ""}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()} // no proxy variables
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, errb.String())
	}
	return out.String(), nil
}

// TestSOCKS4Curl: curl --socks4 and --socks4a from a no_auth source get
// their page through the lab rule, audited with method socks4, the
// USERID as socks4_userid and no principal; from 127.0.0.2 (outside
// no_auth), or with socks4 off, curl gets 0x5b and fails.
func TestSOCKS4Curl(t *testing.T) {
	g := startGateway(t, socks4Rules)
	port := webServer(t, "through socks4\n")
	for _, c := range []struct {
		name, proxy, url, dest, userid string
	}{
		{"socks4", "socks4://127.0.0.1:" + gwPort(g), "http://127.0.0.1:" + port + "/", "127.0.0.1:" + port, ""},
		{"socks4a", "socks4a://127.0.0.1:" + gwPort(g), "http://echo.corp.example.test:" + port + "/", "echo.corp.example.test:" + port, ""},
		{"socks4a with a USERID", "socks4a://alice%40EXAMPLE.TEST@127.0.0.1:" + gwPort(g), "http://echo.corp.example.test:" + port + "/x", "echo.corp.example.test:" + port, "alice@EXAMPLE.TEST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mark := g.mark()
			out, err := curl(t, "--proxy", c.proxy, c.url)
			if err != nil || out != "through socks4\n" {
				t.Fatalf("curl: %q %v\n%s", out, err, g.Log.String())
			}
			g.waitRecordFrom(t, mark, "socks4 session", func(r audit.Record) bool {
				return r.Method == "socks4" && r.Level == "clear" && r.Principal == "" && r.SOCKS4UserID == c.userid &&
					r.Rule == "lab" && r.Command == "connect" && r.Destination == c.dest && r.Replied && r.Reply == 0x5a &&
					r.Dialed.Addr() == netip.MustParseAddr("127.0.0.1") && r.BytesDown > 0 && r.EndReason == audit.EndCompleted
			})
		})
	}
	t.Run("disallowed source", func(t *testing.T) {
		mark := g.mark()
		_, err := curl(t, "--interface", "127.0.0.2", "--proxy", "socks4://127.0.0.1:"+gwPort(g), "http://127.0.0.1:"+port+"/")
		if err == nil {
			t.Fatal("curl from 127.0.0.2 got through")
		}
		r := g.waitRecordFrom(t, mark, "refused socks4", func(r audit.Record) bool {
			return r.Method == "socks4" && r.EndReason == audit.EndRefused && r.Replied && r.Reply == 0x5b
		})
		if r.Source.Addr() != netip.MustParseAddr("127.0.0.2") || r.Dialed.IsValid() || !strings.Contains(r.Detail, "not in no_auth") {
			t.Fatalf("record %+v", r)
		}
		if !strings.Contains(g.Log.String(), "refused: SOCKS4 from a source not in no_auth sources") {
			t.Fatal("no log line for the refusal")
		}
	})
	t.Run("socks4 off", func(t *testing.T) {
		g.tune(t, func(s *server.Settings) { s.SOCKS4 = false })
		defer g.tune(t, func(s *server.Settings) { s.SOCKS4 = true })
		mark := g.mark()
		if _, err := curl(t, "--proxy", "socks4a://127.0.0.1:"+gwPort(g), "http://echo.corp.example.test:"+port+"/"); err == nil {
			t.Fatal("curl got through with socks4 off")
		}
		g.waitRecordFrom(t, mark, "socks4 off", func(r audit.Record) bool {
			return r.Method == "socks4" && r.EndReason == audit.EndRefused && r.Reply == 0x5b && strings.Contains(r.Detail, "not enabled")
		})
	})
	// SOCKS5 and GSS-API on the same listener are unchanged, and their
	// method reaches the rules: alice's GSS-API session is decided by
	// "staff" (methods gssapi), not by "lab".
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
	conn, err := d.DialContext(context.Background(), "tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, conn, 1000)
	conn.Close()
	g.waitRecord(t, "gssapi session", func(r audit.Record) bool {
		return r.Method == "gssapi" && r.Principal == "alice@EXAMPLE.TEST" && r.Rule == "staff" && r.SOCKS4UserID == ""
	})
}

func gwPort(g *gateway) string {
	_, p, _ := net.SplitHostPort(g.Addr)
	return p
}

// socks4Request writes req on c.
func socks4Request(t *testing.T, c net.Conn, req socks4.Request) {
	t.Helper()
	b, err := socks4.AppendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readSOCKS4Reply(t *testing.T, c net.Conn) (socks4.Reply, netip.AddrPort) {
	t.Helper()
	rep, ap, err := socks4.ReadReply(c)
	if err != nil {
		t.Fatal(err)
	}
	return rep, ap
}

// TestSOCKS4Bind: a raw SOCKS4 client binds for the expected peer
// 127.0.0.1: the first reply gives the listening address, a connection
// from 127.0.0.2 is dropped, the expected peer's is announced by the
// second reply and relayed. A SOCKS4 USERID naming alice does not make
// the rule for alice match.
func TestSOCKS4Bind(t *testing.T) {
	g := startGateway(t, socks4Rules)
	c := rawDial(t, g)
	socks4Request(t, c, socks4.Request{Command: socks4.CmdBind, IP: netip.MustParseAddr("127.0.0.1"), Port: 1, UserID: "ftp-client"})
	rep, lnAddr := readSOCKS4Reply(t, c)
	if rep != socks4.ReplyGranted || lnAddr.Addr() != netip.MustParseAddr("127.0.0.1") || lnAddr.Port() == 0 {
		t.Fatalf("first reply %v %v", rep, lnAddr)
	}
	// A stranger connects first: dropped, the BIND goes on.
	stranger, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", lnAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	stranger.SetDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(stranger); len(b) != 0 {
		t.Fatalf("the stranger got %q", b)
	}
	stranger.Close()
	peer, err := net.Dial("tcp", lnAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	rep, from := readSOCKS4Reply(t, c)
	if rep != socks4.ReplyGranted || from.String() != peer.LocalAddr().String() {
		t.Fatalf("second reply %v %v, peer %v", rep, from, peer.LocalAddr())
	}
	go testutilEcho(peer)
	roundTrip(t, c, 5000)
	r := g.waitRecord(t, "socks4 bind", func(r audit.Record) bool {
		return r.Method == "socks4" && r.Command == "bind" && r.EndReason == audit.EndCompleted
	})
	if r.Rule != "lab" || r.SOCKS4UserID != "ftp-client" || r.Dialed.String() != peer.LocalAddr().String() || r.Outbound != lnAddr || r.BytesUp != 5000 {
		t.Fatalf("record %+v", r)
	}
	if !strings.Contains(g.Log.String(), "bind: dropped an inbound connection from an unexpected peer") {
		t.Fatal("no log line for the stranger")
	}

	// USERID "alice@EXAMPLE.TEST" to port 9: only "alice-only" would
	// allow it, and it never matches an unauthenticated session; "lab"
	// allows it as an unauthenticated one.
	mark := g.mark()
	c = rawDial(t, g)
	socks4Request(t, c, socks4.Request{Command: socks4.CmdConnect, IP: netip.MustParseAddr("127.0.0.1"), Port: 9, UserID: "alice@EXAMPLE.TEST"})
	readSOCKS4Reply(t, c)
	c.Close()
	r = g.waitRecordFrom(t, mark, "claimed identity", func(r audit.Record) bool { return r.SOCKS4UserID == "alice@EXAMPLE.TEST" })
	if r.Principal != "" || r.Rule == "alice-only" {
		t.Fatalf("a USERID was taken for an identity: %+v", r)
	}
}

func testutilEcho(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// TestSOCKS4Denied: a destination no rule allows for socks4 gets 0x5b,
// recorded as a denial by the rules.
func TestSOCKS4Denied(t *testing.T) {
	g := startGateway(t, `
no_auth {
  sources = ["127.0.0.0/8"]
  socks4  = true
}
rule "gss-only" {
  methods      = ["gssapi"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}`)
	c := rawDial(t, g)
	socks4Request(t, c, socks4.Request{Command: socks4.CmdConnect, IP: netip.MustParseAddr("127.0.0.1"), Port: 80})
	if rep, _ := readSOCKS4Reply(t, c); rep != socks4.ReplyRejected {
		t.Fatalf("reply %v", rep)
	}
	closedByServer(t, c)
	g.waitRecord(t, "denied", func(r audit.Record) bool {
		return r.Method == "socks4" && r.EndReason == audit.EndDenied && r.Rule == "(default deny)" && r.Reply == 0x5b
	})
}

// TestSOCKS4Hostile: malformed SOCKS4 requests end in a clean close (0x5b
// where the request was complete enough to answer), one log line and a
// bad_request record each, and the gateway keeps serving.
func TestSOCKS4Hostile(t *testing.T) {
	g := startGateway(t, socks4Rules)
	g.tune(t, func(s *server.Settings) { s.Timeouts.Negotiation = 2 * time.Second })
	hdr := []byte{4, 1, 0, 80, 127, 0, 0, 1}
	for _, c := range []struct {
		name      string
		send      []byte
		halfClose bool
		reply     bool
		detail    string
	}{
		{"truncated header", []byte{4, 1, 0}, true, false, "request header truncated"},
		{"truncated USERID", append(bytes.Clone(hdr), "abc"...), true, false, "USERID truncated"},
		{"no NUL within the bound", append(bytes.Clone(hdr), bytes.Repeat([]byte{'u'}, 256)...), false, true, "USERID without a NUL within 255 bytes"},
		{"huge USERID", append(bytes.Clone(hdr), bytes.Repeat([]byte{'U'}, 1<<20)...), false, true, "USERID without a NUL within 255 bytes"},
		{"4a with an empty domain", []byte{4, 1, 0, 80, 0, 0, 0, 1, 'x', 0, 0}, false, true, "empty SOCKS4a domain name"},
		{"4a with a control character", append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "a\x1b[31m\x00"...), false, true, "invalid SOCKS4a domain name"},
		{"unknown command", []byte{4, 9, 0, 80, 127, 0, 0, 1, 0}, false, true, "unknown command"},
		{"silent after the version", []byte{4}, false, false, "request header truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mark := g.mark()
			conn := rawDial(t, g)
			go conn.Write(c.send) // the huge one is not read to its end
			if c.halfClose {
				time.Sleep(50 * time.Millisecond)
				conn.(*net.TCPConn).CloseWrite()
			}
			got := closedByServer(t, conn)
			// The huge USERID's unread rest makes the close a reset,
			// which may overtake the reply.
			lost := c.name == "huge USERID" && len(got) == 0
			if want := []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}; c.reply && !lost && !bytes.Equal(got, want) || !c.reply && len(got) != 0 {
				t.Fatalf("got % x", got)
			}
			r := g.waitRecordFrom(t, mark, c.name, func(r audit.Record) bool { return r.Method == "socks4" })
			if r.EndReason != audit.EndBadRequest || !strings.Contains(r.Detail, c.detail) || r.Dialed.IsValid() || r.Level != "none" {
				t.Fatalf("record %+v", r)
			}
		})
	}
	if n := strings.Count(g.Log.String(), "bad SOCKS4 request"); n < 8 {
		t.Fatalf("%d log lines for 8 bad requests", n)
	}
	if strings.Contains(g.Log.String(), "\x1b") {
		t.Fatal("a control character reached the log")
	}
	// Still serving, SOCKS4 and SOCKS5 alike.
	c := rawDial(t, g)
	socks4Request(t, c, socks4.Request{Command: socks4.CmdConnect, Host: "echo.corp.example.test", Port: portOf(t, echoServer(t))})
	if rep, _ := readSOCKS4Reply(t, c); rep != socks4.ReplyGranted {
		t.Fatalf("reply %v", rep)
	}
	roundTrip(t, c, 100)
	stillServing(t, g)
}

func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}
