package danteconf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse([]byte(src), "t.conf")
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return f
}

// TestParseAddresses: every address form of sockd.conf(5) and the
// port conditions, each with its line.
func TestParseAddresses(t *testing.T) {
	for _, c := range []struct {
		addr   string
		kind   AddrKind
		prefix string // for AddrPrefix and AddrMask
		name   string
		port   *PortMatch // Line not compared
		ranges [][2]int
	}{
		{addr: "0/0", kind: AddrAny},
		{addr: "0.0.0.0/0", kind: AddrPrefix, prefix: "0.0.0.0/0"},
		{addr: "10.0.0.0/8", kind: AddrPrefix, prefix: "10.0.0.0/8"},
		{addr: "10.1.2.3/8", kind: AddrPrefix, prefix: "10.0.0.0/8"}, // host bits masked
		{addr: "10.0.0.0 / 8", kind: AddrPrefix, prefix: "10.0.0.0/8"},
		{addr: "10.0.0.0 /8", kind: AddrPrefix, prefix: "10.0.0.0/8"},
		{addr: "10.0.0.0/255.255.0.0", kind: AddrPrefix, prefix: "10.0.0.0/16"},
		{addr: "10.0.0.0/255.0.255.0", kind: AddrMask, prefix: "10.0.0.0/32"},
		{addr: "10.0.0.0/0x18", kind: AddrPrefix, prefix: "10.0.0.0/24"},   // strtoll base 0
		{addr: "10.0.0.0/010", kind: AddrPrefix, prefix: "10.0.0.0/8"},     // octal, as strtoll reads it
		{addr: "192.0.2.1", kind: AddrPrefix, prefix: "192.0.2.1/32"},      // Dante wants a mask in rules; tolerated
		{addr: "2001:db8::/32", kind: AddrPrefix, prefix: "2001:db8::/32"}, // colons are not a key
		{addr: "fe80::/10", kind: AddrPrefix, prefix: "fe80::/10"},         // nor after hex digits
		{addr: "::/0", kind: AddrPrefix, prefix: "::/0"},
		{addr: "::1", kind: AddrPrefix, prefix: "::1/128"},
		{addr: "host.example.test", kind: AddrName, name: "host.example.test"},
		{addr: "Host.Example.TEST", kind: AddrName, name: "host.example.test"},
		{addr: "eth0", kind: AddrName, name: "eth0"},
		{addr: ".example.test", kind: AddrDomain, name: "example.test"},
		{addr: ".", kind: AddrDomain, name: ""},
		{addr: "0/0 port = 80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port=80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port: 80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port:80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port 80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port eq 80", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port = http", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: 80, Service: "http"}, ranges: [][2]int{{80, 80}}},
		{addr: "0/0 port = no-such-service", kind: AddrAny, port: &PortMatch{Op: PortEq, Port: -1, Service: "no-such-service"}},
		{addr: "0/0 port != 25", kind: AddrAny, port: &PortMatch{Op: PortNeq, Port: 25}, ranges: [][2]int{{0, 24}, {26, 65535}}},
		{addr: "0/0 port neq 0", kind: AddrAny, port: &PortMatch{Op: PortNeq, Port: 0}, ranges: [][2]int{{1, 65535}}},
		{addr: "0/0 port ne 65535", kind: AddrAny, port: &PortMatch{Op: PortNeq, Port: 65535}, ranges: [][2]int{{0, 65534}}},
		{addr: "0/0 port gt 1023", kind: AddrAny, port: &PortMatch{Op: PortGt, Port: 1023}, ranges: [][2]int{{1024, 65535}}},
		{addr: "0/0 port >1023", kind: AddrAny, port: &PortMatch{Op: PortGt, Port: 1023}, ranges: [][2]int{{1024, 65535}}},
		{addr: "0/0 port >= 1024", kind: AddrAny, port: &PortMatch{Op: PortGe, Port: 1024}, ranges: [][2]int{{1024, 65535}}},
		{addr: "0/0 port lt 1024", kind: AddrAny, port: &PortMatch{Op: PortLt, Port: 1024}, ranges: [][2]int{{0, 1023}}},
		{addr: "0/0 port <= 1023", kind: AddrAny, port: &PortMatch{Op: PortLe, Port: 1023}, ranges: [][2]int{{0, 1023}}},
		{addr: "0/0 port lt 0", kind: AddrAny, port: &PortMatch{Op: PortLt, Port: 0}},
		{addr: "0/0 port gt 65535", kind: AddrAny, port: &PortMatch{Op: PortGt, Port: 65535}},
		{addr: "0/0 port 1-65535", kind: AddrAny, port: &PortMatch{Op: PortRange, Port: 1, End: 65535}, ranges: [][2]int{{1, 65535}}},
		{addr: "0/0 port 1024 - 65535", kind: AddrAny, port: &PortMatch{Op: PortRange, Port: 1024, End: 65535}, ranges: [][2]int{{1024, 65535}}},
		{addr: "0/0 port 1024 -65535", kind: AddrAny, port: &PortMatch{Op: PortRange, Port: 1024, End: 65535}, ranges: [][2]int{{1024, 65535}}},
		{addr: "0/0 port range 8000-8999", kind: AddrAny, port: &PortMatch{Op: PortRange, Port: 8000, End: 8999}, ranges: [][2]int{{8000, 8999}}},
	} {
		f := mustParse(t, "socks pass {\n\tfrom: 0/0\n\tto: "+c.addr+"\n}\n")
		a := f.Rules[0].To
		if a.Line != 3 || a.Kind != c.kind || a.Name != c.name {
			t.Errorf("%q: line %d kind %v name %q; want line 3 kind %v name %q", c.addr, a.Line, a.Kind, a.Name, c.kind, c.name)
		}
		if c.prefix != "" && a.Prefix != netip.MustParsePrefix(c.prefix) {
			t.Errorf("%q: prefix %s, want %s", c.addr, a.Prefix, c.prefix)
		}
		switch {
		case c.port == nil && a.Port != nil:
			t.Errorf("%q: port %+v, want none", c.addr, *a.Port)
		case c.port != nil && a.Port == nil:
			t.Errorf("%q: no port, want %+v", c.addr, *c.port)
		case c.port != nil:
			got := *a.Port
			if got.Line != 3 {
				t.Errorf("%q: port on line %d", c.addr, got.Line)
			}
			got.Line = 0
			if got != *c.port {
				t.Errorf("%q: port %+v, want %+v", c.addr, got, *c.port)
			}
			if r := a.Port.Ranges(); !slices.Equal(r, c.ranges) {
				t.Errorf("%q: ranges %v, want %v", c.addr, r, c.ranges)
			}
		}
	}
}

// TestParseStructure: comments, continuations, one-line rules, the 1.2
// rule form, "key :" spellings, settings anywhere, and where each value
// was written.
func TestParseStructure(t *testing.T) {
	src := `# comment line
logoutput: stderr # trailing comment
internal: lo port = 1080
external : 127.0.0.1
socksmethod:gssapi none
timeout.io: 0x10

client pass {
	from: 10.0.0.0/8 port 1-65535 to: 0/0
	gssapi.keytab: FILE:/etc/sockd.keytab
	clientcompatibility: necgssapi
}
socks pass{from: 0/0 to: .example.test port = https}
pass {
	from: 0/0 to: 0/0
	command: bind \
	  connect
	user: alice@EXAMPLE.TEST bob@EXAMPLE.TEST
	redirect from: 192.0.2.1 to: 192.0.2.2 port = 8080
	libwrap: spawn echo: %a
}
route {
	from: 0/0 to: 0/0 via: 192.0.2.9 port = 1080
	proxyprotocol: socks_v5
}
client block { from: 192.0.2.0/24 to: 0/0
}
`
	f := mustParse(t, src)
	keys := func(ss []*Setting) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Key)
		}
		return out
	}
	if got, want := keys(f.Settings), []string{"logoutput", "internal", "external", "socksmethod", "timeout.io"}; !slices.Equal(got, want) {
		t.Errorf("settings %v, want %v", got, want)
	}
	if w := f.Settings[3].Words(); !slices.Equal(w, []string{"gssapi", "none"}) {
		t.Errorf("socksmethod %v", w)
	}
	if a := f.Settings[2].Addr; a == nil || a.Prefix != netip.MustParsePrefix("127.0.0.1/32") || a.Line != 4 {
		t.Errorf("external %+v", a)
	}
	if n, ok := seconds(f.Settings[4]); !ok || n != 16 {
		t.Errorf("timeout.io 0x10 = %d, %v", n, ok)
	}
	if len(f.Rules) != 5 {
		t.Fatalf("%d rules", len(f.Rules))
	}
	cr := f.Rules[0]
	if cr.Kind != ClientRule || cr.Verdict != Pass || cr.Line != 8 || cr.EndLine != 12 || cr.From.Port == nil || !cr.From.Port.Every() {
		t.Errorf("client rule %+v", cr)
	}
	if k := cr.Get("gssapi.keytab"); len(k) != 1 || k[0].Values[0].Text != "FILE:/etc/sockd.keytab" {
		t.Errorf("keytab value: %+v", k)
	}
	one := f.Rules[1]
	if one.Kind != SocksRule || one.Line != 13 || one.EndLine != 13 || one.To.Kind != AddrDomain || one.To.Port.Port != 443 {
		t.Errorf("one-line rule %+v to %+v", one, one.To)
	}
	legacy := f.Rules[2]
	if !legacy.Legacy || legacy.Kind != SocksRule || legacy.Name() != "socks pass" {
		t.Errorf("legacy rule %+v", legacy)
	}
	if got := keys(legacy.Settings); !slices.Equal(got, []string{"command", "user", "redirect from", "redirect to", "libwrap"}) {
		t.Errorf("legacy settings %v", got)
	}
	cmd := legacy.Get("command")[0]
	if cmd.Line != 16 || len(cmd.Values) != 2 || cmd.Values[1].Line != 17 || cmd.Values[1].Text != "connect" {
		t.Errorf("continued command: %+v", cmd)
	}
	if rt := legacy.Get("redirect to")[0]; rt.Addr == nil || rt.Addr.Port == nil || rt.Addr.Port.Port != 8080 {
		t.Errorf("redirect to: %+v", rt)
	}
	if lw := legacy.Get("libwrap")[0]; strings.Join(lw.Words(), " ") != "spawn echo: %a" {
		t.Errorf("libwrap %q", lw.Words())
	}
	if r := f.Rules[3]; r.Kind != RouteBlock || r.Verdict != NoVerdict || len(r.Get("via")) != 1 || r.Get("via")[0].Addr.Port.Port != 1080 {
		t.Errorf("route %+v", r)
	}
	if r := f.Rules[4]; r.Kind != ClientRule || r.Verdict != Block || r.Line != 26 || r.EndLine != 27 {
		t.Errorf("client block %+v", r)
	}
}

