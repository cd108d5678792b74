listen = ["127.0.0.1:1080"]

kerberos {
  replay_cache_size = 1000
  replay_cache {
    store             = "redis"
    max_entries       = 100
    max_per_principal = 200
    redis {
      address        = "redis.example.test:port"
      username       = "two words"
      password_file  = "missing.password"
      db             = -1
      key_prefix     = ""
      timeout        = "5s"
      on_unavailable = "fail-open"
    }
  }
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
