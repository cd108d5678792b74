package server

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// Every destination a client names (a CONNECT's, a BIND's expected peer,
// a UDP datagram's header) goes through one path, so that what the policy
// judges is what the kernel reaches: policy.NormalizeDest (an address
// literal in any form a resolver reads as one is that address; addresses
// canonical), names resolved as absolute names (no search domain turns
// "db" into a name the rules did not judge), the resolver's answer made
// canonical (policy.CanonicalAddrs), and then exactly those addresses
// judged and dialled.

// errNoDestination: the request names no destination (the name ".", an
// invalid address). It is answered with host unreachable.
var errNoDestination = errors.New("server: the request names no destination")

// target is a destination as it is judged and dialled.
type target struct {
	dest  policy.Dest  // normalised: a name (resolved into addrs) or an address
	addrs []netip.Addr // canonical; for an address, that address
}

// resolveDest normalises a and resolves it within ctx.
func (s *session) resolveDest(ctx context.Context, a socks5.Addr) (target, error) {
	d := policy.NormalizeDest(a.Host, a.IP)
	switch {
	case d.IsName():
		addrs, err := s.srv.resolver.LookupNetIP(ctx, "ip", d.FQDN())
		if err != nil {
			return target{dest: d}, err
		}
		if addrs = policy.CanonicalAddrs(addrs); len(addrs) == 0 {
			return target{dest: d}, &net.DNSError{Err: "no address", Name: d.Host, IsNotFound: true}
		}
		return target{dest: d, addrs: addrs}, nil
	case d.Addr.IsValid():
		return target{dest: d, addrs: []netip.Addr{d.Addr}}, nil
	}
	return target{}, errNoDestination
}

// canonicalPeer is the address of an inbound peer as policy compares it.
func canonicalPeer(a net.Addr) netip.AddrPort {
	ap := addrPortOf(a)
	return netip.AddrPortFrom(policy.CanonicalAddr(ap.Addr()), ap.Port())
}

// policyRequest builds the policy question for a target (the zero target:
// no destination yet, for DecideCommand).
func (s *session) policyRequest(cmd socks5.Command, t target, port uint16) policy.Request {
	return policy.Request{
		Identity: s.hs.identity,
		Source:   s.src.Addr(),
		Command:  cmd,
		Host:     t.dest.Host,
		Addrs:    t.addrs,
		Port:     port,
		Level:    policy.Level(s.hs.level),
		NEC:      s.hs.nec,
		Method:   policyMethod(s.hs.method),
	}
}

// authorize resolves the destination within ctx and asks the policy; when
// it allows, it counts the session against the rule's per-principal limit
// and schedules its end at the ticket's. Otherwise it answers (REP 02 for
// a denial, the resolution failure's reply) and returns false.
func (s *session) authorize(ctx context.Context, cmd socks5.Command, a socks5.Addr) (target, policy.Decision, bool) {
	t, err := s.resolveDest(ctx, a)
	if err != nil {
		s.log.Info("cannot resolve destination", "dest", logStr(a.String()), "error", logErr(err))
		s.rec.setEnd(audit.EndDialFailed, "resolve: "+err.Error())
		s.sendReply(replyFor(err), socks5.Addr{})
		return target{}, policy.Decision{}, false
	}
	d := s.st.Policy.Decide(s.policyRequest(cmd, t, a.Port))
	if !s.admit(cmd, d, "dest", logStr(a.String())) {
		return target{}, d, false
	}
	return t, d, true
}

// admit carries out an allow (rule recorded, per-principal limit, end at
// the ticket's) or a denial, answering REP 02 for a refusal; kv names what
// was decided, for the log.
func (s *session) admit(cmd socks5.Command, d policy.Decision, kv ...any) bool {
	if !d.Allow {
		s.deny(cmd, d, kv...)
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return false
	}
	s.rec.setRule(d.Rule)
	if !s.admitPrincipal(d) || !s.limitLifetime(d) {
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return false
	}
	return true
}
