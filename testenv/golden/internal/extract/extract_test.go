package extract

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/gssocks/gssocks/testenv/golden/internal/pcap"
)

// pkt describes one synthetic packet over IPv4 loopback.
type pkt struct {
	udp          bool
	sport, dport uint16
	seq          uint32
	flags        byte
	payload      string
}

// capture builds a little-endian LINKTYPE_RAW pcap of pkts.
func capture(pkts ...pkt) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, uint32(pcap.LinkRaw))
	for _, p := range pkts {
		var l4 []byte
		l4 = binary.BigEndian.AppendUint16(l4, p.sport)
		l4 = binary.BigEndian.AppendUint16(l4, p.dport)
		proto := byte(pcap.ProtoTCP)
		if p.udp {
			proto = pcap.ProtoUDP
			l4 = binary.BigEndian.AppendUint16(l4, uint16(8+len(p.payload)))
			l4 = append(l4, 0, 0)
		} else {
			l4 = binary.BigEndian.AppendUint32(l4, p.seq)
			l4 = append(l4, 0, 0, 0, 0, 5<<4, p.flags, 0xff, 0xff, 0, 0, 0, 0)
		}
		l4 = append(l4, p.payload...)
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		frame := append(ip, l4...)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(len(frame)))
		b = le.AppendUint32(b, uint32(len(frame)))
		b = append(b, frame...)
	}
	return b
}

const (
	syn    = pcap.FlagSYN
	synack = pcap.FlagSYN | pcap.FlagACK
	ack    = pcap.FlagACK
)

// handshake opens a connection from client port cp with client ISN 100 and
// server ISN 500.
func handshake(cp uint16) []pkt {
	return []pkt{
		{sport: cp, dport: DefaultPort, seq: 100, flags: syn},
		{sport: DefaultPort, dport: cp, seq: 500, flags: synack},
	}
}

// clientBytes is a greeting, an auth message and level-0 raw bytes.
const clientBytes = "\x05\x01\x01" + "\x01\x01\x00\x04abcd" + "\x05\x01rawdata"

func TestReassemblyRepairs(t *testing.T) {
	// Segments of clientBytes: [0,5) [5,11) [11,20); sent out of order,
	// retransmitted, and with an overlapping resend.
	pkts := append(handshake(4000),
		pkt{sport: 4000, dport: DefaultPort, seq: 106, flags: ack, payload: clientBytes[5:11]},
		pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: clientBytes[0:5]},
		pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: clientBytes[0:5]},
		pkt{sport: 4000, dport: DefaultPort, seq: 109, flags: ack, payload: clientBytes[8:]},
		pkt{sport: DefaultPort, dport: 4000, seq: 501, flags: ack, payload: "\x05\x01\x01\x01\x00\x00"},
		pkt{sport: 4000, dport: 9, seq: 1, flags: ack, payload: "not SOCKS"},
	)
	c, sum, err := Capture("t", "desc", capture(pkts...), DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Streams) != 1 {
		t.Fatalf("%d streams", len(c.Streams))
	}
	s := c.Streams[0]
	if s.Client != "127.0.0.1:4000" || s.Server != "127.0.0.1:61080" {
		t.Errorf("client %s server %s", s.Client, s.Server)
	}
	wire, err := s.ToServer.Encode()
	if err != nil || string(wire) != clientBytes {
		t.Errorf("to_server reassembled to %q (%v), want %q", wire, err, clientBytes)
	}
	if string(s.ToServer.Raw) != "\x05\x01rawdata" || len(s.ToServer.Messages) != 1 {
		t.Errorf("to_server split: %+v", s.ToServer)
	}
	if len(s.ToClient.Messages) != 1 || len(s.ToClient.Messages[0].Token) != 0 {
		t.Errorf("to_client split: %+v", s.ToClient)
	}
	want := ReassemblyStats{OutOfOrder: 1, DupSegments: 1, OverlapBytes: 5 + 3}
	if sum.Reassembly != want {
		t.Errorf("stats %+v, want %+v", sum.Reassembly, want)
	}
}

func TestReassemblyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkts []pkt
		want string
		is   error
	}{
		{"gap", append(handshake(4000),
			pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x01"},
			pkt{sport: 4000, dport: DefaultPort, seq: 110, flags: ack, payload: "\x01\x01\x00\x00"},
		), "missing", nil},
		{"differing retransmission", append(handshake(4000),
			pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x01"},
			pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x02"},
		), "differ", nil},
		{"no SYN", []pkt{
			{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x01"},
		}, "without a SYN", nil},
		{"truncated final token", append(handshake(4000),
			pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x01\x01\x01\x02\xbe\x60\x82"},
		), "stream 0", golden.ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Capture("t", "", capture(tc.pkts...), DefaultPort)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("error %v, want one containing %q (is %v)", err, tc.want, tc.is)
			}
		})
	}
}

func TestPortReuse(t *testing.T) {
	pkts := append(handshake(4000),
		pkt{sport: 4000, dport: DefaultPort, seq: 100, flags: syn}, // retransmitted SYN: same connection
		pkt{sport: 4000, dport: DefaultPort, seq: 101, flags: ack, payload: "\x05\x01\x01"},
		pkt{sport: 4000, dport: DefaultPort, seq: 9000, flags: syn}, // new ISN: new connection
		pkt{sport: DefaultPort, dport: 4000, seq: 7000, flags: synack},
		pkt{sport: 4000, dport: DefaultPort, seq: 9001, flags: ack, payload: "\x05\x02\x00\x01"},
	)
	c, _, err := Capture("t", "", capture(pkts...), DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Streams) != 2 || len(c.Streams[0].ToServer.Greeting) != 3 || len(c.Streams[1].ToServer.Greeting) != 4 {
		t.Errorf("streams %+v", c.Streams)
	}
}

func TestDatagrams(t *testing.T) {
	const (
		toRelayTok   = "\x05\x04\x04\xffdata"
		fromRelayTok = "\x05\x04\x05\xffdata"
	)
	msg := func(tok string) string { return "\x01\x03\x00" + string(rune(len(tok))) + tok }
	pkts := []pkt{
		{udp: true, sport: 7000, dport: 8000, payload: msg(toRelayTok)},
		{udp: true, sport: 8001, dport: 53, payload: "plain"},                   // relay <-> destination: skipped
		{udp: true, sport: 8000, dport: 7000, payload: "\x01\x03\x00\x09short"}, // wrong length: skipped
		{udp: true, sport: 8000, dport: 7000, payload: msg(fromRelayTok)},
	}
	c, _, err := Capture("t", "", capture(pkts...), DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Datagrams) != 2 || !c.Datagrams[0].ToRelay || c.Datagrams[1].ToRelay ||
		c.Datagrams[0].Src != "127.0.0.1:7000" || string(c.Datagrams[1].Payload) != msg(fromRelayTok) {
		t.Errorf("datagrams %+v", c.Datagrams)
	}

	// An acceptor token in the first datagram contradicts the rule that the
	// client speaks first.
	_, _, err = Capture("t", "", capture(pkt{udp: true, sport: 8000, dport: 7000, payload: msg(fromRelayTok)}), DefaultPort)
	if err == nil || !strings.Contains(err.Error(), "SentByAcceptor") {
		t.Errorf("error %v, want a SentByAcceptor contradiction", err)
	}
}

func TestDescription(t *testing.T) {
	got, err := Description([]byte("# x.pcap: what it is\n# decoded by ...\n"))
	if err != nil || got != "x.pcap: what it is" {
		t.Errorf("Description = %q, %v", got, err)
	}
	if _, err := Description([]byte("no comment\n")); err == nil {
		t.Error("Description without a comment line succeeded")
	}
}
