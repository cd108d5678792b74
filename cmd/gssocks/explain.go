package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// explain shows how the configuration decides one request: the method
// the client came in by, the identity its ticket yields, the protection
// level a GSS-API client asking --level gets, the built-in gateway-local
// deny and each rule in order with why it does or does not match, and
// the decision.
func explain(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("explain", stderr)
	methodName := fs.String("method", "gssapi", "how the client comes in: gssapi, password (SOCKS5 username/password) or negotiate (HTTP proxy), which take --principal; none (SOCKS5 without authentication) or socks4, which take none")
	principal := fs.String("principal", "", "the client `principal` as its ticket spells it, e.g. alice@EXAMPLE.TEST or alice@corp.example@EXAMPLE.TEST")
	var groups, addrs stringList
	fs.Var(&groups, "group", "a group `SID` from the client's PAC (repeatable; implies --pac)")
	userSID := fs.String("user-sid", "", "the client's user `SID` from its PAC (implies --pac)")
	account := fs.String("account", "", "the account `name` the client's PAC gives (implies --pac)")
	pac := fs.Bool("pac", false, "the ticket carries a verified PAC (groups known, names case-insensitive)")
	noPAC := fs.Bool("no-pac", false, "the ticket carries no verified PAC: groups unknown (the default without --group, --user-sid, --account, --pac)")
	source := fs.String("source", "127.0.0.1", "the client's `IP` address")
	dest := fs.String("dest", "", "the destination `HOST:PORT`")
	fs.Var(&addrs, "addr", "an `IP` the destination name resolves to (repeatable; default: look it up)")
	command := fs.String("command", "connect", "connect, bind or udp")
	level := fs.String("level", "confidentiality", "the protection `level` the client asks for")
	nec := fs.Bool("nec", false, "the client uses the unwrapped (NEC) level message")
	noSeq := fs.Bool("no-sequence", false, "the client's GSS context lacks the sequence flag, so it cannot protect a stream (curl >= 8.17); auth_only rules answer it clear")
	clientName := fs.String("client", "", "the `client` program, setting its GSS flags: curl (>= 8.17, no sequence flag; same as --no-sequence) or socksify (sequence flag, the default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	method, ok := policy.ParseMethod(*methodName)
	if !ok {
		fmt.Fprintf(stderr, "gssocks explain: --method %q: want gssapi, password, negotiate, none or socks4\n", *methodName)
		return 2
	}
	if msg := methodFlagsConflict(fs, method); msg != "" {
		fmt.Fprintf(stderr, "gssocks explain: %s\n", msg)
		return 2
	}
	if !method.Authenticates() {
		return explainUnauthenticated(*path, method, *source, *dest, addrs, *command, stdout, stderr)
	}
	switch *clientName {
	case "", "socksify":
	case "curl":
		*noSeq = true
	default:
		fmt.Fprintf(stderr, "gssocks explain: --client %q: want curl or socksify\n", *clientName)
		return 2
	}
	if *clientName == "socksify" && *noSeq {
		fmt.Fprintln(stderr, "gssocks explain: --no-sequence contradicts --client socksify")
		return 2
	}
	if *principal == "" || *dest == "" {
		fmt.Fprintln(stderr, "gssocks explain: --principal and --dest are required")
		fs.Usage()
		return 2
	}
	hasPAC := *pac || len(groups) > 0 || *userSID != "" || *account != ""
	if *noPAC && hasPAC {
		fmt.Fprintln(stderr, "gssocks explain: --no-pac contradicts --pac, --group, --user-sid and --account")
		return 2
	}
	name, realm, ok := cutLast(*principal, "@")
	if !ok || name == "" || realm == "" {
		fmt.Fprintf(stderr, "gssocks explain: --principal %q: want name@REALM\n", *principal)
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	req, err := explainRequest(*source, *dest, addrs, *command)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks explain: %v\n", err)
		return 2
	}
	asked, err := policy.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks explain: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "method:     %s\n", describeMethod(method))
	id, err := cfg.Engine.Identify(policy.Client{Name: name, Realm: realm, PAC: hasPAC, Account: *account, UserSID: *userSID, GroupSIDs: groups})
	if err != nil {
		fmt.Fprintf(stdout, "identity:   %s: refused: %v\n", *principal, err)
		fmt.Fprintf(stdout, "decision:   DENY (the session ends after authentication)\n")
		return 0
	}
	req.Identity, req.Method = id, method
	fmt.Fprintf(stdout, "identity:   %s\n", describeIdentity(cfg.Engine, id))
	if method != policy.MethodGSSAPI {
		// Only GSS-API negotiates a level (RFC 1961 §4): the others
		// run, and are decided, in the clear.
		req.Level = policy.LevelClear
		fmt.Fprintf(stdout, "request:    %s\n", req)
		door, refusal := authenticatedFrontDoor(cfg, method, req.Source)
		if refusal != "" {
			fmt.Fprintf(stdout, "front door: refused: %s\n", refusal)
			fmt.Fprintf(stdout, "decision:   DENY (%s before any rule): %s\n", door, refusal)
			return 0
		}
		fmt.Fprintf(stdout, "front door: %s\n", door)
		fmt.Fprintf(stdout, "protection: clear (%s sessions negotiate no protection level)\n", method)
		explainRules(cfg.Engine, req, method, stdout)
		return 0
	}
	choice, err := cfg.Engine.ChooseLevelFor(policy.LevelRequest{Identity: req.Identity, Source: req.Source,
		Requested: asked, NEC: *nec, CanProtectStream: !*noSeq})
	req.Level, req.NEC = choice.Level, *nec
	if err != nil {
		req.Level = asked
	}
	fmt.Fprintf(stdout, "request:    %s\n", req)
	if err != nil {
		fmt.Fprintf(stdout, "protection: asked %s: refused before the request: %v\n", asked, err)
		fmt.Fprintf(stdout, "decision:   DENY (the session ends after authentication)\n")
		return 0
	}
	flags := "GSS flags with sequence (can protect a stream)"
	if *noSeq {
		flags = "GSS flags without sequence (cannot protect a stream)"
	}
	fmt.Fprintf(stdout, "protection: asked %s, %s, granted %s (%s)\n", asked, flags, choice.Level, choice.Reason)
	explainRules(cfg.Engine, req, method, stdout)
	return 0
}

