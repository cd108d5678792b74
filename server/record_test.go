package server

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/hashicorp/go-hclog"
)

// TestLogStrOneLine: a client-chosen value with a newline written raw
// makes hclog's text format spread it over several lines; through logStr
// (and logErr for errors quoting it) it stays on the record's line.
func TestLogStrOneLine(t *testing.T) {
	evil := "host\n2026-01-01T00:00:00.000Z [INFO]  audit: session: principal=root@X"
	lines := func(f func(l hclog.Logger)) int {
		var b bytes.Buffer
		f(hclog.New(&hclog.LoggerOptions{Output: &b, Level: hclog.Debug}))
		return strings.Count(b.String(), "\n")
	}
	if n := lines(func(l hclog.Logger) { l.Info("event", "dest", evil) }); n < 2 {
		t.Fatalf("premise: a raw newline gave %d lines", n)
	}
	for name, f := range map[string]func(l hclog.Logger){
		"logStr":  func(l hclog.Logger) { l.Info("event", "dest", logStr(evil)) },
		"logErr":  func(l hclog.Logger) { l.Info("event", "error", logErr(errors.New("lookup "+evil))) },
		"With":    func(l hclog.Logger) { l.With("principal", logStr(evil)).Info("event") },
		"control": func(l hclog.Logger) { l.Info("event", "dest", logStr("a\rb\x1b[2Jc")) },
	} {
		if n := lines(f); n != 1 {
			t.Errorf("%s: %d lines", name, n)
		}
	}
	if logStr("alice@EXAMPLE.TEST") != "alice@EXAMPLE.TEST" {
		t.Error("a plain name is altered")
	}
}

// TestRecordFirstEndWins: the first end reason stays, whichever goroutine
// writes it; the final copy shares nothing with the holder.
func TestRecordFirstEndWins(t *testing.T) {
	var r record
	r.begin(time.Now(), "id", addrPortOf(nil))
	var wg sync.WaitGroup
	r.setEnd(audit.EndShutdown, "cut")
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.setEnd(audit.EndError, "relay: use of closed connection")
			r.setRule("later")
			r.up.Add(1)
		}()
	}
	r.setRule("first")
	wg.Wait()
	r.update(func(a *audit.Record) { a.SetGroupSIDs([]string{"S-1-5-21-1"}) })
	a := r.finish(time.Now())
	if a.EndReason != audit.EndShutdown || a.Detail != "cut" || a.BytesUp != 8 || a.Level != "none" {
		t.Fatalf("%v", a.Fields())
	}
	if a.Rule != "first" && a.Rule != "later" {
		t.Fatalf("rule %q", a.Rule)
	}
	a.GroupSIDs[0] = "changed"
	if r.finish(time.Now()).GroupSIDs[0] != "S-1-5-21-1" {
		t.Fatal("the finished record shares its group SIDs with the holder")
	}
}
