package config

import (
	"strings"
	"testing"
)

// TestMetricsBlock: no block means no metrics listener; the block's
// listen and pprof are decoded; a block without listen, or with an
// address that is not host:port, is an error naming the attribute.
func TestMetricsBlock(t *testing.T) {
	if cfg := mustParse(t, `listen = ["127.0.0.1:1080"]`); cfg.Metrics != (Metrics{}) {
		t.Errorf("no metrics block: %+v, want none", cfg.Metrics)
	}
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
metrics {
  listen = "127.0.0.1:9180"
  pprof  = true
}`)
	if want := (Metrics{Listen: "127.0.0.1:9180", Pprof: true}); cfg.Metrics != want {
		t.Errorf("metrics block: %+v, want %+v", cfg.Metrics, want)
	}
	for _, tc := range []struct{ src, want string }{
		{`metrics {}`, "listen"},
		{`metrics { listen = "9180" }`, "Invalid metrics listen address"},
		{`metrics { listen = "127.0.0.1:http" }`, "Invalid metrics listen port"},
		{`metrics { listen = "127.0.0.1:70000" }`, "Invalid metrics listen port"},
		{`metrics {
  listen = "127.0.0.1:9180"
  pprof  = "yes please"
}`, "pprof"},
	} {
		_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte("listen = [\"127.0.0.1:1080\"]\n"+tc.src), "test.hcl")
		if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
			t.Errorf("%s: diagnostics %v, want an error naming %q", tc.src, diags, tc.want)
		}
	}
}
