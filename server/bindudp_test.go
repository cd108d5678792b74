package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
)

func TestBind(t *testing.T) {
	g := startGateway(t, allowAll)
	for _, lvl := range []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			s, err := client.Open(context.Background(), g.Addr, g.config("alice", lvl))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The expected peer: 127.0.0.1, any port.
			bnd, err := s.Request(socks5.CmdBind, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
			if err != nil {
				t.Fatal(err)
			}
			peer, err := net.Dial("tcp", bnd.String())
			if err != nil {
				t.Fatalf("connect to BND %s: %v", bnd, err)
			}
			defer peer.Close()
			from, err := s.ReadReply()
			if err != nil {
				t.Fatal(err)
			}
			if from.String() != peer.LocalAddr().String() {
				t.Fatalf("second reply names %s, peer is %s", from, peer.LocalAddr())
			}
			msg := []byte("from the peer")
			peer.Write(msg)
			peer.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(s.Stream())
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("got %q: %v", got, err)
			}
			s.Close()
			// Dialed is the accepted peer, outbound the listening socket.
			g.waitRecord(t, "BIND at "+lvl.String(), func(r audit.Record) bool {
				return r.Command == "bind" && r.Level == lvl.String() && r.Dialed.String() == peer.LocalAddr().String() &&
					r.Outbound.String() == bnd.String() && r.Reply == 0 && r.BytesDown == int64(len(msg)) && r.EndReason == audit.EndCompleted
			})
		})
	}
	t.Run("timeout", func(t *testing.T) {
		s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Request(socks5.CmdBind, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")}); err != nil {
			t.Fatal(err)
		}
		_, err = s.ReadReply() // the configured bind timeout is 2s
		var re *client.ReplyError
		if !errors.As(err, &re) || re.Reply != socks5.ReplyTTLExpired {
			t.Fatalf("got %v, want TTL expired", err)
		}
		g.waitRecord(t, "BIND without a peer", func(r audit.Record) bool {
			return r.Command == "bind" && r.Reply == uint8(socks5.ReplyTTLExpired) && r.EndReason == audit.EndDialFailed && !r.Dialed.IsValid()
		})
		stillServing(t, g)
	})
}

// udpEcho answers each datagram with "echo:" + payload.
func udpEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDPAssociate(t *testing.T) {
	g := startGateway(t, allowAll)
	echo := udpEcho(t)
	for _, lvl := range []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			s, err := client.Open(context.Background(), g.Addr, g.config("alice", lvl))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			local, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
			defer local.Close()
			a, err := s.Associate(local)
			if err != nil {
				t.Fatal(err)
			}
			local.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 70000)
			for i, size := range []int{0, 1, 1000, 60000} {
				payload := bytes.Repeat([]byte{byte('a' + i)}, size)
				if err := a.WriteTo(payload, socks5.AddrFromAddrPort(echo)); err != nil {
					t.Fatal(err)
				}
				n, from, err := a.ReadFrom(buf)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if from.String() != echo.String() || !bytes.Equal(buf[:n], append([]byte("echo:"), payload...)) {
					t.Fatalf("size %d: reply from %s, %d bytes", size, from, n)
				}
			}
			// By name, too.
			if err := a.WriteTo([]byte("named"), socks5.Addr{Host: "echo.corp.example.test", Port: echo.Port()}); err != nil {
				t.Fatal(err)
			}
			if n, _, err := a.ReadFrom(buf); err != nil || string(buf[:n]) != "echo:named" {
				t.Fatalf("by name: %q %v", buf[:n], err)
			}
			s.Close()
			// Outbound is the relay's socket facing destinations.
			g.waitRecord(t, "UDP at "+lvl.String(), func(r audit.Record) bool {
				return r.Command == "udp" && r.Level == lvl.String() && r.Outbound.Port() != 0 && r.Rule == "all" &&
					r.BytesUp == 61001+5 && r.BytesDown == 61001+5+5*5 && r.EndReason == audit.EndCompleted
			})
		})
	}
}

