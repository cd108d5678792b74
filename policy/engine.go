package policy

import (
	"errors"
	"fmt"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is a SOCKS5 request to decide. The engine normalises the
// destination again (a Host that is an address literal is that address;
// every address goes through CanonicalAddr), but the caller must dial
// what NormalizeDest and CanonicalAddrs return, so that the addresses
// judged are the addresses dialled.
type Request struct {
	Identity Identity
	Source   netip.Addr // the client's address
	Command  socks5.Command
	Host     string       // destination as a name when the client sent a domain, else ""
	Addrs    []netip.Addr // the literal address, or every address the name resolved to
	Port     uint16
	Level    Level // the negotiated protection level
	NEC      bool  // the level was negotiated in the unwrapped (NEC) form
	// Method is the front door and authentication of the session;
	// MethodUnknown matches only rules without a methods matcher.
	Method Method
}

func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s from %s: %s ", r.Identity, r.Source, r.Command)
	if r.Host != "" {
		b.WriteString(r.Host)
		if len(r.Addrs) > 0 {
			b.WriteByte(' ')
		}
	}
	if len(r.Addrs) > 0 || r.Host == "" {
		b.WriteString(joinStrings(r.Addrs))
	}
	fmt.Fprintf(&b, " port %d, %s", r.Port, r.Level)
	if r.NEC {
		b.WriteString(" (NEC)")
	}
	if r.Method != MethodUnknown {
		fmt.Fprintf(&b, ", method %s", r.Method)
	}
	return b.String()
}

// Decision is the outcome of Decide.
type Decision struct {
	Allow bool
	// Rule names the deciding rule; "" for the default deny.
	Rule string
	// Reason is for people: `rule "staff" allows`, `rule "deny-db" denies`,
	// `no rule matches (default deny)`, `protection clear not accepted by
	// rule "staff" (accepts integrity, confidentiality)`.
	Reason string
	// GatewayLocal says why the destination is gateway-local, like
	// "0.0.0.0 is the unspecified address, which the kernel delivers to
	// the gateway itself"; "" when it is not. It is set whoever decided:
	// Rule is GatewayLocalRule only when the built-in deny overrode an
	// allow rule.
	GatewayLocal            string
	IdleTimeout             time.Duration // from the rule; 0: Timeouts.Idle
	MaxSessionsPerPrincipal int           // from the rule; 0: no limit
	// OutliveTicket is how long past the ticket's end time the session
	// may run (from the rule); 0: it ends at the ticket's end time.
	OutliveTicket time.Duration
}

// Err returns nil for an allow and a *Denied for a deny.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &Denied{Rule: d.Rule, Reason: d.Reason}
}

// Denied is a refusal by policy. The server answers a denied SOCKS request
// with reply 02 (connection not allowed by ruleset) and a refused
// protection level with the GSS-API abort message, and audits Rule and
// Reason.
type Denied struct {
	Rule   string // the deciding rule; "" when no rule matched
	Reason string
}

func (d *Denied) Error() string { return "policy: denied: " + d.Reason }

// Miss says why a rule did not match, for explaining a decision.
type Miss struct {
	Rule string
	Why  string // the failed matchers, like `port 22 not in ports [80 443]`
}

func (m Miss) String() string { return fmt.Sprintf("rule %q: %s", m.Rule, m.Why) }

// LevelChoice is the protection level granted to a session.
type LevelChoice struct {
	Level  Level
	Rule   string // the rule that accepts Level
	Reason string
	// AuthOnlyNoSequence: clear was granted to a protected-level request
	// because the client cannot protect a stream and the rule is
	// auth_only (LevelRequest.CanProtectStream).
	AuthOnlyNoSequence bool
}

// Engine decides requests by a list of rules. It is immutable and safe for
// concurrent use.
type Engine struct {
	rules  []*compiled
	gl     GatewayLocal
	local  localSet
	realms realmTable
}

