// Package policy is the gssocks access policy engine: it decides, without
// any I/O, which RFC 1961 §4 protection level a session gets and whether a
// SOCKS5 request (RFC 1928 §4) may proceed.
//
// It works on plain values only. A Rule is a struct of matchers (strings,
// netip prefixes, port ranges, commands, levels) with the Position it was
// written at; NewEngine checks and compiles a list of them into an
// immutable Engine. Reading the configuration file, reporting its
// mistakes and turning it into Rules is the config package's work: this
// package imports neither HCL nor Kerberos, and knows nothing of files.
//
// # Deciding
//
// An Engine holds its rules in order (file order, for rules the config
// package decoded). The first rule whose matchers
// all match a request decides it; when none does, the request is denied.
// An absent matcher matches everything; a present one matches when:
//
//   - principals: a pattern matches the client's canonical "name@REALM"
//     (Identity). '*' matches any run of characters and '?' one
//     character; the comparison is case-sensitive, realm included, as
//     Kerberos compares names, except for an Identity whose names are
//     case-insensitive (Active Directory accounts), where case is
//     ignored. "*" alone matches any authenticated principal.
//   - realms: the client's realm is in the list (exact; ignoring case
//     for case-insensitive identities).
//   - groups: the client's user SID or one of its group SIDs (from a
//     verified PAC) is among the rule's SIDs, compared case-insensitively
//     (the config package resolves group aliases to SIDs). A client
//     whose groups are unknown (no verified PAC: Identity.GroupsKnown)
//     fails closed: a deny rule with groups matches it, an allow rule
//     with groups does not; a realm declared to issue no PACs
//     (Realm.NoPAC) is in no group instead.
//   - sources: the client address is inside one of the networks, as
//     Sources.Contains tests it (IPv4-mapped addresses unmapped, IPv6
//     zones dropped); the server tests no_auth membership the same way.
//   - methods: the session's front door and authentication
//     (Request.Method: gssapi, password, negotiate, none, socks4) is
//     listed. An absent matcher matches every method, MethodUnknown (a
//     caller that did not say) included; a list never matches
//     MethodUnknown.
//   - commands, ports: the SOCKS command and destination port are listed.
//   - destinations: a name pattern matches Request.Host ("*.corp.example"
//     matches names below corp.example, not corp.example itself; an exact
//     name matches itself; case and a trailing dot are ignored), or the
//     resolved addresses fall in the listed networks. Here allow and deny
//     rules differ on purpose: an allow rule needs every address inside
//     its networks, a deny rule needs any one. A name resolving partly into
//     a denied range is therefore denied by a deny rule listed before the
//     allow that names it, which is what defeats DNS rebinding towards
//     internal ranges: put deny rules first. The caller resolves names
//     before Decide; a request with no addresses never matches networks.
//
// # Destinations as the kernel reaches them
//
// Every destination form goes through one normaliser before matching:
// NormalizeDest for what the client sent (a name that is an address
// literal in any form a resolver accepts, "127.1" or "0x7f.1" included,
// is that address), CanonicalAddr for every address (IPv4-mapped and
// IPv4-compatible IPv6 addresses are their IPv4 address). The engine
// applies them again to each Request, but the server must dial what
// they return, so that what is judged is what is dialled. The
// unspecified addresses 0.0.0.0 and :: and the rest of 0.0.0.0/8 reach
// the gateway itself on Linux: rules match them as loopback too (an
// allow rule needs both in its networks, a deny rule either).
//
// The built-in gateway-local deny (GatewayLocal, on unless turned off)
// keeps allow rules away from the gateway itself: loopback, unspecified
// and "this network", link-local, the gateway's own addresses
// (WithLocalAddrs) and configured ones. An allow rule reaches such a
// destination only when one of its destination networks lies wholly
// inside those ranges and holds it (it names the local service, like
// 127.0.0.1/32); otherwise the request is denied with Decision.Rule
// GatewayLocalRule. Deny rules and the default deny refuse anyway and
// keep their names; Decision.GatewayLocal says why the destination is
// gateway-local whoever decided.
//
// # Identities
//
// NewIdentity (or Engine.Identify, with the realm's settings) turns what
// the acceptor established (Client) into the one canonical Identity of
// the account: the PAC's account name when the ticket has a verified
// PAC, else the ticket's name; lower-cased with the realm upper-cased
// when names are case-insensitive (always with a verified PAC, else per
// Realm.CaseInsensitiveNames). An enterprise name ("alice@corp.example")
// without a PAC naming the account has no canonical name
// (ErrNoCanonicalName). Presented keeps the ticket's spelling for the
// audit record.
//
// Identity matchers (principals, realms, groups) never match an
// unauthenticated session (SOCKS method 00 or SOCKS4, allowed by no_auth):
// only rules without identity matchers can admit those. A Request whose
// Method does not authenticate (Method.Authenticates) is judged without
// its Identity, whatever the caller put there.
//
// Protection is not a matcher: when the first matching rule does not
// accept the negotiated level, the request is denied by that rule rather
// than passed on to later rules. The level itself is chosen earlier, by
// ChooseLevel, because RFC 1961 §4 negotiates it before the client sends
// its SOCKS request: only identity and source are known then.
//
// Denials carry the deciding rule and a reason (Decision, *Denied), for the
// SOCKS reply and the audit log; Explain adds why each earlier rule did not
// match, and Shadows finds rules an earlier rule makes unreachable. The
// package does not parse configuration, resolve names, list the host's
// interfaces, authenticate clients or count sessions (it reports the
// per-principal limit for the server to enforce, keyed by the canonical
// Identity.Principal); a reload builds a new Engine and replaces the old
// one whole.
package policy
