package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
)

// httpService is the principal curl and browsers ask a ticket for when
// the proxy is http://localhost:PORT (RFC 4559 §4; the test realm's
// krb5.conf neither canonicalises nor reverse-resolves host names).
const httpService = "HTTP/localhost"

// httpKeytab adds HTTP/localhost to the shared realm (once: a second
// addprinc fails with "already exists") and exports it with the SOCKS
// principals, keys unchanged, into a keytab of the test's own.
func httpKeytab(t *testing.T, env *krbtest.Env) string {
	t.Helper()
	if err := env.Realm.AddService(httpService); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "http.keytab")
	if err := env.Realm.ExportKeytab(kt, append([]string{httpService}, krbtest.Services...)...); err != nil {
		t.Fatal(err)
	}
	return kt
}

// startHTTPGateway runs a gateway with an HTTP proxy listener and rules;
// it returns the gateway and the proxy's address.
func startHTTPGateway(t *testing.T, rules string) (*gateway, string) {
	t.Helper()
	env := realm.Get(t)
	kt := httpKeytab(t, env)
	g := testutil.StartGateway(t, fmt.Sprintf(baseConfig, kt, "", "http_listen = [\"127.0.0.1:3128\"]\n"+rules),
		testutil.WithResolver(testResolver{}))
	addrs := g.HTTPAddrs()
	if len(addrs) != 1 {
		t.Fatalf("HTTP listeners %v", addrs)
	}
	return &gateway{Gateway: g, env: env}, addrs[0]
}

// proxyConn is a raw client connection to the HTTP proxy.
type proxyConn struct {
	net.Conn
	br *bufio.Reader
}

func dialProxy(t *testing.T, addr string) *proxyConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &proxyConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip writes the request head (lines joined with CRLF, the empty
// line added) and reads the response to it.
func (p *proxyConn) roundTrip(t *testing.T, method string, lines ...string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(p, strings.Join(lines, "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(p.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s: no response: %v", lines[0], err)
	}
	return resp
}

// closed reports whether the proxy closed the connection.
func (p *proxyConn) closed(t *testing.T) bool {
	t.Helper()
	p.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := p.br.ReadByte()
	return err == io.EOF
}

// negotiate is the Proxy-Authorization field of a token.
func negotiate(tok []byte) string {
	return "Proxy-Authorization: Negotiate " + base64.StdEncoding.EncodeToString(tok)
}

// answerToken decodes the token of a "Proxy-Authenticate: Negotiate <b64>".
func answerToken(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	v := resp.Header.Values("Proxy-Authenticate")
	if len(v) != 1 || !strings.HasPrefix(v[0], "Negotiate ") {
		t.Fatalf("Proxy-Authenticate %q, want one Negotiate with a token", v)
	}
	tok, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v[0], "Negotiate "))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// spnegoInit wraps a Kerberos InitialContextToken in a SPNEGO
// NegTokenInit (RFC 4178 §4.2.1) offering the Kerberos mechanism only,
// as browsers send it.
func spnegoInit(krb5 []byte) []byte {
	der := func(tag byte, parts ...[]byte) []byte {
		var body []byte
		for _, p := range parts {
			body = append(body, p...)
		}
		n := len(body)
		switch {
		case n < 0x80:
			return append([]byte{tag, byte(n)}, body...)
		case n < 0x100:
			return append([]byte{tag, 0x81, byte(n)}, body...)
		}
		return append([]byte{tag, 0x82, byte(n >> 8), byte(n)}, body...)
	}
	spnegoOID := []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
	krb5OID := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	init := der(0x30, der(0xa0, der(0x30, krb5OID)), der(0xa2, der(0x04, krb5)))
	return der(0x60, spnegoOID, der(0xa0, init))
}

const httpRules = `
rule "web" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
  protection   = ["clear"]
}
`