// authenticatedFrontDoor says whether a password (RFC 1929) or negotiate
// (HTTP proxy) client from source gets in at all, as the gateway decides
// before any rule: method 02 is selected only for password_auth sources,
// and the HTTP proxy serves only on http_listen. It returns what lets the
// client in, or, with a refusal, how the client is turned away.
func authenticatedFrontDoor(cfg *config.Config, m policy.Method, source netip.Addr) (door, refusal string) {
	switch m {
	case policy.MethodPassword:
		switch {
		case !cfg.PasswordAuth.Enabled():
			return "method selection answers 05 ff", "password authentication is off (no password_auth block)"
		case !cfg.PasswordAuth.Sources.Contains(source):
			return "method selection answers 05 ff", fmt.Sprintf("source %s is not in password_auth sources", source)
		}
		return fmt.Sprintf("source %s is in password_auth sources", source), ""
	case policy.MethodNegotiate:
		if len(cfg.HTTPListen) == 0 {
			return "no HTTP proxy listens", "the HTTP proxy is off (no http_listen)"
		}
		return "HTTP proxy on " + strings.Join(cfg.HTTPListen, ", "), ""
	}
	return m.String(), ""
}

// explainRules prints the gateway-local deny, each rule with why it does
// or does not match req, and the decision.
func explainRules(e *policy.Engine, req policy.Request, method policy.Method, stdout io.Writer) {
	d, misses := e.Explain(req)
	gl := fmt.Sprintf("%-33s", "gateway-local (built-in)")
	switch {
	case d.GatewayLocal == "":
		fmt.Fprintf(stdout, "  %s no match: the destination is not the gateway itself\n", gl)
	case e.GatewayLocal().Off:
		fmt.Fprintf(stdout, "  %s off (gateway_local { deny = false }): %s\n", gl, d.GatewayLocal)
	default:
		fmt.Fprintf(stdout, "  %s MATCH: %s; refused unless the allowing rule names it\n", gl, d.GatewayLocal)
	}
	rules := e.Rules()
	for i, r := range rules {
		line := fmt.Sprintf("rule %-16q line %-4d", r.Name, r.Pos.Line)
		switch {
		case i < len(misses):
			fmt.Fprintf(stdout, "  %s no match: %s\n", line, misses[i].Why)
		case i == len(misses) && d.Rule == r.Name:
			fmt.Fprintf(stdout, "  %s MATCH\n", line)
		case i == len(misses) && d.Rule == policy.GatewayLocalRule:
			fmt.Fprintf(stdout, "  %s MATCH, overridden by gateway-local: it names no gateway-local network holding the destination\n", line)
		default:
			fmt.Fprintf(stdout, "  %s not reached\n", line)
		}
	}
	verdict := "DENY (" + denialReply(method) + ")"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(stdout, "decision:   %s: %s\n", verdict, d.Reason)
}

