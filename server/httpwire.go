package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gssocks/gssocks/socks5"
)

// The HTTP wire of the proxy front door (http.go), as pure functions over
// bytes and parsed requests: the bounds on a message head (RFC 9112 §2-5),
// the proxy's request target (RFC 9112 §3.2.2 absolute-form, §3.2.3
// authority-form for CONNECT, RFC 9110 §9.3.6), the Negotiate credentials
// of RFC 4559 §4 in Proxy-Authorization (RFC 9110 §11.7.2) and the
// hop-by-hop fields a forwarder removes (RFC 9110 §7.6.1). net/http's
// codecs (ReadRequest, ReadResponse, Write) parse and write the messages
// themselves, only ever on a head scanHead accepted.

// headLimits bound one message head: request or status line plus fields,
// up to and with the empty line.
type headLimits struct {
	MaxBytes  int // the whole head
	MaxLine   int // one line without its CRLF
	MaxFields int // field lines
}

// defaultHeadLimits leave room for a Negotiate token of an Active
// Directory ticket with a large PAC (base64 of tens of KiB), as Squid's
// 64 KiB default does; the reader's buffer is MaxBytes.
var defaultHeadLimits = headLimits{MaxBytes: 64 << 10, MaxLine: 64 << 10, MaxFields: 100}

// Refusals of a head. errHeadTooLarge and errTooManyFields are answered
// 431 (RFC 6585 §5), errBadHead 400; the connection closes after either.
var (
	errHeadIncomplete = errors.New("server: HTTP head incomplete")
	errHeadTooLarge   = errors.New("server: HTTP head too large")
	errTooManyFields  = errors.New("server: too many HTTP header fields")
	errBadHead        = errors.New("server: malformed HTTP head")
)

// scanHead finds the end of the head at the start of b and returns its
// length (through the empty line), errHeadIncomplete when b holds only
// part of a head within the limits, or a refusal: a line, the field count
// or the whole past lim (errHeadTooLarge, errTooManyFields), a bare CR, a
// NUL, an empty first line or an obsolete line folding (errBadHead: RFC
// 9112 §2.2 and §5.2 let a recipient refuse them, and a proxy that
// passed them on could be read differently downstream).
func scanHead(b []byte, lim headLimits) (int, error) {
	off, fields := 0, -1 // the first line is the start line
	for {
		rest := b[off:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			switch {
			case len(rest) > lim.MaxLine:
				return 0, fmt.Errorf("%w: a line is longer than %d bytes", errHeadTooLarge, lim.MaxLine)
			case len(b) >= lim.MaxBytes:
				return 0, fmt.Errorf("%w: more than %d bytes", errHeadTooLarge, lim.MaxBytes)
			}
			return 0, errHeadIncomplete
		}
		line := rest[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		off += i + 1
		switch {
		case len(line) > lim.MaxLine:
			return 0, fmt.Errorf("%w: a line is longer than %d bytes", errHeadTooLarge, lim.MaxLine)
		case off > lim.MaxBytes:
			return 0, fmt.Errorf("%w: more than %d bytes", errHeadTooLarge, lim.MaxBytes)
		case bytes.IndexByte(line, '\r') >= 0:
			return 0, fmt.Errorf("%w: bare CR", errBadHead)
		case bytes.IndexByte(line, 0) >= 0:
			return 0, fmt.Errorf("%w: NUL byte", errBadHead)
		case len(line) == 0 && fields < 0:
			return 0, fmt.Errorf("%w: empty start line", errBadHead)
		case len(line) == 0:
			return off, nil
		case fields >= 0 && (line[0] == ' ' || line[0] == '\t'):
			return 0, fmt.Errorf("%w: obsolete line folding", errBadHead)
		}
		if fields++; fields > lim.MaxFields {
			return 0, fmt.Errorf("%w: more than %d", errTooManyFields, lim.MaxFields)
		}
	}
}

// readHead waits until br holds a whole head within lim and returns its
// length; the head stays buffered for net/http to parse. br's buffer must
// hold lim.MaxBytes. Read errors are returned as they are (io.EOF before
// any byte: the client closed between requests).
func readHead(br *bufio.Reader, lim headLimits) (int, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		n, err := scanHead(b, lim)
		if !errors.Is(err, errHeadIncomplete) {
			return n, err
		}
		// Peek blocks until at least one more byte is buffered (or the
		// read fails); it reads what the socket has, not one byte.
		if _, err := br.Peek(len(b) + 1); err != nil {
			return 0, err
		}
	}
}

