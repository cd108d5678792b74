package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
)

// TestImportDante: the command writes a configuration that "gssocks
// check" accepts with the keytab the sockd.conf names, and the notes, each
// naming file:line, on standard error.
func TestImportDante(t *testing.T) {
	env := realm.Get(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sockd.conf")
	src := `# a gateway
internal: 127.0.0.1 port = 1080
external: 127.0.0.1
socksmethod: gssapi
client pass {
	from: 10.0.0.0/8 to: 0/0
	gssapi.keytab: FILE:` + env.Keytab + `
	gssapi.enctype: confidentiality
}
socks block {
	from: 0/0 to: 10.5.0.0/16 port = 5432
}
socks pass {
	from: 10.0.0.0/8 to: 0/0
	user: alice@EXAMPLE.TEST
	command: connect
	bandwidth: 100000
}
`
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"import-dante", "--host", "localhost", conf}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	hcl := filepath.Join(dir, "gssocks.hcl")
	if err := os.WriteFile(hcl, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var chk, chkErr bytes.Buffer
	if code := run([]string{"check", "--config", hcl}, &chk, &chkErr); code != 0 {
		t.Fatalf("gssocks check: exit %d\n%s\n%s", code, chkErr.String(), out.String())
	}
	cfg, _ := config.Load(hcl)
	if cfg == nil || len(cfg.Engine.Rules()) != 2 || cfg.Kerberos.Principals[0] != "rcmd/localhost" {
		t.Fatalf("loaded %+v", cfg)
	}
	for _, w := range []string{
		`principals = ["rcmd/localhost"]`,
		"# " + conf + ":11",
		`protection = ["confidentiality"]`,
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	for _, w := range []string{
		conf + ":3: not converted: external: ",
		conf + ":17: not converted: bandwidth: gssocks has no bandwidth limits",
	} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
}

// TestImportDanteErrors: a parse error names file:line and exits 1; usage
// errors exit 2.
func TestImportDanteErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "sockd.conf")
	os.WriteFile(bad, []byte("socksmethod: gssapi\nsocks pass {\n from: 10.0.0.300/8 to: 0/0\n}\n"), 0o644)
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, bytes.Repeat([]byte("#\n"), maxSockdConf), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"import-dante", bad}, 1, bad + `:3: from: "10.0.0.300" is not an IP address`},
		{[]string{"import-dante", filepath.Join(dir, "missing.conf")}, 1, "no such file"},
		{[]string{"import-dante", big}, 1, "larger than 4 MiB"},
		{[]string{"import-dante"}, 2, "usage: gssocks import-dante"},
		{[]string{"import-dante", "a", "b"}, 2, "usage: gssocks import-dante"},
		{[]string{"import-dante", "--bogus", bad}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q", c.args, code, errb.String(), c.code, c.want)
		}
		if code != 0 && out.Len() > 0 {
			t.Errorf("%v: wrote %d bytes to stdout on failure", c.args, out.Len())
		}
	}
}
