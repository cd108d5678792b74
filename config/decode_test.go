package config

import (
	"errors"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// TestRulesFromHCL decodes every kind of matcher and checks the plain
// rules handed to the engine, positions included: the policy package's
// tests decide against the same rules written as Go values.
func TestRulesFromHCL(t *testing.T) {
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]

no_auth { sources = ["fe80::/10", "::ffff:10.9.0.0/112"] }

group "vpn-users" {
  sids = ["s-1-5-21-1-2-3-1104"]
}

rule "deny-loopback" {
  action       = "deny"
  destinations = ["127.0.0.0/8", "::1"]
}

rule "deny-db" {
  action       = "deny"
  destinations = ["10.5.0.0/16", "DB.corp.example.test."]
  ports        = ["5432"]
}

rule "bob-nothing" {
  action     = "deny"
  principals = ["bob@EXAMPLE.TEST"]
}

rule "admins" {
  groups                     = ["S-1-5-21-1-2-3-512"]
  protection                 = ["confidentiality"]
  idle_timeout               = "1h"
  max_sessions_per_principal = 3
}

rule "staff" {
  principals   = ["*@EXAMPLE.TEST"]
  sources      = ["10.0.0.0/8", "2001:db8::/32"]
  destinations = ["10.0.0.0/8", "*.corp.example.test", "intranet.example.test"]
  ports        = ["80", 443, "8000-8999"]
  commands     = ["connect", "bind", "connect"]
}

rule "vpn" {
  groups       = ["vpn-users"]
  commands     = ["connect"]
  destinations = ["192.0.2.0/24"]
}

rule "svc" {
  principals = ["svc-??@EXAMPLE.TEST", "svc-*@OTHER.TEST"]
  protection = ["integrity", "clear"]
  auth_only  = true
  nec        = true
}

rule "partner-dns" {
  realms   = ["PARTNER.TEST"]
  commands = ["udp"]
  ports    = ["53"]
}

rule "lab" {
  sources    = ["10.9.0.0/16"]
  protection = ["clear"]
  ports      = ["80"]
}
`)
	p := netip.MustParsePrefix
	pos := func(line int) policy.Position { return policy.Position{File: "test.hcl", Line: line, Column: 1} }
	def := policy.DefaultProtection()
	want := []policy.Rule{
		{Name: "deny-loopback", Action: policy.ActionDeny, Protection: def, Pos: pos(9),
			Destinations: []policy.Destination{{Prefix: p("127.0.0.0/8")}, {Prefix: p("::1/128")}}},
		{Name: "deny-db", Action: policy.ActionDeny, Protection: def, Pos: pos(14),
			Destinations: []policy.Destination{{Prefix: p("10.5.0.0/16")}, {Name: "db.corp.example.test"}},
			Ports:        []policy.PortRange{{Lo: 5432, Hi: 5432}}},
		{Name: "bob-nothing", Action: policy.ActionDeny, Protection: def, Pos: pos(20),
			Principals: []string{"bob@EXAMPLE.TEST"}},
		{Name: "admins", Pos: pos(25), Groups: []string{"S-1-5-21-1-2-3-512"}, SIDs: []string{"S-1-5-21-1-2-3-512"},
			Protection: []policy.Level{policy.LevelConfidentiality}, IdleTimeout: time.Hour, MaxSessionsPerPrincipal: 3},
		{Name: "staff", Protection: def, Pos: pos(32), Principals: []string{"*@EXAMPLE.TEST"},
			Sources:      []netip.Prefix{p("10.0.0.0/8"), p("2001:db8::/32")},
			Destinations: []policy.Destination{{Prefix: p("10.0.0.0/8")}, {Name: "*.corp.example.test"}, {Name: "intranet.example.test"}},
			Ports:        []policy.PortRange{{Lo: 80, Hi: 80}, {Lo: 443, Hi: 443}, {Lo: 8000, Hi: 8999}},
			Commands:     []socks5.Command{socks5.CmdConnect, socks5.CmdBind}},
		{Name: "vpn", Protection: def, Pos: pos(40), Groups: []string{"vpn-users"}, SIDs: []string{"S-1-5-21-1-2-3-1104"},
			Commands: []socks5.Command{socks5.CmdConnect}, Destinations: []policy.Destination{{Prefix: p("192.0.2.0/24")}}},
		{Name: "svc", Pos: pos(46), Principals: []string{"svc-??@EXAMPLE.TEST", "svc-*@OTHER.TEST"},
			Protection: []policy.Level{policy.LevelClear, policy.LevelIntegrity}, AuthOnly: true, NEC: true},
		{Name: "partner-dns", Protection: def, Pos: pos(53), Realms: []string{"PARTNER.TEST"},
			Commands: []socks5.Command{socks5.CmdUDPAssociate}, Ports: []policy.PortRange{{Lo: 53, Hi: 53}}},
		{Name: "lab", Pos: pos(59), Sources: []netip.Prefix{p("10.9.0.0/16")},
			Protection: []policy.Level{policy.LevelClear}, Ports: []policy.PortRange{{Lo: 80, Hi: 80}}},
	}
	got := cfg.Engine.Rules()
	if len(got) != len(want) {
		t.Fatalf("%d rules, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("rule %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// no_auth goes through the same membership test as rule sources: a
	// zoned link-local client and an IPv4 client seen through a
	// dual-stack socket are both inside.
	if !reflect.DeepEqual(cfg.NoAuth, policy.Sources{p("fe80::/10"), p("10.9.0.0/16")}) {
		t.Errorf("no_auth %v", cfg.NoAuth)
	}
	for _, a := range []string{"fe80::1%eth0", "fe80::1", "10.9.0.1", "::ffff:10.9.0.1"} {
		if !cfg.NoAuth.Contains(netip.MustParseAddr(a)) {
			t.Errorf("no_auth does not contain %s", a)
		}
	}
	if cfg.NoAuth.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("no_auth contains 2001:db8::1")
	}
}

// TestGatewayLocalFromHCL: the gateway_local block and the interface
// addresses reach the engine. The file's "open" rule is the one that let
// 0.0.0.0 reach the gateway's own services before the built-in deny.
func TestGatewayLocalFromHCL(t *testing.T) {
	const rules = `
rule "local-proxy" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.1", "::1"]
  ports        = ["3128"]
}
rule "open" {
  principals = ["*@EXAMPLE.TEST"]
}
`
	ifaces := func() ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.2"), netip.MustParseAddr("fd00::2")}, nil
	}
	load := func(src string) (*Config, hcl.Diagnostics) {
		t.Helper()
		cfg, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil), LocalAddrs: ifaces}.Parse([]byte(src), "test.hcl")
		return cfg, diags
	}
	alice := policy.Identity{Principal: "alice@EXAMPLE.TEST"}
	decide := func(cfg *Config, addr string, port uint16) policy.Decision {
		return cfg.Engine.Decide(policy.Request{Identity: alice, Source: netip.MustParseAddr("10.1.1.1"), Command: socks5.CmdConnect,
			Addrs: []netip.Addr{netip.MustParseAddr(addr)}, Port: port, Level: policy.LevelIntegrity})
	}

	cfg, diags := load(`listen = [":1080"]` + rules + `gateway_local { addresses = ["198.51.100.7", "203.0.113.0/28"] }`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.GatewayLocal.Off || !reflect.DeepEqual(cfg.GatewayLocal.Extra, []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("203.0.113.0/28")}) {
		t.Errorf("gateway_local %+v", cfg.GatewayLocal)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fd00::2")}; !reflect.DeepEqual(cfg.LocalAddrs, want) || !reflect.DeepEqual(cfg.Engine.LocalAddrs(), want) {
		t.Errorf("local addresses %v, engine %v", cfg.LocalAddrs, cfg.Engine.LocalAddrs())
	}
	// "127.1" in a rule is the address 127.0.0.1, with a warning.
	if r := cfg.Engine.Rules()[0]; r.Destinations[0] != (policy.Destination{Prefix: netip.MustParsePrefix("127.0.0.1/32")}) {
		t.Errorf("local-proxy destinations %v", r.Destinations)
	}
	if len(diags) != 1 || diags[0].Summary != "Address in an unusual form" {
		t.Errorf("diagnostics %v", diags)
	}
	for _, c := range []struct {
		addr string
		port uint16
		rule string
	}{
		{"0.0.0.0", 22, policy.GatewayLocalRule},
		{"::", 22, policy.GatewayLocalRule},
		{"127.0.0.1", 22, policy.GatewayLocalRule},
		{"192.0.2.2", 22, policy.GatewayLocalRule},
		{"fd00::2", 22, policy.GatewayLocalRule},
		{"198.51.100.7", 22, policy.GatewayLocalRule},
		{"203.0.113.9", 22, policy.GatewayLocalRule},
		{"127.0.0.1", 3128, "local-proxy"},
		{"::ffff:127.0.0.1", 3128, "local-proxy"},
		{"0.0.0.0", 3128, policy.GatewayLocalRule},
		{"203.0.113.99", 22, "open"},
	} {
		if d := decide(cfg, c.addr, c.port); d.Rule != c.rule || d.Allow != (c.rule != policy.GatewayLocalRule) {
			t.Errorf("%s port %d: %+v", c.addr, c.port, d)
		}
	}

	// deny = false: the rules alone decide, with a warning; the
	// interfaces are not listed.
	failing := func() ([]netip.Addr, error) { return nil, errors.New("netlink: permission denied") }
	cfg, _, diags = Loader{SkipKeytabCheck: true, Getenv: env(nil), LocalAddrs: failing}.Parse([]byte(`listen = [":1080"]`+rules+`gateway_local { deny = false }`), "test.hcl")
	if diags.HasErrors() || len(diags) != 2 || diags[1].Summary != "Gateway-local destinations allowed" || !cfg.GatewayLocal.Off || cfg.LocalAddrs != nil {
		t.Fatalf("deny = false: %v", diags)
	}
	if d := decide(cfg, "0.0.0.0", 22); !d.Allow || d.Rule != "open" {
		t.Errorf("deny = false: %+v", d)
	}
	// With the deny on, addresses that cannot be listed fail the load.
	_, _, diags = Loader{SkipKeytabCheck: true, Getenv: env(nil), LocalAddrs: failing}.Parse([]byte(`listen = [":1080"]`+rules), "test.hcl")
	if !diags.HasErrors() || diags.Errs()[0].(*hcl.Diagnostic).Summary != "Cannot list the gateway's addresses" {
		t.Errorf("listing failed: %v", diags)
	}
}

// TestRealmsFromHCL: realm blocks reach the engine, which builds
// identities and decides group rules by them.
func TestRealmsFromHCL(t *testing.T) {
	cfg := mustParse(t, `listen = [":1080"]
