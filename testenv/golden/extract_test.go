package golden_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/gssocks/gssocks/testenv/golden/internal/extract"
)

// sharedGolden returns the directory with the source captures,
// "../shared/golden" relative to the module root, or skips the test when it
// does not exist.
func sharedGolden(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared", "golden")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("source captures not available: %v", err)
	}
	return shared
}

// TestTestdataUpToDate checks that testdata/ is exactly what the extractor
// produces from the source captures.
func TestTestdataUpToDate(t *testing.T) {
	want, _, err := extract.Files(sharedGolden(t), extract.DefaultPort)
	if err != nil {
		t.Fatal(err)
	}
	const hint = "; run: go run ./testenv/golden/cmd/extract -in ../shared/golden -out testenv/golden/testdata"
	var have []string
	err = filepath.WalkDir("testdata", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == filepath.Join("testdata", "fuzz") {
				return filepath.SkipDir // go test -fuzz corpus
			}
			return nil
		}
		rel, err := filepath.Rel("testdata", p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		have = append(have, rel)
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if w, ok := want[rel]; !ok {
			t.Errorf("testdata/%s is not produced by the extractor%s", rel, hint)
		} else if !bytes.Equal(got, w) {
			t.Errorf("testdata/%s is stale%s", rel, hint)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range want {
		if !slices.Contains(have, rel) {
			t.Errorf("testdata/%s is missing%s", rel, hint)
		}
	}
}

// txtDirection is what decode-socks-gss.py printed for one direction.
type txtDirection struct {
	greeting    []byte
	listed      [][2]int    // (mtyp, len) of the "msg" and "data" lines, in order
	furtherData int         // mtyp=3 messages after the first one
	hist        map[int]int // token length -> count, top 6 of the further data
	maxToken    int
	rawLen      int // unencapsulated / trailing bytes
}

type txtStream struct {
	client string
	total  [2]int // client->server, server->client
	dirs   [2]txtDirection
}

type txtDatagram struct {
	srcPort, dstPort string
	payloadLen       int
	prefix           []byte
}

var (
	reStream   = regexp.MustCompile(`^=== tcp\.stream \d+: client (\S+) <-> .*client->server (\d+) B, server->client (\d+) B$`)
	reGreeting = regexp.MustCompile(`^  (?:greeting|method selection): .*raw: ([0-9a-f ]+)$`)
	reMsg      = regexp.MustCompile(`^  (?:msg|data)\s+ver=1 mtyp=(\d)\S* len=(\d+)`)
	rePhase    = regexp.MustCompile(`^  data phase: (\d+) further .*\(len x count, top 6\): (.*); max token (\d+)$`)
	reUnencap  = regexp.MustCompile(`^  unencapsulated \(level 0\): .*raw: ([0-9a-f ]+)$`)
	reRawCount = regexp.MustCompile(`^  (?:unencapsulated data: (\d+) bytes|(\d+) trailing bytes|(\d+) bytes not parsed|then (\d+) bytes unencapsulated)`)
	reUDP      = regexp.MustCompile(`^  frame \d+ (\d+)->(\d+) udp\.len=(\d+)\s+([0-9a-f]+)$`)
)

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func parseTxt(t *testing.T, path string) ([]*txtStream, []txtDatagram) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		streams []*txtStream
		dgrams  []txtDatagram
		cur     *txtDirection
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := reStream.FindStringSubmatch(line); m != nil {
			streams = append(streams, &txtStream{client: m[1], total: [2]int{atoi(t, m[2]), atoi(t, m[3])}})
			continue
		}
		switch line {
		case " client -> server:":
			cur = &streams[len(streams)-1].dirs[0]
			continue
		case " server -> client:":
			cur = &streams[len(streams)-1].dirs[1]
			continue
		}
		if m := reUDP.FindStringSubmatch(line); m != nil {
			prefix, err := hex.DecodeString(m[4])
			if err != nil {
				t.Fatal(err)
			}
			dgrams = append(dgrams, txtDatagram{m[1], m[2], atoi(t, m[3]) - 8, prefix})
			continue
		}
		if cur == nil {
			continue
		}
		if m := reGreeting.FindStringSubmatch(line); m != nil {
			cur.greeting = unhex(t, m[1])
		} else if m := reMsg.FindStringSubmatch(line); m != nil {
			cur.listed = append(cur.listed, [2]int{atoi(t, m[1]), atoi(t, m[2])})
		} else if m := rePhase.FindStringSubmatch(line); m != nil {
			cur.furtherData, cur.maxToken = atoi(t, m[1]), atoi(t, m[3])
			cur.hist = make(map[int]int)
			for _, e := range strings.Split(m[2], ", ") {
				l, c, _ := strings.Cut(e, "x")
				cur.hist[atoi(t, l)] = atoi(t, c)
			}
		} else if m := reUnencap.FindStringSubmatch(line); m != nil {
			cur.rawLen += len(unhex(t, m[1]))
		} else if m := reRawCount.FindStringSubmatch(line); m != nil {
			for _, g := range m[1:] {
				if g != "" {
					cur.rawLen += atoi(t, g)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return streams, dgrams
}

// TestTextDecodesAgree compares every capture with the independent tshark
// based decode beside its pcap: byte totals, greetings, the (mtyp, length)
// of each listed message, the data-phase count and length histogram, raw
// byte counts and the UDP datagrams.
func TestTextDecodesAgree(t *testing.T) {
	shared := sharedGolden(t)
	for _, name := range golden.Names() {
		t.Run(name, func(t *testing.T) {
			c := load(t, name)
			streams, dgrams := parseTxt(t, filepath.Join(shared, name+".txt"))
			if len(streams) != len(c.Streams) {
				t.Fatalf("%d streams in the decode, %d extracted", len(streams), len(c.Streams))
			}
			for i, ts := range streams {
				s := c.Streams[i]
				if s.Client != ts.client {
					t.Errorf("stream %d: client %s, decode says %s", i, s.Client, ts.client)
				}
				for j, d := range []golden.Direction{s.ToServer, s.ToClient} {
					compareDirection(t, name+"/"+strconv.Itoa(i)+[]string{"/to_server", "/to_client"}[j], d, ts.dirs[j], ts.total[j])
				}
			}
			if len(dgrams) != len(c.Datagrams) {
				t.Fatalf("%d datagrams in the decode, %d extracted", len(dgrams), len(c.Datagrams))
			}
			for i, td := range dgrams {
				d := c.Datagrams[i]
				if !strings.HasSuffix(d.Src, ":"+td.srcPort) || !strings.HasSuffix(d.Dst, ":"+td.dstPort) ||
					len(d.Payload) != td.payloadLen || !bytes.HasPrefix(d.Payload, td.prefix) {
					t.Errorf("datagram %d: %s -> %s %d bytes, decode says ports %s -> %s %d bytes",
						i, d.Src, d.Dst, len(d.Payload), td.srcPort, td.dstPort, td.payloadLen)
				}
			}
		})
	}
}

func compareDirection(t *testing.T, where string, d golden.Direction, td txtDirection, total int) {
	t.Helper()
	wire, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if td.greeting == nil || len(td.listed) == 0 {
		t.Fatalf("%s: decode not understood (no greeting or messages parsed)", where)
	}
	if len(wire) != total {
		t.Errorf("%s: %d bytes, decode says %d", where, len(wire), total)
	}
	if !bytes.Equal(d.Greeting, td.greeting) {
		t.Errorf("%s: greeting % x, decode says % x", where, d.Greeting, td.greeting)
	}
	if len(d.Raw) != td.rawLen {
		t.Errorf("%s: %d raw bytes, decode says %d", where, len(d.Raw), td.rawLen)
	}
	if len(d.Messages) < len(td.listed) {
		t.Fatalf("%s: %d messages, decode lists %d", where, len(d.Messages), len(td.listed))
	}
	for k, l := range td.listed {
		if m := d.Messages[k]; int(m.Mtyp) != l[0] || len(m.Token) != l[1] {
			t.Errorf("%s: message %d is mtyp %d len %d, decode says mtyp %d len %d", where, k, m.Mtyp, len(m.Token), l[0], l[1])
		}
	}
	// The decoder counts the mtyp=3 messages after the first one as data.
	first3 := slices.IndexFunc(d.Messages, func(m golden.Message) bool { return m.Mtyp == golden.MtypEncap })
	var further []int
	if first3 >= 0 {
		for _, m := range d.Messages[first3+1:] {
			further = append(further, len(m.Token))
		}
	}
	if len(further) != td.furtherData {
		t.Errorf("%s: %d further data messages, decode says %d", where, len(further), td.furtherData)
	}
	if len(further) == 0 {
		return
	}
	hist := make(map[int]int)
	for _, l := range further {
		hist[l]++
	}
	for l, n := range td.hist {
		if hist[l] != n {
			t.Errorf("%s: %d data tokens of %d bytes, decode says %d", where, hist[l], l, n)
		}
	}
	if len(hist) <= 6 && len(hist) != len(td.hist) {
		t.Errorf("%s: data token histogram %v, decode says %v", where, hist, td.hist)
	}
	if m := slices.Max(further); m != td.maxToken {
		t.Errorf("%s: max data token %d, decode says %d", where, m, td.maxToken)
	}
}