func TestUDPDrops(t *testing.T) {
	g := startGateway(t, `
rule "no-udp-to-3" {
  action = "deny"
  destinations = ["127.0.0.3/32"]
}`+allowAll)
	echo := udpEcho(t)
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelConfidentiality))
	if err != nil {
		t.Fatal(err)
	}
	local, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	defer local.Close()
	a, err := s.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	relay := a.Relay()

	// A datagram from another IP (127.0.0.2) is dropped, even a valid one.
	other, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.WriteToUDPAddrPort(append(wire(t)(socks5.AppendUDPHeader(nil, socks5.AddrFromAddrPort(echo))), "spoof"...), relay)

	// FRAG != 0 is dropped.
	frag := append([]byte{0, 0, 1}, wire(t)(socks5.AppendAddr(nil, socks5.AddrFromAddrPort(echo)))...)
	local.WriteToUDPAddrPort(frag, relay)

	// A denied destination is dropped.
	a.WriteTo([]byte("x"), socks5.Addr{IP: netip.MustParseAddr("127.0.0.3"), Port: echo.Port()})

	// The association still works.
	buf := make([]byte, 100)
	local.SetDeadline(time.Now().Add(5 * time.Second))
	a.WriteTo([]byte("ok"), socks5.AddrFromAddrPort(echo))
	if n, _, err := a.ReadFrom(buf); err != nil || string(buf[:n]) != "echo:ok" {
		t.Fatalf("after drops: %q %v", buf[:n], err)
	}

	// After the control connection closes, datagrams go nowhere.
	s.Close()
	time.Sleep(200 * time.Millisecond)
	a.WriteTo([]byte("late"), socks5.AddrFromAddrPort(echo))
	local.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _, err := a.ReadFrom(buf); err == nil {
		t.Fatalf("reply after the control connection closed: %q", buf[:n])
	}
	// The three drops (all before "ok" on the relay socket's queue) are
	// counted; the rule is the one that allowed the association's
	// traffic, not the one that denied a datagram.
	g.waitRecord(t, "UDP with 3 drops", func(r audit.Record) bool {
		return r.Command == "udp" && r.Rule == "all" && r.EndReason == audit.EndCompleted &&
			r.Detail == "udp datagrams dropped: 3" && r.BytesUp == 2 && r.BytesDown == 7
	})
}

// TestUDPRecordFromGoroutines: the association's goroutines record the
// rule (first allowed datagram), the byte counts and the end reason (idle
// timeout) while the session's goroutine waits; under -race this pins
// that they write through the record's lock, not into fields ordered only
// by a WaitGroup. Several associations run at once.
func TestUDPRecordFromGoroutines(t *testing.T) {
	g := startGateway(t, allowAll)
	g.tune(t, func(s *server.Settings) { s.Timeouts.Idle = 300 * time.Millisecond })
	echo := udpEcho(t)
	const n, each = 4, 20
	errc := make(chan error, n)
	for range n {
		go func() {
			errc <- func() error {
				s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelIntegrity))
				if err != nil {
					return err
				}
				defer s.Close()
				local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
				if err != nil {
					return err
				}
				defer local.Close()
				a, err := s.Associate(local)
				if err != nil {
					return err
				}
				local.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 100)
				for range each {
					if err := a.WriteTo([]byte("0123456789"), socks5.AddrFromAddrPort(echo)); err != nil {
						return err
					}
					if _, _, err := a.ReadFrom(buf); err != nil {
						return err
					}
				}
				// Quiet now: the idle timeout ends the association and
				// closes the control connection.
				s.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadAll(s.Stream()); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
					return fmt.Errorf("control connection: %w", err)
				}
				return nil
			}()
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var ok int
		for _, r := range g.recordsFrom(0) {
			if r.Command == "udp" && r.Rule == "all" && r.EndReason == audit.EndIdleTimeout &&
				r.BytesUp == each*10 && r.BytesDown == each*15 {
				ok++
			}
		}
		if ok == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d associations recorded rule, bytes and idle timeout: %v", ok, n, g.recordsFrom(0))
		}
	}
}
