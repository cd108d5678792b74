package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/socks5"
)

func TestMethodNames(t *testing.T) {
	for m := MethodGSSAPI; m <= MethodSOCKS4; m++ {
		got, ok := ParseMethod(m.String())
		if !ok || got != m {
			t.Errorf("ParseMethod(%q) = %v, %t", m.String(), got, ok)
		}
	}
	for _, s := range []string{"unknown", "", "GSSAPI", "socks5", "Method(9)"} {
		if m, ok := ParseMethod(s); ok {
			t.Errorf("ParseMethod(%q) = %v, want false", s, m)
		}
	}
	if s := Method(42).String(); s != "Method(42)" {
		t.Errorf("Method(42) = %q", s)
	}
	for m, want := range map[Method]bool{MethodUnknown: false, MethodGSSAPI: true, MethodPassword: true,
		MethodNegotiate: true, MethodNone: false, MethodSOCKS4: false} {
		if m.Authenticates() != want {
			t.Errorf("%s.Authenticates() = %t", m, !want)
		}
	}
}

// methodRules: password sessions kept off the database network, GSS-API
// everywhere the staff rule allows, the lab (no identity) for none and
// socks4, and a rule with identity matchers listing socks4, which can
// therefore never match anything.
func methodRules() []Rule {
	p := netip.MustParsePrefix
	return []Rule{
		{Name: "no-password-db", Action: ActionDeny, Methods: []Method{MethodPassword},
			Destinations: []Destination{{Prefix: p("10.5.0.0/16")}}},
		{Name: "staff", Principals: []string{"*@EXAMPLE.TEST"}, Methods: []Method{MethodGSSAPI, MethodPassword, MethodNegotiate},
			Protection: []Level{LevelClear, LevelIntegrity, LevelConfidentiality}},
		{Name: "socks4-as-alice", Principals: []string{"alice@EXAMPLE.TEST"}, Methods: []Method{MethodSOCKS4},
			Protection: []Level{LevelClear}},
		{Name: "lab", Sources: []netip.Prefix{p("10.9.0.0/16")}, Methods: []Method{MethodNone, MethodSOCKS4},
			Protection: []Level{LevelClear}, Ports: []PortRange{{Lo: 80, Hi: 80}}},
		{Name: "any-method", Sources: []netip.Prefix{p("10.8.0.0/16")}, Protection: []Level{LevelClear}},
	}
}

// TestMethodsMatcher pins the methods matcher: a listed set matches only
// those methods and never MethodUnknown; an absent one matches every
// method, MethodUnknown included; identity matchers never match an
// unauthenticated method even when the request carries an identity.
func TestMethodsMatcher(t *testing.T) {
	e := newEngine(t, methodRules())
	for _, c := range []struct {
		name   string
		id     Identity
		method Method
		src    string
		dst    string
		port   uint16
		allow  bool
		rule   string
	}{
		{"gssapi staff", alice, MethodGSSAPI, "192.168.1.1", "10.5.1.1", 5432, true, "staff"},
		{"password to the db network: denied", alice, MethodPassword, "192.168.1.1", "10.5.1.1", 5432, false, "no-password-db"},
		{"password elsewhere", alice, MethodPassword, "192.168.1.1", "10.6.1.1", 443, true, "staff"},
		{"negotiate", alice, MethodNegotiate, "192.168.1.1", "10.6.1.1", 443, true, "staff"},
		{"unknown method: no listed set matches", alice, MethodUnknown, "192.168.1.1", "10.6.1.1", 443, false, ""},
		{"unknown method: an absent matcher matches", Identity{}, MethodUnknown, "10.8.1.1", "10.6.1.1", 443, true, "any-method"},
		{"socks4 with an identity claimed: identity matchers do not match", alice, MethodSOCKS4, "192.168.1.1", "10.6.1.1", 80, false, ""},
		{"socks4 from the lab", alice, MethodSOCKS4, "10.9.1.1", "10.6.1.1", 80, true, "lab"},
		{"none from the lab", Identity{}, MethodNone, "10.9.1.1", "10.6.1.1", 80, true, "lab"},
		{"none with an identity claimed: staff does not match", alice, MethodNone, "10.8.1.1", "10.6.1.1", 80, true, "any-method"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Request{Identity: c.id, Method: c.method, Source: ip(c.src), Command: socks5.CmdConnect,
				Addrs: ips(c.dst), Port: c.port}
			d := e.Decide(r)
			if d.Allow != c.allow || d.Rule != c.rule {
				t.Fatalf("%+v, want allow %t by %q", d, c.allow, c.rule)
			}
		})
	}
}

