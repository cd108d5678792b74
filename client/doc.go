// Package client reaches destinations through a SOCKS5 gateway that
// authenticates with GSS-API and Kerberos V5 (RFC 1961) and protects the
// traffic per message (RFC 4121 wrap tokens): a gssocks gateway, or Dante's
// sockd built with GSS-API.
//
// A Dialer from New takes the user's Kerberos identity (the ticket cache,
// a keytab or a password), gets a service ticket for the gateway's
// principal, establishes the GSS-API context (RFC 1961 §3), negotiates the
// protection level (§4) and then speaks SOCKS5 (RFC 1928) inside the
// encapsulation (§5):
//
//   - DialContext: CONNECT, a net.Conn to a TCP destination, with the shape
//     of golang.org/x/net/proxy.ContextDialer;
//   - ListenPacket: UDP ASSOCIATE, a net.PacketConn whose datagrams are
//     encapsulated under the control connection's context;
//   - Listen: BIND, a net.Listener that accepts one inbound connection.
//
// Each failure a user can act on is a typed error whose text says what to
// do: *NoCredentialsError (run kinit, or use a FILE: ticket cache),
// *LoginError, *PrincipalError (which service principal was asked, how to
// set it), *ClockSkewError, *KDCUnreachableError, *LevelError (with the
// levels asked, granted and accepted), *AuthError and *ReplyError (with the
// SOCKS reply code and its meaning).
//
// The Kerberos exchanges with the KDC (AS and TGS, RFC 4120 §3.1, §3.3)
// are run here with gokrb5's message types; the GSS-API mechanism is
// package gssapi, the framing package encap and the SOCKS codec package
// socks5. The package links nothing of the gateway.
//
// It does not do: cross-realm paths of more than one hop, FAST or PKINIT
// pre-authentication, reading KEYRING:, KCM: or API: ticket caches (it
// says how to get a FILE: one), writing renewed tickets back to the
// ticket cache, delegation, or the RC4 and DES3 enctypes (the gateway
// protocol's tokens are AES only).
package client
