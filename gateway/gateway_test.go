package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// conf is a configuration on keytab kt with extra blocks; the one rule
// allows the echo server's port on loopback.
func conf(kt, echoPort, extra string) string {
	return fmt.Sprintf(`
kerberos {
  keytab = %q
}
rule "echo" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
}
%s`, kt, echoPort, extra)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// load loads a configuration file as serve does (with l); errors fail
// the test.
func load(t *testing.T, path string, l config.Loader) *config.Config {
	t.Helper()
	cfg, _, diags := l.Load(path)
	if diags.HasErrors() {
		t.Fatalf("configuration: %s", diags.Error())
	}
	return cfg
}

// echo is an echo server; it returns its address and port.
func echo(t *testing.T) (string, string) {
	addr := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(addr)
	return addr, port
}

// session runs one CONNECT through the gateway as alice and echoes a
// message; err is the dial's (a *client.ReplyError when refused).
func session(t *testing.T, env *krbtest.Env, proxy, dest string) error {
	t.Helper()
	d := client.Dialer{Proxy: proxy, Config: client.Config{
		Level: encap.LevelConfidentiality,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", dest)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	return nil
}

func denied(err error) bool {
	var re *client.ReplyError
	return errors.As(err, &re) && re.Reply == socks5.ReplyNotAllowed
}

// TestProvisionRefusals pins that check (Provision) refuses what serve
// (New) would: a keytab with only RC4 keys, a configured principal
// without an AES key, a keytab gone since the file was loaded, an audit
// path that cannot be opened for appending (under a regular file: this
// fails for root too), and with Bind a listen address in use. Provision
// creates nothing: a valid audit path is not created.
func TestProvisionRefusals(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	good := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	rc4 := filepath.Join(dir, "rc4.keytab")
	testutil.RC4Keytab(t, rc4, "rcmd/localhost@EXAMPLE.TEST")
	mixed := filepath.Join(dir, "mixed.keytab")
	testutil.RC4Keytab(t, mixed, "socks/gw.example.test@EXAMPLE.TEST", good)
	regular := filepath.Join(dir, "regular")
	writeFile(t, regular, "x")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}

	cases := []struct {
		name      string
		src       string
		skipCheck bool // load without the configuration's keytab check
		bind      bool
		// serveRefuses: New refuses what Provision without Bind accepts
		// (a port in use: a running gateway holds its own).
		serveRefuses error
		want         []error
		text         string
	}{
		{name: "rc4-only keytab", src: fmt.Sprintf("kerberos {\n keytab = %q\n}\n", rc4),
			want: []error{gateway.ErrKeytab, gssapi.ErrNoAESKey}, text: "none of them AES"},
		{name: "principal without AES key", src: fmt.Sprintf("kerberos {\n keytab = %q\n principals = [\"rcmd/localhost\", \"socks/gw.example.test\"]\n}\n", mixed),
			want: []error{gateway.ErrKeytab, gssapi.ErrNoAESKey}, text: `holds 1 keys for "socks/gw.example.test", none of them AES`},
		{name: "keytab removed", src: fmt.Sprintf("kerberos {\n keytab = %q\n}\n", filepath.Join(dir, "gone.keytab")),
			skipCheck: true, want: []error{gateway.ErrKeytab, os.ErrNotExist}},
		{name: "audit under a regular file", src: fmt.Sprintf("kerberos {\n keytab = %q\n}\nlog {\n audit = %q\n}\n", good, filepath.Join(regular, "audit.log")),
			want: []error{gateway.ErrAudit}, text: "not a directory"},
		{name: "audit is a directory", src: fmt.Sprintf("kerberos {\n keytab = %q\n}\nlog {\n audit = %q\n}\n", good, dir),
			want: []error{gateway.ErrAudit}},
		{name: "listen in use", src: fmt.Sprintf("listen = [%q, %q]\nkerberos {\n keytab = %q\n}\n", free(), busy.Addr().String(), good),
			bind: true, want: []error{gateway.ErrListen}, text: "address already in use"},
		{name: "listen in use, not bound", src: fmt.Sprintf("listen = [%q]\nkerberos {\n keytab = %q\n}\n", busy.Addr().String(), good),
			serveRefuses: gateway.ErrListen},
		{name: "all fine, audit not created", src: fmt.Sprintf("kerberos {\n keytab = %q\n}\nlog {\n audit = %q\n}\n", good, filepath.Join(dir, "new-audit.log")), bind: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("c%d.hcl", i))
			src := tc.src
			if !strings.Contains(src, "listen") {
				src = fmt.Sprintf("listen = [%q]\n", free()) + src
			}
			writeFile(t, path, src+"\nrule \"r\" {\n destinations = [\"127.0.0.0/8\"]\n}\n")
			cfg := load(t, path, config.Loader{SkipKeytabCheck: tc.skipCheck})
			rt, err := gateway.Provision(cfg, gateway.Options{Bind: tc.bind})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if rt.Settings.Acceptor == nil || rt.Settings.Policy != cfg.Engine || len(rt.Keytab.Entries) == 0 {
					t.Fatalf("runtime incomplete: %+v", rt)
				}
				if _, err := os.Stat(filepath.Join(dir, "new-audit.log")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("Provision created the audit file: %v", err)
				}
				// serve (New) accepts it as well, and does create the
				// audit file.
				g, err := gateway.New(cfg, gateway.Options{Stderr: io.Discard})
				if tc.serveRefuses != nil {
					if !errors.Is(err, tc.serveRefuses) {
						t.Fatalf("New: %v, want %v", err, tc.serveRefuses)
					}
					return
				}
				if err != nil {
					t.Fatalf("New refused what Provision accepted: %v", err)
				}
				g.Shutdown(context.Background())
				if _, err := os.Stat(cfg.Log.Audit); cfg.Log.Audit != "" && err != nil {
					t.Fatalf("New did not create the audit file: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Provision accepted it")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not wrap %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			if strings.Contains(err.Error(), "\x05\x02") {
				t.Errorf("error quotes keytab bytes: %q", err)
			}
			// serve refuses it too, with the same reasons.
			if _, nerr := gateway.New(cfg, gateway.Options{Stderr: io.Discard}); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("New: %v\nProvision: %v", nerr, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestAuditWhateverTheLevel pins that log { level = "warn" } no longer
// silences the audit trail: an allowed and a denied session both write a
// record (here as JSON lines on stderr), while info lines of the
// operational log are gone.
func TestAuditWhateverTheLevel(t *testing.T) {
	env := realm.Get(t)
	dest, port := echo(t)
	other, _ := echo(t)
	g := testutil.StartGateway(t, conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), port, "log {\n level = \"warn\"\n format = \"json\"\n}\n"))
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	if err := session(t, env, g.Addr, other); !denied(err) {
		t.Fatalf("want a denial, got %v", err)
	}
	testutil.WaitFor(t, "two records", func() bool { return len(g.Records()) == 2 })
	var rules []string
	for _, m := range testutil.JSONLines(t, g.Log.String()) {
		switch {
		case m["@message"] == "session":
			rules = append(rules, fmt.Sprint(m["rule"]))
			if m["principal"] != "alice@EXAMPLE.TEST" || m["@level"] != "info" {
				t.Errorf("record %v", m)
			}
		case m["@level"] == "info" || m["@level"] == "debug":
			t.Errorf("operational %s line at level warn: %v", m["@level"], m)
		}
	}
	slices.Sort(rules)
	if strings.Join(rules, ",") != "(default deny),echo" {
		t.Fatalf("records with rules %q, want echo and (default deny)", rules)
	}
}

// TestHangupReloadsLogBlock pins the log block on reload: level, format
// and audit path apply to lines written after Hangup, sessions' included,
// and the new file's warnings are already in its format; diagnostics of a
// later failed reload are JSON objects with their position.
func TestHangupReloadsLogBlock(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	dest, port := echo(t)
	g := testutil.StartGateway(t, conf(kt, port, "log {\n level = \"warn\"\n}\n"))
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a record", func() bool { return len(g.Records()) == 1 })
	before := len(g.Log.String())
	if strings.Contains(g.Log.String(), "[DEBUG]") || strings.Contains(g.Log.String(), "[INFO]  gssocks: listening") {
		t.Fatalf("level warn wrote info or debug lines:\n%s", g.Log.String())
	}

	auditPath := filepath.Join(t.TempDir(), "audit.log")
	os.Chmod(kt, 0o644) // the new file's warning comes in its format
	writeFile(t, g.Path, fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\n%s", conf(kt, port,
		fmt.Sprintf("log {\n level = \"debug\"\n format = \"json\"\n audit = %q\n}\n", auditPath))))
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a second record", func() bool { return len(g.Records()) == 2 })
	// Lines from the one announcing the reload (still in text) on.
	// (At level warn the line announcing the reload, in text, is not
	// written: every line from here on is the new format's.)
	after := g.Log.String()[before:]
	var debug, reloaded, warned bool
	for _, m := range testutil.JSONLines(t, after) {
		debug = debug || m["@level"] == "debug"
		reloaded = reloaded || m["@message"] == "configuration reloaded"
		warned = warned || m["summary"] == "Keytab is world-readable"
		if m["@message"] == "session" {
			t.Errorf("a record went to stderr with log.audit set: %v", m)
		}
	}
	if !debug || !reloaded || !warned {
		t.Fatalf("after the reload: debug lines %t, reload line %t, keytab warning %t:\n%s", debug, reloaded, warned, after)
	}
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	recs := testutil.JSONLines(t, string(b))
	if len(recs) != 1 || recs[0]["rule"] != "echo" {
		t.Fatalf("audit file: %s", b)
	}

	// A broken file: the reload fails, the diagnostics are JSON objects
	// with their position, and the configuration in force stays.
	before = len(g.Log.String())
	writeFile(t, g.Path, fmt.Sprintf("listen = [\"127.0.0.1:1080\"]\n%s", conf(kt, port,
		"log {\n format = \"json\"\n}\nrule \"broken\" {\n  destinatons = [\"x\"]\n}\n")))
	err = g.Hangup()
	if !errors.Is(err, gateway.ErrConfig) {
		t.Fatalf("Hangup: %v, want ErrConfig", err)
	}
	var diag map[string]any
	for _, m := range testutil.JSONLines(t, g.Log.String()[before:]) {
		if m["@message"] == "configuration error" {
			diag = m
		}
	}
	if diag == nil || diag["file"] != g.Path || diag["line"] != float64(15) || diag["col"] != float64(3) ||
		diag["severity"] != "error" || diag["summary"] != "Unsupported argument" || !strings.Contains(fmt.Sprint(diag["detail"]), "Did you mean") {
		t.Fatalf("diagnostic object %v", diag)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	testutil.WaitFor(t, "a third record", func() bool { return len(g.Records()) == 3 })
	if b, _ := os.ReadFile(auditPath); strings.Count(string(b), "\n") != 2 {
		t.Fatalf("the audit file of the configuration in force has:\n%s", b)
	}
}

// TestHangupReopensAudit is logrotate: after the audit file is moved,
// Hangup makes new records go to a new file under the configured path.
func TestHangupReopensAudit(t *testing.T) {
	env := realm.Get(t)
	dest, port := echo(t)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	g := testutil.StartGateway(t, conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), port, fmt.Sprintf("log {\n audit = %q\n}\n", auditPath)))
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a record", func() bool { return len(g.Records()) == 1 })
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a second record", func() bool { return len(g.Records()) == 2 })
	old, _ := os.ReadFile(auditPath + ".1")
	cur, _ := os.ReadFile(auditPath)
	if strings.Count(string(old), "audit: session:") != 1 || strings.Count(string(cur), "audit: session:") != 1 {
		t.Fatalf("rotated file:\n%s\ncurrent file:\n%s", old, cur)
	}
	if !strings.Contains(string(cur), "session_id="+g.Records()[1].SessionID) {
		t.Fatalf("the second record is not in the new file:\n%s", cur)
	}
}

// TestReloadRestartRequired pins the reload contract's other half: a
// changed replay_cache_size is named in a warning and not applied; a
// reload that fails (an RC4-only keytab) is reported and changes nothing.
func TestReloadRestartRequired(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	dest, port := echo(t)
	g := testutil.StartGateway(t, conf(kt, port, ""))
	src, _ := os.ReadFile(g.Path)
	writeFile(t, g.Path, strings.Replace(string(src), "keytab = ", "replay_cache_size = 5000\n  keytab = ", 1))
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g.Log.String(), `configuration change needs a restart; the running value stays: field="kerberos.replay_cache_size (running 0, file 5000)"`) {
		t.Fatalf("no restart-required warning:\n%s", g.Log.String())
	}

	rc4 := filepath.Join(t.TempDir(), "rc4.keytab")
	testutil.RC4Keytab(t, rc4, "rcmd/localhost@EXAMPLE.TEST")
	writeFile(t, g.Path, "listen = [\"127.0.0.1:1080\"]\n"+conf(rc4, "1", ""))
	err := g.Hangup()
	if !errors.Is(err, gateway.ErrKeytab) || !strings.Contains(g.Log.String(), "reload failed; the previous configuration stays in force") {
		t.Fatalf("Hangup: %v\n%s", err, g.Log.String())
	}
	if g.Config().Kerberos.Keytab != kt {
		t.Fatalf("keytab in force: %s", g.Config().Kerberos.Keytab)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatalf("the previous configuration does not serve: %v", err)
	}
}

