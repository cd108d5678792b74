package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/bridge"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
)

// origin is an HTTP server on loopback answering body, and the request
// header fields it saw as JSON under /headers.
func origin(t *testing.T, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(originHandler(body))
	t.Cleanup(s.Close)
	return s
}

func originHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/headers" {
			json.NewEncoder(w).Encode(r.Header)
			return
		}
		io.WriteString(w, body)
	})
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCurl runs Debian's curl through the bridge: SOCKS5 with the host
// name resolved by the gateway, the HTTP proxy forwarding an http:// URL
// (with the hop-by-hop and proxy fields removed), and https:// through a
// CONNECT tunnel to a TLS server whose certificate curl checks. Each
// request is a session of alice's at confidentiality on the gateway.
func TestCurl(t *testing.T) {
	tool(t, "curl")
	env, g := startGateway(t)
	b, recs := startBridge(t, bridge.Options{Dialer: newDialer(t, env, g.Addr, "confidentiality")})
	body := token(t)
	o := origin(t, body)
	tlsOrigin := httptest.NewTLSServer(originHandler(body))
	t.Cleanup(tlsOrigin.Close)
	cacert := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(cacert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsOrigin.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	oport, tport := port(t, o.Listener.Addr().String()), port(t, tlsOrigin.Listener.Addr().String())
	curl := func(args ...string) string {
		return runTool(t, noProxyEnv(), "curl", append([]string{"-sS", "--fail", "--max-time", "20"}, args...)...)
	}

	t.Run("socks5-hostname", func(t *testing.T) {
		if got := curl("--socks5-hostname", b.SOCKSAddr(), "http://localhost:"+oport+"/"); got != body {
			t.Fatalf("body %q, want %q", got, body)
		}
		r := recs.wait(t, func(r bridge.Record) bool { return r.Method == "socks" && r.Dest == "localhost:"+oport })
		if r.Err != nil || !r.Connected || r.Level != encap.LevelConfidentiality || r.Down < int64(len(body)) || r.Up == 0 {
			t.Fatalf("record %s", r)
		}
		g.WaitRecord(t, func(a audit.Record) bool {
			return a.Destination == "localhost:"+oport && a.Principal == "alice@EXAMPLE.TEST" && a.Level == "confidentiality" && a.Command == "connect"
		})
	})

	t.Run("http-forward", func(t *testing.T) {
		if got := curl("--proxy", "http://"+b.HTTPAddr(), "http://127.0.0.1:"+oport+"/"); got != body {
			t.Fatalf("body %q, want %q", got, body)
		}
		// What the origin saw: no credentials for the proxy, no field
		// named by Connection, nothing naming the local client.
		out := curl("--proxy", "http://"+b.HTTPAddr(), "--proxy-user", "carol:proxy-secret",
			"-H", "Connection: X-Private", "-H", "X-Private: 1", "-H", "X-Kept: 2",
			"http://127.0.0.1:"+oport+"/headers")
		var seen http.Header
		if err := json.Unmarshal([]byte(out), &seen); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, k := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Private", "X-Forwarded-For", "Forwarded"} {
			if v := seen.Get(k); v != "" {
				t.Errorf("origin saw %s: %q", k, v)
			}
		}
		if seen.Get("X-Kept") != "2" {
			t.Errorf("origin did not see X-Kept: %v", seen)
		}
		r := recs.wait(t, func(r bridge.Record) bool { return r.Method == "http" && r.Command == "GET" })
		if r.Err != nil || r.Status != 200 || r.Dest != "127.0.0.1:"+oport || r.Level != encap.LevelConfidentiality || r.Down == 0 {
			t.Fatalf("record %s", r)
		}
	})

	t.Run("https-connect", func(t *testing.T) {
		if got := curl("--proxy", "http://"+b.HTTPAddr(), "--cacert", cacert, "https://127.0.0.1:"+tport+"/"); got != body {
			t.Fatalf("body %q, want %q", got, body)
		}
		r := recs.wait(t, func(r bridge.Record) bool { return r.Method == "http" && r.Command == "connect" })
		if r.Err != nil || r.Dest != "127.0.0.1:"+tport || r.Level != encap.LevelConfidentiality || r.Up == 0 || r.Down == 0 {
			t.Fatalf("record %s", r)
		}
		g.WaitRecord(t, func(a audit.Record) bool {
			return a.Destination == "127.0.0.1:"+tport && a.Principal == "alice@EXAMPLE.TEST" && a.Level == "confidentiality"
		})
	})
}

