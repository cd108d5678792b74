package gssapi

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/mitpeer"
	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// startMIT starts MIT's initiator for rcmd@localhost with the
// environment env (KRB5_CONFIG and KRB5CCNAME of the client).
func startMIT(t *testing.T, env []string, flags ...string) (*mitpeer.Peer, []byte) {
	t.Helper()
	bin := mitpeer.Require(t)
	p, tok, err := mitpeer.StartInitiator(bin, env, "rcmd@localhost", flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, tok
}

// acceptorFor is an acceptor on the keytab at path.
func acceptorFor(t *testing.T, path string, cfg AcceptorConfig) *Acceptor {
	t.Helper()
	kt, err := LoadKeytab(path)
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

// TestCrossRealmTrust: three MIT realms on one hierarchy, A.CORP.TEST →
// CORP.TEST → B.CORP.TEST, the gateway's keytab in B. carol of CORP comes
// directly, alice of A through CORP (her ticket's transited field names
// CORP.TEST). Each is accepted only when her realm and every realm of the
// path are trusted, and the refusal names the realm that is not.
func TestCrossRealmTrust(t *testing.T) {
	a := testenv.StartForTest(t, testenv.Options{Realm: "A.CORP.TEST"})
	corp := testenv.StartForTest(t, testenv.Options{Realm: "CORP.TEST"})
	b := testenv.StartForTest(t, testenv.Options{Realm: "B.CORP.TEST"})
	keytab := filepath.Join(b.Dir, "gssocks.keytab")
	for _, step := range []func() error{
		func() error { return a.AddUser("alice", alicePassword) },
		func() error { return corp.AddUser("carol", "carol-password-1") },
		func() error { return b.AddService("rcmd/localhost") },
		func() error { return b.ExportKeytab(keytab, "rcmd/localhost") },
		func() error { return testenv.Trust(a, corp) },
		func() error { return testenv.Trust(corp, b) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	login := func(client *testenv.Realm, user, password string, via ...*testenv.Realm) []string {
		conf, err := testenv.CrossRealmConfig(client, b, via...)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := client.KinitWith(conf, user, password)
		if err != nil {
			t.Fatal(err)
		}
		return client.Env(conf, "FILE:"+cc)
	}
	carol := login(corp, "carol", "carol-password-1")
	alice := login(a, "alice", alicePassword, corp)

	for _, tc := range []struct {
		name      string
		env       []string
		trusted   []string
		spnego    bool
		refused   string // the realm named, "" when accepted
		transited bool
		client    string
		path      []string
	}{
		{name: "direct, nothing trusted", env: carol, refused: "CORP.TEST"},
		{name: "direct, trusted", env: carol, trusted: []string{"CORP.TEST"}, client: "carol@CORP.TEST"},
		{name: "direct, trusted, SPNEGO", env: carol, trusted: []string{"CORP.TEST"}, spnego: true, client: "carol@CORP.TEST"},
		{name: "direct, other realm trusted", env: carol, trusted: []string{"A.CORP.TEST"}, refused: "CORP.TEST"},
		{name: "transit, nothing trusted", env: alice, refused: "A.CORP.TEST"},
		{name: "transit, client realm trusted", env: alice, trusted: []string{"A.CORP.TEST"}, refused: "CORP.TEST", transited: true},
		{name: "transit, path trusted", env: alice, trusted: []string{"CORP.TEST"}, refused: "A.CORP.TEST"},
		{name: "transit, all trusted", env: alice, trusted: []string{"CORP.TEST", "A.CORP.TEST"}, client: "alice@A.CORP.TEST", path: []string{"CORP.TEST"}},
		{name: "transit, case differs", env: alice, trusted: []string{"corp.test", "A.CORP.TEST"}, refused: "CORP.TEST", transited: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var flags []string
			if tc.spnego {
				flags = append(flags, "--spnego")
			}
			mit, tok := startMIT(t, tc.env, flags...)
			ctx, rep, err := acceptorFor(t, keytab, AcceptorConfig{TrustedRealms: tc.trusted}).Accept(tok, netip.Addr{})
			if tc.refused != "" {
				var re *RealmError
				if !errors.As(err, &re) || !errors.Is(err, ErrRealmNotTrusted) || re.Realm != tc.refused || re.Transited != tc.transited {
					t.Fatalf("got %v (%+v), want realm %s refused (transited %t)", err, re, tc.refused, tc.transited)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.refused)) {
					t.Fatalf("error does not name the realm: %v", err)
				}
				checkErrorHygiene(t, err, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := ctx.Trust()
			if ctx.Client().String() != tc.client || tr.ServiceRealm != "B.CORP.TEST" || tr.ClientRealm != ctx.Client().Realm ||
				!slices.Equal(tr.Transited, tc.path) || !tr.PolicyChecked || !tr.CrossRealm() || ctx.ClientKind() != ClientUser {
				t.Fatalf("context %s, trust %+v, kind %s", ctx, tr, ctx.ClientKind())
			}
			if ctx.SPNEGO() != tc.spnego {
				t.Fatalf("SPNEGO %t", ctx.SPNEGO())
			}
			if tc.spnego && parseNegTokenResp(t, rep).responseToken == nil {
				t.Fatal("SPNEGO answer without the AP-REP")
			}
			if _, err := mit.Step(rep); err != nil {
				t.Fatal(err)
			}
			exchange(t, ctx, mit)
		})
	}
}

// TestAnonymousTickets: kinit -n (anonymous PKINIT against a real KDC)
// gives a ticket for WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS with the
// anonymous flag, which is refused by default and accepted, as an
// anonymous client, only with AllowAnonymous.
func TestAnonymousTickets(t *testing.T) {
	testenv.RequirePKINIT(t)
	r := testenv.StartForTest(t, testenv.Options{Realm: "ANON.TEST", AnonymousPKINIT: true})
	keytab := filepath.Join(r.Dir, "gssocks.keytab")
	if err := r.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if err := r.ExportKeytab(keytab, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	cc, err := r.KinitAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	env := r.Env("", "FILE:"+cc)

	_, tok := startMIT(t, env)
	_, _, err = acceptorFor(t, keytab, AcceptorConfig{AllowServiceClients: true}).Accept(tok, netip.Addr{})
	if !errors.Is(err, ErrAnonymous) || !strings.Contains(err.Error(), "WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS") {
		t.Fatalf("anonymous ticket, default: %v", err)
	}
	checkErrorHygiene(t, err, nil)

	mit, tok := startMIT(t, env, "--spnego")
	ctx, rep, err := acceptorFor(t, keytab, AcceptorConfig{AllowAnonymous: true}).Accept(tok, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.ClientKind() != ClientAnonymous || ctx.Client().String() != "WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS" ||
		ctx.Trust().ClientRealm != "WELLKNOWN:ANONYMOUS" || ctx.Trust().ServiceRealm != "ANON.TEST" {
		t.Fatalf("anonymous context %s, kind %s, trust %+v", ctx, ctx.ClientKind(), ctx.Trust())
	}
	if _, err := mit.Step(rep); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx, mit)
}

// serviceClients holds the client credentials of TestServiceClients in
// the shared live realm, made once per test binary.
var serviceClients struct {
	once     sync.Once
	err      error
	host, tg string // ccache paths
}

// TestServiceClients: services that log in with their keytab keys (kinit
// -k) are not users: host/ws1.localhost is refused by default and
// accepted as a service client with AllowServiceClients; a krbtgt
// principal as client is refused always.
func TestServiceClients(t *testing.T) {
	r := liveRealm(t)
	serviceClients.once.Do(func() {
		kt := filepath.Join(r.Dir, "clients.keytab")
		for _, step := range []func() error{
			func() error { return r.AddService("host/ws1.localhost") },
			func() error { return r.AddService("krbtgt/OTHER.TEST") },
			func() error { return r.ExportKeytab(kt, "host/ws1.localhost", "krbtgt/OTHER.TEST") },
			func() (err error) { serviceClients.host, err = r.KinitKeytab("host/ws1.localhost", kt); return err },
			func() (err error) { serviceClients.tg, err = r.KinitKeytab("krbtgt/OTHER.TEST", kt); return err },
		} {
			if serviceClients.err = step(); serviceClients.err != nil {
				return
			}
		}
	})
	if serviceClients.err != nil {
		t.Fatal(serviceClients.err)
	}
	for _, tc := range []struct {
		name, ccache string
		allow        bool
		client       string
		want         error
	}{
		{"host, default", serviceClients.host, false, "host/ws1.localhost", ErrNotAUser},
		{"host, allowed", serviceClients.host, true, "host/ws1.localhost", nil},
		{"krbtgt, default", serviceClients.tg, false, "krbtgt/OTHER.TEST", ErrNotAUser},
		{"krbtgt, allowed", serviceClients.tg, true, "krbtgt/OTHER.TEST", ErrNotAUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mit, tok := startMIT(t, r.Env("", "FILE:"+tc.ccache))
			ctx, rep, err := liveAcceptor(t, AcceptorConfig{AllowServiceClients: tc.allow, AllowAnonymous: true}).Accept(tok, netip.Addr{})
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.client) {
					t.Fatalf("got %v, want %v naming %s", err, tc.want, tc.client)
				}
				checkErrorHygiene(t, err, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ctx.ClientKind() != ClientService || ctx.Client().Name != tc.client {
				t.Fatalf("context %s kind %s", ctx, ctx.ClientKind())
			}
			if _, err := mit.Step(rep); err != nil {
				t.Fatal(err)
			}
			exchange(t, ctx, mit)
		})
	}
}

// TestClassifyClient pins which ticket clients are users.
func TestClassifyClient(t *testing.T) {
	anonFlag := types.NewKrbFlags()
	types.SetFlag(&anonFlag, ticketFlagAnonymous)
	for _, tc := range []struct {
		names []string
		typ   int32
		realm string
		flags asn1.BitString
		want  ClientKind
	}{
		{[]string{"alice"}, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientUser},
		{[]string{"alice@corp.example"}, nametype.KRB_NT_ENTERPRISE, "R", types.NewKrbFlags(), ClientUser},
		{[]string{"WS1$"}, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientUser},
		{[]string{"alice"}, nametype.KRB_NT_PRINCIPAL, "R", anonFlag, ClientAnonymous},
		{[]string{"WELLKNOWN", "ANONYMOUS"}, ntWellknown, "WELLKNOWN:ANONYMOUS", types.NewKrbFlags(), ClientAnonymous},
		{[]string{"WELLKNOWN", "ANONYMOUS"}, ntWellknown, "R", types.NewKrbFlags(), ClientAnonymous},
		{[]string{"alice"}, nametype.KRB_NT_PRINCIPAL, "WELLKNOWN:ANONYMOUS", types.NewKrbFlags(), ClientAnonymous},
		{[]string{"WELLKNOWN", "FEDERATED"}, ntWellknown, "R", types.NewKrbFlags(), ClientService},
		{[]string{"host", "ws1"}, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientService},
		{[]string{"alice", "admin"}, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientService},
		{[]string{"krbtgt", "R"}, nametype.KRB_NT_SRV_INST, "R", types.NewKrbFlags(), ClientService},
		{[]string{"krbtgt"}, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientService},
		{[]string{"ws1"}, nametype.KRB_NT_SRV_HST, "R", types.NewKrbFlags(), ClientService},
		{[]string{"svc"}, nametype.KRB_NT_SRV_INST, "R", types.NewKrbFlags(), ClientService},
		{[]string{"svc"}, ntSrvHstDomain, "R", types.NewKrbFlags(), ClientService},
		{nil, nametype.KRB_NT_PRINCIPAL, "R", types.NewKrbFlags(), ClientService},
	} {
		etp := messages.EncTicketPart{CName: types.PrincipalName{NameType: tc.typ, NameString: tc.names}, CRealm: tc.realm, Flags: tc.flags}
		if got := classifyClient(&etp); got != tc.want {
			t.Errorf("%v type %d realm %s: %s, want %s", tc.names, tc.typ, tc.realm, got, tc.want)
		}
	}
}

// TestDecodeTransited pins the DOMAIN-X500-COMPRESS decoder (RFC 4120
// §3.3.3.2) on the RFC's examples and on what it refuses.
func TestDecodeTransited(t *testing.T) {
	for _, tc := range []struct {
		contents       string
		typ            int32
		client, server string
		want           []string
		why            string
	}{
		{"", 1, "A", "B", nil, ""},
		{"", 0, "A", "B", nil, ""},
		{"EDU,MIT.,ATHENA.,WASHINGTON.EDU,CS.", 1, "X", "Y", []string{"EDU", "MIT.EDU", "ATHENA.MIT.EDU", "WASHINGTON.EDU", "CS.WASHINGTON.EDU"}, ""},
		{"/COM,/HP,/APOLLO, /COM/DEC", 1, "X", "Y", []string{"/COM", "/COM/HP", "/COM/HP/APOLLO", "/COM/DEC"}, ""},
		{"CORP.TEST", 1, "A.CORP.TEST", "B.CORP.TEST", []string{"CORP.TEST"}, ""},
		// Empty names stand for the hierarchy between their neighbours.
		{",EDU", 1, "ATHENA.MIT.EDU", "CS.WASHINGTON.EDU", []string{"MIT.EDU", "EDU"}, ""},
		{"EDU,", 1, "ATHENA.MIT.EDU", "CS.WASHINGTON.EDU", []string{"EDU", "WASHINGTON.EDU"}, ""},
		{",", 1, "A.X.CORP.TEST", "B.Y.CORP.TEST", []string{"X.CORP.TEST", "CORP.TEST", "Y.CORP.TEST"}, ""},
		{`A\,B,C`, 1, "X", "Y", []string{"A,B", "C"}, ""},
		{"A.TEST", 2, "X", "Y", nil, "encoding type 2"},
		{",,", 1, "A.X.TEST", "B.TEST", []string{"X.TEST", "TEST"}, ""},
		{",", 1, "A.ONE", "B.TWO", nil, "share no parent"},
		{", /COM", 1, "A.TEST", "B.TEST", nil, "X.500"},
		{strings.Repeat("x", maxTransitedBytes+1), 1, "A", "B", nil, "bytes"},
		{strings.Repeat("A,", maxTransitRealms) + "A", 1, "X", "Y", nil, "more than"},
		{strings.Repeat("LONGLABEL.,", 30), 1, "X", "Y", nil, "more than 255 bytes"},
	} {
		got, why := decodeTransited(messages.TransitedEncoding{TRType: tc.typ, Contents: []byte(tc.contents)}, tc.client, tc.server)
		if !slices.Equal(got, tc.want) || (why == "") != (tc.why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%q (type %d): %q %q, want %q %q", tc.contents, tc.typ, got, why, tc.want, tc.why)
		}
	}
}

// FuzzDecodeTransited: the decoder never panics and keeps its bounds.
func FuzzDecodeTransited(f *testing.F) {
	f.Add("EDU,MIT.,ATHENA.,WASHINGTON.EDU,CS.", "ATHENA.MIT.EDU", "CS.WASHINGTON.EDU")
	f.Add(",EDU, /COM", "A.B.C", "D.C")
	f.Add(`\,,\\,.`, "", "")
	f.Fuzz(func(t *testing.T, contents, client, server string) {
		got, why := decodeTransited(messages.TransitedEncoding{TRType: 1, Contents: []byte(contents)}, client, server)
		if why != "" && got != nil {
			t.Fatal("realms and a reason")
		}
		if len(got) > maxTransitRealms {
			t.Fatalf("%d realms", len(got))
		}
	})
}

// TestTrustedRealmsConfig: trusted realms must be plain realm names.
func TestTrustedRealmsConfig(t *testing.T) {
	kt := goldenKeytab(t)
	for _, bad := range []string{"", "*", "CORP.*", "A@B", "WELLKNOWN:ANONYMOUS", "A B", "A\nB"} {
		if _, err := NewAcceptor(AcceptorConfig{Keytab: kt, TrustedRealms: []string{bad}}); !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := NewAcceptor(AcceptorConfig{Keytab: kt, TrustedRealms: []string{"CORP.EXAMPLE.COM", "ad.example.com"}}); err != nil {
		t.Fatal(err)
	}
}
