package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/testenv/dante"
)

// payloadServer serves /N: N pseudo-random bytes, the same for every N.
func payloadServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, "size", 400)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(payload(n))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	r.Read(b)
	return b
}

// socksify runs curl under Dante's socksify against the gateway, as alice
// with a ticket of the enctype, and returns the SHA-256 of the body.
func socksifyCurl(t *testing.T, dn *dante.Install, g *gateway, enctype, level string, nec bool, url string) (string, error) {
	t.Helper()
	r := g.env.Realm
	conf, err := r.ClientConfig(enctype)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := r.Kinit("alice", krbtest.Users["alice"], enctype)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env, err := dn.ClientEnv(dir, dante.ClientConfig{Proxy: g.Addr, Level: level, NEC: nec}, r.Env(conf, cc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "body")
	res, err := dn.Command(ctx, env, "curl", "-sS", "--max-time", "100", "-o", out, url).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("socksify curl: %v: %s", err, res)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

func requireCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl missing (CI=true): apt-get install curl")
		}
		t.Skip("curl missing: apt-get install curl")
	}
}

const interopRules = `
rule "nec" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
  nec          = true
}
`

// TestSocksifyConnect: Dante's socksify (the GSS-API build) through
// gssocks, per enctype, level and level-message form; bodies checked by
// SHA-256.
func TestSocksifyConnect(t *testing.T) {
	dn := dante.Require(t)
	requireCurl(t)
	g := startGateway(t, interopRules)
	web := payloadServer(t)
	enctypes := []string{"aes128-cts-hmac-sha1-96", "aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha256-128", "aes256-cts-hmac-sha384-192"}
	for _, enc := range enctypes {
		for _, level := range []string{"clear", "integrity", "confidentiality"} {
			for _, nec := range []bool{false, true} {
				sizes := []int{1000}
				if enc == "aes256-cts-hmac-sha1-96" && !nec {
					sizes = []int{0, 1, 65503, 65504, 1 << 20, 64 << 20}
				}
				for _, size := range sizes {
					t.Run(fmt.Sprintf("%s/%s/nec=%t/%d", enc, level, nec, size), func(t *testing.T) {
						got, err := socksifyCurl(t, dn, g, enc, level, nec, fmt.Sprintf("http://%s/%d", web, size))
						if err != nil {
							t.Fatal(err)
						}
						if want := sha256.Sum256(payload(size)); got != hex.EncodeToString(want[:]) {
							t.Fatal("body differs")
						}
					})
				}
			}
		}
	}
	// The audit records show every combination was really negotiated.
	for _, enc := range enctypes {
		for _, level := range []string{"clear", "integrity", "confidentiality"} {
			for _, nec := range []bool{false, true} {
				g.waitRecord(t, fmt.Sprintf("level %s, enctype %s, nec %t", level, enc, nec), func(r audit.Record) bool {
					return r.Level == level && r.Enctype == enc && r.NEC == nec && r.Command == "connect" && r.Reply == 0 && r.Rule == "nec"
				})
			}
		}
	}
}

// TestSocksifyLevelRaised: Dante asks integrity where the rule demands
// confidentiality; gssocks answers 2. Dante does not check the answer and
// goes on at integrity: gssocks must close cleanly and keep serving.
func TestSocksifyLevelRaised(t *testing.T) {
	dn := dante.Require(t)
	requireCurl(t)
	g := startGateway(t, `
rule "conf" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["confidentiality"]
}`)
	web := payloadServer(t)
	if _, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "integrity", false, "http://"+web+"/10"); err == nil {
		t.Fatal("Dante at integrity got through a confidentiality-only rule")
	}
	// The operator's diagnostic is the subject here: the log line says
	// the client asked less than the rule demands.
	waitLogLine(t, g, "protection level differs from the request", "requested=integrity", "granted=confidentiality")
	g.waitRecord(t, "the session granted confidentiality", func(r audit.Record) bool {
		return r.Principal == "alice@EXAMPLE.TEST" && r.Level == "confidentiality" && r.EndReason != audit.EndCompleted
	})
	if got, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "confidentiality", false, "http://"+web+"/10"); err != nil || got == "" {
		t.Fatalf("confidentiality after the refusal: %v", err)
	}
}

