package hostile

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// destinationCases are issue 8.1: destinations that are the gateway host
// itself in another spelling, asked by bob under an allow-all rule.
func destinationCases() []Case {
	connect := func(profile, name, send string, addr func(c *Ctx) []byte) Case {
		return Case{
			Name: "dest/" + profile + "/" + name, Issue: "8.1", Profile: profile,
			Send: "CONNECT " + send + " (service only on 127.0.0.1)", Want: "REP 02, service not reached", Log: "denied|not allowed",
			Run: func(c *Ctx) error {
				if profile == "cgo-resolver" && !c.W.Cgo {
					// The Go resolver would ask the system's DNS server.
					return setupf("the gateway is built without cgo")
				}
				before := c.W.Secret.Hits()
				s, err := c.Leveled("bob", encap.LevelConfidentiality)
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.Write(s.Frame(request(1, addr(c)))); err != nil {
					return err
				}
				err = ExpectReply(s, time.Now(), socks5.ReplyNotAllowed)
				time.Sleep(50 * time.Millisecond)
				if n := c.W.Secret.Hits() - before; n > 0 {
					return fmt.Errorf("the service on 127.0.0.1 was reached (%d connections); %v", n, err)
				}
				return err
			},
		}
	}
	port := func(c *Ctx) uint16 { return c.W.Secret.TCP.Port() }
	v6 := func(s string) func(c *Ctx) []byte { return func(c *Ctx) []byte { return ip6(s, port(c)) } }
	name := func(n string) func(c *Ctx) []byte { return func(c *Ctx) []byte { return domain(n, port(c)) } }
	udp := Case{
		Name: "dest/base/UDP datagram to 0.0.0.0", Issue: "8.1",
		Send: "UDP datagram to 0.0.0.0:<UDP service on 127.0.0.1>", Want: "dropped, service not reached; association alive",
		Log: "denied|dropped", Run: udpCase(func(c *Ctx, a *Association) error {
			before := c.W.Secret.Hits()
			if err := a.Send(a.Datagram(socks5.Addr{IP: netip.IPv4Unspecified(), Port: c.W.Secret.UDP.Port()}, []byte("x"), nil)); err != nil {
				return setupf("%w", err)
			}
			time.Sleep(300 * time.Millisecond)
			if n := c.W.Secret.Hits() - before; n > 0 {
				return fmt.Errorf("the UDP service on 127.0.0.1 got %d datagrams", n)
			}
			return nil
		}),
	}
	return []Case{
		connect("base", "0.0.0.0", "0.0.0.0:<port>", func(c *Ctx) []byte { return ip4([4]byte{}, port(c)) }),
		connect("base", "[::]", "[::]:<port>", v6("::")),
		connect("base", "[::ffff:127.0.0.1]", "IPv4-mapped [::ffff:127.0.0.1]:<port> (ATYP 04)", v6("::ffff:127.0.0.1")),
		connect("base", "[::ffff:0.0.0.0]", "IPv4-mapped [::ffff:0.0.0.0]:<port> (ATYP 04)", v6("::ffff:0.0.0.0")),
		connect("base", "[::127.0.0.1]", "IPv4-compatible [::127.0.0.1]:<port> (ATYP 04)", v6("::127.0.0.1")),
		connect("base", "name 127.0.0.1", "domain name \"127.0.0.1\"", name("127.0.0.1")),
		connect("base", "name 0.0.0.0", "domain name \"0.0.0.0\"", name("0.0.0.0")),
		connect("base", "name ::ffff:127.0.0.1", "domain name \"::ffff:127.0.0.1\"", name("::ffff:127.0.0.1")),
		connect("base", "name localhost", "domain name \"localhost\"", name("localhost")),
		connect("cgo-resolver", "name 0", "domain name \"0\" (glibc reads it as 0.0.0.0)", name("0")),
		connect("example", "0.0.0.0", "0.0.0.0:<port> past the example's deny-loopback rule", func(c *Ctx) []byte { return ip4([4]byte{}, port(c)) }),
		connect("example", "name 127.0.0.1", "domain name \"127.0.0.1\" past the example's deny-loopback rule", name("127.0.0.1")),
		connect("example", "[::ffff:127.0.0.1]", "[::ffff:127.0.0.1] past the example's deny-loopback rule", v6("::ffff:127.0.0.1")),
		udp,
	}
}

