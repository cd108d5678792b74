package gssapi

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/krberror"
)

// This file verifies a username and password (RFC 1929) with the KDC the
// way pam_krb5's "validate" does: an AS exchange for the user with the
// password (RFC 4120 §3.1) proves only that *some* KDC knows the
// password, which a spoofed KDC answering in the real one's place could
// do for any password it likes. So a service ticket for the gateway's own
// principal is then asked for (§3.3) and opened with the keytab through
// Acceptor.Accept, the path every GSS-API AP-REQ takes: only the real KDC
// knows the key it is encrypted in. The identity is the accepted
// ticket's, with its PAC, client kind and realm checks, exactly as for a
// GSS-API client.

// PasswordConfig configures a PasswordVerifier.
type PasswordConfig struct {
	// Krb5Conf is the krb5.conf that says where the KDCs are; "" means the
	// first existing file of $KRB5_CONFIG (a colon-separated list), else
	// /etc/krb5.conf. include lines are not followed.
	Krb5Conf string
	// Service is the gateway's own service principal, with its realm: the
	// service ticket is asked for it and must open with the keytab.
	Service Principal
	// DefaultRealm is the realm of a bare username ("alice"); "" means
	// Service.Realm.
	DefaultRealm string
	// Realms are the other realms a "user@REALM" username may name (the
	// acceptor's trusted realms); compared without regard to case, and
	// the configured spelling is used.
	Realms []string
	// Getenv reads $KRB5_CONFIG (nil: os.Getenv).
	Getenv func(string) string
}

// PasswordVerifier checks usernames and passwords with the KDCs of a
// krb5.conf. It is immutable and safe for concurrent use.
type PasswordVerifier struct {
	conf         *config.Config
	confPath     string
	service      Principal
	defaultRealm string
	realms       []string // DefaultRealm first
}

// NewPasswordVerifier reads the krb5.conf and checks that it lists a KDC
// for the default realm. Errors wrap ErrBadName (no service
// principal with a realm) or ErrKDCUnreachable (no krb5.conf, or no KDC
// for a realm).
func NewPasswordVerifier(cfg PasswordConfig) (*PasswordVerifier, error) {
	if cfg.Service.Name == "" || cfg.Service.Realm == "" {
		return nil, fmt.Errorf("%w: password verification needs the gateway's service principal with its realm, not %s", ErrBadName, quote(cfg.Service.String()))
	}
	v := &PasswordVerifier{service: cfg.Service, defaultRealm: cfg.DefaultRealm}
	if v.defaultRealm == "" {
		v.defaultRealm = cfg.Service.Realm
	}
	v.realms = append([]string{v.defaultRealm}, cfg.Realms...)
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path, err := krb5ConfPath(cfg.Krb5Conf, getenv)
	if err != nil {
		return nil, err
	}
	v.confPath = path
	if v.conf, err = loadKrb5Conf(path); err != nil {
		return nil, err
	}
	// The service ticket is asked of the service's realm, whatever
	// [domain_realm] says of its host.
	if v.conf.DomainRealm == nil {
		v.conf.DomainRealm = config.DomainRealm{}
	}
	comps := cfg.Service.Components()
	v.conf.DomainRealm[comps[len(comps)-1]] = cfg.Service.Realm
	// The other realms may be reached through DNS or not at all: their
	// users then fail with ErrKDCUnreachable, the default realm's cannot.
	if _, kdcs, err := v.conf.GetKDCs(v.defaultRealm, true); err != nil || len(kdcs) == 0 {
		return nil, fmt.Errorf("%w: %s lists no KDC for realm %s", ErrKDCUnreachable, quote(path), quote(v.defaultRealm))
	}
	return v, nil
}

// Krb5Conf is the path of the krb5.conf in use.
func (v *PasswordVerifier) Krb5Conf() string { return v.confPath }

// Service is the principal service tickets are asked for.
func (v *PasswordVerifier) Service() Principal { return v.service }

func krb5ConfPath(path string, getenv func(string) string) (string, error) {
	if path != "" {
		return path, nil
	}
	candidates := []string{"/etc/krb5.conf"}
	if env := getenv("KRB5_CONFIG"); env != "" {
		candidates = filepath.SplitList(env)
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: no krb5.conf (tried %s)", ErrKDCUnreachable, strings.Join(candidates, ", "))
}

// loadKrb5Conf parses a krb5.conf with gokrb5, without the lines it
// cannot read (include, includedir, module), and with no addresses in
// requests, so that tickets are not bound to the gateway's addresses.
func loadKrb5Conf(path string) (cfg *config.Config, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: krb5.conf: %w", ErrKDCUnreachable, err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "include ") || strings.HasPrefix(t, "includedir ") || strings.HasPrefix(t, "module ") {
			continue
		}
		kept = append(kept, line)
	}
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("%w: krb5.conf %s cannot be parsed (%s)", ErrKDCUnreachable, quote(path), panicText(r))
		}
	}()
	cfg, err = config.NewFromString(strings.Join(kept, "\n"))
	if err != nil {
		var unsupported config.UnsupportedDirective
		if !errors.As(err, &unsupported) || cfg == nil {
			// gokrb5's text quotes no secret, but may quote the file:
			// only its position is said.
			return nil, fmt.Errorf("%w: krb5.conf %s cannot be parsed", ErrKDCUnreachable, quote(path))
		}
	}
	cfg.LibDefaults.NoAddresses = true
	return cfg, nil
}

