package danteconf

import (
	"fmt"
	"net/netip"
	"strings"
)

// AddrKind says what an Address names.
type AddrKind int

const (
	// AddrAny is "0/0": every IPv4 and every IPv6 address.
	AddrAny AddrKind = iota
	// AddrPrefix is an IP network: "10.0.0.0/8", "10.0.0.0/255.0.0.0",
	// "2001:db8::/32", or a single address (a /32 or /128).
	AddrPrefix
	// AddrMask is an IPv4 address with a netmask that is not contiguous
	// ("10.0.0.0/255.0.255.0"), which Dante accepts and CIDR cannot write.
	AddrMask
	// AddrName is a name without a leading dot: a host name, or the name
	// of a network interface ("eth0", "lo"). Dante tells them apart by
	// asking the system it runs on; Parse does not.
	AddrName
	// AddrDomain is ".example.com": Dante matches every name whose text
	// ends in "example.com", the name itself included. "." alone matches
	// every name.
	AddrDomain
	// AddrURL is an "http://" or "ftp://" address (routes only).
	AddrURL
)

func (k AddrKind) String() string {
	switch k {
	case AddrAny:
		return "any"
	case AddrPrefix:
		return "network"
	case AddrMask:
		return "masked address"
	case AddrName:
		return "name"
	case AddrDomain:
		return "domain"
	case AddrURL:
		return "URL"
	}
	return fmt.Sprintf("AddrKind(%d)", int(k))
}

// Address is the value of from:, to:, via:, internal:, external: and
// redirect from:/to:, with its port condition.
type Address struct {
	Line int      // where the address is written
	Text string   // the address as written, without the port condition
	Kind AddrKind //
	// Prefix is the network for AddrPrefix (masked, IPv4 unmapped) and
	// the address with its mask length 32 for AddrMask.
	Prefix netip.Prefix
	// Mask is the dotted netmask of AddrMask.
	Mask netip.Addr
	// Name is the name of AddrName, or the domain of AddrDomain without
	// its leading dot ("" for "." alone); lower case.
	Name string
	// Port is the port condition, nil for every port.
	Port *PortMatch
}

// PortOp is the comparison of a port condition.
type PortOp int

const (
	PortEq    PortOp = iota // "port = 80", "port eq 80", "port: 80", "port 80"
	PortNeq                 // "port != 80", "port ne 80", "port neq 80"
	PortGe                  // "port >= 1024", "port ge 1024"
	PortLe                  // "port <= 1023", "port le 1023"
	PortGt                  // "port > 1023", "port gt 1023"
	PortLt                  // "port < 1024", "port lt 1024"
	PortRange               // "port 1024 - 65535", "port 1024-65535"
)

var portOps = map[string]PortOp{
	"=": PortEq, "eq": PortEq,
	"!=": PortNeq, "ne": PortNeq, "neq": PortNeq,
	">=": PortGe, "ge": PortGe,
	"<=": PortLe, "le": PortLe,
	">": PortGt, "gt": PortGt,
	"<": PortLt, "lt": PortLt,
}

// PortMatch is a port condition on an address.
type PortMatch struct {
	Line int
	Op   PortOp
	// Port is the number compared with, or the start of a PortRange; End
	// is the end of a PortRange (inclusive).
	Port, End int
	// Service is the service name written instead of a number ("http"),
	// or "". Port is its number from a built-in table of well-known
	// services, or -1 when the name is not in it (Dante would look it up
	// in the /etc/services of its host).
	Service string
}

