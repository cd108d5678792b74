package gssapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Who may authenticate. A ticket opened with the service key is the
// word of the service realm's KDC, but that KDC vouches for more than
// users of its own realm: users of realms it trusts (cross-realm), the
// anonymous principal (RFC 6112) and services holding keys. Accept
// narrows that to what the acceptor is configured to trust.
//
// Realms. The service's realm is the realm of the keytab entry whose key
// opened the ticket. A client of another realm, and every realm the ticket
// transited on its way (its transited field, RFC 4120 §3.3.3.2), must be
// the service's realm or one of AcceptorConfig.TrustedRealms; with none
// configured, only the service's own realm's clients are accepted. This
// does not rely on the TRANSITED-POLICY-CHECKED flag (RFC 4120 §2.1.2):
// the KDC sets it when the path obeyed its own capaths, which says nothing
// of the realms this gateway trusts, so the path is checked here either
// way and the flag is only reported (RealmTrust.PolicyChecked).
//
// Non-users. Anonymous tickets (the anonymous ticket flag, the
// WELLKNOWN/ANONYMOUS client or the WELLKNOWN:ANONYMOUS realm) are refused
// with ErrAnonymous unless AllowAnonymous; service clients with
// ErrNotAUser unless AllowServiceClients; krbtgt clients always.

// anonymousRealm is the realm of fully anonymous clients (RFC 6112 §3).
const anonymousRealm = "WELLKNOWN:ANONYMOUS"

// ticketFlagAnonymous is the anonymous ticket flag (RFC 6112 §3).
const ticketFlagAnonymous = 14

// ntWellknown and ntSrvHstDomain are name types of RFC 6111 and RFC 6112
// that gokrb5 lacks.
const (
	ntWellknown    = 11
	ntSrvHstDomain = 12
)

// Bounds of the transited field decoder.
const (
	maxTransitedBytes = 1024 // contents of the transited field
	maxTransitRealms  = 32   // realms it expands to
	maxRealmLen       = 255  // one realm name, expanded
)

// ClientKind is what kind of principal a ticket's client is.
type ClientKind uint8

// Client kinds.
const (
	// ClientUser: a name of one component (alice, or an enterprise name
	// alice@corp.example), of a user name type.
	ClientUser ClientKind = iota
	// ClientAnonymous: an anonymous ticket (RFC 6112).
	ClientAnonymous
	// ClientService: a service, not a user: a name of two or more
	// components (host/ws1.example.test, HTTP/web, and also MIT's
	// alice/admin instances), a service name type (NT-SRV-INST,
	// NT-SRV-HST, NT-SRV-XHST, NT-SRV-HST-DOMAIN), a krbtgt, or a
	// WELLKNOWN name other than ANONYMOUS.
	ClientService
)

func (k ClientKind) String() string {
	switch k {
	case ClientUser:
		return "user"
	case ClientAnonymous:
		return "anonymous"
	case ClientService:
		return "service"
	}
	return fmt.Sprintf("ClientKind(%d)", uint8(k))
}

// classifyClient tells users from anonymous and service clients by the
// ticket's encrypted part. The name type alone does not do: MIT's
// kinit -k host/x sends NT-PRINCIPAL.
func classifyClient(etp *messages.EncTicketPart) ClientKind {
	names := etp.CName.NameString
	if types.IsFlagSet(&etp.Flags, ticketFlagAnonymous) || etp.CRealm == anonymousRealm ||
		len(names) == 2 && names[0] == "WELLKNOWN" && names[1] == "ANONYMOUS" {
		return ClientAnonymous
	}
	switch etp.CName.NameType {
	case nametype.KRB_NT_SRV_INST, nametype.KRB_NT_SRV_HST, nametype.KRB_NT_SRV_XHST, ntSrvHstDomain, ntWellknown:
		return ClientService
	}
	if len(names) != 1 || isKrbtgt(names) || names[0] == "WELLKNOWN" {
		return ClientService
	}
	return ClientUser
}

// isKrbtgt reports whether a principal name is a ticket-granting
// service's: krbtgt, or krbtgt/REALM.
func isKrbtgt(names []string) bool { return len(names) > 0 && names[0] == "krbtgt" }

