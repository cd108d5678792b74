package encap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gssocks/gssocks/gssapi"
)

// ErrProtection: a data token's protection does not match the agreed level
// (an integrity-only token at confidentiality, or the reverse).
var ErrProtection = errors.New("encap: token protection does not match the agreed level")

// ConnOptions tune a Conn.
type ConnOptions struct {
	// MaxPlaintext bounds the plaintext per token written (default and
	// maximum: the largest whose message fits the 65535-byte token limit).
	MaxPlaintext int
	// Pool supplies buffers, taken while data moves and given back when
	// the connection has nothing more to read or a Write is done, so an
	// idle Conn holds none (default: allocated per Conn and kept).
	Pool *Pool
}

// Conn encapsulates a TCP stream (RFC 1961 §5): each Write becomes one or
// more MTYP 3 messages of at most MaxPlaintext bytes of plaintext; Read
// unwraps them in strict sequence. Reads and writes may run concurrently
// with each other (the two directions of a relay).
//
// Like tls.Conn it hides its transport: every byte it sends is framed and
// wrapped, and only NetConn reaches the connection underneath (for
// deadlines, addresses, socket options: never to write around the
// encapsulation).
type Conn struct {
	conn     net.Conn
	ctx      *gssapi.Context
	conf     bool
	maxPlain int
	pool     *Pool

	rmu          sync.Mutex
	rbuf         *[]byte // nil while nothing is pending (see readIdle)
	rstart, rend int
	plain        []byte // unread plaintext, inside rbuf
	rerr         error
	large        bool        // take a large read buffer (the last busy period needed one)
	needLarge    bool        // this busy period needed one
	wr           *waitReader // nil: reads hold rbuf while they wait
	riov         [1][]byte   // wr's destination
	out          batch       // plaintexts for one write (writeTokensTo)

	wmu  sync.Mutex
	wbuf *[]byte
	werr error
}

// NewConn encapsulates c at level (integrity or confidentiality).
func NewConn(c net.Conn, ctx *gssapi.Context, level Level, opts ConnOptions) (*Conn, error) {
	if level != LevelIntegrity && level != LevelConfidentiality {
		return nil, fmt.Errorf("encap: cannot encapsulate at level %s", level)
	}
	conf := level == LevelConfidentiality
	max := ctx.WrapSizeLimit(MaxToken, conf)
	if opts.MaxPlaintext > 0 && opts.MaxPlaintext < max {
		max = opts.MaxPlaintext
	}
	cn := &Conn{conn: c, ctx: ctx, conf: conf, maxPlain: max, pool: opts.Pool}
	cn.wr = newWaitReader(c, cn.readDst, cn.readIdle)
	return cn, nil
}

// MaxPlaintext is the plaintext size of a full token written by this Conn.
func (c *Conn) MaxPlaintext() int { return c.maxPlain }

// getRead returns the read buffer, taken from the pool if the Conn holds
// none: a small one unless the last busy period needed a large one.
func (c *Conn) getRead() []byte {
	if c.rbuf == nil {
		n := smallBufLen
		if c.large {
			n = readBufLen
		}
		c.rbuf = c.pool.Get(n)
	}
	return *c.rbuf
}

// grow moves what is pending to a large read buffer: a message does not
// fit the small one.
func (c *Conn) grow() {
	nb := c.pool.Get(readBufLen)
	c.rend = copy(*nb, (*c.rbuf)[c.rstart:c.rend])
	c.rstart = 0
	c.pool.Put(c.rbuf)
	c.rbuf, c.large, c.needLarge = nb, true, true
}

// readDst is where wr reads: the free end of the read buffer, taken from
// the pool if the Conn holds none.
func (c *Conn) readDst() [][]byte {
	c.riov[0] = c.getRead()[c.rend:]
	return c.riov[:]
}

// readIdle gives the read buffer back to the pool when a read finds the
// socket empty and nothing is pending in the buffer: an idle session
// holds no read buffer. (Without a Pool the Conn keeps its buffer.)
func (c *Conn) readIdle() {
	if c.pool != nil && c.rbuf != nil && c.rstart == c.rend && len(c.plain) == 0 {
		c.pool.Put(c.rbuf)
		c.rbuf, c.rstart, c.rend, c.riov[0] = nil, 0, 0, nil
		// The next busy period starts with the size this one needed.
		c.large, c.needLarge = c.needLarge, false
	}
}

