package config

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/hashicorp/hcl/v2"
)

// The HTTP proxy front door: http_listen and the http_proxy block.
//
//	http_listen = ["127.0.0.1:3128"]
//	http_proxy {
//	  principals = ["HTTP/gw.example.com@EXAMPLE.COM"]
//	}
//
// Browsers and curl name the proxy's service HTTP/<proxy host> (RFC 4559
// §4; the host as the client was told it, canonicalised by its Kerberos
// library), so the keytab needs a key for that principal besides the SOCKS
// ones.

// HTTPProxyService is the service name of the principals an HTTP proxy
// is known by to Negotiate clients (RFC 4559 §4: "HTTP/hostname").
const HTTPProxyService = "HTTP"

// HTTPProxy is the http_proxy block.
type HTTPProxy struct {
	// Principals are the service principals accepted from HTTP clients,
	// "HTTP/host" or "HTTP/host@REALM"; empty: every HTTP/ principal the
	// keytab holds when the configuration is loaded.
	Principals []string
}

type fileHTTPProxy struct {
	Principals *hcl.Attribute `hcl:"principals,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

// httpProxy decodes http_listen and the http_proxy block.
func (d *decoder) httpProxy(fb *fileBody, cfg *Config) {
	if a := fb.HTTPListen; a != nil {
		if !isEmptyList(a) {
			// An empty list is the listener off, as no attribute is.
			cfg.HTTPListen = d.listen(a)
		}
		quiet, _ := (&decoder{}).list(a)
		for _, it := range quiet {
			if slices.Contains(cfg.Listen, it.s) {
				d.errorf(it.rng, "Address used twice",
					"%q is a SOCKS listen address already; the HTTP proxy needs a port of its own (3128 is usual).", it.s)
			}
		}
	}
	if h := fb.HTTPProxy; h != nil {
		if fb.HTTPListen == nil {
			d.warnf(h.DefRange, "HTTP proxy block without a listener",
				"http_proxy configures the HTTP proxy, which serves only on the addresses of http_listen; there are none.")
		}
		items, _ := d.list(h.Principals)
		for _, it := range items {
			if why := checkServicePrincipal(it.s); why != "" {
				d.errorf(it.rng, "Invalid service principal", "%q %s", it.s, why)
				continue
			}
			if svc, _, _ := strings.Cut(it.s, "/"); svc != HTTPProxyService {
				d.errorf(it.rng, "Not an HTTP service principal",
					"%q is not an %s/ principal: Negotiate clients ask for HTTP/<proxy host> (RFC 4559), so no ticket would name it.", it.s, HTTPProxyService)
				continue
			}
			cfg.HTTPProxy.Principals = append(cfg.HTTPProxy.Principals, it.s)
		}
	}
}

// HTTPPrincipals are the service principals the HTTP proxy accepts with
// keytab have (gssapi.KeytabPrincipals): the configured ones, or else
// every HTTP/ principal in it.
func (c *Config) HTTPPrincipals(have []gssapi.Principal) []string {
	if len(c.HTTPProxy.Principals) > 0 {
		return slices.Clone(c.HTTPProxy.Principals)
	}
	var out []string
	for _, p := range have {
		if svc, _, _ := strings.Cut(p.Name, "/"); svc == HTTPProxyService && !slices.Contains(out, p.String()) {
			out = append(out, p.String())
		}
	}
	return out
}

// checkHTTPKeytab refuses an HTTP listener whose keytab has no AES key for
// an HTTP/ principal it would accept: every Negotiate client would get
// 407 for ever. The keytab's own problems are checkKeytab's.
func (d *decoder) checkHTTPKeytab(cfg *Config, fb *fileBody, src keytabSource) {
	if len(cfg.HTTPListen) == 0 || cfg.Kerberos.Keytab == "" {
		return
	}
	kt, err := gssapi.LoadKeytab(cfg.Kerberos.Keytab)
	if err != nil {
		return // diagnosed by checkKeytab
	}
	rng := fb.HTTPListen.Expr.Range()
	if fb.HTTPProxy != nil && fb.HTTPProxy.Principals != nil {
		rng = fb.HTTPProxy.Principals.Expr.Range()
	}
	names := cfg.HTTPPrincipals(gssapi.KeytabPrincipals(kt))
	if len(names) == 0 {
		d.errorf(rng, "No HTTP service key",
			"The HTTP proxy accepts tickets for %s/<proxy host> (RFC 4559), and the keytab %q%s holds no %s/ principal. Add one (e.g. kadmin: ktadd -k <keytab> HTTP/gw.example.com) or remove http_listen.",
			HTTPProxyService, cfg.Kerberos.Keytab, src.origin, HTTPProxyService)
		return
	}
	pats, err := gssapi.ParsePrincipals(names)
	if err != nil {
		return // diagnosed by httpProxy
	}
	_, err = gssapi.KeytabFacts(kt, pats)
	var missing []string
	for _, e := range unjoinErr(err) {
		if ke, ok := errors.AsType[*gssapi.KeytabKeyError](e); ok {
			missing = append(missing, strconv.Quote(ke.Principal.String()))
		}
	}
	switch {
	case len(missing) == len(pats):
		d.errorf(rng, "No usable HTTP service key",
			"The keytab %q%s has no AES key for %s: no Negotiate ticket could be accepted.",
			cfg.Kerberos.Keytab, src.origin, strings.Join(missing, ", "))
	case len(missing) > 0:
		d.warnf(rng, "HTTP principal not in keytab",
			"The keytab %q%s has no AES key for %s: tickets for it will be refused.",
			cfg.Kerberos.Keytab, src.origin, strings.Join(missing, ", "))
	}
}

// unjoinErr returns the errors an errors.Join holds, err alone, or none.
func unjoinErr(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
