package socks5

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// MaxDomainLen is the longest domain name ATYP X'03' can carry: its
// length is one octet (RFC 1928 §5).
const MaxDomainLen = 255

// MaxAddrLen is the longest encoded address, ATYP | DST.ADDR | DST.PORT
// with a 255-octet domain name, in bytes.
const MaxAddrLen = 1 + 1 + MaxDomainLen + 2

// Addr is a SOCKS address (RFC 1928 §5): an IP address or a domain name,
// and a port. The zero Addr encodes as 0.0.0.0 port 0, what a server
// sends as BND.ADDR/BND.PORT when it has nothing to tell (§6).
//
// Addr is comparable, so it can key a map.
type Addr struct {
	IP   netip.Addr // the address when Host is empty; unmapped, no zone when decoded
	Host string     // a domain name (ATYP X'03'); when set, IP is ignored
	Port uint16
}

// AddrFromAddrPort converts an IP address and port, unmapping an
// IPv4-mapped IPv6 address.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// ParseHostPort turns "host:port", "1.2.3.4:port" or "[::1]:port" into an
// Addr: an IP literal gives IP (unmapped), anything else Host. The port is
// decimal, 0 to 65535. A host name SOCKS cannot carry or gssocks refuses
// (see AppendAddr) is an error, *ProtocolError, before it reaches the
// wire.
func ParseHostPort(hostport string) (Addr, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return Addr{}, fmt.Errorf("socks5: address: %w", err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("socks5: port %q: %w", p, err)
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return Addr{IP: ip.Unmap(), Port: uint16(port)}, nil
	}
	if err := checkDomain([]byte(h)); err != nil {
		return Addr{}, err
	}
	return Addr{Host: h, Port: uint16(port)}, nil
}

// String gives host:port, with brackets around an IPv6 address or any
// name holding a colon ("[2001:db8::1]:443"), so ParseHostPort reads it
// back.
func (a Addr) String() string {
	if a.Host != "" {
		return joinHostPort(a.Host, a.Port)
	}
	return joinHostPort(a.IP.String(), a.Port)
}

func joinHostPort(h string, p uint16) string {
	return net.JoinHostPort(h, strconv.Itoa(int(p)))
}

// Type is the ATYP a encodes with: AddrTypeDomain when Host is set,
// AddrTypeIPv6 for an IPv6 address that is not IPv4-mapped, else
// AddrTypeIPv4 (the zero Addr included).
func (a Addr) Type() AddrType {
	switch {
	case a.Host != "":
		return AddrTypeDomain
	case a.IP.Unmap().Is6():
		return AddrTypeIPv6
	}
	return AddrTypeIPv4
}

// AppendAddr appends ATYP | ADDR | PORT (RFC 1928 §5): 7 bytes for IPv4,
// 19 for IPv6, 4 plus the name's length for a domain name; the port in
// network byte order. An IPv4-mapped address is written as IPv4, an IPv6
// zone is dropped. A Host longer than MaxDomainLen bytes or with
// characters other than letters, digits, '-', '_', '.' and ':' is refused
// with a *ProtocolError (Reply ReplyHostUnreachable), as the decoder would
// refuse it; dst is then returned unchanged.
func AppendAddr(dst []byte, a Addr) ([]byte, error) {
	switch a.Type() {
	case AddrTypeDomain:
		if err := checkDomain([]byte(a.Host)); err != nil {
			return dst, err
		}
		dst = append(dst, byte(AddrTypeDomain), byte(len(a.Host)))
		dst = append(dst, a.Host...)
	case AddrTypeIPv6:
		b := a.IP.As16()
		dst = append(dst, byte(AddrTypeIPv6))
		dst = append(dst, b[:]...)
	default:
		var b [4]byte
		if a.IP.IsValid() {
			b = a.IP.Unmap().As4()
		}
		dst = append(dst, byte(AddrTypeIPv4))
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port), nil
}

