// Package krbtest gives tests of the packages above gssapi a real Kerberos
// setting: one throwaway MIT realm per test binary (testenv), a keytab for
// rcmd/localhost and socks/localhost, users with passwords, and contexts
// established by our initiator and acceptor through real tickets.
package krbtest

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/testenv"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
)

// Users created in every realm, with their passwords.
var Users = map[string]string{"alice": "alice-password-1", "bob": "bob-password-1"}

// Services created in every realm and exported to Env.Keytab.
var Services = []string{"rcmd/localhost", "socks/localhost"}

// Env is a running realm with its keytab.
type Env struct {
	Realm  *testenv.Realm
	Keytab string // path
}

// Shared holds one realm per test binary. Create it as a package variable
// of the test and Close it from TestMain.
type Shared struct {
	once sync.Once
	env  *Env
	err  error
	opts testenv.Options
}

// NewShared returns a lazily started realm with opts.
func NewShared(opts testenv.Options) *Shared { return &Shared{opts: opts} }

// Get starts the realm on first use (skipping, or failing under CI=true,
// when the MIT tools are missing).
func (s *Shared) Get(tb testing.TB) *Env {
	tb.Helper()
	testenv.Require(tb)
	s.once.Do(func() { s.env, s.err = start(s.opts) })
	if s.err != nil {
		tb.Fatalf("MIT realm: %v", s.err)
	}
	return s.env
}

// Run runs the tests and stops the realm: func TestMain(m *testing.M) {
// os.Exit(shared.Run(m)) }.
func (s *Shared) Run(m *testing.M) int {
	defer s.Close()
	return m.Run()
}

// Close stops the realm if it was started.
func (s *Shared) Close() {
	if s.env != nil {
		s.env.Realm.Close()
	}
}

func start(opts testenv.Options) (*Env, error) {
	r, err := testenv.Start(opts)
	if err != nil {
		return nil, err
	}
	e := &Env{Realm: r, Keytab: filepath.Join(r.Dir, "gssocks.keytab")}
	for u, pw := range Users {
		if err := r.AddUser(u, pw); err != nil {
			r.Close()
			return nil, err
		}
	}
	for _, s := range Services {
		if err := r.AddService(s); err != nil {
			r.Close()
			return nil, err
		}
	}
	if err := r.ExportKeytab(e.Keytab, Services...); err != nil {
		r.Close()
		return nil, err
	}
	return e, nil
}

// Acceptor returns a new acceptor on the realm's keytab.
func (e *Env) Acceptor(tb testing.TB, cfg gssapi.AcceptorConfig) *gssapi.Acceptor {
	tb.Helper()
	kt, err := gssapi.LoadKeytab(e.Keytab)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Keytab = kt
	a, err := gssapi.NewAcceptor(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// Initiator logs user in with gokrb5 (session key of enctype, an MIT name
// such as "aes256-cts-hmac-sha1-96"; "" for the default) and returns an
// initiator for service with its initial token.
func (e *Env) Initiator(tb testing.TB, user, service, enctype string) (*gssapi.Initiator, []byte) {
	tb.Helper()
	cfg, err := e.InitiatorConfig(user, service, enctype)
	if err != nil {
		tb.Fatal(err)
	}
	in, tok, err := gssapi.NewInitiator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return in, tok
}

// InitiatorConfig gets a service ticket for user.
func (e *Env) InitiatorConfig(user, service, enctype string) (gssapi.InitiatorConfig, error) {
	var encs []string
	if enctype != "" {
		encs = []string{enctype}
	}
	path, err := e.Realm.ClientConfig(encs...)
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	kcfg, err := config.Load(path)
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	pw, ok := Users[user]
	if !ok {
		return gssapi.InitiatorConfig{}, fmt.Errorf("krbtest: no user %q", user)
	}
	cl := client.NewWithPassword(user, e.Realm.Name, pw, kcfg, client.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("krbtest: login %s: %w", user, err)
	}
	tkt, key, err := cl.GetServiceTicket(service)
	if err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("krbtest: ticket for %s: %w", service, err)
	}
	return gssapi.InitiatorConfig{Client: gssapi.Principal{Name: user, Realm: e.Realm.Name}, Ticket: tkt, SessionKey: key}, nil
}

// Pair establishes a context between our initiator (as user) and our
// acceptor without a network, for tests of the layers above.
func (e *Env) Pair(tb testing.TB, user, enctype string) (ini, acc *gssapi.Context) {
	tb.Helper()
	in, tok := e.Initiator(tb, user, "rcmd/localhost", enctype)
	acc, rep, err := e.Acceptor(tb, gssapi.AcceptorConfig{}).Accept(tok, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		tb.Fatal(err)
	}
	ini, err = in.Complete(rep)
	if err != nil {
		tb.Fatal(err)
	}
	return ini, acc
}
