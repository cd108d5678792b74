package adtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
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

// TestGatewayCanonicalAccount: through the gateway, ALICE (the ticket
// echoes that spelling) is decided and counted as alice's account, from
// the verified PAC: a rule denying alice denies ALICE, and the audit
// record shows the canonical name with the presented one beside it.
func TestGatewayCanonicalAccount(t *testing.T) {
	info := domain(t)
	deny := fmt.Sprintf("rule \"deny-alice-port-7\" {\n  action     = \"deny\"\n  principals = [\"alice@%s\"]\n  ports      = [\"7\"]\n}\n", info.Realm)
	gw := testutil.StartGateway(t, strings.Replace(policySource(info), `rule "vpn"`, deny+`rule "vpn"`, 1))
	for _, spelling := range []string{"ALICE", "Alice"} {
		t.Run(spelling, func(t *testing.T) {
			d := client.Dialer{Proxy: gw.Addr, Config: client.Config{
				Level: encap.LevelConfidentiality,
				Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
					return ticket(info, spelling, info.Service)
				},
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := d.DialContext(ctx, "tcp", "127.0.0.1:7")
			var re *client.ReplyError
			if !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
				t.Fatalf("%s to port 7: %v, want REP 02", spelling, err)
			}
			r := gw.WaitRecord(t, func(r audit.Record) bool { return r.PresentedPrincipal == spelling+"@"+info.Realm })
			if r.Principal != "alice@"+info.Realm || r.Rule != "deny-alice-port-7" || r.EndReason != audit.EndDenied ||
				r.UserSID != info.UserSID("alice") {
				t.Fatalf("record %v", r.Fields())
			}
		})
	}
}
