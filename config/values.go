package config

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// The typed value helpers: each evaluates an attribute (or one element of
// a list) as one kind of value, checks its range and reports a problem at
// the element's own position, returning a usable default so that decoding
// goes on and every problem is reported.

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

func (d *decoder) boolean(attr *hcl.Attribute) bool { return d.booleanOr(attr, false) }

// booleanOr evaluates attr as true or false, def when absent.
func (d *decoder) booleanOr(attr *hcl.Attribute, def bool) bool {
	if attr == nil {
		return def
	}
	v, ok := d.value(attr)
	if !ok {
		return def
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		d.errorf(attr.Expr.Range(), "Expected true or false", "%s must be true or false.", attr.Name)
		return def
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

func (d *decoder) destination(it item) (policy.Destination, bool) {
	s := it.s
	if strings.Contains(s, "/") {
		p, ok := d.prefix(it, "destination network")
		return policy.Destination{Prefix: p}, ok
	}
	if a, ok := policy.ParseAddrLiteral(s); ok {
		// The request side reads such names as addresses too, so a rule
		// must: "127.1" is 127.0.0.1, not a host name.
		a = a.WithZone("")
		plain, err := netip.ParseAddr(s)
		if compat := err == nil && plain.Is6() && !plain.Is4In6() && a.Is4(); err != nil || compat {
			d.warnf(it.rng, "Address in an unusual form", "%q is the address %s, as a resolver reads it; write %q.", s, a, a.String())
		}
		return policy.Destination{Prefix: netip.PrefixFrom(a, a.BitLen())}, true
	}
	if s == "*" {
		d.errorf(it.rng, "Invalid destination", `"*" alone is not a destination pattern; leave destinations out to match every destination.`)
		return policy.Destination{}, false
	}
	if _, port, err := net.SplitHostPort(s); err == nil {
		d.errorf(it.rng, "Invalid destination", "%q holds a port; list ports in the ports attribute (ports = [%q]).", s, port)
		return policy.Destination{}, false
	}
	name := policy.NormalizeHost(s)
	check := strings.TrimPrefix(name, "*.")
	if !validHostname(check) {
		d.errorf(it.rng, "Invalid destination",
			`%q is not a network ("10.0.0.0/8"), an address, a host name ("intranet.example.test") or a "*." pattern ("*.corp.example.test"); '*' may only be the whole first label.`, s)
		return policy.Destination{}, false
	}
	return policy.Destination{Name: name}, true
}

func (d *decoder) portRange(it item) (policy.PortRange, bool) {
	lo, hi, isRange := strings.Cut(it.s, "-")
	a, okA := d.port(it, lo)
	b, okB := a, okA
	if isRange {
		b, okB = d.port(it, hi)
	}
	if !okA || !okB {
		return policy.PortRange{}, false
	}
	if a > b {
		d.errorf(it.rng, "Inverted port range", "%q starts above its end; did you mean \"%d-%d\"?", it.s, b, a)
		return policy.PortRange{}, false
	}
	return policy.PortRange{Lo: uint16(a), Hi: uint16(b)}, true
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
