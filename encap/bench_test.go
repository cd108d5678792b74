package encap

import (
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// BenchmarkConnTransfer moves data one way between two Conns over loopback
// TCP with io.Copy (ReadFrom on the sending side, WriteTo on the
// receiving side): wrap, frame, two kernel copies, unwrap. One op is 1 MiB;
// allocations per op must stay 0 (nothing is allocated per token).
func BenchmarkConnTransfer(b *testing.B) {
	for _, lvl := range []Level{LevelIntegrity, LevelConfidentiality} {
		b.Run(lvl.String(), func(b *testing.B) {
			ini, acc := realm.Get(b).Pair(b, "alice", "")
			cc, sc := tcpPair(b)
			pool := NewPool()
			c, _ := NewConn(cc, ini, lvl, ConnOptions{Pool: pool})
			s, _ := NewConn(sc, acc, lvl, ConnOptions{Pool: pool})
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, s)
				done <- err
			}()
			const op = 1 << 20
			src := &io.LimitedReader{R: zeros{}}
			b.SetBytes(op)
			b.ReportAllocs()
			defer reportCPU(b, op)()
			for b.Loop() {
				src.N = op
				if _, err := io.Copy(c, src); err != nil {
					b.Fatal(err)
				}
			}
			c.CloseWrite()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRelayCopy is one direction of the gateway's relay at each
// level: up (client's Conn -> Relay.Copy unwrapping -> destination) and
// down (destination -> Relay.Copy wrapping -> client's Conn), loopback TCP
// on both sides; at clear the kernel splices. One op is 1 MiB.
func BenchmarkRelayCopy(b *testing.B) {
	for _, lvl := range []Level{LevelClear, LevelIntegrity, LevelConfidentiality} {
		for _, dir := range []string{"up", "down"} {
			b.Run(lvl.String()+"/"+dir, func(b *testing.B) {
				cc, sc := tcpPair(b)
				gwTarget, dest := tcpPair(b)
				pool := NewPool()
				var client, gwClient net.Conn = cc, sc
				if lvl != LevelClear {
					ini, acc := realm.Get(b).Pair(b, "alice", "")
					client, _ = NewConn(cc, ini, lvl, ConnOptions{Pool: pool})
					gwClient, _ = NewConn(sc, acc, lvl, ConnOptions{Pool: pool})
				}
				from, to := client, net.Conn(dest) // the benchmark's ends
				rdst, rsrc := net.Conn(gwTarget), gwClient
				if dir == "down" {
					from, to = dest, client
					rdst, rsrc = gwClient, gwTarget
				}
				r := &Relay{Pool: pool, Idle: time.Minute}
				relayed := make(chan error, 1)
				var relayCPU time.Duration
				go func() {
					// The relay alone, on its own thread's CPU clock.
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					err := r.Copy(rdst, rsrc, nil)
					relayCPU = threadCPU() - t0
					relayed <- err
				}()
				drained := make(chan error, 1)
				go func() {
					_, err := io.Copy(io.Discard, to)
					drained <- err
				}()
				// Full tokens from a Conn, 64 KiB writes from TCP; no
				// allocation on the benchmark's side either.
				chunk := make([]byte, 64<<10)
				if c, ok := from.(*Conn); ok {
					chunk = chunk[:c.MaxPlaintext()]
				}
				const op = 1 << 20
				b.SetBytes(op)
				b.ReportAllocs()
				defer reportCPU(b, op)()
				for b.Loop() {
					for n := 0; n < op; n += len(chunk) {
						if _, err := from.Write(chunk[:min(len(chunk), op-n)]); err != nil {
							b.Fatal(err)
						}
					}
				}
				from.(interface{ CloseWrite() error }).CloseWrite()
				if err := <-relayed; err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(relayCPU.Seconds()/(float64(b.N)*op)*(1<<30), "relay-cpu-s/GiB")
				if err := <-drained; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// reportCPU adds the process's CPU time (user and system, every thread:
// both ends and the relay) per op and per GiB moved, the figures a relay is
// judged by on a shared machine where wall-clock throughput is noise.
func reportCPU(b *testing.B, bytesPerOp int64) func() {
	start := cpuTime()
	return func() {
		d := cpuTime() - start
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(d.Seconds()/(float64(b.N)*float64(bytesPerOp))*(1<<30), "cpu-s/GiB")
	}
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
