package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestScanHead pins the bounds of a request head: each refusal, and the
// length of an accepted head (the body stays unread).
func TestScanHead(t *testing.T) {
	lim := headLimits{MaxBytes: 256, MaxLine: 64, MaxFields: 3}
	for _, tc := range []struct {
		name string
		in   string
		n    int
		err  error
	}{
		{"complete", "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\nBODY", 35, nil},
		{"bare LF", "GET http://a/ HTTP/1.1\nHost: a\n\n", 32, nil},
		{"incomplete", "CONNECT a:1 HTTP/1.1\r\nHost: a", 0, errHeadIncomplete},
		{"empty", "", 0, errHeadIncomplete},
		{"line too long", "GET /" + strings.Repeat("a", 64) + " HTTP/1.1\r\n\r\n", 0, errHeadTooLarge},
		{"unterminated line too long", strings.Repeat("a", 65), 0, errHeadTooLarge},
		{"too many fields", "GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n", 0, errTooManyFields},
		{"three fields", "GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n", 36, nil},
		{"head too large", "GET / HTTP/1.1\r\n" + strings.Repeat("x: "+strings.Repeat("y", 58)+"\r\n", 3) + strings.Repeat("z", 60), 0, errHeadTooLarge},
		{"bare CR", "GET / HTTP/1.1\r\na: 1\rb: 2\r\n\r\n", 0, errBadHead},
		{"NUL", "GET / HTTP/1.1\r\na: \x00\r\n\r\n", 0, errBadHead},
		{"empty start line", "\r\nGET / HTTP/1.1\r\n\r\n", 0, errBadHead},
		{"obs-fold", "GET / HTTP/1.1\r\na: 1\r\n b\r\n\r\n", 0, errBadHead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := scanHead([]byte(tc.in), lim)
			if !errors.Is(err, tc.err) || n != tc.n {
				t.Fatalf("scanHead = %d, %v; want %d, %v", n, err, tc.n, tc.err)
			}
		})
	}
}

// TestReadHeadFromStream: a head arriving in pieces is waited for; the
// bytes after it stay in the reader.
func TestReadHeadFromStream(t *testing.T) {
	lim := headLimits{MaxBytes: 1024, MaxLine: 512, MaxFields: 10}
	r := &trickle{data: []byte("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\x16\x03\x01")}
	br := bufio.NewReaderSize(r, lim.MaxBytes)
	req, err := readRequest(br, lim)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodConnect || req.RequestURI != "a.test:443" {
		t.Fatalf("request %s %s", req.Method, req.RequestURI)
	}
	// What the reader took past the head is the start of the payload.
	if rest, _ := br.Peek(br.Buffered()); !bytes.HasPrefix([]byte("\x16\x03\x01"), rest) {
		t.Fatalf("after the head: % x", rest)
	}
}