// readSome reads what the connection has (at least a byte) into the
// read buffer's free end and returns the count.
func (c *Conn) readSome() (int, error) {
	if c.wr != nil {
		return c.wr.Read()
	}
	return c.conn.Read(c.getRead()[c.rend:])
}

// nextToken returns the next MTYP 3 token, valid until the next call. The
// read buffer may be given back and taken again, or compacted, inside a
// fill: positions are taken from rstart after each.
func (c *Conn) nextToken() ([]byte, error) {
	if err := c.fill(2); err != nil {
		return nil, err
	}
	h := (*c.rbuf)[c.rstart:]
	if h[0] != Version || MsgType(h[1]) == MsgAbort {
		_, _, err := parseHeader(h[:headerLen])
		return nil, err
	}
	if err := c.fill(headerLen); err != nil {
		return nil, err
	}
	mtyp, n, err := parseHeader((*c.rbuf)[c.rstart : c.rstart+headerLen])
	if err != nil {
		return nil, err
	}
	if mtyp != MsgEncapsulated {
		return nil, fmt.Errorf("%w: %s message in the data phase", ErrUnexpectedType, mtyp)
	}
	if err := c.fill(headerLen + n); err != nil {
		return nil, err
	}
	tok := (*c.rbuf)[c.rstart+headerLen : c.rstart+headerLen+n]
	c.rstart += headerLen + n
	return tok, nil
}

// fill makes n bytes available from rstart, reading ahead as the peer
// allows.
func (c *Conn) fill(n int) error {
	for c.rend-c.rstart < n {
		if c.rbuf != nil && c.rstart+n > len(*c.rbuf) {
			if n > len(*c.rbuf) {
				c.grow()
			} else {
				c.rend = copy(*c.rbuf, (*c.rbuf)[c.rstart:c.rend])
				c.rstart = 0
			}
		}
		got, err := c.readSome()
		c.rend += got
		if err != nil {
			if c.rend-c.rstart >= n {
				return nil // the error comes back with the next read
			}
			if errors.Is(err, io.EOF) && c.rend > c.rstart {
				return fmt.Errorf("encap: stream ends inside a message: %w", io.ErrUnexpectedEOF)
			}
			if errors.Is(err, io.EOF) {
				c.readIdle() // nothing more will come: no buffer to keep
			}
			return err // io.EOF between messages: the peer's half-close
		}
	}
	return nil
}

// readPlain makes c.plain hold the next non-empty plaintext.
func (c *Conn) readPlain() error {
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return c.rerr
		}
		tok, err := c.nextToken()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return err // a read deadline; the stream is intact
			}
			c.rerr = err
			return err
		}
		msg, err := c.unwrap(tok)
		if err != nil {
			c.rerr = err
			return err
		}
		c.plain = msg
	}
	return nil
}

// unwrap checks a data token and returns its plaintext, unwrapped in
// place (at the token's start).
func (c *Conn) unwrap(tok []byte) ([]byte, error) {
	msg, sealed, err := c.ctx.Unwrap(tok[:0], tok)
	if err != nil {
		return nil, fmt.Errorf("encap: data token: %w", err)
	}
	if sealed != c.conf {
		return nil, fmt.Errorf("%w: sealed=%t", ErrProtection, sealed)
	}
	return msg, nil
}

// Read returns unwrapped data.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.readPlain(); err != nil {
		return 0, err
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// WriteTo copies unwrapped data to w until the peer half-closes (io.Copy
// uses it: no intermediate buffer).
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	var r Relay
	return r.copy(w, c, nil, nil)
}

