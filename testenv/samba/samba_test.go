package samba_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/samba"
)

// TestStart starts a DC from the template, checks what it says about
// itself against MIT's kinit, kvno and klist run inside its namespace, and
// that Close leaves nothing behind.
func TestStart(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	dc := samba.StartForTest(t, samba.Options{})
	t.Logf("DC %s up in %v (pid %d, dir %s)", dc.Netns, time.Since(begin).Round(time.Millisecond), dc.Pid, dc.Dir)
	checkLayout(t, &dc.Info)

	conf, err := os.ReadFile(filepath.Join(dc.Dir, "dc", "etc", "smb.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"interfaces = lo", "bind interfaces only = Yes", "private dir = " + filepath.Join(dc.Dir, "dc", "private")} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("smb.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "dns forwarder") {
		t.Errorf("smb.conf still has a dns forwarder:\n%s", conf)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ccache := "FILE:" + filepath.Join(dc.Dir, "test.ccache")
	mit := func(stdin string, name string, args ...string) string {
		t.Helper()
		cmd := dc.Command(ctx, name, args...)
		cmd.Env = append(cmd.Env, "KRB5CCNAME="+ccache)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v in %s: %v\n%s", name, args, dc.Netns, err, out)
		}
		return string(out)
	}
	mit(dc.Users["alice"]+"\n", "kinit", "alice@"+dc.Realm)
	kvno := mit("", "kvno", dc.Service+"@"+dc.Realm)
	keys := mit("", "klist", "-k", "-e", dc.Keytab)
	t.Logf("kvno: %s\nkeytab:\n%s", strings.TrimSpace(kvno), keys)
	if !strings.Contains(kvno, "kvno = ") || !strings.Contains(keys, dc.Service+"@"+dc.Realm+" (aes256-cts-hmac-sha1-96)") {
		t.Fatal("the keytab does not hold the service's AES key")
	}
	n := strings.TrimSpace(kvno[strings.LastIndex(kvno, "=")+1:])
	if !strings.Contains(keys, "\n   "+n+" ") {
		t.Fatalf("the KDC's kvno %s is not in the keytab", n)
	}
	tickets := mit("", "klist", "-e")
	if !strings.Contains(tickets, "Etype (skey, tkt): aes256-cts-hmac-sha1-96, aes256-cts-hmac-sha1-96") {
		t.Errorf("service ticket is not AES:\n%s", tickets)
	}

	// The host side cannot reach the DC: it is only in the namespace.
	if out, err := dc.Command(ctx, "true").CombinedOutput(); err != nil {
		t.Fatalf("running in the namespace: %v: %s", err, out)
	}

	if err := dc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", dc.Netns)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still there after Close (%v)", dc.Netns, err)
	}
	if _, err := os.Stat(dc.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s still there after Close (%v)", dc.Dir, err)
	}
	if err := syscall.Kill(dc.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("samba (pid %d) still there after Close (%v)", dc.Pid, err)
	}
}

// TestProvisionFresh provisions without the template: the SIDs are the
// same, since the domain SID is fixed and the accounts are made in order.
func TestProvisionFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions a domain from scratch (about 6 s)")
	}
	t.Parallel()
	begin := time.Now()
	dc := samba.StartForTest(t, samba.Options{NoCache: true})
	t.Logf("DC %s provisioned and up in %v", dc.Netns, time.Since(begin).Round(time.Millisecond))
	checkLayout(t, &dc.Info)
}

// checkLayout checks the SIDs against the documented layout: the fixed
// domain SID and RIDs in the order the accounts are made.
func checkLayout(t *testing.T, info *samba.Info) {
	t.Helper()
	want := map[string]string{
		"alice":     "-1103",
		"bob":       "-1104",
		"vpn-users": "-1105",
		"staff":     "-1106",
		"svc-socks": "-1107",
	}
	got := map[string]string{}
	for _, u := range []string{"alice", "bob", "svc-socks"} {
		got[u] = info.UserSID(u)
	}
	for _, g := range []string{"vpn-users", "staff"} {
		got[g] = info.GroupSID(g)
	}
	for name, rid := range want {
		if got[name] != samba.DomainSID+rid {
			t.Errorf("%s: SID %q, want %s%s", name, got[name], samba.DomainSID, rid)
		}
	}
	if info.DomainUsersSID() != samba.DomainSID+"-513" || info.Realm != "AD.EXAMPLE.TEST" || info.KDC != "127.0.0.2:88" {
		t.Errorf("info: %+v", info)
	}
	if len(info.Users) != 2 || info.Users["alice"] == "" || info.Users["bob"] == "" {
		t.Errorf("users: %v", info.Users)
	}
}
