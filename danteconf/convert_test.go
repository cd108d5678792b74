package danteconf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// req is a request for the converted policy: who asks, from where, what.
type req struct {
	who    string // principal; "" for a client using method none
	from   string
	cmd    socks5.Command
	host   string // destination name, or ""
	addr   string // destination address (the name's, for a name)
	port   uint16
	level  policy.Level
	nec    bool
	allow  bool
	rule   string // the deciding rule; "" for the default deny (no rule matches)
	reason string // a substring of the decision's reason, if given
}

func decide(t *testing.T, e *policy.Engine, r req) policy.Decision {
	t.Helper()
	id := policy.Identity{Principal: r.who}
	return e.Decide(policy.Request{
		Identity: id,
		Source:   netip.MustParseAddr(r.from),
		Command:  r.cmd,
		Host:     r.host,
		Addrs:    []netip.Addr{netip.MustParseAddr(r.addr)},
		Port:     r.port,
		Level:    r.level,
		NEC:      r.nec,
	})
}

const (
	alice   = "alice@EXAMPLE.TEST"
	carol   = "carol@EXAMPLE.TEST"
	mallory = "mallory@EXAMPLE.TEST"
	anon    = ""
	integ   = policy.LevelIntegrity
	conf    = policy.LevelConfidentiality
	clear   = policy.LevelClear
	connect = socks5.CmdConnect
	bind    = socks5.CmdBind
	udp     = socks5.CmdUDPAssociate
)

