package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// connect carries out CONNECT (RFC 1928 §4): resolve and judge the
// destination, race its addresses (RFC 8305) under one deadline for the
// resolution and every attempt (Timeouts.Connect), answer with the
// outbound socket's address, relay. Only the addresses the policy judged
// are dialled.
func (s *session) connect(req socks5.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
	defer cancel()
	// Shutdown's cut ends a dial in progress too.
	s.life.add(closerFunc(func() error { cancel(); return nil }))
	t, d, ok := s.authorize(ctx, socks5.CmdConnect, req.Dest)
	if !ok {
		return
	}
	conn, dialed, err := raceDialer{Dial: s.srv.dialer.DialContext}.DialRace(ctx, t.addrs, req.Dest.Port)
	if err != nil {
		rep := replyFor(err)
		s.rec.setEnd(audit.EndDialFailed, "connect: "+err.Error())
		s.log.Info("connect failed", "dest", logStr(req.Dest.String()), "reply", rep.String(), "error", logErr(err))
		s.sendReply(rep, socks5.Addr{})
		return
	}
	s.life.add(conn)
	s.rec.setDialed(dialed, conn.LocalAddr())
	if err := s.sendReply(socks5.ReplySucceeded, addrOf(conn.LocalAddr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(conn, s.idleTimeout(d))
}

func addrOf(a net.Addr) socks5.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return socks5.Addr{}
	}
	return socks5.AddrFromAddrPort(ap)
}

// outboundIP is the local address the system would use toward dst (a UDP
// "connect" sends nothing), or the client-facing one.
func (s *session) outboundIP(dst []netip.Addr) netip.Addr {
	for _, ip := range dst {
		if ip.IsUnspecified() {
			continue
		}
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 9)))
		if err != nil {
			continue
		}
		la := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
		return la
	}
	return addrOf(s.conn.LocalAddr()).IP
}

// bind carries out BIND (RFC 1928 §4): decide, listen, answer with the
// listening address, accept one connection from an acceptable peer within
// the bind timeout, answer with the peer's address, relay. The record's
// outbound address is the listening one, its dialed address the accepted
// peer.
//
// The decision comes before the listener: for an expected peer (DST.ADDR)
// the policy judges it as a destination; for an unspecified one (0.0.0.0,
// ::: any peer) it judges the command (policy.Engine.DecideCommand), and
// then each inbound peer as it connects. A peer that is not the expected
// one, or that the policy refuses, is closed and the BIND goes on waiting
// for the legitimate peer.
func (s *session) bind(req socks5.Request) {
	anyPeer := req.Dest.Host == "" && (!req.Dest.IP.IsValid() || policy.CanonicalAddr(req.Dest.IP).IsUnspecified())
	var t target
	var d policy.Decision
	if anyPeer {
		d = s.st.Policy.DecideCommand(s.policyRequest(socks5.CmdBind, target{}, 0))
		if !s.admit(socks5.CmdBind, d, "peer", "any") {
			return
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
		var ok bool
		t, d, ok = s.authorize(ctx, socks5.CmdBind, req.Dest)
		cancel()
		if !ok {
			return
		}
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.outboundIP(t.addrs), 0)))
	if err != nil {
		s.rec.setEnd(audit.EndError, "bind: "+err.Error())
		s.sendReply(socks5.ReplyGeneralFailure, socks5.Addr{})
		return
	}
	s.life.add(ln)
	s.rec.setPeer(nil, ln.Addr())
	if err := s.sendReply(socks5.ReplySucceeded, addrOf(ln.Addr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	ln.SetDeadline(time.Now().Add(s.st.Timeouts.Bind))
	peer, from, err := s.acceptBindPeer(ln, t.addrs, anyPeer, req.Dest.String(), &d)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return
		}
		rep := socks5.ReplyGeneralFailure
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			rep = socks5.ReplyTTLExpired
		}
		s.sendReply(rep, socks5.Addr{})
		return
	}
	if anyPeer && (!s.admitPrincipal(d) || !s.limitLifetime(d)) {
		peer.Close()
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return
	}
	ln.Close()
	s.life.add(peer)
	s.rec.setPeer(peer.RemoteAddr(), ln.Addr())
	if err := s.sendReply(socks5.ReplySucceeded, socks5.AddrFromAddrPort(from)); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(peer, s.idleTimeout(d))
}

// acceptBindPeer waits on ln for the connection a BIND expects (RFC 1928
// §4; SOCKS4 BIND alike): from one of expect, or, with anyPeer, from any
// peer the rules allow, which then becomes the decision *d. A connection
// from anyone else is closed and logged, and the wait goes on, so that a
// stranger cannot end the BIND by connecting first. An accept error (the
// bind timeout, or net.ErrClosed at shutdown) is returned; but for
// net.ErrClosed it is already recorded and logged.
func (s *session) acceptBindPeer(ln *net.TCPListener, expect []netip.Addr, anyPeer bool, expected string, d *policy.Decision) (*net.TCPConn, netip.AddrPort, error) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.rec.setEnd(audit.EndDialFailed, "bind: no connection: "+err.Error())
				s.log.Info("bind: no inbound connection", "error", logErr(err))
			}
			return nil, netip.AddrPort{}, err
		}
		from := canonicalPeer(c.RemoteAddr())
		if !anyPeer {
			if slices.Contains(expect, from.Addr()) {
				return c, from, nil
			}
			s.log.Warn("bind: dropped an inbound connection from an unexpected peer", "peer", from.String(), "expected", logStr(expected))
			c.Close()
			continue
		}
		pd := s.st.Policy.Decide(s.policyRequest(socks5.CmdBind, target{addrs: []netip.Addr{from.Addr()}}, from.Port()))
		if !pd.Allow {
			s.log.Warn("bind: refused an inbound connection; still waiting for an acceptable peer",
				"peer", from.String(), "rule", logStr(ruleName(pd.Rule)), "reason", logStr(pd.Reason))
			c.Close()
			continue
		}
		*d = pd
		s.rec.setRule(d.Rule)
		return c, from, nil
	}
}
