package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
)

// LocalConfig sizes the node's local cache from the replay_cache block.
func LocalConfig(cfg config.ReplayCache) gssapi.ReplayCacheConfig {
	return gssapi.ReplayCacheConfig{MaxEntries: cfg.MaxEntries, MaxPerPrincipal: cfg.MaxPerPrincipal}
}

// Open returns the store the replay_cache block asks for, around local,
// the node's own cache (gssapi.NewReplayCacheWith(LocalConfig(cfg)), kept
// across reloads): local itself for store = "local", or a *Redis for
// store = "redis", failing closed or falling back to local as configured,
// with the password read from its file and log for its warnings. A *Redis
// is to be Closed when replaced. Errors name the file or setting, never
// the password.
func Open(cfg config.ReplayCache, local *gssapi.ReplayCache, log hclog.Logger) (gssapi.ReplayStore, error) {
	if local == nil {
		return nil, errors.New("replay: Open needs the node's local cache")
	}
	switch cfg.Store {
	case config.ReplayStoreLocal, "":
		return local, nil
	case config.ReplayStoreRedis:
	default:
		return nil, fmt.Errorf("replay: unknown store %q", cfg.Store)
	}
	rc := cfg.Redis
	mode, err := ParseUnavailable(cmpOr(rc.OnUnavailable, NameFailClosed))
	if err != nil {
		return nil, err
	}
	password, err := readPassword(rc.PasswordFile)
	if err != nil {
		return nil, err
	}
	r, err := NewRedis(RedisConfig{
		Address:         rc.Address,
		Username:        rc.Username,
		Password:        password,
		DB:              rc.DB,
		KeyPrefix:       rc.KeyPrefix,
		Timeout:         rc.Timeout,
		MaxPerPrincipal: cfg.MaxPerPrincipal,
		OnUnavailable:   mode,
		Local:           local,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// readPassword reads a password file of one line ("" for no file). The
// errors say what is wrong with the file, not what is in it.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The *PathError names the file and the reason only.
		return "", fmt.Errorf("replay: redis password: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("replay: redis password file %s is empty", path)
	case bytes.ContainsAny(b, "\r\n"):
		return "", fmt.Errorf("replay: redis password file %s holds more than one line", path)
	}
	return string(b), nil
}

// SetRedisLogger sends go-redis's own log lines (failed dials, pool
// events) to log at Debug level; Redis stores report an unavailable Redis
// themselves, at most once per WarnInterval. go-redis's logger is
// process-wide: call this once, from main, before opening stores. Without
// it go-redis writes those lines to standard error.
func SetRedisLogger(log hclog.Logger) {
	redis.SetLogger(redisLogger{log})
}

type redisLogger struct{ log hclog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if l.log.IsDebug() {
		l.log.Debug(fmt.Sprintf(format, v...))
	}
}