// TestHTTPProxyConnect: CONNECT without credentials is challenged on a
// connection that stays open; the raw Kerberos token and the SPNEGO one
// on it are accepted through the HTTP acceptor, the 200 carries the
// answer in the client's form (an AP-REP our initiator verifies: mutual
// authentication), the tunnel is raw, and the audit record says
// negotiate, clear, connect.
func TestHTTPProxyConnect(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	g, addr := startHTTPGateway(t, fmt.Sprintf(httpRules, port))
	for _, form := range []string{"krb5", "spnego"} {
		t.Run(form, func(t *testing.T) {
			mark := g.mark()
			p := dialProxy(t, addr)
			resp := p.roundTrip(t, "CONNECT", "CONNECT "+echo+" HTTP/1.1", "Host: "+echo)
			if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") != "Negotiate" ||
				resp.ContentLength <= 0 || resp.Close {
				t.Fatalf("no credentials: %s, Proxy-Authenticate %q, length %d, close %v", resp.Status, resp.Header.Values("Proxy-Authenticate"), resp.ContentLength, resp.Close)
			}
			io.Copy(io.Discard, resp.Body)
			in, tok := g.env.Initiator(t, "alice", httpService, "")
			if form == "spnego" {
				tok = spnegoInit(tok)
			}
			resp = p.roundTrip(t, "CONNECT", "CONNECT "+echo+" HTTP/1.1", "Host: "+echo, negotiate(tok))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("with a token: %s", resp.Status)
			}
			if resp.ContentLength > 0 || len(resp.TransferEncoding) > 0 {
				t.Fatalf("a 2xx to CONNECT has no content (RFC 9110 §9.3.6): length %d, %v", resp.ContentLength, resp.TransferEncoding)
			}
			ans := answerToken(t, resp)
			switch form {
			case "krb5":
				if ans[0] != 0x60 {
					t.Fatalf("raw token answered with % x", ans[:4])
				}
				if _, err := in.Complete(ans); err != nil {
					t.Fatalf("the AP-REP does not verify: %v", err)
				}
			case "spnego":
				if ans[0] != 0xa1 { // NegTokenResp
					t.Fatalf("SPNEGO token answered with % x", ans[:4])
				}
			}
			msg := "hello through the tunnel"
			if _, err := io.WriteString(p, msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(p.br, got); err != nil || string(got) != msg {
				t.Fatalf("echo %q, %v", got, err)
			}
			p.Close()
			r := g.waitRecordFrom(t, mark, "CONNECT session", func(r audit.Record) bool { return r.Command == "connect" })
			if r.Method != "negotiate" || r.Level != "clear" || r.Principal != "alice@EXAMPLE.TEST" || r.Rule != "web" ||
				r.Service != httpService+"@EXAMPLE.TEST" || !r.Replied || r.Reply != 0 || r.BytesUp != int64(len(msg)) || r.EndReason != audit.EndCompleted {
				t.Fatalf("record %v", r.Fields())
			}
			if n := len(g.recordsFrom(mark)); n != 1 {
				t.Fatalf("%d records for one CONNECT (the challenge is none)", n)
			}
		})
	}
}

