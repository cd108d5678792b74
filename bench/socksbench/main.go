// Command socksbench measures gssocks beside Dante's sockd with the same
// client (Dante's socksify around curl) on a throwaway realm: download
// throughput and server CPU per GiB at each protection level, against a
// direct download, and GSS-API connections per second. bench/socks.sh
// runs it; the README quotes its table.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/dante"
)

var (
	size    = flag.Int64("size", 1<<30, "download size in bytes")
	runs    = flag.Int("runs", 3, "runs per measurement (the median is reported)")
	conns   = flag.Int("conns", 400, "connections per client process for the connection rate")
	clients = flag.Int("clients", 4, "client processes for the connection rate")
	out     = flag.String("out", "", "also write the table to this file")
)

// clkTck is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clkTck = 100

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "socksbench:", err)
		os.Exit(1)
	}
}

type server struct {
	name  string
	addr  string
	pgid  int // CPU is summed over this process group
	proc  int
	close func()
}

func run() error {
	dn, err := dante.Build()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "socksbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	realm, err := testenv.Start(testenv.Options{})
	if err != nil {
		return err
	}
	defer realm.Close()
	kt := filepath.Join(dir, "proxy.keytab")
	for _, f := range []func() error{
		func() error { return realm.AddUser("alice", "bench-pw") },
		func() error { return realm.AddService("rcmd/localhost") },
		func() error { return realm.ExportKeytab(kt, "rcmd/localhost") },
	} {
		if err := f(); err != nil {
			return err
		}
	}
	cc, err := realm.Kinit("alice", "bench-pw")
	if err != nil {
		return err
	}
	web, err := startWeb()
	if err != nil {
		return err
	}
	gs, err := startGssocks(dir, kt, realm)
	if err != nil {
		return err
	}
	defer gs.close()
	ds, err := startDante(dn, dir, kt, realm)
	if err != nil {
		return err
	}
	defer ds.close()

	url := fmt.Sprintf("http://%s/%d", web, *size)
	var rows []string
	direct, err := measure(*runs, func() (float64, float64, error) {
		secs, err := curl(context.Background(), exec.Command("curl", "-sS", "-o", "/dev/null", url))
		return secs, 0, err
	})
	if err != nil {
		return fmt.Errorf("direct download: %w", err)
	}
	mb := float64(*size) / 1e6
	gib := float64(*size) / (1 << 30)
	rows = append(rows, fmt.Sprintf("| direct (no proxy) | – | %.0f | – | – |", mb/direct.secs))
	// The cost of one more TCP hop on this host, whatever the proxy: a
	// bare relay (kernel splice, no SOCKS, no authentication), plain curl.
	fwd, err := startForwarder(web)
	if err != nil {
		return err
	}
	hop, err := measure(*runs, func() (float64, float64, error) {
		secs, err := curl(context.Background(), exec.Command("curl", "-sS", "-o", "/dev/null", fmt.Sprintf("http://%s/%d", fwd, *size)))
		return secs, 0, err
	})
	if err != nil {
		return fmt.Errorf("bare relay: %w", err)
	}
	rows = append(rows, fmt.Sprintf("| bare TCP relay (no SOCKS, splice) | – | %.0f | – | – |", mb/hop.secs))
	results := map[string]result{}
	for _, level := range []string{"clear", "integrity", "confidentiality"} {
		for _, srv := range []*server{gs, ds} {
			env, err := dn.ClientEnv(mkdir(dir, srv.name+"-"+level), dante.ClientConfig{Proxy: srv.addr, Level: level}, realm.Env("", cc))
			if err != nil {
				return err
			}
			r, err := measure(*runs, func() (float64, float64, error) {
				before := cpuSeconds(srv.pgid, srv.proc)
				secs, err := curl(context.Background(), dn.Command(context.Background(), env, "curl", "-sS", "-o", "/dev/null", url))
				return secs, cpuSeconds(srv.pgid, srv.proc) - before, err
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", srv.name, level, err)
			}
			results[srv.name+level] = r
			fmt.Fprintf(os.Stderr, "%s %s: %.0f MB/s, %.2f CPU s/GiB\n", srv.name, level, mb/r.secs, r.cpu/gib)
		}
		g, d := results["gssocks"+level], results["dante"+level]
		rows = append(rows, fmt.Sprintf("| %s | %s | %.0f / %.0f | %.2f / %.2f | %.2f |",
			level, "gssocks / Dante", mb/g.secs, mb/d.secs, g.cpu/gib, d.cpu/gib, (g.cpu/gib)/(d.cpu/gib)))
	}
	var rate []string
	for _, srv := range []*server{gs, ds} {
		env, err := dn.ClientEnv(mkdir(dir, srv.name+"-rate"), dante.ClientConfig{Proxy: srv.addr, Level: "confidentiality"}, realm.Env("", cc))
		if err != nil {
			return err
		}
		r, err := measure(*runs, func() (float64, float64, error) {
			n, secs, err := connectRate(dn, env, web)
			return secs / float64(n), 0, err
		})
		if err != nil {
			return fmt.Errorf("%s connection rate: %w", srv.name, err)
		}
		rate = append(rate, fmt.Sprintf("%s %.0f/s", srv.name, 1/r.secs))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Download of %d MiB through each gateway with Dante's socksify + curl, median of %d; CPU is the gateway's (all its processes).\n\n", *size>>20, *runs)
	b.WriteString("| level | server | MB/s | server CPU s/GiB | CPU ratio gssocks/Dante |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	fmt.Fprintf(&b, "\nGSS-API connections per second (%d socksify'd python3 processes × %d connects, confidentiality): %s\n", *clients, *conns, strings.Join(rate, ", "))
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

type result struct{ secs, cpu float64 }

// measure runs f n times and returns the medians.
func measure(n int, f func() (float64, float64, error)) (result, error) {
	var ts, cs []float64
	for range n {
		t, c, err := f()
		if err != nil {
			return result{}, err
		}
		ts, cs = append(ts, t), append(cs, c)
	}
	return result{median(ts), median(cs)}, nil
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}

func curl(ctx context.Context, cmd *exec.Cmd) (float64, error) {
	start := time.Now()
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, outb)
	}
	return time.Since(start).Seconds(), nil
}

// startWeb serves /N: N bytes from a 1 MiB buffer, repeated.
func startWeb() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusNoContent) // the connection-rate probe
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(chunk)))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	}))
	return ln.Addr().String(), nil
}

