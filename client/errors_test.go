package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
)

// TestErrorMessages drives each failure a user can meet against the real
// KDC and gateways and checks the error's type and the text the user
// reads: what went wrong and what to do.
func TestErrorMessages(t *testing.T) {
	e := env(t)
	gw := gssocksGateway(t).addr
	dnt := danteGateway(t)
	echo := testutil.EchoServer(t)
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	unreachableConf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(unreachableConf, []byte(fmt.Sprintf("[libdefaults]\n default_realm = %s\n[realms]\n %s = {\n  kdc = %s\n }\n", realmName, realmName, closedPort)), 0o644)
	ccache := filepath.Join(t.TempDir(), "cc")
	kinit(t, "alice", "FILE:"+ccache)
	skewed := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	// A ticket got with a true clock, used with a wrong one: only the
	// gateway can notice.
	gatewaySkew := func(t *testing.T, addr string) error {
		icfg, err := e.InitiatorConfig("alice", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		icfg.Now = skewed(-10 * time.Minute)
		_, err = client.Open(context.Background(), addr, client.Config{
			Level:  encap.LevelConfidentiality,
			Ticket: func(context.Context) (gssapi.InitiatorConfig, error) { return icfg, nil },
		})
		return err
	}
	dial := func(gateway string, opts client.Options, dest string) func(t *testing.T) error {
		return func(t *testing.T) error {
			opts.Gateway = gateway
			if opts.Krb5Conf == "" {
				opts.Krb5Conf = krb5Conf(t, "")
			}
			d, err := client.New(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", dest)
			if err == nil {
				c.Close()
			}
			return err
		}
	}
	alice := client.Options{Principal: "alice", Password: password("alice")}
	with := func(o client.Options, f func(*client.Options)) client.Options { f(&o); return o }

	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		as   any      // pointer to the error type wanted
		want []string // in the message
	}{
		{
			name: "no ticket cache",
			run:  dial(gw, client.Options{CCache: "FILE:/nonexistent/krb5cc_test"}, echo),
			as:   new(*client.NoCredentialsError),
			want: []string{"no Kerberos credentials in the ticket cache FILE:/nonexistent/krb5cc_test", "run kinit"},
		},
		{
			name: "KEYRING ticket cache",
			run:  dial(gw, client.Options{CCache: "KEYRING:persistent:1000"}, echo),
			as:   new(*client.NoCredentialsError),
			want: []string{"KEYRING:persistent:1000 is a KEYRING: (kernel keyring) cache", "export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u) then run kinit"},
		},
		{
			name: "KCM ticket cache from KRB5CCNAME",
			run: dial(gw, client.Options{Getenv: func(k string) string {
				if k == "KRB5CCNAME" {
					return "KCM:"
				}
				return ""
			}}, echo),
			as:   new(*client.NoCredentialsError),
			want: []string{"KCM: is a KCM: (sssd-kcm", "export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u)"},
		},
		{
			name: "unknown service principal",
			run:  dial(gw, with(alice, func(o *client.Options) { o.ServicePrincipal = "rcmd/nosuchhost.example.test" }), echo),
			as:   new(*client.PrincipalError),
			want: []string{"no service principal rcmd/nosuchhost.example.test@EXAMPLE.TEST (KDC_ERR_S_PRINCIPAL_UNKNOWN)", "Options.ServicePrincipal"},
		},
		{
			name: "wrong principal for gssocks",
			run:  dial(gw, with(alice, func(o *client.Options) { o.ServicePrincipal = "socks" }), echo),
			as:   new(*client.AuthError),
			want: []string{"refused the Kerberos ticket for socks/localhost@EXAMPLE.TEST", "keytab lacks the current key of socks/localhost@EXAMPLE.TEST"},
		},
		{
			name: "wrong principal for Dante",
			run:  dial(dnt, with(alice, func(o *client.Options) { o.ServicePrincipal = "socks" }), echo),
			as:   new(*client.AuthError),
			want: []string{"refused the Kerberos ticket for socks/localhost@EXAMPLE.TEST"},
		},
		{
			name: "wrong password",
			run:  dial(gw, client.Options{Principal: "alice", Password: "not-her-password"}, echo),
			as:   new(*client.LoginError),
			want: []string{"Kerberos login as alice@EXAMPLE.TEST failed", "password or the keytab's key is wrong"},
		},
		{
			name: "clock behind the KDC (AS-REP)",
			run:  dial(gw, with(alice, func(o *client.Options) { o.Now = skewed(-10 * time.Minute) }), echo),
			as:   new(*client.ClockSkewError),
			want: []string{"clock skew too great between this machine and the KDC", "10m0s behind the KDC's", "timedatectl set-ntp true"},
		},
		{
			name: "clock ahead of the KDC (pre-authentication)",
			run:  dial(gw, client.Options{Principal: userPreauth, Password: password(userPreauth), Now: skewed(10 * time.Minute)}, echo),
			as:   new(*client.ClockSkewError),
			want: []string{"clock skew too great between this machine and the KDC", "10m0s ahead of the KDC's"},
		},
		{
			name: "clock behind the KDC (TGS-REQ from a ticket cache)",
			run:  dial(gw, client.Options{CCache: ccache, Now: skewed(-10 * time.Minute)}, echo),
			as:   new(*client.ClockSkewError),
			want: []string{"clock skew too great between this machine and the KDC", "10m0s behind the KDC's"},
		},
		{
			name: "clock behind gssocks",
			run:  func(t *testing.T) error { return gatewaySkew(t, gw) },
			as:   new(*client.AuthError),
			want: []string{"refused the Kerberos ticket for rcmd/localhost@EXAMPLE.TEST", "its clock is more than 5 minutes off"},
		},
		{
			name: "clock behind Dante",
			run:  func(t *testing.T) error { return gatewaySkew(t, dnt) },
			as:   new(*client.AuthError),
			want: []string{"refused the Kerberos ticket for rcmd/localhost@EXAMPLE.TEST"},
		},
		{
			name: "KDC unreachable",
			run:  dial(gw, with(alice, func(o *client.Options) { o.Krb5Conf = unreachableConf }), echo),
			as:   new(*client.KDCUnreachableError),
			want: []string{"cannot reach a KDC of realm EXAMPLE.TEST (tried " + closedPort + ")", "connection refused", "kdc lines of [realms] in " + unreachableConf},
		},
		{
			name: "level refused by gssocks",
			run:  dial(gw, client.Options{Principal: userPreauth, Password: password(userPreauth)}, echo),
			as:   new(*client.LevelError),
			want: []string{"protection level refused: asked confidentiality and the gateway refused it", "RFC 1961 abort", "try another level (Options.Level)"},
		},
		{
			name: "rule denied",
			run:  dial(gw, alice, "127.0.0.3:9"),
			as:   new(*client.ReplyError),
			want: []string{"reply 0x02 (not allowed by ruleset, RFC 1928 §6)", "rules do not allow this destination"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t)
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			if !errors.As(err, tc.as) {
				t.Fatalf("error %T is not %T: %v", err, tc.as, err)
			}
			for _, w := range tc.want {
				// The KDC's times have whole seconds: a 10-minute skew
				// may show as 9m59s.
				re := regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(w), "10m0s", "(9m59s|10m0s|10m1s)"))
				if !re.MatchString(err.Error()) {
					t.Errorf("message lacks %q", w)
				}
			}
		})
	}
}

