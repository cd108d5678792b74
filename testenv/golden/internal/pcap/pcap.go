// Package pcap reads classic libpcap capture files and decodes the link,
// IP (v4 and v6) and transport (TCP, UDP) headers of each frame.
//
// It is a small, dependency-free reader for the golden-capture extractor: it
// supports the link types a loopback or Ethernet capture on Linux, BSD or
// macOS produces, and rejects what it cannot decode faithfully (IP fragments,
// IPv6 jumbograms) instead of guessing.
package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// LinkType is a LINKTYPE_ value from the pcap file header.
type LinkType uint32

// Link types this package decodes.
const (
	LinkNull      LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	LinkEthernet  LinkType = 1   // IEEE 802.3 Ethernet
	LinkRaw       LinkType = 101 // raw IPv4 or IPv6, version from the first nibble
	LinkLoop      LinkType = 108 // OpenBSD loopback: 4-byte address family, network byte order
	LinkLinuxSLL  LinkType = 113 // Linux "cooked" capture v1
	LinkIPv4      LinkType = 228 // raw IPv4
	LinkIPv6      LinkType = 229 // raw IPv6
	LinkLinuxSLL2 LinkType = 276 // Linux "cooked" capture v2
)

func (lt LinkType) String() string {
	switch lt {
	case LinkNull:
		return "NULL"
	case LinkEthernet:
		return "ETHERNET"
	case LinkRaw:
		return "RAW"
	case LinkLoop:
		return "LOOP"
	case LinkLinuxSLL:
		return "LINUX_SLL"
	case LinkIPv4:
		return "IPV4"
	case LinkIPv6:
		return "IPV6"
	case LinkLinuxSLL2:
		return "LINUX_SLL2"
	}
	return fmt.Sprintf("LINKTYPE(%d)", uint32(lt))
}

// File is a parsed capture file.
type File struct {
	LinkType LinkType
	SnapLen  uint32
	Records  []Record
}

// Record is one captured frame.
type Record struct {
	Frame   int // 1-based frame number, as Wireshark numbers them
	Time    time.Time
	Data    []byte // the captured bytes (may be shorter than OrigLen)
	OrigLen int    // the frame's length on the wire
}

const (
	magicMicro = 0xa1b2c3d4
	magicNano  = 0xa1b23c4d
	headerLen  = 24
	recHdrLen  = 16
)

// Parse parses a classic libpcap file (either byte order, microsecond or
// nanosecond timestamps). pcapng is not supported.
func Parse(data []byte) (*File, error) {
	if len(data) < headerLen {
		return nil, fmt.Errorf("pcap: file too short for header (%d bytes)", len(data))
	}
	var order binary.ByteOrder
	var nano bool
	switch magic := binary.LittleEndian.Uint32(data); magic {
	case magicMicro, magicNano:
		order, nano = binary.LittleEndian, magic == magicNano
	default:
		switch magic := binary.BigEndian.Uint32(data); magic {
		case magicMicro, magicNano:
			order, nano = binary.BigEndian, magic == magicNano
		case 0x0a0d0d0a:
			return nil, errors.New("pcap: file is pcapng, only classic libpcap is supported")
		default:
			return nil, fmt.Errorf("pcap: unknown magic %#08x", magic)
		}
	}
	f := &File{
		SnapLen: order.Uint32(data[16:]),
		// The upper bits of the link-type field carry FCS information; the
		// link type itself is the low 16 bits.
		LinkType: LinkType(order.Uint32(data[20:]) & 0xffff),
	}
	off := headerLen
	for frame := 1; off < len(data); frame++ {
		if len(data)-off < recHdrLen {
			return nil, fmt.Errorf("pcap: frame %d: truncated record header", frame)
		}
		sec, frac := order.Uint32(data[off:]), order.Uint32(data[off+4:])
		incl, orig := order.Uint32(data[off+8:]), order.Uint32(data[off+12:])
		off += recHdrLen
		if uint64(incl) > uint64(len(data)-off) {
			return nil, fmt.Errorf("pcap: frame %d: record claims %d bytes, %d left in file", frame, incl, len(data)-off)
		}
		nsec := int64(frac) * 1000
		if nano {
			nsec = int64(frac)
		}
		f.Records = append(f.Records, Record{
			Frame:   frame,
			Time:    time.Unix(int64(sec), nsec).UTC(),
			Data:    data[off : off+int(incl)],
			OrigLen: int(orig),
		})
		off += int(incl)
	}
	return f, nil
}

// Transport protocol numbers.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagACK = 0x10
)

// Packet is a decoded TCP or UDP packet.
type Packet struct {
	Frame    int
	Proto    int // ProtoTCP or ProtoUDP
	Src, Dst netip.AddrPort
	Seq      uint32 // TCP only
	Flags    uint8  // TCP only
	Payload  []byte
	// Truncated reports that the capture cut the frame short (snap length),
	// so Payload is incomplete.
	Truncated bool
}

// ErrNotIP is returned by Decode for frames that are not IPv4/IPv6 carrying
// TCP or UDP (ARP, ICMP, ...). Callers normally skip them.
var ErrNotIP = errors.New("pcap: not a TCP or UDP over IP frame")

