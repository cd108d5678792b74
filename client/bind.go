package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gssocks/gssocks/socks5"
)

// Listener is a BIND (RFC 1928 §4): the gateway listens for one inbound
// connection on the client's behalf, as FTP's active mode needs. Addr is
// the address the gateway listens on, to tell the peer; Accept returns
// the one connection when the peer connects (the gateway's second reply).
// It implements net.Listener; a second Accept returns net.ErrClosed.
type Listener struct {
	s         *Session
	addr      net.Addr
	mu        sync.Mutex
	accepting bool // Accept was called
	accepted  bool // Accept returned the connection
	closed    bool
}

// Listen asks the gateway to accept one TCP connection from peer
// ("host:port" of the host expected to connect; "0.0.0.0:0" for any that
// the gateway's rules allow). network is "tcp", "tcp4" or "tcp6".
//
// Errors are those of DialContext.
func (d *Dialer) Listen(ctx context.Context, network, peer string) (*Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("client: network %q not supported for BIND (tcp, tcp4, tcp6)", network)
	}
	dest, err := socks5.ParseHostPort(peer)
	if err != nil {
		return nil, fmt.Errorf("client: BIND peer: %w", err)
	}
	s, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.SetDeadline(time.Now()) })
	bnd, err := s.Request(socks5.CmdBind, dest)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	ap, err := relayAddr(bnd, s.Conn)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Listener{s: s, addr: net.TCPAddrFromAddrPort(ap)}, nil
}

// Addr is where the gateway listens (BND.ADDR and BND.PORT of its first
// reply; an unspecified address is replaced by the gateway's).
func (l *Listener) Addr() net.Addr { return l.addr }

// Accept waits for the gateway's second reply and returns the connection
// from the peer, protected like the session. The peer's address is in
// PeerAddr. Close unblocks it.
func (l *Listener) Accept() (net.Conn, error) {
	c, _, err := l.AcceptPeer()
	return c, err
}

// AcceptPeer is Accept also returning the peer's address as the gateway
// reported it.
func (l *Listener) AcceptPeer() (net.Conn, socks5.Addr, error) {
	l.mu.Lock()
	if l.accepting || l.closed {
		l.mu.Unlock()
		return nil, socks5.Addr{}, net.ErrClosed
	}
	l.accepting = true
	l.mu.Unlock()
	peer, err := l.s.ReadReply()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.closed = true
		l.s.Close()
		var re *ReplyError
		if errors.As(err, &re) {
			return nil, peer, err
		}
		return nil, peer, fmt.Errorf("client: BIND: no connection from the peer: %w", err)
	}
	if l.closed { // Close raced with the peer's arrival
		l.s.Close()
		return nil, peer, net.ErrClosed
	}
	l.accepted = true
	return l.s.rw, peer, nil
}

// Close ends the BIND unless Accept has returned the connection, which
// then owns the session.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.accepted || l.closed {
		return nil
	}
	l.closed = true
	return l.s.Close()
}

var _ net.Listener = (*Listener)(nil)
