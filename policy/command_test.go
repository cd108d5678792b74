package policy

import (
	"testing"
	"time"

	"github.com/gssocks/gssocks/socks5"
)

// TestDecideCommand: a command is decided before any destination is
// known. Deny rules that name destinations or ports are passed over (they
// refuse only some); one that does not refuses the command; the first
// allow rule accepting the level allows, with its limits; one not
// accepting it is passed over when it names destinations or ports and
// refuses otherwise.
func TestDecideCommand(t *testing.T) {
	e := newEngine(t, fixture())
	for _, c := range []struct {
		name  string
		id    Identity
		src   string
		cmd   socks5.Command
		level Level
		allow bool
		rule  string
	}{
		{"bind by staff, past the deny rules naming destinations", alice, "10.1.1.1", socks5.CmdBind, integ, true, "staff"},
		{"udp: no rule allows it", alice, "10.1.1.1", socks5.CmdUDPAssociate, integ, false, ""},
		{"a deny rule without destinations", bob, "10.1.1.1", socks5.CmdBind, integ, false, "bob-nothing"},
		{"an allow rule's ports are left to each destination", dave, "192.168.1.1", socks5.CmdUDPAssociate, integ, true, "partner-dns"},
		{"level refused by a rule deciding every destination", svcAB, "192.168.1.1", socks5.CmdBind, conf, false, "svc"},
		{"level accepted", svcAB, "192.168.1.1", socks5.CmdBind, clear, true, "svc"},
		{"limits come with the allow", carol, "192.168.1.1", socks5.CmdUDPAssociate, conf, true, "admins"},
		{"admins at integrity: refused by the rule", carol, "192.168.1.1", socks5.CmdUDPAssociate, integ, false, "admins"},
		{"connect-only rules do not allow bind", vic, "192.168.1.1", socks5.CmdBind, integ, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := e.DecideCommand(Request{Identity: c.id, Source: ip(c.src), Command: c.cmd, Level: c.level,
				// Ignored: DecideCommand judges no destination.
				Addrs: ips("127.0.0.1"), Port: 5432})
			if d.Allow != c.allow || d.Rule != c.rule || d.Reason == "" {
				t.Fatalf("%+v, want allow %t by %q", d, c.allow, c.rule)
			}
			if c.rule == "admins" && c.allow && (d.MaxSessionsPerPrincipal != 3 || d.IdleTimeout != time.Hour) {
				t.Fatalf("limits %+v", d)
			}
		})
	}
}

// TestOutliveTicketDecided: an allow carries its rule's outlive_ticket.
func TestOutliveTicketDecided(t *testing.T) {
	e := newEngine(t, []Rule{{Name: "long", OutliveTicket: 8 * time.Hour}})
	if d := e.Decide(req(alice, "10.1.1.1", "", ips("192.0.2.1"), 80)); !d.Allow || d.OutliveTicket != 8*time.Hour {
		t.Fatalf("%+v", d)
	}
	if _, err := NewEngine([]Rule{{Name: "negative", OutliveTicket: -time.Second}}); err == nil {
		t.Fatal("a negative outlive_ticket was accepted")
	}
}
