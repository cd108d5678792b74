package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
)

// PasswordAuth is what Settings says of SOCKS5 USERNAME/PASSWORD (RFC
// 1929), checked with the KDC by gssapi.PasswordVerifier through the
// session's acceptor. The password travels in the clear: method 02 is
// selected only for Sources, and never when the client offers GSS-API.
type PasswordAuth struct {
	// Sources are the client networks that may use the method.
	Sources policy.Sources
	// Verifier checks the passwords (required).
	Verifier *gssapi.PasswordVerifier
	// Timeout bounds one verification (KDC exchanges and acceptor); 0:
	// 10 s.
	Timeout time.Duration
	// MaxFailuresPerSource and MaxFailuresPerPrincipal: failed
	// verifications allowed per source (an IPv4 address, an IPv6 /64) and
	// per principal (folded to lower case, so that "ALICE" and "alice"
	// count together) within FailureWindow; past either an attempt is
	// refused without asking the KDC. 0: no limit. An unreachable KDC
	// counts against neither; a login not validated (PasswordNotValidated:
	// the gateway's check of the KDC's answer) only against the source.
	MaxFailuresPerSource, MaxFailuresPerPrincipal int
	FailureWindow                                 time.Duration
	// MaxTracked bounds each failure table and the success cache (least
	// recently used entries go first); 0: 4096.
	MaxTracked int
	// MaxConcurrent bounds the verifications in flight in the process
	// (a verification abandoned at Timeout still holds its slot until its
	// KDC exchange ends); past it a client gets failure at once. 0: 16.
	MaxConcurrent int
	// CacheTTL keeps a successful verification this long (never past
	// the ticket's end), keyed on HMAC-SHA256 under a random per-process
	// key over realm, name and password: the password is not kept. 0: no
	// cache.
	CacheTTL time.Duration
}

// PasswordObserver is implemented by an Observer that also counts RFC
// 1929 verifications (optional: the server checks for it).
type PasswordObserver interface {
	// PasswordAuth reports the end of a verification: outcome is one of
	// the PasswordOutcome values, d the time it took (0 for a refusal
	// before any KDC exchange).
	PasswordAuth(outcome string, d time.Duration)
}

// Outcomes of a password verification (PasswordObserver).
const (
	PasswordOK             = "ok"
	PasswordCached         = "cached"            // a cached success
	PasswordBad            = "bad_password"      // gssapi.ErrBadPassword
	PasswordUnknown        = "unknown_principal" // gssapi.ErrUnknownPrincipal, a name refused
	PasswordRealmUntrusted = "realm_not_trusted" // user@REALM of a realm neither the default nor trusted: no KDC request
	PasswordRefusedName    = "refused_name"      // a service, krbtgt or WELLKNOWN name the gateway refuses as a client (gssapi.RefusesClient): no KDC request
	PasswordKDCUnreachable = "kdc_unreachable"
	PasswordNotValidated   = "not_validated" // gssapi.ErrPasswordValidation
	PasswordRateLimited    = "rate_limited"  // a failure limit: no KDC request
	PasswordBusy           = "busy"          // MaxConcurrent reached: no KDC request
	PasswordMalformed      = "malformed"     // a request RFC 1929 does not allow
)

// PasswordOutcomes lists every PasswordObserver outcome, for counters
// to start at zero.
func PasswordOutcomes() []string {
	return []string{PasswordOK, PasswordCached, PasswordBad, PasswordUnknown, PasswordRealmUntrusted, PasswordRefusedName,
		PasswordKDCUnreachable, PasswordNotValidated, PasswordRateLimited, PasswordBusy, PasswordMalformed}
}

const (
	defaultPasswordTimeout  = 10 * time.Second
	defaultPasswordTracked  = 4096
	defaultPasswordInFlight = 16
)

