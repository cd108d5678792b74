// Package dante builds and runs Dante 1.4.2 with GSS-API for the tests and
// benchmarks: the client (socksify and its LD_PRELOAD library) and the
// server (sockd).
//
// Debian's dante packages are built without GSS-API, so Build runs
// scripts/build-dante.sh, which rebuilds Debian's own source package with
// GSS-API against MIT Kerberos into a per-user cache directory,
// os.UserCacheDir()/gssocks/dante/<hash of the script>. The first build
// takes a minute or more and needs apt-get (it installs the build
// dependencies and fetches the source through a private deb-src
// configuration); later calls find it built and return at once.
//
// Debian renames Dante's preload library libdsocks to libdsocksd; socksify
// preloads it by name with LD_LIBRARY_PATH pointing at the install.
//
// Client side, ClientEnv writes a socks.conf with one SOCKS v5 route that
// uses method gssapi for every destination (local ones included) and
// Command runs a program under socksify with it. Server side, StartServer
// runs sockd in the foreground with socksmethod gssapi and a keytab.
package dante

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
)

// ErrToolsMissing is wrapped by Build's error when the build cannot run on
// this machine: no bash or apt-get, not root and no password-less sudo, or
// no Debian source entry to copy.
var ErrToolsMissing = errors.New("dante: cannot build Dante with GSS-API here (needs bash, Debian's apt-get and root or sudo; see scripts/build-dante.sh)")

const (
	scriptRel      = "scripts/build-dante.sh"
	exitCannot     = 3 // build-dante.sh's exit status for "cannot build here"
	startTimeout   = 15 * time.Second
	stopTimeout    = 5 * time.Second
	defaultService = "rcmd"
)

// Install is a built Dante.
type Install struct {
	Prefix    string // installation prefix
	Socksify  string // Prefix/bin/socksify
	Sockd     string // Prefix/sbin/sockd
	LibDsocks string // Prefix/lib/libdsocksd.so (Debian's name for libdsocks)
}

func newInstall(prefix string) *Install {
	return &Install{
		Prefix:    prefix,
		Socksify:  filepath.Join(prefix, "bin", "socksify"),
		Sockd:     filepath.Join(prefix, "sbin", "sockd"),
		LibDsocks: filepath.Join(prefix, "lib", "libdsocksd.so"),
	}
}

// recipe is what Build would build: the script and where.
type recipe struct {
	script string // path of build-dante.sh
	hash   string // hex SHA-256 of the script, as the script computes it
	cache  string // os.UserCacheDir()/gssocks/dante
	prefix string // cache/<hash[:16]>
}

// Build builds Dante with scripts/build-dante.sh unless it is already
// built, and returns the installation. Concurrent builds, in this process
// or others, are serialised with a lock file in the cache directory. The
// first build takes minutes; its output goes to a log file next to the
// prefix, whose tail is in the error on failure.
func Build() (*Install, error) {
	r, err := findRecipe()
	if err != nil {
		return nil, err
	}
	if !r.done() {
		if err := r.build(); err != nil {
			return nil, err
		}
	}
	return newInstall(r.prefix), nil
}

// findRecipe locates build-dante.sh and derives the prefix from its hash.
func findRecipe() (*recipe, error) {
	script, err := findScript(scriptRel)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(script)
	if err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	sum := sha256.Sum256(data)
	cache, err := testenv.CacheDir("dante")
	if err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	hash := hex.EncodeToString(sum[:])
	return &recipe{script: script, hash: hash, cache: cache, prefix: filepath.Join(cache, hash[:16])}, nil
}

// done reports whether the prefix holds a finished build of this recipe.
func (r *recipe) done() bool {
	b, err := os.ReadFile(filepath.Join(r.prefix, ".built-ok"))
	return err == nil && strings.TrimSpace(string(b)) == r.hash
}

func (r *recipe) logPath() string { return r.prefix + ".log" }

