package gssapi

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/testenv"
)

func passwordVerifier(t *testing.T, krb5conf string) *PasswordVerifier {
	t.Helper()
	v, err := NewPasswordVerifier(PasswordConfig{
		Krb5Conf: krb5conf,
		Service:  Principal{Name: "rcmd/localhost", Realm: "EXAMPLE.TEST"},
		Realms:   []string{"TRUSTED.TEST"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPasswordVerify: against the real MIT KDC, a good password gives the
// acceptor's context for the ticket's client; each way of failing wraps
// its own sentinel, and no error text carries the password.
func TestPasswordVerify(t *testing.T) {
	r := liveRealm(t)
	acc := liveAcceptor(t, AcceptorConfig{})
	v := passwordVerifier(t, r.Krb5Conf)
	peer := netip.MustParseAddr("127.0.0.1")

	for _, user := range []string{"alice", "alice@EXAMPLE.TEST", "alice@example.test"} {
		ctx, err := v.Verify(acc, user, alicePassword, peer)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if ctx.Client() != (Principal{Name: "alice", Realm: "EXAMPLE.TEST"}) || ctx.ClientKind() != ClientUser ||
			ctx.Service() != (Principal{Name: "rcmd/localhost", Realm: "EXAMPLE.TEST"}) || ctx.IsInitiator() {
			t.Fatalf("%s: context of %s (%s) for %s", user, ctx.Client(), ctx.ClientKind(), ctx.Service())
		}
	}

	const wrong = "not-alice-password-7"
	for _, c := range []struct {
		user, password string
		want           error
	}{
		{"alice", wrong, ErrBadPassword},
		{"alice", alicePassword + "x", ErrBadPassword},
		{"nobody-here", wrong, ErrUnknownPrincipal},
		{"alice@OTHER.TEST", alicePassword, ErrRealmNotTrusted},
		{"alice@EXAMPLE.TEST@X", wrong, ErrBadName},
		{"al\nice", wrong, ErrBadName},
		{"a//b", wrong, ErrBadName},
	} {
		_, err := v.Verify(acc, c.user, c.password, peer)
		if !errors.Is(err, c.want) {
			t.Fatalf("%q: %v, want %v", c.user, err, c.want)
		}
		t.Logf("%q: %v", c.user, err)
		if strings.Contains(err.Error(), c.password) || strings.Contains(err.Error(), "password-") {
			t.Fatalf("%q: the error quotes the password: %v", c.user, err)
		}
	}
}

// TestPasswordKDCUnreachable: a krb5.conf whose KDC does not listen.
func TestPasswordKDCUnreachable(t *testing.T) {
	liveRealm(t)
	acc := liveAcceptor(t, AcceptorConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(conf, []byte("[libdefaults]\n default_realm = EXAMPLE.TEST\n udp_preference_limit = 1\n[realms]\n EXAMPLE.TEST = {\n  kdc = "+dead+"\n }\n"), 0o600)
	v := passwordVerifier(t, conf)
	if _, err := v.Verify(acc, "alice", alicePassword, netip.Addr{}); !errors.Is(err, ErrKDCUnreachable) || strings.Contains(err.Error(), alicePassword) {
		t.Fatalf("%v, want ErrKDCUnreachable", err)
	}
	// A realm without a KDC is refused when the verifier is built.
	if _, err := NewPasswordVerifier(PasswordConfig{Krb5Conf: conf, Service: Principal{Name: "rcmd/localhost", Realm: "NOKDC.TEST"}}); !errors.Is(err, ErrKDCUnreachable) {
		t.Fatalf("realm without a KDC: %v", err)
	}
	if _, err := NewPasswordVerifier(PasswordConfig{Krb5Conf: filepath.Join(t.TempDir(), "none"), Service: Principal{Name: "rcmd/localhost", Realm: "EXAMPLE.TEST"}}); !errors.Is(err, ErrKDCUnreachable) {
		t.Fatalf("missing krb5.conf: %v", err)
	}
}

// TestPasswordSpoofedKDC: a second, real KDC for the same realm name that
// knows alice's password (and has an rcmd/localhost of its own) vouches
// for her; its service ticket does not open with the gateway's keytab, so
// the login is not validated. This is why the AS exchange alone is not
// enough.
func TestPasswordSpoofedKDC(t *testing.T) {
	liveRealm(t)
	acc := liveAcceptor(t, AcceptorConfig{})
	spoof := testenv.StartForTest(t, testenv.Options{Realm: "EXAMPLE.TEST"})
	if err := spoof.AddUser("alice", alicePassword); err != nil {
		t.Fatal(err)
	}
	if err := spoof.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	v := passwordVerifier(t, spoof.Krb5Conf)
	_, err := v.Verify(acc, "alice", alicePassword, netip.Addr{})
	t.Logf("spoofed: %v", err)
	if !errors.Is(err, ErrPasswordValidation) || strings.Contains(err.Error(), alicePassword) {
		t.Fatalf("spoofed KDC: %v, want ErrPasswordValidation", err)
	}
	// Without the gateway's service in the spoofed realm: no ticket at
	// all, not validated either.
	bob := testenv.StartForTest(t, testenv.Options{Realm: "EXAMPLE.TEST"})
	bob.AddUser("bob", bobPassword)
	if _, err := passwordVerifier(t, bob.Krb5Conf).Verify(acc, "bob", bobPassword, netip.Addr{}); !errors.Is(err, ErrPasswordValidation) {
		t.Fatalf("spoofed KDC without the service: %v", err)
	}
}

// TestPasswordVerifyConcurrent: one verifier (one parsed krb5.conf) serves
// concurrent verifications (run under -race).
func TestPasswordVerifyConcurrent(t *testing.T) {
	r := liveRealm(t)
	acc := liveAcceptor(t, AcceptorConfig{})
	v := passwordVerifier(t, r.Krb5Conf)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			user, pw := "alice", alicePassword
			if i%2 == 1 {
				user, pw = "bob", bobPassword
			}
			ctx, err := v.Verify(acc, user, pw, netip.Addr{})
			if err == nil && ctx.Client().Name != user {
				err = errors.New("context of " + ctx.Client().String())
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
