package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/internal/testutil"
)

// runConnect runs bin connect with args, stdin and env; it returns
// stdout, stderr and the exit code.
func runConnect(t *testing.T, bin string, env []string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"connect"}, args...)...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestConnectCommand: stdin and stdout through the gateway with the end
// of stdin passed on (an echo server answers everything and then
// closes), and each failure with its exit code and the text users see.
func TestConnectCommand(t *testing.T) {
	env, g := startClientGateway(t)
	bin := buildGssocks(t)
	cache := aliceCache(t, env)
	echo := testutil.EchoServer(t)
	eh, ep, _ := net.SplitHostPort(echo)
	gw := []string{"--gateway", g.Addr, "--service", "rcmd/localhost"}

	t.Run("echo", func(t *testing.T) {
		in := bytes.Repeat([]byte("half-close reaches the destination\n"), 4000)
		out, stderr, code := runConnect(t, bin, clientEnv(t, env, cache), in, append(gw, eh, ep)...)
		if code != exitOK || out != string(in) {
			t.Fatalf("exit %d, %d of %d bytes back; stderr: %s", code, len(out), len(in), stderr)
		}
		g.WaitRecord(t, func(a audit.Record) bool {
			return a.Destination == echo && a.Principal == "alice@EXAMPLE.TEST" && a.Level == "confidentiality" && a.BytesUp == int64(len(in))
		})
	})

	dead := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	for _, c := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		wants []string
	}{
		{"no-ticket", clientEnv(t, env, "FILE:"+filepath.Join(t.TempDir(), "krb5cc_none")), append(gw, eh, ep), exitKerberos,
			[]string{"no Kerberos credentials in the ticket cache FILE:", "run kinit"}},
		{"keyring-cache", clientEnv(t, env, "KEYRING:persistent:0"), append(gw, eh, ep), exitKerberos,
			[]string{"KEYRING: (kernel keyring)", "export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u) then run kinit"}},
		{"unknown-service", clientEnv(t, env, cache), []string{"--gateway", g.Addr, "--service", "rcmd/nosuch.example.test", eh, ep}, exitKerberos,
			[]string{"the KDC has no service principal rcmd/nosuch.example.test", "KDC_ERR_S_PRINCIPAL_UNKNOWN"}},
		{"denied", clientEnv(t, env, cache), append(gw, eh, fmt.Sprint(clientDeniedPort)), exitRefused,
			[]string{"reply 0x02", "the gateway's rules do not allow this destination"}},
		{"gateway-down", clientEnv(t, env, cache), []string{"--gateway", dead, "--service", "rcmd/localhost", eh, ep}, exitFailure,
			[]string{"cannot connect to the gateway " + dead}},
		{"no-gateway", clientEnv(t, env, cache), []string{eh, ep}, exitUsage,
			[]string{"no gateway: give --gateway host:port, set GSSOCKS_GATEWAY"}},
		{"gateway-from-env", clientEnv(t, env, "FILE:"+filepath.Join(t.TempDir(), "none"), "GSSOCKS_GATEWAY="+g.Addr), []string{eh, ep}, exitKerberos,
			[]string{"run kinit"}},
		{"bad-port", clientEnv(t, env, cache), append(gw, eh, "ssh"), exitUsage,
			[]string{`port "ssh": want a number from 1 to 65535`}},
		{"bad-level", clientEnv(t, env, cache, "GSSOCKS_LEVEL=secret"), append(gw, eh, ep), exitUsage,
			[]string{`level "secret": want confidentiality, integrity or clear`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runConnect(t, bin, c.env, nil, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, c.code, stderr)
			}
			for _, w := range c.wants {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 && c.code != exitUsage {
				t.Errorf("more than one line:\n%s", stderr)
			}
		})
	}
}

// sshServer is an OpenSSH sshd on 127.0.0.1 with its own host key and
// authorized_keys, started and stopped by the test.
type sshServer struct {
	port    string
	userKey string // private key file of the user allowed in
}

func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	sshd := requireTool(t, "sshd")
	keygen := requireTool(t, "ssh-keygen")
	dir := t.TempDir()
	for _, k := range []string{"host_key", "user_key"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, "user_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(pub))
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, which a system without
		// a running sshd may lack.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		conf := writeFile(t, filepath.Join(dir, "sshd_config"), fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel VERBOSE
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys")))
		cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		up, gone := false, false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !up && !gone; {
			select {
			case <-exited:
				gone = true // the port was taken meanwhile, or sshd refused its configuration
				continue
			default:
			}
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !up {
			if !gone {
				cmd.Process.Kill()
				<-exited
			}
			if attempt < 3 {
				continue
			}
			t.Fatalf("sshd not listening:\n%s", log.String())
		}
		t.Cleanup(func() {
			cmd.Process.Kill() // by PID: this sshd only
			<-exited
			if t.Failed() {
				t.Logf("sshd log:\n%s", log.String())
			}
		})
		return &sshServer{port: port, userKey: filepath.Join(dir, "user_key")}
	}
}

// TestGitCloneOverSSH clones a bare repository with git over OpenSSH,
// whose ProxyCommand is `gssocks connect`: git and ssh speak through the
// gateway as alice, at confidentiality.
func TestGitCloneOverSSH(t *testing.T) {
	git := requireTool(t, "git")
	requireTool(t, "ssh")
	env, g := startClientGateway(t)
	bin := buildGssocks(t)
	srv := startSSHD(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	content := "cloned through the gateway " + fmt.Sprint(time.Now().UnixNano()) + "\n"
	gitEnv := append(clientEnv(t, env, aliceCache(t, env)), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "HOME="+dir)
	runGit := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, git, args...)
		cmd.Env = gitEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	work := filepath.Join(dir, "work")
	runGit("init", "-q", work)
	writeFile(t, filepath.Join(work, "README"), content)
	runGit("-C", work, "add", "README")
	runGit("-C", work, "-c", "user.name=Alice", "-c", "user.email=alice@example.test", "commit", "-q", "-m", "first")
	bare := filepath.Join(dir, "repo.git")
	runGit("clone", "-q", "--bare", work, bare)

	proxy := fmt.Sprintf("ProxyCommand=%s connect --gateway %s --service rcmd/localhost %%h %%p", bin, g.Addr)
	gitEnv = append(gitEnv, fmt.Sprintf("GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o BatchMode=yes "+
		"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o %q", srv.userKey, proxy))
	clone := filepath.Join(dir, "clone")
	runGit("clone", "-q", fmt.Sprintf("ssh://%s@127.0.0.1:%s%s", me.Username, srv.port, bare), clone)
	got, err := os.ReadFile(filepath.Join(clone, "README"))
	if err != nil || string(got) != content {
		t.Fatalf("cloned README %q, %v", got, err)
	}
	g.WaitRecord(t, func(a audit.Record) bool {
		return a.Destination == "127.0.0.1:"+srv.port && a.Principal == "alice@EXAMPLE.TEST" && a.Level == "confidentiality" && a.BytesDown > 0
	})
}
