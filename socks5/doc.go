// Package socks5 is the SOCKS version 5 wire codec of RFC 1928: the
// version identifier/method selection messages (§3), the request (§4),
// addressing (§5), the reply (§6) and the UDP request header (§7), with
// the method codes of RFC 1961 (GSS-API) and RFC 1929 (username/password),
// and the RFC 1929 §2 username/password subnegotiation (userpass.go).
//
// It holds only the protocol details: pure functions over byte slices and
// io.Readers that decode and encode one message each, the typed constants
// of each field with String methods, and typed errors for the cases a
// caller branches on (*ProtocolError carries the reply a server should
// send). It opens no sockets, logs nothing, keeps no state and imports
// nothing of gssocks, so a program that only dials through a gateway links
// this codec and not the gateway.
//
// It does not authenticate (the GSS-API exchange and its RFC 1961
// encapsulation are packages gssapi and encap), resolve names, decide
// anything (package policy) or carry out a command (package server); it
// does not reassemble fragmented UDP datagrams (§7 lets an implementation
// drop them: ParseUDPHeader returns ErrFragmented).
//
// Readers read exactly one message and never past it, since the bytes that
// follow belong to the next layer; a reader that ends early gives an error
// wrapping io.EOF (nothing read) or io.ErrUnexpectedEOF. Two
// normalisations are applied on decoding and encoding alike, so a
// round trip gives back what was encoded: an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d) is an IPv4 address, and an IPv6 zone is not carried.
package socks5
