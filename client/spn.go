package client

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// DefaultService is the service name of the gateway's principal unless
// told otherwise: Dante's client and curl ask for rcmd/<host>. RFC 1961
// §2 suggests "socks".
const DefaultService = "rcmd"

// servicePrincipal is a service principal to ask tickets for.
type servicePrincipal struct {
	name  types.PrincipalName
	realm string // "" for the realm [domain_realm] maps the host to
}

func (p servicePrincipal) String() string {
	s := p.name.PrincipalNameString()
	if p.realm != "" {
		s += "@" + p.realm
	}
	return s
}

// servicePrincipals returns the principals to try for the gateway at
// gwHost, in order, from spec:
//
//   - "" asks rcmd/<canonical gateway host>;
//   - "socks" (a bare service name) asks socks/<canonical gateway host>;
//   - "socks@gw.example.com" (a GSS-API host-based name) asks
//     socks/<canonical gw.example.com>;
//   - "rcmd/gw.example.com" or "rcmd/gw.example.com@REALM" is used as
//     written.
//
// The host is canonicalised as MIT's library does with its defaults
// (dns_canonicalize_hostname = true, rdns = true): the forward lookup's
// canonical name, then the reverse lookup of its first address, lower
// case. krb5.conf's dns_canonicalize_hostname = false uses the name as
// given, "fallback" tries it first and the canonical name second, and
// rdns = false skips the reverse lookup.
func servicePrincipals(ctx context.Context, spec, gwHost string, conf *krb5Conf, r *net.Resolver) ([]servicePrincipal, error) {
	service, host := DefaultService, gwHost
	switch {
	case strings.Contains(spec, "/"):
		name, realm, _ := strings.Cut(spec, "@")
		parts := strings.Split(name, "/")
		for _, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("client: service principal %q has an empty component", spec)
			}
		}
		return []servicePrincipal{{name: types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: parts}, realm: realm}}, nil
	case strings.Contains(spec, "@"):
		service, host, _ = strings.Cut(spec, "@")
	case spec != "":
		service = spec
	}
	if service == "" || host == "" {
		return nil, fmt.Errorf("client: service principal %q needs a service and a host", spec)
	}
	var hosts []string
	switch conf.canon {
	case "false":
		hosts = []string{strings.ToLower(host)}
	case "fallback":
		hosts = []string{strings.ToLower(host)}
		if c := canonicalHost(ctx, host, conf.cfg.LibDefaults.RDNS, r); c != hosts[0] {
			hosts = append(hosts, c)
		}
	default:
		hosts = []string{canonicalHost(ctx, host, conf.cfg.LibDefaults.RDNS, r)}
	}
	out := make([]servicePrincipal, len(hosts))
	for i, h := range hosts {
		out[i] = servicePrincipal{name: types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: []string{service, h}}}
	}
	return out, nil
}

// canonicalHost is MIT's host canonicalisation: a forward lookup for the
// canonical name and an address, then, with rdns, the address's reverse
// name. Lookups that fail leave the name as it was.
func canonicalHost(ctx context.Context, host string, rdns bool, r *net.Resolver) string {
	host = strings.TrimSuffix(host, ".")
	name := host
	var addr netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addr = a
	} else {
		if cname, err := r.LookupCNAME(ctx, host); err == nil && cname != "" {
			name = strings.TrimSuffix(cname, ".")
		}
		if addrs, err := r.LookupNetIP(ctx, "ip", name); err == nil && len(addrs) > 0 {
			addr = addrs[0]
		}
	}
	if rdns && addr.IsValid() {
		if names, err := r.LookupAddr(ctx, addr.Unmap().String()); err == nil && len(names) > 0 {
			name = strings.TrimSuffix(names[0], ".")
		}
	}
	return strings.ToLower(name)
}

// realmOf is the realm of a service principal: as written, else from
// [domain_realm], else the client's.
func (p servicePrincipal) realmOf(conf *krb5Conf, clientRealm string) string {
	if p.realm != "" {
		return p.realm
	}
	if len(p.name.NameString) > 1 {
		if r := conf.cfg.ResolveRealm(p.name.NameString[len(p.name.NameString)-1]); r != "" {
			return r
		}
	}
	return clientRealm
}
