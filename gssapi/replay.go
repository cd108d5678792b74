package gssapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
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
// contexts per second about 600 000 are live; each costs about 50 bytes
// (BenchmarkReplayCacheEntry).
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

// replayID is the cache's own key for an authenticator: the first 128
// bits of its ReplayKey. The truncation is safe here: a replay has the
// very same ReplayKey, so the same replayID, and is refused whatever else
// is in the cache; a collision can only refuse a fresh authenticator (the
// client retries with a new one), never accept a replay. Fresh ones
// collide by chance with probability about n/2^128 against n live entries
// (2^-108 at the default cap), and nobody can aim for a collision: the
// hashed authenticator ciphertext is made with the session key, and
// finding a second preimage of a given 128-bit value by trial costs 2^128
// hashes.
type replayID [16]byte

// replayEntry is one authenticator in insertion order: 24 bytes, no
// pointers, so the queue costs the collector nothing to scan.
type replayEntry struct {
	id      replayID
	expires uint32 // replayClock seconds
	owner   uint32 // index in ReplayCache.owners
}

// replayOwner counts one client principal's live entries.
type replayOwner struct {
	name string
	live int
}

// replayChunk is the length of one block of the queue; blocks are freed as
// their entries expire, so the queue holds its live entries and at most
// two partly used blocks.
const replayChunk = 1024

// replayClock turns times into seconds since base, as uint32: 4 bytes an
// entry instead of 8. base is set at the first use, 2^30 seconds (34 years)
// before it, so a clock stepped back stays in range; values are clamped,
// so even a clock off by a century errs on the side of refusing.
type replayClock struct {
	base int64 // Unix seconds; 0 until the first use
}

// seconds is t (Unix nanoseconds) since base in whole seconds, rounded up
// for an expiry (an entry lives up to one second longer, never shorter) or
// down for a time compared with expiries. Out of range, expiries clamp to
// [1, 2^32-1] and times to [0, 2^32-2]: a time is then always before every
// expiry, so with such a clock entries stop expiring and the cache fills
// and refuses rather than forgetting an authenticator early.
func (c *replayClock) seconds(t int64, up bool) uint32 {
	if c.base == 0 {
		c.base = t/int64(time.Second) - 1<<30
	}
	d := t - c.base*int64(time.Second)
	s := d / int64(time.Second)
	if d%int64(time.Second) < 0 {
		s-- // floor for times before base
	}
	if up {
		if d%int64(time.Second) != 0 {
			s++
		}
		return uint32(min(max(s, 1), math.MaxUint32))
	}
	return uint32(min(max(s, 0), math.MaxUint32-1))
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
	mu    sync.Mutex
	max   int
	share int
	clock replayClock
	keys  map[replayID]uint32 // expiry, replayClock seconds
	// owners are the principals with live entries, by index (queue
	// entries refer to them by it); free lists unused indices.
	owners  []replayOwner
	ownerIx map[string]uint32
	free    []uint32
	// queue holds the entries in insertion order, in blocks of
	// replayChunk: live entries run from queue[0][head] to the end.
	queue [][]replayEntry
	head  int
	live  int
	peak  int // most live entries since the maps were last rebuilt
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
	rc.keys = make(map[replayID]uint32)
	rc.ownerIx = make(map[string]uint32)
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
	return rc.live
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
	rc.mu.Lock()
	defer rc.mu.Unlock()
	exp, ok := rc.keys[replayID(key[:16])]
	return ok && rc.clock.seconds(now.UnixNano(), false) < exp
}

// replayKeyOf identifies an authenticator by its client (from the
// decrypted ticket) and its ciphertext. Fields are length-prefixed so no
// two different inputs hash alike by concatenation. The input is gathered
// in one buffer, on the stack for the usual sizes, and hashed at once.
func replayKeyOf(client Principal, authCipher []byte) ReplayKey {
	var stack [512]byte
	b := binary.BigEndian.AppendUint32(stack[:0], uint32(len(client.Name)))
	b = append(b, client.Name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(client.Realm)))
	b = append(b, client.Realm...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(authCipher)))
	b = append(b, authCipher...)
	return sha256.Sum256(b)
}

