package dante_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

const (
	user     = "alice"
	password = "alice-secret"
	service  = "rcmd/localhost" // Dante's client asks for rcmd@<reverse lookup of the proxy's IP>
)

// TestClientServer proves the harness: curl under Dante's socksify fetches
// a file from a local HTTP server through Dante's sockd with GSS-API, over
// a throwaway MIT realm, at each protection level; and the combinations
// Dante refuses are refused.
func TestClientServer(t *testing.T) {
	in := dante.Require(t)
	testenv.Require(t, "krb5kdc", "kdb5_util", "kadmin.local", "kinit", "curl")
	realm := testenv.StartForTest(t, testenv.Options{})
	if err := realm.AddUser(user, password); err != nil {
		t.Fatal(err)
	}
	if err := realm.AddService(service); err != nil {
		t.Fatal(err)
	}
	keytab := filepath.Join(t.TempDir(), "sockd.keytab")
	if err := realm.ExportKeytab(keytab, service); err != nil {
		t.Fatal(err)
	}
	ccache, err := realm.Kinit(user, password)
	if err != nil {
		t.Fatal(err)
	}

	body := make([]byte, 3<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(body)
	url := startHTTP(t, body)

	for _, tc := range []struct {
		name       string
		client     string   // ClientConfig.Level
		server     []string // ServerConfig.Levels
		clientNEC  bool
		serverNEC  bool
		wantLevel  string // level in sockd's log; "" means the request must fail
		wantReason string // for failures, in sockd's log
	}{
		{name: "integrity", client: "integrity", server: []string{"integrity"}, wantLevel: "integrity"},
		{name: "confidentiality", client: "confidentiality", server: []string{"confidentiality"}, wantLevel: "confidentiality"},
		{name: "clear", client: "clear", server: []string{"clear"}, wantLevel: "clear"},
		{name: "best of both", client: "integrity confidentiality", server: []string{"integrity", "confidentiality"}, wantLevel: "confidentiality"},
		{name: "defaults", wantLevel: "confidentiality"},
		{name: "NEC both", client: "integrity", server: []string{"integrity"}, clientNEC: true, serverNEC: true, wantLevel: "integrity"},
		{name: "NEC server RFC client", client: "confidentiality", server: []string{"confidentiality"}, serverNEC: true, wantLevel: "confidentiality"},
		// Refusals: Dante's server never counter-offers, its client never
		// falls back.
		{name: "integrity asked, confidentiality only", client: "integrity", server: []string{"confidentiality"}, wantReason: "the client requests different authentication"},
		{name: "default asked, integrity only", server: []string{"integrity"}, wantReason: "the client requests different authentication"},
		{name: "clear asked, default server", client: "clear", wantReason: "the client requests different authentication"},
		{name: "NEC client RFC server", client: "integrity", server: []string{"integrity"}, clientNEC: true, wantReason: "gss_unwrap()"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			stop, err := in.StartServer(dir, dante.ServerConfig{
				Listen: addr,
				Keytab: keytab,
				Levels: tc.server,
				NEC:    tc.serverNEC,
			}, realm.Env("", ""))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := stop(); err != nil {
					t.Error(err)
				}
			})
			env, err := in.ClientEnv(dir, dante.ClientConfig{
				Proxy: addr,
				Level: tc.client,
				NEC:   tc.clientNEC,
			}, realm.Env("", "FILE:"+ccache))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := in.Command(ctx, env, "curl", "-sS", "--fail", "-o", "-", url)
			var out, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &stderr
			runErr := cmd.Run()
			if err := stop(); err != nil { // flushes sockd's log
				t.Fatal(err)
			}
			log := sockdLog(dir)

			if tc.wantLevel == "" {
				if runErr == nil || out.Len() > 0 {
					t.Fatalf("socksify curl succeeded (%v, %d bytes), want a refusal\n%s", runErr, out.Len(), log)
				}
				if !strings.Contains(log, tc.wantReason) {
					t.Fatalf("sockd's log does not say %q:\n%s", tc.wantReason, log)
				}
				t.Logf("refused: %s", strings.TrimSpace(stderr.String()))
				return
			}
			if runErr != nil {
				t.Fatalf("socksify curl: %v\nstderr: %s\n%s", runErr, stderr.String(), log)
			}
			if got := sha256.Sum256(out.Bytes()); got != want {
				t.Fatalf("body: got %d bytes sha256 %s, want %d bytes %s\n%s", out.Len(), hex.EncodeToString(got[:]), len(body), hex.EncodeToString(want[:]), log)
			}
			// The request went through sockd, authenticated at the level.
			session := "gssapi/" + tc.wantLevel + "%" + user + "@" + realm.Name
			if line := firstMatch(log, "pass(1): tcp/connect [: "+session); line == "" {
				t.Fatalf("sockd's log shows no tcp/connect session %s:\n%s", session, log)
			} else {
				t.Logf("sockd: %s", line[strings.Index(line, "pass(1)"):])
			}
		})
	}
}

// TestClientEnv checks the generated client configuration and environment
// without running Dante.
func TestClientEnv(t *testing.T) {
	in := &dante.Install{Prefix: "/nonexistent"}
	dir := t.TempDir()
	base := []string{"KRB5CCNAME=FILE:/x", "SOCKS_SERVER=1.2.3.4:1080", "http_proxy=http://p", "ALL_PROXY=socks5://p", "SOCKS_CONF=/etc/socks.conf", "HOME=/root"}
	env, err := in.ClientEnv(dir, dante.ClientConfig{Proxy: "127.0.0.1:1080", Level: "integrity", NEC: true, ServiceName: "socks"}, base)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "socks.conf")
	wantEnv := []string{"KRB5CCNAME=FILE:/x", "HOME=/root", "SOCKS_CONF=" + conf, "SOCKS_AUTOADD_LANROUTES=no", "SOCKS_DIRECTROUTE_FALLBACK=no"}
	if strings.Join(env, "\n") != strings.Join(wantEnv, "\n") {
		t.Errorf("env:\n%s\nwant:\n%s", strings.Join(env, "\n"), strings.Join(wantEnv, "\n"))
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"from: 0.0.0.0/0 to: 0.0.0.0/0 via: 127.0.0.1 port = 1080",
		"proxyprotocol: socks_v5",
		"method: gssapi",
		"gssapi.enctype: integrity",
		"gssapi.servicename: socks",
		"clientcompatibility: necgssapi",
	} {
		if !strings.Contains(string(data), "\t"+line+"\n") {
			t.Errorf("socks.conf lacks %q:\n%s", line, data)
		}
	}
	for _, bad := range []dante.ClientConfig{
		{Proxy: "127.0.0.1"},
		{Proxy: "127.0.0.1:1080", Level: "privacy"},
		{Proxy: "127.0.0.1:1080", ServiceName: "a b"},
	} {
		if _, err := in.ClientEnv(dir, bad, base); err == nil {
			t.Errorf("ClientEnv(%+v) succeeded", bad)
		}
	}
}

func startHTTP(t *testing.T, body []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/file" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/file"
}

// freeAddr returns a 127.0.0.1 address whose TCP port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func sockdLog(dir string) string {
	var b strings.Builder
	for _, name := range []string{"sockd.log", "sockd.out"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if len(data) > 0 {
			b.WriteString("--- " + name + " ---\n")
			b.Write(data)
		}
	}
	return b.String()
}

func firstMatch(log, s string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
