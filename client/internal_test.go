package client

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

const testConf = `[libdefaults]
    default_realm = EXAMPLE.TEST
    %s

[realms]
    EXAMPLE.TEST = {
        kdc = 127.0.0.1:88
    }

[domain_realm]
    .other.test = OTHER.TEST
`

func conf(t testing.TB, libdefaults string) *krb5Conf {
	t.Helper()
	k, err := parseKrb5Conf("test.conf", strings.Replace(testConf, "%s", libdefaults, 1))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestServicePrincipals pins the default principal and MIT's host
// canonicalisation as krb5.conf steers it; /etc/hosts maps 127.0.0.1 to
// localhost on every machine the tests run on.
func TestServicePrincipals(t *testing.T) {
	if names, err := net.DefaultResolver.LookupAddr(context.Background(), "127.0.0.1"); err != nil || len(names) == 0 || strings.TrimSuffix(names[0], ".") != "localhost" {
		t.Skipf("127.0.0.1 does not reverse-resolve to localhost here: %v %v", names, err)
	}
	for _, tc := range []struct {
		libdefaults, spec, host string
		want                    []string
	}{
		{"", "", "127.0.0.1", []string{"rcmd/localhost"}},
		{"", "socks", "127.0.0.1", []string{"socks/localhost"}},
		{"", "socks@127.0.0.1", "gw.invalid", []string{"socks/localhost"}},
		{"", "", "LocalHost", []string{"rcmd/localhost"}},
		{"", "rcmd/gw.example.test", "127.0.0.1", []string{"rcmd/gw.example.test"}},
		{"", "rcmd/gw.example.test@OTHER.TEST", "127.0.0.1", []string{"rcmd/gw.example.test@OTHER.TEST"}},
		{"rdns = false", "", "127.0.0.1", []string{"rcmd/127.0.0.1"}},
		{"rdns = false", "", "localhost", []string{"rcmd/localhost"}},
		{"dns_canonicalize_hostname = false", "", "127.0.0.1", []string{"rcmd/127.0.0.1"}},
		{"dns_canonicalize_hostname = fallback", "", "127.0.0.1", []string{"rcmd/127.0.0.1", "rcmd/localhost"}},
		{"dns_canonicalize_hostname = true", "", "127.0.0.1", []string{"rcmd/localhost"}},
	} {
		got, err := servicePrincipals(context.Background(), tc.spec, tc.host, conf(t, tc.libdefaults), net.DefaultResolver)
		if err != nil {
			t.Fatalf("%q %q %q: %v", tc.libdefaults, tc.spec, tc.host, err)
		}
		var names []string
		for _, p := range got {
			names = append(names, p.String())
		}
		if strings.Join(names, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q, spec %q, host %q: got %v, want %v", tc.libdefaults, tc.spec, tc.host, names, tc.want)
		}
	}
	for _, bad := range []string{"rcmd//x", "@host", "svc@"} {
		if _, err := servicePrincipals(context.Background(), bad, "h", conf(t, ""), net.DefaultResolver); err == nil {
			t.Errorf("spec %q accepted", bad)
		}
	}
	p := servicePrincipal{name: types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: []string{"rcmd", "gw.other.test"}}}
	if r := p.realmOf(conf(t, ""), "EXAMPLE.TEST"); r != "OTHER.TEST" {
		t.Errorf("[domain_realm] realm %q", r)
	}
}

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		opts   Options
		want   encap.Level
		accept string
		err    string
	}{
		{Options{}, encap.LevelConfidentiality, "confidentiality", ""},
		{Options{Level: encap.LevelIntegrity}, encap.LevelIntegrity, "integrity confidentiality", ""},
		{Options{MinLevel: encap.LevelIntegrity}, encap.LevelConfidentiality, "integrity confidentiality", ""},
		{Options{AcceptClear: true}, encap.LevelConfidentiality, "clear integrity confidentiality", ""},
		{Options{AskClear: true}, encap.LevelClear, "clear integrity confidentiality", ""},
		{Options{Level: encap.LevelIntegrity, MinLevel: encap.LevelConfidentiality}, 0, "", "MinLevel confidentiality is above Level integrity"},
		{Options{Level: encap.LevelSelective}, 0, "", "selective is not supported"},
	} {
		want, accept, err := levels(tc.opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || want != tc.want || levelsString(accept) != tc.accept {
			t.Errorf("%+v: %s %v %v, want %s %s", tc.opts, want, accept, err, tc.want, tc.accept)
		}
	}
}

func levelsString(ls []encap.Level) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, " ")
}

