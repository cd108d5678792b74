package policy

import (
	"net/netip"
	"strings"
	"testing"
)

// TestClientKinds: allow rules match anonymous and service clients only
// when they opt in, and then never through principal wildcards; deny
// rules match them, wildcards included.
func TestClientKinds(t *testing.T) {
	e := newEngine(t, []Rule{
		{Name: "deny-partner", Action: ActionDeny, Principals: []string{"*@PARTNER.TEST"}},
		{Name: "users", Principals: []string{"*"}},
		{Name: "anon-web", AllowAnonymous: true, Ports: []PortRange{{Lo: 80, Hi: 80}}},
		{Name: "ws1", AllowServiceClients: true, Principals: []string{"host/ws1@EXAMPLE.TEST", "host/*@EXAMPLE.TEST"}},
		{Name: "lab-services", AllowServiceClients: true, Realms: []string{"LAB.TEST"}},
	})
	id := func(p string, k ClientKind) Identity { return Identity{Principal: p, Kind: k} }
	anonymous := id("WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS", ClientAnonymous)
	for _, tc := range []struct {
		name string
		id   Identity
		port uint16
		rule string // "" for the default deny
		why  string // in the explanation of a miss
	}{
		{"user", id("alice@EXAMPLE.TEST", ClientUser), 443, "users", ""},
		{"anonymous, * does not match", anonymous, 443, "", "anonymous client: allow rule without allow_anonymous"},
		{"anonymous, opted in", anonymous, 80, "anon-web", ""},
		{"service, named", id("host/ws1@EXAMPLE.TEST", ClientService), 443, "ws1", ""},
		{"service, only a wildcard", id("host/ws2@EXAMPLE.TEST", ClientService), 443, "", "(wildcards match users only)"},
		{"service, by realm", id("HTTP/web@LAB.TEST", ClientService), 443, "lab-services", ""},
		{"service of a denied realm", id("host/x@PARTNER.TEST", ClientService), 443, "deny-partner", ""},
		{"service, explained", id("host/ws2@EXAMPLE.TEST", ClientService), 443, "", "service client: allow rule without allow_service_clients"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Identity: tc.id, Source: netip.MustParseAddr("10.1.1.1"), Command: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Port: tc.port, Level: LevelIntegrity}
			d, misses := e.Explain(r)
			if d.Rule != tc.rule || d.Allow != (tc.rule != "" && tc.rule != "deny-partner") {
				t.Fatalf("decision %+v, want rule %q", d, tc.rule)
			}
			if tc.why != "" {
				var all []string
				for _, m := range misses {
					all = append(all, m.String())
				}
				if !strings.Contains(strings.Join(all, "\n"), tc.why) {
					t.Fatalf("explanation lacks %q:\n%s", tc.why, strings.Join(all, "\n"))
				}
			}
		})
	}
	// The level is chosen by the same matching.
	if _, err := e.ChooseLevel(anonymous, netip.MustParseAddr("10.1.1.1"), LevelIntegrity, false); err != nil {
		t.Fatalf("anonymous client, a rule opts in: %v", err)
	}
	if _, err := newEngine(t, []Rule{{Name: "users", Principals: []string{"*"}}}).ChooseLevel(anonymous, netip.MustParseAddr("10.1.1.1"), LevelIntegrity, false); err == nil {
		t.Fatal("anonymous client matched a rule that does not opt in")
	}
}

// TestNewIdentityKind: the kind goes from the acceptor's Client into the
// Identity.
func TestNewIdentityKind(t *testing.T) {
	id, err := NewIdentity(Client{Name: "WELLKNOWN/ANONYMOUS", Realm: "WELLKNOWN:ANONYMOUS", Kind: ClientAnonymous}, Realm{})
	if err != nil || id.Kind != ClientAnonymous || id.Principal != "WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS" {
		t.Fatalf("%+v %v", id, err)
	}
	if ClientService.String() != "service" || ClientKind(9).String() != "ClientKind(9)" {
		t.Fatal(ClientService.String())
	}
}

// TestShadowsClientKinds: a rule reachable only by clients some allow
// rule admits is not shadowed by an allow rule that does not admit them.
func TestShadowsClientKinds(t *testing.T) {
	all := Rule{Name: "all"}
	deny := Rule{Name: "deny-ssh", Action: ActionDeny, Ports: []PortRange{{Lo: 22, Hi: 22}}}
	anonWeb := Rule{Name: "anon-web", AllowAnonymous: true, Ports: []PortRange{{Lo: 80, Hi: 80}}}
	starAnon := Rule{Name: "star-anon", AllowAnonymous: true, Principals: []string{"*"}}
	exactAnon := Rule{Name: "exact-anon", AllowAnonymous: true, Principals: []string{"WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS"}}
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  []Shadow
	}{
		// No rule admits anonymous clients: they are denied either way.
		{"users only", []Rule{all, deny}, []Shadow{{Rule: 1, By: 0}}},
		{"anonymous admitted later", []Rule{all, deny, anonWeb}, nil},
		{"wildcard does not cover an exact anonymous rule", []Rule{starAnon, exactAnon}, nil},
		{"no principals covers", []Rule{{Name: "any-anon", AllowAnonymous: true}, exactAnon}, []Shadow{{Rule: 1, By: 0}}},
		{"deny covers every kind", []Rule{{Name: "deny-all", Action: ActionDeny}, anonWeb}, []Shadow{{Rule: 1, By: 0}}},
	} {
		got := Shadows(tc.rules)
		if len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
