package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/encap"
)

// Config is one benchmark run. Sizes are bytes.
type Config struct {
	Size         int64         // each bulk transfer
	Runs         int           // samples per measurement and server; the median is reported
	Enctypes     []string      // keys of enctypeNames
	Levels       []encap.Level // bulk levels
	Streams      int           // parallel streams of the concurrency measurement
	StreamTotal  int64         // bytes over all streams
	SetupWorkers []int         // concurrent workers of the setup measurements
	SetupTime    time.Duration // per setup sample
	Idle         int           // idle sessions held at the last step (0: no idle measurement)
	IdleSteps    int
	Dante        bool // measure Dante's sockd too
	// Baseline, a gssocks source tree (another checkout), is built and
	// measured instead of Dante: before/after figures of a change, under
	// the same load.
	Baseline   string
	Socksify   bool // the bulk figures through Dante's socksify + curl as well
	FloorSize  int64
	Profile    time.Duration // perf record of gssocks at confidentiality download (0: none)
	Log        io.Writer     // progress (nil: none)
	GssocksEnv []string      // added to gssocks' environment
	// Interrupt, when it delivers, stops the servers and the realm and
	// exits the process with status 1.
	Interrupt <-chan os.Signal
}

// Quick is the configuration CI runs: every measurement, tiny.
func Quick() Config {
	return Config{
		Size: 4 << 20, Runs: 1,
		Enctypes:     []string{"aes256-sha1", "aes256-sha384"},
		Levels:       []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality},
		Streams:      8,
		StreamTotal:  8 << 20,
		SetupWorkers: []int{1, 8},
		SetupTime:    500 * time.Millisecond,
		Idle:         40, IdleSteps: 2,
		Dante: true, Socksify: true,
		FloorSize: 4 << 20,
	}
}

// Full is the configuration of `make bench-socks`.
func Full() Config {
	return Config{
		Size: 1 << 30, Runs: 3,
		Enctypes:     []string{"aes256-sha1", "aes256-sha384"},
		Levels:       []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality},
		Streams:      64,
		StreamTotal:  1 << 30,
		SetupWorkers: []int{1, 32},
		SetupTime:    5 * time.Second,
		Idle:         10000, IdleSteps: 5,
		Dante: true, Socksify: true,
		FloorSize: 512 << 20,
		Profile:   20 * time.Second,
	}
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// pairOf is a measurement on both servers: runs samples each.
type pairOf[T any] map[string][]T

// Results holds every measurement of a run, by server name.
type Results struct {
	Config  Config
	Machine string
	Load    [2]float64 // 1-minute load average at the start and the end
	Floor   map[floorKey]floorResult
	Bulk    map[bulkKey]pairOf[sample]
	Streams pairOf[sample]
	Setup   map[int]pairOf[setupResult]
	Socks   map[bulkKey]pairOf[sample] // through socksify (enctype: the ticket's default)
	Idle    map[string]idleResult
	Profile string
	// IdleLimit says why fewer idle sessions were held than asked.
	IdleLimit string
	Started   time.Time
	Elapsed   time.Duration
}

type floorKey struct {
	enctype string
	level   encap.Level
}

type bulkKey struct {
	enctype string
	level   encap.Level
	op      byte
}

// alternate takes cfg.Runs samples of f on each server, in the order A B
// A B ..., so that a change of the machine's load hits both alike.
func alternate[T any](e *env, runs int, f func(s *server) (T, error)) (pairOf[T], error) {
	out := pairOf[T]{}
	for range runs {
		for _, s := range e.servers() {
			v, err := f(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			out[s.name] = append(out[s.name], v)
		}
	}
	return out, nil
}

// fdReserve are the descriptors a process needs besides the sessions'.
const fdReserve = 200

// raiseFileLimit lifts RLIMIT_NOFILE as far as the process may (the
// servers, started by this process, inherit it): an idle measurement holds
// two descriptors per session in the client and the sink, and the servers
// two more.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	try := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
		return want, nil
	}
	// Without the privilege to raise the hard limit: up to it.
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	var l float64
	fmt.Sscan(string(b), &l)
	return l
}

