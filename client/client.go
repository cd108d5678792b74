// Package client is gssocks' Go SOCKS5 client with GSS-API (RFC 1961):
// it authenticates with a Kerberos service ticket, negotiates a protection
// level and then speaks SOCKS5 (RFC 1928) CONNECT, BIND and UDP ASSOCIATE
// through the encapsulation. It is used by the gateway's tests and by
// programs that want to reach a gssocks (or Dante) gateway from Go.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/server"
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
type ReplyError struct{ Reply server.Reply }

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
	if _, err := c.Write([]byte{5, 1, byte(server.MethodGSSAPI)}); err != nil {
		return nil, fmt.Errorf("client: greeting: %w", err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return nil, fmt.Errorf("client: method selection: %w", err)
	}
	if sel[0] != 5 || server.Method(sel[1]) != server.MethodGSSAPI {
		return nil, fmt.Errorf("client: gateway selected method %#02x", sel[1])
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
func (s *Session) Request(cmd server.Command, dest server.Addr) (server.Addr, error) {
	if _, err := s.rw.Write(server.AppendRequest(nil, cmd, dest)); err != nil {
		return server.Addr{}, fmt.Errorf("client: request: %w", err)
	}
	return s.ReadReply()
}

// ReadReply reads one reply (BIND sends two).
func (s *Session) ReadReply() (server.Addr, error) {
	var h [3]byte
	if _, err := io.ReadFull(s.rw, h[:]); err != nil {
		return server.Addr{}, fmt.Errorf("client: reply: %w", err)
	}
	if h[0] != 5 {
		return server.Addr{}, fmt.Errorf("client: reply version %d", h[0])
	}
	// The reply's address has the request's layout: reuse the parser.
	req, err := server.ReadRequest(io.MultiReader(bytes.NewReader([]byte{5, 1, 0}), s.rw))
	if err != nil {
		return server.Addr{}, fmt.Errorf("client: reply address: %w", err)
	}
	if rep := server.Reply(h[1]); rep != server.ReplySucceeded {
		return req.Dest, &ReplyError{Reply: rep}
	}
	return req.Dest, nil
}

// Close ends the session.
func (s *Session) Close() error { return s.Conn.Close() }

// ParseAddr turns "host:port" into a SOCKS address.
func ParseAddr(hostport string) (server.Addr, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return server.Addr{}, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return server.Addr{}, fmt.Errorf("client: port %q: %w", p, err)
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return server.Addr{IP: ip.Unmap(), Port: uint16(port)}, nil
	}
	return server.Addr{Host: h, Port: uint16(port)}, nil
}

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
	dest, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	s, err := Open(ctx, d.Proxy, d.Config)
	if err != nil {
		return nil, err
	}
	if _, err := s.Request(server.CmdConnect, dest); err != nil {
		s.Close()
		return nil, err
	}
	return s.rw, nil
}

// ErrNoDatagram: a datagram that does not carry a SOCKS UDP header.
var ErrNoDatagram = errors.New("client: not a SOCKS datagram")