// TestHTTPProxyRefusals: the hostile cases, each with its status, its
// record and its log line, and no token in the log.
func TestHTTPProxyRefusals(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	g, addr := startHTTPGateway(t, fmt.Sprintf(httpRules, port))
	connect := "CONNECT " + echo + " HTTP/1.1"

	refused := func(t *testing.T, p *proxyConn, resp *http.Response, code int) {
		t.Helper()
		if resp.StatusCode != code {
			t.Fatalf("status %s, want %d", resp.Status, code)
		}
		if code == http.StatusProxyAuthRequired && resp.Header.Get("Proxy-Authenticate") != "Negotiate" {
			t.Fatalf("407 without the challenge: %q", resp.Header.Values("Proxy-Authenticate"))
		}
		io.Copy(io.Discard, resp.Body)
		if !resp.Close || !p.closed(t) {
			t.Fatalf("%d: the connection stays open", code)
		}
	}

	t.Run("garbage base64", func(t *testing.T) {
		mark := g.mark()
		p := dialProxy(t, addr)
		refused(t, p, p.roundTrip(t, "CONNECT", connect, "Proxy-Authorization: Negotiate !!!*not-base64*"), http.StatusProxyAuthRequired)
		g.waitRecordFrom(t, mark, "malformed credentials", func(r audit.Record) bool {
			return r.EndReason == audit.EndAuthFailed && r.Method == "negotiate" && strings.Contains(r.Detail, "not base64")
		})
		waitLogLine(t, g, "malformed Negotiate credentials")
		if strings.Contains(g.Log.String(), "not-base64") {
			t.Fatal("the credentials reached the log")
		}
	})
	t.Run("base64 of no token", func(t *testing.T) {
		mark := g.mark()
		p := dialProxy(t, addr)
		junk := []byte("this is not a GSS-API token at all")
		refused(t, p, p.roundTrip(t, "CONNECT", connect, negotiate(junk)), http.StatusProxyAuthRequired)
		g.waitRecordFrom(t, mark, "bad token", func(r audit.Record) bool { return r.EndReason == audit.EndAuthFailed })
		waitLogLine(t, g, "authentication failed")
		if strings.Contains(g.Log.String(), base64.StdEncoding.EncodeToString(junk)) {
			t.Fatal("the token reached the log")
		}
	})
	t.Run("raw NTLM token", func(t *testing.T) {
		// What Windows clients send without a Kerberos ticket for the
		// proxy: TlRMTVNTUAAB... ("NTLMSSP\0", type 1).
		mark := g.mark()
		p := dialProxy(t, addr)
		ntlm := []byte("NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2\x00\x00\x00\x00\x00\x00\x00\x00")
		refused(t, p, p.roundTrip(t, "CONNECT", connect, negotiate(ntlm)), http.StatusProxyAuthRequired)
		g.waitRecordFrom(t, mark, "NTLM refused", func(r audit.Record) bool {
			return r.EndReason == audit.EndAuthFailed && r.Method == "negotiate" && strings.Contains(r.Detail, "NTLM")
		})
		line := waitLogLine(t, g, "authentication failed", "NTLM", "not supported", "no Kerberos ticket for HTTP/")
		if strings.Contains(line, "defective token") || strings.Contains(line, "first byte") {
			t.Fatalf("NTLM logged as a defective Kerberos token: %s", line)
		}
	})
	t.Run("replayed token on another connection", func(t *testing.T) {
		_, tok := g.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr)
		if resp := p.roundTrip(t, "CONNECT", connect, negotiate(tok)); resp.StatusCode != http.StatusOK {
			t.Fatalf("first use: %s", resp.Status)
		}
		mark := g.mark()
		p2 := dialProxy(t, addr)
		refused(t, p2, p2.roundTrip(t, "CONNECT", connect, negotiate(tok)), http.StatusProxyAuthRequired)
		g.waitRecordFrom(t, mark, "replay", func(r audit.Record) bool {
			return r.EndReason == audit.EndAuthFailed && strings.Contains(r.Detail, "replayed AP-REQ")
		})
		waitLogLine(t, g, "authentication refused: replayed AP-REQ")
		if strings.Contains(g.Log.String(), base64.StdEncoding.EncodeToString(tok)[:40]) {
			t.Fatal("the token reached the log")
		}
	})
	t.Run("token for the SOCKS service", func(t *testing.T) {
		// The HTTP acceptor is for HTTP/ principals only.
		_, tok := g.env.Initiator(t, "alice", "rcmd/localhost", "")
		p := dialProxy(t, addr)
		refused(t, p, p.roundTrip(t, "CONNECT", connect, negotiate(tok)), http.StatusProxyAuthRequired)
	})
	t.Run("denied destination", func(t *testing.T) {
		mark := g.mark()
		_, tok := g.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr)
		resp := p.roundTrip(t, "CONNECT", "CONNECT 127.0.0.1:1 HTTP/1.1", negotiate(tok))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %s, want 403", resp.Status)
		}
		// The answer token comes with the first response after the
		// credentials, whatever its status.
		answerToken(t, resp)
		r := g.waitRecordFrom(t, mark, "denied", func(r audit.Record) bool { return r.EndReason == audit.EndDenied })
		if r.Rule != "(default deny)" || r.Reply != 2 || r.Destination != "127.0.0.1:1" || r.Principal != "alice@EXAMPLE.TEST" || r.Method != "negotiate" {
			t.Fatalf("record %v", r.Fields())
		}
		waitLogLine(t, g, "denied", "127.0.0.1:1")
	})
	t.Run("rule without clear", func(t *testing.T) {
		// The default protection (integrity, confidentiality) never
		// allows an HTTP request: it is decided at level clear.
		g2, addr2 := startHTTPGateway(t, fmt.Sprintf(`
rule "socks-only" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
}
`, port))
		_, tok := g2.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr2)
		if resp := p.roundTrip(t, "CONNECT", connect, negotiate(tok)); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %s, want 403", resp.Status)
		}
		r := g2.waitRecord(t, "denied at clear", func(r audit.Record) bool { return r.EndReason == audit.EndDenied })
		if !strings.Contains(r.Detail, "clear") {
			t.Fatalf("record %v", r.Fields())
		}
	})
	t.Run("unreachable destination", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		_, deadPort, _ := net.SplitHostPort(dead)
		g2, addr2 := startHTTPGateway(t, fmt.Sprintf(httpRules, deadPort))
		_, tok := g2.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr2)
		resp := p.roundTrip(t, "CONNECT", "CONNECT "+dead+" HTTP/1.1", negotiate(tok))
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("refused destination: %s, want 502", resp.Status)
		}
		g2.waitRecord(t, "dial failed", func(r audit.Record) bool { return r.EndReason == audit.EndDialFailed && r.Reply == 5 })
	})
	t.Run("oversized head", func(t *testing.T) {
		p := dialProxy(t, addr)
		big := "X-Big: " + strings.Repeat("a", 70<<10)
		refused(t, p, p.roundTrip(t, "CONNECT", connect, big), http.StatusRequestHeaderFieldsTooLarge)
		waitLogLine(t, g, "bad HTTP request", "status=431")
	})
	t.Run("too many fields", func(t *testing.T) {
		p := dialProxy(t, addr)
		lines := []string{connect}
		for i := range 200 {
			lines = append(lines, fmt.Sprintf("X-F%d: 1", i))
		}
		refused(t, p, p.roundTrip(t, "CONNECT", lines...), http.StatusRequestHeaderFieldsTooLarge)
	})
	t.Run("malformed head", func(t *testing.T) {
		p := dialProxy(t, addr)
		refused(t, p, p.roundTrip(t, "CONNECT", connect, "X-Folded: a", " b"), http.StatusBadRequest)
	})
	t.Run("origin-form request", func(t *testing.T) {
		_, tok := g.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr)
		refused(t, p, p.roundTrip(t, "GET", "GET / HTTP/1.1", "Host: localhost", negotiate(tok)), http.StatusBadRequest)
	})
}

