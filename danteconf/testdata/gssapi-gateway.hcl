# Converted from gssapi-gateway.conf by gssocks import-dante.
# Review it, and the notes below, before use; then check it with
# "gssocks check --config FILE". A comment names the sockd.conf line
# behind each block and attribute.
#
# Not converted (gssocks has no equivalent):
#   line 5: logoutput: gssocks logs to standard error (the journal under
#     systemd), as text or JSON (log { format }); decisions can go to a file
#     of their own (log { audit })
#   line 6: errorlog: gssocks logs to standard error (the journal under
#     systemd), as text or JSON (log { format }); decisions can go to a file
#     of their own (log { audit })
#   line 9: external: gssocks connects out from the address the kernel's
#     routing table picks for each destination (Dante's external.rotation:
#     route); it has no setting for the outgoing address
#   line 14: user.privileged: gssocks does not switch user IDs: run it as its
#     own unprivileged user (the systemd unit's User=), with
#     CAP_NET_BIND_SERVICE for a port below 1024
#   line 15: user.unprivileged: gssocks does not switch user IDs: run it as
#     its own unprivileged user (the systemd unit's User=), with
#     CAP_NET_BIND_SERVICE for a port below 1024
#   line 27: log: gssocks writes a record of every decision and session end
#     (the audit log, log { audit }) (also lines 33, 37, 43, 53, 61)
#
# Review (behaves differently from Dante, or needs a value):
#   line 25: gssapi.servicename: rcmd: the host part of the service principal
#     rcmd/HOST is not in sockd.conf; add principals = ["rcmd/<proxy host
#     name>"] (import-dante --host NAME does); until then every principal in
#     the keytab is accepted
#   line 49: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block) (also lines 59, 64)
#
# Remarks:
#   line 35: client block: no rule needed: no client pass rule lets in the
#     clients it refuses (earlier ones match first), and every allow rule is
#     narrowed to the clients client pass rules let in

listen = ["192.0.2.10:1080"] # gssapi-gateway.conf:8

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  keytab = "/etc/sockd/proxy.keytab" # gssapi-gateway.conf:24

  # gssapi.servicename rcmd: the service principal is rcmd/HOST, HOST the
  #   proxy's name as clients reach it; fill it in and uncomment (import-dante
  #   --host HOST does). Without principals, every principal in the keytab is
  #   accepted.
  # principals = ["rcmd/HOST"]
}

timeouts {
  negotiation = "15s"   # gssapi-gateway.conf:17
  idle        = "7200s" # gssapi-gateway.conf:18
  connect     = "20s"   # gssapi-gateway.conf:19
}

# gssapi-gateway.conf:41: socks block
rule "socks-block-41" {
  action       = "deny"           # gssapi-gateway.conf:41
  destinations = ["10.99.4.0/24"] # gssapi-gateway.conf:42
  ports        = ["5432"]         # gssapi-gateway.conf:42
}

# gssapi-gateway.conf:48: socks pass
rule "socks-pass-48" {
  principals   = ["carol@EXAMPLE.TEST", "dave@EXAMPLE.TEST"] # gssapi-gateway.conf:50
  sources      = ["10.20.0.0/16"]                            # gssapi-gateway.conf:49
  commands     = ["connect", "bind"]                         # gssapi-gateway.conf:51
  idle_timeout = "28800s"                                    # gssapi-gateway.conf:52
}

# gssapi-gateway.conf:58: socks pass
# Sources narrowed to the clients that client pass at
#   gssapi-gateway.conf:22,29 lets in.
rule "socks-pass-58" {
  sources  = ["10.20.0.0/16", "172.16.128.0/18"] # gssapi-gateway.conf:22,29
  ports    = ["80"]                              # gssapi-gateway.conf:59
  commands = ["connect"]                         # gssapi-gateway.conf:60
}

# gssapi-gateway.conf:63: socks pass
# Sources narrowed to the clients that client pass at
#   gssapi-gateway.conf:22,29 lets in.
rule "socks-pass-63" {
  sources  = ["10.20.0.0/16", "172.16.128.0/18"] # gssapi-gateway.conf:22,29
  ports    = ["443"]                             # gssapi-gateway.conf:64
  commands = ["connect"]                         # gssapi-gateway.conf:65
}

# gssapi-gateway.conf:67: socks pass
# Sources narrowed to the clients that client pass at
#   gssapi-gateway.conf:22,29 lets in.
rule "socks-pass-67" {
  sources      = ["10.20.0.0/16", "172.16.128.0/18"]                  # gssapi-gateway.conf:22,29
  destinations = ["intranet.example.test", "*.intranet.example.test"] # gssapi-gateway.conf:68
  ports        = ["8000-8999"]                                        # gssapi-gateway.conf:68
  commands     = ["connect"]                                          # gssapi-gateway.conf:69
}
