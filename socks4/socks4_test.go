package socks4

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		req  Request
		wire []byte
	}{
		{"connect", Request{Command: CmdConnect, Port: 80, IP: netip.MustParseAddr("192.0.2.7"), UserID: "alice"},
			[]byte{4, 1, 0, 80, 192, 0, 2, 7, 'a', 'l', 'i', 'c', 'e', 0}},
		{"bind, empty USERID", Request{Command: CmdBind, Port: 0x1234, IP: netip.MustParseAddr("10.0.0.1")},
			[]byte{4, 2, 0x12, 0x34, 10, 0, 0, 1, 0}},
		{"4a", Request{Command: CmdConnect, Port: 443, Host: "www.example.test", UserID: "u"},
			append([]byte{4, 1, 1, 187, 0, 0, 0, 1, 'u', 0}, "www.example.test\x00"...)},
		{"unspecified is not a 4a marker", Request{Command: CmdBind, Port: 1, IP: netip.MustParseAddr("0.0.0.0")},
			[]byte{4, 2, 0, 1, 0, 0, 0, 0, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := AppendRequest(nil, c.req)
			if err != nil || !bytes.Equal(got, c.wire) {
				t.Fatalf("AppendRequest = % x, %v; want % x", got, err, c.wire)
			}
			trailer := []byte("GET / HTTP/1.0\r\n")
			in := append(bytes.Clone(c.wire), trailer...)
			r := bytes.NewReader(in)
			back, err := ReadRequest(iotest.OneByteReader(r))
			if err != nil || back != c.req {
				t.Fatalf("ReadRequest = %+v, %v", back, err)
			}
			if r.Len() != len(trailer) {
				t.Fatalf("ReadRequest read %d bytes past the request", len(trailer)-r.Len())
			}
			pb, rest, err := ParseRequest(in)
			if err != nil || pb != c.req || !bytes.Equal(rest, trailer) {
				t.Fatalf("ParseRequest = %+v, %q, %v", pb, rest, err)
			}
		})
	}
	// Any 0.0.0.x marker reads as 4a.
	req, _, err := ParseRequest(append([]byte{4, 1, 0, 80, 0, 0, 0, 0xff, 0}, "h.test\x00"...))
	if err != nil || req.Host != "h.test" || req.IP.IsValid() || !req.Is4a() || req.String() != "h.test:80" {
		t.Fatalf("0.0.0.255: %+v %v", req, err)
	}
}

// TestHostileRequests pins the typed errors of what a hostile or broken
// client sends, read from a stream and from a slice alike.
func TestHostileRequests(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, MaxUserIDLen+1)
	okUID := bytes.Repeat([]byte{'x'}, MaxUserIDLen)
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"socks5 greeting", []byte{5, 1, 0, 0, 0, 0, 0, 0, 0}, ErrVersion},
		{"truncated header", []byte{4, 1, 0}, io.ErrUnexpectedEOF},
		{"unknown command", []byte{4, 3, 0, 80, 1, 2, 3, 4, 0}, ErrCommand},
		{"no NUL after USERID", []byte{4, 1, 0, 80, 1, 2, 3, 4, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"USERID without NUL within the bound", append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, long...), ErrUserIDTooLong},
		{"huge USERID", append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, bytes.Repeat([]byte{'A'}, 1<<16)...), ErrUserIDTooLong},
		{"4a without a name", []byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, io.ErrUnexpectedEOF},
		{"4a with an empty name", []byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 0}, ErrHostEmpty},
		{"4a name without NUL within the bound", append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, bytes.Repeat([]byte{'h'}, MaxHostLen+1)...), ErrHostTooLong},
		{"4a name with a newline", append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "a\nb\x00"...), ErrHostInvalid},
		{"4a name truncated", append([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0}, "abc"...), io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadRequest(bytes.NewReader(c.in))
			if c.name == "empty" {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("ReadRequest: %v, want io.EOF", err)
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("ReadRequest: %v, want %v", err, c.want)
			}
			if _, _, perr := ParseRequest(c.in); !errors.Is(perr, c.want) {
				t.Fatalf("ParseRequest: %v, want %v", perr, c.want)
			}
			var pe *ProtocolError
			if c.name != "empty" && !errors.As(err, &pe) {
				t.Fatalf("not a *ProtocolError: %T %v", err, err)
			}
			if strings.Contains(err.Error(), "AAAA") {
				t.Fatalf("the error repeats the peer's bytes: %v", err)
			}
		})
	}
	// The bound is exact: MaxUserIDLen bytes and a NUL are a USERID.
	in := append(append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, okUID...), 0)
	if req, err := ReadRequest(bytes.NewReader(in)); err != nil || len(req.UserID) != MaxUserIDLen {
		t.Fatalf("a USERID of %d bytes: %v", MaxUserIDLen, err)
	}
	// The huge USERID is not read past its bound.
	r := bytes.NewReader(append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, bytes.Repeat([]byte{'A'}, 1<<16)...))
	ReadRequest(r)
	if read := 1<<16 + 8 - r.Len(); read > 8+MaxUserIDLen+1 {
		t.Fatalf("read %d bytes of a hostile USERID", read)
	}
}

