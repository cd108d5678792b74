package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/server"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
)

// Options are what the process gives the gateway besides its
// configuration. The zero value serves on the configured addresses and
// logs to os.Stderr.
type Options struct {
	// Stderr receives the operational log, the diagnostics of reloads and,
	// without log.audit, the audit records. Default os.Stderr.
	Stderr io.Writer
	// Listen opens the listener of a configured address. Default
	// net.Listen("tcp", addr); tests bind 127.0.0.1:0 instead.
	Listen func(addr string) (net.Listener, error)
	// Bind makes Provision bind each listen address and close it again
	// (check --bind). New always binds.
	Bind bool
	// Resolver looks up destination names. Default net.DefaultResolver.
	Resolver server.Resolver
	// OnSessionEnd is called with a copy of every audit record, after the
	// audit sink has it (tests, metrics). nil: none.
	OnSessionEnd func(audit.Record)
	// KeytabPoll is how often the keytab file is checked for a rotation:
	// 0 means DefaultKeytabPoll, a negative value no polling (Hangup
	// still checks).
	KeytabPoll time.Duration
	// Loader reads the configuration file again on Hangup; the zero value
	// is config's default (keytab checks on, $KRB5_KTNAME).
	Loader config.Loader
	// Server, when set, adjusts the server's options after the gateway
	// has filled them in, before the server is built (tests: a dialer, a
	// logger, an audit sink of their own). nil: none.
	Server func(*server.Options)
	// Version is the release the binary reports (`gssocks version`,
	// main.version set with -ldflags -X), the version label of
	// gssocks_build_info. "": the main module's version from the build
	// information, else "unknown".
	Version string
}

func (o Options) listen() func(string) (net.Listener, error) {
	if o.Listen != nil {
		return o.Listen
	}
	return func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
}

// Gateway is a provisioned gateway: a server with its listeners, logs,
// audit sink and keytab watcher, and what a reload carries over (the
// replay cache, unchanged listeners, the open audit file).
type Gateway struct {
	opts   Options
	out    *lockedWriter
	replay replayStore
	log    *liveLogger
	audit  *liveSink
	srv    *server.Server
	// metrics is built once and kept across reloads: counters survive
	// SIGHUP.
	metrics *metrics
	proxy   *proxyTrust // proxy_protocol in force, read by the listeners

	// reloadMu makes reloads, keytab checks and shutdown take turns.
	reloadMu sync.Mutex

	mu       sync.Mutex // guards the fields below
	cfg      *config.Config
	lns      map[string]net.Listener // by configured address
	started  bool
	closed   bool
	ktStamp  string // the keytab file version in use
	ktFailed string // the version that last failed to load (logged once)
	// ktPrincipals and ktHTTPPrincipals are how many service principals
	// the keytab in use has an accepted key for, of the SOCKS acceptor and
	// of the HTTP proxy's (readiness).
	ktPrincipals, ktHTTPPrincipals int
	admin                          *admin // the metrics listener, nil without one
	wg                             sync.WaitGroup

	stopWatch chan struct{}
	watchDone chan struct{}
}