// compiled is a Rule prepared for matching.
type compiled struct {
	Rule
	sids        map[string]struct{}
	commands    uint8 // bit 1<<Command
	methods     uint8 // bit 1<<Method
	levels      uint8 // bit 1<<Level
	names       map[string]struct{}
	suffixes    []string // ".corp.example.test" for "*.corp.example.test"
	nets        []netip.Prefix
	foldedPrins []string // Principals lower-cased, for case-insensitive identities

	allowReason, denyReason string
}

// ErrInvalidRule is wrapped by NewEngine's errors: a rule breaks an
// invariant the matchers rely on.
var ErrInvalidRule = errors.New("policy: invalid rule")

// ErrInvalidOption is wrapped by NewEngine's errors for an Option it
// cannot use: an invalid network or address, a realm without a name or
// listed twice.
var ErrInvalidOption = errors.New("policy: invalid engine option")

// Option sets what an Engine decides by besides its rules. Without
// options an Engine has the built-in gateway-local deny on, knows none of
// the gateway's interface addresses, and has the default settings for
// every realm.
type Option func(*options)

type options struct {
	gl     GatewayLocal
	ifaces []netip.Addr
	realms []Realm
}

// WithGatewayLocal configures the built-in gateway-local deny.
func WithGatewayLocal(g GatewayLocal) Option {
	return func(o *options) { o.gl = GatewayLocal{Off: g.Off, Extra: cloneNil(g.Extra)} }
}

// WithLocalAddrs gives the gateway's own addresses (its interfaces'), which
// are gateway-local. The caller lists them; the engine does no I/O.
func WithLocalAddrs(addrs []netip.Addr) Option {
	return func(o *options) { o.ifaces = cloneNil(addrs) }
}

// WithRealms gives the settings of realms; others get the zero Realm's.
func WithRealms(realms []Realm) Option {
	return func(o *options) { o.realms = cloneNil(realms) }
}

// NewEngine prepares rules for matching, in order: the first matching rule
// decides. It copies them, and checks what matching relies on, failing
// with an error wrapping ErrInvalidRule for: an empty or repeated name, an
// unknown action or command, an invalid network, a destination that is
// neither a network nor a lower-case name (without a trailing dot), an
// inverted port range, or a protection level above confidentiality. The
// config package only builds rules that pass. Invalid options fail with
// ErrInvalidOption.
func NewEngine(rules []Rule, opts ...Option) (*Engine, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	e := &Engine{rules: make([]*compiled, 0, len(rules)), gl: o.gl}
	for _, p := range o.gl.Extra {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid gateway-local network %s", ErrInvalidOption, p)
		}
		e.local.extra = append(e.local.extra, p.Masked())
	}
	e.local.off = o.gl.Off
	e.local.ifaces = localAddrs(o.ifaces)
	var err error
	if e.realms, err = newRealmTable(o.realms); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidOption, err)
	}
	seen := make(map[string]struct{}, len(rules))
	for i := range rules {
		r := rules[i].clone()
		if err := validate(&r); err != nil {
			return nil, fmt.Errorf("%w %d %q: %s", ErrInvalidRule, i+1, r.Name, err)
		}
		if _, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("%w %d %q: the name is not unique", ErrInvalidRule, i+1, r.Name)
		}
		seen[r.Name] = struct{}{}
		e.rules = append(e.rules, compile(r))
	}
	return e, nil
}

// localAddrs canonicalises interface addresses for the gateway-local set,
// dropping invalid ones and zones (fe80::1%eth0 is fe80::1 to matching).
func localAddrs(addrs []netip.Addr) []netip.Addr {
	out := CanonicalAddrs(addrs)
	for i := range out {
		out[i] = out[i].WithZone("")
	}
	return out
}

// ReplaceLocalAddrs returns an engine like e whose gateway addresses are
// addrs, for a server that watches its interfaces change. e is unchanged.
func (e *Engine) ReplaceLocalAddrs(addrs []netip.Addr) *Engine {
	n := *e
	n.local.ifaces = localAddrs(addrs)
	return &n
}

