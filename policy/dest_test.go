package policy

import (
	"context"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseAddrLiteral(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" for a name
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0X7F.0.0.1", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"00", "0.0.0.0"},
		{"0x0", "0.0.0.0"},
		{"1.2.3", "1.2.0.3"},
		{"1.65535", "1.0.255.255"},
		{"4294967295", "255.255.255.255"},
		{"::1", "::1"},
		{"::", "::"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"0:0:0:0:0:ffff:7f00:1", "127.0.0.1"},
		{"::127.0.0.1", "127.0.0.1"},
		{"::7f00:1", "127.0.0.1"},
		{"::ffff:0.0.0.0", "0.0.0.0"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"2001:DB8::1", "2001:db8::1"},
		{"2001:db8::1.", "2001:db8::1"},

		{"", ""},
		{".", ""},
		{"localhost", ""},
		{"127.0.0.1.example", ""},
		{"1.2.3.4.5", ""},
		{"256.0.0.1", ""},
		{"1.256.1", ""},
		{"1.2.65536", ""},
		{"4294967296", ""},
		{"08.1", ""},
		{"0x", ""},
		{"0x.1", ""},
		{"1..2", ""},
		{"1.2.3.", "1.2.0.3"}, // one trailing dot, as for names
		{"1.2.3..", ""},
		{"+1.2.3.4", ""},
		{"1.-2.3.4", ""},
		{"1_0.0.0.1", ""},
		{"[::1]", ""},
		{"0xg", ""},
		{"99999999999999999999999", ""},
	} {
		got, ok := ParseAddrLiteral(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("ParseAddrLiteral(%q) = %s, want a name", c.in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(c.want) {
			t.Errorf("ParseAddrLiteral(%q) = %s, %t; want %s", c.in, got, ok, c.want)
		}
	}
}

// TestParseAddrLiteralGlibc holds the inet_aton forms against the real
// getaddrinfo of the C library (through getent, which calls it): each is
// an address to glibc, and the same address to ParseAddrLiteral.
func TestParseAddrLiteralGlibc(t *testing.T) {
	getent, err := exec.LookPath("getent")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("getent missing (CI=true): apt-get install libc-bin")
		}
		t.Skip("getent missing")
	}
	for _, form := range []string{
		"127.1", "127.0.1", "0x7f.1", "0X7F.0.0.1", "0177.0.0.1", "2130706433", "017700000001",
		"0x7f000001", "0", "00", "1.2.3", "1.65535", "4294967295", "0x0a.0x01.0x02.0x03",
		"::ffff:127.0.0.1", "::127.0.0.1", "::", "::1", "169.254.169.254",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, getent, "ahosts", form).Output()
		cancel()
		if err != nil {
			t.Errorf("getent ahosts %s: %v", form, err)
			continue
		}
		fields := strings.Fields(string(out))
		if len(fields) == 0 {
			t.Errorf("getent ahosts %s: no output", form)
			continue
		}
		glibc, err := netip.ParseAddr(fields[0])
		if err != nil {
			t.Errorf("getent ahosts %s: %q", form, fields[0])
			continue
		}
		if got, ok := ParseAddrLiteral(form); !ok || got != CanonicalAddr(glibc) {
			t.Errorf("%s: glibc reaches %s, ParseAddrLiteral gives %s, %t", form, glibc, got, ok)
		}
	}
}

func TestCanonicalAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.1.2.3", "10.1.2.3"},
		{"::ffff:10.1.2.3", "10.1.2.3"},
		{"::10.1.2.3", "10.1.2.3"},
		{"::2", "0.0.0.2"},
		{"::1", "::1"},
		{"::", "::"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"2001:db8::1", "2001:db8::1"},
		{"::ffff:0:10.1.2.3", "::ffff:0:a01:203"}, // SIIT (RFC 2765) is plain IPv6 to the kernel
	} {
		if got := CanonicalAddr(netip.MustParseAddr(c.in)); got != netip.MustParseAddr(c.want) {
			t.Errorf("CanonicalAddr(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := CanonicalAddr(netip.Addr{}); got.IsValid() {
		t.Errorf("invalid became %s", got)
	}
	got := CanonicalAddrs([]netip.Addr{ip("::ffff:10.1.2.3"), {}, ip("10.1.2.3"), ip("::1"), ip("::127.0.0.1")})
	if want := ips("10.1.2.3", "::1", "127.0.0.1"); !equalAddrs(got, want) {
		t.Errorf("CanonicalAddrs = %v, want %v", got, want)
	}
}

func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNormalizeDest(t *testing.T) {
	for _, c := range []struct {
		host string
		addr netip.Addr
		want Dest
		fqdn string
	}{
		{"", ip("::ffff:127.0.0.1"), Dest{Addr: ip("127.0.0.1")}, ""},
		{"", ip("::7f00:1"), Dest{Addr: ip("127.0.0.1")}, ""},
		{"", ip("0.0.0.0"), Dest{Addr: ip("0.0.0.0")}, ""},
		{"127.1", netip.Addr{}, Dest{Addr: ip("127.0.0.1")}, ""},
		{"0x7f.1", ip("10.0.0.1"), Dest{Addr: ip("127.0.0.1")}, ""}, // the name wins
		{"::ffff:169.254.169.254", netip.Addr{}, Dest{Addr: ip("169.254.169.254")}, ""},
		{"Wiki.Corp.Example.", netip.Addr{}, Dest{Host: "wiki.corp.example"}, "wiki.corp.example."},
		{"db", netip.Addr{}, Dest{Host: "db"}, "db."},
		{"LocalHost.", netip.Addr{}, Dest{Addr: ip("127.0.0.1")}, ""}, // RFC 6761 §6.3
		{"db.localhost", netip.Addr{}, Dest{Addr: ip("127.0.0.1")}, ""},
		{"localhost.example", netip.Addr{}, Dest{Host: "localhost.example"}, "localhost.example."},
		{"", netip.Addr{}, Dest{}, ""},
	} {
		got := NormalizeDest(c.host, c.addr)
		if got != c.want || got.FQDN() != c.fqdn || got.IsName() != (c.want.Host != "") {
			t.Errorf("NormalizeDest(%q, %s) = %+v (fqdn %q), want %+v (fqdn %q)", c.host, c.addr, got, got.FQDN(), c.want, c.fqdn)
		}
	}
	if s := NormalizeDest("127.1", netip.Addr{}).String(); s != "127.0.0.1" {
		t.Errorf("String() = %s", s)
	}
}

// gatewayRules: an allow rule without a destination limit (the rule
// that let 0.0.0.0 reach the gateway's own services), one that names a
// local service, and one over the gateway's own network.
func gatewayRules() []Rule {
	p := netip.MustParsePrefix
	return []Rule{
		{Name: "deny-db", Action: ActionDeny, Destinations: []Destination{{Prefix: p("10.5.0.0/16")}}},
		{Name: "local-proxy", Principals: []string{"*@EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 3128, Hi: 3128}},
			Destinations: []Destination{{Prefix: p("127.0.0.1/32")}, {Prefix: p("::1/128")}}},
		{Name: "office", Principals: []string{"*@EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 8443, Hi: 8443}},
			Destinations: []Destination{{Prefix: p("10.0.0.0/8")}, {Name: "*.corp.example.test"}}},
		{Name: "own-web", Principals: []string{"*@EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 443, Hi: 443}},
			Destinations: []Destination{{Prefix: p("10.1.1.1/32")}}},
		{Name: "open", Principals: []string{"*@EXAMPLE.TEST"}},
	}
}

// TestGatewayLocal: every form of a destination on the gateway itself is
// refused by the built-in deny unless the allowing rule names it; on the
// old engine each of these was allowed by "open" (or "office").
func TestGatewayLocal(t *testing.T) {
	e := newEngine(t, gatewayRules(), WithLocalAddrs(ips("10.1.1.1", "fe80::fc:ff:fe00:1%eth0")),
		WithGatewayLocal(GatewayLocal{Extra: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32")}}))
	const gl = GatewayLocalRule
	cases := []struct {
		name  string
		host  string
		addrs []netip.Addr
		port  uint16
		cmd   socks5.Command
		rule  string
		local string // Decision.GatewayLocal
	}{
		{"unspecified IPv4", "", ips("0.0.0.0"), 22, socks5.CmdConnect, gl, "0.0.0.0 is the unspecified address, which the kernel delivers to the gateway itself"},
		{"unspecified IPv6", "", ips("::"), 22, socks5.CmdConnect, gl, ":: is the unspecified address, which the kernel delivers to the gateway itself"},
		{"this network", "", ips("0.1.2.3"), 22, socks5.CmdConnect, gl, `0.1.2.3 is in "this network" 0.0.0.0/8, which means the gateway itself`},
		{"loopback", "", ips("127.0.0.1"), 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"loopback elsewhere in 127/8", "", ips("127.3.2.1"), 22, socks5.CmdConnect, gl, "127.3.2.1 is loopback, the gateway itself"},
		{"IPv6 loopback", "", ips("::1"), 22, socks5.CmdConnect, gl, "::1 is loopback, the gateway itself"},
		{"mapped loopback", "", ips("::ffff:127.0.0.1"), 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"compatible loopback", "", ips("::127.0.0.1"), 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"mapped unspecified", "", ips("::ffff:0.0.0.0"), 22, socks5.CmdConnect, gl, "0.0.0.0 is the unspecified address, which the kernel delivers to the gateway itself"},
		{"metadata", "", ips("169.254.169.254"), 80, socks5.CmdConnect, gl, "169.254.169.254 is link-local: the gateway's own network segment (and cloud metadata services)"},
		{"IPv6 link-local with a zone", "", ips("fe80::1%eth0"), 22, socks5.CmdConnect, gl, "fe80::1 is link-local: the gateway's own network segment"},
		{"interface address", "", ips("10.1.1.1"), 22, socks5.CmdConnect, gl, "10.1.1.1 is an address of the gateway itself"},
		{"configured address", "", ips("198.51.100.7"), 22, socks5.CmdConnect, gl, "198.51.100.7 is the gateway's own (gateway_local addresses)"},
		{"name that is 127.1", "127.1", nil, 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"name that is 0x7f.1", "0x7f.1", nil, 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"name that is 2130706433", "2130706433", nil, 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"name that is 0", "0", nil, 22, socks5.CmdConnect, gl, "0.0.0.0 is the unspecified address, which the kernel delivers to the gateway itself"},
		{"name resolving to loopback", "localhost", ips("127.0.0.1"), 22, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"allowed name rebinding to loopback", "wiki.corp.example.test", ips("127.0.0.1"), 8443, socks5.CmdConnect, gl, "127.0.0.1 is loopback, the gateway itself"},
		{"wide network holding the gateway", "", ips("10.1.1.1"), 8443, socks5.CmdConnect, gl, "10.1.1.1 is an address of the gateway itself"},
		{"udp datagram", "", ips("127.0.0.53"), 53, socks5.CmdUDPAssociate, gl, "127.0.0.53 is loopback, the gateway itself"},
		{"bind peer", "", ips("::"), 0, socks5.CmdBind, gl, ":: is the unspecified address, which the kernel delivers to the gateway itself"},

		{"named local service", "", ips("127.0.0.1"), 3128, socks5.CmdConnect, "local-proxy", "127.0.0.1 is loopback, the gateway itself"},
		{"named, by a name", "localhost", ips("127.0.0.1", "::1"), 3128, socks5.CmdConnect, "local-proxy", "127.0.0.1 is loopback, the gateway itself"},
		{"named, mapped", "", ips("::ffff:127.0.0.1"), 3128, socks5.CmdConnect, "local-proxy", "127.0.0.1 is loopback, the gateway itself"},
		// 0.0.0.0 is also 127.0.0.1 to the rules, but local-proxy does not
		// name 0.0.0.0: the allow needs both.
		{"unspecified is not the named service", "", ips("0.0.0.0"), 3128, socks5.CmdConnect, gl, "0.0.0.0 is the unspecified address, which the kernel delivers to the gateway itself"},
		{"own address named", "", ips("10.1.1.1"), 443, socks5.CmdConnect, "own-web", "10.1.1.1 is an address of the gateway itself"},
		{"other address of the office", "", ips("10.1.1.2"), 8443, socks5.CmdConnect, "office", ""},
		{"ordinary destination", "", ips("203.0.113.5"), 22, socks5.CmdConnect, "open", ""},
		{"deny rule keeps its name", "", ips("10.5.0.1"), 22, socks5.CmdConnect, "deny-db", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := req(alice, "10.9.9.9", c.host, c.addrs, c.port)
			r.Command = c.cmd
			d := e.Decide(r)
			if d.Rule != c.rule || d.GatewayLocal != c.local || d.Allow != (c.rule != gl && c.rule != "deny-db") {
				t.Fatalf("Decide(%s) = %+v\nwant rule %q, gateway-local %q", r, d, c.rule, c.local)
			}
			if c.rule == gl && !strings.HasPrefix(d.Reason, "gateway-local destination refused: "+c.local+"; rule ") {
				t.Errorf("reason %q", d.Reason)
			}
			if ed, _ := e.Explain(r); ed != d {
				t.Errorf("Explain %+v", ed)
			}
		})
	}
}

// TestGatewayLocalDecidedByRules: a deny rule and the default deny keep
// their names for a gateway-local destination; with the built-in off the
// rules alone decide, the unspecified address still matched as loopback.
func TestGatewayLocalDecidedByRules(t *testing.T) {
	rules := []Rule{
		{Name: "deny-loopback", Action: ActionDeny, Destinations: []Destination{{Prefix: netip.MustParsePrefix("127.0.0.0/8")}}, Ports: []PortRange{{Lo: 22, Hi: 22}}},
		{Name: "web", Principals: []string{"*@EXAMPLE.TEST"}, Ports: []PortRange{{Lo: 80, Hi: 80}}},
	}
	on := newEngine(t, rules)
	off := newEngine(t, rules, WithGatewayLocal(GatewayLocal{Off: true}))
	for _, c := range []struct {
		name      string
		e         *Engine
		addr      string
		port      uint16
		allow     bool
		rule, why string
	}{
		{"deny rule", on, "127.0.0.1", 22, false, "deny-loopback", `rule "deny-loopback" denies`},
		{"unspecified matched as loopback", on, "0.0.0.0", 22, false, "deny-loopback", `rule "deny-loopback" denies`},
		{"unspecified IPv6 is not IPv4 loopback", on, "::", 22, false, "", defaultDeny},
		{"default deny", on, "127.0.0.1", 23, false, "", defaultDeny},
		{"overridden allow", on, "127.0.0.1", 80, false, GatewayLocalRule, ""},
		{"off: unspecified matched as loopback", off, "0.0.0.0", 22, false, "deny-loopback", `rule "deny-loopback" denies`},
		{"off: the rules allow", off, "0.0.0.0", 80, true, "web", `rule "web" allows`},
		{"off: loopback allowed", off, "127.0.0.1", 80, true, "web", `rule "web" allows`},
	} {
		d := c.e.Decide(req(alice, "10.9.9.9", "", ips(c.addr), c.port))
		if d.Allow != c.allow || d.Rule != c.rule || (c.why != "" && d.Reason != c.why) || d.GatewayLocal == "" {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
	if g := off.GatewayLocal(); !g.Off {
		t.Errorf("GatewayLocal() = %+v", g)
	}
}

// TestReplaceLocalAddrs: a new interface address is gateway-local in the
// engine ReplaceLocalAddrs returns, and the old engine is unchanged.
func TestReplaceLocalAddrs(t *testing.T) {
	e := newEngine(t, gatewayRules())
	r := req(alice, "10.9.9.9", "", ips("192.0.2.2"), 22)
	if d := e.Decide(r); !d.Allow {
		t.Fatalf("before: %+v", d)
	}
	n := e.ReplaceLocalAddrs(ips("::ffff:192.0.2.2", "fd00::2"))
	if d := n.Decide(r); d.Allow || d.Rule != GatewayLocalRule {
		t.Errorf("after: %+v", d)
	}
	if got := n.LocalAddrs(); !equalAddrs(got, ips("192.0.2.2", "fd00::2")) {
		t.Errorf("LocalAddrs = %v", got)
	}
	if d := e.Decide(r); !d.Allow || len(e.LocalAddrs()) != 0 {
		t.Errorf("the old engine changed: %+v", d)
	}
}

func TestEngineOptionsRejected(t *testing.T) {
	for _, o := range []Option{
		WithGatewayLocal(GatewayLocal{Extra: []netip.Prefix{{}}}),
		WithRealms([]Realm{{Name: ""}}),
		WithRealms([]Realm{{Name: "EXAMPLE.TEST"}, {Name: "example.test"}}),
	} {
		if _, err := NewEngine(nil, o); err == nil || !strings.HasPrefix(err.Error(), ErrInvalidOption.Error()) {
			t.Errorf("NewEngine: %v", err)
		}
	}
}

// FuzzParseAddrLiteral: whatever a name is, reading it never panics, an
// address it yields is canonical, and whatever netip reads as an
// address ParseAddrLiteral reads as the same address.
func FuzzParseAddrLiteral(f *testing.F) {
	for _, s := range []string{"127.1", "0x7f.1", "2130706433", "::ffff:127.0.0.1", "::127.0.0.1", "0177.0.0.1", "1.2.3.", "fe80::1%eth0", "wiki.corp.example.test", "0x", "08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := ParseAddrLiteral(s)
		if ok && (!a.IsValid() || CanonicalAddr(a) != a) {
			t.Fatalf("%q: %s is not canonical", s, a)
		}
		if n, err := netip.ParseAddr(s); err == nil && (!ok || a != CanonicalAddr(n)) {
			t.Fatalf("%q: netip reads %s, ParseAddrLiteral %s, %t", s, n, a, ok)
		}
		d := NormalizeDest(s, netip.Addr{})
		if ok != d.Addr.IsValid() || (ok && (d.Addr != a || d.Host != "")) {
			t.Fatalf("%q: NormalizeDest %+v", s, d)
		}
	})
}
