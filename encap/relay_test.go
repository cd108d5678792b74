package encap

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestConnHidesTransport: Conn is a net.Conn whose transport is reachable
// only through NetConn; no exported or embedded field hands out the raw
// connection (writing to it would send plaintext around the wrapping).
func TestConnHidesTransport(t *testing.T) {
	typ := reflect.TypeFor[Conn]()
	netConn := reflect.TypeFor[net.Conn]()
	for f := range typ.Fields() {
		if f.IsExported() || f.Anonymous {
			t.Errorf("Conn has exported or embedded field %s (%s)", f.Name, f.Type)
		}
		if f.Type.Implements(netConn) && f.Name != "conn" {
			t.Errorf("Conn field %s holds a net.Conn besides conn", f.Name)
		}
	}
	if !reflect.PointerTo(typ).Implements(netConn) {
		t.Fatal("*Conn does not implement net.Conn")
	}
	for m := range reflect.PointerTo(typ).Methods() {
		if m.Type.NumOut() > 0 && m.Type.Out(0).Implements(netConn) && m.Name != "NetConn" {
			t.Errorf("method %s returns a net.Conn", m.Name)
		}
	}

	cc, sc := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	c, _ := NewConn(cc, ini, LevelConfidentiality, ConnOptions{})
	var nc net.Conn = c
	if c.NetConn() != net.Conn(cc) || nc.LocalAddr().String() != cc.LocalAddr().String() || nc.RemoteAddr().String() != sc.LocalAddr().String() {
		t.Fatal("NetConn or the addresses are not the transport's")
	}
	// Everything written reaches the wire wrapped.
	secret := []byte("plaintext that must not be on the wire")
	go func() { c.Write(secret); c.CloseWrite() }()
	wire, err := io.ReadAll(sc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire, secret) || wire[0] != Version || MsgType(wire[1]) != MsgEncapsulated {
		t.Fatalf("wire %x", wire)
	}
	s, _ := NewConn(byteConn{r: bytes.NewReader(wire)}, acc, LevelConfidentiality, ConnOptions{})
	if got, err := io.ReadAll(s); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unwrapped %q: %v", got, err)
	}
}

// TestConnReadDeadline: a read deadline (the relay's idle timer) fails the
// Read but leaves the stream intact, also mid-message.
func TestConnReadDeadline(t *testing.T) {
	cc, sc := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	s, _ := NewConn(sc, acc, LevelIntegrity, ConnOptions{Pool: NewPool()})
	tok, _ := ini.Wrap(nil, []byte("after the deadline"), false)
	msg, _ := AppendMessage(nil, MsgEncapsulated, tok)
	cc.Write(msg[:7]) // a message cut in its token
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 64)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	s.SetDeadline(time.Time{})
	cc.Write(msg[7:])
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "after the deadline" {
		t.Fatalf("read after the deadline: %q, %v", buf[:n], err)
	}
}

