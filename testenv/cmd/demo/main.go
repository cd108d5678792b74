// Command demo runs gssocks end to end on a throwaway MIT realm: it starts
// a KDC, the gssocks gateway (built from this tree) and a local web server,
// checks the configuration as serve would provision it (`gssocks check
// --bind`), fetches a page through the gateway with a real kerberized
// client (Dante's socksify around curl, at confidentiality), prints the
// gateway's audit record, and cleans everything up. `make demo` runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: FAILED: %v\n", err)
		if errors.Is(err, testenv.ErrToolsMissing) || errors.Is(err, dante.ErrToolsMissing) {
			fmt.Fprintln(os.Stderr, "demo: install the tools with `make deps`")
		}
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run() error {
	step("building Dante's client with GSS-API (cached after the first run, ~3 min)")
	dn, err := dante.Build()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "gssocks-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("building gssocks")
	bin := filepath.Join(dir, "gssocks")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/gssocks").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	realm, err := testenv.Start(testenv.Options{})
	if err != nil {
		return err
	}
	defer realm.Close()
	step("realm %s: krb5kdc on %s", realm.Name, realm.KDCAddr)
	keytab := filepath.Join(dir, "gssocks.keytab")
	for _, f := range []func() error{
		func() error { return realm.AddUser("alice", "alice-demo-pw") },
		func() error { return realm.AddService("rcmd/localhost") },
		func() error { return realm.ExportKeytab(keytab, "rcmd/localhost") },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	os.Chmod(keytab, 0o600)
	step("principals alice@%s and rcmd/localhost@%s; keytab %s", realm.Name, realm.Name, keytab)

	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from the web server behind gssocks (you are %s)\n", r.RemoteAddr)
	}))
	defer web.Close()
	step("web server on %s", web.Addr())

	proxy, err := freeAddr()
	if err != nil {
		return err
	}
	audit := filepath.Join(dir, "audit.log")
	conf := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`listen = [%q]
kerberos {
  keytab = %q
}
log {
  audit = %q
}
rule "demo" {
  principals   = ["*@%s"]
  destinations = ["127.0.0.0/8"]
  protection   = ["confidentiality"]
}
`, proxy, keytab, audit, realm.Name)), 0o644); err != nil {
		return err
	}
	// check runs the same provisioning as serve (keytab with an AES key,
	// audit file appendable, and with --bind the listen address free).
	chk := exec.Command(bin, "check", "--bind", "--config", conf)
	chk.Env = realm.Env("", "")
	out, err := chk.CombinedOutput()
	step("gssocks check --bind: %s", strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("gssocks check: %w", err)
	}
	gw := exec.Command(bin, "serve", "--config", conf)
	gw.Env = realm.Env("", "")
	gw.Stdout = os.Stdout
	logs, err := gw.StderrPipe()
	if err != nil {
		return err
	}
	if err := gw.Start(); err != nil {
		return err
	}
	defer func() {
		gw.Process.Signal(syscall.SIGTERM)
		gw.Wait()
	}()
	// The gateway logs "listening" once it accepts; its log goes to our
	// stdout, indented.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		once := false
		for sc.Scan() {
			fmt.Println("    gssocks: " + sc.Text())
			if !once && strings.Contains(sc.Text(), "listening") {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		return errors.New("gateway did not start listening")
	}
	step("gssocks serving on %s", proxy)

	cc, err := realm.Kinit("alice", "alice-demo-pw")
	if err != nil {
		return err
	}
	env, err := dn.ClientEnv(dir, dante.ClientConfig{Proxy: proxy, Level: "confidentiality"}, realm.Env("", cc))
	if err != nil {
		return err
	}
	url := "http://" + web.Addr().String() + "/"
	step("kinit alice; socksify curl %s (Dante client, GSS-API confidentiality)", url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	page, err := dn.Command(ctx, env, "curl", "-sS", "--max-time", "20", url).CombinedOutput()
	fmt.Printf("\n%s\n", strings.TrimSpace(string(page)))
	if err != nil {
		return fmt.Errorf("socksify curl: %w", err)
	}

	// The audit record is written when the session ends.
	var rec string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(audit)
		if rec = strings.TrimSpace(string(b)); rec != "" {
			break
		}
	}
	if rec == "" {
		return errors.New("no audit record")
	}
	step("audit record:")
	fmt.Println(rec)
	if !strings.Contains(rec, "level=confidentiality") || !strings.Contains(rec, "principal=alice@") {
		return errors.New("the audit record does not show an authenticated, encrypted session")
	}
	step("OK: cleaning up")
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
