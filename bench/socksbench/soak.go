package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
)

// SoakConfig is a soak run against gssocks: Sessions workers, each opening
// one confidentiality session after another for Duration, each session
// an echo, a download or an upload of a random size (log-uniform from 1
// byte to MaxSize) of a seeded pattern that the receiving end checks byte
// for byte.
type SoakConfig struct {
	Duration time.Duration
	Sessions int
	MaxSize  int64
	// Settle is how long the gateway's memory is watched after the last
	// session closed.
	Settle  time.Duration
	Enctype string
	Log     io.Writer
	// Interrupt: as Config.Interrupt.
	Interrupt <-chan os.Signal
	// GssocksEnv: as Config.GssocksEnv.
	GssocksEnv []string
}

// SoakResult is what a soak saw.
type SoakResult struct {
	Config    SoakConfig
	Machine   string
	Started   time.Time
	Sessions  int64 // completed
	Bytes     int64 // payload checked end to end
	Ops       [3]int64
	Errors    int64
	Corrupt   int64
	FirstErrs []string
	CPU       float64 // gateway CPU seconds over the run
	Wall      time.Duration
	Baseline  memory        // before the first session
	Samples   []sample1     // every second, from the start to Settle after the end
	Closed    time.Duration // offset of the last session's end
	Load      [2]float64
}

type sample1 struct {
	At  time.Duration
	Mem memory
}

var soakOps = [3]byte{opEcho, opDownload, opUpload}

func (c *SoakConfig) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Soak runs cfg against a fresh gssocks.
func Soak(cfg SoakConfig) (*SoakResult, error) {
	res := &SoakResult{Config: cfg, Machine: machine(), Started: time.Now()}
	res.Load[0] = loadAvg()
	if _, err := raiseFileLimit(uint64(8*cfg.Sessions + 4096)); err != nil {
		return nil, err
	}
	bc := Config{Log: cfg.Log, GssocksEnv: cfg.GssocksEnv}
	e, err := setup(&bc)
	if err != nil {
		return nil, err
	}
	defer e.close()
	e.onInterrupt(cfg.Interrupt)
	s := e.gssocks
	d, err := e.dialer(s, cfg.Enctype, encap.LevelConfidentiality)
	if err != nil {
		return nil, err
	}
	if err := e.setupOp(d); err != nil {
		return nil, fmt.Errorf("first session: %w", err)
	}
	time.Sleep(time.Second)
	res.Baseline = s.mem()
	cfg.logf("soak: baseline RSS %d KiB, %d FDs; %d sessions for %s", res.Baseline.RSS, res.Baseline.FDs, cfg.Sessions, cfg.Duration)

	start := time.Now()
	var mu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				m := s.mem()
				mu.Lock()
				res.Samples = append(res.Samples, sample1{time.Since(start), m})
				mu.Unlock()
			}
		}
	}()
	cpu := s.cpu()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for w := range cfg.Sessions {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
			buf := make([]byte, 64<<10)
			for time.Now().Before(deadline) {
				op := soakOps[rng.IntN(len(soakOps))]
				n := int64(math.Exp(rng.Float64() * math.Log(float64(cfg.MaxSize))))
				seed := rng.Uint64() | 1
				err := e.soakOp(d, op, max(n, 1), seed, buf)
				mu.Lock()
				switch {
				case err == nil:
					res.Sessions++
					res.Bytes += n
					res.Ops[slicesIndex(op)]++
				case errors.Is(err, errCorrupt):
					res.Corrupt++
					fallthrough
				default:
					res.Errors++
					if len(res.FirstErrs) < 5 {
						res.FirstErrs = append(res.FirstErrs, fmt.Sprintf("%s of %d bytes: %v", opLabel(op), n, err))
					}
				}
				mu.Unlock()
			}
		})
	}
	progress := time.NewTicker(10 * time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-progress.C:
			mu.Lock()
			m := s.mem()
			cfg.logf("soak: %d sessions, %.2f GiB checked, %d errors, %d corrupt; gateway RSS %d MiB, %d FDs", res.Sessions, float64(res.Bytes)/(1<<30), res.Errors, res.Corrupt, m.RSS>>10, m.FDs)
			mu.Unlock()
		}
	}
	progress.Stop()
	res.Wall = time.Since(start)
	res.CPU = s.cpu() - cpu
	res.Closed = time.Since(start)
	for _, err := range e.sink.failures() {
		res.Errors++
		if errors.Is(err, errCorrupt) {
			res.Corrupt++
		}
		if len(res.FirstErrs) < 5 {
			res.FirstErrs = append(res.FirstErrs, err.Error())
		}
	}
	cfg.logf("soak: all sessions closed; watching the gateway for %s", cfg.Settle)
	time.Sleep(cfg.Settle)
	close(stopSampling)
	<-sampled
	res.Load[1] = loadAvg()
	return res, nil
}

