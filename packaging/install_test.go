package packaging

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testVersion marks packages this test installs: a gssocks package of
// another version on the machine is an operator's, and is left alone.
const testVersion = "0.0.0~pkgtest"

func ci() bool { return os.Getenv("CI") == "true" }

// need returns the path of tool, or skips the test (fails it under CI).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, tool); isExec(p) {
			return p
		}
	}
	if ci() {
		t.Fatalf("%s not found (scripts/install-deps.sh installs it)", tool)
	}
	t.Skipf("%s not found", tool)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "gssocks", "main.go")); err != nil {
		t.Fatalf("%s is not the gssocks repository: %v", root, err)
	}
	return root
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keytab writes a keytab for rcmd/gw.example.com, the principal the
// example configuration names, with MIT ktutil.
func keytab(t *testing.T, path string) {
	t.Helper()
	ktutil := need(t, "ktutil")
	cmd := exec.Command(ktutil)
	cmd.Stdin = strings.NewReader("addent -password -p rcmd/gw.example.com@EXAMPLE.TEST -k 3 -e aes256-cts-hmac-sha1-96\n" +
		"not-a-secret-test-password\nwkt " + path + "\nquit\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ktutil: %v\n%s", err, out)
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
}

// TestPackages builds the binary as `make package` does, then the .deb
// (installed with dpkg when root), the .rpm (read with rpm) and the image
// (read back with go-containerregistry).
func TestPackages(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "gssocks")
	start := time.Now()
	if err := BuildBinary(context.Background(), root, bin, testVersion, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	t.Logf("binary built in %v", time.Since(start).Round(time.Millisecond))
	checkStatic(t, bin)
	if out := runCmd(t, bin, "version"); !strings.HasPrefix(out, "gssocks "+testVersion+"\n") {
		t.Fatalf("gssocks version says %q, want the -X version %s", out, testVersion)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	build := func(t *testing.T, format string) string {
		t.Helper()
		info, err := PackageInfo(PackageSpec{Root: root, Binary: bin, Version: testVersion, Arch: runtime.GOARCH, MTime: mtime}, format)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		name, err := WritePackage(format, info, &buf)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("deb", func(t *testing.T) { testDeb(t, root, bin, build(t, "deb")) })
	t.Run("rpm", func(t *testing.T) { testRPM(t, root, bin, build(t, "rpm")) })
	t.Run("image", func(t *testing.T) { testImage(t, root, bin, mtime) })
}

// checkStatic: no interpreter and no shared libraries, so the binary runs
// FROM scratch and on any distribution.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs %q", libs)
	}
}

// dpkgStatus is "installed 0.0.0~pkgtest", "config-files ...", or "" when
// dpkg does not know the package.
func dpkgStatus(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", "gssocks").Output()
	if err != nil {
		return "" // unknown package
	}
	s := strings.TrimSpace(string(out))
	if strings.HasPrefix(s, "not-installed") {
		return ""
	}
	return s
}

type owner struct {
	user, group string
	mode        os.FileMode
}

func ownerOf(t *testing.T, path string) owner {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return owner{}
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, err := user.LookupId(strconv.Itoa(int(st.Uid)))
	un := strconv.Itoa(int(st.Uid))
	if err == nil {
		un = u.Username
	}
	g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	gn := strconv.Itoa(int(st.Gid))
	if err == nil {
		gn = g.Name
	}
	return owner{un, gn, fi.Mode() & (os.ModePerm | os.ModeDir)}
}

