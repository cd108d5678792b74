package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/gssocks/gssocks/server"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv"
)

// passwordGateway is a gateway with password_auth for sources (more
// attributes in extra) and rules, its KDCs those of krb5conf ("" for the
// test realm's).
func passwordGateway(t *testing.T, sources, extra, krb5conf, rules string, opts ...testutil.GatewayOption) *gateway {
	t.Helper()
	env := realm.Get(t)
	if krb5conf == "" {
		krb5conf = env.Realm.Krb5Conf
	}
	return startGateway(t, fmt.Sprintf(`
password_auth {
  sources   = %s
  krb5_conf = %q
  %s
}
%s`, sources, krb5conf, extra, rules), opts...)
}

const passwordRules = `
rule "pw" {
  principals   = ["alice@EXAMPLE.TEST", "pw-*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}
rule "protected-only" {
  principals   = ["bob@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["integrity", "confidentiality"]
}
`

// passwordLogin sends a greeting offering methods on c and, when the
// gateway selects 02, the subnegotiation request raw; it returns the
// method selected and the status (0xff: no status came).
func passwordLogin(t *testing.T, c net.Conn, methods []byte, request []byte) (socks5.Method, byte) {
	t.Helper()
	c.Write(append([]byte{5, byte(len(methods))}, methods...))
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil {
		t.Fatalf("method selection: %v", err)
	}
	if sel[1] != 2 {
		return socks5.Method(sel[1]), 0xff
	}
	c.Write(request)
	st := make([]byte, 2)
	if _, err := io.ReadFull(c, st); err != nil {
		return 2, 0xff
	}
	if st[0] != 1 {
		t.Fatalf("status message % x: version not 1", st)
	}
	return 2, st[1]
}

func userPass(t *testing.T, user, password string) []byte {
	return wire(t)(socks5.AppendUserPassRequest(nil, socks5.UserPassRequest{Username: user, Password: password}))
}

// connectEcho sends a CONNECT to an echo server on c and checks that
// data goes through, in the clear.
func connectEcho(t *testing.T, c net.Conn) string {
	t.Helper()
	echo := echoServer(t)
	dest, _ := socks5.ParseHostPort(echo)
	c.Write(wire(t)(socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})))
	rep, _, err := socks5.ReadReply(c)
	if err != nil || rep != socks5.ReplySucceeded {
		t.Fatalf("reply %s: %v", rep, err)
	}
	roundTrip(t, c, 5000)
	return echo
}

// kdcRequests counts the AS requests the test realm's KDC logged for
// principal: how the tests tell that a refusal asked no KDC.
func kdcRequests(t *testing.T, g *gateway, principal string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.env.Realm.Dir, "kdc.log"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "AS_REQ") && strings.Contains(l, " "+principal+" for ") {
			n++
		}
	}
	return n
}

// noPasswordInLog fails when a password reached the gateway's output.
func noPasswordInLog(t *testing.T, g *gateway, passwords ...string) {
	t.Helper()
	log := g.Log.String()
	for _, p := range passwords {
		if strings.Contains(log, p) {
			t.Errorf("the log holds a password (%d bytes)", len(p))
		}
	}
}

