package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/go-hclog"
)

// Resolver looks up destination names (net.Resolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer opens the outbound TCP connections of CONNECT (net.Dialer does).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Settings is what a configuration reload may change. Sessions keep the
// Settings they started with.
type Settings struct {
	Acceptor *gssapi.Acceptor
	Policy   *policy.Engine
	Timeouts Timeouts
	// MaxSessions bounds concurrent sessions past their handshake (0: no
	// bound): authenticated clients, and method 00 ones.
	MaxSessions int
	// MaxHandshakes bounds the connections still in their handshake
	// (from accept until the client is authenticated), which do not count
	// against MaxSessions, so that silent connections cannot starve
	// authenticated users; MaxHandshakesPerSource bounds those of one
	// source (an IPv4 address, an IPv6 /64). 0: no bound. A connection
	// past either gets "05 ff" at once.
	MaxHandshakes, MaxHandshakesPerSource int
	// NoAuth are the source networks allowed to use SOCKS method 00.
	NoAuth policy.Sources
	// SOCKS4 also accepts SOCKS4 and SOCKS4a from the NoAuth sources
	// (policy.MethodSOCKS4, no identity, level clear); off, or from
	// elsewhere, a SOCKS4 request is refused with reply 0x5b.
	SOCKS4 bool
	// Password enables SOCKS method 02, USERNAME/PASSWORD (RFC 1929),
	// checked with the KDC (password.go); nil: off.
	Password *PasswordAuth
	// UDPAdvertise, when valid, is the BND.ADDR of UDP ASSOCIATE replies
	// (RFC 1928 §7) in place of the relay socket's local address, which is
	// the local address of the client's TCP connection: the address
	// clients reach this node's relay by behind an L4 balancer.
	UDPAdvertise netip.Addr
	// Logger is the operational log of the sessions started under these
	// settings, and of the listeners from then on (nil: Options.Logger),
	// so that a reload can change the log level and format. Audit records
	// do not go here but to Options.Audit.
	Logger hclog.Logger

	// HTTPAcceptor verifies the Negotiate tokens of HTTP proxy
	// connections (ServeHTTPProxy): an acceptor for the HTTP/ service
	// principals, sharing Acceptor's replay store. nil: HTTP proxy
	// connections are refused with 503.
	HTTPAcceptor *gssapi.Acceptor
}

// Timeouts bound the phases of a session. The caller fills them from its
// configuration (config.Timeouts); a zero Idle disables the idle timeout.
type Timeouts struct {
	Negotiation time.Duration // method selection and GSS-API subnegotiation
	Connect     time.Duration // name resolution and the outbound connect
	Idle        time.Duration // no data in either direction
	Bind        time.Duration // waiting for the inbound connection of a BIND
}

// Options configure a Server.
type Options struct {
	Settings Settings
	// Logger is the operational log (nil: none), used where
	// Settings.Logger is nil.
	Logger hclog.Logger
	// Audit receives the record of every session when it ends (nil: an
	// audit.LogSink writing "session" lines at Info through
	// Logger.Named("audit"), whatever the operational level).
	Audit audit.Sink
	// OnSessionEnd, when set, is called with a copy of every record after
	// Audit has it (tests, metrics). It runs on the session's goroutine and
	// must not block for long.
	OnSessionEnd func(audit.Record)
	// Observer, when set, receives the events metrics need beyond the
	// audit records (see Observer).
	Observer Observer
	Resolver Resolver    // default net.DefaultResolver
	Dialer   Dialer      // default a zero net.Dialer
	Pool     *encap.Pool // default: a new pool
}

// Server is a SOCKS5/GSS-API gateway. Serve may be called for several
// listeners.
type Server struct {
	settings     atomic.Pointer[Settings]
	log          hclog.Logger // Options.Logger, never nil
	audit        audit.Sink
	onSessionEnd func(audit.Record)
	observer     Observer
	resolver     Resolver
	dialer       Dialer
	pool         *encap.Pool

	active    atomic.Int64 // connections being served
	sessionsN atomic.Int64 // of them, sessions past their handshake
	hs        handshakes
	pw        passwordState // kept across reloads
	panics    atomic.Int64

	mu       sync.Mutex
	sessions map[*session]struct{}
	lns      map[net.Listener]struct{}
	closing  bool
	wg       sync.WaitGroup

	principalsMu sync.Mutex
	principals   map[string]int // live sessions per principal, for rules with a limit
}

