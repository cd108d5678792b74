package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
)

// opsConfig is a configuration on one listener and keytab, allowing the
// echo server's port, with extra blocks.
func opsConfig(t *testing.T, path, listen, keytab, echoPort, extra string) {
	t.Helper()
	src := fmt.Sprintf(`listen = [%q]
kerberos {
  keytab = %q
}
rule "echo" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
}
%s`, listen, keytab, echoPort, extra)
	if err := os.WriteFile(path+".tmp", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// echoOnce runs one CONNECT through proxy to dest and echoes a message;
// the error is the dial's.
func echoOnce(t *testing.T, env *krbtest.Env, proxy, dest string) error {
	t.Helper()
	ticket, err := env.InitiatorConfig("alice", "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(proxy, ticket, dest)
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	return nil
}

// auditRecords counts the audit records in the file at path.
func auditRecords(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "audit: session:")
}

// TestServeAuditRotationAndLogLevel runs the real binary: after
// `mv audit.log audit.log.1` and SIGHUP new records go to a new
// audit.log (logrotate's postrotate); a log level change applies on
// reload (debug lines appear; at warn info lines stop while denied
// sessions are still audited); a changed replay_cache_size is named as
// needing a restart.
func TestServeAuditRotationAndLogLevel(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	kt := testutil.CopyKeytab(t, env.Keytab, dir, 0o600)
	conf := filepath.Join(dir, "gssocks.hcl")
	auditLog := filepath.Join(dir, "audit.log")
	addr := freeAddr(t)
	echo := testutil.EchoServer(t)
	other := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	logBlock := func(level, extra string) string {
		return fmt.Sprintf("log {\n  level = %q\n  audit = %q\n}\n%s", level, auditLog, extra)
	}
	opsConfig(t, conf, addr, kt, port, logBlock("info", ""))
	p := startProcess(t, bin, conf, env.Realm.Env("", ""))

	if err := echoOnce(t, env, addr, echo); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the first record", func() bool { return auditRecords(auditLog) == 1 })
	if strings.Contains(p.logs(), "[DEBUG]") {
		t.Fatalf("debug lines at level info:\n%s", p.logs())
	}

	// logrotate: move the file, then SIGHUP (with a level change).
	if err := os.Rename(auditLog, auditLog+".1"); err != nil {
		t.Fatal(err)
	}
	opsConfig(t, conf, addr, kt, port, logBlock("debug", ""))
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1)
	mark := len(p.logs())
	if err := echoOnce(t, env, addr, echo); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a record in the new audit.log", func() bool { return auditRecords(auditLog) == 1 })
	if n := auditRecords(auditLog + ".1"); n != 1 {
		t.Fatalf("the rotated file has %d records, want 1", n)
	}
	if !strings.Contains(p.logs()[mark:], "[DEBUG] gssocks: authenticated") {
		t.Fatalf("no debug lines after the reload to level debug:\n%s", p.logs()[mark:])
	}

	// Level warn: the reload is seen by its restart-required warning;
	// afterwards a denied session writes no info line but its record.
	opsConfig(t, conf, addr, kt, port, logBlock("warn", ""))
	src, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(src), "keytab = ", "replay_cache_size = 777\n  keytab = ", 1)), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "kerberos.replay_cache_size (running 0, file 777)", 1)
	mark = len(p.logs())
	if err := echoOnce(t, env, addr, other); err == nil {
		t.Fatal("a destination outside the rule was allowed")
	}
	testutil.WaitFor(t, "the denied session's record", func() bool { return auditRecords(auditLog) == 2 })
	if b, _ := os.ReadFile(auditLog); !strings.Contains(string(b), `rule="(default deny)"`) {
		t.Fatalf("audit.log:\n%s", b)
	}
	if after := p.logs()[mark:]; strings.Contains(after, "[INFO]") || strings.Contains(after, "[DEBUG]") {
		t.Fatalf("info or debug lines at level warn:\n%s", after)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func findMessage(lines []map[string]any, msg string, with func(map[string]any) bool) map[string]any {
	for _, m := range lines {
		if m["@message"] == msg && (with == nil || with(m)) {
			return m
		}
	}
	return nil
}

// TestServeJSONLog runs the real binary with log { format = "json" }:
// every stderr line is one JSON object, from the world-readable-keytab
// warning at start through the audit records and the diagnostics of a
// failed reload to the stop; a file that does not load at start, and a
// gateway that cannot start (audit path under a regular file), are
// reported in JSON too, with exit status 1.
func TestServeJSONLog(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	kt := testutil.CopyKeytab(t, env.Keytab, dir, 0o644) // world-readable: a warning
	conf := filepath.Join(dir, "gssocks.hcl")
	addr := freeAddr(t)
	echo := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(echo)
	jsonBlock := "log {\n  format = \"json\"\n}\n"
	opsConfig(t, conf, addr, kt, port, jsonBlock)
	p := startProcess(t, bin, conf, env.Realm.Env("", ""))
	if err := echoOnce(t, env, addr, echo); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, `"@message":"session"`, 1)
	opsConfig(t, conf, addr, kt, port, jsonBlock+"rule \"broken\" {\n  destinatons = [\"x\"]\n}\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reload failed", 1)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	lines := testutil.JSONLines(t, p.logs())
	warn := findMessage(lines, "configuration warning", func(m map[string]any) bool { return m["summary"] == "Keytab is world-readable" })
	if warn == nil || warn["file"] != conf || warn["line"] != float64(3) || warn["severity"] != "warning" || !strings.Contains(fmt.Sprint(warn["detail"]), "chmod 600") {
		t.Errorf("keytab warning: %v", warn)
	}
	diag := findMessage(lines, "configuration error", nil)
	if diag == nil || diag["file"] != conf || diag["line"] != float64(14) || diag["col"] != float64(3) || diag["summary"] != "Unsupported argument" {
		t.Errorf("reload diagnostic: %v", diag)
	}
	rec := findMessage(lines, "session", nil)
	if rec == nil || rec["principal"] != "alice@EXAMPLE.TEST" || rec["rule"] != "echo" {
		t.Errorf("audit record: %v", rec)
	}
	for _, msg := range []string{"listening", "reload failed; the previous configuration stays in force", "stopped"} {
		if findMessage(lines, msg, nil) == nil {
			t.Errorf("no %q object", msg)
		}
	}

	// Errors at start: the file's, and the gateway's.
	for _, tc := range []struct{ name, extra, msg string }{
		{"file with errors", "rule \"broken\" {\n  destinatons = [\"x\"]\n}\n", "configuration has errors; not starting"},
		{"audit under a regular file", "", "cannot start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block := jsonBlock
			if tc.extra == "" {
				block = fmt.Sprintf("log {\n  format = \"json\"\n  audit = %q\n}\n", filepath.Join(kt, "audit.log"))
			}
			opsConfig(t, conf, addr, kt, port, block+tc.extra)
			cmd := exec.Command(bin, "serve", "--config", conf)
			cmd.Env = env.Realm.Env("", "")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v\n%s", err, out)
			}
			if m := findMessage(testutil.JSONLines(t, string(out)), tc.msg, nil); m == nil || m["@level"] != "error" {
				t.Fatalf("no %q error object:\n%s", tc.msg, out)
			}
		})
	}
}