// Ranges returns the ports the condition matches as inclusive [lo, hi]
// pairs within 0-65535, in order; none if it matches no port (also for an
// unknown service name).
func (p *PortMatch) Ranges() [][2]int {
	if p.Port < 0 {
		return nil
	}
	var lo, hi int
	switch p.Op {
	case PortEq:
		lo, hi = p.Port, p.Port
	case PortNeq:
		var out [][2]int
		if p.Port > 0 {
			out = append(out, [2]int{0, p.Port - 1})
		}
		if p.Port < 65535 {
			out = append(out, [2]int{p.Port + 1, 65535})
		}
		return out
	case PortGe:
		lo, hi = p.Port, 65535
	case PortLe:
		lo, hi = 0, p.Port
	case PortGt:
		lo, hi = p.Port+1, 65535
	case PortLt:
		lo, hi = 0, p.Port-1
	case PortRange:
		lo, hi = p.Port, p.End
	}
	if lo > hi || lo > 65535 || hi < 0 {
		return nil
	}
	return [][2]int{{lo, hi}}
}

// Every reports whether the condition matches every port that can appear
// on the wire (1-65535; 0 is not a port a TCP peer has).
func (p *PortMatch) Every() bool {
	r := p.Ranges()
	return len(r) == 1 && r[0][0] <= 1 && r[0][1] == 65535
}

// wellKnownPorts are the TCP services a port condition may name, as in
// the IANA registry (and every /etc/services).
var wellKnownPorts = map[string]int{
	"echo": 7, "discard": 9, "daytime": 13, "ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23,
	"smtp": 25, "time": 37, "whois": 43, "domain": 53, "gopher": 70, "finger": 79,
	"http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "auth": 113, "ident": 113,
	"nntp": 119, "ntp": 123, "imap": 143, "imap2": 143, "snmp": 161, "ldap": 389, "https": 443,
	"microsoft-ds": 445, "kpasswd": 464, "submission": 587, "ldaps": 636, "rsync": 873,
	"imaps": 993, "pop3s": 995, "socks": 1080, "openvpn": 1194, "ms-sql-s": 1433,
	"mysql": 3306, "postgresql": 5432, "x11": 6000, "http-alt": 8080, "webcache": 8080,
}

// addrParser reads one address and its port condition from the words of
// one statement.
type addrParser struct {
	file  string
	toks  []token // the statement's remaining tokens
	pos   int
	inner bool // a rule or route address: a netmask may follow
}

func (p *addrParser) errorf(line int, format string, args ...any) error {
	return &Error{p.file, line, fmt.Sprintf(format, args...)}
}

