listen = ["127.0.0.1:1080"]

kerberos {
  clock_skew = 300
}

timeouts {
  negotiation = "10 seconds"
  connect     = "-5s"
  idle        = "0s"
  bind        = "0s"
  shutdown    = "1d"
}

rule "staff" {
  idle_timeout = "forever"
}