// GatewayLocal returns the gateway-local settings.
func (e *Engine) GatewayLocal() GatewayLocal {
	return GatewayLocal{Off: e.gl.Off, Extra: cloneNil(e.gl.Extra)}
}

// LocalAddrs returns the gateway addresses the engine knows, canonical and
// without zones.
func (e *Engine) LocalAddrs() []netip.Addr { return cloneNil(e.local.ifaces) }

// Realm returns the settings for clients of realm.
func (e *Engine) Realm(realm string) Realm { return e.realms.get(realm) }

// Realms returns the configured realm settings.
func (e *Engine) Realms() []Realm { return cloneNil(e.realms.list) }

// Identify is NewIdentity with the settings of c's realm: the Identity
// the server decides by, from what the acceptor established.
func (e *Engine) Identify(c Client) (Identity, error) {
	return NewIdentity(c, e.realms.get(c.Realm))
}

// validate checks one rule for NewEngine; the error text is for people.
func validate(r *Rule) error {
	if r.Name == "" {
		return errors.New("no name")
	}
	if r.Action != ActionAllow && r.Action != ActionDeny {
		return fmt.Errorf("unknown %s", r.Action)
	}
	for _, p := range r.Sources {
		if !p.IsValid() {
			return fmt.Errorf("invalid source network %s", p)
		}
	}
	for _, d := range r.Destinations {
		switch {
		case d.Name == "" && !d.Prefix.IsValid():
			return errors.New("a destination with neither a name nor a valid network")
		case d.Name != "" && d.Prefix.IsValid():
			return fmt.Errorf("destination %q has both a name and a network", d.Name)
		case d.Name != "" && d.Name != NormalizeHost(d.Name):
			return fmt.Errorf("destination name %q is not lower case without a trailing dot", d.Name)
		}
	}
	for _, p := range r.Ports {
		if p.Lo > p.Hi {
			return fmt.Errorf("inverted port range %d-%d", p.Lo, p.Hi)
		}
	}
	for _, c := range r.Commands {
		if c != socks5.CmdConnect && c != socks5.CmdBind && c != socks5.CmdUDPAssociate {
			return fmt.Errorf("unknown command %s", c)
		}
	}
	for _, m := range r.Methods {
		if _, ok := ParseMethod(m.String()); !ok {
			return fmt.Errorf("unknown method %s", m)
		}
	}
	for _, l := range r.Protection {
		if l > LevelConfidentiality {
			return fmt.Errorf("protection level %s is not supported", l)
		}
	}
	if r.OutliveTicket < 0 {
		return fmt.Errorf("negative outlive_ticket %s", r.OutliveTicket)
	}
	return nil
}

func compile(r Rule) *compiled {
	c := &compiled{
		Rule:        r,
		allowReason: fmt.Sprintf("rule %q allows", r.Name),
		denyReason:  fmt.Sprintf("rule %q denies", r.Name),
	}
	if r.SIDs != nil {
		c.sids = make(map[string]struct{}, len(r.SIDs))
		for _, s := range r.SIDs {
			c.sids[strings.ToUpper(s)] = struct{}{}
		}
	}
	for _, p := range r.Principals {
		c.foldedPrins = append(c.foldedPrins, strings.ToLower(p))
	}
	for _, cmd := range r.Commands {
		c.commands |= 1 << cmd
	}
	for _, m := range r.Methods {
		c.methods |= 1 << m
	}
	for _, l := range c.protection() {
		c.levels |= 1 << l
	}
	for _, d := range r.Destinations {
		switch {
		case strings.HasPrefix(d.Name, "*."):
			c.suffixes = append(c.suffixes, d.Name[1:])
		case d.Name != "":
			if c.names == nil {
				c.names = make(map[string]struct{})
			}
			c.names[d.Name] = struct{}{}
		default:
			// Rules hold networks as written; matching compares
			// canonical addresses, so unmap an IPv4-mapped network.
			p := d.Prefix
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			c.nets = append(c.nets, p.Masked())
		}
	}
	return c
}

// Rules returns a copy of the engine's rules, in order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, c := range e.rules {
		out[i] = c.Rule.clone()
	}
	return out
}

