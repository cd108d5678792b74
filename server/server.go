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

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/go-hclog"
)

// Resolver looks up destination names (net.Resolver does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Settings is what a configuration reload may change. Sessions keep the
// Settings they started with.
type Settings struct {
	Acceptor *gssapi.Acceptor
	Policy   *policy.Engine
	Timeouts Timeouts
	// MaxSessions bounds concurrent sessions (0: no bound).
	MaxSessions int
	// NoAuth are the source networks allowed to use SOCKS method 00.
	NoAuth policy.Sources
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
	Logger   hclog.Logger // operational log
	Audit    hclog.Logger // one record per session (default: Logger)
	Resolver Resolver     // default net.DefaultResolver
	Pool     *encap.Pool  // default: a new pool
}

// Server is a SOCKS5/GSS-API gateway. Serve may be called for several
// listeners.
type Server struct {
	settings atomic.Pointer[Settings]
	log      hclog.Logger
	audit    hclog.Logger
	resolver Resolver
	pool     *encap.Pool

	active   atomic.Int64
	nextID   atomic.Uint64
	mu       sync.Mutex
	sessions map[*session]struct{}
	lns      map[net.Listener]struct{}
	closing  bool
	wg       sync.WaitGroup

	principalsMu sync.Mutex
	principals   map[string]int // live sessions per principal, for rules with a limit
}

// New returns a server; it does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Settings.Acceptor == nil || opts.Settings.Policy == nil {
		return nil, errors.New("server: an acceptor and a policy are required")
	}
	s := &Server{
		log:        opts.Logger,
		audit:      opts.Audit,
		resolver:   opts.Resolver,
		pool:       opts.Pool,
		sessions:   make(map[*session]struct{}),
		lns:        make(map[net.Listener]struct{}),
		principals: make(map[string]int),
	}
	if s.log == nil {
		s.log = hclog.NewNullLogger()
	}
	if s.audit == nil {
		s.audit = s.log.Named("audit")
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.pool == nil {
		s.pool = encap.NewPool()
	}
	st := opts.Settings
	s.settings.Store(&st)
	return s, nil
}

// Reload swaps the settings: sessions already running keep theirs, new
// sessions get the new ones.
func (s *Server) Reload(st Settings) error {
	if st.Acceptor == nil || st.Policy == nil {
		return errors.New("server: an acceptor and a policy are required")
	}
	s.settings.Store(&st)
	return nil
}

// Settings returns the settings new sessions get.
func (s *Server) Settings() *Settings { return s.settings.Load() }

// ActiveSessions is the number of sessions in progress.
func (s *Server) ActiveSessions() int { return int(s.active.Load()) }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Serve accepts connections on ln until Shutdown or a listener error.
func (s *Server) Serve(ln net.Listener) error {
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
	s.log.Info("listening", "addr", ln.Addr().String())
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
			s.log.Error("accept failed", "addr", ln.Addr().String(), "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.startSession(c)
	}
}

func (s *Server) startSession(c net.Conn) {
	st := s.settings.Load()
	sess := &session{srv: s, st: st, conn: c, id: s.nextID.Add(1), start: time.Now()}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	n := s.active.Add(1)
	go func() {
		defer func() {
			s.active.Add(-1)
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
			s.wg.Done()
		}()
		sess.run(st.MaxSessions > 0 && n > int64(st.MaxSessions))
	}()
}

// Shutdown stops accepting, lets running sessions finish until ctx is
// done, then closes what remains.
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
		sess.abort()
	}
	s.mu.Unlock()
	<-done
	return fmt.Errorf("server: %d sessions cut at the shutdown deadline: %w", n, ctx.Err())
}

// acquirePrincipal counts a session of principal p if it has fewer than
// limit; releasePrincipal undoes it.
func (s *Server) acquirePrincipal(p string, limit int) bool {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	if s.principals[p] >= limit {
		return false
	}
	s.principals[p]++
	return true
}

func (s *Server) releasePrincipal(p string) {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	if s.principals[p]--; s.principals[p] <= 0 {
		delete(s.principals, p)
	}
}
