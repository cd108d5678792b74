package config

import (
	"testing"
	"time"
)

// TestHandshakeLimits: the limits on connections still in their
// handshake, their defaults, and the warning for a per-source limit above
// the total.
func TestHandshakeLimits(t *testing.T) {
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
rule "r" {}`)
	if cfg.Limits.MaxHandshakes != DefaultMaxHandshakes || cfg.Limits.MaxHandshakesPerSource != DefaultMaxHandshakesPerSource {
		t.Errorf("defaults %+v", cfg.Limits)
	}
	cfg = mustParse(t, `listen = ["127.0.0.1:1080"]
limits {
  max_sessions              = 10
  max_handshakes            = 0
  max_handshakes_per_source = 4
}
rule "r" {}`)
	if cfg.Limits != (Limits{MaxSessions: 10, MaxHandshakes: 0, MaxHandshakesPerSource: 4}) {
		t.Errorf("%+v", cfg.Limits)
	}
	_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(`listen = ["127.0.0.1:1080"]
limits {
  max_handshakes            = 8
  max_handshakes_per_source = 9
}
rule "r" {}`), "test.hcl")
	if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Per-source limit above the total" {
		t.Errorf("diagnostics %v", diags)
	}
	if _, _, diags := (Loader{SkipKeytabCheck: true, Getenv: env(nil)}).Parse([]byte(`listen = ["127.0.0.1:1080"]
limits {
  max_handshakes = -1
}
rule "r" {}`), "test.hcl"); !diags.HasErrors() {
		t.Error("a negative max_handshakes was accepted")
	}
}

// TestOutliveTicket: the rule attribute reaches the engine's decisions;
// a deny rule's is ignored with a warning.
func TestOutliveTicket(t *testing.T) {
	cfg := mustParse(t, `listen = ["127.0.0.1:1080"]
rule "long" {
  outlive_ticket = "8h"
}`)
	if r := cfg.Engine.Rules()[0]; r.OutliveTicket != 8*time.Hour {
		t.Errorf("%+v", r)
	}
	_, _, diags := Loader{SkipKeytabCheck: true, Getenv: env(nil)}.Parse([]byte(`listen = ["127.0.0.1:1080"]
rule "no" {
  action         = "deny"
  outlive_ticket = "1h"
}`), "test.hcl")
	if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Ignored in a deny rule" {
		t.Errorf("diagnostics %v", diags)
	}
}
