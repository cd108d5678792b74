listen = ["127.0.0.1:1080"]

rule "web" {
  destinations = [
    "*.corp.example.test",
    "Intranet.Example.Test.",
    "foo*.example.test",
    "*",
    "intranet.example.test:443",
    "*.",
    "a..b",
    "2001:db8::1",
    "10.0.0.1",
  ]
}