// TestCheckRefusals runs `gssocks check` (the real binary) on what serve
// would refuse: exit status 1 and the reason, for an RC4-only keytab, an
// audit path that cannot be opened for appending, and with --bind a
// listen address or the metrics listen address in use (without --bind
// neither is tried). A valid audit path is not created by check.
func TestCheckRefusals(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	kt := testutil.CopyKeytab(t, env.Keytab, dir, 0o600)
	rc4 := filepath.Join(dir, "rc4.keytab")
	testutil.RC4Keytab(t, rc4, "rcmd/localhost@EXAMPLE.TEST")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	newAudit := filepath.Join(dir, "new-audit.log")
	cases := []struct {
		name, listen, keytab, extra string
		args                        []string
		code                        int
		want                        string
	}{
		{"rc4-only keytab", freeAddr(t), rc4, "", nil, 1, fmt.Sprintf("refused: unusable keytab %q: gssapi: the keytab holds 1 keys for any principal, none of them AES", rc4)},
		{"audit under a regular file", freeAddr(t), kt, fmt.Sprintf("log {\n  audit = %q\n}\n", filepath.Join(kt, "audit.log")), nil, 1,
			"refused: cannot append to the audit file: open " + filepath.Join(kt, "audit.log") + ": not a directory"},
		{"listen in use, --bind", busy.Addr().String(), kt, "", []string{"--bind"}, 1, "refused: cannot listen: listen tcp " + busy.Addr().String() + ": bind: address already in use"},
		{"listen in use, no --bind", busy.Addr().String(), kt, "", nil, 0, "OK: 1 listener(s)"},
		{"metrics listen in use, --bind", freeAddr(t), kt, fmt.Sprintf("metrics {\n  listen = %q\n}\n", busy.Addr().String()), []string{"--bind"}, 1,
			"refused: cannot listen: metrics: listen tcp " + busy.Addr().String() + ": bind: address already in use"},
		{"metrics listen in use, no --bind", freeAddr(t), kt, fmt.Sprintf("metrics {\n  listen = %q\n}\n", busy.Addr().String()), nil, 0, "OK: 1 listener(s)"},
		{"metrics listen free, --bind", freeAddr(t), kt, fmt.Sprintf("metrics {\n  listen = %q\n}\n", freeAddr(t)), []string{"--bind"}, 0, "listen addresses bound and released"},
		{"fine, audit not created", freeAddr(t), kt, fmt.Sprintf("log {\n  audit = %q\n}\n", newAudit), []string{"--bind"}, 0, "audit to " + newAudit + "; listen addresses bound and released"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(dir, "gssocks.hcl")
			opsConfig(t, conf, tc.listen, tc.keytab, "80", tc.extra)
			cmd := exec.Command(bin, append([]string{"check", "--config", conf}, tc.args...)...)
			cmd.Env = env.Realm.Env("", "")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, out)
			}
			t.Logf("%s", out)
		})
	}
	if _, err := os.Stat(newAudit); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("check created the audit file: %v", err)
	}
}