// TestHTTPProxyKeepAlive: one authentication, several forwarded requests
// on the connection, each decided on its own (the second one's
// destination is denied), hop-by-hop fields and the credentials not
// forwarded, one record per request.
func TestHTTPProxyKeepAlive(t *testing.T) {
	seen := make(chan http.Header, 4)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		fmt.Fprintf(w, "path %s host %s", r.URL.Path, r.Host)
	}))
	t.Cleanup(web.Close)
	webAddr := strings.TrimPrefix(web.URL, "http://")
	_, port, _ := net.SplitHostPort(webAddr)
	g, addr := startHTTPGateway(t, fmt.Sprintf(httpRules, port))
	mark := g.mark()
	in, tok := g.env.Initiator(t, "alice", httpService, "")
	p := dialProxy(t, addr)
	resp := p.roundTrip(t, "GET", "GET http://"+webAddr+"/one HTTP/1.1", "Host: spoofed.test", negotiate(tok),
		"Proxy-Connection: keep-alive", "Connection: X-Secret", "X-Secret: 1", "X-Kept: 1")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "path /one host "+webAddr {
		t.Fatalf("first: %s %q", resp.Status, body)
	}
	if _, err := in.Complete(answerToken(t, resp)); err != nil {
		t.Fatalf("mutual authentication on a forwarded response: %v", err)
	}
	h := <-seen
	for _, f := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Secret"} {
		if h.Get(f) != "" {
			t.Errorf("%s forwarded", f)
		}
	}
	if h.Get("X-Kept") != "1" {
		t.Error("an end-to-end field was dropped")
	}
	if h.Get("Via") != "1.1 gssocks" || resp.Header.Get("Via") != "1.1 gssocks" {
		t.Errorf("Via %q on the request, %q on the response (RFC 9110 §7.6.3)", h.Get("Via"), resp.Header.Get("Via"))
	}
	// The same connection, no credentials: the connection is
	// authenticated, and the rules decide the new destination.
	resp = p.roundTrip(t, "GET", "GET http://127.0.0.1:1/two HTTP/1.1", "Host: 127.0.0.1:1")
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusForbidden || resp.Close {
		t.Fatalf("second: %s, close %v", resp.Status, resp.Close)
	}
	resp = p.roundTrip(t, "GET", "GET http://"+webAddr+"/three HTTP/1.1", "Host: "+webAddr)
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "path /three host "+webAddr || len(resp.Header.Values("Proxy-Authenticate")) != 0 {
		t.Fatalf("third: %s %q %q", resp.Status, body, resp.Header.Values("Proxy-Authenticate"))
	}
	p.Close()
	testutil.WaitFor(t, "three records", func() bool { return len(g.recordsFrom(mark)) >= 3 })
	recs := g.recordsFrom(mark)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	if recs[1].EndReason != audit.EndDenied || recs[1].Destination != "127.0.0.1:1" || recs[1].Principal != "alice@EXAMPLE.TEST" {
		t.Fatalf("second record %v", recs[1].Fields())
	}
	for _, r := range recs {
		if r.Method != "negotiate" || r.Level != "clear" {
			t.Fatalf("record %v", r.Fields())
		}
	}
	if recs[0].SessionID == recs[2].SessionID {
		t.Fatal("two requests share a session id")
	}
}