// trickle returns its data three bytes at a time.
type trickle struct{ data []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("EOF")
	}
	n := copy(p[:min(len(p), 3)], r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestParseProxyTarget(t *testing.T) {
	for _, tc := range []struct {
		head    string
		connect bool
		dest    string
		err     bool
	}{
		{"CONNECT a.test:443 HTTP/1.1\r\n\r\n", true, "a.test:443", false},
		{"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", true, "[2001:db8::1]:443", false},
		{"CONNECT 192.0.2.1:22 HTTP/1.1\r\n\r\n", true, "192.0.2.1:22", false},
		{"CONNECT a.test HTTP/1.1\r\n\r\n", false, "", true},       // RFC 9110 §9.3.6: port required
		{"CONNECT a.test:0 HTTP/1.1\r\n\r\n", false, "", true},     // no port 0
		{"CONNECT a.test:+80 HTTP/1.1\r\n\r\n", false, "", true},   // not a plain number
		{"CONNECT a.test:99999 HTTP/1.1\r\n\r\n", false, "", true}, // out of range
		{"CONNECT [fe80::1%25eth0]:22 HTTP/1.1\r\n\r\n", false, "", true},
		{"GET http://a.test/x?y HTTP/1.1\r\nHost: evil.test\r\n\r\n", false, "a.test:80", false},
		{"GET http://a.test:8080/ HTTP/1.1\r\n\r\n", false, "a.test:8080", false},
		{"GET http://[::1]/ HTTP/1.1\r\n\r\n", false, "[::1]:80", false},
		{"GET HTTP://A.test/ HTTP/1.1\r\n\r\n", false, "A.test:80", false},
		{"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", false, "", true},    // origin-form
		{"GET https://a.test/ HTTP/1.1\r\n\r\n", false, "", true},       // TLS goes through CONNECT
		{"GET http://u:p@a.test/ HTTP/1.1\r\n\r\n", false, "", true},    // userinfo
		{"GET http://a.test:/ HTTP/1.1\r\n\r\n", false, "", true},       // empty port
		{"GET http://a%20b.test/ HTTP/1.1\r\n\r\n", false, "", true},    // not a host name
		{"GET http:///x HTTP/1.1\r\n\r\n", false, "", true},             // no host
		{"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", false, "", true}, // asterisk-form
		{"GET ftp://a.test/ HTTP/1.1\r\n\r\n", false, "", true},         // scheme
		{"GET http://" + strings.Repeat("a", 256) + "/ HTTP/1.1\r\n\r\n", false, "", true},
	} {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head)))
		if err != nil {
			if !tc.err {
				t.Errorf("%q: ReadRequest: %v", tc.head, err)
			}
			continue
		}
		pt, err := parseProxyTarget(req)
		switch {
		case tc.err && err == nil:
			t.Errorf("%q: target %v, want an error", tc.head, pt.addr)
		case tc.err && !errors.Is(err, errBadTarget):
			t.Errorf("%q: %v, want errBadTarget", tc.head, err)
		case !tc.err && err != nil:
			t.Errorf("%q: %v", tc.head, err)
		case !tc.err && (pt.connect != tc.connect || pt.addr.String() != tc.dest):
			t.Errorf("%q: connect %v dest %s, want %v %s", tc.head, pt.connect, pt.addr, tc.connect, tc.dest)
		}
	}
}

func TestParseNegotiate(t *testing.T) {
	tok := []byte{0x60, 0x03, 0x06, 0x01, 0x00}
	b64 := base64.StdEncoding.EncodeToString(tok)
	for _, tc := range []struct {
		name   string
		values []string
		err    error
	}{
		{"none", nil, errNoNegotiate},
		{"basic", []string{"Basic YTpi"}, errNoNegotiate},
		{"negotiate", []string{"Negotiate " + b64}, nil},
		{"case and spaces", []string{"  nEGOTIATE   " + b64 + " "}, nil},
		{"two fields", []string{"Negotiate " + b64, "Negotiate " + b64}, errBadCredentials},
		{"no token", []string{"Negotiate"}, errBadCredentials},
		{"no token, space", []string{"Negotiate  "}, errBadCredentials},
		{"garbage", []string{"Negotiate !!!notbase64"}, errBadCredentials},
		{"unpadded", []string{"Negotiate " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte{1, 2}), "=")}, errBadCredentials},
		{"url alphabet", []string{"Negotiate -_-_"}, errBadCredentials},
		// Found by FuzzParseNegotiate: encoding/base64 skips CR and LF.
		{"line break in the token", []string{"NegotiAte 000\n0"}, errBadCredentials},
		{"too long", []string{"Negotiate " + strings.Repeat("A", 4*maxNegotiateToken/3+8)}, errBadCredentials},
		{"raw NTLM", []string{"Negotiate " + base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2"))}, errNTLM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNegotiate(tc.values)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && !bytes.Equal(got, tok) {
				t.Fatalf("token % x", got)
			}
			if err != nil && len(tc.values) > 0 && strings.Contains(err.Error(), strings.TrimSpace(strings.TrimPrefix(tc.values[0], "Negotiate"))) && len(tc.values[0]) > 12 {
				t.Fatalf("the error quotes the credentials: %v", err)
			}
		})
	}
}

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Private", "close"},
		"X-Private":           {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Negotiate YQ=="},
		"Proxy-Connection":    {"keep-alive"},
		"Te":                  {"trailers"},
		"Upgrade":             {"websocket"},
		"Accept":              {"*/*"},
	}
	removeHopByHop(h)
	if len(h) != 1 || h.Get("Accept") != "*/*" {
		t.Fatalf("left %v", h)
	}
}