// TestPython drives the HTTP proxy with Python's standard library:
// http.client's set_tunnel sends CONNECT, then a plain HTTP request
// through the tunnel.
func TestPython(t *testing.T) {
	py := tool(t, "python3")
	env, g := startGateway(t)
	b, recs := startBridge(t, bridge.Options{Dialer: newDialer(t, env, g.Addr, "")})
	body := token(t)
	o := origin(t, body)
	ph, pp, _ := net.SplitHostPort(b.HTTPAddr())
	script := `import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=20)
c.set_tunnel("127.0.0.1", int(sys.argv[3]))
c.request("GET", "/")
r = c.getresponse()
sys.stdout.write("%d %s" % (r.status, r.read().decode()))
`
	out := runTool(t, noProxyEnv(), py, "-c", script, ph, pp, port(t, o.Listener.Addr().String()))
	if out != "200 "+body {
		t.Fatalf("python: %q", out)
	}
	r := recs.wait(t, func(r bridge.Record) bool { return r.Method == "http" && r.Command == "connect" })
	if r.Err != nil || r.Level != encap.LevelConfidentiality || r.Client.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("record %s", r)
	}
}

// TestSOCKSAddressTypes: CONNECT to an IPv4 address, an IPv6 address and
// a domain name, each echoing a payload; a destination the gateway's
// rules deny gets the gateway's reply code (02) from the bridge.
func TestSOCKSAddressTypes(t *testing.T) {
	env, g := startGateway(t)
	b, recs := startBridge(t, bridge.Options{Dialer: newDialer(t, env, g.Addr, "integrity")})
	echo4 := testutil.EchoServer(t)
	dests := map[string]socks5.Addr{
		"ipv4":   socks5.AddrFromAddrPort(netip.MustParseAddrPort(echo4)),
		"domain": {Host: "localhost", Port: netip.MustParseAddrPort(echo4).Port()},
	}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		dests["ipv6"] = socks5.AddrFromAddrPort(netip.MustParseAddrPort(testutil.Serve(t, "[::1]:0", testutil.Echo)))
	} else {
		t.Logf("no IPv6 loopback (%v): IPv6 not tested", err)
	}
	for name, dest := range dests {
		t.Run(name, func(t *testing.T) {
			c, rep, _ := socksDial(t, b.SOCKSAddr(), socks5.CmdConnect, dest)
			if rep != socks5.ReplySucceeded {
				t.Fatalf("reply %s", rep)
			}
			msg := []byte(token(t))
			c.Write(msg)
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo %q, %v", got, err)
			}
			r := recs.wait(t, func(r bridge.Record) bool { return r.Dest == dest.String() })
			if r.Err != nil || r.Level != encap.LevelIntegrity || r.Up != int64(len(msg)) || r.Down != int64(len(msg)) {
				t.Fatalf("record %s", r)
			}
		})
	}
	t.Run("denied", func(t *testing.T) {
		dest := socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: deniedPort}
		_, rep, _ := socksDial(t, b.SOCKSAddr(), socks5.CmdConnect, dest)
		if rep != socks5.ReplyNotAllowed {
			t.Fatalf("reply %s, want %s", rep, socks5.ReplyNotAllowed)
		}
		r := recs.wait(t, func(r bridge.Record) bool { return r.Dest == dest.String() })
		if r.Err == nil || !strings.Contains(r.String(), "error: gateway refused the request: reply 0x02") {
			t.Fatalf("record %s", r)
		}
	})
	t.Run("bind", func(t *testing.T) {
		_, rep, _ := socksDial(t, b.SOCKSAddr(), socks5.CmdBind, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
		if rep != socks5.ReplyCommandNotSupported {
			t.Fatalf("reply %s", rep)
		}
	})
	t.Run("no-acceptable-method", func(t *testing.T) {
		c, err := net.Dial("tcp", b.SOCKSAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{5, 1, byte(socks5.MethodGSSAPI)})
		got, _ := io.ReadAll(c)
		if !bytes.Equal(got, []byte{5, 0xff}) {
			t.Fatalf("answer %x, want 05ff", got)
		}
	})
}

