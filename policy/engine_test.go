package policy

import (
	"errors"
	"fmt"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fixture is the policy the engine tests decide against, as plain values.
// The config package's tests decode the same rules from HCL.
func fixture() []Rule {
	p := netip.MustParsePrefix
	dst := func(ss ...string) []Destination {
		var out []Destination
		for _, s := range ss {
			if pr, err := netip.ParsePrefix(s); err == nil {
				out = append(out, Destination{Prefix: pr})
			} else {
				out = append(out, Destination{Name: s})
			}
		}
		return out
	}
	return []Rule{
		{Name: "deny-loopback", Action: ActionDeny, Destinations: dst("127.0.0.0/8", "::1/128")},
		{Name: "deny-db", Action: ActionDeny, Destinations: dst("10.5.0.0/16", "db.corp.example.test"), Ports: []PortRange{{Lo: 5432, Hi: 5432}}},
		{Name: "bob-nothing", Action: ActionDeny, Principals: []string{"bob@EXAMPLE.TEST"}},
		{Name: "admins", Groups: []string{"S-1-5-21-1-2-3-512"}, SIDs: []string{"S-1-5-21-1-2-3-512"},
			Protection: []Level{LevelConfidentiality}, IdleTimeout: time.Hour, MaxSessionsPerPrincipal: 3},
		{Name: "staff", Principals: []string{"*@EXAMPLE.TEST"},
			Sources:      []netip.Prefix{p("10.0.0.0/8"), p("2001:db8::/32")},
			Destinations: dst("10.0.0.0/8", "*.corp.example.test", "intranet.example.test"),
			Ports:        []PortRange{{Lo: 80, Hi: 80}, {Lo: 443, Hi: 443}, {Lo: 8000, Hi: 8999}},
			Commands:     []socks5.Command{socks5.CmdConnect, socks5.CmdBind}},
		{Name: "vpn", Groups: []string{"vpn-users"}, SIDs: []string{"S-1-5-21-1-2-3-1104"},
			Commands: []socks5.Command{socks5.CmdConnect}, Destinations: dst("192.0.2.0/24")},
		{Name: "svc", Principals: []string{"svc-??@EXAMPLE.TEST", "svc-*@OTHER.TEST"},
			Protection: []Level{LevelClear, LevelIntegrity}, AuthOnly: true, NEC: true},
		{Name: "partner-dns", Realms: []string{"PARTNER.TEST"}, Commands: []socks5.Command{socks5.CmdUDPAssociate}, Ports: []PortRange{{Lo: 53, Hi: 53}}},
		{Name: "lab", Sources: []netip.Prefix{p("10.9.0.0/16")}, Protection: []Level{LevelClear}, Ports: []PortRange{{Lo: 80, Hi: 80}}},
	}
}

// newEngine builds the engine from rules and fails the test on an error.
func newEngine(t testing.TB, rules []Rule, opts ...Option) *Engine {
	t.Helper()
	e, err := NewEngine(rules, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var (
	// Identities with a verified PAC (GroupsKnown) unless noted.
	alice = Identity{Principal: "alice@EXAMPLE.TEST", Name: "alice", Realm: "EXAMPLE.TEST", GroupsKnown: true}
	bob   = Identity{Principal: "bob@EXAMPLE.TEST"}
	carol = Identity{Principal: "carol@EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-513", "S-1-5-21-1-2-3-512"}, GroupsKnown: true}
	vic   = Identity{Principal: "vic@EXAMPLE.TEST", UserSID: "S-1-5-21-1-2-3-1200", GroupSIDs: []string{"S-1-5-21-1-2-3-1104"}, GroupsKnown: true}
	svcAB = Identity{Principal: "svc-ab@EXAMPLE.TEST"}
	dave  = Identity{Principal: "dave@PARTNER.TEST"}
	anon  = Identity{}
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ip(s))
	}
	return out
}

const (
	clear = LevelClear
	integ = LevelIntegrity
	conf  = LevelConfidentiality
)

// req builds a CONNECT at integrity; the table tweaks the rest.
func req(id Identity, src string, host string, addrs []netip.Addr, port uint16) Request {
	return Request{Identity: id, Source: ip(src), Command: socks5.CmdConnect, Host: host, Addrs: addrs, Port: port, Level: integ}
}

func with(r Request, f func(*Request)) Request { f(&r); return r }

