package encap

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
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
// before the first Copy; run one Copy per direction, concurrently, or
// Run. A Relay must not be copied after first use.
type Relay struct {
	// Pool supplies the buffers of a direction that needs them, taken
	// while data moves and given back when the source has nothing to
	// read (nil: allocated per Copy and kept until it returns).
	Pool *Pool
	// Idle ends both directions with ErrIdle once no data has moved either
	// way for this long (0: no timeout). It is enforced with read
	// deadlines on each direction's source.
	Idle time.Duration

	last atomic.Int64 // UnixNano of the last data moved either way
}

// Copy moves data from src to dst until src ends (EOF, or the peer's
// half-close of an encapsulated stream), then half-closes dst (CloseWrite,
// when dst has it; a dst its peer has reset already has nothing to
// half-close) and returns nil. Otherwise it returns the first error:
// ErrIdle, a read or write error, or a protection error of a *Conn source
// (ErrProtection, ErrAborted, gssapi's token errors...). count, if not
// nil, receives the number of bytes delivered to dst as they go (plaintext
// for an encapsulated end).
//
// The path depends on the ends, and no buffer is held while src has
// nothing to read (with a Pool, for sockets):
//   - between two *net.TCPConn the kernel splices (up to 4 MiB per call);
//   - from a *Conn, the plaintexts of the tokens read whole are unwrapped
//     in the Conn's read buffer and written with one write (writev);
//   - from a socket to a *Conn, the plaintext is read (readv, up to 4
//     tokens' worth while data is waiting) straight into message buffers
//     at the place a token carries it, wrapped there, and the messages
//     are written with one writev;
//   - otherwise through one buffer of 64 KiB (of MaxPlaintext bytes when
//     dst is a *Conn).
//
// Nothing is allocated per token.
func (r *Relay) Copy(dst, src net.Conn, count *atomic.Int64) error {
	if _, err := r.copy(dst, src, src, count); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, syscall.ENOTCONN) {
			return err
		}
		// ENOTCONN: dst's peer has reset the connection already (a TLS
		// server that closed before reading the client's close_notify):
		// there is no direction left to half-close, and src ended
		// cleanly; not a failure of the session.
	}
	return nil
}

// Run relays both ways between client and target until both directions
// have ended: client to target in a new goroutine, target to client in the
// caller's (one goroutine fewer per session than two Copy calls beside a
// waiting caller). A direction that ends cleanly passes the half-close
// on, as Copy does, and the other goes on; the first to fail closes both
// connections, which ends the other (with an error wrapping
// net.ErrClosed). Run returns nil, or the first failure. up and down, if
// not nil, count the bytes delivered to target and to client.
func (r *Relay) Run(client, target net.Conn, up, down *atomic.Int64) error {
	var first atomic.Pointer[error]
	fail := func(err error) {
		if err != nil && first.CompareAndSwap(nil, &err) {
			client.Close()
			target.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fail(r.Copy(target, client, up))
	}()
	fail(r.Copy(client, target, down))
	<-done
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Relay) touch()               { r.last.Store(time.Now().UnixNano()) }
func (r *Relay) since() time.Duration { return time.Duration(time.Now().UnixNano() - r.last.Load()) }

// copy is the one copy loop: a step at a time until src's end or an
// error, under a read deadline on dl (when Idle is set). A deadline that
// fires while data moved less than Idle ago (in either direction) is not
// an idle session: it is moved to Idle after that data, and the loop goes
// on.
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
		d, toConn := dst.(*Conn)
		nc, fromSocket := src.(net.Conn)
		switch {
		case toConn && fromSocket:
			p.seal = newSealer(d, nc, r.Pool)
			if p.seal != nil {
				defer p.seal.idle()
			}
		case fromSocket && r.Pool != nil:
			p.rb = newReadBuf(nc, r.Pool, relayBufLen)
			if p.rb != nil {
				defer p.rb.idle()
			}
		}
		if p.seal == nil && p.rb == nil {
			n := relayBufLen
			if toConn {
				n = min(n, d.MaxPlaintext())
			}
			bp := r.Pool.Get(n)
			defer r.Pool.Put(bp)
			p.buf = *bp
		}
	}
	// One read deadline, Idle after the last data either way, renewed
	// only when it fires: a busy direction does not re-arm a timer per
	// read.
	if r.Idle > 0 && dl != nil {
		r.last.CompareAndSwap(0, time.Now().UnixNano())
		dl.SetReadDeadline(time.Unix(0, r.last.Load()).Add(r.Idle))
	}
	var total int64
	for {
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
			if r.Idle > 0 && dl != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				if r.since() < r.Idle {
					dl.SetReadDeadline(time.Unix(0, r.last.Load()).Add(r.Idle))
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

// pump is one direction's state: exactly one of from, splice, seal, rb
// and buf is set, and it names the path.
type pump struct {
	dst io.Writer
	src io.Reader

	from   *Conn             // src is encapsulated: unwrap into dst
	splice *net.TCPConn      // dst, with src also plain TCP: the kernel copies
	lr     *io.LimitedReader // src, a chunk at a time, for splice
	seal   *sealer           // src a socket, dst encapsulated: wrap in place
	rb     *readBuf          // src a socket: its buffer held only while data moves
	buf    []byte            // otherwise: read src, write dst
}

// step moves one chunk: n bytes delivered to dst, eof at src's clean end.
func (p *pump) step() (n int64, eof bool, err error) {
	switch {
	case p.from != nil:
		m, eof, err := p.from.writeTokensTo(p.dst)
		return int64(m), eof, err
	case p.splice != nil:
		p.lr.N = spliceChunk
		n, err = p.splice.ReadFrom(p.lr)
		return n, err == nil && p.lr.N > 0, err
	case p.seal != nil:
		return p.seal.step()
	}
	var m int
	buf := p.buf
	if p.rb != nil {
		m, err = p.rb.wr.Read()
		if m > 0 {
			buf = *p.rb.bp
		}
	} else {
		m, err = p.src.Read(buf)
	}
	if m > 0 {
		w, werr := p.dst.Write(buf[:m])
		if werr != nil {
			return int64(w), false, werr
		}
	}
	if err == io.EOF {
		return int64(m), true, nil
	}
	return int64(m), false, err
}

// readBuf is a socket's read buffer taken from the pool when the socket
// has data and given back when a read finds none.
type readBuf struct {
	pool *Pool
	n    int
	bp   *[]byte
	iov  [1][]byte
	wr   *waitReader
}

func newReadBuf(src net.Conn, pool *Pool, n int) *readBuf {
	b := &readBuf{pool: pool, n: n}
	b.wr = newWaitReader(src, b.dst, b.idle)
	if b.wr == nil {
		return nil
	}
	return b
}

func (b *readBuf) dst() [][]byte {
	if b.bp == nil {
		b.bp = b.pool.Get(b.n)
	}
	b.iov[0] = *b.bp
	return b.iov[:]
}

func (b *readBuf) idle() {
	if b.bp != nil {
		b.pool.Put(b.bp)
		b.bp, b.iov[0] = nil, nil
	}
}
