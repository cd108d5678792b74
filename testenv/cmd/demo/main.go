// Command demo shows, on a throwaway MIT Kerberos realm, that a real MIT
// GSS-API initiator (libgssapi_krb5) establishes a Kerberos context with the
// pure-Go acceptor of package gssapi, and that both sides then exchange
// sealed RFC 4121 Wrap tokens. Run it from the module root:
//
//	go run ./testenv/cmd/demo
//
// It needs the MIT KDC and client tools, a C compiler and the krb5
// headers (make deps installs them on Debian). Everything it creates lives
// in a temporary directory that is removed on exit.
package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/mitpeer"
)

const (
	realmName = "EXAMPLE.TEST"
	user      = "alice"
	password  = "alice-password"
	service   = "rcmd/localhost"
	target    = "rcmd@localhost" // GSS host-based service name of service
	debPkgs   = "krb5-kdc krb5-admin-server krb5-user libkrb5-dev gcc libc6-dev"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo: FAILED:", err)
		if errors.Is(err, testenv.ErrToolsMissing) || errors.Is(err, mitpeer.ErrToolsMissing) {
			fmt.Fprintf(os.Stderr, "demo: install the tools with `make deps` or\n\tsudo apt-get install %s\n", debPkgs)
		}
		os.Exit(1)
	}
}

func run() error {
	fmt.Println("gssocks demo: MIT Kerberos initiator -> pure-Go GSS-API acceptor")

	// Build the MIT peer first: a missing compiler fails before any realm exists.
	bin, err := mitpeer.Build()
	if err != nil {
		return fmt.Errorf("build MIT GSS peer: %w", err)
	}
	step(1, "MIT GSS-API peer (testenv/mitpeer/peer.c) built: %s", bin)

	realm, err := testenv.Start(testenv.Options{Realm: realmName})
	if err != nil {
		return fmt.Errorf("start realm: %w", err)
	}
	defer realm.Close()
	// Ctrl-C: still stop the KDC and remove the realm's directory.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		realm.Close()
		fmt.Fprintln(os.Stderr, "demo: interrupted; realm removed")
		os.Exit(1)
	}()
	step(2, "realm %s: krb5kdc on %s, files in %s", realm.Name, realm.KDCAddr, realm.Dir)

	if err := errors.Join(realm.AddUser(user, password), realm.AddService(service)); err != nil {
		return err
	}
	step(3, "principals: %s@%s (password), %s@%s (random keys)", user, realm.Name, service, realm.Name)

	ktPath := filepath.Join(realm.Dir, "service.keytab")
	if err := realm.ExportKeytab(ktPath, service); err != nil {
		return err
	}
	kt, err := keytab.Load(ktPath)
	if err != nil {
		return fmt.Errorf("load keytab: %w", err)
	}
	step(4, "keytab exported and loaded by gokrb5: %d keys", len(kt.Entries))

	ccache, err := realm.Kinit(user, password)
	if err != nil {
		return err
	}
	step(5, "kinit %s: TGT in %s", user, ccache)

	acceptor, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{Keytab: kt})
	if err != nil {
		return fmt.Errorf("new acceptor: %w", err)
	}

	peer, initTok, err := mitpeer.StartInitiator(bin, realm.Env("", ccache), target)
	if err != nil {
		return fmt.Errorf("MIT initiator: %w", err)
	}
	defer func() {
		if peer != nil {
			peer.Close()
		}
	}()
	step(6, "MIT gss_init_sec_context(%s) -> initial token (AP-REQ), %d bytes", target, len(initTok))

	ctx, apRep, err := acceptor.Accept(initTok, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		return fmt.Errorf("Go acceptor refused the MIT token: %w", err)
	}
	step(7, "Go Acceptor.Accept -> context established, AP-REP %d bytes", len(apRep))

	if _, err := peer.Step(apRep); err != nil {
		return fmt.Errorf("MIT initiator refused our AP-REP: %w", err)
	}
	if !peer.Ready() {
		return errors.New("MIT initiator: context not established after the AP-REP")
	}
	step(8, "MIT gss_init_sec_context(AP-REP) -> context established (mutual authentication)")

	msg := []byte("hello MIT, from the Go acceptor")
	tok, err := ctx.Wrap(nil, msg, true)
	if err != nil {
		return fmt.Errorf("Go Wrap: %w", err)
	}
	got, conf, err := peer.Unwrap(tok)
	if err != nil {
		return fmt.Errorf("MIT gss_unwrap of our token: %w", err)
	}
	if string(got) != string(msg) || !conf {
		return fmt.Errorf("MIT unwrapped %q (sealed %v), want %q sealed", got, conf, msg)
	}
	step(9, "Go Wrap(conf) %d -> %d bytes; MIT gss_unwrap OK (sealed=%v)", len(msg), len(tok), conf)

	reply := []byte("hello Go, from MIT libgssapi_krb5")
	tok, err = peer.Wrap(true, reply)
	if err != nil {
		return fmt.Errorf("MIT gss_wrap: %w", err)
	}
	back, conf, err := ctx.Unwrap(nil, tok)
	if err != nil {
		return fmt.Errorf("Go Unwrap of MIT's token: %w", err)
	}
	if string(back) != string(reply) || !conf {
		return fmt.Errorf("Go unwrapped %q (sealed %v), want %q sealed", back, conf, reply)
	}
	step(10, "MIT gss_wrap(conf) %d -> %d bytes; Go Unwrap OK (sealed=%v)", len(reply), len(tok), conf)

	fmt.Println("\ncontext (Go acceptor side):")
	fact("client", ctx.Client().String())
	fact("service", ctx.Service().String())
	fact("kvno", fmt.Sprint(ctx.KVNO()))
	fact("enctype", fmt.Sprintf("%s (%d)", gssapi.EnctypeName(ctx.Enctype()), ctx.Enctype()))
	fact("flags", ctx.Flags().String())
	fact("acceptor subkey", map[bool]string{true: "yes", false: "no"}[ctx.AcceptorSubkey()])
	fmt.Println("\nmessages:")
	fact("Go -> MIT", fmt.Sprintf("%q", got))
	fact("MIT -> Go", fmt.Sprintf("%q", back))

	err = peer.Close()
	peer = nil
	if err != nil {
		return fmt.Errorf("MIT peer: %w", err)
	}
	if err := realm.Close(); err != nil {
		return fmt.Errorf("close realm: %w", err)
	}
	fmt.Println("\nOK: realm stopped and removed")
	return nil
}

func step(n int, format string, args ...any) {
	fmt.Printf("[%2d] %s\n", n, fmt.Sprintf(format, args...))
}

func fact(k, v string) { fmt.Printf("  %-16s %s\n", k+":", v) }
