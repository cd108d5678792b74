package gssapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/mitpeer"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
)

// The live tests share one throwaway MIT realm per test binary.
var live struct {
	once   sync.Once
	err    error
	realm  *testenv.Realm
	keytab string
}

const (
	alicePassword = "alice-password-1"
	bobPassword   = "bob-password-1"
)

var mitEnctypes = []struct {
	id   int32
	name string
}{
	{EnctypeAES128SHA1, "aes128-cts-hmac-sha1-96"},
	{EnctypeAES256SHA1, "aes256-cts-hmac-sha1-96"},
	{EnctypeAES128SHA256, "aes128-cts-hmac-sha256-128"},
	{EnctypeAES256SHA384, "aes256-cts-hmac-sha384-192"},
}

func TestMain(m *testing.M) {
	code := m.Run()
	if live.realm != nil {
		live.realm.Close()
	}
	os.Exit(code)
}

// liveRealm returns the shared realm: alice, rcmd/localhost and
// socks/localhost, and a keytab with both services. RC4 is allowed so the
// refusal of RC4 session keys can be tested.
func liveRealm(t *testing.T) *testenv.Realm {
	t.Helper()
	testenv.Require(t)
	live.once.Do(func() {
		r, err := testenv.Start(testenv.Options{AllowRC4: true})
		if err != nil {
			live.err = err
			return
		}
		live.realm = r
		live.keytab = filepath.Join(r.Dir, "gssocks.keytab")
		for _, step := range []func() error{
			func() error { return r.AddUser("alice", alicePassword) },
			func() error { return r.AddUser("bob", bobPassword) },
			func() error { return r.AddService("rcmd/localhost") },
			func() error { return r.AddService("socks/localhost") },
			func() error { return r.ExportKeytab(live.keytab, "rcmd/localhost", "socks/localhost") },
			// For the keytab lookup rules of mitcompat_test.go: a
			// service whose kvno needs more than 8 bits, and one whose
			// name has capitals.
			func() error { return r.AddService(kvno257Service) },
			func() error { return kadmin(r, "modprinc -kvno 257 "+kvno257Service) },
			func() error { return r.AddService(caseService) },
		} {
			if live.err = step(); live.err != nil {
				return
			}
		}
	})
	if live.err != nil {
		t.Fatalf("MIT realm: %v", live.err)
	}
	return live.realm
}

