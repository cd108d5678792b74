package server

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Observer receives events of the server that its audit records do not
// carry, for metrics. Its methods run on session goroutines and must not
// block. The server package imports no metrics library: the gateway
// implements Observer.
type Observer interface {
	// Handshake reports the end of a GSS-API context establishment (RFC
	// 1961 §3, the AP-REQ/AP-REP exchange): err is nil when the context
	// was accepted, else the acceptor's error (gssapi sentinels wrapped),
	// and d the time from the first token read to that end.
	Handshake(err error, d time.Duration)
	// PrincipalLimitRefused reports a request refused by its rule's
	// per-principal session limit (policy.Decision.MaxSessionsPerPrincipal).
	PrincipalLimitRefused()
}

// SessionInfo is a snapshot of one live connection, for an operator's
// live view. Fields not yet known are zero ("" before authentication or
// the request).
type SessionInfo struct {
	ID          string
	Principal   string
	Source      netip.AddrPort
	Destination string // as the client asked, host:port
	Level       string // "clear", "integrity", "confidentiality", or ""
	Command     string // "connect", "bind", "udp", or ""
	BytesUp     int64  // client → destination payload bytes so far
	BytesDown   int64  // destination → client payload bytes so far
	Age         time.Duration
}

// Sessions returns a snapshot of the connections being served, handshakes
// included, oldest first (by age, then ID). Each entry is copied from the
// session's record under its lock.
func (s *Server) Sessions() []SessionInfo {
	now := time.Now()
	s.mu.Lock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess.rec.info(now))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int {
		if a.Age != b.Age {
			if a.Age > b.Age {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// info is the record's live view at now.
func (r *record) info(now time.Time) SessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := &r.r
	return SessionInfo{
		ID: a.SessionID, Principal: a.Principal, Source: a.Source,
		Destination: a.Destination, Level: a.Level, Command: a.Command,
		BytesUp: r.up.Load(), BytesDown: r.down.Load(),
		Age: now.Sub(r.start),
	}
}

// observeHandshake reports a context establishment that started at start
// to the observer, if any.
func (s *Server) observeHandshake(start time.Time, err error) {
	if s.observer != nil {
		s.observer.Handshake(err, time.Since(start))
	}
}

// observeLimitRefusal reports a per-principal limit refusal to the
// observer, if any.
func (s *Server) observeLimitRefusal() {
	if s.observer != nil {
		s.observer.PrincipalLimitRefused()
	}
}
