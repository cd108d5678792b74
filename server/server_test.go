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
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// gateway is a gateway on 127.0.0.1:0 built from HCL through package
// gateway, as `gssocks serve` builds it (testutil.StartGateway), with the
// test realm's keytab. Its Records are the sessions' audit records; Log
// holds the text log (operational lines at Debug and the audit sink's
// lines), for the few tests whose subject is a log line.
type gateway struct {
	*testutil.Gateway
	env *krbtest.Env
}

// mark is the number of records so far: waitRecordFrom(t, mark, ...)
// looks only at the records of sessions that ended after it.
func (g *gateway) mark() int { return len(g.Records()) }

// recordsFrom returns the records after mark.
func (g *gateway) recordsFrom(mark int) []audit.Record { return g.Records()[mark:] }

// waitRecord waits up to five seconds for a record that pred accepts and
// returns it; what names it in the failure.
func (g *gateway) waitRecord(t testing.TB, what string, pred func(audit.Record) bool) audit.Record {
	t.Helper()
	return g.waitRecordFrom(t, 0, what, pred)
}

func (g *gateway) waitRecordFrom(t testing.TB, mark int, what string, pred func(audit.Record) bool) audit.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := g.recordsFrom(mark)
		for _, r := range recs {
			if pred(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, r := range recs {
				fmt.Fprintln(&b, r.Fields()...)
			}
			t.Fatalf("no audit record: %s; records:\n%s", what, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const baseConfig = `
kerberos {
  keytab = %q
  %s
}
# The client gets its ticket from the KDC between the greeting and the
# AP-REQ: under the whole suite's load that can take seconds.
timeouts {
  negotiation = "20s"
  bind = "2s"
}
log {
  level = "debug"
}
%s
`

// startGateway runs a gateway with the rules (and any other blocks);
// opts, if any, adjust its options before it starts. Destination names
// are looked up with testResolver.
func startGateway(t testing.TB, rules string, opts ...testutil.GatewayOption) *gateway {
	t.Helper()
	return startGatewayKerberos(t, "", rules, opts...)
}

// startGatewayKerberos is startGateway with more attributes in the
// kerberos block.
func startGatewayKerberos(t testing.TB, kerberos, rules string, opts ...testutil.GatewayOption) *gateway {
	t.Helper()
	env := realm.Get(t)
	opts = append([]testutil.GatewayOption{testutil.WithResolver(testResolver{})}, opts...)
	g := testutil.StartGateway(t, fmt.Sprintf(baseConfig, env.Keytab, kerberos, rules), opts...)
	return &gateway{Gateway: g, env: env}
}

// testResolver answers names under .test with loopback addresses only.
// With lookups set it notes every name it is asked.
type testResolver struct{ lookups *lookups }

// lookups are the names a testResolver was asked, in order.
type lookups struct {
	mu    sync.Mutex
	names []string
}

func (l *lookups) add(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, host)
}

func (l *lookups) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

func (r testResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if r.lookups != nil {
		r.lookups.add(host)
	}
	name := strings.TrimSuffix(host, ".")
	switch {
	case name == "echo.corp.example.test", name == "localhost":
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case name == "rebind.corp.example.test": // a permitted name that resolves into a denied range
		return []netip.Addr{netip.MustParseAddr("127.0.0.3")}, nil
	case name == "race.corp.example.test": // a blackholed address first, then a live one
		return []netip.Addr{netip.MustParseAddr("127.0.0.7"), netip.MustParseAddr("127.0.0.1")}, nil
	case name == "compat.corp.example.test": // 127.0.0.1 in the IPv4-compatible IPv6 form
		return []netip.Addr{netip.MustParseAddr("::127.0.0.1")}, nil
	case strings.HasSuffix(name, ".flood.corp.example.test"):
		return []netip.Addr{netip.MustParseAddr("127.0.0.9")}, nil
	case strings.HasPrefix(name, "panic."):
		panic("test resolver: asked " + name)
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
	levels := []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality}
	sizes := []int{0, 1, 70000, 4 << 20}
	for _, lvl := range levels {
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", lvl, size), func(t *testing.T) {
				d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", lvl)}
				c, err := d.DialContext(context.Background(), "tcp", echo)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				roundTrip(t, c, size)
			})
		}
	}
	// One record per session: who, how, where to, and the bytes each way.
	for _, lvl := range levels {
		for _, size := range sizes {
			g.waitRecord(t, fmt.Sprintf("%s, %d bytes", lvl, size), func(r audit.Record) bool {
				return r.Principal == "alice@EXAMPLE.TEST" && r.Realm == "EXAMPLE.TEST" &&
					r.Service == "rcmd/localhost@EXAMPLE.TEST" && r.Method == "gssapi" && r.Enctype != "" &&
					r.Level == lvl.String() && r.Command == "connect" && r.Destination == echo &&
					r.Dialed.String() == echo && r.Rule == "all" && r.Replied && r.Reply == 0 &&
					r.BytesUp == int64(size) && r.BytesDown == int64(size) && r.EndReason == audit.EndCompleted
			})
		}
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
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
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
		rule string
		end  audit.EndReason
	}{
		{refused, socks5.ReplyConnectionRefused, "all", audit.EndDialFailed},
		{"10.1.2.3:80", socks5.ReplyNotAllowed, "(default deny)", audit.EndDenied},          // no rule: default deny
		{"127.0.0.3:80", socks5.ReplyNotAllowed, "deny-db", audit.EndDenied},                // deny rule
		{"rebind.corp.example.test:80", socks5.ReplyNotAllowed, "deny-db", audit.EndDenied}, // name allowed, address denied
		{"nowhere.invalid.test:80", socks5.ReplyHostUnreachable, "", audit.EndDialFailed},   // NXDOMAIN
	} {
		t.Run(c.dest, func(t *testing.T) {
			d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelConfidentiality)}
			_, err := d.DialContext(context.Background(), "tcp", c.dest)
			var re *client.ReplyError
			if !errors.As(err, &re) || re.Reply != c.want {
				t.Fatalf("got %v, want reply %s", err, c.want)
			}
			// The record names the rule that decided and the reply sent.
			g.waitRecord(t, fmt.Sprintf("rule %q, reply %s, end %s", c.rule, c.want, c.end), func(r audit.Record) bool {
				return r.Destination == c.dest && r.Rule == c.rule && r.Replied && r.Reply == uint8(c.want) &&
					r.ReplyText == c.want.String() && r.EndReason == c.end && r.Detail != "" && !r.Dialed.IsValid()
			})
		})
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
		s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity, encap.LevelIntegrity, encap.LevelConfidentiality))
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
		s, err := client.Open(context.Background(), g.Addr, g.config("bob", encap.LevelConfidentiality, encap.LevelClear))
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
		_, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
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
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelConfidentiality))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dest, _ := socks5.ParseHostPort(echo)
	if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s.Stream(), 10000)
	s.Close()
	g.waitRecord(t, "CONNECT to "+echo, func(r audit.Record) bool {
		return r.Destination == echo && r.Dialed.String() == echo && r.Outbound.Addr() == netip.MustParseAddr("::1")
	})
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
