# Converted from lan-open.conf by gssocks import-dante.
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
#   line 10: user.unprivileged: gssocks does not switch user IDs: run it as
#     its own unprivileged user (the systemd unit's User=), with
#     CAP_NET_BIND_SERVICE for a port below 1024
#
# Review (behaves differently from Dante, or needs a value):
#   (file): gssapi.servicename: rcmd: the host part of the service principal
#     rcmd/HOST is not in sockd.conf; add principals = ["rcmd/<proxy host
#     name>"] (import-dante --host NAME does); until then every principal in
#     the keytab is accepted
#   line 5: internal: lo is an interface name: gssocks listens on addresses,
#     so the output listens on 127.0.0.1 (reachable from this host only) until
#     you replace it with an address of lo
#   line 17: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block) (also line 21)
#
# Remarks:
#   (file): gssapi.keytab: not set: Dante read FILE:/etc/sockd.keytab
#     (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME
#     unless kerberos { keytab } is set

listen = ["127.0.0.1:1080"] # lan-open.conf:5

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  # Dante's default service name rcmd: the service principal is rcmd/HOST,
  #   HOST the proxy's name as clients reach it; fill it in and uncomment
  #   (import-dante --host HOST does). Without principals, every principal in
  #   the keytab is accepted.
  # principals = ["rcmd/HOST"]
}

# Clients from these networks may skip authentication (socksmethod none); only
#   rules without principals allow them.
no_auth {
  sources = ["10.77.0.0/16"] # lan-open.conf:16
}

# lan-open.conf:16: socks pass
rule "socks-pass-16" {
  # any authenticated client: socksmethod gssapi
  principals = ["*"]            # lan-open.conf:8
  sources    = ["10.77.0.0/16"] # lan-open.conf:17
}

# lan-open.conf:16: socks pass, for clients using method none (no_auth
#   sources)
rule "socks-pass-16-noauth" {
  sources    = ["10.77.0.0/16"] # lan-open.conf:17
  protection = ["clear"]        # lan-open.conf:16,8
}

# lan-open.conf:20: socks pass
rule "socks-pass-20" {
  # any authenticated client: socksmethod gssapi
  principals = ["*"]          # lan-open.conf:8
  sources    = ["10.0.0.0/8"] # lan-open.conf:21
  commands   = ["connect"]    # lan-open.conf:23
}
