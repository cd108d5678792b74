package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// Bounds of one association's state, which the client fills with whatever
// destinations it likes (a flood of distinct names must not grow the
// gateway's heap): the least recently used entry is forgotten to make room.
const (
	// maxUDPDests bounds the destinations (name or address, and port)
	// whose resolution and decision an association remembers, denials and
	// failed resolutions included. A forgotten one is resolved and judged
	// again when it comes back.
	maxUDPDests = 1024
	// udpDestTTL is how long a remembered destination is trusted before it
	// is resolved and judged again (DNS answers change; so do failures).
	udpDestTTL = time.Minute
	// maxUDPPeers bounds the destinations replies are accepted from (those
	// the client sent to); a reply from a forgotten one is dropped.
	maxUDPPeers = 4096
	// maxUDPDenialsLogged is how many denied destinations of one
	// association are logged at Info; the rest at Debug.
	maxUDPDenialsLogged = 8
	// maxUDPPayload4 and maxUDPPayload6 are the largest UDP payloads
	// (65535 less the IPv4 and UDP headers; less the UDP header for IPv6
	// without jumbograms): a datagram past them is dropped as oversize
	// here rather than refused by the kernel.
	maxUDPPayload4 = 65535 - 20 - 8
	maxUDPPayload6 = 65535 - 8
)

// maxUDPPayload is the largest datagram that can be sent to to.
func maxUDPPayload(to netip.AddrPort) int {
	if to.Addr().Unmap().Is4() {
		return maxUDPPayload4
	}
	return maxUDPPayload6
}

// udpDest is what an association remembers of one destination.
type udpDest struct {
	to     netip.AddrPort  // where datagrams go; invalid when refused
	d      policy.Decision // zero when the name did not resolve
	reason UDPDropReason   // why it is refused, when it is
	why    string          // the same, for the log
	seen   time.Time       // when it was resolved and judged
}

// udpKey is a destination as normalised (policy.NormalizeDest), with its
// port: ::ffff:10.1.2.3 and 10.1.2.3 are one entry.
type udpKey struct {
	dest policy.Dest
	port uint16
}

// association is the state of one UDP ASSOCIATE.
type association struct {
	s       *session
	client  *net.UDPConn // faces the client
	out     *net.UDPConn // faces destinations
	dgram   *encap.Datagram
	wantIP  netip.Addr
	pinned  atomic.Pointer[netip.AddrPort] // the client's UDP address, once known
	mu      sync.Mutex
	peers   *lru[netip.AddrPort, struct{}] // destinations sent to
	dests   *lru[udpKey, udpDest]          // resolutions and decisions
	dropped atomic.Int64
	denials atomic.Int64 // destinations denied, for the log's rate
}

// udpAssociate carries out UDP ASSOCIATE (RFC 1928 §7, RFC 1961 §5). The
// command is decided first (policy.Engine.DecideCommand), before any
// socket is opened: its rule's per-principal limit, idle timeout and
// ticket lifetime are the association's, and the record names it. Then a
// relay socket per association, datagrams accepted only from the client's
// IP (and port, when the request named one), each destination judged by
// policy, replies accepted only from destinations the client sent to; it
// ends with the TCP control connection. The record's outbound address is
// the socket facing destinations; the association's goroutines write its
// counters and end reason through the record's methods.
func (s *session) udpAssociate(req socks5.Request) {
	d := s.st.Policy.DecideCommand(s.policyRequest(socks5.CmdUDPAssociate, target{}, 0))
	if !s.admit(socks5.CmdUDPAssociate, d) {
		return
	}
	relayIP := addrOf(s.conn.LocalAddr()).IP
	client, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayIP, 0)))
	if err != nil {
		s.rec.setEnd(audit.EndError, "udp: "+err.Error())
		s.sendReply(socks5.ReplyGeneralFailure, socks5.Addr{})
		return
	}
	s.life.add(client)
	out, err := net.ListenUDP("udp", nil)
	if err != nil {
		s.rec.setEnd(audit.EndError, "udp: "+err.Error())
		s.sendReply(socks5.ReplyGeneralFailure, socks5.Addr{})
		return
	}
	s.life.add(out)
	s.rec.setPeer(nil, out.LocalAddr())
	a := &association{
		s: s, client: client, out: out, wantIP: s.src.Addr(),
		peers: newLRU[netip.AddrPort, struct{}](maxUDPPeers), dests: newLRU[udpKey, udpDest](maxUDPDests),
	}
	if req.Dest.Port != 0 {
		ap := netip.AddrPortFrom(s.src.Addr(), req.Dest.Port)
		a.pinned.Store(&ap)
	}
	if s.hs.level != encap.LevelClear {
		if a.dgram, err = encap.NewDatagram(s.hs.ctx, s.hs.level); err != nil {
			s.rec.setEnd(audit.EndError, err.Error())
			s.sendReply(socks5.ReplyGeneralFailure, socks5.Addr{})
			return
		}
	}
	bnd := addrOf(client.LocalAddr())
	if s.st.UDPAdvertise.IsValid() {
		// Behind a balancer that forwards TCP only, the local address
		// may not be one clients can reach: the operator names the one
		// they can (udp.advertise); the port is still the socket's.
		bnd.IP = s.st.UDPAdvertise
	}
	if err := s.sendReply(socks5.ReplySucceeded, bnd); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.log.Debug("udp association", "relay", client.LocalAddr().String(), "advertised", bnd.String())
	act := &activity{}
	act.touch()
	idle := s.idleTimeout(d)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer s.recoverPanic("udp relay (client to destinations)")
		a.fromClient(act, idle)
	}()
	go func() {
		defer wg.Done()
		defer s.recoverPanic("udp relay (destinations to client)")
		a.fromDestinations(act)
	}()
	// The association lives as long as the control connection (RFC 1928 §7).
	io.Copy(io.Discard, s.hs.rw)
	s.abort()
	wg.Wait()
	if n := a.dropped.Load(); n > 0 {
		// Unless something else ended it, the association completed; the
		// detail says how many datagrams it dropped.
		s.rec.setEnd(audit.EndCompleted, "udp datagrams dropped: "+strconv.FormatInt(n, 10))
	}
}

