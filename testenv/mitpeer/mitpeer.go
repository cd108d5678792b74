// Package mitpeer runs a live GSS-API peer built on MIT Kerberos
// (libgssapi_krb5, Kerberos mechanism) so that the pure-Go GSS
// implementation can be tested against MIT in both roles.
//
// The peer is a small C program (peer.c, embedded here) that Build compiles
// with the system C compiler and krb5-config (Debian: apt-get install gcc
// libkrb5-dev). It is driven over a line protocol on stdin/stdout that is
// documented at the top of peer.c. Tests normally call Require, then
// StartInitiator or StartAcceptor with an environment naming KRB5_CONFIG,
// KRB5CCNAME and KRB5_KTNAME.
//
// A Peer is not safe for concurrent use. Info must be the last operation on
// a Peer: MIT deletes the GSS context when it is exported.
package mitpeer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed peer.c
var peerSource []byte

// ErrToolsMissing is wrapped by Build's error when the C compiler or
// krb5-config is not installed.
var ErrToolsMissing = errors.New("mitpeer: C compiler or krb5-config missing (apt-get install gcc libkrb5-dev)")

// ReplyTimeout bounds the wait for each reply of the peer, and for the
// peer to take each command.
const ReplyTimeout = 30 * time.Second

// closeTimeout bounds each wait of Close: for the peer to take QUIT, to
// exit, and, once killed, for its output to end.
const closeTimeout = 5 * time.Second

// GSS-API context flags as reported by Flags (RFC 2744).
const (
	FlagDeleg     = 1
	FlagMutual    = 2
	FlagReplay    = 4
	FlagSequence  = 8
	FlagConf      = 16
	FlagInteg     = 32
	FlagAnon      = 64
	FlagProtReady = 128
	FlagTrans     = 256
)

// Build compiles peer.c (once per source, krb5 and compiler version) into
// os.UserCacheDir()/gssocks/mitpeer/<hash>/mitpeer and returns its path.
// Concurrent callers, also in different processes, are safe: the binary is
// built into a temporary file and renamed into place.
func Build() (string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolsMissing, err)
	}
	krb5Config, err := exec.LookPath("krb5-config")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToolsMissing, err)
	}
	krbVersion, err := output(krb5Config, "--version")
	if err != nil {
		return "", err
	}
	ccVersion, err := output(cc, "--version")
	if err != nil {
		return "", err
	}
	cflags, err := output(krb5Config, "--cflags", "gssapi")
	if err != nil {
		return "", err
	}
	libs, err := output(krb5Config, "--libs", "gssapi")
	if err != nil {
		return "", err
	}

	h := sha256.New()
	for _, part := range []string{string(peerSource), krbVersion, ccVersion, cflags, libs} {
		fmt.Fprintf(h, "%d:%s\n", len(part), part)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "gssocks", "mitpeer", fmt.Sprintf("%x", h.Sum(nil)))
	bin := filepath.Join(dir, "mitpeer")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mitpeer: %w", err)
	}

	src, err := os.CreateTemp(dir, "peer-*.c")
	if err != nil {
		return "", fmt.Errorf("mitpeer: %w", err)
	}
	defer os.Remove(src.Name())
	_, err = src.Write(peerSource)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("mitpeer: %w", err)
	}
	tmp := strings.TrimSuffix(src.Name(), ".c") + ".tmp"
	defer os.Remove(tmp)

	args := []string{"-O2", "-Wall", "-Wextra", "-Werror", "-o", tmp, src.Name()}
	args = append(args, strings.Fields(cflags)...)
	args = append(args, strings.Fields(libs)...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mitpeer: compiling peer.c: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("mitpeer: %w", err)
	}
	return bin, nil
}

// output runs a command and returns its trimmed standard output.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("mitpeer: %s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Require builds the peer and returns its path. When the tools are missing
// the test is skipped, or fails if the CI environment variable is "true".
func Require(tb testing.TB) string {
	tb.Helper()
	bin, err := Build()
	if errors.Is(err, ErrToolsMissing) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v", err)
		}
		tb.Skipf("skipping MIT interop: %v", err)
	}
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return bin
}

// PeerError is an ERR answer of the peer. Major and Minor are the GSS-API
// status codes (both 0 for protocol errors of the peer itself). UNWRAP and
// VERIFYMIC also fail when only supplementary status bits are set, e.g.
// Major == 2 (GSS_S_DUPLICATE_TOKEN) for a replayed token.
type PeerError struct {
	Major, Minor uint32
	Text         string
}

func (e *PeerError) Error() string {
	return fmt.Sprintf("mitpeer: major 0x%08x minor %d: %s", e.Major, e.Minor, e.Text)
}

