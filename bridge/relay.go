package bridge

import (
	"errors"
	"io"
	"log"
	"net"
	"sync/atomic"
	"syscall"

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
//
// A reset by the local client (ECONNRESET, or EPIPE when writing to it)
// ends the tunnel like its end of stream and is no error: it is how a
// client closes a socket that still holds unread data (RFC 1122
// §4.2.2.13, RFC 2525 §2.17). A TLS client that sends close_notify and
// closes without waiting for the server's (RFC 8446 §6.1 allows it; curl
// does) resets whenever that close_notify has reached it first; the
// transfer was complete. A reset of the gateway's side stays an error:
// the gateway ended the session.
func (b *Bridge) relay(c, g net.Conn) (up, down int64, err error) {
	var nUp, nDown atomic.Int64
	ends := make(chan pipeEnd, 2)
	go func() {
		read, write := b.pipe(g, c, &nUp)
		ends <- pipeEnd{local: read, gateway: write}
	}()
	go func() {
		read, write := b.pipe(c, g, &nDown)
		ends <- pipeEnd{local: write, gateway: read}
	}()
	for range 2 {
		e := <-ends
		if e.local == nil && e.gateway == nil {
			continue
		}
		c.Close()
		g.Close()
		switch {
		case err != nil:
		case e.gateway != nil && !errors.Is(e.gateway, net.ErrClosed):
			err = e.gateway
		case e.local != nil && !errors.Is(e.local, net.ErrClosed) && !clientReset(e.local):
			err = e.local
		case e.local != nil && clientReset(e.local):
			b.log.Debug("local client reset the tunnel", "client", c.RemoteAddr().String(), "error", e.local)
		}
	}
	c.Close()
	g.Close()
	return nUp.Load(), nDown.Load(), err
}

// pipeEnd is how one direction of a relay ended: the error of the local
// client's connection and of the gateway's, nil at an end of stream.
type pipeEnd struct{ local, gateway error }

// clientReset reports whether err is the local client resetting its
// connection: ECONNRESET from a read or write, EPIPE from a write after
// the reset arrived.
func clientReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// pipe copies src to dst and half-closes dst at src's end of stream. It
// returns the error of reading src or of writing dst that ended the copy
// (both nil at src's end of stream).
func (b *Bridge) pipe(dst, src net.Conn, n *atomic.Int64) (readErr, writeErr error) {
	bp := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.Add(int64(nw))
			if werr != nil {
				return nil, werr
			}
		}
		switch {
		case rerr == io.EOF:
			// A half-close that fails (ENOTCONN: the peer is gone
			// already) is no failure of the relay: the other
			// direction ends on its own.
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				return nil, nil
			}
			dst.Close()
			return nil, nil
		case rerr != nil:
			return rerr, nil
		}
	}
}

// hclogWriter gives net/http's servers a logger writing through l, at
// debug level: what they report is local clients misbehaving.
func hclogWriter(l hclog.Logger) *log.Logger {
	return l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
}