// TestConvertedPolicyDecides loads each example's output and asks its
// policy what Dante's rules decide for the same requests: the client rules
// folded in first-match order, the socks rules in order, methods, levels
// and NEC from the client rule the client matched.
func TestConvertedPolicyDecides(t *testing.T) {
	cases := map[string][]req{
		"gssapi-gateway": {
			{who: carol, from: "10.20.1.1", cmd: bind, addr: "192.0.2.1", port: 5000, level: integ, allow: true, rule: "socks-pass-48"},
			{who: alice, from: "10.20.1.1", cmd: bind, addr: "192.0.2.1", port: 5000, level: integ, allow: false, rule: ""},
			{who: carol, from: "10.20.1.1", cmd: connect, addr: "10.99.4.5", port: 5432, level: integ, allow: false, rule: "socks-block-41"},
			{who: alice, from: "172.16.130.1", cmd: connect, host: "www.example.test", addr: "192.0.2.80", port: 443, level: conf, allow: true, rule: "socks-pass-63"},
			// 172.16.192.0 is outside the client pass rule's /18: Dante's
			// catch-all client block refused it.
			{who: alice, from: "172.16.192.1", cmd: connect, addr: "192.0.2.80", port: 443, level: conf, allow: false},
			{who: alice, from: "10.20.1.1", cmd: connect, host: "app.intranet.example.test", addr: "10.8.0.1", port: 8080, level: integ, allow: true, rule: "socks-pass-67"},
			{who: alice, from: "10.20.1.1", cmd: connect, host: "intranet.example.test", addr: "10.8.0.1", port: 8999, level: integ, allow: true, rule: "socks-pass-67"},
			{who: alice, from: "10.20.1.1", cmd: connect, host: "app.intranet.example.test", addr: "10.8.0.1", port: 9000, level: integ, allow: false},
			// The client rule's gssapi.enctype leaves clear out.
			{who: alice, from: "10.20.1.1", cmd: connect, addr: "192.0.2.80", port: 80, level: clear, allow: false, rule: "socks-pass-58", reason: "protection clear not accepted"},
		},
		"block-then-pass": {
			{who: alice, from: "10.30.5.7", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: false, rule: "client-block-10"},
			{who: alice, from: "10.30.1.1", cmd: connect, addr: "10.30.2.2", port: 8080, level: integ, allow: false, rule: "socks-block-34"},
			{who: alice, from: "10.30.1.1", cmd: connect, addr: "192.0.2.1", port: 80, level: integ, allow: true, rule: "socks-pass-49"},
			{who: alice, from: "10.31.7.9", cmd: connect, host: "partner.example.test", addr: "192.0.2.44", port: 443, level: integ, allow: true, rule: "socks-pass-41"},
			{who: alice, from: "10.31.7.9", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: true, rule: "socks-pass-45"},
			// The rest of the partner range: blocked by the client block
			// although the later client pass 10.0.0.0/8 covers it.
			{who: alice, from: "10.31.8.1", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: false, rule: "client-block-22"},
			{who: alice, from: "10.31.0.1", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: false, rule: "client-block-22"},
			{who: alice, from: "10.9.9.9", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: true, rule: "socks-pass-45"},
			{who: mallory, from: "10.9.9.9", cmd: connect, addr: "192.0.2.1", port: 80, level: integ, allow: false, rule: "socks-block-37"},
			{who: mallory, from: "10.9.9.9", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: true, rule: "socks-pass-45"},
			{who: alice, from: "192.168.1.1", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: false, rule: "socks-block-56"},
			{who: alice, from: "2001:db8:30::5", cmd: connect, addr: "2001:db8::1", port: 25, level: integ, allow: false, rule: "socks-block-56"},
			{who: alice, from: "2001:db8:30::5", cmd: udp, addr: "2001:db8::1", port: 53, level: integ, allow: true, rule: "socks-pass-53"},
		},
		"lan-open": {
			{who: anon, from: "10.77.1.1", cmd: udp, addr: "192.0.2.53", port: 53, level: clear, allow: true, rule: "socks-pass-16-noauth"},
			{who: alice, from: "10.77.1.1", cmd: bind, addr: "192.0.2.21", port: 0, level: integ, allow: true, rule: "socks-pass-16"},
			{who: anon, from: "10.1.1.1", cmd: connect, addr: "192.0.2.1", port: 80, level: clear, allow: false},
			{who: alice, from: "10.1.1.1", cmd: connect, addr: "192.0.2.1", port: 80, level: conf, allow: true, rule: "socks-pass-20"},
			{who: alice, from: "10.1.1.1", cmd: udp, addr: "192.0.2.1", port: 53, level: conf, allow: false},
		},
		"bind-udp": {
			{who: alice, from: "10.40.1.1", cmd: connect, host: "ftp.example.test", addr: "192.0.2.21", port: 21, level: integ, allow: true, rule: "socks-pass-13"},
			{who: alice, from: "10.40.1.1", cmd: bind, host: "ftp.example.test", addr: "192.0.2.21", port: 0, level: integ, allow: true, rule: "socks-pass-17"},
			{who: alice, from: "10.40.1.1", cmd: udp, addr: "192.0.2.53", port: 53, level: integ, allow: true, rule: "socks-pass-26"},
			{who: alice, from: "10.40.1.1", cmd: connect, addr: "192.0.2.53", port: 53, level: integ, allow: false},
			{who: alice, from: "10.40.1.1", cmd: udp, addr: "10.40.255.1", port: 123, level: integ, allow: true, rule: "socks-pass-30"},
			{who: alice, from: "10.40.1.1", cmd: udp, addr: "10.40.255.2", port: 123, level: integ, allow: false},
			{who: alice, from: "10.40.1.1", cmd: connect, addr: "192.0.2.1", port: 22, level: integ, allow: false},
			{who: alice, from: "10.40.1.1", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: true, rule: "socks-pass-39"},
			{who: alice, from: "10.41.1.1", cmd: connect, addr: "192.0.2.1", port: 8080, level: integ, allow: false},
		},
		"necgssapi": {
			{who: alice, from: "10.50.9.1", cmd: connect, addr: "192.0.2.1", port: 80, level: clear, nec: true, allow: true, rule: "socks-pass-25-1"},
			{who: alice, from: "10.50.1.1", cmd: connect, addr: "192.0.2.1", port: 80, level: integ, allow: false, rule: "socks-pass-25-2"},
			{who: alice, from: "10.50.1.1", cmd: connect, addr: "192.0.2.1", port: 80, level: conf, allow: true, rule: "socks-pass-25-2"},
			{who: alice, from: "10.50.200.1", cmd: connect, addr: "192.0.2.1", port: 80, level: conf, nec: true, allow: false, rule: "socks-pass-25-2", reason: "NEC"},
		},
		"legacy-1.2": {
			{who: alice, from: "10.60.1.1", cmd: connect, addr: "127.0.0.1", port: 80, level: integ, allow: false, rule: "socks-block-14"},
			{who: alice, from: "10.60.1.1", cmd: bind, addr: "192.0.2.1", port: 0, level: integ, allow: true, rule: "socks-pass-16"},
			{who: alice, from: "10.60.1.1", cmd: udp, addr: "192.0.2.1", port: 53, level: integ, allow: false},
		},
	}
	for _, ex := range examples {
		reqs, ok := cases[ex.name]
		if !ok {
			continue
		}
		t.Run(ex.name, func(t *testing.T) {
			out, _ := convertFile(t, ex.name, Options{})
			e := loadOutput(t, out).Engine
			for _, r := range reqs {
				d := decide(t, e, r)
				if d.Allow != r.allow || d.Rule != r.rule || !strings.Contains(d.Reason, r.reason) {
					t.Errorf("%s from %s: %s %s %s:%d %s nec=%t: allow=%t rule %q (%s); want allow=%t rule %q %s",
						r.who, r.from, r.cmd, r.host, r.addr, r.port, r.level, r.nec, d.Allow, d.Rule, d.Reason, r.allow, r.rule, r.reason)
				}
			}
		})
	}
}