// Peer is a running MIT GSS-API peer process.
type Peer struct {
	cmd    *exec.Cmd
	stdin  *os.File // write end of a pipe, for write deadlines
	stdout *os.File // read end of a pipe, for read deadlines
	lines  *bufio.Reader
	stderr *lockedBuffer

	timeout  time.Duration // ReplyTimeout; shorter in tests of stuck peers
	acceptor bool
	ready    bool
	exited   bool // the peer has reported a fatal error and exits
	flags    uint32
	client   string
}

// StartInitiator starts an initiator for the host-based service target
// (e.g. "rcmd@localhost") and returns its first context token. flags may
// contain "--no-mutual", "--no-sequence", "--no-replay" and "--spnego"
// (SPNEGO, RFC 4178, in place of the Kerberos mechanism: the first token
// is a NegTokenInit carrying the Kerberos token; MIT's SPNEGO initiator
// always waits for the acceptor's answer). Without mutual authentication
// the Kerberos context is established right away; otherwise pass the
// acceptor's reply to Step.
func StartInitiator(bin string, env []string, target string, flags ...string) (*Peer, []byte, error) {
	p, err := start(bin, env, append([]string{"initiator", target}, flags...)...)
	if err != nil {
		return nil, nil, err
	}
	tok, err := p.readStep()
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, tok, nil
}

// StartAcceptor starts an acceptor using the default acceptor credentials
// (the keytab named by KRB5_KTNAME in env).
func StartAcceptor(bin string, env []string) (*Peer, error) {
	p, err := start(bin, env, "acceptor")
	if err != nil {
		return nil, err
	}
	p.acceptor = true
	return p, nil
}

func start(bin string, env []string, args ...string) (*Peer, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	// Both pipes are made here, not by exec, so that writes to the peer
	// have deadlines as reads from it do: a peer that stops reading
	// (a 64 KiB pipe holds less than one hex-encoded 65 KiB message)
	// must not block a test forever.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("mitpeer: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("mitpeer: %w", err)
	}
	cmd.Stdin, cmd.Stdout = inR, w
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	// Wait returns at most this long after the peer has exited even if
	// something it started still holds its stderr.
	cmd.WaitDelay = closeTimeout
	err = cmd.Start()
	inR.Close()
	w.Close()
	if err != nil {
		inW.Close()
		r.Close()
		return nil, fmt.Errorf("mitpeer: %w", err)
	}
	return &Peer{
		cmd:     cmd,
		stdin:   inW,
		timeout: ReplyTimeout,
		stdout:  r,
		lines:   bufio.NewReaderSize(r, 1<<16),
		stderr:  stderr,
	}, nil
}

// Step feeds a context token from the other side to the peer. For an
// acceptor it accepts the initiator's token and returns the reply token
// (the AP-REP with mutual authentication); for an initiator it processes
// the AP-REP and returns nil.
func (p *Peer) Step(token []byte) ([]byte, error) {
	if p.ready {
		return nil, errors.New("mitpeer: context already established")
	}
	if err := p.send("TOKEN", encode(token)); err != nil {
		return nil, err
	}
	return p.readStep()
}

// readStep reads the answer to one handshake step:
// "TOKEN <hex>" followed by "READY ..." or "CONTINUE".
func (p *Peer) readStep() ([]byte, error) {
	f, err := p.readReply("TOKEN", 2)
	if err != nil {
		return nil, err
	}
	tok, err := decode(f[1])
	if err != nil {
		return nil, err
	}
	line, err := p.readLine()
	if err != nil {
		return nil, err
	}
	switch {
	case line == "CONTINUE":
	case strings.HasPrefix(line, "READY "):
		f := strings.SplitN(line, " ", 3)
		flags, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("mitpeer: bad READY line %q", line)
		}
		p.flags = uint32(flags)
		if len(f) == 3 {
			p.client = f[2]
		}
		p.ready = true
	default:
		return nil, p.protocolError(line)
	}
	return tok, nil
}

// Ready reports whether the context is established.
func (p *Peer) Ready() bool { return p.ready }

// Flags returns the context flags (ret_flags) of the established context.
func (p *Peer) Flags() uint32 { return p.flags }

// ClientName returns the initiator's name as displayed by the acceptor,
// e.g. "alice@EXAMPLE.TEST". It is empty for an initiator.
func (p *Peer) ClientName() string { return p.client }

// Wrap calls gss_wrap; conf requests confidentiality.
func (p *Peer) Wrap(conf bool, msg []byte) ([]byte, error) {
	f, err := p.call(2, "WRAP", bit(conf), encode(msg))
	if err != nil {
		return nil, err
	}
	return decode(f[1])
}

