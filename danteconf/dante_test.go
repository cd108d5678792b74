package danteconf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// externalLine matches external: statements, which sockd -V checks it can
// bind: the documentation addresses of the examples are not on this host.
var externalLine = regexp.MustCompile(`(?m)^external:.*$`)

// TestExamplesLoadInDante: the examples marked so are sockd.conf files
// that Dante 1.4.2 itself accepts (sockd -V), so the parser is tested on
// Dante's syntax and not on a guess of it; and a broken file is refused,
// so the check can fail.
func TestExamplesLoadInDante(t *testing.T) {
	dn := dante.Require(t)
	verify := func(t *testing.T, src []byte) (string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "sockd.conf")
		if err := os.WriteFile(path, externalLine.ReplaceAll(src, []byte("external: 127.0.0.1")), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dn.Sockd, "-V", "-f", path).CombinedOutput()
		return string(out), err
	}
	for _, ex := range examples {
		if !ex.sockd {
			continue
		}
		t.Run(ex.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", ex.name+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			if out, err := verify(t, src); err != nil {
				t.Fatalf("sockd -V refuses %s.conf: %v\n%s", ex.name, err, out)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		out, err := verify(t, []byte("internal: 127.0.0.1 port = 1080\nexternal: 127.0.0.1\nsocksmethod: gssapi\nclient pass {\n from: 0/0 to: 0/0\n}\nsocks pass {\n from: 10.0.0.1 to: 0/0\n}\n"))
		if err == nil || !strings.Contains(out, "netmask") {
			t.Fatalf("sockd -V accepts an address without a netmask in a rule: %v\n%s", err, out)
		}
	})
}

