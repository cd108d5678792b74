// Package samba runs a throwaway Active Directory domain for tests: a
// Samba 4 domain controller, whose KDC is Heimdal (not MIT) and issues
// tickets carrying a real PAC (user SID, groups with nested groups
// expanded, UPN, signatures).
//
// Start provisions the domain AD.EXAMPLE.TEST (NetBIOS ADEXAMPLE, fixed
// domain SID DomainSID, so SIDs are the same on every run) in a temporary
// directory and runs samba inside a network namespace of its own, where
// the DC's ports (53, 88, 135, 389, 445, ...) collide with nothing. The
// namespace has only its loopback interface, with 127.0.0.1 and the DC's
// address 127.0.0.2; it has no route out and the host cannot reach it, so
// clients must run inside it too: DC.Command runs a program there (with a
// private /etc/resolv.conf naming the DC), and package internal/adtest
// re-executes its test binary there.
//
// The directory holds everything: the DC's state (DIR/dc, with its
// smb.conf at DIR/dc/etc/smb.conf), a krb5.conf for clients (KDC
// 127.0.0.2:88, no DNS, no reverse lookups), the service keytab and
// samba's output (DIR/samba.log). Nothing under /etc is read or written.
//
// The domain, made offline before samba starts:
//
//	users   alice, bob (passwords in Info.Users)
//	groups  vpn-users: alice
//	        staff:     vpn-users (so alice is in staff only by nesting)
//	service svc-socks, SPNs rcmd/gw.ad.example.test and
//	        socks/gw.ad.example.test, AES only
//	        (msDS-SupportedEncryptionTypes 24); the keys of
//	        rcmd/gw.ad.example.test are exported to Info.Keytab
//
// bob is in neither group; both users are in Domain Users (RID 513).
//
// Provisioning and the accounts take about 6 s, so the result is kept as a
// template in os.UserCacheDir()/gssocks/samba/<hash of the recipe and the
// Samba version>, made once under a lock file and copied for each Start
// (only smb.conf names the directory; its paths are rewritten). A Start
// from the template, until the KDC answers, takes about 0.3 s.
//
// Samba comes from Debian's packages, installed by
// scripts/install-samba.sh (Install, Require). Network namespaces need
// root.
package samba

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/testenv"
)

// The domain every Start provisions.
const (
	Realm     = "AD.EXAMPLE.TEST"
	Domain    = "ADEXAMPLE" // NetBIOS domain name
	DNSDomain = "ad.example.test"
	DomainSID = "S-1-5-21-3623811015-3361044348-30300820"
	// DCAddr is the DC's address inside the namespace; KDC its Kerberos
	// service (TCP and UDP).
	DCAddr = "127.0.0.2"
	KDC    = DCAddr + ":88"
	// Service is the gateway's principal, whose keys are in Info.Keytab;
	// the service account also has socks/gw.ad.example.test.
	Service        = "rcmd/gw." + DNSDomain
	ServiceAccount = "svc-socks"
)

// RIDs of well-known groups.
const (
	RIDDomainUsers = 513
)

// namePrefix starts the names of the namespaces and directories Start
// makes: gssocks-ad-<pid>-<random>.
const namePrefix = "gssocks-ad-"

const (
	startTimeout = 30 * time.Second // until the KDC answers
	stopTimeout  = 10 * time.Second // SIGTERM grace before SIGKILL
	cmdTimeout   = 2 * time.Minute  // per samba-tool, ip, ... run
)

// Options configure Start.
type Options struct {
	// TempDir is where the DC's directory is made (default os.TempDir()).
	// Keep it short: samba's Unix sockets live below it.
	TempDir string
	// NoCache provisions from scratch into the DC's directory instead of
	// copying the cached template (slower; for testing the recipe).
	NoCache bool
}

