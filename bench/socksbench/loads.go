package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/client"
)

// opTimeout bounds one session's setup and every transfer's silences.
const opTimeout = 2 * time.Minute

// open makes a session through d to the sink and sends r.
func (e *env) open(ctx context.Context, d *client.Dialer, r request) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", e.sink.Addr())
	if err != nil {
		return nil, err
	}
	var h [reqLen]byte
	if _, err := c.Write(r.append(h[:0])); err != nil {
		c.Close()
		return nil, fmt.Errorf("send request: %w", err)
	}
	return c, nil
}

// constant is the unchecked payload of bulk uploads.
var constant = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// sample is one measurement of one server.
type sample struct {
	secs  float64 // wall time of the transfer(s) or operations
	cpu   float64 // server CPU seconds over it
	bytes int64
}

func (s sample) mbps() float64      { return float64(s.bytes) / 1e6 / s.secs }
func (s sample) cpuPerGiB() float64 { return s.cpu / (float64(s.bytes) / (1 << 30)) }

// transfer moves size bytes one way through a new session: a download
// (sink to client) or an upload; the time runs from the request to the
// last byte (download) or the sink's status (upload), without the
// session's setup.
func (e *env) transfer(d *client.Dialer, op byte, size int64, seed uint64, buf []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := e.open(ctx, d, request{op: op, size: size, seed: seed})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	switch op {
	case opDownload:
		if _, err := recvPattern(deadlined{c}, buf, seed, size); err != nil {
			return 0, fmt.Errorf("download: %w", err)
		}
	case opUpload:
		if err := sendPattern(deadlined{c}, buf, seed, size); err != nil {
			return 0, fmt.Errorf("upload: %w", err)
		}
		var st [8]byte
		if _, err := io.ReadFull(deadlined{c}, st[:]); err != nil {
			return 0, fmt.Errorf("upload status: %w", err)
		}
		if s := binary.BigEndian.Uint64(st[:]); s != uploadOK {
			return 0, fmt.Errorf("%w: upload status %d", errCorrupt, s)
		}
	default:
		return 0, fmt.Errorf("op %q", op)
	}
	return time.Since(start), nil
}

// deadlined renews a connection's deadline before each read and write,
// so that a stuck gateway fails the run instead of hanging it.
type deadlined struct{ net.Conn }

func (d deadlined) Read(p []byte) (int, error) {
	d.SetReadDeadline(time.Now().Add(opTimeout))
	return d.Conn.Read(p)
}

func (d deadlined) Write(p []byte) (int, error) {
	d.SetWriteDeadline(time.Now().Add(opTimeout))
	return d.Conn.Write(p)
}

// bulk measures one transfer of size bytes on s.
func (e *env) bulk(s *server, d *client.Dialer, op byte, size int64) (sample, error) {
	buf := make([]byte, 256<<10)
	cpu := s.cpu()
	secs, err := e.transfer(d, op, size, 0, buf)
	if err != nil {
		return sample{}, err
	}
	settle()
	return sample{secs: secs.Seconds(), cpu: s.cpu() - cpu, bytes: size}, nil
}

// settle gives a server a moment to finish the session it was serving
// (close, audit record) before its CPU time is read.
func settle() { time.Sleep(50 * time.Millisecond) }

// streams measures n parallel downloads of total/n bytes each on s, the
// time from the first request to the last byte.
func (e *env) streams(s *server, d *client.Dialer, n int, total int64) (sample, error) {
	each := total / int64(n)
	cpu := s.cpu()
	start := time.Now()
	errc := make(chan error, n)
	for range n {
		go func() {
			_, err := e.transfer(d, opDownload, each, 0, make([]byte, 64<<10))
			errc <- err
		}()
	}
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return sample{}, first
	}
	secs := time.Since(start).Seconds()
	settle()
	return sample{secs: secs, cpu: s.cpu() - cpu, bytes: each * int64(n)}, nil
}

// echoSize is the payload of a setup operation and of an idle session's
// first exchange.
const echoSize = 1 << 10

// echo sends echoSize bytes on c and reads them back.
func echo(c net.Conn) error {
	var out, in [echoSize]byte
	copy(out[:], constant)
	if _, err := c.Write(out[:]); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if in != out {
		return fmt.Errorf("echo: %w", errCorrupt)
	}
	return nil
}

// setupResult is a setup measurement: operations (TCP connect, GSS-API
// context, level, CONNECT, 1 KiB echo, the destination's close passed on,
// close) by concurrent workers.
type setupResult struct {
	ops      int
	secs     float64
	cpu      float64
	p50, p99 time.Duration
}