func (p *addrParser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

// address reads the address that follows key (a keyword naming it).
func (p *addrParser) address(key string, keyLine int) (*Address, error) {
	t, ok := p.peek()
	if !ok || t.kind != tokWord {
		return nil, p.errorf(keyLine, "%s: needs an address", key)
	}
	p.pos++
	text := t.text
	// "10.0.0.0 / 8" and "10.0.0.0 /8": Dante's scanner reads the '/'
	// as a token of its own, so blanks around it are allowed.
	if !strings.Contains(text, "/") {
		if n, ok := p.peek(); ok && n.kind == tokWord && strings.HasPrefix(n.text, "/") {
			p.pos++
			text += n.text
			if n.text == "/" {
				if m, ok := p.peek(); ok && m.kind == tokWord {
					p.pos++
					text += m.text
				}
			}
		}
	}
	a, err := parseAddr(text)
	if err != nil {
		return nil, p.errorf(t.line, "%s: %s", key, err)
	}
	a.Line = t.line
	if err := p.port(a, key); err != nil {
		return nil, err
	}
	return a, nil
}

// port reads an optional port condition after an address.
func (p *addrParser) port(a *Address, key string) error {
	t, ok := p.peek()
	if !ok {
		return nil
	}
	lower := strings.ToLower(t.text)
	if t.kind != tokWord || !strings.HasPrefix(lower, "port") || len(lower) > 4 && !strings.ContainsAny(lower[4:5], ":=<>!") {
		return nil
	}
	// "port = 80", "port=80", "port:80", "port: 80"
	rest := t.text[4:]
	if strings.HasPrefix(rest, ":") {
		rest = "=" + rest[1:]
	}
	p.pos++
	line := t.line
	// The condition's pieces: operators, numbers, names, '-'; a word may
	// hold several ("=80", "1-1024", ">=1024").
	pieces := splitPortPieces(rest)
	for len(pieces) < 8 {
		n, ok := p.peek()
		if !ok || n.kind != tokWord || !portNeedsMore(pieces, n.text) {
			break
		}
		p.pos++
		pieces = append(pieces, splitPortPieces(n.text)...)
	}
	m, err := parsePortPieces(pieces)
	if err != nil {
		return p.errorf(line, "%s: port: %s", key, err)
	}
	m.Line = line
	a.Port = m
	return nil
}

// splitPortPieces splits "=80" into "=", "80" and "1-1024" into "1", "-",
// "1024".
func splitPortPieces(s string) []string {
	var out []string
	for s != "" {
		switch {
		case strings.HasPrefix(s, ">=") || strings.HasPrefix(s, "<=") || strings.HasPrefix(s, "!="):
			out, s = append(out, s[:2]), s[2:]
		case strings.ContainsAny(s[:1], "=<>-"):
			out, s = append(out, s[:1]), s[1:]
		default:
			// A '-' ends a number ("1024-65535") but not a service name
			// ("ftp-data").
			i := 0
			for i < len(s) && !strings.ContainsRune("=<>!", rune(s[i])) && !(s[i] == '-' && isDigits(s[:i])) {
				i++
			}
			if i == 0 {
				i = len(s)
			}
			out, s = append(out, s[:i]), s[i:]
		}
	}
	return out
}

// portNeedsMore reports whether the condition read so far goes on with
// the word next: after "port", an operator or "range", or "1024 -"; and
// after a bare number only with a '-' (a range).
func portNeedsMore(pieces []string, next string) bool {
	if len(pieces) > 0 && strings.EqualFold(pieces[0], "range") {
		pieces = pieces[1:]
	}
	switch {
	case len(pieces) == 0:
		return true
	case len(pieces) == 1 && isPortOp(pieces[0]):
		return true
	case len(pieces) == 1:
		return strings.HasPrefix(next, "-")
	case len(pieces) == 2 && pieces[1] == "-":
		return true
	}
	return false
}

func isPortOp(s string) bool { _, ok := portOps[strings.ToLower(s)]; return ok }

// parsePortPieces reads [range] (OP VALUE | START [- END] | SERVICE).
func parsePortPieces(pieces []string) (*PortMatch, error) {
	if len(pieces) > 0 && strings.EqualFold(pieces[0], "range") {
		pieces = pieces[1:]
	}
	if len(pieces) == 0 {
		return nil, fmt.Errorf("needs a port number, a range or an operator and a port")
	}
	m := &PortMatch{Op: PortEq}
	if op, ok := portOps[strings.ToLower(pieces[0])]; ok {
		m.Op = op
		if len(pieces) != 2 {
			return nil, fmt.Errorf("%s needs one port number or service name after it", pieces[0])
		}
		return m, m.value(pieces[1])
	}
	switch len(pieces) {
	case 1:
		return m, m.value(pieces[0])
	case 3:
		if pieces[1] != "-" {
			break
		}
		lo, err1 := parseNumber(pieces[0])
		hi, err2 := parseNumber(pieces[2])
		if err1 != nil || err2 != nil || lo > 65535 || hi > 65535 {
			return nil, fmt.Errorf("range %s: ports are numbers from 0 to 65535", excerpt(strings.Join(pieces, "")))
		}
		if lo > hi {
			return nil, fmt.Errorf("range %d-%d ends before it starts", lo, hi)
		}
		m.Op, m.Port, m.End = PortRange, int(lo), int(hi)
		return m, nil
	}
	return nil, fmt.Errorf("%s is not a port condition; write \"port = 80\", \"port 1024-65535\" or \"port gt 1023\"", excerpt(strings.Join(pieces, " ")))
}

// value sets the port compared with: a number or a service name.
func (m *PortMatch) value(s string) error {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := parseNumber(s)
		if err != nil || n > 65535 {
			return fmt.Errorf("%s: a port is a number from 0 to 65535", excerpt(s))
		}
		m.Port = int(n)
		return nil
	}
	if !isIdent(s) {
		return fmt.Errorf("%s is neither a port number nor a service name", excerpt(s))
	}
	m.Service = strings.ToLower(s)
	if n, ok := wellKnownPorts[m.Service]; ok {
		m.Port = n
	} else {
		m.Port = -1
	}
	return nil
}

