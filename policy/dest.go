package policy

import (
	"net/netip"
	"strconv"
	"strings"
)

// Destinations as the kernel will reach them. A SOCKS5 destination
// (RFC 1928 §4 DST.ADDR, §7 the UDP request header) comes as an IPv4
// address, an IPv6 address or a name, and the same host can be written
// many ways: ::ffff:127.0.0.1 and ::127.0.0.1 are 127.0.0.1 to a
// dual-stack socket or an automatic tunnel, and the name "127.1" (or
// "0x7f.1", "2130706433", "0177.0.0.1") is 127.0.0.1 to glibc's
// getaddrinfo. Policy must judge what will be dialled, so every form
// goes through one normaliser: NormalizeDest for what the client sent,
// CanonicalAddr for every address (a resolver's answers, a BIND peer, a
// UDP header's address), and the server dials what they return.

// Dest is a SOCKS destination normalised to what the gateway will dial:
// either a name still to resolve (Host), or an address (Addr). A name
// that is an address literal in any form a resolver would read as an
// address is an address here, never a name.
type Dest struct {
	// Host is the name to resolve, in the form rules compare names
	// (NormalizeHost: lower case, no trailing dot); "" when Addr is set.
	Host string
	// Addr is the canonical address (CanonicalAddr); invalid when Host
	// is set.
	Addr netip.Addr
}

// IsName reports whether d is a name still to resolve.
func (d Dest) IsName() bool { return d.Host != "" }

// FQDN is the name to hand the resolver: absolute, with a trailing dot,
// so that no search domain of the gateway's resolv.conf turns "db" into
// "db.corp.example", a name the rules did not judge. "" for an address.
func (d Dest) FQDN() string {
	if d.Host == "" {
		return ""
	}
	return d.Host + "."
}

func (d Dest) String() string {
	if d.Host != "" {
		return d.Host
	}
	return d.Addr.String()
}

// NormalizeDest normalises a destination as the client sent it: host
// from a domain name (ATYP 03) or addr from an IPv4 or IPv6 address
// (ATYP 01, 04), in a request, a UDP request header or a BIND request.
// When host is not empty it wins: a host that ParseAddrLiteral reads as
// an address becomes that address, otherwise it is a name (normalised
// by NormalizeHost). An address is made canonical by CanonicalAddr. The
// zero Dest (from an empty host and an invalid addr, or the host ".")
// is no destination: the server answers it with host unreachable.
func NormalizeDest(host string, addr netip.Addr) Dest {
	if host != "" {
		if a, ok := ParseAddrLiteral(host); ok {
			return Dest{Addr: a}
		}
		h := NormalizeHost(host)
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			// RFC 6761 §6.3: localhost names are the loopback address,
			// whatever a resolver would say (and no query leaves the
			// host for them).
			return Dest{Addr: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
		}
		return Dest{Host: h}
	}
	if !addr.IsValid() {
		return Dest{}
	}
	return Dest{Addr: CanonicalAddr(addr)}
}

// CanonicalAddr returns the address the kernel reaches when a is
// dialled: an IPv4-mapped IPv6 address (::ffff:10.1.2.3, RFC 4291
// §2.5.5.2) is its IPv4 address, since a dual-stack socket sends it as
// IPv4; an IPv4-compatible IPv6 address (::10.1.2.3, deprecated by
// RFC 4291 §2.5.5.1) is its IPv4 address too, since an automatic tunnel
// sends it there, except :: and ::1, which are the IPv6 unspecified and
// loopback addresses. The zone of a link-local IPv6 address is kept: it
// chooses the interface (matching ignores it). Other addresses are
// returned unchanged; the invalid Addr stays invalid.
func CanonicalAddr(a netip.Addr) netip.Addr {
	if a.Is4In6() {
		return a.Unmap()
	}
	if a.Is6() {
		b := a.As16()
		compat := true
		for _, x := range b[:12] {
			if x != 0 {
				compat = false
				break
			}
		}
		if compat && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1) {
			return netip.AddrFrom4([4]byte(b[12:]))
		}
	}
	return a
}