// TestHTTPProxyCurl: Debian's curl with MIT's GSS-API (SPNEGO) as the
// client, through CONNECT to a TLS server and through forwarding to a
// plain one.
func TestHTTPProxyCurl(t *testing.T) {
	requireCurl(t)
	tlsWeb := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls ok") }))
	t.Cleanup(tlsWeb.Close)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			http.Error(w, "credentials forwarded", 500)
			return
		}
		io.WriteString(w, "plain ok")
	}))
	t.Cleanup(web.Close)
	_, tlsPort, _ := net.SplitHostPort(strings.TrimPrefix(tlsWeb.URL, "https://"))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(web.URL, "http://"))
	g, addr := startHTTPGateway(t, fmt.Sprintf(httpRules, port)+fmt.Sprintf(`
rule "tls" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
  protection   = ["clear"]
}
`, tlsPort))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsWeb.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cc, err := g.env.Realm.Kinit("alice", krbtest.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	_, proxyPort, _ := net.SplitHostPort(addr)
	proxy := "http://localhost:" + proxyPort
	curl := func(t *testing.T, url string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "50", "--proxy", proxy, "--proxy-negotiate", "-U", ":",
			"--cacert", ca, url)
		cmd.Env = g.env.Realm.Env("", "FILE:"+cc)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v: %s\nlog:\n%s", url, err, out, g.Log.String())
		}
		return string(out)
	}
	t.Run("https through CONNECT", func(t *testing.T) {
		mark := g.mark()
		// The certificate of httptest names 127.0.0.1 and example.com.
		if out := curl(t, "https://127.0.0.1:"+tlsPort+"/"); out != "tls ok" {
			t.Fatalf("curl: %q", out)
		}
		r := g.waitRecordFrom(t, mark, "curl CONNECT", func(r audit.Record) bool { return r.Command == "connect" && r.Rule == "tls" })
		if r.Method != "negotiate" || r.Principal != "alice@EXAMPLE.TEST" || r.BytesUp == 0 || r.BytesDown == 0 {
			t.Fatalf("record %v", r.Fields())
		}
	})
	t.Run("http forwarded", func(t *testing.T) {
		mark := g.mark()
		if out := curl(t, "http://127.0.0.1:"+port+"/"); out != "plain ok" {
			t.Fatalf("curl: %q", out)
		}
		g.waitRecordFrom(t, mark, "curl forward", func(r audit.Record) bool {
			return r.Rule == "web" && r.Method == "negotiate" && strings.Contains(r.Detail, "GET 200")
		})
	})
	t.Run("denied", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", proxy, "--proxy-negotiate", "-U", ":", "http://127.0.0.1:1/")
		cmd.Env = g.env.Realm.Env("", "FILE:"+cc)
		out, _ := cmd.Output()
		if string(out) != "403" {
			t.Fatalf("curl to a denied destination: %q", out)
		}
	})
}

