listen = "127.0.0.1:1080"

limits {
  max_sessions = -1
}

kerberos {
  replay_cache_size = 1.5
}

rule "staff" {
  sources                    = "10.0.0.0/8"
  nec                        = "maybe"
  max_sessions_per_principal = "many"
  principals                 = [["*@EXAMPLE.TEST"]]
  realms                     = [var.realm]
  commands                   = [null]
  ports                      = []
}
