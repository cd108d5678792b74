package config

import (
	"slices"
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
