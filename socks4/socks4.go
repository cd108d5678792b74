package socks4

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Version is the VN of a request ("SOCKS 4", CONNECT).
const Version = 0x04

// ReplyVersion is the VN of a reply: the version of the reply code, 0.
const ReplyVersion = 0x00

// MaxUserIDLen bounds the USERID a request may carry, in bytes before
// its NUL; MaxHostLen bounds a SOCKS4a domain name likewise (a domain
// name is at most 255 octets).
const (
	MaxUserIDLen = 255
	MaxHostLen   = 255
)

// Command is the CD field of a request.
type Command byte

// Commands ("SOCKS 4": CONNECT, BIND).
const (
	CmdConnect Command = 0x01
	CmdBind    Command = 0x02
)

// String gives "connect", "bind", or "cmd(0x09)" for others.
func (c Command) String() string {
	switch c {
	case CmdConnect:
		return "connect"
	case CmdBind:
		return "bind"
	}
	return fmt.Sprintf("cmd(%#02x)", byte(c))
}

// Reply is the CD field of a reply.
type Reply byte

// Replies ("SOCKS 4", CONNECT).
const (
	ReplyGranted        Reply = 0x5a // request granted
	ReplyRejected       Reply = 0x5b // request rejected or failed
	ReplyNoIdentd       Reply = 0x5c // rejected: the server cannot reach the client's identd
	ReplyIdentdMismatch Reply = 0x5d // rejected: identd reports another user than USERID
)

func (r Reply) String() string {
	switch r {
	case ReplyGranted:
		return "request granted"
	case ReplyRejected:
		return "request rejected or failed"
	case ReplyNoIdentd:
		return "rejected: identd unreachable"
	case ReplyIdentdMismatch:
		return "rejected: identd user mismatch"
	}
	return fmt.Sprintf("reply(%#02x)", byte(r))
}

// Sentinels wrapped by *ProtocolError, for callers that branch.
var (
	ErrVersion       = errors.New("socks4: not SOCKS version 4")
	ErrCommand       = errors.New("socks4: unknown command")
	ErrUserIDTooLong = fmt.Errorf("socks4: USERID without a NUL within %d bytes", MaxUserIDLen)
	ErrUserIDInvalid = errors.New("socks4: USERID holds a NUL")
	ErrHostTooLong   = fmt.Errorf("socks4: SOCKS4a domain name without a NUL within %d bytes", MaxHostLen)
	ErrHostEmpty     = errors.New("socks4: empty SOCKS4a domain name")
	ErrHostInvalid   = errors.New("socks4: invalid SOCKS4a domain name")
	ErrAddress       = errors.New("socks4: not an IPv4 destination")
	ErrReplyVersion  = errors.New("socks4: reply version not 0")
)

// ProtocolError is a malformed SOCKS4 message, received or about to be
// sent. Err is the cause: one of the sentinels above, or
// io.ErrUnexpectedEOF for a message cut short (of a byte slice, or of a
// reader, whose own error is then wrapped as well). Detail never holds
// the peer's bytes beyond a quoted, escaped domain name.
type ProtocolError struct {
	Detail string
	Err    error
}

