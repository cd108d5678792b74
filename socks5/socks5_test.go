package socks5

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// addrs covers each ATYP, the port's byte order and the longest name.
var addrs = []Addr{
	{IP: netip.MustParseAddr("10.1.2.3"), Port: 80},
	{IP: netip.MustParseAddr("2001:db8::1"), Port: 443},
	{Host: "intranet.corp.example.test", Port: 8080},
	{Host: "::1", Port: 1}, // an IPv6 literal sent as a name stays a name
	{Host: strings.Repeat("a", MaxDomainLen), Port: 0xfffe},
	{IP: netip.IPv4Unspecified(), Port: 0},
}

func TestRequestRoundTrip(t *testing.T) {
	for _, a := range addrs {
		for _, cmd := range []Command{CmdConnect, CmdBind, CmdUDPAssociate} {
			want := Request{Command: cmd, Dest: a}
			b, err := AppendRequest(nil, want)
			if err != nil {
				t.Fatalf("%s %s: %v", cmd, a, err)
			}
			// A following message stays in the reader.
			r := bytes.NewReader(append(b, "next"...))
			req, err := ReadRequest(r)
			if err != nil || req != want {
				t.Fatalf("%s %s: ReadRequest got %+v, %v", cmd, a, req, err)
			}
			if r.Len() != len("next") {
				t.Fatalf("%s %s: ReadRequest left %d bytes, want 4", cmd, a, r.Len())
			}
			req, rest, err := ParseRequest(append(b, "next"...))
			if err != nil || req != want || string(rest) != "next" {
				t.Fatalf("%s %s: ParseRequest got %+v %q %v", cmd, a, req, rest, err)
			}
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, a := range addrs {
		for rep := ReplySucceeded; rep <= ReplyAddressTypeNotSupported+1; rep++ {
			b, err := AppendReply(nil, rep, a)
			if err != nil {
				t.Fatalf("%s %s: %v", rep, a, err)
			}
			r := bytes.NewReader(append(b, 5))
			got, bnd, err := ReadReply(r)
			if err != nil || got != rep || bnd != a || r.Len() != 1 {
				t.Fatalf("%s %s: got %s %+v %v, %d bytes left", rep, a, got, bnd, err, r.Len())
			}
		}
	}
}

func TestUDPHeaderRoundTrip(t *testing.T) {
	for _, a := range addrs {
		b, err := AppendUDPHeader(nil, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		dst, payload, err := ParseUDPHeader(append(b, "data"...))
		if err != nil || dst != a || string(payload) != "data" {
			t.Fatalf("UDP %s: %+v %q %v", a, dst, payload, err)
		}
		// An empty payload is a datagram too.
		if dst, payload, err = ParseUDPHeader(b); err != nil || dst != a || len(payload) != 0 {
			t.Fatalf("UDP %s, no data: %+v %q %v", a, dst, payload, err)
		}
	}
}

func TestAddrRoundTrip(t *testing.T) {
	for _, a := range addrs {
		b, err := AppendAddr([]byte("prefix"), a)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) || AddrType(b[6]) != a.Type() {
			t.Fatalf("%s: % x", a, b)
		}
		got, rest, err := ParseAddr(append(b[6:], 9))
		if err != nil || got != a || !bytes.Equal(rest, []byte{9}) {
			t.Fatalf("%s: got %+v %x %v", a, got, rest, err)
		}
		// Text form back to the value, for the literal and name forms
		// (ParseHostPort has no zero Addr, and reads an IP literal as an
		// IP even when it was sent as a name).
		if _, err := netip.ParseAddr(a.Host); a.IP.IsUnspecified() || err == nil {
			continue
		}
		if got, err := ParseHostPort(a.String()); err != nil || got != a {
			t.Fatalf("%s: ParseHostPort got %+v, %v", a, got, err)
		}
	}
}

func TestAddrWireForm(t *testing.T) {
	for _, c := range []struct {
		a    Addr
		want []byte
	}{
		{Addr{}, []byte{1, 0, 0, 0, 0, 0, 0}},
		{Addr{IP: netip.MustParseAddr("10.1.2.3"), Port: 0x1234}, []byte{1, 10, 1, 2, 3, 0x12, 0x34}},
		{Addr{IP: netip.MustParseAddr("::1"), Port: 80}, append(append([]byte{4}, netip.IPv6Loopback().AsSlice()...), 0, 80)},
		{Addr{Host: "ab", Port: 53}, []byte{3, 2, 'a', 'b', 0, 53}},
		// The name wins over the IP when both are set.
		{Addr{IP: netip.MustParseAddr("10.1.2.3"), Host: "ab", Port: 53}, []byte{3, 2, 'a', 'b', 0, 53}},
		// Normalisations: IPv4-mapped is IPv4, the zone is not carried.
		{Addr{IP: netip.MustParseAddr("::ffff:10.1.2.3"), Port: 80}, []byte{1, 10, 1, 2, 3, 0, 80}},
		{Addr{IP: netip.MustParseAddr("fe80::1%eth0"), Port: 80}, append(append([]byte{4}, netip.MustParseAddr("fe80::1").AsSlice()...), 0, 80)},
	} {
		got, err := AppendAddr(nil, c.a)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%+v: % x, %v; want % x", c.a, got, err, c.want)
		}
	}
	// What is read of a mapped address is the IPv4 one.
	b := append(append([]byte{4}, netip.MustParseAddr("::ffff:10.1.2.3").AsSlice()...), 0, 80)
	if a, _, err := ParseAddr(b); err != nil || a != (Addr{IP: netip.MustParseAddr("10.1.2.3"), Port: 80}) {
		t.Errorf("mapped: %+v, %v", a, err)
	}
}

func TestReplyEncoding(t *testing.T) {
	got, err := AppendReply(nil, ReplyNotAllowed, Addr{})
	if err != nil || !bytes.Equal(got, []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("% x, %v", got, err)
	}
}

func TestGreetingRoundTrip(t *testing.T) {
	all := make([]Method, 255)
	for i := range all {
		all[i] = Method(i)
	}
	for _, ms := range [][]Method{{MethodGSSAPI}, {MethodNoAuth, MethodGSSAPI}, all} {
		b, err := AppendGreeting(nil, ms)
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(append(b, 0xee))
		got, err := ReadGreeting(r)
		if err != nil || !equalMethods(got, ms) || r.Len() != 1 {
			t.Fatalf("%v: got %v, %v, %d bytes left", ms, got, err, r.Len())
		}
	}
	if b, _ := AppendGreeting(nil, []Method{MethodGSSAPI}); !bytes.Equal(b, []byte{5, 1, 1}) {
		t.Errorf("GSS-API greeting % x", b)
	}
	for _, m := range []Method{MethodNoAuth, MethodGSSAPI, MethodUsernamePassword, MethodNoAcceptable} {
		b := AppendMethodSelection(nil, m)
		if !bytes.Equal(b, []byte{5, byte(m)}) {
			t.Fatalf("%s: % x", m, b)
		}
		got, err := ReadMethodSelection(bytes.NewReader(b))
		if err != nil || got != m {
			t.Fatalf("%s: got %s, %v", m, got, err)
		}
	}
}

func equalMethods(a, b []Method) bool {
	return bytes.Equal(methodBytes(a), methodBytes(b))
}

func methodBytes(ms []Method) []byte {
	b := make([]byte, len(ms))
	for i, m := range ms {
		b[i] = byte(m)
	}
	return b
}

// wantErr checks err against a row: a *ProtocolError with reply rep (and
// a message holding detail), or a truncation (io.ErrUnexpectedEOF), or
// io.EOF, or the sentinel.
type wantErr struct {
	reply    Reply
	detail   string // in the *ProtocolError's message; "" for no *ProtocolError
	is       error  // errors.Is target, or nil
	notProto bool   // the error must not be a *ProtocolError (a reader's error)
}

func (w wantErr) check(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", name)
		return
	}
	if w.is != nil && !errors.Is(err, w.is) {
		t.Errorf("%s: %v, want %v", name, err, w.is)
	}
	var pe *ProtocolError
	isProto := errors.As(err, &pe)
	if w.notProto && isProto {
		t.Errorf("%s: %v is a *ProtocolError", name, err)
	}
	if w.detail != "" {
		if !isProto || pe.Reply != w.reply || !strings.Contains(pe.Error(), w.detail) {
			t.Errorf("%s: %v (%#v), want a *ProtocolError with reply %s and %q", name, err, pe, w.reply, w.detail)
		}
	}
	if !strings.HasPrefix(err.Error(), "socks5: ") {
		t.Errorf("%s: %q does not name the package", name, err)
	}
}

