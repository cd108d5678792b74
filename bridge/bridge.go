package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// Defaults of Options.
const (
	DefaultDialTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultMaxConns         = 512
)

// Options configure a Bridge. Dialer and at least one of SOCKS and HTTP
// are required.
type Options struct {
	// Dialer carries the connections through the gateway: a Dialer from
	// client.New (its Proxy and Config are used; each connection dials
	// the gateway with a net.Dialer).
	Dialer *client.Dialer

	// SOCKS, HTTP and PAC are the listen addresses ("127.0.0.1:1080") of
	// the SOCKS5 proxy, the HTTP proxy and the PAC file server; "" for
	// none. Port 0 picks a free port (Addrs tells which).
	SOCKS, HTTP, PAC string
	// PACDomains are the domains the PAC file sends through the bridge:
	// "example.com" matches that name and every name below it,
	// ".example.com" only the names below it. Required with PAC.
	PACDomains []string

	// AllowRemote permits listen addresses other than loopback ones;
	// connections are then accepted from loopback and from AllowFrom
	// only, which must not be empty. Without it only loopback sources are
	// accepted.
	AllowRemote bool
	AllowFrom   []netip.Prefix

	// DialTimeout bounds getting a ticket, the session with the gateway
	// and its CONNECT or UDP ASSOCIATE (default DefaultDialTimeout).
	DialTimeout time.Duration
	// HandshakeTimeout bounds a local client's SOCKS greeting and request
	// and an HTTP request's header (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// MaxConns bounds the local connections open at once, over all
	// listeners; one more is closed at once, with a warning (default
	// DefaultMaxConns).
	MaxConns int

	// Logger receives warnings (refused sources, accept errors) and, at
	// debug level, local clients' protocol errors. Default: none.
	Logger hclog.Logger
	// OnConn is called with the record of each connection, UDP
	// association and forwarded HTTP request when it ends. It must not
	// block for long: it runs on the connection's goroutine.
	OnConn func(Record)
}

// Record is what the bridge did for one local request: a SOCKS CONNECT or
// UDP ASSOCIATE, an HTTP CONNECT tunnel or one forwarded HTTP request.
// It holds no payload and no header values.
type Record struct {
	Start  time.Time
	Client netip.AddrPort // the local client
	// Method is "socks" or "http"; Command "connect", "udp", or the HTTP
	// method of a forwarded request ("GET").
	Method, Command string
	// Dest is the destination as the client named it (host:port); for
	// UDP the first destination written to, or "".
	Dest string
	// Level is the protection level the gateway granted, when Connected.
	Level     encap.Level
	Connected bool
	// Up and Down count the bytes from the client towards the gateway and
	// back: the payload of a tunnel or datagrams, the request and
	// response (headers included) of a forwarded HTTP request.
	Up, Down int64
	Duration time.Duration
	// Status is the HTTP status of a forwarded request.
	Status int
	// Err is why the request failed (nil: it succeeded); typed errors of
	// package client pass through.
	Err error
}

// String formats r as one status line: time, client, method, command,
// destination, level, bytes up and down, duration and the result ("ok",
// an HTTP status, or "error: " and the error's text).
func (r Record) String() string {
	level := "-"
	if r.Connected {
		level = r.Level.String()
	}
	dest := r.Dest
	if dest == "" {
		dest = "-"
	}
	result := "ok"
	switch {
	case r.Err != nil:
		result = "error: " + r.Err.Error()
	case r.Status != 0:
		result = fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status))
	}
	return fmt.Sprintf("%s %s %s %s %s %s up=%d down=%d %s %s",
		r.Start.Format(time.RFC3339), r.Client, r.Method, r.Command, dest, level,
		r.Up, r.Down, r.Duration.Round(time.Millisecond), result)
}

// Stats are totals since the bridge started.
type Stats struct {
	Connections int64 // records (see Record)
	Errors      int64 // records with an error
	Up, Down    int64 // bytes
	Active      int64 // local connections open now
	Refused     int64 // local connections refused (source, limit)
}

// Bridge is a running local proxy: New, then Start; Shutdown ends it.
type Bridge struct {
	opts Options
	log  hclog.Logger

	ctx    context.Context // ended by Shutdown: cancels dials
	cancel context.CancelFunc

	socksLn, httpLn, pacLn net.Listener
	httpSrv, pacSrv        *http.Server
	transport              *http.Transport
	pac                    *pacFile

	mu     sync.Mutex
	conns  map[*gateConn]struct{}
	closed bool
	wg     sync.WaitGroup

	bufs sync.Pool // *[]byte of relayBuf bytes

	records, errs, up, down, refused atomic.Int64
}

