package haproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/testenv/dante"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// webServer serves /N, N pseudo-random bytes (the same for every N), and
// /held/N, the same body in two halves: the second once release is
// called, so that a transfer is surely under way while the test looks.
type webServer struct {
	addr    string
	halfway chan struct{} // a value per /held request whose first half is out
	release func()
	gate    chan struct{}
}

func startWeb(t *testing.T) *webServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webServer{addr: ln.Addr().String(), halfway: make(chan struct{}, 4), gate: make(chan struct{})}
	var once sync.Once
	w.release = func() { once.Do(func() { close(w.gate) }) }
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		path, held := strings.CutPrefix(r.URL.Path, "/held")
		n, err := strconv.Atoi(strings.TrimPrefix(path, "/"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(rw, "size", http.StatusBadRequest)
			return
		}
		body := payload(n)
		rw.Header().Set("Content-Length", strconv.Itoa(n))
		if !held {
			rw.Write(body)
			return
		}
		rw.Write(body[:n/2])
		rw.(http.Flusher).Flush()
		w.halfway <- struct{}{}
		select {
		case <-w.gate:
		case <-r.Context().Done():
			return
		}
		rw.Write(body[n/2:])
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		w.release()
		srv.Close()
	})
	return w
}

func payload(n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{4, 5, 6}).Read(b)
	return b
}

// requireCurl returns the path of curl, or skips (fails under CI=true).
func requireCurl(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("curl missing (CI=true): apt-get install curl")
	}
	t.Skip("curl missing: apt-get install curl")
	return ""
}

