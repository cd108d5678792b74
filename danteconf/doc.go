// Package danteconf reads the server configuration of Dante 1.4
// (sockd.conf, described in Dante's sockd.conf(5)) and converts what maps
// onto gssocks's HCL configuration (package config), for operators moving
// a GSS-API SOCKS gateway (RFC 1928, RFC 1961) from Dante to gssocks.
//
// Parse is a tolerant reader of the file's syntax: comments, lines
// continued with a backslash, "keyword: value" server settings anywhere in
// the file, client, socks and hostid rules (and the 1.2 form of socks
// rules, a bare "pass" or "block"), route and monitor blocks, addresses
// with a prefix length or a dotted netmask, "0/0", host names, ".domain"
// suffixes, interface names and port conditions ("port = 80",
// "port 1-1024", "port gt 1023", service names). It keeps every keyword it
// does not know, with its line, so that Convert can say it was left out.
// It does not check what only a running sockd can (whether an interface
// exists, whether a service name is in /etc/services of that host) and it
// never resolves a name.
//
// Convert writes an HCL configuration that package config loads, with a
// comment naming the sockd.conf line behind every block and attribute, and
// returns a Note for everything that does not map or maps with a change of
// behaviour. Where Dante's behaviour cannot be expressed, the output fails
// closed: an allow rule with a condition gssocks cannot check is left out,
// a deny rule loses the condition and so denies more. Client rules (which
// Dante checks on the TCP connection, before SOCKS) are folded into the
// rules: "client block" networks become deny rules at the top, and the
// sources of every allow rule are narrowed to the networks "client pass"
// rules let in, computed in Dante's first-match order.
//
// The package does not read socks.conf (Dante's client configuration), does
// not start or query sockd, and does not convert Dante's modules
// (bandwidth, redirect, session limits, LDAP, PAC) or its socket options.
package danteconf
