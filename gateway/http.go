package gateway

import (
	"fmt"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
)

// httpAcceptor builds the acceptor of the HTTP proxy listeners
// (server.Settings.HTTPAcceptor): the HTTP/ principals of
// config.Config.HTTPPrincipals, the keytab and the replay store of the
// SOCKS acceptor, and the same client rules, so that a token is judged as
// a SOCKS AP-REQ is and an authenticator accepted through one front door
// is a replay through the other. nil without http_listen. Each HTTP
// principal needs an AES key: the error wraps ErrKeytab otherwise.
func httpAcceptor(cfg *config.Config, kt *gssapi.Keytab, replay gssapi.ReplayStore) (*gssapi.Acceptor, error) {
	if len(cfg.HTTPListen) == 0 || kt == nil {
		return nil, nil
	}
	names := cfg.HTTPPrincipals(gssapi.KeytabPrincipals(kt))
	if len(names) == 0 {
		return nil, fmt.Errorf("%w %q: no %s/ principal for the HTTP proxy (http_listen)", ErrKeytab, cfg.Kerberos.Keytab, config.HTTPProxyService)
	}
	pats, err := gssapi.ParsePrincipals(names)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeytab, err)
	}
	if _, err := gssapi.KeytabFacts(kt, pats); err != nil {
		return nil, fmt.Errorf("%w %q (HTTP proxy): %w", ErrKeytab, cfg.Kerberos.Keytab, err)
	}
	acc, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{
		Keytab:              kt,
		Principals:          names,
		ClockSkew:           cfg.Kerberos.ClockSkew,
		ReplayCache:         replay,
		TrustedRealms:       cfg.Kerberos.TrustedRealms,
		AllowAnonymous:      cfg.Kerberos.AllowAnonymous,
		AllowServiceClients: cfg.Kerberos.AllowServiceClients,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeytab, err)
	}
	return acc, nil
}

// httpKeytabPrincipals are the principals the HTTP proxy accepts with kt:
// nil without http_listen or keytab.
func httpKeytabPrincipals(cfg *config.Config, kt *gssapi.Keytab) []string {
	if len(cfg.HTTPListen) == 0 || kt == nil {
		return nil
	}
	return cfg.HTTPPrincipals(gssapi.KeytabPrincipals(kt))
}

// endpoint is one listener the configuration asks for.
type endpoint struct {
	key  string // in Gateway.lns: the address, "http " + address for HTTP
	addr string
	http bool
}

// endpoints lists the SOCKS listeners of cfg, then the HTTP proxy ones.
func endpoints(cfg *config.Config) []endpoint {
	out := make([]endpoint, 0, len(cfg.Listen)+len(cfg.HTTPListen))
	for _, a := range cfg.Listen {
		out = append(out, endpoint{key: a, addr: a})
	}
	for _, a := range cfg.HTTPListen {
		out = append(out, endpoint{key: "http " + a, addr: a, http: true})
	}
	return out
}

// HTTPAddrs are the bound addresses of the HTTP proxy listeners, in the
// order of http_listen.
func (g *Gateway) HTTPAddrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, e := range endpoints(g.cfg) {
		if ln := g.lns[e.key]; ln != nil && e.http {
			out = append(out, ln.Addr().String())
		}
	}
	return out
}
