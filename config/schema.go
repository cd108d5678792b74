package config

import "github.com/hashicorp/hcl/v2"

// The file as written. Attributes stay *hcl.Attribute so that values are
// checked element by element, each diagnostic pointing at its element.
type fileBody struct {
	Listen   *hcl.Attribute     `hcl:"listen"`
	Kerberos *fileKerberos      `hcl:"kerberos,block"`
	Timeouts *fileTimeouts      `hcl:"timeouts,block"`
	Limits   *fileLimits        `hcl:"limits,block"`
	Log      *fileLog           `hcl:"log,block"`
	Metrics  *fileMetrics       `hcl:"metrics,block"`
	NoAuth   *fileNoAuth        `hcl:"no_auth,block"`
	Password *filePasswordAuth  `hcl:"password_auth,block"` // password.go
	Gateway  *fileGateway       `hcl:"gateway_local,block"`
	Proxy    *fileProxyProtocol `hcl:"proxy_protocol,block"`
	UDP      *fileUDP           `hcl:"udp,block"`
	Realms   []*fileRealm       `hcl:"realm,block"`
	Groups   []*fileGroup       `hcl:"group,block"`
	Rules    []*fileRule        `hcl:"rule,block"`
	// http.go
	HTTPListen *hcl.Attribute `hcl:"http_listen,optional"`
	HTTPProxy  *fileHTTPProxy `hcl:"http_proxy,block"`
}

type fileKerberos struct {
	Keytab          *hcl.Attribute   `hcl:"keytab,optional"`
	Principals      *hcl.Attribute   `hcl:"principals,optional"`
	ClockSkew       *hcl.Attribute   `hcl:"clock_skew,optional"`
	ReplayCacheSize *hcl.Attribute   `hcl:"replay_cache_size,optional"` // deprecated: replay_cache.max_entries
	ReplayCache     *fileReplayCache `hcl:"replay_cache,block"`
	// clients.go
	TrustedRealms       *hcl.Attribute `hcl:"trusted_realms,optional"`
	AllowAnonymous      *hcl.Attribute `hcl:"allow_anonymous,optional"`
	AllowServiceClients *hcl.Attribute `hcl:"allow_service_clients,optional"`
	DefRange            hcl.Range      `hcl:",def_range"`
}

type fileReplayCache struct {
	Store           *hcl.Attribute `hcl:"store,optional"`
	MaxEntries      *hcl.Attribute `hcl:"max_entries,optional"`
	MaxPerPrincipal *hcl.Attribute `hcl:"max_per_principal,optional"`
	Redis           *fileRedis     `hcl:"redis,block"`
	DefRange        hcl.Range      `hcl:",def_range"`
}

type fileRedis struct {
	Address       *hcl.Attribute `hcl:"address,optional"`
	Username      *hcl.Attribute `hcl:"username,optional"`
	PasswordFile  *hcl.Attribute `hcl:"password_file,optional"`
	DB            *hcl.Attribute `hcl:"db,optional"`
	KeyPrefix     *hcl.Attribute `hcl:"key_prefix,optional"`
	Timeout       *hcl.Attribute `hcl:"timeout,optional"`
	OnUnavailable *hcl.Attribute `hcl:"on_unavailable,optional"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

type fileTimeouts struct {
	Negotiation *hcl.Attribute `hcl:"negotiation,optional"`
	Connect     *hcl.Attribute `hcl:"connect,optional"`
	Idle        *hcl.Attribute `hcl:"idle,optional"`
	Bind        *hcl.Attribute `hcl:"bind,optional"`
	Shutdown    *hcl.Attribute `hcl:"shutdown,optional"`
}

type fileLimits struct {
	MaxSessions            *hcl.Attribute `hcl:"max_sessions,optional"`
	MaxHandshakes          *hcl.Attribute `hcl:"max_handshakes,optional"`
	MaxHandshakesPerSource *hcl.Attribute `hcl:"max_handshakes_per_source,optional"`
}

type fileLog struct {
	Level  *hcl.Attribute `hcl:"level,optional"`
	Format *hcl.Attribute `hcl:"format,optional"`
	Audit  *hcl.Attribute `hcl:"audit,optional"`
}

type fileNoAuth struct {
	Sources  *hcl.Attribute `hcl:"sources"`
	SOCKS4   *hcl.Attribute `hcl:"socks4,optional"` // rules.go
	DefRange hcl.Range      `hcl:",def_range"`
}

type fileGateway struct {
	Deny      *hcl.Attribute `hcl:"deny,optional"`
	Addresses *hcl.Attribute `hcl:"addresses,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type fileRealm struct {
	Name                 string         `hcl:"name,label"`
	NameRange            hcl.Range      `hcl:"name,label_range"`
	PAC                  *hcl.Attribute `hcl:"pac,optional"`
	CaseInsensitiveNames *hcl.Attribute `hcl:"case_insensitive_names,optional"`
	DefRange             hcl.Range      `hcl:",def_range"`
}

type fileGroup struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	SIDs      *hcl.Attribute `hcl:"sids"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type fileRule struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`

	Action                  *hcl.Attribute `hcl:"action,optional"`
	Principals              *hcl.Attribute `hcl:"principals,optional"`
	Realms                  *hcl.Attribute `hcl:"realms,optional"`
	Groups                  *hcl.Attribute `hcl:"groups,optional"`
	Sources                 *hcl.Attribute `hcl:"sources,optional"`
	Destinations            *hcl.Attribute `hcl:"destinations,optional"`
	Ports                   *hcl.Attribute `hcl:"ports,optional"`
	Commands                *hcl.Attribute `hcl:"commands,optional"`
	Methods                 *hcl.Attribute `hcl:"methods,optional"` // rules.go
	Protection              *hcl.Attribute `hcl:"protection,optional"`
	NEC                     *hcl.Attribute `hcl:"nec,optional"`
	AuthOnly                *hcl.Attribute `hcl:"auth_only,optional"`
	MaxSessionsPerPrincipal *hcl.Attribute `hcl:"max_sessions_per_principal,optional"`
	IdleTimeout             *hcl.Attribute `hcl:"idle_timeout,optional"`
	AllowAnonymous          *hcl.Attribute `hcl:"allow_anonymous,optional"`
	AllowServiceClients     *hcl.Attribute `hcl:"allow_service_clients,optional"`
	OutliveTicket           *hcl.Attribute `hcl:"outlive_ticket,optional"`
}

type fileMetrics struct {
	Listen   *hcl.Attribute `hcl:"listen,optional"`
	Pprof    *hcl.Attribute `hcl:"pprof,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}
