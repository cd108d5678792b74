package socks5

import (
	"errors"
	"io"
)

// ProtocolError is a malformed SOCKS message, received or about to be
// sent. Reply is the code a server answers a malformed request with when
// one can still be sent (RFC 1928 §6: ReplyCommandNotSupported,
// ReplyAddressTypeNotSupported, ReplyHostUnreachable for a domain name
// gssocks refuses); ReplySucceeded means none: the server just closes. A
// client reading a reply ignores Reply. Err, when set, is the cause
// (io.ErrUnexpectedEOF for a byte slice too short for its message).
//
// Detail never holds more of the peer's bytes than a quoted, escaped
// domain name.
type ProtocolError struct {
	Reply  Reply
	Detail string
	Err    error
}

func (e *ProtocolError) Error() string { return "socks5: " + e.Detail }

// Unwrap returns the cause, or nil.
func (e *ProtocolError) Unwrap() error { return e.Err }

// ErrFragmented is returned by ParseUDPHeader for a datagram with FRAG
// other than X'00' (RFC 1928 §7). gssocks does not reassemble: the RFC
// lets an implementation that does not support fragmentation drop such
// datagrams.
var ErrFragmented = errors.New("socks5: fragmented UDP datagram")

func errVersion() error { return &ProtocolError{Detail: "not SOCKS version 5"} }

func errTruncated(what string) error {
	return &ProtocolError{Detail: what + " truncated", Err: io.ErrUnexpectedEOF}
}
