package gateway

import (
	"errors"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// MaxRuleLabels bounds the distinct values of the rule label of
// gssocks_rule_decisions_total: rule names are the operator's, but a
// configuration reloaded many times with renamed rules must not grow the
// registry without end. Names past the bound are counted as "other".
const MaxRuleLabels = 256

// Handshake methods, the values of gssocks_handshakes_total's method
// label: the front doors whose clients establish a GSS-API context
// (policy.Method names). Password logins are counted by
// gssocks_password_auth_total; none and socks4 have no handshake.
const (
	MethodGSSAPI    = "gssapi"
	MethodNegotiate = "negotiate"
)

// Handshake outcomes, the values of gssocks_handshakes_total's outcome
// label.
const (
	OutcomeOK               = "ok"
	OutcomeReplay           = "replay"
	OutcomeSkew             = "skew"
	OutcomeUnknownPrincipal = "unknown_principal"
	OutcomeBadToken         = "bad_token"
	OutcomeRefusedLevel     = "refused_level"
	OutcomePolicyDenied     = "policy_denied"
	OutcomeOther            = "other"
)

// handshakeOutcomes maps the acceptor's sentinel errors to outcomes; an
// error matching none is OutcomeOther.
var handshakeOutcomes = []struct {
	err     error
	outcome string
}{
	{gssapi.ErrReplay, OutcomeReplay},
	{gssapi.ErrSkew, OutcomeSkew},
	{gssapi.ErrTicketNotYetValid, OutcomeSkew},
	{gssapi.ErrPrincipalNotAllowed, OutcomeUnknownPrincipal},
	{gssapi.ErrNoKey, OutcomeUnknownPrincipal},
	{gssapi.ErrDefectiveToken, OutcomeBadToken},
	{gssapi.ErrBadMech, OutcomeBadToken},
	{gssapi.ErrBadIntegrity, OutcomeBadToken},
}

// HandshakeOutcome is the outcome label of a failed GSS-API context
// establishment's error (nil: OutcomeOK).
func HandshakeOutcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	for _, o := range handshakeOutcomes {
		if errors.Is(err, o.err) {
			return o.outcome
		}
	}
	return OutcomeOther
}

// metrics are the gateway's Prometheus series, on a registry of its own
// (never the global one), built once in New and kept across reloads.
// No label carries a client principal or a destination.
type metrics struct {
	reg *prometheus.Registry

	sessions    *prometheus.CounterVec // command, level, result
	handshakes  *prometheus.CounterVec // method, outcome
	hsLatency   prometheus.Histogram
	rules       *prometheus.CounterVec // rule
	bytes       *prometheus.CounterVec // direction, level
	limitRefuse prometheus.Counter
	udpRelayed  [2]prometheus.Counter  // by server.UDPDirection
	udpDropped  []prometheus.Counter   // by server.UDPDropReason
	passwords   *prometheus.CounterVec // outcome (RFC 1929)
	reloads     *prometheus.CounterVec // outcome
	keytabLoads *prometheus.CounterVec // outcome
	kvnos       *prometheus.GaugeVec   // principal (service principals of the keytab)

	mu        sync.Mutex
	ruleNames map[string]bool // rule label values in use, at most MaxRuleLabels
}

