# Converted from bind-udp.conf by gssocks import-dante.
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
#
# Review (behaves differently from Dante, or needs a value):
#   (file): gssapi.servicename: rcmd: the host part of the service principal
#     rcmd/HOST is not in sockd.conf; add principals = ["rcmd/<proxy host
#     name>"] (import-dante --host NAME does); until then every principal in
#     the keytab is accepted
#   line 27: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block) (also line 40)
#
# Remarks:
#   (file): gssapi.keytab: not set: Dante read FILE:/etc/sockd.keytab
#     (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME
#     unless kerberos { keytab } is set
#   line 22: socks pass: never matches a gssocks request (it only concerns
#     replies (bindreply, udpreply), which gssocks relays for the BIND and UDP
#     ASSOCIATE requests it allowed); left out (also line 34)

listen = ["127.0.0.1:1080"] # bind-udp.conf:5

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  # Dante's default service name rcmd: the service principal is rcmd/HOST,
  #   HOST the proxy's name as clients reach it; fill it in and uncomment
  #   (import-dante --host HOST does). Without principals, every principal in
  #   the keytab is accepted.
  # principals = ["rcmd/HOST"]
}

# bind-udp.conf:13: socks pass
rule "socks-pass-13" {
  sources      = ["10.40.0.0/16"]     # bind-udp.conf:14
  destinations = ["ftp.example.test"] # bind-udp.conf:14
  ports        = ["21"]               # bind-udp.conf:14
  commands     = ["connect"]          # bind-udp.conf:15
}

# bind-udp.conf:17: socks pass
rule "socks-pass-17" {
  sources      = ["10.40.0.0/16"]     # bind-udp.conf:18
  destinations = ["ftp.example.test"] # bind-udp.conf:18
  commands     = ["bind"]             # bind-udp.conf:19
}

# bind-udp.conf:26: socks pass
rule "socks-pass-26" {
  sources  = ["10.40.0.0/16"] # bind-udp.conf:27
  ports    = ["53"]           # bind-udp.conf:27
  commands = ["udp"]          # bind-udp.conf:28
}

# bind-udp.conf:30: socks pass
rule "socks-pass-30" {
  sources      = ["10.40.0.0/16"] # bind-udp.conf:31
  destinations = ["10.40.255.1"]  # bind-udp.conf:31
  ports        = ["123"]          # bind-udp.conf:31
  commands     = ["udp"]          # bind-udp.conf:32
}

# bind-udp.conf:39: socks pass
rule "socks-pass-39" {
  sources  = ["10.40.0.0/16"]    # bind-udp.conf:40
  ports    = ["1024-65535"]      # bind-udp.conf:40
  commands = ["connect", "bind"] # bind-udp.conf:41
}
