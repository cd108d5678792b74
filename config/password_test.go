package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// TestPasswordAuthFromHCL pins the password_auth block: off by default,
// every attribute decoded with its default, and each bad value refused
// with a diagnostic at its own file:line:col.
func TestPasswordAuthFromHCL(t *testing.T) {
	const head = `listen = ["127.0.0.1:1080"]
rule "r" {}
`
	cfg := mustParse(t, head)
	if cfg.PasswordAuth.Enabled() || cfg.PasswordAuth.Sources != nil {
		t.Fatalf("on by default: %+v", cfg.PasswordAuth)
	}
	cfg = mustParse(t, head+`password_auth { sources = ["10.20.0.0/16", "::1"] }`)
	p := cfg.PasswordAuth
	want := PasswordAuth{
		Sources:    p.Sources,
		KDCTimeout: DefaultPasswordKDCTimeout, MaxFailuresPerSource: DefaultPasswordMaxFailuresPerSource,
		MaxFailuresPerPrincipal: DefaultPasswordMaxFailuresPerPrinc, FailureWindow: DefaultPasswordFailureWindow,
		MaxTracked: DefaultPasswordMaxTracked, MaxConcurrent: DefaultPasswordMaxConcurrent,
	}
	if fmt.Sprint(p) != fmt.Sprint(want) || !p.Enabled() || !p.Sources.Contains(netip.MustParseAddr("10.20.3.4")) ||
		!p.Sources.Contains(netip.MustParseAddr("::1")) || p.Sources.Contains(netip.MustParseAddr("10.21.0.1")) {
		t.Fatalf("defaults: %+v", p)
	}
	cfg = mustParse(t, head+`password_auth {
  sources = ["10.20.0.0/16"]
  service = "rcmd/gw.example.com@EXAMPLE.COM"
  realm = "CORP.EXAMPLE.COM"
  krb5_conf = "krb5.conf"
  kdc_timeout = "3s"
  max_failures_per_source = 7
  max_failures_per_principal = 3
  failure_window = "10m"
  max_tracked = 100
  max_concurrent = 2
  cache_ttl = "30s"
}`)
	p = cfg.PasswordAuth
	if p.Service != "rcmd/gw.example.com@EXAMPLE.COM" || p.Realm != "CORP.EXAMPLE.COM" || p.Krb5Conf != "krb5.conf" ||
		p.KDCTimeout != 3*time.Second || p.MaxFailuresPerSource != 7 || p.MaxFailuresPerPrincipal != 3 ||
		p.FailureWindow != 10*time.Minute || p.MaxTracked != 100 || p.MaxConcurrent != 2 || p.CacheTTL != 30*time.Second {
		t.Fatalf("decoded %+v", p)
	}

	for _, c := range []struct{ name, src, want, pos string }{
		{"no sources", "password_auth {\n}", "sources", "test.hcl:3,1"},
		{"empty sources", "password_auth { sources = [] }", "Empty list", "test.hcl:3,27"},
		{"bad network", `password_auth { sources = ["10.0.0.0/33"] }`, "Invalid CIDR", "test.hcl:3,28"},
		{"service without realm", `password_auth {
  sources = ["10.0.0.0/8"]
  service = "rcmd/gw"
}`, "without a realm", "test.hcl:5,13"},
		{"service pattern", `password_auth {
  sources = ["10.0.0.0/8"]
  service = "rcmd/*@R"
}`, "Invalid service principal", "test.hcl:5,13"},
		{"bad realm", `password_auth {
  sources = ["10.0.0.0/8"]
  realm = "a@b"
}`, "Invalid realm", "test.hcl:5,11"},
		{"zero timeout", `password_auth {
  sources = ["10.0.0.0/8"]
  kdc_timeout = "0s"
}`, "Zero duration", "test.hcl:5,17"},
		{"long cache", `password_auth {
  sources = ["10.0.0.0/8"]
  cache_ttl = "2h"
}`, "at most 1h0m0s", "test.hcl:5,15"},
		{"no concurrency", `password_auth {
  sources = ["10.0.0.0/8"]
  max_concurrent = 0
}`, "at least 1", "test.hcl:5,20"},
		{"negative limit", `password_auth {
  sources = ["10.0.0.0/8"]
  max_failures_per_source = -1
}`, "between 0", "test.hcl:5,29"},
		{"unknown attribute", `password_auth {
  sources = ["10.0.0.0/8"]
  max_failures = 3
}`, "Unsupported argument", "test.hcl:5,3"},
	} {
		_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+c.src), "test.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), c.want) || !strings.Contains(diags.Error(), c.pos) {
			t.Errorf("%s: diagnostics %v, want an error with %q at %s", c.name, diags, c.want, c.pos)
		}
	}
	_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+`password_auth { sources = ["10.0.0.0/8"] }`), "test.hcl")
	if diags.HasErrors() || !strings.Contains(diags.Error(), "No rule allows password sessions") {
		t.Errorf("no rule accepting clear: %v, want a warning", diags)
	}
	_, _, diags = Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+`password_auth { sources = ["10.0.0.0/8"] }
rule "clear" { protection = ["clear"] }`), "test.hcl")
	if strings.Contains(diags.Error(), "No rule allows password sessions") {
		t.Errorf("a rule accepting clear: %v", diags)
	}
	for _, src := range []string{
		`password_auth { sources = ["0.0.0.0/0"] }`,
		`password_auth {
  sources = ["10.0.0.0/8"]
  max_failures_per_principal = 0
}`,
	} {
		_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(head+src), "test.hcl")
		if diags.HasErrors() || len(diags) == 0 {
			t.Errorf("%s: %v, want a warning", src, diags)
		}
	}
}

