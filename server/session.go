package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// session is one client connection, from greeting to audit record. Its
// state has four owners: the connection (srv, st, conn, src, log: set
// before the session runs), the negotiation's result (hs: set once, by
// run, before any other goroutine of the session starts), the audit record
// (rec: safe for every goroutine) and the lifecycle (life: what to close).
type session struct {
	srv  *Server
	st   *Settings
	conn net.Conn
	src  netip.AddrPort
	log  hclog.Logger

	hs   handshakeResult
	rec  record
	life lifecycle
}

// handshakeResult is what the greeting, the GSS-API context and the
// protection-level subnegotiation established.
type handshakeResult struct {
	method   socks5.Method
	identity policy.Identity
	ctx      *gssapi.Context // nil for method 00
	level    encap.Level
	nec      bool
	rw       io.ReadWriter // the SOCKS stream: conn, or enc
	enc      *encap.Conn   // nil at level clear
}

// lifecycle holds what a session must close when it ends or is cut.
type lifecycle struct {
	mu      sync.Mutex
	closers []io.Closer
	aborted bool
}

// add registers c; after abort it closes c at once, so that a socket
// opened while Shutdown cut the session does not outlive it.
func (l *lifecycle) add(c io.Closer) {
	l.mu.Lock()
	if !l.aborted {
		l.closers = append(l.closers, c)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	c.Close()
}

// abort closes everything registered, once.
func (l *lifecycle) abort() {
	l.mu.Lock()
	cs := l.closers
	l.closers, l.aborted = nil, true
	l.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func newSession(srv *Server, st *Settings, c net.Conn, start time.Time) *session {
	s := &session{srv: srv, st: st, conn: c, src: addrPortOf(c.RemoteAddr())}
	id := audit.NewSessionID(start)
	s.rec.begin(start, id, s.src)
	s.life.add(c)
	s.log = srv.logger(st).With("session_id", id, "client", s.src.String())
	return s
}

// abort closes everything the session holds (errors, the end of the
// relay).
func (s *session) abort() { s.life.abort() }

// cut ends the session from outside (Shutdown's deadline) for reason.
func (s *session) cut(reason audit.EndReason, detail string) {
	s.rec.setEnd(reason, detail)
	s.life.abort()
}

// fail records why the session ends and returns err.
func (s *session) fail(reason audit.EndReason, err error) error {
	s.rec.setEnd(reason, err.Error())
	return err
}

func (s *session) run(overLimit bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panic", "panic", logStr(fmt.Sprint(r)))
			s.rec.setEnd(audit.EndError, "internal error")
		}
		// Every goroutine of the session has ended by now (relay and the
		// UDP association wait for theirs): the buffers can go back.
		s.abort()
		if s.hs.enc != nil {
			s.hs.enc.Release()
		}
		s.srv.endSession(s.rec.finish(time.Now()), s.log)
	}()
	if overLimit {
		s.conn.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAcceptable))
		s.rec.setEnd(audit.EndRefused, "session limit reached")
		s.log.Warn("refused: session limit reached", "max_sessions", s.st.MaxSessions)
		return
	}
	s.conn.SetDeadline(time.Now().Add(s.st.Timeouts.Negotiation))
	hs, err := s.handshake()
	if err != nil {
		return
	}
	s.hs = hs
	req, err := socks5.ReadRequest(hs.rw)
	if err != nil {
		s.requestError(err)
		return
	}
	s.rec.update(func(a *audit.Record) { a.Command, a.Destination = req.Command.String(), req.Dest.String() })
	s.conn.SetDeadline(time.Time{})
	switch req.Command {
	case socks5.CmdConnect:
		s.connect(req)
	case socks5.CmdBind:
		s.bind(req)
	case socks5.CmdUDPAssociate:
		s.udpAssociate(req)
	}
}

