# Converted from beyond.conf by gssocks import-dante.
# Review it, and the notes below, before use; then check it with
# "gssocks check --config FILE". A comment names the sockd.conf line
# behind each block and attribute.
#
# Not converted (gssocks has no equivalent):
#   line 5: external: gssocks connects out from the address the kernel's
#     routing table picks for each destination (Dante's external.rotation:
#     route); it has no setting for the outgoing address
#   line 6: external.rotation: gssocks connects out from the address the
#     kernel's routing table picks for each destination (Dante's
#     external.rotation: route); it has no setting for the outgoing address
#   line 7: socksmethod: method username: gssocks authenticates with GSS-API
#     (Kerberos) only; clients using username must get Kerberos tickets
#   line 8: srchost: gssocks does not look up clients in DNS; it matches their
#     addresses
#   line 9: compatibility: gssocks implements RFC 1928 without Dante's
#     extensions and compatibility modes (sameport, reuseaddr, draft-5.05,
#     bind)
#   line 12: timeout.io.udp: gssocks has one idle timeout (timeouts.idle) for
#     TCP sessions and UDP associations alike
#   line 16: session.max: gssocks limits sessions in total (limits {
#     max_sessions }) and per principal (a rule's max_sessions_per_principal),
#     not per rule, per source address or per unit of time (also line 32)
#   line 31: bandwidth: gssocks has no bandwidth limits
#   line 52: route: gssocks connects to destinations itself and does not chain
#     to another proxy; the route is left out
#   line 57: monitor: gssocks has no traffic alarms (its logs and audit log
#     record every session); the monitor is left out
#   line 62: hostid pass: gssocks does not read the TCP host-ID option; the
#     rule is left out
#
# Review (behaves differently from Dante, or needs a value):
#   line 18: client pass: left out, so the clients it let in are refused (fail
#     closed): from: trusted.example.test on line 19 (gssocks matches client
#     addresses, not names)
#   line 21: client block: NOT converted: gssocks cannot refuse clients by
#     name or by a non-contiguous netmask (.guest.example.test); refuse their
#     addresses in a deny rule or a firewall
#   line 25: socks pass: left out, so what it allowed is refused (fail
#     closed): redirect to on line 27 (gssocks does not redirect requests)
#   line 30: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block)
#   line 35: socks pass: left out, so what it allowed is refused (fail
#     closed): group on line 37 (Dante checks the Unix groups of the user
#     name; gssocks checks group SIDs from the ticket's PAC: declare a group
#     block with the SIDs and add groups = [...])
#   line 39: socks block: converted without group on line 41 (Dante checks the
#     Unix groups of the user name; gssocks checks group SIDs from the
#     ticket's PAC: declare a group block with the SIDs and add groups =
#     [...]), so it denies more than in Dante (fail closed)
#   line 42: user: eve has no realm, and Dante's GSS-API user names carry one,
#     so it matched no GSS-API client; denied as eve@* in every realm (fail
#     closed)
#
# Remarks:
#   (file): gssapi.keytab: not set: Dante read FILE:/etc/sockd.keytab
#     (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME
#     unless kerberos { keytab } is set
#   (file): gssapi.servicename: service principal rcmd/proxy.example.test: the
#     host part is the internal: host name (line 4)
#   line 33: pac.sid: converted to groups: the rule matches clients whose
#     ticket's PAC holds the SID, and, if it is an allow rule, no client whose
#     ticket has no verified PAC
#   line 44: socks pass: never matches a gssocks request (its socksmethod
#     leaves neither gssapi nor none of the global methods); left out
#   line 45: to: lo read as the loopback interface: 127.0.0.0/8 and ::1
#   line 48: socks pass: never matches a gssocks request (proxyprotocol on
#     line 50 excludes SOCKS 5, the only protocol gssocks speaks); left out

listen = ["proxy.example.test:1080"] # beyond.conf:4

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  principals = ["rcmd/proxy.example.test"] # beyond.conf:4
}

timeouts {
  idle = "600s" # beyond.conf:11
}

log {
  level = "debug" # beyond.conf:10
}

# beyond.conf:29: socks pass
rule "socks-pass-29" {
  groups  = ["S-1-5-21-1004336348-1177238915-682003330-1104"] # beyond.conf:33
  sources = ["10.70.0.0/16"]                                  # beyond.conf:30
}

# beyond.conf:39: socks block
rule "socks-block-39" {
  action     = "deny"           # beyond.conf:39
  principals = ["eve@*"]        # beyond.conf:42
  sources    = ["10.70.0.0/16"] # beyond.conf:40
}