// TestPasswordConnect: method 02 with alice's password, checked by the
// KDC, then a CONNECT decided by the same rules at level clear; the
// audit record says method "password". bob's rule wants protection,
// which a password session cannot have: denied.
func TestPasswordConnect(t *testing.T) {
	g := passwordGateway(t, `["127.0.0.0/8"]`, "", "", passwordRules)
	pw := "alice-password-1"
	c := rawDial(t, g)
	if m, st := passwordLogin(t, c, []byte{0, 2}, userPass(t, "alice", pw)); m != 2 || st != 0 {
		t.Fatalf("method %s status %#x", m, st)
	}
	echo := connectEcho(t, c)
	c.Close()
	g.waitRecord(t, "password session", func(r audit.Record) bool {
		return r.Method == "password" && r.Level == "clear" && r.Principal == "alice@EXAMPLE.TEST" && r.Realm == "EXAMPLE.TEST" &&
			r.Service == "rcmd/localhost@EXAMPLE.TEST" && r.Rule == "pw" && r.Destination == echo && r.EndReason == audit.EndCompleted
	})

	c = rawDial(t, g)
	if m, st := passwordLogin(t, c, []byte{2}, userPass(t, "bob@EXAMPLE.TEST", "bob-password-1")); m != 2 || st != 0 {
		t.Fatalf("bob: method %s status %#x", m, st)
	}
	dest, _ := socks5.ParseHostPort(echoServer(t))
	c.Write(wire(t)(socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})))
	if rep, _, err := socks5.ReadReply(c); err != nil || rep != socks5.ReplyNotAllowed {
		t.Fatalf("bob's clear session: reply %s, %v", rep, err)
	}
	g.waitRecord(t, "bob denied", func(r audit.Record) bool {
		return r.Method == "password" && r.Principal == "bob@EXAMPLE.TEST" && r.EndReason == audit.EndDenied
	})
	// GSS-API is still preferred when offered, from the same source.
	c = rawDial(t, g)
	c.Write([]byte{5, 2, 2, 1})
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[1] != 1 {
		t.Fatalf("02 and 01 offered: selected % x, %v", sel, err)
	}
	noPasswordInLog(t, g, pw, "bob-password-1")
}

// outcomes records the password outcomes a server reports
// (server.PasswordObserver).
type outcomes struct {
	mu  sync.Mutex
	all []string
}

func (o *outcomes) Handshake(error, time.Duration)  {}
func (o *outcomes) PrincipalLimitRefused()          {}
func (o *outcomes) UDPRelayed(server.UDPDirection)  {}
func (o *outcomes) UDPDropped(server.UDPDropReason) {}
func (o *outcomes) PasswordAuth(outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, outcome)
}

func (o *outcomes) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.all) == 0 {
		return ""
	}
	return o.all[len(o.all)-1]
}