// handshake selects the method, authenticates and negotiates the level,
// recording each step; the result's rw is ready for the SOCKS request. On
// error the end reason is recorded and the caller closes.
func (s *session) handshake() (handshakeResult, error) {
	var hs handshakeResult
	methods, err := socks5.ReadGreeting(s.conn)
	if err != nil {
		s.log.Info("bad greeting", "error", logErr(err))
		return hs, s.fail(audit.EndRefused, fmt.Errorf("greeting: %w", err))
	}
	hs.method = socks5.MethodNoAcceptable
	if slices.Contains(methods, socks5.MethodGSSAPI) {
		hs.method = socks5.MethodGSSAPI
	} else if slices.Contains(methods, socks5.MethodNoAuth) && s.noAuthAllowed() {
		hs.method = socks5.MethodNoAuth
	}
	if _, err := s.conn.Write(socks5.AppendMethodSelection(nil, hs.method)); err != nil {
		return hs, s.fail(audit.EndError, fmt.Errorf("method selection: %w", err))
	}
	switch hs.method {
	case socks5.MethodNoAcceptable:
		s.log.Info("refused: client offers no acceptable method", "methods", fmt.Sprintf("%x", methods))
		return hs, s.fail(audit.EndRefused, errors.New("no acceptable authentication method offered"))
	case socks5.MethodNoAuth:
		// No level is negotiated: the session runs in the clear, and
		// policy decides it at level clear.
		s.log.Warn("no-auth session allowed by no_auth sources")
		hs.rw, hs.level = s.conn, encap.LevelClear
		s.rec.update(func(a *audit.Record) { a.Method, a.Level = hs.method.String(), hs.level.String() })
		return hs, nil
	}
	s.rec.update(func(a *audit.Record) { a.Method = hs.method.String() })

	ctx, err := encap.AcceptContext(s.conn, s.st.Acceptor, s.src.Addr())
	if err != nil {
		s.log.Warn("authentication failed", "error", logErr(err))
		return hs, s.fail(audit.EndAuthFailed, fmt.Errorf("authentication: %w", err))
	}
	hs.ctx, hs.identity = ctx, identityOf(ctx)
	s.recordIdentity(hs.identity, ctx)
	s.log = s.log.With("principal", logStr(hs.identity.Principal))
	if perr := ctx.PACError(); perr != nil {
		s.log.Warn("ticket PAC unusable; no group SIDs for policy", "error", logErr(perr))
	}
	s.log.Debug("authenticated", "service", logStr(ctx.Service().String()), "kvno", ctx.KVNO(), "enctype", gssapi.EnctypeName(ctx.Enctype()), "flags", ctx.Flags().String())

	neg, err := encap.NegotiateServer(s.conn, ctx, func(requested encap.Level, nec bool) (encap.Level, error) {
		return s.chooseLevel(hs.identity, requested, nec)
	})
	if err != nil {
		if errors.Is(err, encap.ErrRawSOCKS) {
			s.log.Warn("client sent a SOCKS request where the protection-level message was expected", "error", logErr(err))
		} else {
			s.log.Warn("protection-level negotiation failed", "error", logErr(err))
		}
		return hs, s.fail(audit.EndNegotiationFailed, fmt.Errorf("protection negotiation: %w", err))
	}
	hs.level, hs.nec = neg.Granted, neg.NEC
	s.rec.update(func(a *audit.Record) { a.Level, a.NEC = hs.level.String(), hs.nec })
	if neg.Granted != neg.Requested {
		s.log.Info("protection level differs from the request", "requested", neg.Requested.String(), "granted", neg.Granted.String(), "nec", neg.NEC)
	}
	if neg.Granted == encap.LevelClear {
		hs.rw = s.conn
		return hs, nil
	}
	enc, err := encap.NewConn(s.conn, ctx, neg.Granted, encap.ConnOptions{Pool: s.srv.pool})
	if err != nil {
		return hs, s.fail(audit.EndError, err)
	}
	hs.rw, hs.enc = enc, enc
	return hs, nil
}

// recordIdentity puts what the context says of the client in the record.
func (s *session) recordIdentity(id policy.Identity, ctx *gssapi.Context) {
	s.rec.update(func(a *audit.Record) {
		a.Principal, a.Realm = id.Principal, id.Realm
		a.UserSID = id.UserSID
		a.SetGroupSIDs(id.GroupSIDs)
		a.Service = ctx.Service().String()
		a.Enctype = gssapi.EnctypeName(ctx.Enctype())
	})
}

func (s *session) noAuthAllowed() bool {
	return s.st.NoAuth.Contains(s.src.Addr())
}

func identityOf(ctx *gssapi.Context) policy.Identity {
	c := ctx.Client()
	id := policy.Identity{Principal: c.String(), Name: c.Name, Realm: c.Realm}
	if ad := ctx.AD(); ad != nil {
		id.UserSID = ad.UserSID
		id.GroupSIDs = ad.GroupSIDs
		id.GroupsKnown = true // AD is set only for a PAC that verified
	}
	return id
}

func (s *session) chooseLevel(id policy.Identity, requested encap.Level, nec bool) (encap.Level, error) {
	// policy.Level and encap.Level are both the RFC 1961 §4 octet.
	ch, err := s.st.Policy.ChooseLevel(id, s.src.Addr(), policy.Level(requested), nec)
	if err != nil {
		s.log.Warn("protection level refused", "requested", requested.String(), "nec", nec, "error", logErr(err))
		return 0, err
	}
	granted := encap.Level(ch.Level)
	if granted == encap.LevelClear && requested != encap.LevelClear {
		s.log.Warn("answering a protected-level request with level 0 (authentication only): the session will not be encapsulated",
			"requested", requested.String(), "rule", logStr(ch.Rule), "reason", logStr(ch.Reason))
	}
	return granted, nil
}