// view is a Request normalized once for matching.
type view struct {
	r                      *Request
	principal, name, realm string
	folded                 string // principal lower-cased, when case-insensitive
	src                    netip.Addr
	host                   string
	// addrs are the addresses judged: canonical, zoneless, with the
	// address a literal Host stands for, and with the loopback address
	// that an unspecified or "this network" address reaches.
	addrs []netip.Addr
	// noPAC: the client's realm issues no PACs, so unknown groups are
	// none.
	noPAC bool
	// local is the first gateway-local address among addrs, and why.
	local    netip.Addr
	localWhy string
}

func (e *Engine) newView(r *Request) view {
	if r.Method != MethodUnknown && !r.Method.Authenticates() {
		// A session of an unauthenticated method has no identity,
		// whatever the caller put in the request (a SOCKS4 USERID
		// must never become one).
		r.Identity = Identity{}
	}
	v := view{r: r, src: normAddr(r.Source)}
	v.principal, v.name, v.realm = r.Identity.parts()
	if r.Identity.CaseInsensitive {
		v.folded = strings.ToLower(v.principal)
	}
	if v.principal != "" && !r.Identity.GroupsKnown {
		v.noPAC = e.realms.get(v.realm).NoPAC
	}
	v.host = NormalizeHost(r.Host)
	add := func(a netip.Addr) {
		for _, b := range v.addrs {
			if a == b {
				return
			}
		}
		v.addrs = append(v.addrs, a)
	}
	judge := func(a netip.Addr) {
		if !a.IsValid() {
			return
		}
		a = CanonicalAddr(a).WithZone("")
		add(a)
		if alias, ok := thisHostAlias(a); ok {
			add(alias)
		}
	}
	if a, ok := ParseAddrLiteral(v.host); ok {
		// A name that is an address is that address, to the resolver
		// and to the rules: it matches no name rule.
		v.host = ""
		judge(a)
	}
	for _, a := range r.Addrs {
		judge(a)
	}
	for _, a := range v.addrs {
		if k := e.local.kind(a); k != "" {
			v.local, v.localWhy = a, fmt.Sprintf("%s is %s", a, k)
			break
		}
	}
	return v
}

// NormalizeHost returns a destination name in the form rules hold and
// compare names: lower case, without a trailing dot.
func NormalizeHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// Decide returns the decision of the first rule matching r, or the default
// deny; an allow reaching a gateway-local destination that the rule does
// not name is overridden by the built-in gateway-local deny (GatewayLocal).
func (e *Engine) Decide(r Request) Decision {
	d, _ := e.explain(r, false)
	return d
}

// defaultDeny is the Reason of the default deny.
const defaultDeny = "no rule matches (default deny)"

// Explain is Decide that also says why each rule before the first
// matching one (every rule, when none matches) did not match.
func (e *Engine) Explain(r Request) (Decision, []Miss) {
	return e.explain(r, true)
}

func (e *Engine) explain(r Request, collect bool) (Decision, []Miss) {
	v := e.newView(&r)
	var misses []Miss
	for _, c := range e.rules {
		if m := c.match(&v); m != noMatch {
			d := c.decide(&r, m)
			d.GatewayLocal = v.localWhy
			return e.gatewayLocal(d, c, &v), misses
		}
		if collect {
			misses = append(misses, Miss{Rule: c.Name, Why: strings.Join(c.why(&v), "; ")})
		}
	}
	return Decision{Reason: defaultDeny, GatewayLocal: v.localWhy}, misses
}

// gatewayLocal applies the built-in gateway-local deny to the decision d
// of rule c: an allow stands only if every gateway-local address judged
// lies in a network of c that is wholly gateway-local.
func (e *Engine) gatewayLocal(d Decision, c *compiled, v *view) Decision {
	if !d.Allow || e.local.off || v.localWhy == "" {
		return d
	}
	for _, a := range v.addrs {
		if e.local.kind(a) == "" {
			continue
		}
		named := false
		for _, p := range c.nets {
			if p.Contains(a) && e.local.within(p) {
				named = true
				break
			}
		}
		if !named {
			return Decision{
				Rule: GatewayLocalRule,
				Reason: fmt.Sprintf("gateway-local destination refused: %s; rule %q would allow it but names no gateway-local network holding %s",
					v.localWhy, c.Name, a),
				GatewayLocal: v.localWhy,
			}
		}
	}
	return d
}

