package gssapi

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/mitpeer"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Services of the live realm for the keytab lookup rules.
const (
	kvno257Service = "rcmd/kvno257" // its keys have kvno 257
	caseService    = "rcmd/CaseHost"
)

// exportedEntries exports principal's current keys from the realm and
// returns them as entries a test can rewrite.
func exportedEntries(t *testing.T, r *testenv.Realm, principal string) []ktEntry {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.keytab")
	if err := r.ExportKeytab(path, principal); err != nil {
		t.Fatal(err)
	}
	kt, err := LoadKeytab(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []ktEntry
	for _, e := range kt.Entries {
		out = append(out, aesEntry(strings.Join(e.Principal.Components, "/")+"@"+e.Principal.Realm, e.KVNO, e.Key.KeyType, e.Key.KeyValue))
	}
	return out
}

func writeKeytab(t *testing.T, entries []ktEntry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crafted.keytab")
	if err := os.WriteFile(path, keytabBytes(2, entries...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newAPReq(t *testing.T, cfg InitiatorConfig) []byte {
	t.Helper()
	_, tok, err := NewInitiator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mitAccept feeds tok to MIT's gss_accept_sec_context with the keytab (its
// default acceptor credential: any principal of the keytab).
func mitAccept(t *testing.T, r *testenv.Realm, keytabPath string, tok []byte) error {
	t.Helper()
	mit, err := mitpeer.StartAcceptor(mitpeer.Require(t), append(r.Env("", ""), "KRB5_KTNAME=FILE:"+keytabPath))
	if err != nil {
		t.Fatal(err)
	}
	defer mit.Close()
	if _, err := mit.Step(tok); err != nil {
		return err
	}
	if mit.ClientName() != "alice@"+r.Name {
		t.Fatalf("MIT says the client is %q", mit.ClientName())
	}
	return nil
}

// TestMITKeytabLookup: keytabs that MIT's acceptor accepts and gssocks
// used to refuse, each fed the same real AP-REQ as MIT: an entry of kvno
// 0, an entry holding only the low 8 bits of kvno 257, a keytab spelling
// the service with other capitals than the ticket. A keytab with the wrong
// key is refused by both.
func TestMITKeytabLookup(t *testing.T) {
	r := liveRealm(t)
	const enctype = "aes256-cts-hmac-sha1-96"
	cases := []struct {
		name, service string
		craft         func(e *ktEntry)
		wantService   string // the keytab's spelling
	}{
		{"kvno 0 entry", "rcmd/localhost", func(e *ktEntry) { e.kvno8, e.kvno32, e.has32 = 0, 0, false }, "rcmd/localhost"},
		{"8-bit kvno above 255", kvno257Service, func(e *ktEntry) {
			if e.kvno32 != 257 {
				panic(fmt.Sprintf("kvno %d", e.kvno32))
			}
			e.kvno8, e.has32 = 1, false
		}, kvno257Service},
		{"service case differs", caseService, func(e *ktEntry) {
			e.principal = strings.ToLower(e.principal[:strings.Index(e.principal, "@")]) + e.principal[strings.Index(e.principal, "@"):]
		}, strings.ToLower(caseService)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := exportedEntries(t, r, c.service)
			for i := range entries {
				c.craft(&entries[i])
			}
			path := writeKeytab(t, entries)
			icfg := gokrb5TicketFor(t, r, "alice", alicePassword, c.service, enctype)
			tok := newAPReq(t, icfg)
			if err := mitAccept(t, r, path, tok); err != nil {
				t.Fatalf("MIT refuses: %v", err)
			}
			kt, err := LoadKeytab(path)
			if err != nil {
				t.Fatal(err)
			}
			// What gssocks did before: gokrb5's exact lookup finds nothing.
			if _, _, err := kt.GetEncryptionKey(icfg.Ticket.SName, icfg.Ticket.Realm, icfg.Ticket.EncPart.KVNO, icfg.Ticket.EncPart.EType); err == nil {
				t.Fatal("the crafted keytab is not one an exact lookup misses")
			}
			for _, principals := range [][]string{nil, {c.wantService}} {
				a, err := NewAcceptor(AcceptorConfig{Keytab: kt, Principals: principals})
				if err != nil {
					t.Fatal(err)
				}
				ctx, _, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1"))
				if err != nil {
					t.Fatalf("principals %q: we refuse what MIT accepts: %v", principals, err)
				}
				if got := ctx.Service(); got != (Principal{c.wantService, r.Name}) || ctx.KVNO() != icfg.Ticket.EncPart.KVNO {
					t.Fatalf("service %v kvno %d, want %s kvno %d", got, ctx.KVNO(), c.wantService, icfg.Ticket.EncPart.KVNO)
				}
				facts, err := a.KeytabFacts()
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range facts {
					if !f.Accepted || f.Principal.Name != c.wantService {
						t.Fatalf("fact %+v", f)
					}
				}
			}
		})
	}

	t.Run("wrong key", func(t *testing.T) {
		entries := exportedEntries(t, r, "rcmd/localhost")
		for i := range entries {
			rand.Read(entries[i].key)
		}
		path := writeKeytab(t, entries)
		tok := newAPReq(t, gokrb5TicketFor(t, r, "alice", alicePassword, "rcmd/localhost", enctype))
		if err := mitAccept(t, r, path, tok); err == nil {
			t.Fatal("MIT accepts a ticket the keytab has the wrong key for")
		}
		kt, _ := LoadKeytab(path)
		a, _ := NewAcceptor(AcceptorConfig{Keytab: kt})
		if _, _, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrBadIntegrity) {
			t.Fatalf("got %v, want ErrBadIntegrity", err)
		}
	})

	// MIT tries every key of the ticket's enctype when no entry names the
	// ticket's principal exactly; we stop after maxKeyTrials distinct keys,
	// so a peer cannot make one AP-REQ cost a scan of a large keytab. The
	// configured principals narrow the scan to their own keys.
	t.Run("key trials are bounded", func(t *testing.T) {
		icfg := gokrb5TicketFor(t, r, "alice", alicePassword, caseService, enctype)
		et := icfg.Ticket.EncPart.EType
		var entries []ktEntry
		for i := range maxKeyTrials + 4 {
			k := make([]byte, EnctypeKeyLen(et))
			rand.Read(k)
			entries = append(entries, aesEntry(fmt.Sprintf("decoy/%d@%s", i, r.Name), uint32(icfg.Ticket.EncPart.KVNO), et, k))
		}
		for _, e := range exportedEntries(t, r, caseService) {
			e.principal = "rcmd/casehost@" + r.Name
			entries = append(entries, e)
		}
		path := writeKeytab(t, entries)
		tok := newAPReq(t, icfg)
		kt, _ := LoadKeytab(path)
		a, _ := NewAcceptor(AcceptorConfig{Keytab: kt})
		if _, _, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrPrincipalNotAllowed) {
			t.Fatalf("key %d of the scan opened the ticket: %v", maxKeyTrials+5, err)
		}
		a, _ = NewAcceptor(AcceptorConfig{Keytab: kt, Principals: []string{"rcmd/casehost"}})
		if _, _, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1")); err != nil {
			t.Fatalf("with the principal configured: %v", err)
		}
		if err := mitAccept(t, r, path, tok); err != nil {
			t.Fatalf("MIT (unbounded scan) refuses: %v", err)
		}
	})
}

// TestKeyLookupOrder pins MIT's kvno rules for the entry tried first, and
// the order of the fallback.
func TestKeyLookupOrder(t *testing.T) {
	k := func(b byte) []byte {
		out := make([]byte, 32)
		out[0] = b
		return out
	}
	e := func(p string, kvno8 uint8, kvno32 uint32, key byte) ktEntry {
		return ktEntry{principal: p, nameType: 1, kvno8: kvno8, kvno32: kvno32, has32: kvno32 != 0, enctype: EnctypeAES256SHA1, key: k(key)}
	}
	kt, err := ParseKeytab(keytabBytes(2,
		e("svc/a@R", 2, 0, 1),   // 0: kvno 2
		e("svc/a@R", 3, 259, 2), // 1: kvno 259
		e("svc/a@R", 4, 0, 3),   // 2: kvno 4, also the low bits of 260
		e("svc/a@R", 0, 0, 4),   // 3: kvno 0
		e("svc/b@R", 7, 0, 1),   // 4: same key as 0
		e("svc/c@R", 9, 0, 5),   // 5
		e("other/x@R", 4, 0, 6), // 6: not allowed below
		e("svc/a@R", 5, 0, 7),   // 7
		ktEntry{principal: "svc/a@R", nameType: 1, kvno8: 4, enctype: EnctypeAES128SHA1, key: k(8)[:16]}, // 8: other enctype
	))
	if err != nil {
		t.Fatal(err)
	}
	x := newKeyIndex(kt, []Principal{{"svc/a", ""}, {"svc/b", ""}, {"svc/c", ""}})
	cases := []struct {
		sname string
		kvno  uint32
		want  []int
		exact bool
	}{
		{"svc/a", 259, []int{1, 3, 0, 2, 5, 7}, true},  // exact 32-bit kvno; then the kvno-0 entry fits; each key once
		{"svc/a", 2, []int{0, 3, 1, 2, 5, 7}, true},    // exact 8-bit kvno
		{"svc/a", 260, []int{3, 2, 0, 1, 5, 7}, true},  // kvno 0 beats the low 8 bits (4), which fit next
		{"svc/a", 0, []int{1, 0, 2, 3, 5, 7}, true},    // no kvno in the ticket: the highest
		{"svc/b", 7, []int{4, 3, 1, 2, 5, 7}, true},    // 0 shares 4's key: tried once
		{"svc/A", 2, []int{0, 3, 1, 2, 5, 7}, false},   // case differs: no exact entry, the scan
		{"other/x", 4, []int{2, 3, 0, 1, 5, 7}, false}, // not allowed: its own key never tried
	}
	for _, c := range cases {
		l := x.lookup(Principal{c.sname, "R"}, c.kvno, EnctypeAES256SHA1)
		if fmt.Sprint(l.tries) != fmt.Sprint(c.want) || l.exact != c.exact {
			t.Errorf("%s kvno %d: tries %v exact %t, want %v %t", c.sname, c.kvno, l.tries, l.exact, c.want, c.exact)
		}
	}
	if l := x.lookup(Principal{"other/x", "R"}, 4, EnctypeAES256SHA1); !l.named || l.namedAllowed {
		t.Errorf("other/x: %+v", l)
	}
}

// rewriteSName returns the AP-REQ with the ticket's sname (which is outside
// the ticket's encryption) replaced; the authenticator is untouched.
func rewriteSName(t *testing.T, tok []byte, sname ...string) []byte {
	t.Helper()
	_, body, err := parseInitialToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	req.Ticket.SName = types.PrincipalName{NameType: req.Ticket.SName.NameType, NameString: sname}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return appendInitialToken(nil, tokIDAPReq, b)
}

// TestReplaySNameRewrite: two service principals share one key (normal in
// Active Directory: several SPNs on one account). A captured AP-REQ whose
// unencrypted sname is rewritten to the other principal, or to a name the
// keytab does not hold, is the same authenticator: a replay.
func TestReplaySNameRewrite(t *testing.T) {
	r := liveRealm(t)
	peer := netip.MustParseAddr("127.0.0.1")
	entries := exportedEntries(t, r, "rcmd/localhost")
	for _, e := range exportedEntries(t, r, "rcmd/localhost") {
		e.principal = "rcmd/alias@" + r.Name
		entries = append(entries, e)
	}
	kt, err := ParseKeytab(keytabBytes(2, entries...))
	if err != nil {
		t.Fatal(err)
	}
	tok := newAPReq(t, gokrb5Ticket(t, r, "aes256-cts-hmac-sha1-96"))
	alias := rewriteSName(t, tok, "rcmd", "alias")
	unknown := rewriteSName(t, tok, "rcmd", "not-in-keytab")

	// Each rewritten AP-REQ is good on its own: a fresh acceptor takes it,
	// as the principal whose key opened it.
	for _, c := range []struct {
		tok  []byte
		want string
	}{{alias, "rcmd/alias"}, {unknown, "rcmd/localhost"}} {
		a, _ := NewAcceptor(AcceptorConfig{Keytab: kt})
		ctx, _, err := a.Accept(c.tok, peer)
		if err != nil || ctx.Service().Name != c.want {
			t.Fatalf("rewritten AP-REQ alone: %v (%v)", err, ctx)
		}
	}
	for _, order := range [][]([]byte){{tok, alias, unknown}, {alias, tok, unknown}, {unknown, alias, tok}} {
		a, _ := NewAcceptor(AcceptorConfig{Keytab: kt, Principals: []string{"rcmd/localhost", "rcmd/alias"}})
		if _, _, err := a.Accept(order[0], peer); err != nil {
			t.Fatal(err)
		}
		for _, again := range order[1:] {
			if _, _, err := a.Accept(again, peer); !errors.Is(err, ErrReplay) {
				t.Fatalf("rewritten sname accepted again: %v", err)
			}
		}
	}
}

// TestReplayFloodPerPrincipal: alice mints authenticators from one ticket,
// dated at the edge of the skew window, as fast as two goroutines can;
// meanwhile bob authenticates. Alice gets her share of the cache and then
// ErrReplayQuota; bob is never refused; alice's accepted AP-REQs stay
// refused as replays.
func TestReplayFloodPerPrincipal(t *testing.T) {
	r := liveRealm(t)
	peer := netip.MustParseAddr("127.0.0.1")
	const share, total = 16, 64
	rc := NewReplayCacheWith(ReplayCacheConfig{MaxEntries: total, MaxPerPrincipal: share})
	a := liveAcceptor(t, AcceptorConfig{ReplayCache: rc})
	alice := gokrb5Ticket(t, r, "aes256-cts-hmac-sha1-96")
	alice.Now = func() time.Time { return time.Now().Add(DefaultClockSkew - 10*time.Second) }
	bob := gokrb5TicketFor(t, r, "bob", bobPassword, "rcmd/localhost", "aes256-cts-hmac-sha1-96")

	var (
		mu       sync.Mutex
		accepted [][]byte
		refused  atomic.Int64
		wg       sync.WaitGroup
		stop     atomic.Bool
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300 && !stop.Load(); i++ {
				_, tok, err := NewInitiator(alice)
				if err != nil {
					t.Error(err)
					return
				}
				_, _, err = a.Accept(tok, peer)
				switch {
				case err == nil:
					mu.Lock()
					accepted = append(accepted, tok)
					mu.Unlock()
				case errors.Is(err, ErrReplayQuota):
					refused.Add(1)
				default:
					t.Errorf("flood: %v", err)
					return
				}
			}
		}()
	}
	for i := range 10 {
		if _, _, err := a.Accept(newAPReq(t, bob), peer); err != nil {
			stop.Store(true)
			t.Fatalf("bob's AP-REQ %d refused during the flood: %v", i, err)
		}
	}
	wg.Wait()
	if len(accepted) != share || refused.Load() != 600-share {
		t.Fatalf("alice: %d accepted, %d refused with ErrReplayQuota", len(accepted), refused.Load())
	}
	for _, tok := range accepted {
		if _, _, err := a.Accept(tok, peer); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of a flood AP-REQ: %v", err)
		}
	}
	if _, _, err := a.Accept(newAPReq(t, bob), peer); err != nil {
		t.Fatalf("bob after the flood: %v", err)
	}
	if rc.Len() != share+11 {
		t.Fatalf("%d entries", rc.Len())
	}
}
