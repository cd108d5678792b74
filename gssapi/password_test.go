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
	"github.com/jcmturner/gokrb5/v8/keytab"
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

// TestRefusesClient pins the client-name rules a password login is held
// to before any KDC request, the acceptor's own: krbtgt and WELLKNOWN
// names always refused, service instances unless AllowServiceClients.
// And PasswordService: the keytab's accepted AES entry, any case, nothing
// else.
func TestRefusesClient(t *testing.T) {
	for _, allow := range []bool{false, true} {
		acc, err := NewAcceptor(AcceptorConfig{Keytab: keytab.New(), AllowServiceClients: allow})
		if err != nil {
			t.Fatal(err)
		}
		for name, refused := range map[string]bool{
			"alice": false, "krbtgt": true, "krbtgt/EXAMPLE.TEST": true, "WELLKNOWN/ANONYMOUS": true,
			"rcmd/localhost": !allow, "alice/admin": !allow,
		} {
			err := RefusesClient(acc, Principal{Name: name, Realm: "EXAMPLE.TEST"})
			if (err != nil) != refused || err != nil && !errors.Is(err, ErrNotAUser) {
				t.Errorf("AllowServiceClients %v, %s: %v, refused want %v", allow, name, err, refused)
			}
		}
	}

	facts := []KeytabEntryFact{
		{Principal: Principal{Name: "rcmd/gw", Realm: "R"}, Supported: true, Allowed: true, Accepted: true},
		{Principal: Principal{Name: "host/gw", Realm: "R"}, Enctype: 23, Allowed: true, Accepted: true},
		{Principal: Principal{Name: "socks/gw", Realm: "R"}, Supported: true},
	}
	for _, c := range []struct {
		name, realm, want string
		err               error
	}{
		{"rcmd/gw", "R", "rcmd/gw@R", nil},
		{"RCMD/GW", "R", "rcmd/gw@R", nil},
		{"rcmd/gw", "r", "", ErrNoKey},
		{"rcmd/other", "R", "", ErrNoKey},
		{"host/gw", "R", "", ErrNoAESKey},
		{"socks/gw", "R", "", ErrPrincipalNotAllowed},
	} {
		p, err := PasswordService(facts, Principal{Name: c.name, Realm: c.realm})
		if c.err == nil && (err != nil || p.String() != c.want) || c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("PasswordService(%s@%s) = %s, %v; want %s, %v", c.name, c.realm, p, err, c.want, c.err)
		}
	}
}