// TestPasswordRefusals: hostile and wrong requests get a failure status
// and a close; the malformed ones ask no KDC; no password is logged.
func TestPasswordRefusals(t *testing.T) {
	env := realm.Get(t)
	long := strings.Repeat("L", 255)
	addUser(t, env, "pw-long", long)
	obs := &outcomes{}
	g := passwordGateway(t, `["127.0.0.0/8"]`, "max_failures_per_source = 0\n  max_failures_per_principal = 0", "", passwordRules,
		testutil.WithServerOption(func(o *server.Options) { o.Observer = obs }))

	// 255-byte password: the RFC's maximum goes through.
	c := rawDial(t, g)
	if _, st := passwordLogin(t, c, []byte{2}, userPass(t, "pw-long", long)); st != 0 {
		t.Fatalf("255-byte password: status %#x", st)
	}
	connectEcho(t, c)

	before := kdcRequests(t, g, "alice@EXAMPLE.TEST")
	services := []string{"krbtgt/EXAMPLE.TEST@EXAMPLE.TEST", "rcmd/localhost@EXAMPLE.TEST", "socks/localhost@EXAMPLE.TEST"}
	servicesBefore := map[string]int{}
	for _, p := range services {
		servicesBefore[p] = kdcRequests(t, g, p)
	}
	for _, c := range []struct {
		name    string
		request []byte
		kdc     bool // the KDC is asked
		outcome string
	}{
		{"wrong password", userPass(t, "alice", "not-her-password-9"), true, "bad_password"},
		{"unknown user", userPass(t, "pw-nobody", "whatever-password-9"), true, "unknown_principal"},
		{"255-byte username", userPass(t, strings.Repeat("u", 255), "whatever-password-9"), true, "unknown_principal"},
		{"untrusted realm", userPass(t, "alice@ELSEWHERE.TEST", "alice-password-1"), false, "realm_not_trusted"},
		{"control character", userPass(t, "ali\nce", "whatever-password-9"), false, "unknown_principal"},
		{"ticket-granting service", userPass(t, "krbtgt/EXAMPLE.TEST", "whatever-password-9"), false, "refused_name"},
		{"service principal", userPass(t, "rcmd/localhost", "whatever-password-9"), false, "refused_name"},
		{"service principal with realm", userPass(t, "socks/localhost@example.test", "whatever-password-9"), false, "refused_name"},
		{"empty username", []byte{1, 0, 3, 'a', 'b', 'c'}, false, "malformed"},
		{"empty password", []byte{1, 5, 'a', 'l', 'i', 'c', 'e', 0}, false, "malformed"},
		{"SOCKS version in the subnegotiation", append([]byte{5}, userPass(t, "alice", "alice-password-1")[1:]...), false, "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mark := g.mark()
			conn := rawDial(t, g)
			if _, st := passwordLogin(t, conn, []byte{2}, c.request); st == 0 || st == 0xff {
				t.Fatalf("status %#x", st)
			}
			if rest := closedByServer(t, conn); len(rest) != 0 {
				t.Fatalf("after the failure status: % x", rest)
			}
			g.waitRecordFrom(t, mark, "refused", func(r audit.Record) bool {
				return r.Method == "password" && r.EndReason == audit.EndAuthFailed && r.Principal == "" && r.Command == ""
			})
			if got := obs.last(); got != c.outcome {
				t.Fatalf("outcome %q, want %q", got, c.outcome)
			}
		})
	}
	if n := kdcRequests(t, g, "alice@EXAMPLE.TEST") - before; n != 1 {
		t.Log(g.env.Realm.Dir)
		t.Errorf("%d AS requests for alice, want 1 (the wrong password only)", n)
	}
	for _, p := range services {
		if n := kdcRequests(t, g, p) - servicesBefore[p]; n != 0 {
			t.Errorf("%d AS requests for %s, a name the gateway refuses as a client", n, p)
		}
	}
	if !strings.Contains(g.Log.String(), "not a user") {
		t.Error("no log line for the service-style username")
	}
	c = rawDial(t, g)
	if _, st := passwordLogin(t, c, []byte{2}, userPass(t, "alice", "alice-password-1")); st != 0 {
		t.Fatalf("alice after the refusals: status %#x", st)
	}
	connectEcho(t, c)
	if obs.last() != server.PasswordOK {
		t.Fatalf("outcome %q", obs.last())
	}
	noPasswordInLog(t, g, long, "not-her-password-9", "whatever-password-9")
}

// TestPasswordSources: method 02 only from password_auth's sources; a
// client elsewhere offering only 02 gets "05 ff".
func TestPasswordSources(t *testing.T) {
	g := passwordGateway(t, `["127.0.0.2/32"]`, "", "", passwordRules)
	c := dialFrom(t, "127.0.0.1", g.Addr)
	c.Write([]byte{5, 1, 2})
	if got := closedByServer(t, c); string(got) != "\x05\xff" {
		t.Fatalf("from 127.0.0.1: % x", got)
	}
	c = dialFrom(t, "127.0.0.2", g.Addr)
	if m, st := passwordLogin(t, c, []byte{2}, userPass(t, "alice", "alice-password-1")); m != 2 || st != 0 {
		t.Fatalf("from 127.0.0.2: method %s status %#x", m, st)
	}
	connectEcho(t, c)
}