// newMetrics builds the series; version is gssocks_build_info's version
// label (see Options.Version).
func newMetrics(version string) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), ruleNames: map[string]bool{}}
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_sessions_total",
		Help: "Connections that ended, by SOCKS command, protection level and end reason (result).",
	}, []string{"command", "level", "result"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_handshakes_total",
		Help: "Kerberos handshakes by front door (method: gssapi for SOCKS5 GSS-API, negotiate for the HTTP proxy) and outcome: acceptor refusals (replay, skew, unknown_principal, bad_token, other) when the token is refused; for gssapi ok, refused_level, policy_denied or other when an authenticated session ends; for negotiate ok when the connection's client is identified.",
	}, []string{"method", "outcome"})
	m.hsLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gssocks_handshake_duration_seconds",
		Help:    "Time to establish (or refuse) the GSS-API context, SOCKS5 and HTTP Negotiate alike, from the first token read.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	m.rules = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_rule_decisions_total",
		Help: "Sessions decided by each rule (rule name, \"(default deny)\", or \"other\" past 256 names).",
	}, []string{"rule"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_bytes_total",
		Help: "Payload bytes relayed by ended sessions, by direction (up: client to destination) and protection level.",
	}, []string{"direction", "level"})
	m.limitRefuse = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gssocks_principal_limit_refusals_total",
		Help: "Requests refused by a rule's per-principal session limit.",
	})
	udpRelayed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_udp_datagrams_total",
		Help: "Datagrams relayed by UDP associations, by direction (up: client to destination, down: destination to client).",
	}, []string{"direction"})
	udpDropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_udp_datagrams_dropped_total",
		Help: "Datagrams of UDP associations dropped, either way, by reason (wrong_source, unwrap, fragment, malformed_header, resolve, policy_denied, principal_limit, ticket_expired, unsolicited, encapsulate, oversize, send_error, read_error).",
	}, []string{"reason"})
	// The children are made once, every label value included, so that
	// each series exists (at 0) from the start and the per-datagram path
	// is one atomic add, no label lookup.
	for _, d := range []server.UDPDirection{server.UDPUp, server.UDPDown} {
		m.udpRelayed[d] = udpRelayed.WithLabelValues(d.String())
	}
	for _, r := range server.UDPDropReasons() {
		m.udpDropped = append(m.udpDropped, udpDropped.WithLabelValues(r.String()))
	}
	m.passwords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_password_auth_total",
		Help: "RFC 1929 username/password verifications by outcome (server.Password* values).",
	}, []string{"outcome"})
	for _, o := range server.PasswordOutcomes() {
		m.passwords.WithLabelValues(o) // every outcome from 0, for rate() and alerts
	}
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_reloads_total",
		Help: "Configuration reloads by outcome (ok, error).",
	}, []string{"outcome"})
	m.keytabLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gssocks_keytab_loads_total",
		Help: "Keytab loads (start, reload, rotation) by outcome (ok, error).",
	}, []string{"outcome"})
	m.kvnos = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gssocks_keytab_kvnos",
		Help: "Distinct key version numbers loaded per service principal of the keytab the acceptors accept (SOCKS, and HTTP proxy with http_listen).",
	}, []string{"principal"})
	goVersion, revision := runtime.Version(), ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gssocks_build_info",
		Help:        "Always 1; the labels say which build runs: version (as `gssocks version` prints it), goversion, revision (the VCS commit, \"\" when not stamped).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion, "revision": revision},
	})
	build.Set(1)
	for _, o := range []string{OutcomeOK, OutcomeReplay, OutcomeSkew, OutcomeUnknownPrincipal, OutcomeBadToken, OutcomeRefusedLevel, OutcomePolicyDenied, OutcomeOther} {
		m.handshakes.WithLabelValues(MethodGSSAPI, o)
	}
	// Negotiate has no level, and its requests are decided one by one
	// after the handshake: no refused_level, no policy_denied.
	for _, o := range []string{OutcomeOK, OutcomeReplay, OutcomeSkew, OutcomeUnknownPrincipal, OutcomeBadToken, OutcomeOther} {
		m.handshakes.WithLabelValues(MethodNegotiate, o)
	}
	for _, o := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(o)
		m.keytabLoads.WithLabelValues(o)
	}
	m.reg.MustRegister(m.sessions, m.handshakes, m.hsLatency, m.rules, m.bytes, m.limitRefuse, udpRelayed, udpDropped, m.passwords,
		m.reloads, m.keytabLoads, m.kvnos, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watch registers the series read from the running gateway: live
// connections, recovered panics and, with a Redis replay store, its
// fallbacks and unavailable checks.
func (m *metrics) watch(g *Gateway) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gssocks_sessions_active",
			Help: "Connections being served, handshakes included.",
		}, func() float64 { return float64(g.srv.ActiveSessions()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gssocks_panics_total",
			Help: "Panics recovered in sessions (each ended its session only).",
		}, func() float64 { return float64(g.srv.Panics()) }),
	)
	if r := g.replay.redis; r != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gssocks_replay_store_unavailable_total",
				Help: "AP-REQ checks for which the shared (Redis) replay store did not answer.",
			}, func() float64 { return float64(r.Unavailable()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gssocks_replay_store_fallbacks_total",
				Help: "AP-REQ checks done in the node's local cache because the shared store did not answer (on_unavailable = \"local\").",
			}, func() float64 { return float64(r.Fallbacks()) }),
		)
	}
}

// Handshake implements server.Observer: the latency of every SOCKS5
// context establishment, and the outcome of those the acceptor refused
// (an accepted one is counted when its session ends, once policy and the
// level negotiation had their say).
func (m *metrics) Handshake(err error, d time.Duration) {
	m.hsLatency.Observe(d.Seconds())
	if err != nil {
		m.handshakes.WithLabelValues(MethodGSSAPI, HandshakeOutcome(err)).Inc()
	}
}