func TestAppendRequestRefuses(t *testing.T) {
	for _, c := range []struct {
		req  Request
		want error
	}{
		{Request{Command: 9, IP: netip.MustParseAddr("1.2.3.4")}, ErrCommand},
		{Request{Command: CmdConnect, IP: netip.MustParseAddr("::1")}, ErrAddress},
		{Request{Command: CmdConnect}, ErrAddress},
		{Request{Command: CmdConnect, IP: netip.MustParseAddr("0.0.0.9")}, ErrAddress},
		{Request{Command: CmdConnect, IP: netip.MustParseAddr("1.2.3.4"), UserID: "a\x00b"}, ErrUserIDInvalid},
		{Request{Command: CmdConnect, IP: netip.MustParseAddr("1.2.3.4"), UserID: strings.Repeat("u", 256)}, ErrUserIDTooLong},
		{Request{Command: CmdConnect, Host: "bad host"}, ErrHostInvalid},
	} {
		if _, err := AppendRequest(nil, c.req); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.req, err, c.want)
		}
	}
	b, err := AppendRequest(nil, Request{Command: CmdConnect, IP: netip.MustParseAddr("::ffff:1.2.3.4"), Port: 1})
	if err != nil || !bytes.Equal(b, []byte{4, 1, 0, 1, 1, 2, 3, 4, 0}) {
		t.Fatalf("mapped: % x %v", b, err)
	}
}

func TestReply(t *testing.T) {
	b := AppendReply(nil, ReplyGranted, netip.MustParseAddrPort("192.0.2.1:4660"))
	if !bytes.Equal(b, []byte{0, 0x5a, 0x12, 0x34, 192, 0, 2, 1}) {
		t.Fatalf("% x", b)
	}
	rep, ap, err := ReadReply(bytes.NewReader(b))
	if err != nil || rep != ReplyGranted || ap != netip.MustParseAddrPort("192.0.2.1:4660") {
		t.Fatalf("%v %v %v", rep, ap, err)
	}
	if b := AppendReply(nil, ReplyRejected, netip.AddrPort{}); !bytes.Equal(b, []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("rejected: % x", b)
	}
	if b := AppendReply(nil, ReplyGranted, netip.MustParseAddrPort("[::1]:80")); !bytes.Equal(b, []byte{0, 0x5a, 0, 80, 0, 0, 0, 0}) {
		t.Fatalf("IPv6: % x", b)
	}
	if _, _, err := ParseReply([]byte{4, 0x5a, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrReplyVersion) {
		t.Fatalf("version: %v", err)
	}
	if _, _, err := ParseReply([]byte{0, 0x5a}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short: %v", err)
	}
	for rep, want := range map[Reply]string{ReplyGranted: "request granted", ReplyRejected: "request rejected or failed", 0x77: "reply(0x77)"} {
		if rep.String() != want {
			t.Errorf("%d: %q", rep, rep.String())
		}
	}
	if CmdConnect.String() != "connect" || CmdBind.String() != "bind" || Command(7).String() != "cmd(0x07)" {
		t.Error("command names")
	}
}

// TestImportsStdlibOnly pins the package boundary: a codec, importing
// the standard library alone.
func TestImportsStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		if p == "github.com/gssocks/gssocks/socks4" || first == "vendor" || !strings.Contains(first, ".") {
			continue
		}
		t.Errorf("socks4 depends on %s", p)
	}
}
