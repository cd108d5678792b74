// Package replay holds the AP-REQ replay stores that gateway nodes share:
// Redis, the one implemented here, makes an authenticator accepted by one
// node a replay (KRB_AP_ERR_REPEAT, RFC 4120 §3.2.3) on every other node
// that uses the same server and key prefix. Each store is a
// gssapi.ReplayStore, the interface the acceptor checks authenticators
// through; gssapi.ReplayCache is the node-local one.
//
// The Redis store keeps, per client principal, one sorted set of the
// principal's live authenticators scored by their expiry on Redis's clock.
// One Lua script per AP-REQ drops the expired members, refuses a member
// already there (the replay), refuses a principal holding its share (the
// same share a local cache would give it, so one client cannot crowd the
// others out), and adds the member; Redis runs scripts atomically, so two
// nodes checking the same authenticator at once cannot both accept it.
// Keys carry only what gssapi derives from authenticated bytes (the
// SHA-256 replay key) and a hash of the principal name; the total is
// bounded by the per-principal share times the principals and, as a whole,
// by Redis's maxmemory: with maxmemory-policy noeviction (Redis's default)
// a full server answers OOM, which refuses the AP-REQ as
// gssapi.ErrReplayCacheFull. Any policy that evicts keys can drop a live
// entry and so let a replay through; Redis.Ping reports one.
//
// Each check is bounded by a short timeout (DefaultTimeout), so a slow or
// unreachable Redis delays a handshake by at most that much. When Redis
// cannot answer, the store either refuses the AP-REQ
// (gssapi.ErrReplayStoreUnavailable, the default, FailClosed) or lets the
// node's local cache decide (FallBackLocal), logging a warning at most
// once per interval and counting the fallbacks. In FallBackLocal mode
// every authenticator is also recorded locally, so a node keeps refusing
// the AP-REQs it accepted itself, through an outage and after it; what it
// cannot know during an outage is what the other nodes accepted. After a
// failure the store waits RetryInterval before asking Redis again.
//
// Open builds the store a configuration asks for (the replay_cache block
// of package config). The package does not run Redis, replicate it, or
// speak Redis Cluster, Sentinel or TLS.
package replay
