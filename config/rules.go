package config

import (
	"github.com/gssocks/gssocks/socks5"
	"slices"
	"strings"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// findRealm returns a realm the configuration mentions, for suggestions.
func findRealm(rules []*fileRule) string {
	scratch := &decoder{}
	for _, fr := range rules {
		for _, attr := range []*hcl.Attribute{fr.Realms, fr.Principals} {
			if attr == nil {
				continue
			}
			items, _ := scratch.list(attr)
			for _, it := range items {
				_, realm, ok := strings.Cut(it.s, "@")
				if attr == fr.Realms {
					realm, ok = it.s, true
				}
				if ok && realm != "" && !hasGlob(realm) {
					return realm
				}
			}
		}
	}
	return ""
}

// rule decodes one rule block. The rule is complete only when no error
// was added.
func (d *decoder) rule(fr *fileRule, groups map[string][]string, groupRanges map[string]hcl.Range, realmHint string) policy.Rule {
	r := policy.Rule{Name: fr.Name, Pos: position(fr.DefRange)}
	if fr.Name == "" {
		d.errorf(fr.NameRange, "Empty rule name", "A rule needs a name: it appears in logs and decisions.")
	}
	if fr.Action != nil {
		if it, ok := d.str(fr.Action); ok && d.oneOf(it, "action", "allow", "deny") {
			if it.s == "deny" {
				r.Action = policy.ActionDeny
			}
		}
	}

	if items, ok := d.nonEmptyList(fr.Principals, "match any principal"); ok {
		r.Principals = []string{}
		for _, it := range items {
			if d.principalPattern(it, realmHint) {
				r.Principals = append(r.Principals, it.s)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Realms, "match any realm"); ok {
		r.Realms = []string{}
		for _, it := range items {
			switch {
			case it.s == "" || strings.ContainsAny(it.s, "@ \t") || hasGlob(it.s):
				d.errorf(it.rng, "Invalid realm", "%q is not a realm name like \"EXAMPLE.TEST\"; realms are compared exactly.", it.s)
				continue
			case it.s != strings.ToUpper(it.s):
				d.warnRealmCase(it, it.s)
			}
			r.Realms = append(r.Realms, it.s)
		}
	}
	if items, ok := d.nonEmptyList(fr.Groups, "match any group"); ok {
		r.Groups, r.SIDs = []string{}, []string{}
		for _, it := range items {
			sids, ok := d.groupRef(it, groups, groupRanges)
			if ok {
				r.Groups = append(r.Groups, it.s)
				r.SIDs = append(r.SIDs, sids...)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Sources, "match any source"); ok {
		r.Sources = d.prefixes(items)
	}
	if items, ok := d.nonEmptyList(fr.Destinations, "match any destination"); ok {
		r.Destinations = []policy.Destination{}
		for _, it := range items {
			if dst, ok := d.destination(it); ok {
				r.Destinations = append(r.Destinations, dst)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Ports, "match any port"); ok {
		r.Ports = []policy.PortRange{}
		for _, it := range items {
			if pr, ok := d.portRange(it); ok {
				r.Ports = append(r.Ports, pr)
			}
		}
	}
	if items, ok := d.nonEmptyList(fr.Commands, "match any command"); ok {
		r.Commands = []socks5.Command{}
		for _, it := range items {
			if d.oneOf(it, "command", "connect", "bind", "udp") {
				c := map[string]socks5.Command{"connect": socks5.CmdConnect, "bind": socks5.CmdBind, "udp": socks5.CmdUDPAssociate}[it.s]
				if !slices.Contains(r.Commands, c) {
					r.Commands = append(r.Commands, c)
				}
			}
		}
	}

	d.methods(fr, &r)

	r.Protection = policy.DefaultProtection()
	hasClear := false
	if items, ok := d.nonEmptyList(fr.Protection, "accept integrity and confidentiality"); ok {
		r.Protection = []policy.Level{}
		for _, it := range items {
			if it.s == "selective" {
				d.errorf(it.rng, "Unsupported protection level",
					`Selective protection (level 3, a per-message choice) is not supported; use "integrity" or "confidentiality".`)
				continue
			}
			if !d.oneOf(it, "protection level", "clear", "integrity", "confidentiality") {
				continue
			}
			l, _ := policy.ParseLevel(it.s)
			if !slices.Contains(r.Protection, l) {
				r.Protection = append(r.Protection, l)
			}
		}
		slices.Sort(r.Protection)
		hasClear = slices.Contains(r.Protection, policy.LevelClear)
	} else if fr.Protection != nil {
		hasClear = true // already diagnosed; do not pile on
	}
	r.NEC = d.boolean(fr.NEC)
	r.AuthOnly = d.boolean(fr.AuthOnly)
	if r.AuthOnly && !hasClear {
		d.errorf(fr.AuthOnly.Range, "auth_only needs clear",
			`auth_only answers a request for integrity or confidentiality with clear (authentication only), so "clear" must be in this rule's protection list: protection = ["clear", "integrity", "confidentiality"].`)
	}
	r.MaxSessionsPerPrincipal = d.integer(fr.MaxSessionsPerPrincipal, 0, 1<<30)
	r.IdleTimeout = d.duration(fr.IdleTimeout, 0, false)
	r.AllowAnonymous = d.boolean(fr.AllowAnonymous)
	r.AllowServiceClients = d.boolean(fr.AllowServiceClients)
	r.OutliveTicket = d.duration(fr.OutliveTicket, 0, true)

	if r.Action == policy.ActionDeny {
		for _, attr := range []*hcl.Attribute{fr.AllowAnonymous, fr.AllowServiceClients} {
			if attr != nil {
				d.errorf(attr.NameRange, "Opt-in in a deny rule",
					"%s lets an allow rule match clients that are not users; deny rules match every client already. Remove it from rule %q.", attr.Name, fr.Name)
			}
		}

		for _, attr := range []*hcl.Attribute{fr.Protection, fr.NEC, fr.AuthOnly, fr.MaxSessionsPerPrincipal, fr.IdleTimeout, fr.OutliveTicket} {
			if attr != nil {
				d.warnf(attr.NameRange, "Ignored in a deny rule",
					"%s only affects sessions a rule allows; rule %q denies.", attr.Name, fr.Name)
			}
		}
	}
	return r
}

// methodNames are the values of a methods matcher, in policy.Method order.
func methodNames() []string {
	var out []string
	for m := policy.MethodGSSAPI; ; m++ {
		if _, ok := policy.ParseMethod(m.String()); !ok {
			return out
		}
		out = append(out, m.String())
	}
}

// methods decodes a rule's methods matcher into r.Methods. A method that
// carries no identity (none, socks4) in a rule with identity matchers is
// warned about: those matchers never match such sessions, so the rule
// cannot match them.
func (d *decoder) methods(fr *fileRule, r *policy.Rule) {
	items, ok := d.nonEmptyList(fr.Methods, "match every method")
	if !ok {
		return
	}
	names := methodNames()
	identity := fr.Principals != nil || fr.Realms != nil || fr.Groups != nil
	r.Methods = []policy.Method{}
	for _, it := range items {
		if !d.oneOf(it, "method", names...) {
			continue
		}
		m, _ := policy.ParseMethod(it.s)
		if identity && !m.Authenticates() {
			d.warnf(it.rng, "Method without identity",
				"%q sessions are not authenticated, and the principals, realms and groups of rule %q never match an unauthenticated session: the rule cannot match them. Put them in a rule without identity matchers.", it.s, fr.Name)
		}
		if !slices.Contains(r.Methods, m) {
			r.Methods = append(r.Methods, m)
		}
	}
}

// checkFrontDoors warns about front doors and rules that cannot meet: an
// allow rule whose methods name only ways in that are off (password
// without password_auth, negotiate without http_listen, none without
// no_auth, socks4 without no_auth { socks4 = true }), and an HTTP proxy
// no allow rule lets through (its requests are decided at level clear).
// It runs once http_listen is decoded.
func (d *decoder) checkFrontDoors(fb *fileBody, cfg *Config) {
	if d.diags.HasErrors() {
		return
	}
	if len(cfg.HTTPListen) > 0 && !allowsClear(d.rules, policy.MethodNegotiate) {
		d.warnf(fb.HTTPListen.Expr.Range(), "No rule allows HTTP proxy requests",
			"HTTP proxy requests are decided at protection level clear, and no allow rule matching method negotiate has \"clear\" in its protection list: every request will be answered 403.")
	}
}

// groupRef resolves a groups entry: a literal SID, or a group alias.
func (d *decoder) groupRef(it item, groups map[string][]string, ranges map[string]hcl.Range) ([]string, bool) {
	if looksLikeSID(it.s) {
		sid, err := parseSID(it.s)
		if err != "" {
			d.errorf(it.rng, "Invalid SID", "%q is not a SID: %s.", it.s, err)
			return nil, false
		}
		return []string{sid}, true
	}
	if sids, ok := groups[it.s]; ok {
		return sids, true
	}
	if _, ok := ranges[it.s]; ok {
		return nil, false // declared but invalid: already diagnosed
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	slices.Sort(names)
	d.errorf(it.rng, "Unknown group",
		`No group named %q is declared.%s A groups entry is the name of a group block or a literal SID such as "S-1-5-21-1004336348-1177238915-682003330-513".`,
		it.s, didYouMean(it.s, names))
	return nil, false
}

// position is where rng starts, for policy.Rule.Pos.
func position(rng hcl.Range) policy.Position {
	return policy.Position{File: rng.Filename, Line: rng.Start.Line, Column: rng.Start.Column}
}