// TestPasswordServiceInKeytab: check refuses a password_auth.service the
// acceptor would not open tickets for, at the attribute's file:line:col:
// with kerberos.principals unset, one the keytab lacks; with it set, one
// it excludes. A keytab principal, in any case, passes.
func TestPasswordServiceInKeytab(t *testing.T) {
	dir := t.TempDir()
	kt := filepath.Join(dir, "gw.keytab")
	writeKeytab(t, kt, 0o600, "rcmd/gw.example.com@EXAMPLE.TEST", "socks/gw.example.com@EXAMPLE.TEST")
	conf := func(service, principals string) string {
		return fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\nkerberos {\n  keytab = %q\n  %s\n}\nrule \"r\" { protection = [\"clear\"] }\npassword_auth {\n  sources = [\"10.0.0.0/8\"]\n  service = %q\n}\n", kt, principals, service)
	}
	for _, c := range []struct{ name, src, summary, pos string }{
		{"absent", conf("rcmd/absent.example.com@EXAMPLE.TEST", ""), "Password service not in keytab", "gssocks.hcl:9,13"},
		{"excluded", conf("socks/gw.example.com@EXAMPLE.TEST", `principals = ["rcmd/gw.example.com"]`), "Password service not accepted", "gssocks.hcl:9,13"},
		{"ok", conf("rcmd/gw.example.com@EXAMPLE.TEST", ""), "", ""},
		{"ok, other case", conf("RCMD/GW.example.com@EXAMPLE.TEST", `principals = ["rcmd/gw.example.com"]`), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, diags := Loader{Getenv: env(nil), LocalAddrs: func() ([]netip.Addr, error) { return nil, nil }}.Parse([]byte(c.src), filepath.Join(dir, "gssocks.hcl"))
			if c.summary == "" {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				return
			}
			found := false
			for _, d := range diags {
				found = found || d.Severity == hcl.DiagError && d.Summary == c.summary && d.Subject != nil && strings.Contains(d.Subject.String(), c.pos)
			}
			if !found {
				t.Fatalf("%v, want the error %q at %s", diags, c.summary, c.pos)
			}
		})
	}
}
