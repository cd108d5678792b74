package gssapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplayCacheExpiryAndCap(t *testing.T) {
	// One principal may fill this cache: the cap, not the share, is
	// under test here.
	rc := NewReplayCacheWith(ReplayCacheConfig{MaxEntries: 3, MaxPerPrincipal: 3})
	now := time.Unix(1_700_000_000, 0)
	const life = 10 * time.Minute
	alice := Principal{"alice", "EXAMPLE.TEST"}
	key := func(i int) ReplayKey { return replayKeyOf(alice, []byte(fmt.Sprint(i))) }
	for i := range 3 {
		if err := rc.check(key(i), alice.String(), now, life); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.check(key(0), alice.String(), now.Add(time.Minute), life); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within the window: %v", err)
	}
	if err := rc.check(key(3), "bob@EXAMPLE.TEST", now.Add(time.Minute), life); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	// Entries live a fixed time from insertion, whatever the
	// authenticator's own time: just before, the replay is still refused.
	if err := rc.check(key(0), alice.String(), now.Add(life-time.Nanosecond), life); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay just before expiry: %v", err)
	}
	later := now.Add(life)
	if err := rc.check(key(3), alice.String(), later, life); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if rc.Len() != 1 {
		t.Fatalf("%d entries after expiry, want 1", rc.Len())
	}
}

// TestReplayCachePrincipalShare: one principal fills its share and is
// refused with ErrReplayQuota; another principal is still served; the
// first one's replays are still ErrReplay, not quota errors.
func TestReplayCachePrincipalShare(t *testing.T) {
	rc := NewReplayCacheWith(ReplayCacheConfig{MaxEntries: 100, MaxPerPrincipal: 10})
	now := time.Unix(1_700_000_000, 0)
	const life = 10 * time.Minute
	a, b := Principal{"mallory", "R"}, Principal{"alice", "R"}
	for i := range 50 {
		err := rc.check(replayKeyOf(a, []byte(fmt.Sprint(i))), a.String(), now, life)
		if (i < 10) != (err == nil) || (i >= 10 && !errors.Is(err, ErrReplayQuota)) {
			t.Fatalf("flood %d: %v", i, err)
		}
	}
	for i := range 10 {
		if err := rc.check(replayKeyOf(b, []byte(fmt.Sprint(i))), b.String(), now, life); err != nil {
			t.Fatalf("other principal refused: %v", err)
		}
	}
	if err := rc.check(replayKeyOf(a, []byte("3")), a.String(), now, life); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a flooder's authenticator: %v", err)
	}
	if rc.Len() != 20 {
		t.Fatalf("%d entries, want 20", rc.Len())
	}
	// The share frees as entries expire.
	if err := rc.check(replayKeyOf(a, []byte("new")), a.String(), now.Add(life), life); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestReplayCacheDefaults(t *testing.T) {
	for _, c := range []struct{ max, share int }{{0, DefaultReplayCacheEntries / 16}, {1, 1}, {2, 1}, {64, 32}, {100, 50}, {1024, 64}, {10000, 625}} {
		if got := NewReplayCache(c.max).PrincipalShare(); got != c.share {
			t.Errorf("cap %d: share %d, want %d", c.max, got, c.share)
		}
	}
}

