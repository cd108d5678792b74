package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
)

func TestBind(t *testing.T) {
	g := startGateway(t, allowAll)
	for _, lvl := range []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			s, err := client.Open(context.Background(), g.addr, g.config("alice", lvl))
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
		})
	}
	t.Run("timeout", func(t *testing.T) {
		s, err := client.Open(context.Background(), g.addr, g.config("alice", encap.LevelIntegrity))
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
			s, err := client.Open(context.Background(), g.addr, g.config("alice", lvl))
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
	s, err := client.Open(context.Background(), g.addr, g.config("alice", encap.LevelConfidentiality))
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
	waitLog(t, g, "datagram from another address than the client's")

	// FRAG != 0 is dropped.
	frag := append([]byte{0, 0, 1}, wire(t)(socks5.AppendAddr(nil, socks5.AddrFromAddrPort(echo)))...)
	local.WriteToUDPAddrPort(frag, relay)
	waitLog(t, g, "udp datagram dropped")

	// A denied destination is dropped with a log line.
	a.WriteTo([]byte("x"), socks5.Addr{IP: netip.MustParseAddr("127.0.0.3"), Port: echo.Port()})
	waitLog(t, g, "udp datagram denied")

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
	waitLog(t, g, "command=udp")
}
