package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

// The benchmark's user and the gateways' service principal.
const (
	user     = "alice"
	password = "bench-password-1"
	service  = "rcmd/localhost"
)

// Enctypes the bulk transfers run with (MIT names): the session key of
// the service ticket, and so of every token, is of this type.
var enctypeNames = map[string]string{
	"aes256-sha1":   "aes256-cts-hmac-sha1-96",
	"aes256-sha384": "aes256-cts-hmac-sha384-192",
}

// env is one run's world: the realm, the two gateways, the sink.
type env struct {
	dir     string
	realm   *testenv.Realm
	keytab  string
	ccache  string // alice's ticket cache, for socksify
	dante   *dante.Install
	sink    *sink
	web     *web // HTTP front of the sink, for curl under socksify
	gssocks *server
	sockd   *server
	bin     string // the gssocks binary
	baseBin string // the baseline's (-baseline)
	// gssocksEnv is added to gssocks' environment (GOMAXPROCS=1, GOGC=...).
	gssocksEnv []string
	closeOnce  sync.Once
	dialers    map[dialerKey]*client.Dialer
}

// server is a gateway under test: the leader of its own process group.
type server struct {
	name string // "gssocks", "dante" or "baseline"
	bin  string // gssocks' binary
	addr string
	pgid int
	stop func() error
	// gssocks only: its stderr, and dump (SIGQUIT: goroutine count).
	stderr string
	dump   func() (int, error)
}

func (s *server) cpu() float64 { return cpuSeconds(s.pgid) }
func (s *server) mem() memory  { return measureMemory(s.pgid) }

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the gssocks module")
	}
	return filepath.Dir(mod), nil
}

// setup starts the realm, builds and starts gssocks, builds (cached) and
// starts Dante's sockd with the same keytab and levels, and the sink.
func setup(cfg *Config) (_ *env, err error) {
	e := &env{dialers: map[dialerKey]*client.Dialer{}, gssocksEnv: cfg.GssocksEnv}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "socksbench-"); err != nil {
		return nil, err
	}
	if cfg.Dante {
		cfg.logf("building Dante 1.4.2 with GSS-API (cached in %s)", "~/.cache/gssocks")
		if e.dante, err = dante.Build(); err != nil {
			return nil, err
		}
	}
	if e.realm, err = testenv.Start(testenv.Options{}); err != nil {
		return nil, err
	}
	e.keytab = filepath.Join(e.dir, "proxy.keytab")
	for _, f := range []func() error{
		func() error { return e.realm.AddUser(user, password) },
		func() error { return e.realm.AddService(service) },
		func() error { return e.realm.ExportKeytab(e.keytab, service) },
		func() error { return os.Chmod(e.keytab, 0o600) },
	} {
		if err := f(); err != nil {
			return nil, err
		}
	}
	if e.sink, err = startSink(); err != nil {
		return nil, err
	}
	if e.web, err = startWeb(); err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	e.bin = filepath.Join(e.dir, "gssocks-bin")
	cfg.logf("building gssocks (go build ./cmd/gssocks)")
	if err := goBuild(root, e.bin); err != nil {
		return nil, err
	}
	if e.gssocks, err = e.startGssocks("gssocks", e.bin); err != nil {
		return nil, err
	}
	if cfg.Baseline != "" {
		e.baseBin = filepath.Join(e.dir, "baseline-bin")
		cfg.logf("building the baseline gssocks in %s", cfg.Baseline)
		if err := goBuild(cfg.Baseline, e.baseBin); err != nil {
			return nil, err
		}
		if e.sockd, err = e.startGssocks("baseline", e.baseBin); err != nil {
			return nil, err
		}
		return e, nil
	}
	if cfg.Dante {
		if e.ccache, err = e.realm.Kinit(user, password); err != nil {
			return nil, err
		}
		if e.sockd, err = e.startSockd(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// onInterrupt closes e and exits when sig delivers.
func (e *env) onInterrupt(sig <-chan os.Signal) {
	if sig == nil {
		return
	}
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "socksbench: interrupted; stopping the servers")
		e.close()
		os.Exit(1)
	}()
}

func goBuild(dir, out string) error {
	build := exec.Command("go", "build", "-o", out, "./cmd/gssocks")
	build.Dir = dir
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/gssocks in %s: %v: %s", dir, err, b)
	}
	return nil
}

func (e *env) close() { e.closeOnce.Do(e.doClose) }

func (e *env) doClose() {
	for _, d := range e.dialers {
		d.Close()
	}
	for _, s := range []*server{e.gssocks, e.sockd} {
		if s != nil {
			s.stop()
		}
	}
	if e.sink != nil {
		e.sink.Close()
	}
	if e.web != nil {
		e.web.Close()
	}
	if e.realm != nil {
		e.realm.Close()
	}
	if e.dir != "" && os.Getenv("SOCKSBENCH_KEEP") == "" {
		os.RemoveAll(e.dir)
	}
}

