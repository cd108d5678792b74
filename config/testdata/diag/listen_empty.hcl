# An empty listen list cannot serve anybody.
listen = []

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
