package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// Principals the suite adds to the realm besides krbtest's users and
// services.
const (
	// upperAlice is a second MIT principal spelled like alice in capitals:
	// the MIT stand-in for an AD account name typed in another case.
	upperAlice   = "ALICE"
	upperAlicePW = "upper-alice-password-1"
	// sharedA and sharedB have one key: created with the same password
	// and the realm-only salt, like several SPNs of one AD account.
	sharedA  = "host/shared-a"
	sharedB  = "host/shared-b"
	sharedPW = "shared-service-password-1"
)

// World is what every case runs against: the realm, the gateway binary,
// tickets, and loopback services for the gateway to reach.
type World struct {
	Env    *krbtest.Env
	Bin    string   // the gssocks binary
	Race   bool     // Bin is built with -race
	Cgo    bool     // Bin is built with cgo (its resolver can be glibc's)
	Keytab string   // rcmd/localhost, socks/localhost, host/shared-a and -b
	Keys   [][]byte // every key of Keytab, for leak checks

	Echo    netip.AddrPort // TCP echo
	UDPEcho *udpEcho
	Secret  *secret // a TCP and a UDP service only on 127.0.0.1

	tickets map[string]gssapi.InitiatorConfig
	dir     string
}

// ticket returns the prepared service ticket of a client ("alice",
// "bob", "ALICE", "alice>host/shared-a").
func (w *World) ticket(name string) gssapi.InitiatorConfig {
	tk, ok := w.tickets[name]
	if !ok {
		panic("hostile: no ticket " + name)
	}
	return tk
}

// NewWorld prepares the realm (extra principals, keytab), builds the
// gateway and starts the loopback services. race builds the gateway with
// the race detector.
func NewWorld(t *testing.T, env *krbtest.Env, race bool) *World {
	t.Helper()
	w := &World{Env: env, Race: race, dir: t.TempDir(), tickets: map[string]gssapi.InitiatorConfig{}}
	r := env.Realm
	if err := r.AddUser(upperAlice, upperAlicePW); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sharedA, sharedB} {
		out, err := r.Run(context.Background(), nil, "kadmin.local", "-r", r.Name, "-q",
			fmt.Sprintf(`addprinc -e aes256-cts-hmac-sha1-96:onlyrealm -pw "%s" %s`, sharedPW, p))
		if err != nil || bytes.Contains(out, []byte("add_principal:")) {
			t.Fatalf("add %s: %v\n%s", p, err, out)
		}
	}
	w.Keytab = filepath.Join(w.dir, "gssocks.keytab")
	if err := r.ExportKeytab(w.Keytab, append(append([]string{}, krbtest.Services...), sharedA, sharedB)...); err != nil {
		t.Fatal(err)
	}
	kt, err := keytab.Load(w.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	keyOf := map[string][]byte{}
	for _, e := range kt.Entries {
		w.Keys = append(w.Keys, e.Key.KeyValue)
		keyOf[strings.Join(e.Principal.Components, "/")+"/"+strconv.Itoa(int(e.Key.KeyType))] = e.Key.KeyValue
	}
	// The 8.2 case rests on this: check it rather than trust the salt.
	if a, b := keyOf[sharedA+"/18"], keyOf[sharedB+"/18"]; a == nil || !bytes.Equal(a, b) {
		t.Fatalf("%s and %s do not share their aes256 key", sharedA, sharedB)
	}

	for _, u := range []string{"alice", "bob"} {
		if w.tickets[u], err = env.InitiatorConfig(u, "rcmd/localhost", ""); err != nil {
			t.Fatal(err)
		}
	}
	if w.tickets["alice>"+sharedA], err = env.InitiatorConfig("alice", sharedA, ""); err != nil {
		t.Fatal(err)
	}
	if w.tickets[upperAlice], err = login(env, upperAlice, upperAlicePW, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}

	w.Bin = filepath.Join(w.dir, "gssocks")
	args := []string{"build", "-o", w.Bin}
	if race {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "github.com/gssocks/gssocks/cmd/gssocks")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", w.Bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	w.Cgo = bytes.Contains(info, []byte("CGO_ENABLED=1"))

	w.Echo = serveTCP(t, func(c net.Conn) { io.Copy(c, c) })
	w.UDPEcho = newUDPEcho(t)
	w.Secret = newSecret(t)
	return w
}

// login gets a service ticket for a principal krbtest does not know.
func login(env *krbtest.Env, user, pw, service string) (gssapi.InitiatorConfig, error) {
	kcfg, err := krbconfig.Load(env.Realm.Krb5Conf)
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	cl := krbclient.NewWithPassword(user, env.Realm.Name, pw, kcfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("login %s: %w", user, err)
	}
	tkt, key, err := cl.GetServiceTicket(service)
	if err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("ticket of %s for %s: %w", user, service, err)
	}
	return gssapi.InitiatorConfig{Client: gssapi.Principal{Name: user, Realm: env.Realm.Name}, Ticket: tkt, SessionKey: key}, nil
}

