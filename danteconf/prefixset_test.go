package danteconf

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func (s prefixSet) has(a netip.Addr) bool {
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TestPrefixSetAlgebra checks union, intersection and difference against
// membership of sampled addresses, on random networks of one /16 where
// nesting is common.
func TestPrefixSetAlgebra(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randSet := func() prefixSet {
		var s prefixSet
		for range r.IntN(4) {
			bits := 16 + r.IntN(17)
			a := netip.AddrFrom4([4]byte{10, 9, byte(r.IntN(256)), byte(r.IntN(256))})
			s = append(s, netip.PrefixFrom(a, bits).Masked())
		}
		return s
	}
	for range 2000 {
		a, b := randSet(), randSet()
		u, i := a.union(b), a.intersect(b)
		d, ok := a.subtract(b, 1<<20)
		if !ok {
			t.Fatal("subtract over the limit")
		}
		for range 64 {
			x := netip.AddrFrom4([4]byte{10, 9, byte(r.IntN(256)), byte(r.IntN(256))})
			if r.IntN(2) == 0 && len(a) > 0 { // often sample inside a
				x = a[r.IntN(len(a))].Addr()
			}
			inA, inB := a.has(x), b.has(x)
			if u.has(x) != (inA || inB) || i.has(x) != (inA && inB) || d.has(x) != (inA && !inB) {
				t.Fatalf("a=%v b=%v x=%v: union %v (%v) intersect %v (%v) subtract %v (%v)", a, b, x, u, u.has(x), i, i.has(x), d, d.has(x))
			}
		}
		for _, s := range []prefixSet{u, i, d} {
			for j := range s {
				for k := range s {
					if j != k && covers(s[j], s[k]) {
						t.Fatalf("%v: %v holds %v", s, s[j], s[k])
					}
				}
			}
		}
	}
}

func TestPrefixSetCases(t *testing.T) {
	p := func(ss ...string) prefixSet {
		var out prefixSet
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	d, ok := p("10.0.0.0/8").subtract(p("10.0.0.1/32"), 100)
	if !ok || len(d) != 24 || d.has(netip.MustParseAddr("10.0.0.1")) || !d.has(netip.MustParseAddr("10.0.0.0")) {
		t.Errorf("10/8 - 10.0.0.1: %v", d)
	}
	if _, ok := p("::/0").subtract(p("2001:db8::1/128"), 100); ok {
		t.Error("::/0 - a host fits in 100 networks?")
	}
	if d, _ := everyAddress().subtract(p("0.0.0.0/0"), 10); len(d) != 1 || d[0] != netip.MustParsePrefix("::/0") {
		t.Errorf("every - IPv4: %v", d)
	}
	if i := p("10.0.0.0/8", "2001:db8::/32").intersect(everyAddress()); len(i) != 2 {
		t.Errorf("intersect with every: %v", i)
	}
	if i := p("10.0.0.0/8").intersect(p("2001:db8::/32")); len(i) != 0 {
		t.Errorf("families intersect: %v", i)
	}
	if !everyAddress().isEvery() || p("0.0.0.0/0").isEvery() {
		t.Error("isEvery")
	}
}
