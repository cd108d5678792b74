# The keytab (from $KRB5_KTNAME) holds rcmd/gw.example.com@EXAMPLE.TEST
# and HTTP/gw.example.com@EXAMPLE.TEST only.
listen = ["127.0.0.1:1080"]

kerberos {
  principals = ["rcmd/gw.example.com@OTHER.TEST", "socks/gw.example.com", "rcmd//x", "rcmd/*"]
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
