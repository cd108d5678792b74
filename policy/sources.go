package policy

import "net/netip"

// Sources is a set of client networks: a rule's sources, or the networks
// allowed to skip authentication (no_auth, SOCKS method 00). It is the one
// place where a client address is tested against configured networks, so
// that every such test treats addresses alike.
type Sources []netip.Prefix

// Contains reports whether a lies in one of the networks. The address is
// normalised first: an IPv4-mapped IPv6 address (::ffff:10.1.2.3, as a
// dual-stack listener reports IPv4 clients) is taken as the IPv4 address,
// and an IPv6 zone (fe80::1%eth0, as the kernel reports link-local
// clients) is dropped, because networks are written without zones. Empty
// Sources contain nothing.
func (s Sources) Contains(a netip.Addr) bool {
	a = normAddr(a)
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func normAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