// TestSocksifyUDP: UDP ASSOCIATE through socksify at integrity and
// confidentiality against a UDP echo, with python3 as the UDP client
// (Go programs make their own system calls, which LD_PRELOAD cannot see).
func TestSocksifyUDP(t *testing.T) {
	dn := dante.Require(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing (CI=true)")
		}
		t.Skip("python3 missing")
	}
	g := startGateway(t, allowAll)
	echo := udpEcho(t)
	script := `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
host, port = sys.argv[1], int(sys.argv[2])
for i in range(3):
    msg = ("datagram %d " % i + "x" * (100 * i)).encode()
    s.sendto(msg, (host, port))
    data, addr = s.recvfrom(65535)
    assert data == b"echo:" + msg, (data, msg)
print("udp ok")
`
	for _, level := range []string{"integrity", "confidentiality"} {
		t.Run(level, func(t *testing.T) {
			r := g.env.Realm
			cc, err := r.Kinit("alice", krbtest.Users["alice"])
			if err != nil {
				t.Fatal(err)
			}
			env, err := dn.ClientEnv(t.TempDir(), dante.ClientConfig{Proxy: g.Addr, Level: level}, r.Env("", cc))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := dn.Command(ctx, env, py, "-c", script, echo.Addr().String(), strconv.Itoa(int(echo.Port()))).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "udp ok") {
				t.Fatalf("socksify python3: %v\n%s", err, out)
			}
			g.waitRecord(t, "UDP at "+level, func(r audit.Record) bool {
				return r.Command == "udp" && r.Level == level && r.Rule == "all" && r.BytesUp > 0 && r.BytesDown > 0
			})
		})
	}
}

// TestSocksifyRuleMatrix: rules exercised through the gateway with Dante's
// socksify: allowed, denied by a rule (curl fails, the audit names the
// rule), denied by default, and an authentication-only rule at clear.
func TestSocksifyRuleMatrix(t *testing.T) {
	dn := dante.Require(t)
	requireCurl(t)
	web := payloadServer(t)
	_, webPort, _ := net.SplitHostPort(web)
	g := startGateway(t, `
rule "no-admin-port" {
  action       = "deny"
  destinations = ["127.0.0.0/8"]
  ports        = ["1"]
}
rule "web" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["`+webPort+`"]
  protection   = ["clear", "confidentiality"]
  auth_only    = true
}`)
	url := func(host string) string { return "http://" + host + "/100" }
	if _, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "confidentiality", false, url(web)); err != nil {
		t.Fatalf("allowed at confidentiality: %v", err)
	}
	g.waitRecord(t, "allowed at confidentiality", func(r audit.Record) bool {
		return r.Level == "confidentiality" && r.Enctype == "aes256-cts-hmac-sha1-96" && !r.NEC && r.Command == "connect" &&
			r.Destination == web && r.Rule == "web" && r.Replied && r.Reply == 0 && r.ReplyText == "succeeded"
	})
	if _, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "clear", false, url(web)); err != nil {
		t.Fatalf("allowed at clear (authentication only): %v", err)
	}
	g.waitRecord(t, "allowed at clear", func(r audit.Record) bool {
		return r.Level == "clear" && r.Rule == "web" && r.Reply == 0
	})
	if _, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "confidentiality", false, url("127.0.0.1:1")); err == nil {
		t.Fatal("port 1 was not denied")
	}
	g.waitRecord(t, "denied by no-admin-port", func(r audit.Record) bool {
		return r.Rule == "no-admin-port" && r.Replied && r.Reply == 2 && r.ReplyText == "not allowed by ruleset" && r.EndReason == audit.EndDenied
	})
	if _, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", "confidentiality", false, url("127.0.0.1:2")); err == nil {
		t.Fatal("port 2 was not denied")
	}
	g.waitRecord(t, "denied by default", func(r audit.Record) bool {
		return r.Rule == "(default deny)" && r.Replied && r.Reply == 2 && r.EndReason == audit.EndDenied
	})
}