// Errors of the server's own refusals of a password attempt.
var (
	errPasswordRateLimited = errors.New("too many failed password attempts")
	errPasswordBusy        = errors.New("too many password verifications in flight")
)

// passwordState is the process's memory of password attempts, kept
// across reloads (a reload must not reset the failure counts): failure
// counts per source and per principal, successes cached, verifications
// in flight. Every table is an LRU bounded by PasswordAuth.MaxTracked.
type passwordState struct {
	mu          sync.Mutex
	key         []byte // HMAC key of the cache, random, made on first use
	bySource    *lru[netip.Prefix, failureCount]
	byPrincipal *lru[string, failureCount]
	cache       *lru[[sha256.Size]byte, cachedLogin]
	inFlight    int
	// pendingSource and pendingPrincipal count the verifications in
	// flight per failure-table key. Each may yet fail, so it counts
	// against the failure limits until it ends: otherwise a burst of
	// concurrent attempts would all pass the check before the first
	// failure is counted, and reach the KDC past the limit (an account
	// locked out through the gateway). At most inFlight entries each.
	pendingSource    map[netip.Prefix]int
	pendingPrincipal map[string]int
	// settled is closed, and replaced, when a verification ends: it
	// wakes the attempts waiting for a pending one's outcome.
	settled chan struct{}
}

type failureCount struct {
	n     int
	since time.Time // the first failure of the window
}

type cachedLogin struct {
	ctx      *gssapi.Context
	until    time.Time
	verifier *gssapi.PasswordVerifier // a reload's new verifier does not trust the old one's results
}

// tables returns the state with its tables sized for pa; the caller
// holds mu.
func (p *passwordState) tables(pa *PasswordAuth) {
	n := pa.MaxTracked
	if n <= 0 {
		n = defaultPasswordTracked
	}
	if p.bySource == nil {
		p.bySource = newLRU[netip.Prefix, failureCount](n)
		p.byPrincipal = newLRU[string, failureCount](n)
		p.cache = newLRU[[sha256.Size]byte, cachedLogin](n)
	}
	resizeLRU(p.bySource, n)
	resizeLRU(p.byPrincipal, n)
	resizeLRU(p.cache, n)
	if p.pendingSource == nil {
		p.pendingSource = map[netip.Prefix]int{}
		p.pendingPrincipal = map[string]int{}
		p.settled = make(chan struct{})
	}
}

// resizeLRU sets c's bound, forgetting the least recently used entries
// past it.
func resizeLRU[K comparable, V any](c *lru[K, V], max int) {
	c.max = max
	for len(c.m) > max {
		old := c.order.Back()
		delete(c.m, old.Value.(*lruEntry[K, V]).key)
		c.order.Remove(old)
	}
}

// over reports whether k has reached limit failures within window in c,
// counting pending verifications of k as failures.
func over[K comparable](c *lru[K, failureCount], k K, pending, limit int, window time.Duration, now time.Time) bool {
	if limit <= 0 {
		return false
	}
	n := pending
	if f, ok := c.get(k); ok && now.Sub(f.since) < window {
		n += f.n
	}
	return n >= limit
}

// count adds a failure of k.
func count[K comparable](c *lru[K, failureCount], k K, window time.Duration, now time.Time) {
	f, ok := c.get(k)
	if !ok || now.Sub(f.since) >= window {
		f = failureCount{since: now}
	}
	f.n++
	c.put(k, f)
}

// principalKey folds a principal for the failure table: one account,
// one count, however its name is spelt (AD compares names without case).
func principalKey(p gssapi.Principal) string { return strings.ToLower(p.String()) }

// cacheKey is HMAC-SHA256 over the realm, name and password, each
// length-prefixed so that no two triples share an input.
func (p *passwordState) cacheKey(pr gssapi.Principal, password string) ([sha256.Size]byte, error) {
	if p.key == nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("password cache key: %w", err)
		}
		p.key = k
	}
	m := hmac.New(sha256.New, p.key)
	for _, s := range []string{pr.Realm, pr.Name, password} {
		m.Write([]byte{byte(len(s) >> 8), byte(len(s))})
		m.Write([]byte(s))
	}
	return [sha256.Size]byte(m.Sum(nil)), nil
}

