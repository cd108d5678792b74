listen = ["127.0.0.1:1080"]

group "vpn-users" {
  sids = ["S-1-5-21-1004336348-1177238915-682003330-1104"]
}

group "vpn-users" {
  sids = ["S-1-5-21-1004336348-1177238915-682003330-1105"]
}

group "S-1-5-32-544" {
  sids = ["S-1-5-32-544"]
}

group "broken" {
  sids = ["S-2-5-21", "S-1-5-x", "Domain Admins"]
}

group "nobody" {
  sids = []
}

rule "vpn" {
  groups = ["vpn-user", "S-1-5-21-1004336348-1177238915-682003330-513", "S-1-5-21-x", "helpdesk"]
}
