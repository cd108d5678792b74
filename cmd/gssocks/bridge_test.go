package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/testenv"
)

// clientDeniedPort is a port the client tests' gateway denies.
const clientDeniedPort = 9

// startClientGateway is a gateway letting alice reach loopback at
// integrity or confidentiality, but port clientDeniedPort.
func startClientGateway(t *testing.T) (*krbtest.Env, *testutil.Gateway) {
	t.Helper()
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, t.TempDir(), 0o600)
	return env, testutil.StartGateway(t, fmt.Sprintf(`kerberos {
  keytab = %q
}
rule "deny-port" {
  action       = "deny"
  destinations = ["127.0.0.0/8", "localhost"]
  ports        = ["%d"]
}
rule "alice-loopback" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8", "localhost"]
  protection   = ["integrity", "confidentiality"]
}
`, kt, clientDeniedPort))
}

// clientEnv is the environment of a client command: the realm's
// krb5.conf, the ticket cache ccache ("" for the realm's default), an
// empty configuration directory, no GSSOCKS_ or proxy variables, and
// extra "K=V" entries.
func clientEnv(t *testing.T, env *krbtest.Env, ccache string, extra ...string) []string {
	t.Helper()
	var out []string
	for _, kv := range env.Realm.Env("", ccache) {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "xdg_config_home":
			continue
		}
		if strings.HasPrefix(k, "GSSOCKS_") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "XDG_CONFIG_HOME="+t.TempDir())
	return append(out, extra...)
}

// aliceCache is a FILE: ticket cache holding alice's TGT, from kinit.
func aliceCache(t *testing.T, env *krbtest.Env) string {
	t.Helper()
	path, err := env.Realm.Kinit("alice", krbtest.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	return "FILE:" + path
}

// requireTool is the path of a program the test needs; missing, the test
// is skipped, or fails under CI=true.
func requireTool(t *testing.T, name string) string {
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
	t.Fatalf("%s not found", name)
	return ""
}

// bridgeProcess is a running `gssocks bridge`.
type bridgeProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	eof  chan struct{}
	addr map[string]string // "SOCKS5", "HTTP", "PAC" → address
}

func (p *bridgeProcess) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

var listenLine = regexp.MustCompile(`(?m)^gssocks bridge: (SOCKS5|HTTP) proxy on (\S+)$|^gssocks bridge: (PAC) file on http://(\S+)/proxy\.pac$`)

// startBridgeProcess runs bin bridge with args and waits for it to print
// its listeners.
func startBridgeProcess(t *testing.T, bin string, env []string, args ...string) *bridgeProcess {
	t.Helper()
	p := &bridgeProcess{cmd: exec.Command(bin, append([]string{"bridge"}, args...)...), eof: make(chan struct{}), addr: map[string]string{}}
	p.cmd.Env = env
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.eof)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if testing.Verbose() {
				t.Log(sc.Text())
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.eof
		p.cmd.Wait()
	})
	want := 0
	for _, a := range args {
		if a == "--socks" || a == "--http" || a == "--pac" {
			want++
		}
	}
	testutil.WaitFor(t, "the bridge's listeners", func() bool {
		return len(listenLine.FindAllString(p.stderr(), -1)) >= want
	})
	for _, m := range listenLine.FindAllStringSubmatch(p.stderr(), -1) {
		if m[1] != "" {
			p.addr[m[1]] = m[2]
		} else {
			p.addr[m[3]] = m[4]
		}
	}
	return p
}