// proxyTarget is where a proxy request goes.
type proxyTarget struct {
	connect bool        // a CONNECT tunnel; else an http:// request to forward
	addr    socks5.Addr // the destination, as policy and the dialler take it
}

// errBadTarget: the request target is not one a proxy serves (origin-form,
// another scheme, a bad authority); answered 400.
var errBadTarget = errors.New("server: bad proxy request target")

// parseProxyTarget returns the destination of a request parsed by
// http.ReadRequest: a CONNECT's authority-form "host:port" (RFC 9110
// §9.3.6: the port is required), or an absolute-form "http://host[:port]/…"
// (port 80 by default). Other targets are errBadTarget: origin-form ("/x":
// this is not an origin server), https:// absolute-form (clients tunnel
// TLS with CONNECT), user information in the URI (RFC 9110 §4.2.4).
func parseProxyTarget(req *http.Request) (proxyTarget, error) {
	if req.Method == http.MethodConnect {
		a, err := parseAuthority(req.RequestURI, "")
		if err != nil {
			return proxyTarget{}, err
		}
		return proxyTarget{connect: true, addr: a}, nil
	}
	u := req.URL
	switch {
	case u == nil || !u.IsAbs():
		return proxyTarget{}, fmt.Errorf("%w: not an absolute URI (origin-form is for origin servers)", errBadTarget)
	case !strings.EqualFold(u.Scheme, "http"):
		return proxyTarget{}, fmt.Errorf("%w: scheme %q is not forwarded (use CONNECT for TLS)", errBadTarget, u.Scheme)
	case u.User != nil:
		return proxyTarget{}, fmt.Errorf("%w: user information in the URI", errBadTarget)
	case u.Opaque != "":
		return proxyTarget{}, fmt.Errorf("%w: opaque URI", errBadTarget)
	}
	a, err := parseAuthority(u.Host, "80")
	if err != nil {
		return proxyTarget{}, err
	}
	return proxyTarget{addr: a}, nil
}

// parseAuthority reads "host:port" (host a name, an IPv4 literal or a
// bracketed IPv6 literal); defPort, when not "", is used without a port.
func parseAuthority(s, defPort string) (socks5.Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if ae, ok := errors.AsType[*net.AddrError](err); ok && defPort != "" && ae.Err == "missing port in address" {
		host, port, err = s, defPort, nil
		if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
			host = s[1 : len(s)-1]
		}
	}
	if err != nil {
		return socks5.Addr{}, fmt.Errorf("%w: authority is not host:port", errBadTarget)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '+' {
		return socks5.Addr{}, fmt.Errorf("%w: port is not a number from 1 to 65535", errBadTarget)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return socks5.Addr{}, fmt.Errorf("%w: address with a zone", errBadTarget)
		}
		return socks5.Addr{IP: ip, Port: uint16(n)}, nil
	}
	if host == "" || len(host) > 255 || strings.ContainsFunc(host, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("/\\?#@[]%\"<>", r)
	}) {
		return socks5.Addr{}, fmt.Errorf("%w: not a host name", errBadTarget)
	}
	return socks5.Addr{Host: host, Port: uint16(n)}, nil
}

// Outcomes of parseNegotiate besides a token.
var (
	// errNoNegotiate: no Proxy-Authorization, or one of another scheme
	// (Basic): answered with the challenge, not counted as a failure.
	errNoNegotiate = errors.New("server: no Negotiate credentials")
	// errBadCredentials: Negotiate credentials that are not one
	// base64 token (RFC 4559 §4, token68 of RFC 9110 §11.2).
	errBadCredentials = errors.New("server: malformed Negotiate credentials")
	// errNTLM: a raw NTLM message (NTLMSSP, MS-NLMP §2.2) in Negotiate
	// credentials. Windows clients and browsers send it when they hold
	// no Kerberos ticket for HTTP/<proxy host>; NTLM is not supported.
	errNTLM = errors.New("server: NTLM token in Negotiate credentials (NTLM is not supported)")
)

// ntlmSignature opens every NTLM message (MS-NLMP §2.2.1).
const ntlmSignature = "NTLMSSP\x00"

// maxNegotiateToken bounds a decoded token (a Kerberos AP-REQ with an
// AD PAC in its ticket fits many times over).
const maxNegotiateToken = 48 << 10