// Run runs the benchmark of cfg.
func Run(cfg Config) (*Results, error) {
	res := &Results{Config: cfg, Started: time.Now(), Machine: machine()}
	res.Load[0] = loadAvg()
	// Each idle session is two descriptors in this process (the client's
	// connection and the sink's) and two in the gateway.
	limit, err := raiseFileLimit(uint64(2*cfg.Idle + fdReserve))
	if err != nil {
		return nil, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if most := (int(limit) - fdReserve) / 2; cfg.Idle > most {
		res.IdleLimit = fmt.Sprintf("%d idle sessions asked; %d held: the descriptor limit here is %d (hard limit, not raisable without CAP_SYS_RESOURCE), two per session in the gateway and two in the benchmark", cfg.Idle, most, limit)
		cfg.logf("%s", res.IdleLimit)
		cfg.Idle = most
		res.Config.Idle = most
	}
	e, err := setup(&cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	e.onInterrupt(cfg.Interrupt)
	defer func() { res.Elapsed = time.Since(res.Started); res.Load[1] = loadAvg() }()

	// The crypto floor first, while the servers are idle.
	res.Floor = map[floorKey]floorResult{}
	for _, et := range cfg.Enctypes {
		if cfg.FloorSize <= 0 {
			break
		}
		d, err := e.dialer(e.gssocks, et, encap.LevelConfidentiality)
		if err != nil {
			return nil, err
		}
		ini, acc, err := e.pair(d)
		if err != nil {
			return nil, fmt.Errorf("floor %s: %w", et, err)
		}
		for _, lvl := range []encap.Level{encap.LevelIntegrity, encap.LevelConfidentiality} {
			var rs []floorResult
			for range cfg.Runs {
				r, err := floor(ini, acc, lvl, cfg.FloorSize)
				if err != nil {
					return nil, fmt.Errorf("floor %s %s: %w", et, lvl, err)
				}
				rs = append(rs, r)
			}
			f := floorResult{
				wrap:   median(rs, func(r floorResult) float64 { return r.wrap }),
				unwrap: median(rs, func(r floorResult) float64 { return r.unwrap }),
			}
			res.Floor[floorKey{et, lvl}] = f
			cfg.logf("floor %s %s: Wrap %.2f s/GiB, Unwrap %.2f s/GiB", et, lvl, f.wrap, f.unwrap)
		}
	}

	res.Bulk = map[bulkKey]pairOf[sample]{}
	for _, et := range cfg.Enctypes {
		for _, lvl := range cfg.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				k := bulkKey{et, lvl, op}
				p, err := alternate(e, cfg.Runs, func(s *server) (sample, error) {
					d, err := e.dialer(s, et, lvl)
					if err != nil {
						return sample{}, err
					}
					return e.bulk(s, d, op, cfg.Size)
				})
				if err != nil {
					return nil, fmt.Errorf("bulk %s %s %s: %w", et, lvl, opName(op), err)
				}
				res.Bulk[k] = p
				cfg.logf("bulk %s %s %s: %s", et, lvl, opName(op), p.summary())
			}
		}
	}

	lvl2 := encap.LevelConfidentiality
	et0 := cfg.Enctypes[0]
	if cfg.Streams > 0 {
		res.Streams, err = alternate(e, cfg.Runs, func(s *server) (sample, error) {
			d, err := e.dialer(s, et0, lvl2)
			if err != nil {
				return sample{}, err
			}
			return e.streams(s, d, cfg.Streams, cfg.StreamTotal)
		})
		if err != nil {
			return nil, fmt.Errorf("streams: %w", err)
		}
		cfg.logf("%d streams: %s", cfg.Streams, res.Streams.summary())
	}

	res.Setup = map[int]pairOf[setupResult]{}
	for _, w := range cfg.SetupWorkers {
		p, err := alternate(e, cfg.Runs, func(s *server) (setupResult, error) {
			d, err := e.dialer(s, et0, lvl2)
			if err != nil {
				return setupResult{}, err
			}
			return e.setupRate(s, d, w, cfg.SetupTime)
		})
		if err != nil {
			return nil, fmt.Errorf("setup with %d workers: %w", w, err)
		}
		res.Setup[w] = p
		for name, rs := range p {
			r := medianSetup(rs)
			cfg.logf("setup %d workers %s: %.0f ops/s, p50 %s, p99 %s, %.3f CPU ms/op", w, name, r.rate(), r.p50, r.p99, r.cpuPerOp())
		}
	}

	if cfg.Socksify && e.sockd != nil && cfg.Baseline == "" {
		res.Socks = map[bulkKey]pairOf[sample]{}
		for _, lvl := range cfg.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				p, err := alternate(e, cfg.Runs, func(s *server) (sample, error) {
					return e.socksified(s, lvl, op, cfg.Size)
				})
				if err != nil {
					return nil, fmt.Errorf("socksify %s %s: %w", lvl, opName(op), err)
				}
				res.Socks[bulkKey{"aes256-sha1", lvl, op}] = p
				cfg.logf("socksify %s %s: %s", lvl, opName(op), p.summary())
			}
		}
	}

	if cfg.Profile > 0 {
		for _, lvl := range cfg.Levels {
			if lvl == encap.LevelClear {
				continue
			}
			d, err := e.dialer(e.gssocks, et0, lvl)
			if err != nil {
				return nil, err
			}
			p, err := e.profile(e.gssocks, d, fmt.Sprintf("%s (%s)", lvl, et0), cfg.Profile)
			if err != nil {
				cfg.logf("profile: %v", err)
				p = "perf failed: " + err.Error() + "\n"
			}
			res.Profile += p
		}
		d, err := e.dialer(e.gssocks, et0, lvl2)
		if err != nil {
			return nil, err
		}
		w := slices.Max(cfg.SetupWorkers)
		p, err := e.profileSetup(e.gssocks, d, w, cfg.Profile)
		if err != nil {
			cfg.logf("profile: %v", err)
			p = "perf failed: " + err.Error() + "\n"
		}
		res.Profile += p
	}

	// Idle last: the goroutine count of gssocks comes from a SIGQUIT
	// dump, which ends it.
	if cfg.Idle > 0 {
		res.Idle = map[string]idleResult{}
		for _, s := range e.servers() {
			d, err := e.dialer(s, et0, lvl2)
			if err != nil {
				return nil, err
			}
			r, conns, err := e.idle(s, d, cfg.Idle, cfg.IdleSteps, 32, cfg.logf)
			if err != nil {
				return nil, fmt.Errorf("idle %s: %w", s.name, err)
			}
			r.goroutines = math.NaN()
			if s.dump != nil {
				g, err := e.goroutinesPerSession(s, len(conns))
				if err != nil {
					return nil, err
				}
				r.goroutines = g
			}
			for _, c := range conns {
				c.Close()
			}
			res.Idle[s.name] = r
			cfg.logf("idle %s: %d sessions: %.1f KiB PSS, %.2f FDs, %.2f goroutines, %.3f processes per session", s.name, r.held, r.pssPerSess, r.fdsPerSess, r.goroutines, r.prcPerSess)
		}
	}
	return res, nil
}

