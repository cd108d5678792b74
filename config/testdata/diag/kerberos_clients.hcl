# Who may authenticate: trusted realms, anonymous and service clients.
listen = ["127.0.0.1:1080"]

kerberos {
  trusted_realms        = ["AD.EXAMPLE.COM", "corp.example.com", "*.EXAMPLE.COM", "A@B", "WELLKNOWN:ANONYMOUS", "AD.EXAMPLE.COM"]
  allow_anonymous       = true
  allow_service_clients = false
}

rule "web" {
  realms = ["AD.EXAMPLE.COM"]
  ports  = [443]
}

rule "hosts" {
  allow_service_clients = true
  principals            = ["host/ws1.example.com@EXAMPLE.TEST"]
}

rule "no-anon-ssh" {
  action          = "deny"
  allow_anonymous = true
  ports           = [22]
}