func TestKrb5Conf(t *testing.T) {
	k := conf(t, "dns_canonicalize_hostname = fallback\n    default_ccache_name = FILE:/tmp/krb5cc_%{uid}_x\n    rdns = false")
	if k.canon != "fallback" || k.cfg.LibDefaults.RDNS || k.cfg.LibDefaults.DefaultRealm != "EXAMPLE.TEST" {
		t.Fatalf("parsed %q rdns=%t realm %q", k.canon, k.cfg.LibDefaults.RDNS, k.cfg.LibDefaults.DefaultRealm)
	}
	if got := expandCCacheName(k.defaultCCache); !strings.HasPrefix(got, "FILE:/tmp/krb5cc_") || strings.Contains(got, "%") {
		t.Fatalf("default_ccache_name expands to %q", got)
	}
	// include lines are not followed, and do not break the parse.
	k, err := parseKrb5Conf("x", "includedir /etc/krb5.conf.d/\n"+strings.Replace(testConf, "%s", "", 1))
	if err != nil || k.cfg.LibDefaults.DefaultRealm != "EXAMPLE.TEST" {
		t.Fatalf("with includedir: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "krb5.conf")
	os.WriteFile(path, []byte(strings.Replace(testConf, "%s", "", 1)), 0o644)
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "KRB5_CONFIG" {
				return v
			}
			return ""
		}
	}
	if k, err := loadKrb5Conf("", env(filepath.Join(dir, "none")+":"+path)); err != nil || k.path != path {
		t.Fatalf("KRB5_CONFIG list: %v", err)
	}
	if _, err := loadKrb5Conf("", env(filepath.Join(dir, "none"))); err == nil || !strings.Contains(err.Error(), "set Options.Krb5Conf or KRB5_CONFIG") {
		t.Fatalf("no krb5.conf: %v", err)
	}
}

// TestCCacheNames: the ticket cache names and types, and what is refused
// before any file is read.
func TestCCacheNames(t *testing.T) {
	k := &kdc{conf: conf(t, "default_ccache_name = FILE:/tmp/krb5cc_%{uid}_default"), now: time.Now}
	none := func(string) string { return "" }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "primary"), []byte("tktABC\n"), 0o600)
	for _, tc := range []struct {
		name, want, errType string
	}{
		{"FILE:/x/cc", "/x/cc", ""},
		{"/x/cc", "/x/cc", ""},
		{"file:/x/cc", "/x/cc", ""},
		{"DIR:" + dir, filepath.Join(dir, "tktABC"), ""},
		{"DIR::" + dir + "/tktXYZ", dir + "/tktXYZ", ""},
		{"DIR:" + filepath.Join(dir, "empty"), filepath.Join(dir, "empty", "tkt"), ""},
		{"", "/tmp/krb5cc_" + strconv.Itoa(os.Getuid()) + "_default", ""},
		{"KEYRING:persistent:0", "", "KEYRING"},
		{"KCM:0", "", "KCM"},
		{"API:x", "", "API"},
		{"MSLSA:", "", "MSLSA"},
		{"MEMORY:x", "", "MEMORY"},
		{"WHAT:x", "", "WHAT"},
	} {
		s, err := newCCacheSource(k, tc.name, none)
		if tc.errType != "" {
			nc, ok := err.(*NoCredentialsError)
			if !ok || nc.Type != tc.errType {
				t.Errorf("%q: %v, want a %s refusal", tc.name, err, tc.errType)
			}
			continue
		}
		if err != nil || s.ccPath != tc.want {
			t.Errorf("%q: path %q %v, want %q", tc.name, s.ccPath, err, tc.want)
		}
	}
}

// FuzzParseCCache: ticket cache files are read with gokrb5's decoder, which
// must not take the process down whatever the file holds.
func FuzzParseCCache(f *testing.F) {
	f.Add([]byte{0x05, 0x04, 0, 0})
	f.Add([]byte{0x05, 0x04, 0, 12, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte("\x05\x04\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0cEXAMPLE.TEST\x00\x00\x00\x05alice"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &credSource{ccache: "FILE:fuzz"}
		s.parseCCache(b) // an error is fine; a panic is not
	})
}

// FuzzParseKrb5Conf: krb5.conf text never panics the parser.
func FuzzParseKrb5Conf(f *testing.F) {
	f.Add(strings.Replace(testConf, "%s", "dns_canonicalize_hostname = fallback", 1))
	f.Add("[libdefaults]\n default_realm = X\n[realms]\n X = {\n kdc = a\n")
	f.Add("[realms]\n}}}{{\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseKrb5Conf("fuzz", s) // an error is fine; a panic is not
	})
}

// FuzzDecodeKDCReply: what a KDC (or anything answering on its port)
// sends is decoded without panicking.
func FuzzDecodeKDCReply(f *testing.F) {
	f.Add([]byte{0x6d, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x7e, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x6b, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tgt := &ticket{key: types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}}
		decodeTGSRep(b, tgt)
		var ke messages.KRBError
		safeDecode(func() error { return ke.Unmarshal(b) })
	})
}
