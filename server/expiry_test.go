package server_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/socks5"
)

// TestSessionsEndAtTicketExpiry: with a real short ticket from the KDC
// (kinit -l, as a client asks it), alice's CONNECT relay, UDP association
// and BIND relay end when the ticket does (end reason ticket_expired),
// idle or not, while bob's CONNECT, allowed by a rule with
// outlive_ticket, goes on past it. Sessions used to outlive their tickets
// indefinitely.
func TestSessionsEndAtTicketExpiry(t *testing.T) {
	g := startGateway(t, `
rule "bob-outlives" {
  principals     = ["bob@EXAMPLE.TEST"]
  destinations   = ["127.0.0.0/8"]
  outlive_ticket = "1h"
}`+allowAll)
	// Long enough for the sessions to be set up on a loaded CI machine
	// before the tickets end.
	const lifetime = 15 * time.Second
	loginStart := time.Now()
	var alice, bob encap.Level = encap.LevelIntegrity, encap.LevelConfidentiality
	aliceT, err := login(g.env, "alice", krbtest.Users["alice"], lifetime)
	if err != nil {
		t.Fatal(err)
	}
	bobT, err := login(g.env, "bob", krbtest.Users["bob"], lifetime)
	if err != nil {
		t.Fatal(err)
	}
	loginEnd := time.Now()
	echo := echoServer(t)
	dest, _ := socks5.ParseHostPort(echo)
	uecho := udpEcho(t)

	session := func(who string, lvl encap.Level) *client.Session {
		t.Helper()
		icfg := aliceT
		if who == "bob" {
			icfg = bobT
		}
		s, err := client.Open(context.Background(), g.Addr, configWith(icfg, lvl))
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	// alice: CONNECT.
	conn := session("alice", alice)
	if _, err := conn.Request(socks5.CmdConnect, dest); err != nil {
		t.Fatal(err)
	}
	roundTripOpen(t, conn.Stream())
	// alice: UDP ASSOCIATE.
	udp := session("alice", alice)
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	a, err := udp.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	local.SetDeadline(time.Now().Add(5 * time.Second))
	a.WriteTo([]byte("x"), socks5.AddrFromAddrPort(uecho))
	if _, _, err := a.ReadFrom(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	// alice: BIND, and its peer.
	bind := session("alice", alice)
	bnd, err := bind.Request(socks5.CmdBind, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	peer := dialFrom(t, "127.0.0.1", bnd.String())
	if _, err := bind.ReadReply(); err != nil {
		t.Fatal(err)
	}
	// bob: CONNECT under outlive_ticket.
	bobConn := session("bob", bob)
	if _, err := bobConn.Request(socks5.CmdConnect, dest); err != nil {
		t.Fatal(err)
	}

	// alice's three sessions end at the ticket's end time: their control
	// streams see the gateway close them, without any traffic.
	var wg sync.WaitGroup
	ended := make([]time.Time, 3)
	for i, s := range []*client.Session{conn, udp, bind} {
		wg.Go(func() {
			s.Conn.SetReadDeadline(loginEnd.Add(lifetime + 10*time.Second))
			io.Copy(io.Discard, s.Stream())
			ended[i] = time.Now()
		})
	}
	wg.Wait()
	for i, at := range ended {
		if at.Before(loginStart.Add(lifetime-time.Second)) || at.After(loginEnd.Add(lifetime+3*time.Second)) {
			t.Errorf("session %d ended %s after the login, the ticket %s after it", i, at.Sub(loginStart), lifetime)
		}
	}
	for _, cmd := range []string{"connect", "udp", "bind"} {
		g.waitRecord(t, cmd+" ended with the ticket", func(r audit.Record) bool {
			return r.Command == cmd && r.Principal == "alice@EXAMPLE.TEST" && r.EndReason == audit.EndTicketExpired &&
				strings.Contains(r.Detail, "context expired")
		})
	}
	// The BIND's peer was cut too.
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, peer); err != nil {
		t.Errorf("the BIND peer after the ticket's end: %v", err)
	}

	// bob's session outlives his ticket (got last, it ends by loginEnd +
	// lifetime).
	time.Sleep(time.Until(loginEnd.Add(lifetime + 500*time.Millisecond)))
	roundTrip(t, bobConn.Stream(), 1000)
	g.waitRecord(t, "bob's session, completed past the ticket", func(r audit.Record) bool {
		return r.Principal == "bob@EXAMPLE.TEST" && r.Rule == "bob-outlives" && r.EndReason == audit.EndCompleted && r.BytesUp == 1000
	})
}

// roundTripOpen sends a few bytes through an echo and reads them back,
// leaving the stream open.
func roundTripOpen(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
}