// harnessConf renders the sockd.conf that testenv/dante runs for cfg (by
// running sockd with it, the harness's only way to write it) and returns
// it with the sockd that runs it.
func harnessConf(t *testing.T, dn *dante.Install, env *krbtest.Env, dir string, cfg dante.ServerConfig) (string, func() error) {
	t.Helper()
	cfg.Listen, cfg.Keytab = freeAddr(t), env.Keytab
	stop, err := dn.StartServer(dir, cfg, env.Realm.Env("", ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop() })
	src, err := os.ReadFile(filepath.Join(dir, "sockd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(src), stop
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestHarnessConfigGolden: the configuration testenv/dante runs sockd
// with, converted; its directory and port replaced so that the golden file
// is stable.
func TestHarnessConfigGolden(t *testing.T) {
	dn := dante.Require(t)
	env := realm.Get(t)
	dir := t.TempDir()
	src, _ := harnessConf(t, dn, env, dir, dante.ServerConfig{Levels: []string{"integrity", "confidentiality"}, NEC: true})
	src = strings.ReplaceAll(src, filepath.Dir(env.Keytab), "/run/realm")
	src = strings.ReplaceAll(src, dir, "/run/sockd")
	src = regexp.MustCompile(`port = \d+`).ReplaceAllString(src, "port = 1080")
	golden(t, "testenv-harness.conf", []byte(src))
	f, err := Parse([]byte(src), "sockd.conf")
	if err != nil {
		t.Fatal(err)
	}
	out, notes := ConvertWith(f, Options{ProxyHost: "localhost"})
	loadOutput(t, out)
	golden(t, "testenv-harness.hcl", out)
	golden(t, "testenv-harness.notes", renderNotes(notes))
}

// TestHarnessConfigDifferential runs Dante's socksify client against the
// harness's sockd and against gssocks configured by converting that sockd's
// sockd.conf, for the server settings the harness offers (levels, NEC),
// with clients asking each level, NEC or not. Both servers must decide
// alike: the same body through both, or a refusal from both.
func TestHarnessConfigDifferential(t *testing.T) {
	dn := dante.Require(t)
	env := realm.Get(t)
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl missing (CI=true): apt-get install curl")
		}
		t.Skip("curl missing")
	}
	body := bytes.Repeat([]byte("gssocks imports Dante\n"), 5000)
	url := httpServer(t, body)
	cc, err := env.Realm.Kinit("alice", krbtest.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		server    dante.ServerConfig
		client    string // the level the client asks
		clientNEC bool
		ok        bool // both must serve it
	}{
		{name: "integrity", server: dante.ServerConfig{Levels: []string{"integrity"}}, client: "integrity", ok: true},
		{name: "integrity asked, confidentiality only", server: dante.ServerConfig{Levels: []string{"confidentiality"}}, client: "integrity"},
		{name: "defaults", client: "confidentiality", ok: true},
		{name: "clear asked, defaults", client: "clear"},
		{name: "clear", server: dante.ServerConfig{Levels: []string{"clear"}}, client: "clear", ok: true},
		{name: "NEC both", server: dante.ServerConfig{Levels: []string{"integrity", "confidentiality"}, NEC: true}, client: "integrity", clientNEC: true, ok: true},
		{name: "NEC server, RFC client", server: dante.ServerConfig{NEC: true}, client: "confidentiality", ok: true},
		{name: "NEC client, RFC server", server: dante.ServerConfig{Levels: []string{"integrity"}}, client: "integrity", clientNEC: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, stop := harnessConf(t, dn, env, dir, tc.server)
			sockdAddr := regexp.MustCompile(`internal: (\S+) port = (\d+)`).FindStringSubmatch(src)
			gw := gatewayFor(t, env, src)

			fetch := func(proxy string) ([]byte, error) {
				cdir := t.TempDir()
				cenv, err := dn.ClientEnv(cdir, dante.ClientConfig{Proxy: proxy, Level: tc.client, NEC: tc.clientNEC}, env.Realm.Env("", "FILE:"+cc))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var out, stderr bytes.Buffer
				cmd := dn.Command(ctx, cenv, "curl", "-sS", "--fail", "--max-time", "30", "-o", "-", url)
				cmd.Stdout, cmd.Stderr = &out, &stderr
				if err := cmd.Run(); err != nil {
					return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
				}
				return out.Bytes(), nil
			}
			viaDante, danteErr := fetch(net.JoinHostPort(sockdAddr[1], sockdAddr[2]))
			stop()
			viaGssocks, gssocksErr := fetch(gw)
			for _, r := range []struct {
				who  string
				body []byte
				err  error
			}{{"Dante", viaDante, danteErr}, {"gssocks", viaGssocks, gssocksErr}} {
				switch {
				case tc.ok && r.err != nil:
					t.Errorf("%s refused: %v", r.who, r.err)
				case tc.ok && sha256.Sum256(r.body) != sha256.Sum256(body):
					t.Errorf("%s: body of %d bytes differs", r.who, len(r.body))
				case !tc.ok && r.err == nil:
					t.Errorf("%s served a client Dante's configuration refuses", r.who)
				case !tc.ok:
					t.Logf("%s refused: %v", r.who, r.err)
				}
			}
		})
	}
}

// gatewayFor runs gssocks on 127.0.0.1:0 with src converted, as
// "gssocks serve" would: the keytab and principals it names, its rules and
// timeouts. gateway_local is turned off, as an operator who wants Dante's
// to: 0/0 to reach this host's loopback services must (the tests talk to
// loopback only).
func gatewayFor(t *testing.T, env *krbtest.Env, src string) string {
	t.Helper()
	f, err := Parse([]byte(src), "sockd.conf")
	if err != nil {
		t.Fatal(err)
	}
	out, notes := ConvertWith(f, Options{ProxyHost: "localhost"})
	out = append(out, "\ngateway_local {\n  deny = false\n}\n"...)
	cfg, files, diags := config.Loader{Getenv: func(string) string { return "" }}.Parse(out, filepath.Join(t.TempDir(), "gssocks.hcl"))
	if diags.HasErrors() {
		var b strings.Builder
		config.FormatDiagnostics(&b, files, diags)
		t.Fatalf("converted configuration:\n%s\n%s\nnotes:\n%s", out, b.String(), renderNotes(notes))
	}
	if cfg.Kerberos.Keytab != env.Keytab {
		t.Fatalf("keytab %q, want the harness's %q", cfg.Kerberos.Keytab, env.Keytab)
	}
	// Served as `gssocks serve` serves it: through package gateway.
	return testutil.StartGateway(t, string(out)).Addr
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func httpServer(t *testing.T, body []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, bytes.NewReader(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}