func issue8Cases() []Case {
	return []Case{
		{
			Name: "8.2/AP-REQ replayed with its ticket's sname rewritten", Issue: "8.2",
			Send: "alice's AP-REQ for host/shared-a, then the same bytes with sname host/shared-b (same key)",
			Want: "second: 01 ff (replay), close", Log: "replay", Run: replaySName,
		},
		{
			Name: "8.2/replay cache flooded by one principal", Issue: "8.2", Profile: "small-replay-cache",
			Send: "bob: 128 fresh AP-REQs against a cache of 64; then alice; then one of bob's again",
			Want: "alice authenticates; bob's replay gets 01 ff", Log: "replay", Run: replayFlood,
		},
		{
			Name: "8.3/keytab replaced by a truncated copy at runtime", Issue: "8.3", Fresh: true,
			Send: "keytab file truncated in place; SIGHUP; a keytab poll",
			Want: "no key bytes (raw, hex, quoted, decimal, base64) in the log; still serving", Log: "keytab", Run: truncatedKeytab,
		},
		{
			Name: "8.4/ALICE under a rule denying alice", Issue: "8.4", Profile: "case-insensitive",
			Send: "CONNECT as ALICE@REALM, realm with case_insensitive_names, rule deny alice@REALM",
			Want: "REP 02", Log: "denied", Run: func(c *Ctx) error {
				before := c.W.Secret.Hits()
				s, err := c.Leveled(upperAlice, encap.LevelConfidentiality)
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.Write(s.Frame(request(1, ip4([4]byte{127, 0, 0, 1}, c.W.Secret.TCP.Port())))); err != nil {
					return err
				}
				err = ExpectReply(s, time.Now(), socks5.ReplyNotAllowed)
				if n := c.W.Secret.Hits() - before; n > 0 && err == nil {
					return fmt.Errorf("the service was reached")
				}
				return err
			},
		},
		{
			Name: "8.6/per-principal limit, CONNECT (baseline)", Issue: "8.6", Profile: "bob-limited",
			Send: "bob: a CONNECT held open, then a second CONNECT (limit 1)", Want: "second: REP 02", Log: "limit",
			Run: func(c *Ctx) error {
				s1, err := c.Connected("bob", c.W.Echo.String())
				if err != nil {
					return err
				}
				defer s1.Close()
				s2, err := c.Leveled("bob", encap.LevelConfidentiality)
				if err != nil {
					return err
				}
				defer s2.Close()
				if err := s2.Write(s2.Frame(request(1, ip4([4]byte{127, 0, 0, 1}, c.W.Echo.Port())))); err != nil {
					return err
				}
				return ExpectReply(s2, time.Now(), socks5.ReplyNotAllowed)
			},
		},
		{
			Name: "8.6/per-principal limit, UDP ASSOCIATE", Issue: "8.6", Profile: "bob-limited",
			Send: "bob: an association held open, then a second UDP ASSOCIATE (limit 1)", Want: "second: REP 02", Log: "limit",
			Run: func(c *Ctx) error {
				a, err := c.Associate("bob")
				if err != nil {
					return err
				}
				defer a.Close()
				s2, err := c.Leveled("bob", encap.LevelConfidentiality)
				if err != nil {
					return err
				}
				defer s2.Close()
				since := time.Now()
				a2, rep, err := c.associateOn(s2)
				if a2 != nil {
					a2.UDP.Close()
				}
				if err != nil && rep == 0 {
					return fmt.Errorf("no reply: %w", err)
				}
				if rep != socks5.ReplyNotAllowed {
					return fmt.Errorf("second association: reply %02x %s, want 02", byte(rep), rep)
				}
				if d := time.Since(since); d > Quick {
					return fmt.Errorf("reply after %v", d)
				}
				return nil
			},
		},
		{
			Name: "8.6/BIND under a connect-only rule", Issue: "8.6", Profile: "bob-connect-only",
			Send: "bob: BIND 0.0.0.0:0; his only rule allows connect", Want: "REP 02, no listening socket opened", Log: "denied|not allowed",
			Run: func(c *Ctx) error { return bindDenied(c, ip4([4]byte{}, 0)) },
		},
		{
			Name: "8.6/BIND to a named peer under a connect-only rule (baseline)", Issue: "8.6", Profile: "bob-connect-only",
			Send: "bob: BIND 127.0.0.1:<port>; his only rule allows connect", Want: "REP 02, no listening socket opened", Log: "denied|not allowed",
			Run: func(c *Ctx) error { return bindDenied(c, ip4([4]byte{127, 0, 0, 1}, c.W.Secret.TCP.Port())) },
		},
		{
			Name: "8.6/UDP association flooded with distinct names", Issue: "8.6", Fresh: true,
			Send: "one association: 127k datagrams (race: 61k), each to another spelling of [::ffff:127.0.0.1]:<echo>",
			Want: "gateway RSS grows < 8 MiB (race: 18 MiB); association alive", Log: "udp association", Run: nameFlood,
		},
		{
			Name: "8.6/silent pre-auth connections, then a real client", Issue: "8.6", Profile: "max-sessions",
			Send: "12 silent TCP connections from 127.0.0.1 (max_sessions 4), then alice from 127.0.0.2",
			Want: "alice served (CONNECT, echo)", Log: "session", Run: preAuthStarvation,
		},
	}
}

