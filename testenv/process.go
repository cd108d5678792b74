package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// FindScript finds a file of this repository, given relative to its root
// (e.g. "scripts/build-dante.sh"): next to this package's source, else in
// the module root above the working directory. The error names the paths
// tried.
func FindScript(rel string) (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", filepath.FromSlash(rel))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return filepath.Clean(p), nil
		}
		tried = append(tried, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, filepath.FromSlash(rel))
				if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
					return p, nil
				}
				tried = append(tried, p)
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("%s not found (tried %s)", rel, strings.Join(tried, ", "))
}

// StopGroup stops a daemon that leads its own process group: SIGTERM to
// the leader pgid, SIGKILL to the group if the leader has not exited
// (exited is closed) within grace, and finally SIGKILL to whatever is left
// of the group. name is for errors.
func StopGroup(name string, pgid int, exited <-chan struct{}, grace time.Duration) error {
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(grace):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, pgid)
		}
	}
	// Children still there after the leader has gone; ESRCH means none.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s's process group %d: %w", name, pgid, err)
	}
	return nil
}

// CacheDir returns os.UserCacheDir()/gssocks/name, created (without a home
// directory: os.TempDir()/gssocks-cache/gssocks/name). Slow builds (Dante,
// the MIT peer, the Samba template) are kept there between test runs.
func CacheDir(name string) (string, error) {
	root, err := os.UserCacheDir()
	if err != nil {
		root = filepath.Join(os.TempDir(), "gssocks-cache")
	}
	dir := filepath.Join(root, "gssocks", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// LockFile takes an exclusive flock on path, serialising a slow step
// across test binaries running at once, and returns its release.
func LockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
