package encap

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// ErrIdle ends a Relay's Copy when no data has moved in either direction
// for the relay's idle timeout.
var ErrIdle = errors.New("encap: relay idle timeout")

// spliceChunk is how much a plain TCP direction moves per kernel splice;
// between chunks the copy notes activity and renews the idle deadline.
const spliceChunk = 4 << 20

// relayBufLen is the plaintext buffer of a direction that goes through user
// space towards a plain connection.
const relayBufLen = 64 << 10

// Relay is the copy engine of the data phase, shared by the two directions
// of one relay (and used by Conn's ReadFrom and WriteTo): it moves bytes
// from one end to the other by the cheapest path the ends allow and
// enforces an idle timeout over both directions together. Set the fields
// before the first Copy; run one Copy per direction, concurrently. A Relay
// must not be copied after first use.
type Relay struct {
	// Pool supplies the plaintext buffer of a direction that needs one
	// (nil: allocated per Copy).
	Pool *Pool
	// Idle ends both directions with ErrIdle once no data has moved either
	// way for this long (0: no timeout). It is enforced with read
	// deadlines on each direction's source.
	Idle time.Duration

	last atomic.Int64 // UnixNano of the last data moved either way
}

// Copy moves data from src to dst until src ends (EOF, or the peer's
// half-close of an encapsulated stream), then half-closes dst (CloseWrite,
// when dst has it) and returns nil. Otherwise it returns the first error:
// ErrIdle, a read or write error, or a protection error of a *Conn source
// (ErrProtection, ErrAborted, gssapi's token errors...). count, if not
// nil, receives the number of bytes delivered to dst as they go (plaintext
// for an encapsulated end).
//
// The path depends on the ends: between two *net.TCPConn the kernel
// splices (up to 4 MiB per call); from a *Conn each token's plaintext is
// written to dst as it is unwrapped, without an intermediate buffer;
// otherwise through one buffer from Pool, of MaxPlaintext bytes when dst
// is a *Conn (one full token per read) and 64 KiB otherwise. Nothing is
// allocated per token.
func (r *Relay) Copy(dst, src net.Conn, count *atomic.Int64) error {
	if _, err := r.copy(dst, src, src, count); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (r *Relay) touch()               { r.last.Store(time.Now().UnixNano()) }
func (r *Relay) since() time.Duration { return time.Duration(time.Now().UnixNano() - r.last.Load()) }

// copy is the one copy loop: a step at a time, each under a renewed read
// deadline on dl (when Idle is set), until src's end or an error. A
// deadline that fires while the other direction is busy is not an idle
// session: the loop goes on.
func (r *Relay) copy(dst io.Writer, src io.Reader, dl net.Conn, count *atomic.Int64) (int64, error) {
	p := pump{dst: dst, src: src}
	switch s := src.(type) {
	case *Conn:
		p.from = s
	case *net.TCPConn:
		if d, ok := dst.(*net.TCPConn); ok {
			p.splice = d
			p.lr = &io.LimitedReader{R: s}
		}
	}
	if p.from == nil && p.splice == nil {
		n := relayBufLen
		if d, ok := dst.(*Conn); ok {
			n = min(n, d.MaxPlaintext())
		}
		if r.Pool != nil {
			bp := r.Pool.Get(n)
			defer r.Pool.Put(bp)
			p.buf = *bp
		} else {
			p.buf = make([]byte, n)
		}
	}
	var total int64
	for {
		if r.Idle > 0 && dl != nil {
			dl.SetReadDeadline(time.Now().Add(r.Idle))
		}
		n, eof, err := p.step()
		if n > 0 {
			total += n
			if count != nil {
				count.Add(n)
			}
			if r.Idle > 0 {
				r.touch()
			}
		}
		if err != nil {
			if r.Idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				if r.since() < r.Idle {
					continue
				}
				return total, ErrIdle
			}
			return total, err
		}
		if eof {
			return total, nil
		}
	}
}

// pump is one direction's state: exactly one of from, splice and buf is
// set, and it names the path.
type pump struct {
	dst io.Writer
	src io.Reader

	from   *Conn             // src is encapsulated: unwrap into dst
	splice *net.TCPConn      // dst, with src also plain TCP: the kernel copies
	lr     *io.LimitedReader // src, a chunk at a time, for splice
	buf    []byte            // read src, write dst
}

// step moves one chunk: n bytes delivered to dst, eof at src's clean end.
func (p *pump) step() (n int64, eof bool, err error) {
	switch {
	case p.from != nil:
		m, eof, err := p.from.writeTokenTo(p.dst)
		return int64(m), eof, err
	case p.splice != nil:
		p.lr.N = spliceChunk
		n, err = p.splice.ReadFrom(p.lr)
		return n, err == nil && p.lr.N > 0, err
	}
	m, err := p.src.Read(p.buf)
	if m > 0 {
		w, werr := p.dst.Write(p.buf[:m])
		if werr != nil {
			return int64(w), false, werr
		}
	}
	if err == io.EOF {
		return int64(m), true, nil
	}
	return int64(m), false, err
}
