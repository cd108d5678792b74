package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplayCacheFromHCL decodes the replay_cache block (and the
// deprecated replay_cache_size) into the values the gateway builds its
// replay store from.
func TestReplayCacheFromHCL(t *testing.T) {
	const head = `listen = ["127.0.0.1:1080"]
rule "r" {}
`
	for _, c := range []struct {
		name, src string
		want      ReplayCache
	}{
		{"no kerberos block", ``, ReplayCache{Store: "local"}},
		{"no replay_cache block", `kerberos {}`, ReplayCache{Store: "local"}},
		{"deprecated size", `kerberos { replay_cache_size = 500 }`, ReplayCache{Store: "local", MaxEntries: 500}},
		{"deprecated size beside the block", `kerberos {
  replay_cache_size = 500
  replay_cache { max_per_principal = 10 }
}`, ReplayCache{Store: "local", MaxEntries: 500, MaxPerPrincipal: 10}},
		{"local", `kerberos {
  replay_cache {
    store             = "local"
    max_entries       = 1000
    max_per_principal = 50
  }
}`, ReplayCache{Store: "local", MaxEntries: 1000, MaxPerPrincipal: 50}},
		{"unused redis block", `kerberos {
  replay_cache {
    redis { address = "127.0.0.1:6379" }
  }
}`, ReplayCache{Store: "local"}},
		{"redis defaults", `kerberos {
  replay_cache {
    store = "redis"
    redis { address = "[2001:db8::5]:6379" }
  }
}`, ReplayCache{Store: "redis", Redis: ReplayRedis{Address: "[2001:db8::5]:6379", OnUnavailable: "fail-closed"}}},
		{"redis", `kerberos {
  replay_cache {
    store       = "redis"
    max_entries = 4096
    redis {
      address        = "redis.example.test:6380"
      username       = "gssocks"
      password_file  = "secrets/redis.password"
      db             = 3
      key_prefix     = "site-a:replay:"
      timeout        = "150ms"
      on_unavailable = "local"
    }
  }
}`, ReplayCache{Store: "redis", MaxEntries: 4096, Redis: ReplayRedis{
			Address: "redis.example.test:6380", Username: "gssocks", PasswordFile: filepath.Join("conf", "secrets/redis.password"),
			DB: 3, KeyPrefix: "site-a:replay:", Timeout: 150 * time.Millisecond, OnUnavailable: "local",
		}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil), BaseDir: "conf"}.Parse([]byte(head+c.src), "test.hcl")
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			if got := cfg.Kerberos.ReplayCache; got != c.want {
				t.Fatalf("got %+v\nwant %+v", got, c.want)
			}
			if cfg.Kerberos.ReplayCacheSize != c.want.MaxEntries {
				t.Fatalf("ReplayCacheSize %d, want MaxEntries", cfg.Kerberos.ReplayCacheSize)
			}
			deprecated := strings.Contains(c.src, "replay_cache_size")
			if warned := strings.Contains(diags.Error(), "Deprecated attribute"); warned != deprecated {
				t.Fatalf("deprecation warning %t for %t: %s", warned, deprecated, diags.Error())
			}
		})
	}
}
