package bridge

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"golang.org/x/sys/unix"
)

// RenderPAC renders the PAC file for listeners at socks and http as
// served to a client that asked at host (for the external tests, which
// run it in node).
func RenderPAC(domains []string, socks, http, host string) (string, error) {
	p, err := newPACFile(domains)
	if err != nil {
		return "", err
	}
	p.socks, p.http = socks, http
	return p.render(host), nil
}

// fakeConn is a connection from a given source, for admit.
type fakeConn struct {
	net.Conn
	remote net.Addr
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4zero, Port: 1080} }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

// TestAdmitSources pins the per-connection source check: loopback
// always, AllowFrom only with AllowRemote (IPv4-mapped sources
// unmapped), and MaxConns.
func TestAdmitSources(t *testing.T) {
	from := func(s string) *fakeConn {
		return &fakeConn{remote: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))}
	}
	remote, err := New(Options{
		Dialer: &client.Dialer{}, SOCKS: "0.0.0.0:0", AllowRemote: true,
		AllowFrom: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		MaxConns:  5,
	})
	if err != nil {
		t.Fatal(err)
	}
	local, err := New(Options{Dialer: &client.Dialer{}, SOCKS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    *Bridge
		src  string
		want bool
	}{
		{remote, "10.1.2.3:5000", true},
		{remote, "[::ffff:10.1.2.3]:5000", true},
		{remote, "[2001:db8::7]:5000", true},
		{remote, "192.0.2.1:5000", false},
		{remote, "[2001:db9::7]:5000", false},
		{remote, "127.0.0.1:5000", true},
		{local, "127.0.0.1:5000", true},
		{local, "[::1]:5000", true},
		{local, "10.1.2.3:5000", false},
	} {
		fc := from(c.src)
		gc := c.b.admit(fc)
		if (gc != nil) != c.want || fc.closed == c.want {
			t.Errorf("source %s: admitted %t, closed %t; want admitted %t", c.src, gc != nil, fc.closed, c.want)
		}
		if gc != nil {
			gc.Close()
		}
	}
	if st := remote.Stats(); st.Refused != 2 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
	var open []*gateConn
	for range 5 {
		gc := remote.admit(from("10.0.0.1:1"))
		if gc == nil {
			t.Fatal("refused below MaxConns")
		}
		open = append(open, gc)
	}
	if gc := remote.admit(from("10.0.0.1:1")); gc != nil {
		t.Fatal("admitted above MaxConns")
	}
	open[0].Close()
	if gc := remote.admit(from("10.0.0.1:1")); gc == nil {
		t.Fatal("refused after a connection closed")
	}
}

// TestProxyFor: a PAC file for listeners on an unspecified address names
// the host the client reached the PAC server by, if it is a plain name
// or address, else 127.0.0.1.
func TestProxyFor(t *testing.T) {
	for _, c := range []struct{ listen, host, want string }{
		{"127.0.0.1:1080", "evil:1", "127.0.0.1:1080"},
		{"0.0.0.0:1080", "gw.example.com:3129", "gw.example.com:1080"},
		{"0.0.0.0:1080", "10.1.2.3", "10.1.2.3:1080"},
		{"[::]:3128", "[2001:db8::1]:3129", "[2001:db8::1]:3128"},
		{"0.0.0.0:1080", `x");alert(1);//`, "127.0.0.1:1080"},
		{"0.0.0.0:1080", "a b", "127.0.0.1:1080"},
		{"0.0.0.0:1080", "", "127.0.0.1:1080"},
	} {
		if got := proxyFor(c.listen, c.host); got != c.want {
			t.Errorf("proxyFor(%q, %q) = %q, want %q", c.listen, c.host, got, c.want)
		}
	}
}

// pacLiterals pulls the two JSON literals out of a rendered PAC file.
func pacLiterals(t testing.TB, pac string) (route string, domains []string) {
	for line := range strings.SplitSeq(pac, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "var bridge = "); ok {
			if err := json.Unmarshal([]byte(strings.TrimSuffix(v, ";")), &route); err != nil {
				t.Fatalf("route literal %q: %v", v, err)
			}
		}
		if v, ok := strings.CutPrefix(line, "var domains = "); ok {
			if err := json.Unmarshal([]byte(strings.TrimSuffix(v, ";")), &domains); err != nil {
				t.Fatalf("domains literal %q: %v", v, err)
			}
		}
	}
	return route, domains
}