// TestParseErrors: each error names the file and line of the problem.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"client pass {\n from: 0/0 to: 0/0\n", "t.conf:1: client pass: no '}' closes the rule"},
		{"}\n", "t.conf:1: '}' without a block to close"},
		{"\n\n{\n", "t.conf:3: '{' without a rule before it"},
		{"client {\n}\n", `t.conf:1: "client" must be followed by pass or block`},
		{"socks pass\nfrom: 0/0\n", "t.conf:2: socks pass: expected '{'"},
		{"bogus words here\n", `t.conf:1: "bogus": expected a keyword followed by ':' or a rule`},
		{"socks pass {\n from: 0/0 to: 0/0\n connect\n}\n", `t.conf:3: "connect": expected a keyword followed by ':'`},
		{"socks pass {\n from: 0/0 to: 0/0\n socks pass {\n", `t.conf:3: "socks": a new rule starts before the '}' of the rule on line 1`},
		{"socks pass {\n from: 0/0 to: 0/0\n {\n", "t.conf:3: socks pass: '{' inside a rule"},
		{"socks pass {\n from: 0/0 to: 0/0\n from: 10.0.0.0/8\n}\n", "t.conf:3: socks pass: a second from: address (the first is on line 2)"},
		{"socks pass {\n from: 10.0.0.300/8 to: 0/0\n}\n", `t.conf:2: from: "10.0.0.300" is not an IP address`},
		{"socks pass {\n from: 10.0.0.0/33 to: 0/0\n}\n", "t.conf:2: from: \"10.0.0.0/33\": the netmask of an IPv4 address is a length from 0 to 32"},
		{"socks pass {\n from: 2001:db8::/129 to: 0/0\n}\n", "the netmask of an IPv6 address is a length from 0 to 128"},
		{"socks pass {\n from: 2001:db8::/ffff:: to: 0/0\n}\n", "a dotted netmask is for IPv4 addresses"},
		{"socks pass {\n from: 0/8 to: 0/0\n}\n", `t.conf:2: from: "0/8": the only netmask of 0 (any address) is 0`},
		{"socks pass {\n from: ::ffff:10.0.0.1/128 to: 0/0\n}\n", "is an IPv4-mapped IPv6 address; write the IPv4 address 10.0.0.1"},
		{"socks pass {\n from: bad!name to: 0/0\n}\n", `t.conf:2: from: "bad!name" is not an address, a host name or an interface name`},
		{"socks pass {\n from: 0/0 to: 0/0 port = 70000\n}\n", `t.conf:2: to: port: "70000": a port is a number from 0 to 65535`},
		{"socks pass {\n from: 0/0 to: 0/0 port 9-5\n}\n", "t.conf:2: to: port: range 9-5 ends before it starts"},
		{"socks pass {\n from: 0/0 to: 0/0 port\n}\n", "t.conf:2: to: port: needs a port number"},
		{"socks pass {\n from: 0/0 to: 0/0 port gt\n}\n", "t.conf:2: to: port: gt needs one port number or service name after it"},
		{"socks pass {\n from: 0/0 to: 0/0 port 80 90\n}\n", `t.conf:2: "90": expected a keyword followed by ':'`},
		{"socks pass {\n from:\n}\n", "t.conf:2: from: needs an address"},
		{"logoutput:\n", "t.conf:1: logoutput: has no value"},
		{"internal: 10.0.0.1 port = 1080 nonsense\n", `t.conf:1: "nonsense": expected a keyword followed by ':' or a rule`},
		{"logoutput: a\x01b\n", "t.conf:1: control character 0x01"},
		{"# ok\nlogoutput: \xff\n", "t.conf:2: not UTF-8 text"},
	} {
		_, err := Parse([]byte(c.src), "t.conf")
		if err == nil {
			t.Errorf("%q: no error, want %q", c.src, c.want)
			continue
		}
		if _, ok := err.(*Error); !ok {
			t.Errorf("%q: error %T, want *Error", c.src, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %s", c.src, err, c.want)
		}
	}
}