// serveTCP runs handle for each connection to a new 127.0.0.1 listener
// until the test ends.
func serveTCP(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// udpEcho echoes datagrams to their sender and remembers the payloads
// that start with markPrefix, so a case can tell whether one got through.
type udpEcho struct {
	Addr netip.AddrPort
	mu   sync.Mutex
	seen map[string]bool
}

const markPrefix = "MARK:"

func newUDPEcho(t *testing.T) *udpEcho {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &udpEcho{Addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), seen: map[string]bool{}}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if bytes.HasPrefix(buf[:n], []byte(markPrefix)) {
				e.mu.Lock()
				e.seen[string(buf[:n])] = true
				e.mu.Unlock()
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return e
}

// Saw reports whether the payload reached the echo.
func (e *udpEcho) Saw(payload string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen[payload]
}

// secret is a service bound only to 127.0.0.1, which no client should
// reach through the gateway: it counts TCP connections and UDP datagrams.
type secret struct {
	TCP, UDP netip.AddrPort
	conns    atomic.Int64
	grams    atomic.Int64
}

func newSecret(t *testing.T) *secret {
	t.Helper()
	s := &secret{}
	s.TCP = serveTCP(t, func(net.Conn) { s.conns.Add(1) })
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	s.UDP = u.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := u.ReadFromUDPAddrPort(buf); errors.Is(err, net.ErrClosed) {
				return
			} else if err == nil {
				s.grams.Add(1)
			}
		}
	}()
	return s
}

// Hits is the number of TCP connections and UDP datagrams received.
func (s *secret) Hits() int64 { return s.conns.Load() + s.grams.Load() }

// Gateway is a running `gssocks serve` with its log (stderr).
type Gateway struct {
	Addr    string
	Dir     string
	Keytab  string // the gateway's own copy, which a case may replace
	Profile string

	cmd    *exec.Cmd
	log    testutil.LogBuffer
	exited chan struct{}
	werr   error
}

// Log is everything the gateway wrote to stderr so far.
func (g *Gateway) Log() string { return g.log.String() }

// Pid is the gateway's process id.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// Alive reports whether the process is still running.
func (g *Gateway) Alive() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// exitErr is the process's exit status once it has exited, else nil.
func (g *Gateway) exitErr() error {
	select {
	case <-g.exited:
		return g.werr
	default:
		return nil
	}
}

// Signal sends sig to the gateway.
func (g *Gateway) Signal(sig os.Signal) error { return g.cmd.Process.Signal(sig) }

// WaitLog waits until the log after offset from matches re, up to d.
func (g *Gateway) WaitLog(re *regexp.Regexp, from int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if re.MatchString(g.Log()[from:]) {
			return true
		}
		if time.Now().After(deadline) || !g.Alive() {
			return re.MatchString(g.Log()[from:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var listeningRE = regexp.MustCompile(`listening: addr=`)

// startGateway writes the profile's configuration and runs the gateway
// until the test ends. An error (a configuration this tree does not know,
// a crash) is returned with the log.
func startGateway(t *testing.T, w *World, p profile) (*Gateway, error) {
	t.Helper()
	dir := t.TempDir()
	g := &Gateway{Dir: dir, Keytab: filepath.Join(dir, "gssocks.keytab"), Profile: p.name, exited: make(chan struct{})}
	kt, err := os.ReadFile(w.Keytab)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.Keytab, kt, 0o600); err != nil {
		return nil, err
	}
	g.Addr, err = freeAddr()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "gssocks.hcl")
	if err := os.WriteFile(conf, []byte(p.config(w, g)), 0o644); err != nil {
		return nil, err
	}
	g.cmd = exec.Command(w.Bin, "serve", "--config", conf)
	g.cmd.Env = append(w.Env.Realm.Env("", ""), p.env...)
	g.cmd.Stderr = &g.log
	g.cmd.Stdout = &g.log
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { g.werr = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		<-g.exited
	})
	if !g.WaitLog(listeningRE, 0, 20*time.Second) {
		return nil, fmt.Errorf("gateway (profile %s) did not start: %v\n%s", p.name, g.exitErr(), redact(g.Log(), w.Keys))
	}
	return g, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// RSS is the gateway's resident set size in bytes (/proc/<pid>/status).
func (g *Gateway) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.Pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// ListeningTCP counts the gateway's TCP sockets in state LISTEN: its
// sockets (/proc/<pid>/fd) that /proc/<pid>/net/tcp{,6} list as 0A.
func (g *Gateway) ListeningTCP() (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.Pid()))
	if err != nil {
		return 0, err
	}
	mine := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", g.Pid(), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", g.Pid(), f))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 9 && fields[3] == "0A" && mine[fields[9]] {
				n++
			}
		}
	}
	return n, nil
}
