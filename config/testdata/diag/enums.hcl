listen = ["127.0.0.1:1080"]

log {
  level  = "verbose"
  format = "jsn"
}

rule "staff" {
  action     = "alow"
  commands   = ["conect", "udp", "tcp"]
  protection = ["integrty", "selective", "confidentiality"]
}
