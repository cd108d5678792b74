package encap

import "sync"

// Buffer sizes the Pool keeps.
const (
	// wrapSlack is the scratch room Wrap needs past a maximal token (the
	// zero-padded final block of CBC-CTS), so that wrapping into a
	// messageBufLen buffer never grows it.
	wrapSlack = 64
	// messageBufLen holds one maximal message being written (header,
	// 65535-byte token, wrapSlack) or one maximal plaintext being read.
	messageBufLen = headerLen + MaxToken + wrapSlack
	// readBufLen holds one maximal message and most of the next, so a Conn
	// reading the data phase rarely compacts and never reads a message in
	// more than two pieces.
	readBufLen = 2 * (headerLen + MaxToken)
)

// Pool recycles the buffers of encapsulated connections and relays, in two
// size classes: 65603 bytes (one maximal message with wrap scratch room: a
// Conn's write buffer, the plaintext buffer of a relay direction) and
// 131078 bytes (two maximal messages: a Conn's read buffer). Share one
// per server. The zero value is ready to use; a nil *Pool allocates every
// buffer and recycles none. Safe for concurrent use.
type Pool struct {
	message, read sync.Pool
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{} }

// class is the pool of buffers of capacity size, nil for a size the Pool
// does not keep.
func (p *Pool) class(size int) (*sync.Pool, int) {
	switch {
	case size <= messageBufLen:
		return &p.message, messageBufLen
	case size <= readBufLen:
		return &p.read, readBufLen
	}
	return nil, size
}

// Get returns a buffer of length n, with the capacity of the smallest
// class that holds n (above 131078 bytes, capacity n: such a buffer is
// allocated and Put drops it). Give it back with Put.
func (p *Pool) Get(n int) *[]byte {
	if p == nil {
		b := make([]byte, n)
		return &b
	}
	sp, size := p.class(n)
	if sp != nil {
		if b, ok := sp.Get().(*[]byte); ok {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n, size)
	return &b
}

// Put returns a buffer obtained from Get. A buffer whose capacity is not
// exactly a class size (grown by append, or never the Pool's) is dropped.
func (p *Pool) Put(b *[]byte) {
	if p == nil || b == nil {
		return
	}
	if sp, size := p.class(cap(*b)); sp != nil && cap(*b) == size {
		sp.Put(b)
	}
}
