// Package packaging builds what an operator installs: the static gssocks
// binary, the .deb and .rpm packages (with nfpm) and an OCI container
// image (with go-containerregistry, no Docker daemon, FROM scratch).
//
// It is its own Go module so that nfpm and go-containerregistry, and the
// few dozen modules they bring, stay out of the gateway's module: the
// gateway binary links none of them. It drives the gateway's module only
// through `go build`, so it needs no replace directive.
//
// The files installed beside the binary live next to this package:
// gssocks.service (the systemd unit), scripts/ (maintainer scripts),
// notify-reload.conf (a drop-in for systemd >= 253), image-config.hcl
// (the container's configuration) and Dockerfile (for those with Docker).
// cmd/mkpkg is the command `make package` and `make image` run.
package packaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrBadVersion is returned for a version string that cannot be a package
// version or be passed through -ldflags -X.
var ErrBadVersion = errors.New("packaging: bad version")

// versionRE is what deb, rpm and -ldflags all accept: no spaces, quotes
// or dashes at the start.
var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~_]*$`)

// CheckVersion reports whether v can be used as the version of the
// binary and of the packages: it starts with a digit and holds only
// letters, digits and . + ~ _ (no '-', which rpm refuses in a version).
func CheckVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("%w %q: want a digit first, then letters, digits and . + ~ _", ErrBadVersion, v)
	}
	return nil
}

// Revision is the commit a build comes from, as git names it.
type Revision struct {
	Commit string    // full hash; "" outside a git checkout
	Time   time.Time // commit time, UTC; zero outside a git checkout
	Dirty  bool      // uncommitted changes in the work tree
	Tag    string    // the v-prefixed tag at the commit, without the v; "" if none
}

// GitRevision asks git about the checkout at root. Outside a checkout (a
// source tarball) it returns a zero Revision and no error.
func GitRevision(ctx context.Context, root string) (Revision, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return Revision{}, nil
	}
	if _, err := git("rev-parse", "--git-dir"); err != nil {
		return Revision{}, nil // not a checkout
	}
	var r Revision
	var err error
	if r.Commit, err = git("rev-parse", "HEAD"); err != nil {
		return Revision{}, err
	}
	ct, err := git("show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return Revision{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Revision{}, fmt.Errorf("git commit time %q: %w", ct, err)
	}
	r.Time = time.Unix(sec, 0).UTC()
	status, err := git("status", "--porcelain")
	if err != nil {
		return Revision{}, err
	}
	r.Dirty = status != ""
	if tag, err := git("describe", "--tags", "--exact-match", "--match", "v[0-9]*", "HEAD"); err == nil {
		r.Tag = strings.TrimPrefix(tag, "v")
	}
	return r, nil
}

// Version is the package version for a revision: the tag (v1.2.0 →
// "1.2.0") on a tagged, clean commit, else a snapshot that sorts before
// any release and by commit time: "0.0.0~git20260102030405.0123abc",
// with ".dirty" for uncommitted changes. Outside git: "0.0.0~dev".
func (r Revision) Version() string {
	switch {
	case r.Commit == "":
		return "0.0.0~dev"
	case r.Tag != "" && !r.Dirty && CheckVersion(r.Tag) == nil:
		return r.Tag
	}
	v := "0.0.0~git" + r.Time.Format("20060102150405") + "." + r.Commit[:min(7, len(r.Commit))]
	if r.Dirty {
		v += ".dirty"
	}
	return v
}

// BuildBinary builds cmd/gssocks of the gateway's module at root into out:
// static (CGO_ENABLED=0), -trimpath, for linux/goarch, stripped of symbol
// tables, with version through -ldflags -X main.version. -buildvcs=auto
// overrides a -buildvcs=false in GOFLAGS so the commit is stamped when go
// can see it (not in a git worktree: go looks for a .git directory).
func BuildBinary(ctx context.Context, root, out, version, goarch string) error {
	if err := CheckVersion(version); err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("packaging: go toolchain not on PATH: %w", err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=auto",
		"-ldflags", "-s -w -X main.version="+version, "-o", abs, "./cmd/gssocks")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: go build ./cmd/gssocks: %w\n%s", err, b)
	}
	return nil
}
