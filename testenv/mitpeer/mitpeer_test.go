package mitpeer_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/mitpeer"
)

const gssDuplicateToken = 1 << 1 // GSS_S_DUPLICATE_TOKEN supplementary bit

// TestMITSelf runs MIT against MIT through the harness to prove it works.
func TestMITSelf(t *testing.T) {
	bin := mitpeer.Require(t)
	env := newRealm(t)

	t.Run("mutual", func(t *testing.T) {
		ini, acc := establish(t, bin, env)
		want := uint32(mitpeer.FlagMutual | mitpeer.FlagReplay | mitpeer.FlagSequence |
			mitpeer.FlagConf | mitpeer.FlagInteg)
		t.Logf("flags: initiator %#x, acceptor %#x", ini.Flags(), acc.Flags())
		if ini.Flags()&want != want || acc.Flags()&want != want {
			t.Errorf("flags: initiator %#x, acceptor %#x, want at least %#x", ini.Flags(), acc.Flags(), want)
		}
		if got := acc.ClientName(); got != "alice@EXAMPLE.TEST" {
			t.Errorf("client name %q, want alice@EXAMPLE.TEST", got)
		}

		for _, d := range []struct {
			name     string
			from, to *mitpeer.Peer
		}{{"initiator->acceptor", ini, acc}, {"acceptor->initiator", acc, ini}} {
			for _, conf := range []bool{false, true} {
				for _, size := range []int{0, 1, 16, 65471} {
					msg := randomBytes(size)
					tok, err := d.from.Wrap(conf, msg)
					if err != nil {
						t.Fatalf("%s wrap conf=%v size=%d: %v", d.name, conf, size, err)
					}
					got, gotConf, err := d.to.Unwrap(tok)
					if err != nil {
						t.Fatalf("%s unwrap conf=%v size=%d: %v", d.name, conf, size, err)
					}
					if !bytes.Equal(got, msg) || gotConf != conf {
						t.Errorf("%s conf=%v size=%d: got %d bytes conf=%v", d.name, conf, size, len(got), gotConf)
					}
				}
			}
			msg := []byte("integrity only")
			mic, err := d.from.MIC(msg)
			if err != nil {
				t.Fatalf("%s MIC: %v", d.name, err)
			}
			if err := d.to.VerifyMIC(msg, mic); err != nil {
				t.Errorf("%s VerifyMIC: %v", d.name, err)
			}
		}

		// A replayed token is reported through the supplementary status.
		tok := mustWrap(t, ini, true, []byte("once"))
		if _, _, err := acc.Unwrap(tok); err != nil {
			t.Fatalf("unwrap: %v", err)
		}
		_, _, err := acc.Unwrap(tok)
		if pe := asPeerError(t, "replayed token", err); pe != nil && pe.Major&gssDuplicateToken == 0 {
			t.Errorf("replayed token: major %#x lacks GSS_S_DUPLICATE_TOKEN", pe.Major)
		}

		// Tampered tokens fail; a failed check consumes no sequence number,
		// so the original still unwraps.
		tok = mustWrap(t, ini, true, []byte("tamper with me"))
		bad := bytes.Clone(tok)
		bad[len(bad)-1] ^= 1
		_, _, err = acc.Unwrap(bad)
		asPeerError(t, "bit-flipped wrap token", err)
		if _, _, err := acc.Unwrap(tok); err != nil {
			t.Errorf("unwrap original after tampered copy: %v", err)
		}
		mic, err := acc.MIC([]byte("signed"))
		if err != nil {
			t.Fatal(err)
		}
		bad = bytes.Clone(mic)
		bad[len(bad)-1] ^= 0x80
		asPeerError(t, "bit-flipped MIC", ini.VerifyMIC([]byte("signed"), bad))
		asPeerError(t, "MIC over other message", ini.VerifyMIC([]byte("signeD"), mic))
		if err := ini.VerifyMIC([]byte("signed"), mic); err != nil {
			t.Errorf("verify original MIC: %v", err)
		}

		for _, conf := range []bool{false, true} {
			n, err := ini.WrapSizeLimit(conf, 65535)
			if err != nil {
				t.Fatalf("WrapSizeLimit(%v): %v", conf, err)
			}
			tok := mustWrap(t, ini, conf, make([]byte, n))
			t.Logf("WrapSizeLimit(conf=%v, 65535) = %d, token %d bytes", conf, n, len(tok))
			if len(tok) > 65535 {
				t.Errorf("conf=%v: %d-byte message gives %d-byte token", conf, n, len(tok))
			}
			if _, _, err := acc.Unwrap(tok); err != nil {
				t.Errorf("unwrap: %v", err)
			}
		}

		ie, isub, err := ini.Info()
		if err != nil {
			t.Fatalf("initiator Info: %v", err)
		}
		ae, asub, err := acc.Info()
		if err != nil {
			t.Fatalf("acceptor Info: %v", err)
		}
		t.Logf("Info: initiator enctype %d subkey %v, acceptor enctype %d subkey %v", ie, isub, ae, asub)
		if ie != ae || isub != asub {
			t.Errorf("initiator and acceptor disagree on keys")
		}
		_, err = ini.Wrap(false, []byte("after INFO"))
		asPeerError(t, "wrap after INFO", err)
	})

	t.Run("no-mutual", func(t *testing.T) {
		ini, acc := establish(t, bin, env, "--no-mutual", "--no-sequence", "--no-replay")
		t.Logf("flags: initiator %#x, acceptor %#x", ini.Flags(), acc.Flags())
		if ini.Flags()&mitpeer.FlagMutual != 0 {
			t.Errorf("initiator flags %#x include mutual", ini.Flags())
		}
		for _, d := range [][2]*mitpeer.Peer{{ini, acc}, {acc, ini}} {
			msg := randomBytes(100)
			got, conf, err := d[1].Unwrap(mustWrap(t, d[0], true, msg))
			if err != nil || !conf || !bytes.Equal(got, msg) {
				t.Errorf("unwrap: conf=%v equal=%v err=%v", conf, bytes.Equal(got, msg), err)
			}
		}
		ie, isub, err := ini.Info()
		if err != nil {
			t.Fatalf("initiator Info: %v", err)
		}
		t.Logf("Info: initiator enctype %d subkey %v", ie, isub)
	})

	t.Run("unknown service", func(t *testing.T) {
		_, _, err := mitpeer.StartInitiator(bin, env, "nosuch@localhost")
		asPeerError(t, "initiator for unknown service", err)
	})
}

