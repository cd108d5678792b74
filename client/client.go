package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

type Config struct {
	// Ticket returns the initiator settings (a service ticket for the
	// gateway's principal and its session key) for each new session.
	Ticket func(ctx context.Context) (gssapi.InitiatorConfig, error)
	// Level to ask for; the gateway may answer another one.
	Level encap.Level
	// AcceptLevels are the levels the client will use (default: only
	// Level). A grant outside them ends the session with a *LevelError.
	AcceptLevels []encap.Level
	// NEC sends the level unwrapped (interop only; it can be downgraded).
	NEC bool
}

type Session struct {
	Conn    net.Conn // the TCP connection to the gateway
	Context *gssapi.Context
	Level   encap.Level
	rw      net.Conn // Conn, or the encapsulating encap.Conn
}

func (s *Session) Stream() net.Conn { return s.rw }

func Open(ctx context.Context, proxy string, cfg Config) (*Session, error) {
	var d net.Dialer
	return open(ctx, d.DialContext, proxy, cfg)
}

func open(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxy string, cfg Config) (*Session, error) {
	// The ticket first: without credentials there is no point in
	// connecting, and the user's error is about Kerberos, not the network.
	icfg, err := cfg.Ticket(ctx)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, "tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("client: cannot connect to the gateway %s: %w", proxy, err)
	}
	s, err := handshake(ctx, c, cfg, icfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func Handshake(ctx context.Context, c net.Conn, cfg Config) (*Session, error) {
	icfg, err := cfg.Ticket(ctx)
	if err != nil {
		return nil, err
	}
	return handshake(ctx, c, cfg, icfg)
}

func handshake(ctx context.Context, c net.Conn, cfg Config, icfg gssapi.InitiatorConfig) (*Session, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	s, err := runHandshake(c, cfg, icfg)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("client: handshake with the gateway: %w (%v)", ctx.Err(), err)
	}
	return s, err
}

func runHandshake(c net.Conn, cfg Config, icfg gssapi.InitiatorConfig) (*Session, error) {
	greeting, err := socks5.AppendGreeting(nil, []socks5.Method{socks5.MethodGSSAPI})
	if err != nil {
		return nil, fmt.Errorf("client: greeting: %w", err)
	}
	if _, err := c.Write(greeting); err != nil {
		return nil, fmt.Errorf("client: greeting: %w", err)
	}
	m, err := socks5.ReadMethodSelection(c)
	if err != nil {
		return nil, fmt.Errorf("client: method selection (is %s a SOCKS5 gateway?): %w", c.RemoteAddr(), err)
	}
	if m != socks5.MethodGSSAPI {
		return nil, fmt.Errorf("client: the gateway does not accept GSS-API authentication (it selected %s)", m)
	}
	spn := icfg.Ticket.SName.PrincipalNameString() + "@" + icfg.Ticket.Realm
	in, tok, err := gssapi.NewInitiator(icfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	gctx, err := encap.InitiateContext(c, in, tok)
	if err != nil {
		return nil, authError(err, spn)
	}
	lvl, err := encap.NegotiateClient(c, gctx, cfg.Level, cfg.NEC)
	if err != nil {
		return nil, &LevelError{Asked: cfg.Level, Accepted: acceptLevels(cfg), Err: gatewayEnded(err)}
	}
	if !slices.Contains(acceptLevels(cfg), lvl) {
		return nil, &LevelError{Asked: cfg.Level, Granted: lvl, Answered: true, Accepted: acceptLevels(cfg)}
	}
	s := &Session{Conn: c, Context: gctx, Level: lvl, rw: c}
	if lvl != encap.LevelClear {
		if s.rw, err = encap.NewConn(c, gctx, lvl, encap.ConnOptions{}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func acceptLevels(cfg Config) []encap.Level {
	if len(cfg.AcceptLevels) == 0 {
		return []encap.Level{cfg.Level}
	}
	return cfg.AcceptLevels
}

func gatewayEnded(err error) error {
	switch {
	case errors.Is(err, encap.ErrAborted):
		return fmt.Errorf("the gateway sent the RFC 1961 abort: %w", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the gateway closed the connection without an answer: %w", err)
	}
	return err
}

func authError(err error, spn string) error {
	var ke *gssapi.KRBError
	if errors.As(err, &ke) {
		switch ke.Code {
		case krbErrSkew:
			return &ClockSkewError{Peer: "gateway", Ours: time.Now(), Max: 5 * time.Minute, Code: ke.Code}
		case krbErrNotUs, krbErrBadMatch, krbErrNoKey, krbErrBadKeyVer, krbErrModified, krbErrBadIntegrity:
			return &PrincipalError{SPN: spn, Code: ke.Code, Err: err}
		}
		return &AuthError{SPN: spn, Code: ke.Code, Err: err}
	}
	if errors.Is(err, encap.ErrAborted) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &AuthError{SPN: spn, Err: gatewayEnded(err)}
	}
	return fmt.Errorf("client: GSS-API context with the gateway: %w", err)
}

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

func (s *Session) ReadReply() (socks5.Addr, error) {
	rep, bnd, err := socks5.ReadReply(s.rw)
	if err != nil {
		return socks5.Addr{}, fmt.Errorf("client: reply: %w", gatewayEnded(err))
	}
	if rep != socks5.ReplySucceeded {
		return bnd, &ReplyError{Reply: rep}
	}
	return bnd, nil
}

func (s *Session) Close() error { return s.Conn.Close() }
