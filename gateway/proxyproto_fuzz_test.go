package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FuzzPROXYHeader feeds arbitrary bytes as the start of a trusted peer's
// connection: readHeader must neither panic nor hang, and a connection it
// hands on has the header's source or the peer's own address.
func FuzzPROXYHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 4242 1080\r\n\x05\x01\x01"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 99999\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x10\x92\x04\x38\x05"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))
	f.Add([]byte{5, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		l := &proxyListener{trust: &proxyTrust{log: hclog.NewNullLogger(), timeout: func() time.Duration { return 200 * time.Millisecond }}}
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			b.Write(data)
			b.Close()
		}()
		c := l.readHeader(a)
		if c == nil {
			return
		}
		defer c.Close()
		if c.RemoteAddr() == nil || c.LocalAddr() != a.LocalAddr() {
			t.Fatalf("addresses %v %v", c.RemoteAddr(), c.LocalAddr())
		}
	})
}
