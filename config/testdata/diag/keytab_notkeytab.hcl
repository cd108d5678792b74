# The keytab setting names some other file.
listen = ["127.0.0.1:1080"]

kerberos {
  keytab = "krb5.conf"
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
