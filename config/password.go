package config

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/hashicorp/hcl/v2"
)

// PasswordAuth is the password_auth block: SOCKS5 USERNAME/PASSWORD (RFC
// 1929), the password checked with the KDC (an AS exchange, then a service
// ticket for the gateway that the keytab must open). The password crosses
// the network in the clear, so the method is off unless Sources lists
// the networks allowed to use it. Zero values are the defaults below but
// for Sources (empty: off), Service, Realm and Krb5Conf ("": derived).
type PasswordAuth struct {
	// Sources are the client networks whose greetings may get method 02.
	Sources policy.Sources
	// Service is the gateway's service principal the verification asks a
	// ticket for ("rcmd/gw.example.com@EXAMPLE.COM"); "": the first of
	// kerberos.principals, else of the keytab, with its realm.
	Service string
	// Realm is the realm of a bare username; "": the service's realm. A
	// "user@REALM" username is accepted for it and kerberos.trusted_realms.
	Realm string
	// Krb5Conf is the krb5.conf naming the KDCs (resolved against the
	// file's directory); "": $KRB5_CONFIG, else /etc/krb5.conf.
	Krb5Conf string
	// KDCTimeout bounds one verification, from the first KDC request to
	// the acceptor's answer.
	KDCTimeout time.Duration
	// MaxFailuresPerSource and MaxFailuresPerPrincipal are the failed
	// verifications a source (IPv4 address, IPv6 /64) or a principal may
	// have within FailureWindow; past either, the attempt is refused
	// without asking the KDC. 0: no limit.
	MaxFailuresPerSource, MaxFailuresPerPrincipal int
	FailureWindow                                 time.Duration
	// MaxTracked bounds each failure table (sources, principals): the
	// least recently failing entry is forgotten past it.
	MaxTracked int
	// MaxConcurrent bounds the verifications in flight (KDC exchanges);
	// past it a client gets failure at once.
	MaxConcurrent int
	// CacheTTL keeps a successful verification this long, keyed on a
	// salted hash of realm, user and password (never the password): 0
	// (the default) caches nothing.
	CacheTTL time.Duration
}

// Enabled says whether any source may use the method.
func (p PasswordAuth) Enabled() bool { return len(p.Sources) > 0 }

// Defaults of the password_auth block.
const (
	DefaultPasswordKDCTimeout           = 10 * time.Second
	DefaultPasswordMaxFailuresPerSource = 20
	DefaultPasswordMaxFailuresPerPrinc  = 5
	DefaultPasswordFailureWindow        = 5 * time.Minute
	DefaultPasswordMaxTracked           = 4096
	DefaultPasswordMaxConcurrent        = 16

	maxPasswordCacheTTL      = time.Hour
	maxPasswordFailureWindow = 24 * time.Hour
	maxPasswordKDCTimeout    = 5 * time.Minute
)

type filePasswordAuth struct {
	Sources                 *hcl.Attribute `hcl:"sources"`
	Service                 *hcl.Attribute `hcl:"service,optional"`
	Realm                   *hcl.Attribute `hcl:"realm,optional"`
	Krb5Conf                *hcl.Attribute `hcl:"krb5_conf,optional"`
	KDCTimeout              *hcl.Attribute `hcl:"kdc_timeout,optional"`
	MaxFailuresPerSource    *hcl.Attribute `hcl:"max_failures_per_source,optional"`
	MaxFailuresPerPrincipal *hcl.Attribute `hcl:"max_failures_per_principal,optional"`
	FailureWindow           *hcl.Attribute `hcl:"failure_window,optional"`
	MaxTracked              *hcl.Attribute `hcl:"max_tracked,optional"`
	MaxConcurrent           *hcl.Attribute `hcl:"max_concurrent,optional"`
	CacheTTL                *hcl.Attribute `hcl:"cache_ttl,optional"`
	DefRange                hcl.Range      `hcl:",def_range"`
}