var (
	truncatedRead  = wantErr{is: io.ErrUnexpectedEOF, notProto: true}
	nothingRead    = wantErr{is: io.EOF, notProto: true}
	truncatedSlice = wantErr{is: io.ErrUnexpectedEOF, detail: "truncated"}
	badVersion     = wantErr{detail: "not SOCKS version 5"}
	badATYP        = wantErr{reply: ReplyAddressTypeNotSupported, detail: "unknown address type 0x07"}
	badName        = wantErr{reply: ReplyHostUnreachable, detail: `invalid domain name "a b"`}
	emptyName      = wantErr{reply: ReplyHostUnreachable, detail: "empty domain name"}
)

// requestForms are the malformed requests; as replies (CMD read as REP)
// they are malformed the same way, but for the command.
var requestForms = []struct {
	name string
	in   []byte
	want wantErr
}{
	{"empty", nil, nothingRead},
	{"SOCKS 4", []byte{4, 1, 0, 80, 1, 2, 3, 4, 0}, badVersion},
	{"HTTP", []byte("GET / HTTP/1.1\r\n\r\n"), badVersion},
	{"unknown address type", []byte{5, 1, 0, 7, 1, 2, 3, 4, 0, 80}, badATYP},
	{"bad domain", append([]byte{5, 1, 0, 3, 3}, "a b\x00\x50"...), badName},
	{"bad domain, slash", append([]byte{5, 1, 0, 3, 3}, "a/b\x00\x50"...), wantErr{reply: ReplyHostUnreachable, detail: `invalid domain name "a/b"`}},
	{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, emptyName},
	{"truncated header", []byte{5, 1}, truncatedRead},
	{"ends at ATYP", []byte{5, 1, 0, 1}, truncatedRead},
	{"ends at the name's length", []byte{5, 1, 0, 3}, truncatedRead},
	{"truncated IPv6 address", []byte{5, 1, 0, 4, 0x20, 0x01}, truncatedRead},
	{"truncated IPv4 port", []byte{5, 1, 0, 1, 1, 2, 3, 4, 0}, truncatedRead},
	{"truncated domain", []byte{5, 1, 0, 3, 9, 'a', 'b'}, truncatedRead},
}

