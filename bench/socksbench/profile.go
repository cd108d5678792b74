package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/client"
)

// profile samples gssocks with Linux perf (the binary has its symbols;
// no profiling flag or wrapper is needed) while it relays downloads, then
// uploads, dur each, through d, and summarises where its CPU goes: one
// line per category, then the top symbols.
func (e *env) profile(s *server, d *client.Dialer, what string, dur time.Duration) (string, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "", fmt.Errorf("perf not installed: %w", err)
	}
	var b strings.Builder
	for _, op := range []byte{opDownload, opUpload} {
		data := filepath.Join(e.dir, "perf-"+opName(op)+".data")
		var stop atomic.Bool
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 256<<10)
			for !stop.Load() {
				if _, err := e.transfer(d, op, 256<<20, 0, buf); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		time.Sleep(500 * time.Millisecond) // past the session setup
		ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
		rec := exec.CommandContext(ctx, perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(s.pgid), "-o", data, "--", "sleep", strconv.Itoa(int(dur.Seconds())))
		out, err := rec.CombinedOutput()
		cancel()
		stop.Store(true)
		if werr := <-done; werr != nil {
			return "", werr
		}
		if err != nil {
			return "", fmt.Errorf("perf record: %v: %s", err, out)
		}
		rep, err := exec.Command(perf, "report", "-i", data, "--stdio", "--no-children", "-g", "none",
			"--sort", "dso,symbol", "--percent-limit", "0.3").Output()
		if err != nil {
			return "", fmt.Errorf("perf report: %w", err)
		}
		os.Remove(data)
		fmt.Fprintf(&b, "%s at %s, %s of `perf record -F 999 -g -p <gssocks>`:\n\n", opName(op), what, dur)
		b.WriteString(summarizePerf(string(rep)))
		b.WriteString("\n")
	}
	return b.String(), nil
}

// profileSetup samples gssocks with perf while workers set sessions up
// (as the setup measurement does) for dur.
func (e *env) profileSetup(s *server, d *client.Dialer, workers int, dur time.Duration) (string, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return "", fmt.Errorf("perf not installed: %w", err)
	}
	data := filepath.Join(e.dir, "perf-setup.data")
	done := make(chan error, 1)
	go func() {
		_, err := e.setupRate(s, d, workers, dur+2*time.Second)
		done <- err
	}()
	time.Sleep(time.Second)
	out, err := exec.Command(perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(s.pgid), "-o", data, "--", "sleep", strconv.Itoa(int(dur.Seconds()))).CombinedOutput()
	if werr := <-done; werr != nil {
		return "", werr
	}
	if err != nil {
		return "", fmt.Errorf("perf record: %v: %s", err, out)
	}
	defer os.Remove(data)
	// Inclusive time of the session's phases, then the top symbols.
	rep, err := exec.Command(perf, "report", "-i", data, "--stdio", "--children", "-g", "none",
		"--sort", "symbol", "--percent-limit", "1").Output()
	if err != nil {
		return "", fmt.Errorf("perf report: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session setup from %d workers (confidentiality), %s of `perf record -F 999 -g -p <gssocks>`; share of samples in each function and what it calls:\n\n", workers, dur)
	b.WriteString(setupPhases(string(rep)))
	flat, err := exec.Command(perf, "report", "-i", data, "--stdio", "--no-children", "-g", "none",
		"--sort", "dso,symbol", "--percent-limit", "0.05").Output()
	if err != nil {
		return "", fmt.Errorf("perf report: %w", err)
	}
	b.WriteString("\n")
	b.WriteString(summarizePerf(string(flat)))
	return b.String(), nil
}

// setupPhases picks, from an inclusive (--children) perf report, the
// functions that name a phase of a session.
func setupPhases(rep string) string {
	phases := []struct{ label, match string }{
		{"GSS-API context: AP-REQ checked, AP-REP made (encap.AcceptContext)", "encap.AcceptContext"},
		{"  of which gokrb5 ASN.1 decoding and encoding", "asn1.Unmarshal"},
		{"protection level (encap.NegotiateServer)", "encap.NegotiateServer"},
		{"SOCKS request read (socks5.ReadRequest)", "socks5.ReadRequest"},
		{"connecting to the destination (server dial)", "server.(*raceDialer)"},
		{"relay (encap.(*Relay))", "encap.(*Relay).copy"},
		{"audit record and logs (audit, hclog)", "audit."},
		{"garbage collector (runtime.gcBgMarkWorker)", "runtime.gcBgMarkWorker"},
		{"accepting connections (net.(*TCPListener).Accept)", "net.(*TCPListener).Accept"},
		{"system calls (all)", "entry_SYSCALL_64"},
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(rep))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		name := f[3]
		for _, p := range phases {
			if strings.Contains(name, p.match) && pct > got[p.label] {
				got[p.label] = pct
			}
		}
	}
	var b strings.Builder
	b.WriteString("| phase | share of samples (inclusive) |\n| --- | --- |\n")
	for _, p := range phases {
		if v, ok := got[p.label]; ok {
			fmt.Fprintf(&b, "| %s | %.1f %% |\n", p.label, v)
		}
	}
	return b.String()
}

// perfCategories map a symbol to where the time goes, first match wins.
var perfCategories = []struct{ name, match string }{
	{"AES (crypto/aes, CBC)", "aes"},
	{"HMAC / SHA (crypto/sha1, sha512)", "sha"},
	{"HMAC / SHA (crypto/sha1, sha512)", "hmac"},
	{"memmove / memclr", "memmove"},
	{"memmove / memclr", "memclr"},
	{"Go runtime (scheduler, GC, netpoll)", "runtime."},
}

// summarizePerf reads `perf report --stdio --no-children -g none --sort
// dso,symbol`: lines "  12.34%  gssocks  [.] symbol" (kernel symbols are
// "[k]").
func summarizePerf(rep string) string {
	type sym struct {
		pct  float64
		name string
	}
	var syms []sym
	cats := map[string]float64{}
	var total float64
	sc := bufio.NewScanner(strings.NewReader(rep))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		for len(f) > 4 && f[len(f)-1] == "-" {
			f = f[:len(f)-1]
		}
		kind, name := f[2], strings.Join(f[3:], " ")
		total += pct
		cat := "other user-space code"
		if kind == "[k]" && (strings.Contains(name, "task_switch") || strings.Contains(name, "schedule")) {
			cat = "kernel scheduler (a thread waking up or going to sleep)"
		} else if kind == "[k]" {
			cat = "kernel (syscalls, TCP, copies to and from sockets)"
		} else {
			low := strings.ToLower(name)
			for _, c := range perfCategories {
				if strings.Contains(low, c.match) {
					cat = c.name
					break
				}
			}
		}
		cats[cat] += pct
		syms = append(syms, sym{pct, kind + " " + name})
	}
	var b strings.Builder
	type kv struct {
		k string
		v float64
	}
	var cs []kv
	for k, v := range cats {
		cs = append(cs, kv{k, v})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].v > cs[j].v })
	b.WriteString("| where | share of samples |\n| --- | --- |\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "| %s | %.1f %% |\n", c.k, c.v)
	}
	fmt.Fprintf(&b, "| (symbols under 0.3 %%) | %.1f %% |\n\nTop symbols: ", max(0, 100-total))
	for i, s := range syms {
		if i == 8 {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "`%s` %.1f %%", s.name, s.pct)
	}
	b.WriteString("\n")
	return b.String()
}
