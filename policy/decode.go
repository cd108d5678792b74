package policy

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The file as written. Attributes stay *hcl.Attribute so that values are
// checked element by element, each diagnostic pointing at its element.
type fileBody struct {
	Listen   *hcl.Attribute `hcl:"listen"`
	Kerberos *fileKerberos  `hcl:"kerberos,block"`
	Timeouts *fileTimeouts  `hcl:"timeouts,block"`
	Limits   *fileLimits    `hcl:"limits,block"`
	Log      *fileLog       `hcl:"log,block"`
	NoAuth   *fileNoAuth    `hcl:"no_auth,block"`
	Groups   []*fileGroup   `hcl:"group,block"`
	Rules    []*fileRule    `hcl:"rule,block"`
}

type fileKerberos struct {
	Keytab          *hcl.Attribute `hcl:"keytab,optional"`
	Principals      *hcl.Attribute `hcl:"principals,optional"`
	ClockSkew       *hcl.Attribute `hcl:"clock_skew,optional"`
	ReplayCacheSize *hcl.Attribute `hcl:"replay_cache_size,optional"`
	DefRange        hcl.Range      `hcl:",def_range"`
}

type fileTimeouts struct {
	Negotiation *hcl.Attribute `hcl:"negotiation,optional"`
	Connect     *hcl.Attribute `hcl:"connect,optional"`
	Idle        *hcl.Attribute `hcl:"idle,optional"`
	Bind        *hcl.Attribute `hcl:"bind,optional"`
	Shutdown    *hcl.Attribute `hcl:"shutdown,optional"`
}

type fileLimits struct {
	MaxSessions *hcl.Attribute `hcl:"max_sessions,optional"`
}

type fileLog struct {
	Level  *hcl.Attribute `hcl:"level,optional"`
	Format *hcl.Attribute `hcl:"format,optional"`
	Audit  *hcl.Attribute `hcl:"audit,optional"`
}

