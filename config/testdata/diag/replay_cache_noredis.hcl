listen = ["127.0.0.1:1080"]

kerberos {
  replay_cache {
    store = "redis"
  }
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
