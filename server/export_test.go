package server

import (
	"net/netip"
	"testing"
)

// Blackholes is blackholes for the external tests: ip:port addresses that
// never answer a SYN.
func Blackholes(t *testing.T, port uint16, ips ...string) []netip.Addr {
	t.Helper()
	return blackholes(t, port, ips...)
}
