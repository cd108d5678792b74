listen = ["127.0.0.1:1080"]

no_auth {
  sources = ["10.9.0.0/16"]
  socks4  = "yes"
}

rule "typos" {
  methods = ["gssap", "pasword", "kerberos", "socks4"]
}

rule "empty" {
  methods = []
}

rule "staff-socks4" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["gssapi", "socks4", "none"]
}
