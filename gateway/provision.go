package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/replay"
	"github.com/gssocks/gssocks/server"
	"github.com/hashicorp/go-hclog"
)

// Refusals of Provision, New and Reload; the error wraps one of them per
// problem found (errors.Join), and the cause.
var (
	// ErrKeytab: the keytab is missing, unreadable or not a keytab
	// (gssapi.ErrBadKeytab), or has no AES key for a configured principal
	// (gssapi.ErrNoAESKey).
	ErrKeytab = errors.New("unusable keytab")
	// ErrAudit: log.audit names a file that cannot be opened for
	// appending.
	ErrAudit = errors.New("cannot append to the audit file")
	// ErrListen: a listen address cannot be bound.
	ErrListen = errors.New("cannot listen")
	// ErrConfig: the configuration file has errors (Hangup).
	ErrConfig = errors.New("configuration has errors")
	// ErrPasswordAuth: password_auth is on but cannot work: no krb5.conf
	// or no KDC for its realm, no service principal to validate with.
	ErrPasswordAuth = errors.New("password_auth cannot verify passwords")
)

// Runtime is what one configuration provisions: the values a server runs
// with. Provision returns it for `check` to report on; it holds no open
// file or socket.
type Runtime struct {
	Config *config.Config
	// Keytab is the service keytab as loaded (keys inside: never log it).
	Keytab *gssapi.Keytab
	// Settings are the server settings new sessions would get.
	Settings server.Settings
	// AuditPath is where audit records go: log.audit, or "" for stderr.
	AuditPath string
}

// Provision builds everything cfg describes as New does, without serving
// and without creating anything: it loads the keytab and checks that it
// has an AES key for each configured principal, builds the acceptor,
// checks that the audit file can be opened for appending (without
// creating it), builds the loggers and the server settings, and with
// opts.Bind binds each listen address, and the metrics listener's, and
// closes it again. It is `gssocks
// check`: what it refuses, serve refuses. Without opts.Bind the addresses
// are not tried, since a running gateway holds its own port.
//
// The error joins one error per problem, each wrapping ErrKeytab,
// ErrAudit or ErrListen.
func Provision(cfg *config.Config, opts Options) (*Runtime, error) {
	if cfg == nil {
		return nil, errors.New("gateway: no configuration")
	}
	p, err := provision(cfg, provisionParams{
		check:  true,
		bind:   opts.Bind,
		listen: opts.listen(),
		replay: gssapi.NewReplayCacheWith(replay.LocalConfig(cfg.Kerberos.ReplayCache)),
		stderr: io.Discard,
	})
	if err != nil {
		return nil, err
	}
	// The store itself: a Redis client is built (password file read,
	// address parsed) but not contacted; serve pings it at start.
	rs, err := openReplayStore(cfg.Kerberos.ReplayCache, hclog.NewNullLogger())
	if err != nil {
		return nil, err
	}
	rs.close()
	return &p.rt, nil
}

// provisionParams say how far provision goes.
type provisionParams struct {
	check  bool // create nothing: check the audit path instead of opening it
	bind   bool // (check) bind each listen address (metrics too), then close it
	listen func(string) (net.Listener, error)
	replay gssapi.ReplayStore // shared by every acceptor of the process
	stderr io.Writer
	// keepAudit is the audit file in use, kept when log.audit names it
	// again (Reload).
	keepAudit *audit.File
}

// provisioned is a configuration built but not yet in force.
type provisioned struct {
	rt       Runtime
	log      hclog.Logger
	audit    auditOut
	openedBy bool // audit.file was opened here, and is closed by abandon
}

// abandon releases what provision opened, when the configuration does not
// go into force.
func (p *provisioned) abandon() {
	if p.openedBy {
		p.audit.file.Close()
	}
}