// replaySName is issue 8.2: an AP-REQ accepted once must not be accepted
// again through a second service principal that shares the key, since
// the sname is not covered by any encryption.
func replaySName(c *Ctx) error {
	s1, err := c.Greeted()
	if err != nil {
		return err
	}
	defer s1.Close()
	in, tok, err := gssapi.NewInitiator(c.W.ticket("alice>" + sharedA))
	if err != nil {
		return setupf("%w", err)
	}
	same, err := rewriteAPReq(tok, func(*messages.APReq) {})
	if err != nil || !bytes.Equal(same, tok) {
		return setupf("re-encoding an AP-REQ changes it (%v): the rewrite would not be a replay", err)
	}
	s1.Conn.SetDeadline(time.Now().Add(stepTimeout))
	if _, err := encap.InitiateContext(s1.Conn, in, tok); err != nil {
		return setupf("the original AP-REQ for %s: %w", sharedA, err)
	}
	b, err := rewriteAPReq(tok, func(r *messages.APReq) { r.Ticket.SName.NameString = strings.Split(sharedB, "/") })
	if err != nil {
		return setupf("%w", err)
	}
	s2, err := c.Greeted()
	if err != nil {
		return err
	}
	defer s2.Close()
	if err := s2.Write(msg(1, 1, b)); err != nil {
		return err
	}
	return ExpectAbort(s2.Conn, time.Now())
}

// replayFlood is issue 8.2: one principal filling the replay cache must
// not lock others out, and replays must still be refused.
func replayFlood(c *Ctx) error {
	var first []byte
	accepted := 0
	for i := 0; i < 128; i++ {
		s, err := c.Greeted()
		if err != nil {
			return err
		}
		in, tok, err := gssapi.NewInitiator(c.W.ticket("bob"))
		if err != nil {
			s.Close()
			return setupf("%w", err)
		}
		s.Conn.SetDeadline(time.Now().Add(stepTimeout))
		if _, err := encap.InitiateContext(s.Conn, in, tok); err == nil {
			accepted++
			if first == nil {
				first = tok
			}
		}
		s.Close()
	}
	if first == nil {
		return setupf("none of bob's AP-REQs was accepted")
	}
	c.Logf("bob: %d of 128 AP-REQs accepted", accepted)
	if _, err := c.Authed("alice"); err != nil {
		var se *setupError
		if errors.As(err, &se) {
			err = se.err
		}
		return fmt.Errorf("alice after bob's flood: %w", err)
	}
	s, err := c.Greeted()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Write(msg(1, 1, first)); err != nil {
		return err
	}
	if err := ExpectAbort(s.Conn, time.Now()); err != nil {
		return fmt.Errorf("replay of bob's first AP-REQ: %w", err)
	}
	return nil
}

