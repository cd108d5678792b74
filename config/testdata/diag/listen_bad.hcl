listen = ["1080", "localhost:99999", "127.0.0.1:1080", "bad host!:1080", "127.0.0.1:1080", "[::1]:1080", ":socks"]

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
