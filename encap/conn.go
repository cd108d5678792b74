package encap

import (
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
	// Pool supplies buffers (default: allocated per Conn).
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
	rbuf         *[]byte
	rstart, rend int
	plain        []byte // unread plaintext, inside rbuf
	rerr         error

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
	return &Conn{conn: c, ctx: ctx, conf: conf, maxPlain: max, pool: opts.Pool}, nil
}

// MaxPlaintext is the plaintext size of a full token written by this Conn.
func (c *Conn) MaxPlaintext() int { return c.maxPlain }

func (c *Conn) getRead() []byte {
	if c.rbuf == nil {
		c.rbuf = c.pool.Get(readBufLen)
	}
	return *c.rbuf
}

// nextToken returns the next MTYP 3 token, valid until the next call.
func (c *Conn) nextToken() ([]byte, error) {
	buf := c.getRead()
	if err := c.fill(2); err != nil {
		return nil, err
	}
	h := buf[c.rstart:]
	if h[0] != Version || MsgType(h[1]) == MsgAbort {
		_, _, err := parseHeader(h[:headerLen])
		return nil, err
	}
	if err := c.fill(headerLen); err != nil {
		return nil, err
	}
	mtyp, n, err := parseHeader(buf[c.rstart : c.rstart+headerLen])
	if err != nil {
		return nil, err
	}
	if mtyp != MsgEncapsulated {
		return nil, fmt.Errorf("%w: %s message in the data phase", ErrUnexpectedType, mtyp)
	}
	if err := c.fill(headerLen + n); err != nil {
		return nil, err
	}
	tok := buf[c.rstart+headerLen : c.rstart+headerLen+n]
	c.rstart += headerLen + n
	return tok, nil
}

// fill makes n bytes available from rstart, reading ahead as the peer
// allows.
func (c *Conn) fill(n int) error {
	buf := *c.rbuf
	if c.rend-c.rstart >= n {
		return nil
	}
	if c.rstart+n > len(buf) {
		c.rend = copy(buf, buf[c.rstart:c.rend])
		c.rstart = 0
	}
	got, err := io.ReadAtLeast(c.conn, buf[c.rend:], c.rstart+n-c.rend)
	c.rend += got
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && c.rend > c.rstart) {
			return fmt.Errorf("encap: stream ends inside a message: %w", io.ErrUnexpectedEOF)
		}
		return err // io.EOF between messages: the peer's half-close
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
		// Unwrap in place: the plaintext lands at the token's start.
		msg, sealed, err := c.ctx.Unwrap(tok[:0], tok)
		if err != nil {
			c.rerr = fmt.Errorf("encap: data token: %w", err)
			return c.rerr
		}
		if sealed != c.conf {
			c.rerr = fmt.Errorf("%w: sealed=%t", ErrProtection, sealed)
			return c.rerr
		}
		c.plain = msg
	}
	return nil
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

// writeTokenTo writes to w the plaintext of the next data token, or what
// is left of the current one: the unwrapping step of the copy engine. eof
// is the peer's half-close between messages.
func (c *Conn) writeTokenTo(w io.Writer) (n int, eof bool, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.readPlain(); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, true, nil
		}
		return 0, false, err
	}
	n, err = w.Write(c.plain)
	c.plain = c.plain[n:]
	return n, false, err
}

// Write wraps p into tokens of at most MaxPlaintext bytes, one write each.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.wbuf == nil {
		c.wbuf = c.pool.Get(messageBufLen)
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
