package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/internal/testutil"
)

// TestCredentialSources dials through gssocks with each kind of
// credentials: a password and a keytab (our AS exchange), and ticket
// caches written by MIT's kinit: FILE:, a plain path, KRB5CCNAME, and a
// DIR: collection whose primary member is not the first.
func TestCredentialSources(t *testing.T) {
	gw := gssocksGateway(t).addr
	echo := testutil.EchoServer(t)
	dir := t.TempDir()
	fileCC := filepath.Join(dir, "krb5cc_file")
	kinit(t, "alice", "FILE:"+fileCC)
	collection := filepath.Join(dir, "collection")
	if err := os.Mkdir(collection, 0o700); err != nil {
		t.Fatal(err)
	}
	kinit(t, "alice", "DIR:"+collection)
	kinit(t, userRenew, "DIR:"+collection) // a second member, now primary
	primary, err := os.ReadFile(filepath.Join(collection, "primary"))
	if err != nil {
		t.Fatal(err)
	}
	members, _ := filepath.Glob(filepath.Join(collection, "tkt*"))
	if len(members) != 2 {
		t.Fatalf("collection holds %v", members)
	}
	var aliceMember string
	for _, m := range members {
		if filepath.Base(m) != strings.TrimSpace(string(primary)) {
			aliceMember = m
		}
	}

	for _, tc := range []struct {
		name string
		opts client.Options
		user string
	}{
		{"password", client.Options{Principal: "alice", Password: password("alice")}, "alice"},
		{"password with realm", client.Options{Principal: "alice@" + realmName, Password: password("alice")}, "alice"},
		{"keytab", client.Options{Principal: "alice", Keytab: peers.userKT}, "alice"},
		{"keytab FILE:", client.Options{Principal: userRenew, Keytab: "FILE:" + peers.userKT}, userRenew},
		{"ticket cache FILE:", client.Options{CCache: "FILE:" + fileCC}, "alice"},
		{"ticket cache path", client.Options{CCache: fileCC}, "alice"},
		{"KRB5CCNAME", client.Options{Getenv: getenv(map[string]string{"KRB5CCNAME": "FILE:" + fileCC})}, "alice"},
		{"DIR: collection primary", client.Options{CCache: "DIR:" + collection}, userRenew},
		{"DIR: member", client.Options{CCache: "DIR::" + aliceMember}, "alice"},
		{"KRB5_CONFIG", client.Options{CCache: fileCC, Krb5Conf: "-", Getenv: getenv(map[string]string{
			"KRB5_CONFIG": "/nonexistent/krb5.conf:" + krb5Conf(t, ""),
		})}, "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.Krb5Conf == "-" {
				opts.Krb5Conf = ""
			} else {
				opts.Krb5Conf = krb5Conf(t, "")
			}
			opts.Gateway = gw
			d, err := client.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", echo)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoRoundTrip(t, c, 5000)
			tgt, ok := d.TGT()
			if want := tc.user + "@" + realmName; !ok || tgt.Client != want || tgt.Server != "krbtgt/"+realmName+"@"+realmName {
				t.Fatalf("TGT %+v, want one of %s", tgt, want)
			}
			spn, err := d.ServicePrincipal(ctx)
			if err != nil || spn != "rcmd/localhost" {
				t.Fatalf("service principal %q, %v", spn, err)
			}
		})
	}
}

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestRenewal uses Dialers past the lifetime of their first TGT (a few
// seconds, set on the principals with kadmin): the Dialer renews a
// renewable TGT from a ticket cache before it expires (same auth time,
// later end), re-acquires one with its password (new auth time), picks up
// a ticket cache that kinit rewrote, and says "run kinit" for an expired
// cache it cannot renew.
func TestRenewal(t *testing.T) {
	gw := gssocksGateway(t).addr
	echo := testutil.EchoServer(t)
	dialOK := func(t *testing.T, d *client.Dialer) {
		t.Helper()
		c, err := d.DialContext(context.Background(), "tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		echoRoundTrip(t, c, 3000)
		c.Close()
	}
	// pastExpiry dials once and waits until the first TGT has expired.
	pastExpiry := func(t *testing.T, d *client.Dialer) client.TicketInfo {
		t.Helper()
		dialOK(t, d)
		first, ok := d.TGT()
		if !ok {
			t.Fatal("no TGT after a dial")
		}
		if life := first.EndTime.Sub(first.StartTime); life > shortLife+time.Second {
			t.Fatalf("TGT lifetime %s, want at most %s", life, shortLife)
		}
		time.Sleep(time.Until(first.EndTime) + 500*time.Millisecond)
		return first
	}
	t.Run("renewable ticket cache", func(t *testing.T) {
		t.Parallel()
		cc := filepath.Join(t.TempDir(), "cc")
		kinit(t, userRenew, "FILE:"+cc, "-l", "8s", "-r", "1h")
		d := newDialer(t, gw, "", client.Options{CCache: cc})
		first := pastExpiry(t, d)
		// Renewed in the background, before any new dial.
		now, _ := d.TGT()
		if now.Renewals < 1 || !now.AuthTime.Equal(first.AuthTime) || !now.EndTime.After(first.EndTime) {
			t.Fatalf("TGT not renewed: first %+v, now %+v", first, now)
		}
		dialOK(t, d)
	})
	t.Run("password", func(t *testing.T) {
		t.Parallel()
		d := newDialer(t, gw, "", client.Options{Principal: userShort, Password: password(userShort)})
		first := pastExpiry(t, d)
		now, _ := d.TGT()
		if !now.AuthTime.After(first.AuthTime) || !now.EndTime.After(first.EndTime) {
			t.Fatalf("TGT not re-acquired: first %+v, now %+v", first, now)
		}
		dialOK(t, d)
	})
	t.Run("expired ticket cache, then kinit", func(t *testing.T) {
		t.Parallel()
		cc := filepath.Join(t.TempDir(), "cc")
		kinit(t, userShort, "FILE:"+cc) // not renewable: carol has no renewable life
		d := newDialer(t, gw, "", client.Options{CCache: cc})
		first := pastExpiry(t, d)
		_, err := d.DialContext(context.Background(), "tcp", echo)
		var nc *client.NoCredentialsError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), "expired at") || !strings.Contains(err.Error(), "run kinit") {
			t.Fatalf("got %v", err)
		}
		t.Logf("error: %v", err)
		kinit(t, userShort, "FILE:"+cc)
		dialOK(t, d)
		if now, _ := d.TGT(); !now.AuthTime.After(first.AuthTime) {
			t.Fatalf("new ticket cache not read: %+v", now)
		}
	})
}