// TestPasswordFailureLimits: past max_failures_per_principal the
// principal is refused without a KDC request, even with the right
// password, and however its name is spelt; past max_failures_per_source
// the source is.
func TestPasswordFailureLimits(t *testing.T) {
	env := realm.Get(t)
	addUser(t, env, "pw-carol", "carol-password-1")
	g := passwordGateway(t, `["127.0.0.0/8"]`, "max_failures_per_principal = 2\n  max_failures_per_source = 5", "", passwordRules)
	try := func(from, user, password string) byte {
		c := dialFrom(t, from, g.Addr)
		_, st := passwordLogin(t, c, []byte{2}, userPass(t, user, password))
		return st
	}
	for range 2 {
		if st := try("127.0.0.1", "pw-carol", "wrong-password-3"); st == 0 {
			t.Fatal("wrong password accepted")
		}
	}
	before := kdcRequests(t, g, "pw-carol@EXAMPLE.TEST")
	for _, u := range []string{"pw-carol", "pw-carol@example.test"} {
		if st := try("127.0.0.3", u, "carol-password-1"); st == 0 {
			t.Fatalf("%s accepted past the principal's failure limit", u)
		}
	}
	if n := kdcRequests(t, g, "pw-carol@EXAMPLE.TEST"); n != before {
		t.Fatalf("%d AS requests while over the limit", n-before)
	}
	if !strings.Contains(g.Log.String(), "rate_limited") {
		t.Fatal("no log line for the refusal")
	}
	// Source 127.0.0.4: five unknown users, then alice is refused there
	// without a KDC request, and served from elsewhere.
	for i := range 5 {
		try("127.0.0.4", fmt.Sprintf("pw-ghost%d", i), "whatever-password-9")
	}
	before = kdcRequests(t, g, "alice@EXAMPLE.TEST")
	if st := try("127.0.0.4", "alice", "alice-password-1"); st == 0 {
		t.Fatal("source over its limit served")
	}
	if n := kdcRequests(t, g, "alice@EXAMPLE.TEST"); n != before {
		t.Fatalf("%d AS requests from a source over its limit", n-before)
	}
	if st := try("127.0.0.5", "alice", "alice-password-1"); st != 0 {
		t.Fatal("another source refused")
	}
}

// TestPasswordCache: with cache_ttl a second login with the same password
// asks no KDC; another password is not served from the cache.
func TestPasswordCache(t *testing.T) {
	env := realm.Get(t)
	addUser(t, env, "pw-dave", "dave-password-1")
	g := passwordGateway(t, `["127.0.0.0/8"]`, `cache_ttl = "1m"`, "", passwordRules)
	login := func(password string) byte {
		_, st := passwordLogin(t, rawDial(t, g), []byte{2}, userPass(t, "pw-dave", password))
		return st
	}
	if login("dave-password-1") != 0 {
		t.Fatal("first login refused")
	}
	before := kdcRequests(t, g, "pw-dave@EXAMPLE.TEST")
	if login("dave-password-1") != 0 {
		t.Fatal("cached login refused")
	}
	if n := kdcRequests(t, g, "pw-dave@EXAMPLE.TEST") - before; n != 0 {
		t.Fatalf("%d AS requests for a cached login", n)
	}
	if login("dave-password-2") == 0 {
		t.Fatal("another password served")
	}
	if n := kdcRequests(t, g, "pw-dave@EXAMPLE.TEST") - before; n != 1 {
		t.Fatalf("%d AS requests for another password, want 1", n)
	}
	if !strings.Contains(g.Log.String(), "outcome=cached") {
		t.Fatal("no cached login logged")
	}
}