// parseNumber reads a number as Dante's scanner does (strtoll with base
// 0): decimal, 0x hexadecimal, or octal with a leading 0.
func parseNumber(s string) (uint64, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || len(digits) > 12 {
		return 0, fmt.Errorf("bad number %s", excerpt(s))
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return 0, fmt.Errorf("bad number %s", excerpt(s))
		}
		if d >= base {
			return 0, fmt.Errorf("bad number %s", excerpt(s))
		}
		n = n*uint64(base) + uint64(d)
	}
	return n, nil
}

// parseAddr reads an address without its port condition.
func parseAddr(s string) (*Address, error) {
	a := &Address{Text: s}
	switch {
	case s == "":
		return nil, fmt.Errorf("empty address")
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "ftp://"):
		a.Kind = AddrURL
		return a, nil
	case s[0] == '.':
		name := strings.ToLower(s[1:])
		if name != "" && !validName(name) {
			return nil, fmt.Errorf("%s is not a domain (\".example.com\")", excerpt(s))
		}
		a.Kind, a.Name = AddrDomain, name
		return a, nil
	}
	addr, mask, hasMask := strings.Cut(s, "/")
	if addr == "0" && hasMask { // "0/0": Dante's any address of either family
		n, err := parseNumber(mask)
		if err != nil || n != 0 {
			return nil, fmt.Errorf("%s: the only netmask of 0 (any address) is 0", excerpt(s))
		}
		a.Kind = AddrAny
		return a, nil
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if hasMask || strings.Contains(addr, ":") || looksNumeric(addr) {
			return nil, fmt.Errorf("%s is not an IP address", excerpt(addr))
		}
		if !validName(addr) {
			return nil, fmt.Errorf("%s is not an address, a host name or an interface name", excerpt(s))
		}
		a.Kind, a.Name = AddrName, strings.ToLower(addr)
		return a, nil
	}
	if ip.Is4In6() {
		return nil, fmt.Errorf("%s is an IPv4-mapped IPv6 address; write the IPv4 address %s", excerpt(addr), ip.Unmap())
	}
	bits := ip.BitLen()
	if hasMask {
		if m, err := netip.ParseAddr(mask); err == nil {
			if !ip.Is4() || !m.Is4() {
				return nil, fmt.Errorf("%s: a dotted netmask is for IPv4 addresses; give IPv6 a prefix length", excerpt(s))
			}
			ones, ok := maskLen(m)
			if !ok {
				a.Kind, a.Prefix, a.Mask = AddrMask, netip.PrefixFrom(ip, 32), m
				return a, nil
			}
			bits = ones
		} else {
			n, err := parseNumber(mask)
			if err != nil || n > uint64(ip.BitLen()) {
				return nil, fmt.Errorf("%s: the netmask of an %s address is a length from 0 to %d or, for IPv4, a dotted mask", excerpt(s), family(ip), ip.BitLen())
			}
			bits = int(n)
		}
	}
	a.Kind = AddrPrefix
	a.Prefix = netip.PrefixFrom(ip, bits).Masked()
	return a, nil
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// maskLen returns the length of a contiguous IPv4 netmask.
func maskLen(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for ones < 32 && v&(1<<(31-ones)) != 0 {
		ones++
	}
	return ones, ones == 32 || v<<ones == 0
}

// looksNumeric reports whether s is made of digits and dots only: a
// mistyped IPv4 address, not a host name.
func looksNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

// validName accepts host, domain and interface names: letters, digits,
// '-', '_' and '.', without empty labels, at most 253 characters.
func validName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
