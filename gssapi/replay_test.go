package gssapi

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestReplayCacheExpiryAndCap(t *testing.T) {
	rc := NewReplayCache(3)
	now := time.Unix(1_700_000_000, 0)
	key := func(i int) replayKey {
		return replayKeyOf(Principal{"alice", "EXAMPLE.TEST"}, Principal{"rcmd/gw", "EXAMPLE.TEST"}, []byte(fmt.Sprint(i)))
	}
	for i := range 3 {
		if err := rc.check(key(i), now, now.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.check(key(0), now.Add(time.Minute), now.Add(6*time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within the window: %v", err)
	}
	if err := rc.check(key(3), now.Add(time.Minute), now.Add(6*time.Minute)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	// Past the skew window the entries expire: room again, and an old
	// authenticator no longer counts (the skew check refuses it anyway).
	later := now.Add(5*time.Minute + time.Second)
	if err := rc.check(key(3), later, later.Add(5*time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if rc.Len() != 1 {
		t.Fatalf("%d entries after the sweep, want 1", rc.Len())
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
				k := replayKeyOf(Principal{"u", "R"}, Principal{"s", "R"}, []byte(fmt.Sprint(i)))
				if rc.check(k, now, now.Add(time.Minute)) == nil {
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