// groupsUnknownDeny is added to the reason of a deny rule that matched
// only because the client's groups are unknown.
const groupsUnknownDeny = "groups unknown (no PAC): deny rule matches (fail closed)"

func (c *compiled) decide(r *Request, m match) Decision {
	if c.Action == ActionDeny {
		reason := c.denyReason
		if m == matchGroupsUnknown {
			reason += " (" + groupsUnknownDeny + ")"
		}
		return Decision{Rule: c.Name, Reason: reason}
	}
	if !c.accepts(r.Level) {
		return Decision{Rule: c.Name, Reason: fmt.Sprintf("protection %s not accepted by rule %q (accepts %s)",
			r.Level, c.Name, levelList(c.protection()))}
	}
	if r.NEC && !c.NEC {
		return Decision{Rule: c.Name, Reason: fmt.Sprintf("the unwrapped (NEC) protection-level form is not accepted by rule %q", c.Name)}
	}
	return Decision{
		Allow:                   true,
		Rule:                    c.Name,
		Reason:                  c.allowReason,
		IdleTimeout:             c.IdleTimeout,
		MaxSessionsPerPrincipal: c.MaxSessionsPerPrincipal,
		OutliveTicket:           c.OutliveTicket,
	}
}

func (c *compiled) accepts(l Level) bool {
	return l <= LevelConfidentiality && c.levels&(1<<l) != 0
}

func (c *compiled) protection() []Level {
	if c.Protection == nil {
		return DefaultProtection()
	}
	return c.Protection
}

// LevelRequest is what is known when a client asks for a protection
// level (RFC 1961 §4): who it is, where from, what it asked and how.
type LevelRequest struct {
	Identity  Identity
	Source    netip.Addr
	Requested Level
	// NEC: the client sent the unwrapped (NEC) form of the level message.
	NEC bool
	// CanProtectStream reports that the client can protect a stream:
	// its GSS-API context was established with sequencing (the
	// GSS_C_SEQUENCE_FLAG in the authenticator's 0x8003 checksum,
	// RFC 4121 §4.1.1). A client that asked for integrity or
	// confidentiality without it (curl since 8.17, which then sends its
	// SOCKS request unencapsulated) gets clear from an auth_only rule.
	CanProtectStream bool
}

// ChooseLevel is ChooseLevelFor a client that can protect a stream.
func (e *Engine) ChooseLevel(id Identity, src netip.Addr, requested Level, nec bool) (LevelChoice, error) {
	return e.ChooseLevelFor(LevelRequest{Identity: id, Source: src, Requested: requested, NEC: nec, CanProtectStream: true})
}

