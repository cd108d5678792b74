package gssapi

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// DefaultReplayCacheEntries is the replay cache cap when none is configured:
// at 1000 contexts per second with a 5-minute skew window about 600 000
// authenticators are live; each entry costs about 100 bytes.
const DefaultReplayCacheEntries = 1 << 20

type replayKey [sha256.Size]byte

type replayEntry struct {
	key     replayKey
	expires time.Time
}

// ReplayCache remembers AP-REQ authenticators until they could no longer
// pass the clock-skew check (RFC 4120 §3.2.3). It is bounded: at its cap,
// expired entries are swept and, if it is still full, new authenticators are
// refused (ErrReplayCacheFull) rather than forgetting live ones. Safe for
// concurrent use; share one per acceptor identity across reloads.
type ReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[replayKey]time.Time
	order   []replayEntry // insertion order, for sweeping
	swept   time.Time
}

// replaySweepInterval bounds how long expired entries linger below the cap.
const replaySweepInterval = 30 * time.Second

// NewReplayCache returns a cache holding at most maxEntries live
// authenticators (DefaultReplayCacheEntries if maxEntries <= 0).
func NewReplayCache(maxEntries int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayCacheEntries
	}
	return &ReplayCache{max: maxEntries, entries: make(map[replayKey]time.Time)}
}

// Len is the number of remembered authenticators.
func (rc *ReplayCache) Len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.entries)
}

// replayKeyOf identifies an authenticator: client, client realm, service and
// the authenticator ciphertext (which covers ctime, cusec and the random
// confounder).
func replayKeyOf(client, service Principal, authCipher []byte) replayKey {
	h := sha256.New()
	for _, s := range []string{client.Name, client.Realm, service.Name, service.Realm} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(authCipher)
	var k replayKey
	h.Sum(k[:0])
	return k
}

// check records key until expires, or fails if it is already there.
func (rc *ReplayCache) check(key replayKey, now, expires time.Time) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if exp, ok := rc.entries[key]; ok && now.Before(exp) {
		return fmt.Errorf("%w: authenticator seen before", ErrReplay)
	}
	if len(rc.entries) >= rc.max {
		rc.sweep(now)
		if len(rc.entries) >= rc.max {
			return fmt.Errorf("%w: %d live authenticators", ErrReplayCacheFull, len(rc.entries))
		}
	} else if now.Sub(rc.swept) > replaySweepInterval {
		rc.sweep(now)
	}
	rc.entries[key] = expires
	rc.order = append(rc.order, replayEntry{key, expires})
	return nil
}

// sweep drops expired entries. Expiry times are almost but not exactly in
// insertion order (clients' clocks differ), so it scans the whole queue.
func (rc *ReplayCache) sweep(now time.Time) {
	kept := rc.order[:0]
	for _, e := range rc.order {
		if now.Before(e.expires) {
			kept = append(kept, e)
		} else if exp, ok := rc.entries[e.key]; ok && !now.Before(exp) {
			delete(rc.entries, e.key)
		}
	}
	clear(rc.order[len(kept):])
	rc.order = kept
	rc.swept = now
}
