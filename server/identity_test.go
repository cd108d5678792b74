package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/socks5"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
)

// addUser adds a principal to the shared test realm (once: a second call
// finds it there).
func addUser(t *testing.T, env *krbtest.Env, name, password string) {
	t.Helper()
	if err := env.Realm.AddUser(name, password); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

// login logs name in with password and gets a service ticket for
// rcmd/localhost, asking for tickets of lifetime (0: the realm's
// default), as `kinit -l` does.
func login(env *krbtest.Env, name, password string, lifetime time.Duration) (gssapi.InitiatorConfig, error) {
	kcfg, err := krbconfig.Load(env.Realm.Krb5Conf)
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	if lifetime > 0 {
		kcfg.LibDefaults.TicketLifetime = lifetime
	}
	cl := krbclient.NewWithPassword(name, env.Realm.Name, password, kcfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	tkt, key, err := cl.GetServiceTicket("rcmd/localhost")
	if err != nil {
		return gssapi.InitiatorConfig{}, err
	}
	return gssapi.InitiatorConfig{Client: gssapi.Principal{Name: name, Realm: env.Realm.Name}, Ticket: tkt, SessionKey: key}, nil
}

// configWith is a client configuration on one fixed ticket.
func configWith(icfg gssapi.InitiatorConfig, lvl encap.Level) client.Config {
	return client.Config{Level: lvl, Ticket: func(context.Context) (gssapi.InitiatorConfig, error) { return icfg, nil }}
}

// TestCanonicalIdentity: in a realm whose names are case-insensitive (as
// Active Directory's are; here an MIT realm declared so), ALICE is alice:
// a rule denying alice denies ALICE, the per-principal limit counts them
// together, and the record shows the canonical name and the ticket's
// spelling. The server used to decide and count on the ticket's spelling.
func TestCanonicalIdentity(t *testing.T) {
	g := startGateway(t, `
realm "EXAMPLE.TEST" {
  case_insensitive_names = true
}
rule "deny-alice-port-1" {
  action     = "deny"
  principals = ["alice@EXAMPLE.TEST"]
  ports      = ["1"]
}
rule "one-each" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  max_sessions_per_principal = 1
}`)
	addUser(t, g.env, "ALICE", "ALICE-password-1")
	upper, err := login(g.env, "ALICE", "ALICE-password-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	echo := echoServer(t)

	// The deny rule written for alice denies ALICE.
	mark := g.mark()
	d := client.Dialer{Proxy: g.Addr, Config: configWith(upper, encap.LevelIntegrity)}
	_, err = d.DialContext(context.Background(), "tcp", "127.0.0.1:1")
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
		t.Fatalf("ALICE to port 1: %v, want a denial", err)
	}
	g.waitRecordFrom(t, mark, "ALICE denied as alice", func(r audit.Record) bool {
		return r.Rule == "deny-alice-port-1" && r.Principal == "alice@EXAMPLE.TEST" && r.PresentedPrincipal == "ALICE@EXAMPLE.TEST" &&
			r.Realm == "EXAMPLE.TEST" && r.EndReason == audit.EndDenied
	})

	// alice's session counts against ALICE's limit: one account.
	alice := client.Dialer{Proxy: g.Addr, Config: g.config("alice", encap.LevelIntegrity)}
	first, err := alice.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	mark = g.mark()
	if c, err := d.DialContext(context.Background(), "tcp", echo); !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
		if c != nil {
			c.Close()
		}
		t.Fatalf("ALICE while alice holds her one session: %v, want a denial", err)
	}
	g.waitRecordFrom(t, mark, "ALICE over alice's limit", func(r audit.Record) bool {
		return r.Principal == "alice@EXAMPLE.TEST" && r.PresentedPrincipal == "ALICE@EXAMPLE.TEST" &&
			r.EndReason == audit.EndDenied && strings.Contains(r.Detail, "more than 1 sessions for alice@EXAMPLE.TEST")
	})
	roundTrip(t, first, 100)
	// alice's own record has no presented name: the ticket spells it so.
	g.waitRecord(t, "alice's record", func(r audit.Record) bool {
		return r.Principal == "alice@EXAMPLE.TEST" && r.PresentedPrincipal == "" && r.Rule == "one-each" && r.EndReason == audit.EndCompleted
	})
}

// TestNoCanonicalName: a client whose ticket names it in the enterprise
// form (alice@corp.example, RFC 6806) without a PAC naming its account
// cannot be told apart from another spelling of some account: it is
// refused after authentication with the RFC 1961 abort, its record says
// why, and the gateway goes on serving.
func TestNoCanonicalName(t *testing.T) {
	g := startGateway(t, allowAll)
	// A principal whose one name component holds an "@", as an
	// enterprise name is written.
	addUser(t, g.env, `alice\@corp.example`, "enterprise-password-1")
	icfg, err := login(g.env, "alice@corp.example", "enterprise-password-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Open(context.Background(), g.Addr, configWith(icfg, encap.LevelIntegrity))
	if !errors.Is(err, encap.ErrAborted) {
		t.Fatalf("enterprise name without a PAC: %v, want the abort message", err)
	}
	r := g.waitRecord(t, "refused: no canonical name", func(r audit.Record) bool {
		return r.EndReason == audit.EndAuthFailed && strings.Contains(r.Detail, "no canonical client name")
	})
	if r.Principal != "" || r.PresentedPrincipal != "alice@corp.example@EXAMPLE.TEST" || r.Level != "none" || r.Replied {
		t.Fatalf("record %v", r.Fields())
	}
	waitLogLine(t, g, "refused: no canonical name for the client's account", "session_id="+r.SessionID)
	stillServing(t, g)
}
