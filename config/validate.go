package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/gssapi"
)

// The plain validators: checks of one string, without HCL, whose callers
// turn a complaint into a diagnostic.

// checkServicePrincipal returns what is wrong with a service principal
// name, or "". The cases it words for an operator come first; what they
// let through must also parse with gssapi.ParsePrincipal, the acceptor's
// parser, so that a name this accepts is one the acceptor takes.
func checkServicePrincipal(s string) string {
	name, realm, hasRealm := strings.Cut(s, "@")
	switch {
	case s == "":
		return "is empty."
	case strings.ContainsAny(s, " \t\n"):
		return "contains white space."
	case hasRealm && (realm == "" || strings.Contains(realm, "@")):
		return `has an empty or second "@"; write "service/host" or "service/host@REALM".`
	case slices.Contains(strings.Split(name, "/"), ""):
		return `has an empty component; write "service/host" or "service/host@REALM".`
	case hasGlob(s):
		return "is a pattern; service principals are literal names."
	}
	if _, err := gssapi.ParsePrincipal(s); err != nil {
		return fmt.Sprintf("is not a principal name (%v).", err)
	}
	return ""
}

func ipVersion(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// validHostname accepts LDH names with underscores (as found in SRV-style
// and Active Directory names), without empty labels.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// looksLikeSID reports whether s is meant as a SID.
func looksLikeSID(s string) bool { return len(s) >= 2 && (s[0] == 'S' || s[0] == 's') && s[1] == '-' }

// parseSID checks the string form of a SID (MS-DTYP §2.4.2.1),
// S-1-<authority>-<subauthority>..., and returns it with an upper-case S,
// or what is wrong.
func parseSID(s string) (string, string) {
	parts := strings.Split(s, "-")
	switch {
	case !looksLikeSID(s):
		return "", `a SID starts with "S-"`
	case len(parts) < 3:
		return "", "a SID has a revision and an identifier authority, like S-1-5-32-544"
	case parts[1] != "1":
		return "", "the revision must be 1"
	case len(parts) > 3+15:
		return "", "a SID has at most 15 subauthorities"
	}
	auth := parts[2]
	var err error
	if strings.HasPrefix(auth, "0x") || strings.HasPrefix(auth, "0X") {
		_, err = strconv.ParseUint(auth[2:], 16, 48)
	} else {
		_, err = strconv.ParseUint(auth, 10, 48)
	}
	if err != nil {
		return "", fmt.Sprintf("the identifier authority %q is not a number", auth)
	}
	for _, sub := range parts[3:] {
		if _, err := strconv.ParseUint(sub, 10, 32); err != nil {
			return "", fmt.Sprintf("the subauthority %q is not a 32-bit number", sub)
		}
	}
	return "S" + s[1:], ""
}

// hasGlob reports whether s holds the wildcards of policy's principal
// patterns.
func hasGlob(s string) bool { return strings.ContainsAny(s, "*?") }
