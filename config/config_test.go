package config

import (
	"bytes"
	"flag"
	"fmt"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/diag")

// TestDiagnosticsGolden loads each testdata/diag/*.hcl and compares the
// rendered diagnostics with the .golden file next to it. The keytabs live
// in a temporary directory that is the working directory during the test,
// so their paths read "ok.keytab" in the output. A "# test: KRB5_KTNAME=…"
// line overrides the default $KRB5_KTNAME of FILE:ok.keytab.
func TestDiagnosticsGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/diag/*.hcl")
	if err != nil || len(inputs) < 15 {
		t.Fatalf("inputs: %v, %v", inputs, err)
	}
	type input struct {
		name, golden string
		src          []byte
	}
	var cases []input
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, input{name: in, golden: strings.TrimSuffix(in, ".hcl") + ".golden", src: src})
	}
	wd, _ := os.Getwd()

	keys := t.TempDir()
	writeKeytab(t, filepath.Join(keys, "ok.keytab"), 0o600, "rcmd/gw.example.com@EXAMPLE.TEST", "HTTP/gw.example.com@EXAMPLE.TEST")
	writeKeytab(t, filepath.Join(keys, "world.keytab"), 0o644, "rcmd/gw.example.com@EXAMPLE.TEST")
	if err := os.WriteFile(filepath.Join(keys, "garbage.keytab"), []byte("\x05\x02\x00\x00\x00\x40garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "krb5.conf"), []byte("[libdefaults]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "world.password"), []byte("not-a-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(keys)

	for _, c := range cases {
		t.Run(filepath.Base(c.name), func(t *testing.T) {
			vars := map[string]string{"KRB5_KTNAME": "FILE:ok.keytab"}
			for _, line := range strings.Split(string(c.src), "\n") {
				if kv, ok := strings.CutPrefix(line, "# test: "); ok {
					k, v, _ := strings.Cut(kv, "=")
					vars[k] = v
				}
			}
			cfg, files, diags := Loader{Getenv: env(vars), BaseDir: "."}.Parse(c.src, c.name)

			var got bytes.Buffer
			errs, warns := 0, 0
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs++
				} else {
					warns++
				}
				if d.Subject == nil {
					t.Errorf("diagnostic without a position: %s", d.Error())
				}
			}
			fmt.Fprintf(&got, "# %d errors, %d warnings, config loaded: %t\n\n", errs, warns, cfg != nil)
			if err := FormatDiagnostics(&got, files, diags); err != nil {
				t.Fatal(err)
			}
			if (cfg == nil) != diags.HasErrors() {
				t.Errorf("config %v with errors %v", cfg != nil, diags.HasErrors())
			}

			golden := filepath.Join(wd, c.golden)
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("diagnostics differ from %s (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", c.golden, got.Bytes(), want)
			}
		})
	}
}

// TestExampleConfig loads the shipped example with a keytab holding its
// principal: it must load without a single diagnostic.
func TestExampleConfig(t *testing.T) {
	kt := filepath.Join(t.TempDir(), "gssocks.keytab")
	writeKeytab(t, kt, 0o600, "rcmd/gw.example.com@EXAMPLE.TEST")
	cfg, files, diags := Loader{Getenv: env(map[string]string{"KRB5_KTNAME": "FILE:" + kt})}.Load("../config.hcl.example")
	if len(diags) > 0 {
		var b strings.Builder
		FormatDiagnostics(&b, files, diags)
		t.Fatalf("example config:\n%s", b.String())
	}
	if cfg.Kerberos.Keytab != kt {
		t.Errorf("keytab %q, want %q from $KRB5_KTNAME", cfg.Kerberos.Keytab, kt)
	}
	want := Timeouts{Negotiation: 10 * time.Second, Connect: 30 * time.Second, Idle: 5 * time.Minute, Bind: 2 * time.Minute, Shutdown: 30 * time.Second}
	if cfg.Timeouts != want {
		t.Errorf("timeouts %+v", cfg.Timeouts)
	}
	if cfg.Limits.MaxSessions != 4096 || cfg.Log != (Log{Level: "info", Format: "text"}) || cfg.Kerberos.ClockSkew != 5*time.Minute {
		t.Errorf("limits %+v log %+v kerberos %+v", cfg.Limits, cfg.Log, cfg.Kerberos)
	}
	if cfg.NoAuth.Contains(netip.MustParseAddr("10.9.1.1")) {
		t.Error("the example enables no_auth; it must stay off unless uncommented")
	}
	if len(cfg.Groups["admins"]) != 2 {
		t.Errorf("groups %v", cfg.Groups)
	}
	rules := cfg.Engine.Rules()
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"deny-db", "staff", "curl-clear", "admins-anywhere", "lab-web"}) {
		t.Errorf("rules %v", names)
	}

	staff := rules[1]
	if staff.Action != policy.ActionAllow || len(staff.SIDs) != 2 || len(staff.Destinations) != 3 ||
		!slices.Equal(staff.Ports, []policy.PortRange{{Lo: 80, Hi: 80}, {Lo: 443, Hi: 443}, {Lo: 8000, Hi: 8999}}) ||
		!slices.Equal(staff.Protection, []policy.Level{policy.LevelIntegrity, policy.LevelConfidentiality}) ||
		staff.IdleTimeout != 5*time.Minute {
		t.Errorf("staff %+v", staff)
	}
	if staff.Pos.File != "../config.hcl.example" || staff.Pos.Line == 0 || staff.Pos.Column != 1 {
		t.Errorf("staff position %v", staff.Pos)
	}
	if cfg.GatewayLocal.Off || len(cfg.GatewayLocal.Extra) != 0 {
		t.Errorf("gateway_local %+v", cfg.GatewayLocal)
	}
	if !slices.Equal(cfg.Realms, []policy.Realm{{Name: "MIT.EXAMPLE.TEST", NoPAC: true}}) {
		t.Errorf("realms %+v", cfg.Realms)
	}

	vpnUser := policy.Identity{Principal: "alice@EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-21-1004336348-1177238915-682003330-1104"}, GroupsKnown: true}
	decide := func(id policy.Identity, host string, addr string, port uint16) policy.Decision {
		return cfg.Engine.Decide(policy.Request{
			Identity: id,
			Source:   netip.MustParseAddr("10.1.1.1"),
			Command:  socks5.CmdConnect,
			Host:     host,
			Addrs:    []netip.Addr{netip.MustParseAddr(addr)},
			Port:     port,
			Level:    policy.LevelIntegrity,
			Method:   policy.MethodGSSAPI, // "staff" lists its methods
		})
	}
	if d := decide(vpnUser, "wiki.corp.example.test", "10.2.3.4", 443); !d.Allow || d.Rule != "staff" {
		t.Errorf("staff: %+v", d)
	}
	// Without its deny-loopback rule, the example still refuses a name
	// resolving to loopback, and 0.0.0.0, before "staff" can allow them.
	if d := decide(vpnUser, "wiki.corp.example.test", "127.0.0.1", 443); d.Allow || d.Rule != policy.GatewayLocalRule {
		t.Errorf("name resolving to loopback: %+v", d)
	}
	admin := policy.Identity{Principal: "root@EXAMPLE.TEST", GroupSIDs: []string{"S-1-5-32-544"}, GroupsKnown: true}
	if d := decide(admin, "", "203.0.113.5", 22); !d.Allow || d.Rule != "admins-anywhere" {
		t.Errorf("admins-anywhere: %+v", d)
	}
	for _, a := range []string{"0.0.0.0", "::", "127.0.0.1", "::ffff:127.0.0.1", "169.254.169.254"} {
		if d := decide(admin, "", a, 22); d.Allow || d.Rule != policy.GatewayLocalRule {
			t.Errorf("%s: %+v", a, d)
		}
	}
	// Without a PAC, the staff rule (which has groups) does not match.
	noPAC := policy.Identity{Principal: "alice@EXAMPLE.TEST"}
	if d := decide(noPAC, "wiki.corp.example.test", "10.2.3.4", 443); d.Allow {
		t.Errorf("staff without a PAC: %+v", d)
	}
}

func TestKeytabFromAttribute(t *testing.T) {
	dir := t.TempDir()
	writeKeytab(t, filepath.Join(dir, "gw.keytab"), 0o600, "rcmd/gw.example.com@EXAMPLE.TEST")
	src := []byte("listen = [\":1080\"]\nkerberos {\n  keytab = \"FILE:gw.keytab\"\n  principals = [\"rcmd/gw.example.com\"]\n}\nrule \"r\" {}\n")
	cfg, diags := Parse(src, filepath.Join(dir, "gssocks.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if want := filepath.Join(dir, "gw.keytab"); cfg.Kerberos.Keytab != want {
		t.Errorf("keytab %q, want %q (relative to the file)", cfg.Kerberos.Keytab, want)
	}
	// Load reads the same from disk.
	if err := os.WriteFile(filepath.Join(dir, "gssocks.hcl"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, diags := Load(filepath.Join(dir, "gssocks.hcl")); diags.HasErrors() || cfg.File != filepath.Join(dir, "gssocks.hcl") {
		t.Fatal(diags)
	}
	if _, diags := Load(filepath.Join(dir, "absent.hcl")); !diags.HasErrors() || diags[0].Summary != "Cannot read the configuration file" {
		t.Fatalf("absent file: %v", diags)
	}
}

// TestJSONSyntax checks that a .json file decodes with the same
// diagnostics machinery.
func TestJSONSyntax(t *testing.T) {
	src := `{"listen": ["127.0.0.1:1080"], "rule": {"staff": {"principals": ["*@EXAMPLE.TEST"], "ports": ["9000-8000"]}}}`
	_, files, diags := Loader{SkipKeytabCheck: true}.Parse([]byte(src), "gssocks.json")
	if len(diags) != 1 || diags[0].Summary != "Inverted port range" || diags[0].Subject.Start.Column != 95 {
		var b strings.Builder
		FormatDiagnostics(&b, files, diags)
		t.Fatalf("got:\n%s", b.String())
	}
}

// TestReloadSameName guards against hclparse's per-name cache: a second
// Parse under the same name must see the new text.
func TestReloadSameName(t *testing.T) {
	l := Loader{SkipKeytabCheck: true}
	a, _, _ := l.Parse([]byte(`listen = ["127.0.0.1:1080"]`), "gssocks.hcl")
	b, _, _ := l.Parse([]byte(`listen = ["127.0.0.1:1081"]`), "gssocks.hcl")
	if a.Listen[0] == b.Listen[0] {
		t.Fatal("second parse returned the first file")
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
rule "r" {}`)
	if cfg.Timeouts != (Timeouts{DefaultNegotiation, DefaultConnect, DefaultIdle, DefaultBind, DefaultShutdown}) ||
		cfg.Limits.MaxSessions != DefaultMaxSessions || cfg.Kerberos.ClockSkew != DefaultClockSkew ||
		cfg.NoAuth != nil || cfg.Kerberos.Keytab != "" || cfg.Log.Level != "info" || cfg.Log.Format != "text" {
		t.Errorf("%+v", cfg)
	}
	r := cfg.Engine.Rules()[0]
	if r.Action != policy.ActionAllow || r.Principals != nil || r.Sources != nil || r.Destinations != nil ||
		!slices.Equal(r.Protection, policy.DefaultProtection()) || r.NEC || r.AuthOnly {
		t.Errorf("%+v", r)
	}
	if cfg.NoAuth.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("no_auth is off by default")
	}
}

func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		given   string
		options []string
		want    string
	}{
		{"conect", []string{"connect", "bind", "udp"}, ` Did you mean "connect"?`},
		{"tcp", []string{"connect", "bind", "udp"}, ""},
		{"vpn-user", []string{"admins", "vpn-users"}, ` Did you mean "vpn-users"?`},
		{"integrty", []string{"clear", "integrity", "confidentiality"}, ` Did you mean "integrity"?`},
		{"x", nil, ""},
	} {
		if got := didYouMean(c.given, c.options); got != c.want {
			t.Errorf("didYouMean(%q) = %q, want %q", c.given, got, c.want)
		}
	}
}

func TestParseSID(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"S-1-5-32-544", "S-1-5-32-544", ""},
		{"s-1-5-21-1-2-3-1104", "S-1-5-21-1-2-3-1104", ""},
		{"S-1-0x123456789ABC-1", "S-1-0x123456789ABC-1", ""},
		{"S-1-5", "S-1-5", ""},
		{"S-1", "", "a SID has a revision and an identifier authority, like S-1-5-32-544"},
		{"S-2-5", "", "the revision must be 1"},
		{"S-1-5-4294967296", "", `the subauthority "4294967296" is not a 32-bit number`},
		{"S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16", "", "a SID has at most 15 subauthorities"},
	} {
		got, err := parseSID(c.in)
		if got != c.want || err != c.err {
			t.Errorf("parseSID(%q) = %q, %q; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the loader: it must not panic, must
// return a Config exactly when there are no errors, must give every
// diagnostic a position, must render them, and must only hand
// policy.NewEngine rules it accepts.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/diag/*.hcl")
	seeds = append(seeds, "../config.hcl.example")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`listen = ["127.0.0.1:1080"]` + "\n" + `rule "a" { ports = ["1-2-3"] }`))
	f.Add([]byte(`{"listen": ["127.0.0.1:1080"], "group": {"g": {"sids": ["S-1-5-32-544"]}}, "rule": {"staff": {"groups": ["g"], "ports": [443]}}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		name := "fuzz.hcl"
		if len(src) > 0 && src[0] == '{' {
			name = "fuzz.json" // HCL's JSON syntax
		}
		noAddrs := func() ([]netip.Addr, error) { return nil, nil }
		cfg, files, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil), LocalAddrs: noAddrs}.Parse(src, name)
		if (cfg == nil) != diags.HasErrors() {
			t.Fatalf("config %v, errors %v", cfg != nil, diags.HasErrors())
		}
		for _, d := range diags {
			if d.Subject == nil {
				t.Fatalf("diagnostic without position: %v", d)
			}
			if d.Summary == "Rules rejected by the policy engine" {
				t.Fatalf("the decoder let through a rule NewEngine refuses: %v", d)
			}
		}
		if err := FormatDiagnostics(&bytes.Buffer{}, files, diags); err != nil {
			t.Fatal(err)
		}
		if cfg != nil {
			if cfg.Engine == nil || len(cfg.Listen) == 0 {
				t.Fatalf("incomplete config %+v", cfg)
			}
			cfg.Engine.Decide(policy.Request{Source: netip.MustParseAddr("10.0.0.1"), Command: socks5.CmdConnect, Port: 443})
		}
	})
}
