// Package server is the SOCKS5 gateway (RFC 1928) with GSS-API
// authentication and protection (RFC 1961): it listens, reads the
// greeting, authenticates the client's Kerberos ticket, negotiates the
// protection level, reads the request under that protection and carries
// out CONNECT, BIND and UDP ASSOCIATE as policy allows, relaying the data.
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