// CanonicalAddrs applies CanonicalAddr to a resolver's answer and drops
// repeats (::ffff:10.1.2.3 and 10.1.2.3 are one address), keeping the
// resolver's order. It returns a new slice; nil for none.
func CanonicalAddrs(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		a = CanonicalAddr(a)
		dup := false
		for _, b := range out {
			if b == a {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// ParseAddrLiteral reads host the way a resolver on the gateway would
// before asking DNS, and returns the canonical address when host is an
// address literal:
//
//   - what Go's resolver (netip.ParseAddr) accepts: dotted-quad IPv4,
//     IPv6 in any RFC 4291 §2.2 form, with a zone;
//   - what glibc's getaddrinfo accepts through inet_aton: one to four
//     parts separated by dots, each decimal, octal (leading 0) or
//     hexadecimal (0x), the last filling the remaining bytes ("127.1",
//     "0x7f.0.0.1", "2130706433", "0177.0.0.1"), because a gateway built
//     with cgo, or a resolver behind it, reaches 127.0.0.1 with them;
//   - either of these with one trailing dot, which names take too: a
//     resolver would send "10.1.2.3." to DNS, but judging and dialling
//     the address keeps what is judged and what is dialled the same.
//
// Anything else is a name. Reading more strings as addresses than a
// particular resolver does is the safe side: an address is judged by the
// address rules and by the gateway-local deny, a name only by name rules
// until it is resolved.
func ParseAddrLiteral(host string) (netip.Addr, bool) {
	h := strings.TrimSuffix(host, ".")
	if h == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return CanonicalAddr(a), true
	}
	if a, ok := parseInetAton(h); ok {
		return a, true
	}
	return netip.Addr{}, false
}

// parseInetAton parses the IPv4 forms of inet_aton(3) without trailing
// characters (glibc's __inet_aton_exact, which getaddrinfo uses): 1 to 4
// parts, the last holding the remaining 32, 24, 16 or 8 bits.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := atonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	last := len(parts) - 1
	for _, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
	}
	lastBits := uint(32 - 8*last)
	if vals[last] >= 1<<lastBits {
		return netip.Addr{}, false
	}
	var n uint32
	for _, v := range vals[:last] {
		n = n<<8 | uint32(v)
	}
	n = n<<lastBits | uint32(vals[last])
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// atonPart parses one part as strtoul(3) with base 0 does, requiring the
// whole part to be digits of its base: "0x1f", "017", "255", "0".
func atonPart(p string) (uint64, bool) {
	base, digits := 10, p
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits = 16, p[2:]
	case len(p) >= 2 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}

// Gateway-local destinations: addresses that reach the gateway host
// itself or its own network segment rather than a destination behind it.

// GatewayLocalRule is the Decision.Rule of a request refused by the
// built-in gateway-local deny.
const GatewayLocalRule = "(gateway-local)"

// GatewayLocal configures the built-in gateway-local deny. The zero
// value is the default: on.
//
// With it on, an allow rule reaches a gateway-local destination only
// when it names it: one of its destination networks lies wholly inside
// the gateway-local ranges and holds the address (127.0.0.1/32,
// 169.254.169.254/32, the gateway's own 192.0.2.10/32). An allow rule
// that matches by a name, or by a wider network (10.0.0.0/8 holding the
// gateway's 10.1.1.1, 0.0.0.0/0), is overridden, and the request denied
// as GatewayLocalRule. Deny rules and the default deny are unaffected:
// they refuse anyway, and keep their name in the decision.
//
// Gateway-local are: loopback (127.0.0.0/8, ::1); the unspecified
// addresses (0.0.0.0, ::) and the rest of "this network" 0.0.0.0/8
// (RFC 1122 §3.2.1.3), which Linux delivers to the gateway itself;
// link-local (169.254.0.0/16, where cloud metadata services answer, and
// fe80::/10); the gateway's own addresses (WithLocalAddrs); and Extra.
// IPv4-mapped and -compatible forms of these are these (CanonicalAddr).
// The unspecified and "this network" addresses are also matched as
// loopback (127.0.0.1, ::1) by every rule, on or off: a deny rule for
// 127.0.0.0/8 matches 0.0.0.0, and an allow rule needs both in its
// networks.
type GatewayLocal struct {
	// Off turns the built-in deny off: gateway-local destinations are
	// decided by the rules alone.
	Off bool
	// Extra lists more networks that are the gateway's own: a public
	// address NATed to it, a virtual IP, a container bridge.
	Extra []netip.Prefix
}

// builtinLocal are the ranges that are gateway-local on every host, each
// with what it is, for reasons. More specific entries come first.
var builtinLocal = []struct {
	net  netip.Prefix
	kind string
}{
	{netip.MustParsePrefix("0.0.0.0/32"), "the unspecified address, which the kernel delivers to the gateway itself"},
	{netip.MustParsePrefix("0.0.0.0/8"), `in "this network" 0.0.0.0/8, which means the gateway itself`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback, the gateway itself"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local: the gateway's own network segment (and cloud metadata services)"},
	{netip.MustParsePrefix("::/128"), "the unspecified address, which the kernel delivers to the gateway itself"},
	{netip.MustParsePrefix("::1/128"), "loopback, the gateway itself"},
	{netip.MustParsePrefix("fe80::/10"), "link-local: the gateway's own network segment"},
}

var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
	thisNet4  = netip.MustParsePrefix("0.0.0.0/8")
)

// thisHostAlias returns the loopback address that a (zoneless,
// canonical) unspecified or "this network" address reaches, and false for
// any other address.
func thisHostAlias(a netip.Addr) (netip.Addr, bool) {
	switch {
	case a.Is4() && thisNet4.Contains(a):
		return loopback4, true
	case a.Is6() && a.IsUnspecified():
		return loopback6, true
	}
	return netip.Addr{}, false
}

// localSet is what an Engine knows to be the gateway's own.
type localSet struct {
	off    bool
	extra  []netip.Prefix
	ifaces []netip.Addr // canonical, zoneless
}

// kind says why a (canonical, zoneless) address is gateway-local, or "".
func (s *localSet) kind(a netip.Addr) string {
	for _, b := range builtinLocal {
		if b.net.Contains(a) {
			return b.kind
		}
	}
	for _, x := range s.ifaces {
		if x == a {
			return "an address of the gateway itself"
		}
	}
	for _, p := range s.extra {
		if p.Contains(a) {
			return "the gateway's own (gateway_local addresses)"
		}
	}
	return ""
}

// within reports whether every address of p is gateway-local, so that a
// rule naming p names gateway-local destinations on purpose.
func (s *localSet) within(p netip.Prefix) bool {
	inside := func(q netip.Prefix) bool {
		return q.Addr().Is4() == p.Addr().Is4() && q.Bits() <= p.Bits() && q.Contains(p.Addr())
	}
	for _, b := range builtinLocal {
		if inside(b.net) {
			return true
		}
	}
	for _, x := range s.ifaces {
		if inside(netip.PrefixFrom(x, x.BitLen())) {
			return true
		}
	}
	for _, q := range s.extra {
		if inside(q) {
			return true
		}
	}
	return false
}