// verifyPassword checks a username and password for a client at src,
// within the failure limits and the cap on verifications in flight, and
// returns the acceptor's context for the user and the outcome.
func (s *Server) verifyPassword(ctx context.Context, pa *PasswordAuth, acc *gssapi.Acceptor, req socks5.UserPassRequest, src netip.Addr) (*gssapi.Context, string, error) {
	pw := &s.pw
	now := time.Now()
	skey := sourceKey(src)
	pr, perr := pa.Verifier.Principal(req.Username)
	if perr == nil {
		// A name the acceptor would refuse as a client is refused here,
		// before any KDC request (Verify checks it too).
		perr = gssapi.RefusesClient(acc, pr)
	}
	var ck [sha256.Size]byte

	timeout := pa.Timeout
	if timeout <= 0 {
		timeout = defaultPasswordTimeout
	}
	waitEnd := time.After(timeout)
	pkey := principalKey(pr)

	pw.mu.Lock()
	pw.tables(pa)
	for {
		switch {
		case over(pw.bySource, skey, 0, pa.MaxFailuresPerSource, pa.FailureWindow, now):
			pw.mu.Unlock()
			return nil, PasswordRateLimited, fmt.Errorf("%w from %s (max_failures_per_source %d)", errPasswordRateLimited, skey, pa.MaxFailuresPerSource)
		case perr == nil && over(pw.byPrincipal, pkey, 0, pa.MaxFailuresPerPrincipal, pa.FailureWindow, now):
			pw.mu.Unlock()
			return nil, PasswordRateLimited, fmt.Errorf("%w for %q (max_failures_per_principal %d)", errPasswordRateLimited, pr.String(), pa.MaxFailuresPerPrincipal)
		case perr != nil:
			// Refused before any KDC request; still a failure of the source.
			count(pw.bySource, skey, pa.FailureWindow, now)
			pw.mu.Unlock()
			return nil, passwordOutcome(perr), perr
		}
		if pa.CacheTTL > 0 {
			var err error
			if ck, err = pw.cacheKey(pr, req.Password); err != nil {
				pw.mu.Unlock()
				return nil, PasswordNotValidated, err
			}
			if c, ok := pw.cache.get(ck); ok && c.verifier == pa.Verifier && now.Before(c.until) {
				pw.mu.Unlock()
				return c.ctx, PasswordCached, nil
			}
		}
		if !over(pw.bySource, skey, pw.pendingSource[skey], pa.MaxFailuresPerSource, pa.FailureWindow, now) &&
			!over(pw.byPrincipal, pkey, pw.pendingPrincipal[pkey], pa.MaxFailuresPerPrincipal, pa.FailureWindow, now) {
			break
		}
		// Were the verifications in flight to fail, this one would be
		// past a limit: wait for their outcome (a success resets the
		// principal's count), at most one verification's timeout.
		settled := pw.settled
		pw.mu.Unlock()
		select {
		case <-settled:
		case <-waitEnd:
			return nil, PasswordBusy, fmt.Errorf("%w: the same source or principal has verifications pending for %s", errPasswordBusy, timeout)
		case <-ctx.Done():
			return nil, PasswordBusy, fmt.Errorf("%w: %w", errPasswordBusy, ctx.Err())
		}
		pw.mu.Lock()
		now = time.Now()
	}
	limit := pa.MaxConcurrent
	if limit <= 0 {
		limit = defaultPasswordInFlight
	}
	if pw.inFlight >= limit {
		pw.mu.Unlock()
		return nil, PasswordBusy, fmt.Errorf("%w (max_concurrent %d)", errPasswordBusy, limit)
	}
	pw.pendingSource[skey]++
	pw.pendingPrincipal[pkey]++
	pw.inFlight++
	pw.mu.Unlock()

	type result struct {
		ctx *gssapi.Context
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			pw.mu.Lock()
			pw.inFlight--
			pw.mu.Unlock()
		}()
		// Verify recovers gokrb5's panics itself.
		c, err := pa.Verifier.Verify(acc, req.Username, req.Password, src)
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(timeout):
		r.err = fmt.Errorf("%w: no answer within %s", gssapi.ErrKDCUnreachable, timeout)
	case <-ctx.Done():
		r.err = fmt.Errorf("%w: %w", gssapi.ErrKDCUnreachable, ctx.Err())
	}
	outcome := passwordOutcome(r.err)

	pw.mu.Lock()
	defer pw.mu.Unlock()
	now = time.Now()
	defer pw.settle(skey, pkey)
	switch {
	case r.err == nil:
		pw.byPrincipal.put(pkey, failureCount{}) // she knows it: her count starts again
		if pa.CacheTTL > 0 {
			until := now.Add(pa.CacheTTL)
			if exp := r.ctx.Expiry(); !exp.IsZero() && exp.Before(until) {
				until = exp
			}
			pw.cache.put(ck, cachedLogin{ctx: r.ctx, until: until, verifier: pa.Verifier})
		}
	case outcome == PasswordKDCUnreachable:
		// Not the client's doing: counting it would lock users out once
		// the KDC is back. MaxConcurrent bounds what a dead KDC costs.
	case outcome == PasswordNotValidated:
		// The gateway's own check of the KDC's answer failed: its
		// principal or keytab is wrong, or a KDC is spoofed. Not the
		// user's doing, so her budget is kept (a misconfiguration would
		// otherwise lock out everyone who types the right password); the
		// source's still bounds what a spoofer can try.
		count(pw.bySource, skey, pa.FailureWindow, now)
	default:
		count(pw.bySource, skey, pa.FailureWindow, now)
		count(pw.byPrincipal, pkey, pa.FailureWindow, now)
	}
	return r.ctx, outcome, r.err
}

