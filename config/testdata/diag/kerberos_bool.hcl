# An empty trusted_realms list trusts no other realm; allow_anonymous must be a boolean.
listen = ["127.0.0.1:1080"]

kerberos {
  trusted_realms = []
  allow_anonymous = "yes"
}

rule "all" {}
