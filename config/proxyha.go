package config

import (
	"net/netip"

	"github.com/hashicorp/hcl/v2"
)

// ProxyProtocol is the proxy_protocol block: which peers may open a
// connection with a PROXY protocol header (v1 text or v2 binary, as
// HAProxy's send-proxy / send-proxy-v2 write it). From a trusted peer the
// header is required and its source address is the client's for policy,
// no_auth, handshake caps, UDP source binding and the audit record; from
// any other peer a connection that starts with a header is closed. Empty
// Trusted (the default): PROXY protocol is off and connections are taken
// as they come.
type ProxyProtocol struct {
	Trusted []netip.Prefix
}

// Enabled says whether any peer is trusted to send a PROXY header.
func (p ProxyProtocol) Enabled() bool { return len(p.Trusted) > 0 }

// UDP is the udp block.
type UDP struct {
	// Advertise, when valid, is the address put in BND.ADDR of every UDP
	// ASSOCIATE reply (RFC 1928 §7) instead of the relay socket's local
	// address: the address clients reach this node's relay by, such as
	// the node's public address behind an L4 balancer that forwards TCP
	// only. The relay socket is still bound to the local address of the
	// client's TCP connection, on a random port, and the reply carries
	// that port.
	Advertise netip.Addr
}

type fileProxyProtocol struct {
	Trusted  *hcl.Attribute `hcl:"trusted"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type fileUDP struct {
	Advertise *hcl.Attribute `hcl:"advertise,optional"`
}

func (d *decoder) proxyProtocol(p *fileProxyProtocol, out *ProxyProtocol) {
	if p.Trusted == nil {
		d.missing(p.DefRange, "trusted", `the balancers' networks whose PROXY headers are believed, like trusted = ["10.0.0.5/32"]`)
		return
	}
	items, _ := d.list(p.Trusted)
	for _, it := range items {
		pf, ok := d.prefix(it, "network")
		if !ok {
			continue
		}
		if pf.Bits() == 0 {
			d.warnf(it.rng, "PROXY headers trusted from anywhere",
				"%s lets every %s peer claim any client address, which defeats source rules, no_auth and per-source limits: list the balancers' addresses only.",
				pf, ipVersion(pf.Addr()))
		}
		out.Trusted = append(out.Trusted, pf)
	}
}

func (d *decoder) udp(u *fileUDP, out *UDP) {
	if u.Advertise == nil {
		return
	}
	it, ok := d.str(u.Advertise)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(it.s)
	if err != nil || a.Zone() != "" {
		d.errorf(it.rng, "Invalid address", `%q is not an IP address like "203.0.113.10" or "2001:db8::10" (no port: the relay port is chosen per association).`, it.s)
		return
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		d.errorf(it.rng, "Invalid address", "%s cannot be advertised: clients must be able to send datagrams to it.", a)
		return
	}
	out.Advertise = a
}
