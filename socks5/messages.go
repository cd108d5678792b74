package socks5

import (
	"fmt"
	"io"
)

// ReadGreeting reads the client's version identifier/method selection
// message, VER | NMETHODS | METHODS (RFC 1928 §3), and returns the 1 to
// 255 methods offered, in the client's order. A VER other than 5 or
// NMETHODS 0 is a *ProtocolError (Reply ReplySucceeded: a server answers
// nothing, or X'FF'); a short read wraps the reader's error.
func ReadGreeting(r io.Reader) ([]Method, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("socks5: read greeting: %w", err)
	}
	if h[0] != Version {
		return nil, errVersion()
	}
	if h[1] == 0 {
		return nil, &ProtocolError{Detail: "greeting offers no methods"}
	}
	m := make([]byte, h[1])
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, fmt.Errorf("socks5: read greeting methods: %w", eofIsUnexpected(err))
	}
	out := make([]Method, len(m))
	for i, b := range m {
		out[i] = Method(b)
	}
	return out, nil
}

// AppendGreeting appends VER | NMETHODS | METHODS (RFC 1928 §3). It
// refuses, with a *ProtocolError, no methods or more than 255.
func AppendGreeting(dst []byte, methods []Method) ([]byte, error) {
	if len(methods) == 0 || len(methods) > 255 {
		return dst, &ProtocolError{Detail: fmt.Sprintf("greeting with %d methods, want 1 to 255", len(methods))}
	}
	dst = append(dst, Version, byte(len(methods)))
	for _, m := range methods {
		dst = append(dst, byte(m))
	}
	return dst, nil
}

// ReadMethodSelection reads the server's answer to the greeting, VER |
// METHOD (RFC 1928 §3). MethodNoAcceptable is returned as a value, not an
// error: the caller closes. A VER other than 5 is a *ProtocolError.
func ReadMethodSelection(r io.Reader) (Method, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("socks5: read method selection: %w", err)
	}
	if b[0] != Version {
		return 0, errVersion()
	}
	return Method(b[1]), nil
}

// AppendMethodSelection appends VER | METHOD (RFC 1928 §3), 2 bytes.
func AppendMethodSelection(dst []byte, m Method) []byte {
	return append(dst, Version, byte(m))
}

// Request is a SOCKS request (RFC 1928 §4): the command and DST.ADDR /
// DST.PORT. RSV is not kept: senders write X'00', readers ignore it.
type Request struct {
	Command Command
	Dest    Addr
}

// ReadRequest reads VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT (RFC 1928
// §4), 10 to 262 bytes, and no more. Errors:
//   - VER other than 5: *ProtocolError, Reply ReplySucceeded (close);
//   - unknown ATYP: *ProtocolError with ReplyAddressTypeNotSupported, read
//     no further since the rest cannot be delimited;
//   - a domain name refused as ParseAddr does: *ProtocolError with
//     ReplyHostUnreachable;
//   - unknown CMD: *ProtocolError with ReplyCommandNotSupported, after the
//     whole request was read; the Request is returned too;
//   - the reader ending: its error, wrapped (io.EOF if nothing came,
//     io.ErrUnexpectedEOF within the request).
func ReadRequest(r io.Reader) (Request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Request{}, fmt.Errorf("socks5: read request: %w", err)
	}
	if h[0] != Version {
		return Request{}, errVersion()
	}
	req := Request{Command: Command(h[1])}
	a, err := readAddr(r, h[3], "request")
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

// ParseRequest decodes a request at the start of b, as ReadRequest does,
// and returns the bytes after it. A b too short for the request is a
// *ProtocolError wrapping io.ErrUnexpectedEOF.
func ParseRequest(b []byte) (Request, []byte, error) {
	if len(b) < 4 {
		return Request{}, nil, errTruncated("request")
	}
	if b[0] != Version {
		return Request{}, nil, errVersion()
	}
	req := Request{Command: Command(b[1])}
	a, rest, err := ParseAddr(b[3:])
	if err != nil {
		return req, nil, err
	}
	req.Dest = a
	switch req.Command {
	case CmdConnect, CmdBind, CmdUDPAssociate:
		return req, rest, nil
	}
	return req, rest, &ProtocolError{Reply: ReplyCommandNotSupported, Detail: fmt.Sprintf("unknown command %#02x", b[1])}
}

// AppendRequest appends VER | CMD | RSV | ATYP | DST.ADDR | DST.PORT (RFC
// 1928 §4). Any command is written, so tests can send unknown ones; an
// address AppendAddr refuses is an error.
func AppendRequest(dst []byte, req Request) ([]byte, error) {
	out, err := AppendAddr(append(dst, Version, byte(req.Command), 0x00), req.Dest)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// ReadReply reads VER | REP | RSV | ATYP | BND.ADDR | BND.PORT (RFC 1928
// §6), 10 to 262 bytes, and no more. A reply other than ReplySucceeded is
// returned as a value, not an error (BIND sends two replies, §4). Errors
// are those of ReadRequest but for the command.
func ReadReply(r io.Reader) (Reply, Addr, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, Addr{}, fmt.Errorf("socks5: read reply: %w", err)
	}
	if h[0] != Version {
		return 0, Addr{}, errVersion()
	}
	a, err := readAddr(r, h[3], "reply")
	if err != nil {
		return 0, Addr{}, err
	}
	return Reply(h[1]), a, nil
}

// AppendReply appends VER | REP | RSV | ATYP | BND.ADDR | BND.PORT (RFC
// 1928 §6). bnd is the zero Addr when there is nothing to tell (0.0.0.0
// port 0); an address AppendAddr refuses is an error.
func AppendReply(dst []byte, rep Reply, bnd Addr) ([]byte, error) {
	out, err := AppendAddr(append(dst, Version, byte(rep), 0x00), bnd)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// ParseUDPHeader splits a datagram (RFC 1928 §7), RSV(2) | FRAG | ATYP |
// DST.ADDR | DST.PORT | DATA, into the address (the destination in a
// client's datagram, the source in a relay's) and DATA, which aliases b.
// Errors: FRAG other than X'00' is ErrFragmented; RSV not zero, an unknown
// ATYP, a refused domain name or a short b (wrapping io.ErrUnexpectedEOF)
// are *ProtocolError.
func ParseUDPHeader(b []byte) (Addr, []byte, error) {
	if len(b) < 4 {
		return Addr{}, nil, errTruncated("UDP header")
	}
	if b[0] != 0 || b[1] != 0 {
		return Addr{}, nil, &ProtocolError{Detail: "UDP header reserved bytes not zero"}
	}
	if b[2] != 0 {
		return Addr{}, nil, ErrFragmented
	}
	return ParseAddr(b[3:])
}

// AppendUDPHeader appends RSV(2) | FRAG | ATYP | ADDR | PORT (RFC 1928 §7)
// with FRAG X'00' (standalone datagram); DATA goes after it. An address
// AppendAddr refuses is an error.
func AppendUDPHeader(dst []byte, a Addr) ([]byte, error) {
	out, err := AppendAddr(append(dst, 0, 0, 0), a)
	if err != nil {
		return dst, err
	}
	return out, nil
}
