// Package encap implements the GSS-API framing of RFC 1961 for SOCKS5:
// the message format of §3 (version 1, MTYP, 2-byte length, token; the
// abort message 01 ff), the context-establishment exchange for both sides,
// protection-level subnegotiation (§4, in the RFC's wrapped form and the
// unwrapped "NEC" form; level 0 "clear", which is not in the RFC but which
// Dante and curl use), and per-message encapsulation (§5) of a TCP stream
// (Conn) and of UDP datagrams (Datagram). It also holds the data phase's
// copy engine (Relay), which a gateway uses for both directions of a
// session at every level, and the buffer Pool that Conn and Relay share.
//
// It knows nothing of SOCKS commands; gssapi supplies the Kerberos
// contexts. What level a session gets is the caller's decision (a
// LevelChooser), this package only carries it out. A Conn hides the
// connection it wraps (NetConn reaches it, as crypto/tls does): nothing
// sent through a Conn leaves unwrapped.
package encap
