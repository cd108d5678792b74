// Command socksbench measures gssocks beside Dante's sockd (GSS-API
// build) in one run, with our client package as the load generator: a
// throwaway MIT realm, the gssocks binary built from this tree, sockd
// with the same keytab and levels, and a local byte source/sink. It
// measures each server in alternation and reports medians:
//
//   - bulk: one session per transfer, download and upload, per protection
//     level and enctype: MB/s and server CPU s/GiB;
//   - the crypto floor: Wrap and Unwrap alone, in process, per level and
//     enctype, and each relay's CPU against floor + clear relay;
//   - concurrency: parallel streams at confidentiality;
//   - setup: sessions per second, p50/p99 latency and server CPU per
//     session from 1 and 32 workers;
//   - idle: memory, descriptors and goroutines per idle session, as
//     least-squares slopes over steps of sessions held open;
//   - the bulk through Dante's socksify + curl, a client neither side wrote;
//   - where gssocks' CPU goes (perf record).
//
// It prints one Markdown report (-out also writes it to a file), with the
// ratios gssocks/Dante and gssocks/floor and a verdict on each target of
// issue 13. -quick is the tiny configuration CI runs (TestQuick). -soak
// runs the soak instead: gssocks only, -sessions concurrent sessions of
// checked echo, download and upload for the given time.
//
// Linux only (/proc, RLIMIT_NOFILE); run as root for 10 000 idle
// sessions (the hard descriptor limit is raised). bench/socks.sh runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gssocks/gssocks/encap"
)

func main() {
	full := Full()
	quick := flag.Bool("quick", false, "the tiny configuration CI runs (every measurement, small sizes, one run)")
	size := flag.Int64("size", full.Size, "bytes per bulk transfer")
	runs := flag.Int("runs", full.Runs, "samples per measurement and server (the median is reported)")
	streams := flag.Int("streams", full.Streams, "parallel streams of the concurrency measurement")
	idle := flag.Int("idle", full.Idle, "idle sessions held at the last step (0: skip)")
	setupTime := flag.Duration("setup-time", full.SetupTime, "duration of one setup sample")
	enctypes := flag.String("enctypes", strings.Join(full.Enctypes, ","), "bulk enctypes: aes256-sha1, aes256-sha384")
	levels := flag.String("levels", "0,1,2", "bulk protection levels (\"\": no bulk)")
	floorSize := flag.Int64("floor-size", full.FloorSize, "bytes per crypto floor sample (0: no floor)")
	noDante := flag.Bool("no-dante", false, "measure gssocks alone")
	baseline := flag.String("baseline", "", "a gssocks source tree to measure instead of Dante (before/after figures)")
	profile := flag.Duration("profile", full.Profile, "perf record duration per direction (0: no profile)")
	var gssocksEnv []string
	flag.Func("gssocks-env", "KEY=VALUE added to gssocks' environment (repeatable), e.g. GOMAXPROCS=1", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		gssocksEnv = append(gssocksEnv, s)
		return nil
	})
	out := flag.String("out", "", "also write the report to this file")
	soak := flag.Duration("soak", 0, "run the soak for this long instead of the benchmark")
	sessions := flag.Int("sessions", 1000, "soak: concurrent sessions")
	maxSize := flag.Int64("max-size", 4<<20, "soak: largest transfer")
	settle := flag.Duration("settle", time.Minute, "soak: how long the gateway is watched after the last session")
	flag.Parse()
	command := "socksbench " + strings.Join(os.Args[1:], " ")
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)

	var report string
	if *soak > 0 {
		r, err := Soak(SoakConfig{Duration: *soak, Sessions: *sessions, MaxSize: *maxSize, Settle: *settle, Enctype: "aes256-sha1", Log: os.Stderr, Interrupt: interrupt, GssocksEnv: gssocksEnv})
		if err != nil {
			fail(err)
		}
		report = r.Markdown(command)
	} else {
		cfg := full
		if *quick {
			cfg = Quick()
		} else {
			cfg.Size, cfg.Runs, cfg.Streams, cfg.Idle, cfg.SetupTime, cfg.Profile = *size, *runs, *streams, *idle, *setupTime, *profile
			cfg.StreamTotal = *size
			cfg.Enctypes = strings.Split(*enctypes, ",")
			cfg.Levels = nil
			cfg.FloorSize = *floorSize
			for _, l := range strings.Split(*levels, ",") {
				if l == "" {
					continue
				}
				n, err := strconv.Atoi(l)
				if err != nil || n < 0 || n > 2 {
					fail(fmt.Errorf("-levels: %q is not 0, 1 or 2", l))
				}
				cfg.Levels = append(cfg.Levels, encap.Level(n))
			}
			for _, et := range cfg.Enctypes {
				if enctypeNames[et] == "" {
					fail(fmt.Errorf("-enctypes: unknown %q", et))
				}
			}
		}
		if *baseline != "" {
			cfg.Baseline, cfg.Dante, cfg.Socksify = *baseline, false, false
		}
		if *noDante {
			cfg.Dante, cfg.Socksify = false, false
		}
		cfg.Log = os.Stderr
		cfg.GssocksEnv = gssocksEnv
		cfg.Interrupt = interrupt
		r, err := Run(cfg)
		if err != nil {
			fail(err)
		}
		report = r.Markdown(command)
	}
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "socksbench:", err)
	os.Exit(1)
}