// NegotiateHandshake implements server.NegotiateObserver: an HTTP proxy
// connection's authentication, counted when it ends (ok once the client
// is identified). The requests that follow are decided one by one and
// counted by gssocks_sessions_total and gssocks_rule_decisions_total.
func (m *metrics) NegotiateHandshake(err error, d time.Duration) {
	m.hsLatency.Observe(d.Seconds())
	m.handshakes.WithLabelValues(MethodNegotiate, HandshakeOutcome(err)).Inc()
}

// PasswordAuth implements server.PasswordObserver. The outcome comes
// from the server's fixed set: no label takes a client's value.
func (m *metrics) PasswordAuth(outcome string, _ time.Duration) {
	m.passwords.WithLabelValues(outcome).Inc()
}

// PrincipalLimitRefused implements server.Observer.
func (m *metrics) PrincipalLimitRefused() { m.limitRefuse.Inc() }

// UDPRelayed implements server.Observer.
func (m *metrics) UDPRelayed(dir server.UDPDirection) {
	if int(dir) < len(m.udpRelayed) {
		m.udpRelayed[dir].Inc()
	}
}

// UDPDropped implements server.Observer.
func (m *metrics) UDPDropped(reason server.UDPDropReason) {
	if int(reason) < len(m.udpDropped) {
		m.udpDropped[reason].Inc()
	}
}

// sessionEnd counts an ended session from its audit record.
func (m *metrics) sessionEnd(r audit.Record) {
	command, level := r.Command, r.Level
	if command == "" {
		command = "none"
	}
	if level == "" {
		level = "none"
	}
	m.sessions.WithLabelValues(command, level, string(r.EndReason)).Inc()
	m.bytes.WithLabelValues("up", level).Add(float64(r.BytesUp))
	m.bytes.WithLabelValues("down", level).Add(float64(r.BytesDown))
	if r.Rule != "" {
		m.rules.WithLabelValues(m.ruleLabel(r.Rule)).Inc()
	}
	// Enctype is recorded once the acceptor accepted the context: the
	// handshake passed the acceptor, and what followed decides its
	// outcome here.
	if r.Method == MethodGSSAPI && r.Enctype != "" {
		outcome := OutcomeOK
		switch r.EndReason {
		case audit.EndNegotiationFailed:
			outcome = OutcomeRefusedLevel
		case audit.EndDenied:
			outcome = OutcomePolicyDenied
		case audit.EndAuthFailed, audit.EndRefused:
			outcome = OutcomeOther
		}
		m.handshakes.WithLabelValues(MethodGSSAPI, outcome).Inc()
	}
}

// ruleLabel is name, or "other" once MaxRuleLabels names are in use.
func (m *metrics) ruleLabel(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ruleNames[name] {
		return name
	}
	if len(m.ruleNames) >= MaxRuleLabels {
		return "other"
	}
	m.ruleNames[name] = true
	return name
}

// keytabLoaded counts a keytab load and, on success, sets the kvnos per
// accepted service principal (the previous keytab's series are dropped):
// those of the SOCKS acceptor (principals), and of the HTTP proxy's
// (httpPrincipals, none without http_listen). It returns the number of
// principals each accepts (-1, -1 when the load failed).
func (m *metrics) keytabLoaded(kt *gssapi.Keytab, principals, httpPrincipals []string, err error) (socks, http int) {
	if err != nil || kt == nil {
		m.keytabLoads.WithLabelValues("error").Inc()
		return -1, -1
	}
	m.keytabLoads.WithLabelValues("ok").Inc()
	kv := map[string]map[uint32]bool{}
	accepted := func(names []string) int {
		pats, _ := gssapi.ParsePrincipals(names)
		facts, _ := gssapi.KeytabFacts(kt, pats)
		seen := map[string]bool{}
		for _, f := range facts {
			if !f.Accepted {
				continue
			}
			p := f.Principal.String()
			if kv[p] == nil {
				kv[p] = map[uint32]bool{}
			}
			kv[p][f.KVNO] = true
			seen[p] = true
		}
		return len(seen)
	}
	socks = accepted(principals)
	if len(httpPrincipals) > 0 { // none would mean every principal
		http = accepted(httpPrincipals)
	}
	m.kvnos.Reset()
	for p, set := range kv {
		m.kvnos.WithLabelValues(p).Set(float64(len(set)))
	}
	return socks, http
}

func (m *metrics) reloaded(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
}
