package bridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/bridge"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

// The tests run the bridge in process against a real MIT KDC (testenv)
// and a real gateway (testutil.StartGateway, built as `gssocks serve`
// builds it), with clients we did not write: Debian's curl, Python's
// standard library and node for the PAC file.

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// deniedPort is a port the gateway's rules deny to everyone.
const deniedPort = 9

// gatewayConfig lets alice reach loopback (IPv4, IPv6 and "localhost")
// with CONNECT and UDP at integrity or confidentiality, except port
// deniedPort.
func gatewayConfig(keytab string) string {
	return fmt.Sprintf(`kerberos {
  keytab = %q
}
rule "deny-port" {
  action       = "deny"
  destinations = ["127.0.0.0/8", "::1/128", "localhost"]
  ports        = ["%d"]
}
rule "alice-loopback" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8", "::1/128", "localhost"]
  commands     = ["connect", "udp"]
  protection   = ["integrity", "confidentiality"]
}
`, keytab, deniedPort)
}

// startGateway is a gateway with gatewayConfig.
func startGateway(t *testing.T) (*krbtest.Env, *testutil.Gateway) {
	t.Helper()
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, t.TempDir(), 0o600)
	return env, testutil.StartGateway(t, gatewayConfig(kt))
}

// newDialer logs alice in with her password (the library's own AS
// exchange) for the gateway at addr, asking level.
func newDialer(t *testing.T, env *krbtest.Env, addr, level string) *client.Dialer {
	t.Helper()
	o := client.Options{
		Gateway:          addr,
		ServicePrincipal: "rcmd/localhost",
		Krb5Conf:         env.Realm.Krb5Conf,
		Principal:        "alice",
		Password:         krbtest.Users["alice"],
	}
	if err := bridge.SetLevels(&o, level, ""); err != nil {
		t.Fatal(err)
	}
	d, err := client.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// records collects the bridge's records.
type records struct {
	mu   sync.Mutex
	list []bridge.Record
}

func (r *records) add(rec bridge.Record) {
	r.mu.Lock()
	r.list = append(r.list, rec)
	r.mu.Unlock()
}

// wait returns the first record match accepts, waiting up to 10 s.
func (r *records) wait(t *testing.T, match func(bridge.Record) bool) bridge.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		for _, rec := range r.list {
			if match(rec) {
				r.mu.Unlock()
				return rec
			}
		}
		var all []string
		for _, rec := range r.list {
			all = append(all, rec.String())
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no matching bridge record among:\n%s", strings.Join(all, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startBridge runs a bridge with opts (Dialer set, SOCKS and HTTP on
// 127.0.0.1:0 unless given) until the test ends.
func startBridge(t *testing.T, opts bridge.Options) (*bridge.Bridge, *records) {
	t.Helper()
	recs := &records{}
	if opts.SOCKS == "" && opts.HTTP == "" {
		opts.SOCKS, opts.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	}
	opts.OnConn = recs.add
	b, err := bridge.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b, recs
}

// tool is the path of a program the test needs; missing, the test is
// skipped, or fails under CI=true.
func tool(t *testing.T, name string) string {
	t.Helper()
	testenv.Require(t, name)
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin/", "/sbin/"} {
		if _, err := os.Stat(dir + name); err == nil {
			return dir + name
		}
	}
	t.Fatalf("%s: not found after testenv.Require", name)
	return ""
}

// runTool runs a program with a time limit and returns its stdout; it
// fails the test with stderr on error.
func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// noProxyEnv is the environment without proxy variables, so that only
// the flags given decide.
func noProxyEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(strings.ToLower(kv), "=")
		switch k {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// token is a distinctive random string.
func token(t *testing.T) string {
	t.Helper()
	return "gssocks-bridge-" + rand.Text()
}

// socksDial is a SOCKS5 client written from RFC 1928: method X'00', then
// cmd to dest. It returns the connection, the reply code and BND.
func socksDial(t *testing.T, proxy string, cmd socks5.Command, dest socks5.Addr) (net.Conn, socks5.Reply, socks5.Addr) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("method selection %x, %v", sel, err)
	}
	req, err := socks5.AppendRequest(nil, socks5.Request{Command: cmd, Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	rep, bnd, err := socks5.ReadReply(c)
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	return c, rep, bnd
}

// tap is a TCP relay that records the bytes each way, for looking at
// what crosses the wire between the bridge and the gateway.
type tap struct {
	mu       sync.Mutex
	up, down bytes.Buffer
}

func (tp *tap) bytes() (up, down []byte) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.up.Bytes()), bytes.Clone(tp.down.Bytes())
}

type tapWriter struct {
	tp  *tap
	buf *bytes.Buffer
}

func (w tapWriter) Write(p []byte) (int, error) {
	w.tp.mu.Lock()
	defer w.tp.mu.Unlock()
	if w.buf.Len() < 32<<20 {
		w.buf.Write(p)
	}
	return len(p), nil
}

// startTap relays 127.0.0.1:port to target, recording.
func startTap(t *testing.T, target string) (string, *tap) {
	t.Helper()
	tp := &tap{}
	addr := testutil.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		g, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer g.Close()
		done := make(chan struct{})
		go func() {
			io.Copy(io.MultiWriter(g, tapWriter{tp, &tp.up}), c)
			g.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(io.MultiWriter(c, tapWriter{tp, &tp.down}), g)
		c.(*net.TCPConn).CloseWrite()
		<-done
	})
	return addr, tp
}
