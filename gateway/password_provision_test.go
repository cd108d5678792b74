package gateway_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/hashicorp/hcl/v2"
)

// TestPasswordServiceProvision: password_auth.service must be a principal
// the SOCKS acceptor opens tickets for with an AES key, or every right
// password would end not_validated. With kerberos.principals unset (every
// keytab principal accepted), a principal the keytab lacks is refused by
// check (config, at the attribute's file:line:col) and by Provision
// alike; a case variant of a keytab principal is resolved to the keytab's
// spelling, and a real login through it is validated.
func TestPasswordServiceProvision(t *testing.T) {
	env := realm.Get(t)
	kt := testutil.CopyKeytab(t, env.Keytab, "", 0o600)
	path := filepath.Join(t.TempDir(), "gssocks.hcl")
	write := func(service, kerberosExtra string) {
		src := conf(kt, "1", "password_auth {\n  sources   = [\"127.0.0.0/8\"]\n  krb5_conf = \""+env.Realm.Krb5Conf+"\"\n  service   = \""+service+"\"\n}\n")
		if kerberosExtra != "" {
			src = strings.Replace(src, "keytab = ", kerberosExtra+"\n  keytab = ", 1)
		}
		writeFile(t, path, "listen = [\"127.0.0.1:1080\"]\n"+src)
	}
	for _, c := range []struct {
		name, service, kerberos string
		diag, pos               string
		sentinel                error
	}{
		{"absent from the keytab", "rcmd/absent@EXAMPLE.TEST", "", "Password service not in keytab", "gssocks.hcl:14,15", gssapi.ErrNoKey},
		{"another realm", "rcmd/localhost@OTHER.TEST", "", "Password service not in keytab", "gssocks.hcl:14,15", gssapi.ErrNoKey},
		{"not a configured principal", "socks/localhost@EXAMPLE.TEST", `principals = ["rcmd/localhost"]`, "Password service not accepted", "gssocks.hcl:15,15", gssapi.ErrPrincipalNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(c.service, c.kerberos)
			_, _, diags := config.Loader{}.Load(path)
			found := false
			for _, d := range diags {
				found = found || d.Severity == hcl.DiagError && d.Summary == c.diag && d.Subject != nil && strings.Contains(d.Subject.String(), c.pos)
			}
			if !found {
				t.Errorf("check: %v, want the error %q at %s", diags, c.diag, c.pos)
			}
			cfg := load(t, path, config.Loader{SkipKeytabCheck: true})
			_, err := gateway.Provision(cfg, gateway.Options{})
			if !errors.Is(err, gateway.ErrPasswordAuth) || !errors.Is(err, c.sentinel) {
				t.Fatalf("Provision: %v, want %v and %v", err, gateway.ErrPasswordAuth, c.sentinel)
			}
		})
	}

	write("RCMD/localhost@EXAMPLE.TEST", "")
	rt, err := gateway.Provision(load(t, path, config.Loader{}), gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pa := rt.Settings.Password
	if got := pa.Verifier.Service().String(); got != "rcmd/localhost@EXAMPLE.TEST" {
		t.Fatalf("service %q, want the keytab's spelling", got)
	}
	ctx, err := pa.Verifier.Verify(rt.Settings.Acceptor, "alice", "alice-password-1", netip.MustParseAddr("127.0.0.1"))
	if err != nil || ctx.Client().String() != "alice@EXAMPLE.TEST" {
		t.Fatalf("login through the resolved service: %v", err)
	}
}
