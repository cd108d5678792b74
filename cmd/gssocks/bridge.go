package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/bridge"
	"github.com/gssocks/gssocks/client"
	"github.com/hashicorp/go-hclog"
)

const bridgeUsage = `usage: gssocks bridge [flags]

A local proxy that carries each connection through the gateway with your
Kerberos identity: SOCKS5 (CONNECT, UDP ASSOCIATE), an HTTP proxy (CONNECT
and http:// URLs) and optionally a PAC file. Point a browser, curl, git or
a package manager at it. SIGINT or SIGTERM stops it with a summary.

  gssocks bridge --gateway gw.example.com:1080
  gssocks bridge --pac 127.0.0.1:3129 --pac-domains corp.example.com,.intranet

flags:
`

// bridgeCmd is `gssocks bridge`: it runs until SIGINT or SIGTERM.
func bridgeCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runBridge(ctx, args, stderr)
}

func runBridge(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gssocks bridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, bridgeUsage)
		fs.PrintDefaults()
	}
	cf := addClientFlags(fs)
	socks := fs.String("socks", "127.0.0.1:1080", "SOCKS5 proxy listen `address` (\"\" for none)")
	httpAddr := fs.String("http", "127.0.0.1:3128", "HTTP proxy listen `address` (\"\" for none)")
	pac := fs.String("pac", "", "PAC file server listen `address`, serving "+bridge.PACPath+" (default none)")
	pacDomains := fs.String("pac-domains", "", "comma-separated `domains` the PAC file sends through the bridge (default pac_domains in the client file)")
	allowRemote := fs.Bool("allow-remote", false, "allow non-loopback listen addresses (with --allow-from)")
	allowFrom := fs.String("allow-from", "", "comma-separated source `networks` allowed to connect besides loopback, e.g. 10.1.2.0/24 (with --allow-remote)")
	verbose := fs.Bool("v", false, "print a status line per connection")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	s, err := cf.resolve(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks bridge: %v\n", err)
		return exitUsage
	}
	domains := s.PACDomains
	if *pacDomains != "" {
		domains = splitList(*pacDomains)
	}
	var sources []netip.Prefix
	for _, n := range splitList(*allowFrom) {
		p, err := parseSource(n)
		if err != nil {
			fmt.Fprintf(stderr, "gssocks bridge: --allow-from: %v\n", err)
			return exitUsage
		}
		sources = append(sources, p)
	}
	if len(sources) > 0 && !*allowRemote {
		fmt.Fprintln(stderr, "gssocks bridge: --allow-from needs --allow-remote")
		return exitUsage
	}
	opts, err := s.options()
	if err != nil {
		fmt.Fprintf(stderr, "gssocks bridge: %v\n", err)
		return exitUsage
	}
	level := hclog.Info
	if *verbose {
		level = hclog.Debug
	}
	var outMu sync.Mutex
	logger := hclog.New(&hclog.LoggerOptions{Name: "gssocks bridge", Output: stderr, Level: level, Mutex: &outMu})
	d, err := client.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks bridge: %v\n", err)
		return clientExit(err)
	}
	defer d.Close()
	bopts := bridge.Options{
		Dialer: d, SOCKS: *socks, HTTP: *httpAddr, PAC: *pac, PACDomains: domains,
		AllowRemote: *allowRemote, AllowFrom: sources, Logger: logger,
	}
	if *verbose {
		bopts.OnConn = func(r bridge.Record) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintln(stderr, r.String())
		}
	}
	b, err := bridge.New(bopts)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks bridge: %v\n", err)
		return exitUsage
	}
	if err := b.Start(); err != nil {
		fmt.Fprintf(stderr, "gssocks bridge: %v\n", err)
		return exitFailure
	}
	say := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stderr, "gssocks bridge: "+format+"\n", a...)
	}
	// Read the credentials now so that a missing ticket is said at start;
	// the bridge runs anyway, and picks up a ticket cache that kinit
	// fills later.
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	spn, spnErr := d.ServicePrincipal(lctx)
	loginErr := d.Login(lctx)
	cancel()
	who := "?"
	if t, ok := d.TGT(); ok {
		who = t.Client
	}
	if spnErr != nil {
		spn = "?"
	}
	say("gateway %s, service %s, as %s, level %s", s.Gateway, spn, who, levelText(s))
	if s.File != "" {
		say("settings from %s", s.File)
	}
	for _, e := range []error{spnErr, loginErr} {
		if e != nil {
			say("warning: %v (connections fail until this is fixed)", e)
		}
	}
	if a := b.SOCKSAddr(); a != "" {
		say("SOCKS5 proxy on %s", a)
	}
	if a := b.HTTPAddr(); a != "" {
		say("HTTP proxy on %s", a)
	}
	if a := b.PACAddr(); a != "" {
		say("PAC file on http://%s%s", a, bridge.PACPath)
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	shutErr := b.Shutdown(sctx)
	st := b.Stats()
	say("stopped: %d connections (%d failed), %d bytes up, %d bytes down, %d refused", st.Connections, st.Errors, st.Up, st.Down, st.Refused)
	if shutErr != nil {
		say("%v", shutErr)
	}
	return exitOK
}

// levelText describes the levels asked and accepted.
func levelText(s clientSettings) string {
	l := s.Level
	if l == "" {
		l = "confidentiality"
	}
	if s.MinLevel != "" && s.MinLevel != l {
		return l + " (accepting " + s.MinLevel + " and above)"
	}
	return l
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseSource reads a network ("10.0.0.0/8") or one address.
func parseSource(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (10.1.2.0/24) nor an address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
