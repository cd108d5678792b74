package server_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
)

// udpObserver counts what the server reports of UDP associations.
type udpObserver struct {
	mu      sync.Mutex
	relayed map[server.UDPDirection]int
	dropped map[server.UDPDropReason]int
}

func newUDPObserver() *udpObserver {
	return &udpObserver{relayed: map[server.UDPDirection]int{}, dropped: map[server.UDPDropReason]int{}}
}

func (*udpObserver) Handshake(error, time.Duration) {}
func (*udpObserver) PrincipalLimitRefused()         {}

func (o *udpObserver) UDPRelayed(d server.UDPDirection) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.relayed[d]++
}

func (o *udpObserver) UDPDropped(r server.UDPDropReason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped[r]++
}

// waitRelayed waits up to five seconds for up and down relayed datagrams:
// a datagram is counted once its send returned, which may be after the
// receiver has it.
func (o *udpObserver) waitRelayed(up, down int) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r, _ := o.counts()
		if r[server.UDPUp] >= up && r[server.UDPDown] >= down {
			return
		}
	}
}

func (o *udpObserver) counts() (map[server.UDPDirection]int, map[server.UDPDropReason]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, d := map[server.UDPDirection]int{}, map[server.UDPDropReason]int{}
	for k, v := range o.relayed {
		r[k] = v
	}
	for k, v := range o.dropped {
		d[k] = v
	}
	return r, d
}

// TestUDPDropReasonLabels pins the metric labels of the directions and
// drop reasons: distinct, non-empty, and UDPDropReasons lists each once.
func TestUDPDropReasonLabels(t *testing.T) {
	if server.UDPUp.String() != "up" || server.UDPDown.String() != "down" {
		t.Errorf("directions: %q %q", server.UDPUp, server.UDPDown)
	}
	seen := map[string]bool{}
	for i, r := range server.UDPDropReasons() {
		if int(r) != i {
			t.Errorf("UDPDropReasons()[%d] = %d", i, r)
		}
		l := r.String()
		if l == "" || l == "unknown" || seen[l] {
			t.Errorf("reason %d: label %q (empty, unknown or repeated)", r, l)
		}
		seen[l] = true
	}
	if len(seen) != 13 {
		t.Errorf("%d reasons, want 13: %v", len(seen), seen)
	}
	if got := server.UDPDropReason(200).String(); got != "unknown" {
		t.Errorf("reason 200: %q", got)
	}
}

