package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/replay"
	"github.com/hashicorp/go-hclog"
)

// ErrReplayStore: the replay_cache block names a store that cannot be
// set up (an unreadable Redis password file, a bad address).
var ErrReplayStore = errors.New("replay cache store unusable")

// replayStore is the process's one replay store: the node's local cache
// and, with store = "redis", the shared store around it. It is built at
// start and kept across reloads, so that a reload cannot reopen a replay
// window (a changed replay_cache block needs a restart: ReloadContract).
type replayStore struct {
	local *gssapi.ReplayCache
	store gssapi.ReplayStore
	redis *replay.Redis // nil for the local store
}

func openReplayStore(cfg config.ReplayCache, log hclog.Logger) (replayStore, error) {
	local := gssapi.NewReplayCacheWith(replay.LocalConfig(cfg))
	st, err := replay.Open(cfg, local, log)
	if err != nil {
		return replayStore{}, fmt.Errorf("%w: %w", ErrReplayStore, err)
	}
	rs := replayStore{local: local, store: st}
	if r, ok := st.(*replay.Redis); ok {
		// go-redis logs through a process-wide logger of its own; route
		// it to ours (debug only) rather than to stderr.
		replay.SetRedisLogger(log.Named("redis"))
		rs.redis = r
	}
	return rs, nil
}

// ping reports, at start, a shared store that does not answer or may
// evict keys; the gateway serves anyway, as on_unavailable says.
func (r replayStore) ping(log hclog.Logger) {
	if r.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.redis.Ping(ctx); err != nil {
		log.Warn("replay cache store not usable at start; AP-REQs are handled as on_unavailable says", "error", err)
		return
	}
	log.Info("replay cache shared through redis")
}

func (r replayStore) close() {
	if r.redis != nil {
		r.redis.Close()
	}
}
