package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/server"
	"github.com/hashicorp/go-hclog"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

func serve(args []string, stderr io.Writer) int {
	fs, path := configFlag("serve", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	g, err := newGateway(cfg, *path, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks: %v\n", err)
		return 1
	}
	defer g.close()
	return g.run()
}

// gateway is the running process: the server, its listeners, the state a
// reload carries over (replay cache) and its logs.
type gateway struct {
	path   string
	cfg    *config.Config
	log    hclog.Logger
	audit  hclog.Logger
	auditF *os.File
	stderr io.Writer
	replay *gssapi.ReplayCache
	srv    *server.Server

	mu  sync.Mutex
	lns map[string]net.Listener
	wg  sync.WaitGroup

	stopWatch chan struct{}
	watchDone chan struct{}
}

// keytabPoll is how often the keytab file is checked for a rotation.
const keytabPoll = 2 * time.Second

func newLogger(cfg *config.Config, w io.Writer, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(cfg.Log.Level),
		JSONFormat: cfg.Log.Format == "json",
		Output:     w,
	})
}

func newGateway(cfg *config.Config, path string, stderr io.Writer) (*gateway, error) {
	g := &gateway{path: path, cfg: cfg, stderr: stderr, lns: make(map[string]net.Listener)}
	g.log = newLogger(cfg, stderr, "gssocks")
	g.audit = g.log.Named("audit")
	if cfg.Log.Audit != "" {
		f, err := os.OpenFile(cfg.Log.Audit, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		g.auditF = f
		g.audit = newLogger(cfg, f, "audit")
	}
	g.replay = gssapi.NewReplayCache(cfg.Kerberos.ReplayCacheSize)
	st, err := g.settings(cfg)
	if err != nil {
		return nil, err
	}
	g.srv, err = server.New(server.Options{Settings: st, Logger: g.log, Audit: audit.NewLogSink(g.audit)})
	if err != nil {
		return nil, err
	}
	if err := g.listen(cfg.Listen); err != nil {
		return nil, err
	}
	g.stopWatch, g.watchDone = make(chan struct{}), make(chan struct{})
	go g.watchKeytab()
	return g, nil
}

// watchKeytab reloads the keytab when its file changes (a new kvno after a
// key rotation), without a restart. Keys of older kvnos that the file still
// holds keep working, so tickets issued before the rotation are accepted
// until they expire.
func (g *gateway) watchKeytab() {
	defer close(g.watchDone)
	t := time.NewTicker(keytabPoll)
	defer t.Stop()
	last := keytabStamp(g.currentKeytabPath())
	for {
		select {
		case <-g.stopWatch:
			return
		case <-t.C:
		}
		path := g.currentKeytabPath()
		st := keytabStamp(path)
		if st == last || st == "" {
			continue
		}
		kt, err := keytab.Load(path)
		if err != nil {
			// Perhaps caught mid-write (ktadd appends in place): try
			// again at the next tick.
			g.log.Error("keytab changed but cannot be loaded; keeping the previous keys", "keytab", path, "error", err)
			continue
		}
		last = st
		g.srv.Settings().Acceptor.SetKeytab(kt)
		g.log.Info("keytab reloaded", "keytab", path, "keys", len(kt.Entries), "kvnos", kvnos(kt))
	}
}

func (g *gateway) currentKeytabPath() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Kerberos.Keytab
}

// keytabStamp identifies a version of the keytab file.
func keytabStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d", fi.ModTime().UnixNano(), fi.Size(), ino)
}

func kvnos(kt *keytab.Keytab) string {
	seen := map[uint32]bool{}
	var out []string
	for _, e := range kt.Entries {
		if !seen[e.KVNO] {
			seen[e.KVNO] = true
			out = append(out, strconv.FormatUint(uint64(e.KVNO), 10))
		}
	}
	return strings.Join(out, ",")
}

