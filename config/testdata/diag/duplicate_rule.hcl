listen = ["127.0.0.1:1080"]

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  ports      = ["443"]
}

rule "partners" {
  realms = ["PARTNER.TEST"]
  ports  = ["443"]
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
  ports      = ["80"]
}
