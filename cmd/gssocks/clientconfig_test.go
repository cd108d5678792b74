package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/encap"
)

// resolveWith parses args as the client commands do and resolves them
// with env as the environment.
func resolveWith(t *testing.T, env map[string]string, args ...string) (clientSettings, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cf.resolve(func(k string) string { return env[k] })
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClientSettingsPrecedence pins flags over the environment over the
// client file, attribute by attribute, and where the file is looked for.
func TestClientSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	xdg := filepath.Join(dir, "xdg")
	writeFile(t, filepath.Join(xdg, "gssocks", "client.hcl"), `
gateway     = "file-gw:1080"
service     = "rcmd/file-gw"
level       = "integrity"
min_level   = "integrity"
krb5_conf   = "krb5.conf"
ccache      = "FILE:cc/krb5cc"
pac_domains = ["corp.example.com", ".intranet"]
`)
	env := map[string]string{"XDG_CONFIG_HOME": xdg}

	s, err := resolveWith(t, env)
	if err != nil {
		t.Fatal(err)
	}
	fileDir := filepath.Join(xdg, "gssocks")
	if s.Gateway != "file-gw:1080" || s.Service != "rcmd/file-gw" || s.Level != "integrity" || s.MinLevel != "integrity" ||
		s.Krb5Conf != filepath.Join(fileDir, "krb5.conf") || s.CCache != "FILE:"+filepath.Join(fileDir, "cc/krb5cc") ||
		strings.Join(s.PACDomains, ",") != "corp.example.com,.intranet" || s.File != filepath.Join(fileDir, "client.hcl") {
		t.Fatalf("from the file: %+v", s)
	}

	env[envGateway], env[envService], env[envLevel] = "env-gw:1080", "socks", "confidentiality"
	s, err = resolveWith(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if s.Gateway != "env-gw:1080" || s.Service != "socks" || s.Level != "confidentiality" || s.MinLevel != "integrity" {
		t.Fatalf("environment over the file: %+v", s)
	}

	s, err = resolveWith(t, env, "--gateway", "flag-gw:1080", "--level", "integrity", "--min-level", "clear", "--service", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Gateway != "flag-gw:1080" || s.Level != "integrity" || s.MinLevel != "clear" || s.Service != "" {
		t.Fatalf("flags over the environment: %+v", s)
	}

	// GSSOCKS_CONFIG names the file; --config overrides it; a file named
	// must exist.
	other := writeFile(t, filepath.Join(dir, "other.hcl"), `gateway = "other-gw:1080"`)
	delete(env, envGateway)
	env[envConfig] = other
	if s, err = resolveWith(t, env); err != nil || s.Gateway != "other-gw:1080" {
		t.Fatalf("GSSOCKS_CONFIG: %+v, %v", s, err)
	}
	missing := filepath.Join(dir, "missing.hcl")
	if _, err = resolveWith(t, env, "--config", missing); err == nil || !strings.Contains(err.Error(), "missing.hcl") {
		t.Fatalf("--config missing: %v", err)
	}

	// Without a file or a gateway: the error says how to give one.
	_, err = resolveWith(t, map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "empty")})
	if err == nil || !strings.Contains(err.Error(), "--gateway host:port") || !strings.Contains(err.Error(), envGateway) {
		t.Fatalf("no gateway: %v", err)
	}
}

// TestClientFileErrors: a mistake in the client file is reported with
// its place and a suggestion.
func TestClientFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ text, want string }{
		{"\ngatway = \"gw:1080\"\n", `An argument named "gatway" is not expected here. Did you mean "gateway"?`},
		{"\ngateway = [1]\n", "Unsuitable value: string required"},
		{"\ngateway = \"gw:1080\n", "Invalid multi-line string"},
	} {
		path := writeFile(t, filepath.Join(dir, "client.hcl"), c.text)
		_, err := loadClientFile(path, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "on "+path+" line 2") {
			t.Errorf("%q: %v, want %q on line 2", c.text, err, c.want)
		}
	}
}

// TestClientOptions: level names become the library's options; a bad
// one is named.
func TestClientOptions(t *testing.T) {
	for _, c := range []struct {
		level, min  string
		want        encap.Level
		wantMin     encap.Level
		ask, accept bool
		err         string
	}{
		{level: "", want: encap.LevelConfidentiality, wantMin: encap.LevelConfidentiality},
		{level: "integrity", want: encap.LevelIntegrity, wantMin: encap.LevelIntegrity},
		{level: "confidentiality", min: "integrity", want: encap.LevelConfidentiality, wantMin: encap.LevelIntegrity},
		{level: "confidentiality", min: "clear", want: encap.LevelConfidentiality, accept: true},
		{level: "clear", ask: true},
		{level: "secret", err: `level "secret": want confidentiality, integrity or clear`},
		{level: "integrity", min: "confidentiality", err: "min_level confidentiality is above level integrity"},
	} {
		s := clientSettings{clientFile: clientFile{Gateway: "gw:1080", Level: c.level, MinLevel: c.min}}
		o, err := s.options()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s/%s: %v, want %q", c.level, c.min, err, c.err)
			}
			continue
		}
		if err != nil || o.Level != c.want || o.MinLevel != c.wantMin || o.AskClear != c.ask || o.AcceptClear != c.accept {
			t.Errorf("%s/%s: %+v, %v", c.level, c.min, o, err)
		}
	}
}

func TestRelativeCCache(t *testing.T) {
	for in, want := range map[string]string{
		"FILE:cc":           "FILE:/d/cc",
		"FILE:/abs":         "FILE:/abs",
		"DIR:ccs":           "DIR:/d/ccs",
		"DIR::/d/ccs/tkt1":  "DIR::/d/ccs/tkt1",
		"cc":                "/d/cc",
		"KEYRING:persist:0": "KEYRING:persist:0",
		"":                  "",
	} {
		if got := relativeCCache(in, "/d"); got != want {
			t.Errorf("relativeCCache(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClientFile: any file content is decoded or refused with an error
// naming the file, never a panic.
func FuzzClientFile(f *testing.F) {
	f.Add([]byte("gateway = \"gw:1080\"\npac_domains = [\"a\"]\n"))
	f.Add([]byte("level = \"${x}\"\n"))
	f.Add([]byte("block {\n}\n"))
	f.Add([]byte("gateway = 1\nservice = true\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "client.hcl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadClientFile(path, func(string) string { return "" })
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error without the file's name: %v", err)
		}
	})
}
