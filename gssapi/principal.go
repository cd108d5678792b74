package gssapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/types"
)

// Principal is a Kerberos principal name with its realm (RFC 4120 §6.2).
// It is comparable; the zero value names nothing.
type Principal struct {
	Name  string // components joined with "/", e.g. "alice" or "rcmd/localhost"
	Realm string // "" in a pattern: any realm
}

// String formats the principal as "name@REALM", or "name" when the realm is
// empty (a pattern). Components are not escaped: a name from the wire may
// hold any byte, so quote it (%q) before it goes into a text log.
func (p Principal) String() string {
	if p.Realm == "" {
		return p.Name
	}
	return p.Name + "@" + p.Realm
}

// Components returns the name's components ("rcmd", "localhost").
func (p Principal) Components() []string { return strings.Split(p.Name, "/") }

// ParsePrincipal parses "name[/instance...][@REALM]" as written in
// configuration and on the command line; without a realm the result is a
// pattern matching any realm (see MatchPrincipal). Empty components,
// several '@' and control characters are refused with ErrBadName.
// Backslash escapes (krb5_parse_name) are not interpreted.
func ParsePrincipal(s string) (Principal, error) {
	name, realm, _ := strings.Cut(s, "@")
	switch {
	case name == "":
		return Principal{}, fmt.Errorf("%w: %s has no name", ErrBadName, quote(s))
	case strings.Contains(realm, "@"):
		return Principal{}, fmt.Errorf("%w: %s has more than one '@'", ErrBadName, quote(s))
	case slices.Contains(strings.Split(name, "/"), ""):
		return Principal{}, fmt.Errorf("%w: %s has an empty component", ErrBadName, quote(s))
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return Principal{}, fmt.Errorf("%w: %s holds a control character", ErrBadName, quote(s))
	}
	return Principal{Name: name, Realm: realm}, nil
}

// Matches reports whether p, read as a pattern, matches q: the names are
// equal (case-sensitive, as krb5_principal_compare) and the realms are
// equal or p's is empty.
func (p Principal) Matches(q Principal) bool {
	return p.Name == q.Name && (p.Realm == "" || p.Realm == q.Realm)
}

// MatchPrincipal reports whether p matches one of the patterns. It is the
// acceptor's check of a service principal against its configured list;
// with no patterns every principal matches (the acceptor then accepts any
// principal with a key in its keytab).
func MatchPrincipal(patterns []Principal, p Principal) bool {
	if len(patterns) == 0 {
		return true
	}
	return slices.ContainsFunc(patterns, func(pat Principal) bool { return pat.Matches(p) })
}

func principalOf(pn types.PrincipalName, realm string) Principal {
	return Principal{Name: strings.Join(pn.NameString, "/"), Realm: realm}
}