// ChooseLevelFor picks the protection level granted to a client that
// requested one (RFC 1961 §4), before its SOCKS request is known. Only
// GSS-API sessions negotiate a level, so a methods matcher is judged for
// MethodGSSAPI. The candidates are the allow rules whose identity, method
// and source matchers match,
// in order, up to the first rule without request matchers (destinations,
// ports, commands), which decides every request: after it nothing is
// reached. A deny rule without request matchers ends the scan likewise.
//
// Then, among the candidates (those accepting the NEC form, when NEC):
// for integrity or confidentiality asked by a client that cannot protect
// a stream (!CanProtectStream), clear when one is auth_only and accepts
// clear; the requested level when one accepts it; else clear, when one is
// auth_only; else the lowest accepted level above the requested one.
// Otherwise, and for selective protection (level 3) always, the error is
// a *Denied: the session is refused before its request.
func (e *Engine) ChooseLevelFor(lr LevelRequest) (LevelChoice, error) {
	id, src, requested, nec := lr.Identity, lr.Source, lr.Requested, lr.NEC
	if requested > LevelConfidentiality {
		return LevelChoice{}, &Denied{Reason: fmt.Sprintf("protection level %s is not supported", requested)}
	}
	// Only GSS-API negotiates a level (RFC 1961 §4): the candidates are
	// the rules that match GSS-API sessions.
	r := Request{Identity: id, Source: src, Method: MethodGSSAPI}
	v := e.newView(&r)
	var cands []*compiled
	for _, c := range e.rules {
		m := c.matchIdentity(&v)
		if m == noMatch {
			continue
		}
		if c.Action == ActionDeny {
			if c.hasRequestMatchers() {
				continue
			}
			if len(cands) == 0 {
				return LevelChoice{}, &Denied{Rule: c.Name, Reason: c.decide(&r, m).Reason}
			}
			break
		}
		cands = append(cands, c)
		if !c.hasRequestMatchers() {
			break
		}
	}
	if len(cands) == 0 {
		return LevelChoice{}, &Denied{Reason: fmt.Sprintf("no allow rule matches %s from %s", id, v.src)}
	}
	if nec {
		first := cands[0].Name
		cands = filter(cands, func(c *compiled) bool { return c.NEC })
		if len(cands) == 0 {
			return LevelChoice{}, &Denied{Rule: first, Reason: "the unwrapped (NEC) protection-level form is not accepted by the matching rules"}
		}
	}

	if requested > LevelClear && !lr.CanProtectStream {
		if c := firstWith(cands, func(c *compiled) bool { return c.AuthOnly && c.accepts(LevelClear) }); c != nil {
			return LevelChoice{Level: LevelClear, Rule: c.Name, AuthOnlyNoSequence: true,
				Reason: fmt.Sprintf("%s requested without the GSS sequence flag (the client cannot protect a stream), clear granted: rule %q is auth_only", requested, c.Name)}, nil
		}
	}
	if c := firstWith(cands, func(c *compiled) bool { return c.accepts(requested) }); c != nil {
		return LevelChoice{Level: requested, Rule: c.Name,
			Reason: fmt.Sprintf("%s requested, accepted by rule %q", requested, c.Name)}, nil
	}
	if requested > LevelClear {
		if c := firstWith(cands, func(c *compiled) bool { return c.AuthOnly && c.accepts(LevelClear) }); c != nil {
			return LevelChoice{Level: LevelClear, Rule: c.Name,
				Reason: fmt.Sprintf("%s requested, clear granted: rule %q is auth_only", requested, c.Name)}, nil
		}
	}
	for l := requested + 1; l <= LevelConfidentiality; l++ {
		if c := firstWith(cands, func(c *compiled) bool { return c.accepts(l) }); c != nil {
			return LevelChoice{Level: l, Rule: c.Name,
				Reason: fmt.Sprintf("%s requested, raised to %s: the matching rules do not accept %s", requested, l, requested)}, nil
		}
	}
	var union []Level
	for l := LevelClear; l <= LevelConfidentiality; l++ {
		if firstWith(cands, func(c *compiled) bool { return c.accepts(l) }) != nil {
			union = append(union, l)
		}
	}
	return LevelChoice{}, &Denied{Rule: cands[0].Name,
		Reason: fmt.Sprintf("%s requested, but the matching rules accept only %s", requested, levelList(union))}
}

func firstWith(cs []*compiled, f func(*compiled) bool) *compiled {
	for _, c := range cs {
		if f(c) {
			return c
		}
	}
	return nil
}

func filter(cs []*compiled, f func(*compiled) bool) []*compiled {
	var out []*compiled
	for _, c := range cs {
		if f(c) {
			out = append(out, c)
		}
	}
	return out
}

// match is how a rule matched.
type match uint8

const (
	noMatch match = iota
	matched
	// matchGroupsUnknown: a deny rule with groups matched a client whose
	// groups are unknown (fail closed).
	matchGroupsUnknown
)

