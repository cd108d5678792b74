//go:build !unix

package encap

import "net"

// waitReader needs a file descriptor the runtime polls: on this platform
// reads hold their buffer while they wait.
type waitReader struct{}

func newWaitReader(net.Conn, func() [][]byte, func()) *waitReader { return nil }

func (*waitReader) Read() (int, error) { panic("encap: waitReader without raw reads") }