// New checks opts and returns a Bridge that is not listening yet.
//
// Errors: a missing Dialer, no SOCKS and no HTTP address, a malformed
// address, a *RemoteListenError for a non-loopback address without
// AllowRemote (or AllowRemote without AllowFrom), a PAC without domains
// or with an invalid one.
func New(opts Options) (*Bridge, error) {
	if opts.Dialer == nil {
		return nil, errors.New("bridge: Options.Dialer is required")
	}
	if opts.SOCKS == "" && opts.HTTP == "" {
		return nil, errors.New("bridge: nothing to serve: give a SOCKS or an HTTP listen address")
	}
	if opts.AllowRemote && len(opts.AllowFrom) == 0 {
		return nil, &RemoteListenError{NoSources: true}
	}
	for _, a := range []string{opts.SOCKS, opts.HTTP, opts.PAC} {
		if a == "" {
			continue
		}
		loop, err := isLoopback(a)
		if err != nil {
			return nil, err
		}
		if !loop && !opts.AllowRemote {
			return nil, &RemoteListenError{Addr: a}
		}
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	b := &Bridge{opts: opts, log: opts.Logger, conns: map[*gateConn]struct{}{}}
	b.bufs.New = func() any { buf := make([]byte, relayBuf); return &buf }
	if opts.PAC != "" {
		p, err := newPACFile(opts.PACDomains)
		if err != nil {
			return nil, err
		}
		b.pac = p
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// RemoteListenError: a listen address that is not a loopback one without
// AllowRemote, or AllowRemote without source networks.
type RemoteListenError struct {
	Addr      string
	NoSources bool
}

func (e *RemoteListenError) Error() string {
	if e.NoSources {
		return "bridge: --allow-remote needs --allow-from with the source networks allowed to connect (e.g. 10.1.2.0/24): " +
			"whoever reaches the bridge acts under your Kerberos identity"
	}
	return fmt.Sprintf("bridge: refusing to listen on %s, which is not a loopback address: whoever reaches the bridge acts under your Kerberos identity; "+
		"listen on 127.0.0.1, or give --allow-remote with --allow-from NETWORKS to accept connections from those sources only", e.Addr)
}

// isLoopback reports whether the listen address's host is a loopback IP
// or "localhost"; an empty host (all interfaces) is not.
func isLoopback(addr string) (bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("bridge: listen address %q: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return false, fmt.Errorf("bridge: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil
	}
	return ip.Unmap().IsLoopback(), nil
}

// Start binds the listeners and serves them until Shutdown. On error no
// listener is left open.
func (b *Bridge) Start() error {
	var err error
	listen := func(addr string) net.Listener {
		if err != nil || addr == "" {
			return nil
		}
		var ln net.Listener
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			err = fmt.Errorf("bridge: %w", err)
			return nil
		}
		return &gateListener{Listener: ln, b: b}
	}
	b.socksLn, b.httpLn, b.pacLn = listen(b.opts.SOCKS), listen(b.opts.HTTP), listen(b.opts.PAC)
	if err != nil {
		for _, ln := range []net.Listener{b.socksLn, b.httpLn, b.pacLn} {
			if ln != nil {
				ln.Close()
			}
		}
		return err
	}
	errLog := hclogWriter(b.log)
	if b.socksLn != nil {
		b.wg.Go(func() { b.serveSOCKS(b.socksLn) })
	}
	if b.httpLn != nil {
		b.transport = b.newTransport()
		b.httpSrv = &http.Server{
			Handler:           http.HandlerFunc(b.serveHTTP),
			ReadHeaderTimeout: b.opts.HandshakeTimeout,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errLog,
			ConnContext:       connContext,
		}
		b.wg.Go(func() { b.httpSrv.Serve(b.httpLn) })
	}
	if b.pacLn != nil {
		b.pac.socks, b.pac.http = b.SOCKSAddr(), b.HTTPAddr()
		b.pacSrv = &http.Server{
			Handler:           b.pac,
			ReadHeaderTimeout: b.opts.HandshakeTimeout,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		}
		b.wg.Go(func() { b.pacSrv.Serve(b.pacLn) })
	}
	return nil
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// SOCKSAddr, HTTPAddr and PACAddr are the bound addresses ("" when not
// served), after Start.
func (b *Bridge) SOCKSAddr() string { return addrOf(b.socksLn) }
func (b *Bridge) HTTPAddr() string  { return addrOf(b.httpLn) }
func (b *Bridge) PACAddr() string   { return addrOf(b.pacLn) }

// PAC returns the PAC file as served to a client that asked for it at
// host (the Host of its request; used when the bridge listens on an
// unspecified address).
func (b *Bridge) PAC(host string) string {
	if b.pac == nil {
		return ""
	}
	return b.pac.render(host)
}

// Stats returns the totals so far.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	active := int64(len(b.conns))
	b.mu.Unlock()
	return Stats{
		Connections: b.records.Load(),
		Errors:      b.errs.Load(),
		Up:          b.up.Load(),
		Down:        b.down.Load(),
		Active:      active,
		Refused:     b.refused.Load(),
	}
}

// Shutdown stops the listeners, cancels dials in progress, closes every
// local connection (which ends their sessions with the gateway) and waits
// for the handlers to return or ctx to end.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.cancel()
	b.mu.Lock()
	b.closed = true
	conns := make([]*gateConn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, ln := range []net.Listener{b.socksLn, b.httpLn, b.pacLn} {
		if ln != nil {
			ln.Close()
		}
	}
	for _, s := range []*http.Server{b.httpSrv, b.pacSrv} {
		if s != nil {
			s.Close()
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bridge: shutdown: %w", ctx.Err())
	}
}

// record counts r and hands it to OnConn.
func (b *Bridge) record(r Record) {
	r.Duration = time.Since(r.Start)
	b.records.Add(1)
	if r.Err != nil {
		b.errs.Add(1)
	}
	b.up.Add(r.Up)
	b.down.Add(r.Down)
	if b.opts.OnConn != nil {
		b.opts.OnConn(r)
	}
}

// dial opens a session with the gateway and asks CONNECT to dest. It
// goes through the Dialer's Proxy and Config rather than DialContext
// because the status line reports the level the gateway granted, which
// can be above the one asked, and only the Session knows it.
func (b *Bridge) dial(ctx context.Context, dest socks5.Addr) (net.Conn, encap.Level, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.DialTimeout)
	defer cancel()
	stopB := context.AfterFunc(b.ctx, cancel)
	defer stopB()
	d := b.opts.Dialer
	s, err := client.Open(ctx, d.Proxy, d.Config)
	if err != nil {
		return nil, 0, err
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.SetDeadline(time.Now()) })
	_, err = s.Request(socks5.CmdConnect, dest)
	if !stop() {
		s.Close()
		return nil, 0, fmt.Errorf("bridge: connect to %s through the gateway: %w", dest, ctx.Err())
	}
	if err != nil {
		s.Close()
		return nil, 0, err
	}
	return s.Stream(), s.Level, nil
}

// listenPacket opens a UDP association through the gateway.
func (b *Bridge) listenPacket(ctx context.Context) (*client.PacketConn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.DialTimeout)
	defer cancel()
	stopB := context.AfterFunc(b.ctx, cancel)
	defer stopB()
	return b.opts.Dialer.ListenPacket(ctx)
}