// TestHTTPProxyLifecycle: the SOCKS sessions' bounds hold for HTTP
// connections: an unauthenticated connection ends at the negotiation
// timeout, a rule's per-principal limit counts HTTP connections, and
// Shutdown's deadline cuts a tunnel with its record saying so.
func TestHTTPProxyLifecycle(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	g, addr := startHTTPGateway(t, fmt.Sprintf(`
rule "web" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
  protection   = ["clear"]
  max_sessions_per_principal = 1
}
`, port))
	connect := "CONNECT " + echo + " HTTP/1.1"

	t.Run("negotiation timeout", func(t *testing.T) {
		g.tune(t, func(st *server.Settings) { st.Timeouts.Negotiation = 300 * time.Millisecond })
		defer g.tune(t, func(st *server.Settings) { st.Timeouts.Negotiation = 20 * time.Second })
		mark := g.mark()
		p := dialProxy(t, addr)
		// The challenge, and then silence.
		resp := p.roundTrip(t, "CONNECT", connect)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusProxyAuthRequired || !p.closed(t) {
			t.Fatal("the unauthenticated connection outlived the negotiation timeout")
		}
		g.waitRecordFrom(t, mark, "timeout", func(r audit.Record) bool {
			return r.EndReason == audit.EndRefused && strings.Contains(r.Detail, "negotiation timeout")
		})
	})
	t.Run("slow head", func(t *testing.T) {
		// A head still incomplete at the negotiation timeout (slowloris)
		// is cut the same way: no 400 claimed in the log nor the record,
		// since no response was sent.
		g.tune(t, func(st *server.Settings) { st.Timeouts.Negotiation = 300 * time.Millisecond })
		defer g.tune(t, func(st *server.Settings) { st.Timeouts.Negotiation = 20 * time.Second })
		mark := g.mark()
		p := dialProxy(t, addr)
		p.Write([]byte(connect + "\r\nHost: a"))
		if !p.closed(t) {
			t.Fatal("a partial head outlived the negotiation timeout")
		}
		g.waitRecordFrom(t, mark, "slow head", func(r audit.Record) bool {
			return r.EndReason == audit.EndRefused && strings.Contains(r.Detail, "negotiation timeout")
		})
		if strings.Contains(g.Log.String(), "bad HTTP request") {
			t.Fatalf("a timed-out head logged as a bad request:\n%s", g.Log.String())
		}
	})
	t.Run("per-principal limit and shutdown", func(t *testing.T) {
		_, tok := g.env.Initiator(t, "alice", httpService, "")
		p := dialProxy(t, addr)
		if resp := p.roundTrip(t, "CONNECT", connect, negotiate(tok)); resp.StatusCode != http.StatusOK {
			t.Fatalf("first: %s", resp.Status)
		}
		mark := g.mark()
		_, tok2 := g.env.Initiator(t, "alice", httpService, "")
		p2 := dialProxy(t, addr)
		resp := p2.roundTrip(t, "CONNECT", connect, negotiate(tok2))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("second while the first holds the limit: %s", resp.Status)
		}
		g.waitRecordFrom(t, mark, "limit", func(r audit.Record) bool {
			return r.EndReason == audit.EndDenied && strings.Contains(r.Detail, "more than 1 sessions")
		})
		mark = g.mark()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := g.Shutdown(ctx); err == nil {
			t.Fatal("Shutdown cut nothing")
		}
		g.waitRecordFrom(t, mark, "cut", func(r audit.Record) bool {
			return r.EndReason == audit.EndShutdown && r.Method == "negotiate" && r.Command == "connect"
		})
	})
}

