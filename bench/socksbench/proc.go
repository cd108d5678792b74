package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of the times in /proc/PID/stat (100 on
// every Linux architecture Go runs on).
const clkTck = 100

// procStat is one process of a server's process group, from /proc.
type procStat struct {
	pid, pgrp int
	// ticks is utime+stime of every thread, live or ended; reaped is
	// cutime+cstime, the children the process has waited for.
	ticks, reaped int64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return procStat{pid: pid, pgrp: int(n(2)), ticks: n(11) + n(12), reaped: n(13) + n(14)}, true
}

// group lists the live processes whose process group is pgid (a server
// is started as the leader of its own group, and its children stay in
// it).
func group(pgid int) []procStat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := readStat(pid); ok && s.pgrp == pgid {
			out = append(out, s)
		}
	}
	return out
}

// cpuSeconds is the CPU time (user and system) of the process group pgid:
// its live processes and the children the leader has reaped.
func cpuSeconds(pgid int) float64 {
	var ticks int64
	for _, p := range group(pgid) {
		ticks += p.ticks
		if p.pid == pgid {
			ticks += p.reaped
		}
	}
	return float64(ticks) / clkTck
}

// memory is what a server's process group holds.
type memory struct {
	PSS     int64 // KiB, proportional set size summed over the processes
	RSS     int64 // KiB, resident set size summed (shared pages counted per process)
	FDs     int   // open file descriptors
	Procs   int   // processes
	Threads int   // kernel threads (OS threads for a Go process)
}

// measureMemory sums /proc/PID/smaps_rollup, /proc/PID/status and
// /proc/PID/fd over the group. For a single process PSS is its RSS less
// its share of pages mapped by others (libc); for a forking server such
// as sockd it is the honest sum, where RSS counts shared pages once per
// process.
func measureMemory(pgid int) memory {
	var m memory
	for _, p := range group(pgid) {
		dir := "/proc/" + strconv.Itoa(p.pid)
		m.Procs++
		m.PSS += kibField(dir+"/smaps_rollup", "Pss:")
		m.RSS += kibField(dir+"/status", "VmRSS:")
		m.Threads += int(kibField(dir+"/status", "Threads:"))
		if fds, err := os.ReadDir(dir + "/fd"); err == nil {
			m.FDs += len(fds)
		}
	}
	return m
}

// kibField returns the number after key in a "Key:  value [kB]" file.
func kibField(path, key string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				v, _ := strconv.ParseInt(fs[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
