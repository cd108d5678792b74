listen = ["127.0.0.1:1080"]

gateway_local {
  deny      = "sometimes"
  addresses = ["192.0.2.10", "192.0.2.300/24"]
  allow     = ["127.0.0.1"]
}

realm "ad.example.test" {
  pac                    = "nope"
  case_insensitive_names = "yes please"
}

realm "AD.EXAMPLE.TEST" {
}

realm "*.TEST" {
}

rule "local" {
  destinations = ["0x7f.1", "::127.0.0.1", "intranet.example.test"]
}
