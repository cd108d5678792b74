# Converted from sockd.conf by gssocks import-dante.
# Review it, and the notes below, before use; then check it with
# "gssocks check --config FILE". A comment names the sockd.conf line
# behind each block and attribute.
#
# Not converted (gssocks has no equivalent):
#   line 2: logoutput: gssocks logs to standard error (the journal under
#     systemd), as text or JSON (log { format }); decisions can go to a file
#     of their own (log { audit })
#   line 4: external: gssocks connects out from the address the kernel's
#     routing table picks for each destination (Dante's external.rotation:
#     route); it has no setting for the outgoing address
#   line 15: log: gssocks writes a record of every decision and session end
#     (the audit log, log { audit }) (also line 25)
#
# Review (behaves differently from Dante, or needs a value):
#   line 19: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block)
#
# Remarks:
#   line 19: 0.0.0.0/0: read as every address, IPv6 too, as "0/0" is in Dante
#     1.4 (where 0.0.0.0/0 is IPv4 only)
#   line 21: command: bindreply and udpreply: gssocks needs no rule for
#     replies: it relays the inbound connection of a BIND it allowed only from
#     the host the client named, and UDP replies only from destinations the
#     client sent to

listen = ["127.0.0.1:1080"] # sockd.conf:3

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  keytab     = "/run/realm/gssocks.keytab" # sockd.conf:11
  principals = ["rcmd/localhost"]          # sockd.conf:12, host from --host
}

# sockd.conf:18: socks pass
rule "socks-pass-18" {
  sources = ["127.0.0.0/8"] # sockd.conf:19
  nec     = true            # sockd.conf:14
}