// requestError answers a malformed or unreadable request.
func (s *session) requestError(err error) {
	if errors.Is(err, encap.ErrRawSOCKS) {
		s.log.Warn("raw SOCKS request after the client negotiated "+s.hs.level.String()+
			": the client does not implement RFC 1961 encapsulation (curl >= 8.17 does this); allow it with auth_only in its rule", "error", logErr(err))
		s.rec.setEnd(audit.EndBadRequest, "raw request at level "+s.hs.level.String())
		return
	}
	var pe *socks5.ProtocolError
	if errors.As(err, &pe) && pe.Reply != socks5.ReplySucceeded {
		s.sendReply(pe.Reply, socks5.Addr{})
	}
	s.log.Info("bad request", "error", logErr(err))
	s.rec.setEnd(audit.EndBadRequest, "request: "+err.Error())
}

// sendReply writes a reply inside the negotiated protection.
func (s *session) sendReply(rep socks5.Reply, bnd socks5.Addr) error {
	msg, err := socks5.AppendReply(nil, rep, bnd)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	s.rec.setReply(rep)
	if _, err := s.hs.rw.Write(msg); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// policyRequest builds the policy question for a destination.
func (s *session) policyRequest(cmd socks5.Command, host string, addrs []netip.Addr, port uint16) policy.Request {
	return policy.Request{
		Identity: s.hs.identity,
		Source:   s.src.Addr(),
		Command:  cmd,
		Host:     host,
		Addrs:    addrs,
		Port:     port,
		Level:    policy.Level(s.hs.level),
		NEC:      s.hs.nec,
	}
}

// resolve returns the destination's addresses (the literal one, or the
// name's), with the connect timeout.
func (s *session) resolve(a socks5.Addr) ([]netip.Addr, error) {
	if a.Host == "" {
		return []netip.Addr{a.IP}, nil
	}
	if ip, err := netip.ParseAddr(a.Host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.st.Timeouts.Connect)
	defer cancel()
	addrs, err := s.srv.resolver.LookupNetIP(ctx, "ip", a.Host)
	if err != nil {
		return nil, err
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	return addrs, nil
}

// authorize resolves and asks the policy; on denial it answers REP 02 and
// returns false.
func (s *session) authorize(cmd socks5.Command, a socks5.Addr) ([]netip.Addr, policy.Decision, bool) {
	addrs, err := s.resolve(a)
	if err != nil {
		s.log.Info("cannot resolve destination", "dest", logStr(a.String()), "error", logErr(err))
		s.rec.setEnd(audit.EndDialFailed, "resolve: "+err.Error())
		s.sendReply(replyFor(err), socks5.Addr{})
		return nil, policy.Decision{}, false
	}
	d := s.st.Policy.Decide(s.policyRequest(cmd, a.Host, addrs, a.Port))
	if !d.Allow {
		s.deny(cmd, d, "dest", logStr(a.String()))
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return nil, d, false
	}
	s.rec.setRule(d.Rule)
	if !s.admitPrincipal(d) {
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return nil, d, false
	}
	return addrs, d, true
}

// deny records and logs a denial by policy; kv names what was denied.
func (s *session) deny(cmd socks5.Command, d policy.Decision, kv ...any) {
	s.rec.setRule(ruleName(d.Rule))
	s.rec.setEnd(audit.EndDenied, d.Reason)
	args := append([]any{"command", cmd.String()}, kv...)
	s.log.Info("denied", append(args, "rule", logStr(ruleName(d.Rule)), "reason", logStr(d.Reason))...)
}

// admitPrincipal enforces the rule's per-principal session limit.
func (s *session) admitPrincipal(d policy.Decision) bool {
	p := s.hs.identity.Principal
	if d.MaxSessionsPerPrincipal <= 0 || p == "" {
		return true
	}
	if !s.srv.acquirePrincipal(p, d.MaxSessionsPerPrincipal) {
		s.rec.setEnd(audit.EndDenied, fmt.Sprintf("more than %d sessions for %s", d.MaxSessionsPerPrincipal, p))
		s.log.Warn("denied: per-principal session limit", "rule", logStr(d.Rule), "limit", d.MaxSessionsPerPrincipal)
		return false
	}
	s.life.add(closerFunc(func() error { s.srv.releasePrincipal(p); return nil }))
	return true
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func ruleName(r string) string {
	if r == "" {
		return "(default deny)"
	}
	return r
}

func (s *session) idleTimeout(d policy.Decision) time.Duration {
	if d.IdleTimeout > 0 {
		return d.IdleTimeout
	}
	return s.st.Timeouts.Idle
}