type fileNoAuth struct {
	Sources  *hcl.Attribute `hcl:"sources"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type fileGroup struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	SIDs      *hcl.Attribute `hcl:"sids"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type fileRule struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`

	Action                  *hcl.Attribute `hcl:"action,optional"`
	Principals              *hcl.Attribute `hcl:"principals,optional"`
	Realms                  *hcl.Attribute `hcl:"realms,optional"`
	Groups                  *hcl.Attribute `hcl:"groups,optional"`
	Sources                 *hcl.Attribute `hcl:"sources,optional"`
	Destinations            *hcl.Attribute `hcl:"destinations,optional"`
	Ports                   *hcl.Attribute `hcl:"ports,optional"`
	Commands                *hcl.Attribute `hcl:"commands,optional"`
	Protection              *hcl.Attribute `hcl:"protection,optional"`
	NEC                     *hcl.Attribute `hcl:"nec,optional"`
	AuthOnly                *hcl.Attribute `hcl:"auth_only,optional"`
	MaxSessionsPerPrincipal *hcl.Attribute `hcl:"max_sessions_per_principal,optional"`
	IdleTimeout             *hcl.Attribute `hcl:"idle_timeout,optional"`
}

// decoder turns a fileBody into a Config, collecting diagnostics.
type decoder struct {
	getenv  func(string) string
	baseDir string
	diags   hcl.Diagnostics
}

func (d *decoder) add(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: sev,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagError, rng, summary, format, args...)
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagWarning, rng, summary, format, args...)
}

// missing reports a required attribute left out (gohcl treats pointer
// fields as optional).
func (d *decoder) missing(rng hcl.Range, name, what string) {
	d.errorf(rng, "Missing required argument", "The argument %q is required: %s.", name, what)
}

// item is one string value with where it was written.
type item struct {
	s   string
	rng hcl.Range
}

// value evaluates attr without variables or functions; ok is false when a
// diagnostic was added.
func (d *decoder) value(attr *hcl.Attribute) (cty.Value, bool) {
	return d.exprValue(attr.Expr, attr.Name, false)
}

// exprValue evaluates expr, the value of attribute name or, with elem, an
// element of it.
func (d *decoder) exprValue(expr hcl.Expression, name string, elem bool) (cty.Value, bool) {
	v, diags := expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		if elem {
			d.errorf(expr.Range(), "Missing value", "The elements of %s must not be null.", name)
		} else {
			d.errorf(expr.Range(), "Missing value", "%s is null; leave the attribute out for its default.", name)
		}
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() || v.IsMarked() {
		d.errorf(expr.Range(), "Invalid value", "The value of %s must be a constant.", name)
		return cty.NilVal, false
	}
	return v, true
}

// str evaluates attr as a string.
func (d *decoder) str(attr *hcl.Attribute) (item, bool) {
	v, ok := d.value(attr)
	if !ok {
		return item{}, false
	}
	return d.toString(v, attr.Expr.Range(), attr.Name)
}

func (d *decoder) toString(v cty.Value, rng hcl.Range, name string) (item, bool) {
	if !v.Type().IsPrimitiveType() {
		d.errorf(rng, "Expected a string", "%s must be a string, not %s.", name, v.Type().FriendlyName())
		return item{}, false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		d.errorf(rng, "Expected a string", "%s must be a string: %s.", name, err)
		return item{}, false
	}
	return item{s: s.AsString(), rng: rng}, true
}

// list evaluates attr as a static list of strings. ok is false when attr
// is absent or is not a list; elements with errors are left out.
func (d *decoder) list(attr *hcl.Attribute) ([]item, bool) {
	if attr == nil {
		return nil, false
	}
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range(), "Expected a list of strings",
			`%s must be a list in brackets, like %s = ["a", "b"]; write a single value as ["a"].`, attr.Name, attr.Name)
		return nil, false
	}
	items := make([]item, 0, len(exprs))
	for _, e := range exprs {
		v, ok := d.exprValue(e, attr.Name, true)
		if !ok {
			continue
		}
		if it, ok := d.toString(v, e.Range(), "Each element of "+attr.Name); ok {
			items = append(items, it)
		}
	}
	return items, true
}

// nonEmptyList is list for matchers: an empty list would match nothing,
// which is never what was meant.
func (d *decoder) nonEmptyList(attr *hcl.Attribute, absent string) ([]item, bool) {
	items, ok := d.list(attr)
	if ok && isEmptyList(attr) {
		d.errorf(attr.Expr.Range(), "Empty list",
			"An empty %s list would match nothing. Leave the attribute out to %s.", attr.Name, absent)
		return nil, false
	}
	return items, ok
}

func isEmptyList(attr *hcl.Attribute) bool {
	exprs, diags := hcl.ExprList(attr.Expr)
	return !diags.HasErrors() && len(exprs) == 0
}

func (d *decoder) boolean(attr *hcl.Attribute) bool {
	if attr == nil {
		return false
	}
	v, ok := d.value(attr)
	if !ok {
		return false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Expected true or false", "%s must be true or false.", attr.Name)
		return false
	}
	return b.True()
}

// integer evaluates attr as a whole number in [0, limit].
func (d *decoder) integer(attr *hcl.Attribute, def, limit int) int {
	if attr == nil {
		return def
	}
	v, ok := d.value(attr)
	if !ok {
		return def
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Expected a number", "%s must be a whole number.", attr.Name)
		return def
	}
	f := n.AsBigFloat()
	i, acc := f.Int64()
	if acc != big.Exact || !f.IsInt() {
		d.errorf(attr.Expr.Range(), "Expected a whole number", "%s must be a whole number, not %s.", attr.Name, f.Text('g', -1))
		return def
	}
	if i < 0 || i > int64(limit) {
		d.errorf(attr.Expr.Range(), "Number out of range", "%s must be between 0 and %d, not %d.", attr.Name, limit, i)
		return def
	}
	return int(i)
}

// duration evaluates attr as a Go duration string; zeroOK allows "0s"
// (where zero disables a timeout).
func (d *decoder) duration(attr *hcl.Attribute, def time.Duration, zeroOK bool) time.Duration {
	if attr == nil {
		return def
	}
	v, ok := d.value(attr)
	if !ok {
		return def
	}
	if v.Type() == cty.Number {
		d.errorf(attr.Expr.Range(), "Duration without a unit",
			`%s must be a duration string with a unit, like "30s", "5m" or "1h30m"; a bare number has no unit.`, attr.Name)
		return def
	}
	it, ok := d.toString(v, attr.Expr.Range(), attr.Name)
	if !ok {
		return def
	}
	t, err := time.ParseDuration(it.s)
	if err != nil {
		d.errorf(it.rng, "Invalid duration",
			`%q is not a duration: write a number with a unit (ns, us, ms, s, m, h), like "30s", "5m" or "1h30m".`, it.s)
		return def
	}
	switch {
	case t < 0:
		d.errorf(it.rng, "Negative duration", "%s must not be negative.", attr.Name)
		return def
	case t == 0 && !zeroOK:
		d.errorf(it.rng, "Zero duration", "%s must be longer than zero.", attr.Name)
		return def
	}
	return t
}

// oneOf checks it against the allowed words, suggesting the nearest.
func (d *decoder) oneOf(it item, what string, allowed ...string) bool {
	if slices.Contains(allowed, it.s) {
		return true
	}
	d.errorf(it.rng, "Unknown "+what, "%q is not a valid %s; use %s.%s", it.s, what, orList(allowed), didYouMean(it.s, allowed))
	return false
}

// orList renders ["a","b","c"] as `"a", "b" or "c"`.
func orList(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(w)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// config decodes and validates everything but the keytab's contents.
func (d *decoder) config(fb *fileBody, fileStart hcl.Range) *Config {
	cfg := &Config{
		Kerberos: Kerberos{ClockSkew: DefaultClockSkew},
		Timeouts: Timeouts{
			Negotiation: DefaultNegotiation,
			Connect:     DefaultConnect,
			Idle:        DefaultIdle,
			Bind:        DefaultBind,
			Shutdown:    DefaultShutdown,
		},
		Limits: Limits{MaxSessions: DefaultMaxSessions},
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
	}
	if l := fb.Log; l != nil {
		d.log(l, &cfg.Log)
	}
	if n := fb.NoAuth; n != nil && n.Sources == nil {
		d.missing(n.DefRange, "sources", `the networks whose clients may skip authentication, like sources = ["10.9.0.0/16"]`)
	} else if n != nil {
		items, _ := d.list(n.Sources)
		cfg.NoAuth = d.prefixes(items)
		for i, p := range cfg.NoAuth {
			if p.Bits() == 0 {
				d.warnf(items[i].rng, "Unauthenticated access from anywhere",
					"%s lets every %s address use the gateway without authentication: an open proxy if the listener is reachable from the Internet.",
					p, ipVersion(p.Addr()))
			}
		}
	}

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
		cfg.Rules = append(cfg.Rules, d.rule(fr, cfg.Groups, groupRanges, realmHint))
	}
	return cfg
}

func ipVersion(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
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
	out.ReplayCacheSize = d.integer(k.ReplayCacheSize, 0, 1<<30)
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

// checkServicePrincipal returns what is wrong with a service principal
// name, or "".
func checkServicePrincipal(s string) string {
	name, realm, hasRealm := strings.Cut(s, "@")
	switch {
	case s == "":
		return "is empty."
	case strings.ContainsAny(s, " \t\n"):
		return "contains white space."
	case hasRealm && (realm == "" || strings.Contains(realm, "@")):
		return `has an empty or second "@"; write "service/host" or "service/host@REALM".`
	case slices.Contains(strings.Split(name, "/"), ""):
		return `has an empty component; write "service/host" or "service/host@REALM".`
	case hasGlob(s):
		return "is a pattern; service principals are literal names."
	}
	return ""
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

// findRealm returns a realm the configuration mentions, for suggestions.
func findRealm(rules []*fileRule) string {
	scratch := &decoder{}
	for _, fr := range rules {
		for _, attr := range []*hcl.Attribute{fr.Realms, fr.Principals} {
			if attr == nil {
				continue
			}
			items, _ := scratch.list(attr)
			for _, it := range items {
				_, realm, ok := strings.Cut(it.s, "@")
				if attr == fr.Realms {
					realm, ok = it.s, true
				}
				if ok && realm != "" && !hasGlob(realm) {
					return realm
				}
			}
		}
	}
	return ""
}

func (d *decoder) rule(fr *fileRule, groups map[string][]string, groupRanges map[string]hcl.Range, realmHint string) *Rule {
	r := &Rule{Name: fr.Name, Range: fr.DefRange}
	if fr.Name == "" {
		d.errorf(fr.NameRange, "Empty rule name", "A rule needs a name: it appears in logs and decisions.")
	}
	if fr.Action != nil {
		if it, ok := d.str(fr.Action); ok && d.oneOf(it, "action", "allow", "deny") {
			if it.s == "deny" {
				r.Action = ActionDeny
			}
		}
	}

	if items, ok := d.nonEmptyList(fr.Principals, "match any principal"); ok {
		r.Principals = []string{}
		for _, it := range items {
			if d.principalPattern(it, realmHint) {
				r.Principals = append(r.Principals, it.s)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Realms, "match any realm"); ok {
		r.Realms = []string{}
		for _, it := range items {
			switch {
			case it.s == "" || strings.ContainsAny(it.s, "@ \t") || hasGlob(it.s):
				d.errorf(it.rng, "Invalid realm", "%q is not a realm name like \"EXAMPLE.TEST\"; realms are compared exactly.", it.s)
				continue
			case it.s != strings.ToUpper(it.s):
				d.warnRealmCase(it, it.s)
			}
			r.Realms = append(r.Realms, it.s)
		}
	}
	if items, ok := d.nonEmptyList(fr.Groups, "match any group"); ok {
		r.Groups, r.SIDs = []string{}, []string{}
		for _, it := range items {
			sids, ok := d.groupRef(it, groups, groupRanges)
			if ok {
				r.Groups = append(r.Groups, it.s)
				r.SIDs = append(r.SIDs, sids...)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Sources, "match any source"); ok {
		r.Sources = d.prefixes(items)
	}
	if items, ok := d.nonEmptyList(fr.Destinations, "match any destination"); ok {
		r.Destinations = []Destination{}
		for _, it := range items {
			if dst, ok := d.destination(it); ok {
				r.Destinations = append(r.Destinations, dst)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Ports, "match any port"); ok {
		r.Ports = []PortRange{}
		for _, it := range items {
			if pr, ok := d.portRange(it); ok {
				r.Ports = append(r.Ports, pr)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Commands, "match any command"); ok {
		r.Commands = []socks5.Command{}
		for _, it := range items {
			if d.oneOf(it, "command", "connect", "bind", "udp") {
				c := map[string]socks5.Command{"connect": socks5.CmdConnect, "bind": socks5.CmdBind, "udp": socks5.CmdUDPAssociate}[it.s]
				if !slices.Contains(r.Commands, c) {
					r.Commands = append(r.Commands, c)
				}
			}
		}
	}

	r.Protection = DefaultProtection()
	hasClear := false
	if items, ok := d.nonEmptyList(fr.Protection, "accept integrity and confidentiality"); ok {
		r.Protection = []encap.Level{}
		for _, it := range items {
			if it.s == "selective" {
				d.errorf(it.rng, "Unsupported protection level",
					`Selective protection (level 3, a per-message choice) is not supported; use "integrity" or "confidentiality".`)
				continue
			}
			if !d.oneOf(it, "protection level", "clear", "integrity", "confidentiality") {
				continue
			}
			l, _ := encap.ParseLevel(it.s)
			if !slices.Contains(r.Protection, l) {
				r.Protection = append(r.Protection, l)
			}
		}
		slices.Sort(r.Protection)
		hasClear = slices.Contains(r.Protection, encap.LevelClear)
	} else if fr.Protection != nil {
		hasClear = true // already diagnosed; do not pile on
	}
	r.NEC = d.boolean(fr.NEC)
	r.AuthOnly = d.boolean(fr.AuthOnly)
	if r.AuthOnly && !hasClear {
		d.errorf(fr.AuthOnly.Range, "auth_only needs clear",
			`auth_only answers a request for integrity or confidentiality with clear (authentication only), so "clear" must be in this rule's protection list: protection = ["clear", "integrity", "confidentiality"].`)
	}
	r.MaxSessionsPerPrincipal = d.integer(fr.MaxSessionsPerPrincipal, 0, 1<<30)
	r.IdleTimeout = d.duration(fr.IdleTimeout, 0, false)

	if r.Action == ActionDeny {
		for _, attr := range []*hcl.Attribute{fr.Protection, fr.NEC, fr.AuthOnly, fr.MaxSessionsPerPrincipal, fr.IdleTimeout} {
			if attr != nil {
				d.warnf(attr.NameRange, "Ignored in a deny rule",
					"%s only affects sessions a rule allows; rule %q denies.", attr.Name, fr.Name)
			}
		}
	}
	return r
}

