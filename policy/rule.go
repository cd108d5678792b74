package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/hcl/v2"
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

// Rule is one rule block. A nil matcher slice means the attribute was
// absent and matches everything; Load never leaves a present one empty.
// Rules belong to an immutable Config: do not modify them.
type Rule struct {
	Name   string
	Action Action

	// Identity matchers; none of them matches an unauthenticated session.
	Principals []string // patterns "alice@EXAMPLE.TEST", "*@EXAMPLE.TEST", "svc-*@EXAMPLE.TEST", "*"
	Realms     []string
	Groups     []string // as written: group aliases and SIDs
	SIDs       []string // Groups resolved to SIDs, for matching

	Sources      []netip.Prefix
	Destinations []Destination
	Ports        []PortRange
	Commands     []socks5.Command

	// Protection lists the levels this rule accepts; Load defaults it to
	// integrity and confidentiality.
	Protection []encap.Level
	// NEC accepts the unwrapped (NEC) form of the protection-level message.
	NEC bool
	// AuthOnly answers a request for integrity or confidentiality with
	// clear (authentication only), as curl since 8.17 expects.
	AuthOnly bool

	MaxSessionsPerPrincipal int           // 0: no limit
	IdleTimeout             time.Duration // 0: Timeouts.Idle

	Range hcl.Range // the rule block's header, for messages
}

// DefaultProtection returns the levels a rule accepts when it does not say.
func DefaultProtection() []encap.Level {
	return []encap.Level{encap.LevelIntegrity, encap.LevelConfidentiality}
}

// hasRequestMatchers reports whether r looks at the SOCKS request, which is
// unknown while the protection level is negotiated.
func (r *Rule) hasRequestMatchers() bool {
	return r.Destinations != nil || r.Ports != nil || r.Commands != nil
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

func levelList(ls []encap.Level) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ", ")
}
