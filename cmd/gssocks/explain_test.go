package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explainConfig writes a configuration with the given rules and a real
// keytab of the shared realm, and returns its path.
func explainConfig(t *testing.T, rules string) string {
	t.Helper()
	env := realm.Get(t)
	dir := t.TempDir()
	kt := filepath.Join(dir, "gssocks.keytab")
	if err := env.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(kt, 0o600)
	conf := filepath.Join(dir, "gssocks.hcl")
	writeConfig(t, conf, `"127.0.0.1:1080"`, kt, rules)
	return conf
}

// runExplain runs `gssocks explain` and returns its output; the exit
// status must be 0.
func runExplain(t *testing.T, conf string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"explain", "--config", conf}, args...), &out, &errb); code != 0 {
		t.Fatalf("explain %v: exit %d\n%s%s", args, code, out.String(), errb.String())
	}
	return out.String()
}

func wantLines(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestExplainGatewayLocal: `explain --dest 0.0.0.0:22` said ALLOW under
// an allow rule without a destination limit; it must say DENY with the
// gateway-local reason, for every spelling of the gateway itself, and
// show the built-in deny before the rules.
func TestExplainGatewayLocal(t *testing.T) {
	conf := explainConfig(t, `
rule "local-proxy" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.1/32"]
  ports        = ["3128"]
}
rule "open" {
  principals = ["*@EXAMPLE.TEST"]
}`)
	for _, c := range []struct{ dest, local string }{
		{"0.0.0.0:22", "0.0.0.0 is the unspecified address, which the kernel delivers to the gateway itself"},
		{"[::]:22", ":: is the unspecified address, which the kernel delivers to the gateway itself"},
		{"[::ffff:127.0.0.1]:22", "127.0.0.1 is loopback, the gateway itself"},
		{"[::127.0.0.1]:22", "127.0.0.1 is loopback, the gateway itself"},
		{"127.1:22", "127.0.0.1 is loopback, the gateway itself"},
		{"0x7f.1:22", "127.0.0.1 is loopback, the gateway itself"},
		{"169.254.169.254:80", "169.254.169.254 is link-local"},
		{"0.0.0.0:3128", "0.0.0.0 is the unspecified address"},
	} {
		out := runExplain(t, conf, "--principal", "alice@EXAMPLE.TEST", "--dest", c.dest)
		wantLines(t, out,
			"gateway-local (built-in)          MATCH: "+c.local,
			`rule "open"           line 14   MATCH, overridden by gateway-local`,
			"decision:   DENY (SOCKS reply 02): gateway-local destination refused: "+c.local)
	}
	out := runExplain(t, conf, "--principal", "alice@EXAMPLE.TEST", "--dest", "127.0.0.1:3128")
	wantLines(t, out, `rule "local-proxy"    line 9    MATCH`, `decision:   ALLOW: rule "local-proxy" allows`)
	out = runExplain(t, conf, "--principal", "alice@EXAMPLE.TEST", "--dest", "192.0.2.200:22")
	wantLines(t, out, "gateway-local (built-in)          no match: the destination is not the gateway itself", `decision:   ALLOW: rule "open" allows`)

	// Off: the rules alone decide, and explain says the deny is off.
	off := explainConfig(t, `
gateway_local { deny = false }
rule "open" {
  principals = ["*@EXAMPLE.TEST"]
}`)
	out = runExplain(t, off, "--principal", "alice@EXAMPLE.TEST", "--dest", "0.0.0.0:22")
	wantLines(t, out, "gateway-local (built-in)          off (gateway_local { deny = false }): 0.0.0.0 is the unspecified address", `decision:   ALLOW: rule "open" allows`)
}

// TestExplainGroupsUnknown: without a PAC, a deny rule with groups
// matches and explain says why; the old explain let the request fall
// through to the allow rule.
func TestExplainGroupsUnknown(t *testing.T) {
	conf := explainConfig(t, `
realm "MIT.EXAMPLE.TEST" {
  pac = "none"
}
group "contractors" { sids = ["S-1-5-21-1-2-3-1500"] }
rule "deny-contractors" {
  action = "deny"
  groups = ["contractors"]
  ports  = ["22"]
}
rule "vpn" {
  groups = ["S-1-5-21-1-2-3-1104"]
  ports  = ["3389"]
}
rule "open" {
  principals = ["*"]
}`)
	out := runExplain(t, conf, "--principal", "carl@EXAMPLE.TEST", "--dest", "192.0.2.200:22")
	wantLines(t, out,
		"groups unknown (no PAC): deny rules with groups match, allow rules with groups do not (fail closed)",
		`rule "deny-contractors" line 13   MATCH`,
		`decision:   DENY (SOCKS reply 02): rule "deny-contractors" denies (groups unknown (no PAC): deny rule matches (fail closed))`)
	// The same client with a PAC that lists no contractor group.
	out = runExplain(t, conf, "--principal", "carl@EXAMPLE.TEST", "--group", "S-1-5-21-1-2-3-513", "--dest", "192.0.2.200:22")
	wantLines(t, out, "groups from the PAC: 1 SID(s)", `decision:   ALLOW: rule "open" allows`)
	out = runExplain(t, conf, "--principal", "carl@EXAMPLE.TEST", "--pac", "--dest", "192.0.2.200:22")
	wantLines(t, out, "groups from the PAC: 0 SID(s)", `decision:   ALLOW: rule "open" allows`)
	// An allow rule with groups does not match unknown groups.
	out = runExplain(t, conf, "--principal", "carl@EXAMPLE.TEST", "--no-pac", "--dest", "192.0.2.200:3389")
	wantLines(t, out, "groups [S-1-5-21-1-2-3-1104]: groups unknown (no PAC): allow rule does not match", `decision:   ALLOW: rule "open" allows`)
	// A realm that issues no PACs: its principals are in no group.
	out = runExplain(t, conf, "--principal", "carl@MIT.EXAMPLE.TEST", "--dest", "192.0.2.200:22")
	wantLines(t, out, `no groups: realm MIT.EXAMPLE.TEST issues no PAC (pac = "none")`, `decision:   ALLOW: rule "open" allows`)

	var o, e bytes.Buffer
	if code := run([]string{"explain", "--config", conf, "--principal", "carl@EXAMPLE.TEST", "--no-pac", "--group", "S-1-5-21-1-2-3-513", "--dest", "192.0.2.200:22"}, &o, &e); code != 2 || !strings.Contains(e.String(), "--no-pac contradicts") {
		t.Errorf("--no-pac with --group: %d %s", code, e.String())
	}
}

// TestExplainCanonicalName: a ticket spelled ALICE, or in enterprise
// form, is alice's account when the PAC says so, and a rule denying
// alice denies it; the old explain matched the spelling and allowed.
func TestExplainCanonicalName(t *testing.T) {
	conf := explainConfig(t, `
realm "LAB.EXAMPLE.TEST" {
  case_insensitive_names = true
}
rule "deny-alice" {
  action     = "deny"
  principals = ["alice@EXAMPLE.TEST", "alice@LAB.EXAMPLE.TEST"]
}
rule "open" {
  principals = ["*"]
}`)
	out := runExplain(t, conf, "--principal", "ALICE@EXAMPLE.TEST", "--account", "alice", "--dest", "192.0.2.200:22")
	// deny-alice has no request matchers: it refuses the session at the
	// protection level already.
	wantLines(t, out, "identity:   alice@EXAMPLE.TEST (presented as ALICE@EXAMPLE.TEST); names compared ignoring case (verified PAC)",
		`refused before the request: policy: denied: rule "deny-alice" denies`)
	out = runExplain(t, conf, "--principal", "alice@example.test@EXAMPLE.TEST", "--account", "alice", "--dest", "192.0.2.200:22")
	wantLines(t, out, "identity:   alice@EXAMPLE.TEST (presented as alice@example.test@EXAMPLE.TEST)", `rule "deny-alice" denies`)
	out = runExplain(t, conf, "--principal", "Alice@lab.example.test", "--dest", "192.0.2.200:22")
	wantLines(t, out, "identity:   alice@LAB.EXAMPLE.TEST (presented as Alice@lab.example.test); names compared ignoring case (realm LAB.EXAMPLE.TEST: case_insensitive_names)",
		`rule "deny-alice" denies`)
	// Without a PAC, in a case-sensitive realm, ALICE is another principal.
	out = runExplain(t, conf, "--principal", "ALICE@EXAMPLE.TEST", "--no-pac", "--dest", "192.0.2.200:22")
	wantLines(t, out, "identity:   ALICE@EXAMPLE.TEST; names compared exactly", `decision:   ALLOW: rule "open" allows`)
	// An enterprise name without a PAC has no canonical account.
	out = runExplain(t, conf, "--principal", "alice@example.test@EXAMPLE.TEST", "--dest", "192.0.2.200:22")
	wantLines(t, out, "identity:   alice@example.test@EXAMPLE.TEST: refused: policy: no canonical client name", "decision:   DENY (the session ends after authentication)")
}