// Unwrap calls gss_unwrap and reports whether the token was encrypted.
func (p *Peer) Unwrap(token []byte) (msg []byte, conf bool, err error) {
	f, err := p.call(3, "UNWRAP", encode(token))
	if err != nil {
		return nil, false, err
	}
	msg, err = decode(f[2])
	return msg, f[1] == "1", err
}

// MIC calls gss_get_mic.
func (p *Peer) MIC(msg []byte) ([]byte, error) {
	f, err := p.call(2, "MIC", encode(msg))
	if err != nil {
		return nil, err
	}
	return decode(f[1])
}

// VerifyMIC calls gss_verify_mic.
func (p *Peer) VerifyMIC(msg, token []byte) error {
	_, err := p.call(1, "VERIFYMIC", encode(msg), encode(token))
	return err
}

// WrapSizeLimit calls gss_wrap_size_limit: the largest message whose
// wrap token is at most max bytes.
func (p *Peer) WrapSizeLimit(conf bool, max int) (int, error) {
	f, err := p.call(2, "WRAPSIZE", bit(conf), strconv.Itoa(max))
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("mitpeer: bad size %q", f[1])
	}
	return n, nil
}

// Info exports the context as an MIT lucid context and returns the
// encryption type of the key protecting messages (the acceptor subkey if
// there is one) and whether an acceptor subkey was asserted. It consumes
// the GSS context: Info must be the last call, later calls fail.
func (p *Peer) Info() (enctype int, acceptorSubkey bool, err error) {
	f, err := p.call(3, "INFO")
	if err != nil {
		return 0, false, err
	}
	enctype, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, false, fmt.Errorf("mitpeer: bad enctype %q", f[1])
	}
	return enctype, f[2] == "1", nil
}

// Close asks the peer to quit and waits for it, killing it if it does not
// take QUIT within a second or has not exited closeTimeout later.
func (p *Peer) Close() error {
	p.stdin.SetWriteDeadline(time.Now().Add(time.Second))
	_, werr := io.WriteString(p.stdin, "QUIT\n")
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	wait := closeTimeout
	if errors.Is(werr, os.ErrDeadlineExceeded) {
		wait = 0 // it is not reading: QUIT cannot reach it
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-done
		err = errors.New("mitpeer: peer did not quit, killed")
	}
	p.stdout.Close()
	if p.exited {
		return nil // exit status 1 after a reported handshake error
	}
	if err != nil {
		return fmt.Errorf("mitpeer: %w (stderr: %s)", err, p.stderr)
	}
	return nil
}

// call sends a command and returns the fields of its "OK" reply,
// which must have exactly n fields.
func (p *Peer) call(n int, args ...string) ([]string, error) {
	if !p.ready {
		return nil, errors.New("mitpeer: context not established")
	}
	if err := p.send(args...); err != nil {
		return nil, err
	}
	return p.readReply("OK", n)
}

func (p *Peer) send(args ...string) error {
	p.stdin.SetWriteDeadline(time.Now().Add(p.timeout))
	if _, err := io.WriteString(p.stdin, strings.Join(args, " ")+"\n"); err != nil {
		return fmt.Errorf("mitpeer: write to peer: %w (stderr: %s)", err, p.stderr)
	}
	return nil
}

// readReply reads a reply line that must start with keyword and have n
// space-separated fields; an ERR line is returned as *PeerError.
func (p *Peer) readReply(keyword string, n int) ([]string, error) {
	line, err := p.readLine()
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(line, "ERR ") {
		return nil, p.parseErr(line)
	}
	f := strings.Split(line, " ")
	if f[0] != keyword || len(f) != n {
		return nil, p.protocolError(line)
	}
	return f, nil
}

func (p *Peer) readLine() (string, error) {
	p.stdout.SetReadDeadline(time.Now().Add(p.timeout))
	line, err := p.lines.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("mitpeer: read from peer: %w (stderr: %s)", err, p.stderr)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func (p *Peer) parseErr(line string) error {
	f := strings.SplitN(line, " ", 4)
	if len(f) < 4 {
		return p.protocolError(line)
	}
	major, err1 := strconv.ParseUint(f[1], 10, 32)
	minor, err2 := strconv.ParseUint(f[2], 10, 32)
	if err1 != nil || err2 != nil {
		return p.protocolError(line)
	}
	if !p.ready {
		p.exited = true // handshake errors are fatal for the peer
	}
	return &PeerError{Major: uint32(major), Minor: uint32(minor), Text: f[3]}
}

func (p *Peer) protocolError(line string) error {
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return fmt.Errorf("mitpeer: unexpected reply %q (stderr: %s)", line, p.stderr)
}

func encode(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

func decode(s string) ([]byte, error) {
	if s == "-" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("mitpeer: bad hex from peer: %w", err)
	}
	return b, nil
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// lockedBuffer collects the peer's stderr; exec writes it from another
// goroutine while error messages read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