// goroutinesPerSession dumps s (SIGQUIT, which ends it) with n sessions
// open, and a fresh gssocks with none, and returns the difference per
// session.
func (e *env) goroutinesPerSession(s *server, n int) (float64, error) {
	busy, err := s.dump()
	if err != nil {
		return 0, err
	}
	fresh, err := e.startGssocks(s.name+"-fresh", s.bin)
	if err != nil {
		return 0, err
	}
	defer fresh.stop()
	// One session through the fresh instance first, so that both dumps
	// count the goroutines a gateway starts on its first session.
	if d, err := e.dialerFor(fresh); err == nil {
		if err := e.setupOp(d); err != nil {
			return 0, fmt.Errorf("fresh gssocks: %w", err)
		}
		d.Close()
	} else {
		return 0, err
	}
	time.Sleep(500 * time.Millisecond)
	base, err := fresh.dump()
	if err != nil {
		return 0, err
	}
	return float64(busy-base) / float64(n), nil
}

func opName(op byte) string {
	if op == opDownload {
		return "download"
	}
	return "upload"
}

func median[T any](v []T, f func(T) float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	xs := make([]float64, len(v))
	for i := range v {
		xs[i] = f(v[i])
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// has reports whether there are samples of the server name.
func (p pairOf[T]) has(name string) bool { return len(p[name]) > 0 }

func medianRate(v []sample) float64 { return median(v, sample.mbps) }
func medianCPU(v []sample) float64  { return median(v, sample.cpuPerGiB) }

func medianSetup(v []setupResult) setupResult {
	return setupResult{
		ops:  int(median(v, func(r setupResult) float64 { return float64(r.ops) })),
		secs: median(v, func(r setupResult) float64 { return r.secs }),
		cpu:  median(v, func(r setupResult) float64 { return r.cpu }),
		p50:  time.Duration(median(v, func(r setupResult) float64 { return float64(r.p50) })),
		p99:  time.Duration(median(v, func(r setupResult) float64 { return float64(r.p99) })),
	}
}

func (p pairOf[T]) summary() string {
	var s string
	for _, name := range []string{"gssocks", "dante", "baseline"} {
		v, ok := any(p[name]).([]sample)
		if !ok || len(v) == 0 {
			continue
		}
		s += fmt.Sprintf("%s %.0f MB/s %.2f s/GiB  ", name, medianRate(v), medianCPU(v))
	}
	return s
}

// machine describes the host: CPU model, cores, kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := kibField("/proc/meminfo", "MemTotal:") >> 20
	return fmt.Sprintf("%s, %d logical CPUs, %d GiB RAM, Linux %s", model, runtime.NumCPU(), mem, kernel)
}
