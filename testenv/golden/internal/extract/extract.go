// Package extract turns the golden pcap captures into [golden.Capture]
// values and the JSON files the golden package embeds. It is shared by the
// cmd/extract tool and by the test that checks the committed testdata is
// up to date.
package extract

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/gssocks/gssocks/testenv/golden/internal/pcap"
)

// DefaultPort is the SOCKS server port used in the captures.
const DefaultPort = 61080

// KeyFiles are the files copied from <in>/keys to <out>/keys.
var KeyFiles = []string{"proxy.keytab", "krb5.conf"}

// Summary describes one extracted capture.
type Summary struct {
	Name       string
	LinkType   pcap.LinkType
	Frames     int
	Streams    int
	Messages   int // RFC 1961 messages, both directions of all streams
	RawBytes   int // bytes in Raw, both directions of all streams
	Datagrams  int
	Reassembly ReassemblyStats
}

// Capture extracts the SOCKS conversations on port from a pcap file's bytes.
func Capture(name, description string, pcapData []byte, port uint16) (*golden.Capture, Summary, error) {
	sum := Summary{Name: name}
	f, err := pcap.Parse(pcapData)
	if err != nil {
		return nil, sum, err
	}
	sum.LinkType, sum.Frames = f.LinkType, len(f.Records)

	tcp := newTracker(port)
	udp := newDatagramFilter()
	for _, rec := range f.Records {
		p, err := pcap.Decode(f.LinkType, rec)
		if errors.Is(err, pcap.ErrNotIP) {
			continue
		}
		if err != nil {
			return nil, sum, err
		}
		switch p.Proto {
		case pcap.ProtoTCP:
			err = tcp.add(p)
		case pcap.ProtoUDP:
			err = udp.add(p)
		}
		if err != nil {
			return nil, sum, err
		}
	}

	c := &golden.Capture{
		Name:        name,
		Description: description,
		SOCKSPort:   int(port),
		Streams:     []golden.Stream{},
		Datagrams:   udp.datagrams,
	}
	for i, cn := range tcp.conns {
		s, st, err := buildStream(cn)
		if err != nil {
			return nil, sum, fmt.Errorf("stream %d (%v): %w", i, cn.client, err)
		}
		c.Streams = append(c.Streams, s)
		sum.Reassembly.add(st)
		sum.Messages += len(s.ToServer.Messages) + len(s.ToClient.Messages)
		sum.RawBytes += len(s.ToServer.Raw) + len(s.ToClient.Raw)
	}
	sum.Streams, sum.Datagrams = len(c.Streams), len(c.Datagrams)
	return c, sum, nil
}

