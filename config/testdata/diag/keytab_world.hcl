listen = ["127.0.0.1:1080"]

kerberos {
  keytab     = "world.keytab"
  principals = ["rcmd/gw.example.com", "rcmd/gw.example.org@EXAMPLE.TEST"]
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