// provision is the one build path of check, serve and reload: config →
// keytab → acceptor → engine → log and audit sinks → server settings.
func provision(cfg *config.Config, pp provisionParams) (*provisioned, error) {
	if cfg == nil || cfg.Engine == nil {
		return nil, errors.New("gateway: no configuration (a Config from config.Load is required)")
	}
	var errs []error
	p := &provisioned{rt: Runtime{Config: cfg, AuditPath: cfg.Log.Audit}}

	kt, err := loadKeytab(cfg.Kerberos.Keytab, cfg.Kerberos.Principals)
	if err != nil {
		errs = append(errs, err)
	}
	var acc *gssapi.Acceptor
	if kt != nil {
		acc, err = gssapi.NewAcceptor(gssapi.AcceptorConfig{
			Keytab:      kt,
			Principals:  cfg.Kerberos.Principals,
			ClockSkew:   cfg.Kerberos.ClockSkew,
			ReplayCache: pp.replay,
			// Cross-realm and non-user clients (issue 11): fail closed
			// unless the kerberos block says otherwise.
			TrustedRealms:       cfg.Kerberos.TrustedRealms,
			AllowAnonymous:      cfg.Kerberos.AllowAnonymous,
			AllowServiceClients: cfg.Kerberos.AllowServiceClients,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrKeytab, err))
		}
	}

	httpAcc, err := httpAcceptor(cfg, kt, pp.replay)
	if err != nil {
		errs = append(errs, err)
	}

	var password *server.PasswordAuth
	if acc != nil && cfg.PasswordAuth.Enabled() {
		if password, err = passwordAuth(cfg, acc); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrPasswordAuth, err))
		}
	}

	var file *audit.File
	switch path := cfg.Log.Audit; {
	case path == "":
	case pp.keepAudit != nil && pp.keepAudit.Path() == path:
		file = pp.keepAudit
	default:
		// The same check for check and serve, so that check refuses what
		// serve would; serve then opens (and may create) the file.
		if err := checkAuditPath(path); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrAudit, err))
			break
		}
		if pp.check {
			break
		}
		if file, err = audit.OpenFile(path); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrAudit, err))
			break
		}
		p.openedBy = true
	}

	if pp.check && pp.bind {
		for _, a := range append(slices.Clone(cfg.Listen), cfg.HTTPListen...) {
			ln, err := pp.listen(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %w", ErrListen, err))
				continue
			}
			ln.Close()
		}
		// The metrics (and admin) listener too: New refuses to start
		// when it cannot bind it.
		if m := cfg.Metrics.Listen; m != "" {
			if ln, err := pp.listen(m); err != nil {
				errs = append(errs, fmt.Errorf("%w: metrics: %w", ErrListen, err))
			} else {
				ln.Close()
			}
		}
	}

	if len(errs) > 0 {
		if p.openedBy {
			file.Close()
		}
		return nil, errors.Join(errs...)
	}
	p.rt.Keytab = kt
	p.rt.Settings = server.Settings{
		Acceptor:     acc,
		HTTPAcceptor: httpAcc,
		Policy:       cfg.Engine,
		Timeouts:     serverTimeouts(cfg.Timeouts),
		MaxSessions:  cfg.Limits.MaxSessions,
		NoAuth:       cfg.NoAuth,
		SOCKS4:       cfg.NoAuthSOCKS4,
		Password:     password,
		UDPAdvertise: cfg.UDP.Advertise,

		MaxHandshakes:          cfg.Limits.MaxHandshakes,
		MaxHandshakesPerSource: cfg.Limits.MaxHandshakesPerSource,
	}
	p.log = NewLogger(cfg.Log, pp.stderr)
	p.audit = newAuditOut(cfg.Log, file, pp.stderr)
	return p, nil
}

// serverTimeouts is what the server takes of the configured timeouts
// (Shutdown is the process's: it bounds the drain on SIGTERM).
func serverTimeouts(t config.Timeouts) server.Timeouts {
	return server.Timeouts{Negotiation: t.Negotiation, Connect: t.Connect, Idle: t.Idle, Bind: t.Bind}
}

// passwordAuth builds the password verification of password_auth: the
// service principal tickets are asked for is password_auth.service (an
// accepted keytab principal with an AES key, gssapi.PasswordService), else
// the first keytab entry the acceptor opens tickets with (an AES key of a
// configured principal), with its realm; bare usernames are of
// password_auth.realm, else of that realm; user@REALM is accepted for the
// trusted realms too.
func passwordAuth(cfg *config.Config, acc *gssapi.Acceptor) (*server.PasswordAuth, error) {
	pa := cfg.PasswordAuth
	var service gssapi.Principal
	if pa.Service != "" {
		p, err := gssapi.ParsePrincipal(pa.Service)
		if err != nil {
			return nil, err
		}
		// The keytab as the acceptor reads it, whatever its other
		// principals lack (loadKeytab refused that already): the
		// service must be one whose tickets it opens, or every right
		// password would end not_validated.
		facts, _ := acc.KeytabFacts()
		if service, err = gssapi.PasswordService(facts, p); err != nil {
			return nil, fmt.Errorf("password_auth.service: %w", err)
		}
	} else {
		facts, err := acc.KeytabFacts()
		if err != nil {
			return nil, err
		}
		for _, f := range facts {
			if f.Accepted && f.Supported && f.Principal.Realm != "" {
				service = f.Principal
				break
			}
		}
		if service.Name == "" {
			return nil, errors.New("the keytab has no AES key of an accepted principal to validate service tickets with; set password_auth.service")
		}
	}
	v, err := gssapi.NewPasswordVerifier(gssapi.PasswordConfig{
		Krb5Conf:     pa.Krb5Conf,
		Service:      service,
		DefaultRealm: pa.Realm,
		Realms:       cfg.Kerberos.TrustedRealms,
	})
	if err != nil {
		return nil, err
	}
	return &server.PasswordAuth{
		Sources:                 pa.Sources,
		Verifier:                v,
		Timeout:                 pa.KDCTimeout,
		MaxFailuresPerSource:    pa.MaxFailuresPerSource,
		MaxFailuresPerPrincipal: pa.MaxFailuresPerPrincipal,
		FailureWindow:           pa.FailureWindow,
		MaxTracked:              pa.MaxTracked,
		MaxConcurrent:           pa.MaxConcurrent,
		CacheTTL:                pa.CacheTTL,
	}, nil
}
