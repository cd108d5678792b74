package server_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/policy"
)

// zonedListener hands out loopback connections that report their peer as
// fe80::1%eth0, as the kernel reports a client on a link-local address:
// the tests may only talk over loopback, so the address is put on the
// connection rather than on the wire.
type zonedListener struct{ net.Listener }

func (l zonedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return zonedConn{c}, nil
}

type zonedConn struct{ net.Conn }

func (zonedConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 40000, Zone: "eth0"}
}

// TestNoAuthZonedSource: method 00 for a link-local client whose address
// carries a zone, when no_auth lists fe80::/10. The server used to test
// no_auth with its own loop over the raw address, which a zone never
// matches, while policy (and explain) dropped the zone; both now ask
// policy.Sources.
func TestNoAuthZonedSource(t *testing.T) {
	for _, c := range []struct {
		noAuth string
		want   byte
	}{
		{"fe80::/10", 0x00},
		{"2001:db8::/32", 0xff},
	} {
		t.Run(c.noAuth, func(t *testing.T) {
			g := startGateway(t, `
no_auth { sources = ["`+c.noAuth+`"] }
rule "link-local" {
  sources    = ["fe80::/10"]
  protection = ["clear"]
}`)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go g.Server().Serve(zonedListener{ln}) // closed by the gateway's shutdown
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
				t.Fatal(err)
			}
			sel := make([]byte, 2)
			if _, err := io.ReadFull(conn, sel); err != nil || sel[0] != 5 || sel[1] != c.want {
				t.Fatalf("method selection %x (%v), want 05 %02x", sel, err, c.want)
			}
		})
	}
}

// TestLevelValuesAgree: the server passes protection levels between encap
// and policy by value (both are the RFC 1961 §4 octet), so the two types
// must name every value alike.
func TestLevelValuesAgree(t *testing.T) {
	for b := range 256 {
		e, p := encap.Level(b), policy.Level(b)
		if e.String() != p.String() {
			t.Errorf("level %d: encap %q, policy %q", b, e, p)
		}
		el, eerr := encap.ParseLevel(e.String())
		pl, perr := policy.ParseLevel(p.String())
		if (eerr == nil) != (perr == nil) || byte(el) != byte(pl) {
			t.Errorf("level %d: encap.ParseLevel %v, %v; policy.ParseLevel %v, %v", b, el, eerr, pl, perr)
		}
	}
}
