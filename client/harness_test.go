package client_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

// The tests run our client against real peers: an MIT KDC (testenv), the
// real gssocks binary and Dante's sockd built with GSS-API. Each is
// started once per test binary, when a test first needs it.

var (
	realm = krbtest.NewShared(testenv.Options{})
	peers = &sharedPeers{}
)

func TestMain(m *testing.M) {
	code := realm.Run(m) // runs the tests, stops the KDC last
	peers.stop()
	os.Exit(code)
}

const (
	realmName = "EXAMPLE.TEST"
	// Principals the tests add to the realm, with what they are for.
	userShort   = "carol" // TGT lifetime of a few seconds (renewal tests)
	userRenew   = "erin"  // renewable, short-lived, via kinit from a keytab
	userPreauth = "dave"  // requires pre-authentication
	shortLife   = 8 * time.Second
)

var aesEnctypes = []struct {
	id   int32
	name string
}{
	{17, "aes128-cts-hmac-sha1-96"},
	{18, "aes256-cts-hmac-sha1-96"},
	{19, "aes128-cts-hmac-sha256-128"},
	{20, "aes256-cts-hmac-sha384-192"},
}

// sharedPeers are the processes and files shared by the tests.
type sharedPeers struct {
	setupOnce sync.Once
	setupErr  error
	dir       string // removed by stop
	userKT    string // keytab of alice, carol, erin and dave
	confs     sync.Map

	gssocksOnce sync.Once
	gssocks     *gatewayProcess
	gssocksErr  error

	danteOnce sync.Once
	dante     string // address
	danteStop func() error
	danteErr  error
	danteIn   *dante.Install

	mu    sync.Mutex
	stops []func()
}

func (p *sharedPeers) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

func (p *sharedPeers) atExit(f func()) {
	p.mu.Lock()
	p.stops = append(p.stops, f)
	p.mu.Unlock()
}

// env is the realm, with the principals the tests need.
func env(t testing.TB) *krbtest.Env {
	t.Helper()
	e := realm.Get(t)
	peers.setupOnce.Do(func() { peers.setupErr = peers.setup(e) })
	if peers.setupErr != nil {
		t.Fatalf("test realm setup: %v", peers.setupErr)
	}
	return e
}

func (p *sharedPeers) setup(e *krbtest.Env) error {
	dir, err := os.MkdirTemp("", "gssocks-client-test-")
	if err != nil {
		return err
	}
	p.dir = dir
	r := e.Realm
	for _, u := range []string{userShort, userRenew, userPreauth} {
		if err := r.AddUser(u, u+"-password-1"); err != nil {
			return err
		}
	}
	for _, q := range []string{
		fmt.Sprintf(`modprinc -maxlife "%d seconds" -maxrenewlife 0 %s`, int(shortLife.Seconds()), userShort),
		`modprinc -maxrenewlife "1 hour" ` + userRenew,
		`modprinc -maxrenewlife "1 hour" krbtgt/` + realmName,
		`modprinc +requires_preauth ` + userPreauth,
	} {
		if err := kadmin(r, q); err != nil {
			return err
		}
	}
	p.userKT = filepath.Join(dir, "users.keytab")
	return r.ExportKeytab(p.userKT, "alice", userShort, userRenew, userPreauth)
}

func kadmin(r *testenv.Realm, query string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Run(ctx, nil, "kadmin.local", "-r", r.Name, "-q", query)
	if err != nil {
		return err
	}
	if strings.Contains(string(out), "while ") || strings.Contains(string(out), "usage:") {
		return fmt.Errorf("kadmin.local -q %q: %s", query, out)
	}
	return nil
}

// krb5Conf is the realm's krb5.conf for clients (restricted to enctype if
// not empty) without its dns_canonicalize_hostname and rdns lines, so the
// client canonicalises the gateway's host as MIT does by default:
// 127.0.0.1 becomes localhost.
func krb5Conf(t testing.TB, enctype string) string {
	t.Helper()
	e := env(t)
	if p, ok := peers.confs.Load(enctype); ok {
		return p.(string)
	}
	var encs []string
	if enctype != "" {
		encs = []string{enctype}
	}
	src, err := e.Realm.ClientConfig(encs...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		k := strings.TrimSpace(line)
		if strings.HasPrefix(k, "rdns") || strings.HasPrefix(k, "dns_canonicalize_hostname") {
			continue
		}
		kept = append(kept, line)
	}
	path := filepath.Join(peers.dir, "krb5-"+enctype+".conf")
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	actual, _ := peers.confs.LoadOrStore(enctype, path)
	return actual.(string)
}

// password returns a user's password.
func password(user string) string {
	if pw, ok := krbtest.Users[user]; ok {
		return pw
	}
	return user + "-password-1"
}