// TestReplayCacheBoundedAfterFlood: the queue and maps give their memory
// back once a flood has expired, and expiry keeps working across
// compactions.
func TestReplayCacheBoundedAfterFlood(t *testing.T) {
	rc := NewReplayCacheWith(ReplayCacheConfig{MaxEntries: 200_000, MaxPerPrincipal: 200_000})
	now := time.Unix(1_700_000_000, 0)
	p := Principal{"u", "R"}
	for i := range 100_000 {
		if err := rc.check(replayKeyOf(p, []byte(fmt.Sprint(i))), p.String(), now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Minute)
	for i := range 10 {
		if err := rc.check(replayKeyOf(p, []byte(fmt.Sprint("late", i))), p.String(), later, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.live != 10 || len(rc.queue) > 2 || len(rc.keys) != 10 || rc.owners[rc.ownerIx["u@R"]].live != 10 {
		t.Fatalf("after the flood: %d live, %d queue blocks, %d keys", rc.live, len(rc.queue), len(rc.keys))
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	rc := NewReplayCache(0)
	now := time.Now()
	var wg sync.WaitGroup
	var accepted sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := replayKeyOf(Principal{"u", "R"}, []byte(fmt.Sprint(i)))
				if rc.check(k, "u@R", now, time.Minute) == nil {
					if _, dup := accepted.LoadOrStore(i, g); dup {
						t.Errorf("authenticator %d accepted twice", i)
					}
				}
			}
		}()
	}
	wg.Wait()
	if rc.Len() != 500 {
		t.Fatalf("%d entries", rc.Len())
	}
}

// TestReplayCacheClock: expiries are whole seconds from the first use,
// rounded so an entry never lives shorter than its lifetime (at most a
// second longer); a clock stepped back decades, or read a century ahead,
// never lets a replay through.
func TestReplayCacheClock(t *testing.T) {
	const life = 10 * time.Minute
	p := Principal{"alice", "R"}
	key := func(s string) ReplayKey { return replayKeyOf(p, []byte(s)) }
	now := time.Unix(1_700_000_000, 600_000_000) // not on a whole second
	rc := NewReplayCache(100)
	if err := rc.check(key("a"), p.String(), now, life); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, life - time.Nanosecond, life, life + 399*time.Millisecond} {
		if err := rc.check(key("a"), p.String(), now.Add(d), life); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay %s later: %v", d, err)
		}
		if !rc.Seen(key("a"), now.Add(d)) {
			t.Fatalf("not seen %s later", d)
		}
	}
	if err := rc.check(key("a"), p.String(), now.Add(life+400*time.Millisecond), life); err != nil {
		t.Fatalf("after the lifetime rounded up to a second: %v", err)
	}
	for _, at := range []time.Time{now.AddDate(-50, 0, 0), now.AddDate(200, 0, 0)} {
		if err := rc.check(key(at.String()), p.String(), at, life); err != nil {
			t.Fatal(err)
		}
		for _, d := range []time.Duration{0, 2 * life, 24 * time.Hour} {
			if err := rc.check(key(at.String()), p.String(), at.Add(d), life); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay at %s + %s: %v", at.Format(time.DateOnly), d, err)
			}
		}
	}
}

// TestReplayCacheManyPrincipals: after a flood from many principals has
// expired, the owner table shrinks, indices are renumbered consistently
// (counts, shares and replays stay right), and it empties at the end.
func TestReplayCacheManyPrincipals(t *testing.T) {
	rc := NewReplayCacheWith(ReplayCacheConfig{MaxEntries: 200_000, MaxPerPrincipal: 5})
	now := time.Unix(1_700_000_000, 0)
	name := func(i int) Principal { return Principal{fmt.Sprint("u", i), "R"} }
	const flood = 70_000
	for i := range flood {
		if err := rc.check(replayKeyOf(name(i), []byte("x")), name(i).String(), now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Minute)
	for i := range 3 {
		for j := range 5 {
			p := name(i * 1000)
			if err := rc.check(replayKeyOf(p, []byte(fmt.Sprint("later", j))), p.String(), later, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	rc.mu.Lock()
	if rc.live != 15 || len(rc.owners) != 3 || len(rc.ownerIx) != 3 || len(rc.free) != 0 {
		t.Fatalf("after the flood: %d live, %d owners, %d indexed, %d free", rc.live, len(rc.owners), len(rc.ownerIx), len(rc.free))
	}
	rc.mu.Unlock()
	for i := range 3 {
		p := name(i * 1000)
		if err := rc.check(replayKeyOf(p, []byte("later0")), p.String(), later, time.Minute); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay after renumbering: %v", err)
		}
		if err := rc.check(replayKeyOf(p, []byte("more")), p.String(), later, time.Minute); !errors.Is(err, ErrReplayQuota) {
			t.Fatalf("share after renumbering: %v", err)
		}
	}
	if err := rc.check(replayKeyOf(name(1), []byte("y")), name(1).String(), later.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.live != 1 || len(rc.ownerIx) != 1 || rc.owners[rc.ownerIx["u1@R"]].live != 1 || len(rc.free) != 2 {
		t.Fatalf("at the end: %d live, %d indexed, %d free", rc.live, len(rc.ownerIx), len(rc.free))
	}
}

// TestReplayKeyOf pins the key derivation: SHA-256 over the length-prefixed
// client name, realm and authenticator ciphertext, so keys stay the same
// across versions (a shared store holds them) and no field boundary can be
// moved.
func TestReplayKeyOf(t *testing.T) {
	for _, c := range []struct {
		p      Principal
		cipher []byte
	}{{Principal{"alice", "EXAMPLE.TEST"}, []byte{1, 2, 3}}, {Principal{"", ""}, nil}, {Principal{"a", "b"}, make([]byte, 2000)}} {
		h := sha256.New()
		for _, f := range [][]byte{[]byte(c.p.Name), []byte(c.p.Realm), c.cipher} {
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
			h.Write(f)
		}
		if got := replayKeyOf(c.p, c.cipher); !bytes.Equal(got[:], h.Sum(nil)) {
			t.Fatalf("%s, %d bytes: key differs", c.p, len(c.cipher))
		}
	}
	if replayKeyOf(Principal{"ab", "c"}, nil) == replayKeyOf(Principal{"a", "bc"}, nil) {
		t.Fatal("field boundary moved without changing the key")
	}
}
