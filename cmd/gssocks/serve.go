package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gssocks/gssocks/gateway"
)

// serve runs the gateway until SIGTERM or SIGINT; SIGHUP reloads. Every
// line it writes, diagnostics and fatal errors included, is in the log
// block's format (one JSON object per line with format = "json").
func serve(args []string, stderr io.Writer) int {
	fs, path := configFlag("serve", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, files, diags := loader().Load(*path)
	lc := bootLog(*path, cfg)
	boot := gateway.NewLogger(lc, stderr)
	gateway.LogDiagnostics(stderr, lc, files, diags)
	if diags.HasErrors() {
		boot.Error("configuration has errors; not starting", "file", *path, "errors", len(diags.Errs()))
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Stderr: stderr})
	if err != nil {
		gateway.LogErrors(boot, "cannot start", err)
		return 1
	}
	if err := g.Start(); err != nil {
		gateway.LogErrors(boot, "cannot start", err)
		return 1
	}
	return waitSignals(g)
}

// waitSignals handles signals until the gateway stops.
func waitSignals(g *gateway.Gateway) int {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	for s := range sig {
		if s == syscall.SIGHUP {
			g.Hangup() // logs its own errors; the previous configuration stays on failure
			continue
		}
		l := g.Logger()
		deadline := g.Config().Timeouts.Shutdown
		l.Info("shutting down", "signal", s.String(), "active_sessions", g.Server().ActiveSessions(), "deadline", deadline.String())
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		err := g.Shutdown(ctx)
		cancel()
		if err != nil {
			l.Warn("shutdown deadline reached", "error", err)
		}
		l.Info("stopped")
		return 0
	}
	return 0
}
