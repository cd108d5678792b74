package golden_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gssocks/gssocks/testenv/golden"
)

func TestSplitDirection(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         string // hex
		fromClient bool
		want       golden.Direction
		wantErr    bool
	}{
		{name: "empty", in: "", fromClient: true},
		{name: "client greeting only", in: "05 02 00 01", fromClient: true,
			want: golden.Direction{Greeting: []byte{5, 2, 0, 1}, Messages: []golden.Message{}}},
		{name: "server greeting only", in: "05 01",
			want: golden.Direction{Greeting: []byte{5, 1}, Messages: []golden.Message{}}},
		{name: "messages and abort", in: "05 01 01 01 00 02 aa bb 01 02 00 00 01 ff 01 03 00 01 cc",
			want: golden.Direction{Greeting: []byte{5, 1}, Messages: []golden.Message{
				{Mtyp: 1, Token: []byte{0xaa, 0xbb}},
				{Mtyp: 2, Token: []byte{}},
				{Mtyp: 0xff, Token: []byte{}},
				{Mtyp: 3, Token: []byte{0xcc}},
			}}},
		{name: "level 0 raw after messages", in: "05 01 00 01 01 00 01 02 01 02 00 01 00 05 01 00 01 7f 00 00 01 ee 99 01", fromClient: true,
			want: golden.Direction{Greeting: []byte{5, 1, 0}, Messages: []golden.Message{
				{Mtyp: 1, Token: []byte{2}},
				{Mtyp: 2, Token: []byte{0}},
			}, Raw: []byte{5, 1, 0, 1, 0x7f, 0, 0, 1, 0xee, 0x99, 1}}},
		{name: "not SOCKS5", in: "04 01 00 50", fromClient: true, wantErr: true},
		{name: "short client greeting", in: "05 03 00 01", fromClient: true, wantErr: true},
		{name: "one byte", in: "05", wantErr: true},
		{name: "lone version byte", in: "05 01 01", wantErr: true},
		{name: "short header", in: "05 01 01 01 00", wantErr: true},
		{name: "truncated token", in: "05 01 01 01 00 03 aa bb", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			got, err := golden.SplitDirection(in, tc.fromClient)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				if tc.name != "not SOCKS5" && !errors.Is(err, golden.ErrTruncated) {
					t.Errorf("error %v does not wrap ErrTruncated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalDirection(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			wire, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wire, in) {
				t.Errorf("Encode = % x, want % x", wire, in)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, d := range []golden.Direction{
		{Greeting: []byte{5, 1}, Messages: []golden.Message{{Mtyp: 0xff, Token: []byte{1}}}},
		{Greeting: []byte{5, 1}, Messages: []golden.Message{{Mtyp: 3, Token: make([]byte, 65536)}}},
	} {
		if _, err := d.Encode(); err == nil {
			t.Errorf("Encode(%d-byte mtyp %d token) succeeded", len(d.Messages[0].Token), d.Messages[0].Mtyp)
		}
	}
}

// FuzzSplitDirection checks that SplitDirection never panics, that what it
// accepts encodes back to its input, and that it does not alias its input.
func FuzzSplitDirection(f *testing.F) {
	for _, name := range golden.Names() {
		c, err := golden.Load(name)
		if err != nil {
			f.Fatal(err)
		}
		s := c.Streams[0]
		for fromClient, d := range map[bool]golden.Direction{true: s.ToServer, false: s.ToClient} {
			// Keep the seeds small: the handshake and the first data message.
			d.Messages = d.Messages[:min(len(d.Messages), 4)]
			wire, err := d.Encode()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(wire, fromClient)
			f.Add(wire[:len(wire)-1], fromClient)
		}
	}
	f.Add([]byte{5, 1, 1, 1, 0xff, 1, 2, 0, 0}, false)
	f.Add([]byte{}, true)

	f.Fuzz(func(t *testing.T, data []byte, fromClient bool) {
		orig := bytes.Clone(data)
		d, err := golden.SplitDirection(data, fromClient)
		if err != nil {
			return
		}
		wire, err := d.Encode()
		if err != nil {
			t.Fatalf("Encode of a split direction: %v", err)
		}
		if !bytes.Equal(wire, orig) {
			t.Fatalf("round trip: got % x, want % x", wire, orig)
		}
		for i := range data {
			data[i] ^= 0xff
		}
		if again, _ := d.Encode(); !bytes.Equal(again, orig) {
			t.Fatal("result aliases the input")
		}
	})
}
