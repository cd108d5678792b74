package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Config is a validated configuration: the runtime values of one file.
// It is immutable once loaded: a reload builds a new Config and swaps it
// in whole.
type Config struct {
	File     string   // the file name the Config was loaded from
	Listen   []string // host:port addresses; at least one
	Kerberos Kerberos
	Timeouts Timeouts
	Limits   Limits
	Log      Log
	Metrics  Metrics
	// NoAuth lists the source networks allowed to use SOCKS method 00 (no
	// authentication); empty by default.
	NoAuth policy.Sources
	// NoAuthSOCKS4 (no_auth { socks4 = true }) also accepts SOCKS4 and
	// SOCKS4a from the NoAuth sources; off by default, and everywhere
	// else SOCKS4 is refused (reply 0x5b).
	NoAuthSOCKS4 bool

	// PasswordAuth is the password_auth block: RFC 1929 username/password
	// checked with the KDC, off by default (password.go).
	PasswordAuth PasswordAuth
	Groups       map[string][]string // group alias -> SIDs, from the group blocks
	// GatewayLocal is the gateway_local block: the built-in deny of
	// destinations on the gateway itself (on by default) and more
	// networks of the gateway.
	GatewayLocal policy.GatewayLocal
	// LocalAddrs are the gateway's interface addresses found when the
	// file was loaded (Loader.LocalAddrs); gateway-local too.
	LocalAddrs []netip.Addr
	// ProxyProtocol is the proxy_protocol block (off by default).
	ProxyProtocol ProxyProtocol
	// UDP is the udp block.
	UDP UDP
	// Realms are the realm blocks, in file order.
	Realms []policy.Realm
	// HTTPListen are the addresses of the HTTP proxy listener (CONNECT
	// and absolute-form forwarding authenticated with Negotiate, RFC
	// 4559); empty: no such listener. See http.go.
	HTTPListen []string
	// HTTPProxy is the http_proxy block.
	HTTPProxy HTTPProxy
	// Engine decides by the file's rules, in file order (Engine.Rules
	// lists them, each with its position in the file), with the
	// gateway-local settings, LocalAddrs and Realms.
	Engine *policy.Engine
}

// Kerberos configures the GSS-API acceptor.
type Kerberos struct {
	// Keytab is the path of the service keytab: the keytab attribute
	// (relative to the configuration file's directory) or else
	// $KRB5_KTNAME, without its "FILE:" prefix.
	Keytab string
	// Principals restricts the acceptor to these service principals
	// ("rcmd/gw.example.com" or with "@REALM"); empty means any principal
	// in the keytab.
	Principals []string
	ClockSkew  time.Duration // default 5m
	// ReplayCache is the replay_cache block (or the deprecated
	// replay_cache_size attribute).
	ReplayCache ReplayCache
	// ReplayCacheSize is ReplayCache.MaxEntries.
	//
	// Deprecated: use ReplayCache.MaxEntries.
	ReplayCacheSize int
	// TrustedRealms are the realms, besides the service's own, whose
	// clients are accepted and whose realms a ticket may have transited
	// (gssapi.AcceptorConfig.TrustedRealms); empty: only the service's
	// realm.
	TrustedRealms []string
	// AllowAnonymous accepts anonymous tickets (RFC 6112), which allow
	// rules must still opt in to (policy.Rule.AllowAnonymous).
	AllowAnonymous bool
	// AllowServiceClients accepts tickets of service principals
	// (host/ws1, ...; never krbtgt), which allow rules must still opt in
	// to (policy.Rule.AllowServiceClients).
	AllowServiceClients bool
}

// Replay stores (ReplayCache.Store).
const (
	ReplayStoreLocal = "local" // this process's memory (the default)
	ReplayStoreRedis = "redis" // a Redis server shared by the gateway nodes
)

// What a Redis replay store does when Redis cannot answer
// (ReplayRedis.OnUnavailable).
const (
	ReplayFailClosed    = "fail-closed" // refuse the AP-REQ (the default)
	ReplayFallBackLocal = "local"       // let this node's own cache decide
)

