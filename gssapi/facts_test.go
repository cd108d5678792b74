package gssapi

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
)

func TestParsePrincipal(t *testing.T) {
	good := []struct {
		in   string
		want Principal
		str  string
	}{
		{"rcmd/gw.example.test", Principal{"rcmd/gw.example.test", ""}, "rcmd/gw.example.test"},
		{"rcmd/gw@EXAMPLE.TEST", Principal{"rcmd/gw", "EXAMPLE.TEST"}, "rcmd/gw@EXAMPLE.TEST"},
		{"alice@EXAMPLE.TEST", Principal{"alice", "EXAMPLE.TEST"}, "alice@EXAMPLE.TEST"},
		{"HTTP/a/b", Principal{"HTTP/a/b", ""}, "HTTP/a/b"},
	}
	for _, c := range good {
		p, err := ParsePrincipal(c.in)
		if err != nil || p != c.want || p.String() != c.str {
			t.Errorf("%q: %+v %v (String %q)", c.in, p, err, p.String())
		}
	}
	for _, in := range []string{"", "@R", "a@b@c", "/x", "x/", "a//b", "a\nb@R", "a@R\x00", "rcmd/gw\x7f"} {
		if _, err := ParsePrincipal(in); !errors.Is(err, ErrBadName) || strings.ContainsAny(err.Error(), "\n\x00\x7f") {
			t.Errorf("%q: %v", in, err)
		}
	}
	if c := (Principal{"rcmd/gw", "R"}).Components(); !slices.Equal(c, []string{"rcmd", "gw"}) {
		t.Errorf("components %q", c)
	}
}

func TestMatchPrincipal(t *testing.T) {
	pats := []Principal{{"rcmd/gw", ""}, {"socks/gw", "A.TEST"}}
	cases := []struct {
		p    Principal
		want bool
	}{
		{Principal{"rcmd/gw", "A.TEST"}, true},
		{Principal{"rcmd/gw", "B.TEST"}, true},
		{Principal{"socks/gw", "A.TEST"}, true},
		{Principal{"socks/gw", "B.TEST"}, false},
		{Principal{"RCMD/gw", "A.TEST"}, false}, // case-sensitive, as MIT
		{Principal{"rcmd/gw2", "A.TEST"}, false},
	}
	for _, c := range cases {
		if got := MatchPrincipal(pats, c.p); got != c.want {
			t.Errorf("%v: %t", c.p, got)
		}
	}
	if !MatchPrincipal(nil, Principal{"anything", "R"}) {
		t.Error("no patterns must match every principal")
	}
}

// TestEnctypeTable: the table agrees with the RFC 4121 profiles and with
// gokrb5 on what it can decrypt.
func TestEnctypeTable(t *testing.T) {
	for _, e := range enctypes {
		p, err := lookupProfile(e.id, "test")
		if e.supported != (err == nil) || e.supported != EnctypeSupported(e.id) {
			t.Errorf("%d: supported %t, profile %v", e.id, e.supported, err)
		}
		if err == nil && p.keyLen != e.keyLen {
			t.Errorf("%d: profile key length %d, table %d", e.id, p.keyLen, e.keyLen)
		}
		if e.name == "" || EnctypeName(e.id) != e.name {
			t.Errorf("%d: name %q", e.id, EnctypeName(e.id))
		}
	}
	for _, id := range SupportedEnctypes() {
		if !EnctypeSupported(id) {
			t.Errorf("%d listed but not supported", id)
		}
	}
	if EnctypeSupported(EnctypeRC4HMAC) || EnctypeSupported(EnctypeDES3) || EnctypeSupported(99) || EnctypeName(99) != "unknown" {
		t.Error("RC4, DES3 or an unknown enctype supported")
	}
	for _, id := range []int32{EnctypeDES3, EnctypeRC4HMAC} {
		if _, err := krbcrypto.GetEtype(id); err != nil || !opensTickets(id) {
			t.Errorf("%d: gokrb5 %v", id, err)
		}
	}
	var opens []int32
	for id := range int32(64) {
		if opensTickets(id) {
			opens = append(opens, id)
		}
	}
	if !slices.Equal(opens, []int32{16, 17, 18, 19, 20, 23}) {
		t.Errorf("tickets opened for enctypes %v; UnsupportedEnctypeError says 16-20, 23", opens)
	}
}

