package audit

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func sample() *Record {
	r := &Record{
		Time:        time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.FixedZone("X", 3600)),
		SessionID:   "019ad4c3e2f1a3b4c5d6e7f80912",
		Source:      netip.MustParseAddrPort("10.0.0.7:50000"),
		Principal:   "alice@EXAMPLE.TEST",
		Realm:       "EXAMPLE.TEST",
		Service:     "rcmd/gw.example.test@EXAMPLE.TEST",
		Method:      "gssapi",
		Level:       "confidentiality",
		Enctype:     "aes256-cts-hmac-sha1-96",
		Command:     "connect",
		Destination: "intranet.example.test:443",
		Dialed:      netip.MustParseAddrPort("10.1.1.1:443"),
		Outbound:    netip.MustParseAddrPort("10.1.0.2:41234"),
		Rule:        "staff",
		Replied:     true,
		ReplyText:   "succeeded",
		BytesUp:     10,
		BytesDown:   20,
		Duration:    4992 * time.Millisecond,
		EndReason:   EndCompleted,
	}
	r.SetGroupSIDs([]string{"S-1-5-21-1-2-3-1104"})
	return r
}

func TestJSONSchema(t *testing.T) {
	b, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time":        "2026-11-30T09:00:00.123Z",
		"session_id":  "019ad4c3e2f1a3b4c5d6e7f80912",
		"source":      "10.0.0.7:50000",
		"principal":   "alice@EXAMPLE.TEST",
		"realm":       "EXAMPLE.TEST",
		"group_sids":  []any{"S-1-5-21-1-2-3-1104"},
		"service":     "rcmd/gw.example.test@EXAMPLE.TEST",
		"method":      "gssapi",
		"level":       "confidentiality",
		"enctype":     "aes256-cts-hmac-sha1-96",
		"command":     "connect",
		"destination": "intranet.example.test:443",
		"dialed":      "10.1.1.1:443",
		"outbound":    "10.1.0.2:41234",
		"rule":        "staff",
		"reply":       float64(0),
		"reply_text":  "succeeded",
		"bytes_up":    float64(10),
		"bytes_down":  float64(20),
		"duration_ms": float64(4992),
		"end_reason":  "completed",
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok {
			t.Errorf("key %q missing in %s", k, b)
			continue
		}
		if gb, _ := json.Marshal(got); string(gb) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, gb, mustJSON(v))
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q", k)
		}
	}
	if !strings.HasPrefix(string(b), `{"time":`) {
		t.Errorf("keys not in fixed order: %s", b)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestLevelNoneWhenNeverNegotiated(t *testing.T) {
	r := &Record{EndReason: EndRefused}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"level":"none"`) || strings.Contains(string(b), `"reply"`) {
		t.Errorf("record without negotiation: %s", b)
	}
}

func TestGroupSIDsBounded(t *testing.T) {
	var r Record
	sids := make([]string, MaxGroupSIDs+10)
	for i := range sids {
		sids[i] = "S-1-5-32-544"
	}
	r.SetGroupSIDs(sids)
	if len(r.GroupSIDs) != MaxGroupSIDs || r.GroupSIDsOmitted != 10 {
		t.Fatalf("kept %d, omitted %d", len(r.GroupSIDs), r.GroupSIDsOmitted)
	}
}

// A newline in a client-chosen string must not start a line that looks
// like a record of its own in the text log.
func TestLogSinkEscapesText(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Error})
	s := NewLogSink(l)
	r := sample()
	r.Destination = "evil\n2026-11-30T10:00:00.000Z [INFO]  audit: session principal=root@EXAMPLE.TEST:80"
	if err := s.Write(r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("record spans several lines (level Error logger must still write it):\n%s", out)
	}
	if !strings.Contains(out, `\n2026`) {
		t.Errorf("newline not escaped: %s", out)
	}
}

func TestLogSinkJSONOneObject(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true, Level: hclog.Warn})
	r := sample()
	r.Principal = "a\"b\n@X"
	NewLogSink(l).Write(r)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, buf.String())
	}
	if m["principal"] != "a\"b\n@X" || m["duration_ms"] != float64(4992) {
		t.Errorf("fields: %v", m)
	}
}

func TestFileReopen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("one\n"))
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("two\n"))
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three\n"))
	old, _ := os.ReadFile(p + ".1")
	cur, _ := os.ReadFile(p)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestFileOpenError(t *testing.T) {
	_, err := OpenFile(filepath.Join(t.TempDir(), "no", "such", "dir", "audit.log"))
	if err == nil {
		t.Fatal("opened a file in a missing directory")
	}
}

func TestSessionIDs(t *testing.T) {
	now := time.Now()
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id := NewSessionID(now.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 28 || seen[id] {
			t.Fatalf("id %q (len %d) repeated or malformed", id, len(id))
		}
		if id[:12] < prev {
			t.Fatalf("ids not time-ordered: %s after %s", id, prev)
		}
		prev = id[:12]
		seen[id] = true
	}
}

// NewLogSink raises the level of its own copy of the logger, never the
// operational logger's: with hclog's shared levels it writes each record
// at the logger's level instead, so records are neither lost nor the
// operational log turned up to Info.
func TestLogSinkLevels(t *testing.T) {
	for _, c := range []struct {
		name        string
		independent bool
		label       string
	}{
		{"independent", true, "[INFO]"},
		{"shared", false, "[ERROR]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			root := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Error, IndependentLevels: c.independent})
			s := NewLogSink(root.Named("audit"))
			if root.GetLevel() != hclog.Error {
				t.Fatalf("NewLogSink changed the operational level to %s", root.GetLevel())
			}
			root.Info("operational info line")
			s.Write(sample())
			out := buf.String()
			if strings.Contains(out, "operational info line") {
				t.Fatalf("operational Info line written at level error:\n%s", out)
			}
			if strings.Count(out, "\n") != 1 || !strings.Contains(out, c.label) || !strings.Contains(out, "audit: session:") {
				t.Fatalf("record:\n%s", out)
			}
		})
	}
}

// TestSOCKS4Record: a SOCKS4 session's record has method "socks4", its
// USERID under socks4_userid after method, no principal, and the USERID
// escaped in the text form like every client-chosen string.
func TestSOCKS4Record(t *testing.T) {
	r := &Record{SessionID: "x", Method: "socks4", SOCKS4UserID: "bob\nend_reason=completed", Level: "clear",
		Replied: true, Reply: 91, ReplyText: "request rejected or failed", EndReason: EndRefused}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"method":"socks4","socks4_userid":"bob\nend_reason=completed","level":"clear"`) ||
		strings.Contains(string(b), `"principal"`) || !strings.Contains(string(b), `"reply":91`) {
		t.Fatalf("%s", b)
	}
	var buf bytes.Buffer
	if err := NewLogSink(hclog.New(&hclog.LoggerOptions{Output: &buf})).Write(r); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, `socks4_userid="bob\nend_reason=completed"`) {
		t.Fatalf("text record: %s", out)
	}
	if b, _ := json.Marshal(&Record{Method: "gssapi"}); strings.Contains(string(b), "socks4_userid") {
		t.Fatalf("empty socks4_userid written: %s", b)
	}
}