// writeTokensTo is the unwrapping step of the copy engine: it writes to
// w the plaintext of the next data token (or what is left of the current
// one) and of every further data token already read whole, with one
// write (writev) when w is a socket. eof is the peer's half-close between
// messages. A token that fails to unwrap ends the batch: the plaintexts
// before it are written, then the error is returned.
func (c *Conn) writeTokensTo(w io.Writer) (n int, eof bool, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.readPlain(); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, true, nil
		}
		return 0, false, err
	}
	out := c.out.reset()
	*out = append(*out, c.plain)
	n = len(c.plain)
	c.plain = nil
	var uerr error
	for len(*out) < maxBatch && c.tokenBuffered() {
		tok, err := c.nextToken()
		if err == nil {
			var msg []byte
			if msg, err = c.unwrap(tok); err == nil && len(msg) > 0 {
				*out = append(*out, msg)
				n += len(msg)
			}
		}
		if err != nil {
			c.rerr, uerr = err, err
			break
		}
	}
	if len(*out) == 1 {
		var m int
		m, err = w.Write((*out)[0])
		if err != nil {
			c.plain = (*out)[0][m:] // what was not delivered, for a retry
			return m, false, err
		}
	} else if _, err = out.WriteTo(w); err != nil {
		return 0, false, err // written in part: the stream is broken anyway
	}
	return n, false, uerr
}

// tokenBuffered reports whether the read buffer holds a whole data
// message (a bad header is left for nextToken to report).
func (c *Conn) tokenBuffered() bool {
	if c.rbuf == nil {
		return false
	}
	b := (*c.rbuf)[c.rstart:c.rend]
	return len(b) >= headerLen && b[0] == Version && MsgType(b[1]) == MsgEncapsulated &&
		len(b) >= headerLen+int(binary.BigEndian.Uint16(b[2:headerLen]))
}

// Write wraps p into tokens of at most MaxPlaintext bytes, one write each.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.wbuf == nil {
		// Small writes take a small buffer.
		c.wbuf = c.pool.Get(headerLen + min(len(p), c.maxPlain) + c.ctx.WrapOverhead(c.conf) + wrapSlack)
	}
	if c.pool != nil {
		// Given back at the end of each Write: an idle session holds no
		// write buffer.
		defer func() { c.pool.Put(c.wbuf); c.wbuf = nil }()
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), c.maxPlain)]
		msg, err := appendWrapped((*c.wbuf)[:0], c.ctx, chunk, c.conf)
		if err != nil {
			c.werr = err
			return n, err
		}
		*c.wbuf = msg // keep a grown buffer
		if _, err := c.conn.Write(msg); err != nil {
			c.werr = err
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// ReadFrom wraps everything r yields until EOF, one token per read, using
// a buffer of MaxPlaintext bytes (io.Copy uses it).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	rl := Relay{Pool: c.pool}
	return rl.copy(c, r, nil, nil)
}

// NetConn returns the connection underneath. Writing to it bypasses the
// encapsulation and breaks the stream; it is for what the record layer
// does not cover (socket options, inspection).
func (c *Conn) NetConn() net.Conn { return c.conn }

// LocalAddr returns the local address of the connection underneath.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the peer's address of the connection underneath.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets both deadlines of the connection underneath. A Read
// that times out leaves the stream intact (a later Read resumes the
// message it was in); a Write that times out leaves the Conn failed, as a
// token may have been sent in part.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the connection underneath.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the connection underneath.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close closes the connection underneath; RFC 1961 sends nothing on close.
// Buffers go back to the pool with Release.
func (c *Conn) Close() error { return c.conn.Close() }

// CloseWrite half-closes the underlying connection: RFC 1961 has no
// in-band end of stream, the TCP FIN is it. A connection that cannot
// half-close is closed.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.conn.Close()
}

// Release returns the buffers to the pool. Call it only after Close, once
// no Read, Write, ReadFrom or WriteTo is running or will run.
func (c *Conn) Release() {
	if c.pool == nil {
		return
	}
	c.rmu.Lock()
	if c.rbuf != nil {
		c.pool.Put(c.rbuf)
		c.rbuf, c.plain = nil, nil
		c.rerr = net.ErrClosed
	}
	c.rmu.Unlock()
	c.wmu.Lock()
	if c.wbuf != nil {
		c.pool.Put(c.wbuf)
		c.wbuf = nil
		c.werr = net.ErrClosed
	}
	c.wmu.Unlock()
}
