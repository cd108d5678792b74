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

// explain shows how the configuration decides one request: the protection
// level a client asking --level gets, each rule in order with why it does
// or does not match, and the decision.
func explain(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("explain", stderr)
	principal := fs.String("principal", "", "the client `principal`, e.g. alice@EXAMPLE.TEST")
	var groups, addrs stringList
	fs.Var(&groups, "group", "a group `SID` of the client (repeatable; AD tickets carry them in the PAC)")
	userSID := fs.String("user-sid", "", "the client's user `SID`")
	source := fs.String("source", "127.0.0.1", "the client's `IP` address")
	dest := fs.String("dest", "", "the destination `HOST:PORT`")
	fs.Var(&addrs, "addr", "an `IP` the destination name resolves to (repeatable; default: look it up)")
	command := fs.String("command", "connect", "connect, bind or udp")
	level := fs.String("level", "confidentiality", "the protection `level` the client asks for")
	nec := fs.Bool("nec", false, "the client uses the unwrapped (NEC) level message")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *principal == "" || *dest == "" {
		fmt.Fprintln(stderr, "gssocks explain: --principal and --dest are required")
		fs.Usage()
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	req, err := explainRequest(*principal, *userSID, groups, *source, *dest, addrs, *command)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks explain: %v\n", err)
		return 2
	}
	asked, err := policy.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks explain: %v\n", err)
		return 2
	}
	choice, err := cfg.Engine.ChooseLevel(req.Identity, req.Source, asked, *nec)
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
	fmt.Fprintf(stdout, "protection: asked %s, granted %s (%s)\n", asked, choice.Level, choice.Reason)
	d, misses := cfg.Engine.Explain(req)
	for i, r := range cfg.Engine.Rules() {
		line := fmt.Sprintf("rule %-16q line %-4d", r.Name, r.Pos.Line)
		switch {
		case i < len(misses):
			fmt.Fprintf(stdout, "  %s no match: %s\n", line, misses[i].Why)
		case i == len(misses) && d.Rule == r.Name:
			fmt.Fprintf(stdout, "  %s MATCH\n", line)
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

func explainRequest(principal, userSID string, groups []string, source, dest string, addrs []string, command string) (policy.Request, error) {
	var req policy.Request
	req.Identity = policy.Identity{Principal: principal, UserSID: userSID, GroupSIDs: groups}
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
	if ip, err := netip.ParseAddr(host); err == nil {
		req.Addrs = []netip.Addr{ip.Unmap()}
		return req, nil
	}
	req.Host = host
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return req, fmt.Errorf("--addr: %w", err)
		}
		req.Addrs = append(req.Addrs, ip.Unmap())
	}
	if len(addrs) == 0 {
		// As the gateway does: names are matched on the name, address
		// rules on what the name resolves to.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		var dnsErr *net.DNSError
		if err != nil && !errors.As(err, &dnsErr) {
			return req, err
		}
		for _, ip := range ips {
			req.Addrs = append(req.Addrs, ip.Unmap())
		}
	}
	return req, nil
}
