package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
)

// lineWith returns the first line of out holding every one of parts, or "".
func lineWith(out string, parts ...string) string {
	for line := range strings.SplitSeq(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return line
		}
	}
	return ""
}

// TestKeytabListingIsWhatIsAccepted pins issue 8 item 8 in the listing:
// the realm's keys for rcmd/localhost stored under another case
// ("RCMD/localhost") with kvno 0, as some tools write them, beside an RC4
// key and an unconfigured principal's key. `gssocks keytab` and `gssocks
// check` print each entry as the acceptor treats it (kvno 0 matches any
// kvno; the RC4 key opens tickets but keys no context; the other principal is not used) and how
// tickets naming another case find their key; a gateway on that keytab
// then serves a ticket for rcmd/localhost (kvno 2 or so, lower case) as
// RCMD/localhost, as the listing says.
func TestKeytabListingIsWhatIsAccepted(t *testing.T) {
	env := realm.Get(t)
	kt, err := gssapi.LoadKeytab(env.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	for i := range kt.Entries {
		e := &kt.Entries[i]
		if e.Principal.Components[0] == "rcmd" {
			e.Principal.Components[0] = "RCMD"
			e.KVNO8, e.KVNO = 0, 0
		}
	}
	now := time.Now()
	if err := kt.AddEntry("RCMD/localhost", "EXAMPLE.TEST", "not-a-secret", now, 3, gssapi.EnctypeRC4HMAC); err != nil {
		t.Fatal(err)
	}
	if err := kt.AddEntry("HTTP/localhost", "EXAMPLE.TEST", "not-a-secret", now, 2, gssapi.EnctypeAES256SHA1); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gssocks.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dest := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(dest)
	rules := fmt.Sprintf("rule \"echo\" {\n  principals   = [\"*@EXAMPLE.TEST\"]\n  destinations = [\"127.0.0.0/8\"]\n  ports        = [%q]\n}\n", port)
	conf := filepath.Join(dir, "gssocks.hcl")
	src := fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\nkerberos {\n  keytab     = %q\n  principals = [\"RCMD/localhost\"]\n}\n%s", path, rules)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, cmd := range []string{"keytab", "check"} {
		var out, errb bytes.Buffer
		if code := run([]string{cmd, "--config", conf}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", cmd, code, out.String(), errb.String())
		}
		o := out.String()
		t.Logf("%s:\n%s", cmd, o)
		for _, want := range [][]string{
			{"RCMD/localhost@EXAMPLE.TEST", "0 (any)", "aes256-cts-hmac-sha1-96 (18)", " yes"},
			{"RCMD/localhost@EXAMPLE.TEST", "arcfour-hmac (23)", "yes; opens tickets, but contexts need an AES session key"},
			{"HTTP/localhost@EXAMPLE.TEST", "aes256-cts-hmac-sha1-96 (18)", "no: not a configured principal"},
			{"an entry of kvno 0 matches any kvno"},
			{"same low 8 bits"},
			{"another case, an alias"},
			{"served as the principal whose key opens it"},
		} {
			if lineWith(o, want...) == "" {
				t.Errorf("%s: no line with %q", cmd, want)
			}
		}
	}

	g := testutil.StartGateway(t, string(src))
	if err := echoOnce(t, env, g.Addr, dest); err != nil {
		t.Fatalf("a ticket for rcmd/localhost on the listed keytab: %v", err)
	}
	r := g.WaitRecord(t, func(audit.Record) bool { return true })
	if r.Service != "RCMD/localhost@EXAMPLE.TEST" {
		t.Fatalf("served as %q, want the keytab's RCMD/localhost@EXAMPLE.TEST", r.Service)
	}
}

// TestKeytabRefusedListed: a configured principal whose only key is RC4
// makes `check` and `keytab` exit 1 with the reason (gssapi.ErrNoAESKey's
// text) and the listing that shows it.
func TestKeytabRefusedListed(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	mixed := filepath.Join(dir, "mixed.keytab")
	kt, err := gssapi.LoadKeytab(env.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	if err := kt.AddEntry("proxy/localhost", "EXAMPLE.TEST", "not-a-secret", time.Now(), 1, gssapi.EnctypeRC4HMAC); err != nil {
		t.Fatal(err)
	}
	b, _ := kt.Marshal()
	if err := os.WriteFile(mixed, b, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gssocks.hcl")
	src := fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\nkerberos {\n  keytab     = %q\n  principals = [\"rcmd/localhost\", \"proxy/localhost\"]\n}\nrule \"r\" {\n  destinations = [\"127.0.0.0/8\"]\n}\n", mixed)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"check", "keytab"} {
		var out, errb bytes.Buffer
		code := run([]string{cmd, "--config", conf}, &out, &errb)
		all := out.String() + errb.String()
		if code != 1 || !strings.Contains(errb.String(), `refused: `) ||
			!strings.Contains(errb.String(), `the keytab holds 1 keys for "proxy/localhost", none of them AES`) ||
			lineWith(all, "proxy/localhost@EXAMPLE.TEST", "arcfour-hmac (23)", "yes; opens tickets") == "" ||
			lineWith(all, "rcmd/localhost@EXAMPLE.TEST", "aes256-cts-hmac-sha1-96", "yes") == "" {
			t.Fatalf("%s: exit %d\n%s", cmd, code, all)
		}
		t.Logf("%s:\n%s", cmd, all)
	}
}

// TestServeDamagedKeytab runs the real binary on a keytab cut inside a
// key (gokrb5's decoder, unguarded, answers with an error quoting it):
// serve (text and JSON logs), check and keytab exit 1 with a reason that
// names the entry, and no output shows key bytes.
func TestServeDamagedKeytab(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	damaged := filepath.Join(dir, "damaged.keytab")
	keys := testutil.DamagedKeytab(t, env.Keytab, damaged)
	conf := filepath.Join(dir, "gssocks.hcl")
	for _, tc := range []struct{ name, cmd, extra string }{
		{"serve, text", "serve", ""},
		{"serve, json", "serve", "log {\n  format = \"json\"\n}\n"},
		{"check", "check", ""},
		{"keytab", "keytab", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opsConfig(t, conf, freeAddr(t), damaged, "80", tc.extra)
			cmd := exec.Command(bin, tc.cmd, "--config", conf)
			cmd.Env = env.Realm.Env("", "")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Invalid keytab") || !strings.Contains(string(out), "entry ") {
				t.Fatalf("no reason naming the entry:\n%s", out)
			}
			if testutil.KeyLeaks(string(out), keys) {
				t.Fatalf("output shows key bytes:\n%s", out)
			}
			if tc.extra != "" {
				testutil.JSONLines(t, string(out)) // every line one JSON object
			}
			t.Logf("%s", out)
		})
	}
}

// TestKeytabListingHTTPProxy: with http_listen, the HTTP/ keys the HTTP
// proxy accepts are listed as accepted by it (they were "not a configured
// principal", which told an operator setting up the proxy that its key
// would not be used), and check's OK line counts the HTTP listener.
func TestKeytabListingHTTPProxy(t *testing.T) {
	env := realm.Get(t)
	kt, err := gssapi.LoadKeytab(env.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	if err := kt.AddEntry("HTTP/localhost", "EXAMPLE.TEST", "not-a-secret", time.Now(), 2, gssapi.EnctypeAES256SHA1); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gssocks.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "gssocks.hcl")
	src := fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\nhttp_listen = [\"127.0.0.1:3128\"]\nkerberos {\n  keytab     = %q\n  principals = [\"rcmd/localhost\"]\n}\nrule \"web\" {\n  protection = [\"clear\"]\n}\n", path)
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"keytab", "check"} {
		var out, errb bytes.Buffer
		if code := run([]string{cmd, "--config", conf}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", cmd, code, out.String(), errb.String())
		}
		o := out.String()
		for _, want := range [][]string{
			{"rcmd/localhost@EXAMPLE.TEST", "aes256-cts-hmac-sha1-96 (18)", " yes"},
			{"HTTP/localhost@EXAMPLE.TEST", "aes256-cts-hmac-sha1-96 (18)", "yes; by the HTTP proxy only (http_listen)"},
		} {
			if lineWith(o, want...) == "" {
				t.Errorf("%s: no line with %q:\n%s", cmd, want, o)
			}
		}
		if l := lineWith(o, "HTTP/localhost@EXAMPLE.TEST", "not a configured principal"); l != "" {
			t.Errorf("%s: the HTTP proxy's key listed as unused: %s", cmd, l)
		}
		if cmd == "check" && !strings.Contains(o, "OK: 1 listener(s), 1 HTTP proxy listener(s),") {
			t.Errorf("check's OK line does not count the HTTP listener:\n%s", o)
		}
	}
}
