package golden

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// socksVersion is the first byte of a SOCKS5 greeting and method selection.
const socksVersion = 0x05

// rfc1961Version is the first byte of every RFC 1961 message.
const rfc1961Version = 0x01

// ErrTruncated reports a byte stream that ends in the middle of a greeting
// or RFC 1961 message.
var ErrTruncated = errors.New("truncated")

// SplitDirection splits the bytes one side of a SOCKS connection sent into
// greeting, RFC 1961 messages and trailing raw bytes. fromClient selects the
// greeting format: "05 n methods..." (2+n bytes) from the client, "05
// method" (2 bytes) from the server.
//
// After the greeting it reads messages while the next byte is 0x01: mtyp
// 0xff is an abort without length, any other mtyp is followed by a 2-byte
// big-endian length and the token. The first byte that is not 0x01 starts
// Raw, which runs to the end. A stream that ends inside the greeting or a
// message is an error wrapping [ErrTruncated]; an empty stream yields an
// empty Direction. The result does not alias data.
func SplitDirection(data []byte, fromClient bool) (Direction, error) {
	var d Direction
	if len(data) == 0 {
		return d, nil
	}
	if data[0] != socksVersion {
		return d, fmt.Errorf("greeting starts %#02x, want SOCKS version 05", data[0])
	}
	greetingLen := 2
	if fromClient && len(data) >= 2 {
		greetingLen = 2 + int(data[1])
	}
	if len(data) < greetingLen {
		return d, fmt.Errorf("greeting needs %d bytes, have %d: %w", greetingLen, len(data), ErrTruncated)
	}
	d.Greeting = bytes.Clone(data[:greetingLen])
	d.Messages = []Message{}

	off := greetingLen
	for off < len(data) && data[off] == rfc1961Version {
		if len(data)-off < 2 {
			return d, fmt.Errorf("message %d at offset %d: no mtyp: %w", len(d.Messages), off, ErrTruncated)
		}
		mtyp := data[off+1]
		if mtyp == MtypAbort {
			d.Messages = append(d.Messages, Message{Mtyp: mtyp, Token: []byte{}})
			off += 2
			continue
		}
		if len(data)-off < 4 {
			return d, fmt.Errorf("message %d (mtyp %d) at offset %d: header needs 4 bytes, have %d: %w",
				len(d.Messages), mtyp, off, len(data)-off, ErrTruncated)
		}
		n := int(binary.BigEndian.Uint16(data[off+2:]))
		if len(data)-off-4 < n {
			return d, fmt.Errorf("message %d (mtyp %d) at offset %d: token needs %d bytes, have %d: %w",
				len(d.Messages), mtyp, off, n, len(data)-off-4, ErrTruncated)
		}
		d.Messages = append(d.Messages, Message{Mtyp: mtyp, Token: bytes.Clone(data[off+4 : off+4+n])})
		off += 4 + n
	}
	if off < len(data) {
		d.Raw = bytes.Clone(data[off:])
	}
	return d, nil
}

// Encode returns the wire bytes of d: the greeting, the framed messages and
// Raw. For a Direction produced by SplitDirection it returns the original
// input. It fails for tokens longer than 65535 bytes and aborts with a
// token.
func (d Direction) Encode() ([]byte, error) {
	out := bytes.Clone(d.Greeting)
	for i, m := range d.Messages {
		if m.Mtyp == MtypAbort {
			if len(m.Token) != 0 {
				return nil, fmt.Errorf("message %d: abort carries a %d-byte token", i, len(m.Token))
			}
			out = append(out, rfc1961Version, MtypAbort)
			continue
		}
		if len(m.Token) > math.MaxUint16 {
			return nil, fmt.Errorf("message %d: token of %d bytes exceeds 65535", i, len(m.Token))
		}
		out = append(out, rfc1961Version, m.Mtyp)
		out = binary.BigEndian.AppendUint16(out, uint16(len(m.Token)))
		out = append(out, m.Token...)
	}
	return append(out, d.Raw...), nil
}