// denialReply is what a client of method m gets for a denied request.
func denialReply(m policy.Method) string {
	switch m {
	case policy.MethodSOCKS4:
		return "SOCKS4 reply 0x5b"
	case policy.MethodNegotiate:
		return "HTTP 403 Forbidden"
	}
	return "SOCKS reply 02"
}

// describeMethod says what method m is.
func describeMethod(m policy.Method) string {
	switch m {
	case policy.MethodGSSAPI:
		return "gssapi (SOCKS5 with GSS-API/Kerberos, RFC 1961)"
	case policy.MethodPassword:
		return "password (SOCKS5 username/password, RFC 1929, checked by the KDC; clear)"
	case policy.MethodNegotiate:
		return "negotiate (HTTP proxy with Proxy-Authorization: Negotiate, RFC 4559; clear)"
	case policy.MethodNone:
		return "none (SOCKS5 without authentication, from no_auth sources; no identity, clear)"
	case policy.MethodSOCKS4:
		return "socks4 (SOCKS4/4a, from no_auth sources with socks4 = true; no identity, clear)"
	}
	return m.String()
}

// methodFlagsConflict names flags that do not apply to method m: the
// client's identity for unauthenticated methods, the protection level
// for every method but GSS-API, UDP for SOCKS4.
func methodFlagsConflict(fs *flag.FlagSet, m policy.Method) string {
	var identity, level []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "principal", "group", "user-sid", "account", "pac", "no-pac":
			identity = append(identity, "--"+f.Name)
		case "level", "nec", "no-sequence", "client":
			level = append(level, "--"+f.Name)
		}
	})
	switch {
	case !m.Authenticates() && len(identity) > 0:
		return fmt.Sprintf("%s: --method %s carries no identity", strings.Join(identity, ", "), m)
	case m != policy.MethodGSSAPI && len(level) > 0:
		return fmt.Sprintf("%s: only --method gssapi negotiates a protection level; %s sessions are clear", strings.Join(level, ", "), m)
	case m == policy.MethodSOCKS4 && fs.Lookup("command").Value.String() == "udp":
		return "--command udp: SOCKS4 has no UDP"
	}
	return ""
}

