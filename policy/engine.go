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

// Identity is who the client authenticated as. The zero Identity is an
// unauthenticated (no_auth) session.
type Identity struct {
	Principal   string // "alice@EXAMPLE.TEST"; "" when unauthenticated
	Name, Realm string // "alice", "EXAMPLE.TEST"; derived from Principal when empty
	UserSID     string // from the PAC, when the ticket has one
	GroupSIDs   []string
}

// Authenticated reports whether id names a principal.
func (id Identity) Authenticated() bool { return id.Principal != "" || id.Name != "" }

func (id Identity) String() string {
	if !id.Authenticated() {
		return "unauthenticated client"
	}
	p, _, _ := id.parts()
	return p
}

// parts returns "name@REALM", name and realm, filling in whichever of
// Principal and Name/Realm the caller left out.
func (id Identity) parts() (principal, name, realm string) {
	principal, name, realm = id.Principal, id.Name, id.Realm
	if principal == "" {
		if name != "" {
			principal = name + "@" + realm
		}
		return
	}
	if name == "" || realm == "" {
		if i := strings.LastIndexByte(principal, '@'); i >= 0 {
			if name == "" {
				name = principal[:i]
			}
			if realm == "" {
				realm = principal[i+1:]
			}
		} else if name == "" {
			name = principal
		}
	}
	return
}

// Request is a SOCKS5 request to decide.
type Request struct {
	Identity Identity
	Source   netip.Addr // the client's address
	Command  socks5.Command
	Host     string       // destination as a name when the client sent a domain, else ""
	Addrs    []netip.Addr // the literal address, or every address the name resolved to
	Port     uint16
	Level    Level // the negotiated protection level
	NEC      bool  // the level was negotiated in the unwrapped (NEC) form
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
	Reason                  string
	IdleTimeout             time.Duration // from the rule; 0: Timeouts.Idle
	MaxSessionsPerPrincipal int           // from the rule; 0: no limit
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
}

// Engine decides requests by a list of rules. It is immutable and safe for
// concurrent use.
type Engine struct {
	rules []*compiled
}

// compiled is a Rule prepared for matching.
type compiled struct {
	Rule
	sids     map[string]struct{}
	commands uint8 // bit 1<<Command
	levels   uint8 // bit 1<<Level
	names    map[string]struct{}
	suffixes []string // ".corp.example.test" for "*.corp.example.test"
	nets     []netip.Prefix

	allowReason, denyReason string
}

// ErrInvalidRule is wrapped by NewEngine's errors: a rule breaks an
// invariant the matchers rely on.
var ErrInvalidRule = errors.New("policy: invalid rule")

