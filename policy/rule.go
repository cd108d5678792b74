package policy

import (
	"fmt"
	"github.com/gssocks/gssocks/socks5"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Action is what a matching rule does.
type Action uint8

// Actions.
const (
	ActionAllow Action = iota
	ActionDeny
)

func (a Action) String() string {
	switch a {
	case ActionAllow:
		return "allow"
	case ActionDeny:
		return "deny"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Destination is one entry of a rule's destinations: a network, or a host
// name, or a "*." suffix pattern (Name "*.corp.example.test"). Names are
// lower case without a trailing dot.
type Destination struct {
	Prefix netip.Prefix // valid for a network
	Name   string       // set for a name or pattern
}

func (d Destination) String() string {
	if d.Name != "" {
		return d.Name
	}
	return d.Prefix.String()
}

// PortRange is an inclusive range of ports; Lo == Hi for a single port.
type PortRange struct{ Lo, Hi uint16 }

func (p PortRange) String() string {
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo))
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

// Contains reports whether port is in the range.
func (p PortRange) Contains(port uint16) bool { return p.Lo <= port && port <= p.Hi }

// Position is where a rule was written, for explaining decisions. Line
// and Column count from 1; the zero Position means unknown.
type Position struct {
	File         string
	Line, Column int
}

// String renders "file:line:col", the form editors jump to; "-" when
// unknown.
func (p Position) String() string {
	if p.Line == 0 {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Rule is one rule of the policy. A nil matcher slice is an absent matcher
// and matches everything; a present empty one matches nothing (the config
// package never builds one). NewEngine copies rules, so an Engine does not
// change when the caller's rules do.
type Rule struct {
	Name   string // unique within an Engine; appears in decisions and logs
	Action Action

	// Identity matchers; none of them matches an unauthenticated session.
	Principals []string // patterns "alice@EXAMPLE.TEST", "*@EXAMPLE.TEST", "svc-*@EXAMPLE.TEST", "*"
	Realms     []string
	Groups     []string // as written: group aliases and SIDs; shown by Explain
	SIDs       []string // Groups resolved to SIDs, for matching (compared case-insensitively)

	Sources      []netip.Prefix // client networks, matched as Sources.Contains does
	Destinations []Destination
	Ports        []PortRange
	Commands     []socks5.Command
	// Methods lists the front doors and authentication methods the rule
	// matches (Request.Method); nil matches every method, MethodUnknown
	// included, and a list never matches MethodUnknown (fail closed).
	Methods []Method

	// Protection lists the levels this rule accepts; nil means
	// DefaultProtection.
	Protection []Level
	// NEC accepts the unwrapped (NEC) form of the protection-level message.
	NEC bool
	// AuthOnly answers a request for integrity or confidentiality with
	// clear (authentication only), as curl since 8.17 expects: always
	// when the client cannot protect a stream (its GSS context lacks the
	// sequence flag, LevelRequest.CanProtectStream), else only when no
	// matching rule accepts the requested level. A client with the flag
	// (Dante's socksify) thus gets its level from the same rule.
	AuthOnly bool

	// AllowAnonymous and AllowServiceClients let an allow rule match
	// anonymous and service clients (Identity.Kind). Without them an
	// allow rule matches users only; with them, principal patterns with
	// wildcards still match users only, so such clients are named
	// exactly or matched by other matchers (realms, sources). Deny rules
	// match every kind, wildcards included: a deny catches more, never
	// less.
	AllowAnonymous      bool
	AllowServiceClients bool

	MaxSessionsPerPrincipal int           // 0: no limit
	IdleTimeout             time.Duration // 0: the server's idle timeout
	// OutliveTicket is how long a session this rule allows may run past
	// the end time of the client's Kerberos ticket; 0 (the default) ends
	// it then, as MIT's GSS-API ends a context (GSS_S_CONTEXT_EXPIRED).
	OutliveTicket time.Duration

	Pos Position // the rule block's header, for explain and messages
}

// DefaultProtection returns the levels a rule accepts when it does not say.
func DefaultProtection() []Level {
	return []Level{LevelIntegrity, LevelConfidentiality}
}

// hasRequestMatchers reports whether r looks at the SOCKS request, which is
// unknown while the protection level is negotiated.
func (r *Rule) hasRequestMatchers() bool {
	return r.Destinations != nil || r.Ports != nil || r.Commands != nil
}

// clone copies r deeply enough that the caller's slices are not shared.
func (r Rule) clone() Rule {
	r.Principals = cloneNil(r.Principals)
	r.Realms = cloneNil(r.Realms)
	r.Groups = cloneNil(r.Groups)
	r.SIDs = cloneNil(r.SIDs)
	r.Sources = cloneNil(r.Sources)
	r.Destinations = cloneNil(r.Destinations)
	r.Ports = cloneNil(r.Ports)
	r.Commands = cloneNil(r.Commands)
	r.Methods = cloneNil(r.Methods)
	r.Protection = cloneNil(r.Protection)
	return r
}

// cloneNil is slices.Clone keeping nil and empty apart, since they mean
// "absent" and "matches nothing".
func cloneNil[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

func joinStrings[T fmt.Stringer](xs []T) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x.String())
	}
	b.WriteByte(']')
	return b.String()
}

func levelList(ls []Level) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ", ")
}