func TestDecide(t *testing.T) {
	e := newEngine(t, fixture())
	const deflt = "no rule matches (default deny)"
	allows := func(rule string) string { return fmt.Sprintf("rule %q allows", rule) }
	denies := func(rule string) string { return fmt.Sprintf("rule %q denies", rule) }

	cases := []struct {
		name  string
		r     Request
		allow bool
		rule  string
		why   string
	}{
		{"staff by network", req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), true, "staff", allows("staff")},
		{"staff confidentiality", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), func(r *Request) { r.Level = conf }), true, "staff", allows("staff")},
		{"staff refuses clear, no fall-through", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), func(r *Request) { r.Level = clear }),
			false, "staff", `protection clear not accepted by rule "staff" (accepts integrity, confidentiality)`},
		{"selective never accepted", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), func(r *Request) { r.Level = LevelSelective }),
			false, "staff", `protection selective not accepted by rule "staff" (accepts integrity, confidentiality)`},
		{"staff by name pattern", req(alice, "10.1.1.1", "wiki.corp.example.test", ips("203.0.113.5"), 443), true, "staff", allows("staff")},
		{"name case and trailing dot", req(alice, "10.1.1.1", "WIKI.Corp.Example.Test.", ips("203.0.113.5"), 443), true, "staff", allows("staff")},
		{"name deeper below the pattern", req(alice, "10.1.1.1", "a.b.corp.example.test", ips("203.0.113.5"), 443), true, "staff", allows("staff")},
		{"exact name", req(alice, "10.1.1.1", "intranet.example.test", ips("203.0.113.6"), 80), true, "staff", allows("staff")},
		{"pattern excludes its own apex", req(alice, "10.1.1.1", "corp.example.test", ips("203.0.113.9"), 443), false, "", deflt},
		{"unresolved name matched by name", req(alice, "10.1.1.1", "x.corp.example.test", nil, 443), true, "staff", allows("staff")},
		{"unresolved name, no name rule", req(alice, "10.1.1.1", "unknown.example", nil, 443), false, "", deflt},
		{"rebinding: allowed name into loopback", req(alice, "10.1.1.1", "wiki.corp.example.test", ips("127.0.0.1"), 443), false, "deny-loopback", denies("deny-loopback")},
		{"rebinding: one address of several in loopback", req(alice, "10.1.1.1", "wiki.corp.example.test", ips("10.2.3.4", "::1"), 443), false, "deny-loopback", denies("deny-loopback")},
		{"mapped loopback destination", req(alice, "10.1.1.1", "", ips("::ffff:127.0.0.1"), 443), false, "deny-loopback", denies("deny-loopback")},
		{"allow needs every address inside", req(alice, "10.1.1.1", "", ips("10.2.3.4", "203.0.113.5"), 443), false, "", deflt},
		{"deny db by network", req(alice, "10.1.1.1", "", ips("10.5.1.1"), 5432), false, "deny-db", denies("deny-db")},
		{"deny db by name", req(alice, "10.1.1.1", "db.corp.example.test", ips("203.0.113.7"), 5432), false, "deny-db", denies("deny-db")},
		{"db network on another port", req(alice, "10.1.1.1", "", ips("10.5.1.1"), 443), true, "staff", allows("staff")},
		{"port outside", req(alice, "10.1.1.1", "", ips("10.2.3.4"), 22), false, "", deflt},
		{"port in range", req(alice, "10.1.1.1", "", ips("10.2.3.4"), 8500), true, "staff", allows("staff")},
		{"port past range", req(alice, "10.1.1.1", "", ips("10.2.3.4"), 9000), false, "", deflt},
		{"bind allowed", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 8000), func(r *Request) { r.Command = socks5.CmdBind }), true, "staff", allows("staff")},
		{"udp not for staff", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), func(r *Request) { r.Command = socks5.CmdUDPAssociate }), false, "", deflt},
		{"source outside", req(alice, "192.0.2.1", "", ips("10.2.3.4"), 443), false, "", deflt},
		{"mapped source", req(alice, "::ffff:10.1.1.1", "", ips("10.2.3.4"), 443), true, "staff", allows("staff")},
		{"IPv6 source", req(alice, "2001:db8::5", "", ips("10.2.3.4"), 443), true, "staff", allows("staff")},
		{"realm is case-sensitive", req(Identity{Principal: "alice@example.test"}, "10.1.1.1", "", ips("10.2.3.4"), 443), false, "", deflt},
		{"name and realm without principal", req(Identity{Name: "alice", Realm: "EXAMPLE.TEST"}, "10.1.1.1", "", ips("10.2.3.4"), 443), true, "staff", allows("staff")},
		{"bob denied everything", req(bob, "10.1.1.1", "", ips("10.2.3.4"), 443), false, "bob-nothing", denies("bob-nothing")},
		{"admins anywhere", with(req(carol, "203.0.113.1", "", ips("198.51.100.1"), 22), func(r *Request) { r.Level = conf }), true, "admins", allows("admins")},
		{"admins need confidentiality", req(carol, "203.0.113.1", "", ips("198.51.100.1"), 22),
			false, "admins", `protection integrity not accepted by rule "admins" (accepts confidentiality)`},
		{"SID case", with(req(Identity{Principal: "x@EXAMPLE.TEST", GroupSIDs: []string{"s-1-5-21-1-2-3-512"}, GroupsKnown: true}, "203.0.113.1", "", ips("198.51.100.1"), 22), func(r *Request) { r.Level = conf }), true, "admins", allows("admins")},
		{"user SID", with(req(Identity{Principal: "x@EXAMPLE.TEST", UserSID: "S-1-5-21-1-2-3-512", GroupsKnown: true}, "203.0.113.1", "", ips("198.51.100.1"), 22), func(r *Request) { r.Level = conf }), true, "admins", allows("admins")},
		{"group alias", req(vic, "198.51.100.9", "", ips("192.0.2.10"), 22), true, "vpn", allows("vpn")},
		{"group alias, wrong command", with(req(vic, "198.51.100.9", "", ips("192.0.2.10"), 22), func(r *Request) { r.Command = socks5.CmdBind }), false, "", deflt},
		{"glob ? matches one character each", with(req(svcAB, "203.0.113.1", "", ips("198.51.100.1"), 25), func(r *Request) { r.Level = clear }), true, "svc", allows("svc")},
		{"glob ?? does not match three", req(Identity{Principal: "svc-abc@EXAMPLE.TEST"}, "203.0.113.1", "", ips("198.51.100.1"), 25), false, "", deflt},
		{"glob * in another realm", req(Identity{Principal: "svc-backup@OTHER.TEST"}, "203.0.113.1", "", ips("198.51.100.1"), 25), true, "svc", allows("svc")},
		{"svc refuses confidentiality", with(req(svcAB, "203.0.113.1", "", ips("198.51.100.1"), 25), func(r *Request) { r.Level = conf }),
			false, "svc", `protection confidentiality not accepted by rule "svc" (accepts clear, integrity)`},
		{"NEC accepted by svc", with(req(svcAB, "203.0.113.1", "", ips("198.51.100.1"), 25), func(r *Request) { r.NEC = true }), true, "svc", allows("svc")},
		{"NEC refused by staff", with(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443), func(r *Request) { r.NEC = true }),
			false, "staff", `the unwrapped (NEC) protection-level form is not accepted by rule "staff"`},
		{"realm matcher", with(req(dave, "203.0.113.1", "", ips("198.51.100.53"), 53), func(r *Request) { r.Command = socks5.CmdUDPAssociate }), true, "partner-dns", allows("partner-dns")},
		{"realm matcher, wrong command", req(dave, "203.0.113.1", "", ips("198.51.100.53"), 53), false, "", deflt},
		{"no-auth lab web", with(req(anon, "10.9.1.1", "", ips("203.0.113.80"), 80), func(r *Request) { r.Level = clear }), true, "lab", allows("lab")},
		{"no-auth lab at integrity", req(anon, "10.9.1.1", "", ips("203.0.113.80"), 80), false, "lab", `protection integrity not accepted by rule "lab" (accepts clear)`},
		{"no-auth lab port", with(req(anon, "10.9.1.1", "", ips("203.0.113.80"), 443), func(r *Request) { r.Level = clear }), false, "", deflt},
		{"no-auth never matches principals", with(req(anon, "10.1.1.1", "", ips("10.2.3.4"), 80), func(r *Request) { r.Level = clear }), false, "", deflt},
		{"no-auth still hits deny", req(anon, "10.9.1.1", "", ips("127.0.0.1"), 80), false, "deny-loopback", denies("deny-loopback")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := e.Decide(c.r)
			if d.Allow != c.allow || d.Rule != c.rule || d.Reason != c.why {
				t.Errorf("Decide(%s)\n got %t %q %q\nwant %t %q %q", c.r, d.Allow, d.Rule, d.Reason, c.allow, c.rule, c.why)
			}
			ed, misses := e.Explain(c.r)
			if ed != d {
				t.Errorf("Explain decided %+v, Decide %+v", ed, d)
			}
			for _, m := range misses {
				if m.Why == "" {
					t.Errorf("miss without a reason: %+v", m)
				}
			}
			if err := d.Err(); (err == nil) != d.Allow {
				t.Errorf("Err() = %v for %+v", err, d)
			}
		})
	}

	// The rule's limits travel with the decision.
	d := e.Decide(with(req(carol, "203.0.113.1", "", ips("198.51.100.1"), 22), func(r *Request) { r.Level = conf }))
	if d.IdleTimeout != time.Hour || d.MaxSessionsPerPrincipal != 3 {
		t.Errorf("admins limits: %+v", d)
	}
	if d := e.Decide(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443)); d.IdleTimeout != 0 || d.MaxSessionsPerPrincipal != 0 {
		t.Errorf("staff limits: %+v", d)
	}
}