// match reports whether every matcher of c matches, and how.
func (c *compiled) match(v *view) match {
	m := c.matchIdentity(v)
	if m == noMatch || !c.matchCommand(v.r.Command) || !c.matchPort(v.r.Port) || !c.matchDestination(v.host, v.addrs) {
		return noMatch
	}
	return m
}

// matchIdentity covers what is known before the SOCKS request.
func (c *compiled) matchIdentity(v *view) match {
	if !c.admits(v.r.Identity.Kind) || !c.matchMethod(v.r.Method) || !c.matchPrincipal(v) || !c.matchRealm(v) || !c.matchSource(v.src) {
		return noMatch
	}
	return c.matchGroups(v)
}

// why lists the matchers of c that fail for v.
func (c *compiled) why(v *view) []string {
	var out []string
	if k := v.r.Identity.Kind; !c.admits(k) {
		out = append(out, fmt.Sprintf("%s client: allow rule without allow_%s", k, kindOptIn(k)))
	}
	if !c.matchMethod(v.r.Method) {
		out = append(out, fmt.Sprintf("method %s not in %s", v.r.Method, joinStrings(c.Methods)))
	}
	if !c.matchPrincipal(v) {
		if v.principal == "" {
			out = append(out, "principals: unauthenticated session")
		} else {
			note := v.caseNote()
			if c.wildcardsSkip(v) {
				note += " (wildcards match users only)"
			}
			out = append(out, fmt.Sprintf("principal %s not in principals %v%s", v.principal, c.Principals, note))
		}
	}
	if !c.matchRealm(v) {
		if v.principal == "" {
			out = append(out, "realms: unauthenticated session")
		} else {
			out = append(out, fmt.Sprintf("realm %s not in realms %v%s", v.realm, c.Realms, v.caseNote()))
		}
	}
	if c.matchGroups(v) == noMatch {
		switch {
		case v.principal == "":
			out = append(out, "groups: unauthenticated session")
		case v.r.Identity.GroupsKnown:
			out = append(out, fmt.Sprintf("no SID of the client in groups %v", c.Groups))
		case v.noPAC:
			out = append(out, fmt.Sprintf("groups %v: realm %s issues no PAC, so the client is in no group", c.Groups, v.realm))
		default:
			out = append(out, fmt.Sprintf("groups %v: groups unknown (no PAC): allow rule does not match", c.Groups))
		}
	}
	if !c.matchSource(v.src) {
		out = append(out, fmt.Sprintf("source %s not in sources %s", v.src, joinStrings(c.Sources)))
	}
	if !c.matchCommand(v.r.Command) {
		out = append(out, fmt.Sprintf("command %s not in commands %s", v.r.Command, joinStrings(c.Commands)))
	}
	if !c.matchPort(v.r.Port) {
		out = append(out, fmt.Sprintf("port %d not in ports %s", v.r.Port, joinStrings(c.Ports)))
	}
	if !c.matchDestination(v.host, v.addrs) {
		dest := joinStrings(v.addrs)
		if v.host != "" {
			dest = v.host + " " + dest
		}
		how := "every address"
		if c.Action == ActionDeny {
			how = "an address"
		}
		out = append(out, fmt.Sprintf("destination %s not in destinations %s (name, or %s)", dest, joinStrings(c.Destinations), how))
	}
	return out
}

func (v *view) caseNote() string {
	if v.r.Identity.CaseInsensitive {
		return " (ignoring case)"
	}
	return ""
}

// admits reports whether c may match a client of kind k at all: deny
// rules match every kind, allow rules users and the kinds they opt in to.
func (c *compiled) admits(k ClientKind) bool {
	switch {
	case k == ClientUser || c.Action == ActionDeny:
		return true
	case k == ClientAnonymous:
		return c.AllowAnonymous
	case k == ClientService:
		return c.AllowServiceClients
	}
	return false
}

// kindOptIn names the rule attribute that admits kind k.
func kindOptIn(k ClientKind) string {
	if k == ClientAnonymous {
		return "anonymous"
	}
	return "service_clients"
}

