// Package socks4 is the SOCKS version 4 wire codec, with the SOCKS4a
// extension: the request (VN 4, CD, DSTPORT, DSTIP, USERID and, for 4a, a
// domain name) and the reply (VN 0, CD, DSTPORT, DSTIP) of "SOCKS: A
// protocol for TCP proxy across firewalls" (Ying-Da Lee, NEC) and "SOCKS
// 4A: A Simple Extension to SOCKS 4 Protocol". SOCKS4 has no RFC; those
// two documents are the specification, and the section names below are
// theirs.
//
// It holds only the protocol details: pure functions over byte slices
// and io.Readers that decode and encode one message each, typed
// constants with String methods, and typed errors (*ProtocolError
// wrapping a sentinel a caller can branch on). It opens no sockets, logs
// nothing, keeps no state and imports only the standard library.
//
// What it bounds: the USERID and the 4a domain name are NUL-terminated
// strings whose length the sender does not announce, so a reader would
// otherwise read until the peer stops; each is cut at MaxUserIDLen and
// MaxHostLen bytes (ErrUserIDTooLong, ErrHostTooLong). A 4a domain name
// must be a host name (letters, digits, '-', '_', '.', and ':' for an
// IPv6 literal), so that it cannot smuggle anything into logs or the
// resolver.
//
// It does not authenticate (SOCKS4 has no authentication: the USERID is
// what the client claims, and a gateway must never take it for an
// identity), query identd (replies 0x5c and 0x5d exist only as values),
// resolve names, decide anything or carry out a command. Readers read
// exactly one message and never past it, since the bytes that follow
// belong to the relayed stream; a reader that ends early gives an error
// wrapping io.EOF (nothing read) or io.ErrUnexpectedEOF.
package socks4
