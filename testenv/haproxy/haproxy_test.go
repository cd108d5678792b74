package haproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/replay/redistest"
	"github.com/gssocks/gssocks/testenv"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

const principal = "alice@EXAMPLE.TEST"

// requireHAProxy returns the path of haproxy, or skips (fails under
// CI=true) naming Debian's package.
func requireHAProxy(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	msg := "haproxy not found: install Debian's haproxy package (scripts/install-deps.sh)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the tools must be installed)")
	}
	t.Skip(msg)
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// haproxySource is the address haproxy connects to the nodes from: not
// the clients' 127.0.0.1, so that a record whose source is 127.0.0.1 can
// only have it from the PROXY header.
const haproxySource = "127.0.0.5"

// startHAProxy runs haproxy in the foreground in front of backends
// (round robin, send-proxy-v2 from haproxySource, a failed connect
// redispatched to another node) and returns its frontend address; it is
// stopped by its PID when the test ends.
func startHAProxy(t *testing.T, backends []string) string {
	t.Helper()
	bin := requireHAProxy(t)
	dir := t.TempDir()
	front := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend socks
    bind %s
    default_backend nodes
backend nodes
    balance roundrobin
    source %s
`, front, haproxySource)
	for i, a := range backends {
		fmt.Fprintf(&b, "    server n%d %s send-proxy-v2\n", i+1, a)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("haproxy exited while starting:\n%s", out.String())
		default:
		}
		if c, err := net.Dial("tcp", front); err == nil {
			c.Close()
			return front
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s:\n%s", front, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type cluster struct {
	env   *krbtest.Env
	nodes []*testutil.Gateway
	front string
	dest  string // a TCP echo server
	web   *webServer
}

// startCluster starts Redis, three gateways sharing it as their replay
// store, trusting PROXY headers from haproxySource only and serving
// metrics, and haproxy in front. The nodes allow the echo server and the
// web server.
func startCluster(t *testing.T) *cluster {
	env := realm.Get(t)
	rds := redistest.Start(t)
	dest := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(dest)
	web := startWeb(t)
	_, webPort, _ := net.SplitHostPort(web.addr)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	cl := &cluster{env: env, dest: dest, web: web}
	var addrs []string
	for range 3 {
		// The top-level listen is written out: testutil adds one only to
		// a file without any "listen =" line, and metrics has one.
		g := testutil.StartGateway(t, fmt.Sprintf(`
listen = ["127.0.0.1:1080"]
kerberos {
  keytab = %q
  replay_cache {
    store = "redis"
    redis {
      address        = %q
      on_unavailable = "fail-closed"
      # Not the default 200ms: on a loaded machine (a full suite on two
      # cores) a Redis round trip over loopback can take longer, and
      # fail-closed then refuses the ticket. This test is about the
      # nodes, not Redis latency.
      timeout        = "1s"
    }
  }
}
proxy_protocol {
  trusted = ["%s/32"]
}
metrics {
  listen = "127.0.0.1:9180"
}
rule "echo" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s", "%s"]
}
`, kt, rds.Addr, haproxySource, port, webPort))
		cl.nodes = append(cl.nodes, g)
		addrs = append(addrs, g.Addr)
	}
	cl.front = startHAProxy(t, addrs)
	return cl
}

func (cl *cluster) dialer() *client.Dialer {
	return &client.Dialer{Proxy: cl.front, Config: client.Config{
		Level: encap.LevelConfidentiality,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return cl.env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	}}
}

// open makes a CONNECT to the echo server through haproxy and checks one
// round trip; it returns the connection and its local (the client's
// real) address.
func (cl *cluster) open(t *testing.T) (net.Conn, netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.dialer().DialContext(ctx, "tcp", cl.dest)
	if err != nil {
		t.Fatalf("session through haproxy: %v%s", err, cl.refusals())
	}
	if err := roundTrip(c); err != nil {
		c.Close()
		t.Fatalf("echo through haproxy: %v", err)
	}
	return c, c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// refusals lists the causes the nodes recorded for the handshakes they
// refused, for failure messages: the client only sees the abort.
func (cl *cluster) refusals() string {
	var b strings.Builder
	for i, g := range cl.nodes {
		for _, r := range g.Records() {
			if r.EndReason == audit.EndAuthFailed {
				fmt.Fprintf(&b, "\nnode %d refused %v: %s", i+1, r.Source, r.Detail)
			}
		}
	}
	return b.String()
}

func roundTrip(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "ping" {
		return fmt.Errorf("echo %q", b)
	}
	return nil
}

// alice returns the node's records of alice's sessions.
func alice(g *testutil.Gateway) []audit.Record {
	var out []audit.Record
	for _, r := range g.Records() {
		if r.Principal == principal {
			out = append(out, r)
		}
	}
	return out
}

// nodeOf waits for the record of the session from src and returns the
// index of the node that has it.
func (cl *cluster) nodeOf(t *testing.T, src netip.AddrPort) (int, audit.Record) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, g := range cl.nodes {
			for _, r := range g.Records() {
				if r.Source == src {
					return i, r
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no node has a record of the session from %v", src)
	return 0, audit.Record{}
}

// TestSeveralNodes drives three gateways behind haproxy (send-proxy-v2)
// sharing a Redis replay store: sessions spread over every node, each
// record's source is the client's own address and port (not haproxy's);
// a node stopped mid-run ends its sessions only, and new sessions go to
// the others; an AP-REQ accepted by one node is refused by another.
func TestSeveralNodes(t *testing.T) {
	cl := startCluster(t)

	t.Run("spread and real source", func(t *testing.T) {
		const n = 9
		for range n {
			c, src := cl.open(t)
			c.Close()
			i, r := cl.nodeOf(t, src)
			if r.Principal != principal || r.EndReason != audit.EndCompleted {
				t.Errorf("node %d record of %v: %+v", i+1, src, r)
			}
		}
		for i, g := range cl.nodes {
			if len(alice(g)) == 0 {
				t.Errorf("node %d served none of %d sessions", i+1, n)
			}
		}
	})

	t.Run("replay refused by another node", func(t *testing.T) {
		icfg, err := cl.env.InitiatorConfig("alice", "rcmd/localhost", "")
		if err != nil {
			t.Fatal(err)
		}
		var tok []byte
		var srcs []netip.AddrPort
		var errs []error
		for range 2 {
			c, err := net.Dial("tcp", cl.front)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			srcs = append(srcs, c.LocalAddr().(*net.TCPAddr).AddrPort())
			c.Write([]byte{5, 1, 1})
			sel := make([]byte, 2)
			if _, err := io.ReadFull(c, sel); err != nil || string(sel) != "\x05\x01" {
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
			errs = append(errs, err)
			c.Close()
		}
		if errs[0] != nil {
			t.Fatalf("first AP-REQ: %v", errs[0])
		}
		if !errors.Is(errs[1], encap.ErrAborted) {
			t.Fatalf("replayed AP-REQ: %v, want the abort message", errs[1])
		}
		first, _ := cl.nodeOf(t, srcs[0])
		second, r := cl.nodeOf(t, srcs[1])
		if first == second {
			t.Fatalf("both AP-REQs went to node %d; the test needs two nodes", first+1)
		}
		if r.EndReason != audit.EndAuthFailed || !strings.Contains(r.Detail, "replayed AP-REQ") {
			t.Fatalf("node %d record of the replay: %+v", second+1, r)
		}
	})

	t.Run("node stopped mid-run", func(t *testing.T) {
		var conns []net.Conn
		var srcs []netip.AddrPort
		for range 3 {
			c, src := cl.open(t)
			defer c.Close()
			conns, srcs = append(conns, c), append(srcs, src)
		}
		const stopped = 1
		before := make([]int, len(cl.nodes))
		for i, g := range cl.nodes {
			before[i] = len(alice(g))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cl.nodes[stopped].Shutdown(ctx) // cuts its running sessions
		var cut []int
		for i, c := range conns {
			if err := roundTrip(c); err != nil {
				cut = append(cut, i)
			}
		}
		if len(cut) != 1 {
			t.Fatalf("sessions %v ended after stopping one node of three, want exactly one", cut)
		}
		node, r := cl.nodeOf(t, srcs[cut[0]])
		if node != stopped || r.EndReason != audit.EndShutdown {
			t.Fatalf("the ended session: node %d, record %+v; want node %d, end %q", node+1, r, stopped+1, audit.EndShutdown)
		}
		for range 6 {
			c, src := cl.open(t)
			c.Close()
			if i, _ := cl.nodeOf(t, src); i == stopped {
				t.Fatalf("a new session went to the stopped node")
			}
		}
		for i, c := range conns {
			if !slices.Contains(cut, i) {
				if err := roundTrip(c); err != nil {
					t.Errorf("session %d on a running node lost: %v", i, err)
				}
			}
		}
		if got := len(alice(cl.nodes[stopped])); got != before[stopped]+1 {
			t.Errorf("stopped node has %d records, want %d", got, before[stopped]+1)
		}
	})
}
