package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// lint warns about a policy that loads but cannot do what was meant: no
// rules at all, rules that can never match because an earlier rule
// matches every request they match (policy.Shadows), or because every
// front door their methods matcher names is closed in cfg. It runs only
// on a file without errors, whose rules are complete.
func (d *decoder) lint(fileStart hcl.Range, cfg *Config) {
	if len(d.rules) == 0 {
		d.warnf(fileStart, "No rules", "The configuration has no rule blocks, so every request will be denied.")
	}
	for _, s := range policy.Shadows(d.rules) {
		rj, ri := d.rules[s.Rule], d.rules[s.By]
		d.warnf(d.ruleRanges[s.Rule], "Rule never matches",
			"Rule %q can never match: the earlier rule %q (line %d) matches every request it matches, and the first matching rule decides. Move %q above %q, or narrow %q.",
			rj.Name, ri.Name, ri.Pos.Line, rj.Name, ri.Name, ri.Name)
	}
	for i, r := range d.rules {
		if r.Methods == nil || slices.ContainsFunc(r.Methods, cfg.doorOpen) {
			continue
		}
		var why []string
		for _, m := range r.Methods {
			why = append(why, fmt.Sprintf("%s needs %s", m, doorSetting(m)))
		}
		d.warnf(d.ruleRanges[i], "Rule for closed front doors",
			"Rule %q matches only sessions of methods %s, and this configuration opens none of those front doors (%s): the rule can never match.",
			r.Name, joinMethods(r.Methods), strings.Join(why, "; "))
	}
}

// doorOpen reports whether the configuration lets sessions of method m
// in at all: gssapi always, password with password_auth sources,
// negotiate with an http_listen, none with no_auth sources, socks4 with
// those and no_auth.socks4.
func (c *Config) doorOpen(m policy.Method) bool {
	switch m {
	case policy.MethodGSSAPI:
		return true
	case policy.MethodPassword:
		return c.PasswordAuth.Enabled()
	case policy.MethodNegotiate:
		return len(c.HTTPListen) > 0
	case policy.MethodNone:
		return len(c.NoAuth) > 0
	case policy.MethodSOCKS4:
		return len(c.NoAuth) > 0 && c.NoAuthSOCKS4
	}
	return false
}

// doorSetting names what opens the front door of method m.
func doorSetting(m policy.Method) string {
	switch m {
	case policy.MethodPassword:
		return "a password_auth block"
	case policy.MethodNegotiate:
		return "http_listen"
	case policy.MethodNone:
		return "no_auth sources"
	case policy.MethodSOCKS4:
		return "no_auth sources and socks4 = true"
	}
	return "nothing"
}

func joinMethods(ms []policy.Method) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = strconv.Quote(m.String())
	}
	return "[" + strings.Join(names, ", ") + "]"
}
