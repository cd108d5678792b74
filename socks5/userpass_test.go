package socks5

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestUserPassRequest(t *testing.T) {
	long := strings.Repeat("u", 255)
	for _, req := range []UserPassRequest{
		{"alice", "alice-password-1"},
		{"a", "p"},
		{long, strings.Repeat("p", 255)},
		{"alice@EXAMPLE.TEST", "pw with \x00 and \xff"},
	} {
		b, err := AppendUserPassRequest(nil, req)
		if err != nil {
			t.Fatalf("%d-byte user: %v", len(req.Username), err)
		}
		if len(b) != 3+len(req.Username)+len(req.Password) || b[0] != 1 {
			t.Fatalf("encoding % x", b[:3])
		}
		r := bytes.NewReader(append(b, 0xee))
		got, err := ReadUserPassRequest(r)
		if err != nil || got != req || r.Len() != 1 {
			t.Fatalf("read back %q/%d bytes, %v, %d left", got.Username, len(got.Password), err, r.Len())
		}
		got, rest, err := ParseUserPassRequest(append(b, 0xee))
		if err != nil || got != req || !bytes.Equal(rest, []byte{0xee}) {
			t.Fatalf("parse back: %v, rest % x", err, rest)
		}
	}
}

// TestUserPassRequestRefusals: the malformed requests RFC 1929 servers
// must refuse, each typed, none quoting a field.
func TestUserPassRequestRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		bad  bool // ErrBadUserPass; else a short read
	}{
		{"wrong version (SOCKS5's)", []byte{5, 1, 'a', 1, 's'}, true},
		{"version 0", []byte{0, 1, 'a', 1, 's'}, true},
		{"empty username", []byte{1, 0, 1, 's'}, true},
		{"empty password", []byte{1, 5, 'a', 'l', 'i', 'c', 'e', 0}, true},
		{"nothing", nil, false},
		{"truncated name", []byte{1, 5, 'a', 'l'}, false},
		{"no password length", []byte{1, 1, 'a'}, false},
		{"truncated password", []byte{1, 1, 'a', 9, 's', 'e', 'c'}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadUserPassRequest(bytes.NewReader(c.in))
			_, _, perr := ParseUserPassRequest(c.in)
			for _, e := range []error{err, perr} {
				if e == nil {
					t.Fatal("accepted")
				}
				if errors.Is(e, ErrBadUserPass) != c.bad {
					t.Fatalf("%v: ErrBadUserPass %t, want %t", e, !c.bad, c.bad)
				}
				if strings.Contains(e.Error(), "sec") || strings.Contains(e.Error(), "alice") {
					t.Fatalf("error quotes a field: %v", e)
				}
			}
			if !c.bad && len(c.in) > 0 && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("short read: %v", err)
			}
		})
	}
	for _, req := range []UserPassRequest{{"", "p"}, {"u", ""}, {strings.Repeat("u", 256), "p"}, {"u", strings.Repeat("p", 256)}} {
		if _, err := AppendUserPassRequest(nil, req); !errors.Is(err, ErrBadUserPass) || strings.Contains(err.Error(), "ppp") {
			t.Fatalf("%d/%d bytes encoded: %v", len(req.Username), len(req.Password), err)
		}
	}
}

func TestUserPassReply(t *testing.T) {
	for _, s := range []UserPassStatus{UserPassSuccess, UserPassFailure, 0x7f} {
		b := AppendUserPassReply(nil, s)
		if !bytes.Equal(b, []byte{1, byte(s)}) {
			t.Fatalf("% x", b)
		}
		got, err := ReadUserPassReply(bytes.NewReader(b))
		if err != nil || got != s {
			t.Fatalf("%s read back as %s, %v", s, got, err)
		}
	}
	if _, err := ReadUserPassReply(bytes.NewReader([]byte{5, 0})); err == nil {
		t.Fatal("version 5 reply accepted")
	}
	if UserPassStatus(0x05).String() != "failure(0x05)" {
		t.Fatal(UserPassStatus(0x05).String())
	}
}

func FuzzReadUserPassRequest(f *testing.F) {
	f.Add(mustAppend(AppendUserPassRequest(nil, UserPassRequest{"alice", "alice-password-1"})))
	f.Add(mustAppend(AppendUserPassRequest(nil, UserPassRequest{strings.Repeat("u", 255), strings.Repeat("p", 255)})))
	f.Add([]byte{1, 0, 1, 'p'})
	f.Add([]byte{1, 1, 'u', 0})
	f.Add([]byte{5, 1, 'u', 1, 'p'})
	f.Add([]byte{1, 3, 'u'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadUserPassRequest(r)
		preq, rest, perr := ParseUserPassRequest(b)
		if (err == nil) != (perr == nil) || req != preq {
			t.Fatalf("% x: ReadUserPassRequest %v, ParseUserPassRequest %v", b, err, perr)
		}
		if err != nil {
			if errors.Is(err, ErrBadUserPass) != errors.Is(perr, ErrBadUserPass) {
				t.Fatalf("% x: %v and %v disagree", b, err, perr)
			}
			return
		}
		if len(rest) != r.Len() {
			t.Fatalf("% x: read %d bytes, parsed %d", b, len(b)-r.Len(), len(b)-len(rest))
		}
		if req.Username == "" || req.Password == "" || len(req.Username) > 255 || len(req.Password) > 255 {
			t.Fatalf("% x: fields of %d and %d bytes", b, len(req.Username), len(req.Password))
		}
		again, err := AppendUserPassRequest(nil, req)
		if err != nil || !bytes.Equal(again, b[:len(b)-len(rest)]) {
			t.Fatalf("% x re-encodes as % x, %v", b, again, err)
		}
	})
}

func FuzzReadUserPassReply(f *testing.F) {
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1})
	f.Add([]byte{5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadUserPassReply(bytes.NewReader(b))
		if err != nil {
			return
		}
		if again := AppendUserPassReply(nil, s); !bytes.Equal(again, b[:2]) {
			t.Fatalf("% x re-encodes as % x", b, again)
		}
	})
}