// settle ends the pending verification of skey and pkey, once its outcome
// is counted, and wakes the attempts waiting for it; the caller holds mu.
func (p *passwordState) settle(skey netip.Prefix, pkey string) {
	if p.pendingSource[skey]--; p.pendingSource[skey] <= 0 {
		delete(p.pendingSource, skey)
	}
	if p.pendingPrincipal[pkey]--; p.pendingPrincipal[pkey] <= 0 {
		delete(p.pendingPrincipal, pkey)
	}
	close(p.settled)
	p.settled = make(chan struct{})
}

// passwordOutcome is the outcome label of a verification's error.
func passwordOutcome(err error) string {
	switch {
	case err == nil:
		return PasswordOK
	case errors.Is(err, gssapi.ErrBadPassword):
		return PasswordBad
	case errors.Is(err, gssapi.ErrRealmNotTrusted):
		return PasswordRealmUntrusted
	case errors.Is(err, gssapi.ErrNotAUser):
		return PasswordRefusedName
	case errors.Is(err, gssapi.ErrUnknownPrincipal), errors.Is(err, gssapi.ErrBadName):
		return PasswordUnknown
	case errors.Is(err, gssapi.ErrKDCUnreachable):
		return PasswordKDCUnreachable
	}
	return PasswordNotValidated
}

// passwordAllowed says whether the client may be offered method 02.
func (s *session) passwordAllowed() bool {
	pa := s.st.Password
	return pa != nil && pa.Verifier != nil && pa.Sources.Contains(s.src.Addr())
}

