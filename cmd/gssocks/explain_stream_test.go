package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestExplainNoSequence: explain shows what curl >= 8.17 (no GSS
// sequence flag) and socksify get from one auth_only rule accepting every
// level, and refuses contradicting flags.
func TestExplainNoSequence(t *testing.T) {
	conf := explainConfig(t, `
rule "mixed" {
  principals = ["*@EXAMPLE.TEST"]
  protection = ["clear", "integrity", "confidentiality"]
  auth_only  = true
}`)
	base := []string{"--principal", "alice@EXAMPLE.TEST", "--dest", "192.0.2.10:80"}
	for _, args := range [][]string{{"--no-sequence"}, {"--client", "curl"}} {
		out := runExplain(t, conf, append(base, args...)...)
		wantLines(t, out,
			"protection: asked confidentiality, GSS flags without sequence (cannot protect a stream), granted clear",
			`without the GSS sequence flag (the client cannot protect a stream), clear granted: rule "mixed" is auth_only`,
			`decision:   ALLOW: rule "mixed" allows`)
	}
	for _, args := range [][]string{nil, {"--client", "socksify"}} {
		out := runExplain(t, conf, append(base, args...)...)
		wantLines(t, out, "protection: asked confidentiality, GSS flags with sequence (can protect a stream), granted confidentiality")
	}
	for _, args := range [][]string{{"--client", "firefox"}, {"--client", "socksify", "--no-sequence"}} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"explain", "--config", conf}, append(base, args...)...), &out, &errb); code != 2 || !strings.Contains(errb.String(), "--") {
			t.Errorf("explain %v: exit %d, stderr %q; want 2 and a usage error", args, code, errb.String())
		}
	}
}