// ParseAddr decodes ATYP | ADDR | PORT at the start of b (RFC 1928 §5)
// and returns the address and the bytes after it. Errors are
// *ProtocolError: an unknown ATYP (Reply ReplyAddressTypeNotSupported), a
// domain name that is empty or has characters other than letters, digits,
// '-', '_', '.' and ':' (ReplyHostUnreachable), or b too short (wrapping
// io.ErrUnexpectedEOF).
func ParseAddr(b []byte) (Addr, []byte, error) {
	n, err := addrLen(b)
	if err != nil {
		return Addr{}, nil, err
	}
	if len(b) < n {
		return Addr{}, nil, errTruncated("address")
	}
	a, err := decodeAddr(b[:n])
	if err != nil {
		return Addr{}, nil, err
	}
	return a, b[n:], nil
}

// addrLen is the encoded length of the address starting at b, from its
// ATYP (and, for a domain name, its length octet).
func addrLen(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, errTruncated("address")
	}
	switch AddrType(b[0]) {
	case AddrTypeIPv4:
		return 1 + 4 + 2, nil
	case AddrTypeIPv6:
		return 1 + 16 + 2, nil
	case AddrTypeDomain:
		if len(b) < 2 {
			return 0, errTruncated("address")
		}
		return 1 + 1 + int(b[1]) + 2, nil
	}
	return 0, &ProtocolError{Reply: ReplyAddressTypeNotSupported, Detail: fmt.Sprintf("unknown address type %#02x", b[0])}
}

// decodeAddr decodes an address of exactly the length addrLen gave.
func decodeAddr(b []byte) (Addr, error) {
	var a Addr
	port := b[len(b)-2:]
	switch AddrType(b[0]) {
	case AddrTypeIPv4:
		a.IP = netip.AddrFrom4([4]byte(b[1:5]))
	case AddrTypeIPv6:
		a.IP = netip.AddrFrom16([16]byte(b[1:17])).Unmap()
	case AddrTypeDomain:
		name := b[2 : len(b)-2]
		if err := checkDomain(name); err != nil {
			return Addr{}, err
		}
		a.Host = string(name)
	}
	a.Port = binary.BigEndian.Uint16(port)
	return a, nil
}

// readAddr reads ADDR | PORT after the ATYP already read, exactly the
// bytes of the address, and decodes them.
func readAddr(r io.Reader, atyp byte, what string) (Addr, error) {
	var buf [MaxAddrLen]byte
	buf[0] = atyp
	if AddrType(atyp) == AddrTypeDomain {
		if _, err := io.ReadFull(r, buf[1:2]); err != nil {
			return Addr{}, fmt.Errorf("socks5: read %s address: %w", what, eofIsUnexpected(err))
		}
	}
	n, err := addrLen(buf[:])
	if err != nil {
		return Addr{}, err
	}
	off := 1
	if AddrType(atyp) == AddrTypeDomain {
		off = 2
	}
	if _, err := io.ReadFull(r, buf[off:n]); err != nil {
		return Addr{}, fmt.Errorf("socks5: read %s address: %w", what, eofIsUnexpected(err))
	}
	return decodeAddr(buf[:n])
}

// eofIsUnexpected: a message cut after its first bytes is truncated, even
// where io.ReadFull reports io.EOF because none of the part it was asked
// for arrived.
func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkDomain accepts the characters of host names (letters, digits, '-',
// '_', '.') and ':' for an IPv6 literal sent as a name, so a name cannot
// smuggle anything into logs or the resolver. A domain that is an IP
// literal is left to the caller to treat as that IP.
func checkDomain(b []byte) error {
	if len(b) == 0 {
		return &ProtocolError{Reply: ReplyHostUnreachable, Detail: "empty domain name"}
	}
	if len(b) > MaxDomainLen {
		return &ProtocolError{Reply: ReplyHostUnreachable, Detail: fmt.Sprintf("domain name of %d bytes, longer than %d", len(b), MaxDomainLen)}
	}
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':'
		if !ok {
			return &ProtocolError{Reply: ReplyHostUnreachable, Detail: fmt.Sprintf("invalid domain name %q", b)}
		}
	}
	return nil
}
