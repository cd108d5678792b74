package replay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// Defaults of RedisConfig.
const (
	// DefaultKeyPrefix starts every key the store writes.
	DefaultKeyPrefix = "gssocks:replay:"
	// DefaultTimeout bounds one check, connecting included: the longest a
	// slow Redis delays a handshake.
	DefaultTimeout = 200 * time.Millisecond
	// DefaultRetryInterval is how long checks skip Redis after it failed
	// to answer, so an outage costs each handshake nothing rather than a
	// timeout.
	DefaultRetryInterval = time.Second
	// DefaultWarnInterval is the least time between two warnings about an
	// unavailable Redis.
	DefaultWarnInterval = 10 * time.Second
)

// Unavailable says what a Redis store does when Redis cannot answer.
type Unavailable int

const (
	// FailClosed refuses the AP-REQ with gssapi.ErrReplayStoreUnavailable:
	// no node accepts what it cannot check against the others.
	FailClosed Unavailable = iota
	// FallBackLocal lets the node's own cache decide: AP-REQs keep being
	// accepted, and refused as replays on the node that saw them, but a
	// replay sent to another node during the outage is not detected.
	FallBackLocal
)

// The configuration names of the Unavailable modes.
const (
	NameFailClosed    = "fail-closed"
	NameFallBackLocal = "local"
)

// ParseUnavailable reads a mode by its configuration name: "fail-closed"
// or "local".
func ParseUnavailable(s string) (Unavailable, error) {
	switch s {
	case NameFailClosed:
		return FailClosed, nil
	case NameFallBackLocal:
		return FallBackLocal, nil
	}
	return 0, fmt.Errorf("replay: on_unavailable %s: want %q or %q", strconv.Quote(s), NameFailClosed, NameFallBackLocal)
}

func (u Unavailable) String() string {
	if u == FallBackLocal {
		return NameFallBackLocal
	}
	return NameFailClosed
}

// ErrEvictionPolicy: Redis may evict the store's keys (its
// maxmemory-policy is not noeviction), and an evicted entry lets a replay
// through.
var ErrEvictionPolicy = errors.New("replay: redis may evict replay entries")

// RedisConfig configures a Redis store.
type RedisConfig struct {
	// Address is Redis's host:port, or the absolute path of its Unix
	// socket. Required.
	Address string
	// Username and Password authenticate to Redis (AUTH; Username needs
	// Redis 6 ACLs). Empty: none.
	Username, Password string
	// DB is the database number (SELECT).
	DB int
	// KeyPrefix starts every key (default DefaultKeyPrefix). Nodes share
	// replays exactly when they share the server, DB and prefix.
	KeyPrefix string
	// Timeout bounds each check, connecting included (default
	// DefaultTimeout).
	Timeout time.Duration
	// MaxPerPrincipal caps one client principal's live authenticators
	// across all nodes. Default: Local's share, or
	// gssapi.DefaultPrincipalShare(0) without Local.
	MaxPerPrincipal int
	// OnUnavailable is what a check does when Redis cannot answer
	// (default FailClosed).
	OnUnavailable Unavailable
	// Local is the node's own cache: required with FallBackLocal, which
	// records every authenticator in it and asks it when Redis cannot
	// answer; unused with FailClosed. Share it with the acceptor's
	// previous store across reloads.
	Local *gssapi.ReplayCache
	// RetryInterval is how long checks skip Redis after it failed (default
	// DefaultRetryInterval).
	RetryInterval time.Duration
	// WarnInterval is the least time between two log lines about Redis
	// being unavailable (default DefaultWarnInterval).
	WarnInterval time.Duration
	// Logger receives those lines and the one when Redis is back (default:
	// none).
	Logger hclog.Logger
	// Now is the wall clock for RetryInterval and WarnInterval (default
	// time.Now). Entry lifetimes run on Redis's clock.
	Now func() time.Time
}

// Redis is a gssapi.ReplayStore kept in Redis and shared by every node
// using the same server, DB and key prefix (see the package comment). Safe
// for concurrent use; Close it when it is no longer used.
type Redis struct {
	client    *redis.Client
	addr      string
	prefix    string
	share     int
	timeout   time.Duration
	retry     time.Duration
	warnEvery time.Duration
	mode      Unavailable
	local     *gssapi.ReplayCache
	log       hclog.Logger
	now       func() time.Time

	retryAt     atomic.Int64 // Unix ns; until then checks skip Redis
	lastErr     atomic.Pointer[string]
	down        atomic.Bool  // the last attempt failed
	lastWarn    atomic.Int64 // Unix ns
	unavailable atomic.Uint64
	fallbacks   atomic.Uint64
}

