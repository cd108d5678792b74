package config

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// writeKeytab writes a keytab holding an aes256-cts-hmac-sha1-96 key for
// each "comp/comp@REALM" principal, with the given mode.
func writeKeytab(t testing.TB, path string, mode fs.FileMode, principals ...string) {
	t.Helper()
	kt := keytab.New()
	for _, p := range principals {
		name, realm, _ := strings.Cut(p, "@")
		if err := kt.AddEntry(name, realm, "not-a-secret", time.Unix(1700000000, 0), 2, 18); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// env is a Loader.Getenv from a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// mustParse parses src without looking at keytabs and fails on errors.
func mustParse(t testing.TB, src string) *Config {
	t.Helper()
	cfg, files, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		var b strings.Builder
		FormatDiagnostics(&b, files, diags)
		t.Fatalf("config does not load:\n%s", b.String())
	}
	return cfg
}
