// Command gssocks is the SOCKS5 gateway with Kerberos GSS-API
// authentication and protection (RFC 1928, RFC 1961).
//
//	gssocks serve   --config FILE            run the gateway
//	gssocks check   --config FILE            validate a configuration
//	gssocks explain --config FILE --principal P --dest HOST:PORT ...
//	                                         show how the rules decide a request
//	gssocks keytab  --config FILE            list the keys the gateway accepts
//	gssocks version                          print the version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: gssocks <command> [flags]

commands:
  serve    --config FILE   run the gateway (SIGHUP reloads, SIGTERM drains and stops)
  check    --config FILE   validate a configuration file
  explain  --config FILE --principal alice@EXAMPLE.TEST --dest HOST:PORT
           [--group SID]... [--user-sid SID] [--account NAME] [--pac | --no-pac]
           [--source IP] [--addr IP]...
           [--command connect|bind|udp] [--level clear|integrity|confidentiality] [--nec]
           [--method gssapi|password|negotiate|none|socks4]
                           show the client's canonical identity, the protection level,
                           the gateway-local deny and the rule deciding a request, and
                           why each earlier rule did not match; groups are unknown
                           (fail closed) unless a PAC is given (--group, --pac, ...);
                           --method none and socks4 take no --principal
  keytab   --config FILE   list principals, kvnos and enctypes the gateway accepts (no keys)
  sessions [--metrics HOST:PORT]   list a running gateway's live sessions (metrics listener)
  import-dante [--host NAME] SOCKD.CONF   convert a Dante sockd.conf to gssocks HCL (stdout)
  bridge   --gateway GW:PORT   local SOCKS5 and HTTP proxy (and PAC file) through the gateway
  connect  --gateway GW:PORT HOST PORT   stdin/stdout through the gateway (ssh ProxyCommand)
  version                  print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "explain":
		return explain(args[1:], stdout, stderr)
	case "keytab":
		return keytabCmd(args[1:], stdout, stderr)
	case "sessions":
		return sessionsCmd(args[1:], stdout, stderr)
	case "import-dante":
		return importDante(args[1:], stdout, stderr)
	case "bridge":
		return bridgeCmd(args[1:], stdout, stderr)
	case "connect":
		return connectCmd(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-version":
		return versionCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "gssocks: unknown command %q\n\n%s", args[0], usage)
	return 2
}