// NewRedis returns a store for cfg. It does not connect: the first check
// does, and Ping tells whether Redis answers. Errors name the missing or
// contradictory setting.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Address == "" {
		return nil, errors.New("replay: redis store without an address")
	}
	if cfg.OnUnavailable != FailClosed && cfg.OnUnavailable != FallBackLocal {
		return nil, fmt.Errorf("replay: unknown on_unavailable mode %d", cfg.OnUnavailable)
	}
	if cfg.OnUnavailable == FallBackLocal && cfg.Local == nil {
		return nil, errors.New("replay: on_unavailable = \"local\" needs the node's local cache")
	}
	if cfg.MaxPerPrincipal < 0 || cfg.DB < 0 || cfg.Timeout < 0 || cfg.RetryInterval < 0 || cfg.WarnInterval < 0 {
		return nil, errors.New("replay: negative redis setting")
	}
	r := &Redis{
		addr:      cfg.Address,
		prefix:    cmpOr(cfg.KeyPrefix, DefaultKeyPrefix),
		share:     cfg.MaxPerPrincipal,
		timeout:   cmpOr(cfg.Timeout, DefaultTimeout),
		retry:     cmpOr(cfg.RetryInterval, DefaultRetryInterval),
		warnEvery: cmpOr(cfg.WarnInterval, DefaultWarnInterval),
		mode:      cfg.OnUnavailable,
		log:       cfg.Logger,
		now:       cfg.Now,
	}
	if r.mode == FallBackLocal {
		r.local = cfg.Local
	}
	if r.share == 0 {
		r.share = gssapi.DefaultPrincipalShare(0)
		if cfg.Local != nil {
			r.share = cfg.Local.PrincipalShare()
		}
	}
	if r.log == nil {
		r.log = hclog.NewNullLogger()
	}
	if r.now == nil {
		r.now = time.Now
	}
	network := "tcp"
	if strings.HasPrefix(cfg.Address, "/") {
		network = "unix"
	}
	r.client = redis.NewClient(&redis.Options{
		Network:  network,
		Addr:     cfg.Address,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		// RESP2 and no CLIENT SETINFO: the fewest round trips and server
		// features on connect.
		Protocol:        2,
		DisableIdentity: true,
		// One attempt per check, bounded by the timeout: a script retried
		// after its reply was lost would refuse the AP-REQ as a replay of
		// itself.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialerRetryTimeout:    time.Millisecond,
		DialTimeout:           r.timeout,
		ReadTimeout:           r.timeout,
		WriteTimeout:          r.timeout,
		PoolTimeout:           r.timeout,
		ContextTimeoutEnabled: true,
	})
	return r, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkScript records one authenticator. KEYS[1] is the principal's sorted
// set of live authenticators, scored by expiry in milliseconds of Redis's
// clock; ARGV is the replay key, the lifetime in milliseconds and the
// share. It answers {0, n} when recorded (n live now), {1, 0} for a
// replay, {2, n} when the principal holds its share. Members whose score
// has passed are dead: they are ignored, then dropped after the add. The
// add is the script's first write because Redis checks maxmemory only
// there (a script that has written cannot be stopped), so a full Redis
// refuses it with OOM and nothing is changed. The set expires with its
// newest member, so an idle principal leaves nothing behind.
var checkScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seen and tonumber(seen) > now then
  return {1, 0}
end
local n = redis.call('ZCOUNT', KEYS[1], string.format('(%.0f', now), '+inf')
if n >= tonumber(ARGV[3]) then
  return {2, n}
end
local life = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + life, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < life then
  redis.call('PEXPIRE', KEYS[1], life)
