package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// SOCKS protocol version 5 (RFC 1928).
const socksVersion = 0x05

// Method is an RFC 1928 §3 authentication method.
type Method byte

// Methods gssocks knows.
const (
	MethodNoAuth       Method = 0x00
	MethodGSSAPI       Method = 0x01 // RFC 1961
	MethodNoAcceptable Method = 0xff
)

// Command is the RFC 1928 §4 CMD field.
type Command byte

// Commands.
const (
	CmdConnect      Command = 0x01
	CmdBind         Command = 0x02
	CmdUDPAssociate Command = 0x03
)

func (c Command) String() string {
	switch c {
	case CmdConnect:
		return "connect"
	case CmdBind:
		return "bind"
	case CmdUDPAssociate:
		return "udp"
	}
	return fmt.Sprintf("cmd(%#02x)", byte(c))
}

// Address types (RFC 1928 §5).
const (
	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply is the RFC 1928 §6 REP field.
type Reply byte

// Reply codes.
const (
	ReplySucceeded               Reply = 0x00
	ReplyGeneralFailure          Reply = 0x01
	ReplyNotAllowed              Reply = 0x02
	ReplyNetworkUnreachable      Reply = 0x03
	ReplyHostUnreachable         Reply = 0x04
	ReplyConnectionRefused       Reply = 0x05
	ReplyTTLExpired              Reply = 0x06
	ReplyCommandNotSupported     Reply = 0x07
	ReplyAddressTypeNotSupported Reply = 0x08
)

func (r Reply) String() string {
	switch r {
	case ReplySucceeded:
		return "succeeded"
	case ReplyGeneralFailure:
		return "general failure"
	case ReplyNotAllowed:
		return "not allowed by ruleset"
	case ReplyNetworkUnreachable:
		return "network unreachable"
	case ReplyHostUnreachable:
		return "host unreachable"
	case ReplyConnectionRefused:
		return "connection refused"
	case ReplyTTLExpired:
		return "TTL expired"
	case ReplyCommandNotSupported:
		return "command not supported"
	case ReplyAddressTypeNotSupported:
		return "address type not supported"
	}
	return fmt.Sprintf("reply(%#02x)", byte(r))
}

// Addr is a SOCKS address: an IP or a domain name, and a port.
type Addr struct {
	IP   netip.Addr // valid unless Host is set
	Host string
	Port uint16
}

// AddrFromAddrPort converts an address and port.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

func (a Addr) String() string {
	if a.Host != "" {
		return netJoin(a.Host, a.Port)
	}
	return netJoin(a.IP.String(), a.Port)
}

func netJoin(h string, p uint16) string {
	if ip, err := netip.ParseAddr(h); err == nil && ip.Is6() {
		return "[" + h + "]:" + strconv.Itoa(int(p))
	}
	return h + ":" + strconv.Itoa(int(p))
}

// ProtocolError is a malformed SOCKS message; Reply is the code to answer
// with, when one can still be sent (ReplySucceeded: none, just close).
type ProtocolError struct {
	Reply  Reply
	Detail string
}

func (e *ProtocolError) Error() string { return "socks5: " + e.Detail }

var errBadVersion = &ProtocolError{Detail: "not SOCKS version 5"}

// ReadGreeting reads the client's version/methods message (RFC 1928 §3).
func ReadGreeting(r io.Reader) ([]Method, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("socks5: read greeting: %w", err)
	}
	if h[0] != socksVersion {
		return nil, errBadVersion
	}
	if h[1] == 0 {
		return nil, &ProtocolError{Detail: "greeting offers no methods"}
	}
	m := make([]byte, h[1])
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, fmt.Errorf("socks5: read greeting methods: %w", err)
	}
	out := make([]Method, len(m))
	for i, b := range m {
		out[i] = Method(b)
	}
	return out, nil
}

// Request is a SOCKS request (RFC 1928 §4).
type Request struct {
	Command Command
	Dest    Addr
}

// ReadRequest reads a request. An unknown command is returned with a
// *ProtocolError carrying ReplyCommandNotSupported after the whole request
// was read; an unknown address type with ReplyAddressTypeNotSupported (the
// rest cannot be parsed).
func ReadRequest(r io.Reader) (Request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Request{}, fmt.Errorf("socks5: read request: %w", err)
	}
	if h[0] != socksVersion {
		return Request{}, errBadVersion
	}
	req := Request{Command: Command(h[1])}
	a, err := readAddr(r, h[3])
	if err != nil {
		return req, err
	}
	req.Dest = a
	switch req.Command {
	case CmdConnect, CmdBind, CmdUDPAssociate:
		return req, nil
	}
	return req, &ProtocolError{Reply: ReplyCommandNotSupported, Detail: fmt.Sprintf("unknown command %#02x", h[1])}
}

