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
	c     *Conn
	pool  *Pool
	wr    *waitReader
	off   int  // where the plaintext lies in a message buffer
	small int  // plaintext room of a small buffer
	large bool // large buffers: a read filled a small one
	// needLarge: a read of this busy period (since the socket was last
	// found empty) needed large buffers. At the end of a busy period
	// without one the sealer goes back to small buffers.
	needLarge bool
	k         int // buffers the next read may fill (large ones)

	slots [maxBatch]*[]byte
	iov   [maxBatch][]byte
	out   batch
}

// newSealer returns a sealer from src to c, or nil when src has no file
// descriptor to wait on.
func newSealer(c *Conn, src net.Conn, pool *Pool) *sealer {
	s := &sealer{c: c, pool: pool, off: headerLen + sealPrefix(c.conf), k: 1}
	s.small = min(c.maxPlain, smallBufLen-headerLen-c.ctx.WrapOverhead(c.conf)-wrapSlack)
	s.wr = newWaitReader(src, s.dst, s.idle)
	if s.wr == nil {
		return nil
	}
	return s
}

// room is the plaintext each buffer of the next read takes.
func (s *sealer) room() int {
	if s.large {
		return s.c.maxPlain
	}
	return s.small
}

func (s *sealer) dst() [][]byte {
	size, k := smallBufLen, 1
	if s.large {
		size, k = messageBufLen, s.k
	}
	room := s.room()
	for i := range k {
		if b := s.slots[i]; b != nil && cap(*b) != size {
			s.pool.Put(b) // of the other size: the traffic changed
			s.slots[i] = nil
		}
		if s.slots[i] == nil {
			s.slots[i] = s.pool.Get(size)
		}
		s.iov[i] = (*s.slots[i])[s.off : s.off+room]
	}
	return s.iov[:k]
}

// idle gives every buffer back: nothing in them is pending once a read
// is attempted. (Without a Pool the sealer keeps its buffers.)
func (s *sealer) idle() {
	if !s.needLarge {
		s.large, s.k = false, 1
	}
	s.needLarge = false
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
	room := s.room()
	if err := s.c.sealSlots(s, n, room); err != nil {
		return 0, false, err
	}
	// Large buffers once a small one is filled, and more of them per
	// read while the socket keeps them full (small again after a busy
	// period whose reads all fit a small one: see idle).
	full := n / room
	if n > s.small {
		s.needLarge = true
	}
	switch {
	case !s.large:
		if full == 1 {
			s.large, s.k, s.needLarge = true, 1, true
		}
	case full == s.k:
		s.k = min(2*s.k, maxBatch)
	case full+1 < s.k:
		s.k = full + 1
	}
	return int64(n), false, nil
}

// sealSlots wraps n bytes of plaintext read into s's buffers (room bytes
// in each but the last) where they lie and writes the messages with one
// writev. Wrapping and writing hold the write lock together: the tokens'
// sequence numbers are in write order.
func (c *Conn) sealSlots(s *sealer, n, room int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	out := s.out.reset()
	for i := 0; n > 0; i++ {
		m := min(n, room)
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
