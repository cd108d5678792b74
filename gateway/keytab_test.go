package gateway_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// TestDamagedKeytabNeverShowsKeys pins that every keytab load of the
// serve path is gssapi.LoadKeytab: a keytab cut inside a key (what
// gokrb5's own decoder answers with an error quoting the key) is refused
// by the configuration check, by Provision and New (without that check),
// and by the rotation watcher, each with a reason naming the entry and
// none showing key bytes; the watcher keeps the previous keys.
func TestDamagedKeytabNeverShowsKeys(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	good := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	damaged := filepath.Join(dir, "damaged.keytab")
	keys := testutil.DamagedKeytab(t, good, damaged)
	// The test can fail: unguarded, this file leaks a key.
	raw, _ := os.ReadFile(damaged)
	if err := keytab.New().Unmarshal(raw); err == nil || !testutil.KeyLeaks(err.Error(), keys) {
		t.Fatalf("gokrb5's error on the damaged keytab (%v) is not seen to leak a key", err)
	}

	path := filepath.Join(dir, "gssocks.hcl")
	writeFile(t, path, "listen = [\"127.0.0.1:1080\"]\n"+conf(damaged, "1", ""))
	_, _, diags := config.Loader{}.Load(path)
	if !diags.HasErrors() {
		t.Fatalf("configuration accepted a damaged keytab: %v", diags)
	}
	if d := diags.Error(); !strings.Contains(d, "Invalid keytab") || !strings.Contains(d, "entry") || testutil.KeyLeaks(d, keys) {
		t.Fatalf("configuration diagnostic: %s", d)
	}

	cfg := load(t, path, config.Loader{SkipKeytabCheck: true})
	_, perr := gateway.Provision(cfg, gateway.Options{})
	_, nerr := gateway.New(cfg, gateway.Options{Stderr: io.Discard, Listen: func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }})
	for _, err := range []error{perr, nerr} {
		var ke *gssapi.KeytabError
		if !errors.Is(err, gateway.ErrKeytab) || !errors.Is(err, gssapi.ErrBadKeytab) || !errors.As(err, &ke) || ke.Entry == 0 {
			t.Fatalf("error %v, want ErrKeytab wrapping a KeytabError naming the entry", err)
		}
		if testutil.KeyLeaks(err.Error(), keys) {
			t.Fatalf("error shows key bytes: %q", err)
		}
	}

	dest, port := echo(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	g := testutil.StartGateway(t, conf(kt, port, ""), func(o *gateway.Options) { o.KeytabPoll = 20 * time.Millisecond })
	if err := os.Rename(damaged, kt); err != nil {
		t.Fatal(err)
	}
	const msg = "keytab changed but cannot be used; keeping the previous keys"
	testutil.WaitFor(t, "the refusal", func() bool { return strings.Contains(g.Log.String(), msg) })
	if log := g.Log.String(); testutil.KeyLeaks(log, keys) || !strings.Contains(log, "entry") {
		t.Fatalf("watcher log:\n%s", log)
	}
	if err := session(t, env, g.Addr, dest); err != nil {
		t.Fatalf("previous keys: %v", err)
	}
}

// TestProvisionFillsEverySetting pins the one builder of server.Settings:
// every field is filled from the configuration by Provision, so that no
// copy can leave one out (a hand-built copy in the tests once omitted
// NoAuth). A field added to server.Settings fails here until provision
// fills it or it is listed below with the reason it stays zero.
func TestProvisionFillsEverySetting(t *testing.T) {
	env := realm.Get(t)
	path := filepath.Join(t.TempDir(), "gssocks.hcl")
	writeFile(t, path, "listen = [\"127.0.0.1:1080\"]\n"+conf(testutil.CopyKeytab(t, env.Keytab, "", 0o600), "1",
		"no_auth {\n  sources = [\"10.9.0.0/16\"]\n  socks4 = true\n}\npassword_auth {\n  sources = [\"10.8.0.0/16\"]\n  krb5_conf = \""+env.Realm.Krb5Conf+"\"\n}\nlimits {\n  max_sessions = 7\n}\nudp {\n  advertise = \"203.0.113.10\"\n}\ntimeouts {\n  negotiation = \"3s\"\n  connect = \"4s\"\n  idle = \"5s\"\n  bind = \"6s\"\n}\n"))
	cfg := load(t, path, config.Loader{})
	rt, err := gateway.Provision(cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	zeroByDesign := map[string]string{
		"Logger":       "the gateway's logger follows reloads itself (Options.Logger), so Settings.Logger stays nil",
		"HTTPAcceptor": "nil without http_listen (this keytab has no HTTP/ key); TestHTTPProxyProvision pins that provision fills it",
	}
	st := reflect.ValueOf(rt.Settings)
	for i := range st.NumField() {
		name := st.Type().Field(i).Name
		if _, ok := zeroByDesign[name]; ok {
			continue
		}
		if st.Field(i).IsZero() {
			t.Errorf("Provision leaves server.Settings.%s zero", name)
		}
	}
	s := rt.Settings
	if s.UDPAdvertise != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("UDPAdvertise %v", s.UDPAdvertise)
	}
	if s.MaxSessions != 7 || !reflect.DeepEqual(s.NoAuth, cfg.NoAuth) || s.Policy != cfg.Engine ||
		s.Timeouts.Negotiation != 3*time.Second || s.Timeouts.Connect != 4*time.Second || s.Timeouts.Idle != 5*time.Second || s.Timeouts.Bind != 6*time.Second {
		t.Fatalf("settings %+v from %+v", s, cfg)
	}
	if !s.NoAuth.Contains(netip.MustParseAddr("10.9.1.2")) {
		t.Fatal("no_auth sources lost")
	}
	if p := s.Password; !p.Sources.Contains(netip.MustParseAddr("10.8.1.2")) || p.Verifier.Service().String() != "rcmd/localhost@EXAMPLE.TEST" ||
		p.Verifier.Krb5Conf() != env.Realm.Krb5Conf || p.MaxConcurrent != config.DefaultPasswordMaxConcurrent {
		t.Fatalf("password_auth: %+v", p)
	}
}

// TestReplayCacheSurvivesReload: the gateway builds one replay cache and
// every acceptor a reload provisions shares it, so an AP-REQ accepted
// before a reload is a replay after it (a fresh cache per reload would
// reopen the replay window on every SIGHUP).
func TestReplayCacheSurvivesReload(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	g := testutil.StartGateway(t, conf(kt, "1", ""))
	_, tok := env.Initiator(t, "alice", "rcmd/localhost", "")
	before := g.Server().Settings().Acceptor
	if _, _, err := before.Accept(tok, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	src, _ := os.ReadFile(g.Path)
	writeFile(t, g.Path, strings.Replace(string(src), "keytab = ", "clock_skew = \"4m\"\n  keytab = ", 1))
	if err := g.Hangup(); err != nil {
		t.Fatal(err)
	}
	after := g.Server().Settings().Acceptor
	if after == before {
		t.Fatal("the reload did not provision a new acceptor")
	}
	if _, _, err := after.Accept(tok, netip.Addr{}); !errors.Is(err, gssapi.ErrReplay) {
		t.Fatalf("the AP-REQ again after the reload: %v, want ErrReplay", err)
	}
}
