package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNewIdentity(t *testing.T) {
	domainUsers := []string{"S-1-5-21-1-2-3-513"}
	for _, c := range []struct {
		name      string
		c         Client
		realm     Realm
		principal string
		presented string
		fold      bool
		known     bool
		err       bool
	}{
		{"MIT ticket, exact", Client{Name: "alice", Realm: "EXAMPLE.TEST"}, Realm{}, "alice@EXAMPLE.TEST", "alice@EXAMPLE.TEST", false, false, false},
		{"MIT ticket keeps its case", Client{Name: "ALICE", Realm: "EXAMPLE.TEST"}, Realm{}, "ALICE@EXAMPLE.TEST", "ALICE@EXAMPLE.TEST", false, false, false},
		{"case-insensitive realm setting", Client{Name: "ALICE", Realm: "example.test"}, Realm{CaseInsensitiveNames: true}, "alice@EXAMPLE.TEST", "ALICE@example.test", true, false, false},
		{"PAC: account name, case-insensitive", Client{Name: "ALICE", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "alice", GroupSIDs: domainUsers},
			Realm{}, "alice@AD.EXAMPLE.TEST", "ALICE@AD.EXAMPLE.TEST", true, true, false},
		{"PAC without an account name", Client{Name: "Alice", Realm: "AD.EXAMPLE.TEST", PAC: true}, Realm{}, "alice@AD.EXAMPLE.TEST", "Alice@AD.EXAMPLE.TEST", true, true, false},
		{"PAC account stored in mixed case", Client{Name: "alice", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "Alice"}, Realm{}, "alice@AD.EXAMPLE.TEST", "alice@AD.EXAMPLE.TEST", true, true, false},
		{"enterprise name, PAC names the account", Client{Name: "alice@ad.example.test", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "alice"},
			Realm{}, "alice@AD.EXAMPLE.TEST", "alice@ad.example.test@AD.EXAMPLE.TEST", true, true, false},
		{"enterprise UPN of another account name", Client{Name: "alice.smith@corp.example", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "asmith"},
			Realm{}, "asmith@AD.EXAMPLE.TEST", "alice.smith@corp.example@AD.EXAMPLE.TEST", true, true, false},
		{"service principal", Client{Name: "host/WS1.example.test", Realm: "EXAMPLE.TEST"}, Realm{}, "host/WS1.example.test@EXAMPLE.TEST", "host/WS1.example.test@EXAMPLE.TEST", false, false, false},
		{"enterprise name without a PAC", Client{Name: "alice@ad.example.test", Realm: "AD.EXAMPLE.TEST"}, Realm{CaseInsensitiveNames: true}, "", "", false, false, true},
		{"enterprise name, PAC without account", Client{Name: "alice@ad.example.test", Realm: "AD.EXAMPLE.TEST", PAC: true}, Realm{}, "", "", false, false, true},
		{"PAC account with @", Client{Name: "alice", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "bob@x"}, Realm{}, "", "", false, false, true},
		{"control character", Client{Name: "alice\nrule=all", Realm: "EXAMPLE.TEST"}, Realm{}, "", "", false, false, true},
		{"control in the PAC account", Client{Name: "alice", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "al\x00ice"}, Realm{}, "", "", false, false, true},
		{"no realm", Client{Name: "alice"}, Realm{}, "", "", false, false, true},
		{"no name", Client{Realm: "EXAMPLE.TEST"}, Realm{}, "", "", false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, err := NewIdentity(c.c, c.realm)
			if c.err {
				if !errors.Is(err, ErrNoCanonicalName) {
					t.Fatalf("got %+v, %v; want ErrNoCanonicalName", id, err)
				}
				if strings.Contains(err.Error(), c.c.Name) && c.c.Name != "" {
					t.Errorf("the error quotes the client's name: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Principal != c.principal || id.Presented != c.presented || id.CaseInsensitive != c.fold || id.GroupsKnown != c.known {
				t.Errorf("got %+v", id)
			}
			if name, realm, _ := strings.Cut(c.principal, "@"); id.Name != name || id.Realm != realm {
				t.Errorf("parts %q %q", id.Name, id.Realm)
			}
			if c.c.PAC && !slices.Equal(id.GroupSIDs, c.c.GroupSIDs) {
				t.Errorf("groups %v", id.GroupSIDs)
			}
		})
	}
	// The PAC's SIDs are ignored without a verified PAC.
	id, _ := NewIdentity(Client{Name: "mallory", Realm: "EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-512"}, UserSID: "S-1-5-21-1-2-3-500"}, Realm{})
	if id.GroupSIDs != nil || id.UserSID != "" || id.GroupsKnown {
		t.Errorf("unverified SIDs kept: %+v", id)
	}
	if got := CanonicalPrincipal("Alice", "ad.example.test", true); got != "alice@AD.EXAMPLE.TEST" {
		t.Errorf("CanonicalPrincipal = %s", got)
	}
	if got := CanonicalPrincipal("Alice", "ad.example.test", false); got != "Alice@ad.example.test" {
		t.Errorf("CanonicalPrincipal = %s", got)
	}
	if got := (Identity{Principal: "alice@R"}).PresentedName(); got != "alice@R" {
		t.Errorf("PresentedName = %s", got)
	}
}

