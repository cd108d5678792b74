package gateway_test

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
	"github.com/pires/go-proxyproto"
)

// methodReply connects to addr, writes pre (a PROXY header, or nothing)
// and a method selection offering method 00, and returns the gateway's
// two-byte answer, or nil when it closed the connection instead.
func methodReply(t *testing.T, addr string, pre []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(pre, 5, 1, 0)); err != nil {
		return nil
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil
	}
	return b
}

func header(t *testing.T, version byte, src string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1080})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProxyProtocolTrusted pins the PROXY protocol from a trusted peer:
// a v1 or v2 header's source is the client for no_auth (method 00 is
// granted to 192.0.2.0/24 only, which the test can reach only through
// the header) and for the audit record's source; a connection from the
// trusted peer without a header is closed with a log line.
func TestProxyProtocolTrusted(t *testing.T) {
	env := realm.Get(t)
	_, port := echo(t)
	g := testutil.StartGateway(t, conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), port, `
proxy_protocol {
  trusted = ["127.0.0.1/32"]
}
no_auth {
  sources = ["192.0.2.0/24"]
}
`))
	for _, c := range []struct {
		version byte
		src     string
	}{{2, "192.0.2.7:4242"}, {1, "192.0.2.8:5353"}} {
		if got := methodReply(t, g.Addr, header(t, c.version, c.src)); string(got) != "\x05\x00" {
			t.Fatalf("v%d header from %s: method reply %x, want 05 00", c.version, c.src, got)
		}
		want := netip.MustParseAddrPort(c.src)
		g.WaitRecord(t, func(r audit.Record) bool { return r.Source == want })
	}
	if got := methodReply(t, g.Addr, nil); got != nil {
		t.Fatalf("no header from a trusted peer: reply %x, want the connection closed", got)
	}
	testutil.WaitFor(t, "the log line", func() bool {
		return strings.Contains(g.Log.String(), "without a valid PROXY header")
	})
}

// TestProxyProtocolUntrusted pins the refusal of a PROXY header from a
// peer outside proxy_protocol.trusted (the connection is closed, a line
// is logged, the header's address is not believed), and that such a
// peer is still served normally without one; with proxy_protocol off the
// header is refused as the bad greeting it is.
func TestProxyProtocolUntrusted(t *testing.T) {
	env := realm.Get(t)
	_, port := echo(t)
	for _, extra := range []string{"", "proxy_protocol {\n  trusted = [\"10.0.0.0/8\"]\n}\n"} {
		g := testutil.StartGateway(t, conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), port, extra+`
no_auth {
  sources = ["192.0.2.0/24", "127.0.0.1/32"]
}
`))
		if got := methodReply(t, g.Addr, header(t, 2, "192.0.2.7:4242")); got != nil {
			t.Fatalf("%q: header from an untrusted peer: reply %x, want the connection closed", extra, got)
		}
		// With proxy_protocol off the socket is served untouched (kernel
		// splice, half-close) and the header is a bad SOCKS greeting.
		line := "PROXY header from a peer not in proxy_protocol.trusted"
		if extra == "" {
			line = "bad greeting"
		}
		testutil.WaitFor(t, "the log line", func() bool {
			return strings.Contains(g.Log.String(), line)
		})
		if got := methodReply(t, g.Addr, nil); string(got) != "\x05\x00" {
			t.Fatalf("%q: plain connection: reply %x, want 05 00", extra, got)
		}
		for _, r := range g.Records() {
			if r.Source.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("%q: record source %v, want the peer's own address", extra, r.Source)
			}
		}
	}
}

// udpRelay runs a method-00 UDP ASSOCIATE on addr after pre (a PROXY
// header or nothing) and returns BND.ADDR of the reply.
func udpRelay(t *testing.T, addr string, pre []byte) socks5.Addr {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdUDPAssociate, Dest: socks5.Addr{IP: netip.IPv4Unspecified()}})
	if err != nil {
		t.Fatal(err)
	}
	c.Write(append(append(pre, 5, 1, 0), req...))
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || string(sel) != "\x05\x00" {
		t.Fatalf("method selection %x: %v", sel, err)
	}
	rep, bnd, err := socks5.ReadReply(c)
	if err != nil || rep != socks5.ReplySucceeded {
		t.Fatalf("UDP ASSOCIATE reply %v: %v", rep, err)
	}
	if bnd.Port == 0 {
		t.Fatalf("BND.PORT 0")
	}
	return bnd
}

// TestUDPAdvertise pins how the relay address of a UDP ASSOCIATE reply
// is chosen: by default the local address of the client's TCP
// connection (the node's own socket, not the PROXY header's destination,
// which is the balancer's); with udp.advertise, that address, with the
// relay socket's port.
func TestUDPAdvertise(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	const base = `
no_auth {
  sources = ["127.0.0.0/8", "192.0.2.0/24"]
}
proxy_protocol {
  trusted = ["127.0.0.1/32"]
}
rule "lab" {
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}
`
	kb := "kerberos {\n  keytab = \"" + kt + "\"\n}\n"
	g := testutil.StartGateway(t, kb+base)
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4242}, &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 1080})
	pre, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	if bnd := udpRelay(t, g.Addr, pre); bnd.IP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("default BND.ADDR %v, want the node's local address 127.0.0.1", bnd)
	}
	g = testutil.StartGateway(t, kb+base+"udp {\n  advertise = \"203.0.113.10\"\n}\n")
	if bnd := udpRelay(t, g.Addr, pre); bnd.IP != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("advertised BND.ADDR %v, want 203.0.113.10", bnd)
	}
}