realm "MIT.EXAMPLE.TEST" {
  pac = "none"
}
realm "LAB.EXAMPLE.TEST" {
  pac                    = "expected"
  case_insensitive_names = true
}
rule "deny-contractors" {
  action = "deny"
  groups = ["S-1-5-21-1-2-3-1500"]
}
rule "deny-alice" {
  action     = "deny"
  principals = ["alice@LAB.EXAMPLE.TEST"]
}
rule "all" {
  principals = ["*"]
}
`)
	want := []policy.Realm{{Name: "MIT.EXAMPLE.TEST", NoPAC: true}, {Name: "LAB.EXAMPLE.TEST", CaseInsensitiveNames: true}}
	if !reflect.DeepEqual(cfg.Realms, want) || !reflect.DeepEqual(cfg.Engine.Realms(), want) {
		t.Errorf("realms %+v", cfg.Realms)
	}
	decide := func(c policy.Client) policy.Decision {
		t.Helper()
		id, err := cfg.Engine.Identify(c)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Engine.Decide(policy.Request{Identity: id, Source: netip.MustParseAddr("10.1.1.1"), Command: socks5.CmdConnect,
			Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.5")}, Port: 22, Level: policy.LevelIntegrity})
	}
	for _, c := range []struct {
		c    policy.Client
		rule string
	}{
		{policy.Client{Name: "bob", Realm: "MIT.EXAMPLE.TEST"}, "all"},                                       // no PACs there: in no group
		{policy.Client{Name: "bob", Realm: "OTHER.EXAMPLE.TEST"}, "deny-contractors"},                        // groups unknown: fail closed
		{policy.Client{Name: "bob", Realm: "AD.EXAMPLE.TEST", PAC: true, Account: "bob"}, "all"},             // known, not a contractor
		{policy.Client{Name: "ALICE", Realm: "LAB.EXAMPLE.TEST", PAC: true, Account: "alice"}, "deny-alice"}, // canonical name
	} {
		if d := decide(c.c); d.Rule != c.rule {
			t.Errorf("%+v: %+v", c.c, d)
		}
	}
}
