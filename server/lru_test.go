package server

import (
	"net/netip"
	"testing"
)

// TestLRU: the cache never holds more than its bound and forgets the
// least recently used entry (a get counts as a use).
func TestLRU(t *testing.T) {
	c := newLRU[int, string](3)
	c.put(1, "a")
	c.put(2, "b")
	c.put(3, "c")
	if _, ok := c.get(1); !ok { // 1 is now the most recent
		t.Fatal("1 forgotten early")
	}
	c.put(4, "d") // forgets 2
	if _, ok := c.get(2); ok {
		t.Fatal("2 kept past the bound")
	}
	c.put(3, "C") // an update, not an insertion
	for k, want := range map[int]string{1: "a", 3: "C", 4: "d"} {
		if v, ok := c.get(k); !ok || v != want {
			t.Fatalf("%d: %q %t", k, v, ok)
		}
	}
	for i := range 1000 {
		c.put(100+i, "x")
	}
	if c.len() != 3 {
		t.Fatalf("%d entries, bound 3", c.len())
	}
}

// TestHandshakeSources: the per-source handshake limit counts an IPv4
// client by its address (mapped or not) and an IPv6 client by its /64, so
// that moving within its /64 gains a client nothing.
func TestHandshakeSources(t *testing.T) {
	var h handshakes
	a := netip.MustParseAddr
	for _, src := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa::1%eth0"} {
		if why := h.acquire(a(src), 10, 3); why != "" {
			t.Fatalf("%s: %s", src, why)
		}
	}
	if why := h.acquire(a("2001:db8:1:2:ffff::9"), 10, 3); why != "per-source handshake limit reached" {
		t.Fatalf("a fourth from the same /64: %q", why)
	}
	if why := h.acquire(a("2001:db8:1:3::1"), 10, 3); why != "" {
		t.Fatalf("another /64: %q", why)
	}
	h.acquire(a("192.0.2.1"), 10, 3)
	h.acquire(a("::ffff:192.0.2.1"), 10, 3)
	h.acquire(a("192.0.2.1"), 10, 3)
	if why := h.acquire(a("::ffff:192.0.2.1"), 10, 3); why == "" {
		t.Fatal("an IPv4 client escaped its limit through the mapped form")
	}
	for _, src := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa::1", "2001:db8:1:3::1", "192.0.2.1", "192.0.2.1", "192.0.2.1"} {
		h.release(a(src))
	}
	if h.total != 0 || len(h.bySource) != 0 {
		t.Fatalf("after every release: total %d, %d sources", h.total, len(h.bySource))
	}
}