end
return {0, n + 1}
`)

// Check implements gssapi.ReplayStore (see the package comment for what
// happens when Redis cannot answer). Entries live lifetime on Redis's
// clock; now is used only with the local cache.
func (r *Redis) Check(ctx context.Context, key gssapi.ReplayKey, principal string, now time.Time, lifetime time.Duration) error {
	if r.local != nil && r.local.Seen(key, now) {
		return fmt.Errorf("%w: authenticator seen before by this node", gssapi.ErrReplay)
	}
	err := r.shared(ctx, key, principal, lifetime)
	if !errors.Is(err, gssapi.ErrReplayStoreUnavailable) {
		if err == nil && r.local != nil {
			// Also remember it here, so that during an outage this node
			// still refuses what it accepted before. The local cache's
			// own refusals (its share, its cap) are not Redis's verdict
			// and do not count.
			_ = r.local.Check(ctx, key, principal, now, lifetime)
		}
		return err
	}
	r.unavailable.Add(1)
	if r.local == nil {
		r.warn(hclog.Error, "replay store unavailable: refusing AP-REQs (on_unavailable = fail-closed)", err)
		return err
	}
	r.fallbacks.Add(1)
	r.warn(hclog.Warn, "replay store unavailable: this node's own replay cache decides until it is back (on_unavailable = local)", err)
	return r.local.Check(ctx, key, principal, now, lifetime)
}

// shared runs the check in Redis.
func (r *Redis) shared(ctx context.Context, key gssapi.ReplayKey, principal string, lifetime time.Duration) error {
	if at := r.retryAt.Load(); at != 0 && r.now().UnixNano() < at {
		last := ""
		if p := r.lastErr.Load(); p != nil {
			last = *p
		}
		return fmt.Errorf("%w: redis %s did not answer (%s); next try within %s", gssapi.ErrReplayStoreUnavailable, r.addr, last, r.retry)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	life := max(lifetime.Milliseconds(), 1)
	res, err := checkScript.Run(ctx, r.client, []string{r.principalKey(principal)}, string(key[:]), life, r.share).Int64Slice()
	if err != nil {
		if parent.Err() != nil {
			// The caller gave up; that says nothing about Redis.
			return fmt.Errorf("%w: redis %s: %v", gssapi.ErrReplayStoreUnavailable, r.addr, parent.Err())
		}
		if redis.IsOOMError(err) {
			// Redis is up and full: refuse as a full local cache would,
			// in every mode (the local cache would not know the
			// others' entries either).
			r.up()
			return fmt.Errorf("%w: redis %s is at its maxmemory", gssapi.ErrReplayCacheFull, r.addr)
		}
		r.failed(err)
		return fmt.Errorf("%w: redis %s: %v", gssapi.ErrReplayStoreUnavailable, r.addr, err)
	}
	if len(res) != 2 {
		err := fmt.Errorf("%w: redis %s: unexpected reply of %d values", gssapi.ErrReplayStoreUnavailable, r.addr, len(res))
		r.failed(err)
		return err
	}
	r.up()
	switch res[0] {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: authenticator seen before (shared store)", gssapi.ErrReplay)
	case 2:
		return fmt.Errorf("%w: %s holds %d live authenticators across the nodes, its share", gssapi.ErrReplayQuota, strconv.Quote(principal), res[1])
	}
	err = fmt.Errorf("%w: redis %s: unexpected reply %d", gssapi.ErrReplayStoreUnavailable, r.addr, res[0])
	r.failed(err)
	return err
}

// principalKey names the principal's set: a hash, so keys have one length
// and no character of a name from the ticket reaches a Redis key.
func (r *Redis) principalKey(principal string) string {
	h := sha256.Sum256([]byte(principal))
	return r.prefix + hex.EncodeToString(h[:])
}

// failed starts a retry interval after Redis failed to answer.
func (r *Redis) failed(err error) {
	msg := err.Error()
	r.lastErr.Store(&msg)
	r.retryAt.Store(r.now().Add(r.retry).UnixNano())
	r.down.Store(true)
}

// up notes an answer; the first after a failure is logged.
func (r *Redis) up() {
	r.retryAt.Store(0)
	if r.down.Swap(false) {
		r.log.Info("replay store reachable again: the nodes share replays again", "address", r.addr,
			"unavailable", r.unavailable.Load(), "fallbacks", r.fallbacks.Load())
	}
}

// warn logs msg at most once per warnEvery.
func (r *Redis) warn(level hclog.Level, msg string, err error) {
	now := r.now().UnixNano()
	last := r.lastWarn.Load()
	if last != 0 && now-last < int64(r.warnEvery) || !r.lastWarn.CompareAndSwap(last, now) {
		return
	}
	r.log.Log(level, msg, "address", r.addr, "error", err.Error(),
		"unavailable", r.unavailable.Load(), "fallbacks", r.fallbacks.Load())
}

// Unavailable is how many checks Redis could not answer (each refused or
// decided locally), since the store was made.
func (r *Redis) Unavailable() uint64 { return r.unavailable.Load() }

// Fallbacks is how many of those the local cache decided (FallBackLocal).
func (r *Redis) Fallbacks() uint64 { return r.fallbacks.Load() }

// Mode is what the store does when Redis cannot answer.
func (r *Redis) Mode() Unavailable { return r.mode }

// PrincipalShare is the most live authenticators one client principal may
// hold across the nodes.
func (r *Redis) PrincipalShare() int { return r.share }

// Ping asks Redis whether it answers (an error wrapping
// gssapi.ErrReplayStoreUnavailable if not) and whether it keeps the
// store's entries: ErrEvictionPolicy if its maxmemory-policy may evict
// them. A server that does not let CONFIG GET be used (managed services
// often do not) is taken as keeping them. For readiness checks and a
// warning at start; it does not change how checks behave.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: redis %s: %v", gssapi.ErrReplayStoreUnavailable, r.addr, err)
	}
	kv, err := r.client.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil // CONFIG refused or renamed
		}
		return fmt.Errorf("%w: redis %s: %v", gssapi.ErrReplayStoreUnavailable, r.addr, err)
	}
	if p, ok := kv["maxmemory-policy"]; ok && p != "noeviction" {
		return fmt.Errorf("%w: maxmemory-policy is %s; set it to noeviction", ErrEvictionPolicy, strconv.Quote(p))
	}
	return nil
}

// Close releases the connections. Checks after Close fail as unavailable.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("replay: close redis client: %w", err)
	}
	return nil
}
