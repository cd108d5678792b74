package replay_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/replay"
	"github.com/gssocks/gssocks/replay/redistest"
	"github.com/gssocks/gssocks/testenv"
	"github.com/hashicorp/go-hclog"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) {
	// go-redis's failed dials (Redis is stopped on purpose) stay out of
	// the test output.
	replay.SetRedisLogger(hclog.NewNullLogger())
	os.Exit(realm.Run(m))
}

var peer = netip.MustParseAddr("127.0.0.1")

// user mints AP-REQs for one client from one service ticket: each a new
// authenticator, as a client (or an attacker holding the session key)
// makes them.
type user struct {
	cfg gssapi.InitiatorConfig
}

func newUser(t *testing.T, env *krbtest.Env, name string) user {
	t.Helper()
	cfg, err := env.InitiatorConfig(name, "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	return user{cfg}
}

func (u user) apReq(t *testing.T) []byte {
	t.Helper()
	_, tok, err := gssapi.NewInitiator(u.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// loadedTimeout is the Redis timeout of the tests' stores instead of the
// product's DefaultTimeout (200ms, chosen because it delays every
// handshake): with the whole suite on two cores and -race, a loopback
// round trip to redis-server, or the dial, takes longer at times, and a
// check then fails with "context deadline exceeded" that says nothing
// about what the test is about. TestRedisSlow checks both its own short
// timeout and the default; TestRedisUnavailable checks that a refusal
// when Redis is down does not wait for the timeout.
const loadedTimeout = 2 * time.Second

// newRedis is a store on srv; cfg.Address is filled in, and a zero
// cfg.Timeout becomes loadedTimeout.
func newRedis(t *testing.T, srv *redistest.Server, cfg replay.RedisConfig) *replay.Redis {
	t.Helper()
	cfg.Address = srv.Addr
	if cfg.Timeout == 0 {
		cfg.Timeout = loadedTimeout
	}
	r, err := replay.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// accept runs tok through a and returns the error; an accepted AP-REQ
// must come with a context and an AP-REP, a refused one with neither.
func accept(t *testing.T, a *gssapi.Acceptor, tok []byte) error {
	t.Helper()
	ctx, rep, err := a.Accept(append([]byte(nil), tok...), peer)
	if (err == nil) != (ctx != nil && len(rep) > 0) {
		t.Fatalf("Accept: err %v with context %v and %d bytes of AP-REP", err, ctx, len(rep))
	}
	return err
}

// TestRedisSharedAcrossNodes: two nodes (acceptors with their own Redis
// clients) on one redis-server: an AP-REQ accepted by either is a replay
// on both; entries live twice the skew on Redis's clock.
func TestRedisSharedAcrossNodes(t *testing.T) {
	env := realm.Get(t)
	srv := redistest.Start(t)
	nodeA := env.Acceptor(t, gssapi.AcceptorConfig{ReplayCache: newRedis(t, srv, replay.RedisConfig{})})
	nodeB := env.Acceptor(t, gssapi.AcceptorConfig{ReplayCache: newRedis(t, srv, replay.RedisConfig{})})
	alice := newUser(t, env, "alice")

	for _, order := range [][2]*gssapi.Acceptor{{nodeA, nodeB}, {nodeB, nodeA}} {
		tok := alice.apReq(t)
		if err := accept(t, order[0], tok); err != nil {
			t.Fatalf("first use: %v", err)
		}
		for _, n := range order {
			if err := accept(t, n, tok); !errors.Is(err, gssapi.ErrReplay) {
				t.Fatalf("replay on a node: %v", err)
			}
		}
	}
	// A third node with another key prefix shares nothing with them.
	other := env.Acceptor(t, gssapi.AcceptorConfig{ReplayCache: newRedis(t, srv, replay.RedisConfig{KeyPrefix: "other:"})})
	tok := alice.apReq(t)
	if err := accept(t, nodeA, tok); err != nil {
		t.Fatal(err)
	}
	if err := accept(t, other, tok); err != nil {
		t.Fatalf("another prefix: %v", err)
	}

	// What is in Redis: one sorted set for alice, three members, expiring
	// twice the default skew from now.
	keys, err := srv.Do("KEYS", replay.DefaultKeyPrefix+"*")
	if err != nil || keys != "*1" {
		t.Fatalf("KEYS: %q %v", keys, err)
	}
	key := replay.DefaultKeyPrefix + principalHash("alice@"+env.Realm.Name)
	if n, err := srv.Do("ZCARD", key); err != nil || n != ":3" {
		t.Fatalf("ZCARD %s: %q %v", key, n, err)
	}
	pttl, err := srv.Do("PTTL", key)
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	fmt.Sscanf(pttl, ":%d", &ms)
	if life := 2 * gssapi.DefaultClockSkew; ms > life.Milliseconds() || ms < (life-time.Minute).Milliseconds() {
		t.Fatalf("PTTL %s, want about %v", pttl, life)
	}
}

// TestRedisPrincipalShareAcrossNodes: alice's AP-REQs spread over two
// nodes count against one share; past it both refuse her with
// ErrReplayQuota while bob is served and her accepted AP-REQs stay
// replays; the share frees as her entries expire.
func TestRedisPrincipalShareAcrossNodes(t *testing.T) {
	env := realm.Get(t)
	srv := redistest.Start(t)
	const share = 4
	const skew = 500 * time.Millisecond // entries live 1s
	nodes := []*gssapi.Acceptor{
		env.Acceptor(t, gssapi.AcceptorConfig{ClockSkew: skew, ReplayCache: newRedis(t, srv, replay.RedisConfig{MaxPerPrincipal: share})}),
		env.Acceptor(t, gssapi.AcceptorConfig{ClockSkew: skew, ReplayCache: newRedis(t, srv, replay.RedisConfig{MaxPerPrincipal: share})}),
	}
	alice, bob := newUser(t, env, "alice"), newUser(t, env, "bob")
	var accepted [][]byte
	for i := range 3 * share {
		tok := alice.apReq(t)
		err := accept(t, nodes[i%2], tok)
		switch {
		case i < share && err == nil:
			accepted = append(accepted, tok)
		case i >= share && errors.Is(err, gssapi.ErrReplayQuota):
		default:
			t.Fatalf("alice's AP-REQ %d on node %d: %v", i, i%2, err)
		}
		if err := accept(t, nodes[(i+1)%2], bob.apReq(t)); i < share && err != nil {
			t.Fatalf("bob during alice's flood: %v", err)
		}
	}
	for i, tok := range accepted {
		if err := accept(t, nodes[(i+1)%2], tok); !errors.Is(err, gssapi.ErrReplay) {
			t.Fatalf("replay of alice's AP-REQ %d: %v", i, err)
		}
	}
	time.Sleep(2*skew + 100*time.Millisecond)
	if err := accept(t, nodes[0], alice.apReq(t)); err != nil {
		t.Fatalf("alice after her entries expired: %v", err)
	}
}

// TestRedisUnavailable: Redis stops. A fail-closed node refuses every
// AP-REQ (and does not consume it: it is accepted once Redis is back); a
// local node accepts a new AP-REQ once and refuses it again, refuses what
// it had accepted through Redis before the outage, warns once per
// interval and counts its fallbacks. Redis restarts (empty): both nodes
// share again.
func TestRedisUnavailable(t *testing.T) {
	env := realm.Get(t)
	srv := redistest.Start(t)
	var logs testutil.LogBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	closedStore := newRedis(t, srv, replay.RedisConfig{RetryInterval: 50 * time.Millisecond, Logger: log.Named("closed")})
	localStore := newRedis(t, srv, replay.RedisConfig{
		OnUnavailable: replay.FallBackLocal, Local: gssapi.NewReplayCache(0),
		RetryInterval: 50 * time.Millisecond, WarnInterval: time.Hour, Logger: log.Named("local"),
	})
	closed := env.Acceptor(t, gssapi.AcceptorConfig{ReplayCache: closedStore})
	local := env.Acceptor(t, gssapi.AcceptorConfig{ReplayCache: localStore})
	alice := newUser(t, env, "alice")

	before := alice.apReq(t)
	if err := accept(t, local, before); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	held := alice.apReq(t)
	start := time.Now()
	err := accept(t, closed, held)
	if !errors.Is(err, gssapi.ErrReplayStoreUnavailable) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("fail-closed node, Redis down: %v", err)
	}
	// Refused at once (connection refused), not after the timeout.
	if d := time.Since(start); d >= loadedTimeout/2 {
		t.Fatalf("refusal took %v", d)
	}
	if closedStore.Unavailable() == 0 || closedStore.Fallbacks() != 0 {
		t.Fatalf("fail-closed counters: %d unavailable, %d fallbacks", closedStore.Unavailable(), closedStore.Fallbacks())
	}

	tok := alice.apReq(t)
	if err := accept(t, local, tok); err != nil {
		t.Fatalf("local node, Redis down: %v", err)
	}
	for _, again := range [][]byte{tok, before} {
		if err := accept(t, local, again); !errors.Is(err, gssapi.ErrReplay) {
			t.Fatalf("local node, replay during the outage: %v", err)
		}
	}
	for range 5 {
		if err := accept(t, local, alice.apReq(t)); err != nil {
			t.Fatalf("local node, Redis down: %v", err)
		}
	}
	if n := localStore.Fallbacks(); n != 6 {
		t.Fatalf("%d fallbacks, want 6", n)
	}
	if n := strings.Count(logs.String(), "[WARN]  local: replay store unavailable"); n != 1 {
		t.Fatalf("%d warnings in one interval, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "[ERROR] closed: replay store unavailable: refusing") {
		t.Fatalf("no error logged by the fail-closed node:\n%s", logs.String())
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Back: the refused AP-REQ is accepted (once), and the nodes share.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := accept(t, closed, held)
		if err == nil {
			break
		}
		if !errors.Is(err, gssapi.ErrReplayStoreUnavailable) || time.Now().After(deadline) {
			t.Fatalf("fail-closed node after Redis returned: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := accept(t, local, held); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("local node, replay of what the other accepted: %v", err)
	}
	fresh := alice.apReq(t)
	if err := accept(t, local, fresh); err != nil {
		t.Fatalf("local node after Redis returned: %v", err)
	}
	if err := accept(t, closed, fresh); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("fail-closed node, replay of what the local one accepted: %v", err)
	}
	// What the local node accepted during the outage it still refuses.
	if err := accept(t, local, tok); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("local node after the outage, replay of an outage AP-REQ: %v", err)
	}
	if localStore.Fallbacks() != 6 {
		t.Fatalf("fallbacks went on after Redis returned: %d", localStore.Fallbacks())
	}
	if !strings.Contains(logs.String(), "replay store reachable again") {
		t.Fatalf("no line when Redis returned:\n%s", logs.String())
	}
}

// TestRedisSlow: a Redis that does not answer in time (CLIENT PAUSE) costs
// a handshake no more than the timeout, and then nothing for the retry
// interval.
func TestRedisSlow(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	r := newRedis(t, srv, replay.RedisConfig{Timeout: timeout, RetryInterval: time.Hour})
	ctx := context.Background()
	if err := r.Check(ctx, randomKey(t), "alice@R", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if reply, err := srv.Do("CLIENT", "PAUSE", "3000", "ALL"); err != nil || reply != "+OK" {
		t.Fatalf("CLIENT PAUSE: %q %v", reply, err)
	}
	// The pause lasts 3s; the check gives up after the timeout (with
	// room for a loaded machine).
	start := time.Now()
	err := r.Check(ctx, randomKey(t), "alice@R", time.Now(), time.Minute)
	if d := time.Since(start); !errors.Is(err, gssapi.ErrReplayStoreUnavailable) || d < timeout || d > time.Second {
		t.Fatalf("paused Redis: %v after %v", err, d)
	}
	// Within the retry interval Redis is not asked at all.
	err = r.Check(ctx, randomKey(t), "alice@R", time.Now(), time.Minute)
	if !errors.Is(err, gssapi.ErrReplayStoreUnavailable) || !strings.Contains(err.Error(), "next try within") || r.Unavailable() != 2 {
		t.Fatalf("within the retry interval: %v (%d unavailable)", err, r.Unavailable())
	}
	// A store configured without a timeout gives up after the product's
	// DefaultTimeout (the other tests' stores allow loadedTimeout).
	def, err := replay.NewRedis(replay.RedisConfig{Address: srv.Addr, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	start = time.Now()
	err = def.Check(ctx, randomKey(t), "alice@R", time.Now(), time.Minute)
	if d := time.Since(start); !errors.Is(err, gssapi.ErrReplayStoreUnavailable) || d < replay.DefaultTimeout || d >= loadedTimeout {
		t.Fatalf("paused Redis, default timeout: %v after %v", err, d)
	}
}

// TestRedisConcurrentNodes: eight goroutines on two nodes race the same
// authenticators through Redis: each is accepted exactly once.
func TestRedisConcurrentNodes(t *testing.T) {
	srv := redistest.Start(t)
	nodes := []*replay.Redis{newRedis(t, srv, replay.RedisConfig{}), newRedis(t, srv, replay.RedisConfig{})}
	keys := make([]gssapi.ReplayKey, 200)
	for i := range keys {
		keys[i] = randomKey(t)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted = map[int]int{}
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, k := range keys {
				err := nodes[g%2].Check(context.Background(), k, "u@R", time.Now(), time.Minute)
				switch {
				case err == nil:
					mu.Lock()
					accepted[i]++
					mu.Unlock()
				case !errors.Is(err, gssapi.ErrReplay):
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range keys {
		if accepted[i] != 1 {
			t.Fatalf("key %d accepted %d times", i, accepted[i])
		}
	}
}

// TestRedisOutOfMemory: a Redis at its maxmemory (noeviction) refuses new
// entries as ErrReplayCacheFull, in either mode (not a fallback: Redis
// answered), and still refuses replays.
func TestRedisOutOfMemory(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedis(t, srv, replay.RedisConfig{OnUnavailable: replay.FallBackLocal, Local: gssapi.NewReplayCache(0)})
	ctx := context.Background()
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	first := randomKey(t)
	if err := r.Check(ctx, first, "u0@R", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if reply, err := srv.Do("CONFIG", "SET", "maxmemory", "1"); err != nil || reply != "+OK" {
		t.Fatalf("CONFIG SET: %q %v", reply, err)
	}
	err := r.Check(ctx, randomKey(t), "u1@R", time.Now(), time.Minute)
	if !errors.Is(err, gssapi.ErrReplayCacheFull) {
		t.Fatalf("Redis at maxmemory: %v", err)
	}
	if r.Fallbacks() != 0 || r.Unavailable() != 0 {
		t.Fatalf("out of memory counted as unavailable: %d, %d", r.Unavailable(), r.Fallbacks())
	}
	// A fresh node (nothing local) still learns the replay from Redis.
	other := newRedis(t, srv, replay.RedisConfig{})
	if err := other.Check(ctx, first, "u0@R", time.Now(), time.Minute); !errors.Is(err, gssapi.ErrReplay) && !errors.Is(err, gssapi.ErrReplayCacheFull) {
		t.Fatalf("replay at maxmemory: %v", err)
	}
}

// TestRedisPingEvictionPolicy: Ping reports a policy that may evict the
// store's entries, and an unreachable Redis.
func TestRedisPingEvictionPolicy(t *testing.T) {
	srv := redistest.Start(t, "--maxmemory-policy", "volatile-lru")
	r := newRedis(t, srv, replay.RedisConfig{})
	if err := r.Ping(context.Background()); !errors.Is(err, replay.ErrEvictionPolicy) || !strings.Contains(err.Error(), "volatile-lru") {
		t.Fatalf("Ping: %v", err)
	}
	srv.Stop()
	if err := r.Ping(context.Background()); !errors.Is(err, gssapi.ErrReplayStoreUnavailable) {
		t.Fatalf("Ping, Redis stopped: %v", err)
	}
}

// TestRedisAuth: the password opens Redis; a wrong one is "unavailable"
// (fail closed), and no error or log line shows either password.
func TestRedisAuth(t *testing.T) {
	const secret, wrong = "redis-secret-8f3a", "wrong-secret-77c1"
	srv := redistest.Start(t, "--requirepass", secret)
	var logs testutil.LogBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	good := newRedis(t, srv, replay.RedisConfig{Password: secret, Logger: log})
	if err := good.Check(context.Background(), randomKey(t), "u@R", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", wrong} {
		bad := newRedis(t, srv, replay.RedisConfig{Password: pw, Logger: log})
		err := bad.Check(context.Background(), randomKey(t), "u@R", time.Now(), time.Minute)
		if !errors.Is(err, gssapi.ErrReplayStoreUnavailable) {
			t.Fatalf("password %q: %v", pw, err)
		}
		for _, s := range []string{err.Error(), logs.String()} {
			if strings.Contains(s, secret) || strings.Contains(s, wrong) {
				t.Fatalf("a password in %q", s)
			}
		}
	}
}

func TestNewRedisErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  replay.RedisConfig
		want string
	}{
		{replay.RedisConfig{}, "without an address"},
		{replay.RedisConfig{Address: "127.0.0.1:1", OnUnavailable: replay.FallBackLocal}, "local cache"},
		{replay.RedisConfig{Address: "127.0.0.1:1", OnUnavailable: 7}, "unknown"},
		{replay.RedisConfig{Address: "127.0.0.1:1", Timeout: -1}, "negative"},
	} {
		if _, err := replay.NewRedis(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	r, err := replay.NewRedis(replay.RedisConfig{Address: "127.0.0.1:1", Local: gssapi.NewReplayCacheWith(gssapi.ReplayCacheConfig{MaxEntries: 1000, MaxPerPrincipal: 7})})
	if err != nil || r.PrincipalShare() != 7 || r.Mode() != replay.FailClosed {
		t.Fatalf("share from the local cache: %v %d %v", err, r.PrincipalShare(), r.Mode())
	}
	r.Close()
	for _, s := range []string{"fail-closed", "local"} {
		if m, err := replay.ParseUnavailable(s); err != nil || m.String() != s {
			t.Errorf("ParseUnavailable(%q): %v %v", s, m, err)
		}
	}
	if _, err := replay.ParseUnavailable("open"); err == nil {
		t.Error("ParseUnavailable accepted \"open\"")
	}
}

func randomKey(t *testing.T) gssapi.ReplayKey {
	t.Helper()
	var k gssapi.ReplayKey
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

// principalHash is how the store names a principal's set (after the key
// prefix).
func principalHash(principal string) string {
	h := sha256.Sum256([]byte(principal))
	return hex.EncodeToString(h[:])
}
