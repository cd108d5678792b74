# No diagnostics at all.
listen = ["127.0.0.1:1080"]

kerberos {
  principals = ["rcmd/gw.example.com"]
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
