package server

import (
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

// maxUDPPeers bounds the destinations one association may talk to; replies
// are accepted only from them.
const maxUDPPeers = 4096

// association is the state of one UDP ASSOCIATE.
type association struct {
	s       *session
	client  *net.UDPConn // faces the client
	out     *net.UDPConn // faces destinations
	dgram   *encap.Datagram
	wantIP  netip.Addr
	pinned  atomic.Pointer[netip.AddrPort] // the client's UDP address, once known
	mu      sync.Mutex
	peers   map[netip.AddrPort]struct{}     // destinations sent to
	allowed map[socks5.Addr]policy.Decision // decisions per destination
	names   map[string][]netip.Addr
	dropped atomic.Int64
}

// udpAssociate carries out UDP ASSOCIATE (RFC 1928 §7, RFC 1961 §5): a
// relay socket per association, datagrams accepted only from the client's
// IP (and port, when the request named one), each destination checked by
// policy, replies accepted only from destinations the client sent to; it
// ends with the TCP control connection. The record's outbound address is
// the socket facing destinations; the association's goroutines write its
// rule, counters and end reason through the record's methods.
func (s *session) udpAssociate(req socks5.Request) {
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
		peers: make(map[netip.AddrPort]struct{}), allowed: make(map[socks5.Addr]policy.Decision), names: make(map[string][]netip.Addr),
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
	if err := s.sendReply(socks5.ReplySucceeded, addrOf(client.LocalAddr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.log.Debug("udp association", "relay", client.LocalAddr().String())
	act := &activity{}
	act.touch()
	idle := s.st.Timeouts.Idle
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.fromClient(act, idle) }()
	go func() { defer wg.Done(); a.fromDestinations(act) }()
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
			a.drop("read error", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != a.wantIP {
			a.drop("datagram from another address than the client's", nil, "from", from.String())
			continue
		}
		if p := a.pinned.Load(); p != nil && *p != from {
			a.drop("datagram from another port than the client's", nil, "from", from.String())
			continue
		}
		pkt := buf[:n]
		if a.dgram != nil {
			if pkt, err = a.dgram.Open(pkt); err != nil {
				a.drop("datagram protection", err)
				continue
			}
		}
		dst, payload, err := socks5.ParseUDPHeader(pkt)
		if err != nil {
			a.drop("datagram header", err)
			continue
		}
		target, ok := a.authorize(dst)
		if !ok {
			continue
		}
		if a.pinned.Load() == nil {
			a.pinned.Store(&from)
		}
		a.mu.Lock()
		if len(a.peers) < maxUDPPeers {
			a.peers[target] = struct{}{}
		}
		_, known := a.peers[target]
		a.mu.Unlock()
		if !known {
			a.drop("too many destinations in one association", nil)
			continue
		}
		if _, err := a.out.WriteToUDPAddrPort(payload, target); err != nil {
			a.drop("send", err, "dest", target.String())
			continue
		}
		a.s.rec.up.Add(int64(len(payload)))
		act.touch()
	}
}

// authorize resolves and checks one datagram's destination, caching both.
func (a *association) authorize(dst socks5.Addr) (netip.AddrPort, bool) {
	a.mu.Lock()
	d, seen := a.allowed[dst]
	addrs := a.names[dst.Host]
	a.mu.Unlock()
	if dst.Host == "" {
		addrs = []netip.Addr{dst.IP}
	} else if addrs == nil {
		var err error
		if addrs, err = a.s.resolve(dst); err != nil || len(addrs) == 0 {
			a.drop("resolve", err, "dest", logStr(dst.Host))
			return netip.AddrPort{}, false
		}
		a.mu.Lock()
		a.names[dst.Host] = addrs
		a.mu.Unlock()
	}
	if !seen {
		d = a.s.st.Policy.Decide(a.s.policyRequest(socks5.CmdUDPAssociate, dst.Host, addrs, dst.Port))
		a.mu.Lock()
		if len(a.allowed) < maxUDPPeers {
			a.allowed[dst] = d
		}
		a.mu.Unlock()
		if d.Allow {
			a.s.rec.setRuleOnce(d.Rule)
		} else {
			a.s.log.Info("udp datagram denied", "dest", logStr(dst.String()), "rule", logStr(ruleName(d.Rule)), "reason", logStr(d.Reason))
		}
	}
	if !d.Allow {
		a.dropped.Add(1)
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addrs[0], dst.Port), true
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
			a.drop("read error", err)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		a.mu.Lock()
		_, ok := a.peers[from]
		a.mu.Unlock()
		if !ok {
			a.drop("datagram from a host the client did not send to", nil, "from", from.String())
			continue
		}
		to := a.pinned.Load()
		if to == nil {
			continue
		}
		msg, err := socks5.AppendUDPHeader(out[:0], socks5.AddrFromAddrPort(from))
		if err != nil {
			a.drop("header", err)
			continue
		}
		msg = append(msg, buf[:n]...)
		out = msg[:0]
		if a.dgram != nil {
			if sealed, err = a.dgram.Seal(sealed[:0], msg); err != nil {
				a.drop("seal", err)
				continue
			}
			msg = sealed
		}
		if _, err := a.client.WriteToUDPAddrPort(msg, *to); err != nil {
			a.drop("send to client", err)
			continue
		}
		a.s.rec.down.Add(int64(n))
		act.touch()
	}
}

// drop counts and logs (at debug: a flood must not flood the log) a
// dropped datagram.
func (a *association) drop(why string, err error, kv ...any) {
	a.dropped.Add(1)
	args := append([]any{"reason", why}, kv...)
	if err != nil {
		args = append(args, "error", logErr(err))
	}
	a.s.log.Debug("udp datagram dropped", args...)
}