// TestLevelRefusedByDante: Dante's sockd allows integrity only and closes
// the connection on a request for confidentiality; a Dialer that accepts
// integrity gets it.
func TestLevelRefusedByDante(t *testing.T) {
	e := env(t)
	in := danteInstall(t)
	addr, stop, err := startSockd(e, in, "sockd-integrity", []string{"integrity"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	echo := testutil.EchoServer(t)
	d := newDialer(t, addr, "", client.Options{})
	_, err = d.DialContext(context.Background(), "tcp", echo)
	var le *client.LevelError
	if !errors.As(err, &le) || !errors.Is(err, encap.ErrLevelRefused) || le.Answered {
		t.Fatalf("got %v", err)
	}
	t.Logf("error: %v", err)
	for _, w := range []string{"asked confidentiality and the gateway refused it", "closed the connection without an answer", "try another level (Options.Level)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q", w)
		}
	}
	d = newDialer(t, addr, "", client.Options{Level: encap.LevelIntegrity})
	c, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoRoundTrip(t, c, 10000)
}

// TestDowngradeRefused: a gateway that grants less than MinLevel (gssocks
// answering level 0 to a rule with auth_only) ends the session; the error
// names the levels. A client that accepts level 0 (asking confidentiality) gets it.
func TestDowngradeRefused(t *testing.T) {
	gw := gssocksGateway(t).addr
	echo := testutil.EchoServer(t)
	bob := client.Options{Principal: "bob", Password: password("bob")}
	d := newDialer(t, gw, "", bob)
	_, err := d.DialContext(context.Background(), "tcp", echo)
	var le *client.LevelError
	if !errors.As(err, &le) || !le.Answered || le.Granted != encap.LevelClear || !errors.Is(err, encap.ErrLevelRefused) {
		t.Fatalf("got %v", err)
	}
	t.Logf("error: %v", err)
	for _, w := range []string{"asked confidentiality, the gateway granted clear, this client accepts only confidentiality", "accept a lower level (Options.MinLevel)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message lacks %q", w)
		}
	}
	bob.AcceptClear = true
	d = newDialer(t, gw, "", bob)
	c, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoRoundTrip(t, c, 1000)
	var re *client.ReplyError
	if _, err := d.DialContext(context.Background(), "tcp", "127.0.0.3:9"); !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
		t.Fatalf("denied destination: %v", err)
	}
}