// TestHTTPRefusals: the gateway's refusal is an HTTP status with the
// reason: 403 for its rules (CONNECT and forwarded requests), 502 when
// the gateway cannot be reached.
func TestHTTPRefusals(t *testing.T) {
	env, g := startGateway(t)
	b, _ := startBridge(t, bridge.Options{Dialer: newDialer(t, env, g.Addr, "")})
	denied := fmt.Sprintf("127.0.0.1:%d", deniedPort)
	for _, c := range []struct{ name, method, target string }{
		{"connect", http.MethodConnect, denied},
		{"forward", http.MethodGet, "http://" + denied + "/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawProxyRequest(t, b.HTTPAddr(), c.method, c.target)
			if status != http.StatusForbidden || !strings.Contains(body, "reply 0x02") || !strings.Contains(body, "rules do not allow") {
				t.Fatalf("status %d, body %q", status, body)
			}
		})
	}
	t.Run("gateway-unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		b2, _ := startBridge(t, bridge.Options{Dialer: newDialer(t, env, dead, "")})
		status, body := rawProxyRequest(t, b2.HTTPAddr(), http.MethodConnect, "127.0.0.1:80")
		if status != http.StatusBadGateway || !strings.Contains(body, "cannot connect to the gateway") {
			t.Fatalf("status %d, body %q", status, body)
		}
	})
	t.Run("not-a-proxy-request", func(t *testing.T) {
		resp, err := http.Get("http://" + b.HTTPAddr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// rawProxyRequest sends one request line to the proxy and returns the
// status and body of the answer.
func rawProxyRequest(t *testing.T, proxy, method, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	host := target
	if i := strings.Index(target, "://"); i >= 0 {
		host = strings.SplitN(target[i+3:], "/", 2)[0]
	}
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestUDPAssociate relays datagrams between a SOCKS5 UDP client (written
// here from RFC 1928 §7) and a UDP echo server, to an IPv4 address and to
// a domain name, through the gateway's association.
func TestUDPAssociate(t *testing.T) {
	env, g := startGateway(t)
	b, recs := startBridge(t, bridge.Options{Dialer: newDialer(t, env, g.Addr, "")})
	echo := udpEcho(t, netip.MustParseAddr("127.0.0.1"))
	// The gateway sends a datagram for a name to the name's first
	// address: the echo for "localhost" listens there (127.0.0.1 or ::1,
	// as /etc/hosts says).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	local, err := net.DefaultResolver.LookupNetIP(ctx, "ip", "localhost")
	if err != nil || len(local) == 0 {
		t.Fatalf("localhost: %v, %v", local, err)
	}
	echoByName := udpEcho(t, local[0].Unmap())
	ctl, rep, bnd := socksDial(t, b.SOCKSAddr(), socks5.CmdUDPAssociate, socks5.Addr{IP: netip.IPv4Unspecified()})
	if rep != socks5.ReplySucceeded {
		t.Fatalf("reply %s", rep)
	}
	if !bnd.IP.IsLoopback() || bnd.Port == 0 {
		t.Fatalf("relay address %s", bnd)
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	relay := netip.AddrPortFrom(bnd.IP, bnd.Port)
	for _, dest := range []socks5.Addr{
		socks5.AddrFromAddrPort(echo),
		{Host: "localhost", Port: echoByName.Port()},
	} {
		msg := []byte(token(t))
		pkt, err := socks5.AppendUDPHeader(nil, dest)
		if err != nil {
			t.Fatal(err)
		}
		pkt = append(pkt, msg...)
		var got []byte
		var src socks5.Addr
		// UDP may drop: a few tries.
		for try := 0; try < 5 && got == nil; try++ {
			if _, err := u.WriteToUDPAddrPort(pkt, relay); err != nil {
				t.Fatal(err)
			}
			u.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 65536)
			n, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				continue
			}
			if from != relay {
				t.Fatalf("datagram from %s, not the relay %s", from, relay)
			}
			s, data, err := socks5.ParseUDPHeader(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			got, src = data, s
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("to %s: echo %q, want %q", dest, got, msg)
		}
		if src.Port != dest.Port {
			t.Fatalf("to %s: source %s", dest, src)
		}
	}
	ctl.Close() // ends the association
	r := recs.wait(t, func(r bridge.Record) bool { return r.Command == "udp" })
	if r.Err != nil || r.Level != encap.LevelConfidentiality || r.Up == 0 || r.Down == 0 || r.Dest != socks5.AddrFromAddrPort(echo).String() {
		t.Fatalf("record %s", r)
	}
	g.WaitRecord(t, func(a audit.Record) bool { return a.Command == "udp" && a.Principal == "alice@EXAMPLE.TEST" })
}

// udpEcho echoes datagrams on ip.
func udpEcho(t *testing.T, ip netip.Addr) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestSealedOnTheWire records the bytes between the bridge and the
// gateway: at confidentiality no piece of a random payload crosses in
// clear, though it arrives intact; at integrity it does (which shows the
// recording sees the payload when it is there).
func TestSealedOnTheWire(t *testing.T) {
	env, g := startGateway(t)
	for _, c := range []struct {
		level   string
		visible bool
	}{{"confidentiality", false}, {"integrity", true}} {
		t.Run(c.level, func(t *testing.T) {
			tapAddr, tp := startTap(t, g.Addr)
			b, recs := startBridge(t, bridge.Options{Dialer: newDialer(t, env, tapAddr, c.level)})
			echo := testutil.EchoServer(t)
			payload := make([]byte, 256<<10)
			rand.Read(payload)
			conn, rep, _ := socksDial(t, b.SOCKSAddr(), socks5.CmdConnect, socks5.AddrFromAddrPort(netip.MustParseAddrPort(echo)))
			if rep != socks5.ReplySucceeded {
				t.Fatalf("reply %s", rep)
			}
			go func() {
				conn.Write(payload)
				conn.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("echo: %d bytes of %d, equal %t, %v", len(got), len(payload), bytes.Equal(got, payload), err)
			}
			r := recs.wait(t, func(r bridge.Record) bool { return r.Command == "connect" })
			if r.Level.String() != c.level {
				t.Fatalf("record %s", r)
			}
			up, down := tp.bytes()
			if len(up) < len(payload) || len(down) < len(payload) {
				t.Fatalf("recorded %d bytes up, %d down for a %d-byte payload", len(up), len(down), len(payload))
			}
			// Windows of 32 bytes every 4 KiB: a sealed payload shows
			// none; one in clear shows all but those a token boundary
			// happens to split (in both directions at once: rare).
			var seen int
			for off := 0; off+32 <= len(payload); off += 4 << 10 {
				w := payload[off : off+32]
				if bytes.Contains(up, w) || bytes.Contains(down, w) {
					seen++
				}
			}
			windows := len(payload) / (4 << 10)
			switch {
			case !c.visible && seen != 0:
				t.Fatalf("%d of %d payload windows in clear between the bridge and the gateway at %s", seen, windows, c.level)
			case c.visible && seen < windows*3/4:
				t.Fatalf("only %d of %d payload windows seen at %s: the recording does not see the stream", seen, windows, c.level)
			}
		})
	}
}

// TestListenAddresses: a listen address off loopback is refused without
// AllowRemote, and AllowRemote needs source networks; loopback ones and
// "localhost" are fine.
func TestListenAddresses(t *testing.T) {
	env := realm.Get(t)
	d := newDialer(t, env, "127.0.0.1:1", "")
	for _, c := range []struct {
		opts bridge.Options
		want string
	}{
		{bridge.Options{SOCKS: "0.0.0.0:1080"}, "refusing to listen on 0.0.0.0:1080, which is not a loopback address"},
		{bridge.Options{HTTP: ":3128"}, "refusing to listen on :3128"},
		{bridge.Options{SOCKS: "127.0.0.1:0", PAC: "[::]:3129", PACDomains: []string{"example.com"}}, "refusing to listen on [::]:3129"},
		{bridge.Options{SOCKS: "10.1.2.3:1080", AllowRemote: true}, "--allow-remote needs --allow-from"},
		{bridge.Options{SOCKS: "127.0.0.1:0", PAC: "127.0.0.1:0"}, "the PAC file needs domains"},
		{bridge.Options{SOCKS: "127.0.0.1:0", PAC: "127.0.0.1:0", PACDomains: []string{`x");alert(1);//`}}, "is not allowed"},
		{bridge.Options{}, "nothing to serve"},
	} {
		c.opts.Dialer = d
		_, err := bridge.New(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
		var re *bridge.RemoteListenError
		if strings.Contains(c.want, "refusing") && !errors.As(err, &re) {
			t.Errorf("%v is not a *RemoteListenError", err)
		}
	}
	for _, a := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0", "127.0.0.2:0"} {
		if _, err := bridge.New(bridge.Options{Dialer: d, SOCKS: a}); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := bridge.New(bridge.Options{Dialer: d, SOCKS: "0.0.0.0:0", AllowRemote: true, AllowFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}); err != nil {
		t.Errorf("allow-remote: %v", err)
	}
}

// TestPACFile fetches the PAC file from the bridge and runs it in node:
// listed domains (and the names below them) go to the HTTP proxy, then
// the SOCKS5 one; everything else direct.
func TestPACFile(t *testing.T) {
	node := tool(t, "node")
	env := realm.Get(t)
	b, _ := startBridge(t, bridge.Options{
		Dialer: newDialer(t, env, "127.0.0.1:1", ""),
		SOCKS:  "127.0.0.1:0", HTTP: "127.0.0.1:0", PAC: "127.0.0.1:0",
		PACDomains: []string{"Corp.Example.com", ".intranet"},
	})
	resp, err := http.Get("http://" + b.PACAddr() + bridge.PACPath)
	if err != nil {
		t.Fatal(err)
	}
	pac, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	via := "PROXY " + b.HTTPAddr() + "; SOCKS5 " + b.SOCKSAddr()
	want := map[string]string{
		"corp.example.com":      via,
		"CORP.example.COM":      via,
		"corp.example.com.":     via,
		"www.corp.example.com":  via,
		"a.b.corp.example.com":  via,
		"wiki.intranet":         via,
		"intranet":              "DIRECT",
		"xcorp.example.com":     "DIRECT",
		"example.com":           "DIRECT",
		"corp.example.com.evil": "DIRECT",
		"www.example.org":       "DIRECT",
	}
	got := runPAC(t, node, string(pac), want)
	for h, w := range want {
		if got[h] != w {
			t.Errorf("FindProxyForURL(%q) = %q, want %q", h, got[h], w)
		}
	}
	if r, err := http.Get("http://" + b.PACAddr() + "/other"); err != nil || r.StatusCode != 404 {
		t.Fatalf("/other: %v %v", r, err)
	}

	// Listening on an unspecified address, the file names the host the
	// client asked it from; a Host field that is not a plain name ends
	// up as 127.0.0.1, and cannot break out of the string.
	for host, wantVia := range map[string]string{
		"gw.example.com:3129":   "PROXY gw.example.com:3128; SOCKS5 gw.example.com:1080",
		`x");throw "pwned";//`:  "PROXY 127.0.0.1:3128; SOCKS5 127.0.0.1:1080",
		"a\u2028 b</script>:80": "PROXY 127.0.0.1:3128; SOCKS5 127.0.0.1:1080",
	} {
		pac, err := bridge.RenderPAC([]string{"corp.example.com"}, "0.0.0.0:1080", "[::]:3128", host)
		if err != nil {
			t.Fatal(err)
		}
		got := runPAC(t, node, pac, map[string]string{"corp.example.com": ""})
		if got["corp.example.com"] != wantVia {
			t.Errorf("asked at %q: %q, want %q", host, got["corp.example.com"], wantVia)
		}
	}
}

// runPAC evaluates FindProxyForURL of pac in node for each host.
func runPAC(t *testing.T, node, pac string, hosts map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	pacPath := filepath.Join(dir, "proxy.pac")
	if err := os.WriteFile(pacPath, []byte(pac), 0o644); err != nil {
		t.Fatal(err)
	}
	var list []string
	for h := range hosts {
		list = append(list, h)
	}
	hostsJSON, _ := json.Marshal(list)
	script := `const fs = require("fs");
const vm = require("vm");
const ctx = vm.createContext({});
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), ctx);
const out = {};
for (const h of JSON.parse(process.argv[2])) out[h] = ctx.FindProxyForURL("http://" + h + "/", h);
process.stdout.write(JSON.stringify(out));
`
	out := runTool(t, nil, node, "-e", script, pacPath, string(hostsJSON))
	got := map[string]string{}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return got
}

// TestShutdownEndsTunnels: Shutdown closes an open tunnel and returns.
func TestShutdownEndsTunnels(t *testing.T) {
	env, g := startGateway(t)
	b, err := bridge.New(bridge.Options{Dialer: newDialer(t, env, g.Addr, ""), SOCKS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	echo := testutil.EchoServer(t)
	c, rep, _ := socksDial(t, b.SOCKSAddr(), socks5.CmdConnect, socks5.AddrFromAddrPort(netip.MustParseAddrPort(echo)))
	if rep != socks5.ReplySucceeded {
		t.Fatalf("reply %s", rep)
	}
	testutil.WaitFor(t, "one active connection", func() bool { return b.Stats().Active == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("tunnel still open after Shutdown")
	}
	if st := b.Stats(); st.Connections != 1 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := net.Dial("tcp", b.SOCKSAddr()); err == nil {
		t.Fatal("listener still open")
	}
}
