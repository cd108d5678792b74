package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks4"
	"github.com/gssocks/gssocks/socks5"
)

// SOCKS4 and SOCKS4a share the SOCKS5 listeners: a connection whose first
// byte is 4 is a SOCKS4 request (a SOCKS5 greeting starts with 5). SOCKS4
// has no authentication, so it is served only where SOCKS5 without
// authentication is (Settings.NoAuth) and only when Settings.SOCKS4 says
// so; everywhere else the request is read (to log what was asked),
// answered with reply 0x5b and the connection closed. A served request is
// decided as a method-00 session is: no identity (the USERID is logged
// and audited, never trusted), policy.MethodSOCKS4, level clear, through
// the same destination normalisation, gateway-local deny, dialler,
// limits and audit record as SOCKS5.

// readVersion reads the first byte of the connection into s.prefix and
// returns it; 0 when none could be read (the SOCKS5 greeting reader then
// meets the same end of stream and reports it).
func (s *session) readVersion() byte {
	var b [1]byte
	if n, _ := s.conn.Read(b[:]); n == 1 {
		s.prefix = b[:]
		return b[0]
	}
	return 0
}

// greeting is the connection with the byte readVersion took put back.
func (s *session) greeting() io.Reader {
	if len(s.prefix) == 0 {
		return s.conn
	}
	return io.MultiReader(bytes.NewReader(s.prefix), s.conn)
}

// socks4 serves a SOCKS4/4a connection from its request to its record.
func (s *session) socks4() {
	s.hs.authMethod = policy.MethodSOCKS4
	s.hs.rw, s.hs.level = s.conn, encap.LevelClear
	s.rec.update(func(a *audit.Record) { a.Method = s.hs.authMethod.String() })
	req, err := socks4.ReadRequest(s.greeting())
	if err != nil {
		s.socks4RequestError(err)
		return
	}
	dest := socks5.Addr{Host: req.Host, IP: req.IP, Port: req.Port}
	cmd := socks5.CmdConnect
	if req.Command == socks4.CmdBind {
		cmd = socks5.CmdBind
	}
	s.rec.update(func(a *audit.Record) {
		a.Command, a.Destination, a.SOCKS4UserID = cmd.String(), dest.String(), req.UserID
	})
	// The USERID is whatever the client wrote: logged escaped, as a
	// claim, never as a principal.
	s.log = s.log.With("method", "socks4", "socks4_userid", logStr(req.UserID))
	if refusal := s.socks4Refusal(); refusal != "" {
		s.log.Warn("refused: "+refusal, "command", cmd.String(), "dest", logStr(dest.String()))
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		s.rec.setEnd(audit.EndRefused, refusal)
		return
	}
	if !s.becomeSession() {
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return
	}
	// Like a method-00 session: no level is negotiated, the session
	// runs (and is decided) in the clear.
	s.rec.update(func(a *audit.Record) { a.Level = s.hs.level.String() })
	s.log.Warn("SOCKS4 session allowed by no_auth sources", "socks4a", req.Is4a())
	s.conn.SetDeadline(time.Time{})
	if cmd == socks5.CmdBind {
		s.socks4Bind(dest)
		return
	}
	s.socks4Connect(dest)
}

// socks4Refusal says why SOCKS4 is not served to this client, or "".
func (s *session) socks4Refusal() string {
	switch {
	case !s.st.SOCKS4:
		return "SOCKS4 is not enabled (no_auth { socks4 = true })"
	case !s.noAuthAllowed():
		return "SOCKS4 from a source not in no_auth sources"
	}
	return ""
}

// socks4RequestError answers a request that could not be read: a
// complete but refused one (unknown command, USERID or name too long or
// invalid) with 0x5b, a truncated or unreadable one with nothing.
func (s *session) socks4RequestError(err error) {
	var pe *socks4.ProtocolError
	if errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
	}
	s.log.Info("bad SOCKS4 request", "error", logErr(err))
	s.rec.setEnd(audit.EndBadRequest, "socks4 request: "+err.Error())
}

