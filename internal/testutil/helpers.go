package testutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
)

// WaitFor polls cond every 10 ms for up to 15 seconds; the test fails,
// naming what it waited for, if cond never holds.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// JSONLines parses every line of s as one JSON object, as log { format =
// "json" } promises for everything the process writes; a line that is
// not one fails the test.
func JSONLines(tb testing.TB, s string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("line is not one JSON object (%v): %q\nwhole output:\n%s", err, sc.Text(), s)
		}
		out = append(out, m)
	}
	return out
}

// CopyKeytab copies the keytab at src into dir (a new temporary directory
// when "") as gssocks.keytab with mode perm, and returns its path. The
// configuration warns about a world-readable keytab: 0600 is quiet.
func CopyKeytab(tb testing.TB, src, dir string, perm os.FileMode) string {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if dir == "" {
		dir = tb.TempDir()
	}
	p := filepath.Join(dir, "gssocks.keytab")
	if err := os.WriteFile(p, b, perm); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		tb.Fatal(err)
	}
	return p
}

// RC4Keytab writes to path, with MIT's ktutil, the entries of the keytabs
// in base and then one arcfour-hmac key (kvno 1) for principal: what an
// Active Directory account without AES keys yields, and what no RFC 4121
// context can come from. Mode 0600.
func RC4Keytab(tb testing.TB, path, principal string, base ...string) {
	tb.Helper()
	testenv.Require(tb, "ktutil")
	var script strings.Builder
	for _, b := range base {
		fmt.Fprintf(&script, "rkt %s\n", b)
	}
	fmt.Fprintf(&script, "addent -password -p %s -k 1 -e arcfour-hmac\nnot-a-secret\nwkt %s\nquit\n", principal, path)
	cmd := exec.Command("ktutil")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ktutil: %v\n%s", err, out)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		tb.Fatal(err)
	}
}
