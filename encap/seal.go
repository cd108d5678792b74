package encap

import (
	"fmt"
	"io"
	"net"
)

// maxBatch is the most tokens a relay direction moves per system call
// (readv of their plaintexts, writev of the messages): 4 × 64 KiB while
// data is waiting, one token's worth otherwise.
const maxBatch = 4

// batch is up to maxBatch messages or plaintexts for one writev. Its
// array outlives each write (net.Buffers.WriteTo consumes the slice).
type batch struct {
	arr [maxBatch][]byte
	v   net.Buffers
}

func (b *batch) reset() *net.Buffers {
	b.v = b.arr[:0]
	return &b.v
}

// RFC 4121 §4.2.6.2: a Wrap token starts with a 16-byte header; sealed, the
// ciphertext starts with a confounder of one cipher block (RFC 3961 §5.3;
// 16 bytes for every AES enctype gssapi supports). Wrap puts the
// plaintext right after them: sealPrefix is where it lies in a token.
const (
	tokenHeaderLen = 16
	confounderLen  = 16
)

func sealPrefix(conf bool) int {
	if conf {
		return tokenHeaderLen + confounderLen
	}
	return tokenHeaderLen
}

// sealer is the direction from a socket to an encapsulated end (a
// download through the gateway): the plaintext is read (readv) straight
// into message buffers at the place a token's plaintext takes, wrapped
// there, and the messages are written with one writev. The buffers are
// taken from the pool when the socket has data and given back when a read
// finds none, so an idle direction holds none.
type sealer struct {
	c    *Conn
	pool *Pool
	wr   *waitReader
	off  int // where the plaintext lies in a message buffer
	k    int // buffers the next read may fill

	slots [maxBatch]*[]byte
	iov   [maxBatch][]byte
	out   batch
}

// newSealer returns a sealer from src to c, or nil when src has no file
// descriptor to wait on.
func newSealer(c *Conn, src net.Conn, pool *Pool) *sealer {
	s := &sealer{c: c, pool: pool, off: headerLen + sealPrefix(c.conf), k: 1}
	s.wr = newWaitReader(src, s.dst, s.idle)
	if s.wr == nil {
		return nil
	}
	return s
}

func (s *sealer) dst() [][]byte {
	for i := range s.k {
		if s.slots[i] == nil {
			s.slots[i] = s.pool.Get(messageBufLen)
		}
		s.iov[i] = (*s.slots[i])[s.off : s.off+s.c.maxPlain]
	}
	return s.iov[:s.k]
}

// idle gives every buffer back: nothing in them is pending once a read
// is attempted. (Without a Pool the sealer keeps its buffers.)
func (s *sealer) idle() {
	if s.pool == nil {
		return
	}
	for i, b := range s.slots {
		if b != nil {
			s.pool.Put(b)
			s.slots[i], s.iov[i] = nil, nil
		}
	}
}

// step reads what the socket has (up to k tokens' worth), wraps and
// writes it; eof at the socket's end.
func (s *sealer) step() (int64, bool, error) {
	n, err := s.wr.Read()
	if err != nil {
		if err == io.EOF {
			return 0, true, nil
		}
		return 0, false, err
	}
	full := n / s.c.maxPlain
	if err := s.c.sealSlots(s, n); err != nil {
		return 0, false, err
	}
	// Read more per call while the socket keeps the buffers full.
	switch {
	case full == s.k:
		s.k = min(2*s.k, maxBatch)
	case full+1 < s.k:
		s.k = full + 1
	}
	return int64(n), false, nil
}

// sealSlots wraps n bytes of plaintext read into s's buffers (full tokens
// but the last) where they lie and writes the messages with one writev.
// Wrapping and writing hold the write lock together: the tokens' sequence
// numbers are in write order.
func (c *Conn) sealSlots(s *sealer, n int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	out := s.out.reset()
	for i := 0; n > 0; i++ {
		m := min(n, c.maxPlain)
		msg, err := c.wrapInPlace(*s.slots[i], m)
		if err != nil {
			c.werr = err
			return err
		}
		*out = append(*out, msg)
		n -= m
	}
	if _, err := out.WriteTo(c.conn); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// wrapInPlace turns the m bytes of plaintext at buf[headerLen+
// sealPrefix:] into an MTYP 3 message at buf[0:]: Wrap writes the token
// header (and confounder) before the plaintext and the trailer after it,
// so the plaintext is never copied to another buffer. TestWrapInPlace
// pins gssapi's Wrap to this layout.
func (c *Conn) wrapInPlace(buf []byte, m int) ([]byte, error) {
	off := headerLen + sealPrefix(c.conf)
	tok, err := c.ctx.Wrap(buf[headerLen:headerLen], buf[off:off+m], c.conf)
	if err != nil {
		return nil, fmt.Errorf("encap: wrap: %w", err)
	}
	if len(tok) > MaxToken {
		return nil, fmt.Errorf("%w: %d-byte token for %d bytes of payload", ErrTooLarge, len(tok), m)
	}
	if &tok[0] != &buf[headerLen] {
		return nil, fmt.Errorf("encap: a %d-byte token did not fit its message buffer", len(tok))
	}
	putHeader(buf, MsgEncapsulated, len(tok))
	return buf[:headerLen+len(tok)], nil
}
