package gateway

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pires/go-proxyproto"
)

// maxPendingHeaders bounds the connections of trusted peers whose PROXY
// header is still being read, so that a balancer (or a host spoofing its
// network) cannot make the gateway hold unbounded goroutines and sockets.
const maxPendingHeaders = 256

// proxyTrust is what a listener needs to know when it accepts: the
// trusted peers (config.ProxyProtocol.Trusted) and how long a header may
// take (the negotiation timeout), both as in force at that moment, so a
// reload applies them to the next connection.
type proxyTrust struct {
	trusted atomic.Pointer[[]netip.Prefix]
	timeout func() time.Duration
	log     hclog.Logger
}

// enabled reports whether proxy_protocol names any trusted peer.
func (t *proxyTrust) enabled() bool {
	p := t.trusted.Load()
	return p != nil && len(*p) > 0
}

func (t *proxyTrust) isTrusted(a net.Addr) bool {
	p := t.trusted.Load()
	if p == nil || len(*p) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, n := range *p {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyListener reads the PROXY protocol header (v1 or v2, via
// go-proxyproto) of connections from trusted peers before handing them
// to the server, whose RemoteAddr is then the client's address from the
// header: policy sources, no_auth, handshake caps, UDP source binding and
// the audit record all see the real client. From a trusted peer the
// header is required (policy REQUIRE); a connection from anyone else that
// starts with a PROXY header is refused (REJECT) on its first read. Both
// refusals close the connection with a log line naming the peer.
//
// Headers are read off the accept loop, one goroutine per connection
// (at most maxPendingHeaders), so one slow peer cannot hold up the
// others. LocalAddr stays the node's own socket address (not the header's
// destination, which is the balancer's): the UDP relay binds to it.
type proxyListener struct {
	net.Listener
	trust *proxyTrust
	ready chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
	sem   chan struct{}
}

func newProxyListener(ln net.Listener, trust *proxyTrust) *proxyListener {
	l := &proxyListener{
		Listener: ln, trust: trust,
		ready: make(chan net.Conn),
		errs:  make(chan error),
		done:  make(chan struct{}),
		sem:   make(chan struct{}, maxPendingHeaders),
	}
	go l.acceptLoop()
	return l
}

// Accept returns the next connection whose header (if it must have one)
// was read.
func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the socket; connections whose header is still being read
// are closed by their goroutine.
func (l *proxyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

func (l *proxyListener) acceptLoop() {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.once.Do(func() { close(l.done) })
				return
			}
			select {
			case l.errs <- err: // the server logs and backs off
			case <-l.done:
				return
			}
			continue
		}
		if !l.trust.enabled() {
			// proxy_protocol off: the connection is served as it is (a
			// *net.TCPConn keeps the kernel splice and half-close); a
			// PROXY header is then just a bad SOCKS greeting.
			l.hand(raw)
			continue
		}
		if !l.trust.isTrusted(raw.RemoteAddr()) {
			pc := proxyproto.NewConn(raw, proxyproto.WithPolicy(proxyproto.REJECT),
				proxyproto.SetReadHeaderTimeout(l.trust.timeout()))
			l.hand(&proxiedConn{Conn: pc, raw: raw, local: raw.LocalAddr(), remote: raw.RemoteAddr(), log: l.trust.log})
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default:
			l.trust.log.Warn("too many PROXY headers being read; closing", "peer", raw.RemoteAddr().String(), "max", maxPendingHeaders)
			raw.Close()
			continue
		}
		go func() {
			defer func() { <-l.sem }()
			if c := l.readHeader(raw); c != nil {
				l.hand(c)
			}
		}()
	}
}

// readHeader reads the header of a trusted peer's connection, or closes
// it and returns nil.
func (l *proxyListener) readHeader(raw net.Conn) net.Conn {
	pc := proxyproto.NewConn(raw, proxyproto.WithPolicy(proxyproto.REQUIRE),
		proxyproto.SetReadHeaderTimeout(l.trust.timeout()))
	// A zero-length read processes the header and reads nothing more.
	if _, err := pc.Read(nil); err != nil {
		l.trust.log.Warn("connection from a trusted balancer without a valid PROXY header; closing",
			"peer", raw.RemoteAddr().String(), "error", err)
		raw.Close()
		return nil
	}
	remote := pc.RemoteAddr()
	if h := pc.ProxyHeader(); h != nil && h.Command.IsLocal() {
		// A LOCAL header (a balancer's health check) carries no client:
		// the connection is the balancer's own.
		remote = raw.RemoteAddr()
	}
	return &proxiedConn{Conn: pc, raw: raw, local: raw.LocalAddr(), remote: remote, log: l.trust.log}
}

// hand passes c to Accept, or closes it when the listener closes first.
func (l *proxyListener) hand(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// proxiedConn is a connection with the addresses the server should see.
type proxiedConn struct {
	*proxyproto.Conn
	raw           net.Conn // the accepted socket, for CloseWrite
	local, remote net.Addr
	log           hclog.Logger
	logged        atomic.Bool
}

// CloseWrite half-closes the socket, so that the relay passes a
// client's or destination's EOF on (BIND, CONNECT at every level).
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *proxiedConn) LocalAddr() net.Addr  { return c.local }
func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// Read says once in the log why a connection from an untrusted peer that
// opened with a PROXY header is refused (the session ends on the error).
func (c *proxiedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) && c.logged.CompareAndSwap(false, true) {
		c.log.Warn("PROXY header from a peer not in proxy_protocol.trusted; closing", "peer", c.remote.String())
		c.Conn.Close()
	}
	return n, err
}