// TestHeaderWriter: every message this package writes starts with the one
// header writer's output, and the abort message is 01 ff alone.
func TestHeaderWriter(t *testing.T) {
	ini, _ := realm.Get(t).Pair(t, "alice", "")
	var b [headerLen]byte
	if got := putHeader(b[:], MsgAbort, 0); !bytes.Equal(got, []byte{1, 0xff}) {
		t.Fatalf("abort header %x", got)
	}
	if got := putHeader(b[:], MsgProtection, 0x1234); !bytes.Equal(got, []byte{1, 2, 0x12, 0x34}) {
		t.Fatalf("header %x", got)
	}
	var rec bytes.Buffer
	WriteAbort(&rec)
	if !bytes.Equal(rec.Bytes(), []byte{1, 0xff}) {
		t.Fatalf("WriteAbort wrote %x", rec.Bytes())
	}
	check := func(name string, msg []byte, mtyp MsgType) {
		t.Helper()
		if len(msg) < headerLen || !bytes.Equal(msg[:headerLen], putHeader(b[:], mtyp, len(msg)-headerLen)) {
			t.Fatalf("%s: header %x of a %d-byte message", name, msg[:min(len(msg), headerLen)], len(msg))
		}
	}
	msg, _ := AppendMessage([]byte("prefix"), MsgAuth, []byte{0x60, 1, 2})
	check("AppendMessage", msg[len("prefix"):], MsgAuth)
	if _, err := AppendMessage(nil, MsgAuth, make([]byte, MaxToken+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize token: %v", err)
	}
	d, _ := NewDatagram(ini, LevelIntegrity)
	pkt, _ := d.Seal([]byte("prefix"), []byte("datagram"))
	check("Datagram.Seal", pkt[len("prefix"):], MsgEncapsulated)
	rc := &recordConn{}
	c, _ := NewConn(rc, ini, LevelConfidentiality, ConnOptions{})
	c.Write(make([]byte, c.MaxPlaintext()+1)) // a full token and a 1-byte one
	if len(rc.writes) != 2 {
		t.Fatalf("%d writes", len(rc.writes))
	}
	for _, w := range rc.writes {
		check("Conn.Write", w, MsgEncapsulated)
	}
	if len(rc.writes[0]) != headerLen+MaxToken {
		t.Fatalf("full token of %d bytes", len(rc.writes[0])-headerLen)
	}
}

// recordConn records each Write.
type recordConn struct {
	net.Conn // nil: only Write is used
	writes   [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// relayEnds is a session as the gateway sees it: the client's end of a
// loopback connection and the gateway's (gwClient), both encapsulated above
// level 0, and a plain TCP connection from the gateway (gwTarget) to a
// destination (dest).
func relayEnds(t *testing.T, lvl Level, pool *Pool) (client, gwClient net.Conn, gwTarget, dest *net.TCPConn) {
	cc, sc := tcpPair(t)
	gwTarget, dest = tcpPair(t)
	if lvl == LevelClear {
		return cc, sc, gwTarget, dest
	}
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	c, _ := NewConn(cc, ini, lvl, ConnOptions{})
	s, _ := NewConn(sc, acc, lvl, ConnOptions{Pool: pool})
	t.Cleanup(s.Release)
	return c, s, gwTarget, dest
}

// TestRelayCopy runs both directions of a relay at each level through one
// Relay (the gateway's path: splice at level 0, unwrap and wrap at 1 and
// 2): random data both ways, checked by SHA-256, each half-close passed
// on, byte counts exact.
func TestRelayCopy(t *testing.T) {
	for _, lvl := range []Level{LevelClear, LevelIntegrity, LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			pool := NewPool()
			client, gwClient, gwTarget, dest := relayEnds(t, lvl, pool)
			r := &Relay{Pool: pool, Idle: 10 * time.Second}
			var up, down atomic.Int64
			errc := make(chan error, 2)
			go func() { errc <- r.Copy(gwTarget, gwClient, &up) }()
			go func() { errc <- r.Copy(gwClient, gwTarget, &down) }()

			upData, downData := make([]byte, 3<<20+17), make([]byte, 1<<20+5)
			rand.Read(upData)
			rand.Read(downData)
			sent := make(chan error, 2)
			go func() {
				_, err := client.Write(upData)
				if err == nil {
					err = client.(interface{ CloseWrite() error }).CloseWrite()
				}
				sent <- err
			}()
			go func() {
				_, err := dest.Write(downData)
				if err == nil {
					err = dest.CloseWrite()
				}
				sent <- err
			}()
			gotUp, err := io.ReadAll(dest)
			if err != nil {
				t.Fatal(err)
			}
			gotDown, err := io.ReadAll(client)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				if err := <-errc; err != nil {
					t.Fatalf("relay: %v", err)
				}
			}
			if sha256.Sum256(gotUp) != sha256.Sum256(upData) || sha256.Sum256(gotDown) != sha256.Sum256(downData) {
				t.Fatal("data differs")
			}
			if up.Load() != int64(len(upData)) || down.Load() != int64(len(downData)) {
				t.Fatalf("counted %d up, %d down", up.Load(), down.Load())
			}
		})
	}
}

