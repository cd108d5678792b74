package encap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/gssocks/gssocks/gssapi"
)

// Version is the RFC 1961 §3 message version.
const Version = 0x01

// MaxToken is the largest token a message can carry (16-bit length).
const MaxToken = 0xffff

// headerLen is ver | mtyp | len(2).
const headerLen = 4

// MsgType is the RFC 1961 §3 MTYP field.
type MsgType byte

// Message types.
const (
	MsgAuth         MsgType = 0x01 // §3: context establishment token
	MsgProtection   MsgType = 0x02 // §4: protection-level subnegotiation
	MsgEncapsulated MsgType = 0x03 // §5: per-message protected data
	MsgAbort        MsgType = 0xff // §3: failure, no length or token follows
)

func (m MsgType) String() string {
	switch m {
	case MsgAuth:
		return "authentication"
	case MsgProtection:
		return "protection-level"
	case MsgEncapsulated:
		return "encapsulated"
	case MsgAbort:
		return "abort"
	}
	return fmt.Sprintf("mtyp(%#02x)", byte(m))
}

// Errors of the framing; callers branch on them with errors.Is.
var (
	// ErrAborted: the peer sent an abort message (01 ff).
	ErrAborted = errors.New("encap: peer aborted the GSS-API exchange")
	// ErrBadVersion: the first byte of a message is not 1.
	ErrBadVersion = errors.New("encap: bad message version")
	// ErrRawSOCKS: a SOCKS5 message (first byte 05) arrived where an RFC
	// 1961 message was expected: typically a client that negotiated
	// protection but does not implement it (curl >= 8.17 asking level 2).
	ErrRawSOCKS = errors.New("encap: raw SOCKS5 message where an RFC 1961 message was expected")
	// ErrUnexpectedType: a message of another type than the protocol step
	// needs.
	ErrUnexpectedType = errors.New("encap: unexpected message type")
	// ErrBadLength: a datagram's length field disagrees with its size.
	ErrBadLength = errors.New("encap: message length does not match the datagram")
	// ErrTooLarge: a token longer than a message can carry.
	ErrTooLarge = errors.New("encap: token exceeds 65535 bytes")
)

// putHeader is the one writer of the RFC 1961 §3 message header: it
// writes ver | mtyp | len(2, big-endian) for a token of n bytes into
// h[:headerLen] and returns the header; for MsgAbort it writes the two bytes
// 01 ff alone, as the abort message carries no length and no token.
func putHeader(h []byte, mtyp MsgType, n int) []byte {
	h[0], h[1] = Version, byte(mtyp)
	if mtyp == MsgAbort {
		return h[:2]
	}
	binary.BigEndian.PutUint16(h[2:headerLen], uint16(n))
	return h[:headerLen]
}

// AppendMessage appends the message mtyp|token to dst.
func AppendMessage(dst []byte, mtyp MsgType, token []byte) ([]byte, error) {
	if len(token) > MaxToken {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(token))
	}
	start := len(dst)
	dst = append(dst, make([]byte, headerLen)...)
	putHeader(dst[start:], mtyp, len(token))
	return append(dst, token...), nil
}

// appendWrapped appends one MTYP 3 message (§5) to dst: the header and
// ctx's wrap token of payload, sealed if conf. Conn and Datagram both frame
// their data with it.
func appendWrapped(dst []byte, ctx *gssapi.Context, payload []byte, conf bool) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, headerLen)...)
	msg, err := ctx.Wrap(dst, payload, conf)
	if err != nil {
		return dst[:start], err
	}
	n := len(msg) - start - headerLen
	if n > MaxToken {
		return msg[:start], fmt.Errorf("%w: %d-byte token for %d bytes of payload", ErrTooLarge, n, len(payload))
	}
	putHeader(msg[start:], MsgEncapsulated, n)
	return msg, nil
}

// WriteMessage writes one message in a single Write.
func WriteMessage(w io.Writer, mtyp MsgType, token []byte) error {
	b, err := AppendMessage(make([]byte, 0, headerLen+len(token)), mtyp, token)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("encap: write %s message: %w", mtyp, err)
	}
	return nil
}

// WriteAbort sends the abort message (01 ff, RFC 1961 §3), as a server
// does before closing on a GSS-API failure or a refused protection level.
func WriteAbort(w io.Writer) error {
	var h [headerLen]byte
	if _, err := w.Write(putHeader(h[:], MsgAbort, 0)); err != nil {
		return fmt.Errorf("encap: write abort: %w", err)
	}
	return nil
}

// parseHeader checks a message header; n is the token length (0 for abort).
func parseHeader(h []byte) (MsgType, int, error) {
	if h[0] != Version {
		if h[0] == 0x05 {
			return 0, 0, ErrRawSOCKS
		}
		return 0, 0, fmt.Errorf("%w: %#02x", ErrBadVersion, h[0])
	}
	mtyp := MsgType(h[1])
	switch mtyp {
	case MsgAbort:
		return mtyp, 0, ErrAborted
	case MsgAuth, MsgProtection, MsgEncapsulated:
	default:
		return 0, 0, fmt.Errorf("%w: %s", ErrUnexpectedType, mtyp)
	}
	return mtyp, int(binary.BigEndian.Uint16(h[2:4])), nil
}

// ReadMessage reads exactly one message, without reading ahead, into buf
// (grown if needed) and returns its type and token. It is for the
// handshake; Conn reads the data phase with a buffer of its own.
func ReadMessage(r io.Reader, buf []byte) (MsgType, []byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, fmt.Errorf("encap: read message header: %w", err)
	}
	if h[0] != Version || MsgType(h[1]) == MsgAbort {
		_, _, err := parseHeader(h[:])
		return MsgType(h[1]), nil, err
	}
	if _, err := io.ReadFull(r, h[2:]); err != nil {
		return 0, nil, fmt.Errorf("encap: read message header: %w", err)
	}
	mtyp, n, err := parseHeader(h[:])
	if err != nil {
		return 0, nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("encap: read %d-byte %s token: %w", n, mtyp, err)
	}
	return mtyp, buf, nil
}

// expect reads a message of type want.
func expect(r io.Reader, want MsgType) ([]byte, error) {
	mtyp, tok, err := ReadMessage(r, nil)
	if err != nil {
		return nil, err
	}
	if mtyp != want {
		return nil, fmt.Errorf("%w: %s where %s was expected", ErrUnexpectedType, mtyp, want)
	}
	return tok, nil
}
