package danteconf

import (
	"net/netip"
	"slices"
)

// prefixSet is a set of IP addresses written as networks. Dante's client
// rules are first-match over networks; folding them into gssocks's rules
// takes intersections and differences of such sets, which stay sets of
// networks because two networks are either nested or disjoint.
type prefixSet []netip.Prefix

// everyAddress is every IPv4 and every IPv6 address.
func everyAddress() prefixSet {
	return prefixSet{netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
}

// covers reports whether a holds every address of b.
func covers(a, b netip.Prefix) bool {
	return a.Addr().Is4() == b.Addr().Is4() && a.Bits() <= b.Bits() && a.Contains(b.Addr())
}

// norm sorts s and drops the networks inside others.
func (s prefixSet) norm() prefixSet {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	kept := out[:0]
	for _, p := range out {
		if n := len(kept); n > 0 && covers(kept[n-1], p) {
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

// union is s and t.
func (s prefixSet) union(t prefixSet) prefixSet {
	return append(slices.Clone(s), t...).norm()
}

// intersect is the addresses in both s and t.
func (s prefixSet) intersect(t prefixSet) prefixSet {
	var out prefixSet
	for _, a := range s {
		for _, b := range t {
			switch {
			case covers(b, a):
				out = append(out, a)
			case covers(a, b):
				out = append(out, b)
			}
		}
	}
	return out.norm()
}

// subtract is the addresses of s not in t, or false when writing it takes
// more than limit networks (taking a /32 out of a /8 leaves 24).
func (s prefixSet) subtract(t prefixSet, limit int) (prefixSet, bool) {
	cur := s.norm()
	for _, b := range t {
		var next prefixSet
		for _, a := range cur {
			switch {
			case covers(b, a):
				// all of a goes
			case covers(a, b):
				next = append(next, split(a, b)...)
			default:
				next = append(next, a)
			}
			if len(next) > limit {
				return nil, false
			}
		}
		cur = next
	}
	return cur.norm(), true
}

// split returns the networks that make up a without b, for b strictly
// inside a: at each length from a's to b's, the half not holding b.
func split(a, b netip.Prefix) prefixSet {
	var out prefixSet
	for cur := a; cur.Bits() < b.Bits(); {
		lo := netip.PrefixFrom(cur.Addr(), cur.Bits()+1)
		hi := netip.PrefixFrom(setBit(cur.Addr(), cur.Bits()), cur.Bits()+1)
		if lo.Contains(b.Addr()) {
			out, cur = append(out, hi), lo
		} else {
			out, cur = append(out, lo), hi
		}
	}
	return out
}

// setBit sets bit i (0 is the most significant) of a.
func setBit(a netip.Addr, i int) netip.Addr {
	if a.Is4() {
		b := a.As4()
		b[i/8] |= 0x80 >> (i % 8)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	b[i/8] |= 0x80 >> (i % 8)
	return netip.AddrFrom16(b)
}

// isEvery reports whether s is every address of both families.
func (s prefixSet) isEvery() bool {
	var v4, v6 bool
	for _, p := range s {
		if p.Bits() == 0 {
			v4, v6 = v4 || p.Addr().Is4(), v6 || p.Addr().Is6()
		}
	}
	return v4 && v6
}

// strings renders the networks, single addresses without a length.
func (s prefixSet) strings() []string {
	out := make([]string, len(s))
	for i, p := range s {
		if p.IsSingleIP() {
			out[i] = p.Addr().String()
		} else {
			out[i] = p.String()
		}
	}
	return out
}
