// Package redistest runs a throwaway redis-server (Debian's redis-server
// package) for tests: on 127.0.0.1 at a free port, in its own temporary
// directory, without persistence, stopped by its PID when the test ends.
// Stop and Start again (same port) simulate an outage. It does not install
// Redis; Require skips the test when redis-server is missing, or fails it
// under CI=true.
package redistest

import (
	"bufio"
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
	"testing"
	"time"
)

// Package is the Debian package that provides redis-server.
const Package = "redis-server"

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// errExited: the server exited while starting (perhaps its port was
// taken).
var errExited = errors.New("exited while starting")

// Require returns the path of redis-server, or skips the test with one
// line naming the package (fails it when CI=true).
func Require(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		for _, p := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"} {
			if fi, e := os.Stat(p); e == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		msg := "redis-server not found: install Debian's " + Package + " package"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + " (CI=true: the tools must be installed)")
		}
		tb.Skip(msg)
	}
	return bin
}

// Server is one redis-server process.
type Server struct {
	// Addr is its 127.0.0.1:port address; it stays the same across Stop
	// and Start.
	Addr string

	bin  string
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts redis-server with extra configuration arguments (such as
// "--requirepass", "x") and stops it when the test ends.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	s := &Server{bin: Require(tb), dir: tb.TempDir(), args: args}
	var err error
	for range 5 { // the free port may be taken before redis binds it
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.Start(); !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("redistest: %v", err)
		}
	})
	return s
}

// Start starts the server (again) on s.Addr and waits until it answers
// PING.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("redis-server on %s is already running", s.Addr)
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	logPath := filepath.Join(s.dir, "redis.log")
	args := append([]string{
		"--bind", "127.0.0.1", "--port", port, "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", logPath, "--protected-mode", "yes",
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	// Its own process group, killed with the test binary if it dies.
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("%w: redis-server on %s: %s", errExited, s.Addr, tail(logPath))
		default:
		}
		if ping(s.Addr) {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s not ready after %v: %s", s.Addr, startTimeout, tail(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends the server by its PID (SIGTERM, then SIGKILL) and waits for
// it. Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("redis-server (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Do sends one command and returns the first line of the reply (for
// CONFIG SET, CLIENT PAUSE, INFO's errors and the like).
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// ping reports whether a Redis server answers PING at addr.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	// -NOAUTH from a server with a password is an answer too.
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is the end of the server's log, for errors.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return "(no log output)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
