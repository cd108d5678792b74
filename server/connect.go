package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// connect carries out CONNECT (RFC 1928 §4): dial the destination's
// addresses in turn, answer with the outbound socket's address, relay.
func (s *session) connect(req socks5.Request) {
	addrs, d, ok := s.authorize(socks5.CmdConnect, req.Dest)
	if !ok {
		return
	}
	var target net.Conn
	var err error
	for _, ip := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
		target, err = s.srv.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, req.Dest.Port).String())
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		rep := replyFor(err)
		s.rec.setEnd(audit.EndDialFailed, "connect: "+err.Error())
		s.log.Info("connect failed", "dest", logStr(req.Dest.String()), "reply", rep.String(), "error", logErr(err))
		s.sendReply(rep, socks5.Addr{})
		return
	}
	s.life.add(target)
	s.rec.setPeer(target.RemoteAddr(), target.LocalAddr())
	if err := s.sendReply(socks5.ReplySucceeded, addrOf(target.LocalAddr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(target, s.idleTimeout(d))
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

// bind carries out BIND (RFC 1928 §4): listen, answer with the listening
// address, accept one connection from the expected peer within the bind
// timeout, answer with the peer's address, relay. The record's outbound
// address is the listening one, its dialed address the accepted peer.
func (s *session) bind(req socks5.Request) {
	unspecified := req.Dest.Host == "" && (req.Dest.IP.IsUnspecified() || !req.Dest.IP.IsValid())
	var addrs []netip.Addr
	var d policy.Decision
	if !unspecified {
		var ok bool
		if addrs, d, ok = s.authorize(socks5.CmdBind, req.Dest); !ok {
			return
		}
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.outboundIP(addrs), 0)))
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
	var peer *net.TCPConn
	for peer == nil {
		c, err := ln.AcceptTCP()
		if err != nil {
			rep := socks5.ReplyGeneralFailure
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				rep = socks5.ReplyTTLExpired
			}
			s.rec.setEnd(audit.EndDialFailed, "bind: no connection: "+err.Error())
			s.log.Info("bind: no inbound connection", "error", logErr(err))
			s.sendReply(rep, socks5.Addr{})
			return
		}
		from := addrOf(c.RemoteAddr())
		if !unspecified && !containsAddr(addrs, from.IP) {
			s.log.Warn("bind: dropped an inbound connection from an unexpected peer", "peer", from.String(), "expected", logStr(req.Dest.String()))
			c.Close()
			continue
		}
		if unspecified {
			if d = s.st.Policy.Decide(s.policyRequest(socks5.CmdBind, "", []netip.Addr{from.IP}, from.Port)); !d.Allow {
				s.deny(socks5.CmdBind, d, "peer", from.String())
				c.Close()
				s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
				return
			}
			s.rec.setRule(d.Rule)
			if !s.admitPrincipal(d) {
				c.Close()
				s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
				return
			}
		}
		peer = c
	}
	ln.Close()
	s.life.add(peer)
	s.rec.setPeer(peer.RemoteAddr(), ln.Addr())
	if err := s.sendReply(socks5.ReplySucceeded, addrOf(peer.RemoteAddr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(peer, s.idleTimeout(d))
}

func containsAddr(addrs []netip.Addr, ip netip.Addr) bool {
	for _, a := range addrs {
		if a == ip {
			return true
		}
	}
	return false
}
