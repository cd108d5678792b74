package testutil

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/server"
)

// Gateway is a gateway started by StartGateway.
type Gateway struct {
	*gateway.Gateway
	// Addr is the address of the first listener (127.0.0.1:port).
	Addr string
	// Path is the configuration file; rewrite it and call Hangup to
	// reload.
	Path string
	// Log holds everything the gateway wrote: the operational log,
	// diagnostics, and the audit records unless log.audit is set.
	Log *LogBuffer

	mu      sync.Mutex
	records []audit.Record
}

// GatewayOption adjusts the gateway.Options StartGateway uses.
type GatewayOption func(*gateway.Options)

// WithResolver makes the gateway look destination names up with r.
func WithResolver(r server.Resolver) GatewayOption {
	return func(o *gateway.Options) { o.Resolver = r }
}

// WithServerOption adjusts the server.Options the gateway builds (a
// dialer, a logger, an audit sink), after the gateway filled them in.
// Records and WaitRecord still see every record: an OnSessionEnd that f
// sets runs after the collector. Several WithServerOption apply in order.
func WithServerOption(f func(*server.Options)) GatewayOption {
	return func(o *gateway.Options) {
		prev := o.Server
		o.Server = func(so *server.Options) {
			if prev != nil {
				prev(so)
			}
			collect := so.OnSessionEnd
			so.OnSessionEnd = nil
			f(so)
			switch next := so.OnSessionEnd; {
			case next == nil:
				so.OnSessionEnd = collect
			case collect != nil:
				so.OnSessionEnd = func(r audit.Record) { collect(r); next(r) }
			}
		}
	}
}

var hasListen = regexp.MustCompile(`(?m)^\s*listen\s*=`)

// StartGateway writes configHCL to a file, loads it as `gssocks serve`
// does (keytab checks included; warnings are logged, errors fail the
// test) and runs it through gateway.New and Start until the test ends
// (then shuts it down, giving sessions five seconds).
//
// Every listen address is bound on 127.0.0.1:0 instead of its own port
// (tests talk only to loopback); without a listen attribute the file gets
// listen = ["127.0.0.1:1080"] for that purpose. Audit records are kept
// for Records and WaitRecord (besides any OnSessionEnd an option sets).
func StartGateway(tb testing.TB, configHCL string, opts ...GatewayOption) *Gateway {
	tb.Helper()
	if !hasListen.MatchString(configHCL) {
		configHCL = "listen = [\"127.0.0.1:1080\"]\n" + configHCL
	}
	g := &Gateway{Path: filepath.Join(tb.TempDir(), "gssocks.hcl"), Log: &LogBuffer{}}
	if err := os.WriteFile(g.Path, []byte(configHCL), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, files, diags := config.Loader{}.Load(g.Path)
	if len(diags) > 0 {
		var b strings.Builder
		config.FormatDiagnostics(&b, files, diags)
		if diags.HasErrors() {
			tb.Fatalf("configuration:\n%s", b.String())
		}
		tb.Logf("configuration warnings:\n%s", b.String())
	}
	o := gateway.Options{
		Stderr: io.MultiWriter(g.Log, testWriter{tb}),
		Listen: func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	}
	for _, f := range opts {
		f(&o)
	}
	next := o.OnSessionEnd
	o.OnSessionEnd = func(r audit.Record) {
		g.mu.Lock()
		g.records = append(g.records, r)
		g.mu.Unlock()
		if next != nil {
			next(r)
		}
	}
	gw, err := gateway.New(cfg, o)
	if err != nil {
		tb.Fatalf("gateway.New: %v", err)
	}
	if err := gw.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	g.Gateway = gw
	g.Addr = gw.Addrs()[0]
	return g
}

// Records returns the audit records of the sessions that ended so far.
func (g *Gateway) Records() []audit.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]audit.Record(nil), g.records...)
}

// WaitRecord waits up to ten seconds for an audit record that match
// accepts and returns it; the test fails without one.
func (g *Gateway) WaitRecord(tb testing.TB, match func(audit.Record) bool) audit.Record {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range g.Records() {
			if match(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no matching audit record among %d; log:\n%s", len(g.Records()), g.Log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testWriter copies the gateway's output into the test log with -v.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
