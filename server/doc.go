// Package server is the SOCKS5 gateway (RFC 1928) with GSS-API
// authentication and protection (RFC 1961): it listens, reads the
// greeting, authenticates the client's Kerberos ticket, negotiates the
// protection level, reads the request under that protection and carries
// out CONNECT, BIND and UDP ASSOCIATE as policy allows, relaying the data
// and writing one audit record per session.
//
// The GSS-API mechanism is package gssapi, the RFC 1961 framing package
// encap, the RFC 1928 wire codec package socks5, the decisions package
// policy; this package does the networking and the session lifecycle
// (timeouts, limits, graceful shutdown, reload).
package server