func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var a Addr
	var buf [255 + 2]byte
	switch atyp {
	case atypIPv4:
		if _, err := io.ReadFull(r, buf[:4+2]); err != nil {
			return a, fmt.Errorf("socks5: read address: %w", err)
		}
		a.IP = netip.AddrFrom4([4]byte(buf[:4]))
		a.Port = binary.BigEndian.Uint16(buf[4:])
	case atypIPv6:
		if _, err := io.ReadFull(r, buf[:16+2]); err != nil {
			return a, fmt.Errorf("socks5: read address: %w", err)
		}
		a.IP = netip.AddrFrom16([16]byte(buf[:16])).Unmap()
		a.Port = binary.BigEndian.Uint16(buf[16:])
	case atypDomain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return a, fmt.Errorf("socks5: read address: %w", err)
		}
		n := int(buf[0])
		if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
			return a, fmt.Errorf("socks5: read address: %w", err)
		}
		host, err := checkDomain(buf[:n])
		if err != nil {
			return a, err
		}
		a.Host = host
		a.Port = binary.BigEndian.Uint16(buf[n:])
	default:
		return a, &ProtocolError{Reply: ReplyAddressTypeNotSupported, Detail: fmt.Sprintf("unknown address type %#02x", atyp)}
	}
	return a, nil
}

// checkDomain accepts the characters of host names (letters, digits, '-',
// '_', '.'), so a name cannot smuggle anything into logs or the resolver.
// A domain that is an IP literal is treated as that IP by the caller.
func checkDomain(b []byte) (string, error) {
	if len(b) == 0 {
		return "", &ProtocolError{Reply: ReplyHostUnreachable, Detail: "empty domain name"}
	}
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':'
		if !ok {
			return "", &ProtocolError{Reply: ReplyHostUnreachable, Detail: fmt.Sprintf("invalid domain name %q", b)}
		}
	}
	return string(b), nil
}

// AppendAddr appends ATYP | ADDR | PORT.
func AppendAddr(dst []byte, a Addr) []byte {
	switch {
	case a.Host != "":
		dst = append(dst, atypDomain, byte(len(a.Host)))
		dst = append(dst, a.Host...)
	case a.IP.Is4():
		b := a.IP.As4()
		dst = append(dst, atypIPv4)
		dst = append(dst, b[:]...)
	case a.IP.Is6():
		b := a.IP.As16()
		dst = append(dst, atypIPv6)
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(dst, a.Port)
}

// AppendReply appends a reply (RFC 1928 §6) with BND.ADDR/BND.PORT.
func AppendReply(dst []byte, rep Reply, bnd Addr) []byte {
	dst = append(dst, socksVersion, byte(rep), 0x00)
	return AppendAddr(dst, bnd)
}

// AppendRequest appends a request (for clients and tests).
func AppendRequest(dst []byte, cmd Command, dest Addr) []byte {
	dst = append(dst, socksVersion, byte(cmd), 0x00)
	return AppendAddr(dst, dest)
}

// ErrFragmented: a UDP datagram with FRAG != 0 (RFC 1928 §7); gssocks does
// not reassemble and drops them, as the RFC allows.
var ErrFragmented = errors.New("socks5: fragmented UDP datagram")

// ParseUDPHeader splits a client datagram (RFC 1928 §7):
// RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA.
func ParseUDPHeader(b []byte) (Addr, []byte, error) {
	if len(b) < 4 {
		return Addr{}, nil, &ProtocolError{Detail: "UDP datagram too short"}
	}
	if b[0] != 0 || b[1] != 0 {
		return Addr{}, nil, &ProtocolError{Detail: "UDP header reserved bytes not zero"}
	}
	if b[2] != 0 {
		return Addr{}, nil, ErrFragmented
	}
	r := &sliceReader{b: b[4:]}
	a, err := readAddr(r, b[3])
	if err != nil {
		return Addr{}, nil, err
	}
	return a, r.b, nil
}

// AppendUDPHeader appends the header of a datagram from src.
func AppendUDPHeader(dst []byte, src Addr) []byte {
	return AppendAddr(append(dst, 0, 0, 0), src)
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