func (e *ProtocolError) Error() string { return "socks4: " + e.Detail }

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Request is a SOCKS4 or SOCKS4a request. For SOCKS4a (a domain name in
// Host), DSTIP on the wire is 0.0.0.x with x ≠ 0 and IP is left invalid;
// otherwise IP is the IPv4 DSTIP and Host is "". UserID is the USERID as
// sent, without its NUL: arbitrary bytes, for logging only.
type Request struct {
	Command Command
	Port    uint16
	IP      netip.Addr
	Host    string
	UserID  string
}

// Is4a reports whether the request names its destination by domain name
// (SOCKS4a).
func (r Request) Is4a() bool { return r.Host != "" }

// String is the destination as host:port or a.b.c.d:port.
func (r Request) String() string {
	h := r.Host
	if h == "" {
		h = r.IP.String()
	}
	return fmt.Sprintf("%s:%d", h, r.Port)
}

// headerLen is VN, CD, DSTPORT and DSTIP.
const headerLen = 8

// is4a reports whether DSTIP is the SOCKS4a marker 0.0.0.x, x ≠ 0.
func is4a(ip [4]byte) bool { return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 }

// parseHeader checks VN and CD of the 8-byte header.
func parseHeader(h []byte) (Request, bool, error) {
	if h[0] != Version {
		return Request{}, false, &ProtocolError{Detail: fmt.Sprintf("version %d, want 4", h[0]), Err: ErrVersion}
	}
	req := Request{Command: Command(h[1]), Port: uint16(h[2])<<8 | uint16(h[3])}
	if req.Command != CmdConnect && req.Command != CmdBind {
		return Request{}, false, &ProtocolError{Detail: "unknown command " + req.Command.String(), Err: ErrCommand}
	}
	ip := [4]byte(h[4:8])
	if is4a(ip) {
		return req, true, nil
	}
	req.IP = netip.AddrFrom4(ip)
	return req, false, nil
}

// ParseRequest decodes one request from the start of b and returns the
// bytes after it. Errors are *ProtocolError: ErrVersion (VN ≠ 4),
// ErrCommand (CD not CONNECT or BIND), ErrUserIDTooLong, ErrHostTooLong,
// ErrHostEmpty, ErrHostInvalid, or io.ErrUnexpectedEOF when b ends
// before the request does (within the bounds).
func ParseRequest(b []byte) (Request, []byte, error) {
	if len(b) < headerLen {
		return Request{}, nil, truncated("request header")
	}
	req, host, err := parseHeader(b[:headerLen])
	if err != nil {
		return Request{}, nil, err
	}
	rest := b[headerLen:]
	uid, rest, err := parseString(rest, MaxUserIDLen, ErrUserIDTooLong, "USERID")
	if err != nil {
		return Request{}, nil, err
	}
	req.UserID = string(uid)
	if host {
		var name []byte
		if name, rest, err = parseString(rest, MaxHostLen, ErrHostTooLong, "SOCKS4a domain name"); err != nil {
			return Request{}, nil, err
		}
		if err := checkHost(name); err != nil {
			return Request{}, nil, err
		}
		req.Host = string(name)
	}
	return req, rest, nil
}

// parseString cuts a NUL-terminated string of at most max bytes from b.
func parseString(b []byte, max int, tooLong error, what string) ([]byte, []byte, error) {
	i := bytes.IndexByte(b[:min(len(b), max+1)], 0)
	switch {
	case i >= 0:
		return b[:i], b[i+1:], nil
	case len(b) > max:
		return nil, nil, &ProtocolError{Detail: fmt.Sprintf("%s without a NUL within %d bytes", what, max), Err: tooLong}
	}
	return nil, nil, truncated(what)
}

// ReadRequest reads one request from r, byte by byte past the 8-byte
// header (the strings' lengths are not sent), and never past its last
// NUL: at most 8 + 256 + 256 bytes. Errors as ParseRequest's; a reader
// error is wrapped (io.EOF when nothing was read, io.ErrUnexpectedEOF
// when the request was cut short).
func ReadRequest(r io.Reader) (Request, error) {
	var h [headerLen]byte
	if n, err := io.ReadFull(r, h[:]); err != nil {
		if n == 0 && err == io.EOF {
			return Request{}, fmt.Errorf("socks4: read request: %w", err)
		}
		return Request{}, &ProtocolError{Detail: "request header truncated", Err: errors.Join(io.ErrUnexpectedEOF, err)}
	}
	req, host, err := parseHeader(h[:])
	if err != nil {
		return Request{}, err
	}
	uid, err := readString(r, MaxUserIDLen, ErrUserIDTooLong, "USERID")
	if err != nil {
		return Request{}, err
	}
	req.UserID = string(uid)
	if host {
		name, err := readString(r, MaxHostLen, ErrHostTooLong, "SOCKS4a domain name")
		if err != nil {
			return Request{}, err
		}
		if err := checkHost(name); err != nil {
			return Request{}, err
		}
		req.Host = string(name)
	}
	return req, nil
}

// readString reads a NUL-terminated string of at most max bytes.
func readString(r io.Reader, max int, tooLong error, what string) ([]byte, error) {
	var out []byte
	var c [1]byte
	for {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, &ProtocolError{Detail: what + " truncated", Err: errors.Join(io.ErrUnexpectedEOF, err)}
		}
		if c[0] == 0 {
			return out, nil
		}
		if len(out) == max {
			return nil, &ProtocolError{Detail: fmt.Sprintf("%s without a NUL within %d bytes", what, max), Err: tooLong}
		}
		out = append(out, c[0])
	}
}

func truncated(what string) error {
	return &ProtocolError{Detail: what + " truncated", Err: io.ErrUnexpectedEOF}
}

