package socks5

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStdlibOnly pins the package boundary: the codec is linked by
// clients that must not carry the gateway, so it imports the standard
// library alone.
func TestImportsStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if p == "github.com/gssocks/gssocks/socks5" || first == "vendor" || !strings.Contains(first, ".") {
			continue
		}
		t.Errorf("socks5 depends on %s", p)
	}
}