// TestPasswordSpoofedKDC: a real KDC of the same realm name that knows
// alice's password but not the gateway's key vouches for her: the
// service ticket it gives does not open with the keytab, the login fails.
func TestPasswordSpoofedKDC(t *testing.T) {
	realm.Get(t)
	spoof := testenv.StartForTest(t, testenv.Options{Realm: "EXAMPLE.TEST"})
	for _, err := range []error{spoof.AddUser("alice", "alice-password-1"), spoof.AddService("rcmd/localhost")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	g := passwordGateway(t, `["127.0.0.0/8"]`, "", spoof.Krb5Conf, passwordRules)
	if _, st := passwordLogin(t, rawDial(t, g), []byte{2}, userPass(t, "alice", "alice-password-1")); st == 0 {
		t.Fatal("a spoofed KDC vouched for alice")
	}
	g.waitRecord(t, "not validated", func(r audit.Record) bool {
		return r.Method == "password" && r.EndReason == audit.EndAuthFailed && strings.Contains(r.Detail, "not validated")
	})
}

// TestPasswordCurl: Debian's curl with --socks5-basic (without it curl
// offers GSS-API too, which the gateway prefers).
func TestPasswordCurl(t *testing.T) {
	requireCurl(t)
	g := passwordGateway(t, `["127.0.0.0/8"]`, "", "", passwordRules)
	web := payloadServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "body")
	cmd := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-basic",
		"--proxy", "socks5://alice:alice-password-1@"+g.Addr, "-o", out, "http://"+web+"/100000")
	cmd.Env = append(os.Environ(), "KRB5_CONFIG=/nonexistent")
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v: %s", err, res)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(body) != sha256.Sum256(payload(100000)) {
		t.Fatalf("body of %d bytes differs", len(body))
	}
	g.waitRecord(t, "curl's session", func(r audit.Record) bool {
		return r.Method == "password" && r.Principal == "alice@EXAMPLE.TEST" && r.BytesDown > 100000
	})
	// user@REALM in the proxy URL, its '@' written %40 (README).
	mark := g.mark()
	cmd = exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-basic",
		"--proxy", "socks5://alice%40EXAMPLE.TEST:alice-password-1@"+g.Addr, "-o", out, "http://"+web+"/10")
	cmd.Env = append(os.Environ(), "KRB5_CONFIG=/nonexistent")
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl with alice%%40EXAMPLE.TEST: %v: %s", err, res)
	}
	g.waitRecordFrom(t, mark, "curl's session as alice@EXAMPLE.TEST", func(r audit.Record) bool {
		return r.Method == "password" && r.Principal == "alice@EXAMPLE.TEST" && r.EndReason == audit.EndCompleted
	})
	// A wrong password: curl fails, the gateway logs it.
	cmd = exec.CommandContext(ctx, "curl", "-sS", "--max-time", "30", "--socks5-basic",
		"--proxy", "socks5://alice:wrong-password-5@"+g.Addr, "http://"+web+"/10")
	if res, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("curl with a wrong password: %s", res)
	}
	noPasswordInLog(t, g, "alice-password-1", "wrong-password-5")
}

// TestPasswordKDCSilent: a KDC address that accepts and never answers.
// The verification is given up at kdc_timeout (kdc_unreachable, not
// counted against the user), and while it still holds its slot
// (gokrb5 waits 5 s per KDC) max_concurrent = 1 refuses the next attempt
// at once without contacting the KDC.
func TestPasswordKDCSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	os.WriteFile(conf, []byte("[libdefaults]\n udp_preference_limit = 1\n[realms]\n EXAMPLE.TEST = {\n  kdc = "+ln.Addr().String()+"\n }\n"), 0o600)
	obs := &outcomes{}
	g := passwordGateway(t, `["127.0.0.0/8"]`, "kdc_timeout = \"1s\"\n  max_concurrent = 1\n  max_failures_per_principal = 1", conf, passwordRules,
		testutil.WithServerOption(func(o *server.Options) { o.Observer = obs }))
	start := time.Now()
	if _, st := passwordLogin(t, rawDial(t, g), []byte{2}, userPass(t, "alice", "alice-password-1")); st == 0 {
		t.Fatal("served without a KDC")
	}
	if d := time.Since(start); d > 4*time.Second || obs.last() != server.PasswordKDCUnreachable {
		t.Fatalf("after %s: outcome %q", d, obs.last())
	}
	if _, st := passwordLogin(t, rawDial(t, g), []byte{2}, userPass(t, "alice", "alice-password-1")); st == 0 || obs.last() != server.PasswordBusy {
		t.Fatalf("second attempt: status %#x, outcome %q", st, obs.last())
	}
	if n := len(accepted); n != 1 {
		t.Fatalf("%d connections to the KDC, want 1", n)
	}
	// Once the first exchange has given up, alice is tried again: the
	// unreachable KDC did not count against her (max_failures_per_principal = 1).
	deadline := time.Now().Add(20 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		passwordLogin(t, rawDial(t, g), []byte{2}, userPass(t, "alice", "alice-password-1"))
		if o := obs.last(); o != server.PasswordBusy {
			if o != server.PasswordKDCUnreachable {
				t.Fatalf("after the slot was given back: outcome %q", o)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of the abandoned verification was never given back")
		}
	}
}

