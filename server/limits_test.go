package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// associate opens a UDP ASSOCIATE as user at lvl from a fresh loopback
// socket; the test closes both.
func associate(t *testing.T, g *gateway, user string, lvl encap.Level) (*client.Session, *client.Association, *net.UDPConn, error) {
	t.Helper()
	s, err := client.Open(context.Background(), g.Addr, g.config(user, lvl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	a, err := s.Associate(local)
	return s, a, local, err
}

func isReply(err error, rep socks5.Reply) bool {
	var re *client.ReplyError
	return errors.As(err, &re) && re.Reply == rep
}

// TestPerPrincipalLimitCountsUDP: max_sessions_per_principal counts UDP
// associations like every other session (5 of 5 associations used to
// relay with a limit of 1).
func TestPerPrincipalLimitCountsUDP(t *testing.T) {
	g := startGateway(t, `
rule "one-each" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  max_sessions_per_principal = 1
}`)
	if _, _, _, err := associate(t, g, "alice", encap.LevelIntegrity); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, _, err := associate(t, g, "alice", encap.LevelIntegrity); !isReply(err, socks5.ReplyNotAllowed) {
			t.Fatalf("a second association for alice: %v, want REP 02", err)
		}
	}
	d := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	if _, err := d.DialContext(context.Background(), "tcp", echoServer(t)); !isReply(err, socks5.ReplyNotAllowed) {
		t.Fatalf("a CONNECT for alice while her association runs: %v, want REP 02", err)
	}
	g.waitRecord(t, "the refused association", func(r audit.Record) bool {
		return r.Command == "udp" && r.EndReason == audit.EndDenied && strings.Contains(r.Detail, "more than 1 sessions for alice@EXAMPLE.TEST") &&
			!r.Outbound.IsValid()
	})
	if _, _, _, err := associate(t, g, "bob", encap.LevelIntegrity); err != nil {
		t.Fatalf("bob: %v", err)
	}
}

// TestCommandsDecidedBeforeSockets: BIND (for any peer) and UDP ASSOCIATE
// are decided before anything is opened. A principal whose rules allow
// only connect gets REP 02 as the first and only reply, and its record
// has no outbound socket (the server used to listen, answer 00 with the
// port, and refuse only what came later).
func TestCommandsDecidedBeforeSockets(t *testing.T) {
	g := startGateway(t, `
rule "connect-only" {
  principals = ["alice@EXAMPLE.TEST"]
  commands   = ["connect"]
}`)
	for _, c := range []struct {
		cmd  socks5.Command
		dest socks5.Addr
	}{
		{socks5.CmdBind, socks5.Addr{IP: netip.IPv4Unspecified()}},
		{socks5.CmdBind, socks5.Addr{IP: netip.IPv6Unspecified()}},
		{socks5.CmdUDPAssociate, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 5000}},
	} {
		t.Run(c.cmd.String()+" "+c.dest.String(), func(t *testing.T) {
			mark := g.mark()
			s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if bnd, err := s.Request(c.cmd, c.dest); !isReply(err, socks5.ReplyNotAllowed) {
				t.Fatalf("%s: %v (BND %s), want REP 02", c.cmd, err, bnd)
			}
			s.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if rest, err := io.ReadAll(s.Stream()); len(rest) != 0 || err != nil {
				t.Fatalf("after REP 02: %x, %v", rest, err)
			}
			g.waitRecordFrom(t, mark, "refused before any socket", func(r audit.Record) bool {
				return r.Command == c.cmd.String() && r.EndReason == audit.EndDenied && r.Rule == "(default deny)" &&
					r.Reply == uint8(socks5.ReplyNotAllowed) && !r.Outbound.IsValid() && !r.Dialed.IsValid()
			})
		})
	}
}

