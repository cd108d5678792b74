listen = ["127.0.0.1:1080"]

rule "deny-db" {
  action                     = "deny"
  destinations               = ["10.5.0.0/16"]
  protection                 = ["confidentiality"]
  idle_timeout               = "1m"
  max_sessions_per_principal = 2
}
