// Package gssapi implements the Kerberos V5 GSS-API mechanism (RFC 1964 as
// updated by RFC 4121) for gssocks: context establishment for the acceptor and
// the initiator, and the per-message tokens (Wrap, MIC) with their sequence
// state.
//
// It implements:
//   - RFC 2743 §3.1 InitialContextToken framing with the krb5 OID and the
//     RFC 1964 §1.1 TOK_IDs (01 00 AP-REQ, 02 00 AP-REP, 03 00 KRB-ERROR);
//   - RFC 4121 §4.1 context establishment: the 0x8003 authenticator checksum
//     (GSS flags, channel bindings), AP-REP with an optional acceptor subkey and
//     sequence number, a bounded replay cache;
//   - RFC 4121 §4.2 per-message tokens: Wrap with and without confidentiality
//     (any RRC and EC on receive), MIC, the SentByAcceptor and AcceptorSubkey
//     flags, and sequence checking (strict order for streams, a sliding replay
//     window for datagrams);
//   - the RFC 3961 simplified profile for the AES enctypes of RFC 3962 (17, 18)
//     and RFC 8009 (19, 20), with keys derived once per context.
//
// Kerberos messages (tickets, authenticators, PACs) are decoded with
// github.com/jcmturner/gokrb5/v8, which this package wraps thinly: every input
// is length-checked before gokrb5 sees it and panics are recovered at the
// trust boundary (see Acceptor.Accept). Identity is taken from the ticket, never
// from the authenticator alone.
//
// It does not do: sockets (callers move tokens), credential acquisition (the
// initiator takes a service ticket from the caller), delegation, DCE-style
// contexts, or the RFC 1964 token formats used by RC4 and DES3 session keys,
// which are refused with an UnsupportedEnctypeError.
package gssapi