func slicesIndex(op byte) int {
	for i, o := range soakOps {
		if o == op {
			return i
		}
	}
	return 0
}

func opLabel(op byte) string {
	switch op {
	case opEcho:
		return "echo"
	case opDownload:
		return "download"
	}
	return "upload"
}

// soakOp runs one checked session.
func (e *env) soakOp(d *client.Dialer, op byte, size int64, seed uint64, buf []byte) error {
	if op != opEcho {
		_, err := e.transfer(d, op, size, seed, buf)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := e.open(ctx, d, request{op: opEcho, size: size, seed: seed})
	if err != nil {
		return err
	}
	defer c.Close()
	sent := make(chan error, 1)
	go func() { sent <- sendPattern(deadlined{c}, make([]byte, 16<<10), seed, size) }()
	_, rerr := recvPattern(deadlined{c}, buf, seed, size)
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	if err := <-sent; err != nil && rerr == nil {
		return fmt.Errorf("echo send: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("echo: %w", rerr)
	}
	return nil
}

// phases splits the samples: during the run after the warm-up (the
// first quarter), and after the close.
func (r *SoakResult) phases() (steady, after []sample1) {
	warm := r.Closed / 4
	for _, s := range r.Samples {
		switch {
		case s.At > warm && s.At <= r.Closed:
			steady = append(steady, s)
		case s.At > r.Closed:
			after = append(after, s)
		}
	}
	return steady, after
}

// Summary are the soak's figures.
type SoakSummary struct {
	PeakRSS, PeakPSS   int64   // KiB during the run
	SteadyRSSSlope     float64 // MiB per minute after the warm-up
	SteadyMinRSS       int64
	SteadyMaxRSS       int64
	PeakFDs, FinalFDs  int
	FinalRSS, FinalPSS int64 // KiB at the end of Settle
	CPUShare           float64
	SessionsPerSec     float64
	MBps               float64
}

func (r *SoakResult) Summary() SoakSummary {
	var s SoakSummary
	steady, after := r.phases()
	var xs, ys []float64
	s.SteadyMinRSS = math.MaxInt64
	for _, p := range r.Samples {
		if p.At <= r.Closed {
			s.PeakRSS = max(s.PeakRSS, p.Mem.RSS)
			s.PeakPSS = max(s.PeakPSS, p.Mem.PSS)
			s.PeakFDs = max(s.PeakFDs, p.Mem.FDs)
		}
	}
	for _, p := range steady {
		xs = append(xs, p.At.Minutes())
		ys = append(ys, float64(p.Mem.RSS)/1024)
		s.SteadyMinRSS = min(s.SteadyMinRSS, p.Mem.RSS)
		s.SteadyMaxRSS = max(s.SteadyMaxRSS, p.Mem.RSS)
	}
	if len(steady) == 0 {
		s.SteadyMinRSS = 0
	}
	s.SteadyRSSSlope = slope(xs, ys)
	if len(after) > 0 {
		last := after[len(after)-1].Mem
		s.FinalRSS, s.FinalPSS, s.FinalFDs = last.RSS, last.PSS, last.FDs
	}
	s.CPUShare = r.CPU / r.Wall.Seconds()
	s.SessionsPerSec = float64(r.Sessions) / r.Wall.Seconds()
	s.MBps = float64(r.Bytes) / 1e6 / r.Wall.Seconds()
	return s
}

// Markdown renders the soak's figures and verdicts.
func (r *SoakResult) Markdown(command string) string {
	s := r.Summary()
	c := r.Config
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`. Machine: %s. Started %s; 1-minute load average %.1f at the start, %.1f at the end.\n\n", command, r.Machine, r.Started.Format("2006-01-02 15:04 MST"), r.Load[0], r.Load[1])
	fmt.Fprintf(&b, "%d concurrent workers through gssocks for %s, confidentiality (%s), each running one session after another: echo, download or upload (equally likely) of a log-uniform random size from 1 byte to %s, every byte a seeded pattern checked by the receiving end. Gateway memory sampled every second from /proc.\n\n", c.Sessions, c.Duration, c.Enctype, size(c.MaxSize))
	b.WriteString("| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| sessions completed | %d (%.0f/s; %d echo, %d download, %d upload) |\n", r.Sessions, s.SessionsPerSec, r.Ops[0], r.Ops[1], r.Ops[2])
	fmt.Fprintf(&b, "| payload checked end to end | %.2f GiB (%.0f MB/s) |\n", float64(r.Bytes)/(1<<30), s.MBps)
	fmt.Fprintf(&b, "| errors / corrupt transfers | %d / %d |\n", r.Errors, r.Corrupt)
	fmt.Fprintf(&b, "| gateway CPU | %.0f %% of a core |\n", 100*s.CPUShare)
	fmt.Fprintf(&b, "| gateway RSS: baseline → peak during the run | %.1f → %.1f MiB (PSS peak %.1f MiB) |\n", kib(r.Baseline.RSS), kib(s.PeakRSS), kib(s.PeakPSS))
	fmt.Fprintf(&b, "| gateway RSS after the warm-up (first quarter) | %.1f – %.1f MiB, slope %+.2f MiB/min |\n", kib(s.SteadyMinRSS), kib(s.SteadyMaxRSS), s.SteadyRSSSlope)
	fmt.Fprintf(&b, "| gateway RSS %s after the last session closed | %.1f MiB (%.2f × baseline) |\n", c.Settle, kib(s.FinalRSS), float64(s.FinalRSS)/float64(max(1, r.Baseline.RSS)))
	_, after := r.phases()
	var marks []string
	for _, p := range after {
		if d := p.At - r.Closed; len(marks) < 6 && (d >= time.Duration(len(marks)+1)*c.Settle/6) {
			marks = append(marks, fmt.Sprintf("+%ds %.1f", int(d.Seconds()), kib(p.Mem.RSS)))
		}
	}
	fmt.Fprintf(&b, "| gateway RSS after the close, MiB | %s |\n", strings.Join(marks, ", "))
	fmt.Fprintf(&b, "| gateway FDs: baseline / peak / after | %d / %d / %d |\n", r.Baseline.FDs, s.PeakFDs, s.FinalFDs)
	for _, e := range r.FirstErrs {
		fmt.Fprintf(&b, "\nerror: %s\n", e)
	}
	b.WriteString("\n| target (issue 13) | met | measured |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	fmt.Fprintf(&b, "| 0 errors, 0 corruption | %s | %d errors, %d corrupt |\n", verdict(r.Errors == 0 && r.Corrupt == 0), r.Errors, r.Corrupt)
	if c.Sessions >= 1000 {
		fmt.Fprintf(&b, "| %d sessions moving data hold ≤ 150 MiB RSS | %s | peak %.1f MiB |\n", c.Sessions, verdict(s.PeakRSS <= 150<<10), kib(s.PeakRSS))
	}
	if c.Settle >= time.Minute {
		fmt.Fprintf(&b, "| RSS within 2 × idle baseline %s after close | %s | %.2f × |\n", c.Settle, verdict(s.FinalRSS <= 2*r.Baseline.RSS), float64(s.FinalRSS)/float64(max(1, r.Baseline.RSS)))
	}
	fmt.Fprintf(&b, "| FDs back to baseline | %s | %d → %d |\n", verdict(s.FinalFDs <= r.Baseline.FDs), r.Baseline.FDs, s.FinalFDs)
	return b.String()
}

func kib(v int64) float64 { return float64(v) / 1024 }