// build runs the script under an exclusive lock on cache/<hash>.lock.
func (r *recipe) build() error {
	if err := os.MkdirAll(r.cache, 0o755); err != nil {
		return fmt.Errorf("dante: %w", err)
	}
	unlock, err := testenv.LockFile(r.prefix + ".lock")
	if err != nil {
		return fmt.Errorf("dante: %w", err)
	}
	defer unlock()
	if r.done() { // another process built it while we waited
		return nil
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return fmt.Errorf("%w: bash not found", ErrToolsMissing)
	}
	logf, err := os.Create(r.logPath())
	if err != nil {
		return fmt.Errorf("dante: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bash, r.script, r.prefix)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	runErr := cmd.Run()
	if runErr == nil && r.done() {
		return nil
	}
	tail := logTail(r.logPath(), 15)
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) && exitErr.ExitCode() == exitCannot {
		return fmt.Errorf("%w: %s", ErrToolsMissing, lastLine(tail))
	}
	if runErr == nil {
		runErr = errors.New("no .built-ok written")
	}
	return fmt.Errorf("dante: %s %s: %v (log %s):\n%s", r.script, r.prefix, runErr, r.logPath(), tail)
}

// Require returns the built Dante, building it first if needed (which may
// take minutes: it logs that it is building). If Dante cannot be built the
// test is skipped with a one-line message, or, when CI=true, fails.
func Require(tb testing.TB) *Install {
	tb.Helper()
	if r, err := findRecipe(); err == nil && !r.done() {
		tb.Logf("dante: building Dante 1.4.2 with GSS-API into %s (first time: a few minutes; log %s)", r.prefix, r.logPath())
	}
	in, err := Build()
	if err == nil {
		return in
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%v\n(CI=true: Dante with GSS-API must build)", err)
	}
	tb.Skip(firstLine(err.Error()))
	return nil
}

// ClientConfig is the client side of one route through a SOCKS v5 server
// with GSS-API, rendered into socks.conf by ClientEnv.
type ClientConfig struct {
	// Proxy is the server's "HOST:PORT", e.g. "127.0.0.1:1080".
	Proxy string
	// Level is Dante's gssapi.enctype for the route: "integrity",
	// "confidentiality" or "clear", or several separated by spaces. The
	// client asks the server for exactly one, the best of them
	// (confidentiality > integrity > clear), and does not fall back: a
	// Dante server that does not allow it closes the connection. Empty
	// leaves Dante's default, which asks confidentiality. "clear" must be
	// named to be asked: after the GSS-API exchange the data then flows
	// unencapsulated, and Dante's server allows it only if its levels
	// include clear.
	Level string
	// ServiceName is gssapi.servicename, default "rcmd"; the client
	// requests a ticket for ServiceName@HOST of the Proxy.
	ServiceName string
	// NEC sets "clientcompatibility: necgssapi": the client sends the
	// protection-level sub-negotiation message (RFC 1961 §4.3) as a bare,
	// unwrapped byte (token length 1) and expects the answer the same way,
	// like the NEC reference implementation. It changes nothing else: the
	// data is still wrapped per RFC 1961 §5. A server without NEC
	// compatibility fails to unwrap that byte and closes the connection.
	NEC bool
	// Debug sets debug: 2 and logoutput: stderr.
	Debug bool
}

// clientVars are the environment variables ClientEnv sets or drops: those
// naming a proxy make Dante ignore socks.conf, and curl and others obey
// the *_proxy ones themselves.
var clientVars = []string{
	"SOCKS_CONF", "SOCKS_AUTOADD_LANROUTES", "SOCKS_DIRECTROUTE_FALLBACK",
	"SOCKS_SERVER", "SOCKS4_SERVER", "SOCKS5_SERVER", "HTTP_CONNECT_PROXY", "UPNP_IGD",
	"SOCKS_USERNAME", "SOCKS_PASSWORD", "SOCKS_DEBUG", "SOCKS_LOGOUTPUT", "LD_PRELOAD",
}

// ClientEnv writes dir/socks.conf for cfg and returns the environment for
// socksified commands: base (os.Environ() if nil; it should carry
// KRB5_CONFIG and KRB5CCNAME) with SOCKS_CONF pointing at that file,
// SOCKS_AUTOADD_LANROUTES=no (else Dante adds direct routes to the local
// networks, 127.0.0.0/8 included, and bypasses the proxy for them) and
// SOCKS_DIRECTROUTE_FALLBACK=no. Variables that would override socks.conf
// (SOCKS_SERVER, ...), proxy variables (http_proxy, ALL_PROXY, ...) and
// LD_PRELOAD are dropped from base.
func (in *Install) ClientEnv(dir string, cfg ClientConfig, base []string) ([]string, error) {
	conf, err := clientConf(cfg)
	if err != nil {
		return nil, err
	}
	path, err := filepath.Abs(filepath.Join(dir, "socks.conf"))
	if err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	if base == nil {
		base = os.Environ()
	}
	env := make([]string, 0, len(base)+3)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if dropClientVar(k) {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"SOCKS_CONF="+path,
		"SOCKS_AUTOADD_LANROUTES=no",
		"SOCKS_DIRECTROUTE_FALLBACK=no",
	), nil
}

func dropClientVar(k string) bool {
	for _, v := range clientVars {
		if k == v {
			return true
		}
	}
	return strings.HasSuffix(strings.ToLower(k), "_proxy")
}

// clientConf renders socks.conf.
func clientConf(cfg ClientConfig) ([]byte, error) {
	host, port, err := splitHostPort(cfg.Proxy)
	if err != nil {
		return nil, err
	}
	levels, err := levelWords(cfg.Level, "client")
	if err != nil {
		return nil, err
	}
	service := cfg.ServiceName
	if service == "" {
		service = defaultService
	}
	if err := checkWord("service name", service); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# generated by github.com/gssocks/gssocks/testenv/dante\n")
	if cfg.Debug {
		b.WriteString("debug: 2\nlogoutput: stderr\n")
	}
	b.WriteString("route {\n")
	fmt.Fprintf(&b, "\tfrom: 0.0.0.0/0 to: 0.0.0.0/0 via: %s port = %d\n", host, port)
	b.WriteString("\tproxyprotocol: socks_v5\n")
	b.WriteString("\tmethod: gssapi\n")
	if len(levels) > 0 {
		fmt.Fprintf(&b, "\tgssapi.enctype: %s\n", strings.Join(levels, " "))
	}
	fmt.Fprintf(&b, "\tgssapi.servicename: %s\n", service)
	if cfg.NEC {
		b.WriteString("\tclientcompatibility: necgssapi\n")
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// Command returns the command running name with args under socksify, with
// env (from ClientEnv) as its environment.
func (in *Install) Command(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, in.Socksify, append([]string{name}, args...)...)
	cmd.Env = env
	cmd.WaitDelay = time.Second
	return cmd
}

// ServerConfig configures StartServer.
type ServerConfig struct {
	Listen string // "127.0.0.1:PORT"; the port must not be 0
	Keytab string // keytab holding ServiceName/HOST keys
	// Levels are the gssapi.enctype values the server accepts
	// ("integrity", "confidentiality", "clear"); empty leaves Dante's
	// default, integrity and confidentiality. Dante grants the level the
	// client asks if it is in the list and otherwise closes the connection.
	Levels      []string
	LogFile     string // logoutput; default dir/sockd.log
	ServiceName string // gssapi.servicename, default "rcmd"
	NEC         bool   // also accept NEC-style unwrapped level messages (a one-byte token), in the client-rule
	Debug       bool   // debug: 2
}

// StartServer writes dir/sockd.conf for cfg and runs sockd in the
// foreground with env (os.Environ() if nil) plus KRB5_KTNAME=cfg.Keytab
// and TMPDIR=dir, until it accepts connections on cfg.Listen. The server
// lets every client from 127.0.0.0/8 connect anywhere (TCP connect, bind
// and UDP associate) after GSS-API authentication. The readiness probe
// shows in the log as a connection closed before negotiation ("eof from
// local client"). stop ends it (SIGTERM to sockd, which ends its children;
// SIGKILL to its process group after a grace period) and returns an error
// only if it could not be ended. sockd runs as the current user; as root
// it warns that its unprivileged uid is 0, which is harmless here.
func (in *Install) StartServer(dir string, cfg ServerConfig, env []string) (stop func() error, err error) {
	srv, err := in.StartSockd(dir, cfg, env)
	if err != nil {
		return nil, err
	}
	return srv.Stop, nil
}

// Sockd is a running sockd.
type Sockd struct {
	// Pid is the mother process, leader of the process group of all of
	// sockd's processes.
	Pid  int
	Stop func() error
}

// StartSockd is StartServer returning the process as well.
func (in *Install) StartSockd(dir string, cfg ServerConfig, env []string) (srv *Sockd, err error) {
	var stop func() error
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	conf, err := serverConf(dir, &cfg)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "sockd.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	outPath := filepath.Join(dir, "sockd.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dante: %w", err)
	}
	defer out.Close() // the child has its own copy

	if env == nil {
		env = os.Environ()
	}
	keytab := cfg.Keytab
	if !strings.Contains(keytab, ":") {
		keytab = "FILE:" + keytab
	}
	env = setEnv(env, "KRB5_KTNAME", keytab)
	env = setEnv(env, "TMPDIR", dir)

	args := []string{"-f", confPath, "-p", filepath.Join(dir, "sockd.pid"), "-N", "1"}
	if cfg.Debug {
		args = append(args, "-d", "2")
	}
	cmd := exec.Command(in.Sockd, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dante: start sockd: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() { stopErr = testenv.StopGroup("dante: sockd", pid, exited, stopTimeout) })
		return stopErr
	}

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			_ = stop()
			return nil, fmt.Errorf("dante: sockd exited (%v) before accepting on %s:\n%s", waitErr, cfg.Listen, logs(outPath, cfg.LogFile))
		default:
		}
		if c, err := net.DialTimeout("tcp", cfg.Listen, 200*time.Millisecond); err == nil {
			c.Close()
			return &Sockd{Pid: pid, Stop: stop}, nil
		}
		if time.Now().After(deadline) {
			_ = stop()
			return nil, fmt.Errorf("dante: sockd not accepting on %s after %v:\n%s", cfg.Listen, startTimeout, logs(outPath, cfg.LogFile))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverConf renders sockd.conf; it sets cfg.LogFile if empty.
func serverConf(dir string, cfg *ServerConfig) ([]byte, error) {
	host, port, err := splitHostPort(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		return nil, fmt.Errorf("dante: server listen address %q needs a port", cfg.Listen)
	}
	if cfg.Keytab == "" {
		return nil, errors.New("dante: server needs a keytab")
	}
	keytab := cfg.Keytab
	if !strings.Contains(keytab, ":") {
		abs, err := filepath.Abs(keytab)
		if err != nil {
			return nil, fmt.Errorf("dante: %w", err)
		}
		keytab = "FILE:" + abs
	}
	if err := checkWord("keytab", keytab); err != nil {
		return nil, err
	}
	levels, err := levelWords(strings.Join(cfg.Levels, " "), "server")
	if err != nil {
		return nil, err
	}
	service := cfg.ServiceName
	if service == "" {
		service = defaultService
	}
	if err := checkWord("service name", service); err != nil {
		return nil, err
	}
	if cfg.LogFile == "" {
		cfg.LogFile = filepath.Join(dir, "sockd.log")
	}
	if err := checkWord("log file", cfg.LogFile); err != nil {
		return nil, err
	}

	var gss bytes.Buffer
	fmt.Fprintf(&gss, "\tgssapi.keytab: %s\n", keytab)
	fmt.Fprintf(&gss, "\tgssapi.servicename: %s\n", service)
	if len(levels) > 0 {
		fmt.Fprintf(&gss, "\tgssapi.enctype: %s\n", strings.Join(levels, " "))
	}

	var b bytes.Buffer
	b.WriteString("# generated by github.com/gssocks/gssocks/testenv/dante\n")
	fmt.Fprintf(&b, "logoutput: %s\n", cfg.LogFile)
	if cfg.Debug {
		b.WriteString("debug: 2\n")
	}
	fmt.Fprintf(&b, "internal: %s port = %d\n", host, port)
	fmt.Fprintf(&b, "external: %s\n", host)
	b.WriteString("clientmethod: none\n")
	b.WriteString("socksmethod: gssapi\n")
	// The GSS-API settings that apply to the negotiation (keytab, service
	// name, levels) are taken from the client-rule; in a socks-rule they
	// do not steer it (with the keytab only there, sockd looks for the
	// default /etc/sockd.keytab). Both rules get them, to be explicit.
	// clientcompatibility is a client-rule keyword only.
	b.WriteString("\nclient pass {\n\tfrom: 127.0.0.0/8 to: 0.0.0.0/0\n\tclientmethod: none\n")
	b.Write(gss.Bytes())
	if cfg.NEC {
		b.WriteString("\tclientcompatibility: necgssapi\n")
	}
	b.WriteString("\tlog: error\n}\n")
	b.WriteString("\nsocks pass {\n\tfrom: 127.0.0.0/8 to: 0.0.0.0/0\n\tsocksmethod: gssapi\n")
	b.WriteString("\tcommand: bind connect udpassociate bindreply udpreply\n")
	b.Write(gss.Bytes())
	b.WriteString("\tlog: error connect disconnect\n}\n")
	return b.Bytes(), nil
}

// levelWords checks a space-separated list of gssapi.enctype values.
func levelWords(s, side string) ([]string, error) {
	words := strings.Fields(s)
	for _, w := range words {
		switch w {
		case "clear", "integrity", "confidentiality":
		default:
			return nil, fmt.Errorf("dante: %s level %q: want clear, integrity or confidentiality", side, w)
		}
	}
	return words, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("dante: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("dante: bad address %q", addr)
	}
	if err := checkWord("host", host); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// checkWord rejects values that would break Dante's configuration syntax.
func checkWord(what, s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n\"#{}") {
		return fmt.Errorf("dante: unsupported %s %q", what, s)
	}
	return nil
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// logs returns the tails of the given files, for error messages.
func logs(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if t := logTail(p, 15); t != "" {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", filepath.Base(p), t)
		}
	}
	if b.Len() == 0 {
		return "(no log output)"
	}
	return strings.TrimRight(b.String(), "\n")
}

func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// findScript locates rel in the repository.
func findScript(rel string) (string, error) {
	p, err := testenv.FindScript(rel)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolsMissing, err)
	}
	return p, nil
}