func (e *env) servers() []*server {
	if e.sockd == nil {
		return []*server{e.gssocks}
	}
	return []*server{e.gssocks, e.sockd}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// gssocksConfig allows alice to the loopback destinations at every level,
// as sockd.conf of testenv/dante does, and writes one audit record per
// session to a file, as sockd logs connect and disconnect. Its replay
// cache lets one principal set up more sessions than the default share
// (MIT's replay cache, Dante's, has no such limit).
const gssocksConfig = `listen = [%q]
kerberos {
  keytab = %q
  # One principal sets up hundreds of thousands of sessions in a run: the
  # per-principal share of the replay cache (by default a sixteenth of
  # max_entries, 65 536 authenticators per 10 minutes) would refuse it.
  replay_cache {
    max_entries       = 4194304
    max_per_principal = 4194304
  }
}
limits {
  max_sessions = 0
  # The load comes from one address: no per-source handshake cap.
  max_handshakes            = 0
  max_handshakes_per_source = 0
}
log {
  level = "warn"
  audit = %q
}
realm %q {
  pac = "none"
}
rule "bench" {
  principals   = ["*@%s"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
}
`

// startGssocks runs the gssocks binary (`gssocks serve`) in a process
// group of its own.
func (e *env) startGssocks(name, bin string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "gssocks.hcl")
	body := fmt.Sprintf(gssocksConfig, addr, e.keytab, filepath.Join(dir, "audit.log"), e.realm.Name, e.realm.Name)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	errPath := filepath.Join(dir, "stderr")
	errf, err := os.Create(errPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	cmd := exec.Command(bin, "serve", "--config", conf)
	// GOTRACEBACK=all: a SIGQUIT dumps every goroutine (the count per
	// idle session is read from that dump at the end of the run).
	cmd.Env = append(append(e.realm.Env("", ""), "GOTRACEBACK=all"), e.gssocksEnv...)
	cmd.Stdout, cmd.Stderr = errf, errf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	s := &server{name: name, bin: bin, addr: addr, pgid: cmd.Process.Pid, stderr: errPath}
	s.stop = func() error {
		select {
		case <-exited:
			return nil
		default:
		}
		return testenv.StopGroup("gssocks", cmd.Process.Pid, exited, 10*time.Second)
	}
	s.dump = func() (int, error) {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			s.stop()
			return 0, errors.New("gssocks did not exit on SIGQUIT")
		}
		b, err := os.ReadFile(errPath)
		if err != nil {
			return 0, err
		}
		n := len(goroutineHeader.FindAll(b, -1))
		if n == 0 {
			if len(b) > 2000 {
				b = b[len(b)-2000:]
			}
			return 0, fmt.Errorf("no goroutine dump in gssocks' stderr (%v):\n%s", waitErr, b)
		}
		return n, nil
	}
	if err := waitPort(addr, exited); err != nil {
		s.stop()
		b, _ := os.ReadFile(errPath)
		return nil, fmt.Errorf("gssocks: %w (exit: %v)\n%s", err, waitErr, b)
	}
	return s, nil
}

var goroutineHeader = regexp.MustCompile(`(?m)^goroutine \d+ [^\n]*\[[^\n]*\]:$`)

func (e *env) startSockd() (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.dir, "sockd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sd, err := e.dante.StartSockd(dir, dante.ServerConfig{
		Listen: addr, Keytab: e.keytab,
		Levels: []string{"clear", "integrity", "confidentiality"},
	}, e.realm.Env("", ""))
	if err != nil {
		return nil, err
	}
	return &server{name: "dante", addr: addr, pgid: sd.Pid, stop: sd.Stop}, nil
}

func waitPort(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("exited before listening")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialerKey names one client configuration.
type dialerKey struct {
	server  string
	enctype string // a key of enctypeNames
	level   encap.Level
}

// dialer returns the client (our client package) for a server, enctype
// and level: alice's password, the realm's krb5.conf restricted to the
// enctype, and exactly that level accepted (a gateway granting another
// one fails the session instead of measuring the wrong thing).
func (e *env) dialer(s *server, enctype string, level encap.Level) (*client.Dialer, error) {
	k := dialerKey{s.name, enctype, level}
	if d, ok := e.dialers[k]; ok {
		return d, nil
	}
	conf, err := e.realm.ClientConfig(enctypeNames[enctype])
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		Gateway: s.addr, ServicePrincipal: service,
		Principal: user, Password: password, Krb5Conf: conf,
		Level: level,
	}
	if level == encap.LevelClear {
		opts.Level, opts.AskClear = encap.LevelConfidentiality, true
	}
	d, err := client.New(opts)
	if err != nil {
		return nil, err
	}
	d.Config.AcceptLevels = []encap.Level{level}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Login(ctx); err != nil {
		d.Close()
		return nil, err
	}
	e.dialers[k] = d
	return d, nil
}

// dialerFor is a confidentiality client of another gssocks instance (not
// kept in e.dialers); Close it.
func (e *env) dialerFor(s *server) (*client.Dialer, error) {
	conf, err := e.realm.ClientConfig(enctypeNames["aes256-sha1"])
	if err != nil {
		return nil, err
	}
	d, err := client.New(client.Options{
		Gateway: s.addr, ServicePrincipal: service,
		Principal: user, Password: password, Krb5Conf: conf,
		Level: encap.LevelConfidentiality,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
