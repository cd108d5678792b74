package danteconf

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/config"
	"github.com/hashicorp/hcl/v2"
)

// Options adjust ConvertWith.
type Options struct {
	// ProxyHost is the host name clients use to reach the proxy: the host
	// part of the service principals ("rcmd/" + ProxyHost). Empty takes it
	// from an internal: host name; failing that, the output leaves the
	// principals commented out, with a note to fill in the host.
	ProxyHost string
}

// Convert is ConvertWith without options.
func Convert(f *File) (hcl []byte, notes []Note) { return ConvertWith(f, Options{}) }

// ConvertWith writes f as a gssocks HCL configuration that package config
// loads without errors (checked here, with the keytab left alone), and
// returns the notes on what was left out or changed, in line order. The
// output starts with a comment listing the notes; each block and attribute
// carries a comment naming its sockd.conf line.
//
// What maps: internal: (listen), gssapi.keytab and gssapi.servicename
// (kerberos), timeout.negotiate, timeout.io and timeout.connect (timeouts),
// debug (log level), socksmethod: none (no_auth), client block rules (deny
// rules first), client pass rules (the sources of every allow rule, and
// their gssapi.enctype and clientcompatibility: necgssapi), socks pass and
// socks block rules (rule blocks in order: from: as sources, to: as
// destinations and ports, command: and protocol: as commands, user: as
// principals, gssapi.enctype as protection, pac.sid as groups,
// timeout.io as idle_timeout). See the package documentation for how
// what does not map fails closed.
func ConvertWith(f *File, opts Options) ([]byte, []Note) {
	c := &converter{f: f, opts: opts, notes: notes{file: f.Name}}
	c.settings()
	c.clientRules()
	c.socksRules()
	c.finish()
	top, blocks := c.top(), c.blocks()
	c.check(render(nil, top, blocks))
	return render(c.header(), top, blocks), c.notes.sorted()
}

// Protection levels as a bit set.
const (
	lvlClear = 1 << iota
	lvlIntegrity
	lvlConfidentiality
	lvlDefault = lvlIntegrity | lvlConfidentiality // Dante's and gssocks's default
)

func levelNames(m int) []string {
	var out []string
	for _, l := range []struct {
		bit  int
		name string
	}{{lvlClear, "clear"}, {lvlIntegrity, "integrity"}, {lvlConfidentiality, "confidentiality"}} {
		if m&l.bit != 0 {
			out = append(out, l.name)
		}
	}
	return out
}

// SOCKS commands as a bit set; the reply "commands" are Dante's.
const (
	cmdConnect = 1 << iota
	cmdBind
	cmdUDP
	cmdBindReply
	cmdUDPReply
	cmdAll     = cmdConnect | cmdBind | cmdUDP
	cmdReplies = cmdBindReply | cmdUDPReply
)

// profile is what a client pass rule decides for the clients it lets in:
// the GSS-API settings Dante takes from the client rule.
type profile struct {
	nec       bool
	necLine   int
	levels    int // 0: not given
	levelLine int
	methods   []string // nil: not restricted (the client rule's socksmethod)
	set       prefixSet
	lines     []int // the client pass rules
}

func (p *profile) key() string {
	return fmt.Sprint(p.nec, p.levels, p.methods)
}

// pendingBlock is a client block rule waiting for the client pass rules
// after it: it matters only for the clients they let in.
type pendingBlock struct {
	r      *Rule
	whole  prefixSet // its networks
	set    prefixSet // its networks less those of earlier client pass rules
	passes int       // client pass rules before it
}

// ruleOut is a rule of the output.
type ruleOut struct {
	block hclBlock
	line  int // the sockd.conf rule
}

type converter struct {
	f     *File
	opts  Options
	notes notes

	listen      []hclAttr
	listenAddrs []netip.Addr // the literal addresses listened on
	listenPorts []int
	proxyHost   string // from an internal: host name
	hostLine    int    // its line

	methods     []string // global socksmethod
	methodLines []int
	keytabs     []Value // gssapi.keytab values, in order
	services    []Value // gssapi.servicename values, in order
	gssUsed     bool    // some rule or setting involves GSS-API

	timeouts []hclAttr
	logLevel *hclAttr

	clientSeen   bool
	clientCount  int
	passUnion    prefixSet   // networks the client pass rules so far let in
	passes       []prefixSet // the networks of each client pass rule converted
	blocked      []pendingBlock
	profiles     []*profile
	clientDenies []ruleOut

	rules       []ruleOut
	noAuth      prefixSet
	noAuthLines []int
	gssOnly     []int // indexes in rules of gssapi-only allow rules awaiting principals = ["*"]
	names       map[string]bool
	sawV4Any    bool
	outRules    int
	outEntries  int
	stopped     bool
}

func (c *converter) note(kind NoteKind, line int, keyword, format string, args ...any) {
	c.notes.add(kind, line, keyword, format, args...)
}

func (c *converter) src(lines ...int) string { return srcComment(c.f.Name, lines...) }

// seconds reads a timeout value.
func seconds(s *Setting) (int, bool) {
	if len(s.Values) != 1 {
		return 0, false
	}
	n, err := parseNumber(s.Values[0].Text)
	if err != nil || n > 1<<31 {
		return 0, false
	}
	return int(n), true
}

// settings converts the server settings.
func (c *converter) settings() {
	for _, s := range c.f.Settings {
		switch k := s.Key; {
		case k == "internal":
			c.internal(s)
		case k == "socksmethod" || k == "method":
			c.methods = append(c.methods, s.Words()...)
			c.methodLines = append(c.methodLines, s.Line)
			if k == "method" {
				c.note(Info, s.Line, k, "read as socksmethod, its name since Dante 1.4")
			}
		case k == "clientmethod":
			for _, m := range s.Words() {
				if m != "none" {
					c.note(Unmapped, s.Line, k, "method %s: gssocks has no client-rule authentication (ident, PAM); only GSS-API and, from no_auth sources, none", m)
				}
			}
		case k == "timeout.negotiate":
			c.timeout(s, "negotiation", "the default 10s applies: gssocks needs a limit for method selection and the GSS-API exchange")
		case k == "timeout.connect" || k == "connecttimeout":
			c.timeout(s, "connect", "the default 30s applies (Dante's 0 left it to the system)")
		case k == "timeout.io" || k == "timeout.io.tcp" || k == "iotimeout":
			c.ioTimeout(s)
		case k == "timeout.io.udp":
			c.note(Unmapped, s.Line, k, "gssocks has one idle timeout (timeouts.idle) for TCP sessions and UDP associations alike")
		case k == "timeout.tcp_fin_wait":
			c.note(Unmapped, s.Line, k, "gssocks leaves half-closed connections to the kernel's FIN_WAIT_2 timeout")
		case k == "debug":
			if n, ok := seconds(s); ok && n > 0 {
				c.logLevel = &hclAttr{name: "level", value: hclString("debug"), src: c.src(s.Line)}
			}
		case k == "logoutput" || k == "errorlog":
			c.note(Unmapped, s.Line, k, "gssocks logs to standard error (the journal under systemd), as text or JSON (log { format }); decisions can go to a file of their own (log { audit })")
		case k == "external" || k == "external.protocol" || k == "external.rotation":
			c.note(Unmapped, s.Line, k, "gssocks connects out from the address the kernel's routing table picks for each destination (Dante's external.rotation: route); it has no setting for the outgoing address")
		case k == "internal.protocol":
			c.note(Unmapped, s.Line, k, "gssocks listens on the addresses in listen, of either family")
		case strings.HasPrefix(k, "user."):
			c.note(Unmapped, s.Line, k, "gssocks does not switch user IDs: run it as its own unprivileged user (the systemd unit's User=), with CAP_NET_BIND_SERVICE for a port below 1024")
		case k == "gssapi.keytab":
			c.keytabs = append(c.keytabs, s.Values...)
			c.gssUsed = true
		case k == "gssapi.servicename":
			c.services = append(c.services, s.Values...)
			c.gssUsed = true
		case k == "compatibility" || k == "extension":
			c.note(Unmapped, s.Line, k, "gssocks implements RFC 1928 without Dante's extensions and compatibility modes (sameport, reuseaddr, draft-5.05, bind)")
		case k == "srchost":
			c.note(Unmapped, s.Line, k, "gssocks does not look up clients in DNS; it matches their addresses")
		case k == "udp.connectdst":
			c.note(Unmapped, s.Line, k, "gssocks relays UDP replies only from the destinations the client sent to, whether or not the socket is connected")
		case strings.HasPrefix(k, "libwrap"):
			c.note(Unmapped, s.Line, k, "gssocks does not consult tcp-wrappers (hosts.allow, hosts.deny); use rules with sources, or a firewall")
		case strings.HasPrefix(k, "cpu.") || strings.HasPrefix(k, "child."):
			c.note(Unmapped, s.Line, k, "gssocks is one process; the Go runtime schedules its work")
		case strings.HasPrefix(k, "internal.") || strings.HasPrefix(k, "external.") || strings.HasPrefix(k, "socket."):
			c.note(Unmapped, s.Line, k, "gssocks sets no socket options or per-interface logging")
		default:
			c.note(Unmapped, s.Line, k, "not a server setting gssocks knows")
		}
	}
	for _, r := range c.f.Rules {
		for _, s := range r.Settings {
			switch s.Key {
			case "gssapi.keytab":
				c.keytabs = append(c.keytabs, s.Values...)
			case "gssapi.servicename":
				c.services = append(c.services, s.Values...)
			}
		}
	}
	c.globalMethods()
}

