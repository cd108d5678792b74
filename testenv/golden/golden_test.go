package golden_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/testenv/golden"
)

// load loads a capture or fails the test.
func load(t *testing.T, name string) *golden.Capture {
	t.Helper()
	c, err := golden.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mtyps returns the message types of d in order.
func mtyps(d golden.Direction) []byte {
	var out []byte
	for _, m := range d.Messages {
		out = append(out, m.Mtyp)
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfc4121Plain returns the plaintext of an unsealed RFC 4121 Wrap token
// (16-byte header, data, EC-byte checksum; RRC is 0 in these captures).
func rfc4121Plain(t *testing.T, tok []byte) []byte {
	t.Helper()
	if len(tok) < 16 || tok[0] != 0x05 || tok[1] != 0x04 || tok[2]&0x02 != 0 {
		t.Fatalf("not an unsealed RFC 4121 Wrap token: % x", tok[:min(len(tok), 16)])
	}
	ec, rrc := int(tok[4])<<8|int(tok[5]), int(tok[6])<<8|int(tok[7])
	if rrc != 0 || len(tok) < 16+ec {
		t.Fatalf("unexpected EC %d / RRC %d in %d-byte token", ec, rrc, len(tok))
	}
	return tok[16 : len(tok)-ec]
}

var wantNames = []string{
	"curl-7.68.0-clear",
	"curl-7.68.0-nec",
	"curl-8.21.0-conf",
	"dante-clear",
	"dante-confidentiality",
	"dante-integrity",
	"dante-krb5-aes128-cts-hmac-sha1-96",
	"dante-krb5-aes256-cts-hmac-sha384-192",
	"dante-krb5-rc4-hmac",
	"dante-reject-level",
	"dante-reject-user",
	"dante-udp-confidentiality",
	"dante-udp-integrity",
}

func TestNames(t *testing.T) {
	if got := golden.Names(); !slices.Equal(got, wantNames) {
		t.Errorf("Names() = %q\nwant %q", got, wantNames)
	}
}

// TestEveryCaptureLoads checks invariants that hold for all captures.
func TestEveryCaptureLoads(t *testing.T) {
	for _, name := range golden.Names() {
		t.Run(name, func(t *testing.T) {
			c := load(t, name)
			if c.Name != name || c.SOCKSPort != 61080 {
				t.Errorf("name %q port %d", c.Name, c.SOCKSPort)
			}
			if !strings.HasPrefix(c.Description, name+".pcap: ") {
				t.Errorf("description %q", c.Description)
			}
			if len(c.Streams) == 0 {
				t.Fatal("no streams")
			}
			for i, s := range c.Streams {
				if !strings.HasSuffix(s.Server, ":61080") || strings.HasSuffix(s.Client, ":61080") {
					t.Errorf("stream %d: client %s server %s", i, s.Client, s.Server)
				}
				if g := s.ToServer.Greeting; len(g) < 3 || g[0] != 5 || len(g) != 2+int(g[1]) || !slices.Contains(g[2:], 0x01) {
					t.Errorf("stream %d: client greeting % x does not offer GSSAPI", i, g)
				}
				if g := s.ToClient.Greeting; !bytes.Equal(g, []byte{5, 1}) {
					t.Errorf("stream %d: server greeting % x, want 05 01", i, g)
				}
				for fromClient, d := range map[bool]golden.Direction{true: s.ToServer, false: s.ToClient} {
					if m := mtyps(d); len(m) == 0 || m[0] != golden.MtypAuth {
						t.Errorf("stream %d: messages %v do not start with authentication", i, m)
					}
					// The stored form is canonical: it re-encodes to bytes
					// that split back into the same Direction.
					wire, err := d.Encode()
					if err != nil {
						t.Fatalf("stream %d: Encode: %v", i, err)
					}
					again, err := golden.SplitDirection(wire, fromClient)
					if err != nil {
						t.Fatalf("stream %d: re-split: %v", i, err)
					}
					if !equalDirection(again, d) {
						t.Errorf("stream %d: Encode/SplitDirection round trip differs", i)
					}
				}
			}
			for i, d := range c.Datagrams {
				p := d.Payload
				if len(p) < 4 || p[0] != 1 || p[1] != 3 || int(p[2])<<8|int(p[3]) != len(p)-4 {
					t.Errorf("datagram %d: payload % x... is not one 01 03 message", i, p[:min(len(p), 8)])
				}
			}
		})
	}
}

func equalDirection(a, b golden.Direction) bool {
	if !bytes.Equal(a.Greeting, b.Greeting) || !bytes.Equal(a.Raw, b.Raw) || len(a.Messages) != len(b.Messages) {
		return false
	}
	for i := range a.Messages {
		if a.Messages[i].Mtyp != b.Messages[i].Mtyp || !bytes.Equal(a.Messages[i].Token, b.Messages[i].Token) {
			return false
		}
	}
	return true
}

func TestLoadErrors(t *testing.T) {
	for _, name := range []string{"", "no-such-capture", "../golden", "keys/krb5"} {
		if _, err := golden.Load(name); err == nil {
			t.Errorf("Load(%q) succeeded", name)
		}
	}
	if _, err := golden.Load("no-such-capture"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing capture: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadReturnsFreshCopy(t *testing.T) {
	a := load(t, "dante-clear")
	a.Streams[0].ToServer.Messages[0].Token[0] ^= 0xff
	if b := load(t, "dante-clear"); b.Streams[0].ToServer.Messages[0].Token[0] != 0x60 {
		t.Error("modifying one loaded capture changed another")
	}
}

func TestKeys(t *testing.T) {
	kt := golden.Keytab()
	// MIT keytab format version 0x0502.
	if len(kt) != 1887 || kt[0] != 0x05 || kt[1] != 0x02 {
		t.Errorf("keytab: %d bytes starting % x", len(kt), kt[:min(len(kt), 2)])
	}
	kt[0] = 0
	if golden.Keytab()[0] != 0x05 {
		t.Error("Keytab returns shared memory")
	}
	if conf := string(golden.Krb5Conf()); !strings.Contains(conf, "EXAMPLE.TEST") {
		t.Errorf("krb5.conf does not mention the EXAMPLE.TEST realm:\n%s", conf)
	}
}

// TestDanteIntegrity checks facts read by hand from dante-integrity.txt.
func TestDanteIntegrity(t *testing.T) {
	c := load(t, "dante-integrity")
	if len(c.Streams) != 2 || len(c.Datagrams) != 0 {
		t.Fatalf("%d streams, %d datagrams; want 2, 0", len(c.Streams), len(c.Datagrams))
	}
	s := c.Streams[0]
	if s.Client != "127.0.0.1:47180" || s.Server != "127.0.0.1:61080" {
		t.Errorf("stream 0: %s -> %s", s.Client, s.Server)
	}
	if !bytes.Equal(s.ToServer.Greeting, []byte{5, 1, 1}) {
		t.Errorf("client greeting % x", s.ToServer.Greeting)
	}
	if got, want := mtyps(s.ToServer), []byte{1, 2, 3, 3}; !bytes.Equal(got, want) {
		t.Errorf("to_server mtyps %v, want %v", got, want)
	}
	if got, want := mtyps(s.ToClient), []byte{1, 2, 3, 3, 3}; !bytes.Equal(got, want) {
		t.Errorf("to_client mtyps %v, want %v", got, want)
	}
	apReq := s.ToServer.Messages[0].Token
	if len(apReq) != 702 || !bytes.HasPrefix(apReq, unhex(t, "60 82 02 ba 06 09 2a 86 48 86 f7 12 01 02 02 01 00")) {
		t.Errorf("AP-REQ: %d bytes starting % x", len(apReq), apReq[:min(len(apReq), 17)])
	}
	apRep := s.ToClient.Messages[0].Token
	if len(apRep) != 156 || !bytes.HasPrefix(apRep, unhex(t, "60 81 99 06 09 2a 86 48 86 f7 12 01 02 02 02 00")) {
		t.Errorf("AP-REP: %d bytes starting % x", len(apRep), apRep[:min(len(apRep), 16)])
	}
	for _, d := range []golden.Direction{s.ToServer, s.ToClient} {
		if tok := d.Messages[1].Token; len(tok) != 29 || !bytes.Equal(rfc4121Plain(t, tok), []byte{1}) {
			t.Errorf("protection-level token (%d bytes) is not integrity(1)", len(tok))
		}
	}
	if got, want := rfc4121Plain(t, s.ToServer.Messages[2].Token), unhex(t, "05 01 00 01 7f 00 00 01 ee 99"); !bytes.Equal(got, want) {
		t.Errorf("SOCKS request % x, want % x", got, want)
	}
	if got, want := rfc4121Plain(t, s.ToClient.Messages[2].Token), unhex(t, "05 00 00 01 7f 00 00 01 86 63"); !bytes.Equal(got, want) {
		t.Errorf("SOCKS reply % x, want % x", got, want)
	}

	// The rand-100k.bin download: Dante fills tokens up to the 16-bit limit.
	big := c.Streams[1].ToClient.Messages
	if got, want := tokenLens(big), []int{156, 29, 38, 232, 65531, 61, 36892}; !slices.Equal(got, want) {
		t.Errorf("stream 1 to_client token lengths %v, want %v", got, want)
	}
	if big[4].Mtyp != golden.MtypEncap || !bytes.HasPrefix(big[4].Token, []byte{0x05, 0x04, 0x05}) {
		t.Errorf("65531-byte message: mtyp %d, token starts % x", big[4].Mtyp, big[4].Token[:3])
	}
}

func tokenLens(ms []golden.Message) []int {
	var out []int
	for _, m := range ms {
		out = append(out, len(m.Token))
	}
	return out
}

func TestDanteUDPIntegrity(t *testing.T) {
	c := load(t, "dante-udp-integrity")
	if len(c.Streams) != 1 || len(c.Datagrams) != 6 {
		t.Fatalf("%d streams, %d datagrams; want 1, 6", len(c.Streams), len(c.Datagrams))
	}
	s := c.Streams[0]
	// UDP ASSOCIATE from the client's UDP port 48486 (0xbd66); the reply
	// names the relay port 37306 (0x91ba).
	if got, want := rfc4121Plain(t, s.ToServer.Messages[2].Token), unhex(t, "05 03 00 01 7f 00 00 01 bd 66"); !bytes.Equal(got, want) {
		t.Errorf("UDP ASSOCIATE request % x, want % x", got, want)
	}
	if got, want := rfc4121Plain(t, s.ToClient.Messages[2].Token), unhex(t, "05 00 00 01 7f 00 00 01 91 ba"); !bytes.Equal(got, want) {
		t.Errorf("UDP ASSOCIATE reply % x, want % x", got, want)
	}
	wantLens := []int{53, 58, 153, 158, 253, 258} // udp.len minus the 8-byte header
	for i, d := range c.Datagrams {
		toRelay := i%2 == 0
		src, dst := "127.0.0.1:48486", "127.0.0.1:37306"
		if !toRelay {
			src, dst = dst, src
		}
		if d.ToRelay != toRelay || d.Src != src || d.Dst != dst || len(d.Payload) != wantLens[i] {
			t.Errorf("datagram %d: %s -> %s to_relay=%t %d bytes; want %s -> %s to_relay=%t %d bytes",
				i, d.Src, d.Dst, d.ToRelay, len(d.Payload), src, dst, toRelay, wantLens[i])
		}
		// Initiator tokens to the relay, acceptor (flag 0x01) tokens back.
		flags := byte(0x04)
		if !toRelay {
			flags = 0x05
		}
		if !bytes.HasPrefix(d.Payload[4:], []byte{0x05, 0x04, flags}) {
			t.Errorf("datagram %d: token starts % x", i, d.Payload[4:7])
		}
	}
	// The first datagram carries a SOCKS UDP header to 127.0.0.1:61083.
	if got, want := rfc4121Plain(t, c.Datagrams[0].Payload[4:]), []byte("\x00\x00\x00\x01\x7f\x00\x00\x01\xee\x9bdatagram 0 "); !bytes.Equal(got, want) {
		t.Errorf("first datagram plaintext %q, want %q", got, want)
	}
}

func TestDanteUDPConfidentiality(t *testing.T) {
	c := load(t, "dante-udp-confidentiality")
	var toRelay int
	for _, d := range c.Datagrams {
		if d.ToRelay {
			toRelay++
		}
	}
	if len(c.Datagrams) != 6 || toRelay != 3 {
		t.Errorf("%d datagrams, %d to the relay; want 6, 3", len(c.Datagrams), toRelay)
	}
}

func TestClearFlows(t *testing.T) {
	for _, tc := range []struct {
		name         string
		levelToken   int // length of the protection-level token
		rawToServer  int
		requestPlain []byte
	}{
		{"curl-7.68.0-clear", 29, 102, nil},
		{"curl-7.68.0-nec", 1, 102, nil},
		{"dante-clear", 29, 98, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := load(t, tc.name).Streams[0]
			for _, d := range []golden.Direction{s.ToServer, s.ToClient} {
				if got := mtyps(d); !bytes.Equal(got, []byte{1, 2}) {
					t.Fatalf("mtyps %v, want [1 2]", got)
				}
				level := d.Messages[1].Token
				if len(level) != tc.levelToken {
					t.Errorf("protection-level token %d bytes, want %d", len(level), tc.levelToken)
				}
				if len(level) == 1 && level[0] != 0 || len(level) > 1 && !bytes.Equal(rfc4121Plain(t, level), []byte{0}) {
					t.Errorf("protection level is not clear(0): % x", level)
				}
			}
			req, rep := s.ToServer.Raw, s.ToClient.Raw
			if len(req) != tc.rawToServer || !bytes.HasPrefix(req, unhex(t, "05 01 00 01 7f 00 00 01 ee 99")) ||
				!bytes.HasPrefix(req[10:], []byte("GET /hello.txt HTTP/1.1\r\n")) {
				t.Errorf("to_server raw: %d bytes %q", len(req), req)
			}
			if len(rep) != 10+224 || !bytes.HasPrefix(rep, unhex(t, "05 00 00 01 7f 00 00 01")) ||
				!bytes.HasPrefix(rep[10:], []byte("HTTP/1.0 200 OK\r\n")) {
				t.Errorf("to_client raw: %d bytes %q", len(rep), rep)
			}
		})
	}
}

// TestCurl821Conf: curl asks for confidentiality, then sends the SOCKS
// request unencapsulated and gets no answer.
func TestCurl821Conf(t *testing.T) {
	s := load(t, "curl-8.21.0-conf").Streams[0]
	if got := rfc4121Plain(t, s.ToServer.Messages[1].Token); !bytes.Equal(got, []byte{2}) {
		t.Errorf("requested level % x, want 02", got)
	}
	if got := rfc4121Plain(t, s.ToClient.Messages[1].Token); !bytes.Equal(got, []byte{2}) {
		t.Errorf("granted level % x, want 02", got)
	}
	if want := unhex(t, "05 01 00 01 7f 00 00 01 ee 99"); !bytes.Equal(s.ToServer.Raw, want) {
		t.Errorf("to_server raw % x, want % x", s.ToServer.Raw, want)
	}
	if len(s.ToClient.Raw) != 0 || len(s.ToClient.Messages) != 2 {
		t.Errorf("server sent more than the handshake: %v, %d raw bytes", mtyps(s.ToClient), len(s.ToClient.Raw))
	}
}

// TestDanteRejectLevel: the server does not answer a protection level it
// does not allow; it closes the connection after the AP-REP (no 01 ff).
func TestDanteRejectLevel(t *testing.T) {
	c := load(t, "dante-reject-level")
	if len(c.Streams) != 1 {
		t.Fatalf("%d streams", len(c.Streams))
	}
	s := c.Streams[0]
	if got := mtyps(s.ToServer); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("to_server mtyps %v, want [1 2]", got)
	}
	if got := rfc4121Plain(t, s.ToServer.Messages[1].Token); !bytes.Equal(got, []byte{2}) {
		t.Errorf("requested level % x, want 02", got)
	}
	if got := mtyps(s.ToClient); !bytes.Equal(got, []byte{1}) {
		t.Errorf("to_client mtyps %v, want [1]", got)
	}
	if len(s.ToServer.Raw)+len(s.ToClient.Raw) != 0 {
		t.Error("unexpected raw bytes")
	}
}

// TestDanteRejectUser: GSS-API succeeds at integrity, then the SOCKS reply
// is REP=2 (connection not allowed by ruleset).
func TestDanteRejectUser(t *testing.T) {
	s := load(t, "dante-reject-user").Streams[0]
	for _, d := range []golden.Direction{s.ToServer, s.ToClient} {
		if got := mtyps(d); !bytes.Equal(got, []byte{1, 2, 3}) {
			t.Errorf("mtyps %v, want [1 2 3]", got)
		}
	}
	if got, want := rfc4121Plain(t, s.ToClient.Messages[2].Token), unhex(t, "05 02 00 01 7f 00 00 01 ee 99"); !bytes.Equal(got, want) {
		t.Errorf("SOCKS reply % x, want % x", got, want)
	}
}

// TestRC4 checks that the rc4-hmac capture uses RFC 1964/4757 framing.
func TestRC4(t *testing.T) {
	s := load(t, "dante-krb5-rc4-hmac").Streams[0]
	wrap := unhex(t, "60 2d 06 09 2a 86 48 86 f7 12 01 02 02 02 01 11 00 ff ff")
	if tok := s.ToServer.Messages[1].Token; len(tok) != 47 || !bytes.HasPrefix(tok, wrap) {
		t.Errorf("protection-level token: %d bytes % x", len(tok), tok[:min(len(tok), 19)])
	}
}
