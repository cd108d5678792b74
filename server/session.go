package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks4"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// session is one client connection, from greeting to audit record. Its
// state has four owners: the connection (srv, st, conn, src, log: set
// before the session runs), the negotiation's result (hs: set once, by
// run, before any other goroutine of the session starts), the audit record
// (rec: safe for every goroutine) and the lifecycle (life: what to close;
// exp: when). The admission flags (inHandshake, counted, principal) belong
// to the session's goroutine; what they release is closed by life or at
// the end of run.
type session struct {
	srv  *Server
	st   *Settings
	conn net.Conn
	src  netip.AddrPort
	log  hclog.Logger

	hs   handshakeResult
	rec  record
	life lifecycle
	exp  expiry

	// prefix is what run read of the connection to tell SOCKS4 from
	// SOCKS5 (its first byte), for the handshake to read again.
	prefix []byte

	inHandshake bool // holds a handshake slot (Server.hs)
	counted     bool // holds a session slot (Settings.MaxSessions)
	principal   bool // counted against its principal's limit
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

	// authMethod is the session's front door and authentication as the
	// policy and the audit record name it (policy.Request.Method).
	authMethod policy.Method
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
	s.life.add(closerFunc(s.stopExpiry))
	s.log = srv.logger(st).With("session_id", id, "client", s.src.String())
	return s
}

// abort closes everything the session holds (errors, the end of the
// relay, the ticket's end).
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

// run serves the session; refusal, when set, says why the connection may
// not even start its handshake (a handshake limit: the slot was not
// taken).
func (s *session) run(refusal string) {
	defer func() {
		// Every goroutine of the session has ended by now (relay and the
		// UDP association wait for theirs): the buffers can go back.
		s.abort()
		s.endHandshake()
		if s.counted {
			s.srv.releaseSession()
		}
		if s.hs.enc != nil {
			s.hs.enc.Release()
		}
		s.srv.endSession(s.rec.finish(time.Now()), s.log)
	}()
	defer s.recoverPanic("session") // runs first: the record above has the cause
	if refusal != "" {
		s.conn.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAcceptable))
		s.rec.setEnd(audit.EndRefused, refusal)
		s.log.Warn("refused: "+refusal, "max_handshakes", s.st.MaxHandshakes, "max_handshakes_per_source", s.st.MaxHandshakesPerSource)
		return
	}
	s.inHandshake = true
	s.conn.SetDeadline(time.Now().Add(s.st.Timeouts.Negotiation))
	if s.readVersion() == socks4.Version {
		s.socks4()
		return
	}
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

// endHandshake gives the handshake slot back, once.
func (s *session) endHandshake() {
	if s.inHandshake {
		s.inHandshake = false
		s.srv.hs.release(s.src.Addr())
	}
}

// becomeSession turns the handshake into a session counted against
// MaxSessions; false when that limit is reached (the caller refuses).
func (s *session) becomeSession() bool {
	s.endHandshake()
	if !s.srv.acquireSession(s.st.MaxSessions) {
		s.rec.setEnd(audit.EndRefused, "session limit reached")
		s.log.Warn("refused: session limit reached", "max_sessions", s.st.MaxSessions)
		return false
	}
	s.counted = true
	return true
}

