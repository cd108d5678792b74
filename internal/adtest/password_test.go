package adtest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
)

// passwordConfig enables RFC 1929 for loopback clients with the domain's
// krb5.conf; the rule admits the vpn-users group (alice) in the clear.
const passwordConfig = `
listen = ["127.0.0.1:1080"] # not used: the tests listen on 127.0.0.1:0
kerberos {
  keytab     = %q
  principals = [%q]
}
timeouts {
  negotiation = "20s"
}
password_auth {
  sources   = ["127.0.0.0/8"]
  krb5_conf = %q
}
group "vpn" { sids = [%q] }
rule "vpn-password" {
  groups       = ["vpn"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}
`

// TestGatewayPassword: USERNAME/PASSWORD against the AD KDC (Heimdal in
// Samba): the password is checked by an AS exchange, the service ticket
// for the gateway opens with the keytab exported from the domain, and the
// PAC's groups decide: alice (in vpn-users) connects, spelt ALICE too and
// recorded as her account; bob (in no group) is denied; a wrong password
// gets a failure status.
func TestGatewayPassword(t *testing.T) {
	info := domain(t)
	gw := testutil.StartGateway(t, fmt.Sprintf(passwordConfig, info.Keytab, info.Service, info.Krb5Conf, info.GroupSID("vpn-users")))
	echo := testutil.EchoServer(t)
	dest, err := socks5.ParseHostPort(echo)
	if err != nil {
		t.Fatal(err)
	}
	login := func(user, password string) (net.Conn, byte) {
		c, err := net.Dial("tcp", gw.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		req, err := socks5.AppendUserPassRequest([]byte{5, 1, 2}, socks5.UserPassRequest{Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		resp := make([]byte, 4)
		if _, err := io.ReadFull(c, resp); err != nil || resp[0] != 5 || resp[1] != 2 || resp[2] != 1 {
			return c, 0xff
		}
		return c, resp[3]
	}
	connect := func(c net.Conn) socks5.Reply {
		req, _ := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})
		c.Write(req)
		rep, _, err := socks5.ReadReply(c)
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		return rep
	}

	pw := info.Users["alice"]
	for _, spelling := range []string{"alice", "ALICE"} {
		c, st := login(spelling, pw)
		if st != 0 {
			t.Fatalf("%s: status %#x; log:\n%s", spelling, st, gw.Log.String())
		}
		if rep := connect(c); rep != socks5.ReplySucceeded {
			t.Fatalf("%s: reply %s", spelling, rep)
		}
		c.Write([]byte("ping"))
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
			t.Fatalf("%s: echo %q %v", spelling, b, err)
		}
		c.Close()
		presented := "" // recorded only when it differs from the account's
		if spelling != "alice" {
			presented = spelling + "@" + info.Realm
		}
		gw.WaitRecord(t, func(r audit.Record) bool {
			return r.Method == "password" && r.Level == "clear" && r.Principal == "alice@"+info.Realm && r.PresentedPrincipal == presented &&
				r.UserSID == info.UserSID("alice") && r.Rule == "vpn-password" && r.EndReason == audit.EndCompleted
		})
	}

	c, st := login("bob", info.Users["bob"])
	if st != 0 {
		t.Fatalf("bob: status %#x", st)
	}
	if rep := connect(c); rep != socks5.ReplyNotAllowed {
		t.Fatalf("bob (in no group): reply %s", rep)
	}
	if _, st := login("alice", pw+"-wrong"); st == 0 || st == 0xff {
		t.Fatalf("wrong password: status %#x", st)
	}
	if strings.Contains(gw.Log.String(), pw) {
		t.Fatal("the log holds alice's password")
	}
}