// TestRelayRefusesTampering: a tampered token from the client ends the
// direction with the unwrap error; nothing of it reaches the destination.
func TestRelayRefusesTampering(t *testing.T) {
	cc, sc := tcpPair(t)
	gwTarget, dest := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	s, _ := NewConn(sc, acc, LevelConfidentiality, ConnOptions{})
	tok, _ := ini.Wrap(nil, []byte("tampered"), true)
	tok[len(tok)-1] ^= 1
	msg, _ := AppendMessage(nil, MsgEncapsulated, tok)
	go cc.Write(msg)
	var r Relay
	var up atomic.Int64
	if err := r.Copy(gwTarget, s, &up); err == nil || errors.Is(err, ErrIdle) {
		t.Fatalf("tampered token relayed: %v", err)
	}
	gwTarget.Close()
	if got, _ := io.ReadAll(dest); len(got) != 0 || up.Load() != 0 {
		t.Fatalf("destination got %q", got)
	}
}

// TestRelayIdle: a relay with no data either way ends with ErrIdle after
// the idle timeout; data in one direction keeps the quiet one alive.
func TestRelayIdle(t *testing.T) {
	// Generous against a loaded machine (the whole suite under -race on
	// two shared cores): a tick every idle/20, so a stall shorter than
	// 0.95 s cannot look like an idle session.
	const idle = time.Second
	const busy = 2 * idle
	pool := NewPool()
	_, gwClient, gwTarget, dest := relayEnds(t, LevelIntegrity, pool)
	r := &Relay{Pool: pool, Idle: idle}
	errc := make(chan error, 2)
	go func() { errc <- r.Copy(gwTarget, gwClient, nil) }() // quiet
	go func() { errc <- r.Copy(gwClient, gwTarget, nil) }() // busy for a while
	start := time.Now()
	var lastTick time.Time
	for time.Since(start) < busy {
		lastTick = time.Now()
		dest.Write([]byte("tick"))
		time.Sleep(idle / 20)
	}
	select {
	case err := <-errc:
		t.Fatalf("a direction ended while the other was busy: %v", err)
	default:
	}
	// Quiet both ways from here: both directions time out.
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrIdle) {
				t.Fatalf("got %v, want ErrIdle", err)
			}
		case <-time.After(10 * idle):
			t.Fatal("no idle timeout")
		}
	}
	// The relay notes the last tick after it was written: no timeout can
	// come before a whole idle period after it.
	if d := time.Since(lastTick); d < idle {
		t.Fatalf("idle timeout %s after the last data", d)
	}
}

