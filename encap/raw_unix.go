//go:build unix

package encap

import (
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReader reads a socket through its syscall.RawConn so that no buffer
// is held while the socket has nothing to read: the runtime's poller
// waits for data, then dst (taken from the pool only then) is filled
// from the read the socket allows. A read that finds nothing calls idle,
// which gives the buffer back when nothing is pending in it.
type waitReader struct {
	rc   syscall.RawConn
	step func(fd uintptr) bool // w.read bound once: no allocation per read
	// dst returns where the next bytes go: one slice (read) or several
	// (readv, each a token's plaintext room).
	dst  func() [][]byte
	idle func()
	n    int
	err  error
}

// newWaitReader returns a waitReader for c, or nil unless c is a
// *net.TCPConn or *net.UnixConn: only then is what c.Read returns exactly
// what its descriptor holds (a wrapper that embeds one may have read
// ahead, and would still offer SyscallConn).
func newWaitReader(c net.Conn, dst func() [][]byte, idle func()) *waitReader {
	var sc syscall.Conn
	switch t := c.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &waitReader{rc: rc, dst: dst, idle: idle}
	w.step = w.read
	return w
}

func (w *waitReader) read(fd uintptr) bool {
	bufs := w.dst()
	for {
		var n int
		var err error
		if len(bufs) == 1 {
			n, err = syscall.Read(int(fd), bufs[0])
		} else {
			n, err = unix.Readv(int(fd), bufs)
		}
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			w.idle()
			return false // the poller waits for data, then calls read again
		case nil:
			w.n, w.err = n, nil
		default:
			w.n, w.err = 0, err
		}
		return true
	}
}

// Read waits for data and reads it: n > 0, or io.EOF at the peer's
// half-close, or the error (a deadline's is a net.Error with Timeout,
// as from a net.Conn).
func (w *waitReader) Read() (int, error) {
	w.n, w.err = 0, nil
	if err := w.rc.Read(w.step); err != nil {
		return 0, err
	}
	if w.err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", w.err)}
	}
	if w.n == 0 {
		return 0, io.EOF
	}
	return w.n, nil
}