// testDeb installs the package on this machine (CI runs as root), checks
// what an operator gets, and purges it. It refuses to touch a machine
// where gssocks is installed by anyone but this test, and does not start
// the service.
func testDeb(t *testing.T, root, bin, deb string) {
	dpkg := need(t, "dpkg")
	need(t, "dpkg-query")
	info := runCmd(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture")
	if !strings.Contains(info, "Package: gssocks\n") || !strings.Contains(info, "Version: "+testVersion+"-1\n") {
		t.Errorf("dpkg-deb -f: %s", info)
	}
	if os.Geteuid() != 0 {
		if ci() {
			t.Fatal("CI runs as root: the .deb is installed with dpkg -i")
		}
		t.Skip("not root: the .deb is not installed")
	}
	analyze := need(t, "systemd-analyze")
	setpriv := need(t, "setpriv")

	switch st := dpkgStatus(t); {
	case st == "":
	case strings.HasSuffix(st, " "+testVersion+"-1"):
		t.Logf("purging gssocks %s left by an earlier run", st)
		runCmd(t, dpkg, "--purge", "gssocks")
	default:
		t.Fatalf("gssocks is installed here (%s): not replacing it; dpkg --purge gssocks to run this test", st)
	}
	for _, p := range []string{BinaryPath, ConfigDir, UnitPath} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists but belongs to no gssocks package: not overwriting it", p)
		}
	}
	_, err := user.Lookup("gssocks")
	userExisted := err == nil
	_, err = user.LookupGroup("gssocks")
	groupExisted := err == nil
	t.Cleanup(func() {
		if dpkgStatus(t) != "" {
			if out, err := exec.Command(dpkg, "--purge", "gssocks").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge gssocks: %v\n%s", err, out)
			}
		}
		if !userExisted {
			if out, err := exec.Command("userdel", "gssocks").CombinedOutput(); err != nil {
				t.Errorf("cleanup: userdel gssocks: %v\n%s", err, out)
			}
		}
		if !groupExisted {
			if _, err := user.LookupGroup("gssocks"); err == nil {
				if out, err := exec.Command("groupdel", "gssocks").CombinedOutput(); err != nil {
					t.Errorf("cleanup: groupdel gssocks: %v\n%s", err, out)
				}
			}
		}
	})

	start := time.Now()
	runCmd(t, dpkg, "-i", deb)
	t.Logf("dpkg -i in %v", time.Since(start).Round(time.Millisecond))
	if st := dpkgStatus(t); st != "installed "+testVersion+"-1" {
		t.Fatalf("after dpkg -i: %q", st)
	}

	// The system user: no login, home in /var/lib, a group of its own.
	u, err := user.Lookup("gssocks")
	if err != nil {
		t.Fatalf("no gssocks user after install: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if uid == 0 || uid >= 1000 {
		t.Errorf("gssocks uid %d, want a system uid (1-999)", uid)
	}
	if u.HomeDir != StateDir {
		t.Errorf("gssocks home %q, want %s", u.HomeDir, StateDir)
	}
	g, err := user.LookupGroup("gssocks")
	if err != nil || g.Gid != u.Gid {
		t.Errorf("gssocks group %+v (%v), want the user's primary group %s", g, err, u.Gid)
	}
	ent := runCmd(t, "getent", "passwd", "gssocks")
	if shell := strings.TrimSpace(ent[strings.LastIndex(ent, ":")+1:]); !strings.HasSuffix(shell, "/nologin") {
		t.Errorf("gssocks shell %q, want nologin", shell)
	}

	for path, want := range map[string]owner{
		BinaryPath:                              {"root", "root", 0o755},
		ConfigDir:                               {"root", "gssocks", os.ModeDir | 0o750},
		ConfigPath:                              {"root", "gssocks", 0o640},
		UnitPath:                                {"root", "root", 0o644},
		LogDir:                                  {"gssocks", "gssocks", os.ModeDir | 0o750},
		StateDir:                                {"gssocks", "gssocks", os.ModeDir | 0o750},
		DocDir + "/examples/notify-reload.conf": {"root", "root", 0o644},
	} {
		if got := ownerOf(t, path); got != want {
			t.Errorf("%s: %s:%s %v, want %s:%s %v", path, got.user, got.group, got.mode, want.user, want.group, want.mode)
		}
	}
	if sum(t, BinaryPath) != sum(t, bin) {
		t.Errorf("%s is not the binary built", BinaryPath)
	}
	if sum(t, ConfigPath) != sum(t, filepath.Join(root, "config.hcl.example")) {
		t.Errorf("%s is not config.hcl.example", ConfigPath)
	}
	conffiles := runCmd(t, "dpkg-query", "-W", "-f", "${Conffiles}", "gssocks")
	if !strings.Contains(conffiles, ConfigPath+" ") {
		t.Errorf("conffiles %q lack %s", conffiles, ConfigPath)
	}
	if out := runCmd(t, BinaryPath, "version"); !strings.HasPrefix(out, "gssocks "+testVersion+"\n") {
		t.Errorf("installed gssocks version: %q", out)
	}

	// As the service runs: user gssocks, the keytab in a directory of its
	// own (systemd's $CREDENTIALS_DIRECTORY), found through $KRB5_KTNAME.
	// The shipped configuration must pass the check and be readable.
	cred, err := os.MkdirTemp("", "gssocks-cred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(cred) })
	keytab(t, filepath.Join(cred, "keytab"))
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range []string{cred, filepath.Join(cred, "keytab")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	check := exec.Command(setpriv, "--reuid=gssocks", "--regid=gssocks", "--init-groups", "--",
		BinaryPath, "check", "--config", ConfigPath)
	check.Env = []string{"PATH=/usr/bin:/bin", "KRB5_KTNAME=" + filepath.Join(cred, "keytab")}
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Errorf("gssocks check as user gssocks: %v\n%s", err, out)
	}

	// systemd accepts the unit as installed, with no warning about it,
	// and its hardening keeps the exposure score at "OK" or better.
	verify := exec.Command(analyze, "verify", UnitPath)
	out, err := verify.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "gssocks") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", UnitPath).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0: %v\n%s", err, lastLines(string(out), 3))
	}
	// Installing enables and starts nothing: there is no keytab yet.
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/gssocks.service"); err == nil {
		t.Error("the package enabled gssocks.service")
	}

	// An edited configuration survives a reinstall (a conffile).
	edited := append(mustRead(t, ConfigPath), []byte("\n# edited by the operator\n")...)
	if err := os.WriteFile(ConfigPath, edited, 0o640); err != nil {
		t.Fatal(err)
	}
	runCmd(t, dpkg, "-i", deb)
	if !bytes.Equal(mustRead(t, ConfigPath), edited) {
		t.Error("reinstalling replaced the edited configuration")
	}
	if got := ownerOf(t, ConfigPath); got != (owner{"root", "gssocks", 0o640}) {
		t.Errorf("after reinstall %s: %+v", ConfigPath, got)
	}

	runCmd(t, dpkg, "--purge", "gssocks")
	if st := dpkgStatus(t); st != "" {
		t.Errorf("after purge: %q", st)
	}
	for _, p := range []string{BinaryPath, ConfigDir, UnitPath, LogDir, StateDir, DocDir} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after purge: %v", p, err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// testRPM reads the .rpm with rpm itself: the file list with owners,