// stop sends sig and returns the exit code.
func (p *bridgeProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.eof:
	case <-time.After(10 * time.Second):
		t.Fatalf("bridge still running 10s after %v:\n%s", sig, p.stderr())
	}
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func curlCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(strings.ToLower(kv), "=")
		if !strings.HasSuffix(k, "_proxy") {
			env = append(env, kv)
		}
	}
	cmd := exec.CommandContext(ctx, requireTool(t, "curl"), append([]string{"-sS", "--max-time", "20"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%v: %s", err, ee.Stderr)
	}
	return string(out), err
}

// TestBridgeCommand runs `gssocks bridge -v` with its settings from a
// client file and the environment: curl through its SOCKS5 and HTTP
// proxies, a refused destination, the PAC file, one status line per
// connection, and the summary on SIGINT.
func TestBridgeCommand(t *testing.T) {
	requireTool(t, "curl")
	env, g := startClientGateway(t)
	bin := buildGssocks(t)
	body := "bridge-command-" + fmt.Sprint(time.Now().UnixNano())
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(origin.Close)
	_, oport, _ := net.SplitHostPort(origin.Listener.Addr().String())

	// The company's file names the gateway and asks integrity; the
	// user's environment asks confidentiality, which wins.
	cfgDir := t.TempDir()
	writeFile(t, filepath.Join(cfgDir, "gssocks", "client.hcl"), fmt.Sprintf(`gateway     = %q
service     = "rcmd/localhost"
level       = "integrity"
pac_domains = ["corp.example.com"]
`, g.Addr))
	e := append(clientEnv(t, env, aliceCache(t, env)), "XDG_CONFIG_HOME="+cfgDir, "GSSOCKS_LEVEL=confidentiality")
	p := startBridgeProcess(t, bin, e, "-v", "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0", "--pac", "127.0.0.1:0")
	if !strings.Contains(p.stderr(), "as alice@EXAMPLE.TEST, level confidentiality") ||
		!strings.Contains(p.stderr(), "settings from "+filepath.Join(cfgDir, "gssocks", "client.hcl")) {
		t.Fatalf("start lines:\n%s", p.stderr())
	}

	if out, err := curlCmd(t, "--fail", "--socks5-hostname", p.addr["SOCKS5"], "http://localhost:"+oport+"/"); err != nil || out != body {
		t.Fatalf("curl socks5: %q, %v", out, err)
	}
	if out, err := curlCmd(t, "--fail", "--proxy", "http://"+p.addr["HTTP"], "http://127.0.0.1:"+oport+"/"); err != nil || out != body {
		t.Fatalf("curl http proxy: %q, %v", out, err)
	}
	denied := fmt.Sprintf("127.0.0.1:%d", clientDeniedPort)
	out, err := curlCmd(t, "-w", "%{http_code}", "--proxy", "http://"+p.addr["HTTP"], "http://"+denied+"/")
	if err != nil || !strings.Contains(out, "rules do not allow") || !strings.HasSuffix(out, "403") {
		t.Fatalf("curl to a denied port: %q, %v", out, err)
	}
	pac, err := curlCmd(t, "--fail", "http://"+p.addr["PAC"]+"/proxy.pac")
	if err != nil || !strings.Contains(pac, `var bridge = "PROXY `+p.addr["HTTP"]+`; SOCKS5 `+p.addr["SOCKS5"]+`";`) ||
		!strings.Contains(pac, `var domains = ["corp.example.com"];`) {
		t.Fatalf("PAC: %v\n%s", err, pac)
	}
	g.WaitRecord(t, func(a audit.Record) bool {
		return a.Destination == "localhost:"+oport && a.Principal == "alice@EXAMPLE.TEST" && a.Level == "confidentiality"
	})

	// One line per connection: time, client, method, command,
	// destination, level, bytes, duration, result.
	line := func(method, command, dest, result string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\S+ 127\.0\.0\.1:\d+ ` + method + ` ` + command + ` ` + regexp.QuoteMeta(dest) +
			` (confidentiality|-) up=\d+ down=\d+ \d\S*s ` + result + `$`)
	}
	for _, re := range []*regexp.Regexp{
		line("socks", "connect", "localhost:"+oport, "ok"),
		line("http", "GET", "127.0.0.1:"+oport, "200 OK"),
		line("http", "GET", denied, `error: gateway refused the request: reply 0x02 .*`),
	} {
		testutil.WaitFor(t, "status line "+re.String(), func() bool { return re.MatchString(p.stderr()) })
	}
	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.stderr())
	}
	summary := regexp.MustCompile(`(?m)^gssocks bridge: stopped: 3 connections \(1 failed\), [1-9]\d* bytes up, [1-9]\d* bytes down, 0 refused$`)
	if !summary.MatchString(p.stderr()) {
		t.Fatalf("no summary line:\n%s", p.stderr())
	}
}

// TestBridgeRefusesRemote: a listen address off loopback is refused
// unless --allow-remote comes with --allow-from; the message says why.
func TestBridgeRefusesRemote(t *testing.T) {
	env := realm.Get(t)
	t.Setenv("KRB5_CONFIG", env.Realm.Krb5Conf)
	t.Setenv("KRB5CCNAME", "FILE:"+filepath.Join(t.TempDir(), "none"))
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--socks", "0.0.0.0:0", "--http", ""}, "refusing to listen on 0.0.0.0:0, which is not a loopback address: whoever reaches the bridge acts under your Kerberos identity"},
		{[]string{"--socks", "127.0.0.1:0", "--http", "[::]:0"}, "refusing to listen on [::]:0"},
		{[]string{"--socks", "127.0.0.1:0", "--pac", ":0", "--pac-domains", "example.com"}, "refusing to listen on :0"},
		{[]string{"--socks", "0.0.0.0:0", "--allow-remote"}, "--allow-remote needs --allow-from"},
		{[]string{"--socks", "127.0.0.1:0", "--allow-from", "10.0.0.0/8"}, "--allow-from needs --allow-remote"},
		{[]string{"--socks", "0.0.0.0:0", "--allow-remote", "--allow-from", "10.0.0.0/33"}, `"10.0.0.0/33" is neither a network`},
	} {
		var stderr bytes.Buffer
		code := runBridge(context.Background(), append([]string{"--gateway", "127.0.0.1:1"}, c.args...), &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d\n%s\nwant exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
