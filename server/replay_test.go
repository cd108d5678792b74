package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
)

// authenticate sends the greeting and the AP-REQ of a fresh initiator on
// icfg (or tok, when not nil: an AP-REQ sent before) and returns the
// context establishment's error.
func authenticate(t *testing.T, g *gateway, icfg gssapi.InitiatorConfig, tok []byte) ([]byte, error) {
	t.Helper()
	c := rawDial(t, g)
	defer c.Close()
	c.Write([]byte{5, 1, 1})
	var sel [2]byte
	if _, err := c.Read(sel[:]); err != nil || sel != [2]byte{5, 1} {
		t.Fatalf("method selection %x: %v", sel, err)
	}
	in, fresh, err := gssapi.NewInitiator(icfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil {
		tok = fresh
	}
	_, err = encap.InitiateContext(c, in, tok)
	return tok, err
}

// TestReplayRefusalsNamed: the replay cache's refusals are told apart in
// the log and the record: a replayed AP-REQ, a principal over its share
// (while another principal is still served and replays are still
// refused), and a full cache. They used to be one "authentication
// failed".
func TestReplayRefusalsNamed(t *testing.T) {
	refused := func(t *testing.T, g *gateway, mark int, err error, detail, logged string) {
		t.Helper()
		if !errors.Is(err, encap.ErrAborted) {
			t.Fatalf("%s: %v, want the abort message", detail, err)
		}
		r := g.waitRecordFrom(t, mark, detail, func(r audit.Record) bool {
			return r.EndReason == audit.EndAuthFailed && strings.HasPrefix(r.Detail, "authentication: "+detail+": ")
		})
		waitLogLine(t, g, "authentication refused: "+logged, "hint=", "session_id="+r.SessionID)
	}
	t.Run("replay and share", func(t *testing.T) {
		// A cache of 1024 gives each principal 64 entries.
		g := startGatewayKerberos(t, "replay_cache_size = 1024", allowAll)
		alice, err := g.env.InitiatorConfig("alice", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		first, err := authenticate(t, g, alice, nil)
		if err != nil {
			t.Fatal(err)
		}
		mark := g.mark()
		_, err = authenticate(t, g, alice, first)
		refused(t, g, mark, err, "replayed AP-REQ", "replayed AP-REQ")
		for i := 1; i < 64; i++ {
			if _, err := authenticate(t, g, alice, nil); err != nil {
				t.Fatalf("alice's AP-REQ %d of her 64: %v", i+1, err)
			}
		}
		mark = g.mark()
		_, err = authenticate(t, g, alice, nil)
		refused(t, g, mark, err, "the client principal's share of the replay cache is used up", "the client principal's share")
		// bob is still served; alice's replay is still a replay.
		bob, err := g.env.InitiatorConfig("bob", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := authenticate(t, g, bob, nil); err != nil {
			t.Fatalf("bob while alice is over her share: %v", err)
		}
		mark = g.mark()
		_, err = authenticate(t, g, alice, first)
		refused(t, g, mark, err, "replayed AP-REQ", "replayed AP-REQ")
	})
	t.Run("full", func(t *testing.T) {
		g := startGatewayKerberos(t, "replay_cache {\n    max_entries       = 2\n    max_per_principal = 2\n  }", allowAll)
		alice, err := g.env.InitiatorConfig("alice", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := authenticate(t, g, alice, nil); err != nil {
				t.Fatal(err)
			}
		}
		bob, err := g.env.InitiatorConfig("bob", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		mark := g.mark()
		_, err = authenticate(t, g, bob, nil)
		refused(t, g, mark, err, "replay cache full", "replay cache full")
	})
}
