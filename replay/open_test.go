package replay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/replay"
	"github.com/gssocks/gssocks/replay/redistest"
	"github.com/hashicorp/go-hclog"
)

// loadReplayCache loads a configuration file whose kerberos block holds
// body, from dir, the way the gateway does (password file checked).
func loadReplayCache(t *testing.T, dir, body string) config.ReplayCache {
	t.Helper()
	src := "listen = [\"127.0.0.1:1080\"]\nkerberos {\n" + body + "\n}\nrule \"r\" {}\n"
	path := filepath.Join(dir, "gssocks.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := config.Loader{SkipKeytabCheck: true}.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg.Kerberos.ReplayCache
}

// TestOpenFromConfig: the replay_cache block as the gateway reads it
// becomes the store: the local cache itself, or Redis stores (password
// from its file) that share replays, fail closed by default and fall back
// to the local cache with on_unavailable = "local".
func TestOpenFromConfig(t *testing.T) {
	dir := t.TempDir()
	local := gssapi.NewReplayCacheWith(replay.LocalConfig(loadReplayCache(t, dir, `replay_cache {
  max_entries       = 1000
  max_per_principal = 10
}`)))
	if local.PrincipalShare() != 10 {
		t.Fatalf("local share %d", local.PrincipalShare())
	}
	if s, err := replay.Open(loadReplayCache(t, dir, ``), local, nil); err != nil || s != gssapi.ReplayStore(local) {
		t.Fatalf("store = local: %v, %v", s, err)
	}

	const secret = "redis-secret-41d2"
	srv := redistest.Start(t, "--requirepass", secret)
	if err := os.WriteFile(filepath.Join(dir, "redis.password"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(mode string) *replay.Redis {
		t.Helper()
		cfg := loadReplayCache(t, dir, `replay_cache {
  store             = "redis"
  max_per_principal = 3
  redis {
    address        = "`+srv.Addr+`"
    password_file  = "redis.password"
    key_prefix     = "test:"
    # Not the 200ms default, for a loaded machine (see loadedTimeout);
    # 1s is the longest the configuration takes without a warning.
    timeout        = "1s"
    on_unavailable = "`+mode+`"
  }
}`)
		s, err := replay.Open(cfg, local, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		r := s.(*replay.Redis)
		t.Cleanup(func() { r.Close() })
		if r.Mode().String() != mode || r.PrincipalShare() != 3 {
			t.Fatalf("mode %v share %d", r.Mode(), r.PrincipalShare())
		}
		return r
	}
	a, b := open("fail-closed"), open("local")
	ctx, now := context.Background(), time.Now()
	k := randomKey(t)
	if err := a.Check(ctx, k, "u@R", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Check(ctx, k, "u@R", now, time.Minute); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("second node: %v", err)
	}
	srv.Stop()
	if err := a.Check(ctx, randomKey(t), "u@R", now, time.Minute); !errors.Is(err, gssapi.ErrReplayStoreUnavailable) {
		t.Fatalf("fail-closed, Redis down: %v", err)
	}
	if err := b.Check(ctx, randomKey(t), "u@R", now, time.Minute); err != nil || b.Fallbacks() != 1 {
		t.Fatalf("local, Redis down: %v (%d fallbacks)", err, b.Fallbacks())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	local := gssapi.NewReplayCache(0)
	const secret = "line-one-secret"
	for _, c := range []struct {
		name, content, want string
	}{
		{"empty.password", "\n", "is empty"},
		{"two.password", secret + "\nline-two-secret\n", "more than one line"},
		{"missing.password", "", "no such file"},
	} {
		path := filepath.Join(dir, c.name)
		if c.content != "" {
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg := config.ReplayCache{Store: "redis", Redis: config.ReplayRedis{Address: "127.0.0.1:1", PasswordFile: path}}
		_, err := replay.Open(cfg, local, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := replay.Open(config.ReplayCache{Store: "memcached"}, local, nil); err == nil {
		t.Error("unknown store opened")
	}
	if _, err := replay.Open(config.ReplayCache{}, nil, nil); err == nil {
		t.Error("opened without a local cache")
	}
}