// socks4Reply writes a reply and records it.
func (s *session) socks4Reply(rep socks4.Reply, addr netip.AddrPort) error {
	s.rec.update(func(a *audit.Record) { a.Reply, a.Replied, a.ReplyText = uint8(rep), true, rep.String() })
	if _, err := s.conn.Write(socks4.AppendReply(nil, rep, addr)); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// socks4Authorize is authorize with SOCKS4's one refusal, 0x5b.
func (s *session) socks4Authorize(ctx context.Context, cmd socks5.Command, a socks5.Addr) (target, policy.Decision, bool) {
	t, err := s.resolveDest(ctx, a)
	if err != nil {
		s.log.Info("cannot resolve destination", "dest", logStr(a.String()), "error", logErr(err))
		s.rec.setEnd(audit.EndDialFailed, "resolve: "+err.Error())
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return target{}, policy.Decision{}, false
	}
	d := s.st.Policy.Decide(s.policyRequest(cmd, t, a.Port))
	if !s.socks4Admit(cmd, d, "dest", logStr(a.String())) {
		return target{}, d, false
	}
	return t, d, true
}

// socks4Admit is admit with SOCKS4's one refusal, 0x5b.
func (s *session) socks4Admit(cmd socks5.Command, d policy.Decision, kv ...any) bool {
	if !d.Allow {
		s.deny(cmd, d, kv...)
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return false
	}
	s.rec.setRule(d.Rule)
	if !s.admitPrincipal(d) || !s.limitLifetime(d) {
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return false
	}
	return true
}

// socks4Connect carries out CONNECT as connect does for SOCKS5: judge,
// race the judged addresses under the connect timeout, answer 0x5a with
// the outbound socket's address, relay.
func (s *session) socks4Connect(dest socks5.Addr) {
	ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
	defer cancel()
	s.life.add(closerFunc(func() error { cancel(); return nil }))
	t, d, ok := s.socks4Authorize(ctx, socks5.CmdConnect, dest)
	if !ok {
		return
	}
	conn, dialed, err := raceDialer{Dial: s.srv.dialer.DialContext}.DialRace(ctx, t.addrs, dest.Port)
	if err != nil {
		s.rec.setEnd(audit.EndDialFailed, "connect: "+err.Error())
		s.log.Info("connect failed", "dest", logStr(dest.String()), "error", logErr(err))
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return
	}
	s.life.add(conn)
	s.rec.setDialed(dialed, conn.LocalAddr())
	if err := s.socks4Reply(socks4.ReplyGranted, addrPortOf(conn.LocalAddr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(conn, s.idleTimeout(d))
}

// socks4Bind carries out BIND ("SOCKS 4", BIND): decide, listen, answer
// 0x5a with the listening address, accept the expected peer within the
// bind timeout, answer 0x5a again with the peer's address, relay. DSTIP
// (or the 4a name's addresses) is the expected peer, judged as a
// destination first. As for SOCKS5 BIND, a connection from another
// address is closed and the wait goes on (the SOCKS4 document ends the
// BIND with 0x5b instead, which lets any third party that connects first
// cut it); 0.0.0.0 means any peer, each judged by the rules as it
// connects. Only IPv4 peers: the reply carries an IPv4 address.
func (s *session) socks4Bind(dest socks5.Addr) {
	anyPeer := dest.Host == "" && policy.CanonicalAddr(dest.IP).IsUnspecified()
	var t target
	var d policy.Decision
	if anyPeer {
		d = s.st.Policy.DecideCommand(s.policyRequest(socks5.CmdBind, target{}, 0))
		if !s.socks4Admit(socks5.CmdBind, d, "peer", "any") {
			return
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
		var ok bool
		t, d, ok = s.socks4Authorize(ctx, socks5.CmdBind, dest)
		cancel()
		if !ok {
			return
		}
	}
	v4 := slices.DeleteFunc(slices.Clone(t.addrs), func(a netip.Addr) bool { return !a.Is4() })
	if !anyPeer && len(v4) == 0 {
		s.rec.setEnd(audit.EndDialFailed, "bind: the expected peer has no IPv4 address")
		s.log.Info("bind: the expected peer has no IPv4 address", "dest", logStr(dest.String()))
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.outboundIP(v4), 0)))
	if err != nil {
		s.rec.setEnd(audit.EndError, "bind: "+err.Error())
		s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		return
	}
	s.life.add(ln)
	s.rec.setPeer(nil, ln.Addr())
	if err := s.socks4Reply(socks4.ReplyGranted, addrPortOf(ln.Addr())); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	ln.SetDeadline(time.Now().Add(s.st.Timeouts.Bind))
	peer, from, err := s.acceptBindPeer(ln, v4, anyPeer, dest.String(), &d)
	if err != nil {
		if !errors.Is(err, net.ErrClosed) {
			s.socks4Reply(socks4.ReplyRejected, netip.AddrPort{})
		}
		return
	}
	ln.Close()
	s.life.add(peer)
	s.rec.setPeer(peer.RemoteAddr(), ln.Addr())
	if err := s.socks4Reply(socks4.ReplyGranted, from); err != nil {
		s.rec.setEnd(audit.EndError, err.Error())
		return
	}
	s.relay(peer, s.idleTimeout(d))
}
