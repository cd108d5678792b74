package danteconf

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// examples are the sockd.conf files under testdata, written in the style
// of Dante's documentation; sockd says whether a stock Dante 1.4.2 loads
// the file (TestExamplesLoadInDante checks it does).
var examples = []struct {
	name  string
	sockd bool
}{
	{"gssapi-gateway", true},
	{"lan-open", true},
	{"block-then-pass", true},
	{"bind-udp", true},
	{"necgssapi", true},
	{"legacy-1.2", true},
	{"beyond", false}, // module keywords, dotted netmasks, names in client rules
}

// loadOutput loads a conversion as "gssocks check" does, without the
// keytab and without this host's addresses.
func loadOutput(t *testing.T, out []byte) *config.Config {
	t.Helper()
	cfg, _, diags := config.Loader{
		SkipKeytabCheck: true,
		Getenv:          func(string) string { return "" },
		LocalAddrs:      func() ([]netip.Addr, error) { return nil, nil },
	}.Parse(out, "converted.hcl")
	if diags.HasErrors() {
		t.Fatalf("the output does not load: %s\n%s", diags.Error(), out)
	}
	return cfg
}

func convertFile(t *testing.T, name string, opts Options) ([]byte, []Note) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".conf"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(src, name+".conf")
	if err != nil {
		t.Fatal(err)
	}
	return ConvertWith(f, opts)
}

func renderNotes(notes []Note) []byte {
	var b bytes.Buffer
	for _, n := range notes {
		b.WriteString(n.String() + "\n")
	}
	return b.Bytes()
}

// golden compares got with testdata/file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the conversion (go test -update rewrites it); got:\n%s", path, got)
	}
}

// TestGolden converts each example and compares the HCL and the notes with
// the files under testdata. Every output must load without errors, and no
// note may say that gssocks check refuses it.
func TestGolden(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			out, notes := convertFile(t, ex.name, Options{})
			loadOutput(t, out)
			for _, n := range notes {
				if strings.Contains(n.Text, "refuses the output") {
					t.Errorf("note: %s", n)
				}
			}
			golden(t, ex.name+".hcl", out)
			golden(t, ex.name+".notes", renderNotes(notes))
		})
	}
}
