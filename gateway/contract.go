package gateway

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gssocks/gssocks/config"
)

// ReloadEffect says what a reload does with a configuration field.
type ReloadEffect int

const (
	// Applied: the new value is in force once the reload succeeds (for
	// the sessions that start afterwards, unless How says otherwise).
	Applied ReloadEffect = iota
	// RestartRequired: the running value stays until the process
	// restarts; a reload that changes it logs a warning naming it.
	RestartRequired
)

func (e ReloadEffect) String() string {
	if e == RestartRequired {
		return "restart required"
	}
	return "applied"
}

// ReloadRule is one row of the reload contract.
type ReloadRule struct {
	Field  string // path in config.Config, e.g. "Kerberos.ReplayCacheSize"
	Name   string // as written in the file, e.g. "kerberos.replay_cache_size"
	Effect ReloadEffect
	How    string // what a reload does with it
}

// reloadContract has one row per leaf field of config.Config; a test
// walks the struct by reflection so that a new field cannot be left out.
var reloadContract = []ReloadRule{
	{"File", "(the file itself)", Applied, "SIGHUP reads this file again"},
	{"Listen", "listen", Applied, "new addresses are bound, removed ones closed; unchanged ones keep their socket"},
	{"Kerberos.Keytab", "kerberos.keytab", Applied, "the keytab is read again (also polled every 2 s and on SIGHUP)"},
	{"Kerberos.Principals", "kerberos.principals", Applied, "new acceptor for new sessions"},
	{"Kerberos.TrustedRealms", "kerberos.trusted_realms", Applied, "new acceptor for new sessions"},
	{"Kerberos.AllowAnonymous", "kerberos.allow_anonymous", Applied, "new acceptor for new sessions"},
	{"Kerberos.AllowServiceClients", "kerberos.allow_service_clients", Applied, "new acceptor for new sessions"},
	{"Kerberos.ClockSkew", "kerberos.clock_skew", Applied, "new acceptor for new sessions"},
	{"Kerberos.ReplayCacheSize", "kerberos.replay_cache_size", RestartRequired,
		"the replay cache is kept across reloads so that a reload cannot reopen a replay window; its size is fixed at start"},
	{"Kerberos.ReplayCache", "kerberos.replay_cache", RestartRequired,
		"the replay store (local cache, Redis client) is kept across reloads so that a reload cannot reopen a replay window"},
	{"Timeouts.Negotiation", "timeouts.negotiation", Applied, "new sessions"},
	{"Timeouts.Connect", "timeouts.connect", Applied, "new sessions"},
	{"Timeouts.Idle", "timeouts.idle", Applied, "new sessions"},
	{"Timeouts.Bind", "timeouts.bind", Applied, "new sessions"},
	{"Timeouts.Shutdown", "timeouts.shutdown", Applied, "the next stop drains for the new value"},
	{"Limits.MaxSessions", "limits.max_sessions", Applied, "counted against from the next session on"},
	{"Limits.MaxHandshakes", "limits.max_handshakes", Applied, "counted against from the next connection on"},
	{"Limits.MaxHandshakesPerSource", "limits.max_handshakes_per_source", Applied, "counted against from the next connection on"},
	{"Log.Level", "log.level", Applied, "every line written after the reload, running sessions' included"},
	{"Log.Format", "log.format", Applied, "every line written after the reload, running sessions' included"},
	{"Log.Audit", "log.audit", Applied, "records of sessions ending after the reload go to the new path (opened on reload); the same path is reopened on every SIGHUP"},
	{"Metrics.Listen", "metrics.listen", Applied, "a new address is bound before the reload commits and the old listener closed; the counters are kept"},
	{"Metrics.Pprof", "metrics.pprof", Applied, "/debug/pprof/ is served or refused (404) from the next request on"},
	{"NoAuth", "no_auth", Applied, "new sessions"},
	{"NoAuthSOCKS4", "no_auth.socks4", Applied, "new connections"},
	{"PasswordAuth", "password_auth", Applied,
		"new sessions (krb5.conf read again); the failure counts and verifications in flight are kept, cached successes are not reused"},
	{"GatewayLocal", "gateway_local", Applied, "compiled into the engine of new sessions"},
	{"LocalAddrs", "(the host's interface addresses)", Applied, "listed again on every reload, for the gateway-local deny"},
	{"ProxyProtocol.Trusted", "proxy_protocol.trusted", Applied,
		"connections accepted after the reload: PROXY headers required from the new trusted networks, refused from others"},
	{"UDP.Advertise", "udp.advertise", Applied, "UDP ASSOCIATE replies of new sessions"},
	{"HTTPListen", "http_listen", Applied, "new HTTP proxy addresses are bound, removed ones closed; unchanged ones keep their socket"},
	{"HTTPProxy.Principals", "http_proxy.principals", Applied, "new HTTP acceptor for new connections (without the attribute: the keytab's HTTP/ principals, listed again)"},
	{"Realms", "realm", Applied, "compiled into the engine: identities of new sessions"},
	{"Groups", "group", Applied, "compiled into the rules of new sessions"},
	{"Engine", "rule", Applied, "new sessions; running sessions keep the rules they started with"},
}

// ReloadContract returns the reload contract: every field of
// config.Config with what SIGHUP does with it.
func ReloadContract() []ReloadRule { return slices.Clone(reloadContract) }

// restartRequired lists the fields whose value differs between old and
// new that a reload does not apply, as "name (running X, file Y)".
func restartRequired(old, cur *config.Config) []string {
	var out []string
	for _, r := range reloadContract {
		if r.Effect != RestartRequired {
			continue
		}
		a, b := fieldByPath(old, r.Field), fieldByPath(cur, r.Field)
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out = append(out, fmt.Sprintf("%s (running %v, file %v)", r.Name, a.Interface(), b.Interface()))
		}
	}
	return out
}

// fieldByPath is the field of cfg at the dotted path.
func fieldByPath(cfg *config.Config, path string) reflect.Value {
	v := reflect.ValueOf(cfg).Elem()
	for name := range strings.SplitSeq(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}
