package gssapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// ReplayKey identifies one AP-REQ authenticator: SHA-256 over the client
// principal from the decrypted ticket and the authenticator ciphertext
// (nothing the encryption does not protect; see ReplayCache). The same
// authenticator always has the same key, whichever service principal its
// sname names.
type ReplayKey [sha256.Size]byte

// ReplayStore remembers AP-REQ authenticators so that each is accepted once
// (RFC 4120 §3.2.3, KRB_AP_ERR_REPEAT). The local *ReplayCache is one; a
// store shared by several gateway nodes (package replay) makes an AP-REQ
// accepted by one node a replay on every other.
//
// Check records key for principal (the client, name@REALM, from the
// decrypted ticket) for lifetime from now (the acceptor's clock; stores
// with a clock of their own may use it instead, with the same lifetime),
// or refuses it with an error wrapping exactly one of:
//   - ErrReplay: the key is already recorded and not yet expired; replays
//     are refused before any quota is considered;
//   - ErrReplayCacheFull: the store is at its cap;
//   - ErrReplayQuota: principal holds its whole share;
//   - ErrReplayStoreUnavailable: the store cannot tell (unreachable, timed
//     out, ctx done).
//
// Every error refuses the AP-REQ: a store that cannot record an
// authenticator must not let it through. Check must be safe for concurrent
// use, bound its own wait (the acceptor calls it inside the handshake), and
// never put key material or the key itself in an error text.
type ReplayStore interface {
	Check(ctx context.Context, key ReplayKey, principal string, now time.Time, lifetime time.Duration) error
}

// DefaultReplayCacheEntries is the replay cache cap when none is configured.
// Entries live twice the clock skew (10 minutes by default), so at 1000
// contexts per second about 600 000 are live; each costs about 100 bytes.
const DefaultReplayCacheEntries = 1 << 20

// replayShareDivisor sets the default per-principal share: a sixteenth of
// the cache, so at least 16 principals must flood together to fill it.
const replayShareDivisor = 16

// ReplayCacheConfig sizes a ReplayCache.
type ReplayCacheConfig struct {
	// MaxEntries caps the live authenticators (DefaultReplayCacheEntries
	// if <= 0).
	MaxEntries int
	// MaxPerPrincipal caps the live authenticators of one client principal
	// (name@REALM). Default: MaxEntries/16, but at least min(MaxEntries,
	// 64) so small caches stay usable.
	MaxPerPrincipal int
}

// replayOwner counts one client principal's live entries; queue entries
// point to it, so the name is stored once.
type replayOwner struct {
	name string
	live int
}

type replayEntry struct {
	key     ReplayKey
	owner   *replayOwner
	expires int64 // Unix nanoseconds
}

// ReplayCache remembers AP-REQ authenticators (RFC 4120 §3.2.3) until they
// could no longer pass the clock-skew check. Entries are keyed only on
// authenticated bytes: the authenticator ciphertext, which only the holder
// of the session key can produce and which covers ctime, cusec and a random
// confounder, and the client principal from the decrypted ticket. Nothing
// outside the encryption (the ticket's sname, its kvno) takes part, so a
// captured AP-REQ whose sname is rewritten to another principal sharing
// the key is still a replay.
//
// It is bounded twice: each client principal may hold at most its share
// (ErrReplayQuota for that principal only), and all together at most the
// cap (ErrReplayCacheFull). A live entry is never dropped to make room: a
// full cache refuses new authenticators rather than risk accepting a
// replay. Every entry lives the same time from its insertion (twice the
// skew: the longest an authenticator the skew check accepted can stay
// acceptable), so a client cannot lengthen its entries by dating its
// authenticators at the edge of the window, and expiry is in insertion
// order (amortised O(1) per check). Safe for concurrent use; share one per
// acceptor identity across reloads.
type ReplayCache struct {
	mu     sync.Mutex
	max    int
	share  int
	keys   map[ReplayKey]int64 // expiry, Unix nanoseconds
	owners map[string]*replayOwner
	queue  []replayEntry // insertion order; live entries from head
	head   int
	peak   int // most live entries since the maps were last rebuilt
}

// NewReplayCache returns a cache holding at most maxEntries live
// authenticators (DefaultReplayCacheEntries if maxEntries <= 0), with the
// default per-principal share.
func NewReplayCache(maxEntries int) *ReplayCache {
	return NewReplayCacheWith(ReplayCacheConfig{MaxEntries: maxEntries})
}

// NewReplayCacheWith returns a cache sized by cfg.
func NewReplayCacheWith(cfg ReplayCacheConfig) *ReplayCache {
	rc := &ReplayCache{max: cfg.MaxEntries, share: cfg.MaxPerPrincipal}
	if rc.max <= 0 {
		rc.max = DefaultReplayCacheEntries
	}
	if rc.share <= 0 {
		rc.share = DefaultPrincipalShare(rc.max)
	}
	rc.share = min(rc.share, rc.max)
	rc.keys = make(map[ReplayKey]int64)
	rc.owners = make(map[string]*replayOwner)
	return rc
}

