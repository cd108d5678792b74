package hostile

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

// stepTimeout bounds each step of a good client.
const stepTimeout = 5 * time.Second

// Sess is a client connection at some step of the protocol.
type Sess struct {
	Conn   net.Conn
	Ctx    *gssapi.Context // once authenticated
	Level  encap.Level     // once negotiated
	Stream *encap.Conn     // reads (and writes) MTYP 3 at levels 1 and 2
	APReq  []byte          // the InitialContextToken sent
}

// Close closes the connection.
func (s *Sess) Close() error { return s.Conn.Close() }

// Write writes raw bytes.
func (s *Sess) Write(b []byte) error {
	s.Conn.SetWriteDeadline(time.Now().Add(stepTimeout))
	_, err := s.Conn.Write(b)
	return err
}

// Frame wraps payload under the session's level and frames it as an MTYP
// 3 message, without sending it.
func (s *Sess) Frame(payload []byte) []byte {
	tok, err := s.Ctx.Wrap(nil, payload, s.Level == encap.LevelConfidentiality)
	if err != nil {
		panic(err) // a fresh context wraps anything this small
	}
	msg, err := encap.AppendMessage(nil, encap.MsgEncapsulated, tok)
	if err != nil {
		panic(err)
	}
	return msg
}

// Dial connects to the gateway from 127.0.0.1.
func (c *Ctx) Dial() (net.Conn, error) { return c.DialFrom("127.0.0.1") }