// wildcardsSkip reports whether c's principal patterns with wildcards
// are not to match v: an allow rule and a client that is not a user.
func (c *compiled) wildcardsSkip(v *view) bool {
	return c.Action == ActionAllow && v.r.Identity.Kind != ClientUser
}

func (c *compiled) matchPrincipal(v *view) bool {
	if c.Principals == nil {
		return true
	}
	if v.principal == "" {
		return false
	}
	skipGlobs := c.wildcardsSkip(v)
	for i, p := range c.Principals {
		if skipGlobs && hasGlob(p) {
			continue
		}
		if v.r.Identity.CaseInsensitive {
			if globMatch(c.foldedPrins[i], v.folded) {
				return true
			}
		} else if globMatch(p, v.principal) {
			return true
		}
	}
	return false
}

func (c *compiled) matchRealm(v *view) bool {
	if c.Realms == nil {
		return true
	}
	if v.principal == "" {
		return false
	}
	for _, r := range c.Realms {
		if r == v.realm || v.r.Identity.CaseInsensitive && strings.EqualFold(r, v.realm) {
			return true
		}
	}
	return false
}

// matchGroups: an unauthenticated session is in no group; an
// authenticated one whose groups are unknown (no verified PAC) fails
// closed, matched by deny rules and not by allow rules, unless its realm
// issues no PACs.
func (c *compiled) matchGroups(v *view) match {
	if c.SIDs == nil && c.Groups == nil {
		return matched
	}
	id := &v.r.Identity
	if v.principal == "" {
		return noMatch
	}
	if !id.GroupsKnown {
		if c.Action == ActionDeny && !v.noPAC {
			return matchGroupsUnknown
		}
		return noMatch
	}
	if id.UserSID != "" {
		if _, ok := c.sids[strings.ToUpper(id.UserSID)]; ok {
			return matched
		}
	}
	for _, s := range id.GroupSIDs {
		if _, ok := c.sids[strings.ToUpper(s)]; ok {
			return matched
		}
	}
	return noMatch
}

func (c *compiled) matchSource(src netip.Addr) bool {
	return c.Sources == nil || Sources(c.Sources).Contains(src)
}

// matchMethod: an absent matcher matches every method, MethodUnknown
// included; a list never matches MethodUnknown (it has no bit).
func (c *compiled) matchMethod(m Method) bool {
	return c.Methods == nil || (m != MethodUnknown && m < 8 && c.methods&(1<<m) != 0)
}

func (c *compiled) matchCommand(cmd socks5.Command) bool {
	return c.Commands == nil || (cmd < 8 && c.commands&(1<<cmd) != 0)
}

func (c *compiled) matchPort(port uint16) bool {
	if c.Ports == nil {
		return true
	}
	for _, p := range c.Ports {
		if p.Contains(port) {
			return true
		}
	}
	return false
}

// matchDestination matches host against the names and addrs (judged:
// canonical, zoneless) against the networks: all of addrs for an allow
// rule, any for a deny rule.
func (c *compiled) matchDestination(host string, addrs []netip.Addr) bool {
	if c.Destinations == nil {
		return true
	}
	if host != "" {
		if _, ok := c.names[host]; ok {
			return true
		}
		for _, s := range c.suffixes {
			if len(host) > len(s) && strings.HasSuffix(host, s) {
				return true
			}
		}
	}
	if len(c.nets) == 0 || len(addrs) == 0 {
		return false
	}
	deny := c.Action == ActionDeny
	for _, a := range addrs {
		in := c.inNets(a)
		if deny && in {
			return true
		}
		if !deny && !in {
			return false
		}
	}
	return !deny
}

func (c *compiled) inNets(a netip.Addr) bool {
	for _, p := range c.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// globMatch reports whether s matches pattern, where '*' matches any run
// of characters and '?' one character.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		// Mismatch: let the last star swallow one more character.
		if starPx >= 0 && starSx < len(s) {
			_, n := utf8.DecodeRuneInString(s[starSx:])
			starSx += n
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?") }
