package gssapi

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recordingStore is a ReplayStore in front of a real ReplayCache that
// remembers what the acceptor asked, and can answer with a fixed error
// instead (a store that fails).
type recordingStore struct {
	cache *ReplayCache
	fail  error

	mu    sync.Mutex
	calls []storeCall
}

type storeCall struct {
	key       ReplayKey
	principal string
	now       time.Time
	lifetime  time.Duration
}

func (s *recordingStore) Check(ctx context.Context, key ReplayKey, principal string, now time.Time, lifetime time.Duration) error {
	s.mu.Lock()
	s.calls = append(s.calls, storeCall{key, principal, now, lifetime})
	s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	return s.cache.Check(ctx, key, principal, now, lifetime)
}

// TestAcceptorReplayStore: the acceptor asks its ReplayStore once per
// authenticated AP-REQ, with the client principal from the ticket, its own
// clock and twice the skew; the key is the same for the AP-REQ with its
// sname rewritten (authenticated bytes only) and differs for a new
// authenticator. A store's refusal refuses the AP-REQ with the store's
// sentinel; an error wrapping no replay sentinel becomes
// ErrReplayStoreUnavailable. An AP-REQ that fails earlier steps never
// reaches the store.
func TestAcceptorReplayStore(t *testing.T) {
	r := liveRealm(t)
	peer := netip.MustParseAddr("127.0.0.1")
	icfg := gokrb5Ticket(t, r, "aes256-cts-hmac-sha1-96")
	now := time.Now()
	const skew = 3 * time.Minute
	store := &recordingStore{cache: NewReplayCache(0)}
	acc := liveAcceptor(t, AcceptorConfig{ReplayCache: store, ClockSkew: skew, Now: func() time.Time { return now }})

	tok := newAPReq(t, icfg)
	if _, _, err := acc.Accept(tok, peer); err != nil {
		t.Fatal(err)
	}
	for _, again := range [][]byte{tok, rewriteSName(t, tok, "rcmd", "socks")} {
		if _, _, err := acc.Accept(again, peer); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
	}
	if _, _, err := acc.Accept(newAPReq(t, icfg), peer); err != nil {
		t.Fatal(err)
	}
	tampered := newAPReq(t, icfg)
	tampered[len(tampered)-1] ^= 1 // in the authenticator's checksum
	if _, _, err := acc.Accept(tampered, peer); !errors.Is(err, ErrBadIntegrity) {
		t.Fatalf("tampered AP-REQ: %v", err)
	}
	if len(store.calls) != 4 {
		t.Fatalf("%d calls, want 4 (the tampered AP-REQ must not reach the store)", len(store.calls))
	}
	for i, c := range store.calls {
		if c.principal != "alice@"+r.Name || !c.now.Equal(now) || c.lifetime != 2*skew {
			t.Fatalf("call %d: %q at %v for %v", i, c.principal, c.now, c.lifetime)
		}
	}
	if k := store.calls; k[0].key != k[1].key || k[0].key != k[2].key || k[0].key == k[3].key {
		t.Fatal("keys: the same authenticator must have one key, a new one another")
	}

	for _, c := range []struct {
		fail, want error
	}{
		{fmt.Errorf("%w: node says so", ErrReplay), ErrReplay},
		{fmt.Errorf("%w: full", ErrReplayCacheFull), ErrReplayCacheFull},
		{fmt.Errorf("%w: share", ErrReplayQuota), ErrReplayQuota},
		{fmt.Errorf("%w: down", ErrReplayStoreUnavailable), ErrReplayStoreUnavailable},
		{errors.New("a store that forgot its sentinels"), ErrReplayStoreUnavailable},
		{context.DeadlineExceeded, ErrReplayStoreUnavailable},
	} {
		acc := liveAcceptor(t, AcceptorConfig{ReplayCache: &recordingStore{fail: c.fail}})
		ctx, rep, err := acc.Accept(newAPReq(t, icfg), peer)
		if !errors.Is(err, c.want) || ctx != nil || rep != nil {
			t.Fatalf("store error %v: got %v (ctx %v)", c.fail, err, ctx)
		}
		checkErrorHygiene(t, err, nil)
	}

	// A nil *ReplayCache in the interface is "no store": a default cache.
	var none *ReplayCache
	acc = liveAcceptor(t, AcceptorConfig{ReplayCache: none})
	tok = newAPReq(t, icfg)
	if _, _, err := acc.Accept(tok, peer); err != nil {
		t.Fatal(err)
	}
	if _, _, err := acc.Accept(tok, peer); !errors.Is(err, ErrReplay) {
		t.Fatalf("default cache: %v", err)
	}
}

// TestReplayCacheSeen: Seen reports live entries without recording
// anything.
func TestReplayCacheSeen(t *testing.T) {
	rc := NewReplayCache(10)
	now := time.Unix(1_700_000_000, 0)
	k := replayKeyOf(Principal{"alice", "R"}, []byte("authenticator"))
	if rc.Seen(k, now) || rc.Len() != 0 {
		t.Fatal("empty cache has seen a key")
	}
	if err := rc.Check(context.Background(), k, "alice@R", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !rc.Seen(k, now.Add(time.Minute-time.Nanosecond)) || rc.Seen(k, now.Add(time.Minute)) {
		t.Fatal("Seen disagrees with the entry's lifetime")
	}
	if DefaultPrincipalShare(0) != NewReplayCache(0).PrincipalShare() || DefaultPrincipalShare(100) != 50 {
		t.Fatal("DefaultPrincipalShare disagrees with the cache")
	}
}
