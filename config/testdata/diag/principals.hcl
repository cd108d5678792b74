listen = ["127.0.0.1:1080"]

rule "staff" {
  realms     = ["EXAMPLE.TEST", "example.test"]
  principals = ["alice", "@EXAMPLE.TEST", "bob@", "carol@example.test", "dave@A@B", "*", "svc-*@*"]
}

rule "partners" {
  realms = ["*.TEST", "PARTNER.TEST"]
}
