package gateway_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
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