// ReplayCache configures the store that remembers AP-REQ authenticators so
// that a replayed one is refused (kerberos { replay_cache { ... } }). The
// local cache always exists: it is the store with "local", and the
// fallback of a Redis store with on_unavailable = "local".
type ReplayCache struct {
	// Store is ReplayStoreLocal (default) or ReplayStoreRedis.
	Store string
	// MaxEntries caps the local cache's live authenticators; 0: the gssapi
	// package's default (gssapi.DefaultReplayCacheEntries).
	MaxEntries int
	// MaxPerPrincipal caps one client principal's live authenticators, in
	// the local cache and across the nodes in Redis; 0: the gssapi
	// package's default share of MaxEntries.
	MaxPerPrincipal int
	// Redis is the redis block; set when Store is ReplayStoreRedis.
	Redis ReplayRedis
}

// ReplayRedis is the Redis server of a shared replay store. Zero values
// mean the replay package's defaults. Comparable: a reload may keep the
// store when the values are equal.
type ReplayRedis struct {
	// Address is host:port, or the absolute path of a Unix socket.
	Address string
	// Username is the Redis 6 ACL user; "" for the default user.
	Username string
	// PasswordFile holds the password (one line); absolute, or resolved
	// against the configuration file's directory. "" for none.
	PasswordFile string
	// DB is the database number.
	DB int
	// KeyPrefix starts every key; "" for the default ("gssocks:replay:").
	KeyPrefix string
	// Timeout bounds each check; 0 for the default (200ms).
	Timeout time.Duration
	// OnUnavailable is ReplayFailClosed (default) or ReplayFallBackLocal.
	OnUnavailable string
}

// Timeouts are the session timeouts.
type Timeouts struct {
	Negotiation time.Duration // method selection and GSS-API subnegotiation; default 10s
	Connect     time.Duration // outbound connect; default 30s
	Idle        time.Duration // no data in either direction; default 5m; 0 disables
	Bind        time.Duration // waiting for the inbound connection of a BIND; default 2m
	Shutdown    time.Duration // draining sessions on stop; default 30s
}

// Limits bound resource use.
type Limits struct {
	// MaxSessions bounds concurrent authenticated sessions (and no_auth
	// ones); 0 is unlimited; default 4096.
	MaxSessions int
	// MaxHandshakes bounds the connections still in the handshake
	// (greeting, GSS-API context, protection level), which do not count
	// against MaxSessions, so that silent connections cannot starve
	// authenticated users; 0 is unlimited; default 256.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds them per client: per IPv4 address,
	// per IPv6 /64; 0 is unlimited; default 16.
	MaxHandshakesPerSource int
}

// Metrics is the metrics block: the admin listener serving /metrics
// (Prometheus text format), /healthz, /readyz, /sessions and, with Pprof,
// /debug/pprof/. Listen "" (no block) means no such listener.
type Metrics struct {
	Listen string // host:port
	Pprof  bool
}

// Log configures logging.
type Log struct {
	Level  string // debug, info, warn or error; default info
	Format string // text or json; default text
	Audit  string // "" for the main log, or the path of a separate audit log
}

// Defaults for attributes the file leaves out.
const (
	DefaultClockSkew   = 5 * time.Minute
	DefaultNegotiation = 10 * time.Second
	DefaultConnect     = 30 * time.Second
	DefaultIdle        = 5 * time.Minute
	DefaultBind        = 2 * time.Minute
	DefaultShutdown    = 30 * time.Second
	DefaultMaxSessions = 4096

	DefaultMaxHandshakes          = 256
	DefaultMaxHandshakesPerSource = 16
)

// Loader loads configuration files. The zero value reads the environment
// and checks the keytab; a Loader holds no state between calls and is safe
// for concurrent use.
type Loader struct {
	// Getenv looks up $KRB5_KTNAME; nil means os.Getenv.
	Getenv func(string) string
	// BaseDir is the directory a relative keytab attribute is resolved
	// against; "" means the configuration file's directory.
	BaseDir string
	// SkipKeytabCheck leaves the keytab alone: no check that it is set,
	// exists, is private and holds the principals; nor is the Redis
	// password file checked. For tests and fuzzing.
	SkipKeytabCheck bool
	// LocalAddrs lists the gateway's own addresses, which the built-in
	// gateway-local deny refuses as destinations; nil means
	// InterfaceAddrs. An error fails the load while the deny is on.
	LocalAddrs func() ([]netip.Addr, error)
}