// handshake selects the method, authenticates and negotiates the level,
// recording each step; the result's rw is ready for the SOCKS request. On
// error the end reason is recorded and the caller closes.
func (s *session) handshake() (handshakeResult, error) {
	var hs handshakeResult
	methods, err := socks5.ReadGreeting(s.greeting())
	if err != nil {
		s.log.Info("bad greeting", "error", logErr(err))
		return hs, s.fail(audit.EndRefused, fmt.Errorf("greeting: %w", err))
	}
	hs.method = socks5.MethodNoAcceptable
	if slices.Contains(methods, socks5.MethodGSSAPI) {
		hs.method = socks5.MethodGSSAPI
	} else if slices.Contains(methods, socks5.MethodUsernamePassword) && s.passwordAllowed() {
		// Authenticated, if in the clear: preferred to none (password.go).
		hs.method = socks5.MethodUsernamePassword
	} else if slices.Contains(methods, socks5.MethodNoAuth) && s.noAuthAllowed() {
		hs.method = socks5.MethodNoAuth
		// Nothing more to authenticate: this is a session now, or none.
		if !s.becomeSession() {
			s.conn.Write(socks5.AppendMethodSelection(nil, socks5.MethodNoAcceptable))
			return hs, errors.New("session limit reached")
		}
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
		hs.rw, hs.level, hs.authMethod = s.conn, encap.LevelClear, policy.MethodNone
		s.rec.update(func(a *audit.Record) { a.Method, a.Level = hs.authMethod.String(), hs.level.String() })
		return hs, nil
	case socks5.MethodUsernamePassword:
		return s.passwordHandshake(hs)
	}
	hs.authMethod = policy.MethodGSSAPI
	s.rec.update(func(a *audit.Record) { a.Method = hs.authMethod.String() })

	acceptStart := time.Now()
	ctx, err := encap.AcceptContext(s.conn, s.st.Acceptor, s.src.Addr())
	s.srv.observeHandshake(acceptStart, err)
	if err != nil {
		return hs, s.authFailed(err)
	}
	hs.ctx = ctx
	if hs.identity, err = s.identify(ctx); err != nil {
		encap.WriteAbort(s.conn)
		return hs, err
	}
	s.log = s.log.With("principal", logStr(hs.identity.Principal))
	if perr := ctx.PACError(); perr != nil {
		s.log.Warn("ticket PAC unusable; no group SIDs for policy", "error", logErr(perr))
	}
	s.log.Debug("authenticated", "service", logStr(ctx.Service().String()), "kvno", ctx.KVNO(), "enctype", gssapi.EnctypeName(ctx.Enctype()), "flags", ctx.Flags().String(), "spnego", ctx.SPNEGO())
	if tr := ctx.Trust(); tr.CrossRealm() {
		// Accepted because every realm is in kerberos.trusted_realms; the
		// KDC's TRANSITED-POLICY-CHECKED flag is recorded, not relied on.
		s.log.Info("cross-realm client", "client_realm", logStr(tr.ClientRealm), "transited", logStr(strings.Join(tr.Transited, ",")), "transited_policy_checked", tr.PolicyChecked)
	}
	if !s.becomeSession() {
		encap.WriteAbort(s.conn)
		return hs, errors.New("session limit reached")
	}

	neg, err := encap.NegotiateServer(s.conn, ctx, func(requested encap.Level, nec bool) (encap.Level, error) {
		return s.chooseLevel(hs.identity, requested, nec, ctx.Flags())
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

// authFailures say in plain words why the replay cache refused an AP-REQ:
// these are attacks or floods, not misconfigured clients, and the operator
// must tell them apart from a bad ticket.
var authFailures = []struct {
	err          error
	detail, hint string
}{
	{gssapi.ErrReplay, "replayed AP-REQ",
		"its authenticator was accepted before: a captured AP-REQ sent again (or a client resending one); refused"},
	{gssapi.ErrReplayQuota, "the client principal's share of the replay cache is used up",
		"one principal sent more AP-REQs than its share within the replay window (a flood); its AP-REQs are refused until its entries expire, other principals are still served"},
	{gssapi.ErrReplayCacheFull, "replay cache full",
		"every AP-REQ is refused until entries expire (twice the clock skew); raise kerberos.replay_cache_size if this is legitimate load"},
}

// authFailed logs and records a failed GSS-API context establishment.
func (s *session) authFailed(err error) error {
	for _, f := range authFailures {
		if errors.Is(err, f.err) {
			s.log.Warn("authentication refused: "+f.detail, "hint", f.hint, "error", logErr(err))
			return s.fail(audit.EndAuthFailed, fmt.Errorf("authentication: %s: %w", f.detail, err))
		}
	}
	s.log.Warn("authentication failed", "error", logErr(err))
	return s.fail(audit.EndAuthFailed, fmt.Errorf("authentication: %w", err))
}

// identify builds the canonical identity of the authenticated client
// (policy.Engine.Identify: the PAC's account name, case folding by realm)
// and records it with the ticket's spelling when that differs. A client
// whose account cannot be told (policy.ErrNoCanonicalName) is refused:
// rules written for the account must not be matched by another spelling.
func (s *session) identify(ctx *gssapi.Context) (policy.Identity, error) {
	c := ctx.Client()
	pc := policy.Client{Name: c.Name, Realm: c.Realm, Kind: clientKind(ctx.ClientKind())}
	if ad := ctx.AD(); ad != nil {
		// AD is set only for a PAC whose signatures verified.
		pc.PAC, pc.Account, pc.UserSID, pc.GroupSIDs = true, ad.LogonName, ad.UserSID, ad.GroupSIDs
	}
	id, err := s.st.Policy.Identify(pc)
	s.rec.update(func(a *audit.Record) {
		a.Principal, a.Realm = id.Principal, id.Realm
		if presented := c.String(); presented != id.Principal {
			a.PresentedPrincipal = presented
		}
		if err != nil {
			a.Realm = c.Realm
		}
		a.UserSID = id.UserSID
		a.SetGroupSIDs(id.GroupSIDs)
		a.Service = ctx.Service().String()
		a.Enctype = gssapi.EnctypeName(ctx.Enctype())
	})
	if err != nil {
		s.log.Warn("refused: no canonical name for the client's account", "presented", logStr(c.String()), "error", logErr(err))
		return id, s.fail(audit.EndAuthFailed, fmt.Errorf("identity: %w", err))
	}
	return id, nil
}

// clientKind maps the acceptor's classification of the ticket's client
// onto policy's. An unknown kind is a service: allow rules then match it
// only where they opt in (fail closed).
func clientKind(k gssapi.ClientKind) policy.ClientKind {
	switch k {
	case gssapi.ClientUser:
		return policy.ClientUser
	case gssapi.ClientAnonymous:
		return policy.ClientAnonymous
	}
	return policy.ClientService
}

func (s *session) noAuthAllowed() bool {
	return s.st.NoAuth.Contains(s.src.Addr())
}

// chooseLevel asks policy for the level to grant. Whether the client can
// protect a stream comes from its context's flags: stream protection
// needs in-order tokens, so a client that did not ask for sequencing
// (curl since 8.17) does not mean to encapsulate, and an auth_only rule
// answers it clear (policy.LevelRequest.CanProtectStream).
func (s *session) chooseLevel(id policy.Identity, requested encap.Level, nec bool, flags gssapi.Flags) (encap.Level, error) {
	canProtect := flags&gssapi.FlagSequence != 0
	// policy.Level and encap.Level are both the RFC 1961 §4 octet.
	ch, err := s.st.Policy.ChooseLevelFor(policy.LevelRequest{Identity: id, Source: s.src.Addr(),
		Requested: policy.Level(requested), NEC: nec, CanProtectStream: canProtect})
	if err != nil {
		s.log.Warn("protection level refused", "requested", requested.String(), "nec", nec, "flags", flags.String(), "error", logErr(err))
		return 0, err
	}
	granted := encap.Level(ch.Level)
	switch {
	case ch.AuthOnlyNoSequence:
		s.log.Warn("answering a protected-level request with level 0 (authentication only): the client's GSS flags lack sequence, so it cannot protect a stream (curl >= 8.17); the session will not be encapsulated",
			"requested", requested.String(), "flags", flags.String(), "decision", "clear: auth_only, no sequence flag", "rule", logStr(ch.Rule))
	case granted == encap.LevelClear && requested != encap.LevelClear:
		s.log.Warn("answering a protected-level request with level 0 (authentication only): the session will not be encapsulated",
			"requested", requested.String(), "flags", flags.String(), "decision", "clear: auth_only, requested level not accepted", "rule", logStr(ch.Rule), "reason", logStr(ch.Reason))
	case requested != encap.LevelClear && !canProtect:
		s.log.Info("granting protection to a client whose GSS flags lack sequence: it may not encapsulate; auth_only in its rule would answer clear",
			"requested", requested.String(), "granted", granted.String(), "flags", flags.String(), "rule", logStr(ch.Rule))
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

// deny records and logs a denial by policy; kv names what was denied. A
// refusal by the built-in gateway-local deny records why the destination
// is the gateway's own.
func (s *session) deny(cmd socks5.Command, d policy.Decision, kv ...any) {
	s.rec.setRule(ruleName(d.Rule))
	detail := d.Reason
	if d.Rule == policy.GatewayLocalRule && d.GatewayLocal != "" {
		detail = "gateway-local destination: " + d.GatewayLocal
	}
	s.rec.setEnd(audit.EndDenied, detail)
	args := append([]any{"command", cmd.String()}, kv...)
	s.log.Info("denied", append(args, "rule", logStr(ruleName(d.Rule)), "reason", logStr(d.Reason))...)
}

// admitPrincipal enforces the rule's per-principal session limit, keyed on
// the canonical principal (one account, one count, however its tickets
// spell it), and records a refusal as the end of the session.
func (s *session) admitPrincipal(d policy.Decision) bool {
	if s.countPrincipal(d) {
		return true
	}
	s.rec.setEnd(audit.EndDenied, fmt.Sprintf("more than %d sessions for %s", d.MaxSessionsPerPrincipal, s.hs.identity.Principal))
	s.srv.observeLimitRefusal()
	s.log.Warn("denied: per-principal session limit", "rule", logStr(d.Rule), "limit", d.MaxSessionsPerPrincipal)
	return false
}

// countPrincipal counts the session against d's per-principal limit; false
// when the principal has its limit's worth of sessions already. A session
// counts once, against the first limit that applies to it. The caller
// owns s.principal: the session's goroutine, or the UDP association's
// goroutine once it runs.
func (s *session) countPrincipal(d policy.Decision) bool {
	p := s.hs.identity.Principal
	if s.principal || d.MaxSessionsPerPrincipal <= 0 || p == "" {
		return true
	}
	if !s.srv.acquirePrincipal(p, d.MaxSessionsPerPrincipal) {
		return false
	}
	s.principal = true
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