// Principal maps a username to the principal whose password is checked:
// "alice" is alice in DefaultRealm; "alice@REALM" is accepted for
// DefaultRealm and PasswordConfig.Realms (any case; the configured
// spelling is used), refused with ErrRealmNotTrusted for another realm;
// a name ParsePrincipal refuses (empty component, control character,
// several '@') is ErrBadName.
func (v *PasswordVerifier) Principal(username string) (Principal, error) {
	p, err := ParsePrincipal(username)
	if err != nil {
		return Principal{}, err
	}
	if p.Realm == "" {
		p.Realm = v.defaultRealm
		return p, nil
	}
	i := slices.IndexFunc(v.realms, func(r string) bool { return strings.EqualFold(r, p.Realm) })
	if i < 0 {
		return Principal{}, &RealmError{Realm: p.Realm, Client: p.String()}
	}
	p.Realm = v.realms[i]
	return p, nil
}

// RefusesClient says whether acc would refuse p as a ticket's client by
// its name alone (checkClient's rules, without a ticket): a krbtgt or
// WELLKNOWN name always (no user logs in as a ticket-granting service or
// a well-known name with a password), a name of several components
// (host/ws1, rcmd/localhost, alice/admin: a service instance) unless
// AllowServiceClients. The error wraps ErrNotAUser; nil for a user name.
// Verify checks it before asking any KDC, so that the KDC is not asked
// about a principal the gateway would refuse anyway.
func RefusesClient(acc *Acceptor, p Principal) error {
	comps := p.Components()
	switch {
	case isKrbtgt(comps):
		return fmt.Errorf("%w: %s is a ticket-granting service, not a user", ErrNotAUser, quote(p.String()))
	case comps[0] == "WELLKNOWN":
		return fmt.Errorf("%w: %s is a well-known name, not a user", ErrNotAUser, quote(p.String()))
	case len(comps) > 1 && !acc.clients.allowService:
		return fmt.Errorf("%w: %s is a service principal; service clients are not accepted", ErrNotAUser, quote(p.String()))
	}
	return nil
}

// Verify checks username and password with the KDC and returns the
// context the acceptor established with the resulting service ticket
// (its Client, ClientKind, AD and Trust describe the user as for a GSS-API
// client; the caller uses it for identity only, never for per-message
// tokens). Steps: the AS exchange for the principal (Principal), a TGS
// exchange for Service, then an AP-REQ built on that ticket and accepted
// by acc with peer as the client's address (tickets carry no
// addresses): a spoofed KDC cannot make a ticket the keytab opens.
//
// It blocks for the KDC exchanges; gokrb5 bounds each KDC contact to 5 s
// (connect and answer), trying every KDC krb5.conf lists, so callers wanting
// a shorter bound run it in a goroutine. Errors wrap ErrBadName,
// ErrRealmNotTrusted, ErrNotAUser (RefusesClient: no KDC asked), ErrBadPassword, ErrUnknownPrincipal,
// ErrKDCUnreachable or ErrPasswordValidation; a panic in gokrb5 is
// recovered as ErrPasswordValidation. The password is not kept.
func (v *PasswordVerifier) Verify(acc *Acceptor, username, password string, peer netip.Addr) (ctx *Context, err error) {
	p, err := v.Principal(username)
	if err != nil {
		return nil, err
	}
	if err := RefusesClient(acc, p); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			ctx, err = nil, fmt.Errorf("%w: %s: Kerberos decoding failed (%s)", ErrPasswordValidation, quote(p.String()), panicText(r))
		}
	}()
	cl := client.NewWithPassword(p.Name, p.Realm, password, v.conf, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return nil, classifyKDCError(err, p, "AS exchange")
	}
	tkt, key, err := cl.GetServiceTicket(v.service.Name)
	if err != nil {
		if e := classifyKDCError(err, p, "service ticket for "+quote(v.service.String())); errors.Is(e, ErrKDCUnreachable) {
			return nil, e
		}
		return nil, fmt.Errorf("%w: %s: the KDC accepted the password but gave no service ticket for %s (%s)", ErrPasswordValidation, quote(p.String()), quote(v.service.String()), kdcErrorText(err))
	}
	in, tok, err := NewInitiator(InitiatorConfig{
		Client: principalOf(cl.Credentials.CName(), cl.Credentials.Realm()), Ticket: tkt, SessionKey: key,
		Flags: FlagMutual | FlagSequence | FlagInteg | FlagConf,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: service ticket unusable: %v", ErrPasswordValidation, quote(p.String()), err)
	}
	actx, rep, err := acc.Accept(tok, peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the service ticket did not pass the acceptor: %v", ErrPasswordValidation, quote(p.String()), err)
	}
	// The AP-REP proves nothing more to us, but completing keeps the two
	// halves consistent (and catches an acceptor bug).
	if _, err := in.Complete(rep); err != nil {
		return nil, fmt.Errorf("%w: %s: AP-REP: %v", ErrPasswordValidation, quote(p.String()), err)
	}
	return actx, nil
}