// DefaultPrincipalShare is the per-principal share of a cache of
// maxEntries (DefaultReplayCacheEntries if <= 0) when none is configured:
// a sixteenth, but at least min(maxEntries/2, 64) so small caches stay
// usable while one principal can still never hold more than half of
// the cache (a flood by one leaves room for everyone else). Shared
// stores use it too, so a principal gets the same share across nodes as
// on one.
func DefaultPrincipalShare(maxEntries int) int {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayCacheEntries
	}
	return max(maxEntries/replayShareDivisor, min(maxEntries/2, 64), 1)
}

// Len is the number of remembered authenticators.
func (rc *ReplayCache) Len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.queue) - rc.head
}

// PrincipalShare is the most live authenticators one client principal may
// hold.
func (rc *ReplayCache) PrincipalShare() int { return rc.share }

// Check implements ReplayStore: it records key for principal until
// now+lifetime, or fails with ErrReplay, ErrReplayCacheFull or
// ErrReplayQuota (in that order of precedence). It never waits on I/O; ctx
// is not consulted.
func (rc *ReplayCache) Check(_ context.Context, key ReplayKey, principal string, now time.Time, lifetime time.Duration) error {
	return rc.check(key, principal, now, lifetime)
}

// Seen reports whether key is recorded and live at now, without recording
// it. A shared store that falls back to this cache while it is unreachable
// asks it first, so that an AP-REQ accepted during the outage stays
// refused on this node once the shared store is back.
func (rc *ReplayCache) Seen(key ReplayKey, now time.Time) bool {
	t := now.UnixNano()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	exp, ok := rc.keys[key]
	return ok && t < exp
}

// replayKeyOf identifies an authenticator by its client (from the
// decrypted ticket) and its ciphertext. Fields are length-prefixed so no
// two different inputs hash alike by concatenation.
func replayKeyOf(client Principal, authCipher []byte) ReplayKey {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(client.Name), []byte(client.Realm), authCipher} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var k ReplayKey
	h.Sum(k[:0])
	return k
}

// check records key for owner (the client principal) until now+lifetime,
// or fails: ErrReplay if it is there already, then ErrReplayCacheFull if
// the cache is at its cap, then ErrReplayQuota if the owner holds its
// share. Replays are refused whatever the quota.
func (rc *ReplayCache) check(key ReplayKey, owner string, now time.Time, lifetime time.Duration) error {
	t := now.UnixNano()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.expire(t)
	if exp, ok := rc.keys[key]; ok && t < exp {
		return fmt.Errorf("%w: authenticator seen before", ErrReplay)
	}
	if live := len(rc.queue) - rc.head; live >= rc.max {
		return fmt.Errorf("%w: %d live authenticators", ErrReplayCacheFull, live)
	}
	o := rc.owners[owner]
	if o != nil && o.live >= rc.share {
		return fmt.Errorf("%w: %s holds %d live authenticators, its share", ErrReplayQuota, quote(owner), o.live)
	}
	if o == nil {
		o = &replayOwner{name: owner}
		rc.owners[owner] = o
	}
	o.live++
	exp := t + int64(lifetime)
	rc.keys[key] = exp
	rc.queue = append(rc.queue, replayEntry{key: key, owner: o, expires: exp})
	rc.peak = max(rc.peak, len(rc.queue)-rc.head)
	return nil
}

// expire drops the entries at the head of the queue that have expired.
// Lifetimes are equal unless the skew changed on a reload, so the queue is
// in expiry order; an entry stuck behind a longer-lived one expires late,
// which errs on the side of refusing.
func (rc *ReplayCache) expire(t int64) {
	for rc.head < len(rc.queue) && rc.queue[rc.head].expires <= t {
		e := &rc.queue[rc.head]
		if rc.keys[e.key] == e.expires {
			delete(rc.keys, e.key)
		}
		if e.owner.live--; e.owner.live == 0 {
			delete(rc.owners, e.owner.name)
		}
		*e = replayEntry{}
		rc.head++
	}
	live := len(rc.queue) - rc.head
	if rc.head >= 1024 && rc.head >= live {
		// Reuse the front of the slice; shrink it after a flood.
		q := rc.queue[:0]
		if cap(rc.queue) > 4096 && live < cap(rc.queue)/4 {
			q = make([]replayEntry, 0, 2*live)
		}
		n := copy(q[:live], rc.queue[rc.head:])
		clear(rc.queue[n:len(rc.queue)])
		rc.queue, rc.head = q[:n], 0
	}
	if rc.peak > 65536 && live < rc.peak/4 {
		// Go maps keep their buckets; rebuild them so a past flood does
		// not hold its memory for good.
		keys := make(map[ReplayKey]int64, live)
		for k, v := range rc.keys {
			keys[k] = v
		}
		owners := make(map[string]*replayOwner, len(rc.owners))
		for k, v := range rc.owners {
			owners[k] = v
		}
		rc.keys, rc.owners, rc.peak = keys, owners, live
	}
}
