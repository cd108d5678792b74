package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/internal/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestReadBuildVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/gssocks/gssocks", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	installed := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		ok       bool
		override string
		want     buildVersion
	}{
		{"ldflags override and vcs stamp", stamped, true, "1.2.3",
			buildVersion{"1.2.3", "0123456789abcdef0123456789abcdef01234567", true, "2026-01-02T03:04:05Z", "go1.26.0", platform}},
		{"no override: devel build stays dev", stamped, true, "dev",
			buildVersion{"dev", "0123456789abcdef0123456789abcdef01234567", true, "2026-01-02T03:04:05Z", "go1.26.0", platform}},
		{"go install @version", installed, true, "dev",
			buildVersion{"v1.4.0", "", false, "", "go1.26.1", platform}},
		{"override wins over module version", installed, true, "2.0.0",
			buildVersion{"2.0.0", "", false, "", "go1.26.1", platform}},
		{"no build info", nil, false, "dev",
			buildVersion{"dev", "", false, "", runtime.Version(), platform}},
	} {
		if got := readBuildVersion(tc.bi, tc.ok, tc.override); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestVersionOutput(t *testing.T) {
	var b bytes.Buffer
	v := buildVersion{"1.2.3", "abc123", true, "2026-01-02T03:04:05Z", "go1.26.0", "linux/amd64"}
	if err := v.write(&b); err != nil {
		t.Fatal(err)
	}
	want := "gssocks 1.2.3\ncommit   abc123 (modified) 2026-01-02T03:04:05Z\ngo       go1.26.0 linux/amd64\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := (buildVersion{Version: "dev", GoVersion: "go1.26.0", Platform: "linux/amd64"}).write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "commit   unknown (built without VCS stamping") {
		t.Errorf("unstamped build says %q", b.String())
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version", "extra"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q", code, stderr.String())
	}
}

// A binary built the way `make package` builds it reports the -X version,
// the commit HEAD names and the toolchain's version. GOFLAGS may carry
// -buildvcs=false (it does on the development machines); the flag given
// on the command line wins.
func TestVersionCommandStampsCommit(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git not found; CI needs it for the VCS stamp")
		}
		t.Skip("git not found")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): no commit to stamp", err)
	}
	topOut, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	top := strings.TrimSpace(string(topOut))
	fi, err := os.Stat(filepath.Join(top, ".git"))
	stamps := err == nil && fi.IsDir()
	status := func() string {
		out, err := exec.Command(git, "status", "--porcelain").Output()
		if err != nil {
			t.Fatalf("git status: %v", err)
		}
		return string(out)
	}
	before := status()
	bin := filepath.Join(t.TempDir(), "gssocks")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=true",
		"-ldflags", "-X main.version=9.8.7-test", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	after := status()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("gssocks version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("gssocks version printed %q, want 3 lines", out)
	}
	if lines[0] != "gssocks 9.8.7-test" {
		t.Errorf("version line %q, want the -X value", lines[0])
	}
	if !stamps {
		// go (1.26) looks for a .git directory and does not see a
		// worktree's .git file: no stamp, and the output must say so.
		if !strings.HasPrefix(lines[1], "commit   unknown") {
			t.Errorf("commit line %q in a git worktree, want unknown", lines[1])
		}
		t.Skipf("%s is a git worktree: go does not stamp its commit; checked the unknown case only", top)
	}
	commit := strings.Fields(strings.TrimPrefix(lines[1], "commit"))
	if len(commit) == 0 || commit[0] != strings.TrimSpace(string(head)) {
		t.Errorf("commit line %q, want HEAD %s", lines[1], head)
	}
	if before == after { // the tree did not change while building
		if modified := strings.Contains(lines[1], "(modified)"); modified != (before != "") {
			t.Errorf("commit line %q: modified=%v, but git status is %q", lines[1], modified, before)
		}
	}
	if want := "go       " + runtime.Version() + " "; !strings.HasPrefix(lines[2], want) {
		t.Errorf("go line %q, want prefix %q", lines[2], want)
	}
}

// TestBuildInfoMetricVersion: a binary built with -X main.version serves
// gssocks_build_info with that version, the one `gssocks version`
// prints, scraped from its metrics listener.
func TestBuildInfoMetricVersion(t *testing.T) {
	env := realm.Get(t)
	bin := buildGssocks(t, "-ldflags", "-X main.version=1.2.3-test")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "gssocks 1.2.3-test\n") {
		t.Fatalf("gssocks version: %q %v", out, err)
	}
	dir := t.TempDir()
	kt := testutil.CopyKeytab(t, env.Keytab, dir, 0o600)
	conf := filepath.Join(dir, "gssocks.hcl")
	maddr := freeAddr(t)
	opsConfig(t, conf, freeAddr(t), kt, "80", fmt.Sprintf("metrics {\n  listen = %q\n}\n", maddr))
	startProcess(t, bin, conf, env.Realm.Env("", ""))

	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	f := fams["gssocks_build_info"]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("gssocks_build_info: %v", f)
	}
	m := f.GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != "1.2.3-test" || labels["goversion"] != runtime.Version() || m.GetGauge().GetValue() != 1 {
		t.Errorf("gssocks_build_info %v = %v, want version 1.2.3-test, goversion %s, value 1", labels, m.GetGauge().GetValue(), runtime.Version())
	}
	if _, ok := labels["revision"]; !ok {
		t.Errorf("gssocks_build_info has no revision label: %v", labels)
	}
}