// FuzzPAC: whatever the domain and the client's Host, a domain is
// refused or carried exactly, and the route names a plain host.
func FuzzPAC(f *testing.F) {
	f.Add("corp.example.com", "gw:3129")
	f.Add(".intranet", "[::1]:1")
	f.Add(`x");alert(1);//`, `x");alert(1);//`)
	f.Add("a\u2028b", "a\u2028b:1")
	f.Add("</script>", "</script>")
	f.Fuzz(func(t *testing.T, domain, host string) {
		d, err := ValidatePACDomain(domain)
		if err != nil {
			return
		}
		pac, err := RenderPAC([]string{domain}, "0.0.0.0:1080", "[::]:3128", host)
		if err != nil {
			t.Fatal(err)
		}
		route, domains := pacLiterals(t, pac)
		if len(domains) != 1 || domains[0] != d {
			t.Fatalf("domains %q, want [%q]", domains, d)
		}
		for part := range strings.SplitSeq(route, "; ") {
			_, hp, _ := strings.Cut(part, " ")
			h, _, err := net.SplitHostPort(hp)
			if err != nil {
				t.Fatalf("route %q: %v", route, err)
			}
			if _, err := netip.ParseAddr(h); err != nil {
				if _, err := ValidatePACDomain(h); err != nil || strings.HasPrefix(h, ".") {
					t.Fatalf("route %q names host %q", route, h)
				}
			}
		}
	})
}

// tcpPair is both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (accepted, dialed *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.AcceptTCP()
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return a, d
}

// TestRelayReset pins how a reset ends a tunnel. The local client closing
// with the server's last bytes unread (curl after a TLS exchange: its
// close_notify sent, the server's arriving before its close) resets the
// connection: the transfer was complete, the tunnel ends without error
// and the gateway's side is closed. A reset of the gateway's side is an
// error.
func TestRelayReset(t *testing.T) {
	b, err := New(Options{Dialer: &client.Dialer{}, SOCKS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		up, down int64
		err      error
	}
	start := func(c, g net.Conn) chan result {
		done := make(chan result, 1)
		go func() {
			up, down, err := b.relay(c, g)
			done <- result{up, down, err}
		}()
		return done
	}
	wait := func(t *testing.T, done chan result) result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("relay did not end")
			return result{}
		}
	}

	t.Run("local client", func(t *testing.T) {
		c, local := tcpPair(t)
		g, gateway := tcpPair(t)
		done := start(c, g)
		if _, err := local.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(gateway, make([]byte, len("request"))); err != nil {
			t.Fatal(err)
		}
		// The last bytes reach the client, which closes without
		// reading them: its kernel answers with RST instead of FIN.
		if _, err := gateway.Write([]byte("close_notify")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := unreadBytes(local)
			if err != nil {
				t.Fatal(err)
			}
			if n == len("close_notify") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d bytes reached the client", n)
			}
			time.Sleep(time.Millisecond)
		}
		local.Close()
		r := wait(t, done)
		if r.err != nil || r.up != int64(len("request")) || r.down != int64(len("close_notify")) {
			t.Fatalf("relay: up %d down %d, %v", r.up, r.down, r.err)
		}
		gateway.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := gateway.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("gateway side after the client's reset: %d, %v", n, err)
		}
	})

	t.Run("gateway", func(t *testing.T) {
		c, local := tcpPair(t)
		g, gateway := tcpPair(t)
		done := start(c, g)
		gateway.SetLinger(0)
		gateway.Close()
		r := wait(t, done)
		if !errors.Is(r.err, syscall.ECONNRESET) {
			t.Fatalf("relay after the gateway's reset: %v", r.err)
		}
		local.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := local.Read(make([]byte, 1)); err == nil {
			t.Fatal("client side open after the gateway's reset")
		}
	})
}

// unreadBytes is the number of bytes in c's receive queue (TIOCINQ, alias FIONREAD).
func unreadBytes(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}