// TestRelayPipe: ends that are neither TCP nor Conn go through a pooled
// buffer.
func TestRelayPipe(t *testing.T) {
	a, b := net.Pipe()
	c, d := net.Pipe()
	var r Relay
	errc := make(chan error, 1)
	go func() { errc <- r.Copy(c, b, nil) }()
	go func() { a.Write([]byte("through a pipe")); a.Close() }()
	buf := make([]byte, 64)
	n, err := io.ReadFull(d, buf[:14])
	if err != nil || string(buf[:n]) != "through a pipe" {
		t.Fatalf("%q: %v", buf[:n], err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestPool(t *testing.T) {
	p := NewPool()
	for _, n := range []int{0, 100, smallBufLen, smallBufLen + 1, messageBufLen, messageBufLen + 1, readBufLen, readBufLen + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): %d bytes", n, len(*b))
		}
		p.Put(b)
	}
	var nilPool *Pool
	if b := nilPool.Get(10); len(*b) != 10 {
		t.Fatal("nil pool")
	}
	nilPool.Put(nil)
	// A buffer grown past its class is dropped, not kept at the wrong size.
	b := p.Get(messageBufLen)
	*b = append(*b, 0)
	p.Put(b)
	for range 10 {
		if b := p.Get(smallBufLen + 10); cap(*b) != messageBufLen {
			t.Fatalf("class buffer of capacity %d", cap(*b))
		}
		if b := p.Get(10); cap(*b) != smallBufLen {
			t.Fatalf("small buffer of capacity %d", cap(*b))
		}
	}
}

// TestRelayIdleHoldsNoBuffer: once data has stopped moving, a relay's
// session holds no buffer of the pool in either direction, at each level
// (the read buffer of the client's Conn, its write buffer and the relay's
// plaintext buffer are taken while data moves and given back when a read
// finds nothing); data moves again afterwards.
func TestRelayIdleHoldsNoBuffer(t *testing.T) {
	for _, lvl := range []Level{LevelClear, LevelIntegrity, LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			pool := NewPool()
			client, gwClient, gwTarget, dest := relayEnds(t, lvl, pool)
			r := &Relay{Pool: pool, Idle: time.Minute}
			errc := make(chan error, 2)
			go func() { errc <- r.Copy(gwTarget, gwClient, nil) }()
			go func() { errc <- r.Copy(gwClient, gwTarget, nil) }()
			for round := range 2 {
				up, down := make([]byte, 300<<10+round), make([]byte, 200<<10+round)
				rand.Read(up)
				rand.Read(down)
				go client.Write(up)
				go dest.Write(down)
				gotUp, gotDown := make([]byte, len(up)), make([]byte, len(down))
				if _, err := io.ReadFull(dest, gotUp); err != nil || !bytes.Equal(gotUp, up) {
					t.Fatalf("round %d up: %v", round, err)
				}
				if _, err := io.ReadFull(client, gotDown); err != nil || !bytes.Equal(gotDown, down) {
					t.Fatalf("round %d down: %v", round, err)
				}
				deadline := time.Now().Add(10 * time.Second)
				for pool.InUse() != 0 {
					if time.Now().After(deadline) {
						t.Fatalf("round %d: %d buffers held by an idle session", round, pool.InUse())
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			client.(interface{ CloseWrite() error }).CloseWrite()
			dest.CloseWrite()
			for range 2 {
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestWrapInPlace pins what the relay's sealing direction relies on:
// gssapi's Wrap, given the plaintext at the place its token carries it
// (after the 16-byte token header, and the 16-byte confounder when
// sealed) and its output slice just before, wraps it there without
// reading it after writing over it, for every AES enctype and both
// levels; the peer unwraps it.
func TestWrapInPlace(t *testing.T) {
	for _, et := range []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128"} {
		ini, acc := realm.Get(t).Pair(t, "alice", et)
		for _, lvl := range []Level{LevelIntegrity, LevelConfidentiality} {
			c, _ := NewConn(&recordConn{}, acc, lvl, ConnOptions{})
			for _, n := range []int{1, 15, 16, 17, 1000, c.MaxPlaintext()} {
				plain := make([]byte, n)
				rand.Read(plain)
				buf := make([]byte, messageBufLen)
				off := headerLen + sealPrefix(lvl == LevelConfidentiality)
				copy(buf[off:], plain)
				msg, err := c.wrapInPlace(buf, n)
				if err != nil {
					t.Fatalf("%s %s %d: %v", et, lvl, n, err)
				}
				mtyp, tok, err := ReadMessage(bytes.NewReader(msg), nil)
				if err != nil || mtyp != MsgEncapsulated {
					t.Fatalf("%s %s %d: %s, %v", et, lvl, n, mtyp, err)
				}
				got, sealed, err := ini.Unwrap(nil, tok)
				if err != nil || sealed != (lvl == LevelConfidentiality) || !bytes.Equal(got, plain) {
					t.Fatalf("%s %s %d bytes: sealed %t, %v", et, lvl, n, sealed, err)
				}
			}
		}
	}
}

// TestRelayRun: Run relays both ways (half-closes passed on, byte counts
// exact) and returns nil; a failing direction (a tampered token) closes
// both ends and Run returns that failure, not the closed connection it
// caused on the other side.
func TestRelayRun(t *testing.T) {
	pool := NewPool()
	client, gwClient, gwTarget, dest := relayEnds(t, LevelConfidentiality, pool)
	r := &Relay{Pool: pool, Idle: 10 * time.Second}
	var up, down atomic.Int64
	ran := make(chan error, 1)
	go func() { ran <- r.Run(gwClient, gwTarget, &up, &down) }()
	upData, downData := make([]byte, 1<<20+3), make([]byte, 2<<20+9)
	rand.Read(upData)
	rand.Read(downData)
	go func() { client.Write(upData); client.(interface{ CloseWrite() error }).CloseWrite() }()
	go func() { dest.Write(downData); dest.CloseWrite() }()
	gotUp, err := io.ReadAll(dest)
	if err != nil || !bytes.Equal(gotUp, upData) {
		t.Fatalf("up: %d bytes, %v", len(gotUp), err)
	}
	gotDown, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(gotDown, downData) {
		t.Fatalf("down: %d bytes, %v", len(gotDown), err)
	}
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if up.Load() != int64(len(upData)) || down.Load() != int64(len(downData)) {
		t.Fatalf("counted %d up, %d down", up.Load(), down.Load())
	}

	// A tampered token from the client, while the destination is quiet.
	cc, sc := tcpPair(t)
	gwTarget2, dest2 := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	s2, _ := NewConn(sc, acc, LevelConfidentiality, ConnOptions{Pool: pool})
	tok, _ := ini.Wrap(nil, []byte("tampered"), true)
	tok[len(tok)-1] ^= 1
	msg, _ := AppendMessage(nil, MsgEncapsulated, tok)
	go cc.Write(msg)
	r2 := &Relay{Pool: pool, Idle: 10 * time.Second}
	err = r2.Run(s2, gwTarget2, nil, nil)
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrIdle) {
		t.Fatalf("Run returned %v, want the token's failure", err)
	}
	if got, _ := io.ReadAll(dest2); len(got) != 0 {
		t.Fatalf("destination got %q", got)
	}
}

// peekedConn is a TCP connection whose first bytes were read ahead (as a
// server that peeks at a greeting does): Read serves them first. It
// embeds *net.TCPConn, so it also offers SyscallConn.
type peekedConn struct {
	*net.TCPConn
	r io.Reader
}

func (p peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestConnReadsThroughWrapper: a Conn over a wrapper of a socket reads
// through the wrapper's Read, never around it from the descriptor (the
// bytes it read ahead would be lost), here with a message split between
// the bytes read ahead and the socket, relayed by a Relay.
func TestConnReadsThroughWrapper(t *testing.T) {
	cc, sc := tcpPair(t)
	gwTarget, dest := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	tok, _ := ini.Wrap(nil, []byte("split across the peek"), true)
	msg, _ := AppendMessage(nil, MsgEncapsulated, tok)
	go func() { cc.Write(msg[10:]); cc.CloseWrite() }()
	pool := NewPool()
	s, _ := NewConn(peekedConn{sc, io.MultiReader(bytes.NewReader(msg[:10]), sc)}, acc, LevelConfidentiality, ConnOptions{Pool: pool})
	var r Relay
	if err := r.Copy(gwTarget, s, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(dest); string(got) != "split across the peek" {
		t.Fatalf("destination got %q", got)
	}
}

// TestPoolTrimsAfterBurst: after a burst of buffers given back, the Pool
// collects and returns the memory: the heap falls back (a pool that kept
// the buffers would keep the heap), and a small load does not trigger it.
func TestPoolTrimsAfterBurst(t *testing.T) {
	p := &Pool{quiet: 200 * time.Millisecond}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var bufs []*[]byte
	for range 4 * burstBuffers {
		b := p.Get(readBufLen)
		clear(*b)
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		p.Put(b)
	}
	bufs = nil
	deadline := time.Now().Add(10 * time.Second)
	for p.trims.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no trim after the burst")
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	if grown := int64(ms.HeapInuse) - int64(before); grown > 4*burstBuffers*readBufLen/4 {
		t.Fatalf("heap still %d KiB above its size before the burst", grown>>10)
	}
	// Below a burst: no watcher, no trim.
	for range burstBuffers / 2 {
		p.Put(p.Get(messageBufLen))
	}
	time.Sleep(500 * time.Millisecond)
	if p.trims.Load() != 1 || p.watching.Load() {
		t.Fatalf("%d trims, watching %t", p.trims.Load(), p.watching.Load())
	}
}

// TestRelayMixedSizes moves, both ways at both levels, writes of sizes
// around the small buffers' room and the token limit, apart in time so
// that the relay reads them one by one and moves between small and large
// buffers: every byte arrives in order, and nothing is held afterwards.
func TestRelayMixedSizes(t *testing.T) {
	sizes := []int{1, 3000, 3968, 3969, 4096, 70000, 10, 300000, 5, 65475, 65476, 2}
	for _, lvl := range []Level{LevelIntegrity, LevelConfidentiality} {
		t.Run(lvl.String(), func(t *testing.T) {
			pool := NewPool()
			client, gwClient, gwTarget, dest := relayEnds(t, lvl, pool)
			r := &Relay{Pool: pool, Idle: time.Minute}
			errc := make(chan error, 1)
			go func() { errc <- r.Run(gwClient, gwTarget, nil, nil) }()
			var up, down []byte
			for _, n := range sizes {
				u, d := make([]byte, n), make([]byte, n)
				rand.Read(u)
				rand.Read(d)
				up, down = append(up, u...), append(down, d...)
				if _, err := client.Write(u); err != nil {
					t.Fatal(err)
				}
				if _, err := dest.Write(d); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			client.(interface{ CloseWrite() error }).CloseWrite()
			dest.CloseWrite()
			gotUp, err := io.ReadAll(dest)
			if err != nil || !bytes.Equal(gotUp, up) {
				t.Fatalf("up: %d of %d bytes, %v", len(gotUp), len(up), err)
			}
			gotDown, err := io.ReadAll(client)
			if err != nil || !bytes.Equal(gotDown, down) {
				t.Fatalf("down: %d of %d bytes, %v", len(gotDown), len(down), err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if n := pool.InUse(); n != 0 {
				t.Fatalf("%d buffers held after the relay", n)
			}
		})
	}
}

// TestRelayHonoursMaxPlaintext: towards a Conn made with a small
// MaxPlaintext, every token the relay writes carries at most that much,
// whatever the size of its buffers.
func TestRelayHonoursMaxPlaintext(t *testing.T) {
	src, feed := tcpPair(t)
	ini, acc := realm.Get(t).Pair(t, "alice", "")
	rc := &recordConn{}
	c, _ := NewConn(rc, acc, LevelConfidentiality, ConnOptions{MaxPlaintext: 100, Pool: NewPool()})
	data := make([]byte, 10000)
	rand.Read(data)
	go func() { feed.Write(data); feed.CloseWrite() }()
	var r Relay
	if _, err := r.copy(c, src, src, nil); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, w := range rc.writes {
		for len(w) > 0 {
			mtyp, tok, err := ReadMessage(bytes.NewReader(w), nil)
			if err != nil || mtyp != MsgEncapsulated {
				t.Fatalf("%s, %v", mtyp, err)
			}
			w = w[headerLen+len(tok):]
			msg, _, err := ini.Unwrap(nil, tok)
			if err != nil || len(msg) > 100 {
				t.Fatalf("token of %d bytes of plaintext: %v", len(msg), err)
			}
			got = append(got, msg...)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d of %d bytes", len(got), len(data))
	}
}

// TestRelayCopyToResetPeer: src ends cleanly while dst's peer has reset
// the connection already (a TLS server that closes before the client's
// close_notify and answers it with a reset): Copy returns nil, not the
// half-close's ENOTCONN, which made every such HTTPS session an audit
// record with end_reason error.
func TestRelayCopyToResetPeer(t *testing.T) {
	srcPeer, src := tcpPair(t)
	dst, dstPeer := tcpPair(t)
	if err := dstPeer.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	dstPeer.Close() // a reset, not a FIN
	deadline := time.Now().Add(5 * time.Second)
	for {
		dst.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := dst.Read(make([]byte, 1))
		if errors.Is(err, syscall.ECONNRESET) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dst saw no reset: %v", err)
		}
	}
	dst.SetReadDeadline(time.Time{})
	if err := dst.CloseWrite(); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("half-close of a reset connection: %v, want ENOTCONN (the case under test)", err)
	}
	srcPeer.CloseWrite()
	var r Relay
	if err := r.Copy(dst, src, nil); err != nil {
		t.Fatalf("Copy to a reset peer after a clean end of src: %v", err)
	}
}
