// Package server is the SOCKS5 gateway (RFC 1928) with GSS-API
// authentication and protection (RFC 1961): it listens, reads the
// greeting, authenticates the client's Kerberos ticket, negotiates the
// protection level, reads the request under that protection and carries
// out CONNECT, BIND and UDP ASSOCIATE as policy allows, relaying the data.
// ServeHTTPProxy is a second front door to the same sessions: an HTTP/1.1
// proxy (CONNECT and http:// forwarding) whose clients authenticate with
// Negotiate (RFC 4559); see http.go.
//
// What it holds to, whatever the client sends:
//
//   - One account, one identity: the client is decided and counted by its
//     canonical principal (policy.Engine.Identify: the verified PAC's
//     account name, case folded by realm); a ticket whose account cannot
//     be told is refused with the RFC 1961 §3 abort.
//   - What is judged is what is dialled: every destination (a CONNECT's, a
//     BIND's expected peer, each UDP datagram's) is normalised
//     (policy.NormalizeDest, names looked up absolute, answers made
//     canonical) and exactly the judged addresses are dialled, CONNECT
//     racing them under one deadline (RFC 8305). The policy's built-in
//     gateway-local deny answers REP 02.
//   - Nothing is opened before it is allowed: BIND and UDP ASSOCIATE are
//     decided (policy.Engine.DecideCommand) before any socket.
//   - Bounded resources: connections in their handshake have their own
//     limits (Settings.MaxHandshakes, per source), apart from the sessions
//     (Settings.MaxSessions); per-principal limits count every command;
//     each UDP association's caches are bounded.
//   - Passwords (RFC 1929, password.go) only from Settings.Password's
//     sources and never in place of GSS-API: checked by the KDC and
//     validated through the acceptor (gssapi.PasswordVerifier), bounded by
//     failure limits per source and per principal and a cap on
//     verifications in flight, never logged; the session runs clear.
//   - A session ends with its ticket (unless its rule's OutliveTicket says
//     otherwise), when idle, at shutdown; a panic in one of its goroutines
//     ends it alone (Server.Panics counts them).
//
// Each session fills an audit.Record as it goes (who, how, where to, what
// was dialed, the rule, the reply, the bytes, why it ended) and hands it,
// when it ends, to Options.Audit and then to Options.OnSessionEnd. The
// session's operational log lines carry the record's session_id; the
// client-chosen strings in them (principal, service and host names) are
// quoted when they hold control characters, so that a text log record
// stays one line.
//
// The GSS-API mechanism is package gssapi, the RFC 1961 framing package
// encap, the RFC 1928 wire codec package socks5, the decisions package
// policy, the record and its sinks package audit; this package does the
// networking and the session lifecycle (timeouts, limits, graceful
// shutdown, reload). It does not read configuration files or open log
// files: its caller (the composition root) builds Settings and the sinks.
package server
