listen      = ["127.0.0.1:1080"]
http_listen = ["127.0.0.1:3128"]

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["gssapi"]
}

rule "password-users" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["password"]
  protection = ["clear"]
}

rule "old-clients" {
  methods    = ["socks4", "none"]
  protection = ["clear"]
}

# One of its ways in is open: no warning.
rule "some-on" {
  sources = ["10.0.0.0/8"]
  methods = ["gssapi", "socks4"]
}
