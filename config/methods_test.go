package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/policy"
)

// TestMethodsFromHCL: the methods matcher decodes into policy.Methods in
// file order without repeats, an absent one stays nil (every method),
// and no_auth.socks4 is off unless set.
func TestMethodsFromHCL(t *testing.T) {
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
no_auth {
  sources = ["10.9.0.0/16"]
  socks4  = true
}
rule "web" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["negotiate", "gssapi", "negotiate"]
}
rule "lab" {
  sources    = ["10.9.0.0/16"]
  methods    = ["socks4", "none"]
  protection = ["clear"]
}
rule "rest" {
  principals = ["*@EXAMPLE.TEST"]
}`)
	rules := cfg.Engine.Rules()
	if !slices.Equal(rules[0].Methods, []policy.Method{policy.MethodNegotiate, policy.MethodGSSAPI}) ||
		!slices.Equal(rules[1].Methods, []policy.Method{policy.MethodSOCKS4, policy.MethodNone}) || rules[2].Methods != nil {
		t.Fatalf("methods %v %v %v", rules[0].Methods, rules[1].Methods, rules[2].Methods)
	}
	if !cfg.NoAuthSOCKS4 {
		t.Fatal("no_auth.socks4 lost")
	}
	if cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
no_auth { sources = ["10.9.0.0/16"] }`); cfg.NoAuthSOCKS4 {
		t.Fatal("socks4 on by default")
	}
	if got := methodNames(); !slices.Equal(got, []string{"gssapi", "password", "negotiate", "none", "socks4"}) {
		t.Fatalf("methodNames %v", got)
	}
}

// TestRuleForClosedDoors: a rule whose methods name only front doors the
// configuration keeps closed can never match, and is warned about with
// the setting that would open each; a rule naming one open door is not.
func TestRuleForClosedDoors(t *testing.T) {
	src := `listen = ["127.0.0.1:1080"]
no_auth {
  sources = ["10.9.0.0/16"]
}
rule "passwords" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["password", "negotiate"]
  protection = ["clear"]
}
rule "old-lab" {
  sources    = ["10.9.0.0/16"]
  methods    = ["socks4"]
  protection = ["clear"]
}
rule "lab" {
  sources    = ["10.9.0.0/16"]
  methods    = ["socks4", "none"]
  protection = ["clear"]
}
rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["negotiate", "gssapi"]
}`
	_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(src), "test.hcl")
	var got []string
	for _, d := range diags {
		if d.Summary == "Rule for closed front doors" {
			got = append(got, d.Detail)
		}
	}
	want := []string{
		`Rule "passwords" matches only sessions of methods ["password", "negotiate"], and this configuration opens none of those front doors (password needs a password_auth block; negotiate needs http_listen): the rule can never match.`,
		`Rule "old-lab" matches only sessions of methods ["socks4"], and this configuration opens none of those front doors (socks4 needs no_auth sources and socks4 = true): the rule can never match.`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings:\n%q\nwant\n%q", got, want)
	}
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	// Opened, the same rules load without the warning.
	opened := strings.Replace(src, `sources = ["10.9.0.0/16"]
}`, `sources = ["10.9.0.0/16"]
  socks4  = true
}
password_auth {
  sources = ["10.20.0.0/16"]
}`, 1)
	_, _, diags = Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(opened), "test.hcl")
	for _, d := range diags {
		if d.Summary == "Rule for closed front doors" {
			t.Errorf("with the doors open: %s", d.Detail)
		}
	}
}