// InterfaceAddrs returns the addresses of the host's network interfaces,
// canonical (policy.CanonicalAddr): what Loader.LocalAddrs lists by
// default, and what a server refreshing its engine
// (policy.Engine.ReplaceLocalAddrs) lists when its interfaces change.
func InterfaceAddrs() ([]netip.Addr, error) {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("config: list interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, ifa := range ifas {
		var ip net.IP
		switch a := ifa.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a)
		}
	}
	return policy.CanonicalAddrs(out), nil
}

// Load reads, decodes and validates the configuration file at path. The
// Config is nil when the diagnostics hold errors. Use a Loader to get the
// parsed files for FormatDiagnostics.
func Load(path string) (*Config, hcl.Diagnostics) {
	cfg, _, diags := Loader{}.Load(path)
	return cfg, diags
}

// Parse is Load on a file's contents; filename names it in diagnostics and
// is the base for a relative keytab path.
func Parse(src []byte, filename string) (*Config, hcl.Diagnostics) {
	cfg, _, diags := Loader{}.Parse(src, filename)
	return cfg, diags
}

// Load is like the package's Load, and also returns the parsed files, which
// FormatDiagnostics needs to show source snippets.
func (l Loader) Load(path string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the configuration file",
			Detail:   err.Error() + ".",
		}}
	}
	return l.Parse(src, path)
}

// Parse is like the package's Parse, and also returns the parsed files.
// Files whose name ends in ".json" are read as HCL's JSON syntax.
func (l Loader) Parse(src []byte, filename string) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	// A fresh parser each time: hclparse caches files by name, which would
	// hand a reload the old text.
	p := hclparse.NewParser()
	var file *hcl.File
	var diags hcl.Diagnostics
	if strings.HasSuffix(filename, ".json") {
		file, diags = p.ParseJSON(src, filename)
	} else {
		file, diags = p.ParseHCL(src, filename)
	}
	if diags.HasErrors() || file == nil {
		// The body of a file that does not parse is a guess; decoding it
		// would bury the syntax error under consequences of it.
		return nil, p.Files(), diags
	}

	d := &decoder{
		getenv:  l.Getenv,
		baseDir: l.BaseDir,
		diags:   diags,
	}
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	if d.baseDir == "" {
		d.baseDir = filepath.Dir(filename)
	}
	fileStart := file.Body.MissingItemRange()
	var fb fileBody
	d.diags = append(d.diags, gohcl.DecodeBody(file.Body, nil, &fb)...)
	cfg := d.config(&fb, fileStart)
	d.httpProxy(&fb, cfg)
	d.checkFrontDoors(&fb, cfg)
	cfg.File = filename
	if !d.diags.HasErrors() {
		// On a broken file these would guess at rules half read.
		d.lint(fileStart, cfg)
	}
	ktSrc := d.resolveKeytab(cfg, &fb, fileStart)
	if !l.SkipKeytabCheck {
		d.checkKeytab(cfg, &fb, ktSrc)
		d.checkHTTPKeytab(cfg, &fb, ktSrc)
		d.checkPasswordKeytab(cfg, &fb, ktSrc)
		d.checkRedisPasswordFile(cfg, &fb)
	}

	diags = sortDiagnostics(d.diags)
	if diags.HasErrors() {
		return nil, p.Files(), diags
	}
	if !cfg.GatewayLocal.Off {
		list := l.LocalAddrs
		if list == nil {
			list = InterfaceAddrs
		}
		addrs, err := list()
		if err != nil {
			d.errorf(gatewayRange(&fb, fileStart), "Cannot list the gateway's addresses",
				"The gateway-local deny refuses the gateway's own addresses as destinations, so it must know them: %s.", err)
			diags = sortDiagnostics(d.diags)
			return nil, p.Files(), diags
		}
		cfg.LocalAddrs = policy.CanonicalAddrs(addrs)
	}
	eng, err := policy.NewEngine(d.rules,
		policy.WithGatewayLocal(cfg.GatewayLocal),
		policy.WithLocalAddrs(cfg.LocalAddrs),
		policy.WithRealms(cfg.Realms))
	if err != nil {
		// The decoder checks more than NewEngine does, so this is a bug
		// here; fail closed rather than serve half a policy.
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Rules rejected by the policy engine",
			Detail:   err.Error() + ".",
			Subject:  fileStart.Ptr(),
		})
		return nil, p.Files(), diags
	}
	cfg.Engine = eng
	return cfg, p.Files(), diags
}
