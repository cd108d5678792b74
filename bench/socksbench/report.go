package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/gssocks/gssocks/encap"
)

// Targets of issue 13.
const (
	targetFloorRatio = 1.15 // server CPU / (crypto floor + clear relay)
	targetDanteRatio = 0.30 // server CPU / Dante's
	targetSetupMs    = 0.3  // server CPU per session
	targetIdleKiB    = 16   // per idle protected session
	targetClearS     = 0.3  // s/GiB at clear
)

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

func f2(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func f0(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.0f", v)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

// floorFor is the cost a relay cannot go below for a level and direction:
// the crypto alone (the acceptor's Wrap for a download, Unwrap for an
// upload) plus gssocks' own clear relay of the same direction.
func (r *Results) floorFor(k bulkKey) (crypto, clear float64) {
	f, ok := r.Floor[floorKey{k.enctype, k.level}]
	if !ok {
		return math.NaN(), math.NaN()
	}
	crypto = f.wrap
	if k.op == opUpload {
		crypto = f.unwrap
	}
	clear = math.NaN()
	if p, ok := r.Bulk[bulkKey{k.enctype, encap.LevelClear, k.op}]; ok {
		clear = medianCPU(p["gssocks"])
	}
	return crypto, clear
}

// target is one line of the verdict.
type target struct {
	name   string
	met    bool
	detail string
}

func (r *Results) targets() []target {
	var ts []target
	worstFloor, worstFloorAt := 0.0, ""
	worstDante, worstDanteAt := 0.0, ""
	for _, k := range r.bulkKeys() {
		p := r.Bulk[k]
		g := medianCPU(p["gssocks"])
		at := fmt.Sprintf("%s %s %s", k.enctype, k.level, opName(k.op))
		if k.level != encap.LevelClear {
			c, cl := r.floorFor(k)
			if fr := ratio(g, c+cl); fr > worstFloor {
				worstFloor, worstFloorAt = fr, at
			}
		}
		if p.has(r.other()) {
			if dr := ratio(g, medianCPU(p[r.other()])); dr > worstDante {
				worstDante, worstDanteAt = dr, at
			}
		}
	}
	if worstFloorAt != "" {
		ts = append(ts, target{
			fmt.Sprintf("relay CPU ≤ %.2f × (crypto floor + clear relay), integrity and confidentiality, both ways", targetFloorRatio),
			worstFloor <= targetFloorRatio, fmt.Sprintf("worst %.2f × (%s)", worstFloor, worstFloorAt),
		})
	}
	if worstDanteAt != "" {
		ts = append(ts, target{
			fmt.Sprintf("relay CPU ≤ %.2f × Dante's at every level", targetDanteRatio),
			worstDante <= targetDanteRatio, fmt.Sprintf("worst %.2f × (%s)", worstDante, worstDanteAt),
		})
	}
	var clearWorst float64
	clearSeen := false
	for _, k := range r.bulkKeys() {
		if k.level == encap.LevelClear {
			clearSeen = true
			clearWorst = max(clearWorst, medianCPU(r.Bulk[k]["gssocks"]))
		}
	}
	if clearSeen {
		ts = append(ts, target{fmt.Sprintf("clear relay ≤ %.1f s/GiB both ways", targetClearS), clearWorst <= targetClearS, fmt.Sprintf("worst %.2f s/GiB", clearWorst)})
	}
	if len(r.Setup) > 0 {
		worst := 0.0
		for _, p := range r.Setup {
			worst = max(worst, medianSetup(p["gssocks"]).cpuPerOp())
		}
		ts = append(ts, target{fmt.Sprintf("setup: server CPU ≤ %.1f ms per session", targetSetupMs), worst <= targetSetupMs, fmt.Sprintf("worst %.3f ms", worst)})
		w := slices.Max(r.Config.SetupWorkers)
		if p := r.Setup[w]; p.has(r.other()) {
			g, d := medianSetup(p["gssocks"]), medianSetup(p[r.other()])
			ts = append(ts, target{fmt.Sprintf("setup: p99 latency with %d workers < Dante's p50", w), g.p99 < d.p50, fmt.Sprintf("%s ms vs %s ms", ms(g.p99), ms(d.p50))})
		}
	}
	if i, ok := r.Idle["gssocks"]; ok {
		ts = append(ts, target{fmt.Sprintf("idle: ≤ %d KiB per idle protected session, %d held without error", targetIdleKiB, r.Config.Idle),
			i.pssPerSess <= targetIdleKiB && i.held == r.Config.Idle, fmt.Sprintf("%.1f KiB per session, %d held", i.pssPerSess, i.held)})
	}
	return ts
}

func (r *Results) bulkKeys() []bulkKey {
	var ks []bulkKey
	for _, et := range r.Config.Enctypes {
		for _, l := range r.Config.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				if _, ok := r.Bulk[bulkKey{et, l, op}]; ok {
					ks = append(ks, bulkKey{et, l, op})
				}
			}
		}
	}
	return ks
}

