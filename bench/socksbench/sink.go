package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// The byte source and sink that every session of the benchmark reaches
// through a gateway. A request is 17 bytes: op, size (8 bytes, big
// endian), seed (8 bytes). Seed 0 means an unchecked constant pattern (the
// bulk transfers, where generating and checking bytes would take the
// client's CPU from the servers); otherwise the bytes are the stream
// pattern(seed), checked by the receiver wherever it is.
const (
	opDownload = 'D' // the sink sends size bytes, then half-closes
	opUpload   = 'U' // the sink reads size bytes, then answers an 8-byte status
	opEcho     = 'E' // the sink echoes size bytes, then half-closes
	opHold     = 'H' // the sink echoes size bytes, then waits for the client's close
	reqLen     = 17
)

// uploadOK is the status of an upload that arrived whole and, with a
// seed, as sent; otherwise the status is the offset of the first bad
// byte plus one, or ^0 for a short upload.
const uploadOK = 0

type request struct {
	op   byte
	size int64
	seed uint64
}

func (r request) append(b []byte) []byte {
	b = append(b, r.op)
	b = binary.BigEndian.AppendUint64(b, uint64(r.size))
	return binary.BigEndian.AppendUint64(b, r.seed)
}

// sink serves requests on a loopback listener until Close.
type sink struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error // server-side failures of checked transfers
	pool sync.Pool
}

const sinkBuf = 256 << 10

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	s.pool.New = func() any { b := make([]byte, sinkBuf); return &b }
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c.(*net.TCPConn)) })
		}
	})
	return s, nil
}

func (s *sink) Addr() string { return s.ln.Addr().String() }

// Close stops accepting; sessions still open end with their clients.
func (s *sink) Close() error { return s.ln.Close() }

// failures returns the server-side errors of checked transfers so far.
func (s *sink) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *sink) fail(err error) {
	s.mu.Lock()
	if len(s.errs) < 100 {
		s.errs = append(s.errs, err)
	}
	s.mu.Unlock()
}

func (s *sink) serve(c *net.TCPConn) {
	defer c.Close()
	var h [reqLen]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return // a connection that never asked (a probe, a refused session)
	}
	r := request{op: h[0], size: int64(binary.BigEndian.Uint64(h[1:9])), seed: binary.BigEndian.Uint64(h[9:17])}
	bp := s.pool.Get().(*[]byte)
	defer s.pool.Put(bp)
	buf := *bp
	switch r.op {
	case opDownload:
		if err := sendPattern(c, buf, r.seed, r.size); err != nil {
			if r.seed != 0 {
				s.fail(fmt.Errorf("sink: download of %d bytes: %w", r.size, err))
			}
			return
		}
		c.CloseWrite()
		io.Copy(io.Discard, c) // until the client closes
	case opUpload:
		status, err := recvPattern(c, buf, r.seed, r.size)
		if err != nil && r.seed != 0 {
			s.fail(fmt.Errorf("sink: upload of %d bytes: %w", r.size, err))
		}
		var st [8]byte
		binary.BigEndian.PutUint64(st[:], status)
		c.Write(st[:])
		c.CloseWrite()
		io.Copy(io.Discard, c)
	case opEcho, opHold:
		var done int64
		for done < r.size {
			n, err := c.Read(buf[:min(int64(len(buf)), r.size-done)])
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
				done += int64(n)
			}
			if err != nil {
				return
			}
		}
		if r.op == opEcho {
			c.CloseWrite()
		}
		io.Copy(io.Discard, c) // until the client closes
	}
}

// sendPattern writes size bytes of pattern(seed) (a constant buffer for
// seed 0) to w through buf.
func sendPattern(w io.Writer, buf []byte, seed uint64, size int64) error {
	var g pattern
	g.reset(seed)
	if seed == 0 {
		for i := range buf {
			buf[i] = byte(i * 7)
		}
	}
	for size > 0 {
		b := buf[:min(int64(len(buf)), size)]
		if seed != 0 {
			g.fill(b)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		size -= int64(len(b))
	}
	return nil
}

// errShort: the stream ended before the announced size.
var errShort = errors.New("stream ended early")

// recvPattern reads size bytes from r through buf, checking them against
// pattern(seed) unless seed is 0. It returns the upload status.
func recvPattern(r io.Reader, buf []byte, seed uint64, size int64) (uint64, error) {
	var g pattern
	g.reset(seed)
	var want []byte
	if seed != 0 {
		want = make([]byte, len(buf))
	}
	var off int64
	for off < size {
		n, err := r.Read(buf[:min(int64(len(buf)), size-off)])
		if n > 0 && seed != 0 {
			g.fill(want[:n])
			if !bytes.Equal(buf[:n], want[:n]) {
				i := 0
				for buf[i] == want[i] {
					i++
				}
				return uint64(off) + uint64(i) + 1, fmt.Errorf("%w: byte %d differs", errCorrupt, off+int64(i))
			}
		}
		off += int64(n)
		if err != nil {
			if off < size {
				return ^uint64(0), fmt.Errorf("%w after %d of %d bytes: %w", errShort, off, size, err)
			}
		}
	}
	return uploadOK, nil
}

// errCorrupt: a byte arrived other than sent.
var errCorrupt = errors.New("corrupt data")

// pattern is a reproducible byte stream: word i (little-endian) is
// SplitMix64 of seed + i. A reader checks any chunking of it.
type pattern struct {
	seed uint64
	off  uint64
}

func (g *pattern) reset(seed uint64) { g.seed, g.off = seed, 0 }

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// fill writes the next len(p) bytes of the stream into p.
func (g *pattern) fill(p []byte) {
	for len(p) > 0 && g.off%8 != 0 {
		w := mix(g.seed + g.off/8)
		p[0] = byte(w >> (8 * (g.off % 8)))
		p, g.off = p[1:], g.off+1
	}
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, mix(g.seed+g.off/8))
		p, g.off = p[8:], g.off+8
	}
	if len(p) > 0 {
		w := mix(g.seed + g.off/8)
		for i := range p {
			p[i] = byte(w >> (8 * i))
		}
		g.off += uint64(len(p))
	}
}
