listen = ["127.0.0.1:1080"]

# The rules alone decide destinations on the gateway itself.
gateway_local {
  deny = false
}

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