// allowed reports whether a local client at ip may use the bridge.
func (b *Bridge) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	if !b.opts.AllowRemote {
		return false
	}
	for _, p := range b.opts.AllowFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// gateListener admits connections from allowed sources, up to MaxConns,
// and tracks them so that Shutdown can close them.
type gateListener struct {
	net.Listener
	b *Bridge
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.b.admit(c); gc != nil {
			return gc, nil
		}
	}
}

func (b *Bridge) admit(c net.Conn) *gateConn {
	src := addrPort(c.RemoteAddr())
	if !b.allowed(src.Addr()) {
		b.refused.Add(1)
		b.log.Warn("connection refused: source not allowed (--allow-from)", "client", src.String(), "listener", c.LocalAddr().String())
		c.Close()
		return nil
	}
	b.mu.Lock()
	if b.closed || len(b.conns) >= b.opts.MaxConns {
		closed := b.closed
		b.mu.Unlock()
		c.Close()
		if !closed {
			b.refused.Add(1)
			b.log.Warn("connection refused: too many connections", "client", src.String(), "max", b.opts.MaxConns)
		}
		return nil
	}
	gc := &gateConn{Conn: c, b: b, src: src}
	b.conns[gc] = struct{}{}
	b.mu.Unlock()
	return gc
}

// gateConn is an admitted local connection.
type gateConn struct {
	net.Conn
	b    *Bridge
	src  netip.AddrPort
	once sync.Once
}

func (c *gateConn) Close() error {
	c.once.Do(func() {
		c.b.mu.Lock()
		delete(c.b.conns, c)
		c.b.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes the TCP connection underneath.
func (c *gateConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	case *net.UDPAddr:
		return netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
