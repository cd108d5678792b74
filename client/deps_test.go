package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins what a program that only dials through a gateway
// links: the SOCKS codec, the GSS-API mechanism and the RFC 1961 framing,
// not the gateway (server, policy, its configuration) nor its HCL and
// logging libraries, which client once pulled in by importing server for
// the codec.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/gssocks/gssocks/"
	allowed := []string{"client", "socks5", "encap", "gssapi"}
	forbidden := []string{"github.com/hashicorp/hcl", "github.com/hashicorp/go-hclog", "github.com/zclconf/go-cty", "github.com/fatih/color"}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list printed no dependencies")
	}
	for _, p := range deps {
		if rest, ok := strings.CutPrefix(p, mod); ok {
			top, _, _ := strings.Cut(rest, "/")
			ok := false
			for _, a := range allowed {
				ok = ok || top == a
			}
			if !ok {
				t.Errorf("client depends on %s", p)
			}
		}
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("client depends on %s", p)
			}
		}
	}
}
