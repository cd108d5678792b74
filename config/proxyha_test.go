package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestProxyProtocolAndUDPFromHCL pins the proxy_protocol and udp blocks:
// off and unset by default, networks and the advertised address decoded,
// bad values refused with a diagnostic on the value.
func TestProxyProtocolAndUDPFromHCL(t *testing.T) {
	const head = `listen = ["127.0.0.1:1080"]
rule "r" {}
`
	cfg := mustParse(t, head)
	if cfg.ProxyProtocol.Enabled() || cfg.UDP.Advertise.IsValid() {
		t.Errorf("defaults: proxy %+v udp %+v", cfg.ProxyProtocol, cfg.UDP)
	}
	cfg = mustParse(t, head+`
proxy_protocol { trusted = ["127.0.0.1", "10.0.0.0/24", "::ffff:192.0.2.0/120"] }
udp { advertise = "203.0.113.10" }
`)
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	}
	if !slices.Equal(cfg.ProxyProtocol.Trusted, want) || !cfg.ProxyProtocol.Enabled() {
		t.Errorf("trusted %v, want %v", cfg.ProxyProtocol.Trusted, want)
	}
	if cfg.UDP.Advertise != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("advertise %v", cfg.UDP.Advertise)
	}

	for _, c := range []struct{ name, src, want string }{
		{"bad network", `proxy_protocol { trusted = ["10.0.0.0/33"] }`, "Invalid CIDR"},
		{"no trusted", `proxy_protocol {}`, "trusted"},
		{"advertise with port", `udp { advertise = "203.0.113.10:1080" }`, "Invalid address"},
		{"advertise unspecified", `udp { advertise = "0.0.0.0" }`, "cannot be advertised"},
		{"advertise name", `udp { advertise = "gw.example.com" }`, "Invalid address"},
	} {
		_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+c.src), "test.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) {
			t.Errorf("%s: diagnostics %v, want an error with %q", c.name, diags, c.want)
		}
	}
	_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+`proxy_protocol { trusted = ["0.0.0.0/0"] }`), "test.hcl")
	if diags.HasErrors() || !strings.Contains(diags.Error(), "trusted from anywhere") {
		t.Errorf("trusted everywhere: %v, want a warning", diags)
	}
}
