package encap

import (
	"io"
	"testing"
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
