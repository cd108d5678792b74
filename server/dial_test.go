package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/socks5"
)

// liveServer listens on ip:port (port 0: any) and hands over every
// connection it accepts.
func liveServer(t *testing.T, ip string, port uint16) (netip.AddrPort, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(ip), port).String())
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c:
			default:
				c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).AddrPort(), accepted
}

// blackholes makes each ip:port an address that never answers a SYN, like a
// host that is down behind a filtering router: a real listener whose accept
// backlog is set to 0 and filled by one connection nobody accepts. Linux
// then drops every further SYN (net.ipv4.tcp_abort_on_overflow=0, the
// default), so a dial waits until its context ends. Each one is probed:
// the helper fails the test if a dial gets an answer.
func blackholes(t *testing.T, port uint16, ips ...string) []netip.Addr {
	t.Helper()
	out := make([]netip.Addr, len(ips))
	errs := make([]error, len(ips))
	var wg sync.WaitGroup
	for i, ip := range ips {
		out[i] = netip.MustParseAddr(ip)
		wg.Go(func() { errs[i] = blackhole(t, netip.AddrPortFrom(out[i], port)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}

func blackhole(t *testing.T, ap netip.AddrPort) error {
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return err
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return err
	}
	if lerr != nil {
		return fmt.Errorf("listen %s with backlog 0: %w", ap, lerr)
	}
	for range 4 {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			if isTimeout(err) {
				return nil
			}
			return fmt.Errorf("filling the accept queue of %s: %w", ap, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	return fmt.Errorf("%s still answers with a full accept queue: no blackhole on this system", ap)
}

// synSent counts this host's IPv4 sockets in SYN_SENT toward ap: the
// kernel's view of attempts still running.
func synSent(t *testing.T, ap netip.AddrPort) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "02" { // TCP_SYN_SENT
			continue
		}
		host, portHex, ok := strings.Cut(fields[2], ":")
		if !ok {
			continue
		}
		h, err1 := strconv.ParseUint(host, 16, 32)
		p, err2 := strconv.ParseUint(portHex, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		// The kernel prints the network-order word as a host integer.
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(h))
		if netip.AddrPortFrom(netip.AddrFrom4(b), uint16(p)) == ap {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// noAttemptsLeft fails unless, shortly after DialRace returned, the
// goroutine count is back to base and no SYN_SENT socket toward any of
// dead remains.
func noAttemptsLeft(t *testing.T, base int, port uint16, dead []netip.Addr) {
	t.Helper()
	_ = base // the process-wide count moves with other tests' goroutines
	deadline := time.Now().Add(2 * time.Second)
	for {
		g := attemptGoroutines()
		syn := 0
		for _, a := range dead {
			syn += synSent(t, netip.AddrPortFrom(a, port))
		}
		if g == 0 && syn == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after DialRace: %d attempt goroutines left, %d sockets still in SYN_SENT toward the dead addresses", g, syn)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attemptGoroutines counts the goroutines running a dial attempt of the
// race (server.attempt in their stack), whoever started them.
func attemptGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "gssocks/server.attempt(") {
			count++
		}
	}
	return count
}

func TestDialRaceOrder(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, nil},
		{"v6 first, families alternate", []string{"2001:db8::1", "2001:db8::2", "2001:db8::3", "192.0.2.1", "192.0.2.2"},
			[]string{"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"}},
		{"v4 first leads with v4", []string{"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"},
			[]string{"192.0.2.1", "2001:db8::1", "192.0.2.2", "2001:db8::2"}},
		{"order within a family kept", []string{"2001:db8::9", "192.0.2.9", "192.0.2.1", "2001:db8::1", "192.0.2.5"},
			[]string{"2001:db8::9", "192.0.2.9", "2001:db8::1", "192.0.2.1", "192.0.2.5"}},
		{"one family", []string{"192.0.2.3", "192.0.2.1", "192.0.2.2"}, []string{"192.0.2.3", "192.0.2.1", "192.0.2.2"}},
		{"repeats and invalid dropped", []string{"", "192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "2001:db8::1"},
			[]string{"192.0.2.1", "2001:db8::1"}},
		{"mapped is IPv4, kept as given", []string{"2001:db8::1", "::ffff:192.0.2.1", "2001:db8::2"},
			[]string{"2001:db8::1", "::ffff:192.0.2.1", "2001:db8::2"}},
		{"zones kept apart", []string{"fe80::1%eth0", "fe80::1%eth1", "192.0.2.1"},
			[]string{"fe80::1%eth0", "192.0.2.1", "fe80::1%eth1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in, want []netip.Addr
			for _, s := range tc.in {
				if s == "" {
					in = append(in, netip.Addr{})
					continue
				}
				in = append(in, a(s))
			}
			for _, s := range tc.want {
				want = append(want, a(s))
			}
			got := raceOrder(in)
			if !slices.Equal(got, want) {
				t.Errorf("raceOrder(%v) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

func TestDialRaceAttemptDelayBounds(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 250 * time.Millisecond},
		{time.Millisecond, 100 * time.Millisecond},
		{300 * time.Millisecond, 300 * time.Millisecond},
		{time.Minute, 2 * time.Second},
	} {
		if got := (raceDialer{AttemptDelay: tc.in}).attemptDelay(); got != tc.want {
			t.Errorf("AttemptDelay %v: got %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestDialRaceDeadThenLive pins issue 8 item 7: a dead first address used
// to cost the whole connect timeout (30 s) before the live one was tried.
func TestDialRaceDeadThenLive(t *testing.T) {
	for _, k := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d dead", k), func(t *testing.T) {
			live, accepted := liveServer(t, "127.0.0.1", 0)
			var ips []string
			for i := range k {
				ips = append(ips, fmt.Sprintf("127.0.0.%d", 2+i))
			}
			dead := blackholes(t, live.Port(), ips...)
			base := runtime.NumGoroutine()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			conn, won, err := raceDialer{}.DialRace(ctx, append(slices.Clone(dead), live.Addr()), live.Port())
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("DialRace: %v", err)
			}
			defer conn.Close()
			if won != live {
				t.Errorf("won %v, want %v", won, live)
			}
			// Each dead address runs alone for the attempt delay, then the
			// next starts beside it: the live one starts after k delays.
			if min := time.Duration(k) * defaultAttemptDelay; elapsed < min {
				t.Errorf("connected after %v: sooner than %d attempt delays (%v), the addresses were not raced in order", elapsed, k, min)
			}
			if elapsed > 2*time.Second {
				t.Errorf("connected after %v with a 30 s timeout: the dead addresses were waited for", elapsed)
			}
			select {
			case c := <-accepted:
				c.Close()
			case <-time.After(2 * time.Second):
				t.Error("the live server accepted nothing")
			}
			noAttemptsLeft(t, base, live.Port(), dead)
		})
	}
}

func TestDialRaceAllRefused(t *testing.T) {
	// The live listener only reserves the port; nothing listens on the
	// other loopback addresses, so each answers the SYN with a RST.
	reserved, _ := liveServer(t, "127.0.0.1", 0)
	port := reserved.Port()
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5")}
	if ln, err := net.Listen("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String()); err == nil {
		// ::1 exists and the port is free there: close it to refuse.
		ln.Close()
		addrs = append(addrs, netip.IPv6Loopback())
	} else if os.Getenv("CI") != "" {
		t.Fatalf("no IPv6 loopback with port %d free: %v", port, err)
	}
	var (
		mu     sync.Mutex
		dialed []netip.Addr
	)
	var nd net.Dialer
	d := raceDialer{
		AttemptDelay: maxAttemptDelay,
		// Records which addresses were dialled, then dials for real.
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, netip.MustParseAddrPort(addr).Addr())
			mu.Unlock()
			return nd.DialContext(ctx, network, addr)
		},
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	conn, _, err := d.DialRace(ctx, addrs, port)
	elapsed := time.Since(start)
	if err == nil {
		conn.Close()
		t.Fatal("DialRace succeeded with no listener")
	}
	// A refusal starts the next attempt at once: waiting out the 2 s delay
	// between them would take 2 s per address.
	if elapsed > 1500*time.Millisecond {
		t.Errorf("all refused after %v: a failure did not start the next attempt at once", elapsed)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || replyFor(err) != socks5.ReplyConnectionRefused {
		t.Errorf("err = %v (reply %v), want connection refused (REP 05)", err, replyFor(err))
	}
	var re *raceError
	if !errors.As(err, &re) {
		t.Errorf("err is %T, want *raceError", err)
	}
	for _, a := range addrs {
		if !strings.Contains(err.Error(), netip.AddrPortFrom(a, port).String()) {
			t.Errorf("error %q does not name %v", err, a)
		}
	}
	mu.Lock()
	got := slices.Clone(dialed)
	mu.Unlock()
	if want := raceOrder(addrs); !slices.Equal(got, want) {
		t.Errorf("dialled %v, want exactly %v in race order", got, want)
	}
	noAttemptsLeft(t, base, port, nil)
}

// TestDialRaceAllBlackholed: one overall deadline for every address, not
// one per address.
func TestDialRaceAllBlackholed(t *testing.T) {
	reserved, _ := liveServer(t, "127.0.0.1", 0)
	port := reserved.Port()
	dead := blackholes(t, port, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	base := runtime.NumGoroutine()

	const timeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	conn, _, err := raceDialer{}.DialRace(ctx, dead, port)
	elapsed := time.Since(start)
	if err == nil {
		conn.Close()
		t.Fatal("DialRace reached a blackhole")
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("gave up after %v, want the one %v deadline (not %v per address)", elapsed, timeout, timeout)
	}
	if !isTimeout(err) || replyFor(err) != socks5.ReplyHostUnreachable {
		t.Errorf("err = %v (reply %v), want a timeout (REP 04)", err, replyFor(err))
	}
	noAttemptsLeft(t, base, port, dead)
}

// TestDialRaceRefusedOutranksTimeout: when the first address is silent and
// the second refuses, the reply says what the one host that answered said.
func TestDialRaceRefusedOutranksTimeout(t *testing.T) {
	reserved, _ := liveServer(t, "127.0.0.1", 0)
	port := reserved.Port()
	dead := blackholes(t, port, "127.0.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, _, err := raceDialer{}.DialRace(ctx, append(dead, netip.MustParseAddr("127.0.0.3")), port)
	if err == nil {
		conn.Close()
		t.Fatal("DialRace succeeded")
	}
	if replyFor(err) != socks5.ReplyConnectionRefused {
		t.Errorf("err = %v (reply %v), want REP 05", err, replyFor(err))
	}
}

// TestDialRaceErrorRank pins which failure speaks for the race; the errors
// are the shapes net.Dialer returns.
func TestDialRaceErrorRank(t *testing.T) {
	op := func(addr string, err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)), Err: &os.SyscallError{Syscall: "connect", Err: err}}
	}
	netUnreach := op("[2001:db8::1]:80", syscall.ENETUNREACH)
	refused := op("192.0.2.1:80", syscall.ECONNREFUSED)
	hostUnreach := op("192.0.2.2:80", syscall.EHOSTUNREACH)
	timeout := &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.3:80")), Err: os.ErrDeadlineExceeded}
	other := op("192.0.2.4:80", syscall.EACCES)
	tests := []struct {
		name    string
		errs    []error
		started int
		want    error
		rep     socks5.Reply
	}{
		{"one address: its error as is", []error{refused}, 1, refused, socks5.ReplyConnectionRefused},
		{"IPv6 unroutable does not hide an IPv4 timeout", []error{netUnreach, timeout}, 2, timeout, socks5.ReplyHostUnreachable},
		{"refusal beats timeout", []error{timeout, refused}, 2, refused, socks5.ReplyConnectionRefused},
		{"host unreachable beats timeout", []error{timeout, hostUnreach}, 2, hostUnreach, socks5.ReplyHostUnreachable},
		{"refusal beats host unreachable", []error{hostUnreach, refused, netUnreach}, 3, refused, socks5.ReplyConnectionRefused},
		{"network unreachable everywhere", []error{netUnreach, op("[2001:db8::2]:80", syscall.ENETUNREACH)}, 2, netUnreach, socks5.ReplyNetworkUnreachable},
		{"local error ranks last", []error{other, netUnreach}, 2, netUnreach, socks5.ReplyNetworkUnreachable},
		{"only local errors: general failure", []error{other}, 1, other, socks5.ReplyGeneralFailure},
		{"untried addresses still a raceError", []error{timeout, nil, nil}, 1, timeout, socks5.ReplyHostUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := raceFailure(tc.errs, tc.started)
			if tc.started == 1 && len(tc.errs) == 1 {
				if err != tc.want {
					t.Errorf("got %v, want %v unwrapped", err, tc.want)
				}
			} else {
				var re *raceError
				if !errors.As(err, &re) || re.primary != tc.want {
					t.Errorf("got %v, want a raceError with primary %v", err, tc.want)
				}
			}
			if got := replyFor(err); got != tc.rep {
				t.Errorf("replyFor = %v, want %v", got, tc.rep)
			}
		})
	}

	// The text stays bounded whatever the number of addresses.
	many := make([]error, 200)
	for i := range many {
		many[i] = op(fmt.Sprintf("192.0.2.%d:80", i), syscall.ECONNREFUSED)
	}
	msg := raceFailure(many, 150).Error()
	if len(msg) > 600 || !strings.Contains(msg, "145 more") || !strings.Contains(msg, "50 not tried") {
		t.Errorf("error text for 200 addresses (%d bytes): %s", len(msg), msg)
	}
}

// TestDialRaceLateWinnerClosed: a connection that completes after another
// has won is closed, and the winner is not. Two handshakes cannot be made
// to finish together on loopback, so the first attempt's Dial holds back its
// real, established connection until the race has cancelled it.
func TestDialRaceLateWinnerClosed(t *testing.T) {
	slow, slowAccepted := liveServer(t, "127.0.0.1", 0)
	fast, fastAccepted := liveServer(t, "127.0.0.2", slow.Port())
	var nd net.Dialer
	d := raceDialer{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil && netip.MustParseAddrPort(addr) == slow {
			<-ctx.Done()
		}
		return c, err
	}}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, won, err := d.DialRace(ctx, []netip.Addr{slow.Addr(), fast.Addr()}, slow.Port())
	if err != nil {
		t.Fatalf("DialRace: %v", err)
	}
	defer conn.Close()
	if won != fast {
		t.Fatalf("won %v, want %v", won, fast)
	}
	if ctx.Err() != nil {
		t.Fatal("the race waited for the overall deadline: the losing attempt was not cancelled")
	}

	loser := accept(t, slowAccepted)
	loser.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := loser.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the late connection was not closed: read %d, %v", n, err)
	}

	peer := accept(t, fastAccepted)
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatalf("winner write: %v", err)
	}
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Errorf("the winner does not carry data: %v", err)
	}
	noAttemptsLeft(t, base, slow.Port(), nil)
}

func accept(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-ch:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(2 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

// TestDialRaceInFlightBound: one CONNECT holds at most
// maxAttemptsInFlight sockets, however many silent addresses a name has.
func TestDialRaceInFlightBound(t *testing.T) {
	reserved, _ := liveServer(t, "127.0.0.1", 0)
	port := reserved.Port()
	var ips []string
	for i := range maxAttemptsInFlight + 2 {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	dead := blackholes(t, port, ips...)
	var (
		mu            sync.Mutex
		running, peak int
		seenAttempts  int
	)
	var nd net.Dialer
	d := raceDialer{
		AttemptDelay: minAttemptDelay,
		// Counts the attempts running at once, each a real dial.
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			defer func() { mu.Lock(); running--; mu.Unlock() }()
			if n := attemptGoroutines(); n > 0 {
				mu.Lock()
				seenAttempts = max(seenAttempts, n)
				mu.Unlock()
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	base := runtime.NumGoroutine()
	// Long enough for all attempts to start if nothing held them back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(dead)+3)*minAttemptDelay)
	defer cancel()
	conn, _, err := d.DialRace(ctx, dead, port)
	if err == nil {
		conn.Close()
		t.Fatal("DialRace reached a blackhole")
	}
	if seenAttempts == 0 {
		t.Error("attemptGoroutines saw no attempt while the race ran: the leak check below would be blind")
	}
	if peak != maxAttemptsInFlight {
		t.Errorf("%d attempts ran at once, want %d", peak, maxAttemptsInFlight)
	}
	if !strings.Contains(err.Error(), "2 not tried") {
		t.Errorf("error does not count the untried addresses: %v", err)
	}
	noAttemptsLeft(t, base, port, dead)
}