func TestRequestErrors(t *testing.T) {
	for _, c := range append(requestForms[:len(requestForms):len(requestForms)], struct {
		name string
		in   []byte
		want wantErr
	}{"unknown command", []byte{5, 9, 0, 1, 1, 2, 3, 4, 0, 80}, wantErr{reply: ReplyCommandNotSupported, detail: "unknown command 0x09"}}) {
		_, err := ReadRequest(bytes.NewReader(c.in))
		c.want.check(t, "ReadRequest "+c.name, err)

		// The slice form reports the same malformations; truncation is a
		// *ProtocolError there, as no reader failed.
		want := c.want
		if want.is != nil {
			want = truncatedSlice
		}
		_, _, err = ParseRequest(c.in)
		want.check(t, "ParseRequest "+c.name, err)
	}
	// An unknown command still gives the request, read whole, so the
	// server can log it and answer ReplyCommandNotSupported.
	r := bytes.NewReader([]byte{5, 9, 0, 1, 1, 2, 3, 4, 0, 80, 0xee})
	req, err := ReadRequest(r)
	if err == nil || req.Command != 9 || req.Dest != (Addr{IP: netip.MustParseAddr("1.2.3.4"), Port: 80}) || r.Len() != 1 {
		t.Errorf("unknown command: %+v, %v, %d bytes left", req, err, r.Len())
	}
	// An unknown address type is not read past: the rest cannot be
	// delimited, and the server answers and closes.
	r = bytes.NewReader([]byte{5, 1, 0, 7, 1, 2, 3, 4, 0, 80})
	if _, err := ReadRequest(r); err == nil || r.Len() != 6 {
		t.Errorf("unknown ATYP: %v, %d bytes left, want 6", err, r.Len())
	}
}

func TestReplyErrors(t *testing.T) {
	for _, c := range requestForms {
		_, _, err := ReadReply(bytes.NewReader(c.in))
		c.want.check(t, "ReadReply "+c.name, err)
	}
	// An unassigned REP is a value: the caller tells the user.
	rep, _, err := ReadReply(bytes.NewReader([]byte{5, 9, 0, 1, 1, 2, 3, 4, 0, 80}))
	if err != nil || rep != 9 || rep.String() != "reply(0x09)" {
		t.Errorf("REP 9: %s, %v", rep, err)
	}
}

func TestGreetingErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want wantErr
	}{
		{"empty", nil, nothingRead},
		{"SOCKS 4", []byte{4, 1, 0, 80, 1, 2, 3, 4, 0}, badVersion},
		{"TLS", []byte{0x16, 3, 1, 0, 0xc8}, badVersion},
		{"no methods", []byte{5, 0}, wantErr{detail: "greeting offers no methods"}},
		{"truncated header", []byte{5}, truncatedRead},
		{"ends at NMETHODS", []byte{5, 2}, truncatedRead},
		{"truncated methods", []byte{5, 3, 0, 1}, truncatedRead},
	} {
		_, err := ReadGreeting(bytes.NewReader(c.in))
		c.want.check(t, "ReadGreeting "+c.name, err)
	}
	for _, c := range []struct {
		name string
		in   []byte
		want wantErr
	}{
		{"empty", nil, nothingRead},
		{"SOCKS 4", []byte{0, 90}, badVersion},
		{"truncated", []byte{5}, truncatedRead},
	} {
		_, err := ReadMethodSelection(bytes.NewReader(c.in))
		c.want.check(t, "ReadMethodSelection "+c.name, err)
	}
	for _, n := range []int{0, 256} {
		b, err := AppendGreeting([]byte{7}, make([]Method, n))
		wantErr{detail: "want 1 to 255"}.check(t, "AppendGreeting", err)
		if !bytes.Equal(b, []byte{7}) {
			t.Errorf("AppendGreeting of %d methods changed dst: % x", n, b)
		}
	}
}

func TestUDPHeaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want wantErr
	}{
		{"empty", nil, truncatedSlice},
		{"short", []byte{0, 0, 0}, truncatedSlice},
		{"ends at ATYP", []byte{0, 0, 0, 1}, truncatedSlice},
		{"ends at the name's length", []byte{0, 0, 0, 3}, truncatedSlice},
		{"truncated IPv6", append([]byte{0, 0, 0, 4}, make([]byte, 17)...), truncatedSlice},
		{"truncated domain", []byte{0, 0, 0, 3, 9, 'a', 'b', 0, 53}, truncatedSlice},
		{"reserved bytes set", []byte{0, 1, 0, 1, 1, 2, 3, 4, 0, 80}, wantErr{detail: "reserved bytes not zero"}},
		{"reserved bytes set, first", []byte{1, 0, 0, 1, 1, 2, 3, 4, 0, 80}, wantErr{detail: "reserved bytes not zero"}},
		{"fragment", []byte{0, 0, 1, 1, 1, 2, 3, 4, 0, 80}, wantErr{is: ErrFragmented, notProto: true}},
		{"last fragment", []byte{0, 0, 0x81, 1, 1, 2, 3, 4, 0, 80}, wantErr{is: ErrFragmented, notProto: true}},
		{"unknown address type", []byte{0, 0, 0, 7, 1, 2, 3, 4, 0, 80}, badATYP},
		{"bad domain", append([]byte{0, 0, 0, 3, 3}, "a b\x00\x50"...), badName},
		{"empty domain", []byte{0, 0, 0, 3, 0, 0, 80}, emptyName},
	} {
		_, _, err := ParseUDPHeader(c.in)
		c.want.check(t, "ParseUDPHeader "+c.name, err)
	}
}

func TestAppendRefusesWhatReadRefuses(t *testing.T) {
	long := strings.Repeat("a", MaxDomainLen+1)
	for _, c := range []struct {
		a    Addr
		want string
	}{
		{Addr{Host: long}, "longer than 255"},
		{Addr{Host: "a b"}, `invalid domain name "a b"`},
		{Addr{Host: "evil\n.example"}, `invalid domain name "evil\n.example"`},
		{Addr{Host: "[::1]"}, `invalid domain name "[::1]"`},
	} {
		want := wantErr{reply: ReplyHostUnreachable, detail: c.want}
		dst := []byte{9}
		b, err := AppendAddr(dst, c.a)
		want.check(t, "AppendAddr", err)
		if !bytes.Equal(b, dst) {
			t.Errorf("AppendAddr %q changed dst: % x", c.a.Host, b)
		}
		b, err = AppendRequest(dst, Request{Command: CmdConnect, Dest: c.a})
		want.check(t, "AppendRequest", err)
		if !bytes.Equal(b, dst) {
			t.Errorf("AppendRequest %q changed dst: % x", c.a.Host, b)
		}
		b, err = AppendReply(dst, ReplySucceeded, c.a)
		want.check(t, "AppendReply", err)
		if !bytes.Equal(b, dst) {
			t.Errorf("AppendReply %q changed dst: % x", c.a.Host, b)
		}
		b, err = AppendUDPHeader(dst, c.a)
		want.check(t, "AppendUDPHeader", err)
		if !bytes.Equal(b, dst) {
			t.Errorf("AppendUDPHeader %q changed dst: % x", c.a.Host, b)
		}
		if c.a.Host != "[::1]" { // the brackets of an IPv6 literal
			_, err = ParseHostPort(joinHostPort(c.a.Host, 80))
			want.check(t, "ParseHostPort", err)
		}
	}
}