func (d *decoder) passwordAuth(p *filePasswordAuth, out *PasswordAuth) {
	if p.Sources == nil {
		d.missing(p.DefRange, "sources", `the networks whose clients may send a username and password (in the clear), like sources = ["10.20.0.0/16"]`)
		return
	}
	items, _ := d.list(p.Sources)
	if len(items) == 0 && isEmptyList(p.Sources) {
		d.errorf(p.Sources.Expr.Range(), "Empty list",
			"An empty sources list lets no client use passwords; leave the password_auth block out to turn the method off.")
	}
	out.Sources = policy.Sources{}
	for _, it := range items {
		pf, ok := d.prefix(it, "network")
		if !ok {
			continue
		}
		if pf.Bits() == 0 {
			d.warnf(it.rng, "Passwords in the clear from anywhere",
				"%s lets every %s client send a password unprotected: list only the networks that cannot use GSS-API, whose path to the gateway you trust.",
				pf, ipVersion(pf.Addr()))
		}
		out.Sources = append(out.Sources, pf)
	}
	if p.Service != nil {
		if it, ok := d.str(p.Service); ok {
			_, realm, _ := strings.Cut(it.s, "@")
			switch msg := checkServicePrincipal(it.s); {
			case msg != "":
				d.errorf(it.rng, "Invalid service principal", "%q %s", it.s, msg)
			case realm == "":
				d.errorf(it.rng, "Service principal without a realm",
					"%q needs its realm, like \"rcmd/gw.example.com@EXAMPLE.COM\": the service ticket is asked of that realm's KDC.", it.s)
			default:
				out.Service = it.s
			}
		}
	}
	if p.Realm != nil {
		if it, ok := d.str(p.Realm); ok {
			if it.s == "" || strings.ContainsAny(it.s, "@/,\\ \t\n") || hasGlob(it.s) ||
				strings.ContainsFunc(it.s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				d.errorf(it.rng, "Invalid realm", "%q is not a realm name like \"CORP.EXAMPLE.COM\".", it.s)
			} else {
				out.Realm = it.s
			}
		}
	}
	if p.Krb5Conf != nil {
		if it, ok := d.str(p.Krb5Conf); ok {
			if it.s == "" {
				d.errorf(it.rng, "Empty path", "krb5_conf is empty; leave it out for $KRB5_CONFIG or /etc/krb5.conf.")
			} else {
				out.Krb5Conf = it.s
				if !filepath.IsAbs(it.s) {
					out.Krb5Conf = filepath.Join(d.baseDir, it.s)
				}
			}
		}
	}
	out.KDCTimeout = d.durationMax(p.KDCTimeout, DefaultPasswordKDCTimeout, false, maxPasswordKDCTimeout)
	out.MaxFailuresPerSource = d.integer(p.MaxFailuresPerSource, DefaultPasswordMaxFailuresPerSource, 1<<20)
	out.MaxFailuresPerPrincipal = d.integer(p.MaxFailuresPerPrincipal, DefaultPasswordMaxFailuresPerPrinc, 1<<20)
	out.FailureWindow = d.durationMax(p.FailureWindow, DefaultPasswordFailureWindow, false, maxPasswordFailureWindow)
	out.MaxTracked = d.integer(p.MaxTracked, DefaultPasswordMaxTracked, 1<<22)
	if out.MaxTracked == 0 && p.MaxTracked != nil {
		d.errorf(p.MaxTracked.Expr.Range(), "Number out of range", "max_tracked must be at least 1: the failure tables need room.")
		out.MaxTracked = DefaultPasswordMaxTracked
	}
	out.MaxConcurrent = d.integer(p.MaxConcurrent, DefaultPasswordMaxConcurrent, 4096)
	if out.MaxConcurrent == 0 && p.MaxConcurrent != nil {
		d.errorf(p.MaxConcurrent.Expr.Range(), "Number out of range", "max_concurrent must be at least 1, or no password would ever be checked.")
		out.MaxConcurrent = DefaultPasswordMaxConcurrent
	}
	out.CacheTTL = d.durationMax(p.CacheTTL, 0, true, maxPasswordCacheTTL)
	if out.MaxFailuresPerPrincipal == 0 && p.MaxFailuresPerPrincipal != nil {
		d.warnf(p.MaxFailuresPerPrincipal.Expr.Range(), "No per-principal failure limit",
			"With max_failures_per_principal = 0 clients can try passwords for one account as fast as the KDC answers, and lock it out where the KDC has a lockout policy.")
	}
}