func (r setupResult) rate() float64     { return float64(r.ops) / r.secs }
func (r setupResult) cpuPerOp() float64 { return r.cpu / float64(r.ops) * 1e3 }

// setupRate runs workers loops of setup operations on s for dur.
func (e *env) setupRate(s *server, d *client.Dialer, workers int, dur time.Duration) (setupResult, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Pointer[error]
	cpu := s.cpu()
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) && failed.Load() == nil {
				t0 := time.Now()
				if err := e.setupOp(d); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return setupResult{}, *p
	}
	secs := time.Since(start).Seconds()
	settle()
	if len(lat) == 0 {
		return setupResult{}, errors.New("no operation completed")
	}
	slices.Sort(lat)
	return setupResult{
		ops: len(lat), secs: secs, cpu: s.cpu() - cpu,
		p50: lat[len(lat)/2], p99: lat[min(len(lat)-1, len(lat)*99/100)],
	}, nil
}

func (e *env) setupOp(d *client.Dialer) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := e.open(ctx, d, request{op: opEcho, size: echoSize})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(opTimeout))
	if err := echo(c); err != nil {
		return err
	}
	// The sink's close, passed on by the gateway.
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("after the echo: %d bytes, %v (want the end of the stream)", n, err)
	}
	return nil
}

// idleResult is the memory a server holds per idle protected session:
// least-squares slopes over the steps of sessions held open.
type idleResult struct {
	held       int     // sessions held at the last step
	pssPerSess float64 // KiB
	rssPerSess float64 // KiB, summed RSS (for a forking server, counts shared pages per process)
	fdsPerSess float64
	thrPerSess float64 // kernel threads
	prcPerSess float64 // processes
	goroutines float64 // per session; gssocks only (from a SIGQUIT dump), else NaN
	steps      []idleStep
	openRate   float64 // sessions opened per second while stepping up
}

type idleStep struct {
	sessions int
	mem      memory
}

// idle opens sessions in steps up to n on s (each: CONNECT, a 1 KiB echo,
// then nothing), measuring the server's memory after each step.
func (e *env) idle(s *server, d *client.Dialer, n, steps, workers int, logf func(string, ...any)) (r idleResult, conns []net.Conn, err error) {
	var mu sync.Mutex
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			conns = nil
		}
	}()
	time.Sleep(time.Second)
	r.steps = append(r.steps, idleStep{0, s.mem()})
	var opening time.Duration
	for step := 1; step <= steps; step++ {
		target := n * step / steps
		todo := make(chan struct{}, target-len(conns))
		for range target - len(conns) {
			todo <- struct{}{}
		}
		close(todo)
		var failed atomic.Pointer[error]
		t0 := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range todo {
					if failed.Load() != nil {
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					c, err := e.open(ctx, d, request{op: opHold, size: echoSize})
					cancel()
					if err == nil {
						c.SetDeadline(time.Now().Add(opTimeout))
						if err = echo(c); err != nil {
							c.Close()
						}
						c.SetDeadline(time.Time{})
					}
					if err != nil {
						err = fmt.Errorf("idle session: %w", err)
						failed.CompareAndSwap(nil, &err)
						return
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		opening += time.Since(t0)
		if p := failed.Load(); p != nil {
			return r, conns, fmt.Errorf("%w (%d sessions open)", *p, len(conns))
		}
		// Let the server's last sessions reach their idle state.
		time.Sleep(time.Second)
		m := s.mem()
		r.steps = append(r.steps, idleStep{len(conns), m})
		logf("%s idle: %d sessions, PSS %d MiB, %d FDs, %d processes, %d threads", s.name, len(conns), m.PSS>>10, m.FDs, m.Procs, m.Threads)
	}
	var xs, pss, rss, fds, thr, prc []float64
	for _, st := range r.steps {
		xs = append(xs, float64(st.sessions))
		pss = append(pss, float64(st.mem.PSS))
		rss = append(rss, float64(st.mem.RSS))
		fds = append(fds, float64(st.mem.FDs))
		thr = append(thr, float64(st.mem.Threads))
		prc = append(prc, float64(st.mem.Procs))
	}
	r.held = len(conns)
	r.pssPerSess, r.rssPerSess = slope(xs, pss), slope(xs, rss)
	r.fdsPerSess, r.thrPerSess, r.prcPerSess = slope(xs, fds), slope(xs, thr), slope(xs, prc)
	r.openRate = float64(len(conns)) / opening.Seconds()
	return r, conns, nil
}
