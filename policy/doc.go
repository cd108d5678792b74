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
//   - principals: a pattern matches the client's "name@REALM". '*' matches
//     any run of characters and '?' one character; the comparison is
//     case-sensitive, realm included, as Kerberos compares names. "*"
//     alone matches any authenticated principal.
//   - realms: the client's realm is in the list (exact, case-sensitive).
//   - groups: the client's user SID or one of its group SIDs (from the
//     PAC) is among the rule's SIDs, compared case-insensitively (the
//     config package resolves group aliases to SIDs).
//   - sources: the client address is inside one of the networks, as
//     Sources.Contains tests it (IPv4-mapped addresses unmapped, IPv6
//     zones dropped); the server tests no_auth membership the same way.
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
// Identity matchers (principals, realms, groups) never match an
// unauthenticated session (SOCKS method 00, allowed by no_auth): only rules
// without identity matchers can admit those.
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
// package does not parse configuration, resolve names, authenticate
// clients or count sessions (it reports the per-principal limit for the
// server to enforce); a reload builds a new Engine and replaces the old one
// whole.
package policy