// New returns a server; it does not listen yet. It fails when the
// settings lack an acceptor or a policy.
func New(opts Options) (*Server, error) {
	if err := opts.Settings.check(); err != nil {
		return nil, err
	}
	s := &Server{
		log:          opts.Logger,
		audit:        opts.Audit,
		onSessionEnd: opts.OnSessionEnd,
		observer:     opts.Observer,
		resolver:     opts.Resolver,
		dialer:       opts.Dialer,
		pool:         opts.Pool,
		sessions:     make(map[*session]struct{}),
		lns:          make(map[net.Listener]struct{}),
		principals:   make(map[string]int),
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.audit == nil {
		s.audit = audit.NewLogSink(s.log.Named("audit"))
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.dialer == nil {
		s.dialer = &net.Dialer{}
	}
	if s.pool == nil {
		s.pool = encap.NewPool()
	}
	st := opts.Settings
	s.settings.Store(&st)
	return s, nil
}

func (st *Settings) check() error {
	if st.Acceptor == nil || st.Policy == nil {
		return errors.New("server: an acceptor and a policy are required")
	}
	return nil
}

// Reload swaps the settings: sessions already running keep theirs, new
// sessions get the new ones. It returns an error, and keeps the current
// settings, when st lacks an acceptor or a policy; callers must report it
// (a reload that did not apply must not look like one that did).
func (s *Server) Reload(st Settings) error {
	if err := st.check(); err != nil {
		return err
	}
	s.settings.Store(&st)
	return nil
}

// Settings returns the settings new sessions get.
func (s *Server) Settings() *Settings { return s.settings.Load() }

// ActiveSessions is the number of connections being served, handshakes
// included.
func (s *Server) ActiveSessions() int { return int(s.active.Load()) }

// logger is the operational log of the current settings.
func (s *Server) logger(st *Settings) hclog.Logger {
	if st.Logger != nil {
		return st.Logger
	}
	return s.log
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Serve accepts connections on ln until Shutdown or a listener error.
func (s *Server) Serve(ln net.Listener) error { return s.serveListener(ln, "socks", (*session).run) }

// serveListener is the accept loop of Serve and ServeHTTPProxy; run
// serves one connection; door ("socks", "http") names the front door in
// the log.
func (s *Server) serveListener(ln net.Listener, door string, run func(*session, string)) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	s.logger(s.settings.Load()).Info("listening", "addr", ln.Addr().String(), "front_door", door)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			// EMFILE and the like: log, back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger(s.settings.Load()).Error("accept failed", "addr", ln.Addr().String(), "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startSession(c, run)
	}
}

func (s *Server) startSession(c net.Conn, run func(*session, string)) {
	st := s.settings.Load()
	sess := newSession(s, st, c, time.Now())
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.active.Add(1)
	refusal := s.hs.acquire(sess.src.Addr(), st.MaxHandshakes, st.MaxHandshakesPerSource)
	go func() {
		defer func() {
			s.active.Add(-1)
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
			s.wg.Done()
		}()
		run(sess, refusal)
	}()
}

// Shutdown stops accepting, lets running sessions finish until ctx is
// done, then cuts what remains: their records end with
// audit.EndShutdown. It returns nil when every session ended in time, else
// an error wrapping ctx.Err() with the number of sessions cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.sessions)
	for sess := range s.sessions {
		sess.cut(audit.EndShutdown, "cut at the shutdown deadline")
	}
	s.mu.Unlock()
	<-done
	return fmt.Errorf("server: %d sessions cut at the shutdown deadline: %w", n, ctx.Err())
}

// endSession hands a finished record to the sink, then to the hook.
func (s *Server) endSession(rec audit.Record, log hclog.Logger) {
	if err := s.audit.Write(&rec); err != nil {
		log.Error("audit record not written", "error", err)
	}
	if s.onSessionEnd != nil {
		s.onSessionEnd(rec)
	}
}