// kinit gets a TGT for user from the users' keytab into cache (a ccache
// name, "FILE:..." or "DIR:..."), with kinit's extra args. A DIR:
// collection is passed as KRB5CCNAME, so that kinit adds a member for a
// new principal and makes it the primary one.
func kinit(t testing.TB, user, cache string, args ...string) {
	t.Helper()
	e := env(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := []string{"-k", "-t", peers.userKT}
	if !strings.HasPrefix(cache, "DIR:") {
		argv = append(argv, "-c", cache)
	}
	argv = append(append(argv, args...), user+"@"+realmName)
	if _, err := e.Realm.Run(ctx, e.Realm.Env(krb5Conf(t, ""), cache), "kinit", argv...); err != nil {
		t.Fatal(err)
	}
}

// gatewayProcess is a running `gssocks serve`.
type gatewayProcess struct {
	addr string
	mu   sync.Mutex
	log  bytes.Buffer
}

func (g *gatewayProcess) logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

// gssocksRules: bob is answered level 0 whatever he asks (auth_only, the
// curl compatibility); dave may use integrity only; the other users any
// level, in the RFC or the NEC form; nobody may reach 127.0.0.3.
const gssocksRules = `
rule "deny-127.0.0.3" {
  action       = "deny"
  destinations = ["127.0.0.3/32"]
}
rule "bob-auth-only" {
  principals   = ["bob@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
  auth_only    = true
}
rule "dave-integrity-only" {
  principals   = ["dave@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["integrity"]
}
rule "all" {
  principals   = ["alice@EXAMPLE.TEST", "carol@EXAMPLE.TEST", "erin@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
  nec          = true
}
`

// gssocksGateway is the real gssocks binary, built from this tree, with a
// keytab holding rcmd/localhost only and gssocksRules.
func gssocksGateway(t testing.TB) *gatewayProcess {
	t.Helper()
	e := env(t)
	peers.gssocksOnce.Do(func() { peers.gssocks, peers.gssocksErr = startGssocks(e) })
	if peers.gssocksErr != nil {
		t.Fatalf("gssocks: %v", peers.gssocksErr)
	}
	return peers.gssocks
}

func startGssocks(e *krbtest.Env) (*gatewayProcess, error) {
	dir := filepath.Join(peers.dir, "gssocks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "gssocks")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/gssocks/gssocks/cmd/gssocks").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	kt := filepath.Join(dir, "gssocks.keytab")
	if err := e.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		return nil, err
	}
	if err := os.Chmod(kt, 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "gssocks.hcl")
	text := fmt.Sprintf("listen = [%q]\nkerberos {\n  keytab = %q\n}\nlog {\n  level = \"debug\"\n}\ntimeouts {\n  bind = \"10s\"\n}\n%s", addr, kt, gssocksRules)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.Env = e.Realm.Env("", "")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &gatewayProcess{addr: addr}
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			g.mu.Lock()
			g.log.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
		}
	}()
	peers.atExit(func() {
		cmd.Process.Kill()
		<-eof
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(g.logs(), "listening") {
		select {
		case <-eof:
			return nil, fmt.Errorf("gssocks exited:\n%s", g.logs())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("gssocks not listening after 20s:\n%s", g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g, nil
}

// danteGateway is Dante's sockd with GSS-API, all levels allowed, keytab
// rcmd/localhost only.
func danteGateway(t testing.TB) string {
	t.Helper()
	e := env(t)
	in := dante.Require(t)
	peers.danteOnce.Do(func() {
		peers.danteIn = in
		peers.dante, peers.danteStop, peers.danteErr = startSockd(e, in, "sockd", nil, false)
		if peers.danteErr == nil {
			peers.atExit(func() { peers.danteStop() })
		}
	})
	if peers.danteErr != nil {
		t.Fatalf("dante: %v", peers.danteErr)
	}
	return peers.dante
}

func startSockd(e *krbtest.Env, in *dante.Install, name string, levels []string, nec bool) (addr string, stop func() error, err error) {
	dir := filepath.Join(peers.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	kt := filepath.Join(dir, "sockd.keytab")
	if err := e.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		return "", nil, err
	}
	if levels == nil {
		levels = []string{"clear", "integrity", "confidentiality"}
	}
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		addr = ln.Addr().String()
		ln.Close()
		stop, err = in.StartServer(dir, dante.ServerConfig{Listen: addr, Keytab: kt, Levels: levels, NEC: nec}, e.Realm.Env("", ""))
		if err == nil {
			return addr, stop, nil
		}
	}
	return "", nil, err
}

// sockdLog is the log of the named sockd.
func sockdLog(name string) string {
	b, _ := os.ReadFile(filepath.Join(peers.dir, name, "sockd.log"))
	return string(b)
}

// payload is n bytes of a fixed pseudo-random stream and its SHA-256.
func payload(n int, seed uint64) ([]byte, [32]byte) {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b, sha256.Sum256(b)
}

// sourceServer sends data to every connection and closes it.
func sourceServer(t testing.TB, data []byte) string {
	return testutil.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		c.Write(data)
	})
}

// udpEcho echoes datagrams on 127.0.0.1.
func udpEcho(t testing.TB) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr)
}

// echoRoundTrip writes size bytes through c to an echo server, half-closes
// and checks the SHA-256 of what comes back.
func echoRoundTrip(t testing.TB, c net.Conn, size int) {
	t.Helper()
	data, want := payload(size, uint64(size))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				err = cw.CloseWrite()
			}
		}
		errc <- err
	}()
	h := sha256.New()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := io.Copy(h, c)
	if werr := <-errc; werr != nil {
		t.Fatalf("write: %v", werr)
	}
	if err != nil || n != int64(size) || [32]byte(h.Sum(nil)) != want {
		t.Fatalf("echo of %d bytes: got %d bytes, %v, digest ok %t", size, n, err, [32]byte(h.Sum(nil)) == want)
	}
}

// danteInstall is the built Dante (skipping, or failing under CI=true,
// where it cannot be built).
func danteInstall(t testing.TB) *dante.Install {
	t.Helper()
	return dante.Require(t)
}