func (d *decoder) warnRealmCase(it item, realm string) {
	d.warnf(it.rng, "Realm is not upper case",
		"Realms are compared exactly, and Kerberos realms are conventionally upper case: %q will not match tickets from %q.",
		realm, strings.ToUpper(realm))
}

// principalPattern checks a principals entry: "*", or name@REALM where
// either side may hold '*' and '?'.
func (d *decoder) principalPattern(it item, realmHint string) bool {
	s := it.s
	if s == "*" {
		return true
	}
	name, realm, ok := strings.Cut(s, "@")
	switch {
	case s == "":
		d.errorf(it.rng, "Empty principal pattern", "A principal pattern must not be empty.")
		return false
	case strings.ContainsAny(s, " \t\n"):
		d.errorf(it.rng, "Invalid principal pattern", "%q contains white space.", s)
		return false
	case !ok:
		hint := realmHint
		if hint == "" {
			hint = "REALM"
		}
		d.errorf(it.rng, "Principal without realm",
			"%q has no realm, and a name alone would match that name in every trusted realm. Did you mean %q? Write %q for any realm, or \"*\" for any principal.",
			s, s+"@"+hint, s+"@*")
		return false
	case name == "" || realm == "" || strings.Contains(realm, "@"):
		d.errorf(it.rng, "Invalid principal pattern",
			`%q must be "name@REALM" with both parts non-empty, like "alice@EXAMPLE.TEST" or "*@EXAMPLE.TEST".`, s)
		return false
	}
	if !hasGlob(realm) && realm != strings.ToUpper(realm) {
		d.warnRealmCase(it, realm)
	}
	return true
}