// TestBindRefusedPeerDoesNotEndBind: an inbound connection the policy
// refuses is closed, and the BIND goes on waiting for an acceptable peer
// (a refused peer used to end the BIND with REP 02, so anyone able to
// connect first could deny it to the legitimate peer).
func TestBindRefusedPeerDoesNotEndBind(t *testing.T) {
	g := startGateway(t, `
rule "no-peer-5" {
  action       = "deny"
  commands     = ["bind"]
  destinations = ["127.0.0.5/32"]
}`+allowAll)
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bnd, err := s.Request(socks5.CmdBind, socks5.Addr{IP: netip.IPv4Unspecified()})
	if err != nil {
		t.Fatal(err)
	}
	intruder := dialFrom(t, "127.0.0.5", bnd.String())
	intruder.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, intruder); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the refused peer: %v", err)
	}
	peer := dialFrom(t, "127.0.0.1", bnd.String())
	from, err := s.ReadReply()
	if err != nil {
		t.Fatalf("second reply: %v", err)
	}
	if from.String() != peer.LocalAddr().String() {
		t.Fatalf("second reply names %s, the peer is %s", from, peer.LocalAddr())
	}
	peer.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(s.Stream(), buf); err != nil || string(buf) != "hello" {
		t.Fatalf("relay: %q %v", buf, err)
	}
	s.Close()
	peer.Close()
	g.waitRecord(t, "the BIND with its legitimate peer", func(r audit.Record) bool {
		return r.Command == "bind" && r.Rule == "all" && r.Dialed.String() == peer.LocalAddr().String() && r.BytesDown == 5
	})
}

// TestUDPRuleIdleTimeout: a rule's idle_timeout applies to UDP
// associations (they used to get the server's idle timeout, here 5m).
func TestUDPRuleIdleTimeout(t *testing.T) {
	g := startGateway(t, `
rule "short-idle" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  idle_timeout = "300ms"
}`)
	s, _, _, err := associate(t, g, "alice", encap.LevelIntegrity)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, s.Stream())
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Fatalf("the idle association ended after %s", d)
	}
	g.waitRecord(t, "udp idle timeout", func(r audit.Record) bool {
		return r.Command == "udp" && r.Rule == "short-idle" && r.EndReason == audit.EndIdleTimeout
	})
}

// TestUDPNameFloodBounded: 200 000 datagrams to distinct names (names that
// resolve and are allowed, resolve and are denied, or do not resolve, to
// distinct ports) keep the gateway's heap growth under 8 MiB: the
// association's caches of resolutions, decisions and peers are bounded
// (the server used to keep every name and grew by 66 MiB). The
// association still relays afterwards.
func TestUDPNameFloodBounded(t *testing.T) {
	g := startGateway(t, `
rule "deny-low-ports" {
  action       = "deny"
  destinations = ["127.0.0.9/32"]
  ports        = ["1-30000"]
}`+allowAll)
	// The flood's debug lines would be the heap growth measured.
	g.tune(t, func(s *server.Settings) { s.Logger = hclog.NewNullLogger() })
	echo := udpEcho(t)
	s, a, local, err := associate(t, g, "alice", encap.LevelClear)
	if err != nil {
		t.Fatal(err)
	}
	relay := a.Relay()
	buf := make([]byte, 100)
	probe := func() {
		t.Helper()
		local.SetDeadline(time.Now().Add(10 * time.Second))
		if err := a.WriteTo([]byte("probe"), socks5.AddrFromAddrPort(echo)); err != nil {
			t.Fatal(err)
		}
		if n, _, err := a.ReadFrom(buf); err != nil || string(buf[:n]) != "echo:probe" {
			t.Fatalf("probe: %q %v", buf[:n], err)
		}
	}
	probe()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	const total, batch = 200_000, 128
	dgram := make([]byte, 0, 300)
	start := time.Now()
	for i := range total {
		var name string
		switch i % 3 {
		case 0, 1:
			name = fmt.Sprintf("n%d.flood.corp.example.test", i) // resolves to 127.0.0.9; ports 1-30000 denied
		default:
			name = fmt.Sprintf("n%d.nx.test", i) // does not resolve
		}
		port := uint16(1 + i%65535)
		dgram = append(dgram[:0], 0, 0, 0, byte(socks5.AddrTypeDomain), byte(len(name)))
		dgram = append(append(dgram, name...), byte(port>>8), byte(port), 'x')
		if _, err := local.WriteToUDPAddrPort(dgram, relay); err != nil {
			t.Fatal(err)
		}
		if i%batch == batch-1 {
			probe() // the relay has read everything before it: no kernel drops
		}
	}
	probe()
	after := heap()
	t.Logf("%d names in %s; heap %d KiB before, %d KiB after", total, time.Since(start).Round(time.Millisecond), before>>10, after>>10)
	if after > before && after-before > 8<<20 {
		t.Fatalf("the heap grew by %d KiB during the flood", (after-before)>>10)
	}
	s.Close()
	g.waitRecord(t, "the flooded association", func(r audit.Record) bool {
		return r.Command == "udp" && r.EndReason == audit.EndCompleted && strings.HasPrefix(r.Detail, "udp datagrams dropped: ")
	})
}