func TestExplain(t *testing.T) {
	e := newEngine(t, fixture())
	d, misses := e.Explain(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 22))
	if d.Allow || d.Rule != "" {
		t.Fatalf("decision %+v", d)
	}
	want := []Miss{
		{"deny-loopback", "destination [10.2.3.4] not in destinations [127.0.0.0/8 ::1/128] (name, or an address)"},
		{"deny-db", "port 22 not in ports [5432]; destination [10.2.3.4] not in destinations [10.5.0.0/16 db.corp.example.test] (name, or an address)"},
		{"bob-nothing", "principal alice@EXAMPLE.TEST not in principals [bob@EXAMPLE.TEST]"},
		{"admins", "no SID of the client in groups [S-1-5-21-1-2-3-512]"},
		{"staff", "port 22 not in ports [80 443 8000-8999]"},
		{"vpn", "no SID of the client in groups [vpn-users]; destination [10.2.3.4] not in destinations [192.0.2.0/24] (name, or every address)"},
		{"svc", "principal alice@EXAMPLE.TEST not in principals [svc-??@EXAMPLE.TEST svc-*@OTHER.TEST]"},
		{"partner-dns", "realm EXAMPLE.TEST not in realms [PARTNER.TEST]; command connect not in commands [udp]; port 22 not in ports [53]"},
		{"lab", "source 10.1.1.1 not in sources [10.9.0.0/16]; port 22 not in ports [80]"},
	}
	if !slices.Equal(misses, want) {
		for i := range max(len(misses), len(want)) {
			var g, w Miss
			if i < len(misses) {
				g = misses[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("miss %d\n got %+v\nwant %+v", i, g, w)
			}
		}
	}

	// Up to the deciding rule only, with names and unauthenticated sessions.
	d, misses = e.Explain(req(anon, "10.9.1.1", "printer.corp.example.test", ips("10.2.3.4"), 80))
	want = []Miss{
		{"deny-loopback", "destination printer.corp.example.test [10.2.3.4] not in destinations [127.0.0.0/8 ::1/128] (name, or an address)"},
		{"deny-db", "port 80 not in ports [5432]; destination printer.corp.example.test [10.2.3.4] not in destinations [10.5.0.0/16 db.corp.example.test] (name, or an address)"},
		{"bob-nothing", "principals: unauthenticated session"},
		{"admins", "groups: unauthenticated session"},
		{"staff", "principals: unauthenticated session"},
		{"vpn", "groups: unauthenticated session; destination printer.corp.example.test [10.2.3.4] not in destinations [192.0.2.0/24] (name, or every address)"},
		{"svc", "principals: unauthenticated session"},
		{"partner-dns", "realms: unauthenticated session; command connect not in commands [udp]; port 80 not in ports [53]"},
	}
	if d.Rule != "lab" || !slices.Equal(misses, want) {
		t.Errorf("decision %+v\nmisses %q", d, misses)
	}

	if got := misses[2].String(); got != `rule "bob-nothing": principals: unauthenticated session` {
		t.Errorf("Miss.String() = %s", got)
	}

	// Nothing missed when the first rule decides.
	if _, misses := e.Explain(req(alice, "10.1.1.1", "", ips("127.0.0.1"), 80)); misses != nil {
		t.Errorf("misses %v", misses)
	}
}