// settings builds what the server runs with from a validated config.
func (g *gateway) settings(cfg *config.Config) (server.Settings, error) {
	kt, err := keytab.Load(cfg.Kerberos.Keytab)
	if err != nil {
		return server.Settings{}, fmt.Errorf("keytab %s: %w", cfg.Kerberos.Keytab, err)
	}
	acc, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{
		Keytab:      kt,
		Principals:  cfg.Kerberos.Principals,
		ClockSkew:   cfg.Kerberos.ClockSkew,
		ReplayCache: g.replay,
	})
	if err != nil {
		return server.Settings{}, err
	}
	return server.Settings{
		Acceptor:    acc,
		Policy:      cfg.Engine,
		Timeouts:    serverTimeouts(cfg.Timeouts),
		MaxSessions: cfg.Limits.MaxSessions,
		NoAuth:      cfg.NoAuth,
	}, nil
}

// serverTimeouts is what the server takes of the configured timeouts
// (Shutdown is the process's: it bounds the drain on SIGTERM).
func serverTimeouts(t config.Timeouts) server.Timeouts {
	return server.Timeouts{Negotiation: t.Negotiation, Connect: t.Connect, Idle: t.Idle, Bind: t.Bind}
}

// listen makes the listener set equal to addrs: listeners whose address
// did not change are kept (not rebound), new ones opened, dropped ones
// closed.
func (g *gateway) listen(addrs []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := make(map[string]bool, len(addrs))
	opened := map[string]net.Listener{}
	for _, a := range addrs {
		want[a] = true
		if _, ok := g.lns[a]; ok {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range opened {
				l.Close()
			}
			return fmt.Errorf("listen %s: %w", a, err)
		}
		opened[a] = ln
	}
	for a, ln := range g.lns {
		if !want[a] {
			g.log.Info("closing listener", "addr", a)
			ln.Close()
			delete(g.lns, a)
		}
	}
	for a, ln := range opened {
		g.lns[a] = ln
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.srv.Serve(ln); err != nil && !errors.Is(err, server.ErrServerClosed) {
				g.log.Error("listener stopped", "addr", a, "error", err)
			}
		}()
	}
	return nil
}

// reload is load → validate → build → swap; on any error the running
// configuration stays.
func (g *gateway) reload() {
	g.log.Info("reloading configuration", "file", g.path)
	cfg, files, diags := config.Loader{}.Load(g.path)
	if diags.HasErrors() {
		config.FormatDiagnostics(g.stderr, files, diags)
		g.log.Error("reload failed; the previous configuration stays in force", "errors", len(diags.Errs()))
		return
	}
	st, err := g.settings(cfg)
	if err != nil {
		g.log.Error("reload failed; the previous configuration stays in force", "error", err)
		return
	}
	if err := g.listen(cfg.Listen); err != nil {
		g.log.Error("reload failed; the previous configuration stays in force", "error", err)
		return
	}
	g.srv.Reload(st)
	g.mu.Lock()
	g.cfg = cfg
	g.mu.Unlock()
	g.log.Info("configuration reloaded", "rules", len(cfg.Engine.Rules()), "listeners", len(cfg.Listen))
}

func (g *gateway) run() int {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	for s := range sig {
		if s == syscall.SIGHUP {
			g.reload()
			continue
		}
		g.log.Info("shutting down", "signal", s.String(), "active_sessions", g.srv.ActiveSessions(), "deadline", g.cfg.Timeouts.Shutdown.String())
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeouts.Shutdown)
		err := g.srv.Shutdown(ctx)
		cancel()
		if err != nil {
			g.log.Warn("shutdown deadline reached", "error", err)
		}
		g.log.Info("stopped")
		return 0
	}
	return 0
}

func (g *gateway) close() {
	close(g.stopWatch)
	<-g.watchDone
	g.mu.Lock()
	for _, ln := range g.lns {
		ln.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	if g.auditF != nil {
		g.auditF.Close()
	}
}
