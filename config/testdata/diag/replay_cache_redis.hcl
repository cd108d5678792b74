listen = ["127.0.0.1:1080"]

kerberos {
  replay_cache {
    store = "redis"
    redis {
      address        = "/run/redis/redis.sock"
      password_file  = "world.password"
      on_unavailable = "local"
    }
  }
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