// check records key for owner (the client principal) until now+lifetime,
// or fails: ErrReplay if it is there already, then ErrReplayCacheFull if
// the cache is at its cap, then ErrReplayQuota if the owner holds its
// share. Replays are refused whatever the quota.
func (rc *ReplayCache) check(key ReplayKey, owner string, now time.Time, lifetime time.Duration) error {
	id := replayID(key[:16])
	rc.mu.Lock()
	defer rc.mu.Unlock()
	t := rc.clock.seconds(now.UnixNano(), false)
	rc.expire(t)
	if exp, ok := rc.keys[id]; ok && t < exp {
		return fmt.Errorf("%w: authenticator seen before", ErrReplay)
	}
	if rc.live >= rc.max {
		return fmt.Errorf("%w: %d live authenticators", ErrReplayCacheFull, rc.live)
	}
	ix, ok := rc.ownerIx[owner]
	if ok && rc.owners[ix].live >= rc.share {
		return fmt.Errorf("%w: %s holds %d live authenticators, its share", ErrReplayQuota, quote(owner), rc.owners[ix].live)
	}
	if !ok {
		if n := len(rc.free); n > 0 {
			ix, rc.free = rc.free[n-1], rc.free[:n-1]
			rc.owners[ix] = replayOwner{name: owner}
		} else {
			ix = uint32(len(rc.owners))
			rc.owners = append(rc.owners, replayOwner{name: owner})
		}
		rc.ownerIx[owner] = ix
	}
	rc.owners[ix].live++
	exp := rc.clock.seconds(now.Add(lifetime).UnixNano(), true)
	rc.keys[id] = exp
	rc.push(replayEntry{id: id, expires: exp, owner: ix})
	rc.peak = max(rc.peak, rc.live)
	return nil
}

// push appends e to the queue.
func (rc *ReplayCache) push(e replayEntry) {
	if n := len(rc.queue); n == 0 || len(rc.queue[n-1]) == replayChunk {
		rc.queue = append(rc.queue, make([]replayEntry, 0, replayChunk))
	}
	last := &rc.queue[len(rc.queue)-1]
	*last = append(*last, e)
	rc.live++
}

// expire drops the entries at the head of the queue that have expired at
// t. Lifetimes are equal unless the skew changed on a reload, so the queue
// is in expiry order; an entry stuck behind a longer-lived one expires
// late, which errs on the side of refusing.
func (rc *ReplayCache) expire(t uint32) {
	for rc.live > 0 {
		block := rc.queue[0]
		e := &block[rc.head]
		if e.expires > t {
			break
		}
		if rc.keys[e.id] == e.expires {
			delete(rc.keys, e.id)
		}
		o := &rc.owners[e.owner]
		if o.live--; o.live == 0 {
			delete(rc.ownerIx, o.name)
			*o = replayOwner{}
			rc.free = append(rc.free, e.owner)
		}
		rc.head++
		rc.live--
		if rc.head == len(block) {
			// A used-up block is dropped; the last one, once empty, is
			// reused.
			if len(rc.queue) == 1 {
				rc.queue[0] = block[:0]
			} else {
				rc.queue[0] = nil
				rc.queue = rc.queue[1:]
			}
			rc.head = 0
		}
	}
	if rc.peak > 65536 && rc.live < rc.peak/4 {
		// Go maps keep their buckets; rebuild them so a past flood does
		// not hold its memory for good. The block list and the owner
		// table shrink with them.
		keys := make(map[replayID]uint32, rc.live)
		for k, v := range rc.keys {
			keys[k] = v
		}
		ownerIx := make(map[string]uint32, len(rc.ownerIx))
		for k, v := range rc.ownerIx {
			ownerIx[k] = v
		}
		rc.keys, rc.ownerIx, rc.peak = keys, ownerIx, rc.live
		rc.queue = slices.Clone(rc.queue)
		if len(rc.ownerIx) < len(rc.owners)/4 {
			rc.compactOwners()
		}
	}
}

// compactOwners renumbers the live owners from 0 after a flood of many
// principals, so the owner table shrinks too.
func (rc *ReplayCache) compactOwners() {
	renum := make(map[uint32]uint32, len(rc.ownerIx))
	owners := make([]replayOwner, 0, len(rc.ownerIx))
	for name, ix := range rc.ownerIx {
		renum[ix] = uint32(len(owners))
		rc.ownerIx[name] = uint32(len(owners))
		owners = append(owners, rc.owners[ix])
	}
	for i, block := range rc.queue {
		from := 0
		if i == 0 {
			from = rc.head
		}
		for j := from; j < len(block); j++ {
			block[j].owner = renum[block[j].owner]
		}
	}
	rc.owners, rc.free = owners, nil
}