// krbErrorCode finds the KRB-ERROR code gokrb5 put in its error text
// ("KRB Error: (24) KDC_ERR_PREAUTH_FAILED ..."): gokrb5 keeps only text.
var krbErrorCode = regexp.MustCompile(`KRB Error: \((\d{1,5})\)`)

// kdcErrorText describes err by its gokrb5 root cause and KRB-ERROR code
// only: gokrb5's text quotes the KDC's e-text and names.
func kdcErrorText(err error) string {
	var ke krberror.Krberror
	cause := "error"
	if errors.As(err, &ke) {
		cause = ke.RootCause
	}
	if m := krbErrorCode.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		return fmt.Sprintf("%s, KRB-ERROR %d %s", cause, code, krbErrorName(int32(code)))
	}
	return cause
}

// krbErrorName is the RFC 4120 §7.5.9 name of a code, without gokrb5's
// description: errorcode.Lookup gives "(24) KDC_ERR_PREAUTH_FAILED
// Pre-authentication information was invalid".
func krbErrorName(code int32) string {
	if f := strings.Fields(errorcode.Lookup(code)); len(f) > 1 {
		return f[1]
	}
	return "unknown"
}

// classifyKDCError maps a gokrb5 client error to this file's sentinels.
func classifyKDCError(err error, p Principal, step string) error {
	var ke krberror.Krberror
	isKE := errors.As(err, &ke)
	if m := krbErrorCode.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		switch int32(code) {
		case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
			return fmt.Errorf("%w: %s (%s)", ErrUnknownPrincipal, quote(p.String()), step)
		case errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KRB_AP_ERR_BAD_INTEGRITY,
			errorcode.KDC_ERR_CLIENT_REVOKED, errorcode.KDC_ERR_KEY_EXPIRED:
			return fmt.Errorf("%w: %s (%s: %s)", ErrBadPassword, quote(p.String()), step, kdcErrorText(err))
		}
		return fmt.Errorf("%w: %s (%s: %s)", ErrPasswordValidation, quote(p.String()), step, kdcErrorText(err))
	}
	switch {
	case isKE && (ke.RootCause == krberror.DecryptingError || ke.RootCause == krberror.ChksumError):
		// No pre-authentication required: the AS-REP came, and does not
		// decrypt with the password's key.
		return fmt.Errorf("%w: %s (%s: the reply does not decrypt with the password)", ErrBadPassword, quote(p.String()), step)
	case isKE && ke.RootCause == krberror.NetworkingError:
		return fmt.Errorf("%w: realm %s (%s: %s)", ErrKDCUnreachable, quote(p.Realm), step, kdcErrorText(err))
	}
	return fmt.Errorf("%w: %s (%s: %s)", ErrPasswordValidation, quote(p.String()), step, kdcErrorText(err))
}

// PasswordService resolves a configured password-verification service
// principal (with its realm) against facts, what an acceptor makes of its
// keytab (KeytabFacts): it must name an entry the acceptor opens tickets
// with (Accepted) holding an AES key (Supported), since Verify asks the
// KDC for a ticket to that principal and Accept must open it. The match is
// exact, else on the name without regard to case (the acceptor opens a
// ticket whose name differs from its keytab entry's only in case, by key
// trial); the keytab's spelling is returned, so that the KDC is asked for
// the principal it issued the key for. A KDC alias of a keytab principal
// (another name) cannot be told apart offline from a principal the keytab
// lacks: it is refused, and the keytab's own name is to be configured.
//
// Errors: ErrPrincipalNotAllowed (the keytab has it, but it is not a
// configured principal), ErrNoAESKey (accepted, without an AES key),
// ErrNoKey (no entry names it).
func PasswordService(facts []KeytabEntryFact, service Principal) (Principal, error) {
	match := func(fold bool) (Principal, bool, error) {
		var found bool
		var named []KeytabEntryFact
		for _, f := range facts {
			if f.Principal.Realm != service.Realm || !(f.Principal.Name == service.Name || fold && strings.EqualFold(f.Principal.Name, service.Name)) {
				continue
			}
			found = true
			if f.Accepted && f.Supported {
				return f.Principal, true, nil
			}
			named = append(named, f)
		}
		if !found {
			return Principal{}, false, nil
		}
		if !slices.ContainsFunc(named, func(f KeytabEntryFact) bool { return f.Allowed }) {
			return Principal{}, true, fmt.Errorf("%w: %s is in the keytab but not one of kerberos.principals", ErrPrincipalNotAllowed, quote(service.String()))
		}
		return Principal{}, true, fmt.Errorf("%w: the keytab has no AES key for %s", ErrNoAESKey, quote(service.String()))
	}
	if p, found, err := match(false); found {
		return p, err
	}
	if p, found, err := match(true); found {
		return p, err
	}
	return Principal{}, fmt.Errorf("%w: %s is not in the keytab (an alias is not enough: name the keytab's principal)", ErrNoKey, quote(service.String()))
}
