package gateway_test

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
)

// httpKeytab adds HTTP/localhost to the shared realm (once per realm)
// and exports it with the SOCKS principals into a keytab of the test's.
func httpKeytab(t *testing.T, env *krbtest.Env) string {
	t.Helper()
	if err := env.Realm.AddService("HTTP/localhost"); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "http.keytab")
	if err := env.Realm.ExportKeytab(kt, append([]string{"HTTP/localhost"}, krbtest.Services...)...); err != nil {
		t.Fatal(err)
	}
	return kt
}

// TestHTTPProxyProvision: with http_listen, provision builds the HTTP
// acceptor on the keytab's HTTP/ principals, sharing the replay store
// with the SOCKS acceptor (a token accepted by one is a replay for the
// other's code path, and the other way round); without an HTTP/ key it
// refuses with ErrKeytab even when the file check was skipped.
func TestHTTPProxyProvision(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gssocks.hcl")
	writeFile(t, path, "listen = [\"127.0.0.1:1080\"]\nhttp_listen = [\"127.0.0.1:3128\"]\n"+conf(httpKeytab(t, env), "1", ""))
	cfg := load(t, path, config.Loader{})
	rt, err := gateway.Provision(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acc := rt.Settings.HTTPAcceptor
	if acc == nil || acc == rt.Settings.Acceptor {
		t.Fatalf("HTTP acceptor %p, SOCKS acceptor %p", acc, rt.Settings.Acceptor)
	}
	if !acc.Accepts(gssapi.Principal{Name: "HTTP/localhost", Realm: "EXAMPLE.TEST"}) || acc.Accepts(gssapi.Principal{Name: "rcmd/localhost", Realm: "EXAMPLE.TEST"}) {
		t.Fatal("the HTTP acceptor is not for HTTP/ principals only")
	}
	_, tok := env.Initiator(t, "alice", "HTTP/localhost", "")
	if _, _, err := acc.Accept(tok, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := acc.Accept(tok, netip.Addr{}); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("the same token again: %v, want ErrReplay", err)
	}

	// The SOCKS keytab alone, loaded without the file check: Provision
	// still refuses.
	writeFile(t, path, "listen = [\"127.0.0.1:1080\"]\nhttp_listen = [\"127.0.0.1:3128\"]\n"+conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), "1", ""))
	cfg = load(t, path, config.Loader{SkipKeytabCheck: true})
	if _, err := gateway.Provision(cfg, gateway.Options{}); !errors.Is(err, gateway.ErrKeytab) || !strings.Contains(err.Error(), "HTTP/") {
		t.Fatalf("Provision without an HTTP/ key: %v", err)
	}
	// And the file check refuses it first, at http_listen (among the
	// warnings about the rules).
	_, _, diags := (config.Loader{}).Load(path)
	found := false
	for _, d := range diags {
		found = found || d.Summary == "No HTTP service key"
	}
	if !diags.HasErrors() || !found {
		t.Fatalf("check: %v", diags)
	}
}

// TestHTTPProxyReload: http_listen added by a reload is bound and
// served; removed, its listener is closed while the SOCKS one stays.
func TestHTTPProxyReload(t *testing.T) {
	env := realm.Get(t)
	kt := httpKeytab(t, env)
	g := testutil.StartGateway(t, conf(kt, "1", ""))
	if a := g.HTTPAddrs(); len(a) != 0 {
		t.Fatalf("HTTP listeners before: %v", a)
	}
	writeFile(t, g.Path, "listen = [\"127.0.0.1:1080\"]\nhttp_listen = [\"127.0.0.1:3128\"]\n"+conf(kt, "1", ""))
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	addrs := g.HTTPAddrs()
	if len(addrs) != 1 || g.Server().Settings().HTTPAcceptor == nil {
		t.Fatalf("HTTP listeners after the reload: %v", addrs)
	}
	c, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n"))
	buf := make([]byte, 12)
	if _, err := c.Read(buf); err != nil || string(buf) != "HTTP/1.1 407" {
		t.Fatalf("the new HTTP listener answered %q, %v", buf, err)
	}
	c.Close()
	writeFile(t, g.Path, "listen = [\"127.0.0.1:1080\"]\n"+conf(kt, "1", ""))
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	if a := g.HTTPAddrs(); len(a) != 0 {
		t.Fatalf("HTTP listeners after removal: %v", a)
	}
	if _, err := net.Dial("tcp", addrs[0]); err == nil {
		t.Fatal("the removed HTTP listener still accepts")
	}
	if len(g.Addrs()) != 1 {
		t.Fatalf("SOCKS listeners %v", g.Addrs())
	}
}

// TestHTTPProxyKeytabReadiness: with http_listen, gssocks_keytab_kvnos
// lists the HTTP proxy's keys too (kerberos.principals names only the
// SOCKS one here), and /readyz turns 503 when a rotated keytab keeps the
// SOCKS keys but loses the HTTP/ ones, every Negotiate client then
// answered 407.
func TestHTTPProxyKeytabReadiness(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	kt := filepath.Join(dir, "gssocks.keytab")
	if err := os.Rename(httpKeytab(t, env), kt); err != nil {
		t.Fatal(err)
	}
	src := "listen = [\"127.0.0.1:1080\"]\nhttp_listen = [\"127.0.0.1:3128\"]\n" + conf(kt, "1", metricsBlock)
	src = strings.Replace(src, "keytab = ", "principals = [\"rcmd/localhost\"]\n  keytab = ", 1)
	g := testutil.StartGateway(t, src, func(o *gateway.Options) { o.KeytabPoll = -1 })
	maddr := g.MetricsAddr()
	fams := scrape(t, maddr)
	wantValue(t, fams, 1, "gssocks_keytab_kvnos", "principal", "rcmd/localhost@EXAMPLE.TEST")
	wantValue(t, fams, 1, "gssocks_keytab_kvnos", "principal", "HTTP/localhost@EXAMPLE.TEST")
	if code, body := get(t, "http://"+maddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with both keys: %d %q", code, body)
	}

	// The SOCKS keys alone, renamed over the keytab (a new inode).
	if err := os.Rename(testutil.CopyKeytab(t, env.Keytab, "", 0o600), kt); err != nil {
		t.Fatal(err)
	}
	g.CheckKeytab()
	code, body := get(t, "http://"+maddr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "HTTP/") {
		t.Fatalf("/readyz without the HTTP/ key: %d %q, want 503 naming it", code, body)
	}
	fams = scrape(t, maddr)
	wantValue(t, fams, 1, "gssocks_keytab_kvnos", "principal", "rcmd/localhost@EXAMPLE.TEST")
	for _, m := range fams["gssocks_keytab_kvnos"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetValue() == "HTTP/localhost@EXAMPLE.TEST" {
				t.Fatal("the HTTP/ key still listed after it left the keytab")
			}
		}
	}
}
