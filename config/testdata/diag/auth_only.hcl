listen = ["127.0.0.1:1080"]

# auth_only downgrades to clear, so the rule must accept clear.
rule "curl" {
  principals = ["svc-*@EXAMPLE.TEST"]
  auth_only  = true
}

rule "curl-explicit" {
  principals = ["svc-*@EXAMPLE.TEST"]
  protection = ["integrity", "confidentiality"]
  auth_only  = true
}

rule "curl-ok" {
  principals = ["svc-*@EXAMPLE.TEST"]
  protection = ["clear", "integrity"]
  auth_only  = true
}