// RealmTrust is the realm path of an accepted ticket.
type RealmTrust struct {
	ServiceRealm string // the realm of the key that opened the ticket
	// ClientRealm is the ticket's client realm; WELLKNOWN:ANONYMOUS for a
	// fully anonymous client.
	ClientRealm string
	// Transited lists the realms between the client's and the service's,
	// decoded from the transited field (RFC 4120 §3.3.3.2); all trusted.
	Transited []string
	// PolicyChecked is the ticket's TRANSITED-POLICY-CHECKED flag: the
	// service realm's KDC checked the path against its own policy.
	// Accept does not depend on it.
	PolicyChecked bool
}

// CrossRealm reports whether the client is of another realm than the
// service, or came through other realms.
func (t RealmTrust) CrossRealm() bool {
	return t.ClientRealm != t.ServiceRealm || len(t.Transited) > 0
}

// ClientKind is what kind of principal the client is: ClientUser unless
// AcceptorConfig allowed anonymous or service clients.
func (c *Context) ClientKind() ClientKind { return c.kind }

// Trust is the realm path of the ticket (acceptor side). Every realm on it
// is trusted: Accept refuses the others. For a cross-realm client the PAC,
// if any (AD), was issued by the client's realm, which is therefore
// trusted; which SIDs that realm may assert is the KDCs' SID filtering.
// Zero for initiator contexts.
func (c *Context) Trust() RealmTrust {
	t := c.trust
	t.Transited = slices.Clone(t.Transited)
	return t
}

// clientPolicy is what AcceptorConfig says of clients, checked.
type clientPolicy struct {
	trusted      []string
	allowAnon    bool
	allowService bool
}

func newClientPolicy(cfg AcceptorConfig) (clientPolicy, error) {
	p := clientPolicy{allowAnon: cfg.AllowAnonymous, allowService: cfg.AllowServiceClients}
	for _, r := range cfg.TrustedRealms {
		if r == "" || r == anonymousRealm || strings.ContainsAny(r, "@*?/,\\ ") ||
			strings.ContainsFunc(r, func(c rune) bool { return c < 0x21 || c == 0x7f }) {
			return clientPolicy{}, fmt.Errorf("%w: %s is not a realm to trust", ErrBadName, quote(r))
		}
		p.trusted = append(p.trusted, r)
	}
	return p, nil
}

// trusts reports whether realm is serviceRealm or listed. Realms compare
// exactly: Kerberos realm names are case-sensitive.
func (p *clientPolicy) trusts(realm, serviceRealm string) bool {
	return realm == serviceRealm || slices.Contains(p.trusted, realm)
}

// checkClient runs once the ticket is open: the client must be of a kind
// the acceptor accepts, and its realm and transited path trusted.
func (s *acceptState) checkClient() error {
	p := &s.a.clients
	s.kind = classifyClient(&s.ticket)
	switch {
	case s.kind == ClientAnonymous && !p.allowAnon:
		return fmt.Errorf("%w: ticket of %s (RFC 6112); anonymous clients are not accepted", ErrAnonymous, quote(s.client.String()))
	case s.kind == ClientService && isKrbtgt(s.ticket.CName.NameString):
		return fmt.Errorf("%w: client %s is a ticket-granting service", ErrNotAUser, quote(s.client.String()))
	case s.kind == ClientService && !p.allowService:
		return fmt.Errorf("%w: client %s is a service principal; service clients are not accepted", ErrNotAUser, quote(s.client.String()))
	}
	t := RealmTrust{
		ServiceRealm:  s.service.Realm,
		ClientRealm:   s.ticket.CRealm,
		PolicyChecked: types.IsFlagSet(&s.ticket.Flags, flags.TransitedPolicyChecked),
	}
	fail := func(realm string, transited bool) error {
		return &RealmError{Realm: realm, Client: s.client.String(), Transited: transited}
	}
	// A fully anonymous client names no realm; its path still counts.
	if t.ClientRealm != anonymousRealm && !p.trusts(t.ClientRealm, t.ServiceRealm) {
		return fail(t.ClientRealm, false)
	}
	var why string
	if t.Transited, why = decodeTransited(s.ticket.Transited, t.ClientRealm, t.ServiceRealm); why != "" {
		return &RealmError{Client: s.client.String(), Reason: why}
	}
	for _, r := range t.Transited {
		if !p.trusts(r, t.ServiceRealm) {
			return fail(r, true)
		}
	}
	s.trust = t
	return nil
}

// trDomainX500Compress is the transited encoding of RFC 4120 §3.3.3.2.
const trDomainX500Compress = 1

