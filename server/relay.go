package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
)

// spliceChunk is how much a plain TCP pump moves per ReadFrom call (the
// kernel splices it); between chunks the pump notes activity and renews the
// idle deadline.
const spliceChunk = 4 << 20

// relayBufLen is the buffer of the pumps that go through user space: one
// full RFC 1961 token of plaintext.
const relayBufLen = 64 << 10

// activity is the time of the last data in either direction.
type activity struct{ last atomic.Int64 }

func (a *activity) touch()               { a.last.Store(time.Now().UnixNano()) }
func (a *activity) since() time.Duration { return time.Duration(time.Now().UnixNano() - a.last.Load()) }

var errIdle = errors.New("idle timeout")

// relay moves data both ways between the client stream and target until
// both directions have ended (half-closes are passed on) or one fails or
// the session is idle for the idle timeout in both directions.
func (s *session) relay(target net.Conn, idle time.Duration) {
	act := &activity{}
	act.touch()
	errc := make(chan error, 2)
	var clientSrc io.Reader = s.conn
	var clientDst io.Writer = s.conn
	if s.hs.enc != nil {
		clientSrc, clientDst = s.hs.enc, s.hs.enc
	}
	go func() { errc <- s.pump(target, clientSrc, s.conn, &s.rec.up, act, idle) }()
	go func() { errc <- s.pump(clientDst, target, target, &s.rec.down, act, idle) }()
	for range 2 {
		if err := <-errc; err != nil {
			s.relayEnded(err, errors.Is(err, errIdle))
			s.abort() // unblocks the other pump
		}
	}
}

// pump copies src to dst until EOF, then half-closes dst. srcConn is the
// connection whose read deadline enforces the idle timeout.
func (s *session) pump(dst io.Writer, src io.Reader, srcConn net.Conn, count *atomic.Int64, act *activity, idle time.Duration) error {
	dtcp, dOK := dst.(*net.TCPConn)
	_, sOK := src.(*net.TCPConn)
	var buf []byte
	if !dOK || !sOK {
		bp := s.srv.relayBufs.Get().(*[]byte)
		defer s.srv.relayBufs.Put(bp)
		buf = *bp
		if e, ok := dst.(*encap.Conn); ok {
			buf = buf[:min(len(buf), e.MaxPlaintext())] // one full token per read
		}
	}
	for {
		if idle > 0 {
			srcConn.SetReadDeadline(time.Now().Add(idle))
		}
		var n int64
		var err error
		eof := false
		if buf == nil {
			// Plain TCP both sides: the kernel splices.
			lr := &io.LimitedReader{R: src, N: spliceChunk}
			n, err = dtcp.ReadFrom(lr)
			eof = err == nil && lr.N > 0
		} else {
			var m int
			m, err = src.Read(buf)
			if m > 0 {
				if _, werr := dst.Write(buf[:m]); werr != nil {
					return werr
				}
			}
			n = int64(m)
			if err == io.EOF {
				eof, err = true, nil
			}
		}
		if n > 0 {
			count.Add(n)
			act.touch()
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if act.since() < idle {
					continue // the other direction is busy
				}
				return errIdle
			}
			return err
		}
		if eof {
			return closeWrite(dst)
		}
	}
}

func closeWrite(w io.Writer) error {
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// relayEnded records why a relay direction failed (the first cause wins:
// the errors the abort then provokes are not recorded). A closed
// connection is the session's own abort, not a cause.
func (s *session) relayEnded(err error, idle bool) {
	switch {
	case idle:
		s.rec.setEnd(audit.EndIdleTimeout, "idle timeout")
	case errors.Is(err, net.ErrClosed):
	case errors.Is(err, gssapi.ErrContextExpired):
		s.rec.setEnd(audit.EndTicketExpired, err.Error())
	default:
		s.log.Debug("relay ended", "error", logErr(err))
		s.rec.setEnd(audit.EndError, "relay: "+err.Error())
	}
}
