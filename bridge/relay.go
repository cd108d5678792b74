package bridge

import (
	"errors"
	"io"
	"log"
	"net"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// relayBuf is the copy buffer of each direction of a tunnel: one
// confidentiality token's worth of plaintext is about 64 KiB, half of it
// keeps two buffers per connection small and the tokens large.
const relayBuf = 32 << 10

// enter registers a handler that Shutdown waits for; false once the
// bridge is shutting down.
func (b *Bridge) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

func (b *Bridge) leave() { b.wg.Done() }

// relay copies between the local client c and the gateway stream g until
// both directions have ended. An end of stream is passed on as a
// half-close (ssh and git need it); an error in either direction closes
// both. It returns the bytes copied up (c to g) and down, and the first
// error other than the connections closing.
func (b *Bridge) relay(c, g net.Conn) (up, down int64, err error) {
	var nUp, nDown atomic.Int64
	errc := make(chan error, 2)
	go func() { errc <- b.pipe(g, c, &nUp) }()
	go func() { errc <- b.pipe(c, g, &nDown) }()
	for range 2 {
		if e := <-errc; e != nil {
			c.Close()
			g.Close()
			if err == nil && !errors.Is(e, net.ErrClosed) {
				err = e
			}
		}
	}
	c.Close()
	g.Close()
	return nUp.Load(), nDown.Load(), err
}

// pipe copies src to dst and half-closes dst at src's end of stream.
func (b *Bridge) pipe(dst, src net.Conn, n *atomic.Int64) error {
	bp := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			if werr != nil {
				return werr
			}
		}
		switch {
		case rerr == io.EOF:
			// A half-close that fails (ENOTCONN: the peer is gone
			// already) is no failure of the relay: the other
			// direction ends on its own.
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				return nil
			}
			dst.Close()
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

// hclogWriter gives net/http's servers a logger writing through l, at
// debug level: what they report is local clients misbehaving.
func hclogWriter(l hclog.Logger) *log.Logger {
	return l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
}
