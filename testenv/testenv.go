// Package testenv gives tests a throwaway MIT Kerberos realm: a KDC
// (krb5kdc) on a free loopback port with its database, stash and
// configuration in a temporary directory, plus helpers to add principals,
// export keytabs, rotate keys, get tickets and run the MIT command-line
// tools against it.
//
// Nothing outside the realm's directory is read or written: every child
// process gets KRB5_CONFIG and KRB5_KDC_PROFILE pointing at the realm's own
// krb5.conf and kdc.conf (see Realm.Env), never /etc.
//
// The configuration files are rendered from the templates in templates/.
// The same templates render the dockerised realm in docker/ for people who
// want to try gssocks by hand; regenerate it with
//
//	go run ./testenv/cmd/gendocker
//
// The MIT tools come from Debian's packages:
//
//	apt-get install krb5-kdc krb5-admin-server krb5-user libkrb5-dev
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

const (
	defaultRealm = "EXAMPLE.TEST"
	installHint  = "apt-get install krb5-kdc krb5-admin-server krb5-user libkrb5-dev"

	kdcAttempts     = 5                // tries to get a KDC up, each on a new port
	kdcStartTimeout = 15 * time.Second // per try
	kdcStopTimeout  = 5 * time.Second  // SIGTERM grace before SIGKILL
	cmdTimeout      = time.Minute      // per kadmin.local, kinit, ... run
)

// ErrToolsMissing is wrapped by the errors of Start (and the messages of
// Require) when the MIT Kerberos programs are not installed.
var ErrToolsMissing = errors.New("testenv: MIT Kerberos tools not installed (" + installHint + ")")

// defaultTools are the programs Start needs.
func defaultTools() []string {
	return []string{"krb5kdc", "kdb5_util", "kadmin.local", "kinit"}
}

// Options configure Start.
type Options struct {
	Realm    string // default "EXAMPLE.TEST"
	AllowRC4 bool   // give principals rc4-hmac keys and let the KDC issue RC4 session keys
	// AnonymousPKINIT gives the KDC a certificate from a throwaway CA and
	// the WELLKNOWN/ANONYMOUS principal, so that Realm.KinitAnonymous
	// (kinit -n) gets anonymous tickets (RFC 6112, RFC 8062). Needs MIT's
	// PKINIT plugin (apt-get install krb5-pkinit; see RequirePKINIT).
	AnonymousPKINIT bool
}

// Realm is a running throwaway Kerberos realm. Its methods are safe for
// concurrent use.
type Realm struct {
	Name     string // e.g. "EXAMPLE.TEST"
	Dir      string // temporary directory holding everything of the realm
	KDCAddr  string // "127.0.0.1:PORT", TCP and UDP
	Krb5Conf string // path of the krb5.conf clients should use

	allowRC4 bool
	pkinit   *pkinitFiles // nil without Options.AnonymousPKINIT
	kdcConf  string       // path of kdc.conf (KRB5_KDC_PROFILE)
	tmpl     *template.Template
	kdc      *kdcProcess

	confMu sync.Mutex // serialises writing ClientConfig variants

	closeOnce sync.Once
	closeErr  error
}

// kdcProcess is a running krb5kdc.
type kdcProcess struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd.Wait has returned
	waitErr error         // result of cmd.Wait, valid once exited is closed
}

