package encap

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

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
	// smallBufLen is the buffer of a session whose messages are small
	// (interactive traffic, a request and its reply): a Conn, or a relay
	// direction, takes one of these first and moves to the large classes
	// when a message does not fit, and back when they fit again.
	smallBufLen = 4 << 10
)

// Pool recycles the buffers of encapsulated connections and relays, in
// three size classes: 4096 bytes (small messages), 65603 bytes (one
// maximal message with wrap scratch room: a Conn's write buffer, a relay
// direction's message buffer) and 131078 bytes (two maximal messages: a
// Conn's read buffer). Share one per server. The zero value is ready to use; a nil *Pool allocates every
// buffer and recycles none. Safe for concurrent use.
//
// Buffers are taken only while data moves, so their number follows the
// load. After a burst (at least burstBuffers out at once) the Pool watches
// the count; once it has stayed at an eighth of the burst's peak or less
// for quietPeriod, it runs two garbage collections (the second frees
// what the runtime's pools kept through the first) and returns the freed
// memory to the operating system (debug.FreeOSMemory). Without that an
// idle gateway, which allocates nothing, would keep the burst's memory
// until the runtime's own collection every two minutes, and its pages
// longer.
type Pool struct {
	small, message, read sync.Pool
	out                  atomic.Int64 // buffers handed out by Get and not yet Put
	peak                 atomic.Int64 // most buffers out at once since the last trim
	watching             atomic.Bool  // a trim watcher is running

	// quiet is quietPeriod (tests shorten it); trims counts the trims.
	quiet time.Duration
	trims atomic.Int64
}

// Trimming after a burst.
const (
	burstBuffers = 64 // 4 MiB to 8 MiB of buffers
	quietPeriod  = 5 * time.Second
)

// InUse is the number of buffers taken with Get and not given back: with
// every session idle, zero (an idle Conn or Relay holds no buffer).
func (p *Pool) InUse() int64 {
	if p == nil {
		return 0
	}
	return p.out.Load()
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{} }

// class is the pool of buffers of capacity size, nil for a size the Pool
// does not keep.
func (p *Pool) class(size int) (*sync.Pool, int) {
	switch {
	case size <= smallBufLen:
		return &p.small, smallBufLen
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
	if out := p.out.Add(1); out > p.peak.Load() {
		p.peak.Store(out) // racy maximum: close enough for a trigger
		if out >= burstBuffers && p.watching.CompareAndSwap(false, true) {
			go p.watch()
		}
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
	p.out.Add(-1)
	if sp, size := p.class(cap(*b)); sp != nil && cap(*b) == size {
		sp.Put(b)
	}
}

// watch waits for the end of a burst, then trims (see Pool).
func (p *Pool) watch() {
	defer p.watching.Store(false)
	period := p.quiet
	if period == 0 {
		period = quietPeriod
	}
	tick := time.NewTicker(period / 5)
	defer tick.Stop()
	quiet := 0
	for range tick.C {
		if p.out.Load() > p.peak.Load()/8 {
			quiet = 0
			continue
		}
		if quiet++; quiet < 5 {
			continue
		}
		p.peak.Store(p.out.Load())
		runtime.GC()
		debug.FreeOSMemory()
		p.trims.Add(1)
		return
	}
}
