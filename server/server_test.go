package server_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// gateway is a running gateway on 127.0.0.1:0 with a config from HCL,
// built by package gateway as `gssocks serve` builds it.
type gateway struct {
	srv  *server.Server
	addr string
	log  *testutil.LogBuffer
	env  *krbtest.Env
	gw   *testutil.Gateway
}

const baseConfig = `
kerberos {
  keytab = %q
}
timeouts {
  negotiation = "5s"
  bind = "2s"
}
log {
  level = "debug"
}
%s
`

func startGateway(t testing.TB, rules string) *gateway {
	t.Helper()
	env := realm.Get(t)
	gw := testutil.StartGateway(t, fmt.Sprintf(baseConfig, env.Keytab, rules), testutil.WithResolver(testResolver{}))
	return &gateway{srv: gw.Server(), addr: gw.Addr, log: gw.Log, env: env, gw: gw}
}

// testResolver answers names under .test with loopback addresses only.
type testResolver struct{}

func (testResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	switch strings.TrimSuffix(host, ".") {
	case "echo.corp.example.test", "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case "rebind.corp.example.test": // a permitted name that resolves into a denied range
		return []netip.Addr{netip.MustParseAddr("127.0.0.3")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (g *gateway) config(user string, lvl encap.Level, accept ...encap.Level) client.Config {
	return client.Config{
		Level:        lvl,
		AcceptLevels: accept,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return g.env.InitiatorConfig(user, "rcmd/localhost", "")
		},
	}
}

func echoServer(t testing.TB) string { return testutil.EchoServer(t) }

const allowAll = `
rule "all" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8", "*.corp.example.test"]
  protection   = ["clear", "integrity", "confidentiality"]
}
`

func TestConnectLevels(t *testing.T) {
	g := startGateway(t, allowAll)
	echo := echoServer(t)
	for _, lvl := range []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality} {
		for _, size := range []int{0, 1, 70000, 4 << 20} {
			t.Run(fmt.Sprintf("%s/%d", lvl, size), func(t *testing.T) {
				d := client.Dialer{Proxy: g.addr, Config: g.config("alice", lvl)}
				c, err := d.DialContext(context.Background(), "tcp", echo)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				roundTrip(t, c, size)
			})
		}
	}
	if !strings.Contains(g.log.String(), `principal=alice@EXAMPLE.TEST`) {
		t.Fatal("no audit record names the principal")
	}
}

// roundTrip sends size random bytes through an echo and checks them.
func roundTrip(t *testing.T, c net.Conn, size int) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n != int64(size) || [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes, sent %d; digest equal %t", n, size, [32]byte(h.Sum(nil)) == sha256.Sum256(data))
	}
}

func TestConnectByName(t *testing.T) {
	g := startGateway(t, allowAll)
	_, port, _ := net.SplitHostPort(echoServer(t))
	d := client.Dialer{Proxy: g.addr, Config: g.config("alice", encap.LevelConfidentiality)}
	c, err := d.DialContext(context.Background(), "tcp", "echo.corp.example.test:"+port)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, 1000)
	c.Close()
}

func TestReplyCodes(t *testing.T) {
	g := startGateway(t, `
rule "deny-db" {
  action       = "deny"
  destinations = ["127.0.0.3/32"]
}
rule "all" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8", "*.corp.example.test", "*.invalid.test"]
  protection   = ["integrity", "confidentiality"]
}
`)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	for _, c := range []struct {
		dest string
		want socks5.Reply
	}{
		{refused, socks5.ReplyConnectionRefused},
		{"10.1.2.3:80", socks5.ReplyNotAllowed},                  // no rule: default deny
		{"127.0.0.3:80", socks5.ReplyNotAllowed},                 // deny rule
		{"rebind.corp.example.test:80", socks5.ReplyNotAllowed},  // name allowed, address denied
		{"nowhere.invalid.test:80", socks5.ReplyHostUnreachable}, // NXDOMAIN
	} {
		t.Run(c.dest, func(t *testing.T) {
			d := client.Dialer{Proxy: g.addr, Config: g.config("alice", encap.LevelConfidentiality)}
			_, err := d.DialContext(context.Background(), "tcp", c.dest)
			var re *client.ReplyError
			if !errors.As(err, &re) || re.Reply != c.want {
				t.Fatalf("got %v, want reply %s", err, c.want)
			}
		})
	}
	// The denial came inside the protection and named the rule.
	if !strings.Contains(g.log.String(), `rule=deny-db`) {
		t.Fatal("audit does not name the denying rule")
	}
}

func TestLevelPolicy(t *testing.T) {
	g := startGateway(t, `
rule "auth-only" {
  principals = ["bob@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection = ["clear"]
  auth_only  = true
}
rule "conf-only" {
  principals = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection = ["confidentiality"]
}
`)
	echo := echoServer(t)
	t.Run("asks 1, rule demands 2", func(t *testing.T) {
		s, err := client.Open(context.Background(), g.addr, g.config("alice", encap.LevelIntegrity, encap.LevelIntegrity, encap.LevelConfidentiality))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Level != encap.LevelConfidentiality {
			t.Fatalf("granted %s", s.Level)
		}
		dest, _ := socks5.ParseHostPort(echo)
		if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s.Stream(), 5000)
	})
	t.Run("asks 2, rule is auth-only: 0, then a raw request (curl >= 8.17)", func(t *testing.T) {
		s, err := client.Open(context.Background(), g.addr, g.config("bob", encap.LevelConfidentiality, encap.LevelClear))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Level != encap.LevelClear {
			t.Fatalf("granted %s", s.Level)
		}
		dest, _ := socks5.ParseHostPort(echo)
		if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s.Stream(), 5000)
	})
	t.Run("client refuses the raised level", func(t *testing.T) {
		_, err := client.Open(context.Background(), g.addr, g.config("alice", encap.LevelIntegrity))
		if !errors.Is(err, encap.ErrLevelRefused) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestConnectIPv6: an IPv6 destination (ATYP 4), reply BND.ADDR in IPv6.
func TestConnectIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("IPv6 loopback: %v", err)
	}
	ln.Close()
	g := startGateway(t, `
rule "v6" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["::1/128"]
}`)
	echo := testutil.Serve(t, "[::1]:0", testutil.Echo)
	s, err := client.Open(context.Background(), g.addr, g.config("alice", encap.LevelConfidentiality))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest, _ := socks5.ParseHostPort(echo)
	if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s.Stream(), 10000)
	waitLog(t, g, "destination=["+"::1]")
}

// wire returns the encoding of a socks5.Append* call, failing the test
// on an encoding error.
func wire(t testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}
