listen = ["127.0.0.1:1080"]

kerberos {
  replay_cache_size = 1000
  replay_cache {
    store = "redsi"
    redis {
      address       = "127.0.0.1:6379"
      password_file = "world.password"
    }
  }
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
