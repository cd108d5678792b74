package policy

import (
	"strings"
	"testing"
)

// TestChooseLevelStreamProtection pins the meaning of auth_only where the
// rule also accepts protection: a client that cannot protect a stream
// (no GSS sequence flag: curl >= 8.17) gets clear, one that can (Dante's
// socksify) gets what it asked, from the same rule; a rule without
// auth_only ignores the flag.
func TestChooseLevelStreamProtection(t *testing.T) {
	bob := Identity{Principal: "bob@EXAMPLE.TEST", Name: "bob", Realm: "EXAMPLE.TEST"}
	e := newEngine(t, []Rule{
		{Name: "strict", Principals: []string{"alice@EXAMPLE.TEST"}, Protection: []Level{LevelIntegrity, LevelConfidentiality}},
		{Name: "mixed", Principals: []string{"bob@EXAMPLE.TEST"}, Protection: []Level{LevelClear, LevelIntegrity, LevelConfidentiality}, AuthOnly: true},
		{Name: "auth-only-clear-only", Principals: []string{"carol@EXAMPLE.TEST"}, Protection: []Level{LevelClear}, AuthOnly: true},
	})
	cases := []struct {
		name       string
		id         Identity
		requested  Level
		canProtect bool
		level      Level
		rule       string
		noSeq      bool   // LevelChoice.AuthOnlyNoSequence
		reason     string // a substring of the reason
	}{
		{"curl at confidentiality: clear", bob, conf, false, clear, "mixed", true, "without the GSS sequence flag"},
		{"curl at integrity: clear", bob, integ, false, clear, "mixed", true, "without the GSS sequence flag"},
		{"curl at clear: clear", bob, clear, false, clear, "mixed", false, "clear requested, accepted"},
		{"socksify at confidentiality: confidentiality", bob, conf, true, conf, "mixed", false, "accepted by rule"},
		{"socksify at integrity: integrity", bob, integ, true, integ, "mixed", false, "accepted by rule"},
		{"no auth_only: flag ignored", alice, conf, false, conf, "strict", false, "accepted by rule"},
		{"auth_only without protection: clear either way", carol, conf, true, clear, "auth-only-clear-only", false, "is auth_only"},
		{"auth_only without protection, no sequence", carol, conf, false, clear, "auth-only-clear-only", true, "without the GSS sequence flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.ChooseLevelFor(LevelRequest{Identity: c.id, Source: ip("10.1.1.1"), Requested: c.requested, CanProtectStream: c.canProtect})
			if err != nil {
				t.Fatal(err)
			}
			if got.Level != c.level || got.Rule != c.rule || got.AuthOnlyNoSequence != c.noSeq || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("got %+v; want level %s rule %q noSequence %v reason containing %q", got, c.level, c.rule, c.noSeq, c.reason)
			}
		})
	}
	// ChooseLevel keeps its meaning: a client that can protect a stream.
	if got, err := e.ChooseLevel(bob, ip("10.1.1.1"), conf, false); err != nil || got.Level != conf {
		t.Errorf("ChooseLevel: got %+v, %v; want confidentiality", got, err)
	}
}
