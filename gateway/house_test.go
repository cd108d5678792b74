package gateway_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// houseModules are the README's short names for outside modules.
var houseModules = map[string][]string{
	"hcl":        {"github.com/hashicorp/hcl/", "github.com/zclconf/go-cty"},
	"hclog":      {"github.com/hashicorp/go-hclog"},
	"gokrb5":     {"github.com/jcmturner/gokrb5/"},
	"prometheus": {"github.com/prometheus/"},
}

const module = "github.com/gssocks/gssocks/"

// houseRules reads the README's House table: package → what it must not
// import.
func houseRules(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## House\n")
	if !ok {
		t.Fatal("README.md has no House section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	rules := map[string][]string{}
	for line := range strings.SplitSeq(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		var forbidden []string
		for f := range strings.SplitSeq(cells[3], ",") {
			if f = strings.Trim(strings.TrimSpace(f), "`"); f != "" && f != "—" {
				forbidden = append(forbidden, f)
			}
		}
		rules[pkg] = forbidden
	}
	return rules
}

// TestHouse checks the direct imports of every package of the module
// against the README's House table, and that the table has a row for
// every top-level directory with Go code.
func TestHouse(t *testing.T) {
	rules := houseRules(t)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		top, _, _ := strings.Cut(pkg, "/")
		if top == "cmd" {
			top = pkg
		}
		forbidden, ok := rules[top]
		if !ok {
			t.Errorf("package %s: no row for %q in README.md's House table", pkg, top)
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			for _, f := range forbidden {
				hit := imp == module+f || strings.HasPrefix(imp, module+f+"/") ||
					slices.ContainsFunc(houseModules[f], func(p string) bool { return strings.HasPrefix(imp, p) })
				if hit {
					t.Errorf("%s imports %s; the House table says %s must not import %s", pkg, imp, top, f)
				}
			}
		}
	}
	if checked < 15 {
		t.Fatalf("checked only %d packages", checked)
	}
}

// TestPolicyDependencies pins the decision engine as pure: `go list -deps
// ./policy` is the standard library, policy and socks5 (the one Command
// type), with no HCL, go-cty, hclog or gokrb5, which policy pulled in
// when it decoded the configuration and loaded keytabs itself.
func TestPolicyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../policy").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"policy") {
		t.Fatalf("go list printed no policy package:\n%s", out)
	}
	for _, p := range deps {
		if rest, ok := strings.CutPrefix(p, module); ok {
			if rest != "policy" && rest != "socks5" {
				t.Errorf("policy depends on %s", p)
			}
			continue
		}
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			t.Errorf("policy depends on %s, outside the standard library", p)
		}
	}
}
