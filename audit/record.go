// Package audit defines the gateway's audit record, one per session, and the
// sinks that write it.
//
// A Record is a plain value: the server fills it as a session goes and hands
// it to a Sink when the session ends, whatever the operational log level is.
// Tests look at Records (through the server's OnSessionEnd hook) instead of
// log text. The field names of the JSON and text forms are stable snake_case
// names that SIEM pipelines may rely on; this package's README.md documents
// the schema.
//
// The package knows nothing of SOCKS, GSS-API or policy: every field is a
// plain string, number or address that the server filled in.
package audit

import (
	"encoding/json"
	"net/netip"
	"time"
)

// MaxGroupSIDs bounds the group SIDs a record carries. An AD token can hold
// hundreds of SIDs; the record keeps the first MaxGroupSIDs (in PAC order)
// and counts the rest in GroupSIDsOmitted.
const MaxGroupSIDs = 64

// EndReason says why a session ended. The values are stable words; Detail
// in the Record carries the specific error text.
type EndReason string

// End reasons.
const (
	// EndCompleted: the relay ran and one side closed normally (or the
	// association's control connection closed).
	EndCompleted EndReason = "completed"
	// EndRefused: refused before authentication (no acceptable method, a
	// session limit, a bad greeting).
	EndRefused EndReason = "refused"
	// EndAuthFailed: the GSS-API context could not be established.
	EndAuthFailed EndReason = "auth_failed"
	// EndNegotiationFailed: the protection level could not be agreed.
	EndNegotiationFailed EndReason = "negotiation_failed"
	// EndBadRequest: the SOCKS request was malformed or unreadable.
	EndBadRequest EndReason = "bad_request"
	// EndDenied: a rule (or the default deny, or a limit) refused the
	// request; Reply is 02.
	EndDenied EndReason = "denied"
	// EndDialFailed: the destination could not be resolved or reached.
	EndDialFailed EndReason = "dial_failed"
	// EndIdleTimeout: no data either way for the idle timeout.
	EndIdleTimeout EndReason = "idle_timeout"
	// EndTicketExpired: the client's Kerberos ticket reached its end time.
	EndTicketExpired EndReason = "ticket_expired"
	// EndShutdown: the gateway cut the session at its shutdown deadline.
	EndShutdown EndReason = "shutdown"
	// EndError: a network or protocol error ended an established session
	// (reset, bad token, write failure), or an internal error.
	EndError EndReason = "error"
)

// Record is the audit record of one session. The zero value of a field
// means "did not happen" (no command read, nothing dialled); the JSON form
// omits such fields except the counters, durations and level.
type Record struct {
	// Time is when the session ended (UTC, written with milliseconds).
	Time time.Time
	// SessionID is unique across restarts and nodes (time-ordered prefix
	// plus random bits); the same id appears in the operational log lines
	// of the session.
	SessionID string
	// Source is the client's address as the gateway sees it (after a
	// trusted PROXY header, when one is used).
	Source netip.AddrPort

	// Principal is the client's canonical principal name (name@REALM);
	// PresentedPrincipal is the spelling the ticket carried, set only when
	// it differs. Realm is the client's realm.
	Principal          string
	PresentedPrincipal string
	Realm              string
	// UserSID and GroupSIDs come from a verified PAC (AD realms).
	UserSID          string
	GroupSIDs        []string
	GroupSIDsOmitted int
	// Service is the service principal the ticket was for.
	Service string

	// Method is the session's front door and authentication, as
	// policy.Method names it: "gssapi" (SOCKS5, RFC 1961), "password"
	// (SOCKS5, RFC 1929), "negotiate" (HTTP proxy, RFC 4559), "none"
	// (SOCKS5 method 00 from a no_auth source) or "socks4" (SOCKS4/4a);
	// "" when no method was selected.
	Method string
	// SOCKS4UserID is the USERID a SOCKS4 client sent: what it claims,
	// never an identity (Principal stays empty).
	SOCKS4UserID string
	// Level is the negotiated protection level: "clear", "integrity",
	// "confidentiality", or "none" when no level was negotiated.
	Level string
	// Enctype is the session key's enctype name.
	Enctype string
	// NEC is true when the level message used the NEC (unwrapped) form.
	NEC bool

	// Command is the SOCKS command ("connect", "bind", "udp").
	Command string
	// Destination is the destination as the client asked (host:port or
	// address:port); Dialed the address the gateway connected to (CONNECT)
	// or accepted from (BIND); Outbound the gateway's local address:port
	// towards it.
	Destination string
	Dialed      netip.AddrPort
	Outbound    netip.AddrPort

	// Rule is the rule that decided, "(default deny)", or "".
	Rule string
	// Reply is the SOCKS reply code sent (REP field, RFC 1928 §6; for
	// SOCKS4 the CD field, 90 granted or 91 rejected); Replied says
	// whether one was sent at all. ReplyText is its meaning.
	Reply     uint8
	Replied   bool
	ReplyText string

	// BytesUp counts payload bytes from the client to the destination,
	// BytesDown the other way (plaintext, not token bytes).
	BytesUp, BytesDown int64
	// Duration is the session's lifetime.
	Duration time.Duration

	// EndReason says why the session ended; Detail gives the specific
	// cause (an error text, the refusal's reason).
	EndReason EndReason
	Detail    string
}