func TestChooseLevel(t *testing.T) {
	e := newEngine(t, fixture())
	cases := []struct {
		name      string
		id        Identity
		src       string
		requested Level
		nec       bool
		level     Level
		rule      string
		reason    string // the Denied reason when err
		err       bool
	}{
		{"accepted", alice, "10.1.1.1", integ, false, integ, "staff", `integrity requested, accepted by rule "staff"`, false},
		{"accepted confidentiality", alice, "10.1.1.1", conf, false, conf, "staff", `confidentiality requested, accepted by rule "staff"`, false},
		{"clear raised", alice, "10.1.1.1", clear, false, integ, "staff", `clear requested, raised to integrity: the matching rules do not accept clear`, false},
		{"selective refused", alice, "10.1.1.1", LevelSelective, false, 0, "", "protection level selective is not supported", true},
		{"unknown level refused", alice, "10.1.1.1", 9, false, 0, "", "protection level level(9) is not supported", true},
		{"no candidate", alice, "192.0.2.1", integ, false, 0, "", "no allow rule matches alice@EXAMPLE.TEST from 192.0.2.1", true},
		{"deny rule decides all", bob, "10.1.1.1", integ, false, 0, "bob-nothing", `rule "bob-nothing" denies`, true},
		{"first candidate accepting", svcAB, "10.1.1.1", conf, false, conf, "staff", `confidentiality requested, accepted by rule "staff"`, false},
		{"later candidate accepting", svcAB, "10.1.1.1", clear, false, clear, "svc", `clear requested, accepted by rule "svc"`, false},
		{"auth_only", svcAB, "203.0.113.1", conf, false, clear, "svc", `confidentiality requested, clear granted: rule "svc" is auth_only`, false},
		{"auth_only not needed", svcAB, "203.0.113.1", integ, false, integ, "svc", `integrity requested, accepted by rule "svc"`, false},
		{"NEC accepted", svcAB, "203.0.113.1", integ, true, integ, "svc", `integrity requested, accepted by rule "svc"`, false},
		{"NEC narrows candidates", svcAB, "10.1.1.1", conf, true, clear, "svc", `confidentiality requested, clear granted: rule "svc" is auth_only`, false},
		{"NEC refused", alice, "10.1.1.1", integ, true, 0, "staff", "the unwrapped (NEC) protection-level form is not accepted by the matching rules", true},
		{"raised to the only level", carol, "203.0.113.1", integ, false, conf, "admins", `integrity requested, raised to confidentiality: the matching rules do not accept integrity`, false},
		{"catch-all rule ends the scan", carol, "10.1.1.1", integ, false, conf, "admins", `integrity requested, raised to confidentiality: the matching rules do not accept integrity`, false},
		{"no-auth clear", anon, "10.9.1.1", clear, false, clear, "lab", `clear requested, accepted by rule "lab"`, false},
		{"no downgrade without auth_only", anon, "10.9.1.1", integ, false, 0, "lab", "integrity requested, but the matching rules accept only clear", true},
		{"no-auth elsewhere", anon, "10.1.1.1", clear, false, 0, "", "no allow rule matches unauthenticated client from 10.1.1.1", true},
		{"default protection raises clear", dave, "203.0.113.1", clear, false, integ, "partner-dns", `clear requested, raised to integrity: the matching rules do not accept clear`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.ChooseLevel(c.id, ip(c.src), c.requested, c.nec)
			if c.err {
				var denied *Denied
				if !errors.As(err, &denied) {
					t.Fatalf("got %+v, %v; want a *Denied", got, err)
				}
				if denied.Rule != c.rule || denied.Reason != c.reason {
					t.Errorf("denied %q %q, want %q %q", denied.Rule, denied.Reason, c.rule, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != (LevelChoice{Level: c.level, Rule: c.rule, Reason: c.reason}) {
				t.Errorf("got %+v\nwant %v %q %q", got, c.level, c.rule, c.reason)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "alice@EXAMPLE.TEST", true},
		{"*@EXAMPLE.TEST", "alice@EXAMPLE.TEST", true},
		{"*@EXAMPLE.TEST", "rcmd/host@EXAMPLE.TEST", true},
		{"*@EXAMPLE.TEST", "alice@EXAMPLE.TESTX", false},
		{"*@EXAMPLE.TEST", "alice@example.test", false},
		{"alice@*", "alice@ANY.REALM", true},
		{"alice@*", "malice@ANY.REALM", false},
		{"svc-?@R", "svc-é@R", true},
		{"svc-?@R", "svc-ab@R", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**", "x", true},
		{"?", "", false},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %t", c.pattern, c.s, got)
		}
	}
}

func TestCoversDestinations(t *testing.T) {
	net := func(a Action, cidrs ...string) *Rule {
		r := &Rule{Action: a}
		for _, c := range cidrs {
			r.Destinations = append(r.Destinations, Destination{Prefix: netip.MustParsePrefix(c)})
		}
		return r
	}
	for _, c := range []struct {
		name string
		a, b *Rule
		want bool
	}{
		{"allow over allow", net(ActionAllow, "10.0.0.0/8"), net(ActionAllow, "10.5.0.0/16"), true},
		{"deny over deny", net(ActionDeny, "10.0.0.0/8"), net(ActionDeny, "10.5.0.0/16"), true},
		{"deny over allow", net(ActionDeny, "10.0.0.0/8"), net(ActionAllow, "10.5.0.0/16"), true},
		// An allow needs every address inside; the later deny fires on any.
		{"allow does not cover deny", net(ActionAllow, "10.0.0.0/8"), net(ActionDeny, "10.5.0.0/16"), false},
		{"narrower does not cover", net(ActionAllow, "10.5.0.0/16"), net(ActionAllow, "10.0.0.0/8"), false},
		{"absent covers", &Rule{}, net(ActionDeny, "10.0.0.0/8"), true},
		{"present does not cover absent", net(ActionAllow, "0.0.0.0/0"), &Rule{}, false},
		{"pattern covers deeper pattern", &Rule{Destinations: []Destination{{Name: "*.example"}}}, &Rule{Destinations: []Destination{{Name: "*.corp.example"}}}, true},
		{"pattern does not cover apex", &Rule{Destinations: []Destination{{Name: "*.example"}}}, &Rule{Destinations: []Destination{{Name: "example"}}}, false},
	} {
		if got := covers(c.a, c.b); got != c.want {
			t.Errorf("%s: covers = %t", c.name, got)
		}
	}
}

// TestConcurrentDecide runs decisions from many goroutines for the race
// detector: the engine must not write after NewEngine.
func TestConcurrentDecide(t *testing.T) {
	e := newEngine(t, fixture())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				r := req(carol, "10.1.1.1", "x.corp.example.test", ips("10.2.3.4"), uint16(j+i))
				e.Decide(r)
				e.Explain(r)
				e.ChooseLevel(carol, ip("10.1.1.1"), integ, j%2 == 0)
			}
		})
	}
	wg.Wait()
}

