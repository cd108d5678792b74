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
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// session is one client connection, from greeting to audit record.
type session struct {
	srv   *Server
	st    *Settings
	conn  net.Conn
	id    uint64
	start time.Time
	log   hclog.Logger

	src      netip.AddrPort
	identity policy.Identity
	method   socks5.Method
	level    encap.Level
	nec      bool
	rw       io.ReadWriter // the SOCKS stream: conn, or the encapsulating Conn
	enc      *encap.Conn
	gss      *gssapi.Context

	// audit fields
	cmd       socks5.Command
	dest      socks5.Addr
	rule      string
	reply     socks5.Reply
	replied   bool
	reason    string
	up, down  atomic.Int64 // bytes client->destination, destination->client
	closeOnce sync.Once
	closers   []io.Closer
	closersMu sync.Mutex
}

// addCloser registers what abort must close besides the client connection.
func (s *session) addCloser(c io.Closer) {
	s.closersMu.Lock()
	s.closers = append(s.closers, c)
	s.closersMu.Unlock()
}

// abort closes everything the session holds (Shutdown deadline, errors).
func (s *session) abort() {
	s.closeOnce.Do(func() {
		s.conn.Close()
		s.closersMu.Lock()
		for _, c := range s.closers {
			c.Close()
		}
		s.closersMu.Unlock()
	})
}