func TestKeytabFacts(t *testing.T) {
	rc4 := testKey16
	kt, err := ParseKeytab(keytabBytes(2,
		aesEntry("rcmd/gw@EXAMPLE.TEST", 3, EnctypeAES256SHA1, testKey32),
		aesEntry("rcmd/gw@EXAMPLE.TEST", 3, EnctypeRC4HMAC, rc4),
		aesEntry("legacy/gw@EXAMPLE.TEST", 0, EnctypeRC4HMAC, rc4),
		aesEntry("old/gw@EXAMPLE.TEST", 1, 1, testKey16[:8]),
		aesEntry("other/gw@OTHER.TEST", 5, EnctypeAES128SHA256, testKey16),
	))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		p                            string
		kvno                         uint32
		supported, allowed, accepted bool
		note                         string
	}
	check := func(t *testing.T, facts []KeytabEntryFact, want []row) {
		t.Helper()
		if len(facts) != len(want) {
			t.Fatalf("%d facts", len(facts))
		}
		for i, f := range facts {
			w := want[i]
			if f.Principal.String() != w.p || f.KVNO != w.kvno || f.Supported != w.supported || f.Allowed != w.allowed || f.Accepted != w.accepted || f.Note != w.note {
				t.Errorf("fact %d: %+v, want %+v", i, f, w)
			}
		}
	}

	facts, err := KeytabFacts(kt, nil)
	if err != nil {
		t.Fatalf("no patterns: %v", err)
	}
	check(t, facts, []row{
		{"rcmd/gw@EXAMPLE.TEST", 3, true, true, true, ""},
		{"rcmd/gw@EXAMPLE.TEST", 3, false, true, true, "opens tickets, but contexts need an AES session key"},
		{"legacy/gw@EXAMPLE.TEST", 0, false, true, true, "opens tickets, but contexts need an AES session key"},
		{"old/gw@EXAMPLE.TEST", 1, false, true, false, "enctype not supported"},
		{"other/gw@OTHER.TEST", 5, true, true, true, ""},
	})

	pats := []Principal{{"rcmd/gw", ""}, {"legacy/gw", "EXAMPLE.TEST"}, {"missing/gw", ""}}
	facts, err = KeytabFacts(kt, pats)
	check(t, facts, []row{
		{"rcmd/gw@EXAMPLE.TEST", 3, true, true, true, ""},
		{"rcmd/gw@EXAMPLE.TEST", 3, false, true, true, "opens tickets, but contexts need an AES session key"},
		{"legacy/gw@EXAMPLE.TEST", 0, false, true, true, "opens tickets, but contexts need an AES session key"},
		{"old/gw@EXAMPLE.TEST", 1, false, false, false, "not a configured principal"},
		{"other/gw@OTHER.TEST", 5, true, false, false, "not a configured principal"},
	})
	if !errors.Is(err, ErrNoAESKey) {
		t.Fatalf("error %v", err)
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		ke, ok := errors.AsType[*KeytabKeyError](e)
		if !ok {
			t.Fatalf("%T", e)
		}
		got = append(got, ke.Principal.String()+"="+strconv.Itoa(ke.Keys))
	}
	if !slices.Equal(got, []string{"legacy/gw@EXAMPLE.TEST=1", "missing/gw=0"}) {
		t.Fatalf("missing AES keys: %v (%v)", got, err)
	}
	if !strings.Contains(err.Error(), `the keytab holds 1 keys for "legacy/gw@EXAMPLE.TEST", none of them AES`) ||
		!strings.Contains(err.Error(), `the keytab holds no key for "missing/gw"`) {
		t.Fatalf("message %q", err)
	}

	rc4Only, _ := ParseKeytab(keytabBytes(2, aesEntry("rcmd/gw@EXAMPLE.TEST", 3, EnctypeRC4HMAC, rc4)))
	if _, err := KeytabFacts(rc4Only, nil); !errors.Is(err, ErrNoAESKey) || !strings.Contains(err.Error(), "for any principal") {
		t.Fatalf("RC4-only keytab: %v", err)
	}

	// The acceptor's own view is the same function over its settings.
	a, err := NewAcceptor(AcceptorConfig{Keytab: kt, Principals: []string{"rcmd/gw"}})
	if err != nil {
		t.Fatal(err)
	}
	af, err := a.KeytabFacts()
	if err != nil || !af[0].Accepted || af[2].Allowed || !a.Accepts(Principal{"rcmd/gw", "X"}) || a.Accepts(Principal{"legacy/gw", "EXAMPLE.TEST"}) {
		t.Fatalf("acceptor facts %+v, %v", af, err)
	}
}

func TestNewAcceptorErrors(t *testing.T) {
	if _, err := NewAcceptor(AcceptorConfig{}); !errors.Is(err, ErrBadKeytab) {
		t.Errorf("no keytab: %v", err)
	}
	kt, _ := ParseKeytab([]byte{5, 2})
	if _, err := NewAcceptor(AcceptorConfig{Keytab: kt, Principals: []string{"a//b"}}); !errors.Is(err, ErrBadName) {
		t.Errorf("bad principal: %v", err)
	}
}

func TestContextCheckExpiry(t *testing.T) {
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Context{client: Principal{"alice", "R"}, expiry: end}
	if err := c.CheckExpiry(end.Add(-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{end, end.Add(time.Hour)} {
		if err := c.CheckExpiry(now); !errors.Is(err, ErrContextExpired) || !strings.Contains(err.Error(), "2030-01-01T00:00:00Z") {
			t.Fatalf("at %s: %v", now, err)
		}
	}
	if err := (&Context{}).CheckExpiry(end); err != nil {
		t.Fatalf("no end time: %v", err)
	}
}

// TestErrorsWrapSentinels pins the package doc's claim: every error the
// package makes wraps one of its sentinels. Errors are made by fmt.Errorf
// with a format starting "%w" (the sentinel), or by the typed errors of
// errors.go; errors.New appears only in the sentinel block.
func TestErrorsWrapSentinels(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, _ := sel.X.(*ast.Ident)
			if pkg == nil {
				return true
			}
			pos := fset.Position(call.Pos())
			switch {
			case pkg.Name == "errors" && sel.Sel.Name == "New" && name != "errors.go":
				t.Errorf("%s: errors.New outside the sentinel block", pos)
			case pkg.Name == "fmt" && sel.Sel.Name == "Errorf":
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || !strings.HasPrefix(lit.Value, `"%w`) {
					t.Errorf("%s: fmt.Errorf without a leading sentinel %%w", pos)
				}
				if len(call.Args) > 1 {
					if id, ok := call.Args[1].(*ast.Ident); !ok || !strings.HasPrefix(id.Name, "Err") {
						t.Errorf("%s: first %%w argument is not a sentinel", pos)
					}
				}
			}
			return true
		})
	}
}
