package server

import (
	"fmt"
	"sync"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/policy"
)

// A session rests on the client's Kerberos ticket: the KDC vouched for the
// client until the ticket's end time, and MIT's GSS-API stops a context
// then (GSS_S_CONTEXT_EXPIRED, RFC 2743 §1.2.1.3). So a session ends at
// that time (relay, BIND, UDP association alike) unless the rule that
// allowed it says it may outlive the ticket (policy.Decision.OutliveTicket,
// rule attribute outlive_ticket). A timer ends it, so that an idle session
// ends on time and nothing polls.

// expiry is the timer that ends a session at the end of its lifetime.
type expiry struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool // the session ended: no new timer
}

// lifetimeEnd is when the session may run until under decision d: the
// ticket's end time plus the rule's OutliveTicket. ok is false without a
// ticket (method 00) or without a known end time.
func (s *session) lifetimeEnd(d policy.Decision) (end time.Time, ok bool) {
	if s.hs.ctx == nil {
		return time.Time{}, false
	}
	exp := s.hs.ctx.Expiry()
	if exp.IsZero() {
		return time.Time{}, false
	}
	return exp.Add(d.OutliveTicket), true
}

// limitLifetime schedules the end of the session by decision d, replacing
// an earlier decision's (a BIND's inbound peer is decided after its
// listener). It returns false, recording the end, when that time has
// passed already.
func (s *session) limitLifetime(d policy.Decision) bool {
	end, ok := s.lifetimeEnd(d)
	if !ok {
		return true
	}
	if !time.Now().Before(end) {
		s.rec.setEnd(audit.EndTicketExpired, s.expiredDetail(d))
		s.log.Info("refused: the client's ticket has ended", "rule", logStr(d.Rule), "ticket_end", s.hs.ctx.Expiry().UTC().Format(time.RFC3339))
		return false
	}
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	if s.exp.stopped {
		return true
	}
	if s.exp.timer != nil {
		s.exp.timer.Stop()
	}
	// The logger as of now: an HTTP proxy connection moves s.log to each
	// request's session id on its own goroutine.
	log := s.log
	s.exp.timer = time.AfterFunc(time.Until(end), func() {
		s.rec.setEnd(audit.EndTicketExpired, s.expiredDetail(d))
		log.Info("session ended: the client's ticket has ended", "rule", logStr(d.Rule), "outlive_ticket", d.OutliveTicket.String())
		s.abort()
	})
	return true
}

// stopExpiry cancels the timer when the session ends (a lifecycle closer).
func (s *session) stopExpiry() error {
	s.exp.mu.Lock()
	defer s.exp.mu.Unlock()
	s.exp.stopped = true
	if s.exp.timer != nil {
		s.exp.timer.Stop()
	}
	return nil
}

func (s *session) expiredDetail(d policy.Decision) string {
	detail := fmt.Sprintf("ticket ended %s", s.hs.ctx.Expiry().UTC().Format(time.RFC3339))
	if err := s.hs.ctx.CheckExpiry(time.Now()); err != nil {
		detail = err.Error()
	}
	if d.OutliveTicket > 0 {
		detail += fmt.Sprintf("; outlive_ticket %s of rule %q elapsed", d.OutliveTicket, d.Rule)
	}
	return detail
}