// fromClient relays the client's datagrams to their destinations.
func (a *association) fromClient(act *activity, idle time.Duration) {
	buf := make([]byte, 64<<10+64)
	for {
		if idle > 0 {
			a.client.SetReadDeadline(time.Now().Add(idle))
		}
		n, from, err := a.client.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if act.since() < idle {
					continue
				}
				a.s.rec.setEnd(audit.EndIdleTimeout, "udp idle timeout")
				a.s.abort()
				return
			}
			a.drop(UDPDropReadError, "read error", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.wantIP {
			a.drop(UDPDropWrongSource, "datagram from another address than the client's", nil, "from", from.String())
			continue
		}
		if p := a.pinned.Load(); p != nil && *p != from {
			a.drop(UDPDropWrongSource, "datagram from another port than the client's", nil, "from", from.String())
			continue
		}
		pkt := buf[:n]
		if a.dgram != nil {
			if pkt, err = a.dgram.Open(pkt); err != nil {
				a.drop(UDPDropUnwrap, "datagram protection", err)
				continue
			}
		}
		dst, payload, err := socks5.ParseUDPHeader(pkt)
		if err != nil {
			reason := UDPDropMalformed
			if errors.Is(err, socks5.ErrFragmented) {
				reason = UDPDropFragment
			}
			a.drop(reason, "datagram header", err)
			continue
		}
		to, ok := a.authorize(dst)
		if !ok {
			continue
		}
		if len(payload) > maxUDPPayload(to) {
			// An IPv6 client's datagram for an IPv4 destination.
			a.drop(UDPDropOversize, "datagram too large for its destination", nil, "dest", to.String(), "size", len(payload))
			continue
		}
		if a.pinned.Load() == nil {
			a.pinned.Store(&from)
		}
		a.mu.Lock()
		a.peers.put(to, struct{}{})
		a.mu.Unlock()
		if _, err := a.out.WriteToUDPAddrPort(payload, to); err != nil {
			a.drop(UDPDropSendError, "send", err, "dest", to.String())
			continue
		}
		a.s.srv.observeUDPRelayed(UDPUp)
		a.s.rec.up.Add(int64(len(payload)))
		act.touch()
	}
}

// authorize returns where a datagram for dst goes: resolved and judged
// once (the outcome, a refusal or a failed resolution included, is
// remembered in the association's bounded cache for udpDestTTL), and
// checked against its rule's ticket lifetime every time.
func (a *association) authorize(dst socks5.Addr) (netip.AddrPort, bool) {
	key := udpKey{dest: policy.NormalizeDest(dst.Host, dst.IP), port: dst.Port}
	now := time.Now()
	a.mu.Lock()
	e, ok := a.dests.get(key)
	a.mu.Unlock()
	if !ok || now.Sub(e.seen) > udpDestTTL {
		e = a.judge(dst, key, now)
		a.mu.Lock()
		a.dests.put(key, e)
		a.mu.Unlock()
	}
	if !e.to.IsValid() {
		a.drop(e.reason, e.why, nil, "dest", logStr(dst.String()))
		return netip.AddrPort{}, false
	}
	if end, ok := a.s.lifetimeEnd(e.d); ok && !now.Before(end) {
		a.drop(UDPDropTicketExpired, "the client's ticket has ended", nil, "dest", logStr(dst.String()), "rule", logStr(e.d.Rule))
		return netip.AddrPort{}, false
	}
	return e.to, true
}

