package danteconf

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
)

// FuzzParse feeds Parse hostile text. It must not panic; an error is an
// *Error naming the file and a line of the input, with a short message; a
// file it accepts converts to HCL that package config loads without errors.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.conf"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"}",
		"client pass {",
		"socks pass { from: 0/0 to: 0/0 port = 80 }",
		"socks pass{from:10.0.0.0 / 255.255.0.0 to:fe80::/10 port>=1024}",
		"socks pass { from: 0/0 to: 0/0 port 1 - \\\n 2 }",
		"pass { from : 0/0 to : .x port range 1-2 }",
		"internal: ::1 port: 1\nsocksmethod: none gssapi\nclient block { from: 10.0.0.0/8 to: 0/0 }\nclient pass { from: 0/0 to: 0/0 clientcompatibility: necgssapi }\nsocks pass { from: 10.0.0.0/8 to: 0/0 user: a@B group: g }",
		"socks block { from: 0/0 to: 0/0 redirect from: 1.2.3.4 to: 5.6.7.8 }",
		"route { from: 0/0 to: 0/0 via: http://x port = 1 }",
		"client pass { from: 0/0 to: 0/0 gssapi.servicename: a@b gssapi.keytab: MEMORY:x }",
		"socks pass { from: 0/0 to: 0/0 pac.sid.b64: AQEAAAAAAAUSAAAA }",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		file, err := Parse(src, "fuzz.conf")
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "fuzz.conf" || pe.Line < 1 || pe.Line > strings.Count(string(src), "\n")+1 {
				t.Fatalf("error %T %v", err, err)
			}
			if len(pe.Msg) > 400 {
				t.Fatalf("long error message (%d bytes): %s", len(pe.Msg), pe.Msg)
			}
			return
		}
		out, notes := Convert(file)
		_, _, diags := config.Loader{
			SkipKeytabCheck: true,
			Getenv:          func(string) string { return "" },
			LocalAddrs:      func() ([]netip.Addr, error) { return nil, nil },
		}.Parse(out, "converted.hcl")
		if diags.HasErrors() {
			t.Fatalf("output does not load: %s\n%s", diags.Error(), out)
		}
		for _, n := range notes {
			if strings.Contains(n.Text, "refuses the output") {
				t.Fatalf("note: %s", n)
			}
		}
	})
}