func liveAcceptor(t *testing.T, cfg AcceptorConfig) *Acceptor {
	t.Helper()
	kt, err := LoadKeytab(live.keytab)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keytab = kt
	a, err := NewAcceptor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mitInitiator kinits alice for the enctype and starts MIT's initiator for
// rcmd@localhost; it returns the peer and its AP-REQ.
func mitInitiator(t *testing.T, r *testenv.Realm, enctype string, flags ...string) (*mitpeer.Peer, []byte) {
	t.Helper()
	bin := mitpeer.Require(t)
	conf, err := r.ClientConfig(enctype)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := r.Kinit("alice", alicePassword, enctype)
	if err != nil {
		t.Fatal(err)
	}
	p, tok, err := mitpeer.StartInitiator(bin, r.Env(conf, cc), "rcmd@localhost", flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, tok
}

var interopSizes = []int{0, 1, 15, 16, 17, 4096, 65471, 65503}

// exchange runs wrap/unwrap and MIC in both directions between our context
// and MIT's, sealed and not, over interopSizes; MIT's tokens are also
// unwrapped after a Windows-style rotation by RRC 12 and 28, and ours are
// given to MIT rotated too.
func exchange(t *testing.T, ours *Context, mit *mitpeer.Peer) {
	t.Helper()
	for _, conf := range []bool{false, true} {
		for _, n := range interopSizes {
			msg := make([]byte, n)
			rand.Read(msg)
			what := fmt.Sprintf("conf=%t size=%d", conf, n)

			tok, err := ours.Wrap(nil, msg, conf)
			if err != nil {
				t.Fatal(err)
			}
			got, mconf, err := mit.Unwrap(tok)
			if err != nil || mconf != conf || !bytes.Equal(got, msg) {
				t.Fatalf("%s: MIT unwrapping our token: %v (conf %t, equal %t)", what, err, mconf, bytes.Equal(got, msg))
			}
			for _, rrc := range []int{0, 12, 28} {
				tok, err := mit.Wrap(conf, msg)
				if err != nil {
					t.Fatal(err)
				}
				if rrc != 0 {
					tok = rotateRight(tok, rrc)
				}
				got, sealed, err := ours.Unwrap(nil, tok)
				if err != nil || sealed != conf || !bytes.Equal(got, msg) {
					t.Fatalf("%s RRC %d: our unwrap of MIT's token: %v", what, rrc, err)
				}
			}
			if n > 0 {
				tok, _ = ours.Wrap(nil, msg, conf)
				if got, _, err := mit.Unwrap(rotateRight(tok, 28)); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%s: MIT unwrapping our token rotated by 28: %v", what, err)
				}
			}
		}
	}
	msg := []byte("MIC me")
	if err := mit.VerifyMIC(msg, ours.GetMIC(nil, msg)); err != nil {
		t.Fatalf("MIT verifying our MIC: %v", err)
	}
	mic, err := mit.MIC(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.VerifyMIC(msg, mic); err != nil {
		t.Fatalf("verifying MIT's MIC: %v", err)
	}
	// A token MIT refuses: ours, one bit flipped.
	tok, _ := ours.Wrap(nil, msg, true)
	tok[len(tok)-1] ^= 1
	if _, _, err := mit.Unwrap(tok); err == nil {
		t.Fatal("MIT accepted a bit-flipped token of ours")
	}
}

// TestMITInitiatorOurAcceptor: MIT's gss_init_sec_context against our
// acceptor, per enctype, with and without an acceptor subkey.
func TestMITInitiatorOurAcceptor(t *testing.T) {
	r := liveRealm(t)
	for _, et := range mitEnctypes {
		for _, noSubkey := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/subkey=%t", et.name, !noSubkey), func(t *testing.T) {
				mit, tok := mitInitiator(t, r, et.name)
				acc := liveAcceptor(t, AcceptorConfig{NoAcceptorSubkey: noSubkey})
				ctx, rep, err := acc.Accept(tok, netip.MustParseAddr("127.0.0.1"))
				if err != nil {
					t.Fatalf("our acceptor refuses MIT's AP-REQ: %v", err)
				}
				if _, err := mit.Step(rep); err != nil {
					t.Fatalf("MIT refuses our AP-REP: %v", err)
				}
				if !mit.Ready() {
					t.Fatal("MIT initiator not ready after our AP-REP")
				}
				if ctx.Client().String() != "alice@"+r.Name || ctx.Service().String() != "rcmd/localhost@"+r.Name {
					t.Fatalf("context %s", ctx)
				}
				if ctx.Enctype() != et.id || ctx.AcceptorSubkey() == noSubkey {
					t.Fatalf("enctype %d, acceptor subkey %t", ctx.Enctype(), ctx.AcceptorSubkey())
				}
				if want := FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg; ctx.Flags()&want != want {
					t.Fatalf("flags %s", ctx.Flags())
				}
				if ctx.AD() != nil || ctx.PACError() != nil {
					t.Fatalf("MIT ticket: AD %+v, PAC error %v", ctx.AD(), ctx.PACError())
				}
				exchange(t, ctx, mit)
				enc, sub, err := mit.Info()
				if err != nil {
					t.Fatal(err)
				}
				if int32(enc) != et.id || sub == noSubkey {
					t.Fatalf("MIT's view: enctype %d, acceptor subkey %t", enc, sub)
				}
			})
		}
	}
}

// TestMITInitiatorNoMutual: without mutual authentication MIT's context is
// ready after its first token and both sides use the initiator's sequence
// number and subkey.
func TestMITInitiatorNoMutual(t *testing.T) {
	r := liveRealm(t)
	mit, tok := mitInitiator(t, r, "aes256-cts-hmac-sha1-96", "--no-mutual")
	if !mit.Ready() {
		t.Fatal("MIT initiator without mutual should be ready at once")
	}
	ctx, rep, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok, netip.Addr{})
	if err != nil || len(rep) == 0 {
		t.Fatalf("accept: %v (AP-REP %d bytes)", err, len(rep))
	}
	if ctx.AcceptorSubkey() || ctx.Flags()&FlagMutual != 0 {
		t.Fatalf("no-mutual context: subkey %t flags %s", ctx.AcceptorSubkey(), ctx.Flags())
	}
	// The context ends with the ticket: MIT's KDC issues it for the
	// realm's ticket lifetime.
	end := ctx.Expiry()
	if d := time.Until(end); d < time.Hour || d > 25*time.Hour {
		t.Fatalf("ticket end %s", end)
	}
	if err := ctx.CheckExpiry(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ctx.CheckExpiry(end); !errors.Is(err, ErrContextExpired) {
		t.Fatalf("at the ticket's end: %v", err)
	}
	exchange(t, ctx, mit)
}

