package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
)

// TestSessionsCommand: `gssocks sessions --metrics ADDR` against a running
// gateway lists a live CONNECT as a table row with its principal,
// destination, level, command and bytes; without a listener it fails
// with exit status 1 and says why.
func TestSessionsCommand(t *testing.T) {
	env := realm.Get(t)
	dest := testutil.EchoServer(t)
	_, port, _ := net.SplitHostPort(dest)
	// The current keys: TestServeReloadAndRotation rotates the shared
	// realm's rcmd/localhost key, which env.Keytab then lacks.
	kt := filepath.Join(t.TempDir(), "current.keytab")
	if err := env.Realm.ExportKeytab(kt, "rcmd/localhost"); err != nil {
		t.Fatal(err)
	}
	g := testutil.StartGateway(t, fmt.Sprintf(`
listen = ["127.0.0.1:1080"]
kerberos {
  keytab = %q
}
metrics {
  listen = "127.0.0.1:9180"
}
rule "echo" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  ports        = ["%s"]
}
`, kt, port))
	d := client.Dialer{Proxy: g.Addr, Config: client.Config{
		Level: encap.LevelIntegrity,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", dest)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("1234567")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"sessions", "--metrics", g.MetricsAddr()}, &stdout, &stderr); code != 0 {
			t.Fatalf("gssocks sessions: exit %d: %s", code, stderr.String())
		}
		out = stdout.String()
		if strings.Contains(out, " 7  7 ") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || lines[2] != "1 sessions" {
		t.Fatalf("gssocks sessions printed:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if len(f) != 10 {
		t.Fatalf("row %q: %d columns, want 10", lines[1], len(f))
	}
	want := []string{"alice@EXAMPLE.TEST", "gssapi", f[3], dest, "integrity", "connect", "7", "7"}
	if got := f[1:9]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row columns %q, want %q", got, want)
	}
	if !strings.HasPrefix(f[3], "127.0.0.1:") {
		t.Errorf("source %q", f[3])
	}

	// No listener there: a clear error, exit 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sessions", "--metrics", closed, "--timeout", "2s"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no answer from the metrics listener") {
		t.Errorf("against a closed port: exit %d, stderr %q", code, stderr.String())
	}
}

// TestWriteSessionsEscapes: a principal or destination with control
// characters is printed quoted, on one line.
func TestWriteSessionsEscapes(t *testing.T) {
	var b bytes.Buffer
	writeSessions(&b, []gateway.SessionJSON{{ID: "x", Principal: "evil\x1b[2J@R", Destination: "a\nb:1", AgeSeconds: 61}})
	out := b.String()
	if strings.Contains(out, "\x1b") || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"evil\x1b[2J@R"`) || !strings.Contains(out, "1m1s") {
		t.Errorf("escaped table:\n%q", out)
	}
}
