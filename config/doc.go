// Package config reads the gssocks configuration file (HCL, or HCL's JSON
// syntax) and turns it into validated runtime values: a Config with the
// listeners, Kerberos acceptor settings, timeouts, limits, logging, the
// no_auth networks, the gateway-local and per-realm settings and a
// compiled *policy.Engine.
//
// # Loading
//
// Load and Parse (or a Loader, which also returns the parsed files for
// FormatDiagnostics) decode the file into the structs of its schema, then
// check and convert every value. Every problem found is reported, not just
// the first, as an *hcl.Diagnostic whose Subject points at the offending
// block, attribute or list element (file:line:col), with a "Did you mean
// …?" where a near name exists. Errors make the Config nil; warnings (a
// rule shadowed by an earlier one, a world-readable keytab, a lower-case
// realm, no_auth open to everyone, the gateway-local deny turned off, …)
// come with a usable Config. The only I/O is reading the configuration
// file and the keytab, which is checked to exist, to be readable and not
// world-readable, to be a keytab and to hold the configured principals,
// and listing the host's
// interface addresses, which the engine's gateway-local deny refuses as
// destinations (Loader.LocalAddrs).
//
// The decoder is split by what each part knows: schema.go is the file as
// written (gohcl structs), values.go the typed values with their ranges
// (strings, lists, numbers, durations, networks, ports, destinations,
// principal patterns), validate.go plain string checks without HCL,
// decode.go the top-level blocks, replay.go the replay_cache block,
// rules.go the rule blocks, lint.go the
// warnings about a policy that loads but cannot do what was meant, and
// keytab.go the keytab checks. The Kerberos facts behind those checks
// (reading the keytab, parsing and matching principals) are gssapi's, the
// ones the acceptor uses; this package only words them as diagnostics.
// Whether a configured principal has an AES key is checked where the
// acceptor is built (gateway.Provision).
//
// The package does not decide requests (policy does), build the acceptor,
// open listeners or logs, or watch the file: a reload loads a new Config
// and replaces the old one whole.
package config