// New provisions cfg (see Provision), opens the audit file and binds the
// listeners; Start serves them. cfg must come from config.Load (or a
// Loader) without errors. Errors are Provision's.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if cfg == nil {
		return nil, errors.New("gateway: no configuration")
	}
	g := &Gateway{
		opts:      opts,
		out:       &lockedWriter{w: opts.Stderr},
		log:       newLiveLogger(hclog.NewNullLogger()),
		metrics:   newMetrics(opts.Version),
		lns:       make(map[string]net.Listener),
		stopWatch: make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	// The replay store logs through the gateway's live logger, which
	// gets its real target once the log block is provisioned.
	var err error
	if g.replay, err = openReplayStore(cfg.Kerberos.ReplayCache, g.log.Named("replay")); err != nil {
		return nil, err
	}
	stamp := keytabStamp(cfg.Kerberos.Keytab)
	p, err := provision(cfg, provisionParams{listen: opts.listen(), replay: g.replay.store, stderr: g.out})
	if err != nil {
		if errors.Is(err, ErrKeytab) {
			g.metrics.keytabLoaded(nil, nil, nil, err)
		}
		g.replay.close()
		return nil, err
	}
	ktPrincipals, ktHTTP := g.metrics.keytabLoaded(p.rt.Keytab, cfg.Kerberos.Principals, httpKeytabPrincipals(cfg, p.rt.Keytab), nil)
	g.log.root.swap(p.log)
	g.audit = &liveSink{cur: p.audit}
	g.proxy = &proxyTrust{log: g.log.Named("proxy_protocol"), timeout: g.negotiationTimeout}
	g.proxy.trusted.Store(&cfg.ProxyProtocol.Trusted)
	so := server.Options{
		Settings: p.rt.Settings,
		Logger:   g.log,
		Audit:    g.audit,
		OnSessionEnd: func(r audit.Record) {
			g.metrics.sessionEnd(r)
			if opts.OnSessionEnd != nil {
				opts.OnSessionEnd(r)
			}
		},
		Observer: g.metrics,
		Resolver: opts.Resolver,
	}
	if opts.Server != nil {
		opts.Server(&so)
	}
	g.srv, err = server.New(so)
	if err != nil {
		p.abandon()
		g.replay.close()
		return nil, err
	}
	opened, err := g.bind(endpoints(cfg))
	if err != nil {
		p.abandon()
		g.replay.close()
		return nil, err
	}
	g.metrics.watch(g)
	adm, err := g.openAdmin(cfg.Metrics)
	if err != nil {
		for _, ln := range opened {
			ln.Close()
		}
		p.abandon()
		g.replay.close()
		return nil, err
	}
	g.replay.ping(g.log)
	g.cfg, g.lns, g.ktStamp, g.ktPrincipals, g.ktHTTPPrincipals, g.admin = cfg, opened, stamp, ktPrincipals, ktHTTP, adm
	if adm != nil {
		adm.serve(g)
	}
	return g, nil
}

// negotiationTimeout bounds the read of a PROXY header: the negotiation
// timeout of new sessions.
func (g *Gateway) negotiationTimeout() time.Duration {
	return g.srv.Settings().Timeouts.Negotiation
}

// Start serves the listeners and starts the keytab watcher. It returns an
// error if the gateway was started or shut down already.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return errors.New("gateway: already started or shut down")
	}
	g.started = true
	for _, e := range endpoints(g.cfg) {
		g.serve(e, g.lns[e.key])
	}
	poll := g.opts.KeytabPoll
	if poll == 0 {
		poll = DefaultKeytabPoll
	}
	go g.watchKeytab(poll)
	return nil
}

// serve runs the server on ln, as a SOCKS or an HTTP proxy listener;
// g.mu is held.
func (g *Gateway) serve(e endpoint, ln net.Listener) {
	serve := g.srv.Serve
	if e.http {
		serve = g.srv.ServeHTTPProxy
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := serve(ln); err != nil && !errors.Is(err, server.ErrServerClosed) {
			g.log.Error("listener stopped", "addr", e.addr, "error", err)
		}
	}()
}

// bind opens the listeners of eps that are not open yet, keyed by
// endpoint.key. On an error it closes those it opened and returns it,
// wrapping ErrListen.
func (g *Gateway) bind(eps []endpoint) (map[string]net.Listener, error) {
	g.mu.Lock()
	have := make(map[string]bool, len(g.lns))
	for a := range g.lns {
		have[a] = true
	}
	g.mu.Unlock()
	listen := g.opts.listen()
	opened := make(map[string]net.Listener)
	for _, e := range eps {
		if have[e.key] {
			continue
		}
		ln, err := listen(e.addr)
		if err != nil {
			for _, l := range opened {
				l.Close()
			}
			return nil, fmt.Errorf("%w: %w", ErrListen, err)
		}
		opened[e.key] = newProxyListener(ln, g.proxy)
	}
	return opened, nil
}

