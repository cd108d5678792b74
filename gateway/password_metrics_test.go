package gateway_test

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
)

// TestPasswordMetric: RFC 1929 verifications are counted by outcome, and
// a password session is not a GSS-API handshake.
func TestPasswordMetric(t *testing.T) {
	env := realm.Get(t)
	g := testutil.StartGateway(t, fmt.Sprintf(`
listen = ["127.0.0.1:1080"]
kerberos {
  keytab = %q
}
rule "clear" {
  principals = ["*@EXAMPLE.TEST"]
  protection = ["clear"]
}
metrics {
  listen = "127.0.0.1:9180"
}
password_auth {
  sources   = ["127.0.0.0/8"]
  krb5_conf = %q
}
`, env.Keytab, env.Realm.Krb5Conf))
	login := func(user, password string) {
		c, err := net.Dial("tcp", g.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		req, err := socks5.AppendUserPassRequest([]byte{5, 1, 2}, socks5.UserPassRequest{Username: user, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(req)
		io.ReadFull(c, make([]byte, 4))
	}
	login("alice", "alice-password-1")
	login("alice", "not-alice-password")
	login("alice@ELSEWHERE.TEST", "alice-password-1")
	for _, end := range []audit.EndReason{audit.EndBadRequest, audit.EndAuthFailed} {
		g.WaitRecord(t, func(r audit.Record) bool { return r.Method == "password" && r.EndReason == end })
	}
	fams := scrape(t, g.MetricsAddr())
	wantValue(t, fams, 1, "gssocks_password_auth_total", "outcome", "ok")
	wantValue(t, fams, 1, "gssocks_password_auth_total", "outcome", "bad_password")
	// An untrusted realm has its own outcome; every outcome is there
	// from the start.
	wantValue(t, fams, 1, "gssocks_password_auth_total", "outcome", "realm_not_trusted")
	wantValue(t, fams, 0, "gssocks_password_auth_total", "outcome", "not_validated")
	wantValue(t, fams, 0, "gssocks_password_auth_total", "outcome", "unknown_principal")
	wantValue(t, fams, 0, "gssocks_handshakes_total", "method", "gssapi", "outcome", "ok")
}