// adRules deny one account by name, its realm's contractors by group,
// allow VPN users by group, then everyone in the realm to the web.
func adRules() []Rule {
	return []Rule{
		{Name: "deny-alice", Action: ActionDeny, Principals: []string{"alice@AD.EXAMPLE.TEST"}},
		{Name: "deny-contractors", Action: ActionDeny, Groups: []string{"contractors"}, SIDs: []string{"S-1-5-21-1-2-3-1500"}, Ports: []PortRange{{Lo: 22, Hi: 22}}},
		{Name: "vpn", Groups: []string{"vpn-users"}, SIDs: []string{"S-1-5-21-1-2-3-1104"}, Ports: []PortRange{{Lo: 3389, Hi: 3389}}},
		{Name: "svc", Principals: []string{"svc-*@AD.EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 25, Hi: 25}}},
		{Name: "realm-web", Realms: []string{"AD.EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 443, Hi: 443}}},
		{Name: "anyone-ssh", Principals: []string{"*"}, Ports: []PortRange{{Lo: 22, Hi: 22}}},
		{Name: "lab-admin", Principals: []string{"admin@LAB.EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 8080, Hi: 8080}}},
	}
}

// TestCanonicalIdentityDecisions: the spelling of the ticket does not
// get an account past a rule written for the account. The old engine
// matched the presented "ALICE@AD.EXAMPLE.TEST" and allowed it.
func TestCanonicalIdentityDecisions(t *testing.T) {
	e := newEngine(t, adRules(), WithRealms([]Realm{{Name: "MIT.EXAMPLE.TEST", NoPAC: true}, {Name: "LAB.EXAMPLE.TEST", CaseInsensitiveNames: true}}))
	identify := func(c Client) Identity {
		t.Helper()
		id, err := e.Identify(c)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	dec := func(id Identity, port uint16) Decision {
		return e.Decide(req(id, "10.1.1.1", "", ips("203.0.113.5"), port))
	}
	pac := func(name, account string, sids ...string) Client {
		return Client{Name: name, Realm: "AD.EXAMPLE.TEST", PAC: true, Account: account, GroupSIDs: sids}
	}
	for _, c := range []struct {
		name string
		c    Client
		port uint16
		rule string
	}{
		{"ALICE with a PAC", pac("ALICE", "alice"), 443, "deny-alice"},
		{"Alice with a PAC, no account field", pac("Alice", ""), 443, "deny-alice"},
		{"enterprise alice", pac("alice@ad.example.test", "alice"), 443, "deny-alice"},
		{"bob is not alice", pac("BOB", "bob"), 443, "realm-web"},
		{"realm spelled in lower case", Client{Name: "bob", Realm: "ad.example.test", PAC: true, Account: "bob"}, 443, "realm-web"},
		{"glob ignores case with a PAC", pac("SVC-Mail", "svc-mail"), 25, "svc"},
		{"case-insensitive realm without PAC", Client{Name: "ADMIN", Realm: "lab.example.test"}, 8080, "lab-admin"},
		{"and its groups are unknown", Client{Name: "ADMIN", Realm: "LAB.EXAMPLE.TEST"}, 22, "deny-contractors"},
	} {
		id := identify(c.c)
		if d := dec(id, c.port); d.Rule != c.rule {
			t.Errorf("%s (%s as %s): %+v", c.name, id.Presented, id.Principal, d)
		}
	}
	// Per-principal limits count one key per account.
	a, b, ent := identify(pac("ALICE", "")), identify(pac("alice", "")), identify(pac("alice@ad.example.test", "alice"))
	if a.Principal != b.Principal || a.Principal != ent.Principal {
		t.Errorf("three principals for one account: %q %q %q", a.Principal, b.Principal, ent.Principal)
	}
	// Case-sensitive realms stay exact: ALICE and alice are two MIT principals.
	mit := Identity{Principal: "ALICE@AD.EXAMPLE.TEST", GroupsKnown: true}
	if d := dec(mit, 443); d.Rule != "realm-web" {
		t.Errorf("case-sensitive identity: %+v", d)
	}
	if _, err := e.Identify(Client{Name: "alice@ad.example.test", Realm: "AD.EXAMPLE.TEST"}); !errors.Is(err, ErrNoCanonicalName) {
		t.Errorf("enterprise name without PAC: %v", err)
	}
	if r := e.Realm("lab.example.test"); !r.CaseInsensitiveNames || r.Name != "LAB.EXAMPLE.TEST" {
		t.Errorf("realm lookup ignoring case: %+v", r)
	}
	if r := e.Realm("OTHER.TEST"); r != (Realm{Name: "OTHER.TEST"}) {
		t.Errorf("default realm: %+v", r)
	}
}

// TestGroupsUnknown: a session whose ticket has no verified PAC has
// unknown groups. A deny rule with groups matches it (the old engine let
// it fall through to "anyone-ssh"); an allow rule with groups does not;
// a realm declared to issue no PACs is in no group.
func TestGroupsUnknown(t *testing.T) {
	e := newEngine(t, adRules(), WithRealms([]Realm{{Name: "MIT.EXAMPLE.TEST", NoPAC: true}}))
	noPAC := Identity{Principal: "carl@AD.EXAMPLE.TEST"}
	withPAC := Identity{Principal: "carl@AD.EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-513"}, GroupsKnown: true}
	contractor := Identity{Principal: "carl@AD.EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-1500"}, GroupsKnown: true}
	vpnNoPAC := Identity{Principal: "vic@AD.EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-1104"}} // SIDs without a verified PAC
	mit := Identity{Principal: "carl@MIT.EXAMPLE.TEST"}
	const failClosed = `rule "deny-contractors" denies (groups unknown (no PAC): deny rule matches (fail closed))`
	for _, c := range []struct {
		name  string
		id    Identity
		port  uint16
		allow bool
		rule  string
		why   string
	}{
		{"no PAC: group deny matches", noPAC, 22, false, "deny-contractors", failClosed},
		{"PAC, not a contractor", withPAC, 22, true, "anyone-ssh", `rule "anyone-ssh" allows`},
		{"PAC, a contractor", contractor, 22, false, "deny-contractors", `rule "deny-contractors" denies`},
		{"no PAC: group allow does not match", vpnNoPAC, 3389, false, "", defaultDeny},
		{"PAC-less realm: group deny does not match", mit, 22, true, "anyone-ssh", `rule "anyone-ssh" allows`},
		{"PAC-less realm: group allow does not match", Identity{Principal: "vic@MIT.EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1-2-3-1104"}}, 3389, false, "", defaultDeny},
		{"unauthenticated: identity matchers never match", Identity{}, 22, false, "", defaultDeny},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := req(c.id, "10.1.1.1", "", ips("203.0.113.5"), c.port)
			d := e.Decide(r)
			if d.Allow != c.allow || d.Rule != c.rule || d.Reason != c.why {
				t.Errorf("got %t %q %q\nwant %t %q %q", d.Allow, d.Rule, d.Reason, c.allow, c.rule, c.why)
			}
		})
	}

	_, misses := e.Explain(req(vpnNoPAC, "10.1.1.1", "", ips("203.0.113.5"), 3389))
	if len(misses) < 3 || misses[2].Why != "groups [vpn-users]: groups unknown (no PAC): allow rule does not match" {
		t.Errorf("misses %q", misses)
	}
	_, misses = e.Explain(req(Identity{Principal: "vic@MIT.EXAMPLE.TEST"}, "10.1.1.1", "", ips("203.0.113.5"), 3389))
	if len(misses) < 3 || misses[2].Why != "groups [vpn-users]: realm MIT.EXAMPLE.TEST issues no PAC, so the client is in no group" {
		t.Errorf("misses %q", misses)
	}

	// Before the request too: a group deny without request matchers
	// refuses the session at the protection level.
	e = newEngine(t, []Rule{
		{Name: "deny-contractors", Action: ActionDeny, SIDs: []string{"S-1-5-21-1-2-3-1500"}, Groups: []string{"contractors"}},
		{Name: "all", Principals: []string{"*"}},
	})
	_, err := e.ChooseLevel(noPAC, netip.MustParseAddr("10.1.1.1"), integ, false)
	var denied *Denied
	if !errors.As(err, &denied) || denied.Rule != "deny-contractors" || !strings.Contains(denied.Reason, "fail closed") {
		t.Errorf("ChooseLevel: %v", err)
	}
	if lc, err := e.ChooseLevel(withPAC, netip.MustParseAddr("10.1.1.1"), integ, false); err != nil || lc.Rule != "all" {
		t.Errorf("ChooseLevel with a PAC: %+v %v", lc, err)
	}
}

// TestShadowsUnknownGroups: an allow rule with groups does not shadow a
// later deny rule with the same groups, which also matches clients whose
// groups are unknown.
func TestShadowsUnknownGroups(t *testing.T) {
	sids := []string{"S-1-5-21-1-2-3-1500"}
	rules := []Rule{
		{Name: "allow-g", SIDs: sids, Groups: sids},
		{Name: "deny-g", Action: ActionDeny, SIDs: sids, Groups: sids},
		{Name: "allow-g-again", SIDs: sids, Groups: sids},
	}
	want := []Shadow{{Rule: 2, By: 0}}
	if got := Shadows(rules); !slices.Equal(got, want) {
		t.Errorf("Shadows = %v, want %v", got, want)
	}
}