// TestKeytabRotationRefused: a rotation to a keytab without an AES key is
// logged once and the previous keys stay in use.
func TestKeytabRotationRefused(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	dest, port := echo(t)
	g := testutil.StartGateway(t, conf(kt, port, ""), func(o *gateway.Options) { o.KeytabPoll = 20 * time.Millisecond })
	rc4 := filepath.Join(t.TempDir(), "rc4.keytab")
	testutil.RC4Keytab(t, rc4, "rcmd/localhost@EXAMPLE.TEST")
	if err := os.Rename(rc4, kt); err != nil {
		t.Fatal(err)
	}
	const msg = "keytab changed but cannot be used; keeping the previous keys"
	testutil.WaitFor(t, "the refusal", func() bool { return strings.Contains(g.Log.String(), msg) })
	time.Sleep(100 * time.Millisecond) // several polls
	if n := strings.Count(g.Log.String(), msg); n != 1 {
		t.Fatalf("refusal logged %d times", n)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatalf("previous keys: %v", err)
	}
}

// TestRecordsForEverySession: OnSessionEnd sees each session's record
// with what the audit trail needs to be useful.
func TestRecordsForEverySession(t *testing.T) {
	env := realm.Get(t)
	dest, port := echo(t)
	var got []audit.Record
	done := make(chan struct{}, 4)
	g := testutil.StartGateway(t, conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), port, ""), func(o *gateway.Options) {
		o.OnSessionEnd = func(r audit.Record) { got = append(got, r); done <- struct{}{} }
	})
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatal(err)
	}
	<-done
	r := got[0]
	if r.Principal != "alice@EXAMPLE.TEST" || r.Realm != "EXAMPLE.TEST" || r.Rule != "echo" || r.Level != "confidentiality" ||
		r.Destination != dest || !r.Replied || r.Reply != 0 || r.BytesUp != 4 || r.BytesDown != 4 {
		t.Fatalf("record %+v", r)
	}
}
