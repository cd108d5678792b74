package server_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
)

// destRules allow loopback by name (127.0.0.0/8 is wholly gateway-local,
// so naming it allows it) and the rest of the world without naming any
// gateway-local network.
const destRules = `
rule "loopback" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8", "*.corp.example.test"]
  protection   = ["clear", "integrity", "confidentiality"]
}
rule "anywhere" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["0.0.0.0/0", "::/0"]
  protection   = ["clear", "integrity", "confidentiality"]
}
`

// TestDestinationsAsDialled: every form of a destination is judged and
// dialled as the address the kernel reaches. An IPv4-compatible IPv6
// address (::127.0.0.1) and a name that glibc reads as an address
// ("0177.0.0.1") are 127.0.0.1: judged so and dialled so, the name never
// sent to the resolver (the server used to dial ::127.0.0.1 as IPv6 and
// to look the name up). Names are looked up absolute ("name."), so no
// search domain changes what was judged. The unspecified addresses, as
// addresses or as names, are the gateway itself: refused by the built-in
// gateway-local deny with REP 02 although rule "anywhere" matches, and
// the record says why.
func TestDestinationsAsDialled(t *testing.T) {
	asked := &lookups{}
	g := startGateway(t, destRules, testutil.WithResolver(testResolver{lookups: asked}))
	echo := netip.MustParseAddrPort(echoServer(t))
	port := echo.Port()
	for _, c := range []struct {
		name   string
		dest   socks5.Addr
		lookup string // the name the resolver must be asked, "" for none
	}{
		{"IPv4-compatible IPv6", socks5.Addr{IP: netip.MustParseAddr("::127.0.0.1"), Port: port}, ""},
		{"octal literal as a name", socks5.Addr{Host: "0177.0.0.1", Port: port}, ""},
		{"short literal as a name", socks5.Addr{Host: "127.1", Port: port}, ""},
		{"name, looked up absolute", socks5.Addr{Host: "echo.corp.example.test", Port: port}, "echo.corp.example.test."},
		{"name resolving to the IPv4-compatible form", socks5.Addr{Host: "compat.corp.example.test", Port: port}, "compat.corp.example.test."},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(asked.all())
			mark := g.mark()
			s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Request(socks5.CmdConnect, c.dest); err != nil {
				t.Fatalf("CONNECT %s: %v", c.dest, err)
			}
			roundTrip(t, s.Stream(), 100)
			g.waitRecordFrom(t, mark, "dialled "+echo.String(), func(r audit.Record) bool {
				return r.Dialed == echo && r.Rule == "loopback" && r.EndReason == audit.EndCompleted
			})
			got := asked.all()[before:]
			if want := []string{c.lookup}; c.lookup == "" && len(got) != 0 || c.lookup != "" && !slices.Equal(got, want) {
				t.Fatalf("resolver asked %q, want %q", got, c.lookup)
			}
		})
	}
	for _, c := range []struct {
		name string
		dest socks5.Addr
	}{
		{"0.0.0.0", socks5.Addr{IP: netip.IPv4Unspecified(), Port: port}},
		{"::", socks5.Addr{IP: netip.IPv6Unspecified(), Port: port}},
		{"name 0.0.0.0", socks5.Addr{Host: "0.0.0.0", Port: port}},
		{"name 0", socks5.Addr{Host: "0", Port: port}}, // inet_aton: 0.0.0.0
		{"this network", socks5.Addr{IP: netip.MustParseAddr("0.1.2.3"), Port: port}},
	} {
		dest := c.dest
		t.Run("gateway-local "+c.name, func(t *testing.T) {
			mark := g.mark()
			d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
			_, err := d.DialContext(context.Background(), "tcp", dest.String())
			var re *client.ReplyError
			if !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
				t.Fatalf("CONNECT %s: %v, want REP 02", dest, err)
			}
			g.waitRecordFrom(t, mark, "gateway-local refusal", func(r audit.Record) bool {
				return r.Rule == policy.GatewayLocalRule && r.EndReason == audit.EndDenied && r.Reply == uint8(socks5.ReplyNotAllowed) &&
					strings.HasPrefix(r.Detail, "gateway-local destination: ") && strings.Contains(r.Detail, "the gateway itself") && !r.Dialed.IsValid()
			})
		})
	}
}

// TestUDPDestinationsAsDialled: a UDP request header is normalised like a
// CONNECT's destination. A datagram to ::127.0.0.1 reaches the echo on
// 127.0.0.1 (the server used to send it to the IPv6 address ::127.0.0.1),
// one to 0.0.0.0 is dropped, and the association goes on.
func TestUDPDestinationsAsDialled(t *testing.T) {
	g := startGateway(t, destRules)
	echo := udpEcho(t)
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	a, err := s.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	local.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	a.WriteTo([]byte("local"), socks5.Addr{IP: netip.IPv4Unspecified(), Port: echo.Port()})
	a.WriteTo([]byte("compat"), socks5.Addr{IP: netip.MustParseAddr("::127.0.0.1"), Port: echo.Port()})
	n, from, err := a.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "echo:compat" || from.String() != echo.String() {
		t.Fatalf("reply %q from %s: %v", buf[:n], from, err)
	}
	s.Close()
	g.waitRecord(t, "association with one drop", func(r audit.Record) bool {
		return r.Command == "udp" && r.Detail == "udp datagrams dropped: 1" && r.BytesUp == 6
	})
}

// TestBindExpectedPeerAsDialled: a BIND's expected peer is normalised too:
// ::127.0.0.1 expects 127.0.0.1, and a peer connecting from there is
// accepted (the server used to compare it with the IPv6 address and drop
// it until the bind timeout).
func TestBindExpectedPeerAsDialled(t *testing.T) {
	g := startGateway(t, destRules)
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bnd, err := s.Request(socks5.CmdBind, socks5.Addr{IP: netip.MustParseAddr("::127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	peer := dialFrom(t, "127.0.0.1", bnd.String())
	from, err := s.ReadReply()
	if err != nil {
		t.Fatalf("second reply: %v", err)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Fatalf("second reply names %s, peer is %s", from, peer.LocalAddr())
	}
}

// TestConnectRacesAddresses: a name resolving to a blackholed address and
// then a live one is connected at once (RFC 8305: the next address starts
// after the attempt delay, under one deadline), not after the connect
// timeout, and the record names the address that answered. The server
// used to try the addresses in turn, each with the whole timeout.
func TestConnectRacesAddresses(t *testing.T) {
	g := startGateway(t, allowAll)
	g.tune(t, func(s *server.Settings) { s.Timeouts.Connect = 20 * time.Second })
	echo := netip.MustParseAddrPort(echoServer(t))
	server.Blackholes(t, echo.Port(), "127.0.0.7")
	mark := g.mark()
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The ticket is fetched before the clock starts.
	icfg, err := g.env.InitiatorConfig("alice", "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	d.Config = configWith(icfg, encap.LevelIntegrity)
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", "race.corp.example.test:"+strconv.Itoa(int(echo.Port())))
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	roundTrip(t, c, 1000)
	c.Close()
	if elapsed > 5*time.Second {
		t.Fatalf("REP 00 after %s: the dead address held the live one up", elapsed)
	}
	g.waitRecordFrom(t, mark, "dialled the live address", func(r audit.Record) bool {
		return r.Dialed == echo && r.Reply == 0 && r.EndReason == audit.EndCompleted
	})
}