// parseNegotiate returns the GSS-API token of the Proxy-Authorization
// values (RFC 9110 §11.7.2): exactly one value "Negotiate <base64>" (the
// scheme case-insensitive, RFC 9110 §11.1). No value or another scheme is
// errNoNegotiate; several values, an empty or undecodable token or one
// larger than maxNegotiateToken are errBadCredentials. The error never
// quotes the credentials.
func parseNegotiate(values []string) ([]byte, error) {
	switch len(values) {
	case 0:
		return nil, errNoNegotiate
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d Proxy-Authorization fields", errBadCredentials, len(values))
	}
	v := strings.TrimLeft(values[0], " \t")
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Negotiate") {
		return nil, errNoNegotiate
	}
	b64 := strings.Trim(rest, " \t")
	switch {
	case b64 == "":
		return nil, fmt.Errorf("%w: no token", errBadCredentials)
	case base64.StdEncoding.DecodedLen(len(b64)) > maxNegotiateToken:
		return nil, fmt.Errorf("%w: token longer than %d bytes", errBadCredentials, maxNegotiateToken)
	}
	if strings.ContainsFunc(b64, func(r rune) bool { return !isBase64Char(r) }) {
		// The decoder skips CR and LF; a token68 holds neither.
		return nil, fmt.Errorf("%w: the token is not base64", errBadCredentials)
	}
	tok, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(tok) == 0 {
		// base64's error quotes an offset, not the input; say less still.
		return nil, fmt.Errorf("%w: the token is not base64", errBadCredentials)
	}
	if bytes.HasPrefix(tok, []byte(ntlmSignature)) {
		return nil, errNTLM
	}
	return tok, nil
}

// isBase64Char reports whether r is in the standard base64 alphabet or
// its padding (RFC 4648 §4).
func isBase64Char(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '='
}

// negotiateChallenge is the Proxy-Authenticate value with the acceptor's
// answer token (RFC 4559 §5), or the bare challenge for none.
func negotiateChallenge(tok []byte) string {
	if len(tok) == 0 {
		return "Negotiate"
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(tok)
}

// hopByHop are the fields that belong to one connection (RFC 9110 §7.6.1,
// and Proxy-Connection, which clients still send) and are not forwarded;
// the fields a Connection field names are removed as well.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes the hop-by-hop fields of h in place.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range hopByHop {
		h.Del(f)
	}
}

// checkRequestFraming refuses (errBadHead) a request head whose body
// framing a recipient could read two ways, before net/http reads one: a
// field name followed by whitespace before its colon (RFC 9112 §5.1: a
// server must answer 400; net/http would keep "Content-Length " as an
// unknown field and read no body), and Content-Length beside
// Transfer-Encoding (RFC 9112 §6.1: the connection must not go on after
// such a request; net/http drops the Content-Length and the connection
// would carry on with what another reader took for the body). head is the
// head as scanHead found it.
func checkRequestFraming(head []byte) error {
	var cl, te bool
	lines := bytes.Split(head, []byte("\n"))
	for _, line := range lines[1:] {
		name, _, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\r")), []byte(":"))
		if !ok {
			continue
		}
		if len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
			return fmt.Errorf("%w: whitespace between a field name and its colon", errBadHead)
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
		}
	}
	if cl && te {
		return fmt.Errorf("%w: both Content-Length and Transfer-Encoding", errBadHead)
	}
	return nil
}

// readRequest reads one request head within lim from br and parses it.
func readRequest(br *bufio.Reader, lim headLimits) (*http.Request, error) {
	n, err := readHead(br, lim)
	if err != nil {
		return nil, err
	}
	head, _ := br.Peek(n)
	if err := checkRequestFraming(head); err != nil {
		return nil, err
	}
	req, err := http.ReadRequest(br)
	if err != nil {
		// net/http's error quotes the line it could not read, which may
		// be a mangled credential: say which kind of error only.
		return nil, fmt.Errorf("%w: the request does not parse (%T)", errBadHead, err)
	}
	return req, nil
}

// readResponse reads one response head within lim from br and parses it,
// for req (a HEAD's response has no body).
func readResponse(br *bufio.Reader, lim headLimits, req *http.Request) (*http.Response, error) {
	if _, err := readHead(br, lim); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadHead, err)
	}
	return resp, nil
}
