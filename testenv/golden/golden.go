// Package golden gives tests access to real SOCKS5 + GSS-API (RFC 1961)
// conversations captured between Dante/curl clients and a Dante server.
//
// The captures live in /work/shared/golden as pcap files; the extractor in
// ./cmd/extract reassembles them into one JSON file per capture under
// testdata/, which this package embeds:
//
//	go run ./testenv/golden/cmd/extract -in ../shared/golden -out testenv/golden/testdata
//
// Each TCP connection to the SOCKS port becomes a [Stream] whose two
// [Direction]s are split into the SOCKS5 greeting, the RFC 1961 messages
// (ver 0x01, mtyp, 2-byte length, token; "01 ff" abort without length) and
// any trailing bytes that are not RFC 1961 framing (the raw SOCKS
// request/reply and data of a level-0 "clear" flow). UDP relay traffic
// between the SOCKS client and the server's relay port is kept as
// [Datagram]s. The Kerberos keytab of the proxy principal and the krb5.conf
// of the capture realm are embedded too, so tests can accept the recorded
// AP-REQs and unwrap the recorded tokens.
package golden

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Message is one RFC 1961 message. Mtyp is 1 (authentication), 2
// (protection-level negotiation), 3 (encapsulated data) or 0xff (abort,
// which has no length and an empty token).
type Message struct {
	Mtyp  byte   `json:"mtyp"`
	Token []byte `json:"token"`
}

// RFC 1961 message types.
const (
	MtypAuth       byte = 0x01
	MtypProtection byte = 0x02
	MtypEncap      byte = 0x03
	MtypAbort      byte = 0xff
)

// Direction is everything one side of a TCP connection sent.
type Direction struct {
	// Greeting is the SOCKS5 method negotiation: "05 n methods..." from the
	// client, "05 method" from the server.
	Greeting []byte `json:"greeting"`
	// Messages are the RFC 1961 messages in order.
	Messages []Message `json:"messages"`
	// Raw holds the bytes after the last RFC 1961 message that are not RFC
	// 1961 framing: for level 0 the SOCKS request/reply and the relayed
	// data, for curl 8.21 the unencapsulated request it sends after asking
	// for confidentiality.
	Raw []byte `json:"raw,omitempty"`
}

// Stream is one TCP connection to the SOCKS port.
type Stream struct {
	Client   string    `json:"client"` // ip:port
	Server   string    `json:"server"` // ip:port
	ToServer Direction `json:"to_server"`
	ToClient Direction `json:"to_client"`
}

// Datagram is one UDP datagram between the SOCKS client and the server's
// UDP relay port.
type Datagram struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	ToRelay bool   `json:"to_relay"` // sent by the SOCKS client to the relay
	Payload []byte `json:"payload"`  // the whole UDP payload: 01 03 len token
}

// Capture is one recorded session.
type Capture struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	SOCKSPort   int    `json:"socks_port"`
	// Streams are the TCP connections to the SOCKS port in the order they
	// were opened; the clients' own traffic to the origin server is left
	// out.
	Streams []Stream `json:"streams"`
	// Datagrams are the UDP datagrams between SOCKS clients and the relay,
	// in capture order. A datagram is kept when its payload is exactly one
	// complete RFC 1961 encapsulated message (01 03, then a length equal to
	// the rest of the payload); that excludes the relay's unencapsulated
	// traffic with the destination. The first such datagram between two
	// endpoints is taken to come from the SOCKS client (the relay never
	// speaks first), which the extractor cross-checks against the
	// SentByAcceptor flag of RFC 4121 tokens.
	Datagrams []Datagram `json:"datagrams"`
}

// Only the capture files are embedded as a tree: go test -fuzz may add a
// corpus under testdata/fuzz, which is not capture data.
//
//go:embed testdata/*.json
var testdata embed.FS

//go:embed testdata/keys/proxy.keytab
var proxyKeytab []byte

//go:embed testdata/keys/krb5.conf
var krb5Conf []byte

// Load returns the capture called name (the pcap's base name without
// extension, e.g. "dante-integrity"). Every call decodes a fresh copy.
func Load(name string) (*Capture, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("golden: invalid capture name %q", name)
	}
	data, err := testdata.ReadFile(path.Join("testdata", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("golden: load %q: %w", name, err)
	}
	c := new(Capture)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("golden: decode %q: %w", name, err)
	}
	return c, nil
}

// Names returns the names of all embedded captures, sorted.
func Names() []string {
	entries, err := fs.ReadDir(testdata, "testdata")
	if err != nil {
		panic(fmt.Sprintf("golden: embedded testdata unreadable: %v", err))
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && !e.IsDir() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Keytab returns a copy of the keytab of the SOCKS server's principal used
// in the captures.
func Keytab() []byte { return bytes.Clone(proxyKeytab) }

// Krb5Conf returns a copy of the krb5.conf of the captures' realm.
func Krb5Conf() []byte { return bytes.Clone(krb5Conf) }
