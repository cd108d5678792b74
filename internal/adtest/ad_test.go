package adtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv/samba"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
)

var localhost = netip.MustParseAddr("127.0.0.1")

// ticket logs user in with gokrb5 against the domain's KDC and gets a
// service ticket for spn.
func ticket(info *samba.Info, user, spn string) (gssapi.InitiatorConfig, error) {
	kcfg, err := krbconfig.Load(info.Krb5Conf)
	if err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("krb5.conf: %w", err)
	}
	pw, ok := info.Users[strings.ToLower(user)] // AD account names are case-insensitive
	if !ok {
		return gssapi.InitiatorConfig{}, fmt.Errorf("no user %q in the domain", user)
	}
	// Without DisablePAFXFAST gokrb5 answers the KDC's PREAUTH_REQUIRED
	// (which offers FAST) with a FAST armor it cannot build.
	cl := krbclient.NewWithPassword(user, info.Realm, pw, kcfg, krbclient.DisablePAFXFAST(true))
	defer cl.Destroy()
	if err := cl.Login(); err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("login %s: %w", user, err)
	}
	tkt, key, err := cl.GetServiceTicket(spn)
	if err != nil {
		return gssapi.InitiatorConfig{}, fmt.Errorf("ticket for %s: %w", spn, err)
	}
	return gssapi.InitiatorConfig{Client: gssapi.Principal{Name: user, Realm: info.Realm}, Ticket: tkt, SessionKey: key}, nil
}

// newAcceptor is an acceptor on the keytab exported from the domain.
func newAcceptor(t *testing.T, info *samba.Info) *gssapi.Acceptor {
	t.Helper()
	kt, err := gssapi.LoadKeytab(info.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{Keytab: kt, Principals: []string{info.Service}})
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// establish runs our initiator (on a gokrb5 ticket of user) against our
// acceptor, without a network.
func establish(t *testing.T, info *samba.Info, acc *gssapi.Acceptor, user string) (ini, ctx *gssapi.Context) {
	t.Helper()
	cfg, err := ticket(info, user, info.Service)
	if err != nil {
		t.Fatal(err)
	}
	in, tok, err := gssapi.NewInitiator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, rep, err := acc.Accept(tok, localhost)
	if err != nil {
		t.Fatalf("accept %s's AP-REQ: %v", user, err)
	}
	ini, err = in.Complete(rep)
	if err != nil {
		t.Fatalf("complete %s's context: %v", user, err)
	}
	return ini, ctx
}

// identity is the policy identity of an accepted context, as the gateway
// builds it: canonical, from the ticket and its verified PAC.
func identity(t *testing.T, ctx *gssapi.Context) policy.Identity {
	t.Helper()
	c := ctx.Client()
	pc := policy.Client{Name: c.Name, Realm: c.Realm}
	if ad := ctx.AD(); ad != nil {
		pc.PAC, pc.Account, pc.UserSID, pc.GroupSIDs = true, ad.LogonName, ad.UserSID, ad.GroupSIDs
	}
	id, err := policy.NewIdentity(pc, policy.Realm{})
	if err != nil {
		t.Fatalf("identity of %s: %v", c, err)
	}
	return id
}

// TestPAC checks what our acceptor reads from the PAC of tickets issued
// by Samba's Heimdal KDC: the user's SID, Domain Users, the direct group
// and the group it is nested in.
func TestPAC(t *testing.T) {
	info := domain(t)
	acc := newAcceptor(t, info)
	for _, c := range []struct {
		user      string
		in, notIn []string // group names
	}{
		{"alice", []string{"vpn-users", "staff"}, nil},
		{"bob", nil, []string{"vpn-users", "staff"}},
	} {
		t.Run(c.user, func(t *testing.T) {
			ini, ctx := establish(t, info, acc, c.user)
			if got, want := ctx.Client(), (gssapi.Principal{Name: c.user, Realm: info.Realm}); got != want {
				t.Errorf("client %s, want %s", got, want)
			}
			if err := ctx.PACError(); err != nil {
				t.Fatalf("PACError: %v", err)
			}
			ad := ctx.AD()
			if ad == nil {
				t.Fatal("AD() is nil: the ticket from the AD KDC has no usable PAC")
			}
			t.Logf("%s: enctype %s, kvno %d, PAC: user %s, logon name %q, domain %q, groups %v",
				c.user, gssapi.EnctypeName(ctx.Enctype()), ctx.KVNO(), ad.UserSID, ad.LogonName, ad.Domain, ad.GroupSIDs)
			if ad.UserSID != info.UserSID(c.user) {
				t.Errorf("UserSID %s, want %s", ad.UserSID, info.UserSID(c.user))
			}
			if ad.LogonName != c.user || ad.Domain != info.Domain {
				t.Errorf("logon name %q, domain %q; want %q, %q", ad.LogonName, ad.Domain, c.user, info.Domain)
			}
			if !slices.Contains(ad.GroupSIDs, info.DomainUsersSID()) {
				t.Errorf("groups %v lack Domain Users %s", ad.GroupSIDs, info.DomainUsersSID())
			}
			for _, g := range c.in {
				if !slices.Contains(ad.GroupSIDs, info.GroupSID(g)) {
					t.Errorf("groups %v lack %s %s", ad.GroupSIDs, g, info.GroupSID(g))
				}
			}
			for _, g := range c.notIn {
				if slices.Contains(ad.GroupSIDs, info.GroupSID(g)) {
					t.Errorf("groups %v hold %s %s", ad.GroupSIDs, g, info.GroupSID(g))
				}
			}
			if slices.Contains(ad.GroupSIDs, ad.UserSID) {
				t.Errorf("groups %v hold the user's own SID", ad.GroupSIDs)
			}

			// The context keys agree both ways.
			msg := []byte("through a Heimdal session key")
			tok, err := ini.Wrap(nil, msg, true)
			if err != nil {
				t.Fatal(err)
			}
			got, conf, err := ctx.Unwrap(nil, tok)
			if err != nil || !conf || !bytes.Equal(got, msg) {
				t.Fatalf("unwrap: %q conf=%v %v", got, conf, err)
			}
			tok, err = ctx.Wrap(nil, msg, false)
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err = ini.Unwrap(nil, tok); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("unwrap at the initiator: %q %v", got, err)
			}
		})
	}
}

