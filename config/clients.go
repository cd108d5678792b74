package config

import (
	"strings"

	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// kerberosClients decodes who the acceptor accepts besides users of the
// service's realm: trusted_realms, allow_anonymous, allow_service_clients.
func (d *decoder) kerberosClients(k *fileKerberos, out *Kerberos) {
	// An empty list is what leaving the attribute out means: no realm
	// besides the service's.
	if items, ok := d.list(k.TrustedRealms); ok {
		out.TrustedRealms = []string{}
		seen := map[string]hcl.Range{}
		for _, it := range items {
			switch {
			case it.s == "" || strings.ContainsAny(it.s, "@/,\\ \t\n") || hasGlob(it.s) ||
				strings.ContainsFunc(it.s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				d.errorf(it.rng, "Invalid realm",
					"%q is not a realm name like \"CORP.EXAMPLE.COM\"; trusted realms are named exactly, without wildcards.", it.s)
				continue
			case it.s == "WELLKNOWN:ANONYMOUS":
				d.errorf(it.rng, "Not a realm to trust",
					"WELLKNOWN:ANONYMOUS is the realm of anonymous tickets, not a realm; use allow_anonymous = true to accept them.")
				continue
			case it.s != strings.ToUpper(it.s):
				d.warnf(it.rng, "Realm is not upper case",
					"Tickets name realms exactly, and Kerberos realms are conventionally upper case: %q will not trust clients of %q.", it.s, strings.ToUpper(it.s))
			}
			if first, dup := seen[it.s]; dup {
				d.errorf(it.rng, "Duplicate realm", "%q is already listed at %s:%d.", it.s, first.Filename, first.Start.Line)
				continue
			}
			seen[it.s] = it.rng
			out.TrustedRealms = append(out.TrustedRealms, it.s)
		}
	}
	out.AllowAnonymous = d.boolean(k.AllowAnonymous)
	out.AllowServiceClients = d.boolean(k.AllowServiceClients)
	if out.AllowAnonymous {
		d.warnf(k.AllowAnonymous.Range, "Anonymous clients accepted",
			"With allow_anonymous = true, anyone the KDC gives an anonymous ticket (kinit -n, anonymous PKINIT) authenticates as WELLKNOWN/ANONYMOUS. Only allow rules with allow_anonymous = true match them; principal wildcards never do.")
	}
}

// checkClientOptIns warns about rules that opt in to clients the
// acceptor refuses, and about accepting clients no rule admits.
func (d *decoder) checkClientOptIns(fb *fileBody, cfg *Config) {
	anyAnon, anySvc := false, false
	for i, fr := range fb.Rules {
		r := &d.rules[i]
		if r.Action != policy.ActionAllow {
			continue // an opt-in there is an error already
		}
		if r.AllowAnonymous {
			anyAnon = true
			if !cfg.Kerberos.AllowAnonymous {
				d.warnf(fr.AllowAnonymous.Range, "Anonymous clients refused",
					"Rule %q opts in to anonymous clients, but the acceptor refuses their tickets: set allow_anonymous = true in the kerberos block too.", fr.Name)
			}
		}
		if r.AllowServiceClients {
			anySvc = true
			if !cfg.Kerberos.AllowServiceClients {
				d.warnf(fr.AllowServiceClients.Range, "Service clients refused",
					"Rule %q opts in to service clients, but the acceptor refuses their tickets: set allow_service_clients = true in the kerberos block too.", fr.Name)
			}
		}
	}
	k := fb.Kerberos
	if k == nil {
		return
	}
	for _, c := range []struct {
		on, anyRule bool
		attr        *hcl.Attribute
	}{
		{cfg.Kerberos.AllowAnonymous, anyAnon, k.AllowAnonymous},
		{cfg.Kerberos.AllowServiceClients, anySvc, k.AllowServiceClients},
	} {
		if c.on && !c.anyRule {
			d.warnf(c.attr.Range, "No rule admits these clients",
				"%s = true lets the acceptor accept them, but no allow rule sets %s = true, so every one of them is denied.", c.attr.Name, c.attr.Name)
		}
	}
}