func buildStream(cn *conn) (golden.Stream, ReassemblyStats, error) {
	s := golden.Stream{Client: cn.client.String(), Server: cn.server.String()}
	var total ReassemblyStats
	for _, d := range []struct {
		name       string
		half       *halfStream
		fromClient bool
		dst        *golden.Direction
	}{
		{"to_server", &cn.toServer, true, &s.ToServer},
		{"to_client", &cn.toClient, false, &s.ToClient},
	} {
		data, st, err := d.half.reassemble()
		if err != nil {
			return s, total, fmt.Errorf("%s: %w", d.name, err)
		}
		total.add(st)
		if *d.dst, err = golden.SplitDirection(data, d.fromClient); err != nil {
			return s, total, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	return s, total, nil
}

// datagramFilter keeps the UDP datagrams that are complete RFC 1961
// encapsulated messages and works out which side is the SOCKS client: the
// first such datagram between two endpoints comes from the client.
type datagramFilter struct {
	client    map[[2]netip.AddrPort]netip.AddrPort // unordered endpoint pair -> client side
	datagrams []golden.Datagram
}

func newDatagramFilter() *datagramFilter {
	return &datagramFilter{client: make(map[[2]netip.AddrPort]netip.AddrPort), datagrams: []golden.Datagram{}}
}

func isEncapsulated(b []byte) bool {
	return len(b) >= 4 && b[0] == 0x01 && b[1] == golden.MtypEncap &&
		int(binary.BigEndian.Uint16(b[2:])) == len(b)-4
}

func (f *datagramFilter) add(p pcap.Packet) error {
	if p.Truncated {
		if len(p.Payload) >= 2 && p.Payload[0] == 0x01 && p.Payload[1] == golden.MtypEncap {
			return fmt.Errorf("frame %d: UDP datagram truncated by the capture's snap length", p.Frame)
		}
		return nil
	}
	if !isEncapsulated(p.Payload) {
		return nil
	}
	key := [2]netip.AddrPort{p.Src, p.Dst}
	if p.Dst.Compare(p.Src) < 0 {
		key = [2]netip.AddrPort{p.Dst, p.Src}
	}
	client, ok := f.client[key]
	if !ok {
		client = p.Src
		f.client[key] = client
	}
	toRelay := p.Src == client
	// RFC 4121 Wrap tokens (05 04) say who sent them: flag bit 0 is
	// SentByAcceptor, and the relay is the acceptor.
	if tok := p.Payload[4:]; len(tok) >= 3 && tok[0] == 0x05 && tok[1] == 0x04 {
		if byAcceptor := tok[2]&0x01 != 0; byAcceptor == toRelay {
			return fmt.Errorf("frame %d: datagram %v -> %v: SentByAcceptor=%t contradicts to_relay=%t",
				p.Frame, p.Src, p.Dst, byAcceptor, toRelay)
		}
	}
	f.datagrams = append(f.datagrams, golden.Datagram{
		Src:     p.Src.String(),
		Dst:     p.Dst.String(),
		ToRelay: toRelay,
		Payload: bytes.Clone(p.Payload),
	})
	return nil
}

// Marshal returns the JSON file content for c.
func Marshal(c *golden.Capture) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", c.Name, err)
	}
	return append(b, '\n'), nil
}

// Description returns the first comment line of a capture's text decode,
// without the leading "#".
func Description(txt []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(txt))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "#"); ok {
			return strings.TrimSpace(line), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no comment line")
}

// Files extracts every <inDir>/*.pcap (with its description from the .txt
// beside it) and returns the testdata tree to write: slash-separated paths
// relative to the output directory mapped to file contents, plus a summary
// per capture in name order.
func Files(inDir string, port uint16) (map[string][]byte, []Summary, error) {
	pcaps, err := filepath.Glob(filepath.Join(inDir, "*.pcap"))
	if err != nil {
		return nil, nil, err
	}
	if len(pcaps) == 0 {
		return nil, nil, fmt.Errorf("no .pcap files in %s", inDir)
	}
	slices.Sort(pcaps)
	files := make(map[string][]byte)
	var sums []Summary
	for _, p := range pcaps {
		name := strings.TrimSuffix(filepath.Base(p), ".pcap")
		content, sum, err := captureFile(p, name, port)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		files[name+".json"] = content
		sums = append(sums, sum)
	}
	for _, k := range KeyFiles {
		b, err := os.ReadFile(filepath.Join(inDir, "keys", k))
		if err != nil {
			return nil, nil, err
		}
		files["keys/"+k] = b
	}
	return files, sums, nil
}

func captureFile(pcapPath, name string, port uint16) ([]byte, Summary, error) {
	txt, err := os.ReadFile(strings.TrimSuffix(pcapPath, ".pcap") + ".txt")
	if err != nil {
		return nil, Summary{}, err
	}
	desc, err := Description(txt)
	if err != nil {
		return nil, Summary{}, fmt.Errorf("description: %w", err)
	}
	data, err := os.ReadFile(pcapPath)
	if err != nil {
		return nil, Summary{}, err
	}
	c, sum, err := Capture(name, desc, data, port)
	if err != nil {
		return nil, sum, err
	}
	b, err := Marshal(c)
	return b, sum, err
}

// Write writes files (as returned by Files) under outDir.
func Write(outDir string, files map[string][]byte) error {
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(outDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[rel], 0o644); err != nil {
			return err
		}
	}
	return nil
}