// Info is what clients need to know about a running DC. It is plain data
// (JSON-encodable), to be handed to a process inside the namespace.
type Info struct {
	Realm     string // "AD.EXAMPLE.TEST"
	Domain    string // NetBIOS name, "ADEXAMPLE"
	DNSDomain string // "ad.example.test"
	KDC       string // "127.0.0.2:88", reachable inside Netns only
	Netns     string // the network namespace's name (ip netns)
	Krb5Conf  string // krb5.conf for clients: the realm's KDC, no DNS
	Keytab    string // keys of Service
	Service   string // "rcmd/gw.ad.example.test"
	// Services are all the SPNs of the service account.
	Services  []string
	DomainSID string
	Users     map[string]string // user name -> password
	UserSIDs  map[string]string // user or service account name -> SID
	GroupSIDs map[string]string // group name -> SID
}

// UserSID returns the SID of a user (or the service account), "" if there
// is no such account.
func (i *Info) UserSID(name string) string { return i.UserSIDs[name] }

// GroupSID returns the SID of a group made by Start, "" if there is none.
func (i *Info) GroupSID(name string) string { return i.GroupSIDs[name] }

// DomainUsersSID is the SID of Domain Users, every user's primary group.
func (i *Info) DomainUsersSID() string {
	return i.DomainSID + "-" + strconv.Itoa(RIDDomainUsers)
}

// DC is a running domain controller. Close stops it and removes its
// namespace and directory.
type DC struct {
	Info
	Dir string // the temporary directory holding everything
	// Pid is samba's root process, leader of the session and process
	// group of all of samba's processes.
	Pid int

	resolvConf string
	exited     chan struct{} // closed when samba has exited
	waitErr    error         // samba's exit, once exited is closed
	netnsMade  bool

	closeOnce sync.Once
	closeErr  error
}

// Start provisions (or copies from the template) a fresh domain, creates
// the network namespace and runs samba there until the KDC answers on
// KDC. It needs root and Samba's tools (Install); without them the error
// wraps ErrToolsMissing.
func Start(opts Options) (_ *DC, err error) {
	if err := checkTools(); err != nil {
		return nil, err
	}
	tmp := opts.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	sweepStale(tmp)

	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	name := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	dir, err := filepath.Abs(filepath.Join(tmp, name))
	if err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	dc := &DC{
		Info: Info{
			Realm:     Realm,
			Domain:    Domain,
			DNSDomain: DNSDomain,
			KDC:       KDC,
			Netns:     name,
			Krb5Conf:  filepath.Join(dir, "krb5.conf"),
			Keytab:    filepath.Join(dir, keytabName),
			Service:   Service,
			Services:  serviceSPNs(),
			DomainSID: DomainSID,
			Users:     userPasswords(),
		},
		Dir:        dir,
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
	defer func() {
		// dc, not the result: an error return has already set that to nil.
		if err != nil {
			if cerr := dc.Close(); cerr != nil {
				err = fmt.Errorf("%w (and on cleaning up: %v)", err, cerr)
			}
		}
	}()

	if err := os.WriteFile(dc.resolvConf, []byte("nameserver "+DCAddr+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := dc.makeNetns(); err != nil {
		return nil, err
	}
	dcDir := filepath.Join(dir, "dc")
	var sids *accountSIDs
	if opts.NoCache {
		sids, err = dc.provision(dcDir, dc.Keytab)
	} else {
		sids, err = dc.fromTemplate(dcDir)
	}
	if err != nil {
		return nil, err
	}
	dc.UserSIDs, dc.GroupSIDs = sids.Users, sids.Groups
	if err := os.WriteFile(dc.Krb5Conf, []byte(krb5Conf), 0o644); err != nil {
		return nil, fmt.Errorf("samba: %w", err)
	}
	if err := dc.startSamba(filepath.Join(dcDir, "etc", "smb.conf")); err != nil {
		return nil, err
	}
	return dc, nil
}

// krb5Conf is the clients' krb5.conf: the KDC by address, no DNS and no
// reverse lookups (the namespace has no resolver but the DC), AES only.
const krb5Conf = `# generated by github.com/gssocks/gssocks/testenv/samba
[libdefaults]
	default_realm = ` + Realm + `
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
	` + Realm + ` = {
		kdc = ` + KDC + `
	}

[domain_realm]
	.` + DNSDomain + ` = ` + Realm + `
	` + DNSDomain + ` = ` + Realm + `
`

// Command returns a command running name with args inside the DC's
// namespace, with the namespace's /etc/resolv.conf (naming the DC) bound
// over the host's in a private mount namespace, and KRB5_CONFIG set to
// Krb5Conf in its environment (os.Environ() plus that).
func (dc *DC) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, ipPath(), dc.netnsArgs(name, args...)...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+dc.Krb5Conf)
	cmd.WaitDelay = time.Second
	return cmd
}

// netnsArgs are ip's arguments to run name with args in the namespace.
// ip netns exec gives the command a mount namespace of its own (slave to
// the host's), so the bind mount of resolv.conf is private to it.
func (dc *DC) netnsArgs(name string, args ...string) []string {
	return append([]string{"netns", "exec", dc.Netns,
		"sh", "-c", `mount --bind "$1" /etc/resolv.conf && shift && exec "$@"`, "sh", dc.resolvConf, name}, args...)
}

// run runs a command in the namespace and returns its combined output,
// which is in the error on failure.
func (dc *DC) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := dc.Command(ctx, name, args...)
	cmd.Dir = dc.Dir
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("samba: %s %s: %v:\n%s", name, strings.Join(args, " "), err, tail(string(out), 15))
	}
	return string(out), nil
}