func (s *session) run(overLimit bool) {
	defer func() {
		// Every goroutine of the session has ended by now (relay and the
		// UDP association wait for theirs): the buffers can go back.
		s.abort()
		if s.enc != nil {
			s.enc.Release()
		}
	}()
	s.src, _ = netip.ParseAddrPort(s.conn.RemoteAddr().String())
	s.src = netip.AddrPortFrom(s.src.Addr().Unmap(), s.src.Port())
	s.log = s.srv.log.With("session", s.id, "client", s.src.String())
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("session panic", "panic", fmt.Sprint(r))
			s.reason = "internal error"
		}
		s.writeAudit()
	}()
	if overLimit {
		s.conn.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAcceptable))
		s.reason = "session limit reached"
		s.log.Warn("refused: session limit reached", "max_sessions", s.st.MaxSessions)
		return
	}
	s.conn.SetDeadline(time.Now().Add(s.st.Timeouts.Negotiation))
	if err := s.handshake(); err != nil {
		s.reason = err.Error()
		return
	}
	req, err := socks5.ReadRequest(s.rw)
	if err != nil {
		s.requestError(err)
		return
	}
	s.cmd, s.dest = req.Command, req.Dest
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
// leaving s.rw ready for the SOCKS request.
func (s *session) handshake() error {
	methods, err := socks5.ReadGreeting(s.conn)
	if err != nil {
		s.log.Info("bad greeting", "error", err)
		return fmt.Errorf("greeting: %w", err)
	}
	s.method = socks5.MethodNoAcceptable
	if slices.Contains(methods, socks5.MethodGSSAPI) {
		s.method = socks5.MethodGSSAPI
	} else if slices.Contains(methods, socks5.MethodNoAuth) && s.noAuthAllowed() {
		s.method = socks5.MethodNoAuth
	}
	if _, err := s.conn.Write(socks5.AppendMethodSelection(nil, s.method)); err != nil {
		return fmt.Errorf("method selection: %w", err)
	}
	switch s.method {
	case socks5.MethodNoAcceptable:
		s.log.Info("refused: client offers no acceptable method", "methods", fmt.Sprintf("%x", methods))
		return errors.New("no acceptable authentication method offered")
	case socks5.MethodNoAuth:
		s.log.Warn("no-auth session allowed by no_auth sources")
		s.rw = s.conn
		s.level = encap.LevelClear
		return nil
	}

	ctx, err := encap.AcceptContext(s.conn, s.st.Acceptor, s.src.Addr())
	if err != nil {
		s.log.Warn("authentication failed", "error", err)
		return fmt.Errorf("authentication: %w", err)
	}
	s.gss = ctx
	s.identity = identityOf(ctx)
	s.log = s.log.With("principal", s.identity.Principal)
	if perr := ctx.PACError(); perr != nil {
		s.log.Warn("ticket PAC unusable; no group SIDs for policy", "error", perr)
	}
	s.log.Debug("authenticated", "service", ctx.Service().String(), "kvno", ctx.KVNO(), "enctype", gssapi.EnctypeName(ctx.Enctype()), "flags", ctx.Flags().String())

	neg, err := encap.NegotiateServer(s.conn, ctx, s.chooseLevel)
	if err != nil {
		if errors.Is(err, encap.ErrRawSOCKS) {
			s.log.Warn("client sent a SOCKS request where the protection-level message was expected", "error", err)
		} else {
			s.log.Warn("protection-level negotiation failed", "error", err)
		}
		return fmt.Errorf("protection negotiation: %w", err)
	}
	s.level, s.nec = neg.Granted, neg.NEC
	if neg.Granted != neg.Requested {
		s.log.Info("protection level differs from the request", "requested", neg.Requested.String(), "granted", neg.Granted.String(), "nec", neg.NEC)
	}
	if neg.Granted == encap.LevelClear {
		s.rw = s.conn
		return nil
	}
	s.enc, err = encap.NewConn(s.conn, ctx, neg.Granted, encap.ConnOptions{Pool: s.srv.pool})
	if err != nil {
		return err
	}
	s.rw = s.enc
	return nil
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

func (s *session) chooseLevel(requested encap.Level, nec bool) (encap.Level, error) {
	// policy.Level and encap.Level are both the RFC 1961 §4 octet.
	ch, err := s.st.Policy.ChooseLevel(s.identity, s.src.Addr(), policy.Level(requested), nec)
	if err != nil {
		s.log.Warn("protection level refused", "requested", requested.String(), "nec", nec, "error", err)
		return 0, err
	}
	granted := encap.Level(ch.Level)
	if granted == encap.LevelClear && requested != encap.LevelClear {
		s.log.Warn("answering a protected-level request with level 0 (authentication only): the session will not be encapsulated",
			"requested", requested.String(), "rule", ch.Rule, "reason", ch.Reason)
	}
	return granted, nil
}

// requestError answers a malformed or unreadable request.
func (s *session) requestError(err error) {
	if errors.Is(err, encap.ErrRawSOCKS) {
		s.log.Warn("raw SOCKS request after the client negotiated "+s.level.String()+
			": the client does not implement RFC 1961 encapsulation (curl >= 8.17 does this); allow it with auth_only in its rule", "error", err)
		s.reason = "raw request at level " + s.level.String()
		return
	}
	var pe *socks5.ProtocolError
	if errors.As(err, &pe) && pe.Reply != socks5.ReplySucceeded {
		s.sendReply(pe.Reply, socks5.Addr{})
	}
	s.log.Info("bad request", "error", err)
	s.reason = "request: " + err.Error()
}

// sendReply writes a reply inside the negotiated protection.
func (s *session) sendReply(rep socks5.Reply, bnd socks5.Addr) error {
	s.reply, s.replied = rep, true
	msg, err := socks5.AppendReply(nil, rep, bnd)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if _, err := s.rw.Write(msg); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// policyRequest builds the policy question for a destination.
func (s *session) policyRequest(cmd socks5.Command, host string, addrs []netip.Addr, port uint16) policy.Request {
	return policy.Request{
		Identity: s.identity,
		Source:   s.src.Addr(),
		Command:  cmd,
		Host:     host,
		Addrs:    addrs,
		Port:     port,
		Level:    policy.Level(s.level),
		NEC:      s.nec,
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
		s.log.Info("cannot resolve destination", "dest", a.String(), "error", err)
		s.reason = "resolve: " + err.Error()
		s.sendReply(replyFor(err), socks5.Addr{})
		return nil, policy.Decision{}, false
	}
	d := s.st.Policy.Decide(s.policyRequest(cmd, a.Host, addrs, a.Port))
	s.rule = d.Rule
	if !d.Allow {
		s.reason = d.Reason
		s.log.Info("denied", "command", cmd.String(), "dest", a.String(), "rule", ruleName(d.Rule), "reason", d.Reason)
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return nil, d, false
	}
	if !s.admitPrincipal(d) {
		s.sendReply(socks5.ReplyNotAllowed, socks5.Addr{})
		return nil, d, false
	}
	return addrs, d, true
}

// admitPrincipal enforces the rule's per-principal session limit.
func (s *session) admitPrincipal(d policy.Decision) bool {
	if d.MaxSessionsPerPrincipal <= 0 || s.identity.Principal == "" {
		return true
	}
	p := s.identity.Principal
	if !s.srv.acquirePrincipal(p, d.MaxSessionsPerPrincipal) {
		s.reason = fmt.Sprintf("more than %d sessions for %s", d.MaxSessionsPerPrincipal, p)
		s.log.Warn("denied: per-principal session limit", "rule", d.Rule, "limit", d.MaxSessionsPerPrincipal)
		return false
	}
	s.addCloser(closerFunc(func() error { s.srv.releasePrincipal(p); return nil }))
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

func (s *session) writeAudit() {
	rule := s.rule
	if rule == "" && s.replied && s.reply == socks5.ReplyNotAllowed {
		rule = "(default deny)"
	}
	fields := []any{
		"session", s.id,
		"principal", s.identity.Principal,
		"source", s.src.String(),
		"method", methodName(s.method),
		"level", s.level.String(),
		"enctype", enctypeName(s.gss),
		"nec", s.nec,
		"command", cmdName(s.cmd),
		"destination", destName(s.dest),
		"rule", rule,
		"reply", replyName(s.replied, s.reply),
		"bytes_up", s.up.Load(),
		"bytes_down", s.down.Load(),
		"duration", time.Since(s.start).Round(time.Millisecond).String(),
	}
	if s.reason != "" {
		fields = append(fields, "reason", s.reason)
	}
	s.srv.audit.Info("session", fields...)
}

func methodName(m socks5.Method) string {
	switch m {
	case socks5.MethodGSSAPI:
		return "gssapi"
	case socks5.MethodNoAuth:
		return "none"
	}
	return "-"
}

func cmdName(c socks5.Command) string {
	if c == 0 {
		return "-"
	}
	return c.String()
}

func destName(a socks5.Addr) string {
	if a.Host == "" && !a.IP.IsValid() {
		return "-"
	}
	return a.String()
}

func replyName(replied bool, r socks5.Reply) string {
	if !replied {
		return "-"
	}
	return fmt.Sprintf("%02d %s", byte(r), r)
}

func enctypeName(ctx *gssapi.Context) string {
	if ctx == nil {
		return "-"
	}
	return gssapi.EnctypeName(ctx.Enctype())
}
