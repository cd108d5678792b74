// Package client is gssocks' Go SOCKS5 client with GSS-API (RFC 1961):
// it authenticates with a Kerberos service ticket, negotiates a protection
// level and then speaks SOCKS5 (RFC 1928) CONNECT, BIND and UDP ASSOCIATE
// through the encapsulation. It is used by the gateway's tests and by
// programs that want to reach a gssocks (or Dante) gateway from Go, and
// links the codec (socks5), the mechanism (gssapi) and the framing (encap),
// nothing of the gateway itself.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

// Config says how to authenticate and protect a session.
type Config struct {
	// Ticket returns the initiator settings (a service ticket for the
	// gateway's principal and its session key) for each new session.
	Ticket func(ctx context.Context) (gssapi.InitiatorConfig, error)
	// Level to ask for; the gateway may answer another one.
	Level encap.Level
	// AcceptLevels are the levels the client will use (default: only
	// Level). A grant outside them ends the session.
	AcceptLevels []encap.Level
	// NEC sends the level unwrapped (interop only; it can be downgraded).
	NEC bool
}

// ReplyError is a SOCKS reply other than success.
type ReplyError struct{ Reply socks5.Reply }

func (e *ReplyError) Error() string { return "socks5: gateway replied: " + e.Reply.String() }

// Session is an authenticated connection to the gateway, ready for one
// request.
type Session struct {
	Conn    net.Conn // the TCP connection to the gateway
	Context *gssapi.Context
	Level   encap.Level
	rw      net.Conn // Conn, or the encapsulating encap.Conn
}

// Stream is the SOCKS stream after the handshake: the encapsulating Conn
// at levels 1 and 2, the TCP connection at level 0.
func (s *Session) Stream() net.Conn { return s.rw }

// Open dials the gateway, authenticates and negotiates the level.
func Open(ctx context.Context, proxy string, cfg Config) (*Session, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("client: dial gateway: %w", err)
	}
	s, err := Handshake(ctx, c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// Handshake runs greeting, GSS-API context establishment and level
// negotiation on an open connection.
func Handshake(ctx context.Context, c net.Conn, cfg Config) (*Session, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	greeting, err := socks5.AppendGreeting(nil, []socks5.Method{socks5.MethodGSSAPI})
	if err != nil {
		return nil, fmt.Errorf("client: greeting: %w", err)
	}
	if _, err := c.Write(greeting); err != nil {
		return nil, fmt.Errorf("client: greeting: %w", err)
	}
	m, err := socks5.ReadMethodSelection(c)
	if err != nil {
		return nil, fmt.Errorf("client: method selection: %w", err)
	}
	if m != socks5.MethodGSSAPI {
		return nil, fmt.Errorf("client: gateway selected method %#02x", byte(m))
	}
	icfg, err := cfg.Ticket(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: ticket: %w", err)
	}
	in, tok, err := gssapi.NewInitiator(icfg)
	if err != nil {
		return nil, err
	}
	gctx, err := encap.InitiateContext(c, in, tok)
	if err != nil {
		return nil, fmt.Errorf("client: GSS-API: %w", err)
	}
	lvl, err := encap.NegotiateClient(c, gctx, cfg.Level, cfg.NEC)
	if err != nil {
		return nil, fmt.Errorf("client: protection level: %w", err)
	}
	accept := cfg.AcceptLevels
	if len(accept) == 0 {
		accept = []encap.Level{cfg.Level}
	}
	ok := false
	for _, l := range accept {
		ok = ok || l == lvl
	}
	if !ok {
		return nil, fmt.Errorf("%w: asked %s, gateway granted %s", encap.ErrLevelRefused, cfg.Level, lvl)
	}
	s := &Session{Conn: c, Context: gctx, Level: lvl, rw: c}
	if lvl != encap.LevelClear {
		if s.rw, err = encap.NewConn(c, gctx, lvl, encap.ConnOptions{}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Request sends a SOCKS request and reads the reply.
func (s *Session) Request(cmd socks5.Command, dest socks5.Addr) (socks5.Addr, error) {
	msg, err := socks5.AppendRequest(nil, socks5.Request{Command: cmd, Dest: dest})
	if err != nil {
		return socks5.Addr{}, fmt.Errorf("client: request: %w", err)
	}
	if _, err := s.rw.Write(msg); err != nil {
		return socks5.Addr{}, fmt.Errorf("client: request: %w", err)
	}
	return s.ReadReply()
}

// ReadReply reads one reply (BIND sends two).
func (s *Session) ReadReply() (socks5.Addr, error) {
	rep, bnd, err := socks5.ReadReply(s.rw)
	if err != nil {
		return socks5.Addr{}, fmt.Errorf("client: reply: %w", err)
	}
	if rep != socks5.ReplySucceeded {
		return bnd, &ReplyError{Reply: rep}
	}
	return bnd, nil
}

// Close ends the session.
func (s *Session) Close() error { return s.Conn.Close() }

// Dialer dials TCP destinations through the gateway (CONNECT).
type Dialer struct {
	Proxy  string
	Config Config
}

// DialContext opens a session and connects it to addr; the returned
// connection carries the destination's data.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("client: network %q not supported", network)
	}
	dest, err := socks5.ParseHostPort(addr)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, d.Proxy, d.Config)
	if err != nil {
		return nil, err
	}
	if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
		s.Close()
		return nil, err
	}
	return s.rw, nil
}

// ErrNoDatagram: a datagram that does not carry a SOCKS UDP header.
var ErrNoDatagram = errors.New("client: not a SOCKS datagram")
