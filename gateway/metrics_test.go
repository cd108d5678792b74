package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsConf is conf with the metrics block; the top-level listen is
// written out because testutil adds one only to a file without any
// "listen =" line.
func metricsConf(kt, echoPort, metrics string) string {
	return "listen = [\"127.0.0.1:1080\"]\n" + conf(kt, echoPort, metrics)
}

const metricsBlock = `
metrics {
  listen = "127.0.0.1:9180"
}
`

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics in the text format.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func wantValue(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// replayAPReq authenticates twice with the same AP-REQ on raw
// connections; the second must be refused as a replay.
func replayAPReq(t *testing.T, icfg gssapi.InitiatorConfig, addr string) {
	t.Helper()
	var first []byte
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte{5, 1, 1})
		var sel [2]byte
		if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 1} {
			t.Fatalf("method selection %x: %v", sel, err)
		}
		in, tok, err := gssapi.NewInitiator(icfg)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = tok
		}
		_, err = encap.InitiateContext(c, in, first)
		c.Close()
		if i == 0 && err != nil {
			t.Fatalf("first AP-REQ: %v", err)
		}
		if i == 1 && err == nil {
			t.Fatal("the replayed AP-REQ was accepted")
		}
	}
}

// TestMetricsSeries runs real sessions (one allowed, one denied by the
// default deny, an AP-REQ and its replay) and checks the series scraped
// from /metrics; then that a reload keeps the counters, turns pprof on,
// and moves the listener to a new address.
func TestMetricsSeries(t *testing.T) {
	env := realm.Get(t)
	echoAddr, echoPort := echo(t)
	g := testutil.StartGateway(t, metricsConf(env.Keytab, echoPort, metricsBlock))
	maddr := g.MetricsAddr()
	if maddr == "" {
		t.Fatal("no metrics listener")
	}

	if err := session(t, env, g.Addr, echoAddr); err != nil {
		t.Fatalf("allowed session: %v", err)
	}
	// Port 9 is not the echo rule's: the default deny refuses it.
	if err := session(t, env, g.Addr, "127.0.0.1:9"); !denied(err) {
		t.Fatalf("denied session: %v", err)
	}
	icfg, err := env.InitiatorConfig("alice", "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	replayAPReq(t, icfg, g.Addr)
	g.WaitRecord(t, func(r audit.Record) bool { return strings.Contains(r.Detail, "replayed AP-REQ") })
	// Four connections ended: allowed, denied, the first AP-REQ (closed
	// after the context), its replay.
	deadline := time.Now().Add(10 * time.Second)
	for len(g.Records()) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	fams := scrape(t, maddr)
	wantValue(t, fams, 1, "gssocks_sessions_total", "command", "connect", "level", "confidentiality", "result", "completed")
	wantValue(t, fams, 1, "gssocks_sessions_total", "command", "connect", "level", "confidentiality", "result", "denied")
	wantValue(t, fams, 1, "gssocks_sessions_total", "command", "none", "level", "none", "result", "auth_failed")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "gssapi", "outcome", "ok")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "gssapi", "outcome", "policy_denied")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "gssapi", "outcome", "replay")
	wantValue(t, fams, 0, "gssocks_handshakes_total", "method", "gssapi", "outcome", "skew")
	wantValue(t, fams, 4, "gssocks_handshake_duration_seconds")
	wantValue(t, fams, 1, "gssocks_rule_decisions_total", "rule", "echo")
	wantValue(t, fams, 1, "gssocks_rule_decisions_total", "rule", "(default deny)")
	wantValue(t, fams, 4, "gssocks_bytes_total", "direction", "up", "level", "confidentiality")
	wantValue(t, fams, 4, "gssocks_bytes_total", "direction", "down", "level", "confidentiality")
	wantValue(t, fams, 0, "gssocks_principal_limit_refusals_total")
	wantValue(t, fams, 0, "gssocks_panics_total")
	wantValue(t, fams, 0, "gssocks_sessions_active")
	wantValue(t, fams, 1, "gssocks_keytab_loads_total", "outcome", "ok")
	wantValue(t, fams, 1, "gssocks_keytab_kvnos", "principal", "rcmd/localhost@EXAMPLE.TEST")
	wantValue(t, fams, 1, "gssocks_build_info")
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "alice") || strings.Contains(l.GetValue(), echoAddr) {
					t.Errorf("%s has a client principal or destination label: %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}

	if code, _ := get(t, "http://"+maddr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ answered %d, want 404", code)
	}

	// A reload turning pprof on: same listener, counters kept.
	writeFile(t, g.Path, metricsConf(env.Keytab, echoPort, `
metrics {
  listen = "127.0.0.1:9180"
  pprof  = true
}
`))
	if err := g.Hangup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := g.MetricsAddr(); got != maddr {
		t.Errorf("pprof change moved the listener: %s → %s", maddr, got)
	}
	if code, _ := get(t, "http://"+maddr+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("pprof on: /debug/pprof/ answered %d, want 200", code)
	}
	fams = scrape(t, maddr)
	wantValue(t, fams, 1, "gssocks_sessions_total", "command", "connect", "level", "confidentiality", "result", "completed")
	wantValue(t, fams, 1, "gssocks_reloads_total", "outcome", "ok")
	wantValue(t, fams, 2, "gssocks_keytab_loads_total", "outcome", "ok")

	// A new address: bound on reload, the old one closed, counters kept.
	writeFile(t, g.Path, metricsConf(env.Keytab, echoPort, `
metrics {
  listen = "127.0.0.1:9181"
}
`))
	if err := g.Hangup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	moved := g.MetricsAddr()
	if moved == maddr || moved == "" {
		t.Fatalf("metrics listener after the address change: %q (was %q)", moved, maddr)
	}
	if c, err := net.DialTimeout("tcp", maddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the old metrics address %s still accepts", maddr)
	}
	fams = scrape(t, moved)
	wantValue(t, fams, 1, "gssocks_sessions_total", "command", "connect", "level", "confidentiality", "result", "completed")
	wantValue(t, fams, 2, "gssocks_reloads_total", "outcome", "ok")
	if code, _ := get(t, "http://"+moved+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off again: /debug/pprof/ answered %d, want 404", code)
	}

	// A bad file: a failed reload is counted, the listener stays.
	writeFile(t, g.Path, "listen = 1\n")
	if err := g.Hangup(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	fams = scrape(t, moved)
	wantValue(t, fams, 1, "gssocks_reloads_total", "outcome", "error")
}

// TestReadyz: /healthz answers 200 as soon as the listener is up;
// /readyz answers 503 with its reason until the SOCKS listeners serve,
// 200 after, and 503 again once shutting down.
func TestReadyz(t *testing.T) {
	env := realm.Get(t)
	_, echoPort := echo(t)
	path := filepath.Join(t.TempDir(), "gssocks.hcl")
	writeFile(t, path, metricsConf(env.Keytab, echoPort, metricsBlock))
	cfg := load(t, path, config.Loader{})
	gw, err := gateway.New(cfg, gateway.Options{
		Stderr:     io.Discard,
		Listen:     func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
		KeytabPoll: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer gw.Shutdown(ctx)
	maddr := gw.MetricsAddr()
	if code, _ := get(t, "http://"+maddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before Start: %d", code)
	}
	code, body := get(t, "http://"+maddr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "listeners not serving") {
		t.Errorf("/readyz before Start: %d %q, want 503 naming the listeners", code, body)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, "http://"+maddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after Start: %d %q", code, body)
	}
}

// TestSessionsEndpoint: a live CONNECT is listed by /sessions with its
// principal, destination, level, command and byte counts.
func TestSessionsEndpoint(t *testing.T) {
	env := realm.Get(t)
	echoAddr, echoPort := echo(t)
	g := testutil.StartGateway(t, metricsConf(env.Keytab, echoPort, metricsBlock))
	d := client.Dialer{Proxy: g.Addr, Config: client.Config{
		Level: encap.LevelConfidentiality,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	var list []gateway.SessionJSON
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, "http://"+g.MetricsAddr()+"/sessions")
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("/sessions: %v in %q", err, body)
		}
		if len(list) == 1 && list[0].BytesUp == 5 && list[0].BytesDown == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(list) != 1 {
		t.Fatalf("/sessions lists %d sessions, want 1: %+v", len(list), list)
	}
	s := list[0]
	want := gateway.SessionJSON{ID: s.ID, Principal: "alice@EXAMPLE.TEST", Method: "gssapi", Source: s.Source,
		Destination: echoAddr, Level: "confidentiality", Command: "connect", BytesUp: 5, BytesDown: 5, AgeSeconds: s.AgeSeconds}
	if s != want || s.ID == "" || s.Source == "" || s.AgeSeconds <= 0 {
		t.Errorf("/sessions entry %+v, want %+v", s, want)
	}
}

// TestPrincipalLimitMetric: a rule's per-principal limit refuses alice's
// second concurrent session; the refusal is counted, as a policy denial
// of an authenticated handshake.
func TestPrincipalLimitMetric(t *testing.T) {
	env := realm.Get(t)
	echoAddr, echoPort := echo(t)
	g := testutil.StartGateway(t, fmt.Sprintf(`
listen = ["127.0.0.1:1080"]
kerberos {
  keytab = %q
}
metrics {
  listen = "127.0.0.1:9180"
}
rule "one-each" {
  principals                 = ["*@EXAMPLE.TEST"]
  destinations               = ["127.0.0.0/8"]
  ports                      = ["%s"]
  max_sessions_per_principal = 1
}
`, env.Keytab, echoPort))
	d := client.Dialer{Proxy: g.Addr, Config: client.Config{
		Level: encap.LevelIntegrity,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	held, err := d.DialContext(ctx, "tcp", echoAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := session(t, env, g.Addr, echoAddr); !denied(err) {
		t.Fatalf("second session over the limit: %v", err)
	}
	g.WaitRecord(t, func(r audit.Record) bool { return r.EndReason == audit.EndDenied })
	fams := scrape(t, g.MetricsAddr())
	wantValue(t, fams, 1, "gssocks_principal_limit_refusals_total")
	wantValue(t, fams, 1, "gssocks_handshakes_total", "method", "gssapi", "outcome", "policy_denied")
	wantValue(t, fams, 1, "gssocks_sessions_active")
}

// TestUDPMetrics: before any association every direction and drop reason
// has its series at 0; after one datagram relayed each way and one to a
// denied destination, the scrape shows exactly those.
func TestUDPMetrics(t *testing.T) {
	env := realm.Get(t)
	g := testutil.StartGateway(t, fmt.Sprintf(`
listen = ["127.0.0.1:1080"]
kerberos {
  keytab = %q
}
metrics {
  listen = "127.0.0.1:9180"
}
rule "no-udp-to-3" {
  action       = "deny"
  destinations = ["127.0.0.3/32"]
}
rule "loopback" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
}
`, env.Keytab))
	fams := scrape(t, g.MetricsAddr())
	for _, d := range []server.UDPDirection{server.UDPUp, server.UDPDown} {
		wantValue(t, fams, 0, "gssocks_udp_datagrams_total", "direction", d.String())
	}
	for _, r := range server.UDPDropReasons() {
		wantValue(t, fams, 0, "gssocks_udp_datagrams_dropped_total", "reason", r.String())
	}
	if n := len(fams["gssocks_udp_datagrams_dropped_total"].GetMetric()); n != len(server.UDPDropReasons()) {
		t.Errorf("%d drop reason series, want %d", n, len(server.UDPDropReasons()))
	}

	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	echoAddr := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	s, err := client.Open(context.Background(), g.Addr, client.Config{
		Level: encap.LevelIntegrity,
		Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
			return env.InitiatorConfig("alice", "rcmd/localhost", "")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	local.SetDeadline(time.Now().Add(10 * time.Second))
	a, err := s.Associate(local)
	if err != nil {
		t.Fatal(err)
	}
	a.WriteTo([]byte("denied"), socks5.Addr{IP: netip.MustParseAddr("127.0.0.3"), Port: echoAddr.Port()})
	if err := a.WriteTo([]byte("ping"), socks5.AddrFromAddrPort(echoAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, _, err := a.ReadFrom(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("echo through the association: %q %v", buf[:n], err)
	}
	// Each datagram is counted once its send returned: the reply can
	// reach the client, and be counted, before the request is.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		fams = scrape(t, g.MetricsAddr())
		up, _ := value(fams, "gssocks_udp_datagrams_total", "direction", "up")
		down, _ := value(fams, "gssocks_udp_datagrams_total", "direction", "down")
		if up > 0 && down > 0 || time.Now().After(deadline) {
			break
		}
	}
	wantValue(t, fams, 1, "gssocks_udp_datagrams_total", "direction", "up")
	wantValue(t, fams, 1, "gssocks_udp_datagrams_total", "direction", "down")
	for _, r := range server.UDPDropReasons() {
		want := 0.0
		if r == server.UDPDropPolicyDenied {
			want = 1
		}
		wantValue(t, fams, want, "gssocks_udp_datagrams_dropped_total", "reason", r.String())
	}
}
