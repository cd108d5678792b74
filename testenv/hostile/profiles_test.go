package hostile

import (
	"fmt"
	"strings"
)

// profile is a gateway configuration. Every profile has the timeouts of
// the suite, debug logging and the "health" rule first, which lets alice
// reach the echo services by naming them (so a built-in deny of the
// gateway's own addresses, issue 8.1, leaves it working).
type profile struct {
	name string
	// kerberos, top: extra lines in the kerberos block and at top level.
	kerberos, top string
	// rules after "health". In all three, %REALM% stands for the realm.
	rules string
	env   []string // extra environment of the process
}

// allowAll is a rule without any destination limit.
const allowAll = `
rule "all" {
  principals = ["*@%REALM%"]
}`

// profiles are the configurations cases run against. An attribute the
// tree does not know yet may appear only in profiles of XFail cases.
func profiles() map[string]profile {
	list := []profile{
		{name: "base", rules: allowAll},
		// The example configuration's deny-loopback rule before an allow-all.
		{name: "example", rules: `
rule "deny-loopback" {
  action       = "deny"
  destinations = ["127.0.0.0/8", "::1/128", "169.254.0.0/16"]
}` + allowAll},
		// The Go resolver of the gateway left to glibc (getaddrinfo), which
		// reads "0" as 0.0.0.0 without asking DNS.
		{name: "cgo-resolver", rules: allowAll, env: []string{"GODEBUG=netdns=cgo"}},
		{name: "small-replay-cache", kerberos: "  replay_cache_size = 64\n", rules: allowAll},
		{name: "max-sessions", top: "limits {\n  max_sessions = 4\n}\n", rules: allowAll},
		{name: "bob-limited", rules: `
rule "bob-limited" {
  principals                 = ["bob@%REALM%"]
  destinations               = ["127.0.0.1/32"]
  max_sessions_per_principal = 1
}`},
		{name: "bob-connect-only", rules: `
rule "bob-connect-only" {
  principals = ["bob@%REALM%"]
  commands   = ["connect"]
}`},
		// SOCKS4 from loopback (issue 12): a rule without identity for it.
		{name: "socks4", top: "no_auth {\n  sources = [\"127.0.0.1/32\"]\n  socks4  = true\n}\n", rules: `
rule "lab" {
  methods      = ["socks4"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%ECHO%"]
  protection   = ["clear"]
}` + allowAll},
		// Issue 8.4: names of this realm compared ignoring case.
		{name: "case-insensitive", top: "realm \"%REALM%\" {\n  case_insensitive_names = true\n}\n", rules: `
rule "deny-alice" {
  action     = "deny"
  principals = ["alice@%REALM%"]
}
rule "loopback" {
  destinations = ["127.0.0.1/32"]
}`},
	}
	m := make(map[string]profile, len(list))
	for _, p := range list {
		m[p.name] = p
	}
	return m
}

// config renders the profile for gateway g.
func (p profile) config(w *World, g *Gateway) string {
	realm := w.Env.Realm.Name
	var b strings.Builder
	fmt.Fprintf(&b, "listen = [%q]\n", g.Addr)
	fmt.Fprintf(&b, "kerberos {\n  keytab = %q\n%s}\n", g.Keytab, strings.ReplaceAll(p.kerberos, "%REALM%", realm))
	fmt.Fprintf(&b, "timeouts {\n  negotiation = %q\n  connect = \"2s\"\n  idle = \"30s\"\n  bind = \"5s\"\n  shutdown = \"1s\"\n}\n", Negotiation.String())
	b.WriteString("log {\n  level = \"debug\"\n}\n")
	b.WriteString(strings.ReplaceAll(p.top, "%REALM%", realm))
	fmt.Fprintf(&b, `
rule "health" {
  principals   = ["alice@%s"]
  destinations = ["127.0.0.1/32"]
  ports        = ["%d", "%d"]
}
`, realm, w.Echo.Port(), w.UDPEcho.Addr.Port())
	rules := strings.ReplaceAll(p.rules, "%REALM%", realm)
	b.WriteString(strings.ReplaceAll(rules, "%ECHO%", fmt.Sprint(w.Echo.Port())))
	b.WriteString("\n")
	return b.String()
}
