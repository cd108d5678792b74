listen = ["127.0.0.1:1080"]

no_auth {
  sources = ["10.9.0.0/16"]
  socks4  = true
}

password_auth {
  sources = ["10.20.0.0/16"]
}

rule "gss-or-password" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["gssapi", "password"]
}

rule "password-only" {
  principals = ["*@EXAMPLE.TEST"]
  methods    = ["password"]
}

rule "lab" {
  sources    = ["10.9.0.0/16"]
  methods    = ["socks4", "none", "socks4"]
  protection = ["clear"]
}
