package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// process is a `gssocks serve` subprocess with its log.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	conf string
	eof  chan struct{} // closed when the log pipe reaches EOF (the process exited)
}

// wait collects the exit status once all of the log has been read (Wait
// closes the pipe: calling it first could lose the last lines).
func (p *process) wait() error {
	<-p.eof
	return p.cmd.Wait()
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *process) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(p.logs(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d log line(s) with %q; log:\n%s", n, s, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildGssocks builds the binary, with extra go build flags (-ldflags).
func buildGssocks(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gssocks")
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startProcess(t *testing.T, bin, conf string, env []string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, "serve", "--config", conf), conf: conf, eof: make(chan struct{})}
	p.cmd.Env = env
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.eof)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.wait()
	})
	p.waitLog(t, "listening", 1)
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// streamServer sends size pseudo-random bytes slowly enough that a reload
// happens mid-transfer, and returns its address and the data's digest.
func streamServer(t *testing.T, size int, pause time.Duration) (string, [32]byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>8)
	}
	addr := testutil.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := c.Write(data[off:min(off+1<<20, len(data))]); err != nil {
				return
			}
			time.Sleep(pause)
		}
	})
	return addr, sha256.Sum256(data)
}

func writeConfig(t *testing.T, path, listen, keytab, rules string) {
	t.Helper()
	conf := fmt.Sprintf("listen = [%s]\nkerberos {\n  keytab = %q\n}\nlog {\n  level = \"debug\"\n}\n%s", listen, keytab, rules)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func ticketFunc(cfg gssapi.InitiatorConfig) func(context.Context) (gssapi.InitiatorConfig, error) {
	return func(context.Context) (gssapi.InitiatorConfig, error) { return cfg, nil }
}

func dial(proxy string, ticket gssapi.InitiatorConfig, dest string) (net.Conn, error) {
	d := client.Dialer{Proxy: proxy, Config: client.Config{Level: encap.LevelConfidentiality, Ticket: ticketFunc(ticket)}}
	return d.DialContext(context.Background(), "tcp", dest)
}

// TestServeReloadAndRotation runs the real binary: SIGHUP reloads the
// rules while a transfer is under way (it completes, SHA-256 checked; new
// sessions get the new rules; the unchanged listener is not rebound); a
// broken config keeps the old one serving; the keytab is rotated to a new
// kvno during a transfer and both the new and the old kvno's tickets are
// accepted; SIGTERM drains and exits 0.
func TestServeReloadAndRotation(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t)
	dir := t.TempDir()
	kt := filepath.Join(dir, "gssocks.keytab")
	if err := env.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(kt, 0o600)
	conf := filepath.Join(dir, "gssocks.hcl")
	addr1, addr2 := freeAddr(t), freeAddr(t)
	stream, digest := streamServer(t, 48<<20, 40*time.Millisecond)
	other, _ := streamServer(t, 1<<10, 0)
	_, streamPort, _ := net.SplitHostPort(stream)
	writeConfig(t, conf, fmt.Sprintf("%q", addr1), kt, `
rule "v1" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["confidentiality"]
}`)
	p := startProcess(t, bin, conf, env.Realm.Env("", ""))

	oldTicket, err := env.InitiatorConfig("alice", "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	// A transfer that spans the reload and the rotation.
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	done := make(chan result, 1)
	c, err := dial(addr1, oldTicket, stream)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, c)
		done <- result{[32]byte(h.Sum(nil)), n, err}
	}()

	// Reload: v2 allows only the stream's port and adds a listener.
	writeConfig(t, conf, fmt.Sprintf("%q, %q", addr1, addr2), kt, `
rule "v2" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["`+streamPort+`"]
  protection   = ["confidentiality"]
}`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1)
	if n := strings.Count(p.logs(), "listening: addr="+addr1); n != 1 {
		t.Fatalf("the unchanged listener was bound %d times", n)
	}
	p.waitLog(t, "listening: addr="+addr2, 1)
	newTicket := func() gssapi.InitiatorConfig {
		cfg, err := env.InitiatorConfig("alice", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	_, err = dial(addr2, newTicket(), other)
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
		t.Fatalf("v2 should deny %s: %v", other, err)
	}

	// A broken config: the reload fails, v2 stays.
	writeConfig(t, conf, fmt.Sprintf("%q", addr1), kt, `rule "broken" { destinatons = ["x"] }`)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reload failed", 1)
	if !strings.Contains(p.logs(), `gssocks.hcl:8:17: Error: Unsupported argument`) || !strings.Contains(p.logs(), "Did you mean") {
		t.Fatalf("the failed reload did not log its diagnostics:\n%s", p.logs())
	}
	if _, err = dial(addr2, newTicket(), other); !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
		t.Fatalf("after a failed reload v2 should still be in force: %v", err)
	}

	// Key rotation: kvno 2 in a new keytab file, the old key kept in it.
	if err := env.Realm.RotateKey("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	rotated := filepath.Join(dir, "rotated.keytab")
	if err := env.Realm.ExportKeytab(rotated, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(rotated, 0o600)
	if err := os.Rename(rotated, kt); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "keytab reloaded", 1)
	fresh := newTicket()
	if old, now := oldTicket.Ticket.EncPart.KVNO, fresh.Ticket.EncPart.KVNO; now != old+1 {
		t.Fatalf("ticket after rotation has kvno %d, before %d", now, old)
	}
	for name, tk := range map[string]gssapi.InitiatorConfig{"new kvno": fresh, "old kvno (issued before the rotation)": oldTicket} {
		c, err := dial(addr1, tk, stream)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Close()
	}

	r := <-done
	if r.err != nil || r.sum != digest {
		t.Fatalf("transfer across reload and rotation: %d bytes, %v, digest ok %t", r.n, r.err, r.sum == digest)
	}
	c.Close()

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(p.logs(), "stopped") {
		t.Fatal("no clean stop")
	}
}

