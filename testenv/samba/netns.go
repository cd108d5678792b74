package samba

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// netnsDir is where ip netns keeps its named namespaces.
const netnsDir = "/run/netns"

// ipPath is the ip program: on PATH, else /usr/sbin/ip or /sbin/ip
// (root's PATH may lack sbin under some harnesses).
func ipPath() string {
	if p, err := lookTool("ip"); err == nil {
		return p
	}
	return "ip"
}

// makeNetns creates the namespace with lo up and the DC's address on it.
func (dc *DC) makeNetns() error {
	if err := ipCmd("netns", "add", dc.Netns); err != nil {
		return err
	}
	dc.netnsMade = true
	if err := ipCmd("-n", dc.Netns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// Provisioning refuses --host-ip=127.0.0.1 (and then makes no DNS
	// record for the DC), hence a second loopback address.
	return ipCmd("-n", dc.Netns, "addr", "add", DCAddr+"/8", "dev", "lo")
}

func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipPath(), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// deleteNetns ends whatever still runs in the namespace (it is ours: only
// our commands enter it) and deletes it.
func deleteNetns(name string) error {
	killNetnsPids(name)
	return ipCmd("netns", "del", name)
}

// killNetnsPids sends SIGKILL to the processes in the namespace.
func killNetnsPids(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipPath(), "netns", "pids", name).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// sweepStale removes the namespaces and directories (in tmp) of earlier
// Starts whose process is gone without Close (killed, or a crash): names
// gssocks-ad-<pid>-<random> whose pid no longer exists.
func sweepStale(tmp string) {
	if entries, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range entries {
			if ownerGone(e.Name()) {
				_ = deleteNetns(e.Name())
			}
		}
	}
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			if e.IsDir() && ownerGone(e.Name()) {
				_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
			}
		}
	}
}

// ownerGone reports whether name is one of ours and the process that made
// it has exited.
func ownerGone(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	pidStr, rnd, ok := strings.Cut(rest, "-")
	if !ok || len(rnd) != 8 || strings.Trim(rnd, "0123456789abcdef") != "" {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