// TestBuildConcurrent builds into an empty cache from several goroutines.
func TestBuildConcurrent(t *testing.T) {
	mitpeer.Require(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	paths := make([]string, 4)
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = mitpeer.Build() })
	}
	wg.Wait()
	for i, p := range paths {
		if errs[i] != nil {
			t.Fatalf("Build: %v", errs[i])
		}
		if p != paths[0] {
			t.Errorf("Build paths differ: %s, %s", p, paths[0])
		}
	}
	entries, err := os.ReadDir(filepath.Dir(paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d entries, want only the binary", len(entries))
	}
	if out, err := exec.Command(paths[0]).CombinedOutput(); !strings.Contains(string(out), "usage") {
		t.Errorf("running %s without arguments: %v\n%s", paths[0], err, out)
	}
}

// establish runs the context handshake between an MIT initiator (with the
// given flags) and an MIT acceptor. Both peers are closed at cleanup.
func establish(t *testing.T, bin string, env []string, flags ...string) (ini, acc *mitpeer.Peer) {
	t.Helper()
	ini, tok, err := mitpeer.StartInitiator(bin, env, "rcmd@localhost", flags...)
	if err != nil {
		t.Fatalf("StartInitiator: %v", err)
	}
	t.Cleanup(func() { closePeer(t, ini) })
	acc, err = mitpeer.StartAcceptor(bin, env)
	if err != nil {
		t.Fatalf("StartAcceptor: %v", err)
	}
	t.Cleanup(func() { closePeer(t, acc) })

	reply, err := acc.Step(tok)
	if err != nil {
		t.Fatalf("acceptor Step: %v", err)
	}
	if !acc.Ready() {
		t.Fatalf("acceptor not ready after one token")
	}
	if ini.Ready() {
		if len(reply) != 0 {
			t.Fatalf("acceptor sent %d-byte token to an established initiator", len(reply))
		}
		return ini, acc
	}
	out, err := ini.Step(reply)
	if err != nil {
		t.Fatalf("initiator Step: %v", err)
	}
	if out != nil || !ini.Ready() {
		t.Fatalf("initiator Step: out=%x ready=%v", out, ini.Ready())
	}
	return ini, acc
}