// decodeTransited lists the realms of a transited field in the
// DOMAIN-X500-COMPRESS encoding (RFC 4120 §3.3.3.2): names separated by
// commas, '\' quoting the next character; a name ending in '.' is
// completed with the previous realm (MIT., after EDU, is MIT.EDU), one
// beginning with '/' is prefixed with it (/HP after /COM is /COM/HP), one
// beginning with " /" is taken whole; an empty name (or several in a row)
// stands for every realm between its neighbours on the domain hierarchy
// (the client's realm before the first name, the service's after the
// last), which are listed.
// why, when not empty, says why the field cannot be read: another
// encoding, X.500 names around an empty one, a field or expansion beyond
// the bounds.
func decodeTransited(te messages.TransitedEncoding, clientRealm, serviceRealm string) (realms []string, why string) {
	if len(te.Contents) == 0 {
		return nil, ""
	}
	if te.TRType != trDomainX500Compress {
		return nil, fmt.Sprintf("transited field of encoding type %d", te.TRType)
	}
	if len(te.Contents) > maxTransitedBytes {
		return nil, fmt.Sprintf("transited field of %d bytes (at most %d read)", len(te.Contents), maxTransitedBytes)
	}
	fields := splitTransited(string(te.Contents))
	var out []string
	prev := ""   // the last realm listed, which the next name may complete
	gap := false // an empty field waits for its right neighbour
	add := func(r string) string {
		if len(out) == maxTransitRealms {
			return fmt.Sprintf("transited field lists more than %d realms", maxTransitRealms)
		}
		out = append(out, r)
		return ""
	}
	// fill lists the realms between the last one listed (the client's
	// before the first) and to.
	fill := func(to string) string {
		from := prev
		if from == "" {
			from = clientRealm
		}
		between, why := realmsBetween(from, to)
		for i := 0; why == "" && i < len(between); i++ {
			why = add(between[i])
		}
		return why
	}
	for _, f := range fields {
		if f.name == "" {
			gap = true // empty names in a row are one gap: "," alone has two
			continue
		}
		name := f.name
		switch {
		case f.whole:
		case strings.HasSuffix(name, "."):
			name += prev
		case strings.HasPrefix(name, "/"):
			name = prev + name
		}
		if len(name) > maxRealmLen {
			return nil, fmt.Sprintf("transited realm of more than %d bytes", maxRealmLen)
		}
		if gap {
			if why := fill(name); why != "" {
				return nil, why
			}
			gap = false
		}
		if why := add(name); why != "" {
			return nil, why
		}
		prev = name
	}
	if gap {
		if why := fill(serviceRealm); why != "" {
			return nil, why
		}
	}
	return out, ""
}

type transitedField struct {
	name  string
	whole bool // written " /...": not to be prefixed
}

// splitTransited splits at unquoted commas and removes the quoting.
func splitTransited(s string) []transitedField {
	var out []transitedField
	var b strings.Builder
	flush := func() {
		f := transitedField{name: b.String()}
		if strings.HasPrefix(f.name, " /") {
			f.name, f.whole = f.name[1:], true
		}
		out = append(out, f)
		b.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == ',':
			flush()
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

// realmsBetween lists the domain-style realms strictly between a and b on
// the realm hierarchy: up from a to their closest common ancestor, then
// down to b (A.CORP.TEST to B.CORP.TEST passes CORP.TEST).
func realmsBetween(a, b string) (realms []string, why string) {
	if strings.HasPrefix(a, "/") || strings.HasPrefix(b, "/") || a == "" || b == "" {
		return nil, "transited field omits realms between X.500 or unnamed realms"
	}
	if len(a) > maxRealmLen || len(b) > maxRealmLen {
		return nil, fmt.Sprintf("transited field omits realms next to a realm of more than %d bytes", maxRealmLen)
	}
	la, lb := strings.Split(a, "."), strings.Split(b, ".")
	common := 0
	for common < len(la) && common < len(lb) && la[len(la)-1-common] == lb[len(lb)-1-common] {
		common++
	}
	if common == 0 {
		return nil, fmt.Sprintf("transited field omits realms between %s and %s, which share no parent", quote(a), quote(b))
	}
	var out []string
	for i := 1; i <= len(la)-common; i++ { // a's ancestors, then the common one
		out = append(out, strings.Join(la[i:], "."))
	}
	for i := len(lb) - common - 1; i >= 1; i-- { // b's ancestors below it
		out = append(out, strings.Join(lb[i:], "."))
	}
	// a or b may itself be the common ancestor: not between.
	return slices.DeleteFunc(out, func(r string) bool { return r == a || r == b }), ""
}