// TestExplainMethod: a rule passed over for its methods says which
// method and which list.
func TestExplainMethod(t *testing.T) {
	e := newEngine(t, []Rule{
		{Name: "gss-only", Methods: []Method{MethodGSSAPI}, Protection: []Level{LevelClear}},
		{Name: "rest", Protection: []Level{LevelClear}},
	})
	d, misses := e.Explain(Request{Identity: alice, Method: MethodPassword, Source: ip("10.1.1.1"),
		Command: socks5.CmdConnect, Addrs: ips("10.2.2.2"), Port: 443})
	if d.Rule != "rest" || len(misses) != 1 || misses[0].Why != "method password not in [gssapi]" {
		t.Fatalf("%+v %v", d, misses)
	}
	_, misses = e.Explain(Request{Identity: alice, Source: ip("10.1.1.1"), Command: socks5.CmdConnect, Addrs: ips("10.2.2.2"), Port: 443})
	if len(misses) != 1 || misses[0].Why != "method unknown not in [gssapi]" {
		t.Fatalf("unknown method: %v", misses)
	}
	// An identity matcher for an unauthenticated method says so.
	e = newEngine(t, []Rule{{Name: "alice", Principals: []string{"alice@EXAMPLE.TEST"}, Protection: []Level{LevelClear}}})
	_, misses = e.Explain(Request{Identity: alice, Method: MethodSOCKS4, Source: ip("10.1.1.1"), Command: socks5.CmdConnect, Addrs: ips("10.2.2.2"), Port: 80})
	if len(misses) != 1 || misses[0].Why != "principals: unauthenticated session" {
		t.Fatalf("socks4: %v", misses)
	}
	if s := (Request{Method: MethodSOCKS4, Source: ip("10.1.1.1"), Addrs: ips("10.2.2.2"), Port: 80}).String(); !strings.HasSuffix(s, ", method socks4") {
		t.Errorf("Request.String() = %q", s)
	}
}

// TestChooseLevelMethods: only GSS-API negotiates a level, so the
// candidates are the rules matching GSS-API sessions; a rule listing
// only other methods is not one, even before a rule that is.
func TestChooseLevelMethods(t *testing.T) {
	e := newEngine(t, []Rule{
		{Name: "password-clear", Principals: []string{"*@EXAMPLE.TEST"}, Methods: []Method{MethodPassword}, Protection: []Level{LevelClear}},
		{Name: "gss-conf", Principals: []string{"*@EXAMPLE.TEST"}, Methods: []Method{MethodGSSAPI}, Protection: []Level{LevelConfidentiality}},
	})
	ch, err := e.ChooseLevel(alice, ip("10.1.1.1"), LevelClear, false)
	if err != nil || ch.Level != LevelConfidentiality || ch.Rule != "gss-conf" {
		t.Fatalf("%+v %v", ch, err)
	}
	e = newEngine(t, []Rule{{Name: "password-only", Principals: []string{"*@EXAMPLE.TEST"}, Methods: []Method{MethodPassword}}})
	var denied *Denied
	if _, err := e.ChooseLevel(alice, ip("10.1.1.1"), LevelIntegrity, false); !errors.As(err, &denied) {
		t.Fatalf("a rule for password sessions granted a GSS-API level: %v", err)
	}
	// DecideCommand judges methods as Decide does.
	e = newEngine(t, []Rule{{Name: "gss-bind", Methods: []Method{MethodGSSAPI}, Protection: []Level{LevelClear}}})
	if d := e.DecideCommand(Request{Method: MethodSOCKS4, Source: ip("10.1.1.1"), Command: socks5.CmdBind}); d.Allow {
		t.Fatalf("socks4 bind allowed by a gssapi rule: %+v", d)
	}
	if d := e.DecideCommand(Request{Method: MethodGSSAPI, Source: ip("10.1.1.1"), Command: socks5.CmdBind}); !d.Allow {
		t.Fatalf("gssapi bind: %+v", d)
	}
}

func TestShadowsMethods(t *testing.T) {
	for _, c := range []struct {
		name    string
		a, b    []Method
		shadows bool
	}{
		{"absent covers a list", nil, []Method{MethodSOCKS4}, true},
		{"a superset covers", []Method{MethodGSSAPI, MethodPassword}, []Method{MethodPassword}, true},
		{"a list does not cover absent (MethodUnknown, the others)", []Method{MethodGSSAPI}, nil, false},
		{"disjoint", []Method{MethodGSSAPI}, []Method{MethodPassword}, false},
	} {
		rules := []Rule{{Name: "a", Methods: c.a}, {Name: "b", Methods: c.b}}
		got := Shadows(rules)
		if want := c.shadows; (len(got) == 1) != want {
			t.Errorf("%s: Shadows = %v", c.name, got)
		}
	}
}

func TestNewEngineRejectsMethods(t *testing.T) {
	for _, m := range []Method{MethodUnknown, Method(9), Method(200)} {
		_, err := NewEngine([]Rule{{Name: "r", Methods: []Method{MethodGSSAPI, m}}})
		if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "unknown method "+m.String()) {
			t.Errorf("%s: %v", m, err)
		}
	}
	// The engine keeps its own copy of the list.
	rules := []Rule{{Name: "r", Methods: []Method{MethodGSSAPI}}}
	e := newEngine(t, rules)
	rules[0].Methods[0] = MethodSOCKS4
	if got := e.Rules()[0].Methods; !slices.Equal(got, []Method{MethodGSSAPI}) {
		t.Errorf("methods %v", got)
	}
}
