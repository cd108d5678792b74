# Converted from legacy-1.2.conf by gssocks import-dante.
# Review it, and the notes below, before use; then check it with
# "gssocks check --config FILE". A comment names the sockd.conf line
# behind each block and attribute.
#
# Not converted (gssocks has no equivalent):
#   line 4: logoutput: gssocks logs to standard error (the journal under
#     systemd), as text or JSON (log { format }); decisions can go to a file
#     of their own (log { audit })
#   line 6: external: gssocks connects out from the address the kernel's
#     routing table picks for each destination (Dante's external.rotation:
#     route); it has no setting for the outgoing address
#   line 8: user.notprivileged: gssocks does not switch user IDs: run it as
#     its own unprivileged user (the systemd unit's User=), with
#     CAP_NET_BIND_SERVICE for a port below 1024
#
# Review (behaves differently from Dante, or needs a value):
#   (file): gssapi.servicename: rcmd: the host part of the service principal
#     rcmd/HOST is not in sockd.conf; add principals = ["rcmd/<proxy host
#     name>"] (import-dante --host NAME does); until then every principal in
#     the keytab is accepted
#   line 16: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block)
#
# Remarks:
#   (file): gssapi.keytab: not set: Dante read FILE:/etc/sockd.keytab
#     (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME
#     unless kerberos { keytab } is set
#   line 7: method: read as socksmethod, its name since Dante 1.4
#   line 9: connecttimeout: read as timeout.connect, as Dante 1.4 does (in
#     Dante 1.2 it limited the negotiation)
#   line 10: iotimeout: read as timeout.io, its name since Dante 1.4
#   line 14: block: read as socks block, its form since Dante 1.4
#   line 14: 0.0.0.0/0: read as every address, IPv6 too, as "0/0" is in Dante
#     1.4 (where 0.0.0.0/0 is IPv4 only)
#   line 16: pass: read as socks pass, its form since Dante 1.4

listen = ["127.0.0.1:1080"] # legacy-1.2.conf:5

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  # Dante's default service name rcmd: the service principal is rcmd/HOST,
  #   HOST the proxy's name as clients reach it; fill it in and uncomment
  #   (import-dante --host HOST does). Without principals, every principal in
  #   the keytab is accepted.
  # principals = ["rcmd/HOST"]
}

timeouts {
  connect = "30s" # legacy-1.2.conf:9
  idle    = "0s"  # legacy-1.2.conf:10
}

# legacy-1.2.conf:14: socks block
rule "socks-block-14" {
  action       = "deny"          # legacy-1.2.conf:14
  destinations = ["127.0.0.0/8"] # legacy-1.2.conf:14
}

# legacy-1.2.conf:16: socks pass
rule "socks-pass-16" {
  sources  = ["10.60.0.0/16"]    # legacy-1.2.conf:16
  commands = ["connect", "bind"] # legacy-1.2.conf:17
}