func TestDeniedError(t *testing.T) {
	err := Decision{Rule: "deny-db", Reason: `rule "deny-db" denies`}.Err()
	var d *Denied
	if !errors.As(err, &d) || d.Rule != "deny-db" || err.Error() != `policy: denied: rule "deny-db" denies` {
		t.Fatalf("%v", err)
	}
}

func TestRequestString(t *testing.T) {
	r := req(alice, "10.1.1.1", "wiki.corp.example.test", ips("10.2.3.4", "10.2.3.5"), 443)
	if got, want := r.String(), "alice@EXAMPLE.TEST from 10.1.1.1: connect wiki.corp.example.test [10.2.3.4 10.2.3.5] port 443, integrity"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	r = with(req(anon, "10.9.1.1", "", ips("192.0.2.1"), 80), func(r *Request) { r.Level, r.NEC = clear, true })
	if got, want := r.String(), "unauthenticated client from 10.9.1.1: connect [192.0.2.1] port 80, clear (NEC)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzDecide checks engine invariants on arbitrary requests: no panic,
// Explain agrees with Decide and stops at the deciding rule, an allow
// comes with an accepted level and reaches a gateway-local destination
// only through a rule naming a gateway-local network, a deny rule with
// groups matches a client whose groups are unknown, and ChooseLevel
// grants only what its rule accepts.
func FuzzDecide(f *testing.F) {
	rules := fixture()
	rules = append(rules, Rule{Name: "local-web", Destinations: []Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}, Ports: []PortRange{{Lo: 8080, Hi: 8080}}},
		Rule{Name: "open", Principals: []string{"*"}})
	e := newEngine(f, rules, WithLocalAddrs(ips("192.0.2.2")))
	byName := map[string]*Rule{}
	for i := range rules {
		byName[rules[i].Name] = &rules[i]
	}
	f.Add("alice@EXAMPLE.TEST", "", []byte{10, 1, 1, 1}, uint8(1), "wiki.corp.example.test", []byte{127, 0, 0, 1}, uint16(443), uint8(1), false, true, false)
	f.Add("svc-ab@EXAMPLE.TEST", "S-1-5-21-1-2-3-512", []byte{203, 0, 113, 1}, uint8(3), "", []byte{10, 5, 1, 1}, uint16(5432), uint8(0), true, false, true)
	f.Add("", "", []byte{10, 9, 1, 1}, uint8(1), "", []byte{}, uint16(80), uint8(0), false, false, false)
	f.Add("x@EXAMPLE.TEST", "", []byte{10, 9, 1, 1}, uint8(1), "0x7f.1", []byte{0, 0, 0, 0}, uint16(8080), uint8(1), false, true, true)
	f.Fuzz(func(t *testing.T, principal, sid string, src []byte, cmd uint8, host string, dst []byte, port uint16, level uint8, nec, known, fold bool) {
		toAddr := func(b []byte) netip.Addr {
			if a, ok := netip.AddrFromSlice(b); ok {
				return a
			}
			return netip.Addr{}
		}
		id := Identity{Principal: principal, GroupSIDs: []string{sid}, GroupsKnown: known, CaseInsensitive: fold}
		var addrs []netip.Addr
		for len(dst) >= 4 {
			n := 4
			if len(dst) >= 16 && dst[0]&1 == 1 {
				n = 16
			}
			addrs = append(addrs, toAddr(dst[:n]))
			dst = dst[n:]
		}
		r := Request{Identity: id, Source: toAddr(src), Command: socks5.Command(cmd), Host: host, Addrs: addrs, Port: port, Level: Level(level), NEC: nec}

		d := e.Decide(r)
		ed, misses := e.Explain(r)
		if d != ed {
			t.Fatalf("Decide %+v, Explain %+v", d, ed)
		}
		switch {
		case d.Rule == "":
			if len(misses) != len(rules) {
				t.Fatalf("%d misses for the default deny", len(misses))
			}
		case d.Rule == GatewayLocalRule:
			if d.Allow || d.GatewayLocal == "" || len(misses) >= len(rules) || rules[len(misses)].Action != ActionAllow {
				t.Fatalf("gateway-local %+v after %d misses", d, len(misses))
			}
		case rules[len(misses)].Name != d.Rule:
			t.Fatalf("%d misses for decision by %q", len(misses), d.Rule)
		}
		if d.Allow {
			rule := byName[d.Rule]
			if rule.Action != ActionAllow || !slices.Contains(protection(rule), r.Level) || (nec && !rule.NEC) {
				t.Fatalf("allowed by %+v at %s", rule, r.Level)
			}
			if d.GatewayLocal != "" && rule.Name != "local-web" {
				t.Fatalf("gateway-local destination (%s) allowed by %q", d.GatewayLocal, rule.Name)
			}
			if rule.SIDs != nil && !known {
				t.Fatalf("allowed by group rule %q with unknown groups", rule.Name)
			}
		}
		lc, err := e.ChooseLevel(id, r.Source, Level(level), nec)
		if err == nil {
			rule := byName[lc.Rule]
			if rule == nil || rule.Action != ActionAllow || !slices.Contains(protection(rule), lc.Level) || (nec && !rule.NEC) {
				t.Fatalf("ChooseLevel %+v by %+v", lc, rule)
			}
		} else if _, ok := err.(*Denied); !ok {
			t.Fatalf("ChooseLevel error %T", err)
		}
	})
}

