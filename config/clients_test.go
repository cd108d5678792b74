package config

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gssocks/gssocks/policy"
)

// TestKerberosClientsFromHCL: trusted realms and the client opt-ins reach
// the Config and the rules, and the engine decides by them.
func TestKerberosClientsFromHCL(t *testing.T) {
	cfg := mustParse(t, `
listen = ["127.0.0.1:1080"]
kerberos {
  trusted_realms        = ["AD.EXAMPLE.COM", "EMEA.AD.EXAMPLE.COM"]
  allow_anonymous       = true
  allow_service_clients = true
}
rule "anon-web" {
  allow_anonymous = true
  ports           = [80]
}
rule "hosts" {
  allow_service_clients = true
  principals            = ["host/ws1.example.com@EXAMPLE.TEST"]
}
rule "users" {
  principals = ["*"]
}
`)
	k := cfg.Kerberos
	if !slices.Equal(k.TrustedRealms, []string{"AD.EXAMPLE.COM", "EMEA.AD.EXAMPLE.COM"}) || !k.AllowAnonymous || !k.AllowServiceClients {
		t.Fatalf("kerberos %+v", k)
	}
	rules := cfg.Engine.Rules()
	if !rules[0].AllowAnonymous || rules[0].AllowServiceClients || !rules[1].AllowServiceClients || rules[2].AllowAnonymous {
		t.Fatalf("rules %+v", rules)
	}
	src := netip.MustParseAddr("10.0.0.1")
	dst := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	for _, tc := range []struct {
		id   policy.Identity
		port uint16
		rule string
	}{
		{policy.Identity{Principal: "WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS", Kind: policy.ClientAnonymous}, 80, "anon-web"},
		{policy.Identity{Principal: "WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS", Kind: policy.ClientAnonymous}, 443, ""},
		{policy.Identity{Principal: "host/ws1.example.com@EXAMPLE.TEST", Kind: policy.ClientService}, 443, "hosts"},
		{policy.Identity{Principal: "host/ws2.example.com@EXAMPLE.TEST", Kind: policy.ClientService}, 443, ""},
		{policy.Identity{Principal: "alice@AD.EXAMPLE.COM"}, 443, "users"},
	} {
		d := cfg.Engine.Decide(policy.Request{Identity: tc.id, Source: src, Command: 1, Addrs: dst, Port: tc.port, Level: policy.LevelIntegrity})
		if d.Rule != tc.rule {
			t.Errorf("%s port %d: %+v, want rule %q", tc.id, tc.port, d, tc.rule)
		}
	}

	def := mustParse(t, `
listen = ["127.0.0.1:1080"]
kerberos {
  trusted_realms = []
}
rule "users" {}
`).Kerberos
	if len(def.TrustedRealms) != 0 || def.AllowAnonymous || def.AllowServiceClients {
		t.Fatalf("defaults %+v", def)
	}
}
