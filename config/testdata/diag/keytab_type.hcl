listen = ["127.0.0.1:1080"]

kerberos {
  keytab = "MEMORY:gssocks"
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