func pairCell[T any](p pairOf[T], other string, f func([]T) float64, format func(float64) string) string {
	g := format(f(p["gssocks"]))
	if !p.has(other) {
		return g
	}
	return g + " / " + format(f(p[other]))
}

// other is the server beside gssocks: Dante's sockd, or a baseline gssocks.
func (r *Results) other() string {
	if r.Config.Baseline != "" {
		return "baseline"
	}
	return "dante"
}

func (r *Results) otherLabel() string {
	if r.Config.Baseline != "" {
		return "baseline"
	}
	return "Dante"
}

// Markdown renders the results: the tables, the ratios and the verdict on
// each target.
func (r *Results) Markdown(command string) string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "Command: `%s`. Machine: %s; %s. Started %s, took %s; 1-minute load average %.1f at the start, %.1f at the end (other work on the machine inflates wall-clock figures, less so CPU seconds).\n\n",
		command, r.Machine, runtime.Version(), r.Started.Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second), r.Load[0], r.Load[1])
	fmt.Fprintf(&b, "Load generator: our `client` package (Go, in the benchmark process) to a local byte source/sink, through gssocks (`gssocks serve`, built from this tree) and Dante 1.4.2's sockd (GSS-API build), same keytab, rules allowing every level, one audit/log line per session on both. Median of %d, servers measured in alternation (A B A B …). Server CPU is user+system time of the server's whole process group, from /proc.\n\n", c.Runs)

	fmt.Fprintf(&b, "### Bulk: one session, %s per transfer\n\n", size(c.Size))
	b.WriteString("Floor = the acceptor's Wrap (download) or Unwrap (upload) alone, in process, plus gssocks' clear relay of the same direction.\n\n")
	fmt.Fprintf(&b, "| enctype | level | direction | MB/s gssocks / %[1]s | server CPU s/GiB gssocks / %[1]s | gssocks / %[1]s | floor s/GiB (crypto + clear relay) | gssocks / floor |\n|---|---|---|---|---|---|---|---|\n", r.otherLabel())
	for _, k := range r.bulkKeys() {
		p := r.Bulk[k]
		g := medianCPU(p["gssocks"])
		dr := math.NaN()
		if p.has(r.other()) {
			dr = ratio(g, medianCPU(p[r.other()]))
		}
		floorCell, fr := "–", math.NaN()
		if cr, cl := r.floorFor(k); k.level != encap.LevelClear && !math.IsNaN(cr+cl) {
			floorCell = fmt.Sprintf("%s (%s + %s)", f2(cr+cl), f2(cr), f2(cl))
			fr = ratio(g, cr+cl)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k.enctype, k.level, opName(k.op),
			pairCell(p, r.other(), medianRate, f0), pairCell(p, r.other(), medianCPU, f2), f2(dr), floorCell, f2(fr))
	}

	b.WriteString("\n### Crypto floor (in process, thread CPU clock)\n\n| enctype | level | Wrap s/GiB | Unwrap s/GiB |\n|---|---|---|---|\n")
	for _, et := range c.Enctypes {
		for _, l := range []encap.Level{encap.LevelIntegrity, encap.LevelConfidentiality} {
			if f, ok := r.Floor[floorKey{et, l}]; ok {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", et, l, f2(f.wrap), f2(f.unwrap))
			}
		}
	}

	if r.Streams != nil {
		p := r.Streams
		fmt.Fprintf(&b, "\n### Concurrency: %d parallel downloads at confidentiality (%s), %s in all\n\n", c.Streams, c.Enctypes[0], size(c.StreamTotal))
		fmt.Fprintf(&b, "| aggregate MB/s gssocks / %[1]s | server CPU s/GiB gssocks / %[1]s | gssocks / %[1]s |\n|---|---|---|\n", r.otherLabel())
		fmt.Fprintf(&b, "| %s | %s | %s |\n", pairCell(p, r.other(), medianRate, f0), pairCell(p, r.other(), medianCPU, f2), f2(ratio(medianCPU(p["gssocks"]), medianCPU(p[r.other()]))))
	}

	if len(r.Setup) > 0 {
		fmt.Fprintf(&b, "\n### Setup: TCP connect, GSS-API context, level, CONNECT, 1 KiB echo, the destination's close, close (confidentiality, %s, %s per sample)\n\n", c.Enctypes[0], c.SetupTime)
		fmt.Fprintf(&b, "| workers | sessions/s gssocks / %[1]s | p50 ms gssocks / %[1]s | p99 ms gssocks / %[1]s | server CPU ms/session gssocks / %[1]s | CPU gssocks / %[1]s |\n|---|---|---|---|---|---|\n", r.otherLabel())
		for _, w := range c.SetupWorkers {
			p := r.Setup[w]
			g := medianSetup(p["gssocks"])
			row := func(f func(setupResult) string) string {
				s := f(g)
				if p.has(r.other()) {
					s += " / " + f(medianSetup(p[r.other()]))
				}
				return s
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", w,
				row(func(s setupResult) string { return f0(s.rate()) }),
				row(func(s setupResult) string { return ms(s.p50) }),
				row(func(s setupResult) string { return ms(s.p99) }),
				row(func(s setupResult) string { return fmt.Sprintf("%.3f", s.cpuPerOp()) }),
				f2(ratio(g.cpuPerOp(), medianSetup(p[r.other()]).cpuPerOp())))
		}
	}

	if len(r.Idle) > 0 {
		fmt.Fprintf(&b, "\n### Idle: authenticated confidentiality sessions held open (CONNECT, 1 KiB echo, then silence), least-squares slopes over %d steps\n\n", c.IdleSteps)
		b.WriteString("| server | sessions held | memory KiB/session (PSS) | RSS KiB/session (summed) | FDs/session | goroutines/session | processes/session | threads/session | sessions opened/s |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, name := range []string{"gssocks", r.other()} {
			i, ok := r.Idle[name]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.2f | %s | %.3f | %.3f | %.0f |\n", name, i.held, i.pssPerSess, i.rssPerSess, i.fdsPerSess, f2(i.goroutines), i.prcPerSess, i.thrPerSess, i.openRate)
		}
		if g, d := r.Idle["gssocks"], r.Idle[r.other()]; d.held > 0 {
			fmt.Fprintf(&b, "\ngssocks / %s memory per idle session: %.3f.\n", r.otherLabel(), ratio(g.pssPerSess, d.pssPerSess))
		}
		if r.IdleLimit != "" {
			b.WriteString("\n" + r.IdleLimit + ".\n")
		}
		b.WriteString("\nGoroutines: from two SIGQUIT dumps of gssocks (GOTRACEBACK=all), one with every session open, one of a fresh instance after one session; gssocks has no debug endpoint.\n")
	}

	if len(r.Socks) > 0 {
		fmt.Fprintf(&b, "\n### The same bulk through Dante's socksify + curl (MIT GSS-API in the client; a client neither gateway's authors wrote), %s, default ticket enctype (aes256-sha1)\n\n", size(c.Size))
		fmt.Fprintf(&b, "| level | direction | MB/s gssocks / %[1]s | server CPU s/GiB gssocks / %[1]s | gssocks / %[1]s |\n|---|---|---|---|---|\n", r.otherLabel())
		for _, l := range c.Levels {
			for _, op := range []byte{opDownload, opUpload} {
				p, ok := r.Socks[bulkKey{"aes256-sha1", l, op}]
				if !ok {
					continue
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l, opName(op), pairCell(p, r.other(), medianRate, f0), pairCell(p, r.other(), medianCPU, f2), f2(ratio(medianCPU(p["gssocks"]), medianCPU(p[r.other()]))))
			}
		}
	}

	b.WriteString("\n### Targets (issue 13)\n\n| target | met | measured |\n|---|---|---|\n")
	for _, t := range r.targets() {
		v := "yes"
		if !t.met {
			v = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.name, v, t.detail)
	}
	if r.Profile != "" {
		b.WriteString("\n### Where gssocks' CPU goes\n\n")
		b.WriteString(r.Profile)
	}
	return b.String()
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
