package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

// logWriter sends the benchmark's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func sane(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

// TestQuick runs every measurement of the benchmark, tiny, against both
// servers (so that the benchmark cannot rot): each must produce a sane
// number. It asserts nothing about speed.
func TestQuick(t *testing.T) {
	testenv.Require(t)
	dante.Require(t)
	start := time.Now()
	cfg := Quick()
	cfg.Log = logWriter{t}
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	servers := []string{"gssocks", "dante"}
	var cpu float64
	checkSamples := func(what string, p pairOf[sample]) {
		t.Helper()
		for _, s := range servers {
			if len(p[s]) != cfg.Runs {
				t.Errorf("%s %s: %d samples, want %d", what, s, len(p[s]), cfg.Runs)
			}
			for _, x := range p[s] {
				if !sane(x.mbps()) || x.mbps() == 0 || !sane(x.cpuPerGiB()) {
					t.Errorf("%s %s: %.1f MB/s, %.2f s/GiB", what, s, x.mbps(), x.cpuPerGiB())
				}
				cpu += x.cpu
			}
		}
	}
	for _, et := range cfg.Enctypes {
		for _, l := range cfg.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				p, ok := r.Bulk[bulkKey{et, l, op}]
				if !ok {
					t.Errorf("no bulk %s %s %s", et, l, opName(op))
				}
				checkSamples("bulk "+et+" "+l.String()+" "+opName(op), p)
				if l == 0 {
					continue
				}
				f := r.Floor[floorKey{et, l}]
				if !sane(f.wrap) || !sane(f.unwrap) || f.wrap == 0 || f.unwrap == 0 {
					t.Errorf("floor %s %s: %+v", et, l, f)
				}
			}
		}
		for _, l := range cfg.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				if p, ok := r.Socks[bulkKey{"aes256-sha1", l, op}]; ok {
					checkSamples("socksify "+l.String()+" "+opName(op), p)
				} else {
					t.Errorf("no socksify %s %s", l, opName(op))
				}
			}
		}
	}
	checkSamples("streams", r.Streams)
	// CPU comes in 10 ms ticks: a single small transfer may show none,
	// the whole run must.
	if cpu <= 0 {
		t.Error("no server CPU time measured in the whole run")
	}
	for _, w := range cfg.SetupWorkers {
		for _, s := range servers {
			for _, x := range r.Setup[w][s] {
				if x.ops == 0 || x.p50 <= 0 || x.p99 < x.p50 || !sane(x.rate()) || !sane(x.cpuPerOp()) {
					t.Errorf("setup %d workers %s: %+v", w, s, x)
				}
			}
			if len(r.Setup[w][s]) != cfg.Runs {
				t.Errorf("setup %d workers %s: %d samples", w, s, len(r.Setup[w][s]))
			}
		}
	}
	for _, s := range servers {
		i, ok := r.Idle[s]
		if !ok || i.held != cfg.Idle || len(i.steps) != cfg.IdleSteps+1 || !sane(i.openRate) {
			t.Errorf("idle %s: %+v", s, i)
			continue
		}
		if math.IsNaN(i.pssPerSess) || math.IsNaN(i.fdsPerSess) || i.fdsPerSess <= 0 {
			t.Errorf("idle %s: %.1f KiB, %.2f FDs per session", s, i.pssPerSess, i.fdsPerSess)
		}
	}
	// Each idle gssocks session holds the client's and the destination's
	// connections, and at least the goroutine that reads the client.
	if g := r.Idle["gssocks"]; math.Abs(g.fdsPerSess-2) > 0.2 || !(g.goroutines >= 1 && g.goroutines < 10) {
		t.Errorf("gssocks idle: %.2f FDs, %.2f goroutines per session", g.fdsPerSess, g.goroutines)
	}
	md := r.Markdown("socksbench -quick")
	for _, section := range []string{"### Bulk", "### Crypto floor", "### Concurrency", "### Setup", "### Idle", "### The same bulk through Dante's socksify", "### Targets"} {
		if !strings.Contains(md, section) {
			t.Errorf("report has no %q section", section)
		}
	}
	if strings.Contains(md, "NaN") {
		t.Errorf("report shows NaN:\n%s", md)
	}
	t.Logf("quick benchmark in %s:\n%s", time.Since(start).Round(time.Millisecond), md)
}

// TestSoak is the short soak CI runs: 100 concurrent confidentiality
// sessions (not 1 000: CI has two cores, shared with the other packages'
// tests, and this client runs under the race detector) of checked echo,
// download and upload (up to 4 MiB, so that its connections and their
// TIME_WAIT sockets leave the packages running beside it ports) for 30
// seconds. Every byte must arrive as sent,
// no session may fail, and the gateway's descriptors must be back to
// their baseline once the sessions have closed.
func TestSoak(t *testing.T) {
	testenv.Require(t)
	r, err := Soak(SoakConfig{Duration: 30 * time.Second, Sessions: 100, MaxSize: 4 << 20, Settle: 5 * time.Second, Enctype: "aes256-sha1", Log: logWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Markdown("TestSoak"))
	if r.Errors != 0 || r.Corrupt != 0 {
		t.Errorf("%d errors, %d corrupt transfers: %q", r.Errors, r.Corrupt, r.FirstErrs)
	}
	if r.Sessions < 100 || r.Bytes == 0 || r.Ops[0] == 0 || r.Ops[1] == 0 || r.Ops[2] == 0 {
		t.Errorf("only %d sessions, %d bytes (%v)", r.Sessions, r.Bytes, r.Ops)
	}
	s := r.Summary()
	if len(r.Samples) < 30 || s.PeakRSS <= 0 || s.PeakFDs < 2*50 {
		t.Errorf("%d samples, peak RSS %d KiB, peak FDs %d", len(r.Samples), s.PeakRSS, s.PeakFDs)
	}
	if s.FinalFDs > r.Baseline.FDs {
		t.Errorf("gateway FDs %d after the soak, %d before", s.FinalFDs, r.Baseline.FDs)
	}
}