// Decode decodes the link, IP and transport headers of rec.
func Decode(lt LinkType, rec Record) (Packet, error) {
	p := Packet{Frame: rec.Frame, Truncated: len(rec.Data) < rec.OrigLen}
	l3, err := stripLink(lt, rec.Data)
	if err != nil {
		return p, fmt.Errorf("frame %d: %w", rec.Frame, err)
	}
	if err := decodeIP(&p, l3); err != nil {
		return p, fmt.Errorf("frame %d: %w", rec.Frame, err)
	}
	return p, nil
}

// Address families seen in NULL/LOOP link headers (they differ by OS).
func isAFInet(af uint32) bool  { return af == 2 }
func isAFInet6(af uint32) bool { return af == 10 || af == 23 || af == 24 || af == 28 || af == 30 }

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100
	etherQinQ = 0x88a8
)

// stripLink returns the IP packet inside a link-layer frame.
func stripLink(lt LinkType, b []byte) ([]byte, error) {
	switch lt {
	case LinkEthernet:
		if len(b) < 14 {
			return nil, errors.New("short Ethernet header")
		}
		et, off := binary.BigEndian.Uint16(b[12:]), 14
		for et == etherVLAN || et == etherQinQ {
			if len(b) < off+4 {
				return nil, errors.New("short VLAN tag")
			}
			et, off = binary.BigEndian.Uint16(b[off+2:]), off+4
		}
		return ipByEtherType(et, b[off:])
	case LinkLinuxSLL:
		if len(b) < 16 {
			return nil, errors.New("short LINUX_SLL header")
		}
		return ipByEtherType(binary.BigEndian.Uint16(b[14:]), b[16:])
	case LinkLinuxSLL2:
		if len(b) < 20 {
			return nil, errors.New("short LINUX_SLL2 header")
		}
		return ipByEtherType(binary.BigEndian.Uint16(b[0:]), b[20:])
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return nil, errors.New("short loopback header")
		}
		af := binary.BigEndian.Uint32(b)
		if lt == LinkNull {
			// Host byte order of the capturing machine: accept either.
			if le := binary.LittleEndian.Uint32(b); le < af {
				af = le
			}
		}
		switch {
		case isAFInet(af), isAFInet6(af):
			return b[4:], nil
		}
		return nil, ErrNotIP
	case LinkRaw, LinkIPv4, LinkIPv6:
		return b, nil
	}
	return nil, fmt.Errorf("unsupported link type %v", lt)
}

func ipByEtherType(et uint16, b []byte) ([]byte, error) {
	if et != etherIPv4 && et != etherIPv6 {
		return nil, ErrNotIP
	}
	return b, nil
}

// IPv6 extension headers that may precede the transport header.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6DestOpts = 60
)

func decodeIP(p *Packet, b []byte) error {
	if len(b) < 1 {
		return errors.New("empty IP packet")
	}
	var (
		src, dst netip.Addr
		proto    int
		body     []byte
	)
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return errors.New("short IPv4 header")
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl {
			return fmt.Errorf("bad IPv4 header (ihl %d, total length %d)", ihl, total)
		}
		if len(b) < ihl {
			return errors.New("IPv4 header cut by snap length")
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&0x3fff != 0 {
			return errors.New("IPv4 fragment (reassembly not supported)")
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		proto = int(b[9])
		// The total length strips Ethernet padding; a shorter buffer means
		// the capture truncated the frame.
		body = b[ihl:min(total, len(b))]
		if len(b) < total {
			p.Truncated = true
		}
	case 6:
		if len(b) < 40 {
			return errors.New("short IPv6 header")
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if plen == 0 {
			return errors.New("IPv6 jumbogram or empty payload")
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		next := int(b[6])
		body = b[40:min(40+plen, len(b))]
		if len(b) < 40+plen {
			p.Truncated = true
		}
		for next == ip6HopByHop || next == ip6Routing || next == ip6DestOpts || next == ip6Fragment {
			if next == ip6Fragment {
				return errors.New("IPv6 fragment (reassembly not supported)")
			}
			if len(body) < 8 {
				return errors.New("short IPv6 extension header")
			}
			n := (int(body[1]) + 1) * 8
			if len(body) < n {
				return errors.New("IPv6 extension header cut short")
			}
			next, body = int(body[0]), body[n:]
		}
		proto = next
	default:
		return fmt.Errorf("IP version %d: %w", b[0]>>4, ErrNotIP)
	}

	p.Proto = proto
	switch proto {
	case ProtoTCP:
		if len(body) < 20 {
			return errors.New("short TCP header")
		}
		doff := int(body[12]>>4) * 4
		if doff < 20 || doff > len(body) {
			return fmt.Errorf("bad TCP data offset %d", doff)
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[0:]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2:]))
		p.Seq = binary.BigEndian.Uint32(body[4:])
		p.Flags = body[13]
		p.Payload = body[doff:]
	case ProtoUDP:
		if len(body) < 8 {
			return errors.New("short UDP header")
		}
		ulen := int(binary.BigEndian.Uint16(body[4:]))
		if ulen < 8 || (ulen > len(body) && !p.Truncated) {
			return fmt.Errorf("bad UDP length %d (%d bytes present)", ulen, len(body))
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[0:]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2:]))
		p.Payload = body[8:min(ulen, len(body))]
	default:
		return fmt.Errorf("IP protocol %d: %w", proto, ErrNotIP)
	}
	return nil
}