// NewEngine prepares rules for matching, in order: the first matching rule
// decides. It copies them, and checks what matching relies on, failing
// with an error wrapping ErrInvalidRule for: an empty or repeated name, an
// unknown action or command, an invalid network, a destination that is
// neither a network nor a lower-case name (without a trailing dot), an
// inverted port range, or a protection level above confidentiality. The
// config package only builds rules that pass.
func NewEngine(rules []Rule) (*Engine, error) {
	e := &Engine{rules: make([]*compiled, 0, len(rules))}
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
	for _, l := range r.Protection {
		if l > LevelConfidentiality {
			return fmt.Errorf("protection level %s is not supported", l)
		}
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
	for _, cmd := range r.Commands {
		c.commands |= 1 << cmd
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
			c.nets = append(c.nets, d.Prefix)
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
	src                    netip.Addr
	host                   string
}

func newView(r *Request) view {
	v := view{r: r, src: normAddr(r.Source)}
	v.principal, v.name, v.realm = r.Identity.parts()
	v.host = NormalizeHost(r.Host)
	return v
}

// NormalizeHost returns a destination name in the form rules hold and
// compare names: lower case, without a trailing dot.
func NormalizeHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// Decide returns the decision of the first rule matching r, or the default
// deny.
func (e *Engine) Decide(r Request) Decision {
	v := newView(&r)
	for _, c := range e.rules {
		if c.matches(&v) {
			return c.decide(&r)
		}
	}
	return defaultDeny
}

var defaultDeny = Decision{Reason: "no rule matches (default deny)"}

// Explain is Decide that also says why each rule before the deciding one
// (every rule, for the default deny) did not match.
func (e *Engine) Explain(r Request) (Decision, []Miss) {
	v := newView(&r)
	var misses []Miss
	for _, c := range e.rules {
		if c.matches(&v) {
			return c.decide(&r), misses
		}
		misses = append(misses, Miss{Rule: c.Name, Why: strings.Join(c.why(&v), "; ")})
	}
	return defaultDeny, misses
}

func (c *compiled) decide(r *Request) Decision {
	if c.Action == ActionDeny {
		return Decision{Rule: c.Name, Reason: c.denyReason}
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

// ChooseLevel picks the protection level granted to a client that
// requested one (RFC 1961 §4), before its SOCKS request is known. The
// candidates are the allow rules whose identity and source matchers match,
// in order, up to the first rule without request matchers (destinations,
// ports, commands), which decides every request: after it nothing is
// reached. A deny rule without request matchers ends the scan likewise.
//
// Then, among the candidates (those accepting the NEC form, when nec):
// the requested level is granted when one accepts it; else clear, when
// one is auth_only; else the lowest accepted level above the requested
// one. Otherwise, and for selective protection (level 3) always, the error
// is a *Denied: the session is refused before its request.
func (e *Engine) ChooseLevel(id Identity, src netip.Addr, requested Level, nec bool) (LevelChoice, error) {
	if requested > LevelConfidentiality {
		return LevelChoice{}, &Denied{Reason: fmt.Sprintf("protection level %s is not supported", requested)}
	}
	r := Request{Identity: id, Source: src}
	v := newView(&r)
	var cands []*compiled
	for _, c := range e.rules {
		if !c.matchesIdentity(&v) {
			continue
		}
		if c.Action == ActionDeny {
			if c.hasRequestMatchers() {
				continue
			}
			if len(cands) == 0 {
				return LevelChoice{}, &Denied{Rule: c.Name, Reason: c.denyReason}
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

// matches reports whether every matcher of c matches.
func (c *compiled) matches(v *view) bool {
	return c.matchesIdentity(v) &&
		c.matchCommand(v.r.Command) &&
		c.matchPort(v.r.Port) &&
		c.matchDestination(v.host, v.r.Addrs)
}

// matchesIdentity covers what is known before the SOCKS request.
func (c *compiled) matchesIdentity(v *view) bool {
	return c.matchPrincipal(v.principal) &&
		c.matchRealm(v.principal, v.realm) &&
		c.matchGroups(&v.r.Identity) &&
		c.matchSource(v.src)
}

// why lists the matchers of c that fail for v.
func (c *compiled) why(v *view) []string {
	var out []string
	if !c.matchPrincipal(v.principal) {
		if v.principal == "" {
			out = append(out, "principals: unauthenticated session")
		} else {
			out = append(out, fmt.Sprintf("principal %s not in principals %v", v.principal, c.Principals))
		}
	}
	if !c.matchRealm(v.principal, v.realm) {
		if v.principal == "" {
			out = append(out, "realms: unauthenticated session")
		} else {
			out = append(out, fmt.Sprintf("realm %s not in realms %v", v.realm, c.Realms))
		}
	}
	if !c.matchGroups(&v.r.Identity) {
		if v.principal == "" {
			out = append(out, "groups: unauthenticated session")
		} else {
			out = append(out, fmt.Sprintf("no SID of the client in groups %v", c.Groups))
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
	if !c.matchDestination(v.host, v.r.Addrs) {
		dest := joinStrings(v.r.Addrs)
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

func (c *compiled) matchPrincipal(principal string) bool {
	if c.Principals == nil {
		return true
	}
	if principal == "" {
		return false
	}
	for _, p := range c.Principals {
		if globMatch(p, principal) {
			return true
		}
	}
	return false
}

func (c *compiled) matchRealm(principal, realm string) bool {
	if c.Realms == nil {
		return true
	}
	if principal == "" {
		return false
	}
	for _, r := range c.Realms {
		if r == realm {
			return true
		}
	}
	return false
}

func (c *compiled) matchGroups(id *Identity) bool {
	if c.SIDs == nil && c.Groups == nil {
		return true
	}
	if id.UserSID != "" {
		if _, ok := c.sids[strings.ToUpper(id.UserSID)]; ok {
			return true
		}
	}
	for _, s := range id.GroupSIDs {
		if _, ok := c.sids[strings.ToUpper(s)]; ok {
			return true
		}
	}
	return false
}

func (c *compiled) matchSource(src netip.Addr) bool {
	return c.Sources == nil || Sources(c.Sources).Contains(src)
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

// matchDestination matches host against the names and addrs against the
// networks: all of addrs for an allow rule, any for a deny rule.
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
		in := c.inNets(normAddr(a))
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