// truncatedKeytab is issue 8.3: a keytab caught half-written must not
// bring its keys into the log, on the reload path nor the rotation poll.
func truncatedKeytab(c *Ctx) error {
	from := len(c.G.Log())
	kt, err := os.ReadFile(c.G.Keytab)
	if err != nil {
		return setupf("%w", err)
	}
	// In place, as an interrupted ktadd leaves it: cut inside an entry
	// after several whole ones.
	if err := os.WriteFile(c.G.Keytab, kt[:len(kt)*2/3], 0o600); err != nil {
		return setupf("%w", err)
	}
	if err := c.G.Signal(syscall.SIGHUP); err != nil {
		return setupf("%w", err)
	}
	// The refused reload and the keytab check (run by the reload, or by
	// the next poll, every 2 s) each log a line: wait for both, not for a
	// fixed time, which a loaded machine (a -race gateway, signal
	// delivery, the poll's ticker) can overrun.
	for _, re := range []*regexp.Regexp{reloadFailedRE, keytabUnusableRE} {
		if !c.G.WaitLog(re, from, keytabLogWait) {
			return fmt.Errorf("no log line matching %q within %v; the case's log:\n%s", re, keytabLogWait, redact(tail(c.G.Log()[from:], 40), c.W.Keys))
		}
	}
	return keyLeak(c.G.Log()[from:], c.W.Keys)
}

var (
	reloadFailedRE   = regexp.MustCompile(`reload failed`)
	keytabUnusableRE = regexp.MustCompile(`keytab changed but cannot be used`)
)

// keytabLogWait bounds the wait for truncatedKeytab's log lines: generous,
// since they come within a poll interval on an idle machine.
const keytabLogWait = 30 * time.Second

// bindDenied: bob's BIND is refused before any socket is opened.
func bindDenied(c *Ctx, addr []byte) error {
	before, err := c.G.ListeningTCP()
	if err != nil {
		return setupf("%w", err)
	}
	s, err := c.Leveled("bob", encap.LevelConfidentiality)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Write(s.Frame(request(2, addr))); err != nil {
		return err
	}
	since := time.Now()
	s.Conn.SetReadDeadline(outcomeDeadline(since))
	rep, bnd, err := socks5.ReadReply(s.Stream)
	if err != nil {
		return fmt.Errorf("no reply: %w", err)
	}
	after, lerr := c.G.ListeningTCP()
	if lerr != nil {
		return setupf("%w", lerr)
	}
	if after > before {
		return fmt.Errorf("reply %02x %s (BND %s) and %d new listening socket(s)", byte(rep), rep, bnd, after-before)
	}
	if rep != socks5.ReplyNotAllowed {
		return fmt.Errorf("reply %02x %s, want 02", byte(rep), rep)
	}
	if d := time.Since(since); d > Quick {
		return fmt.Errorf("reply after %v", d)
	}
	return nil
}

// nameFlood is issue 8.6: an association's per-name state is bounded.
// Every name is a different spelling of [::ffff:127.0.0.1] (zero groups of
// one to four digits, hex digits in either case), which the health rule
// allows to the UDP echo, so every datagram comes back and the flood runs
// in lock step with the gateway.
func nameFlood(c *Ctx) error {
	// Measured on this kind of machine, RSS growth over the flood: with the
	// names cached, 24 MiB (race detector: 34 MiB for half the names);
	// with one name over and over (bounded state), 4 MiB (race: 9 MiB).
	const warm, window = 4096, 128
	flood, ceiling := 131072-warm, int64(8<<20)
	if c.W.Race { // slower, and shadow memory triples the heap's footprint
		flood, ceiling = 65536-warm, 18<<20
	}
	a, err := c.Associate("alice")
	if err != nil {
		return err
	}
	defer a.Close()
	port := c.W.UDPEcho.Addr.Port()
	send := func(from, to int) error {
		lost := 0
		for i := from; i < to; i += window {
			n := min(window, to-i)
			for j := 0; j < n; j++ {
				if err := a.Send(a.Datagram(socks5.Addr{Host: spelling(i + j), Port: port}, []byte("x"), nil)); err != nil {
					return setupf("send: %w", err)
				}
			}
			got := 0
			for got < n {
				if _, _, err := a.Receive(500 * time.Millisecond); err != nil {
					break
				}
				got++
			}
			lost += n - got
		}
		if lost > (to-from)/10 {
			return setupf("%d of %d datagrams lost", lost, to-from)
		}
		return nil
	}
	if err := send(0, warm); err != nil {
		return err
	}
	rss0, err := c.G.RSS()
	if err != nil {
		return setupf("%w", err)
	}
	start := time.Now()
	if err := send(warm, warm+flood); err != nil {
		return err
	}
	rss1, err := c.G.RSS()
	if err != nil {
		return setupf("%w", err)
	}
	c.Logf("%d names in %v: gateway RSS %d -> %d KiB", flood, time.Since(start).Round(time.Millisecond), rss0>>10, rss1>>10)
	if rss1-rss0 > ceiling {
		return fmt.Errorf("gateway RSS grew by %d KiB for %d names, ceiling %d KiB", (rss1-rss0)>>10, flood, ceiling>>10)
	}
	return a.Echo(c)
}

