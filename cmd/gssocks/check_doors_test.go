package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/internal/krbtest"
)

// doorsKeytab adds HTTP/localhost to the shared realm (once) and exports
// it with the SOCKS principals into a keytab of the test's own.
func doorsKeytab(t *testing.T, env *krbtest.Env) string {
	t.Helper()
	if err := env.Realm.AddService("HTTP/localhost"); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "doors.keytab")
	if err := env.Realm.ExportKeytab(kt, append([]string{"HTTP/localhost"}, krbtest.Services...)...); err != nil {
		t.Fatal(err)
	}
	os.Chmod(kt, 0o600)
	return kt
}

// TestCheckFrontDoors: check lists what the gateway will expose, one
// line per method: the GSS-API SOCKS door always, the others off with the
// setting that would open them, or on with their addresses and sources
// (the HTTP proxy's principals, password_auth's service).
func TestCheckFrontDoors(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	kt := doorsKeytab(t, env)
	check := func(extra string) string {
		t.Helper()
		conf := filepath.Join(dir, "gssocks.hcl")
		writeConfig(t, conf, `"127.0.0.1:1080"`, kt, extra+`
rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  protection = ["clear", "confidentiality"]
}`)
		var out, errb bytes.Buffer
		if code := run([]string{"check", "--config", conf}, &out, &errb); code != 0 {
			t.Fatalf("check: exit %d\n%s%s", code, out.String(), errb.String())
		}
		t.Logf("check:\n%s", out.String())
		return out.String()
	}
	doors := func(out string) map[string]string {
		m := map[string]string{}
		_, list, ok := strings.Cut(out, "front doors:\n")
		if !ok {
			t.Fatalf("no front doors in:\n%s", out)
		}
		for line := range strings.SplitSeq(list, "\n") {
			if !strings.HasPrefix(line, "  ") {
				break
			}
			f := strings.Fields(line)
			m[f[0]] = line
		}
		return m
	}

	d := doors(check(""))
	for method, want := range map[string]string{
		"gssapi":    "on, every source; listen 127.0.0.1:1080",
		"password":  "off (no password_auth block)",
		"negotiate": "off (no http_listen)",
		"none":      "off (no no_auth sources)",
		"socks4":    "off (no_auth { socks4 = true } not set)",
	} {
		if !strings.Contains(d[method], want) {
			t.Errorf("defaults: %s line %q, want %q", method, d[method], want)
		}
	}
	if len(d) != 5 {
		t.Errorf("front doors %v, want the five methods", d)
	}

	d = doors(check(fmt.Sprintf(`
http_listen = ["127.0.0.1:3128"]
password_auth {
  sources   = ["127.0.0.0/8"]
  krb5_conf = %q
}
no_auth {
  sources = ["10.9.0.0/16", "192.0.2.7/32"]
  socks4  = true
}
`, env.Realm.Krb5Conf)))
	for method, want := range map[string]string{
		"gssapi":    "on, every source; listen 127.0.0.1:1080",
		"password":  "ON, the password crosses the network in the clear, sources 127.0.0.0/8; listen 127.0.0.1:1080; checked with the KDC for ",
		"negotiate": "on, clear, every source; http_listen 127.0.0.1:3128; principals HTTP/localhost@EXAMPLE.TEST",
		"none":      "ON, no identity, sources 10.9.0.0/16, 192.0.2.7/32; listen 127.0.0.1:1080",
		"socks4":    "ON, no identity, sources 10.9.0.0/16, 192.0.2.7/32; listen 127.0.0.1:1080",
	} {
		if !strings.Contains(strings.Join(strings.Fields(d[method]), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("all on: %s line %q, want %q", method, d[method], want)
		}
	}
	// The keytab's first accepted principal, HTTP/ here: check shows
	// which, so that an operator sees it (password_auth.service sets it).
	if !strings.Contains(d["password"], "for HTTP/localhost@EXAMPLE.TEST") {
		t.Errorf("password line %q lacks the service the password is checked for", d["password"])
	}
	if !strings.Contains(d["negotiate"], "principals HTTP/localhost@EXAMPLE.TEST") {
		t.Errorf("negotiate line %q lacks the HTTP principal", d["negotiate"])
	}
}
