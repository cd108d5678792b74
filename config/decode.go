package config

import (
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// decoder turns a fileBody into a Config, collecting diagnostics. The
// rules it decodes wait in rules, with the range of each block header in
// ruleRanges, until the file has no errors and an engine is built.
type decoder struct {
	getenv  func(string) string
	baseDir string
	diags   hcl.Diagnostics

	rules      []policy.Rule
	ruleRanges []hcl.Range
}

// config decodes and validates everything but the keytab's contents.
func (d *decoder) config(fb *fileBody, fileStart hcl.Range) *Config {
	cfg := &Config{
		Kerberos: Kerberos{ClockSkew: DefaultClockSkew, ReplayCache: ReplayCache{Store: ReplayStoreLocal}},
		Timeouts: Timeouts{
			Negotiation: DefaultNegotiation,
			Connect:     DefaultConnect,
			Idle:        DefaultIdle,
			Bind:        DefaultBind,
			Shutdown:    DefaultShutdown,
		},
		Limits: Limits{
			MaxSessions:            DefaultMaxSessions,
			MaxHandshakes:          DefaultMaxHandshakes,
			MaxHandshakesPerSource: DefaultMaxHandshakesPerSource,
		},
		Log:    Log{Level: "info", Format: "text"},
		Groups: map[string][]string{},
	}
	if fb.Listen == nil {
		d.missing(fileStart, "listen", `the addresses to accept SOCKS clients on, like listen = ["127.0.0.1:1080"]`)
	}
	cfg.Listen = d.listen(fb.Listen)
	if k := fb.Kerberos; k != nil {
		d.kerberos(k, &cfg.Kerberos)
	}
	if t := fb.Timeouts; t != nil {
		cfg.Timeouts.Negotiation = d.duration(t.Negotiation, DefaultNegotiation, false)
		cfg.Timeouts.Connect = d.duration(t.Connect, DefaultConnect, false)
		cfg.Timeouts.Idle = d.duration(t.Idle, DefaultIdle, true)
		cfg.Timeouts.Bind = d.duration(t.Bind, DefaultBind, false)
		cfg.Timeouts.Shutdown = d.duration(t.Shutdown, DefaultShutdown, false)
	}
	if l := fb.Limits; l != nil {
		cfg.Limits.MaxSessions = d.integer(l.MaxSessions, DefaultMaxSessions, 1<<30)
		d.handshakeLimits(l, &cfg.Limits)
	}
	if l := fb.Log; l != nil {
		d.log(l, &cfg.Log)
	}
	if m := fb.Metrics; m != nil {
		d.metrics(m, &cfg.Metrics)
	}
	if n := fb.NoAuth; n != nil && n.Sources == nil {
		d.missing(n.DefRange, "sources", `the networks whose clients may skip authentication, like sources = ["10.9.0.0/16"]`)
	} else if n != nil {
		items, _ := d.list(n.Sources)
		cfg.NoAuth = policy.Sources{}
		for _, it := range items {
			p, ok := d.prefix(it, "network")
			if !ok {
				continue
			}
			if p.Bits() == 0 {
				d.warnf(it.rng, "Unauthenticated access from anywhere",
					"%s lets every %s address use the gateway without authentication: an open proxy if the listener is reachable from the Internet.",
					p, ipVersion(p.Addr()))
			}
			cfg.NoAuth = append(cfg.NoAuth, p)
		}
		cfg.NoAuthSOCKS4 = d.boolean(n.SOCKS4)
	}

	if p := fb.Password; p != nil {
		d.passwordAuth(p, &cfg.PasswordAuth)
	}
	if g := fb.Gateway; g != nil {
		d.gatewayLocal(g, &cfg.GatewayLocal)
	}
	if p := fb.Proxy; p != nil {
		d.proxyProtocol(p, &cfg.ProxyProtocol)
	}
	if u := fb.UDP; u != nil {
		d.udp(u, &cfg.UDP)
	}
	cfg.Realms = d.realms(fb.Realms)

	groupRanges := d.groups(fb.Groups, cfg.Groups)
	realmHint := findRealm(fb.Rules)
	seen := map[string]hcl.Range{}
	for _, fr := range fb.Rules {
		if first, dup := seen[fr.Name]; dup {
			d.errorf(fr.NameRange, "Duplicate rule name",
				"A rule named %q is already defined at %s:%d. Rule names appear in logs and decisions, so each must be unique.",
				fr.Name, first.Filename, first.Start.Line)
		} else {
			seen[fr.Name] = fr.NameRange
		}
		d.rules = append(d.rules, d.rule(fr, cfg.Groups, groupRanges, realmHint))
		d.ruleRanges = append(d.ruleRanges, fr.DefRange)
	}
	d.checkClientOptIns(fb, cfg)
	d.checkPasswordRules(fb, cfg)
	return cfg
}

func (d *decoder) listen(attr *hcl.Attribute) []string {
	items, ok := d.list(attr)
	if !ok {
		return nil
	}
	if len(items) == 0 && isEmptyList(attr) {
		d.errorf(attr.Expr.Range(), "No listen address",
			`listen needs at least one address, like ["127.0.0.1:1080"].`)
		return nil
	}
	var out []string
	seen := map[string]hcl.Range{}
	for _, it := range items {
		host, port, err := net.SplitHostPort(it.s)
		if err != nil {
			d.errorf(it.rng, "Invalid listen address",
				`%q is not a host:port address (%s). Write "127.0.0.1:1080", "[::1]:1080", or ":1080" for every interface.`,
				it.s, strings.TrimPrefix(err.Error(), "address "+it.s+": "))
			continue
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			d.errorf(it.rng, "Invalid listen port", "%q has port %q; the port must be a number from 1 to 65535.", it.s, port)
			continue
		}
		if _, err := netip.ParseAddr(host); host != "" && err != nil && !validHostname(host) {
			d.errorf(it.rng, "Invalid listen address", "%q is neither an IP address nor a host name.", host)
			continue
		}
		if first, dup := seen[it.s]; dup {
			d.errorf(it.rng, "Duplicate listen address", "%q is already listed at %s:%d.", it.s, first.Filename, first.Start.Line)
			continue
		}
		seen[it.s] = it.rng
		out = append(out, it.s)
	}
	return out
}

func (d *decoder) kerberos(k *fileKerberos, out *Kerberos) {
	if k.Keytab != nil {
		if it, ok := d.str(k.Keytab); ok {
			if path, ok := d.keytabPath(it, "keytab"); ok {
				out.Keytab = path
				if !filepath.IsAbs(path) {
					out.Keytab = filepath.Join(d.baseDir, path)
				}
			}
		}
	}
	if items, ok := d.nonEmptyList(k.Principals, "accept any principal in the keytab"); ok {
		out.Principals = []string{}
		for _, it := range items {
			if msg := checkServicePrincipal(it.s); msg != "" {
				d.errorf(it.rng, "Invalid service principal", "%q %s", it.s, msg)
				continue
			}
			out.Principals = append(out.Principals, it.s)
		}
	}
	out.ClockSkew = d.duration(k.ClockSkew, DefaultClockSkew, false)
	d.replayCache(k, &out.ReplayCache)
	out.ReplayCacheSize = out.ReplayCache.MaxEntries
	d.kerberosClients(k, out)
}

// keytabPath strips a "FILE:" or "WRFILE:" prefix; other keytab types do
// not name a file the gateway can read.
func (d *decoder) keytabPath(it item, origin string) (string, bool) {
	s := it.s
	for _, p := range []string{"FILE:", "WRFILE:"} {
		s = strings.TrimPrefix(s, p)
	}
	if i := strings.IndexByte(s, ':'); i > 1 && !strings.ContainsAny(s[:i], `/\`) {
		d.errorf(it.rng, "Unsupported keytab type",
			"%s %q is a %s keytab; gssocks reads keytab files only: give a path, optionally with FILE:.", origin, it.s, s[:i])
		return "", false
	}
	if s == "" {
		d.errorf(it.rng, "Empty keytab path", "%s is empty; give the path of the keytab file.", origin)
		return "", false
	}
	return s, true
}

func (d *decoder) log(l *fileLog, out *Log) {
	if l.Level != nil {
		if it, ok := d.str(l.Level); ok && d.oneOf(it, "log level", "debug", "info", "warn", "error") {
			out.Level = it.s
		}
	}
	if l.Format != nil {
		if it, ok := d.str(l.Format); ok && d.oneOf(it, "log format", "text", "json") {
			out.Format = it.s
		}
	}
	if l.Audit != nil {
		if it, ok := d.str(l.Audit); ok {
			out.Audit = it.s
		}
	}
}

// metrics decodes the metrics block: one host:port to listen on, and
// whether pprof is served there.
func (d *decoder) metrics(m *fileMetrics, out *Metrics) {
	if m.Listen == nil {
		d.missing(m.DefRange, "listen", `the address of the metrics and health listener, like listen = "127.0.0.1:9180"`)
	} else if it, ok := d.str(m.Listen); ok {
		_, port, err := net.SplitHostPort(it.s)
		_, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			d.errorf(it.rng, "Invalid metrics listen address", `%q is not a host:port address. Write "127.0.0.1:9180".`, it.s)
		case perr != nil:
			d.errorf(it.rng, "Invalid metrics listen port", "%q has port %q; the port must be a number from 0 to 65535.", it.s, port)
		default:
			out.Listen = it.s
		}
	}
	out.Pprof = d.boolean(m.Pprof)
}

// groups decodes the group blocks into out and returns where each was
// defined.
func (d *decoder) groups(fgs []*fileGroup, out map[string][]string) map[string]hcl.Range {
	ranges := map[string]hcl.Range{}
	for _, g := range fgs {
		switch {
		case g.Name == "":
			d.errorf(g.NameRange, "Empty group name", "A group needs a name to be referred to by rules.")
			continue
		case looksLikeSID(g.Name):
			d.errorf(g.NameRange, "Group name looks like a SID",
				"Rules read %q as a SID, so a group cannot be named that. Choose a name such as \"vpn-users\".", g.Name)
			continue
		}
		if first, dup := ranges[g.Name]; dup {
			d.errorf(g.NameRange, "Duplicate group",
				"A group named %q is already defined at %s:%d. Merge the SIDs into one block.",
				g.Name, first.Filename, first.Start.Line)
			continue
		}
		ranges[g.Name] = g.NameRange
		if g.SIDs == nil {
			d.missing(g.DefRange, "sids", `the SIDs the alias stands for, like sids = ["S-1-5-21-1004336348-1177238915-682003330-1104"]`)
			continue
		}
		items, ok := d.list(g.SIDs)
		if ok && len(items) == 0 && isEmptyList(g.SIDs) {
			d.errorf(g.SIDs.Expr.Range(), "Empty group", "Group %q has no SIDs, so rules naming it would match nobody.", g.Name)
		}
		sids := []string{}
		for _, it := range items {
			sid, err := parseSID(it.s)
			if err != "" {
				d.errorf(it.rng, "Invalid SID", "%q is not a SID: %s.", it.s, err)
				continue
			}
			sids = append(sids, sid)
		}
		out[g.Name] = sids
	}
	return ranges
}

// gatewayLocal decodes the gateway_local block.
func (d *decoder) gatewayLocal(g *fileGateway, out *policy.GatewayLocal) {
	out.Off = !d.booleanOr(g.Deny, true)
	if out.Off {
		d.warnf(g.Deny.Range, "Gateway-local destinations allowed",
			"With deny = false, an allow rule without a destination limit reaches services listening on the gateway's loopback (also as 0.0.0.0 or ::), link-local addresses (cloud metadata at 169.254.169.254) and the gateway's own addresses. Keep the default and name local services in an allow rule's destinations instead, like destinations = [\"127.0.0.1/32\"].")
	}
	if items, ok := d.list(g.Addresses); ok {
		for _, it := range items {
			if p, ok := d.prefix(it, "network"); ok {
				out.Extra = append(out.Extra, p)
			}
		}
	}
}

// gatewayRange is where to report a problem with the gateway-local
// deny: its block, or the start of the file.
func gatewayRange(fb *fileBody, fileStart hcl.Range) hcl.Range {
	if fb.Gateway != nil {
		return fb.Gateway.DefRange
	}
	return fileStart
}

// realms decodes the realm blocks.
func (d *decoder) realms(frs []*fileRealm) []policy.Realm {
	var out []policy.Realm
	seen := map[string]hcl.Range{}
	for _, fr := range frs {
		switch {
		case fr.Name == "" || strings.ContainsAny(fr.Name, "@ \t\n") || hasGlob(fr.Name):
			d.errorf(fr.NameRange, "Invalid realm", "%q is not a realm name like \"EXAMPLE.TEST\".", fr.Name)
			continue
		case fr.Name != strings.ToUpper(fr.Name):
			d.warnf(fr.NameRange, "Realm is not upper case",
				"Realm blocks apply to tickets of %q in any case, but rules compare realms exactly (for case-sensitive names) and Kerberos realms are conventionally upper case: write %q.",
				fr.Name, strings.ToUpper(fr.Name))
		}
		key := strings.ToUpper(fr.Name)
		if first, dup := seen[key]; dup {
			d.errorf(fr.NameRange, "Duplicate realm",
				"Realm %q is already configured at %s:%d. Merge the settings into one block.", fr.Name, first.Filename, first.Start.Line)
			continue
		}
		seen[key] = fr.NameRange
		r := policy.Realm{Name: fr.Name}
		if fr.PAC != nil {
			if it, ok := d.str(fr.PAC); ok && d.oneOf(it, "pac setting", "expected", "none") {
				r.NoPAC = it.s == "none"
			}
		}
		r.CaseInsensitiveNames = d.boolean(fr.CaseInsensitiveNames)
		out = append(out, r)
	}
	return out
}
