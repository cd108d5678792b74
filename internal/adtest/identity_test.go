package adtest

import (
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"testing"

	"github.com/gssocks/gssocks/policy"
)

// TestCanonicalAccount: against the real AD KDC, `kinit ALICE` yields a
// ticket whose client is the spelling typed, and the PAC names the
// account. The policy identity is alice's either way, so a rule denying
// alice denies ALICE; matching the ticket's spelling (as the gateway did)
// let ALICE through.
func TestCanonicalAccount(t *testing.T) {
	info := domain(t)
	acc := newAcceptor(t, info)
	e, err := policy.NewEngine([]policy.Rule{
		{Name: "deny-alice", Action: policy.ActionDeny, Principals: []string{"alice@" + info.Realm}},
		{Name: "all", Principals: []string{"*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var principals []string
	for _, spelling := range []string{"alice", "ALICE", "Alice"} {
		_, ctx := establish(t, info, acc, spelling)
		id := identity(t, ctx)
		if id.Presented != spelling+"@"+info.Realm {
			t.Errorf("%s: the ticket names %s (measured: AD echoes the spelling typed)", spelling, id.Presented)
		}
		t.Logf("%s: presented %s, canonical %s, PAC account %q", spelling, id.Presented, id.Principal, ctx.AD().LogonName)
		if !id.GroupsKnown || !id.CaseInsensitive {
			t.Errorf("%s: %+v", spelling, id)
		}
		principals = append(principals, id.Principal)
		d := e.Decide(policy.Request{Identity: id, Source: localhost, Command: socks5.CmdConnect,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}, Port: 443, Level: policy.LevelConfidentiality})
		if d.Allow || d.Rule != "deny-alice" {
			t.Errorf("%s (as %s): %+v", spelling, id.Principal, d)
		}
	}
	if principals[0] != "alice@"+info.Realm || principals[1] != principals[0] || principals[2] != principals[0] {
		t.Errorf("one account, several principals: %q", principals)
	}
}
