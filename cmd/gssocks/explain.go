package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// explain shows how the configuration decides one request: the identity
// the client's ticket yields, the protection level a client asking
// --level gets, the built-in gateway-local deny and each rule in order
// with why it does or does not match, and the decision.
func explain(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("explain", stderr)
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
	id, err := cfg.Engine.Identify(policy.Client{Name: name, Realm: realm, PAC: hasPAC, Account: *account, UserSID: *userSID, GroupSIDs: groups})
	if err != nil {
		fmt.Fprintf(stdout, "identity:   %s: refused: %v\n", *principal, err)
		fmt.Fprintf(stdout, "decision:   DENY (the session ends after authentication)\n")
		return 0
	}
	req.Identity = id
	fmt.Fprintf(stdout, "identity:   %s\n", describeIdentity(cfg.Engine, id))
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
	d, misses := cfg.Engine.Explain(req)
	gl := fmt.Sprintf("%-33s", "gateway-local (built-in)")
	switch {
	case d.GatewayLocal == "":
		fmt.Fprintf(stdout, "  %s no match: the destination is not the gateway itself\n", gl)
	case cfg.Engine.GatewayLocal().Off:
		fmt.Fprintf(stdout, "  %s off (gateway_local { deny = false }): %s\n", gl, d.GatewayLocal)
	default:
		fmt.Fprintf(stdout, "  %s MATCH: %s; refused unless the allowing rule names it\n", gl, d.GatewayLocal)
	}
	rules := cfg.Engine.Rules()
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
	verdict := "DENY (SOCKS reply 02)"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(stdout, "decision:   %s: %s\n", verdict, d.Reason)
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
