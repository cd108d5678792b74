package testenv

import (
	"regexp"
	"strings"
	"testing"
)

// startHierarchy starts three realms on one domain hierarchy, with the
// trusts A → CORP and CORP → B, alice in A, carol in CORP and
// rcmd/localhost in B. carol reaches B directly, alice through CORP (MIT's
// client asks each KDC on the path for the target realm first, so a
// direct A → B key would cut the path short).
func startHierarchy(t *testing.T) (a, corp, b *Realm) {
	t.Helper()
	a = StartForTest(t, Options{Realm: "A.CORP.TEST"})
	corp = StartForTest(t, Options{Realm: "CORP.TEST"})
	b = StartForTest(t, Options{Realm: "B.CORP.TEST"})
	for _, step := range []func() error{
		func() error { return a.AddUser("alice", "alice-password-1") },
		func() error { return corp.AddUser("carol", "carol-password-1") },
		func() error { return b.AddService("rcmd/localhost") },
		func() error { return Trust(a, corp) },
		func() error { return Trust(corp, b) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return a, corp, b
}

// TestCrossRealm: users of CORP and A get tickets for a service of B,
// directly and through CORP; B's KDC records CORP in the transited field
// and, the path being on the hierarchy, sets TRANSITED-POLICY-CHECKED
// (klist's T) on both.
func TestCrossRealm(t *testing.T) {
	a, corp, b := startHierarchy(t)
	for _, tc := range []struct {
		name   string
		client *Realm
		user   string
		via    []*Realm
		tgts   []string
	}{
		{"direct", corp, "carol", nil, []string{"krbtgt/B.CORP.TEST@CORP.TEST"}},
		// MIT keeps the last cross-realm TGT of the path in the ccache,
		// not the ones before it.
		{"through CORP", a, "alice", []*Realm{corp}, []string{"krbtgt/B.CORP.TEST@CORP.TEST"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := CrossRealmConfig(tc.client, b, tc.via...)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := tc.client.KinitWith(conf, tc.user, tc.user+"-password-1")
			if err != nil {
				t.Fatal(err)
			}
			env := tc.client.Env(conf, "FILE:"+cc)
			run(t, tc.client, env, "kvno", "rcmd/localhost@B.CORP.TEST")
			out := run(t, tc.client, env, "klist", "-f")
			for _, tgt := range tc.tgts {
				if !strings.Contains(out, tgt) {
					t.Errorf("no %s in\n%s", tgt, out)
				}
			}
			if f := ticketFlags(out, "rcmd/localhost@B.CORP.TEST"); !strings.Contains(f, "T") {
				t.Fatalf("service ticket flags %q (want T, transited policy checked):\n%s", f, out)
			}
		})
	}
}

// ticketFlags returns the flags klist -f shows for service.
func ticketFlags(klist, service string) string {
	m := regexp.MustCompile(regexp.QuoteMeta(service) + `\n[^\n]*Flags: (\S+)`).FindStringSubmatch(klist)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestAnonymousPKINIT: kinit -n against a realm with anonymous PKINIT
// gets a ticket for the anonymous principal, flagged anonymous (a).
func TestAnonymousPKINIT(t *testing.T) {
	RequirePKINIT(t)
	r := StartForTest(t, Options{Realm: "ANON.TEST", AnonymousPKINIT: true})
	if err := r.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	cc, err := r.KinitAnonymous()
	if err != nil {
		t.Fatal(err)
	}
	env := r.Env("", "FILE:"+cc)
	run(t, r, env, "kvno", "rcmd/localhost")
	out := run(t, r, env, "klist", "-f")
	if !strings.Contains(out, "Default principal: WELLKNOWN/ANONYMOUS@WELLKNOWN:ANONYMOUS") {
		t.Fatalf("klist:\n%s", out)
	}
	if f := ticketFlags(out, "rcmd/localhost@ANON.TEST"); !strings.Contains(f, "a") {
		t.Fatalf("service ticket flags %q (want a, anonymous):\n%s", f, out)
	}
	// Without the option there is no anonymous PKINIT to ask for.
	plain := StartForTest(t, Options{Realm: "PLAIN.TEST"})
	if _, err := plain.KinitAnonymous(); err == nil {
		t.Fatal("KinitAnonymous on a realm without AnonymousPKINIT")
	}
}
