package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Identity is who the client authenticated as, in the canonical form
// rules and per-principal limits compare. The zero Identity is an
// unauthenticated (no_auth) session. Build it with Engine.Identify (or
// NewIdentity) from what the acceptor established, so that one account
// has one Identity however the client spelled its name.
type Identity struct {
	// Principal is the canonical "name@REALM"; "" when unauthenticated.
	Principal string
	// Name and Realm are its parts; derived from Principal when empty.
	Name, Realm string
	// Presented is the client name as the ticket spells it
	// ("ALICE@EXAMPLE.TEST", "alice@corp.example@EXAMPLE.TEST"), for
	// the audit record; "" means as Principal.
	Presented string
	// CaseInsensitive makes principal patterns and realms compare
	// case-insensitively, as Active Directory compares account names.
	CaseInsensitive bool

	UserSID   string   // from the PAC, when the ticket has one
	GroupSIDs []string // from the PAC
	// GroupsKnown is true only when UserSID and GroupSIDs come from a
	// verified PAC. Unknown groups fail closed: a deny rule with groups
	// matches, an allow rule with groups does not (unless the client's
	// realm is declared to issue no PACs: Realm.NoPAC).
	GroupsKnown bool
	// Kind is what kind of principal the client is. Allow rules match
	// anonymous and service clients only when they opt in
	// (Rule.AllowAnonymous, Rule.AllowServiceClients), and then not
	// through principal wildcards.
	Kind ClientKind
}

// ClientKind is what kind of principal a client is, as the acceptor
// classified its ticket (gssapi.ClientKind: the server maps one onto the
// other).
type ClientKind uint8

