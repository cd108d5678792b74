package socks4

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadRequest: the stream and slice decoders agree on every input,
// the stream one never reads past the request nor past its bounds, and
// what decodes re-encodes to the bytes it came from (except the SOCKS4a
// marker, which is always written 0.0.0.1) and decodes again the same.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{4, 1, 0, 80, 192, 0, 2, 7, 'a', 0})
	f.Add([]byte{4, 2, 0, 80, 0, 0, 0, 0, 0})
	f.Add(append([]byte{4, 1, 1, 187, 0, 0, 0, 1, 'u', 0}, "www.example.test\x00"...))
	f.Add(append([]byte{4, 1, 0, 80, 0, 0, 0, 200, 0}, "h\x00rest"...))
	f.Add([]byte{4, 1, 0, 80, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{4, 3, 0, 80, 1, 2, 3, 4, 0})
	f.Add([]byte{5, 1, 0})
	f.Add(append([]byte{4, 1, 0, 80, 1, 2, 3, 4}, bytes.Repeat([]byte{'x'}, 300)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadRequest(r)
		consumed := len(b) - r.Len()
		preq, rest, perr := ParseRequest(b)
		if (err == nil) != (perr == nil) || req != preq {
			t.Fatalf("% x: ReadRequest %+v %v, ParseRequest %+v %v", b, req, err, preq, perr)
		}
		if consumed > 8+MaxUserIDLen+1+MaxHostLen+1 {
			t.Fatalf("ReadRequest read %d bytes", consumed)
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) && !errors.Is(err, io.EOF) {
				t.Fatalf("% x: untyped error %T %v", b, err, err)
			}
			return
		}
		if len(rest) != r.Len() {
			t.Fatalf("% x: ReadRequest read %d bytes, ParseRequest %d", b, consumed, len(b)-len(rest))
		}
		again, err := AppendRequest(nil, req)
		if err != nil {
			t.Fatalf("% x decodes to %+v, which does not encode: %v", b, req, err)
		}
		in := bytes.Clone(b[:consumed])
		if req.Is4a() {
			in[7] = 1
		}
		if !bytes.Equal(in, again) {
			t.Fatalf("% x re-encodes as % x", b[:consumed], again)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte{0, 0x5a, 0x12, 0x34, 192, 0, 2, 1})
	f.Add([]byte{0, 0x5b, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 0x5a})
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, ap, err := ParseReply(b)
		if err != nil {
			return
		}
		if again := AppendReply(nil, rep, ap); !bytes.Equal(again, b[:ReplyLen]) {
			t.Fatalf("% x re-encodes as % x", b[:ReplyLen], again)
		}
	})
}
