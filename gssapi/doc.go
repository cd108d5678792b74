// Package gssapi implements the Kerberos V5 GSS-API mechanism (RFC 1964 as
// updated by RFC 4121) for gssocks: context establishment for the acceptor and
// the initiator, and the per-message tokens (Wrap, MIC) with their sequence
// state. It is also the one home of the Kerberos facts the rest of gssocks
// uses: keytab loading, principal parsing and matching, the enctype table.
//
// It implements:
//   - RFC 2743 §3.1 InitialContextToken framing with the krb5 OID and the
//     RFC 1964 §1.1 TOK_IDs (01 00 AP-REQ, 02 00 AP-REP, 03 00 KRB-ERROR);
//   - RFC 4121 §4.1 context establishment: the 0x8003 authenticator checksum
//     (GSS flags, channel bindings), AP-REP with an optional acceptor subkey and
//     sequence number, a replay cache keyed on authenticated bytes only and
//     bounded per client principal, behind the ReplayStore interface (the
//     store shared by several gateway nodes is in package replay);
//   - RFC 4121 §4.2 per-message tokens: Wrap with and without confidentiality
//     (any RRC and EC on receive), MIC, the SentByAcceptor and AcceptorSubkey
//     flags, and sequence checking (strict order for streams, a sliding replay
//     window for datagrams);
//   - the RFC 3961 simplified profile for the AES enctypes of RFC 3962 (17, 18)
//     and RFC 8009 (19, 20), with each per-message key derived once per
//     context, when a token first needs it;
//   - the MIT keytab file format (LoadKeytab, ParseKeytab), checked before
//     gokrb5 decodes it, and MIT's acceptor key lookup: kvno 0 entries match
//     any kvno, entries holding only the low 8 bits of a kvno match it, and a
//     ticket naming no keytab principal exactly (an alias, a case difference)
//     is tried with the configured principals' keys of its enctype, a bounded
//     number of them;
//   - context expiry at the ticket's end time (Context.CheckExpiry);
//   - SPNEGO (RFC 4178) for the acceptor, in the one round trip RFC 1961
//     gives: a NegTokenInit whose first mechanism is Kerberos (the
//     standard or Microsoft's OID) with the optimistic Kerberos token is
//     answered with a NegTokenResp (accept-completed, the AP-REP, and a
//     mechListMIC when the client sent one); other offers are refused
//     with ErrNoKrb5Mech (spnego.go);
//   - username/password verification for RFC 1929 (password.go): an AS
//     exchange with the password (RFC 4120 §3.1, gokrb5's client), then a
//     service ticket for the gateway's own principal (§3.3) accepted by
//     Acceptor.Accept as an AP-REQ, so that only the KDC that knows the
//     keytab's key can vouch for a user (pam_krb5's "validate");
//   - who may authenticate (clients.go): clients of the service's realm,
//     of AcceptorConfig.TrustedRealms through cross-realm trust with every
//     realm of the ticket's transited path (RFC 4120 §3.3.3.2,
//     DOMAIN-X500-COMPRESS) trusted too; anonymous tickets (RFC 6112) and
//     service principals as clients only when allowed, krbtgt never.
//
// Kerberos messages (tickets, authenticators, PACs) are decoded with
// github.com/jcmturner/gokrb5/v8, which this package wraps thinly: every input
// is length-checked before gokrb5 sees it, panics are recovered at the trust
// boundary (Acceptor.Accept runs as named steps behind one recover), and
// gokrb5's error texts, which can quote the input, are replaced by our own.
// Identity is taken from the ticket, never from the authenticator alone; the
// service principal is the keytab entry whose key opened the ticket, not the
// unprotected sname beside it. A PAC's server signature ([MS-PAC] §2.8.1)
// is verified with the service key before anything in it is decoded, and
// only its logon info is decoded, once the NDR counts in it are bounded by
// its bytes (the KDC re-signs what a trusted realm wrote).
//
// Every error wraps exactly one of the sentinel errors in errors.go; error
// texts never carry keys, decrypted bytes or file contents, and names taken
// from the wire are quoted.
//
// It does not do: sockets (callers move tokens), credential acquisition (the
// initiator takes a service ticket from the caller), delegation, DCE-style
// contexts, the RFC 1964 token formats used by RC4 and DES3 session keys,
// which are refused with an UnsupportedEnctypeError, SPNEGO for the
// initiator or SPNEGO negotiations needing more than one round trip
// (NTLM, NegoEx, a counter-proposal), or [capaths]-style trust paths:
// trust is a flat list of realms.
package gssapi