// spelling returns the i-th of 131072 spellings of ::ffff:7f00:1.
func spelling(i int) string {
	var g []string
	for k := 0; k < 5; k++ { // the zero groups: 0, 00, 000 or 0000
		g = append(g, strings.Repeat("0", 1+i%4))
		i /= 4
	}
	ffff := []byte("ffff")
	for k := range ffff { // each digit in either case
		if i&1 != 0 {
			ffff[k] = 'F'
		}
		i >>= 1
	}
	g = append(g, string(ffff), []string{"7f00", "7F00"}[i%2])
	i /= 2
	g = append(g, strings.Repeat("0", i%4)+"1")
	return strings.Join(g, ":")
}

// preAuthStarvation is issue 8.6: connections that never authenticate
// must not hold the slots of authenticated sessions.
func preAuthStarvation(c *Ctx) error {
	var silent []net.Conn
	defer func() {
		for _, s := range silent {
			s.Close()
		}
		time.Sleep(300 * time.Millisecond) // let the gateway reap them before the health check
	}()
	for i := 0; i < 12; i++ {
		conn, err := c.Dial()
		if err != nil {
			return err
		}
		silent = append(silent, conn)
	}
	time.Sleep(200 * time.Millisecond)
	s, err := c.connectedFrom("127.0.0.2")
	if err != nil {
		var se *setupError
		if errors.As(err, &se) {
			err = se.err
		}
		return fmt.Errorf("alice from 127.0.0.2: %w", err)
	}
	defer s.Close()
	return s.RoundTrip(1024)
}

// connectedFrom is Connected for alice to the echo, from a source
// address of choice.
func (c *Ctx) connectedFrom(ip string) (*Sess, error) {
	conn, err := c.DialFrom(ip)
	if err != nil {
		return nil, err
	}
	if err := greet(conn); err != nil {
		conn.Close()
		return nil, err
	}
	s := &Sess{Conn: conn}
	in, tok, err := gssapi.NewInitiator(c.W.ticket("alice"))
	if err != nil {
		conn.Close()
		return nil, setupf("%w", err)
	}
	conn.SetDeadline(time.Now().Add(stepTimeout))
	if s.Ctx, err = encap.InitiateContext(conn, in, tok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("context establishment: %w", err)
	}
	if lvl, err := encap.NegotiateClient(conn, s.Ctx, encap.LevelConfidentiality, false); err != nil || lvl != encap.LevelConfidentiality {
		conn.Close()
		return nil, fmt.Errorf("level: %v %v", lvl, err)
	}
	conn.SetDeadline(time.Time{})
	s.Level = encap.LevelConfidentiality
	s.Stream, _ = encap.NewConn(conn, s.Ctx, s.Level, encap.ConnOptions{})
	rep, _, err := s.Request(socks5.CmdConnect, socks5.AddrFromAddrPort(c.W.Echo))
	if err != nil || rep != socks5.ReplySucceeded {
		conn.Close()
		return nil, fmt.Errorf("CONNECT: %v %v", rep, err)
	}
	return s, nil
}
