package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// SessionJSON is one entry of the admin listener's /sessions list: a live
// connection (handshakes included), as `gssocks sessions` prints it.
type SessionJSON struct {
	ID          string  `json:"id"`
	Principal   string  `json:"principal"`
	Method      string  `json:"method"` // the front door: gssapi, password, negotiate, none, socks4 ("" before it is known)
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Level       string  `json:"level"`
	Command     string  `json:"command"`
	BytesUp     int64   `json:"bytes_up"`
	BytesDown   int64   `json:"bytes_down"`
	AgeSeconds  float64 `json:"age_seconds"`
}

// admin is the metrics block's HTTP listener: /metrics, /healthz,
// /readyz, /sessions, and /debug/pprof/ when enabled.
type admin struct {
	cfg   config.Metrics
	ln    net.Listener
	srv   *http.Server
	pprof atomic.Bool
	done  chan struct{}
}

// openAdmin binds the admin listener of m (nil without a metrics block).
// It does not serve yet.
func (g *Gateway) openAdmin(m config.Metrics) (*admin, error) {
	if m.Listen == "" {
		return nil, nil
	}
	ln, err := g.opts.listen()(m.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics: %w", ErrListen, err)
	}
	a := &admin{cfg: m, ln: ln, done: make(chan struct{})}
	a.pprof.Store(m.Pprof)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := g.notReady(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/sessions", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.sessionsJSON())
	})
	mux.HandleFunc("/debug/pprof/", a.gate(pprof.Index))
	mux.HandleFunc("/debug/pprof/cmdline", a.gate(pprof.Cmdline))
	mux.HandleFunc("/debug/pprof/profile", a.gate(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", a.gate(pprof.Symbol))
	mux.HandleFunc("/debug/pprof/trace", a.gate(pprof.Trace))
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return a, nil
}

// gate serves h only while pprof is enabled; 404 otherwise.
func (a *admin) gate(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.pprof.Load() {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

func (a *admin) serve(g *Gateway) {
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("metrics listener stopped", "addr", a.ln.Addr().String(), "error", err)
		}
	}()
	g.log.Info("metrics listening", "addr", a.ln.Addr().String(), "pprof", a.pprof.Load())
}

// close stops the listener; requests in flight get a second.
func (a *admin) close() {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		a.srv.Close()
	}
	a.ln.Close()
}

// notReady says why the gateway should get no traffic yet, "" when ready:
// its listeners serve, and the keytab in use has a key the acceptor
// accepts for at least one service principal.
func (g *Gateway) notReady() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var why []string
	switch {
	case g.closed:
		why = append(why, "shutting down")
	case !g.started:
		why = append(why, "listeners not serving yet")
	case len(g.lns) == 0:
		why = append(why, "no listener")
	}
	if g.ktPrincipals <= 0 {
		why = append(why, "no keytab loaded with a key for an accepted principal")
	}
	// The HTTP proxy's keys: a rotated keytab may keep the SOCKS keys and
	// lose the HTTP/ ones, leaving every Negotiate client at 407.
	if len(g.cfg.HTTPListen) > 0 && g.ktHTTPPrincipals <= 0 {
		why = append(why, "no keytab loaded with a key for an accepted HTTP/ principal (http_listen)")
	}
	return strings.Join(why, "; ")
}

func (g *Gateway) sessionsJSON() []SessionJSON {
	ss := g.srv.Sessions()
	out := make([]SessionJSON, 0, len(ss))
	for _, s := range ss {
		src := ""
		if s.Source.IsValid() {
			src = s.Source.String()
		}
		out = append(out, SessionJSON{
			ID: s.ID, Principal: s.Principal, Method: s.Method, Source: src, Destination: s.Destination,
			Level: s.Level, Command: s.Command, BytesUp: s.BytesUp, BytesDown: s.BytesDown,
			AgeSeconds: s.Age.Seconds(),
		})
	}
	return out
}

// MetricsAddr is the bound address of the metrics listener, "" without
// one.
func (g *Gateway) MetricsAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.admin == nil {
		return ""
	}
	return g.admin.ln.Addr().String()
}