// globalMethods settles the global socksmethod list.
func (c *converter) globalMethods() {
	line := 0
	if len(c.methodLines) > 0 {
		line = c.methodLines[0]
	}
	var kept []string
	for _, m := range c.methods {
		switch m {
		case "gssapi", "none":
			if !slices.Contains(kept, m) {
				kept = append(kept, m)
			}
		default:
			c.note(Unmapped, line, "socksmethod", "method %s: gssocks authenticates with GSS-API (Kerberos) only; clients using %s must get Kerberos tickets", m, m)
		}
	}
	switch {
	case len(c.methods) == 0:
		c.note(Review, 0, "socksmethod", "no socksmethod: Dante 1.4 then refuses every request; converted as if it were socksmethod: gssapi")
		kept = []string{"gssapi"}
	case !slices.Contains(kept, "gssapi"):
		c.note(Review, line, "socksmethod", "GSS-API is not among the methods; converted as if it were: gssocks always offers it")
		kept = append([]string{"gssapi"}, kept...)
	}
	c.methods = kept
	if slices.Contains(kept, "gssapi") {
		c.gssUsed = true
	}
}

// timeout converts a timeout in seconds to the timeouts attribute name.
func (c *converter) timeout(s *Setting, name, zero string) {
	n, ok := seconds(s)
	switch {
	case !ok:
		c.note(Unmapped, s.Line, s.Key, "the value is not a number of seconds")
	case n == 0:
		c.note(Review, s.Line, s.Key, "0: %s", zero)
	default:
		c.setTimeout(name, fmt.Sprintf("%ds", n), s.Line)
	}
	if s.Key == "connecttimeout" {
		c.note(Info, s.Line, s.Key, "read as timeout.connect, as Dante 1.4 does (in Dante 1.2 it limited the negotiation)")
	}
}

func (c *converter) ioTimeout(s *Setting) {
	n, ok := seconds(s)
	if !ok {
		c.note(Unmapped, s.Line, s.Key, "the value is not a number of seconds")
		return
	}
	// 0 is Dante's "never", which "0s" is in gssocks too.
	c.setTimeout("idle", fmt.Sprintf("%ds", n), s.Line)
	if s.Key == "iotimeout" {
		c.note(Info, s.Line, s.Key, "read as timeout.io, its name since Dante 1.4")
	}
}

func (c *converter) setTimeout(name, value string, line int) {
	for i, a := range c.timeouts {
		if a.name == name {
			c.timeouts[i] = hclAttr{name: name, value: hclString(value), src: c.src(line)}
			return
		}
	}
	c.timeouts = append(c.timeouts, hclAttr{name: name, value: hclString(value), src: c.src(line)})
}