func TestParseHostPort(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Addr
	}{
		{"10.0.0.1:80", Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}},
		{"[2001:db8::1]:443", Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 443}},
		{"[::ffff:10.0.0.1]:80", Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}},
		{"echo.corp.example.test:7", Addr{Host: "echo.corp.example.test", Port: 7}},
		{"localhost:65535", Addr{Host: "localhost", Port: 65535}},
	} {
		if got, err := ParseHostPort(c.in); err != nil || got != c.want {
			t.Errorf("%s: %+v, %v", c.in, got, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"10.0.0.1", "socks5: address: "},
		{"host:", "socks5: port \"\""},
		{"host:65536", `socks5: port "65536"`},
		{"host:-1", `socks5: port "-1"`},
		{":80", "empty domain name"},
	} {
		if _, err := ParseHostPort(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct {
		v    interface{ String() string }
		want string
	}{
		{MethodNoAuth, "none"},
		{MethodGSSAPI, "gssapi"},
		{MethodUsernamePassword, "username/password"},
		{MethodNoAcceptable, "no acceptable methods"},
		{Method(0x80), "method(0x80)"},
		// The words policy configuration and the audit record use.
		{CmdConnect, "connect"},
		{CmdBind, "bind"},
		{CmdUDPAssociate, "udp"},
		{Command(0), "cmd(0x00)"},
		{Command(9), "cmd(0x09)"},
		{AddrTypeIPv4, "IPv4"},
		{AddrTypeDomain, "domain name"},
		{AddrTypeIPv6, "IPv6"},
		{AddrType(2), "atyp(0x02)"},
		{ReplySucceeded, "succeeded"},
		{ReplyGeneralFailure, "general failure"},
		{ReplyNotAllowed, "not allowed by ruleset"},
		{ReplyNetworkUnreachable, "network unreachable"},
		{ReplyHostUnreachable, "host unreachable"},
		{ReplyConnectionRefused, "connection refused"},
		{ReplyTTLExpired, "TTL expired"},
		{ReplyCommandNotSupported, "command not supported"},
		{ReplyAddressTypeNotSupported, "address type not supported"},
		{Reply(0xff), "reply(0xff)"},
		{Addr{}, "invalid IP:0"},
		{Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 80}, "10.0.0.1:80"},
		{Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 443}, "[2001:db8::1]:443"},
		{Addr{Host: "::1", Port: 1}, "[::1]:1"},
		{Addr{Host: "a.example", Port: 1}, "a.example:1"},
		{Addr{Host: ":", Port: 12336}, "[:]:12336"}, // fuzz: a name with a colon reads back
		{Addr{IP: netip.MustParseAddr("fe80::1%eth0"), Port: 80}, "[fe80::1%eth0]:80"},
	} {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.v, got, c.want)
		}
	}
	// RFC 1928 values, pinned: these are on the wire.
	for _, c := range []struct{ got, want byte }{
		{Version, 5},
		{byte(MethodNoAuth), 0}, {byte(MethodGSSAPI), 1}, {byte(MethodUsernamePassword), 2}, {byte(MethodNoAcceptable), 0xff},
		{byte(CmdConnect), 1}, {byte(CmdBind), 2}, {byte(CmdUDPAssociate), 3},
		{byte(AddrTypeIPv4), 1}, {byte(AddrTypeDomain), 3}, {byte(AddrTypeIPv6), 4},
		{byte(ReplySucceeded), 0}, {byte(ReplyGeneralFailure), 1}, {byte(ReplyNotAllowed), 2},
		{byte(ReplyNetworkUnreachable), 3}, {byte(ReplyHostUnreachable), 4}, {byte(ReplyConnectionRefused), 5},
		{byte(ReplyTTLExpired), 6}, {byte(ReplyCommandNotSupported), 7}, {byte(ReplyAddressTypeNotSupported), 8},
	} {
		if c.got != c.want {
			t.Errorf("constant %#02x, want %#02x", c.got, c.want)
		}
	}
}