// gokrb5Ticket logs alice in with gokrb5 and gets a service ticket for
// rcmd/localhost whose session key has the enctype.
func gokrb5Ticket(t *testing.T, r *testenv.Realm, enctype string) InitiatorConfig {
	t.Helper()
	return gokrb5TicketFor(t, r, "alice", alicePassword, "rcmd/localhost", enctype)
}

// gokrb5TicketFor gets a service ticket for user from the realm's KDC with
// gokrb5's client (which asks for the service name exactly as given).
func gokrb5TicketFor(t *testing.T, r *testenv.Realm, user, password, service, enctype string) InitiatorConfig {
	t.Helper()
	confPath, err := r.ClientConfig(enctype)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword(user, r.Name, password, cfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		t.Fatalf("gokrb5 login: %v", err)
	}
	tkt, key, err := cl.GetServiceTicket(service)
	if err != nil {
		t.Fatalf("gokrb5 service ticket: %v", err)
	}
	return InitiatorConfig{Client: Principal{Name: user, Realm: r.Name}, Ticket: tkt, SessionKey: key}
}

// kadmin runs one kadmin.local query on the realm; kadmin.local exits 0
// when a query fails, so its output is checked for an error line.
func kadmin(r *testenv.Realm, query string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.Run(ctx, nil, "kadmin.local", "-r", r.Name, "-q", query)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if cmd, _, ok := strings.Cut(line, ": "); ok && (cmd == "modify_principal" || cmd == "modprinc" || cmd == "kadmin.local") {
			return fmt.Errorf("kadmin.local -q %q: %s", query, out)
		}
	}
	return nil
}

// TestOurInitiatorMITAcceptor: our initiator against MIT's
// gss_accept_sec_context, per enctype.
func TestOurInitiatorMITAcceptor(t *testing.T) {
	r := liveRealm(t)
	bin := mitpeer.Require(t)
	for _, et := range mitEnctypes {
		t.Run(et.name, func(t *testing.T) {
			icfg := gokrb5Ticket(t, r, et.name)
			if icfg.SessionKey.KeyType != et.id {
				t.Fatalf("session key enctype %d", icfg.SessionKey.KeyType)
			}
			in, tok, err := NewInitiator(icfg)
			if err != nil {
				t.Fatal(err)
			}
			mit, err := mitpeer.StartAcceptor(bin, append(r.Env("", ""), "KRB5_KTNAME=FILE:"+live.keytab))
			if err != nil {
				t.Fatal(err)
			}
			defer mit.Close()
			rep, err := mit.Step(tok)
			if err != nil {
				t.Fatalf("MIT acceptor refuses our AP-REQ: %v", err)
			}
			if mit.ClientName() != "alice@"+r.Name {
				t.Fatalf("MIT says the client is %q", mit.ClientName())
			}
			ctx, err := in.Complete(rep)
			if err != nil {
				t.Fatalf("our initiator refuses MIT's AP-REP: %v", err)
			}
			if !ctx.AcceptorSubkey() || ctx.Enctype() != et.id {
				t.Fatalf("MIT acceptor: subkey %t, enctype %d", ctx.AcceptorSubkey(), ctx.Enctype())
			}
			exchange(t, ctx, mit)
		})
	}
}

