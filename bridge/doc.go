// Package bridge is the local proxy behind `gssocks bridge`: it lets
// programs that know nothing of GSS-API (browsers, curl, git, package
// managers, anything with a proxy setting) reach destinations through a
// SOCKS5 gateway with Kerberos authentication and per-message protection
// (RFC 1961), under the identity of the user running it.
//
// It serves, on loopback by default:
//
//   - SOCKS5 without authentication (RFC 1928 §3 method X'00'): CONNECT
//     and UDP ASSOCIATE (§4, §7) to IPv4, IPv6 and domain-name
//     destinations;
//   - an HTTP proxy: CONNECT tunnels (RFC 9110 §9.3.6) and plain-HTTP
//     forwarding of absolute-URI requests (RFC 9112 §3.2.2), with the
//     hop-by-hop fields and Proxy-Authorization removed;
//   - optionally a proxy auto-config (PAC) file that sends the listed
//     domains through the two proxies above and everything else direct.
//
// Each connection is a session of its own with the gateway, made by a
// client.Dialer: a Kerberos service ticket, the GSS-API context, the
// protection level, then CONNECT or UDP ASSOCIATE inside the
// encapsulation. Refusals are passed on: the gateway's SOCKS reply code
// as the SOCKS reply; as HTTP 403 (its rules), 504 (a timeout) or 502
// (anything else), with the client library's explanation as the body.
//
// Listening anywhere but on loopback needs Options.AllowRemote and a list
// of source networks, checked on every connection: whoever reaches the
// bridge acts under its user's Kerberos identity.
//
// It does not do: SOCKS BIND, SOCKS authentication towards local clients,
// HTTP/2 towards clients, https:// URLs without CONNECT, or caching.
package bridge
