package gateway_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gssocks/gssocks/internal/testutil"
)

// TestNegotiateHandshakeMetric: the HTTP proxy's Negotiate handshakes are
// counted in gssocks_handshakes_total under method "negotiate" with the
// acceptor's outcomes (an accepted token, its replay, credentials that
// are not even base64), and never under method "gssapi"; the latency
// histogram has them all.
func TestNegotiateHandshakeMetric(t *testing.T) {
	env := realm.Get(t)
	_, echoPort := echo(t)
	g := testutil.StartGateway(t, fmt.Sprintf(`
listen      = ["127.0.0.1:1080"]
http_listen = ["127.0.0.1:3128"]
kerberos {
  keytab = %q
}
rule "web" {
  principals   = ["*@EXAMPLE.TEST"]
  methods      = ["negotiate"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
  protection   = ["clear"]
}
metrics {
  listen = "127.0.0.1:9180"
}
`, httpKeytab(t, env), echoPort))
	proxy := g.HTTPAddrs()[0]
	_, tok := env.Initiator(t, "alice", "HTTP/localhost", "")
	connect := func(auth string) int {
		t.Helper()
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nProxy-Authorization: %s\r\n\r\n", echoPort, echoPort, auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
		return resp.StatusCode
	}
	b64 := base64.StdEncoding.EncodeToString(tok)
	for _, c := range []struct {
		auth string
		want int
	}{
		{"Negotiate " + b64, http.StatusOK},
		{"Negotiate " + b64, http.StatusProxyAuthRequired}, // replayed
		{"Negotiate %%%not-base64%%%", http.StatusProxyAuthRequired},
	} {
		if got := connect(c.auth); got != c.want {
			t.Fatalf("CONNECT with %.20q…: %d, want %d", c.auth, got, c.want)
		}
	}
	fams := scrape(t, g.MetricsAddr())
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "negotiate", "outcome", "ok")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "negotiate", "outcome", "replay")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "negotiate", "outcome", "bad_token")
	wantValue(t, fams, 0, "gssocks_handshakes_total", "method", "negotiate", "outcome", "other")
	for _, o := range []string{"ok", "replay", "bad_token", "policy_denied", "other"} {
		wantValue(t, fams, 0, "gssocks_handshakes_total", "method", "gssapi", "outcome", o)
	}
	if _, ok := value(fams, "gssocks_handshakes_total", "method", "negotiate", "outcome", "policy_denied"); ok {
		t.Error("a negotiate series with outcome policy_denied: requests are decided after the handshake, one by one")
	}
	wantValue(t, fams, 3, "gssocks_handshake_duration_seconds")
}