// judge resolves and decides one destination (the first time it is seen,
// or again when its entry is stale or was forgotten).
func (a *association) judge(dst socks5.Addr, key udpKey, now time.Time) udpDest {
	s := a.s
	ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
	t, err := s.resolveDest(ctx, dst)
	cancel()
	if err != nil {
		s.log.Debug("udp datagram dropped: cannot resolve its destination", "dest", logStr(dst.String()), "error", logErr(err))
		return udpDest{reason: UDPDropResolve, why: "cannot resolve the destination", seen: now}
	}
	d := s.st.Policy.Decide(s.policyRequest(socks5.CmdUDPAssociate, t, key.port))
	if !d.Allow {
		// The first denials of an association are worth an Info line; a
		// flood of them is not.
		log := s.log.Debug
		if a.denials.Add(1) <= maxUDPDenialsLogged {
			log = s.log.Info
		}
		log("udp datagram denied", "dest", logStr(dst.String()), "rule", logStr(ruleName(d.Rule)), "reason", logStr(d.Reason))
		return udpDest{d: d, reason: UDPDropPolicyDenied, why: "denied by policy", seen: now}
	}
	if !s.countPrincipal(d) {
		// The datagram's rule limits sessions and this association was
		// not counted yet: it is refused, the association goes on.
		return udpDest{d: d, reason: UDPDropPrincipalLimit, why: "per-principal session limit of rule " + d.Rule, seen: now}
	}
	return udpDest{to: netip.AddrPortFrom(t.addrs[0], key.port), d: d, seen: now}
}

// fromDestinations relays replies from destinations the client sent to.
func (a *association) fromDestinations(act *activity) {
	buf := make([]byte, 64<<10)
	var out, sealed []byte
	for {
		n, from, err := a.out.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.drop(UDPDropReadError, "read error", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		a.mu.Lock()
		_, ok := a.peers.get(from)
		a.mu.Unlock()
		if !ok {
			a.drop(UDPDropUnsolicited, "datagram from a host the client did not send to", nil, "from", from.String())
			continue
		}
		to := a.pinned.Load()
		if to == nil {
			// Not reached: the client's address is pinned before its
			// first destination is remembered. Counted all the same.
			a.drop(UDPDropUnsolicited, "reply before the client's address is known", nil, "from", from.String())
			continue
		}
		msg, err := socks5.AppendUDPHeader(out[:0], socks5.AddrFromAddrPort(from))
		if err != nil {
			a.drop(UDPDropEncapsulate, "header", err)
			continue
		}
		msg = append(msg, buf[:n]...)
		out = msg[:0]
		if a.dgram != nil {
			if sealed, err = a.dgram.Seal(sealed[:0], msg); err != nil {
				reason := UDPDropEncapsulate
				if errors.Is(err, encap.ErrTooLarge) {
					// Past the largest token (encap.MaxToken).
					reason = UDPDropOversize
				}
				a.drop(reason, "seal", err)
				continue
			}
			msg = sealed
		}
		if len(msg) > maxUDPPayload(*to) {
			// A reply near the UDP maximum, grown by the header and the
			// wrap token past it.
			a.drop(UDPDropOversize, "reply too large once encapsulated", nil, "from", from.String(), "size", len(msg))
			continue
		}
		if _, err := a.client.WriteToUDPAddrPort(msg, *to); err != nil {
			a.drop(UDPDropSendError, "send to client", err)
			continue
		}
		a.s.srv.observeUDPRelayed(UDPDown)
		a.s.rec.down.Add(int64(n))
		act.touch()
	}
}

// drop counts (for the record and the observer) and logs (at debug: a
// flood must not flood the log) a dropped datagram; why details reason.
func (a *association) drop(reason UDPDropReason, why string, err error, kv ...any) {
	a.dropped.Add(1)
	a.s.srv.observeUDPDropped(reason)
	if !a.s.log.IsDebug() {
		return // a flood of bad datagrams costs no log arguments
	}
	args := append([]any{"reason", reason.String(), "detail", why}, kv...)
	if err != nil {
		args = append(args, "error", logErr(err))
	}
	a.s.log.Debug("udp datagram dropped", args...)
}
