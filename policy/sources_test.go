package policy

import (
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"testing"
)

// TestSourcesContains pins the one membership test for client networks,
// used by rules and by no_auth alike. The server once kept its own copy
// for no_auth that compared the raw address: a link-local client, which
// the kernel reports with its zone (fe80::1%eth0), was refused by the
// server while explain, with this normalisation, allowed it.
func TestSourcesContains(t *testing.T) {
	s := Sources{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"fe80::1%eth0", true}, // zoned link-local: the zone is dropped
		{"fe80::1", true},
		{"fe80::1%2", true},
		{"fe00::1%eth0", false},
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true}, // IPv4 client on a dual-stack listener
		{"11.1.2.3", false},
		{"::ffff:11.1.2.3", false},
		{"::1", false},
	} {
		if got := s.Contains(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Contains(%s) = %t, want %t", c.addr, got, c.want)
		}
	}
	if s.Contains(netip.Addr{}) {
		t.Error("the zero address is in no network")
	}
	if (Sources{}).Contains(netip.MustParseAddr("10.1.2.3")) || Sources(nil).Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Error("empty Sources contain nothing")
	}
}

// TestZonedSourceMatchesRule: a rule's sources treat a zoned source as
// no_auth does.
func TestZonedSourceMatchesRule(t *testing.T) {
	e := newEngine(t, []Rule{{Name: "link-local", Sources: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}, Protection: []Level{LevelClear}}})
	r := Request{Source: netip.MustParseAddr("fe80::1%eth0"), Command: socks5.CmdConnect, Addrs: ips("192.0.2.1"), Port: 80, Level: LevelClear}
	if d := e.Decide(r); !d.Allow || d.Rule != "link-local" {
		t.Errorf("Decide: %+v", d)
	}
	if _, err := e.ChooseLevel(Identity{}, r.Source, LevelClear, false); err != nil {
		t.Errorf("ChooseLevel: %v", err)
	}
}