// TestParseBounds: a hostile file is refused or read in time and memory
// proportional to it; an error quotes at most a short excerpt.
func TestParseBounds(t *testing.T) {
	long := strings.Repeat("x", 10000)
	_, err := Parse([]byte("socks pass {\n from: "+long+"! to: 0/0\n}\n"), "t.conf")
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("long word: %v", err)
	}
	var b strings.Builder
	for range 2000 {
		b.WriteString("socks pass { from: 10.0.0.0/8 to: 0/0 port = 80 }\n")
	}
	f, err := Parse([]byte(b.String()), "t.conf")
	if err != nil || len(f.Rules) != 2000 {
		t.Fatalf("2000 rules: %v", err)
	}
}

// TestConvertBounds: client rules that carve networks into many pieces,
// and many rules, convert in bounded size, failing closed where
// the pieces would be too many.
func TestConvertBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("socksmethod: gssapi\n")
	for i := range 300 {
		fmt.Fprintf(&b, "client pass { from: 2001:db8::%x/128 to: 0/0\n}\n", i)
	}
	b.WriteString("client block { from: 0/0 to: 0/0\n}\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "socks pass { from: 2001:db8::/32 to: 192.0.2.%d/32 port = %d\n}\n", i%256, 1+i)
	}
	f, err := Parse([]byte(b.String()), "big.conf")
	if err != nil {
		t.Fatal(err)
	}
	// Bounded work is pinned by the output limits below, not by a clock.
	out, notes := Convert(f)
	if len(out) > 8<<20 {
		t.Errorf("output of %d bytes", len(out))
	}
	if !hasNote(notes, Review, 2+2*256, "client pass", "more than 256 client rules") {
		t.Errorf("no note on the client rules left out:\n%s", renderNotes(notes[:min(len(notes), 20)]))
	}
	if !slices.ContainsFunc(notes, func(n Note) bool { return strings.Contains(n.Text, "conversion stopped here") }) {
		t.Error("no note on the conversion stopping")
	}

	// Many plain rules: cut at maxOutRules.
	b.Reset()
	b.WriteString("socksmethod: gssapi\nclient pass { from: 0/0 to: 0/0\n}\n")
	for i := range maxRules - 1 {
		fmt.Fprintf(&b, "socks pass { from: 10.%d.%d.0/24 to: 0/0 port = %d\n}\n", i/256, i%256, 1+i)
	}
	if f, err = Parse([]byte(b.String()), "big.conf"); err != nil {
		t.Fatal(err)
	}
	out, notes = Convert(f)
	if n := strings.Count(string(out), "\nrule "); n != maxOutRules {
		t.Errorf("%d rules, want %d", n, maxOutRules)
	}
	if !hasNote(notes, Review, 4+2*maxOutRules, "", "conversion stopped here") {
		t.Errorf("no note on the conversion stopping")
	}
	if _, err := Parse([]byte(b.String()+"socks pass { from: 0/0 to: 0/0\n}\nsocks pass { from: 0/0 to: 0/0\n}\n"), "big.conf"); err == nil || !strings.Contains(err.Error(), "more than 4096 rules") {
		t.Errorf("%d rules: %v", maxRules+1, err)
	}
}
