listen = ["127.0.0.1:1080"]

rule "realm" {
  principals = ["*@EXAMPLE.TEST"]
  sources    = ["10.0.0.0/8"]
}

# Shadowed: alice is in EXAMPLE.TEST and 10.1.0.0/16 is inside 10.0.0.0/8.
rule "alice" {
  principals = ["alice@EXAMPLE.TEST"]
  sources    = ["10.1.0.0/16"]
  ports      = ["22"]
}

# Not shadowed: the source reaches outside 10.0.0.0/8.
rule "bob" {
  principals = ["bob@EXAMPLE.TEST"]
  sources    = ["192.0.2.0/24"]
}

rule "deny-internal" {
  action       = "deny"
  destinations = ["10.0.0.0/8"]
}

# Shadowed by a deny rule with a wider network.
rule "deny-db" {
  action       = "deny"
  destinations = ["10.5.0.0/16"]
  ports        = ["5432"]
}

rule "web" {
  destinations = ["*.corp.example.test"]
  ports        = ["80", "443"]
}

# Shadowed: a name below corp.example.test on port 443.
rule "intranet" {
  destinations = ["intranet.corp.example.test"]
  ports        = ["443"]
}

# Not shadowed: corp.example.test itself is not below it.
rule "corp" {
  destinations = ["corp.example.test"]
}

rule "everything" {
}

# Shadowed by the empty rule above, which matches everything.
rule "late" {
  realms = ["PARTNER.TEST"]
}