// convertString converts src; the output comes back with every run of
// blanks as one space, for comparisons that ignore alignment.
func convertString(t *testing.T, src string, opts Options) (string, []Note) {
	t.Helper()
	f := mustParse(t, src)
	out, notes := ConvertWith(f, opts)
	loadOutput(t, out)
	return squeeze(string(out)), notes
}

func squeeze(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}

func hasNote(notes []Note, kind NoteKind, line int, keyword, text string) bool {
	return slices.ContainsFunc(notes, func(n Note) bool {
		return n.Kind == kind && n.Line == line && n.Keyword == keyword && strings.Contains(n.Text, text)
	})
}

const head = "internal: 127.0.0.1 port = 1080\nexternal: 127.0.0.1\nsocksmethod: gssapi\nclient pass { from: 0/0 to: 0/0\n}\n"

// TestConvertMappings: the mapping of single keywords, each with the
// attribute it becomes and the comment naming its line.
func TestConvertMappings(t *testing.T) {
	for _, c := range []struct {
		name, src string
		opts      Options
		want      []string // substrings of the output
		absent    []string
	}{
		{name: "listen IPv6 and default port",
			src:  "internal: ::1\ninternal: 127.0.0.1 port = 1080\ninternal: 127.0.0.1 port = 1080\nsocksmethod: gssapi\n",
			want: []string{`listen = ["[::1]:1080", "127.0.0.1:1080"] # t.conf:1,2`}},
		{name: "listen on a host name gives the principal's host",
			src:  "internal: gw.example.test port = 1081\nsocksmethod: gssapi\nclient pass {\n from: 0/0 to: 0/0\n gssapi.servicename: socks\n}\n",
			want: []string{`listen = ["gw.example.test:1081"]`, `principals = ["socks/gw.example.test"] # t.conf:5`}},
		{name: "host from the option",
			src: head, opts: Options{ProxyHost: "proxy.example.test"},
			want: []string{`principals = ["rcmd/proxy.example.test"]`}, absent: []string{`# principals`}},
		{name: "service principal in host-based form",
			src:  head + "socks pass { from: 0/0 to: 0/0\n gssapi.servicename: HTTP@web.example.test\n}\n",
			want: []string{`principals = ["HTTP/web.example.test"] # t.conf:7`}},
		{name: "keytab without FILE:",
			src:  head + "socks pass { from: 0/0 to: 0/0\n gssapi.keytab: WRFILE:/etc/k.keytab\n}\n",
			want: []string{`keytab = "/etc/k.keytab" # t.conf:7`}},
		{name: "timeouts",
			src:  head + "timeout.negotiate: 45\ntimeout.connect: 5\ntimeout.io.tcp: 0\n",
			want: []string{`negotiation = "45s" # t.conf:6`, `connect     = "5s"  # t.conf:7`, `idle        = "0s"  # t.conf:8`}},
		{name: "rule idle timeout and ports",
			src:  head + "socks pass { from: 10.0.0.0/8 to: 192.0.2.0/24 port 1000-2000\n timeout.io: 90\n}\n",
			want: []string{`idle_timeout = "90s" # t.conf:7`, `ports        = ["1000-2000"]`, `destinations = ["192.0.2.0/24"]`, `sources      = ["10.0.0.0/8"]`}},
		{name: "commands from protocol and command",
			src:  head + "socks pass { from: 0/0 to: 0/0\n protocol: udp\n}\nsocks pass { from: 0/0 to: 0/0\n command: connect udpassociate\n protocol: tcp\n}\n",
			want: []string{`commands     = ["udp"]`, `commands     = ["connect"] # t.conf:10,11`}},
		{name: "enctype any and clear",
			src:  "socksmethod: gssapi\nclient pass { from: 0/0 to: 0/0\n gssapi.enctype: any\n}\nsocks pass { from: 0/0 to: 0/0\n}\nclient pass { from: 0/0 to: 0/0\n}\n",
			want: []string{`protection   = ["clear", "integrity", "confidentiality"] # t.conf:3`}},
		{name: "user names keep their realm",
			src:  head + "socks pass { from: 0/0 to: 0/0\n user: alice@EXAMPLE.TEST svc-web@CORP.EXAMPLE.TEST\n}\n",
			want: []string{`principals   = ["alice@EXAMPLE.TEST", "svc-web@CORP.EXAMPLE.TEST"] # t.conf:7`}},
		{name: "debug level",
			src:  head + "debug: 2\n",
			want: []string{"log {\n  level = \"debug\" # t.conf:6\n}"}},
		{name: "quotes and backslashes in a value",
			src:  head + "socks pass { from: 0/0 to: 0/0\n gssapi.keytab: /etc/a\"b\\c$d%e.keytab\n}\n",
			want: []string{`keytab = "/etc/a\"b\\c$d%e.keytab"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _ := convertString(t, c.src, c.opts)
			for _, w := range c.want {
				if w = squeeze(w); !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.absent {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestConvertFailsClosed: what gssocks cannot check leaves an allow rule
// out and widens a deny rule, each with a note naming the line.
func TestConvertFailsClosed(t *testing.T) {
	for _, c := range []struct {
		name    string
		src     string
		kind    NoteKind
		line    int
		keyword string
		note    string
		want    []string
		absent  []string
	}{
		{name: "allow with a Unix group is left out",
			src:  head + "socks pass { from: 0/0 to: 0/0\n group: staff\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "left out, so what it allowed is refused",
			absent: []string{`rule "socks-pass-6"`}},
		{name: "deny with a Unix group denies everyone it otherwise matches",
			src:  head + "socks block { from: 10.0.0.0/8 to: 0/0\n group: staff\n}\n",
			kind: Review, line: 6, keyword: "socks block", note: "so it denies more than in Dante",
			want: []string{"rule \"socks-block-6\" {\n  action  = \"deny\"         # t.conf:6\n  sources = [\"10.0.0.0/8\"]"}},
		{name: "allow from a host name is left out",
			src:  head + "socks pass { from: ws1.example.test to: 0/0\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "gssocks matches client addresses, not names"},
		{name: "deny from a host name denies every client",
			src:  head + "socks block { from: ws1.example.test to: 192.0.2.0/24\n}\n",
			kind: Review, line: 6, keyword: "socks block", note: "denies more",
			want: []string{"action       = \"deny\"           # t.conf:6\n  destinations = [\"192.0.2.0/24\"]"}},
		{name: "source port condition",
			src:  head + "socks pass { from: 0/0 port = 20 to: 0/0\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "gssocks does not match client ports"},
		{name: "a full source port range is no condition",
			src:  head + "socks pass { from: 10.0.0.0/8 port 1 - 65535 to: 0/0\n}\n",
			kind: Review, line: 6, keyword: "to", note: "except those on the gateway itself",
			want: []string{`rule "socks-pass-6"`}},
		{name: "redirect",
			src:  head + "socks pass { from: 0/0 to: 0/0\n redirect to: 192.0.2.1\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "gssocks does not redirect requests"},
		{name: "unknown service name",
			src:  head + "socks pass { from: 0/0 to: 0/0 port = gopher-plus\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "port gopher-plus on line 6 (not a service gssocks knows; write its number)"},
		{name: "user without a realm, allow",
			src:  head + "socks pass { from: 0/0 to: 0/0\n user: alice\n}\n",
			kind: Review, line: 7, keyword: "user", note: "so it matched no GSS-API client; left out",
			absent: []string{`rule "socks-pass-6"`}},
		{name: "user without a realm, deny",
			src:  head + "socks block { from: 0/0 to: 0/0\n user: alice\n}\n",
			kind: Review, line: 7, keyword: "user", note: "denied as alice@* in every realm",
			want: []string{`principals = ["alice@*"]`}},
		{name: "client pass with ident",
			src:  "socksmethod: gssapi\nclient pass { from: 10.0.0.0/8 to: 0/0\n clientmethod: rfc931\n}\nclient pass { from: 10.1.0.0/16 to: 0/0\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Review, line: 2, keyword: "client pass", note: "left out, so the clients it let in are refused",
			want: []string{`sources = ["10.1.0.0/16"] # t.conf:5`}},
		{name: "client block by name is not converted",
			src:  "socksmethod: gssapi\nclient block { from: .guests.example.test to: 0/0\n}\nclient pass { from: 0/0 to: 0/0\n}\n",
			kind: Review, line: 2, keyword: "client block", note: "NOT converted"},
		{name: "client rule to: an address not listened on never matches",
			src:  "internal: 127.0.0.1 port = 1080\nsocksmethod: gssapi\nclient block { from: 0/0 to: 192.0.2.1/32\n}\nclient pass { from: 0/0 to: 127.0.0.1/32\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Info, line: 3, keyword: "client block", note: "never matches",
			absent: []string{`client-block`, `sources`}},
		{name: "client rule to: a port not listened on never matches",
			src:  "internal: 127.0.0.1 port = 1080\nsocksmethod: gssapi\nclient pass { from: 10.0.0.0/8 to: 0/0 port = 1081\n}\nclient pass { from: 10.1.0.0/16 to: 0/0 port = 1080\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Info, line: 3, keyword: "client pass", note: "never matches",
			want: []string{`sources = ["10.1.0.0/16"]`}},
		{name: "client block carving more networks than can be listed",
			src:  "internal: 127.0.0.1 port = 1080\nsocksmethod: gssapi\n" + hostPasses(16) + "client block {\n from: 0/0 to: 0/0\n}\nclient pass { from: 0/0 to: 0/0\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Review, line: 35, keyword: "client block", note: "carve too many networks",
			want: []string{"rule \"client-block-35\" {\n action = \"deny\" # t.conf:35\n}"}},
		{name: "no client rules",
			src:  "socksmethod: gssapi\nsocks pass { from: 10.0.0.0/8 to: 0/0\n}\n",
			kind: Review, line: 0, keyword: "client pass", note: "Dante 1.4 then refuses every client",
			want: []string{`sources = ["10.0.0.0/8"]`}},
		{name: "only replies",
			src:  head + "socks pass { from: 0/0 to: 10.0.0.0/8\n command: bindreply udpreply\n}\n",
			kind: Info, line: 6, keyword: "socks pass", note: "it only concerns replies",
			absent: []string{`rule "socks-pass-6"`}},
		{name: "permessage",
			src:  "socksmethod: gssapi\nclient pass { from: 0/0 to: 0/0\n gssapi.enctype: permessage\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Unmapped, line: 3, keyword: "gssapi.enctype", note: "selective protection",
			absent: []string{"protection ="}},
		{name: "socks_v4 only",
			src:  head + "socks pass { from: 0/0 to: 0/0\n proxyprotocol: socks_v4\n}\n",
			kind: Info, line: 6, keyword: "socks pass", note: "excludes SOCKS 5"},
		{name: "method none only, in a deny rule",
			src:  "socksmethod: gssapi none\nclient pass { from: 0/0 to: 0/0\n}\nsocks block { from: 0/0 to: 0/0\n socksmethod: none\n}\n",
			kind: Review, line: 4, keyword: "socks block", note: "denies authenticated clients too"},
		{name: "unknown rule keyword",
			src:  head + "socks pass { from: 0/0 to: 0/0\n frobnicate: yes\n}\n",
			kind: Review, line: 6, keyword: "socks pass", note: "frobnicate on line 7 (not a keyword gssocks knows)"},
		{name: "deny of a domain also matched longer names",
			src:  head + "socks block { from: 0/0 to: .example.test\n}\n",
			kind: Review, line: 6, keyword: "to", note: `also matched names merely ending in the text in Dante ("otherexample.test")`,
			want: []string{`destinations = ["example.test", "*.example.test"]`}},
		{name: "no_auth from anywhere",
			src:  "socksmethod: none\nclient pass { from: 0/0 to: 0/0\n}\nsocks pass { from: 0/0 to: 0/0\n}\n",
			kind: Review, line: 1, keyword: "socksmethod", note: "converted as if it were",
			want: []string{`sources = ["0.0.0.0/0", "::/0"]`, `principals = ["*"]`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, notes := convertString(t, c.src, Options{})
			if !hasNote(notes, c.kind, c.line, c.keyword, c.note) {
				t.Errorf("no %s note at line %d for %q with %q; notes:\n%s", c.kind, c.line, c.keyword, c.note, renderNotes(notes))
			}
			for _, w := range c.want {
				if w = squeeze(w); !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.absent {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestConvertComments: every block and attribute of the output names the
// sockd.conf line it comes from (the header and the principals
// placeholder aside), and the header lists every note.
func TestConvertComments(t *testing.T) {
	for _, ex := range examples {
		out, notes := convertFile(t, ex.name, Options{ProxyHost: "gw.example.test"})
		lines := strings.Split(string(out), "\n")
		tag := "# " + ex.name + ".conf:"
		for i, l := range lines {
			l = strings.TrimSpace(l)
			switch {
			case strings.HasSuffix(l, "{") && !strings.HasPrefix(l, "#"):
				// A rule block's comment is the line above; the others'
				// are on their attributes.
				if strings.HasPrefix(l, "rule ") && !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
					t.Errorf("%s: %q has no comment above", ex.name, l)
				}
			case strings.Contains(l, " = ") && !strings.HasPrefix(l, "#") && !strings.Contains(l, tag) && !strings.HasSuffix(l, "["):
				if !strings.Contains(lines[i-1], tag) && !strings.Contains(l, `"*"`) && !strings.Contains(l, "--host") {
					t.Errorf("%s: %q names no line", ex.name, l)
				}
			}
		}
		header := strings.Join(lines[:slices.IndexFunc(lines, func(s string) bool { return s != "" && !strings.HasPrefix(s, "#") })], " ")
		header = strings.Join(strings.Fields(strings.ReplaceAll(header, "#", "")), " ")
		for _, n := range notes {
			if !strings.Contains(header, strings.Join(strings.Fields(n.Text), " ")) {
				t.Errorf("%s: the header lacks %s", ex.name, n)
			}
		}
	}
}

// TestHCLString: a value is taken literally by HCL, template sequences and
// all.
func TestHCLString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:        `"plain"`,
		`a"b\c`:        `"a\"b\\c"`,
		`${x} %{if y}`: `"$${x} %%{if y}"`,
		`$x %y $ % {}`: `"$x %y $ % {}"`,
		"tab\there":    `"tab\u0009here"`,
		"caf\u00e9 ☃":  "\"caf\u00e9 ☃\"",
	} {
		got := hclString(in)
		if got != want {
			t.Errorf("hclString(%q) = %s, want %s", in, got, want)
		}
		expr, diags := hclsyntax.ParseExpression([]byte(got), "x", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("%s: %s", got, diags.Error())
			continue
		}
		if v, diags := expr.Value(nil); diags.HasErrors() || v.AsString() != in {
			t.Errorf("%s reads back as %#v (%s), want %q", got, v, diags.Error(), in)
		}
	}
}

// hostPasses is n client pass rules of single IPv6 hosts far apart, two
// lines each.
func hostPasses(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "client pass { from: %x::1/128 to: 0/0\n}\n", 0x100*(i+1))
	}
	return b.String()
}