// startSamba runs samba in the foreground in the namespace, in a session
// of its own, and waits until the KDC accepts TCP connections there.
func (dc *DC) startSamba(smbConf string) error {
	logPath := filepath.Join(dc.Dir, "samba.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	defer logf.Close() // the child has its own copy
	// ip netns exec and sh exec samba: the pid is samba's.
	cmd := exec.Command(ipPath(), dc.netnsArgs("samba", "-F", "--debug-stdout", "-s", smbConf)...)
	cmd.Dir = dc.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "KRB5_CONFIG="+dc.Krb5Conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Setsid: samba and all its children form one process group to stop.
	// Pdeathsig: the kernel kills samba (its children follow) if the test
	// binary dies without Close; it fires when the OS thread that started
	// samba exits, which Go does not do for threads of goroutines that
	// are not locked to them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("samba: start samba: %w", err)
	}
	dc.Pid = cmd.Process.Pid
	dc.exited = make(chan struct{})
	go func() {
		dc.waitErr = cmd.Wait()
		close(dc.exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-dc.exited:
			return fmt.Errorf("samba: samba exited (%v) before the KDC answered on %s:\n%s", dc.waitErr, KDC, tail(readFile(logPath), 20))
		default:
		}
		if dc.kdcAnswers() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("samba: KDC not answering on %s in %s after %v:\n%s", KDC, dc.Netns, startTimeout, tail(readFile(logPath), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kdcAnswers reports whether a TCP connection to the KDC succeeds from
// inside the namespace.
func (dc *DC) kdcAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(KDC, ":")
	cmd := exec.CommandContext(ctx, ipPath(), "netns", "exec", dc.Netns,
		"bash", "-c", `exec 3<>"/dev/tcp/$0/$1"`, host, port)
	return cmd.Run() == nil
}

// Close stops samba (SIGTERM, which ends the whole tree; SIGKILL to its
// process group after a grace period), ends anything else left in the
// namespace, deletes the namespace and removes the directory. It may be
// called more than once.
func (dc *DC) Close() error {
	dc.closeOnce.Do(func() { dc.closeErr = dc.close() })
	return dc.closeErr
}

func (dc *DC) close() error {
	var errs []error
	if dc.exited != nil {
		if err := testenv.StopGroup("samba: samba", dc.Pid, dc.exited, stopTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if dc.netnsMade {
		if err := deleteNetns(dc.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	if dc.Dir != "" {
		if err := os.RemoveAll(dc.Dir); err != nil {
			errs = append(errs, fmt.Errorf("samba: %w", err))
		}
	}
	return errors.Join(errs...)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
