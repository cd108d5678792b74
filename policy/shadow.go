package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// Shadow is a rule that can never match: every request it matches is
// matched by an earlier rule, and the first matching rule decides. Rule and
// By index the slice given to Shadows.
type Shadow struct {
	Rule, By int
}

// Shadows finds the rules that can never match, each with the first
// earlier rule that shadows it. The analysis is conservative: it compares
// matcher by matcher (absent, identical, "*@R" over "x@R", network
// containment, …), so it never reports wrongly but can miss a shadow that
// only a combination of rules causes. Protection is not compared: a
// shadowed rule is unreachable whatever levels either accepts.
func Shadows(rules []Rule) []Shadow {
	var out []Shadow
	var live kinds
	for i := range rules {
		if rules[i].Action == ActionAllow {
			live.anon = live.anon || rules[i].AllowAnonymous
			live.svc = live.svc || rules[i].AllowServiceClients
		}
	}
	for j := range rules {
		for i := range rules[:j] {
			if coversLive(&rules[i], &rules[j], live) {
				out = append(out, Shadow{Rule: j, By: i})
				break
			}
		}
	}
	return out
}

// kinds says which kinds of non-user clients a judgement is about.
type kinds struct{ anon, svc bool }

// covers reports whether every request of a user that rule b matches is
// matched by rule a.
func covers(a, b *Rule) bool { return coversLive(a, b, kinds{}) }

// coversLive is covers for requests of users and of the kinds live. Only
// the kinds that some allow rule admits matter: a client of another kind
// is denied whichever rule it meets first.
func coversLive(a, b *Rule, live kinds) bool {
	return coversKinds(a, b, live) &&
		coversPrincipals(a.Principals, b.Principals) &&
		coversRealms(a.Realms, b) &&
		coversGroups(a, b) &&
		coversNets(a.Sources, b.Sources) &&
		coversSubset(a.Commands, b.Commands) &&
		coversSubset(a.Methods, b.Methods) &&
		coversPorts(a.Ports, b.Ports) &&
		coversDestinations(a, b)
}

// coversKinds: a must admit every live kind of client b admits (deny
// rules admit all; allow rules users and what they opt in to). Where b
// may match anonymous or service clients, an allow rule a with principals
// is not counted as covering it: its wildcards do not match such clients.
func coversKinds(a, b *Rule, live kinds) bool {
	admits := func(r *Rule) (anon, svc bool) {
		if r.Action == ActionDeny {
			return live.anon, live.svc
		}
		return r.AllowAnonymous && live.anon, r.AllowServiceClients && live.svc
	}
	aAnon, aSvc := admits(a)
	bAnon, bSvc := admits(b)
	if bAnon && !aAnon || bSvc && !aSvc {
		return false
	}
	return !(bAnon || bSvc) || a.Action == ActionDeny || a.Principals == nil
}

// coversSubset: nil matches all; otherwise b's values must all be in a.
func coversSubset[T comparable](a, b []T) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// coversGroups is coversSubset on SIDs, except that a deny rule b with
// groups also matches clients whose groups are unknown, which an allow
// rule a with groups does not.
func coversGroups(a, b *Rule) bool {
	if a.SIDs != nil && a.Action == ActionAllow && b.Action == ActionDeny {
		return false
	}
	return coversSubset(a.SIDs, b.SIDs)
}

func coversPrincipals(a, b []string) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, pb := range b {
		if !slices.ContainsFunc(a, func(pa string) bool { return patternCovers(pa, pb) }) {
			return false
		}
	}
	return true
}

// patternCovers reports whether principal pattern a matches everything
// pattern b does, judged on whole parts: "*", identical, or a "*" name or
// realm part against anything.
func patternCovers(a, b string) bool {
	if a == b || a == "*" {
		return true
	}
	an, ar, _ := strings.Cut(a, "@")
	bn, br, ok := strings.Cut(b, "@")
	if !ok {
		return false
	}
	return (an == "*" || an == bn) && (ar == "*" || ar == br)
}

// coversRealms also counts b's principal patterns: "x@R" lies in realm R.
func coversRealms(a []string, b *Rule) bool {
	if a == nil {
		return true
	}
	if b.Realms != nil {
		return coversSubset(a, b.Realms)
	}
	if b.Principals == nil {
		return false
	}
	for _, p := range b.Principals {
		_, realm, ok := strings.Cut(p, "@")
		if !ok || hasGlob(realm) || !slices.Contains(a, realm) {
			return false
		}
	}
	return true
}

func coversNets(a, b []netip.Prefix) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, pb := range b {
		if !slices.ContainsFunc(a, func(pa netip.Prefix) bool { return prefixCovers(pa, pb) }) {
			return false
		}
	}
	return true
}

func prefixCovers(a, b netip.Prefix) bool { return a.Bits() <= b.Bits() && a.Contains(b.Addr()) }

func coversPorts(a, b []PortRange) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, pb := range b {
		if !slices.ContainsFunc(a, func(pa PortRange) bool { return pa.Lo <= pb.Lo && pb.Hi <= pa.Hi }) {
			return false
		}
	}
	return true
}

// coversDestinations follows matchDestination: names against names, and
// networks against networks, where a deny rule b (any address inside)
// is only covered by a deny rule a (an allow a needs every address).
func coversDestinations(a, b *Rule) bool {
	if a.Destinations == nil {
		return true
	}
	if b.Destinations == nil {
		return false
	}
	for _, db := range b.Destinations {
		ok := false
		for _, da := range a.Destinations {
			if db.Name != "" {
				ok = da.Name != "" && nameCovers(da.Name, db.Name)
			} else {
				ok = da.Name == "" && (b.Action == ActionAllow || a.Action == ActionDeny) && prefixCovers(da.Prefix, db.Prefix)
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nameCovers reports whether destination name pattern a matches every name
// b matches.
func nameCovers(a, b string) bool {
	if a == b {
		return true
	}
	suffix, ok := strings.CutPrefix(a, "*")
	if !ok {
		return false
	}
	// suffix is ".corp.example"; b may be "x.corp.example" or
	// "*.y.corp.example" (both strictly below it).
	return len(b) > len(suffix) && strings.HasSuffix(b, suffix) && b != "*"+suffix
}
