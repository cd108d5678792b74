package socks5

import "fmt"

// Version is the VER field of every SOCKS5 message but the UDP header
// (RFC 1928 §3, §4, §6).
const Version = 0x05

// Method is an authentication method code: the METHODS field of the
// greeting and the METHOD field of the method selection (RFC 1928 §3).
type Method byte

// Methods. X'03' to X'7F' are IANA-assigned, X'80' to X'FE' private.
const (
	MethodNoAuth           Method = 0x00 // NO AUTHENTICATION REQUIRED, RFC 1928 §3
	MethodGSSAPI           Method = 0x01 // GSSAPI, RFC 1961
	MethodUsernamePassword Method = 0x02 // USERNAME/PASSWORD, RFC 1929
	MethodNoAcceptable     Method = 0xff // NO ACCEPTABLE METHODS, RFC 1928 §3
)

// String gives "none", "gssapi", "username/password", "no acceptable
// methods", or "method(0x80)" for others.
func (m Method) String() string {
	switch m {
	case MethodNoAuth:
		return "none"
	case MethodGSSAPI:
		return "gssapi"
	case MethodUsernamePassword:
		return "username/password"
	case MethodNoAcceptable:
		return "no acceptable methods"
	}
	return fmt.Sprintf("method(%#02x)", byte(m))
}

// Command is the CMD field of a request (RFC 1928 §4).
type Command byte

// Commands.
const (
	CmdConnect      Command = 0x01 // CONNECT, RFC 1928 §4
	CmdBind         Command = 0x02 // BIND, RFC 1928 §4
	CmdUDPAssociate Command = 0x03 // UDP ASSOCIATE, RFC 1928 §4 and §7
)

// String gives the words policy configuration and the audit record use:
// "connect", "bind", "udp"; "cmd(0x09)" for an unknown code.
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

// AddrType is the ATYP field of a request, reply or UDP header (RFC 1928
// §5).
type AddrType byte

// Address types.
const (
	AddrTypeIPv4   AddrType = 0x01 // 4 octets, RFC 1928 §5
	AddrTypeDomain AddrType = 0x03 // a length octet, then the name, RFC 1928 §5
	AddrTypeIPv6   AddrType = 0x04 // 16 octets, RFC 1928 §5
)

// String gives "IPv4", "domain name", "IPv6", or "atyp(0x07)" for an
// unknown code.
func (t AddrType) String() string {
	switch t {
	case AddrTypeIPv4:
		return "IPv4"
	case AddrTypeDomain:
		return "domain name"
	case AddrTypeIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("atyp(%#02x)", byte(t))
}

// Reply is the REP field of a reply (RFC 1928 §6). X'09' to X'FF' are
// unassigned.
type Reply byte

// Reply codes (RFC 1928 §6).
const (
	ReplySucceeded               Reply = 0x00
	ReplyGeneralFailure          Reply = 0x01 // general SOCKS server failure
	ReplyNotAllowed              Reply = 0x02 // connection not allowed by ruleset
	ReplyNetworkUnreachable      Reply = 0x03
	ReplyHostUnreachable         Reply = 0x04
	ReplyConnectionRefused       Reply = 0x05
	ReplyTTLExpired              Reply = 0x06
	ReplyCommandNotSupported     Reply = 0x07
	ReplyAddressTypeNotSupported Reply = 0x08
)

// String gives the RFC's words in lower case ("not allowed by ruleset"),
// or "reply(0x09)" for an unassigned code.
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
