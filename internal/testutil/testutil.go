// Package testutil holds small test helpers shared by the packages' tests:
// a loopback TCP echo server, a log buffer safe for concurrent writers, and
// a gateway on a loopback port built from HCL through package gateway, the
// way `gssocks serve` builds it.
//
// testutil imports gateway, hence server, config, gssapi, encap, policy,
// socks5 and audit: their tests may use it only from external test
// packages (package server_test), else the import is a cycle.
package testutil

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// LogBuffer collects log output for assertions; safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Serve listens on addr ("127.0.0.1:0", "[::1]:0") until the test ends
// and runs handle on each connection in its own goroutine, closing the
// connection afterwards. It returns the address.
func Serve(tb testing.TB, addr string, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// Echo echoes c until EOF, then half-closes it.
func Echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// EchoServer is an Echo server on 127.0.0.1:0.
func EchoServer(tb testing.TB) string {
	tb.Helper()
	return Serve(tb, "127.0.0.1:0", Echo)
}
