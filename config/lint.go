package config

import (
	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// lint warns about a policy that loads but cannot do what was meant: no
// rules at all, or rules that can never match because an earlier rule
// matches every request they match (policy.Shadows). It runs only on a
// file without errors, whose rules are complete.
func (d *decoder) lint(fileStart hcl.Range) {
	if len(d.rules) == 0 {
		d.warnf(fileStart, "No rules", "The configuration has no rule blocks, so every request will be denied.")
	}
	for _, s := range policy.Shadows(d.rules) {
		rj, ri := d.rules[s.Rule], d.rules[s.By]
		d.warnf(d.ruleRanges[s.Rule], "Rule never matches",
			"Rule %q can never match: the earlier rule %q (line %d) matches every request it matches, and the first matching rule decides. Move %q above %q, or narrow %q.",
			rj.Name, ri.Name, ri.Pos.Line, rj.Name, ri.Name, ri.Name)
	}
}