// Reload puts cfg in force: it is provisioned as by New (keytab,
// acceptor sharing the replay cache, loggers, audit file when log.audit
// names a new path, server settings), new listen addresses are bound,
// and only if all of that succeeds are the settings swapped, removed
// listeners closed and the new logger and audit sink put in place.
// Running sessions keep their settings. On an error nothing changes.
// Fields that a reload does not apply (ReloadContract) are named in a
// warning when their value changed.
func (g *Gateway) Reload(cfg *config.Config) (err error) {
	defer func() { g.metrics.reloaded(err) }()
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.mu.Lock()
	old, closed := g.cfg, g.closed
	g.mu.Unlock()
	if closed {
		return errors.New("gateway: shut down")
	}
	if cfg == nil {
		return errors.New("gateway: no configuration")
	}
	stamp := keytabStamp(cfg.Kerberos.Keytab)
	p, err := provision(cfg, provisionParams{listen: g.opts.listen(), replay: g.replay.store, stderr: g.out, keepAudit: g.audit.file()})
	if err != nil {
		if errors.Is(err, ErrKeytab) {
			g.metrics.keytabLoaded(nil, nil, nil, err)
		}
		return err
	}
	eps := endpoints(cfg)
	opened, err := g.bind(eps)
	if err != nil {
		p.abandon()
		return err
	}
	// A changed metrics address is bound before anything changes; a
	// change of pprof alone is applied to the running listener.
	g.mu.Lock()
	oldAdmin := g.admin
	g.mu.Unlock()
	newAdmin := oldAdmin
	if oldAdmin == nil || oldAdmin.cfg.Listen != cfg.Metrics.Listen {
		if newAdmin, err = g.openAdmin(cfg.Metrics); err != nil {
			for _, ln := range opened {
				ln.Close()
			}
			p.abandon()
			return err
		}
	}
	if err := g.srv.Reload(p.rt.Settings); err != nil {
		for _, ln := range opened {
			ln.Close()
		}
		if newAdmin != oldAdmin {
			newAdmin.close()
		}
		p.abandon()
		return fmt.Errorf("gateway: server refused the new settings: %w", err)
	}
	ktPrincipals, ktHTTP := g.metrics.keytabLoaded(p.rt.Keytab, cfg.Kerberos.Principals, httpKeytabPrincipals(cfg, p.rt.Keytab), nil)
	if newAdmin != oldAdmin {
		oldAdmin.close()
		if newAdmin != nil {
			newAdmin.serve(g)
		}
	} else if newAdmin != nil {
		newAdmin.cfg = cfg.Metrics
		newAdmin.pprof.Store(cfg.Metrics.Pprof)
	}

	g.log.root.swap(p.log)
	if err := g.audit.swap(p.audit); err != nil {
		g.log.Warn("closing the previous audit file", "error", err)
	}
	g.proxy.trusted.Store(&cfg.ProxyProtocol.Trusted)
	g.mu.Lock()
	g.cfg, g.ktStamp, g.ktFailed, g.ktPrincipals, g.ktHTTPPrincipals, g.admin = cfg, stamp, "", ktPrincipals, ktHTTP, newAdmin
	for k, ln := range g.lns {
		if !slices.ContainsFunc(eps, func(e endpoint) bool { return e.key == k }) {
			g.log.Info("closing listener", "addr", k)
			ln.Close()
			delete(g.lns, k)
		}
	}
	for _, e := range eps {
		if ln := opened[e.key]; ln != nil {
			g.lns[e.key] = ln
			if g.started {
				g.serve(e, ln)
			}
		}
	}
	g.mu.Unlock()
	for _, f := range restartRequired(old, cfg) {
		g.log.Warn("configuration change needs a restart; the running value stays", "field", f)
	}
	g.log.Info("configuration reloaded", "rules", len(cfg.Engine.Rules()), "listeners", len(cfg.Listen))
	return nil
}