// curlGet fetches url with the curl binary, directly (no socksify, no
// proxy variables), as an operator would.
func curlGet(t *testing.T, curl, url string) string {
	t.Helper()
	cmd := exec.Command(curl, "-sS", "--fail", "--noproxy", "*", "--max-time", "10", url)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s: %v: %s", url, err, stderr.String())
	}
	return string(out)
}

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sumOf adds the values of family name's series whose labels include
// labels (name=value pairs).
func sumOf(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
next:
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// operatorSeries are the families a node serves once it has ended a
// session: those issue 10 asks for, by name.
var operatorSeries = []string{
	"gssocks_sessions_active",
	"gssocks_sessions_total",
	"gssocks_handshakes_total",
	"gssocks_handshake_duration_seconds",
	"gssocks_rule_decisions_total",
	"gssocks_bytes_total",
	"gssocks_udp_datagrams_total",
	"gssocks_udp_datagrams_dropped_total",
	"gssocks_principal_limit_refusals_total",
	"gssocks_reloads_total",
	"gssocks_keytab_loads_total",
	"gssocks_keytab_kvnos",
	"gssocks_build_info",
	"gssocks_panics_total",
	"gssocks_replay_store_unavailable_total",
	"gssocks_replay_store_fallbacks_total",
}

// TestSocksifyThroughHAProxy: Dante's socksify (curl under it, GSS-API at
// confidentiality) through haproxy (send-proxy-v2) to the three nodes:
// the bodies arrive intact (SHA-256), the sessions spread over the nodes,
// and every record's source is the client's 127.0.0.1, never haproxy's
// haproxySource. Then, while a socksified transfer is held half-way, the
// curl binary scrapes each node's /metrics and sees the operator's series
// (sessions_active 1 on the node serving it) and /sessions lists the
// transfer with the client's address; once it completes, the counters
// across the nodes add up to the transfers made.
func TestSocksifyThroughHAProxy(t *testing.T) {
	dn := dante.Require(t)
	curl := requireCurl(t)
	cl := startCluster(t)
	r := cl.env.Realm
	cc, err := r.Kinit("alice", krbtest.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env, err := dn.ClientEnv(dir, dante.ClientConfig{Proxy: cl.front, Level: "confidentiality"}, r.Env("", cc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const size = 1 << 20
	want := sha256.Sum256(payload(size))
	checkBody := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(b) != want {
			t.Fatalf("%s: %d bytes, not the body served", path, len(b))
		}
	}

	const n = 6
	for i := range n {
		out := filepath.Join(dir, fmt.Sprintf("body%d", i))
		res, err := dn.Command(ctx, env, curl, "-sS", "--max-time", "60", "-o", out, fmt.Sprintf("http://%s/%d", cl.web.addr, size)).CombinedOutput()
		if err != nil {
			t.Fatalf("socksify curl %d: %v: %s", i, err, res)
		}
		checkBody(out)
	}
	// webRecords are each node's records of transfers from the web server.
	webRecords := func() [][]audit.Record {
		out := make([][]audit.Record, len(cl.nodes))
		for i, g := range cl.nodes {
			for _, rec := range g.Records() {
				if rec.Destination == cl.web.addr {
					out[i] = append(out[i], rec)
				}
			}
		}
		return out
	}
	checkRecords := func(total int) {
		t.Helper()
		var recs [][]audit.Record
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			recs = webRecords()
			got := 0
			for _, rs := range recs {
				got += len(rs)
			}
			if got == total {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d records of socksified transfers, want %d: %v", got, total, recs)
			}
		}
		for i, rs := range recs {
			if len(rs) == 0 {
				t.Errorf("node %d served none of %d socksified transfers", i+1, total)
			}
			for _, rec := range rs {
				if rec.Source.Addr() != netip.MustParseAddr("127.0.0.1") || rec.Source.Port() == 0 {
					t.Errorf("node %d record's source %v: want the client's 127.0.0.1:port (haproxy connects from %s)", i+1, rec.Source, haproxySource)
				}
				if rec.Principal != principal || rec.Level != "confidentiality" || rec.Command != "connect" ||
					rec.EndReason != audit.EndCompleted || rec.BytesDown <= size {
					t.Errorf("node %d record: %+v", i+1, rec)
				}
			}
		}
	}
	checkRecords(n)

	// A transfer held half-way: scrape while socksify moves data.
	out := filepath.Join(dir, "held")
	cmd := dn.Command(ctx, env, curl, "-sS", "--max-time", "60", "-o", out, fmt.Sprintf("http://%s/held/%d", cl.web.addr, size))
	var res bytes.Buffer
	cmd.Stdout, cmd.Stderr = &res, &res
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error // set before done is closed
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		cl.web.release()
		cancel()
		<-done
	}()
	select {
	case <-cl.web.halfway:
	case <-done:
		t.Fatalf("socksify curl ended before half-way: %v: %s", waitErr, res.String())
	case <-time.After(time.Minute):
		t.Fatal("the held transfer did not start")
	}
	serving := -1
	for i, g := range cl.nodes {
		fams := parseMetrics(t, curlGet(t, curl, "http://"+g.MetricsAddr()+"/metrics"))
		for _, name := range operatorSeries {
			if fams[name] == nil {
				t.Errorf("node %d /metrics lacks %s", i+1, name)
			}
		}
		if sumOf(fams, "gssocks_build_info") != 1 {
			t.Errorf("node %d gssocks_build_info: %v", i+1, fams["gssocks_build_info"])
		}
		switch v := sumOf(fams, "gssocks_sessions_active"); v {
		case 0:
		case 1:
			serving = i
		default:
			t.Errorf("node %d: %v active sessions, want 0 or 1", i+1, v)
		}
	}
	if serving < 0 {
		t.Fatal("no node reports the held transfer in gssocks_sessions_active")
	}
	// The node's live view names the client's own address.
	var live gateway.SessionJSON
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var list []gateway.SessionJSON
		body := curlGet(t, curl, "http://"+cl.nodes[serving].MetricsAddr()+"/sessions")
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("/sessions: %v in %q", err, body)
		}
		if len(list) == 1 && list[0].BytesDown >= size/2 {
			live = list[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d /sessions during the held transfer: %+v", serving+1, list)
		}
	}
	if src, err := netip.ParseAddrPort(live.Source); err != nil || src.Addr() != netip.MustParseAddr("127.0.0.1") ||
		live.Principal != principal || live.Destination != cl.web.addr || live.Level != "confidentiality" {
		t.Errorf("node %d /sessions entry %+v: want alice's transfer from 127.0.0.1", serving+1, live)
	}

	cl.web.release()
	<-done
	if waitErr != nil {
		t.Fatalf("socksify curl (held): %v: %s", waitErr, res.String())
	}
	checkBody(out)
	checkRecords(n + 1)

	// Across the nodes, the counters add up to the n+1 transfers.
	var completed, down float64
	for _, g := range cl.nodes {
		fams := parseMetrics(t, curlGet(t, curl, "http://"+g.MetricsAddr()+"/metrics"))
		completed += sumOf(fams, "gssocks_sessions_total", "command", "connect", "level", "confidentiality", "result", "completed")
		down += sumOf(fams, "gssocks_bytes_total", "direction", "down", "level", "confidentiality")
	}
	if completed != n+1 {
		t.Errorf("gssocks_sessions_total{connect,confidentiality,completed} over the nodes: %v, want %d", completed, n+1)
	}
	if down < (n+1)*size {
		t.Errorf("gssocks_bytes_total{down,confidentiality} over the nodes: %v, want at least %d", down, (n+1)*size)
	}
}