// startForwarder relays every connection to target with io.Copy (the
// kernel splices TCP to TCP).
func startForwarder(target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				t, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer t.Close()
				go func() {
					io.Copy(t, c)
					t.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, t)
			}()
		}
	}()
	return ln.Addr().String(), nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startGssocks(dir, kt string, realm *testenv.Realm) (*server, error) {
	bin := filepath.Join(dir, "gssocks")
	if o, err := exec.Command("go", "build", "-o", bin, "./cmd/gssocks").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v: %s", err, o)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "gssocks.hcl")
	os.Chmod(kt, 0o600)
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`listen = [%q]
kerberos {
  keytab = %q
}
log {
  level = "warn"
}
rule "bench" {
  principals   = ["*@%s"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
}
`, addr, kt, realm.Name)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.Env = realm.Env("", "")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go io.Copy(os.Stderr, bufio.NewReader(stderr))
	if err := waitPort(addr); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return &server{name: "gssocks", addr: addr, pgid: cmd.Process.Pid, proc: cmd.Process.Pid, close: func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}}, nil
}

func startDante(dn *dante.Install, dir, kt string, realm *testenv.Realm) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	ddir := filepath.Join(dir, "sockd")
	os.MkdirAll(ddir, 0o755)
	sd, err := dn.StartSockd(ddir, dante.ServerConfig{Listen: addr, Keytab: kt, Levels: []string{"clear", "integrity", "confidentiality"}}, realm.Env("", ""))
	if err != nil {
		return nil, err
	}
	return &server{name: "dante", addr: addr, pgid: sd.Pid, proc: sd.Pid, close: func() { sd.Stop() }}, nil
}

func waitPort(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuSeconds sums user+system time of the processes in group pgid, plus
// the reaped children of the group leader.
func cpuSeconds(pgid, leader int) float64 {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:])
		// f[0] is field 3 (state); pgrp is field 5, utime 14, stime 15,
		// cutime 16, cstime 17.
		if len(f) < 15 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		for _, k := range []int{11, 12} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
		if pid == leader {
			for _, k := range []int{13, 14} {
				v, _ := strconv.ParseInt(f[k], 10, 64)
				ticks += v
			}
		}
	}
	return float64(ticks) / clkTck
}

// connectRate runs clients socksify'd python3 processes, each making conns
// SOCKS connections (a GSS-API context each) and closing them; it returns
// the connections made and the wall time.
func connectRate(dn *dante.Install, env []string, web string) (int, float64, error) {
	host, port, _ := net.SplitHostPort(web)
	script := `
import socket, sys
h, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.create_connection((h, p))
    s.close()
`
	var wg sync.WaitGroup
	errs := make(chan error, *clients)
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := dn.Command(context.Background(), env, "python3", "-c", script, host, port, strconv.Itoa(*conns)).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("%v: %s", err, o)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	if secs <= 0 {
		return 0, 0, errors.New("no time elapsed")
	}
	return *clients * *conns, secs, nil
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	os.MkdirAll(d, 0o755)
	return d
}
