package server

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/encap"
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
// without per-token allocation at levels 1 and 2.
func (s *session) relay(target net.Conn, idle time.Duration) {
	var client net.Conn = s.conn
	if s.enc != nil {
		client = s.enc
	}
	r := &encap.Relay{Pool: s.srv.pool, Idle: idle}
	errc := make(chan error, 2)
	go func() { errc <- r.Copy(target, client, &s.up) }()
	go func() { errc <- r.Copy(client, target, &s.down) }()
	for range 2 {
		if err := <-errc; err != nil {
			if errors.Is(err, encap.ErrIdle) {
				s.reason = "idle timeout"
			} else if !errors.Is(err, net.ErrClosed) {
				s.log.Debug("relay ended", "error", err)
			}
			s.abort() // unblocks the other direction
		}
	}
}
