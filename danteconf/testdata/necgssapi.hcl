# Converted from necgssapi.conf by gssocks import-dante.
# Review it, and the notes below, before use; then check it with
# "gssocks check --config FILE". A comment names the sockd.conf line
# behind each block and attribute.
#
# Not converted (gssocks has no equivalent):
#   line 6: logoutput: gssocks logs to standard error (the journal under
#     systemd), as text or JSON (log { format }); decisions can go to a file
#     of their own (log { audit })
#   line 8: external: gssocks connects out from the address the kernel's
#     routing table picks for each destination (Dante's external.rotation:
#     route); it has no setting for the outgoing address
#
# Review (behaves differently from Dante, or needs a value):
#   line 26: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block)

listen = ["127.0.0.1:1080"] # necgssapi.conf:7

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  keytab     = "/etc/sockd.keytab"          # necgssapi.conf:16
  principals = ["socks/proxy.example.test"] # necgssapi.conf:15
}

# necgssapi.conf:25: socks pass
# Sources narrowed to the clients that client pass at necgssapi.conf:11 lets
#   in.
rule "socks-pass-25-1" {
  sources    = ["10.50.8.0/22"]                          # necgssapi.conf:26,11
  commands   = ["connect"]                               # necgssapi.conf:27
  protection = ["clear", "integrity", "confidentiality"] # necgssapi.conf:14
  nec        = true                                      # necgssapi.conf:13
}

# necgssapi.conf:25: socks pass
# Sources narrowed to the clients that client pass at necgssapi.conf:18 lets
#   in.
rule "socks-pass-25-2" {
  # necgssapi.conf:26,18
  sources = [
    "10.50.0.0/21",
    "10.50.12.0/22",
    "10.50.16.0/20",
    "10.50.32.0/19",
    "10.50.64.0/18",
    "10.50.128.0/17",
  ]
  commands   = ["connect"]         # necgssapi.conf:27
  protection = ["confidentiality"] # necgssapi.conf:20
}
