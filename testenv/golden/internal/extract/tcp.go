package extract

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/gssocks/gssocks/testenv/golden/internal/pcap"
)

// segment is the payload of one TCP packet.
type segment struct {
	frame int
	seq   uint32 // sequence number of the first payload byte
	data  []byte
}

// halfStream collects what one side of a TCP connection sent.
type halfStream struct {
	haveSYN bool
	isn     uint32
	segs    []segment
}

// conn is one TCP connection to the SOCKS port.
type conn struct {
	client, server netip.AddrPort
	toServer       halfStream
	toClient       halfStream
}

// ReassemblyStats counts what reassembly had to repair.
type ReassemblyStats struct {
	OutOfOrder   int // segments sequenced below the segment captured just before them
	DupSegments  int // segments carrying only bytes already seen (retransmissions)
	OverlapBytes int // bytes dropped because an earlier segment carried them
}

func (s *ReassemblyStats) add(o ReassemblyStats) {
	s.OutOfOrder += o.OutOfOrder
	s.DupSegments += o.DupSegments
	s.OverlapBytes += o.OverlapBytes
}

// tracker follows the TCP connections to one server port.
type tracker struct {
	port  uint16
	open  map[[2]netip.AddrPort]*conn // by (client, server), the latest connection
	conns []*conn                     // all connections, in order of appearance
}

func newTracker(port uint16) *tracker {
	return &tracker{port: port, open: make(map[[2]netip.AddrPort]*conn)}
}

// add feeds one TCP packet to the tracker; packets not to or from the port
// are ignored.
func (t *tracker) add(p pcap.Packet) error {
	fromClient := p.Dst.Port() == t.port
	if !fromClient && p.Src.Port() != t.port {
		return nil
	}
	if p.Src.Port() == t.port && p.Dst.Port() == t.port {
		return fmt.Errorf("frame %d: both ports are the SOCKS port %d", p.Frame, t.port)
	}
	if p.Truncated {
		return fmt.Errorf("frame %d: TCP segment truncated by the capture's snap length", p.Frame)
	}
	key := [2]netip.AddrPort{p.Src, p.Dst}
	if !fromClient {
		key = [2]netip.AddrPort{p.Dst, p.Src}
	}
	c := t.open[key]
	isSYN := p.Flags&pcap.FlagSYN != 0
	// A client SYN with a new initial sequence number on a known address
	// pair starts a new connection (port reuse); a retransmitted SYN does not.
	if c == nil || (fromClient && isSYN && c.toServer.haveSYN && c.toServer.isn != p.Seq) {
		c = &conn{client: key[0], server: key[1]}
		t.open[key] = c
		t.conns = append(t.conns, c)
	}
	h := &c.toClient
	if fromClient {
		h = &c.toServer
	}
	seq := p.Seq
	if isSYN {
		if h.haveSYN && h.isn != p.Seq {
			return fmt.Errorf("frame %d: SYN with ISN %d after ISN %d on %v", p.Frame, p.Seq, h.isn, key)
		}
		h.haveSYN, h.isn = true, p.Seq
		seq++ // data on a SYN (TCP Fast Open) starts after the SYN
	}
	if len(p.Payload) > 0 {
		h.segs = append(h.segs, segment{frame: p.Frame, seq: seq, data: p.Payload})
	}
	return nil
}

// reassemble returns the byte stream of h ordered by sequence number,
// dropping bytes that were already delivered. It fails on a gap (lost
// bytes), on retransmitted bytes that differ from the first copy, and on
// data without a SYN to anchor the sequence space.
//
// Sequence numbers are taken relative to the ISN as signed 32-bit offsets,
// which is exact for streams under 2 GiB.
func (h *halfStream) reassemble() ([]byte, ReassemblyStats, error) {
	var st ReassemblyStats
	if len(h.segs) == 0 {
		return nil, st, nil
	}
	if !h.haveSYN {
		return nil, st, fmt.Errorf("frame %d: data without a SYN (capture started mid-connection)", h.segs[0].frame)
	}
	type placed struct {
		segment
		off int64 // stream offset of data[0]
	}
	segs := make([]placed, len(h.segs))
	for i, s := range h.segs {
		segs[i] = placed{s, int64(int32(s.seq - (h.isn + 1)))}
		if i > 0 && segs[i].off < segs[i-1].off {
			st.OutOfOrder++
		}
	}
	slices.SortStableFunc(segs, func(a, b placed) int { return cmp.Compare(a.off, b.off) })

	var out []byte
	for _, s := range segs {
		data, off := s.data, s.off
		if off < 0 { // bytes before the first data byte: nothing to deliver
			if -off >= int64(len(data)) {
				st.DupSegments++
				st.OverlapBytes += len(data)
				continue
			}
			data, off = data[-off:], 0
		}
		next := int64(len(out))
		if off > next {
			return nil, st, fmt.Errorf("frame %d: %d bytes missing before stream offset %d", s.frame, off-next, off)
		}
		// Bytes [off, next) were delivered already; a retransmission must
		// carry the same bytes.
		n := min(int64(len(data)), next-off)
		if !bytes.Equal(out[off:off+n], data[:n]) {
			return nil, st, fmt.Errorf("frame %d: retransmitted bytes at stream offset %d differ from the first copy", s.frame, off)
		}
		st.OverlapBytes += int(n)
		if n == int64(len(data)) {
			st.DupSegments++
			continue
		}
		out = append(out, data[n:]...)
	}
	return out, st, nil
}
