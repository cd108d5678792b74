listen = ["127.0.0.1:1080"]

log {
  level = "info"
}

log {
  level = "debug"
}

rule {
  principals = ["*@EXAMPLE.TEST"]
}

group "empty" {
}

listen {
}