// TestAcceptorRefusals: real AP-REQs that must be refused, each with its
// typed error.
func TestAcceptorRefusals(t *testing.T) {
	r := liveRealm(t)
	peer := netip.MustParseAddr("127.0.0.1")
	icfg := gokrb5Ticket(t, r, "aes256-cts-hmac-sha1-96")
	apReq := func(t *testing.T, mutate func(*InitiatorConfig)) []byte {
		c := icfg
		if mutate != nil {
			mutate(&c)
		}
		_, tok, err := NewInitiator(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := []struct {
		name string
		cfg  AcceptorConfig
		tok  func(t *testing.T) []byte
		want error
	}{
		{"client realm mismatch", AcceptorConfig{}, func(t *testing.T) []byte {
			return apReq(t, func(c *InitiatorConfig) { c.Client.Realm = "EVIL.TEST" })
		}, ErrClientMismatch},
		{"client name mismatch", AcceptorConfig{}, func(t *testing.T) []byte {
			return apReq(t, func(c *InitiatorConfig) { c.Client.Name = "bob" })
		}, ErrClientMismatch},
		{"expired ticket", AcceptorConfig{Now: func() time.Time { return time.Now().Add(25 * time.Hour) }}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrTicketExpired},
		{"ticket not yet valid", AcceptorConfig{Now: func() time.Time { return time.Now().Add(-time.Hour) }}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrTicketNotYetValid},
		{"skew beyond limit", AcceptorConfig{Now: func() time.Time { return time.Now().Add(6 * time.Minute) }}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrSkew},
		{"skew beyond a tighter limit", AcceptorConfig{ClockSkew: 10 * time.Second, Now: func() time.Time { return time.Now().Add(30 * time.Second) }}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrSkew},
		{"principal not in allow-list", AcceptorConfig{Principals: []string{"socks/localhost"}}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrPrincipalNotAllowed},
		{"principal in another realm", AcceptorConfig{Principals: []string{"rcmd/localhost@OTHER.TEST"}}, func(t *testing.T) []byte { return apReq(t, nil) }, ErrPrincipalNotAllowed},
		{"bit-flipped authenticator", AcceptorConfig{}, func(t *testing.T) []byte {
			tok := apReq(t, nil)
			tok[len(tok)-20] ^= 1 // inside the authenticator ciphertext, the last field
			return tok
		}, ErrBadIntegrity},
		{"wrong mechanism", AcceptorConfig{}, func(t *testing.T) []byte {
			tok := apReq(t, nil)
			tok[6] ^= 1 // inside the OID (60 82 xx xx 06 09 ...)
			return tok
		}, ErrBadMech},
		{"AP-REP instead of AP-REQ", AcceptorConfig{}, func(t *testing.T) []byte {
			_, rep, err := liveAcceptor(t, AcceptorConfig{}).Accept(apReq(t, nil), peer)
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}, ErrDefectiveToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, rep, err := liveAcceptor(t, c.cfg).Accept(c.tok(t), peer)
			if !errors.Is(err, c.want) || ctx != nil || rep != nil {
				t.Fatalf("got %v (ctx %v, %d bytes), want %v", err, ctx, len(rep), c.want)
			}
		})
	}

	t.Run("replayed AP-REQ", func(t *testing.T) {
		acc := liveAcceptor(t, AcceptorConfig{})
		tok := apReq(t, nil)
		if _, _, err := acc.Accept(slices.Clone(tok), peer); err != nil {
			t.Fatal(err)
		}
		if _, _, err := acc.Accept(tok, peer); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("replay cache full", func(t *testing.T) {
		acc := liveAcceptor(t, AcceptorConfig{ReplayCache: NewReplayCacheWith(ReplayCacheConfig{MaxEntries: 2, MaxPerPrincipal: 2})})
		for i := range 3 {
			_, _, err := acc.Accept(apReq(t, nil), peer)
			if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, ErrReplayCacheFull)) {
				t.Fatalf("AP-REQ %d: %v", i, err)
			}
		}
	})
	t.Run("truncated AP-REQ", func(t *testing.T) {
		acc := liveAcceptor(t, AcceptorConfig{})
		tok := apReq(t, nil)
		for n := range len(tok) {
			if _, _, err := acc.Accept(slices.Clone(tok[:n]), peer); !errors.Is(err, ErrDefectiveToken) && !errors.Is(err, ErrBadMech) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
		}
	})
	t.Run("RC4 session key", func(t *testing.T) {
		mit, tok := mitInitiator(t, r, "arcfour-hmac")
		_ = mit
		_, _, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok, peer)
		var ue *UnsupportedEnctypeError
		if !errors.As(err, &ue) || ue.Enctype != EnctypeRC4HMAC || ue.Role != "session key" {
			t.Fatalf("got %v, want UnsupportedEnctypeError for enctype 23", err)
		}
		if want := "arcfour-hmac"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("error %q does not name %s", err, want)
		}
	})
	t.Run("replay cache is per realm", func(t *testing.T) {
		a := replayKeyOf(Principal{"alice", "A.TEST"}, []byte{1, 2, 3})
		b := replayKeyOf(Principal{"alice", "B.TEST"}, []byte{1, 2, 3})
		if a == b {
			t.Fatal("replay key ignores the client realm")
		}
	})
}