// groupRef resolves a groups entry: a literal SID, or a group alias.
func (d *decoder) groupRef(it item, groups map[string][]string, ranges map[string]hcl.Range) ([]string, bool) {
	if looksLikeSID(it.s) {
		sid, err := parseSID(it.s)
		if err != "" {
			d.errorf(it.rng, "Invalid SID", "%q is not a SID: %s.", it.s, err)
			return nil, false
		}
		return []string{sid}, true
	}
	if sids, ok := groups[it.s]; ok {
		return sids, true
	}
	if _, ok := ranges[it.s]; ok {
		return nil, false // declared but invalid: already diagnosed
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	d.errorf(it.rng, "Unknown group",
		`No group named %q is declared.%s A groups entry is the name of a group block or a literal SID such as "S-1-5-21-1004336348-1177238915-682003330-513".`,
		it.s, didYouMean(it.s, names))
	return nil, false
}

// prefixes parses networks; a bare address is a single host.
func (d *decoder) prefixes(items []item) []netip.Prefix {
	out := []netip.Prefix{}
	for _, it := range items {
		if p, ok := d.prefix(it, "network"); ok {
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) prefix(it item, what string) (netip.Prefix, bool) {
	if !strings.Contains(it.s, "/") {
		a, err := netip.ParseAddr(it.s)
		if err != nil || a.Zone() != "" {
			d.errorf(it.rng, "Invalid CIDR", `%q is not a %s like "10.0.0.0/8" or "2001:db8::/32", nor an IP address.`, it.s, what)
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(it.s)
	if err != nil {
		detail := `%q is not a %s like "10.0.0.0/8" or "2001:db8::/32"`
		if addr, bits, ok := strings.Cut(it.s, "/"); ok {
			if a, err := netip.ParseAddr(addr); err == nil {
				if n, err := strconv.Atoi(bits); err == nil && (n < 0 || n > a.BitLen()) {
					detail += fmt.Sprintf(": an %s prefix length is 0 to %d", ipVersion(a), a.BitLen())
				}
			}
		}
		d.errorf(it.rng, "Invalid CIDR", detail+".", it.s, what)
		return netip.Prefix{}, false
	}
	if p.Addr().Is4In6() {
		// ::ffff:10.0.0.0/104 is how an IPv4 network reaches a dual-stack
		// socket; matching unmaps addresses, so unmap the network too.
		if p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
	}
	if m := p.Masked(); m != p {
		d.warnf(it.rng, "CIDR has host bits set", "%q is the network %s; write that to make the range plain.", it.s, m)
		p = m
	}
	return p, true
}

func (d *decoder) destination(it item) (Destination, bool) {
	s := it.s
	if strings.Contains(s, "/") {
		p, ok := d.prefix(it, "destination network")
		return Destination{Prefix: p}, ok
	}
	if a, err := netip.ParseAddr(s); err == nil {
		p, ok := d.prefix(item{s: a.WithZone("").String(), rng: it.rng}, "destination")
		return Destination{Prefix: p}, ok
	}
	if s == "*" {
		d.errorf(it.rng, "Invalid destination", `"*" alone is not a destination pattern; leave destinations out to match every destination.`)
		return Destination{}, false
	}
	if _, port, err := net.SplitHostPort(s); err == nil {
		d.errorf(it.rng, "Invalid destination", "%q holds a port; list ports in the ports attribute (ports = [%q]).", s, port)
		return Destination{}, false
	}
	name := normHost(s)
	check := strings.TrimPrefix(name, "*.")
	if !validHostname(check) {
		d.errorf(it.rng, "Invalid destination",
			`%q is not a network ("10.0.0.0/8"), an address, a host name ("intranet.example.test") or a "*." pattern ("*.corp.example.test"); '*' may only be the whole first label.`, s)
		return Destination{}, false
	}
	return Destination{Name: name}, true
}

// validHostname accepts LDH names with underscores (as found in SRV-style
// and Active Directory names), without empty labels.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (d *decoder) portRange(it item) (PortRange, bool) {
	lo, hi, isRange := strings.Cut(it.s, "-")
	a, okA := d.port(it, lo)
	b, okB := a, okA
	if isRange {
		b, okB = d.port(it, hi)
	}
	if !okA || !okB {
		return PortRange{}, false
	}
	if a > b {
		d.errorf(it.rng, "Inverted port range", "%q starts above its end; did you mean \"%d-%d\"?", it.s, b, a)
		return PortRange{}, false
	}
	return PortRange{Lo: uint16(a), Hi: uint16(b)}, true
}

func (d *decoder) port(it item, s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil && strings.Trim(s, "0123456789 ") == "" && s != "":
		// All digits, so ParseInt failed on size.
		d.errorf(it.rng, "Port out of range", "%q: ports are 0 to 65535.", it.s)
		return 0, false
	case err != nil:
		d.errorf(it.rng, "Invalid port", `%q is not a port or port range; write "443" or "8000-8999".`, it.s)
		return 0, false
	case n < 0 || n > 65535:
		d.errorf(it.rng, "Port out of range", "%q: ports are 0 to 65535.", it.s)
		return 0, false
	}
	return n, true
}

// looksLikeSID reports whether s is meant as a SID.
func looksLikeSID(s string) bool { return len(s) >= 2 && (s[0] == 'S' || s[0] == 's') && s[1] == '-' }

// parseSID checks the string form of a SID (MS-DTYP §2.4.2.1),
// S-1-<authority>-<subauthority>..., and returns it with an upper-case S,
// or what is wrong.
func parseSID(s string) (string, string) {
	parts := strings.Split(s, "-")
	switch {
	case !looksLikeSID(s):
		return "", `a SID starts with "S-"`
	case len(parts) < 3:
		return "", "a SID has a revision and an identifier authority, like S-1-5-32-544"
	case parts[1] != "1":
		return "", "the revision must be 1"
	case len(parts) > 3+15:
		return "", "a SID has at most 15 subauthorities"
	}
	auth := parts[2]
	var err error
	if strings.HasPrefix(auth, "0x") || strings.HasPrefix(auth, "0X") {
		_, err = strconv.ParseUint(auth[2:], 16, 48)
	} else {
		_, err = strconv.ParseUint(auth, 10, 48)
	}
	if err != nil {
		return "", fmt.Sprintf("the identifier authority %q is not a number", auth)
	}
	for _, sub := range parts[3:] {
		if _, err := strconv.ParseUint(sub, 10, 32); err != nil {
			return "", fmt.Sprintf("the subauthority %q is not a 32-bit number", sub)
		}
	}
	return "S" + s[1:], ""
}
