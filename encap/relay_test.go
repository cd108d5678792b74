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
	"sync/atomic"
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
	for time.Since(start) < busy {
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
	if d := time.Since(start); d < busy+idle {
		t.Fatalf("idle timeout after %s", d)
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
	for _, n := range []int{0, 100, messageBufLen, messageBufLen + 1, readBufLen, readBufLen + 1} {
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
		if b := p.Get(10); cap(*b) != messageBufLen {
			t.Fatalf("class buffer of capacity %d", cap(*b))
		}
	}
}
