package server

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
)

// activity is the time of the last data in either direction of a UDP
// association (TCP relays keep theirs in encap.Relay).
type activity struct{ last atomic.Int64 }

func (a *activity) touch()               { a.last.Store(time.Now().UnixNano()) }
func (a *activity) since() time.Duration { return time.Duration(time.Now().UnixNano() - a.last.Load()) }

// relay moves data both ways between the client stream and target until
// both directions have ended (half-closes are passed on) or one fails or
// the session is idle for the idle timeout in both directions. The copy
// engine is encap.Relay's: kernel splice at level 0, wrap and unwrap
// without per-token allocation at levels 1 and 2. The session's own
// goroutine carries the destination-to-client direction and one more
// goroutine the other: two per session, not a waiting third.
func (s *session) relay(target net.Conn, idle time.Duration) {
	var client net.Conn = s.conn
	if s.hs.enc != nil {
		client = s.hs.enc
	}
	r := &encap.Relay{Pool: s.srv.pool, Idle: idle}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pump(r, target, client, &s.rec.up, "relay (client to destination)")
	}()
	s.pump(r, client, target, &s.rec.down, "relay (destination to client)")
	<-done
}

// pump runs one direction of the relay; its failure (a panic included)
// is recorded and aborts the session, which unblocks the other direction.
func (s *session) pump(r *encap.Relay, dst, src net.Conn, count *atomic.Int64, where string) {
	err := errPanicked // unless Copy returns
	defer func() {
		if err != nil {
			s.relayEnded(err, errors.Is(err, encap.ErrIdle))
			s.abort()
		}
	}()
	defer s.recoverPanic(where)
	err = r.Copy(dst, src, count)
}

// errPanicked is what a relay direction that panicked returns (its
// record is written by recoverPanic).
var errPanicked = errors.New("server: relay direction panicked")

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