// heldKDC is a TCP relay to the test realm's real KDC that holds each
// connection for hold before passing it on: the KDC's answers then come
// late, as from a KDC across a slow network. It returns a krb5.conf
// naming the relay as the realm's KDC.
func heldKDC(t *testing.T, env *krbtest.Env, hold time.Duration) string {
	t.Helper()
	addr := testutil.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		time.Sleep(hold)
		k, err := net.Dial("tcp", env.Realm.KDCAddr)
		if err != nil {
			return
		}
		defer k.Close()
		go io.Copy(k, c)
		io.Copy(c, k)
	})
	b, err := os.ReadFile(env.Realm.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "krb5.conf")
	s := strings.Replace(string(b), "kdc = "+env.Realm.KDCAddr, "kdc = "+addr, 1)
	if s == string(b) {
		t.Fatalf("no %q in the realm's krb5.conf", "kdc = "+env.Realm.KDCAddr)
	}
	if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestPasswordFailureLimitsConcurrent: a burst of concurrent wrong
// passwords for one account reaches the KDC no more often than
// max_failures_per_principal, however slow the KDC (the verifications in
// flight count against the limit: without that, every attempt of the
// burst passed the check before the first failure was counted, and an
// account could be locked out through the gateway); and concurrent good
// logins past the limit wait for the pending ones instead of being
// refused.
func TestPasswordFailureLimitsConcurrent(t *testing.T) {
	env := realm.Get(t)
	addUser(t, env, "pw-erin", "erin-password-1")
	addUser(t, env, "pw-frank", "frank-password-1")
	conf := heldKDC(t, env, time.Second)
	g := passwordGateway(t, `["127.0.0.0/8"]`, "max_failures_per_principal = 2\n  max_failures_per_source = 100", conf, passwordRules)
	// burst runs n logins at once; a status of 0xfe is an I/O failure
	// (the goroutines cannot t.Fatal).
	burst := func(user, password string, n int) []byte {
		req := userPass(t, user, password)
		var wg sync.WaitGroup
		st := make([]byte, n)
		for i := range n {
			wg.Go(func() {
				st[i] = 0xfe
				c, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				c.Write(append([]byte{5, 1, 2}, req...))
				var b [4]byte
				if _, err := io.ReadFull(c, b[:]); err == nil && b[1] == 2 && b[2] == 1 {
					st[i] = b[3]
				}
			})
		}
		wg.Wait()
		return st
	}
	before := kdcRequests(t, g, "pw-erin@EXAMPLE.TEST")
	for i, st := range burst("pw-erin", "wrong-password-7", 8) {
		if st == 0 {
			t.Fatalf("attempt %d: wrong password accepted", i)
		}
	}
	if n := kdcRequests(t, g, "pw-erin@EXAMPLE.TEST") - before; n > 2 {
		t.Fatalf("%d AS requests for 8 concurrent wrong passwords, want at most max_failures_per_principal (2)", n)
	}
	for i, st := range burst("pw-frank", "frank-password-1", 4) {
		if st != 0 {
			t.Fatalf("good login %d of 4 concurrent ones refused (status %#x)", i, st)
		}
	}
	noPasswordInLog(t, g, "wrong-password-7", "frank-password-1")
}

