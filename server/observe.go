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
	// Handshake reports the end of a GSS-API context establishment of a
	// SOCKS5 session (RFC 1961 §3, the AP-REQ/AP-REP exchange): err is nil
	// when the context was accepted, else the acceptor's error (gssapi
	// sentinels wrapped), and d the time from the first token read to
	// that end. An HTTP proxy's Negotiate handshake goes to
	// NegotiateObserver when the observer implements it, else here.
	Handshake(err error, d time.Duration)
	// PrincipalLimitRefused reports a request refused by its rule's
	// per-principal session limit (policy.Decision.MaxSessionsPerPrincipal).
	PrincipalLimitRefused()
	// UDPRelayed reports one datagram of a UDP association (RFC 1928 §7)
	// relayed in direction dir. It runs once per datagram: it must be
	// cheap (an atomic add).
	UDPRelayed(dir UDPDirection)
	// UDPDropped reports one datagram of a UDP association dropped for
	// reason, either way.
	UDPDropped(reason UDPDropReason)
}

// UDPDirection is the way a datagram of a UDP association went.
type UDPDirection uint8

const (
	// UDPUp is client → destination: the client's datagram, its
	// RFC 1928 §7 header (and RFC 1961 wrap token) removed, sent on.
	UDPUp UDPDirection = iota
	// UDPDown is destination → client: a reply, with the header naming
	// its source (and sealed at the association's level).
	UDPDown
)

// String is the direction's metric label: "up" or "down" (as the byte
// counters of sessions name them).
func (d UDPDirection) String() string {
	if d == UDPUp {
		return "up"
	}
	return "down"
}

// UDPDropReason is why a datagram of a UDP association was dropped: a
// closed set, so that a metric labelled with it stays bounded.
type UDPDropReason uint8

const (
	// UDPDropWrongSource: a datagram reached the relay from another IP
	// than the client's TCP connection, or another port than the one the
	// request named or the first datagram came from.
	UDPDropWrongSource UDPDropReason = iota
	// UDPDropUnwrap: the client's datagram is not a valid RFC 1961 §5
	// wrap token of the association's context (bad token, checksum,
	// sequence).
	UDPDropUnwrap
	// UDPDropFragment: FRAG is not X'00'; fragments are not reassembled
	// (RFC 1928 §7 makes reassembly optional).
	UDPDropFragment
	// UDPDropMalformed: the RFC 1928 §7 header does not parse (RSV not
	// zero, unknown ATYP, a refused name, truncated).
	UDPDropMalformed
	// UDPDropResolve: the destination name did not resolve.
	UDPDropResolve
	// UDPDropPolicyDenied: policy denies the destination.
	UDPDropPolicyDenied
	// UDPDropPrincipalLimit: the destination's rule limits sessions per
	// principal and the principal has its limit's worth.
	UDPDropPrincipalLimit
	// UDPDropTicketExpired: the client's ticket has ended (the rule's
	// ticket lifetime check).
	UDPDropTicketExpired
	// UDPDropUnsolicited: a reply from a host the client did not send to
	// (or no longer remembered, see maxUDPPeers).
	UDPDropUnsolicited
	// UDPDropEncapsulate: a reply could not be given its header or
	// sealed into a wrap token.
	UDPDropEncapsulate
	// UDPDropOversize: the datagram to send exceeds the largest UDP
	// payload of the address family (65507 bytes over IPv4, 65527 over
	// IPv6), the header and wrap token of a reply included.
	UDPDropOversize
	// UDPDropSendError: sending failed (either way).
	UDPDropSendError
	// UDPDropReadError: reading a relay socket failed, other than by its
	// close.
	UDPDropReadError

	numUDPDropReasons // keep last
)

var udpDropReasonNames = [numUDPDropReasons]string{
	UDPDropWrongSource:    "wrong_source",
	UDPDropUnwrap:         "unwrap",
	UDPDropFragment:       "fragment",
	UDPDropMalformed:      "malformed_header",
	UDPDropResolve:        "resolve",
	UDPDropPolicyDenied:   "policy_denied",
	UDPDropPrincipalLimit: "principal_limit",
	UDPDropTicketExpired:  "ticket_expired",
	UDPDropUnsolicited:    "unsolicited",
	UDPDropEncapsulate:    "encapsulate",
	UDPDropOversize:       "oversize",
	UDPDropSendError:      "send_error",
	UDPDropReadError:      "read_error",
}

// String is the reason's metric label (snake_case), "unknown" outside the
// set.
func (r UDPDropReason) String() string {
	if r < numUDPDropReasons {
		return udpDropReasonNames[r]
	}
	return "unknown"
}

// UDPDropReasons returns every reason, in order, for an observer to
// create its series up front.
func UDPDropReasons() []UDPDropReason {
	out := make([]UDPDropReason, numUDPDropReasons)
	for i := range out {
		out[i] = UDPDropReason(i)
	}
	return out
}

// SessionInfo is a snapshot of one live connection, for an operator's
// live view. Fields not yet known are zero ("" before authentication or
// the request).
type SessionInfo struct {
	ID          string
	Principal   string
	Method      string // the front door (policy.Method): "gssapi", "password", "negotiate", "none", "socks4", or ""
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
		ID: a.SessionID, Principal: a.Principal, Method: a.Method, Source: a.Source,
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

// NegotiateObserver is implemented by an Observer that counts the HTTP
// proxy's Negotiate handshakes (RFC 4559) apart from the SOCKS5 GSS-API
// ones (optional: the server checks for it).
type NegotiateObserver interface {
	// NegotiateHandshake reports the end of one Negotiate authentication
	// of an HTTP proxy connection: err is nil when the token was accepted
	// and its client identified, else the acceptor's error (gssapi
	// sentinels wrapped; credentials that are not base64 wrap
	// gssapi.ErrDefectiveToken), the identity's
	// (policy.ErrNoCanonicalName) or a refusal of a second principal on
	// the connection; d is the time the verification took.
	NegotiateHandshake(err error, d time.Duration)
}

// observeNegotiate reports a Negotiate handshake that started at start
// to the observer: NegotiateHandshake when it has it, else Handshake.
func (s *Server) observeNegotiate(start time.Time, err error) {
	switch o := s.observer.(type) {
	case nil:
	case NegotiateObserver:
		o.NegotiateHandshake(err, time.Since(start))
	default:
		o.Handshake(err, time.Since(start))
	}
}

// observeLimitRefusal reports a per-principal limit refusal to the
// observer, if any.
func (s *Server) observeLimitRefusal() {
	if s.observer != nil {
		s.observer.PrincipalLimitRefused()
	}
}

// observeUDPRelayed reports a relayed datagram to the observer, if any.
func (s *Server) observeUDPRelayed(dir UDPDirection) {
	if s.observer != nil {
		s.observer.UDPRelayed(dir)
	}
}

// observeUDPDropped reports a dropped datagram to the observer, if any.
func (s *Server) observeUDPDropped(reason UDPDropReason) {
	if s.observer != nil {
		s.observer.UDPDropped(reason)
	}
}
