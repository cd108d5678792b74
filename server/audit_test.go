package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// connectOnce runs one CONNECT session to dest at confidentiality, holds
// it for hold, and returns the reply's BND address.
func connectOnce(t *testing.T, g *gateway, dest string, hold time.Duration) netip.AddrPort {
	t.Helper()
	s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelConfidentiality))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, _ := socks5.ParseHostPort(dest)
	bnd, err := s.Request(socks5.CmdConnect, d)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold)
	return netip.AddrPortFrom(bnd.IP, bnd.Port)
}

// TestAuditRecordConnect: a CONNECT's record gives the destination as
// asked and as dialed, and the outbound socket's local address (the BND
// of the reply); the duration is a number of milliseconds and the time is
// UTC RFC 3339 with milliseconds, in the value and in the written line.
func TestAuditRecordConnect(t *testing.T) {
	g := startGateway(t, allowAll)
	echo := echoServer(t)
	_, port, _ := strings.Cut(echo, ":")
	byName := "echo.corp.example.test:" + port
	bnd := connectOnce(t, g, byName, 250*time.Millisecond)
	r := g.waitRecord(t, "the CONNECT", func(r audit.Record) bool { return r.Destination == byName })
	if r.Dialed.String() != echo || r.Outbound != bnd || !r.Source.Addr().IsLoopback() {
		t.Fatalf("dialed %s (want %s), outbound %s (want %s), source %s", r.Dialed, echo, r.Outbound, bnd, r.Source)
	}
	if r.Duration < 250*time.Millisecond || r.Time.Location() != time.UTC || time.Since(r.Time) > time.Minute {
		t.Fatalf("duration %s, time %s", r.Duration, r.Time)
	}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if ms, ok := m["duration_ms"].(float64); !ok || ms < 250 || ms != float64(r.Duration.Milliseconds()) {
		t.Fatalf("duration_ms %#v in %s", m["duration_ms"], b)
	}
	if ts, _ := m["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Fatalf("time %q", ts)
	}
	if m["dialed"] != echo || m["outbound"] != bnd.String() || m["end_reason"] != "completed" {
		t.Fatalf("record %s", b)
	}
	// The default sink's text line: the same keys, a plain number.
	line := waitLogLine(t, g, "audit: session:", "session_id="+r.SessionID)
	if !regexp.MustCompile(` duration_ms=\d+ `).MatchString(line) || !strings.Contains(line, " outbound="+bnd.String()) {
		t.Fatalf("written record: %s", line)
	}
}

// TestSessionIDs: ids are unique, sort in the order the sessions started,
// and tag the session's operational log lines.
func TestSessionIDs(t *testing.T) {
	g := startGateway(t, allowAll)
	echo := echoServer(t)
	var ids []string
	for i := range 5 {
		mark := g.mark()
		connectOnce(t, g, echo, 0)
		r := g.waitRecordFrom(t, mark, "session", func(audit.Record) bool { return true })
		if len(r.SessionID) != 28 {
			t.Fatalf("session id %q", r.SessionID)
		}
		if i > 0 && r.SessionID <= ids[i-1] {
			t.Fatalf("session id %s after %s", r.SessionID, ids[i-1])
		}
		ids = append(ids, r.SessionID)
		// The operational lines (here the Debug "authenticated") carry it.
		waitLogLine(t, g, "authenticated", "session_id="+r.SessionID)
		time.Sleep(2 * time.Millisecond) // the ids' time prefix counts milliseconds
	}
}

// TestAuditWhateverLogLevel: with the operational log at warn, the default
// sink still writes every record, and the operational level stays warn
// (Info lines such as "listening" are not written). With an hclog root
// made with IndependentLevels the record is an INFO line; with shared
// levels it is written at the logger's level rather than lost.
func TestAuditWhateverLogLevel(t *testing.T) {
	for _, c := range []struct {
		name        string
		independent bool
		label       string
	}{
		{"independent levels", true, "[INFO]"},
		{"shared levels", false, "[WARN]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lb := &testutil.LogBuffer{}
			logger := hclog.New(&hclog.LoggerOptions{Output: lb, Level: hclog.Warn, IndependentLevels: c.independent})
			// The server's own default sink (Options.Audit nil) over the
			// test's logger, not the gateway's.
			g := startGateway(t, allowAll, testutil.WithServerOption(func(o *server.Options) { o.Logger, o.Audit = logger, nil }))
			connectOnce(t, g, echoServer(t), 0)
			r := g.waitRecord(t, "session", func(audit.Record) bool { return true })
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(lb.String(), "session_id="+r.SessionID) {
				if time.Now().After(deadline) {
					t.Fatalf("no written record at log level warn:\n%s", lb.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			out := lb.String()
			if strings.Count(out, "audit: session:") != 1 || !regexp.MustCompile(regexp.QuoteMeta(c.label)+` +audit: session:`).MatchString(out) {
				t.Fatalf("records written:\n%s", out)
			}
			if strings.Contains(out, "listening") || logger.GetLevel() != hclog.Warn {
				t.Fatalf("the operational log left level warn (%s):\n%s", logger.GetLevel(), out)
			}
		})
	}
}

// TestReloadLogger: Settings.Logger applies to the sessions started after
// a reload; a reload without an acceptor or policy is refused and changes
// nothing.
func TestReloadLogger(t *testing.T) {
	g := startGateway(t, allowAll)
	echo := echoServer(t)
	lb := &testutil.LogBuffer{}
	g.tune(t, func(s *server.Settings) {
		s.Logger = hclog.New(&hclog.LoggerOptions{Output: lb, Level: hclog.Debug, JSONFormat: true})
	})
	mark := g.mark()
	connectOnce(t, g, echo, 0)
	r := g.waitRecordFrom(t, mark, "session", func(audit.Record) bool { return true })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(lb.String(), r.SessionID); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reloaded logger has no line of the new session")
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(lb.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("the reloaded JSON logger wrote %q", line)
		}
	}
	// The old logger has the record (Options.Audit stays) and nothing
	// else of the new session.
	for _, line := range strings.Split(g.Log.String(), "\n") {
		if strings.Contains(line, r.SessionID) && !auditLine.MatchString(line) {
			t.Fatalf("the new session logged to the old logger: %s", line)
		}
	}
	st := *g.Server().Settings()
	bad := st
	bad.Policy = nil
	if err := g.Server().Reload(bad); err == nil {
		t.Fatal("a reload without a policy was accepted")
	}
	if g.Server().Settings().Policy != st.Policy {
		t.Fatal("a refused reload changed the settings")
	}
}

// TestOnSessionEndAfterAudit: the hook gets each record after the sink,
// as a copy (a hook changing it does not change what the next one sees).
func TestOnSessionEndAfterAudit(t *testing.T) {
	var order []string
	done := make(chan audit.Record, 1)
	g := startGateway(t, allowAll, testutil.WithServerOption(func(o *server.Options) {
		o.Audit = audit.SinkFunc(func(r *audit.Record) error {
			order = append(order, "audit:"+r.SessionID)
			return nil
		})
		o.OnSessionEnd = func(r audit.Record) {
			order = append(order, "hook:"+r.SessionID)
			done <- r
		}
	}))
	c := rawDial(t, g)
	c.Write([]byte{5, 1, 0})
	io.ReadAll(c)
	select {
	case r := <-done:
		if len(order) != 2 || order[0] != "audit:"+r.SessionID || order[1] != "hook:"+r.SessionID {
			t.Fatalf("order %v", order)
		}
		if r.Level != "none" || r.EndReason != audit.EndRefused {
			t.Fatalf("record %v", r.Fields())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no record")
	}
}
