# gssocks configuration of the container image (/etc/gssocks/config.hcl).
# A starting point: mount your own file over it. Every attribute is
# described in config.hcl.example (in the source tree, and in
# /usr/share/doc/gssocks of the packages).
#
# The keytab is $KRB5_KTNAME, /etc/gssocks/gssocks.keytab in the image:
# mount it there, readable by uid 65532 and by no one else.

# Every address of the container, IPv4 and IPv6.
listen = ["[::]:1080"]

kerberos {
  principals = ["rcmd/gw.example.com"]
}

log {
  level  = "info"
  format = "json" # one JSON object a line, for the container runtime's log driver
}

# Authenticated users of EXAMPLE.TEST, at integrity or confidentiality,
# to web ports. Adapt before use.
rule "example" {
  principals = ["*@EXAMPLE.TEST"]
  ports      = ["80", "443"]
  commands   = ["connect"]
}