// TestHTTPProxyForwardBounds: what a destination answers is bounded as
// the client's requests are (a flood of 1xx, a head past the limits: 502
// and close), and a body it ends by closing reaches a keep-alive client
// re-framed as chunked.
func TestHTTPProxyForwardBounds(t *testing.T) {
	reply := func(resp string) func(net.Conn) {
		return func(c net.Conn) {
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, resp)
		}
	}
	flood := testutil.Serve(t, "127.0.0.1:0", reply(strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 20)+"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	big := testutil.Serve(t, "127.0.0.1:0", reply("HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n"))
	unframed := testutil.Serve(t, "127.0.0.1:0", reply("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"))
	g, addr := startHTTPGateway(t, `
rule "web" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}
`)
	for _, tc := range []struct {
		name, dest string
		code       int
		body       string
	}{
		{"1xx flood", flood, http.StatusBadGateway, ""},
		{"head too large", big, http.StatusBadGateway, ""},
		{"body ended by close", unframed, http.StatusOK, "until close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tok := g.env.Initiator(t, "alice", httpService, "")
			p := dialProxy(t, addr)
			resp := p.roundTrip(t, "GET", "GET http://"+tc.dest+"/ HTTP/1.1", "Host: "+tc.dest, negotiate(tok))
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != tc.code {
				t.Fatalf("%s, %v", resp.Status, err)
			}
			if tc.code != http.StatusOK {
				if !resp.Close || !p.closed(t) {
					t.Fatal("the connection stays open after a failed exchange")
				}
				return
			}
			if string(body) != tc.body || !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.Close {
				t.Fatalf("body %q, transfer-encoding %v, close %v", body, resp.TransferEncoding, resp.Close)
			}
			// The connection carries the next request.
			resp = p.roundTrip(t, "GET", "GET http://"+tc.dest+"/ HTTP/1.1", "Host: "+tc.dest)
			if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != tc.body {
				t.Fatalf("second: %s %q", resp.Status, body)
			}
		})
	}
}

// TestHTTPProxyListeningLine: the "listening" line of each listener names
// its front door, so that an operator tells the HTTP proxy's address from
// the SOCKS one's in the log.
func TestHTTPProxyListeningLine(t *testing.T) {
	g, addr := startHTTPGateway(t, "")
	wants := []string{"listening: addr=" + addr + " front_door=http", "listening: addr=" + g.Addr + " front_door=socks"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		log, missing := g.Log.String(), ""
		for _, w := range wants {
			if !strings.Contains(log, w) {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", missing, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
