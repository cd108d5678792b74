package main

import (
	"bytes"
	"strings"
	"testing"
)

const methodRules = `
no_auth {
  sources = ["10.9.0.0/16"]
  socks4  = true
}
rule "no-password-db" {
  action       = "deny"
  methods      = ["password"]
  destinations = ["10.5.0.0/16"]
}
rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["gssapi", "password", "negotiate"]
  protection = ["clear", "integrity", "confidentiality"]
}
rule "lab" {
  sources    = ["10.9.0.0/16"]
  methods    = ["socks4"]
  ports      = ["80"]
  protection = ["clear"]
}`

// TestExplainMethod: --method names the front door in the output, goes
// into the decision (a methods matcher says which method missed), takes
// a principal for gssapi, password and negotiate and none for none and
// socks4, and for those says whether the source may come in at all.
func TestExplainMethod(t *testing.T) {
	conf := explainConfig(t, methodRules)
	alice := []string{"--principal", "alice@EXAMPLE.TEST", "--dest", "10.5.1.1:5432"}

	out := runExplain(t, conf, alice...)
	wantLines(t, out, "method:     gssapi (SOCKS5 with GSS-API/Kerberos, RFC 1961)",
		"request:    alice@EXAMPLE.TEST from 127.0.0.1: connect [10.5.1.1] port 5432, confidentiality, method gssapi",
		`rule "no-password-db" line 13   no match: method gssapi not in [password]`,
		`decision:   ALLOW: rule "staff" allows`)

	out = runExplain(t, conf, append([]string{"--method", "password"}, alice...)...)
	wantLines(t, out, "method:     password (SOCKS5 username/password, RFC 1929",
		"protection: clear (password sessions negotiate no protection level)",
		`rule "no-password-db" line 13   MATCH`,
		`decision:   DENY (SOCKS reply 02): rule "no-password-db" denies`)

	out = runExplain(t, conf, append([]string{"--method", "negotiate"}, "--principal", "alice@EXAMPLE.TEST", "--dest", "10.6.1.1:443")...)
	wantLines(t, out, "method:     negotiate (HTTP proxy", `decision:   ALLOW: rule "staff" allows`)

	out = runExplain(t, conf, "--method", "socks4", "--source", "10.9.1.1", "--dest", "10.6.1.1:80")
	wantLines(t, out, "method:     socks4 (SOCKS4/4a",
		"identity:   none (socks4 sessions are not authenticated",
		"front door: source 10.9.1.1 is in no_auth sources",
		`rule "staff"          line 18   no match: method socks4 not in [gssapi password negotiate]; principals: unauthenticated session`,
		`decision:   ALLOW: rule "lab" allows`)

	out = runExplain(t, conf, "--method", "socks4", "--source", "10.9.1.1", "--dest", "10.6.1.1:22")
	wantLines(t, out, `decision:   DENY (SOCKS4 reply 0x5b): no rule matches (default deny)`)

	out = runExplain(t, conf, "--method", "socks4", "--source", "192.0.2.1", "--dest", "10.6.1.1:80")
	wantLines(t, out, "front door: refused: source 192.0.2.1 is not in no_auth sources",
		"decision:   DENY (SOCKS4 reply 0x5b before any rule): source 192.0.2.1 is not in no_auth sources")
	if strings.Contains(out, `rule "lab"`) {
		t.Errorf("rules shown for a refused front door:\n%s", out)
	}

	out = runExplain(t, conf, "--method", "none", "--source", "10.9.1.1", "--dest", "10.6.1.1:80")
	wantLines(t, out, "method:     none (SOCKS5 without authentication",
		`rule "lab"            line 23   no match: method none not in [socks4]`,
		"decision:   DENY (SOCKS reply 02): no rule matches (default deny)")

	// socks4 off: refused at the door.
	off := explainConfig(t, strings.Replace(methodRules, "socks4  = true", "socks4  = false", 1))
	out = runExplain(t, off, "--method", "socks4", "--source", "10.9.1.1", "--dest", "10.6.1.1:80")
	wantLines(t, out, "front door: refused: SOCKS4 is not enabled (no_auth { socks4 = true })")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "kerberos", "--principal", "alice@EXAMPLE.TEST", "--dest", "10.6.1.1:80"}, `--method "kerberos": want gssapi, password, negotiate, none or socks4`},
		{[]string{"--method", "socks4", "--principal", "alice@EXAMPLE.TEST", "--dest", "10.6.1.1:80"}, "--principal: --method socks4 carries no identity"},
		{[]string{"--method", "none", "--group", "S-1-5-21-1-2-3-4", "--dest", "10.6.1.1:80"}, "--group: --method none carries no identity"},
		{[]string{"--method", "password", "--level", "integrity", "--principal", "alice@EXAMPLE.TEST", "--dest", "10.6.1.1:80"}, "only --method gssapi negotiates a protection level"},
		{[]string{"--method", "socks4", "--command", "udp", "--dest", "10.6.1.1:80"}, "SOCKS4 has no UDP"},
		{[]string{"--method", "socks4"}, "--dest is required"},
		{[]string{"--method", "password", "--dest", "10.6.1.1:80"}, "--principal and --dest are required"},
	} {
		var o, e bytes.Buffer
		if code := run(append([]string{"explain", "--config", conf}, c.args...), &o, &e); code != 2 || !strings.Contains(e.String(), c.want) {
			t.Errorf("explain %v: exit %d, stderr %q; want 2 and %q", c.args, code, e.String(), c.want)
		}
	}
}
