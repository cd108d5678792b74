package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// record is the audit record of a session while the session runs. The
// session's goroutine fills it as the session goes; the relay and UDP
// goroutines and Shutdown write the end reason and the rule through its
// methods. Every access holds mu, so the final copy races with nothing
// and no ordering between goroutines is assumed.
type record struct {
	mu    sync.Mutex
	r     audit.Record // guarded by mu
	start time.Time

	// Payload bytes client→destination and destination→client, counted
	// by the relay and UDP goroutines as data moves.
	up, down atomic.Int64
}

func (r *record) begin(start time.Time, id string, src netip.AddrPort) {
	r.start = start
	r.update(func(a *audit.Record) { a.SessionID, a.Source = id, src })
}

// update runs f on the record under the lock.
func (r *record) update(f func(*audit.Record)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.r)
}

// setEnd records why the session ends. The first writer wins: the cause
// that ended the session is the one recorded, not the errors its ending
// provoked in the other goroutines (a closed socket, a cut relay).
func (r *record) setEnd(reason audit.EndReason, detail string) {
	r.update(func(a *audit.Record) {
		if a.EndReason == "" {
			a.EndReason, a.Detail = reason, detail
		}
	})
}

func (r *record) setRule(rule string) {
	r.update(func(a *audit.Record) { a.Rule = rule })
}

// setReply records the last SOCKS reply sent.
func (r *record) setReply(rep socks5.Reply) {
	r.update(func(a *audit.Record) {
		a.Reply, a.Replied, a.ReplyText = uint8(rep), true, rep.String()
	})
}

// setPeer records the remote end (dialed) and the gateway's local
// address:port towards it (outbound).
func (r *record) setPeer(dialed, outbound net.Addr) {
	d, o := addrPortOf(dialed), addrPortOf(outbound)
	r.update(func(a *audit.Record) { a.Dialed, a.Outbound = d, o })
}

// setDialed records the address a connection was made to and the
// gateway's local address:port towards it.
func (r *record) setDialed(dialed netip.AddrPort, outbound net.Addr) {
	d := netip.AddrPortFrom(dialed.Addr().Unmap(), dialed.Port())
	o := addrPortOf(outbound)
	r.update(func(a *audit.Record) { a.Dialed, a.Outbound = d, o })
}

// finish returns the completed record: end time, duration, counters, and
// the defaults of what never happened (level "none", end "completed").
func (r *record) finish(end time.Time) audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.r
	a.GroupSIDs = append([]string(nil), a.GroupSIDs...)
	a.Time = end.UTC()
	a.Duration = end.Sub(r.start)
	a.BytesUp, a.BytesDown = r.up.Load(), r.down.Load()
	if a.Level == "" {
		a.Level = "none"
	}
	if a.EndReason == "" {
		a.EndReason = audit.EndCompleted
	}
	return a
}

// addrPortOf is a's address and port, unmapped; zero for an address that
// is not IP:port.
func addrPortOf(a net.Addr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// logStr is s as a log value that keeps a text log record on one line:
// quoted (with Go escapes) when it holds a control or non-printable
// character, as a principal, realm, service or host name sent by a client
// may. The JSON format escapes either form.
func logStr(s string) any {
	if audit.NeedsEscape(s) {
		return hclog.Quote(s)
	}
	return s
}

// logErr is err's text as logStr makes it: errors quote names they were
// given (a DNS error its host, an authentication error a principal).
func logErr(err error) any {
	if err == nil {
		return nil
	}
	return logStr(err.Error())
}
