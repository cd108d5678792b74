package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/hashicorp/hcl/v2"
)

// TestHTTPProxyConfig: http_listen absent or empty is off; addresses are
// checked as listen's; http_proxy principals must be HTTP/ ones.
func TestHTTPProxyConfig(t *testing.T) {
	base := "listen = [\"127.0.0.1:1080\"]\nrule \"r\" {}\n"
	if cfg := mustParse(t, base); cfg.HTTPListen != nil {
		t.Fatalf("absent: %v", cfg.HTTPListen)
	}
	if cfg := mustParse(t, base+"http_listen = []\n"); len(cfg.HTTPListen) != 0 {
		t.Fatalf("empty: %v", cfg.HTTPListen)
	}
	cfg := mustParse(t, base+"http_listen = [\"127.0.0.1:3128\", \"[::1]:3128\"]\nhttp_proxy {\n  principals = [\"HTTP/gw.example.com@EXAMPLE.TEST\"]\n}\n")
	if !slices.Equal(cfg.HTTPListen, []string{"127.0.0.1:3128", "[::1]:3128"}) || !slices.Equal(cfg.HTTPProxy.Principals, []string{"HTTP/gw.example.com@EXAMPLE.TEST"}) {
		t.Fatalf("http_listen %v, principals %v", cfg.HTTPListen, cfg.HTTPProxy.Principals)
	}
	for _, tc := range []struct{ src, summary, where string }{
		{"http_listen = [\"127.0.0.1\"]\n", "Invalid listen address", "test.hcl:3,16"},
		{"http_listen = [\"127.0.0.1:1080\"]\n", "Address used twice", "test.hcl:3,16"},
		{"http_listen = [\"127.0.0.1:3128\"]\nhttp_proxy {\n  principals = [\"rcmd/gw\"]\n}\n", "Not an HTTP service principal", "test.hcl:5,17"},
		{"http_listen = [\"127.0.0.1:3128\"]\nhttp_proxy {\n  principals = [\"HTTP/*\"]\n}\n", "Invalid service principal", "test.hcl:5,17"},
	} {
		_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(base+tc.src), "test.hcl")
		if got := findDiag(diags, tc.summary); got != tc.where {
			t.Errorf("%q: diagnostic %q at %q, want %s; all: %v", tc.src, tc.summary, got, tc.where, diags)
		}
	}
}

// findDiag is the file:line,col of the first error diagnostic with the
// summary, or "".
func findDiag(diags hcl.Diagnostics, summary string) string {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary == summary && d.Subject != nil {
			return fmt.Sprintf("%s:%d,%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
	}
	return ""
}

// TestHTTPProxyKeytab: an HTTP listener needs an HTTP/ key in the
// keytab (the configured principals', or any HTTP/ one), refused at the
// attribute that asked for it.
func TestHTTPProxyKeytab(t *testing.T) {
	dir := t.TempDir()
	socksOnly := filepath.Join(dir, "socks.keytab")
	writeKeytab(t, socksOnly, 0o600, "rcmd/gw.example.com@EXAMPLE.TEST")
	withHTTP := filepath.Join(dir, "http.keytab")
	writeKeytab(t, withHTTP, 0o600, "rcmd/gw.example.com@EXAMPLE.TEST", "HTTP/gw.example.com@EXAMPLE.TEST")
	conf := func(kt, extra string) string {
		return fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\nkerberos {\n  keytab = %q\n}\nrule \"r\" {}\nhttp_listen = [\"127.0.0.1:3128\"]\n%s", kt, extra)
	}
	for _, tc := range []struct {
		name, src, summary, where string
	}{
		{"no HTTP key", conf(socksOnly, ""), "No HTTP service key", "gssocks.hcl:6,15"},
		{"configured principal missing", conf(withHTTP, "http_proxy {\n  principals = [\"HTTP/other.example.com\"]\n}\n"), "No usable HTTP service key", "gssocks.hcl:8,16"},
		{"ok, any HTTP/ key", conf(withHTTP, ""), "", ""},
		{"ok, configured", conf(withHTTP, "http_proxy {\n  principals = [\"HTTP/gw.example.com\"]\n}\n"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, diags := Loader{Getenv: env(nil), LocalAddrs: func() ([]netip.Addr, error) { return nil, nil }}.Parse([]byte(tc.src), filepath.Join(dir, "gssocks.hcl"))
			if tc.summary == "" {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				have := []string{"HTTP/gw.example.com@EXAMPLE.TEST"}
				if len(cfg.HTTPProxy.Principals) > 0 {
					have = []string{"HTTP/gw.example.com"}
				}
				kt, err := gssapi.LoadKeytab(withHTTP)
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.HTTPPrincipals(gssapi.KeytabPrincipals(kt)); !slices.Equal(got, have) {
					t.Fatalf("HTTP principals %v, want %v", got, have)
				}
				return
			}
			got := findDiag(diags, tc.summary)
			if !strings.HasSuffix(got, tc.where) {
				t.Fatalf("diagnostic %q at %q, want %s; all: %v", tc.summary, got, tc.where, diags)
			}
		})
	}
}
