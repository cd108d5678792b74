package adtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/samba"
)

// The environment of the test binary's run inside the namespace.
const (
	envNetns = "GSSOCKS_AD_NETNS" // the namespace's name; set: run the tests
	envInfo  = "GSSOCKS_AD_INFO"  // samba.Info as JSON
)

// Set once by TestMain, read by the tests.
var (
	domainInfo *samba.Info // inside the namespace: the running domain
	skipReason string      // on the host: why the DC cannot run here
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if ns := os.Getenv(envNetns); ns != "" {
		var info samba.Info
		if err := json.Unmarshal([]byte(os.Getenv(envInfo)), &info); err != nil || info.Netns != ns {
			fmt.Fprintf(os.Stderr, "adtest: bad %s for namespace %s: %v\n", envInfo, ns, err)
			return 1
		}
		domainInfo = &info
		return m.Run()
	}

	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing needs no domain
	}
	if err := samba.Install(); err != nil {
		if errors.Is(err, samba.ErrToolsMissing) && os.Getenv("CI") != "true" {
			skipReason = firstLine(err.Error())
			return m.Run()
		}
		fmt.Fprintf(os.Stderr, "adtest: %v\n", err)
		if errors.Is(err, samba.ErrToolsMissing) {
			fmt.Fprintln(os.Stderr, "adtest: CI=true: the Samba AD DC must run")
		}
		return 1
	}
	begin := time.Now()
	dc, err := samba.Start(samba.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "adtest: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "adtest: domain %s up in %v in namespace %s\n", dc.Realm, time.Since(begin).Round(time.Millisecond), dc.Netns)
	}
	code := runInNetns(dc)
	if err := dc.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "adtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// runInNetns runs this test binary again, with the same arguments, inside
// the DC's namespace, streaming its output, and returns its exit status.
// SIGINT and SIGTERM are passed on to it.
func runInNetns(dc *samba.DC) int {
	exe, err := os.Executable() // resolved here: inside, /proc/self/exe would be ip
	if err != nil {
		fmt.Fprintf(os.Stderr, "adtest: %v\n", err)
		return 1
	}
	info, err := json.Marshal(&dc.Info)
	if err != nil {
		fmt.Fprintf(os.Stderr, "adtest: %v\n", err)
		return 1
	}
	cmd := dc.Command(context.Background(), exe, os.Args[1:]...)
	cmd.Env = append(cmd.Env, envNetns+"="+dc.Netns, envInfo+"="+string(info))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If this process dies, so does the run inside (ip and sh exec it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "adtest: run the tests in %s: %v\n", dc.Netns, err)
		return 1
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if st, ok := exitErr.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			fmt.Fprintf(os.Stderr, "adtest: the tests in %s were killed by %v\n", dc.Netns, st.Signal())
			return 128 + int(st.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "adtest: run the tests in %s: %v\n", dc.Netns, err)
		return 1
	}
}

// domain returns the running domain, skipping the test when the DC cannot
// run here.
func domain(t *testing.T) *samba.Info {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if domainInfo == nil {
		t.Fatal("adtest: no domain (TestMain did not set one up)")
	}
	return domainInfo
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