// checkHost accepts the characters of host names (letters, digits, '-',
// '_', '.') and ':' for an IPv6 literal sent as a name.
func checkHost(b []byte) error {
	if len(b) == 0 {
		return &ProtocolError{Detail: "empty SOCKS4a domain name", Err: ErrHostEmpty}
	}
	if len(b) > MaxHostLen {
		return &ProtocolError{Detail: fmt.Sprintf("SOCKS4a domain name of %d bytes, longer than %d", len(b), MaxHostLen), Err: ErrHostTooLong}
	}
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':'
		if !ok {
			return &ProtocolError{Detail: fmt.Sprintf("invalid SOCKS4a domain name %q", b), Err: ErrHostInvalid}
		}
	}
	return nil
}

// AppendRequest appends req: VN 4 | CD | DSTPORT | DSTIP | USERID NUL,
// and for SOCKS4a (Host set) DSTIP 0.0.0.1 and the name and its NUL.
// It refuses, with a *ProtocolError, an unknown command, a USERID with
// a NUL or longer than MaxUserIDLen, an invalid Host, and, without Host,
// an IP that is not IPv4 (an IPv4-mapped IPv6 address is its IPv4
// address).
func AppendRequest(dst []byte, req Request) ([]byte, error) {
	if req.Command != CmdConnect && req.Command != CmdBind {
		return dst, &ProtocolError{Detail: "unknown command " + req.Command.String(), Err: ErrCommand}
	}
	if len(req.UserID) > MaxUserIDLen {
		return dst, &ProtocolError{Detail: fmt.Sprintf("USERID of %d bytes, longer than %d", len(req.UserID), MaxUserIDLen), Err: ErrUserIDTooLong}
	}
	if bytes.IndexByte([]byte(req.UserID), 0) >= 0 {
		return dst, &ProtocolError{Detail: "USERID holds a NUL", Err: ErrUserIDInvalid}
	}
	ip := [4]byte{0, 0, 0, 1}
	if req.Host != "" {
		if err := checkHost([]byte(req.Host)); err != nil {
			return dst, err
		}
	} else {
		a := req.IP.Unmap()
		if !a.Is4() {
			return dst, &ProtocolError{Detail: fmt.Sprintf("destination %s is not IPv4", req.IP), Err: ErrAddress}
		}
		ip = a.As4()
		if is4a(ip) {
			// 0.0.0.x would read back as a SOCKS4a marker.
			return dst, &ProtocolError{Detail: fmt.Sprintf("destination %s is the SOCKS4a marker", a), Err: ErrAddress}
		}
	}
	dst = append(dst, Version, byte(req.Command), byte(req.Port>>8), byte(req.Port))
	dst = append(dst, ip[:]...)
	dst = append(append(dst, req.UserID...), 0)
	if req.Host != "" {
		dst = append(append(dst, req.Host...), 0)
	}
	return dst, nil
}

// ReplyLen is the length of a reply.
const ReplyLen = 8

// AppendReply appends VN 0 | CD | DSTPORT | DSTIP. addr is the address
// the reply reports (BIND's listening socket, or its peer; clients ignore
// it for CONNECT). An address that is not IPv4 is sent as 0.0.0.0 with
// its port, which a client reads as "the SOCKS server's address" ("SOCKS
// 4", BIND).
func AppendReply(dst []byte, rep Reply, addr netip.AddrPort) []byte {
	var ip [4]byte
	port := addr.Port()
	if a := addr.Addr().Unmap(); a.Is4() {
		ip = a.As4()
	}
	dst = append(dst, ReplyVersion, byte(rep), byte(port>>8), byte(port))
	return append(dst, ip[:]...)
}

// ParseReply decodes a reply from the start of b. A VN other than 0 is
// a *ProtocolError wrapping ErrReplyVersion; a short b wraps
// io.ErrUnexpectedEOF.
func ParseReply(b []byte) (Reply, netip.AddrPort, error) {
	if len(b) < ReplyLen {
		return 0, netip.AddrPort{}, truncated("reply")
	}
	if b[0] != ReplyVersion {
		return 0, netip.AddrPort{}, &ProtocolError{Detail: fmt.Sprintf("reply version %d, want 0", b[0]), Err: ErrReplyVersion}
	}
	return Reply(b[1]), netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), uint16(b[2])<<8|uint16(b[3])), nil
}

// ReadReply reads one reply (8 bytes) from r; errors as ParseReply's,
// and a reader error wrapped.
func ReadReply(r io.Reader) (Reply, netip.AddrPort, error) {
	var b [ReplyLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, netip.AddrPort{}, fmt.Errorf("socks4: read reply: %w", err)
	}
	return ParseReply(b[:])
}
