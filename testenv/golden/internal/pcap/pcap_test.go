package pcap

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// file builds a capture file with the given byte order, magic and frames.
func file(order binary.AppendByteOrder, magic uint32, lt LinkType, frames ...[]byte) []byte {
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint64(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, uint32(lt))
	for i, f := range frames {
		b = order.AppendUint32(b, uint32(1700000000+i))
		b = order.AppendUint32(b, 5)
		b = order.AppendUint32(b, uint32(len(f)))
		b = order.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

func ipv4(proto byte, src, dst [4]byte, l4 []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	h = append(append(append(h, src[:]...), dst[:]...), l4...)
	return h
}

func ipv6(next byte, src, dst [16]byte, l4 []byte) []byte {
	h := []byte{0x60, 0, 0, 0, 0, 0, next, 64}
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	return append(append(append(h, src[:]...), dst[:]...), l4...)
}

func tcp(sport, dport uint16, seq uint32, flags byte, payload string) []byte {
	h := binary.BigEndian.AppendUint16(nil, sport)
	h = binary.BigEndian.AppendUint16(h, dport)
	h = binary.BigEndian.AppendUint32(h, seq)
	h = append(h, 0, 0, 0, 0, 5<<4, flags, 0xff, 0xff, 0, 0, 0, 0)
	return append(h, payload...)
}

func udp(sport, dport uint16, payload string) []byte {
	h := binary.BigEndian.AppendUint16(nil, sport)
	h = binary.BigEndian.AppendUint16(h, dport)
	h = binary.BigEndian.AppendUint16(h, uint16(8+len(payload)))
	return append(append(h, 0, 0), payload...)
}

var (
	lo4 = [4]byte{127, 0, 0, 1}
	lo6 = netip.IPv6Loopback().As16()
)

func TestParseAndDecode(t *testing.T) {
	seg := ipv4(ProtoTCP, lo4, lo4, tcp(5000, 61080, 1000, FlagACK, "hi"))
	seg6 := ipv6(ProtoTCP, lo6, lo6, tcp(5000, 61080, 1000, FlagACK, "hi"))
	eth := append(make([]byte, 12), 0x08, 0x00)
	// Ethernet pads short frames; the IP total length must strip it.
	padded := append(append(eth, seg...), make([]byte, 6)...)
	vlan := append(append(make([]byte, 12), 0x81, 0x00, 0, 1, 0x86, 0xdd), seg6...)
	sll := append(append(make([]byte, 14), 0x08, 0x00), seg...)
	sll2 := append(append([]byte{0x86, 0xdd}, make([]byte, 18)...), seg6...)
	null := append([]byte{2, 0, 0, 0}, seg...)   // little-endian AF_INET
	loop := append([]byte{0, 0, 0, 24}, seg6...) // network order AF_INET6 (OpenBSD)
	for _, tc := range []struct {
		name  string
		order binary.AppendByteOrder
		magic uint32
		lt    LinkType
		frame []byte
		v6    bool
	}{
		{"ethernet padded", binary.LittleEndian, magicMicro, LinkEthernet, padded, false},
		{"ethernet vlan v6", binary.BigEndian, magicNano, LinkEthernet, vlan, true},
		{"sll", binary.BigEndian, magicMicro, LinkLinuxSLL, sll, false},
		{"sll2 v6", binary.LittleEndian, magicMicro, LinkLinuxSLL2, sll2, true},
		{"null", binary.LittleEndian, magicMicro, LinkNull, null, false},
		{"loop v6", binary.BigEndian, magicMicro, LinkLoop, loop, true},
		{"raw", binary.LittleEndian, magicMicro, LinkRaw, seg, false},
		{"ipv6", binary.LittleEndian, magicMicro, LinkIPv6, seg6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(file(tc.order, tc.magic, tc.lt, tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			if f.LinkType != tc.lt || len(f.Records) != 1 || f.Records[0].Frame != 1 {
				t.Fatalf("link %v, %d records", f.LinkType, len(f.Records))
			}
			p, err := Decode(f.LinkType, f.Records[0])
			if err != nil {
				t.Fatal(err)
			}
			want := "127.0.0.1:5000"
			if tc.v6 {
				want = "[::1]:5000"
			}
			if p.Proto != ProtoTCP || p.Src.String() != want || p.Dst.Port() != 61080 ||
				p.Seq != 1000 || p.Flags != FlagACK || string(p.Payload) != "hi" || p.Truncated {
				t.Errorf("decoded %+v", p)
			}
		})
	}
}

func TestDecodeUDPAndSkips(t *testing.T) {
	eth := append(make([]byte, 12), 0x08, 0x00)
	arp := append(make([]byte, 12), 0x08, 0x06, 1, 2, 3)
	icmp := append(eth, ipv4(1, lo4, lo4, []byte{8, 0, 0, 0})...)
	u := append(eth, ipv4(ProtoUDP, lo4, lo4, udp(1, 2, "\x01\x03\x00\x00"))...)
	frag := ipv4(ProtoUDP, lo4, lo4, udp(1, 2, "x"))
	frag[6] = 0x20 // more fragments
	frag = append(eth, frag...)
	f, err := Parse(file(binary.LittleEndian, magicMicro, LinkEthernet, arp, icmp, u, frag))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{ErrNotIP, ErrNotIP, nil} {
		if _, err := Decode(f.LinkType, f.Records[i]); !errors.Is(err, want) {
			t.Errorf("frame %d: %v, want %v", i+1, err, want)
		}
	}
	if p, _ := Decode(f.LinkType, f.Records[2]); p.Proto != ProtoUDP || string(p.Payload) != "\x01\x03\x00\x00" {
		t.Errorf("UDP: %+v", p)
	}
	if _, err := Decode(f.LinkType, f.Records[3]); err == nil || errors.Is(err, ErrNotIP) {
		t.Errorf("fragment: %v, want a decode error", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := file(binary.LittleEndian, magicMicro, LinkEthernet, []byte{1, 2, 3})
	for name, b := range map[string][]byte{
		"short":          good[:10],
		"bad magic":      append([]byte{1, 2, 3, 4}, good[4:]...),
		"pcapng":         append([]byte{0x0a, 0x0d, 0x0d, 0x0a}, good[4:]...),
		"short record":   good[:len(good)-1],
		"partial header": good[:headerLen+3],
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f, err := Parse(file(binary.LittleEndian, magicMicro, LinkType(147), []byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(f.LinkType, f.Records[0]); err == nil {
		t.Error("unsupported link type decoded")
	}
}