// explainUnauthenticated explains a request of a session without
// identity (none, socks4): whether the source may come in at all
// (no_auth, and socks4 = true for SOCKS4), then the rules at level clear.
func explainUnauthenticated(path string, m policy.Method, source, dest string, addrs []string, command string, stdout, stderr io.Writer) int {
	if dest == "" {
		fmt.Fprintln(stderr, "gssocks explain: --dest is required")
		return 2
	}
	cfg := loadConfig(path, stderr)
	if cfg == nil {
		return 1
	}
	req, err := explainRequest(source, dest, addrs, command)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks explain: %v\n", err)
		return 2
	}
	req.Method, req.Level = m, policy.LevelClear
	fmt.Fprintf(stdout, "method:     %s\n", describeMethod(m))
	fmt.Fprintf(stdout, "identity:   none (%s sessions are not authenticated: rules with principals, realms or groups do not match)\n", m)
	fmt.Fprintf(stdout, "request:    %s\n", req)
	var refusal string
	switch {
	case !cfg.NoAuth.Contains(req.Source):
		refusal = fmt.Sprintf("source %s is not in no_auth sources", req.Source)
	case m == policy.MethodSOCKS4 && !cfg.NoAuthSOCKS4:
		refusal = "SOCKS4 is not enabled (no_auth { socks4 = true })"
	}
	if refusal != "" {
		fmt.Fprintf(stdout, "front door: refused: %s\n", refusal)
		if m == policy.MethodSOCKS4 {
			fmt.Fprintf(stdout, "decision:   DENY (SOCKS4 reply 0x5b before any rule): %s\n", refusal)
		} else {
			fmt.Fprintf(stdout, "decision:   DENY (method selection answers 05 ff before any rule): %s\n", refusal)
		}
		return 0
	}
	fmt.Fprintf(stdout, "front door: source %s is in no_auth sources\n", req.Source)
	fmt.Fprintf(stdout, "protection: clear (%s sessions negotiate no protection level)\n", m)
	explainRules(cfg.Engine, req, m, stdout)
	return 0
}

// describeIdentity says how the client's name and groups are read.
func describeIdentity(e *policy.Engine, id policy.Identity) string {
	var b strings.Builder
	b.WriteString(id.String())
	if id.PresentedName() != id.String() {
		fmt.Fprintf(&b, " (presented as %s)", id.PresentedName())
	}
	switch {
	case id.CaseInsensitive && id.GroupsKnown:
		b.WriteString("; names compared ignoring case (verified PAC)")
	case id.CaseInsensitive:
		fmt.Fprintf(&b, "; names compared ignoring case (realm %s: case_insensitive_names)", id.Realm)
	default:
		b.WriteString("; names compared exactly")
	}
	switch {
	case id.GroupsKnown:
		n := len(id.GroupSIDs)
		if id.UserSID != "" {
			n++
		}
		fmt.Fprintf(&b, "; groups from the PAC: %d SID(s)", n)
	case e.Realm(id.Realm).NoPAC:
		fmt.Fprintf(&b, "; no groups: realm %s issues no PAC (pac = \"none\")", id.Realm)
	default:
		b.WriteString("; groups unknown (no PAC): deny rules with groups match, allow rules with groups do not (fail closed)")
	}
	return b.String()
}

// cutLast splits s around the last sep: an enterprise principal
// "alice@corp.example@REALM" is the name "alice@corp.example" in REALM.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// explainRequest builds the request as the gateway would: the
// destination normalised (policy.NormalizeDest), a name resolved as an
// absolute name, every address canonical.
func explainRequest(source, dest string, addrs []string, command string) (policy.Request, error) {
	var req policy.Request
	src, err := netip.ParseAddr(source)
	if err != nil {
		return req, fmt.Errorf("--source: %w", err)
	}
	req.Source = src.Unmap()
	host, port, err := net.SplitHostPort(dest)
	if err != nil {
		return req, fmt.Errorf("--dest: %w", err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return req, fmt.Errorf("--dest port: %w", err)
	}
	req.Port = uint16(p)
	switch command {
	case "connect":
		req.Command = socks5.CmdConnect
	case "bind":
		req.Command = socks5.CmdBind
	case "udp":
		req.Command = socks5.CmdUDPAssociate
	default:
		return req, fmt.Errorf("--command %q: want connect, bind or udp", command)
	}
	d := policy.NormalizeDest(host, netip.Addr{})
	if !d.IsName() {
		if !d.Addr.IsValid() {
			return req, fmt.Errorf("--dest %q: no host", dest)
		}
		req.Addrs = []netip.Addr{d.Addr}
		return req, nil
	}
	req.Host = d.Host
	var ips []netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return req, fmt.Errorf("--addr: %w", err)
		}
		ips = append(ips, ip)
	}
	if len(addrs) == 0 {
		// As the gateway does: names are matched on the name, address
		// rules on what the name resolves to.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", d.FQDN())
		var dnsErr *net.DNSError
		if err != nil && !errors.As(err, &dnsErr) {
			return req, err
		}
		ips = found
	}
	req.Addrs = policy.CanonicalAddrs(ips)
	return req, nil
}
