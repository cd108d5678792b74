package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
)

// Options configure a Dialer made by New. Only Gateway is required: the
// zero value of every other field is the default a user on a Kerberos
// workstation wants (their ticket cache, /etc/krb5.conf,
// confidentiality).
type Options struct {
	// Gateway is the gateway's "host:port".
	Gateway string

	// ServicePrincipal is the gateway's Kerberos principal. "" asks
	// rcmd/<gateway host> with the host canonicalised as MIT's library
	// does (forward lookup, then reverse lookup of the address, unless
	// krb5.conf sets dns_canonicalize_hostname or rdns to false). A bare
	// service name ("socks", the RFC 1961 form) is combined with that
	// host; "service@host" canonicalises host; a name with a slash
	// ("rcmd/gw.example.com", optionally "@REALM") is used as written.
	ServicePrincipal string

	// Credentials, by precedence: Password (with Principal), Keytab (with
	// Principal), else the ticket cache CCache.
	//
	// With a password or keytab the Dialer runs the AS exchange itself
	// and renews or re-acquires the ticket-granting ticket before it
	// expires, for programs that run for days. With a ticket cache it
	// reads the TGT from it (again whenever the file changes, e.g. after
	// kinit) and renews it while it is renewable; renewals stay in memory,
	// the file is not written.
	Principal string // "alice" (default_realm) or "alice@EXAMPLE.COM"
	Password  string
	Keytab    string // path, or "FILE:path"
	// CCache is the ticket cache name: "FILE:/path", a plain path,
	// "DIR:/dir" (the collection's primary cache) or "DIR::/dir/tktX".
	// Default: $KRB5CCNAME, else default_ccache_name of krb5.conf, else
	// FILE:/tmp/krb5cc_<uid>. KEYRING:, KCM:, API: and MSLSA: caches
	// cannot be read: New fails with a *NoCredentialsError telling how
	// to use a file cache.
	CCache string

	// Krb5Conf is the krb5.conf to use. Default: the first file of
	// $KRB5_CONFIG that exists, else /etc/krb5.conf.
	Krb5Conf string

	// Level is the protection level to ask for (RFC 1961 §4): integrity
	// or confidentiality; the zero value asks confidentiality. A gateway
	// may grant more than asked.
	Level encap.Level
	// MinLevel is the lowest level this client accepts; the zero value
	// means Level. A gateway that grants less ends the session with a
	// *LevelError.
	MinLevel encap.Level
	// AcceptClear makes level 0 acceptable: a gateway may answer
	// authentication only, after which the request and the data flow
	// unprotected (Dante's and curl's level 0, not in RFC 1961).
	AcceptClear bool
	// AskClear asks level 0 (and accepts any level): authentication
	// without protection, for gateways that allow nothing else.
	AskClear bool
	// NEC sends the protection-level message unwrapped (the NEC
	// reference implementation's form). Only for gateways that need it:
	// an attacker on the path can change the level.
	NEC bool

	// Now is the clock for Kerberos time stamps and ticket lifetimes
	// (default time.Now).
	Now func() time.Time
	// Resolver canonicalises the gateway's host name (default
	// net.DefaultResolver).
	Resolver *net.Resolver
	// Dial opens the connections to the gateway and the KDCs (default a
	// net.Dialer).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Getenv reads KRB5CCNAME and KRB5_CONFIG (default os.Getenv).
	Getenv func(string) string
}

// Dialer reaches destinations through a SOCKS5 gateway with GSS-API
// authentication (RFC 1961): TCP with DialContext (CONNECT), UDP with
// ListenPacket (UDP ASSOCIATE) and inbound TCP with Listen (BIND). Its
// DialContext has the shape of golang.org/x/net/proxy.ContextDialer.
//
// A Dialer from New is safe for concurrent use; Close stops its ticket
// renewal. A Dialer literal with Proxy and Config works too (the
// low-level form the gateway's tests use), without renewal.
type Dialer struct {
	Proxy  string
	Config Config

	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	creds   *credSource
	conf    *krb5Conf
	opts    Options
	stop    context.CancelFunc
	spnMu   sync.Mutex
	spns    []servicePrincipal
	spnOK   int // index of the principal that worked
	closeMu sync.Once
}

