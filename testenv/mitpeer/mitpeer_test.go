package mitpeer_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gssocks/gssocks/testenv"
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

// newRealm creates a throwaway realm (testenv) with principals alice
// (password "pw", logged in) and rcmd/localhost (in svc.keytab), runs its
// KDC until cleanup and returns the environment for the peers.
func newRealm(t *testing.T) []string {
	t.Helper()
	r := testenv.StartForTest(t, testenv.Options{})
	keytab := filepath.Join(r.Dir, "svc.keytab")
	if err := r.AddUser("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if err := r.ExportKeytab(keytab, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	cc, err := r.Kinit("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	return append(r.Env("", "FILE:"+cc), "KRB5_KTNAME=FILE:"+keytab)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