// TestPasswordSessionEndsAtTicketExpiry: a password session ends when the
// ticket the gateway verified the password with does (end reason
// ticket_expired), as a GSS-API session ends with its client's ticket;
// rule outlive_ticket extends it the same way. Password sessions used to
// live on past their ticket (the handshake kept no context), so a
// disabled account's session outlived every GSS-API one.
func TestPasswordSessionEndsAtTicketExpiry(t *testing.T) {
	env := realm.Get(t)
	// The gateway asks the KDC for tickets of this lifetime, as a client
	// with ticket_lifetime in its krb5.conf does; long enough for the
	// session to be set up on a loaded machine.
	const lifetime = 10 * time.Second
	b, err := os.ReadFile(env.Realm.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(short, []byte(strings.Replace(string(b), "ticket_lifetime = 24h", "ticket_lifetime = 10s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	g := passwordGateway(t, `["127.0.0.0/8"]`, "", short, `
rule "bob-outlives" {
  principals     = ["bob@EXAMPLE.TEST"]
  destinations   = ["127.0.0.0/8"]
  protection     = ["clear"]
  outlive_ticket = "1h"
}
rule "pw" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear"]
}`)
	dest, _ := socks5.ParseHostPort(echoServer(t))
	start := time.Now()
	open := func(user string) net.Conn {
		c := rawDial(t, g)
		c.SetDeadline(time.Now().Add(time.Minute))
		if m, st := passwordLogin(t, c, []byte{2}, userPass(t, user, krbtest.Users[user])); m != 2 || st != 0 {
			t.Fatalf("%s: method %s status %#x", user, m, st)
		}
		c.Write(wire(t)(socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})))
		if rep, _, err := socks5.ReadReply(c); err != nil || rep != socks5.ReplySucceeded {
			t.Fatalf("%s: reply %s, %v", user, rep, err)
		}
		roundTripOpen(t, c)
		return c
	}
	alice, bob := open("alice"), open("bob")
	var rec audit.Record
	for rec.SessionID == "" && time.Since(start) < lifetime+15*time.Second {
		for _, r := range g.Records() {
			if r.Method == "password" && r.Principal == "alice@EXAMPLE.TEST" {
				rec = r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rec.EndReason != audit.EndTicketExpired {
		t.Fatalf("alice's password session: end %q after %s (ticket lifetime %s), want ticket_expired", rec.EndReason, time.Since(start), lifetime)
	}
	if _, err := alice.Read(make([]byte, 1)); err == nil {
		t.Error("alice's connection still open after the record")
	}
	t.Logf("alice: %s", rec.Detail)
	// bob's rule lets his session outlive the ticket.
	roundTripOpen(t, bob)
}

// TestPasswordNotValidatedKeepsPrincipalBudget: a login the gateway's own
// ticket check refuses (here a spoofed KDC that knows alice's password)
// is not the user's fault: it does not count against her
// max_failures_per_principal, or a misconfigured gateway would lock out
// everyone typing the right password; it does count against the source.
func TestPasswordNotValidatedKeepsPrincipalBudget(t *testing.T) {
	realm.Get(t)
	spoof := testenv.StartForTest(t, testenv.Options{Realm: "EXAMPLE.TEST"})
	for _, err := range []error{spoof.AddUser("alice", "alice-password-1"), spoof.AddService("rcmd/localhost")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	obs := &outcomes{}
	g := passwordGateway(t, `["127.0.0.0/8"]`, "max_failures_per_principal = 1\n  max_failures_per_source = 3", spoof.Krb5Conf, passwordRules,
		testutil.WithServerOption(func(o *server.Options) { o.Observer = obs }))
	try := func(from string) string {
		t.Helper()
		if _, st := passwordLogin(t, dialFrom(t, from, g.Addr), []byte{2}, userPass(t, "alice", "alice-password-1")); st == 0 {
			t.Fatal("a spoofed KDC vouched for alice")
		}
		return obs.last() // reported before the status is sent
	}
	for i := range 3 {
		if got := try("127.0.0.1"); got != server.PasswordNotValidated {
			t.Fatalf("attempt %d from 127.0.0.1: outcome %q, want %q (the principal's budget is 1)", i+1, got, server.PasswordNotValidated)
		}
	}
	if got := try("127.0.0.1"); got != server.PasswordRateLimited {
		t.Fatalf("4th attempt from 127.0.0.1: outcome %q, want %q (the source's budget is 3)", got, server.PasswordRateLimited)
	}
	if got := try("127.0.0.6"); got != server.PasswordNotValidated {
		t.Fatalf("from another source: outcome %q, want %q", got, server.PasswordNotValidated)
	}
}