// Client kinds. The zero value is a user, which is also what an
// unauthenticated session counts as.
const (
	ClientUser      ClientKind = iota
	ClientAnonymous            // an anonymous ticket (RFC 6112)
	ClientService              // a service principal: host/ws1, krbtgt/..., a service name type
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

// Authenticated reports whether id names a principal.
func (id Identity) Authenticated() bool { return id.Principal != "" || id.Name != "" }

func (id Identity) String() string {
	if !id.Authenticated() {
		return "unauthenticated client"
	}
	p, _, _ := id.parts()
	return p
}

// PresentedName is the name as the ticket spelled it: Presented, or the
// canonical principal when they are the same.
func (id Identity) PresentedName() string {
	if id.Presented != "" {
		return id.Presented
	}
	return id.String()
}

// parts returns "name@REALM", name and realm, filling in whichever of
// Principal and Name/Realm the caller left out.
func (id Identity) parts() (principal, name, realm string) {
	principal, name, realm = id.Principal, id.Name, id.Realm
	if principal == "" {
		if name != "" {
			principal = name + "@" + realm
		}
		return
	}
	if name == "" || realm == "" {
		if i := strings.LastIndexByte(principal, '@'); i >= 0 {
			if name == "" {
				name = principal[:i]
			}
			if realm == "" {
				realm = principal[i+1:]
			}
		} else if name == "" {
			name = principal
		}
	}
	return
}

// Realm holds the settings for clients of one Kerberos realm (the
// ticket's client realm). Realms without settings get the zero Realm's.
type Realm struct {
	// Name is the realm, like "EXAMPLE.TEST"; looked up exactly, then
	// ignoring case.
	Name string
	// NoPAC declares that the realm issues no PACs (an MIT or Heimdal
	// realm without Active Directory): its principals are in no group,
	// so rules with groups neither allow nor deny them. Without it, a
	// ticket without a verified PAC has unknown groups and group rules
	// fail closed (Identity.GroupsKnown).
	NoPAC bool
	// CaseInsensitiveNames compares the names of clients whose ticket
	// has no PAC case-insensitively. A verified PAC always does: it comes
	// from Active Directory (or FreeIPA), where account names are
	// case-insensitive and a ticket echoes the client's spelling.
	CaseInsensitiveNames bool
}

// Client is what the GSS-API acceptor established about a client, the
// input of Engine.Identify. Everything in it must come from the
// authenticated ticket: the client name and realm from its encrypted
// part, the PAC fields only from a PAC whose signatures verified.
type Client struct {
	// Name is the ticket's client name, its components joined by "/"
	// ("alice", "host/ws1.example.test"); an enterprise name
	// (NT-ENTERPRISE, RFC 6806 §5) keeps its "@" ("alice@corp.example").
	Name  string
	Realm string // the ticket's client realm
	// PAC reports a PAC whose signatures verified. Without one, the
	// fields below are ignored and the groups are unknown.
	PAC bool
	// Account is the account name the PAC gives: the UPN_DNS_INFO
	// sAMAccountName when present, else the logon information's
	// EffectiveName (MS-PAC §2.5, §2.10). "" when it gives none.
	Account   string
	UserSID   string
	GroupSIDs []string
	// Kind is what kind of principal the ticket's client is.
	Kind ClientKind
}

// ErrNoCanonicalName is returned by NewIdentity when the client's
// account cannot be told from its ticket: an enterprise name
// ("alice@corp.example") without a PAC naming the account, or a name
// that is empty or holds control characters or invalid UTF-8. The server refuses such a
// session: matching a spelling that is not the account's name would let
// it past rules written for the account.
var ErrNoCanonicalName = errors.New("policy: no canonical client name")

// NewIdentity returns the canonical Identity of c, by the settings of
// its realm:
//
//   - the name is the PAC's account name when the ticket has a verified
//     PAC that gives one, else the ticket's name; an enterprise name
//     without it is ErrNoCanonicalName;
//   - names are case-insensitive with a verified PAC, else when
//     realm.CaseInsensitiveNames; then the name is lower-cased and the
//     realm upper-cased (CanonicalPrincipal), so that ALICE, Alice and
//     alice are one principal for rules and per-principal limits;
//   - the SIDs are the PAC's, and GroupsKnown is c.PAC;
//   - the Kind is c.Kind.
//
// Presented keeps the ticket's spelling, for the audit record.
func NewIdentity(c Client, realm Realm) (Identity, error) {
	if c.Name == "" || c.Realm == "" || hasControl(c.Name) || hasControl(c.Realm) {
		return Identity{}, fmt.Errorf("%w: an empty client name or realm, or one with control characters or invalid UTF-8", ErrNoCanonicalName)
	}
	id := Identity{Presented: c.Name + "@" + c.Realm, Kind: c.Kind}
	name := c.Name
	if c.PAC {
		id.UserSID, id.GroupSIDs, id.GroupsKnown = c.UserSID, append([]string(nil), c.GroupSIDs...), true
		if c.Account != "" {
			if strings.Contains(c.Account, "@") || hasControl(c.Account) {
				return Identity{}, fmt.Errorf("%w: the PAC's account name is not a plain name", ErrNoCanonicalName)
			}
			name = c.Account
		}
	}
	if strings.Contains(name, "@") {
		return Identity{}, fmt.Errorf("%w: an enterprise name without a verified PAC naming the account", ErrNoCanonicalName)
	}
	id.CaseInsensitive = c.PAC || realm.CaseInsensitiveNames
	id.Principal = CanonicalPrincipal(name, c.Realm, id.CaseInsensitive)
	id.Principal, id.Name, id.Realm = id.parts()
	return id, nil
}

// CanonicalPrincipal returns "name@realm", with the name lower-cased and
// the realm upper-cased when caseInsensitive, as is.
func CanonicalPrincipal(name, realm string, caseInsensitive bool) string {
	if caseInsensitive {
		name, realm = strings.ToLower(name), strings.ToUpper(realm)
	}
	return name + "@" + realm
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar })
}

// realmTable looks realms up by name, exactly and then ignoring case.
type realmTable struct {
	list   []Realm
	exact  map[string]int
	folded map[string]int
}

func newRealmTable(realms []Realm) (realmTable, error) {
	t := realmTable{list: append([]Realm(nil), realms...), exact: map[string]int{}, folded: map[string]int{}}
	for i, r := range t.list {
		if r.Name == "" {
			return realmTable{}, errors.New("a realm without a name")
		}
		up := strings.ToUpper(r.Name)
		if _, dup := t.folded[up]; dup {
			return realmTable{}, fmt.Errorf("realm %q is listed twice", r.Name)
		}
		t.exact[r.Name], t.folded[up] = i, i
	}
	return t, nil
}

func (t *realmTable) get(name string) Realm {
	if i, ok := t.exact[name]; ok {
		return t.list[i]
	}
	if i, ok := t.folded[strings.ToUpper(name)]; ok {
		return t.list[i]
	}
	return Realm{Name: name}
}
