# listen is required.
rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