// policyConfig is a gssocks configuration naming the domain's groups by
// SID.
const policyConfig = `
listen = ["127.0.0.1:1080"] # not used: the tests listen on 127.0.0.1:0
kerberos {
  keytab     = %q
  principals = [%q]
}
timeouts {
  negotiation = "10s"
}
group "vpn"          { sids = [%q] }
group "staff"        { sids = [%q] }
group "domain-users" { sids = [%q] }

rule "vpn" {
  principals   = ["*@%s"]
  groups       = ["vpn"]
  destinations = ["127.0.0.0/8"]
}
rule "staff-web" {
  groups       = ["staff"]
  destinations = ["10.0.0.0/8"]
  ports        = ["80"]
}
rule "users-docs" {
  groups       = ["domain-users"]
  destinations = ["192.0.2.0/24"]
  ports        = ["443"]
}
`

// policySource is policyConfig for the domain.
func policySource(info *samba.Info) string {
	return fmt.Sprintf(policyConfig, info.Keytab, info.Service,
		info.GroupSID("vpn-users"), info.GroupSID("staff"), info.DomainUsersSID(), info.Realm)
}

// loadPolicy writes the configuration to a file and loads it the way the
// gateway does, keytab check included (the keytab exported from Samba).
func loadPolicy(t *testing.T, info *samba.Info) *config.Config {
	t.Helper()
	src := policySource(info)
	path := filepath.Join(t.TempDir(), "gssocks.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, files, diags := config.Loader{}.Load(path)
	if len(diags) > 0 {
		var b strings.Builder
		config.FormatDiagnostics(&b, files, diags)
		if diags.HasErrors() {
			t.Fatalf("configuration:\n%s", b.String())
		}
		t.Logf("configuration warnings:\n%s", b.String())
	}
	return cfg
}

// TestPolicy decides requests for identities taken from real contexts:
// alice is allowed by her group and by the group it is nested in, bob only
// by Domain Users, and without the PAC's groups alice is denied.
func TestPolicy(t *testing.T) {
	info := domain(t)
	cfg := loadPolicy(t, info)
	acc := newAcceptor(t, info)
	ids := map[string]policy.Identity{}
	for _, u := range []string{"alice", "bob"} {
		_, ctx := establish(t, info, acc, u)
		ids[u] = identity(t, ctx)
	}
	noPAC := ids["alice"]
	noPAC.UserSID, noPAC.GroupSIDs, noPAC.GroupsKnown = "", nil, false
	ids["alice-without-pac"] = noPAC

	for _, c := range []struct {
		who, dest string
		port      uint16
		allow     bool
		rule      string
	}{
		{"alice", "127.0.0.1", 8080, true, "vpn"},
		{"alice", "10.1.2.3", 80, true, "staff-web"}, // staff only through vpn-users
		{"alice", "10.1.2.3", 22, false, ""},
		{"alice", "192.0.2.10", 443, true, "users-docs"},
		{"bob", "127.0.0.1", 8080, false, ""},
		{"bob", "10.1.2.3", 80, false, ""},
		{"bob", "192.0.2.10", 443, true, "users-docs"},
		{"alice-without-pac", "127.0.0.1", 8080, false, ""},
	} {
		t.Run(fmt.Sprintf("%s/%s:%d", c.who, c.dest, c.port), func(t *testing.T) {
			req := policy.Request{
				Identity: ids[c.who],
				Source:   localhost,
				Command:  socks5.CmdConnect,
				Addrs:    []netip.Addr{netip.MustParseAddr(c.dest)},
				Port:     c.port,
				Level:    policy.LevelConfidentiality,
			}
			d, misses := cfg.Engine.Explain(req)
			if d.Allow != c.allow || d.Rule != c.rule {
				t.Fatalf("%s: allow=%v rule %q (%s), want allow=%v rule %q; misses %v", req, d.Allow, d.Rule, d.Reason, c.allow, c.rule, misses)
			}
		})
	}

	// Level negotiation, before the request: bob has an allow rule for
	// his identity (Domain Users), alice without her PAC has none.
	if _, err := cfg.Engine.ChooseLevel(ids["bob"], localhost, policy.LevelConfidentiality, false); err != nil {
		t.Errorf("ChooseLevel for bob: %v", err)
	}
	if ch, err := cfg.Engine.ChooseLevel(ids["alice-without-pac"], localhost, policy.LevelConfidentiality, false); err == nil {
		t.Errorf("ChooseLevel for alice without the PAC's groups: %+v, want a refusal", ch)
	}
}

// TestGateway runs the gateway with the policy and our client end to end
// inside the namespace: alice's CONNECT to an echo server is allowed by
// her group at confidentiality, bob's is refused with REP 02, and the
// audit names the rules.
func TestGateway(t *testing.T) {
	info := domain(t)
	gw := testutil.StartGateway(t, policySource(info))
	proxy := gw.Addr
	echo := testutil.EchoServer(t)
	dest, err := socks5.ParseHostPort(echo)
	if err != nil {
		t.Fatal(err)
	}
	config := func(user string) client.Config {
		return client.Config{
			Level: encap.LevelConfidentiality,
			Ticket: func(context.Context) (gssapi.InitiatorConfig, error) {
				return ticket(info, user, info.Service)
			},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("alice", func(t *testing.T) {
		s, err := client.Open(ctx, proxy, config("alice"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Level != encap.LevelConfidentiality {
			t.Fatalf("level %s, want confidentiality", s.Level)
		}
		if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 100000)
		rand.Read(data)
		errc := make(chan error, 1)
		go func() {
			_, err := s.Stream().Write(data)
			if err == nil {
				err = s.Stream().(interface{ CloseWrite() error }).CloseWrite()
			}
			errc <- err
		}()
		got, err := io.ReadAll(s.Stream())
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("echo returned %d bytes, want the %d sent", len(got), len(data))
		}
	})

	t.Run("bob", func(t *testing.T) {
		d := client.Dialer{Proxy: proxy, Config: config("bob")}
		c, err := d.DialContext(ctx, "tcp", echo)
		if err == nil {
			c.Close()
			t.Fatal("bob's CONNECT succeeded")
		}
		var re *client.ReplyError
		if !errors.As(err, &re) || re.Reply != socks5.ReplyNotAllowed {
			t.Fatalf("got %v, want reply %s", err, socks5.ReplyNotAllowed)
		}
	})

	// The audit records, written as the sessions end, carry what the PAC
	// said: enough to replay the decision with gssocks explain.
	principal := func(p string) func(audit.Record) bool {
		return func(r audit.Record) bool { return r.Principal == p }
	}
	alice := gw.WaitRecord(t, principal("alice@"+info.Realm))
	bob := gw.WaitRecord(t, principal("bob@"+info.Realm))
	for _, c := range []struct {
		user      string
		r         audit.Record
		rule      string
		reply     socks5.Reply
		end       audit.EndReason
		in, notIn []string // group SIDs
	}{
		{"alice", alice, "vpn", socks5.ReplySucceeded, audit.EndCompleted,
			[]string{info.GroupSID("vpn-users"), info.GroupSID("staff"), info.DomainUsersSID()}, nil},
		{"bob", bob, "(default deny)", socks5.ReplyNotAllowed, audit.EndDenied,
			[]string{info.DomainUsersSID()}, []string{info.GroupSID("vpn-users"), info.GroupSID("staff")}},
	} {
		r := c.r
		service := info.Service + "@" + info.Realm
		if r.Realm != info.Realm || r.Service != service || r.UserSID != info.UserSID(c.user) {
			t.Errorf("%s: realm %q, service %q, user SID %q; want %q, %q, %q", c.user, r.Realm, r.Service, r.UserSID, info.Realm, service, info.UserSID(c.user))
		}
		if r.Rule != c.rule || r.Level != "confidentiality" || !r.Replied || r.Reply != uint8(c.reply) || r.EndReason != c.end {
			t.Errorf("%s: %v", c.user, r.Fields())
		}
		for _, sid := range c.in {
			if !slices.Contains(r.GroupSIDs, sid) {
				t.Errorf("%s: group SIDs %v lack %s", c.user, r.GroupSIDs, sid)
			}
		}
		for _, sid := range c.notIn {
			if slices.Contains(r.GroupSIDs, sid) {
				t.Errorf("%s: group SIDs %v hold %s", c.user, r.GroupSIDs, sid)
			}
		}
	}
}