// DialFrom connects to the gateway from a loopback address of choice.
func (c *Ctx) DialFrom(ip string) (net.Conn, error) {
	d := net.Dialer{Timeout: stepTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", c.G.Addr)
	if err != nil {
		return nil, setupf("dial gateway: %w", err)
	}
	return conn, nil
}

// Greeted is a connection whose greeting offered GSS-API and got it.
func (c *Ctx) Greeted() (*Sess, error) {
	conn, err := c.Dial()
	if err != nil {
		return nil, err
	}
	s := &Sess{Conn: conn}
	if err := greet(conn); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func greet(conn net.Conn) error {
	conn.SetDeadline(time.Now().Add(stepTimeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := conn.Write([]byte{0x05, 0x01, 0x01}); err != nil {
		return setupf("greeting: %w", err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(conn, sel[:]); err != nil || sel != [2]byte{0x05, 0x01} {
		return setupf("method selection %x: %v", sel, err)
	}
	return nil
}

// Authed has also established a GSS-API context with a ticket of who.
func (c *Ctx) Authed(who string) (*Sess, error) {
	s, err := c.Greeted()
	if err != nil {
		return nil, err
	}
	in, tok, err := gssapi.NewInitiator(c.W.ticket(who))
	if err != nil {
		s.Close()
		return nil, setupf("initiator: %w", err)
	}
	s.APReq = tok
	s.Conn.SetDeadline(time.Now().Add(stepTimeout))
	defer s.Conn.SetDeadline(time.Time{})
	if s.Ctx, err = encap.InitiateContext(s.Conn, in, tok); err != nil {
		s.Close()
		return nil, setupf("context establishment as %s: %w", who, err)
	}
	return s, nil
}

// Leveled has also negotiated level (and got it).
func (c *Ctx) Leveled(who string, level encap.Level) (*Sess, error) {
	s, err := c.Authed(who)
	if err != nil {
		return nil, err
	}
	s.Conn.SetDeadline(time.Now().Add(stepTimeout))
	defer s.Conn.SetDeadline(time.Time{})
	got, err := encap.NegotiateClient(s.Conn, s.Ctx, level, false)
	if err != nil || got != level {
		s.Close()
		return nil, setupf("asked %s, got %s: %v", level, got, err)
	}
	s.Level = level
	if s.Stream, err = encap.NewConn(s.Conn, s.Ctx, level, encap.ConnOptions{}); err != nil {
		s.Close()
		return nil, setupf("%w", err)
	}
	return s, nil
}

// Request sends a SOCKS request through the encapsulation and reads the
// reply.
func (s *Sess) Request(cmd socks5.Command, dest socks5.Addr) (socks5.Reply, socks5.Addr, error) {
	msg, err := socks5.AppendRequest(nil, socks5.Request{Command: cmd, Dest: dest})
	if err != nil {
		return 0, socks5.Addr{}, err
	}
	s.Conn.SetDeadline(time.Now().Add(stepTimeout))
	defer s.Conn.SetDeadline(time.Time{})
	if _, err := s.Stream.Write(msg); err != nil {
		return 0, socks5.Addr{}, err
	}
	return socks5.ReadReply(s.Stream)
}

// Connected is a session of who at confidentiality connected to dest.
func (c *Ctx) Connected(who, dest string) (*Sess, error) {
	s, err := c.Leveled(who, encap.LevelConfidentiality)
	if err != nil {
		return nil, err
	}
	a, err := socks5.ParseHostPort(dest)
	if err != nil {
		s.Close()
		return nil, setupf("%w", err)
	}
	rep, _, err := s.Request(socks5.CmdConnect, a)
	if err != nil || rep != socks5.ReplySucceeded {
		s.Close()
		return nil, setupf("CONNECT %s as %s: reply %v, %v", dest, who, rep, err)
	}
	return s, nil
}

// RoundTrip sends n random bytes through a session connected to the echo
// service and checks they come back.
func (s *Sess) RoundTrip(n int) error {
	out := make([]byte, n)
	rand.Read(out)
	s.Conn.SetDeadline(time.Now().Add(stepTimeout))
	defer s.Conn.SetDeadline(time.Time{})
	if _, err := s.Stream.Write(out); err != nil {
		return fmt.Errorf("write through the gateway: %w", err)
	}
	in := make([]byte, n)
	if _, err := io.ReadFull(s.Stream, in); err != nil {
		return fmt.Errorf("read the echo: %w", err)
	}
	if !bytes.Equal(in, out) {
		return errors.New("the echo differs from what was sent")
	}
	return nil
}

// readOutcome reads what the gateway sends until it closes, the read
// deadline, or bytes that are not a prefix of want: the bytes, when the
// stream ended, and how.
func readOutcome(conn net.Conn, deadline time.Time, want []byte) (got []byte, end time.Time, err error) {
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		n, rerr := conn.Read(buf)
		got = append(got, buf[:n]...)
		if !bytes.HasPrefix(want, got) {
			return got, time.Time{}, errors.New("unexpected bytes")
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || isReset(rerr) || errors.Is(rerr, syscall.ECONNRESET) {
				return got, time.Now(), nil
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return got, time.Time{}, errors.New("still open at the end of the watch")
			}
			return got, time.Now(), rerr
		}
	}
}

// outcomeDeadline is how long to watch for an outcome: past the
// negotiation timeout, to report how late a slow reaction was.
func outcomeDeadline(since time.Time) time.Time { return since.Add(Negotiation + 2*time.Second) }

// expectBytes: the gateway sends exactly want (possibly nothing) and
// closes, within bound of since.
func expectBytes(conn net.Conn, since time.Time, want []byte, bound time.Duration) error {
	got, end, err := readOutcome(conn, outcomeDeadline(since), want)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("gateway sent %x, want %x then close", trim(got), want)
	}
	if err != nil {
		return fmt.Errorf("after %x, no close: %v", got, err)
	}
	if d := end.Sub(since); d > bound {
		return fmt.Errorf("reaction after %v, bound %v (negotiation timeout %v)", d.Round(time.Millisecond), bound, Negotiation)
	}
	return nil
}

// trim shortens what a report quotes of the gateway's bytes.
func trim(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// ExpectClose: the gateway closes without sending anything, quickly.
func ExpectClose(conn net.Conn, since time.Time) error { return expectBytes(conn, since, nil, Quick) }

// ExpectAbort: the gateway sends the RFC 1961 §3 abort 01 ff and closes,
// quickly.
func ExpectAbort(conn net.Conn, since time.Time) error {
	return expectBytes(conn, since, []byte{encap.Version, byte(encap.MsgAbort)}, Quick)
}

// ExpectMethod: the gateway answers the greeting with method m and
// closes, quickly.
func ExpectMethod(conn net.Conn, since time.Time, m socks5.Method) error {
	return expectBytes(conn, since, []byte{socks5.Version, byte(m)}, Quick)
}

// ExpectCutAtTimeout: the gateway sends at most want and closes at the
// negotiation timeout counted from start (not much earlier, not late).
func ExpectCutAtTimeout(conn net.Conn, start time.Time, want []byte) error {
	got, end, err := readOutcome(conn, outcomeDeadline(start), want)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("gateway sent %x, want %x", trim(got), want)
	}
	if err != nil {
		return fmt.Errorf("not closed at the negotiation timeout (%v): %v", Negotiation, err)
	}
	if d := end.Sub(start); d < Negotiation-200*time.Millisecond || d > Negotiation+timeoutSlack {
		return fmt.Errorf("closed after %v, want the negotiation timeout %v", d.Round(time.Millisecond), Negotiation)
	}
	return nil
}

// ExpectReply: the gateway answers s's request with rep (through the
// encapsulation) quickly; a refusal is followed by a close.
func ExpectReply(s *Sess, since time.Time, rep socks5.Reply) error {
	s.Conn.SetReadDeadline(outcomeDeadline(since))
	got, _, err := socks5.ReadReply(s.Stream)
	if err != nil {
		return fmt.Errorf("no reply: %w", err)
	}
	if d := time.Since(since); d > Quick {
		return fmt.Errorf("reply after %v, bound %v", d.Round(time.Millisecond), Quick)
	}
	if got != rep {
		return fmt.Errorf("reply %02x %s, want %02x %s", byte(got), got, byte(rep), rep)
	}
	if rep == socks5.ReplySucceeded {
		return nil
	}
	if b, _, err := readOutcome(s.Conn, time.Now().Add(Quick), nil); err != nil || len(b) > 0 {
		return fmt.Errorf("no close after the refusal: %x %v", trim(b), err)
	}
	return nil
}

// Association is a UDP ASSOCIATE of a session.
type Association struct {
	S     *Sess
	UDP   *net.UDPConn
	Relay netip.AddrPort
	dgram *encap.Datagram
}

// Associate opens a UDP association for who at confidentiality, naming
// the local UDP socket's address in the request.
func (c *Ctx) Associate(who string) (*Association, error) {
	return c.associate(who, encap.LevelConfidentiality)
}

func (c *Ctx) associate(who string, level encap.Level) (*Association, error) {
	s, err := c.Leveled(who, level)
	if err != nil {
		return nil, err
	}
	a, rep, err := c.associateOn(s)
	if err != nil || rep != socks5.ReplySucceeded {
		s.Close()
		return nil, setupf("UDP ASSOCIATE as %s: reply %v, %v", who, rep, err)
	}
	return a, nil
}

func (c *Ctx) associateOn(s *Sess) (*Association, socks5.Reply, error) {
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, 0, err
	}
	rep, bnd, err := s.Request(socks5.CmdUDPAssociate, socks5.AddrFromAddrPort(u.LocalAddr().(*net.UDPAddr).AddrPort()))
	if err != nil || rep != socks5.ReplySucceeded {
		u.Close()
		return nil, rep, err
	}
	a := &Association{S: s, UDP: u, Relay: netip.AddrPortFrom(bnd.IP, bnd.Port)}
	if a.dgram, err = encap.NewDatagram(s.Ctx, s.Level); err != nil {
		u.Close()
		return nil, rep, err
	}
	return a, rep, nil
}

// Close ends the association.
func (a *Association) Close() {
	a.UDP.Close()
	a.S.Close()
}

// Datagram seals a datagram for dest carrying payload; hdr, when not nil,
// replaces the SOCKS UDP header.
func (a *Association) Datagram(dest socks5.Addr, payload []byte, hdr []byte) []byte {
	if hdr == nil {
		var err error
		if hdr, err = socks5.AppendUDPHeader(nil, dest); err != nil {
			panic(err)
		}
	}
	pkt, err := a.dgram.Seal(nil, append(append([]byte{}, hdr...), payload...))
	if err != nil {
		panic(err)
	}
	return pkt
}

// Send sends a prepared datagram to the relay.
func (a *Association) Send(pkt []byte) error {
	_, err := a.UDP.WriteToUDPAddrPort(pkt, a.Relay)
	return err
}

// Receive waits up to d for a datagram from the relay and opens it.
func (a *Association) Receive(d time.Duration) (socks5.Addr, []byte, error) {
	buf := make([]byte, 65536)
	a.UDP.SetReadDeadline(time.Now().Add(d))
	for {
		n, from, err := a.UDP.ReadFromUDPAddrPort(buf)
		if err != nil {
			return socks5.Addr{}, nil, err
		}
		if from.Addr().Unmap() != a.Relay.Addr() || from.Port() != a.Relay.Port() {
			continue
		}
		msg, err := a.dgram.Open(buf[:n])
		if err != nil {
			return socks5.Addr{}, nil, err
		}
		src, data, err := socks5.ParseUDPHeader(msg)
		if err != nil {
			return socks5.Addr{}, nil, err
		}
		return src, data, nil
	}
}

// Echo sends a marked payload to the UDP echo and waits for it back:
// the association is alive.
func (a *Association) Echo(c *Ctx) error {
	mark := markPrefix + randHex(8)
	for try := 0; try < 3; try++ { // UDP: allow a loss
		if err := a.Send(a.Datagram(socks5.AddrFromAddrPort(c.W.UDPEcho.Addr), []byte(mark), nil)); err != nil {
			return err
		}
		for {
			_, data, err := a.Receive(time.Second)
			if err != nil {
				break
			}
			if string(data) == mark {
				return nil
			}
		}
	}
	return errors.New("the association no longer relays to the UDP echo")
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
