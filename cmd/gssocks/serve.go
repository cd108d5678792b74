package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/sdnotify"
	"github.com/hashicorp/go-hclog"
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
	bi, ok := debug.ReadBuildInfo()
	// The version `gssocks version` prints, for gssocks_build_info.
	g, err := gateway.New(cfg, gateway.Options{Stderr: stderr, Version: readBuildVersion(bi, ok, version).Version})
	if err != nil {
		gateway.LogErrors(boot, "cannot start", err)
		return 1
	}
	if err := g.Start(); err != nil {
		gateway.LogErrors(boot, "cannot start", err)
		return 1
	}
	notify(g.Logger(), sdnotify.Ready)
	notify(g.Logger(), func() (bool, error) {
		return sdnotify.Status(fmt.Sprintf("serving on %s", strings.Join(g.Addrs(), ", ")))
	})
	return waitSignals(g)
}

// notify sends one sd_notify message (a no-op outside systemd); a failure
// is logged, never fatal.
func notify(l hclog.Logger, send func() (bool, error)) {
	if _, err := send(); err != nil {
		l.Warn("cannot notify systemd", "error", err)
	}
}

// waitSignals handles signals until the gateway stops.
func waitSignals(g *gateway.Gateway) int {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	for s := range sig {
		if s == syscall.SIGHUP {
			// systemd (Type=notify-reload) waits for READY=1 after
			// RELOADING=1, whatever the outcome.
			notify(g.Logger(), sdnotify.Reloading)
			if err := g.Hangup(); err != nil { // logged by Hangup; the previous configuration stays
				notify(g.Logger(), func() (bool, error) {
					return sdnotify.Status("reload failed; the previous configuration stays in force")
				})
			} else {
				notify(g.Logger(), func() (bool, error) {
					return sdnotify.Status(fmt.Sprintf("serving on %s", strings.Join(g.Addrs(), ", ")))
				})
			}
			notify(g.Logger(), sdnotify.Ready)
			continue
		}
		l := g.Logger()
		notify(l, sdnotify.Stopping)
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