// checkPasswordRules warns when password_auth is on but no allow rule
// accepts level clear, the only level a password session has: every such
// session would be denied.
func (d *decoder) checkPasswordRules(fb *fileBody, cfg *Config) {
	if fb.Password == nil || !cfg.PasswordAuth.Enabled() || d.diags.HasErrors() {
		return
	}
	if allowsClear(d.rules, policy.MethodPassword) {
		return
	}
	d.warnf(fb.Password.DefRange, "No rule allows password sessions",
		"Password sessions run at protection level clear, and no allow rule has \"clear\" in its protection list: every password session will be denied.")
}

// allowsClear reports whether an allow rule of rules accepts level clear
// for sessions of method m, the level of every session but GSS-API's.
func allowsClear(rules []policy.Rule, m policy.Method) bool {
	for _, r := range rules {
		if r.Action == policy.ActionAllow && slices.Contains(r.Protection, policy.LevelClear) &&
			(r.Methods == nil || slices.Contains(r.Methods, m)) {
			return true
		}
	}
	return false
}

// durationMax is duration with an upper bound.
func (d *decoder) durationMax(attr *hcl.Attribute, def time.Duration, zeroOK bool, limit time.Duration) time.Duration {
	v := d.duration(attr, def, zeroOK)
	if v > limit {
		d.errorf(attr.Expr.Range(), "Duration out of range", "%s must be at most %s.", attr.Name, limit)
		return def
	}
	return v
}

// checkPasswordKeytab refuses a password_auth.service the acceptor would
// not open tickets for (not in the keytab, not one of kerberos.principals,
// no AES key): the KDC would accept every right password and the
// gateway's own ticket check would then fail, each login counted as a
// failure. The match is gateway.Provision's (gssapi.PasswordService over
// the acceptor's KeytabFacts), so check and serve agree.
func (d *decoder) checkPasswordKeytab(cfg *Config, fb *fileBody, src keytabSource) {
	if fb.Password == nil || fb.Password.Service == nil || cfg.PasswordAuth.Service == "" || cfg.Kerberos.Keytab == "" {
		return
	}
	kt, err := gssapi.LoadKeytab(cfg.Kerberos.Keytab)
	if err != nil {
		return // diagnosed by checkKeytab
	}
	pats, err := gssapi.ParsePrincipals(cfg.Kerberos.Principals)
	if err != nil {
		return // diagnosed with kerberos.principals
	}
	service, err := gssapi.ParsePrincipal(cfg.PasswordAuth.Service)
	if err != nil {
		return // diagnosed by passwordAuth
	}
	facts, _ := gssapi.KeytabFacts(kt, pats)
	_, err = gssapi.PasswordService(facts, service)
	rng := fb.Password.Service.Expr.Range()
	switch {
	case err == nil:
	case errors.Is(err, gssapi.ErrPrincipalNotAllowed):
		d.errorf(rng, "Password service not accepted",
			"%q is in the keytab %q%s but not one of kerberos.principals: the gateway would not open the service tickets that validate passwords, and every login would fail.",
			cfg.PasswordAuth.Service, cfg.Kerberos.Keytab, src.origin)
	case errors.Is(err, gssapi.ErrNoAESKey):
		d.errorf(rng, "No AES key for the password service",
			"The keytab %q%s has no AES key for %q: the service tickets that validate passwords could not be used, and every login would fail.",
			cfg.Kerberos.Keytab, src.origin, cfg.PasswordAuth.Service)
	default:
		d.errorf(rng, "Password service not in keytab",
			"The keytab %q%s has no key for %q: the KDC would accept right passwords, but the gateway could not open the service ticket that validates them, and every login would fail as not_validated. Name a principal of the keytab (not an alias), or leave service out for the keytab's first.",
			cfg.Kerberos.Keytab, src.origin, cfg.PasswordAuth.Service)
	}
}