func TestCheckAndExplain(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	kt := filepath.Join(dir, "gssocks.keytab")
	if err := env.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(kt, 0o600)
	conf := filepath.Join(dir, "gssocks.hcl")
	writeConfig(t, conf, `"127.0.0.1:1080"`, kt, `
group "db-admins" { sids = ["S-1-5-21-1-2-3-1110"] }
rule "deny-db" {
  action       = "deny"
  destinations = ["10.0.5.0/24"]
  ports        = ["5432"]
}
rule "dba" {
  groups       = ["db-admins"]
  destinations = ["10.0.5.0/24"]
}
rule "staff" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["*.corp.example.test", "10.0.0.0/8"]
  ports        = ["80", "443"]
}`)
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", conf}, &out, &errb); code != 0 || !strings.Contains(out.String(), "OK: 1 listener(s), 3 rule(s)") {
		t.Fatalf("check: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"explain", "--config", conf, "--principal", "alice@EXAMPLE.TEST", "--dest", "intranet.corp.example.test:443", "--addr", "10.1.1.1"}, &out, &errb); code != 0 {
		t.Fatalf("explain: %d %s", code, errb.String())
	}
	for _, want := range []string{`rule "deny-db"`, "no match", `rule "staff"`, "MATCH", "decision:   ALLOW"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("explain output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("allowed:\n%s", out.String())
	out.Reset()
	if code := run([]string{"explain", "--config", conf, "--principal", "alice@EXAMPLE.TEST", "--group", "S-1-5-21-1-2-3-1110", "--dest", "10.0.5.7:5432"}, &out, &errb); code != 0 {
		t.Fatalf("explain: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "decision:   DENY") || !strings.Contains(out.String(), `rule "deny-db"`) {
		t.Fatalf("explain of a denied request:\n%s", out.String())
	}
	t.Logf("denied:\n%s", out.String())
	out.Reset()
	if code := run([]string{"keytab", "--config", conf}, &out, &errb); code != 0 || !strings.Contains(out.String(), "rcmd/localhost@EXAMPLE.TEST") || !strings.Contains(out.String(), "aes256-cts-hmac-sha1-96") {
		t.Fatalf("keytab: %d\n%s%s", code, out.String(), errb.String())
	}
	// A broken config: exit 1 with file:line:col diagnostics.
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(bad, []byte("listen = [\"127.0.0.1:1080\"]\nrule \"x\" {\n  protection = [\"secret\"]\n}\n"), 0o644)
	errb.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "bad.hcl:3:") {
		t.Fatalf("check of a broken config: %d\n%s", code, errb.String())
	}
}
