package samba

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gssocks/gssocks/testenv"
)

// ErrToolsMissing is wrapped by the errors of Install and Start when the
// domain cannot run on this machine: not root (network namespaces need
// it), or Samba not installed and not installable (no apt-get, or not
// root; see scripts/install-samba.sh).
var ErrToolsMissing = errors.New("samba: cannot run a Samba AD DC here (needs root, Debian's samba packages and ip netns; see scripts/install-samba.sh)")

const (
	scriptRel  = "scripts/install-samba.sh"
	exitCannot = 3 // install-samba.sh's exit status for "cannot install here"
)

// toolNames are the programs Start runs.
func toolNames() []string {
	return []string{"samba", "samba-tool", "ldbsearch", "ldbmodify", "ip", "sh", "bash", "mount", "cp"}
}

var (
	installMu sync.Mutex
	installed bool // set once Install has succeeded in this process
)

// Install makes sure Samba's tools are installed, running
// scripts/install-samba.sh (which installs Debian's packages with apt-get
// when one is missing, and does nothing otherwise), and that this process
// may create network namespaces (root). Concurrent installs, in this
// process or others, are serialised with a lock file. The error wraps
// ErrToolsMissing when the DC cannot run here.
func Install() error {
	installMu.Lock()
	defer installMu.Unlock()
	if installed {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrToolsMissing)
	}
	if checkTools() != nil {
		if err := runInstallScript(); err != nil {
			return err
		}
		if err := checkTools(); err != nil {
			return err
		}
	}
	installed = true
	return nil
}

// checkTools reports a missing tool or privilege, wrapping ErrToolsMissing.
func checkTools() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrToolsMissing)
	}
	var missing []string
	for _, t := range toolNames() {
		if _, err := lookTool(t); err != nil {
			missing = append(missing, t)
		}
	}
	if _, err := os.Stat(provisionSchema); err != nil {
		missing = append(missing, "samba-ad-provision")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrToolsMissing, strings.Join(missing, ", "))
	}
	return nil
}

// provisionSchema is a file of samba-ad-provision, without which
// samba-tool domain provision fails.
const provisionSchema = "/usr/share/samba/setup/ad-schema/AD_DS_Attributes__Windows_Server_2012_R2.ldf"

// lookTool finds a program on PATH, /usr/sbin or /sbin.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// runInstallScript runs install-samba.sh under an exclusive lock.
func runInstallScript() error {
	script, err := findScript(scriptRel)
	if err != nil {
		return err
	}
	cache, err := cacheDir()
	if err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(cache, "install.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	bash, err := exec.LookPath("bash")
	if err != nil {
		return fmt.Errorf("%w: bash not found", ErrToolsMissing)
	}
	cmd := exec.Command(bash, script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	runErr := cmd.Run()
	if runErr == nil {
		return nil
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) && exitErr.ExitCode() == exitCannot {
		return fmt.Errorf("%w: %s", ErrToolsMissing, lastLine(out.String()))
	}
	return fmt.Errorf("samba: %s: %v:\n%s", script, runErr, tail(out.String(), 15))
}

func cacheDir() (string, error) {
	dir, err := testenv.CacheDir("samba")
	if err != nil {
		return "", fmt.Errorf("samba: %w", err)
	}
	return dir, nil
}

func lockFile(path string) (unlock func(), err error) {
	unlock, err = testenv.LockFile(path)
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	return unlock, nil
}

// Require makes sure the DC can run here (Install). If it cannot, the test
// is skipped with a one-line message, or, when CI=true, fails; any other
// failure fails the test.
func Require(tb testing.TB) {
	tb.Helper()
	err := Install()
	if err == nil {
		return
	}
	if errors.Is(err, ErrToolsMissing) && os.Getenv("CI") != "true" {
		tb.Skip(firstLine(err.Error()))
	}
	if errors.Is(err, ErrToolsMissing) {
		tb.Fatalf("%v\n(CI=true: the Samba AD DC must run)", err)
	}
	tb.Fatal(err)
}

// StartForTest is Require plus Start, with Close registered in tb.Cleanup.
func StartForTest(tb testing.TB, opts Options) *DC {
	tb.Helper()
	Require(tb)
	dc, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := dc.Close(); err != nil {
			tb.Errorf("close DC: %v", err)
		}
	})
	return dc
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// findScript locates rel in the repository.
func findScript(rel string) (string, error) {
	p, err := testenv.FindScript(rel)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolsMissing, err)
	}
	return p, nil
}
