// Package policy is the gssocks configuration and access policy: it loads
// the HCL configuration file into an immutable Config and decides, without
// any I/O, which RFC 1961 §4 protection level a session gets and whether a
// SOCKS5 request (RFC 1928 §4) may proceed.
//
// # Loading
//
// Load and Parse (or a Loader, which also returns the parsed files for
// FormatDiagnostics) decode the file into user-facing structs, then validate
// and convert them into a Config. Every problem found is reported, not just
// the first, as an *hcl.Diagnostic whose Subject points at the offending
// block, attribute or list element, with a "Did you mean …?" where a near
// name exists. Errors make the Config nil; warnings (a rule shadowed by an
// earlier one, a world-readable keytab, …) come with a usable Config. The
// only I/O is reading the configuration file and the keytab, which is
// checked to exist, to be readable and to hold the configured principals.
//
// # Deciding
//
// An Engine holds the rules in file order. The first rule whose matchers
// all match a request decides it; when none does, the request is denied.
// An absent matcher matches everything; a present one matches when:
//
//   - principals: a pattern matches the client's "name@REALM". '*' matches
//     any run of characters and '?' one character; the comparison is
//     case-sensitive, realm included, as Kerberos compares names. "*"
//     alone matches any authenticated principal.
//   - realms: the client's realm is in the list (exact, case-sensitive).
//   - groups: the client's user SID or one of its group SIDs (from the
//     PAC) is among the rule's SIDs (group aliases resolved at load).
//   - sources: the client address is inside one of the networks.
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
// SOCKS reply and the audit log. The package does not resolve names,
// authenticate clients, count sessions (it reports the per-principal limit
// for the server to enforce) or watch the file for changes: a reload loads
// a new Config and replaces the old one whole.
package policy
