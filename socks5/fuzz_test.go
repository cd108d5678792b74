package socks5

import (
	"bytes"
	"net/netip"
	"testing"
)

// mustAppend is for seeds, built from valid values.
func mustAppend(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// reencodes checks the property the decoders share: what decodes
// re-encodes to the bytes it came from, except where the codec normalises
// (an IPv4-mapped address sent as ATYP IPv6 comes back as IPv4), and then
// the re-encoding decodes to the same value.
func reencodes(t *testing.T, in, again []byte, mapped bool) {
	t.Helper()
	if !mapped && !bytes.Equal(in, again) {
		t.Fatalf("% x re-encodes as % x", in, again)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add(mustAppend(AppendRequest(nil, Request{CmdConnect, Addr{Host: "a.example", Port: 1}})))
	f.Add(mustAppend(AppendRequest(nil, Request{CmdUDPAssociate, Addr{IP: netip.MustParseAddr("::1"), Port: 2}})))
	f.Add(mustAppend(AppendRequest(nil, Request{CmdBind, Addr{IP: netip.MustParseAddr("::ffff:1.2.3.4"), Port: 3}})))
	f.Add(append(append([]byte{5, 1, 0, 4}, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice()...), 0, 80))
	f.Add([]byte{5, 1, 0, 3, 255})
	f.Add([]byte{5, 9, 0, 1, 1, 2, 3, 4, 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadRequest(r)
		consumed := len(b) - r.Len()

		// The slice decoder agrees with the reader.
		preq, rest, perr := ParseRequest(b)
		if (err == nil) != (perr == nil) || req != preq {
			t.Fatalf("% x: ReadRequest %+v %v, ParseRequest %+v %v", b, req, err, preq, perr)
		}
		if err != nil {
			return
		}
		if len(rest) != r.Len() {
			t.Fatalf("% x: ReadRequest read %d bytes, ParseRequest %d", b, consumed, len(b)-len(rest))
		}
		// RSV is ignored, as RFC 1928 senders must zero it (a regression
		// row in testdata has it set).
		in := bytes.Clone(b[:consumed])
		in[2] = 0
		again, err := AppendRequest(nil, req)
		if err != nil {
			t.Fatalf("% x decodes to %+v, which does not encode: %v", b, req, err)
		}
		reencodes(t, in, again, AddrType(b[3]) == AddrTypeIPv6 && req.Dest.IP.Is4())
		if back, err := ReadRequest(bytes.NewReader(again)); err != nil || back != req {
			t.Fatalf("% x: %+v re-reads as %+v, %v", b, req, back, err)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add(mustAppend(AppendReply(nil, ReplySucceeded, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 1080})))
	f.Add(mustAppend(AppendReply(nil, ReplyNotAllowed, Addr{})))
	f.Add(mustAppend(AppendReply(nil, ReplyHostUnreachable, Addr{Host: "relay.example", Port: 1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		rep, bnd, err := ReadReply(r)
		if err != nil {
			return
		}
		in := bytes.Clone(b[:len(b)-r.Len()])
		in[2] = 0
		again, err := AppendReply(nil, rep, bnd)
		if err != nil {
			t.Fatalf("% x decodes to %s %+v, which does not encode: %v", b, rep, bnd, err)
		}
		reencodes(t, in, again, AddrType(b[3]) == AddrTypeIPv6 && bnd.IP.Is4())
	})
}

func FuzzParseUDPHeader(f *testing.F) {
	f.Add(append(mustAppend(AppendUDPHeader(nil, Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 53})), 1, 2, 3))
	f.Add([]byte{0, 0, 0, 3, 3, 'a', 'b', 'c', 0, 53})
	f.Add(append(append([]byte{0, 0, 0, 4}, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice()...), 0, 53, 'x'))
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, payload, err := ParseUDPHeader(b)
		if err != nil {
			return
		}
		again, err := AppendUDPHeader(nil, dst)
		if err != nil {
			t.Fatalf("% x decodes to %+v, which does not encode: %v", b, dst, err)
		}
		reencodes(t, b, append(again, payload...), AddrType(b[3]) == AddrTypeIPv6 && dst.IP.Is4())
	})
}

func FuzzParseAddr(f *testing.F) {
	f.Add([]byte{1, 10, 0, 0, 1, 0, 80})
	f.Add([]byte{3, 1, 'a', 0, 80, 0xff})
	f.Add(append(append([]byte{4}, netip.IPv6Loopback().AsSlice()...), 1, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, rest, err := ParseAddr(b)
		if err != nil {
			return
		}
		again, err := AppendAddr(nil, a)
		if err != nil {
			t.Fatalf("% x decodes to %+v, which does not encode: %v", b, a, err)
		}
		reencodes(t, b, append(again, rest...), AddrType(b[0]) == AddrTypeIPv6 && a.IP.Is4())
		// The text form parses back to the value (but an IP literal sent
		// as a name, which comes back as the IP).
		if _, err := netip.ParseAddr(a.Host); err == nil {
			return
		}
		if back, err := ParseHostPort(a.String()); err != nil || back != a {
			t.Fatalf("%+v: %q parses as %+v, %v", a, a.String(), back, err)
		}
	})
}

func FuzzReadGreeting(f *testing.F) {
	f.Add([]byte{5, 2, 0, 1})
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := ReadGreeting(r)
		if err != nil {
			return
		}
		if len(m) == 0 || len(m) != int(b[1]) || r.Len() != len(b)-2-len(m) {
			t.Fatalf("% x: %d methods, %d bytes left", b, len(m), r.Len())
		}
		if again, err := AppendGreeting(nil, m); err != nil || !bytes.Equal(again, b[:2+len(m)]) {
			t.Fatalf("% x re-encodes as % x, %v", b, again, err)
		}
	})
}

func FuzzReadMethodSelection(f *testing.F) {
	f.Add([]byte{5, 1})
	f.Add([]byte{5, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMethodSelection(bytes.NewReader(b))
		if err != nil {
			return
		}
		if again := AppendMethodSelection(nil, m); !bytes.Equal(again, b[:2]) {
			t.Fatalf("% x re-encodes as % x", b, again)
		}
	})
}

func FuzzParseHostPort(f *testing.F) {
	f.Add("echo.corp.example.test:7")
	f.Add("[fe80::1%eth0]:80")
	f.Add("[::ffff:1.2.3.4]:0")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseHostPort(s)
		if err != nil {
			return
		}
		// What parses can be sent.
		b, err := AppendAddr(nil, a)
		if err != nil {
			t.Fatalf("%q parses as %+v, which does not encode: %v", s, a, err)
		}
		back, _, err := ParseAddr(b)
		if err != nil {
			t.Fatalf("%q: % x does not decode: %v", s, b, err)
		}
		if a.Host != "" && back != a {
			t.Fatalf("%q: %+v comes back as %+v", s, a, back)
		}
	})
}