// TestUDPObserverCounts relays datagrams both ways through a real
// association (confidentiality: every datagram a wrap token) and
// provokes eight drop reasons, each once: a datagram from another IP, one
// that is no wrap token, a sealed one with FRAG 1, a sealed one whose RSV
// is not zero, a denied destination, a name that does not resolve, a
// reply from a host the client did not send to, and a reply that the
// header and wrap token grow past the UDP maximum. The observer must see
// exactly those, and the record the same total.
func TestUDPObserverCounts(t *testing.T) {
	obs := newUDPObserver()
	g := startGateway(t, `
rule "no-udp-to-3" {
  action       = "deny"
  destinations = ["127.0.0.3/32"]
}`+allowAll, testutil.WithServerOption(func(o *server.Options) { o.Observer = obs }))

	// The destination: the test answers for it, to control the replies.
	dest, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	destAddr := dest.LocalAddr().(*net.UDPAddr).AddrPort()
	dest.SetDeadline(time.Now().Add(10 * time.Second))

	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelConfidentiality))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	local.SetDeadline(time.Now().Add(10 * time.Second))
	a, err := s.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	relay := a.Relay()
	// A second sealer on the session's context, for datagrams the client
	// would not write (the context is safe for concurrent use).
	dg, err := encap.NewDatagram(s.Context, s.Level)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(msg []byte) []byte {
		t.Helper()
		out, err := dg.Seal(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	buf := make([]byte, 70000)
	var out netip.AddrPort // the relay's socket facing destinations
	// roundTrip sends msg to dest through the relay and answers reply.
	roundTrip := func(msg, reply string) {
		t.Helper()
		if err := a.WriteTo([]byte(msg), socks5.AddrFromAddrPort(destAddr)); err != nil {
			t.Fatal(err)
		}
		n, from, err := dest.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("at the destination: %q %v", buf[:n], err)
		}
		out = from
		if _, err := dest.WriteToUDPAddrPort([]byte(reply), out); err != nil {
			t.Fatal(err)
		}
		n, src, err := a.ReadFrom(buf)
		if err != nil || string(buf[:n]) != reply || src.String() != destAddr.String() {
			t.Fatalf("at the client: %q from %s: %v", buf[:n], src, err)
		}
	}
	for _, m := range []string{"one", "two", "three"} {
		roundTrip(m, "re:"+m)
	}

	// Client side, in the order the relay reads them.
	other, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	hdr := wire(t)(socks5.AppendUDPHeader(nil, socks5.AddrFromAddrPort(destAddr)))
	other.WriteToUDPAddrPort(seal(append(bytes.Clone(hdr), "spoof"...)), relay) // wrong_source
	local.WriteToUDPAddrPort(append(bytes.Clone(hdr), "bare"...), relay)        // unwrap
	frag := bytes.Clone(hdr)
	frag[2] = 1
	local.WriteToUDPAddrPort(seal(append(frag, "frag"...)), relay) // fragment
	rsv := bytes.Clone(hdr)
	rsv[1] = 1
	local.WriteToUDPAddrPort(seal(append(rsv, "rsv"...)), relay)                                     // malformed_header
	a.WriteTo([]byte("x"), socks5.Addr{IP: netip.MustParseAddr("127.0.0.3"), Port: destAddr.Port()}) // policy_denied
	a.WriteTo([]byte("x"), socks5.Addr{Host: "nowhere.corp.example.test", Port: 9})                  // resolve

	// Destination side.
	stranger, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.WriteToUDPAddrPort([]byte("unasked"), out) // unsolicited
	// The largest IPv4 UDP payload: with the header and the token, the
	// reply cannot be a datagram.
	if _, err := dest.WriteToUDPAddrPort(bytes.Repeat([]byte{'b'}, 65507), out); err != nil { // oversize
		t.Fatal(err)
	}

	// Each relay socket is read in order: once this round trip is done,
	// every drop above is counted.
	roundTrip("last", "re:last")

	obs.waitRelayed(4, 4)
	relayed, dropped := obs.counts()
	if relayed[server.UDPUp] != 4 || relayed[server.UDPDown] != 4 || len(relayed) != 2 {
		t.Errorf("relayed %v, want 4 up and 4 down", relayed)
	}
	want := map[server.UDPDropReason]int{
		server.UDPDropWrongSource:  1,
		server.UDPDropUnwrap:       1,
		server.UDPDropFragment:     1,
		server.UDPDropMalformed:    1,
		server.UDPDropPolicyDenied: 1,
		server.UDPDropResolve:      1,
		server.UDPDropUnsolicited:  1,
		server.UDPDropOversize:     1,
	}
	for _, r := range server.UDPDropReasons() {
		if dropped[r] != want[r] {
			t.Errorf("dropped[%s] = %d, want %d", r, dropped[r], want[r])
		}
	}
	if len(dropped) != len(want) {
		t.Errorf("dropped %v, want %v", dropped, want)
	}

	s.Close()
	g.waitRecord(t, "UDP with 8 drops", func(r audit.Record) bool {
		return r.Command == "udp" && r.EndReason == audit.EndCompleted && r.Detail == "udp datagrams dropped: 8"
	})
}

// TestUDPObserverOversizeClear: at level clear no token limit applies;
// a reply of the largest IPv4 UDP payload is still dropped as oversize
// (its SOCKS header makes it too long), not sent to fail in the kernel.
func TestUDPObserverOversizeClear(t *testing.T) {
	obs := newUDPObserver()
	g := startGateway(t, allowAll, testutil.WithServerOption(func(o *server.Options) { o.Observer = obs }))
	dest, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer dest.Close()
	dest.SetDeadline(time.Now().Add(10 * time.Second))
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelClear))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	local.SetDeadline(time.Now().Add(10 * time.Second))
	a, err := s.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	to := socks5.AddrFromAddrPort(dest.LocalAddr().(*net.UDPAddr).AddrPort())
	buf := make([]byte, 70000)
	if err := a.WriteTo([]byte("hi"), to); err != nil {
		t.Fatal(err)
	}
	_, out, err := dest.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	dest.WriteToUDPAddrPort(bytes.Repeat([]byte{'b'}, 65507), out)
	// 65497 bytes and the 10-byte header fit exactly.
	dest.WriteToUDPAddrPort(bytes.Repeat([]byte{'c'}, 65497), out)
	n, _, err := a.ReadFrom(buf)
	if err != nil || n != 65497 || buf[0] != 'c' {
		t.Fatalf("reply at the limit: %d bytes (%q…): %v", n, buf[:min(n, 1)], err)
	}
	obs.waitRelayed(1, 1)
	relayed, dropped := obs.counts()
	if relayed[server.UDPUp] != 1 || relayed[server.UDPDown] != 1 {
		t.Errorf("relayed %v, want 1 up and 1 down", relayed)
	}
	if dropped[server.UDPDropOversize] != 1 || len(dropped) != 1 {
		t.Errorf("dropped %v, want one oversize", dropped)
	}
}
