package config

import (
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/gssocks/gssocks/policy"
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