// Hangup is what SIGHUP does: reopen the audit file (after logrotate
// moved it), read the configuration file (Config().File) again and Reload
// it. When the file does not load or the reload fails, the previous
// configuration stays and the keytab is still checked for a rotation.
// Diagnostics are logged in the format of the file when it loads, else in
// the format in force, as are errors; the error is returned as well.
func (g *Gateway) Hangup() error {
	path := g.Config().File
	g.log.Info("reloading configuration", "file", path)
	var errs []error
	if err := g.ReopenAudit(); err != nil {
		g.log.Error("cannot reopen the audit file; records keep going to the one open", "error", err)
		errs = append(errs, err)
	}
	cfg, files, diags := g.opts.Loader.Load(path)
	// A file that loads brings its own log format: its warnings are the
	// first lines of the configuration about to be in force.
	lc := g.Config().Log
	if cfg != nil {
		lc = cfg.Log
	}
	LogDiagnostics(g.out, lc, files, diags)
	switch {
	case diags.HasErrors():
		n := len(diags.Errs())
		g.log.Error("reload failed; the previous configuration stays in force", "file", path, "errors", n)
		errs = append(errs, fmt.Errorf("%w: %d in %s", ErrConfig, n, path))
		g.metrics.reloaded(errs[len(errs)-1])
	default:
		if err := g.Reload(cfg); err != nil {
			LogErrors(g.log, "reload failed; the previous configuration stays in force", err)
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		g.CheckKeytab()
	}
	return errors.Join(errs...)
}

// ReopenAudit reopens the audit file under its path, so that records go to
// a new file after logrotate moved the old one. Without log.audit it does
// nothing. On an error the open file stays in use.
func (g *Gateway) ReopenAudit() error {
	if f := g.audit.file(); f != nil {
		return f.Reopen()
	}
	return nil
}

// CheckKeytab loads the keytab again if its file changed since it was
// last loaded (a new kvno after a key rotation), and gives it to the
// acceptor for new sessions. Keys of older kvnos the file still holds keep
// working. A keytab that cannot be used (caught mid-write, no AES key for
// a configured principal) is logged once per version of the file and the
// previous keys stay.
func (g *Gateway) CheckKeytab() {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.mu.Lock()
	cfg, last, failed, closed := g.cfg, g.ktStamp, g.ktFailed, g.closed
	g.mu.Unlock()
	path := cfg.Kerberos.Keytab
	st := keytabStamp(path)
	if closed || st == "" || st == last || st == failed {
		return
	}
	kt, err := loadKeytab(path, cfg.Kerberos.Principals)
	n, nHTTP := g.metrics.keytabLoaded(kt, cfg.Kerberos.Principals, httpKeytabPrincipals(cfg, kt), err)
	if err != nil {
		g.mu.Lock()
		g.ktFailed = st
		g.mu.Unlock()
		// gssapi's errors name the entry and what is wrong with it, never
		// the file's bytes.
		LogErrors(g.log.With("keytab", path), "keytab changed but cannot be used; keeping the previous keys", err)
		return
	}
	g.srv.Settings().Acceptor.SetKeytab(kt)
	if acc := g.srv.Settings().HTTPAcceptor; acc != nil {
		acc.SetKeytab(kt)
	}
	g.mu.Lock()
	g.ktStamp, g.ktFailed, g.ktPrincipals, g.ktHTTPPrincipals = st, "", n, nHTTP
	g.mu.Unlock()
	g.log.Info("keytab reloaded", "keytab", path, "keys", len(kt.Entries), "kvnos", kvnos(kt))
}

func (g *Gateway) watchKeytab(poll time.Duration) {
	defer close(g.watchDone)
	if poll < 0 {
		<-g.stopWatch
		return
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-g.stopWatch:
			return
		case <-t.C:
			g.CheckKeytab()
		}
	}
}

// Shutdown stops accepting and the keytab watcher, lets running sessions
// finish until ctx is done, then cuts the rest (the server's error says
// how many) and closes the audit file. A second call returns nil.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	started := g.started
	close(g.stopWatch)
	lns, adm := g.lns, g.admin
	g.mu.Unlock()
	adm.close()
	if started {
		<-g.watchDone
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	err := g.srv.Shutdown(ctx)
	for _, ln := range lns {
		ln.Close() // those never served
	}
	g.wg.Wait()
	g.replay.close()
	if f := g.audit.file(); f != nil {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// Config is the configuration in force.
func (g *Gateway) Config() *config.Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg
}

// Addrs are the bound addresses of the listeners, in the order of the
// configuration's listen list.
func (g *Gateway) Addrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.lns))
	for _, a := range g.cfg.Listen {
		if ln := g.lns[a]; ln != nil {
			out = append(out, ln.Addr().String())
		}
	}
	return out
}

// Logger is the operational logger; it follows reloads of the log block.
func (g *Gateway) Logger() hclog.Logger { return g.log }

// LogDiagnostics writes configuration diagnostics to the gateway's stderr
// in the format in force (see the package function LogDiagnostics).
func (g *Gateway) LogDiagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) {
	LogDiagnostics(g.out, g.Config().Log, files, diags)
}

// Server is the server the gateway runs, for its tests (Settings, Reload
// of hand-made settings, ActiveSessions).
func (g *Gateway) Server() *server.Server { return g.srv }