// modes and flags, the scriptlets, the dependency on useradd, and the
// payload's binary and configuration.
func testRPM(t *testing.T, root, bin, pkg string) {
	rpm := need(t, "rpm")
	q := func(format string) string {
		return runCmd(t, rpm, "-qp", "--nosignature", "--qf", format, pkg)
	}
	if got := q("%{NAME} %{VERSION} %{RELEASE} %{ARCH}"); got != "gssocks "+testVersion+" 1 "+rpmArch(runtime.GOARCH) {
		t.Errorf("rpm header: %q", got)
	}
	files := q(`[%{FILEFLAGS:fflags}|%{FILEUSERNAME}:%{FILEGROUPNAME}|%{FILEMODES:perms}|%{FILENAMES}\n]`)
	want := []string{
		"|root:root|drwxr-x---|" + ConfigDir,
		"cn|root:root|-rw-r-----|" + ConfigPath, // config(noreplace)
		"|root:root|-rwxr-xr-x|" + BinaryPath,
		"|root:root|-rw-r--r--|" + UnitPath,
		"d|root:root|-rw-r--r--|" + DocDir + "/README.md",
		"d|root:root|-rw-r--r--|" + DocDir + "/config.hcl.example",
		"d|root:root|-rw-r--r--|" + DocDir + "/examples/notify-reload.conf",
		"|root:root|drwxr-x---|" + StateDir,
		"|root:root|drwxr-x---|" + LogDir,
	}
	got := strings.Split(strings.TrimSpace(files), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("rpm files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	scripts := runCmd(t, rpm, "-qp", "--nosignature", "--scripts", pkg)
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet", "useradd --system"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm scripts lack %q", s)
		}
	}
	if req := runCmd(t, rpm, "-qp", "--nosignature", "--requires", pkg); !strings.Contains(req, "shadow-utils") {
		t.Errorf("rpm requires %q, want shadow-utils (useradd)", req)
	}

	// The payload, through rpm's own converter to tar.
	conv := exec.Command(need(t, "rpm2archive"), "-n", "-")
	conv.Stdin = bytes.NewReader(mustRead(t, pkg))
	payload, err := conv.Output()
	if err != nil {
		t.Fatalf("rpm2archive: %v", err)
	}
	got2 := tarFiles(t, bytes.NewReader(payload))
	if b, ok := got2["."+BinaryPath]; !ok || sha256.Sum256(b.body) != sum(t, bin) {
		t.Errorf("rpm payload: %s is not the binary built", BinaryPath)
	}
	if b, ok := got2["."+ConfigPath]; !ok || sha256.Sum256(b.body) != sum(t, filepath.Join(root, "config.hcl.example")) {
		t.Errorf("rpm payload: %s is not config.hcl.example", ConfigPath)
	}
}

func rpmArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return goarch
}

type tarFile struct {
	hdr  *tar.Header
	body []byte
}

func tarFiles(t *testing.T, r io.Reader) map[string]tarFile {
	t.Helper()
	m := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		m[h.Name] = tarFile{h, b}
	}
}

// testImage builds the OCI archive `make image` writes, reads it back with
// go-containerregistry and checks what a container runtime will use.
func testImage(t *testing.T, root, bin string, created time.Time) {
	conf := filepath.Join(root, "packaging", "image-config.hcl")
	img, err := BuildImage(ImageSpec{Binary: bin, Config: conf, Version: testVersion, Revision: "0123abc", Arch: runtime.GOARCH, Created: created})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "gssocks-image.tar")
	ref := "gssocks:" + ImageTag(testVersion)
	if err := WriteOCIArchive(img, ref, archive); err != nil {
		t.Fatal(err)
	}
	back, gotRef, err := ReadOCIArchive(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if gotRef != "gssocks:0.0.0-pkgtest" {
		t.Errorf("ref name %q", gotRef)
	}
	if mt, err := back.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %v (%v), want OCI", mt, err)
	}
	cf, err := back.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User %q, want 65532:65532", c.User)
	}
	if want := []string{"/usr/bin/gssocks", "serve", "--config", "/etc/gssocks/config.hcl"}; !slices.Equal(c.Entrypoint, want) {
		t.Errorf("Entrypoint %q, want %q", c.Entrypoint, want)
	}
	if _, ok := c.ExposedPorts["1080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts %v, want 1080/tcp", c.ExposedPorts)
	}
	if !slices.Contains(c.Env, "KRB5_KTNAME="+ImageKeytab) {
		t.Errorf("Env %q lacks KRB5_KTNAME", c.Env)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH || !cf.Created.Time.Equal(created) {
		t.Errorf("platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":    "gssocks",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	layers, err := back.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %v", mt)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := tarFiles(t, rc)
	for name, want := range map[string]struct {
		mode     int64
		uid, gid int
	}{
		"usr/bin/gssocks":        {0o755, 0, 0},
		"etc/gssocks/":           {0o750, 0, ImageUID},
		"etc/gssocks/config.hcl": {0o640, 0, ImageUID},
		"etc/passwd":             {0o644, 0, 0},
		"etc/group":              {0o644, 0, 0},
		"var/log/gssocks/":       {0o750, ImageUID, ImageUID},
		"var/lib/gssocks/":       {0o750, ImageUID, ImageUID},
		"tmp/":                   {0o1777, 0, 0},
	} {
		f, ok := files[name]
		if !ok {
			t.Errorf("image has no %s", name)
			continue
		}
		if f.hdr.Mode != want.mode || f.hdr.Uid != want.uid || f.hdr.Gid != want.gid {
			t.Errorf("%s: mode %o %d:%d, want %o %d:%d", name, f.hdr.Mode, f.hdr.Uid, f.hdr.Gid, want.mode, want.uid, want.gid)
		}
	}
	if sha256.Sum256(files["usr/bin/gssocks"].body) != sum(t, bin) {
		t.Error("usr/bin/gssocks in the image is not the binary built")
	}
	if !strings.Contains(string(files["etc/passwd"].body), fmt.Sprintf("gssocks:x:%d:%d:", ImageUID, ImageUID)) ||
		!strings.Contains(string(files["etc/group"].body), fmt.Sprintf("gssocks:x:%d:", ImageUID)) {
		t.Errorf("image passwd/group lack uid/gid %d:\n%s%s", ImageUID, files["etc/passwd"].body, files["etc/group"].body)
	}

	// The image's configuration is valid as shipped, with the keytab
	// where the image's environment says (here: a file of the test).
	cfgPath := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(cfgPath, files["etc/gssocks/config.hcl"].body, 0o600); err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(t.TempDir(), "keytab")
	keytab(t, kt)
	check := exec.Command(bin, "check", "--config", cfgPath)
	check.Env = []string{"KRB5_KTNAME=" + kt}
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("gssocks check on the image's configuration: %v\n%s", err, out)
	}
}