// New checks opts, reads krb5.conf and the credentials' source (the
// ticket cache is read at the first dial, or by Login) and returns a
// Dialer. It contacts no KDC and no gateway.
func New(opts Options) (*Dialer, error) {
	if opts.Gateway == "" {
		return nil, errors.New("client: Options.Gateway is required (host:port)")
	}
	if _, _, err := net.SplitHostPort(opts.Gateway); err != nil {
		return nil, fmt.Errorf("client: gateway address %q: %w", opts.Gateway, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = d.DialContext
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	want, accept, err := levels(opts)
	if err != nil {
		return nil, err
	}
	conf, err := loadKrb5Conf(opts.Krb5Conf, opts.Getenv)
	if err != nil {
		return nil, err
	}
	k := &kdc{conf: conf, now: opts.Now, dialer: opts.Dial}
	var src *credSource
	switch {
	case opts.Password != "":
		if opts.Principal == "" {
			return nil, errors.New("client: Options.Password needs Options.Principal")
		}
		src, err = newSecretSource(k, opts.Principal, secret{password: opts.Password})
	case opts.Keytab != "":
		if opts.Principal == "" {
			return nil, errors.New("client: Options.Keytab needs Options.Principal")
		}
		kt, kerr := loadKeytab(opts.Keytab)
		if kerr != nil {
			return nil, kerr
		}
		src, err = newSecretSource(k, opts.Principal, secret{keytab: kt})
	default:
		src, err = newCCacheSource(k, opts.CCache, opts.Getenv)
	}
	if err != nil {
		return nil, err
	}
	d := &Dialer{Proxy: opts.Gateway, dial: opts.Dial, creds: src, conf: conf, opts: opts}
	d.Config = Config{Level: want, AcceptLevels: accept, NEC: opts.NEC, Ticket: d.ticket}
	ctx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	go src.refreshLoop(ctx)
	return d, nil
}

// levels derives the level to ask and the levels accepted.
func levels(o Options) (encap.Level, []encap.Level, error) {
	want, min := o.Level, o.MinLevel
	if want == encap.LevelClear {
		want = encap.LevelConfidentiality
	}
	if min == encap.LevelClear {
		min = want
	}
	if want > encap.LevelConfidentiality || min > encap.LevelConfidentiality {
		return 0, nil, fmt.Errorf("client: protection level %s is not supported (use integrity or confidentiality, AskClear or AcceptClear)", max(want, min))
	}
	if min > want {
		return 0, nil, fmt.Errorf("client: MinLevel %s is above Level %s", min, want)
	}
	switch {
	case o.AskClear:
		want, min = encap.LevelClear, encap.LevelClear
	case o.AcceptClear:
		min = encap.LevelClear
	}
	var accept []encap.Level
	for l := min; l <= encap.LevelConfidentiality; l++ {
		accept = append(accept, l)
	}
	return want, accept, nil
}

// ticket is the Config.Ticket of a Dialer from New: a service ticket for
// the gateway's principal, trying the next candidate principal (krb5.conf
// dns_canonicalize_hostname = fallback) when the KDC does not know one.
func (d *Dialer) ticket(ctx context.Context) (gssapi.InitiatorConfig, error) {
	spns, first, err := d.servicePrincipals(ctx)
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	var lastErr error
	for i := range spns {
		idx := (first + i) % len(spns)
		p := spns[idx]
		t, err := d.creds.serviceTicket(ctx, p.name, p.realmOf(d.conf, ""))
		var pe *PrincipalError
		if errors.As(err, &pe) && pe.AtKDC {
			lastErr = err
			continue
		}
		if err != nil {
			return gssapi.InitiatorConfig{}, err
		}
		d.spnMu.Lock()
		d.spnOK = idx
		d.spnMu.Unlock()
		return gssapi.InitiatorConfig{
			Client:     gssapi.Principal{Name: t.client.PrincipalNameString(), Realm: t.realm},
			Ticket:     t.tkt,
			SessionKey: t.key,
			Now:        d.opts.Now,
		}, nil
	}
	return gssapi.InitiatorConfig{}, lastErr
}

func (d *Dialer) servicePrincipals(ctx context.Context) ([]servicePrincipal, int, error) {
	d.spnMu.Lock()
	defer d.spnMu.Unlock()
	if d.spns == nil {
		host, _, _ := net.SplitHostPort(d.Proxy)
		spns, err := servicePrincipals(ctx, d.opts.ServicePrincipal, host, d.conf, d.opts.Resolver)
		if err != nil {
			return nil, 0, err
		}
		d.spns = spns
	}
	return d.spns, d.spnOK, nil
}

// ServicePrincipal returns the gateway principal the Dialer asks tickets
// for ("rcmd/gw.example.com"), canonicalising the host on first use.
func (d *Dialer) ServicePrincipal(ctx context.Context) (string, error) {
	if d.conf == nil {
		return "", errors.New("client: ServicePrincipal needs a Dialer from New")
	}
	spns, i, err := d.servicePrincipals(ctx)
	if err != nil {
		return "", err
	}
	return spns[i].String(), nil
}

// Login acquires the credentials now (the AS exchange for a password or
// keytab, reading the ticket cache otherwise) instead of at the first
// dial, so that a program can report a credential problem at start.
func (d *Dialer) Login(ctx context.Context) error {
	if d.creds == nil {
		return errors.New("client: Login needs a Dialer from New")
	}
	return d.creds.login(ctx)
}

// TGT describes the ticket-granting ticket the Dialer holds, if any.
func (d *Dialer) TGT() (TicketInfo, bool) {
	if d.creds == nil {
		return TicketInfo{}, false
	}
	return d.creds.info()
}

// Close stops the Dialer's ticket renewal. Connections already made stay
// open.
func (d *Dialer) Close() error {
	d.closeMu.Do(func() {
		if d.stop != nil {
			d.stop()
		}
	})
	return nil
}

func (d *Dialer) open(ctx context.Context) (*Session, error) {
	dial := d.dial
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	return open(ctx, dial, d.Proxy, d.Config)
}

// Dial is DialContext without a context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address ("host:port"; a host name is sent to
// the gateway to resolve) through the gateway (RFC 1928 CONNECT) and
// returns the connection carrying the destination's data, protected at
// the negotiated level. network is "tcp", "tcp4" or "tcp6". ctx bounds
// the ticket requests, the handshake and the gateway's connect.
//
// Errors: *NoCredentialsError, *LoginError, *PrincipalError,
// *ClockSkewError, *KDCUnreachableError, *KDCError (getting a ticket);
// *AuthError, *LevelError (with the gateway); *ReplyError (the gateway
// refused or failed the CONNECT).
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("client: network %q not supported (tcp, tcp4, tcp6; use ListenPacket for UDP)", network)
	}
	dest, err := socks5.ParseHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("client: destination: %w", err)
	}
	s, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Conn.SetDeadline(time.Now()) })
	_, err = s.Request(socks5.CmdConnect, dest)
	if !stop() {
		s.Close()
		return nil, fmt.Errorf("client: connect to %s: %w", address, ctx.Err())
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s.rw, nil
}
