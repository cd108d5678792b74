package server

import (
	"net/netip"
	"sync"
)

// Admission happens in two steps, so that connections that never
// authenticate cannot take the slots of those that do:
//
//   - a connection is a handshake from accept until its client is
//     authenticated (or, for method 00, until the method is selected):
//     Settings.MaxHandshakes bounds them all, MaxHandshakesPerSource those
//     of one source; past either the connection gets "05 ff" at once;
//   - then it is a session, counted against Settings.MaxSessions; past it
//     an authenticated client gets the RFC 1961 §3 abort (01 ff), a
//     method 00 client "05 ff".
//
// Handshakes are bounded in time by the negotiation timeout, so a source
// holding its share of handshakes gains nothing by keeping them silent.

// handshakes counts the connections still in the handshake, in total and
// per source. The map holds one entry per source with a live handshake,
// so it is bounded by the handshakes themselves.
type handshakes struct {
	mu       sync.Mutex
	total    int
	bySource map[netip.Prefix]int
}

// sourceKey is the unit of the per-source limit: an IPv4 address, or the
// /64 of an IPv6 address (the usual allocation to one host or one site,
// which a client can change addresses within at will).
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64) // the zero Prefix for an invalid address: one key for all of those
	return p
}

// acquire counts a handshake from src, or returns why it may not start.
func (h *handshakes) acquire(src netip.Addr, total, perSource int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if total > 0 && h.total >= total {
		return "handshake limit reached"
	}
	k := sourceKey(src)
	if perSource > 0 && h.bySource[k] >= perSource {
		return "per-source handshake limit reached"
	}
	if h.bySource == nil {
		h.bySource = make(map[netip.Prefix]int)
	}
	h.total++
	h.bySource[k]++
	return ""
}

func (h *handshakes) release(src netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := sourceKey(src)
	h.total--
	if h.bySource[k]--; h.bySource[k] <= 0 {
		delete(h.bySource, k)
	}
}

// acquireSession counts a session past its handshake if fewer than limit
// are (limit 0: no bound).
func (s *Server) acquireSession(limit int) bool {
	n := s.sessionsN.Add(1)
	if limit > 0 && n > int64(limit) {
		s.sessionsN.Add(-1)
		return false
	}
	return true
}

func (s *Server) releaseSession() { s.sessionsN.Add(-1) }

// acquirePrincipal counts a session of principal p if it has fewer than
// limit; releasePrincipal undoes it. The map holds one entry per principal
// with a counted session: bounded by the sessions.
func (s *Server) acquirePrincipal(p string, limit int) bool {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	if s.principals[p] >= limit {
		return false
	}
	s.principals[p]++
	return true
}

func (s *Server) releasePrincipal(p string) {
	s.principalsMu.Lock()
	defer s.principalsMu.Unlock()
	if s.principals[p]--; s.principals[p] <= 0 {
		delete(s.principals, p)
	}
}