// passwordHandshake runs the RFC 1929 subnegotiation after method 02 was
// selected: read the request (within the negotiation deadline already
// set), verify, answer X'00' or close after a failure status. The session
// then runs at level clear, without encapsulation, with the identity of
// the verified ticket's client.
func (s *session) passwordHandshake(hs handshakeResult) (handshakeResult, error) {
	hs.authMethod = policy.MethodPassword
	s.rec.update(func(a *audit.Record) { a.Method = hs.authMethod.String() })
	// The outcome is reported before the client hears it, so that
	// whoever watches both sees them in that order.
	fail := func(outcome string, d time.Duration, reason audit.EndReason, err error) (handshakeResult, error) {
		s.srv.observePassword(outcome, d)
		s.conn.Write(socks5.AppendUserPassReply(nil, socks5.UserPassFailure))
		return hs, s.fail(reason, err)
	}
	req, err := socks5.ReadUserPassRequest(s.conn)
	if err != nil {
		if errors.Is(err, socks5.ErrBadUserPass) {
			s.log.Warn("bad username/password request", "error", logErr(err))
			return fail(PasswordMalformed, 0, audit.EndAuthFailed, fmt.Errorf("username/password request: %w", err))
		}
		s.log.Info("username/password request unreadable", "error", logErr(err))
		return hs, s.fail(audit.EndAuthFailed, fmt.Errorf("username/password request: %w", err))
	}
	log := s.log.With("username", logStr(req.Username))
	start := time.Now()
	ctx, outcome, err := s.srv.verifyPassword(context.Background(), s.st.Password, s.st.Acceptor, req, s.src.Addr())
	d := time.Since(start)
	if err != nil {
		switch outcome {
		case PasswordRateLimited, PasswordBusy:
			log.Warn("password refused without asking the KDC: "+outcome, "error", logErr(err))
			d = 0
		case PasswordKDCUnreachable:
			log.Error("password not checked: KDC unreachable", "error", logErr(err), "duration", d)
		case PasswordRefusedName:
			log.Warn("password refused without asking the KDC: the username is a service, ticket-granting or well-known principal, not a user", "outcome", outcome, "error", logErr(err))
		case PasswordNotValidated:
			log.Warn("password login not validated: the KDC's answer did not pass the keytab (a spoofed KDC, or the gateway's principal misconfigured)", "error", logErr(err))
		default:
			log.Warn("password authentication failed", "outcome", outcome, "error", logErr(err))
		}
		return fail(outcome, d, audit.EndAuthFailed, fmt.Errorf("password authentication: %w", err))
	}
	if hs.identity, err = s.identify(ctx); err != nil {
		return fail(PasswordNotValidated, d, audit.EndAuthFailed, err)
	}
	// The verified ticket's context bounds the session's life as a
	// GSS-API client's does (expiry.go: its end, plus the rule's
	// outlive_ticket); it protects nothing, the level being clear.
	hs.ctx = ctx
	s.log = s.log.With("principal", logStr(hs.identity.Principal))
	if perr := ctx.PACError(); perr != nil {
		s.log.Warn("ticket PAC unusable; no group SIDs for policy", "error", logErr(perr))
	}
	if !s.becomeSession() {
		return fail(outcome, d, audit.EndRefused, errors.New("session limit reached"))
	}
	s.srv.observePassword(outcome, d)
	if _, err := s.conn.Write(socks5.AppendUserPassReply(nil, socks5.UserPassSuccess)); err != nil {
		return hs, s.fail(audit.EndError, fmt.Errorf("username/password reply: %w", err))
	}
	s.log.Info("password authenticated; the session runs in the clear", "username", logStr(req.Username), "outcome", outcome)
	hs.rw, hs.level = s.conn, encap.LevelClear
	s.rec.update(func(a *audit.Record) { a.Level = hs.level.String() })
	return hs, nil
}

// observePassword reports a verification to the observer, if it counts
// them.
func (s *Server) observePassword(outcome string, d time.Duration) {
	if o, ok := s.observer.(PasswordObserver); ok {
		o.PasswordAuth(outcome, d)
	}
}
