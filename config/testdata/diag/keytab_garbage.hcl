listen = ["127.0.0.1:1080"]

kerberos {
  keytab = "garbage.keytab"
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