// SetGroupSIDs stores sids, keeping at most MaxGroupSIDs.
func (r *Record) SetGroupSIDs(sids []string) {
	if len(sids) > MaxGroupSIDs {
		r.GroupSIDs = append([]string(nil), sids[:MaxGroupSIDs]...)
		r.GroupSIDsOmitted = len(sids) - MaxGroupSIDs
		return
	}
	r.GroupSIDs = append([]string(nil), sids...)
	r.GroupSIDsOmitted = 0
}

// TimeFormat is the layout of the record's time: RFC 3339, UTC, with
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Fields returns the record as alternating snake_case keys and values, in
// a fixed order, for a structured logger (hclog). Empty optional fields are
// left out; level, the byte counters and the duration are always present.
func (r *Record) Fields() []any {
	f := make([]any, 0, 64)
	add := func(k string, v any) { f = append(f, k, v) }
	str := func(k, v string) {
		if v != "" {
			add(k, v)
		}
	}
	ap := func(k string, v netip.AddrPort) {
		if v.IsValid() {
			add(k, v.String())
		}
	}
	add("time", r.Time.UTC().Format(TimeFormat))
	str("session_id", r.SessionID)
	ap("source", r.Source)
	str("principal", r.Principal)
	str("principal_presented", r.PresentedPrincipal)
	str("realm", r.Realm)
	str("user_sid", r.UserSID)
	if len(r.GroupSIDs) > 0 {
		add("group_sids", r.GroupSIDs)
	}
	if r.GroupSIDsOmitted > 0 {
		add("group_sids_omitted", r.GroupSIDsOmitted)
	}
	str("service", r.Service)
	str("method", r.Method)
	str("socks4_userid", r.SOCKS4UserID)
	level := r.Level
	if level == "" {
		level = "none"
	}
	add("level", level)
	str("enctype", r.Enctype)
	if r.NEC {
		add("nec", true)
	}
	str("command", r.Command)
	str("destination", r.Destination)
	ap("dialed", r.Dialed)
	ap("outbound", r.Outbound)
	str("rule", r.Rule)
	if r.Replied {
		add("reply", int(r.Reply))
		str("reply_text", r.ReplyText)
	}
	add("bytes_up", r.BytesUp)
	add("bytes_down", r.BytesDown)
	add("duration_ms", r.Duration.Milliseconds())
	str("end_reason", string(r.EndReason))
	str("detail", r.Detail)
	return f
}

// MarshalJSON writes the record as one JSON object with the keys of
// Fields.
func (r *Record) MarshalJSON() ([]byte, error) {
	f := r.Fields()
	// Keys in Fields' order: build the object by hand around
	// json-encoded values so that the order stays stable for readers.
	out := make([]byte, 0, 512)
	out = append(out, '{')
	for i := 0; i < len(f); i += 2 {
		if i > 0 {
			out = append(out, ',')
		}
		k, err := json.Marshal(f[i])
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}
