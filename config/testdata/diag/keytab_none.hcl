# test: KRB5_KTNAME=
# Neither a keytab attribute nor $KRB5_KTNAME.
listen = ["127.0.0.1:1080"]

rule "staff" {
  principals = ["*@EXAMPLE.TEST"]
}
