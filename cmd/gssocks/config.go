package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

const defaultConfig = "/etc/gssocks/config.hcl"

func loader() config.Loader { return config.Loader{} }

// loadConfig loads and validates a configuration, writing its diagnostics
// (warnings too) to w for a person. The Config is nil on errors.
func loadConfig(path string, w io.Writer) *config.Config {
	cfg, files, diags := loader().Load(path)
	if len(diags) > 0 {
		config.FormatDiagnostics(w, files, diags)
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

func configFlag(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("gssocks "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("config", defaultConfig, "configuration `file`")
}

// check validates a configuration the way serve would start it: the file
// (diagnostics), then gateway.Provision: the keytab (an AES key for each
// configured principal), the audit file (can it be opened for appending;
// it is not created), and with --bind each listen address and the
// metrics listener's. It then lists the front doors (writeFrontDoors)
// and the keytab as the acceptor built will use it (gssapi.KeytabFacts); when
// the keytab is refused for want of AES keys the listing shows why.
func check(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("check", stderr)
	bind := fs.Bool("bind", false, "also bind each listen address, the metrics listener's too, and release it (fails while a gateway holds the port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	rt, err := gateway.Provision(cfg, gateway.Options{Bind: *bind})
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(stderr, "%s: refused: %s\n", *path, line)
		}
		if isKeytabRefusal(err) {
			if facts, _ := keytabFacts(cfg); facts != nil {
				writeKeytabFacts(stderr, cfg.Kerberos.Keytab, facts)
			}
		}
		return 1
	}
	// The acceptor serve would run, over the keytab it loaded: Provision
	// refused this keytab already if these facts held an ErrNoAESKey.
	facts, _ := rt.Settings.Acceptor.KeytabFacts()
	if h := rt.Settings.HTTPAcceptor; h != nil {
		hf, _ := h.KeytabFacts()
		facts = withHTTPFacts(facts, hf)
	}
	audit := "stderr"
	if rt.AuditPath != "" {
		audit = rt.AuditPath
	}
	listen := "not bound (--bind to try)"
	if *bind {
		listen = "bound and released"
	}
	listeners := fmt.Sprintf("%d listener(s)", len(cfg.Listen))
	if n := len(cfg.HTTPListen); n > 0 {
		listeners += fmt.Sprintf(", %d HTTP proxy listener(s)", n)
	}
	fmt.Fprintf(stdout, "%s: OK: %s, %d rule(s), %d group alias(es), keytab %s (%d keys), audit to %s; listen addresses %s\n",
		*path, listeners, len(cfg.Engine.Rules()), len(cfg.Groups), cfg.Kerberos.Keytab, len(rt.Keytab.Entries), audit, listen)
	writeFrontDoors(stdout, cfg, rt)
	writeKeytabFacts(stdout, cfg.Kerberos.Keytab, facts)
	return 0
}

// writeFrontDoors lists the ways in the configuration opens, one line
// per method (the policy.Method names rules, audit records and explain
// --method use): on or off, from which sources, on which addresses, or
// the setting that would open it. An operator reads check to know what
// the gateway will expose.
func writeFrontDoors(w io.Writer, cfg *config.Config, rt *gateway.Runtime) {
	socks := "listen " + strings.Join(cfg.Listen, ", ")
	door := func(method, what, state string) {
		fmt.Fprintf(w, "  %-10s %s: %s\n", method, what, state)
	}
	fmt.Fprintln(w, "front doors:")
	door("gssapi", "SOCKS5 GSS-API/Kerberos (RFC 1961)", "on, every source; "+socks)
	if pa := rt.Settings.Password; pa == nil {
		door("password", "SOCKS5 username/password (RFC 1929)", "off (no password_auth block)")
	} else {
		door("password", "SOCKS5 username/password (RFC 1929)",
			fmt.Sprintf("ON, the password crosses the network in the clear, sources %s; %s; checked with the KDC for %s", sourceList(pa.Sources), socks, pa.Verifier.Service()))
	}
	if len(cfg.HTTPListen) == 0 {
		door("negotiate", "HTTP proxy with Negotiate (RFC 4559)", "off (no http_listen)")
	} else {
		door("negotiate", "HTTP proxy with Negotiate (RFC 4559)",
			"on, clear, every source; http_listen "+strings.Join(cfg.HTTPListen, ", ")+"; principals "+strings.Join(cfg.HTTPPrincipals(gssapi.KeytabPrincipals(rt.Keytab)), ", "))
	}
	if len(cfg.NoAuth) == 0 {
		door("none", "SOCKS5 without authentication (method 00)", "off (no no_auth sources)")
	} else {
		door("none", "SOCKS5 without authentication (method 00)", "ON, no identity, sources "+sourceList(cfg.NoAuth)+"; "+socks)
	}
	switch {
	case !cfg.NoAuthSOCKS4:
		door("socks4", "SOCKS4/4a (no authentication)", "off (no_auth { socks4 = true } not set)")
	case len(cfg.NoAuth) == 0:
		door("socks4", "SOCKS4/4a (no authentication)", "off (socks4 = true but no no_auth sources)")
	default:
		door("socks4", "SOCKS4/4a (no authentication)", "ON, no identity, sources "+sourceList(cfg.NoAuth)+"; "+socks)
	}
}

// sourceList writes networks as a configuration lists them.
func sourceList(s policy.Sources) string {
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

// bootLog is the log block serve starts with: the configuration's, or,
// when the file does not load, what its log block says about the format
// (read leniently), so that the diagnostics saying why are in the format
// the operator's log pipeline expects.
func bootLog(path string, cfg *config.Config) config.Log {
	if cfg != nil {
		return cfg.Log
	}
	lc := config.Log{Level: "info", Format: "text"}
	src, err := os.ReadFile(path)
	if err != nil {
		return lc
	}
	p := hclparse.NewParser()
	var f *hcl.File
	if strings.HasSuffix(path, ".json") {
		f, _ = p.ParseJSON(src, path)
	} else {
		f, _ = p.ParseHCL(src, path)
	}
	if f == nil || f.Body == nil {
		return lc
	}
	top, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "log"}}})
	if top == nil {
		return lc
	}
	for _, b := range top.Blocks {
		attrs, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "format"}}})
		if attrs == nil || attrs.Attributes["format"] == nil {
			continue
		}
		v, diags := attrs.Attributes["format"].Expr.Value(nil)
		if !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() && v.AsString() == "json" {
			lc.Format = "json"
		}
	}
	return lc
}