// Start creates a realm in a new temporary directory and starts its KDC.
// Close stops the KDC and removes the directory.
func Start(opts Options) (*Realm, error) {
	name := opts.Realm
	if name == "" {
		name = defaultRealm
	}
	if !validRealm(name) {
		return nil, fmt.Errorf("testenv: invalid realm name %q (want upper case letters, digits, dots, dashes)", name)
	}
	if err := lookTools(defaultTools()...); err != nil {
		return nil, err
	}
	if opts.AnonymousPKINIT {
		if _, err := lookPKINIT(); err != nil {
			return nil, err
		}
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gssocks-krb5-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	r := &Realm{
		Name:     name,
		Dir:      dir,
		Krb5Conf: filepath.Join(dir, "krb5.conf"),
		allowRC4: opts.AllowRC4,
		kdcConf:  filepath.Join(dir, "kdc.conf"),
		tmpl:     tmpl,
	}
	if opts.AnonymousPKINIT {
		if r.pkinit, err = writePKINITFiles(dir, name); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	if err := r.start(); err != nil {
		_ = r.Close()
		return nil, err
	}
	if opts.AnonymousPKINIT {
		if err := r.AddService(anonymousPrincipal); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	return r, nil
}

// start writes the configuration, creates the database and starts the KDC,
// on a new port for each try. The port is picked right before krb5kdc
// starts, not before the (slow) database creation, to keep short the time
// in which another process can be given the same port.
func (r *Realm) start() error {
	r.KDCAddr = "127.0.0.1:0" // for kdb5_util, which does not listen
	if err := r.writeConfigs(); err != nil {
		return err
	}
	if err := r.createDB(); err != nil {
		return err
	}
	var lastErr error
	for range kdcAttempts {
		port, err := freePort()
		if err != nil {
			return err
		}
		r.KDCAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := r.writeConfigs(); err != nil {
			return err
		}
		kdc, err := r.startKDC(port)
		if err == nil {
			r.kdc = kdc
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("testenv: KDC did not start in %d tries, last: %w", kdcAttempts, lastErr)
}

// confData returns the template data for this realm's files.
func (r *Realm) confData() confData {
	return confData{
		Comment:     "generated by testenv",
		Realm:       r.Name,
		AllowRC4:    r.allowRC4,
		KDCAddr:     r.KDCAddr,
		Listen:      r.KDCAddr,
		DBDir:       r.Dir,
		ConfDir:     r.Dir,
		LogTarget:   "FILE:" + filepath.Join(r.Dir, "kdc.log"),
		KeyEnctypes: keyEnctypes(r.allowRC4),
		PKINIT:      r.pkinit,
	}
}

func (r *Realm) writeConfigs() error {
	for _, f := range []struct{ tmpl, path string }{
		{"krb5.conf.tmpl", r.Krb5Conf},
		{"kdc.conf.tmpl", r.kdcConf},
		{"kadm5.acl.tmpl", filepath.Join(r.Dir, "kadm5.acl")},
	} {
		if err := r.renderFile(f.tmpl, f.path, r.confData()); err != nil {
			return err
		}
	}
	return nil
}

func (r *Realm) renderFile(tmpl, path string, data confData) error {
	b, err := render(r.tmpl, tmpl, data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

func (r *Realm) createDB() error {
	master := make([]byte, 24)
	if _, err := rand.Read(master); err != nil {
		return fmt.Errorf("testenv: master password: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	_, err := r.run(ctx, nil, "", "kdb5_util", "-r", r.Name, "-P", hex.EncodeToString(master), "create", "-s")
	return err
}

// errKDCPortShared is returned by startKDC when another process listens
// on the port given to our krb5kdc.
var errKDCPortShared = errors.New("another process listens on the same port")

// startKDC runs krb5kdc in the foreground on port (r.KDCAddr) and waits,
// at most kdcStartTimeout, until it is ready (see kdcReady).
func (r *Realm) startKDC(port int) (*kdcProcess, error) {
	bin, err := lookTool("krb5kdc")
	if err != nil {
		return nil, err
	}
	outPath := filepath.Join(r.Dir, "krb5kdc.out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(bin, "-n", "-r", r.Name)
	cmd.Env = r.Env("", "")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = kdcProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start krb5kdc: %w", err)
	}
	k := &kdcProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		k.waitErr = cmd.Wait()
		close(k.exited)
	}()

	deadline := time.Now().Add(kdcStartTimeout)
	for {
		select {
		case <-k.exited:
			return nil, fmt.Errorf("krb5kdc on %s exited (%v): %s", r.KDCAddr, k.waitErr, r.logTail(outPath, "kdc.log"))
		default:
		}
		ready, err := r.kdcReady(cmd.Process.Pid, port)
		if err != nil {
			k.stop()
			return nil, fmt.Errorf("krb5kdc on %s: %w", r.KDCAddr, err)
		}
		if ready {
			return k, nil
		}
		if time.Now().After(deadline) {
			k.stop()
			return nil, fmt.Errorf("krb5kdc on %s not ready after %v: %s", r.KDCAddr, kdcStartTimeout, r.logTail(outPath, "kdc.log"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kdcReady reports whether the krb5kdc of process pid serves the port
// alone: it has logged that it set up its sockets ("commencing
// operation", in this realm's kdc.log, under its own pid), it is the only
// TCP listener and UDP receiver on 127.0.0.1:port, and it accepts a TCP
// connection. A dial alone proves nothing: krb5kdc sets SO_REUSEPORT, so
// the KDC of a realm started at the same time elsewhere and given the same
// free port binds it too, and the kernel splits the clients between both,
// half of them then getting tickets of the wrong database. The error is
// errKDCPortShared when the port is shared, for another try elsewhere.
func (r *Realm) kdcReady(pid, port int) (bool, error) {
	log, err := os.ReadFile(filepath.Join(r.Dir, "kdc.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("testenv: %w", err)
	}
	me := fmt.Sprintf("krb5kdc[%d]", pid)
	commenced := false
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, me) && strings.Contains(line, "commencing operation") {
			commenced = true
			break
		}
	}
	if !commenced {
		return false, nil
	}
	tcp, udp, known, err := loopbackListeners(port)
	if err != nil {
		return false, err
	}
	if known && (tcp > 1 || udp > 1) {
		return false, fmt.Errorf("%w (%d TCP listeners, %d UDP receivers on 127.0.0.1:%d)", errKDCPortShared, tcp, udp, port)
	}
	if known && (tcp == 0 || udp == 0) {
		return false, nil
	}
	conn, err := net.DialTimeout("tcp", r.KDCAddr, time.Second)
	if err != nil {
		return false, nil
	}
	conn.Close()
	return true, nil
}

// logTail returns the last lines of the given log files, for error messages.
func (r *Realm) logTail(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.Dir, p)
		}
		data, err := os.ReadFile(p)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		fmt.Fprintf(&b, "\n--- %s ---\n%s", filepath.Base(p), strings.Join(lines, "\n"))
	}
	if b.Len() == 0 {
		return "(no log output)"
	}
	return b.String()
}

// stop ends the KDC: SIGTERM, then SIGKILL if it is still there after
// kdcStopTimeout. It returns once the process has been reaped.
func (k *kdcProcess) stop() {
	select {
	case <-k.exited:
		return
	default:
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
		return
	case <-time.After(kdcStopTimeout):
	}
	_ = k.cmd.Process.Kill()
	<-k.exited
}

// Close stops the KDC (SIGTERM, then SIGKILL) and removes the realm's
// directory. It may be called more than once.
func (r *Realm) Close() error {
	r.closeOnce.Do(func() {
		if r.kdc != nil {
			r.kdc.stop()
		}
		if err := os.RemoveAll(r.Dir); err != nil {
			r.closeErr = fmt.Errorf("testenv: %w", err)
		}
	})
	return r.closeErr
}

// AddUser adds the principal name (without realm, e.g. "alice") with the
// given password.
func (r *Realm) AddUser(name, password string) error {
	if err := checkArg("principal", name); err != nil {
		return err
	}
	if strings.ContainsAny(password, "\"\n") || password == "" {
		return fmt.Errorf("testenv: password for %s must be non-empty without '\"' or newline", name)
	}
	return r.kadmin("addprinc", "-pw", quote(password), name)
}

// AddService adds the principal name (e.g. "rcmd/localhost") with random
// keys.
func (r *Realm) AddService(name string) error {
	if err := checkArg("principal", name); err != nil {
		return err
	}
	return r.kadmin("addprinc", "-randkey", name)
}

// ExportKeytab adds the current keys (all kvnos kept in the database) of the
// principals to the keytab at path, creating it if needed. The keys are not
// changed (ktadd -norandkey).
func (r *Realm) ExportKeytab(path string, principals ...string) error {
	if len(principals) == 0 {
		return errors.New("testenv: ExportKeytab: no principals")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if strings.ContainsAny(abs, "\"\n") {
		return fmt.Errorf("testenv: unsupported keytab path %q", abs)
	}
	args := []string{"ktadd", "-norandkey", "-k", quote(abs)}
	for _, p := range principals {
		if err := checkArg("principal", p); err != nil {
			return err
		}
		args = append(args, p)
	}
	return r.kadmin(args...)
}

// RotateKey gives the principal new random keys with the next kvno; the old
// keys stay in the database (cpw -randkey -keepold), so ExportKeytab
// exports both.
func (r *Realm) RotateKey(principal string) error {
	if err := checkArg("principal", principal); err != nil {
		return err
	}
	return r.kadmin("cpw", "-randkey", "-keepold", principal)
}

// kadmin runs one kadmin.local query. The words are joined with spaces;
// quote those that may contain spaces.
func (r *Realm) kadmin(words ...string) error {
	query := strings.Join(words, " ")
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := r.run(ctx, nil, "", "kadmin.local", "-r", r.Name, "-q", query)
	if err != nil {
		return err
	}
	// kadmin.local -q exits 0 even when the query fails; its errors are
	// the lines that name the command, e.g. `add_principal: Principal or
	// policy already exists while creating "alice@EXAMPLE.TEST".`
	for _, line := range strings.Split(string(out), "\n") {
		if cmd, _, ok := strings.Cut(line, ": "); ok && kadminCommands(cmd) {
			return fmt.Errorf("testenv: kadmin.local -q %q: %s", query, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// kadminCommands reports whether s is the name kadmin uses to prefix the
// error messages of the queries this package runs.
func kadminCommands(s string) bool {
	switch s {
	case "add_principal", "addprinc", "ktadd", "ktadd_principal", "change_password", "cpw", "kadmin.local":
		return true
	}
	return false
}

// Kinit gets a TGT for principal ("alice" or "alice@REALM") with password
// into a new FILE: ccache in r.Dir and returns its path. With enctypes (MIT
// names such as "aes128-cts-hmac-sha256-128"), kinit uses the krb5.conf
// variant of ClientConfig(enctypes...); use the same variant for later
// requests (e.g. kvno) so service tickets get those session-key enctypes.
func (r *Realm) Kinit(principal, password string, enctypes ...string) (ccachePath string, err error) {
	if err := checkArg("principal", principal); err != nil {
		return "", err
	}
	conf, err := r.ClientConfig(enctypes...)
	if err != nil {
		return "", err
	}
	return r.kinit(conf, password+"\n", r.qualify(principal))
}

// KinitKeytab gets a TGT for principal with its key from the keytab at
// path (kinit -k -t), as services authenticate, into a new FILE: ccache
// in r.Dir and returns its path.
func (r *Realm) KinitKeytab(principal, keytab string) (ccachePath string, err error) {
	if err := checkArg("principal", principal); err != nil {
		return "", err
	}
	return r.kinit(r.Krb5Conf, "", "-k", "-t", keytab, r.qualify(principal))
}

// kinit runs kinit with args and the krb5.conf at conf into a new FILE:
// ccache in r.Dir and returns its path.
func (r *Realm) kinit(conf, stdin string, args ...string) (string, error) {
	f, err := os.CreateTemp(r.Dir, "ccache-")
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	path := f.Name()
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	ccache := "FILE:" + path
	if _, err := r.run(ctx, r.Env(conf, ccache), stdin, "kinit", append([]string{"-c", ccache}, args...)...); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// ClientConfig returns the path of a krb5.conf for the realm whose
// default_tkt_enctypes, default_tgs_enctypes and permitted_enctypes are
// the given MIT enctype names, in that order of preference. Tickets got
// with it have session keys of the first enctype the service has a key
// for. Without enctypes it returns r.Krb5Conf.
func (r *Realm) ClientConfig(enctypes ...string) (string, error) {
	if len(enctypes) == 0 {
		return r.Krb5Conf, nil
	}
	for _, e := range enctypes {
		if e == "" || strings.Trim(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return "", fmt.Errorf("testenv: invalid enctype name %q", e)
		}
	}
	path := filepath.Join(r.Dir, "krb5-"+strings.Join(enctypes, "_")+".conf")
	r.confMu.Lock()
	defer r.confMu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	data := r.confData()
	data.Comment = "clients restricted to " + strings.Join(enctypes, ", ")
	data.Enctypes = enctypes
	if err := r.renderFile("krb5.conf.tmpl", path, data); err != nil {
		return "", err
	}
	return path, nil
}

// Env returns os.Environ() with KRB5_CONFIG set to krb5conf (r.Krb5Conf if
// empty), KRB5_KDC_PROFILE to the realm's kdc.conf, KRB5RCACHEDIR to r.Dir
// and, if ccache is not empty, KRB5CCNAME to ccache. Inherited values of
// those variables are dropped.
func (r *Realm) Env(krb5conf, ccache string) []string {
	if krb5conf == "" {
		krb5conf = r.Krb5Conf
	}
	set := [][2]string{
		{"KRB5_CONFIG", krb5conf},
		{"KRB5_KDC_PROFILE", r.kdcConf},
		{"KRB5RCACHEDIR", r.Dir},
	}
	if ccache != "" {
		set = append(set, [2]string{"KRB5CCNAME", ccache})
	}
	var env []string
outer:
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, s := range set {
			if k == s[0] {
				continue outer
			}
		}
		env = append(env, kv)
	}
	for _, s := range set {
		env = append(env, s[0]+"="+s[1])
	}
	return env
}

// Run runs the program name (looked up on PATH, then in /usr/sbin and
// /sbin) with env (r.Env("", "") if nil) and returns its combined output.
// A failure's error includes the output.
func (r *Realm) Run(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	return r.run(ctx, env, "", name, args...)
}

func (r *Realm) run(ctx context.Context, env []string, stdin, name string, args ...string) ([]byte, error) {
	bin, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = r.Env("", "")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("testenv: %s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// qualify appends the realm to a principal name without one.
func (r *Realm) qualify(principal string) string {
	if strings.Contains(principal, "@") {
		return principal
	}
	return principal + "@" + r.Name
}

// lookTool finds an MIT program: on PATH, else in /usr/sbin or /sbin
// (where Debian puts krb5kdc, kdb5_util and kadmin.local, often not on a
// non-root PATH).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if !strings.Contains(name, "/") {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s not found", ErrToolsMissing, name)
}

// lookTools checks that all the programs can be found.
func lookTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := lookTool(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found", ErrToolsMissing, strings.Join(missing, ", "))
	}
	return nil
}

// freePort returns a port that is free on 127.0.0.1 for both TCP and UDP,
// at the moment of asking.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testenv: free port: %w", err)
		}
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err != nil {
			continue // taken for UDP: try another
		}
		u.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	return 0, errors.New("testenv: no port free for both TCP and UDP on 127.0.0.1")
}

func validRealm(s string) bool {
	return s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == ""
}

// checkArg rejects values that would not survive kadmin's query parsing.
func checkArg(what, s string) error {
	if s == "" || strings.ContainsAny(s, " \t\n\"'") {
		return fmt.Errorf("testenv: invalid %s %q", what, s)
	}
	return nil
}

// quote makes s one word of a kadmin query.
func quote(s string) string {
	return `"` + s + `"`
}
