package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The MIT names klist uses for the enctypes of the realm.
var aesEnctypes = []string{
	"aes256-cts-hmac-sha1-96",
	"aes128-cts-hmac-sha1-96",
	"aes256-cts-hmac-sha384-192",
	"aes128-cts-hmac-sha256-128",
}

func run(t *testing.T, r *Realm, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := r.Run(ctx, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// principalKeys returns the enctypes of the principal's keys in the
// database, by kvno ("Key: vno 2, aes256-cts-hmac-sha1-96" lines of getprinc).
func principalKeys(t *testing.T, r *Realm, principal string) map[int][]string {
	t.Helper()
	out := run(t, r, nil, "kadmin.local", "-r", r.Name, "-q", "getprinc "+principal)
	keys := map[int][]string{}
	for _, m := range regexp.MustCompile(`(?m)^Key: vno (\d+), (\S+)$`).FindAllStringSubmatch(out, -1) {
		kvno, _ := strconv.Atoi(m[1])
		keys[kvno] = append(keys[kvno], strings.TrimPrefix(m[2], "DEPRECATED:"))
	}
	if len(keys) == 0 {
		t.Fatalf("getprinc %s: no keys in\n%s", principal, out)
	}
	return keys
}

// keytabKeys returns the enctypes by kvno of the principal's entries in
// the keytab (klist -ek).
func keytabKeys(t *testing.T, r *Realm, keytab, principal string) map[int][]string {
	t.Helper()
	out := run(t, r, nil, "klist", "-ek", keytab)
	re := regexp.MustCompile(`(?m)^\s*(\d+) ` + regexp.QuoteMeta(principal+"@"+r.Name) + ` \((\S+)\)\s*$`)
	keys := map[int][]string{}
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		kvno, _ := strconv.Atoi(m[1])
		keys[kvno] = append(keys[kvno], strings.TrimPrefix(m[2], "DEPRECATED:"))
	}
	return keys
}

// sessionKeyEnctype returns the session-key enctype of the ticket for
// service in ccache, from the "Etype (skey, tkt): A, B" line of klist -e.
func sessionKeyEnctype(t *testing.T, r *Realm, ccache, service string) string {
	t.Helper()
	out := run(t, r, r.Env("", ccache), "klist", "-e", ccache)
	re := regexp.MustCompile(regexp.QuoteMeta(service+"@"+r.Name) + `\n.*Etype \(skey, tkt\): ([^,\s]+),`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ticket for %s in klist -e output:\n%s", service, out)
	}
	return strings.TrimPrefix(m[1], "DEPRECATED:")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestRealm(t *testing.T) {
	t.Parallel()
	Require(t, "kvno", "klist")
	r := StartForTest(t, Options{})

	if r.Name != "EXAMPLE.TEST" {
		t.Errorf("Name = %q, want EXAMPLE.TEST", r.Name)
	}
	if host, _, err := net.SplitHostPort(r.KDCAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("KDCAddr = %q, want 127.0.0.1:PORT", r.KDCAddr)
	}
	for _, p := range []string{r.Krb5Conf, r.kdcConf, filepath.Join(r.Dir, "principal"), filepath.Join(r.Dir, "stash"), filepath.Join(r.Dir, "kadm5.acl")} {
		if !strings.HasPrefix(p, r.Dir+string(filepath.Separator)) {
			t.Errorf("%s is outside the realm dir %s", p, r.Dir)
		}
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	conf, err := os.ReadFile(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kdc = " + r.KDCAddr, "udp_preference_limit = 1", "dns_canonicalize_hostname = false", "localhost = EXAMPLE.TEST"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("krb5.conf lacks %q:\n%s", want, conf)
		}
	}
	if bytes.Contains(conf, []byte("allow_rc4")) {
		t.Errorf("krb5.conf allows RC4 without Options.AllowRC4:\n%s", conf)
	}

	if err := r.AddUser("alice", "alice pass"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if got := principalKeys(t, r, "rcmd/localhost"); !slices.Equal(sorted(got[1]), sorted(aesEnctypes)) || len(got) != 1 {
		t.Errorf("rcmd/localhost keys = %v, want kvno 1: %v", got, aesEnctypes)
	}
	keytab := filepath.Join(t.TempDir(), "rcmd.keytab")
	if err := r.ExportKeytab(keytab, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if got := keytabKeys(t, r, keytab, "rcmd/localhost"); !slices.Equal(sorted(got[1]), sorted(aesEnctypes)) || len(got) != 1 {
		t.Errorf("keytab keys = %v, want kvno 1: %v", got, aesEnctypes)
	}

	ccache, err := r.Kinit("alice", "alice pass")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ccache, r.Dir) {
		t.Errorf("ccache %s outside %s", ccache, r.Dir)
	}
	// kvno -k decrypts the service ticket with the exported keytab.
	out := run(t, r, r.Env("", ccache), "kvno", "-k", keytab, "rcmd/localhost")
	if !strings.Contains(out, "kvno = 1") || !strings.Contains(out, "keytab entry valid") {
		t.Errorf("kvno output:\n%s", out)
	}
	// Host-based names are not canonicalised: "localhost" stays localhost.
	out = run(t, r, r.Env("", ccache), "kvno", "-S", "rcmd", "localhost")
	if !strings.Contains(out, "rcmd/localhost@EXAMPLE.TEST: kvno = 1") {
		t.Errorf("kvno -S rcmd localhost:\n%s", out)
	}

	if _, err := r.Kinit("alice", "wrong"); err == nil {
		t.Error("Kinit with a wrong password succeeded")
	}
	if err := r.AddUser("alice", "again"); err == nil {
		t.Error("adding alice twice succeeded")
	}
	if err := r.RotateKey("nosuch"); err == nil {
		t.Error("RotateKey of a missing principal succeeded")
	}
	if err := r.ExportKeytab(keytab, "nosuch/localhost"); err == nil {
		t.Error("ExportKeytab of a missing principal succeeded")
	}
}

func TestSessionKeyEnctypes(t *testing.T) {
	t.Parallel()
	Require(t, "kvno", "klist")
	for _, rc4 := range []bool{false, true} {
		r := StartForTest(t, Options{AllowRC4: rc4})
		if err := r.AddUser("alice", "secret"); err != nil {
			t.Fatal(err)
		}
		if err := r.AddService("rcmd/localhost"); err != nil {
			t.Fatal(err)
		}
		tests := []struct{ request, want string }{
			{"aes128-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96"},
			{"aes256-cts-hmac-sha1-96", "aes256-cts-hmac-sha1-96"},
			{"aes128-cts-hmac-sha256-128", "aes128-cts-hmac-sha256-128"},
			{"aes256-cts-hmac-sha384-192", "aes256-cts-hmac-sha384-192"},
		}
		if rc4 {
			tests = append(tests, struct{ request, want string }{"rc4-hmac", "arcfour-hmac"})
		}
		for _, tt := range tests {
			t.Run(tt.request+"/rc4="+strconv.FormatBool(rc4), func(t *testing.T) {
				ccache, err := r.Kinit("alice", "secret", tt.request)
				if err != nil {
					t.Fatal(err)
				}
				conf, err := r.ClientConfig(tt.request)
				if err != nil {
					t.Fatal(err)
				}
				run(t, r, r.Env(conf, ccache), "kvno", "rcmd/localhost")
				if got := sessionKeyEnctype(t, r, ccache, "rcmd/localhost"); got != tt.want {
					t.Errorf("session key enctype = %s, want %s", got, tt.want)
				}
			})
		}
		if !rc4 {
			t.Run("rc4-hmac/rc4=false", func(t *testing.T) {
				if _, err := r.Kinit("alice", "secret", "rc4-hmac"); err == nil {
					t.Error("got an RC4 TGT from a realm without AllowRC4")
				}
			})
		}
	}
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	r := StartForTest(t, Options{AllowRC4: true})
	a, err := r.ClientConfig("aes128-cts-hmac-sha256-128", "rc4-hmac")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.ClientConfig("aes128-cts-hmac-sha256-128", "rc4-hmac")
	if err != nil || a != b {
		t.Errorf("second ClientConfig = %q, %v; want %q", b, err, a)
	}
	conf, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"default_tkt_enctypes = aes128-cts-hmac-sha256-128 rc4-hmac",
		"default_tgs_enctypes = aes128-cts-hmac-sha256-128 rc4-hmac",
		"permitted_enctypes = aes128-cts-hmac-sha256-128 rc4-hmac",
		"allow_rc4 = true",
		"kdc = " + r.KDCAddr,
	} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("client config lacks %q:\n%s", want, conf)
		}
	}
	if p, err := r.ClientConfig(); p != r.Krb5Conf || err != nil {
		t.Errorf("ClientConfig() = %q, %v; want %q", p, err, r.Krb5Conf)
	}
	if _, err := r.ClientConfig("aes128 des"); err == nil {
		t.Error("ClientConfig accepted a bad enctype name")
	}
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	Require(t, "kvno", "klist")
	r := StartForTest(t, Options{})
	if err := r.AddUser("alice", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddService("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if err := r.RotateKey("rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	keys := principalKeys(t, r, "rcmd/localhost")
	if len(keys) != 2 || !slices.Equal(sorted(keys[1]), sorted(aesEnctypes)) || !slices.Equal(sorted(keys[2]), sorted(aesEnctypes)) {
		t.Errorf("keys after RotateKey = %v, want kvno 1 and 2 with %v", keys, aesEnctypes)
	}
	keytab := filepath.Join(r.Dir, "rcmd.keytab")
	if err := r.ExportKeytab(keytab, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	if got := keytabKeys(t, r, keytab, "rcmd/localhost"); len(got) != 2 || len(got[1]) != len(aesEnctypes) || len(got[2]) != len(aesEnctypes) {
		t.Errorf("keytab after RotateKey = %v, want kvno 1 and 2", got)
	}
	ccache, err := r.Kinit("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, r, r.Env("", ccache), "kvno", "-k", keytab, "rcmd/localhost")
	if !strings.Contains(out, "kvno = 2") || !strings.Contains(out, "keytab entry valid") {
		t.Errorf("kvno after RotateKey:\n%s", out)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	Require(t)
	r, err := Start(Options{Realm: "CLOSE.TEST"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "CLOSE.TEST" {
		t.Errorf("Name = %q", r.Name)
	}
	pid := r.kdc.cmd.Process.Pid
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("KDC pid %d not running before Close: %v", pid, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("KDC pid %d after Close: kill -0 = %v, want ESRCH", pid, err)
	}
	if _, err := os.Stat(r.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("realm dir after Close: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", r.KDCAddr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Close", r.KDCAddr)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestKDCPortShared: krb5kdc sets SO_REUSEPORT, so a KDC given the port
// of another realm's running KDC binds it without error and the kernel
// splits the clients between the two. startKDC refuses such a KDC (stops
// it, errKDCPortShared, for Start to try another port), and the realm
// that had the port keeps it alone.
func TestKDCPortShared(t *testing.T) {
	t.Parallel()
	Require(t)
	a := StartForTest(t, Options{Realm: "PORTA.TEST"})
	b := StartForTest(t, Options{Realm: "PORTB.TEST"})
	_, ps, err := net.SplitHostPort(a.KDCAddr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	own := b.KDCAddr
	b.KDCAddr = a.KDCAddr
	if err := b.writeConfigs(); err != nil {
		t.Fatal(err)
	}
	k, err := b.startKDC(port)
	b.KDCAddr = own
	if err := b.writeConfigs(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, errKDCPortShared) {
		if k != nil {
			k.stop()
		}
		t.Fatalf("second KDC on %s: %v, want errKDCPortShared", a.KDCAddr, err)
	}
	if tcp, udp, known, err := loopbackListeners(port); err != nil || (known && (tcp != 1 || udp != 1)) {
		t.Fatalf("after the refusal, 127.0.0.1:%d has %d TCP listeners, %d UDP receivers (%v), want 1 and 1", port, tcp, udp, err)
	}
	// Both realms still answer, each on its own port, with its own
	// database.
	for _, r := range []*Realm{a, b} {
		if err := r.AddUser("carol", "carol-password-1"); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if _, err := r.Kinit("carol", "carol-password-1"); err != nil {
				t.Fatalf("%s: %v", r.Name, err)
			}
		}
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("KRB5_CONFIG", "/etc/krb5.conf")
	t.Setenv("KRB5CCNAME", "FILE:/tmp/not-ours")
	r := &Realm{Dir: "/r", Krb5Conf: "/r/krb5.conf", kdcConf: "/r/kdc.conf"}
	lookup := func(env []string, key string) []string {
		var vals []string
		for _, kv := range env {
			if k, v, _ := strings.Cut(kv, "="); k == key {
				vals = append(vals, v)
			}
		}
		return vals
	}
	env := r.Env("", "/r/cc")
	for key, want := range map[string]string{"KRB5_CONFIG": "/r/krb5.conf", "KRB5_KDC_PROFILE": "/r/kdc.conf", "KRB5CCNAME": "/r/cc", "KRB5RCACHEDIR": "/r"} {
		if got := lookup(env, key); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", key, got, want)
		}
	}
	env = r.Env("/r/other.conf", "")
	if got := lookup(env, "KRB5_CONFIG"); len(got) != 1 || got[0] != "/r/other.conf" {
		t.Errorf("KRB5_CONFIG = %q", got)
	}
	if got := lookup(env, "KRB5CCNAME"); len(got) != 1 || got[0] != "FILE:/tmp/not-ours" {
		t.Errorf("KRB5CCNAME without ccache = %q, want the inherited value", got)
	}
}

func TestToolsMissing(t *testing.T) {
	err := lookTools("krb5kdc", "no-such-krb5-tool")
	if !errors.Is(err, ErrToolsMissing) {
		t.Fatalf("lookTools = %v, want ErrToolsMissing", err)
	}
	for _, want := range []string{"no-such-krb5-tool", "apt-get install krb5-kdc krb5-admin-server krb5-user libkrb5-dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "krb5kdc,") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line naming only the missing tool", err)
	}
}

func TestDockerFilesUpToDate(t *testing.T) {
	files, err := DockerFiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("docker", filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testenv/docker/%s is out of date (%v): run go run ./testenv/cmd/gendocker", name, err)
		}
	}
}