// FuzzReadRequestHead: the head scanner and net/http's parser behind it
// never panic, never accept a head past the limits, and whatever is
// accepted yields a target that is a valid destination or errBadTarget.
func FuzzReadRequestHead(f *testing.F) {
	for _, s := range []string{
		"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Negotiate YII=\r\n\r\n",
		"GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n",
		"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\na: 1\r\n b\r\n\r\n",
		"CONNECT [::1]:1 HTTP/1.0\n\n",
		"\r\n\r\n",
		"POST http://a.test/ HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST http://a.test/ HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
	} {
		f.Add([]byte(s))
	}
	lim := headLimits{MaxBytes: 512, MaxLine: 128, MaxFields: 8}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := scanHead(b, lim)
		if err != nil {
			if n != 0 {
				t.Fatalf("n %d with %v", n, err)
			}
			return
		}
		if n > lim.MaxBytes || n > len(b) || n < 2 || b[n-1] != '\n' {
			t.Fatalf("head length %d of %d", n, len(b))
		}
		br := bufio.NewReaderSize(bytes.NewReader(b), lim.MaxBytes)
		req, err := readRequest(br, lim)
		if err != nil {
			return
		}
		pt, err := parseProxyTarget(req)
		if err != nil {
			if !errors.Is(err, errBadTarget) {
				t.Fatalf("target error %v is not errBadTarget", err)
			}
			return
		}
		if pt.addr.Port == 0 || (pt.addr.Host == "") == !pt.addr.IP.IsValid() {
			t.Fatalf("accepted target %+v", pt.addr)
		}
		parseNegotiate(req.Header.Values("Proxy-Authorization"))
	})
}

// FuzzParseNegotiate: the credentials parser never panics, bounds the
// token, and what it accepts is the standard base64 of the token.
func FuzzParseNegotiate(f *testing.F) {
	for _, s := range []string{"Negotiate YIIBCgYGKwYBBQUCoIH/MIH8", "Negotiate", "negotiate  YQ==", "Basic YTpi", "Negotiate !!", "Negotiate YQ", "Negotiate TlRMTVNTUAABAAAAB4IIog=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := parseNegotiate([]string{v})
		if err != nil {
			return
		}
		if len(tok) == 0 || len(tok) > maxNegotiateToken {
			t.Fatalf("token of %d bytes", len(tok))
		}
		if !strings.Contains(v, base64.StdEncoding.EncodeToString(tok)) {
			t.Fatalf("accepted %q as % x", v, tok)
		}
	})
}

// TestReadRequestFraming: a head whose body framing two readers could
// take differently is refused 400 before net/http reads it (whitespace
// before a field's colon, Content-Length beside Transfer-Encoding); a
// request with either framing alone is read.
func TestReadRequestFraming(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		bad      bool
	}{
		{"content-length", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", false},
		{"chunked", "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"colon in a value", "GET http://a/ HTTP/1.1\r\nHost: a:80\r\nX-A: b : c\r\n\r\n", false},
		{"both", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"both, other case and order", "POST http://a/ HTTP/1.1\ntransfer-encoding: chunked\nCONTENT-LENGTH: 6\n\n0\r\n\r\n", true},
		{"space before colon", "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", true},
		{"tab before colon", "GET http://a/ HTTP/1.1\r\nHost\t: a\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), defaultHeadLimits.MaxBytes)
			_, err := readRequest(br, defaultHeadLimits)
			if tc.bad != (err != nil) || (err != nil && !errors.Is(err, errBadHead)) {
				t.Fatalf("readRequest: %v; want refused %v (errBadHead)", err, tc.bad)
			}
		})
	}
}
