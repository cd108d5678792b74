# Misspelt attribute and block names get a suggestion.
listen = ["127.0.0.1:1080"]

timeout {
  connect = "30s"
}

kerberos {
  clockskew = "5m"
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  sourcez    = ["10.0.0.0/8"]
  port       = ["443"]
}