// internal converts an internal: address into a listen address.
func (c *converter) internal(s *Setting) {
	a := s.Addr
	port := 1080 // Dante's default
	if a.Port != nil {
		if a.Port.Op != PortEq || a.Port.Port <= 0 || a.Port.Port > 65535 {
			c.note(Review, s.Line, "internal", "the port must be one number, like port = 1080; 1080 used")
		} else {
			port = a.Port.Port
		}
	}
	var host string
	switch a.Kind {
	case AddrPrefix:
		if !a.Prefix.IsSingleIP() && a.Prefix.Bits() != 0 {
			c.note(Unmapped, s.Line, "internal", "%s is a network, not an address to listen on", a.Text)
			return
		}
		ip := a.Prefix.Addr()
		host = ip.String()
		if a.Prefix.Bits() == 0 {
			host = ""
		}
		c.listenAddrs = append(c.listenAddrs, ip)
	case AddrName:
		if !strings.Contains(a.Name, ".") {
			host = "127.0.0.1"
			c.note(Review, s.Line, "internal", "%s is an interface name: gssocks listens on addresses, so the output listens on 127.0.0.1 (reachable from this host only) until you replace it with an address of %s", a.Name, a.Name)
			c.listenAddrs = append(c.listenAddrs, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
			break
		}
		host = a.Name
		if c.proxyHost == "" {
			c.proxyHost, c.hostLine = a.Name, s.Line
		}
	default:
		c.note(Unmapped, s.Line, "internal", "%s is not an address to listen on", a.Text)
		return
	}
	v := net.JoinHostPort(host, strconv.Itoa(port))
	for _, l := range c.listen {
		if l.value == hclString(v) {
			return
		}
	}
	c.listenPorts = append(c.listenPorts, port)
	c.listen = append(c.listen, hclAttr{value: hclString(v), src: c.src(s.Line)})
}

// conds gathers what a rule requires that gssocks cannot check, and
// the rule's remarks.
type conds struct {
	unusable []string // conditions gssocks cannot check, for notes
}

func (u *conds) add(why string) { u.unusable = append(u.unusable, why) }

// actionNote notes a rule keyword that changes what a matching rule does,
// not what it matches: left out without changing the match.
func (c *converter) actionNote(r *Rule, s *Setting) bool {
	k := s.Key
	var why string
	switch {
	case k == "log":
		why = "gssocks writes a record of every decision and session end (the audit log, log { audit })"
	case k == "libwrap":
		why = "gssocks does not run tcp-wrappers commands"
	case k == "bandwidth":
		why = "gssocks has no bandwidth limits"
	case strings.HasPrefix(k, "session."):
		why = "gssocks limits sessions in total (limits { max_sessions }) and per principal (a rule's max_sessions_per_principal), not per rule, per source address or per unit of time"
	case k == "timeout.negotiate" || k == "timeout.connect":
		why = "gssocks has this timeout for the whole gateway (the timeouts block), not per rule"
	case k == "timeout.tcp_fin_wait":
		why = "gssocks leaves half-closed connections to the kernel's FIN_WAIT_2 timeout"
	case k == "timeout.io.udp":
		why = "gssocks has one idle timeout for TCP sessions and UDP associations; per rule, idle_timeout covers TCP sessions"
	case k == "udp.portrange":
		why = "gssocks takes the relay port of a UDP ASSOCIATE from the kernel's ephemeral range"
	case k == "pam.servicename" || k == "bsdauth.stylename":
		why = "gssocks authenticates with GSS-API only"
	case k == "pac.off":
		why = "gssocks always verifies the PAC of a ticket that carries one (see the realm block's pac setting)"
	case strings.HasPrefix(k, "ldap.") && !strings.HasPrefix(k, "ldap.group"):
		why = "gssocks takes group membership from the ticket's PAC, not from LDAP"
	case strings.HasPrefix(k, "internal.") || strings.HasPrefix(k, "external.") || strings.HasPrefix(k, "socket."):
		why = "gssocks sets no socket options or per-interface logging"
	case k == "gssapi.keytab" || k == "gssapi.servicename":
		return true // the kerberos block
	default:
		return false
	}
	c.note(Unmapped, s.Line, k, "%s", why)
	return true
}

// clientRules folds the client rules into deny rules and, per profile,
// the networks allowed in.
func (c *converter) clientRules() {
	for _, r := range c.f.Rules {
		switch r.Kind {
		case HostIDRule:
			c.note(Unmapped, r.Line, r.Name(), "gssocks does not read the TCP host-ID option; the rule is left out")
		case RouteBlock:
			c.note(Unmapped, r.Line, "route", "gssocks connects to destinations itself and does not chain to another proxy; the route is left out")
		case MonitorBlock:
			c.note(Unmapped, r.Line, "monitor", "gssocks has no traffic alarms (its logs and audit log record every session); the monitor is left out")
		case ClientRule:
			c.clientSeen = true
			if c.clientCount++; c.clientCount > maxClientRules {
				c.note(Review, r.Line, r.Name(), "more than %d client rules: this one and those after it are left out (fail closed: clients only they let in are refused)", maxClientRules)
				continue
			}
			c.clientRule(r)
		}
	}
	if !c.clientSeen {
		c.note(Review, 0, "client pass", "no client rules: Dante 1.4 then refuses every client; converted as if a client pass rule let every client in")
		c.profiles = []*profile{{set: everyAddress(), levels: lvlDefault}}
		c.passUnion = everyAddress()
	}
	for _, pb := range c.blocked {
		c.clientDeny(pb)
	}
}

// maxClientRules bounds the client rules folded into the rules: each is
// set against those before it.
const maxClientRules = 256

// The output is bounded, so that a hostile file cannot make it, and the
// check of it (rule against rule), huge: a real conversion has dozens of
// rules with a few entries each.
const (
	maxOutRules   = 2048
	maxOutEntries = 10000 // list elements over all rules
)

// room reserves space for a rule of n list elements; when there is none,
// the conversion of rules stops there, failing closed: the rules from line
// on are left out, so what they allowed is refused (a deny rule after the
// cut only denied what no later rule allows either).
func (c *converter) room(n, line int) bool {
	if c.stopped || c.outRules+1 > maxOutRules || c.outEntries+n > maxOutEntries {
		if !c.stopped {
			c.note(Review, line, "", "conversion stopped here: the output would pass %d rules or %d list elements; the rules from this line on are left out, so what they allowed is refused", maxOutRules, maxOutEntries)
		}
		c.stopped = true
		return false
	}
	c.outRules++
	c.outEntries += n
	return true
}

// maxNetworks bounds a set computed from client rules: taking a host out
// of an IPv6 network leaves up to 128 networks.
const maxNetworks = 1024

// source reads a rule's from: address as networks; ok is false when
// gssocks cannot match it.
func (c *converter) source(r *Rule, u *conds) (prefixSet, bool) {
	a := r.From
	if a == nil {
		return everyAddress(), true
	}
	if a.Port != nil && !a.Port.Every() {
		u.add(fmt.Sprintf("from: port condition on line %d (gssocks does not match client ports)", a.Line))
	}
	switch a.Kind {
	case AddrAny:
		return everyAddress(), true
	case AddrPrefix:
		if a.Prefix.Bits() == 0 && a.Prefix.Addr().Is4() {
			c.v4Any(a)
			return everyAddress(), true
		}
		return prefixSet{a.Prefix}, true
	case AddrName, AddrDomain:
		u.add(fmt.Sprintf("from: %s on line %d (gssocks matches client addresses, not names)", a.Text, a.Line))
	default:
		u.add(fmt.Sprintf("from: %s on line %d (not a CIDR network)", a.Text, a.Line))
	}
	return nil, false
}

// v4Any notes, once, that 0.0.0.0/0 is read as every address.
func (c *converter) v4Any(a *Address) {
	if !c.sawV4Any {
		c.sawV4Any = true
		c.note(Info, a.Line, "0.0.0.0/0", "read as every address, IPv6 too, as \"0/0\" is in Dante 1.4 (where 0.0.0.0/0 is IPv4 only)")
	}
}

// clientRule folds one client rule in.
func (c *converter) clientRule(r *Rule) {
	var u conds
	p := &profile{lines: []int{r.Line}}
	set, fromOK := c.source(r, &u)
	if c.listenTo(r) {
		c.note(Info, r.Line, r.Name(), "never matches: its to: holds none of the addresses and ports listened on; left out")
		return
	}
	for _, s := range r.Settings {
		if c.actionNote(r, s) {
			continue
		}
		switch s.Key {
		case "clientmethod", "method":
			if !slices.Contains(s.Words(), "none") {
				u.add(fmt.Sprintf("clientmethod: %s on line %d (gssocks has no ident or PAM client authentication)", strings.Join(s.Words(), " "), s.Line))
			}
		case "socksmethod":
			for _, m := range s.Words() {
				if m == "gssapi" || m == "none" {
					p.methods = append(p.methods, m)
				}
			}
			if len(p.methods) == 0 {
				u.add(fmt.Sprintf("socksmethod: %s on line %d (gssocks offers GSS-API only)", strings.Join(s.Words(), " "), s.Line))
			}
		case "gssapi.enctype":
			p.levels |= c.levels(s)
			p.levelLine = s.Line
		case "clientcompatibility":
			for _, w := range s.Words() {
				if w == "necgssapi" {
					p.nec, p.necLine = true, s.Line
				} else {
					c.note(Unmapped, s.Line, s.Key, "%s is not a compatibility mode gssocks has", w)
				}
			}
		default:
			u.add(c.conditionWhy(s))
		}
	}
	if p.levels == 0 {
		p.levels = lvlDefault // Dante's default: integrity and confidentiality
	}
	if r.Verdict == Pass {
		if !fromOK || len(u.unusable) > 0 {
			c.note(Review, r.Line, r.Name(), "left out, so the clients it let in are refused (fail closed): %s", strings.Join(u.unusable, "; "))
			return
		}
		c.addProfile(p, set)
		c.passUnion = c.passUnion.union(set)
		c.passes = append(c.passes, set.norm())
		return
	}
	// client block
	if !fromOK && r.From != nil && (r.From.Kind == AddrName || r.From.Kind == AddrDomain || r.From.Kind == AddrMask) {
		c.note(Review, r.Line, r.Name(), "NOT converted: gssocks cannot refuse clients by name or by a non-contiguous netmask (%s); refuse their addresses in a deny rule or a firewall", r.From.Text)
		return
	}
	if len(u.unusable) > 0 {
		c.note(Review, r.Line, r.Name(), "converted without %s, so it refuses more clients than in Dante (fail closed)", strings.Join(u.unusable, "; "))
	}
	rest, ok := set.subtract(c.passUnion, maxNetworks)
	if !ok {
		rest = set.norm()
		c.note(Review, r.Line, r.Name(), "earlier client pass rules carve too many networks out of it to list; it refuses all its networks, clients those rules let in too (fail closed)")
	}
	c.blocked = append(c.blocked, pendingBlock{r: r, whole: set.norm(), set: rest, passes: len(c.passes)})
}

// clientDeny writes a client block rule as a deny rule for the clients
// that a later client pass rule would otherwise let in: the others are
// kept out already, as every allow rule's sources are narrowed to what the
// client pass rules let in.
func (c *converter) clientDeny(pb pendingBlock) {
	r := pb.r
	var later prefixSet
	for _, p := range c.passes[pb.passes:] {
		later = later.union(p)
	}
	deny := pb.set.intersect(later)
	if len(deny) == 0 {
		c.note(Info, r.Line, r.Name(), "no rule needed: no client pass rule lets in the clients it refuses (earlier ones match first), and every allow rule is narrowed to the clients client pass rules let in")
		return
	}
	if !c.room(len(deny), r.Line) {
		return
	}
	if !slices.Equal(deny, pb.whole) {
		c.note(Info, r.Line, r.Name(), "earlier client pass rules match some of its networks first, and no later one lets in some others; the deny rule lists the rest")
	}
	name := c.ruleName(r, "")
	b := hclBlock{
		above: []string{fmt.Sprintf("%s: %s. Dante refused these clients when they connected; gssocks refuses their requests (SOCKS reply 02) after authentication.", c.src(r.Line), r.Name())},
		typ:   "rule", label: name,
		attrs: []hclAttr{{name: "action", value: hclString("deny"), src: c.src(r.Line)}},
	}
	if !deny.isEvery() {
		line := r.Line
		if r.From != nil {
			line = r.From.Line
		}
		b.attrs = append(b.attrs, hclAttr{name: "sources", value: hclList(deny.strings()), src: c.src(line)})
	}
	c.clientDenies = append(c.clientDenies, ruleOut{block: b, line: r.Line})
}

// listenTo checks a client rule's to: (an address and port gssocks
// listens on); true means the rule can never match.
func (c *converter) listenTo(r *Rule) bool {
	a := r.To
	if a == nil {
		return false
	}
	if a.Port != nil && len(c.listenPorts) > 0 {
		matched := false
		for _, rg := range a.Port.Ranges() {
			for _, lp := range c.listenPorts {
				matched = matched || rg[0] <= lp && lp <= rg[1]
			}
		}
		if !matched {
			return true
		}
	}
	if a.Kind == AddrAny || a.Kind == AddrPrefix && a.Prefix.Bits() == 0 {
		return false
	}
	if a.Kind == AddrPrefix && len(c.listenAddrs) == len(c.listen) && len(c.listen) > 0 {
		n := 0
		for _, l := range c.listenAddrs {
			if l.IsUnspecified() || a.Prefix.Contains(l) {
				n++
			}
		}
		switch {
		case n == 0:
			return true
		case n == len(c.listenAddrs):
			return false
		}
	}
	c.note(Review, a.Line, r.Name(), "to: %s: gssocks applies rules to every address it listens on, so this condition was dropped", a.Text)
	return false
}

// addProfile adds a client pass rule's clients to its profile. A client
// takes the profile of the first client pass rule it matches, so the
// networks of earlier rules of other profiles are taken out.
func (c *converter) addProfile(p *profile, set prefixSet) {
	var earlier prefixSet
	var same *profile
	for _, q := range c.profiles {
		if q.key() == p.key() {
			same = q
		} else {
			earlier = earlier.union(q.set)
		}
	}
	mine, ok := set.subtract(earlier, maxNetworks)
	if !ok {
		mine = set
		c.note(Review, p.lines[0], "client pass", "its gssapi.enctype and clientcompatibility also apply to clients an earlier client pass rule matches first (too many networks to take them out)")
	}
	if same != nil {
		same.set = same.set.union(mine)
		same.lines = append(same.lines, p.lines...)
		return
	}
	p.set = mine.norm()
	c.profiles = append(c.profiles, p)
}

// levels reads gssapi.enctype.
func (c *converter) levels(s *Setting) int {
	m := 0
	for _, w := range s.Words() {
		switch w {
		case "clear":
			m |= lvlClear
		case "integrity":
			m |= lvlIntegrity
		case "confidentiality":
			m |= lvlConfidentiality
		case "any":
			m |= lvlClear | lvlIntegrity | lvlConfidentiality
		case "permessage", "per-message":
			c.note(Unmapped, s.Line, s.Key, "%s (RFC 1961 selective protection) is not supported by gssocks, nor by Dante 1.4", w)
		default:
			c.note(Unmapped, s.Line, s.Key, "%s is not a protection level", excerpt(w))
		}
	}
	if m == 0 {
		c.note(Review, s.Line, s.Key, "no level gssocks supports; integrity and confidentiality (every message protected) used")
		m = lvlDefault
	}
	return m
}

// conditionWhy describes a rule keyword gssocks cannot check.
func (c *converter) conditionWhy(s *Setting) string {
	var why string
	switch k := s.Key; {
	case k == "group":
		why = "Dante checks the Unix groups of the user name; gssocks checks group SIDs from the ticket's PAC: declare a group block with the SIDs and add groups = [...]"
	case k == "user":
		why = "gssocks knows no user name before authentication"
	case k == "hostid" || k == "hostindex":
		why = "gssocks does not read the TCP host-ID option"
	case strings.HasPrefix(k, "ldap.group"):
		why = "gssocks checks group SIDs from the ticket's PAC, not LDAP groups: declare a group block with the group's SID"
	case strings.HasPrefix(k, "redirect "):
		why = "gssocks does not redirect requests"
	case k == "bounce to":
		why = "gssocks does not bounce connections"
	case k == "protocol" || k == "command" || k == "proxyprotocol":
		why = "not a client-rule condition"
	default:
		why = "not a keyword gssocks knows"
	}
	return fmt.Sprintf("%s on line %d (%s)", s.Key, s.Line, why)
}

// ruleName gives a rule block a unique name after its sockd.conf line.
func (c *converter) ruleName(r *Rule, suffix string) string {
	base := fmt.Sprintf("%s-%s-%d", r.Kind, r.Verdict, r.Line) + suffix
	if c.names == nil {
		c.names = map[string]bool{}
	}
	name := base
	for i := 2; c.names[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	c.names[name] = true
	return name
}

// socksRule is a socks rule read for conversion.
type socksRule struct {
	r          *Rule
	sources    prefixSet // nil: every client
	dests      []string
	destLine   int
	ports      []string
	portLine   int
	commands   int
	cmdGiven   bool // command: was written (else every command of the protocols)
	cmdLines   []int
	principals []string
	userLine   int
	groups     []string
	groupLine  int
	methods    []string // rule socksmethod; nil: the global list
	levels     int
	levelLine  int
	nec        bool
	necLine    int
	idle       string
	idleLine   int
	never      string // why the rule never matches; "" if it can
}

// socksRules converts the socks rules in order.
func (c *converter) socksRules() {
	for _, r := range c.f.Rules {
		if r.Kind != SocksRule {
			continue
		}
		if r.Legacy {
			c.note(Info, r.Line, r.Verdict.String(), "read as socks %s, its form since Dante 1.4", r.Verdict)
		}
		if c.stopped {
			break
		}
		var u conds
		sr := c.readSocksRule(r, &u)
		switch {
		case sr.never != "":
			c.note(Info, r.Line, r.Name(), "never matches a gssocks request (%s); left out", sr.never)
		case r.Verdict == Pass && len(u.unusable) > 0:
			c.note(Review, r.Line, r.Name(), "left out, so what it allowed is refused (fail closed): %s", strings.Join(u.unusable, "; "))
		case r.Verdict == Pass:
			c.allowRule(sr)
		default:
			if len(u.unusable) > 0 {
				c.note(Review, r.Line, r.Name(), "converted without %s, so it denies more than in Dante (fail closed)", strings.Join(u.unusable, "; "))
			}
			c.denyRule(sr)
		}
	}
}

// readSocksRule reads the conditions of a socks rule.
func (c *converter) readSocksRule(r *Rule, u *conds) *socksRule {
	sr := &socksRule{r: r, commands: cmdAll | cmdReplies}
	if set, ok := c.source(r, u); ok && !set.isEvery() {
		sr.sources = set
	} else if !ok && r.Verdict == Block {
		sr.sources = nil // fail closed: the deny rule applies to every client
	}
	c.destination(sr, u)
	protocols := 0
	for _, s := range r.Settings {
		if c.actionNote(r, s) {
			continue
		}
		switch s.Key {
		case "command":
			m := 0
			for _, w := range s.Words() {
				switch w {
				case "connect":
					m |= cmdConnect
				case "bind":
					m |= cmdBind
				case "udpassociate":
					m |= cmdUDP
				case "bindreply":
					m |= cmdBindReply
				case "udpreply":
					m |= cmdUDPReply
				default:
					c.note(Unmapped, s.Line, s.Key, "%s is not a SOCKS command", excerpt(w))
				}
			}
			if !sr.cmdGiven {
				sr.commands, sr.cmdGiven = 0, true
			}
			sr.commands |= m
			sr.cmdLines = append(sr.cmdLines, s.Line)
		case "protocol":
			for _, w := range s.Words() {
				switch w {
				case "tcp":
					protocols |= cmdConnect | cmdBind | cmdBindReply
				case "udp":
					protocols |= cmdUDP | cmdUDPReply
				default:
					c.note(Unmapped, s.Line, s.Key, "%s is not tcp or udp", excerpt(w))
				}
			}
			sr.cmdLines = append(sr.cmdLines, s.Line)
		case "proxyprotocol":
			if !slices.Contains(s.Words(), "socks_v5") {
				sr.never = fmt.Sprintf("proxyprotocol on line %d excludes SOCKS 5, the only protocol gssocks speaks", s.Line)
			}
		case "user":
			c.users(sr, s, u)
		case "pac.sid", "pac.sid.b64":
			c.pacSIDs(sr, s, u)
		case "socksmethod", "method":
			for _, m := range s.Words() {
				if m == "gssapi" || m == "none" {
					sr.methods = append(sr.methods, m)
				}
			}
			if sr.methods == nil {
				sr.methods = []string{}
			}
		case "clientmethod":
			if !slices.Contains(s.Words(), "none") {
				u.add(fmt.Sprintf("clientmethod: %s on line %d (gssocks has no ident or PAM client authentication)", strings.Join(s.Words(), " "), s.Line))
			}
		case "gssapi.enctype":
			sr.levels |= c.levels(s)
			sr.levelLine = s.Line
		case "clientcompatibility":
			if slices.Contains(s.Words(), "necgssapi") {
				sr.nec, sr.necLine = true, s.Line
				c.note(Info, s.Line, s.Key, "a client-rule keyword in Dante 1.4; applied to this rule")
			}
		case "timeout.io", "timeout.io.tcp":
			if n, ok := seconds(s); ok && n > 0 {
				sr.idle, sr.idleLine = fmt.Sprintf("%ds", n), s.Line
			} else {
				c.note(Unmapped, s.Line, s.Key, "gssocks's per-rule idle_timeout must be longer than zero; timeouts.idle applies")
			}
		case "redirect from", "redirect to":
			if r.Verdict == Pass {
				u.add(c.conditionWhy(s))
			} else {
				c.note(Unmapped, s.Line, s.Key, "gssocks does not redirect; the rule denies anyway")
			}
		default:
			u.add(c.conditionWhy(s))
		}
	}
	if protocols != 0 {
		sr.commands &= protocols
	}
	// Methods: the rule's, within the global list.
	eff := c.methods
	if sr.methods != nil {
		eff = nil
		for _, m := range sr.methods {
			if slices.Contains(c.methods, m) {
				eff = append(eff, m)
			}
		}
	}
	sr.methods = eff
	if len(eff) == 0 && sr.never == "" {
		sr.never = "its socksmethod leaves neither gssapi nor none of the global methods"
	}
	if sr.principals != nil && !slices.Contains(eff, "gssapi") && sr.never == "" {
		sr.never = "it names users, who only GSS-API authenticates in gssocks, but does not allow gssapi"
	}
	c.commands(sr)
	return sr
}

// destination reads a socks rule's to: address and port.
func (c *converter) destination(sr *socksRule, u *conds) {
	a := sr.r.To
	if a == nil {
		return
	}
	sr.destLine = a.Line
	switch a.Kind {
	case AddrAny:
	case AddrPrefix:
		if a.Prefix.Bits() == 0 {
			if a.Prefix.Addr().Is4() {
				c.v4Any(a)
			}
			break
		}
		sr.dests = prefixSet{a.Prefix}.strings()
	case AddrDomain:
		if a.Name == "" {
			u.add(fmt.Sprintf("to: . on line %d (every name but no address: gssocks cannot match that)", a.Line))
			break
		}
		sr.dests = []string{a.Name, "*." + a.Name}
		if sr.r.Verdict == Block {
			c.note(Review, a.Line, "to", "%s also matched names merely ending in the text in Dante (\"other%s\"); gssocks matches %s and the names below it", a.Text, a.Name, a.Name)
		}
	case AddrName:
		switch a.Name {
		case "lo", "lo0":
			sr.dests = []string{"127.0.0.0/8", "::1"}
			c.note(Info, a.Line, "to", "%s read as the loopback interface: 127.0.0.0/8 and ::1", a.Text)
		default:
			sr.dests = []string{strings.TrimSuffix(a.Name, ".")}
			if !strings.Contains(a.Name, ".") {
				c.note(Review, a.Line, "to", "%s read as a host name; if it is an interface, replace it with the interface's networks", a.Text)
			}
		}
	default:
		u.add(fmt.Sprintf("to: %s on line %d (not a CIDR network or a name)", a.Text, a.Line))
	}
	if a.Port == nil {
		return
	}
	sr.portLine = a.Port.Line
	rs := a.Port.Ranges()
	switch {
	case a.Port.Service != "" && a.Port.Port < 0:
		u.add(fmt.Sprintf("port %s on line %d (not a service gssocks knows; write its number)", a.Port.Service, a.Port.Line))
	case len(rs) == 0:
		sr.never = fmt.Sprintf("its port condition on line %d matches no port", a.Port.Line)
	case len(rs) == 1 && rs[0][0] <= 1 && rs[0][1] == 65535:
	default:
		for _, r := range rs {
			if r[0] == r[1] {
				sr.ports = append(sr.ports, strconv.Itoa(r[0]))
			} else {
				sr.ports = append(sr.ports, fmt.Sprintf("%d-%d", r[0], r[1]))
			}
		}
	}
}

// principalRE is the shape of a gssocks principal pattern: name@REALM
// without blanks, or "*".
var principalRE = regexp.MustCompile(`^[^\s@]+@[^\s@]+$`)

// users reads user: as principals.
func (c *converter) users(sr *socksRule, s *Setting, u *conds) {
	sr.userLine = s.Line
	if sr.principals == nil {
		sr.principals = []string{}
	}
	for _, v := range s.Values {
		name := v.Text
		switch {
		case principalRE.MatchString(name):
			if strings.ContainsAny(name, "*?") {
				c.note(Review, v.Line, "user", "%s: '*' and '?' are wildcards in gssocks, literal in Dante", excerpt(name))
			}
			sr.principals = append(sr.principals, name)
		case !strings.Contains(name, "@") && validName(name):
			if sr.r.Verdict == Block {
				sr.principals = append(sr.principals, name+"@*")
				c.note(Review, v.Line, "user", "%s has no realm, and Dante's GSS-API user names carry one, so it matched no GSS-API client; denied as %s in every realm (fail closed)", name, name+"@*")
			} else {
				c.note(Review, v.Line, "user", "%s has no realm, and Dante's GSS-API user names carry one (%s@REALM), so it matched no GSS-API client; left out", name, name)
			}
		default:
			c.note(Unmapped, v.Line, "user", "%s is not a principal name@REALM", excerpt(name))
		}
	}
	if len(sr.principals) == 0 {
		if sr.r.Verdict == Pass {
			sr.never = fmt.Sprintf("none of its users on line %d is a Kerberos principal", s.Line)
		} else {
			sr.principals = nil
			u.add(fmt.Sprintf("user: on line %d (no principal)", s.Line))
		}
	}
}

// pacSIDs reads Dante's PAC module's pac.sid (SIDs as text) and
// pac.sid.b64 (base64 of binary SIDs) as literal SIDs in groups.
func (c *converter) pacSIDs(sr *socksRule, s *Setting, u *conds) {
	sr.groupLine = s.Line
	n := len(sr.groups)
	for _, v := range s.Values {
		sid := v.Text
		if s.Key == "pac.sid.b64" {
			sid = decodeSID(v.Text)
		}
		if !sidRE.MatchString(sid) {
			c.note(Unmapped, v.Line, s.Key, "%s is not a SID", excerpt(v.Text))
			continue
		}
		sr.groups = append(sr.groups, "S"+sid[1:])
		c.note(Info, v.Line, s.Key, "converted to groups: the rule matches clients whose ticket's PAC holds the SID, and, if it is an allow rule, no client whose ticket has no verified PAC")
	}
	if len(sr.groups) == n {
		u.add(fmt.Sprintf("%s on line %d (no SID)", s.Key, s.Line))
	}
}

var sidRE = regexp.MustCompile(`^[Ss]-1-[0-9]{1,15}(-[0-9]{1,10}){0,15}$`)

// decodeSID renders a binary SID (MS-DTYP §2.4.2.2) given in base64 as
// text, or "" if it is not one.
func decodeSID(b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return ""
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	out := fmt.Sprintf("S-1-%d", auth)
	for i := 8; i < len(b); i += 4 {
		out += fmt.Sprintf("-%d", uint32(b[i])|uint32(b[i+1])<<8|uint32(b[i+2])<<16|uint32(b[i+3])<<24)
	}
	return out
}

// commands settles the SOCKS commands of a rule and notes the reply
// commands.
func (c *converter) commands(sr *socksRule) {
	line := 0
	if len(sr.cmdLines) > 0 {
		line = sr.cmdLines[0]
	}
	replies := sr.commands & cmdReplies
	sr.commands &= cmdAll
	if replies != 0 && sr.cmdGiven && sr.commands != 0 {
		what := map[int]string{cmdBindReply: "bindreply", cmdUDPReply: "udpreply", cmdReplies: "bindreply and udpreply"}[replies]
		c.note(Info, line, "command", "%s: gssocks needs no rule for replies: it relays the inbound connection of a BIND it allowed only from the host the client named, and UDP replies only from destinations the client sent to", what)
	}
	if sr.commands == 0 && sr.never == "" {
		if replies != 0 {
			sr.never = "it only concerns replies (bindreply, udpreply), which gssocks relays for the BIND and UDP ASSOCIATE requests it allowed"
		} else {
			sr.never = "no SOCKS command is left by its command: and protocol:"
		}
	}
}

// allowRule writes a socks pass rule, one block per client profile whose
// clients it can match (and, for clients that may skip authentication,
// one more for them).
func (c *converter) allowRule(sr *socksRule) {
	type variant struct {
		p       *profile
		src     prefixSet
		levels  int
		noauth  bool
		gssOnly bool
	}
	var vs []variant
	for _, p := range c.profiles {
		src := p.set
		if sr.sources != nil {
			src = src.intersect(sr.sources)
		}
		if len(src) == 0 {
			continue
		}
		methods := sr.methods
		if p.methods != nil {
			methods = nil
			for _, m := range sr.methods {
				if slices.Contains(p.methods, m) {
					methods = append(methods, m)
				}
			}
		}
		levels := p.levels
		if sr.levels != 0 {
			levels &= sr.levels
			if sr.levels != p.levels {
				c.note(Review, sr.levelLine, "gssapi.enctype", "Dante 1.4 negotiates the level its client rule allows (line %d) and does not check this one; gssocks checks it: converted as the levels both allow", p.lines[0])
			}
			if levels == 0 {
				c.note(Review, sr.levelLine, "gssapi.enctype", "no level both this rule and its client rule (line %d) allow; left out for those clients", p.lines[0])
			}
		}
		gss, none := slices.Contains(methods, "gssapi") && levels != 0, slices.Contains(methods, "none")
		anyone := sr.principals == nil && sr.groups == nil
		if gss {
			vs = append(vs, variant{p: p, src: src, levels: levels, gssOnly: anyone})
		}
		if none && anyone {
			vs = append(vs, variant{p: p, src: src, levels: lvlClear, noauth: true})
			if !gss {
				c.note(Review, sr.r.Line, sr.r.Name(), "allows method none only; in gssocks it also matches authenticated clients from its sources, and refuses them unless they ask for clear")
			}
		}
	}
	if len(vs) == 0 {
		c.note(Review, sr.r.Line, sr.r.Name(), "no client pass rule lets in a client this rule could match; left out")
		return
	}
	if len(sr.dests) == 0 {
		line := sr.destLine
		if line == 0 {
			line = sr.r.Line
		}
		c.note(Review, line, "to", "every destination, as in Dante, except those on the gateway itself (loopback, link-local, the gateway's own addresses), which gssocks refuses unless an allow rule names them (the gateway_local block)")
	}
	profiles := 0
	for i, v := range vs {
		if i == 0 || v.p != vs[i-1].p {
			profiles++
		}
	}
	n := 0
	for i, v := range vs {
		suffix := ""
		if i == 0 || v.p != vs[i-1].p {
			n++
		}
		if profiles > 1 {
			suffix = "-" + strconv.Itoa(n)
		}
		if v.noauth && (i > 0 && vs[i-1].p == v.p) {
			suffix += "-noauth"
		}
		if !c.room(len(v.src)+len(sr.dests)+len(sr.ports)+len(sr.principals)+len(sr.groups), sr.r.Line) {
			return
		}
		if v.gssOnly {
			c.gssOnly = append(c.gssOnly, len(c.rules))
		}
		if v.noauth {
			c.noAuth = c.noAuth.union(v.src)
			c.noAuthLines = append(c.noAuthLines, sr.r.Line)
		}
		c.rules = append(c.rules, c.allowBlock(sr, v.p, v.src, suffix, v.levels, v.noauth))
	}
}

// allowBlock renders one allow rule.
func (c *converter) allowBlock(sr *socksRule, p *profile, src prefixSet, suffix string, levels int, noauth bool) ruleOut {
	r := sr.r
	b := hclBlock{typ: "rule", label: c.ruleName(r, suffix)}
	b.above = []string{fmt.Sprintf("%s: %s", c.src(r.Line), r.Name())}
	if noauth {
		b.above[0] += ", for clients using method none (no_auth sources)"
	}
	narrowed := !(sr.sources == nil && p.set.isEvery() || sr.sources != nil && slices.Equal(src, sr.sources.norm()))
	if narrowed {
		b.above = append(b.above, fmt.Sprintf("Sources narrowed to the clients that client pass at %s lets in.", c.src(p.lines...)))
	}
	add := func(a hclAttr) { b.attrs = append(b.attrs, a) }
	if len(sr.principals) > 0 && !noauth {
		add(hclAttr{name: "principals", value: hclList(sr.principals), src: c.src(sr.userLine)})
	}
	if len(sr.groups) > 0 && !noauth {
		add(hclAttr{name: "groups", value: hclList(sr.groups), src: c.src(sr.groupLine)})
	}
	if !src.isEvery() {
		var lines []int
		if sr.sources != nil {
			lines = append(lines, r.From.Line)
		}
		if narrowed {
			lines = append(lines, p.lines...)
		}
		add(hclAttr{name: "sources", value: hclList(src.strings()), src: c.src(lines...)})
	}
	c.commonMatchers(sr, add)
	if noauth || levels != lvlDefault {
		lines := []int{sr.levelLine, p.levelLine}
		if noauth {
			lines = append([]int{r.Line}, c.methodLines...)
		}
		add(hclAttr{name: "protection", value: hclList(levelNames(levels)), src: c.src(lines...)})
	}
	if (p.nec || sr.nec) && !noauth {
		add(hclAttr{name: "nec", value: "true", src: c.src(p.necLine, sr.necLine)})
	}
	if sr.idle != "" {
		add(hclAttr{name: "idle_timeout", value: hclString(sr.idle), src: c.src(sr.idleLine)})
	}
	return ruleOut{block: b, line: r.Line}
}

// commonMatchers adds destinations, ports and commands.
func (c *converter) commonMatchers(sr *socksRule, add func(hclAttr)) {
	if len(sr.dests) > 0 {
		add(hclAttr{name: "destinations", value: hclList(sr.dests), src: c.src(sr.destLine)})
	}
	if len(sr.ports) > 0 {
		add(hclAttr{name: "ports", value: hclList(sr.ports), src: c.src(sr.portLine)})
	}
	if sr.commands != cmdAll {
		var cmds []string
		for _, x := range []struct {
			bit  int
			name string
		}{{cmdConnect, "connect"}, {cmdBind, "bind"}, {cmdUDP, "udp"}} {
			if sr.commands&x.bit != 0 {
				cmds = append(cmds, x.name)
			}
		}
		add(hclAttr{name: "commands", value: hclList(cmds), src: c.src(sr.cmdLines...)})
	}
}

// denyRule writes a socks block rule.
func (c *converter) denyRule(sr *socksRule) {
	r := sr.r
	if !c.room(len(sr.sources)+len(sr.dests)+len(sr.ports)+len(sr.principals)+len(sr.groups), r.Line) {
		return
	}
	b := hclBlock{typ: "rule", label: c.ruleName(r, ""), above: []string{fmt.Sprintf("%s: %s", c.src(r.Line), r.Name())}}
	add := func(a hclAttr) { b.attrs = append(b.attrs, a) }
	add(hclAttr{name: "action", value: hclString("deny"), src: c.src(r.Line)})
	if len(sr.principals) > 0 {
		add(hclAttr{name: "principals", value: hclList(sr.principals), src: c.src(sr.userLine)})
	}
	if len(sr.groups) > 0 {
		add(hclAttr{name: "groups", value: hclList(sr.groups), src: c.src(sr.groupLine)})
	}
	if sr.sources != nil {
		add(hclAttr{name: "sources", value: hclList(sr.sources.norm().strings()), src: c.src(r.From.Line)})
	}
	c.commonMatchers(sr, add)
	gss, none := slices.Contains(sr.methods, "gssapi"), slices.Contains(sr.methods, "none")
	switch {
	case gss && !none && sr.principals == nil && sr.groups == nil:
		c.gssOnly = append(c.gssOnly, len(c.rules))
	case none && !gss:
		c.note(Review, r.Line, r.Name(), "denies method none only in Dante; gssocks cannot tell the methods apart in a rule, so it denies authenticated clients too (fail closed)")
	}
	c.rules = append(c.rules, ruleOut{block: b, line: r.Line})
}

// finish settles what depends on every rule: principals = ["*"] on rules
// that required GSS-API when some clients may skip it.
func (c *converter) finish() {
	if len(c.noAuth) == 0 {
		return
	}
	for _, i := range c.gssOnly {
		b := &c.rules[i].block
		attrs := []hclAttr{}
		at := 0
		if len(b.attrs) > 0 && b.attrs[0].name == "action" {
			at = 1
		}
		attrs = append(attrs, b.attrs[:at]...)
		attrs = append(attrs, hclAttr{name: "principals", value: hclList([]string{"*"}), src: c.src(c.methodLines...),
			above: []string{"any authenticated client: socksmethod gssapi"}})
		b.attrs = append(attrs, b.attrs[at:]...)
	}
	if c.noAuth.isEvery() {
		c.note(Review, c.noAuthLines[0], "socksmethod", "none lets every client use the gateway without authentication, as in Dante: an open proxy if the listener is reachable from the Internet")
	}
}

// top renders the top-level attributes.
func (c *converter) top() []hclAttr {
	listen := c.listen
	if len(listen) == 0 {
		c.note(Review, 0, "internal", "no address to listen on; the output listens on 127.0.0.1:1080")
		listen = []hclAttr{{value: hclString("127.0.0.1:1080")}}
	}
	var vals []string
	var lines []string
	for _, l := range listen {
		vals = append(vals, l.value)
		if l.src != "" {
			lines = append(lines, strings.TrimPrefix(l.src, c.f.Name+":"))
		}
	}
	v := "[" + strings.Join(vals, ", ") + "]"
	if len(vals) > 4 {
		v = "[\n" + strings.Join(vals, ",\n") + ",\n]"
	}
	src := ""
	if len(lines) > 0 {
		src = c.f.Name + ":" + strings.Join(lines, ",")
	}
	return []hclAttr{{name: "listen", value: v, src: src}}
}

// blocks renders the blocks: kerberos, timeouts, log, no_auth, rules.
func (c *converter) blocks() []hclBlock {
	var out []hclBlock
	if k := c.kerberos(); len(k.attrs) > 0 {
		out = append(out, k)
	}
	if len(c.timeouts) > 0 {
		out = append(out, hclBlock{typ: "timeouts", attrs: c.timeouts})
	}
	if c.logLevel != nil {
		out = append(out, hclBlock{typ: "log", attrs: []hclAttr{*c.logLevel}})
	}
	if len(c.noAuth) > 0 {
		out = append(out, hclBlock{
			typ:   "no_auth",
			above: []string{"Clients from these networks may skip authentication (socksmethod none); only rules without principals allow them."},
			attrs: []hclAttr{{name: "sources", value: hclList(c.noAuth.strings()), src: c.src(c.noAuthLines...)}},
		})
	}
	for _, r := range c.clientDenies {
		out = append(out, r.block)
	}
	for _, r := range c.rules {
		out = append(out, r.block)
	}
	return out
}

// kerberos renders the kerberos block; notes are added once.
func (c *converter) kerberos() hclBlock {
	b := hclBlock{typ: "kerberos", above: []string{"GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename)."}}
	var first *Value
	for i, v := range c.keytabs {
		path, ok := keytabPath(v.Text)
		if !ok {
			c.note(Unmapped, v.Line, "gssapi.keytab", "%s is not a keytab file; gssocks reads FILE: keytabs", excerpt(v.Text))
			continue
		}
		if first == nil {
			first = &c.keytabs[i]
			b.attrs = append(b.attrs, hclAttr{name: "keytab", value: hclString(path), src: c.src(v.Line)})
			if !strings.HasPrefix(path, "/") {
				c.note(Review, v.Line, "gssapi.keytab", "a relative path is relative to sockd's working directory in Dante and to the configuration file's directory in gssocks")
			}
			continue
		}
		if p, _ := keytabPath(first.Text); p != path {
			c.note(Review, v.Line, "gssapi.keytab", "gssocks has one keytab; this one is left out in favour of line %d: merge the keys (ktutil) into one keytab", first.Line)
		}
	}
	if first == nil && c.gssUsed {
		c.note(Info, 0, "gssapi.keytab", "not set: Dante read FILE:/etc/sockd.keytab (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME unless kerberos { keytab } is set")
	}
	host := c.opts.ProxyHost
	if host == "" {
		host = c.proxyHost
	}
	var principals []string
	var lines []int
	var missing []Value
	services := c.services
	if len(services) == 0 && c.gssUsed {
		services = []Value{{Text: "rcmd"}}
	}
	for _, v := range services {
		sn := v.Text
		var pr string
		switch {
		case strings.Contains(sn, "/"):
			pr = sn
		case strings.Contains(sn, "@"): // GSS host-based form service@host
			svc, h, _ := strings.Cut(sn, "@")
			pr = svc + "/" + h
		case host != "":
			pr = sn + "/" + host
			if c.opts.ProxyHost == "" {
				c.note(Info, v.Line, "gssapi.servicename", "service principal %s: the host part is the internal: host name (line %d)", pr, c.hostLine)
			}
		default:
			if !slices.ContainsFunc(missing, func(m Value) bool { return m.Text == sn }) {
				missing = append(missing, v)
			}
			continue
		}
		if !validServicePrincipal(pr) {
			c.note(Unmapped, v.Line, "gssapi.servicename", "%s does not make a service principal", excerpt(sn))
			continue
		}
		if !slices.Contains(principals, pr) {
			principals = append(principals, pr)
			lines = append(lines, v.Line)
			if v.Line == 0 && c.opts.ProxyHost == "" {
				lines = append(lines, c.hostLine)
			}
		}
	}
	if len(principals) > 0 {
		src := c.src(lines...)
		if c.opts.ProxyHost != "" {
			src = strings.TrimPrefix(src+", host from --host", ", ")
		}
		b.attrs = append(b.attrs, hclAttr{name: "principals", value: hclList(principals), src: src})
	}
	for _, m := range missing {
		what := fmt.Sprintf("gssapi.servicename %s", m.Text)
		if m.Line == 0 {
			what = "Dante's default service name rcmd"
		}
		b.attrs = append(b.attrs, hclAttr{above: []string{
			fmt.Sprintf("%s: the service principal is %s/HOST, HOST the proxy's name as clients reach it; fill it in and uncomment (import-dante --host HOST does). Without principals, every principal in the keytab is accepted.", what, m.Text),
			fmt.Sprintf("principals = [%s]", hclString(m.Text+"/HOST")),
		}})
		c.note(Review, m.Line, "gssapi.servicename", "%s: the host part of the service principal %s/HOST is not in sockd.conf; add principals = [\"%s/<proxy host name>\"] (import-dante --host NAME does); until then every principal in the keytab is accepted", m.Text, m.Text, m.Text)
	}
	return b
}

// keytabPath strips FILE: or WRFILE:; other keytab types are not files.
func keytabPath(s string) (string, bool) {
	for _, p := range []string{"FILE:", "WRFILE:"} {
		s = strings.TrimPrefix(s, p)
	}
	if i := strings.IndexByte(s, ':'); i > 1 && !strings.ContainsAny(s[:i], `/\`) {
		return "", false
	}
	return s, s != ""
}

// validServicePrincipal is the shape config accepts: service/host, with an
// optional @REALM, no empty component, no wildcard.
func validServicePrincipal(s string) bool {
	name, realm, hasRealm := strings.Cut(s, "@")
	if s == "" || strings.ContainsAny(s, " \t*?") || hasRealm && (realm == "" || strings.Contains(realm, "@")) {
		return false
	}
	return !slices.Contains(strings.Split(name, "/"), "")
}

// header is the comment at the top of the output: where it comes from and
// the notes.
func (c *converter) header() []string {
	h := []string{
		fmt.Sprintf("Converted from %s by gssocks import-dante.", c.f.Name),
		"Review it, and the notes below, before use; then check it with",
		"\"gssocks check --config FILE\". A comment names the sockd.conf line",
		"behind each block and attribute.",
	}
	groups := []struct {
		kind  NoteKind
		title string
	}{
		{Unmapped, "Not converted (gssocks has no equivalent):"},
		{Review, "Review (behaves differently from Dante, or needs a value):"},
		{Info, "Remarks:"},
	}
	all := c.notes.sorted()
	for _, g := range groups {
		var lines []string
		for _, n := range all {
			if n.Kind != g.kind {
				continue
			}
			s := n.String()
			s = strings.TrimPrefix(s, n.File)
			s = strings.Replace(s, ": "+n.Kind.String()+": ", ": ", 1)
			if n.Line == 0 {
				s = "(file)" + s
			} else {
				s = "line " + strings.TrimPrefix(s, ":")
			}
			lines = append(lines, "  "+s)
		}
		if len(lines) > 0 {
			h = append(h, "", g.title)
			h = append(h, lines...)
		}
	}
	return h
}

// lineRef matches the "(line N)" references of config's diagnostics,
// which point into the output, not sockd.conf.
var lineRef = regexp.MustCompile(`\s*\(line \d+\)`)

// check loads the output with package config, as "gssocks check" would
// (without the keytab and without this host's addresses), and turns its
// warnings into notes. An error is a bug here: it becomes a note, and the
// tests fail on it.
func (c *converter) check(body []byte) {
	_, _, diags := config.Loader{
		SkipKeytabCheck: true,
		Getenv:          func(string) string { return "" },
		LocalAddrs:      func() ([]netip.Addr, error) { return nil, nil },
	}.Parse(body, "converted.hcl")
	for _, d := range diags {
		kind := Info
		prefix := "gssocks check warns: "
		if d.Severity == hcl.DiagError {
			kind = Review
			prefix = "gssocks check refuses the output (a bug in import-dante; please report it): "
		}
		c.note(kind, c.lineOf(body, d.Subject), "", "%s%s: %s", prefix, d.Summary, lineRef.ReplaceAllString(d.Detail, ""))
	}
}

// lineOf maps a position in the output to the sockd.conf line of the
// source comment nearest above it.
func (c *converter) lineOf(body []byte, rng *hcl.Range) int {
	if rng == nil {
		return 0
	}
	lines := strings.Split(string(body), "\n")
	tag := c.f.Name + ":"
	for i := min(rng.Start.Line, len(lines)) - 1; i >= 0; i-- {
		l := lines[i]
		if j := strings.LastIndex(l, "# "+tag); j >= 0 {
			rest := l[j+2+len(tag):]
			end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
			if end < 0 {
				end = len(rest)
			}
			if n, err := strconv.Atoi(rest[:end]); err == nil {
				return n
			}
		}
	}
	return 0
}