func closePeer(t *testing.T, p *mitpeer.Peer) {
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func mustWrap(t *testing.T, p *mitpeer.Peer, conf bool, msg []byte) []byte {
	t.Helper()
	tok, err := p.Wrap(conf, msg)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	return tok
}

// asPeerError reports a test error unless err is a *mitpeer.PeerError.
func asPeerError(t *testing.T, what string, err error) *mitpeer.PeerError {
	t.Helper()
	var pe *mitpeer.PeerError
	if !errors.As(err, &pe) {
		t.Errorf("%s: got %v, want *PeerError", what, err)
		return nil
	}
	t.Logf("%s: %v", what, pe)
	return pe
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newRealm creates a throwaway realm EXAMPLE.TEST with principals alice
// (password "pw", logged in) and rcmd/localhost (in svc.keytab), runs its
// KDC until cleanup and returns the environment for the peers.
func newRealm(t *testing.T) []string {
	t.Helper()
	tools := map[string]string{}
	for _, name := range []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"} {
		tools[name] = lookTool(t, name)
	}

	dir := t.TempDir()
	port := freePort(t)
	kdcConf := filepath.Join(dir, "kdc.conf")
	krb5Conf := filepath.Join(dir, "krb5.conf")
	writeFile(t, kdcConf, fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d
[realms]
	EXAMPLE.TEST = {
		database_name = %[1]s/principal
		key_stash_file = %[1]s/stash
		kdc_listen = 127.0.0.1:%[2]d
		kdc_tcp_listen = 127.0.0.1:%[2]d
	}
[logging]
	kdc = FILE:%[1]s/kdc.log
`, dir, port))
	writeFile(t, krb5Conf, fmt.Sprintf(`[libdefaults]
	default_realm = EXAMPLE.TEST
	udp_preference_limit = 1
	rdns = false
	dns_canonicalize_hostname = false
	dns_lookup_kdc = false
	dns_lookup_realm = false
[realms]
	EXAMPLE.TEST = {
		kdc = 127.0.0.1:%d
	}
[domain_realm]
	localhost = EXAMPLE.TEST
`, port))

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"KRB5_CONFIG="+krb5Conf,
		"KRB5_KDC_PROFILE="+kdcConf,
		"KRB5CCNAME=FILE:"+filepath.Join(dir, "cc"),
		"KRB5_KTNAME=FILE:"+filepath.Join(dir, "svc.keytab"),
		"KRB5RCACHEDIR="+dir,
	)
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(tools[name], args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}

	run("", "kdb5_util", "create", "-s", "-r", "EXAMPLE.TEST", "-P", rand.Text())
	run("", "kadmin.local", "-q", "addprinc -pw pw alice")
	run("", "kadmin.local", "-q", "addprinc -randkey rcmd/localhost")
	run("", "kadmin.local", "-q", "ktadd -k "+filepath.Join(dir, "svc.keytab")+" rcmd/localhost")

	kdc := exec.Command(tools["krb5kdc"], "-n")
	kdc.Env = env
	logf, err := os.Create(filepath.Join(dir, "krb5kdc.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	kdc.Stdout, kdc.Stderr = logf, logf
	if err := kdc.Start(); err != nil {
		t.Fatalf("krb5kdc: %v", err)
	}
	exited := make(chan struct{})
	go func() { kdc.Wait(); close(exited) }()
	t.Cleanup(func() {
		kdc.Process.Kill()
		<-exited
	})
	waitForKDC(t, dir, port, exited)

	run("pw\n", "kinit", "alice")
	return env
}

// lookTool finds a Kerberos program, also in /usr/sbin, which may not be
// in PATH. Missing tools skip the test, or fail it when CI=true.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found (apt-get install krb5-kdc krb5-admin-server krb5-user)", name)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a loopback port that is free for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

func waitForKDC(t *testing.T, dir string, port int, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
		}
		out, _ := os.ReadFile(filepath.Join(dir, "krb5kdc.out"))
		log, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
		t.Fatalf("KDC not reachable on port %d: %v\n%s\n%s", port, err, out, log)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
