# Converted from block-then-pass.conf by gssocks import-dante.
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
#   line 12: log: gssocks writes a record of every decision and session end
#     (the audit log, log { audit }) (also line 58)
#
# Review (behaves differently from Dante, or needs a value):
#   (file): gssapi.servicename: rcmd: the host part of the service principal
#     rcmd/HOST is not in sockd.conf; add principals = ["rcmd/<proxy host
#     name>"] (import-dante --host NAME does); until then every principal in
#     the keytab is accepted
#   line 46: to: every destination, as in Dante, except those on the gateway
#     itself (loopback, link-local, the gateway's own addresses), which
#     gssocks refuses unless an allow rule names them (the gateway_local
#     block) (also line 50)
#
# Remarks:
#   (file): gssapi.keytab: not set: Dante read FILE:/etc/sockd.keytab
#     (/etc/danted.keytab in Debian's build); gssocks reads $KRB5_KTNAME
#     unless kerberos { keytab } is set
#   line 22: client block: earlier client pass rules match some of its
#     networks first, and no later one lets in some others; the deny rule
#     lists the rest

listen = ["127.0.0.1:1080"] # block-then-pass.conf:5

# GSS-API acceptor (Dante's gssapi.keytab and gssapi.servicename).
kerberos {
  # Dante's default service name rcmd: the service principal is rcmd/HOST,
  #   HOST the proxy's name as clients reach it; fill it in and uncomment
  #   (import-dante --host HOST does). Without principals, every principal in
  #   the keytab is accepted.
  # principals = ["rcmd/HOST"]
}

# block-then-pass.conf:10: client block. Dante refused these clients when they
#   connected; gssocks refuses their requests (SOCKS reply 02) after
#   authentication.
rule "client-block-10" {
  action  = "deny"           # block-then-pass.conf:10
  sources = ["10.30.5.0/24"] # block-then-pass.conf:11
}

# block-then-pass.conf:22: client block. Dante refused these clients when they
#   connected; gssocks refuses their requests (SOCKS reply 02) after
#   authentication.
rule "client-block-22" {
  action = "deny" # block-then-pass.conf:22
  # block-then-pass.conf:23
  sources = [
    "10.31.0.0/22",
    "10.31.4.0/23",
    "10.31.6.0/24",
    "10.31.8.0/21",
    "10.31.16.0/20",
    "10.31.32.0/19",
    "10.31.64.0/18",
    "10.31.128.0/17",
  ]
}

# block-then-pass.conf:34: socks block
rule "socks-block-34" {
  action       = "deny"           # block-then-pass.conf:34
  destinations = ["10.30.0.0/16"] # block-then-pass.conf:35
}

# block-then-pass.conf:37: socks block
rule "socks-block-37" {
  action     = "deny"                   # block-then-pass.conf:37
  principals = ["mallory@EXAMPLE.TEST"] # block-then-pass.conf:39
  ports      = ["0-1023"]               # block-then-pass.conf:38
}

# block-then-pass.conf:41: socks pass
rule "socks-pass-41" {
  sources      = ["10.31.7.0/24"]         # block-then-pass.conf:42
  destinations = ["partner.example.test"] # block-then-pass.conf:42
  ports        = ["443"]                  # block-then-pass.conf:42
  commands     = ["connect"]              # block-then-pass.conf:43
}

# block-then-pass.conf:45: socks pass
rule "socks-pass-45" {
  sources  = ["10.0.0.0/8"] # block-then-pass.conf:46
  ports    = ["1024-65535"] # block-then-pass.conf:46
  commands = ["connect"]    # block-then-pass.conf:47
}

# block-then-pass.conf:49: socks pass
rule "socks-pass-49" {
  sources  = ["10.30.0.0/16"] # block-then-pass.conf:50
  ports    = ["80"]           # block-then-pass.conf:50
  commands = ["connect"]      # block-then-pass.conf:51
}

# block-then-pass.conf:53: socks pass
rule "socks-pass-53" {
  sources      = ["2001:db8:30::/48"] # block-then-pass.conf:54
  destinations = ["2001:db8::/32"]    # block-then-pass.conf:54
  ports        = ["0-24", "26-65535"] # block-then-pass.conf:54
}

# block-then-pass.conf:56: socks block
rule "socks-block-56" {
  action = "deny" # block-then-pass.conf:56
}