// protection is what rule accepts, its default included.
func protection(r *Rule) []Level {
	if r.Protection == nil {
		return DefaultProtection()
	}
	return r.Protection
}

// TestNewEngineRejects: rules built by hand get the checks the config
// package makes, so a broken rule fails the build instead of matching
// nothing (or, for a deny rule, failing open).
func TestNewEngineRejects(t *testing.T) {
	ok := Rule{Name: "ok"}
	for _, c := range []struct {
		name string
		rule Rule
		want string
	}{
		{"no name", Rule{}, `1 "": no name`},
		{"action", Rule{Name: "r", Action: 7}, `1 "r": unknown action(7)`},
		{"source", Rule{Name: "r", Sources: []netip.Prefix{{}}}, `1 "r": invalid source network invalid Prefix`},
		{"empty destination", Rule{Name: "r", Destinations: []Destination{{}}}, `1 "r": a destination with neither a name nor a valid network`},
		{"both", Rule{Name: "r", Destinations: []Destination{{Name: "a.test", Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}, `1 "r": destination "a.test" has both a name and a network`},
		{"name case", Rule{Name: "r", Destinations: []Destination{{Name: "A.test."}}}, `1 "r": destination name "A.test." is not lower case without a trailing dot`},
		{"ports", Rule{Name: "r", Ports: []PortRange{{Lo: 9, Hi: 1}}}, `1 "r": inverted port range 9-1`},
		{"command", Rule{Name: "r", Commands: []socks5.Command{9}}, `1 "r": unknown command cmd(0x09)`},
		{"selective", Rule{Name: "r", Protection: []Level{LevelSelective}}, `1 "r": protection level selective is not supported`},
	} {
		_, err := NewEngine([]Rule{c.rule})
		if !errors.Is(err, ErrInvalidRule) || err.Error() != "policy: invalid rule "+c.want {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := NewEngine([]Rule{ok, {Name: "x"}, ok}); err == nil || err.Error() != `policy: invalid rule 3 "ok": the name is not unique` {
		t.Errorf("duplicate: %v", err)
	}
	if e, err := NewEngine(nil); err != nil || len(e.Rules()) != 0 {
		t.Errorf("no rules: %v", err)
	}
}

// TestEngineOwnsItsRules: changing the rules after NewEngine, or what
// Rules returns, changes no decision.
func TestEngineOwnsItsRules(t *testing.T) {
	rules := fixture()
	e := newEngine(t, rules)
	r := req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443)
	rules[4].Ports[1] = PortRange{Lo: 1, Hi: 1}
	rules[4].Name = "changed"
	got := e.Rules()
	got[4].Ports[1] = PortRange{Lo: 1, Hi: 1}
	got[0].Destinations[0] = Destination{Prefix: netip.MustParsePrefix("10.0.0.0/8")}
	if d := e.Decide(r); !d.Allow || d.Rule != "staff" {
		t.Errorf("decision %+v", d)
	}
	if again := e.Rules(); again[4].Name != "staff" || again[4].Ports[1] != (PortRange{Lo: 443, Hi: 443}) || len(again) != len(rules) {
		t.Errorf("rules %+v", again[4])
	}
	// Absent (nil) and present-but-empty matchers stay apart in copies.
	e = newEngine(t, []Rule{{Name: "none", Ports: []PortRange{}}, {Name: "all"}})
	if got := e.Rules(); got[0].Ports == nil || got[1].Ports != nil {
		t.Errorf("copies %+v", got)
	}
	if d := e.Decide(req(alice, "10.1.1.1", "", ips("10.2.3.4"), 443)); d.Rule != "all" {
		t.Errorf("an empty matcher matched: %+v", d)
	}
}

func TestShadows(t *testing.T) {
	rules := fixture()
	rules = append(rules,
		Rule{Name: "staff-web", Principals: []string{"alice@EXAMPLE.TEST"}, Sources: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
			Destinations: []Destination{{Name: "*.web.corp.example.test"}}, Ports: []PortRange{{Lo: 443, Hi: 443}}, Commands: []socks5.Command{socks5.CmdConnect}},
		Rule{Name: "more-bob", Action: ActionDeny, Principals: []string{"bob@EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 22, Hi: 22}}},
		Rule{Name: "lab-ssh", Sources: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, Ports: []PortRange{{Lo: 22, Hi: 22}}},
	)
	want := []Shadow{{Rule: 9, By: 4}, {Rule: 10, By: 2}}
	if got := Shadows(rules); !slices.Equal(got, want) {
		t.Errorf("Shadows = %v, want %v", got, want)
	}
	if got := Shadows(fixture()); got != nil {
		t.Errorf("the fixture has no shadowed rule: %v", got)
	}
}

func TestLevelNames(t *testing.T) {
	for l := range Level(255) {
		p, err := ParseLevel(l.String())
		if (err == nil) != (l <= LevelSelective) || (err == nil && p != l) {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), p, err)
		}
	}
	if _, err := ParseLevel("Integrity"); err == nil {
		t.Error("level names are lower case")
	}
}

func TestPosition(t *testing.T) {
	if got := (Position{File: "gssocks.hcl", Line: 12, Column: 1}).String(); got != "gssocks.hcl:12:1" {
		t.Errorf("got %s", got)
	}
	if got := (Position{}).String(); got != "-" {
		t.Errorf("zero: %s", got)
	}
}
